/* SPDX-License-Identifier: Apache-2.0 */
/* GPT in Cuttlefish's layout: the layout arithmetic, the bytes, what
   sgdisk and sfdisk (independent implementations) make of the result,
   reading it back, and the errors for bad names and damaged tables.  */
#include "disk/gpt.h"
#include "util/cleanup.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define MiB (UINT64_C (1) << 20)
#define GiB (UINT64_C (1) << 30)

struct spec
{
  const char *name;
  uint64_t size;
};

/* Cuttlefish's system disk (cuttlefish.md 2.1); super is odd-sized, above
   4 GiB, to exercise the padding and the MBR size clamp.  */
static const struct spec system_parts[] = {
  { "misc", 1 * MiB },
  { "boot_a", 64 * MiB },
  { "boot_b", 64 * MiB },
  { "init_boot_a", 8 * MiB },
  { "init_boot_b", 8 * MiB },
  { "vendor_boot_a", 64 * MiB },
  { "vendor_boot_b", 64 * MiB },
  { "vbmeta_a", 65536 },
  { "vbmeta_b", 65536 },
  { "vbmeta_system_a", 65536 },
  { "vbmeta_system_b", 65536 },
  { "vbmeta_vendor_dlkm_a", 65536 },
  { "vbmeta_vendor_dlkm_b", 65536 },
  { "vbmeta_system_dlkm_a", 65536 },
  { "vbmeta_system_dlkm_b", 65536 },
  { "super", 4 * GiB + 12345 },
  { "userdata", 2 * GiB },
  { "metadata", 64 * MiB },
};

/* The properties disk (cuttlefish.md 2.2).  */
static const struct spec props_parts[] = {
  { "uboot_env", 73728 },
  { "vbmeta", 65536 },
  { "frp", 1 * MiB },
  { "bootconfig", 73728 },
};

/* Each test runs in its own process: one temporary directory per test,
   removed by the suite's fini, which also runs after a failed assertion.  */
static char *tmp_dir;

static const char *
tmp (void)
{
  if (!tmp_dir)
    tmp_dir = tu_tmpdir ();
  return tmp_dir;
}

static void
gpt_fini (void)
{
  if (tmp_dir)
    tu_rmtree (tmp_dir);
  free (tmp_dir);
  tmp_dir = NULL;
}

TestSuite (gpt, .fini = gpt_fini);

static const char linux_fs[] = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

static const char *
msg (avm_error_t err)
{
  return err && err->msg ? err->msg : "(no message)";
}

static uint32_t
le32 (const uint8_t *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint64_t
le64 (const uint8_t *p)
{
  return (uint64_t) le32 (p) | (uint64_t) le32 (p + 4) << 32;
}

static void
set_le32 (uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = v >> (8 * i);
}

static void
set_le64 (uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = v >> (8 * i);
}

static uint32_t
crc (const void *buf, size_t len)
{
  return (uint32_t) crc32 (0, buf, len);
}

static void
build (struct avm_gpt *g, const struct spec *s, size_t n)
{
  avm_error_t err _cleanup_error_ = NULL;

  avm_gpt_init (g);
  for (size_t i = 0; i < n; i++)
    cr_assert_eq (avm_gpt_add (g, s[i].name, s[i].size, &err), 0, "%s: %s", s[i].name, msg (err));
  cr_assert_eq (avm_gpt_finish (g, &err), 0, "%s", msg (err));
}

/* Head and tail into a sparse file of the disk's size.  */
static char *
write_disk (const char *dir, const char *name, const struct avm_gpt *g)
{
  static uint8_t head[AVM_GPT_HEAD_SIZE], tail[AVM_GPT_TAIL_SIZE];
  avm_error_t err _cleanup_error_ = NULL;
  char *path = NULL;

  cr_assert_eq (avm_gpt_build (g, head, tail, &err), 0, "%s", msg (err));
  cr_assert_geq (asprintf (&path, "%s/%s", dir, name), 0);
  _cleanup_close_ int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  cr_assert_geq (fd, 0, "%s: %s", path, strerror (errno));
  cr_assert_eq (ftruncate (fd, (off_t) g->disk_size), 0, "%s", strerror (errno));
  cr_assert_eq (pwrite (fd, head, sizeof head, 0), (ssize_t) sizeof head);
  cr_assert_eq (pwrite (fd, tail, sizeof tail, (off_t) (g->disk_size - sizeof tail)), (ssize_t) sizeof tail);
  return path;
}

static void
read_bytes (const char *path, uint64_t off, void *buf, size_t len)
{
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC);
  cr_assert_geq (fd, 0);
  cr_assert_eq (pread (fd, buf, len, (off_t) off), (ssize_t) len);
}

static void
write_bytes (const char *path, uint64_t off, const void *buf, size_t len)
{
  _cleanup_close_ int fd = open (path, O_WRONLY | O_CLOEXEC);
  cr_assert_geq (fd, 0);
  cr_assert_eq (pwrite (fd, buf, len, (off_t) off), (ssize_t) len);
}

static void
flip (const char *path, uint64_t off)
{
  uint8_t b;
  read_bytes (path, off, &b, 1);
  b ^= 0x01;
  write_bytes (path, off, &b, 1);
}

/* Recompute every CRC of both tables (after editing the entries or the
   header fields on purpose): each header is resealed over its own entries
   array.  */
static void
reseal (const char *path, uint64_t disk_size)
{
  uint64_t lbas = disk_size / 512;
  uint64_t header_lbas[2] = { 1, lbas - 1 };

  for (int k = 0; k < 2; k++)
    {
      uint8_t h[512], entries[16384];
      read_bytes (path, header_lbas[k] * 512, h, sizeof h);
      read_bytes (path, le64 (h + 72) * 512, entries, sizeof entries);
      set_le32 (h + 88, crc (entries, sizeof entries));
      set_le32 (h + 16, 0);
      set_le32 (h + 16, crc (h, 92));
      write_bytes (path, header_lbas[k] * 512, h, sizeof h);
    }
}

/* The error avm_gpt_read gives for PATH, reported as NAME.  */
static char *
read_error (const char *path, const char *name, uint64_t disk_size)
{
  avm_error_t err _cleanup_error_ = NULL;
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC);
  struct avm_gpt *g = malloc (sizeof *g);

  cr_assert_geq (fd, 0);
  int r = avm_gpt_read (fd, disk_size, name, g, &err);
  free (g);
  cr_assert_lt (r, 0, "avm_gpt_read accepted %s", path);
  cr_assert_not_null (err);
  cr_assert_eq (err->exit_code, AVM_EXIT_USAGE, "%s", err->msg);
  return strdup (err->msg);
}

static void
assert_starts_with (const char *s, const char *prefix)
{
  cr_assert (strncmp (s, prefix, strlen (prefix)) == 0, "\"%s\" does not start with \"%s\"", s, prefix);
}

/* ---- independent tools ------------------------------------------------ */

/* NAME in $PATH, /usr/sbin or /sbin (sgdisk and sfdisk live in sbin, which
   is not always in a user's PATH).  */
static char *
tool (const char *name)
{
  const char *path = getenv ("PATH");
  _cleanup_free_ char *dirs = NULL;
  char *save = NULL;

  cr_assert_geq (asprintf (&dirs, "%s:/usr/sbin:/sbin", path ? path : "/usr/bin:/bin"), 0);
  for (char *d = strtok_r (dirs, ":", &save); d; d = strtok_r (NULL, ":", &save))
    {
      char *p = NULL;
      cr_assert_geq (asprintf (&p, "%s/%s", *d ? d : ".", name), 0);
      if (access (p, X_OK) == 0)
        return p;
      free (p);
    }
  cr_assert_fail ("%s not found: install it (tests/deps.sh: gdisk provides sgdisk, fdisk provides sfdisk)", name);
  return NULL;
}

/* Run NAME A1 [A2 [A3]]: it must succeed and print nothing on stderr
   (sfdisk warns there, e.g. "GPT PMBR size mismatch").  */
static char *
run_tool (const char *name, const char *a1, const char *a2, const char *a3)
{
  _cleanup_free_ char *bin = tool (name);
  char *argv[] = { bin, (char *) a1, (char *) a2, (char *) a3, NULL };
  char *env[] = { "LC_ALL=C.UTF-8", NULL };
  char *out = NULL;
  _cleanup_free_ char *errout = NULL;

  int rc = tu_run (argv, env, &out, &errout);
  cr_assert_eq (rc, 0, "%s %s %s: exit %d\n%s%s", name, a1, a2 ? a2 : "", rc, out, errout);
  cr_assert_str_empty (errout, "%s %s %s: %s", name, a1, a2 ? a2 : "", errout);
  return out;
}

/* sgdisk --verify: "No problems found" and not a word more, apart from the
   notice that Cuttlefish's layout always earns (first usable LBA 40, six
   sectors after the entries; util-linux's 1 MiB alignment earns the same).  */
static void
check_sgdisk_verify (const char *path)
{
  _cleanup_free_ char *out = run_tool ("sgdisk", "--verify", path, NULL);
  static const char notice[] = "Warning: There is a gap between the main partition table (ending sector 33)\n"
                               "and the first usable sector (40). This is helpful in some exotic configurations,\n"
                               "but is unusual. The util-linux fdisk program often creates disks like this.\n"
                               "Using 'j' on the experts' menu can adjust this gap.\n";
  const char *rest = out;

  while (*rest == '\n')
    rest++;
  if (strncmp (rest, notice, strlen (notice)) == 0)
    rest += strlen (notice);
  while (*rest == '\n')
    rest++;
  assert_starts_with (rest, "No problems found.");
  cr_assert_null (strstr (rest, "Warning"), "%s", out);
  cr_assert_null (strstr (rest, "Problem"), "%s", out);
  cr_assert_null (strstr (rest, "Caution"), "%s", out);
}

/* sfdisk --json: the label, the usable range and every partition.  */
static void
check_sfdisk (const char *path, const struct avm_gpt *g)
{
  _cleanup_free_ char *out = run_tool ("sfdisk", "--json", path, NULL);
  json_error_t jerr;
  json_t *root = json_loads (out, 0, &jerr);
  char guid[37];

  cr_assert_not_null (root, "sfdisk --json: %s\n%s", jerr.text, out);
  json_t *t = json_object_get (root, "partitiontable");
  cr_assert_str_eq (json_string_value (json_object_get (t, "label")), "gpt");
  cr_assert_eq (json_integer_value (json_object_get (t, "firstlba")), 40);
  cr_assert_eq ((uint64_t) json_integer_value (json_object_get (t, "lastlba")), g->last_usable_lba);
  cr_assert_eq (json_integer_value (json_object_get (t, "sectorsize")), 512);
  avm_guid_format (g->disk_guid, guid);
  cr_assert_str_eq (json_string_value (json_object_get (t, "id")), guid);

  json_t *parts = json_object_get (t, "partitions");
  cr_assert_eq (json_array_size (parts), g->n);
  for (size_t i = 0; i < g->n; i++)
    {
      const struct avm_gpt_part *p = &g->parts[i];
      json_t *e = json_array_get (parts, i);
      uint64_t padded = (p->size + 4095) / 4096 * 4096;

      cr_assert_eq ((uint64_t) json_integer_value (json_object_get (e, "start")), p->offset / 512, "%s", p->name);
      cr_assert_eq ((uint64_t) json_integer_value (json_object_get (e, "size")), padded / 512, "%s", p->name);
      cr_assert_str_eq (json_string_value (json_object_get (e, "name")), p->name);
      cr_assert_str_eq (json_string_value (json_object_get (e, "type")), linux_fs, "%s", p->name);
      avm_guid_format (p->unique_guid, guid);
      cr_assert_str_eq (json_string_value (json_object_get (e, "uuid")), guid, "%s", p->name);
    }
  json_decref (root);
}

/* sgdisk -p lists the names, sgdisk -i N shows each partition.  */
static void
check_sgdisk_print (const char *path, const struct avm_gpt *g)
{
  _cleanup_free_ char *list = run_tool ("sgdisk", "-p", path, NULL);
  char want[256], guid[37];

  snprintf (want, sizeof want, "First usable sector is 40, last usable sector is %" PRIu64 "\n", g->last_usable_lba);
  cr_assert_not_null (strstr (list, want), "%s", list);
  cr_assert_not_null (strstr (list, "Partition table holds up to 128 entries"), "%s", list);
  for (size_t i = 0; i < g->n; i++)
    {
      const struct avm_gpt_part *p = &g->parts[i];
      char num[24];

      snprintf (want, sizeof want, "  8300  %s\n", p->name);
      cr_assert_not_null (strstr (list, want), "%s missing from\n%s", p->name, list);

      snprintf (num, sizeof num, "%zu", i + 1);
      _cleanup_free_ char *info = run_tool ("sgdisk", "-i", num, path);
      snprintf (want, sizeof want, "Partition name: '%s'\n", p->name);
      cr_assert_not_null (strstr (info, want), "%s", info);
      snprintf (want, sizeof want, "Partition GUID code: %s (Linux filesystem)\n", linux_fs);
      cr_assert_not_null (strstr (info, want), "%s", info);
      avm_guid_format (p->unique_guid, guid);
      snprintf (want, sizeof want, "Partition unique GUID: %s\n", guid);
      cr_assert_not_null (strstr (info, want), "%s", info);
      snprintf (want, sizeof want, "First sector: %" PRIu64 " ", p->first_lba);
      cr_assert_not_null (strstr (info, want), "%s", info);
      snprintf (want, sizeof want, "Last sector: %" PRIu64 " ", p->last_lba);
      cr_assert_not_null (strstr (info, want), "%s", info);
    }
}

/* ---- layout ----------------------------------------------------------- */

/* The layout recomputed from the rules, not from the code under test.  */
static void
check_layout (const struct avm_gpt *g, const struct spec *s, size_t n)
{
  uint64_t lba = 40;

  cr_assert_eq (g->n, n);
  cr_assert_eq (g->parts[0].first_lba, 40);
  for (size_t i = 0; i < n; i++)
    {
      const struct avm_gpt_part *p = &g->parts[i];
      uint64_t sectors = (s[i].size + 4095) / 4096 * 8;

      cr_assert_str_eq (p->name, s[i].name);
      cr_assert_eq (p->size, s[i].size, "%s", p->name);
      cr_assert_eq (p->first_lba, lba, "%s", p->name);
      cr_assert_eq (p->offset, lba * 512, "%s", p->name);
      cr_assert_eq (p->first_lba % 8, 0, "%s not 4 KiB-aligned", p->name);
      cr_assert_eq (p->last_lba, lba + sectors - 1, "%s", p->name);
      cr_assert_eq (p->attributes, 0);
      lba += sectors;
    }
  uint64_t end = lba * 512;
  cr_assert_eq (g->disk_size % 65536, 0);
  cr_assert_geq (g->disk_size, end + 16896);
  cr_assert_lt (g->disk_size - 65536, end + 16896, "disk not rounded up to the next 64 KiB");
  cr_assert_eq (g->first_usable_lba, 40);
  cr_assert_eq (g->last_usable_lba, g->disk_size / 512 - 34);
}

static uint32_t
mbr_size (const char *path)
{
  uint8_t mbr[512];
  read_bytes (path, 0, mbr, sizeof mbr);
  return le32 (mbr + 446 + 12);
}

/* What avm_gpt_read finds is what was written (sizes padded).  */
static void
check_roundtrip (const char *path, const char *name, const struct avm_gpt *g)
{
  avm_error_t err _cleanup_error_ = NULL;
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC);
  _cleanup_free_ struct avm_gpt *r = malloc (sizeof *r);
  struct stat st;

  cr_assert_geq (fd, 0);
  cr_assert_eq (fstat (fd, &st), 0);
  cr_assert_eq ((uint64_t) st.st_size, g->disk_size);
  cr_assert_eq (avm_gpt_read (fd, st.st_size, name, r, &err), 0, "%s", msg (err));
  cr_assert_eq (r->n, g->n);
  cr_assert_eq (r->disk_size, g->disk_size);
  cr_assert_eq (r->first_usable_lba, g->first_usable_lba);
  cr_assert_eq (r->last_usable_lba, g->last_usable_lba);
  cr_assert_arr_eq (r->disk_guid, g->disk_guid, 16);
  for (size_t i = 0; i < g->n; i++)
    {
      const struct avm_gpt_part *a = &g->parts[i], *b = &r->parts[i];
      cr_assert_str_eq (b->name, a->name);
      cr_assert_eq (b->offset, a->offset, "%s", a->name);
      cr_assert_eq (b->size, (a->size + 4095) / 4096 * 4096, "%s", a->name);
      cr_assert_eq (b->first_lba, a->first_lba, "%s", a->name);
      cr_assert_eq (b->last_lba, a->last_lba, "%s", a->name);
      cr_assert_arr_eq (b->type_guid, a->type_guid, 16);
      cr_assert_arr_eq (b->unique_guid, a->unique_guid, 16);
      cr_assert_eq (b->attributes, a->attributes);
      cr_assert_eq (avm_gpt_find (r, a->name), b);
    }
  cr_assert_null (avm_gpt_find (r, "no_such_partition"));
}

Test (gpt, system_disk, .timeout = TU_TIMEOUT (120))
{
  const char *dir = tmp ();
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);

  build (g, system_parts, ARRAY_SIZE (system_parts));
  check_layout (g, system_parts, ARRAY_SIZE (system_parts));
  /* super: 4 GiB + 12345 bytes, padded to 4 GiB + 16384.  */
  const struct avm_gpt_part *super = avm_gpt_find (g, "super");
  cr_assert_not_null (super);
  cr_assert_eq ((super->last_lba - super->first_lba + 1) * 512, 4 * GiB + 16384);
  cr_assert_gt (g->disk_size, 4 * GiB);

  _cleanup_free_ char *path = write_disk (dir, "system.img", g);
  /* The spec's size, sectors - 1, not Cuttlefish's (uint32_t) bytes / 512,
     which wraps above 4 GiB.  */
  cr_assert_eq (mbr_size (path), g->disk_size / 512 - 1);
  cr_assert_neq (mbr_size (path), (uint32_t) g->disk_size / 512);
  check_sgdisk_verify (path);
  check_sfdisk (path, g);
  check_sgdisk_print (path, g);
  check_roundtrip (path, "system.img", g);
}

Test (gpt, properties_disk, .timeout = TU_TIMEOUT (60))
{
  const char *dir = tmp ();
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);

  build (g, props_parts, ARRAY_SIZE (props_parts));
  check_layout (g, props_parts, ARRAY_SIZE (props_parts));
  /* Worked by hand: 40 + 144 + 128 + 2048 + 144 = 2504 sectors of
     partitions, + 33 = 2537 sectors, rounded to 64 KiB (128 sectors) is
     2560 sectors.  */
  cr_assert_eq (g->parts[1].first_lba, 184);
  cr_assert_eq (g->parts[2].first_lba, 312);
  cr_assert_eq (g->parts[3].first_lba, 2360);
  cr_assert_eq (g->parts[3].last_lba, 2503);
  cr_assert_eq (g->disk_size, 2560 * 512);
  cr_assert_eq (g->last_usable_lba, 2526);

  _cleanup_free_ char *path = write_disk (dir, "properties.img", g);
  cr_assert_eq (mbr_size (path), 2559);
  check_sgdisk_verify (path);
  check_sfdisk (path, g);
  check_sgdisk_print (path, g);
  check_roundtrip (path, "properties.img", g);
}

/* The bytes, decoded by hand.  */
Test (gpt, bytes)
{
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);
  _cleanup_free_ uint8_t *head = malloc (AVM_GPT_HEAD_SIZE), *tail = malloc (AVM_GPT_TAIL_SIZE);
  avm_error_t err _cleanup_error_ = NULL;

  build (g, props_parts, ARRAY_SIZE (props_parts));
  cr_assert_eq (avm_gpt_build (g, head, tail, &err), 0, "%s", msg (err));
  uint64_t last = g->disk_size / 512 - 1;

  /* Protective MBR.  */
  static const uint8_t rec[16]
      = { 0x00, 0x00, 0x02, 0x00, 0xEE, 0xFF, 0xFF, 0xFF, 0x01, 0x00, 0x00, 0x00, 0xFF, 0x09, 0x00, 0x00 };
  cr_assert_arr_eq (head + 446, rec, 16);
  for (int i = 0; i < 446; i++)
    cr_assert_eq (head[i], 0);
  for (int i = 462; i < 510; i++)
    cr_assert_eq (head[i], 0);
  cr_assert_eq (head[510], 0x55);
  cr_assert_eq (head[511], 0xAA);

  /* Primary header.  */
  const uint8_t *h = head + 512;
  cr_assert_arr_eq (h, "EFI PART", 8);
  cr_assert_eq (le32 (h + 8), 0x00010000);
  cr_assert_eq (le32 (h + 12), 92);
  cr_assert_eq (le32 (h + 20), 0);
  cr_assert_eq (le64 (h + 24), 1);
  cr_assert_eq (le64 (h + 32), last);
  cr_assert_eq (le64 (h + 40), 40);
  cr_assert_eq (le64 (h + 48), last - 33);
  cr_assert_arr_eq (h + 56, g->disk_guid, 16);
  cr_assert_eq (le64 (h + 72), 2);
  cr_assert_eq (le32 (h + 80), 128);
  cr_assert_eq (le32 (h + 84), 128);
  cr_assert_eq (le32 (h + 88), crc (head + 1024, 16384));
  uint8_t copy[92];
  memcpy (copy, h, 92);
  memset (copy + 16, 0, 4);
  cr_assert_eq (le32 (h + 16), crc (copy, 92));
  for (int i = 92; i < 512; i++)
    cr_assert_eq (h[i], 0);

  /* First entry: Linux filesystem type, name "uboot_env" in UTF-16LE.  */
  const uint8_t *e = head + 1024;
  static const uint8_t linux_bytes[16]
      = { 0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4 };
  cr_assert_arr_eq (e, linux_bytes, 16);
  cr_assert_arr_eq (e + 16, g->parts[0].unique_guid, 16);
  cr_assert_eq (le64 (e + 32), 40);
  cr_assert_eq (le64 (e + 40), 183);
  cr_assert_eq (le64 (e + 48), 0);
  static const uint8_t name[20] = { 'u', 0, 'b', 0, 'o', 0, 'o', 0, 't', 0, '_', 0, 'e', 0, 'n', 0, 'v', 0, 0, 0 };
  cr_assert_arr_eq (e + 56, name, sizeof name);
  for (int i = 56 + 20; i < 128; i++)
    cr_assert_eq (e[i], 0);
  /* Unused entries and the padding up to LBA 40 are zero.  */
  for (size_t i = 1024 + 4 * 128; i < AVM_GPT_HEAD_SIZE; i++)
    cr_assert_eq (head[i], 0, "byte %zu", i);

  /* Tail: the same entries, then the backup header.  */
  cr_assert_arr_eq (tail, head + 1024, 16384);
  const uint8_t *b = tail + 16384;
  cr_assert_arr_eq (b, "EFI PART", 8);
  cr_assert_eq (le64 (b + 24), last);
  cr_assert_eq (le64 (b + 32), 1);
  cr_assert_eq (le64 (b + 40), 40);
  cr_assert_eq (le64 (b + 48), last - 33);
  cr_assert_arr_eq (b + 56, g->disk_guid, 16);
  cr_assert_eq (le64 (b + 72), last - 32);
  cr_assert_eq (le32 (b + 88), le32 (h + 88));
  memcpy (copy, b, 92);
  memset (copy + 16, 0, 4);
  cr_assert_eq (le32 (b + 16), crc (copy, 92));
  cr_assert_neq (le32 (b + 16), le32 (h + 16));
  for (int i = 92; i < 512; i++)
    cr_assert_eq (b[i], 0);
}

Test (gpt, unfinished)
{
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);
  _cleanup_free_ uint8_t *head = malloc (AVM_GPT_HEAD_SIZE), *tail = malloc (AVM_GPT_TAIL_SIZE);
  avm_error_t err _cleanup_error_ = NULL;

  avm_gpt_init (g);
  cr_assert_eq (avm_gpt_add (g, "misc", MiB, &err), 0);
  cr_assert_lt (avm_gpt_build (g, head, tail, &err), 0);
  cr_assert_eq (avm_gpt_finish (g, &err), 0);
  cr_assert_eq (avm_gpt_build (g, head, tail, &err), 0, "%s", msg (err));
  /* Adding after finishing needs another finish.  */
  cr_assert_eq (avm_gpt_add (g, "frp", MiB, &err), 0);
  cr_assert_lt (avm_gpt_build (g, head, tail, &err), 0);
}

/* Above 2 TiB (2^32 sectors) the MBR size field saturates at 0xFFFFFFFF.  */
Test (gpt, huge_disk, .timeout = TU_TIMEOUT (60))
{
  static const struct spec parts[] = {
    { "misc", 1 * MiB },
    { "userdata", 2048 * GiB + 4097 },
  };
  const char *dir = tmp ();
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);

  build (g, parts, ARRAY_SIZE (parts));
  check_layout (g, parts, ARRAY_SIZE (parts));
  cr_assert_gt (g->disk_size / 512 - 1, UINT32_MAX);
  _cleanup_free_ char *path = write_disk (dir, "huge.img", g);
  cr_assert_eq (mbr_size (path), 0xFFFFFFFFU);
  check_sgdisk_verify (path);
  check_sfdisk (path, g);
  check_sgdisk_print (path, g);
  check_roundtrip (path, "huge.img", g);
}

/* A disk of exactly 2^32 sectors still fits the field: 2^32 - 1.  */
Test (gpt, mbr_size_boundary)
{
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);
  _cleanup_free_ uint8_t *head = malloc (AVM_GPT_HEAD_SIZE), *tail = malloc (AVM_GPT_TAIL_SIZE);
  avm_error_t err _cleanup_error_ = NULL;

  /* 20480 + size + 16896 rounded to 64 KiB = 2 TiB exactly.  */
  build (g, &(struct spec) { "userdata", 2048 * GiB - 65536 }, 1);
  cr_assert_eq (g->disk_size, 2048 * GiB);
  cr_assert_eq (avm_gpt_build (g, head, tail, &err), 0, "%s", msg (err));
  cr_assert_eq (le32 (head + 446 + 12), 0xFFFFFFFFU);
  build (g, &(struct spec) { "userdata", 2048 * GiB }, 1);
  cr_assert_eq (g->disk_size, 2048 * GiB + 65536);
  cr_assert_eq (avm_gpt_build (g, head, tail, &err), 0, "%s", msg (err));
  cr_assert_eq (le32 (head + 446 + 12), 0xFFFFFFFFU);
  build (g, &(struct spec) { "userdata", 2048 * GiB - 131072 }, 1);
  cr_assert_eq (g->disk_size, 2048 * GiB - 65536);
  cr_assert_eq (avm_gpt_build (g, head, tail, &err), 0, "%s", msg (err));
  cr_assert_eq (le32 (head + 446 + 12), 0xFFFFFFFFU - 128);
}

/* An empty table is still a valid disk (64 KiB).  */
Test (gpt, empty_table)
{
  const char *dir = tmp ();
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);

  build (g, NULL, 0);
  cr_assert_eq (g->disk_size, 65536);
  _cleanup_free_ char *path = write_disk (dir, "empty.img", g);
  check_sgdisk_verify (path);
  check_sfdisk (path, g);
  check_roundtrip (path, "empty.img", g);
}

/* ---- GUIDs ------------------------------------------------------------ */

static void
check_v4 (const uint8_t guid[16])
{
  char s[37];

  avm_guid_format (guid, s);
  cr_assert_eq (strlen (s), 36);
  /* xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx, V in 8 9 A B */
  cr_assert_eq (s[14], '4', "%s", s);
  cr_assert_not_null (strchr ("89AB", s[19]), "%s", s);
  cr_assert_eq (guid[7] >> 4, 4);
  cr_assert_eq (guid[8] >> 6, 2);
}

Test (gpt, guids)
{
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g), *h = malloc (sizeof *h);
  char s[37];

  static const uint8_t linux_bytes[16]
      = { 0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4 };
  avm_guid_format (linux_bytes, s);
  cr_assert_str_eq (s, linux_fs);
  static const uint8_t esp_bytes[16]
      = { 0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B };
  avm_guid_format (esp_bytes, s);
  cr_assert_str_eq (s, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");

  build (g, system_parts, ARRAY_SIZE (system_parts));
  build (h, system_parts, ARRAY_SIZE (system_parts));
  check_v4 (g->disk_guid);
  cr_assert_arr_neq (g->disk_guid, h->disk_guid, 16);
  for (size_t i = 0; i < g->n; i++)
    {
      check_v4 (g->parts[i].unique_guid);
      cr_assert_arr_eq (g->parts[i].type_guid, linux_bytes, 16);
      cr_assert_arr_neq (g->parts[i].unique_guid, g->disk_guid, 16);
      cr_assert_arr_neq (g->parts[i].unique_guid, h->parts[i].unique_guid, 16);
      for (size_t k = 0; k < i; k++)
        cr_assert_arr_neq (g->parts[i].unique_guid, g->parts[k].unique_guid, 16);
    }
}

/* The disk GUID alone, from one read of the primary header (what avm start
   compares with manifest.json): the one the table was built with; a
   damaged header is an error naming the file.  */
Test (gpt, read_disk_guid)
{
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);
  build (g, props_parts, ARRAY_SIZE (props_parts));
  _cleanup_free_ char *path = write_disk (tmp (), "guid.img", g);
  avm_error_t err _cleanup_error_ = NULL;
  uint8_t guid[16];
  {
    _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC);
    cr_assert_eq (avm_gpt_read_disk_guid (fd, g->disk_size, "guid.img", guid, &err), 0, "%s", msg (err));
    cr_assert_arr_eq (guid, g->disk_guid, 16);
    /* a size that cannot be a GPT disk */
    cr_assert_lt (avm_gpt_read_disk_guid (fd, 4096, "guid.img", guid, &err), 0);
    cr_assert_not_null (strstr (err->msg, "guid.img: size 4096 bytes cannot hold a GPT disk"), "%s", err->msg);
  }
  flip (path, 512 + 60); /* inside the disk GUID: the header CRC no longer matches */
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC);
  cr_assert_lt (avm_gpt_read_disk_guid (fd, g->disk_size, "guid.img", guid, &err), 0);
  cr_assert_eq (err->exit_code, AVM_EXIT_USAGE);
  cr_assert_not_null (strstr (err->msg, "guid.img: primary GPT header CRC mismatch"), "%s", err->msg);
}

/* ---- names ------------------------------------------------------------ */

static char *
add_error (struct avm_gpt *g, const char *name, uint64_t size)
{
  avm_error_t err _cleanup_error_ = NULL;
  size_t n = g->n;

  cr_assert_lt (avm_gpt_add (g, name, size, &err), 0, "accepted \"%s\"", name ? name : "(null)");
  cr_assert_not_null (err);
  cr_assert_eq (err->exit_code, AVM_EXIT_USAGE);
  cr_assert_eq (g->n, n, "a rejected partition was added");
  return strdup (err->msg);
}

Test (gpt, name_errors)
{
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);
  avm_error_t err _cleanup_error_ = NULL;
  char *m;

  avm_gpt_init (g);
  cr_assert_eq (avm_gpt_add (g, "boot_a", MiB, &err), 0);

  m = add_error (g, "boot_a", MiB);
  cr_assert_str_eq (m, "duplicate GPT partition name \"boot_a\" (partitions 1 and 2)");
  free (m);

  m = add_error (g, "", MiB);
  cr_assert_str_eq (m, "GPT partition 2: empty name");
  free (m);
  m = add_error (g, NULL, MiB);
  cr_assert_str_eq (m, "GPT partition 2: empty name");
  free (m);

  /* 36 code units fit, 37 do not.  */
  const char *n36 = "abcdefghijklmnopqrstuvwxyz0123456789";
  cr_assert_eq (avm_gpt_add (g, n36, MiB, &err), 0, "%s", msg (err));
  m = add_error (g, "abcdefghijklmnopqrstuvwxyz0123456789_", MiB);
  cr_assert_str_eq (m, "GPT partition name \"abcdefghijklmnopqrstuvwxyz0123456789_\" is too long "
                       "(37 UTF-16 code units, at most 36)");
  free (m);

  /* 36 three-byte characters: 108 bytes of UTF-8, 36 code units: fits.  */
  char cjk[200] = "";
  for (int i = 0; i < 36; i++)
    strcat (cjk, "\xE6\x97\xA5"); /* U+65E5 */
  cr_assert_eq (avm_gpt_add (g, cjk, MiB, &err), 0, "%s", msg (err));
  cr_assert_str_eq (g->parts[g->n - 1].name, cjk);

  /* Characters outside the BMP take two code units: 18 fit, 19 do not.  */
  char emoji[200] = "";
  for (int i = 0; i < 18; i++)
    strcat (emoji, "\xF0\x9F\x98\x80"); /* U+1F600 */
  cr_assert_eq (avm_gpt_add (g, emoji, MiB, &err), 0, "%s", msg (err));
  strcat (emoji, "\xF0\x9F\x98\x81");
  m = add_error (g, emoji, MiB);
  cr_assert_not_null (strstr (m, "is too long (38 UTF-16 code units, at most 36)"), "%s", m);
  free (m);

  /* Invalid UTF-8: a stray byte, an overlong '/', an encoded surrogate,
     a truncated sequence, beyond U+10FFFF.  */
  static const struct
  {
    const char *what, *name, *want;
  } invalid[] = {
    { "a stray byte", "boot\xFF", "GPT partition name \"boot\\xFF\" is not valid UTF-8" },
    { "an overlong '/'", "a\xC0\xAF", "GPT partition name \"a\\xC0\\xAF\" is not valid UTF-8" },
    { "an encoded surrogate", "\xED\xA0\x80", "GPT partition name \"\\xED\\xA0\\x80\" is not valid UTF-8" },
    { "a truncated sequence", "x\xE6\x97", "GPT partition name \"x\\xE6\\x97\" is not valid UTF-8" },
    { "beyond U+10FFFF", "\xF4\x90\x80\x80", "GPT partition name \"\\xF4\\x90\\x80\\x80\" is not valid UTF-8" },
  };
  for (size_t i = 0; i < ARRAY_SIZE (invalid); i++)
    {
      m = add_error (g, invalid[i].name, MiB);
      cr_assert_str_eq (m, invalid[i].want, "%s: got \"%s\"", invalid[i].what, m);
      free (m);
    }

  /* Sizes.  */
  m = add_error (g, "zero", 0);
  cr_assert_str_eq (m, "GPT partition zero: size 0");
  free (m);
  m = add_error (g, "huge", UINT64_MAX);
  cr_assert_not_null (strstr (m, "GPT partition huge: size"), "%s", m);
  free (m);
  cr_assert_eq (g->n, 4);
}

Test (gpt, too_many_partitions)
{
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);
  avm_error_t err _cleanup_error_ = NULL;
  char name[16];

  avm_gpt_init (g);
  for (int i = 0; i < 128; i++)
    {
      snprintf (name, sizeof name, "p%d", i);
      cr_assert_eq (avm_gpt_add (g, name, 4096, &err), 0, "%s", msg (err));
    }
  _cleanup_free_ char *m = add_error (g, "p128", 4096);
  cr_assert_str_eq (m, "GPT partition p128: too many partitions (at most 128)");
  cr_assert_eq (avm_gpt_finish (g, &err), 0);

  /* All 128 entries used: still a valid table.  */
  const char *dir = tmp ();
  _cleanup_free_ char *path = write_disk (dir, "full.img", g);
  check_sgdisk_verify (path);
  check_roundtrip (path, "full.img", g);
}

/* Names beyond ASCII survive the round trip and other tools read them.  */
Test (gpt, non_ascii_names, .timeout = TU_TIMEOUT (60))
{
  static const struct spec parts[] = {
    { "données", 4096 },
    { "日本語のパーティション", 8192 },
    { "\xF0\x9F\x98\x80 smile", 4096 }, /* outside the BMP: a surrogate pair */
  };
  const char *dir = tmp ();
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);
  uint8_t e[128];

  build (g, parts, ARRAY_SIZE (parts));
  _cleanup_free_ char *path = write_disk (dir, "names.img", g);

  /* "données" in UTF-16LE.  */
  static const uint8_t donnees[16] = { 'd', 0, 'o', 0, 'n', 0, 'n', 0, 0xE9, 0, 'e', 0, 's', 0, 0, 0 };
  read_bytes (path, 1024, e, sizeof e);
  cr_assert_arr_eq (e + 56, donnees, sizeof donnees);
  /* U+1F600 as the surrogate pair D83D DE00.  */
  static const uint8_t smile[6] = { 0x3D, 0xD8, 0x00, 0xDE, ' ', 0 };
  read_bytes (path, 1024 + 2 * 128, e, sizeof e);
  cr_assert_arr_eq (e + 56, smile, sizeof smile);

  check_sgdisk_verify (path);
  check_sfdisk (path, g);
  check_roundtrip (path, "names.img", g);
  /* sgdisk prints BMP names right (it decodes surrogate pairs as two
     characters, so the third is left out).  */
  for (int i = 1; i <= 2; i++)
    {
      char num[16], want[128];
      snprintf (num, sizeof num, "%d", i);
      _cleanup_free_ char *info = run_tool ("sgdisk", "-i", num, path);
      snprintf (want, sizeof want, "Partition name: '%s'\n", parts[i - 1].name);
      cr_assert_not_null (strstr (info, want), "%s", info);
    }
}

/* ---- damaged tables --------------------------------------------------- */

/* A fresh properties disk in DIR; its size in *SIZE.  */
static char *
props_disk (const char *dir, uint64_t *size, struct avm_gpt *g)
{
  build (g, props_parts, ARRAY_SIZE (props_parts));
  *size = g->disk_size;
  return write_disk (dir, "properties.img", g);
}

Test (gpt, corrupt_primary_header)
{
  const char *dir = tmp ();
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);
  uint64_t size;
  _cleanup_free_ char *path = props_disk (dir, &size, g);

  flip (path, 512 + 60); /* a byte of the disk GUID */
  _cleanup_free_ char *m = read_error (path, "system.img", size);
  assert_starts_with (m, "system.img: primary GPT header CRC mismatch (stored 0x");
  cr_assert_not_null (strstr (m, ", computed 0x"), "%s", m);
}

Test (gpt, corrupt_primary_entries)
{
  const char *dir = tmp ();
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);
  uint64_t size;
  _cleanup_free_ char *path = props_disk (dir, &size, g);
  uint8_t h[512];
  char want[128];

  flip (path, 1024 + 128 + 56); /* vbmeta's name */
  read_bytes (path, 512, h, sizeof h);
  _cleanup_free_ char *m = read_error (path, "system.img", size);
  snprintf (want, sizeof want,
            "system.img: primary GPT partition entries CRC mismatch (stored 0x%08" PRIx32 ", computed 0x",
            le32 (h + 88));
  assert_starts_with (m, want);
}

Test (gpt, corrupt_backup_header)
{
  const char *dir = tmp ();
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);
  uint64_t size;
  _cleanup_free_ char *path = props_disk (dir, &size, g);
  uint8_t h[512];
  char want[160];

  read_bytes (path, size - 512, h, sizeof h);
  uint32_t stored = le32 (h + 16);
  flip (path, size - 512 + 40); /* first usable LBA */
  h[40] ^= 0x01;
  set_le32 (h + 16, 0);
  _cleanup_free_ char *m = read_error (path, "system.img", size);
  snprintf (want, sizeof want,
            "system.img: backup GPT header CRC mismatch (stored 0x%08" PRIx32 ", computed 0x%08" PRIx32 ")", stored,
            crc (h, 92));
  cr_assert_str_eq (m, want);
}

Test (gpt, corrupt_backup_entries)
{
  const char *dir = tmp ();
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);
  uint64_t size;
  _cleanup_free_ char *path = props_disk (dir, &size, g);

  flip (path, size - 16896 + 40); /* uboot_env's last LBA, backup copy */
  _cleanup_free_ char *m = read_error (path, "system.img", size);
  assert_starts_with (m, "system.img: backup GPT partition entries CRC mismatch (stored 0x");
}

Test (gpt, wrong_signature)
{
  const char *dir = tmp ();
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);
  uint64_t size;
  _cleanup_free_ char *path = props_disk (dir, &size, g);

  write_bytes (path, 512, "EFI PARU", 8);
  char *m = read_error (path, "system.img", size);
  cr_assert_str_eq (m, "system.img: no primary GPT header at LBA 1 (signature is not \"EFI PART\")");
  free (m);

  write_bytes (path, 512, "EFI PART", 8);
  write_bytes (path, size - 512, "IFE PART", 8);
  m = read_error (path, "system.img", size);
  char want[128];
  snprintf (want, sizeof want, "system.img: no backup GPT header at LBA %" PRIu64 " (signature is not \"EFI PART\")",
            size / 512 - 1);
  cr_assert_str_eq (m, want);
  free (m);
}

Test (gpt, truncated)
{
  const char *dir = tmp ();
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);
  uint64_t size;
  _cleanup_free_ char *path = props_disk (dir, &size, g);
  char want[256];

  /* Told the full size, but the file ends early.  */
  cr_assert_eq (truncate (path, (off_t) (size - 65536)), 0);
  char *m = read_error (path, "system.img", size);
  snprintf (want, sizeof want,
            "system.img: file ends at offset %" PRIu64 ", before the end of the backup GPT header at offset %" PRIu64
            " (truncated?)",
            size - 65536, size);
  cr_assert_str_eq (m, want);
  free (m);

  /* Told the real size: the backup header is not where the primary says.  */
  m = read_error (path, "system.img", size - 65536);
  snprintf (want, sizeof want,
            "system.img: primary GPT header puts the backup header at LBA %" PRIu64 ", but the last LBA of the %" PRIu64
            "-sector disk is %" PRIu64 " (file truncated or resized?)",
            size / 512 - 1, (size - 65536) / 512, (size - 65536) / 512 - 1);
  cr_assert_str_eq (m, want);
  free (m);

  /* Shorter than a GPT disk, not a sector multiple, empty.  */
  m = read_error (path, "system.img", 512 * 60);
  cr_assert_str_eq (m, "system.img: size 30720 bytes cannot hold a GPT disk");
  free (m);
  m = read_error (path, "system.img", size - 100);
  snprintf (want, sizeof want, "system.img: size %" PRIu64 " is not a multiple of 512 bytes", size - 100);
  cr_assert_str_eq (m, want);
  free (m);
  cr_assert_eq (truncate (path, 0), 0);
  m = read_error (path, "system.img", size);
  cr_assert_str_eq (m, "system.img: file ends at offset 0, before the end of the protective MBR at offset 512 "
                       "(truncated?)");
  free (m);
}

Test (gpt, bad_mbr)
{
  const char *dir = tmp ();
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);
  uint64_t size;
  _cleanup_free_ char *path = props_disk (dir, &size, g);
  uint8_t mbr[512];
  char want[160];

  read_bytes (path, 0, mbr, sizeof mbr);

  /* Cuttlefish's size field is (uint32) bytes / 512; ours is sectors - 1.  */
  uint8_t bad[512];
  memcpy (bad, mbr, 512);
  set_le32 (bad + 446 + 12, (uint32_t) (size / 512));
  write_bytes (path, 0, bad, 512);
  char *m = read_error (path, "p.img", size);
  snprintf (want, sizeof want,
            "p.img: protective MBR record covers %" PRIu64 " sectors (expected %" PRIu64
            ", min(disk sectors - 1, 0xFFFFFFFF))",
            size / 512, size / 512 - 1);
  cr_assert_str_eq (m, want);
  free (m);

  /* One byte of the MBR changed.  */
  static const struct
  {
    const char *what;
    size_t offset;
    uint8_t value;
    const char *want;
  } pokes[] = {
    { "boot signature", 511, 0, "p.img: no MBR boot signature 55 AA at offset 510 (found 55 00)" },
    { "record type", 446 + 4, 0x83, "p.img: MBR has no protective (type 0xEE) record: not a GPT disk" },
    /* a FAT partition next to it: hybrid */
    { "hybrid", 446 + 16 + 4, 0x0C, "p.img: MBR record 2 is used next to the protective record (hybrid MBR)" },
  };
  for (size_t i = 0; i < ARRAY_SIZE (pokes); i++)
    {
      memcpy (bad, mbr, 512);
      bad[pokes[i].offset] = pokes[i].value;
      write_bytes (path, 0, bad, 512);
      m = read_error (path, "p.img", size);
      cr_assert_str_eq (m, pokes[i].want, "%s: got \"%s\"", pokes[i].what, m);
      free (m);
    }

  /* Restored, it reads again.  */
  write_bytes (path, 0, mbr, 512);
  check_roundtrip (path, "p.img", g);
}

/* Entries edited with valid CRCs: bounds and overlaps are still checked.  */
Test (gpt, bad_entries)
{
  const char *dir = tmp ();
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);
  uint64_t size;
  _cleanup_free_ char *path = props_disk (dir, &size, g);
  uint8_t e[128], saved[128];
  char want[256];

  /* vbmeta (entry 2) starting inside uboot_env (LBA 40-183).  */
  read_bytes (path, 1024 + 128, saved, sizeof saved);
  memcpy (e, saved, 128);
  set_le64 (e + 32, 100);
  write_bytes (path, 1024 + 128, e, 128);
  write_bytes (path, size - 16896 + 128, e, 128);
  reseal (path, size);
  char *m = read_error (path, "p.img", size);
  cr_assert_str_eq (m, "p.img: GPT partitions 1 (uboot_env, LBA 40-183) and 2 (vbmeta, LBA 100-311) overlap");
  free (m);

  /* Beyond the last usable LBA.  */
  memcpy (e, saved, 128);
  set_le64 (e + 40, size / 512 - 33);
  write_bytes (path, 1024 + 128, e, 128);
  write_bytes (path, size - 16896 + 128, e, 128);
  reseal (path, size);
  m = read_error (path, "p.img", size);
  snprintf (want, sizeof want,
            "p.img: GPT partition 2 (vbmeta): LBA 184-%" PRIu64 " is outside the usable range 40-%" PRIu64,
            size / 512 - 33, size / 512 - 34);
  cr_assert_str_eq (m, want);
  free (m);

  /* Before the first usable LBA.  */
  memcpy (e, saved, 128);
  set_le64 (e + 32, 33);
  write_bytes (path, 1024 + 128, e, 128);
  write_bytes (path, size - 16896 + 128, e, 128);
  reseal (path, size);
  m = read_error (path, "p.img", size);
  cr_assert_str_eq (m, "p.img: GPT partition 2 (vbmeta): LBA 33-311 is outside the usable range 40-2526");
  free (m);

  /* The backup table describing other partitions than the primary.  */
  write_bytes (path, 1024 + 128, saved, 128);
  reseal (path, size);
  m = read_error (path, "p.img", size);
  cr_assert_str_eq (m, "p.img: primary and backup GPT differ (partition entries)");
  free (m);

  write_bytes (path, size - 16896 + 128, saved, 128);
  reseal (path, size);
  check_roundtrip (path, "p.img", g);
}

/* A primary header that disagrees with the backup one, CRCs valid.  */
Test (gpt, headers_differ)
{
  const char *dir = tmp ();
  _cleanup_free_ struct avm_gpt *g = malloc (sizeof *g);
  uint64_t size;
  _cleanup_free_ char *path = props_disk (dir, &size, g);
  uint8_t h[512];

  read_bytes (path, 512, h, sizeof h);
  h[56] ^= 0xFF; /* disk GUID */
  write_bytes (path, 512, h, sizeof h);
  reseal (path, size);
  _cleanup_free_ char *m = read_error (path, "p.img", size);
  cr_assert_str_eq (m, "p.img: primary and backup GPT differ (disk GUID)");
}
