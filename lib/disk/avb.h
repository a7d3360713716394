/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Android Verified Boot 2.0 (formats.md section 1): vbmeta images with hash
 * and chain-partition descriptors, hash footers, SHA256_RSA4096 signatures
 * with OpenSSL libcrypto, public key blobs (n0inv, rr), and verification
 * for `avm inspect`.  All AVB integers are big-endian.
 */
#pragma once

#include "util/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AVM_AVB_PUBKEY_SIZE 1032   /* RSA-4096 blob */
#define AVM_AVB_MAX_METADATA 69632 /* vbmeta (64 KiB) + footer block (4 KiB) */
#define AVM_AVB_VBMETA_PARTITION 65536
#define AVM_AVB_FOOTER_SIZE 64
#define AVM_AVB_SALT_SIZE 32
/* The release string avbtool 1.3.0 writes.  libavb ignores the field; using
   avbtool's own string keeps our output byte-identical to what Cuttlefish's
   avbtool calls produce (given the same salt), so images can be compared.  */
#define AVM_AVB_RELEASE_STRING "avbtool 1.3.0"

struct avm_avb_key;

/* Load a PEM private key; refuse anything but RSA-4096 with e=65537
   ("KEY: not an RSA-4096 key (RSA-2048)").  */
int avm_avb_key_load (const char *path, struct avm_avb_key **key, avm_error_t *err);
/* The same from PEM text in memory (a host package file read from a
   tarball); WHAT names it in messages.  Encrypted keys are refused.  */
int avm_avb_key_load_pem (const void *pem, size_t len, const char *what, struct avm_avb_key **key, avm_error_t *err);
void avm_avb_key_free (struct avm_avb_key *key);
/* The AvbRSAPublicKeyHeader blob of KEY (AVM_AVB_PUBKEY_SIZE bytes).  */
int avm_avb_key_blob (const struct avm_avb_key *key, uint8_t blob[AVM_AVB_PUBKEY_SIZE], avm_error_t *err);
/* SHA-1 of KEY's public key blob, lower-case hex (what avbtool info_image
   prints as "Public key (sha1)" and what avm_avb_info reports).  */
void avm_avb_key_sha1 (const struct avm_avb_key *key, char hex[41]);
/* SHA-1 of any bytes, lower-case hex.  */
void avm_avb_sha1_hex (const uint8_t *data, size_t len, char hex[41]);
/* SHA-256 of any bytes, lower-case hex ("" only when out of memory).  */
void avm_avb_sha256_hex (const uint8_t *data, size_t len, char hex[65]);
/* SHA-256 over A || B into MD (32 bytes).  */
int avm_avb_sha256 (const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t md[32], avm_error_t *err);
/* Check that BLOB (LEN bytes, e.g. an .avbpubkey file) is a well-formed
   RSA-4096 public key blob: size, key_num_bits, odd modulus of 4096 bits,
   n0inv and rr consistent with n.  */
int avm_avb_pubkey_check (const uint8_t *blob, size_t len, const char *what, avm_error_t *err);

/* Add a hash footer to IMAGE (LEN bytes) for a partition of PART_SIZE bytes
   (multiple of 4096, >= LEN rounded up + AVM_AVB_MAX_METADATA), as avbtool
   add_hash_footer does.  SALT is 32 bytes, or NULL for random.  *OUT is the
   whole partition (PART_SIZE bytes, malloc'd).  */
int avm_avb_hash_footer (const uint8_t *image, size_t len, const char *partition, uint64_t part_size,
                         const struct avm_avb_key *key, const uint8_t *salt, uint8_t **out, avm_error_t *err);

struct avm_avb_chain
{
  const char *partition;
  uint32_t rollback_index_location; /* >= 1, unique */
  const uint8_t *pubkey;            /* AVM_AVB_PUBKEY_SIZE bytes */
};

/* A vbmeta image with chain descriptors (avbtool make_vbmeta_image
   --chain_partition ...), signed with KEY; not padded.  */
int avm_avb_make_vbmeta (const struct avm_avb_chain *chains, size_t n, const struct avm_avb_key *key, uint8_t **out,
                         size_t *len, avm_error_t *err);

/* What `avm inspect` reports about a signed blob.  Names are copied with
   bytes outside printable ASCII replaced by '?' and cut at 63 bytes.  */
struct avm_avb_info
{
  bool has_footer;
  uint64_t original_size, vbmeta_offset, vbmeta_size;
  uint32_t algorithm;                  /* 2 = SHA256_RSA4096 */
  bool signature_ok;                   /* hash and RSA signature over header+aux verify */
  bool hash_ok;                        /* SHA-256 of header+aux equals the stored hash
                                          (false: header or aux block altered) */
  bool digest_ok;                      /* hash descriptor digest matches the image (footer case) */
  uint32_t libavb_major, libavb_minor; /* required libavb version */
  uint64_t rollback_index;
  uint32_t flags, rollback_index_location;
  size_t n_chains_total; /* chain descriptors found (only 8 are listed) */
  char key_sha1[41];     /* SHA-1 of the public key blob, hex */
  char partition[64];    /* hash descriptor's partition name (footer case) */
  size_t n_chains;
  struct
  {
    char partition[64];
    uint32_t location;
    char key_sha1[41];
  } chains[8];
};

/* Verification never reads outside DATA[0, LEN) and checks all arithmetic
   for overflow.  It returns 0 once the structures parse -- the outcome of
   the cryptographic checks is in INFO (signature_ok, hash_ok, digest_ok) --
   and an error for malformed input (exit code 2; what is wrong and where)
   or -ENOTSUP for an algorithm other than SHA256_RSA4096 (INFO->algorithm
   is set).  The first hash descriptor gives INFO->partition; in the footer
   case its digest is checked over salt || DATA[0, image_size) (digest_ok
   stays false without a hash descriptor, with a persistent digest or with
   a hash other than sha256).  */

/* Verify a partition with a hash footer (DATA, LEN = partition size).  */
int avm_avb_verify_footer (const uint8_t *data, size_t len, const char *what, struct avm_avb_info *info,
                           avm_error_t *err);
/* Verify a bare vbmeta image (possibly zero-padded).  */
int avm_avb_verify_vbmeta (const uint8_t *data, size_t len, const char *what, struct avm_avb_info *info,
                           avm_error_t *err);
