/* SPDX-License-Identifier: Apache-2.0 */
#include "supervise/ready.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* __SO_ACCEPTCON in the Flags column: the socket is listening.  */
#define SO_ACCEPTCON_FLAG 0x10000UL

bool
avm_unix_listening_in (const char *text, const char *path)
{
  size_t plen = strlen (path);
  for (const char *line = text; line && *line;)
    {
      const char *nl = strchr (line, '\n');
      size_t len = nl ? (size_t) (nl - line) : strlen (line);
      unsigned long refs, proto, flags, type, st, inode;
      char num[32];
      int consumed = 0;
      /* "Num RefCount Protocol Flags Type St Inode Path" (first line is a header).  */
      if (sscanf (line, "%31s %lx %lx %lx %lx %lx %lu %n", num, &refs, &proto, &flags, &type, &st, &inode, &consumed) == 7
          && consumed > 0 && (size_t) consumed <= len)
        {
          const char *p = line + consumed;
          size_t rest = len - consumed;
          while (rest && p[rest - 1] == ' ')
            rest--;
          if ((flags & SO_ACCEPTCON_FLAG) && rest == plen && memcmp (p, path, plen) == 0)
            return true;
        }
      line = nl ? nl + 1 : NULL;
    }
  return false;
}

bool
avm_unix_listening (const char *path)
{
  _cleanup_free_ char *text = NULL;
  avm_error_t err = NULL;
  if (avm_read_file ("/proc/net/unix", &text, NULL, &err) < 0)
    {
      avm_error_free (err);
      return false;
    }
  return avm_unix_listening_text (text, path);
}

bool
avm_unix_listening_text (const char *text, const char *path)
{
  if (avm_unix_listening_in (text, path))
    return true;
  /* The kernel shows the path as given to bind(): try the canonical one.  */
  _cleanup_free_ char *real = realpath (path, NULL);
  return real && strcmp (real, path) != 0 && avm_unix_listening_in (text, real);
}

bool
avm_file_ready (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0;
}
