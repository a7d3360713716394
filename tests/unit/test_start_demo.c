/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The README's main job, end to end: `avm start --profile demo` boots the
 * demo guest (Debian kernel, busybox initramfs; tests/demo/README.md) under
 * TCG with its real helpers: virtiofsd sharing build/demo/share, and the
 * private dbus-daemon QEMU's -display dbus attaches to.  Checked: every
 * helper is ready before QEMU starts, READY=1 reaches a real NOTIFY_SOCKET
 * once the guest prints its boot marker, the guest saw the GPU, the share
 * and its report port, an external display program would find QEMU's
 * display objects on the private bus (busctl), `avm status` and `avm stop`
 * work, the stop is clean and nothing is left running.
 *
 * vhost-user-gpu cannot be attached here: QEMU 7.2 refuses it without KVM
 * (test_demo.c shows that with the real binary); the demo's gpu=vhost-user
 * option is for hosts with KVM.
 */
#include "test_start.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static struct ts_env env;

static void
setup (void)
{
  ts_env_init (&env);
}

static void
teardown (void)
{
  ts_env_fini (&env);
}

TestSuite (start_demo, .init = setup, .fini = teardown);

Test (start_demo, boots_with_real_helpers_and_stops_cleanly)
{
  char *images = tu_demo_image ();
  char *img = ts_fmt ("%s", images);
  free (images);
  struct ts_avm a;
  ts_start (&env, &a, "demo", "--images", img, "--set", "machine.accel=tcg", NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", 300);
  cr_assert (strstr (msgs, "STATUS=starting helpers "), "%s", msgs);
  cr_assert (strstr (msgs, "STATUS=booting"), "%s", msgs);
  cr_assert (strstr (msgs, "READY=1\nSTATUS=running, booted in "), "%s", msgs);

  char *err = ts_stderr (&a);
  const char *q = strstr (err, "qemu: started");
  cr_assert (q, "%s", err);
  cr_assert (strstr (err, "dbus: ready") < q && strstr (err, "dbus: ready"), "%s", err);
  cr_assert (strstr (err, "virtiofsd: ready") < q && strstr (err, "virtiofsd: ready"), "%s", err);

  /* What the guest saw, read by avm from the console FIFO into its log.  */
  char *log = ts_read_log (&env, "console-console.log");
  cr_assert (strstr (log, "AVM_DEMO: share: hello from the avm demo share"), "%s", log);
  cr_assert (strstr (log, "AVM_DEMO: gpu: card0 virtio_gpu"), "%s", log);
  cr_assert (strstr (log, "AVM_DEMO: port report: present"), "%s", log);
  cr_assert (strstr (log, "VIRTUAL_DEVICE_BOOT_COMPLETED"), "%s", log);

  /* The display on the private bus, as an external display program sees it.  */
  if (access ("/usr/bin/busctl", X_OK) == 0)
    {
      char *addr = ts_fmt ("--address=unix:path=%s/dbus.sock", env.run1);
      char *argv[] = { "busctl", addr, "tree", "org.qemu", NULL };
      char *out = NULL, *e = NULL;
      cr_assert_eq (tu_run (argv, NULL, &out, &e), 0, "%s%s", out, e);
      cr_assert (strstr (out, "/org/qemu/Display1/Console_0"), "%s", out);
      cr_assert (strstr (out, "/org/qemu/Display1/VM"), "%s", out);
      free (out);
      free (e);
      /* avm's own bus configuration: QEMU and the caller only, nothing
         activatable (a stock session bus lists the desktop's services).  */
      char *list[] = { "busctl", addr, "list", NULL };
      cr_assert_eq (tu_run (list, NULL, &out, &e), 0, "%s%s", out, e);
      cr_assert (strstr (out, "org.qemu"), "%s", out);
      cr_assert_null (strstr (out, "activatable"), "%s", out);
      free (out);
      free (e);
      char *conf = tu_read (ts_fmt ("%s/dbus.conf", env.run1));
      cr_assert (conf && strstr (conf, "<auth>EXTERNAL</auth>"), "%s", conf);
      free (conf);
    }

  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "status", "--json", NULL), 0);
  json_t *st = ts_json (out);
  cr_assert (json_is_true (json_object_get (st, "booted")), "%s", out);
  cr_assert_str_eq (json_string_value (json_object_get (st, "state")), "running");
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (st, "qemu"), "status")), "running",
                    "%s", out);
  json_decref (st);

  pid_t pids[4];
  size_t n = ts_pids (&env, pids, 4);
  cr_assert_eq (n, 3);
  cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0);
  cr_assert_eq (ts_wait (&a, 60), 0, "%s", ts_stderr (&a));
  err = ts_stderr (&a);
  /* The guest powered off on the ACPI button: no quit, no signal needed.  */
  cr_assert (strstr (err, "qemu: system_powerdown"), "%s", err);
  cr_assert (strstr (err, "qemu: exited with status 0"), "%s", err);
  cr_assert (!strstr (err, "(SIGKILL)") && !strstr (err, "still running") && !strstr (err, "qemu: quit"), "%s", err);
  cr_assert (strstr (ts_notify_all (&a), "STOPPING=1"));
  ts_assert_gone (pids, n);
  cr_assert_eq (ts_count_procs_under (env.dir), 0);
  cr_assert_eq (access (env.run1, F_OK), -1, "runtime directory left behind");
  log = ts_read_log (&env, "console-console.log");
  cr_assert (strstr (log, "AVM_DEMO: shutdown: poweroff"), "%s", log);
}
