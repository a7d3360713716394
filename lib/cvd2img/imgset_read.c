/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bytes of an image of a Cuttlefish image set: copied into an output
 * (a sparse image expanded, a raw file copied with copy_file_range where it
 * can), or a sparse image checked against the size its header claims.
 */
#include "cvd2img/imgset.h"
#include "cvd2img/imgset_internal.h"
#include "disk/sparse.h"
#include "disk/stream.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include "disk/lazy_archive.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Copy from a stream positioned at the start of the image.  FD is the file
   behind it when it is one (lets a sparse image be scanned first), or -1.  */
static int
copy_stream (const struct avm_img *img, struct avm_stream *st, int fd, struct avm_out *o, uint64_t off, uint64_t limit,
             avm_error_t *err)
{
  if (img->sparse)
    {
      struct avm_sparse_header h;
      int r = avm_sparse_read_header (st, &h, err);
      if (r < 0)
        return r;
      h.crc_unneeded = fd >= 0 && !avm_sparse_needs_crc (fd, &h);
      return avm_sparse_expand (st, &h, o, off, limit, err);
    }
  if (img->size > limit)
    return avm_error_input (err, "%s: %llu bytes, larger than its partition (%llu bytes)", st->name,
                            (unsigned long long) img->size, (unsigned long long) limit);
  _cleanup_free_ uint8_t *buf = malloc (AVM_OUT_BUFSIZE);
  if (!buf)
    return avm_error_sys (err, ENOMEM, "%s", st->name);
  uint64_t done = 0;
  while (done < img->size)
    {
      size_t want = img->size - done < AVM_OUT_BUFSIZE ? img->size - done : AVM_OUT_BUFSIZE;
      ssize_t got = avm_stream_read (st, buf, want);
      if (got < 0)
        return avm_error_sys (err, (int) -got, "cannot read %s", st->name);
      if ((size_t) got < want)
        return avm_error_input (err, "%s: unexpected end of data at offset %llu", st->name,
                                (unsigned long long) (done + got));
      int r = avm_out_write (o, off + done, buf, got, err);
      if (r < 0)
        return r;
      done += got;
    }
  return 0;
}

/* What to do with an image's bytes: FN on a stream positioned at its
   start, FD the file behind it (or -1 for an archive entry), DATA passed
   on.  */
typedef int (*image_fn) (const struct avm_img *img, struct avm_stream *st, int fd, void *data, avm_error_t *err);

/* Run FN over image NAME of S: the file of a directory input, or the
   entry of the image zip (found by reading the archive to it).  */
static int
with_image (struct avm_imgset *s, const char *name, image_fn fn, void *data, avm_error_t *err)
{
  const struct avm_img *img = avm_imgset_get (s, name);
  int r;
  if (!img || !img->present)
    return avm_error_input (err, "%s: %s is missing", avm_imgset_label (s), name);

  if (s->dir)
    {
      _cleanup_free_ char *path = avm_path_join (s->dir, name);
      _cleanup_close_ int fd = -1;
      struct stat fst;
      if ((r = avm_imgset_open_image_file (path, &fd, &fst, err)) < 0)
        return r;
      struct avm_stream st;
      avm_stream_from_fd (&st, &fd, path, img->stored_size);
      return fn (img, &st, fd, data, err);
    }

  struct archive *a = NULL;
  struct archive_entry *e;
  _cleanup_close_ int afd = -1;
  if ((r = avm_imgset_open_archive (s->zip, true, &a, &afd, err)) < 0)
    return r;
  for (;;)
    {
      if ((r = avm_imgset_next_entry (a, s->zip, &e, NULL, err)) <= 0)
        {
          if (r == 0)
            r = avm_error_input (err, "%s: %s vanished from the archive", s->zip, name);
          break;
        }
      if (!streq (avm_imgset_clean_name (sym_archive_entry_pathname (e)), name))
        continue;
      _cleanup_free_ char *label = NULL;
      if (asprintf (&label, "%s:%s", s->zip, name) < 0)
        {
          r = avm_error_sys (err, ENOMEM, "%s", s->zip);
          break;
        }
      struct avm_stream st
          = { .read = avm_imgset_archive_stream_read, .ctx = a, .name = label, .size = img->stored_size };
      r = fn (img, &st, -1, data, err);
      break;
    }
  sym_archive_read_free (a);
  return r;
}

struct copy_args
{
  struct avm_out *o;
  uint64_t off, limit;
};

static int
copy_image (const struct avm_img *img, struct avm_stream *st, int fd, void *data, avm_error_t *err)
{
  struct copy_args *c = data;
  if (fd >= 0 && !img->sparse)
    {
      /* A raw file: copy_file_range (shared extents where the file
         system can).  */
      if (img->size > c->limit)
        return avm_error_input (err, "%s: %llu bytes, larger than its partition (%llu bytes)", st->name,
                                (unsigned long long) img->size, (unsigned long long) c->limit);
      return avm_out_copy_fd (c->o, c->off, fd, 0, img->size, st->name, err);
    }
  return copy_stream (img, st, fd, c->o, c->off, c->limit, err);
}

int
avm_imgset_copy (struct avm_imgset *s, const char *name, struct avm_out *o, uint64_t off, uint64_t limit,
                 avm_error_t *err)
{
  struct copy_args c = { o, off, limit };
  return with_image (s, name, copy_image, &c, err);
}

static int
check_image (const struct avm_img *img, struct avm_stream *st, int fd, void *data, avm_error_t *err)
{
  struct avm_sparse_header h;
  (void) fd;
  (void) data;
  if (!img->sparse)
    return 0;
  int r = avm_sparse_read_header (st, &h, err);
  return r < 0 ? r : avm_sparse_check (st, &h, err);
}

int
avm_imgset_check_size (struct avm_imgset *s, const char *name, avm_error_t *err)
{
  const struct avm_img *img = avm_imgset_get (s, name);
  if (img && img->present && !img->sparse)
    return 0;
  return with_image (s, name, check_image, NULL, err);
}
