/* SPDX-License-Identifier: Apache-2.0 */
#include "supervise/rundir.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Attempts when the directory or its lock file vanish under us (a
   concurrent release) or the lock is held by a process that is gone (a
   concurrent avm_rundir_holder probe).  */
#define ACQUIRE_ATTEMPTS 50

struct avm_rundir
{
  char *path;
  int dirfd;
  int lockfd;
};

int
avm_rundir_fd (const struct avm_rundir *d)
{
  return d ? d->dirfd : -1;
}

const char *
avm_rundir_path (const struct avm_rundir *d)
{
  return d ? d->path : NULL;
}

static void
short_sleep (void)
{
  struct timespec ts = { 0, 10 * 1000 * 1000 };
  nanosleep (&ts, NULL);
}

static int
remove_entries (int dirfd, const char *what, const char *keep, dev_t dev, int depth, avm_error_t *err)
{
  _cleanup_closedir_ DIR *dh = NULL;
  int fd = openat (dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct dirent *e;

  if (fd < 0)
    return avm_error_sys (err, errno, "cannot open %s", what);
  dh = fdopendir (fd);
  if (!dh)
    {
      int e2 = errno;
      close (fd);
      return avm_error_sys (err, e2, "cannot read %s", what);
    }
  if (depth > 64)
    return avm_error_fail (err, ELOOP, "%s: directories nested too deeply", what);
  for (;;)
    {
      errno = 0;
      e = readdir (dh);
      if (!e)
        {
          if (errno)
            return avm_error_sys (err, errno, "cannot read %s", what);
          break;
        }
      if (streq (e->d_name, ".") || streq (e->d_name, "..") || (keep && streq (e->d_name, keep)))
        continue;
      _cleanup_free_ char *sub = avm_path_join (what, e->d_name);
      struct stat st;
      if (!sub)
        return avm_error_sys (err, ENOMEM, "%s", what);
      if (fstatat (dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          if (errno == ENOENT)
            continue;
          return avm_error_sys (err, errno, "cannot stat %s", sub);
        }
      if (S_ISDIR (st.st_mode))
        {
          if (st.st_dev != dev)
            return avm_error_fail (err, EXDEV, "%s: a mount point, not removing it", sub);
          /* O_NOFOLLOW: a directory swapped for a symbolic link since the
             fstatat is refused, not entered.  */
          _cleanup_close_ int sfd = openat (dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          struct stat sst;
          if (sfd < 0)
            return avm_error_sys (err, errno, "cannot open %s", sub);
          if (fstat (sfd, &sst) < 0)
            return avm_error_sys (err, errno, "cannot stat %s", sub);
          if (sst.st_dev != st.st_dev || sst.st_ino != st.st_ino)
            return avm_error_fail (err, EBUSY, "%s: replaced while being removed", sub);
          int r = remove_entries (sfd, sub, NULL, dev, depth + 1, err);
          if (r < 0)
            return r;
          if (unlinkat (dirfd, e->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
            return avm_error_sys (err, errno, "cannot remove %s", sub);
        }
      else if (unlinkat (dirfd, e->d_name, 0) < 0 && errno != ENOENT)
        return avm_error_sys (err, errno, "cannot remove %s", sub);
    }
  return 0;
}

int
avm_rundir_empty_at (int dirfd, const char *what, const char *keep, avm_error_t *err)
{
  struct stat st;
  if (fstat (dirfd, &st) < 0)
    return avm_error_sys (err, errno, "cannot stat %s", what);
  if (!S_ISDIR (st.st_mode))
    return avm_error_fail (err, ENOTDIR, "%s: not a directory", what);
  return remove_entries (dirfd, what, keep, st.st_dev, 0, err);
}

/* The pid written in the lock file, 0 if none.  */
static pid_t
read_pid (int fd)
{
  char buf[32];
  ssize_t n = pread (fd, buf, sizeof buf - 1, 0);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  char *end;
  long v = strtol (buf, &end, 10);
  if (end == buf || v <= 0 || (*end && !isspace ((unsigned char) *end)))
    return 0;
  return (pid_t) v;
}

static bool
pid_alive (pid_t pid)
{
  return pid > 0 && (kill (pid, 0) == 0 || errno == EPERM);
}

static int
write_pid (int fd, const char *lockpath, avm_error_t *err)
{
  char buf[32];
  int len = snprintf (buf, sizeof buf, "%ld\n", (long) getpid ());
  if (ftruncate (fd, 0) < 0)
    return avm_error_sys (err, errno, "cannot write %s", lockpath);
  if (pwrite (fd, buf, len, 0) != len)
    return avm_error_sys (err, errno ? errno : EIO, "cannot write %s", lockpath);
  return 0;
}

/* The instance number from a path ending in /N, or NULL.  */
static const char *
instance_of (const char *path, char *buf, size_t size)
{
  size_t l = strlen (path);
  while (l > 1 && path[l - 1] == '/')
    l--;
  size_t s = l;
  while (s > 0 && path[s - 1] != '/')
    s--;
  if (s == l || l - s >= size)
    return NULL;
  for (size_t i = s; i < l; i++)
    if (!isdigit ((unsigned char) path[i]))
      return NULL;
  memcpy (buf, path + s, l - s);
  buf[l - s] = '\0';
  return buf;
}

static int
busy_error (const char *path, pid_t pid, avm_error_t *err)
{
  char nbuf[16], pbuf[32] = "pid unknown";
  const char *n = instance_of (path, nbuf, sizeof nbuf);
  if (pid > 0)
    snprintf (pbuf, sizeof pbuf, "pid %ld", (long) pid);
  if (n)
    return avm_error_fail (err, EBUSY,
                           "instance %s is already running (%s, runtime directory %s); stop it with "
                           "`avm stop --instance %s` or choose another --instance",
                           n, pbuf, path, n);
  return avm_error_fail (err, EBUSY, "runtime directory %s is in use (%s)", path, pbuf);
}

/* Check the directory open on FD: a directory of ours nobody else can
   write to.  */
static int
check_dir (int fd, const char *path, avm_error_t *err)
{
  struct stat st;
  if (fstat (fd, &st) < 0)
    return avm_error_sys (err, errno, "cannot stat %s", path);
  if (!S_ISDIR (st.st_mode))
    return avm_error_fail (err, ENOTDIR, "%s: not a directory", path);
  if (st.st_uid != geteuid ())
    return avm_error_fail (err, EPERM, "%s: owned by uid %u, not you", path, (unsigned) st.st_uid);
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return avm_error_fail (err, EPERM, "%s: mode %04o, must not be writable by others", path,
                           (unsigned) (st.st_mode & 07777));
  if ((st.st_mode & 07777) != 0700 && fchmod (fd, 0700) < 0)
    return avm_error_sys (err, errno, "cannot chmod %s", path);
  return 0;
}

/* The directory holding the instance directories (the base: /run/avm,
   $XDG_RUNTIME_DIR/avm, /tmp/avm-UID, $AVM_RUNTIME_DIR): whoever may write
   there may rename a live instance's directory away (avm status would then
   say "not running" and a second start would be allowed), so it must be
   the user's (or root's) and not writable by anyone else, unless it is
   root's and sticky (/tmp itself: nobody can rename another's entry).  */
static int
check_base (const char *base, avm_error_t *err)
{
  struct stat st;
  if (lstat (base, &st) < 0)
    return errno == ENOENT ? 0 : avm_error_sys (err, errno, "cannot stat %s", base);
  if (S_ISLNK (st.st_mode))
    return avm_error_fail (err, ELOOP, "%s: a symbolic link, refusing it as the base of runtime directories", base);
  if (!S_ISDIR (st.st_mode))
    return avm_error_fail (err, ENOTDIR, "%s: not a directory", base);
  bool sticky_root = st.st_uid == 0 && (st.st_mode & S_ISVTX);
  if ((st.st_uid != geteuid () && st.st_uid != 0) || ((st.st_mode & (S_IWGRP | S_IWOTH)) && !sticky_root))
    return avm_error_fail (err, EPERM,
                           "%s: owned by uid %u with mode %04o: another user could move the runtime directories "
                           "away; remove it, or set XDG_RUNTIME_DIR (or AVM_RUNTIME_DIR) to a directory of yours",
                           base, (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777));
  return 0;
}

/* PATH's parent, malloc'd ("/" for a top-level path).  */
static char *
parent_of (const char *path)
{
  char *p = strdup (path);
  if (!p)
    return NULL;
  char *slash = strrchr (p, '/');
  while (slash && slash > p && slash[1] == '\0')
    {
      *slash = '\0';
      slash = strrchr (p, '/');
    }
  if (slash == p)
    slash[1] = '\0';
  else if (slash)
    *slash = '\0';
  return p;
}

/* Open PATH as a directory without following a final symbolic link.  */
static int
open_dir (const char *path, int *out, avm_error_t *err)
{
  struct stat st;
  if (lstat (path, &st) < 0)
    return avm_error_sys (err, errno, "cannot stat %s", path);
  if (S_ISLNK (st.st_mode))
    return avm_error_fail (err, ELOOP, "%s: a symbolic link, refusing to use it as the runtime directory", path);
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ELOOP)
        return avm_error_fail (err, ELOOP, "%s: a symbolic link, refusing to use it as the runtime directory", path);
      return avm_error_sys (err, errno, "cannot open %s", path);
    }
  *out = fd;
  return 0;
}

/* Whether FD is still the directory at PATH and LOCKFD still DIR/lock.  */
static bool
still_linked (const char *path, int fd, int lockfd)
{
  struct stat a, b, c, d;
  if (lstat (path, &a) < 0 || fstat (fd, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
    return false;
  if (fstatat (fd, AVM_RUNDIR_LOCK, &c, AT_SYMLINK_NOFOLLOW) < 0 || fstat (lockfd, &d) < 0)
    return false;
  return c.st_dev == d.st_dev && c.st_ino == d.st_ino;
}

int
avm_rundir_acquire (const char *path, struct avm_rundir **out, avm_error_t *err)
{
  _cleanup_free_ char *parent = NULL, *lockpath = NULL;
  int r;

  *out = NULL;
  if (!path || !*path)
    return avm_error_input (err, "runtime directory: empty path");
  parent = strdup (path);
  lockpath = avm_path_join (path, AVM_RUNDIR_LOCK);
  if (!parent || !lockpath)
    return avm_error_sys (err, ENOMEM, "%s", path);
  char *slash = strrchr (parent, '/');
  while (slash && slash > parent && slash[1] == '\0')
    {
      *slash = '\0';
      slash = strrchr (parent, '/');
    }
  if (slash && slash > parent)
    {
      *slash = '\0';
      if ((r = avm_mkdir_p (parent, 0755, err)) < 0 || (r = check_base (parent, err)) < 0)
        return r;
    }

  for (int attempt = 0;; attempt++)
    {
      _cleanup_close_ int fd = -1, lockfd = -1;
      if (mkdir (path, 0700) < 0 && errno != EEXIST)
        return avm_error_sys (err, errno, "cannot create directory %s", path);
      if ((r = open_dir (path, &fd, err)) < 0)
        {
          if (r == -ENOENT && attempt < ACQUIRE_ATTEMPTS)
            continue;
          return r;
        }
      if ((r = check_dir (fd, path, err)) < 0)
        return r;
      lockfd = openat (fd, AVM_RUNDIR_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
      if (lockfd < 0)
        {
          /* ENOENT: the directory was removed by a concurrent release.  */
          if (errno == ENOENT && attempt < ACQUIRE_ATTEMPTS)
            continue;
          return avm_error_sys (err, errno, "cannot open %s", lockpath);
        }
      struct stat lst;
      if (fstat (lockfd, &lst) < 0)
        return avm_error_sys (err, errno, "cannot stat %s", lockpath);
      if (!S_ISREG (lst.st_mode) || lst.st_uid != geteuid ())
        return avm_error_fail (err, EPERM, "%s: not a regular file of yours", lockpath);
      if (flock (lockfd, LOCK_EX | LOCK_NB) < 0)
        {
          if (errno != EWOULDBLOCK)
            return avm_error_sys (err, errno, "cannot lock %s", lockpath);
          pid_t pid = read_pid (lockfd);
          /* A holder that is gone is a probe or a release in progress.  */
          if (!pid_alive (pid) && attempt < ACQUIRE_ATTEMPTS)
            {
              short_sleep ();
              continue;
            }
          return busy_error (path, pid, err);
        }
      if (!still_linked (path, fd, lockfd))
        {
          if (attempt < ACQUIRE_ATTEMPTS)
            continue;
          return avm_error_fail (err, EBUSY, "%s: removed and recreated while being locked", path);
        }
      if ((r = avm_rundir_empty_at (fd, path, AVM_RUNDIR_LOCK, err)) < 0)
        {
          avm_error_prefix (err, "stale runtime directory");
          return r;
        }
      if ((r = write_pid (lockfd, lockpath, err)) < 0)
        return r;

      struct avm_rundir *d = calloc (1, sizeof *d);
      if (!d || !(d->path = strdup (path)))
        {
          free (d);
          return avm_error_sys (err, ENOMEM, "%s", path);
        }
      d->dirfd = steal_fd (&fd);
      d->lockfd = steal_fd (&lockfd);
      *out = d;
      return 0;
    }
}

void
avm_rundir_close (struct avm_rundir *d)
{
  if (!d)
    return;
  if (d->dirfd >= 0)
    close (d->dirfd);
  if (d->lockfd >= 0)
    close (d->lockfd);
  free (d->path);
  free (d);
}

int
avm_rundir_release (struct avm_rundir *d, avm_error_t *err)
{
  int r;
  if (!d)
    return 0;
  r = avm_rundir_empty_at (d->dirfd, d->path, AVM_RUNDIR_LOCK, err);
  if (r == 0)
    {
      /* Lock file last: until it is gone, a concurrent acquire sees the
         instance running.  Once it is gone, an acquire may create a new one
         before the rmdir, which then fails with ENOTEMPTY: the directory is
         theirs now.  */
      if (unlinkat (d->dirfd, AVM_RUNDIR_LOCK, 0) < 0 && errno != ENOENT)
        r = avm_error_sys (err, errno, "cannot remove %s/%s", d->path, AVM_RUNDIR_LOCK);
      else
        {
          struct stat a, b;
          if (lstat (d->path, &a) == 0 && fstat (d->dirfd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino
              && rmdir (d->path) < 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST)
            r = avm_error_sys (err, errno, "cannot remove %s", d->path);
        }
    }
  avm_rundir_close (d);
  return r;
}

void
avm_rundir_releasep (struct avm_rundir **d)
{
  if (*d)
    avm_rundir_release (*d, NULL);
  *d = NULL;
}

int
avm_rundir_holder (const char *path, pid_t *pid, avm_error_t *err)
{
  _cleanup_free_ char *lockpath = avm_path_join (path, AVM_RUNDIR_LOCK);
  _cleanup_close_ int fd = -1;

  _cleanup_free_ char *base = parent_of (path);
  *pid = 0;
  if (!lockpath || !base)
    return avm_error_sys (err, ENOMEM, "%s", path);
  int r = check_base (base, err);
  if (r < 0)
    return r;
  fd = open (lockpath, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ENOENT || errno == ENOTDIR)
        return 0;
      return avm_error_sys (err, errno, "cannot open %s", lockpath);
    }
  if (flock (fd, LOCK_SH | LOCK_NB) == 0)
    return 0; /* closing FD drops the probe */
  if (errno != EWOULDBLOCK)
    return avm_error_sys (err, errno, "cannot lock %s", lockpath);
  *pid = read_pid (fd);
  return 1;
}
