/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AVB 2.0 signing and verification (formats.md section 1), byte-compatible
 * with avbtool 1.3.0 for SHA256_RSA4096: vbmeta blobs with hash and chain
 * descriptors, add_hash_footer layout, public key blobs.  Crypto through
 * OpenSSL 3 EVP interfaces only.
 *
 * One job, one file (about 750 lines): the AVB format.  Signing and
 * verification are the two directions of the same byte layout (header,
 * descriptors, authentication block, key blob) and share its constants,
 * the key type and the OpenSSL cleanup helpers; split, they would need all
 * of that in a header, and a reviewer checking that what is written is
 * what is verified would read two files instead of one.
 */
#include "disk/avb.h"
#include "util/cleanup.h"
#include "util/bytes.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "disk/lazy_crypto.h"

#define HEADER_SIZE 256
#define KEY_BITS 4096
#define KEY_BYTES (KEY_BITS / 8)
#define HASH_SIZE 32
#define AUTH_SIZE 576 /* round64 (32 + 512) */
#define ALG_SHA256_RSA4096 2
#define BLOCK 4096
#define MAX_VBMETA_SIZE 65536
#define MAX_KEY_FILE (1u << 20)
#define LIBAVB_MINOR_SUPPORTED 3

#define TAG_HASH 2
#define TAG_CHAIN 4
#define HASH_DESC_SIZE 132 /* including the 16-byte generic header */
#define CHAIN_DESC_SIZE 92

struct avm_avb_key
{
  EVP_PKEY *pkey;
  uint8_t blob[AVM_AVB_PUBKEY_SIZE];
};

/* OpenSSL objects for the cleanup attribute.  */
DEFINE_TRIVIAL_CLEANUP_FUNC (EVP_PKEY *, sym_EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC (EVP_PKEY_CTX *, sym_EVP_PKEY_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC (EVP_MD_CTX *, sym_EVP_MD_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC (BIGNUM *, sym_BN_free)
DEFINE_TRIVIAL_CLEANUP_FUNC (BN_CTX *, sym_BN_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC (BIO *, sym_BIO_free)
DEFINE_TRIVIAL_CLEANUP_FUNC (OSSL_PARAM_BLD *, sym_OSSL_PARAM_BLD_free)
DEFINE_TRIVIAL_CLEANUP_FUNC (OSSL_PARAM *, sym_OSSL_PARAM_free)
#define _cleanup_pkey_ _cleanup_ (sym_EVP_PKEY_freep)
#define _cleanup_pkey_ctx_ _cleanup_ (sym_EVP_PKEY_CTX_freep)
#define _cleanup_md_ctx_ _cleanup_ (sym_EVP_MD_CTX_freep)
#define _cleanup_bn_ _cleanup_ (sym_BN_freep)
#define _cleanup_bn_ctx_ _cleanup_ (sym_BN_CTX_freep)
#define _cleanup_bio_ _cleanup_ (sym_BIO_freep)

/* ------------------------------------------------------------------ */
/* Byte order and small helpers.  */

static uint64_t
round_up (uint64_t v, uint64_t a)
{
  return (v + a - 1) / a * a;
}

/* A + B <= LIMIT without overflow.  */
static bool
fits (uint64_t a, uint64_t b, uint64_t limit)
{
  return a <= limit && b <= limit - a;
}

/* An error for a failed OpenSSL call, with OpenSSL's reason.  */
static int __attribute__ ((format (printf, 2, 3))) ossl_error (avm_error_t *err, const char *fmt, ...)
{
  char reason[256] = "unknown error";
  unsigned long e = sym_ERR_peek_last_error ();
  if (e)
    sym_ERR_error_string_n (e, reason, sizeof reason);
  sym_ERR_clear_error ();

  va_list ap;
  va_start (ap, fmt);
  _cleanup_free_ char *msg = NULL;
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  return avm_error_fail (err, EIO, "%s: %s", msg ? msg : "OpenSSL failure", reason);
}

static void
hex (const uint8_t *d, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++)
    {
      out[2 * i] = digits[d[i] >> 4];
      out[2 * i + 1] = digits[d[i] & 15];
    }
  out[2 * n] = '\0';
}

void
avm_avb_sha256_hex (const uint8_t *data, size_t len, char out[65])
{
  uint8_t md[32];
  unsigned int mdlen = 0;
  if (avm_dlopen_crypto (NULL) < 0) /* no libcrypto: no digest, as when OpenSSL fails */
    {
      out[0] = '\0';
      return;
    }
  if (!sym_EVP_Digest (data, len, md, &mdlen, sym_EVP_sha256 (), NULL) || mdlen != sizeof md)
    {
      sym_ERR_clear_error ();
      out[0] = '\0';
      return;
    }
  hex (md, sizeof md, out);
}

void
avm_avb_sha1_hex (const uint8_t *data, size_t len, char out[41])
{
  uint8_t md[20];
  unsigned int mdlen = 0;
  if (avm_dlopen_crypto (NULL) < 0)
    {
      out[0] = '\0';
      return;
    }
  if (!sym_EVP_Digest (data, len, md, &mdlen, sym_EVP_sha1 (), NULL) || mdlen != sizeof md)
    {
      /* Only out of memory; an empty string is never a valid key id.  */
      sym_ERR_clear_error ();
      out[0] = '\0';
      return;
    }
  hex (md, sizeof md, out);
}

int
avm_avb_sha256 (const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t md[HASH_SIZE], avm_error_t *err)
{
  int r = avm_dlopen_crypto (err);
  if (r < 0)
    return r;
  _cleanup_md_ctx_ EVP_MD_CTX *ctx = sym_EVP_MD_CTX_new ();
  unsigned int mdlen = 0;

  if (!ctx || !sym_EVP_DigestInit_ex (ctx, sym_EVP_sha256 (), NULL) || !sym_EVP_DigestUpdate (ctx, a, alen)
      || !sym_EVP_DigestUpdate (ctx, b, blen) || !sym_EVP_DigestFinal_ex (ctx, md, &mdlen) || mdlen != HASH_SIZE)
    return ossl_error (err, "SHA-256");
  return 0;
}

/* Printable copy of a name from an image (which may be hostile).  */
static void
copy_name (char dst[64], const uint8_t *src, size_t len)
{
  if (len > 63)
    len = 63;
  for (size_t i = 0; i < len; i++)
    dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? (char) src[i] : '?';
  dst[len] = '\0';
}

/* ------------------------------------------------------------------ */
/* Keys.  */

/* The AvbRSAPublicKeyHeader blob: be32 bits, be32 n0inv, n, rr.  */
static int
make_blob (const BIGNUM *n, uint8_t blob[AVM_AVB_PUBKEY_SIZE], const char *what, avm_error_t *err)
{
  _cleanup_bn_ctx_ BN_CTX *ctx = sym_BN_CTX_new ();
  _cleanup_bn_ BIGNUM *r32 = sym_BN_new ();
  _cleanup_bn_ BIGNUM *ninv = sym_BN_new ();
  _cleanup_bn_ BIGNUM *r = sym_BN_new ();
  _cleanup_bn_ BIGNUM *rr = sym_BN_new ();

  if (!ctx || !r32 || !ninv || !r || !rr)
    return avm_error_sys (err, ENOMEM, "%s: public key blob", what);
  /* n0inv = 2^32 - (n^-1 mod 2^32) */
  if (!sym_BN_set_bit (r32, 32) || !sym_BN_mod_inverse (ninv, n, r32, ctx))
    return ossl_error (err, "%s: computing n0inv", what);
  uint32_t n0inv = (uint32_t) (0u - (uint32_t) sym_BN_get_word (ninv));
  /* rr = (2^4096)^2 mod n */
  if (!sym_BN_set_bit (r, 2 * KEY_BITS) || !sym_BN_div (NULL, rr, r, n, ctx)) /* BN_mod, a macro */
    return ossl_error (err, "%s: computing rr", what);

  put_be32 (blob, KEY_BITS);
  put_be32 (blob + 4, n0inv);
  if (sym_BN_bn2binpad (n, blob + 8, KEY_BYTES) != KEY_BYTES
      || sym_BN_bn2binpad (rr, blob + 8 + KEY_BYTES, KEY_BYTES) != KEY_BYTES)
    return ossl_error (err, "%s: encoding the public key", what);
  return 0;
}

/* Never prompt for a passphrase: encrypted keys fail to load.  */
static int
no_password (char *buf, int size, int rwflag, void *u)
{
  return -1;
}

int
avm_avb_key_load_pem (const void *pem, size_t len, const char *what, struct avm_avb_key **out, avm_error_t *err)
{
  _cleanup_bio_ BIO *bio = NULL;
  _cleanup_pkey_ EVP_PKEY *pkey = NULL;
  _cleanup_bn_ BIGNUM *n = NULL;
  _cleanup_bn_ BIGNUM *e = NULL;
  int r;

  if ((r = avm_dlopen_crypto (err)) < 0)
    return r;
  if (len > MAX_KEY_FILE)
    return avm_error_input (err, "%s: not a PEM private key (%zu bytes)", what, len);
  bio = sym_BIO_new_mem_buf (pem, (int) len);
  if (!bio)
    return avm_error_sys (err, ENOMEM, "%s", what);
  pkey = sym_PEM_read_bio_PrivateKey (bio, NULL, no_password, NULL);
  sym_ERR_clear_error ();
  if (!pkey)
    return avm_error_input (err, "%s: not an unencrypted PEM private key", what);

  if (!sym_EVP_PKEY_is_a (pkey, "RSA"))
    return avm_error_input (err, "%s: not an RSA-4096 key (%s); AVB SHA256_RSA4096 needs a 4096-bit key", what,
                            sym_EVP_PKEY_get0_type_name (pkey) ? sym_EVP_PKEY_get0_type_name (pkey) : "unknown type");
  int bits = sym_EVP_PKEY_get_bits (pkey);
  if (!sym_EVP_PKEY_get_bn_param (pkey, OSSL_PKEY_PARAM_RSA_N, &n)
      || !sym_EVP_PKEY_get_bn_param (pkey, OSSL_PKEY_PARAM_RSA_E, &e))
    return ossl_error (err, "%s: reading the RSA key", what);
  if (bits != KEY_BITS || sym_BN_num_bits (n) != KEY_BITS)
    return avm_error_input (err, "%s: not an RSA-4096 key (RSA-%d); AVB SHA256_RSA4096 needs a 4096-bit key", what,
                            sym_BN_num_bits (n));
  if (!sym_BN_is_word (e, RSA_F4))
    {
      char *dec = sym_BN_bn2dec (e);
      r = avm_error_input (err, "%s: RSA public exponent is %s; AVB needs 65537", what, dec ? dec : "?");
      sym_CRYPTO_free (dec, OPENSSL_FILE, OPENSSL_LINE);
      return r;
    }

  _cleanup_free_ struct avm_avb_key *key = calloc (1, sizeof *key);
  if (!key)
    return avm_error_sys (err, ENOMEM, "%s", what);
  r = make_blob (n, key->blob, what, err);
  if (r < 0)
    return r;
  key->pkey = steal_pointer (&pkey);
  *out = steal_pointer (&key);
  return 0;
}

int
avm_avb_key_load (const char *path, struct avm_avb_key **key, avm_error_t *err)
{
  _cleanup_close_ int fd = -1;
  struct stat st;
  uint8_t *buf = NULL;
  size_t len = 0;
  int r;

  if ((r = avm_dlopen_crypto (err)) < 0)
    return r;
  /* A FIFO or a device is refused, never waited on or read from.  */
  if ((r = avm_open_regular (path, "a PEM private key", &fd, &st, err)) < 0)
    return r;
  if ((uint64_t) st.st_size > MAX_KEY_FILE)
    return avm_error_input (err, "%s: not a PEM private key (%jd bytes)", path, (intmax_t) st.st_size);
  buf = malloc (MAX_KEY_FILE + 1);
  if (!buf)
    return avm_error_sys (err, ENOMEM, "reading %s", path);
  for (;;)
    {
      ssize_t n = read (fd, buf + len, MAX_KEY_FILE + 1 - len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          r = avm_error_sys (err, errno, "cannot read %s", path);
          sym_CRYPTO_clear_free (buf, MAX_KEY_FILE + 1, OPENSSL_FILE, OPENSSL_LINE);
          return r;
        }
      if (n == 0 || (len += n) > MAX_KEY_FILE)
        break;
    }
  r = avm_avb_key_load_pem (buf, len, path, key, err);
  sym_CRYPTO_clear_free (buf, MAX_KEY_FILE + 1, OPENSSL_FILE, OPENSSL_LINE);
  return r;
}

void
avm_avb_key_free (struct avm_avb_key *key)
{
  if (!key)
    return;
  sym_EVP_PKEY_free (key->pkey);
  free (key);
}

int
avm_avb_key_blob (const struct avm_avb_key *key, uint8_t blob[AVM_AVB_PUBKEY_SIZE], avm_error_t *err)
{
  memcpy (blob, key->blob, AVM_AVB_PUBKEY_SIZE);
  return 0;
}

void
avm_avb_key_sha1 (const struct avm_avb_key *key, char out[41])
{
  avm_avb_sha1_hex (key->blob, AVM_AVB_PUBKEY_SIZE, out);
}

int
avm_avb_pubkey_check (const uint8_t *blob, size_t len, const char *what, avm_error_t *err)
{
  _cleanup_bn_ BIGNUM *n = NULL;
  uint8_t want[AVM_AVB_PUBKEY_SIZE];
  int r;

  if ((r = avm_dlopen_crypto (err)) < 0)
    return r;
  if (len != AVM_AVB_PUBKEY_SIZE)
    return avm_error_input (err, "%s: not an RSA-4096 AVB public key (%zu bytes, expected %d)", what, len,
                            AVM_AVB_PUBKEY_SIZE);
  if (get_be32 (blob) != KEY_BITS)
    return avm_error_input (err, "%s: not an RSA-4096 AVB public key (key_num_bits %" PRIu32 ")", what,
                            get_be32 (blob));
  n = sym_BN_bin2bn (blob + 8, KEY_BYTES, NULL);
  if (!n)
    return avm_error_sys (err, ENOMEM, "%s", what);
  if (sym_BN_num_bits (n) != KEY_BITS || !sym_BN_is_odd (n))
    return avm_error_input (err, "%s: malformed AVB public key (modulus is not an odd 4096-bit number)", what);
  r = make_blob (n, want, what, err);
  if (r < 0)
    return r;
  if (memcmp (want, blob, AVM_AVB_PUBKEY_SIZE) != 0)
    return avm_error_input (err, "%s: malformed AVB public key (n0inv or rr do not match the modulus)", what);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Signing.  */

static int
sign_digest (const struct avm_avb_key *key, const uint8_t digest[HASH_SIZE], uint8_t sig[KEY_BYTES], avm_error_t *err)
{
  _cleanup_pkey_ctx_ EVP_PKEY_CTX *ctx = sym_EVP_PKEY_CTX_new_from_pkey (NULL, key->pkey, NULL);
  size_t siglen = KEY_BYTES;

  if (!ctx || sym_EVP_PKEY_sign_init (ctx) <= 0 || sym_EVP_PKEY_CTX_set_rsa_padding (ctx, RSA_PKCS1_PADDING) <= 0
      || sym_EVP_PKEY_CTX_set_signature_md (ctx, sym_EVP_sha256 ()) <= 0
      || sym_EVP_PKEY_sign (ctx, sig, &siglen, digest, HASH_SIZE) <= 0)
    return ossl_error (err, "RSA signature");
  if (siglen != KEY_BYTES)
    return avm_error_fail (err, EIO, "RSA signature of %zu bytes, expected %d", siglen, KEY_BYTES);
  return 0;
}

/* header || auth || aux with DESC (DESC_LEN bytes) as descriptors, signed
   with KEY (avbtool _generate_vbmeta_blob).  */
static int
make_vbmeta (const uint8_t *desc, size_t desc_len, const struct avm_avb_key *key, uint8_t **out, size_t *out_len,
             avm_error_t *err)
{
  size_t pk_off = desc_len;
  size_t aux_len = round_up (desc_len + AVM_AVB_PUBKEY_SIZE, 64);
  size_t total = HEADER_SIZE + AUTH_SIZE + aux_len;
  uint8_t digest[HASH_SIZE];
  int r;

  if (total > MAX_VBMETA_SIZE)
    return avm_error_input (err, "vbmeta of %zu bytes exceeds the maximum of %d", total, MAX_VBMETA_SIZE);
  _cleanup_free_ uint8_t *v = calloc (1, total);
  if (!v)
    return avm_error_sys (err, ENOMEM, "vbmeta");
  uint8_t *h = v, *auth = v + HEADER_SIZE, *aux = auth + AUTH_SIZE;

  memcpy (h, "AVB0", 4);
  put_be32 (h + 4, 1); /* required_libavb_version_major */
  put_be32 (h + 8, 0); /* required_libavb_version_minor */
  put_be64 (h + 12, AUTH_SIZE);
  put_be64 (h + 20, aux_len);
  put_be32 (h + 28, ALG_SHA256_RSA4096);
  put_be64 (h + 32, 0); /* hash_offset */
  put_be64 (h + 40, HASH_SIZE);
  put_be64 (h + 48, HASH_SIZE); /* signature_offset */
  put_be64 (h + 56, KEY_BYTES);
  put_be64 (h + 64, pk_off);
  put_be64 (h + 72, AVM_AVB_PUBKEY_SIZE);
  put_be64 (h + 80, pk_off + AVM_AVB_PUBKEY_SIZE); /* metadata offset, even when empty */
  put_be64 (h + 88, 0);
  put_be64 (h + 96, 0); /* descriptors_offset */
  put_be64 (h + 104, desc_len);
  /* rollback_index, flags, rollback_index_location: 0 */
  memcpy (h + 128, AVM_AVB_RELEASE_STRING, sizeof AVM_AVB_RELEASE_STRING);

  if (desc_len)
    memcpy (aux, desc, desc_len);
  memcpy (aux + pk_off, key->blob, AVM_AVB_PUBKEY_SIZE);

  r = avm_avb_sha256 (h, HEADER_SIZE, aux, aux_len, digest, err);
  if (r < 0)
    return r;
  memcpy (auth, digest, HASH_SIZE);
  r = sign_digest (key, digest, auth + HASH_SIZE, err);
  if (r < 0)
    return r;
  *out = steal_pointer (&v);
  *out_len = total;
  return 0;
}

static int
check_partition_name (const char *name, avm_error_t *err)
{
  size_t len = name ? strlen (name) : 0;
  if (len == 0 || len > 63)
    return avm_error_input (err, "AVB partition name \"%s\" must have 1 to 63 characters", name ? name : "");
  return 0;
}

int
avm_avb_hash_footer (const uint8_t *image, size_t len, const char *partition, uint64_t part_size,
                     const struct avm_avb_key *key, const uint8_t *salt, uint8_t **out, avm_error_t *err)
{
  uint8_t salt_buf[AVM_AVB_SALT_SIZE], digest[HASH_SIZE];
  _cleanup_free_ uint8_t *vbmeta = NULL;
  size_t vbmeta_len = 0;
  int r;

  if ((r = avm_dlopen_crypto (err)) < 0)
    return r;
  r = check_partition_name (partition, err);
  if (r < 0)
    return r;
  if (part_size % BLOCK != 0)
    return avm_error_input (err, "%s: partition size %" PRIu64 " is not a multiple of %d", partition, part_size, BLOCK);
  if (part_size < AVM_AVB_MAX_METADATA || len > part_size - AVM_AVB_MAX_METADATA
      || round_up (len, BLOCK) > part_size - AVM_AVB_MAX_METADATA || part_size > SIZE_MAX)
    return avm_error_input (err,
                            "%s: image of %zu bytes does not fit a partition of %" PRIu64 " bytes with AVB metadata",
                            partition, len, part_size);

  if (!salt)
    {
      if (sym_RAND_bytes (salt_buf, sizeof salt_buf) != 1)
        return ossl_error (err, "%s: random salt", partition);
      salt = salt_buf;
    }
  r = avm_avb_sha256 (salt, AVM_AVB_SALT_SIZE, image, len, digest, err);
  if (r < 0)
    return r;

  /* Hash descriptor.  */
  size_t name_len = strlen (partition);
  size_t nbf = round_up (HASH_DESC_SIZE - 16 + name_len + AVM_AVB_SALT_SIZE + HASH_SIZE, 8);
  uint8_t desc[16 + 256] = { 0 };
  put_be64 (desc, TAG_HASH);
  put_be64 (desc + 8, nbf);
  put_be64 (desc + 16, len);
  memcpy (desc + 24, "sha256", 6);
  put_be32 (desc + 56, name_len);
  put_be32 (desc + 60, AVM_AVB_SALT_SIZE);
  put_be32 (desc + 64, HASH_SIZE);
  put_be32 (desc + 68, 0); /* flags */
  memcpy (desc + HASH_DESC_SIZE, partition, name_len);
  memcpy (desc + HASH_DESC_SIZE + name_len, salt, AVM_AVB_SALT_SIZE);
  memcpy (desc + HASH_DESC_SIZE + name_len + AVM_AVB_SALT_SIZE, digest, HASH_SIZE);

  r = make_vbmeta (desc, 16 + nbf, key, &vbmeta, &vbmeta_len, err);
  if (r < 0)
    return r;

  _cleanup_free_ uint8_t *p = calloc (1, part_size);
  if (!p)
    return avm_error_sys (err, ENOMEM, "%s: partition of %" PRIu64 " bytes", partition, part_size);
  uint64_t vbmeta_off = round_up (len, BLOCK);
  if (len)
    memcpy (p, image, len);
  memcpy (p + vbmeta_off, vbmeta, vbmeta_len);
  uint8_t *f = p + part_size - AVM_AVB_FOOTER_SIZE;
  memcpy (f, "AVBf", 4);
  put_be32 (f + 4, 1);
  put_be32 (f + 8, 0);
  put_be64 (f + 12, len);
  put_be64 (f + 20, vbmeta_off);
  put_be64 (f + 28, vbmeta_len);
  *out = steal_pointer (&p);
  return 0;
}

int
avm_avb_make_vbmeta (const struct avm_avb_chain *chains, size_t n, const struct avm_avb_key *key, uint8_t **out,
                     size_t *len, avm_error_t *err)
{
  _cleanup_free_ uint8_t *desc = NULL;
  size_t desc_len = 0;
  int r;

  if ((r = avm_dlopen_crypto (err)) < 0)
    return r;
  for (size_t i = 0; i < n; i++)
    {
      r = check_partition_name (chains[i].partition, err);
      if (r < 0)
        return r;
      if (chains[i].rollback_index_location < 1)
        return avm_error_input (err, "chain partition %s: rollback index location must be at least 1",
                                chains[i].partition);
      for (size_t j = 0; j < i; j++)
        if (chains[j].rollback_index_location == chains[i].rollback_index_location)
          return avm_error_input (err, "chain partitions %s and %s use the same rollback index location %" PRIu32,
                                  chains[j].partition, chains[i].partition, chains[i].rollback_index_location);
      if (!chains[i].pubkey)
        return avm_error_input (err, "chain partition %s: no public key", chains[i].partition);
      _cleanup_free_ char *what = NULL;
      if (asprintf (&what, "chain partition %s", chains[i].partition) < 0)
        return avm_error_sys (err, ENOMEM, "vbmeta");
      r = avm_avb_pubkey_check (chains[i].pubkey, AVM_AVB_PUBKEY_SIZE, what, err);
      if (r < 0)
        return r;
      desc_len += 16 + round_up (CHAIN_DESC_SIZE - 16 + strlen (chains[i].partition) + AVM_AVB_PUBKEY_SIZE, 8);
      if (desc_len > MAX_VBMETA_SIZE)
        return avm_error_input (err, "too many chain partitions for a vbmeta image");
    }

  if (desc_len)
    {
      desc = calloc (1, desc_len);
      if (!desc)
        return avm_error_sys (err, ENOMEM, "vbmeta");
    }
  uint8_t *d = desc;
  for (size_t i = 0; i < n; i++)
    {
      size_t name_len = strlen (chains[i].partition);
      size_t nbf = round_up (CHAIN_DESC_SIZE - 16 + name_len + AVM_AVB_PUBKEY_SIZE, 8);
      put_be64 (d, TAG_CHAIN);
      put_be64 (d + 8, nbf);
      put_be32 (d + 16, chains[i].rollback_index_location);
      put_be32 (d + 20, name_len);
      put_be32 (d + 24, AVM_AVB_PUBKEY_SIZE);
      put_be32 (d + 28, 0); /* flags */
      memcpy (d + CHAIN_DESC_SIZE, chains[i].partition, name_len);
      memcpy (d + CHAIN_DESC_SIZE + name_len, chains[i].pubkey, AVM_AVB_PUBKEY_SIZE);
      d += 16 + nbf;
    }
  return make_vbmeta (desc, desc_len, key, out, len, err);
}

/* ------------------------------------------------------------------ */
/* Verification.  Everything read from DATA is bounds-checked first.  */

static int
verify_rsa (const uint8_t *pk, const uint8_t digest[HASH_SIZE], const uint8_t *sig, bool *ok, avm_error_t *err)
{
  _cleanup_bn_ BIGNUM *n = sym_BN_bin2bn (pk + 8, KEY_BYTES, NULL);
  _cleanup_bn_ BIGNUM *e = sym_BN_new ();
  _cleanup_ (sym_OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = sym_OSSL_PARAM_BLD_new ();
  _cleanup_ (sym_OSSL_PARAM_freep) OSSL_PARAM *params = NULL;
  _cleanup_pkey_ctx_ EVP_PKEY_CTX *fctx = NULL;
  _cleanup_pkey_ctx_ EVP_PKEY_CTX *vctx = NULL;
  _cleanup_pkey_ EVP_PKEY *pkey = NULL;

  *ok = false;
  if (!n || !e || !bld || !sym_BN_set_word (e, RSA_F4))
    return avm_error_sys (err, ENOMEM, "RSA verification");
  if (sym_BN_num_bits (n) != KEY_BITS || !sym_BN_is_odd (n))
    return 0; /* not a usable modulus: the signature cannot verify */
  if (!sym_OSSL_PARAM_BLD_push_BN (bld, OSSL_PKEY_PARAM_RSA_N, n)
      || !sym_OSSL_PARAM_BLD_push_BN (bld, OSSL_PKEY_PARAM_RSA_E, e) || !(params = sym_OSSL_PARAM_BLD_to_param (bld)))
    return ossl_error (err, "RSA public key");
  fctx = sym_EVP_PKEY_CTX_new_from_name (NULL, "RSA", NULL);
  if (!fctx || sym_EVP_PKEY_fromdata_init (fctx) <= 0
      || sym_EVP_PKEY_fromdata (fctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
    return ossl_error (err, "RSA public key");
  vctx = sym_EVP_PKEY_CTX_new_from_pkey (NULL, pkey, NULL);
  if (!vctx || sym_EVP_PKEY_verify_init (vctx) <= 0 || sym_EVP_PKEY_CTX_set_rsa_padding (vctx, RSA_PKCS1_PADDING) <= 0
      || sym_EVP_PKEY_CTX_set_signature_md (vctx, sym_EVP_sha256 ()) <= 0)
    return ossl_error (err, "RSA verification");
  *ok = sym_EVP_PKEY_verify (vctx, sig, KEY_BYTES, digest, HASH_SIZE) == 1;
  sym_ERR_clear_error ();
  return 0;
}

/* Walk the descriptors: record the first hash descriptor and the chain
   descriptors.  IMAGE (IMAGE_LEN bytes) is the partition for the digest
   check, or NULL.  */
static int
walk_descriptors (const uint8_t *d, uint64_t size, const uint8_t *image, size_t image_len, const char *what,
                  struct avm_avb_info *info, avm_error_t *err)
{
  bool have_hash = false;
  uint64_t off = 0;

  while (off < size)
    {
      uint64_t left = size - off;
      if (left < 16)
        return avm_error_input (err, "%s: truncated descriptor at offset %" PRIu64 " of the descriptors", what, off);
      const uint8_t *p = d + off;
      uint64_t tag = get_be64 (p), nbf = get_be64 (p + 8);
      if (nbf % 8 != 0 || nbf > left - 16)
        return avm_error_input (err,
                                "%s: descriptor at offset %" PRIu64 " claims %" PRIu64
                                " bytes, beyond the descriptor area",
                                what, off, nbf);

      if (tag == TAG_HASH)
        {
          if (nbf < HASH_DESC_SIZE - 16)
            return avm_error_input (err, "%s: hash descriptor too short", what);
          uint64_t image_size = get_be64 (p + 16);
          uint32_t name_len = get_be32 (p + 56), salt_len = get_be32 (p + 60), digest_len = get_be32 (p + 64);
          uint64_t need = (uint64_t) name_len + salt_len + digest_len; /* < 2^34 */
          if (need > nbf - (HASH_DESC_SIZE - 16))
            return avm_error_input (err, "%s: hash descriptor fields exceed the descriptor", what);
          if (!have_hash)
            {
              const uint8_t *name = p + HASH_DESC_SIZE, *salt = name + name_len, *digest = salt + salt_len;
              static const uint8_t sha256_name[32] = "sha256";
              have_hash = true;
              copy_name (info->partition, name, name_len);
              if (image)
                {
                  if (image_size > image_len)
                    return avm_error_input (err,
                                            "%s: hash descriptor covers %" PRIu64
                                            " bytes, more than the %zu-byte partition",
                                            what, image_size, image_len);
                  if (memcmp (p + 24, sha256_name, sizeof sha256_name) == 0 && digest_len == HASH_SIZE)
                    {
                      uint8_t md[HASH_SIZE];
                      int r = avm_avb_sha256 (salt, salt_len, image, image_size, md, err);
                      if (r < 0)
                        return r;
                      info->digest_ok = sym_CRYPTO_memcmp (md, digest, HASH_SIZE) == 0;
                    }
                }
            }
        }
      else if (tag == TAG_CHAIN)
        {
          if (nbf < CHAIN_DESC_SIZE - 16)
            return avm_error_input (err, "%s: chain partition descriptor too short", what);
          uint32_t location = get_be32 (p + 16), name_len = get_be32 (p + 20), pk_len = get_be32 (p + 24);
          if ((uint64_t) name_len + pk_len > nbf - (CHAIN_DESC_SIZE - 16))
            return avm_error_input (err, "%s: chain partition descriptor fields exceed the descriptor", what);
          if (info->n_chains < ARRAY_SIZE (info->chains))
            {
              const uint8_t *name = p + CHAIN_DESC_SIZE;
              copy_name (info->chains[info->n_chains].partition, name, name_len);
              info->chains[info->n_chains].location = location;
              avm_avb_sha1_hex (name + name_len, pk_len, info->chains[info->n_chains].key_sha1);
              info->n_chains++;
            }
          info->n_chains_total++;
        }
      off += 16 + nbf;
    }
  return 0;
}

/* Verify the vbmeta blob at V (LEN bytes available).  */
static int
verify_blob (const uint8_t *v, size_t len, const uint8_t *image, size_t image_len, const char *what,
             struct avm_avb_info *info, avm_error_t *err)
{
  int r;

  if (len < HEADER_SIZE)
    return avm_error_input (err, "%s: %zu bytes, too short for a vbmeta header", what, len);
  if (memcmp (v, "AVB0", 4) != 0)
    return avm_error_input (err, "%s: no vbmeta header (magic AVB0)", what);
  info->libavb_major = get_be32 (v + 4);
  info->libavb_minor = get_be32 (v + 8);
  if (info->libavb_major != 1 || info->libavb_minor > LIBAVB_MINOR_SUPPORTED)
    return avm_error_fail (err, ENOTSUP, "%s: vbmeta requires libavb %" PRIu32 ".%" PRIu32 " (supported: 1.0 to 1.%d)",
                           what, info->libavb_major, info->libavb_minor, LIBAVB_MINOR_SUPPORTED);
  if (v[128 + 47] != 0)
    return avm_error_input (err, "%s: vbmeta release string is not NUL-terminated", what);

  uint64_t auth_size = get_be64 (v + 12), aux_size = get_be64 (v + 20);
  uint64_t hash_off = get_be64 (v + 32), hash_size = get_be64 (v + 40);
  uint64_t sig_off = get_be64 (v + 48), sig_size = get_be64 (v + 56);
  uint64_t pk_off = get_be64 (v + 64), pk_size = get_be64 (v + 72);
  uint64_t pkmd_off = get_be64 (v + 80), pkmd_size = get_be64 (v + 88);
  uint64_t desc_off = get_be64 (v + 96), desc_size = get_be64 (v + 104);
  info->algorithm = get_be32 (v + 28);
  info->rollback_index = get_be64 (v + 112);
  info->flags = get_be32 (v + 120);
  info->rollback_index_location = get_be32 (v + 124);

  if (auth_size % 64 != 0 || aux_size % 64 != 0)
    return avm_error_input (err, "%s: vbmeta block sizes are not multiples of 64", what);
  if (!fits (auth_size, aux_size, len - HEADER_SIZE))
    return avm_error_input (err,
                            "%s: vbmeta blocks (%" PRIu64 " + %" PRIu64 " bytes) extend beyond the %zu bytes"
                            " available",
                            what, auth_size, aux_size, len);
  if (!fits (hash_off, hash_size, auth_size) || !fits (sig_off, sig_size, auth_size))
    return avm_error_input (err, "%s: vbmeta hash or signature outside the authentication block", what);
  if (!fits (pk_off, pk_size, aux_size) || (pkmd_size > 0 && !fits (pkmd_off, pkmd_size, aux_size)))
    return avm_error_input (err, "%s: vbmeta public key outside the auxiliary block", what);
  if (!fits (desc_off, desc_size, aux_size))
    return avm_error_input (err, "%s: vbmeta descriptors outside the auxiliary block", what);

  const uint8_t *auth = v + HEADER_SIZE, *aux = auth + auth_size;
  const uint8_t *pk = aux + pk_off;
  if (pk_size >= 8)
    avm_avb_sha1_hex (pk, pk_size, info->key_sha1);

  if (info->algorithm != ALG_SHA256_RSA4096)
    return avm_error_fail (err, ENOTSUP,
                           "%s: vbmeta algorithm %" PRIu32 " is not supported (only 2,"
                           " SHA256_RSA4096)",
                           what, info->algorithm);
  if (hash_size != HASH_SIZE || sig_size != KEY_BYTES)
    return avm_error_input (err, "%s: vbmeta hash or signature size does not match SHA256_RSA4096", what);
  if (pk_size != AVM_AVB_PUBKEY_SIZE || get_be32 (pk) != KEY_BITS)
    return avm_error_input (err, "%s: vbmeta public key is not an RSA-4096 key blob", what);

  uint8_t md[HASH_SIZE];
  r = avm_avb_sha256 (v, HEADER_SIZE, aux, aux_size, md, err);
  if (r < 0)
    return r;
  info->hash_ok = sym_CRYPTO_memcmp (md, auth + hash_off, HASH_SIZE) == 0;
  bool rsa_ok = false;
  r = verify_rsa (pk, md, auth + sig_off, &rsa_ok, err);
  if (r < 0)
    return r;
  info->signature_ok = info->hash_ok && rsa_ok;

  return walk_descriptors (aux + desc_off, desc_size, image, image_len, what, info, err);
}

int
avm_avb_verify_vbmeta (const uint8_t *data, size_t len, const char *what, struct avm_avb_info *info, avm_error_t *err)
{
  memset (info, 0, sizeof *info);
  int r = avm_dlopen_crypto (err);
  if (r < 0)
    return r;
  r = verify_blob (data, len, NULL, 0, what, info, err);
  if (r == 0)
    info->vbmeta_size = HEADER_SIZE + get_be64 (data + 12) + get_be64 (data + 20);
  return r;
}

int
avm_avb_verify_footer (const uint8_t *data, size_t len, const char *what, struct avm_avb_info *info, avm_error_t *err)
{
  memset (info, 0, sizeof *info);
  int r = avm_dlopen_crypto (err);
  if (r < 0)
    return r;
  if (len < AVM_AVB_FOOTER_SIZE)
    return avm_error_input (err, "%s: %zu bytes, too short for an AVB footer", what, len);
  const uint8_t *f = data + len - AVM_AVB_FOOTER_SIZE;
  if (memcmp (f, "AVBf", 4) != 0)
    return avm_error_input (err, "%s: no AVB footer (magic AVBf in the last 64 bytes)", what);
  if (get_be32 (f + 4) != 1)
    return avm_error_fail (err, ENOTSUP, "%s: AVB footer version %" PRIu32 ".%" PRIu32 " is not supported", what,
                           get_be32 (f + 4), get_be32 (f + 8));
  info->has_footer = true;
  info->original_size = get_be64 (f + 12);
  info->vbmeta_offset = get_be64 (f + 20);
  info->vbmeta_size = get_be64 (f + 28);
  uint64_t room = len - AVM_AVB_FOOTER_SIZE;
  if (info->original_size > room)
    return avm_error_input (err, "%s: AVB footer claims an image of %" PRIu64 " bytes in %zu bytes", what,
                            info->original_size, len);
  if (!fits (info->vbmeta_offset, info->vbmeta_size, room))
    return avm_error_input (err,
                            "%s: AVB footer places vbmeta at %" PRIu64 " (%" PRIu64
                            " bytes), beyond the %zu-byte partition",
                            what, info->vbmeta_offset, info->vbmeta_size, len);
  return verify_blob (data + info->vbmeta_offset, info->vbmeta_size, data, len, what, info, err);
}
