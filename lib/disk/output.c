/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sparse, atomic output files.  Memory use is bounded: one fill buffer and
 * one copy buffer of at most AVM_OUT_BUFSIZE each, allocated on first use.
 */
#include "disk/output.h"
#include "util/cleanup.h"
#include "util/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
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

struct avm_out
{
  int fd;
  char *path;  /* final path */
  char *tmp;   /* temporary, registered for signal cleanup */
  char *dir;   /* directory of both, fsynced on commit */
  uint64_t size;
  int slot;    /* index in the live registry */
  avm_progress_fn progress;
  void *progress_data;
  uint8_t *fill;      /* pattern buffer for avm_out_fill */
  size_t fill_cap;
  size_t fill_valid;  /* bytes of it holding fill_pattern */
  uint32_t fill_pattern;
  uint8_t *copy;      /* read buffer for the avm_out_copy_fd fallback */
  uint64_t unflushed; /* bytes written since writeback was last started */
};

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

/* Live temporaries, for the signal handlers.  A slot is published with a
   release store after its owner pid is set; the handler only unlinks paths
   created by its own process (a forked child that has not exec'd yet keeps
   the handlers and the registry).  Registration is serialised by a mutex
   the handler never takes.  */
static struct
{
  char *path;
  pid_t pid;
} live[AVM_OUT_MAX_OPEN];
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t handlers_once = PTHREAD_ONCE_INIT;
static const int cleanup_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

void
avm_out_signal_cleanup (void)
{
  pid_t self = getpid ();
  for (size_t i = 0; i < AVM_OUT_MAX_OPEN; i++)
    {
      char *p = __atomic_load_n (&live[i].path, __ATOMIC_ACQUIRE);
      if (p && live[i].pid == self)
        unlink (p);
    }
}

static void
on_signal (int sig)
{
  struct sigaction dfl = { .sa_handler = SIG_DFL };
  int saved = errno;

  avm_out_signal_cleanup ();
  sigemptyset (&dfl.sa_mask);
  sigaction (sig, &dfl, NULL);
  /* Blocked while this handler runs: delivered, with the default action,
     as soon as it returns.  */
  raise (sig);
  errno = saved;
}

static void
install_handlers (void)
{
  for (size_t i = 0; i < ARRAY_SIZE (cleanup_signals); i++)
    {
      struct sigaction old, sa = { .sa_handler = on_signal };
      int sig = cleanup_signals[i];

      if (sigaction (sig, NULL, &old) < 0)
        continue;
      if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
        continue; /* ignored, or the program's own: leave it */
      sigemptyset (&sa.sa_mask);
      for (size_t j = 0; j < ARRAY_SIZE (cleanup_signals); j++)
        sigaddset (&sa.sa_mask, cleanup_signals[j]);
      sigaction (sig, &sa, NULL);
    }
}

static int
live_add (char *path)
{
  int slot = -1;
  pthread_mutex_lock (&live_lock);
  for (int i = 0; i < AVM_OUT_MAX_OPEN; i++)
    if (!live[i].path)
      {
        live[i].pid = getpid ();
        __atomic_store_n (&live[i].path, path, __ATOMIC_RELEASE);
        slot = i;
        break;
      }
  pthread_mutex_unlock (&live_lock);
  return slot;
}

static void
live_remove (int slot)
{
  if (slot < 0)
    return;
  pthread_mutex_lock (&live_lock);
  __atomic_store_n (&live[slot].path, NULL, __ATOMIC_RELEASE);
  pthread_mutex_unlock (&live_lock);
}

static void
out_free (struct avm_out *o)
{
  if (o->fd >= 0)
    close (o->fd);
  free (o->path);
  free (o->tmp);
  free (o->dir);
  free (o->fill);
  free (o->copy);
  free (o);
}

static void
out_freep (struct avm_out **o)
{
  if (*o)
    out_free (*o);
}

int
avm_out_open (const char *path, uint64_t size, struct avm_out **out, avm_error_t *err)
{
  __attribute__ ((cleanup (out_freep))) struct avm_out *o = NULL;
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
  o->fd = -1;
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

  pthread_once (&handlers_once, install_handlers);

  /* No signal between creating the temporary and registering it.  */
  sigemptyset (&block);
  for (size_t i = 0; i < ARRAY_SIZE (cleanup_signals); i++)
    sigaddset (&block, cleanup_signals[i]);
  pthread_sigmask (SIG_BLOCK, &block, &old);
  o->fd = mkostemp (o->tmp, O_CLOEXEC);
  e = errno;
  if (o->fd >= 0)
    {
      o->slot = live_add (o->tmp);
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
                           "%s: cannot write %" PRIu64 " bytes at offset %" PRIu64 ": past the end (%" PRIu64
                           " bytes)",
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
        return avm_error_sys (err, w < 0 ? errno : ENOSPC, "%s: cannot write %zu bytes at offset %" PRIu64,
                              o->path, len, off);
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
    return avm_error_sys (err, errno, "%s: cannot set mode %04o on its temporary %s", o->path, (unsigned) mode,
                          o->tmp);
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
copy_extent (struct avm_out *o, uint64_t dst, int in_fd, uint64_t src, uint64_t len, const char *in_name,
             bool *use_cfr, avm_error_t *err)
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
          if (c < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP
                        || errno == ENOTSUP || errno == EBADF || errno == ETXTBSY))
            {
              *use_cfr = false;
              continue;
            }
          if (c < 0)
            return avm_error_sys (err, errno, "%s: cannot copy %" PRIu64 " bytes from %s at offset %" PRIu64,
                                  o->path, len, in_name, src);
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
    return avm_error_fail (err, EINVAL, "%s: offset %" PRIu64 " and length %" PRIu64 " out of range", in_name,
                           in_off, len);
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
static int
out_sync (struct avm_out *o, avm_error_t *err)
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
  int r = out_sync (o, err);

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
  live_remove (o->slot);
  o->slot = -1;

  _cleanup_close_ int dfd = open (o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || (fsync (dfd) < 0 && errno != EINVAL))
    r = avm_error_sys (err, errno, "%s: cannot sync directory %s", o->path, o->dir);
  out_free (o);
  return r;
}

/* The directories of a set's outputs, each once, open.  */
struct set_dir
{
  const char *path;
  int fd;
  bool marked; /* the marker was created */
};

static int
sync_dir (struct set_dir *d, avm_error_t *err)
{
  if (fsync (d->fd) < 0 && errno != EINVAL)
    return avm_error_sys (err, errno, "cannot sync directory %s", d->path);
  return 0;
}

/* Create MARKER in D, naming the outputs about to replace files there, and
   make it durable before any of them is renamed.  */
static int
create_marker (struct set_dir *d, struct avm_out **outs, size_t n, const char *marker, const char *remedy,
               avm_error_t *err)
{
  _cleanup_strbuf_ struct avm_strbuf b = { 0 };
  _cleanup_free_ char *text = NULL;
  int e = 0;

  avm_strbuf_adds (&b, "Written while these outputs were renamed into place, removed once all were.\n"
                       "If this file is still here, the files next to it may not belong together: ");
  avm_strbuf_adds (&b, remedy);
  avm_strbuf_adds (&b, ".\n");
  for (size_t i = 0; i < n; i++)
    if (outs[i] && streq (outs[i]->dir, d->path))
      {
        avm_strbuf_adds (&b, outs[i]->path);
        avm_strbuf_adds (&b, "\n");
      }
  if (!(text = avm_strbuf_steal (&b)))
    return avm_error_sys (err, ENOMEM, "%s/%s", d->path, marker);

  _cleanup_close_ int fd = openat (d->fd, marker, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0)
    return avm_error_sys (err, errno, "cannot create %s/%s", d->path, marker);
  d->marked = true;
  for (const char *p = text, *end = text + strlen (text); p < end;)
    {
      ssize_t w = write (fd, p, end - p);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        {
          e = w < 0 ? errno : ENOSPC;
          break;
        }
      p += w;
    }
  if (!e && fsync (fd) < 0)
    e = errno;
  if (e)
    return avm_error_sys (err, e, "cannot write %s/%s", d->path, marker);
  return sync_dir (d, err);
}

int
avm_out_commit_set (struct avm_out **outs, size_t n, const char *marker, const char *remedy, avm_error_t *err)
{
  struct set_dir dirs[AVM_OUT_MAX_OPEN];
  size_t ndirs = 0, renamed = 0;
  sigset_t all, old;
  bool blocked = false;
  int r = 0;

  /* 1. Every output's data on disk: a full disk or an I/O error fails
     here, while every existing output is still the old one.  Signals
     still work: a Ctrl-C now removes the temporaries.  */
  for (size_t i = 0; i < n && r == 0; i++)
    if (outs[i])
      r = out_sync (outs[i], err);
  for (size_t i = 0; i < n && r == 0; i++)
    {
      if (!outs[i])
        continue;
      bool seen = false;
      for (size_t k = 0; k < ndirs; k++)
        seen |= streq (dirs[k].path, outs[i]->dir);
      if (seen)
        continue;
      if (ndirs == ARRAY_SIZE (dirs))
        {
          r = avm_error_fail (err, EMFILE, "%s: more than %d directories in one set", outs[i]->path,
                              AVM_OUT_MAX_OPEN);
          break;
        }
      dirs[ndirs] = (struct set_dir){ .path = outs[i]->dir, .fd = -1 };
      dirs[ndirs].fd = open (outs[i]->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dirs[ndirs].fd < 0)
        {
          r = avm_error_sys (err, errno, "%s: cannot open its directory %s", outs[i]->path, outs[i]->dir);
          break;
        }
      ndirs++;
    }
  if (r < 0)
    goto out;

  /* 2. From here to the end, no asynchronous signal is delivered (all but
     SIGKILL, SIGSTOP and the faults a program raises itself): the set is
     replaced whole, and a signal that arrived meanwhile takes effect
     once it is.  What cannot be blocked (SIGKILL, a power cut) or a
     rename failing half-way leaves the marker in place, so that readers
     of the set can tell.  */
  sigfillset (&all);
  static const int synchronous[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT };
  for (size_t i = 0; i < ARRAY_SIZE (synchronous); i++)
    sigdelset (&all, synchronous[i]);
  pthread_sigmask (SIG_BLOCK, &all, &old);
  blocked = true;

  for (size_t k = 0; k < ndirs; k++)
    if ((r = create_marker (&dirs[k], outs, n, marker, remedy, err)) < 0)
      goto out;

  /* 3. The renames.  */
  for (size_t i = 0; i < n; i++)
    {
      struct avm_out *o = outs[i];
      if (!o)
        continue;
      if (rename (o->tmp, o->path) < 0)
        {
          int e = errno;
          if (renamed)
            r = avm_error_sys (err, e,
                               "%s: cannot rename %s over it (%zu other output(s) already replaced: the set is "
                               "incomplete, and %s/%s says so; %s)",
                               o->path, o->tmp, renamed, o->dir, marker, remedy);
          else
            r = avm_error_sys (err, e, "%s: cannot rename %s over it", o->path, o->tmp);
          goto out;
        }
      live_remove (o->slot);
      o->slot = -1;
      renamed++;
    }

  /* 4. The renames durable, then the markers gone.  */
  for (size_t k = 0; k < ndirs; k++)
    if ((r = sync_dir (&dirs[k], err)) < 0)
      goto out;
  for (size_t k = 0; k < ndirs; k++)
    {
      if (unlinkat (dirs[k].fd, marker, 0) < 0)
        {
          r = avm_error_sys (err, errno, "cannot remove %s/%s", dirs[k].path, marker);
          goto out;
        }
      dirs[k].marked = false;
      if ((r = sync_dir (&dirs[k], err)) < 0)
        goto out;
    }

out:
  /* Nothing renamed yet: every old output is intact, the markers go.  */
  for (size_t k = 0; k < ndirs; k++)
    {
      if (dirs[k].marked && renamed == 0)
        {
          unlinkat (dirs[k].fd, marker, 0);
          (void) sync_dir (&dirs[k], NULL);
        }
      close (dirs[k].fd);
    }
  for (size_t i = 0; i < n; i++)
    if (outs[i])
      {
        if (outs[i]->slot >= 0)
          avm_out_abort (outs[i]);
        else
          out_free (outs[i]);
        outs[i] = NULL;
      }
  if (blocked)
    pthread_sigmask (SIG_SETMASK, &old, NULL);
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
  /* Unlink before unregistering: a signal in between finds the path gone
     rather than missing the file.  */
  if (o->slot >= 0)
    unlink (o->tmp);
  live_remove (o->slot);
  out_free (o);
}
