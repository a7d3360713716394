/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Quick boot (bench/README.md, "snapshot"): the demo guest without its
 * share (-O share=off) under TCG, `avm start` to READY=1 from a cold boot
 * against `avm start --restore` of a snapshot of that same platform, in
 * the same run.  Each round: a cold boot (timed), a save (--replace,
 * timed), a stop, then BENCH_SNAP_RESTORES restores (timed, each stopped).
 * BENCH_SNAP_RUNS rounds (default 2; 0 skips).  The target (issue 18):
 * restore at least 15x faster than the cold boot.
 */
#include "bench.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* `avm ARGS` with EXTRA in the environment, to its end: exit status.  */
static int
avm_run (char *const *argv, char *const *extra, double timeout_ms)
{
  pid_t pid = spawn_env (argv, extra);
  return pid > 0 ? wait_exit (pid, timeout_ms) : -1;
}

/* `avm start ... [--restore boot]` until READY=1 (ms, or -1), then leaves
   it running in *PID.  */
static double
start_ready (const char *avm, const char *images, char *const *extra, const char *npath, bool restore, pid_t *pid)
{
  int nfd = notify_socket (npath);
  char *argv[] = { (char *) avm, "start", "-q",      "-p",   "demo", "--images", (char *) images, "--set",
                   "machine.accel=tcg",   "-O",      "share=off", restore ? "--restore" : NULL, "boot", NULL };
  double t0 = mono_ms ();
  *pid = spawn_env (argv, extra);
  bool ready = *pid > 0 && wait_ready (nfd, 300000);
  double t = mono_ms () - t0;
  close (nfd);
  return ready ? t : -1;
}

static void
stop (pid_t pid)
{
  if (pid > 0)
    {
      kill (pid, SIGTERM);
      wait_exit (pid, 60000);
    }
}

int
bench_snapshot (const char *avm, const char *srcdir)
{
  const char *e = getenv ("BENCH_SNAP_RUNS");
  int runs = e && *e ? atoi (e) : 2;
  e = getenv ("BENCH_SNAP_RESTORES");
  int restores = e && *e ? atoi (e) : 3;
  if (runs <= 0 || restores <= 0)
    return 0;
  const char *images = getenv ("BENCH_DEMO_IMAGES");
  char *img = images && *images ? xasprintf ("%s", images) : xasprintf ("%s/build/demo", srcdir);
  const char *tmp = getenv ("TMPDIR");
  char *dir = xasprintf ("%s/avm-bench-snap.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp (dir))
    return -1;
  char *env_run = xasprintf ("AVM_RUNTIME_DIR=%s/run", dir), *env_state = xasprintf ("AVM_STATE_DIR=%s/state", dir);
  char *npath = xasprintf ("%s/notify.sock", dir), *env_notify = xasprintf ("NOTIFY_SOCKET=%s", npath);
  char *extra[] = { env_run, env_state, env_notify, NULL };
  double *cold = xmalloc (runs * sizeof *cold), *save = xmalloc (runs * sizeof *save);
  double *warm = xmalloc (runs * restores * sizeof *warm);
  int ncold = 0, nwarm = 0, r = 0;
  for (int i = 0; i < runs && !interrupted && r == 0; i++)
    {
      pid_t pid;
      double t = start_ready (avm, img, extra, npath, false, &pid);
      if (t < 0)
        {
          fprintf (stderr, "avm-bench: snapshot: no READY=1 from a cold boot (make demo-image?)\n");
          stop (pid);
          r = -1;
          break;
        }
      cold[ncold] = t;
      /* A guest that has settled a little, as a CI job would save it.  */
      nap_ms (1000);
      char *sv[] = { (char *) avm, "snapshot", "save", "boot", "--replace", NULL };
      double t0 = mono_ms ();
      int st = avm_run (sv, extra, 120000);
      save[ncold++] = mono_ms () - t0;
      stop (pid);
      if (st != 0)
        {
          fprintf (stderr, "avm-bench: snapshot: avm snapshot save failed (exit %d)\n", st);
          r = -1;
          break;
        }
      for (int k = 0; k < restores && !interrupted; k++)
        {
          t = start_ready (avm, img, extra, npath, true, &pid);
          stop (pid);
          if (t < 0)
            {
              fprintf (stderr, "avm-bench: snapshot: no READY=1 from a restore\n");
              r = -1;
              break;
            }
          warm[nwarm++] = t;
        }
      fprintf (stderr, "\rsnapshot: %d/%d rounds", i + 1, runs);
      progress_open = true;
    }
  end_progress_line ();
  if (r < 0)
    failed = true;
  if (ncold > 0 && nwarm > 0)
    {
      double cmin, cmed, cmax, wmin, wmed, wmax, smin, smed, smax;
      stats (cold, ncold, &cmin, &cmed, &cmax);
      stats (warm, nwarm, &wmin, &wmed, &wmax);
      stats (save, ncold, &smin, &smed, &smax);
      printf ("\n== quick boot: demo guest (-O share=off, TCG), time to READY ==\n");
      printf ("%-46s %5s %9s %9s %9s\n", "series (ms)", "runs", "min", "median", "max");
      printf ("%-46s %5d %9.0f %9.0f %9.0f\n", "avm start (cold boot)", ncold, cmin, cmed, cmax);
      printf ("%-46s %5d %9.0f %9.0f %9.0f\n", "avm start --restore (state file, fd:)", nwarm, wmin, wmed, wmax);
      printf ("%-46s %5d %9.0f %9.0f %9.0f\n", "avm snapshot save (the whole command)", ncold, smin, smed, smax);
      printf ("  cold / restore >= 15:       %.1f  %s\n", cmed / wmed, verdict (cmed / wmed >= 15));
      bench_summary_add ("restore to READY (TCG)", "ms", wmin, wmed, wmax, "cold boot to READY (cold/restore)", cmed,
                         cmed / wmed, ">= 15x", cmed / wmed >= 15);
    }
  rm_rf (dir);
  free (dir);
  free (img);
  free (env_run);
  free (env_state);
  free (npath);
  free (env_notify);
  free (cold);
  free (save);
  free (warm);
  fflush (stdout);
  return r;
}
