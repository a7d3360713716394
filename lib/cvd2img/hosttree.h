/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Cuttlefish host package as a tree: what `avm cvd2img` puts into its
 * output directory so that `avm start --images OUT` runs the host tools
 * (OUT/bin), their libraries (OUT/lib64) and data (OUT/etc, OUT/usr) as
 * they are (issue 14).  One policy for both sources, the tarball (extracted
 * with libarchive, cvd2img/imgset.c) and the host package of a directory input
 * (copied):
 *   - kept: regular files with their permission bits (setuid, setgid and
 *     sticky dropped; owner and group are the converting user's),
 *     directories (their permission bits, plus rwx for the owner, so that a
 *     later conversion can replace them), symbolic links whose target is
 *     relative and stays inside the tree (".." only as leading components,
 *     no more of them than the link is deep: "lib64/libfoo.so ->
 *     libfoo.so.1", "bin/x -> ../lib64/x"), and hard links of the tarball
 *     to an earlier entry of it;
 *   - refused, naming the entry: absolute paths, ".." components, an
 *     absolute or escaping link target, a hard link to anything that is not
 *     an earlier entry, device nodes, FIFOs, sockets, an entry below a
 *     symbolic link, an entry twice, a hidden top-level name (reserved for
 *     avm's temporaries and marker);
 *   - bounded: AVM_HOST_MAX_BYTES of file data (a host package is 1 to 2 GiB
 *     unpacked), AVM_HOST_MAX_ENTRIES entries, AVM_HOST_MAX_DEPTH levels.
 * Nothing is ever created through a symbolic link: every path is walked
 * from the tree's root descriptor component by component with O_NOFOLLOW.
 */
#pragma once

#include "disk/output.h"
#include "util/error.h"
#include "util/strv.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define AVM_HOST_MAX_BYTES (16ULL << 30)
#define AVM_HOST_MAX_ENTRIES 100000u
#define AVM_HOST_MAX_DEPTH 64

/* What a host package holds, counted while its entries are checked.  */
struct avm_host_tally
{
  uint64_t bytes;      /* regular files' data */
  size_t entries;      /* every entry (directories and links included) */
  struct avm_argv top; /* its top-level names, each once, in order of appearance */
};
void avm_host_tally_clear (struct avm_host_tally *t);

/* Check the entry PATH (relative; "./" prefixes already gone) of WHERE (the
   archive or directory, for messages) against the policy above and count
   it into T: TYPE is S_IFREG, S_IFDIR, S_IFLNK (TARGET its target) or
   another file type (refused); HARDLINK, when not NULL, the earlier entry a
   regular entry is a hard link to (its data is not counted again).  An
   empty PATH (the archive's "./") is the root: accepted, not counted.
   Bad input (exit 2), naming WHERE and PATH.  */
int avm_host_check (struct avm_host_tally *t, const char *where, const char *path, mode_t type, uint64_t size,
                    const char *target, const char *hardlink, avm_error_t *err);

/* Whether PATH names the root of the tree ("", ".", "./", ...).  */
bool avm_host_is_root (const char *path);

/* Writing a tree under the directory ROOT (an empty directory: the tree
   output's "new", disk/output.h).  Directories are created 0700 and get
   their mode in avm_host_writer_finish.  Regular files: avm_host_put_file
   opens PATH for writing (created 0600, O_EXCL), the caller writes its
   data, avm_host_file_done sets its size and mode and closes it.  */
struct avm_host_writer
{
  int root;
  const char *label;    /* where the tree comes from, for messages */
  struct avm_argv dirs; /* directories whose mode is set at the end ... */
  mode_t *modes;        /* ... to these */
  size_t modes_alloc;
  uint64_t bytes; /* file data written, against AVM_HOST_MAX_BYTES */
  avm_progress_fn progress;
  void *progress_data;
};
void avm_host_writer_init (struct avm_host_writer *w, int root, const char *label);
void avm_host_writer_clear (struct avm_host_writer *w);
int avm_host_put_dir (struct avm_host_writer *w, const char *path, mode_t mode, avm_error_t *err);
int avm_host_put_file (struct avm_host_writer *w, const char *path, int *fd, avm_error_t *err);
/* Count LEN more bytes of file data written into PATH (the limit).  */
int avm_host_wrote (struct avm_host_writer *w, const char *path, uint64_t len, avm_error_t *err);
int avm_host_file_done (struct avm_host_writer *w, const char *path, int fd, uint64_t size, mode_t mode,
                        avm_error_t *err);
int avm_host_put_symlink (struct avm_host_writer *w, const char *path, const char *target, avm_error_t *err);
int avm_host_put_hardlink (struct avm_host_writer *w, const char *path, const char *target, avm_error_t *err);
int avm_host_writer_finish (struct avm_host_writer *w, avm_error_t *err);

/* The host package of a directory input DIR: its top-level directories,
   and the symbolic links among its top-level entries that point to a
   directory inside DIR (checked as above), but not hidden entries,
   Cuttlefish's run-time state (names starting with "cuttlefish":
   cuttlefish/, cuttlefish_runtime, cuttlefish_assembly, ...), nor the
   directory SKIP (the output directory, when it is inside DIR; SKIP_DEV 0
   and SKIP_INO 0: none), which is also left out wherever it is below
   them.  The images and other regular files at DIR's top are not part of
   it.  Inside these directories every entry must pass the policy above (a
   link out of DIR, a FIFO, ... is refused, naming it): nothing outside DIR
   is ever read.  avm_host_dir_scan checks and counts (T->top: the
   entries); avm_host_dir_copy copies them into W (regular files with
   copy_file_range, which shares the data on file systems that can).  */
int avm_host_dir_scan (const char *dir, dev_t skip_dev, ino_t skip_ino, struct avm_host_tally *t, avm_error_t *err);
int avm_host_dir_copy (const char *dir, dev_t skip_dev, ino_t skip_ino, char *const *top, struct avm_host_writer *w,
                       avm_error_t *err);
