/* SPDX-License-Identifier: Apache-2.0 */
/*
 * U-Boot environment images (lib/disk/ubootenv.c) in Cuttlefish's
 * mkenvimage_slim layout.  The CRC is recomputed here with a bitwise
 * CRC-32 (IEEE 802.3, reflected, as zlib), independent of zlib.
 */
#include "disk/ubootenv.h"
#include "util/cleanup.h"
#include "util/strv.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite (ubootenv);

#define UENVCMD                                                                                                        \
  "uenvcmd=setenv bootargs \"$cbootargs console=ttyS0 panic=-1\" && bcb load virtio 0 misc; if bcb test "              \
  "command = boot-quiescent; then setenv bootargs \"$bootargs androidboot.quiescent=1\"; bcb clear command; "          \
  "bcb store; fi; run bootcmd_android"

static uint32_t
crc32_bitwise (const uint8_t *p, size_t n)
{
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++)
    {
      c ^= p[i];
      for (int k = 0; k < 8; k++)
        c = (c >> 1) ^ (0xedb88320u & -(c & 1));
    }
  return ~c;
}

static uint32_t
stored_crc (const uint8_t *env)
{
  return (uint32_t) env[0] | (uint32_t) env[1] << 8 | (uint32_t) env[2] << 16 | (uint32_t) env[3] << 24;
}

static void
build_ok (char *const *entries, uint8_t env[AVM_UBOOT_ENV_SIZE])
{
  _cleanup_error_ avm_error_t err = NULL;
  int r = avm_uboot_env_build (entries, env, &err);
  cr_assert_eq (r, 0, "%s", err ? err->msg : "");
}

static void
assert_msg (avm_error_t err, const char *want)
{
  cr_assert_not_null (err);
  cr_assert_str_eq (err->msg, want);
}

Test (ubootenv, crc32_reference)
{
  /* The check value of CRC-32/ISO-HDLC.  */
  cr_assert_eq (crc32_bitwise ((const uint8_t *) "123456789", 9), 0xcbf43926u);
}

Test (ubootenv, cuttlefish_layout)
{
  char *entries[] = { "ethprime=eth1", UENVCMD, "android_slot_suffix=_a", NULL };
  uint8_t env[AVM_UBOOT_ENV_SIZE];
  build_ok (entries, env);

  size_t off = 4;
  for (int i = 0; entries[i]; i++)
    {
      size_t len = strlen (entries[i]) + 1; /* with its NUL */
      cr_assert_eq (memcmp (env + off, entries[i], len), 0, "entry %d", i);
      off += len;
    }
  cr_assert_eq (env[off], 0, "double NUL");
  off++;
  cr_assert_eq (off, 4 + 14 + sizeof UENVCMD + 23 + 1);
  for (size_t i = off; i < AVM_UBOOT_ENV_SIZE; i++)
    cr_assert_eq (env[i], 0xff, "padding byte %zu", i);

  /* CRC: little-endian at 0, over bytes 4..4095 including the padding */
  uint32_t crc = crc32_bitwise (env + 4, AVM_UBOOT_ENV_SIZE - 4);
  cr_assert_eq (env[0], crc & 0xff);
  cr_assert_eq (env[1], crc >> 8 & 0xff);
  cr_assert_eq (env[2], crc >> 16 & 0xff);
  cr_assert_eq (env[3], crc >> 24);
}

Test (ubootenv, exact_bytes_small)
{
  char *entries[] = { "ethprime=eth1", NULL };
  uint8_t env[AVM_UBOOT_ENV_SIZE], want[AVM_UBOOT_ENV_SIZE];
  build_ok (entries, env);

  memset (want, 0xff, sizeof want);
  memcpy (want + 4, "ethprime=eth1\0", 15);
  uint32_t crc = crc32_bitwise (want + 4, sizeof want - 4);
  for (int i = 0; i < 4; i++)
    want[i] = crc >> (8 * i);
  cr_assert_eq (memcmp (env, want, sizeof want), 0);
}

Test (ubootenv, parse_round_trip)
{
  char *entries[] = { "ethprime=eth1", UENVCMD, "multi=line one\nline two", "empty=", NULL };
  uint8_t env[AVM_UBOOT_ENV_SIZE];
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_strv_ char **back = NULL;
  build_ok (entries, env);

  cr_assert_eq (avm_uboot_env_parse (env, sizeof env, &back, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (avm_strv_length (back), 4);
  for (int i = 0; entries[i]; i++)
    cr_assert_str_eq (back[i], entries[i]);
  cr_assert_null (back[4]);
}

Test (ubootenv, empty)
{
  uint8_t env[AVM_UBOOT_ENV_SIZE];
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_strv_ char **back = NULL;
  char *none[] = { NULL };
  build_ok (none, env);

  cr_assert_eq (env[4], 0);
  cr_assert_eq (env[5], 0xff);
  cr_assert_eq (stored_crc (env), crc32_bitwise (env + 4, sizeof env - 4));
  cr_assert_eq (avm_uboot_env_parse (env, sizeof env, &back, &err), 0);
  cr_assert_not_null (back);
  cr_assert_null (back[0]);
}

Test (ubootenv, crc_corruption_detected)
{
  char *entries[] = { "ethprime=eth1", UENVCMD, NULL };
  uint8_t env[AVM_UBOOT_ENV_SIZE];
  _cleanup_error_ avm_error_t err = NULL;
  char **back = NULL;
  char want[128];
  build_ok (entries, env);

  uint32_t good = stored_crc (env);
  env[100] ^= 0x01;
  snprintf (want, sizeof want, "U-Boot environment CRC mismatch (stored 0x%08x, computed 0x%08x)", good,
            crc32_bitwise (env + 4, sizeof env - 4));
  cr_assert_eq (avm_uboot_env_parse (env, sizeof env, &back, &err), -EINVAL);
  assert_msg (err, want);
  cr_assert_eq (err->exit_code, AVM_EXIT_USAGE);
  cr_assert_null (back);
  env[100] ^= 0x01;

  /* a change in the 0xFF padding is caught too */
  env[4000] = 0xfe;
  cr_assert_eq (avm_uboot_env_parse (env, sizeof env, &back, &err), -EINVAL);
  env[4000] = 0xff;

  env[2] ^= 0x10;
  snprintf (want, sizeof want, "U-Boot environment CRC mismatch (stored 0x%08x, computed 0x%08x)", good ^ 0x100000u,
            good);
  cr_assert_eq (avm_uboot_env_parse (env, sizeof env, &back, &err), -EINVAL);
  assert_msg (err, want);
}

Test (ubootenv, too_long)
{
  _cleanup_error_ avm_error_t err = NULL;
  uint8_t env[AVM_UBOOT_ENV_SIZE];
  /* 4092 bytes after the CRC: entry + its NUL + the final NUL */
  char *big = malloc (4091);
  memset (big, 'x', 4090);
  memcpy (big, "k=", 2);
  big[4090] = '\0';
  char *fits[] = { big, NULL };
  build_ok (fits, env);
  cr_assert_eq (env[4 + 4090], 0);
  cr_assert_eq (env[4 + 4091], 0);
  cr_assert_eq (stored_crc (env), crc32_bitwise (env + 4, sizeof env - 4));

  char *big2 = malloc (4092);
  memset (big2, 'x', 4091);
  memcpy (big2, "k=", 2);
  big2[4091] = '\0';
  char *over[] = { big2, NULL };
  cr_assert_eq (avm_uboot_env_build (over, env, &err), -EINVAL);
  assert_msg (err, "U-Boot environment: 4093 bytes of entries do not fit in 4096");
  cr_assert_eq (err->exit_code, AVM_EXIT_USAGE);

  char *many[] = { "ethprime=eth1", big, NULL };
  cr_assert_eq (avm_uboot_env_build (many, env, &err), -EINVAL);
  assert_msg (err, "U-Boot environment: 4106 bytes of entries do not fit in 4096");
  free (big);
  free (big2);
}

Test (ubootenv, bad_entries)
{
  _cleanup_error_ avm_error_t err = NULL;
  uint8_t env[AVM_UBOOT_ENV_SIZE];

  cr_assert_eq (avm_uboot_env_build ((char *[]) { "ethprime=eth1", "novalue", NULL }, env, &err), -EINVAL);
  assert_msg (err, "U-Boot environment: entry \"novalue\" is not key=value");
  cr_assert_eq (avm_uboot_env_build ((char *[]) { "=eth1", NULL }, env, &err), -EINVAL);
  assert_msg (err, "U-Boot environment: entry \"=eth1\" is not key=value");
  cr_assert_eq (avm_uboot_env_build ((char *[]) { "eth\nprime=eth1", NULL }, env, &err), -EINVAL);
  assert_msg (err, "U-Boot environment: the key of entry \"eth\nprime=eth1\" contains a newline");
  /* a newline in the value is allowed (the image holds it verbatim) */
  build_ok ((char *[]) { "cmd=a\nb", NULL }, env);
}

/* An image with a correct CRC over arbitrary data bytes.  */
static void
seal (uint8_t *env, size_t len)
{
  uint32_t crc = crc32_bitwise (env + 4, len - 4);
  for (int i = 0; i < 4; i++)
    env[i] = crc >> (8 * i);
}

Test (ubootenv, parse_hostile)
{
  _cleanup_error_ avm_error_t err = NULL;
  char **back = NULL;
  uint8_t env[AVM_UBOOT_ENV_SIZE] = { 0 };

  cr_assert_eq (avm_uboot_env_parse (env, 4, &back, &err), -EINVAL);
  assert_msg (err, "U-Boot environment: 4 bytes, too short");

  /* no NUL at all */
  memset (env, 'a', sizeof env);
  seal (env, sizeof env);
  cr_assert_eq (avm_uboot_env_parse (env, sizeof env, &back, &err), -EINVAL);
  assert_msg (err, "U-Boot environment: entry at offset 4 is not NUL-terminated");

  /* the last entry ends at the last byte: no double NUL */
  env[sizeof env - 1] = '\0';
  seal (env, sizeof env);
  cr_assert_eq (avm_uboot_env_parse (env, sizeof env, &back, &err), -EINVAL);
  assert_msg (err, "U-Boot environment: no terminating empty entry (double NUL)");
  cr_assert_null (back);

  /* parsing stops at the double NUL: what follows is ignored */
  memset (env, 0xff, sizeof env);
  memcpy (env + 4, "a=1\0b=2\0\0c=3\0", 14);
  seal (env, sizeof env);
  cr_assert_eq (avm_uboot_env_parse (env, sizeof env, &back, &err), 0);
  cr_assert_eq (avm_strv_length (back), 2);
  cr_assert_str_eq (back[0], "a=1");
  cr_assert_str_eq (back[1], "b=2");
  avm_strv_free (back);

  /* a smaller environment (U-Boot allows other sizes) */
  uint8_t small[16] = { 0, 0, 0, 0, 'x', '=', 'y', 0, 0 };
  memset (small + 9, 0xff, sizeof small - 9);
  seal (small, sizeof small);
  cr_assert_eq (avm_uboot_env_parse (small, sizeof small, &back, &err), 0);
  cr_assert_eq (avm_strv_length (back), 1);
  avm_strv_free (back);
}
