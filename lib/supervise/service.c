/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One helper service's life: spawned from its argv with its resources, its
 * stdout and stderr read into its log, ready by its readiness rule within
 * its timeout, restarted by its policy (exponential backoff from 100 ms to
 * 5 s, at most RESTART_BURST starts in RESTART_INTERVAL), stopped with
 * SIGTERM to its process group and SIGKILL after its stop timeout.
 */
#include "supervise/internal.h"
#include "supervise/ready.h"
#include "supervise/spawn.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strfmt.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <unistd.h>

const char *
svc_state_name (enum svc_state st)
{
  static const char *const names[] = { "waiting", "starting", "ready", "restarting", "stopping", "exited", "failed" };
  return st < ARRAY_SIZE (names) ? names[st] : "?";
}

static void
tail_line (void *data, const char *line, size_t len)
{
  struct svc *s = data;
  free (s->tail[s->tail_next]);
  s->tail[s->tail_next] = strndup (line, len > 300 ? 300 : len);
  s->tail_next = (s->tail_next + 1) % TAIL_LINES;
}

/* The last lines the service printed, "; "-separated (malloc'd), or NULL.  */
char *
svc_tail (const struct svc *s)
{
  char *out = NULL;
  for (size_t i = 0; i < TAIL_LINES; i++)
    {
      const char *l = s->tail[(s->tail_next + i) % TAIL_LINES];
      if (!l || !*l)
        continue;
      char *n = out ? avm_strdupf ("%s | %s", out, l) : strdup (l);
      free (out);
      out = n;
    }
  return out;
}

int
svc_init (struct sv *sv, struct svc *s, const struct avm_plan_service *def, avm_error_t *err)
{
  int r;
  s->sv = sv;
  s->def = def;
  s->name = def->name;
  s->program = def->program;
  s->qemu = def->kind == AVM_SERVICE_QEMU;
  s->pid = 0;
  s->out_fd = -1;
  s->notify_fd = -1;
  s->ready_wd = -1;
  s->exit_code = -1;
  s->ready = def->ready;
  s->ready_path = def->ready_path;
  s->ready_timeout = def->ready_timeout;
  s->restart = def->restart;
  s->critical = def->critical;
  s->stop_timeout = def->stop_timeout;
  if (!s->program)
    {
      _cleanup_free_ char *arg0 = def->argc ? avm_plan_arg_string (&def->argv[0]) : NULL;
      return avm_error_fail (err, ENOENT, "service %s: program \"%s\" not found (install it, or set paths.helpers)",
                             s->name, arg0 ? arg0 : "?");
    }
  if (def->workdir && (r = avm_mkdir_p (def->workdir, 0700, err)) < 0)
    return r;
  /* The plan's environment, and NOTIFY_SOCKET for a service that says
     READY=1.  */
  s->env = calloc (def->nenv + 2, sizeof *s->env);
  if (!s->env)
    return avm_error_sys (err, ENOMEM, "service %s", s->name);
  memcpy (s->env, def->env, def->nenv * sizeof *s->env);
  s->nenv = def->nenv;

  struct avm_logsink_config cfg = sv->logcfg;
  if ((r = avm_logsink_open (&cfg, s->name, s->name, 6, &s->log, err)) < 0)
    return r;
  avm_logsink_set_line_cb (s->log, tail_line, s);

  if (s->ready == AVM_READY_NOTIFY)
    {
      s->notify_path = avm_strdupf ("%s/notify-%s.sock", sv->run_dir, s->name);
      if ((r = avm_notify_listen (s->notify_path, &s->notify_fd, err)) < 0)
        return r;
      size_t k = 0;
      while (k < s->nenv && !streq (s->env[k].name, "NOTIFY_SOCKET"))
        k++;
      s->env[k] = (struct avm_plan_pair) { (char *) "NOTIFY_SOCKET", s->notify_path };
      if (k == s->nenv)
        s->nenv++;
    }
  return 0;
}

void
svc_clear (struct svc *s)
{
  sv_timer_cancel (&s->timer);
  s->out_src = sym_sd_event_source_disable_unref (s->out_src);
  s->notify_src = sym_sd_event_source_disable_unref (s->notify_src);
  if (s->out_fd >= 0)
    close (s->out_fd);
  if (s->notify_fd >= 0)
    close (s->notify_fd);
  if (s->notify_path)
    unlink (s->notify_path);
  s->out_fd = s->notify_fd = -1;
  avm_logsink_free (s->log);
  s->log = NULL;
  free (s->env); /* (borrowed strings) */
  s->env = NULL;
  free (s->ready_real);
  s->ready_real = NULL;
  s->ready_resolved = false;
  free (s->notify_path);
  free (s->notify_status);
  for (size_t i = 0; i < TAIL_LINES; i++)
    free (s->tail[i]);
}

static int
on_output (sd_event_source *src, int fd, uint32_t revents, void *data)
{
  struct svc *s = data;
  int r = avm_logsink_drain (s->log, fd);
  sv_log_check (s->sv, s->log);
  if (r == 1 || r == 0)
    return 0;
  /* EOF (every writer gone) or a read error: this pipe is done.  */
  s->out_src = sym_sd_event_source_disable_unref (s->out_src);
  close (s->out_fd);
  s->out_fd = -1;
  return 0;
}

static int
on_notify (sd_event_source *src, int fd, uint32_t revents, void *data)
{
  struct svc *s = data;
  bool ready = false;
  avm_notify_receive (fd, &ready, &s->notify_status);
  if (ready && s->state == SVC_STARTING)
    svc_set_ready (s);
  return 0;
}

static int
on_ready_timeout (sd_event_source *src, uint64_t usec, void *data)
{
  struct svc *s = data;
  s->timer = sym_sd_event_source_unref (s->timer);
  if (s->state != SVC_STARTING)
    return 0;
  const char *what = s->ready == AVM_READY_SOCKET   ? "its socket is not listening"
                     : s->ready == AVM_READY_FILE   ? "its ready file does not exist"
                     : s->ready == AVM_READY_NOTIFY ? "it did not send READY=1"
                                                    : "not ready";
  _cleanup_free_ char *tail = svc_tail (s);
  sv_fail (s->sv, AVM_EXIT_SERVICE, "service %s (pid %d) not ready within %.1f s: %s%s%s%s%s%s; log: %s", s->name,
           (int) s->pid, (double) s->ready_timeout / USEC_PER_SEC, what, s->ready_path ? " (" : "",
           s->ready_path ? s->ready_path : "", s->ready_path ? ")" : "", tail ? "; last output: " : "",
           tail ? tail : "", avm_logsink_path (s->log));
  return 0;
}

/* Start the service; svc_kick_ready then looks at its readiness (kept
   apart so that a batch of services is started before anything one of
   them makes ready starts more).  Before the event loop exists (start_early
   in supervisor.c) only the process is started: svc_attach adds its event
   sources once the loop is there.  */
int
svc_start (struct svc *s, avm_error_t *err)
{
  struct sv *sv = s->sv;
  int p[2], r;

  if (s->out_fd >= 0)
    {
      /* The previous run's pipe may still have writers (its orphans): a
         fresh pipe keeps this run's output apart and its EOF meaningful.  */
      s->out_src = sym_sd_event_source_disable_unref (s->out_src);
      avm_logsink_drain (s->log, s->out_fd);
      close (s->out_fd);
      s->out_fd = -1;
    }
  if (pipe2 (p, O_CLOEXEC) < 0)
    return avm_error_sys (err, errno, "service %s: pipe", s->name);
  fcntl (p[0], F_SETFL, O_NONBLOCK);
  s->out_fd = p[0];

  _cleanup_free_ char *what = avm_strdupf ("service %s", s->name);
  struct avm_spawn_request req = {
    .program = s->program,
    .args = s->def->argv,
    .nargs = s->def->argc,
    .envv = s->env,
    .nenv = s->nenv,
    .lookup = avm_resources_lookup,
    .lookup_data = sv->res,
    .stdin_name = s->def->stdin_res,
    .out_fd = p[1],
    .workdir = s->def->workdir,
    .what = s->qemu ? "QEMU" : what,
  };
  struct avm_child child;
  r = avm_spawn (&req, &child, err);
  close (p[1]);
  if (r < 0)
    return r;
  s->pid = child.pid;
  s->t_spawn = sv_now (sv);
  if (s->starts == 0)
    s->t_first = s->t_spawn;
  memmove (s->burst + 1, s->burst, sizeof s->burst - sizeof s->burst[0]);
  s->burst[0] = s->t_spawn;
  s->starts++;
  s->state = SVC_STARTING;
  s->killed = false;
  if (!s->qemu)
    sv_info (sv, "%s: started (pid %d)", s->name, (int) s->pid);
  return sv->e ? svc_attach (s, err) : 0;
}

/* The event sources of a started service: its output, its notification
   socket, and its ready timeout, counted from its spawn.  */
int
svc_attach (struct svc *s, avm_error_t *err)
{
  struct sv *sv = s->sv;
  int r;
  if (s->out_fd >= 0 && !s->out_src)
    {
      if ((r = sym_sd_event_add_io (sv->e, &s->out_src, s->out_fd, EPOLLIN, on_output, s)) < 0)
        return avm_error_sys (err, -r, "service %s: event source", s->name);
      sym_sd_event_source_set_priority (s->out_src, SD_EVENT_PRIORITY_IDLE);
    }
  if (s->notify_fd >= 0 && !s->notify_src
      && (r = sym_sd_event_add_io (sv->e, &s->notify_src, s->notify_fd, EPOLLIN, on_notify, s)) < 0)
    return avm_error_sys (err, -r, "service %s: event source", s->name);
  if (s->qemu || s->state != SVC_STARTING || s->ready == AVM_READY_NONE)
    return 0;
  if ((r = sv_timer_at (sv, &s->timer, s->t_spawn + s->ready_timeout, on_ready_timeout, s)) < 0)
    return avm_error_sys (err, -r, "service %s: timer", s->name);
  return 0;
}

/* After a restart: a service without a readiness check is ready now;
   the others are looked at once.  */
void
svc_kick_ready (struct svc *s)
{
  if (s->state != SVC_STARTING || s->qemu)
    return;
  if (s->ready == AVM_READY_NONE)
    svc_set_ready (s);
  else if (svc_check_ready (s->sv))
    sv_schedule (s->sv);
}

bool
svc_mark_ready (struct svc *s)
{
  struct sv *sv = s->sv;
  sv_timer_cancel (&s->timer);
  s->state = SVC_READY;
  s->t_ready = sv_now (sv);
  if (!s->qemu)
    sv_info (sv, "%s: ready in %.0f ms", s->name, (double) (s->t_ready - s->t_spawn) / USEC_PER_MSEC);
  sv_status (sv);
  return true;
}

void
svc_set_ready (struct svc *s)
{
  svc_mark_ready (s);
  sv_schedule (s->sv);
}

/* The shared readiness check: one read of /proc/net/unix serves every
   service waiting for a socket.  It runs when something is created in the
   directory of a path waited for (inotify: bind() creates the socket, a
   ready file appears), and on a tick as well, for what inotify cannot see
   (listen() after bind(), a directory that does not exist yet): every
   millisecond for the first 50 ms after a start, then every 10 ms, then
   every 50 ms after 1 s (helpers that are ready at once are seen at once;
   slow ones cost little).  */
static int
on_ready_poll (sd_event_source *src, uint64_t usec, void *data)
{
  struct sv *sv = data;
  sv->ready_poll = sym_sd_event_source_unref (sv->ready_poll);
  if (svc_check_ready (sv))
    sv_schedule (sv);
  return 0;
}

#define READY_RECHECK_USEC 200ULL

static int
on_ready_event (sd_event_source *src, int fd, uint32_t revents, void *data)
{
  struct sv *sv = data;
  char buf[4096] __attribute__ ((aligned (__alignof__(struct inotify_event))));
  while (read (fd, buf, sizeof buf) > 0) /* the events only wake us: drain them */
    ;
  if (svc_check_ready (sv))
    sv_schedule (sv);
  /* A socket is created by bind() and listens only after listen(): when
     something is still waited for, look again very soon rather than at
     the next tick.  */
  bool watching = false;
  for (size_t i = 0; i < sv->n; i++)
    watching |= sv->svcs[i].ready_watched;
  if (sv->ready_watch && watching && sv->phase != PHASE_STOPPING)
    sv_timer (sv, &sv->ready_poll, READY_RECHECK_USEC, on_ready_poll, sv);
  return 0;
}

/* Nothing is waited for any more: the watches go (inotify_rm_watch
   returns at once) and the source is turned off, but the inotify
   descriptor is kept for a later start (a restart) and closed only by
   svc_ready_watch_close (teardown).  Closing a descriptor that has had
   watches waits for the kernel to free their marks (fsnotify_destroy_group
   flushes the mark reaper, an SRCU grace period): 14 to 18 ms in most
   runs on 2 CPUs, right between the last helper found ready and QEMU's
   spawn when it was closed here.  */
void
svc_ready_watch_idle (struct sv *sv)
{
  for (size_t i = 0; i < sv->n; i++)
    {
      struct svc *s = &sv->svcs[i];
      if (!s->ready_watched)
        continue;
      s->ready_watched = false;
      if (s->ready_wd < 0)
        continue;
      /* (Services waiting in one directory share its watch: removed once.)  */
      for (size_t k = i + 1; k < sv->n; k++)
        if (sv->svcs[k].ready_watched && sv->svcs[k].ready_wd == s->ready_wd)
          sv->svcs[k].ready_wd = -1;
      inotify_rm_watch (sv->ready_inotify, s->ready_wd);
      s->ready_wd = -1;
    }
  if (sv->ready_watch)
    sym_sd_event_source_set_enabled (sv->ready_watch, SD_EVENT_OFF);
}

void
svc_ready_watch_close (struct sv *sv)
{
  sv->ready_watch = sym_sd_event_source_disable_unref (sv->ready_watch);
  if (sv->ready_inotify >= 0)
    close (sv->ready_inotify);
  sv->ready_inotify = -1;
  for (size_t i = 0; i < sv->n; i++)
    {
      sv->svcs[i].ready_watched = false;
      sv->svcs[i].ready_wd = -1;
    }
}

/* Watch the directory of S's ready path (best effort: the tick remains).  */
static void
ready_watch_add (struct svc *s)
{
  struct sv *sv = s->sv;
  s->ready_wd = -1;
  if (sv->ready_inotify < 0)
    {
      int fd = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);
      if (fd < 0)
        return;
      if (sym_sd_event_add_io (sv->e, &sv->ready_watch, fd, EPOLLIN, on_ready_event, sv) < 0)
        {
          close (fd);
          return;
        }
      sv->ready_inotify = fd;
    }
  else
    sym_sd_event_source_set_enabled (sv->ready_watch, SD_EVENT_ON);
  _cleanup_free_ char *dir = strdup (s->ready_path);
  char *slash = dir ? strrchr (dir, '/') : NULL;
  if (!slash)
    return;
  *(slash == dir ? slash + 1 : slash) = '\0';
  s->ready_wd = inotify_add_watch (sv->ready_inotify, dir, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
}

bool
svc_check_ready (struct sv *sv)
{
  const char **paths = sv->ready_paths;
  bool *found = sv->ready_found, sockets = false, waiting = false, any = false;
  memset (paths, 0, 2 * sv->n * sizeof *paths);
  memset (found, 0, 2 * sv->n * sizeof *found);
  for (size_t i = 0; i < sv->n; i++)
    {
      struct svc *s = &sv->svcs[i];
      if (s->state != SVC_STARTING || (s->ready != AVM_READY_SOCKET && s->ready != AVM_READY_FILE))
        continue;
      if (!s->ready_watched)
        {
          ready_watch_add (s);
          s->ready_watched = true;
        }
      if (s->ready == AVM_READY_FILE)
        found[2 * i] = avm_file_ready (s->ready_path);
      else
        {
          /* Resolved once, when its directory exists.  */
          if (!s->ready_resolved && avm_ready_canonical_path (s->ready_path, &s->ready_real) == 0)
            s->ready_resolved = true;
          paths[2 * i] = s->ready_path;
          paths[2 * i + 1] = s->ready_real;
          sockets = true;
        }
    }
  if (sockets)
    {
      /* One read and one pass over the table for every socket waited for.  */
      _cleanup_free_ char *unix_text = NULL;
      avm_error_t e = NULL;
      if (avm_read_file ("/proc/net/unix", AVM_PROC_NET_UNIX_MAX, "the socket table", &unix_text, NULL, &e) == 0)
        avm_unix_listening_set (unix_text, paths, 2 * sv->n, found);
      avm_error_free (e);
    }
  for (size_t i = 0; i < sv->n; i++)
    {
      struct svc *s = &sv->svcs[i];
      if (s->state != SVC_STARTING || (s->ready != AVM_READY_SOCKET && s->ready != AVM_READY_FILE))
        continue;
      if (found[2 * i] || found[2 * i + 1])
        any |= svc_mark_ready (s);
      else
        waiting = true;
    }
  if (!waiting || sv->phase == PHASE_STOPPING)
    {
      svc_ready_watch_idle (sv); /* nothing waited for: no more wake-ups */
      return any;
    }
  if (sv->ready_poll)
    return any;
  uint64_t since = sv_now (sv) - sv->ready_poll_since;
  uint64_t delay = since < 50 * USEC_PER_MSEC ? USEC_PER_MSEC
                   : since < USEC_PER_SEC     ? 10 * USEC_PER_MSEC
                                              : 50 * USEC_PER_MSEC;
  sv_timer (sv, &sv->ready_poll, delay, on_ready_poll, sv);
  return any;
}

static int
on_restart (sd_event_source *src, uint64_t usec, void *data)
{
  struct svc *s = data;
  s->timer = sym_sd_event_source_unref (s->timer);
  if (s->state != SVC_BACKOFF || s->sv->phase == PHASE_STOPPING)
    return 0;
  _cleanup_error_ avm_error_t err = NULL;
  s->restarts++;
  s->sv->ready_poll_since = sv_now (s->sv);
  if (svc_start (s, &err) < 0)
    {
      sv_info (s->sv, "%s: restart failed: %s", s->name, err->msg);
      s->state = SVC_STARTING;
      svc_exited (s, 127, 0);
    }
  else
    svc_kick_ready (s);
  return 0;
}

void
svc_exited (struct svc *s, int code, int sig)
{
  struct sv *sv = s->sv;
  _cleanup_free_ char *how = sv_describe_exit (code, sig);
  enum svc_state was = s->state;
  uint64_t now = sv_now (sv);

  s->pid = 0;
  s->exit_code = code;
  s->exit_signal = sig;
  sv_timer_cancel (&s->timer);
  /* Whatever it printed last is in the pipe: read it before judging.  */
  if (s->out_fd >= 0)
    avm_logsink_drain (s->log, s->out_fd);

  if (s->qemu)
    {
      guest_exited (sv);
      return;
    }
  if (sv->phase == PHASE_STOPPING)
    {
      s->state = SVC_EXITED;
      /* HOW already names the signal when it was our SIGKILL.  */
      sv_info (sv, "%s: %s%s", s->name, how, s->killed && sig != SIGKILL ? " (after SIGKILL)" : "");
      sv_stop_continue (sv);
      return;
    }

  _cleanup_free_ char *tail = svc_tail (s);
  if (was == SVC_STARTING && s->starts == 1 && sv->phase == PHASE_HELPERS)
    {
      /* Start-up fails fast: a helper that dies before it is ready the
         first time is a configuration problem, not a glitch.  */
      s->state = SVC_FAILED;
      sv_fail (sv, AVM_EXIT_SERVICE, "service %s %s before it was ready%s%s; log: %s", s->name, how,
               tail ? "; last output: " : "", tail ? tail : "", avm_logsink_path (s->log));
      return;
    }

  bool failed = sig != 0 || code != 0;
  if (now - s->t_spawn >= RESTART_STABLE)
    s->failures = 0;
  if (failed)
    s->failures++;
  bool want = s->restart == AVM_RESTART_ALWAYS || (s->restart == AVM_RESTART_ON_FAILURE && failed);
  if (want && s->starts >= RESTART_BURST && now - s->burst[RESTART_BURST - 1] < RESTART_INTERVAL)
    {
      s->state = SVC_FAILED;
      if (s->critical)
        sv_fail (sv, AVM_EXIT_SERVICE,
                 "service %s %s; crash loop: %d starts within %llu s, not restarting it again%s%s; log: %s", s->name,
                 how, RESTART_BURST, (unsigned long long) (RESTART_INTERVAL / USEC_PER_SEC),
                 tail ? "; last output: " : "", tail ? tail : "", avm_logsink_path (s->log));
      else
        sv_info (sv, "%s: %s; crash loop (%d starts within %llu s): giving up on this non-critical service", s->name,
                 how, RESTART_BURST, (unsigned long long) (RESTART_INTERVAL / USEC_PER_SEC));
      sv_status (sv);
      return;
    }
  if (want)
    {
      unsigned shift = s->failures > 1 ? s->failures - 1 : 0;
      uint64_t delay = shift >= 6 ? RESTART_DELAY_MAX : RESTART_DELAY_MIN << shift;
      if (delay > RESTART_DELAY_MAX)
        delay = RESTART_DELAY_MAX;
      s->state = SVC_BACKOFF;
      s->t_restart = sv_now (sv) + delay;
      sv_info (sv, "%s: %s; restarting in %.1f s", s->name, how, (double) delay / USEC_PER_SEC);
      sv_timer (sv, &s->timer, delay, on_restart, s);
      sv_status (sv);
      return;
    }
  s->state = failed ? SVC_FAILED : SVC_EXITED;
  if (s->critical)
    sv_fail (sv, AVM_EXIT_SERVICE, "critical service %s %s (restart policy: %s)%s%s; log: %s", s->name, how,
             s->restart == AVM_RESTART_NO ? "no" : "on-failure", tail ? "; last output: " : "", tail ? tail : "",
             avm_logsink_path (s->log));
  else
    sv_info (sv, "%s: %s; not restarted (restart policy), the platform keeps running", s->name, how);
  sv_status (sv);
}

static int
on_stop_timeout (sd_event_source *src, uint64_t usec, void *data)
{
  struct svc *s = data;
  s->timer = sym_sd_event_source_unref (s->timer);
  if (s->pid > 0)
    {
      sv_info (s->sv, "%s: still running %.1f s after SIGTERM: SIGKILL", s->name,
               (double) s->stop_timeout / USEC_PER_SEC);
      svc_kill (s);
    }
  return 0;
}

void
svc_kill (struct svc *s)
{
  if (s->pid <= 0)
    return;
  s->killed = true;
  if (kill (-s->pid, SIGKILL) < 0)
    kill (s->pid, SIGKILL);
}

/* SIGTERM to the process group, SIGKILL after the stop timeout.  */
void
svc_stop (struct svc *s)
{
  if (s->pid <= 0)
    return;
  s->state = SVC_STOPPING;
  if (s->sv->kill_now)
    {
      svc_kill (s);
      return;
    }
  if (kill (-s->pid, SIGTERM) < 0)
    kill (s->pid, SIGTERM);
  sv_timer (s->sv, &s->timer, s->stop_timeout, on_stop_timeout, s);
}
