/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GUID partition tables in Cuttlefish's layout (formats.md section 5,
 * cuttlefish.md section 2.4): protective MBR with the spec's size, primary
 * header at LBA 1 with 128 entries of 128 bytes, first partition at LBA 40,
 * every partition padded to 4 KiB, disk size rounded up to 64 KiB, backup
 * entries and header at the end, CRC32s (zlib), UTF-16LE names, the Linux
 * filesystem type GUID, random v4 disk and partition GUIDs.
 * Written by hand: libfdisk cannot place partitions at LBA 40 with 4 KiB
 * padding without fighting its alignment logic, and the format is small.
 */
#pragma once

#include "util/error.h"

#include <stddef.h>
#include <stdint.h>

#define AVM_GPT_MAX_PARTS 128
#define AVM_GPT_FIRST_LBA 40
#define AVM_GPT_HEAD_SIZE (AVM_GPT_FIRST_LBA * 512) /* 20480: MBR, header, entries, padding */
#define AVM_GPT_TAIL_SIZE (33 * 512)                /* 16896: backup entries and header */
#define AVM_GPT_PART_ALIGN 4096                     /* every partition padded to this */
#define AVM_GPT_DISK_ALIGN 65536                    /* disk size rounded up to this */
#define AVM_GPT_NAME_UNITS 36                       /* UTF-16 code units in an entry's name */
/* UTF-8 bytes of the longest name: 36 BMP characters of 3 bytes each (a
   4-byte character takes 2 code units).  */
#define AVM_GPT_NAME_MAX (AVM_GPT_NAME_UNITS * 3)

struct avm_gpt_part
{
  char name[AVM_GPT_NAME_MAX + 1]; /* UTF-8, at most 36 UTF-16 code units */
  uint64_t offset;                 /* bytes */
  uint64_t size;                   /* bytes, as requested (not padded); from avm_gpt_read:
                                      the size the LBAs cover */
  uint64_t first_lba, last_lba;
  uint8_t type_guid[16]; /* on-disk byte order */
  uint8_t unique_guid[16];
  uint64_t attributes;
};

struct avm_gpt
{
  size_t n;
  struct avm_gpt_part parts[AVM_GPT_MAX_PARTS];
  uint8_t disk_guid[16];
  uint64_t disk_size;                         /* bytes, after avm_gpt_finish */
  uint64_t first_usable_lba, last_usable_lba; /* 40 and disk_size/512 - 34 (gpt.c) */
};

/* Empty table with a random disk GUID.  */
void avm_gpt_init (struct avm_gpt *g);
/* Append a partition of SIZE bytes (padded to 4 KiB in the layout), Linux
   filesystem type, random unique GUID.  Errors name the partition.  */
int avm_gpt_add (struct avm_gpt *g, const char *name, uint64_t size, avm_error_t *err);
/* Compute the disk size (64 KiB multiple) and the usable LBAs.  */
int avm_gpt_finish (struct avm_gpt *g, avm_error_t *err);

/* The bytes of [0, AVM_GPT_HEAD_SIZE) and of the last AVM_GPT_TAIL_SIZE
   bytes of the disk.  */
int avm_gpt_build (const struct avm_gpt *g, uint8_t head[AVM_GPT_HEAD_SIZE], uint8_t tail[AVM_GPT_TAIL_SIZE],
                   avm_error_t *err);

/* Read and check a table (primary and backup, CRCs, MBR) from a disk image
   file of DISK_SIZE bytes (for `avm inspect`).  Errors name FILE and what
   is wrong ("system.img: backup GPT header CRC mismatch (stored 0x...,
   computed 0x...)"); a damaged or non-GPT file is bad input (exit 2).  The
   protective MBR must have the spec's size, so disks above 4 GiB written by
   Cuttlefish itself are refused.  Used entries are packed into G->parts in
   table order; their `size` is what the LBAs cover.  */
int avm_gpt_read (int fd, uint64_t disk_size, const char *file, struct avm_gpt *g, avm_error_t *err);

/* Only the disk GUID, from the primary header (one read of one sector,
   its signature and CRC checked): what `avm start` compares with
   manifest.json.  Errors as avm_gpt_read's.  */
int avm_gpt_read_disk_guid (int fd, uint64_t disk_size, const char *file, uint8_t guid[16], avm_error_t *err);

/* The partition called NAME, or NULL.  */
const struct avm_gpt_part *avm_gpt_find (const struct avm_gpt *g, const char *name);

/* A version 4 GUID (on-disk bytes) from the first 16 bytes of MD, for
   GUIDs derived rather than drawn (avm cvd2img --seed): version and
   variant bits set as for a random one.  */
void avm_guid_from_hash (const uint8_t md[32], uint8_t guid[16]);

/* "0FC63DAF-8483-4772-8E79-3D69D8477DE4" from on-disk bytes (buf >= 37).  */
void avm_guid_format (const uint8_t guid[16], char *buf);
