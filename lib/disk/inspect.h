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

#include "disk/gpt.h"
#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* Open DISK for reading: a regular file or a block device (a FIFO or a
   character device is bad input, refused without waiting on it), and one
   that is not there is bad input too (exit code 2).  */
int avm_inspect_open (const char *path, int *fd, struct stat *st, avm_error_t *err);

/* REPORT: {"file","size","disk_guid","kind","partitions":[...],
   "uboot_env":{...}, "vbmeta":{...}, "bootconfig":{...}, "ok": bool}.
   Returns 0 when the disk could be read (check "ok" for signatures);
   malformed disks are errors (exit code 2).  */
int avm_inspect (const char *path, json_t **report, avm_error_t *err);

/* Check the disk through libguestfs against MANIFEST (manifest.json as
   written by cvd2img; MANIFEST_NAMED: the user named it, else it is the
   default next to the disk).  PROBLEMS gets one string per mismatch.  A
   disk or manifest that is not there is bad input (exit code 2).  Each
   step (the appliance's start, the partition table, each signed
   partition read through the kernel) is shown on STATUS (may be NULL;
   disk/progress.h), which the caller begins and ends.  */
struct avm_status;
int avm_inspect_verify (const char *path, const char *manifest, bool manifest_named, struct avm_status *status,
                        json_t **problems, avm_error_t *err);

/* The bytes of partition P of the disk open as FD (FILE names it in
   messages): all the LBAs it covers, into *DATA (malloc'd, *LEN bytes).
   Partitions above 4 MiB are refused: only the small signed partitions of
   a properties disk are read this way (also by propsync.c).  */
int avm_inspect_read_partition (int fd, const struct avm_gpt_part *p, const char *file, uint8_t **data, size_t *len,
                                avm_error_t *err);
