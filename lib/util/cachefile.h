/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-binary cache files: what avm learned by running a program (QEMU's
 * capabilities, the flags a helper accepts), kept until the program
 * changes.  $XDG_CACHE_HOME/avm/KIND/<base>-<hash>.EXT (default
 * ~/.cache/avm/...), <base> the program's file name (characters outside
 * [A-Za-z0-9._-] replaced by '_', at most 64) for humans, <hash> the
 * 64-bit FNV-1a hash of its whole path, so that distinct programs do not
 * share a file.
 */
#pragma once

#include <stddef.h>

/* The cache file of PROGRAM (malloc'd), or NULL without a home.  */
char *avm_cache_file (const char *kind, const char *program, const char *ext);

/* "PATH DEV INO SIZE MTIME_NS CTIME_NS" of PATH as stat(2) sees it
   (symbolic links followed), into BUF; -errno when it cannot be stat'ed.
   A cache entry holds it and is used only while it is still the same.  */
int avm_file_identity (const char *path, char *buf, size_t size);
