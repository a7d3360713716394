/* SPDX-License-Identifier: Apache-2.0 */
#include "supervise/ready.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* __SO_ACCEPTCON in the Flags column: the socket is listening.  */
#define SO_ACCEPTCON_FLAG 0x10000UL

/* One line of /proc/net/unix, "Num RefCount Protocol Flags Type St Inode
   Path": the path of a listening socket (not NUL-terminated), or NULL.
   Hand-split rather than sscanf'd: a host has hundreds of unix sockets,
   and the supervisor reads the table every few milliseconds while helpers
   start.  */
static const char *
listening_path (const char *line, size_t len, size_t *plen)
{
  const char *p = line, *end = line + len;
  unsigned long flags = 0;
  for (int field = 0; field < 7; field++)
    {
      while (p < end && *p == ' ')
        p++;
      const char *start = p;
      while (p < end && *p != ' ')
        p++;
      if (p == start)
        return NULL; /* a short line (or the header's last fields) */
      if (field == 3)
        {
          char *stop;
          flags = strtoul (start, &stop, 16);
          if (stop != p)
            return NULL; /* the header line: "Flags" */
        }
    }
  if (!(flags & SO_ACCEPTCON_FLAG))
    return NULL;
  while (p < end && *p == ' ')
    p++;
  while (end > p && end[-1] == ' ')
    end--;
  if (p == end)
    return NULL; /* unnamed */
  *plen = (size_t) (end - p);
  return p;
}

void
avm_unix_listening_set (const char *text, const char *const *paths, size_t n, bool *found)
{
  for (const char *line = text; line && *line;)
    {
      const char *nl = strchr (line, '\n');
      size_t len = nl ? (size_t) (nl - line) : strlen (line), plen;
      const char *p = listening_path (line, len, &plen);
      for (size_t i = 0; p && i < n; i++)
        if (paths[i] && !found[i] && strncmp (p, paths[i], plen) == 0 && paths[i][plen] == '\0')
          found[i] = true;
      line = nl ? nl + 1 : NULL;
    }
}

bool
avm_unix_listening_in (const char *text, const char *path)
{
  bool found = false;
  avm_unix_listening_set (text, &path, 1, &found);
  return found;
}

int
avm_ready_canonical_path (const char *path, char **out)
{
  *out = NULL;
  _cleanup_free_ char *dir = strdup (path);
  char *slash = dir ? strrchr (dir, '/') : NULL;
  if (!dir)
    return -ENOMEM;
  if (!slash || slash == dir)
    return 0;
  *slash = '\0';
  _cleanup_free_ char *real = realpath (dir, NULL);
  if (!real)
    return -errno;
  char *joined = avm_path_join (real, slash + 1);
  if (!joined)
    return -ENOMEM;
  if (strcmp (joined, path) == 0)
    free (joined); /* already canonical */
  else
    *out = joined;
  return 0;
}

bool
avm_unix_listening_text (const char *text, const char *path)
{
  _cleanup_free_ char *real = NULL;
  avm_ready_canonical_path (path, &real);
  const char *paths[2] = { path, real };
  bool found[2] = { false, false };
  avm_unix_listening_set (text, paths, 2, found);
  return found[0] || found[1];
}

bool
avm_unix_listening (const char *path)
{
  _cleanup_free_ char *text = NULL;
  avm_error_t err = NULL;
  if (avm_read_file ("/proc/net/unix", AVM_PROC_NET_UNIX_MAX, "the socket table", &text, NULL, &err) < 0)
    {
      avm_error_free (err);
      return false;
    }
  return avm_unix_listening_text (text, path);
}

bool
avm_file_ready (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0;
}
