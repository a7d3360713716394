/* SPDX-License-Identifier: Apache-2.0 */
#include "qemu/caps.h"
#include "testutil.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>

#define QEMU_X86 "/usr/bin/qemu-system-x86_64"

static void
caps_clear (struct avm_qemu_caps *c)
{
  free (c->binary);
  free (c->version);
  free (c->package);
  avm_strv_freep (&c->devices);
  avm_strv_freep (&c->displays);
  avm_strv_freep (&c->machines);
  avm_strv_freep (&c->accels);
  avm_strv_freep (&c->audiodevs);
  free (c->source_path);
  memset (c, 0, sizeof *c);
}

static size_t
count (char **v)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

static char *
srcdir_path (const char *rel)
{
  const char *src = getenv ("AVM_SRCDIR");
  return avm_path_join (src && *src ? src : ".", rel);
}

/* ------------------------------------------------------------------ */
/* Parsers.  */

Test (caps, version_debian)
{
  struct avm_qemu_caps c = { 0 };
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_qemu_caps_parse_version (&c,
                                             "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n"
                                             "Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project "
                                             "developers\n",
                                             &err),
                0);
  cr_assert_str_eq (c.version, "7.2.22");
  cr_assert_eq (c.major, 7);
  cr_assert_eq (c.minor, 2);
  cr_assert_eq (c.micro, 22);
  cr_assert_str_eq (c.package, "Debian 1:7.2+dfsg-7+deb12u18+b3");
  cr_assert (avm_qemu_caps_at_least (&c, 7, 2));
  cr_assert (avm_qemu_caps_at_least (&c, 6, 9));
  cr_assert_not (avm_qemu_caps_at_least (&c, 7, 3));
  cr_assert_not (avm_qemu_caps_at_least (&c, 8, 0));
  caps_clear (&c);
}

Test (caps, version_variants)
{
  struct avm_qemu_caps c = { 0 };
  _cleanup_error_ avm_error_t err = NULL;

  /* No package, no trailing newline.  */
  cr_assert_eq (avm_qemu_caps_parse_version (&c, "QEMU emulator version 8.2.0", &err), 0);
  cr_assert_str_eq (c.version, "8.2.0");
  cr_assert_null (c.package);
  cr_assert_eq (c.major * 10000 + c.minor * 100 + c.micro, 80200);

  /* Replacing a previous answer; three-digit micro.  */
  cr_assert_eq (avm_qemu_caps_parse_version (&c, "QEMU emulator version 9.1.123\nCopyright\n", &err), 0);
  cr_assert_str_eq (c.version, "9.1.123");
  cr_assert_eq (c.micro, 123);
  cr_assert_null (c.package);

  cr_assert_eq (avm_qemu_caps_parse_version (&c, "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-1)\n", &err), 0);
  cr_assert_eq (c.major, 10);
  cr_assert_eq (c.minor, 0);
  cr_assert_eq (c.micro, 2);
  cr_assert_str_eq (c.package, "Debian 1:10.0.2+ds-1");
  cr_assert (avm_qemu_caps_at_least (&c, 8, 2));
  cr_assert (avm_qemu_caps_at_least (&c, 10, 0));
  cr_assert_not (avm_qemu_caps_at_least (&c, 10, 1));

  /* Two components, git describe in parentheses.  */
  cr_assert_eq (avm_qemu_caps_parse_version (&c, "QEMU emulator version 9.0 (v9.0.0-1234-gdeadbeef)\n", &err), 0);
  cr_assert_str_eq (c.version, "9.0");
  cr_assert_eq (c.micro, 0);
  cr_assert_str_eq (c.package, "v9.0.0-1234-gdeadbeef");
  caps_clear (&c);
}

Test (caps, version_errors)
{
  struct avm_qemu_caps c = { 0 };
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_lt (avm_qemu_caps_parse_version (&c, "", &err), 0);
  tu_assert_err_has (err, "-version");
  cr_assert_lt (avm_qemu_caps_parse_version (&c, "qemu-system-x86_64: unknown option\n", &err), 0);
  cr_assert_lt (avm_qemu_caps_parse_version (&c, "QEMU emulator version seven\n", &err), 0);
  tu_assert_err_has (err, "\"seven\"");
  cr_assert_lt (avm_qemu_caps_parse_version (&c, "QEMU emulator version 7.\n", &err), 0);
  cr_assert_lt (avm_qemu_caps_parse_version (&c, "QEMU emulator version 7.2.1.4\n", &err), 0);
  cr_assert_null (c.version);
  caps_clear (&c);
}

static const char device_help[] = "Controller/Bridge/Hub devices:\n"
                                  "name \"pcie-root-port\", bus PCI, desc \"PCI Express Root Port\"\n"
                                  "name \"usb-host\", bus usb-bus\n"
                                  "\n"
                                  "Display devices:\n"
                                  "name \"virtio-gpu-pci\", bus PCI, alias \"virtio-gpu\"\n"
                                  "name \"vhost-user-gpu-pci\", bus PCI\n"
                                  "name \"virtio-gpu-gl-pci\", bus PCI, alias \"virtio-gpu-gl\"\n"
                                  "\n"
                                  "Misc devices:\n"
                                  "name \"vhost-vsock-pci\", bus PCI\n"
                                  "name \"xlnx,efuse\"\n"
                                  "name \"vhost-vsock-pci\", bus PCI\n"
                                  "name \"\", bus PCI\n"
                                  "name \"broken\n"
                                  "bogus line name \"nope\"\n"
                                  "name \"virtio-sound-pci\", bus PCI, alias \"virtio-sound\", desc \"Virtio "
                                  "Sound\"qemu: module hw-audio-foo not found\n";

Test (caps, devices)
{
  struct avm_qemu_caps c = { 0 };
  _cleanup_error_ avm_error_t err = NULL;
  const char *expect[] = { "pcie-root-port",    "usb-host",       "vhost-user-gpu-pci", "vhost-vsock-pci",
                           "virtio-gpu-gl-pci", "virtio-gpu-pci", "virtio-sound-pci",   "xlnx,efuse" };

  cr_assert_eq (avm_qemu_caps_parse_devices (&c, device_help, &err), 0);
  cr_assert_eq (count (c.devices), ARRAY_SIZE (expect));
  for (size_t i = 0; i < ARRAY_SIZE (expect); i++)
    cr_assert_str_eq (c.devices[i], expect[i]);
  cr_assert (avm_qemu_caps_has_device (&c, "virtio-gpu-pci"));
  cr_assert (avm_qemu_caps_has_device (&c, "xlnx,efuse"));
  cr_assert_not (avm_qemu_caps_has_device (&c, "virtio-gpu")); /* alias */
  cr_assert_not (avm_qemu_caps_has_device (&c, "virtio-gpu-pc"));
  cr_assert_not (avm_qemu_caps_has_device (&c, "nope"));
  cr_assert_not (avm_qemu_caps_has_device (&c, "aaa"));
  cr_assert_not (avm_qemu_caps_has_device (&c, "zzz"));

  /* No device at all is an error and keeps the previous list.  */
  cr_assert_lt (avm_qemu_caps_parse_devices (&c, "Display devices:\n\n", &err), 0);
  tu_assert_err_has (err, "-device help");
  cr_assert_eq (count (c.devices), ARRAY_SIZE (expect));
  caps_clear (&c);
}

Test (caps, displays)
{
  struct avm_qemu_caps c = { 0 };
  _cleanup_error_ avm_error_t err = NULL;
  /* QEMU 10.0 prose after the list; a module loader message glued to a
     name and one on a line of its own.  */
  static const char text[]
      = "Available display backend types:\n"
        "none\n"
        "gtk\n"
        "qemu: module ui-ui-sdl not found, do you want to install qemu-system-gui package?\n"
        "egl-headless\n"
        "dbusqemu: module ui-ui-curses not found, do you want to install qemu-system-gui package?\n"
        "spice-app\r\n"
        "gtk\n"
        "\n"
        "Some display backends support suboptions, which can be set with\n"
        "   -display backend,option=value,option=value...\n"
        "For a short list of the suboptions for each display, see the top-level -help output; more detail is in the "
        "documentation.\n";
  const char *expect[] = { "dbus", "egl-headless", "gtk", "none", "spice-app" };

  cr_assert_eq (avm_qemu_caps_parse_displays (&c, text, &err), 0);
  cr_assert_eq (count (c.displays), ARRAY_SIZE (expect));
  for (size_t i = 0; i < ARRAY_SIZE (expect); i++)
    cr_assert_str_eq (c.displays[i], expect[i]);
  cr_assert (avm_qemu_caps_has_display (&c, "dbus"));
  cr_assert_not (avm_qemu_caps_has_display (&c, "sdl"));
  cr_assert_not (avm_qemu_caps_has_display (&c, "Some"));
  cr_assert_not (avm_qemu_caps_has_display (&c, "Available"));

  /* A failing -display help: empty list, still a vector.  */
  cr_assert_eq (avm_qemu_caps_parse_displays (&c, "", &err), 0);
  cr_assert_not_null (c.displays);
  cr_assert_eq (count (c.displays), 0);
  cr_assert_not (avm_qemu_caps_has_display (&c, "none"));
  caps_clear (&c);
}

Test (caps, machines)
{
  struct avm_qemu_caps c = { 0 };
  _cleanup_error_ avm_error_t err = NULL;
  static const char text[] = "Supported machines are:\n"
                             "microvm              microvm (i386)\n"
                             "pc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)\n"
                             "pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) (default)\n"
                             "q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)\n"
                             "pc-q35-7.2           Standard PC (Q35 + ICH9, 2009)\n"
                             "none                 empty machine\n"
                             "x-remote             Experimental remote machine\n"
                             "pc-i440fx-7.1        Standard PC (i440FX + PIIX, 1996)qemu: module ui-ui-none not found, "
                             "do you want to install qemu-system-modules-opengl package?";
  const char *expect[] = { "microvm", "none", "pc", "pc-i440fx-7.1", "pc-i440fx-7.2", "pc-q35-7.2", "q35", "x-remote" };

  cr_assert_eq (avm_qemu_caps_parse_machines (&c, text, &err), 0);
  cr_assert_eq (count (c.machines), ARRAY_SIZE (expect));
  for (size_t i = 0; i < ARRAY_SIZE (expect); i++)
    cr_assert_str_eq (c.machines[i], expect[i]);
  cr_assert (avm_qemu_caps_has_machine (&c, "q35"));
  cr_assert (avm_qemu_caps_has_machine (&c, "pc-i440fx-7.1"));
  cr_assert_not (avm_qemu_caps_has_machine (&c, "Supported"));
  cr_assert_not (avm_qemu_caps_has_machine (&c, "virt"));
  caps_clear (&c);
}

Test (caps, accels_audiodevs)
{
  struct avm_qemu_caps c = { 0 };
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_qemu_caps_parse_accels (&c, "Accelerators supported in QEMU binary:\ntcg\nkvm\n", &err), 0);
  cr_assert_eq (count (c.accels), 2);
  cr_assert_str_eq (c.accels[0], "kvm");
  cr_assert_str_eq (c.accels[1], "tcg");
  cr_assert (avm_qemu_caps_has_accel (&c, "tcg"));
  cr_assert_not (avm_qemu_caps_has_accel (&c, "xen"));

  cr_assert_eq (avm_qemu_caps_parse_audiodevs (&c, "Available audio drivers:\nnone\npa\npipewire\nalsa\nwav", &err), 0);
  cr_assert_eq (count (c.audiodevs), 5);
  cr_assert_str_eq (c.audiodevs[0], "alsa");
  cr_assert_str_eq (c.audiodevs[4], "wav");
  cr_assert (avm_qemu_caps_has_audiodev (&c, "pipewire"));
  cr_assert_not (avm_qemu_caps_has_audiodev (&c, "Available"));
  caps_clear (&c);
}

Test (caps, empty_caps_queries)
{
  struct avm_qemu_caps c = { 0 };
  cr_assert_not (avm_qemu_caps_has_device (&c, "virtio-gpu-pci"));
  cr_assert_not (avm_qemu_caps_has_display (&c, "none"));
  cr_assert_not (avm_qemu_caps_has_machine (&c, "q35"));
  cr_assert_not (avm_qemu_caps_has_accel (&c, "tcg"));
  cr_assert_not (avm_qemu_caps_has_audiodev (&c, "none"));
}

/* ------------------------------------------------------------------ */
/* Recorded capabilities: the committed JSON is exactly what the parsers make
   of the committed raw help texts.  */

static struct avm_qemu_caps *
parse_recording (const char *dir, const char *binary)
{
  static const char *const names[] = { "version", "device", "display", "machine", "accel", "audiodev" };
  int (*const parse[]) (struct avm_qemu_caps *, const char *, avm_error_t *) = {
    avm_qemu_caps_parse_version,  avm_qemu_caps_parse_devices, avm_qemu_caps_parse_displays,
    avm_qemu_caps_parse_machines, avm_qemu_caps_parse_accels,  avm_qemu_caps_parse_audiodevs,
  };
  struct avm_qemu_caps *c = calloc (1, sizeof *c);
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_not_null (c);
  c->binary = strdup (binary);
  for (size_t i = 0; i < ARRAY_SIZE (names); i++)
    {
      _cleanup_free_ char *rel = NULL, *path = NULL, *text = NULL;
      cr_assert_geq (asprintf (&rel, "%s/%s.txt", dir, names[i]), 0);
      path = srcdir_path (rel);
      cr_assert_eq (avm_read_file (path, 16u << 20, "a recording", &text, NULL, &err), 0, "%s", err ? err->msg : "");
      cr_assert_eq (parse[i](c, text, &err), 0, "%s: %s", path, err ? err->msg : "");
    }
  return c;
}

static void
check_recording (const char *version, const char *arch)
{
  _cleanup_free_ char *dir = NULL, *json_rel = NULL, *json_path = NULL, *binary = NULL;
  _cleanup_free_ char *committed = NULL, *dumped = NULL;
  _cleanup_caps_ struct avm_qemu_caps *parsed = NULL, *loaded = NULL;
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_geq (asprintf (&dir, "tests/data/qemu-%s/%s", version, arch), 0);
  cr_assert_geq (asprintf (&json_rel, "tests/data/caps-qemu-%s-%s.json", version, arch), 0);
  cr_assert_geq (asprintf (&binary, "/usr/bin/qemu-system-%s", arch), 0);
  json_path = srcdir_path (json_rel);

  parsed = parse_recording (dir, binary);
  dumped = avm_qemu_caps_dump (parsed);
  cr_assert_not_null (dumped);
  cr_assert_eq (avm_read_file (json_path, AVM_CAPS_MAX_SIZE, "a capabilities file", &committed, NULL, &err), 0, "%s",
                err ? err->msg : "");
  cr_assert_str_eq (dumped, committed, "%s drifted from %s/*.txt", json_rel, dir);

  cr_assert_eq (avm_qemu_caps_load_file (json_path, &loaded, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (loaded->source, AVM_CAPS_RECORDED);
  cr_assert_str_eq (loaded->source_path, json_path);
  cr_assert_str_eq (loaded->binary, binary);
  cr_assert_str_eq (loaded->version, parsed->version);
  cr_assert_eq (loaded->major, parsed->major);
  cr_assert_eq (loaded->minor, parsed->minor);
  cr_assert_eq (loaded->micro, parsed->micro);
  cr_assert_eq (count (loaded->devices), count (parsed->devices));
  cr_assert_eq (count (loaded->machines), count (parsed->machines));
  _cleanup_free_ char *again = avm_qemu_caps_dump (loaded);
  cr_assert_str_eq (again, committed);
}

Test (caps, recorded_7_2_x86_64) { check_recording ("7.2", "x86_64"); }

Test (caps, recorded_7_2_aarch64) { check_recording ("7.2", "aarch64"); }

Test (caps, recorded_10_0_x86_64) { check_recording ("10.0", "x86_64"); }

Test (caps, recorded_10_0_aarch64) { check_recording ("10.0", "aarch64"); }

static struct avm_qemu_caps *
load_data (const char *rel)
{
  _cleanup_free_ char *path = srcdir_path (rel);
  _cleanup_error_ avm_error_t err = NULL;
  struct avm_qemu_caps *c = NULL;
  cr_assert_eq (avm_qemu_caps_load_file (path, &c, &err), 0, "%s", err ? err->msg : "");
  return c;
}

Test (caps, recorded_contents)
{
  _cleanup_caps_ struct avm_qemu_caps *x10 = load_data ("tests/data/caps-qemu-10.0-x86_64.json");
  _cleanup_caps_ struct avm_qemu_caps *a10 = load_data ("tests/data/caps-qemu-10.0-aarch64.json");
  _cleanup_caps_ struct avm_qemu_caps *x7 = load_data ("tests/data/caps-qemu-7.2-x86_64.json");
  _cleanup_caps_ struct avm_qemu_caps *a7 = load_data ("tests/data/caps-qemu-7.2-aarch64.json");
  static const char *const new_devices[] = { "virtio-multitouch-pci", "vhost-user-snd-pci", "virtio-sound-pci" };
  static const char *const both[] = { "vhost-user-gpu-pci", "vhost-user-vsock-pci", "vhost-vsock-pci-non-transitional",
                                      "virtio-gpu-gl-pci",  "vhost-vsock-pci",      "virtio-gpu-pci" };

  cr_assert (avm_qemu_caps_at_least (x10, 10, 0));
  cr_assert_eq (x10->major, 10);
  cr_assert_not (avm_qemu_caps_at_least (x7, 8, 2));
  cr_assert_eq (x7->major, 7);
  for (size_t i = 0; i < ARRAY_SIZE (new_devices); i++)
    {
      cr_assert (avm_qemu_caps_has_device (x10, new_devices[i]), "%s", new_devices[i]);
      cr_assert (avm_qemu_caps_has_device (a10, new_devices[i]), "%s", new_devices[i]);
      cr_assert_not (avm_qemu_caps_has_device (x7, new_devices[i]), "%s", new_devices[i]);
      cr_assert_not (avm_qemu_caps_has_device (a7, new_devices[i]), "%s", new_devices[i]);
    }
  for (size_t i = 0; i < ARRAY_SIZE (both); i++)
    {
      cr_assert (avm_qemu_caps_has_device (x10, both[i]), "%s", both[i]);
      cr_assert (avm_qemu_caps_has_device (x7, both[i]), "%s", both[i]);
    }
  /* vhost-user-scmi-pci is built for Arm targets only.  */
  cr_assert (avm_qemu_caps_has_device (a10, "vhost-user-scmi-pci"));
  cr_assert_not (avm_qemu_caps_has_device (x10, "vhost-user-scmi-pci"));
  cr_assert_not (avm_qemu_caps_has_device (a7, "vhost-user-scmi-pci"));

  cr_assert (avm_qemu_caps_has_display (x10, "dbus"));
  cr_assert (avm_qemu_caps_has_display (a10, "egl-headless"));
  cr_assert (avm_qemu_caps_has_audiodev (x10, "pipewire"));
  cr_assert (avm_qemu_caps_has_audiodev (a10, "pipewire"));
  cr_assert_not (avm_qemu_caps_has_audiodev (x7, "pipewire"));
  cr_assert (avm_qemu_caps_has_accel (x10, "kvm"));
  cr_assert_not (avm_qemu_caps_has_accel (a10, "kvm"));
  cr_assert (avm_qemu_caps_has_machine (x10, "q35"));
  cr_assert (avm_qemu_caps_has_machine (x10, "pc-q35-10.0"));
  cr_assert (avm_qemu_caps_has_machine (a10, "virt"));
  cr_assert (avm_qemu_caps_has_machine (a10, "virt-10.0"));
  cr_assert_not (avm_qemu_caps_has_machine (x10, "virt"));
}

/* ------------------------------------------------------------------ */
/* Recorded file errors.  */

static char tmpdir[64];

static int
rm_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  return remove (path);
}

static void
tmp_setup (void)
{
  strcpy (tmpdir, "/tmp/avm-test-caps-XXXXXX");
  cr_assert_not_null (mkdtemp (tmpdir));
}

static void
tmp_teardown (void)
{
  if (tmpdir[0])
    nftw (tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *
tmp_file (const char *name, const char *content)
{
  _cleanup_error_ avm_error_t err = NULL;
  char *path = avm_path_join (tmpdir, name);
  if (content)
    cr_assert_eq (avm_write_file_atomic (path, content, strlen (content), 0644, &err), 0);
  return path;
}

static void
expect_load_error (const char *content, const char *needle)
{
  _cleanup_free_ char *path = tmp_file ("caps.json", content);
  _cleanup_caps_ struct avm_qemu_caps *c = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *full = NULL;

  cr_assert_lt (avm_qemu_caps_load_file (path, &c, &err), 0, "accepted: %s", content);
  cr_assert_null (c);
  cr_assert_geq (asprintf (&full, "%s: %s", path, needle), 0);
  tu_assert_err_has (err, full);
  cr_assert_eq (err->exit_code, AVM_EXIT_USAGE);
}

#define GOOD_HEAD "{\"format\": 1, \"binary\": \"/usr/bin/qemu\", \"version\": \"8.2.1\", "
#define GOOD_LISTS                                                                                                     \
  "\"devices\": [\"b\", \"a\"], \"displays\": [], \"machines\": [\"virt\"], \"accels\": [\"tcg\"], \"audiodevs\": []"

Test (caps, load_file_ok, .init = tmp_setup, .fini = tmp_teardown)
{
  _cleanup_free_ char *path
      = tmp_file ("caps.json", GOOD_HEAD GOOD_LISTS ", \"identity\": {\"path\": \"x\"}, \"extra\": 1}");
  _cleanup_caps_ struct avm_qemu_caps *c = NULL;
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_qemu_caps_load_file (path, &c, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (c->source, AVM_CAPS_RECORDED);
  cr_assert_str_eq (c->source_path, path);
  cr_assert_str_eq (c->binary, "/usr/bin/qemu");
  cr_assert_eq (c->major, 8);
  cr_assert_eq (c->minor, 2);
  cr_assert_eq (c->micro, 1);
  cr_assert_null (c->package);
  /* Unsorted input is sorted for bsearch.  */
  cr_assert_str_eq (c->devices[0], "a");
  cr_assert_str_eq (c->devices[1], "b");
  cr_assert (avm_qemu_caps_has_device (c, "a"));
  cr_assert (avm_qemu_caps_has_device (c, "b"));
  cr_assert_not_null (c->displays);
  cr_assert_null (c->displays[0]);
}

Test (caps, load_file_missing, .init = tmp_setup, .fini = tmp_teardown)
{
  _cleanup_free_ char *path = tmp_file ("nope.json", NULL);
  _cleanup_caps_ struct avm_qemu_caps *c = NULL;
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_qemu_caps_load_file (path, &c, &err), -ENOENT);
  tu_assert_err_has (err, path);
  tu_assert_err_has (err, "No such file");
  /* A file named by --caps that is not there is bad input (issue 15).  */
  cr_assert_eq (err->exit_code, AVM_EXIT_USAGE);
}

Test (caps, load_file_malformed, .init = tmp_setup, .fini = tmp_teardown)
{
  _cleanup_free_ char *path = tmp_file ("caps.json", "{\n  \"format\": 1,\n  \"devices\": [\"a\",]\n}\n");
  _cleanup_free_ char *where = NULL;
  _cleanup_caps_ struct avm_qemu_caps *c = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  cr_assert_lt (avm_qemu_caps_load_file (path, &c, &err), 0);
  cr_assert_geq (asprintf (&where, "%s:3:", path), 0);
  tu_assert_err_has (err, where);
  tu_assert_err_has (err, "malformed JSON");
}

Test (caps, load_file_types, .init = tmp_setup, .fini = tmp_teardown)
{
  expect_load_error ("[1, 2]", "expected a JSON object");
  expect_load_error ("{\"binary\": \"/q\"}", "format: expected integer 1");
  expect_load_error ("{\"format\": \"1\"}", "format: expected integer 1");
  expect_load_error ("{\"format\": 2}", "format: unsupported format 2");
  expect_load_error ("{\"format\": 1, \"version\": \"8.2.1\", " GOOD_LISTS "}", "binary: expected string");
  expect_load_error ("{\"format\": 1, \"binary\": [], \"version\": \"8.2.1\", " GOOD_LISTS "}",
                     "binary: expected string");
  expect_load_error ("{\"format\": 1, \"binary\": \"/q\", \"version\": 8.2, " GOOD_LISTS "}",
                     "version: expected string");
  expect_load_error ("{\"format\": 1, \"binary\": \"/q\", \"version\": \"eight\", " GOOD_LISTS "}",
                     "version: expected \"MAJOR.MINOR[.MICRO]\"");
  expect_load_error (GOOD_HEAD "\"package\": 3, " GOOD_LISTS "}", "package: expected string or null");
  expect_load_error (GOOD_HEAD "\"devices\": \"virtio-gpu-pci\"}", "devices: expected array of strings");
  expect_load_error (GOOD_HEAD "\"devices\": [\"a\", 1]}", "devices: expected array of strings");
  expect_load_error (GOOD_HEAD "\"devices\": [\"a\"], \"displays\": [\"gtk\"], \"machines\": {}}",
                     "machines: expected array of strings");
  expect_load_error (GOOD_HEAD "\"devices\": [\"a\"], \"displays\": [], \"machines\": [], \"accels\": []}",
                     "audiodevs: expected array of strings");
  expect_load_error (GOOD_HEAD "\"devices\": [\"a\", \"\"], \"displays\": [], \"machines\": [], \"accels\": [], "
                               "\"audiodevs\": []}",
                     "devices[1]: expected a non-empty name");
  expect_load_error (GOOD_HEAD
                     "\"devices\": [], \"displays\": [], \"machines\": [], \"accels\": [], \"audiodevs\": []}",
                     "devices: expected at least one device");
}

/* ------------------------------------------------------------------ */
/* Probing the real binary.  */

Test (caps, probe_real)
{
  _cleanup_caps_ struct avm_qemu_caps *c = NULL;
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_qemu_caps_probe (QEMU_X86, &c, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (c->source, AVM_CAPS_PROBED);
  cr_assert_null (c->source_path);
  cr_assert_str_eq (c->binary, QEMU_X86);
  cr_assert_eq (c->major, 7);
  cr_assert_eq (c->minor, 2);
  cr_assert_not_null (c->package);
  cr_assert (avm_qemu_caps_has_device (c, "virtio-gpu-pci"));
  cr_assert (avm_qemu_caps_has_device (c, "vhost-user-gpu-pci"));
  cr_assert (avm_qemu_caps_has_device (c, "vhost-vsock-pci"));
  cr_assert (avm_qemu_caps_has_device (c, "pcie-root-port"));
  cr_assert_not (avm_qemu_caps_has_device (c, "virtio-multitouch-pci"));
  cr_assert (avm_qemu_caps_has_display (c, "dbus"));
  cr_assert (avm_qemu_caps_has_display (c, "none"));
  cr_assert (avm_qemu_caps_has_accel (c, "tcg"));
  cr_assert (avm_qemu_caps_has_machine (c, "q35"));
  cr_assert (avm_qemu_caps_has_machine (c, "pc-q35-7.2"));
  cr_assert (avm_qemu_caps_has_audiodev (c, "none"));
  cr_assert_gt (count (c->devices), 300);
  for (size_t i = 1; c->devices[i]; i++)
    cr_assert_lt (strcmp (c->devices[i - 1], c->devices[i]), 0, "not sorted/unique at %s", c->devices[i]);
}

Test (caps, probe_errors, .init = tmp_setup, .fini = tmp_teardown)
{
  _cleanup_caps_ struct avm_qemu_caps *c = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *missing = tmp_file ("qemu-missing", NULL);
  _cleanup_free_ char *noexec = tmp_file ("qemu-noexec", "#!/bin/sh\n");

  cr_assert_eq (avm_qemu_caps_probe (missing, &c, &err), -ENOENT);
  tu_assert_err_has (err, missing);
  cr_assert_eq (avm_qemu_caps_get (missing, &c, &err), -ENOENT);
  tu_assert_err_has (err, missing);

  /* No execute bit at all (even root needs one).  */
  cr_assert_eq (chmod (noexec, 0644), 0);
  cr_assert_lt (avm_qemu_caps_get (noexec, &c, &err), 0);
  tu_assert_err_has (err, noexec);
  tu_assert_err_has (err, "not executable");

  cr_assert_lt (avm_qemu_caps_probe (tmpdir, &c, &err), 0);
  tu_assert_err_has (err, "not a regular file");

  cr_assert_eq (avm_qemu_caps_probe ("qemu-system-x86_64", &c, &err), -EINVAL);
  tu_assert_err_has (err, "not an absolute path");

  /* -version fails.  */
  cr_assert_lt (avm_qemu_caps_probe ("/bin/false", &c, &err), 0);
  tu_assert_err_has (err, "/bin/false -version exited with status 1");

  /* Succeeds but says nothing useful.  */
  cr_assert_lt (avm_qemu_caps_probe ("/bin/true", &c, &err), 0);
  tu_assert_err_has (err, "/bin/true: unexpected -version output");
  cr_assert_null (c);
}

/* ------------------------------------------------------------------ */
/* Cache.  */

static void
copy_file (const char *from, const char *to, mode_t mode)
{
  _cleanup_close_ int in = open (from, O_RDONLY | O_CLOEXEC);
  _cleanup_close_ int out = open (to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  char buf[1 << 16];
  ssize_t r;

  cr_assert_geq (in, 0);
  cr_assert_geq (out, 0);
  while ((r = read (in, buf, sizeof buf)) > 0)
    cr_assert_eq (write (out, buf, r), r);
  cr_assert_eq (r, 0);
}

#define QEMU_MODDIR "/usr/lib/x86_64-linux-gnu/qemu"

static char *cache_home, *qemu_copy, *moddir;

/* Make TMPDIR a QEMU installation prefix: bin/qemu-system-x86_64 (a copy
   we may modify) and lib/x86_64-linux-gnu/qemu/ (where QEMU looks for its
   modules relative to its executable) with links to the real modules.  */
static void
cache_setup (void)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_closedir_ DIR *d = NULL;
  _cleanup_free_ char *bindir = NULL;
  struct dirent *de;

  tmp_setup ();
  cache_home = avm_path_join (tmpdir, "cache");
  setenv ("XDG_CACHE_HOME", cache_home, 1);
  unsetenv ("QEMU_MODULE_DIR");
  bindir = avm_path_join (tmpdir, "bin");
  cr_assert_eq (mkdir (bindir, 0755), 0);
  qemu_copy = avm_path_join (bindir, "qemu-system-x86_64");
  copy_file (QEMU_X86, qemu_copy, 0755);
  moddir = avm_path_join (tmpdir, "lib/x86_64-linux-gnu/qemu");
  cr_assert_eq (avm_mkdir_p (moddir, 0755, &err), 0);
  d = opendir (QEMU_MODDIR);
  cr_assert_not_null (d);
  while ((de = readdir (d)))
    {
      if (de->d_name[0] == '.')
        continue;
      _cleanup_free_ char *from = avm_path_join (QEMU_MODDIR, de->d_name);
      _cleanup_free_ char *to = avm_path_join (moddir, de->d_name);
      cr_assert_eq (symlink (from, to), 0);
    }
}

static void
cache_teardown (void)
{
  tmp_teardown ();
  free (cache_home);
  free (qemu_copy);
  free (moddir);
}

static enum avm_caps_source
get_source (const char *binary, char **source_path)
{
  _cleanup_caps_ struct avm_qemu_caps *c = NULL;
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_qemu_caps_get (binary, &c, &err), 0, "%s", err ? err->msg : "");
  cr_assert_str_eq (c->binary, binary);
  cr_assert (avm_qemu_caps_has_device (c, "virtio-gpu-pci"));
  cr_assert (avm_qemu_caps_has_accel (c, "tcg"));
  cr_assert_eq (c->major, 7);
  if (source_path)
    *source_path = c->source_path ? strdup (c->source_path) : NULL;
  return c->source;
}

Test (caps, cache_path)
{
  setenv ("XDG_CACHE_HOME", "/xdg/cache", 1);
  _cleanup_free_ char *a = avm_qemu_caps_cache_path ("/usr/bin/qemu-system-x86_64");
  _cleanup_free_ char *b = avm_qemu_caps_cache_path ("/opt/qemu/bin/qemu-system-x86_64");
  _cleanup_free_ char *c = avm_qemu_caps_cache_path ("/usr/bin/qemu-system-aarch64");
  _cleanup_free_ char *d = avm_qemu_caps_cache_path ("/usr/bin/qemu-system-x86_64");
  _cleanup_free_ char *e = avm_qemu_caps_cache_path ("/weird/qemu system*x86");

  cr_assert (strncmp (a, "/xdg/cache/avm/qemu-caps/qemu-system-x86_64-", 44) == 0, "%s", a);
  cr_assert_eq (strlen (a), strlen ("/xdg/cache/avm/qemu-caps/qemu-system-x86_64-") + 16 + 5, "%s", a);
  cr_assert_str_eq (a + strlen (a) - 5, ".caps");
  cr_assert_str_eq (a, d);
  cr_assert_str_neq (a, b);
  cr_assert (strncmp (c, "/xdg/cache/avm/qemu-caps/qemu-system-aarch64-", 45) == 0, "%s", c);
  cr_assert (strncmp (e, "/xdg/cache/avm/qemu-caps/qemu_system_x86-", 41) == 0, "%s", e);

  unsetenv ("XDG_CACHE_HOME");
  setenv ("HOME", "/home/someone", 1);
  _cleanup_free_ char *f = avm_qemu_caps_cache_path ("/usr/bin/qemu-system-x86_64");
  cr_assert (strncmp (f, "/home/someone/.cache/avm/qemu-caps/qemu-system-x86_64-", 54) == 0, "%s", f);
  cr_assert_str_eq (strrchr (f, '/'), strrchr (a, '/'));
}

/* A basename longer than the 64 characters kept is cut at 64 (the bound is
   checked before the name is read: make lint's arrayIndexThenCheck).  */
Test (caps, cache_path_long_name)
{
  char bin[200] = "/opt/";
  size_t at = strlen (bin);
  memset (bin + at, 'q', 100);
  bin[at + 100] = '\0';
  setenv ("XDG_CACHE_HOME", "/xdg/cache", 1);
  _cleanup_free_ char *path = avm_qemu_caps_cache_path (bin);
  const char *name = strrchr (path, '/') + 1;

  /* 64 q, '-', 16 hex digits, ".caps".  */
  cr_assert_eq (strlen (name), 64 + 1 + 16 + 5, "%s", path);
  cr_assert (strspn (name, "q") == 64 && name[64] == '-', "%s", path);
  bin[at + 64] = '\0';
  _cleanup_free_ char *exact = avm_qemu_caps_cache_path (bin);
  cr_assert (strncmp (strrchr (exact, '/') + 1, name, 65) == 0, "%s vs %s", exact, path);
  cr_assert_str_neq (exact, path);
}

Test (caps, cache_hit_and_invalidation, .init = cache_setup, .fini = cache_teardown)
{
  _cleanup_free_ char *expect_path = avm_qemu_caps_cache_path (qemu_copy);
  _cleanup_free_ char *p1 = NULL, *p2 = NULL, *p3 = NULL;
  struct stat st;

  cr_assert (strncmp (expect_path, cache_home, strlen (cache_home)) == 0);
  cr_assert_neq (access (expect_path, F_OK), 0);

  cr_assert_eq (get_source (qemu_copy, &p1), AVM_CAPS_PROBED);
  cr_assert_not_null (p1, "probe result was not cached");
  cr_assert_str_eq (p1, expect_path);
  cr_assert_eq (stat (expect_path, &st), 0);
  cr_assert_eq (st.st_mode & 07777, 0600);
  _cleanup_free_ char *dir = avm_path_join (cache_home, "avm/qemu-caps");
  cr_assert_eq (stat (dir, &st), 0);
  cr_assert_eq (st.st_mode & 07777, 0700);

  cr_assert_eq (get_source (qemu_copy, &p2), AVM_CAPS_CACHED);
  cr_assert_str_eq (p2, expect_path);

  /* The cache entry records the binary's identity.  */
  {
    _cleanup_free_ char *text = tu_read (expect_path);
    cr_assert (strncmp (text, "avm-qemu-caps-cache 1\nidentity {", 32) == 0, "%.80s", text);
    _cleanup_free_ char *want_path = NULL, *want_mod = NULL;
    cr_assert (asprintf (&want_path, "\"path\":\"%s\"", qemu_copy) > 0);
    cr_assert (asprintf (&want_mod, "\"moddirs\":[{\"mtime_ns\":") > 0);
    char *nl = strchr (text + 22, '\n');
    cr_assert_not_null (nl);
    *nl = '\0';
    cr_assert (strstr (text, want_path) && strstr (text, "\"ino\":") && strstr (text, "\"mtime_ns\":")
                   && strstr (text, want_mod) && strstr (text, moddir),
               "%s", text);
    const char *devices = strstr (nl + 1, "\ndevices ");
    cr_assert_not_null (devices);
    cr_assert_gt (atoi (devices + 9), 300);
  }

  /* Touch the binary: new mtime, probed again, then cached again.  */
  struct timespec ts[2] = { { 1000000000, 123 }, { 1000000000, 456 } };
  cr_assert_eq (utimensat (AT_FDCWD, qemu_copy, ts, 0), 0);
  cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_PROBED);
  cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_CACHED);

  /* Append a byte (size, mtime, ctime change).  */
  {
    _cleanup_close_ int fd = open (qemu_copy, O_WRONLY | O_APPEND | O_CLOEXEC);
    cr_assert_geq (fd, 0);
    cr_assert_eq (write (fd, "", 1), 1);
  }
  cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_PROBED);
  cr_assert_eq (get_source (qemu_copy, &p3), AVM_CAPS_CACHED);
  cr_assert_str_eq (p3, expect_path);

  /* Another binary gets its own entry; the first stays valid.  */
  _cleanup_free_ char *other = avm_path_join (tmpdir, "bin/other-qemu");
  copy_file (QEMU_X86, other, 0755);
  cr_assert_eq (get_source (other, NULL), AVM_CAPS_PROBED);
  cr_assert_eq (get_source (other, NULL), AVM_CAPS_CACHED);
  cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_CACHED);
}

static void
overwrite (const char *path, const char *content)
{
  _cleanup_error_ avm_error_t err = NULL;
  cr_assert_eq (avm_write_file_atomic (path, content, strlen (content), 0600, &err), 0);
}

Test (caps, cache_corrupt, .init = cache_setup, .fini = cache_teardown)
{
  _cleanup_free_ char *path = avm_qemu_caps_cache_path (qemu_copy);
  _cleanup_free_ char *good = NULL;
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_PROBED);
  cr_assert_eq (avm_read_file (path, AVM_CAPS_MAX_SIZE, "a cache entry", &good, NULL, &err), 0);

  /* Every damage makes the entry invalid: probed again, and cached again.  */
  const char *damage[][2] = {
    { "avm-qemu-caps-cache 1\n", "avm-qemu-caps-cache 2\n" }, /* another format */
    { "\"ino\":", "\"ino\":1" },                              /* another file */
    { "\nend\n", "\n" },                                      /* truncated */
    { "\nend\n", "\nend\nmore\n" },                           /* trailing data */
    { "\ndevices ", "\ndevices 1" },                          /* wrong count */
    { "\naccels ", "\naccels \n" },                           /* no count */
    { "\nversion 7.", "\nversion x" },                        /* bad version */
    { "\nbinary /", "\nbinary /x/" },                         /* another binary */
  };
  for (size_t i = 0; i < sizeof damage / sizeof damage[0]; i++)
    {
      _cleanup_free_ char *bad = tu_replace (strdup (good), damage[i][0], damage[i][1]);
      cr_assert_str_neq (bad, good, "damage %zu not applied", i);
      overwrite (path, bad);
      cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_PROBED, "damage %zu accepted", i);
      cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_CACHED);
    }
  overwrite (path, "");
  cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_PROBED);
  /* Names out of order (two devices swapped).  */
  {
    _cleanup_free_ char *bad = strdup (good);
    char *d = strstr (bad, "\ndevices ");
    cr_assert_not_null (d);
    char *first = strchr (d + 1, '\n') + 1, *second = strchr (first, '\n') + 1, *third = strchr (second, '\n') + 1;
    size_t l1 = second - first, l2 = third - second;
    _cleanup_free_ char *tmp = strndup (first, l1);
    memmove (first, second, l2);
    memcpy (first + l2, tmp, l1);
    overwrite (path, bad);
    cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_PROBED);
  }
  /* A JSON entry of avm before the line format, beside it: removed when
     the entry is written.  */
  _cleanup_free_ char *legacy = strdup (path);
  memcpy (legacy + strlen (legacy) - 5, ".json", 5);
  overwrite (legacy, "{\"format\": 1}\n");
  overwrite (path, "x");
  cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_PROBED);
  cr_assert_neq (access (legacy, F_OK), 0);

  /* The good entry again: accepted.  */
  overwrite (path, good);
  cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_CACHED);
}

Test (caps, cache_unwritable, .init = cache_setup, .fini = cache_teardown)
{
  /* XDG_CACHE_HOME below a regular file: mkdir fails, get() does not.  */
  _cleanup_free_ char *file = tmp_file ("not-a-dir", "x");
  _cleanup_free_ char *p = NULL;
  setenv ("XDG_CACHE_HOME", file, 1);
  cr_assert_eq (get_source (qemu_copy, &p), AVM_CAPS_PROBED);
  cr_assert_null (p);
  cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_PROBED);
}

Test (caps, cache_module_dir, .init = cache_setup, .fini = cache_teardown)
{
  /* Display and audio back ends are modules: removing one from the module
     directory invalidates the entry although the binary is unchanged.  */
  _cleanup_caps_ struct avm_qemu_caps *before = NULL, *after = NULL, *cached = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *ui_dbus = avm_path_join (moddir, "ui-dbus.so");

  cr_assert_eq (avm_qemu_caps_get (qemu_copy, &before, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (before->source, AVM_CAPS_PROBED);
  cr_assert (avm_qemu_caps_has_display (before, "dbus"));
  cr_assert (avm_qemu_caps_has_display (before, "gtk"));
  cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_CACHED);

  cr_assert_eq (unlink (ui_dbus), 0);
  cr_assert_eq (avm_qemu_caps_get (qemu_copy, &after, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (after->source, AVM_CAPS_PROBED);
  cr_assert_not (avm_qemu_caps_has_display (after, "dbus"));
  cr_assert (avm_qemu_caps_has_display (after, "gtk"));
  cr_assert_eq (avm_qemu_caps_get (qemu_copy, &cached, &err), 0);
  cr_assert_eq (cached->source, AVM_CAPS_CACHED);
  cr_assert_not (avm_qemu_caps_has_display (cached, "dbus"));
}

Test (caps, cache_module_dir_env, .init = cache_setup, .fini = cache_teardown)
{
  /* $QEMU_MODULE_DIR is searched too: its state is part of the key.  */
  _cleanup_free_ char *mods = avm_path_join (tmpdir, "modules");
  cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_PROBED);
  cr_assert_eq (mkdir (mods, 0755), 0);
  setenv ("QEMU_MODULE_DIR", mods, 1);
  cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_PROBED);
  cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_CACHED);
  struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 1 } };
  cr_assert_eq (utimensat (AT_FDCWD, mods, ts, 0), 0);
  cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_PROBED);
  cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_CACHED);
  unsetenv ("QEMU_MODULE_DIR");
  cr_assert_eq (get_source (qemu_copy, NULL), AVM_CAPS_PROBED);
}

Test (caps, cache_matches_probe, .init = cache_setup, .fini = cache_teardown)
{
  _cleanup_caps_ struct avm_qemu_caps *probed = NULL, *first = NULL, *cached = NULL;
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_qemu_caps_probe (qemu_copy, &probed, &err), 0);
  cr_assert_eq (avm_qemu_caps_get (qemu_copy, &first, &err), 0);
  cr_assert_eq (avm_qemu_caps_get (qemu_copy, &cached, &err), 0);
  cr_assert_eq (first->source, AVM_CAPS_PROBED);
  cr_assert_eq (cached->source, AVM_CAPS_CACHED);
  _cleanup_free_ char *a = avm_qemu_caps_dump (probed);
  _cleanup_free_ char *b = avm_qemu_caps_dump (cached);
  cr_assert_str_eq (a, b);
  cr_assert_eq (cached->major, probed->major);
  cr_assert_eq (cached->minor, probed->minor);
  cr_assert_eq (cached->micro, probed->micro);
  cr_assert_str_eq (cached->package, probed->package);
}
