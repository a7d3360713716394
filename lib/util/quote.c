/* SPDX-License-Identifier: Apache-2.0 */
#include "util/quote.h"
#include "util/escape.h"
#include "util/strbuf.h"

#include <stdlib.h>
#include <string.h>

static int
is_safe (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr ("_@%+=:,./-", c);
}

/* bash's $'...' with \xHH for what a terminal would act on (util/escape.h):
   a command line shown for review or copying never carries a raw escape
   sequence.  */
static char *
ansi_c_quote (const char *s)
{
  struct avm_strbuf b = { 0 };
  size_t n = strlen (s);
  avm_strbuf_adds (&b, "$'");
  for (size_t i = 0; i < n;)
    {
      size_t ok, bad = avm_escape_span (s + i, n - i, &ok);
      for (size_t k = 0; k < bad; k++)
        avm_strbuf_addf (&b, "\\x%02x", (unsigned char) s[i + k]);
      for (size_t k = 0; k < ok; k++)
        {
          char c = s[i + k];
          if (c == '\\' || c == '\'')
            avm_strbuf_add (&b, "\\", 1);
          if (c == '\t' || c == '\n')
            avm_strbuf_adds (&b, c == '\t' ? "\\t" : "\\n");
          else
            avm_strbuf_add (&b, &c, 1);
        }
      i += bad + ok;
    }
  avm_strbuf_adds (&b, "'");
  return avm_strbuf_steal (&b);
}

char *
avm_shell_quote (const char *s)
{
  size_t n = 0, quotes = 0;
  int safe = *s != '\0';
  if (avm_needs_escape (s, strlen (s)))
    return ansi_c_quote (s);
  for (const char *p = s; *p; p++, n++)
    {
      safe &= is_safe (*p);
      quotes += *p == '\'';
    }
  if (safe)
    return strdup (s);
  char *out = malloc (n + quotes * 3 + 3), *o = out;
  if (!out)
    return NULL;
  *o++ = '\'';
  for (const char *p = s; *p; p++)
    {
      if (*p == '\'')
        {
          memcpy (o, "'\\''", 4);
          o += 4;
        }
      else
        *o++ = *p;
    }
  *o++ = '\'';
  *o = '\0';
  return out;
}

char *
avm_qemu_escape (const char *s)
{
  size_t n = strlen (s), commas = 0;
  for (const char *p = s; *p; p++)
    commas += *p == ',';
  char *out = malloc (n + commas + 1), *o = out;
  if (!out)
    return NULL;
  for (const char *p = s; *p; p++)
    {
      *o++ = *p;
      if (*p == ',')
        *o++ = ',';
    }
  *o = '\0';
  return out;
}
