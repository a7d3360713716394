/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading disks back (`avm inspect`): the partition table, and for a
 * properties disk the boot properties, the U-Boot environment and the AVB
 * status of every signed partition (hash and signature verified, key by
 * SHA-1, chain descriptors checked against the keys that signed the chained
 * partitions).  `--verify` (cvd2img/verify.h) opens the disk with
 * libguestfs, so that a real Linux kernel parses the GPT, and compares it
 * with manifest.json.
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

/* The bytes of partition P of the disk open as FD (FILE names it in
   messages): all the LBAs it covers, into *DATA (malloc'd, *LEN bytes).
   Partitions above 4 MiB are refused: only the small signed partitions of
   a properties disk are read this way (also by propsync.c).  */
int avm_inspect_read_partition (int fd, const struct avm_gpt_part *p, const char *file, uint8_t **data, size_t *len,
                                avm_error_t *err);
