/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container's cost and many platforms on one host (bench/README.md,
 * "kube"): the demo guest without its share (-O share=off) under TCG.
 * Per round: `avm start` to READY=1 on the host, then `podman kube play`
 * of the Pod `avm kube --kind pod` prints for the same plan, in the image
 * built from containers/Containerfile (make container-image), until it
 * returns, which it does on the container's READY=1 (the manifest's
 * sdnotify annotation): the pod's cost over the bare start.  Then three
 * such pods (instances 1 to 3) played side by side on this machine, until
 * the last is READY, against the one pod.  Pods are stopped with podman
 * pod stop -t GRACE and removed with podman kube down.  podman runs with
 * containers/containers.conf (runc: crun fails on some hosts) and from a
 * scratch directory (podman 4.3 would build an image named .../avm from
 * a ./avm directory).  BENCH_KUBE_RUNS rounds (default 2; 0 skips, and so
 * does a host without podman, runc or the image).
 */
#include "bench.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PODS 3

struct kctx
{
  const char *avm, *img, *image, *dir, *podman; /* podman: its path */
  char **extra;                                 /* the bare start's environment */
  char **penv;                                  /* podman's */
  char *volume;                                 /* the images, as the claim's podman volume */
  long grace;
};

static char *
slurp (const char *path)
{
  FILE *f = fopen (path, "r");
  if (!f)
    return NULL;
  char *buf = xmalloc (4096);
  size_t n = fread (buf, 1, 4095, f);
  buf[n] = '\0';
  fclose (f);
  return buf;
}

/* podman ARGS (NULL-terminated) in the scratch directory, to completion:
   its exit status, or -1.  */
static int
podman (struct kctx *c, const char *const *args)
{
  const char *argv[24] = { c->podman };
  size_t n = 1;
  for (; args[n - 1] && n < 23; n++)
    argv[n] = args[n - 1];
  argv[n] = NULL;
  pid_t pid = spawn_env ((char *const *) argv, c->penv);
  return pid > 0 ? wait_exit (pid, 600000) : -1;
}

/* The manifest of pod I (instance I) at DIR/pod-I.json; 0 or -1.  */
static int
manifest (struct kctx *c, int i)
{
  char *inst = xasprintf ("%d", i), *name = xasprintf ("avm-bench-%d", i);
  char *path = xasprintf ("%s/pod-%d.json", c->dir, i);
  const char *argv[] = { c->avm,
                         "kube",
                         "-p",
                         "demo",
                         "--images",
                         c->img,
                         "--kind",
                         "pod",
                         "-i",
                         inst,
                         "--name",
                         name,
                         "--kvm-hostpath",
                         "-O",
                         "share=off",
                         "--set",
                         "machine.accel=tcg",
                         "--image",
                         c->image,
                         "--images-claim",
                         c->volume,
                         NULL };
  /* Its standard output to the file (run_io's goes to /dev/null).  */
  pid_t pid = fork ();
  if (pid == 0)
    {
      if (!freopen (path, "w", stdout))
        _exit (127);
      execv (c->avm, (char *const *) argv);
      _exit (127);
    }
  int ws = 0;
  int ok = pid > 0 && waitpid (pid, &ws, 0) == pid && WIFEXITED (ws) && WEXITSTATUS (ws) == 0 ? 0 : -1;
  if (ok == 0 && c->grace == 0)
    {
      char *m = slurp (path);
      const char *g = m ? strstr (m, "\"terminationGracePeriodSeconds\": ") : NULL;
      c->grace = g ? atol (g + strlen ("\"terminationGracePeriodSeconds\": ")) : 60;
      free (m);
    }
  free (inst);
  free (name);
  free (path);
  return ok;
}

static void
pod_down (struct kctx *c, int i)
{
  char *name = xasprintf ("avm-bench-%d", i), *g = xasprintf ("%ld", c->grace);
  char *path = xasprintf ("%s/pod-%d.json", c->dir, i);
  const char *stop[] = { "pod", "stop", "-t", g, name, NULL };
  const char *down[] = { "kube", "down", path, NULL };
  podman (c, stop);
  podman (c, down);
  free (name);
  free (g);
  free (path);
}

/* podman kube play of pods FIRST..LAST side by side: ms until the last
   returned (each on its READY=1), or -1.  */
static double
play (struct kctx *c, int first, int last)
{
  pid_t pids[PODS + 1] = { 0 };
  double t0 = mono_ms ();
  for (int i = first; i <= last; i++)
    {
      char *path = xasprintf ("%s/pod-%d.json", c->dir, i);
      const char *argv[] = { c->podman, "kube", "play", path, NULL };
      pids[i] = spawn_env ((char *const *) argv, c->penv);
      free (path);
    }
  bool ok = true;
  for (int i = first; i <= last; i++)
    ok &= pids[i] > 0 && wait_exit (pids[i], 600000) == 0;
  double t = mono_ms () - t0;
  return ok ? t : -1;
}

int
bench_kube (const char *avm, const char *srcdir)
{
  const char *e = getenv ("BENCH_KUBE_RUNS");
  int runs = e && *e ? atoi (e) : 2;
  if (runs <= 0)
    return 0;
  char *idpath = xasprintf ("%s/build/container-image.id", srcdir);
  char *image = slurp (idpath);
  free (idpath);
  char *podman_path = find_program ("podman"), *runc = find_program ("runc"), *tar_path = find_program ("tar");
  if (!podman_path || !runc || !tar_path || !image || !*image)
    {
      printf ("\n== kube: skipped (no podman, runc or build/container-image.id: make container-image) ==\n");
      free (image);
      return 0;
    }
  image[strcspn (image, "\n")] = '\0';
  const char *images = getenv ("BENCH_DEMO_IMAGES");
  char *img = images && *images ? xasprintf ("%s", images) : xasprintf ("%s/build/demo", srcdir);
  const char *tmp = getenv ("TMPDIR");
  char *dir = xasprintf ("%s/avm-bench-kube.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp (dir))
    return -1;
  char *env_run = xasprintf ("AVM_RUNTIME_DIR=%s/run", dir), *env_state = xasprintf ("AVM_STATE_DIR=%s/state", dir);
  char *npath = xasprintf ("%s/notify.sock", dir), *env_notify = xasprintf ("NOTIFY_SOCKET=%s", npath);
  char *extra[] = { env_run, env_state, env_notify, NULL };
  char *conf = xasprintf ("CONTAINERS_CONF=%s/containers/containers.conf", srcdir);
  char *penv[] = { conf, NULL };
  struct kctx c
      = { .avm = avm, .img = img, .image = image, .dir = dir, .podman = podman_path, .extra = extra, .penv = penv };
  c.volume = xasprintf ("avm-bench-images-%d", (int) getpid ());
  if (chdir (dir) < 0)
    return -1;

  /* The images volume: the Pod's claim.  */
  char *tar = xasprintf ("%s/images.tar", dir);
  const char *tarv[] = { tar_path, "-C", img, "-cf", tar, ".", NULL };
  const char *vc[] = { "volume", "create", c.volume, NULL }, *vi[] = { "volume", "import", c.volume, tar, NULL };
  int st = -1;
  long rss = 0;
  int r = 0;
  if (run ((char *const *) tarv, false, &st, &rss) < 0 || st != 0 || podman (&c, vc) != 0 || podman (&c, vi) != 0)
    {
      fprintf (stderr, "avm-bench: kube: cannot make the images volume from %s\n", img);
      r = -1;
    }
  for (int i = 1; i <= PODS && r == 0; i++)
    if (manifest (&c, i) < 0)
      {
        fprintf (stderr, "avm-bench: kube: avm kube failed for instance %d\n", i);
        r = -1;
      }
  double *bare = xmalloc (runs * sizeof (double)), *one = xmalloc (runs * sizeof (double));
  double *three = xmalloc (runs * sizeof (double));
  int n = 0;
  for (int k = 0; k < runs && r == 0 && !interrupted; k++)
    {
      /* Bare: avm start on the host to READY=1.  */
      int nfd = notify_socket (npath);
      const char *args[] = { avm,  "start",     "-q", "-p", "demo", "--images", img, "--set", "machine.accel=tcg",
                             "-O", "share=off", NULL };
      double t0 = mono_ms ();
      pid_t pid = spawn_env ((char *const *) args, extra);
      bool ready = pid > 0 && wait_ready (nfd, 300000);
      double tb = mono_ms () - t0;
      close (nfd);
      if (pid > 0)
        {
          kill (pid, SIGTERM);
          wait_exit (pid, 60000);
        }
      /* One pod, then three side by side.  */
      double t1 = ready ? play (&c, 1, 1) : -1;
      pod_down (&c, 1);
      double t3 = t1 >= 0 ? play (&c, 1, PODS) : -1;
      for (int i = 1; i <= PODS; i++)
        pod_down (&c, i);
      if (!ready || t1 < 0 || t3 < 0)
        {
          fprintf (stderr, "avm-bench: kube: %s did not reach READY\n",
                   !ready   ? "avm start"
                   : t1 < 0 ? "the pod"
                            : "one of three pods");
          r = -1;
          break;
        }
      bare[n] = tb;
      one[n] = t1;
      three[n++] = t3;
      fprintf (stderr, "\rkube: %d/%d rounds", k + 1, runs);
      progress_open = true;
    }
  end_progress_line ();
  if (r < 0)
    failed = true;
  if (n > 0)
    {
      double bmin, bmed, bmax, omin, omed, omax, tmin, tmed, tmax;
      stats (bare, n, &bmin, &bmed, &bmax);
      stats (one, n, &omin, &omed, &omax);
      stats (three, n, &tmin, &tmed, &tmax);
      printf ("\n== kube: demo guest (-O share=off, TCG) in the avm image, time to READY ==\n");
      printf ("%-46s %5s %9s %9s %9s\n", "series (ms)", "runs", "min", "median", "max");
      printf ("%-46s %5d %9.0f %9.0f %9.0f\n", "avm start on the host", n, bmin, bmed, bmax);
      printf ("%-46s %5d %9.0f %9.0f %9.0f\n", "podman kube play, one pod", n, omin, omed, omax);
      printf ("%-46s %5d %9.0f %9.0f %9.0f\n", "podman kube play, 3 pods side by side (last)", n, tmin, tmed, tmax);
      printf ("  the pod's cost: one pod / bare = %.2f (+%.1f s)\n", omed / bmed, (omed - bmed) / 1000);
      printf ("  3 pods / 1 pod on %ld cores = %.2f\n", sysconf (_SC_NPROCESSORS_ONLN), tmed / omed);
      bench_summary_add ("podman kube play to READY, one pod (TCG)", "ms", omin, omed, omax,
                         "avm start to READY on the host (pod/bare)", bmed, omed / bmed, "report", true);
      bench_summary_add ("3 pods side by side to the last READY (TCG)", "ms", tmin, tmed, tmax,
                         "one pod to READY (3 pods/1 pod)", omed, tmed / omed, "report", true);
    }
  const char *vr[] = { "volume", "rm", "-f", c.volume, NULL };
  podman (&c, vr);
  if (chdir (srcdir) < 0)
    r = -1;
  rm_rf (dir);
  free (bare);
  free (one);
  free (three);
  free (tar);
  free (c.volume);
  free (conf);
  free (env_run);
  free (env_state);
  free (npath);
  free (env_notify);
  free (dir);
  free (img);
  free (image);
  free (podman_path);
  free (runc);
  free (tar_path);
  fflush (stdout);
  return r;
}
