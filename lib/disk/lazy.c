/* SPDX-License-Identifier: Apache-2.0 */
/* First-use binding of libcrypto and libarchive (see lazy_crypto.h). */
#define AVM_LAZY_CRYPTO_IMPL
#define AVM_LAZY_ARCHIVE_IMPL
#include "disk/lazy_archive.h"
#include "disk/lazy_crypto.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void
load (void *table, const char *soname, const char *const *names, size_t n, const char *package)
{
  void *lib = dlopen (soname, RTLD_NOW | RTLD_LOCAL);
  void **slots = table;
  if (!lib)
    {
      fprintf (stderr, "avm: cannot load %s (%s): %s\n", soname, package, dlerror ());
      exit (1);
    }
  for (size_t i = 0; i < n; i++)
    if (!(slots[i] = dlsym (lib, names[i])))
      {
        fprintf (stderr, "avm: %s lacks %s (%s too old?)\n", soname, names[i], package);
        exit (1);
      }
}

#define NAME(f) #f,
static const char *const crypto_names[] = { AVM_CRYPTO_FUNCS (NAME) };
static const char *const archive_names[] = { AVM_ARCHIVE_FUNCS (NAME) };
#undef NAME

static struct avm_crypto_api crypto_api;
static struct avm_archive_api archive_api;
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT, archive_once = PTHREAD_ONCE_INIT;

static void
load_crypto (void)
{
  _Static_assert (sizeof crypto_api == sizeof crypto_names / sizeof crypto_names[0] * sizeof (void *), "table");
  load (&crypto_api, "libcrypto.so.3", crypto_names, sizeof crypto_names / sizeof crypto_names[0], "Debian: libssl3");
}

static void
load_archive (void)
{
  _Static_assert (sizeof archive_api == sizeof archive_names / sizeof archive_names[0] * sizeof (void *), "table");
  load (&archive_api, "libarchive.so.13", archive_names, sizeof archive_names / sizeof archive_names[0],
        "Debian: libarchive13");
}

const struct avm_crypto_api *
avm_crypto (void)
{
  pthread_once (&crypto_once, load_crypto);
  return &crypto_api;
}

const struct avm_archive_api *
avm_archive (void)
{
  pthread_once (&archive_once, load_archive);
  return &archive_api;
}
