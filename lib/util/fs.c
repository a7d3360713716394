/* SPDX-License-Identifier: Apache-2.0 */
#include "util/fs.h"
#include "util/cleanup.h"
#include "util/strfmt.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

const char *
avm_file_kind (mode_t mode)
{
  switch (mode & S_IFMT)
    {
    case S_IFREG:
      return "a regular file";
    case S_IFDIR:
      return "a directory";
    case S_IFIFO:
      return "a FIFO";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    case S_IFSOCK:
      return "a socket";
    case S_IFLNK:
      return "a symbolic link";
    }
  return "not a regular file";
}

static int
open_regular (const char *path, const char *what, bool nofollow, int *fdp, struct stat *st, avm_error_t *err)
{
  /* O_NONBLOCK: opening a FIFO without a writer returns at once (and has no
     effect on a regular file).  */
  _cleanup_close_ int fd = open (path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));

  *fdp = -1;
  if (fd < 0 && nofollow && errno == ELOOP)
    return avm_error_input (err, "%s is a symbolic link, not %s: links are not followed here (copy the file itself in)",
                            path, what);
  if (fd < 0)
    return avm_error_sys (err, errno, "cannot open %s", path);
  if (fstat (fd, st) < 0)
    return avm_error_sys (err, errno, "cannot read %s", path);
  if (!S_ISREG (st->st_mode))
    return avm_error_input (err, "%s is %s, not %s", path, avm_file_kind (st->st_mode), what);
  *fdp = steal_fd (&fd);
  return 0;
}

int
avm_open_regular (const char *path, const char *what, int *fdp, struct stat *st, avm_error_t *err)
{
  return open_regular (path, what, false, fdp, st, err);
}

int
avm_open_regular_nofollow (const char *path, const char *what, int *fdp, struct stat *st, avm_error_t *err)
{
  return open_regular (path, what, true, fdp, st, err);
}

/* SIZE: what stat says; 0 when the limit was passed while reading.  */
static int
too_large (avm_error_t *err, const char *path, uint64_t size, size_t max, const char *what)
{
  char have[32], limit[32];
  avm_format_bytes (size, have, sizeof have);
  avm_format_bytes (max, limit, sizeof limit);
  if (size)
    avm_error_input (err, "%s is %s, not %s (at most %s)", path, have, what, limit);
  else
    avm_error_input (err, "%s: more than %s, too large for %s", path, limit, what);
  if (*err)
    (*err)->code = EFBIG;
  return -EFBIG;
}

static int
read_file (const char *path, size_t max, const char *what, bool nofollow, char **out, size_t *len, avm_error_t *err)
{
  _cleanup_close_ int fd = -1;
  _cleanup_free_ char *buf = NULL;
  struct stat st;
  size_t size = 0, alloc = 0;
  int r;

  if ((r = open_regular (path, what, nofollow, &fd, &st, err)) < 0)
    return r;
  if ((uint64_t) st.st_size > max)
    return too_large (err, path, st.st_size, max, what);
  for (;;)
    {
      if (alloc - size < 4096 && alloc < max + 2)
        {
          /* Room for the size stat gave (0 for /proc files), then doubling,
             up to one byte past the limit (to see it exceeded) and the NUL.  */
          size_t want = alloc ? alloc * 2 : (size_t) st.st_size + 4096 > 8192 ? (size_t) st.st_size + 4096 : 8192;
          if (want > max + 2)
            want = max + 2;
          char *n = realloc (buf, want);
          if (!n)
            return avm_error_sys (err, ENOMEM, "reading %s", path);
          buf = n;
          alloc = want;
        }
      ssize_t got = read (fd, buf + size, alloc - size - 1);
      if (got < 0)
        {
          if (errno == EINTR)
            continue;
          return avm_error_sys (err, errno, "cannot read %s", path);
        }
      if (got == 0)
        break;
      size += got;
      if (size > max)
        return too_large (err, path, 0, max, what);
    }
  buf[size] = '\0';
  if (len)
    *len = size;
  *out = steal_pointer (&buf);
  return 0;
}

int
avm_read_file (const char *path, size_t max, const char *what, char **out, size_t *len, avm_error_t *err)
{
  return read_file (path, max, what, false, out, len, err);
}

int
avm_read_file_nofollow (const char *path, size_t max, const char *what, char **out, size_t *len, avm_error_t *err)
{
  return read_file (path, max, what, true, out, len, err);
}

int
avm_write_file_atomic (const char *path, const void *data, size_t len, mode_t mode, avm_error_t *err)
{
  _cleanup_free_ char *tmp = NULL;
  _cleanup_close_ int fd = -1;
  const char *p = data;

  if (asprintf (&tmp, "%s.tmp.XXXXXX", path) < 0)
    return avm_error_sys (err, ENOMEM, "writing %s", path);
  fd = mkostemp (tmp, O_CLOEXEC);
  if (fd < 0)
    return avm_error_sys (err, errno, "cannot create a temporary file next to %s", path);
  while (len > 0)
    {
      ssize_t w = write (fd, p, len);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        {
          int e = errno;
          unlink (tmp);
          return avm_error_sys (err, e, "cannot write %s", tmp);
        }
      p += w;
      len -= w;
    }
  if (fchmod (fd, mode) < 0 || fsync (fd) < 0 || rename (tmp, path) < 0)
    {
      int e = errno;
      unlink (tmp);
      return avm_error_sys (err, e, "cannot write %s", path);
    }
  return 0;
}

int
avm_blank_file_atomic (const char *path, uint64_t size, mode_t mode, avm_error_t *err)
{
  _cleanup_free_ char *tmp = NULL;
  _cleanup_close_ int fd = -1;
  if (asprintf (&tmp, "%s.tmp.XXXXXX", path) < 0)
    return avm_error_sys (err, ENOMEM, "writing %s", path);
  fd = mkostemp (tmp, O_CLOEXEC);
  if (fd < 0)
    return avm_error_sys (err, errno, "cannot create a temporary file next to %s", path);
  if (ftruncate (fd, (off_t) size) < 0 || fchmod (fd, mode) < 0 || fsync (fd) < 0 || rename (tmp, path) < 0)
    {
      int e = errno;
      unlink (tmp);
      return avm_error_sys (err, e, "cannot write %s", path);
    }
  return 0;
}

int
avm_mkdir_p (const char *path, mode_t mode, avm_error_t *err)
{
  /* From the leaf up: when the directory or its parent exists, as at
     every start after the first, this is one mkdir.  */
  if (mkdir (path, mode) == 0 || errno == EEXIST)
    return 0;
  if (errno != ENOENT)
    return avm_error_sys (err, errno, "cannot create directory %s", path);
  _cleanup_free_ char *parent = strdup (path);
  if (!parent)
    return avm_error_sys (err, ENOMEM, "mkdir %s", path);
  size_t l = strlen (parent);
  while (l > 1 && parent[l - 1] == '/')
    parent[--l] = '\0';
  char *slash = strrchr (parent, '/');
  if (!slash || slash == parent) /* the root or a relative name: nothing above to create */
    return avm_error_sys (err, ENOENT, "cannot create directory %s", path);
  *slash = '\0';
  int r = avm_mkdir_p (parent, mode, err);
  if (r < 0)
    return r;
  if (mkdir (path, mode) < 0 && errno != EEXIST)
    return avm_error_sys (err, errno, "cannot create directory %s", path);
  return 0;
}

const char *
avm_path_base (const char *path)
{
  const char *slash = strrchr (path, '/');
  return slash ? slash + 1 : path;
}

char *
avm_path_join (const char *dir, const char *name)
{
  char *out = NULL;
  size_t l = strlen (dir);
  if (asprintf (&out, "%s%s%s", dir, (l && dir[l - 1] == '/') ? "" : "/", name) < 0)
    return NULL;
  return out;
}

static char *
search_dirs (const char *name, const char *dirs)
{
  if (!dirs)
    return NULL;
  _cleanup_free_ char *copy = strdup (dirs);
  char *save = NULL;
  if (!copy)
    return NULL;
  for (char *d = strtok_r (copy, ":", &save); d; d = strtok_r (NULL, ":", &save))
    {
      char *cand = avm_path_join (d, name);
      if (cand && access (cand, X_OK) == 0)
        {
          struct stat st;
          if (stat (cand, &st) == 0 && S_ISREG (st.st_mode))
            return cand;
        }
      free (cand);
    }
  return NULL;
}

char *
avm_find_program (const char *name, const char *dirs)
{
  char *r;
  if (strchr (name, '/'))
    {
      struct stat st;
      if (access (name, X_OK) < 0)
        return NULL;
      if (stat (name, &st) < 0 || !S_ISREG (st.st_mode))
        {
          errno = EACCES;
          return NULL;
        }
      return strdup (name);
    }
  r = search_dirs (name, dirs);
  if (!r)
    {
      const char *path = getenv ("PATH");
      r = search_dirs (name, path ? path : "/usr/local/bin:/usr/bin:/bin");
    }
  if (!r)
    errno = ENOENT;
  return r;
}

char *
avm_first_dir (const char *list, bool *found)
{
  _cleanup_free_ char *copy = strdup (list);
  char *save = NULL, *first = NULL;
  *found = false;
  if (!copy)
    return NULL;
  for (char *d = strtok_r (copy, ":", &save); d; d = strtok_r (NULL, ":", &save))
    {
      struct stat st;
      if (stat (d, &st) == 0 && S_ISDIR (st.st_mode))
        {
          *found = true;
          return strdup (d);
        }
      if (!first)
        first = d;
    }
  return first ? strdup (first) : NULL;
}

char *
avm_self_dir (void)
{
  char buf[PATH_MAX];
  ssize_t r = readlink ("/proc/self/exe", buf, sizeof buf - 1);
  if (r <= 0)
    return NULL;
  buf[r] = '\0';
  return strdup (dirname (buf));
}

char *
avm_xdg_dir (const char *env, const char *home_fallback)
{
  const char *v = getenv (env);
  if (v && v[0] == '/')
    return strdup (v);
  const char *home = getenv ("HOME");
  if (!home || !*home)
    home = "/";
  return avm_path_join (home, home_fallback);
}

#define COPY_CHUNK (1u << 20)
#define ZERO_BLOCK 4096u

static bool
all_zero (const char *p, size_t n)
{
  return n == 0 || (p[0] == 0 && memcmp (p, p + 1, n - 1) == 0);
}

/* Copy [FROM_OFF, END) of IN to the same place in OUT through BUF
   (COPY_CHUNK bytes), leaving blocks of zeros unwritten: OUT has its size
   already, so they stay holes (a RAM file's freed pages are zeros).  */
static int
copy_extent (int in, int out, off_t off, off_t end, char *buf, const char *from, const char *to, avm_error_t *err)
{
  while (off < end)
    {
      size_t want = (size_t) (end - off) < COPY_CHUNK ? (size_t) (end - off) : COPY_CHUNK;
      ssize_t n = pread (in, buf, want, off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return avm_error_sys (err, errno, "reading %s", from);
      if (n == 0)
        return avm_error_fail (err, EIO, "copying %s to %s: %s shrank", from, to, from);
      for (size_t at = 0; at < (size_t) n;)
        {
          size_t len = (size_t) n - at < ZERO_BLOCK ? (size_t) n - at : ZERO_BLOCK;
          if (!all_zero (buf + at, len))
            {
              /* Consecutive blocks with data in one write.  */
              size_t run = len;
              while (at + run < (size_t) n)
                {
                  size_t l2 = (size_t) n - at - run < ZERO_BLOCK ? (size_t) n - at - run : ZERO_BLOCK;
                  if (all_zero (buf + at + run, l2))
                    break;
                  run += l2;
                }
              for (size_t done = 0; done < run;)
                {
                  ssize_t w = pwrite (out, buf + at + done, run - done, off + (off_t) (at + done));
                  if (w < 0 && errno == EINTR)
                    continue;
                  if (w <= 0)
                    return avm_error_sys (err, w < 0 ? errno : EIO, "writing %s", to);
                  done += (size_t) w;
                }
              len = run;
            }
          at += len;
        }
      off += n;
    }
  return 0;
}

int
avm_copy_sparse (const char *from, const char *to, mode_t mode, avm_error_t *err)
{
  _cleanup_free_ char *buf = NULL;
  _cleanup_close_ int in = open (from, O_RDONLY | O_CLOEXEC);
  if (in < 0)
    return avm_error_sys (err, errno, "%s", from);
  struct stat st;
  if (fstat (in, &st) < 0)
    return avm_error_sys (err, errno, "%s", from);
  if (!S_ISREG (st.st_mode))
    return avm_error_fail (err, EINVAL, "%s: not a regular file (%s)", from, avm_file_kind (st.st_mode));
  _cleanup_close_ int out = open (to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (out < 0)
    return avm_error_sys (err, errno, "%s", to);
  int r = 0;
  if (ioctl (out, FICLONE, in) == 0)
    return 0;
  if (ftruncate (out, st.st_size) < 0)
    r = avm_error_sys (err, errno, "%s", to);
  off_t pos = 0;
  while (r == 0 && pos < st.st_size)
    {
      off_t data = lseek (in, pos, SEEK_DATA);
      if (data < 0)
        {
          if (errno != ENXIO) /* ENXIO: no data after POS */
            r = avm_error_sys (err, errno, "%s: SEEK_DATA", from);
          break;
        }
      off_t hole = lseek (in, data, SEEK_HOLE);
      if (hole < 0)
        hole = st.st_size;
      off_t src = data, dst = data;
      while (r == 0 && src < hole && !buf)
        {
          ssize_t n = copy_file_range (in, &src, out, &dst, (size_t) (hole - src), 0);
          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS))
            {
              /* Another file system (a tmpfs into a disk's): copied here.  */
              if (!(buf = malloc (COPY_CHUNK)))
                r = avm_error_sys (err, ENOMEM, "copying %s", from);
            }
          else if (n < 0)
            r = avm_error_sys (err, errno, "copying %s to %s", from, to);
          else if (n == 0)
            r = avm_error_fail (err, EIO, "copying %s to %s: %s shrank", from, to, from);
        }
      if (r == 0 && buf)
        r = copy_extent (in, out, src, hole, buf, from, to, err);
      pos = hole;
    }
  if (r < 0)
    unlink (to);
  return r;
}
