/* SPDX-License-Identifier: Apache-2.0 */
#include "util/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for N more bytes and the NUL.  */
static bool
reserve (struct avm_strbuf *b, size_t n)
{
  if (b->oom)
    return false;
  if (!b->s || b->len + n + 1 > b->cap)
    {
      size_t cap = b->cap ? b->cap : 64;
      while (cap < b->len + n + 1)
        cap *= 2;
      char *s = realloc (b->s, cap);
      if (!s)
        {
          b->oom = true;
          return false;
        }
      if (!b->s)
        s[0] = '\0';
      b->s = s;
      b->cap = cap;
    }
  return true;
}

void
avm_strbuf_add (struct avm_strbuf *b, const char *p, size_t n)
{
  if (!reserve (b, n))
    return;
  memcpy (b->s + b->len, p, n);
  b->len += n;
  b->s[b->len] = '\0';
}

void
avm_strbuf_adds (struct avm_strbuf *b, const char *s)
{
  avm_strbuf_add (b, s, strlen (s));
}

void
avm_strbuf_addf (struct avm_strbuf *b, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (NULL, 0, fmt, ap);
  va_end (ap);
  if (n < 0)
    b->oom = true;
  if (n < 0 || !reserve (b, (size_t) n))
    return;
  va_start (ap, fmt);
  vsnprintf (b->s + b->len, (size_t) n + 1, fmt, ap);
  va_end (ap);
  b->len += (size_t) n;
}

void
avm_strbuf_join (struct avm_strbuf *b, const char *sep, const char *item)
{
  if (b->len)
    avm_strbuf_adds (b, sep);
  avm_strbuf_adds (b, item);
}

char *
avm_strbuf_steal (struct avm_strbuf *b)
{
  avm_strbuf_add (b, "", 0); /* "" for an empty string */
  char *s = b->oom ? NULL : b->s;
  if (b->oom)
    free (b->s);
  *b = (struct avm_strbuf) { 0 };
  return s;
}

void
avm_strbuf_free (struct avm_strbuf *b)
{
  free (b->s);
  *b = (struct avm_strbuf) { 0 };
}
