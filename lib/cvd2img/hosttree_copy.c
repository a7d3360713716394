/* SPDX-License-Identifier: Apache-2.0 */
/* A directory input's host package (hosttree.h): scanned and counted, or
   copied through a writer, under the same policy as the tarball's.  */
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

/* copy_file_range at most this much at a time (progress keeps moving).  */
#define COPY_CHUNK (16u << 20)

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
          if (n < 0
              && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == ENOTSUP
                  || errno == EBADF || errno == ETXTBSY))
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
          return avm_error_input (err,
                                  "%s/%s: shorter than it was (%" PRIu64 " bytes): changed during the "
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
  if ((r = avm_host_check_entry (k->t, k->dir, k->rel, true, st.st_mode & S_IFMT,
                                 S_ISREG (st.st_mode) ? (uint64_t) st.st_size : 0, tp, NULL, err))
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
  while (fd >= 0 && (n = avm_host_next_comp (&p, &c)))
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
          if (!avm_host_link_stays_inside (1, target) || !link_to_dir (dfd, target))
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
  *k = (struct walk) { .dir = dir, .skip_dev = skip_dev, .skip_ino = skip_ino, .t = t };
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
  *k = (struct walk) { .dir = dir, .skip_dev = skip_dev, .skip_ino = skip_ino, .t = &t, .w = w };
  int r = walk_top (k, top ? top : (char *const[]) { NULL }, err);
  free (k);
  avm_host_tally_clear (&t);
  return r;
}
