/* SPDX-License-Identifier: Apache-2.0 */
/* Small file-system helpers. */
#pragma once

#include "util/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* What a file of type MODE is, for messages: "a directory", "a FIFO", "a
   character device", ...  */
const char *avm_file_kind (mode_t mode);

/* Open PATH read-only as WHAT ("a profile"), never blocking on a FIFO
   (O_NONBLOCK), and keep it only when the descriptor is a regular file (its
   fstat, so nothing can be swapped in after the check): *FD and *ST.  Anything
   else is bad input (exit 2): "/dev/zero is a character device, not a
   profile".  */
int avm_open_regular (const char *path, const char *what, int *fd, struct stat *st, avm_error_t *err);
/* The same, refusing PATH when it is a symbolic link itself (bad input:
   "boot.img is a symbolic link, not an image file").  */
int avm_open_regular_nofollow (const char *path, const char *what, int *fd, struct stat *st, avm_error_t *err);

/* Read a whole regular file of at most MAX bytes (opened with
   avm_open_regular); the buffer is NUL-terminated.  A larger file is bad
   input (exit 2) and returns -EFBIG: "system.img is 3.2 GiB, not a profile
   (at most 1.0 MiB)".  The limit is also kept while reading, for files whose
   size stat does not tell (/proc) or that grow.  */
int avm_read_file (const char *path, size_t max, const char *what, char **out, size_t *len, avm_error_t *err);
/* The same with avm_open_regular_nofollow.  */
int avm_read_file_nofollow (const char *path, size_t max, const char *what, char **out, size_t *len, avm_error_t *err);

/* Write DATA to PATH atomically: temporary file in the same directory
   (O_EXCL), fsync, rename.  An existing PATH is never half-overwritten.  */
int avm_write_file_atomic (const char *path, const void *data, size_t len, mode_t mode, avm_error_t *err);

/* A file of SIZE zero bytes (sparse) at PATH, made as avm_write_file_atomic
   makes files: an existing PATH is replaced whole or not at all.  */
int avm_blank_file_atomic (const char *path, uint64_t size, mode_t mode, avm_error_t *err);

/* Copy the regular file FROM to TO, a new file (O_EXCL, MODE): a reflink
   (FICLONE) where the file system shares blocks, else the data extents
   only (SEEK_DATA/SEEK_HOLE, copy_file_range; between file systems, read
   and written here with blocks of zeros left out), so holes stay holes (a
   guest's RAM file is mostly holes).  TO is removed on failure.  */
int avm_copy_sparse (const char *from, const char *to, mode_t mode, avm_error_t *err);

/* mkdir -p with MODE for created components.  */
int avm_mkdir_p (const char *path, mode_t mode, avm_error_t *err);

/* "a/b" from "a" and "b" (no double slash).  */
char *avm_path_join (const char *dir, const char *name);

/* The last component of PATH: what follows its last '/' (all of PATH
   when it has none; "" when it ends with one).  Points into PATH.  */
const char *avm_path_base (const char *path);

/* Locate an executable: NAME with a slash is checked as is; otherwise each
   directory of DIRS (colon-separated, may be NULL) and then $PATH is searched.
   Returns a malloc'd absolute path or NULL (errno set).  */
char *avm_find_program (const char *name, const char *dirs);

/* The first existing directory of LIST (colon-separated; empty elements
   are skipped), malloc'd, with *FOUND true; when none exists, the first
   element with *FOUND false (for the message).  NULL only on ENOMEM or an
   empty LIST.  */
char *avm_first_dir (const char *list, bool *found);

/* Directory holding the running executable (malloc'd), or NULL.  */
char *avm_self_dir (void);

/* User directories following the XDG base directory spec (malloc'd).  */
char *avm_xdg_dir (const char *env, const char *home_fallback);
