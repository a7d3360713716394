/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AAOS profiles started for real on an image set of each Android
 * release (issue 14): the image sets of tu_cf_imageset (cfimage.h), whose
 * host tools are avm-fakecf, the test double that checks what the real
 * tools check (their flags, descriptors, the Cuttlefish configuration and
 * environment, per release, from the AOSP sources), and whose bootloader
 * is tu_test_firmware, which prints an Android guest's boot messages on the
 * serial port the AAOS profiles share with the kernel console.  So every
 * helper of the release starts and stays up, QEMU boots, avm sees the boot
 * and kernel_log_monitor's subscribers get its events; a regression in the
 * argv, descriptors or configuration avm gives a helper fails here the way
 * the real helper would fail.
 *
 * The host has no /dev/vhost-vsock here, so QEMU gets no vsock device
 * (vsock.mode none); the host-side vsock listeners are real (AF_VSOCK).
 * Each test uses its own instance number, so that ports (adb 6520 + N - 1,
 * vsock 9600 + N - 1, ...) do not collide between tests run in parallel.
 */
#include "cfimage.h"
#include "test_start.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

TestSuite (aaos, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (120));

/* An image set of RELEASE for ARCH ("x86_64" or "arm64") whose bootloader
   boots for avm.  */
static char *
shaped (const char *release, const char *arch)
{
  char *dir = ts_fmt ("%s/images-%s-%s", env.dir, release, arch);
  free (tu_cf_imageset (dir, release, arch));
  tu_test_firmware (strcmp (arch, "arm64") == 0 ? "aarch64" : "x86_64", ts_fmt ("%s/bootloader", dir));
  return dir;
}

/* The lines of AVM_FAKECF_LOG, one JSON object per tool start.  */
static json_t *
fake_starts (const char *log)
{
  json_t *all = json_array ();
  char *text = tu_read (log);
  for (char *line = text, *next; line && *line; line = next)
    {
      next = strchr (line, '\n');
      if (next)
        *next++ = '\0';
      json_t *j = json_loads (line, 0, NULL);
      cr_assert_not_null (j, "not JSON: %s", line);
      json_array_append_new (all, j);
    }
  free (text);
  return all;
}

static json_t *
started (json_t *starts, const char *tool)
{
  size_t i;
  json_t *s;
  json_array_foreach (starts, i, s)
    {
      /* avm asks each tool for its flags first (--helpxml): not a start.  */
      const char *a1 = json_string_value (json_array_get (json_object_get (s, "argv"), 1));
      if (strcmp (json_string_value (json_object_get (s, "tool")), tool) == 0 && !(a1 && strcmp (a1, "--helpxml") == 0))
        return s;
    }
  return NULL;
}

struct expect
{
  const char *release;
  const char *const tools[16]; /* the helpers that must run */
  const char *const absent[4]; /* services the release does not have */
};

static const struct expect expects[] = {
  { "android14",
    { "kernel_log_monitor", "logcat_receiver", "secure_env", "modem_simulator", "root-canal", "tcp_connector",
      "socket_vsock_proxy", "adb_connector", "gnss_grpc_proxy", "tombstone_receiver", NULL },
    { "vhal_proxy_server", "sensors_simulator", "config_server", NULL } },
  { "android14-qpr2",
    { "kernel_log_monitor", "logcat_receiver", "secure_env", "modem_simulator", "root-canal", "tcp_connector",
      "socket_vsock_proxy", "adb_connector", "gnss_grpc_proxy", "tombstone_receiver", NULL },
    { "vhal_proxy_server", "sensors_simulator", NULL } },
  { "android15",
    { "kernel_log_monitor", "logcat_receiver", "secure_env", "modem_simulator", "root-canal", "tcp_connector",
      "socket_vsock_proxy", "adb_connector", "gnss_grpc_proxy", "tombstone_receiver", NULL },
    { "vhal_proxy_server", "sensors_simulator", "config_server", NULL } },
  { "android15-qpr2",
    { "kernel_log_monitor", "logcat_receiver", "secure_env", "modem_simulator", "root-canal", "tcp_connector",
      "socket_vsock_proxy", "adb_connector", "gnss_grpc_proxy", "tombstone_receiver", "vhal_proxy_server", NULL },
    { "sensors_simulator", "config_server", NULL } },
  { "android16",
    { "kernel_log_monitor", "logcat_receiver", "secure_env", "modem_simulator", "root-canal", "tcp_connector",
      "socket_vsock_proxy", "adb_connector", "gnss_grpc_proxy", "tombstone_receiver", "vhal_proxy_server",
      "sensors_simulator", NULL },
    { "config_server", NULL } },
};

/* Start the AAOS profile of ARCH on the image set of E, as instance INST,
   wait for READY, check every helper, stop.  */
static void
boot_release (const struct expect *e, const char *arch, int inst)
{
  const char *profile = strcmp (arch, "arm64") == 0 ? "aaos-arm64" : "aaos-x86_64";
  if (strcmp (arch, "arm64") == 0 && access ("/usr/bin/qemu-system-aarch64", X_OK) != 0)
    cr_skip_test ("no qemu-system-aarch64 (qemu-system-arm)");
  char *images = shaped (e->release, arch), *log = ts_fmt ("%s/fakecf-%s.log", env.dir, e->release);
  char *instance = ts_fmt ("%d", inst);
  setenv ("AVM_FAKECF_LOG", log, 1);
  struct ts_avm a;
  ts_start (&env, &a, profile, "--images", images, "-i", instance, "--set", "machine.accel=tcg", "--set",
            "vsock.mode=none", "--set", "stop.timeout=0", NULL);
  unsetenv ("AVM_FAKECF_LOG");
  char *msgs = ts_wait_notify (&a, "READY=1", TU_TIMEOUT (90));
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, "guest booted in"), "%s", err);

  /* Every helper of the release is up, started once (none crashed and was
     restarted), none skipped; the release's absent ones are not there.  */
  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "status", "-i", instance, "--json", NULL), 0);
  json_t *st = ts_json (out);
  json_t *svcs = json_object_get (st, "services");
  for (size_t k = 0; e->tools[k]; k++)
    {
      json_t *found = NULL, *s;
      size_t i;
      json_array_foreach (svcs, i, s)
        if (strcmp (json_string_value (json_object_get (s, "name")), e->tools[k]) == 0)
          found = s;
      cr_assert_not_null (found, "%s: service %s not in avm status:\n%s\n%s", e->release, e->tools[k], out, err);
      const char *state = json_string_value (json_object_get (found, "state"));
      cr_assert (strcmp (state, "ready") == 0 || strcmp (state, "starting") == 0, "%s: %s is %s:\n%s", e->release,
                 e->tools[k], state, err);
      cr_assert_eq (json_integer_value (json_object_get (found, "starts")), 1, "%s: %s restarted:\n%s", e->release,
                    e->tools[k], err);
    }
  size_t i;
  json_t *s;
  json_array_foreach (svcs, i, s)
    {
      const char *name = json_string_value (json_object_get (s, "name"));
      cr_assert_str_neq (json_string_value (json_object_get (s, "state")), "skipped", "%s: %s skipped", e->release,
                         name);
      for (size_t k = 0; e->absent[k]; k++)
        cr_assert_str_neq (name, e->absent[k], "%s: %s should not run", e->release, name);
    }
  json_decref (st);

  /* What the double saw: the Cuttlefish environment of this instance, the
     configuration it could read, secure_env in its instance directory.  */
  json_t *starts = fake_starts (log);
  for (size_t k = 0; e->tools[k]; k++)
    {
      const char *tool = strcmp (e->tools[k], "root-canal") == 0 ? "root-canal" : e->tools[k];
      json_t *one = started (starts, tool);
      cr_assert_not_null (one, "%s: %s never started (log %s)", e->release, tool, log);
    }
  json_t *se = started (starts, "secure_env");
  char *want_cwd = ts_fmt ("%s/%d/cuttlefish/instances/cvd-%d", env.state, inst, inst);
  cr_assert_str_eq (json_string_value (json_object_get (se, "cwd")), want_cwd);
  json_t *cfenv = json_object_get (se, "env");
  cr_assert_str_eq (json_string_value (json_object_get (cfenv, "CUTTLEFISH_INSTANCE")), instance);
  cr_assert_str_eq (json_string_value (json_object_get (cfenv, "ANDROID_HOST_OUT")), images);
  json_decref (starts);

  /* The firmware as launch_cvd loads it: x86 from Android 15 in flash, with
     the variables chip made in the state directory; -bios otherwise.  */
  bool pflash = strcmp (arch, "x86_64") == 0 && strncmp (e->release, "android14", 9) != 0;
  char *vars = ts_fmt ("%s/%d/pflash.img", env.state, inst);
  struct stat vs;
  if (pflash)
    {
      cr_assert (strstr (err, ts_fmt ("pflash: created %s (4096 KiB", vars)), "%s", err);
      cr_assert (stat (vars, &vs) == 0 && vs.st_size == 4 << 20 && (vs.st_mode & 0777) == 0600, "%s", vars);
    }
  else
    cr_assert (stat (vars, &vs) < 0, "%s: %s made", e->release, vars);
  /* The pstore nvdimm's file (machine.ramoops), x86 only, any release.  */
  char *pstore = ts_fmt ("%s/%d/pstore.img", env.state, inst);
  if (strcmp (arch, "x86_64") == 0)
    {
      cr_assert (strstr (err, ts_fmt ("pstore: created %s (2048 KiB)", pstore)), "%s", err);
      cr_assert (stat (pstore, &vs) == 0 && vs.st_size == 2 << 20 && (vs.st_mode & 0777) == 0600, "%s", pstore);
    }
  else
    cr_assert (stat (pstore, &vs) < 0, "%s: %s made", e->release, pstore);

  cr_assert_eq (ts_avm (&env, &out, "stop", "-i", instance, NULL), 0);
  cr_assert_eq (ts_wait (&a, TU_TIMEOUT (60)), 0, "%s", ts_stderr (&a));
}

/* One boot of IMAGES (Android 16, x86) as instance 18: READY, then stop.
   Returns avm's stderr.  */
static char *
boot_once (const char *images)
{
  struct ts_avm a;
  ts_start (&env, &a, "aaos-x86_64", "--images", images, "-i", "18", "--set", "machine.accel=tcg", "--set",
            "vsock.mode=none", "--set", "stop.timeout=0", NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", TU_TIMEOUT (90));
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "stop", "-i", "18", NULL), 0);
  cr_assert_eq (ts_wait (&a, TU_TIMEOUT (60)), 0, "%s", ts_stderr (&a));
  return ts_stderr (&a);
}

/* The flash variables (U-Boot's environment) and the pstore (the kernel's
   last log) outlive a run, as launch_cvd's pflash.img and pstore do; a
   bootloader of another size gets a chip of the size that pads it to
   4 MiB again, a pstore file of another size is made anew.  */
Test (aaos, x86_pflash_and_pstore_kept_and_made_anew)
{
  char *images = shaped ("android16", "x86_64");
  char *vars = ts_fmt ("%s/18/pflash.img", env.state), *pstore = ts_fmt ("%s/18/pstore.img", env.state);
  char *err = boot_once (images);
  cr_assert (strstr (err, "pflash: created"), "%s", err);
  cr_assert (strstr (err, "pstore: created"), "%s", err);
  /* What U-Boot and the kernel's ramoops would have saved.  */
  FILE *f = fopen (vars, "r+");
  cr_assert_not_null (f, "%s", vars);
  fputs ("bootcmd=saved by the guest", f);
  fclose (f);
  f = fopen (pstore, "r+");
  cr_assert_not_null (f, "%s", pstore);
  fputs ("Kernel panic - not syncing: the last boot", f);
  fclose (f);
  err = boot_once (images);
  cr_assert_null (strstr (err, "pflash:"), "%s", err);
  cr_assert_null (strstr (err, "pstore:"), "%s", err);
  char *kept = tu_read (vars);
  cr_assert (kept && strcmp (kept, "bootcmd=saved by the guest") == 0, "%s lost what the guest saved", vars);
  free (kept);
  kept = tu_read (pstore);
  cr_assert (kept && strcmp (kept, "Kernel panic - not syncing: the last boot") == 0, "%s lost the last log", pstore);
  free (kept);
  cr_assert_eq (truncate (pstore, 1 << 20), 0);

  /* A bootloader of 1 MiB and more (padding in front: the reset vector
     stays at its end): a 3 MiB chip.  */
  char *boot = ts_fmt ("%s/bootloader", images), *rom = tu_read (boot);
  struct stat st;
  cr_assert (rom && stat (boot, &st) == 0);
  f = fopen (boot, "w");
  cr_assert_not_null (f);
  for (int i = 0; i < 1 << 20; i++)
    fputc (0, f);
  fwrite (rom, 1, (size_t) st.st_size, f);
  fclose (f);
  free (rom);
  err = boot_once (images);
  cr_assert (strstr (err, ts_fmt ("pflash: made anew %s (3072 KiB", vars)), "%s", err);
  cr_assert (stat (vars, &st) == 0 && st.st_size == 3 << 20);
  cr_assert (strstr (err, ts_fmt ("pstore: made anew %s (2048 KiB)", pstore)), "%s", err);
  cr_assert (stat (pstore, &st) == 0 && st.st_size == 2 << 20);
}

Test (aaos, android14_x86_64) { boot_release (&expects[0], "x86_64", 11); }

Test (aaos, android14_qpr2_x86_64) { boot_release (&expects[1], "x86_64", 12); }

Test (aaos, android15_x86_64) { boot_release (&expects[2], "x86_64", 13); }

Test (aaos, android15_qpr2_x86_64) { boot_release (&expects[3], "x86_64", 14); }

Test (aaos, android16_x86_64) { boot_release (&expects[4], "x86_64", 15); }

Test (aaos, android14_arm64) { boot_release (&expects[0], "arm64", 16); }

Test (aaos, android16_arm64) { boot_release (&expects[4], "arm64", 17); }

/* ---- what goes wrong when avm gets a helper's needs wrong ------------------ */

/* Start instance INST of the x86_64 profile on RELEASE's image set with
   EXTRA arguments; expect the exit status WANT and NEEDLE in its output.  */
static void
expect_failure (const char *release, int inst, const char *const extra[], int want, const char *needle)
{
  char *images = shaped (release, "x86_64"), *instance = ts_fmt ("%d", inst);
  const char *argv[40];
  size_t n = 0;
  for (const char *const *p = (const char *const[]) { "--images", images, "-i", instance, "--set", "machine.accel=tcg",
                                                      "--set", "vsock.mode=none", "--set", "stop.timeout=0", NULL };
       *p; p++)
    argv[n++] = *p;
  for (size_t i = 0; extra[i]; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  struct ts_avm a;
  ts_start (&env, &a, "aaos-x86_64", argv[0], argv[1], argv[2], argv[3], argv[4], argv[5], argv[6], argv[7], argv[8],
            argv[9], n > 10 ? argv[10] : NULL, n > 11 ? argv[11] : NULL, n > 12 ? argv[12] : NULL,
            n > 13 ? argv[13] : NULL, NULL);
  int rc = ts_wait (&a, TU_TIMEOUT (90));
  char *err = ts_stderr (&a);
  cr_assert_eq (rc, want, "exit %d, not %d:\n%s", rc, want, err);
  cr_assert (strstr (err, needle), "expected \"%s\" in:\n%s", needle, err);
  cr_assert (!strstr (ts_notify_all (&a), "READY=1"));
}

Test (aaos, unknown_flag_refused_at_plan_time)
{
  /* android14's secure_env has no snapshot/oemlock/keymint flags: without
     the --undefok, the plan names them before anything starts.  */
  const char *const extra[]
      = { "--set", "services.secure_env.exec[15]=-kernel_events_fd=${fd:secure_env_events.read}", NULL };
  expect_failure ("android14", 18, extra, 1, "critical services cannot start: secure_env (");
  expect_failure ("android14", 18, extra, 1, "does not accept -snapshot_control_fd, -oemlock_fd_in");
}

Test (aaos, unknown_flag_kills_the_helper_as_gflags_does)
{
  /* The same argv with the check off (flags none): the tool itself refuses
     it, as gflags does, and avm names the service with its output.  */
  const char *const extra[] = { "--set", "services.secure_env.exec[15]=-kernel_events_fd=${fd:secure_env_events.read}",
                                "--set", "services.secure_env.flags=none", NULL };
  expect_failure ("android14", 19, extra, 6, "ERROR: unknown command line flag 'snapshot_control_fd'");
}

Test (aaos, missing_snapshot_fd_aborts_secure_env)
{
  /* android14-qpr2 and later: -snapshot_control_fd is mandatory
     (secure_env_not_windows_main.cpp: CHECK(fd != -1)).  */
  const char *const extra[] = { "--set", "services.secure_env.exec[2]=-confui_server_fd=${fd:confui}", NULL };
  expect_failure ("android16", 20, extra, 6, "secure_env");
  expect_failure ("android16", 20, extra, 6, "Check failed");
}

Test (aaos, no_cuttlefish_config_aborts_the_helpers)
{
  const char *const extra[]
      = { "--set", "service_env.CUTTLEFISH_CONFIG_FILE=/nonexistent/cuttlefish_config.json", NULL };
  expect_failure ("android15-qpr2", 21, extra, 6, "Could not open cuttlefish config");
}

Test (aaos, wrong_instance_number_aborts_the_helpers)
{
  /* Without CUTTLEFISH_INSTANCE the tools take instance 1 (config_utils.cpp)
     and look for logs/ in cvd-1, which this instance (22) does not have.  */
  const char *const extra[] = { "--set", "service_env.CUTTLEFISH_INSTANCE=1", NULL };
  expect_failure ("android15", 22, extra, 6, "Failed to create log file");
}
