/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Committing a set of outputs as one (avm_out_commit_set; the protocol is
 * described in output.h): the marker files, the renames and exchanges,
 * trees included.
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
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
        return avm_error_input (err, "%s/%s: the tree has an entry of that name, which is the commit marker", t->dir,
                                name);
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
      r = outs[i]->tree ? tree_prepare (outs[i], err) : avm_out_sync_tmp (outs[i], err);
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
          r = avm_error_fail (err, EMFILE, "%s: more than %d directories in one set", outs[i]->path, AVM_OUT_MAX_OPEN);
          break;
        }
      dirs[ndirs] = (struct set_dir) { .path = outs[i]->dir, .fd = -1 };
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
          avm_out_live_remove (o->slot);
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
          avm_out_dispose (outs[i]);
        outs[i] = NULL;
      }
  return r;
}
