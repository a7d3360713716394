/* SPDX-License-Identifier: Apache-2.0 */
#include "plan/plan.h"
#include "util/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

char *
avm_instance_run_dir (int instance)
{
  char *out = NULL;
  const char *xdg = getenv ("XDG_RUNTIME_DIR"), *base = getenv ("AVM_RUNTIME_DIR");
  int r;
  if (base && base[0] == '/')
    r = asprintf (&out, "%s/%d", base, instance);
  else if (geteuid () == 0)
    r = asprintf (&out, "/run/avm/%d", instance);
  else if (xdg && xdg[0] == '/')
    r = asprintf (&out, "%s/avm/%d", xdg, instance);
  else
    r = asprintf (&out, "/tmp/avm-%u/%d", (unsigned) geteuid (), instance);
  return r < 0 ? NULL : out;
}

char *
avm_instance_state_dir (int instance)
{
  char *out = NULL;
  const char *base = getenv ("AVM_STATE_DIR");
  int r;
  if (base && base[0] == '/')
    r = asprintf (&out, "%s/%d", base, instance);
  else if (geteuid () == 0)
    r = asprintf (&out, "/var/lib/avm/%d", instance);
  else
    {
      char *xdg = avm_xdg_dir ("XDG_STATE_HOME", ".local/state");
      r = xdg ? asprintf (&out, "%s/avm/%d", xdg, instance) : -1;
      free (xdg);
    }
  return r < 0 ? NULL : out;
}
