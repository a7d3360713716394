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
 */
#include "cvdfixture.h"
#include "cvd2img/setcheck.h"
#include "disk/avb.h"
#include "disk/gpt.h"
#include "disk/propsync.h"
#include "disk/ubootenv.h"
#include "testutil.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strbuf.h"
#include "util/strv.h"

#include <archive.h>
#include <archive_entry.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pty.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

extern char **environ;

#define OLD_MTIME 1600000000

/* ------------------------------------------------------------------ */
/* Per-test scratch directory (and a tmpfs some tests mount).  */

static char *tmp;
static char *mnt;

static void
setup (void)
{
  tmp = tu_tmpdir ();
  mnt = NULL;
}

static char *last_error; /* message of the last expect_failure */

static void
teardown (void)
{
  free (last_error);
  last_error = NULL;
  if (mnt)
    {
      umount2 (mnt, MNT_DETACH);
      rmdir (mnt);
      free (mnt);
      mnt = NULL;
    }
  tu_rmtree (tmp);
  free (tmp);
}

TestSuite (cvd2img, .init = setup, .fini = teardown);

/* ------------------------------------------------------------------ */
/* Small helpers.  */

static char *
tpath (const char *name)
{
  return fx_join (tmp, name);
}

static uint64_t
file_size (const char *path)
{
  struct stat st;
  cr_assert_eq (stat (path, &st), 0, "stat %s: %s", path, strerror (errno));
  return st.st_size;
}

static bool
exists (const char *path)
{
  struct stat st;
  return lstat (path, &st) == 0;
}

static uint32_t
be32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint64_t
be64 (const uint8_t *p)
{
  return (uint64_t) be32 (p) << 32 | be32 (p + 4);
}

static uint32_t
le32 (const uint8_t *p)
{
  return (uint32_t) p[3] << 24 | (uint32_t) p[2] << 16 | (uint32_t) p[1] << 8 | p[0];
}

static void
put_le16 (uint8_t *p, uint16_t v)
{
  p[0] = v & 0xff;
  p[1] = v >> 8;
}

static void
put_le32 (uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++, v >>= 8)
    p[i] = v & 0xff;
}

static uint64_t
round4k (uint64_t v)
{
  return (v + 4095) / 4096 * 4096;
}

static bool
all_zero (const uint8_t *p, size_t n)
{
  return n == 0 || (p[0] == 0 && memcmp (p, p + 1, n - 1) == 0);
}

static void
digest_hex (const EVP_MD *md, const void *d, size_t n, char *out)
{
  uint8_t buf[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  cr_assert (EVP_Digest (d, n, buf, &len, md, NULL));
  for (unsigned i = 0; i < len; i++)
    sprintf (out + 2 * i, "%02x", buf[i]);
}

static bool
starts_with (const char *s, const char *prefix)
{
  return strncmp (s, prefix, strlen (prefix)) == 0;
}

/* The variables tu_avmv sets for a hermetic avm (NULL-terminated).  */
static char **
hermetic_vars (void)
{
  static char cache[128], config[128];
  static char *vars[] = { cache, config, NULL };
  snprintf (cache, sizeof cache, "XDG_CACHE_HOME=/tmp/avm-test-cache-%u", (unsigned) getuid ());
  snprintf (config, sizeof config, "XDG_CONFIG_HOME=/tmp/avm-test-config-%u", (unsigned) getuid ());
  return vars;
}

/* This environment with hermetic_vars (malloc'd vector), for posix_spawn.  */
static char **
avm_env (void)
{
  char **vars = hermetic_vars ();
  size_t n = 0;
  while (environ[n])
    n++;
  char **env = calloc (n + 3, sizeof *env);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!starts_with (environ[i], "XDG_CACHE_HOME=") && !starts_with (environ[i], "XDG_CONFIG_HOME="))
      env[k++] = environ[i];
  env[k++] = vars[0];
  env[k++] = vars[1];
  env[k] = NULL;
  return env;
}

/* ------------------------------------------------------------------ */
/* The fixture, generated once per run.  */

/* ------------------------------------------------------------------ */
/* Inputs must not change: contents (SHA-256), size and mtime.  */

struct snap
{
  size_t n;
  struct
  {
    char path[512];
    char sha[65];
    struct timespec mtime;
    off_t size;
  } f[64];
};

static struct snap *snap_cur;

static int
snap_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) ftw;
  if (flag != FTW_F || !S_ISREG (st->st_mode))
    return 0; /* a FIFO among the inputs is never opened here */
  cr_assert (snap_cur->n < ARRAY_SIZE (snap_cur->f));
  size_t len;
  _cleanup_free_ uint8_t *d = fx_read_bin (path, &len);
  snprintf (snap_cur->f[snap_cur->n].path, sizeof snap_cur->f[snap_cur->n].path, "%s", path);
  digest_hex (EVP_sha256 (), d, len, snap_cur->f[snap_cur->n].sha);
  snap_cur->f[snap_cur->n].mtime = st->st_mtim;
  snap_cur->f[snap_cur->n].size = st->st_size;
  snap_cur->n++;
  return 0;
}

static void
snap_take (struct snap *s, const char *const *paths)
{
  memset (s, 0, sizeof *s);
  snap_cur = s;
  for (size_t i = 0; paths[i]; i++)
    cr_assert_eq (nftw (paths[i], snap_one, 16, FTW_PHYS), 0, "%s", paths[i]);
  cr_assert (s->n > 0);
}

static void
snap_check (struct snap *s)
{
  for (size_t i = 0; i < s->n; i++)
    {
      struct stat st;
      size_t len;
      char sha[65];
      cr_assert_eq (stat (s->f[i].path, &st), 0, "input %s vanished", s->f[i].path);
      _cleanup_free_ uint8_t *d = fx_read_bin (s->f[i].path, &len);
      digest_hex (EVP_sha256 (), d, len, sha);
      cr_assert_str_eq (sha, s->f[i].sha, "input %s was modified", s->f[i].path);
      cr_assert_eq (st.st_size, s->f[i].size, "input %s changed size", s->f[i].path);
      cr_assert (st.st_mtim.tv_sec == s->f[i].mtime.tv_sec && st.st_mtim.tv_nsec == s->f[i].mtime.tv_nsec,
                 "input %s: mtime changed", s->f[i].path);
    }
  s->n = 0;
}

/* ------------------------------------------------------------------ */
/* GPT disks through sgdisk and sfdisk.  */

struct pinfo
{
  char name[64];
  uint64_t start, size; /* sectors */
};

struct disk
{
  size_t n;
  struct pinfo p[32];
  uint64_t firstlba, lastlba, bytes;
};

/* sgdisk --verify: "No problems found", apart from the notice every disk
   with the first usable LBA at 40 earns.  */
static void
sgdisk_verify (const char *path)
{
  _cleanup_free_ char *err = NULL;
  _cleanup_free_ char *out = fx_run_ok ((char *[]) { "sgdisk", "--verify", (char *) path, NULL }, &err);
  static const char notice[]
    = "Warning: There is a gap between the main partition table (ending sector 33)\n"
      "and the first usable sector (40). This is helpful in some exotic configurations,\n"
      "but is unusual. The util-linux fdisk program often creates disks like this.\n"
      "Using 'j' on the experts' menu can adjust this gap.\n";
  const char *rest = out;
  while (*rest == '\n')
    rest++;
  if (starts_with (rest, notice))
    rest += strlen (notice);
  while (*rest == '\n')
    rest++;
  cr_assert (starts_with (rest, "No problems found."), "sgdisk --verify %s:\n%s%s", path, out, err);
  cr_assert_null (strstr (rest, "Warning"), "sgdisk --verify %s:\n%s", path, out);
  cr_assert_null (strstr (rest, "Problem"), "sgdisk --verify %s:\n%s", path, out);
  cr_assert_null (strstr (rest, "Caution"), "sgdisk --verify %s:\n%s", path, out);
}

static void
sfdisk_read (const char *path, struct disk *d)
{
  _cleanup_free_ char *err = NULL;
  _cleanup_free_ char *out = fx_run_ok ((char *[]) { "sfdisk", "--json", (char *) path, NULL }, &err);
  cr_assert_str_empty (err, "sfdisk --json %s warns: %s", path, err);
  json_error_t jerr;
  json_t *root = json_loads (out, 0, &jerr);
  cr_assert_not_null (root, "sfdisk --json %s: %s\n%s", path, jerr.text, out);
  json_t *t = json_object_get (root, "partitiontable");
  cr_assert_str_eq (json_string_value (json_object_get (t, "label")), "gpt");
  cr_assert_eq (json_integer_value (json_object_get (t, "sectorsize")), 512);
  memset (d, 0, sizeof *d);
  d->firstlba = json_integer_value (json_object_get (t, "firstlba"));
  d->lastlba = json_integer_value (json_object_get (t, "lastlba"));
  d->bytes = file_size (path);
  json_t *parts = json_object_get (t, "partitions"), *e;
  size_t i;
  cr_assert (json_array_size (parts) <= ARRAY_SIZE (d->p));
  json_array_foreach (parts, i, e)
    {
      snprintf (d->p[i].name, sizeof d->p[i].name, "%s", json_string_value (json_object_get (e, "name")));
      d->p[i].start = json_integer_value (json_object_get (e, "start"));
      d->p[i].size = json_integer_value (json_object_get (e, "size"));
      cr_assert_str_eq (json_string_value (json_object_get (e, "type")), "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
                        "%s: %s: not Linux filesystem", path, d->p[i].name);
    }
  d->n = i;
  json_decref (root);
}

/* Check a disk against the layout rules: NAMES in this order with the
   given (padded) byte sizes, first LBA 40, 4 KiB-aligned back-to-back
   partitions, disk size a multiple of 64 KiB, backup GPT at the end; the
   library's reader must agree with sfdisk.  */
static void
check_disk (const char *path, const char *const *names, const uint64_t *sizes, size_t n, struct disk *d)
{
  sgdisk_verify (path);
  sfdisk_read (path, d);
  cr_assert_eq (d->bytes % 65536, 0, "%s: size %" PRIu64 " is not a multiple of 64 KiB", path, d->bytes);
  cr_assert_eq (d->firstlba, 40, "%s: first usable LBA %" PRIu64, path, d->firstlba);
  cr_assert_eq (d->lastlba, d->bytes / 512 - 34, "%s: last usable LBA %" PRIu64, path, d->lastlba);
  cr_assert_eq (d->n, n, "%s: %zu partitions, expected %zu", path, d->n, n);
  uint64_t next = 40;
  for (size_t i = 0; i < n; i++)
    {
      const struct pinfo *p = &d->p[i];
      cr_assert_str_eq (p->name, names[i], "%s: partition %zu is %s, expected %s", path, i + 1, p->name, names[i]);
      cr_assert_eq (p->start % 8, 0, "%s: %s starts at sector %" PRIu64 ", not 4 KiB-aligned", path, p->name,
                    p->start);
      cr_assert_eq (p->start, next, "%s: %s starts at %" PRIu64 ", expected %" PRIu64, path, p->name, p->start, next);
      cr_assert_eq (p->size * 512, sizes[i], "%s: %s is %" PRIu64 " bytes, expected %" PRIu64, path, p->name,
                    p->size * 512, sizes[i]);
      next = p->start + p->size;
    }
  cr_assert_leq (next, d->lastlba + 1, "%s: partitions overlap the backup GPT", path);

  struct avm_gpt *g = malloc (sizeof *g);
  _cleanup_error_ avm_error_t err = NULL;
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  cr_assert (fd >= 0);
  cr_assert_eq (avm_gpt_read (fd, d->bytes, path, g, &err), 0, "avm_gpt_read: %s", err ? err->msg : "");
  close (fd);
  cr_assert_eq (g->n, n);
  for (size_t i = 0; i < n; i++)
    {
      cr_assert_str_eq (g->parts[i].name, d->p[i].name);
      cr_assert_eq (g->parts[i].offset, d->p[i].start * 512, "%s", d->p[i].name);
      cr_assert_eq (g->parts[i].first_lba, d->p[i].start, "%s", d->p[i].name);
      cr_assert_eq (g->parts[i].last_lba, d->p[i].start + d->p[i].size - 1, "%s", d->p[i].name);
    }
  free (g);
}

static const struct pinfo *
dpart (const struct disk *d, const char *name)
{
  for (size_t i = 0; i < d->n; i++)
    if (streq (d->p[i].name, name))
      return &d->p[i];
  return NULL;
}

/* The output uses at most 2% more blocks than its non-zero 4 KiB blocks,
   plus 256 KiB: zeros (blank partitions, padding, zero fills) are holes.  */
static void
check_sparse_file (const char *path)
{
  struct stat st;
  cr_assert_eq (stat (path, &st), 0);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  cr_assert (fd >= 0);
  uint8_t *buf = malloc (MIB);
  uint64_t nonzero = 0;
  /* Holes read as zeros: only the data segments need reading.  */
  for (off_t data = lseek (fd, 0, SEEK_DATA); data >= 0 && data < st.st_size; data = lseek (fd, data, SEEK_DATA))
    {
      off_t hole = lseek (fd, data, SEEK_HOLE);
      cr_assert (hole > data);
      data = data / BLK * BLK;
      for (off_t off = data; off < hole; off += MIB)
        {
          ssize_t n = pread (fd, buf, hole - off < MIB ? hole - off : MIB, off);
          cr_assert (n > 0);
          for (ssize_t b = 0; b < n; b += BLK)
            if (!all_zero (buf + b, n - b < BLK ? (size_t) (n - b) : BLK))
              nonzero += BLK;
        }
      data = (hole + BLK - 1) / BLK * BLK;
    }
  free (buf);
  close (fd);
  uint64_t alloc = (uint64_t) st.st_blocks * 512;
  cr_assert_leq (alloc, nonzero * 102 / 100 + 256 * 1024,
                 "%s is not sparse: %" PRIu64 " bytes allocated for %" PRIu64 " bytes of non-zero blocks", path, alloc,
                 nonzero);
}

/* Bytes [OFF, OFF + ROOM) of FD are EXPECT (LEN bytes) followed by zeros.  */
static void
check_region (int fd, uint64_t off, uint64_t room, const uint8_t *expect, size_t len, const char *what)
{
  cr_assert_leq (len, room, "%s: image of %zu bytes in %" PRIu64 " bytes", what, len, room);
  uint8_t *buf = malloc (MIB);
  for (uint64_t done = 0; done < room;)
    {
      size_t want = room - done < MIB ? room - done : MIB;
      if (done >= len)
        {
          /* Past the image: a hole needs no reading.  */
          off_t data = lseek (fd, off + done, SEEK_DATA);
          if (data < 0 || (uint64_t) data >= off + room)
            break;
          if ((uint64_t) data >= off + done + want)
            {
              done = (data - off) / BLK * BLK;
              continue;
            }
        }
      cr_assert_eq (pread (fd, buf, want, off + done), (ssize_t) want, "%s: short read", what);
      size_t img = done < len ? (len - done < want ? len - done : want) : 0;
      if (img && memcmp (buf, expect + done, img) != 0)
        for (size_t i = 0; i < img; i++)
          if (buf[i] != expect[done + i])
            cr_assert_fail ("%s: byte %" PRIu64 " of the partition is 0x%02x, expected 0x%02x (image data)", what,
                            done + i, buf[i], expect[done + i]);
      if (!all_zero (buf + img, want - img))
        for (size_t i = img; i < want; i++)
          if (buf[i])
            cr_assert_fail ("%s: byte %" PRIu64 " of the partition is 0x%02x, expected 0 (%s)", what, done + i,
                            buf[i], len ? "padding after the image" : "blank partition");
      done += want;
    }
  free (buf);
}

/* ------------------------------------------------------------------ */
/* What a conversion must produce.  */

struct ctx
{
  const char *images;     /* directory with the input images (compared against) */
  const char *arch;       /* "x86_64" or "aarch64" */
  const char *bootloader; /* file the bootloader output must equal */
  bool optional;          /* init_boot and the dlkm vbmetas present */
  bool virgl;             /* properties_virgl.img expected */
  bool key_copied;        /* avb_key.pem expected (the host package's key) */
  bool tree;              /* the host package's tree expected in the output */
  const char *host_src;   /* the directory the tree must equal (default: IMAGES) */
  char *const *host_entries; /* its top-level entries (default: fx_host_entries) */
  char *keyfile;          /* the host package's signing key in the fixture */
  char *pubpem;           /* `openssl rsa -pubout` of the signing key */
  uint8_t pubkey[AVM_AVB_PUBKEY_SIZE];
  char key_sha1[41];
  char *expanded[2]; /* simg2img of super.img and userdata.img */
};

static void
ctx_init (struct ctx *c, const char *images, const char *arch, const char *bootloader)
{
  memset (c, 0, sizeof *c);
  c->images = images;
  c->arch = arch;
  c->bootloader = bootloader;
  c->virgl = true;
  c->key_copied = true;
  c->tree = true;
  c->host_src = images;
  c->host_entries = fx_host_entries;
  c->keyfile = fx_path ("cvd/" KEY_PEM);
  char *key = c->keyfile;
  _cleanup_free_ char *pub = fx_path ("cvd/" KEY_PUB);
  c->pubpem = tpath ("pub.pem");
  if (!exists (c->pubpem))
    free (fx_run_ok ((char *[]) { "openssl", "rsa", "-in", key, "-pubout", "-out", c->pubpem, NULL }, NULL));
  size_t len;
  _cleanup_free_ uint8_t *blob = fx_read_bin (pub, &len);
  cr_assert_eq (len, AVM_AVB_PUBKEY_SIZE);
  memcpy (c->pubkey, blob, len);
  digest_hex (EVP_sha1 (), blob, len, c->key_sha1);
}

static void
ctx_free (struct ctx *c)
{
  free (c->keyfile);
  free (c->pubpem);
  free (c->expanded[0]);
  free (c->expanded[1]);
}

struct want_part
{
  const char *name;
  const char *image; /* NULL: blank */
  uint64_t blank;
  bool vbmeta, optional;
};

/* Cuttlefish's OS disk (cuttlefish.md 2.1), written down here rather than
   taken from lib/cvd2img/cvd2img.c.  */
static const struct want_part sys_parts[] = {
  { "misc", NULL, MIB, false, false },
  { "boot_a", "boot.img", 0, false, false },
  { "boot_b", "boot.img", 0, false, false },
  { "init_boot_a", "init_boot.img", 0, false, true },
  { "init_boot_b", "init_boot.img", 0, false, true },
  { "vendor_boot_a", "vendor_boot.img", 0, false, false },
  { "vendor_boot_b", "vendor_boot.img", 0, false, false },
  { "vbmeta_a", "vbmeta.img", 0, true, false },
  { "vbmeta_b", "vbmeta.img", 0, true, false },
  { "vbmeta_system_a", "vbmeta_system.img", 0, true, false },
  { "vbmeta_system_b", "vbmeta_system.img", 0, true, false },
  { "vbmeta_vendor_dlkm_a", "vbmeta_vendor_dlkm.img", 0, true, true },
  { "vbmeta_vendor_dlkm_b", "vbmeta_vendor_dlkm.img", 0, true, true },
  { "vbmeta_system_dlkm_a", "vbmeta_system_dlkm.img", 0, true, true },
  { "vbmeta_system_dlkm_b", "vbmeta_system_dlkm.img", 0, true, true },
  { "super", "super.img", 0, false, false },
  { "userdata", "userdata.img", 0, false, false },
  { "metadata", NULL, 64 * MIB, false, false },
};

static bool
is_sparse (const char *path)
{
  size_t len;
  _cleanup_free_ uint8_t *d = fx_read_bin (path, &len);
  return len >= 4 && le32 (d) == 0xed26ff3a;
}

/* The raw bytes an image stands for: the file itself, or simg2img's
   expansion of it (checked against the raw file the fixture started from).  */
static char *
image_bytes_path (struct ctx *c, const char *image, bool *sparse)
{
  _cleanup_free_ char *path = fx_join (c->images, image);
  *sparse = is_sparse (path);
  if (!*sparse)
    return steal_pointer (&path);
  int k = streq (image, "super.img") ? 0 : 1;
  cr_assert (streq (image, "super.img") || streq (image, "userdata.img"), "unexpected sparse %s", image);
  if (!c->expanded[k])
    {
      char name[64];
      snprintf (name, sizeof name, "simg2img-%s.raw", image);
      c->expanded[k] = tpath (name);
      free (fx_run_ok ((char *[]) { "simg2img", path, c->expanded[k], NULL }, NULL));
      char src[64];
      snprintf (src, sizeof src, "src/%.*s.raw", (int) (strlen (image) - 4), image);
      _cleanup_free_ char *orig = fx_path (src);
      size_t a, b;
      _cleanup_free_ uint8_t *x = fx_read_bin (c->expanded[k], &a), *y = fx_read_bin (orig, &b);
      cr_assert (a == b && memcmp (x, y, a) == 0, "fixture: simg2img %s does not give back %s", path, orig);
    }
  return strdup (c->expanded[k]);
}

/* system.img: layout (a, b), contents (a), sparseness (c).  */
static void
check_system (struct ctx *c, const char *path, struct disk *d)
{
  const char *names[ARRAY_SIZE (sys_parts)];
  uint64_t sizes[ARRAY_SIZE (sys_parts)];
  char *bytes[ARRAY_SIZE (sys_parts)];
  size_t n = 0;
  for (size_t i = 0; i < ARRAY_SIZE (sys_parts); i++)
    {
      const struct want_part *w = &sys_parts[i];
      if (w->optional && !c->optional)
        continue;
      names[n] = w->name;
      bytes[n] = NULL;
      if (!w->image)
        sizes[n] = w->blank;
      else
        {
          bool sparse;
          bytes[n] = image_bytes_path (c, w->image, &sparse);
          sizes[n] = w->vbmeta ? 65536 : round4k (file_size (bytes[n]));
        }
      n++;
    }
  check_disk (path, names, sizes, n, d);

  int fd = open (path, O_RDONLY | O_CLOEXEC);
  cr_assert (fd >= 0);
  for (size_t i = 0; i < n; i++)
    {
      size_t len = 0;
      _cleanup_free_ uint8_t *exp = bytes[i] ? fx_read_bin (bytes[i], &len) : NULL;
      char what[128];
      snprintf (what, sizeof what, "%s: partition %s (%s)", path, names[i], bytes[i] ? bytes[i] : "blank");
      check_region (fd, d->p[i].start * 512, d->p[i].size * 512, exp, len, what);
      free (bytes[i]);
    }
  /* The gaps: after the primary GPT up to LBA 40 there are only zeros.  */
  uint8_t gap[40 * 512 - 34 * 512];
  cr_assert_eq (pread (fd, gap, sizeof gap, 34 * 512), (ssize_t) sizeof gap);
  cr_assert (all_zero (gap, sizeof gap), "%s: bytes between the GPT entries and LBA 40 are not zero", path);
  close (fd);
  check_sparse_file (path);
}

/* --- AVB, checked with the OpenSSL command line.  --- */

struct avb_desc
{
  bool has_hash;
  char hash_part[64], hash_alg[33];
  uint64_t image_size;
  uint8_t salt[64], digest[64];
  uint32_t salt_len, digest_len;
  size_t nchains;
  struct
  {
    char name[64];
    uint32_t loc;
    const uint8_t *key;
    uint32_t key_len;
  } chains[4];
};

/* Verify the vbmeta image at P (AVAIL bytes there): magic, SHA256_RSA4096,
   the hash in the authentication block, the RSA signature over
   header || auxiliary block with `openssl dgst -sha256 -verify`, the
   embedded public key; parse the descriptors.  Returns the blob's size.  */
static size_t
verify_vbmeta_openssl (struct ctx *c, const uint8_t *p, size_t avail, const char *what, struct avb_desc *dd)
{
  cr_assert (avail >= 256 && memcmp (p, "AVB0", 4) == 0, "%s: no vbmeta image (AVB0)", what);
  uint64_t auth = be64 (p + 12), aux = be64 (p + 20);
  cr_assert_eq (be32 (p + 28), 2, "%s: algorithm %u, expected SHA256_RSA4096 (2)", what, be32 (p + 28));
  cr_assert (auth < avail && aux < avail && 256 + auth + aux <= avail, "%s: blocks overrun", what);
  uint64_t hoff = be64 (p + 32), hsz = be64 (p + 40), soff = be64 (p + 48), ssz = be64 (p + 56);
  uint64_t pkoff = be64 (p + 64), pksz = be64 (p + 72), doff = be64 (p + 96), dsz = be64 (p + 104);
  cr_assert (hsz == 32 && hoff + hsz <= auth, "%s: hash", what);
  cr_assert (ssz == 512 && soff + ssz <= auth, "%s: signature", what);
  cr_assert (pkoff + pksz <= aux && doff + dsz <= aux, "%s: aux", what);
  const uint8_t *A = p + 256, *X = p + 256 + auth;

  size_t dlen = 256 + aux;
  uint8_t *data = malloc (dlen);
  memcpy (data, p, 256);
  memcpy (data + 256, X, aux);
  char hex[65], want[65];
  digest_hex (EVP_sha256 (), data, dlen, hex);
  for (int i = 0; i < 32; i++)
    sprintf (want + 2 * i, "%02x", A[hoff + i]);
  cr_assert_str_eq (hex, want, "%s: the authentication block's hash is not SHA-256 of header || aux", what);

  char dname[96], sname[96];
  snprintf (dname, sizeof dname, "avb-%s.data", what);
  snprintf (sname, sizeof sname, "avb-%s.sig", what);
  for (char *q = dname; *q; q++)
    if (*q == '/')
      *q = '_';
  for (char *q = sname; *q; q++)
    if (*q == '/')
      *q = '_';
  _cleanup_free_ char *df = tpath (dname), *sf = tpath (sname);
  fx_write_bin (df, data, dlen);
  fx_write_bin (sf, A + soff, ssz);
  free (data);
  _cleanup_free_ char *openssl = fx_tool ("openssl"), *out = NULL, *oerr = NULL;
  int rc = tu_run ((char *[]) { openssl, "dgst", "-sha256", "-verify", c->pubpem, "-signature", sf, df, NULL }, NULL,
                   &out, &oerr);
  cr_assert (rc == 0 && streq (out, "Verified OK\n"),
             "%s: the RSA signature does not verify: openssl dgst -sha256 -verify exit %d: %s%s", what, rc, out, oerr);

  cr_assert_eq (pksz, AVM_AVB_PUBKEY_SIZE, "%s: public key size", what);
  cr_assert (memcmp (X + pkoff, c->pubkey, pksz) == 0, "%s: embedded public key is not %s", what, KEY_PUB);

  memset (dd, 0, sizeof *dd);
  for (uint64_t at = doff; at + 16 <= doff + dsz;)
    {
      const uint8_t *e = X + at;
      uint64_t tag = be64 (e), nbf = be64 (e + 8);
      cr_assert (nbf % 8 == 0 && at + 16 + nbf <= doff + dsz, "%s: descriptor at %" PRIu64 " overruns", what, at);
      if (tag == 2)
        {
          cr_assert (nbf + 16 >= 132);
          dd->has_hash = true;
          dd->image_size = be64 (e + 16);
          memcpy (dd->hash_alg, e + 24, 32);
          uint32_t nl = be32 (e + 56);
          dd->salt_len = be32 (e + 60);
          dd->digest_len = be32 (e + 64);
          cr_assert (nl < 64 && dd->salt_len <= 64 && dd->digest_len <= 64
                     && 132 + nl + dd->salt_len + dd->digest_len <= nbf + 16);
          memcpy (dd->hash_part, e + 132, nl);
          memcpy (dd->salt, e + 132 + nl, dd->salt_len);
          memcpy (dd->digest, e + 132 + nl + dd->salt_len, dd->digest_len);
        }
      else if (tag == 4)
        {
          cr_assert (dd->nchains < 4 && nbf + 16 >= 92);
          uint32_t loc = be32 (e + 16), nl = be32 (e + 20), kl = be32 (e + 24);
          cr_assert (nl < 64 && 92 + nl + kl <= nbf + 16);
          dd->chains[dd->nchains].loc = loc;
          memcpy (dd->chains[dd->nchains].name, e + 92, nl);
          dd->chains[dd->nchains].key = e + 92 + nl;
          dd->chains[dd->nchains].key_len = kl;
          dd->nchains++;
        }
      at += 16 + nbf;
    }
  return 256 + auth + aux;
}

/* A partition with a hash footer: the footer, the vbmeta image at its
   vbmeta_offset verified with openssl, the hash descriptor's digest of
   salt || image recomputed, and the library's verifier.  Returns the
   original image (malloc'd copy) and its size.  */
static uint8_t *
check_footer_partition (struct ctx *c, const uint8_t *part, size_t psize, const char *name, const char *what,
                        size_t *image_len)
{
  cr_assert (psize >= 64 + 4096);
  const uint8_t *f = part + psize - 64;
  cr_assert (memcmp (f, "AVBf", 4) == 0, "%s: no AVB footer", what);
  uint64_t orig = be64 (f + 12), vboff = be64 (f + 20), vbsize = be64 (f + 28);
  cr_assert (orig <= vboff && vboff + vbsize <= psize - 64, "%s: footer offsets", what);
  cr_assert_eq (vboff % 4096, 0, "%s: vbmeta_offset %" PRIu64 " not 4 KiB-aligned", what, vboff);
  struct avb_desc dd;
  size_t blob = verify_vbmeta_openssl (c, part + vboff, psize - 64 - vboff, what, &dd);
  cr_assert_eq (blob, vbsize, "%s: footer vbmeta_size", what);
  cr_assert (dd.has_hash, "%s: no hash descriptor", what);
  cr_assert_str_eq (dd.hash_part, name, "%s: hash descriptor names %s", what, dd.hash_part);
  cr_assert_str_eq (dd.hash_alg, "sha256");
  cr_assert_eq (dd.image_size, orig);
  cr_assert_eq (dd.digest_len, 32);
  uint8_t *sd = malloc (dd.salt_len + orig);
  memcpy (sd, dd.salt, dd.salt_len);
  memcpy (sd + dd.salt_len, part, orig);
  char hex[65], want[65];
  digest_hex (EVP_sha256 (), sd, dd.salt_len + orig, hex);
  free (sd);
  for (int i = 0; i < 32; i++)
    sprintf (want + 2 * i, "%02x", dd.digest[i]);
  cr_assert_str_eq (hex, want, "%s: hash descriptor digest is not SHA-256(salt || image)", what);

  struct avm_avb_info info;
  _cleanup_error_ avm_error_t err = NULL;
  cr_assert_eq (avm_avb_verify_footer (part, psize, what, &info, &err), 0, "%s", err ? err->msg : "");
  cr_assert (info.has_footer && info.signature_ok && info.hash_ok && info.digest_ok,
             "%s: library verifier: signature_ok %d hash_ok %d digest_ok %d", what, info.signature_ok, info.hash_ok,
             info.digest_ok);
  cr_assert_str_eq (info.partition, name);
  cr_assert_eq (info.original_size, orig);
  cr_assert_str_eq (info.key_sha1, c->key_sha1);

  uint8_t *img = malloc (orig + 1);
  memcpy (img, part, orig);
  img[orig] = 0;
  *image_len = orig;
  return img;
}

/* properties(.virgl).img: layout, U-Boot env, vbmeta, frp, bootconfig.
   Returns the bootconfig text (malloc'd).  */
static char *
check_props (struct ctx *c, const char *path, struct disk *d)
{
  size_t len;
  _cleanup_free_ uint8_t *disk = fx_read_bin (path, &len);
  /* bootconfig's size depends on its text: read it from the footer first.  */
  sfdisk_read (path, d);
  const struct pinfo *bcp = dpart (d, "bootconfig");
  cr_assert_not_null (bcp, "%s: no bootconfig partition", path);
  const uint8_t *bcpart = disk + bcp->start * 512;
  uint64_t bclen = be64 (bcpart + bcp->size * 512 - 64 + 12);
  const char *names[] = { "uboot_env", "vbmeta", "frp", "bootconfig" };
  const uint64_t sizes[] = { 73728, 65536, MIB, round4k (69632 + bclen) };
  check_disk (path, names, sizes, 4, d);

  /* uboot_env: 4096-byte environment (CRC32, entries, 0xFF) + footer.  */
  char what[160];
  snprintf (what, sizeof what, "%s:uboot_env", path);
  size_t envlen;
  _cleanup_free_ uint8_t *env = check_footer_partition (c, disk + d->p[0].start * 512, 73728, "uboot_env", what,
                                                        &envlen);
  cr_assert_eq (envlen, 4096, "%s: environment of %zu bytes", what, envlen);
  cr_assert_eq (le32 (env), (uint32_t) crc32 (0, env + 4, 4092), "%s: CRC32 mismatch", what);
  size_t at = 4;
  while (at < 4096 && env[at])
    at += strlen ((char *) env + at) + 1;
  cr_assert (at < 4096 && env[at] == 0, "%s: no terminating empty entry", what);
  for (size_t i = at + 1; i < 4096; i++)
    cr_assert_eq (env[i], 0xff, "%s: byte %zu after the entries is 0x%02x, expected 0xff", what, i, env[i]);
  _cleanup_strv_ char **entries = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  cr_assert_eq (avm_uboot_env_parse (env, 4096, &entries, &err), 0, "%s: %s", what, err ? err->msg : "");
  cr_assert_eq (avm_strv_length (entries), 2, "%s: %zu entries", what, avm_strv_length (entries));
  cr_assert_str_eq (entries[0], "ethprime=eth1");
  char want[1024];
  snprintf (want, sizeof want,
            "uenvcmd=setenv bootargs \"$cbootargs console=hvc0 %s\" && bcb load virtio 0 misc; if bcb test command "
            "= boot-quiescent; then setenv bootargs \"$bootargs androidboot.quiescent=1\"; bcb clear command; bcb "
            "store; fi; run bootcmd_android",
            streq (c->arch, "aarch64") ? "earlycon=pl011,mmio32,0x9000000" : "earlycon=uart8250,io,0x3f8 pnpacpi=off");
  cr_assert_str_eq (entries[1], want, "%s: uenvcmd", what);

  /* vbmeta: chains uboot_env:1 and bootconfig:2 with the key, zero-padded.  */
  snprintf (what, sizeof what, "%s:vbmeta", path);
  const uint8_t *vb = disk + d->p[1].start * 512;
  struct avb_desc dd;
  size_t blob = verify_vbmeta_openssl (c, vb, 65536, what, &dd);
  cr_assert (all_zero (vb + blob, 65536 - blob), "%s: not zero after the vbmeta image", what);
  cr_assert (!dd.has_hash);
  cr_assert_eq (dd.nchains, 2, "%s: %zu chain descriptors", what, dd.nchains);
  static const char *const cn[] = { "uboot_env", "bootconfig" };
  for (size_t i = 0; i < 2; i++)
    {
      cr_assert_str_eq (dd.chains[i].name, cn[i]);
      cr_assert_eq (dd.chains[i].loc, i + 1);
      cr_assert (dd.chains[i].key_len == AVM_AVB_PUBKEY_SIZE && memcmp (dd.chains[i].key, c->pubkey, 1032) == 0,
                 "%s: chain %s: not the host package's public key", what, cn[i]);
    }
  struct avm_avb_info info;
  cr_assert_eq (avm_avb_verify_vbmeta (vb, 65536, what, &info, &err), 0, "%s", err ? err->msg : "");
  cr_assert (info.signature_ok && info.hash_ok, "%s: library verifier: signature_ok %d hash_ok %d", what,
             info.signature_ok, info.hash_ok);
  cr_assert_str_eq (info.key_sha1, c->key_sha1);
  cr_assert_eq (info.n_chains, 2);
  for (size_t i = 0; i < 2; i++)
    {
      cr_assert_str_eq (info.chains[i].partition, cn[i]);
      cr_assert_eq (info.chains[i].location, i + 1);
      cr_assert_str_eq (info.chains[i].key_sha1, c->key_sha1);
    }

  /* frp: blank.  */
  cr_assert (all_zero (disk + d->p[2].start * 512, MIB), "%s: frp is not blank", path);

  /* bootconfig: "key=value\n" lines + footer.  */
  snprintf (what, sizeof what, "%s:bootconfig", path);
  size_t tlen;
  char *text = (char *) check_footer_partition (c, disk + d->p[3].start * 512, d->p[3].size * 512, "bootconfig",
                                                what, &tlen);
  cr_assert_eq (strlen (text), tlen, "%s: NUL in the text", what);
  cr_assert (tlen > 0 && text[tlen - 1] == '\n', "%s: text does not end with a newline", what);
  for (const char *l = text; *l;)
    {
      const char *nl = strchr (l, '\n');
      const char *eq = memchr (l, '=', nl - l);
      cr_assert (eq && eq > l && eq + 1 < nl, "%s: malformed line \"%.*s\"", what, (int) (nl - l), l);
      l = nl + 1;
    }
  check_sparse_file (path);
  return text;
}

static bool
has_line (const char *text, const char *line)
{
  size_t n = strlen (line);
  for (const char *l = text; *l;)
    {
      const char *nl = strchr (l, '\n');
      size_t ll = nl ? (size_t) (nl - l) : strlen (l);
      if (ll == n && memcmp (l, line, n) == 0)
        return true;
      if (!nl)
        break;
      l = nl + 1;
    }
  return false;
}

#define assert_line(text, line, what)                                                                              \
  cr_assert (has_line ((text), (line)), "%s: bootconfig lacks \"%s\":\n%s", (what), (line), (text))

/* manifest.json against sfdisk (h).  */
static void
check_manifest_parts (json_t *sec, const struct disk *d, const char *what)
{
  cr_assert_not_null (sec, "manifest.json: no %s", what);
  json_t *parts = json_object_get (sec, "partitions"), *e;
  size_t i;
  cr_assert_eq (json_array_size (parts), d->n, "manifest.json: %s: %zu partitions, sfdisk lists %zu", what,
                json_array_size (parts), d->n);
  json_array_foreach (parts, i, e)
    {
      const struct pinfo *p = &d->p[i];
      uint64_t off = json_integer_value (json_object_get (e, "offset"));
      uint64_t size = json_integer_value (json_object_get (e, "size"));
      cr_assert_str_eq (json_string_value (json_object_get (e, "name")), p->name, "manifest.json: %s[%zu]", what, i);
      cr_assert_eq (off, p->start * 512, "manifest.json: %s: %s offset %" PRIu64, what, p->name, off);
      cr_assert_eq (round4k (size), p->size * 512, "manifest.json: %s: %s size %" PRIu64, what, p->name, size);
      cr_assert_eq ((uint64_t) json_integer_value (json_object_get (e, "first_lba")), p->start);
      cr_assert_eq ((uint64_t) json_integer_value (json_object_get (e, "last_lba")), p->start + p->size - 1);
    }
  cr_assert_eq ((uint64_t) json_integer_value (json_object_get (sec, "size")), d->bytes, "manifest.json: %s size",
                what);
}

/* The output directory holds exactly NAMES: no temporaries.  */
static void
check_dir_entries (const char *dir, const char *const *names, size_t n)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  size_t seen = 0;
  cr_assert_not_null (d, "%s: %s", dir, strerror (errno));
  while ((e = readdir (d)))
    {
      if (streq (e->d_name, ".") || streq (e->d_name, ".."))
        continue;
      cr_assert (e->d_name[0] != '.', "%s: temporary %s left behind", dir, e->d_name);
      bool known = false;
      for (size_t i = 0; i < n; i++)
        known |= streq (e->d_name, names[i]);
      cr_assert (known, "%s: unexpected file %s", dir, e->d_name);
      seen++;
    }
  closedir (d);
  cr_assert_eq (seen, n, "%s: %zu files, expected %zu", dir, seen, n);
}

struct result
{
  char *bc, *bc_virgl;
  json_t *manifest;
  struct disk sys, props, virgl;
};

static void
result_free (struct result *r)
{
  free (r->bc);
  free (r->bc_virgl);
  json_decref (r->manifest);
}

/* DST is a copy of SRC by the host package's rules: the same types,
   contents and link targets, a file's permission bits without setuid,
   setgid and sticky, a directory's plus rwx for its owner; nothing more.
   *BYTES and *COUNT add up its files' sizes and its entries.  */
static void
compare_tree (const char *src, const char *dst, uint64_t *bytes, size_t *count)
{
  struct stat a, b;
  cr_assert_eq (lstat (src, &a), 0, "%s: %s", src, strerror (errno));
  cr_assert_eq (lstat (dst, &b), 0, "%s is missing (a copy of %s)", dst, src);
  cr_assert_eq (a.st_mode & S_IFMT, b.st_mode & S_IFMT, "%s is not of the type of %s", dst, src);
  ++*count;
  if (S_ISLNK (a.st_mode))
    {
      char ta[PATH_MAX], tb[PATH_MAX];
      ssize_t na = readlink (src, ta, sizeof ta), nb = readlink (dst, tb, sizeof tb);
      cr_assert (na > 0 && na == nb && memcmp (ta, tb, na) == 0, "%s does not point where %s does", dst, src);
      return;
    }
  if (S_ISREG (a.st_mode))
    {
      size_t la, lb;
      _cleanup_free_ uint8_t *x = fx_read_bin (src, &la), *y = fx_read_bin (dst, &lb);
      cr_assert (la == lb && memcmp (x, y, la) == 0, "%s is not a copy of %s", dst, src);
      cr_assert_eq (b.st_mode & 07777, a.st_mode & 0777, "%s: mode %o, %s has %o", dst, b.st_mode & 07777, src,
                    a.st_mode & 07777);
      *bytes += la;
      return;
    }
  cr_assert (S_ISDIR (a.st_mode));
  cr_assert_eq (b.st_mode & 07777, (a.st_mode & 0777) | 0700, "%s: mode %o, %s has %o", dst, b.st_mode & 07777, src,
                a.st_mode & 07777);
  DIR *d = opendir (src);
  struct dirent *e;
  size_t n = 0, m = 0;
  cr_assert_not_null (d);
  while ((e = readdir (d)))
    if (!streq (e->d_name, ".") && !streq (e->d_name, ".."))
      {
        _cleanup_free_ char *s2 = fx_join (src, e->d_name), *d2 = fx_join (dst, e->d_name);
        compare_tree (s2, d2, bytes, count);
        n++;
      }
  closedir (d);
  d = opendir (dst);
  while ((e = readdir (d)))
    m += !streq (e->d_name, ".") && !streq (e->d_name, "..");
  closedir (d);
  cr_assert_eq (m, n, "%s has %zu entries, %s %zu", dst, m, src, n);
}

/* The host package's tree in OUT, and what manifest.json says of it.  */
static void
check_tree (const struct ctx *c, const char *out, json_t *manifest)
{
  json_t *hp = json_object_get (manifest, "host_package");
  if (!c->tree)
    {
      cr_assert_null (hp, "manifest.json describes a host package tree, yet none was expected");
      return;
    }
  uint64_t bytes = 0;
  size_t count = 0, n = 0;
  json_t *entries = json_object_get (hp, "entries");
  for (; c->host_entries[n]; n++)
    {
      _cleanup_free_ char *src = fx_join (c->host_src, c->host_entries[n]), *dst = fx_join (out, c->host_entries[n]);
      compare_tree (src, dst, &bytes, &count);
      cr_assert_str_eq (json_string_value (json_array_get (entries, n)), c->host_entries[n], "manifest.json: entries");
    }
  cr_assert_eq (json_array_size (entries), n, "manifest.json: %zu entries, expected %zu", json_array_size (entries), n);
  cr_assert_eq ((uint64_t) json_integer_value (json_object_get (hp, "size")), bytes, "manifest.json: size");
  cr_assert_eq ((size_t) json_integer_value (json_object_get (hp, "count")), count, "manifest.json: count");
  cr_assert (json_is_array (json_object_get (hp, "markers")));

  /* The package's executables run: setuid gone, the execute bits kept.  */
  _cleanup_free_ char *tool = fx_join (out, "bin/tool");
  struct stat st;
  if (avm_strv_contains (c->host_entries, "bin"))
    {
      cr_assert_eq (stat (tool, &st), 0, "%s: %s", tool, strerror (errno));
      cr_assert_eq (st.st_mode & 07777, 0755, "%s: mode %o", tool, st.st_mode & 07777);
    }
}

/* Everything about the outputs of a conversion in OUT.  */
static void
check_all (struct ctx *c, const char *out, struct result *r)
{
  memset (r, 0, sizeof *r);
  const char *names[16] = { "system.img", "properties.img", "bootloader", "manifest.json", "android-info.txt" };
  size_t n = 5;
  if (c->virgl)
    names[n++] = "properties_virgl.img";
  if (c->key_copied)
    names[n++] = "avb_key.pem";
  for (size_t i = 0; c->tree && c->host_entries[i]; i++)
    names[n++] = c->host_entries[i];
  check_dir_entries (out, names, n);

  _cleanup_free_ char *sys = fx_join (out, "system.img"), *props = fx_join (out, "properties.img");
  _cleanup_free_ char *virgl = fx_join (out, "properties_virgl.img"), *bl = fx_join (out, "bootloader");
  _cleanup_free_ char *man = fx_join (out, "manifest.json");
  check_system (c, sys, &r->sys);
  r->bc = check_props (c, props, &r->props);
  if (c->virgl)
    r->bc_virgl = check_props (c, virgl, &r->virgl);

  size_t a, b;
  _cleanup_free_ uint8_t *x = fx_read_bin (bl, &a), *y = fx_read_bin (c->bootloader, &b);
  cr_assert (a == b && memcmp (x, y, a) == 0, "%s is not a copy of %s", bl, c->bootloader);

  json_error_t jerr;
  r->manifest = json_load_file (man, 0, &jerr);
  cr_assert_not_null (r->manifest, "%s: %s", man, jerr.text);
  cr_assert_str_eq (json_string_value (json_object_get (r->manifest, "arch")), c->arch);
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (r->manifest, "key"), "sha1")), c->key_sha1);
  check_manifest_parts (json_object_get (r->manifest, "system"), &r->sys, "system");
  check_manifest_parts (json_object_get (r->manifest, "properties"), &r->props, "properties");
  if (c->virgl)
    check_manifest_parts (json_object_get (r->manifest, "properties_virgl"), &r->virgl, "properties_virgl");
  else
    cr_assert_null (json_object_get (r->manifest, "properties_virgl"));
  json_t *sp = json_object_get (json_object_get (r->manifest, "system"), "partitions"), *e;
  size_t i;
  json_array_foreach (sp, i, e)
    {
      const char *name = json_string_value (json_object_get (e, "name"));
      bool want = streq (name, "super") || streq (name, "userdata");
      cr_assert_eq (json_is_true (json_object_get (e, "sparse")), want, "manifest.json: %s sparse", name);
    }
  cr_assert_eq ((uint64_t) json_integer_value (json_object_get (json_object_get (r->manifest, "bootloader"), "size")),
                b);
  /* The tree, and the images' android-info.txt, recorded.  */
  check_tree (c, out, r->manifest);
  _cleanup_free_ char *info = fx_join (out, "android-info.txt"), *src_info = fx_join (c->images, "android-info.txt");
  _cleanup_free_ uint8_t *ia = fx_read_bin (info, &a), *ib = fx_read_bin (src_info, &b);
  cr_assert (a == b && memcmp (ia, ib, a) == 0, "%s is not a copy of %s", info, src_info);
  cr_assert_eq ((size_t) json_integer_value (json_object_get (json_object_get (r->manifest, "android_info"), "size")),
                a);

  /* The release told by the set (its android-info.txt has no marker of a
     later release: android14), for avm start, which no longer sees it.  */
  json_t *rel = json_object_get (r->manifest, "release");
  cr_assert_str_eq (json_string_value (json_object_get (rel, "name")), "android14");
  cr_assert_str_eq (json_string_value (json_object_get (rel, "source")), "android-info.txt");

  /* The host package's key, for avm start to rebuild the properties disk
     with: a private copy, recorded in the manifest.  */
  _cleanup_free_ char *keycopy = fx_join (out, "avb_key.pem");
  json_t *mkey = json_object_get (r->manifest, "key");
  if (c->key_copied)
    {
      struct stat st;
      cr_assert_eq (lstat (keycopy, &st), 0);
      cr_assert (S_ISREG (st.st_mode));
      cr_assert_eq (st.st_mode & 07777, 0600, "%s: mode %o", keycopy, st.st_mode & 07777);
      _cleanup_free_ uint8_t *k1 = fx_read_bin (keycopy, &a), *k2 = fx_read_bin (c->keyfile, &b);
      cr_assert (a == b && memcmp (k1, k2, a) == 0, "%s is not a copy of %s", keycopy, c->keyfile);
      /* Named as the other outputs are (relative in the compat mode's
         current directory): next to the bootloader.  */
      const char *blfile = json_string_value (json_object_get (json_object_get (r->manifest, "bootloader"), "file"));
      cr_assert (blfile && strlen (blfile) >= 10 && streq (blfile + strlen (blfile) - 10, "bootloader"));
      _cleanup_free_ char *want = NULL;
      cr_assert (asprintf (&want, "%.*savb_key.pem", (int) strlen (blfile) - 10, blfile) > 0);
      cr_assert_str_eq (json_string_value (json_object_get (mkey, "file")), want);
    }
  else
    cr_assert_null (json_object_get (mkey, "file"), "manifest.json names a key copy, yet none was made");

  /* The boot properties every profile of ours derives.  */
  const char *bd = streq (c->arch, "aarch64") ? "androidboot.boot_devices=4010000000.pcie"
                                              : "androidboot.boot_devices=pci0000:00/0000:00:0f.0,pci0000:00/0000:00:10.0";
  assert_line (r->bc, bd, props);
  assert_line (r->bc, "androidboot.hardware.egl=angle", props);
  if (c->virgl)
    {
      assert_line (r->bc_virgl, bd, virgl);
      assert_line (r->bc_virgl, "androidboot.hardware.egl=mesa", virgl);
      cr_assert (!has_line (r->bc_virgl, "androidboot.hardware.egl=angle"));
    }
}

/* Both conversions wrote the same partition contents (j): the system disk's
   partitions byte for byte, and the properties' environment and bootconfig
   text (signatures differ: AVB salts are random).  */
static void
check_same_contents (const struct result *a, const char *da, const struct result *b, const char *db)
{
  _cleanup_free_ char *sa = fx_join (da, "system.img"), *sb = fx_join (db, "system.img");
  cr_assert_eq (a->sys.n, b->sys.n);
  cr_assert_eq (a->sys.bytes, b->sys.bytes);
  int fa = open (sa, O_RDONLY | O_CLOEXEC), fb = open (sb, O_RDONLY | O_CLOEXEC);
  cr_assert (fa >= 0 && fb >= 0);
  uint8_t *x = malloc (MIB), *y = malloc (MIB);
  for (size_t i = 0; i < a->sys.n; i++)
    {
      cr_assert_str_eq (a->sys.p[i].name, b->sys.p[i].name);
      cr_assert_eq (a->sys.p[i].start, b->sys.p[i].start);
      cr_assert_eq (a->sys.p[i].size, b->sys.p[i].size);
      uint64_t off = a->sys.p[i].start * 512, len = a->sys.p[i].size * 512;
      for (uint64_t done = 0; done < len; done += MIB)
        {
          size_t n = len - done < MIB ? len - done : MIB;
          cr_assert_eq (pread (fa, x, n, off + done), (ssize_t) n);
          cr_assert_eq (pread (fb, y, n, off + done), (ssize_t) n);
          cr_assert (memcmp (x, y, n) == 0, "partition %s differs between %s and %s", a->sys.p[i].name, sa, sb);
        }
    }
  free (x);
  free (y);
  close (fa);
  close (fb);
  cr_assert_str_eq (a->bc, b->bc);
  if (a->bc_virgl || b->bc_virgl)
    cr_assert_str_eq (a->bc_virgl, b->bc_virgl);
  _cleanup_free_ char *pa = fx_join (da, "properties.img"), *pb = fx_join (db, "properties.img");
  size_t la, lb;
  _cleanup_free_ uint8_t *ia = fx_read_bin (pa, &la), *ib = fx_read_bin (pb, &lb);
  cr_assert (memcmp (ia + a->props.p[0].start * 512, ib + b->props.p[0].start * 512, 4096) == 0,
             "uboot_env differs between %s and %s", pa, pb);
}

/* E (a conversion's stderr) is its one-line summary, starting with PREFIX
   ("avm cvd2img: wrote "): the system disk with its size and partitions,
   the other outputs, the time taken.  */
static void
expect_summary (const char *e, const char *prefix)
{
  size_t len = strlen (e);
  cr_assert (len > 0 && e[len - 1] == '\n' && strchr (e, '\n') == e + len - 1, "not one line:\n%s", e);
  cr_assert (starts_with (e, prefix), "no \"%s\" summary: %s", prefix, e);
  cr_assert (strstr (e, "system.img (") || strstr (e, ".img ("), "no system disk in: %s", e);
  cr_assert_not_null (strstr (e, " partitions), "), "%s", e);
  cr_assert_not_null (strstr (e, "manifest.json in "), "%s", e);
  cr_assert (len > 3 && streq (e + len - 3, " s\n"), "no time taken: %s", e);
}

/* Run avm with ARGS; it must succeed with nothing on stdout and, on
   stderr (not a terminal: no progress bar), a conversion's summary
   (none with -q) or nothing.  */
static void
avm_ok (char *const args[])
{
  char *out = NULL, *err = NULL;
  int rc = tu_avmv (args, &out, &err);
  cr_assert_eq (rc, 0, "avm %s %s ... exited %d: %s%s", args[0], args[1], rc, out, err);
  cr_assert_str_empty (out, "stdout: %s", out);
  bool quiet = false;
  for (size_t i = 0; args[i]; i++)
    quiet |= streq (args[i], "-q") || streq (args[i], "--quiet");
  if (streq (args[0], "cvd2img") && !quiet)
    expect_summary (err, "avm cvd2img: wrote ");
  else
    cr_assert_str_empty (err, "stderr is not a terminal, yet: %s", err);
  free (out);
  free (err);
}

/* ------------------------------------------------------------------ */
/* Successful conversions.  */

static void seed_outputs (const char *out);

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
  static const char *const files[] = { "system.img", "properties.img", "properties_virgl.img", "bootloader",
                                       "avb_key.pem", "android-info.txt" };
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

Test (cvd2img, zip_deflated)
{
  zip_case ("img.zip", true, false);
}

/* zip -0, and the tarball given first.  */
Test (cvd2img, zip_stored)
{
  zip_case ("img-stored.zip", false, true);
}

Test (cvd2img, optional_absent)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out"), *man = tpath ("out/manifest.json");
  _cleanup_free_ char *sys = tpath ("out/system.img");
  avm_ok ((char *[]) { "cvd2img", "-q", "-o", out, cvd, NULL });
  struct disk d;
  sfdisk_read (sys, &d);
  cr_assert_eq (d.n, 12, "%zu partitions", d.n);
  for (size_t i = 0; i < d.n; i++)
    cr_assert (!strstr (d.p[i].name, "init_boot") && !strstr (d.p[i].name, "dlkm"), "%s: unexpected partition %s",
               sys, d.p[i].name);
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
  c.host_entries = (char *const[]){ "etc", NULL };
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
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out"), *out2 = tpath ("out2"), *bl = fx_path ("cvd/" BL_X86);
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
  char *args[] = { "start", "-n", "--json", "-p", "aaos-x86_64", "--caps", caps, "--images", (char *) images,
                   "--set", "machine.accel=tcg", "--set", helpers, "-O", (char *) option, NULL };
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

static const char *const out_names[] = { "system.img", "properties.img", "properties_virgl.img", "bootloader",
                                         "manifest.json", "avb_key.pem" };

static void
seed_outputs (const char *out)
{
  fx_mkdirs (out);
  for (size_t i = 0; i < ARRAY_SIZE (out_names); i++)
    {
      _cleanup_free_ char *p = fx_join (out, out_names[i]);
      char content[64];
      snprintf (content, sizeof content, "previous %s\n", out_names[i]);
      fx_write_bin (p, content, strlen (content));
      struct timespec ts[2] = { { OLD_MTIME, 0 }, { OLD_MTIME, 0 } };
      cr_assert_eq (utimensat (AT_FDCWD, p, ts, 0), 0);
    }
}

static void
check_outputs_untouched (const char *out)
{
  check_dir_entries (out, out_names, ARRAY_SIZE (out_names));
  for (size_t i = 0; i < ARRAY_SIZE (out_names); i++)
    {
      _cleanup_free_ char *p = fx_join (out, out_names[i]);
      char content[64];
      snprintf (content, sizeof content, "previous %s\n", out_names[i]);
      _cleanup_free_ char *got = tu_read (p);
      cr_assert_str_eq (got, content, "%s was replaced", p);
      struct stat st;
      cr_assert_eq (stat (p, &st), 0);
      cr_assert_eq (st.st_mtim.tv_sec, OLD_MTIME, "%s was touched", p);
    }
}

/* Run `avm cvd2img -o OUT ARGS...` over pre-existing outputs: exit WANT_RC,
   nothing on stdout, one line on stderr holding every NEEDLE, outputs and
   INPUTS unchanged, no temporaries.  */
static void
expect_failure (const char *out, int want_rc, char *const args[], const char *const needles[],
                const char *const inputs[])
{
  char *argv[32];
  size_t n = 0;
  argv[n++] = "cvd2img";
  argv[n++] = "-o";
  argv[n++] = (char *) out;
  for (size_t i = 0; args[i]; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  seed_outputs (out);
  struct snap s;
  snap_take (&s, inputs);
  char *o = NULL, *e = NULL;
  int rc = tu_avmv (argv, &o, &e);
  cr_assert_eq (rc, want_rc, "exit %d, expected %d; stderr: %s", rc, want_rc, e);
  cr_assert_str_empty (o, "stdout: %s", o);
  size_t len = strlen (e);
  cr_assert (len > 0 && e[len - 1] == '\n' && strchr (e, '\n') == e + len - 1, "not one line:\n%s", e);
  cr_assert (starts_with (e, "avm: "), "%s", e);
  for (size_t i = 0; needles[i]; i++)
    cr_assert_not_null (strstr (e, needles[i]), "the error does not mention \"%s\": %s", needles[i], e);
  check_outputs_untouched (out);
  snap_check (&s);
  free (o);
  free (last_error);
  last_error = e;
}

/* A hard-link clone of the fixture's image directory in the test's scratch
   space, without SKIP (may be NULL).  */
static char *
clone_cvd (const char *name, const char *skip)
{
  _cleanup_free_ char *cvd = fx_path ("cvd");
  char *dst = tpath (name);
  fx_link_tree (cvd, dst);
  if (skip)
    {
      _cleanup_free_ char *p = fx_join (dst, skip);
      cr_assert_eq (unlink (p), 0);
    }
  return dst;
}

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
  expect_failure (out, 2, (char *[]) { cvd2, NULL }, (const char *[]) { bl, "is a FIFO, not a host package file", NULL },
                  (const char *[]) { cvd2, NULL });
  /* the image zip and the host package */
  _cleanup_free_ char *zip = tpath ("img.zip"), *host = fx_path ("host.tar.gz"), *goodzip = fx_path ("img.zip");
  fifo_in_place_of (zip);
  expect_failure (out, 2, (char *[]) { zip, host, NULL }, (const char *[]) { zip, "is a FIFO, not an image zip", NULL },
                  (const char *[]) { host, NULL });
  _cleanup_free_ char *hfifo = tpath ("host.tar.gz");
  fifo_in_place_of (hfifo);
  expect_failure (out, 2, (char *[]) { goodzip, hfifo, NULL },
                  (const char *[]) { hfifo, "is a FIFO, not a host package", NULL }, (const char *[]) { goodzip, NULL });
  /* --key, --pubkey and --profile */
  _cleanup_free_ char *kfifo = tpath ("key.pem");
  fifo_in_place_of (kfifo);
  expect_failure (out, 2, (char *[]) { "--key", kfifo, good, NULL },
                  (const char *[]) { kfifo, "is a FIFO, not a PEM private key", NULL }, (const char *[]) { good, NULL });
  _cleanup_free_ char *pfifo = tpath ("pub.avbpubkey");
  fifo_in_place_of (pfifo);
  expect_failure (out, 2, (char *[]) { "--pubkey", pfifo, good, NULL },
                  (const char *[]) { pfifo, "is a FIFO, not an .avbpubkey file", NULL }, (const char *[]) { good, NULL });
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
  _cleanup_free_ char *cvd = clone_cvd ("cvd", NULL), *pub = fx_join (cvd, KEY_PUB), *other = fx_path ("keys/other.avbpubkey");
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
  _cleanup_free_ char *cvd = fx_path ("cvd"), *zip = fx_path ("img.zip"), *host = fx_path ("host-dot.tar.gz"), *out = tpath ("out");
  _cleanup_free_ char *bl = fx_path ("cvd/" BL_X86);
  _cleanup_free_ char *list = fx_run_ok ((char *[]) { "tar", "tzf", host, NULL }, NULL);
  cr_assert_not_null (strstr (list, "./" KEY_PEM "\n"), "%s", list);
  cr_assert (starts_with (list, "./\n"), "fixture: no root entry in %s:\n%s", host, list);
  struct ctx c;
  struct result r;
  ctx_init (&c, cvd, "x86_64", bl);
  c.host_entries = (char *const[]){ "etc", NULL };
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
             "an empty %s/boot.img must be reported naming the file and the input: %s",
             cvd, last_error);
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

static char *
compat_link (void)
{
  _cleanup_free_ char *bin = tpath ("bin");
  fx_mkdirs (bin);
  char *link = fx_join (bin, "cvd2img");
  char abs[PATH_MAX];
  cr_assert_not_null (realpath (tu_avm_bin (), abs), "%s: %s", tu_avm_bin (), strerror (errno));
  cr_assert_eq (symlink (abs, link), 0);
  return link;
}

/* Run the compat personality with ARGS in directory CWD (chdir in this
   worker process; restored afterwards).  */
static int
compat_run (const char *link, const char *cwd, char *const args[], char **out, char **err)
{
  char *argv[16];
  size_t n = 0;
  argv[n++] = (char *) link;
  for (size_t i = 0; args[i]; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  char saved[PATH_MAX];
  cr_assert_not_null (getcwd (saved, sizeof saved));
  cr_assert_eq (chdir (cwd), 0);
  int rc = tu_run (argv, hermetic_vars (), out, err);
  cr_assert_eq (chdir (saved), 0);
  return rc;
}

/* -s/-p/-v name the three disks, wherever the command runs.  */
Test (cvd2img, compat_paths)
{
  _cleanup_free_ char *link = compat_link (), *cvd = fx_path ("cvd"), *cwd = tpath ("cwd"), *dst = tpath ("dst");
  _cleanup_free_ char *S = fx_join (dst, "S.img"), *P = fx_join (dst, "P.img"), *V = fx_join (dst, "V.img");
  _cleanup_free_ char *bl = fx_path ("cvd/" BL_X86);
  fx_mkdirs (cwd);
  fx_mkdirs (dst);
  char *o = NULL, *e = NULL;
  int rc = compat_run (link, cwd, (char *[]) { "-a", "x86-64", "-s", S, "-p", P, "-v", V, cvd, NULL }, &o, &e);
  cr_assert_eq (rc, 0, "cvd2img exited %d: %s%s", rc, o, e);
  cr_assert_str_empty (o);
  /* the disks by their paths, named as given */
  _cleanup_free_ char *want = NULL;
  cr_assert (asprintf (&want, "cvd2img: wrote %s (", S) > 0);
  expect_summary (e, want);
  cr_assert_not_null (strstr (e, "), P.img, V.img, bootloader, avb_key.pem, android-info.txt and manifest.json in "),
                      "%s", e);
  free (o);
  free (e);
  struct ctx c;
  struct disk ds, dp, dv;
  ctx_init (&c, cvd, "x86_64", bl);
  check_system (&c, S, &ds);
  char *bc = check_props (&c, P, &dp), *bcv = check_props (&c, V, &dv);
  assert_line (bc, "androidboot.hardware.egl=angle", P);
  assert_line (bcv, "androidboot.hardware.egl=mesa", V);
  free (bc);
  free (bcv);
  ctx_free (&c);
  /* slp/cvd2img's outputs: no host package tree (it is run in the image
     directory, which has one).  */
  const char *names[] = { "S.img", "P.img", "V.img", "bootloader", "manifest.json", "avb_key.pem",
                          "android-info.txt" };
  check_dir_entries (dst, names, 7);
  /* bootloader and manifest.json go next to the system disk, never into
     the current directory.  */
  DIR *d = opendir (cwd);
  struct dirent *ent;
  char found[1024] = "";
  while ((ent = readdir (d)))
    if (!streq (ent->d_name, ".") && !streq (ent->d_name, "..") && strlen (found) < 512)
      snprintf (found + strlen (found), sizeof found - strlen (found), " %.255s", ent->d_name);
  closedir (d);
  cr_expect_str_empty (found,
                       "`cvd2img -s DIR/S.img -p DIR/P.img -v DIR/V.img CVD` wrote%s into the current directory "
                       "instead of next to the disks",
                       found);
}

/* Without -s/-p/-v the disks are named as slp/cvd2img names them, in the
   current directory.  */
Test (cvd2img, compat_defaults)
{
  _cleanup_free_ char *link = compat_link (), *cvd = fx_path ("cvd"), *cwd = tpath ("cwd");
  _cleanup_free_ char *bl = fx_path ("cvd/" BL_X86);
  fx_mkdirs (cwd);
  char *o = NULL, *e = NULL;
  int rc = compat_run (link, cwd, (char *[]) { "-a", "x86-64", cvd, NULL }, &o, &e);
  cr_assert_eq (rc, 0, "cvd2img exited %d: %s%s", rc, o, e);
  cr_assert_str_empty (o);
  expect_summary (e, "cvd2img: wrote ./system.img (");
  free (o);
  free (e);
  struct ctx c;
  struct result r;
  ctx_init (&c, cvd, "x86_64", bl);
  c.tree = false;
  check_all (&c, cwd, &r);
  result_free (&r);
  ctx_free (&c);
}

Test (cvd2img, compat_help)
{
  _cleanup_free_ char *link = compat_link (), *cwd = tpath ("cwd");
  fx_mkdirs (cwd);
  char *o = NULL, *e = NULL;
  int rc = compat_run (link, cwd, (char *[]) { "--help", NULL }, &o, &e);
  cr_assert_eq (rc, 0, "%s", e);
  cr_assert (starts_with (o, "Usage: cvd2img "), "%s", o);
  const char *const opts[] = { "-a, --arch", "-s, --system", "-p, --props", "-v, --virgl-props" };
  for (size_t i = 0; i < ARRAY_SIZE (opts); i++)
    cr_assert_not_null (strstr (o, opts[i]), "cvd2img --help lacks %s:\n%s", opts[i], o);
  free (o);
  free (e);
  /* and an unknown option is a usage error */
  rc = compat_run (link, cwd, (char *[]) { "-o", "x", "y", NULL }, &o, &e);
  cr_assert_eq (rc, 2, "cvd2img -o: exit %d", rc);
  free (o);
  free (e);
}

/* The personality's messages start with the name the user typed, and
   point to its own help, never to "avm cvd2img" (issue 15): usage errors,
   bad input found by the conversion, a runtime failure.  */
static void
expect_compat_error (const char *e, const char *needle)
{
  size_t len = strlen (e);
  cr_assert (len > 0 && e[len - 1] == '\n' && strchr (e, '\n') == e + len - 1, "not one line:\n%s", e);
  cr_assert (starts_with (e, "cvd2img: "), "%s", e);
  cr_assert_null (strstr (e, "avm cvd2img"), "%s", e);
  cr_assert_null (strstr (e, "avm:"), "%s", e);
  cr_assert_not_null (strstr (e, needle), "no \"%s\" in: %s", needle, e);
}

Test (cvd2img, compat_messages)
{
  _cleanup_free_ char *link = compat_link (), *cwd = tpath ("cwd"), *cvd = clone_cvd ("cvd", "boot.img");
  fx_mkdirs (cwd);
  char *o = NULL, *e = NULL;
  int rc = compat_run (link, cwd, (char *[]) { "--bogus", cvd, NULL }, &o, &e);
  cr_assert_eq (rc, 2, "exit %d: %s", rc, e);
  expect_compat_error (e, "(see 'cvd2img --help')");
  free (o);
  free (e);
  rc = compat_run (link, cwd, (char *[]) { "-a", "sparc", cvd, NULL }, &o, &e);
  cr_assert_eq (rc, 2, "exit %d: %s", rc, e);
  expect_compat_error (e, "(see 'cvd2img --help')");
  free (o);
  free (e);
  rc = compat_run (link, cwd, (char *[]) { "-a", "x86-64", cvd, NULL }, &o, &e);
  cr_assert_eq (rc, 2, "exit %d: %s", rc, e);
  expect_compat_error (e, "boot.img");
  free (o);
  free (e);
  /* a runtime failure: another conversion holds the directory */
  _cleanup_free_ char *full = fx_path ("cvd");
  int fd = open (cwd, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cr_assert (fd >= 0 && flock (fd, LOCK_EX) == 0);
  rc = compat_run (link, cwd, (char *[]) { "-a", "x86-64", full, NULL }, &o, &e);
  close (fd);
  cr_assert_eq (rc, 1, "exit %d: %s", rc, e);
  expect_compat_error (e, "another conversion is writing there");
  free (o);
  free (e);
  /* its help says how it exits */
  rc = compat_run (link, cwd, (char *[]) { "--help", NULL }, &o, &e);
  cr_assert_eq (rc, 0);
  cr_assert_not_null (strstr (o, "Exit status: 0 success, 1 runtime failure, 2 bad usage or bad input"), "%s", o);
  free (o);
  free (e);
}

/* ------------------------------------------------------------------ */
/* Progress: a bar on a terminal, nothing with -q.  */

static char *
run_on_pty (char *const args[], int *rc)
{
  int master, slave;
  if (openpty (&master, &slave, NULL, NULL, NULL) < 0)
    cr_skip_test ("openpty: %s", strerror (errno));
  fcntl (master, F_SETFD, FD_CLOEXEC);
  fcntl (slave, F_SETFD, FD_CLOEXEC);
  char *argv[16];
  size_t n = 0;
  argv[n++] = (char *) tu_avm_bin ();
  for (size_t i = 0; args[i]; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2 (&fa, slave, 2);
  char **env = avm_env ();
  pid_t pid;
  int r = posix_spawn (&pid, argv[0], &fa, NULL, argv, env);
  posix_spawn_file_actions_destroy (&fa);
  free (env);
  close (slave);
  cr_assert_eq (r, 0, "spawn %s: %s", argv[0], strerror (r));
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream (&buf, &len);
  char chunk[4096];
  for (;;)
    {
      ssize_t k = read (master, chunk, sizeof chunk);
      if (k < 0 && errno == EINTR)
        continue;
      if (k <= 0)
        break; /* EIO once the child closed the slave */
      fwrite (chunk, 1, k, m);
    }
  fclose (m);
  close (master);
  int st;
  while (waitpid (pid, &st, 0) < 0)
    cr_assert_eq (errno, EINTR);
  *rc = WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
  return buf;
}

Test (cvd2img, progress_on_terminal)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out"), *outq = tpath ("outq");
  int rc;
  _cleanup_free_ char *bar = run_on_pty ((char *[]) { "cvd2img", "-o", out, cvd, NULL }, &rc);
  cr_assert_eq (rc, 0, "%s", bar);
  cr_assert_not_null (strstr (bar, "100%"), "no progress bar on a terminal: \"%s\"", bar);
  cr_assert_not_null (strstr (bar, "\r["), "\"%s\"", bar);
  /* then, on a line of its own, what was written */
  const char *sum = strstr (bar, "\navm cvd2img: wrote ");
  cr_assert_not_null (sum, "no summary after the bar: \"%s\"", bar);
  /* the terminal's line discipline ends it with \r\n; nothing redraws it */
  cr_assert (strchr (sum + 1, '\r') == sum + strcspn (sum, "\r") && strchr (sum + 1, '\r')[1] == '\n', "\"%s\"", bar);
  _cleanup_free_ char *quiet = run_on_pty ((char *[]) { "cvd2img", "-q", "-o", outq, cvd, NULL }, &rc);
  cr_assert_eq (rc, 0, "%s", quiet);
  cr_assert_str_empty (quiet, "-q still draws: \"%s\"", quiet);
}

/* Not on a terminal (a log, CI, a pipe): no bar, but one line says what
   was written, where, and how long it took (issue 15: nothing at all);
   -q: nothing.  */
Test (cvd2img, summary_when_not_on_terminal)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out"), *outq = tpath ("outq");
  char *o = NULL, *e = NULL;
  int rc = tu_avmv ((char *[]) { "cvd2img", "-o", out, cvd, NULL }, &o, &e);
  cr_assert_eq (rc, 0, "exit %d: %s", rc, e);
  cr_assert_str_empty (o);
  _cleanup_free_ char *want = NULL;
  cr_assert (asprintf (&want, "avm cvd2img: wrote %s/system.img (", out) > 0);
  expect_summary (e, want);
  char *p = e + strlen (want);
  cr_assert (strchr ("0123456789", *p), "no size: %s", e);
  cr_assert_not_null (strstr (p, " partitions), properties.img, properties_virgl.img, bootloader, avb_key.pem, "
                                 "android-info.txt, the host package ("),
                      "%s", e);
  cr_assert_not_null (strstr (p, " entries, "), "%s", e);
  cr_assert_not_null (strstr (p, ") and manifest.json in "), "%s", e);
  cr_assert_null (strchr (e, '\r'), "a progress bar where there is no terminal: %s", e);
  free (o);
  free (e);
  rc = tu_avmv ((char *[]) { "cvd2img", "-q", "-o", outq, cvd, NULL }, &o, &e);
  cr_assert_eq (rc, 0, "exit %d: %s", rc, e);
  cr_assert_str_empty (e, "-q: %s", e);
  free (o);
  free (e);
}

/* ------------------------------------------------------------------ */
/* The output set is replaced whole (issue 15: a SIGINT or SIGTERM during
   the final renames left the new system.img next to the old manifest,
   properties disks, bootloader and key, and avm inspect called that
   sound).  */

static int cmp_names (const void *a, const void *b);
static char *listing (const char *out);

#define SET_FILES 6
static const char *const set_files[SET_FILES] = { "system.img", "properties.img", "properties_virgl.img",
                                                  "bootloader", "manifest.json", "avb_key.pem" };

struct setsum
{
  char sha[SET_FILES][65];
  char tree[65]; /* the host tree: its top-level entries and bin/tool */
};

/* A digest of PATH's contents that reads only its data (system.img is
   mostly holes): SHA-256 over its size and every 4 KiB block that is not
   all zeros, with its offset.  Equal contents give equal digests whatever
   the holes.  */
static void
sha_file (const char *path, char out[65])
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  cr_assert (fd >= 0 && fstat (fd, &st) == 0, "%s: %s", path, strerror (errno));
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  cr_assert (ctx && EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL));
  uint64_t size = st.st_size;
  EVP_DigestUpdate (ctx, &size, sizeof size);
  uint8_t *buf = malloc (MIB);
  for (off_t pos = 0; pos < st.st_size;)
    {
      off_t data = lseek (fd, pos, SEEK_DATA);
      if (data < 0)
        break; /* a hole to the end */
      off_t hole = lseek (fd, data, SEEK_HOLE);
      cr_assert (hole > data);
      data -= data % BLK;
      for (off_t off = data; off < hole;)
        {
          size_t want = hole - off < MIB ? (size_t) (hole - off) : MIB;
          ssize_t got = pread (fd, buf, want, off);
          cr_assert (got > 0, "%s: read at %lld", path, (long long) off);
          for (ssize_t b = 0; b < got; b += BLK)
            {
              size_t n = got - b < BLK ? (size_t) (got - b) : BLK;
              if (all_zero (buf + b, n))
                continue;
              uint64_t at = off + b;
              EVP_DigestUpdate (ctx, &at, sizeof at);
              EVP_DigestUpdate (ctx, buf + b, n);
            }
          off += got;
        }
      pos = hole;
    }
  uint8_t md[32];
  unsigned int len = 0;
  cr_assert (EVP_DigestFinal_ex (ctx, md, &len) && len == 32);
  for (unsigned i = 0; i < len; i++)
    sprintf (out + 2 * i, "%02x", md[i]);
  EVP_MD_CTX_free (ctx);
  free (buf);
  close (fd);
}

/* The SHA-256 of the whole file, as manifest.json records it.  */
static void
sha256_plain (const char *path, char out[65])
{
  size_t len;
  _cleanup_free_ uint8_t *d = fx_read_bin (path, &len);
  digest_hex (EVP_sha256 (), d, len, out);
}

/* OUT's top-level entries but the set's files, sorted, space-separated
   (malloc'd).  */
static char *
tree_entries (const char *out)
{
  DIR *d = opendir (out);
  struct dirent *e;
  char *names[64];
  size_t n = 0;
  cr_assert_not_null (d);
  while ((e = readdir (d)) && n < ARRAY_SIZE (names))
    {
      bool file = e->d_name[0] == '.' || streq (e->d_name, "android-info.txt");
      for (size_t i = 0; i < SET_FILES; i++)
        file |= streq (e->d_name, set_files[i]);
      if (!file)
        names[n++] = strdup (e->d_name);
    }
  closedir (d);
  qsort (names, n, sizeof *names, cmp_names);
  char *s = NULL;
  size_t len = 0;
  FILE *m = open_memstream (&s, &len);
  for (size_t i = 0; i < n; i++)
    {
      fprintf (m, "%s%s", i ? " " : "", names[i]);
      free (names[i]);
    }
  fclose (m);
  return s;
}

static void
set_digests (const char *out, struct setsum *s)
{
  for (size_t i = 0; i < SET_FILES; i++)
    {
      _cleanup_free_ char *p = fx_join (out, set_files[i]);
      sha_file (p, s->sha[i]);
    }
  _cleanup_free_ char *entries = tree_entries (out), *tool = fx_join (out, "bin/tool");
  _cleanup_free_ char *content = tu_read (tool), *all = NULL;
  cr_assert (asprintf (&all, "%s\n%s", entries, content ? content : "(no bin/tool)") > 0);
  digest_hex (EVP_sha256 (), all, strlen (all), s->tree);
}

/* The disk GUID of the GPT disk PATH, read here (primary header, bytes
   56..71 of LBA 1, mixed-endian as GPT stores it).  */
static void
guid_of (const char *path, char out[40])
{
  uint8_t g[16];
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  cr_assert (fd >= 0, "%s: %s", path, strerror (errno));
  cr_assert_eq (pread (fd, g, 16, 512 + 56), 16);
  close (fd);
  snprintf (out, 40, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X", g[3], g[2], g[1], g[0],
            g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* Nothing hidden in OUT: no temporary, no marker of an unfinished commit.  */
static void
check_nothing_hidden (const char *out, const char *when)
{
  DIR *d = opendir (out);
  struct dirent *e;
  cr_assert_not_null (d);
  while ((e = readdir (d)))
    cr_assert (e->d_name[0] != '.' || streq (e->d_name, ".") || streq (e->d_name, ".."), "%s: %s left in %s", when,
               e->d_name, out);
  closedir (d);
}

/* OUT is one complete set converted from INPUT (bootloader digest BL_SHA,
   key digest KEY_SHA) with the serial number SERIAL, checked file by file
   without avm's own readers: every disk's GUID and size, the bootloader's
   and the key's digests are those manifest.json records, and both
   properties disks hold this run's serial number.  */
static void
check_new_set (const char *out, const char *input, const char *bl_sha, const char *key_sha, const char *serial)
{
  _cleanup_free_ char *man = fx_join (out, "manifest.json");
  json_error_t jerr;
  json_t *m = json_load_file (man, 0, &jerr);
  cr_assert_not_null (m, "%s: %s", man, jerr.text);
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (m, "input"), "dir")), input,
                    "%s is not the manifest of the conversion of %s", man, input);
  static const char *const disks[][2] = { { "system", "system.img" },
                                          { "properties", "properties.img" },
                                          { "properties_virgl", "properties_virgl.img" } };
  char want_bc[64];
  snprintf (want_bc, sizeof want_bc, "androidboot.serialno=%s\n", serial);
  for (size_t i = 0; i < ARRAY_SIZE (disks); i++)
    {
      _cleanup_free_ char *p = fx_join (out, disks[i][1]);
      json_t *sec = json_object_get (m, disks[i][0]);
      char guid[40];
      guid_of (p, guid);
      cr_assert_str_eq (guid, json_string_value (json_object_get (sec, "disk_guid")),
                        "%s is not the disk %s records: the set is mixed", p, man);
      cr_assert_eq ((uint64_t) json_integer_value (json_object_get (sec, "size")), file_size (p));
      if (i > 0)
        {
          size_t len;
          _cleanup_free_ uint8_t *d = fx_read_bin (p, &len);
          cr_assert_not_null (memmem (d, len, want_bc, strlen (want_bc)), "%s does not hold %s", p, want_bc);
        }
    }
  /* The host tree is INPUT's: the same top-level entries, its bin/tool
     (which differs from input to input), its entries in the manifest.  */
  _cleanup_free_ char *have = tree_entries (out), *want = NULL, *tool = fx_join (out, "bin/tool");
  _cleanup_free_ char *src_tool = fx_join (input, "bin/tool");
  {
    _cleanup_free_ char *all = listing (input);
    /* the input's directories, as the conversion takes them */
    char buf[1024], *save = NULL;
    size_t o = 0;
    snprintf (buf, sizeof buf, "%s", all);
    want = calloc (1, 1024);
    for (char *t = strtok_r (buf, " ", &save); t; t = strtok_r (NULL, " ", &save))
      {
        _cleanup_free_ char *p = fx_join (input, t);
        struct stat st;
        if (lstat (p, &st) == 0 && S_ISDIR (st.st_mode))
          o += snprintf (want + o, 1024 - o, "%s%s", o ? " " : "", t);
      }
  }
  cr_assert_str_eq (have, want, "%s: the host tree is not that of %s: the set is mixed", out, input);
  _cleanup_free_ char *tool_have = tu_read (tool), *tool_want = tu_read (src_tool);
  cr_assert_str_eq (tool_have, tool_want, "%s is not %s's: the set is mixed", tool, input);
  json_t *ents = json_object_get (json_object_get (m, "host_package"), "entries"), *e;
  size_t i;
  char joined[1024] = "";
  json_array_foreach (ents, i, e)
    snprintf (joined + strlen (joined), sizeof joined - strlen (joined), "%s%s", i ? " " : "", json_string_value (e));
  cr_assert_str_eq (joined, want, "%s does not list the host tree's entries", man);

  char sha[65];
  _cleanup_free_ char *bl = fx_join (out, "bootloader"), *key = fx_join (out, "avb_key.pem");
  sha256_plain (bl, sha);
  cr_assert_str_eq (sha, bl_sha, "%s is not the bootloader of %s", bl, input);
  cr_assert_str_eq (sha, json_string_value (json_object_get (json_object_get (m, "bootloader"), "sha256")));
  sha256_plain (key, sha);
  cr_assert_str_eq (sha, key_sha);
  cr_assert_str_eq (sha, json_string_value (json_object_get (json_object_get (m, "key"), "sha256")));
  json_decref (m);

  /* And avm's own check agrees.  */
  _cleanup_free_ char *sys = fx_join (out, "system.img");
  _cleanup_error_ avm_error_t err = NULL;
  json_t *problems = json_array ();
  cr_assert_eq (avm_setcheck (sys, true, AVM_SETCHECK_FULL, problems, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (json_array_size (problems), 0, "%s", json_string_value (json_array_get (problems, 0)));
  json_decref (problems);
}

static uint64_t
rnd (uint64_t *x)
{
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

static long long
now_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* `avm cvd2img -q -o OUT --set boot_properties.androidboot.serialno=SERIAL
   INPUT` in the background, quiet, with default signal dispositions and
   nothing blocked.  */
static pid_t
spawn_conversion (const char *out, const char *input, const char *serial)
{
  char set[64];
  snprintf (set, sizeof set, "boot_properties.androidboot.serialno=%s", serial);
  char *argv[] = { (char *) tu_avm_bin (), "cvd2img", "-q", "-o", (char *) out, "--set", set, (char *) input, NULL };
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t none, dfl;
  sigemptyset (&none);
  sigemptyset (&dfl);
  sigaddset (&dfl, SIGINT);
  sigaddset (&dfl, SIGTERM);
  sigaddset (&dfl, SIGHUP);
  sigaddset (&dfl, SIGQUIT);
  posix_spawnattr_init (&at);
  posix_spawnattr_setflags (&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setsigmask (&at, &none);
  posix_spawnattr_setsigdefault (&at, &dfl);
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 2, "/dev/null", O_WRONLY, 0);
  char **env = avm_env ();
  pid_t pid;
  int r = posix_spawn (&pid, argv[0], &fa, &at, argv, env);
  posix_spawn_file_actions_destroy (&fa);
  posix_spawnattr_destroy (&at);
  free (env);
  cr_assert_eq (r, 0, "spawn %s: %s", argv[0], strerror (r));
  return pid;
}

static int
wait_status (pid_t pid)
{
  int st;
  while (waitpid (pid, &st, 0) < 0)
    cr_assert_eq (errno, EINTR);
  return st;
}

/* Wait (up to 10 s) until the conversion PID starts replacing outputs in
   the directory watched by INOTIFY: the commit marker appears, or (avm
   before the fix) the first output is renamed into place.  False when
   the process ended first.  */
static bool
wait_for_commit (int inotify, pid_t pid)
{
  long long deadline = now_us () + 10 * 1000000LL;
  while (now_us () < deadline)
    {
      struct pollfd p = { .fd = inotify, .events = POLLIN };
      int n = poll (&p, 1, 5);
      if (n > 0)
        {
          char buf[4096] __attribute__ ((aligned (__alignof__ (struct inotify_event))));
          ssize_t len = read (inotify, buf, sizeof buf);
          for (char *q = buf; len > 0 && q < buf + len;)
            {
              const struct inotify_event *ev = (const struct inotify_event *) q;
              if (ev->len && ((ev->mask & IN_CREATE && streq (ev->name, AVM_CVD2IMG_MARKER)) || ev->mask & IN_MOVED_TO))
                return true;
              q += sizeof *ev + ev->len;
            }
          continue;
        }
      siginfo_t si = { 0 };
      if (waitid (P_PID, (id_t) pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
        return false; /* ended (left to reap) */
    }
  cr_assert_fail ("conversion %d did not reach its commit within 10 s", (int) pid);
  return false;
}

static void
drain (int inotify)
{
  char buf[4096] __attribute__ ((aligned (__alignof__ (struct inotify_event))));
  while (read (inotify, buf, sizeof buf) > 0)
    ;
}

static void
spin_us (long long us)
{
  long long end = now_us () + us;
  while (now_us () < end)
    ;
}

/* The issue's race, driven hundreds of times: conversions of different
   inputs over the same output directory, each sent SIGINT or SIGTERM
   either a random time after the commit starts (seen with inotify: the
   marker, or the first rename) or at a random time of the whole run.
   After every run the set must be entirely the old one (same digests) or
   entirely the new one (every file as the new manifest records it, of this
   run's input and serial number), with nothing left behind.  */
Test (cvd2img, signals_during_commit_replace_the_set_whole, .timeout = TU_TIMEOUT (300))
{
  enum
  {
    VARIANTS = 4,
    RUNS = 300,
  };
  _cleanup_free_ char *out = tpath ("out"), *key = fx_path ("cvd/" KEY_PEM);
  char *in[VARIANTS], bl_sha[VARIANTS][65], key_sha[65], serial[32];
  for (int v = 0; v < VARIANTS; v++)
    {
      char name[16];
      snprintf (name, sizeof name, "in%d", v);
      in[v] = clone_cvd (name, NULL);
      _cleanup_free_ char *bl = fx_join (in[v], BL_X86);
      fx_write_random (bl, 256 * 1024, 700 + v); /* a different bootloader in each */
      sha256_plain (bl, bl_sha[v]);
      /* and a different host tree: bin/tool differs; some have entries
         others lack (the commit exchanges, renames and retires) */
      _cleanup_free_ char *tool = fx_join (in[v], "bin/tool"), *opt = NULL, *lib = fx_join (in[v], "lib64");
      char text[64];
      snprintf (text, sizeof text, "#!/bin/sh\necho variant %d\n", v);
      fx_write_bin (tool, text, strlen (text));
      cr_assert_eq (chmod (tool, 0755), 0);
      if (v % 2)
        {
          cr_assert (asprintf (&opt, "%s/opt%d/share", in[v], v) > 0);
          fx_mkdirs (opt);
        }
      if (v == 2)
        tu_rmtree (lib);
    }
  sha256_plain (key, key_sha);

  /* The first set, and how long a conversion takes.  */
  fx_mkdirs (out);
  long long t0 = now_us ();
  int st = wait_status (spawn_conversion (out, in[0], "R0"));
  long long run_us = now_us () - t0;
  cr_assert (WIFEXITED (st) && WEXITSTATUS (st) == 0, "first conversion: status 0x%x", st);
  check_new_set (out, in[0], bl_sha[0], key_sha, "R0");
  struct setsum old, now;
  set_digests (out, &old);
  int old_v = 0;

  int inotify = inotify_init1 (IN_CLOEXEC | IN_NONBLOCK);
  cr_assert (inotify >= 0);
  cr_assert (inotify_add_watch (inotify, out, IN_CREATE | IN_MOVED_TO) >= 0);
  uint64_t x = 0x15c0ffee;
  int kept_old = 0, killed_new = 0, finished = 0;
  for (int i = 1; i <= RUNS; i++)
    {
      int v = (old_v + 1 + (int) (rnd (&x) % (VARIANTS - 1))) % VARIANTS;
      int sig = i % 2 ? SIGINT : SIGTERM;
      bool at_commit = i % 4 != 0;
      snprintf (serial, sizeof serial, "R%d", i);
      drain (inotify);
      pid_t pid = spawn_conversion (out, in[v], serial);
      if (at_commit)
        {
          if (wait_for_commit (inotify, pid))
            {
              spin_us ((long long) (rnd (&x) % 4000));
              kill (pid, sig);
            }
        }
      else
        {
          spin_us ((long long) (rnd (&x) % (uint64_t) (run_us + run_us / 5 + 1)));
          kill (pid, sig);
        }
      st = wait_status (pid);
      bool signalled = WIFSIGNALED (st);
      cr_assert ((WIFEXITED (st) && WEXITSTATUS (st) == 0) || (signalled && WTERMSIG (st) == sig),
                 "run %d: status 0x%x", i, st);
      check_nothing_hidden (out, "after a signal");
      set_digests (out, &now);
      if (memcmp (&now, &old, sizeof now) == 0)
        {
          cr_assert (signalled, "run %d (%s) finished, yet the old set is still there", i, in[v]);
          kept_old++;
          continue;
        }
      /* Not the old set: then wholly the new one.  Every file but the
         key (the same in every input) differs from the old set's.  */
      for (size_t f = 0; f < SET_FILES; f++)
        if (!streq (set_files[f], "avb_key.pem"))
          cr_assert_str_neq (now.sha[f], old.sha[f],
                             "run %d (%s, %s %s): %s is the old one, other files are new: a mixed set", i, in[v],
                             strsignal (sig), at_commit ? "during the commit" : "at a random time", set_files[f]);
      cr_assert_str_neq (now.tree, old.tree, "run %d (%s, %s %s): the host tree is the old one, the files new", i,
                         in[v], strsignal (sig), at_commit ? "during the commit" : "at a random time");
      check_new_set (out, in[v], bl_sha[v], key_sha, serial);
      old = now;
      old_v = v;
      killed_new += signalled;
      finished += !signalled;
    }
  close (inotify);
  cr_log_info ("%d runs: %d killed with the old set kept, %d killed after replacing it whole, %d finished", RUNS,
               kept_old, killed_new, finished);
  /* The signals hit both sides of the commit.  */
  cr_assert_geq (killed_new, RUNS / 10, "too few signals landed during the commit (%d)", killed_new);
  cr_assert_geq (kept_old, 5, "too few signals landed before the commit (%d)", kept_old);
  for (int v = 0; v < VARIANTS; v++)
    free (in[v]);
}

/* A profile that gets through planning without helpers or QEMU on this
   host (disabled services, recorded capabilities), so that `avm start`
   reaches the check of its images (and would fail right after it, never
   starting a guest).  */
static char *
no_helpers_profile (void)
{
  return tu_write (tmp, "no-helpers.json",
                   "{ \"extends\": \"aaos-x86_64\",\n"
                   "  \"qemu\": { \"binary\": \"/nonexistent/qemu-system-x86_64\" },\n"
                   "  \"display\": { \"backend\": \"none\" },\n"
                   "  \"services\": {\n"
                   "    \"kernel_log_monitor\": { \"enabled\": false }, \"logcat_receiver\": { \"enabled\": false },\n"
                   "    \"secure_env\": { \"enabled\": false }, \"modem_simulator\": { \"enabled\": false },\n"
                   "    \"root-canal\": { \"enabled\": false }, \"tcp_connector\": { \"enabled\": false },\n"
                   "    \"socket_vsock_proxy\": { \"enabled\": false }, \"adb_connector\": { \"enabled\": false } } }\n");
}

/* `avm inspect DISK` says the set is not sound: exit 1, each NEEDLE in
   its report.  */
static void
expect_inspect_not_sound (const char *disk, const char *const needles[])
{
  char *o = NULL, *e = NULL;
  int rc = tu_avmv ((char *[]) { "inspect", (char *) disk, NULL }, &o, &e);
  cr_assert_eq (rc, 1, "inspect %s: exit %d\n%s%s", disk, rc, o, e);
  cr_assert_not_null (strstr (o, "=> NOT SOUND"), "%s", o);
  for (size_t i = 0; needles[i]; i++)
    cr_assert_not_null (strstr (o, needles[i]), "inspect %s does not say \"%s\":\n%s", disk, needles[i], o);
  free (o);
  free (e);
  /* --json says the same */
  rc = tu_avmv ((char *[]) { "inspect", "--json", (char *) disk, NULL }, &o, &e);
  cr_assert_eq (rc, 1);
  json_t *j = json_loads (o, 0, NULL);
  cr_assert_not_null (j, "%s", o);
  cr_assert (json_is_false (json_object_get (j, "ok")));
  cr_assert_gt (json_array_size (json_object_get (j, "image_set_problems")), 0);
  json_decref (j);
  free (o);
  free (e);
}

static void
expect_inspect_sound (const char *disk)
{
  char *o = NULL, *e = NULL;
  int rc = tu_avmv ((char *[]) { "inspect", (char *) disk, NULL }, &o, &e);
  cr_assert_eq (rc, 0, "inspect %s: exit %d\n%s%s", disk, rc, o, e);
  cr_assert_null (strstr (o, "image set:"), "%s", o);
  free (o);
  free (e);
}

/* `avm start` with IMAGES refuses before starting anything: exit 2, one
   line holding each NEEDLE; `avm start -n` and `avm check` report it.  */
static void
expect_start_refused (const char *images, const char *const needles[])
{
  _cleanup_free_ char *profile = no_helpers_profile ();
  _cleanup_free_ char *caps = NULL;
  cr_assert (asprintf (&caps, "%s/tests/data/caps-qemu-10.0-x86_64.json", tu_srcdir ()) > 0);
  char *o = NULL, *e = NULL;
  int rc = tu_avmv ((char *[]) { "start", "-p", profile, "--images", (char *) images, "--caps", caps, "--set",
                                 "machine.accel=tcg", NULL },
                    &o, &e);
  cr_assert_eq (rc, 2, "start: exit %d\n%s", rc, e);
  size_t len = strlen (e);
  cr_assert (len > 0 && strchr (e, '\n') == e + len - 1, "not one line:\n%s", e);
  for (size_t i = 0; needles[i]; i++)
    cr_assert_not_null (strstr (e, needles[i]), "start does not say \"%s\": %s", needles[i], e);
  cr_assert_not_null (strstr (e, "run avm cvd2img again"), "%s", e);
  free (o);
  free (e);
  rc = tu_avmv ((char *[]) { "check", "-p", profile, "--images", (char *) images, "--caps", caps, "--set",
                             "machine.accel=tcg", NULL },
                &o, &e);
  cr_assert_eq (rc, 1, "check: exit %d\n%s%s", rc, o, e);
  cr_assert_not_null (strstr (o, needles[0]), "check does not report \"%s\":\n%s", needles[0], o);
  free (o);
  free (e);
}

/* A marker left by a conversion that died in its commit (by hand here,
   as SIGKILL or a power cut would leave it): inspect calls every disk of
   the set not sound, start refuses; the next conversion clears it.  */
Test (cvd2img, stale_commit_marker)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out");
  _cleanup_free_ char *sys = fx_join (out, "system.img"), *props = fx_join (out, "properties.img");
  _cleanup_free_ char *marker = fx_join (out, AVM_CVD2IMG_MARKER);
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  expect_inspect_sound (sys);
  fx_write_bin (marker, "interrupted\n", 12);
  const char *const needles[] = { out, AVM_CVD2IMG_MARKER, "interrupted", NULL };
  expect_inspect_not_sound (sys, needles);
  expect_inspect_not_sound (props, needles);
  expect_start_refused (out, needles);
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  cr_assert (!exists (marker), "the next conversion left %s", marker);
  expect_inspect_sound (sys);
}

/* SIGKILL (which no process can block) as the commit starts: the marker
   stays, and says so until the set is converted again.  */
Test (cvd2img, sigkill_during_commit_leaves_the_marker, .timeout = TU_TIMEOUT (120))
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out");
  _cleanup_free_ char *sys = fx_join (out, "system.img"), *marker = fx_join (out, AVM_CVD2IMG_MARKER);
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  int inotify = inotify_init1 (IN_CLOEXEC | IN_NONBLOCK);
  cr_assert (inotify >= 0 && inotify_add_watch (inotify, out, IN_CREATE | IN_MOVED_TO) >= 0);
  bool left = false;
  for (int i = 0; i < 20 && !left; i++)
    {
      drain (inotify);
      pid_t pid = spawn_conversion (out, cvd, "K");
      if (wait_for_commit (inotify, pid))
        kill (pid, SIGKILL);
      wait_status (pid);
      left = exists (marker);
    }
  close (inotify);
  cr_assert (left, "SIGKILL never landed inside the commit in 20 tries");
  /* The marker names the host tree's entries too: the next conversion
     may replace them whatever the old manifest says.  (Empty when the kill
     came between its creation and its one write: nothing was renamed.)  */
  _cleanup_free_ char *text = tu_read (marker), *bin = fx_join (out, "bin\n");
  cr_assert (!*text || strstr (text, bin), "the marker does not list the tree's entries:\n%s", text);
  const char *const needles[] = { AVM_CVD2IMG_MARKER, NULL };
  expect_inspect_not_sound (sys, needles);
  /* The next conversion also removes what the killed one left (its
     temporaries, the tree's with what it replaced).  */
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  cr_assert (!exists (marker));
  check_nothing_hidden (out, "after the conversion following a SIGKILL");
  expect_inspect_sound (sys);
}

/* Files of two conversions mixed by hand: inspect names the file that
   does not belong (also when asked about another disk of the set), start
   refuses a foreign system disk (its GUID) and bootloader (its size).  */
Test (cvd2img, hand_mixed_set)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *other = clone_cvd ("other", NULL);
  _cleanup_free_ char *a = tpath ("a"), *b = tpath ("b");
  _cleanup_free_ char *obl = fx_join (other, BL_X86);
  fx_write_random (obl, 512 * 1024, 900); /* another bootloader, of another size */
  avm_ok ((char *[]) { "cvd2img", "-o", a, cvd, NULL });
  avm_ok ((char *[]) { "cvd2img", "-o", b, other, NULL });
  _cleanup_free_ char *asys = fx_join (a, "system.img"), *bsys = fx_join (b, "system.img");
  _cleanup_free_ char *aprops = fx_join (a, "properties.img"), *abl = fx_join (a, "bootloader"), *bbl = fx_join (b, "bootloader");
  expect_inspect_sound (asys);
  expect_inspect_sound (bsys);

  /* b's system disk in a */
  _cleanup_free_ char *saved = fx_join (tmp, "system.img.a"), *bc = tpath ("b-copy"), *bcsys = fx_join (bc, "system.img");
  cr_assert_eq (rename (asys, saved), 0);
  fx_link_tree (b, bc);
  cr_assert_eq (rename (bcsys, asys), 0);
  const char *const sys_needles[] = { asys, "does not belong with", "manifest.json", "disk GUID", NULL };
  expect_inspect_not_sound (asys, sys_needles);
  expect_inspect_not_sound (aprops, sys_needles); /* the set, whichever disk is asked about */
  expect_start_refused (a, sys_needles);
  cr_assert_eq (rename (saved, asys), 0);
  expect_inspect_sound (asys);

  /* b's bootloader in a: 512 KiB where the manifest says 1 MiB */
  unlink (abl);
  cr_assert_eq (link (bbl, abl), 0);
  const char *const bl_needles[] = { abl, "does not belong with", "bytes, the manifest says", NULL };
  expect_inspect_not_sound (asys, bl_needles);
  expect_start_refused (a, bl_needles);
}

/* ------------------------------------------------------------------ */
/* The host package's tree in the output directory (issue 14).  */

static int
cmp_names (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* OUT's entries, sorted, space-separated (malloc'd); hidden ones too.  */
static char *
listing (const char *out)
{
  DIR *d = opendir (out);
  struct dirent *e;
  char *names[64];
  size_t n = 0;
  cr_assert_not_null (d, "%s: %s", out, strerror (errno));
  while ((e = readdir (d)) && n < ARRAY_SIZE (names))
    if (!streq (e->d_name, ".") && !streq (e->d_name, ".."))
      names[n++] = strdup (e->d_name);
  closedir (d);
  qsort (names, n, sizeof *names, cmp_names);
  char *s = NULL;
  size_t len = 0;
  FILE *m = open_memstream (&s, &len);
  for (size_t i = 0; i < n; i++)
    {
      fprintf (m, "%s%s", i ? " " : "", names[i]);
      free (names[i]);
    }
  fclose (m);
  return s;
}

#define SET_LISTING "android-info.txt avb_key.pem bootloader manifest.json properties.img properties_virgl.img system.img"

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
  cr_assert_eq (symlink ("/usr", away), 0);   /* a top-level link out: not taken */
  cr_assert_eq (symlink ("lib64", lib), 0);   /* a top-level link to a directory of it: taken */
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
  _cleanup_free_ char *cvd3 = clone_cvd ("cvd3", NULL), *key = fx_join (cvd3, KEY_PEM), *real = fx_path ("cvd/" KEY_PEM);
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
  _cleanup_free_ char *bin = fx_join (out, "bin"), *old = fx_join (bin, "old-tool"), *man = fx_join (out, "manifest.json");
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
                  (const char *[]) { boot, "is a symbolic link, not an image file", NULL }, (const char *[]) { cvd, NULL });
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
  format_refused ("super.img", "f5", 65536, "is not an Android super image (its geometry) (no gDla magic at byte 4096)");
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
