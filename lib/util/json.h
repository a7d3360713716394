/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <jansson.h>

/* jansson >= 2.9 provides json_decrefp for the cleanup attribute.  */
#define _cleanup_json_ __attribute__ ((cleanup (json_decrefp)))

/* The keys of object OBJ joined with SEP, in order (malloc'd; "" for none
   or not an object; NULL when out of memory).  */
char *avm_json_keys_join (json_t *obj, const char *sep);
