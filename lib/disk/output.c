/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sparse, atomic output files: opening, writing (holes kept), committing
 * one file, aborting.  Memory use is bounded: one fill buffer and one copy
 * buffer of at most AVM_OUT_BUFSIZE each, allocated on first use.  Committing
 * a set of outputs is in output_set.c; the registry of live temporaries and
 * the signal handlers that remove them in output_cleanup.c.
 */
#include "disk/output.h"
#include "disk/output_internal.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strbuf.h"
#include "util/strv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Holes are made at this granularity: 4 KiB-aligned blocks of zeros are
   not written.  */
#define HOLE_BLOCK 4096
/* copy_file_range is called for at most this much at a time, so that the
   progress callback keeps moving during long copies.  */
#define COPY_CHUNK (16 * 1024 * 1024)

/* Start writeback every WRITEBACK_CHUNK bytes so that the fsync before the
   rename finds little left to flush: the disk works while we read input.  */
#define WRITEBACK_CHUNK (32u << 20)

static void
kick_writeback (struct avm_out *o, uint64_t bytes)
{
  o->unflushed += bytes;
  if (o->unflushed < WRITEBACK_CHUNK)
    return;
  o->unflushed = 0;
  /* Asynchronous: only initiates writeback of dirty pages; errors surface
     at fsync.  */
  (void) sync_file_range (o->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

void
avm_out_dispose (struct avm_out *o)
{
  if (o->fd >= 0)
    close (o->fd);
  if (o->tfd >= 0)
    close (o->tfd);
  if (o->newfd >= 0)
    close (o->newfd);
  avm_strv_free (o->names);
  avm_strv_free (o->retire);
  free (o->path);
  free (o->tmp);
  free (o->dir);
  free (o->fill);
  free (o->copy);
  free (o);
}

DEFINE_TRIVIAL_CLEANUP_FUNC (struct avm_out *, avm_out_dispose)

int
avm_out_open (const char *path, uint64_t size, struct avm_out **out, avm_error_t *err)
{
  __attribute__ ((cleanup (avm_out_disposep))) struct avm_out *o = NULL;
  const char *slash = strrchr (path, '/');
  const char *base = slash ? slash + 1 : path;
  sigset_t block, old;
  int e;

  *out = NULL;
  if (!*base)
    return avm_error_input (err, "%s: not a file name", path);
  if (size > INT64_MAX)
    return avm_error_input (err, "%s: size %" PRIu64 " is too large", path, size);

  o = calloc (1, sizeof *o);
  if (!o)
    return avm_error_sys (err, ENOMEM, "%s", path);
  o->fd = o->tfd = o->newfd = -1;
  o->slot = -1;
  o->size = size;
  o->path = strdup (path);
  if (!slash)
    o->dir = strdup (".");
  else if (slash == path)
    o->dir = strdup ("/");
  else
    o->dir = strndup (path, slash - path);
  if (!o->path || !o->dir || asprintf (&o->tmp, "%s/.%s.tmp.XXXXXX", o->dir, base) < 0)
    {
      o->tmp = NULL;
      return avm_error_sys (err, ENOMEM, "%s", path);
    }

  avm_out_install_handlers ();

  /* No signal between creating the temporary and registering it.  */
  sigemptyset (&block);
  for (size_t i = 0; i < ARRAY_SIZE (avm_out_cleanup_signals); i++)
    sigaddset (&block, avm_out_cleanup_signals[i]);
  pthread_sigmask (SIG_BLOCK, &block, &old);
  o->fd = mkostemp (o->tmp, O_CLOEXEC);
  e = errno;
  if (o->fd >= 0)
    {
      o->slot = avm_out_live_add (o->tmp, false);
      if (o->slot < 0)
        {
          unlink (o->tmp);
          e = EMFILE;
        }
    }
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (o->fd < 0)
    return avm_error_sys (err, e, "%s: cannot create a temporary file in %s", path, o->dir);
  if (o->slot < 0)
    return avm_error_fail (err, e, "%s: more than %d outputs open at once", path, AVM_OUT_MAX_OPEN);

  if (fchmod (o->fd, 0644) < 0)
    e = errno;
  else if (ftruncate (o->fd, (off_t) size) < 0)
    e = errno;
  else
    {
      *out = steal_pointer (&o);
      return 0;
    }
  avm_out_abort (steal_pointer (&o));
  return avm_error_sys (err, e, "%s: cannot create a file of %" PRIu64 " bytes", path, size);
}

int
avm_out_open_tree (const char *dir, const char *name, struct avm_out **out, avm_error_t *err)
{
  __attribute__ ((cleanup (avm_out_disposep))) struct avm_out *o = NULL;
  sigset_t block, old;
  int e = 0;

  *out = NULL;
  if (!*name || strchr (name, '/'))
    return avm_error_input (err, "%s: not a name for a tree", name);
  o = calloc (1, sizeof *o);
  if (!o)
    return avm_error_sys (err, ENOMEM, "%s", dir);
  o->fd = o->tfd = o->newfd = -1;
  o->slot = -1;
  o->tree = true;
  o->path = strdup (dir);
  o->dir = strdup (dir);
  if (!o->path || !o->dir || asprintf (&o->tmp, "%s/.%s.tmp.XXXXXX", dir, name) < 0)
    {
      o->tmp = NULL;
      return avm_error_sys (err, ENOMEM, "%s", dir);
    }

  avm_out_install_handlers ();

  /* No signal between creating the temporary and registering it.  */
  sigemptyset (&block);
  for (size_t i = 0; i < ARRAY_SIZE (avm_out_cleanup_signals); i++)
    sigaddset (&block, avm_out_cleanup_signals[i]);
  pthread_sigmask (SIG_BLOCK, &block, &old);
  if (!mkdtemp (o->tmp))
    e = errno;
  else if ((o->slot = avm_out_live_add (o->tmp, true)) < 0)
    {
      rmdir (o->tmp);
      e = EMFILE;
    }
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (e == EMFILE)
    return avm_error_fail (err, e, "%s: more than %d outputs open at once", dir, AVM_OUT_MAX_OPEN);
  if (e)
    return avm_error_sys (err, e, "%s: cannot create a temporary directory", dir);

  o->tfd = open (o->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (o->tfd < 0 || mkdirat (o->tfd, "new", 0700) < 0
      || (o->newfd = openat (o->tfd, "new", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    {
      e = errno;
      avm_out_abort (steal_pointer (&o));
      return avm_error_sys (err, e, "%s: cannot create a temporary directory", dir);
    }
  *out = steal_pointer (&o);
  return 0;
}

int
avm_out_tree_fd (const struct avm_out *o)
{
  return o->tree ? o->newfd : -1;
}

int
avm_out_tree_retire (struct avm_out *o, char *const *names, avm_error_t *err)
{
  if (!o->tree)
    return avm_error_fail (err, EINVAL, "%s: not a tree", o->path);
  for (size_t i = 0; names && names[i]; i++)
    if (!*names[i] || strchr (names[i], '/') || streq (names[i], ".") || streq (names[i], ".."))
      return avm_error_fail (err, EINVAL, "%s: cannot remove \"%s\": not an entry of the directory", o->path, names[i]);
  char **copy = avm_strv_copy (names ? names : (char *const[]) { NULL });
  if (!copy)
    return avm_error_sys (err, ENOMEM, "%s", o->path);
  avm_strv_free (o->retire);
  o->retire = copy;
  return 0;
}

int
avm_out_remove_stale (const char *dir, char *const *names, avm_error_t *err)
{
  _cleanup_closedir_ DIR *d = opendir (dir);
  struct dirent *e;
  int r = 0;

  if (!d)
    return errno == ENOENT ? 0 : avm_error_sys (err, errno, "cannot read %s", dir);
  while ((e = readdir (d)))
    for (size_t i = 0; names[i]; i++)
      {
        size_t n = strlen (names[i]);
        const char *p = e->d_name;
        /* ".NAME.tmp.XXXXXX", as avm_out_open and avm_out_open_tree make them */
        if (p[0] != '.' || strncmp (p + 1, names[i], n) != 0 || strncmp (p + 1 + n, ".tmp.", 5) != 0
            || strlen (p + 1 + n + 5) != 6)
          continue;
        int e2 = avm_out_rm_tree_at (dirfd (d), p, 0);
        if (e2 < 0 && !r)
          r = avm_error_sys (err, -e2, "cannot remove %s/%s, left by an earlier run", dir, p);
        break;
      }
  return r;
}

uint64_t
avm_out_size (const struct avm_out *o)
{
  return o->size;
}

const char *
avm_out_path (const struct avm_out *o)
{
  return o->path;
}

void
avm_out_set_progress (struct avm_out *o, avm_progress_fn fn, void *data)
{
  o->progress = fn;
  o->progress_data = data;
}

static void
progress (struct avm_out *o, uint64_t bytes)
{
  if (o->progress && bytes)
    o->progress (o->progress_data, bytes);
}

static int
check_range (struct avm_out *o, uint64_t off, uint64_t len, avm_error_t *err)
{
  if (off > o->size || len > o->size - off)
    return avm_error_fail (err, EINVAL,
                           "%s: cannot write %" PRIu64 " bytes at offset %" PRIu64 ": past the end (%" PRIu64 " bytes)",
                           o->path, len, off, o->size);
  return 0;
}

static int
pwrite_all (struct avm_out *o, const uint8_t *p, size_t len, uint64_t off, avm_error_t *err)
{
  while (len > 0)
    {
      ssize_t w = pwrite (o->fd, p, len, (off_t) off);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return avm_error_sys (err, w < 0 ? errno : ENOSPC, "%s: cannot write %zu bytes at offset %" PRIu64, o->path,
                              len, off);
      kick_writeback (o, (uint64_t) w);
      p += w;
      off += (uint64_t) w;
      len -= (size_t) w;
    }
  return 0;
}

/* Is the HOLE_BLOCK at P all zeros?  Word-wise, any alignment.  */
static bool
block_is_zero (const uint8_t *p)
{
  for (size_t i = 0; i < HOLE_BLOCK; i += 64)
    {
      uint64_t w[8];
      memcpy (w, p + i, sizeof w);
      if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])
        return false;
    }
  return true;
}

/* Write LEN bytes of P at OFF, leaving aligned zero blocks as holes.  */
static int
write_sparse (struct avm_out *o, uint64_t off, const uint8_t *p, size_t len, avm_error_t *err)
{
  int r;
  size_t head = (size_t) (off % HOLE_BLOCK);

  if (head)
    {
      head = HOLE_BLOCK - head;
      if (head > len)
        head = len;
      if ((r = pwrite_all (o, p, head, off, err)) < 0)
        return r;
      p += head;
      off += head;
      len -= head;
    }
  while (len >= HOLE_BLOCK)
    {
      if (block_is_zero (p))
        {
          p += HOLE_BLOCK;
          off += HOLE_BLOCK;
          len -= HOLE_BLOCK;
          continue;
        }
      size_t run = HOLE_BLOCK;
      while (len - run >= HOLE_BLOCK && !block_is_zero (p + run))
        run += HOLE_BLOCK;
      if ((r = pwrite_all (o, p, run, off, err)) < 0)
        return r;
      p += run;
      off += run;
      len -= run;
    }
  if (len)
    return pwrite_all (o, p, len, off, err);
  return 0;
}

int
avm_out_set_mode (struct avm_out *o, mode_t mode, avm_error_t *err)
{
  if (fchmod (o->fd, mode) < 0)
    return avm_error_sys (err, errno, "%s: cannot set mode %04o on its temporary %s", o->path, (unsigned) mode, o->tmp);
  return 0;
}

int
avm_out_write (struct avm_out *o, uint64_t off, const void *buf, size_t len, avm_error_t *err)
{
  int r = check_range (o, off, len, err);
  if (r < 0)
    return r;
  if ((r = write_sparse (o, off, buf, len, err)) < 0)
    return r;
  progress (o, len);
  return 0;
}

int
avm_out_fill (struct avm_out *o, uint64_t off, uint32_t pattern, uint64_t len, avm_error_t *err)
{
  int r = check_range (o, off, len, err);
  if (r < 0)
    return r;
  if (pattern == 0 || len == 0)
    {
      progress (o, len);
      return 0;
    }

  /* The buffer is a whole number of patterns, so every chunk starts in
     phase.  */
  size_t want = len >= AVM_OUT_BUFSIZE ? AVM_OUT_BUFSIZE : ((size_t) len + 3) & ~(size_t) 3;
  if (want > o->fill_cap)
    {
      uint8_t *n = realloc (o->fill, want);
      if (!n)
        return avm_error_sys (err, ENOMEM, "%s", o->path);
      o->fill = n;
      o->fill_cap = want;
    }
  /* Only as much as this fill needs: many small fills with changing
     patterns must not each rewrite a large buffer.  */
  if (pattern != o->fill_pattern)
    {
      o->fill_pattern = pattern;
      o->fill_valid = 0;
    }
  if (o->fill_valid < want)
    {
      uint8_t le[4] = { pattern, pattern >> 8, pattern >> 16, pattern >> 24 };
      for (size_t i = o->fill_valid; i < want; i += 4)
        memcpy (o->fill + i, le, 4);
      o->fill_valid = want;
    }
  while (len > 0)
    {
      size_t n = len < o->fill_valid ? (size_t) len : o->fill_valid;
      if ((r = pwrite_all (o, o->fill, n, off, err)) < 0)
        return r;
      progress (o, n);
      off += n;
      len -= n;
    }
  return 0;
}

static int
eof_error (avm_error_t *err, const char *in_name, uint64_t at)
{
  return avm_error_input (err, "%s: unexpected end of file at offset %" PRIu64, in_name, at);
}

/* Copy the data extent [SRC, SRC+LEN) of IN_FD to DST.  */
static int
copy_extent (struct avm_out *o, uint64_t dst, int in_fd, uint64_t src, uint64_t len, const char *in_name, bool *use_cfr,
             avm_error_t *err)
{
  int r;

  while (len > 0)
    {
      if (*use_cfr)
        {
          loff_t ioff = (loff_t) src, ooff = (loff_t) dst;
          size_t n = len < COPY_CHUNK ? (size_t) len : COPY_CHUNK;
          ssize_t c = copy_file_range (in_fd, &ioff, o->fd, &ooff, n, 0);
          if (c < 0 && errno == EINTR)
            continue;
          if (c < 0
              && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == ENOTSUP
                  || errno == EBADF || errno == ETXTBSY))
            {
              *use_cfr = false;
              continue;
            }
          if (c < 0)
            return avm_error_sys (err, errno, "%s: cannot copy %" PRIu64 " bytes from %s at offset %" PRIu64, o->path,
                                  len, in_name, src);
          if (c == 0)
            {
              /* End of file, or a file copy_file_range cannot see into:
                 the read path tells which.  */
              *use_cfr = false;
              continue;
            }
          kick_writeback (o, (uint64_t) c);
          progress (o, (uint64_t) c);
          src += (uint64_t) c;
          dst += (uint64_t) c;
          len -= (uint64_t) c;
          continue;
        }

      if (!o->copy && !(o->copy = malloc (AVM_OUT_BUFSIZE)))
        return avm_error_sys (err, ENOMEM, "%s", o->path);
      size_t n = len < AVM_OUT_BUFSIZE ? (size_t) len : AVM_OUT_BUFSIZE;
      ssize_t got = pread (in_fd, o->copy, n, (off_t) src);
      if (got < 0 && errno == EINTR)
        continue;
      if (got < 0)
        return avm_error_sys (err, errno, "%s: cannot read at offset %" PRIu64, in_name, src);
      if (got == 0)
        return eof_error (err, in_name, src);
      if ((r = avm_out_write (o, dst, o->copy, (size_t) got, err)) < 0)
        return r;
      src += (uint64_t) got;
      dst += (uint64_t) got;
      len -= (uint64_t) got;
    }
  return 0;
}

int
avm_out_copy_fd (struct avm_out *o, uint64_t off, int in_fd, uint64_t in_off, uint64_t len, const char *in_name,
                 avm_error_t *err)
{
  struct stat st;
  bool use_seek = true, use_cfr = true;
  int r = check_range (o, off, len, err);

  if (r < 0)
    return r;
  if (in_off > INT64_MAX || len > INT64_MAX - in_off)
    return avm_error_fail (err, EINVAL, "%s: offset %" PRIu64 " and length %" PRIu64 " out of range", in_name, in_off,
                           len);
  if (fstat (in_fd, &st) < 0)
    return avm_error_sys (err, errno, "%s: cannot stat", in_name);
  if (S_ISREG (st.st_mode) && (uint64_t) st.st_size < in_off + len)
    return eof_error (err, in_name, (uint64_t) st.st_size);
  if (!S_ISREG (st.st_mode))
    use_seek = false;

  uint64_t pos = in_off, end = in_off + len;
  while (pos < end)
    {
      uint64_t dstart = pos, dend = end;
      if (use_seek)
        {
          off_t d = lseek (in_fd, (off_t) pos, SEEK_DATA);
          if (d < 0 && errno == ENXIO)
            dstart = end; /* a hole up to the end of the file */
          else if (d < 0)
            use_seek = false;
          else
            {
              dstart = (uint64_t) d < end ? (uint64_t) d : end;
              if (dstart < end)
                {
                  off_t h = lseek (in_fd, (off_t) dstart, SEEK_HOLE);
                  if (h >= 0 && (uint64_t) h > dstart && (uint64_t) h < end)
                    dend = (uint64_t) h;
                }
            }
        }
      progress (o, dstart - pos); /* the hole stays a hole */
      if (dstart >= end)
        break;
      if ((r = copy_extent (o, off + (dstart - in_off), in_fd, dstart, dend - dstart, in_name, &use_cfr, err)) < 0)
        return r;
      pos = dend;
    }
  return 0;
}

/* The temporary's data and size on disk, and its descriptor closed (it
   stays registered for the signal handlers until renamed).  */
int
avm_out_sync_tmp (struct avm_out *o, avm_error_t *err)
{
  int fd = steal_fd (&o->fd);
  int e = 0;

  if (fd < 0)
    return 0;
  if (fsync (fd) < 0)
    e = errno;
  if (close (fd) < 0 && !e && errno != EINTR)
    e = errno;
  if (e)
    return avm_error_sys (err, e, "%s: cannot write", o->path);
  return 0;
}

int
avm_out_commit (struct avm_out *o, avm_error_t *err)
{
  int e = 0;
  int r;

  if (o->tree)
    {
      r = avm_error_fail (err, EINVAL, "%s: a tree is committed with avm_out_commit_set", o->path);
      avm_out_abort (o);
      return r;
    }
  r = avm_out_sync_tmp (o, err);
  if (r < 0)
    {
      avm_out_abort (o);
      return r;
    }
  if (rename (o->tmp, o->path) < 0)
    {
      e = errno;
      r = avm_error_sys (err, e, "%s: cannot rename %s over it", o->path, o->tmp);
      avm_out_abort (o);
      return r;
    }
  /* Renamed: a signal now finds nothing to remove.  */
  avm_out_live_remove (o->slot);
  o->slot = -1;

  _cleanup_close_ int dfd = open (o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || (fsync (dfd) < 0 && errno != EINVAL))
    r = avm_error_sys (err, errno, "%s: cannot sync directory %s", o->path, o->dir);
  avm_out_dispose (o);
  return r;
}

void
avm_out_abort (struct avm_out *o)
{
  if (!o)
    return;
  if (o->fd >= 0)
    {
      close (o->fd);
      o->fd = -1;
    }
  /* Remove before unregistering: a signal in between finds the path gone
     rather than missing the file.  */
  if (o->slot >= 0)
    {
      if (o->tree)
        (void) avm_out_rm_tree_at (AT_FDCWD, o->tmp, 0);
      else
        unlink (o->tmp);
    }
  avm_out_live_remove (o->slot);
  avm_out_dispose (o);
}
