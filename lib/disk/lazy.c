/* SPDX-License-Identifier: Apache-2.0 */
/* First-use binding of libcrypto, libarchive and zlib (see util/dl.h). */
#define AVM_LAZY_CRYPTO_IMPL
#define AVM_LAZY_ARCHIVE_IMPL
#define AVM_LAZY_ZLIB_IMPL
#include "disk/lazy_archive.h"
#include "disk/lazy_crypto.h"
#include "disk/lazy_zlib.h"

#include "util/dl.h"

AVM_DL_DEFINE (crypto, AVM_CRYPTO_FUNCS, "libcrypto.so.3", "Debian: libssl3")
AVM_DL_DEFINE (archive, AVM_ARCHIVE_FUNCS, "libarchive.so.13", "Debian: libarchive13")
AVM_DL_DEFINE (zlib, AVM_ZLIB_FUNCS, "libz.so.1", "Debian: zlib1g")
