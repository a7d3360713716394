/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libarchive.so.13, bound on first use.  Only `avm cvd2img` and `avm inspect` need
 * it, and loading it with the executable costs every command (relocations
 * of it and its dependencies: milliseconds on each `avm start`).  Include
 * this header instead of the library's own in lib/ sources: calls go
 * through a table of pointers filled by dlopen/dlsym on first use.
 * Written by hand because the linker offers no lazy loading of whole
 * libraries; the prototypes still come from the library's headers.
 */
#pragma once

#include <archive.h>
#include <archive_entry.h>

#define AVM_ARCHIVE_FUNCS(X) \
  X (archive_entry_filetype) \
  X (archive_entry_hardlink) \
  X (archive_entry_pathname) \
  X (archive_entry_perm) \
  X (archive_entry_size) \
  X (archive_entry_size_is_set) \
  X (archive_entry_symlink) \
  X (archive_errno) \
  X (archive_error_string) \
  X (archive_read_data) \
  X (archive_read_data_block) \
  X (archive_read_free) \
  X (archive_read_new) \
  X (archive_read_next_header) \
  X (archive_read_open_fd) \
  X (archive_read_support_filter_all) \
  X (archive_read_support_format_gnutar) \
  X (archive_read_support_format_tar) \
  X (archive_read_support_format_zip_seekable)

struct avm_archive_api
{
#define X(f) __typeof__ (f) *f;
  AVM_ARCHIVE_FUNCS (X)
#undef X
};

/* The table; loads libarchive.so.13 the first time.  A library that cannot be
   loaded is a broken installation: avm says so (Debian: libarchive13) and exits 1.  */
const struct avm_archive_api *avm_archive (void);

#ifndef AVM_LAZY_ARCHIVE_IMPL
#define archive_entry_filetype (avm_archive ()->archive_entry_filetype)
#define archive_entry_hardlink (avm_archive ()->archive_entry_hardlink)
#define archive_entry_pathname (avm_archive ()->archive_entry_pathname)
#define archive_entry_perm (avm_archive ()->archive_entry_perm)
#define archive_entry_size (avm_archive ()->archive_entry_size)
#define archive_entry_size_is_set (avm_archive ()->archive_entry_size_is_set)
#define archive_entry_symlink (avm_archive ()->archive_entry_symlink)
#define archive_errno (avm_archive ()->archive_errno)
#define archive_error_string (avm_archive ()->archive_error_string)
#define archive_read_data (avm_archive ()->archive_read_data)
#define archive_read_data_block (avm_archive ()->archive_read_data_block)
#define archive_read_free (avm_archive ()->archive_read_free)
#define archive_read_new (avm_archive ()->archive_read_new)
#define archive_read_next_header (avm_archive ()->archive_read_next_header)
#define archive_read_open_fd (avm_archive ()->archive_read_open_fd)
#define archive_read_support_filter_all (avm_archive ()->archive_read_support_filter_all)
#define archive_read_support_format_gnutar (avm_archive ()->archive_read_support_format_gnutar)
#define archive_read_support_format_tar (avm_archive ()->archive_read_support_format_tar)
#define archive_read_support_format_zip_seekable (avm_archive ()->archive_read_support_format_zip_seekable)
#endif
