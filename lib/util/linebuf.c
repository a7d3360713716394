/* SPDX-License-Identifier: Apache-2.0 */
#include "util/linebuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
avm_linebuf_reserve (struct avm_linebuf *lb, size_t n, char **tail)
{
  if (lb->alloc - lb->len < n && lb->pos > 0)
    {
      /* Consumed lines go first: the pending bytes move to the front.  */
      memmove (lb->buf, lb->buf + lb->pos, lb->len - lb->pos);
      lb->len -= lb->pos;
      lb->scanned -= lb->pos;
      lb->pos = 0;
    }
  if (lb->alloc - lb->len < n)
    {
      size_t want = lb->alloc ? lb->alloc : 4096;
      while (want - lb->len < n)
        {
          if (want > ((size_t) -1) / 2)
            return -ENOMEM;
          want *= 2;
        }
      char *p = realloc (lb->buf, want);
      if (!p)
        return -ENOMEM;
      lb->buf = p;
      lb->alloc = want;
    }
  *tail = lb->buf + lb->len;
  return 0;
}

void
avm_linebuf_commit (struct avm_linebuf *lb, size_t n)
{
  lb->len += n;
}

int
avm_linebuf_append (struct avm_linebuf *lb, const void *data, size_t n)
{
  char *tail;
  int r = avm_linebuf_reserve (lb, n, &tail);
  if (r < 0)
    return r;
  if (n)
    memcpy (tail, data, n);
  avm_linebuf_commit (lb, n);
  return 0;
}

int
avm_linebuf_next (struct avm_linebuf *lb, const char **line, size_t *len)
{
  /* (buf is NULL until the first byte arrives: no arithmetic on it then.)  */
  char *nl = lb->scanned < lb->len ? memchr (lb->buf + lb->scanned, '\n', lb->len - lb->scanned) : NULL;
  if (!nl)
    {
      lb->scanned = lb->len;
      /* + 1: the line may still turn out to end with "\r\n".  */
      if (lb->len - lb->pos > lb->max_line + 1)
        return -EMSGSIZE;
      if (lb->pos == lb->len)
        lb->pos = lb->len = lb->scanned = 0; /* all consumed: start over at the front */
      return 0;
    }
  char *start = lb->buf + lb->pos;
  size_t n = nl - start;
  lb->pos += n + 1;
  lb->scanned = lb->pos;
  if (n > 0 && start[n - 1] == '\r')
    n--;
  if (n > lb->max_line)
    return -EMSGSIZE;
  *line = start;
  *len = n;
  return 1;
}

size_t
avm_linebuf_pending (const struct avm_linebuf *lb)
{
  return lb->len - lb->pos;
}

void
avm_linebuf_free (struct avm_linebuf *lb)
{
  free (lb->buf);
  lb->buf = NULL;
  lb->pos = lb->len = lb->alloc = lb->scanned = 0;
}
