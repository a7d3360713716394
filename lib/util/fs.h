/* SPDX-License-Identifier: Apache-2.0 */
/* Small file-system helpers. */
#pragma once

#include "util/error.h"

#include <stddef.h>
#include <sys/types.h>

/* Read a whole (small) file; the buffer is NUL-terminated.  */
int avm_read_file (const char *path, char **out, size_t *len, avm_error_t *err);

/* Write DATA to PATH atomically: temporary file in the same directory
   (O_EXCL), fsync, rename.  An existing PATH is never half-overwritten.  */
int avm_write_file_atomic (const char *path, const void *data, size_t len, mode_t mode, avm_error_t *err);

/* mkdir -p with MODE for created components.  */
int avm_mkdir_p (const char *path, mode_t mode, avm_error_t *err);

/* "a/b" from "a" and "b" (no double slash).  */
char *avm_path_join (const char *dir, const char *name);

/* Locate an executable: NAME with a slash is checked as is; otherwise each
   directory of DIRS (colon-separated, may be NULL) and then $PATH is searched.
   Returns a malloc'd absolute path or NULL (errno set).  */
char *avm_find_program (const char *name, const char *dirs);

/* Directory holding the running executable (malloc'd), or NULL.  */
char *avm_self_dir (void);

/* User directories following the XDG base directory spec (malloc'd).  */
char *avm_xdg_dir (const char *env, const char *home_fallback);
