/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Profile parsing and validation: the input is a profile file, optionally
 * followed by NUL-separated requests: "-NAME=CHOICE" an --option,
 * anything else a --set.  `extends` by name finds the shipped profiles
 * ($AVM_DATA_DIR is the source tree).
 */
#include "fuzz.h"
#include "profile/profile.h"
#include "profile/schema.h"
#include "util/cleanup.h"

#include <string.h>

#define MAX_REQUESTS 8

AVM_FUZZ_TARGET (profile)
{
  static bool init;
  if (!init)
    {
      setenv ("AVM_DATA_DIR", avm_fuzz_srcdir (), 1);
      setenv ("XDG_CONFIG_HOME", avm_fuzz_tmpdir (), 1);
      init = true;
    }

  const uint8_t *nul = memchr (data, '\0', size);
  size_t flen = nul ? (size_t) (nul - data) : size;
  _cleanup_free_ char *path = avm_fuzz_write ("profile.json", data, flen);

  /* The requests, as NUL-terminated strings.  */
  _cleanup_free_ char *rest = NULL;
  char *options[MAX_REQUESTS + 1] = { 0 }, *sets[MAX_REQUESTS + 1] = { 0 };
  if (nul)
    {
      size_t rlen = size - flen - 1;
      rest = malloc (rlen + 1);
      AVM_FUZZ_CHECK (rest);
      memcpy (rest, nul + 1, rlen);
      rest[rlen] = '\0';
      size_t no = 0, ns = 0;
      for (char *p = rest; p < rest + rlen && no + ns < MAX_REQUESTS; p += strlen (p) + 1)
        {
          if (p[0] == '-')
            options[no++] = p + 1;
          else
            sets[ns++] = p;
        }
    }

  struct avm_profile_request req = { .name = path, .options = options, .sets = sets };
  _cleanup_error_ avm_error_t err = NULL;
  struct avm_profile *p = NULL;
  int r = avm_profile_load (&req, &p, &err);
  if (r == 0)
    {
      AVM_FUZZ_CHECK (p && p->json && json_is_object (p->json));
      /* The resolved profile is valid: validating it again finds nothing.  */
      r = avm_schema_validate (p->json, path, &err);
      AVM_FUZZ_CHECK (r == 0);
      avm_profile_free (p);
    }
  avm_fuzz_check_err (r, &err);
  return 0;
}
