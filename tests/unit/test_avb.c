/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AVB (lib/disk/avb.c) against the real tools: byte-for-byte golden values
 * produced by avbtool 1.3.0 (AOSP external/avb, test key
 * test/data/testkey_rsa4096.pem), structure checks against formats.md 1.9,
 * and cross-checks with the OpenSSL command line on keys generated with
 * `openssl genrsa`.  Also the verifier on corrupted and hostile input.
 *
 * Generated keys are made once per run, on first use, in
 * /tmp/avm-test-avbkeys-<pid of the Criterion runner> (under a lock, since
 * tests run in parallel worker processes), and removed when the runner exits.
 */
#include "disk/avb.h"
#include "util/cleanup.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>

TestSuite (avb);

/* AOSP external/avb test/data/testkey_rsa4096.pem (public test key).  */
static const char aosp_testkey[] = "-----BEGIN RSA PRIVATE KEY-----\n"
                                   "MIIJKQIBAAKCAgEA2ASv49OEbH4NiT3CjNMSVeliyfEPXswWcqtEfCxlSpS1FisA\n"
                                   "uwbvEwdTTPlkuSh6G4SYiNhnpCP5p0vcSg/3OhiuVKgV/rCtrDXaO60nvK/o0y83\n"
                                   "NNZRK2xaJ9eWBq9ruIDK+jC0sYWzTaqqwxY0Grjnx/r5CXerl5PrRK7PILzwgBHb\n"
                                   "IwxHcblt1ntgR4cWVpO3wiqasEwBDDDYk4fw7W6LvjBb9qav3YB8RV6PkZNeRP64\n"
                                   "ggfuecq/MXNiWOPNxLzCER2hSr/+J32h9jWjXsrcVy8+8Mldhmr4r2an7c247aFf\n"
                                   "upuFGtUJrpROO8/LXMl5gPfMpkqoatjTMRH59gJjKhot0RpmGxZBvb33TcBK5SdJ\n"
                                   "X39Y4yct5clmDlI4Fjj7FutTP+b96aJeJVnYeUX/A0wmogBajsJRoRX5e/RcgZsY\n"
                                   "RzXYLQXprQ81dBWjjovMJ9p8XeT6BNMFC7o6sklFL0fHDUE/l4BNP8G1u3Bfpzev\n"
                                   "SCISRS71D4eS4oQB+RIPFBUkzomZ7rnEF3BwFeq+xmwfYrP0LRaH+1YeRauuMuRe\n"
                                   "ke1TZl697a3mEjkNg8noa2wtpe7EWmaujJfXDWxJx/XEkjGLCe4z2qk3tkkY+A5g\n"
                                   "Rcgzke8gVxC+eC2DJtbKYfkv4L8FMFJaEhwAp13MfC7FlYujO/BDLl7dANsCAwEA\n"
                                   "AQKCAgAWoL8P/WsktjuSwb5sY/vKtgzcHH1Ar942GsysuTXPDy686LpF3R8T/jNy\n"
                                   "n7k2UBAia8xSoWCR6BbRuHeV5oA+PLGeOpE7QaSfonB+yc+cy0x3Or3ssfqEsu/q\n"
                                   "toGHp75/8DXS6WE0K04x94u1rdC9b9sPrrGBlWCLGzqM0kbuJfyHXdd3n2SofAUO\n"
                                   "b5QRSgxD+2tHUpEroHqHnWJCaf4J0QegX45yktlfOYNK/PHLDQXV8ly/ejc32M4Y\n"
                                   "Tv7hUtOOJTuq8VCg9OWZm2Zo1QuM9XEJTPCp5l3+o5vzO6yhk2gotDvD32CdA+3k\n"
                                   "tLJRP54M1Sn+IXb1gGKN9rKAtGJbenWIPlNObhQgkbwG89Qd+5rfMXsiPv1Hl1tK\n"
                                   "+tqwjD82/H3/ElaaMnwHCpeoGSp95OblAoBjzjMP2KsbvKSdL8O/rf1c3uOw9+DF\n"
                                   "cth0SA8y3ZzI11gJtb2QMGUrCny5n4sPGGbc3x38NdLhwbkPKZy60OiT4g2kNpdY\n"
                                   "dIitmAML2otttiF4AJM6AraPk8YVzkPLTksoL3azPBya5lIoDI2H3QvTtSvpXkXP\n"
                                   "yKchsDSWYbdqfplqC/X0Djp2/Zd8jpN5I6+1aSmpTmbwx/JTllY1N89FRZLIdxoh\n"
                                   "2k81LPiXhE6uRbjioJUlbnEWIpY2y2N2Clmxpjh0/IcXd1XImQKCAQEA7Zai+yjj\n"
                                   "8xit24aO9Tf3mZBXBjSaDodjC2KS1yCcAIXp6S7aH0wZipyZpQjys3zaBQyMRYFG\n"
                                   "bQqIfVAa6inWyDoofbAJHMu5BVcHFBPZvSS5YhDjc8XZ5dqSCxzIz9opIqAbm+b4\n"
                                   "aEV/3A3Jki5Dy8y/5j21GAK4Y4mqQOYzne7bDGi3Hyu041MGM4qfIcIkS5N1eHW4\n"
                                   "sDZJh6+K5tuxN5TX3nDZSpm9luNH8mLGgKAZ15b1LqXAtM5ycoBY9Hv082suPPom\n"
                                   "O+r0ybdRX6nDSH8+11y2KiP2kdVIUHCGkwlqgrux5YZyjCZPwOvEPhzSoOS+vBiF\n"
                                   "UVXA8idnxNLk1QKCAQEA6MIihDSXx+350fWqhQ/3Qc6gA/t2C15JwJ9+uFWA+gjd\n"
                                   "c/hn5HcmnmBJN4R04nLG/aU9SQur87a4mnC/Mp9JIARjHlZ/WNT4U0sJyPEVRg5U\n"
                                   "Z9VajAucWwi0JyJYCO1EMMy68Jp8qlTriK/L7nbD86JJ5ASxjojiN/0psK/Pk60F\n"
                                   "Rr+shKPi3jRQ1BDjDtAxOfo4ctf/nFbUM4bY0FNPQMP7WesoSKU0NBCRR6d0d2tq\n"
                                   "YflMjIQHx+N74P5jEdSCHTVGQm+dj47pUt3lLPLWc0bX1G/GekwXP4NUsR/70Hsi\n"
                                   "bwxkNnK2TSGzkt2rcOnutP125rJu6WpV7SNrq9rm7wKCAQAfMROcnbWviKHqnDPQ\n"
                                   "hdR/2K9UJTvEhInASOS2UZWpi+s1rez9BuSjigOx4wbaAZ4t44PW7C3uyt84dHfU\n"
                                   "HkIQb3I5bg8ENMrJpK9NN33ykwuzkDwMSwFcZ+Gci97hSubzoMl/IkeiiN1MapL4\n"
                                   "GhLUgsD+3UMVL+Y9SymK8637IgyoCGdiND6/SXsa8SwLJo3VTjqx4eKpX7cvlSBL\n"
                                   "RrRxc50TmwUsAhsd4CDl9YnSATLjVvJBeYlfM2tbFPaYwl1aR8v+PWkfnK0efm60\n"
                                   "fHki33HEnGteBPKuGq4vwVYpn6bYGwQz+f6335/A2DMfZHFSpjVURHPcRcHbCMla\n"
                                   "0cUxAoIBAQC25eYNkO478mo+bBbEXJlkoqLmvjAyGrNFo48F9lpVH6Y0vNuWkXJN\n"
                                   "PUgLUhAu6RYotjGENqG17rz8zt/PPY9Ok2P3sOx8t00y1mIn/hlDZXs55FM0fOMu\n"
                                   "PZaiscAPs7HDzvyOmDah+fzi+ZD8H2M3DS2W+YE0iaeJa2vZJS2t02W0BGXiDI33\n"
                                   "IZDqMyLYvwwPjOnShJydEzXID4xLl0tNjzLxo3GSNA7jYqlmbtV8CXIc7rMSL6WV\n"
                                   "ktIDKKJcnmpn3TcKeX6MEjaSIT82pNOS3fY3PmXuL+CMzfw8+u77Eecq78fHaTiL\n"
                                   "P5JGM93F6mzi19EY0tmInUBMCWtQLcENAoIBAQCg0KaOkb8T36qzPrtgbfou0E2D\n"
                                   "ufdpL1ugmD4edOFKQB5fDFQhLnSEVSJq3KUg4kWsXapQdsBd6kLdxS+K6MQrLBzr\n"
                                   "4tf0c7UCF1AzWk6wXMExZ8mRb2RkGZYQB2DdyhFB3TPmnq9CW8JCq+6kxg/wkU4s\n"
                                   "vM4JXzgcqVoSf42QJl+B9waeWhg0BTWx01lal4ds88HvEKmE0ik5GwiDbr7EvDDw\n"
                                   "E6UbZtQcIoSTIIZDgYqVFfR2DAho3wXJRsOXh433lEJ8X7cCDzrngFbQnlKrpwML\n"
                                   "Xgm0SIUc+Nf5poMM3rfLFK77t/ob4w+5PwRKcoSniyAxrHd6bwykYA8Vuydv\n"
                                   "-----END RSA PRIVATE KEY-----\n";

/* Golden values from avbtool.py (AOSP external/avb, AVB_VERSION 1.3.0):
   extract_public_key; add_hash_footer --partition_size 73728 --algorithm
   SHA256_RSA4096 --key testkey_rsa4096.pem of (1) 4096 bytes with byte i =
   (i * 131 + 7) % 256, --partition_name uboot_env, --salt 00 x 32 and (2)
   the 36 bytes "androidboot.hardware=cutf_cvm\nfoo=1\n", --partition_name
   bootconfig, --salt 01 02 ... 20; make_vbmeta_image --chain_partition
   uboot_env:1:testkey.avbpubkey --chain_partition bootconfig:2:testkey.avbpubkey.  */
#define GOLD_PUBKEY_SHA1 "2597c218aae470a130f61162feaae70afd97f011"
#define GOLD_PUBKEY_SHA256 "7728e30f50bfa5cea165f473175a08803f6a8346642b5aa10913e9d9e6defef6"
#define GOLD_ENV_SHA256 "b073d1122c371ba6efe8409e1536e89eb4362f78b072e27f52642422d8940d08"
#define GOLD_ENV_DIGEST "0816f51e2e5a6e6ce9db4591baae497bc0cf66814154a22c3bdfad90b2e81dfa"
#define GOLD_BC_SHA256 "ebd49f1b47f9de034ccfeaf123187cf54d9e4a86005dc748addc540f6c41037a"
#define GOLD_BC_DIGEST "a543064379508f33e66b7739879c8ba8a9cf5c0cc0267e1100d34cad8ec6339a"
#define GOLD_VBMETA_SHA256 "e5af9c88d01841ad5862ce159e7b10fb7a2a0e7513b900a38688f9a6607c67cb"
#define BC_TEXT "androidboot.hardware=cutf_cvm\nfoo=1\n"

#define PART 73728
#define VB 4096 /* vbmeta offset in a footer partition of a <= 4096-byte image */

/* ------------------------------------------------------------------ */
/* Helpers.  */

static uint32_t
be32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint64_t
be64 (const uint8_t *p)
{
  return (uint64_t) be32 (p) << 32 | be32 (p + 4);
}

static void
set_be64 (uint8_t *p, uint64_t v)
{
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = v & 0xff;
}

static void
set_be32 (uint8_t *p, uint32_t v)
{
  for (int i = 3; i >= 0; i--, v >>= 8)
    p[i] = v & 0xff;
}

static void
to_hex (const uint8_t *d, size_t n, char *out, bool upper)
{
  const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  for (size_t i = 0; i < n; i++)
    {
      out[2 * i] = digits[d[i] >> 4];
      out[2 * i + 1] = digits[d[i] & 15];
    }
  out[2 * n] = '\0';
}

static void
sha256_hex (const uint8_t *d, size_t n, char out[65])
{
  uint8_t md[32];
  unsigned int len = 0;
  cr_assert (EVP_Digest (d, n, md, &len, EVP_sha256 (), NULL));
  to_hex (md, 32, out, false);
}

static bool
all_zero (const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i])
      return false;
  return true;
}

static char *
write_bin (const char *dir, const char *name, const void *data, size_t len)
{
  char *path = NULL;
  cr_assert (asprintf (&path, "%s/%s", dir, name) >= 0);
  FILE *f = fopen (path, "wb");
  cr_assert_not_null (f);
  cr_assert_eq (fwrite (data, 1, len, f), len);
  cr_assert_eq (fclose (f), 0);
  return path;
}

static int
run (char *const argv[], char **out)
{
  char *o = NULL, *e = NULL;
  int r = tu_run (argv, NULL, &o, &e);
  if (r != 0)
    cr_log_warn ("%s exited with %d: %s", argv[0], r, e ? e : "");
  free (e);
  if (out)
    *out = o;
  else
    free (o);
  return r;
}

static void
assert_msg (avm_error_t err, const char *want)
{
  cr_assert_not_null (err);
  cr_assert_str_eq (err->msg, want);
}

static struct avm_avb_key *
aosp_key (void)
{
  struct avm_avb_key *k = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  int r = avm_avb_key_load_pem (aosp_testkey, strlen (aosp_testkey), "testkey_rsa4096.pem", &k, &err);
  cr_assert_eq (r, 0, "%s", err ? err->msg : "");
  return k;
}

static uint8_t *
golden_env_image (void)
{
  uint8_t *img = malloc (4096);
  for (size_t i = 0; i < 4096; i++)
    img[i] = (uint8_t) ((i * 131 + 7) % 256);
  return img;
}

static uint8_t *
footer_of (const struct avm_avb_key *k, const uint8_t *img, size_t len, const char *name, uint64_t part,
           const uint8_t *salt)
{
  uint8_t *out = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  int r = avm_avb_hash_footer (img, len, name, part, k, salt, &out, &err);
  cr_assert_eq (r, 0, "%s", err ? err->msg : "");
  return out;
}

/* --- Generated keys, shared by the worker processes of one run.  --- */

static char *
keydir (void)
{
  return tu_run_shared_dir ("avbkeys");
}

/* Path of generated key NAME, made on first use.  */
static char *
gen_key (const char *name)
{
  char *dir = keydir (), *path = NULL, *tmp = NULL, *lock = NULL;
  struct stat st;

  if (mkdir (dir, 0700) < 0 && errno != EEXIST)
    cr_assert_fail ("mkdir %s: %s", dir, strerror (errno));
  cr_assert (lstat (dir, &st) == 0 && S_ISDIR (st.st_mode) && st.st_uid == getuid (), "%s is not ours", dir);
  cr_assert (asprintf (&path, "%s/%s", dir, name) >= 0);
  cr_assert (asprintf (&tmp, "%s/.tmp-%s", dir, name) >= 0);
  cr_assert (asprintf (&lock, "%s/.lock", dir) >= 0);
  int fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  cr_assert (fd >= 0);
  cr_assert_eq (flock (fd, LOCK_EX), 0);
  if (access (path, F_OK) != 0)
    {
      char *base = NULL;
      int r;
      if (streq (name, "k4096.pem"))
        r = run ((char *[]) { "openssl", "genrsa", "-out", tmp, "4096", NULL }, NULL);
      else if (streq (name, "k2048.pem"))
        r = run ((char *[]) { "openssl", "genrsa", "-out", tmp, "2048", NULL }, NULL);
      else if (streq (name, "k4096-e3.pem"))
        r = run ((char *[]) { "openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096", "-pkeyopt",
                              "rsa_keygen_pubexp:3", "-out", tmp, NULL },
                 NULL);
      else if (streq (name, "ec.pem"))
        r = run ((char *[]) { "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                              tmp, NULL },
                 NULL);
      else
        {
          /* Derived from k4096.pem (the lock is ours: no recursion into gen_key).  */
          cr_assert (asprintf (&base, "%s/k4096.pem", dir) >= 0);
          if (access (base, F_OK) != 0)
            cr_assert_eq (run ((char *[]) { "openssl", "genrsa", "-out", base, "4096", NULL }, NULL), 0);
          if (streq (name, "k4096-trad.pem"))
            r = run ((char *[]) { "openssl", "rsa", "-in", base, "-traditional", "-out", tmp, NULL }, NULL);
          else if (streq (name, "k4096-enc.pem"))
            r = run ((char *[]) { "openssl", "rsa", "-in", base, "-aes256", "-passout", "pass:secret", "-out", tmp,
                                  NULL },
                     NULL);
          else if (streq (name, "k4096-pub.pem"))
            r = run ((char *[]) { "openssl", "rsa", "-in", base, "-pubout", "-out", tmp, NULL }, NULL);
          else
            cr_assert_fail ("unknown key %s", name);
        }
      cr_assert_eq (r, 0, "generating %s", name);
      cr_assert_eq (rename (tmp, path), 0);
      free (base);
    }
  flock (fd, LOCK_UN);
  close (fd);
  free (dir);
  free (tmp);
  free (lock);
  return path;
}

static struct avm_avb_key *
load_ok (const char *path)
{
  struct avm_avb_key *k = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  int r = avm_avb_key_load (path, &k, &err);
  cr_assert_eq (r, 0, "%s", err ? err->msg : "");
  return k;
}

/* ------------------------------------------------------------------ */
/* Byte-for-byte against avbtool.  */

Test (avb, golden_pubkey_blob)
{
  struct avm_avb_key *k = aosp_key ();
  uint8_t blob[AVM_AVB_PUBKEY_SIZE];
  char hex[65], sha1[41];
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_avb_key_blob (k, blob, &err), 0);
  sha256_hex (blob, sizeof blob, hex);
  cr_assert_str_eq (hex, GOLD_PUBKEY_SHA256);
  avm_avb_key_sha1 (k, sha1);
  cr_assert_str_eq (sha1, GOLD_PUBKEY_SHA1);
  cr_assert_eq (be32 (blob), 4096);
  cr_assert_eq (avm_avb_pubkey_check (blob, sizeof blob, "testkey.avbpubkey", &err), 0);
  avm_avb_key_free (k);
}

Test (avb, golden_uboot_env_footer)
{
  struct avm_avb_key *k = aosp_key ();
  _cleanup_free_ uint8_t *img = golden_env_image ();
  uint8_t salt[32] = { 0 };
  _cleanup_free_ uint8_t *p = footer_of (k, img, 4096, "uboot_env", PART, salt);
  char hex[65];

  sha256_hex (p, PART, hex);
  cr_assert_str_eq (hex, GOLD_ENV_SHA256, "partition differs from avbtool's");
  avm_avb_key_free (k);
}

Test (avb, golden_bootconfig_footer)
{
  struct avm_avb_key *k = aosp_key ();
  uint8_t salt[32];
  for (int i = 0; i < 32; i++)
    salt[i] = i + 1;
  _cleanup_free_ uint8_t *p = footer_of (k, (const uint8_t *) BC_TEXT, strlen (BC_TEXT), "bootconfig", PART, salt);
  char hex[65];

  sha256_hex (p, PART, hex);
  cr_assert_str_eq (hex, GOLD_BC_SHA256, "partition differs from avbtool's");
  /* vbmeta at round4096(36) = 4096; the digest in the hash descriptor */
  cr_assert_eq (be64 (p + PART - 64 + 12), 36);
  cr_assert_eq (be64 (p + PART - 64 + 20), 4096);
  to_hex (p + VB + 256 + 576 + 132 + 10 + 32, 32, hex, false);
  cr_assert_str_eq (hex, GOLD_BC_DIGEST);
  cr_assert (all_zero (p + 36, 4096 - 36), "image not zero-extended to 4096");
  avm_avb_key_free (k);
}

Test (avb, golden_vbmeta_chains)
{
  struct avm_avb_key *k = aosp_key ();
  uint8_t blob[AVM_AVB_PUBKEY_SIZE];
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ uint8_t *v = NULL;
  size_t len = 0;
  char hex[65];

  cr_assert_eq (avm_avb_key_blob (k, blob, &err), 0);
  struct avm_avb_chain c[] = { { "uboot_env", 1, blob }, { "bootconfig", 2, blob } };
  cr_assert_eq (avm_avb_make_vbmeta (c, 2, k, &v, &len, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (len, 4160);
  sha256_hex (v, len, hex);
  cr_assert_str_eq (hex, GOLD_VBMETA_SHA256, "vbmeta differs from avbtool's");
  avm_avb_key_free (k);
}

/* ------------------------------------------------------------------ */
/* Structure (formats.md 1.9).  */

Test (avb, footer_layout)
{
  struct avm_avb_key *k = aosp_key ();
  _cleanup_free_ uint8_t *img = golden_env_image ();
  uint8_t salt[32] = { 0 }, blob[AVM_AVB_PUBKEY_SIZE];
  _cleanup_free_ uint8_t *p = footer_of (k, img, 4096, "uboot_env", PART, salt);
  _cleanup_error_ avm_error_t err = NULL;
  static const uint8_t footer[64] = {
    0x41, 0x56, 0x42, 0x66, 0, 0, 0,    1,    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x00, /* original_image_size 4096 */
    0,    0,    0,    0,    0, 0, 0x10, 0x00,                                           /* vbmeta_offset 4096 */
    0,    0,    0,    0,    0, 0, 0x08, 0x40,                                           /* vbmeta_size 2112 */
  };

  cr_assert_eq (avm_avb_key_blob (k, blob, &err), 0);
  cr_assert_eq (memcmp (p + PART - 64, footer, 64), 0, "footer bytes");
  cr_assert_eq (memcmp (p, img, 4096), 0, "image not at offset 0");
  cr_assert (all_zero (p + VB + 2112, PART - 64 - VB - 2112), "gap after the vbmeta blob not zero");

  const uint8_t *h = p + VB, *auth = h + 256, *aux = auth + 576;
  cr_assert_eq (memcmp (h, "AVB0", 4), 0);
  cr_assert_eq (be32 (h + 4), 1);
  cr_assert_eq (be32 (h + 8), 0);
  cr_assert_eq (be64 (h + 12), 576);
  cr_assert_eq (be64 (h + 20), 1280);
  cr_assert_eq (be32 (h + 28), 2);
  cr_assert_eq (be64 (h + 32), 0);
  cr_assert_eq (be64 (h + 40), 32);
  cr_assert_eq (be64 (h + 48), 32);
  cr_assert_eq (be64 (h + 56), 512);
  cr_assert_eq (be64 (h + 64), 208);
  cr_assert_eq (be64 (h + 72), 1032);
  cr_assert_eq (be64 (h + 80), 1240);
  cr_assert_eq (be64 (h + 88), 0);
  cr_assert_eq (be64 (h + 96), 0);
  cr_assert_eq (be64 (h + 104), 208);
  cr_assert_eq (be64 (h + 112), 0);
  cr_assert_eq (be32 (h + 120), 0);
  cr_assert_eq (be32 (h + 124), 0);
  cr_assert_str_eq ((const char *) h + 128, "avbtool 1.3.0");
  cr_assert (all_zero (h + 128 + 13, 256 - 128 - 13), "release string padding / reserved not zero");

  /* hash = SHA-256 (header || aux); auth padding zero */
  uint8_t md[32];
  EVP_MD_CTX *c = EVP_MD_CTX_new ();
  cr_assert (EVP_DigestInit_ex (c, EVP_sha256 (), NULL) && EVP_DigestUpdate (c, h, 256)
             && EVP_DigestUpdate (c, aux, 1280) && EVP_DigestFinal_ex (c, md, NULL));
  EVP_MD_CTX_free (c);
  cr_assert_eq (memcmp (auth, md, 32), 0, "stored hash");
  cr_assert (all_zero (auth + 544, 32));

  /* hash descriptor */
  cr_assert_eq (be64 (aux), 2);
  cr_assert_eq (be64 (aux + 8), 192);
  cr_assert_eq (be64 (aux + 16), 4096);
  cr_assert_str_eq ((const char *) aux + 24, "sha256");
  cr_assert (all_zero (aux + 30, 26));
  cr_assert_eq (be32 (aux + 56), 9);
  cr_assert_eq (be32 (aux + 60), 32);
  cr_assert_eq (be32 (aux + 64), 32);
  cr_assert_eq (be32 (aux + 68), 0);
  cr_assert (all_zero (aux + 72, 60));
  cr_assert_eq (memcmp (aux + 132, "uboot_env", 9), 0);
  cr_assert (all_zero (aux + 141, 32), "salt");
  char hex[65];
  to_hex (aux + 173, 32, hex, false);
  cr_assert_str_eq (hex, GOLD_ENV_DIGEST);
  cr_assert (all_zero (aux + 205, 3), "descriptor padding");
  cr_assert_eq (memcmp (aux + 208, blob, 1032), 0, "public key");
  cr_assert (all_zero (aux + 1240, 40), "aux padding");
  avm_avb_key_free (k);
}

Test (avb, vbmeta_chain_layout)
{
  struct avm_avb_key *k = aosp_key ();
  uint8_t blob[AVM_AVB_PUBKEY_SIZE];
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ uint8_t *v = NULL;
  size_t len = 0;

  cr_assert_eq (avm_avb_key_blob (k, blob, &err), 0);
  struct avm_avb_chain c[] = { { "uboot_env", 1, blob }, { "bootconfig", 2, blob } };
  cr_assert_eq (avm_avb_make_vbmeta (c, 2, k, &v, &len, &err), 0);
  cr_assert_eq (len, 4160);
  cr_assert_eq (be32 (v + 4), 1);
  cr_assert_eq (be32 (v + 8), 0);
  cr_assert_eq (be64 (v + 12), 576);
  cr_assert_eq (be64 (v + 20), 3328);
  cr_assert_eq (be64 (v + 64), 2272);
  cr_assert_eq (be64 (v + 80), 3304);
  cr_assert_eq (be64 (v + 104), 2272);

  const uint8_t *d = v + 256 + 576;
  const char *names[] = { "uboot_env", "bootconfig" };
  for (int i = 0; i < 2; i++, d += 1136)
    {
      size_t nl = strlen (names[i]);
      cr_assert_eq (be64 (d), 4);
      cr_assert_eq (be64 (d + 8), 1120);
      cr_assert_eq (be32 (d + 16), (uint32_t) i + 1);
      cr_assert_eq (be32 (d + 20), nl);
      cr_assert_eq (be32 (d + 24), 1032);
      cr_assert_eq (be32 (d + 28), 0);
      cr_assert (all_zero (d + 32, 60));
      cr_assert_eq (memcmp (d + 92, names[i], nl), 0);
      cr_assert_eq (memcmp (d + 92 + nl, blob, 1032), 0);
      cr_assert (all_zero (d + 92 + nl + 1032, 1136 - 92 - nl - 1032));
    }
  cr_assert_eq (memcmp (d, blob, 1032), 0, "signing key after the descriptors");

  struct avm_avb_info info;
  char sha1[41];
  avm_avb_key_sha1 (k, sha1);
  cr_assert_eq (avm_avb_verify_vbmeta (v, len, "vbmeta", &info, &err), 0, "%s", err ? err->msg : "");
  cr_assert (info.signature_ok && info.hash_ok);
  cr_assert_not (info.has_footer);
  cr_assert_eq (info.algorithm, 2);
  cr_assert_eq (info.libavb_major, 1);
  cr_assert_eq (info.libavb_minor, 0);
  cr_assert_eq (info.vbmeta_size, 4160);
  cr_assert_str_eq (info.key_sha1, sha1);
  cr_assert_eq (info.n_chains, 2);
  cr_assert_eq (info.n_chains_total, 2);
  cr_assert_str_eq (info.chains[0].partition, "uboot_env");
  cr_assert_eq (info.chains[0].location, 1);
  cr_assert_str_eq (info.chains[0].key_sha1, GOLD_PUBKEY_SHA1);
  cr_assert_str_eq (info.chains[1].partition, "bootconfig");
  cr_assert_eq (info.chains[1].location, 2);
  cr_assert_str_eq (info.chains[1].key_sha1, GOLD_PUBKEY_SHA1);
  cr_assert_str_eq (info.partition, "");

  /* As Cuttlefish stores it: zero-padded to 65536.  */
  _cleanup_free_ uint8_t *padded = calloc (1, AVM_AVB_VBMETA_PARTITION);
  memcpy (padded, v, len);
  cr_assert_eq (avm_avb_verify_vbmeta (padded, AVM_AVB_VBMETA_PARTITION, "vbmeta", &info, &err), 0);
  cr_assert (info.signature_ok);
  avm_avb_key_free (k);
}

Test (avb, vbmeta_no_chains)
{
  struct avm_avb_key *k = aosp_key ();
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ uint8_t *v = NULL;
  size_t len = 0;
  struct avm_avb_info info;

  cr_assert_eq (avm_avb_make_vbmeta (NULL, 0, k, &v, &len, &err), 0);
  cr_assert_eq (len, 256 + 576 + 1088);
  cr_assert_eq (be64 (v + 64), 0);
  cr_assert_eq (be64 (v + 80), 1032);
  cr_assert_eq (avm_avb_verify_vbmeta (v, len, "vbmeta", &info, &err), 0);
  cr_assert (info.signature_ok);
  cr_assert_eq (info.n_chains, 0);
  avm_avb_key_free (k);
}

Test (avb, vbmeta_chain_locations)
{
  struct avm_avb_key *k = aosp_key ();
  uint8_t blob[AVM_AVB_PUBKEY_SIZE];
  _cleanup_error_ avm_error_t err = NULL;
  uint8_t *v = NULL;
  size_t len = 0;

  cr_assert_eq (avm_avb_key_blob (k, blob, &err), 0);
  struct avm_avb_chain zero[] = { { "uboot_env", 0, blob } };
  cr_assert_eq (avm_avb_make_vbmeta (zero, 1, k, &v, &len, &err), -EINVAL);
  assert_msg (err, "chain partition uboot_env: rollback index location must be at least 1");
  cr_assert_eq (err->exit_code, AVM_EXIT_USAGE);

  struct avm_avb_chain dup[] = { { "uboot_env", 1, blob }, { "bootconfig", 2, blob }, { "misc", 1, blob } };
  cr_assert_eq (avm_avb_make_vbmeta (dup, 3, k, &v, &len, &err), -EINVAL);
  assert_msg (err, "chain partitions uboot_env and misc use the same rollback index location 1");

  uint8_t bad[AVM_AVB_PUBKEY_SIZE];
  memcpy (bad, blob, sizeof bad);
  bad[1000] ^= 1;
  struct avm_avb_chain badkey[] = { { "uboot_env", 1, bad } };
  cr_assert_eq (avm_avb_make_vbmeta (badkey, 1, k, &v, &len, &err), -EINVAL);
  assert_msg (err, "chain partition uboot_env: malformed AVB public key (n0inv or rr do not match the modulus)");

  struct avm_avb_chain noname[] = { { "", 1, blob } };
  cr_assert_eq (avm_avb_make_vbmeta (noname, 1, k, &v, &len, &err), -EINVAL);
  cr_assert_null (v);
  avm_avb_key_free (k);
}

/* ------------------------------------------------------------------ */
/* Against the OpenSSL command line, with keys from `openssl genrsa`.  */

Test (avb, pubkey_blob_matches_openssl)
{
  _cleanup_free_ char *pem = gen_key ("k4096.pem");
  _cleanup_free_ char *trad = gen_key ("k4096-trad.pem");
  struct avm_avb_key *k = load_ok (pem), *kt = load_ok (trad);
  uint8_t blob[AVM_AVB_PUBKEY_SIZE], blob_t[AVM_AVB_PUBKEY_SIZE];
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *out = NULL, *t = tu_read (trad);

  /* genrsa writes PKCS#8; the -traditional copy is PKCS#1: same blob */
  cr_assert (strstr (t, "BEGIN RSA PRIVATE KEY"));
  _cleanup_free_ char *p8 = tu_read (pem);
  cr_assert (strstr (p8, "BEGIN PRIVATE KEY"));
  cr_assert_eq (avm_avb_key_blob (k, blob, &err), 0);
  cr_assert_eq (avm_avb_key_blob (kt, blob_t, &err), 0);
  cr_assert_eq (memcmp (blob, blob_t, sizeof blob), 0);

  cr_assert_eq (be32 (blob), 4096);
  cr_assert_eq (run ((char *[]) { "openssl", "rsa", "-in", pem, "-noout", "-modulus", NULL }, &out), 0);
  char nhex[1025];
  to_hex (blob + 8, 512, nhex, true);
  char want[1100];
  snprintf (want, sizeof want, "Modulus=%s\n", nhex);
  cr_assert_str_eq (out, want);

  /* n0inv independently: Newton iteration for 1/n mod 2^32, negated.  */
  uint32_t n0 = be32 (blob + 8 + 508), inv = n0; /* correct to 3 bits for odd n0 */
  for (int i = 0; i < 5; i++)
    inv *= 2 - n0 * inv;
  cr_assert_eq (n0 * inv, 1);
  cr_assert_eq (be32 (blob + 4), (uint32_t) -inv);

  /* rr independently: 2^8192 mod n by modular exponentiation.  */
  BN_CTX *ctx = BN_CTX_new ();
  BIGNUM *n = BN_bin2bn (blob + 8, 512, NULL), *two = BN_new (), *ex = BN_new (), *rr = BN_new ();
  cr_assert (BN_set_word (two, 2) && BN_set_word (ex, 8192) && BN_mod_exp (rr, two, ex, n, ctx));
  uint8_t rrb[512];
  cr_assert_eq (BN_bn2binpad (rr, rrb, 512), 512);
  cr_assert_eq (memcmp (blob + 520, rrb, 512), 0, "rr");
  BN_free (n), BN_free (two), BN_free (ex), BN_free (rr), BN_CTX_free (ctx);

  cr_assert_eq (avm_avb_pubkey_check (blob, sizeof blob, "k.avbpubkey", &err), 0);
  blob[1031] ^= 1;
  cr_assert_eq (avm_avb_pubkey_check (blob, sizeof blob, "k.avbpubkey", &err), -EINVAL);
  assert_msg (err, "k.avbpubkey: malformed AVB public key (n0inv or rr do not match the modulus)");
  cr_assert_eq (avm_avb_pubkey_check (blob, 520, "k.avbpubkey", &err), -EINVAL);
  assert_msg (err, "k.avbpubkey: not an RSA-4096 AVB public key (520 bytes, expected 1032)");
  avm_avb_key_free (k);
  avm_avb_key_free (kt);
}

Test (avb, signature_verifies_with_openssl)
{
  _cleanup_free_ char *pem = gen_key ("k4096.pem");
  _cleanup_free_ char *dir = tu_tmpdir ();
  struct avm_avb_key *k = load_ok (pem);
  _cleanup_free_ uint8_t *img = golden_env_image ();
  _cleanup_free_ uint8_t *p = footer_of (k, img, 4096, "uboot_env", PART, NULL);
  _cleanup_free_ char *out = NULL, *out2 = NULL, *pubout = NULL;

  uint8_t data[256 + 1280];
  memcpy (data, p + VB, 256);
  memcpy (data + 256, p + VB + 256 + 576, 1280);
  _cleanup_free_ char *dpath = write_bin (dir, "data.bin", data, sizeof data);
  _cleanup_free_ char *spath = write_bin (dir, "sig.bin", p + VB + 256 + 32, 512);
  _cleanup_free_ char *pub = NULL;
  cr_assert (asprintf (&pub, "%s/pub.pem", dir) >= 0);
  cr_assert_eq (run ((char *[]) { "openssl", "rsa", "-in", pem, "-pubout", "-out", pub, NULL }, NULL), 0);
  cr_assert_eq (run ((char *[]) { "openssl", "dgst", "-sha256", "-verify", pub, "-signature", spath, dpath, NULL },
                     &out),
                0);
  cr_assert_str_eq (out, "Verified OK\n");

  /* and signing the same bytes with the CLI gives the same signature */
  _cleanup_free_ char *s2 = NULL;
  cr_assert (asprintf (&s2, "%s/sig2.bin", dir) >= 0);
  cr_assert_eq (run ((char *[]) { "openssl", "dgst", "-sha256", "-sign", pem, "-out", s2, dpath, NULL }, NULL), 0);
  _cleanup_free_ char *sig2 = tu_read (s2);
  cr_assert_eq (memcmp (sig2, p + VB + 256 + 32, 512), 0, "signature differs from openssl dgst -sign");

  /* one flipped byte: the CLI refuses it too */
  data[200] ^= 0x40;
  free (write_bin (dir, "data.bin", data, sizeof data));
  char *e = NULL;
  int r = tu_run ((char *[]) { "openssl", "dgst", "-sha256", "-verify", pub, "-signature", spath, dpath, NULL }, NULL,
                  &out2, &e);
  free (e);
  cr_assert_neq (r, 0);
  cr_assert (strstr (out2, "Verification failure"), "%s", out2);
  avm_avb_key_free (k);
  tu_rmtree (dir);
}

Test (avb, digest_matches_openssl_dgst)
{
  _cleanup_free_ char *pem = gen_key ("k4096.pem");
  _cleanup_free_ char *dir = tu_tmpdir ();
  struct avm_avb_key *k = load_ok (pem);
  const size_t len = 5000; /* not a multiple of 4096: vbmeta at 8192 */
  _cleanup_free_ uint8_t *img = malloc (len);
  for (size_t i = 0; i < len; i++)
    img[i] = (uint8_t) (i * 7 ^ i >> 8);
  uint64_t part = 4096 * 20; /* round4096 (5000) + 69632 = 77824 <= 81920 */
  _cleanup_free_ uint8_t *p = footer_of (k, img, len, "bootconfig", part, NULL);
  _cleanup_free_ char *out = NULL;

  cr_assert_eq (be64 (p + part - 64 + 12), len);
  cr_assert_eq (be64 (p + part - 64 + 20), 8192);
  cr_assert (all_zero (p + len, 8192 - len));
  const uint8_t *desc = p + 8192 + 256 + 576;
  cr_assert_eq (be32 (desc + 56), 10);
  const uint8_t *salt = desc + 132 + 10, *digest = salt + 32;
  cr_assert_not (all_zero (salt, 32), "random salt");

  _cleanup_free_ uint8_t *sd = malloc (32 + len);
  memcpy (sd, salt, 32);
  memcpy (sd + 32, img, len);
  _cleanup_free_ char *path = write_bin (dir, "salted.bin", sd, 32 + len);
  cr_assert_eq (run ((char *[]) { "openssl", "dgst", "-sha256", "-r", path, NULL }, &out), 0);
  char hex[65];
  to_hex (digest, 32, hex, false);
  cr_assert_eq (strncmp (out, hex, 64), 0, "openssl: %s ours: %s", out, hex);

  /* a second run picks another salt, and both verify */
  _cleanup_free_ uint8_t *p2 = footer_of (k, img, len, "bootconfig", part, NULL);
  cr_assert_neq (memcmp (p2 + 8192 + 256 + 576 + 142, salt, 32), 0);
  struct avm_avb_info info;
  _cleanup_error_ avm_error_t err = NULL;
  cr_assert_eq (avm_avb_verify_footer (p2, part, "bootconfig", &info, &err), 0);
  cr_assert (info.signature_ok && info.digest_ok);
  avm_avb_key_free (k);
  tu_rmtree (dir);
}

/* ------------------------------------------------------------------ */
/* Key rejections.  */

static void
assert_key_refused (const char *path, int code, int exit_code, const char *msg)
{
  struct avm_avb_key *k = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  cr_assert_eq (avm_avb_key_load (path, &k, &err), code, "%s", err ? err->msg : "(no error)");
  cr_assert_null (k, "%s: a key was returned", path);
  assert_msg (err, msg);
  cr_assert_eq (err->exit_code, exit_code, "%s: exit code %d, expected %d", path, err->exit_code, exit_code);
}

/* Keys of the wrong kind: the key file gen_key makes, and what the message
   says after "PATH: ".  */
struct key_case
{
  /* Arrays, not pointers: the parameters are copied to the test's process.  */
  char name[16], file[16], why[128];
};

ParameterizedTestParameters (avb, key_refused)
{
  static struct key_case cases[] = {
    { "rsa2048", "k2048.pem", "not an RSA-4096 key (RSA-2048); AVB SHA256_RSA4096 needs a 4096-bit key" },
    { "exponent3", "k4096-e3.pem", "RSA public exponent is 3; AVB needs 65537" },
    { "ec", "ec.pem", "not an RSA-4096 key (EC); AVB SHA256_RSA4096 needs a 4096-bit key" },
  };
  return cr_make_param_array (struct key_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest (struct key_case *c, avb, key_refused)
{
  _cleanup_free_ char *pem = gen_key (c->file);
  _cleanup_free_ char *msg = NULL;
  cr_assert (asprintf (&msg, "%s: %s", pem, c->why) > 0, "%s", c->name);
  assert_key_refused (pem, -EINVAL, AVM_EXIT_USAGE, msg);
}

Test (avb, key_not_a_key)
{
  _cleanup_free_ char *dir = tu_tmpdir ();
  _cleanup_free_ char *path = tu_write (dir, "key.pem", "hello\n");
  _cleanup_free_ char *msg = NULL;
  cr_assert (asprintf (&msg, "%s: not an unencrypted PEM private key", path) > 0);
  assert_key_refused (path, -EINVAL, AVM_EXIT_USAGE, msg);

  /* a truncated PEM, and an empty file */
  _cleanup_free_ char *half = strndup (aosp_testkey, 1500);
  free (tu_write (dir, "key.pem", half));
  assert_key_refused (path, -EINVAL, AVM_EXIT_USAGE, msg);
  free (tu_write (dir, "key.pem", ""));
  assert_key_refused (path, -EINVAL, AVM_EXIT_USAGE, msg);

  _cleanup_free_ char *dmsg = NULL;
  cr_assert (asprintf (&dmsg, "%s is a directory, not a PEM private key", dir) > 0);
  assert_key_refused (dir, -EINVAL, AVM_EXIT_USAGE, dmsg);
  tu_rmtree (dir);
}

Test (avb, key_missing)
{
  assert_key_refused ("/nonexistent/avm/key.pem", -ENOENT, AVM_EXIT_FAILURE,
                      "cannot open /nonexistent/avm/key.pem: No such file or directory");
}

Test (avb, key_public_or_encrypted_refused)
{
  _cleanup_free_ char *pub = gen_key ("k4096-pub.pem");
  _cleanup_free_ char *enc = gen_key ("k4096-enc.pem");
  _cleanup_free_ char *m1 = NULL, *m2 = NULL;
  cr_assert (asprintf (&m1, "%s: not an unencrypted PEM private key", pub) > 0);
  cr_assert (asprintf (&m2, "%s: not an unencrypted PEM private key", enc) > 0);
  assert_key_refused (pub, -EINVAL, AVM_EXIT_USAGE, m1);
  assert_key_refused (enc, -EINVAL, AVM_EXIT_USAGE, m2);
}

Test (avb, key_from_memory)
{
  struct avm_avb_key *k = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  cr_assert_eq (avm_avb_key_load_pem ("junk", 4, "etc/cvd_avb_testkey_rsa4096.pem", &k, &err), -EINVAL);
  assert_msg (err, "etc/cvd_avb_testkey_rsa4096.pem: not an unencrypted PEM private key");
  cr_assert_null (k);
}

/* ------------------------------------------------------------------ */
/* Partition sizes.  */

Test (avb, footer_partition_size_checks)
{
  struct avm_avb_key *k = aosp_key ();
  _cleanup_free_ uint8_t *img = calloc (1, 8192);
  _cleanup_error_ avm_error_t err = NULL;
  uint8_t *out = NULL;

  cr_assert_eq (avm_avb_hash_footer (img, 4097, "uboot_env", PART, k, NULL, &out, &err), -EINVAL);
  assert_msg (err, "uboot_env: image of 4097 bytes does not fit a partition of 73728 bytes with AVB metadata");
  cr_assert_eq (err->exit_code, AVM_EXIT_USAGE);
  cr_assert_eq (avm_avb_hash_footer (img, 4096, "uboot_env", 69632, k, NULL, &out, &err), -EINVAL);
  assert_msg (err, "uboot_env: image of 4096 bytes does not fit a partition of 69632 bytes with AVB metadata");
  cr_assert_eq (avm_avb_hash_footer (img, 4096, "uboot_env", 4096, k, NULL, &out, &err), -EINVAL);
  cr_assert_eq (avm_avb_hash_footer (img, 10, "bootconfig", 73728 + 512, k, NULL, &out, &err), -EINVAL);
  assert_msg (err, "bootconfig: partition size 74240 is not a multiple of 4096");
  cr_assert_null (out);

  /* the smallest partitions that fit */
  uint8_t *p = footer_of (k, img, 4097, "uboot_env", 77824, NULL);
  free (p);
  p = footer_of (k, img, 0, "empty", 69632, NULL);
  struct avm_avb_info info;
  cr_assert_eq (avm_avb_verify_footer (p, 69632, "empty", &info, &err), 0);
  cr_assert (info.signature_ok && info.digest_ok);
  cr_assert_eq (info.vbmeta_offset, 0);
  cr_assert_eq (info.original_size, 0);
  free (p);
  avm_avb_key_free (k);
}

/* ------------------------------------------------------------------ */
/* The verifier.  */

Test (avb, verify_accepts_own_output)
{
  struct avm_avb_key *k = aosp_key ();
  _cleanup_free_ uint8_t *img = golden_env_image ();
  _cleanup_free_ uint8_t *p = footer_of (k, img, 4096, "uboot_env", PART, NULL);
  _cleanup_error_ avm_error_t err = NULL;
  struct avm_avb_info info;

  cr_assert_eq (avm_avb_verify_footer (p, PART, "uboot_env.img", &info, &err), 0, "%s", err ? err->msg : "");
  cr_assert (info.has_footer);
  cr_assert (info.signature_ok && info.hash_ok && info.digest_ok);
  cr_assert_eq (info.original_size, 4096);
  cr_assert_eq (info.vbmeta_offset, 4096);
  cr_assert_eq (info.vbmeta_size, 2112);
  cr_assert_eq (info.algorithm, 2);
  cr_assert_str_eq (info.partition, "uboot_env");
  cr_assert_str_eq (info.key_sha1, GOLD_PUBKEY_SHA1);
  cr_assert_eq (info.n_chains, 0);
  avm_avb_key_free (k);
}

/* Verify a private copy of exactly LEN bytes (so ASan sees any overread).  */
static int
verify_copy (const uint8_t *data, size_t len, bool footer, struct avm_avb_info *info, avm_error_t *err)
{
  uint8_t *c = malloc (len ? len : 1);
  memcpy (c, data, len);
  int r = footer ? avm_avb_verify_footer (c, len, "x.img", info, err)
                 : avm_avb_verify_vbmeta (c, len, "x.img", info, err);
  free (c);
  return r;
}

Test (avb, verify_detects_corruption)
{
  struct avm_avb_key *k = aosp_key ();
  _cleanup_free_ uint8_t *img = golden_env_image ();
  _cleanup_free_ uint8_t *p = footer_of (k, img, 4096, "uboot_env", PART, NULL);
  _cleanup_error_ avm_error_t err = NULL;
  struct avm_avb_info info;

  /* image byte: digest mismatch, vbmeta still fine */
  p[1234] ^= 1;
  cr_assert_eq (avm_avb_verify_footer (p, PART, "uboot_env.img", &info, &err), 0);
  cr_assert (info.signature_ok && info.hash_ok);
  cr_assert_not (info.digest_ok);
  p[1234] ^= 1;

  /* signature byte: RSA verification fails, hash fine */
  p[VB + 256 + 32 + 100] ^= 0x80;
  cr_assert_eq (avm_avb_verify_footer (p, PART, "uboot_env.img", &info, &err), 0);
  cr_assert (info.hash_ok && info.digest_ok);
  cr_assert_not (info.signature_ok);
  p[VB + 256 + 32 + 100] ^= 0x80;

  /* stored hash byte */
  p[VB + 256 + 5] ^= 2;
  cr_assert_eq (avm_avb_verify_footer (p, PART, "uboot_env.img", &info, &err), 0);
  cr_assert_not (info.hash_ok);
  cr_assert_not (info.signature_ok);
  p[VB + 256 + 5] ^= 2;

  /* header byte (release string) */
  p[VB + 140] ^= 0x20;
  cr_assert_eq (avm_avb_verify_footer (p, PART, "uboot_env.img", &info, &err), 0);
  cr_assert_not (info.hash_ok);
  cr_assert_not (info.signature_ok);
  cr_assert (info.digest_ok);
  p[VB + 140] ^= 0x20;

  /* descriptor byte (salt): hash mismatch and digest mismatch */
  p[VB + 256 + 576 + 145] ^= 1;
  cr_assert_eq (avm_avb_verify_footer (p, PART, "uboot_env.img", &info, &err), 0);
  cr_assert_not (info.hash_ok);
  cr_assert_not (info.digest_ok);
  p[VB + 256 + 576 + 145] ^= 1;

  /* embedded public key byte */
  p[VB + 256 + 576 + 208 + 300] ^= 1;
  cr_assert_eq (avm_avb_verify_footer (p, PART, "uboot_env.img", &info, &err), 0);
  cr_assert_not (info.signature_ok);
  cr_assert_neq (strcmp (info.key_sha1, GOLD_PUBKEY_SHA1), 0);
  p[VB + 256 + 576 + 208 + 300] ^= 1;

  cr_assert_eq (avm_avb_verify_footer (p, PART, "uboot_env.img", &info, &err), 0);
  cr_assert (info.signature_ok && info.hash_ok && info.digest_ok);
  avm_avb_key_free (k);
}

Test (avb, verify_structural_errors)
{
  struct avm_avb_key *k = aosp_key ();
  _cleanup_free_ uint8_t *img = golden_env_image ();
  _cleanup_free_ uint8_t *orig = footer_of (k, img, 4096, "uboot_env", PART, NULL);
  _cleanup_free_ uint8_t *p = malloc (PART);
  _cleanup_error_ avm_error_t err = NULL;
  struct avm_avb_info info;
  uint8_t *f = p + PART - 64, *h = p + VB, *d = h + 256 + 576;

#define RESET() memcpy (p, orig, PART)
/* clang-format off */
#define EXPECT(code, want)                                                                  \
  do                                                                                         \
    {                                                                                        \
      cr_assert_eq (verify_copy (p, PART, true, &info, &err), code, "%s", err ? err->msg : ""); \
      assert_msg (err, want);                                                                \
      RESET ();                                                                              \
    }                                                                                        \
  while (0)
  /* clang-format on */

  RESET ();
  cr_assert_eq (verify_copy (p, 63, true, &info, &err), -EINVAL);
  assert_msg (err, "x.img: 63 bytes, too short for an AVB footer");
  cr_assert_eq (verify_copy (p, PART - 1, true, &info, &err), -EINVAL);
  assert_msg (err, "x.img: no AVB footer (magic AVBf in the last 64 bytes)");

  f[7] = 2;
  EXPECT (-ENOTSUP, "x.img: AVB footer version 2.0 is not supported");
  set_be64 (f + 12, PART);
  EXPECT (-EINVAL, "x.img: AVB footer claims an image of 73728 bytes in 73728 bytes");
  set_be64 (f + 20, UINT64_MAX - 100);
  EXPECT (-EINVAL, "x.img: AVB footer places vbmeta at 18446744073709551515 (2112 bytes), beyond the 73728-byte "
                   "partition");
  set_be64 (f + 28, UINT64_MAX);
  EXPECT (-EINVAL, "x.img: AVB footer places vbmeta at 4096 (18446744073709551615 bytes), beyond the 73728-byte "
                   "partition");
  set_be64 (f + 28, 200);
  EXPECT (-EINVAL, "x.img: 200 bytes, too short for a vbmeta header");
  set_be64 (f + 28, 2111);
  EXPECT (-EINVAL, "x.img: vbmeta blocks (576 + 1280 bytes) extend beyond the 2111 bytes available");
  set_be64 (f + 20, 0);
  EXPECT (-EINVAL, "x.img: no vbmeta header (magic AVB0)");

  h[7] = 2;
  EXPECT (-ENOTSUP, "x.img: vbmeta requires libavb 2.0 (supported: 1.0 to 1.3)");
  h[11] = 4;
  EXPECT (-ENOTSUP, "x.img: vbmeta requires libavb 1.4 (supported: 1.0 to 1.3)");
  h[175] = 'x';
  EXPECT (-EINVAL, "x.img: vbmeta release string is not NUL-terminated");
  set_be64 (h + 12, 577);
  EXPECT (-EINVAL, "x.img: vbmeta block sizes are not multiples of 64");
  set_be64 (h + 20, UINT64_MAX - 63);
  EXPECT (-EINVAL, "x.img: vbmeta blocks (576 + 18446744073709551552 bytes) extend beyond the 2112 bytes available");
  set_be64 (h + 12, UINT64_MAX - 63);
  EXPECT (-EINVAL, "x.img: vbmeta blocks (18446744073709551552 + 1280 bytes) extend beyond the 2112 bytes available");
  set_be64 (h + 32, UINT64_MAX - 10);
  EXPECT (-EINVAL, "x.img: vbmeta hash or signature outside the authentication block");
  set_be64 (h + 48, 545);
  EXPECT (-EINVAL, "x.img: vbmeta hash or signature outside the authentication block");
  set_be64 (h + 56, UINT64_MAX);
  EXPECT (-EINVAL, "x.img: vbmeta hash or signature outside the authentication block");
  set_be64 (h + 64, 1280 - 1031);
  EXPECT (-EINVAL, "x.img: vbmeta public key outside the auxiliary block");
  set_be64 (h + 88, 1);
  set_be64 (h + 80, UINT64_MAX);
  EXPECT (-EINVAL, "x.img: vbmeta public key outside the auxiliary block");
  set_be64 (h + 96, 1);
  set_be64 (h + 104, 1280);
  EXPECT (-EINVAL, "x.img: vbmeta descriptors outside the auxiliary block");
  set_be64 (h + 104, UINT64_MAX);
  EXPECT (-EINVAL, "x.img: vbmeta descriptors outside the auxiliary block");
  set_be32 (h + 28, 1);
  EXPECT (-ENOTSUP, "x.img: vbmeta algorithm 1 is not supported (only 2, SHA256_RSA4096)");
  set_be32 (h + 28, 0);
  EXPECT (-ENOTSUP, "x.img: vbmeta algorithm 0 is not supported (only 2, SHA256_RSA4096)");
  set_be64 (h + 40, 31);
  EXPECT (-EINVAL, "x.img: vbmeta hash or signature size does not match SHA256_RSA4096");
  set_be64 (h + 72, 520);
  EXPECT (-EINVAL, "x.img: vbmeta public key is not an RSA-4096 key blob");

  /* descriptors (walked even though the hash no longer matches) */
  set_be64 (d + 8, 200);
  EXPECT (-EINVAL, "x.img: descriptor at offset 0 claims 200 bytes, beyond the descriptor area");
  set_be64 (d + 8, UINT64_MAX - 7);
  EXPECT (-EINVAL, "x.img: descriptor at offset 0 claims 18446744073709551608 bytes, beyond the descriptor area");
  set_be64 (d + 8, 191);
  EXPECT (-EINVAL, "x.img: descriptor at offset 0 claims 191 bytes, beyond the descriptor area");
  set_be64 (h + 104, 210); /* 2 stray bytes after the descriptor */
  EXPECT (-EINVAL, "x.img: truncated descriptor at offset 208 of the descriptors");
  set_be64 (d + 8, 112);
  set_be64 (h + 104, 128);
  EXPECT (-EINVAL, "x.img: hash descriptor too short");
  set_be32 (d + 56, UINT32_MAX);
  EXPECT (-EINVAL, "x.img: hash descriptor fields exceed the descriptor");
  set_be32 (d + 60, 40);
  EXPECT (-EINVAL, "x.img: hash descriptor fields exceed the descriptor");
  set_be64 (d + 16, PART + 1);
  EXPECT (-EINVAL, "x.img: hash descriptor covers 73729 bytes, more than the 73728-byte partition");
  set_be64 (d, 4); /* a chain descriptor too short for its key */
  EXPECT (-EINVAL, "x.img: chain partition descriptor fields exceed the descriptor");

  /* unknown descriptor tags are skipped */
  set_be64 (d, 99);
  cr_assert_eq (verify_copy (p, PART, true, &info, &err), 0);
  cr_assert_eq (info.partition[0], '\0');
  cr_assert_not (info.digest_ok);
  RESET ();

  /* hostile names are made printable */
  memcpy (d + 132, "ub\033[2J_e", 8);
  cr_assert_eq (verify_copy (p, PART, true, &info, &err), 0);
  cr_assert_str_eq (info.partition, "ub?[2J_ev");
  avm_avb_key_free (k);
#undef EXPECT
#undef RESET
}

/* Every single-byte change of the vbmeta blob either fails to parse or
   fails verification, except in the unhashed padding of the auth block.  */
Test (avb, verify_every_byte_flip)
{
  struct avm_avb_key *k = aosp_key ();
  _cleanup_free_ uint8_t *img = golden_env_image ();
  _cleanup_free_ uint8_t *p = footer_of (k, img, 4096, "uboot_env", PART, NULL);
  struct avm_avb_info info;

  for (size_t i = VB; i < VB + 2112; i++)
    {
      avm_error_t err = NULL;
      p[i] ^= 0x5a;
      int r = avm_avb_verify_footer (p, PART, "x", &info, &err);
      p[i] ^= 0x5a;
      avm_error_free (err);
      if (i >= VB + 256 + 544 && i < VB + 256 + 576)
        cr_assert (r == 0 && info.signature_ok && info.digest_ok, "byte %zu", i);
      else
        cr_assert (r < 0 || !info.signature_ok, "byte %zu accepted", i);
    }
  for (size_t i = PART - 64; i < PART; i++)
    {
      avm_error_t err = NULL;
      p[i] ^= 0xff;
      (void) avm_avb_verify_footer (p, PART, "x", &info, &err);
      p[i] ^= 0xff;
      avm_error_free (err);
    }
  avm_avb_key_free (k);
}

/* Every prefix of a vbmeta image, in a buffer of exactly that size.  */
Test (avb, verify_truncated_vbmeta)
{
  struct avm_avb_key *k = aosp_key ();
  uint8_t blob[AVM_AVB_PUBKEY_SIZE];
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ uint8_t *v = NULL;
  size_t len = 0;
  struct avm_avb_info info;

  cr_assert_eq (avm_avb_key_blob (k, blob, &err), 0);
  struct avm_avb_chain c[] = { { "uboot_env", 1, blob }, { "bootconfig", 2, blob } };
  cr_assert_eq (avm_avb_make_vbmeta (c, 2, k, &v, &len, &err), 0);
  for (size_t n = 0; n < len; n++)
    cr_assert_eq (verify_copy (v, n, false, &info, &err), -EINVAL, "prefix of %zu bytes", n);
  cr_assert_eq (verify_copy (v, len, false, &info, &err), 0);
  cr_assert (info.signature_ok);

  /* a chain descriptor claiming a huge key or name */
  set_be32 (v + 256 + 576 + 24, UINT32_MAX);
  cr_assert_eq (verify_copy (v, len, false, &info, &err), -EINVAL);
  assert_msg (err, "x.img: chain partition descriptor fields exceed the descriptor");
  avm_avb_key_free (k);
}

/* Hostile values in every 64-bit header field.  */
Test (avb, verify_hostile_header_fields)
{
  struct avm_avb_key *k = aosp_key ();
  _cleanup_free_ uint8_t *img = golden_env_image ();
  _cleanup_free_ uint8_t *p = footer_of (k, img, 4096, "uboot_env", PART, NULL);
  static const uint64_t values[] = { 0,
                                     1,
                                     8,
                                     63,
                                     64,
                                     208,
                                     512,
                                     576,
                                     1032,
                                     1280,
                                     2112,
                                     4096,
                                     65536,
                                     1ull << 32,
                                     1ull << 63,
                                     UINT64_MAX - 64,
                                     UINT64_MAX - 63,
                                     UINT64_MAX };
  static const int fields[] = { 12, 20, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112 };
  struct avm_avb_info info;

  for (size_t f = 0; f < ARRAY_SIZE (fields); f++)
    for (size_t v = 0; v < ARRAY_SIZE (values); v++)
      {
        uint8_t *h = p + VB + fields[f], saved[8];
        if (be64 (h) == values[v])
          continue;
        memcpy (saved, h, 8);
        set_be64 (h, values[v]);
        avm_error_t err = NULL;
        int r = avm_avb_verify_footer (p, PART, "x", &info, &err);
        cr_assert (r < 0 || !info.signature_ok, "field %d = %" PRIu64 " accepted", fields[f], values[v]);
        avm_error_free (err);
        memcpy (h, saved, 8);
      }
  avm_avb_key_free (k);
}
