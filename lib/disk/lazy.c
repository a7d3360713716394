/* SPDX-License-Identifier: Apache-2.0 */
/* First-use binding of libcrypto, libarchive and zlib (see util/dl.h). */
#include "disk/lazy_archive.h"
#include "disk/lazy_crypto.h"
#include "disk/lazy_zlib.h"

AVM_DL_DEFINE (crypto, AVM_CRYPTO_FUNCS, "libcrypto.so.3", "libssl3")
AVM_DL_DEFINE (archive, AVM_ARCHIVE_FUNCS, "libarchive.so.13", "libarchive13")
AVM_DL_DEFINE (zlib, AVM_ZLIB_FUNCS, "libz.so.1", "zlib1g")
