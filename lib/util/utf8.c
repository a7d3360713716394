/* SPDX-License-Identifier: Apache-2.0 */
#include "util/utf8.h"
#include "util/bytes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decode one UTF-8 character at S (strict: no overlong forms, no
   surrogates, nothing above U+10FFFF).  Returns its length or 0.  */
size_t
avm_utf8_decode (const unsigned char *s, uint32_t *cp)
{
  if (s[0] < 0x80)
    {
      *cp = s[0];
      return 1;
    }
  size_t len;
  uint32_t c, min;
  if ((s[0] & 0xE0) == 0xC0)
    len = 2, c = s[0] & 0x1F, min = 0x80;
  else if ((s[0] & 0xF0) == 0xE0)
    len = 3, c = s[0] & 0x0F, min = 0x800;
  else if ((s[0] & 0xF8) == 0xF0)
    len = 4, c = s[0] & 0x07, min = 0x10000;
  else
    return 0;
  for (size_t i = 1; i < len; i++)
    {
      if ((s[i] & 0xC0) != 0x80) /* also stops at the NUL */
        return 0;
      c = c << 6 | (s[i] & 0x3F);
    }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
    return 0;
  *cp = c;
  return len;
}

size_t
avm_utf8_encode (uint32_t c, char *out)
{
  if (c < 0x80)
    {
      out[0] = c;
      return 1;
    }
  if (c < 0x800)
    {
      out[0] = 0xC0 | c >> 6;
      out[1] = 0x80 | (c & 0x3F);
      return 2;
    }
  if (c < 0x10000)
    {
      out[0] = 0xE0 | c >> 12;
      out[1] = 0x80 | (c >> 6 & 0x3F);
      out[2] = 0x80 | (c & 0x3F);
      return 3;
    }
  out[0] = 0xF0 | c >> 18;
  out[1] = 0x80 | (c >> 12 & 0x3F);
  out[2] = 0x80 | (c >> 6 & 0x3F);
  out[3] = 0x80 | (c & 0x3F);
  return 4;
}

/* NAME (UTF-8) as UTF-16 code units; returns how many, or -1 when NAME is
   not valid UTF-8.  Stores at most MAX units in OUT (which may be NULL)
   but counts them all.  */
ssize_t
avm_utf8_to_utf16 (const char *name, uint16_t *out, size_t max)
{
  const unsigned char *s = (const unsigned char *) name;
  size_t n = 0;

  while (*s)
    {
      uint32_t c;
      size_t len = avm_utf8_decode (s, &c);
      if (len == 0)
        return -1;
      s += len;
      if (c >= 0x10000)
        {
          c -= 0x10000;
          if (out && n + 1 < max)
            {
              out[n] = 0xD800 | c >> 10;
              out[n + 1] = 0xDC00 | (c & 0x3FF);
            }
          n += 2;
        }
      else
        {
          if (out && n < max)
            out[n] = c;
          n++;
        }
    }
  return n;
}

/* NAME for an error message: invalid bytes and control characters as \xNN.  */
char *
avm_utf8_for_message (const char *name)
{
  size_t len = strlen (name);
  char *out = malloc (len * 4 + 1), *o = out;
  const unsigned char *s = (const unsigned char *) name;

  if (!out)
    return NULL;
  while (*s)
    {
      uint32_t c;
      size_t l = avm_utf8_decode (s, &c);
      if (l == 0 || *s < 0x20 || *s == 0x7F)
        {
          o += sprintf (o, "\\x%02X", *s);
          s++;
          continue;
        }
      memcpy (o, s, l);
      o += l;
      s += l;
    }
  *o = '\0';
  return out;
}

/* At most UNITS UTF-16LE code units at RAW (up to a NUL one) to UTF-8 in OUT.  */
int
avm_utf16le_to_utf8 (const uint8_t *raw, size_t units, char *out)
{
  size_t o = 0;

  for (size_t i = 0; i < units; i++)
    {
      uint32_t c = get_le16 (raw + 2 * i);
      if (c == 0)
        break;
      if (c >= 0xD800 && c <= 0xDBFF)
        {
          uint32_t lo = i + 1 < units ? get_le16 (raw + 2 * (i + 1)) : 0;
          if (lo < 0xDC00 || lo > 0xDFFF)
            return -1;
          c = 0x10000 + ((c - 0xD800) << 10 | (lo - 0xDC00));
          i++;
        }
      else if (c >= 0xDC00 && c <= 0xDFFF)
        return -1;
      o += avm_utf8_encode (c, out + o);
    }
  out[o] = '\0';
  return 0;
}
