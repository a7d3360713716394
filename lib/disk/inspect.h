/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading disks back (`avm inspect`): the partition table, and for a
 * properties disk the boot properties, the U-Boot environment and the AVB
 * status of every signed partition (hash and signature verified, key by
 * SHA-1, chain descriptors checked against the keys that signed the chained
 * partitions).  `--verify` opens the disk with libguestfs, so that a real
 * Linux kernel parses the GPT, and compares it with manifest.json.
 */
#pragma once

#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>

/* REPORT: {"file","size","disk_guid","kind","partitions":[...],
   "uboot_env":{...}, "vbmeta":{...}, "bootconfig":{...}, "ok": bool}.
   Returns 0 when the disk could be read (check "ok" for signatures);
   malformed disks are errors (exit code 2).  */
int avm_inspect (const char *path, json_t **report, avm_error_t *err);

/* Check the disk through libguestfs against MANIFEST (manifest.json as
   written by cvd2img).  PROBLEMS gets one string per mismatch.  */
int avm_inspect_verify (const char *path, const char *manifest, json_t **problems, avm_error_t *err);
