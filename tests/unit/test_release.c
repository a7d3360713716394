/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Telling the Android release of a Cuttlefish image set (issue 14): the
 * decision table of cuttlefish/release.h against the markers each AOSP
 * branch ships (shared/auto/android-info.txt, build/Android.bp, the boot
 * image's os_version), and the profile option it chooses, through the
 * CLI: the dry run's header, avm check, an explicit --option, a host
 * package older than the images.
 */
#include "cuttlefish/release.h"
#include "testutil.h"
#include "util/cleanup.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define assert_contains(hay, needle) cr_assert (strstr ((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))

/* android-info.txt of shared/auto per branch (device/google/cuttlefish).  */
static const char info_a14[] = "require board=cutf\nconfig=auto\n";
static const char info_a14q2[] = "config=auto\ngfxstream=supported\n";
static const char info_a15q2[] = "config=auto\ngfxstream=supported\ngfxstream_gl_program_binary_link_status=supported\n"
                                 "vhost_user_vsock=true\n";
static const char info_a16[] = "config=auto\ngfxstream=supported\ngfxstream_gl_program_binary_link_status=supported\n"
                               "vhost_user_vsock=true\noutput_audio_streams_count=6\n";

static const char *
decide (struct avm_cf_facts *f, struct avm_cf_release *r)
{
  avm_cf_release_decide (f, r);
  return r->release ? r->release : "(none)";
}

Test (release, android_info_markers)
{
  struct avm_cf_facts f = { 0 };
  struct avm_cf_release r;
  f.android_info = (char *) info_a14;
  cr_assert_str_eq (decide (&f, &r), "android14");
  cr_assert_str_eq (r.source, "android-info.txt");
  f.android_info = (char *) info_a16;
  cr_assert_str_eq (decide (&f, &r), "android16");
  assert_contains (r.evidence, "output_audio_streams_count=6");
  f.android_info = (char *) info_a15q2;
  cr_assert_str_eq (decide (&f, &r), "android15-qpr2");
  /* gfxstream alone: the boot image's os_version tells 14 from 15 ...  */
  f.android_info = (char *) info_a14q2;
  f.boot_os_major = 14;
  cr_assert_str_eq (decide (&f, &r), "android14-qpr2");
  f.boot_os_major = 15;
  cr_assert_str_eq (decide (&f, &r), "android15");
  assert_contains (r.evidence, "boot.img os_version 15");
  /* ... else the host package.  */
  f.boot_os_major = 0;
  cr_assert_str_eq (decide (&f, &r), "android14-qpr2");
  f.hostpkg = f.vhal_proxy_server = f.secure_env = true;
  cr_assert_str_eq (decide (&f, &r), "android15");
  /* Whitespace and CRLF do not matter; a key inside a value does not count.  */
  f = (struct avm_cf_facts) { .android_info = (char *) "config=auto\r\n  vhost_user_vsock=true  \r\n" };
  cr_assert_str_eq (decide (&f, &r), "android15-qpr2");
  f.android_info = (char *) "config=auto\nnote=vhost_user_vsock=true\n";
  cr_assert_str_eq (decide (&f, &r), "android14");
  /* Not automotive images: still decided, with a warning.  */
  f.android_info = (char *) "config=phone\ngfxstream=supported\n";
  f.boot_os_major = 15;
  cr_assert_str_eq (decide (&f, &r), "android15");
  assert_contains (r.warning, "config=phone");
}

Test (release, host_package_alone_and_older_than_the_images)
{
  struct avm_cf_facts f = { .hostpkg = true, .secure_env = true };
  struct avm_cf_release r;
  cr_assert_str_eq (decide (&f, &r), "android14");
  cr_assert_str_eq (r.source, "host package");
  f.vhost_device_vsock = true;
  cr_assert_str_eq (decide (&f, &r), "android14-qpr2");
  f.vhal_proxy_server = true;
  cr_assert_str_eq (decide (&f, &r), "android15");
  f.vhalconfig = true;
  cr_assert_str_eq (decide (&f, &r), "android15-qpr2");
  f.sensors_simulator = true;
  cr_assert_str_eq (decide (&f, &r), "android16");
  cr_assert_str_eq (r.evidence, "bin/sensors_simulator");
  cr_assert_str_eq (r.warning, "");
  /* android16 images, an android15 host package: decided by the images,
     with a warning naming what is missing.  */
  f.sensors_simulator = f.vhalconfig = false;
  f.android_info = (char *) info_a16;
  cr_assert_str_eq (decide (&f, &r), "android16");
  assert_contains (r.warning, "host package is older than the android16 images");
  assert_contains (r.warning, "android15");
  /* Nothing at all.  */
  f = (struct avm_cf_facts) { 0 };
  cr_assert_str_eq (decide (&f, &r), "(none)");
}

Test (release, manifest_wins)
{
  struct avm_cf_facts f = { .android_info = (char *) info_a16,
                            .manifest_release = (char *) "android14",
                            .manifest_evidence = (char *) "android-info.txt: none" };
  struct avm_cf_release r;
  cr_assert_str_eq (decide (&f, &r), "android14");
  cr_assert_str_eq (r.source, "manifest.json");
  /* A name avm does not know is ignored.  */
  f.manifest_release = (char *) "android99";
  cr_assert_str_eq (decide (&f, &r), "android16");
}

Test (release, boot_image_header)
{
  unsigned char h[48] = "ANDROID!";
  /* header version 4: os_version at 16; 15.0.0, patch 2025-03.  */
  uint32_t os = (15u << 25) | ((2025 - 2000) << 4) | 3;
  h[40] = 4;
  memcpy (h + 16, &os, 4);
  cr_assert_eq (avm_cf_boot_os_major (h, sizeof h), 15);
  /* header version 2: at 44.  */
  memset (h + 16, 0, 4);
  h[40] = 2;
  os = 14u << 25;
  memcpy (h + 44, &os, 4);
  cr_assert_eq (avm_cf_boot_os_major (h, sizeof h), 14);
  cr_assert_eq (avm_cf_boot_os_major (h, 20), 0);
  h[0] = 'X';
  cr_assert_eq (avm_cf_boot_os_major (h, sizeof h), 0);
}

/* ---- through the CLI ---------------------------------------------------- */

static char *
images_with (const char *info, const char *const bins[])
{
  char *dir = tu_tmpdir ();
  if (info)
    free (tu_write (dir, "android-info.txt", info));
  for (size_t i = 0; bins && bins[i]; i++)
    {
      char *bin = NULL;
      cr_assert_geq (asprintf (&bin, "%s/bin", dir), 0);
      mkdir (bin, 0755);
      free (bin);
      char *p = tu_write (dir, bins[i], "");
      chmod (p, 0755);
      free (p);
    }
  return dir;
}

static char *
dry_run (const char *images, const char *extra, char **err, int *rc)
{
  char *caps = NULL;
  cr_assert_geq (asprintf (&caps, "%s/tests/data/caps-qemu-10.0-x86_64.json", tu_srcdir ()), 0);
  char *args[] = { "start",
                   "-n",
                   "-p",
                   "aaos-x86_64",
                   "--caps",
                   caps,
                   "--images",
                   (char *) images,
                   "--set",
                   "machine.accel=tcg",
                   extra ? "-O" : NULL,
                   (char *) extra,
                   NULL };
  char *out = NULL;
  *rc = tu_avmv (args, &out, err);
  free (caps);
  return out;
}

Test (release, dry_run_header_and_plan)
{
  static const struct
  {
    const char *info, *line, *consoles;
  } cases[] = {
    { info_a14, "# release android14 (android-info.txt: none of gfxstream", "virtio-serial11.0" },
    { info_a15q2, "# release android15-qpr2 (android-info.txt: vhost_user_vsock=true)", "hvc15,name=mcu_uart" },
    { info_a16, "# release android16 (android-info.txt: output_audio_streams_count=6)", "hvc16,name=ti50" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      char *dir = images_with (cases[i].info, NULL), *err = NULL;
      int rc;
      char *out = dry_run (dir, NULL, &err, &rc);
      cr_assert_eq (rc, 0, "%s", err);
      assert_contains (out, cases[i].line);
      assert_contains (out, cases[i].consoles);
      free (out);
      free (err);
      tu_rmtree (dir);
      free (dir);
    }
  /* --option wins over the images, and says so.  */
  char *dir = images_with (info_a16, NULL), *err = NULL;
  int rc;
  char *out = dry_run (dir, "release=android14", &err, &rc);
  cr_assert_eq (rc, 0, "%s", err);
  assert_contains (out, "# release android14 (--option: chosen)");
  assert_contains (out, "virtio-serial11.0");
  free (out);
  free (err);
  /* Nothing tells: the default, said as such.  */
  char *empty = images_with (NULL, NULL);
  out = dry_run (empty, NULL, &err, &rc);
  assert_contains (out, "# release android16 (the profile's default: the images directory tells nothing)");
  free (out);
  free (err);
  tu_rmtree (empty);
  free (empty);
  tu_rmtree (dir);
  free (dir);
}

Test (release, older_host_package_warned_and_its_missing_helpers_skipped)
{
  const char *const bins[] = { "bin/kernel_log_monitor", "bin/secure_env", "bin/vhal_proxy_server", NULL };
  char *dir = images_with (info_a16, bins), *err = NULL;
  int rc;
  char *out = dry_run (dir, NULL, &err, &rc);
  cr_assert_eq (rc, 0, "%s", err);
  assert_contains (out, "# WARNING: the host package is older than the android16 images");
  assert_contains (out, "# skipped:");
  assert_contains (out, "sensors_simulator (program sensors_simulator is not installed)");
  free (out);
  free (err);
  /* avm check says it too.  */
  char *args[] = { "check", "-p", "aaos-x86_64", "--images", dir, "--set", "machine.accel=tcg", NULL };
  tu_avmv (args, &out, &err);
  assert_contains (out, "warn  release");
  assert_contains (out, "host package is older than the android16 images");
  assert_contains (out, "helper:sensors_simulator");
  free (out);
  free (err);
  tu_rmtree (dir);
  free (dir);
}

Test (release, unknown_release_in_a_profile_without_that_choice)
{
  /* A profile of one's own whose release option lacks the detected one.  */
  char *dir = images_with (info_a16, NULL);
  char *prof = tu_write (dir, "mine.json",
                         "{ \"extends\": \"aaos-x86_64\", \"options\": { \"release\": { \"choices\": {"
                         " \"android16\": null } } } }");
  char *args[] = { "start", "-n", "-p", prof, "--images", dir, NULL };
  char *out = NULL, *err = NULL;
  cr_assert_eq (tu_avmv (args, &out, &err), 2, "%s", err);
  assert_contains (err, "options.release: the images are android16 (output_audio_streams_count=6), which this "
                        "profile has no choice for; pass --option release=CHOICE");
  free (out);
  free (err);
  free (prof);
  tu_rmtree (dir);
  free (dir);
}

/* ---- the flags a helper accepts (cuttlefish/flags.h) ---------------------- */

#include "cuttlefish/flags.h"
#include "util/strv.h"

/* A stand-in answering --helpxml the way gflags does (a script: the test
   double of the real tools is avm-fakecf).  */
static char *
gflags_script (const char *dir, const char *name, const char *flags_xml)
{
  char *text = NULL;
  cr_assert_geq (asprintf (&text,
                           "#!/bin/sh\n"
                           "echo run >> \"$0.runs\"\n"
                           "[ \"$1\" = --helpxml ] || exit 0\n"
                           "cat <<'XML'\n"
                           "<?xml version=\"1.0\"?>\n<AllFlags>\n<program>%s</program>\n"
                           "<usage>Warning: SetUsageMessage() never called</usage>\n%s"
                           "<flag><file>gflags.cc</file><name>undefok</name><meaning>x</meaning><default></default>"
                           "<current></current><type>string</type></flag>\n"
                           "</AllFlags>\nXML\nexit 1\n",
                           name, flags_xml),
                 0);
  char *p = tu_write (dir, name, text);
  chmod (p, 0755);
  free (text);
  return p;
}

static int
count_runs (const char *program)
{
  char *runs = NULL;
  cr_assert_geq (asprintf (&runs, "%s.runs", program), 0);
  char *t = tu_read (runs);
  int n = 0;
  for (char *p = t; p && (p = strstr (p, "run")); p++)
    n++;
  free (t);
  free (runs);
  return n;
}

Test (release, helper_flags_probed_once_and_checked)
{
  char *dir = tu_tmpdir ();
  setenv ("XDG_CACHE_HOME", dir, 1);
  char *prog = gflags_script (dir, "secure_env",
                              "<flag><file>a.cc</file><name>keymint_impl</name><meaning>m</meaning><default>tpm"
                              "</default><current>tpm</current><type>string</type></flag>\n"
                              "<flag><file>a.cc</file><name>confui_server_fd</name><meaning>m</meaning><default>-1"
                              "</default><current>-1</current><type>int32</type></flag>\n"
                              "<flag><file>a.cc</file><name>verbose</name><meaning>m</meaning><default>false"
                              "</default><current>false</current><type>bool</type></flag>\n");
  char **flags = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  cr_assert_eq (avm_cf_gflags_cached (prog, &flags), 0);
  cr_assert_eq (avm_cf_gflags_probe (prog, NULL, &flags, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (avm_strv_length (flags), 4);
  cr_assert_str_eq (flags[0], "confui_server_fd");
  avm_strv_free (flags);
  /* The second time from the cache: the program is not run.  */
  cr_assert_eq (avm_cf_gflags_cached (prog, &flags), 1);
  cr_assert_eq (count_runs (prog), 1);
  const char *argv[] = { "secure_env",
                         "-confui_server_fd=3",
                         "--keymint_impl=tpm",
                         "-noverbose",
                         "-snapshot_control_fd=4",
                         "-oemlock_impl=tpm",
                         "positional",
                         NULL };
  char *unknown = avm_cf_gflags_unknown (flags, argv);
  cr_assert_str_eq (unknown, "-snapshot_control_fd, -oemlock_impl");
  free (unknown);
  const char *excused[] = { "secure_env", "-snapshot_control_fd=4", "-oemlock_impl=tpm",
                            "--undefok=snapshot_control_fd,oemlock_impl", NULL };
  unknown = avm_cf_gflags_unknown (flags, excused);
  cr_assert_str_eq (unknown, "");
  free (unknown);
  avm_strv_free (flags);
  /* A changed program is asked again.  */
  free (gflags_script (dir, "secure_env", ""));
  cr_assert_eq (avm_cf_gflags_cached (prog, &flags), 0);
  cr_assert_eq (avm_cf_gflags_probe (prog, NULL, &flags, &err), 0);
  cr_assert_eq (avm_strv_length (flags), 1);
  avm_strv_free (flags);
  /* Not gflags: nothing to check, remembered as such.  */
  char *plain = tu_write (dir, "plain", "#!/bin/sh\necho hello\n");
  chmod (plain, 0755);
  cr_assert_eq (avm_cf_gflags_probe (plain, NULL, &flags, &err), 0);
  cr_assert_null (flags);
  cr_assert_eq (avm_cf_gflags_cached (plain, &flags), 1);
  cr_assert_null (flags);
  /* The probe environment: a configuration the tools can read.  */
  struct avm_cf_probe_env pe;
  cr_assert_eq (avm_cf_probe_env_make (&pe, 3, &err), 0, "%s", err ? err->msg : "");
  char *logs = NULL;
  cr_assert_geq (asprintf (&logs, "%s/instances/cvd-3/logs", pe.root), 0);
  cr_assert_eq (access (logs, W_OK), 0);
  bool conf = false, inst = false;
  for (char **e = pe.envp; *e; e++)
    {
      conf |= strncmp (*e, "CUTTLEFISH_CONFIG_FILE=", 23) == 0 && access (*e + 23, R_OK) == 0;
      inst |= strcmp (*e, "CUTTLEFISH_INSTANCE=3") == 0;
    }
  cr_assert (conf && inst);
  char *root = strdup (pe.root);
  avm_cf_probe_env_clear (&pe);
  cr_assert_eq (access (root, F_OK), -1, "%s left behind", root);
  free (root);
  free (logs);
  unsetenv ("XDG_CACHE_HOME");
  free (plain);
  free (prog);
  tu_rmtree (dir);
  free (dir);
}
