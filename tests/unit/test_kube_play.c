/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The manifest of avm kube run for real, on one host (issue 19): the
 * image built from containers/Containerfile (once for the suite:
 * tu_container_image), `avm kube --kind pod` of the demo played by
 * `podman kube play` (runc, through the project's containers/containers.conf:
 * crun cannot set rlimits in this sandbox) as quadlets/aaos-pod.kube has
 * systemd run it: that unit, pointed at the demo's manifest, through
 * Debian 13's quadlet generator, and the commands it generated run here as
 * systemd would (no systemd runs as PID 1 here): ExecStart with a
 * NOTIFY_SOCKET, which must get READY=1 (the manifest's sdnotify
 * annotation relays avm's, sent when the guest has booted), ExecStop,
 * ExecStopPost.  The guest has booted when ExecStart returns (`avm status
 * --ready` inside the pod), is alive, runs as the image's user; ExecStop
 * (`podman pod stop --time GRACE`: podman 4.3 does not take the grace
 * period from the manifest) stops it cleanly within it, and ExecStopPost
 * (`podman kube down`) removes the pod.
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
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char *tmp, *vol, *name, *manifest, *conf_env;
static bool played, volume;

#define podman tu_podman

/* The argv of unit TEXT's KEY= line (the generator's words: no quoting
   needed for the paths of this test).  */
static char **
exec_line (const char *text, const char *key)
{
  char *k = tu_fmt ("\n%s=", key);
  const char *p = strstr (text, k);
  cr_assert (p, "no %s= in the generated unit:\n%s", key, text);
  p += strlen (k);
  char *line = tu_fmt ("%.*s", (int) strcspn (p, "\n"), p);
  char **argv = calloc (32, sizeof *argv);
  size_t n = 0;
  for (char *w = strtok (line, " "); w && n < 31; w = strtok (NULL, " "))
    argv[n++] = w;
  cr_assert (n > 1 && argv[0][0] == '/', "%s=%s", key, p);
  free (k);
  return argv;
}

/* A datagram socket at PATH, as systemd's NOTIFY_SOCKET.  */
static int
notify_socket (const char *path)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  cr_assert_lt (strlen (path), sizeof sa.sun_path);
  strcpy (sa.sun_path, path);
  int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  cr_assert_geq (fd, 0);
  cr_assert_eq (bind (fd, (struct sockaddr *) &sa, sizeof sa), 0, "%s: %s", path, strerror (errno));
  return fd;
}

/* Everything sent to it so far.  */
static char *
notify_read (int fd)
{
  char *all = tu_fmt ("%s", "");
  char buf[4096];
  ssize_t n;
  while ((n = recv (fd, buf, sizeof buf - 1, MSG_DONTWAIT)) > 0)
    {
      buf[n] = '\0';
      char *next = tu_fmt ("%s%s\n", all, buf);
      free (all);
      all = next;
    }
  return all;
}

static void
setup (void)
{
  tmp = tu_tmpdir ();
  int id = (int) getpid ();
  vol = tu_fmt ("avm-kube-test-images-%d", id);
  name = tu_fmt ("avm-kube-test-%d", id);
  manifest = tu_fmt ("%s/pod.json", tmp);
  conf_env = tu_fmt ("CONTAINERS_CONF=%s/containers/containers.conf", tu_srcdir ());
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
  char *tar = tu_fmt ("%s/demo.tar", tmp);
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

  /* The unit: quadlets/aaos-pod.kube with the demo's manifest and pod.  */
  char *unit = tu_read (tu_fmt ("%s/quadlets/aaos-pod.kube", tu_srcdir ()));
  cr_assert_not_null (unit);
  const char *from[] = { "Yaml=aaos-pod.yaml\n", "ExecStop=/usr/bin/podman pod stop --time 112 aaos-pod\n" };
  const char *to[] = { "Yaml=pod.json\n", tu_fmt ("ExecStop=/usr/bin/podman pod stop --time %lld %s\n", grace, name) };
  for (size_t i = 0; i < 2; i++)
    {
      cr_assert (strstr (unit, from[i]), "quadlets/aaos-pod.kube has no line %s", from[i]);
      unit = tu_replace (unit, from[i], to[i]);
    }
  tu_write (tmp, "avm-kube-test.kube", unit);
  char *units = tu_fmt ("%s/units", tmp);
  char *qenv[] = { tu_fmt ("QUADLET_UNIT_DIRS=%s", tmp), NULL };
  const char *quadlet = getenv ("AVM_QUADLET");
  cr_assert (quadlet && *quadlet, "AVM_QUADLET is not set (run the suite with `make check`)");
  char *gen[] = { (char *) quadlet, "-no-kmsg-log", units, units, units, NULL };
  cr_assert_eq (tu_run (gen, qenv, NULL, &err), 0, "quadlet: %s", err);
  free (err);
  char *svc = tu_read (tu_fmt ("%s/avm-kube-test.service", units));
  cr_assert_not_null (svc, "the generator made no avm-kube-test.service");
  char **start = exec_line (svc, "ExecStart"), **stop = exec_line (svc, "ExecStop"),
       **stop_post = exec_line (svc, "ExecStopPost");
  cr_assert (strstr (svc, "\nType=notify\n") && strstr (svc, "\nNotifyAccess=all\n"), "%s", svc);

  /* ExecStart, with the notification socket systemd would give it.  */
  char *sock = tu_fmt ("%s/notify.sock", tmp);
  int nfd = notify_socket (sock);
  char *senv[] = { conf_env, tu_fmt ("NOTIFY_SOCKET=%s", sock), NULL };
  double t0 = now ();
  played = true;
  cr_assert_eq (tu_run (start, senv, NULL, &err), 0, "ExecStart (podman kube play): %s", err);
  free (err);
  char *said = notify_read (nfd);
  cr_assert (strstr (said, "READY=1"), "ExecStart returned without READY=1: \"%s\"", said);
  /* The manifest's sdnotify annotation: the play returned once avm said
     READY=1, so the guest has booted now.  */
  cr_log_info ("podman kube play to READY: %.1f s", now () - t0);
  char *container = tu_fmt ("%s-avm", name);
  int r = podman (NULL, NULL, "exec", container, "avm", "status", "--ready", "-i", "1", NULL);
  char *logs = NULL;
  podman (&logs, &err, "logs", container, NULL);
  cr_assert_eq (r, 0, "podman kube play returned, the guest is not ready (%d):\n%s%s", r, logs, err);
  free (logs);
  free (err);
  cr_assert_eq (podman (NULL, NULL, "exec", container, "avm", "status", "--live", "-i", "1", NULL), 0);
  cr_assert_eq (podman (&out, NULL, "exec", container, "id", "-u", NULL), 0);
  cr_assert_str_eq (out, "1000\n", "the pod runs as %s", out);
  free (out);

  /* ExecStop: a clean stop within the grace period, avm powers the guest
     down.  */
  t0 = now ();
  char *cenv[] = { conf_env, NULL };
  cr_assert_eq (tu_run (stop, cenv, NULL, &err), 0, "ExecStop: %s", err);
  free (err);
  cr_assert_lt (now () - t0, (double) grace);
  cr_assert_eq (podman (&out, NULL, "inspect", "--format", "{{.State.ExitCode}}", container, NULL), 0);
  cr_assert_str_eq (out, "0\n", "avm exited %s", out);
  free (out);
  podman (&logs, &err, "logs", container, NULL);
  cr_assert (strstr (logs, "avm: stopped") || strstr (err, "avm: stopped"), "%s%s", logs, err);
  free (logs);
  free (err);
  /* ExecStopPost: podman kube down.  */
  cr_assert_eq (tu_run (stop_post, cenv, NULL, &err), 0, "ExecStopPost: %s", err);
  played = false;
  free (err);
  cr_assert_neq (podman (NULL, NULL, "pod", "exists", name, NULL), 0, "the pod is still there");
  close (nfd);
  free (container);
  free (tar);
  free (tag);
  free (demo);
}
