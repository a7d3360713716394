/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Android sparse images: round trips against the real libsparse tools
 * (img2simg, simg2simg, simg2img), sparseness of the output, CRC32 chunks,
 * and one hand-made corrupt file for every check, each error naming the file
 * and the offset.
 */
#include "disk/output.h"
#include "disk/sparse.h"
#include "disk/stream.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define BS 4096
#define RAW 0xcac1
#define FILL 0xcac2
#define DONT_CARE 0xcac3
#define CRC32 0xcac4

static char *dir;

static void
setup (void)
{
  dir = tu_tmpdir ();
}

static void
teardown (void)
{
  tu_rmtree (dir);
  free (dir);
}

TestSuite (sparse, .init = setup, .fini = teardown);

static char *
path_in (const char *name)
{
  char *p = NULL;
  cr_assert (asprintf (&p, "%s/%s", dir, name) >= 0);
  return p;
}

static void
fill_random (uint8_t *buf, size_t len, unsigned seed)
{
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (size_t i = 0; i < len; i++)
    {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      buf[i] = (uint8_t) (x >> 24) | 1; /* never a zero byte */
    }
}

static void
write_bytes (const char *path, const void *data, size_t len)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  cr_assert (fd >= 0, "%s: %s", path, strerror (errno));
  cr_assert (write (fd, data, len) == (ssize_t) len);
  close (fd);
}

static uint8_t *
read_all (const char *path, size_t *len)
{
  int fd = open (path, O_RDONLY);
  struct stat st;
  cr_assert (fd >= 0, "open %s: %s", path, strerror (errno));
  cr_assert (fstat (fd, &st) == 0);
  uint8_t *buf = malloc (st.st_size + 1);
  cr_assert (pread (fd, buf, st.st_size, 0) == st.st_size);
  close (fd);
  *len = st.st_size;
  return buf;
}

static void
run_ok (char *const argv[])
{
  char *out = NULL, *err = NULL;
  int st = tu_run (argv, NULL, &out, &err);
  cr_assert_eq (st, 0, "%s failed (%d): %s%s", argv[0], st, out, err);
  free (out);
  free (err);
}

/* Streams: 0 a file with its size, 1 a file of unknown size, 2 a file of
   unknown size read in random short pieces.  */
enum
{
  KNOWN_SIZE,
  UNKNOWN_SIZE,
  CHOPPY,
  N_MODES
};

struct choppy
{
  int fd;
  uint64_t x;
};

static ssize_t
choppy_read (void *ctx, void *buf, size_t len)
{
  struct choppy *c = ctx;
  c->x = c->x * 6364136223846793005ULL + 1442695040888963407ULL;
  size_t n = 1 + (c->x >> 33) % 70000;
  ssize_t r = read (c->fd, buf, len < n ? len : n);
  return r < 0 ? -errno : r;
}

struct progress
{
  uint64_t total;
};

static void
on_progress (void *data, uint64_t bytes)
{
  ((struct progress *) data)->total += bytes;
}

/* Expand the sparse file IN (named NAME in messages) into OUT (OUT_SIZE
   bytes) at BASE.  Returns 0 or the error (message in *MSG).  */
static int
expand (const char *in, const char *name, const char *out, uint64_t out_size, uint64_t base, uint64_t limit, int mode,
        char **msg, int *exit_code)
{
  int fd = open (in, O_RDONLY);
  struct stat st;
  struct avm_stream s;
  struct choppy c = { fd, 42 };
  struct avm_sparse_header h;
  struct avm_out *o = NULL;
  avm_error_t err = NULL;
  struct progress pr = { 0 };
  int r;

  cr_assert (fd >= 0);
  cr_assert (fstat (fd, &st) == 0);
  avm_stream_from_fd (&s, &fd, name, mode == KNOWN_SIZE ? (uint64_t) st.st_size : UINT64_MAX);
  if (mode == CHOPPY)
    {
      s.read = choppy_read;
      s.ctx = &c;
    }
  r = avm_sparse_read_header (&s, &h, &err);
  if (r == 0 && out)
    {
      r = avm_out_open (out, out_size, &o, &err);
      cr_assert_eq (r, 0, "%s", err ? err->msg : "");
      avm_out_set_progress (o, on_progress, &pr);
      r = avm_sparse_expand (&s, &h, o, base, limit, &err);
      if (r == 0)
        {
          cr_assert_eq (pr.total, avm_sparse_size (&h), "progress %llu of %llu", (unsigned long long) pr.total,
                        (unsigned long long) avm_sparse_size (&h));
          r = avm_out_commit (o, &err);
        }
      else
        avm_out_abort (o);
    }
  close (fd);
  if (r < 0)
    cr_assert_not_null (err, "failure without a message");
  if (msg)
    *msg = err ? strdup (err->msg) : NULL;
  if (exit_code)
    *exit_code = err ? err->exit_code : 0;
  avm_error_free (err);
  return r;
}

/* The chunks of a sparse file: how many of each type.  */
struct census
{
  unsigned raw, fill, fill_zero, dont_care, crc;
};

static struct census
census (const char *path)
{
  size_t len;
  uint8_t *d = read_all (path, &len);
  struct census c = { 0 };
  cr_assert_geq (len, 28);
  cr_assert (avm_sparse_magic (d));
  uint16_t fhs = d[8] | d[9] << 8, chs = d[10] | d[11] << 8;
  for (size_t off = fhs; off + 12 <= len;)
    {
      uint16_t type = d[off] | d[off + 1] << 8;
      uint32_t tsz;
      memcpy (&tsz, d + off + 8, 4);
      switch (type)
        {
        case RAW:
          c.raw++;
          break;
        case FILL:
          c.fill++;
          if (!memcmp (d + off + chs, "\0\0\0\0", 4))
            c.fill_zero++;
          break;
        case DONT_CARE:
          c.dont_care++;
          break;
        case CRC32:
          c.crc++;
          break;
        default:
          cr_assert_fail ("unexpected chunk type 0x%x", type);
        }
      off += tsz;
    }
  free (d);
  return c;
}

/* Rewrite IN into OUT with every zero FILL chunk turned into DONT_CARE
   (same expansion, what other libsparse writers emit).  */
static void
zero_fills_to_dont_care (const char *in, const char *out)
{
  size_t len;
  uint8_t *d = read_all (in, &len);
  FILE *f = fopen (out, "w");
  cr_assert_not_null (f);
  fwrite (d, 1, 28, f);
  for (size_t off = 28; off + 12 <= len;)
    {
      uint16_t type = d[off] | d[off + 1] << 8;
      uint32_t tsz;
      memcpy (&tsz, d + off + 8, 4);
      if (type == FILL && !memcmp (d + off + 12, "\0\0\0\0", 4))
        {
          uint8_t h[12];
          uint32_t n = 12;
          memcpy (h, d + off, 12);
          h[0] = DONT_CARE & 0xff;
          h[1] = DONT_CARE >> 8;
          memcpy (h + 8, &n, 4);
          fwrite (h, 1, 12, f);
        }
      else
        fwrite (d + off, 1, tsz, f);
      off += tsz;
    }
  fclose (f);
  free (d);
}

/* The raw test image: 16 MiB of random data, zero runs, repeated 4-byte
   patterns, random and zero blocks interleaved, a random last block.  */
#define IMG_BLOCKS 4096
static uint8_t *
make_raw (const char *path, uint64_t *nonzero)
{
  uint8_t *img = calloc (IMG_BLOCKS, BS);
  uint64_t nz = 0;
  fill_random (img, 256 * BS, 1);                 /* [0, 256) random, [256, 768) zeros */
  for (size_t i = 768 * BS; i < 896 * BS; i += 4) /* [768, 896) pattern */
    memcpy (img + i, "\x78\x56\x34\x12", 4);
  for (size_t b = 896; b < 1152; b += 32) /* 16 random, 16 zero */
    fill_random (img + b * BS, 16 * BS, (unsigned) b);
  fill_random (img + 1152 * BS, 256 * BS, 7); /* random with every 7th block zero */
  for (size_t b = 1152; b < 1408; b += 7)
    memset (img + b * BS, 0, BS);
  memset (img + 1408 * BS, 0xff, 128 * BS); /* [1408, 1536) 0xffffffff, then zeros */
  fill_random (img + (IMG_BLOCKS - 1) * BS, BS, 9);
  for (size_t b = 0; b < IMG_BLOCKS; b++)
    for (size_t i = 0; i < BS; i++)
      if (img[b * BS + i])
        {
          nz += BS;
          break;
        }
  write_bytes (path, img, (size_t) IMG_BLOCKS * BS);
  *nonzero = nz;
  return img;
}

static void
assert_same_file (const char *a, const char *b)
{
  size_t la, lb;
  uint8_t *da = read_all (a, &la), *db = read_all (b, &lb);
  cr_assert_eq (la, lb, "%s has %zu bytes, %s %zu", a, la, b, lb);
  cr_assert (memcmp (da, db, la) == 0, "%s and %s differ", a, b);
  free (da);
  free (db);
}

static void
assert_sparse_output (const char *out, uint64_t nonzero)
{
  struct stat st;
  cr_assert (stat (out, &st) == 0);
  uint64_t alloc = (uint64_t) st.st_blocks * 512;
  cr_assert_leq (alloc, nonzero * 102 / 100 + 65536, "%s: %llu bytes allocated for %llu bytes of data", out,
                 (unsigned long long) alloc, (unsigned long long) nonzero);
  /* the zero runs are holes */
  cr_assert_geq (tu_next_data (out, 256 * BS), 768 * BS);
  cr_assert_eq (tu_next_data (out, 1536 * BS), (off_t) (IMG_BLOCKS - 1) * BS);
  /* zero blocks among random ones too */
  cr_assert_eq (tu_next_data (out, 912 * BS), 928 * BS);
}

Test (sparse, img2simg_round_trip)
{
  char *raw = path_in ("raw.img"), *simg = path_in ("sparse.img"), *ref = path_in ("ref.img"),
       *out = path_in ("out.img");
  uint64_t nonzero;
  uint8_t *img = make_raw (raw, &nonzero);

  run_ok ((char *[]) { "img2simg", raw, simg, "4096", NULL });
  struct census c = census (simg);
  cr_assert_gt (c.raw, 0, "no RAW chunk");
  cr_assert_gt (c.fill, c.fill_zero, "no FILL chunk with a pattern");
  cr_assert_gt (c.fill_zero, 0, "no zero FILL chunk");
  run_ok ((char *[]) { "simg2img", simg, ref, NULL });

  for (int mode = 0; mode < N_MODES; mode++)
    {
      char *msg = NULL;
      unlink (out);
      cr_assert_eq (expand (simg, "sparse.img", out, (uint64_t) IMG_BLOCKS * BS, 0, (uint64_t) IMG_BLOCKS * BS, mode,
                            &msg, NULL),
                    0, "mode %d: %s", mode, msg);
      assert_same_file (out, raw);
      assert_same_file (out, ref);
      assert_sparse_output (out, nonzero);
    }
  free (img);
  free (raw);
  free (simg);
  free (ref);
  free (out);
}

/* DONT_CARE chunks, as other writers emit for zeros.  */
Test (sparse, dont_care_round_trip)
{
  char *raw = path_in ("raw.img"), *simg = path_in ("sparse.img"), *dc = path_in ("dc.img"), *ref = path_in ("ref.img"),
       *out = path_in ("out.img");
  uint64_t nonzero;
  uint8_t *img = make_raw (raw, &nonzero);
  char *msg = NULL;

  run_ok ((char *[]) { "img2simg", raw, simg, NULL });
  zero_fills_to_dont_care (simg, dc);
  struct census c = census (dc);
  cr_assert_gt (c.raw, 0);
  cr_assert_gt (c.fill, 0);
  cr_assert_gt (c.dont_care, 0);
  cr_assert_eq (c.fill_zero, 0);
  run_ok ((char *[]) { "simg2img", dc, ref, NULL });
  assert_same_file (ref, raw);
  cr_assert_eq (expand (dc, "dc.img", out, (uint64_t) IMG_BLOCKS * BS, 0, UINT64_MAX, KNOWN_SIZE, &msg, NULL), 0, "%s",
                msg);
  assert_same_file (out, ref);
  assert_sparse_output (out, nonzero);
  free (img);
  free (raw);
  free (simg);
  free (dc);
  free (ref);
  free (out);
}

/* simg2simg splits an image into files that each cover the whole image,
   DONT_CARE outside their part: each expands like simg2img's, and all of
   them expanded into one output give back the image.  */
Test (sparse, simg2simg_parts)
{
  char *raw = path_in ("raw.img"), *simg = path_in ("sparse.img"), *parts = path_in ("part.img"),
       *all = path_in ("all.img");
  uint64_t nonzero;
  uint8_t *img = make_raw (raw, &nonzero);
  const uint64_t size = (uint64_t) IMG_BLOCKS * BS;

  run_ok ((char *[]) { "img2simg", raw, simg, NULL });
  run_ok ((char *[]) { "simg2simg", simg, parts, "1000000", NULL });

  struct avm_out *o = NULL;
  avm_error_t err = NULL;
  cr_assert_eq (avm_out_open (all, size, &o, &err), 0);
  unsigned n = 0, dont_care = 0;
  for (;; n++)
    {
      char *part = NULL, *ref = NULL, *out = NULL, *msg = NULL;
      cr_assert (asprintf (&part, "%s.%u", parts, n) > 0);
      if (access (part, F_OK) < 0)
        {
          free (part);
          break;
        }
      dont_care += census (part).dont_care;
      cr_assert (asprintf (&ref, "%s/ref.%u", dir, n) > 0);
      cr_assert (asprintf (&out, "%s/out.%u", dir, n) > 0);
      run_ok ((char *[]) { "simg2img", part, ref, NULL });
      cr_assert_eq (expand (part, "part.img", out, size, 0, size, UNKNOWN_SIZE, &msg, NULL), 0, "%s", msg);
      assert_same_file (out, ref);

      int fd = open (part, O_RDONLY);
      struct avm_stream s;
      struct avm_sparse_header h;
      avm_stream_from_fd (&s, &fd, part, UINT64_MAX);
      cr_assert_eq (avm_sparse_read_header (&s, &h, &err), 0);
      cr_assert_eq (avm_sparse_expand (&s, &h, o, 0, size, &err), 0, "%s", err ? err->msg : "");
      close (fd);
      free (part);
      free (ref);
      free (out);
    }
  cr_assert_gt (n, 1, "simg2simg made %u files", n);
  cr_assert_gt (dont_care, 0, "no DONT_CARE chunk in the parts");
  cr_assert_eq (avm_out_commit (o, &err), 0);
  assert_same_file (all, raw);
  free (img);
  free (raw);
  free (simg);
  free (parts);
  free (all);
}

/* Into a bigger output at a nonzero base: aligned (holes kept) and not.  */
static void
at_base (uint64_t base)
{
  char *raw = path_in ("raw.img"), *simg = path_in ("sparse.img"), *out = path_in ("out.img");
  uint64_t nonzero;
  uint8_t *img = make_raw (raw, &nonzero);
  const uint64_t size = (uint64_t) IMG_BLOCKS * BS, out_size = base + size + 65536;
  char *msg = NULL;

  run_ok ((char *[]) { "img2simg", raw, simg, NULL });
  cr_assert_eq (expand (simg, "sparse.img", out, out_size, base, size, KNOWN_SIZE, &msg, NULL), 0, "%s", msg);
  size_t len;
  uint8_t *got = read_all (out, &len);
  cr_assert_eq (len, out_size);
  cr_assert (memcmp (got + base, img, size) == 0);
  for (uint64_t i = 0; i < base; i++)
    cr_assert_eq (got[i], 0);
  for (uint64_t i = base + size; i < out_size; i++)
    cr_assert_eq (got[i], 0);
  struct stat st;
  cr_assert (stat (out, &st) == 0);
  cr_assert_leq ((uint64_t) st.st_blocks * 512, nonzero * 102 / 100 + 65536 + (base % BS ? nonzero / 8 : 0));
  if (base % BS == 0)
    {
      cr_assert_eq (tu_next_data (out, 0), (off_t) base);
      cr_assert_geq (tu_next_data (out, base + 256 * BS), (off_t) (base + 768 * BS));
      cr_assert_eq (tu_next_data (out, base + size), (off_t) out_size);
    }
  free (got);
  free (img);
  free (raw);
  free (simg);
  free (out);
}

Test (sparse, at_an_aligned_base) { at_base (3 << 20); }
Test (sparse, at_an_unaligned_base) { at_base ((1 << 20) + 512); }

/* Another block size from the real tool.  */
Test (sparse, block_size_1024)
{
  char *raw = path_in ("raw.img"), *simg = path_in ("sparse.img"), *out = path_in ("out.img");
  uint64_t nonzero;
  uint8_t *img = make_raw (raw, &nonzero);
  char *msg = NULL;

  run_ok ((char *[]) { "img2simg", raw, simg, "1024", NULL });
  cr_assert_eq (expand (simg, "sparse.img", out, (uint64_t) IMG_BLOCKS * BS, 0, UINT64_MAX, CHOPPY, &msg, NULL), 0,
                "%s", msg);
  assert_same_file (out, raw);
  free (img);
  free (raw);
  free (simg);
  free (out);
}

/* ---- hand-made files ---- */

struct sb
{
  FILE *f;
  char *buf;
  size_t len;
  size_t cut; /* when not 0, keep only that many bytes */
};

static void
sb_u16 (struct sb *b, uint16_t v)
{
  uint8_t x[2] = { v, v >> 8 };
  fwrite (x, 1, 2, b->f);
}

static void
sb_u32 (struct sb *b, uint32_t v)
{
  uint8_t x[4] = { v, v >> 8, v >> 16, v >> 24 };
  fwrite (x, 1, 4, b->f);
}

static void
sb_begin (struct sb *b, uint16_t major, uint16_t fhs, uint16_t chs, uint32_t bs, uint32_t blocks, uint32_t chunks,
          uint32_t checksum)
{
  b->buf = NULL;
  b->len = 0;
  b->cut = 0;
  b->f = open_memstream (&b->buf, &b->len);
  sb_u32 (b, AVM_SPARSE_MAGIC);
  sb_u16 (b, major);
  sb_u16 (b, 0);
  sb_u16 (b, fhs);
  sb_u16 (b, chs);
  sb_u32 (b, bs);
  sb_u32 (b, blocks);
  sb_u32 (b, chunks);
  sb_u32 (b, checksum);
  for (int i = 28; i < fhs; i++)
    fputc (0xee, b->f);
}

/* Standard header: major 1, 28/12, 4096-byte blocks.  */
static void
sb_std (struct sb *b, uint32_t blocks, uint32_t chunks)
{
  sb_begin (b, 1, 28, 12, BS, blocks, chunks, 0);
}

/* Overwrite bytes already written.  */
static void
sb_poke (struct sb *b, size_t off, const void *data, size_t len)
{
  fflush (b->f);
  cr_assert_leq (off + len, b->len);
  memcpy (b->buf + off, data, len);
}

static void
sb_chunk (struct sb *b, uint16_t type, uint32_t csz, uint32_t tsz)
{
  sb_u16 (b, type);
  sb_u16 (b, 0);
  sb_u32 (b, csz);
  sb_u32 (b, tsz);
}

static void
sb_random (struct sb *b, size_t len, unsigned seed)
{
  uint8_t *d = malloc (len);
  fill_random (d, len, seed);
  fwrite (d, 1, len, b->f);
  free (d);
}

/* Write the file as DIR/super.img and return its path.  */
static char *
sb_save (struct sb *b)
{
  fclose (b->f);
  char *p = path_in ("super.img");
  write_bytes (p, b->buf, b->cut ? b->cut : b->len);
  free (b->buf);
  return p;
}

/* Expand a corrupt file with every kind of stream: each must fail with a
   message containing WANT (WANT_UNKNOWN when the size is not known, NULL:
   the same), exit code 2, and leave no output behind.  */
/* The case of a parameterized test, named in expect_error2's messages.  */
static const char *case_name = "";

static void
expect_error2 (struct sb *b, uint64_t limit, const char *want, const char *want_unknown)
{
  const char *cs = *case_name ? ": " : "";
  char *in = sb_save (b), *out = path_in ("out.img");
  for (int mode = 0; mode < N_MODES; mode++)
    {
      char *msg = NULL;
      int code = 0;
      const char *w = mode != KNOWN_SIZE && want_unknown ? want_unknown : want;
      int r = expand (in, "super.img", out, 1 << 20, 0, limit, mode, &msg, &code);
      cr_assert_lt (r, 0, "%s%smode %d: no error, expected \"%s\"", case_name, cs, mode, w);
      cr_assert_not_null (strstr (msg, w), "%s%smode %d: got \"%s\", expected \"%s\"", case_name, cs, mode, msg, w);
      cr_assert_eq (code, 2, "%s%smode %d: exit code %d for \"%s\"", case_name, cs, mode, code, msg);
      cr_assert (access (out, F_OK) < 0, "%s%smode %d: output left behind", case_name, cs, mode);
      free (msg);
    }
  /* nothing left behind but the input */
  char *dot = path_in (".");
  char *args[] = { "ls", "-A", dot, NULL }, *o = NULL, *e = NULL;
  cr_assert_eq (tu_run (args, NULL, &o, &e), 0);
  cr_assert_str_eq (o, "super.img\n", "%s%sleft behind: %s", case_name, cs, o);
  free (o);
  free (e);
  free (dot);
  free (in);
  free (out);
}

static void
expect_error (struct sb *b, const char *want)
{
  expect_error2 (b, UINT64_MAX, want, NULL);
}

Test (sparse, bad_magic)
{
  struct sb b;
  sb_std (&b, 1, 1);
  sb_poke (&b, 0, "\x78\x56\x34\x12", 4);
  expect_error (&b, "super.img: offset 0: not an Android sparse image (magic 0x12345678, expected 0xed26ff3a)");
}

/* File headers with a field out of range: each case is a header made by
   sb_begin and the message its expansion must fail with.  */
struct header_case
{
  /* Arrays, not pointers: the parameters are copied to the test's process.  */
  char name[32];
  uint16_t major, file_hdr_sz, chunk_hdr_sz;
  uint32_t blk_sz, total_blks, total_chunks;
  char want[128];
};

ParameterizedTestParameters (sparse, header_refused)
{
  static struct header_case cases[] = {
    { "bad_major", 2, 28, 12, BS, 1, 1, "super.img: offset 4: unsupported sparse major version 2" },
    { "small_file_header", 1, 20, 12, BS, 1, 1, "super.img: offset 8: file header size 20 is smaller than 28" },
    { "small_chunk_header", 1, 28, 8, BS, 1, 1, "super.img: offset 10: chunk header size 8 is smaller than 12" },
    { "zero_block_size", 1, 28, 12, 0, 1, 1, "super.img: offset 12: block size 0 is not a nonzero multiple of 4" },
    { "odd_block_size", 1, 28, 12, 4098, 1, 1, "super.img: offset 12: block size 4098 is not a nonzero multiple of 4" },
    { "expanded_size_overflow", 1, 28, 12, 0xfffffffc, 0xffffffff, 1,
      "super.img: offset 16: 4294967295 blocks of 4294967292 bytes: expanded size too large" },
  };
  return cr_make_param_array (struct header_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest (struct header_case *c, sparse, header_refused)
{
  struct sb b;
  sb_begin (&b, c->major, c->file_hdr_sz, c->chunk_hdr_sz, c->blk_sz, c->total_blks, c->total_chunks, 0);
  case_name = c->name;
  expect_error (&b, c->want);
}
Test (sparse, minor_version_accepted)
{
  struct sb b;
  sb_std (&b, 1, 1);
  sb_poke (&b, 6, "\x07\x00", 2);
  sb_chunk (&b, DONT_CARE, 1, 12);
  char *in = sb_save (&b), *out = path_in ("out.img"), *msg = NULL;
  cr_assert_eq (expand (in, "super.img", out, BS, 0, BS, KNOWN_SIZE, &msg, NULL), 0, "%s", msg);
  free (in);
  free (out);
}

Test (sparse, truncated_header)
{
  struct sb b;
  sb_std (&b, 1, 1);
  b.cut = 10;
  expect_error (&b, "super.img: offset 0: truncated sparse header (10 of 28 bytes)");
}

Test (sparse, truncated_extra_header)
{
  struct sb b;
  sb_begin (&b, 1, 40, 12, BS, 1, 1, 0);
  b.cut = 32;
  expect_error (&b, "super.img: offset 0: truncated sparse header (file header size 40)");
}

/* Larger headers: the extra bytes are skipped.  */
Test (sparse, extra_header_bytes)
{
  struct sb b;
  uint8_t want[3 * BS] = { 0 };
  sb_begin (&b, 1, 36, 20, BS, 3, 3, 0);
  sb_chunk (&b, DONT_CARE, 1, 20);
  fwrite ("XXXXXXXX", 1, 8, b.f);
  sb_chunk (&b, RAW, 1, 20 + BS);
  fwrite ("YYYYYYYY", 1, 8, b.f);
  sb_random (&b, BS, 3);
  fill_random (want + BS, BS, 3);
  sb_chunk (&b, FILL, 1, 24);
  fwrite ("ZZZZZZZZ", 1, 8, b.f);
  sb_u32 (&b, 0x01020304);
  for (size_t i = 2 * BS; i < 3 * BS; i += 4)
    memcpy (want + i, "\x04\x03\x02\x01", 4);
  char *in = sb_save (&b), *out = path_in ("out.img"), *msg = NULL;
  for (int mode = 0; mode < N_MODES; mode++)
    {
      unlink (out);
      cr_assert_eq (expand (in, "super.img", out, sizeof want, 0, sizeof want, mode, &msg, NULL), 0, "%s", msg);
      size_t len;
      uint8_t *got = read_all (out, &len);
      cr_assert_eq (len, sizeof want);
      cr_assert (memcmp (got, want, len) == 0);
      free (got);
    }
  free (in);
  free (out);
}

/* A caller that peeked at the header: parse, then skip the extra bytes.  */
Test (sparse, parse_peeked_header)
{
  struct sb b;
  sb_begin (&b, 1, 32, 12, BS, 2, 1, 0);
  sb_chunk (&b, FILL, 2, 16);
  sb_u32 (&b, 0xabababab);
  char *in = sb_save (&b), *out = path_in ("out.img");
  int fd = open (in, O_RDONLY);
  struct avm_stream s;
  struct avm_sparse_header h;
  uint8_t head[28];
  avm_error_t err = NULL;
  struct avm_out *o = NULL;

  avm_stream_from_fd (&s, &fd, "super.img", UINT64_MAX);
  cr_assert_eq (avm_stream_read (&s, head, 28), 28);
  cr_assert (avm_sparse_magic (head));
  cr_assert_eq (avm_sparse_parse_header (head, "super.img", &h, &err), 0);
  cr_assert_eq (h.total_blks, 2);
  cr_assert_eq (avm_sparse_size (&h), 2 * BS);
  cr_assert_eq (avm_stream_skip (&s, h.file_hdr_sz - 28), 0);
  cr_assert_eq (s.pos, 32);
  cr_assert_eq (avm_out_open (out, 2 * BS, &o, &err), 0);
  cr_assert_eq (avm_sparse_expand (&s, &h, o, 0, 2 * BS, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (avm_out_commit (o, &err), 0);
  close (fd);
  size_t len;
  uint8_t *got = read_all (out, &len);
  for (size_t i = 0; i < len; i++)
    cr_assert_eq (got[i], 0xab);
  free (got);

  head[4] = 3;
  cr_assert_lt (avm_sparse_parse_header (head, "peek.img", &h, &err), 0);
  cr_assert_str_eq (err->msg, "peek.img: offset 4: unsupported sparse major version 3");
  avm_error_free (err);
  free (in);
  free (out);
}

Test (sparse, unknown_chunk_type)
{
  struct sb b;
  sb_std (&b, 1, 1);
  sb_chunk (&b, 0xcac5, 1, 12);
  expect_error (&b, "super.img: offset 28: chunk 1: unknown chunk type 0xcac5");
}

Test (sparse, raw_size_mismatch)
{
  struct sb b;
  sb_std (&b, 11, 2);
  sb_chunk (&b, RAW, 1, 12 + BS);
  sb_random (&b, BS, 1);
  sb_chunk (&b, RAW, 10, 12 + BS);
  sb_random (&b, BS, 2);
  expect_error (&b, "super.img: offset 4136: chunk 2: RAW chunk of 10 blocks has 4096 bytes of data, expected 40960");
}

Test (sparse, fill_size_mismatch)
{
  struct sb b;
  sb_std (&b, 1, 1);
  sb_chunk (&b, FILL, 1, 20);
  sb_u32 (&b, 1);
  sb_u32 (&b, 2);
  expect_error (&b, "super.img: offset 28: chunk 1: FILL chunk has 8 bytes of data, expected 4");
}

Test (sparse, dont_care_with_data)
{
  struct sb b;
  sb_std (&b, 2, 2);
  sb_chunk (&b, DONT_CARE, 1, 12);
  sb_chunk (&b, DONT_CARE, 1, 16);
  sb_u32 (&b, 0);
  expect_error (&b, "super.img: offset 40: chunk 2: DONT_CARE chunk has 4 bytes of data, expected 0");
}

Test (sparse, crc32_with_blocks)
{
  struct sb b;
  sb_std (&b, 1, 2);
  sb_chunk (&b, DONT_CARE, 1, 12);
  sb_chunk (&b, CRC32, 1, 16);
  sb_u32 (&b, 0);
  expect_error (&b, "super.img: offset 40: chunk 2: CRC32 chunk covers 1 blocks, expected 0");
}

Test (sparse, crc32_size_mismatch)
{
  struct sb b;
  sb_std (&b, 0, 1);
  sb_chunk (&b, CRC32, 0, 12);
  expect_error (&b, "super.img: offset 28: chunk 1: CRC32 chunk has 0 bytes of data, expected 4");
}

Test (sparse, total_size_smaller_than_header)
{
  struct sb b;
  sb_std (&b, 1, 1);
  sb_chunk (&b, FILL, 1, 8);
  sb_u32 (&b, 0);
  expect_error (&b, "super.img: offset 28: chunk 1: FILL chunk total size 8 is smaller than its header (12 bytes)");
}

Test (sparse, raw_data_truncated)
{
  struct sb b;
  sb_std (&b, 2, 1);
  sb_chunk (&b, RAW, 2, 12 + 2 * BS);
  sb_random (&b, 5000, 1);
  expect_error2 (&b, UINT64_MAX,
                 "super.img: offset 28: chunk 1: RAW chunk has 8192 bytes of data, past the end of the file (5040 "
                 "bytes)",
                 "super.img: offset 28: chunk 1: RAW chunk data needs 8192 bytes, the file ends at offset 5040");
}

Test (sparse, fill_pattern_truncated)
{
  struct sb b;
  sb_std (&b, 2, 1);
  sb_chunk (&b, FILL, 2, 16);
  fwrite ("ab", 1, 2, b.f);
  expect_error2 (&b, UINT64_MAX, "super.img: offset 28: chunk 1: FILL chunk has 4 bytes of data, past the end",
                 "super.img: offset 28: chunk 1: FILL chunk pattern needs 4 bytes, the file ends at offset 42");
}

Test (sparse, missing_chunks)
{
  struct sb b;
  sb_std (&b, 2, 2);
  sb_chunk (&b, FILL, 2, 16);
  sb_u32 (&b, 5);
  expect_error (&b, "super.img: offset 44: chunk 2: truncated chunk header (0 of 12 bytes; the file header says 2 "
                    "chunks)");
}

Test (sparse, truncated_chunk_header_extra)
{
  struct sb b;
  sb_begin (&b, 1, 28, 16, BS, 1, 1, 0);
  sb_chunk (&b, DONT_CARE, 1, 16);
  fwrite ("xx", 1, 2, b.f);
  expect_error (&b, "super.img: offset 28: chunk 1: truncated chunk header (chunk header size 16");
}

Test (sparse, chunks_past_total_blocks)
{
  struct sb b;
  sb_std (&b, 4, 2);
  sb_chunk (&b, FILL, 3, 16);
  sb_u32 (&b, 5);
  sb_chunk (&b, DONT_CARE, 2, 12);
  expect_error (&b,
                "super.img: offset 44: chunk 2: DONT_CARE chunk of 2 blocks at block 3 goes past the end of the image "
                "(4 blocks)");
}

Test (sparse, chunks_short_of_total_blocks)
{
  struct sb b;
  sb_std (&b, 5, 1);
  sb_chunk (&b, FILL, 3, 16);
  sb_u32 (&b, 5);
  expect_error (&b, "super.img: offset 44: the 1 chunks cover 3 blocks, the header says 5");
}

Test (sparse, larger_than_the_partition)
{
  struct sb b;
  sb_std (&b, 5, 1);
  sb_chunk (&b, DONT_CARE, 5, 12);
  expect_error2 (&b, 5 * BS - 1, "super.img: expands to 20480 bytes, larger than its partition (20479 bytes)", NULL);
}

Test (sparse, more_chunks_than_declared)
{
  struct sb b;
  sb_std (&b, 3, 1);
  sb_chunk (&b, FILL, 3, 16);
  sb_u32 (&b, 5);
  sb_chunk (&b, DONT_CARE, 0, 12);
  expect_error (&b, "super.img: offset 44: data after the last of the 1 chunks");
}

/* Past the end of the output: the output's error, naming it.  */
Test (sparse, output_too_small)
{
  struct sb b;
  sb_std (&b, 2, 1);
  sb_chunk (&b, FILL, 2, 16);
  sb_u32 (&b, 5);
  char *in = sb_save (&b), *out = path_in ("out.img"), *msg = NULL;
  cr_assert_lt (expand (in, "super.img", out, BS, 0, UINT64_MAX, KNOWN_SIZE, &msg, NULL), 0);
  cr_assert_not_null (strstr (msg, out), "%s", msg);
  free (msg);
  free (in);
  free (out);
}

/* ---- CRC32 ---- */

/* A random mix of RAW, FILL (zero and not) and DONT_CARE chunks of block
   size BSZ with a CRC32 chunk after every few, and optionally the image
   checksum in the header; returns the expanded image (malloc'd, *SIZE).  */
static uint8_t *
crc_image (struct sb *b, uint32_t bsz, unsigned n, unsigned seed, int corrupt, bool checksum, size_t *size)
{
  uint64_t x = seed;
  uint32_t *csz = calloc (n, sizeof *csz), *kind = calloc (n, sizeof *kind);
  uint32_t blocks = 0;
  for (unsigned i = 0; i < n; i++)
    {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      kind[i] = (x >> 40) % 5; /* 0 raw, 1 fill, 2 zero fill, 3 dont care, 4 crc */
      csz[i] = kind[i] == 4 ? 0 : 1 + (x >> 20) % (kind[i] == 0 ? 3 : 40);
      blocks += csz[i];
    }
  uint8_t *img = calloc (blocks ? blocks : 1, bsz);
  uint64_t off = 0;
  uint32_t crc = 0;
  unsigned crcs = 0;
  /* the whole image first, for the checksum */
  for (unsigned i = 0; i < n; i++)
    {
      size_t len = (size_t) csz[i] * bsz;
      if (kind[i] == 0)
        fill_random (img + off, len, seed + i);
      else if (kind[i] == 1)
        for (size_t k = 0; k < len; k += 4)
          memcpy (img + off + k, "\x9a\xbc\xde\xf1", 4);
      off += len;
    }
  uint32_t total = (uint32_t) crc32 (0, img, (uInt) off);
  sb_begin (b, 1, 28, 12, bsz, blocks, n, checksum ? total : 0);
  off = 0;
  for (unsigned i = 0; i < n; i++)
    {
      size_t len = (size_t) csz[i] * bsz;
      switch (kind[i])
        {
        case 0:
          sb_chunk (b, RAW, csz[i], 12 + len);
          fwrite (img + off, 1, len, b->f);
          break;
        case 1:
        case 2:
          sb_chunk (b, FILL, csz[i], 16);
          sb_u32 (b, kind[i] == 1 ? 0xf1debc9a : 0);
          break;
        case 3:
          sb_chunk (b, DONT_CARE, csz[i], 12);
          break;
        case 4:
          sb_chunk (b, CRC32, 0, 16);
          sb_u32 (b, crc ^ (corrupt >= 0 && crcs == (unsigned) corrupt ? 0x100 : 0));
          crcs++;
          break;
        }
      crc = (uint32_t) crc32 (crc, img + off, (uInt) len);
      off += len;
    }
  free (csz);
  free (kind);
  *size = off;
  return img;
}

Test (sparse, crc32_chunks_verified)
{
  for (unsigned seed = 1; seed <= 40; seed++)
    {
      uint32_t bsz = seed % 3 == 0 ? 4 : seed % 3 == 1 ? 512 : BS;
      struct sb b;
      size_t size;
      uint8_t *img = crc_image (&b, bsz, 30, seed, -1, seed % 2, &size);
      char *in = sb_save (&b), *out = path_in ("out.img"), *msg = NULL;
      int mode = seed % N_MODES;
      unlink (out);
      cr_assert_eq (expand (in, "super.img", out, size ? size : 1, 0, size, mode, &msg, NULL), 0, "seed %u: %s", seed,
                    msg);
      size_t len;
      uint8_t *got = read_all (out, &len);
      cr_assert (size == 0 || memcmp (got, img, size) == 0, "seed %u", seed);
      free (got);
      free (img);
      free (in);
      free (out);
    }
}

/* A large hole and fill: the CRC arithmetic over 256 MiB.  */
Test (sparse, crc32_over_large_runs)
{
  const uint32_t blocks = 65536; /* 256 MiB */
  struct sb b;
  uint8_t *zero = calloc (1, 1 << 20);
  uint32_t crc = 0;
  uint8_t pat[1 << 16];
  for (size_t i = 0; i < sizeof pat; i += 4)
    memcpy (pat + i, "\x11\x22\x33\x44", 4);
  for (size_t i = 0; i < (size_t) blocks * BS / 2; i += 1 << 20)
    crc = (uint32_t) crc32 (crc, zero, 1 << 20);
  for (size_t i = 0; i < (size_t) blocks * BS / 2; i += sizeof pat)
    crc = (uint32_t) crc32 (crc, pat, sizeof pat);
  sb_begin (&b, 1, 28, 12, BS, blocks, 3, crc);
  sb_chunk (&b, DONT_CARE, blocks / 2, 12);
  sb_chunk (&b, FILL, blocks / 2, 16);
  sb_u32 (&b, 0x44332211);
  sb_chunk (&b, CRC32, 0, 16);
  sb_u32 (&b, crc);
  char *in = sb_save (&b), *out = path_in ("out.img"), *msg = NULL;
  cr_assert_eq (expand (in, "super.img", out, (uint64_t) blocks * BS, 0, UINT64_MAX, KNOWN_SIZE, &msg, NULL), 0, "%s",
                msg);
  free (zero);
  free (in);
  free (out);
}

Test (sparse, crc32_chunk_mismatch)
{
  struct sb b;
  sb_std (&b, 3, 4);
  sb_chunk (&b, DONT_CARE, 1, 12);
  sb_chunk (&b, FILL, 2, 16);
  sb_u32 (&b, 0x01010101);
  sb_chunk (&b, CRC32, 0, 16);
  sb_u32 (&b, 0xdeadbeef);
  sb_chunk (&b, CRC32, 0, 16);
  sb_u32 (&b, 0);
  uint8_t img[3 * BS];
  memset (img, 0, BS);
  memset (img + BS, 1, 2 * BS);
  char want[200];
  snprintf (want, sizeof want,
            "super.img: offset 56: chunk 3: CRC32 mismatch: the chunk says 0xdeadbeef, the 3 blocks before it have "
            "0x%08x",
            (uint32_t) crc32 (0, img, sizeof img));
  expect_error (&b, want);
}

Test (sparse, crc32_of_nothing)
{
  struct sb b;
  sb_std (&b, 1, 2);
  sb_chunk (&b, CRC32, 0, 16);
  sb_u32 (&b, 0);
  sb_chunk (&b, DONT_CARE, 1, 12);
  char *in = sb_save (&b), *out = path_in ("out.img"), *msg = NULL;
  cr_assert_eq (expand (in, "super.img", out, BS, 0, BS, KNOWN_SIZE, &msg, NULL), 0, "%s", msg);
  free (in);
  free (out);
}

Test (sparse, crc32_corrupt_in_a_mix)
{
  for (unsigned seed = 3; seed < 12; seed++)
    {
      struct sb b;
      size_t size;
      uint8_t *img = crc_image (&b, 512, 30, seed, 0, false, &size);
      char *in = sb_save (&b), *out = path_in ("out.img"), *msg = NULL;
      int r = expand (in, "super.img", out, size ? size : 1, 0, size, KNOWN_SIZE, &msg, NULL);
      bool has_crc = census (in).crc > 0;
      if (has_crc)
        {
          cr_assert_lt (r, 0, "seed %u", seed);
          cr_assert_not_null (strstr (msg, "CRC32 mismatch"), "%s", msg);
          cr_assert_not_null (strstr (msg, "super.img: offset "), "%s", msg);
        }
      free (msg);
      free (img);
      free (in);
      free (out);
    }
}

Test (sparse, image_checksum_mismatch)
{
  struct sb b;
  sb_begin (&b, 1, 28, 12, BS, 2, 2, 0x12345678);
  sb_chunk (&b, FILL, 1, 16);
  sb_u32 (&b, 7);
  sb_chunk (&b, DONT_CARE, 1, 12);
  expect_error (&b, "super.img: offset 24: image checksum 0x12345678 does not match the expanded data (0x");
}

/* The pre-scan that lets a seekable expansion skip the running CRC: it must
   see CRC32 chunks and header checksums, and answer "needed" on anything odd.  */
static void
put_le (uint8_t *p, uint64_t v, int n)
{
  for (int i = 0; i < n; i++)
    p[i] = (uint8_t) (v >> (8 * i));
}

static int
scan_file (bool with_crc_chunk, uint32_t checksum, uint32_t bad_total_sz, bool *needs)
{
  uint8_t buf[28 + 12 + 4096 + 12 + 4];
  size_t n = 0;
  memset (buf, 0, sizeof buf);
  put_le (buf, 0xed26ff3a, 4);
  put_le (buf + 4, 1, 2);
  put_le (buf + 8, 28, 2);
  put_le (buf + 10, 12, 2);
  put_le (buf + 12, 4096, 4);
  put_le (buf + 16, 1, 4);
  put_le (buf + 20, with_crc_chunk ? 2 : 1, 4);
  put_le (buf + 24, checksum, 4);
  n = 28;
  put_le (buf + n, 0xcac1, 2);
  put_le (buf + n + 4, 1, 4);
  put_le (buf + n + 8, bad_total_sz ? bad_total_sz : 12 + 4096, 4);
  n += 12;
  memset (buf + n, 0x5a, 4096);
  n += 4096;
  if (with_crc_chunk)
    {
      put_le (buf + n, 0xcac4, 2);
      put_le (buf + n + 8, 16, 4);
      n += 16;
    }
  char *tmp = tu_tmpdir (), *path = NULL;
  cr_assert (asprintf (&path, "%s/s.img", tmp) > 0);
  int fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  cr_assert_eq (write (fd, buf, n), (ssize_t) n);
  uint8_t head[28];
  cr_assert_eq (pread (fd, head, 28, 0), 28);
  avm_error_t err = NULL;
  struct avm_sparse_header h;
  int r = avm_sparse_parse_header (head, path, &h, &err);
  cr_assert_eq (r, 0, "%s", err ? err->msg : "");
  cr_assert (!h.crc_unneeded, "parsing never claims the CRC is unneeded");
  *needs = avm_sparse_needs_crc (fd, &h);
  close (fd);
  tu_rmtree (tmp);
  free (tmp);
  free (path);
  return 0;
}

Test (sparse, crc_prescan)
{
  bool needs;
  scan_file (false, 0, 0, &needs);
  cr_assert (!needs, "no CRC32 chunk, no checksum: the CRC is not needed");
  scan_file (true, 0, 0, &needs);
  cr_assert (needs, "a CRC32 chunk needs the running CRC");
  scan_file (false, 0x12345678, 0, &needs);
  cr_assert (needs, "a header checksum needs the running CRC");
  scan_file (false, 0, 4, &needs);
  cr_assert (needs, "a chunk size below the header size is odd: answer needed");
  scan_file (false, 0, 1u << 30, &needs);
  cr_assert (needs, "a chunk that runs past the end is odd: answer needed");
}
