/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libarchive.so.13, bound on first use.  Only `avm cvd2img` and `avm inspect` need
 * it, and loading it with the executable costs every command (relocations
 * of it and its dependencies: milliseconds on each `avm start`).  Include
 * this header instead of the library's own in lib/ sources and call
 * sym_NAME (...) after avm_dlopen_archive (lib/util/dl.h); the prototypes
 * still come from the library's headers.
 */
#pragma once

#include "util/dl.h"

#include <archive.h>
#include <archive_entry.h>

#define AVM_ARCHIVE_FUNCS(X)                                                                                           \
  X (archive_entry_filetype)                                                                                           \
  X (archive_entry_hardlink)                                                                                           \
  X (archive_entry_pathname)                                                                                           \
  X (archive_entry_perm)                                                                                               \
  X (archive_entry_size)                                                                                               \
  X (archive_entry_size_is_set)                                                                                        \
  X (archive_entry_symlink)                                                                                            \
  X (archive_errno)                                                                                                    \
  X (archive_error_string)                                                                                             \
  X (archive_read_data)                                                                                                \
  X (archive_read_data_block)                                                                                          \
  X (archive_read_free)                                                                                                \
  X (archive_read_new)                                                                                                 \
  X (archive_read_next_header)                                                                                         \
  X (archive_read_open_fd)                                                                                             \
  X (archive_read_support_filter_all)                                                                                  \
  X (archive_read_support_format_gnutar)                                                                               \
  X (archive_read_support_format_tar)                                                                                  \
  X (archive_read_support_format_zip_seekable)

AVM_DL_DECLARE (AVM_ARCHIVE_FUNCS)

/* Bind the sym_ pointers above, loading libarchive.so.13 the first time (any
   thread; later calls return the first outcome).  0, or -errno with ERR
   naming the library, the missing function and the Debian package
   (libarchive13).  Call it before the first sym_ use.  */
int avm_dlopen_archive (avm_error_t *err);
