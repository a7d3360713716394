/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cvd2img --seed: the disks' GUIDs and the properties disks' salts derived
 * from the seed and the image set, so that a conversion is reproducible.
 */
#include "cvd2img/internal.h"
#include "util/cleanup.h"
#include "util/strbuf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --seed: what a disk's GUIDs and salts come from.  SHA-256 of KEY (32
   bytes) and WHAT (LEN bytes) into OUT.  */
int
avm_cvd2img_derive (const uint8_t key[32], const void *what, size_t len, uint8_t out[32], avm_error_t *err)
{
  return avm_avb_sha256 (key, 32, what, len, out, err);
}

/* --seed: the key of the system disk, from SEED and what identifies the
   image set without reading it whole: each image's name, sizes, whether
   it is sparse, and its first bytes (a boot image's header; vbmeta's
   signature, which covers the digests of the partitions it protects).  */
int
avm_cvd2img_seed_key (const char *seed, struct avm_imgset *set, uint8_t key[32], avm_error_t *err)
{
  struct avm_strbuf b = { 0 };
  /* Each field ends with a NUL, so that no two sets read alike.  */
  avm_strbuf_add (&b, "avm cvd2img --seed", sizeof "avm cvd2img --seed");
  avm_strbuf_add (&b, seed, strlen (seed) + 1);
  for (size_t i = 0; i < avm_cvd_nparts; i++)
    {
      const char *name = avm_cvd_parts[i].image;
      const struct avm_img *img = name ? avm_imgset_get (set, name) : NULL;
      if (!img || !img->present || (i > 0 && avm_cvd_parts[i - 1].image && streq (avm_cvd_parts[i - 1].image, name)))
        continue;
      avm_strbuf_add (&b, name, strlen (name) + 1);
      avm_strbuf_addf (&b, "%" PRIu64 " %" PRIu64 " %d %zu", img->size, img->stored_size, (int) img->sparse,
                       img->head_len);
      avm_strbuf_add (&b, "", 1);
      avm_strbuf_add (&b, (const char *) img->head, img->head_len);
    }
  size_t len = b.len;
  _cleanup_free_ char *text = avm_strbuf_steal (&b);
  static const uint8_t zero[32];
  if (!text)
    return avm_error_sys (err, ENOMEM, "--seed");
  return avm_cvd2img_derive (zero, text, len, key, err);
}

/* --seed: the disk's GUID and its partitions' from KEY (the partition
   names are unique on a disk).  */
int
avm_cvd2img_seed_gpt (struct avm_gpt *g, const uint8_t key[32], avm_error_t *err)
{
  uint8_t md[32];
  int r = avm_cvd2img_derive (key, "disk GUID", 9, md, err);
  if (r < 0)
    return r;
  avm_guid_from_hash (md, g->disk_guid);
  for (size_t i = 0; i < g->n; i++)
    {
      char what[AVM_GPT_NAME_MAX + 32];
      int n = snprintf (what, sizeof what, "partition GUID %s", g->parts[i].name);
      if ((r = avm_cvd2img_derive (key, what, (size_t) n, md, err)) < 0)
        return r;
      avm_guid_from_hash (md, g->parts[i].unique_guid);
    }
  return 0;
}

/* --seed: the key of a properties disk (LABEL) from the system disk's
   KEY and what the disk holds: the boot properties, the architecture (its
   U-Boot environment), the signing key.  */
int
avm_cvd2img_seed_props_key (const uint8_t key[32], const char *label, const struct avm_props_spec *spec,
                            uint8_t out[32], avm_error_t *err)
{
  _cleanup_free_ char *text = NULL, *all = NULL;
  uint8_t blob[AVM_AVB_PUBKEY_SIZE];
  int r;
  if ((r = avm_bootconfig_text (spec->boot_properties, &text, err)) < 0
      || (r = avm_avb_key_blob (spec->key, blob, err)) < 0)
    return r;
  char sha[41];
  avm_avb_sha1_hex (blob, sizeof blob, sha);
  int n = asprintf (&all, "%s\n%s\n%s\n%s", label, spec->arch, sha, text);
  if (n < 0)
    {
      all = NULL;
      return avm_error_sys (err, ENOMEM, "--seed");
    }
  return avm_cvd2img_derive (key, all, (size_t) n, out, err);
}
