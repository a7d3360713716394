/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plan and the approved command line, through the CLI: golden command
 * lines for every shipped profile variant (against recorded QEMU 10.0 and
 * 7.2 capabilities, so they do not depend on this host), and the semantic
 * checks (references, conflicts, capabilities, unapproved arguments).
 * AVM_UPDATE_GOLDEN=1 rewrites the golden files.
 */
#include "plan/plan.h"
#include "cfimage.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define assert_contains(hay, needle) cr_assert (strstr ((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))

/* State directories that never exist: the generated properties disk's key
   is a missing file only while the disk is missing, so the plans must not
   depend on what an `avm start` on this host left in /var/lib/avm.  The
   children inherit it; normalise() reads it too.  */
static void
hermetic_state (void)
{
  char *dir = tu_run_shared_dir ("plan-state-never-created");
  cr_assert_eq (setenv ("AVM_STATE_DIR", dir, 1), 0);
  free (dir);
}

TestSuite (plan, .init = hermetic_state);

static char *
caps (const char *name)
{
  static char buf[4096];
  snprintf (buf, sizeof buf, "%s/tests/data/caps-qemu-%s.json", tu_srcdir (), name);
  return buf;
}

/* The images directory of the golden plans: one that exists and is empty,
   so that each file the profile names is reported missing on its own (a
   missing directory is reported once instead); "/images" in the goldens.  */
static const char *
images_dir (void)
{
  static char *dir;
  if (!dir)
    {
      dir = tu_run_shared_dir ("plan-images");
      cr_assert (mkdir (dir, 0755) == 0 || errno == EEXIST, "%s: %s", dir, strerror (errno));
    }
  return dir;
}

static char *
unimages (char *s)
{
  return s ? tu_replace (s, images_dir (), "/images") : s;
}

/* Replace host-specific paths so golden files are stable.  */
static char *
normalise (char *s)
{
  s = unimages (s);
  for (int i = 1; i <= 3; i++)
    {
      char *rd = avm_instance_run_dir (i), *sd = avm_instance_state_dir (i), tag[32], stag[32];
      snprintf (tag, sizeof tag, "@RUN_DIR%d@", i);
      snprintf (stag, sizeof stag, "@STATE_DIR%d@", i);
      s = tu_replace (s, rd, tag);
      s = tu_replace (s, sd, stag);
      free (rd);
      free (sd);
    }
  s = tu_replace (s, tu_fake_helpers (), "@HELPERS@");
  return tu_replace (s, tu_srcdir (), "@SRCDIR@");
}

struct golden
{
  const char *name;
  const char *caps;
  const char *args[16];
};

static const struct golden goldens[] = {
  { "aaos-x86_64", "10.0-x86_64", { "-p", "aaos-x86_64", NULL } },
  { "aaos-x86_64-virgl", "10.0-x86_64", { "-p", "aaos-x86_64", "-O", "gpu=virgl", NULL } },
  { "aaos-x86_64-vhost-user-vsock", "10.0-x86_64", { "-p", "aaos-x86_64", "-O", "vsock=vhost-user", NULL } },
  { "aaos-x86_64-multitouch", "10.0-x86_64", { "-p", "aaos-x86_64", "-O", "touch=multitouch", NULL } },
  { "aaos-x86_64-phone", "10.0-x86_64", { "-p", "aaos-x86_64", "-O", "mode=phone", NULL } },
  { "aaos-x86_64-tap", "10.0-x86_64", { "-p", "aaos-x86_64", "-O", "network=tap", NULL } },
  { "aaos-x86_64-instance2", "10.0-x86_64", { "-p", "aaos-x86_64", "--instance", "2", NULL } },
  { "aaos-x86_64-all",
    "10.0-x86_64",
    { "-p", "aaos-x86_64", "-O", "gpu=virgl", "-O", "vsock=vhost-user", "-O", "touch=multitouch", "-O", "network=tap",
      NULL } },
  { "aaos-x86_64-qemu7.2", "7.2-x86_64", { "-p", "aaos-x86_64", NULL } },
  { "aaos-arm64", "10.0-aarch64", { "-p", "aaos-arm64", "--set", "qemu.binary=/usr/bin/qemu-system-aarch64", NULL } },
  { "aaos-arm64-virgl-vhost-user",
    "10.0-aarch64",
    { "-p", "aaos-arm64", "--set", "qemu.binary=/usr/bin/qemu-system-aarch64", "-O", "gpu=virgl", "-O",
      "vsock=vhost-user", NULL } },
  { "phone-x86_64", "10.0-x86_64", { "-p", "phone-x86_64", NULL } },
  { "demo", "10.0-x86_64", { "-p", "demo", NULL } },
  { "demo-arm64", "10.0-aarch64", { "-p", "demo-arm64", "--set", "qemu.binary=/usr/bin/qemu-system-aarch64", NULL } },
};

static void
check_golden (const char *name, char *actual)
{
  char *path = NULL;
  cr_assert (asprintf (&path, "%s/tests/golden/%s", tu_srcdir (), name) > 0);
  if (getenv ("AVM_UPDATE_GOLDEN"))
    {
      FILE *f = fopen (path, "w");
      cr_assert_not_null (f, "cannot write %s", path);
      fputs (actual, f);
      fclose (f);
    }
  char *want = tu_read (path);
  cr_assert_not_null (want, "missing golden file %s (make golden)", path);
  cr_assert_str_eq (actual, want, "%s differs from the golden file (run `make golden` if the change is intended)",
                    name);
  free (want);
  free (actual);
  free (path);
}

static const char *fake_helpers (void);

static int
run_variant (const struct golden *g, const char *extra, char **out, char **err)
{
  char *args[40];
  size_t n = 0;
  args[n++] = "start";
  args[n++] = "--dry-run";
  if (extra)
    args[n++] = (char *) extra;
  args[n++] = "--caps";
  args[n++] = caps (g->caps);
  args[n++] = "--images";
  args[n++] = (char *) images_dir ();
  args[n++] = "--set";
  args[n++] = "machine.accel=tcg";
  args[n++] = "--set";
  args[n++] = (char *) fake_helpers ();
  if (!strstr (g->name, "arm64"))
    {
      args[n++] = "--set";
      args[n++] = "qemu.binary=/usr/bin/qemu-system-x86_64";
    }
  /* The demo's virtiofsd runs only as root: the goldens are the plan of
     root, whoever runs the tests.  */
  if (geteuid () != 0 && strncmp (g->name, "demo", 4) == 0)
    {
      args[n++] = "--set";
      args[n++] = "services.virtiofsd.requires_root=false";
    }
  for (size_t i = 0; g->args[i]; i++)
    args[n++] = (char *) g->args[i];
  args[n] = NULL;
  return tu_avmv (args, out, err);
}

Test (plan, golden_command_lines)
{
  for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++)
    {
      char *out = NULL, *err = NULL;
      int r = run_variant (&goldens[i], NULL, &out, &err);
      cr_assert_eq (r, 0, "%s: exit %d: %s", goldens[i].name, r, err);
      char name[128];
      snprintf (name, sizeof name, "%s.txt", goldens[i].name);
      check_golden (name, normalise (out));
      free (err);
    }
}

Test (plan, golden_json_plan)
{
  char *out = NULL, *err = NULL;
  int r = run_variant (&goldens[0], "--json", &out, &err);
  cr_assert_eq (r, 0, "%s", err);
  json_error_t je;
  json_t *j = json_loads (out, 0, &je);
  cr_assert_not_null (j, "plan is not JSON: %s", je.text);
  cr_assert (json_is_true (json_object_get (j, "approved")));
  /* The JSON argv and the text command line are the same list.  */
  json_t *argv = json_object_get (json_object_get (j, "qemu"), "argv");
  cr_assert_gt (json_array_size (argv), 100);
  cr_assert_str_eq (json_string_value (json_array_get (argv, 0)), "/usr/bin/qemu-system-x86_64");
  json_decref (j);
  check_golden ("aaos-x86_64-plan.json", normalise (out));
  free (err);
}

static const char *
fake_helpers (void)
{
  static char *set;
  if (!set)
    cr_assert_geq (asprintf (&set, "paths.helpers=%s", tu_fake_helpers ()), 0);
  return set;
}

/* The plan of an image set of each Android release (cfimage.h: the host
   tools are avm-fakecf, answering --helpxml as that release's tools do),
   x86_64 and arm64: what avm tells from the set, and everything it then
   runs, in tests/golden/aaos-ARCH-RELEASE.json.  */
Test (plan, golden_release_plans, .timeout = TU_TIMEOUT (120))
{
  static const char *const releases[] = { "android14", "android14-qpr2", "android15", "android15-qpr2", "android16" };
  static const char *const arches[][3]
      = { { "x86_64", "aaos-x86_64", "10.0-x86_64" }, { "arm64", "aaos-arm64", "10.0-aarch64" } };
  char *tmp = tu_tmpdir ();
  for (size_t a = 0; a < 2; a++)
    for (size_t r = 0; r < sizeof releases / sizeof *releases; r++)
      {
        char *dir = NULL, *bl = NULL, *name = NULL, *out = NULL, *err = NULL;
        cr_assert_geq (asprintf (&dir, "%s/%s-%s", tmp, arches[a][0], releases[r]), 0);
        free (tu_cf_imageset (dir, releases[r], arches[a][0]));
        cr_assert_geq (asprintf (&bl, "%s/bootloader", dir), 0);
        tu_test_firmware (a ? "aarch64" : "x86_64", bl);
        char *args[] = { "start",
                         "-n",
                         "--json",
                         "-p",
                         (char *) arches[a][1],
                         "--caps",
                         caps (arches[a][2]),
                         "--images",
                         dir,
                         "--set",
                         "machine.accel=tcg",
                         "--set",
                         a ? "qemu.binary=/usr/bin/qemu-system-aarch64" : "qemu.binary=/usr/bin/qemu-system-x86_64",
                         NULL };
        int rc = tu_avmv (args, &out, &err);
        cr_assert_eq (rc, 0, "%s %s: %s", arches[a][0], releases[r], err);
        json_t *j = json_loads (out, 0, NULL);
        cr_assert_not_null (j);
        cr_assert_str_eq (json_string_value (json_object_get (json_object_get (j, "options"), "release")), releases[r]);
        cr_assert_eq (json_array_size (json_object_get (j, "skipped_services")), 0, "%s", out);
        cr_assert_eq (json_array_size (json_object_get (j, "warnings")), 0, "%s", out);
        json_decref (j);
        cr_assert_geq (asprintf (&name, "aaos-%s-%s.json", arches[a][0], releases[r]), 0);
        check_golden (name, tu_replace (normalise (out), dir, "@IMAGES@"));
        free (err);
        free (name);
        free (bl);
        free (dir);
      }
  tu_rmtree (tmp);
  free (tmp);
}

static json_t *
plan_json (const char *profile, const char *caps_name, char *const extra[], char **err)
{
  char *args[40] = { "start",
                     "-n",
                     "--json",
                     "--caps",
                     caps (caps_name),
                     "--images",
                     (char *) images_dir (),
                     "--set",
                     "machine.accel=tcg",
                     "-p",
                     (char *) profile,
                     "--set",
                     (char *) fake_helpers () };
  size_t n = 13;
  for (size_t i = 0; extra && extra[i]; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  char *out = NULL;
  free (*err);
  *err = NULL;
  int r = tu_avmv (args, &out, err);
  cr_assert_eq (r, 0, "exit %d: %s", r, *err);
  out = unimages (out);
  *err = unimages (*err);
  json_t *j = json_loads (out, 0, NULL);
  cr_assert_not_null (j);
  free (out);
  return j;
}

/* missing_files entry for profile key KEY, or NULL.  */
static json_t *
missing (json_t *plan, const char *key)
{
  size_t i;
  json_t *m;
  json_array_foreach (json_object_get (plan, "missing_files"), i, m)
    if (!strcmp (json_string_value (json_object_get (m, "key")), key))
      return m;
  return NULL;
}

static const char *
prop (json_t *plan, const char *key)
{
  return json_string_value (json_object_get (json_object_get (plan, "boot_properties"), key));
}

Test (plan, boot_properties_derived_from_the_same_layout)
{
  char *err = NULL;
  /* android14: start-avm's twelve console devices, disks at 0f and 10.  */
  char *a14[] = { "-O", "release=android14", NULL };
  json_t *j = plan_json ("aaos-x86_64", "10.0-x86_64", a14, &err);
  cr_assert_str_eq (prop (j, "androidboot.boot_devices"), "pci0000:00/0000:00:0f.0,pci0000:00/0000:00:10.0");
  cr_assert_str_eq (prop (j, "androidboot.ddr_size"), "4915MB");
  cr_assert_str_eq (prop (j, "androidboot.lcd_density"), "320");
  cr_assert_str_eq (prop (j, "androidboot.hardware.egl"), "angle");
  cr_assert_str_eq (prop (j, "androidboot.vendor.audiocontrol.server.cid"), "3");
  cr_assert_str_eq (prop (j, "androidboot.modem_simulator_ports"), "9600");
  cr_assert_str_eq (prop (j, "androidboot.serialno"), "CUTTLEFISHCVD011");
  /* The disks are at those slots in the PCI table and on the command line.  */
  json_t *pci = json_object_get (j, "pci");
  size_t i;
  json_t *e;
  int found = 0;
  json_array_foreach (pci, i, e)
    {
      const char *f = json_string_value (json_object_get (e, "for"));
      const char *slot = json_string_value (json_object_get (e, "slot"));
      if (!strcmp (f, "disks[0]"))
        found += !strcmp (slot, "0x0f");
      if (!strcmp (f, "disks[1]"))
        found += !strcmp (slot, "0x10");
      if (!strcmp (f, "display.gpu"))
        found += !strcmp (slot, "0x02");
    }
  cr_assert_eq (found, 3);
  json_decref (j);

  /* virgl, multiport consoles, more memory, instance 2.  */
  char *extra[]
      = { "-O", "gpu=virgl", "--set", "consoles.transport=multiport", "--set", "machine.memory=8G", "-i", "2", NULL };
  j = plan_json ("aaos-x86_64", "10.0-x86_64", extra, &err);
  cr_assert_str_eq (prop (j, "androidboot.boot_devices"), "pci0000:00/0000:00:04.0,pci0000:00/0000:00:05.0");
  cr_assert_str_eq (prop (j, "androidboot.ddr_size"), "9830MB");
  cr_assert_str_eq (prop (j, "androidboot.hardware.egl"), "mesa");
  cr_assert_str_eq (prop (j, "androidboot.hardware.hwcomposer.mode"), "client");
  cr_assert_str_eq (prop (j, "androidboot.vendor.audiocontrol.server.cid"), "4");
  cr_assert_str_eq (prop (j, "androidboot.modem_simulator_ports"), "9601");
  cr_assert_str_eq (prop (j, "androidboot.serialno"), "CUTTLEFISHCVD012");
  json_decref (j);

  /* vhost-user-vsock: the <uds>_<port> sockets live in the instance's run
     directory, so the guest-side ports do not move with the instance.  */
  char *vu[] = { "-O", "vsock=vhost-user", "-i", "2", NULL };
  j = plan_json ("aaos-x86_64", "10.0-x86_64", vu, &err);
  cr_assert_str_eq (prop (j, "androidboot.modem_simulator_ports"), "9600");
  size_t k;
  json_t *res;
  int uds = 0;
  json_array_foreach (json_object_get (j, "resources"), k, res)
    if (!strcmp (json_string_value (json_object_get (res, "name")), "modem_vsock"))
      uds += strstr (json_string_value (json_object_get (res, "path")), "/2/vm.vsock_9600") != NULL;
  cr_assert_eq (uds, 1);
  json_decref (j);

  j = plan_json ("aaos-arm64", "10.0-aarch64", NULL, &err);
  cr_assert_str_eq (prop (j, "androidboot.boot_devices"), "4010000000.pcie");
  json_decref (j);
  free (err);
}

Test (plan, derived_keys_cannot_be_set_by_hand)
{
  char *out = NULL, *err = NULL;
  int r
      = tu_avm (&out, &err, "start", "-n", "--caps", caps ("10.0-x86_64"), "--images", "/images", "--set",
                "machine.accel=tcg", "--set", "boot_properties.androidboot.boot_devices=pci0000:00/0000:00:01.0", NULL);
  cr_assert_eq (r, 2, "%s", err);
  assert_contains (err, "boot_properties[\"androidboot.boot_devices\"]: avm derives this key");
  free (out);
  free (err);
}

Test (plan, services_in_dependency_order_with_fds_and_sockets)
{
  char *err = NULL;
  char *extra[] = { "-O", "vsock=vhost-user", "-O", "gpu=virgl", NULL };
  json_t *j = plan_json ("aaos-x86_64", "10.0-x86_64", extra, &err);
  json_t *svcs = json_object_get (j, "services");
  size_t i;
  json_t *s;
  int pos_vsock = -1, pos_proxy = -1, pos_kmon = -1;
  json_array_foreach (svcs, i, s)
    {
      const char *n = json_string_value (json_object_get (s, "name"));
      if (!strcmp (n, "vhost-user-vsock"))
        pos_vsock = i;
      if (!strcmp (n, "socket_vsock_proxy"))
        pos_proxy = i;
      if (!strcmp (n, "kernel_log_monitor"))
        pos_kmon = i;
      if (!strcmp (n, "vhost-user-gpu"))
        {
          json_t *rd = json_object_get (s, "ready");
          cr_assert_str_eq (json_string_value (json_object_get (rd, "type")), "socket");
          assert_contains (json_string_value (json_array_get (json_object_get (s, "argv"), 1)), "--socket-path=/");
          cr_assert_str_eq (json_string_value (json_array_get (json_object_get (s, "serves"), 0)), "display.gpu");
        }
      if (!strcmp (n, "secure_env"))
        {
          cr_assert_str_eq (json_string_value (json_array_get (json_object_get (s, "argv"), 3)),
                            "-keymaster_fd_in=${fd:keymaster.out}");
          cr_assert_str_eq (json_string_value (json_object_get (json_object_get (s, "env"), "HOME")), "/images");
        }
    }
  cr_assert (pos_vsock >= 0 && pos_proxy > pos_vsock && pos_proxy > pos_kmon);
  /* vhost-user needs shared RAM.  */
  json_t *argv = json_object_get (json_object_get (j, "qemu"), "argv");
  int memfd = 0;
  json_array_foreach (argv, i, s)
    memfd += strstr (json_string_value (s), "memory-backend-memfd,id=vm_ram,size=4096M,share=on") != NULL;
  cr_assert_eq (memfd, 1);
  json_decref (j);
  free (err);
}

static void
expect_error (const char *json, const char *needle, int code, const char *const more[])
{
  char *dir = tu_tmpdir ();
  char *path = tu_write (dir, "bad.json", json);
  char *args[32] = { "start", "-n", "--caps", caps ("10.0-x86_64"), "--images", "/images", "--set", "machine.accel=tcg",
                     "-p",    path };
  size_t n = 10;
  for (size_t i = 0; more && more[i]; i++)
    args[n++] = (char *) more[i];
  args[n] = NULL;
  char *out = NULL, *err = NULL;
  int r = tu_avmv (args, &out, &err);
  cr_assert_eq (r, code, "exit %d (want %d) for %s:\n%s", r, code, json, err);
  assert_contains (err, needle);
  if (code)
    cr_assert_str_eq (out, "", "nothing on stdout on failure");
  free (out);
  free (err);
  free (path);
  tu_rmtree (dir);
  free (dir);
}

Test (plan, reference_and_conflict_errors)
{
  expect_error ("{\"display\": {\"gpu\": \"vhost-user-gpu\", \"gpu_service\": \"gpu\"}}",
                "display.gpu: no service \"gpu\" in services", 2, NULL);
  expect_error ("{\"display\": {\"gpu\": \"vhost-user-gpu\", \"gpu_service\": \"gpu\"},"
                " \"services\": {\"gpu\": {\"exec\": [\"/bin/true\"], \"enabled\": false}}}",
                "service \"gpu\" is disabled", 2, NULL);
  expect_error ("{\"display\": {\"gpu\": \"vhost-user-gpu\", \"gpu_service\": \"gpu\"},"
                " \"services\": {\"gpu\": {\"exec\": [\"/bin/true\"]}}}",
                "service \"gpu\" declares no socket", 2, NULL);
  expect_error ("{\"services\": {\"a\": {\"exec\": [\"/bin/true\"], \"after\": [\"b\"]},"
                " \"b\": {\"exec\": [\"/bin/true\"], \"after\": [\"a\"]}}}",
                "the `after` dependencies of a, b form a cycle", 2, NULL);
  expect_error ("{\"services\": {\"a\": {\"exec\": [\"/bin/true\"], \"after\": [\"zz\"]}}}",
                "services.a.after[0]: no service \"zz\"", 2, NULL);
  expect_error ("{\"services\": {\"a\": {\"exec\": [\"/bin/true\", \"--fd=${fd:nothing}\"]}}}",
                "services.a.exec[1]: ${fd:nothing}: no such resource", 2, NULL);
  expect_error ("{\"services\": {\"a\": {\"exec\": [\"/bin/true\", \"${imgs}\"]}}}",
                "services.a.exec[1]: unknown variable ${imgs}", 2, NULL);
  expect_error ("{\"display\": {\"gl\": true, \"backend\": \"vnc\"}}", "display.gl: OpenGL needs display.backend", 2,
                NULL);
  expect_error ("{\"shares\": [{\"tag\": \"t\", \"service\": \"fs\"}], \"machine\": {\"memory_backend\": \"default\"},"
                " \"services\": {\"fs\": {\"exec\": [\"/bin/true\"], \"socket\": \"/tmp/x.sock\"}}}",
                "vhost-user devices need shared guest RAM", 2, NULL);
  expect_error ("{\"machine\": {\"arch\": \"x86_64\", \"type\": \"virt\"}}", "virt is an aarch64 machine", 2, NULL);
  expect_error ("{\"machine\": {\"cpu\": \"host\"}}", "\"host\" needs KVM", 2, NULL);
  expect_error ("{\"firmware\": {\"bios\": \"/a\", \"kernel\": \"/b\"}}", "bios and kernel exclude each other", 2,
                NULL);
  expect_error ("{\"consoles\": {\"ports\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}}", "\"a\" is used twice", 2, NULL);
  expect_error ("{\"consoles\": {\"ports\": [{\"name\": \"a\", \"kind\": \"pipe\"}]}}",
                "consoles.ports[0].path: required for kind pipe", 2, NULL);
  expect_error ("{\"boot\": {\"completed\": [\"DONE\"]}}", "boot patterns need a console port of kind log", 2, NULL);
  expect_error ("{\"boot\": {\"console\": \"k\"}, \"consoles\": {\"ports\": [{\"name\": \"k\", \"kind\": \"null\"}]}}",
                "boot.console: \"k\" is not a console port of kind log", 2, NULL);
  expect_error ("{\"network\": {\"mac\": \"01:00:00:00:00:01\"}}", "is a multicast address", 2, NULL);
  expect_error ("{\"network\": {\"mode\": \"tap\", \"tap\": \"x,y\"}}", "is not an interface name", 2, NULL);
  expect_error ("{\"network\": {\"mode\": \"tap\", \"forwards\": [{\"host_port\": 1, \"guest_port\": 2}]}}",
                "port forwards need network.mode user", 2, NULL);
  expect_error ("{\"resources\": {\"r\": {\"type\": \"fifo\"}}}", "resources.r.path: required for type fifo", 2, NULL);
}

Test (plan, capability_errors_say_what_and_how)
{
  char *out = NULL, *err = NULL;
  int r = tu_avm (&out, &err, "start", "-n", "--caps", caps ("7.2-x86_64"), "--images", "/images", "--set",
                  "machine.accel=tcg", "-O", "touch=multitouch", NULL);
  cr_assert_eq (r, 2);
  assert_contains (err, "profile aaos-x86_64 needs virtio-multitouch-pci");
  assert_contains (err, "7.2.22 lacks (added in QEMU 8.1); use --set input.touch=mouse or a newer QEMU");
  free (out);
  free (err);
  r = tu_avm (&out, &err, "start", "-n", "--caps", caps ("10.0-x86_64"), "--images", "/images", "--set",
              "machine.accel=tcg", "-O", "rotary=on", NULL);
  cr_assert_eq (r, 2);
  assert_contains (err, "needs virtio-rotary-pci");
  assert_contains (err, "not in upstream QEMU); use --set input.rotary=false");
  free (out);
  free (err);
  r = tu_avm (&out, &err, "start", "-n", "--caps", caps ("10.0-x86_64"), "--images", "/images", "--set",
              "machine.accel=tcg", "-O", "video=on", NULL);
  cr_assert_eq (r, 2);
  assert_contains (err, "needs vhost-user-video-pci (vhost-user video decoder, for video.model)");
  assert_contains (err, "not in upstream QEMU); use --set video.model=none");
  cr_assert_str_eq (out, "");
  free (out);
  free (err);
  r = tu_avm (&out, &err, "start", "-n", "--caps", caps ("7.2-x86_64"), "--images", "/images", "--set",
              "machine.accel=tcg", "--set", "audio.model=virtio-sound", NULL);
  cr_assert_eq (r, 2);
  assert_contains (err, "virtio-sound-pci");
  assert_contains (err, "added in QEMU 8.2");
  free (out);
  free (err);
}

Test (plan, vhost_user_gpu_needs_kvm_before_qemu_8)
{
  char *out = NULL, *err = NULL;
  int r = tu_avm (&out, &err, "start", "-n", "--caps", caps ("7.2-x86_64"), "-p", "demo", "-O", "gpu=vhost-user",
                  "--set", "machine.accel=tcg", NULL);
  cr_assert_eq (r, 2, "%s", err);
  assert_contains (err, "needs vhost-user-gpu-pci, which /usr/bin/qemu-system-x86_64 7.2.22 supports only with KVM");
  free (out);
  free (err);
  r = tu_avm (&out, &err, "start", "-n", "--caps", caps ("10.0-x86_64"), "-p", "demo", "-O", "gpu=vhost-user", "--set",
              "machine.accel=tcg", NULL);
  cr_assert_eq (r, 0, "%s", err);
  assert_contains (out, "-device vhost-user-gpu-pci,chardev=vgpu");
  free (out);
  free (err);
}

/* The demo's option share=off, for snapshots (QEMU refuses to migrate or
   save a guest with vhost-user-fs): no share, no virtiofsd, and the guest
   RAM then needs no shared memory backend.  The default, share=on (the
   same as not saying it), has both.  Its data disk is there either way,
   with snapshot=on (the image file is never written).  */
Test (plan, demo_share_off_leaves_out_virtiofs)
{
  char *err = NULL;
  /* (virtiofsd runs only as root: the plan of root, whoever runs this.)  */
  char *root = geteuid () == 0 ? "services.virtiofsd.requires_root=true" : "services.virtiofsd.requires_root=false";
  char *dflt[] = { "--set", root, NULL }, *on[] = { "-O", "share=on", "--set", root, NULL };
  char *off[] = { "-O", "share=off", "--set", root, NULL };
  const char *names[] = { "default", "share=on", "share=off" };
  json_t *plans[] = { plan_json ("demo", "10.0-x86_64", dflt, &err), plan_json ("demo", "10.0-x86_64", on, &err),
                      plan_json ("demo", "10.0-x86_64", off, &err) };
  for (size_t k = 0; k < 3; k++)
    {
      json_t *j = plans[k];
      bool share = k < 2;
      char *argv = json_dumps (json_object_get (json_object_get (j, "qemu"), "argv"), JSON_COMPACT);
      cr_assert_not_null (argv, "%s: no qemu.argv", names[k]);
      cr_expect_eq (strstr (argv, "vhost-user-fs-pci,") != NULL, share, "%s: %s", names[k], argv);
      cr_expect_eq (strstr (argv, "tag=demo") != NULL, share, "%s: %s", names[k], argv);
      /* The share's vhost-user device is what wants shared RAM.  */
      cr_expect_eq (strstr (argv, "memory-backend-memfd") != NULL, share, "%s: %s", names[k], argv);
      cr_expect (strstr (argv, ",snapshot=on\"") || strstr (argv, ",snapshot=on,"), "%s: %s", names[k], argv);
      cr_expect (strstr (argv, "/images/data.img,"), "%s: %s", names[k], argv);
      cr_expect (strstr (argv, "\"virtio-blk-pci-non-transitional,drive=drive-virtio-disk0,"), "%s: %s", names[k],
                 argv);
      free (argv);
      bool fsd = false, dbus = false;
      size_t i;
      json_t *sv;
      json_array_foreach (json_object_get (j, "services"), i, sv)
        {
          const char *n = json_string_value (json_object_get (sv, "name"));
          fsd |= n && !strcmp (n, "virtiofsd");
          dbus |= n && !strcmp (n, "dbus");
        }
      cr_expect_eq (fsd, share, "%s: virtiofsd service %s", names[k], fsd ? "started" : "not started");
      cr_expect (dbus, "%s: no dbus service", names[k]);
      cr_expect_eq (json_array_size (json_object_get (j, "skipped_services")), 0, "%s: services skipped", names[k]);
    }
  for (size_t k = 0; k < 3; k++)
    json_decref (plans[k]);

  /* The command line, as --dry-run says it.  */
  char *out = NULL;
  free (err);
  err = NULL;
  int r = tu_avm (&out, &err, "start", "-n", "--caps", caps ("10.0-x86_64"), "--images", images_dir (), "-p", "demo",
                  "-O", "share=off", "--set", "machine.accel=tcg", NULL);
  cr_assert_eq (r, 0, "%s", err);
  assert_contains (out, "# started first, in this order: dbus\n");
  cr_expect_null (strstr (out, "vhost-user-fs"), "%s", out);
  cr_expect_null (strstr (out, "virtiofsd"), "%s", out);
  free (out);
  free (err);
}

Test (plan, accelerator_fallback)
{
  /* The recorded aarch64 build has no KVM: kvm is skipped for tcg, with a warning.  */
  char *out = NULL, *err = NULL;
  int r = tu_avm (&out, &err, "start", "-n", "--caps", caps ("10.0-aarch64"), "--images", "/images", "-p", "aaos-arm64",
                  NULL);
  cr_assert_eq (r, 0, "%s", err);
  assert_contains (out, "-accel tcg");
  assert_contains (err, "using accelerator tcg: kvm");
  free (out);
  free (err);
  r = tu_avm (&out, &err, "start", "-n", "--caps", caps ("10.0-aarch64"), "--images", "/images", "-p", "aaos-arm64",
              "--set", "machine.accel=kvm", NULL);
  cr_assert_eq (r, 1);
  assert_contains (err, "machine.accel: no usable accelerator (kvm ");
  free (out);
  free (err);
}

Test (plan, unapproved_arguments_need_the_flag_and_are_flagged)
{
  const char *json = "{\"extra_qemu_args\": [\"-device\", \"virtio-balloon-pci\"]}";
  expect_error (json, "not approved: extra_qemu_args: 2 free-form QEMU argument(s)", 2, NULL);
  const char *allow[] = { "--allow-unapproved", NULL };
  expect_error (json, "UNAPPROVED configuration", 0, allow);
  char *dir = tu_tmpdir ();
  char *path = tu_write (dir, "u.json", json);
  char *out = NULL, *err = NULL;
  int r = tu_avm (&out, &err, "start", "-n", "--caps", caps ("10.0-x86_64"), "--set", "machine.accel=tcg", "-p", path,
                  "--allow-unapproved", NULL);
  cr_assert_eq (r, 0);
  assert_contains (out, "# WARNING: UNAPPROVED (--allow-unapproved): extra_qemu_args: 2 free-form QEMU argument(s)\n");
  assert_contains (out, "  -device virtio-balloon-pci\n");
  free (out);
  free (err);
  r = tu_avm (&out, &err, "start", "-n", "--json", "--caps", caps ("10.0-x86_64"), "--set", "machine.accel=tcg", "-p",
              path, "--allow-unapproved", NULL);
  cr_assert_eq (r, 0);
  json_t *j = json_loads (out, 0, NULL);
  cr_assert (json_is_false (json_object_get (j, "approved")));
  json_decref (j);
  free (out);
  free (err);
  free (path);
  tu_rmtree (dir);
  free (dir);
}

Test (plan, paths_with_commas_and_quotes_are_escaped)
{
  char *out = NULL, *err = NULL;
  /* android14: no helper argument names ${images} (a comma from it would
     be refused there, see comma_from_a_variable_refused_in_helper_arguments).  */
  int r = tu_avm (&out, &err, "start", "-n", "--caps", caps ("10.0-x86_64"), "--set", "machine.accel=tcg", "--images",
                  "/my,images/it's", "-O", "release=android14", NULL);
  cr_assert_eq (r, 0, "%s", err);
  assert_contains (out, "'file=/my,,images/it'\\''s/system.img,if=none");
  assert_contains (out, "-bios '/my,images/it'\\''s/bootloader'");
  free (out);
  free (err);
}

Test (plan, real_qemu_probe_and_cache)
{
  /* This host's QEMU, probed and cached in a private cache directory.  */
  char *dir = tu_tmpdir ();
  char *cache = NULL;
  cr_assert (asprintf (&cache, "XDG_CACHE_HOME=%s", dir) > 0);
  char *argv[] = { (char *) tu_avm_bin (), "start", "-n", "-p", "demo", "--set", "machine.accel=tcg", NULL };
  char *env[] = { cache, NULL };
  char *out = NULL, *err = NULL;
  int r = tu_run (argv, env, &out, &err);
  cr_assert_eq (r, 0, "%s", err);
  assert_contains (out, "(probed capabilities)");
  free (out);
  free (err);
  r = tu_run (argv, env, &out, &err);
  cr_assert_eq (r, 0, "%s", err);
  assert_contains (out, "(cached capabilities)");
  assert_contains (out, "-device virtio-gpu-pci,id=gpu0");
  free (out);
  free (err);
  tu_rmtree (dir);
  free (dir);
  free (cache);
}

/* The generated_disks entry NAME of plan J, or NULL.  */
static json_t *
gen_named (json_t *j, const char *name)
{
  size_t i;
  json_t *d;
  json_array_foreach (json_object_get (j, "generated_disks"), i, d)
    if (!strcmp (json_string_value (json_object_get (d, "name")), name))
      return d;
  return NULL;
}

/* The AAOS properties disk is generated in the state directory: listed in
   generated_disks, never a missing file itself; its key is one while
   neither exists.  */
Test (plan, generated_properties_disk)
{
  char *err = NULL, *state = avm_instance_state_dir (2), *want = NULL;
  char *i2[] = { "-i", "2", NULL };
  json_t *j = plan_json ("aaos-x86_64", "10.0-x86_64", i2, &err);
  cr_assert (asprintf (&want, "%s/properties.img", state) > 0);
  json_t *g = json_object_get (j, "generated_disks");
  /* The properties disk, the x86 flash variables of Android 16, and the
     pstore of machine.ramoops, both in the state directory.  */
  cr_assert_eq (json_array_size (g), 3);
  cr_assert_not_null (gen_named (j, "pflash"));
  json_t *ps = gen_named (j, "pstore");
  cr_assert_not_null (ps);
  cr_assert_str_eq (json_string_value (json_object_get (ps, "kind")), "pstore");
  cr_assert_eq (json_integer_value (json_object_get (ps, "size")), 2 << 20);
  char *pwant = NULL;
  cr_assert (asprintf (&pwant, "%s/pstore.img", state) > 0);
  cr_assert_str_eq (json_string_value (json_object_get (ps, "path")), pwant);
  free (pwant);
  json_t *d = gen_named (j, "properties");
  cr_assert_not_null (d);
  cr_assert_str_eq (json_string_value (json_object_get (d, "path")), want);
  cr_assert_str_eq (json_string_value (json_object_get (d, "key")), "/images/avb_key.pem");
  cr_assert_null (missing (j, "disks[1].path"));
  cr_assert_not_null (missing (j, "disks[0].path"));
  cr_assert_neq (access (want, F_OK), 0);
  json_t *m = missing (j, "disks[1].key");
  cr_assert_not_null (m, "the key of a disk to generate is missing, yet not reported");
  cr_assert_str_eq (json_string_value (json_object_get (m, "path")), "/images/avb_key.pem");
  assert_contains (err, "disks[1].key /images/avb_key.pem: No such file or directory");
  /* The same drive on the command line, whatever the GPU: the generated
     disk follows the boot properties (no properties_virgl.img).  */
  json_t *argv = json_object_get (json_object_get (j, "qemu"), "argv");
  char *drive = NULL;
  cr_assert (asprintf (&drive, "file=%s,if=none,id=drive-virtio-disk1,format=raw", want) > 0);
  size_t i;
  json_t *a;
  int found = 0;
  json_array_foreach (argv, i, a)
    found += strstr (json_string_value (a), drive) != NULL;
  cr_assert_eq (found, 1, "no -drive %s", drive);
  json_decref (j);
  char *virgl[] = { "-i", "2", "-O", "gpu=virgl", NULL };
  j = plan_json ("aaos-x86_64", "10.0-x86_64", virgl, &err);
  cr_assert_str_eq (json_string_value (json_object_get (gen_named (j, "properties"), "path")), want);
  found = 0;
  json_array_foreach (json_object_get (json_object_get (j, "qemu"), "argv"), i, a)
    found += strstr (json_string_value (a), drive) != NULL;
  cr_assert_eq (found, 1, "gpu=virgl: no -drive %s", drive);
  cr_assert_str_eq (prop (j, "androidboot.hardware.egl"), "mesa");
  json_decref (j);
  free (drive);

  /* The key there, the disk not: nothing missing about the disk.  */
  char *dir = tu_tmpdir ();
  free (tu_write (dir, "avb_key.pem", "key\n"));
  char *images[] = { "-i", "2", "--images", dir, NULL };
  j = plan_json ("aaos-x86_64", "10.0-x86_64", images, &err);
  cr_assert_null (missing (j, "disks[1].key"));
  cr_assert_null (missing (j, "disks[1].path"));
  json_decref (j);

  /* The disk there, the key not: nothing missing either (the key is only
     needed to rebuild it, which start finds out).  */
  char *disk = tu_write (dir, "props.img", "disk\n"), *set = NULL, *key = NULL;
  cr_assert (asprintf (&set, "disks[1].path=%s", disk) > 0 && asprintf (&key, "disks[1].key=%s/nokey.pem", dir) > 0);
  char *present[] = { "--set", set, "--set", key, NULL };
  j = plan_json ("aaos-x86_64", "10.0-x86_64", present, &err);
  cr_assert_null (missing (j, "disks[1].key"));
  cr_assert_null (missing (j, "disks[1].path"));
  cr_assert_str_eq (json_string_value (json_object_get (gen_named (j, "properties"), "key")) + strlen (dir),
                    "/nokey.pem");
  json_decref (j);

  /* Without the flag a disk is a plain file again.  */
  char *plain[] = { "--set", "disks[1].boot_properties=false", NULL };
  j = plan_json ("aaos-x86_64", "10.0-x86_64", plain, &err);
  cr_assert_null (gen_named (j, "properties"));
  cr_assert_not_null (missing (j, "disks[1].path"));
  cr_assert_null (missing (j, "disks[1].key"));
  json_decref (j);

  /* A profile without any: an empty array.  */
  j = plan_json ("demo", "10.0-x86_64", NULL, &err);
  cr_assert (json_is_array (json_object_get (j, "generated_disks")));
  cr_assert_eq (json_array_size (json_object_get (j, "generated_disks")), 0);
  json_decref (j);

  tu_rmtree (dir);
  free (dir);
  free (disk);
  free (set);
  free (key);
  free (want);
  free (state);
  free (err);
}

Test (plan, generated_disk_errors)
{
  expect_error ("{\"disks\": [{\"name\": \"p\", \"path\": \"/x.img\", \"boot_properties\": true}]}",
                "disks[0].boot_properties: the profile has no boot_properties to generate the disk from", 2, NULL);
  expect_error ("{\"boot_properties\": {}, \"disks\": [{\"name\": \"p\", \"path\": \"/x.img\", "
                "\"boot_properties\": true, \"format\": \"qcow2\"}]}",
                "disks[0].format: a generated properties disk (boot_properties true) is raw, not qcow2", 2, NULL);
  expect_error ("{\"boot_properties\": {}, \"disks\": [{\"name\": \"p\", \"path\": \"/x.img\", "
                "\"boot_properties\": true, \"key\": \"${imgs}/k.pem\"}]}",
                "disks[0].key: unknown variable ${imgs}", 2, NULL);
  expect_error ("{\"disks\": [{\"name\": \"p\", \"path\": \"/x.img\", \"key\": \"\"}]}",
                "disks[0].key: must not be empty", 2, NULL);
}

/* Issue 15: a comma that comes from a variable's value (here the images
   directory, then the runtime directory) would add options to a helper
   that splits its arguments at commas (virtiofsd -o source=...,
   vhost-device-vsock --vm ...,uds-path=...): refused, naming the key.  */
Test (plan, comma_from_a_variable_refused_in_helper_arguments)
{
  char *tmp = tu_tmpdir (), *images = NULL, *out = NULL, *err = NULL;
  cr_assert_geq (asprintf (&images, "%s/a,sandbox=none", tmp), 0);
  cr_assert_eq (mkdir (images, 0700), 0);
  char *args[] = { "start", "-n", "-p", "demo", "--caps", caps ("10.0-x86_64"), "--images", images, NULL };
  cr_assert_eq (tu_avmv (args, &out, &err), 2, "%s", err);
  assert_contains (err, "services.virtiofsd.exec[3]: \"source=${images}/share\" expands to \"source=");
  assert_contains (err, "commas from a variable's value are refused in helper arguments (helpers such as virtiofsd "
                        "split them into options)");
  free (out);
  free (err);
  char *run = NULL, *rundir = NULL;
  cr_assert_geq (asprintf (&run, "%s/run,x=y", tmp), 0);
  cr_assert_geq (asprintf (&rundir, "AVM_RUNTIME_DIR=%s", run), 0);
  char *args2[] = { (char *) tu_avm_bin (),
                    "start",
                    "-n",
                    "-p",
                    "aaos-x86_64",
                    "--caps",
                    caps ("10.0-x86_64"),
                    "-O",
                    "vsock=vhost-user",
                    "--set",
                    "display.backend=none",
                    "--set",
                    (char *) fake_helpers (),
                    NULL };
  char *envv[] = { rundir, NULL };
  cr_assert_eq (tu_run (args2, envv, &out, &err), 2, "%s", err);
  assert_contains (err, "run,x=y/1/");
  assert_contains (err, "commas from a variable's value are refused in helper arguments");
  free (out);
  free (err);
  free (run);
  free (rundir);
  free (images);
  tu_rmtree (tmp);
  free (tmp);
}

/* Issue 15: a VNC server on a unix socket takes no display number (QEMU
   would make ":N" part of the socket's name).  */
Test (plan, vnc_on_a_unix_socket)
{
  char *err = NULL;
  char *unix_sock[] = { "--set", "display.backend=vnc", "--set", "display.vnc.listen=unix:${run_dir}/vnc.sock", NULL };
  json_t *j = plan_json ("demo", "10.0-x86_64", unix_sock, &err);
  json_t *argv = json_object_get (json_object_get (j, "qemu"), "argv");
  char *rd = avm_instance_run_dir (1), *want = NULL;
  cr_assert_geq (asprintf (&want, "unix:%s/vnc.sock", rd), 0);
  size_t i;
  json_t *a;
  bool found = false;
  json_array_foreach (argv, i, a)
    if (!strcmp (json_string_value (a), "-vnc"))
      {
        cr_assert_str_eq (json_string_value (json_array_get (argv, i + 1)), want);
        found = true;
      }
  cr_assert (found);
  json_decref (j);
  char *tcp[] = { "--set", "display.backend=vnc", "-i", "3", NULL };
  j = plan_json ("demo", "10.0-x86_64", tcp, &err);
  argv = json_object_get (json_object_get (j, "qemu"), "argv");
  found = false;
  json_array_foreach (argv, i, a)
    if (!strcmp (json_string_value (a), "-vnc"))
      {
        cr_assert_str_eq (json_string_value (json_array_get (argv, i + 1)), "127.0.0.1:2");
        found = true;
      }
  cr_assert (found);
  json_decref (j);
  free (want);
  free (rd);
  free (err);
}

/* The plan says how the guest is reached (guest: cid, macs, adb, display),
   per instance; avm status shows it (issue 15).  */
Test (plan, guest_endpoints)
{
  char *err = NULL;
  char *i2[] = { "-i", "2", NULL };
  for (int inst = 1; inst <= 2; inst++)
    {
      json_t *j = plan_json ("aaos-x86_64", "10.0-x86_64", inst == 2 ? i2 : NULL, &err);
      json_t *g = json_object_get (j, "guest");
      cr_assert_eq (json_integer_value (json_object_get (g, "cid")), 2 + inst);
      char *mac0 = NULL, *mac1 = NULL, *adb = NULL, *dbus = NULL, *rd = avm_instance_run_dir (inst);
      cr_assert_geq (asprintf (&mac0, "00:1a:11:e0:cf:%02x", inst - 1), 0);
      cr_assert_geq (asprintf (&mac1, "00:1a:11:e1:cf:%02x", inst - 1), 0);
      cr_assert_geq (asprintf (&adb, "127.0.0.1:%d", 6519 + inst), 0);
      cr_assert_geq (asprintf (&dbus, "unix:path=%s/dbus.sock", rd), 0);
      json_t *macs = json_object_get (g, "macs");
      cr_assert_eq (json_array_size (macs), 2);
      cr_assert_str_eq (json_string_value (json_array_get (macs, 0)), mac0);
      cr_assert_str_eq (json_string_value (json_array_get (macs, 1)), mac1);
      cr_assert_str_eq (json_string_value (json_object_get (g, "adb")), adb);
      json_t *d = json_object_get (g, "display");
      cr_assert_str_eq (json_string_value (json_object_get (d, "backend")), "dbus");
      cr_assert_str_eq (json_string_value (json_object_get (d, "address")), dbus);
      json_decref (j);
      free (mac0);
      free (mac1);
      free (adb);
      free (dbus);
      free (rd);
    }
  /* No vsock, no NIC, no adb: null and empty; VNC on TCP: port 5900 + N.  */
  char *vnc[] = { "--set", "display.backend=vnc", "-i", "3", NULL };
  json_t *j = plan_json ("demo", "10.0-x86_64", vnc, &err);
  json_t *g = json_object_get (j, "guest");
  cr_assert (json_is_null (json_object_get (g, "cid")));
  cr_assert_eq (json_array_size (json_object_get (g, "macs")), 0);
  cr_assert (json_is_null (json_object_get (g, "adb")));
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (g, "display"), "address")), "127.0.0.1:5902");
  json_decref (j);
  free (err);
}

/* More memory or vCPUs than this host has: a warning in the plan and in
   avm check, not with --caps (a plan for another QEMU) (issue 15).  */
Test (plan, more_than_the_host_has_is_warned)
{
  char *out = NULL, *err = NULL;
  char *a1[] = { "start",
                 "-n",
                 "--json",
                 "-p",
                 "demo",
                 "--set",
                 "machine.accel=tcg",
                 "--images",
                 (char *) images_dir (),
                 "--set",
                 "machine.memory=1048576M",
                 "--set",
                 "machine.cpus=256",
                 NULL };
  cr_assert_eq (tu_avmv (a1, &out, &err), 0, "%s", err);
  assert_contains (out, "machine.memory: the guest gets 1048576 MiB, more than this host has (");
  assert_contains (out, "machine.cpus: the guest gets 256 vCPUs, more than the ");
  assert_contains (err, "avm: warning: machine.memory: the guest gets 1048576 MiB");
  free (out);
  free (err);
  char *a2[] = { "check",
                 "-p",
                 "demo",
                 "--set",
                 "machine.accel=tcg",
                 "--images",
                 (char *) images_dir (),
                 "--set",
                 "machine.memory=1048576M",
                 NULL };
  tu_avmv (a2, &out, &err);
  assert_contains (out, "warn  host-fit ");
  assert_contains (out, "machine.memory: the guest gets 1048576 MiB");
  free (out);
  free (err);
  /* What fits: nothing said; --caps: not this host's business.  */
  char *a3[] = { "start",
                 "-n",
                 "--json",
                 "-p",
                 "demo",
                 "--set",
                 "machine.accel=tcg",
                 "--images",
                 (char *) images_dir (),
                 "--set",
                 "machine.memory=128M",
                 "--set",
                 "machine.cpus=1",
                 NULL };
  cr_assert_eq (tu_avmv (a3, &out, &err), 0, "%s", err);
  cr_assert_null (strstr (out, "more than"), "%s", out);
  free (out);
  free (err);
  char *a4[] = { "start",
                 "-n",
                 "--json",
                 "-p",
                 "demo",
                 "--set",
                 "machine.accel=tcg",
                 "--images",
                 (char *) images_dir (),
                 "--set",
                 "machine.memory=1048576M",
                 "--caps",
                 caps ("10.0-x86_64"),
                 NULL };
  cr_assert_eq (tu_avmv (a4, &out, &err), 0, "%s", err);
  cr_assert_null (strstr (out, "more than this host has"), "%s", out);
  free (out);
  free (err);
}

/* Issue 15: `avm start -p demo` from the installed tree and from the source
   tree.  paths.images lists both places; the first that exists is used,
   and when none exists that is said once, with the profile's hint, exit
   status 2.  */
static int
demo_in (const char *data_dir, const char *extra, char **out, char **err)
{
  char *dd = NULL, *cache = NULL, *conf = NULL, *prof = NULL;
  cr_assert_geq (asprintf (&dd, "AVM_DATA_DIR=%s", data_dir), 0);
  cr_assert_geq (asprintf (&cache, "XDG_CACHE_HOME=%s/cache", data_dir), 0);
  cr_assert_geq (asprintf (&conf, "XDG_CONFIG_HOME=%s/config", data_dir), 0);
  cr_assert_geq (asprintf (&prof, "%s/profiles/demo.json", tu_srcdir ()), 0);
  char *rt = NULL;
  /* (Should a plan pass, what starts stays in the test's directory.)  */
  cr_assert_geq (asprintf (&rt, "AVM_RUNTIME_DIR=%s/run", data_dir), 0);
  char *env[] = { dd, cache, conf, rt, "AVM_PROFILE", NULL };
  char *argv[] = { (char *) tu_avm_bin (),
                   "start",
                   "-p",
                   prof,
                   "--caps",
                   caps ("10.0-x86_64"),
                   "--set",
                   "machine.accel=tcg",
                   "--set",
                   "qemu.binary=/usr/bin/qemu-system-x86_64",
                   (char *) extra,
                   NULL };
  int r = tu_run (argv, env, out, err);
  free (rt);
  free (dd);
  free (cache);
  free (conf);
  free (prof);
  return r;
}

Test (plan, demo_images_found_in_the_installed_or_the_source_tree)
{
  char *dir = tu_tmpdir (), *out = NULL, *err = NULL;
  /* Neither: one line, the hint, exit 2; nothing about each file.  */
  int r = demo_in (dir, NULL, &out, &err);
  cr_assert_eq (r, 2, "exit %d: %s", r, err);
  cr_assert_eq (strchr (err, '\n'), err + strlen (err) - 1, "not one line: %s", err);
  assert_contains (err, "images directories ");
  assert_contains (err, "/demo, ");
  assert_contains (err, "/build/demo do not exist (paths.images): build them with `make demo-image` in the avm "
                        "source tree");
  assert_contains (err, "or pass --images DIR");
  cr_assert_null (strstr (err, "vmlinuz"), "%s", err);
  free (out);
  free (err);
  /* In a dry run, a warning, said once.  */
  r = demo_in (dir, "--dry-run", &out, &err);
  cr_assert_eq (r, 0, "%s", err);
  cr_assert_null (strstr (err, "vmlinuz"), "%s", err);
  const char *said = strstr (err, "images directories");
  cr_assert (said && !strstr (said + 1, "images directories"), "not said once: %s", err);
  free (out);
  free (err);

  /* The source tree's build/demo.  */
  char *build = NULL, *inst = NULL;
  cr_assert_geq (asprintf (&build, "%s/build/demo", dir), 0);
  cr_assert_geq (asprintf (&inst, "%s/demo", dir), 0);
  char *parent = NULL;
  cr_assert_geq (asprintf (&parent, "%s/build", dir), 0);
  cr_assert_eq (mkdir (parent, 0755), 0);
  free (parent);
  const char *names[] = { "vmlinuz", "initramfs.cpio.gz" };
  for (size_t i = 0; i < 2; i++)
    {
      free (tu_write (build, names[i], "x"));
      free (tu_write (inst, names[i], "x"));
    }
  char *kernel = NULL;
  cr_assert_geq (asprintf (&kernel, "-kernel %s/vmlinuz", inst), 0);
  /* Both: the installed one first.  */
  r = demo_in (dir, "--dry-run", &out, &err);
  cr_assert_eq (r, 0, "%s", err);
  assert_contains (out, kernel);
  cr_assert_null (strstr (err, "does not exist"), "%s", err);
  free (out);
  free (err);
  free (kernel);
  /* Only the source tree's.  */
  tu_rmtree (inst);
  cr_assert_geq (asprintf (&kernel, "-kernel %s/vmlinuz", build), 0);
  r = demo_in (dir, "--dry-run", &out, &err);
  cr_assert_eq (r, 0, "%s", err);
  assert_contains (out, kernel);
  free (out);
  free (err);

  /* --images that does not exist: said as such, no hint of the profile's.  */
  char *missing = NULL;
  cr_assert_geq (asprintf (&missing, "--images=%s/nowhere", dir), 0);
  r = demo_in (dir, missing, &out, &err);
  cr_assert_eq (r, 2, "exit %d: %s", r, err);
  assert_contains (err, "/nowhere does not exist (--images)\n");
  cr_assert_null (strstr (err, "make demo-image"), "%s", err);
  free (out);
  free (err);
  free (missing);
  free (kernel);
  free (build);
  free (inst);
  tu_rmtree (dir);
  free (dir);
}

/* A file missing in an images directory that exists is bad input too
   (exit 2), named with its key.  */
Test (plan, missing_image_file_exit_2)
{
  char *dir = tu_tmpdir (), *out = NULL, *err = NULL;
  char *build = NULL;
  cr_assert_geq (asprintf (&build, "%s/build", dir), 0);
  cr_assert_eq (mkdir (build, 0755), 0);
  free (build);
  cr_assert_geq (asprintf (&build, "%s/build/demo", dir), 0);
  free (tu_write (build, "vmlinuz", "x"));
  int r = demo_in (dir, NULL, &out, &err);
  cr_assert_eq (r, 2, "exit %d: %s", r, err);
  assert_contains (err, "firmware.initrd ");
  assert_contains (err, "/build/demo/initramfs.cpio.gz: No such file or directory");
  free (out);
  free (err);
  free (build);
  tu_rmtree (dir);
  free (dir);
}

/* Bad input exits 2 (issue 15): a directory where a file is named, an
   images "directory" that is a file, a --caps file that is not there; a
   dry run lists a file behind a symbolic-link loop instead of failing on
   its image set.  */
Test (plan, bad_files_exit_2)
{
  char *dir = tu_tmpdir (), *out = NULL, *err = NULL, *p = NULL;
  cr_assert_geq (asprintf (&p, "%s/build", dir), 0);
  cr_assert_eq (mkdir (p, 0755), 0);
  free (p);
  cr_assert_geq (asprintf (&p, "%s/build/demo", dir), 0);
  free (tu_write (p, "initramfs.cpio.gz", "x"));
  free (p);
  cr_assert_geq (asprintf (&p, "%s/build/demo/vmlinuz", dir), 0);
  cr_assert_eq (mkdir (p, 0755), 0);
  int r = demo_in (dir, NULL, &out, &err);
  cr_assert_eq (r, 2, "exit %d: %s", r, err);
  assert_contains (err, "firmware.kernel ");
  assert_contains (err, "/build/demo/vmlinuz: Is a directory");
  free (out);
  free (err);

  char *a1[] = { "start", "-n", "-p", "demo", "--caps", "/nonexistent/caps.json", NULL };
  cr_assert_eq (tu_avmv (a1, &out, &err), 2, "%s", err);
  assert_contains (err, "avm: QEMU capabilities file /nonexistent/caps.json: No such file or directory");
  free (out);
  free (err);
  char *a2[] = { "check", "-p", "demo", "--caps", "/nonexistent/caps.json", NULL };
  cr_assert_eq (tu_avmv (a2, &out, &err), 2, "%s", err);
  assert_contains (err, "avm: QEMU capabilities file /nonexistent/caps.json: No such file or directory");
  free (out);
  free (err);

  char *a3[] = { "start",    "-p",          "demo", "--caps", caps ("10.0-x86_64"), "--set", "machine.accel=tcg",
                 "--images", "/etc/passwd", NULL };
  cr_assert_eq (tu_avmv (a3, &out, &err), 2, "%s", err);
  assert_contains (err, "avm: images directory /etc/passwd is not a directory (--images)");
  free (out);
  free (err);

  char *loop = NULL;
  cr_assert_geq (asprintf (&loop, "%s/loop", dir), 0);
  cr_assert_eq (symlink (loop, loop), 0);
  char *a4[] = { "start",    "-n", "-p", "demo", "--caps", caps ("10.0-x86_64"), "--set", "machine.accel=tcg",
                 "--images", loop, NULL };
  cr_assert_eq (tu_avmv (a4, &out, &err), 0, "%s", err);
  assert_contains (err, "/loop/vmlinuz: Too many levels of symbolic links");
  free (out);
  free (err);
  free (loop);
  free (p);
  tu_rmtree (dir);
  free (dir);
}

/* "/tmp/xxx...": an absolute path of exactly LEN bytes ending in NAME.  */
static char *
path_of_length (size_t len, const char *name)
{
  char *p = malloc (len + 1);
  cr_assert_not_null (p);
  size_t nl = strlen (name);
  cr_assert_gt (len, nl + 5);
  memcpy (p, "/tmp/", 5);
  memset (p + 5, 'x', len - 5 - nl - 1);
  p[len - nl - 1] = '/';
  memcpy (p + len - nl, name, nl + 1);
  cr_assert_eq (strlen (p), len);
  return p;
}

/* Unix socket paths longer than sun_path (107 bytes) are refused when the
   plan is made, naming the key and the path, instead of failing once
   something tries to bind them (issue 15).  */
Test (plan, socket_paths_longer_than_sun_path)
{
  char *ok = path_of_length (107, "s.sock"), *bad = path_of_length (108, "s.sock"), *svc = NULL, *res = NULL,
       *port = NULL, *set = NULL, *want = NULL;
  /* A service's socket: 107 bytes fit, 108 do not.  */
  cr_assert_geq (asprintf (&svc, "{\"services\": {\"h\": {\"exec\": [\"/bin/true\"], \"socket\": \"%s\"}}}", ok), 0);
  const char *unapproved[] = { "--allow-unapproved", NULL };
  expect_error (svc, "", 0, unapproved);
  free (svc);
  cr_assert_geq (asprintf (&svc, "{\"services\": {\"h\": {\"exec\": [\"/bin/true\"], \"socket\": \"%s\"}}}", bad), 0);
  cr_assert_geq (asprintf (&want,
                           "services.h.socket: socket path %s is 108 bytes, more than the 107 a unix socket "
                           "path can have; use a shorter path",
                           bad),
                 0);
  expect_error (svc, want, 2, NULL);
  free (want);
  /* A listening resource, a console port of kind socket, VNC.  */
  cr_assert_geq (asprintf (&res,
                           "{\"resources\": {\"l\": {\"type\": \"unix-listen\", \"path\": \"%s\"}},"
                           " \"services\": {\"h\": {\"exec\": [\"/bin/true\", \"${fd:l}\"]}}}",
                           bad),
                 0);
  expect_error (res, "resources.l.path: socket path /tmp/x", 2, NULL);
  cr_assert_geq (asprintf (&port,
                           "{\"consoles\": {\"ports\": [{\"name\": \"c\", \"kind\": \"socket\", \"path\":"
                           " \"%s\"}]}}",
                           bad),
                 0);
  expect_error (port, "consoles.ports[0].path: socket path /tmp/x", 2, NULL);
  cr_assert_geq (asprintf (&set, "display.vnc.listen=unix:%s", bad), 0);
  const char *vnc[] = { "--set", "display.backend=vnc", "--set", set, NULL };
  cr_assert_geq (asprintf (&want, "avm: --set %s: display.vnc.listen: socket path %s is 108 bytes", set, bad), 0);
  expect_error ("{}", want, 2, vnc);
  free (want);
  /* A service with readiness notify: its socket in the runtime directory.  */
  const char *name = "a_service_name_long_enough_to_overflow_with_a_long_runtime_dir";
  char *rt = path_of_length (107 - strlen ("/1/notify-.sock") - strlen (name) + 1, "r");
  cr_assert_eq (setenv ("AVM_RUNTIME_DIR", rt, 1), 0);
  char *notify = NULL;
  cr_assert_geq (asprintf (&notify, "{\"services\": {\"%s\": {\"exec\": [\"/bin/true\"], \"ready\": \"notify\"}}}",
                           name),
                 0);
  cr_assert_geq (asprintf (&want, "services.%s.ready: socket path %s/1/notify-%s.sock is 108 bytes", name, rt, name),
                 0);
  expect_error (notify, want, 2, NULL);
  free (want);
  free (rt);
  /* The runtime directory: control.sock and qmp.sock, whatever the profile.  */
  rt = path_of_length (107 - strlen ("/1/control.sock") + 1, "r");
  cr_assert_eq (setenv ("AVM_RUNTIME_DIR", rt, 1), 0);
  cr_assert_geq (asprintf (&want,
                           "avm: runtime directory %s/1: socket path %s/1/control.sock is 108 bytes, more than "
                           "the 107 a unix socket path can have; set AVM_RUNTIME_DIR to a shorter directory",
                           rt, rt),
                 0);
  expect_error ("{}", want, 2, NULL);
  free (want);
  free (rt);
  free (notify);
  free (set);
  free (port);
  free (res);
  free (svc);
  free (ok);
  free (bad);
}

/* Debian 12's virtiofsd runs only as root (services.*.requires_root): as
   another user a critical one refuses the start, saying what to do; the
   demo's (not critical) is skipped and its share left out.  The tests
   run avm as nobody when they run as root.  */
static int
demo_as_user (bool dry_run, const char *extra, char **out, char **err)
{
  char *prof = NULL, *images = NULL;
  cr_assert_geq (asprintf (&prof, "%s/profiles/demo.json", tu_srcdir ()), 0);
  cr_assert_geq (asprintf (&images, "--images=%s", images_dir ()), 0);
  char *argv[24];
  size_t n = 0;
  if (geteuid () == 0)
    {
      argv[n++] = "setpriv";
      argv[n++] = "--reuid=65534";
      argv[n++] = "--regid=65534";
      argv[n++] = "--clear-groups";
    }
  const char *rest[] = { tu_avm_bin (),
                         "start",
                         dry_run ? "--dry-run" : "--verbose",
                         "-p",
                         prof,
                         images,
                         "--caps",
                         caps ("10.0-x86_64"),
                         "--set",
                         "machine.accel=tcg",
                         "--set",
                         "qemu.binary=/usr/bin/qemu-system-x86_64",
                         extra };
  for (size_t i = 0; i < sizeof rest / sizeof rest[0] && rest[i]; i++)
    argv[n++] = (char *) rest[i];
  argv[n] = NULL;
  /* Private directories the user may write to (nothing is created in a dry run).  */
  char *env[] = { "XDG_CACHE_HOME=/nonexistent", "XDG_CONFIG_HOME=/nonexistent", "AVM_PROFILE", NULL };
  int r = tu_run (argv, env, out, err);
  free (prof);
  free (images);
  return r;
}

Test (plan, requires_root_service_skipped_or_refused)
{
  char *out = NULL, *err = NULL;
  int r = demo_as_user (true, "--json", &out, &err);
  cr_assert_eq (r, 0, "exit %d: %s", r, err);
  assert_contains (err, "service virtiofsd skipped: virtiofsd runs only as root (requires_root), avm runs as uid");
  assert_contains (err, "share demo left out: its service virtiofsd is skipped");
  json_t *j = json_loads (out, 0, NULL);
  cr_assert_not_null (j, "%s", out);
  cr_assert_null (json_object_get (json_object_get (j, "services"), "virtiofsd"), "%s", out);
  json_t *sk = json_array_get (json_object_get (j, "skipped_services"), 0);
  cr_assert_str_eq (json_string_value (json_object_get (sk, "name")), "virtiofsd");
  char *text = json_dumps (json_object_get (json_object_get (j, "qemu"), "argv"), 0);
  cr_assert_null (strstr (text, "vhost-user-fs"), "%s", text);
  cr_assert_null (strstr (text, "share=on"), "no share, no shared memory: %s", text);
  free (text);
  json_decref (j);
  free (out);
  free (err);

  /* Critical: refused in a real start (exit 1), a warning in a dry run.  */
  for (int dry = 0; dry < 2; dry++)
    {
      r = demo_as_user (dry, "--set=services.virtiofsd.critical=true", &out, &err);
      cr_assert_eq (r, dry ? 0 : 1, "exit %d: %s", r, err);
      assert_contains (err, "services.virtiofsd: virtiofsd runs only as root (requires_root) and avm runs as uid ");
      assert_contains (err, ": run avm as root, or set services.virtiofsd.critical to false to start without it");
      if (!dry)
        cr_assert_null (strstr (err, "started"), "%s", err);
      free (out);
      free (err);
    }
}

/* x86 firmware in flash (firmware.pflash), as launch_cvd loads it from
   Android 15: the releases before keep -bios, arm64 always does.  */
Test (plan, x86_pflash_by_release)
{
  static const struct
  {
    const char *profile, *caps, *release;
    bool pflash;
  } cases[] = {
    { "aaos-x86_64", "10.0-x86_64", "release=android14", false },
    { "aaos-x86_64", "10.0-x86_64", "release=android14-qpr2", false },
    { "aaos-x86_64", "10.0-x86_64", "release=android15", true },
    { "aaos-x86_64", "10.0-x86_64", "release=android15-qpr2", true },
    { "aaos-x86_64", "10.0-x86_64", "release=android16", true },
    { "phone-x86_64", "10.0-x86_64", "release=android16", true },
    { "aaos-arm64", "10.0-aarch64", "release=android16", false },
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
    {
      char *err = NULL;
      char *arm[] = { "-O", (char *) cases[k].release, "--set", "qemu.binary=/usr/bin/qemu-system-aarch64", NULL };
      char *x86[] = { "-O", (char *) cases[k].release, NULL };
      json_t *j = plan_json (cases[k].profile, cases[k].caps, strstr (cases[k].caps, "aarch64") ? arm : x86, &err);
      char *argv = json_dumps (json_object_get (json_object_get (j, "qemu"), "argv"), 0);
      char *vars = avm_instance_state_dir (1), *want = NULL;
      cr_assert_geq (asprintf (&want, "\"if=pflash,format=raw,unit=1,file=%s/pflash.img\"", vars), 0);
      if (cases[k].pflash)
        {
          assert_contains (argv, "\"-drive\", \"if=pflash,format=raw,unit=0,readonly=on,file=/images/bootloader\"");
          assert_contains (argv, want);
          cr_assert_null (strstr (argv, "\"-bios\""), "%s %s: %s", cases[k].profile, cases[k].release, argv);
          json_t *g = gen_named (j, "pflash");
          cr_assert_not_null (g);
          cr_assert_str_eq (json_string_value (json_object_get (g, "kind")), "flash");
          cr_assert_eq (json_integer_value (json_object_get (g, "pad_to")), 4 << 20);
        }
      else
        {
          assert_contains (argv, "\"-bios\", \"/images/bootloader\"");
          cr_assert_null (strstr (argv, "pflash"), "%s %s: %s", cases[k].profile, cases[k].release, argv);
          cr_assert_null (gen_named (j, "pflash"));
        }
      free (want);
      free (vars);
      free (argv);
      json_decref (j);
      free (err);
    }
}

Test (plan, x86_pflash_refusals)
{
  char *out = NULL, *err = NULL;
  int r = tu_avm (&out, &err, "start", "-n", "--caps", caps ("10.0-aarch64"), "--images", "/images", "-p", "aaos-arm64",
                  "--set", "machine.accel=tcg", "--set", "firmware.pflash=true", NULL);
  cr_assert_eq (r, 2, "%s", err);
  assert_contains (err, "firmware.pflash: x86 machines only (aarch64 boots its firmware with -bios");
  free (out);
  free (err);
  r = tu_avm (&out, &err, "start", "-n", "--caps", caps ("10.0-x86_64"), "--images", "/images", "-p", "demo", "--set",
              "machine.accel=tcg", "--set", "firmware.pflash=true", NULL);
  cr_assert_eq (r, 2, "%s", err);
  assert_contains (err, "firmware.pflash: there is no firmware.bios to put in flash");
  free (out);
  free (err);
  /* QEMU wants whole 4 KiB sectors, below 4 MiB for the pair.  */
  char *dir = tu_tmpdir ();
  free (tu_write (dir, "bootloader", "not a multiple of 4096 bytes"));
  r = tu_avm (&out, &err, "start", "-n", "--caps", caps ("10.0-x86_64"), "--images", dir, "-p", "aaos-x86_64", "--set",
              "machine.accel=tcg", "-O", "release=android16", NULL);
  cr_assert_eq (r, 2, "%s", err);
  assert_contains (err,
                   "/bootloader is 28 bytes: in flash (firmware.pflash) it must be a whole number of 4 KiB sectors");
  free (out);
  free (err);
  tu_rmtree (dir);
  free (dir);
}

/* plan->snapshot_blockers ("snapshot" in the JSON plan): BLOCKERS of
   PLAN as one string, "; " between them.  */
static char *
snapshot_blockers (json_t *plan)
{
  json_t *snap = json_object_get (plan, "snapshot");
  json_t *b = json_object_get (snap, "blockers");
  cr_assert (json_is_array (b), "the plan has no snapshot.blockers");
  cr_assert_eq (json_is_true (json_object_get (snap, "possible")), json_array_size (b) == 0);
  char *s = strdup ("");
  size_t i;
  json_t *e;
  json_array_foreach (b, i, e)
    {
      char *n = NULL;
      cr_assert_geq (asprintf (&n, "%s%s%s", s, i ? "; " : "", json_string_value (e)), 0);
      free (s);
      s = n;
    }
  return s;
}

Test (plan, snapshot_blockers_of_the_demo)
{
  /* The demo's share (virtiofsd runs only as root: as root, whoever runs
     the tests).  */
  const char *root = geteuid () ? "services.virtiofsd.requires_root=false" : "machine.cpus=2";
  char *err = NULL;
  char *const base[] = { "--set", (char *) root, NULL };
  json_t *j = plan_json ("demo", "7.2-x86_64", base, &err);
  char *b = snapshot_blockers (j);
  cr_assert_str_eq (b, "shares[0]: vhost-user-fs-pci (virtiofs (vhost-user-fs)): QEMU does not migrate its state (it "
                       "lives in virtiofsd)");
  free (b);
  json_decref (j);

  char *const off[] = { "--set", (char *) root, "-O", "share=off", NULL };
  j = plan_json ("demo", "7.2-x86_64", off, &err);
  b = snapshot_blockers (j);
  cr_assert_str_eq (b, "");
  cr_assert (json_is_true (json_object_get (json_object_get (j, "snapshot"), "possible")));
  free (b);
  json_decref (j);

  /* (QEMU 7.2 has vhost-user-gpu only with KVM: 10.0.)  */
  char *const gpu[] = { "--set", (char *) root, "-O", "gpu=vhost-user", NULL };
  j = plan_json ("demo", "10.0-x86_64", gpu, &err);
  b = snapshot_blockers (j);
  cr_assert_str_eq (b, "display.gpu: vhost-user-gpu-pci (vhost-user GPU): QEMU does not migrate its state (it lives in "
                       "the GPU back-end); shares[0]: vhost-user-fs-pci (virtiofs (vhost-user-fs)): QEMU does not "
                       "migrate its state (it lives in virtiofsd)");
  free (b);
  json_decref (j);

  char *const gl[] = { "--set", (char *) root,     "-O", "share=off", "--set", "display.gpu=virtio-gpu-gl",
                       "--set", "display.gl=true", NULL };
  j = plan_json ("demo", "10.0-x86_64", gl, &err);
  b = snapshot_blockers (j);
  cr_assert_str_eq (b, "display.gpu: virtio-gpu-gl-pci (virtio GPU with virgl): virgl is not yet migratable (the GPU "
                       "state is the host driver's)");
  free (b);
  json_decref (j);
  free (err);
}

/* No AAOS helper but secure_env on Android 14 (QPR1) blocks a snapshot
   (services.*.snapshot).  Stateless as in Cuttlefish: its run_cvd
   suspends modem_simulator, root-canal, vhal_proxy_server and
   sensors_simulator only with SIGTSTP (process_monitor.cc
   SuspendResumeImpl) and starts them anew on a restore.  */
static void
assert_aaos_helpers_stateless (const char *b)
{
  for (const char *const *s
       = (const char *const[]) { "kernel_log_monitor", "logcat_receiver", "adb_connector", "socket_vsock_proxy",
                                 "tcp_connector", "gnss_grpc_proxy", "modem_simulator", "root-canal",
                                 "vhal_proxy_server", "sensors_simulator", NULL };
       *s; s++)
    {
      char want[128];
      snprintf (want, sizeof want, "services.%s:", *s);
      cr_assert_null (strstr (b, want), "%s is stateless: %s", *s, b);
    }
}

Test (plan, snapshot_blockers_of_aaos_follow_cuttlefish)
{
  char *err = NULL;
  json_t *j = plan_json ("aaos-x86_64", "7.2-x86_64", NULL, &err);
  char *b = snapshot_blockers (j);
  /* secure_env suspends over its snapshot control (android14-qpr2 on):
     no blocker; its state files and the framing are planned.  */
  cr_assert_null (strstr (b, "services.secure_env"), "%s", b);
  assert_aaos_helpers_stateless (b);
  cr_assert_str_eq (b, "");

  size_t i;
  json_t *e, *snap = NULL;
  json_array_foreach (json_object_get (j, "services"), i, e)
    if (!strcmp (json_string_value (json_object_get (e, "name")), "secure_env"))
      snap = json_object_get (e, "snapshot");
  cr_assert_not_null (snap);
  cr_assert_str_eq (json_string_value (json_object_get (snap, "mode")), "suspend");
  cr_assert_str_eq (json_string_value (json_object_get (snap, "control")), "secure_env_snapshot");
  cr_assert_str_eq (json_string_value (json_object_get (snap, "format")), "launcher-action");
  json_t *files = json_object_get (snap, "files");
  cr_assert_eq (json_array_size (files), 6);
  const char *nv = json_string_value (json_array_get (files, 0));
  cr_assert (nv && strstr (nv, "/cuttlefish/instances/cvd-1/NVChip"), "%s", nv ? nv : "?");
  free (b);
  json_decref (j);

  /* android14 (QPR1): secure_env has no snapshot control: refused.  */
  char *const a14[] = { "-O", "release=android14", NULL };
  j = plan_json ("aaos-x86_64", "7.2-x86_64", a14, &err);
  b = snapshot_blockers (j);
  assert_contains (b, "services.secure_env: holds guest state (snapshot: refuse)");
  assert_aaos_helpers_stateless (b);
  free (b);
  json_decref (j);
  /* android14-qpr2: the typed framing.  */
  char *const a14q2[] = { "-O", "release=android14-qpr2", NULL };
  j = plan_json ("aaos-x86_64", "7.2-x86_64", a14q2, &err);
  b = snapshot_blockers (j);
  cr_assert_null (strstr (b, "services.secure_env"), "%s", b);
  json_array_foreach (json_object_get (j, "services"), i, e)
    if (!strcmp (json_string_value (json_object_get (e, "name")), "secure_env"))
      cr_assert_str_eq (json_string_value (json_object_get (json_object_get (e, "snapshot"), "format")),
                        "launcher-action-typed");

  char *const a16[] = { "-O", "release=android16", NULL };
  free (b);
  json_decref (j);
  j = plan_json ("aaos-x86_64", "7.2-x86_64", a16, &err);
  b = snapshot_blockers (j);
  assert_aaos_helpers_stateless (b);
  cr_assert_str_eq (b, "");
  /* Planned, with no snapshot control (stateless).  */
  int helpers = 0;
  json_array_foreach (json_object_get (j, "services"), i, e)
    if (!strcmp (json_string_value (json_object_get (e, "name")), "vhal_proxy_server")
        || !strcmp (json_string_value (json_object_get (e, "name")), "sensors_simulator"))
      {
        helpers++;
        cr_assert_null (json_object_get (e, "snapshot"));
      }
  cr_assert_eq (helpers, 2);
  free (b);
  json_decref (j);

  /* virgl: QEMU's migration blocker.  */
  char *const virgl[] = { "-O", "gpu=virgl", NULL };
  j = plan_json ("aaos-x86_64", "10.0-x86_64", virgl, &err);
  b = snapshot_blockers (j);
  assert_contains (b, "display.gpu: vhost-user-gpu-pci (vhost-user GPU): QEMU does not migrate its state");
  free (b);
  json_decref (j);
  free (err);
}

Test (plan, snapshot_key_of_a_service)
{
  expect_error ("{\"services\": {\"fake\": {\"exec\": [\"/bin/sleep\", \"100\"], \"snapshot\": \"sometimes\"}}}",
                "services.fake.snapshot: expected one of stateless, refuse, suspend, got \"sometimes\"", 2, NULL);
  /* "suspend": a socketpair to ask it over, state files with distinct
     absolute names; those keys only with it.  */
  expect_error ("{\"services\": {\"fake\": {\"exec\": [\"/bin/sleep\", \"100\"], \"snapshot\": \"suspend\"}}}",
                "services.fake.snapshot: \"suspend\" needs services.fake.snapshot_control (a socketpair resource)", 2,
                NULL);
  expect_error ("{\"resources\": {\"p\": {\"type\": \"pipe\"}}, \"services\": {\"fake\": {\"exec\": [\"/bin/sleep\","
                " \"100\"], \"snapshot\": \"suspend\", \"snapshot_control\": \"p\"}}}",
                "services.fake.snapshot_control: \"p\" is not a socketpair resource", 2, NULL);
  expect_error ("{\"services\": {\"fake\": {\"exec\": [\"/bin/sleep\", \"100\"], \"snapshot\": \"suspend\","
                " \"snapshot_control\": \"nope\"}}}",
                "services.fake.snapshot_control: \"nope\" is no resource", 2, NULL);
  expect_error ("{\"resources\": {\"c\": {\"type\": \"socketpair\"}}, \"services\": {\"fake\": {\"exec\": "
                "[\"/bin/sleep\", \"100\"], \"snapshot\": \"suspend\", \"snapshot_control\": \"c\", \"snapshot_files\":"
                " [\"/a/state\", \"/b/state\"]}}}",
                "services.fake.snapshot_files[1]: \"/b/state\" has the base name of /a/state", 2, NULL);
  expect_error ("{\"resources\": {\"c\": {\"type\": \"socketpair\"}}, \"services\": {\"fake\": {\"exec\": "
                "[\"/bin/sleep\", \"100\"], \"snapshot\": \"suspend\", \"snapshot_control\": \"c\", \"snapshot_files\":"
                " [\"state\"]}}}",
                "services.fake.snapshot_files[0]: \"state\" is not an absolute file path", 2, NULL);
  expect_error ("{\"resources\": {\"c\": {\"type\": \"socketpair\"}}, \"services\": {\"fake\": {\"exec\": "
                "[\"/bin/sleep\", \"100\"], \"snapshot\": \"refuse\", \"snapshot_control\": \"c\"}}}",
                "services.fake.snapshot_control: only for \"snapshot\": \"suspend\"", 2, NULL);
  expect_error ("{\"services\": {\"fake\": {\"exec\": [\"/bin/sleep\", \"100\"], \"snapshot\": \"refuse\","
                " \"snapshot_files\": [\"/a/state\"]}}}",
                "services.fake.snapshot_files: not for \"snapshot\": \"refuse\"", 2, NULL);
  char *dir = tu_tmpdir ();
  char *path = tu_write (dir, "s.json",
                         "{\"services\": {\"fake\": {\"exec\": [\"/bin/sleep\", \"100\"], \"snapshot\": \"refuse\"},"
                         " \"other\": {\"exec\": [\"/bin/sleep\", \"100\"]}}}");
  char *out = NULL, *err = NULL;
  int r = tu_avm (&out, &err, "start", "-n", "--json", "--caps", caps ("7.2-x86_64"), "--set", "machine.accel=tcg",
                  "-p", path, "--allow-unapproved", NULL);
  cr_assert_eq (r, 0, "%s", err);
  json_t *j = json_loads (out, 0, NULL);
  cr_assert_not_null (j);
  char *b = snapshot_blockers (j);
  cr_assert_str_eq (b, "services.fake: holds guest state (snapshot: refuse)");
  free (b);
  json_decref (j);
  free (out);
  free (err);

  /* avm check: one item, a warning (the platform runs), text and JSON.  */
  r = tu_avm (&out, &err, "check", "--caps", caps ("7.2-x86_64"), "--set", "machine.accel=tcg", "-p", path,
              "--allow-unapproved", NULL);
  assert_contains (out, "\nwarn  snapshots ");
  assert_contains (out, " not possible: services.fake: holds guest state (snapshot: refuse)\n");
  free (out);
  free (err);
  r = tu_avm (&out, &err, "check", "--json", "--caps", caps ("7.2-x86_64"), "--set", "machine.accel=tcg", "-p", path,
              "--allow-unapproved", "--set", "services.fake.snapshot=stateless", NULL);
  j = json_loads (out, 0, NULL);
  cr_assert_not_null (j, "%s", out);
  size_t i, found = 0;
  json_t *e;
  json_array_foreach (json_object_get (j, "checks"), i, e)
    if (strcmp (json_string_value (json_object_get (e, "name")), "snapshots") == 0)
      {
        found++;
        cr_assert_str_eq (json_string_value (json_object_get (e, "status")), "ok");
        cr_assert_str_eq (json_string_value (json_object_get (e, "detail")),
                          "possible (RAM, devices and disks can be saved)");
      }
  cr_assert_eq (found, 1, "%s", out);
  json_decref (j);
  free (out);
  free (err);
  r = tu_avm (&out, &err, "check", "--json", "--caps", caps ("7.2-x86_64"), "--set", "machine.accel=tcg", "-p", "demo",
              NULL);
  (void) r;
  j = json_loads (out, 0, NULL);
  cr_assert_not_null (j, "%s", out);
  found = 0;
  json_array_foreach (json_object_get (j, "checks"), i, e)
    if (strcmp (json_string_value (json_object_get (e, "name")), "snapshots") == 0)
      {
        found++;
        cr_assert_str_eq (json_string_value (json_object_get (e, "status")), "warn");
        assert_contains (json_string_value (json_object_get (e, "detail")), "not possible: ");
      }
  cr_assert_eq (found, 1, "%s", out);
  json_decref (j);
  free (out);
  free (err);
  free (path);
  tu_rmtree (dir);
  free (dir);
}

/* snapshot.clock: the guest agent's port (a virtserialport on a socket QEMU
   listens on, one only) and the service that sets the clock (defined,
   stateless; disabled: a warning).  */
Test (plan, snapshot_clock)
{
  expect_error ("{\"snapshot\": {\"clock\": \"guest-agent\"}}",
                "snapshot.clock: guest-agent needs a console port of kind agent", 2, NULL);
  expect_error ("{\"consoles\": {\"ports\": [{\"name\": \"a\", \"kind\": \"agent\"}, {\"name\": \"b\", \"kind\": "
                "\"agent\"}]}}",
                "consoles.ports[1].kind: a second port of kind agent (one guest agent)", 2, NULL);
  expect_error ("{\"consoles\": {\"ports\": [{\"name\": \".hidden\", \"kind\": \"agent\"}]}}",
                "consoles.ports[0].name: expected a name of letters, digits, '_', '-' and '.' (not first; at most "
                "63), got \".hidden\"",
                2, NULL);
  expect_error ("{\"snapshot\": {\"clock\": \"service\"}}",
                "snapshot.clock_service: required with snapshot.clock service", 2, NULL);
  expect_error ("{\"snapshot\": {\"clock\": \"service\", \"clock_service\": \"ntp\"}}",
                "snapshot.clock_service: no service ntp (services)", 2, NULL);
  expect_error ("{\"resources\": {\"c\": {\"type\": \"socketpair\"}}, \"services\": {\"t\": {\"exec\": "
                "[\"/bin/sleep\", \"100\"], \"snapshot\": \"suspend\", \"snapshot_control\": \"c\"}},"
                " \"snapshot\": {\"clock\": \"service\", \"clock_service\": \"t\"}}",
                "snapshot.clock_service: service t is not started anew by a restore", 2,
                (const char *const[]) { "--allow-unapproved", NULL });
  expect_error ("{\"services\": {\"t\": {\"exec\": [\"/bin/sleep\", \"100\"], \"enabled\": false}},"
                " \"snapshot\": {\"clock\": \"service\", \"clock_service\": \"t\"}}",
                "warning: snapshot.clock_service: service t is disabled: a restored guest's clock goes on from the "
                "snapshot",
                0, (const char *const[]) { "--allow-unapproved", NULL });

  /* The demo: the agent's port and socket; the JSON plan says how.  */
  char *err = NULL;
  char *const off[] = { "-O", "share=off", NULL };
  json_t *j = plan_json ("demo", "7.2-x86_64", off, &err);
  json_t *snap = json_object_get (j, "snapshot");
  cr_assert_str_eq (json_string_value (json_object_get (snap, "clock")), "guest-agent");
  const char *sock = json_string_value (json_object_get (snap, "agent_socket"));
  cr_assert (sock && strstr (sock, "/1/agent.sock"), "%s", sock ? sock : "(none)");
  char *argv = json_dumps (json_object_get (json_object_get (j, "qemu"), "argv"), 0);
  assert_contains (argv, ",name=org.qemu.guest_agent.0\"");
  assert_contains (argv, "\"virtserialport,bus=virtio-serial.0,chardev=hvc2,");
  free (argv);
  json_decref (j);
  /* AAOS: modem_simulator's network time (the fake host package has it).  */
  j = plan_json ("aaos-x86_64", "7.2-x86_64", NULL, &err);
  snap = json_object_get (j, "snapshot");
  cr_assert_str_eq (json_string_value (json_object_get (snap, "clock")), "service");
  cr_assert_str_eq (json_string_value (json_object_get (snap, "clock_service")), "modem_simulator");
  json_decref (j);
  free (err);
}
