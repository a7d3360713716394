/* SPDX-License-Identifier: Apache-2.0 */
#include "util/strv.h"
#include "util/strbuf.h"
#include "util/cleanup.h"
#include "util/analyzer.h"
#include "util/strfmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* make lint: false positive: S is stored in A->v, which the analyzer does not
   follow when A->v was reallocated.  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-malloc-leak")
int
avm_argv_push_take (struct avm_argv *a, char *s)
{
  if (!s)
    return -ENOMEM;
  if (a->n + 2 > a->alloc)
    {
      size_t alloc = a->alloc ? a->alloc * 2 : 16;
      char **v = realloc (a->v, alloc * sizeof *v);
      if (!v)
        {
          free (s);
          return -ENOMEM;
        }
      a->v = v;
      a->alloc = alloc;
    }
  a->v[a->n++] = s;
  a->v[a->n] = NULL;
  return 0;
}
AVM_ANALYZER_IGNORE_END

int
avm_argv_push (struct avm_argv *a, const char *s)
{
  return avm_argv_push_take (a, strdup (s));
}

int
avm_argv_pushf (struct avm_argv *a, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *s = avm_vstrdupf (fmt, ap);
  va_end (ap);
  return avm_argv_push_take (a, s);
}

char **
avm_argv_steal (struct avm_argv *a)
{
  char **v = a->v;
  if (!v)
    v = calloc (1, sizeof *v);
  a->v = NULL;
  a->n = a->alloc = 0;
  return v;
}

void
avm_argv_clear (struct avm_argv *a)
{
  avm_strv_free (a->v);
  a->v = NULL;
  a->n = a->alloc = 0;
}

size_t
avm_strv_length (char *const *v)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

void
avm_strv_free (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

void
avm_strv_freep (char ***v)
{
  avm_strv_free (*v);
  *v = NULL;
}

char **
avm_strv_copy (char *const *v)
{
  struct avm_argv a = { 0 };
  for (size_t i = 0; v && v[i]; i++)
    if (avm_argv_push (&a, v[i]) < 0)
      {
        avm_argv_clear (&a);
        return NULL;
      }
  return avm_argv_steal (&a);
}

bool
avm_strv_contains (char *const *v, const char *s)
{
  for (size_t i = 0; v && v[i]; i++)
    if (streq (v[i], s))
      return true;
  return false;
}

char *
avm_strv_join_prose (char *const *v, size_t n)
{
  struct avm_strbuf b = { 0 };
  for (size_t i = 0; i < n; i++)
    avm_strbuf_join (&b, i + 1 == n ? " and " : ", ", v[i]);
  return avm_strbuf_steal (&b);
}
