/* SPDX-License-Identifier: Apache-2.0 */
/*
 * avm_supervise (supervisor.h): setup, the event loop, phases, signals and
 * child reaping, and the stop sequence.  Services are in service.c, QEMU and
 * the consoles in guest.c, `avm status` in status.c.
 */
#include "supervise/internal.h"
#include "disk/propsync.h"
#include "util/cleanup.h"
#include "util/analyzer.h"
#include "util/escape.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strfmt.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers ------------------------------------------------------ */

uint64_t
sv_now (struct sv *sv)
{
  uint64_t t = 0;
  /* (Before the loop exists: the clock itself, without loading libsystemd.)  */
  if (!sv->e || sym_sd_event_now (sv->e, CLOCK_MONOTONIC, &t) < 0)
    {
      struct timespec ts;
      clock_gettime (CLOCK_MONOTONIC, &ts);
      t = (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
    }
  return t;
}

int
sv_timer_at (struct sv *sv, sd_event_source **src, uint64_t when, sd_event_time_handler_t cb, void *data)
{
  sv_timer_cancel (src);
  /* Accuracy 1 us: 0 would mean sd-event's default of 250 ms.  */
  return sym_sd_event_add_time (sv->e, src, CLOCK_MONOTONIC, when, 1, cb, data);
}

int
sv_timer (struct sv *sv, sd_event_source **src, uint64_t delay, sd_event_time_handler_t cb, void *data)
{
  uint64_t now;
  sym_sd_event_now (sv->e, CLOCK_MONOTONIC, &now);
  return sv_timer_at (sv, src, now + delay, cb, data);
}

void
sv_timer_cancel (sd_event_source **src)
{
  *src = sym_sd_event_source_disable_unref (*src);
}

char *
sv_describe_exit (int code, int sig)
{
  if (sig)
    return avm_strdupf ("was killed by signal %d (SIG%s)", sig, sigabbrev_np (sig) ?: "?");
  return avm_strdupf ("exited with status %d", code);
}

void
sv_info (struct sv *sv, const char *fmt, ...)
{
  if (sv->o->quiet)
    return;
  va_list ap;
  va_start (ap, fmt);
  fputs ("avm: ", stderr);
  avm_vfprintf_escaped (stderr, fmt, ap); /* helpers' output, paths */
  fputc ('\n', stderr);
  va_end (ap);
}

/* The first failure decides the exit status and the message; everything
   is then stopped.  */
void
sv_fail (struct sv *sv, int status, const char *fmt, ...)
{
  va_list ap;
  _cleanup_free_ char *msg = NULL;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  if (sv->exit_status == 0)
    {
      sv->exit_status = status;
      avm_error_fail (&sv->error, EIO, "%s", msg ? msg : "failure");
      sv->error->exit_code = status;
    }
  else
    sv_info (sv, "also: %s", msg ? msg : "failure");
  sv_request_stop (sv, "failure");
}

/* ---- stopping ----------------------------------------------------------- */

/* Next step of the stop sequence: QEMU first, then the helpers in reverse
   start order, one at a time; the loop ends when nothing runs.  */
void
sv_stop_continue (struct sv *sv)
{
  if (sv->phase != PHASE_STOPPING)
    return;
  if (sv->g.qemu.pid > 0)
    {
      guest_stop (sv);
      return;
    }
  for (size_t i = sv->n; i-- > 0;)
    {
      struct svc *s = &sv->svcs[i];
      if (s->state == SVC_BACKOFF)
        {
          sv_timer_cancel (&s->timer);
          s->state = SVC_EXITED;
        }
      if (s->pid <= 0)
        continue;
      if (s->state != SVC_STOPPING)
        {
          sv_info (sv, "%s: stopping (SIGTERM, SIGKILL after %.0f s)", s->name,
                   (double) s->stop_timeout / USEC_PER_SEC);
          svc_stop (s);
        }
      else if (sv->kill_now)
        svc_kill (s);
      return;
    }
  sym_sd_event_exit (sv->e, sv->exit_status);
}

void
sv_log_check (struct sv *sv, struct avm_logsink *log)
{
  const char *why = avm_logsink_new_error (log);
  if (why)
    sv_info (sv,
             "warning: %s: %s; its lines are lost from now on (they still reach the boot check and the other "
             "targets)",
             avm_logsink_path (log), why);
}

void
sv_request_stop (struct sv *sv, const char *reason)
{
  if (sv->phase == PHASE_STOPPING)
    return;
  free (sv->stop_reason);
  sv->stop_reason = strdup (reason);
  sv_set_phase (sv, PHASE_STOPPING, reason);
  if (!streq (reason, "failure"))
    sv_info (sv, "stopping: %s", reason);
  for (size_t i = 0; i < sv->n; i++)
    if (sv->svcs[i].state == SVC_STARTING || sv->svcs[i].state == SVC_WAITING)
      sv_timer_cancel (&sv->svcs[i].timer);
  sv_stop_continue (sv);
}

void
sv_kill_now (struct sv *sv, const char *reason)
{
  sv_info (sv, "%s: killing everything now", reason);
  sv->kill_now = true;
  if (sv->exit_status == 0)
    {
      sv->exit_status = AVM_EXIT_KILLED;
      avm_error_fail (&sv->error, EINTR, "stopped at once (%s): the guest was not shut down cleanly", reason);
      sv->error->exit_code = AVM_EXIT_KILLED;
    }
  if (sv->phase != PHASE_STOPPING)
    sv_request_stop (sv, reason);
  for (size_t i = 0; i <= sv->n; i++)
    {
      struct svc *s = i < sv->n ? &sv->svcs[i] : &sv->g.qemu;
      if (s->pid > 0)
        {
          s->state = SVC_STOPPING;
          svc_kill (s);
        }
    }
}

/* ---- signals ------------------------------------------------------------ */

static int
on_signal (sd_event_source *src, const struct signalfd_siginfo *si, void *data)
{
  struct sv *sv = data;
  int sig = (int) si->ssi_signo;
  _cleanup_free_ char *why = avm_strdupf ("SIG%s", sigabbrev_np (sig) ?: "?");
  if (sig == SIGINT && sv->interrupts++ > 0)
    sv_kill_now (sv, "second SIGINT");
  else if (sv->phase == PHASE_STOPPING)
    sv_info (sv, "%s: already stopping (a second SIGINT stops at once)", why);
  else
    sv_request_stop (sv, why);
  return 0;
}

static struct svc *
find_pid (struct sv *sv, pid_t pid)
{
  if (sv->g.qemu.pid == pid)
    return &sv->g.qemu;
  for (size_t i = 0; i < sv->n; i++)
    if (sv->svcs[i].pid == pid)
      return &sv->svcs[i];
  return NULL;
}

/* Reap every child that has exited: our services and QEMU, and, as a
   subreaper (or PID 1), whatever orphans were re-parented to avm.  */
static int
on_sigchld (sd_event_source *src, const struct signalfd_siginfo *si, void *data)
{
  struct sv *sv = data;
  for (;;)
    {
      int st;
      pid_t pid = waitpid (-1, &st, WNOHANG);
      if (pid <= 0)
        break;
      struct svc *s = find_pid (sv, pid);
      if (!s)
        {
          sv_snapshot_child (sv, pid, st); /* or an orphan: reaped, nothing else to do */
          continue;
        }
      int code = WIFEXITED (st) ? WEXITSTATUS (st) : -1;
      int sig = WIFSIGNALED (st) ? WTERMSIG (st) : 0;
      svc_exited (s, code, sig);
    }
  return 0;
}

static int
on_watchdog (sd_event_source *src, uint64_t usec, void *data)
{
  struct sv *sv = data;
  guest_watchdog (sv);
  sv_timer (sv, &sv->watchdog_timer, sv->notifier.watchdog_usec / 2, on_watchdog, sv);
  return 0;
}

static int
on_extend (sd_event_source *src, uint64_t usec, void *data)
{
  struct sv *sv = data;
  if (sv->phase == PHASE_STOPPING || sv->phase == PHASE_RUNNING)
    {
      sv->extend_timer = sym_sd_event_source_disable_unref (sv->extend_timer);
      return 0;
    }
  guest_extend (sv);
  sv_timer (sv, &sv->extend_timer, EXTEND_INTERVAL, on_extend, sv);
  return 0;
}

/* ---- setup -------------------------------------------------------------- */

static int
setup_services (struct sv *sv, avm_error_t *err)
{
  const struct avm_plan *plan = sv->plan;
  size_t n = plan->nservices - 1; /* the last is QEMU */
  int r;
  sv->svcs = calloc (n + 1, sizeof *sv->svcs);
  sv->started = calloc (n + 1, sizeof *sv->started);
  sv->ready_paths = calloc (2 * n + 1, sizeof *sv->ready_paths);
  sv->ready_found = calloc (2 * n + 1, sizeof *sv->ready_found);
  if (!sv->svcs || !sv->started || !sv->ready_paths || !sv->ready_found)
    return avm_error_sys (err, ENOMEM, "services");
  for (size_t i = 0; i < n; i++)
    {
      sv->svcs[i].index = i;
      sv->n = i + 1;
      if ((r = svc_init (sv, &sv->svcs[i], &plan->services[i], err)) < 0)
        return r;
    }
  if ((r = svc_init (sv, &sv->g.qemu, avm_plan_qemu (plan), err)) < 0)
    return r;
  sv->g.qemu.stop_timeout = plan->stop.powerdown_timeout;
  return 0;
}

static int
setup_dirs (struct sv *sv, avm_error_t *err)
{
  int r;
  sv->run_dir = sv->plan->run_dir;
  sv->state_dir = sv->plan->state_dir;
  if ((r = avm_rundir_acquire (sv->run_dir, &sv->rundir, err)) < 0)
    return r;
  if ((r = avm_mkdir_p (sv->state_dir, 0750, err)) < 0)
    return r;
  sv->log_dir = avm_path_join (sv->state_dir, "logs");
  if ((r = avm_mkdir_p (sv->log_dir, 0750, err)) < 0)
    return r;
  bool journal = sv->o->log_target == AVM_LOG_JOURNAL;
  if (sv->o->log_target == AVM_LOG_AUTO)
    {
      /* $JOURNAL_STREAM is DEV:INODE of the journal stream stderr was
         connected to (systemd.exec(5)).  */
      const char *js = getenv ("JOURNAL_STREAM");
      struct stat st;
      unsigned long long dev, ino;
      if (js && sscanf (js, "%llu:%llu", &dev, &ino) == 2 && fstat (STDERR_FILENO, &st) == 0
          && (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino)
        journal = true;
    }
  /* Every log file is appended to from run to run: each run begins with a
     header line, each line carries its time.  */
  char stamp[32];
  time_t now = time (NULL);
  struct tm tm;
  strftime (stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&now, &tm));
  free (sv->run_header);
  bool approved = sv->plan->approved;
  sv->run_header = avm_strdupf ("avm %s: instance %d, profile %s, started %s, pid %d%s", AVM_VERSION, sv->instance,
                                sv->profile ? sv->profile : "?", stamp, (int) getpid (),
                                approved ? "" : ", UNAPPROVED configuration (--allow-unapproved)");
  sv->logcfg = (struct avm_logsink_config) {
    .dir = sv->log_dir,
    .max_size = sv->plan->log_max_size,
    .keep = sv->plan->log_files - 1,
    .journal = journal,
    .instance = sv->instance,
    .echo_fd = sv->o->verbose ? STDERR_FILENO : -1,
    .timestamps = true,
    .run_header = sv->run_header,
  };
  /* Lines for the journal go nowhere without journald: say so once.  */
  if (journal && access ("/run/systemd/journal/socket", W_OK) < 0)
    sv_info (sv,
             "warning: --log-target journal, but there is no journald here (/run/systemd/journal/socket: %s); "
             "lines go to the log files only",
             strerror (errno));
  return 0;
}

/* The x86 flash variables (plan "generated_disks", kind flash): the
   second flash chip, padding the bootloader to PAD_TO as launch_cvd does
   (assemble_cvd InitializePflash: PAD_TO less the bootloader's whole MiB).
   Kept from run to run (U-Boot's environment lives there); made anew when
   missing or when a new bootloader wants another size.  */
static int
sync_flash (struct sv *sv, const struct avm_plan_generated *d, avm_error_t *err)
{
  const char *path = d->path;
  const char *code = d->code;
  uint64_t pad = d->size;
  struct stat cs, vs;
  if (stat (code, &cs) < 0)
    return avm_error_sys (err, errno, "firmware.bios %s", code);
  uint64_t mib = (uint64_t) cs.st_size >> 20, want = pad - (mib << 20);
  if (mib << 20 >= pad)
    return avm_error_input (err, "firmware.bios %s is %lld bytes: too large for flash (firmware.pflash)", code,
                            (long long) cs.st_size);
  bool exists = stat (path, &vs) == 0;
  if (exists && S_ISREG (vs.st_mode) && (uint64_t) vs.st_size == want)
    return 0;
  int r = avm_blank_file_atomic (path, want, 0600, err);
  if (r < 0)
    return r;
  sv_info (sv, "pflash: %s %s (%llu KiB, with the bootloader's %lld bytes)", exists ? "made anew" : "created", path,
           (unsigned long long) (want >> 10), (long long) cs.st_size);
  return 0;
}

/* The x86 pstore nvdimm's file (plan "generated_disks", kind pstore):
   kept from run to run, since what the previous boot left there is the
   guest's /sys/fs/pstore; made anew (zeros) when missing or of another
   size, as QEMU maps exactly SIZE bytes.  */
static int
sync_pstore (struct sv *sv, const struct avm_plan_generated *d, avm_error_t *err)
{
  struct stat st;
  bool exists = stat (d->path, &st) == 0;
  if (exists && S_ISREG (st.st_mode) && (uint64_t) st.st_size == d->size)
    return 0;
  int r = avm_blank_file_atomic (d->path, d->size, 0600, err);
  if (r < 0)
    return r;
  sv_info (sv, "pstore: %s %s (%llu KiB)", exists ? "made anew" : "created", d->path,
           (unsigned long long) (d->size >> 10));
  return 0;
}

/* Generated disks (the properties disk) must hold the plan's boot
   properties before QEMU opens them: rebuilt with the cvd2img library when
   they do not.  */
static int
sync_generated_disks (struct sv *sv, avm_error_t *err)
{
  const struct avm_plan *plan = sv->plan;
  _cleanup_json_ json_t *props = NULL;
  for (size_t i = 0; i < plan->ngenerated; i++)
    {
      const struct avm_plan_generated *d = &plan->generated[i];
      bool rebuilt = false;
      int r;
      if (d->kind == AVM_GENERATED_FLASH || d->kind == AVM_GENERATED_PSTORE)
        {
          if ((r = (d->kind == AVM_GENERATED_FLASH ? sync_flash : sync_pstore) (sv, d, err)) < 0)
            return r;
          continue;
        }
      /* (disk/propsync.h takes the properties as an object.)  */
      if (!props && !(props = avm_plan_boot_props_json (plan)))
        return avm_error_sys (err, ENOMEM, "boot properties");
      if ((r = avm_props_sync (d->path, props, plan->arch, d->key, &rebuilt, err)) < 0)
        return r;
      if (rebuilt)
        sv_info (sv, "%s: (re)built with the profile's boot properties", d->name ?: d->path);
    }
  return 0;
}

/* Signals are blocked (the loop reads them from a signalfd) and avm
   becomes the reaper of orphans before anything is created.  */
static int
setup_signals (struct sv *sv, avm_error_t *err)
{
  sigset_t mask;
  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGINT);
  sigaddset (&mask, SIGHUP);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  signal (SIGPIPE, SIG_IGN);
  /* Orphans of helpers come to avm, which reaps them (and as PID 1 of a
     container avm is the reaper of everything anyway).  */
  if (getpid () != 1 && prctl (PR_SET_CHILD_SUBREAPER, 1) < 0)
    return avm_error_sys (err, errno, "prctl(PR_SET_CHILD_SUBREAPER)");
  return 0;
}

/* The event loop: the first use of libsystemd, which avm start has been
   loading meanwhile (avm_systemd_prefetch), so it comes after the work
   that does not need it.  */
static int
setup_loop (struct sv *sv, avm_error_t *err)
{
  int r;
  if ((r = sym_sd_event_new (&sv->e)) < 0)
    return avm_error_sys (err, -r, "sd_event_new");
  if ((r = sym_sd_event_add_signal (sv->e, NULL, SIGCHLD, on_sigchld, sv)) < 0
      || (r = sym_sd_event_add_signal (sv->e, NULL, SIGTERM, on_signal, sv)) < 0
      || (r = sym_sd_event_add_signal (sv->e, NULL, SIGINT, on_signal, sv)) < 0
      || (r = sym_sd_event_add_signal (sv->e, NULL, SIGHUP, on_signal, sv)) < 0)
    return avm_error_sys (err, -r, "signal handlers");
  if (sv->notifier.watchdog_usec > 0)
    sv_timer (sv, &sv->watchdog_timer, sv->notifier.watchdog_usec / 2, on_watchdog, sv);
  sv_timer (sv, &sv->extend_timer, EXTEND_INTERVAL, on_extend, sv);
  if ((r = sv_schedule_attach (sv, err)) < 0)
    return r;
  for (size_t i = 0; i < sv->n; i++)
    if (sv->svcs[i].pid > 0 && (r = svc_attach (&sv->svcs[i], err)) < 0)
      return r;
  return 0;
}

static void
teardown (struct sv *sv)
{
  /* Anything still alive (a failed setup, or a group member that outlived
     its leader) goes now; then every remaining child is reaped.  */
  for (size_t i = 0; i <= sv->n; i++)
    {
      struct svc *s = i < sv->n ? &sv->svcs[i] : &sv->g.qemu;
      if (s->pid > 0)
        {
          kill (-s->pid, SIGKILL);
          kill (s->pid, SIGKILL);
          waitpid (s->pid, NULL, 0);
          s->pid = 0;
        }
    }
  while (waitpid (-1, NULL, WNOHANG) > 0)
    ;
  avm_control_free (sv->control);
  sv->control = NULL;
  guest_clear (sv);
  for (size_t i = 0; i < sv->n; i++)
    svc_clear (&sv->svcs[i]);
  svc_clear (&sv->g.qemu);
  sv_timer_cancel (&sv->ready_poll);
  sv_timer_cancel (&sv->schedule_src);
  svc_ready_watch_close (sv);
  free (sv->svcs);
  free (sv->started);
  free (sv->ready_paths);
  free (sv->ready_found);
  sv_timer_cancel (&sv->watchdog_timer);
  sv_timer_cancel (&sv->extend_timer);
  sv_timer_cancel (&sv->g.progress_timer);
  avm_resources_free (sv->res);
  sv->res = NULL;
  if (sv->rundir)
    {
      avm_error_t e = NULL;
      if (avm_rundir_release (sv->rundir, &e) < 0)
        {
          sv_info (sv, "warning: %s", e->msg);
          avm_error_free (e);
        }
    }
  sym_sd_event_unref (sv->e);
  free (sv->last_status);
  avm_notifier_close (&sv->notifier);
  free (sv->log_dir);
  free (sv->stop_reason);
  free (sv->run_header);
  avm_error_free (sv->early_error);
}

int
avm_supervise (const struct avm_supervise_options *o, avm_error_t *err)
{
  struct sv sv = { .o = o, .plan = o->plan, .ready_inotify = -1 };
  int r;

  sv.instance = o->plan->instance;
  sv.profile = o->plan->profile;
  if ((r = avm_notifier_open (&sv.notifier, err)) < 0)
    return (*err)->exit_code;
  sv.t_start = sv_now (&sv);
  if ((r = setup_signals (&sv, err)) < 0 || (r = setup_dirs (&sv, err)) < 0)
    goto fail;
  sv_info (&sv, "instance %d: profile %s, runtime directory %s, logs in %s", sv.instance, sv.profile, sv.run_dir,
           sv.log_dir);
  avm_notify (&sv.notifier, "STATUS=preparing");
  if ((r = sync_generated_disks (&sv, err)) < 0 || (r = sv_restore_service_files (&sv, err)) < 0)
    goto fail;
  if ((r = avm_resources_create_plan (sv.plan->resources, sv.plan->nresources, &sv.res, err)) < 0
      || (r = setup_services (&sv, err)) < 0)
    goto fail;
  sv_start_early (&sv);
  if ((r = avm_dlopen_systemd (err)) < 0 || (r = setup_loop (&sv, err)) < 0 || (r = guest_setup (&sv, err)) < 0)
    goto fail;
  if ((r = avm_control_listen (sv.e, avm_rundir_fd (sv.rundir), AVM_CONTROL_SOCKET, sv.plan->control_socket, sv_control,
                               &sv, &sv.control, err))
      < 0)
    goto fail;

  sv_set_phase (&sv, PHASE_HELPERS, NULL);
  if (sv.early_error)
    sv_fail (&sv, AVM_EXIT_SERVICE, "%s", sv.early_error->msg);
  else
    sv_schedule (&sv);
  r = sym_sd_event_loop (sv.e);
  if (r < 0 && sv.exit_status == 0)
    {
      avm_error_sys (err, -r, "event loop");
      teardown (&sv);
      return AVM_EXIT_FAILURE;
    }
  if (sv.exit_status == 0)
    sv_info (&sv, sv.g.stopped_booting ? "stopped before the guest had booted (QEMU quit: nothing to shut down)"
                                       : "stopped");
  teardown (&sv);
  if (sv.error)
    *err = steal_pointer (&sv.error);
  return sv.exit_status;

fail:
  avm_systemd_prefetch_join (); /* (it may still be setting the sym_ pointers teardown calls) */
  teardown (&sv);
  return AVM_EXIT_FAILURE;
}
