/* SPDX-License-Identifier: Apache-2.0 */
/* NULL-terminated string vectors (argv arrays) and a growable builder. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct avm_argv
{
  char **v; /* always NULL-terminated once anything was pushed */
  size_t n;
  size_t alloc;
};

int avm_argv_push (struct avm_argv *a, const char *s);
int avm_argv_pushf (struct avm_argv *a, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Take ownership of S.  */
int avm_argv_push_take (struct avm_argv *a, char *s);
/* Hand out the NULL-terminated vector; A is reset.  */
char **avm_argv_steal (struct avm_argv *a);
void avm_argv_clear (struct avm_argv *a);

size_t avm_strv_length (char *const *v);
void avm_strv_free (char **v);
char **avm_strv_copy (char *const *v);
bool avm_strv_contains (char *const *v, const char *s);

/* The N strings of V in prose: "a", "a and b", "a, b and c" (malloc'd;
   "" for none; NULL when out of memory).  */
char *avm_strv_join_prose (char *const *v, size_t n);
