/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime directory of an instance ($XDG_RUNTIME_DIR/avm/N, /run/avm/N as
 * root; see avm_instance_run_dir): FIFOs, sockets and the lock that says the
 * instance is running.  The lock is an flock on DIR/lock held for as long as
 * the supervisor lives (the descriptor is close-on-exec); the file holds the
 * supervisor's pid.  A directory nobody holds the lock on is stale: its
 * contents are removed (symbolic links are removed, never followed) and the
 * directory is reused.
 */
#pragma once

#include "util/error.h"

#include <stdbool.h>
#include <sys/types.h>

#define AVM_RUNDIR_LOCK "lock"

struct avm_rundir;

/* Create PATH (missing parents 0755, PATH itself 0700), lock it and empty a
   stale one.  Refuses a PATH that is a symbolic link, is not owned by the
   current user or is writable by group or others, and one locked by another
   process ("instance N is already running (pid P, ...)").  */
int avm_rundir_acquire (const char *path, struct avm_rundir **out, avm_error_t *err);

/* Remove the directory's contents and the directory, then unlock and free D.
   D is freed even on failure.  NULL is accepted.  */
int avm_rundir_release (struct avm_rundir *d, avm_error_t *err);

/* Unlock and free D, leaving the directory and its contents in place (the
   next acquire will find it stale).  NULL is accepted.  */
void avm_rundir_close (struct avm_rundir *d);

/* Release ignoring errors, for the cleanup attribute.  */
void avm_rundir_releasep (struct avm_rundir **d);
#define _cleanup_rundir_ __attribute__ ((cleanup (avm_rundir_releasep)))

/* Directory descriptor (O_PATH is not used: it works with every *at() call
   and fdopendir on a dup) and the path as given.  */
int avm_rundir_fd (const struct avm_rundir *d);
const char *avm_rundir_path (const struct avm_rundir *d);

/* Whether some process holds the lock of PATH: 1 and *PID (0 when the lock
   file holds no pid) if so, 0 if not (missing directory or stale lock),
   -errno on failure.  Does not create anything.  */
int avm_rundir_holder (const char *path, pid_t *pid, avm_error_t *err);

/* Remove everything inside the directory DIRFD except the entry named KEEP
   (may be NULL).  Subdirectories are removed recursively; symbolic links are
   removed, never followed; a mount point inside is not entered (EXDEV).
   WHAT names the directory in messages.  */
int avm_rundir_empty_at (int dirfd, const char *what, const char *keep, avm_error_t *err);
