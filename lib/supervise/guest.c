/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest side of the supervisor: QEMU started last, its QMP monitor
 * (connected as soon as the socket accepts, handshake in the event loop),
 * the consoles read by avm into their logs and matched against the boot
 * patterns, READY=1 when the guest has booted, the boot timeout, the
 * watchdog and start-timeout extensions, and QEMU's stop stages:
 * system_powerdown, quit, SIGTERM, SIGKILL.
 */
#include "supervise/internal.h"
#include "util/cleanup.h"
#include "util/analyzer.h"
#include "util/fs.h"
#include "util/strfmt.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- consoles ---------------------------------------------------------- */

static bool
matches (json_t *patterns, const char *line)
{
  size_t i;
  json_t *p;
  json_array_foreach (patterns, i, p)
    {
      const char *s = json_string_value (p);
      if (s && *s && strstr (line, s))
        return true;
    }
  return false;
}

static void
guest_booted (struct sv *sv, const char *line)
{
  if (sv->phase == PHASE_STOPPING)
    {
      /* Being stopped: not READY, and the stop goes on as it began.  */
      sv_info (sv, "guest booted while stopping; stop goes on");
      return;
    }
  sv->boots++;
  sv->resets = 0;
  if (sv->boots > 1)
    {
      sv_info (sv, "guest booted again (boot %u)", sv->boots);
      return;
    }
  sv->t_booted = sv_now (sv);
  sv_timer_cancel (&sv->boot_timer);
  sv_timer_cancel (&sv->extend_timer);
  sv_timer_cancel (&sv->progress_timer);
  if (sv->phase != PHASE_STOPPING)
    sv->phase = PHASE_RUNNING;
  sv_info (sv, "guest booted in %.1f s", (double) (sv->t_booted - sv->t_qemu) / USEC_PER_SEC);
  avm_notify (&sv->notifier, "READY=1\nSTATUS=running, booted in %.1f s",
              (double) (sv->t_booted - sv->t_qemu) / USEC_PER_SEC);
  if (sv->o->stop_after_boot && sv->phase != PHASE_STOPPING)
    sv_request_stop (sv, "--stop-after-boot");
}

static void
on_console_line (void *data, const char *line, size_t len)
{
  struct console *c = data;
  struct sv *sv = c->sv;
  /* Only the guest can boot: lines written before QEMU started (by a
     helper holding the FIFO) are logged, not matched.  */
  if (!c->boot || sv->t_qemu == 0)
    return;
  if (matches (sv->boot_failed, line))
    {
      if (sv->boots == 0)
        sv_fail (sv, AVM_EXIT_BOOT_FAILED, "the guest reported a boot failure on console %s: %.*s (see %s)", c->name,
                 (int) (len > 300 ? 300 : len), line, avm_logsink_path (c->log));
      else
        sv_info (sv, "guest reported a failure after booting: %.*s", (int) (len > 300 ? 300 : len), line);
    }
  else if (matches (sv->boot_completed, line))
    guest_booted (sv, line);
}

static int
on_console (sd_event_source *src, int fd, uint32_t revents, void *data)
{
  struct console *c = data;
  int r = avm_logsink_drain (c->log, fd);
  sv_log_check (c->sv, c->log);
  if (r < 0)
    /* The FIFO is held open read-write: no EOF; an error ends reading.  */
    c->src = sym_sd_event_source_disable_unref (c->src);
  return 0;
}

static int
consoles_setup (struct sv *sv, avm_error_t *err)
{
  size_t n = avm_resources_count (sv->res);
  sv->cons = calloc (n ? n : 1, sizeof *sv->cons);
  if (!sv->cons)
    return avm_error_sys (err, ENOMEM, "consoles");
  for (size_t i = 0; i < n; i++)
    {
      const struct avm_resource_fd *rf = avm_resources_at (sv->res, i);
      if (!json_is_true (json_object_get (rf->def, "log")))
        continue;
      struct console *c = &sv->cons[sv->ncons++];
      c->sv = sv;
      c->res = rf;
      c->name = json_string_value (json_object_get (rf->def, "console"));
      if (!c->name)
        c->name = rf->name;
      c->boot = sv->boot_console && streq (sv->boot_console, c->name);
      _cleanup_free_ char *file = avm_strdupf ("console-%s", c->name);
      int r = avm_logsink_open (&sv->logcfg, file, c->name, 6, &c->log, err);
      if (r < 0)
        return r;
      avm_logsink_set_line_cb (c->log, on_console_line, c);
      const char *tee = json_string_value (json_object_get (rf->def, "tee"));
      if (tee)
        {
          _cleanup_free_ char *wname = avm_strdupf ("%s.write", tee);
          int wfd = avm_resources_fd (sv->res, wname);
          if (wfd < 0)
            return avm_error_input (err, "console %s: tee resource \"%s\" has no write end", c->name, tee);
          /* Only avm writes this end: non-blocking never reaches a helper.  */
          fcntl (wfd, F_SETFL, fcntl (wfd, F_GETFL) | O_NONBLOCK);
          avm_logsink_set_tee (c->log, wfd);
        }
      if ((r = sym_sd_event_add_io (sv->e, &c->src, rf->fd, EPOLLIN, on_console, c)) < 0)
        return avm_error_sys (err, -r, "console %s: event source", c->name);
    }
  return 0;
}

/* ---- QMP ----------------------------------------------------------------- */

static void qmp_drop (struct sv *sv);

static void
on_qmp_event (void *data, const char *event, json_t *obj, json_t *ts)
{
  struct sv *sv = data;
  if (streq (event, "SHUTDOWN"))
    {
      sv->guest_shutdown = json_is_true (json_object_get (obj, "guest"));
      free (sv->shutdown_reason);
      const char *reason = json_string_value (json_object_get (obj, "reason"));
      sv->shutdown_reason = reason ? strdup (reason) : NULL;
      if (sv->phase != PHASE_STOPPING)
        sv_info (sv, "guest is shutting down (%s)", reason ? reason : "?");
    }
  else if (streq (event, "RESET") && sv->phase != PHASE_STOPPING)
    {
      const char *reason = json_string_value (json_object_get (obj, "reason")) ?: "?";
      sv->resets++;
      sv_info (sv, "guest reset (%s)", reason);
      /* A guest that keeps resetting before it boots (a panic, apexd or
         init aborting into a reboot) never reports a failure itself.  */
      if (sv->reset_limit > 0 && sv->resets > sv->reset_limit)
        {
          const char *log = "";
          for (size_t i = 0; i < sv->ncons; i++)
            if (sv->cons[i].boot)
              log = avm_logsink_path (sv->cons[i].log);
          sv_fail (sv, AVM_EXIT_BOOT_FAILED,
                   "the guest reset %u times without completing a boot (a boot loop; last reset: %s); see %s "
                   "(boot.reset_limit is %u)",
                   sv->resets, reason, *log ? log : "the QEMU log", sv->reset_limit);
        }
    }
  else if (streq (event, "GUEST_PANICKED"))
    sv_info (sv, "guest panicked");
}

static void
qmp_became_ready (struct sv *sv)
{
  struct svc *q = sv->qemu;
  sv->qmp_ready = true;
  sv->t_qmp = sv_now (sv);
  sv_timer_cancel (&q->timer);
  avm_qmp_set_event_handler (sv->qmp, on_qmp_event, sv);
  sv_info (sv, "qemu: monitor ready in %.0f ms (QEMU %s)", (double) (sv->t_qmp - q->t_spawn) / USEC_PER_MSEC,
           avm_qmp_qemu_version (sv->qmp));
  q->state = SVC_READY;
  q->t_ready = sv->t_qmp;
  if (sv->phase == PHASE_STOPPING)
    {
      guest_stop (sv);
      return;
    }
  if (json_array_size (sv->boot_completed) == 0)
    {
      /* Nothing to wait for: QEMU running is as ready as it gets.  */
      sv->phase = PHASE_RUNNING;
      sv->t_booted = sv->t_qmp;
      avm_notify (&sv->notifier, "READY=1\nSTATUS=running (no boot pattern in the profile)");
      if (sv->o->stop_after_boot)
        sv_request_stop (sv, "--stop-after-boot");
    }
  else if (sv->phase == PHASE_QEMU)
    {
      sv->phase = PHASE_BOOTING;
      sv_status (sv);
    }
}

static void
qmp_update_io (struct sv *sv)
{
  if (!sv->qmp_src)
    return;
  uint32_t ev = avm_qmp_io_events (sv->qmp);
  if (ev == 0)
    sym_sd_event_source_set_enabled (sv->qmp_src, SD_EVENT_OFF);
  else
    sym_sd_event_source_set_io_events (sv->qmp_src, ev);
}

static int
on_qmp_io (sd_event_source *src, int fd, uint32_t revents, void *data)
{
  struct sv *sv = data;
  _cleanup_error_ avm_error_t err = NULL;
  int r = avm_qmp_process (sv->qmp, &err);
  if (r < 0)
    {
      sv_info (sv, "qemu: monitor failed: %s", err->msg);
      qmp_drop (sv);
      return 0;
    }
  if (r == 1)
    {
      /* QEMU closed the monitor: it is exiting (SIGCHLD follows).  */
      qmp_drop (sv);
      return 0;
    }
  if (!sv->qmp_ready && avm_qmp_is_ready (sv->qmp))
    qmp_became_ready (sv);
  qmp_update_io (sv);
  return 0;
}

static void
qmp_drop (struct sv *sv)
{
  sv->qmp_src = sym_sd_event_source_disable_unref (sv->qmp_src);
  sv_timer_cancel (&sv->qmp_timer);
  avm_qmp_close (sv->qmp);
  sv->qmp = NULL;
  sv->qmp_ready = false;
}

static int on_qmp_connect (sd_event_source *src, uint64_t usec, void *data);

static int
qmp_try_connect (struct sv *sv)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  size_t len = strlen (sv->qmp_path);
  if (len >= sizeof sa.sun_path)
    return -ENAMETOOLONG;
  memcpy (sa.sun_path, sv->qmp_path, len + 1);
  _cleanup_close_ int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    return -errno;
  _cleanup_error_ avm_error_t err = NULL;
  int r = avm_qmp_new (steal_fd (&fd), sv->qmp_path, &sv->qmp, &err);
  if (r < 0)
    return r;
  r = sym_sd_event_add_io (sv->e, &sv->qmp_src, avm_qmp_fd (sv->qmp), EPOLLIN, on_qmp_io, sv);
  if (r < 0)
    {
      avm_qmp_close (sv->qmp);
      sv->qmp = NULL;
      return r;
    }
  qmp_update_io (sv);
  return 0;
}

static int
on_qmp_connect (sd_event_source *src, uint64_t usec, void *data)
{
  struct sv *sv = data;
  sv->qmp_timer = sym_sd_event_source_unref (sv->qmp_timer);
  if (sv->qemu->pid <= 0 || sv->qmp)
    return 0;
  int r = qmp_try_connect (sv);
  if (r == 0)
    return 0;
  if (r != -ENOENT && r != -ECONNREFUSED && r != -EAGAIN)
    {
      sv_fail (sv, AVM_EXIT_QEMU, "qemu: cannot connect to the monitor %s: %s", sv->qmp_path, strerror (-r));
      return 0;
    }
  uint64_t since = sv_now (sv) - sv->qemu->t_spawn;
  sv_timer (sv, &sv->qmp_timer, since < 100 * USEC_PER_MSEC ? USEC_PER_MSEC : 10 * USEC_PER_MSEC, on_qmp_connect, sv);
  return 0;
}

static int
on_qmp_timeout (sd_event_source *src, uint64_t usec, void *data)
{
  struct sv *sv = data;
  sv->qemu->timer = sym_sd_event_source_unref (sv->qemu->timer);
  if (!sv->qmp_ready && sv->phase != PHASE_STOPPING)
    {
      _cleanup_free_ char *tail = svc_tail (sv->qemu);
      sv_fail (sv, AVM_EXIT_QEMU, "qemu: its monitor %s did not answer within %llu s%s%s; log: %s", sv->qmp_path,
               (unsigned long long) (QMP_TIMEOUT / USEC_PER_SEC), tail ? "; last output: " : "", tail ? tail : "",
               avm_logsink_path (sv->qemu->log));
    }
  return 0;
}

/* ---- boot timeout, watchdog, extension -------------------------------- */

/* A slow boot (minutes under TCG) says that it is still under way.  */
static int
on_boot_progress (sd_event_source *src, uint64_t usec, void *data)
{
  struct sv *sv = data;
  sv->progress_timer = sym_sd_event_source_disable_unref (sv->progress_timer);
  if (sv->boots > 0 || (sv->phase != PHASE_QEMU && sv->phase != PHASE_BOOTING))
    return 0;
  sv_info (sv, "still booting (%.0f s)", (double) (sv_now (sv) - sv->t_qemu) / USEC_PER_SEC);
  sv_timer (sv, &sv->progress_timer, BOOT_PROGRESS_INTERVAL, on_boot_progress, sv);
  return 0;
}

static int
on_boot_timeout (sd_event_source *src, uint64_t usec, void *data)
{
  struct sv *sv = data;
  sv->boot_timer = sym_sd_event_source_unref (sv->boot_timer);
  if (sv->boots > 0 || sv->phase == PHASE_STOPPING)
    return 0;
  const char *console = sv->boot_console ? sv->boot_console : "?";
  const char *log = "";
  for (size_t i = 0; i < sv->ncons; i++)
    if (sv->cons[i].boot)
      log = avm_logsink_path (sv->cons[i].log);
  sv_fail (sv, AVM_EXIT_BOOT_TIMEOUT,
           "the guest did not boot within %.0f s (no \"%s\" on console %s); see %s, or raise boot.timeout",
           (double) sv->boot_timeout / USEC_PER_SEC, json_string_value (json_array_get (sv->boot_completed, 0)),
           console, log);
  return 0;
}

enum probe_mode
{
  PROBE_WATCHDOG, /* WATCHDOG=1 when QEMU answers */
  PROBE_EXTEND,   /* EXTEND_TIMEOUT_USEC= while booting, when QEMU answers */
  PROBE_REFRESH,  /* only the cached status (avm status) */
};

struct probe
{
  struct sv *sv;
  enum probe_mode mode;
};

/* make lint: false positive: sv->qemu_status belongs to the supervisor (freed
   with it); the analyzer loses SV, reached through the callback data.  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-malloc-leak")
static void
on_query_status (void *data, json_t *ret, json_t *error)
{
  struct probe *p = data;
  struct sv *sv = p->sv;
  enum probe_mode mode = p->mode;
  free (p);
  if (!ret)
    return;
  const char *st = json_string_value (json_object_get (ret, "status"));
  free (sv->qemu_status);
  sv->qemu_status = st ? strdup (st) : NULL;
  if (mode == PROBE_EXTEND)
    {
      if (sv->phase == PHASE_BOOTING || sv->phase == PHASE_QEMU)
        avm_notify (&sv->notifier, "EXTEND_TIMEOUT_USEC=%llu\nSTATUS=booting (%.0f s, QEMU %s)",
                    (unsigned long long) EXTEND_BY, (double) (sv_now (sv) - sv->t_qemu) / USEC_PER_SEC,
                    st ? st : "?");
    }
  else if (mode == PROBE_WATCHDOG)
    avm_notify (&sv->notifier, "WATCHDOG=1");
}
AVM_ANALYZER_IGNORE_END

static void
query_status (struct sv *sv, enum probe_mode mode)
{
  struct probe *p = calloc (1, sizeof *p);
  if (!p)
    return;
  *p = (struct probe) { sv, mode };
  _cleanup_error_ avm_error_t err = NULL;
  if (avm_qmp_send_async (sv->qmp, "query-status", NULL, on_query_status, p, &err) < 0)
    free (p);
  qmp_update_io (sv);
}

void
guest_watchdog (struct sv *sv)
{
  if (sv->qmp_ready)
    query_status (sv, PROBE_WATCHDOG);
  else if (sv->phase != PHASE_STOPPING)
    avm_notify (&sv->notifier, "WATCHDOG=1"); /* starting: bounded by the readiness timeouts */
}

void
guest_watchdog_refresh (struct sv *sv)
{
  query_status (sv, PROBE_REFRESH);
}

void
guest_extend (struct sv *sv)
{
  if (sv->phase == PHASE_HELPERS)
    avm_notify (&sv->notifier, "EXTEND_TIMEOUT_USEC=%llu", (unsigned long long) EXTEND_BY);
  else if (sv->qmp_ready && sv->phase == PHASE_BOOTING)
    query_status (sv, PROBE_EXTEND);
}

/* ---- QEMU life cycle --------------------------------------------------- */

int
guest_setup (struct sv *sv, avm_error_t *err)
{
  json_t *boot = json_object_get (sv->pj, "boot");
  sv->boot_completed = json_object_get (boot, "completed");
  sv->boot_failed = json_object_get (boot, "failed");
  sv->boot_console = json_string_value (json_object_get (boot, "console"));
  json_t *t = json_object_get (boot, "timeout");
  sv->boot_timeout = json_is_number (t) ? (uint64_t) (json_number_value (t) * USEC_PER_SEC) : 0;
  sv->reset_limit = (unsigned) json_integer_value (json_object_get (boot, "reset_limit"));
  sv->qmp_path = avm_path_join (sv->run_dir, "qmp.sock");
  return consoles_setup (sv, err);
}

int
guest_start (struct sv *sv)
{
  struct svc *q = sv->qemu;
  _cleanup_error_ avm_error_t err = NULL;
  sv->phase = PHASE_QEMU;
  sv_status (sv);
  if (svc_start (q, &err) < 0)
    {
      sv_fail (sv, AVM_EXIT_QEMU, "%s", err->msg);
      return -1;
    }
  sv->t_qemu = q->t_spawn;
  sv_info (sv, "qemu: started (pid %d, %s)", (int) q->pid, q->program);
  sv_timer (sv, &q->timer, QMP_TIMEOUT, on_qmp_timeout, sv);
  if (sv->boot_timeout > 0 && json_array_size (sv->boot_completed) > 0)
    sv_timer (sv, &sv->boot_timer, sv->boot_timeout, on_boot_timeout, sv);
  if (json_array_size (sv->boot_completed) > 0)
    sv_timer (sv, &sv->progress_timer, BOOT_PROGRESS_INTERVAL, on_boot_progress, sv);
  on_qmp_connect (NULL, 0, sv);
  return 0;
}

void
guest_exited (struct sv *sv)
{
  struct svc *q = sv->qemu;
  _cleanup_free_ char *how = sv_describe_exit (q->exit_code, q->exit_signal);
  qmp_drop (sv);
  sv_timer_cancel (&sv->boot_timer);
  sv_timer_cancel (&sv->progress_timer);
  sv_timer_cancel (&sv->stop_timer);
  /* Whatever the guest wrote last is still in the FIFOs.  */
  for (size_t i = 0; i < sv->ncons; i++)
    if (sv->cons[i].src)
      avm_logsink_drain (sv->cons[i].log, sv->cons[i].res->fd);
  if (sv->phase == PHASE_STOPPING)
    {
      q->state = SVC_EXITED;
      sv_info (sv, "qemu: %s%s", how, q->killed && q->exit_signal != SIGKILL ? " (after SIGKILL)" : "");
      sv_stop_continue (sv);
      return;
    }
  q->state = q->exit_code == 0 ? SVC_EXITED : SVC_FAILED;
  if (q->exit_code == 0 && sv->guest_shutdown)
    {
      sv_info (sv, "the guest powered off (%s): stopping", sv->shutdown_reason ?: "guest-shutdown");
      sv_request_stop (sv, "the guest powered off");
      return;
    }
  _cleanup_free_ char *tail = svc_tail (q);
  /* Some hosts give /dev/kvm but abort or hang QEMU once a vCPU runs.  */
  const char *accel = json_string_value (json_object_get (json_object_get (sv->pj, "qemu"), "accel"));
  bool kvm_hint = accel && streq (accel, "kvm") && sv->boots == 0;
  sv_fail (sv, AVM_EXIT_QEMU, "qemu %s%s%s%s%s; log: %s%s", how, sv->shutdown_reason ? " after a shutdown: " : "",
           sv->shutdown_reason ? sv->shutdown_reason : "", tail ? "; last output: " : "", tail ? tail : "",
           avm_logsink_path (q->log),
           kvm_hint ? "; it ran under KVM before the guest booted: if this host's KVM cannot run guests (avm check "
                      "runs a vCPU to tell), --set machine.accel=tcg runs without it"
                    : "");
}

static int
on_qemu_stop_timeout (sd_event_source *src, uint64_t usec, void *data)
{
  struct sv *sv = data;
  struct svc *q = sv->qemu;
  sv->stop_timer = sym_sd_event_source_unref (sv->stop_timer);
  if (q->pid <= 0)
    return 0;
  switch (sv->qstop)
    {
    case QSTOP_POWERDOWN:
      if (sv->stopped_booting)
        ;
      else if (q->stop_timeout > 0)
        sv_info (sv, "qemu: the guest did not power off within %.0f s: quit",
                 (double) q->stop_timeout / USEC_PER_SEC);
      else
        sv_info (sv, "qemu: quit");
      if (sv->qmp_ready)
        {
          _cleanup_error_ avm_error_t err = NULL;
          sv->qstop = QSTOP_QUIT;
          if (avm_qmp_send_async (sv->qmp, "quit", NULL, NULL, NULL, &err) == 0)
            {
              qmp_update_io (sv);
              sv_timer (sv, &sv->stop_timer, QMP_QUIT_TIMEOUT, on_qemu_stop_timeout, sv);
              break;
            }
        }
      /* fall through */
    case QSTOP_QUIT:
      sv_info (sv, "qemu: SIGTERM");
      sv->qstop = QSTOP_TERM;
      kill (q->pid, SIGTERM);
      sv_timer (sv, &sv->stop_timer, QEMU_TERM_TIMEOUT, on_qemu_stop_timeout, sv);
      break;
    case QSTOP_TERM:
    default:
      sv_info (sv, "qemu: still running after SIGTERM: SIGKILL");
      sv->qstop = QSTOP_KILL;
      svc_kill (q);
      break;
    }
  return 0;
}

/* Start (or continue, when QMP comes up late) QEMU's stop sequence.  */
void
guest_stop (struct sv *sv)
{
  struct svc *q = sv->qemu;
  if (q->pid <= 0)
    return;
  if (sv->kill_now)
    {
      sv->qstop = QSTOP_KILL;
      svc_kill (q);
      return;
    }
  if (sv->qstop != QSTOP_NONE)
    return;
  q->state = SVC_STOPPING;
  /* A guest that has not booted yet cannot act on the power button (an
     Android guest handles it once its system server runs): waiting for it
     would only spend the whole stop timeout.  */
  bool booting = sv->boots == 0 && json_array_size (sv->boot_completed) > 0;
  if (sv->qmp_ready && booting)
    {
      sv->stopped_booting = true;
      sv->qstop = QSTOP_POWERDOWN;
      sv_info (sv, "qemu: the guest has not booted: no power button, quit at once");
    }
  else if (sv->qmp_ready && q->stop_timeout == 0)
    sv->qstop = QSTOP_POWERDOWN; /* stop.timeout 0: no power-down, quit at once */
  else if (sv->qmp_ready)
    {
      _cleanup_error_ avm_error_t err = NULL;
      sv->qstop = QSTOP_POWERDOWN;
      if (avm_qmp_send_async (sv->qmp, "system_powerdown", NULL, NULL, NULL, &err) == 0)
        {
          qmp_update_io (sv);
          sv_info (sv, "qemu: system_powerdown (power button), waiting up to %.0f s",
                   (double) q->stop_timeout / USEC_PER_SEC);
          sv_timer (sv, &sv->stop_timer, q->stop_timeout, on_qemu_stop_timeout, sv);
          return;
        }
      sv->qstop = QSTOP_QUIT;
    }
  else
    sv->qstop = QSTOP_QUIT; /* no monitor (yet): straight to SIGTERM */
  on_qemu_stop_timeout (NULL, 0, sv);
}

void
guest_clear (struct sv *sv)
{
  qmp_drop (sv);
  sv_timer_cancel (&sv->boot_timer);
  sv_timer_cancel (&sv->progress_timer);
  for (size_t i = 0; i < sv->ncons; i++)
    {
      sv->cons[i].src = sym_sd_event_source_disable_unref (sv->cons[i].src);
      avm_logsink_free (sv->cons[i].log);
    }
  free (sv->cons);
  sv->cons = NULL;
  sv->ncons = 0;
  free (sv->qmp_path);
  free (sv->qemu_status);
  free (sv->shutdown_reason);
}
