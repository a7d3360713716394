/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcrypto.so.3, bound on first use.  Only `avm cvd2img` and `avm inspect` need
 * it, and loading it with the executable costs every command (relocations
 * of it and its dependencies: milliseconds on each `avm start`).  Include
 * this header instead of the library's own in lib/ sources and call
 * sym_NAME (...) after avm_dlopen_crypto (lib/util/dl.h); the prototypes
 * still come from the library's headers.
 */
#pragma once

#include "util/dl.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#define AVM_CRYPTO_FUNCS(X)                                                                                            \
  X (BIO_free)                                                                                                         \
  X (BIO_new_mem_buf)                                                                                                  \
  X (BN_CTX_free)                                                                                                      \
  X (BN_CTX_new)                                                                                                       \
  X (BN_bin2bn)                                                                                                        \
  X (BN_bn2binpad)                                                                                                     \
  X (BN_bn2dec)                                                                                                        \
  X (BN_div)                                                                                                           \
  X (BN_free)                                                                                                          \
  X (BN_get_word)                                                                                                      \
  X (BN_is_odd)                                                                                                        \
  X (BN_is_word)                                                                                                       \
  X (BN_mod_inverse)                                                                                                   \
  X (BN_new)                                                                                                           \
  X (BN_num_bits)                                                                                                      \
  X (BN_set_bit)                                                                                                       \
  X (BN_set_word)                                                                                                      \
  X (CRYPTO_clear_free)                                                                                                \
  X (CRYPTO_free)                                                                                                      \
  X (CRYPTO_memcmp)                                                                                                    \
  X (ERR_clear_error)                                                                                                  \
  X (ERR_error_string_n)                                                                                               \
  X (ERR_peek_last_error)                                                                                              \
  X (EVP_Digest)                                                                                                       \
  X (EVP_DigestFinal_ex)                                                                                               \
  X (EVP_DigestInit_ex)                                                                                                \
  X (EVP_DigestUpdate)                                                                                                 \
  X (EVP_MD_CTX_free)                                                                                                  \
  X (EVP_MD_CTX_new)                                                                                                   \
  X (EVP_PKEY_CTX_free)                                                                                                \
  X (EVP_PKEY_CTX_new_from_name)                                                                                       \
  X (EVP_PKEY_CTX_new_from_pkey)                                                                                       \
  X (EVP_PKEY_CTX_set_rsa_padding)                                                                                     \
  X (EVP_PKEY_CTX_set_signature_md)                                                                                    \
  X (EVP_PKEY_free)                                                                                                    \
  X (EVP_PKEY_fromdata)                                                                                                \
  X (EVP_PKEY_fromdata_init)                                                                                           \
  X (EVP_PKEY_get0_type_name)                                                                                          \
  X (EVP_PKEY_get_bits)                                                                                                \
  X (EVP_PKEY_get_bn_param)                                                                                            \
  X (EVP_PKEY_is_a)                                                                                                    \
  X (EVP_PKEY_sign)                                                                                                    \
  X (EVP_PKEY_sign_init)                                                                                               \
  X (EVP_PKEY_verify)                                                                                                  \
  X (EVP_PKEY_verify_init)                                                                                             \
  X (EVP_sha1)                                                                                                         \
  X (EVP_sha256)                                                                                                       \
  X (OSSL_PARAM_BLD_free)                                                                                              \
  X (OSSL_PARAM_BLD_new)                                                                                               \
  X (OSSL_PARAM_BLD_push_BN)                                                                                           \
  X (OSSL_PARAM_BLD_to_param)                                                                                          \
  X (OSSL_PARAM_free)                                                                                                  \
  X (PEM_read_bio_PrivateKey)                                                                                          \
  X (RAND_bytes)

AVM_DL_DECLARE (AVM_CRYPTO_FUNCS)

/* Bind the sym_ pointers above, loading libcrypto.so.3 the first time (any
   thread; later calls return the first outcome).  0, or -errno with ERR
   naming the library, the missing function and the Debian package
   (libssl3).  Call it before the first sym_ use.  */
int avm_dlopen_crypto (avm_error_t *err);
