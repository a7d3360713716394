/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Android sparse reader: the input is a sparse image, read from a
 * memory stream (header, then the chunks expanded into a temporary output
 * of 8 MiB that is discarded).  avm_sparse_needs_crc looks at the same
 * bytes through a memfd first, as avm_imgset_copy does for files.
 */
#include "fuzz.h"
#include "disk/output.h"
#include "disk/sparse.h"
#include "disk/stream.h"
#include "util/cleanup.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LIMIT (8u << 20)

struct mem
{
  const uint8_t *data;
  size_t size, pos;
};

static ssize_t
mem_read (void *ctx, void *buf, size_t len)
{
  struct mem *m = ctx;
  size_t n = m->size - m->pos < len ? m->size - m->pos : len;
  memcpy (buf, m->data + m->pos, n);
  m->pos += n;
  return n;
}

AVM_FUZZ_TARGET (sparse)
{
  static char *outpath;
  if (!outpath && asprintf (&outpath, "%s/out.img", avm_fuzz_tmpdir ()) < 0)
    abort ();

  _cleanup_error_ avm_error_t err = NULL;
  struct mem m = { data, size, 0 };
  struct avm_stream s = { .read = mem_read, .ctx = &m, .name = "fuzz.img", .size = size };
  struct avm_sparse_header h;
  int r = avm_sparse_read_header (&s, &h, &err);
  if (r < 0)
    {
      avm_fuzz_check_err (r, &err);
      return 0;
    }
  AVM_FUZZ_CHECK (s.pos == h.file_hdr_sz);

  _cleanup_close_ int fd = memfd_create ("fuzz-sparse", MFD_CLOEXEC);
  AVM_FUZZ_CHECK (fd >= 0);
  AVM_FUZZ_CHECK (write (fd, data, size) == (ssize_t) size);
  h.crc_unneeded = !avm_sparse_needs_crc (fd, &h);

  _cleanup_out_ struct avm_out *o = NULL;
  r = avm_out_open (outpath, LIMIT, &o, &err);
  if (r < 0)
    {
      fprintf (stderr, "fuzz_sparse: %s\n", err->msg);
      abort ();
    }
  r = avm_sparse_expand (&s, &h, o, 0, LIMIT, &err);
  if (r == 0)
    AVM_FUZZ_CHECK (avm_sparse_size (&h) <= LIMIT);
  avm_fuzz_check_err (r, &err);
  return 0;
}
