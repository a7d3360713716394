/* SPDX-License-Identifier: Apache-2.0 */
#include "util/dl.h"
#include "util/error.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

void
avm_dl_bind (void *table, const char *soname, const char *const *names, size_t n, const char *package)
{
  void *lib = dlopen (soname, RTLD_NOW | RTLD_LOCAL);
  void **slots = table;
  if (!lib)
    {
      fprintf (stderr, "%s: cannot load %s (%s): %s\n", avm_error_program (), soname, package, dlerror ());
      exit (1);
    }
  for (size_t i = 0; i < n; i++)
    if (!(slots[i] = dlsym (lib, names[i])))
      {
        fprintf (stderr, "%s: %s lacks %s (%s too old?)\n", avm_error_program (), soname, names[i], package);
        exit (1);
      }
}
