/* SPDX-License-Identifier: Apache-2.0 */
#include "util/quote.h"

#include <stdlib.h>
#include <string.h>

static int
is_safe (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr ("_@%+=:,./-", c);
}

char *
avm_shell_quote (const char *s)
{
  size_t n = 0, quotes = 0;
  int safe = *s != '\0';
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
