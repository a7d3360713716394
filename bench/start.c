/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `avm start` series (bench/README.md):
 *
 *   start to QEMU exec, 9 helpers ready at once: avm with a profile of nine
 *     fake helpers that listen on their sockets at once (readiness "socket",
 *     checked through /proc/net/unix), QEMU replaced by bench/qemu-stamp,
 *     which records the moment of its exec; against the same start done the
 *     start-avm way: a shell script that probes QEMU as start-avm does on
 *     every start (-display, -device, -audio help: start_avm_probes) and
 *     backgrounds the nine helpers without waiting for them, then execs the
 *     stamp (and, for reference, the same script with the three cheapest
 *     probes: -version, -machine help, -device help); avm with its capability
 *     cache warm, as every start after the first (the stamp answers the
 *     probes by running the real QEMU; one unmeasured start fills the
 *     cache); and against the floor, the
 *     least any launcher can do (a fork of the harness spawns the helpers,
 *     connects to each socket, execs the stamp).  Targets: avm's median
 *     overhead over the floor <= 10 ms and the script >= 10x slower.
 *
 *   demo time to READY: `avm start -p demo` under TCG until READY=1 reaches
 *     a NOTIFY_SOCKET, against the same guest booted by a bare QEMU command
 *     (the argv of avm's plan, its virtiofsd and dbus-daemon started the way
 *     a script would, the boot marker read from the console FIFO).  Target:
 *     avm / bare <= 1.05.
 *
 * Environment: BENCH_FAKEHELPER, BENCH_STAMP (set by make bench),
 * BENCH_START_RUNS (default 20), BENCH_DEMO_RUNS (default 3; 0 skips),
 * BENCH_DEMO_IMAGES (default build/demo).
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HELPERS 9

extern char **environ;

double
mono_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

void
nap_ms (double ms)
{
  struct timespec ts = { (time_t) (ms / 1000), (long) ((ms - (double) (time_t) (ms / 1000) * 1000) * 1e6) };
  nanosleep (&ts, NULL);
}

/* Spawn ARGV in its own process group with ENV added, stdout/stderr to
   /dev/null.  */
pid_t
spawn_env (char *const *argv, char *const *extra)
{
  size_t n = 0, k = 0;
  while (child_env[n])
    n++;
  while (extra && extra[k])
    k++;
  char **envp = xmalloc ((n + k + 1) * sizeof *envp);
  memcpy (envp, child_env, n * sizeof *envp);
  if (k)
    memcpy (envp + n, extra, k * sizeof *envp);
  envp[n + k] = NULL;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t at;
  posix_spawnattr_init (&at);
  sigset_t none;
  sigemptyset (&none);
  posix_spawnattr_setsigmask (&at, &none);
  posix_spawnattr_setpgroup (&at, 0);
  posix_spawnattr_setflags (&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  pid_t pid;
  int r = posix_spawn (&pid, argv[0], &fa, &at, argv, envp);
  posix_spawn_file_actions_destroy (&fa);
  posix_spawnattr_destroy (&at);
  free (envp);
  if (r != 0)
    {
      fprintf (stderr, "avm-bench: cannot run %s: %s\n", argv[0], strerror (r));
      return -1;
    }
  return pid;
}

int
wait_exit (pid_t pid, double timeout_ms)
{
  double end = mono_ms () + timeout_ms;
  int st;
  for (;;)
    {
      pid_t r = waitpid (pid, &st, WNOHANG);
      if (r == pid)
        return WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
      if (mono_ms () > end)
        {
          kill (-pid, SIGKILL);
          kill (pid, SIGKILL);
          waitpid (pid, &st, 0);
          return -1;
        }
      nap_ms (1);
    }
}

/* Poll for the stamp file: the monotonic time of QEMU's exec in ms.  */
static double
wait_stamp (const char *path, double timeout_ms)
{
  double end = mono_ms () + timeout_ms;
  while (mono_ms () < end)
    {
      FILE *f = fopen (path, "r");
      long long ns;
      if (f)
        {
          int ok = fscanf (f, "%lld", &ns) == 1;
          fclose (f);
          if (ok)
            return (double) ns / 1e6;
        }
      nap_ms (0.2);
    }
  return -1;
}

static void
write_text (const char *path, const char *text)
{
  FILE *f = fopen (path, "w");
  if (!f || fputs (text, f) < 0 || fclose (f) != 0)
    {
      fprintf (stderr, "avm-bench: cannot write %s\n", path);
      exit (1);
    }
}

void
stats (double *v, int n, double *min, double *med, double *max)
{
  qsort (v, n, sizeof *v, cmp_double);
  *min = v[0];
  *max = v[n - 1];
  *med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The floor: the least any launcher can do for this start, run from a
   fork of the harness (no exec of a launcher, no profile): spawn the nine
   helpers, wait until each socket accepts a connection, exec the stamp.
   What avm takes beyond this is its overhead.  */
static pid_t
floor_launch (const char *fake, const char *stamp, const char *sockdir, char *const *extra)
{
  pid_t pid = fork ();
  if (pid != 0)
    return pid;
  setpgid (0, 0);
  char *paths[HELPERS];
  for (int i = 0; i < HELPERS; i++)
    {
      paths[i] = xasprintf ("%s/h%d.sock", sockdir, i + 1);
      unlink (paths[i]);
      char *listen = xasprintf ("listen=%s", paths[i]);
      char *argv[] = { (char *) fake, listen, "hang", NULL };
      posix_spawn_file_actions_t fa; /* in this process group: killed with it */
      posix_spawn_file_actions_init (&fa);
      posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
      posix_spawn_file_actions_addopen (&fa, 2, "/dev/null", O_WRONLY, 0);
      pid_t h;
      if (posix_spawn (&h, fake, &fa, NULL, argv, child_env) != 0)
        _exit (127);
    }
  for (int ready = 0; ready < HELPERS;)
    {
      ready = 0;
      for (int i = 0; i < HELPERS; i++)
        {
          int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
          struct sockaddr_un sa = { .sun_family = AF_UNIX };
          snprintf (sa.sun_path, sizeof sa.sun_path, "%s", paths[i]);
          ready += connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0;
          close (fd);
        }
      if (ready < HELPERS)
        nap_ms (0.1);
    }
  size_t n = 0, k = 0;
  while (child_env[n])
    n++;
  while (extra[k])
    k++;
  char **envp = xmalloc ((n + k + 1) * sizeof *envp);
  memcpy (envp, child_env, n * sizeof *envp);
  memcpy (envp + n, extra, (k + 1) * sizeof *envp);
  char *argv[] = { (char *) stamp, NULL };
  execve (stamp, argv, envp);
  _exit (127);
}

/* A launcher script in start-avm's manner: PROBES (QEMU queries, one
   process each), the nine helpers backgrounded without a readiness check
   (sockets in DIR/SUB), exec of the stamp.  */
static void
write_script (const char *path, const char *qemu, const char *const probes[START_AVM_PROBES], const char *fake,
              const char *dir, const char *sub, const char *stamp)
{
  size_t cap = 8192, len = 0;
  char *text = xmalloc (cap);
  len += snprintf (text + len, cap - len,
                   "#!/bin/sh\n# start-avm's way: probe QEMU, background the helpers, exec QEMU\n");
  for (int k = 0; k < START_AVM_PROBES; k++)
    len += snprintf (text + len, cap - len, "%s %s >/dev/null\n", qemu, probes[k]);
  len += snprintf (text + len, cap - len, "mkdir -p %s/%s\n", dir, sub);
  for (int i = 1; i <= HELPERS; i++)
    len += snprintf (text + len, cap - len, "%s listen=%s/%s/h%d.sock hang &\n", fake, dir, sub, i);
  snprintf (text + len, cap - len, "exec %s\n", stamp);
  write_text (path, text);
  free (text);
}

static int
start_series (const char *avm, const char *qemu, const char *fake, const char *stamp, const char *dir, int runs)
{
  char *profile = xasprintf ("%s/nine.json", dir), *script = xasprintf ("%s/start-avm.sh", dir);
  char *stamp_file = xasprintf ("%s/stamp", dir);
  /* The profile: nine helpers ready at once, no guest devices.  */
  size_t cap = 8192, len = 0;
  char *svc = xmalloc (cap);
  len += snprintf (svc + len, cap - len, "{");
  for (int i = 1; i <= HELPERS; i++)
    len += snprintf (svc + len, cap - len,
                     "%s\"h%d\": {\"exec\": [\"%s\", \"listen=${socket}\", \"hang\"], \"socket\": "
                     "\"${run_dir}/h%d.sock\", \"ready\": \"socket\"}",
                     i > 1 ? ", " : "", i, fake, i);
  snprintf (svc + len, cap - len, "}");
  char *text = xasprintf ("{\"description\": \"bench: nine helpers ready at once\",\n"
                          " \"machine\": {\"arch\": \"x86_64\", \"type\": \"pc\", \"accel\": \"tcg\", \"memory\": "
                          "\"128M\"},\n"
                          " \"qemu\": {\"binary\": \"%s\"},\n"
                          " \"display\": {\"backend\": \"none\", \"gpu\": \"none\"},\n"
                          " \"input\": {\"keyboard\": false, \"touch\": \"none\"}, \"network\": {\"mode\": \"none\"},\n"
                          " \"rng\": false, \"balloon\": false, \"stop\": {\"timeout\": 0},\n"
                          " \"services\": %s}\n",
                          stamp, svc);
  write_text (profile, text);
  free (text);
  /* The start-avm way, with its probes; and the same script with the
     three cheapest probes, the baseline of the runs recorded before it
     followed start-avm's probes (BENCHMARKS.md), for comparison.  */
  char probes[START_AVM_PROBES][64], *cheap = xasprintf ("%s/cheap-probes.sh", dir);
  for (int k = 0; k < START_AVM_PROBES; k++)
    snprintf (probes[k], sizeof probes[k], "%s help", start_avm_probes[k]);
  write_script (script, qemu, (const char *[]) { probes[0], probes[1], probes[2] }, fake, dir, "sh", stamp);
  write_script (cheap, qemu, (const char *[]) { "-version", "-machine help", "-device help" }, fake, dir, "cheap",
                stamp);
  free (svc);

  char *floor_dir = xasprintf ("%s/floor", dir);
  mkdir (floor_dir, 0700);
  char *env_stamp = xasprintf ("AVM_BENCH_STAMP=%s", stamp_file);
  char *env_run = xasprintf ("AVM_RUNTIME_DIR=%s/run", dir), *env_state = xasprintf ("AVM_STATE_DIR=%s/state", dir);
  char *env_cache = xasprintf ("XDG_CACHE_HOME=%s/cache", dir), *env_qemu = xasprintf ("AVM_BENCH_QEMU=%s", qemu);
  char *extra[] = { env_stamp, env_run, env_state, env_cache, env_qemu, NULL };
  /* The fake helpers are not in the approved catalog: run flagged.  */
  char *avm_argv[] = { (char *) avm, "start", "-q", "--allow-unapproved", "-p", profile, NULL };
  char *sh_argv[] = { "/bin/sh", script, NULL }, *cheap_argv[] = { "/bin/sh", cheap, NULL };
  /* The series, run in this order each round; the floor is a fork of the
     harness (floor_launch), the others are spawned.  */
  enum
  {
    AVM,
    SCRIPT,
    FLOOR,
    CHEAP,
    N_START
  };
  struct
  {
    const char *name;
    char **argv;
    double *t, min, med, max;
  } ser[N_START] = {
    [AVM] = { "avm start (readiness checked)", avm_argv },
    [SCRIPT] = { "start-avm way (its 3 QEMU probes, helpers &)", sh_argv },
    [FLOOR] = { "floor (fork, spawn 9, connect, exec)", NULL },
    [CHEAP] = { "  same script, 3 cheapest probes (reference)", cheap_argv },
  };
  for (int k = 0; k < N_START; k++)
    ser[k].t = xmalloc (runs * sizeof *ser[k].t);
  int ok = 0;
  /* Run -1: avm probes the stamp (that is, QEMU) and fills its cache;
     not measured.  */
  for (int i = -1; i < runs && !interrupted; i++)
    {
      for (int which = 0; which < N_START; which++)
        {
          if (i < 0 && which != AVM)
            break;
          unlink (stamp_file);
          double t0 = mono_ms ();
          pid_t pid
              = which == FLOOR ? floor_launch (fake, stamp, floor_dir, extra) : spawn_env (ser[which].argv, extra);
          if (pid < 0)
            return -1;
          double t1 = wait_stamp (stamp_file, 30000);
          if (which == AVM)
            {
              kill (pid, SIGTERM);
              int st = wait_exit (pid, 30000);
              if (t1 < 0 || st != 0)
                {
                  fprintf (stderr, "avm-bench: avm start (nine helpers) failed (exit %d, stamp %s)\n", st,
                           t1 < 0 ? "missing" : "seen");
                  failed = true;
                  return -1;
                }
            }
          else
            {
              kill (-pid, SIGKILL);
              wait_exit (pid, 5000);
              if (t1 < 0)
                {
                  fprintf (stderr, "avm-bench: the %s failed\n",
                           which == FLOOR ? "floor launcher" : "start-avm script");
                  failed = true;
                  return -1;
                }
            }
          if (i >= 0)
            ser[which].t[i] = t1 - t0;
        }
      ok = i + 1;
      fprintf (stderr, "\rstart to QEMU exec: %d/%d", ok, runs);
      progress_open = true;
    }
  end_progress_line ();
  if (ok == 0)
    return -1;
  printf ("\n== avm start: time from start to QEMU's exec, %d helpers ready at once ==\n", HELPERS);
  printf ("%-46s %5s %9s %9s %9s\n", "series (ms)", "runs", "min", "median", "max");
  for (int k = 0; k < N_START; k++)
    {
      stats (ser[k].t, ok, &ser[k].min, &ser[k].med, &ser[k].max);
      printf ("%-46s %5d %9.2f %9.2f %9.2f\n", ser[k].name, ok, ser[k].min, ser[k].med, ser[k].max);
    }
  double amed = ser[AVM].med, bmed = ser[SCRIPT].med, cmed = ser[FLOOR].med, dmed = ser[CHEAP].med;
  printf ("  start-avm's probes: QEMU %s help, %s help, %s help; cheapest: -version,\n"
          "  -machine help, -device help (the script of runs recorded before 2026-11-22)\n",
          start_avm_probes[0], start_avm_probes[1], start_avm_probes[2]);
  printf ("  avm overhead over the floor, median <= 10 ms: %.2f ms  %s\n", amed - cmed, verdict (amed - cmed <= 10.0));
  printf ("  script / avm >= 10x:                          %.1fx  %s\n", bmed / amed, verdict (bmed / amed >= 10.0));
  printf ("  (script / floor, the most any launcher gets:   %.1fx)\n", bmed / cmed);
  printf ("  (cheapest-probe script / avm, not a target:    %.1fx; / floor %.1fx)\n", dmed / amed, dmed / cmed);
  bench_summary_add ("avm start to QEMU exec, 9 helpers: overhead", "ms", ser[AVM].min - cmed, amed - cmed,
                     ser[AVM].max - cmed, "floor: spawn 9, connect, exec (avm/floor)", cmed, amed / cmed, "<= 10 ms",
                     amed - cmed <= 10.0);
  bench_summary_add ("avm start to QEMU exec, 9 helpers", "ms", ser[AVM].min, amed, ser[AVM].max,
                     "start-avm way (script/avm)", bmed, bmed / amed, ">= 10x", bmed / amed >= 10.0);
  for (int k = 0; k < N_START; k++)
    free (ser[k].t);
  free (cheap);
  rm_rf (floor_dir);
  free (floor_dir);
  return 0;
}

/* ---- demo time to READY -------------------------------------------------- */

int
notify_socket (const char *path)
{
  int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", path);
  unlink (path);
  if (fd < 0 || bind (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    return -1;
  return fd;
}

bool
wait_ready (int fd, double timeout_ms)
{
  double end = mono_ms () + timeout_ms;
  while (mono_ms () < end)
    {
      struct pollfd p = { fd, POLLIN, 0 };
      if (poll (&p, 1, 100) == 1)
        {
          char buf[4096];
          ssize_t n = recv (fd, buf, sizeof buf - 1, 0);
          if (n > 0 && (buf[n] = '\0', strstr (buf, "READY=1")))
            return true;
        }
    }
  return false;
}

static bool
wait_marker (int fd, const char *marker, double timeout_ms)
{
  double end = mono_ms () + timeout_ms;
  char buf[8192];
  size_t len = 0;
  while (mono_ms () < end)
    {
      struct pollfd p = { fd, POLLIN, 0 };
      if (poll (&p, 1, 100) != 1)
        continue;
      ssize_t n = read (fd, buf + len, sizeof buf - 1 - len);
      if (n <= 0)
        continue;
      len += n;
      buf[len] = '\0';
      if (strstr (buf, marker))
        return true;
      if (len > sizeof buf / 2)
        {
          memmove (buf, buf + len - 256, 256);
          len = 256;
        }
    }
  return false;
}

static bool
wait_socket_file (const char *path, double timeout_ms)
{
  double end = mono_ms () + timeout_ms;
  struct stat st;
  while (mono_ms () < end)
    {
      if (stat (path, &st) == 0 && S_ISSOCK (st.st_mode))
        return true;
      nap_ms (1);
    }
  return false;
}

/* While the demo guest runs: SHOTS rounds of `avm screenshot -o FILE`
   (QMP screendump of the 1024x768 output, PNG, copied into FILE) and, as
   the same-run baseline, `avm status --json` (the same CLI start and
   control-socket round trip, without QEMU), interleaved; the times go to
   S and B from index *N on.  */
static int
shot_rounds (const char *avm, char **extra, const char *dir, int shots, double *s, double *b, int *n)
{
  char *file = xasprintf ("%s/shot.png", dir);
  char *shot_argv[] = { (char *) avm, "screenshot", "-o", file, NULL };
  char *status_argv[] = { (char *) avm, "status", "--json", NULL };
  int r = 0;
  for (int i = 0; i < shots && !interrupted; i++)
    for (int which = 0; which < 2; which++)
      {
        double t0 = mono_ms ();
        pid_t pid = spawn_env (which ? status_argv : shot_argv, extra);
        int st = pid > 0 ? wait_exit (pid, 30000) : -1;
        double t = mono_ms () - t0;
        if (st != 0)
          {
            fprintf (stderr, "avm-bench: demo: avm %s failed (exit %d)\n", which ? "status" : "screenshot", st);
            failed = true;
            r = -1;
            goto out;
          }
        (which ? b : s)[*n] = t;
        if (which)
          (*n)++;
      }
out:
  unlink (file);
  free (file);
  return r;
}

static int
demo_series (const char *avm, const char *images, const char *dir, int runs)
{
  const char *e = getenv ("BENCH_SHOT_RUNS");
  int shots = e && *e ? atoi (e) : 10;
  double *shot_a = xmalloc ((runs * shots + 1) * sizeof *shot_a),
         *shot_b = xmalloc ((runs * shots + 1) * sizeof *shot_b);
  int nshots = 0;
  char *run = xasprintf ("%s/demo-run", dir), *state = xasprintf ("%s/demo-state", dir);
  char *env_run = xasprintf ("AVM_RUNTIME_DIR=%s", run), *env_state = xasprintf ("AVM_STATE_DIR=%s", state);
  char *npath = xasprintf ("%s/notify.sock", dir), *env_notify = xasprintf ("NOTIFY_SOCKET=%s", npath);
  char *plan_path = xasprintf ("%s/demo-plan.json", dir);
  /* The plan: its QEMU argv and helper argvs are what the bare run uses.  */
  char *plan_argv[] = { (char *) avm,        "start",     "-p",     "demo", "--images", (char *) images, "--set",
                        "machine.accel=tcg", "--dry-run", "--json", NULL };
  {
    size_t n = 0;
    while (child_env[n])
      n++;
    char **saved = child_env;
    char **envp = xmalloc ((n + 3) * sizeof *envp);
    memcpy (envp, saved, n * sizeof *envp);
    envp[n] = env_run;
    envp[n + 1] = env_state;
    envp[n + 2] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init (&fa);
    posix_spawn_file_actions_addopen (&fa, 1, plan_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int st = -1;
    if (posix_spawn (&pid, avm, &fa, NULL, plan_argv, envp) == 0)
      waitpid (pid, &st, 0);
    posix_spawn_file_actions_destroy (&fa);
    free (envp);
    if (st != 0)
      {
        fprintf (stderr, "avm-bench: demo: avm start --dry-run --json failed (make demo-image first?)\n");
        failed = true;
        return -1;
      }
  }
  json_error_t je;
  json_t *plan = json_load_file (plan_path, 0, &je);
  json_t *qargv = json_object_get (json_object_get (plan, "qemu"), "argv");
  if (!plan || !json_is_array (qargv))
    {
      fprintf (stderr, "avm-bench: demo: unreadable plan %s\n", plan_path);
      failed = true;
      return -1;
    }

  double *a = xmalloc (runs * sizeof *a), *b = xmalloc (runs * sizeof *b);
  int ok = 0;
  for (int i = 0; i < runs && !interrupted; i++)
    {
      /* avm */
      int nfd = notify_socket (npath);
      char *extra[] = { env_run, env_state, env_notify, NULL };
      char *argv[] = { (char *) avm,        "start", "-q", "-p", "demo", "--images", (char *) images, "--set",
                       "machine.accel=tcg", NULL };
      double t0 = mono_ms ();
      pid_t pid = spawn_env (argv, extra);
      bool ready = pid > 0 && wait_ready (nfd, 300000);
      a[i] = mono_ms () - t0;
      if (ready && shots > 0 && shot_rounds (avm, extra, dir, shots, shot_a, shot_b, &nshots) < 0)
        ready = false;
      if (pid > 0)
        {
          kill (pid, SIGTERM);
          wait_exit (pid, 60000);
        }
      close (nfd);
      if (!ready)
        {
          fprintf (stderr, "avm-bench: demo: no READY=1 from avm start\n");
          failed = true;
          return -1;
        }

      /* bare: the same helpers and QEMU argv, started like a script would.  */
      char *rd = xasprintf ("%s/1", run);
      rm_rf (run);
      mkdir (run, 0700);
      mkdir (rd, 0700);
      pid_t helpers[4];
      int nh = 0;
      t0 = mono_ms ();
      json_t *res;
      size_t k;
      int console = -1;
      json_array_foreach (json_object_get (plan, "resources"), k, res)
        {
          const char *type = json_string_value (json_object_get (res, "type"));
          const char *path = json_string_value (json_object_get (res, "path"));
          if (type && path && strcmp (type, "fifo") == 0)
            {
              mkfifo (path, 0600);
              int fd = open (path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
              if (json_is_true (json_object_get (res, "log")) && console < 0)
                console = fd;
            }
          else if (type && path && strcmp (type, "fifo-pair") == 0)
            {
              char *in = xasprintf ("%s.in", path), *out = xasprintf ("%s.out", path);
              mkfifo (in, 0600);
              mkfifo (out, 0600);
              open (in, O_RDWR | O_CLOEXEC);
              open (out, O_RDWR | O_CLOEXEC);
              free (in);
              free (out);
            }
          else if (type && path && strcmp (type, "file") == 0)
            write_text (path, json_string_value (json_object_get (res, "content"))); /* dbus.conf */
        }
      json_t *svc;
      json_array_foreach (json_object_get (plan, "services"), k, svc)
        {
          json_t *sa = json_object_get (svc, "argv");
          char **av = xmalloc ((json_array_size (sa) + 1) * sizeof *av);
          size_t m;
          json_t *x;
          json_array_foreach (sa, m, x)
            av[m] = (char *) json_string_value (x);
          av[json_array_size (sa)] = NULL;
          av[0] = (char *) json_string_value (json_object_get (svc, "program"));
          if (nh < 4)
            helpers[nh++] = spawn_env (av, NULL);
          free (av);
        }
      json_array_foreach (json_object_get (plan, "services"), k, svc)
        wait_socket_file (json_string_value (json_object_get (svc, "socket")), 10000);
      char **qv = xmalloc ((json_array_size (qargv) + 1) * sizeof *qv);
      json_t *x;
      json_array_foreach (qargv, k, x)
        qv[k] = (char *) json_string_value (x);
      qv[json_array_size (qargv)] = NULL;
      pid_t q = spawn_env (qv, NULL);
      free (qv);
      bool booted = q > 0 && console >= 0 && wait_marker (console, "VIRTUAL_DEVICE_BOOT_COMPLETED", 300000);
      b[i] = mono_ms () - t0;
      if (q > 0)
        {
          kill (q, SIGKILL);
          wait_exit (q, 10000);
        }
      for (int h = 0; h < nh; h++)
        if (helpers[h] > 0)
          {
            kill (-helpers[h], SIGKILL);
            wait_exit (helpers[h], 10000);
          }
      /* Close the FIFOs opened above (descriptors above stderr that are ours).  */
      for (int fd = 3; fd < 1024; fd++)
        if (fcntl (fd, F_GETFD) >= 0 && (fcntl (fd, F_GETFD) & FD_CLOEXEC))
          {
            char link[64], target[4096];
            snprintf (link, sizeof link, "/proc/self/fd/%d", fd);
            ssize_t n = readlink (link, target, sizeof target - 1);
            if (n > 0 && (target[n] = '\0', strncmp (target, run, strlen (run)) == 0))
              close (fd);
          }
      free (rd);
      if (!booted)
        {
          fprintf (stderr, "avm-bench: demo: the bare QEMU run did not boot\n");
          failed = true;
          return -1;
        }
      ok = i + 1;
      fprintf (stderr, "\rdemo time to READY: %d/%d", ok, runs);
      progress_open = true;
    }
  end_progress_line ();
  json_decref (plan);
  if (ok == 0)
    return -1;
  double amin, amed, amax, bmin, bmed, bmax;
  stats (a, ok, &amin, &amed, &amax);
  stats (b, ok, &bmin, &bmed, &bmax);
  printf ("\n== avm start: demo guest, time to READY (TCG) ==\n");
  printf ("%-46s %5s %9s %9s %9s\n", "series (s)", "runs", "min", "median", "max");
  printf ("%-46s %5d %9.2f %9.2f %9.2f\n", "avm start -p demo (READY=1)", ok, amin / 1e3, amed / 1e3, amax / 1e3);
  printf ("%-46s %5d %9.2f %9.2f %9.2f\n", "bare QEMU, same argv and helpers (marker)", ok, bmin / 1e3, bmed / 1e3,
          bmax / 1e3);
  printf ("  avm / bare <= 1.05:         %.3f  %s\n", amed / bmed, verdict (amed / bmed <= 1.05));
  bench_summary_add ("demo time to READY (TCG)", "s", amin / 1e3, amed / 1e3, amax / 1e3,
                     "bare QEMU, same argv (avm/bare)", bmed / 1e3, amed / bmed, "<= 1.05x", amed / bmed <= 1.05);
  if (nshots > 0)
    {
      double smin, smed, smax, tmin, tmed, tmax;
      stats (shot_a, nshots, &smin, &smed, &smax);
      stats (shot_b, nshots, &tmin, &tmed, &tmax);
      printf ("\n== avm screenshot: demo guest at READY (TCG), 1024x768 PNG ==\n");
      printf ("%-46s %5s %9s %9s %9s\n", "series (ms)", "runs", "min", "median", "max");
      printf ("%-46s %5d %9.1f %9.1f %9.1f\n", "avm screenshot -o FILE", nshots, smin, smed, smax);
      printf ("%-46s %5d %9.1f %9.1f %9.1f\n", "avm status --json (same round trip)", nshots, tmin, tmed, tmax);
      printf ("  screendump + copy (median difference): %.1f ms\n", smed - tmed);
    }
  free (shot_a);
  free (shot_b);
  free (a);
  free (b);
  return 0;
}

int
bench_start (const char *avm, const char *qemu, const char *srcdir)
{
  const char *fake = getenv ("BENCH_FAKEHELPER"), *stamp = getenv ("BENCH_STAMP");
  const char *e;
  int runs = (e = getenv ("BENCH_START_RUNS")) && *e ? atoi (e) : 20;
  int demo_runs = (e = getenv ("BENCH_DEMO_RUNS")) && *e ? atoi (e) : 3;
  if (!fake || !stamp)
    {
      printf ("\n(avm start series skipped: BENCH_FAKEHELPER and BENCH_STAMP are set by make bench)\n");
      return 0;
    }
  const char *tmp = getenv ("TMPDIR");
  char *dir = xasprintf ("%s/avm-bench-start.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp (dir))
    return -1;
  int r = runs > 0 ? start_series (avm, qemu, fake, stamp, dir, runs) : 0;
  if (r == 0 && demo_runs > 0 && !interrupted)
    {
      const char *images = getenv ("BENCH_DEMO_IMAGES");
      char *img = images && *images ? xasprintf ("%s", images) : xasprintf ("%s/build/demo", srcdir);
      r = demo_series (avm, img, dir, demo_runs);
      free (img);
    }
  rm_rf (dir);
  free (dir);
  fflush (stdout);
  return r;
}
