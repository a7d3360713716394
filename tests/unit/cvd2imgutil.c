/* SPDX-License-Identifier: Apache-2.0 */
/* The cvd2img suite's shared helpers (cvd2imgutil.h).  */
#include "cvd2imgutil.h"

extern char **environ;

/* ------------------------------------------------------------------ */
/* Per-test scratch directory (and a tmpfs some tests mount).  */

char *tmp;
char *mnt;

void
setup (void)
{
  tmp = tu_tmpdir ();
  mnt = NULL;
}

char *last_error; /* message of the last expect_failure */

void
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

/* ------------------------------------------------------------------ */
/* Small helpers.  */

char *
tpath (const char *name)
{
  return fx_join (tmp, name);
}

uint64_t
file_size (const char *path)
{
  struct stat st;
  cr_assert_eq (stat (path, &st), 0, "stat %s: %s", path, strerror (errno));
  return st.st_size;
}

bool
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

uint32_t
le32 (const uint8_t *p)
{
  return (uint32_t) p[3] << 24 | (uint32_t) p[2] << 16 | (uint32_t) p[1] << 8 | p[0];
}

void
put_le16 (uint8_t *p, uint16_t v)
{
  p[0] = v & 0xff;
  p[1] = v >> 8;
}

void
put_le32 (uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++, v >>= 8)
    p[i] = v & 0xff;
}

uint64_t
round4k (uint64_t v)
{
  return (v + 4095) / 4096 * 4096;
}

bool
all_zero (const uint8_t *p, size_t n)
{
  return n == 0 || (p[0] == 0 && memcmp (p, p + 1, n - 1) == 0);
}

void
digest_hex (const EVP_MD *md, const void *d, size_t n, char *out)
{
  uint8_t buf[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  cr_assert (EVP_Digest (d, n, buf, &len, md, NULL));
  for (unsigned i = 0; i < len; i++)
    sprintf (out + 2 * i, "%02x", buf[i]);
}

bool
starts_with (const char *s, const char *prefix)
{
  return strncmp (s, prefix, strlen (prefix)) == 0;
}

/* The variables tu_avmv sets for a hermetic avm (NULL-terminated).  */
char **
hermetic_vars (void)
{
  static char cache[128], config[128];
  static char *vars[] = { cache, config, NULL };
  snprintf (cache, sizeof cache, "XDG_CACHE_HOME=/tmp/avm-test-cache-%u", (unsigned) getuid ());
  snprintf (config, sizeof config, "XDG_CONFIG_HOME=/tmp/avm-test-config-%u", (unsigned) getuid ());
  return vars;
}

/* This environment with hermetic_vars (malloc'd vector), for posix_spawn.  */
char **
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

void
snap_take (struct snap *s, const char *const *paths)
{
  memset (s, 0, sizeof *s);
  snap_cur = s;
  for (size_t i = 0; paths[i]; i++)
    cr_assert_eq (nftw (paths[i], snap_one, 16, FTW_PHYS), 0, "%s", paths[i]);
  cr_assert (s->n > 0);
}

void
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

/* sgdisk --verify: "No problems found", apart from the notice every disk
   with the first usable LBA at 40 earns.  */
static void
sgdisk_verify (const char *path)
{
  _cleanup_free_ char *err = NULL;
  _cleanup_free_ char *out = fx_run_ok ((char *[]) { "sgdisk", "--verify", (char *) path, NULL }, &err);
  static const char notice[] = "Warning: There is a gap between the main partition table (ending sector 33)\n"
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

void
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
      cr_assert_eq (p->start % 8, 0, "%s: %s starts at sector %" PRIu64 ", not 4 KiB-aligned", path, p->name, p->start);
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

const struct pinfo *
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
            cr_assert_fail ("%s: byte %" PRIu64 " of the partition is 0x%02x, expected 0 (%s)", what, done + i, buf[i],
                            len ? "padding after the image" : "blank partition");
      done += want;
    }
  free (buf);
}

/* ------------------------------------------------------------------ */
/* What a conversion must produce.  */

void
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

void
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
void
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
char *
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
  _cleanup_free_ uint8_t *env
      = check_footer_partition (c, disk + d->p[0].start * 512, 73728, "uboot_env", what, &envlen);
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
            streq (c->arch, "aarch64") ? "earlycon=pl011,mmio32,0x9000000"
                                       : "earlycon=uart8250,io,0x3f8 pnpacpi=off ramoops.mem_address=0x150000000 "
                                         "ramoops.mem_size=0x200000 ramoops.console_size=0x80000 "
                                         "ramoops.record_size=0x80000 ramoops.dump_oops=1");
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
  char *text
      = (char *) check_footer_partition (c, disk + d->p[3].start * 512, d->p[3].size * 512, "bootconfig", what, &tlen);
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

bool
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
void
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

void
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
void
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
  const char *bd = streq (c->arch, "aarch64")
                       ? "androidboot.boot_devices=4010000000.pcie"
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
void
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
void
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
void
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

const char *const out_names[]
    = { "system.img", "properties.img", "properties_virgl.img", "bootloader", "manifest.json", "avb_key.pem" };
void
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
void
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
void
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
char *
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
/* Nothing hidden in OUT: no temporary, no marker of an unfinished commit.  */
void
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
uint64_t
rnd (uint64_t *x)
{
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}
/* A profile that gets through planning without helpers or QEMU on this
   host (disabled services, recorded capabilities), so that `avm start`
   reaches the check of its images (and would fail right after it, never
   starting a guest).  */
char *
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
                   "    \"socket_vsock_proxy\": { \"enabled\": false }, \"adb_connector\": { \"enabled\": false } } "
                   "}\n");
}
/* `avm inspect DISK` says the set is not sound: exit 1, each NEEDLE in
   its report.  */
void
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
void
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
void
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
int
cmp_names (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}
/* OUT's entries, sorted, space-separated (malloc'd); hidden ones too.  */
char *
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
