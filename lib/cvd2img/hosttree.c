/* SPDX-License-Identifier: Apache-2.0 */
/* The host package's tree (hosttree.h): its policy, checked entry by entry.
   The writer is in hosttree_write.c, a directory input's walk in
   hosttree_copy.c.  */
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

/* Top-level entries of one package (a host package has about ten): keeps
   the bookkeeping of distinct names linear.  */
#define MAX_TOP 1000u

void
avm_host_tally_clear (struct avm_host_tally *t)
{
  avm_argv_clear (&t->top);
  *t = (struct avm_host_tally) { 0 };
}

/* The next component of *P, skipping empty and "." ones; *P moves past it.
   Its length (0 at the end), *COMP its start.  */
size_t
avm_host_next_comp (const char **p, const char **comp)
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
bool
avm_host_link_stays_inside (size_t depth, const char *target)
{
  size_t up = depth ? depth - 1 : 0;
  bool down = false;
  const char *p = target, *c;
  size_t n;
  if (!*target || target[0] == '/')
    return false;
  while ((n = avm_host_next_comp (&p, &c)))
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
    return avm_error_input (err, "%s: a path longer than %d bytes; refusing the host package", name, PATH_MAX - 1);
  if (path[0] == '/')
    return avm_error_input (err, "%s: absolute path; refusing the host package", name);
  while ((n = avm_host_next_comp (&p, &c)))
    {
      if (is_dotdot (c, n))
        return avm_error_input (err, "%s: path traversal (.. component); refusing the host package", name);
      if (n > NAME_MAX)
        return avm_error_input (err, "%s: a name longer than %d bytes; refusing the host package", name, NAME_MAX);
      if (!*depth)
        {
          *top = c;
          *toplen = n;
        }
      ++*depth;
    }
  if (*depth > AVM_HOST_MAX_DEPTH)
    return avm_error_input (err, "%s: more than %d levels deep; refusing the host package", name, AVM_HOST_MAX_DEPTH);
  return 0;
}

int
avm_host_check_entry (struct avm_host_tally *t, const char *where, const char *path, bool dir, mode_t type,
                      uint64_t size, const char *target, const char *hardlink, avm_error_t *err)
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
    return avm_error_input (err,
                            "%s: hidden name %.*s at the top of the package (such names are avm's "
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
      if (!target || !avm_host_link_stays_inside (depth, target))
        return avm_error_input (err, "%s: symbolic link to %s, %s; refusing the host package", name,
                                target ? target : "nothing",
                                target && target[0] == '/' ? "an absolute path" : "out of the package");
      size = 0;
    }
  else if (type == S_IFDIR)
    size = 0;
  else if (type != S_IFREG)
    return avm_error_input (err,
                            "%s is %s, not a host package file (only regular files, directories and links "
                            "inside the package are taken); refusing the host package",
                            name, avm_file_kind (type));

  if (++t->entries > AVM_HOST_MAX_ENTRIES)
    return avm_error_input (err,
                            "%s: more than %u entries; refusing the host package (a host package has some "
                            "thousands)",
                            where, AVM_HOST_MAX_ENTRIES);
  if (size > AVM_HOST_MAX_BYTES || t->bytes + size > AVM_HOST_MAX_BYTES)
    return avm_error_input (err,
                            "%s: more than %llu GiB of files (at entry %s, %" PRIu64 " bytes); refusing the "
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
  return avm_host_next_comp (&p, &c) == 0;
}

int
avm_host_check (struct avm_host_tally *t, const char *where, const char *path, mode_t type, uint64_t size,
                const char *target, const char *hardlink, avm_error_t *err)
{
  return avm_host_check_entry (t, where, path, false, type, size, target, hardlink, err);
}
