/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cvd2img: a Cuttlefish image set to system.img (raw GPT disk with the OS
 * partitions in Cuttlefish's order), properties.img (and
 * properties_virgl.img) with boot properties derived from a profile and
 * AVB-signed, the bootloader, manifest.json, the images' android-info.txt,
 * the host package's whole tree (bin/, lib64/, etc/, usr/, ...: the output
 * directory runs as it is) and, when signing with the host package's test
 * key, that key as avb_key.pem (for avm start's properties disk rebuild; a
 * user's --key is never copied).  Every output is written to
 * a temporary file and only renamed into place when all of them are
 * complete; on any failure none of the existing outputs changes.
 */
#pragma once

#include "profile/profile.h"
#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct avm_cvd2img_request
{
  const char *dir;                                         /* unpacked image directory, or */
  const char *zip;                                         /* image zip ... */
  const char *hostpkg;                                     /* ... and host package tarball */
  const char *out_dir;                                     /* default "." */
  const char *system_path, *props_path, *props_virgl_path; /* NULL: OUT_DIR/default names */
  const char *arch;     /* "x86_64", "aarch64", or NULL: from the bootloader, else the host */
  const char *key;      /* PEM private key, NULL: the host package's test key */
  const char *pubkey;   /* .avbpubkey to check against the key, or NULL */
  const char *profile;  /* boot properties from this profile; NULL: aaos-<arch> */
  char *const *options; /* --option NAME=CHOICE */
  char *const *sets;    /* --set PATH=VALUE */
  bool no_virgl;        /* skip properties_virgl.img (else written when the
                           profile has the option gpu=virgl) */
  bool no_host_tree;    /* do not put the host package's tree into the output
                           directory (the slp/cvd2img personality) */
  const char *seed;     /* reproducible output: the disks' GUIDs and AVB
                           salts derived from this and the image set, not
                           drawn at random (NULL) */
  const char *tool;     /* the command as the user typed it, for messages:
                           NULL ("avm cvd2img") or "cvd2img" */
  bool quiet;
};

/* What a conversion wrote, for its summary.  */
struct avm_cvd2img_result
{
  json_t *manifest;    /* manifest.json's contents (a reference) */
  char *manifest_path; /* where it was written */
  bool host_tree;      /* the host package's tree was copied */
};

/* Convert; RES (may be NULL) is filled on success
   (avm_cvd2img_result_clear frees it).  */
int avm_cvd2img (const struct avm_cvd2img_request *req, struct avm_cvd2img_result *res, avm_error_t *err);
void avm_cvd2img_result_clear (struct avm_cvd2img_result *res);

/* What RES says was written, as one line: "out/system.img (4.2 GiB, 16
   partitions), properties.img, properties_virgl.img, bootloader,
   avb_key.pem, android-info.txt, the host package (25 entries, 1.2 GiB) and
   manifest.json" (malloc'd, NULL when out of memory).  The system disk by
   its path, the files in its directory by their names, others by their
   paths.  */
char *avm_cvd2img_summary (const struct avm_cvd2img_result *res);

/* The Cuttlefish OS partitions: image file and partition name, in disk order.  */
struct avm_cvd_part
{
  const char *image;   /* "boot.img", or NULL for a blank partition */
  const char *name;    /* "boot_a" */
  uint64_t blank_size; /* for blank partitions */
  bool optional;
  bool vbmeta; /* padded to 65536 */
};
extern const struct avm_cvd_part avm_cvd_parts[];
extern const size_t avm_cvd_nparts;
