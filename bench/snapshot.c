/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Quick boot (bench/README.md, "snapshot"): the demo guest without its
 * share (-O share=off) under TCG, `avm start` to READY=1 from a cold boot
 * against `avm start --restore` of a snapshot of that same platform, in
 * the same run.  Two kinds, round by round: the state streamed (the RAM
 * in it), and snapshot.fast (the RAM in a file that the save copies and
 * the restore puts back; the runtime directory on /dev/shm when there is
 * one, a tmpfs like /run/avm in production).  Each round of a kind: a
 * cold boot (timed), a save (--replace, timed), a stop, then
 * BENCH_SNAP_RESTORES restores (default 3; timed, each stopped).
 * BENCH_SNAP_RUNS rounds (default 2; 0 skips).  Targets (issue 18),
 * against the plain cold boot: at least 15x faster streamed, at least 50x
 * with the fast path.
 */
#include "bench.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct kind
{
  const char *name;
  bool fast;
  double *cold, *save, *warm;
  int ncold, nwarm;
};

/* `avm start ...` until READY=1 (ms, or -1), left running in *PID.  */
static double
start_ready (const char *avm, const char *images, char *const *extra, const char *npath, bool fast, bool restore,
             pid_t *pid)
{
  int nfd = notify_socket (npath);
  const char *args[16]
      = { avm, "start", "-q", "-p", "demo", "--images", images, "--set", "machine.accel=tcg", "-O", "share=off" };
  size_t n = 11;
  if (fast)
    {
      args[n++] = "--set";
      args[n++] = "snapshot.fast=true";
    }
  if (restore)
    {
      args[n++] = "--restore";
      args[n++] = "boot";
    }
  double t0 = mono_ms ();
  *pid = spawn_env ((char *const *) args, extra);
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

/* One round of kind K: -1 on a failure (reported).  */
static int
round_of (struct kind *k, const char *avm, const char *img, char *const *extra, const char *npath, int restores)
{
  pid_t pid;
  double t = start_ready (avm, img, extra, npath, k->fast, false, &pid);
  if (t < 0)
    {
      fprintf (stderr, "avm-bench: snapshot: no READY=1 from a cold boot (make demo-image?)\n");
      stop (pid);
      return -1;
    }
  /* A guest that has settled a little, as a CI job would save it.  */
  nap_ms (1000);
  char *sv[] = { (char *) avm, "snapshot", "save", "boot", "--replace", NULL };
  double t0 = mono_ms ();
  pid_t s = spawn_env (sv, extra);
  int st = s > 0 ? wait_exit (s, 120000) : -1;
  k->save[k->ncold] = mono_ms () - t0;
  k->cold[k->ncold++] = t;
  stop (pid);
  if (st != 0)
    {
      fprintf (stderr, "avm-bench: snapshot: avm snapshot save failed (exit %d)\n", st);
      return -1;
    }
  for (int i = 0; i < restores && !interrupted; i++)
    {
      t = start_ready (avm, img, extra, npath, k->fast, true, &pid);
      stop (pid);
      if (t < 0)
        {
          fprintf (stderr, "avm-bench: snapshot: no READY=1 from a restore (%s)\n", k->name);
          return -1;
        }
      k->warm[k->nwarm++] = t;
    }
  return 0;
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
  struct stat st;
  bool shm = stat ("/dev/shm", &st) == 0 && S_ISDIR (st.st_mode) && access ("/dev/shm", W_OK) == 0;
  char *rundir = xasprintf ("%s/avm-bench-snap-run.XXXXXX", shm ? "/dev/shm" : (tmp && *tmp ? tmp : "/tmp"));
  if (!mkdtemp (dir) || !mkdtemp (rundir))
    return -1;
  char *env_run = xasprintf ("AVM_RUNTIME_DIR=%s", rundir), *env_state = xasprintf ("AVM_STATE_DIR=%s/state", dir);
  char *npath = xasprintf ("%s/notify.sock", dir), *env_notify = xasprintf ("NOTIFY_SOCKET=%s", npath);
  char *extra[] = { env_run, env_state, env_notify, NULL };
  struct kind kinds[2] = { { .name = "streamed" }, { .name = "fast", .fast = true } };
  for (int k = 0; k < 2; k++)
    {
      kinds[k].cold = xmalloc (runs * sizeof (double));
      kinds[k].save = xmalloc (runs * sizeof (double));
      kinds[k].warm = xmalloc (runs * restores * sizeof (double));
    }
  int r = 0;
  for (int i = 0; i < runs && !interrupted && r == 0; i++)
    {
      for (int k = 0; k < 2 && r == 0 && !interrupted; k++)
        r = round_of (&kinds[k], avm, img, extra, npath, restores);
      fprintf (stderr, "\rsnapshot: %d/%d rounds", i + 1, runs);
      progress_open = true;
    }
  end_progress_line ();
  if (r < 0)
    failed = true;
  struct kind *a = &kinds[0], *b = &kinds[1];
  if (a->ncold > 0 && a->nwarm > 0 && b->nwarm > 0)
    {
      double cmin, cmed, cmax, fmin, fmed, fmax, wmin, wmed, wmax, xmin, xmed, xmax;
      double smin, smed, smax, tmin, tmed, tmax;
      stats (a->cold, a->ncold, &cmin, &cmed, &cmax);
      stats (b->cold, b->ncold, &fmin, &fmed, &fmax);
      stats (a->warm, a->nwarm, &wmin, &wmed, &wmax);
      stats (b->warm, b->nwarm, &xmin, &xmed, &xmax);
      stats (a->save, a->ncold, &smin, &smed, &smax);
      stats (b->save, b->ncold, &tmin, &tmed, &tmax);
      printf ("\n== quick boot: demo guest (-O share=off, TCG), time to READY ==\n");
      printf ("(runtime directory on %s)\n", shm ? "/dev/shm (tmpfs)" : "TMPDIR");
      printf ("%-46s %5s %9s %9s %9s\n", "series (ms)", "runs", "min", "median", "max");
      printf ("%-46s %5d %9.0f %9.0f %9.0f\n", "avm start (cold boot)", a->ncold, cmin, cmed, cmax);
      printf ("%-46s %5d %9.0f %9.0f %9.0f\n", "avm start, snapshot.fast (cold boot)", b->ncold, fmin, fmed, fmax);
      printf ("%-46s %5d %9.0f %9.0f %9.0f\n", "avm start --restore (state streamed, fd:)", a->nwarm, wmin, wmed, wmax);
      printf ("%-46s %5d %9.0f %9.0f %9.0f\n", "avm start --restore (snapshot.fast)", b->nwarm, xmin, xmed, xmax);
      printf ("%-46s %5d %9.0f %9.0f %9.0f\n", "avm snapshot save (streamed)", a->ncold, smin, smed, smax);
      printf ("%-46s %5d %9.0f %9.0f %9.0f\n", "avm snapshot save (snapshot.fast)", b->ncold, tmin, tmed, tmax);
      printf ("  cold / restore (streamed) >= 15:  %.1f  %s\n", cmed / wmed, verdict (cmed / wmed >= 15));
      printf ("  cold / restore (fast) >= 50:      %.1f  %s\n", cmed / xmed, verdict (cmed / xmed >= 50));
      bench_summary_add ("restore to READY, streamed (TCG)", "ms", wmin, wmed, wmax,
                         "cold boot to READY (cold/restore)", cmed, cmed / wmed, ">= 15x", cmed / wmed >= 15);
      bench_summary_add ("restore to READY, snapshot.fast (TCG)", "ms", xmin, xmed, xmax,
                         "cold boot to READY (cold/restore)", cmed, cmed / xmed, ">= 50x", cmed / xmed >= 50);
    }
  rm_rf (dir);
  rm_rf (rundir);
  free (dir);
  free (rundir);
  free (img);
  free (env_run);
  free (env_state);
  free (npath);
  free (env_notify);
  for (int k = 0; k < 2; k++)
    {
      free (kinds[k].cold);
      free (kinds[k].save);
      free (kinds[k].warm);
    }
  fflush (stdout);
  return r;
}
