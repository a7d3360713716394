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
 *      "services"); see "helpers that suspend" below for the protocol;
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
 */
#include "snapshot/snapshot.h"
#include "supervise/internal.h"
#include "util/analyzer.h"
#include "util/capture.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strfmt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SAVE_TIMEOUT (600 * USEC_PER_SEC)
#define QEMU_IMG_TIMEOUT_MS 30000
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

static void save_next (struct snapsave *s);

static void
save_free (struct snapsave *s)
{
  if (!s)
    return;
  sv_timer_cancel (&s->timer);
  sv_timer_cancel (&s->ctl_io);
  sv_timer_cancel (&s->ctl_timer);
  free (s->held);
  json_decref (s->services);
  if (s->lz4 > 0)
    kill (s->lz4, SIGKILL); /* (reaped by the supervisor's SIGCHLD handler) */
  if (s->state_fd >= 0)
    close (s->state_fd);
  free (s->name);
  free (s->staging);
  free (s->machine);
  free (s->error);
  json_decref (s->layers);
  free (s);
}

static bool
disk_layered (const struct avm_plan_disk *d)
{
  return !d->readonly;
}

/* The end: reply, clean up what a failure left.  */
static void
save_finish (struct snapsave *s)
{
  struct sv *sv = s->sv;
  json_t *reply;
  if (s->error)
    {
      _cleanup_error_ avm_error_t e = NULL;
      if (s->staging)
        avm_snapshot_remove_tree (s->staging, &e);
      sv_info (sv, "snapshot %s: %s", s->name, s->error);
      reply = json_pack ("{s:b, s:s, s:i}", "ok", 0, "error", s->error, "exit_code", s->exit_code);
    }
  else
    {
      uint64_t now = sv_now (sv);
      _cleanup_free_ char *dir = avm_snapshot_dir (sv->state_dir, s->name);
      sv_info (sv, "snapshot %s saved in %.0f ms (guest paused %.0f ms): %s", s->name,
               (double) (now - s->t_start) / USEC_PER_MSEC, (double) (now - s->t_stopped) / USEC_PER_MSEC,
               dir ? dir : "?");
      reply = json_pack ("{s:b, s:s, s:s?, s:f, s:f}", "ok", 1, "name", s->name, "path", dir, "seconds",
                         (double) (now - s->t_start) / USEC_PER_SEC, "paused",
                         (double) (now - s->t_stopped) / USEC_PER_SEC);
    }
  if (s->req)
    avm_control_reply (s->req, reply);
  else
    json_decref (reply);
  s->req = NULL;
  if (sv->g.save == s)
    sv->g.save = NULL;
  s->finished = true;
  if (s->inflight == 0)
    save_free (s);
}

static void save_fail (struct snapsave *s, int exit_code, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static void on_cont_after_failure (void *data, json_t *ret, json_t *error);
static void save_fail_cont (struct snapsave *s);
static void helper_next (struct snapsave *s);

/* Give up: undo what was done in QEMU (the layer node, the pause), then
   reply.  make lint: false positive: s->error belongs to S, freed with it
   (save_free); the analyzer loses S through the QMP callback data.  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-malloc-leak")
static void
save_fail (struct snapsave *s, int exit_code, const char *fmt, ...)
{
  struct sv *sv = s->sv;
  if (!s->error)
    {
      va_list ap;
      va_start (ap, fmt);
      s->error = avm_vstrdupf (fmt, ap);
      va_end (ap);
      s->exit_code = exit_code;
      if (!s->error)
        s->error = strdup ("out of memory");
    }
  sv_timer_cancel (&s->timer);
  sv_timer_cancel (&s->ctl_io);
  sv_timer_cancel (&s->ctl_timer);
  s->step = SAVE_DONE;
  _cleanup_error_ avm_error_t err = NULL;
  if (s->node_added && sv->g.qmp)
    {
      _cleanup_free_ char *node = avm_strdupf ("avm-snap-%zu", s->disk);
      if (node)
        avm_qmp_send_async (sv->g.qmp, "blockdev-del", json_pack ("{s:s}", "node-name", node), NULL, NULL, &err);
      s->node_added = false;
    }
  /* The helpers asked to suspend are resumed before the guest goes on.  */
  if (!s->failing)
    {
      s->failing = true;
      for (size_t i = 0; s->held && i < sv->plan->nservices; i++)
        if (s->held[i] != HELD_NO)
          {
            s->step = SAVE_RESUME;
            s->helper = 0;
            helper_next (s);
            return;
          }
    }
  save_fail_cont (s);
}
AVM_ANALYZER_IGNORE_END

/* After a failure, once the helpers are resumed: continue the guest, then
   reply.  */
static void
save_fail_cont (struct snapsave *s)
{
  struct sv *sv = s->sv;
  _cleanup_error_ avm_error_t err = NULL;
  s->step = SAVE_DONE;
  if (s->stopped && sv->g.qmp && sv->phase != PHASE_STOPPING
      && avm_qmp_send_async (sv->g.qmp, "cont", NULL, on_cont_after_failure, s, &err) == 0)
    {
      s->stopped = false;
      s->inflight++;
      guest_qmp_update_io (sv);
      return;
    }
  save_finish (s);
}

static void
on_cont_after_failure (void *data, json_t *ret, json_t *error)
{
  struct snapsave *s = data;
  s->inflight--;
  if (!ret && !s->finished)
    sv_info (s->sv, "snapshot %s: QEMU did not continue the guest after the failed save", s->name);
  if (!s->finished)
    save_finish (s);
  else if (s->inflight == 0)
    save_free (s);
}

static const char *
qmp_desc (json_t *error)
{
  const char *desc = NULL;
  json_unpack (error, "{s?s}", "desc", &desc); /* (QMP's error object: desc may be missing) */
  return desc ? desc : "no reply (QEMU closed its monitor)";
}

/* The profile key of the PCI device QEMU names in REASON ("non-migratable
   device: 0000:00:02.0/vhost-user-fs"), from the plan's PCI layout; or
   NULL.  */
static const char *
blocker_key (struct sv *sv, const char *reason)
{
  const char *p = strstr (reason, "0000:00:");
  unsigned slot;
  if (!p || sscanf (p + 8, "%x", &slot) != 1)
    return NULL;
  size_t i;
  json_t *e;
  json_array_foreach (sv->plan->pci, i, e)
    {
      /* (the plan's slots are strings, "0x08") */
      const char *sl = json_string_value (json_object_get (e, "slot"));
      if (sl && strtoul (sl, NULL, 0) == slot)
        return json_string_value (json_object_get (e, "for"));
    }
  return NULL;
}

static void
on_reply (void *data, json_t *ret, json_t *error)
{
  struct snapsave *s = data;
  struct sv *sv = s->sv;
  s->inflight--;
  if (s->finished)
    {
      if (s->inflight == 0)
        save_free (s);
      return;
    }
  s->waiting = false;
  if (s->step == SAVE_DONE || s->failing)
    return; /* (a late answer: the failure is being handled) */
  if (!ret)
    {
      const char *what[] = { "query-migrate",
                             "qom-get",
                             "migrate-set-capabilities",
                             "migrate-set-parameters",
                             "stop",
                             "",
                             "block layer",
                             "getfd",
                             "migrate",
                             "",
                             "",
                             "cont",
                             "" };
      save_fail (s, AVM_EXIT_FAILURE, "QEMU %s failed: %s", what[s->step], qmp_desc (error));
      return;
    }
  switch (s->step)
    {
    case SAVE_QUERY:
      {
        json_t *reasons = json_object_get (ret, "blocked-reasons");
        if (json_array_size (reasons) > 0)
          {
            _cleanup_free_ char *text = strdup ("");
            size_t i;
            json_t *r;
            json_array_foreach (reasons, i, r)
              {
                const char *reason = json_string_value (r) ?: "?";
                const char *key = blocker_key (sv, reason);
                char *n = text ? avm_strdupf ("%s%s%s%s%s%s", text, i ? "; " : "", reason, key ? " (" : "",
                                              key ? key : "", key ? ")" : "")
                               : NULL;
                free (text);
                text = n;
              }
            save_fail (s, AVM_EXIT_FAILURE,
                       "QEMU cannot save this platform: %s; start it without that device to snapshot it "
                       "(avm check -p %s lists what blocks snapshots)",
                       text ? text : "?", sv->plan->profile_path);
            return;
          }
        s->step = SAVE_MACHINE;
        break;
      }
    case SAVE_MACHINE:
      {
        const char *type = json_string_value (ret);
        size_t n = type ? strlen (type) : 0;
        /* "pc-i440fx-7.2-machine": the class name of the versioned type.  */
        if (n > 8 && streq (type + n - 8, "-machine"))
          n -= 8;
        s->machine = type ? strndup (type, n) : NULL;
        s->step = SAVE_CAPS;
        break;
      }
    case SAVE_CAPS:
      s->step = SAVE_PARAMS;
      break;
    case SAVE_PARAMS:
      s->step = SAVE_STOP;
      break;
    case SAVE_STOP:
      s->stopped = true;
      s->t_stopped = sv_now (sv);
      s->step = SAVE_SUSPEND;
      s->helper = 0;
      break;
    case SAVE_DISK:
      if (s->dstep == DISK_ADD)
        {
          s->node_added = true;
          s->dstep = DISK_BACKUP;
        }
      else if (s->dstep == DISK_BACKUP)
        {
          s->dstep = DISK_JOB;
          s->waiting = true; /* the event */
          return;
        }
      else if (s->dstep == DISK_DEL)
        {
          s->node_added = false;
          s->disk++;
          s->dstep = DISK_ADD;
        }
      break;
    case SAVE_GETFD:
      s->step = SAVE_MIGRATE;
      break;
    case SAVE_MIGRATE:
      s->waiting = true; /* the MIGRATION event */
      return;
    case SAVE_CONT:
      s->stopped = false;
      s->step = SAVE_DONE;
      save_finish (s);
      return;
    default:
      break;
    }
  save_next (s);
}

static int
save_send (struct snapsave *s, const char *command, json_t *args)
{
  _cleanup_error_ avm_error_t err = NULL;
  s->waiting = true;
  if (avm_qmp_send_async (s->sv->g.qmp, command, args, on_reply, s, &err) < 0)
    {
      s->waiting = false;
      save_fail (s, AVM_EXIT_FAILURE, "QEMU %s: %s", command, err->msg);
      return -1;
    }
  s->inflight++;
  guest_qmp_update_io (s->sv);
  return 0;
}

/* Run qemu-img (next to QEMU, else on PATH) with ARGS; short, so run to
   its end here.  */
static int
qemu_img (struct sv *sv, char *const *args, avm_error_t *err)
{
  _cleanup_free_ char *dir = strdup (sv->plan->qemu_argv[0]);
  char *slash = dir ? strrchr (dir, '/') : NULL;
  if (slash)
    *slash = '\0';
  _cleanup_free_ char *prog = avm_find_program ("qemu-img", dir);
  if (!prog)
    return avm_error_fail (err, ENOENT, "qemu-img is not installed (Debian: qemu-utils); snapshots need it");
  const char *argv[16] = { prog };
  size_t n = 1;
  for (; n < 15 && args[n - 1]; n++)
    argv[n] = args[n - 1];
  struct avm_capture job = { .argv = (char *const *) argv, .with_stderr = true };
  int r = avm_capture_run (&job, 1, QEMU_IMG_TIMEOUT_MS, err);
  if (r == 0 && !(WIFEXITED (job.status) && WEXITSTATUS (job.status) == 0))
    {
      size_t len = job.out ? strlen (job.out) : 0;
      while (len && job.out[len - 1] == '\n')
        job.out[--len] = '\0';
      r = avm_error_fail (err, EIO, "qemu-img %s failed: %s", args[0], job.out && *job.out ? job.out : "?");
    }
  avm_capture_clear (&job, 1);
  return r;
}

/* Start lz4 (on PATH; Debian: lz4) with ARGS, standard input on IN and
   output on OUT, stderr on /dev/null, in its own process group, default
   signals and an empty mask (the supervisor blocks the ones sd-event
   handles).  Its pid, or -errno with ERR filled.  */
static pid_t
spawn_lz4 (const char *const *args, int in, int out, avm_error_t *err)
{
  _cleanup_free_ char *prog = avm_find_program ("lz4", NULL);
  if (!prog)
    return avm_error_fail (err, ENOENT, "lz4 is not installed (Debian: lz4); save without --compress");
  const char *argv[8] = { prog };
  for (size_t i = 0; i < 6 && args[i]; i++)
    argv[i + 1] = args[i];
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t none, all;
  sigemptyset (&none);
  sigfillset (&all);
  posix_spawn_file_actions_init (&fa);
  posix_spawnattr_init (&at);
  posix_spawn_file_actions_adddup2 (&fa, in, 0);
  posix_spawn_file_actions_adddup2 (&fa, out, 1);
  posix_spawn_file_actions_addopen (&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_setsigmask (&at, &none);
  posix_spawnattr_setsigdefault (&at, &all);
  posix_spawnattr_setpgroup (&at, 0);
  posix_spawnattr_setflags (&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  pid_t pid;
  int e = posix_spawn (&pid, prog, &fa, &at, (char *const *) argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  posix_spawnattr_destroy (&at);
  if (e)
    return avm_error_sys (err, e, "cannot start %s", prog);
  return pid;
}

/* A pipe for the state stream, its buffer widened (1 MiB) so that QEMU and
   lz4 do not take turns every 64 KiB.  */
static int
state_pipe (int p[2], avm_error_t *err)
{
  if (pipe2 (p, O_CLOEXEC) < 0)
    return avm_error_sys (err, errno, "pipe");
  fcntl (p[1], F_SETPIPE_SZ, 1 << 20); /* (a smaller limit only costs speed) */
  return 0;
}

/* The layer file of the current disk, made (empty over the image, a copy
   of the layer a restore runs on, or empty of the disk's size).  */
static int
make_layer (struct snapsave *s, const struct avm_plan_disk *d, char **path, avm_error_t *err)
{
  struct sv *sv = s->sv;
  _cleanup_free_ char *name = avm_snapshot_layer_name (d->name);
  _cleanup_free_ char *p = name ? avm_path_join (s->staging, name) : NULL;
  if (!p || json_object_set_new (s->layers, d->name, json_string (name)) < 0)
    return avm_error_sys (err, ENOMEM, "snapshot");
  int r;
  if (d->layer)
    r = avm_copy_sparse (d->layer, p, 0600, err);
  else if (d->snapshot)
    {
      char *args[] = { "create", "-q", "-f", "qcow2", "-F", d->format, "-b", d->path, p, NULL };
      r = qemu_img (sv, args, err);
    }
  else
    {
      struct stat st;
      if (stat (d->path, &st) < 0)
        return avm_error_sys (err, errno, "disk %s: %s", d->name, d->path);
      char size[32];
      snprintf (size, sizeof size, "%lld", (long long) st.st_size);
      char *args[] = { "create", "-q", "-f", "qcow2", p, size, NULL };
      r = qemu_img (sv, args, err);
    }
  if (r < 0)
    return r;
  *path = steal_pointer (&p);
  return 0;
}

static void
disk_next (struct snapsave *s)
{
  struct sv *sv = s->sv;
  while (s->disk < sv->plan->ndisks && !disk_layered (&sv->plan->disks[s->disk]))
    s->disk++;
  if (s->disk >= sv->plan->ndisks)
    {
      s->step = SAVE_GETFD;
      save_next (s);
      return;
    }
  const struct avm_plan_disk *d = &sv->plan->disks[s->disk];
  _cleanup_free_ char *node = avm_strdupf ("avm-snap-%zu", s->disk);
  _cleanup_free_ char *drive = avm_strdupf (AVM_PLAN_DRIVE_ID_FMT, s->disk);
  if (!node || !drive)
    {
      save_fail (s, AVM_EXIT_FAILURE, "out of memory");
      return;
    }
  switch (s->dstep)
    {
    case DISK_ADD:
      {
        _cleanup_error_ avm_error_t err = NULL;
        _cleanup_free_ char *path = NULL;
        if (make_layer (s, d, &path, &err) < 0)
          {
            save_fail (s, AVM_EXIT_FAILURE, "disk %s: %s", d->name, err->msg);
            return;
          }
        save_send (s, "blockdev-add",
                   json_pack ("{s:s, s:s, s:{s:s, s:s}, s:n}", "driver", "qcow2", "node-name", node, "file", "driver",
                              "file", "filename", path, "backing"));
        return;
      }
    case DISK_BACKUP:
      /* What the guest wrote: the top of the drive (the temporary layer of
         snapshot=on), or all of a disk written in place.  */
      save_send (s, "blockdev-backup",
                 json_pack ("{s:s, s:s, s:s, s:s, s:b}", "job-id", node, "device", drive, "target", node, "sync",
                            d->snapshot || d->layer ? "top" : "full", "auto-dismiss", 1));
      return;
    case DISK_DEL:
      save_send (s, "blockdev-del", json_pack ("{s:s}", "node-name", node));
      return;
    case DISK_JOB:
      return;
    }
}

static int
fsync_path (const char *path, int flags, avm_error_t *err)
{
  _cleanup_close_ int fd = open (path, flags | O_CLOEXEC);
  if (fd < 0 || fsync (fd) < 0)
    return avm_error_sys (err, errno, "%s", path);
  return 0;
}

static int
save_commit (struct snapsave *s, avm_error_t *err)
{
  struct sv *sv = s->sv;
  int r;
  if (fsync (s->state_fd) < 0)
    return avm_error_sys (err, errno, "%s/%s", s->staging, AVM_SNAPSHOT_STATE);
  struct stat st;
  if (fstat (s->state_fd, &st) < 0)
    return avm_error_sys (err, errno, "%s/%s", s->staging, AVM_SNAPSHOT_STATE);
  close (s->state_fd);
  s->state_fd = -1;
  const char *k;
  json_t *v;
  if (sv->plan->ram_file && json_object_set_new (s->layers, "", json_string (AVM_SNAPSHOT_RAM)) < 0)
    return avm_error_sys (err, ENOMEM, "snapshot");
  json_object_foreach (s->layers, k, v)
    {
      _cleanup_free_ char *p = avm_path_join (s->staging, json_string_value (v));
      if (!p)
        return avm_error_sys (err, ENOMEM, "snapshot");
      if ((r = fsync_path (p, O_RDONLY, err)) < 0)
        return r;
    }
  _cleanup_json_ json_t *meta = NULL;
  if ((r = avm_snapshot_plan_facts (sv->plan, &meta, err)) < 0)
    return r;
  time_t now = time (NULL);
  struct tm tm;
  char created[32];
  strftime (created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&now, &tm));
  json_t *qemu = json_object_get (meta, "qemu");
  const char *package = sv->g.qmp ? avm_qmp_qemu_package (sv->g.qmp) : NULL;
  if (json_object_set_new (meta, "format", json_integer (AVM_SNAPSHOT_FORMAT)) < 0
      || json_object_set_new (meta, "name", json_string (s->name)) < 0
      || json_object_set_new (meta, "created", json_string (created)) < 0
      || json_object_set_new (meta, "created_unix", json_integer ((json_int_t) now)) < 0
      || json_object_set_new (meta, "state",
                              json_pack ("{s:s, s:I, s:s*}", "file",
                                         s->compress ? AVM_SNAPSHOT_STATE_LZ4 : AVM_SNAPSHOT_STATE, "size",
                                         (json_int_t) st.st_size, "compression", s->compress ? "lz4" : NULL))
             < 0
      || json_object_set_new (qemu, "machine", s->machine ? json_string (s->machine) : json_null ()) < 0
      || json_object_set_new (qemu, "package", package ? json_string (package) : json_null ()) < 0
      || (sv->plan->restore && json_object_set_new (meta, "restored_from", json_string (sv->plan->restore)) < 0)
      || (sv->plan->ram_file && json_object_set_new (meta, "ram", json_string (AVM_SNAPSHOT_RAM)) < 0)
      || (s->services && json_object_set (meta, "services", s->services) < 0)
      || json_object_set_new (meta, "paused_ms",
                              json_integer ((json_int_t) ((sv_now (sv) - s->t_stopped) / USEC_PER_MSEC)))
             < 0)
    return avm_error_sys (err, ENOMEM, "snapshot");
  size_t i;
  json_t *d;
  json_array_foreach (json_object_get (meta, "disks"), i, d)
    {
      json_t *layer = json_object_get (s->layers, json_string_value (json_object_get (d, "name")));
      if (layer && json_object_set (d, "layer", layer) < 0)
        return avm_error_sys (err, ENOMEM, "snapshot");
    }
  _cleanup_free_ char *text = json_dumps (meta, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  _cleanup_free_ char *path = avm_path_join (s->staging, AVM_SNAPSHOT_META);
  if (!text || !path)
    return avm_error_sys (err, ENOMEM, "snapshot");
  size_t len = strlen (text);
  text[len] = '\0';
  if ((r = avm_write_file_atomic (path, text, len, 0600, err)) < 0)
    return r;
  if ((r = fsync_path (s->staging, O_RDONLY | O_DIRECTORY, err)) < 0)
    return r;
  if ((r = avm_snapshot_commit (sv->state_dir, s->name, s->staging, s->replace, err)) < 0)
    return r;
  free (s->staging);
  s->staging = NULL; /* (in place: not removed on a later failure) */
  _cleanup_free_ char *store = avm_snapshot_store (sv->state_dir);
  if (store)
    fsync_path (store, O_RDONLY | O_DIRECTORY, err);
  return 0;
}

/* ---- helpers that suspend ---------------------------------------------- */
/*
 * services.NAME.snapshot: suspend, with snapshot_control naming a
 * socketpair resource: the service has one end (${fd:NAME}), avm the other
 * (NAME.peer).  The requests are Cuttlefish's, as run_cvd writes them to
 * secure_env's -snapshot_control_fd: a LauncherAction (one byte, 'A' =
 * kExtended) followed by an ExtendedLauncherAction protobuf with its
 * suspend (field 5) or resume (field 6) member set to the empty message,
 * serialized as 2a 00 or 32 00; the answer is one byte, LauncherResponse
 * 'S' (kSuccess).  The framing between the two differs by release:
 *   launcher-action (Android 15, 15 QPR1/QPR2, 16 and google/android-
 *     cuttlefish main): 'A', a host-order uint32 length, the protobuf:
 *     41 02 00 00 00 2a 00 (suspend), 41 02 00 00 00 32 00 (resume);
 *   launcher-action-typed (Android 14 QPR2, QPR3): 'A', a host-order
 *     uint32 ExtendedActionType (kSuspend 5, kResume 6), the uint32 length,
 *     the protobuf: 41 05 00 00 00 02 00 00 00 2a 00 (suspend),
 *     41 06 00 00 00 02 00 00 00 32 00 (resume).
 * (android14-release and QPR1 have no snapshot control: secure_env ignores
 * the flag, --undefok, so the profile refuses the save there.)  Sources:
 * google/android-cuttlefish 9b10c273 (2026-08-22)
 * base/cvd/cuttlefish/host/libs/command_util/util.cc RunLauncherAction,
 * ReadLauncherActionFromFd; .../command_util/runner/defs.h LauncherAction,
 * LauncherResponse; .../runner/run_cvd.proto; .../process_monitor/
 * process_monitor.cc SuspendResumeImpl (run_cvd's side: the request, then
 * the response awaited, for suspend and for resume);
 * .../commands/secure_env/suspend_resume_handler.cpp (secure_env's side:
 * suspend answers 'S' once its worker threads acknowledged, resume at once;
 * an unexpected request ends its handler thread, unanswered);
 * device.google.cuttlefish android14-qpr2-release 45db0625
 * host/libs/command_util/launcher_message.cc WriteToFd,
 * host/libs/command_util/runner/defs.h ExtendedActionType.
 * The exchange is event driven (an sd-event io source and a timer): a
 * suspend waits for secure_env's worker threads to finish what they do,
 * which may be a KeyMint operation of seconds.
 */

#define HELPER_TIMEOUT (5 * USEC_PER_SEC)
#define LAUNCHER_ACTION_EXTENDED 'A'
#define LAUNCHER_RESPONSE_SUCCESS 'S'

/* The request for SUSPEND (else resume) in FORMAT, into BUF; its length.  */
static size_t
helper_request (enum avm_snapshot_control_format format, bool suspend, unsigned char buf[16])
{
  uint32_t len = 2, type = suspend ? 5 : 6; /* ExtendedActionType kSuspend, kResume */
  size_t n = 0;
  buf[n++] = LAUNCHER_ACTION_EXTENDED;
  if (format == AVM_SNAPSHOT_CONTROL_LAUNCHER_ACTION_TYPED)
    {
      memcpy (buf + n, &type, 4); /* (host order, as the C++ struct is written) */
      n += 4;
    }
  memcpy (buf + n, &len, 4);
  n += 4;
  buf[n++] = suspend ? 0x2a : 0x32; /* field 5 or 6, length-delimited */
  buf[n++] = 0x00;                  /* the empty Suspend or Resume message */
  return n;
}

static const struct avm_plan_service *
helper_def (struct snapsave *s)
{
  return &s->sv->plan->services[s->helper];
}

static void
helper_done (struct snapsave *s)
{
  sv_timer_cancel (&s->ctl_io);
  sv_timer_cancel (&s->ctl_timer);
  s->helper++;
  helper_next (s);
}

/* An answer on the control socket.  */
static int
on_helper_io (sd_event_source *src, int fd, uint32_t revents, void *data)
{
  struct snapsave *s = data;
  const struct avm_plan_service *d = helper_def (s);
  bool suspend = s->step == SAVE_SUSPEND;
  unsigned char c;
  ssize_t n = recv (fd, &c, 1, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return 0;
  if (n == 1 && c == LAUNCHER_RESPONSE_SUCCESS)
    {
      if (suspend)
        s->held[s->helper] = HELD_SUSPENDED;
      else
        {
          s->held[s->helper] = HELD_NO;
          sv_info (s->sv, "snapshot %s: services.%s resumed", s->name, d->name);
        }
      helper_done (s);
      return 0;
    }
  char what[64];
  if (n == 1)
    snprintf (what, sizeof what, "answered %s0x%02x", c == 'E' ? "'E' (error), " : "", c);
  else
    snprintf (what, sizeof what, "%s", n == 0 ? "closed its control socket" : strerror (errno));
  if (suspend)
    save_fail (s, AVM_EXIT_FAILURE, "services.%s did not suspend for the save: it %s (snapshot_control %s)", d->name,
               what, d->snapshot_control);
  else
    {
      sv_info (s->sv, "snapshot %s: services.%s did not acknowledge its resume: it %s", s->name, d->name, what);
      s->held[s->helper] = HELD_NO;
      helper_done (s);
    }
  return 0;
}

static int
on_helper_timeout (sd_event_source *src, uint64_t usec, void *data)
{
  struct snapsave *s = data;
  const struct avm_plan_service *d = helper_def (s);
  s->ctl_timer = sym_sd_event_source_disable_unref (s->ctl_timer);
  if (s->step == SAVE_SUSPEND)
    save_fail (s, AVM_EXIT_FAILURE,
               "services.%s did not acknowledge the suspend request within %llu s (snapshot_control %s); the guest "
               "runs on",
               d->name, (unsigned long long) (HELPER_TIMEOUT / USEC_PER_SEC), d->snapshot_control);
  else
    {
      sv_info (s->sv, "snapshot %s: services.%s did not acknowledge its resume within %llu s", s->name, d->name,
               (unsigned long long) (HELPER_TIMEOUT / USEC_PER_SEC));
      s->held[s->helper] = HELD_NO;
      helper_done (s);
    }
  return 0;
}

/* Copy the state files of suspended helper D into the staging directory
   (service-NAME/BASENAME), recording them (or their absence) in
   S->services.  */
static int
helper_files (struct snapsave *s, const struct avm_plan_service *d, avm_error_t *err)
{
  if (!d->snapshot_files || !d->snapshot_files[0])
    return 0;
  _cleanup_free_ char *sub = avm_strdupf ("service-%s", d->name);
  _cleanup_free_ char *dir = sub ? avm_path_join (s->staging, sub) : NULL;
  json_t *files = json_array ();
  if (!dir || !files || (!s->services && !(s->services = json_object ()))
      || json_object_set_new (s->services, d->name, json_pack ("{s:o}", "files", files)) < 0)
    return avm_error_sys (err, ENOMEM, "snapshot");
  if (mkdir (dir, 0700) < 0)
    return avm_error_sys (err, errno, "%s", dir);
  for (char **f = d->snapshot_files; *f; f++)
    {
      const char *base = strrchr (*f, '/') + 1;
      _cleanup_free_ char *rel = avm_strdupf ("%s/%s", sub, base);
      _cleanup_free_ char *to = avm_path_join (dir, base);
      struct stat st;
      int r;
      if (!rel || !to)
        return avm_error_sys (err, ENOMEM, "snapshot");
      if (stat (*f, &st) < 0 && errno == ENOENT)
        {
          if (json_array_append_new (files, json_pack ("{s:s, s:b}", "path", *f, "absent", 1)) < 0)
            return avm_error_sys (err, ENOMEM, "snapshot");
          continue;
        }
      if ((r = avm_copy_sparse (*f, to, 0600, err)) < 0 || (r = fsync_path (to, O_RDONLY, err)) < 0)
        {
          avm_error_prefix (err, "services.%s: state file", d->name);
          return r;
        }
      if (json_array_append_new (files, json_pack ("{s:s, s:s}", "path", *f, "file", rel)) < 0)
        return avm_error_sys (err, ENOMEM, "snapshot");
    }
  return fsync_path (dir, O_RDONLY | O_DIRECTORY, err);
}

/* The next helper to ask (SAVE_SUSPEND: each that suspends; SAVE_RESUME:
   each asked), else the next step.  */
static void
helper_next (struct snapsave *s)
{
  struct sv *sv = s->sv;
  const struct avm_plan *plan = sv->plan;
  bool suspend = s->step == SAVE_SUSPEND;
  for (; s->helper < plan->nservices && s->helper < sv->n; s->helper++)
    {
      const struct avm_plan_service *d = &plan->services[s->helper];
      struct svc *svc = &sv->svcs[s->helper];
      if (d->snapshot != AVM_SNAPSHOT_SUSPEND || (!suspend && s->held[s->helper] == HELD_NO))
        continue;
      _cleanup_free_ char *peer = avm_strdupf ("%s.peer", d->snapshot_control);
      int fd = avm_resources_fd (sv->res, peer);
      bool running = svc->pid > 0 && (svc->state == SVC_STARTING || svc->state == SVC_READY);
      if (suspend && (!running || fd < 0))
        {
          save_fail (s, AVM_EXIT_FAILURE, "services.%s cannot suspend for the save: %s", d->name,
                     fd < 0 ? "its control socket is not open" : svc_state_name (svc->state));
          return;
        }
      if (!running || fd < 0)
        {
          s->held[s->helper] = HELD_NO; /* (gone: nothing to resume) */
          continue;
        }
      /* What a request that timed out earlier left unread goes first.  */
      unsigned char junk[64];
      while (recv (fd, junk, sizeof junk, MSG_DONTWAIT) > 0)
        ;
      unsigned char req[16];
      size_t len = helper_request (d->snapshot_control_format, suspend, req);
      ssize_t n = send (fd, req, len, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n != (ssize_t) len)
        {
          const char *why = n < 0 ? strerror (errno) : "a short write";
          if (suspend)
            {
              save_fail (s, AVM_EXIT_FAILURE, "services.%s: the suspend request: %s", d->name, why);
              return;
            }
          sv_info (sv, "snapshot %s: services.%s: the resume request: %s", s->name, d->name, why);
          s->held[s->helper] = HELD_NO;
          continue;
        }
      if (suspend)
        s->held[s->helper] = HELD_ASKED;
      else if (s->held[s->helper] == HELD_ASKED)
        {
          /* It never acknowledged the suspend: its late answer would be
             taken for this one's; not awaited.  */
          sv_info (sv, "snapshot %s: services.%s asked to resume", s->name, d->name);
          s->held[s->helper] = HELD_NO;
          continue;
        }
      int r = sym_sd_event_add_io (sv->e, &s->ctl_io, fd, EPOLLIN, on_helper_io, s);
      if (r >= 0)
        r = sv_timer (sv, &s->ctl_timer, HELPER_TIMEOUT, on_helper_timeout, s);
      if (r < 0)
        {
          if (suspend)
            save_fail (s, AVM_EXIT_FAILURE, "services.%s: %s", d->name, strerror (-r));
          else
            {
              s->held[s->helper] = HELD_NO;
              sv_timer_cancel (&s->ctl_io);
              continue;
            }
        }
      return; /* on_helper_io or on_helper_timeout goes on */
    }
  if (suspend)
    {
      /* All suspended: their files hold still.  */
      for (size_t i = 0; i < plan->nservices && i < sv->n; i++)
        if (s->held[i] == HELD_SUSPENDED)
          {
            _cleanup_error_ avm_error_t err = NULL;
            if (helper_files (s, &plan->services[i], &err) < 0)
              {
                save_fail (s, AVM_EXIT_FAILURE, "%s", err->msg);
                return;
              }
            sv_info (sv, "snapshot %s: services.%s suspended", s->name, plan->services[i].name);
          }
      s->step = SAVE_DISK;
      s->disk = 0;
      s->dstep = DISK_ADD;
      save_next (s);
    }
  else if (s->failing)
    save_fail_cont (s);
  else
    {
      s->step = SAVE_CONT;
      save_next (s);
    }
}

static void
save_next (struct snapsave *s)
{
  struct sv *sv = s->sv;
  if (!sv->g.qmp || !sv->g.qmp_ready)
    {
      save_fail (s, AVM_EXIT_FAILURE, "QEMU's monitor went away");
      return;
    }
  switch (s->step)
    {
    case SAVE_QUERY:
      save_send (s, "query-migrate", NULL);
      break;
    case SAVE_MACHINE:
      save_send (s, "qom-get", json_pack ("{s:s, s:s}", "path", "/machine", "property", "type"));
      break;
    case SAVE_CAPS:
      /* snapshot.fast: the RAM file is copied, not streamed.  */
      save_send (s, "migrate-set-capabilities",
                 json_pack ("{s:[{s:s, s:b}, {s:s, s:b}]}", "capabilities", "capability", "events", "state", 1,
                            "capability", "x-ignore-shared", "state", sv->plan->ram_file != NULL));
      break;
    case SAVE_PARAMS:
      /* A file on this host: no reason to throttle (QEMU's default is
         128 MiB/s).  */
      save_send (s, "migrate-set-parameters", json_pack ("{s:I}", "max-bandwidth", (json_int_t) 1 << 50));
      break;
    case SAVE_STOP:
      save_send (s, "stop", NULL);
      break;
    case SAVE_DISK:
      disk_next (s);
      break;
    case SAVE_GETFD:
      {
        _cleanup_error_ avm_error_t err = NULL;
        if (sv->plan->ram_file)
          {
            /* The guest is paused: its RAM file holds still.  */
            _cleanup_free_ char *ram = avm_path_join (s->staging, AVM_SNAPSHOT_RAM);
            if (!ram || avm_copy_sparse (sv->plan->ram_file, ram, 0600, &err) < 0)
              {
                save_fail (s, AVM_EXIT_FAILURE, "the guest RAM file: %s", err ? err->msg : "out of memory");
                return;
              }
          }
        /* --compress: QEMU writes into a pipe, lz4 from it into the
           state file.  */
        int fd = s->state_fd, p[2] = { -1, -1 };
        if (s->compress)
          {
            static const char *const args[] = { "-q", "-1", "-c", NULL };
            pid_t pid = state_pipe (p, &err) < 0 ? -1 : spawn_lz4 (args, p[0], s->state_fd, &err);
            if (pid < 0)
              {
                if (p[0] >= 0)
                  {
                    close (p[0]);
                    close (p[1]);
                  }
                save_fail (s, AVM_EXIT_FAILURE, "%s", err->msg);
                return;
              }
            s->lz4 = pid;
            close (p[0]);
            fd = p[1];
          }
        s->waiting = true;
        int r
            = avm_qmp_send_fd_async (sv->g.qmp, "getfd", json_pack ("{s:s}", "fdname", FDNAME), fd, on_reply, s, &err);
        if (p[1] >= 0)
          close (p[1]); /* (QMP has its own copy until it is sent; QEMU then its own) */
        if (r < 0)
          {
            s->waiting = false;
            save_fail (s, AVM_EXIT_FAILURE, "QEMU getfd: %s", err->msg);
            return;
          }
        s->inflight++;
        guest_qmp_update_io (sv);
        break;
      }
    case SAVE_MIGRATE:
      save_send (s, "migrate", json_pack ("{s:s}", "uri", "fd:" FDNAME));
      break;
    case SAVE_SUSPEND:
      helper_next (s);
      break;
    case SAVE_COMMIT:
      {
        _cleanup_error_ avm_error_t err = NULL;
        if (save_commit (s, &err) < 0)
          {
            save_fail (s, AVM_EXIT_FAILURE, "%s", err->msg);
            return;
          }
        s->step = SAVE_RESUME;
        s->helper = 0;
        helper_next (s);
        break;
      }
    case SAVE_CONT:
      save_send (s, "cont", NULL);
      break;
    default:
      break;
    }
}

static int
on_save_timeout (sd_event_source *src, uint64_t usec, void *data)
{
  struct snapsave *s = data;
  s->timer = sym_sd_event_source_disable_unref (s->timer);
  save_fail (s, AVM_EXIT_FAILURE, "QEMU did not finish within %llu s",
             (unsigned long long) (SAVE_TIMEOUT / USEC_PER_SEC));
  return 0;
}

/* ---- restore ------------------------------------------------------------ */

enum restore_step
{
  RESTORE_MACHINE,
  RESTORE_CAPS,
  RESTORE_GETFD,
  RESTORE_INCOMING, /* then the MIGRATION event */
  RESTORE_CONT,
  RESTORE_DONE,
  RESTORE_FAILED, /* waiting for QEMU to exit (it does, on a failed load) */
};

/* How long QEMU may take to exit after a failed load before avm stops it.  */
#define RESTORE_EXIT_WAIT (2 * USEC_PER_SEC)

static void restore_next (struct sv *sv);

static void restore_give_up (struct sv *sv, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* The restore cannot go on: with --restore-or-boot QEMU is stopped and the
   cold plan boots (guest.c), else the start fails.  */
static void
restore_give_up (struct sv *sv, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  _cleanup_free_ char *msg = avm_vstrdupf (fmt, ap);
  va_end (ap);
  if (sv->o->fallback_plan && sv->g.qemu.pid > 0)
    {
      sv_info (sv, "%s", msg ? msg : "the restore failed");
      svc_kill (&sv->g.qemu);
      return;
    }
  sv_fail (sv, AVM_EXIT_QEMU, "%s", msg ? msg : "the restore failed");
}

static void
on_restore_reply (void *data, json_t *ret, json_t *error)
{
  struct sv *sv = data;
  struct restore *rs = &sv->g.restore;
  if (rs->step == RESTORE_DONE || sv->phase == PHASE_STOPPING)
    return;
  if (!ret)
    {
      if (error)
        restore_give_up (sv, "snapshot %s: QEMU refused to restore it: %s", rs->name, qmp_desc (error));
      return; /* (no reply: QEMU exited; guest_exited says why) */
    }
  switch (rs->step)
    {
    case RESTORE_MACHINE:
      {
        const char *type = json_string_value (ret) ?: "?";
        const char *want = json_string_value (json_object_get (json_object_get (rs->meta, "qemu"), "machine"));
        size_t n = strlen (type);
        if (n > 8 && streq (type + n - 8, "-machine"))
          n -= 8;
        if (want && (strlen (want) != n || strncmp (want, type, n)))
          {
            restore_give_up (sv,
                             "snapshot %s was saved on machine type %s; this QEMU runs %.*s: save it again from a "
                             "platform started as now",
                             rs->name, want, (int) n, type);
            return;
          }
        rs->step = RESTORE_CAPS;
        break;
      }
    case RESTORE_CAPS:
      rs->step = RESTORE_GETFD;
      break;
    case RESTORE_GETFD:
      rs->step = RESTORE_INCOMING;
      break;
    case RESTORE_INCOMING:
      return; /* the MIGRATION event */
    case RESTORE_CONT:
      {
        rs->step = RESTORE_DONE;
        uint64_t now = sv_now (sv);
        sv->g.boots = 1;
        sv->g.resets = 0;
        sv->g.t_booted = now;
        sv_info (sv, "guest restored from snapshot %s in %.0f ms (state loaded in %.0f ms)", rs->name,
                 (double) (now - sv->g.t_qemu) / USEC_PER_MSEC, (double) (now - rs->t_incoming) / USEC_PER_MSEC);
        for (size_t k = 0; sv->plan->web_urls && sv->plan->web_urls[k]; k++)
          sv_info (sv, "web display, output %zu: %s", k, sv->plan->web_urls[k]);
        sv_set_phase (sv, PHASE_RUNNING, NULL);
        if (sv->o->stop_after_boot)
          sv_request_stop (sv, "--stop-after-boot");
        return;
      }
    default:
      return;
    }
  restore_next (sv);
}

static void
restore_send (struct sv *sv, const char *command, json_t *args, int fd)
{
  _cleanup_error_ avm_error_t err = NULL;
  int r = fd >= 0 ? avm_qmp_send_fd_async (sv->g.qmp, command, args, fd, on_restore_reply, sv, &err)
                  : avm_qmp_send_async (sv->g.qmp, command, args, on_restore_reply, sv, &err);
  if (r < 0)
    restore_give_up (sv, "snapshot %s: %s", sv->g.restore.name, err->msg);
  guest_qmp_update_io (sv);
}

static void
restore_next (struct sv *sv)
{
  struct restore *rs = &sv->g.restore;
  switch (rs->step)
    {
    case RESTORE_MACHINE:
      restore_send (sv, "qom-get", json_pack ("{s:s, s:s}", "path", "/machine", "property", "type"), -1);
      break;
    case RESTORE_CAPS:
      restore_send (sv, "migrate-set-capabilities",
                    json_pack ("{s:[{s:s, s:b}, {s:s, s:b}]}", "capabilities", "capability", "events", "state", 1,
                               "capability", "x-ignore-shared", "state", json_object_get (rs->meta, "ram") != NULL),
                    -1);
      break;
    case RESTORE_GETFD:
      {
        json_t *state = json_object_get (rs->meta, "state");
        const char *file = json_string_value (json_object_get (state, "file")) ?: AVM_SNAPSHOT_STATE;
        bool lz4 = json_object_get (state, "compression") != NULL;
        _cleanup_free_ char *path = avm_path_join (rs->dir, file);
        _cleanup_close_ int fd = path ? open (path, O_RDONLY | O_CLOEXEC) : -1;
        if (fd >= 0 && lz4)
          {
            /* lz4 -d from the file into a pipe QEMU reads.  */
            _cleanup_error_ avm_error_t err = NULL;
            static const char *const args[] = { "-d", "-q", "-c", NULL };
            int p[2];
            pid_t pid = state_pipe (p, &err) < 0 ? -1 : spawn_lz4 (args, fd, p[1], &err);
            if (pid < 0)
              {
                restore_give_up (sv, "snapshot %s: %s", rs->name, err->msg);
                return;
              }
            close (p[1]);
            close (fd);
            fd = p[0];
          }
        if (fd < 0)
          {
            restore_give_up (sv, "snapshot %s: %s: %s", rs->name, path ? path : "state",
                             strerror (path ? errno : ENOMEM));
            return;
          }
        restore_send (sv, "getfd", json_pack ("{s:s}", "fdname", FDNAME), fd);
        break;
      }
    case RESTORE_INCOMING:
      rs->t_incoming = sv_now (sv);
      restore_send (sv, "migrate-incoming", json_pack ("{s:s}", "uri", "fd:" FDNAME), -1);
      break;
    case RESTORE_CONT:
      restore_send (sv, "cont", NULL, -1);
      break;
    default:
      break;
    }
}

/* The state files of the helpers that suspend (services.NAME.snapshot:
   suspend), as the snapshot restored has them: copied back (through a
   temporary file renamed into place), or removed when the save found
   none; before any helper starts.  A file the snapshot does not list is
   left as it is (a service that did not suspend then).  */
int
sv_restore_service_files (struct sv *sv, avm_error_t *err)
{
  json_t *meta = sv->o->restore_meta;
  json_t *saved = json_object_get (meta, "services");
  const char *name = sv->plan->restore ?: "?";
  if (!meta)
    return 0;
  for (size_t i = 0; i + 1 < sv->plan->nservices; i++)
    {
      const struct avm_plan_service *d = &sv->plan->services[i];
      if (d->snapshot != AVM_SNAPSHOT_SUSPEND || !d->snapshot_files)
        continue;
      json_t *files = json_object_get (json_object_get (saved, d->name), "files");
      if (!files)
        {
          sv_info (sv, "snapshot %s has no state files of services.%s: it starts with those it has", name, d->name);
          continue;
        }
      for (char **f = d->snapshot_files; *f; f++)
        {
          const char *base = strrchr (*f, '/') + 1;
          json_t *e, *hit = NULL;
          size_t k;
          json_array_foreach (files, k, e)
            {
              const char *p = json_string_value (json_object_get (e, "path"));
              const char *b = p ? strrchr (p, '/') : NULL;
              if (b && streq (b + 1, base))
                hit = e;
            }
          if (!hit)
            continue;
          const char *file = json_string_value (json_object_get (hit, "file"));
          if (!file)
            {
              if (unlink (*f) < 0 && errno != ENOENT)
                return avm_error_sys (err, errno, "snapshot %s: services.%s: %s", name, d->name, *f);
              continue;
            }
          _cleanup_free_ char *from = avm_path_join (sv->o->restore_dir, file);
          _cleanup_free_ char *tmp = avm_strdupf ("%s.avm-restore", *f);
          _cleanup_free_ char *dir = strndup (*f, (size_t) (base - *f));
          int r;
          if (!from || !tmp || !dir)
            return avm_error_sys (err, ENOMEM, "snapshot %s", name);
          if (strstr (file, "..") || (r = avm_mkdir_p (dir, 0755, err)) == 0)
            r = strstr (file, "..") ? avm_error_fail (err, EINVAL, "\"%s\" is outside the snapshot", file)
                                    : avm_copy_sparse (from, tmp, 0600, err);
          if (r == 0 && rename (tmp, *f) < 0)
            r = avm_error_sys (err, errno, "%s", *f);
          if (r < 0)
            {
              unlink (tmp);
              avm_error_prefix (err, "snapshot %s: services.%s: state file", name, d->name);
              return r;
            }
        }
      sv_info (sv, "snapshot %s: state files of services.%s restored", name, d->name);
    }
  return 0;
}

void
sv_restore_start (struct sv *sv)
{
  struct restore *rs = &sv->g.restore;
  rs->step = RESTORE_MACHINE;
  sv_info (sv, "restoring snapshot %s", rs->name);
  restore_next (sv);
}

/* ---- events and the control command ------------------------------------- */

static int
on_restore_failed (sd_event_source *src, uint64_t usec, void *data)
{
  struct sv *sv = data;
  struct restore *rs = &sv->g.restore;
  rs->timer = sym_sd_event_source_disable_unref (rs->timer);
  _cleanup_free_ char *tail = svc_tail (&sv->g.qemu);
  restore_give_up (sv, "snapshot %s: QEMU could not restore it: the migration failed%s%s; log: %s", rs->name,
                   tail ? "; last output: " : "", tail ? tail : "", avm_logsink_path (sv->g.qemu.log));
  return 0;
}

/* The migration completed: commit once the compressor (if any) is done
   with what QEMU wrote.  */
static void
save_compressed (struct snapsave *s)
{
  if (!s->migrated || s->lz4 > 0)
    return; /* (waiting for the other one) */
  if (s->compress && !(WIFEXITED (s->lz4_status) && WEXITSTATUS (s->lz4_status) == 0))
    {
      _cleanup_free_ char *how = sv_describe_exit (WIFEXITED (s->lz4_status) ? WEXITSTATUS (s->lz4_status) : -1,
                                                   WIFSIGNALED (s->lz4_status) ? WTERMSIG (s->lz4_status) : 0);
      save_fail (s, AVM_EXIT_FAILURE, "lz4 %s while compressing the state", how ? how : "failed");
      return;
    }
  s->step = SAVE_COMMIT;
  save_next (s);
}

bool
sv_snapshot_child (struct sv *sv, pid_t pid, int status)
{
  struct snapsave *s = sv->g.save;
  if (!s || s->lz4 != pid)
    return false;
  s->lz4 = 0;
  s->lz4_status = status;
  if (s->step == SAVE_MIGRATE && !s->finished)
    save_compressed (s);
  return true;
}

void
sv_snapshot_event (struct sv *sv, const char *event, json_t *data)
{
  struct snapsave *s = sv->g.save;
  struct restore *rs = &sv->g.restore;
  const char *status = json_string_value (json_object_get (data, "status"));
  if (streq (event, "MIGRATION") && status)
    {
      bool done = streq (status, "completed"), failed = streq (status, "failed") || streq (status, "cancelled");
      if (s && s->step == SAVE_MIGRATE && s->waiting && (done || failed))
        {
          s->waiting = false;
          if (failed)
            save_fail (s, AVM_EXIT_FAILURE, "QEMU's migration to the state file %s (see the QEMU log)", status);
          else
            {
              s->migrated = true;
              save_compressed (s);
            }
        }
      else if (rs->name && rs->step == RESTORE_INCOMING && (done || failed))
        {
          if (failed)
            {
              /* QEMU says why on its standard error and exits: its exit
                 reports it (guest.c) with those lines.  */
              rs->step = RESTORE_FAILED;
              sv_timer (sv, &rs->timer, RESTORE_EXIT_WAIT, on_restore_failed, sv);
            }
          else
            {
              rs->step = RESTORE_CONT;
              restore_next (sv);
            }
        }
    }
  else if ((streq (event, "BLOCK_JOB_COMPLETED") || streq (event, "BLOCK_JOB_CANCELLED")) && s && s->step == SAVE_DISK
           && s->dstep == DISK_JOB)
    {
      const char *error = json_string_value (json_object_get (data, "error"));
      s->waiting = false;
      if (streq (event, "BLOCK_JOB_CANCELLED") || error)
        {
          save_fail (s, AVM_EXIT_FAILURE, "disk %s: QEMU's copy of the guest's writes failed: %s",
                     sv->plan->disks[s->disk].name, error ? error : "cancelled");
          return;
        }
      s->dstep = DISK_DEL;
      save_next (s);
    }
}

json_t *
sv_control_snapshot_save (struct sv *sv, json_t *request, struct avm_control_request *req)
{
  const char *name = NULL;
  int replace = 0, compress = 0;
  _cleanup_error_ avm_error_t err = NULL;
  if (json_unpack (request, "{s:s, s?b, s?b}", "name", &name, "replace", &replace, "compress", &compress) < 0
      || avm_snapshot_name_check (name, &err) < 0)
    return json_pack ("{s:b, s:s, s:i}", "ok", 0, "error", err ? err->msg : "\"name\" must be a string", "exit_code",
                      AVM_EXIT_USAGE);
  /* A helper holding guest state (services.NAME.snapshot: refuse): a
     restore would lose it.  Devices QEMU does not migrate are QEMU's to
     refuse (query-migrate), with its own words.  */
  _cleanup_free_ char *held = NULL;
  size_t nheld = 0;
  for (char **b = sv->plan->snapshot_blockers; b && *b; b++)
    if (strncmp (*b, "services.", 9) == 0)
      {
        const char *colon = strchr (*b, ':');
        int len = colon ? (int) (colon - *b) : (int) strlen (*b);
        char *n = avm_strdupf ("%s%s%.*s", held ? held : "", held ? ", " : "", len, *b);
        if (!n)
          return json_pack ("{s:b, s:s, s:i}", "ok", 0, "error", "out of memory", "exit_code", AVM_EXIT_FAILURE);
        free (held);
        held = n;
        nheld++;
      }
  if (held)
    {
      _cleanup_free_ char *msg
          = avm_strdupf ("snapshot %s: %s %s guest state (snapshot: refuse): a restore would start %s anew and "
                         "lose it; disable %s to snapshot this platform (avm check -p %s lists what blocks "
                         "snapshots)",
                         name, held, nheld == 1 ? "holds" : "hold", nheld == 1 ? "it" : "them",
                         nheld == 1 ? "it" : "them", sv->plan->profile_path);
      return json_pack ("{s:b, s:s, s:i}", "ok", 0, "error", msg ? msg : "out of memory", "exit_code",
                        AVM_EXIT_FAILURE);
    }
  const char *why = NULL;
  if (sv->g.save)
    why = "a snapshot is being saved already; try again when it is done";
  else if (sv->phase != PHASE_RUNNING || !sv->g.qmp_ready || !sv->g.qmp)
    why = sv->phase == PHASE_STOPPING ? "the instance is stopping"
                                      : "the guest has not booted yet: a snapshot is of a booted platform; try again "
                                        "once avm status says running";
  if (why)
    return json_pack ("{s:b, s:s, s:i}", "ok", 0, "error", why, "exit_code", AVM_EXIT_FAILURE);
  _cleanup_free_ char *dir = avm_snapshot_dir (sv->state_dir, name);
  _cleanup_free_ char *store = avm_snapshot_store (sv->state_dir);
  struct snapsave *s = calloc (1, sizeof *s);
  if (!dir || !store || !s)
    {
      free (s);
      return json_pack ("{s:b, s:s, s:i}", "ok", 0, "error", "out of memory", "exit_code", AVM_EXIT_FAILURE);
    }
  *s = (struct snapsave) { .sv = sv,
                           .req = req,
                           .replace = replace,
                           .compress = compress,
                           .state_fd = -1,
                           .lz4_status = -1,
                           .t_start = sv_now (sv) };
  struct stat st;
  int r = 0;
  if (!replace && lstat (dir, &st) == 0)
    r = avm_error_fail (&err, EEXIST, "snapshot %s exists; delete it (avm snapshot delete %s) or save with --replace",
                        name, name);
  else if (!(s->name = strdup (name)) || !(s->staging = avm_snapshot_staging_dir (sv->state_dir, name))
           || !(s->layers = json_object ()) || !(s->held = calloc (sv->plan->nservices + 1, 1)))
    r = avm_error_sys (&err, ENOMEM, "snapshot");
  else if ((r = avm_mkdir_p (store, 0700, &err)) == 0 && (r = avm_snapshot_remove_tree (s->staging, &err)) == 0)
    {
      if (mkdir (s->staging, 0700) < 0)
        r = avm_error_sys (&err, errno, "snapshot %s: %s", name, s->staging);
      else
        {
          _cleanup_free_ char *state
              = avm_path_join (s->staging, compress ? AVM_SNAPSHOT_STATE_LZ4 : AVM_SNAPSHOT_STATE);
          s->state_fd = state ? open (state, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
          if (s->state_fd < 0)
            r = avm_error_sys (&err, state ? errno : ENOMEM, "snapshot %s: %s", name, state ? state : "state");
        }
    }
  if (r < 0)
    {
      _cleanup_error_ avm_error_t e2 = NULL;
      if (s->staging && s->state_fd >= 0)
        avm_snapshot_remove_tree (s->staging, &e2);
      json_t *reply = json_pack ("{s:b, s:s, s:i}", "ok", 0, "error", err->msg, "exit_code", err->exit_code);
      save_free (s);
      return reply;
    }
  sv->g.save = s;
  sv_info (sv, "snapshot %s: saving", name);
  sv_timer (sv, &s->timer, SAVE_TIMEOUT, on_save_timeout, s);
  /* The reply comes when the save is done (or failed): the connection
     waits for it beyond the control socket's idle timeout (5 s).  */
  avm_control_request_wait (req, SAVE_TIMEOUT + 10 * USEC_PER_SEC);
  s->step = SAVE_QUERY;
  save_next (s);
  return AVM_CONTROL_PENDING;
}

void
sv_snapshot_clear (struct sv *sv)
{
  sv_timer_cancel (&sv->g.restore.timer);
  struct snapsave *s = sv->g.save;
  if (!s)
    return;
  /* QEMU's monitor is closed (its callbacks ran): no cont, and nothing in
     flight; the helpers asked to suspend are asked to resume, not
     awaited.  */
  s->stopped = false;
  s->node_added = false;
  s->inflight = 0;
  for (size_t i = 0; s->held && i < sv->plan->nservices && i < sv->n; i++)
    if (s->held[i] != HELD_NO)
      {
        const struct avm_plan_service *d = &sv->plan->services[i];
        _cleanup_free_ char *peer = avm_strdupf ("%s.peer", d->snapshot_control);
        int fd = avm_resources_fd (sv->res, peer);
        unsigned char req[16];
        size_t len = helper_request (d->snapshot_control_format, false, req);
        if (fd >= 0 && send (fd, req, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
          sv_info (sv, "snapshot %s: services.%s: the resume request: %s", s->name, d->name, strerror (errno));
        s->held[i] = HELD_NO;
      }
  s->failing = true;
  save_fail (s, AVM_EXIT_FAILURE, "the instance stopped while the snapshot was being saved");
}
