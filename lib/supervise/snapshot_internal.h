/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Snapshots of the running platform (avm-snapshot(1), lib/snapshot/), over
 * the supervisor's own QMP connection, never blocking the loop for long:
 *
 * Save (control command {"command":"snapshot-save","name":N,"replace":B}),
 * only once the guest has booted:
 *   0. a helper holding guest state (the plan's snapshot blockers that are
 *      services, services.NAME.snapshot: refuse) refuses it at once,
 *      naming each; the devices among the blockers are left to QEMU;
 *   1. query-migrate: QEMU's blocked-reasons (a vhost-user-fs share, a
 *      vhost-user-gpu) refuse the save with QEMU's words and the profile
 *      key the device is for; qom-get /machine type: the versioned machine;
 *   2. the events capability, no bandwidth limit; stop (vCPUs paused);
 *   2b. each helper that suspends (services.NAME.snapshot: suspend) is
 *      asked to, over its control socket, and its acknowledgement awaited
 *      (HELPER_TIMEOUT: one that does not answer fails the save, naming
 *      it); its state files (snapshot_files) are then copied into the
 *      snapshot (service-NAME/BASENAME, listed in the metadata's
 *      "services"); see snapshot_helpers.c for the protocol;
 *   3. per writable disk, a qcow2 layer in the staging directory:
 *      qemu-img makes it over the disk's image (or as a copy of the layer a
 *      restored platform runs on), blockdev-add opens it without its
 *      backing, blockdev-backup sync=top (sync=full for a disk written in
 *      place) copies what the guest wrote into it, blockdev-del closes it.
 *      (Not drive-backup: on a snapshot=on drive QEMU 7.2 opens its new
 *      target as temporary and deletes the disk image at exit: verified.)
 *   4. getfd with the state file (no shell: no exec: URI), migrate to
 *      fd:, the MIGRATION event; QEMU is then "postmigrate";
 *   5. fsync, the metadata written, the staging directory renamed into
 *      place; each suspended helper resumed (its acknowledgement awaited),
 *      then cont: the order of Cuttlefish's run_cvd, which suspends the
 *      guest before the host processes and resumes them before the guest
 *      (server_loop_impl_snapshot.cpp HandleSuspend, HandleResume).  Any
 *      failure after stop removes the staging directory, resumes the
 *      helpers asked to suspend and continues the guest.
 * Restore (avm start --restore): the helpers' state files are copied back
 * before any helper starts (sv_restore_service_files); QEMU started with
 * -incoming defer (with snapshot.fast, on the snapshot's RAM file mapped
 * private: plan); when its monitor is up: the machine type checked, getfd
 * with the state file (or a pipe from lz4 -d), migrate-incoming fd:, the
 * MIGRATION event, cont; the guest counts as booted (READY=1).
 *
 * The files: snapshot_save.c (the save's state machine, the control
 * command, the events), snapshot_disk.c (the disks' layers, the commit,
 * the lz4 process and its pipe), snapshot_helpers.c (the helpers that
 * suspend, their state files copied and restored), snapshot_restore.c (the
 * restore).  Shared between them only: internal.h declares what the rest
 * of the supervisor uses.
 */
#pragma once

#include "plan/plan.h"
#include "supervise/internal.h"
#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FDNAME "avm-snapshot"

enum save_step
{
  SAVE_QUERY,   /* query-migrate */
  SAVE_MACHINE, /* qom-get /machine type */
  SAVE_CAPS,    /* migrate-set-capabilities */
  SAVE_PARAMS,  /* migrate-set-parameters */
  SAVE_STOP,    /* stop */
  SAVE_SUSPEND, /* per helper that suspends: the request, its acknowledgement; then its files */
  SAVE_DISK,    /* per disk: blockdev-add, blockdev-backup, the job, blockdev-del */
  SAVE_GETFD,   /* getfd */
  SAVE_MIGRATE, /* migrate, then the MIGRATION event */
  SAVE_COMMIT,  /* files synced, metadata, rename */
  SAVE_RESUME,  /* per suspended helper: the request, its acknowledgement (also after a failure) */
  SAVE_CONT,    /* cont */
  SAVE_DONE,
};

enum disk_step
{
  DISK_ADD,
  DISK_BACKUP,
  DISK_JOB, /* waiting for BLOCK_JOB_COMPLETED */
  DISK_DEL,
};

struct snapsave
{
  struct sv *sv;
  struct avm_control_request *req;
  char *name;
  bool replace;
  enum save_step step;
  size_t disk; /* SAVE_DISK: index into plan->disks */
  enum disk_step dstep;
  bool node_added;   /* the layer's node is open in QEMU */
  bool stopped;      /* we paused the guest */
  bool waiting;      /* a request or event is outstanding */
  unsigned inflight; /* requests QEMU has not answered: S lives on until they are */
  bool finished;     /* replied to; freed when nothing is in flight */
  char *staging;
  char *machine;
  int state_fd;
  bool compress;  /* the state through lz4 (state.lz4) */
  pid_t lz4;      /* the compressor while it runs, else 0 */
  int lz4_status; /* its wait status once it exited, else -1 */
  bool migrated;  /* QEMU reported the migration completed */
  json_t *layers; /* disk name -> layer file name */
  uint64_t t_start, t_stopped;
  sd_event_source *timer;
  char *error;
  int exit_code;
  /* Helpers that suspend: per plan service, how far (enum held).  */
  unsigned char *held;
  size_t helper;           /* SAVE_SUSPEND, SAVE_RESUME: the plan service asked */
  bool failing;            /* resuming the helpers after a failure, then cont */
  sd_event_source *ctl_io; /* its control socket, while its answer is awaited */
  sd_event_source *ctl_timer;
  json_t *services; /* the metadata's "services": name -> {"files": [...]} */
};

enum held
{
  HELD_NO,        /* not asked (or resumed) */
  HELD_ASKED,     /* the suspend request sent, not acknowledged */
  HELD_SUSPENDED, /* acknowledged: its resume is owed */
};

/* snapshot_save.c: the next step of the save; give up (undo what was done
   in QEMU, resume the helpers, continue the guest, reply); after the
   helpers are resumed: continue the guest and reply; send COMMAND for the
   current step (0, or -1 with the save failed); QMP's error description.  */
void save_next (struct snapsave *s);
void save_fail (struct snapsave *s, int exit_code, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
void save_fail_cont (struct snapsave *s);
int save_send (struct snapsave *s, const char *command, json_t *args);
const char *qmp_desc (json_t *error);

/* snapshot_disk.c: the current disk's next step (SAVE_DISK); the state
   fsynced, the metadata written, the staging directory renamed into place
   (SAVE_COMMIT); fsync PATH opened with FLAGS; lz4 started with ARGS (its
   pid, or -errno); a pipe for the state stream.  */
void disk_next (struct snapsave *s);
int save_commit (struct snapsave *s, avm_error_t *err);
int fsync_path (const char *path, int flags, avm_error_t *err);
pid_t spawn_lz4 (const char *const *args, int in, int out, avm_error_t *err);
int state_pipe (int p[2], avm_error_t *err);

/* snapshot_helpers.c: the next helper to ask (SAVE_SUSPEND, SAVE_RESUME),
   else the next step; the request for SUSPEND (else resume) in FORMAT,
   into BUF (its length).  */
void helper_next (struct snapsave *s);
size_t helper_request (enum avm_snapshot_control_format format, bool suspend, unsigned char buf[16]);

/* snapshot_restore.c: QEMU's MIGRATION event for the restore (DONE:
   completed; FAILED: failed or cancelled).  */
void restore_migration (struct sv *sv, bool done, bool failed);
