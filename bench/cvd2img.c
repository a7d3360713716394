/* SPDX-License-Identifier: Apache-2.0 */
/*
 * avm-bench, cvd2img part: how long `avm cvd2img` takes to turn a synthetic
 * Cuttlefish image set into system.img, against
 *
 *   - the naive pipeline of slp/cvd2img, rebuilt from the real tools, one
 *     spawn per step (no shell): simg2img of super.img and userdata.img into
 *     copies, truncate, one `dd conv=notrunc` per partition image (every
 *     byte, zeros included, as the Rust tool's copy loop writes), sgdisk;
 *   - the copy limit: `cp --sparse=always` of the expanded images, i.e. the
 *     bytes avm has to write, and nothing else;
 *
 * measured in the same run, round by round, on a set this file generates
 * (xorshift data, sparse raw files, the real img2simg and openssl).  Also:
 * avm's peak RSS on the full set and on a quarter-size one (it must not
 * grow with the images), and the blocks system.img allocates against the
 * non-zero 4 KiB blocks of the partition images.  See bench/README.md.
 *
 * Environment: BENCH_SKIP_C2I=1 (skip all this), BENCH_C2I_RUNS (default 3),
 * BENCH_C2I_MIB (size of the set, default 4096, a multiple of 256),
 * BENCH_DIR (where the work directory avm-bench-<pid> goes; default
 * /var/tmp), BENCH_C2I_KEEP=1 (keep the sets and the work directory after a
 * complete run, to look into a result).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define MIB (UINT64_C (1) << 20)
#define GIB (UINT64_C (1) << 30)
#define BLOCK 4096
#define BUF_SIZE (1 << 20) /* every buffer: the harness's RSS is the floor of its children's ru_maxrss */
#define SECTOR 512
#define FIRST_OFFSET (40 * SECTOR) /* Cuttlefish: the first partition at LBA 40 */
#define GPT_TAIL (33 * SECTOR)     /* backup entries + header */
#define DISK_ALIGN (64 * 1024)
#define VBMETA_PARTITION 65536
#define MAX_RUNS 100

#define TARGET_COPY_RATIO 1.3   /* avm / copy limit, at most */
#define TARGET_NAIVE_RATIO 4.0  /* naive / avm, at least */
#define TARGET_RSS_MIB 32.0     /* avm's peak RSS, any image size */
#define TARGET_ALLOC_RATIO 1.02 /* system.img allocated / data blocks, at most */

static bool skip, keep;
static int c2i_runs = 3;
static uint64_t set_mib = 4096;
static const char *bench_dir = "/var/tmp";

int
bench_cvd2img_config (void)
{
  const char *e;
  char *end;
  if ((e = getenv ("BENCH_SKIP_C2I")) && *e && strcmp (e, "0") != 0)
    skip = true;
  if ((e = getenv ("BENCH_C2I_KEEP")) && *e && strcmp (e, "0") != 0)
    keep = true;
  if ((e = getenv ("BENCH_C2I_RUNS")) && *e)
    {
      long v = strtol (e, &end, 10);
      if (*end || v < 1 || v > MAX_RUNS)
        {
          fprintf (stderr, "avm-bench: BENCH_C2I_RUNS must be an integer from 1 to %d\n", MAX_RUNS);
          return -1;
        }
      c2i_runs = (int) v;
    }
  if ((e = getenv ("BENCH_C2I_MIB")) && *e)
    {
      unsigned long long v = strtoull (e, &end, 10);
      if (*end || v < 256 || v % 256 || v > 1024 * 1024)
        {
          fprintf (stderr, "avm-bench: BENCH_C2I_MIB must be a multiple of 256 (MiB), at least 256\n");
          return -1;
        }
      set_mib = v;
    }
  if ((e = getenv ("BENCH_DIR")) && *e)
    {
      struct stat st;
      if (stat (e, &st) < 0 || !S_ISDIR (st.st_mode))
        {
          fprintf (stderr, "avm-bench: BENCH_DIR=%s: not a directory\n", e);
          return -1;
        }
      bench_dir = e;
    }
  return 0;
}

/* ------------------------------------------------------------------ */
/* The image set.  */

/* Small images, written whole with random bytes (vbmeta: "AVB0" first).  */
static const struct blob
{
  const char *name;
  uint64_t size;
} blobs[] = {
  { "boot.img", 64 * MIB },           { "init_boot.img", 8 * MIB },
  { "vendor_boot.img", 64 * MIB },    { "vbmeta.img", 8192 },
  { "vbmeta_system.img", 4096 },      { "vbmeta_vendor_dlkm.img", 4096 },
  { "vbmeta_system_dlkm.img", 4096 },
};
#define N_BLOBS (sizeof blobs / sizeof blobs[0])
#define BOOTLOADER "etc/bootloader_x86_64/bootloader.qemu"
#define KEY "etc/cvd_avb_testkey_rsa4096.pem"

/* system.img as avm lays it out (lib/cvd2img/cvd2img.c, avm_cvd_parts).  */
static const struct part
{
  const char *image; /* NULL: blank */
  const char *name;
  uint64_t blank_size;
  bool vbmeta; /* zero-extended to 64 KiB */
} parts[] = {
  { NULL, "misc", 1 * MIB, false },
  { "boot.img", "boot_a", 0, false },
  { "boot.img", "boot_b", 0, false },
  { "init_boot.img", "init_boot_a", 0, false },
  { "init_boot.img", "init_boot_b", 0, false },
  { "vendor_boot.img", "vendor_boot_a", 0, false },
  { "vendor_boot.img", "vendor_boot_b", 0, false },
  { "vbmeta.img", "vbmeta_a", 0, true },
  { "vbmeta.img", "vbmeta_b", 0, true },
  { "vbmeta_system.img", "vbmeta_system_a", 0, true },
  { "vbmeta_system.img", "vbmeta_system_b", 0, true },
  { "vbmeta_vendor_dlkm.img", "vbmeta_vendor_dlkm_a", 0, true },
  { "vbmeta_vendor_dlkm.img", "vbmeta_vendor_dlkm_b", 0, true },
  { "vbmeta_system_dlkm.img", "vbmeta_system_dlkm_a", 0, true },
  { "vbmeta_system_dlkm.img", "vbmeta_system_dlkm_b", 0, true },
  { "super.img", "super", 0, false },
  { "userdata.img", "userdata", 0, false },
  { NULL, "metadata", 64 * MIB, false },
};
#define N_PARTS (sizeof parts / sizeof parts[0])

struct imgset
{
  uint64_t mib;  /* super + userdata, expanded */
  char *dir;     /* the CVD directory avm reads */
  char *raw_dir; /* super.raw, userdata.raw: the expanded images (sparse files) */
  uint64_t super_size, userdata_size;
  uint64_t offset[N_PARTS], size[N_PARTS], disk_size;
  uint64_t data_blocks; /* non-zero 4 KiB blocks over all partitions */
  uint64_t image_bytes; /* bytes of every partition image (dd's share of the naive writes) */
};

static char *work;    /* the work directory, removed at the end */
static char *err_log; /* children's stderr */
static char *p_simg2img, *p_img2simg, *p_dd, *p_cp, *p_truncate, *p_sgdisk, *p_openssl;

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

/* xorshift64*: about 1 ns per 8 bytes.  */
static inline uint64_t
next_random (void)
{
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545F4914F6CDD1DULL;
}

static void
fill_random (uint8_t *buf, size_t len)
{
  size_t i = 0;
  for (; i + 8 <= len; i += 8)
    {
      uint64_t v = next_random ();
      memcpy (buf + i, &v, 8);
    }
  for (; i < len; i++)
    buf[i] = (uint8_t) next_random ();
}

static int
pwrite_all (int fd, const uint8_t *p, size_t len, uint64_t off, const char *path)
{
  while (len > 0)
    {
      ssize_t w = pwrite (fd, p, len, (off_t) off);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        {
          end_progress_line ();
          fprintf (stderr, "avm-bench: %s: cannot write: %s\n", path, w < 0 ? strerror (errno) : "no space");
          return -1;
        }
      p += w;
      off += (uint64_t) w;
      len -= (size_t) w;
    }
  return 0;
}

/* LEN random bytes at OFF of FD.  */
static int
write_random (int fd, uint8_t *buf, uint64_t off, uint64_t len, const char *path)
{
  while (len > 0 && !interrupted)
    {
      size_t n = len < BUF_SIZE ? (size_t) len : BUF_SIZE;
      fill_random (buf, n);
      if (pwrite_all (fd, buf, n, off, path) < 0)
        return -1;
      off += n;
      len -= n;
    }
  return interrupted ? -1 : 0;
}

static int
close_checked (int fd, const char *path)
{
  if (close (fd) < 0)
    {
      end_progress_line ();
      fprintf (stderr, "avm-bench: %s: %s\n", path, strerror (errno));
      return -1;
    }
  return 0;
}

/* A file of SIZE random bytes (MAGIC first, if any).  */
static int
make_blob (const char *path, uint64_t size, const char *magic, uint8_t *buf)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    {
      fprintf (stderr, "avm-bench: %s: %s\n", path, strerror (errno));
      return -1;
    }
  int r = write_random (fd, buf, 0, size, path);
  if (r == 0 && magic)
    r = pwrite_all (fd, (const uint8_t *) magic, strlen (magic), 0, path);
  if (close_checked (fd, path) < 0)
    r = -1;
  return r;
}

/* A sparse file of SIZE bytes (a multiple of 8 MiB), a quarter of it random
   data: every 8 MiB holds two runs of 4 KiB blocks, one in each 4 MiB half,
   of R and 512-R blocks (R from 32 to 480) at random places; holes
   elsewhere.  */
static int
make_sparse_raw (const char *path, uint64_t size, uint8_t *buf)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || ftruncate (fd, (off_t) size) < 0)
    {
      fprintf (stderr, "avm-bench: %s: %s\n", path, strerror (errno));
      if (fd >= 0)
        close (fd);
      return -1;
    }
  const uint64_t half = 4 * MIB, half_blocks = half / BLOCK;
  int r = 0;
  for (uint64_t w = 0; w + 2 * half <= size && r == 0; w += 2 * half)
    {
      uint64_t runs[2];
      runs[0] = 32 + next_random () % 449;
      runs[1] = 512 - runs[0];
      for (int k = 0; k < 2 && r == 0; k++)
        {
          uint64_t at = next_random () % (half_blocks - runs[k] + 1);
          r = write_random (fd, buf, w + k * half + at * BLOCK, runs[k] * BLOCK, path);
        }
    }
  if (close_checked (fd, path) < 0)
    r = -1;
  return r;
}

static void
report_failure (char *const *argv, int status)
{
  end_progress_line ();
  fprintf (stderr, "avm-bench: `");
  print_argv (stderr, argv);
  if (WIFEXITED (status))
    fprintf (stderr, "` exited with status %d", WEXITSTATUS (status));
  else
    fprintf (stderr, "` was killed by signal %d", WIFSIGNALED (status) ? WTERMSIG (status) : 0);
  FILE *f = fopen (err_log, "r");
  if (f)
    {
      char buf[4096];
      size_t n = fread (buf, 1, sizeof buf - 1, f);
      fclose (f);
      buf[n] = '\0';
      fprintf (stderr, "%s\n%s", n ? "; its error output:" : " (no error output)", buf);
      if (n && buf[n - 1] != '\n')
        fputc ('\n', stderr);
    }
  else
    fputc ('\n', stderr);
}

/* Run ARGV (stderr to err_log); *MS its wall time, *KIB its ru_maxrss.
   -1 when it failed (reported, `failed` set) or we were interrupted.  */
static int
step (char *const *argv, double *ms, long *kib)
{
  int status;
  long k = 0;
  if (interrupted)
    return -1; /* came while the harness itself was busy (sync, generation) */
  double t0 = now_ms ();
  if (run_io (argv, err_log, false, &status, &k) < 0)
    {
      failed = true;
      return -1;
    }
  double t = now_ms () - t0;
  if (interrupted)
    return -1;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      report_failure (argv, status);
      failed = true;
      return -1;
    }
  if (ms)
    *ms = t;
  if (kib)
    *kib = k;
  return 0;
}

static uint64_t
round_up (uint64_t v, uint64_t a)
{
  return (v + a - 1) / a * a;
}

static uint64_t
blob_size (const char *name)
{
  for (size_t i = 0; i < N_BLOBS; i++)
    if (!strcmp (blobs[i].name, name))
      return blobs[i].size;
  return 0;
}

/* Where each partition goes: LBA 40 on, each padded to 4 KiB, the disk
   rounded to 64 KiB with room for the backup GPT (lib/disk/gpt.c).  */
static void
layout (struct imgset *s)
{
  uint64_t off = FIRST_OFFSET;
  s->image_bytes = 0;
  for (size_t i = 0; i < N_PARTS; i++)
    {
      const struct part *p = &parts[i];
      uint64_t size = p->blank_size;
      if (p->image && !strcmp (p->image, "super.img"))
        size = s->super_size;
      else if (p->image && !strcmp (p->image, "userdata.img"))
        size = s->userdata_size;
      else if (p->image)
        size = blob_size (p->image);
      if (p->image)
        s->image_bytes += size;
      if (p->vbmeta)
        size = VBMETA_PARTITION;
      s->offset[i] = off;
      s->size[i] = size;
      off += round_up (size, BLOCK);
    }
  s->disk_size = round_up (off + GPT_TAIL, DISK_ALIGN);
}

/* The file holding partition I's bytes expanded: a raw for super and
   userdata, else the image itself.  */
static char *
expanded_path (const struct imgset *s, size_t i)
{
  if (!strcmp (parts[i].image, "super.img"))
    return xasprintf ("%s/super.raw", s->raw_dir);
  if (!strcmp (parts[i].image, "userdata.img"))
    return xasprintf ("%s/userdata.raw", s->raw_dir);
  return xasprintf ("%s/%s", s->dir, parts[i].image);
}

/* Non-zero 4 KiB blocks of PATH (a short last block counts as a block):
   holes are skipped with SEEK_DATA/SEEK_HOLE, data extents are read and
   checked block by block.  */
static int
count_data_blocks (const char *path, uint8_t *buf, uint64_t *blocks)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat (fd, &st) < 0)
    {
      fprintf (stderr, "avm-bench: %s: %s\n", path, strerror (errno));
      if (fd >= 0)
        close (fd);
      return -1;
    }
  uint64_t n = 0, size = (uint64_t) st.st_size, pos = 0;
  while (pos < size && !interrupted)
    {
      off_t d = lseek (fd, (off_t) pos, SEEK_DATA);
      if (d < 0)
        break; /* ENXIO: holes to the end */
      off_t h = lseek (fd, d, SEEK_HOLE);
      uint64_t start = (uint64_t) d / BLOCK * BLOCK, end = h < 0 ? size : (uint64_t) h;
      if (start < pos)
        start = pos;
      for (uint64_t at = start; at < end;)
        {
          size_t want = end - at < BUF_SIZE ? (size_t) (end - at) : BUF_SIZE;
          ssize_t got = pread (fd, buf, want, (off_t) at);
          if (got <= 0)
            {
              fprintf (stderr, "avm-bench: %s: cannot read: %s\n", path, got < 0 ? strerror (errno) : "short file");
              close (fd);
              return -1;
            }
          for (ssize_t b = 0; b < got; b += BLOCK)
            {
              size_t len = (size_t) (got - b) < BLOCK ? (size_t) (got - b) : BLOCK;
              const uint8_t *p = buf + b;
              size_t z = 0;
              while (z < len && !p[z])
                z++;
              n += z < len;
            }
          at += (uint64_t) got;
        }
      pos = round_up (end, BLOCK);
    }
  close (fd);
  *blocks = n;
  return interrupted ? -1 : 0;
}

/* Chunks of an Android sparse image by kind: RAW, FILL of zeros, other
   FILL, DONT_CARE, CRC32.  */
enum
{
  CH_RAW,
  CH_FILL0,
  CH_FILL,
  CH_DONT_CARE,
  CH_CRC32,
  CH_N
};

static uint32_t
le32 (const uint8_t *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static int
count_chunks (const char *path, uint64_t n[CH_N])
{
  uint8_t h[28], c[16];
  memset (n, 0, CH_N * sizeof *n);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  int r = -1;
  if (pread (fd, h, sizeof h, 0) != (ssize_t) sizeof h || le32 (h) != 0xED26FF3A)
    goto out;
  uint64_t off = h[8] | h[9] << 8;
  unsigned chdr = h[10] | h[11] << 8;
  uint32_t chunks = le32 (h + 20);
  for (uint32_t i = 0; i < chunks; i++)
    {
      if (chdr < 12 || pread (fd, c, 16, (off_t) off) < 12)
        goto out;
      uint16_t type = (uint16_t) (c[0] | c[1] << 8);
      uint32_t total = le32 (c + 8);
      uint8_t v[4] = { 1 };
      switch (type)
        {
        case 0xCAC1:
          n[CH_RAW]++;
          break;
        case 0xCAC2:
          if (pread (fd, v, 4, (off_t) (off + chdr)) != 4)
            goto out;
          n[le32 (v) ? CH_FILL : CH_FILL0]++;
          break;
        case 0xCAC3:
          n[CH_DONT_CARE]++;
          break;
        case 0xCAC4:
          n[CH_CRC32]++;
          break;
        default:
          goto out;
        }
      off += total;
    }
  r = 0;
out:
  close (fd);
  return r;
}

static void
print_chunks (const char *dir, const char *name)
{
  uint64_t n[CH_N];
  char *path = xasprintf ("%s/%s", dir, name);
  if (count_chunks (path, n) == 0)
    printf ("  %s: %" PRIu64 " RAW, %" PRIu64 " FILL of zeros, %" PRIu64 " other FILL, %" PRIu64 " DONT_CARE, %" PRIu64
            " CRC32 chunks\n",
            name, n[CH_RAW], n[CH_FILL0], n[CH_FILL], n[CH_DONT_CARE], n[CH_CRC32]);
  free (path);
}

/* img2simg RAW SPARSE 4096.  */
static int
to_sparse (const char *raw, const char *sparse, double *ms)
{
  char *argv[] = { p_img2simg, (char *) raw, (char *) sparse, "4096", NULL };
  double t = 0;
  int r = step (argv, &t, NULL);
  *ms += t;
  return r;
}

static int
mkdir_p2 (const char *path)
{
  if (mkdir (path, 0755) < 0 && errno != EEXIST)
    {
      fprintf (stderr, "avm-bench: mkdir %s: %s\n", path, strerror (errno));
      return -1;
    }
  return 0;
}

/* Generate a set of MIB MiB (super 7/8, userdata 1/8) in DIR.  The small
   files are hard links to those of SHARE (a set made before) when given.  */
static int
make_set (struct imgset *s, uint64_t mib, const char *name, const struct imgset *share, uint8_t *buf,
          double *img2simg_ms, double *openssl_ms)
{
  s->mib = mib;
  s->dir = xasprintf ("%s/%s", work, name);
  s->raw_dir = xasprintf ("%s/%s-raw", work, name);
  s->super_size = mib * MIB / 8 * 7;
  s->userdata_size = mib * MIB / 8;
  char *etc = xasprintf ("%s/etc", s->dir), *bl_dir = xasprintf ("%s/etc/bootloader_x86_64", s->dir);
  int r = -1;
  if (mkdir_p2 (s->dir) < 0 || mkdir_p2 (s->raw_dir) < 0 || mkdir_p2 (etc) < 0 || mkdir_p2 (bl_dir) < 0)
    goto out;

  const char *small[N_BLOBS + 2];
  for (size_t i = 0; i < N_BLOBS; i++)
    small[i] = blobs[i].name;
  small[N_BLOBS] = BOOTLOADER;
  small[N_BLOBS + 1] = KEY;
  for (size_t i = 0; i < N_BLOBS + 2 && !interrupted; i++)
    {
      char *path = xasprintf ("%s/%s", s->dir, small[i]);
      int k = 0;
      if (share)
        {
          char *from = xasprintf ("%s/%s", share->dir, small[i]);
          k = link (from, path);
          if (k < 0)
            fprintf (stderr, "avm-bench: link %s %s: %s\n", from, path, strerror (errno));
          free (from);
        }
      else if (i < N_BLOBS)
        k = make_blob (path, blobs[i].size, strncmp (small[i], "vbmeta", 6) ? NULL : "AVB0", buf);
      else if (!strcmp (small[i], BOOTLOADER))
        k = make_blob (path, 1 * MIB, NULL, buf);
      else
        {
          char *argv[] = { p_openssl, "genrsa", "-out", path, "4096", NULL };
          k = step (argv, openssl_ms, NULL);
        }
      free (path);
      if (k < 0)
        goto out;
    }

  char *super_raw = xasprintf ("%s/super.raw", s->raw_dir), *userdata_raw = xasprintf ("%s/userdata.raw", s->raw_dir);
  char *super_img = xasprintf ("%s/super.img", s->dir), *userdata_img = xasprintf ("%s/userdata.img", s->dir);
  if (!interrupted && make_sparse_raw (super_raw, s->super_size, buf) == 0
      && make_sparse_raw (userdata_raw, s->userdata_size, buf) == 0
      && to_sparse (super_raw, super_img, img2simg_ms) == 0 && to_sparse (userdata_raw, userdata_img, img2simg_ms) == 0)
    r = 0;
  free (super_raw);
  free (userdata_raw);
  free (super_img);
  free (userdata_img);
  layout (s);
out:
  free (etc);
  free (bl_dir);
  return interrupted ? -1 : r;
}

/* Sum over the partitions of the non-zero blocks of their images.  */
static int
count_set_blocks (struct imgset *s, uint8_t *buf)
{
  s->data_blocks = 0;
  for (size_t i = 0; i < N_PARTS; i++)
    {
      if (!parts[i].image)
        continue;
      char *path = expanded_path (s, i);
      uint64_t n = 0;
      int r = count_data_blocks (path, buf, &n);
      free (path);
      if (r < 0)
        return -1;
      s->data_blocks += n;
    }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Series.  */

enum kind
{
  K_AVM,
  K_SIMG2IMG,
  K_TRUNCATE,
  K_DD,
  K_SGDISK,
  K_CP,
  K_N
};
static const char *const kind_names[K_N] = { "avm", "simg2img", "truncate", "dd", "sgdisk", "cp" };

struct c2i_step
{
  char **argv;
  enum kind kind;
};

struct c2i
{
  const char *name;
  char *out;      /* output directory, removed before and after each run */
  bool precreate; /* mkdir out (and out/a, out/b with ab) before each run, untimed */
  bool ab;
  bool timed_sync; /* also time a sync() after the steps */
  bool is_avm;
  struct c2i_step steps[40];
  size_t n;
  int runs;
  /* Results.  */
  double t[MAX_RUNS], ts[MAX_RUNS]; /* ms: the steps; the steps + sync */
  double kind_ms[K_N][MAX_RUNS];
  long max_kib;
  enum kind max_kind; /* the step with the peak */
  uint64_t alloc;     /* st_blocks * 512 of the output (system.img for avm), last run */
  uint64_t out_size;  /* st_size of system.img / the naive disk */
  bool ok;
};

static void
add_step (struct c2i *s, enum kind k, char **argv)
{
  if (s->n >= sizeof s->steps / sizeof s->steps[0])
    abort ();
  size_t n = 0;
  while (argv[n])
    n++;
  char **copy = xmalloc ((n + 1) * sizeof *copy);
  for (size_t i = 0; i <= n; i++)
    copy[i] = argv[i];
  s->steps[s->n].argv = copy;
  s->steps[s->n].kind = k;
  s->n++;
}

static uint64_t tree_blocks;

static int
sum_blocks (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) path;
  (void) ftw;
  if (flag == FTW_F)
    tree_blocks += (uint64_t) st->st_blocks * 512;
  return 0;
}

/* Run I of S: untimed cleanup and sync, the timed steps, the output's
   allocation, the output removed.  */
static int
c2i_run (struct c2i *s, int i)
{
  rm_rf (s->out);
  if (s->precreate)
    {
      if (mkdir_p2 (s->out) < 0)
        return -1;
      if (s->ab)
        {
          char *a = xasprintf ("%s/a", s->out), *b = xasprintf ("%s/b", s->out);
          int r = mkdir_p2 (a) | mkdir_p2 (b);
          free (a);
          free (b);
          if (r < 0)
            return -1;
        }
    }
  sync (); /* the last run's writeback is not this run's */

  double total = 0;
  long kib_max = 0;
  enum kind kind_max = K_AVM;
  for (int k = 0; k < K_N; k++)
    s->kind_ms[k][i] = 0;
  for (size_t j = 0; j < s->n; j++)
    {
      double ms;
      long kib;
      if (step (s->steps[j].argv, &ms, &kib) < 0)
        return -1;
      total += ms;
      s->kind_ms[s->steps[j].kind][i] += ms;
      if (kib > kib_max)
        {
          kib_max = kib;
          kind_max = s->steps[j].kind;
        }
    }
  s->t[i] = total;
  s->ts[i] = total;
  if (s->timed_sync)
    {
      double t0 = now_ms ();
      sync ();
      s->ts[i] += now_ms () - t0;
    }
  if (kib_max > s->max_kib)
    {
      s->max_kib = kib_max;
      s->max_kind = kind_max;
    }

  struct stat st;
  char *sys = s->is_avm ? xasprintf ("%s/system.img", s->out) : xasprintf ("%s/disk.img", s->out);
  if (stat (sys, &st) == 0)
    {
      s->out_size = (uint64_t) st.st_size;
      s->alloc = s->is_avm ? (uint64_t) st.st_blocks * 512 : 0;
    }
  free (sys);
  if (!s->is_avm)
    {
      tree_blocks = 0;
      nftw (s->out, sum_blocks, 16, FTW_PHYS);
      s->alloc = tree_blocks;
    }
  rm_rf (s->out);
  return 0;
}

struct stats
{
  double min, median, max;
};

static struct stats
stats_of (const double *v, int n)
{
  double *c = xmalloc (n * sizeof *c);
  memcpy (c, v, n * sizeof *c);
  qsort (c, n, sizeof *c, cmp_double);
  struct stats s = { c[0], n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2, c[n - 1] };
  free (c);
  return s;
}

static void
print_row (const char *name, int runs, struct stats st, double rss_mib)
{
  printf ("%-46s %5d %9.2f %9.2f %9.2f %13.1f\n", name, runs, st.min / 1e3, st.median / 1e3, st.max / 1e3, rss_mib);
}

/* ------------------------------------------------------------------ */

static const char *
fs_name (const char *path)
{
  struct statfs f;
  if (statfs (path, &f) < 0)
    return "unknown filesystem";
  switch ((unsigned long) f.f_type)
    {
    case 0xEF53:
      return "ext4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs: the numbers measure memory, not a disk";
    case 0x794C7630:
      return "overlayfs";
    case 0x2FC12FC1:
      return "zfs";
    default:
      return "other filesystem";
    }
}

static uint64_t
mem_total_kib (void)
{
  uint64_t kib = 0;
  char line[256];
  FILE *f = fopen ("/proc/meminfo", "r");
  if (!f)
    return 0;
  while (fgets (line, sizeof line, f))
    if (sscanf (line, "MemTotal: %" SCNu64 " kB", &kib) == 1)
      break;
  fclose (f);
  return kib;
}

static char *
need_tool (const char *name, const char *package, char *missing, size_t len)
{
  char *p = find_program (name);
  if (!p)
    {
      size_t used = strlen (missing);
      snprintf (missing + used, len - used, "%s%s (%s)", used ? ", " : "", name, package);
    }
  return p;
}

static double
mib (uint64_t bytes)
{
  return (double) bytes / MIB;
}

int
bench_cvd2img (const char *avm)
{
  if (skip)
    {
      printf ("\ncvd2img: skipped (BENCH_SKIP_C2I)\n");
      return 0;
    }
  char missing[512] = "";
  p_simg2img = need_tool ("simg2img", "android-sdk-libsparse-utils", missing, sizeof missing);
  p_img2simg = need_tool ("img2simg", "android-sdk-libsparse-utils", missing, sizeof missing);
  p_sgdisk = need_tool ("sgdisk", "gdisk", missing, sizeof missing);
  p_openssl = need_tool ("openssl", "openssl", missing, sizeof missing);
  p_dd = need_tool ("dd", "coreutils", missing, sizeof missing);
  p_cp = need_tool ("cp", "coreutils", missing, sizeof missing);
  p_truncate = need_tool ("truncate", "coreutils", missing, sizeof missing);
  if (*missing)
    {
      printf ("\ncvd2img: skipped: not on PATH: %s\n", missing);
      return 0;
    }

  const uint64_t set_bytes = set_mib * MIB, need = 3 * set_bytes;
  struct statvfs vfs;
  if (statvfs (bench_dir, &vfs) < 0)
    {
      fprintf (stderr, "avm-bench: statvfs %s: %s\n", bench_dir, strerror (errno));
      failed = true;
      return -1;
    }
  uint64_t avail = (uint64_t) vfs.f_bavail * vfs.f_frsize;
  if (avail < need)
    {
      printf ("\ncvd2img: skipped: %.1f GiB free in %s, the %" PRIu64 " MiB image set needs %.0f GiB (inputs and\n"
              "  three outputs); set BENCH_DIR to a directory with more room, BENCH_C2I_MIB to a smaller set,\n"
              "  or BENCH_SKIP_C2I=1\n",
              (double) avail / GIB, bench_dir, set_mib, (double) need / GIB);
      return 0;
    }

  work = xasprintf ("%s/avm-bench-%ld", bench_dir, (long) getpid ());
  if (mkdir (work, 0700) < 0)
    {
      fprintf (stderr, "avm-bench: mkdir %s: %s\n", work, strerror (errno));
      failed = true;
      return -1;
    }
  err_log = xasprintf ("%s/stderr.log", work);
  uint8_t *buf = xmalloc (BUF_SIZE);
  struct imgset big = { 0 }, small = { 0 };
  struct c2i series[4] = {
    { .name = "avm cvd2img -q", .is_avm = true, .runs = c2i_runs },
    { .name = "naive: simg2img x2, truncate, dd x16, sgdisk", .precreate = true, .timed_sync = true, .runs = c2i_runs },
    { .name = "copy limit: cp --sparse=always x2",
      .precreate = true,
      .ab = true,
      .timed_sync = true,
      .runs = c2i_runs },
    { .name = "avm cvd2img -q (quarter-size set)", .is_avm = true, .runs = 1 },
  };
  enum
  {
    AVM,
    NAIVE,
    COPY,
    AVM_SMALL
  };
  int ret = -1;

  printf ("\ncvd2img: %" PRIu64 " MiB image set in %s (%s, %.1f GiB free), %d runs, RAM %.1f GiB\n", set_mib, work,
          fs_name (bench_dir), (double) avail / GIB, c2i_runs, mem_total_kib () / 1048576.0);
  print_load ("load at start of the cvd2img part");
  fflush (stdout);

  /* The sets.  */
  fprintf (stderr, "avm-bench: cvd2img: generating a %" PRIu64 " MiB and a %" PRIu64 " MiB image set in %s\n", set_mib,
           set_mib / 4, work);
  double t0 = now_ms (), img2simg_ms = 0, openssl_ms = 0;
  if (make_set (&big, set_mib, "set", NULL, buf, &img2simg_ms, &openssl_ms) < 0
      || make_set (&small, set_mib / 4, "set-quarter", &big, buf, &img2simg_ms, &openssl_ms) < 0)
    goto out;
  sync ();
  double gen_ms = now_ms () - t0;
  t0 = now_ms ();
  if (count_set_blocks (&big, buf) < 0)
    goto out;
  double scan_ms = now_ms () - t0;
  /* The quarter set's raws are not needed any more.  */
  rm_rf (small.raw_dir);

  /* The three ways to system.img.  */
  struct c2i *s = &series[AVM];
  s->out = xasprintf ("%s/out-avm", work);
  add_step (s, K_AVM, (char *[]) { (char *) avm, "cvd2img", "-q", "-o", s->out, big.dir, NULL });

  s = &series[AVM_SMALL];
  s->out = xasprintf ("%s/out-avm-quarter", work);
  add_step (s, K_AVM, (char *[]) { (char *) avm, "cvd2img", "-q", "-o", s->out, small.dir, NULL });

  s = &series[NAIVE];
  s->out = xasprintf ("%s/out-naive", work);
  char *disk = xasprintf ("%s/disk.img", s->out);
  char *super_x = xasprintf ("%s/super.expanded", s->out), *userdata_x = xasprintf ("%s/userdata.expanded", s->out);
  add_step (s, K_SIMG2IMG, (char *[]) { p_simg2img, xasprintf ("%s/super.img", big.dir), super_x, NULL });
  add_step (s, K_SIMG2IMG, (char *[]) { p_simg2img, xasprintf ("%s/userdata.img", big.dir), userdata_x, NULL });
  add_step (s, K_TRUNCATE, (char *[]) { p_truncate, "-s", xasprintf ("%" PRIu64, big.disk_size), disk, NULL });
  char **sg = xmalloc ((4 + 6 * N_PARTS + 2) * sizeof *sg);
  size_t ns = 0;
  sg[ns++] = p_sgdisk;
  sg[ns++] = "-a";
  sg[ns++] = "8"; /* 4 KiB: the partitions start at LBA 40 */
  for (size_t i = 0; i < N_PARTS; i++)
    {
      uint64_t first = big.offset[i] / SECTOR, last = (big.offset[i] + round_up (big.size[i], BLOCK)) / SECTOR - 1;
      sg[ns++] = "-n";
      sg[ns++] = xasprintf ("%zu:%" PRIu64 ":%" PRIu64, i + 1, first, last);
      sg[ns++] = "-c";
      sg[ns++] = xasprintf ("%zu:%s", i + 1, parts[i].name);
      sg[ns++] = "-t";
      sg[ns++] = xasprintf ("%zu:8300", i + 1);
      if (!parts[i].image)
        continue;
      const char *src = !strcmp (parts[i].image, "super.img")      ? super_x
                        : !strcmp (parts[i].image, "userdata.img") ? userdata_x
                                                                   : xasprintf ("%s/%s", big.dir, parts[i].image);
      add_step (s, K_DD,
                (char *[]) { p_dd, xasprintf ("if=%s", src), xasprintf ("of=%s", disk), "bs=1M",
                             xasprintf ("seek=%" PRIu64, big.offset[i]), "oflag=seek_bytes", "conv=notrunc",
                             "status=none", NULL });
    }
  sg[ns++] = disk;
  sg[ns] = NULL;
  add_step (s, K_SGDISK, sg);

  s = &series[COPY];
  s->out = xasprintf ("%s/out-copy", work);
  char *cp_a[N_BLOBS + 6], *cp_b[N_BLOBS + 6];
  size_t na = 0, nb = 0;
  cp_a[na++] = cp_b[nb++] = p_cp;
  cp_a[na++] = cp_b[nb++] = "--sparse=always";
  cp_a[na++] = xasprintf ("%s/super.raw", big.raw_dir);
  cp_a[na++] = xasprintf ("%s/userdata.raw", big.raw_dir);
  for (size_t i = 0; i < N_BLOBS; i++)
    cp_a[na++] = cp_b[nb++] = xasprintf ("%s/%s", big.dir, blobs[i].name);
  cp_a[na++] = xasprintf ("%s/a/", s->out);
  cp_b[nb++] = xasprintf ("%s/b/", s->out);
  cp_a[na] = cp_b[nb] = NULL;
  add_step (s, K_CP, cp_a);
  add_step (s, K_CP, cp_b);

  fprintf (stderr, "avm-bench: cvd2img: set generated in %.1f s; %d rounds of avm, naive, copy ", gen_ms / 1e3,
           c2i_runs);
  progress_open = true;
  for (int i = 0; i < c2i_runs; i++)
    {
      for (int k = AVM; k <= COPY; k++)
        if (c2i_run (&series[k], i) < 0)
          goto out;
      fputc ('.', stderr);
    }
  if (c2i_run (&series[AVM_SMALL], 0) < 0)
    goto out;
  end_progress_line ();

  /* Report.  */
  struct stats st[4], st_sync[4];
  for (int k = 0; k < 4; k++)
    {
      st[k] = stats_of (series[k].t, series[k].runs);
      st_sync[k] = stats_of (series[k].ts, series[k].runs);
    }
  printf ("set: super %" PRIu64 " MiB + userdata %" PRIu64 " MiB (Android sparse, 25%% random data in runs of\n"
          "  128 KiB-1.9 MiB, holes between), boot and vendor_boot 64 MiB, init_boot 8 MiB, four vbmeta, 1 MiB\n"
          "  bootloader, RSA-4096 key; generated in %.1f s (img2simg %.1f s, openssl genrsa %.1f s); the quarter\n"
          "  set (%" PRIu64 " MiB) shares the small files\n",
          big.super_size / MIB, big.userdata_size / MIB, gen_ms / 1e3, img2simg_ms / 1e3, openssl_ms / 1e3, small.mib);
  print_chunks (big.dir, "super.img");
  print_chunks (big.dir, "userdata.img");
  printf ("system.img: %" PRIu64 " bytes, %zu partitions; data: %" PRIu64 " non-zero 4 KiB blocks (%.1f MiB,\n"
          "  A/B copies counted twice; scanned in %.1f s)\n",
          big.disk_size, N_PARTS, big.data_blocks, mib (big.data_blocks * BLOCK), scan_ms / 1e3);

  printf ("\n%-46s %5s %9s %9s %9s %13s\n", "cvd2img series", "runs", "min s", "median s", "max s", "peak RSS MiB");
  print_row ("avm cvd2img -q (fsyncs its outputs)", series[AVM].runs, st[AVM], series[AVM].max_kib / 1024.0);
  print_row ("naive: simg2img, dd x16, sgdisk", series[NAIVE].runs, st[NAIVE], series[NAIVE].max_kib / 1024.0);
  print_row ("naive + sync", series[NAIVE].runs, st_sync[NAIVE], series[NAIVE].max_kib / 1024.0);
  print_row ("copy limit: cp --sparse=always x2", series[COPY].runs, st[COPY], series[COPY].max_kib / 1024.0);
  print_row ("copy limit + sync", series[COPY].runs, st_sync[COPY], series[COPY].max_kib / 1024.0);
  char *small_name = xasprintf ("avm cvd2img -q (%" PRIu64 " MiB set)", small.mib);
  print_row (small_name, 1, st[AVM_SMALL], series[AVM_SMALL].max_kib / 1024.0);

  printf ("\nnaive pipeline, medians per step kind:");
  for (int k = K_SIMG2IMG; k <= K_SGDISK; k++)
    printf (" %s %.2f s%s", kind_names[k], stats_of (series[NAIVE].kind_ms[k], c2i_runs).median / 1e3,
            k < K_SGDISK ? "," : "\n");
  printf ("  its peak RSS: %s\n", kind_names[series[NAIVE].max_kind]);
  printf ("allocated by a run's outputs: avm %.0f MiB (system.img), naive %.0f MiB (the two expanded copies\n"
          "  and the disk: dd copies all %.0f MiB of the images, zeros included), copy limit %.0f MiB\n",
          mib (series[AVM].alloc), mib (series[NAIVE].alloc), mib (big.image_bytes), mib (series[COPY].alloc));
  if (series[AVM].out_size != big.disk_size || series[NAIVE].out_size != big.disk_size)
    printf ("WARNING: sizes differ: avm's system.img %" PRIu64 ", the naive disk %" PRIu64 ", expected %" PRIu64 "\n",
            series[AVM].out_size, series[NAIVE].out_size, big.disk_size);

  printf ("\nnotes:\n"
          "  - warm cache: the page cache is not dropped; the inputs were just written and are read from\n"
          "    memory.  Before each run the outputs of the last one are deleted and sync(2) runs (untimed).\n"
          "  - avm fsyncs every output before renaming it into place, so its time includes writing\n"
          "    system.img to the disk; cp leaves its output dirty in the page cache, sgdisk calls\n"
          "    sync(2) itself: the `+ sync` rows add a timed sync(2) after the last step.\n"
          "  - a series' time is the sum of its steps' wall times (CLOCK_MONOTONIC around posix_spawn +\n"
          "    wait4); its peak RSS the maximum ru_maxrss over its steps and runs (floor: this harness's\n"
          "    VmHWM, %.1f MiB).\n",
          self_hwm_kib () / 1024.0);

  double r_copy = st[AVM].median / st[COPY].median, r_copy_sync = st[AVM].median / st_sync[COPY].median;
  double r_naive = st[NAIVE].median / st[AVM].median, r_naive_sync = st_sync[NAIVE].median / st[AVM].median;
  printf ("\ncvd2img ratios of medians:\n");
  printf ("  avm / copy limit:                  %6.2fx  (target <= %.1fx)  %s\n", r_copy, TARGET_COPY_RATIO,
          verdict (r_copy <= TARGET_COPY_RATIO));
  printf ("  avm / (copy limit + sync):         %6.2fx  (target <= %.1fx)  %s  (both on disk)\n", r_copy_sync,
          TARGET_COPY_RATIO, verdict (r_copy_sync <= TARGET_COPY_RATIO));
  printf ("  naive / avm:                       %6.2fx  (target >= %.0fx)  %s\n", r_naive, TARGET_NAIVE_RATIO,
          verdict (r_naive >= TARGET_NAIVE_RATIO));
  printf ("  (naive + sync) / avm:              %6.2fx  (target >= %.0fx)  %s  (both on disk)\n", r_naive_sync,
          TARGET_NAIVE_RATIO, verdict (r_naive_sync >= TARGET_NAIVE_RATIO));

  double rss_big = series[AVM].max_kib / 1024.0, rss_small = series[AVM_SMALL].max_kib / 1024.0;
  double alloc_ratio = big.data_blocks ? (double) series[AVM].alloc / (big.data_blocks * BLOCK) : 0;
  printf ("\ncvd2img targets:\n");
  printf ("  avm peak RSS <= %.0f MiB:            %.1f MiB (%" PRIu64 " MiB set), %.1f MiB (%" PRIu64 " MiB set)  %s\n",
          TARGET_RSS_MIB, rss_big, set_mib, rss_small, small.mib,
          verdict (rss_big <= TARGET_RSS_MIB && rss_small <= TARGET_RSS_MIB));
  printf ("  system.img allocated / data <= %.2fx: %.4fx (%.1f MiB st_blocks vs %.1f MiB of non-zero blocks)  %s\n",
          TARGET_ALLOC_RATIO, alloc_ratio, mib (series[AVM].alloc), mib (big.data_blocks * BLOCK),
          verdict (alloc_ratio > 0 && alloc_ratio <= TARGET_ALLOC_RATIO));
  char t_copy[16], t_naive[16], t_rss[16];
  snprintf (t_copy, sizeof t_copy, "<= %.1fx", TARGET_COPY_RATIO);
  snprintf (t_naive, sizeof t_naive, ">= %.0fx", TARGET_NAIVE_RATIO);
  snprintf (t_rss, sizeof t_rss, "<= %.0f MiB", TARGET_RSS_MIB);
  bench_summary_add ("avm cvd2img (system disk, fsynced)", "s", st[AVM].min / 1e3, st[AVM].median / 1e3,
                     st[AVM].max / 1e3, "copy limit + sync (avm/copy)", st_sync[COPY].median / 1e3, r_copy_sync, t_copy,
                     r_copy_sync <= TARGET_COPY_RATIO);
  bench_summary_add ("avm cvd2img vs slp/cvd2img's pipeline", "s", st[AVM].min / 1e3, st[AVM].median / 1e3,
                     st[AVM].max / 1e3, "naive tools + sync (naive/avm)", st_sync[NAIVE].median / 1e3, r_naive_sync,
                     t_naive, r_naive_sync >= TARGET_NAIVE_RATIO);
  bench_summary_add ("avm cvd2img peak RSS", "MiB", rss_small, rss_big, rss_big, "quarter-size set (big/small)",
                     rss_small, rss_small > 0 ? rss_big / rss_small : 0, t_rss,
                     rss_big <= TARGET_RSS_MIB && rss_small <= TARGET_RSS_MIB);
  print_load ("\nload at end of the cvd2img part");
  ret = 0;

out:
  end_progress_line ();
  free (buf);
  if (keep && ret == 0)
    printf ("cvd2img: kept %s (BENCH_C2I_KEEP): remove it when done\n", work);
  else
    rm_rf (work);
  return ret;
}
