/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Android boot properties (the bootconfig partition of the properties
 * disk).  The profile's boot_properties come first, with variables such as
 * ${cid} and ${port:NAME} expanded; then avm adds the keys that must agree
 * with the QEMU command line and may not be set by hand:
 *   androidboot.boot_devices  PCI slots of the disks (same table as -device addr=)
 *   androidboot.ddr_size      machine.memory x 1.2, as Cuttlefish computes it
 *   androidboot.lcd_density   display.outputs[0].dpi
 *   GPU keys                  from display.gpu (guest rendering vs virgl)
 * Only profiles that have a boot_properties object get them.
 */
#include "plan/internal.h"
#include "util/cleanup.h"

#include <string.h>

/* GPU mode keys, as written by slp/cvd2img for the two start-avm variants.  */
static const char *const gpu_guest[][2] = {
  { "androidboot.hardware.egl", "angle" },
};
static const char *const gpu_virgl[][2] = {
  { "androidboot.hardware.egl", "mesa" },
  { "androidboot.hardware.hwcomposer.mode", "client" },
};

static int
derived (struct plan_ctx *c, const char *key, const char *value)
{
  const char *name;
  json_t *def;
  if (json_object_get (avm_json_path (c->p, "boot_properties"), key))
    return avm_error_input (c->err,
                            "%s: boot_properties[\"%s\"]: avm derives this key from the profile (it must match the "
                            "QEMU "
                            "command line); remove it",
                            c->file, key);
  json_object_foreach (avm_json_path (c->p, "services"), name, def)
    if (json_object_get (json_object_get (def, "boot_properties"), key))
      return avm_error_input (c->err,
                              "%s: services.%s.boot_properties[\"%s\"]: avm derives this key from the profile (it "
                              "must match the QEMU command line); remove it",
                              c->file, name, key);
  json_object_set_new (c->bootprops, key, json_string (value));
  return 0;
}

static int
boot_devices (struct plan_ctx *c, char **out)
{
  if (streq (c->arch, "aarch64"))
    {
      /* The virt machine's PCIe host bridge (high ECAM).  */
      *out = strdup ("4010000000.pcie");
      return *out ? 0 : -ENOMEM;
    }
  _cleanup_free_ char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  size_t i, n = 0;
  json_t *d;
  if (!f)
    return avm_error_sys (c->err, ENOMEM, "plan");
  json_array_foreach (avm_json_path (c->p, "disks"), i, d)
    {
      if (!json_is_true (json_object_get (d, "boot_device")))
        continue;
      char key[32];
      snprintf (key, sizeof key, "disks[%zu]", i);
      size_t k;
      json_t *e;
      json_array_foreach (c->pci, k, e)
        if (streq (json_string_value (json_object_get (e, "for")), key))
          {
            unsigned slot = strtoul (json_string_value (json_object_get (e, "slot")), NULL, 16);
            fprintf (f, "%spci0000:00/0000:00:%02x.0", n++ ? "," : "", slot);
          }
    }
  fclose (f);
  if (n == 0)
    return avm_error_input (c->err, "%s: disks: Android needs at least one disk with boot_device true", c->file);
  *out = steal_pointer (&buf);
  return 0;
}

/* Expand PROPS (at PREFIX in the profile) into the plan's properties.  */
static int
add_props (struct plan_ctx *c, json_t *props, const char *prefix)
{
  const char *k;
  json_t *v;
  int r;
  json_object_foreach (props, k, v)
    {
      _cleanup_free_ char *where = NULL, *e = NULL;
      if (asprintf (&where, "%sboot_properties[\"%s\"]", prefix, k) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
      if ((r = plan_expand (c, json_string_value (v), where, &e)) < 0)
        return r;
      if (strchr (e, '\n'))
        return avm_error_input (c->err, "%s: %s: a value cannot contain a newline", c->file, where);
      json_object_set_new (c->bootprops, k, json_string (e));
    }
  return 0;
}

int
plan_boot_properties (struct plan_ctx *c)
{
  json_t *props = avm_json_path (c->p, "boot_properties");
  json_t *defs = avm_json_path (c->p, "services");
  int r;

  if (!props)
    return 0;
  /* Those of the services that run, then the profile's own.  */
  for (size_t i = 0; i < c->nsvcs; i++)
    {
      const char *k = c->svcs[i].s.name;
      json_t *sp = json_object_get (json_object_get (defs, k), "boot_properties");
      _cleanup_free_ char *prefix = NULL;
      if (!sp)
        continue;
      if (asprintf (&prefix, "services.%s.", k) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
      if ((r = add_props (c, sp, prefix)) < 0)
        return r;
    }
  if ((r = add_props (c, props, "")) < 0)
    return r;

  _cleanup_free_ char *devs = NULL;
  if ((r = boot_devices (c, &devs)) < 0 || (r = derived (c, "androidboot.boot_devices", devs)) < 0)
    return r;
  char buf[64];
  /* Android scales its hardware timeouts (ro.hw_timeout_multiplier):
     launch_cvd writes 50 for a guest it must emulate and 3 otherwise
     (assemble_cvd/bootconfig_args.cpp, android14-qpr2 and later); the
     emulation is what makes the guest slow, so avm keys it on TCG.  */
  if ((r = derived (c, "androidboot.hw_timeout_multiplier", streq (c->accel, "tcg") ? "50" : "3")) < 0)
    return r;
  snprintf (buf, sizeof buf, "%lldMB", pint (c, "machine.memory") * 6 / 5);
  if ((r = derived (c, "androidboot.ddr_size", buf)) < 0)
    return r;
  json_t *out0 = json_array_get (avm_json_path (c->p, "display.outputs"), 0);
  if (out0)
    {
      snprintf (buf, sizeof buf, "%lld", (long long) json_integer_value (json_object_get (out0, "dpi")));
      if ((r = derived (c, "androidboot.lcd_density", buf)) < 0)
        return r;
    }
  const char *gpu = pstr (c, "display.gpu");
  if (streq (gpu, "virtio-gpu"))
    {
      for (size_t i = 0; i < ARRAY_SIZE (gpu_guest); i++)
        if ((r = derived (c, gpu_guest[i][0], gpu_guest[i][1])) < 0)
          return r;
    }
  else if (!streq (gpu, "none"))
    {
      for (size_t i = 0; i < ARRAY_SIZE (gpu_virgl); i++)
        if ((r = derived (c, gpu_virgl[i][0], gpu_virgl[i][1])) < 0)
          return r;
    }
  return 0;
}
