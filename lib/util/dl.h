/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Libraries bound on first use (lib/disk/lazy.c, lib/host/lazy.c).
 * Loading a library with the executable costs every command its
 * relocations and those of its dependencies, milliseconds on each
 * `avm start`; the linker offers no lazy loading of whole libraries, so
 * the few that only some commands need are opened with dlopen and their
 * functions looked up into a table of pointers (one X-macro list per
 * library gives both the table and the names).
 */
#pragma once

#include <pthread.h>
#include <stddef.h>

/* Fill the N pointers of TABLE with NAMES from SONAME.  A library that
   cannot be loaded, or lacks a function, is a broken installation: avm
   says which library and which Debian PACKAGE to install, and exits 1.  */
void avm_dl_bind (void *table, const char *soname, const char *const *names, size_t n, const char *package);

/* In the one .c file of library LIB: its table (struct avm_LIB_api, from
   the X-macro list FUNCS) and LIB_table(), which binds SONAME the first
   time, from whichever thread asks first; AVM_DL_DEFINE adds the public
   accessor avm_LIB() that returns it.  */
#define AVM_DL_NAME_(f) #f,
#define AVM_DL_TABLE(lib, FUNCS, soname, package)                                                                     \
  static const char *const lib##_names[] = { FUNCS (AVM_DL_NAME_) };                                                 \
  static struct avm_##lib##_api lib##_api;                                                                            \
  static pthread_once_t lib##_once = PTHREAD_ONCE_INIT;                                                               \
  static void lib##_load (void)                                                                                       \
  {                                                                                                                   \
    _Static_assert (sizeof lib##_api == sizeof lib##_names, "one name per pointer");                                  \
    avm_dl_bind (&lib##_api, soname, lib##_names, sizeof lib##_names / sizeof lib##_names[0], package);               \
  }                                                                                                                   \
  static const struct avm_##lib##_api *lib##_table (void)                                                             \
  {                                                                                                                   \
    pthread_once (&lib##_once, lib##_load);                                                                           \
    return &lib##_api;                                                                                                \
  }
#define AVM_DL_DEFINE(lib, FUNCS, soname, package)                                                                    \
  AVM_DL_TABLE (lib, FUNCS, soname, package)                                                                          \
  const struct avm_##lib##_api *avm_##lib (void)                                                                      \
  {                                                                                                                   \
    return lib##_table ();                                                                                            \
  }
