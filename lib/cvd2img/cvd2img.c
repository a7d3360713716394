/* SPDX-License-Identifier: Apache-2.0 */
#include "cvd2img/cvd2img.h"
#include "cvd2img/internal.h"
#include "cuttlefish/release.h"
#include "cvd2img/imgset.h"
#include "imageset/setcheck.h"
#include "disk/avb.h"
#include "disk/gpt.h"
#include "disk/output.h"
#include "disk/progress.h"
#include "disk/props.h"
#include "plan/plan.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strbuf.h"
#include "util/strfmt.h"
#include "util/strv.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MIB (1024ULL * 1024)

const struct avm_cvd_part avm_cvd_parts[] = {
  { NULL, "misc", 1 * MIB, false, false },
  { "boot.img", "boot_a", 0, false, false },
  { "boot.img", "boot_b", 0, false, false },
  { "init_boot.img", "init_boot_a", 0, true, false },
  { "init_boot.img", "init_boot_b", 0, true, false },
  { "vendor_boot.img", "vendor_boot_a", 0, false, false },
  { "vendor_boot.img", "vendor_boot_b", 0, false, false },
  { "vbmeta.img", "vbmeta_a", 0, false, true },
  { "vbmeta.img", "vbmeta_b", 0, false, true },
  { "vbmeta_system.img", "vbmeta_system_a", 0, false, true },
  { "vbmeta_system.img", "vbmeta_system_b", 0, false, true },
  { "vbmeta_vendor_dlkm.img", "vbmeta_vendor_dlkm_a", 0, true, true },
  { "vbmeta_vendor_dlkm.img", "vbmeta_vendor_dlkm_b", 0, true, true },
  { "vbmeta_system_dlkm.img", "vbmeta_system_dlkm_a", 0, true, true },
  { "vbmeta_system_dlkm.img", "vbmeta_system_dlkm_b", 0, true, true },
  { "super.img", "super", 0, false, false },
  { "userdata.img", "userdata", 0, false, false },
  { NULL, "metadata", 64 * MIB, false, false },
  /* Android 15 QPR2 and later auto builds make hibernation_swap.img (4 GiB
     of zeros, device/google/cuttlefish shared/BoardConfig.mk) and mount it
     as /dev/block/vda19 (shared/auto/hibernation_swap/fstab.hibernationswap);
     assemble_cvd adds it after metadata when the set has it
     (assemble_cvd/disk_flags.cc).  Zeros stay holes in the output.  */
  { "hibernation_swap.img", "hibernation", 0, true, false },
};
const size_t avm_cvd_nparts = ARRAY_SIZE (avm_cvd_parts);

/* The outputs, renamed into place in this order once all are written.  */
enum
{
  OUT_SYSTEM,
  OUT_PROPS,
  OUT_PROPS_VIRGL,
  OUT_BOOTLOADER,
  OUT_KEY,
  OUT_INFO,
  OUT_HOST,
  OUT_MANIFEST,
  N_OUTPUTS
};

/* The name of the host package tree's temporary (".host-package.tmp.XXXXXX"). */
#define HOST_TREE "host-package"

struct outputs
{
  struct avm_out *o[N_OUTPUTS];
};

static void
abort_all (struct outputs *outs)
{
  for (size_t i = 0; i < ARRAY_SIZE (outs->o); i++)
    if (outs->o[i])
      avm_out_abort (outs->o[i]);
  memset (outs, 0, sizeof *outs);
}

static const char *
host_arch (void)
{
  return streq (avm_host_arch (), "aarch64") ? "aarch64" : "x86_64";
}

/* avm_profile_detect_fn over the image set being converted (DATA).  */
static int
detect_from_set (void *data, const char *detector, const char *images, char **choice, json_t **info, avm_error_t *err)
{
  struct avm_cf_facts f;
  (void) images;
  *choice = NULL;
  *info = NULL;
  if (!streq (detector, "cuttlefish-release"))
    return avm_error_input (err, "unknown detector \"%s\"", detector);
  int r = avm_imgset_cf_facts (data, &f, err);
  if (r >= 0)
    r = avm_cf_release_choice (&f, choice, info, err);
  avm_cf_facts_clear (&f);
  return r;
}

static int
boot_properties (struct avm_profile *profile, json_t **props, avm_error_t *err)
{
  _cleanup_plan_ struct avm_plan *plan = NULL;
  struct avm_plan_request preq = { .profile = profile, .instance = 1, .layout_only = true, .dry_run = true };
  int r = avm_plan_build (&preq, &plan, err);
  if (r < 0)
    return r;
  if (!plan->has_boot_props)
    return avm_error_input (err, "%s: profile has no boot_properties (not an Android profile)", profile->path);
  if (!(*props = avm_plan_boot_props_json (plan)))
    return avm_error_sys (err, ENOMEM, "boot properties");
  return 0;
}

static json_t *
parts_json (const struct avm_gpt *g)
{
  json_t *a = json_array ();
  for (size_t i = 0; i < g->n; i++)
    json_array_append_new (a, json_pack ("{s:s, s:I, s:I, s:I, s:I}", "name", g->parts[i].name, "offset",
                                         (json_int_t) g->parts[i].offset, "size", (json_int_t) g->parts[i].size,
                                         "first_lba", (json_int_t) g->parts[i].first_lba, "last_lba",
                                         (json_int_t) g->parts[i].last_lba));
  return a;
}

static char *
out_path (const struct avm_cvd2img_request *req, const char *given, const char *name)
{
  if (given)
    return strdup (given);
  return avm_path_join (req->out_dir ? req->out_dir : ".", name);
}

/* ROLE: "properties" or "properties_virgl"; SEED: the system disk's
   --seed key, or NULL.  */
static int
write_props (struct avm_profile *profile, const char *arch, struct avm_avb_key *key, const char *role,
             const uint8_t *seed, const char *path, struct avm_out **o, json_t **info, avm_error_t *err)
{
  _cleanup_json_ json_t *props = NULL;
  struct avm_gpt *gpt = malloc (sizeof *gpt);
  uint8_t pkey[32], salt[32];
  int r;
  if (!gpt)
    return avm_error_sys (err, ENOMEM, "%s", path);
  struct avm_props_spec spec = { .arch = arch, .key = key };
  if ((r = boot_properties (profile, &props, err)) < 0)
    goto out;
  spec.boot_properties = props;
  if (seed)
    {
      if ((r = avm_cvd2img_seed_props_key (seed, role, &spec, pkey, err)) < 0
          || (r = avm_cvd2img_derive (pkey, "AVB salt", 8, salt, err)) < 0)
        goto out;
      spec.salt = salt;
    }
  if ((r = avm_props_disk_layout (&spec, gpt, err)) < 0 || (seed && (r = avm_cvd2img_seed_gpt (gpt, pkey, err)) < 0)
      || (r = avm_out_open (path, gpt->disk_size, o, err)) < 0 || (r = avm_props_disk_write (&spec, *o, gpt, err)) < 0)
    goto out;
  char guid[40];
  avm_guid_format (gpt->disk_guid, guid);
  *info = json_pack ("{s:s, s:I, s:s, s:s, s:O, s:O, s:o}", "file", path, "size", (json_int_t) gpt->disk_size,
                     "disk_guid", guid, "profile", profile->name, "options", profile->options, "boot_properties", props,
                     "partitions", parts_json (gpt));
out:
  free (gpt);
  return r;
}

static bool
same_file (const char *a, const char *b)
{
  struct stat x, y;
  return stat (a, &x) == 0 && stat (b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* A disk that cannot be made as large as the images make it (R, ERR:
   its partition does not fit in a GPT disk, or the output file system
   cannot hold a file of its size).  A sparse image's header says the size:
   when the image's chunks do not cover it, the image is damaged, and the
   error is that (bad input naming the image and, in a zip, the entry),
   not the output's.  IMAGE: the image of the partition that did not fit;
   NULL: any of them.  Otherwise ERR stays and names the image (IMAGE, or
   the largest).  */
static int
blame_size (struct avm_imgset *set, const char *image, int r, avm_error_t *err)
{
  const char *largest = NULL;
  uint64_t lsize = 0;
  for (size_t i = 0; i < avm_cvd_nparts; i++)
    {
      const char *name = avm_cvd_parts[i].image;
      const struct avm_img *img = name ? avm_imgset_get (set, name) : NULL;
      /* each image once (boot.img is boot_a and boot_b) */
      if (!img || !img->present || (image && !streq (image, name))
          || (i > 0 && avm_cvd_parts[i - 1].image && streq (avm_cvd_parts[i - 1].image, name)))
        continue;
      if (img->sparse)
        {
          avm_error_t cerr = NULL;
          int c = avm_imgset_check_size (set, name, &cerr);
          if (c < 0)
            {
              avm_error_free (*err);
              *err = cerr;
              return c;
            }
        }
      if (!largest || img->size > lsize)
        {
          largest = name;
          lsize = img->size;
        }
    }
  if (!largest || !*err)
    return r;
  char size[32];
  _cleanup_free_ char *label = avm_imgset_image_label (set, largest);
  char *full = NULL;
  avm_format_bytes (lsize, size, sizeof size);
  if (!label)
    return r;
  if (image)
    avm_error_prefix (err, "%s (%s)", label, size);
  else if (asprintf (&full, "%s (the largest image, %s, is %s)", (*err)->msg, label, size) >= 0)
    {
      free ((*err)->msg);
      (*err)->msg = full;
    }
  return r;
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

int
avm_cvd2img (const struct avm_cvd2img_request *req, struct avm_cvd2img_result *res, avm_error_t *err)
{
  struct avm_argv wanted = { 0 }, virgl_opts = { 0 };
  struct avm_profile *profile = NULL, *profile_virgl = NULL;
  struct avm_imgset *set = NULL;
  struct avm_avb_key *key = NULL;
  struct avm_gpt *gpt = calloc (1, sizeof *gpt);
  struct outputs outs = { 0 };
  struct avm_progress prog;
  _cleanup_json_ json_t *manifest = json_object ();
  _cleanup_free_ char *sys_path = NULL, *props_path = NULL, *virgl_path = NULL, *boot_path = NULL, *man_path = NULL;
  _cleanup_free_ char *key_path = NULL, *info_path = NULL;
  _cleanup_free_ uint8_t *key_pem = NULL;
  _cleanup_close_ int lockfd = -1;
  struct avm_argv retire = { 0 }, reserved = { 0 };
  _cleanup_strv_ char **entries = NULL;
  size_t key_pem_len = 0;
  _cleanup_free_ uint8_t *head = malloc (AVM_GPT_HEAD_SIZE), *tail = malloc (AVM_GPT_TAIL_SIZE);
  _cleanup_free_ uint8_t *bootloader = NULL;
  _cleanup_free_ char *manifest_text = NULL;
  /* The remedy of a failed commit names the command as the user typed it.  */
  _cleanup_free_ char *remedy = avm_strdupf ("run %s again", req->tool ? req->tool : "avm cvd2img");
  size_t bootloader_len = 0;
  uint8_t seed[32] = { 0 }; /* --seed: the system disk's key */
  int r;

  if (!gpt || !head || !tail || !remedy)
    {
      r = avm_error_sys (err, ENOMEM, "cvd2img");
      goto out;
    }
  for (size_t i = 0; i < avm_cvd_nparts; i++)
    if (avm_cvd_parts[i].image && !avm_strv_contains (wanted.v, avm_cvd_parts[i].image))
      avm_argv_push (&wanted, avm_cvd_parts[i].image);
  if ((r = avm_imgset_open (req->dir, req->zip, req->hostpkg, wanted.v, &set, err)) < 0)
    goto out;

  /* Required images first, so a missing one is reported before any work.  */
  for (size_t i = 0; i < avm_cvd_nparts; i++)
    {
      const struct avm_cvd_part *p = &avm_cvd_parts[i];
      const struct avm_img *img = p->image ? avm_imgset_get (set, p->image) : NULL;
      if (p->image && !p->optional && (!img || !img->present))
        {
          r = avm_error_input (err, "%s: %s is missing (needed for partition %s)", avm_imgset_label (set), p->image,
                               p->name);
          goto out;
        }
    }

  /* The host package's tree goes into the output directory, beside the
     disks, so that the directory runs as it is: `avm start --images OUT`
     finds the host tools in ${images}/bin (paths.helpers), their libraries
     in lib64/, the data they read in etc/ and usr/ (vhal_proxy_server's
     ${images}/etc/automotive/vhalconfig, ANDROID_HOST_OUT=${images}).
     Also from a directory input: the output directory is always
     self-contained, what a user expects of "the output" (it can be moved,
     copied to another machine or into a container volume, and the input
     deleted), and it never depends on the input staying as it was.  The
     copy costs little where it matters: copy_file_range shares the data
     on file systems that can (btrfs, XFS); hard links were not taken, as a
     later change of either copy would change both.  When the output
     directory is the input directory, the host package is already in
     place: nothing is copied.  The slp/cvd2img personality keeps that
     tool's outputs (no tree): it is run in the image directory, which it
     writes to by default.  */
  const char *odir = req->out_dir ? req->out_dir : ".";
  bool want_tree = !req->no_host_tree;
  bool same_dir = req->dir && same_file (req->dir, odir);
  bool write_tree = want_tree && !same_dir;
  /* The output directory exists before the input is walked, so that the
     walk leaves it out when it is inside the input.  The walk comes before
     the host package files are read (the key, the bootloader): a link in
     the input's host package that leads out of it is refused first.  */
  if (req->out_dir && (r = avm_mkdir_p (req->out_dir, 0755, err)) < 0)
    goto out;
  if (want_tree && (r = avm_imgset_host_scan (set, odir, err)) < 0)
    goto out;
  if (want_tree)
    {
      entries = avm_strv_copy (avm_imgset_host_entries (set));
      if (!entries)
        {
          r = avm_error_sys (err, ENOMEM, "cvd2img");
          goto out;
        }
      qsort (entries, avm_strv_length (entries), sizeof *entries, cmp_str);
    }

  const char *arch = req->arch ? req->arch : avm_imgset_bootloader_arch (set);
  if (!arch)
    arch = host_arch ();
  json_object_set_new (manifest, "avm_version", json_string (AVM_VERSION));
  json_object_set_new (manifest, "arch", json_string (arch));
  json_object_set_new (manifest, "input",
                       req->dir ? json_pack ("{s:s}", "dir", req->dir)
                                : json_pack ("{s:s, s:s}", "zip", req->zip, "host_package", req->hostpkg));
  if ((r = avm_cvd2img_load_key (req, set, &key, &key_pem, &key_pem_len, manifest, err)) < 0)
    goto out;

  /* Profiles for the boot properties: as asked, and its virgl variant;
     options such as the Android release told by the set itself.  */
  struct avm_profile_request preq = {
    .name = req->profile              ? req->profile
            : streq (arch, "aarch64") ? "aaos-arm64"
                                      : "aaos-x86_64",
    .options = req->options,
    .sets = req->sets,
    .images = avm_imgset_label (set),
    .detect = detect_from_set,
    .detect_data = set,
  };
  if ((r = avm_profile_load (&preq, &profile, err)) < 0)
    goto out;
  /* Recorded for avm start, which no longer sees android-info.txt or the
     boot image once they are inside the disks.  */
  json_t *rel = json_object_get (profile->detected, "release");
  if (rel && json_object_get (profile->options, "release"))
    {
      json_t *m = json_pack ("{s:O, s:O?, s:O?}", "name", json_object_get (profile->options, "release"), "source",
                             json_object_get (rel, "source"), "evidence", json_object_get (rel, "evidence"));
      if (json_object_get (rel, "warning"))
        json_object_set (m, "warning", json_object_get (rel, "warning"));
      json_object_set_new (manifest, "release", m);
    }
  json_t *gpu_choices
      = json_object_get (json_object_get (json_object_get (profile->json, "options"), "gpu"), "choices");
  if (!req->no_virgl && json_object_get (gpu_choices, "virgl"))
    {
      for (size_t i = 0; req->options && req->options[i]; i++)
        avm_argv_push (&virgl_opts, req->options[i]);
      avm_argv_push (&virgl_opts, "gpu=virgl");
      preq.options = virgl_opts.v;
      if ((r = avm_profile_load (&preq, &profile_virgl, err)) < 0)
        goto out;
    }

  /* The system disk layout.  */
  avm_gpt_init (gpt);
  json_t *sources = json_array ();
  uint64_t total = 0;
  for (size_t i = 0; i < avm_cvd_nparts; i++)
    {
      const struct avm_cvd_part *p = &avm_cvd_parts[i];
      const struct avm_img *img = p->image ? avm_imgset_get (set, p->image) : NULL;
      uint64_t size = p->blank_size;
      if (img && !img->present)
        continue; /* optional and absent: no partition */
      if (img && img->size == 0)
        {
          json_decref (sources);
          r = avm_error_input (err, "%s: %s is empty", avm_imgset_label (set), p->image);
          goto out;
        }
      if (img)
        {
          size = img->size;
          if (p->vbmeta && size > AVM_AVB_VBMETA_PARTITION)
            {
              json_decref (sources);
              r = avm_error_input (err, "%s: %s is %llu bytes, larger than a vbmeta partition (65536 bytes)",
                                   avm_imgset_label (set), p->image, (unsigned long long) size);
              goto out;
            }
          if (p->vbmeta)
            size = AVM_AVB_VBMETA_PARTITION; /* zero-extended, as libavb reads 64 KiB */
          total += img->size;
        }
      if ((r = avm_gpt_add (gpt, p->name, size, err)) < 0)
        {
          if (img)
            r = blame_size (set, p->image, r, err);
          json_decref (sources);
          goto out;
        }
      json_array_append_new (sources, img ? json_pack ("{s:s, s:b}", "source", p->image, "sparse", img->sparse)
                                          : json_pack ("{s:s, s:b}", "source", "blank", "sparse", false));
    }
  /* --seed: the GUIDs derived, not drawn; the same inputs and seed give
     the same disk, byte for byte.  */
  if ((r = avm_gpt_finish (gpt, err)) < 0
      || (req->seed
          && ((r = avm_cvd2img_seed_key (req->seed, set, seed, err)) < 0
              || (r = avm_cvd2img_seed_gpt (gpt, seed, err)) < 0))
      || (r = avm_gpt_build (gpt, head, tail, err)) < 0)
    {
      json_decref (sources);
      goto out;
    }
  json_t *sysparts = parts_json (gpt);
  size_t k;
  json_t *e;
  json_array_foreach (sysparts, k, e)
    json_object_update (e, json_array_get (sources, k));
  json_decref (sources);

  sys_path = out_path (req, req->system_path, "system.img");
  props_path = out_path (req, req->props_path, "properties.img");
  virgl_path = out_path (req, req->props_virgl_path, "properties_virgl.img");
  boot_path = out_path (req, NULL, "bootloader");
  man_path = out_path (req, NULL, "manifest.json");
  key_path = out_path (req, NULL, "avb_key.pem");
  info_path = out_path (req, NULL, "android-info.txt");

  /* The names of the set's files (and of the marker): no tree entry may
     have one.  Then the output directory to ourselves, what a killed run
     left there removed, and the tree's effect on the directory planned.  */
  const char *const set_names[] = { avm_path_base (sys_path),
                                    avm_path_base (props_path),
                                    avm_path_base (virgl_path),
                                    "bootloader",
                                    "manifest.json",
                                    "avb_key.pem",
                                    "android-info.txt",
                                    AVM_CVD2IMG_MARKER,
                                    HOST_TREE };
  for (size_t i = 0; i < ARRAY_SIZE (set_names); i++)
    if (!avm_strv_contains (reserved.v, set_names[i]))
      avm_argv_push (&reserved, set_names[i]);
  bool locked = false;
  if ((r = avm_cvd2img_lock_output (odir, &lockfd, &locked, err)) < 0)
    {
      json_decref (sysparts);
      goto out;
    }
  if (locked)
    (void) avm_out_remove_stale (odir, reserved.v, NULL);
  if (write_tree && (r = avm_cvd2img_plan_tree (req, odir, entries, reserved.v, &retire, err)) < 0)
    {
      json_decref (sysparts);
      goto out;
    }
  /* Each output's identity, so that a set whose parts come from different
     conversions is recognised (imageset/setcheck.h): the disks' GUIDs are
     random per conversion (--seed: derived from the seed and the inputs).  */
  char sys_guid[40];
  avm_guid_format (gpt->disk_guid, sys_guid);
  json_object_set_new (manifest, "system",
                       json_pack ("{s:s, s:I, s:s, s:o}", "file", sys_path, "size", (json_int_t) gpt->disk_size,
                                  "disk_guid", sys_guid, "partitions", sysparts));

  /* Write everything to temporaries.  */
  if ((r = avm_out_open (sys_path, gpt->disk_size, &outs.o[OUT_SYSTEM], err)) < 0)
    {
      /* "File too large": the images make it so (issue 15: a damaged
         sparse header's size was blamed on out/system.img).  */
      if (r == -EFBIG || r == -EINVAL)
        r = blame_size (set, NULL, r, err);
      goto out;
    }
  avm_progress_init (&prog, total + (write_tree ? avm_imgset_host_bytes (set) : 0), req->quiet);
  avm_out_set_progress (outs.o[OUT_SYSTEM], avm_progress_add, &prog);
  if ((r = avm_out_write (outs.o[OUT_SYSTEM], 0, head, AVM_GPT_HEAD_SIZE, err)) < 0
      || (r = avm_out_write (outs.o[OUT_SYSTEM], gpt->disk_size - AVM_GPT_TAIL_SIZE, tail, AVM_GPT_TAIL_SIZE, err)) < 0)
    goto out;
  prog.done = 0;
  size_t pi = 0;
  for (size_t i = 0; i < avm_cvd_nparts; i++)
    {
      const struct avm_cvd_part *p = &avm_cvd_parts[i];
      const struct avm_img *img = p->image ? avm_imgset_get (set, p->image) : NULL;
      if (img && !img->present)
        continue;
      const struct avm_gpt_part *gp = &gpt->parts[pi++];
      if (!img)
        continue; /* blank: a hole */
      avm_progress_item (&prog, gp->name);
      uint64_t room = (gp->last_lba - gp->first_lba + 1) * 512;
      if ((r = avm_imgset_copy (set, p->image, outs.o[OUT_SYSTEM], gp->offset, room, err)) < 0)
        goto out;
    }

  json_t *info = NULL;
  if ((r = write_props (profile, arch, key, "properties", req->seed ? seed : NULL, props_path, &outs.o[OUT_PROPS],
                        &info, err))
      < 0)
    goto out;
  json_object_set_new (manifest, "properties", info);
  if (profile_virgl)
    {
      if ((r = write_props (profile_virgl, arch, key, "properties_virgl", req->seed ? seed : NULL, virgl_path,
                            &outs.o[OUT_PROPS_VIRGL], &info, err))
          < 0)
        goto out;
      json_object_set_new (manifest, "properties_virgl", info);
    }

  char blpath[64];
  snprintf (blpath, sizeof blpath, "etc/bootloader_%s/bootloader.qemu", arch);
  r = avm_imgset_host_file (set, blpath, &bootloader, &bootloader_len, err);
  if (r == -ENOENT)
    {
      r = avm_error_input (err, "%s: %s is missing (the U-Boot bootloader QEMU boots with -bios)",
                           avm_imgset_label (set), blpath);
      goto out;
    }
  if (r < 0 || (r = avm_out_open (boot_path, bootloader_len, &outs.o[OUT_BOOTLOADER], err)) < 0
      || (r = avm_out_write (outs.o[OUT_BOOTLOADER], 0, bootloader, bootloader_len, err)) < 0)
    goto out;
  char sha[65];
  avm_avb_sha256_hex (bootloader, bootloader_len, sha);
  json_object_set_new (manifest, "bootloader",
                       json_pack ("{s:s, s:s, s:I, s:s}", "file", boot_path, "source", blpath, "size",
                                  (json_int_t) bootloader_len, "sha256", sha));

  /* The host package's test key, so that `avm start` can rebuild the
     properties disk when the profile's boot properties change (the
     profiles' disks[].key is ${images}/avb_key.pem).  */
  if (key_pem)
    {
      /* A private key is for its owner's eyes only, from the first byte.  */
      if ((r = avm_out_open (key_path, key_pem_len, &outs.o[OUT_KEY], err)) < 0
          || (r = avm_out_set_mode (outs.o[OUT_KEY], 0600, err)) < 0
          || (r = avm_out_write (outs.o[OUT_KEY], 0, key_pem, key_pem_len, err)) < 0)
        goto out;
      json_t *mkey = json_object_get (manifest, "key");
      avm_avb_sha256_hex (key_pem, key_pem_len, sha);
      json_object_set_new (mkey, "file", json_string (key_path));
      json_object_set_new (mkey, "size", json_integer ((json_int_t) key_pem_len));
      json_object_set_new (mkey, "sha256", json_string (sha));
    }

  /* The images' android-info.txt, which tells the release to whoever
     looks at the directory (avm start reads manifest.json first).  */
  const char *info_text = avm_imgset_android_info (set);
  if (info_text && !same_dir)
    {
      size_t ilen = strlen (info_text);
      if ((r = avm_out_open (info_path, ilen, &outs.o[OUT_INFO], err)) < 0
          || (r = avm_out_write (outs.o[OUT_INFO], 0, info_text, ilen, err)) < 0)
        goto out;
      avm_avb_sha256_hex ((const uint8_t *) info_text, ilen, sha);
      json_object_set_new (manifest, "android_info",
                           json_pack ("{s:s, s:I, s:s}", "file", info_path, "size", (json_int_t) ilen, "sha256", sha));
    }

  /* The host package's tree, and what avm start and avm inspect compare
     the directory with: its top-level entries, and the markers that tell
     its release (cuttlefish/release.h), as the conversion saw them.  */
  if (write_tree)
    {
      avm_progress_item (&prog, "host package");
      if ((r = avm_out_open_tree (odir, HOST_TREE, &outs.o[OUT_HOST], err)) < 0
          || (r = avm_imgset_host_write (set, avm_out_tree_fd (outs.o[OUT_HOST]), avm_progress_add, &prog, err)) < 0
          || (r = avm_out_tree_retire (outs.o[OUT_HOST], retire.v, err)) < 0)
        goto out;
    }
  avm_progress_done (&prog);
  if (want_tree)
    {
      struct avm_cf_facts f;
      const char *marks[AVM_CF_HOST_MARKERS];
      if ((r = avm_imgset_cf_facts (set, &f, err)) < 0)
        goto out;
      size_t nm = avm_cf_host_marker_list (&f, marks);
      avm_cf_facts_clear (&f);
      json_t *jm = json_array (), *je = json_array ();
      for (size_t i = 0; i < nm; i++)
        json_array_append_new (jm, json_string (marks[i]));
      for (size_t i = 0; entries[i]; i++)
        json_array_append_new (je, json_string (entries[i]));
      json_object_set_new (manifest, "host_package",
                           json_pack ("{s:s, s:o, s:I, s:I, s:o}", "source", req->hostpkg ? req->hostpkg : req->dir,
                                      "entries", je, "size", (json_int_t) avm_imgset_host_bytes (set), "count",
                                      (json_int_t) avm_imgset_host_count (set), "markers", jm));
    }

  manifest_text = json_dumps (manifest, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  if (!manifest_text)
    {
      r = avm_error_sys (err, ENOMEM, "manifest");
      goto out;
    }
  size_t mlen = strlen (manifest_text);
  if ((r = avm_out_open (man_path, mlen + 1, &outs.o[OUT_MANIFEST], err)) < 0
      || (r = avm_out_write (outs.o[OUT_MANIFEST], 0, manifest_text, mlen, err)) < 0
      || (r = avm_out_write (outs.o[OUT_MANIFEST], mlen, "\n", 1, err)) < 0)
    goto out;

  /* All complete: rename them into place as one set, the manifest last.
     Signals wait until it is done; a conversion that dies half-way all
     the same (SIGKILL, a power cut) leaves the marker behind, which avm
     inspect and avm start refuse (imageset/setcheck.h).  */
  r = avm_out_commit_set (outs.o, ARRAY_SIZE (outs.o), AVM_CVD2IMG_MARKER, remedy, err);
  memset (&outs, 0, sizeof outs); /* freed by avm_out_commit_set */
  if (r < 0)
    goto out;
  if (res)
    {
      res->manifest = json_incref (manifest);
      res->manifest_path = steal_pointer (&man_path);
      res->host_tree = write_tree;
    }

out:
  abort_all (&outs);
  avm_argv_clear (&retire);
  avm_argv_clear (&reserved);
  avm_argv_clear (&wanted);
  avm_argv_clear (&virgl_opts);
  avm_profile_free (profile);
  avm_profile_free (profile_virgl);
  avm_imgset_free (set);
  avm_avb_key_free (key);
  free (gpt);
  return r;
}
