/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The manifest of avm kube run for real, on one host (issue 19): the
 * image built from containers/Containerfile (once for the suite:
 * tu_container_image), `avm kube --kind pod` of the demo played by
 * `podman kube play` (runc, through the project's containers/containers.conf:
 * crun cannot set rlimits in this sandbox), the guest
 * booted to `avm status --ready` inside the pod, alive, then stopped
 * cleanly by `podman pod stop -t GRACE` (podman 4.3 does not take the
 * grace period from the manifest) and removed by `podman kube down`.
 * Skipped where podman, runc, catatonit or the Debian base images are
 * missing (tests/deps.sh; tests/tools/container-base.sh).
 */
#include "testutil.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *tmp, *vol, *name, *manifest, *conf_env;
static bool played, volume;

static char *fmt (const char *f, ...) __attribute__ ((format (printf, 1, 2)));
static char *
fmt (const char *f, ...)
{
  va_list ap;
  char *s = NULL;
  va_start (ap, f);
  cr_assert_geq (vasprintf (&s, f, ap), 0);
  va_end (ap);
  return s;
}

/* podman ARGS... (NULL-ended) under the test's containers.conf.  */
static int podman (char **out, char **err, ...) __attribute__ ((sentinel));
static int
podman (char **out, char **err, ...)
{
  char *argv[24] = { "podman" };
  size_t n = 1;
  va_list ap;
  va_start (ap, err);
  for (char *a; (a = va_arg (ap, char *)) && n < 23;)
    argv[n++] = a;
  va_end (ap);
  argv[n] = NULL;
  char *env[] = { conf_env, NULL };
  char *o = NULL, *e = NULL;
  int r = tu_run (argv, env, &o, &e);
  if (out)
    *out = o;
  else
    free (o);
  if (err)
    *err = e;
  else
    free (e);
  return r;
}

static void
setup (void)
{
  tmp = tu_tmpdir ();
  int id = (int) getpid ();
  vol = fmt ("avm-kube-test-images-%d", id);
  name = fmt ("avm-kube-test-%d", id);
  manifest = fmt ("%s/pod.json", tmp);
  conf_env = fmt ("CONTAINERS_CONF=%s/containers/containers.conf", tu_srcdir ());
}

static void
teardown (void)
{
  if (played)
    {
      podman (NULL, NULL, "pod", "stop", "-t", "60", name, NULL);
      podman (NULL, NULL, "kube", "down", manifest, NULL);
    }
  if (volume)
    podman (NULL, NULL, "volume", "rm", "-f", vol, NULL);
  tu_rmtree (tmp);
}

TestSuite (kube_play, .init = setup, .fini = teardown);

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

Test (kube_play, demo_pod_boots_and_stops_under_podman, .timeout = TU_TIMEOUT (600))
{
  const char *const need[] = { "/usr/bin/podman", "/usr/sbin/runc", "/usr/bin/catatonit" };
  for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
    if (access (need[i], X_OK) != 0)
      cr_skip_test ("no %s (tests/deps.sh installs it)", need[i]);
  char *tag = tu_container_image ();
  char *demo = tu_demo_image ();
  char *err = NULL, *out = NULL;
  /* The images: the claim is a podman volume of that name.  */
  char *tar = fmt ("%s/demo.tar", tmp);
  char *targv[] = { "tar", "-C", demo, "-cf", tar, ".", NULL };
  cr_assert_eq (tu_run (targv, NULL, NULL, NULL), 0);
  volume = true;
  cr_assert_eq (podman (NULL, &err, "volume", "create", vol, NULL), 0, "%s", err);
  free (err);
  cr_assert_eq (podman (NULL, &err, "volume", "import", vol, tar, NULL), 0, "%s", err);
  free (err);

  char *kargs[] = { "kube",
                    "-p",
                    "demo",
                    "--images",
                    demo,
                    "--kind",
                    "pod",
                    "--kvm-hostpath",
                    "-O",
                    "share=off",
                    "--set",
                    "machine.accel=tcg",
                    "--name",
                    name,
                    "--image",
                    tag,
                    "--images-claim",
                    vol,
                    NULL };
  cr_assert_eq (tu_avmv (kargs, &out, &err), 0, "avm kube: %s", err);
  json_t *m = json_loads (out, 0, NULL);
  cr_assert_not_null (m);
  long long grace = json_integer_value (json_object_get (json_object_get (m, "spec"), "terminationGracePeriodSeconds"));
  cr_assert_gt (grace, 10);
  json_decref (m);
  tu_write (tmp, "pod.json", out);
  free (out);
  free (err);

  double t0 = now ();
  played = true;
  cr_assert_eq (podman (NULL, &err, "kube", "play", manifest, NULL), 0, "podman kube play: %s", err);
  free (err);
  char *container = fmt ("%s-avm", name);
  int r = -1;
  while (now () - t0 < 240 && r != 0)
    {
      r = podman (NULL, NULL, "exec", container, "avm", "status", "--ready", "-i", "1", NULL);
      if (r != 0)
        tu_sleep_ms (500);
    }
  char *logs = NULL;
  podman (&logs, &err, "logs", container, NULL);
  cr_assert_eq (r, 0, "not ready within 240 s (last: %d):\n%s%s", r, logs, err);
  cr_log_info ("podman kube play to READY: %.1f s", now () - t0);
  free (logs);
  free (err);
  cr_assert_eq (podman (NULL, NULL, "exec", container, "avm", "status", "--live", "-i", "1", NULL), 0);
  cr_assert_eq (podman (&out, NULL, "exec", container, "id", "-u", NULL), 0);
  cr_assert_str_eq (out, "1000\n", "the pod runs as %s", out);
  free (out);

  /* A clean stop within the grace period: avm powers the guest down.  */
  char *g = fmt ("%lld", grace);
  t0 = now ();
  cr_assert_eq (podman (NULL, &err, "pod", "stop", "-t", g, name, NULL), 0, "%s", err);
  free (err);
  cr_assert_lt (now () - t0, (double) grace);
  cr_assert_eq (podman (&out, NULL, "inspect", "--format", "{{.State.ExitCode}}", container, NULL), 0);
  cr_assert_str_eq (out, "0\n", "avm exited %s", out);
  free (out);
  podman (&logs, &err, "logs", container, NULL);
  cr_assert (strstr (logs, "avm: stopped") || strstr (err, "avm: stopped"), "%s%s", logs, err);
  free (logs);
  free (err);
  cr_assert_eq (podman (NULL, &err, "kube", "down", manifest, NULL), 0, "%s", err);
  played = false;
  free (err);
  free (g);
  free (container);
  free (tar);
  free (tag);
  free (demo);
}
