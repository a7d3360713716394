/* SPDX-License-Identifier: Apache-2.0 */
#include "util/fs.h"
#include "util/cleanup.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int
avm_read_file (const char *path, char **out, size_t *len, avm_error_t *err)
{
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC);
  _cleanup_free_ char *buf = NULL;
  size_t size = 0, alloc = 0;

  if (fd < 0)
    return avm_error_sys (err, errno, "cannot open %s", path);
  for (;;)
    {
      if (alloc - size < 4096)
        {
          alloc = alloc ? alloc * 2 : 8192;
          char *n = realloc (buf, alloc);
          if (!n)
            return avm_error_sys (err, ENOMEM, "reading %s", path);
          buf = n;
        }
      ssize_t r = read (fd, buf + size, alloc - size - 1);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          return avm_error_sys (err, errno, "cannot read %s", path);
        }
      if (r == 0)
        break;
      size += r;
    }
  buf[size] = '\0';
  if (len)
    *len = size;
  *out = steal_pointer (&buf);
  return 0;
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
