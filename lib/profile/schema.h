/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device-profile schema: one declarative table drives validation
 * (types, ranges, enums, unknown keys), default values, --set path
 * resolution and the key reference (`avm profiles keys`, avm-profile(5)).
 */
#pragma once

#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

enum avm_stype
{
  AVM_ST_OBJECT, /* fixed keys (sub = NULL-name-terminated key list) */
  AVM_ST_MAP,    /* free keys, each value of schema sub[0] */
  AVM_ST_ARRAY,  /* elements of schema sub[0] */
  AVM_ST_STRING,
  AVM_ST_INT, /* min..max */
  AVM_ST_BOOL,
  AVM_ST_ENUM,      /* one of values[] */
  AVM_ST_ENUM_LIST, /* a value of values[] or an array of them (normalised to an array) */
  AVM_ST_SIZE_MIB,  /* integer MiB or "4G"/"512M"/"4096MiB" (normalised to integer MiB) */
};

enum
{
  AVM_SF_REQUIRED = 1 << 0,
  AVM_SF_NAME = 1 << 1,     /* string of [A-Za-z0-9_-], 1..63 chars (also map keys) */
  AVM_SF_TEXT = 1 << 2,     /* string without control characters */
  AVM_SF_FLATKEYS = 1 << 3, /* map whose keys may contain dots (--set takes the rest of the path) */
  AVM_SF_PROPKEY = 1 << 4,  /* map keys are [A-Za-z0-9_.-]+ (boot properties) */
  AVM_SF_NOTEMPTY = 1 << 5, /* string or array must not be empty */
  AVM_SF_PORTNAME = 1 << 6, /* a name that may also hold dots, not first (org.qemu.guest_agent.0), 1..63 chars */
};

struct avm_skey
{
  const char *name;
  enum avm_stype type;
  const struct avm_skey *sub;
  long long min, max;
  const char *const *values;
  const char *def; /* default value as JSON text, or NULL */
  unsigned flags;
  const char *doc;
};

/* The root of the profile schema.  */
const struct avm_skey *avm_profile_schema (void);

/* Find the child KEY of object/map/array schema S (array/map: the element).  */
const struct avm_skey *avm_skey_child (const struct avm_skey *s, const char *key);

/* Validate ROOT in place against the schema: fill in defaults, normalise
   sizes and enum lists, and append one error line per problem to ERR as
   "FILE: PATH: problem".  Returns 0 or -EINVAL (all problems reported).  */
int avm_schema_validate (json_t *root, const char *file, avm_error_t *err);

/* Check a fragment V of schema S at PATH: unknown keys and types only (no
   required keys, no defaults; null values are deletion markers).  Leaves are
   checked but not normalised.  */
int avm_schema_validate_fragment (json_t *v, const struct avm_skey *s, const char *file, const char *path,
                                  avm_error_t *err);

/* The default of key K (NULL if it has none or its text is not JSON).  */
json_t *avm_schema_default (const struct avm_skey *k);

/* Print every key as "path  type  default  doc" lines (for docs and tests).  */
void avm_schema_print_keys (FILE *out, bool with_docs);

/* avm_json_brief is in util/json.h, avm_closest in util/suggest.h.  */
