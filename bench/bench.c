/* SPDX-License-Identifier: Apache-2.0 */
/*
 * avm-bench: latency and peak RSS of `avm start --dry-run` against the QEMU
 * probes a script launcher (start-avm) runs on every start, measured in the
 * same run on the same machine; then `avm cvd2img` against the naive
 * simg2img + dd + sgdisk pipeline and a plain copy (bench/cvd2img.c).  See
 * bench/README.md.
 *
 *   avm-bench PATH-TO-AVM
 *
 * Environment: BENCH_RUNS (runs of each avm series, default 50),
 * BENCH_SLOW_RUNS (runs of the cold-cache and QEMU probe series, default 20,
 * never more than BENCH_RUNS), BENCH_QEMU (default: qemu-system-x86_64 on
 * PATH); BENCH_SKIP_C2I, BENCH_C2I_RUNS, BENCH_C2I_MIB, BENCH_DIR for the
 * cvd2img part (bench/cvd2img.c).
 *
 * Each run is one posix_spawn + wait4 (a sequence: several, one after the
 * other), timed with CLOCK_MONOTONIC; the peak RSS is ru_maxrss of wait4
 * (it includes the children the command waited for, e.g. avm's probes).
 * Exit status: 0 when every command succeeded, whether or not the targets are
 * met (they are reported); 1 when a command failed; 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

#define TARGET_MEDIAN_MS 5.0
#define TARGET_RSS_MIB 8.0
#define MAX_STEPS 8

char **child_env;
bool failed;
bool progress_open; /* the progress line on stderr is unfinished */
volatile sig_atomic_t interrupted;
static posix_spawnattr_t spawn_attr; /* children: default SIGPIPE, no signal blocked */
static sigset_t stop_signals;        /* SIGINT, SIGTERM, SIGHUP */
static volatile pid_t running_child; /* the child run_io waits for, or 0 */

static void
on_signal (int sig)
{
  interrupted = sig;
  /* A long child (avm cvd2img, dd) stops too, so the harness can clean up
     at once.  run_io blocks these signals until running_child is set.  */
  pid_t pid = running_child;
  if (pid > 0)
    kill (pid, sig);
}

void
end_progress_line (void)
{
  if (progress_open)
    fputc ('\n', stderr);
  progress_open = false;
}

/* ------------------------------------------------------------------ */
/* Helpers.  */

void *
xmalloc (size_t n)
{
  void *p = malloc (n ? n : 1);
  if (!p)
    {
      perror ("avm-bench");
      exit (1);
    }
  return p;
}

char *
xasprintf (const char *fmt, ...)
{
  va_list ap;
  char *s;
  va_start (ap, fmt);
  int r = vasprintf (&s, fmt, ap);
  va_end (ap);
  if (r < 0)
    {
      perror ("avm-bench");
      exit (1);
    }
  return s;
}

double
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
rm_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) st;
  (void) ftw;
  int r = (flag == FTW_DP) ? rmdir (path) : unlink (path);
  if (r < 0 && errno != ENOENT)
    fprintf (stderr, "avm-bench: cannot remove %s: %s\n", path, strerror (errno));
  return 0;
}

void
rm_rf (const char *path)
{
  struct stat st;
  if (lstat (path, &st) < 0)
    return;
  nftw (path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* PROG if it contains a slash, else its first executable match on PATH.  */
char *
find_program (const char *prog)
{
  if (strchr (prog, '/'))
    return access (prog, X_OK) == 0 ? realpath (prog, NULL) : NULL;
  const char *path = getenv ("PATH");
  char *copy = strdup (path && *path ? path : "/usr/local/bin:/usr/bin:/bin"), *save = NULL;
  char *found = NULL;
  for (char *dir = strtok_r (copy, ":", &save); dir && !found; dir = strtok_r (NULL, ":", &save))
    {
      char *p = xasprintf ("%s/%s", dir, prog);
      if (access (p, X_OK) == 0)
        found = p;
      else
        free (p);
    }
  free (copy);
  return found;
}

/* The environment of every child: ours with XDG_CACHE_HOME and
   XDG_CONFIG_HOME pointing into the bench's private directory.  */
static char **
make_env (const char *cache, const char *config)
{
  size_t n = 0;
  for (char **e = environ; *e; e++)
    n++;
  char **env = xmalloc ((n + 3) * sizeof *env);
  size_t j = 0;
  for (char **e = environ; *e; e++)
    if (strncmp (*e, "XDG_CACHE_HOME=", 15) != 0 && strncmp (*e, "XDG_CONFIG_HOME=", 16) != 0)
      env[j++] = *e;
  env[j++] = xasprintf ("XDG_CACHE_HOME=%s", cache);
  env[j++] = xasprintf ("XDG_CONFIG_HOME=%s", config);
  env[j] = NULL;
  return env;
}

void
print_argv (FILE *f, char *const *argv)
{
  for (size_t i = 0; argv[i]; i++)
    fprintf (f, "%s%s", i ? " " : "", argv[i]);
}

/* bench.h */
int
run_io (char *const *argv, const char *err_path, bool show_stderr, int *status, long *maxrss_kib)
{
  posix_spawn_file_actions_t fa;
  pid_t pid;
  sigset_t old;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  if (err_path)
    posix_spawn_file_actions_addopen (&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  else if (!show_stderr)
    posix_spawn_file_actions_addopen (&fa, 2, "/dev/null", O_WRONLY, 0);
  /* No stop signal between the spawn and running_child being set (the
     child gets an empty mask from spawn_attr).  */
  sigprocmask (SIG_BLOCK, &stop_signals, &old);
  int r = posix_spawn (&pid, argv[0], &fa, &spawn_attr, argv, child_env);
  if (r == 0)
    running_child = pid;
  sigprocmask (SIG_SETMASK, &old, NULL);
  posix_spawn_file_actions_destroy (&fa);
  if (r != 0)
    {
      end_progress_line ();
      fprintf (stderr, "avm-bench: cannot run %s: %s\n", argv[0], strerror (r));
      return -1;
    }
  struct rusage ru;
  while (wait4 (pid, status, 0, &ru) < 0)
    if (errno != EINTR)
      {
        running_child = 0;
        end_progress_line ();
        perror ("avm-bench: wait4");
        return -1;
      }
  running_child = 0;
  *maxrss_kib = ru.ru_maxrss;
  return 0;
}

/* Run ARGV to completion, stdin/stdout (and stderr unless SHOW_STDERR) on
   /dev/null.  *STATUS is the wait status, *MAXRSS_KIB ru_maxrss.  */
int
run (char *const *argv, bool show_stderr, int *status, long *maxrss_kib)
{
  return run_io (argv, NULL, show_stderr, status, maxrss_kib);
}

/* First line of ARGV's standard output ("" when it has none).  */
static char *
first_line (char *const *argv)
{
  int p[2];
  if (pipe (p) < 0)
    return NULL;
  posix_spawn_file_actions_t fa;
  pid_t pid;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2 (&fa, p[1], 1);
  posix_spawn_file_actions_addclose (&fa, p[0]);
  posix_spawn_file_actions_addopen (&fa, 2, "/dev/null", O_WRONLY, 0);
  int r = posix_spawn (&pid, argv[0], &fa, &spawn_attr, argv, child_env);
  posix_spawn_file_actions_destroy (&fa);
  close (p[1]);
  if (r != 0)
    {
      close (p[0]);
      return NULL;
    }
  FILE *f = fdopen (p[0], "r");
  char *line = NULL;
  size_t size = 0;
  if (!f || getline (&line, &size, f) < 0)
    {
      free (line);
      line = strdup ("");
    }
  if (f)
    fclose (f);
  else
    close (p[0]);
  line[strcspn (line, "\n")] = '\0';
  int status;
  waitpid (pid, &status, 0);
  return line;
}

/* ------------------------------------------------------------------ */
/* Series.  */

struct series
{
  const char *name;
  const char *note;
  int runs;
  size_t n_steps;
  char *const *steps[MAX_STEPS];
  const char *clear_before_each; /* directory removed before each run (not timed) */
  /* Results.  */
  double *t; /* one per run */
  long max_kib;
  bool failed, ok;
  double min, median, max; /* ms */
  double rss_mib;          /* max ru_maxrss over runs */
};

#define SUMMARY_MAX 24
static struct
{
  char what[56], unit[8], baseline[48], target[16];
  double min, med, max, base_med, ratio;
  bool met;
} summary[SUMMARY_MAX];
static int n_summary;

void
bench_summary_add (const char *what, const char *unit, double min, double med, double max, const char *baseline,
                   double base_med, double ratio, const char *target, bool met)
{
  if (n_summary == SUMMARY_MAX)
    return;
  typeof (summary[0]) *r = &summary[n_summary++];
  snprintf (r->what, sizeof r->what, "%s", what);
  snprintf (r->unit, sizeof r->unit, "%s", unit);
  snprintf (r->baseline, sizeof r->baseline, "%s", baseline);
  snprintf (r->target, sizeof r->target, "%s", target);
  r->min = min;
  r->med = med;
  r->max = max;
  r->base_med = base_med;
  r->ratio = ratio;
  r->met = met;
}

void
bench_summary_print (void)
{
  if (n_summary == 0)
    return;
  printf ("\n== summary: every benchmark against its baseline, measured in the same run ==\n");
  printf ("%-44s %-4s %9s %9s %9s  %-40s %9s %8s  %-10s %s\n", "benchmark", "unit", "min", "median", "max", "baseline",
          "median", "ratio", "target", "");
  for (int i = 0; i < n_summary; i++)
    printf ("%-44s %-4s %9.2f %9.2f %9.2f  %-40s %9.2f %7.2fx  %-10s %s\n", summary[i].what, summary[i].unit,
            summary[i].min, summary[i].med, summary[i].max, summary[i].baseline, summary[i].base_med, summary[i].ratio,
            summary[i].target, verdict (summary[i].met));
}

const char *const start_avm_probes[START_AVM_PROBES] = { "-display", "-device", "-audio" };

int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* One run of the sequence: 0, or -1 when a command failed (reported).  */
static int
run_sequence (struct series *s, double *ms, long *rss_kib)
{
  *rss_kib = 0;
  double t0 = now_ms ();
  for (size_t i = 0; i < s->n_steps; i++)
    {
      int status;
      long kib;
      if (run (s->steps[i], false, &status, &kib) < 0)
        return -1;
      if (interrupted)
        return -1; /* the child got the signal too: no report */
      if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        {
          end_progress_line ();
          fprintf (stderr, "avm-bench: %s: `", s->name);
          print_argv (stderr, s->steps[i]);
          if (WIFEXITED (status))
            fprintf (stderr, "` exited with status %d; its error output:\n", WEXITSTATUS (status));
          else
            fprintf (stderr, "` was killed by signal %d; its error output:\n",
                     WIFSIGNALED (status) ? WTERMSIG (status) : 0);
          run (s->steps[i], true, &status, &kib);
          return -1;
        }
      if (kib > *rss_kib)
        *rss_kib = kib;
    }
  *ms = now_ms () - t0;
  return 0;
}

/* One run of S, timed into S->t[I] unless I < 0 (warm-up).  */
static void
series_run (struct series *s, int i)
{
  double ms;
  long kib;
  if (s->failed)
    return;
  if (s->clear_before_each)
    rm_rf (s->clear_before_each);
  if (run_sequence (s, &ms, &kib) < 0)
    {
      if (interrupted)
        return;
      fprintf (stderr, "avm-bench: %s: FAILED\n", s->name);
      s->failed = failed = true;
      return;
    }
  if (i < 0)
    return;
  s->t[i] = ms;
  if (kib > s->max_kib)
    s->max_kib = kib;
}

static void
series_finish (struct series *s)
{
  if (s->failed)
    return;
  qsort (s->t, s->runs, sizeof *s->t, cmp_double);
  s->min = s->t[0];
  s->max = s->t[s->runs - 1];
  s->median = s->runs % 2 ? s->t[s->runs / 2] : (s->t[s->runs / 2 - 1] + s->t[s->runs / 2]) / 2;
  s->rss_mib = s->max_kib / 1024.0;
  s->ok = true;
}

/* ------------------------------------------------------------------ */
/* Report.  */

/* This process's own RSS high-water mark (VmHWM).  Not getrusage: its
   ru_maxrss also counts the mm of make's forked child before our exec.  */
long
self_hwm_kib (void)
{
  long kib = 0;
  char line[256];
  FILE *f = fopen ("/proc/self/status", "r");
  if (!f)
    return 0;
  while (fgets (line, sizeof line, f))
    if (sscanf (line, "VmHWM: %ld kB", &kib) == 1)
      break;
  fclose (f);
  return kib;
}

/* Other work on the machine shows in the numbers: print the load.  */
void
print_load (const char *when)
{
  char buf[128] = "";
  FILE *f = fopen ("/proc/loadavg", "r");
  if (f)
    {
      if (!fgets (buf, sizeof buf, f))
        buf[0] = '\0';
      fclose (f);
    }
  buf[strcspn (buf, "\n")] = '\0';
  printf ("%s: load average %s\n", when, *buf ? buf : "unknown");
}

static void
print_machine (const char *avm, const char *qemu)
{
  char model[256] = "unknown";
  FILE *f = fopen ("/proc/cpuinfo", "r");
  if (f)
    {
      char line[512];
      while (fgets (line, sizeof line, f))
        if (!strncmp (line, "model name", 10) || !strncmp (line, "Model", 5) || !strncmp (line, "cpu model", 9))
          {
            char *c = strchr (line, ':');
            if (c)
              {
                c += 1 + strspn (c + 1, " \t");
                c[strcspn (c, "\n")] = '\0';
                snprintf (model, sizeof model, "%s", c);
                break;
              }
          }
      fclose (f);
    }
  struct utsname u;
  uname (&u);
  char *qv = first_line ((char *[]) { (char *) qemu, "-version", NULL });
  char *av = first_line ((char *[]) { (char *) avm, "--version", NULL });

  printf ("machine: %s, %ld CPUs online, %s %s %s\n", model, sysconf (_SC_NPROCESSORS_ONLN), u.sysname, u.release,
          u.machine);
  printf ("qemu:    %s (%s)\n", qemu, qv && *qv ? qv : "version unknown");
  printf ("avm:     %s (%s)\n", avm, av && *av ? av : "version unknown");
  print_load ("load at start");
  free (qv);
  free (av);
}

const char *
verdict (bool met)
{
  return met ? "met" : "MISSED";
}

static void
print_table (struct series *all, size_t n, long harness_kib)
{
  printf ("\n%-46s %5s %9s %9s %9s %13s\n", "benchmark", "runs", "min ms", "median ms", "max ms", "peak RSS MiB");
  for (size_t i = 0; i < n; i++)
    {
      struct series *s = &all[i];
      if (s->ok)
        printf ("%-46s %5d %9.2f %9.2f %9.2f %13.1f\n", s->name, s->runs, s->min, s->median, s->max, s->rss_mib);
      else
        printf ("%-46s %5d %9s %9s %9s %13s\n", s->name, s->runs, "FAILED", "-", "-", "-");
    }
  printf ("\nnotes:\n");
  for (size_t i = 0; i < n; i++)
    if (all[i].note)
      printf ("  - %s:\n    %s\n", all[i].name, all[i].note);
  printf ("  peak RSS: ru_maxrss from wait4, the maximum over the process and the children it waited\n"
          "  for.  Linux carries the pre-exec high-water mark over exec, so no value is below this\n"
          "  harness's own VmHWM (%.1f MiB; /bin/true shows the floor).\n",
          harness_kib / 1024.0);
}

int
main (int argc, char **argv)
{
  if (argc != 2 || argv[1][0] == '-')
    {
      fprintf (stderr,
               "Usage: %s PATH-TO-AVM\n"
               "Environment: BENCH_RUNS (default 50), BENCH_SLOW_RUNS (default 20), BENCH_QEMU,\n"
               "  BENCH_SKIP_C2I=1, BENCH_C2I_RUNS (default 3), BENCH_C2I_MIB (default 4096), BENCH_DIR\n",
               argv[0]);
      return 2;
    }
  int runs = 50, slow_runs = 20;
  const char *e;
  if ((e = getenv ("BENCH_RUNS")) && *e)
    runs = atoi (e);
  if ((e = getenv ("BENCH_SLOW_RUNS")) && *e)
    slow_runs = atoi (e);
  if (runs < 1 || slow_runs < 1)
    {
      fprintf (stderr, "avm-bench: BENCH_RUNS and BENCH_SLOW_RUNS must be positive integers\n");
      return 2;
    }
  if (slow_runs > runs)
    slow_runs = runs;
  if (bench_cvd2img_config () < 0)
    return 2;

  char *avm = find_program (argv[1]);
  if (!avm)
    {
      fprintf (stderr, "avm-bench: %s: not an executable\n", argv[1]);
      return 2;
    }
  e = getenv ("BENCH_QEMU");
  char *qemu = find_program (e && *e ? e : "qemu-system-x86_64");
  if (!qemu)
    {
      fprintf (stderr, "avm-bench: %s not found (install qemu-system-x86 or set BENCH_QEMU)\n",
               e && *e ? e : "qemu-system-x86_64");
      return 2;
    }

  const char *tmp = getenv ("TMPDIR");
  char *dir = xasprintf ("%s/avm-bench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp (dir))
    {
      fprintf (stderr, "avm-bench: mkdtemp %s: %s\n", dir, strerror (errno));
      return 1;
    }
  char *cache = xasprintf ("%s/cache", dir), *config = xasprintf ("%s/config", dir);
  char *images = xasprintf ("%s/images", dir), *caps_dir = xasprintf ("%s/avm", cache);
  mkdir (cache, 0700);
  mkdir (config, 0700);
  mkdir (images, 0700);
  child_env = make_env (cache, config);

  /* Remove the temporary directory on ^C, TERM, HUP and a closed output
     pipe too: stop after the current command, report, clean up.  */
  struct sigaction sa = { .sa_handler = on_signal };
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);
  sigset_t dfl;
  sigemptyset (&dfl);
  sigaddset (&dfl, SIGPIPE);
  sigemptyset (&stop_signals);
  sigaddset (&stop_signals, SIGINT);
  sigaddset (&stop_signals, SIGTERM);
  sigaddset (&stop_signals, SIGHUP);
  sigset_t none;
  sigemptyset (&none);
  posix_spawnattr_init (&spawn_attr);
  posix_spawnattr_setsigdefault (&spawn_attr, &dfl);
  posix_spawnattr_setsigmask (&spawn_attr, &none);
  posix_spawnattr_setflags (&spawn_attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  char *dry[]
      = { avm, "start", "--dry-run", "-p", "aaos-x86_64", "--set", "machine.accel=tcg", "--images", images, NULL };
  char *dry_json[] = { avm,        "start", "--dry-run", "--json", "-p", "aaos-x86_64", "--set", "machine.accel=tcg",
                       "--images", images,  NULL };
  char *avm_version[] = { avm, "--version", NULL };
  char *q_display[] = { qemu, (char *) start_avm_probes[0], "help", NULL };
  char *q_device[] = { qemu, (char *) start_avm_probes[1], "help", NULL };
  char *q_audio[] = { qemu, (char *) start_avm_probes[2], "help", NULL };
  char *q_version[] = { qemu, "-version", NULL };
  char *true_argv[] = { "/bin/true", NULL };

  struct series all[] = {
    { .name = "avm start --dry-run (warm cache)", .runs = runs, .n_steps = 1, .steps = { dry } },
    { .name = "avm start --dry-run --json (warm cache)", .runs = runs, .n_steps = 1, .steps = { dry_json } },
    { .name = "avm start --dry-run (cold cache: probes QEMU)",
      .note = "the cache is deleted before each run (untimed); avm runs its 6 QEMU probes in parallel",
      .runs = slow_runs,
      .n_steps = 1,
      .steps = { dry },
      .clear_before_each = caps_dir },
    { .name = "avm --version (process start floor)",
      .note = "exec + loading avm's shared libraries, no work",
      .runs = runs,
      .n_steps = 1,
      .steps = { avm_version } },
    { .name = "/bin/true (spawn floor)", .runs = runs, .n_steps = 1, .steps = { true_argv } },
    { .name = "probes: -display,-device,-audio help",
      .note = "start-avm's per-start probes, in its order, one process each; start-avm runs\n"
              "    `-display help` twice when the dbus display is missing: see the 2nd ratio",
      .runs = slow_runs,
      .n_steps = 3,
      .steps = { q_display, q_device, q_audio } },
    { .name = "probe: qemu -display help", .runs = slow_runs, .n_steps = 1, .steps = { q_display } },
    { .name = "probe: qemu -version", .runs = slow_runs, .n_steps = 1, .steps = { q_version } },
  };
  enum
  {
    WARM,
    WARM_JSON,
    COLD,
    AVM_VERSION,
    TRUE_FLOOR,
    PROBES,
    DISPLAY,
    QVERSION,
    N_SERIES
  };
  _Static_assert(sizeof all / sizeof all[0] == N_SERIES, "series table");

  print_machine (avm, qemu);
  fflush (stdout);
  /* Interleaved: round I runs every series that has an I-th run, so a
     change of load on the machine hits all series alike.  Round -1 is an
     unmeasured warm-up (page cache, avm's capability cache).  The cold
     series deletes the cache before its run and its run writes it again.  */
  for (size_t k = 0; k < N_SERIES; k++)
    all[k].t = xmalloc (all[k].runs * sizeof *all[k].t);
  fprintf (stderr, "avm-bench: %d rounds (%d for the cold cache and QEMU series) ", runs, slow_runs);
  progress_open = true;
  for (int i = -1; i < runs && !interrupted; i++)
    {
      for (size_t k = 0; k < N_SERIES && !interrupted; k++)
        {
          if (i >= all[k].runs)
            continue;
          series_run (&all[k], i);
          /* The warm-up run of the first series must have written the cache.  */
          struct stat st;
          if (i < 0 && k == WARM && !all[k].failed && stat (caps_dir, &st) < 0)
            {
              end_progress_line ();
              fprintf (stderr, "avm-bench: no capability cache under %s after a dry run\n", caps_dir);
              all[k].failed = all[WARM_JSON].failed = failed = true;
            }
        }
      if (i % 10 == 9)
        {
          fputc ('.', stderr);
          progress_open = true;
        }
    }
  end_progress_line ();
  if (interrupted)
    {
      fprintf (stderr, "avm-bench: interrupted (signal %d)\n", (int) interrupted);
      rm_rf (dir);
      return 128 + interrupted;
    }
  for (size_t k = 0; k < N_SERIES; k++)
    series_finish (&all[k]);

  print_table (all, N_SERIES, self_hwm_kib ());

  printf ("\nratios of medians:\n");
  if (all[PROBES].ok && all[WARM].ok)
    printf ("  probe sequence / avm dry run (warm):                 %6.1fx  (avm's whole dry run vs a\n"
            "                                                                script's probes alone)\n",
            all[PROBES].median / all[WARM].median);
  if (all[PROBES].ok && all[WARM].ok && all[DISPLAY].ok)
    printf ("  probe sequence + 2nd -display help / avm dry run:    %6.1fx\n",
            (all[PROBES].median + all[DISPLAY].median) / all[WARM].median);
  if (all[COLD].ok && all[WARM].ok)
    printf ("  avm dry run: cold cache / warm cache:                %6.1fx\n", all[COLD].median / all[WARM].median);
  if (all[QVERSION].ok && all[WARM].ok)
    printf ("  one qemu -version / avm dry run (warm):              %6.1fx\n", all[QVERSION].median / all[WARM].median);
  if (all[AVM_VERSION].ok && all[WARM].ok)
    printf ("  avm --version / avm dry run (share of process start): %5.2f\n",
            all[AVM_VERSION].median / all[WARM].median);

  printf ("\ntargets (warm cache):\n");
  if (all[WARM].ok)
    {
      printf ("  dry-run median <= %.0f ms: %.2f ms  %s\n", TARGET_MEDIAN_MS, all[WARM].median,
              verdict (all[WARM].median <= TARGET_MEDIAN_MS));
      if (all[PROBES].ok)
        bench_summary_add ("avm start --dry-run (warm cache)", "ms", all[WARM].min, all[WARM].median, all[WARM].max,
                           "start-avm's 3 QEMU probes (script/avm)", all[PROBES].median,
                           all[PROBES].median / all[WARM].median, "<= 5 ms", all[WARM].median <= TARGET_MEDIAN_MS);
    }
  if (all[WARM_JSON].ok)
    printf ("  (--json, not a target:  %.2f ms  %s)\n", all[WARM_JSON].median,
            all[WARM_JSON].median <= TARGET_MEDIAN_MS ? "within" : "over");
  if (all[WARM].ok)
    {
      double rss = all[WARM].rss_mib;
      if (all[WARM_JSON].ok && all[WARM_JSON].rss_mib > rss)
        rss = all[WARM_JSON].rss_mib;
      printf ("  peak RSS <= %.0f MiB:      %.1f MiB (max over both warm series)  %s\n", TARGET_RSS_MIB, rss,
              verdict (rss <= TARGET_RSS_MIB));
      if (all[TRUE_FLOOR].ok)
        bench_summary_add ("avm start --dry-run peak RSS", "MiB", rss, rss, rss, "/bin/true (process floor)",
                           all[TRUE_FLOOR].rss_mib, rss / all[TRUE_FLOOR].rss_mib, "<= 8 MiB", rss <= TARGET_RSS_MIB);
    }

  print_load ("\nload at end");
  rm_rf (dir);
  fflush (stdout);

  /* avm start: supervision overhead and the demo's time to READY.  */
  const char *srcdir = getenv ("AVM_SRCDIR");
  if (bench_start (avm, qemu, srcdir && *srcdir ? srcdir : ".") < 0 && interrupted)
    {
      fprintf (stderr, "avm-bench: interrupted (signal %d)\n", (int) interrupted);
      return 128 + interrupted;
    }

  /* Quick boot: a restore against a cold boot.  */
  if (bench_snapshot (avm, srcdir && *srcdir ? srcdir : ".") < 0 && interrupted)
    {
      fprintf (stderr, "avm-bench: interrupted (signal %d)\n", (int) interrupted);
      return 128 + interrupted;
    }

  /* The container's cost, and three pods on this host.  */
  if (bench_kube (avm, srcdir && *srcdir ? srcdir : ".") < 0 && interrupted)
    {
      fprintf (stderr, "avm-bench: interrupted (signal %d)\n", (int) interrupted);
      return 128 + interrupted;
    }

  /* The web display: READY to the first frame in a browser.  */
  if (bench_web (avm, srcdir && *srcdir ? srcdir : ".") < 0 && interrupted)
    {
      fprintf (stderr, "avm-bench: interrupted (signal %d)\n", (int) interrupted);
      return 128 + interrupted;
    }

  /* cvd2img: minutes of disk I/O, after the latency series are done.  */
  if (bench_cvd2img (avm) < 0 && interrupted)
    {
      fprintf (stderr, "avm-bench: interrupted (signal %d)\n", (int) interrupted);
      return 128 + interrupted;
    }
  bench_summary_print ();
  if (failed)
    {
      printf ("\navm-bench: a command failed (see above)\n");
      return 1;
    }
  return 0;
}
