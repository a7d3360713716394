/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshots: the save (snapshot_internal.h has the overview): its state
   machine over QMP, its timeout, the compressor's exit, the events it
   waits for (MIGRATION, BLOCK_JOB_COMPLETED; the restore's are
   snapshot_restore.c's), the control command and the teardown.  */
#include "snapshot/snapshot.h"
#include "supervise/internal.h"
#include "supervise/snapshot_internal.h"
#include "util/analyzer.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strfmt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SAVE_TIMEOUT (600 * USEC_PER_SEC)

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

static void on_cont_after_failure (void *data, json_t *ret, json_t *error);

/* Give up: undo what was done in QEMU (the layer node, the pause), then
   reply.  make lint: false positive: s->error belongs to S, freed with it
   (save_free); the analyzer loses S through the QMP callback data.  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-malloc-leak")
void
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
void
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

const char *
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

int
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

void
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

/* ---- events and the control command ------------------------------------- */

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
      else
        restore_migration (sv, done, failed);
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
