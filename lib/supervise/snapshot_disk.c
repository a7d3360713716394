/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshots: the disks' layers (qemu-img, then QEMU's blockdev-add,
   blockdev-backup, blockdev-del), the commit (fsync, the metadata, the
   staging directory renamed into place) and the lz4 process with its pipe
   that the save and the restore share (snapshot_internal.h has the
   overview).  */
#include "snapshot/snapshot.h"
#include "supervise/internal.h"
#include "supervise/snapshot_internal.h"
#include "util/capture.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strfmt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define QEMU_IMG_TIMEOUT_MS 30000

static bool
disk_layered (const struct avm_plan_disk *d)
{
  return !d->readonly;
}

/* Run qemu-img (next to QEMU, else on PATH) with ARGS; short, so run to
   its end here.  */
static int
qemu_img (struct sv *sv, char *const *args, avm_error_t *err)
{
  _cleanup_free_ char *prog = avm_plan_qemu_tool (sv->plan, "qemu-img");
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
pid_t
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
int
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

void
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

int
fsync_path (const char *path, int flags, avm_error_t *err)
{
  _cleanup_close_ int fd = open (path, flags | O_CLOEXEC);
  if (fd < 0 || fsync (fd) < 0)
    return avm_error_sys (err, errno, "%s", path);
  return 0;
}

int
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
