/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cvd2img: the signing key of the properties disks and the public key that
 * must match it.
 */
#include "cvd2img/internal.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An .avbpubkey is 1032 bytes for RSA-4096: anything much larger is not one.  */
#define MAX_PUBKEY_FILE (64u << 10)

/* Host package file names, newest first (cuttlefish.md 2.2).  */
static const char *const key_files[] = { "etc/cvd_avb_testkey_rsa4096.pem", "etc/cvd_avb_testkey.pem" };
static const char *const pubkey_files[] = { "etc/cvd_rsa4096.avbpubkey", "etc/cvd.avbpubkey" };

/* The signing key, and its PEM text when it is the host package's test key
   (*PEM stays NULL with --key: a user's key is never copied).  */
int
avm_cvd2img_load_key (const struct avm_cvd2img_request *req, struct avm_imgset *set, struct avm_avb_key **key,
                      uint8_t **pem, size_t *pem_len, json_t *manifest, avm_error_t *err)
{
  int r;
  const char *source = req->key;
  if (req->key)
    r = avm_avb_key_load (req->key, key, err);
  else
    {
      size_t len = 0;
      r = -ENOENT;
      for (size_t i = 0; i < ARRAY_SIZE (key_files) && r == -ENOENT; i++)
        {
          r = avm_imgset_host_file (set, key_files[i], pem, &len, err);
          source = key_files[i];
        }
      if (r == -ENOENT)
        return avm_error_input (err, "%s: no signing key (%s or %s); pass --key KEY.pem", avm_imgset_label (set),
                                key_files[0], key_files[1]);
      if (r < 0)
        return r;
      _cleanup_free_ char *label = NULL;
      if (asprintf (&label, "%s:%s", avm_imgset_label (set), source) < 0)
        return avm_error_sys (err, ENOMEM, "key");
      r = avm_avb_key_load_pem (*pem, len, label, key, err);
      *pem_len = len;
    }
  if (r < 0)
    return r;

  uint8_t blob[AVM_AVB_PUBKEY_SIZE];
  char sha1[41];
  if ((r = avm_avb_key_blob (*key, blob, err)) < 0)
    return r;
  avm_avb_sha1_hex (blob, sizeof blob, sha1);
  json_object_set_new (manifest, "key", json_pack ("{s:s, s:s}", "source", source, "sha1", sha1));

  /* The public key users will put in their trust chain must be this key's.  */
  _cleanup_free_ uint8_t *pub = NULL;
  size_t publen = 0;
  const char *pubsrc = req->pubkey;
  if (req->pubkey)
    r = avm_read_file (req->pubkey, MAX_PUBKEY_FILE, "an .avbpubkey file", (char **) &pub, &publen, err);
  else if (!req->key)
    {
      r = -ENOENT;
      for (size_t i = 0; i < ARRAY_SIZE (pubkey_files) && r == -ENOENT; i++)
        {
          r = avm_imgset_host_file (set, pubkey_files[i], &pub, &publen, err);
          pubsrc = pubkey_files[i];
        }
      if (r == -ENOENT)
        return 0;
    }
  else
    return 0;
  if (r < 0)
    return r;
  if (publen != sizeof blob || memcmp (pub, blob, sizeof blob) != 0)
    return avm_error_input (err, "%s: public key does not match the signing key %s (key SHA-1 %s)", pubsrc, source,
                            sha1);
  return 0;
}
