/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The properties disk Cuttlefish's U-Boot reads (formats.md 1.8, 3.2, 4.2;
 * cuttlefish.md 2.2): a GPT disk with, in this order (uboot_env must stay
 * first), uboot_env (4096-byte environment + AVB hash footer, 73728 bytes),
 * vbmeta (chain descriptors uboot_env:1 and bootconfig:2, padded to 65536),
 * frp (1 MiB, a hole) and bootconfig ("key=value\n" lines + AVB hash footer).
 * The same call serves `avm cvd2img` and `avm start`, which rebuilds the
 * disk when the profile's boot properties change.
 */
#pragma once

#include "disk/avb.h"
#include "disk/gpt.h"
#include "disk/output.h"
#include "util/error.h"

#include <jansson.h>

struct avm_props_spec
{
  json_t *boot_properties;       /* {"androidboot.x": "v", ...} (plan "boot_properties") */
  const char *arch;              /* "x86_64" or "aarch64": kernel console and earlycon */
  const struct avm_avb_key *key; /* signing key (RSA-4096) */
  const uint8_t *salt;           /* 32 bytes for reproducible output, or NULL (random) */
};

/* "key=value\n" for every property (malloc'd); values may not be empty or
   contain newlines.  */
int avm_bootconfig_text (json_t *props, char **text, avm_error_t *err);

/* The guest kernel's pstore region on x86 (launch_cvd's ramoops kernel
   arguments, libs/config/kernel_args.cpp): where the kernel arguments of
   the U-Boot environment look for it, and where avm start attaches the
   nvdimm holding it (machine.ramoops).  */
#define AVM_RAMOOPS_ADDRESS 0x150000000ULL
#define AVM_RAMOOPS_SIZE 0x200000

/* The U-Boot environment entries for ARCH (NULL-terminated, malloc'd).  */
char **avm_props_uboot_env_entries (const char *arch);

/* Two steps for callers that manage the output themselves: the layout
   (partition sizes depend on the bootconfig text), then the contents into an
   output of gpt->disk_size bytes.  */
int avm_props_disk_layout (const struct avm_props_spec *spec, struct avm_gpt *gpt, avm_error_t *err);
int avm_props_disk_write (const struct avm_props_spec *spec, struct avm_out *o, const struct avm_gpt *gpt,
                          avm_error_t *err);

/* Convenience: build PATH atomically (temporary + rename).  */
int avm_props_disk_create (const struct avm_props_spec *spec, const char *path, avm_error_t *err);
