/* SPDX-License-Identifier: Apache-2.0 */
/*
 * avm cvd2img (suite cvd2img), failures: exit status, one line naming the
 * culprit, old outputs kept; hostile and damaged inputs.  See
 * test_cvd2img.c.
 */
#include "cvd2imgutil.h"

Test (cvd2img, missing_boot_dir)
{
  _cleanup_free_ char *cvd = clone_cvd ("cvd", "boot.img"), *out = tpath ("out");
  expect_failure (out, 2, (char *[]) { cvd, NULL }, (const char *[]) { cvd, "boot.img", "missing", NULL },
                  (const char *[]) { cvd, NULL });
}

/* An image zip written with libarchive: ENTRIES name files of the fixture's
   cvd/ (regular entries) or are links.  */
struct aentry
{
  const char *name;
  const char *file;     /* content: this file of the fixture (relative to cvd/) */
  const char *symlink;  /* or a symbolic link to this */
  const char *hardlink; /* or a hard link to this entry */
  mode_t type;          /* or an entry of this type (AE_IFDIR, AE_IFIFO, AE_IFCHR), no data */
  mode_t perm;          /* its permission bits, if not the default */
};

static void
write_archive (const char *path, bool zip, const struct aentry *ents, size_t n)
{
  struct archive *a = archive_write_new ();
  cr_assert_not_null (a);
  if (zip)
    cr_assert_eq (archive_write_set_format_zip (a), ARCHIVE_OK);
  else
    {
      cr_assert_eq (archive_write_set_format_pax_restricted (a), ARCHIVE_OK);
      cr_assert_eq (archive_write_add_filter_gzip (a), ARCHIVE_OK);
    }
  cr_assert_eq (archive_write_open_filename (a, path), ARCHIVE_OK, "%s: %s", path, archive_error_string (a));
  for (size_t i = 0; i < n; i++)
    {
      struct archive_entry *ae = archive_entry_new ();
      _cleanup_free_ uint8_t *data = NULL;
      size_t len = 0;
      archive_entry_set_pathname (ae, ents[i].name);
      archive_entry_set_mtime (ae, OLD_MTIME, 0);
      if (ents[i].symlink)
        {
          archive_entry_set_filetype (ae, AE_IFLNK);
          archive_entry_set_perm (ae, 0777);
          archive_entry_set_symlink (ae, ents[i].symlink);
        }
      else if (ents[i].hardlink)
        {
          archive_entry_set_filetype (ae, AE_IFREG);
          archive_entry_set_perm (ae, 0644);
          archive_entry_set_hardlink (ae, ents[i].hardlink);
        }
      else if (ents[i].type)
        {
          archive_entry_set_filetype (ae, ents[i].type);
          archive_entry_set_perm (ae, 0755);
          if (ents[i].type == AE_IFCHR)
            archive_entry_set_rdev (ae, makedev (1, 5));
        }
      else
        {
          char rel[256];
          snprintf (rel, sizeof rel, "cvd/%s", ents[i].file);
          _cleanup_free_ char *p = fx_path (rel);
          data = fx_read_bin (p, &len);
          archive_entry_set_filetype (ae, AE_IFREG);
          archive_entry_set_perm (ae, 0644);
          archive_entry_set_size (ae, len);
        }
      if (ents[i].perm)
        archive_entry_set_perm (ae, ents[i].perm);
      cr_assert_eq (archive_write_header (a, ae), ARCHIVE_OK, "%s: %s: %s", path, ents[i].name,
                    archive_error_string (a));
      if (len)
        cr_assert_eq (archive_write_data (a, data, len), (la_ssize_t) len, "%s: %s", path, archive_error_string (a));
      archive_entry_free (ae);
    }
  cr_assert_eq (archive_write_close (a), ARCHIVE_OK, "%s: %s", path, archive_error_string (a));
  archive_write_free (a);
}

/* The fixture's image zip entries (but SKIP) followed by EXTRA.  */
static char *
hostile_zip (const char *name, const char *skip, const struct aentry *extra)
{
  struct aentry e[16] = { { 0 } };
  size_t n = 0;
  for (size_t i = 0; i < ARRAY_SIZE (fx_zip_images); i++)
    if (!skip || !streq (fx_zip_images[i], skip))
      e[n++] = (struct aentry) { fx_zip_images[i], fx_zip_images[i], NULL, NULL, 0, 0 };
  if (extra)
    e[n++] = *extra;
  char *path = tpath (name);
  write_archive (path, true, e, n);
  return path;
}

/* The fixture's host package entries followed by EXTRA, as .tar.gz.  */
static char *
hostile_tar (const char *name, const char *skip, const struct aentry *extra)
{
  static const char *const files[] = { KEY_PEM, KEY_PUB, BL_X86 };
  struct aentry e[8] = { { 0 } };
  size_t n = 0;
  for (size_t i = 0; i < ARRAY_SIZE (files); i++)
    if (!skip || !streq (files[i], skip))
      e[n++] = (struct aentry) { files[i], files[i], NULL, NULL, 0, 0 };
  if (extra)
    e[n++] = *extra;
  char *path = tpath (name);
  write_archive (path, false, e, n);
  return path;
}

Test (cvd2img, missing_boot_zip)
{
  _cleanup_free_ char *zip = hostile_zip ("img.zip", "boot.img", NULL), *host = fx_path ("host.tar.gz");
  _cleanup_free_ char *out = tpath ("out");
  expect_failure (out, 2, (char *[]) { zip, host, NULL }, (const char *[]) { zip, "boot.img", "missing", NULL },
                  (const char *[]) { zip, host, NULL });
}

/* The fixture's super.img, to corrupt.  */
static uint8_t *
super_bytes (size_t *len)
{
  _cleanup_free_ char *p = fx_path ("cvd/super.img");
  uint8_t *d = fx_read_bin (p, len);
  cr_assert (*len > 28 + 12 && le32 (d) == 0xed26ff3a);
  cr_assert_eq (d[28] | d[29] << 8, 0xcac1, "fixture: super.img does not start with a RAW chunk");
  return d;
}

Test (cvd2img, sparse_bad_version)
{
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *out = tpath ("out"), *sp = fx_join (cvd, "super.img");
  size_t len;
  _cleanup_free_ uint8_t *d = super_bytes (&len);
  put_le16 (d + 4, 2); /* major version 2 */
  fx_write_bin (sp, d, len);
  expect_failure (out, 2, (char *[]) { cvd, NULL }, (const char *[]) { sp, "offset 4", "version 2", NULL },
                  (const char *[]) { cvd, NULL });
}

/* The image zip NAME (in the test's scratch space) of the images of CVD.  */
static char *
zip_images (const char *name, const char *cvd)
{
  char *zip = tpath (name);
  char *zargs[16];
  size_t n = 0;
  zargs[n++] = "zip";
  zargs[n++] = "-q";
  zargs[n++] = "-j";
  zargs[n++] = zip;
  for (size_t i = 0; i < ARRAY_SIZE (fx_zip_images); i++)
    zargs[n++] = fx_join (cvd, fx_zip_images[i]);
  zargs[n] = NULL;
  free (fx_run_ok (zargs, NULL));
  for (size_t i = 4; i < n; i++)
    free (zargs[i]);
  return zip;
}

/* The same in the zip: the message names the zip and the entry.  */
Test (cvd2img, sparse_bad_version_zip)
{
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *out = tpath ("out"), *sp = fx_join (cvd, "super.img");
  size_t len;
  _cleanup_free_ uint8_t *d = super_bytes (&len);
  put_le16 (d + 4, 2);
  fx_write_bin (sp, d, len);
  _cleanup_free_ char *zip = zip_images ("img.zip", cvd), *host = fx_path ("host.tar.gz");
  char entry[PATH_MAX];
  snprintf (entry, sizeof entry, "%s:super.img", zip);
  expect_failure (out, 2, (char *[]) { zip, host, NULL }, (const char *[]) { entry, "offset 4", "version 2", NULL },
                  (const char *[]) { zip, host, NULL });
}

/* The first chunk (RAW) claims 1000 more blocks than the file holds (its
   total_sz and the header's total_blks agree with that).  */
Test (cvd2img, sparse_raw_overrun)
{
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *out = tpath ("out"), *sp = fx_join (cvd, "super.img");
  size_t len;
  _cleanup_free_ uint8_t *d = super_bytes (&len);
  put_le32 (d + 16, le32 (d + 16) + 1000);               /* total_blks */
  put_le32 (d + 28 + 4, le32 (d + 28 + 4) + 1000);       /* chunk_sz */
  put_le32 (d + 28 + 8, le32 (d + 28 + 8) + 1000 * BLK); /* total_sz */
  fx_write_bin (sp, d, len);
  expect_failure (out, 2, (char *[]) { cvd, NULL }, (const char *[]) { sp, "offset 28", "chunk 1", NULL },
                  (const char *[]) { cvd, NULL });
}

/* A header that says far more blocks than the chunks hold (16 TiB): the
   system disk cannot be that large ("File too large" on ext4), and the
   error is the image's, bad input (issue 15: it named out/system.img,
   exit 1).  On a file system that can hold the disk, the expansion finds
   the same.  */
Test (cvd2img, sparse_size_damaged)
{
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *out = tpath ("out"), *sp = fx_join (cvd, "super.img");
  size_t len;
  _cleanup_free_ uint8_t *d = super_bytes (&len);
  put_le32 (d + 16, 0xffffffffu); /* total_blks */
  fx_write_bin (sp, d, len);
  expect_failure (out, 2, (char *[]) { cvd, NULL },
                  (const char *[]) { sp, "the header says 4294967295", "16.0 TiB", "damaged", NULL },
                  (const char *[]) { cvd, NULL });
  cr_assert_null (strstr (last_error, "system.img"), "%s", last_error);
  /* the same in the zip: the zip and the entry named */
  _cleanup_free_ char *zip = zip_images ("img.zip", cvd), *host = fx_path ("host.tar.gz");
  char entry[PATH_MAX];
  snprintf (entry, sizeof entry, "%s:super.img", zip);
  expect_failure (out, 2, (char *[]) { zip, host, NULL },
                  (const char *[]) { entry, "the header says 4294967295", "damaged", NULL },
                  (const char *[]) { zip, host, NULL });
  cr_assert_null (strstr (last_error, "system.img"), "%s", last_error);
}

/* A size beyond what a GPT disk holds (2^62 bytes and more: blocks of
   2 GiB): the error names the image, not only its partition.  */
Test (cvd2img, sparse_size_beyond_gpt)
{
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *out = tpath ("out"), *sp = fx_join (cvd, "super.img");
  size_t len;
  _cleanup_free_ uint8_t *d = super_bytes (&len);
  put_le32 (d + 12, 0x80000000u); /* blk_sz */
  put_le32 (d + 16, 0x80000001u); /* total_blks */
  fx_write_bin (sp, d, len);
  expect_failure (out, 2, (char *[]) { cvd, NULL }, (const char *[]) { sp, "offset 28", "chunk 1", NULL },
                  (const char *[]) { cvd, NULL });
}

/* Cut in the middle of the first RAW chunk's data.  */
Test (cvd2img, sparse_truncated)
{
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *out = tpath ("out"), *sp = fx_join (cvd, "super.img");
  size_t len;
  _cleanup_free_ uint8_t *d = super_bytes (&len);
  fx_write_bin (sp, d, 28 + 12 + 5000);
  expect_failure (out, 2, (char *[]) { cvd, NULL }, (const char *[]) { sp, "offset", "chunk 1", NULL },
                  (const char *[]) { cvd, NULL });
}

Test (cvd2img, zip_dotdot)
{
  const struct aentry evil = { "../evil.img", "vbmeta.img", NULL, NULL, 0, 0 };
  _cleanup_free_ char *zip = hostile_zip ("img.zip", NULL, &evil), *host = fx_path ("host.tar.gz");
  _cleanup_free_ char *out = tpath ("out");
  expect_failure (out, 2, (char *[]) { zip, host, NULL }, (const char *[]) { zip, "../evil.img", NULL },
                  (const char *[]) { zip, host, NULL });
}

Test (cvd2img, zip_absolute)
{
  const struct aentry evil = { "/etc/passwd", "android-info.txt", NULL, NULL, 0, 0 };
  _cleanup_free_ char *zip = hostile_zip ("img.zip", NULL, &evil), *host = fx_path ("host.tar.gz");
  _cleanup_free_ char *out = tpath ("out");
  expect_failure (out, 2, (char *[]) { zip, host, NULL }, (const char *[]) { zip, "/etc/passwd", NULL },
                  (const char *[]) { zip, host, NULL });
}

Test (cvd2img, zip_symlink)
{
  const struct aentry evil = { "userdata.img", NULL, "/dev/zero", NULL, 0, 0 };
  _cleanup_free_ char *zip = hostile_zip ("img.zip", "userdata.img", &evil), *host = fx_path ("host.tar.gz");
  _cleanup_free_ char *out = tpath ("out");
  expect_failure (out, 2, (char *[]) { zip, host, NULL }, (const char *[]) { zip, "userdata.img", "link", NULL },
                  (const char *[]) { zip, host, NULL });
}

Test (cvd2img, tar_symlink)
{
  const struct aentry evil = { KEY_PUB, NULL, "/etc/passwd", NULL, 0, 0 };
  _cleanup_free_ char *zip = fx_path ("img.zip"), *host = hostile_tar ("host.tar.gz", KEY_PUB, &evil);
  _cleanup_free_ char *out = tpath ("out");
  expect_failure (out, 2, (char *[]) { zip, host, NULL }, (const char *[]) { host, KEY_PUB, "link", NULL },
                  (const char *[]) { zip, host, NULL });
}

/* The host package's links, as its tree has them: a hard link to an
   earlier entry is extracted as one (the same file); setuid, setgid and
   sticky bits are dropped.  */
Test (cvd2img, tar_links_inside_the_package)
{
  static const struct aentry extra[] = {
    { "etc/cvd_avb_testkey.pem", NULL, NULL, KEY_PEM, 0, 0 },
    { "lib64", NULL, NULL, NULL, AE_IFDIR, 01777 },
    { "lib64/libbar.so.2", "android-info.txt", NULL, NULL, 0, 06755 },
    { "lib64/libbar.so", NULL, "libbar.so.2", NULL, 0, 0 },
    { "bin/libs", NULL, "../lib64", NULL, 0, 0 },
    { "bin/bar", NULL, "../lib64/libbar.so.2", NULL, 0, 0 },
  };
  struct aentry e[16] = { { 0 } };
  static const char *const files[] = { KEY_PEM, KEY_PUB, BL_X86 };
  size_t n = 0;
  for (size_t i = 0; i < ARRAY_SIZE (files); i++)
    e[n++] = (struct aentry) { files[i], files[i], NULL, NULL, 0, 0 };
  for (size_t i = 0; i < ARRAY_SIZE (extra); i++)
    e[n++] = extra[i];
  _cleanup_free_ char *zip = fx_path ("img.zip"), *host = tpath ("host.tar.gz"), *out = tpath ("out");
  write_archive (host, false, e, n);
  avm_ok ((char *[]) { "cvd2img", "-o", out, zip, host, NULL });
  _cleanup_free_ char *k1 = fx_join (out, KEY_PEM), *k2 = fx_join (out, "etc/cvd_avb_testkey.pem");
  _cleanup_free_ char *lib = fx_join (out, "lib64"), *so2 = fx_join (out, "lib64/libbar.so.2");
  _cleanup_free_ char *so = fx_join (out, "lib64/libbar.so"), *bar = fx_join (out, "bin/bar");
  _cleanup_free_ char *viadir = fx_join (out, "bin/libs/libbar.so.2");
  struct stat a, b;
  cr_assert (stat (k1, &a) == 0 && stat (k2, &b) == 0);
  cr_assert (a.st_ino == b.st_ino && a.st_nlink == 2, "%s is not a hard link to %s", k2, k1);
  cr_assert_eq (lstat (lib, &a), 0);
  cr_assert_eq (a.st_mode & 07777, 0777, "%s: mode %o: the sticky bit is kept", lib, a.st_mode & 07777);
  cr_assert_eq (lstat (so2, &a), 0);
  cr_assert_eq (a.st_mode & 07777, 0755, "%s: mode %o: setuid or setgid kept", so2, a.st_mode & 07777);
  char t[64];
  ssize_t len = readlink (so, t, sizeof t);
  cr_assert (len == 11 && memcmp (t, "libbar.so.2", 11) == 0);
  _cleanup_free_ char *x = tu_read (bar), *y = tu_read (viadir), *z = tu_read (so2);
  cr_assert_str_eq (x, z);
  cr_assert_str_eq (y, z);
  _cleanup_free_ char *man = fx_join (out, "manifest.json");
  json_t *m = json_load_file (man, 0, NULL);
  json_t *ents = json_object_get (json_object_get (m, "host_package"), "entries");
  cr_assert_eq (json_array_size (ents), 3);
  cr_assert_str_eq (json_string_value (json_array_get (ents, 0)), "bin");
  cr_assert_str_eq (json_string_value (json_array_get (ents, 1)), "etc");
  cr_assert_str_eq (json_string_value (json_array_get (ents, 2)), "lib64");
  json_decref (m);
}

/* A host package entry the policy refuses (avm-cvd2img(1)): exit 2, one
   line naming the archive, the entry and the NEEDLE; nothing written.  */
static void
tar_refused (const struct aentry *evil, size_t n, const char *entry, const char *needle)
{
  struct aentry e[16] = { { 0 } };
  static const char *const files[] = { KEY_PEM, KEY_PUB, BL_X86 };
  size_t k = 0;
  for (size_t i = 0; i < ARRAY_SIZE (files); i++)
    e[k++] = (struct aentry) { files[i], files[i], NULL, NULL, 0, 0 };
  for (size_t i = 0; i < n; i++)
    e[k++] = evil[i];
  _cleanup_free_ char *zip = fx_path ("img.zip"), *host = tpath ("host.tar.gz"), *out = tpath ("out");
  unlink (host);
  write_archive (host, false, e, k);
  expect_failure (out, 2, (char *[]) { zip, host, NULL }, (const char *[]) { host, entry, needle, NULL },
                  (const char *[]) { zip, host, NULL });
}

Test (cvd2img, tar_hardlink_outside_the_package)
{
  const struct aentry missing = { "etc/x.pem", NULL, NULL, "etc/none.pem", 0, 0 };
  tar_refused (&missing, 1, "etc/x.pem", "not an earlier entry");
  const struct aentry absolute = { "etc/x.pem", NULL, NULL, "/etc/passwd", 0, 0 };
  tar_refused (&absolute, 1, "etc/x.pem", "absolute path");
  const struct aentry up = { "etc/x.pem", NULL, NULL, "../etc/passwd", 0, 0 };
  tar_refused (&up, 1, "etc/x.pem", "path traversal");
}

Test (cvd2img, tar_symlink_out_of_the_package)
{
  const struct aentry up = { "etc/x", NULL, "../../x", NULL, 0, 0 };
  tar_refused (&up, 1, "etc/x", "out of the package");
  /* ".." after a name: that name may be a link to anywhere */
  const struct aentry after = { "etc/y", NULL, "bootloader_x86_64/../../z", NULL, 0, 0 };
  tar_refused (&after, 1, "etc/y", "out of the package");
  const struct aentry top = { "lib", NULL, "../lib64", NULL, 0, 0 };
  tar_refused (&top, 1, "lib", "out of the package");
}

Test (cvd2img, tar_special_files)
{
  const struct aentry fifo = { "etc/fifo", NULL, NULL, NULL, AE_IFIFO, 0 };
  tar_refused (&fifo, 1, "etc/fifo", "is a FIFO, not a host package file");
  const struct aentry dev = { "etc/null", NULL, NULL, NULL, AE_IFCHR, 0 };
  tar_refused (&dev, 1, "etc/null", "is a character device, not a host package file");
}

/* Nothing is written through a link: an entry below a symbolic link of
   the package is refused, even one pointing inside it.  */
Test (cvd2img, tar_entry_below_a_link)
{
  const struct aentry e[] = { { "etc2", NULL, "etc", NULL, 0, 0 }, { "etc2/x.pem", KEY_PEM, NULL, NULL, 0, 0 } };
  tar_refused (e, 2, "etc2/x.pem", "is not a directory");
}

Test (cvd2img, tar_entry_twice)
{
  const struct aentry twice = { KEY_PUB, KEY_PUB, NULL, NULL, 0, 0 };
  tar_refused (&twice, 1, KEY_PUB, "appears twice");
}

/* Names at the package's top that the output directory has for itself.  */
Test (cvd2img, tar_reserved_names)
{
  const struct aentry hidden = { ".cvd2img-commit", "android-info.txt", NULL, NULL, 0, 0 };
  tar_refused (&hidden, 1, ".cvd2img-commit", "hidden name");
  const struct aentry manifest = { "manifest.json", "android-info.txt", NULL, NULL, 0, 0 };
  tar_refused (&manifest, 1, "manifest.json", "the name of a file avm cvd2img writes");
}

/* A tar whose only entry claims SIZE bytes of data it does not have (the
   header is written, then the archive abandoned): the size is refused
   before any data is read.  */
static void
write_truncated_tar (const char *path, const char *name, int64_t size)
{
  /* In a child that leaves without finishing the archive: libarchive
     would pad the entry with SIZE bytes on close, and leaks its writer
     when told to give up (archive_write_fail), which LeakSanitizer
     reports.  */
  pid_t pid = fork ();
  cr_assert_geq (pid, 0);
  if (pid == 0)
    {
      struct archive *a = archive_write_new ();
      struct archive_entry *ae = archive_entry_new ();
      if (!a || !ae || archive_write_set_format_pax_restricted (a) != ARCHIVE_OK
          || archive_write_set_bytes_per_block (a, 0) != ARCHIVE_OK
          || archive_write_open_filename (a, path) != ARCHIVE_OK)
        _exit (1);
      archive_entry_set_pathname (ae, name);
      archive_entry_set_filetype (ae, AE_IFREG);
      archive_entry_set_perm (ae, 0644);
      archive_entry_set_size (ae, size);
      _exit (archive_write_header (a, ae) == ARCHIVE_OK ? 0 : 2);
    }
  int st;
  cr_assert_eq (waitpid (pid, &st, 0), pid);
  cr_assert (WIFEXITED (st) && WEXITSTATUS (st) == 0, "writing the tar header of %s failed", path);
  cr_assert_gt (file_size (path), 0);
}

Test (cvd2img, tar_larger_than_16_gib)
{
  _cleanup_free_ char *zip = fx_path ("img.zip"), *host = tpath ("host.tar"), *out = tpath ("out");
  write_truncated_tar (host, "usr/share/huge.img", (int64_t) 17 << 30);
  expect_failure (out, 2, (char *[]) { zip, host, NULL },
                  (const char *[]) { host, "more than 16 GiB", "usr/share/huge.img", NULL },
                  (const char *[]) { zip, host, NULL });
}

Test (cvd2img, tar_too_many_entries, .timeout = TU_TIMEOUT (120))
{
  _cleanup_free_ char *zip = fx_path ("img.zip"), *host = tpath ("host.tar.gz"), *out = tpath ("out");
  struct archive *a = archive_write_new ();
  cr_assert_eq (archive_write_set_format_pax_restricted (a), ARCHIVE_OK);
  cr_assert_eq (archive_write_add_filter_gzip (a), ARCHIVE_OK);
  cr_assert_eq (archive_write_open_filename (a, host), ARCHIVE_OK);
  struct archive_entry *ae = archive_entry_new ();
  for (int i = 0; i <= 100000; i++)
    {
      char name[64];
      snprintf (name, sizeof name, "usr/many/f%06d", i);
      archive_entry_clear (ae);
      archive_entry_set_pathname (ae, name);
      archive_entry_set_filetype (ae, AE_IFREG);
      archive_entry_set_perm (ae, 0644);
      archive_entry_set_size (ae, 0);
      cr_assert_eq (archive_write_header (a, ae), ARCHIVE_OK);
    }
  archive_entry_free (ae);
  cr_assert_eq (archive_write_close (a), ARCHIVE_OK);
  archive_write_free (a);
  expect_failure (out, 2, (char *[]) { zip, host, NULL }, (const char *[]) { host, "more than 100000 entries", NULL },
                  (const char *[]) { zip, host, NULL });
}

/* A FIFO (or a device) where a file is expected is refused at once, exit
   2, naming it and what it is; nothing waits for a writer (issue 15: a FIFO
   among the images hung cvd2img for ever).  */
static void
fifo_in_place_of (const char *path)
{
  unlink (path);
  cr_assert_eq (mkfifo (path, 0600), 0, "mkfifo %s: %s", path, strerror (errno));
}

Test (cvd2img, fifo_inputs_refused, .timeout = TU_TIMEOUT (60))
{
  _cleanup_free_ char *out = tpath ("out"), *good = fx_path ("cvd");
  /* an image of the directory */
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *boot = fx_join (cvd, "boot.img");
  fifo_in_place_of (boot);
  expect_failure (out, 2, (char *[]) { cvd, NULL }, (const char *[]) { boot, "is a FIFO, not an image file", NULL },
                  (const char *[]) { cvd, NULL });
  /* a host package file of the directory (read after the system disk is written) */
  _cleanup_free_ char *cvd2 = clone_cvd ("cvd2", NULL), *bl = fx_join (cvd2, BL_X86);
  fifo_in_place_of (bl);
  expect_failure (out, 2, (char *[]) { cvd2, NULL },
                  (const char *[]) { bl, "is a FIFO, not a host package file", NULL }, (const char *[]) { cvd2, NULL });
  /* the image zip and the host package */
  _cleanup_free_ char *zip = tpath ("img.zip"), *host = fx_path ("host.tar.gz"), *goodzip = fx_path ("img.zip");
  fifo_in_place_of (zip);
  expect_failure (out, 2, (char *[]) { zip, host, NULL }, (const char *[]) { zip, "is a FIFO, not an image zip", NULL },
                  (const char *[]) { host, NULL });
  _cleanup_free_ char *hfifo = tpath ("host.tar.gz");
  fifo_in_place_of (hfifo);
  expect_failure (out, 2, (char *[]) { goodzip, hfifo, NULL },
                  (const char *[]) { hfifo, "is a FIFO, not a host package", NULL },
                  (const char *[]) { goodzip, NULL });
  /* --key, --pubkey and --profile */
  _cleanup_free_ char *kfifo = tpath ("key.pem");
  fifo_in_place_of (kfifo);
  expect_failure (out, 2, (char *[]) { "--key", kfifo, good, NULL },
                  (const char *[]) { kfifo, "is a FIFO, not a PEM private key", NULL },
                  (const char *[]) { good, NULL });
  _cleanup_free_ char *pfifo = tpath ("pub.avbpubkey");
  fifo_in_place_of (pfifo);
  expect_failure (out, 2, (char *[]) { "--pubkey", pfifo, good, NULL },
                  (const char *[]) { pfifo, "is a FIFO, not an .avbpubkey file", NULL },
                  (const char *[]) { good, NULL });
  expect_failure (out, 2, (char *[]) { "-p", "/dev/zero", good, NULL },
                  (const char *[]) { "/dev/zero is a character device, not a profile", NULL },
                  (const char *[]) { good, NULL });
}

Test (cvd2img, key_2048)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *key = fx_path ("keys/k2048.pem"), *out = tpath ("out");
  expect_failure (out, 2, (char *[]) { "--key", key, cvd, NULL }, (const char *[]) { key, "2048", NULL },
                  (const char *[]) { cvd, key, NULL });
}

Test (cvd2img, key_exponent_3)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *key = fx_path ("keys/ke3.pem"), *out = tpath ("out");
  expect_failure (out, 2, (char *[]) { "--key", key, cvd, NULL }, (const char *[]) { key, "exponent", NULL },
                  (const char *[]) { cvd, key, NULL });
}

Test (cvd2img, pubkey_mismatch)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *key = fx_path ("cvd/" KEY_PEM), *pub = fx_path ("keys/other.avbpubkey");
  _cleanup_free_ char *out = tpath ("out");
  expect_failure (out, 2, (char *[]) { "--key", key, "--pubkey", pub, cvd, NULL },
                  (const char *[]) { pub, "does not match", NULL }, (const char *[]) { cvd, key, pub, NULL });
}

/* The host package's own .avbpubkey is checked too.  */
Test (cvd2img, hostpkg_pubkey_mismatch)
{
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *pub = fx_join (cvd, KEY_PUB),
                      *other = fx_path ("keys/other.avbpubkey");
  _cleanup_free_ char *out = tpath ("out");
  size_t len;
  _cleanup_free_ uint8_t *d = fx_read_bin (other, &len);
  fx_write_bin (pub, d, len);
  expect_failure (out, 2, (char *[]) { cvd, NULL }, (const char *[]) { KEY_PUB, "does not match", NULL },
                  (const char *[]) { cvd, NULL });
}

Test (cvd2img, vbmeta_too_big)
{
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *vb = fx_join (cvd, "vbmeta.img"), *out = tpath ("out");
  fx_write_vbmeta_like (vb, 65537, 40);
  expect_failure (out, 2, (char *[]) { cvd, NULL }, (const char *[]) { "vbmeta.img", "65537", NULL },
                  (const char *[]) { cvd, NULL });
}

/* A vbmeta of exactly 65536 bytes fills its partition.  */
Test (cvd2img, vbmeta_max)
{
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *vb = fx_join (cvd, "vbmeta.img"), *out = tpath ("out");
  _cleanup_free_ char *bl = fx_path ("cvd/" BL_X86);
  fx_write_vbmeta_like (vb, 65536, 41);
  struct ctx c;
  struct result r;
  ctx_init (&c, cvd, "x86_64", bl);
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  check_all (&c, out, &r);
  result_free (&r);
  ctx_free (&c);
}

/* A raw image whose size is not a multiple of 4 KiB (nor of 512): its
   partition is padded with zeros and the next one starts 4 KiB-aligned.  */
Test (cvd2img, unaligned_image)
{
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *boot = fx_join (cvd, "boot.img"), *out = tpath ("out");
  _cleanup_free_ char *bl = fx_path ("cvd/" BL_X86);
  size_t len;
  _cleanup_free_ uint8_t *d = fx_read_bin (boot, &len);
  d = realloc (d, len + 1);
  d[len] = 0x5a;
  fx_write_bin (boot, d, len + 1);
  struct ctx c;
  struct result r;
  ctx_init (&c, cvd, "x86_64", bl);
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  check_all (&c, out, &r);
  const struct pinfo *p = dpart (&r.sys, "boot_a");
  cr_assert_eq (p->size * 512, round4k (len + 1));
  result_free (&r);
  ctx_free (&c);
}

/* A host package made with `tar -C DIR .`: entries are "./etc/...".  */
Test (cvd2img, hostpkg_dot_entries)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *zip = fx_path ("img.zip"), *host = fx_path ("host-dot.tar.gz"),
                      *out = tpath ("out");
  _cleanup_free_ char *bl = fx_path ("cvd/" BL_X86);
  _cleanup_free_ char *list = fx_run_ok ((char *[]) { "tar", "tzf", host, NULL }, NULL);
  cr_assert_not_null (strstr (list, "./" KEY_PEM "\n"), "%s", list);
  cr_assert (starts_with (list, "./\n"), "fixture: no root entry in %s:\n%s", host, list);
  struct ctx c;
  struct result r;
  ctx_init (&c, cvd, "x86_64", bl);
  c.host_entries = (char *const[]) { "etc", NULL };
  avm_ok ((char *[]) { "cvd2img", "-o", out, zip, host, NULL });
  check_all (&c, out, &r);
  result_free (&r);
  ctx_free (&c);
}

/* An empty image cannot make a partition; the message must say which file
   (avm-cvd2img(1) ERRORS: "reported on one line naming the file").  */
Test (cvd2img, empty_image)
{
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *boot = fx_join (cvd, "boot.img"), *out = tpath ("out");
  fx_write_bin (boot, "", 0);
  expect_failure (out, 2, (char *[]) { cvd, NULL }, (const char *[]) { NULL }, (const char *[]) { cvd, NULL });
  cr_expect (strstr (last_error, "boot.img") && strstr (last_error, cvd),
             "an empty %s/boot.img must be reported naming the file and the input: %s", cvd, last_error);
}

/* An archive with two entries of the same name is ambiguous.  */
Test (cvd2img, zip_duplicate_entry)
{
  const struct aentry twice = { "boot.img", "vendor_boot.img", NULL, NULL, 0, 0 };
  _cleanup_free_ char *zip = hostile_zip ("img.zip", NULL, &twice), *host = fx_path ("host.tar.gz");
  _cleanup_free_ char *out = tpath ("out");
  expect_failure (out, 2, (char *[]) { zip, host, NULL }, (const char *[]) { zip, "boot.img", NULL },
                  (const char *[]) { zip, host, NULL });
}

Test (cvd2img, aarch64_without_bootloader)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out");
  expect_failure (out, 2, (char *[]) { "-a", "aarch64", cvd, NULL }, (const char *[]) { BL_ARM, NULL },
                  (const char *[]) { cvd, NULL });
}

/* The output directory fills up: exit 1, "No space left", the old outputs
   stay, no temporaries.  */
Test (cvd2img, no_space_left)
{
  mnt = tpath ("mnt");
  fx_mkdirs (mnt);
  if (mount ("tmpfs", mnt, "tmpfs", 0, "size=4m") < 0)
    {
      int e = errno;
      rmdir (mnt);
      free (mnt);
      mnt = NULL;
      cr_skip_test ("cannot mount a 4 MiB tmpfs to simulate ENOSPC: %s", strerror (e));
    }
  _cleanup_free_ char *out = fx_join (mnt, "out"), *filler = fx_join (mnt, "filler"), *cvd = fx_path ("cvd");
  seed_outputs (out);
  /* Leave 512 KiB: less than the bootloader alone.  */
  struct statvfs vfs;
  cr_assert_eq (statvfs (mnt, &vfs), 0);
  uint64_t avail = (uint64_t) vfs.f_bavail * vfs.f_frsize;
  cr_assert_gt (avail, 1 * MIB);
  uint8_t *junk = malloc (avail - 512 * 1024);
  fx_fill_random (junk, avail - 512 * 1024, 50);
  fx_write_bin (filler, junk, avail - 512 * 1024);
  free (junk);
  expect_failure (out, 1, (char *[]) { cvd, NULL }, (const char *[]) { "No space left", NULL },
                  (const char *[]) { cvd, NULL });
}

/* ------------------------------------------------------------------ */
/* slp/cvd2img compatibility: avm invoked through a link named cvd2img.  */
