/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GUID partition tables in Cuttlefish's layout, written and read by hand
 * (formats.md section 5, cuttlefish.md section 2.4).
 *
 *   LBA 0        protective MBR
 *   LBA 1        primary header
 *   LBA 2..33    128 entries of 128 bytes
 *   LBA 34..39   zeros (Cuttlefish's 3072-byte alignment pad)
 *   LBA 40..     partitions, each padded to 4 KiB
 *   ...          zeros up to the 64 KiB-rounded disk size minus 33 sectors
 *   LBA N-33..   backup entries
 *   LBA N-1      backup header
 */
#include "disk/gpt.h"
#include "util/analyzer.h"
#include "util/bytes.h"
#include "util/cleanup.h"
#include "util/random.h"
#include "util/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "disk/lazy_zlib.h"

#define SECTOR 512
#define ENTRY_SIZE 128
#define NUM_ENTRIES 128
#define ENTRIES_BYTES (NUM_ENTRIES * ENTRY_SIZE) /* 16384 */
#define ENTRIES_SECTORS (ENTRIES_BYTES / SECTOR) /* 32 */
#define HEADER_SIZE 92
#define GPT_REVISION 0x00010000U
#define MBR_TYPE_PROTECTIVE 0xEE
/* Largest entries array avm_gpt_read accepts (the spec sets no limit;
   real tables have 128 entries of 128 bytes).  */
#define MAX_ENTRIES_BYTES (1024 * 1024)

static const char gpt_signature[8] = { 'E', 'F', 'I', ' ', 'P', 'A', 'R', 'T' };

/* 0FC63DAF-8483-4772-8E79-3D69D8477DE4 in on-disk order.  */
static const uint8_t linux_fs_guid[16] = {
  0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4,
};

static uint32_t
crc (const void *buf, size_t len)
{
  /* zlib takes uInt lengths; every buffer here is far below 4 GiB.  */
  return (uint32_t) sym_crc32 (sym_crc32 (0L, Z_NULL, 0), buf, (uInt) len);
}

static uint64_t
round_up (uint64_t v, uint64_t align)
{
  return (v + align - 1) / align * align;
}

static bool
is_zero (const void *buf, size_t len)
{
  const uint8_t *p = buf;
  for (size_t i = 0; i < len; i++)
    if (p[i])
      return false;
  return true;
}

/* ---- GUIDs ------------------------------------------------------------ */

/* A random (version 4) GUID in on-disk order.  The first three fields are
   stored little-endian, so time_hi_and_version is bytes 6-7 with its high
   byte, which holds the version nibble, at byte 7; the last two fields are
   big-endian, so clock_seq_hi_and_reserved, which holds the RFC 4122
   variant bits 10xxxxxx, is byte 8.  */
static void
random_guid (uint8_t guid[16])
{
  avm_random_bytes (guid, 16);
  guid[7] = (guid[7] & 0x0F) | 0x40;
  guid[8] = (guid[8] & 0x3F) | 0x80;
}

void
avm_guid_from_hash (const uint8_t md[32], uint8_t guid[16])
{
  memcpy (guid, md, 16);
  guid[7] = (guid[7] & 0x0F) | 0x40;
  guid[8] = (guid[8] & 0x3F) | 0x80;
}

void
avm_guid_format (const uint8_t g[16], char *buf)
{
  sprintf (buf, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X", g[3], g[2], g[1], g[0], g[5],
           g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

static bool
guid_in_use (const struct avm_gpt *g, const uint8_t guid[16])
{
  if (memcmp (g->disk_guid, guid, 16) == 0)
    return true;
  for (size_t i = 0; i < g->n; i++)
    if (memcmp (g->parts[i].unique_guid, guid, 16) == 0)
      return true;
  return false;
}

/* ---- names ------------------------------------------------------------ */

static int
check_name (const struct avm_gpt *g, const char *name, avm_error_t *err)
{
  if (!name || !*name)
    return avm_error_input (err, "GPT partition %zu: empty name", g->n + 1);

  ssize_t units = avm_utf8_to_utf16 (name, NULL, 0);
  if (units < 0)
    {
      _cleanup_free_ char *shown = avm_utf8_for_message (name);
      return avm_error_input (err, "GPT partition name \"%s\" is not valid UTF-8", shown ?: "?");
    }
  if (units > AVM_GPT_NAME_UNITS)
    return avm_error_input (err, "GPT partition name \"%s\" is too long (%zd UTF-16 code units, at most %d)", name,
                            units, AVM_GPT_NAME_UNITS);
  /* Cannot happen after the two checks above; keeps the copy safe.  */
  if (strlen (name) > AVM_GPT_NAME_MAX)
    return avm_error_input (err, "GPT partition name \"%s\" is too long", name);
  for (size_t i = 0; i < g->n; i++)
    if (streq (g->parts[i].name, name))
      return avm_error_input (err, "duplicate GPT partition name \"%s\" (partitions %zu and %zu)", name, i + 1,
                              g->n + 1);
  return 0;
}

/* ---- building --------------------------------------------------------- */

void
avm_gpt_init (struct avm_gpt *g)
{
  memset (g, 0, sizeof *g);
  random_guid (g->disk_guid);
  g->first_usable_lba = AVM_GPT_FIRST_LBA;
}

const struct avm_gpt_part *
avm_gpt_find (const struct avm_gpt *g, const char *name)
{
  for (size_t i = 0; i < g->n; i++)
    if (streq (g->parts[i].name, name))
      return &g->parts[i];
  return NULL;
}

/* Where the next partition goes (bytes).  */
static uint64_t
next_offset (const struct avm_gpt *g)
{
  if (g->n == 0)
    return AVM_GPT_HEAD_SIZE;
  const struct avm_gpt_part *last = &g->parts[g->n - 1];
  return last->offset + round_up (last->size, AVM_GPT_PART_ALIGN);
}

int
avm_gpt_add (struct avm_gpt *g, const char *name, uint64_t size, avm_error_t *err)
{
  int r = check_name (g, name, err);
  if (r < 0)
    return r;
  if (g->n >= AVM_GPT_MAX_PARTS)
    return avm_error_input (err, "GPT partition %s: too many partitions (at most %d)", name, AVM_GPT_MAX_PARTS);
  if (size == 0)
    return avm_error_input (err, "GPT partition %s: size 0", name);

  uint64_t offset = next_offset (g);
  /* Keep the whole disk, tail and 64 KiB rounding included, below 2^63
     bytes, so that no sum below can overflow (and off_t holds it).  */
  const uint64_t limit = (UINT64_C (1) << 62);
  if (size > limit || offset + round_up (size, AVM_GPT_PART_ALIGN) > limit)
    return avm_error_input (err, "GPT partition %s: size %" PRIu64 " does not fit on the disk", name, size);

  struct avm_gpt_part *p = &g->parts[g->n];
  memset (p, 0, sizeof *p);
  strcpy (p->name, name);
  p->offset = offset;
  p->size = size;
  p->first_lba = offset / SECTOR;
  p->last_lba = (offset + round_up (size, AVM_GPT_PART_ALIGN)) / SECTOR - 1;
  memcpy (p->type_guid, linux_fs_guid, 16);
  do
    random_guid (p->unique_guid);
  while (guid_in_use (g, p->unique_guid));
  g->n++;
  g->disk_size = 0; /* avm_gpt_finish again */
  return 0;
}

int
avm_gpt_finish (struct avm_gpt *g, avm_error_t *err)
{
  uint64_t end = next_offset (g);

  g->disk_size = round_up (end + AVM_GPT_TAIL_SIZE, AVM_GPT_DISK_ALIGN);
  g->first_usable_lba = AVM_GPT_FIRST_LBA;
  /* The last usable LBA.  Cuttlefish writes end_of_last_partition/512 - 1,
     which leaves the zeros between the last partition and the backup
     entries (up to 64 KiB of rounding) outside the usable range, and is
     below first_usable_lba for an empty table.  We write the spec's (and
     sgdisk's, sfdisk's, parted's) value instead: the sector right before
     the backup entries, disk_lbas - 34.  The partitions stay exactly where
     Cuttlefish puts them (only the header field differs), an empty table
     stays valid, and the rounding gap is plain free space, which is what it
     is.  sgdisk --verify and sfdisk accept both values without a word; the
     standard one also matches what those tools write themselves when they
     relocate the backup table after a resize (sgdisk -e).  */
  g->last_usable_lba = g->disk_size / SECTOR - 1 - ENTRIES_SECTORS - 1;
  return 0;
}

/* The 128 entries.  */
static void
build_entries (const struct avm_gpt *g, uint8_t *entries)
{
  memset (entries, 0, ENTRIES_BYTES);
  for (size_t i = 0; i < g->n; i++)
    {
      const struct avm_gpt_part *p = &g->parts[i];
      uint8_t *e = entries + i * ENTRY_SIZE;
      uint16_t units[AVM_GPT_NAME_UNITS];
      ssize_t n = avm_utf8_to_utf16 (p->name, units, AVM_GPT_NAME_UNITS);

      memcpy (e, p->type_guid, 16);
      memcpy (e + 16, p->unique_guid, 16);
      put_le64 (e + 32, p->first_lba);
      put_le64 (e + 40, p->last_lba);
      put_le64 (e + 48, p->attributes);
      for (ssize_t k = 0; k < n && k < AVM_GPT_NAME_UNITS; k++)
        put_le16 (e + 56 + 2 * k, units[k]);
    }
}

static void
build_header (const struct avm_gpt *g, uint8_t *h, uint64_t my_lba, uint64_t alternate_lba, uint64_t entries_lba,
              uint32_t entries_crc)
{
  memset (h, 0, SECTOR);
  memcpy (h, gpt_signature, 8);
  put_le32 (h + 8, GPT_REVISION);
  put_le32 (h + 12, HEADER_SIZE);
  put_le64 (h + 24, my_lba);
  put_le64 (h + 32, alternate_lba);
  put_le64 (h + 40, g->first_usable_lba);
  put_le64 (h + 48, g->last_usable_lba);
  memcpy (h + 56, g->disk_guid, 16);
  put_le64 (h + 72, entries_lba);
  put_le32 (h + 80, NUM_ENTRIES);
  put_le32 (h + 84, ENTRY_SIZE);
  put_le32 (h + 88, entries_crc);
  put_le32 (h + 16, crc (h, HEADER_SIZE)); /* computed with the field still 0 */
}

static uint32_t
pmbr_size (uint64_t disk_lbas)
{
  return disk_lbas - 1 > 0xFFFFFFFFU ? 0xFFFFFFFFU : (uint32_t) (disk_lbas - 1);
}

int
avm_gpt_build (const struct avm_gpt *g, uint8_t head[AVM_GPT_HEAD_SIZE], uint8_t tail[AVM_GPT_TAIL_SIZE],
               avm_error_t *err)
{
  int r;

  if ((r = avm_dlopen_zlib (err)) < 0)
    return r;
  if (g->disk_size == 0 || g->disk_size % AVM_GPT_DISK_ALIGN || g->disk_size < next_offset (g) + AVM_GPT_TAIL_SIZE)
    return avm_error_fail (err, EINVAL, "GPT: the layout is not finished (avm_gpt_finish)");

  uint64_t lbas = g->disk_size / SECTOR;
  uint64_t last_lba = lbas - 1;
  uint64_t backup_entries_lba = last_lba - ENTRIES_SECTORS;

  memset (head, 0, AVM_GPT_HEAD_SIZE);
  memset (tail, 0, AVM_GPT_TAIL_SIZE);

  /* Protective MBR: one record covering the disk (or as much of it as 32
     bits can say).  */
  uint8_t *rec = head + 446;
  rec[0] = 0x00; /* status: not bootable */
  rec[1] = 0x00; /* start CHS 0x000200: head 0, sector 2, cylinder 0 */
  rec[2] = 0x02;
  rec[3] = 0x00;
  rec[4] = MBR_TYPE_PROTECTIVE;
  rec[5] = rec[6] = rec[7] = 0xFF; /* end CHS: unrepresentable */
  put_le32 (rec + 8, 1);
  put_le32 (rec + 12, pmbr_size (lbas));
  head[510] = 0x55;
  head[511] = 0xAA;

  /* Entries, then the headers that carry their CRC.  The backup entries
     are the same bytes.  */
  uint8_t *entries = head + 2 * SECTOR;
  build_entries (g, entries);
  uint32_t entries_crc = crc (entries, ENTRIES_BYTES);
  build_header (g, head + SECTOR, 1, last_lba, 2, entries_crc);
  memcpy (tail, entries, ENTRIES_BYTES);
  build_header (g, tail + ENTRIES_BYTES, last_lba, 1, backup_entries_lba, entries_crc);
  return 0;
}

/* ---- reading ---------------------------------------------------------- */

static int
read_at (int fd, const char *file, void *buf, size_t len, uint64_t off, const char *what, avm_error_t *err)
{
  size_t got = 0;

  while (got < len)
    {
      ssize_t r = pread (fd, (uint8_t *) buf + got, len - got, (off_t) (off + got));
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return avm_error_sys (err, errno, "%s: cannot read the %s at offset %" PRIu64, file, what, off + got);
      if (r == 0)
        {
          /* Say where the file really ends (a regular file; for anything
             else, where reading stopped).  */
          struct stat st;
          uint64_t end = off + got;
          if (fstat (fd, &st) == 0 && S_ISREG (st.st_mode) && (uint64_t) st.st_size < end)
            end = st.st_size;
          return avm_error_input (err,
                                  "%s: file ends at offset %" PRIu64 ", before the end of the %s at offset %" PRIu64
                                  " (truncated?)",
                                  file, end, what, off + len);
        }
      got += r;
    }
  return 0;
}

struct header
{
  uint32_t revision, header_size, header_crc;
  uint64_t my_lba, alternate_lba, first_usable, last_usable, entries_lba;
  uint8_t disk_guid[16];
  uint32_t num_entries, entry_size, entries_crc;
  uint64_t entries_bytes, entries_sectors;
};

/* Check the header sector at LBA (WHICH: "primary", "backup").  */
static int
parse_header (const uint8_t *s, uint64_t lba, uint64_t lbas, const char *which, const char *file, struct header *h,
              avm_error_t *err)
{
  if (memcmp (s, gpt_signature, 8) != 0)
    return avm_error_input (err, "%s: no %s GPT header at LBA %" PRIu64 " (signature is not \"EFI PART\")", file, which,
                            lba);
  h->revision = get_le32 (s + 8);
  h->header_size = get_le32 (s + 12);
  h->header_crc = get_le32 (s + 16);
  if (h->revision != GPT_REVISION)
    return avm_error_input (err, "%s: %s GPT header: unsupported revision 0x%08" PRIX32 " (expected 0x%08X)", file,
                            which, h->revision, GPT_REVISION);
  if (h->header_size < HEADER_SIZE || h->header_size > SECTOR)
    return avm_error_input (err, "%s: %s GPT header: bad header size %" PRIu32 " (expected %d to %d)", file, which,
                            h->header_size, HEADER_SIZE, SECTOR);

  uint8_t copy[SECTOR];
  memcpy (copy, s, h->header_size);
  memset (copy + 16, 0, 4);
  uint32_t computed = crc (copy, h->header_size);
  if (computed != h->header_crc)
    return avm_error_input (err, "%s: %s GPT header CRC mismatch (stored 0x%08" PRIx32 ", computed 0x%08" PRIx32 ")",
                            file, which, h->header_crc, computed);
  if (get_le32 (s + 20) != 0)
    return avm_error_input (err, "%s: %s GPT header: reserved field is not zero", file, which);

  h->my_lba = get_le64 (s + 24);
  h->alternate_lba = get_le64 (s + 32);
  h->first_usable = get_le64 (s + 40);
  h->last_usable = get_le64 (s + 48);
  memcpy (h->disk_guid, s + 56, 16);
  h->entries_lba = get_le64 (s + 72);
  h->num_entries = get_le32 (s + 80);
  h->entry_size = get_le32 (s + 84);
  h->entries_crc = get_le32 (s + 88);

  if (h->my_lba != lba)
    return avm_error_input (err, "%s: %s GPT header at LBA %" PRIu64 " says it is at LBA %" PRIu64, file, which, lba,
                            h->my_lba);
  uint64_t other = lba == 1 ? lbas - 1 : 1;
  if (h->alternate_lba != other)
    {
      if (lba == 1)
        return avm_error_input (err,
                                "%s: primary GPT header puts the backup header at LBA %" PRIu64
                                ", but the last LBA of the %" PRIu64 "-sector disk is %" PRIu64
                                " (file truncated or resized?)",
                                file, h->alternate_lba, lbas, lbas - 1);
      return avm_error_input (err, "%s: backup GPT header points to the primary at LBA %" PRIu64 " (expected 1)", file,
                              h->alternate_lba);
    }
  if (h->entry_size < 128 || h->entry_size > 4096 || (h->entry_size & (h->entry_size - 1)))
    return avm_error_input (err, "%s: %s GPT header: bad partition entry size %" PRIu32, file, which, h->entry_size);
  h->entries_bytes = (uint64_t) h->num_entries * h->entry_size;
  if (h->num_entries == 0 || h->entries_bytes > MAX_ENTRIES_BYTES)
    return avm_error_input (err, "%s: %s GPT header: unsupported number of partition entries %" PRIu32, file, which,
                            h->num_entries);
  h->entries_sectors = (h->entries_bytes + SECTOR - 1) / SECTOR;

  /* The usable range must sit between the two entry arrays.  */
  if (h->first_usable > h->last_usable || h->last_usable >= lbas)
    return avm_error_input (err,
                            "%s: %s GPT header: bad usable range LBA %" PRIu64 "-%" PRIu64 " on a %" PRIu64
                            "-sector disk",
                            file, which, h->first_usable, h->last_usable, lbas);
  if (lba == 1)
    {
      if (h->entries_lba < 2 || h->entries_lba > h->first_usable
          || h->first_usable - h->entries_lba < h->entries_sectors)
        return avm_error_input (err,
                                "%s: primary GPT partition entries at LBA %" PRIu64 " (%" PRIu64
                                " sectors) overlap the header or the usable range from LBA %" PRIu64,
                                file, h->entries_lba, h->entries_sectors, h->first_usable);
    }
  else if (h->entries_lba <= h->last_usable || h->entries_lba > lba || lba - h->entries_lba < h->entries_sectors)
    return avm_error_input (err,
                            "%s: backup GPT partition entries at LBA %" PRIu64 " (%" PRIu64
                            " sectors) overlap the usable range up to LBA %" PRIu64 " or the backup header",
                            file, h->entries_lba, h->entries_sectors, h->last_usable);
  return 0;
}

static int
read_entries (int fd, const char *file, const struct header *h, const char *which, uint8_t **out, avm_error_t *err)
{
  _cleanup_free_ uint8_t *buf = malloc (h->entries_bytes);
  char what[64];

  if (!buf)
    return avm_error_sys (err, ENOMEM, "%s", file);
  snprintf (what, sizeof what, "%s GPT partition entries", which);
  int r = read_at (fd, file, buf, h->entries_bytes, h->entries_lba * SECTOR, what, err);
  if (r < 0)
    return r;
  uint32_t computed = crc (buf, h->entries_bytes);
  if (computed != h->entries_crc)
    return avm_error_input (err,
                            "%s: %s GPT partition entries CRC mismatch (stored 0x%08" PRIx32 ", computed 0x%08" PRIx32
                            ")",
                            file, which, h->entries_crc, computed);
  *out = steal_pointer (&buf);
  return 0;
}

static int
check_pmbr (const uint8_t *mbr, uint64_t lbas, const char *file, avm_error_t *err)
{
  if (mbr[510] != 0x55 || mbr[511] != 0xAA)
    return avm_error_input (err, "%s: no MBR boot signature 55 AA at offset 510 (found %02X %02X)", file, mbr[510],
                            mbr[511]);

  int found = -1;
  for (int i = 0; i < 4; i++)
    {
      const uint8_t *rec = mbr + 446 + 16 * i;
      if (rec[4] == MBR_TYPE_PROTECTIVE)
        {
          if (found >= 0)
            return avm_error_input (err, "%s: protective MBR has more than one 0xEE record", file);
          found = i;
        }
    }
  if (found < 0)
    return avm_error_input (err, "%s: MBR has no protective (type 0xEE) record: not a GPT disk", file);
  for (int i = 0; i < 4; i++)
    if (i != found && !is_zero (mbr + 446 + 16 * i, 16))
      return avm_error_input (err, "%s: MBR record %d is used next to the protective record (hybrid MBR)", file, i + 1);

  const uint8_t *rec = mbr + 446 + 16 * found;
  uint32_t start = get_le32 (rec + 8), size = get_le32 (rec + 12);
  if (start != 1)
    return avm_error_input (err, "%s: protective MBR record starts at LBA %" PRIu32 " (expected 1)", file, start);
  if (size != pmbr_size (lbas))
    return avm_error_input (err,
                            "%s: protective MBR record covers %" PRIu32 " sectors (expected %" PRIu32
                            ", min(disk sectors - 1, 0xFFFFFFFF))",
                            file, size, pmbr_size (lbas));
  return 0;
}

/* make lint: false positive: index[k] is set for every k < g->n.  The
   analyzer assumes avm_utf16le_to_utf8 (util/utf8.c, which it does not
   follow), given a pointer into G, may change g->n.  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-use-of-uninitialized-value")
static int
parse_entries (const uint8_t *entries, const struct header *h, const char *file, struct avm_gpt *g, avm_error_t *err)
{
  static const uint8_t zero_guid[16];
  size_t index[AVM_GPT_MAX_PARTS]; /* entry number of each of G's partitions */

  g->n = 0;
  for (uint32_t i = 0; i < h->num_entries; i++)
    {
      const uint8_t *e = entries + (size_t) i * h->entry_size;
      if (memcmp (e, zero_guid, 16) == 0)
        continue;
      if (g->n >= AVM_GPT_MAX_PARTS)
        return avm_error_input (err, "%s: more than %d GPT partitions", file, AVM_GPT_MAX_PARTS);

      struct avm_gpt_part *p = &g->parts[g->n];
      memcpy (p->type_guid, e, 16);
      memcpy (p->unique_guid, e + 16, 16);
      p->first_lba = get_le64 (e + 32);
      p->last_lba = get_le64 (e + 40);
      p->attributes = get_le64 (e + 48);
      if (avm_utf16le_to_utf8 (e + 56, AVM_GPT_NAME_UNITS, p->name) < 0)
        return avm_error_input (err, "%s: GPT partition %" PRIu32 ": name is not valid UTF-16", file, i + 1);
      if (p->first_lba > p->last_lba || p->first_lba < h->first_usable || p->last_lba > h->last_usable)
        return avm_error_input (err,
                                "%s: GPT partition %" PRIu32 " (%s): LBA %" PRIu64 "-%" PRIu64
                                " is outside the usable range %" PRIu64 "-%" PRIu64,
                                file, i + 1, p->name, p->first_lba, p->last_lba, h->first_usable, h->last_usable);
      p->offset = p->first_lba * SECTOR;
      p->size = (p->last_lba - p->first_lba + 1) * SECTOR;
      for (size_t k = 0; k < g->n; k++)
        {
          const struct avm_gpt_part *q = &g->parts[k];
          if (p->first_lba <= q->last_lba && q->first_lba <= p->last_lba)
            return avm_error_input (err,
                                    "%s: GPT partitions %zu (%s, LBA %" PRIu64 "-%" PRIu64 ") and %" PRIu32
                                    " (%s, LBA %" PRIu64 "-%" PRIu64 ") overlap",
                                    file, index[k] + 1, q->name, q->first_lba, q->last_lba, i + 1, p->name,
                                    p->first_lba, p->last_lba);
        }
      index[g->n++] = i;
    }
  return 0;
}
AVM_ANALYZER_IGNORE_END

int
avm_gpt_read_disk_guid (int fd, uint64_t disk_size, const char *file, uint8_t guid[16], avm_error_t *err)
{
  uint8_t sec[SECTOR];
  struct header h;
  int r;

  if ((r = avm_dlopen_zlib (err)) < 0)
    return r;
  if (disk_size % SECTOR || disk_size / SECTOR < 3 + 2 * ENTRIES_SECTORS + 1 || disk_size > (UINT64_C (1) << 62))
    return avm_error_input (err, "%s: size %" PRIu64 " bytes cannot hold a GPT disk", file, disk_size);
  if ((r = read_at (fd, file, sec, SECTOR, SECTOR, "primary GPT header", err)) < 0
      || (r = parse_header (sec, 1, disk_size / SECTOR, "primary", file, &h, err)) < 0)
    return r;
  memcpy (guid, h.disk_guid, 16);
  return 0;
}

int
avm_gpt_read (int fd, uint64_t disk_size, const char *file, struct avm_gpt *g, avm_error_t *err)
{
  uint8_t mbr[SECTOR], sec[SECTOR];
  struct header primary, backup;
  _cleanup_free_ uint8_t *entries = NULL;
  _cleanup_free_ uint8_t *backup_entries = NULL;
  int r;

  memset (g, 0, sizeof *g);
  if ((r = avm_dlopen_zlib (err)) < 0)
    return r;
  if (disk_size % SECTOR)
    return avm_error_input (err, "%s: size %" PRIu64 " is not a multiple of %d bytes", file, disk_size, SECTOR);
  uint64_t lbas = disk_size / SECTOR;
  /* MBR, two headers, two 16 KiB entry arrays, one usable sector.  */
  if (lbas < 3 + 2 * ENTRIES_SECTORS + 1 || disk_size > (UINT64_C (1) << 62))
    return avm_error_input (err, "%s: size %" PRIu64 " bytes cannot hold a GPT disk", file, disk_size);

  r = read_at (fd, file, mbr, SECTOR, 0, "protective MBR", err);
  if (r < 0)
    return r;
  r = read_at (fd, file, sec, SECTOR, SECTOR, "primary GPT header", err);
  if (r < 0)
    return r;
  r = parse_header (sec, 1, lbas, "primary", file, &primary, err);
  if (r < 0)
    return r;
  r = read_entries (fd, file, &primary, "primary", &entries, err);
  if (r < 0)
    return r;

  r = read_at (fd, file, sec, SECTOR, (lbas - 1) * SECTOR, "backup GPT header", err);
  if (r < 0)
    return r;
  r = parse_header (sec, lbas - 1, lbas, "backup", file, &backup, err);
  if (r < 0)
    return r;
  r = read_entries (fd, file, &backup, "backup", &backup_entries, err);
  if (r < 0)
    return r;

  /* The backup must describe the same table.  */
  const char *differs = NULL;
  if (primary.first_usable != backup.first_usable || primary.last_usable != backup.last_usable)
    differs = "usable LBA range";
  else if (memcmp (primary.disk_guid, backup.disk_guid, 16) != 0)
    differs = "disk GUID";
  else if (primary.num_entries != backup.num_entries || primary.entry_size != backup.entry_size)
    differs = "partition entry count or size";
  else if (primary.entries_crc != backup.entries_crc || memcmp (entries, backup_entries, primary.entries_bytes) != 0)
    differs = "partition entries";
  if (differs)
    return avm_error_input (err, "%s: primary and backup GPT differ (%s)", file, differs);

  r = check_pmbr (mbr, lbas, file, err);
  if (r < 0)
    return r;

  r = parse_entries (entries, &primary, file, g, err);
  if (r < 0)
    {
      memset (g, 0, sizeof *g);
      return r;
    }
  memcpy (g->disk_guid, primary.disk_guid, 16);
  g->disk_size = disk_size;
  g->first_usable_lba = primary.first_usable;
  g->last_usable_lba = primary.last_usable;
  return 0;
}
