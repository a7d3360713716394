/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --set parsing: every line of the input is one PATH=VALUE applied with
 * avm_profile_apply_set to a copy of the resolved aaos-x86_64 profile (or
 * to an empty object for lines after a line "!empty"), then the result is
 * validated in full, as avm_profile_load does.
 */
#include "fuzz.h"
#include "profile/profile.h"
#include "profile/schema.h"
#include "util/cleanup.h"
#include "util/json.h"

#include <string.h>

#define MAX_LINES 16

AVM_FUZZ_TARGET (set)
{
  static json_t *base;
  if (!base)
    {
      setenv ("AVM_DATA_DIR", avm_fuzz_srcdir (), 1);
      setenv ("XDG_CONFIG_HOME", avm_fuzz_tmpdir (), 1);
      struct avm_profile_request req = { .name = "aaos-x86_64" };
      _cleanup_error_ avm_error_t err = NULL;
      struct avm_profile *p = NULL;
      if (avm_profile_load (&req, &p, &err) < 0)
        {
          fprintf (stderr, "fuzz_set: %s\n", err->msg);
          abort ();
        }
      base = json_incref (p->json);
      avm_profile_free (p);
    }

  _cleanup_free_ char *text = malloc (size + 1);
  AVM_FUZZ_CHECK (text);
  memcpy (text, data, size);
  text[size] = '\0';

  _cleanup_json_ json_t *root = json_deep_copy (base);
  AVM_FUZZ_CHECK (root);
  _cleanup_error_ avm_error_t err = NULL;
  int r = 0;
  char *save = NULL;
  size_t n = 0;
  for (char *line = strtok_r (text, "\n", &save); line && n < MAX_LINES; line = strtok_r (NULL, "\n", &save), n++)
    {
      if (!strcmp (line, "!empty"))
        {
          json_decref (root);
          root = json_object ();
          continue;
        }
      r = avm_profile_apply_set (root, line, &err);
      avm_fuzz_check_err (r, &err);
    }
  r = avm_schema_validate (root, "fuzz.json", &err);
  avm_fuzz_check_err (r, &err);
  return 0;
}
