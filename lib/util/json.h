/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "util/error.h"

#include <jansson.h>
#include <stddef.h>

/* jansson >= 2.9 provides json_decrefp for the cleanup attribute.  */
#define _cleanup_json_ __attribute__ ((cleanup (json_decrefp)))

/* The keys of object OBJ joined with SEP, in order (malloc'd; "" for none
   or not an object; NULL when out of memory).  */
char *avm_json_keys_join (json_t *obj, const char *sep);

/* V rendered briefly for an error message: compact JSON ("2560", "\"x\"",
   [...]), cut to 56 characters and "..." when longer than 60 (malloc'd;
   "?" when V cannot be dumped, NULL only when out of memory).  */
char *avm_json_brief (const json_t *v);

/* Read a JSON file of at most MAX bytes as WHAT ("a profile"; see
   avm_read_file: only a regular file, else bad input); syntax errors name
   FILE:LINE:COLUMN (exit code 2).  0 and *OUT set (duplicate keys
   refused), or -errno with ERR filled.  */
int avm_json_load_file (const char *path, size_t max, const char *what, json_t **out, avm_error_t *err);

/* JSON merge patch (RFC 7386): returns the new target (TARGET is consumed).  */
json_t *avm_json_merge_patch (json_t *target, json_t *patch);

/* Split the next segment off the path *P ("a.b[2][\"c.d\"]"): a key
   (copied to KEY, at most KEYLEN - 1 bytes) or an index [N] (*INDEX).
   Returns 1 for a key, 2 for an index, 0 at the end, -1 for a malformed
   segment; *P moves past the segment.  */
int avm_json_path_next (const char **p, char *key, size_t keylen, long *index);

/* Look up "a.b[2].c" in ROOT (no schema involved): the node (borrowed), or
   NULL when absent or the path is malformed.  */
json_t *avm_json_path (json_t *root, const char *path);
