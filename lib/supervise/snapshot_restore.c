/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshots: the restore (avm start --restore), once QEMU's monitor is up:
   the machine type checked, the state handed to QEMU (through lz4 -d when
   compressed), migrate-incoming, the MIGRATION event, cont
   (snapshot_internal.h has the overview).  */
#include "snapshot/snapshot.h"
#include "supervise/internal.h"
#include "supervise/snapshot_internal.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strfmt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

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
        else
          sv_clock_after_restore (sv);
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

void
sv_restore_start (struct sv *sv)
{
  struct restore *rs = &sv->g.restore;
  rs->step = RESTORE_MACHINE;
  sv_info (sv, "restoring snapshot %s", rs->name);
  restore_next (sv);
}

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

/* The restore side of sv_snapshot_event: QEMU's MIGRATION event.  */
void
restore_migration (struct sv *sv, bool done, bool failed)
{
  struct restore *rs = &sv->g.restore;
  if (rs->name && rs->step == RESTORE_INCOMING && (done || failed))
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
