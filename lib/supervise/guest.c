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
#include <time.h>
#include <unistd.h>

/* ---- consoles ---------------------------------------------------------- */

static bool
matches (char *const *patterns, const char *line)
{
  for (size_t i = 0; patterns && patterns[i]; i++)
    if (*patterns[i] && strstr (line, patterns[i]))
      return true;
  return false;
}

/* The profile has boot patterns: the guest's boot is waited for.  */
static bool
has_boot_patterns (struct sv *sv)
{
  return sv->g.boot->completed && sv->g.boot->completed[0];
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
  sv->g.boots++;
  sv->g.resets = 0;
  if (sv->g.boots > 1)
    {
      sv_info (sv, "guest booted again (boot %u)", sv->g.boots);
      return;
    }
  sv->g.t_booted = sv_now (sv);
  sv_info (sv, "guest booted in %.1f s", (double) (sv->g.t_booted - sv->g.t_qemu) / USEC_PER_SEC);
  /* Where to see it (display.web): one page per output.  */
  for (size_t k = 0; sv->plan->web_urls && sv->plan->web_urls[k]; k++)
    sv_info (sv, "web display, output %zu: %s", k, sv->plan->web_urls[k]);
  sv_set_phase (sv, PHASE_RUNNING, NULL);
  if (sv->o->stop_after_boot)
    sv_request_stop (sv, "--stop-after-boot");
}

static void
on_console_line (void *data, const char *line, size_t len)
{
  struct console *c = data;
  struct sv *sv = c->sv;
  /* Only the guest can boot: lines written before QEMU started (by a
     helper holding the FIFO) are logged, not matched.  */
  if (!c->boot || sv->g.t_qemu == 0)
    return;
  if (matches (sv->g.boot->failed, line))
    {
      if (sv->g.boots == 0)
        {
          sv_want_failure_shot (sv);
          sv_fail (sv, AVM_EXIT_BOOT_FAILED, "the guest reported a boot failure on console %s: %.*s (see %s)", c->name,
                   (int) (len > 300 ? 300 : len), line, avm_logsink_path (c->log));
        }
      else
        sv_info (sv, "guest reported a failure after booting: %.*s", (int) (len > 300 ? 300 : len), line);
    }
  else if (matches (sv->g.boot->completed, line))
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
  sv->g.cons = calloc (n ? n : 1, sizeof *sv->g.cons);
  if (!sv->g.cons)
    return avm_error_sys (err, ENOMEM, "consoles");
  for (size_t i = 0; i < n; i++)
    {
      const struct avm_resource_fd *rf = avm_resources_at (sv->res, i);
      if (!rf->res || !rf->res->log)
        continue;
      struct console *c = &sv->g.cons[sv->g.ncons++];
      c->sv = sv;
      c->res = rf;
      c->name = rf->res->console ? rf->res->console : rf->name;
      c->boot = sv->g.boot->console && streq (sv->g.boot->console, c->name);
      _cleanup_free_ char *file = avm_strdupf ("console-%s", c->name);
      int r = avm_logsink_open (&sv->logcfg, file, c->name, 6, &c->log, err);
      if (r < 0)
        return r;
      avm_logsink_set_line_cb (c->log, on_console_line, c);
      const char *tee = rf->res->tee;
      if (tee)
        {
          /* The pipe's write end (its second descriptor).  */
          _cleanup_free_ char *wname = avm_strdupf ("%s%s", tee, avm_resource_ends (AVM_RES_PIPE)[1]);
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
      struct avm_qmp_shutdown sd = avm_qmp_shutdown_data (obj);
      sv->g.shutdown = sd.guest;
      free (sv->g.shutdown_reason);
      const char *reason = sd.reason;
      sv->g.shutdown_reason = reason ? strdup (reason) : NULL;
      if (sv->phase != PHASE_STOPPING)
        sv_info (sv, "guest is shutting down (%s)", reason ? reason : "?");
    }
  else if (streq (event, "RESET") && sv->phase != PHASE_STOPPING)
    {
      const char *reason = avm_qmp_shutdown_data (obj).reason ?: "?";
      sv->g.resets++;
      sv_info (sv, "guest reset (%s)", reason);
      /* A guest that keeps resetting before it boots (a panic, apexd or
         init aborting into a reboot) never reports a failure itself.  */
      if (sv->g.boot->reset_limit > 0 && sv->g.resets > sv->g.boot->reset_limit)
        {
          const char *log = "";
          for (size_t i = 0; i < sv->g.ncons; i++)
            if (sv->g.cons[i].boot)
              log = avm_logsink_path (sv->g.cons[i].log);
          sv_want_failure_shot (sv);
          sv_fail (sv, AVM_EXIT_BOOT_FAILED,
                   "the guest reset %u times without completing a boot (a boot loop; last reset: %s); see %s "
                   "(boot.reset_limit is %u)",
                   sv->g.resets, reason, *log ? log : "the QEMU log", sv->g.boot->reset_limit);
        }
    }
  else if (streq (event, "GUEST_PANICKED"))
    sv_info (sv, "guest panicked");
  else if (streq (event, "MIGRATION") || streq (event, "BLOCK_JOB_COMPLETED") || streq (event, "BLOCK_JOB_CANCELLED"))
    sv_snapshot_event (sv, event, obj);
}

static void
qmp_became_ready (struct sv *sv)
{
  struct svc *q = &sv->g.qemu;
  sv->g.qmp_ready = true;
  sv->g.t_qmp = sv_now (sv);
  sv_timer_cancel (&q->timer);
  avm_qmp_set_event_handler (sv->g.qmp, on_qmp_event, sv);
  sv_info (sv, "qemu: monitor ready in %.0f ms (QEMU %s)", (double) (sv->g.t_qmp - q->t_spawn) / USEC_PER_MSEC,
           avm_qmp_qemu_version (sv->g.qmp));
  q->state = SVC_READY;
  q->t_ready = sv->g.t_qmp;
  if (sv->phase == PHASE_STOPPING)
    {
      guest_stop (sv);
      return;
    }
  if (sv->g.restore.name)
    {
      /* Booted already, in the snapshot: load it.  */
      sv_set_phase (sv, PHASE_BOOTING, NULL);
      sv_restore_start (sv);
    }
  else if (!has_boot_patterns (sv))
    {
      /* Nothing to wait for: QEMU running is as ready as it gets.  */
      sv->g.t_booted = sv->g.t_qmp;
      sv_set_phase (sv, PHASE_RUNNING, NULL);
      if (sv->o->stop_after_boot)
        sv_request_stop (sv, "--stop-after-boot");
    }
  else if (sv->phase == PHASE_QEMU)
    {
      sv_set_phase (sv, PHASE_BOOTING, NULL);
    }
}

void
guest_qmp_update_io (struct sv *sv)
{
  if (!sv->g.qmp_src)
    return;
  uint32_t ev = avm_qmp_io_events (sv->g.qmp);
  if (ev == 0)
    sym_sd_event_source_set_enabled (sv->g.qmp_src, SD_EVENT_OFF);
  else
    sym_sd_event_source_set_io_events (sv->g.qmp_src, ev);
}

static int
on_qmp_io (sd_event_source *src, int fd, uint32_t revents, void *data)
{
  struct sv *sv = data;
  _cleanup_error_ avm_error_t err = NULL;
  int r = avm_qmp_process (sv->g.qmp, &err);
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
  if (!sv->g.qmp_ready && avm_qmp_is_ready (sv->g.qmp))
    qmp_became_ready (sv);
  guest_qmp_update_io (sv);
  return 0;
}

static void
qmp_drop (struct sv *sv)
{
  sv->g.qmp_src = sym_sd_event_source_disable_unref (sv->g.qmp_src);
  sv_timer_cancel (&sv->g.qmp_timer);
  avm_qmp_close (sv->g.qmp);
  sv->g.qmp = NULL;
  sv->g.qmp_ready = false;
}

static int on_qmp_connect (sd_event_source *src, uint64_t usec, void *data);

static int
qmp_try_connect (struct sv *sv, avm_error_t *err)
{
  int r = avm_qmp_try_connect (sv->g.qmp_path, &sv->g.qmp, err);
  if (r < 0)
    return r;
  r = sym_sd_event_add_io (sv->e, &sv->g.qmp_src, avm_qmp_fd (sv->g.qmp), EPOLLIN, on_qmp_io, sv);
  if (r < 0)
    {
      avm_qmp_close (sv->g.qmp);
      sv->g.qmp = NULL;
      return avm_error_sys (err, -r, "qemu: monitor event source");
    }
  guest_qmp_update_io (sv);
  return 0;
}

static int
on_qmp_connect (sd_event_source *src, uint64_t usec, void *data)
{
  struct sv *sv = data;
  sv->g.qmp_timer = sym_sd_event_source_unref (sv->g.qmp_timer);
  if (sv->g.qemu.pid <= 0 || sv->g.qmp)
    return 0;
  _cleanup_error_ avm_error_t err = NULL;
  int r = qmp_try_connect (sv, &err);
  if (r == 0)
    return 0;
  if (r != -ENOENT && r != -ECONNREFUSED && r != -EAGAIN)
    {
      sv_fail (sv, AVM_EXIT_QEMU, "qemu: cannot connect to the monitor %s: %s", sv->g.qmp_path,
               err ? err->msg : strerror (-r));
      return 0;
    }
  uint64_t since = sv_now (sv) - sv->g.qemu.t_spawn;
  sv_timer (sv, &sv->g.qmp_timer, since < 100 * USEC_PER_MSEC ? USEC_PER_MSEC : 10 * USEC_PER_MSEC, on_qmp_connect, sv);
  return 0;
}

static int
on_qmp_timeout (sd_event_source *src, uint64_t usec, void *data)
{
  struct sv *sv = data;
  sv->g.qemu.timer = sym_sd_event_source_unref (sv->g.qemu.timer);
  if (!sv->g.qmp_ready && sv->phase != PHASE_STOPPING)
    {
      _cleanup_free_ char *tail = svc_tail (&sv->g.qemu);
      sv_fail (sv, AVM_EXIT_QEMU, "qemu: its monitor %s did not answer within %llu s%s%s; log: %s", sv->g.qmp_path,
               (unsigned long long) (QMP_TIMEOUT / USEC_PER_SEC), tail ? "; last output: " : "", tail ? tail : "",
               avm_logsink_path (sv->g.qemu.log));
    }
  return 0;
}

/* ---- boot timeout, watchdog, extension -------------------------------- */

/* A slow boot (minutes under TCG) says that it is still under way.  */
static int
on_boot_progress (sd_event_source *src, uint64_t usec, void *data)
{
  struct sv *sv = data;
  sv->g.progress_timer = sym_sd_event_source_disable_unref (sv->g.progress_timer);
  if (sv->g.boots > 0 || (sv->phase != PHASE_QEMU && sv->phase != PHASE_BOOTING))
    return 0;
  sv_info (sv, "still booting (%.0f s)", (double) (sv_now (sv) - sv->g.t_qemu) / USEC_PER_SEC);
  sv_timer (sv, &sv->g.progress_timer, BOOT_PROGRESS_INTERVAL, on_boot_progress, sv);
  return 0;
}

static int
on_boot_timeout (sd_event_source *src, uint64_t usec, void *data)
{
  struct sv *sv = data;
  sv->g.boot_timer = sym_sd_event_source_unref (sv->g.boot_timer);
  if (sv->g.boots > 0 || sv->phase == PHASE_STOPPING)
    return 0;
  const char *console = sv->g.boot->console ? sv->g.boot->console : "?";
  const char *log = "";
  for (size_t i = 0; i < sv->g.ncons; i++)
    if (sv->g.cons[i].boot)
      log = avm_logsink_path (sv->g.cons[i].log);
  sv_want_failure_shot (sv);
  sv_fail (sv, AVM_EXIT_BOOT_TIMEOUT,
           "the guest did not boot within %.0f s (no \"%s\" on console %s); see %s, or raise boot.timeout",
           (double) sv->g.boot->timeout / USEC_PER_SEC, sv->g.boot->completed[0], console, log);
  return 0;
}

enum probe_mode
{
  PROBE_WATCHDOG, /* WATCHDOG=1 when QEMU answers */
  PROBE_EXTEND,   /* EXTEND_TIMEOUT_USEC= while booting, when QEMU answers */
  PROBE_REFRESH,  /* only the cached status (avm status) */
  PROBE_LIVE,     /* reply to {"command":"live"} when QEMU answers (avm status --live) */
};

struct probe
{
  struct sv *sv;
  enum probe_mode mode;
  struct avm_control_request *req; /* PROBE_LIVE */
};

/* make lint: false positive: sv->g.qemu_status belongs to the supervisor (freed
   with it); the analyzer loses SV, reached through the callback data.  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-malloc-leak")
static void
on_query_status (void *data, json_t *ret, json_t *error)
{
  struct probe *p = data;
  struct sv *sv = p->sv;
  enum probe_mode mode = p->mode;
  struct avm_control_request *req = p->req;
  free (p);
  if (mode == PROBE_LIVE)
    {
      /* (NULL, NULL): the monitor closed before answering.  */
      const char *st = ret ? avm_qmp_status_name (ret) : NULL;
      json_t *reply = ret ? json_pack ("{s:b, s:b, s:s?}", "ok", 1, "live", 1, "qemu", st)
                          : json_pack ("{s:b, s:s}", "ok", 0, "error",
                                       error ? "QEMU's monitor refused query-status" : "QEMU's monitor closed");
      avm_control_reply (req, reply);
    }
  if (!ret)
    return;
  const char *st = avm_qmp_status_name (ret);
  free (sv->g.qemu_status);
  sv->g.qemu_status = st ? strdup (st) : NULL;
  if (mode == PROBE_EXTEND)
    {
      if (sv->phase == PHASE_BOOTING || sv->phase == PHASE_QEMU)
        avm_notify (&sv->notifier, "EXTEND_TIMEOUT_USEC=%llu\nSTATUS=booting (%.0f s, QEMU %s)",
                    (unsigned long long) EXTEND_BY, (double) (sv_now (sv) - sv->g.t_qemu) / USEC_PER_SEC,
                    st ? st : "?");
    }
  else if (mode == PROBE_WATCHDOG)
    avm_notify (&sv->notifier, "WATCHDOG=1");
}
AVM_ANALYZER_IGNORE_END

/* 0, or -errno when the request could not go out (then nothing is called).  */
static int
query_status_for (struct sv *sv, enum probe_mode mode, struct avm_control_request *req)
{
  struct probe *p = calloc (1, sizeof *p);
  if (!p)
    return -ENOMEM;
  *p = (struct probe) { sv, mode, req };
  _cleanup_error_ avm_error_t err = NULL;
  int r = avm_qmp_send_async (sv->g.qmp, "query-status", NULL, on_query_status, p, &err);
  if (r < 0)
    free (p);
  guest_qmp_update_io (sv);
  return r;
}

static void
query_status (struct sv *sv, enum probe_mode mode)
{
  (void) query_status_for (sv, mode, NULL);
}

json_t *
guest_control_live (struct sv *sv, struct avm_control_request *req)
{
  /* As the watchdog sees it: before QEMU's monitor is up (helpers, QEMU
     starting) the readiness timeouts bound the wait, and stopping is
     bounded by the stop budget; otherwise QEMU must answer.  The client
     gives up after its own timeout: a wedged monitor then leaves this
     request pending until the monitor closes.  */
  if (!sv->g.qmp_ready)
    return json_pack ("{s:b, s:b, s:n}", "ok", 1, "live", 1, "qemu");
  if (query_status_for (sv, PROBE_LIVE, req) < 0)
    return json_pack ("{s:b, s:s}", "ok", 0, "error", "cannot ask QEMU's monitor");
  return AVM_CONTROL_PENDING;
}

void
guest_watchdog (struct sv *sv)
{
  if (sv->g.qmp_ready)
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
  else if (sv->g.qmp_ready && sv->phase == PHASE_BOOTING)
    query_status (sv, PROBE_EXTEND);
}

/* ---- QEMU life cycle --------------------------------------------------- */

int
guest_setup (struct sv *sv, avm_error_t *err)
{
  sv->g.boot = &sv->plan->boot;
  sv->g.qmp_path = sv->plan->qmp_socket;
  if (sv->o->restore_meta)
    {
      sv->g.restore
          = (struct restore) { .name = sv->plan->restore, .dir = sv->o->restore_dir, .meta = sv->o->restore_meta };
    }
  return consoles_setup (sv, err);
}

int
guest_start (struct sv *sv)
{
  struct svc *q = &sv->g.qemu;
  _cleanup_error_ avm_error_t err = NULL;
  sv_set_phase (sv, PHASE_QEMU, NULL);
  if (svc_start (q, &err) < 0)
    {
      sv_fail (sv, AVM_EXIT_QEMU, "%s", err->msg);
      return -1;
    }
  sv->g.t_qemu = q->t_spawn;
  sv_info (sv, "qemu: started (pid %d, %s)", (int) q->pid, q->program);
  sv_timer (sv, &q->timer, QMP_TIMEOUT, on_qmp_timeout, sv);
  guest_boot_timers (sv, true);
  on_qmp_connect (NULL, 0, sv);
  return 0;
}

/* The boot timeout and the "still booting" lines: armed when QEMU has
   started, cancelled once the guest booted or is being stopped.  */
void
guest_boot_timers (struct sv *sv, bool arm)
{
  if (!arm)
    {
      sv_timer_cancel (&sv->g.boot_timer);
      sv_timer_cancel (&sv->g.progress_timer);
      return;
    }
  if (sv->g.boot->timeout > 0 && has_boot_patterns (sv))
    sv_timer (sv, &sv->g.boot_timer, sv->g.boot->timeout, on_boot_timeout, sv);
  if (has_boot_patterns (sv))
    sv_timer (sv, &sv->g.progress_timer, BOOT_PROGRESS_INTERVAL, on_boot_progress, sv);
}

/* --restore-or-boot: QEMU could not load the snapshot (it exited, or was
   stopped for it); boot the cold plan instead, with the same helpers,
   resources and consoles.  */
static void
guest_fall_back (struct sv *sv, const char *how)
{
  struct svc *q = &sv->g.qemu;
  _cleanup_free_ char *tail = svc_tail (q);
  sv_info (sv, "snapshot %s: QEMU could not restore it (qemu %s%s%s); booting instead (--restore-or-boot)",
           sv->g.restore.name, how, tail ? "; last output: " : "", tail ? tail : "");
  sv->plan = sv->o->fallback_plan;
  q->def = avm_plan_qemu (sv->plan);
  q->program = q->def->program;
  q->state = SVC_WAITING;
  q->killed = false;
  sv->g.restore = (struct restore) { 0 };
  sv->g.shutdown = false;
  free (sv->g.shutdown_reason);
  sv->g.shutdown_reason = NULL;
  sv->g.resets = 0;
  guest_start (sv);
}

void
guest_exited (struct sv *sv)
{
  struct svc *q = &sv->g.qemu;
  _cleanup_free_ char *how = sv_describe_exit (q->exit_code, q->exit_signal);
  qmp_drop (sv);
  if (sv->phase != PHASE_STOPPING && sv->g.restore.name && sv->g.boots == 0 && sv->o->fallback_plan
      && sv->plan != sv->o->fallback_plan)
    {
      sv_timer_cancel (&sv->g.restore.timer);
      guest_fall_back (sv, how);
      return;
    }
  sv_timer_cancel (&sv->g.boot_timer);
  sv_timer_cancel (&sv->g.progress_timer);
  sv_timer_cancel (&sv->g.stop_timer);
  sv_timer_cancel (&sv->g.restore.timer);
  sv_clock_clear (sv);
  /* Whatever the guest wrote last is still in the FIFOs.  */
  for (size_t i = 0; i < sv->g.ncons; i++)
    if (sv->g.cons[i].src)
      avm_logsink_drain (sv->g.cons[i].log, sv->g.cons[i].res->fd);
  if (sv->phase == PHASE_STOPPING)
    {
      q->state = SVC_EXITED;
      sv_info (sv, "qemu: %s%s", how, q->killed && q->exit_signal != SIGKILL ? " (after SIGKILL)" : "");
      sv_stop_continue (sv);
      return;
    }
  q->state = q->exit_code == 0 ? SVC_EXITED : SVC_FAILED;
  if (q->exit_code == 0 && sv->g.shutdown)
    {
      sv_info (sv, "the guest powered off (%s): stopping", sv->g.shutdown_reason ?: "guest-shutdown");
      sv_request_stop (sv, "the guest powered off");
      return;
    }
  _cleanup_free_ char *tail = svc_tail (q);
  /* Some hosts give /dev/kvm but abort or hang QEMU once a vCPU runs.  */
  const char *accel = sv->plan->accel;
  bool kvm_hint = accel && streq (accel, "kvm") && sv->g.boots == 0;
  /* A restore that QEMU could not load ends QEMU (7.2 exits on a bad
     stream): say which snapshot.  */
  const char *restoring = sv->g.restore.name && sv->g.boots == 0 ? sv->g.restore.name : NULL;
  sv_fail (sv, AVM_EXIT_QEMU, "%s%s%sqemu %s%s%s%s%s; log: %s%s", restoring ? "snapshot " : "",
           restoring ? restoring : "", restoring ? ": QEMU could not restore it: " : "", how,
           sv->g.shutdown_reason ? " after a shutdown: " : "", sv->g.shutdown_reason ? sv->g.shutdown_reason : "",
           tail ? "; last output: " : "", tail ? tail : "", avm_logsink_path (q->log),
           kvm_hint ? "; it ran under KVM before the guest booted: if this host's KVM cannot run guests (avm check "
                      "runs a vCPU to tell), --set machine.accel=tcg runs without it"
                    : "");
}

static int
on_qemu_stop_timeout (sd_event_source *src, uint64_t usec, void *data)
{
  struct sv *sv = data;
  struct svc *q = &sv->g.qemu;
  sv->g.stop_timer = sym_sd_event_source_unref (sv->g.stop_timer);
  if (q->pid <= 0)
    return 0;
  switch (sv->g.qstop)
    {
    case QSTOP_POWERDOWN:
      if (sv->g.stopped_booting)
        ;
      else if (q->stop_timeout > 0)
        sv_info (sv, "qemu: the guest did not power off within %.0f s: quit", (double) q->stop_timeout / USEC_PER_SEC);
      else
        sv_info (sv, "qemu: quit");
      if (sv->g.qmp_ready)
        {
          _cleanup_error_ avm_error_t err = NULL;
          sv->g.qstop = QSTOP_QUIT;
          if (avm_qmp_send_async (sv->g.qmp, "quit", NULL, NULL, NULL, &err) == 0)
            {
              guest_qmp_update_io (sv);
              sv_timer (sv, &sv->g.stop_timer, QMP_QUIT_TIMEOUT, on_qemu_stop_timeout, sv);
              break;
            }
        }
      /* fall through */
    case QSTOP_QUIT:
      sv_info (sv, "qemu: SIGTERM");
      sv->g.qstop = QSTOP_TERM;
      kill (q->pid, SIGTERM);
      sv_timer (sv, &sv->g.stop_timer, QEMU_TERM_TIMEOUT, on_qemu_stop_timeout, sv);
      break;
    case QSTOP_TERM:
    default:
      sv_info (sv, "qemu: still running after SIGTERM: SIGKILL");
      sv->g.qstop = QSTOP_KILL;
      svc_kill (q);
      break;
    }
  return 0;
}

/* Start (or continue, when QMP comes up late) QEMU's stop sequence.  */
void
guest_stop (struct sv *sv)
{
  struct svc *q = &sv->g.qemu;
  if (q->pid <= 0)
    return;
  if (sv->kill_now)
    {
      sv->g.qstop = QSTOP_KILL;
      svc_kill (q);
      return;
    }
  if (sv->g.qstop != QSTOP_NONE)
    return;
  q->state = SVC_STOPPING;
  /* A failed boot: the screen first (bounded: a hung QEMU does not hold
     the stop up), then on as usual (on_failure_shot).  */
  if (sv->g.failure_shot_wanted && sv_failure_shot_start (sv))
    return;
  /* A guest that has not booted yet cannot act on the power button (an
     Android guest handles it once its system server runs): waiting for it
     would only spend the whole stop timeout.  */
  bool booting = sv->g.boots == 0 && has_boot_patterns (sv);
  if (sv->g.qmp_ready && booting)
    {
      sv->g.stopped_booting = true;
      sv->g.qstop = QSTOP_POWERDOWN;
      sv_info (sv, "qemu: the guest has not booted: no power button, quit at once");
    }
  else if (sv->g.qmp_ready && q->stop_timeout == 0)
    sv->g.qstop = QSTOP_POWERDOWN; /* stop.timeout 0: no power-down, quit at once */
  else if (sv->g.qmp_ready)
    {
      _cleanup_error_ avm_error_t err = NULL;
      sv->g.qstop = QSTOP_POWERDOWN;
      if (avm_qmp_send_async (sv->g.qmp, "system_powerdown", NULL, NULL, NULL, &err) == 0)
        {
          guest_qmp_update_io (sv);
          sv_info (sv, "qemu: system_powerdown (power button), waiting up to %.0f s",
                   (double) q->stop_timeout / USEC_PER_SEC);
          sv_timer (sv, &sv->g.stop_timer, q->stop_timeout, on_qemu_stop_timeout, sv);
          return;
        }
      sv->g.qstop = QSTOP_QUIT;
    }
  else
    sv->g.qstop = QSTOP_QUIT; /* no monitor (yet): straight to SIGTERM */
  on_qemu_stop_timeout (NULL, 0, sv);
}

void
guest_clear (struct sv *sv)
{
  qmp_drop (sv);
  sv_snapshot_clear (sv);
  sv_clock_free (sv);
  sv_timer_cancel (&sv->g.boot_timer);
  sv_timer_cancel (&sv->g.progress_timer);
  sv_timer_cancel (&sv->g.stop_timer);
  for (size_t i = 0; i < sv->g.ncons; i++)
    {
      sv->g.cons[i].src = sym_sd_event_source_disable_unref (sv->g.cons[i].src);
      avm_logsink_free (sv->g.cons[i].log);
    }
  free (sv->g.cons);
  sv->g.cons = NULL;
  sv->g.ncons = 0;
  free (sv->g.qemu_status);
  free (sv->g.shutdown_reason);
  free (sv->g.failure_shot);
  sv->g.failure_shot = NULL;
}
