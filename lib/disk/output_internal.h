/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the files of the output writer (output.c: opening, writing,
 * committing one output; output_set.c: committing a set; output_cleanup.c:
 * the registry of live temporaries and the signal handlers).  Not for use
 * outside lib/disk/output*.c.
 */
#pragma once

#include "disk/output.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct avm_out
{
  int fd;
  char *path; /* final path */
  char *tmp;  /* temporary, registered for signal cleanup */
  char *dir;  /* directory of both, fsynced on commit */
  uint64_t size;
  int slot; /* index in the live registry */
  avm_progress_fn progress;
  void *progress_data;
  uint8_t *fill; /* pattern buffer for avm_out_fill */
  size_t fill_cap;
  size_t fill_valid; /* bytes of it holding fill_pattern */
  uint32_t fill_pattern;
  uint8_t *copy;      /* read buffer for the avm_out_copy_fd fallback */
  uint64_t unflushed; /* bytes written since writeback was last started */
  /* A directory output (avm_out_open_tree): TMP is the temporary directory,
     holding "new" (the tree being written, NEWFD) and, once the commit
     starts, "old" (what the commit moves out of DIR).  */
  bool tree;
  int tfd, newfd;
  char **names; /* the top-level entries of "new", read at commit */
  size_t nnames;
  char **retire; /* entries of DIR to remove at commit (not in the new tree) */
};

/* The signals whose default action would leave temporaries behind: their
   handlers (installed once, only where the program left the default)
   remove every live temporary of this process, then die of the signal.  */
#define AVM_OUT_N_CLEANUP_SIGNALS 4
extern const int avm_out_cleanup_signals[AVM_OUT_N_CLEANUP_SIGNALS];
/* Install those handlers, the first time only (thread-safe).  */
void avm_out_install_handlers (void);

/* Register PATH (owned by the caller, which keeps it alive until
   avm_out_live_remove) as a live temporary of this process: a file, or a
   directory removed whole when TREE.  Returns its slot, or -1 when
   AVM_OUT_MAX_OPEN are live already.  Call with the cleanup signals
   blocked so that none finds the temporary created but not registered.  */
int avm_out_live_add (char *path, bool tree);
/* Unregister SLOT (-1: nothing).  */
void avm_out_live_remove (int slot);

/* Remove NAME in DFD: a file, a symbolic link (never followed) or a
   directory with everything below it, even directories without write
   permission.  Async-signal-safe (system calls only, buffers on the
   stack).  Best effort: goes on after a failure; 0 or the first -errno.
   DEPTH is 0 for the caller.  */
int avm_out_rm_tree_at (int dfd, const char *name, unsigned depth);

/* Free O and close its descriptors; nothing on disk is touched.  */
void avm_out_dispose (struct avm_out *o);
/* The temporary's data and size made durable (fsync) and its descriptor
   closed; it stays registered until renamed.  0 or -errno (ERR filled).  */
int avm_out_sync_tmp (struct avm_out *o, avm_error_t *err);
