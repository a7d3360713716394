/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libz.so.1, bound on first use (lib/util/dl.h): only the disk code
 * (sparse images, GPT, U-Boot environments) computes CRCs, and `avm start`
 * reaches it only when a properties disk must be rebuilt.  Include this
 * header instead of <zlib.h> in lib/ sources.
 */
#pragma once

#include <zlib.h>

#define AVM_ZLIB_FUNCS(X) \
  X (crc32) \
  X (crc32_z) \
  X (crc32_combine_gen64) \
  X (crc32_combine_op)

struct avm_zlib_api
{
#define X(f) __typeof__ (f) *f;
  AVM_ZLIB_FUNCS (X)
#undef X
};

/* The table; loads libz.so.1 the first time (exits 1 if it cannot:
   Debian: zlib1g).  */
const struct avm_zlib_api *avm_zlib (void);

#ifndef AVM_LAZY_ZLIB_IMPL
#define crc32(...) (avm_zlib ()->crc32 (__VA_ARGS__))
#define crc32_z(...) (avm_zlib ()->crc32_z (__VA_ARGS__))
#define crc32_combine_gen64(...) (avm_zlib ()->crc32_combine_gen64 (__VA_ARGS__))
#define crc32_combine_op(...) (avm_zlib ()->crc32_combine_op (__VA_ARGS__))
#endif
