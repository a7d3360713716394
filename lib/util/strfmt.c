/* SPDX-License-Identifier: Apache-2.0 */
#include "util/strfmt.h"

#include <stdio.h>

char *
avm_vstrdupf (const char *fmt, va_list ap)
{
  char *s = NULL;
  if (vasprintf (&s, fmt, ap) < 0)
    return NULL;
  return s;
}

char *
avm_strdupf (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *s = avm_vstrdupf (fmt, ap);
  va_end (ap);
  return s;
}

void
avm_format_bytes (uint64_t b, char *buf, size_t size)
{
  static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
  double v = b;
  int u = 0;
  while (v >= 1024 && u < 4)
    {
      v /= 1024;
      u++;
    }
  snprintf (buf, size, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}
