/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Android sparse images: a streaming reader that expands straight into an
 * avm_out.  Memory: one buffer of AVM_OUT_BUFSIZE for RAW data.
 *
 * CRC32: the running CRC (zlib's crc32, as libsparse computes it) covers
 * every expanded byte, DONT_CARE counting as zeros.  RAW data goes through
 * crc32_z; FILL and DONT_CARE runs are folded in with GF(2) arithmetic
 * (crc32_combine_gen64/crc32_combine_op), O(log length) per chunk, so a
 * multi-GiB hole costs nothing.
 */
#include "disk/sparse.h"
#include "util/bytes.h"
#include "util/cleanup.h"
#include "util/strfmt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "disk/lazy_zlib.h"

#define SPARSE_HEADER_SIZE 28
#define CHUNK_HEADER_SIZE 12

enum
{
  CHUNK_RAW = 0xcac1,
  CHUNK_FILL = 0xcac2,
  CHUNK_DONT_CARE = 0xcac3,
  CHUNK_CRC32 = 0xcac4,
};

bool
avm_sparse_magic (const void *buf)
{
  return get_le32 (buf) == AVM_SPARSE_MAGIC;
}

uint64_t
avm_sparse_size (const struct avm_sparse_header *h)
{
  return (uint64_t) h->total_blks * h->blk_sz;
}

/* Header at stream offset AT.  */
static int
parse_header (const uint8_t *b, const char *name, uint64_t at, struct avm_sparse_header *h, avm_error_t *err)
{
  uint32_t magic = get_le32 (b);

  memset (h, 0, sizeof *h);
  if (magic != AVM_SPARSE_MAGIC)
    return avm_error_input (err, "%s: offset %" PRIu64 ": not an Android sparse image (magic 0x%08x, expected 0x%08x)",
                            name, at, magic, AVM_SPARSE_MAGIC);
  h->major = get_le16 (b + 4);
  h->minor = get_le16 (b + 6);
  h->file_hdr_sz = get_le16 (b + 8);
  h->chunk_hdr_sz = get_le16 (b + 10);
  h->blk_sz = get_le32 (b + 12);
  h->total_blks = get_le32 (b + 16);
  h->total_chunks = get_le32 (b + 20);
  h->image_checksum = get_le32 (b + 24);
  if (h->major != 1)
    return avm_error_input (err, "%s: offset %" PRIu64 ": unsupported sparse major version %u", name, at + 4, h->major);
  if (h->file_hdr_sz < SPARSE_HEADER_SIZE)
    return avm_error_input (err, "%s: offset %" PRIu64 ": file header size %u is smaller than %d", name, at + 8,
                            h->file_hdr_sz, SPARSE_HEADER_SIZE);
  if (h->chunk_hdr_sz < CHUNK_HEADER_SIZE)
    return avm_error_input (err, "%s: offset %" PRIu64 ": chunk header size %u is smaller than %d", name, at + 10,
                            h->chunk_hdr_sz, CHUNK_HEADER_SIZE);
  if (h->blk_sz == 0 || h->blk_sz % 4)
    return avm_error_input (err, "%s: offset %" PRIu64 ": block size %u is not a nonzero multiple of 4", name, at + 12,
                            h->blk_sz);
  /* 32 x 32 bits cannot overflow 64 bits, but must fit in an off_t.  */
  if (avm_sparse_size (h) > INT64_MAX)
    return avm_error_input (err, "%s: offset %" PRIu64 ": %u blocks of %u bytes: expanded size too large", name,
                            at + 16, h->total_blks, h->blk_sz);
  return 0;
}

int
avm_sparse_parse_header (const void *buf, const char *name, struct avm_sparse_header *h, avm_error_t *err)
{
  return parse_header (buf, name, 0, h, err);
}

static int
read_error (avm_error_t *err, struct avm_stream *s, ssize_t r)
{
  return avm_error_sys (err, (int) -r, "%s: cannot read at offset %" PRIu64, s->name, s->pos);
}

int
avm_sparse_read_header (struct avm_stream *s, struct avm_sparse_header *h, avm_error_t *err)
{
  uint8_t b[SPARSE_HEADER_SIZE];
  uint64_t at = s->pos;
  ssize_t n = avm_stream_read (s, b, sizeof b);
  int r;

  if (n < 0)
    return read_error (err, s, n);
  if (n >= 4 && !avm_sparse_magic (b))
    return parse_header (b, s->name, at, h, err);
  if (n < (ssize_t) sizeof b)
    return avm_error_input (err, "%s: offset %" PRIu64 ": truncated sparse header (%zd of %d bytes)", s->name, at, n,
                            SPARSE_HEADER_SIZE);
  if ((r = parse_header (b, s->name, at, h, err)) < 0)
    return r;
  r = avm_stream_skip (s, h->file_hdr_sz - SPARSE_HEADER_SIZE);
  if (r == -EIO)
    return avm_error_input (err, "%s: offset %" PRIu64 ": truncated sparse header (file header size %u)", s->name, at,
                            h->file_hdr_sz);
  if (r < 0)
    return read_error (err, s, r);
  return 0;
}

/* CRC arithmetic.  mulx (A, B) is A*B modulo the CRC polynomial;
   crc32_combine_op (A, 0, OP) computes exactly that.  */
static uint32_t
mulx (uint32_t a, uint32_t b)
{
  return (uint32_t) sym_crc32_combine_op (a, 0, b);
}

/* CRC of LEN bytes (a multiple of 4) of a repeated 4-byte UNIT, appended
   to CRC.  */
static uint32_t
crc_append_repeat (uint32_t crc, const uint8_t unit[4], uint64_t len)
{
  uint64_t n = len / 4;
  uint32_t g = (uint32_t) sym_crc32 (0, unit, 4);       /* CRC of the current block */
  uint32_t xp = (uint32_t) sym_crc32_combine_gen64 (4); /* x^(8 * its length) */
  uint32_t r = 0;                                       /* CRC of the blocks taken */

  if (len == 0)
    return crc;
  while (n)
    {
      if (n & 1)
        r = mulx (r, xp) ^ g;
      n >>= 1;
      if (n)
        {
          g = mulx (g, xp) ^ g;
          xp = mulx (xp, xp);
        }
    }
  return (uint32_t) sym_crc32_combine_op (crc, r, sym_crc32_combine_gen64 ((z_off64_t) len));
}

static const char *
chunk_name (uint16_t type)
{
  switch (type)
    {
    case CHUNK_RAW:
      return "RAW";
    case CHUNK_FILL:
      return "FILL";
    case CHUNK_DONT_CARE:
      return "DONT_CARE";
    case CHUNK_CRC32:
      return "CRC32";
    default:
      return NULL;
    }
}

struct expander
{
  struct avm_stream *s;
  const struct avm_sparse_header *h;
  avm_error_t *err;
  uint64_t at;    /* offset of the current chunk header */
  uint32_t index; /* 1-based */
};

static int __attribute__ ((format (printf, 2, 3))) chunk_error (struct expander *x, const char *fmt, ...)
{
  _cleanup_free_ char *msg = NULL;
  va_list ap;
  int r;

  va_start (ap, fmt);
  r = vasprintf (&msg, fmt, ap);
  va_end (ap);
  if (r < 0)
    return avm_error_sys (x->err, ENOMEM, "%s", x->s->name);
  return avm_error_input (x->err, "%s: offset %" PRIu64 ": chunk %" PRIu32 ": %s", x->s->name, x->at, x->index, msg);
}

/* The data of the current chunk ended early (N bytes short of what the
   header said).  */
static int
truncated (struct expander *x, const char *what, uint64_t need)
{
  return chunk_error (x, "%s needs %" PRIu64 " bytes, the file ends at offset %" PRIu64 " (of %" PRIu32 " chunks)",
                      what, need, x->s->pos, x->h->total_chunks);
}

/* Read exactly LEN bytes of chunk data, or fail naming WHAT.  */
static int
read_data (struct expander *x, void *buf, size_t len, const char *what, uint64_t need)
{
  ssize_t n = avm_stream_read (x->s, buf, len);
  if (n < 0)
    return read_error (x->err, x->s, n);
  if ((size_t) n < len)
    return truncated (x, what, need);
  return 0;
}

/* Read the header of chunk X->index at the stream's position (X->at) and
   check it against the file header and the blocks before it (BLK): its
   type (*TYPE, *NAME), blocks (*CSZ) and data bytes (*DATA) are
   consistent, it ends within the image and, when the stream's size is
   known, within the file.  */
static int
chunk_header (struct expander *x, uint64_t blk, uint16_t *type, const char **name, uint32_t *csz, uint64_t *data)
{
  struct avm_stream *s = x->s;
  const struct avm_sparse_header *h = x->h;
  uint8_t ch[CHUNK_HEADER_SIZE];
  ssize_t n;
  int r;

  x->at = s->pos;
  n = avm_stream_read (s, ch, sizeof ch);
  if (n < 0)
    return read_error (x->err, s, n);
  if (n < (ssize_t) sizeof ch)
    return chunk_error (x, "truncated chunk header (%zd of %u bytes; the file header says %" PRIu32 " chunks)", n,
                        h->chunk_hdr_sz, h->total_chunks);
  r = avm_stream_skip (s, h->chunk_hdr_sz - CHUNK_HEADER_SIZE);
  if (r == -EIO)
    return chunk_error (x, "truncated chunk header (chunk header size %u; the file header says %" PRIu32 " chunks)",
                        h->chunk_hdr_sz, h->total_chunks);
  if (r < 0)
    return read_error (x->err, s, r);

  *type = get_le16 (ch);
  *csz = get_le32 (ch + 4);
  uint32_t tsz = get_le32 (ch + 8);
  *name = chunk_name (*type);
  if (!*name)
    return chunk_error (x, "unknown chunk type 0x%04x", *type);
  if (tsz < h->chunk_hdr_sz)
    return chunk_error (x, "%s chunk total size %" PRIu32 " is smaller than its header (%u bytes)", *name, tsz,
                        h->chunk_hdr_sz);
  *data = tsz - h->chunk_hdr_sz;
  uint64_t len = (uint64_t) *csz * h->blk_sz;
  switch (*type)
    {
    case CHUNK_RAW:
      if (*data != len)
        return chunk_error (x, "RAW chunk of %" PRIu32 " blocks has %" PRIu64 " bytes of data, expected %" PRIu64, *csz,
                            *data, len);
      break;
    case CHUNK_FILL:
    case CHUNK_CRC32:
      if (*data != 4)
        return chunk_error (x, "%s chunk has %" PRIu64 " bytes of data, expected 4", *name, *data);
      if (*type == CHUNK_CRC32 && *csz != 0)
        return chunk_error (x, "CRC32 chunk covers %" PRIu32 " blocks, expected 0", *csz);
      break;
    case CHUNK_DONT_CARE:
      if (*data != 0)
        return chunk_error (x, "DONT_CARE chunk has %" PRIu64 " bytes of data, expected 0", *data);
      break;
    }
  if (*csz > h->total_blks - blk)
    return chunk_error (x,
                        "%s chunk of %" PRIu32 " blocks at block %" PRIu64 " goes past the end of the image (%" PRIu32
                        " blocks)",
                        *name, *csz, blk, h->total_blks);
  if (s->size != UINT64_MAX && (s->pos > s->size || *data > s->size - s->pos))
    return chunk_error (x, "%s chunk has %" PRIu64 " bytes of data, past the end of the file (%" PRIu64 " bytes)",
                        *name, *data, s->size);
  return 0;
}

/* After the last chunk (BLK blocks covered): the blocks are those the
   header says.  */
static int
chunks_cover (struct expander *x, uint64_t blk)
{
  const struct avm_sparse_header *h = x->h;
  char size[32];
  x->at = x->s->pos;
  if (blk == h->total_blks)
    return 0;
  avm_format_bytes (avm_sparse_size (h), size, sizeof size);
  return avm_error_input (x->err,
                          "%s: offset %" PRIu64 ": the %" PRIu32 " chunks cover %" PRIu64
                          " blocks, the header says %" PRIu32 " (of %" PRIu32
                          " bytes: %s, at offset 16): the sparse image is damaged",
                          x->s->name, x->at, h->total_chunks, blk, h->total_blks, h->blk_sz, size);
}

int
avm_sparse_check (struct avm_stream *s, const struct avm_sparse_header *h, avm_error_t *err)
{
  struct expander x = { .s = s, .h = h, .err = err };
  uint64_t blk = 0;
  int r;

  for (x.index = 1; x.index <= h->total_chunks; x.index++)
    {
      uint16_t type;
      const char *name;
      uint32_t csz;
      uint64_t data;
      if ((r = chunk_header (&x, blk, &type, &name, &csz, &data)) < 0)
        return r;
      r = avm_stream_skip (s, data);
      if (r == -EIO)
        return truncated (&x,
                          type == CHUNK_RAW    ? "RAW chunk data"
                          : type == CHUNK_FILL ? "FILL chunk pattern"
                                               : "CRC32 chunk value",
                          data);
      if (r < 0)
        return read_error (err, s, r);
      blk += csz;
    }
  return chunks_cover (&x, blk);
}

int
avm_sparse_expand (struct avm_stream *s, const struct avm_sparse_header *h, struct avm_out *o, uint64_t base,
                   uint64_t limit, avm_error_t *err)
{
  struct expander x = { .s = s, .h = h, .err = err };
  const uint64_t bs = h->blk_sz, total = avm_sparse_size (h);
  static const uint8_t zero4[4];
  _cleanup_free_ uint8_t *buf = NULL;
  uint64_t blk = 0;
  uint32_t crc = 0;
  int r;

  if (total > limit)
    return avm_error_input (err, "%s: expands to %" PRIu64 " bytes, larger than its partition (%" PRIu64 " bytes)",
                            s->name, total, limit);
  if (base > avm_out_size (o) || total > avm_out_size (o) - base)
    return avm_error_fail (err, EINVAL,
                           "%s: %s expands to %" PRIu64 " bytes, which do not fit at offset %" PRIu64 " (%" PRIu64
                           " bytes)",
                           avm_out_path (o), s->name, total, base, avm_out_size (o));
  /* (zlib only to check the CRC: not for an image without one)  */
  if (!h->crc_unneeded && (r = avm_dlopen_zlib (err)) < 0)
    return r;

  for (x.index = 1; x.index <= h->total_chunks; x.index++)
    {
      uint16_t type;
      const char *name;
      uint32_t csz;
      uint64_t data;
      if ((r = chunk_header (&x, blk, &type, &name, &csz, &data)) < 0)
        return r;
      uint64_t len = csz * bs;
      uint64_t off = base + blk * bs;
      uint8_t v[4];
      switch (type)
        {
        case CHUNK_RAW:
          if (!buf && len && !(buf = malloc (AVM_OUT_BUFSIZE)))
            return avm_error_sys (err, ENOMEM, "%s", s->name);
          for (uint64_t done = 0; done < len;)
            {
              size_t piece = len - done < AVM_OUT_BUFSIZE ? (size_t) (len - done) : AVM_OUT_BUFSIZE;
              if ((r = read_data (&x, buf, piece, "RAW chunk data", len)) < 0)
                return r;
              if (!h->crc_unneeded)
                crc = (uint32_t) sym_crc32_z (crc, buf, piece);
              if ((r = avm_out_write (o, off + done, buf, piece, err)) < 0)
                return r;
              done += piece;
            }
          break;
        case CHUNK_FILL:
          if ((r = read_data (&x, v, 4, "FILL chunk pattern", 4)) < 0)
            return r;
          if (!h->crc_unneeded)
            crc = crc_append_repeat (crc, v, len);
          if ((r = avm_out_fill (o, off, get_le32 (v), len, err)) < 0)
            return r;
          break;
        case CHUNK_DONT_CARE:
          if (!h->crc_unneeded)
            crc = crc_append_repeat (crc, zero4, len);
          if ((r = avm_out_fill (o, off, 0, len, err)) < 0)
            return r;
          break;
        case CHUNK_CRC32:
          if ((r = read_data (&x, v, 4, "CRC32 chunk value", 4)) < 0)
            return r;
          if (h->crc_unneeded)
            return chunk_error (&x, "CRC32 chunk in an image scanned as having none (file changed while read?)");
          if (get_le32 (v) != crc)
            return chunk_error (&x,
                                "CRC32 mismatch: the chunk says 0x%08" PRIx32 ", the %" PRIu64
                                " blocks before it have 0x%08" PRIx32,
                                get_le32 (v), blk, crc);
          break;
        }
      blk += csz;
    }

  if ((r = chunks_cover (&x, blk)) < 0)
    return r;
  bool more;
  if (s->size != UINT64_MAX)
    more = s->pos < s->size;
  else
    {
      uint8_t c;
      ssize_t n = avm_stream_read (s, &c, 1);
      if (n < 0)
        return read_error (err, s, n);
      more = n > 0;
    }
  if (more)
    return avm_error_input (err, "%s: offset %" PRIu64 ": data after the last of the %" PRIu32 " chunks", s->name, x.at,
                            h->total_chunks);
  if (h->image_checksum && !h->crc_unneeded && h->image_checksum != crc)
    return avm_error_input (err,
                            "%s: offset 24: image checksum 0x%08" PRIx32 " does not match the expanded data "
                            "(0x%08" PRIx32 ")",
                            s->name, h->image_checksum, crc);
  return 0;
}

bool
avm_sparse_needs_crc (int fd, const struct avm_sparse_header *h)
{
  uint64_t at = h->file_hdr_sz;
  if (h->image_checksum)
    return true;
  for (uint32_t i = 0; i < h->total_chunks; i++)
    {
      uint8_t ch[12];
      if (pread (fd, ch, sizeof ch, (off_t) at) != (ssize_t) sizeof ch)
        return true;
      uint16_t type = get_le16 (ch);
      uint32_t total_sz = get_le32 (ch + 8);
      if (type == CHUNK_CRC32 || total_sz < h->chunk_hdr_sz)
        return true;
      at += total_sz;
    }
  struct stat st;
  return fstat (fd, &st) < 0 || (uint64_t) st.st_size != at;
}
