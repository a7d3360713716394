/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sparse, atomic output files.  Memory use is bounded: one fill buffer and
 * one copy buffer of at most AVM_OUT_BUFSIZE each, allocated on first use.
 */
#include "disk/output.h"
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
  /* A directory output (avm_out_open_tree): TMP is the temporary directory,
     holding "new" (the tree being written, NEWFD) and, once the commit
     starts, "old" (what the commit moves out of DIR).  */
  bool tree;
  int tfd, newfd;
  char **names;  /* the top-level entries of "new", read at commit */
  size_t nnames;
  char **retire; /* entries of DIR to remove at commit (not in the new tree) */
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
  bool tree; /* a temporary directory, removed whole */
} live[AVM_OUT_MAX_OPEN];
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t handlers_once = PTHREAD_ONCE_INIT;
static const int cleanup_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

/* Remove NAME in DFD: a file, a symbolic link (never followed) or a
   directory with everything below it, even directories without write
   permission (a host package may have some).  Only system calls, with
   buffers on the stack: the signal handlers call it.  Best effort: goes on
   after a failure; 0 or the first -errno.  */
#define RM_MAX_DEPTH 256
#define RM_BUF 1024

static int
rm_tree_at (int dfd, const char *name, unsigned depth)
{
  if (unlinkat (dfd, name, 0) == 0 || errno == ENOENT)
    return 0;
  if (errno != EISDIR && errno != EPERM)
    return -errno;
  if (depth >= RM_MAX_DEPTH)
    return -ELOOP;
  int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : -errno;
  (void) fchmod (fd, 0700);
  int r = 0;
  /* Entries are removed while the directory is read: read it again until a
     pass finds nothing more (a few passes at most).  */
  for (int pass = 0; pass < 4; pass++)
    {
      bool any = false;
      if (lseek (fd, 0, SEEK_SET) < 0)
        break;
      for (;;)
        {
          char buf[RM_BUF] __attribute__ ((aligned (8)));
          ssize_t n = getdents64 (fd, buf, sizeof buf);
          if (n <= 0)
            {
              if (n < 0 && !r)
                r = -errno;
              break;
            }
          for (ssize_t off = 0; off < n;)
            {
              const struct dirent64 *d = (const struct dirent64 *) (buf + off);
              off += d->d_reclen;
              if (d->d_name[0] == '.' && (d->d_name[1] == '\0' || (d->d_name[1] == '.' && d->d_name[2] == '\0')))
                continue;
              any = true;
              int e = rm_tree_at (fd, d->d_name, depth + 1);
              if (e < 0 && !r)
                r = e;
            }
        }
      if (!any)
        break;
    }
  close (fd);
  if (unlinkat (dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && !r)
    r = -errno;
  return r;
}

void
avm_out_signal_cleanup (void)
{
  pid_t self = getpid ();
  for (size_t i = 0; i < AVM_OUT_MAX_OPEN; i++)
    {
      char *p = __atomic_load_n (&live[i].path, __ATOMIC_ACQUIRE);
      if (p && live[i].pid == self)
        {
          if (live[i].tree)
            (void) rm_tree_at (AT_FDCWD, p, 0);
          else
            unlink (p);
        }
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
live_add (char *path, bool tree)
{
  int slot = -1;
  pthread_mutex_lock (&live_lock);
  for (int i = 0; i < AVM_OUT_MAX_OPEN; i++)
    if (!live[i].path)
      {
        live[i].pid = getpid ();
        live[i].tree = tree;
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
      o->slot = live_add (o->tmp, false);
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
  __attribute__ ((cleanup (out_freep))) struct avm_out *o = NULL;
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

  pthread_once (&handlers_once, install_handlers);

  /* No signal between creating the temporary and registering it.  */
  sigemptyset (&block);
  for (size_t i = 0; i < ARRAY_SIZE (cleanup_signals); i++)
    sigaddset (&block, cleanup_signals[i]);
  pthread_sigmask (SIG_BLOCK, &block, &old);
  if (!mkdtemp (o->tmp))
    e = errno;
  else if ((o->slot = live_add (o->tmp, true)) < 0)
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
      return avm_error_fail (err, EINVAL, "%s: cannot remove \"%s\": not an entry of the directory", o->path,
                             names[i]);
  char **copy = avm_strv_copy (names ? names : (char *const[]){ NULL });
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
        int e2 = rm_tree_at (dirfd (d), p, 0);
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

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* A tree before its commit: its top-level entries listed (sorted), every
   file of it on disk (syncfs: one flush for thousands of files instead of
   an fsync each; it reports the write errors of the file system since the
   descriptor was opened), and the directory "old" made for what the
   commit moves out of DIR.  */
static int
tree_prepare (struct avm_out *o, avm_error_t *err)
{
  struct avm_argv names = { 0 };
  int fd = dup (o->newfd);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *e;

  if (!d)
    {
      int saved = errno;
      if (fd >= 0)
        close (fd);
      return avm_error_sys (err, saved, "%s: cannot read the temporary %s/new", o->path, o->tmp);
    }
  rewinddir (d);
  errno = 0;
  while ((e = readdir (d)))
    if (!streq (e->d_name, ".") && !streq (e->d_name, "..") && avm_argv_push (&names, e->d_name) < 0)
      {
        closedir (d);
        avm_argv_clear (&names);
        return avm_error_sys (err, ENOMEM, "%s", o->path);
      }
  closedir (d);
  size_t count = names.n;
  char **v = count ? avm_argv_steal (&names) : calloc (1, sizeof (char *));
  if (!v)
    return avm_error_sys (err, ENOMEM, "%s", o->path);
  qsort (v, count, sizeof *v, cmp_str);
  avm_strv_free (o->names);
  o->names = v;
  o->nnames = count;
  if (syncfs (o->newfd) < 0)
    return avm_error_sys (err, errno, "%s: cannot write the tree %s", o->path, o->tmp);
  if (mkdirat (o->tfd, "old", 0700) < 0 && errno != EEXIST)
    return avm_error_sys (err, errno, "%s: cannot create %s/old", o->path, o->tmp);
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
  r = out_sync (o, err);
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

static void
marker_line (struct avm_strbuf *b, const char *dir, const char *name)
{
  avm_strbuf_adds (b, dir);
  avm_strbuf_adds (b, "/");
  avm_strbuf_adds (b, name);
  avm_strbuf_adds (b, "\n");
}

/* Create MARKER in D, naming the outputs about to replace files there (a
   tree: each of its top-level entries, and the entries it removes), and
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
        if (!outs[i]->tree)
          {
            avm_strbuf_adds (&b, outs[i]->path);
            avm_strbuf_adds (&b, "\n");
            continue;
          }
        for (size_t k = 0; k < outs[i]->nnames; k++)
          marker_line (&b, d->path, outs[i]->names[k]);
        for (size_t k = 0; outs[i]->retire && outs[i]->retire[k]; k++)
          marker_line (&b, d->path, outs[i]->retire[k]);
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

static const char *
base_of (const char *path)
{
  const char *slash = strrchr (path, '/');
  return slash ? slash + 1 : path;
}

/* A tree's entries must not be another output of the set or the marker:
   the commit would move them around.  */
static int
check_tree_names (struct avm_out **outs, size_t n, const struct avm_out *t, const char *marker, avm_error_t *err)
{
  for (size_t k = 0; k < t->nnames; k++)
    {
      const char *name = t->names[k];
      if (streq (name, marker))
        return avm_error_input (err, "%s/%s: the tree has an entry of that name, which is the commit marker",
                                t->dir, name);
      for (size_t i = 0; i < n; i++)
        if (outs[i] && !outs[i]->tree && streq (outs[i]->dir, t->dir) && streq (base_of (outs[i]->path), name))
          return avm_error_input (err, "%s: the tree has an entry of that name, which is another output",
                                  outs[i]->path);
    }
  return 0;
}

/* Are exchanges unsupported where they failed with E?  Some file systems
   (and kernels before 3.15) have no RENAME_EXCHANGE.  */
static bool
no_exchange (int e)
{
  return e == EINVAL || e == ENOSYS || e == EOPNOTSUPP;
}

/* Put the top-level entry NAME of tree T in place in DIR (DFD): exchanged
   with the entry it replaces, which ends up in T's "new" (removed with the
   temporary), so that DIR/NAME never disappears; renamed when DIR has no
   such entry.  Where RENAME_EXCHANGE is not supported (*NOX), the old entry
   is renamed into T's "old" first, then the new one into place: DIR/NAME
   is missing in between, inside the commit window like everything else
   (the marker covers it).  *CHANGED counts what changed in DIR.  */
static int
tree_put (struct avm_out *t, int dfd, int oldfd, const char *name, bool *nox, size_t *changed, avm_error_t *err)
{
  if (!*nox)
    {
      if (renameat2 (t->newfd, name, dfd, name, RENAME_EXCHANGE) == 0)
        {
          ++*changed;
          return 0;
        }
      if (errno == ENOENT && renameat (t->newfd, name, dfd, name) == 0)
        {
          ++*changed;
          return 0;
        }
      if (!no_exchange (errno))
        return -errno;
      *nox = true;
    }
  if (renameat (dfd, name, oldfd, name) == 0)
    ++*changed;
  else if (errno != ENOENT)
    return -errno;
  if (renameat (t->newfd, name, dfd, name) < 0)
    return -errno;
  ++*changed;
  return 0;
}

static int
rename_error (struct avm_out *o, const char *what, int e, size_t renamed, const char *marker, const char *remedy,
              avm_error_t *err)
{
  if (renamed)
    return avm_error_sys (err, e,
                          "%s: cannot rename %s over it (%zu other output(s) already replaced: the set is "
                          "incomplete, and %s/%s says so; %s)",
                          what, o->tmp, renamed, o->dir, marker, remedy);
  return avm_error_sys (err, e, "%s: cannot rename %s over it", what, o->tmp);
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
      r = outs[i]->tree ? tree_prepare (outs[i], err) : out_sync (outs[i], err);
  for (size_t i = 0; i < n && r == 0; i++)
    if (outs[i] && outs[i]->tree)
      r = check_tree_names (outs, n, outs[i], marker, err);
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

  /* 3. The renames: files over the old ones, each top-level entry of a
     tree in place of the old one, and the entries a tree retires moved
     out of the way (into the temporary, removed after the commit).  */
  for (size_t i = 0; i < n; i++)
    {
      struct avm_out *o = outs[i];
      if (!o)
        continue;
      if (!o->tree)
        {
          if (rename (o->tmp, o->path) < 0)
            {
              r = rename_error (o, o->path, errno, renamed, marker, remedy, err);
              goto out;
            }
          live_remove (o->slot);
          o->slot = -1;
          renamed++;
          continue;
        }
      int dfd = -1;
      for (size_t k = 0; k < ndirs; k++)
        if (streq (dirs[k].path, o->dir))
          dfd = dirs[k].fd;
      _cleanup_close_ int oldfd = openat (o->tfd, "old", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      bool nox = false;
      if (oldfd < 0)
        {
          r = avm_error_sys (err, errno, "%s: cannot open %s/old", o->path, o->tmp);
          goto out;
        }
      for (size_t k = 0; k < o->nnames; k++)
        {
          int e = tree_put (o, dfd, oldfd, o->names[k], &nox, &renamed, err);
          if (e < 0)
            {
              _cleanup_free_ char *what = avm_path_join (o->dir, o->names[k]);
              r = rename_error (o, what ? what : o->dir, -e, renamed, marker, remedy, err);
              goto out;
            }
        }
      for (size_t k = 0; o->retire && o->retire[k]; k++)
        {
          if (avm_strv_contains (o->names, o->retire[k]))
            continue;
          if (renameat (dfd, o->retire[k], oldfd, o->retire[k]) == 0)
            renamed++;
          else if (errno != ENOENT)
            {
              r = avm_error_sys (err, errno, "%s/%s: cannot move it out of the way into %s/old%s%s", o->dir,
                                 o->retire[k], o->tmp, renamed ? "; the set is incomplete: " : "",
                                 renamed ? remedy : "");
              goto out;
            }
        }
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
  if (blocked)
    pthread_sigmask (SIG_SETMASK, &old, NULL);
  /* The temporaries left: unrenamed files, and the trees' temporary
     directories, which hold what the commit replaced (or, on failure, what
     it did not put in place).  Removed with signals delivered again: a
     signal now has the handler remove them, which is as good (a tree of
     gigabytes takes a moment).  */
  for (size_t i = 0; i < n; i++)
    if (outs[i])
      {
        if (outs[i]->slot >= 0)
          avm_out_abort (outs[i]);
        else
          out_free (outs[i]);
        outs[i] = NULL;
      }
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
        (void) rm_tree_at (AT_FDCWD, o->tmp, 0);
      else
        unlink (o->tmp);
    }
  live_remove (o->slot);
  out_free (o);
}
