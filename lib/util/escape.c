/* SPDX-License-Identifier: Apache-2.0 */
#include "util/escape.h"
#include "util/strbuf.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at S (N bytes left), 0 if it is not
   one.  Overlong forms, surrogates and code points past U+10FFFF are not.  */
static size_t
utf8_len (const unsigned char *s, size_t n)
{
  unsigned char c = s[0];
  size_t len;
  unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
  if (c >= 0xc2 && c <= 0xdf)
    len = 2;
  else if (c >= 0xe0 && c <= 0xef)
    {
      len = 3;
      if (c == 0xe0)
        lo = 0xa0;
      else if (c == 0xed)
        hi = 0x9f;
    }
  else if (c >= 0xf0 && c <= 0xf4)
    {
      len = 4;
      if (c == 0xf0)
        lo = 0x90;
      else if (c == 0xf4)
        hi = 0x8f;
    }
  else
    return 0;
  if (n < len || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  return len;
}

size_t
avm_escape_span (const char *str, size_t n, size_t *ok)
{
  const unsigned char *s = (const unsigned char *) str;
  unsigned char c = s[0];
  *ok = 0;
  if (c < 0x80)
    {
      if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
        return 1;
      *ok = 1;
      return 0;
    }
  size_t len = utf8_len (s, n);
  if (len == 0)
    return 1;
  if (len == 2 && c == 0xc2 && s[1] <= 0x9f)
    return 2; /* C1 control */
  *ok = len;
  return 0;
}

bool
avm_needs_escape (const char *s, size_t n)
{
  for (size_t i = 0; i < n;)
    {
      size_t ok;
      if (avm_escape_span (s + i, n - i, &ok))
        return true;
      i += ok;
    }
  return false;
}

static void
escape_into (struct avm_strbuf *b, const char *s, size_t n)
{
  const unsigned char *p = (const unsigned char *) s;
  size_t i = 0, run = 0;
  while (i < n)
    {
      size_t ok, bad = avm_escape_span (s + i, n - i, &ok);
      if (!bad)
        {
          i += ok;
          continue;
        }
      avm_strbuf_add (b, s + run, i - run);
      for (size_t k = 0; k < bad; k++)
        avm_strbuf_addf (b, "\\x%02x", p[i + k]);
      i += bad;
      run = i;
    }
  avm_strbuf_add (b, s + run, n - run);
}

char *
avm_escape_n (const char *s, size_t n)
{
  struct avm_strbuf b = { 0 };
  escape_into (&b, s, n);
  return avm_strbuf_steal (&b);
}

char *
avm_escape (const char *s)
{
  return avm_escape_n (s, strlen (s));
}

void
avm_fput_escaped (FILE *out, const char *s, size_t n)
{
  if (!avm_needs_escape (s, n))
    {
      fwrite (s, 1, n, out);
      return;
    }
  char *e = avm_escape_n (s, n);
  if (e)
    fputs (e, out);
  free (e);
}

int
avm_vfprintf_escaped (FILE *out, const char *fmt, va_list ap)
{
  char *s = NULL;
  int n = vasprintf (&s, fmt, ap);
  if (n < 0)
    return n;
  avm_fput_escaped (out, s, (size_t) n);
  free (s);
  return n;
}

int
avm_fprintf_escaped (FILE *out, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  int n = avm_vfprintf_escaped (out, fmt, ap);
  va_end (ap);
  return n;
}
