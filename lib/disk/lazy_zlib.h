/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libz.so.1, bound on first use (lib/util/dl.h): only the disk code
 * (sparse images, GPT, U-Boot environments) computes CRCs, and `avm start`
 * reaches it only when a properties disk must be rebuilt.  Include this
 * header instead of <zlib.h> in lib/ sources; sym_crc32 (...) and the
 * others after avm_dlopen_zlib.
 */
#pragma once

#include "util/dl.h"

#include <zlib.h>

#define AVM_ZLIB_FUNCS(X)                                                                                              \
  X (crc32)                                                                                                            \
  X (crc32_z)                                                                                                          \
  X (crc32_combine_gen64)                                                                                              \
  X (crc32_combine_op)

AVM_DL_DECLARE (AVM_ZLIB_FUNCS)

/* Bind the sym_ pointers above, loading libz.so.1 the first time (any
   thread; later calls return the first outcome).  0, or -errno with ERR
   naming the library, the missing function and the Debian package
   (zlib1g).  Call it before the first sym_ use.  */
int avm_dlopen_zlib (avm_error_t *err);
