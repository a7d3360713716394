/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the files of the conversion (cvd2img.c, the use case; key.c,
 * the signing key; seed.c, --seed; outdir.c, the output directory;
 * summary.c, the result).  Not for use outside lib/cvd2img/.
 */
#pragma once

#include "cvd2img/cvd2img.h"
#include "cvd2img/imgset.h"
#include "disk/avb.h"
#include "disk/gpt.h"
#include "disk/props.h"
#include "util/error.h"
#include "util/strv.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The signing key into *KEY: --key (REQ->key), else the host package's test
   key from SET, whose PEM text then goes to *PEM (*PEM_LEN bytes; it stays
   NULL with --key: a user's key is never copied).  MANIFEST gets "key"
   ({"source", "sha1"}).  A public key (--pubkey, or the host package's
   when the test key is used) must be the signing key's.  0 or -errno with
   ERR filled (no key: bad input).  */
int avm_cvd2img_load_key (const struct avm_cvd2img_request *req, struct avm_imgset *set, struct avm_avb_key **key,
                          uint8_t **pem, size_t *pem_len, json_t *manifest, avm_error_t *err);

/* --seed: SHA-256 of KEY (32 bytes) and WHAT (LEN bytes) into OUT: what a
   disk's GUIDs and salts come from.  0 or -errno.  */
int avm_cvd2img_derive (const uint8_t key[32], const void *what, size_t len, uint8_t out[32], avm_error_t *err);
/* --seed: the key (32 bytes) of the system disk, from SEED and what
   identifies the image SET without reading it whole.  0 or -errno.  */
int avm_cvd2img_seed_key (const char *seed, struct avm_imgset *set, uint8_t key[32], avm_error_t *err);
/* --seed: G's disk GUID and its partitions' derived from KEY.  0 or -errno.  */
int avm_cvd2img_seed_gpt (struct avm_gpt *g, const uint8_t key[32], avm_error_t *err);
/* --seed: the key (32 bytes, OUT) of the properties disk LABEL from the
   system disk's KEY and what SPEC puts on the disk.  0 or -errno.  */
int avm_cvd2img_seed_props_key (const uint8_t key[32], const char *label, const struct avm_props_spec *spec,
                                uint8_t out[32], avm_error_t *err);

/* What the host package's tree does to the output directory ODIR: its
   top-level entries NEW replace those of the same names, which must be an
   earlier conversion's (or absent); the earlier conversion's entries that
   NEW lacks are pushed to RETIRE.  RESERVED: the names of the set's files.
   Nothing REQ reads may be inside what the commit replaces.  0, or -errno
   with ERR filled (bad input naming what is in the way).  */
int avm_cvd2img_plan_tree (const struct avm_cvd2img_request *req, const char *odir, char *const *new,
                           char *const *reserved, struct avm_argv *retire, avm_error_t *err);
/* Hold ODIR for this conversion (flock): *FD open until the end (the
   caller closes it), *LOCKED false on a file system without flock.
   Another conversion holding it: -EBUSY with ERR filled.  */
int avm_cvd2img_lock_output (const char *odir, int *fd, bool *locked, avm_error_t *err);
