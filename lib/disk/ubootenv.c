/* SPDX-License-Identifier: Apache-2.0 */
/*
 * U-Boot environment images in the manner of Cuttlefish's mkenvimage_slim
 * (formats.md section 3.2).
 */
#include "disk/ubootenv.h"
#include "util/cleanup.h"
#include "util/strv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include "disk/lazy_zlib.h"

#define DATA_OFF 4

static uint32_t
env_crc (const uint8_t *data, size_t len)
{
  return (uint32_t) sym_crc32_z (sym_crc32_z (0L, Z_NULL, 0), data, len);
}

int
avm_uboot_env_build (char *const *entries, uint8_t out[AVM_UBOOT_ENV_SIZE], avm_error_t *err)
{
  size_t total = 1; /* the final NUL */
  int r;

  if ((r = avm_dlopen_zlib (err)) < 0)
    return r;

  for (size_t i = 0; entries && entries[i]; i++)
    {
      const char *e = entries[i];
      const char *eq = strchr (e, '=');
      if (!eq || eq == e)
        return avm_error_input (err, "U-Boot environment: entry \"%s\" is not key=value", e);
      if (memchr (e, '\n', eq - e))
        return avm_error_input (err, "U-Boot environment: the key of entry \"%s\" contains a newline", e);
      size_t len = strlen (e) + 1;
      total = len > SIZE_MAX - total ? SIZE_MAX : total + len;
    }
  if (total > AVM_UBOOT_ENV_SIZE - DATA_OFF)
    return avm_error_input (err, "U-Boot environment: %zu bytes of entries do not fit in %d", total,
                            AVM_UBOOT_ENV_SIZE);

  memset (out, 0xff, AVM_UBOOT_ENV_SIZE);
  size_t off = DATA_OFF;
  for (size_t i = 0; entries && entries[i]; i++)
    {
      size_t len = strlen (entries[i]) + 1;
      memcpy (out + off, entries[i], len);
      off += len;
    }
  out[off] = '\0';

  uint32_t crc = env_crc (out + DATA_OFF, AVM_UBOOT_ENV_SIZE - DATA_OFF);
  out[0] = crc;
  out[1] = crc >> 8;
  out[2] = crc >> 16;
  out[3] = crc >> 24;
  return 0;
}

int
avm_uboot_env_parse (const uint8_t *env, size_t len, char ***entries, avm_error_t *err)
{
  struct avm_argv v = { 0 };
  int r;

  if ((r = avm_dlopen_zlib (err)) < 0)
    return r;
  if (len < DATA_OFF + 1)
    return avm_error_input (err, "U-Boot environment: %zu bytes, too short", len);
  uint32_t stored = (uint32_t) env[0] | (uint32_t) env[1] << 8 | (uint32_t) env[2] << 16 | (uint32_t) env[3] << 24;
  uint32_t computed = env_crc (env + DATA_OFF, len - DATA_OFF);
  if (stored != computed)
    return avm_error_input (err, "U-Boot environment CRC mismatch (stored 0x%08" PRIx32 ", computed 0x%08" PRIx32 ")",
                            stored, computed);

  size_t off = DATA_OFF;
  while (off < len && env[off] != '\0')
    {
      const uint8_t *nul = memchr (env + off, '\0', len - off);
      if (!nul)
        {
          avm_argv_clear (&v);
          return avm_error_input (err, "U-Boot environment: entry at offset %zu is not NUL-terminated", off);
        }
      if (avm_argv_push (&v, (const char *) env + off) < 0)
        {
          avm_argv_clear (&v);
          return avm_error_sys (err, ENOMEM, "U-Boot environment");
        }
      off = (size_t) (nul - env) + 1;
    }
  if (off >= len)
    {
      avm_argv_clear (&v);
      return avm_error_input (err, "U-Boot environment: no terminating empty entry (double NUL)");
    }
  *entries = avm_argv_steal (&v);
  if (!*entries)
    return avm_error_sys (err, ENOMEM, "U-Boot environment");
  return 0;
}
