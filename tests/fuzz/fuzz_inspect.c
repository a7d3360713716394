/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `avm inspect` on a whole disk image: the GPT, then per partition the
 * boot properties, the U-Boot environment and the AVB structures.  A
 * report must say "ok" and serialize.
 */
#include "fuzz.h"
#include "disk/inspect.h"
#include "util/cleanup.h"
#include "util/json.h"

AVM_FUZZ_TARGET (inspect)
{
  _cleanup_free_ char *path = avm_fuzz_write ("disk.img", data, size);
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_json_ json_t *report = NULL;
  int r = avm_inspect (path, &report, &err);
  avm_fuzz_check_err (r, &err);
  if (r == 0)
    {
      AVM_FUZZ_CHECK (json_is_object (report));
      AVM_FUZZ_CHECK (json_is_boolean (json_object_get (report, "ok")));
      _cleanup_free_ char *text = json_dumps (report, JSON_COMPACT);
      AVM_FUZZ_CHECK (text);
    }
  return 0;
}
