/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The start-avm personality: $AVM_BIN run through a symbolic link named
 * start-avm.  Each start_avm.sh option must print the same --dry-run
 * command line as `avm start -p aaos-<arch>` with the profile knob it
 * stands for (against the recorded QEMU 7.2 and 10.0 capabilities, so the
 * result does not depend on this host), devices the QEMU lacks are refused
 * exactly as avm start refuses them, bad usage is a one-line error with
 * exit status 2, and the help and man page agree.
 */
#include "testutil.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define assert_contains(hay, needle) cr_assert (strstr ((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))

/* As in test_plan.c: the plans must not depend on what an earlier `avm
   start` left in the state directory.  */
static void
hermetic_state (void)
{
  char *dir = tu_run_shared_dir ("startavm-state-never-created");
  cr_assert_eq (setenv ("AVM_STATE_DIR", dir, 1), 0);
  free (dir);
}

TestSuite (startavm, .init = hermetic_state);

static const char *
host_arch (void)
{
  static struct utsname u;
  cr_assert_eq (uname (&u), 0);
  return strcmp (u.machine, "arm64") == 0 ? "aarch64" : u.machine;
}

static const char *
other_arch (void)
{
  return strcmp (host_arch (), "aarch64") == 0 ? "x86_64" : "aarch64";
}

static const char *
profile_for (const char *arch)
{
  return strcmp (arch, "aarch64") == 0 ? "aaos-arm64" : "aaos-x86_64";
}

/* tests/data/caps-qemu-VERSION-ARCH.json (static buffer, two slots).  */
static char *
caps (const char *version, const char *arch)
{
  static char buf[2][4096];
  static int k;
  k ^= 1;
  snprintf (buf[k], sizeof buf[k], "%s/tests/data/caps-qemu-%s-%s.json", tu_srcdir (), version, arch);
  return buf[k];
}

struct fixture
{
  char *dir;  /* temporary directory */
  char *link; /* DIR/start-avm -> $AVM_BIN */
  char *cvd;  /* DIR/cvd: a Cuttlefish directory in start-avm's layout */
  char *qemu; /* DIR/cvd/qemu */
};

static void
make_dirs (const char *path)
{
  char *copy = strdup (path);
  for (char *p = copy + 1; *p; p++)
    if (*p == '/')
      {
        *p = '\0';
        mkdir (copy, 0755);
        *p = '/';
      }
  mkdir (copy, 0755);
  free (copy);
}

static char *
join (const char *a, const char *b)
{
  char *s = NULL;
  cr_assert_geq (asprintf (&s, "%s/%s", a, b), 0);
  return s;
}

static void
touch (const char *dir, const char *name)
{
  char *p = join (dir, name);
  char *d = strdup (p);
  *strrchr (d, '/') = '\0';
  make_dirs (d);
  free (tu_write (d, strrchr (p, '/') + 1, ""));
  free (d);
  free (p);
}

/* The start-avm layout: cvd2img's outputs in cvd/qemu.  */
static struct fixture
setup (bool with_qemu_dir)
{
  struct fixture f = { .dir = tu_tmpdir () };
  f.link = join (f.dir, "start-avm");
  cr_assert_eq (symlink (tu_avm_bin (), f.link), 0);
  f.cvd = join (f.dir, "cvd");
  f.qemu = join (f.cvd, "qemu");
  make_dirs (f.cvd);
  /* start-avm's users run Android 13/14-era images: an android14 set
     (shared/auto/android-info.txt of android14-release).  */
  char *info = tu_write (f.cvd, "android-info.txt", "require board=cutf\nconfig=auto\n");
  free (info);
  if (with_qemu_dir)
    {
      touch (f.qemu, "system.img");
      touch (f.qemu, "bootloader");
      touch (f.qemu, "avb_key.pem");
    }
  return f;
}

static void
teardown (struct fixture *f)
{
  tu_rmtree (f->dir);
  free (f->dir);
  free (f->link);
  free (f->cvd);
  free (f->qemu);
}

/* Run the start-avm link with ARGS, in avm's hermetic test environment.  */
static int
start_avm (const struct fixture *f, char *const args[], char **out, char **err)
{
  return tu_avmv_as (f->link, args, out, err);
}

/* `avm start --dry-run` of the aaos profile of ARCH with the images of
   F's start-avm layout, plus EXTRA.  */
static int
avm_reference (const struct fixture *f, const char *arch, const char *caps_file, char *const extra[], char **out,
               char **err)
{
  char *args[64];
  size_t n = 0;
  char *sys = join (f->qemu, "system.img"), *bl = join (f->qemu, "bootloader"), *key = join (f->qemu, "avb_key.pem");
  char *s1 = NULL, *s2 = NULL, *s3 = NULL;
  cr_assert_geq (asprintf (&s1, "disks[0].path=%s", sys), 0);
  cr_assert_geq (asprintf (&s2, "disks[1].key=%s", key), 0);
  cr_assert_geq (asprintf (&s3, "firmware.bios=%s", bl), 0);
  args[n++] = "start";
  args[n++] = "--dry-run";
  args[n++] = "-p";
  args[n++] = (char *) profile_for (arch);
  if (caps_file)
    {
      args[n++] = "--caps";
      args[n++] = (char *) caps_file;
    }
  args[n++] = "--images";
  args[n++] = f->cvd;
  args[n++] = "--set";
  args[n++] = s1;
  args[n++] = "--set";
  args[n++] = s2;
  args[n++] = "--set";
  args[n++] = s3;
  for (size_t i = 0; extra && extra[i]; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  int r = tu_avmv (args, out, err);
  free (sys);
  free (bl);
  free (key);
  free (s1);
  free (s2);
  free (s3);
  return r;
}

static size_t
count_lines (const char *s)
{
  size_t n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

struct equivalence
{
  const char *flags[6];  /* start-avm options */
  const char *knobs[12]; /* the same as avm start arguments */
  const char *shows;     /* in the command line */
  const char *hides;     /* not in it, or NULL */
};

static const struct equivalence equivalences[] = {
  { { NULL }, { NULL }, "xres=2560,yres=1440,max_outputs=2", "virtio-multitouch-pci" },
  { { "-r", NULL }, { "-O", "network=tap", NULL }, "-netdev tap,id=hostnet0,ifname=cvd-mtap-01", "-netdev user" },
  { { "-u", NULL },
    { "-O", "vsock=vhost-user", NULL },
    "-device vhost-user-vsock-pci",
    "vhost-vsock-pci-non-transitional" },
  { { "-v", NULL }, { "-O", "gpu=virgl", NULL }, "-device vhost-user-gpu-pci", "-device virtio-gpu-pci" },
  { { "--mt", NULL }, { "-O", "touch=multitouch", NULL }, "-device virtio-multitouch-pci", "virtio-mouse-pci" },
  { { "-m", "PHONE", NULL }, { "-O", "mode=phone", NULL }, "xres=720,yres=1280", "max_outputs=2" },
  { { "--mode", "AUTO", NULL }, { NULL }, "xres=2560,yres=1440,max_outputs=2", NULL },
  { { "-r", "-u", "-v", "--mt", "--mode=phone", NULL },
    { "-O", "network=tap", "-O", "vsock=vhost-user", "-O", "gpu=virgl", "-O", "touch=multitouch", "-O", "mode=phone",
      NULL },
    "config_server",
    "virtio-mouse-pci" },
};

Test (startavm, each_option_is_the_profile_knob)
{
  struct fixture f = setup (true);
  const char *arch = host_arch ();
  for (size_t i = 0; i < sizeof equivalences / sizeof equivalences[0]; i++)
    {
      const struct equivalence *e = &equivalences[i];
      char *args[16];
      size_t n = 0;
      args[n++] = "--dry-run";
      args[n++] = "--caps";
      args[n++] = caps ("10.0", arch);
      for (size_t k = 0; e->flags[k]; k++)
        args[n++] = (char *) e->flags[k];
      args[n++] = f.cvd;
      args[n] = NULL;
      char *out = NULL, *err = NULL, *want = NULL, *werr = NULL;
      int r = start_avm (&f, args, &out, &err);
      cr_assert_eq (r, 0, "start-avm %s: exit %d\n%s", e->flags[0] ?: "", r, err);
      int wr = avm_reference (&f, arch, caps ("10.0", arch), (char *const *) e->knobs, &want, &werr);
      cr_assert_eq (wr, 0, "avm start: exit %d\n%s", wr, werr);
      cr_assert_str_eq (out, want, "start-avm %s differs from avm start %s", e->flags[0] ?: "(no option)",
                        e->knobs[1] ?: "(no option)");
      assert_contains (out, e->shows);
      if (e->hides)
        cr_assert_null (strstr (out, e->hides), "start-avm %s: unexpected \"%s\" in:\n%s", e->flags[0], e->hides, out);
      /* The images of the start-avm layout, with the Cuttlefish directory as ${images}.  */
      assert_contains (out, "/cvd/qemu/system.img,");
      assert_contains (out, "/cvd/qemu/bootloader");
      cr_assert_str_eq (err, werr);
      free (out);
      free (err);
      free (want);
      free (werr);
    }
  teardown (&f);
}

Test (startavm, mode_in_any_case)
{
  struct fixture f = setup (true);
  const char *c = caps ("7.2", host_arch ());
  char *ref = NULL, *err = NULL;
  char *phone[] = { "-n", "--caps", (char *) c, "-m", "PHONE", f.cvd, NULL };
  cr_assert_eq (start_avm (&f, phone, &ref, &err), 0, "%s", err);
  assert_contains (ref, "xres=720,yres=1280");
  const char *spellings[][2]
      = { { "-m", "phone" }, { "--mode", "Phone" }, { "--mode=pHoNe", NULL }, { "-mphone", NULL } };
  for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++)
    {
      char *args[8] = { "-n", "--caps", (char *) c };
      size_t n = 3;
      args[n++] = (char *) spellings[i][0];
      if (spellings[i][1])
        args[n++] = (char *) spellings[i][1];
      args[n++] = f.cvd;
      args[n] = NULL;
      char *out = NULL, *e = NULL;
      cr_assert_eq (start_avm (&f, args, &out, &e), 0, "%s: %s", spellings[i][0], e);
      cr_assert_str_eq (out, ref, "%s %s", spellings[i][0], spellings[i][1] ?: "");
      free (out);
      free (e);
    }
  free (ref);
  free (err);
  teardown (&f);
}

/* A recorded QEMU that also has the out-of-tree devices.  */
static char *
patched_caps (const struct fixture *f, const char *arch)
{
  json_error_t je;
  json_t *j = json_load_file (caps ("10.0", arch), 0, &je);
  cr_assert_not_null (j, "%s", je.text);
  json_t *devs = json_object_get (j, "devices");
  json_array_append_new (devs, json_string ("virtio-rotary-pci"));
  json_array_append_new (devs, json_string ("vhost-user-video-pci"));
  char *path = join (f->dir, "caps-patched.json");
  cr_assert_eq (json_dump_file (j, path, 0), 0);
  json_decref (j);
  return path;
}

Test (startavm, refused_as_avm_start_refuses)
{
  struct fixture f = setup (true);
  const char *arch = host_arch ();
  const struct
  {
    const char *version, *flag, *knob, *needle;
  } cases[] = {
    { "7.2", "--mt", "touch=multitouch", "needs virtio-multitouch-pci (virtio multitouch, for input.touch)" },
    { "7.2", "--rotary", "rotary=on", "needs virtio-rotary-pci" },
    { "7.2", "--video", "video=on", "needs vhost-user-video-pci (vhost-user video decoder, for video.model)" },
    { "10.0", "--rotary", "rotary=on", "(not in upstream QEMU); use --set input.rotary=false" },
    { "10.0", "--video", "video=on", "(not in upstream QEMU); use --set video.model=none" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      char *args[] = { "-n", "--caps", caps (cases[i].version, arch), (char *) cases[i].flag, f.cvd, NULL };
      char *knob[] = { "-O", (char *) cases[i].knob, NULL };
      char *out = NULL, *err = NULL, *wout = NULL, *werr = NULL;
      int r = start_avm (&f, args, &out, &err);
      int wr = avm_reference (&f, arch, caps (cases[i].version, arch), knob, &wout, &werr);
      cr_assert_eq (r, 2, "start-avm %s on QEMU %s: exit %d\n%s", cases[i].flag, cases[i].version, r, err);
      cr_assert_eq (r, wr, "start-avm %s: exit %d, avm start: %d", cases[i].flag, r, wr);
      assert_contains (err, cases[i].needle);
      cr_assert_str_eq (err, werr, "start-avm %s: not avm start's message", cases[i].flag);
      cr_assert_str_eq (out, "", "nothing on stdout when refused");
      free (out);
      free (err);
      free (wout);
      free (werr);
    }

  /* The same options on a QEMU that has the devices: the command line.  */
  char *patched = patched_caps (&f, arch);
  char *args[] = { "-n", "--caps", patched, "--rotary", "--video", f.cvd, NULL };
  char *knobs[] = { "-O", "rotary=on", "-O", "video=on", NULL };
  char *out = NULL, *err = NULL, *want = NULL, *werr = NULL;
  cr_assert_eq (start_avm (&f, args, &out, &err), 0, "%s", err);
  cr_assert_eq (avm_reference (&f, arch, patched, knobs, &want, &werr), 0, "%s", werr);
  cr_assert_str_eq (out, want);
  assert_contains (out, "-device virtio-rotary-pci,disable-legacy=on");
  assert_contains (out, "-chardev socket,id=video0-char,path=");
  assert_contains (out, "-device vhost-user-video-pci,chardev=video0-char,id=video0");
  assert_contains (out, "share=on");           /* vhost-user: shared guest RAM */
  assert_contains (out, "vhost-user-video\n"); /* its backend service, started before QEMU */
  free (out);
  free (err);
  free (want);
  free (werr);
  free (patched);
  teardown (&f);
}

Test (startavm, this_hosts_qemu_refuses_as_avm_start)
{
  /* No recorded capabilities: the QEMU of this machine decides, for both.  */
  struct fixture f = setup (true);
  const char *arch = host_arch ();
  const char *flags[][2] = { { "--mt", "touch=multitouch" }, { "--rotary", "rotary=on" }, { "--video", "video=on" } };
  for (size_t i = 0; i < 3; i++)
    {
      char *args[] = { "-n", (char *) flags[i][0], f.cvd, NULL };
      char *knob[] = { "-O", (char *) flags[i][1], NULL };
      char *out = NULL, *err = NULL, *wout = NULL, *werr = NULL;
      int r = start_avm (&f, args, &out, &err);
      int wr = avm_reference (&f, arch, NULL, knob, &wout, &werr);
      cr_assert_eq (r, wr, "start-avm %s: exit %d, avm start -O %s: exit %d\n%s\n%s", flags[i][0], r, flags[i][1], wr,
                    err, werr);
      cr_assert_str_eq (out, wout);
      cr_assert_str_eq (err, werr);
      /* No upstream QEMU has these two.  */
      if (i > 0)
        {
          cr_assert_eq (r, 2, "%s: exit %d\n%s", flags[i][0], r, err);
          assert_contains (err, "lacks (not in upstream QEMU)");
        }
      free (out);
      free (err);
      free (wout);
      free (werr);
    }
  teardown (&f);
}

static void
expect_usage (const struct fixture *f, char *const args[], const char *needle)
{
  char *out = NULL, *err = NULL;
  int r = start_avm (f, args, &out, &err);
  cr_assert_eq (r, 2, "start-avm %s: exit %d, want 2\n%s", args[0] ?: "", r, err);
  assert_contains (err, needle);
  cr_assert_eq (strncmp (err, "start-avm: ", 11), 0, "errors start with \"start-avm: \": %s", err);
  cr_assert_eq (count_lines (err), 1, "usage errors are one line:\n%s", err);
  cr_assert_str_eq (out, "");
  free (out);
  free (err);
}

Test (startavm, usage_errors)
{
  struct fixture f = setup (true);
  char *file = join (f.dir, "plain-file");
  free (tu_write (f.dir, "plain-file", ""));
  char *nodir = join (f.dir, "nonexistent");
  expect_usage (&f, (char *[]) { "--frobnicate", f.cvd, NULL }, "start-avm: unknown option '--frobnicate'");
  expect_usage (&f, (char *[]) { "-x", f.cvd, NULL }, "start-avm: unknown option '-x'");
  expect_usage (&f, (char *[]) { f.cvd, "-m", NULL }, "start-avm: option -m needs an argument");
  expect_usage (&f, (char *[]) { f.cvd, "--mode", NULL }, "start-avm: option --mode needs an argument");
  expect_usage (&f, (char *[]) { f.cvd, "-q", NULL }, "start-avm: option -q needs an argument");
  expect_usage (&f, (char *[]) { "-m", "tablet", f.cvd, NULL }, "-m/--mode tablet: expected PHONE or AUTO");
  expect_usage (&f, (char *[]) { NULL }, "missing the Cuttlefish directory");
  expect_usage (&f, (char *[]) { "-n", nodir, NULL }, "nonexistent: no such directory");
  expect_usage (&f, (char *[]) { "-n", file, NULL }, "plain-file: not a directory");
  expect_usage (&f, (char *[]) { f.cvd, "extra", NULL }, "unexpected argument \"extra\"");
  expect_usage (&f, (char *[]) { "--json", f.cvd, NULL }, "--json goes with --dry-run");
  expect_usage (&f, (char *[]) { "-q", nodir, f.cvd, NULL }, "nonexistent: not a directory");
  expect_usage (&f, (char *[]) { "-q", f.dir, f.cvd, NULL },
                "no executable qemu-system-x86_64 or qemu-system-aarch64 in it");
  free (file);
  free (nodir);
  teardown (&f);
}

static void
fake_qemu (const char *dir, const char *name)
{
  char *p = tu_write (dir, name, "#!/bin/sh\nexit 1\n");
  cr_assert_eq (chmod (p, 0755), 0);
  free (p);
}

Test (startavm, qemu_build_dir)
{
  struct fixture f = setup (true);
  const char *arch = host_arch ();
  char *build = join (f.dir, "qemu-build"), *bin = NULL, *gpu_dir = join (build, "contrib/vhost-user-gpu");
  cr_assert_geq (asprintf (&bin, "qemu-system-%s", arch), 0);
  make_dirs (gpu_dir);
  fake_qemu (build, bin);
  fake_qemu (gpu_dir, "vhost-user-gpu");
  char *bin_path = join (build, bin), *gpu_path = join (gpu_dir, "vhost-user-gpu");

  /* The build's QEMU (its capabilities recorded) and, with -v, its vhost-user-gpu.  */
  char *args[] = { "-n", "--json", "--caps", caps ("10.0", arch), "-v", "-q", build, f.cvd, NULL };
  char *out = NULL, *err = NULL;
  cr_assert_eq (start_avm (&f, args, &out, &err), 0, "%s", err);
  json_error_t je;
  json_t *plan = json_loads (out, 0, &je);
  cr_assert_not_null (plan, "%s", je.text);
  cr_assert_str_eq (json_string_value (json_object_get (plan, "profile")), profile_for (arch));
  json_t *argv = json_object_get (json_object_get (plan, "qemu"), "argv");
  cr_assert_str_eq (json_string_value (json_array_get (argv, 0)), bin_path);
  size_t i;
  json_t *s;
  int found = 0;
  json_array_foreach (json_object_get (plan, "services"), i, s)
    if (strcmp (json_string_value (json_object_get (s, "name")), "vhost-user-gpu") == 0)
      {
        cr_assert_str_eq (json_string_value (json_array_get (json_object_get (s, "argv"), 0)), gpu_path);
        found++;
      }
  cr_assert_eq (found, 1, "no vhost-user-gpu service in the plan");
  json_decref (plan);
  free (out);
  free (err);

  /* A build of the other architecture only: its profile.  */
  char *other = join (f.dir, "qemu-other"), *obin = NULL;
  cr_assert_geq (asprintf (&obin, "qemu-system-%s", other_arch ()), 0);
  make_dirs (other);
  fake_qemu (other, obin);
  char *oargs[] = { "-n", "--caps", caps ("10.0", other_arch ()), "-q", other, f.cvd, NULL };
  cr_assert_eq (start_avm (&f, oargs, &out, &err), 0, "%s", err);
  char header[128];
  snprintf (header, sizeof header, "dry run: profile %s, instance 1", profile_for (other_arch ()));
  assert_contains (out, header);
  assert_contains (out, obin);
  free (out);
  free (err);
  free (other);
  free (obin);
  free (build);
  free (bin);
  free (gpu_dir);
  free (bin_path);
  free (gpu_path);
  teardown (&f);
}

Test (startavm, image_layouts)
{
  /* Images straight in the Cuttlefish directory (no qemu/): --images only.  */
  struct fixture f = setup (false);
  const char *arch = host_arch ();
  char *args[] = { "-n", "--caps", caps ("10.0", arch), f.cvd, NULL };
  char *out = NULL, *err = NULL, *want = NULL, *werr = NULL;
  cr_assert_eq (start_avm (&f, args, &out, &err), 0, "%s", err);
  char *ref[]
      = { "start", "-n", "--caps", caps ("10.0", arch), "-p", (char *) profile_for (arch), "--images", f.cvd, NULL };
  cr_assert_eq (tu_avmv (ref, &want, &werr), 0, "%s", werr);
  cr_assert_str_eq (out, want);
  free (out);
  free (err);
  free (want);
  free (werr);

  /* qemu/ from slp's cvd2img (no bootloader, no avb_key.pem): the host
     package's bootloader and test key, as start_avm.sh used them.  */
  touch (f.qemu, "system.img");
  char *bl = NULL;
  cr_assert_geq (asprintf (&bl, "etc/bootloader_%s/bootloader.qemu", arch), 0);
  touch (f.cvd, bl);
  touch (f.cvd, "etc/cvd_avb_testkey_rsa4096.pem");
  char *dargs[] = { "-d", "-n", "--json", "--caps", caps ("10.0", arch), f.cvd, NULL };
  cr_assert_eq (start_avm (&f, dargs, &out, &err), 0, "%s", err);
  json_t *plan = json_loads (out, 0, NULL);
  cr_assert_not_null (plan);
  cr_assert_eq (json_array_size (json_object_get (plan, "missing_files")), 0, "%s", out);
  char *want_bl = join (f.cvd, bl), *want_key = join (f.cvd, "etc/cvd_avb_testkey_rsa4096.pem");
  assert_contains (out, want_bl);
  assert_contains (out, want_key);
  /* -d: the equivalent avm command first.  */
  char line[4096];
  snprintf (line, sizeof line,
            "start-avm: avm start --dry-run -p %s --set 'disks[0].path=%s/system.img' --set "
            "'disks[1].key=%s' --set firmware.bios=%s",
            profile_for (arch), f.qemu, want_key, want_bl);
  assert_contains (err, line);
  json_decref (plan);
  free (out);
  free (err);
  free (bl);
  free (want_bl);
  free (want_key);
  teardown (&f);
}

Test (startavm, debug_names_the_equivalent_command)
{
  struct fixture f = setup (true);
  const char *arch = host_arch ();
  char *args[] = { "-d", "-n", "--caps", caps ("10.0", arch), "-u", "--mt", f.cvd, NULL };
  char *plain[] = { "-n", "--caps", caps ("10.0", arch), "-u", "--mt", f.cvd, NULL };
  char *out = NULL, *err = NULL, *pout = NULL, *perr = NULL;
  cr_assert_eq (start_avm (&f, args, &out, &err), 0, "%s", err);
  cr_assert_eq (start_avm (&f, plain, &pout, &perr), 0, "%s", perr);
  cr_assert_str_eq (out, pout, "-d changes only stderr");
  char want[256];
  snprintf (want, sizeof want, "start-avm: avm start --dry-run -p %s -O vsock=vhost-user -O touch=multitouch --set ",
            profile_for (arch));
  assert_contains (err, want);
  cr_assert_null (strstr (perr, "start-avm: avm start"));
  free (out);
  free (err);
  free (pout);
  free (perr);
  teardown (&f);
}

/* Long options ("--xyz") in TEXT, each once, joined by spaces.  */
static char *
long_options (const char *text)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream (&buf, &len);
  for (const char *p = strstr (text, "--"); p; p = strstr (p + 2, "--"))
    {
      if (p > text && (p[-1] != ' ' && p[-1] != '\n' && p[-1] != '(' && p[-1] != '`'))
        continue;
      size_t n = 2;
      while (p[n] == '-' || (p[n] >= 'a' && p[n] <= 'z'))
        n++;
      if (n <= 2)
        continue;
      fprintf (m, " %.*s", (int) n, p);
    }
  fclose (m);
  return buf;
}

Test (startavm, help_and_man_page)
{
  struct fixture f = setup (true);
  char *out = NULL, *err = NULL;
  cr_assert_eq (start_avm (&f, (char *[]) { "--help", NULL }, &out, &err), 0);
  assert_contains (out, "Usage: start-avm [OPTIONS] ANDROID_BASE_DIR");
  for (const char *opt[]
       = { "  -r ", "  -u ", "  -v ", "  -d ", "--mt ", "--video ", "--rotary ", "-m, --mode PHONE|AUTO",
           "-q, --qemu DIR", "-n, --dry-run", "--json", "--caps FILE", "-h, --help", NULL },
       **o = opt;
       *o; o++)
    assert_contains (out, *o);
  /* Which options are refused here, and why.  */
  assert_contains (out, "--mt needs QEMU 8.1");
  assert_contains (out, "out-of-tree QEMU builds");

  /* The page: mandoc-clean, and its OPTIONS are those of --help.  */
  char *page = join (tu_srcdir (), "man/start-avm.1");
  char *lint_out = NULL, *lint_err = NULL;
  int r = tu_run ((char *[]) { "mandoc", "-Tlint", "-Wwarning", page, NULL }, NULL, &lint_out, &lint_err);
  cr_assert_eq (r, 0, "mandoc -Tlint %s: exit %d\n%s%s", page, r, lint_out, lint_err);
  char *text = NULL, *rerr = NULL;
  r = tu_run ((char *[]) { "mandoc", "-Tascii", "-Owidth=200", page, NULL }, (char *[]) { "MANWIDTH=200", NULL }, &text,
              &rerr);
  cr_assert_eq (r, 0, "%s", rerr);
  /* Strip the backspace overstriking of -Tascii.  */
  char *w = text;
  for (char *p = text; *p; p++)
    if (p[1] == '\b' && p[2])
      continue;
    else if (*p == '\b')
      continue;
    else
      *w++ = *p;
  *w = '\0';
  char *in_help = long_options (out);
  char *tok, *save = NULL;
  for (tok = strtok_r (in_help, " ", &save); tok; tok = strtok_r (NULL, " ", &save))
    assert_contains (text, tok);
  for (const char *must[] = { "-r", "-u", "-v", "-d", "PHONE", "AUTO", "avm-start", "aaos-x86_64", NULL }, **m = must;
       *m; m++)
    assert_contains (text, *m);
  /* And avm(1) refers to it.  */
  char *avm1_path = join (tu_srcdir (), "man/avm.1");
  char *avm1 = tu_read (avm1_path);
  cr_assert_not_null (avm1);
  free (avm1_path);
  assert_contains (avm1, ".BR start\\-avm (1)");
  free (avm1);
  free (in_help);
  free (text);
  free (rerr);
  free (lint_out);
  free (lint_err);
  free (page);
  free (out);
  free (err);
  teardown (&f);
}
