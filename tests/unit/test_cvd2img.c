/* SPDX-License-Identifier: Apache-2.0 */
/*
 * avm cvd2img end to end, on image sets made by the real tools: boot images
 * by mkbootimg, sparse super/userdata by img2simg, keys by openssl, the
 * image zip by zip and the host package by tar; hostile archives by
 * libarchive's writer.  The outputs are checked with independent tools
 * (simg2img, sgdisk --verify, sfdisk --json, the OpenSSL command line, zlib)
 * and with the library's readers (GPT, AVB verifier, U-Boot env).
 *
 * The fixture (cvdfixture.h) is generated once per run, on first use,
 * shared with the tour suite.  Tests never modify it: image sets with a
 * broken file are hard-link clones in which that one file is replaced.
 *
 * The suite's tests are split by concern: successful conversions here;
 * failures in test_cvd2img_failures.c; the slp/cvd2img compatibility and
 * the progress display in test_cvd2img_cli.c; the output set replaced
 * whole in test_cvd2img_commit.c; the host package's tree in
 * test_cvd2img_hosttree.c.  What they share is in cvd2imgutil.h.
 */
#include "cvd2imgutil.h"

TestSuite (cvd2img, .init = setup, .fini = teardown);

Test (cvd2img, directory)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out"), *bl = fx_path ("cvd/" BL_X86);
  struct ctx c;
  struct snap s;
  struct result r;
  ctx_init (&c, cvd, "x86_64", bl);
  snap_take (&s, (const char *[]) { cvd, NULL });
  seed_outputs (out); /* an earlier run's outputs are replaced */
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  snap_check (&s);
  check_all (&c, out, &r);
  assert_line (r.bc, "androidboot.ddr_size=4915MB", "properties.img");
  assert_line (r.bc, "androidboot.lcd_density=320", "properties.img");
  assert_line (r.bc_virgl, "androidboot.ddr_size=4915MB", "properties_virgl.img");
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (r.manifest, "input"), "dir")), cvd);
  result_free (&r);
  ctx_free (&c);
}

/* Do files A and B hold the same bytes?  */
static bool
same_bytes (const char *a, const char *b)
{
  size_t la, lb;
  _cleanup_free_ uint8_t *da = fx_read_bin (a, &la), *db = fx_read_bin (b, &lb);
  return la == lb && memcmp (da, db, la) == 0;
}

/* The disk GUID in the primary GPT header of DISK.  */
static void
disk_guid (const char *disk, uint8_t guid[16])
{
  int fd = open (disk, O_RDONLY | O_CLOEXEC);
  cr_assert (fd >= 0 && pread (fd, guid, 16, 512 + 56) == 16, "%s: %s", disk, strerror (errno));
  close (fd);
}

/* --seed: the same inputs and seed give byte-identical disks, wherever
   they are written (issue 15: GUIDs and AVB salts were always random),
   and a manifest that differs only in the paths it records.  Another
   seed, or none, gives other GUIDs; the image zip and host package of the
   same images give the same disks as their directory.  */
Test (cvd2img, seed_reproducible)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *zip = fx_path ("img.zip"), *host = fx_path ("host.tar.gz");
  _cleanup_free_ char *o1 = tpath ("one"), *o2 = tpath ("two/deeper"), *o3 = tpath ("random"), *o4 = tpath ("other");
  _cleanup_free_ char *o5 = tpath ("zip");
  avm_ok ((char *[]) { "cvd2img", "--seed", "build-42", "-o", o1, cvd, NULL });
  avm_ok ((char *[]) { "cvd2img", "--seed", "build-42", "-o", o2, cvd, NULL });
  avm_ok ((char *[]) { "cvd2img", "-o", o3, cvd, NULL });
  avm_ok ((char *[]) { "cvd2img", "--seed", "build-43", "-o", o4, cvd, NULL });
  avm_ok ((char *[]) { "cvd2img", "--seed", "build-42", "-o", o5, zip, host, NULL });
  static const char *const files[]
      = { "system.img", "properties.img", "properties_virgl.img", "bootloader", "avb_key.pem", "android-info.txt" };
  for (size_t i = 0; i < ARRAY_SIZE (files); i++)
    {
      _cleanup_free_ char *a = fx_join (o1, files[i]), *b = fx_join (o2, files[i]), *z = fx_join (o5, files[i]);
      cr_assert (same_bytes (a, b), "--seed: %s and %s differ", a, b);
      if (i < 3)
        cr_assert (same_bytes (a, z), "--seed: %s and %s (from the zip) differ", a, z);
    }
  /* the manifest: only the output directory's path differs */
  _cleanup_free_ char *m1 = fx_join (o1, "manifest.json"), *m2 = fx_join (o2, "manifest.json");
  _cleanup_free_ char *t1 = tu_read (m1), *t2 = tu_read (m2);
  struct avm_strbuf b = { 0 };
  for (const char *p = t1; *p;)
    if (strncmp (p, o1, strlen (o1)) == 0)
      {
        avm_strbuf_adds (&b, o2);
        p += strlen (o1);
      }
    else
      avm_strbuf_add (&b, p++, 1);
  _cleanup_free_ char *t1moved = avm_strbuf_steal (&b);
  cr_assert_str_eq (t1moved, t2, "the manifests differ in more than their paths");
  /* the disks verify (the salts are derived, the signatures as ever) */
  for (size_t i = 0; i < 3; i++)
    {
      _cleanup_free_ char *a = fx_join (o1, files[i]);
      char *o = NULL, *e = NULL;
      int rc = tu_avmv ((char *[]) { "inspect", a, NULL }, &o, &e);
      cr_assert_eq (rc, 0, "inspect %s: exit %d\n%s%s", a, rc, o, e);
      free (o);
      free (e);
    }
  /* without --seed, or with another, the GUIDs are others */
  for (size_t i = 0; i < 3; i++)
    {
      _cleanup_free_ char *a = fx_join (o1, files[i]), *r = fx_join (o3, files[i]), *s = fx_join (o4, files[i]);
      uint8_t ga[16], gr[16], gs[16];
      disk_guid (a, ga);
      disk_guid (r, gr);
      disk_guid (s, gs);
      cr_assert (memcmp (ga, gr, 16) != 0, "%s: the same GUID without --seed", files[i]);
      cr_assert (memcmp (ga, gs, 16) != 0, "%s: the same GUID with another seed", files[i]);
      cr_assert_eq (ga[7] >> 4, 4, "%s: not a version 4 GUID", files[i]);
    }
}

static void
zip_case (const char *zipname, bool deflated, bool reversed)
{
  _cleanup_free_ char *zip = fx_path (zipname), *host = fx_path ("host.tar.gz"), *cvd = fx_path ("cvd");
  _cleanup_free_ char *out = tpath ("out"), *outd = tpath ("out-dir"), *bl = fx_path ("cvd/" BL_X86);
  /* The fixture has the kind of zip the test is about.  */
  _cleanup_free_ char *listing = fx_run_ok ((char *[]) { "unzip", "-v", zip, NULL }, NULL);
  if (deflated)
    {
      /* the sparse images are read through inflate */
      for (const char *l = listing; (l = strstr (l, "Defl:")); l++)
        {
          const char *eol = strchr (l, '\n');
          if (eol && eol - l > 10 && (!strncmp (eol - 9, "super.img", 9) || !strncmp (eol - 12, "userdata.img", 12)))
            deflated = false; /* found one */
        }
      cr_assert (!deflated, "fixture: no sparse image deflated in %s\n%s", zip, listing);
    }
  else
    cr_assert_null (strstr (listing, "Defl:"), "fixture: %s is not stored\n%s", zip, listing);

  struct ctx c;
  struct snap s;
  struct result r, rd;
  ctx_init (&c, cvd, "x86_64", bl);
  snap_take (&s, (const char *[]) { zip, host, NULL });
  if (reversed)
    avm_ok ((char *[]) { "cvd2img", "-o", out, host, zip, NULL });
  else
    avm_ok ((char *[]) { "cvd2img", "-o", out, zip, host, NULL });
  snap_check (&s);
  check_all (&c, out, &r);
  json_t *in = json_object_get (r.manifest, "input");
  cr_assert_str_eq (json_string_value (json_object_get (in, "zip")), zip);
  cr_assert_str_eq (json_string_value (json_object_get (in, "host_package")), host);

  /* The same set as a directory gives the same contents.  */
  avm_ok ((char *[]) { "cvd2img", "-o", outd, cvd, NULL });
  check_all (&c, outd, &rd);
  check_same_contents (&r, out, &rd, outd);
  result_free (&r);
  result_free (&rd);
  ctx_free (&c);
}

Test (cvd2img, zip_deflated) { zip_case ("img.zip", true, false); }

/* zip -0, and the tarball given first.  */
Test (cvd2img, zip_stored) { zip_case ("img-stored.zip", false, true); }

Test (cvd2img, optional_absent)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out"), *man = tpath ("out/manifest.json");
  _cleanup_free_ char *sys = tpath ("out/system.img");
  avm_ok ((char *[]) { "cvd2img", "-q", "-o", out, cvd, NULL });
  struct disk d;
  sfdisk_read (sys, &d);
  cr_assert_eq (d.n, 12, "%zu partitions", d.n);
  for (size_t i = 0; i < d.n; i++)
    cr_assert (!strstr (d.p[i].name, "init_boot") && !strstr (d.p[i].name, "dlkm"), "%s: unexpected partition %s", sys,
               d.p[i].name);
  _cleanup_free_ char *text = tu_read (man);
  cr_assert_null (strstr (text, "init_boot"));
  cr_assert_null (strstr (text, "dlkm"));
}

Test (cvd2img, optional_present)
{
  _cleanup_free_ char *cvd = fx_path ("cvd-opt"), *zip = fx_path ("img-opt.zip"), *host = fx_path ("host.tar.gz");
  _cleanup_free_ char *out = tpath ("out"), *outz = tpath ("outz"), *bl = fx_path ("cvd/" BL_X86);
  struct ctx c;
  struct result r, rz;
  ctx_init (&c, cvd, "x86_64", bl);
  c.optional = true;
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  check_all (&c, out, &r);
  cr_assert_eq (r.sys.n, 18);
  avm_ok ((char *[]) { "cvd2img", "-o", outz, zip, host, NULL });
  check_all (&c, outz, &rz);
  check_same_contents (&r, out, &rz, outz);
  result_free (&r);
  result_free (&rz);
  ctx_free (&c);
}

/* Profile options and --set reach the bootconfig of both disks.  */
Test (cvd2img, profile_options)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out"), *bl = fx_path ("cvd/" BL_X86);
  struct ctx c;
  struct result r;
  ctx_init (&c, cvd, "x86_64", bl);
  avm_ok ((char *[]) { "cvd2img", "-o", out, "-O", "mode=phone", "--set", "machine.memory=8G", "--set",
                       "display.outputs[0].dpi=213", cvd, NULL });
  check_all (&c, out, &r);
  for (int v = 0; v < 2; v++)
    {
      const char *bc = v ? r.bc_virgl : r.bc, *what = v ? "properties_virgl.img" : "properties.img";
      assert_line (bc, "androidboot.ddr_size=9830MB", what);
      assert_line (bc, "androidboot.lcd_density=213", what);
      cr_assert (!has_line (bc, "androidboot.ddr_size=4915MB"));
    }
  json_t *opts = json_object_get (json_object_get (r.manifest, "properties"), "options");
  cr_assert_str_eq (json_string_value (json_object_get (opts, "mode")), "phone", "manifest options: mode");
  opts = json_object_get (json_object_get (r.manifest, "properties_virgl"), "options");
  cr_assert_str_eq (json_string_value (json_object_get (opts, "mode")), "phone");
  cr_assert_str_eq (json_string_value (json_object_get (opts, "gpu")), "virgl");
  result_free (&r);
  ctx_free (&c);
}

Test (cvd2img, no_virgl)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out"), *bl = fx_path ("cvd/" BL_X86);
  struct ctx c;
  struct result r;
  ctx_init (&c, cvd, "x86_64", bl);
  c.virgl = false;
  avm_ok ((char *[]) { "cvd2img", "--no-virgl", "-o", out, cvd, NULL });
  check_all (&c, out, &r);
  result_free (&r);
  ctx_free (&c);
}

/* -a aarch64 with the zip and an arm host package: aaos-arm64's boot
   devices, pl011 earlycon, the arm bootloader.  */
Test (cvd2img, aarch64_zip)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *zip = fx_path ("img.zip"), *host = fx_path ("host-arm.tar.gz");
  _cleanup_free_ char *out = tpath ("out"), *bl = fx_path ("cvd-arm/" BL_ARM);
  struct ctx c;
  struct result r;
  ctx_init (&c, cvd, "aarch64", bl);
  _cleanup_free_ char *arm = fx_path ("cvd-arm");
  c.host_src = arm;
  c.host_entries = (char *const[]) { "etc", NULL };
  avm_ok ((char *[]) { "cvd2img", "-a", "aarch64", "-o", out, zip, host, NULL });
  check_all (&c, out, &r);
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (r.manifest, "properties"), "profile")),
                    "aaos-arm64");
  result_free (&r);
  ctx_free (&c);
}

/* Without -a the architecture is the bootloader's.  */
Test (cvd2img, aarch64_from_bootloader)
{
  _cleanup_free_ char *cvd = fx_path ("cvd-arm"), *out = tpath ("out"), *bl = fx_path ("cvd-arm/" BL_ARM);
  struct ctx c;
  struct result r;
  ctx_init (&c, cvd, "aarch64", bl);
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  check_all (&c, out, &r);
  result_free (&r);
  ctx_free (&c);
}

/* --key: the user's key is not copied (nor an avb_key.pem there replaced).  */
Test (cvd2img, user_key_not_copied)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out"), *out2 = tpath ("out2"),
                      *bl = fx_path ("cvd/" BL_X86);
  struct ctx c;
  struct result r;
  ctx_init (&c, cvd, "x86_64", bl);
  c.key_copied = false;
  avm_ok ((char *[]) { "cvd2img", "--key", c.keyfile, "-o", out, cvd, NULL });
  check_all (&c, out, &r);
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (r.manifest, "key"), "source")), c.keyfile);
  result_free (&r);

  fx_mkdirs (out2);
  _cleanup_free_ char *mine = fx_join (out2, "avb_key.pem");
  fx_write_bin (mine, "mine\n", 5);
  avm_ok ((char *[]) { "cvd2img", "--key", c.keyfile, "-o", out2, cvd, NULL });
  _cleanup_free_ char *got = tu_read (mine);
  cr_assert_str_eq (got, "mine\n", "%s was replaced", mine);
  ctx_free (&c);
}

/* The boot properties of `avm start`'s plan and avb_key.pem: the disks
   cvd2img wrote are the ones avm_props_sync keeps (same properties, same
   environment, same key), for both GPU choices, when the helpers are
   installed (their own properties are written only when they run) and the
   accelerator is the profile's first, KVM, which cvd2img assumes: the
   only property that follows it is androidboot.hw_timeout_multiplier, 3
   with KVM and 50 under TCG (this test runs TCG), so a TCG start rebuilds
   the disk once for it.  */
static json_t *
start_boot_properties (const char *images, const char *option)
{
  _cleanup_free_ char *caps = NULL, *helpers = NULL;
  cr_assert (asprintf (&caps, "%s/tests/data/caps-qemu-10.0-x86_64.json", tu_srcdir ()) > 0);
  cr_assert (asprintf (&helpers, "paths.helpers=%s", tu_fake_helpers ()) > 0);
  char *args[] = { "start", "-n",       "--json",        "-p",    "aaos-x86_64",       "--caps",
                   caps,    "--images", (char *) images, "--set", "machine.accel=tcg", "--set",
                   helpers, "-O",       (char *) option, NULL };
  char *out = NULL, *err = NULL;
  int rc = tu_avmv (args, &out, &err);
  cr_assert_eq (rc, 0, "avm start -n: %s", err);
  json_t *plan = json_loads (out, 0, NULL);
  cr_assert_not_null (plan);
  /* avb_key.pem is there: no missing key reported for the generated disk.  */
  cr_assert_null (strstr (err, "disks[1].key"), "%s", err);
  json_t *bp = json_incref (json_object_get (plan, "boot_properties"));
  cr_assert_not_null (bp);
  json_t *mult = json_object_get (bp, "androidboot.hw_timeout_multiplier");
  cr_assert_str_eq (json_string_value (mult), "50");
  json_object_set_new (bp, "androidboot.hw_timeout_multiplier", json_string ("3"));
  json_decref (plan);
  free (out);
  free (err);
  return bp;
}

Test (cvd2img, start_keeps_converted_properties)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out");
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  _cleanup_free_ char *key = fx_join (out, "avb_key.pem");
  const char *const disks[] = { "properties.img", "properties_virgl.img" };
  const char *const options[] = { "gpu=virtio-gpu", "gpu=virgl" };
  for (size_t i = 0; i < 2; i++)
    {
      _cleanup_free_ char *disk = fx_join (out, disks[i]);
      json_t *bp = start_boot_properties (out, options[i]);
      struct timespec ts[2] = { { OLD_MTIME, 0 }, { OLD_MTIME, 0 } };
      cr_assert_eq (utimensat (AT_FDCWD, disk, ts, 0), 0);
      struct stat before, after;
      cr_assert_eq (stat (disk, &before), 0);
      _cleanup_error_ avm_error_t err = NULL;
      bool rebuilt = true;
      cr_assert_eq (avm_props_sync (disk, bp, "x86_64", key, &rebuilt, &err), 0, "%s", err ? err->msg : "");
      cr_assert (!rebuilt, "%s: avm start would rebuild what cvd2img wrote for %s", disk, options[i]);
      cr_assert_eq (stat (disk, &after), 0);
      cr_assert (before.st_ino == after.st_ino && after.st_mtim.tv_sec == OLD_MTIME);
      /* The other GPU's properties differ: the disk would be rebuilt.  */
      json_t *other = start_boot_properties (out, options[1 - i]);
      cr_assert (!json_equal (bp, other));
      json_decref (other);
      json_decref (bp);
    }
}

/* ------------------------------------------------------------------ */
/* Failures: exit status, one line naming the culprit, old outputs kept.  */
