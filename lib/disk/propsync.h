/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keeping a generated properties disk (props.h) in step with the profile:
 * `avm start` calls avm_props_sync for every disk with boot_properties true
 * (the plan's "generated_disks") before QEMU starts.  A disk that already
 * holds what avm_props_disk_create would write -- the same partition
 * layout, the bootconfig text and the U-Boot environment byte for byte,
 * hash footers and vbmeta whose signatures verify and whose keys are the
 * signing key's -- is left alone; anything else is rebuilt atomically
 * (temporary + rename) with a random salt.  The check reads the partition
 * table and the three small signed partitions (about 210 KiB); the 1 MiB
 * frp hole and the rest of the disk are never read.
 */
#pragma once

#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>

/* Make PATH the properties disk of BOOT_PROPERTIES (the plan's
   "boot_properties"), ARCH ("x86_64" or "aarch64": the U-Boot environment)
   and the PEM signing key KEY_PATH (RSA-4096).  *REBUILT tells whether the
   disk was written.  PATH must be a regular file or absent (a symbolic link
   or anything else is an error); its directory is created (0750) when
   missing.  An existing file that is not a properties disk is only replaced
   when it is no GPT disk at all and at most 64 MiB (garbage, a truncated
   write): another GPT disk or a large file is an error, so a mistyped path
   never destroys an image.  The key is needed to build the disk: a missing
   key is an error (naming it, the disk and the remedies) when the disk must
   be (re)built, and not otherwise -- a disk whose contents match and whose
   signatures verify with one key is then kept.  */
int avm_props_sync (const char *path, json_t *boot_properties, const char *arch, const char *key_path, bool *rebuilt,
                    avm_error_t *err);
