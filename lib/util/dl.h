/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Libraries bound on first use: libsystemd (supervise/lazy_systemd.h),
 * libudev (host/lazy_udev.h), libarchive, libcrypto and zlib
 * (disk/lazy_*.h).
 *
 * Why: loading a library with the executable costs every command its
 * relocations and those of its dependencies, milliseconds on each
 * `avm start` (libsystemd alone, with libgcrypt, liblzma, libzstd, liblz4
 * and libcap, about a millisecond of every process start).  The linker
 * offers no lazy loading of whole libraries, so avm links only jansson and
 * libc, and the libraries that only some commands need are opened with
 * dlopen by the code that needs them, when it first runs: a dry run,
 * `avm status` and `avm stop` load none of them; libsystemd only a
 * supervised start (on a thread while it plans), libarchive only
 * `avm cvd2img`, libcrypto and zlib the disk code (cvd2img, inspect, and
 * the properties disk of a start).
 *
 * How (after systemd's dlopen_many_sym_or_warn and DLSYM_PROTOTYPE): one
 * X-macro list per library names the functions avm uses; the header
 * declares a pointer sym_NAME for each, typed from the library's own
 * prototype (__typeof__), and avm_dlopen_LIB(err) binds them all, once and
 * from whichever thread asks first.  Call sites spell the indirection out,
 * sym_sd_event_new (...), and every entry point of the code that uses them
 * calls avm_dlopen_LIB first: a library that cannot be loaded, or lacks a
 * function, is an error like any other (0 or -errno, ERR naming the
 * library, the function and the Debian package to install), reported by
 * the command, never an exit inside lib/.
 */
#pragma once

#include "util/error.h"

#include <pthread.h>
#include <stddef.h>

struct avm_dl_sym
{
  const char *name;
  void **slot; /* &sym_NAME */
};

struct avm_dl_lib
{
  const char *soname;  /* "libsystemd.so.0" */
  const char *package; /* the Debian package that ships it: "libsystemd0" */
  const struct avm_dl_sym *syms;
  size_t n;
  /* The outcome of avm_dl_load: 0 or -errno, and the message.  */
  int r;
  char *msg;
};

/* Load LIB->soname and look up every function of LIB->syms.  The slots
   are written only when all are found (they keep their values otherwise,
   and the library is closed again); LIB->r and LIB->msg record the
   outcome.  Not thread-safe by itself: AVM_DL_DEFINE calls it once.  */
void avm_dl_load (struct avm_dl_lib *lib);

/* The outcome of avm_dl_load: 0, or -EOPNOTSUPP with ERR (when not NULL)
   filled with the message (exit code AVM_EXIT_FAILURE).  */
int avm_dl_status (const struct avm_dl_lib *lib, avm_error_t *err);

/* In a library's header: the pointers sym_NAME of the X-macro list FUNCS.  */
#define AVM_DL_EXTERN_(f) extern __typeof__ (f) *sym_##f;
#define AVM_DL_DECLARE(FUNCS) FUNCS (AVM_DL_EXTERN_)

/* In the one .c file of library LIB: the pointers (tentative definitions:
   the file may give one an initial value), the table, and a static
   LIB_bind(err) that loads SONAME the first time, from whichever thread
   asks first, and returns the outcome every time.  AVM_DL_DEFINE adds the
   public int avm_dlopen_LIB (avm_error_t *err) that calls it.  */
#define AVM_DL_VAR_(f) __typeof__ (f) *sym_##f;
/* clang-format off */
#define AVM_DL_SYM_(f) { #f, (void **) &sym_##f },
#define AVM_DL_TABLE(lib, FUNCS, soname_, package_)                                                                   \
  FUNCS (AVM_DL_VAR_)                                                                                                 \
  static const struct avm_dl_sym lib##_syms[] = { FUNCS (AVM_DL_SYM_) };                                             \
  static struct avm_dl_lib lib##_lib = {                                                                              \
    .soname = soname_,                                                                                                \
    .package = package_,                                                                                              \
    .syms = lib##_syms,                                                                                               \
    .n = sizeof lib##_syms / sizeof lib##_syms[0],                                                                    \
  };                                                                                                                  \
  static pthread_once_t lib##_once = PTHREAD_ONCE_INIT;                                                               \
  static void lib##_load (void)                                                                                       \
  {                                                                                                                   \
    avm_dl_load (&lib##_lib);                                                                                         \
  }                                                                                                                   \
  static int lib##_bind (avm_error_t *err)                                                                            \
  {                                                                                                                   \
    pthread_once (&lib##_once, lib##_load);                                                                           \
    return avm_dl_status (&lib##_lib, err);                                                                           \
  }
#define AVM_DL_DEFINE(lib, FUNCS, soname, package)                                                                    \
  AVM_DL_TABLE (lib, FUNCS, soname, package)                                                                          \
  int avm_dlopen_##lib (avm_error_t *err)                                                                             \
  {                                                                                                                   \
    return lib##_bind (err);                                                                                          \
  }
/* clang-format on */
