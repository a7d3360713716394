/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Cuttlefish image set (imgset.h): opening it, every archive entry checked
 * and every image's format probed, and the small files kept (android-info,
 * the host package's keys and bootloaders).  Reading an image's bytes is in
 * imgset_read.c, the host package's tree in imgset_host.c.
 */
#include "cvd2img/imgset.h"
#include "cuttlefish/release.h"
#include "cvd2img/hosttree.h"
#include "cvd2img/imgset_internal.h"
#include "disk/sparse.h"
#include "disk/stream.h"
#include "util/analyzer.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strbuf.h"
#include "util/strfmt.h"
#include "util/strv.h"

#include "disk/lazy_archive.h"
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_HOST_FILE (64u << 20)

/* Host package files avm may need, kept in memory when read from the tarball.  */
static const char *const host_files[] = {
  "etc/cvd_avb_testkey_rsa4096.pem",
  "etc/cvd_avb_testkey.pem",
  "etc/cvd_rsa4096.avbpubkey",
  "etc/cvd.avbpubkey",
  "etc/bootloader_x86_64/bootloader.qemu",
  "etc/bootloader_aarch64/bootloader.qemu",
};
_Static_assert(ARRAY_SIZE (host_files) == AVM_IMGSET_HOST_FILES, "AVM_IMGSET_HOST_FILES");

#define MAX_INFO (64u << 10)

const char *
avm_imgset_label (const struct avm_imgset *s)
{
  return s->zip ? s->zip : s->dir;
}

char *
avm_imgset_image_label (const struct avm_imgset *s, const char *name)
{
  return s->zip ? avm_strdupf ("%s:%s", s->zip, name) : avm_path_join (s->dir, name);
}

/* ---------------------------------------------------------------- */

ssize_t
avm_imgset_archive_stream_read (void *ctx, void *buf, size_t len)
{
  la_ssize_t r = sym_archive_read_data (ctx, buf, len);
  return r < 0 ? -EIO : r;
}

/* Entry names as users see them: "./etc/x" is "etc/x".  */
const char *
avm_imgset_clean_name (const char *p)
{
  while (p[0] == '.' && p[1] == '/')
    p += 2;
  return p;
}

/* An entry of the image zip: a regular file or a directory by a relative
   name without "..".  */
static int
check_entry (const char *archive, struct archive_entry *e, avm_error_t *err)
{
  const char *raw = sym_archive_entry_pathname (e);
  if (!raw || !*raw)
    return avm_error_input (err, "%s: an entry has no name; refusing the archive", archive);
  if (raw[0] == '/')
    return avm_error_input (err, "%s: entry %s: absolute path; refusing the archive", archive, raw);
  for (const char *p = raw; *p;)
    {
      size_t n = strcspn (p, "/");
      if (n == 2 && p[0] == '.' && p[1] == '.')
        return avm_error_input (err, "%s: entry %s: path traversal (.. component); refusing the archive", archive, raw);
      p += n;
      while (*p == '/')
        p++;
    }
  if (sym_archive_entry_filetype (e) == AE_IFLNK)
    return avm_error_input (err, "%s: entry %s: symbolic link (to %s); refusing the archive", archive, raw,
                            sym_archive_entry_symlink (e) ? sym_archive_entry_symlink (e) : "?");
  if (sym_archive_entry_hardlink (e))
    return avm_error_input (err, "%s: entry %s: hard link; refusing the archive", archive, raw);
  return 0;
}

/* An entry of the host package: the policy of cvd2img/hosttree.h (links
   inside the package are fine; it becomes a tree), counted into T.  */
static int
check_host_entry (const char *archive, struct archive_entry *e, struct avm_host_tally *t, avm_error_t *err)
{
  const char *raw = sym_archive_entry_pathname (e);
  if (!raw || !*raw)
    return avm_error_input (err, "%s: an entry has no name; refusing the archive", archive);
  const char *hard = sym_archive_entry_hardlink (e);
  mode_t type = (mode_t) sym_archive_entry_filetype (e);
  if (hard)
    type = S_IFREG;
  return avm_host_check (t, archive, raw, type,
                         sym_archive_entry_size_is_set (e) && sym_archive_entry_size (e) > 0
                             ? (uint64_t) sym_archive_entry_size (e)
                             : 0,
                         sym_archive_entry_symlink (e), hard, err);
}

/* The archive PATH, read from *FD (a regular file: a FIFO or a device is
   refused, never waited on); the caller closes *FD after archive_read_free.  */
int
avm_imgset_open_archive (const char *path, bool zip, struct archive **out, int *fd, avm_error_t *err)
{
  struct stat st;
  int ret = avm_dlopen_archive (err);
  if (ret < 0)
    return ret;
  ret = avm_open_regular (path, zip ? "an image zip" : "a host package", fd, &st, err);
  if (ret < 0)
    return ret;
  struct archive *a = sym_archive_read_new ();
  if (!a)
    return avm_error_sys (err, ENOMEM, "%s", path);
  if (zip)
    sym_archive_read_support_format_zip_seekable (a);
  else
    {
      sym_archive_read_support_filter_all (a);
      sym_archive_read_support_format_tar (a);
      sym_archive_read_support_format_gnutar (a);
    }
  if (sym_archive_read_open_fd (a, *fd, 1 << 16) != ARCHIVE_OK)
    {
      int e = sym_archive_errno (a);
      int r = avm_error_input (err, "%s: %s", path, sym_archive_error_string (a) ?: strerror (e ? e : EIO));
      sym_archive_read_free (a);
      return r;
    }
  *out = a;
  return 0;
}

static struct avm_img *
find_img (struct avm_imgset *s, const char *name)
{
  for (size_t i = 0; i < s->n; i++)
    if (streq (s->names[i], name))
      return &s->imgs[i];
  return NULL;
}

const struct avm_img *
avm_imgset_get (const struct avm_imgset *s, const char *name)
{
  return find_img ((struct avm_imgset *) s, name);
}

/* A stream that first replays bytes already read from INNER.  */
struct prefixed
{
  const uint8_t *buf;
  size_t len, pos;
  struct avm_stream *inner;
};

static ssize_t
prefixed_read (void *ctx, void *buf, size_t len)
{
  struct prefixed *p = ctx;
  if (p->pos < p->len)
    {
      size_t n = p->len - p->pos < len ? p->len - p->pos : len;
      memcpy (buf, p->buf + p->pos, n);
      p->pos += n;
      return n;
    }
  return avm_stream_read (p->inner, buf, len);
}

/* An image of a directory input: a regular file, not a link (one policy
   for directories and archives, which refuse links).  */
int
avm_imgset_open_image_file (const char *path, int *fd, struct stat *st, avm_error_t *err)
{
  return avm_open_regular_nofollow (path, "an image file", fd, st, err);
}

/* The format each image must have (issue 15: random bytes as boot.img
   were accepted).  Checked from its first bytes: the magic of AOSP's boot
   image headers (bootimg.h), vbmeta (AVB0) and a raw super image's
   geometry (liblp: LP_METADATA_GEOMETRY_MAGIC at LP_PARTITION_RESERVED_
   BYTES).  A sparse super image's inside is not looked at here; its
   sparse header is (disk/sparse.h).  userdata holds anything.  */
static int
check_format (const struct avm_img *img, const char *name, const char *label, avm_error_t *err)
{
  static const struct
  {
    const char *prefix; /* names starting so (vbmeta, vbmeta_system...) */
    const char *magic;
    size_t off;
    const char *what;
    bool sparse_ok;
  } formats[] = {
    { "boot.img", "ANDROID!", 0, "an Android boot image", false },
    { "init_boot.img", "ANDROID!", 0, "an Android boot image", false },
    { "vendor_boot.img", "VNDRBOOT", 0, "an Android vendor boot image", false },
    { "vbmeta", "AVB0", 0, "an AVB vbmeta image", false },
    { "super.img", "gDla", 4096, "an Android super image (its geometry)", true },
  };
  for (size_t i = 0; i < ARRAY_SIZE (formats); i++)
    {
      if (strncmp (name, formats[i].prefix, strlen (formats[i].prefix)) != 0)
        continue;
      if (img->sparse)
        {
          if (formats[i].sparse_ok)
            return 0;
          return avm_error_input (err,
                                  "%s is an Android sparse image; %s is stored raw (the image set is damaged, "
                                  "or this file is something else)",
                                  label, name);
        }
      size_t ml = strlen (formats[i].magic);
      if (img->head_len < formats[i].off + ml || memcmp (img->head + formats[i].off, formats[i].magic, ml) != 0)
        return avm_error_input (err,
                                "%s is not %s (no %s magic%s%s): the image set is damaged, or this file is "
                                "something else",
                                label, formats[i].what, formats[i].magic, formats[i].off ? " at byte " : "",
                                formats[i].off ? "4096" : "");
      return 0;
    }
  return 0;
}

/* Fill present/sparse/size of IMG from stream S at its start.  */
static int
probe_stream (struct avm_img *img, struct avm_stream *s, avm_error_t *err)
{
  uint8_t *head = img->head;
  ssize_t got = avm_stream_read (s, head, sizeof img->head);
  if (got < 0)
    return avm_error_sys (err, (int) -got, "cannot read %s", s->name);
  img->head_len = (size_t) got;
  img->present = true;
  img->stored_size = s->size;
  img->sparse = got >= 4 && avm_sparse_magic (head);
  if (!img->sparse)
    {
      img->size = s->size;
      return 0;
    }
  struct prefixed px = { head, (size_t) got, 0, s };
  struct avm_stream ps = { .read = prefixed_read, .ctx = &px, .name = s->name, .size = s->size };
  struct avm_sparse_header h;
  int r = avm_sparse_read_header (&ps, &h, err);
  if (r < 0)
    return r;
  img->size = avm_sparse_size (&h);
  return 0;
}

/* The next entry of an archive, checked (check_entry; with T, the host
   package's check_host_entry): 1, 0 at the end, or an error.  */
int
avm_imgset_next_entry (struct archive *a, const char *archive, struct archive_entry **e, struct avm_host_tally *t,
                       avm_error_t *err)
{
  int ar = sym_archive_read_next_header (a, e);
  if (ar == ARCHIVE_EOF)
    return 0;
  if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN)
    return avm_error_input (err, "%s: %s", archive, sym_archive_error_string (a) ?: "unreadable archive");
  int r = t ? check_host_entry (archive, *e, t, err) : check_entry (archive, *e, err);
  return r < 0 ? r : 1;
}

/* The current entry, a small text file, NUL-terminated into *OUT.  */
static int
read_small_entry (struct archive *a, const char *archive, const char *name, char **out, avm_error_t *err)
{
  char buf[4096];
  struct avm_strbuf b = { 0 };
  la_ssize_t got;
  while ((got = sym_archive_read_data (a, buf, sizeof buf)) > 0)
    {
      if (b.len + (size_t) got > MAX_INFO)
        {
          avm_strbuf_free (&b);
          return avm_error_input (err, "%s: entry %s is larger than %u KiB", archive, name, MAX_INFO >> 10);
        }
      avm_strbuf_add (&b, buf, (size_t) got);
    }
  if (got < 0)
    {
      avm_strbuf_free (&b);
      return avm_error_input (err, "%s: entry %s: %s", archive, name, sym_archive_error_string (a));
    }
  free (*out);
  if (!(*out = avm_strbuf_steal (&b)))
    return avm_error_sys (err, ENOMEM, "%s", archive);
  return 0;
}

static int
scan_zip (struct avm_imgset *s, avm_error_t *err)
{
  struct archive *a = NULL;
  struct archive_entry *e;
  _cleanup_close_ int fd = -1;
  int r = avm_imgset_open_archive (s->zip, true, &a, &fd, err);
  if (r < 0)
    return r;
  while ((r = avm_imgset_next_entry (a, s->zip, &e, NULL, err)) > 0)
    {
      const char *name = avm_imgset_clean_name (sym_archive_entry_pathname (e));
      struct avm_img *img = find_img (s, name);
      if (streq (name, "android-info.txt") && sym_archive_entry_filetype (e) == AE_IFREG)
        {
          if ((r = read_small_entry (a, s->zip, name, &s->android_info, err)) < 0)
            goto out;
          continue;
        }
      if (!img || sym_archive_entry_filetype (e) != AE_IFREG)
        continue;
      if (img->present)
        {
          r = avm_error_input (err, "%s: entry %s appears twice; refusing the archive", s->zip, name);
          goto out;
        }
      _cleanup_free_ char *label = NULL;
      if (asprintf (&label, "%s:%s", s->zip, name) < 0)
        {
          r = avm_error_sys (err, ENOMEM, "%s", s->zip);
          goto out;
        }
      struct avm_stream st
          = { .read = avm_imgset_archive_stream_read,
              .ctx = a,
              .name = label,
              .size = sym_archive_entry_size_is_set (e) ? (uint64_t) sym_archive_entry_size (e) : UINT64_MAX };
      if ((r = probe_stream (img, &st, err)) < 0 || (r = check_format (img, name, label, err)) < 0)
        goto out;
      if (!img->sparse && img->size == UINT64_MAX)
        {
          r = avm_error_input (err, "%s: entry %s has no recorded size", s->zip, name);
          goto out;
        }
    }
out:
  sym_archive_read_free (a);
  return r;
}

/* make lint: false positive: each blob's data is stored in S at once (S owns
   it: avm_imgset_free frees it).  The analyzer reported it as a leak once
   avm_imgset_next_entry, which it no longer follows into, moved out of
   this file's statics (imgset_internal.h).  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-malloc-leak")
static int
scan_hostpkg (struct avm_imgset *s, avm_error_t *err)
{
  struct archive *a = NULL;
  struct archive_entry *e;
  _cleanup_close_ int fd = -1;
  int r = avm_imgset_open_archive (s->hostpkg, false, &a, &fd, err);
  if (r < 0)
    return r;
  avm_host_tally_clear (&s->tally);
  while ((r = avm_imgset_next_entry (a, s->hostpkg, &e, &s->tally, err)) > 0)
    {
      const char *name = avm_imgset_clean_name (sym_archive_entry_pathname (e));
      s->host_seen = true;
      for (size_t i = 0; i < AVM_CF_HOST_MARKERS; i++)
        {
          size_t l = strlen (avm_cf_host_markers[i]);
          const char *m = avm_cf_host_markers[i];
          if (m[l - 1] == '/' ? strncmp (name, m, l) == 0 || (strncmp (name, m, l - 1) == 0 && name[l - 1] == '\0')
                              : streq (name, m))
            s->markers[i] = true;
        }
      for (size_t i = 0; i < ARRAY_SIZE (host_files); i++)
        {
          if (!streq (name, host_files[i]))
            continue;
          if (sym_archive_entry_hardlink (e))
            {
              /* A hard link carries no data: that of an earlier file avm
                 reads too, or none it knows.  */
              const char *to = avm_imgset_clean_name (sym_archive_entry_hardlink (e));
              struct avm_imgset_blob *src = NULL;
              for (size_t k = 0; k < ARRAY_SIZE (host_files); k++)
                if (streq (to, host_files[k]) && s->host[k].present)
                  src = &s->host[k];
              if (!src)
                {
                  r = avm_error_input (err,
                                       "%s: entry %s: a hard link to %s, whose data avm does not keep (it "
                                       "needs %s as a file of its own)",
                                       s->hostpkg, name, to, name);
                  goto out;
                }
              struct avm_imgset_blob *b = &s->host[i];
              free (b->data);
              if (!(b->data = malloc (src->len ? src->len : 1)))
                {
                  r = avm_error_sys (err, ENOMEM, "%s: %s", s->hostpkg, name);
                  goto out;
                }
              memcpy (b->data, src->data, src->len);
              b->len = src->len;
              b->present = true;
              continue;
            }
          if (sym_archive_entry_filetype (e) != AE_IFREG)
            continue;
          int64_t size = sym_archive_entry_size (e);
          if (size < 0 || (uint64_t) size > MAX_HOST_FILE)
            {
              r = avm_error_input (err, "%s: entry %s: unexpected size %lld", s->hostpkg, name, (long long) size);
              goto out;
            }
          struct avm_imgset_blob *b = &s->host[i];
          free (b->data);
          b->data = malloc (size ? size : 1);
          if (!b->data)
            {
              r = avm_error_sys (err, ENOMEM, "%s: %s", s->hostpkg, name);
              goto out;
            }
          la_ssize_t got = 0;
          for (b->len = 0; b->len < (size_t) size; b->len += got)
            {
              got = sym_archive_read_data (a, b->data + b->len, size - b->len);
              if (got <= 0)
                {
                  r = avm_error_input (err, "%s: entry %s: %s", s->hostpkg, name,
                                       got < 0 ? sym_archive_error_string (a) : "truncated");
                  goto out;
                }
            }
          b->present = true;
        }
    }
  s->tally_done = r == 0;
out:
  sym_archive_read_free (a);
  return r;
}
AVM_ANALYZER_IGNORE_END

/* make lint: false positive: avm_imgset_open calls scan_dir only for an image
   directory, so s->dir is set (it checks that exactly one of dir and zip
   is given, and that strdup succeeded).  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-null-argument")
static int
scan_dir (struct avm_imgset *s, avm_error_t *err)
{
  struct stat st;
  if (stat (s->dir, &st) < 0)
    return avm_error_input (err, "%s: %s", s->dir, strerror (errno));
  if (!S_ISDIR (st.st_mode))
    return avm_error_input (
        err, "%s: not a directory (pass the Cuttlefish image directory, or --images-zip and --host-package)", s->dir);
  for (size_t i = 0; i < s->n; i++)
    {
      _cleanup_free_ char *path = avm_path_join (s->dir, s->names[i]);
      _cleanup_close_ int fd = -1;
      /* The same rule as in an archive: a regular file of the set, never
         a link (boot.img -> /etc/shadow would be copied into the disk).  */
      int r = avm_imgset_open_image_file (path, &fd, &st, err);
      if (r == -ENOENT)
        {
          avm_error_free (*err);
          *err = NULL;
          continue;
        }
      if (r < 0)
        return r;
      struct avm_stream stream;
      avm_stream_from_fd (&stream, &fd, path, st.st_size);
      if ((r = probe_stream (&s->imgs[i], &stream, err)) < 0
          || (r = check_format (&s->imgs[i], s->names[i], path, err)) < 0)
        return r;
    }
  _cleanup_free_ char *info = avm_path_join (s->dir, "android-info.txt");
  if (info && faccessat (AT_FDCWD, info, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
    {
      size_t len;
      int r = avm_read_file_nofollow (info, MAX_INFO, "android-info.txt", &s->android_info, &len, err);
      if (r < 0)
        return r;
    }
  for (size_t i = 0; i < AVM_CF_HOST_MARKERS; i++)
    {
      _cleanup_free_ char *m = avm_path_join (s->dir, avm_cf_host_markers[i]);
      s->markers[i] = m && access (m, F_OK) == 0;
      s->host_seen |= s->markers[i];
    }
  _cleanup_free_ char *bin = avm_path_join (s->dir, "bin"), *etc = avm_path_join (s->dir, "etc");
  s->host_seen |= (bin && access (bin, F_OK) == 0) || (etc && access (etc, F_OK) == 0);
  return 0;
}
AVM_ANALYZER_IGNORE_END

int
avm_imgset_open (const char *dir, const char *zip, const char *hostpkg, char *const *wanted, struct avm_imgset **out,
                 avm_error_t *err)
{
  struct avm_imgset *s = calloc (1, sizeof *s);
  int r;
  if (!s)
    return avm_error_sys (err, ENOMEM, "image set");
  if ((dir != NULL) == (zip != NULL) || (zip != NULL) != (hostpkg != NULL))
    {
      free (s);
      return avm_error_input (err, "give either an image directory, or both the image zip and the host package");
    }
  s->dir = dir ? strdup (dir) : NULL;
  s->zip = zip ? strdup (zip) : NULL;
  s->hostpkg = hostpkg ? strdup (hostpkg) : NULL;
  if ((dir && !s->dir) || (zip && !s->zip) || (hostpkg && !s->hostpkg))
    {
      avm_imgset_free (s);
      return avm_error_sys (err, ENOMEM, "image set");
    }
  for (size_t i = 0; wanted && wanted[i]; i++)
    {
      if (s->n == MAX_IMAGES)
        {
          avm_imgset_free (s);
          return avm_error_fail (err, E2BIG, "too many images");
        }
      s->names[s->n] = strdup (wanted[i]);
      if (!s->names[s->n])
        {
          avm_imgset_free (s);
          return avm_error_sys (err, ENOMEM, "image set");
        }
      s->imgs[s->n].name = s->names[s->n];
      s->n++;
    }
  r = s->zip ? scan_zip (s, err) : scan_dir (s, err);
  if (r >= 0 && s->hostpkg)
    r = scan_hostpkg (s, err);
  if (r < 0)
    {
      avm_imgset_free (s);
      return r;
    }
  *out = s;
  return 0;
}

int
avm_imgset_cf_facts (const struct avm_imgset *s, struct avm_cf_facts *f, avm_error_t *err)
{
  *f = (struct avm_cf_facts) { 0 };
  if (s->android_info && !(f->android_info = strdup (s->android_info)))
    return avm_error_sys (err, ENOMEM, "%s", avm_imgset_label (s));
  static const char *const boots[] = { "boot.img", "init_boot.img" };
  for (size_t i = 0; i < ARRAY_SIZE (boots) && !f->boot_os_major; i++)
    {
      const struct avm_img *img = avm_imgset_get (s, boots[i]);
      if (img && img->present && !img->sparse)
        f->boot_os_major = avm_cf_boot_os_major (img->head, img->head_len);
    }
  f->hostpkg = s->host_seen;
  f->sensors_simulator = s->markers[0];
  f->vhalconfig = s->markers[1];
  f->vhal_proxy_server = s->markers[2];
  f->vhost_device_vsock = s->markers[3];
  f->secure_env = s->markers[4];
  return 0;
}

void
avm_imgset_free (struct avm_imgset *s)
{
  if (!s)
    return;
  free (s->android_info);
  for (size_t i = 0; i < s->n; i++)
    free (s->names[i]);
  for (size_t i = 0; i < ARRAY_SIZE (host_files); i++)
    free (s->host[i].data);
  free (s->dir);
  free (s->zip);
  free (s->hostpkg);
  avm_host_tally_clear (&s->tally);
  free (s);
}

int
avm_imgset_host_file (struct avm_imgset *s, const char *path, uint8_t **data, size_t *len, avm_error_t *err)
{
  if (s->hostpkg)
    {
      for (size_t i = 0; i < ARRAY_SIZE (host_files); i++)
        if (streq (host_files[i], path))
          {
            if (!s->host[i].present)
              return -ENOENT;
            *data = malloc (s->host[i].len ? s->host[i].len : 1);
            if (!*data)
              return avm_error_sys (err, ENOMEM, "%s", path);
            memcpy (*data, s->host[i].data, s->host[i].len);
            *len = s->host[i].len;
            return 0;
          }
      return -ENOENT;
    }
  _cleanup_free_ char *full = avm_path_join (s->dir, path);
  _cleanup_free_ char *buf = NULL;
  struct stat st;
  if (stat (full, &st) < 0)
    return errno == ENOENT ? -ENOENT : avm_error_sys (err, errno, "%s", full);
  int r = avm_read_file (full, MAX_HOST_FILE, "a host package file", &buf, len, err);
  if (r < 0)
    return r;
  *data = (uint8_t *) steal_pointer (&buf);
  return 0;
}

const char *
avm_imgset_bootloader_arch (const struct avm_imgset *s)
{
  static const char *const arches[] = { "x86_64", "aarch64" };
  for (size_t k = 0; k < 2; k++)
    {
      char path[64];
      snprintf (path, sizeof path, "etc/bootloader_%s/bootloader.qemu", arches[k]);
      if (s->hostpkg)
        {
          for (size_t i = 0; i < ARRAY_SIZE (host_files); i++)
            if (streq (host_files[i], path) && s->host[i].present)
              return arches[k];
        }
      else
        {
          _cleanup_free_ char *full = avm_path_join (s->dir, path);
          if (full && access (full, R_OK) == 0)
            return arches[k];
        }
    }
  return NULL;
}

const char *
avm_imgset_android_info (const struct avm_imgset *s)
{
  return s->android_info;
}
