/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Profile variables: ${name} in strings is replaced by avm (never by a
 * shell).  "$$" is a literal '$'.  ${fd:NAME} names an inherited file
 * descriptor of a resource and is kept for the supervisor to fill in; the
 * LOOKUP callback may still check that NAME exists.
 */
#pragma once

#include "util/error.h"

#include <stdbool.h>
#include <stddef.h>

struct avm_var
{
  const char *name;
  const char *value;
};

struct avm_vars
{
  const struct avm_var *vars;
  size_t n;
  const struct avm_vars *parent; /* outer scope (e.g. profile variables below service variables) */
  /* Called for ${ns:arg} references: set *REPLACEMENT (malloc'd) to
     substitute it, or leave it NULL to keep the reference as written;
     return 0 or an error.  NULL: such references are errors.  */
  int (*lookup_ns) (void *data, const char *ns, const char *arg, const char *where, char **replacement,
                    avm_error_t *err);
  void *data;
  /* For an argument the supervisor expands again (${fd:NAME}): every literal
     '$' of the result is written "$$", so that only the references kept
     as written are descriptor references (a directory named "${fd:x}"
     stays a name).  Only the outermost scope's flag counts.  */
  bool keep_dollar;
};

/* Expand IN into *OUT (malloc'd).  WHERE names the key for messages
   ("profiles/x.json: services.gpu.exec[2]").  */
int avm_vars_expand (const struct avm_vars *vars, const char *in, const char *where, char **out, avm_error_t *err);

/* An argument the supervisor expands (written with keep_dollar): split into
   literal text ("$$" read as '$', any other '$' as it is) and ${fd:NAME}
   descriptor references, FN called for each piece in order (consecutive
   literal text as one piece).  The one reader of "${fd:" references:
   -EINVAL for an unterminated one, else FN's first error, else 0.  */
typedef int (*avm_vars_piece_fn) (void *data, const char *text, size_t len, bool fd);
int avm_vars_split_fd (const char *arg, avm_vars_piece_fn fn, void *data);
