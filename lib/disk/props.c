/* SPDX-License-Identifier: Apache-2.0 */
#include "disk/props.h"
#include "disk/output.h"
#include "disk/ubootenv.h"
#include "util/cleanup.h"
#include "util/strv.h"

#include <string.h>

#define UBOOT_ENV_PARTITION 73728 /* align4K(69632 + 4096) */
#define FRP_SIZE (1024 * 1024)

/* U-Boot runs this; Cuttlefish's Android boot flow with the BCB quiescent
   check (cuttlefish.md 2.2).  */
static const char android_entry[]
    = "bcb load virtio 0 misc; if bcb test command = boot-quiescent; then setenv bootargs "
      "\"$bootargs androidboot.quiescent=1\"; bcb clear command; bcb store; fi; "
      "run bootcmd_android";

char **
avm_props_uboot_env_entries (const char *arch)
{
  struct avm_argv a = { 0 };
  /* launch_cvd's QEMU kernel arguments (libs/config/kernel_args.cpp).  On
     x86, pnpacpi=off keeps ACPI from claiming the ISA serial ports (serdev
     uses them as platform devices), and ramoops keeps the kernel's last log
     across a reboot in the 2 MiB pstore region at 0x150000000: the nvdimm
     that avm start attaches at that very address (machine.ramoops; QEMU
     would otherwise place it right after the RAM).  Without that nvdimm
     the address is RAM or nothing and the kernel leaves ramoops off, as
     under launch_cvd without its pstore file.  */
  avm_argv_push (&a, "ethprime=eth1");
  if (streq (arch, "aarch64"))
    avm_argv_pushf (&a, "uenvcmd=setenv bootargs \"$cbootargs console=hvc0 earlycon=pl011,mmio32,0x9000000\" && %s",
                    android_entry);
  else
    avm_argv_pushf (&a,
                    "uenvcmd=setenv bootargs \"$cbootargs console=hvc0 earlycon=uart8250,io,0x3f8 pnpacpi=off "
                    "ramoops.mem_address=0x%llx ramoops.mem_size=0x%x ramoops.console_size=0x80000 "
                    "ramoops.record_size=0x80000 ramoops.dump_oops=1\" && %s",
                    (unsigned long long) AVM_RAMOOPS_ADDRESS, AVM_RAMOOPS_SIZE, android_entry);
  return avm_argv_steal (&a);
}

int
avm_bootconfig_text (json_t *props, char **text, avm_error_t *err)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  const char *k;
  json_t *v;
  if (!f)
    return avm_error_sys (err, errno, "bootconfig");
  json_object_foreach (props, k, v)
    {
      const char *s = json_string_value (v);
      if (!s || !*s || strchr (s, '\n') || strchr (k, '=') || strchr (k, '\n'))
        {
          fclose (f);
          free (buf);
          return avm_error_input (err, "bootconfig: property %s: values must be non-empty single-line strings", k);
        }
      fprintf (f, "%s=%s\n", k, s);
    }
  if (fclose (f) != 0)
    {
      free (buf);
      return avm_error_sys (err, ENOMEM, "bootconfig");
    }
  *text = buf;
  return 0;
}

static uint64_t
round4k (uint64_t v)
{
  return (v + 4095) & ~(uint64_t) 4095;
}

int
avm_props_disk_layout (const struct avm_props_spec *spec, struct avm_gpt *gpt, avm_error_t *err)
{
  _cleanup_free_ char *text = NULL;
  int r = avm_bootconfig_text (spec->boot_properties, &text, err);
  if (r < 0)
    return r;
  avm_gpt_init (gpt);
  if ((r = avm_gpt_add (gpt, "uboot_env", UBOOT_ENV_PARTITION, err)) < 0
      || (r = avm_gpt_add (gpt, "vbmeta", AVM_AVB_VBMETA_PARTITION, err)) < 0
      || (r = avm_gpt_add (gpt, "frp", FRP_SIZE, err)) < 0
      || (r = avm_gpt_add (gpt, "bootconfig", round4k (AVM_AVB_MAX_METADATA + strlen (text)), err)) < 0)
    return r;
  return avm_gpt_finish (gpt, err);
}

int
avm_props_disk_write (const struct avm_props_spec *spec, struct avm_out *o, const struct avm_gpt *gpt, avm_error_t *err)
{
  _cleanup_free_ char *text = NULL;
  _cleanup_free_ uint8_t *env_part = NULL, *bc_part = NULL, *vbmeta = NULL, *head = NULL, *tail = NULL;
  _cleanup_strv_ char **entries = avm_props_uboot_env_entries (spec->arch);
  uint8_t env[AVM_UBOOT_ENV_SIZE], pubkey[AVM_AVB_PUBKEY_SIZE];
  size_t vbmeta_len = 0;
  int r;

  if ((r = avm_bootconfig_text (spec->boot_properties, &text, err)) < 0)
    return r;
  if ((r = avm_uboot_env_build (entries, env, err)) < 0)
    return r;
  if ((r
       = avm_avb_hash_footer (env, sizeof env, "uboot_env", gpt->parts[0].size, spec->key, spec->salt, &env_part, err))
      < 0)
    return r;
  if ((r = avm_avb_hash_footer ((const uint8_t *) text, strlen (text), "bootconfig", gpt->parts[3].size, spec->key,
                                spec->salt, &bc_part, err))
      < 0)
    return r;
  if ((r = avm_avb_key_blob (spec->key, pubkey, err)) < 0)
    return r;
  const struct avm_avb_chain chains[] = {
    { "uboot_env", 1, pubkey },
    { "bootconfig", 2, pubkey },
  };
  if ((r = avm_avb_make_vbmeta (chains, 2, spec->key, &vbmeta, &vbmeta_len, err)) < 0)
    return r;
  if (vbmeta_len > AVM_AVB_VBMETA_PARTITION)
    return avm_error_fail (err, EOVERFLOW, "properties vbmeta: %zu bytes exceed 65536", vbmeta_len);

  head = malloc (AVM_GPT_HEAD_SIZE);
  tail = malloc (AVM_GPT_TAIL_SIZE);
  if (!head || !tail)
    return avm_error_sys (err, ENOMEM, "properties disk");
  if ((r = avm_gpt_build (gpt, head, tail, err)) < 0)
    return r;
  if ((r = avm_out_write (o, 0, head, AVM_GPT_HEAD_SIZE, err)) < 0
      || (r = avm_out_write (o, gpt->disk_size - AVM_GPT_TAIL_SIZE, tail, AVM_GPT_TAIL_SIZE, err)) < 0
      || (r = avm_out_write (o, gpt->parts[0].offset, env_part, gpt->parts[0].size, err)) < 0
      || (r = avm_out_write (o, gpt->parts[1].offset, vbmeta, vbmeta_len, err)) < 0
      || (r = avm_out_write (o, gpt->parts[3].offset, bc_part, gpt->parts[3].size, err)) < 0)
    return r;
  /* frp and the rest of vbmeta's partition stay holes (zeros).  */
  return 0;
}

int
avm_props_disk_create (const struct avm_props_spec *spec, const char *path, avm_error_t *err)
{
  struct avm_gpt *gpt = malloc (sizeof *gpt);
  struct avm_out *o = NULL;
  int r;
  if (!gpt)
    return avm_error_sys (err, ENOMEM, "%s", path);
  if ((r = avm_props_disk_layout (spec, gpt, err)) < 0 || (r = avm_out_open (path, gpt->disk_size, &o, err)) < 0)
    {
      free (gpt);
      return r;
    }
  r = avm_props_disk_write (spec, o, gpt, err);
  free (gpt);
  if (r < 0)
    {
      avm_out_abort (o);
      return r;
    }
  return avm_out_commit (o, err);
}
