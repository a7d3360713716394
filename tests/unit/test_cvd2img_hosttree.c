/* SPDX-License-Identifier: Apache-2.0 */
/*
 * avm cvd2img (suite cvd2img): the host package's tree in the output
 * directory (issue 14), and the image formats checked.  See test_cvd2img.c.
 */
#include "cvd2imgutil.h"

#define SET_LISTING                                                                                                    \
  "android-info.txt avb_key.pem bootloader manifest.json properties.img properties_virgl.img system.img"

static void
assert_listing (const char *out, const char *host, const char *extra)
{
  /* the set's files and the tree's entries, sorted together */
  char *want[32];
  size_t n = 0;
  char buf[1024];
  snprintf (buf, sizeof buf, "%s %s %s", SET_LISTING, host, extra ? extra : "");
  for (char *save = NULL, *t = strtok_r (buf, " ", &save); t; t = strtok_r (NULL, " ", &save))
    want[n++] = t;
  qsort (want, n, sizeof *want, cmp_names);
  char joined[1024] = "";
  for (size_t i = 0; i < n; i++)
    snprintf (joined + strlen (joined), sizeof joined - strlen (joined), "%s%s", i ? " " : "", want[i]);
  _cleanup_free_ char *got = listing (out);
  cr_assert_str_eq (got, joined, "%s holds the wrong entries", out);
}

static json_t *
manifest_of (const char *out)
{
  _cleanup_free_ char *p = fx_join (out, "manifest.json");
  json_error_t jerr;
  json_t *m = json_load_file (p, 0, &jerr);
  cr_assert_not_null (m, "%s: %s", p, jerr.text);
  return m;
}

/* A directory input's host package is its top-level directories (and
   relative links to one of them): not the images or other files at the
   top, not Cuttlefish's run-time state (cuttlefish*, hidden entries),
   never a link out of the directory.  */
Test (cvd2img, directory_input_takes_only_the_host_package)
{
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *out = tpath ("out");
  static const char *const dirs[] = { "cuttlefish/instances/cvd-1", ".hidden", "cuttlefish_assembly" };
  for (size_t i = 0; i < ARRAY_SIZE (dirs); i++)
    {
      _cleanup_free_ char *d = fx_join (cvd, dirs[i]);
      fx_mkdirs (d);
    }
  _cleanup_free_ char *rt = fx_join (cvd, "cuttlefish_runtime"), *away = fx_join (cvd, "away");
  _cleanup_free_ char *lib = fx_join (cvd, "lib"), *img = fx_join (cvd, "current.img");
  _cleanup_free_ char *cfg = fx_join (cvd, "fetcher_config.json");
  cr_assert_eq (symlink ("/tmp", rt), 0);
  cr_assert_eq (symlink ("/usr", away), 0);    /* a top-level link out: not taken */
  cr_assert_eq (symlink ("lib64", lib), 0);    /* a top-level link to a directory of it: taken */
  cr_assert_eq (symlink ("boot.img", img), 0); /* a link to a file: not the host package */
  fx_write_bin (cfg, "{}\n", 3);
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  assert_listing (out, "bin etc lib lib64 usr", NULL);
  char t[16];
  _cleanup_free_ char *olib = fx_join (out, "lib");
  cr_assert (readlink (olib, t, sizeof t) == 5 && memcmp (t, "lib64", 5) == 0);
  json_t *m = manifest_of (out);
  json_t *ents = json_object_get (json_object_get (m, "host_package"), "entries");
  cr_assert_eq (json_array_size (ents), 5);
  json_decref (m);
}

/* Inside a directory input's host package, the tarball's rules: a link
   out of the directory, a FIFO or a socket is refused, naming it.  */
Test (cvd2img, directory_input_link_out_refused)
{
  _cleanup_free_ char *out = tpath ("out");
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *evil = fx_join (cvd, "bin/evil");
  cr_assert_eq (symlink ("/etc/passwd", evil), 0);
  expect_failure (out, 2, (char *[]) { cvd, NULL }, (const char *[]) { evil, "symbolic link to /etc/passwd", NULL },
                  (const char *[]) { cvd, NULL });
  _cleanup_free_ char *cvd2 = clone_cvd ("cvd2", NULL), *up = fx_join (cvd2, "usr/share/up");
  cr_assert_eq (symlink ("../../../boot.img", up), 0);
  expect_failure (out, 2, (char *[]) { cvd2, NULL }, (const char *[]) { up, "out of the package", NULL },
                  (const char *[]) { cvd2, NULL });
  /* the key, which avm reads itself: refused before it is read */
  _cleanup_free_ char *cvd3 = clone_cvd ("cvd3", NULL), *key = fx_join (cvd3, KEY_PEM),
                      *real = fx_path ("cvd/" KEY_PEM);
  unlink (key);
  cr_assert_eq (symlink (real, key), 0);
  expect_failure (out, 2, (char *[]) { cvd3, NULL }, (const char *[]) { key, "an absolute path", NULL },
                  (const char *[]) { cvd3, NULL });
}

/* The output directory is the input directory: the host package is
   already in place, nothing is copied over it, and the manifest still
   describes it.  */
Test (cvd2img, output_in_the_input_directory)
{
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *info = fx_join (cvd, "android-info.txt");
  _cleanup_free_ char *tool = fx_join (cvd, "bin/tool"), *sys = fx_join (cvd, "system.img");
  struct stat before, after, tb, ta;
  cr_assert (stat (info, &before) == 0 && stat (tool, &tb) == 0);
  avm_ok ((char *[]) { "cvd2img", "-o", cvd, cvd, NULL });
  cr_assert (stat (info, &after) == 0 && stat (tool, &ta) == 0);
  cr_assert_eq (before.st_ino, after.st_ino, "the input's android-info.txt was replaced");
  cr_assert_eq (tb.st_ino, ta.st_ino, "the input's bin/tool was replaced");
  json_t *m = manifest_of (cvd);
  cr_assert_eq (json_array_size (json_object_get (json_object_get (m, "host_package"), "entries")), 4);
  cr_assert_null (json_object_get (m, "android_info"));
  json_decref (m);
  expect_inspect_sound (sys);
}

/* The output directory inside the input: left out of the copy.  */
Test (cvd2img, output_inside_the_input)
{
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *out = fx_join (cvd, "bin/out"), *bl = fx_path ("cvd/" BL_X86);
  struct ctx c;
  struct result r;
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  /* once more: the first conversion's output is not copied into itself */
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  _cleanup_free_ char *nested = fx_join (out, "bin/out");
  cr_assert (!exists (nested), "%s: the output was copied into itself", nested);
  _cleanup_free_ char *src = fx_path ("cvd");
  ctx_init (&c, cvd, "x86_64", bl);
  c.host_src = src;
  check_all (&c, out, &r);
  result_free (&r);
  ctx_free (&c);
}

/* A new host package without some entries of the previous one: they go;
   what the conversions did not write stays.  */
Test (cvd2img, entries_of_the_previous_package_removed)
{
  _cleanup_free_ char *zip = fx_path ("img.zip"), *host = fx_path ("host.tar.gz"), *arm = fx_path ("host-arm.tar.gz");
  _cleanup_free_ char *out = tpath ("out"), *mine = fx_join (out, "mine");
  avm_ok ((char *[]) { "cvd2img", "-o", out, zip, host, NULL });
  fx_mkdirs (mine);
  assert_listing (out, "bin etc lib64 usr", "mine");
  avm_ok ((char *[]) { "cvd2img", "-a", "aarch64", "-o", out, zip, arm, NULL });
  assert_listing (out, "etc", "mine");
  _cleanup_free_ char *armbl = fx_join (out, BL_ARM), *x86bl = fx_join (out, BL_X86);
  cr_assert (exists (armbl) && !exists (x86bl), "etc/ is not the new package's");
}

/* A directory of the user's where the package has an entry, in an
   output directory no conversion wrote: refused, nothing changed.  */
Test (cvd2img, users_directory_in_the_way)
{
  _cleanup_free_ char *zip = fx_path ("img.zip"), *host = fx_path ("host.tar.gz"), *out = tpath ("out");
  _cleanup_free_ char *bin = fx_join (out, "bin"), *script = fx_join (bin, "my-script");
  fx_mkdirs (bin);
  fx_write_bin (script, "echo mine\n", 10);
  char *o = NULL, *e = NULL;
  int rc = tu_avmv ((char *[]) { "cvd2img", "-o", out, zip, host, NULL }, &o, &e);
  cr_assert_eq (rc, 2, "exit %d: %s", rc, e);
  cr_assert_not_null (strstr (e, bin), "%s", e);
  cr_assert_not_null (strstr (e, "is in the way"), "%s", e);
  cr_assert_eq (strchr (e, '\n'), e + strlen (e) - 1, "not one line: %s", e);
  _cleanup_free_ char *ls = listing (out);
  cr_assert_str_eq (ls, "bin");
  cr_assert (exists (script));
  free (o);
  free (e);
}

/* An older avm's output, whose host package the user unpacked by hand to
   run it: the new package replaces it.  */
Test (cvd2img, older_output_with_a_hand_unpacked_package)
{
  _cleanup_free_ char *zip = fx_path ("img.zip"), *host = fx_path ("host.tar.gz"), *out = tpath ("out");
  _cleanup_free_ char *bin = fx_join (out, "bin"), *old = fx_join (bin, "old-tool"),
                      *man = fx_join (out, "manifest.json");
  fx_mkdirs (bin);
  fx_write_bin (old, "x", 1);
  const char *old_manifest = "{\"avm_version\": \"0.0.9\", \"arch\": \"x86_64\"}\n";
  fx_write_bin (man, old_manifest, strlen (old_manifest));
  avm_ok ((char *[]) { "cvd2img", "-o", out, zip, host, NULL });
  assert_listing (out, "bin etc lib64 usr", NULL);
  cr_assert (!exists (old), "%s: the old bin/ was not replaced", old);
}

/* Nothing this conversion reads may be inside what it replaces.  */
Test (cvd2img, input_inside_a_replaced_entry)
{
  _cleanup_free_ char *zip = fx_path ("img.zip"), *host = fx_path ("host.tar.gz"), *out = tpath ("out");
  avm_ok ((char *[]) { "cvd2img", "-o", out, zip, host, NULL });
  _cleanup_free_ char *inner = fx_join (out, "usr/host.tar.gz");
  cr_assert_eq (link (host, inner), 0);
  char *o = NULL, *e = NULL;
  int rc = tu_avmv ((char *[]) { "cvd2img", "-o", out, zip, inner, NULL }, &o, &e);
  cr_assert_eq (rc, 2, "exit %d: %s", rc, e);
  cr_assert_not_null (strstr (e, inner), "%s", e);
  cr_assert_not_null (strstr (e, "which this conversion replaces"), "%s", e);
  cr_assert (exists (inner));
  free (o);
  free (e);
}

/* What a killed conversion left (a file's temporary, a tree's) is removed
   by the next one.  */
Test (cvd2img, stale_temporaries_removed)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out");
  _cleanup_free_ char *t1 = fx_join (out, ".system.img.tmp.AbC123"), *t2 = fx_join (out, ".host-package.tmp.x1Y2z3");
  _cleanup_free_ char *t2new = fx_join (t2, "new/bin");
  fx_mkdirs (t2new);
  fx_write_bin (t1, "partial", 7);
  cr_assert_eq (chmod (t2new, 0555), 0);
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  check_nothing_hidden (out, "after a conversion over a killed one's leftovers");
}

/* Another conversion holds the output directory: refused at once.  */
Test (cvd2img, output_directory_locked)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out");
  fx_mkdirs (out);
  int fd = open (out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cr_assert (fd >= 0 && flock (fd, LOCK_EX) == 0);
  char *o = NULL, *e = NULL;
  int rc = tu_avmv ((char *[]) { "cvd2img", "-o", out, cvd, NULL }, &o, &e);
  cr_assert_eq (rc, 1, "exit %d: %s", rc, e);
  cr_assert_not_null (strstr (e, "another conversion is writing there"), "%s", e);
  close (fd);
  free (o);
  free (e);
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
}

/* A commit killed after it put some of a tree's entries in place: the
   marker lists them, so that the next conversion may replace them (they
   are in no manifest yet), or remove them when its package lacks them.  */
Test (cvd2img, interrupted_tree_commit_is_finished_by_the_next)
{
  _cleanup_free_ char *zip = fx_path ("img.zip"), *host = fx_path ("host.tar.gz"), *arm = fx_path ("host-arm.tar.gz");
  _cleanup_free_ char *out = tpath ("out"), *marker = fx_join (out, AVM_CVD2IMG_MARKER);
  _cleanup_free_ char *sys = fx_join (out, "system.img");
  avm_ok ((char *[]) { "cvd2img", "-a", "aarch64", "-o", out, zip, arm, NULL });
  assert_listing (out, "etc", NULL);
  /* as a run converting host.tar.gz leaves it when killed after moving
     bin/ and lib64/ in (the manifest still the old one's) */
  _cleanup_free_ char *bin = fx_join (out, "bin"), *lib = fx_join (out, "lib64"), *junk = fx_join (out, "lib64/x");
  fx_mkdirs (bin);
  fx_mkdirs (lib);
  fx_write_bin (junk, "x", 1);
  _cleanup_free_ char *text = NULL;
  cr_assert (asprintf (&text,
                       "Written while these outputs were renamed into place, removed once all were.\n"
                       "If this file is still here, the files next to it may not belong together: run avm cvd2img "
                       "again.\n%s/system.img\n%s/bin\n%s/lib64\n",
                       out, out, out)
             > 0);
  fx_write_bin (marker, text, strlen (text));
  const char *const needles[] = { AVM_CVD2IMG_MARKER, NULL };
  expect_inspect_not_sound (sys, needles);
  /* the next conversion replaces them (not "in the way") */
  avm_ok ((char *[]) { "cvd2img", "-o", out, zip, host, NULL });
  assert_listing (out, "bin etc lib64 usr", NULL);
  cr_assert (!exists (junk));
  expect_inspect_sound (sys);
  /* and one whose package lacks them removes them */
  fx_write_bin (marker, text, strlen (text));
  avm_ok ((char *[]) { "cvd2img", "-a", "aarch64", "-o", out, zip, arm, NULL });
  assert_listing (out, "etc", NULL);
}

/* The host tree is part of the set: a top-level entry gone, or another
   host package's release markers, and inspect calls the set not sound,
   start refuses it.  */
Test (cvd2img, host_tree_checked_with_the_set)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out"), *sys = fx_join (out, "system.img");
  _cleanup_free_ char *props = fx_join (out, "properties.img");
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  expect_inspect_sound (sys);
  _cleanup_free_ char *lib = fx_join (out, "lib64"), *saved = tpath ("lib64.saved");
  cr_assert_eq (rename (lib, saved), 0);
  const char *const gone[] = { lib, "is missing", "host package", NULL };
  expect_inspect_not_sound (sys, gone);
  expect_inspect_not_sound (props, gone);
  expect_start_refused (out, gone);
  cr_assert_eq (rename (saved, lib), 0);
  expect_inspect_sound (sys);

  /* a newer release's tool appears: not the host package converted */
  _cleanup_free_ char *vhal = fx_join (out, "bin/vhal_proxy_server");
  fx_write_bin (vhal, "x", 1);
  const char *const other[] = { "are not those converted", "bin/vhal_proxy_server", NULL };
  expect_inspect_not_sound (sys, other);
  expect_start_refused (out, other);
}

/* Issue 15, finding 7: one policy for every input.  A directory's image
   is a regular file of the set, never a link (a link to /etc/shadow was
   copied into a 0644 system.img), as an archive's is.  */
Test (cvd2img, directory_image_link_refused)
{
  _cleanup_free_ char *out = tpath ("out");
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *boot = fx_join (cvd, "boot.img");
  cr_assert_eq (unlink (boot), 0);
  cr_assert_eq (symlink ("/etc/passwd", boot), 0);
  expect_failure (out, 2, (char *[]) { cvd, NULL },
                  (const char *[]) { boot, "is a symbolic link, not an image file", NULL },
                  (const char *[]) { cvd, NULL });
  /* A link inside the set too: the archive rule.  */
  _cleanup_free_ char *cvd2 = clone_cvd ("cvd2", NULL), *vb = fx_join (cvd2, "vbmeta_system.img");
  cr_assert_eq (unlink (vb), 0);
  cr_assert_eq (symlink ("vbmeta.img", vb), 0);
  expect_failure (out, 2, (char *[]) { cvd2, NULL }, (const char *[]) { vb, "is a symbolic link", NULL },
                  (const char *[]) { cvd2, NULL });
  /* android-info.txt, which avm reads and records.  */
  _cleanup_free_ char *cvd3 = clone_cvd ("cvd3", NULL), *info = fx_join (cvd3, "android-info.txt");
  cr_assert_eq (unlink (info), 0);
  cr_assert_eq (symlink ("/etc/passwd", info), 0);
  expect_failure (out, 2, (char *[]) { cvd3, NULL }, (const char *[]) { info, "is a symbolic link", NULL },
                  (const char *[]) { cvd3, NULL });
}

/* Each image is of its format: random bytes as boot.img were accepted.  */
static void
format_refused (const char *name, const char *what, size_t len, const char *needle)
{
  _cleanup_free_ char *out = tpath ("out");
  _cleanup_free_ char *cvd = clone_cvd (what, NULL), *img = fx_join (cvd, name);
  cr_assert_eq (unlink (img), 0);
  fx_write_random (img, len, 77);
  expect_failure (out, 2, (char *[]) { cvd, NULL }, (const char *[]) { img, needle, NULL },
                  (const char *[]) { cvd, NULL });
}

/* An image zip of the fixture's images with boot.img's content from SRC.  */
static void
zip_with_boot (const char *zip, const char *src)
{
  struct archive *a = archive_write_new ();
  cr_assert_eq (archive_write_set_format_zip (a), ARCHIVE_OK);
  cr_assert_eq (archive_write_open_filename (a, zip), ARCHIVE_OK);
  for (size_t i = 0; i < ARRAY_SIZE (fx_zip_images); i++)
    {
      const char *name = fx_zip_images[i];
      char *rel = NULL;
      cr_assert_geq (asprintf (&rel, "cvd/%s", name), 0);
      char *path = streq (name, "boot.img") ? strdup (src) : fx_path (rel);
      size_t len;
      uint8_t *d = fx_read_bin (path, &len);
      struct archive_entry *ae = archive_entry_new ();
      archive_entry_set_pathname (ae, name);
      archive_entry_set_filetype (ae, AE_IFREG);
      archive_entry_set_perm (ae, 0644);
      archive_entry_set_size (ae, (la_int64_t) len);
      cr_assert_eq (archive_write_header (a, ae), ARCHIVE_OK);
      cr_assert_eq (archive_write_data (a, d, len), (la_ssize_t) len);
      archive_entry_free (ae);
      free (d);
      free (path);
      free (rel);
    }
  cr_assert_eq (archive_write_close (a), ARCHIVE_OK);
  archive_write_free (a);
}

Test (cvd2img, image_formats_checked)
{
  format_refused ("boot.img", "f1", 8192, "is not an Android boot image (no ANDROID! magic)");
  format_refused ("vendor_boot.img", "f2", 8192, "is not an Android vendor boot image (no VNDRBOOT magic)");
  format_refused ("vbmeta.img", "f3", 4096, "is not an AVB vbmeta image (no AVB0 magic)");
  format_refused ("vbmeta_system.img", "f4", 4096, "is not an AVB vbmeta image (no AVB0 magic)");
  format_refused ("super.img", "f5", 65536,
                  "is not an Android super image (its geometry) (no gDla magic at byte 4096)");
  /* The same in an image zip: an entry of random bytes named boot.img.  */
  _cleanup_free_ char *rnd = tpath ("random.bin"), *zip = tpath ("bad.zip"), *host = fx_path ("host.tar.gz");
  _cleanup_free_ char *out = tpath ("out");
  fx_write_random (rnd, 8192, 78);
  zip_with_boot (zip, rnd);
  expect_failure (out, 2, (char *[]) { zip, host, NULL },
                  (const char *[]) { "bad.zip:boot.img is not an Android boot image", NULL },
                  (const char *[]) { zip, host, NULL });
}

/* A raw super image (not sparse) with its geometry is fine; a sparse boot
   image is not what Cuttlefish makes.  */
Test (cvd2img, raw_super_and_sparse_boot)
{
  _cleanup_free_ char *out = tpath ("out"), *cvd = clone_cvd ("cvd", NULL), *super = fx_join (cvd, "super.img");
  cr_assert_eq (unlink (super), 0);
  size_t len = 64 * 1024;
  uint8_t *raw = calloc (1, len);
  memcpy (raw + 4096, "gDla", 4);
  fx_write_bin (super, raw, len);
  free (raw);
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });

  _cleanup_free_ char *cvd2 = clone_cvd ("cvd2", NULL), *boot = fx_join (cvd2, "boot.img");
  _cleanup_free_ char *orig = fx_path ("cvd/boot.img"), *out2 = tpath ("out2");
  cr_assert_eq (unlink (boot), 0);
  free (fx_run_ok ((char *[]) { "img2simg", orig, boot, "4096", NULL }, NULL));
  expect_failure (out2, 2, (char *[]) { cvd2, NULL },
                  (const char *[]) { boot, "is an Android sparse image; boot.img is stored raw", NULL },
                  (const char *[]) { cvd2, NULL });
}

/* Android 15 QPR2+ auto sets have hibernation_swap.img: the partition
   "hibernation" after metadata, as assemble_cvd adds it (the guest's
   /dev/block/vda19), its zeros left as holes; no partition without it.  */
Test (cvd2img, hibernation_partition_when_the_set_has_it)
{
  /* The full set (init_boot and the dlkm vbmeta images too).  */
  _cleanup_free_ char *full = fx_path ("cvd-opt"), *cvd = tpath ("cvd");
  fx_link_tree (full, cvd);
  _cleanup_free_ char *swap = fx_join (cvd, "hibernation_swap.img");
  _cleanup_free_ char *out = tpath ("out"), *plain = tpath ("plain");
  int fd = open (swap, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  cr_assert (fd >= 0 && ftruncate (fd, 64 << 20) == 0 && close (fd) == 0);
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  _cleanup_free_ char *sys = fx_join (out, "system.img");
  char *o = NULL, *e = NULL;
  cr_assert_eq (tu_avm (&o, &e, "inspect", "--json", sys, NULL), 0, "%s", e);
  json_t *rep = json_loads (o, 0, NULL);
  cr_assert_not_null (rep, "%s", o);
  json_t *parts = json_object_get (rep, "partitions");
  size_t n = json_array_size (parts);
  json_t *last = json_array_get (parts, n - 1), *before = json_array_get (parts, n - 2);
  cr_assert_str_eq (json_string_value (json_object_get (last, "name")), "hibernation");
  cr_assert_str_eq (json_string_value (json_object_get (before, "name")), "metadata");
  cr_assert_eq (json_integer_value (json_object_get (last, "index")), 19, "the guest mounts /dev/block/vda19");
  cr_assert_eq (json_integer_value (json_object_get (last, "size")), 64 << 20);
  /* 64 MiB of zeros took no space.  */
  struct stat st;
  cr_assert_eq (stat (sys, &st), 0);
  cr_assert_lt ((uint64_t) st.st_blocks * 512, (uint64_t) st.st_size - (60 << 20), "the zeros were written");
  json_decref (rep);
  free (o);
  free (e);

  _cleanup_free_ char *cvd2 = clone_cvd ("cvd2", NULL), *sys2 = fx_join (plain, "system.img");
  avm_ok ((char *[]) { "cvd2img", "-o", plain, cvd2, NULL });
  cr_assert_eq (tu_avm (&o, &e, "inspect", "--json", sys2, NULL), 0, "%s", e);
  rep = json_loads (o, 0, NULL);
  parts = json_object_get (rep, "partitions");
  cr_assert_str_eq (json_string_value (json_object_get (json_array_get (parts, json_array_size (parts) - 1), "name")),
                    "metadata");
  json_decref (rep);
  free (o);
  free (e);
}
