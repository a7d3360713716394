/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the supervisor's files: supervisor.c (setup, phases,
   signals, stop sequence), service.c (helper life cycle), guest.c (QEMU,
   QMP, consoles, boot detection), status.c (`avm status`), snapshot_*.c
   (snapshots: snapshot_save.c, snapshot_disk.c, snapshot_helpers.c,
   snapshot_restore.c, sharing snapshot_internal.h).  */
#pragma once

#include "plan/plan.h"
#include "qemu/qmp.h"
#include "supervise/control.h"
#include "supervise/logsink.h"
#include "supervise/notify.h"
#include "supervise/resources.h"
#include "supervise/rundir.h"
#include "supervise/supervisor.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include "supervise/lazy_systemd.h"
#include <sys/types.h>

#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC 1000000ULL

/* Restart policy limits (avm-profile(5), services.NAME.restart).  */
#define RESTART_BURST 5                      /* starts ... */
#define RESTART_INTERVAL (30 * USEC_PER_SEC) /* ... within this window: crash loop */
#define RESTART_DELAY_MIN (100 * USEC_PER_MSEC)
#define RESTART_DELAY_MAX (5 * USEC_PER_SEC)
#define RESTART_STABLE (10 * USEC_PER_SEC) /* up this long: the backoff starts over */
#define QMP_TIMEOUT (30 * USEC_PER_SEC)    /* QEMU start to QMP handshake */
#define QMP_QUIT_TIMEOUT (5 * USEC_PER_SEC)
#define QEMU_TERM_TIMEOUT (5 * USEC_PER_SEC)
#define EXTEND_INTERVAL (10 * USEC_PER_SEC)
#define EXTEND_BY (30 * USEC_PER_SEC)
#define BOOT_PROGRESS_INTERVAL (30 * USEC_PER_SEC) /* "still booting (N s)" */
#define TAIL_LINES 4
#define SV_SHOT_CONTROL_TIMEOUT (4 * USEC_PER_SEC) /* avm screenshot (the client waits 5 s) */
#define SV_SHOT_FAILURE_TIMEOUT (2 * USEC_PER_SEC) /* the boot failure picture, before QEMU stops */

enum svc_state
{
  SVC_WAITING,  /* not started yet (after-dependencies, or QEMU waiting for helpers) */
  SVC_STARTING, /* running, not ready yet */
  SVC_READY,
  SVC_BACKOFF,  /* exited, restart scheduled */
  SVC_STOPPING, /* being stopped */
  SVC_EXITED,   /* exited, not to be restarted */
  SVC_FAILED,   /* gave up (policy, crash loop, readiness timeout) */
};

struct sv;

struct svc
{
  struct sv *sv;
  size_t index;
  const struct avm_plan_service *def; /* borrowed from the plan */
  const char *name;
  const char *program;
  bool qemu;
  struct avm_plan_pair *env; /* the plan's (borrowed strings), plus NOTIFY_SOCKET */
  size_t nenv;
  enum avm_ready_type ready;
  const char *ready_path;
  bool ready_watched;  /* its directory is in sv->ready_inotify */
  int ready_wd;        /* that directory's watch, or -1 */
  bool early;          /* spawned before the event loop existed: readiness not looked at yet */
  bool ready_resolved; /* ready_real is known */
  char *ready_real;    /* ready_path with its directory resolved, if that differs */
  uint64_t ready_timeout;
  enum avm_restart_policy restart;
  bool critical;
  uint64_t stop_timeout;

  enum svc_state state;
  pid_t pid;       /* also the process group */
  int exit_code;   /* last exit: code, or -1 */
  int exit_signal; /* ... or signal, else 0 */
  uint64_t t_spawn, t_ready, t_first;
  uint64_t t_restart; /* when SVC_BACKOFF ends */
  unsigned starts, restarts, failures;
  uint64_t burst[RESTART_BURST];
  bool killed;            /* SIGKILL sent during stop */
  sd_event_source *timer; /* readiness deadline, backoff, stop escalation */

  struct avm_logsink *log;
  int out_fd; /* read end of the stdout/stderr pipe */
  sd_event_source *out_src;
  char *tail[TAIL_LINES];
  size_t tail_next;

  int notify_fd;
  char *notify_path;
  char *notify_status;
  sd_event_source *notify_src;
};

struct console
{
  struct sv *sv;
  const char *name; /* the console port */
  const struct avm_resource_fd *res;
  struct avm_logsink *log;
  sd_event_source *src;
  bool boot; /* matched against the boot patterns */
};

enum phase
{
  PHASE_HELPERS,
  PHASE_QEMU, /* QEMU started, QMP not up yet */
  PHASE_BOOTING,
  PHASE_RUNNING,
  PHASE_STOPPING,
};

enum qemu_stop_stage
{
  QSTOP_NONE,
  QSTOP_SCREENSHOT, /* the boot failure picture, before anything else */
  QSTOP_POWERDOWN,
  QSTOP_QUIT,
  QSTOP_TERM,
  QSTOP_KILL,
};

/* A restore of a snapshot (avm start --restore; snapshot_restore.c).  */
struct restore
{
  const char *name; /* the snapshot, or NULL: a cold boot */
  const char *dir;
  json_t *meta; /* its metadata (borrowed from the options) */
  int step;
  uint64_t t_incoming;
  sd_event_source *timer; /* QEMU reported a failed load: its exit is due */
  /* The guest clock, set after cont (snapshot_clock.c).  */
  struct avm_qga *qga;
  sd_event_source *clock_io, *clock_timer;
  const char *clock; /* "pending", "set", "failed", "service", "none"; NULL: nothing yet */
  char *clock_error; /* "failed": why */
  int64_t behind_ns; /* the host's clock minus the guest's after cont */
  bool behind_known;
};

struct snapsave;

/* The guest: QEMU, its monitor, its consoles and its boot.  */
struct guest
{
  struct svc qemu;
  const struct avm_plan_boot *boot;
  struct console *cons;
  size_t ncons;

  uint64_t t_qemu, t_booted;
  unsigned boots;
  unsigned resets;      /* guest resets since QEMU started or the last completed boot */
  bool stopped_booting; /* stopped before the guest booted: QEMU quit, no power-down */
  sd_event_source *boot_timer;
  sd_event_source *progress_timer; /* "still booting" while the guest has not booted */

  struct avm_qmp *qmp;
  const char *qmp_path;
  sd_event_source *qmp_src, *qmp_timer;
  bool qmp_ready;
  uint64_t t_qmp;
  char *qemu_status; /* last query-status answer */
  bool shutdown;     /* SHUTDOWN event with guest=true */
  char *shutdown_reason;
  enum qemu_stop_stage qstop;
  sd_event_source *stop_timer;
  /* The boot failed (pattern, timeout, reset loop): a picture of the
     screen is taken before QEMU is stopped, into the log directory.  */
  bool failure_shot_wanted;
  char *failure_shot; /* its path, once written */
  struct restore restore;
  struct snapsave *save; /* a snapshot being saved, or NULL */
};

struct sv
{
  const struct avm_supervise_options *o;
  const struct avm_plan *plan;
  sd_event *e;
  int instance;
  const char *profile;
  const char *run_dir, *state_dir;
  char *log_dir;
  struct avm_logsink_config logcfg;
  struct avm_rundir *rundir;
  struct avm_resources *res;
  struct avm_notifier notifier;
  struct avm_control *control;

  struct svc *svcs; /* the helpers, in plan order */
  size_t n;
  struct guest g;

  enum phase phase; /* set by sv_set_phase only */
  uint64_t t_start;
  char *run_header; /* the line each log file of this run begins with */
  sd_event_source *ready_poll, *watchdog_timer, *extend_timer;
  uint64_t ready_poll_since;
  avm_error_t early_error; /* the spawn that failed before the loop existed */
  /* Scheduling: one pass per loop iteration, from a deferred event source
     (sv_schedule asks for one; nothing schedules from within a pass).  */
  sd_event_source *schedule_src;
  bool *started; /* [n]: spawned by this pass */
  /* inotify on the directories of the sockets and files services are
     waited for: a creation wakes the readiness check at once (service.c).  */
  int ready_inotify;
  sd_event_source *ready_watch;
  const char **ready_paths; /* [2 n]: the readiness check's */
  bool *ready_found;        /* [2 n] */

  /* Stopping.  */
  bool kill_now;
  char *stop_reason;
  unsigned interrupts;

  char *last_status; /* the last STATUS= sent */
  int exit_status;
  avm_error_t error; /* the first failure */
};

/* supervisor.c (phase.c: sv_status, sv_set_phase) */
void sv_info (struct sv *sv, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Warn once per log when its lines stop reaching the file (a full disk)
   or the journal (no journald).  */
void sv_log_check (struct sv *sv, struct avm_logsink *log);
void sv_fail (struct sv *sv, int status, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
void sv_status (struct sv *sv);
/* Enter phase P: the one writer of sv->phase.  Says STATUS= (READY=1,
   STOPPING=1 as the phase asks) and arms or cancels the phase's timers;
   REASON is a stop's.  */
void sv_set_phase (struct sv *sv, enum phase p, const char *reason);
void sv_request_stop (struct sv *sv, const char *reason);
void sv_kill_now (struct sv *sv, const char *reason);
/* schedule.c: ask for a scheduling pass (run from the loop, once however
   often asked); spawn the helpers that wait for nothing before the loop
   exists; the pass's event source.  */
void sv_schedule (struct sv *sv);
void sv_start_early (struct sv *sv);
int sv_schedule_attach (struct sv *sv, avm_error_t *err);
void sv_stop_continue (struct sv *sv);
uint64_t sv_now (struct sv *sv);
int sv_timer (struct sv *sv, sd_event_source **src, uint64_t delay, sd_event_time_handler_t cb, void *data);
int sv_timer_at (struct sv *sv, sd_event_source **src, uint64_t when, sd_event_time_handler_t cb, void *data);
void sv_timer_cancel (sd_event_source **src);
char *sv_describe_exit (int code, int sig);

/* service.c */
int svc_init (struct sv *sv, struct svc *s, const struct avm_plan_service *def, avm_error_t *err);
void svc_clear (struct svc *s);
int svc_start (struct svc *s, avm_error_t *err);
int svc_attach (struct svc *s, avm_error_t *err);
void svc_kick_ready (struct svc *s);
void svc_exited (struct svc *s, int code, int sig);
/* Ready: svc_mark_ready only says so (returns true), svc_set_ready also
   asks for a scheduling pass.  */
bool svc_mark_ready (struct svc *s);
void svc_set_ready (struct svc *s);
/* Look at every service waiting for a socket or a file once; true when
   one became ready (a scheduling pass is due: the caller asks for it).  */
bool svc_check_ready (struct sv *sv);
/* No more readiness wake-ups: the watches removed, the inotify descriptor
   kept (closing it may block: service.c); svc_ready_watch_close closes it
   (teardown).  */
void svc_ready_watch_idle (struct sv *sv);
void svc_ready_watch_close (struct sv *sv);
void svc_stop (struct svc *s);
void svc_kill (struct svc *s);
const char *svc_state_name (enum svc_state st);
char *svc_tail (const struct svc *s);

/* guest.c */
int guest_setup (struct sv *sv, avm_error_t *err);
int guest_start (struct sv *sv);
void guest_exited (struct sv *sv);
void guest_stop (struct sv *sv);
void guest_clear (struct sv *sv);
void guest_watchdog (struct sv *sv);
void guest_extend (struct sv *sv);
void guest_watchdog_refresh (struct sv *sv);
/* {"command":"live"} (avm status --live): a reply, or AVM_CONTROL_PENDING
   until QEMU's monitor answers query-status (the watchdog's probe).  */
json_t *guest_control_live (struct sv *sv, struct avm_control_request *req);
/* The boot timeout and progress timers: armed (QEMU started) or cancelled.  */
void guest_boot_timers (struct sv *sv, bool arm);
/* Watch the monitor for what it needs next (after a request).  */
void guest_qmp_update_io (struct sv *sv);

/* screenshot.c */
/* Called once per picture: PATH when it is written, else ERROR (a message)
   and EXIT_CODE (AVM_EXIT_*).  */
typedef void (*sv_shot_fn) (struct sv *sv, void *data, const char *path, const char *error, int exit_code);
/* Ask QEMU for a PNG of OUTPUT at PATH (QEMU writes it); DONE with DATA
   follows (never before this returns), within TIMEOUT (0: QEMU's time).
   Fails at once, without DONE, for no GPU or an output beyond it (exit code
   2), QEMU not running, its monitor not connected, QEMU before 7.1.  */
int sv_screenshot (struct sv *sv, const char *path, unsigned output, uint64_t timeout, sv_shot_fn done, void *data,
                   avm_error_t *err);
/* The boot failed: guest_stop takes a picture of the screen first (the
   first failure only).  Starting it (LOGDIR/boot-failed-*.png, output 0):
   true when guest_stop is to wait for it.  */
void sv_want_failure_shot (struct sv *sv);
bool sv_failure_shot_start (struct sv *sv);
/* {"command":"screenshot","output":K}: a reply, or AVM_CONTROL_PENDING.  */
json_t *sv_control_screenshot (struct sv *sv, json_t *request, struct avm_control_request *req);

/* snapshot_*.c: the control command {"command":"snapshot-save","name":N,
   "replace":B} (a reply, or AVM_CONTROL_PENDING); the restore, started
   when QEMU's monitor is up; the QMP events they wait for (MIGRATION,
   BLOCK_JOB_COMPLETED); a save given up at teardown (after the monitor is
   closed).  */
json_t *sv_control_snapshot_save (struct sv *sv, json_t *request, struct avm_control_request *req);
void sv_restore_start (struct sv *sv);
/* The state files of the helpers that suspend, from the snapshot restored
   (before the helpers start).  */
int sv_restore_service_files (struct sv *sv, avm_error_t *err);
void sv_snapshot_event (struct sv *sv, const char *event, json_t *data);
void sv_snapshot_clear (struct sv *sv);
/* snapshot_clock.c: the guest's clock once a restored guest runs
   (snapshot.clock), its state in the status JSON ("clock"), and its
   client closed (QEMU gone, teardown).  */
void sv_clock_after_restore (struct sv *sv);
void sv_clock_json (struct sv *sv, json_t *status);
void sv_clock_clear (struct sv *sv);
void sv_clock_free (struct sv *sv);
/* A child the supervisor reaped that is none of its services: true when it
   was the snapshot's compressor (STATUS: its wait status).  */
bool sv_snapshot_child (struct sv *sv, pid_t pid, int status);

/* status.c */
json_t *sv_status_json (struct sv *sv);
json_t *sv_control (void *data, const char *command, json_t *request, struct avm_control_request *req);
