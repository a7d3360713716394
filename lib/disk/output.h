/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Output files written safely and sparsely.  An output is a temporary file
 * created with O_EXCL next to its final path, sized up front; blocks of
 * zeros are never written (they stay holes); on commit it is fsynced and
 * renamed over the final path (and the directory fsynced); on abort, on any
 * error, or when the process gets SIGINT/SIGTERM/SIGHUP/SIGQUIT, the
 * temporary is removed and an existing output is left untouched.  Outputs
 * that belong together are committed as one set (avm_out_commit_set).
 * An output may also be a directory tree (avm_out_open_tree), whose
 * top-level entries replace those of the same names in its directory.
 */
#pragma once

#include "util/cleanup.h"
#include "util/error.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct avm_out;

/* Progress callback: called with the number of bytes just processed by
   avm_out_write, avm_out_fill and avm_out_copy_fd (holes included), so the
   calls add up to the bytes of the output covered.  */
typedef void (*avm_progress_fn) (void *data, uint64_t bytes);

/* Create the temporary "DIR/.BASENAME.tmp.XXXXXX" (mode 0644) next to PATH
   and size it to SIZE (a hole).  After a failed write the output is still
   open: the caller aborts it (or lets _cleanup_out_ do so).  */
int avm_out_open (const char *path, uint64_t size, struct avm_out **out, avm_error_t *err);
/* Change the temporary's mode (kept by the rename), e.g. 0600 for a private
   key, before anything is written to it.  */
int avm_out_set_mode (struct avm_out *o, mode_t mode, avm_error_t *err);
/* Write BUF at OFF; 4 KiB-aligned all-zero blocks are skipped (holes).
   Writing past the size given to avm_out_open is an error.  Errors name the
   final path.  */
int avm_out_write (struct avm_out *o, uint64_t off, const void *buf, size_t len, avm_error_t *err);
/* LEN bytes of a repeated 32-bit little-endian PATTERN at OFF (0: a hole).
   The pattern starts at OFF (its first byte is PATTERN's low byte).  A zero
   fill writes nothing: it relies on the range not having been written yet
   (the file starts as one hole).  */
int avm_out_fill (struct avm_out *o, uint64_t off, uint32_t pattern, uint64_t len, avm_error_t *err);
/* Copy LEN bytes of IN_FD from IN_OFF to OFF with copy_file_range, keeping
   holes (SEEK_DATA/SEEK_HOLE) and reflinking where the filesystem can
   (falling back to read + avm_out_write where copy_file_range cannot).
   An input shorter than IN_OFF + LEN is an error naming IN_NAME
   ("IN_NAME: unexpected end of file at offset N").  IN_FD must support
   pread; its file offset is moved (lseek SEEK_DATA/SEEK_HOLE).  */
int avm_out_copy_fd (struct avm_out *o, uint64_t off, int in_fd, uint64_t in_off, uint64_t len, const char *in_name,
                     avm_error_t *err);
/* A directory output: the temporary directory "DIR/.NAME.tmp.XXXXXX"
   (mode 0700, removed whole on abort, on failure and by the signal
   handlers), holding "new", the tree to fill (avm_out_tree_fd: create
   everything relative to it).  avm_out_commit_set puts each top-level
   entry of "new" in place of the entry of that name in DIR (an exchange
   with renameat2 RENAME_EXCHANGE, so that DIR/ENTRY never disappears, or a
   rename where DIR has no such entry) and moves the entries given to
   avm_out_tree_retire that the new tree lacks out of DIR; what it replaced
   is removed with the temporary after the commit.  Only
   avm_out_commit_set commits a tree.  */
int avm_out_open_tree (const char *dir, const char *name, struct avm_out **out, avm_error_t *err);
/* The directory "new" of a tree output, or -1 for a file output.  */
int avm_out_tree_fd (const struct avm_out *o);
/* Entries of the tree's directory (single names) that the commit removes
   unless the new tree has them: those of an earlier tree.  */
int avm_out_tree_retire (struct avm_out *o, char *const *names, avm_error_t *err);
/* Remove from DIR what an interrupted run left: ".NAME.tmp.XXXXXX" of each
   NAME of NAMES (NULL-terminated), files or trees.  The caller makes sure
   no other process writes these outputs meanwhile (cvd2img locks the
   directory).  Best effort: every one is tried; the first failure is
   returned.  */
int avm_out_remove_stale (const char *dir, char *const *names, avm_error_t *err);

/* fsync, rename over the final path, fsync the directory.  Frees O, also
   on failure (the temporary is then removed).  */
int avm_out_commit (struct avm_out *o, avm_error_t *err); /* frees O */
void avm_out_abort (struct avm_out *o);                   /* frees O */

/* Commit the outputs OUTS[0..N) (NULL entries skipped) as one set, so that
   the files they replace are all old or all new whatever the timing:
     1. every temporary is fsynced: a full disk or an I/O error fails here,
        with every existing output untouched (and signals still remove the
        temporaries);
     2. every asynchronous signal is blocked (all but SIGKILL, SIGSTOP and
        the faults: SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT)
        until the end; a signal that arrives meanwhile takes effect once the
        set is complete;
     3. the file MARKER is created (and fsynced, with its directory) in each
        directory of the outputs, saying which files are being replaced and
        REMEDY ("run avm cvd2img again");
     4. the temporaries are renamed in order, the directories fsynced, then
        the markers removed (and the directories fsynced again).
   A tree (avm_out_open_tree) takes part the same way: in 1, its files are
   made durable (syncfs) and its top-level entries listed; in 3, the marker
   lists them and the entries it retires; in 4, each is exchanged with the
   old entry (or renamed), and the retired ones are moved into the
   temporary; the temporary, holding what was replaced, is removed after
   the signals are unblocked (by the handler, if one arrives then).  A
   tree's entry that is the name of another output of the set in the same
   directory, or of the marker, is refused before anything changes.
   What cannot be blocked (SIGKILL, a power cut) or a rename failing after
   others succeeded leaves MARKER behind: readers of the set treat its
   presence as "these files may not belong together".  A failure before the
   first rename removes the markers again.  Frees every output, also on
   failure (unrenamed temporaries are removed).  Signals are blocked in the
   calling thread: a program with other threads must keep these signals
   blocked in them (avm commits sets only in cvd2img, which runs no other
   thread).  */
int avm_out_commit_set (struct avm_out **outs, size_t n, const char *marker, const char *remedy, avm_error_t *err);
void avm_out_set_progress (struct avm_out *o, avm_progress_fn fn, void *data);
const char *avm_out_path (const struct avm_out *o);
/* Largest write size, for callers choosing buffers.  */
#define AVM_OUT_BUFSIZE (1024 * 1024)

/* Size given to avm_out_open.  */
uint64_t avm_out_size (const struct avm_out *o);

/* At most this many outputs may be open at once (the signal-cleanup
   registry is a fixed array): avm_out_open fails with -EMFILE beyond.  */
#define AVM_OUT_MAX_OPEN 16

/* Signals: the first avm_out_open installs handlers for SIGINT, SIGTERM,
   SIGHUP and SIGQUIT that unlink every live temporary of this process, restore the
   default action and re-raise the signal.  A signal whose disposition is not
   the default at that moment (ignored, as under nohup, or caught by the
   program) is left alone; a program with its own handlers calls
   avm_out_signal_cleanup from them (async-signal-safe: only unlink).  */
void avm_out_signal_cleanup (void);

/* For _cleanup_: abort an output still open at scope exit
   ("_cleanup_out_ struct avm_out *o = NULL; ... avm_out_commit (steal_pointer (&o), err)").  */
DEFINE_TRIVIAL_CLEANUP_FUNC (struct avm_out *, avm_out_abort)
#define _cleanup_out_ __attribute__ ((cleanup (avm_out_abortp)))
