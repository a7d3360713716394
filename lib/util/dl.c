/* SPDX-License-Identifier: Apache-2.0 */
#include "util/dl.h"
#include "util/cleanup.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
avm_dl_load (struct avm_dl_lib *lib)
{
  _cleanup_free_ void **found = calloc (lib->n ? lib->n : 1, sizeof *found);
  void *handle;

  lib->r = -EOPNOTSUPP;
  free (lib->msg);
  lib->msg = NULL;
  if (!found)
    {
      lib->r = -ENOMEM;
      return;
    }
  handle = dlopen (lib->soname, RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    {
      const char *why = dlerror ();
      if (asprintf (&lib->msg, "cannot load %s (install the Debian package %s): %s", lib->soname, lib->package,
                    why ? why : "not found")
          < 0)
        lib->msg = NULL;
      return;
    }
  for (size_t i = 0; i < lib->n; i++)
    if (!(found[i] = dlsym (handle, lib->syms[i].name)))
      {
        if (asprintf (&lib->msg, "%s lacks the function %s (the Debian package %s is too old or broken)", lib->soname,
                      lib->syms[i].name, lib->package)
            < 0)
          lib->msg = NULL;
        dlclose (handle);
        return;
      }
  /* All or nothing; the handle stays open for the process's lifetime.  */
  for (size_t i = 0; i < lib->n; i++)
    *lib->syms[i].slot = found[i];
  lib->r = 0;
}

int
avm_dl_status (const struct avm_dl_lib *lib, avm_error_t *err)
{
  if (lib->r >= 0)
    return 0;
  if (!err)
    return lib->r;
  if (lib->msg)
    return avm_error_fail (err, -lib->r, "%s", lib->msg);
  return avm_error_sys (err, -lib->r, "cannot load %s (Debian package %s)", lib->soname, lib->package);
}
