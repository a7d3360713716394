/* SPDX-License-Identifier: Apache-2.0 */
#include "util/json.h"
#include "util/strbuf.h"

char *
avm_json_keys_join (json_t *obj, const char *sep)
{
  struct avm_strbuf b = { 0 };
  const char *k;
  json_t *v;
  json_object_foreach (obj, k, v)
    avm_strbuf_join (&b, sep, k);
  return avm_strbuf_steal (&b);
}
