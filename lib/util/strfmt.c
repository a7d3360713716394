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
