/* SPDX-License-Identifier: Apache-2.0 */
/* The host package's tree written (hosttree.h: avm_host_writer): every path walked
   from the root descriptor with O_NOFOLLOW, nothing created through a link.  */
#include "cvd2img/hosttree.h"
#include "cvd2img/hosttree_internal.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- */
/* Writing.  */

void
avm_host_writer_init (struct avm_host_writer *w, int root, const char *label)
{
  *w = (struct avm_host_writer) { .root = root, .label = label };
}

void
avm_host_writer_clear (struct avm_host_writer *w)
{
  avm_argv_clear (&w->dirs);
  free (w->modes);
  w->modes = NULL;
  w->modes_alloc = 0;
}

static int
note_dir (struct avm_host_writer *w, const char *path, size_t len, mode_t mode, avm_error_t *err)
{
  if (w->dirs.n + 1 > w->modes_alloc)
    {
      size_t n = w->modes_alloc ? w->modes_alloc * 2 : 64;
      mode_t *m = realloc (w->modes, n * sizeof *m);
      if (!m)
        return avm_error_sys (err, ENOMEM, "%s", w->label);
      w->modes = m;
      w->modes_alloc = n;
    }
  _cleanup_free_ char *copy = strndup (path, len);
  if (!copy || avm_argv_push (&w->dirs, copy) < 0)
    return avm_error_sys (err, ENOMEM, "%s", w->label);
  w->modes[w->dirs.n - 1] = (mode & 0777) | 0700;
  return 0;
}

/* The directory holding PATH, opened (the caller's descriptor) without ever
   following a symbolic link, missing directories created when CREATE;
   BASE gets PATH's last component.  -ENOENT without a message when a
   directory on the way is missing (and not CREATE).  */
static int
open_parent (struct avm_host_writer *w, const char *path, bool create, int *out, char base[NAME_MAX + 1],
             avm_error_t *err)
{
  const char *p = path, *c, *c2;
  size_t n = avm_host_next_comp (&p, &c), n2;
  int fd = fcntl (w->root, F_DUPFD_CLOEXEC, 3);

  *out = -1;
  if (fd < 0)
    return avm_error_sys (err, errno, "%s", w->label);
  if (!n || n > NAME_MAX)
    {
      close (fd);
      return avm_error_input (err, "%s: entry %s: not a name", w->label, path);
    }
  while ((n2 = avm_host_next_comp (&p, &c2)))
    {
      char comp[NAME_MAX + 1];
      memcpy (comp, c, n);
      comp[n] = '\0';
      int sub = openat (fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0 && errno == ENOENT && create)
        {
          if (mkdirat (fd, comp, 0700) == 0)
            {
              int r = note_dir (w, path, (size_t) (c + n - path), 0755, err);
              if (r < 0)
                {
                  close (fd);
                  return r;
                }
            }
          sub = openat (fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
      int e = errno;
      close (fd);
      if (sub < 0 && (e == ELOOP || e == ENOTDIR))
        return avm_error_input (err,
                                "%s: entry %s: %.*s is not a directory (a symbolic link or a file is in the "
                                "way); refusing the host package",
                                w->label, path, (int) (c + n - path), path);
      if (sub < 0 && e == ENOENT)
        return -ENOENT; /* not in the tree: the caller says what that means */
      if (sub < 0)
        return avm_error_sys (err, e, "%s: entry %s: cannot open %.*s", w->label, path, (int) (c + n - path), path);
      fd = sub;
      c = c2;
      n = n2;
      if (n > NAME_MAX)
        {
          close (fd);
          return avm_error_input (err, "%s: entry %s: not a name", w->label, path);
        }
    }
  memcpy (base, c, n);
  base[n] = '\0';
  *out = fd;
  return 0;
}

static int
twice (struct avm_host_writer *w, const char *path, avm_error_t *err)
{
  return avm_error_input (err, "%s: entry %s appears twice; refusing the host package", w->label, path);
}

int
avm_host_put_dir (struct avm_host_writer *w, const char *path, mode_t mode, avm_error_t *err)
{
  _cleanup_close_ int pfd = -1;
  char base[NAME_MAX + 1];
  struct stat st;
  int r = open_parent (w, path, true, &pfd, base, err);
  if (r < 0)
    return r;
  if (mkdirat (pfd, base, 0700) < 0)
    {
      if (errno != EEXIST)
        return avm_error_sys (err, errno, "%s: entry %s: cannot create the directory", w->label, path);
      if (fstatat (pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR (st.st_mode))
        return twice (w, path, err);
    }
  return note_dir (w, path, strlen (path), mode, err);
}

int
avm_host_put_file (struct avm_host_writer *w, const char *path, int *fd, avm_error_t *err)
{
  _cleanup_close_ int pfd = -1;
  char base[NAME_MAX + 1];
  int r = open_parent (w, path, true, &pfd, base, err);
  *fd = -1;
  if (r < 0)
    return r;
  *fd = openat (pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (*fd < 0 && errno == EEXIST)
    return twice (w, path, err);
  if (*fd < 0)
    return avm_error_sys (err, errno, "%s: entry %s: cannot create it", w->label, path);
  return 0;
}

int
avm_host_wrote (struct avm_host_writer *w, const char *path, uint64_t len, avm_error_t *err)
{
  if (len > AVM_HOST_MAX_BYTES - w->bytes)
    return avm_error_input (err, "%s: more than %llu GiB of files (at entry %s); refusing the host package", w->label,
                            AVM_HOST_MAX_BYTES >> 30, path);
  w->bytes += len;
  if (w->progress && len)
    w->progress (w->progress_data, len);
  return 0;
}

int
avm_host_file_done (struct avm_host_writer *w, const char *path, int fd, uint64_t size, mode_t mode, avm_error_t *err)
{
  int e = 0;
  if (ftruncate (fd, (off_t) size) < 0 || fchmod (fd, mode & 0777) < 0)
    e = errno;
  if (close (fd) < 0 && !e && errno != EINTR)
    e = errno;
  if (e)
    return avm_error_sys (err, e, "%s: entry %s: cannot write it", w->label, path);
  return 0;
}

int
avm_host_put_symlink (struct avm_host_writer *w, const char *path, const char *target, avm_error_t *err)
{
  _cleanup_close_ int pfd = -1;
  char base[NAME_MAX + 1];
  int r = open_parent (w, path, true, &pfd, base, err);
  if (r < 0)
    return r;
  if (symlinkat (target, pfd, base) == 0)
    return 0;
  if (errno == EEXIST)
    return twice (w, path, err);
  return avm_error_sys (err, errno, "%s: entry %s: cannot create the link", w->label, path);
}

int
avm_host_put_hardlink (struct avm_host_writer *w, const char *path, const char *target, avm_error_t *err)
{
  _cleanup_close_ int tfd = -1, pfd = -1;
  char tbase[NAME_MAX + 1], base[NAME_MAX + 1];
  struct stat st;
  int r = open_parent (w, target, false, &tfd, tbase, err);
  if (r == -ENOENT || (r == 0 && fstatat (tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT))
    return avm_error_input (err,
                            "%s: entry %s: a hard link to %s, which is not an earlier entry of the package; "
                            "refusing the host package",
                            w->label, path, target);
  if (r < 0)
    return r;
  if (fstatat (tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return avm_error_sys (err, errno, "%s: entry %s: cannot read %s", w->label, path, target);
  if (S_ISDIR (st.st_mode))
    return avm_error_input (err, "%s: entry %s: a hard link to the directory %s; refusing the host package", w->label,
                            path, target);
  if ((r = open_parent (w, path, true, &pfd, base, err)) < 0)
    return r;
  if (linkat (tfd, tbase, pfd, base, 0) == 0)
    return 0;
  if (errno == EEXIST)
    return twice (w, path, err);
  return avm_error_sys (err, errno, "%s: entry %s: cannot link it to %s", w->label, path, target);
}

int
avm_host_writer_finish (struct avm_host_writer *w, avm_error_t *err)
{
  for (size_t i = 0; i < w->dirs.n; i++)
    {
      _cleanup_close_ int pfd = -1, fd = -1;
      char base[NAME_MAX + 1];
      int r = open_parent (w, w->dirs.v[i], false, &pfd, base, err);
      if (r == -ENOENT)
        return avm_error_fail (err, ENOENT, "%s: entry %s: its directory vanished", w->label, w->dirs.v[i]);
      if (r < 0)
        return r;
      fd = openat (pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 || fchmod (fd, w->modes[i]) < 0)
        return avm_error_sys (err, errno, "%s: entry %s: cannot set its mode", w->label, w->dirs.v[i]);
    }
  return 0;
}
