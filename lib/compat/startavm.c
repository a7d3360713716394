/* SPDX-License-Identifier: Apache-2.0 */
#include "compat/startavm.h"
#include "plan/plan.h"
#include "profile/profile.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

int
avm_startavm_parse_mode (const char *arg, bool *phone, avm_error_t *err)
{
  if (strcasecmp (arg, "PHONE") == 0)
    *phone = true;
  else if (strcasecmp (arg, "AUTO") == 0)
    *phone = false;
  else
    return avm_error_input (err, "-m/--mode %s: expected PHONE or AUTO", arg);
  return 0;
}

static bool
is_dir (const char *p)
{
  struct stat st;
  return stat (p, &st) == 0 && S_ISDIR (st.st_mode);
}

static bool
is_file (const char *p)
{
  struct stat st;
  return stat (p, &st) == 0 && S_ISREG (st.st_mode);
}

static bool
is_program (const char *p)
{
  return is_file (p) && access (p, X_OK) == 0;
}

/* The guest architecture: the host's, unless -q DIR holds only the other
   QEMU.  QEMU is set to the binary found.  */
static int
pick_arch (const struct avm_startavm *o, struct avm_startavm_start *out, avm_error_t *err)
{
  static const char *const arches[] = { "x86_64", "aarch64" };
  const char *host = avm_host_arch ();
  if (!o->qemu_dir)
    {
      if (!streq (host, "x86_64") && !streq (host, "aarch64"))
        return avm_error_input (err,
                                "no aaos profile for this host's architecture %s (x86_64 or aarch64; use -q DIR "
                                "with a qemu-system-x86_64 or qemu-system-aarch64)",
                                host);
      out->arch = strdup (host);
      return out->arch ? 0 : avm_error_sys (err, ENOMEM, "start-avm");
    }
  if (!is_dir (o->qemu_dir))
    return avm_error_input (err, "-q/--qemu %s: not a directory (give the QEMU build directory)", o->qemu_dir);
  _cleanup_free_ char *dir = realpath (o->qemu_dir, NULL);
  if (!dir)
    return avm_error_sys (err, errno, "-q/--qemu %s", o->qemu_dir);
  /* The host's architecture first, then the other one.  */
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < ARRAY_SIZE (arches); i++)
      {
        if ((pass == 0) != streq (arches[i], host))
          continue;
        _cleanup_free_ char *name = NULL, *bin = NULL;
        if (asprintf (&name, "qemu-system-%s", arches[i]) < 0 || !(bin = avm_path_join (dir, name)))
          return avm_error_sys (err, ENOMEM, "start-avm");
        if (!is_program (bin))
          continue;
        out->arch = strdup (arches[i]);
        if (!out->arch || avm_argv_pushf (&out->sets, "qemu.binary=%s", bin) < 0)
          return avm_error_sys (err, ENOMEM, "start-avm");
        return 0;
      }
  return avm_error_input (err, "-q/--qemu %s: no executable qemu-system-x86_64 or qemu-system-aarch64 in it",
                          o->qemu_dir);
}

/* "${images}/REST" -> REST, else NULL.  */
static const char *
under_images (const char *v)
{
  static const char prefix[] = "${images}/";
  return v && strncmp (v, prefix, sizeof prefix - 1) == 0 ? v + sizeof prefix - 1 : NULL;
}

/* PATH=DIR/FILE for the first FILE that exists, else for the first.  */
static int
set_first (struct avm_startavm_start *out, const char *path, const char *dir, const char *const files[])
{
  const char *pick = files[0];
  for (size_t i = 0; files[i]; i++)
    {
      _cleanup_free_ char *f = avm_path_join (dir, files[i]);
      if (!f)
        return -ENOMEM;
      if (is_file (f))
        {
          pick = files[i];
          break;
        }
    }
  return avm_argv_pushf (&out->sets, "%s=%s/%s", path, dir, pick);
}

/* The start-avm layout: cvd2img's outputs in CVD/qemu, the Cuttlefish host
   package (bin/, etc/) and its config in CVD itself, which stays ${images}
   for the helpers.  */
static int
map_images (const struct avm_startavm *o, struct avm_startavm_start *out, avm_error_t *err)
{
  struct avm_profile_request preq = { .name = out->profile, .options = out->options.v };
  _cleanup_profile_ struct avm_profile *p = NULL;
  _cleanup_free_ char *qdir = avm_path_join (out->images, "qemu");
  int r;
  if (!qdir)
    return avm_error_sys (err, ENOMEM, "start-avm");
  if (!is_dir (qdir))
    return 0; /* images straight in CVD_DIR (avm cvd2img -o CVD_DIR) */
  if ((r = avm_profile_load (&preq, &p, err)) < 0)
    return r;

  json_t *disks = json_object_get (p->json, "disks"), *d;
  size_t i;
  json_array_foreach (disks, i, d)
    {
      const char *rest = under_images (json_string_value (json_object_get (d, "path")));
      if (rest && avm_argv_pushf (&out->sets, "disks[%zu].path=%s/%s", i, qdir, rest) < 0)
        return avm_error_sys (err, ENOMEM, "start-avm");
      if (!json_is_true (json_object_get (d, "boot_properties")))
        continue;
      /* The key avm cvd2img writes next to the images, else the host
         package's test key the images were signed with.  */
      const char *key = under_images (json_string_value (json_object_get (d, "key")));
      if (key && streq (key, "avb_key.pem"))
        {
          _cleanup_free_ char *path = NULL, *own = NULL;
          if (asprintf (&path, "disks[%zu].key", i) < 0 || !(own = avm_path_join (qdir, "avb_key.pem")))
            return avm_error_sys (err, ENOMEM, "start-avm");
          if (is_file (own))
            r = avm_argv_pushf (&out->sets, "%s=%s", path, own);
          else
            r = set_first (out, path, out->images,
                           (const char *const[]) { "qemu/avb_key.pem", "etc/cvd_avb_testkey_rsa4096.pem",
                                                   "etc/cvd_avb_testkey.pem", NULL });
          if (r < 0)
            return avm_error_sys (err, ENOMEM, "start-avm");
        }
    }

  const char *bios = under_images (json_string_value (avm_json_path (p->json, "firmware.bios")));
  if (bios && streq (bios, "bootloader"))
    {
      _cleanup_free_ char *cf = NULL;
      if (asprintf (&cf, "etc/bootloader_%s/bootloader.qemu", out->arch) < 0
          || set_first (out, "firmware.bios", out->images, (const char *const[]) { "qemu/bootloader", cf, NULL }) < 0)
        return avm_error_sys (err, ENOMEM, "start-avm");
    }
  else if (bios && avm_argv_pushf (&out->sets, "firmware.bios=%s/%s", qdir, bios) < 0)
    return avm_error_sys (err, ENOMEM, "start-avm");
  return 0;
}

int
avm_startavm_translate (const struct avm_startavm *o, struct avm_startavm_start *out, avm_error_t *err)
{
  int r;
  *out = (struct avm_startavm_start) { 0 };
  if (!o->cvd_dir || !*o->cvd_dir)
    return avm_error_input (err, "missing the Cuttlefish directory (ANDROID_BASE_DIR)");
  if (!is_dir (o->cvd_dir))
    return avm_error_input (err, "%s: %s", o->cvd_dir,
                            access (o->cvd_dir, F_OK) == 0 ? "not a directory (give the Cuttlefish directory)"
                                                           : "no such directory (give the Cuttlefish directory)");
  if (!(out->images = realpath (o->cvd_dir, NULL)))
    return avm_error_sys (err, errno, "%s", o->cvd_dir);

  if ((r = pick_arch (o, out, err)) < 0)
    return r;
  out->profile = strdup (streq (out->arch, "aarch64") ? "aaos-arm64" : "aaos-x86_64");
  if (!out->profile)
    return avm_error_sys (err, ENOMEM, "start-avm");

  const struct
  {
    bool on;
    const char *option;
  } flags[] = {
    { o->tap_network, "network=tap" }, { o->vhost_user_vsock, "vsock=vhost-user" },
    { o->virgl, "gpu=virgl" },         { o->multitouch, "touch=multitouch" },
    { o->video, "video=on" },          { o->rotary, "rotary=on" },
    { o->phone, "mode=phone" },
  };
  for (size_t i = 0; i < ARRAY_SIZE (flags); i++)
    if (flags[i].on && avm_argv_push (&out->options, flags[i].option) < 0)
      return avm_error_sys (err, ENOMEM, "start-avm");

  /* start_avm.sh runs the vhost-user-gpu of the QEMU build it was given.  */
  if (o->virgl && o->qemu_dir)
    {
      _cleanup_free_ char *dir = realpath (o->qemu_dir, NULL), *gpu = NULL;
      if (dir && asprintf (&gpu, "%s/contrib/vhost-user-gpu/vhost-user-gpu", dir) < 0)
        return avm_error_sys (err, ENOMEM, "start-avm");
      if (gpu && is_program (gpu) && avm_argv_pushf (&out->sets, "services.vhost-user-gpu.exec[0]=%s", gpu) < 0)
        return avm_error_sys (err, ENOMEM, "start-avm");
    }
  return map_images (o, out, err);
}

void
avm_startavm_start_clear (struct avm_startavm_start *s)
{
  free (s->profile);
  free (s->arch);
  free (s->images);
  avm_argv_clear (&s->options);
  avm_argv_clear (&s->sets);
  *s = (struct avm_startavm_start) { 0 };
}
