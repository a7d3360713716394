/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcrypto.so.3, bound on first use.  Only `avm cvd2img` and `avm inspect` need
 * it, and loading it with the executable costs every command (relocations
 * of it and its dependencies: milliseconds on each `avm start`).  Include
 * this header instead of the library's own in lib/ sources: calls go
 * through a table of pointers filled by dlopen/dlsym on first use.
 * Written by hand because the linker offers no lazy loading of whole
 * libraries; the prototypes still come from the library's headers.
 */
#pragma once

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

#define AVM_CRYPTO_FUNCS(X) \
  X (BIO_free) \
  X (BIO_new_mem_buf) \
  X (BN_CTX_free) \
  X (BN_CTX_new) \
  X (BN_bin2bn) \
  X (BN_bn2binpad) \
  X (BN_bn2dec) \
  X (BN_div) \
  X (BN_free) \
  X (BN_get_word) \
  X (BN_is_odd) \
  X (BN_is_word) \
  X (BN_mod_inverse) \
  X (BN_new) \
  X (BN_num_bits) \
  X (BN_set_bit) \
  X (BN_set_word) \
  X (CRYPTO_clear_free) \
  X (CRYPTO_free) \
  X (CRYPTO_memcmp) \
  X (ERR_clear_error) \
  X (ERR_error_string_n) \
  X (ERR_peek_last_error) \
  X (EVP_Digest) \
  X (EVP_DigestFinal_ex) \
  X (EVP_DigestInit_ex) \
  X (EVP_DigestUpdate) \
  X (EVP_MD_CTX_free) \
  X (EVP_MD_CTX_new) \
  X (EVP_PKEY_CTX_free) \
  X (EVP_PKEY_CTX_new_from_name) \
  X (EVP_PKEY_CTX_new_from_pkey) \
  X (EVP_PKEY_CTX_set_rsa_padding) \
  X (EVP_PKEY_CTX_set_signature_md) \
  X (EVP_PKEY_free) \
  X (EVP_PKEY_fromdata) \
  X (EVP_PKEY_fromdata_init) \
  X (EVP_PKEY_get0_type_name) \
  X (EVP_PKEY_get_bits) \
  X (EVP_PKEY_get_bn_param) \
  X (EVP_PKEY_is_a) \
  X (EVP_PKEY_sign) \
  X (EVP_PKEY_sign_init) \
  X (EVP_PKEY_verify) \
  X (EVP_PKEY_verify_init) \
  X (EVP_sha1) \
  X (EVP_sha256) \
  X (OSSL_PARAM_BLD_free) \
  X (OSSL_PARAM_BLD_new) \
  X (OSSL_PARAM_BLD_push_BN) \
  X (OSSL_PARAM_BLD_to_param) \
  X (OSSL_PARAM_free) \
  X (PEM_read_bio_PrivateKey) \
  X (RAND_bytes)

struct avm_crypto_api
{
#define X(f) __typeof__ (f) *f;
  AVM_CRYPTO_FUNCS (X)
#undef X
};

/* The table; loads libcrypto.so.3 the first time.  A library that cannot be
   loaded is a broken installation: avm says so (Debian: libssl3) and exits 1.  */
const struct avm_crypto_api *avm_crypto (void);

#ifndef AVM_LAZY_CRYPTO_IMPL
#define BIO_free (avm_crypto ()->BIO_free)
#define BIO_new_mem_buf (avm_crypto ()->BIO_new_mem_buf)
#define BN_CTX_free (avm_crypto ()->BN_CTX_free)
#define BN_CTX_new (avm_crypto ()->BN_CTX_new)
#define BN_bin2bn (avm_crypto ()->BN_bin2bn)
#define BN_bn2binpad (avm_crypto ()->BN_bn2binpad)
#define BN_bn2dec (avm_crypto ()->BN_bn2dec)
#define BN_div (avm_crypto ()->BN_div)
#define BN_free (avm_crypto ()->BN_free)
#define BN_get_word (avm_crypto ()->BN_get_word)
#define BN_is_odd (avm_crypto ()->BN_is_odd)
#define BN_is_word (avm_crypto ()->BN_is_word)
#define BN_mod_inverse (avm_crypto ()->BN_mod_inverse)
#define BN_new (avm_crypto ()->BN_new)
#define BN_num_bits (avm_crypto ()->BN_num_bits)
#define BN_set_bit (avm_crypto ()->BN_set_bit)
#define BN_set_word (avm_crypto ()->BN_set_word)
#define CRYPTO_clear_free (avm_crypto ()->CRYPTO_clear_free)
#define CRYPTO_free (avm_crypto ()->CRYPTO_free)
#define CRYPTO_memcmp (avm_crypto ()->CRYPTO_memcmp)
#define ERR_clear_error (avm_crypto ()->ERR_clear_error)
#define ERR_error_string_n (avm_crypto ()->ERR_error_string_n)
#define ERR_peek_last_error (avm_crypto ()->ERR_peek_last_error)
#define EVP_Digest (avm_crypto ()->EVP_Digest)
#define EVP_DigestFinal_ex (avm_crypto ()->EVP_DigestFinal_ex)
#define EVP_DigestInit_ex (avm_crypto ()->EVP_DigestInit_ex)
#define EVP_DigestUpdate (avm_crypto ()->EVP_DigestUpdate)
#define EVP_MD_CTX_free (avm_crypto ()->EVP_MD_CTX_free)
#define EVP_MD_CTX_new (avm_crypto ()->EVP_MD_CTX_new)
#define EVP_PKEY_CTX_free (avm_crypto ()->EVP_PKEY_CTX_free)
#define EVP_PKEY_CTX_new_from_name (avm_crypto ()->EVP_PKEY_CTX_new_from_name)
#define EVP_PKEY_CTX_new_from_pkey (avm_crypto ()->EVP_PKEY_CTX_new_from_pkey)
#define EVP_PKEY_CTX_set_rsa_padding (avm_crypto ()->EVP_PKEY_CTX_set_rsa_padding)
#define EVP_PKEY_CTX_set_signature_md (avm_crypto ()->EVP_PKEY_CTX_set_signature_md)
#define EVP_PKEY_free (avm_crypto ()->EVP_PKEY_free)
#define EVP_PKEY_fromdata (avm_crypto ()->EVP_PKEY_fromdata)
#define EVP_PKEY_fromdata_init (avm_crypto ()->EVP_PKEY_fromdata_init)
#define EVP_PKEY_get0_type_name (avm_crypto ()->EVP_PKEY_get0_type_name)
#define EVP_PKEY_get_bits (avm_crypto ()->EVP_PKEY_get_bits)
#define EVP_PKEY_get_bn_param (avm_crypto ()->EVP_PKEY_get_bn_param)
#define EVP_PKEY_is_a (avm_crypto ()->EVP_PKEY_is_a)
#define EVP_PKEY_sign (avm_crypto ()->EVP_PKEY_sign)
#define EVP_PKEY_sign_init (avm_crypto ()->EVP_PKEY_sign_init)
#define EVP_PKEY_verify (avm_crypto ()->EVP_PKEY_verify)
#define EVP_PKEY_verify_init (avm_crypto ()->EVP_PKEY_verify_init)
#define EVP_sha1 (avm_crypto ()->EVP_sha1)
#define EVP_sha256 (avm_crypto ()->EVP_sha256)
#define OSSL_PARAM_BLD_free (avm_crypto ()->OSSL_PARAM_BLD_free)
#define OSSL_PARAM_BLD_new (avm_crypto ()->OSSL_PARAM_BLD_new)
#define OSSL_PARAM_BLD_push_BN (avm_crypto ()->OSSL_PARAM_BLD_push_BN)
#define OSSL_PARAM_BLD_to_param (avm_crypto ()->OSSL_PARAM_BLD_to_param)
#define OSSL_PARAM_free (avm_crypto ()->OSSL_PARAM_free)
#define PEM_read_bio_PrivateKey (avm_crypto ()->PEM_read_bio_PrivateKey)
#define RAND_bytes (avm_crypto ()->RAND_bytes)
#endif
