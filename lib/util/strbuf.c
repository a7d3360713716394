/* SPDX-License-Identifier: Apache-2.0 */
#include "util/strbuf.h"

#include <stdlib.h>
#include <string.h>

void
avm_strbuf_add (struct avm_strbuf *b, const char *p, size_t n)
{
  if (b->oom)
    return;
  if (!b->s || b->len + n + 1 > b->cap)
    {
      size_t cap = b->cap ? b->cap : 64;
      while (cap < b->len + n + 1)
        cap *= 2;
      char *s = realloc (b->s, cap);
      if (!s)
        {
          b->oom = true;
          return;
        }
      if (!b->s)
        s[0] = '\0';
      b->s = s;
      b->cap = cap;
    }
  memcpy (b->s + b->len, p, n);
  b->len += n;
  b->s[b->len] = '\0';
}

void
avm_strbuf_adds (struct avm_strbuf *b, const char *s)
{
  avm_strbuf_add (b, s, strlen (s));
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
