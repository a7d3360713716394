/* SPDX-License-Identifier: Apache-2.0 */
/* The host package's tree: its policy, a writer, a directory input's copy (hosttree.h). */
#include "disk/hosttree.h"
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

/* Top-level entries of one package (a host package has about ten): keeps
   the bookkeeping of distinct names linear.  */
#define MAX_TOP 1000u
/* copy_file_range at most this much at a time (progress keeps moving).  */
#define COPY_CHUNK (16u << 20)

void
avm_host_tally_clear (struct avm_host_tally *t)
{
  avm_argv_clear (&t->top);
  *t = (struct avm_host_tally){ 0 };
}

/* The next component of *P, skipping empty and "." ones; *P moves past it.
   Its length (0 at the end), *COMP its start.  */
static size_t
next_comp (const char **p, const char **comp)
{
  for (;;)
    {
      while (**p == '/')
        (*p)++;
      *comp = *p;
      size_t n = strcspn (*p, "/");
      *p += n;
      if (n == 1 && (*comp)[0] == '.')
        continue;
      return n;
    }
}

static bool
is_dotdot (const char *c, size_t n)
{
  return n == 2 && c[0] == '.' && c[1] == '.';
}

/* "ARCHIVE: entry PATH" for an archive, "DIR/PATH" for a directory.  */
static char *
entry_name (const char *where, const char *path, bool dir)
{
  char *s = NULL;
  if (asprintf (&s, dir ? "%s/%s" : "%s: entry %s", where, path) < 0)
    return NULL;
  return s;
}

/* Does the target of a symbolic link DEPTH components deep (1: at the top)
   stay inside the tree?  Relative, ".." only as leading components (one
   after a name could climb out of a directory that is itself a link), and
   at most DEPTH - 1 of them.  */
static bool
link_stays_inside (size_t depth, const char *target)
{
  size_t up = depth ? depth - 1 : 0;
  bool down = false;
  const char *p = target, *c;
  size_t n;
  if (!*target || target[0] == '/')
    return false;
  while ((n = next_comp (&p, &c)))
    {
      if (!is_dotdot (c, n))
        down = true;
      else if (down || up == 0)
        return false;
      else
        up--;
    }
  return true;
}

/* PATH (the entry ENTRY's name, or WHAT of it) checked: its depth in
   components; the first one in *TOP (length *TOPLEN).  */
static int
check_path (const char *where, const char *entry, const char *path, bool dir, const char *what, size_t *depth,
            const char **top, size_t *toplen, avm_error_t *err)
{
  const char *p = path, *c;
  size_t n;
  _cleanup_free_ char *ename = entry_name (where, entry, dir), *name = NULL;
  *depth = 0;
  *top = NULL;
  *toplen = 0;
  if (!ename || asprintf (&name, *what ? "%s: %s%s" : "%s", ename, what, path) < 0)
    return avm_error_sys (err, ENOMEM, "%s", where);
  if (strlen (path) >= PATH_MAX)
    return avm_error_input (err, "%s: a path longer than %d bytes; refusing the host package", name,
                            PATH_MAX - 1);
  if (path[0] == '/')
    return avm_error_input (err, "%s: absolute path; refusing the host package", name);
  while ((n = next_comp (&p, &c)))
    {
      if (is_dotdot (c, n))
        return avm_error_input (err, "%s: path traversal (.. component); refusing the host package", name);
      if (n > NAME_MAX)
        return avm_error_input (err, "%s: a name longer than %d bytes; refusing the host package", name,
                                NAME_MAX);
      if (!*depth)
        {
          *top = c;
          *toplen = n;
        }
      ++*depth;
    }
  if (*depth > AVM_HOST_MAX_DEPTH)
    return avm_error_input (err, "%s: more than %d levels deep; refusing the host package", name,
                            AVM_HOST_MAX_DEPTH);
  return 0;
}

static int
check (struct avm_host_tally *t, const char *where, const char *path, bool dir, mode_t type, uint64_t size,
       const char *target, const char *hardlink, avm_error_t *err)
{
  size_t depth, toplen;
  const char *top;
  int r = check_path (where, path, path, dir, "", &depth, &top, &toplen, err);
  if (r < 0)
    return r;
  _cleanup_free_ char *name = entry_name (where, path, dir);
  if (!name)
    return avm_error_sys (err, ENOMEM, "%s", where);
  if (depth == 0)
    {
      if (type == S_IFDIR && !hardlink)
        return 0; /* "./": the root */
      return avm_error_input (err, "%s: not a name; refusing the host package", name);
    }
  if (top[0] == '.')
    return avm_error_input (err, "%s: hidden name %.*s at the top of the package (such names are avm's "
                                 "temporaries); refusing the host package",
                            name, (int) toplen, top);

  if (hardlink)
    {
      size_t hdepth, htoplen;
      const char *htop;
      if ((r = check_path (where, path, hardlink, dir, "a hard link to ", &hdepth, &htop, &htoplen, err)) < 0)
        return r;
      if (hdepth == 0)
        return avm_error_input (err, "%s: a hard link to the package's root; refusing the host package", name);
      size = 0; /* the data is the earlier entry's */
    }
  else if (type == S_IFLNK)
    {
      if (!target || !link_stays_inside (depth, target))
        return avm_error_input (err, "%s: symbolic link to %s, %s; refusing the host package", name,
                                target ? target : "nothing",
                                target && target[0] == '/' ? "an absolute path" : "out of the package");
      size = 0;
    }
  else if (type == S_IFDIR)
    size = 0;
  else if (type != S_IFREG)
    return avm_error_input (err, "%s is %s, not a host package file (only regular files, directories and links "
                                 "inside the package are taken); refusing the host package",
                            name, avm_file_kind (type));

  if (++t->entries > AVM_HOST_MAX_ENTRIES)
    return avm_error_input (err, "%s: more than %u entries; refusing the host package (a host package has some "
                                 "thousands)",
                            where, AVM_HOST_MAX_ENTRIES);
  if (size > AVM_HOST_MAX_BYTES || t->bytes + size > AVM_HOST_MAX_BYTES)
    return avm_error_input (err, "%s: more than %llu GiB of files (at entry %s, %" PRIu64 " bytes); refusing the "
                                 "host package (one is 1 to 2 GiB unpacked)",
                            where, AVM_HOST_MAX_BYTES >> 30, path, size);
  t->bytes += size;

  /* Its top-level name, once.  Archives list a directory's entries
     together: the last one added is the likely match.  */
  if (t->top.n && strncmp (t->top.v[t->top.n - 1], top, toplen) == 0 && t->top.v[t->top.n - 1][toplen] == '\0')
    return 0;
  for (size_t i = 0; i < t->top.n; i++)
    if (strncmp (t->top.v[i], top, toplen) == 0 && t->top.v[i][toplen] == '\0')
      return 0;
  if (t->top.n == MAX_TOP)
    return avm_error_input (err, "%s: more than %u entries at its top; refusing the host package", where, MAX_TOP);
  _cleanup_free_ char *copy = strndup (top, toplen);
  if (!copy || avm_argv_push (&t->top, copy) < 0)
    return avm_error_sys (err, ENOMEM, "%s", where);
  return 0;
}

bool
avm_host_is_root (const char *path)
{
  const char *p = path, *c;
  return next_comp (&p, &c) == 0;
}

int
avm_host_check (struct avm_host_tally *t, const char *where, const char *path, mode_t type, uint64_t size,
                const char *target, const char *hardlink, avm_error_t *err)
{
  return check (t, where, path, false, type, size, target, hardlink, err);
}

/* ---------------------------------------------------------------- */
/* Writing.  */

void
avm_host_writer_init (struct avm_host_writer *w, int root, const char *label)
{
  *w = (struct avm_host_writer){ .root = root, .label = label };
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
  size_t n = next_comp (&p, &c), n2;
  int fd = fcntl (w->root, F_DUPFD_CLOEXEC, 3);

  *out = -1;
  if (fd < 0)
    return avm_error_sys (err, errno, "%s", w->label);
  if (!n || n > NAME_MAX)
    {
      close (fd);
      return avm_error_input (err, "%s: entry %s: not a name", w->label, path);
    }
  while ((n2 = next_comp (&p, &c2)))
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
        return avm_error_input (err, "%s: entry %s: %.*s is not a directory (a symbolic link or a file is in the "
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
    return avm_error_input (err, "%s: more than %llu GiB of files (at entry %s); refusing the host package",
                            w->label, AVM_HOST_MAX_BYTES >> 30, path);
  w->bytes += len;
  if (w->progress && len)
    w->progress (w->progress_data, len);
  return 0;
}

int
avm_host_file_done (struct avm_host_writer *w, const char *path, int fd, uint64_t size, mode_t mode,
                    avm_error_t *err)
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
    return avm_error_input (err, "%s: entry %s: a hard link to %s, which is not an earlier entry of the package; "
                                 "refusing the host package",
                            w->label, path, target);
  if (r < 0)
    return r;
  if (fstatat (tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return avm_error_sys (err, errno, "%s: entry %s: cannot read %s", w->label, path, target);
  if (S_ISDIR (st.st_mode))
    return avm_error_input (err, "%s: entry %s: a hard link to the directory %s; refusing the host package",
                            w->label, path, target);
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

/* ---------------------------------------------------------------- */
/* A directory input's host package.  */

struct walk
{
  const char *dir;
  dev_t skip_dev;
  ino_t skip_ino;
  struct avm_host_tally *t;
  struct avm_host_writer *w; /* NULL: check and count only */
  char rel[PATH_MAX];        /* the current entry's path in the tree */
};

static bool
skipped (const struct walk *k, const struct stat *st)
{
  return k->skip_ino && st->st_dev == k->skip_dev && st->st_ino == k->skip_ino;
}

/* Copy the regular file NAME of SFD (K->rel) with copy_file_range, which
   reflinks where the file system can; read and write where it cannot.  */
static int
copy_file (struct walk *k, int sfd, const char *name, avm_error_t *err)
{
  _cleanup_close_ int in = openat (sfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  struct stat st;
  int out = -1, r;
  if (in < 0 || fstat (in, &st) < 0)
    return avm_error_sys (err, errno, "cannot read %s/%s", k->dir, k->rel);
  if (!S_ISREG (st.st_mode))
    return avm_error_input (err, "%s/%s is %s, not a host package file; refusing the host package", k->dir, k->rel,
                            avm_file_kind (st.st_mode));
  if ((r = avm_host_put_file (k->w, k->rel, &out, err)) < 0)
    return r;
  uint64_t size = (uint64_t) st.st_size, done = 0;
  bool cfr = true;
  _cleanup_free_ char *buf = NULL;
  while (done < size)
    {
      size_t want = size - done < COPY_CHUNK ? (size_t) (size - done) : COPY_CHUNK;
      ssize_t n;
      if (cfr)
        {
          loff_t ioff = (loff_t) done, ooff = (loff_t) done;
          n = copy_file_range (in, &ioff, out, &ooff, want, 0);
          if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP
                        || errno == ENOTSUP || errno == EBADF || errno == ETXTBSY))
            {
              cfr = false;
              continue;
            }
        }
      else
        {
          if (!buf && !(buf = malloc (1 << 20)))
            {
              close (out);
              return avm_error_sys (err, ENOMEM, "%s/%s", k->dir, k->rel);
            }
          if (want > (1 << 20))
            want = 1 << 20;
          n = pread (in, buf, want, (off_t) done);
          for (ssize_t w = 0; n > 0 && w < n;)
            {
              ssize_t m = pwrite (out, buf + w, (size_t) (n - w), (off_t) (done + (uint64_t) w));
              if (m < 0 && errno == EINTR)
                continue;
              if (m <= 0)
                {
                  int e = m < 0 ? errno : ENOSPC;
                  close (out);
                  return avm_error_sys (err, e, "%s: entry %s: cannot write it", k->w->label, k->rel);
                }
              w += m;
            }
        }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int e = errno;
          close (out);
          return avm_error_sys (err, e, "cannot copy %s/%s", k->dir, k->rel);
        }
      if (n == 0)
        {
          close (out);
          return avm_error_input (err, "%s/%s: shorter than it was (%" PRIu64 " bytes): changed during the "
                                       "conversion",
                                  k->dir, k->rel, size);
        }
      done += (uint64_t) n;
      if ((r = avm_host_wrote (k->w, k->rel, (uint64_t) n, err)) < 0)
        {
          close (out);
          return r;
        }
    }
  return avm_host_file_done (k->w, k->rel, out, size, st.st_mode, err);
}

static int walk_dir (struct walk *k, int sfd, avm_error_t *err);

/* The entry NAME of the directory SFD, whose path in the tree is K->rel.  */
static int
walk_one (struct walk *k, int sfd, const char *name, avm_error_t *err)
{
  struct stat st;
  char target[PATH_MAX];
  const char *tp = NULL;
  int r;

  if (fstatat (sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return avm_error_sys (err, errno, "cannot read %s/%s", k->dir, k->rel);
  if (S_ISDIR (st.st_mode) && skipped (k, &st))
    return 0;
  if (S_ISLNK (st.st_mode))
    {
      ssize_t n = readlinkat (sfd, name, target, sizeof target - 1);
      if (n < 0)
        return avm_error_sys (err, errno, "cannot read the link %s/%s", k->dir, k->rel);
      target[n] = '\0';
      tp = target;
    }
  if ((r = check (k->t, k->dir, k->rel, true, st.st_mode & S_IFMT, S_ISREG (st.st_mode) ? (uint64_t) st.st_size : 0,
                  tp, NULL, err))
      < 0)
    return r;
  if (S_ISDIR (st.st_mode))
    {
      if (k->w && (r = avm_host_put_dir (k->w, k->rel, st.st_mode, err)) < 0)
        return r;
      _cleanup_close_ int sub = openat (sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0)
        return avm_error_sys (err, errno, "cannot read %s/%s", k->dir, k->rel);
      return walk_dir (k, sub, err);
    }
  if (!k->w)
    return 0;
  if (S_ISLNK (st.st_mode))
    return avm_host_put_symlink (k->w, k->rel, target, err);
  return copy_file (k, sfd, name, err);
}

static int
walk_dir (struct walk *k, int sfd, avm_error_t *err)
{
  int fd = fcntl (sfd, F_DUPFD_CLOEXEC, 3);
  _cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  size_t base = strlen (k->rel);
  struct dirent *e;
  int r = 0;

  if (!d)
    {
      int saved = errno;
      if (fd >= 0)
        close (fd);
      return avm_error_sys (err, saved, "cannot read %s/%s", k->dir, k->rel);
    }
  while (r == 0 && (errno = 0, e = readdir (d)))
    {
      if (streq (e->d_name, ".") || streq (e->d_name, ".."))
        continue;
      if (base + 1 + strlen (e->d_name) >= sizeof k->rel)
        return avm_error_input (err, "%s/%s/%s: a path longer than %zu bytes; refusing the host package", k->dir,
                                k->rel, e->d_name, sizeof k->rel - 1);
      snprintf (k->rel + base, sizeof k->rel - base, "/%s", e->d_name);
      r = walk_one (k, dirfd (d), e->d_name, err);
      k->rel[base] = '\0';
    }
  if (r == 0 && errno)
    r = avm_error_sys (err, errno, "cannot read %s/%s", k->dir, k->rel);
  return r;
}

/* Is TARGET, a link at the top of DFD, a directory reached through real
   directories only (no link followed)?  */
static bool
link_to_dir (int dfd, const char *target)
{
  const char *p = target, *c;
  size_t n;
  int fd = fcntl (dfd, F_DUPFD_CLOEXEC, 3);
  while (fd >= 0 && (n = next_comp (&p, &c)))
    {
      char comp[NAME_MAX + 1];
      if (n > NAME_MAX)
        {
          close (fd);
          return false;
        }
      memcpy (comp, c, n);
      comp[n] = '\0';
      int sub = openat (fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      close (fd);
      fd = sub;
    }
  if (fd < 0)
    return false;
  close (fd);
  return true;
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The host package's entries at the top of DIR (hosttree.h), sorted.  */
static int
top_entries (struct walk *k, int dfd, struct avm_argv *names, avm_error_t *err)
{
  int fd = fcntl (dfd, F_DUPFD_CLOEXEC, 3);
  _cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *e;
  if (!d)
    {
      int saved = errno;
      if (fd >= 0)
        close (fd);
      return avm_error_sys (err, saved, "cannot read %s", k->dir);
    }
  while ((errno = 0, e = readdir (d)))
    {
      struct stat st;
      char target[PATH_MAX];
      if (e->d_name[0] == '.' || strncmp (e->d_name, "cuttlefish", 10) == 0)
        continue;
      if (fstatat (dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return avm_error_sys (err, errno, "cannot read %s/%s", k->dir, e->d_name);
      if (S_ISDIR (st.st_mode) && skipped (k, &st))
        continue;
      if (S_ISLNK (st.st_mode))
        {
          ssize_t n = readlinkat (dfd, e->d_name, target, sizeof target - 1);
          if (n < 0)
            return avm_error_sys (err, errno, "cannot read the link %s/%s", k->dir, e->d_name);
          target[n] = '\0';
          if (!link_stays_inside (1, target) || !link_to_dir (dfd, target))
            continue;
        }
      else if (!S_ISDIR (st.st_mode))
        continue;
      if (avm_argv_push (names, e->d_name) < 0)
        return avm_error_sys (err, ENOMEM, "%s", k->dir);
    }
  if (errno)
    return avm_error_sys (err, errno, "cannot read %s", k->dir);
  if (names->n)
    qsort (names->v, names->n, sizeof *names->v, cmp_str);
  return 0;
}

static int
walk_top (struct walk *k, char *const *top, avm_error_t *err)
{
  _cleanup_close_ int dfd = open (k->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct avm_argv found = { 0 };
  int r = 0;
  if (dfd < 0)
    return avm_error_sys (err, errno, "cannot read %s", k->dir);
  if (!top)
    {
      if ((r = top_entries (k, dfd, &found, err)) < 0)
        {
          avm_argv_clear (&found);
          return r;
        }
      top = found.v;
    }
  for (size_t i = 0; r == 0 && top && top[i]; i++)
    {
      snprintf (k->rel, sizeof k->rel, "%s", top[i]);
      r = walk_one (k, dfd, top[i], err);
    }
  avm_argv_clear (&found);
  return r;
}

int
avm_host_dir_scan (const char *dir, dev_t skip_dev, ino_t skip_ino, struct avm_host_tally *t, avm_error_t *err)
{
  struct walk *k = calloc (1, sizeof *k);
  if (!k)
    return avm_error_sys (err, ENOMEM, "%s", dir);
  *k = (struct walk){ .dir = dir, .skip_dev = skip_dev, .skip_ino = skip_ino, .t = t };
  int r = walk_top (k, NULL, err);
  free (k);
  return r;
}

int
avm_host_dir_copy (const char *dir, dev_t skip_dev, ino_t skip_ino, char *const *top, struct avm_host_writer *w,
                   avm_error_t *err)
{
  struct avm_host_tally t = { 0 };
  struct walk *k = calloc (1, sizeof *k);
  if (!k)
    return avm_error_sys (err, ENOMEM, "%s", dir);
  /* Checked again as it is copied: the directory may have changed since
     it was scanned.  */
  *k = (struct walk){ .dir = dir, .skip_dev = skip_dev, .skip_ino = skip_ino, .t = &t, .w = w };
  int r = walk_top (k, top ? top : (char *const[]){ NULL }, err);
  free (k);
  avm_host_tally_clear (&t);
  return r;
}
