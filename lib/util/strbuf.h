/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A growing NUL-terminated string, for building strings piece by piece on
 * paths that run often (variable expansion, every argument of every child).
 * Written by hand because open_memstream, the libc way, starts each string
 * with a zeroed 8 KiB buffer: that was the largest single cost of a dry run.
 * An allocation failure is remembered and reported once, by steal.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct avm_strbuf
{
  char *s;
  size_t len, cap;
  bool oom;
};

void avm_strbuf_add (struct avm_strbuf *b, const char *p, size_t n);
void avm_strbuf_adds (struct avm_strbuf *b, const char *s);
void avm_strbuf_addf (struct avm_strbuf *b, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* ITEM, after SEP unless B is still empty: for lists of names.  */
void avm_strbuf_join (struct avm_strbuf *b, const char *sep, const char *item);
/* The string (malloc'd, "" when nothing was added), or NULL when out of
   memory; B is empty afterwards.  */
char *avm_strbuf_steal (struct avm_strbuf *b);
void avm_strbuf_free (struct avm_strbuf *b);
#define _cleanup_strbuf_ __attribute__ ((cleanup (avm_strbuf_free)))
