/* SPDX-License-Identifier: Apache-2.0 */
/* Running `avm start` in the background from tests (startutil.c).  */
#pragma once

#include "testutil.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct ts_env
{
  char *dir;        /* per-test temporary directory */
  char *run;        /* AVM_RUNTIME_DIR */
  char *state;      /* AVM_STATE_DIR */
  char *run1;       /* run/1 */
  const char *fake; /* the fault-injection helper */
  uid_t uid;        /* run avm as this user (uid = gid, no other groups); 0: as the test */
};

/* Run avm as UID from now on: DIR is given to it.  The test must run as
   root; skipped, with the reason, when UID cannot read PATHS (NULL-ended:
   the source tree, the images).  */
void ts_env_as_user (struct ts_env *env, uid_t uid, ...) __attribute__ ((sentinel));

struct ts_avm
{
  pid_t pid;
  int notify_fd;
  char *notify_path;
  char *stderr_path;
  char *msgs; /* every notification so far, "\n"-separated */
  size_t len;
  int status;    /* exit status once reaped, else -1 */
  unsigned slot; /* MSGS is also registered here, freed at the end of the test */
};

void ts_env_init (struct ts_env *env);
void ts_env_fini (struct ts_env *env);

/* Strings freed at the end of the test.  */
char *ts_fmt (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
char *ts_path (struct ts_env *env, const char *name);
/* A fast profile: pc machine under TCG with no guest, no devices but one
   log console port "console", stop timeout 1 s.  SERVICES is a JSON object
   text; BOOT a "boot": {...} member or NULL (no boot patterns: ready when
   QMP is); EXTRA more members or NULL.  Returns the file's path.  */
char *ts_profile (struct ts_env *env, const char *name, const char *services, const char *boot, const char *extra);
/* The boot member with the AAOS patterns and TIMEOUT seconds.  */
char *ts_boot (int timeout);

/* Fake-helper actions that write LINE to the console FIFO (${fd:console})
   at 0.2, 0.5, 1, 2, 4 and 8 s, then hang: lines written before QEMU
   starts are not matched, and under load QEMU may start late.  */
char *ts_console_writes (const char *line);

/* Start avm in the background (arguments after PROFILE, NULL-terminated).  */
void ts_start (struct ts_env *env, struct ts_avm *a, const char *profile, ...) __attribute__ ((sentinel));
/* Start `avm ARGS...` in the background, ARGS as given (NULL-terminated).  */
void ts_start_argv (struct ts_env *env, struct ts_avm *a, char *const args[]);
/* The same under WRAPPER: "/usr/bin/unshare" runs it as PID 1 of a new pid
   namespace (--pid --fork --mount-proc).  */
void ts_start_wrapped (struct ts_env *env, struct ts_avm *a, const char *profile, const char *wrapper, ...)
    __attribute__ ((sentinel));
/* Run ARGV (argv[0] a path; NULL-terminated) in the background as avm
   would be: stderr kept, NOTIFY_SOCKET A's socket (podman run
   --sdnotify=container passes it on to the container).  */
void ts_spawn (struct ts_env *env, struct ts_avm *a, char *const argv[]);
/* Wait for a notification containing WHAT; returns all notifications so far.  */
char *ts_wait_notify (struct ts_avm *a, const char *what, double timeout);
char *ts_notify_all (struct ts_avm *a);
/* Exit status (code, or 128 + signal); fails the test after TIMEOUT.  */
int ts_wait (struct ts_avm *a, double timeout);
char *ts_stderr (struct ts_avm *a);
void ts_avm_done (struct ts_avm *a);

/* Run the CLI with this environment's directories.  */
int ts_avm (struct ts_env *env, char **out, ...) __attribute__ ((sentinel));
json_t *ts_json (const char *text);
/* Pids of the services and QEMU of instance 1, from avm status.  */
size_t ts_pids (struct ts_env *env, pid_t *pids, size_t max);
pid_t ts_qemu_pid (struct ts_env *env);
void ts_assert_gone (const pid_t *pids, size_t n);
void ts_kill_pids (const pid_t *pids, size_t n);
char *ts_read_log (struct ts_env *env, const char *name);

double ts_now (void);
int ts_count_lines (const char *path);
int ts_count_fds (void);
pid_t ts_child_of (pid_t parent);
int ts_zombies_of (pid_t parent);
int ts_count_procs_under (const char *dir);
int ts_count_unix_sockets_under (const char *dir);
