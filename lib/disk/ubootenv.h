/* SPDX-License-Identifier: Apache-2.0 */
/*
 * U-Boot environment images as Cuttlefish's mkenvimage_slim writes them
 * (formats.md section 3.2): 4096 bytes, little-endian CRC32 (zlib) of bytes
 * 4..4095 at offset 0, NUL-terminated "key=value" entries from offset 4, one
 * more NUL, 0xFF padding.
 */
#pragma once

#include "util/error.h"

#include <stddef.h>
#include <stdint.h>

#define AVM_UBOOT_ENV_SIZE 4096

/* ENTRIES: "key=value" strings (NULL-terminated).  */
int avm_uboot_env_build (char *const *entries, uint8_t out[AVM_UBOOT_ENV_SIZE], avm_error_t *err);
/* Check the CRC and split the entries (malloc'd vector).  */
int avm_uboot_env_parse (const uint8_t *env, size_t len, char ***entries, avm_error_t *err);
