/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `avm inspect --verify`: open the disk with libguestfs so that a real
 * Linux kernel (in the libguestfs appliance) parses the GPT, then compare
 * partition names, offsets and sizes with manifest.json, and check that the
 * AVB-signed partitions read through the kernel verify.
 *
 * libguestfs is loaded with dlopen: it pulls in ~60 shared libraries, and
 * linking it would slow down every avm start for a feature only
 * `inspect --verify` uses.  <guestfs.h> is used for the types only.
 * On machines without KVM set LIBGUESTFS_BACKEND=direct and
 * LIBGUESTFS_BACKEND_SETTINGS=force_tcg.
 */
#include "cvd2img/verify.h"
#include "cvd2img/cvd2img.h"
#include "disk/avb.h"
#include "disk/inspect.h"
#include "disk/progress.h"
#include "profile/profile.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <guestfs.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>

struct gfs
{
  void *lib;
  guestfs_h *g;
  __typeof__ (guestfs_create) *create;
  __typeof__ (guestfs_add_drive_ro) *add_drive_ro;
  __typeof__ (guestfs_launch) *launch;
  __typeof__ (guestfs_part_list) *part_list;
  __typeof__ (guestfs_part_get_name) *part_get_name;
  __typeof__ (guestfs_part_get_parttype) *part_get_parttype;
  __typeof__ (guestfs_list_devices) *list_devices;
  __typeof__ (guestfs_pread_device) *pread_device;
  __typeof__ (guestfs_free_partition_list) *free_partition_list;
  __typeof__ (guestfs_last_error) *last_error;
  __typeof__ (guestfs_shutdown) *shutdown;
  __typeof__ (guestfs_close) *close;
  __typeof__ (guestfs_set_error_handler) *set_error_handler;
};

static int
gfs_load (struct gfs *f, avm_error_t *err)
{
  f->lib = dlopen ("libguestfs.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!f->lib)
    return avm_error_fail (err, ENOENT, "inspect --verify needs libguestfs (Debian: apt install libguestfs0): %s",
                           dlerror ());
#define SYM(field, name)                                                                                               \
  if (!(f->field = dlsym (f->lib, name)))                                                                              \
    return avm_error_fail (err, ENOSYS, "libguestfs lacks %s", name);
  SYM (create, "guestfs_create");
  SYM (add_drive_ro, "guestfs_add_drive_ro");
  SYM (launch, "guestfs_launch");
  SYM (part_list, "guestfs_part_list");
  SYM (part_get_name, "guestfs_part_get_name");
  SYM (part_get_parttype, "guestfs_part_get_parttype");
  SYM (list_devices, "guestfs_list_devices");
  SYM (pread_device, "guestfs_pread_device");
  SYM (free_partition_list, "guestfs_free_partition_list");
  SYM (last_error, "guestfs_last_error");
  SYM (shutdown, "guestfs_shutdown");
  SYM (close, "guestfs_close");
  SYM (set_error_handler, "guestfs_set_error_handler");
#undef SYM
  return 0;
}

static void
gfs_unload (struct gfs *f)
{
  if (f->g)
    {
      f->shutdown (f->g);
      f->close (f->g);
    }
  /* f->lib stays loaded: its dependencies allocate in their constructors and
     unloading them would only turn that memory into leaks.  */
}

static void __attribute__ ((format (printf, 2, 3))) problem (json_t *problems, const char *fmt, ...)
{
  va_list ap;
  char *s = NULL;
  va_start (ap, fmt);
  if (vasprintf (&s, fmt, ap) < 0)
    s = NULL;
  va_end (ap);
  json_array_append_new (problems, json_string (s ? s : "?"));
  free (s);
}

/* The manifest section describing DISK (matched by file name).  */
static json_t *
manifest_section (json_t *manifest, const char *disk)
{
  _cleanup_free_ char *copy = strdup (disk);
  const char *base = basename (copy);
  static const char *const keys[] = { "system", "properties", "properties_virgl" };
  for (size_t i = 0; i < 3; i++)
    {
      json_t *s = json_object_get (manifest, keys[i]);
      const char *f = json_string_value (json_object_get (s, "file"));
      if (!f)
        continue;
      _cleanup_free_ char *fc = strdup (f);
      if (streq (basename (fc), base))
        return s;
    }
  return NULL;
}

int
avm_inspect_verify (const char *path, const char *manifest_path, bool manifest_named, struct avm_status *status,
                    json_t **out, avm_error_t *err)
{
  struct gfs f = { 0 };
  _cleanup_json_ json_t *manifest = NULL;
  _cleanup_close_ int fd = -1;
  json_t *problems = json_array ();
  int r;

  /* The disk first: a FIFO or a character device is refused here, before
     libguestfs would wait on it.  */
  struct stat st;
  if ((r = avm_inspect_open (path, &fd, &st, err)) < 0)
    goto fail;
  /* A manifest that is not there is bad input as well: the one named by
     --manifest, or the default next to the disk (then say how to name
     another).  */
  if ((r = avm_json_load_file (manifest_path, AVM_MANIFEST_MAX_SIZE, "a manifest", &manifest, err)) < 0)
    {
      int e = -r;
      if (!manifest_named && (e == ENOENT || e == ENOTDIR))
        {
          avm_error_input (err,
                           "%s: no manifest next to it (%s: %s): --verify compares the disk with the "
                           "manifest.json avm cvd2img wrote beside it; name one with --manifest FILE",
                           path, manifest_path, strerror (e));
          if (*err)
            (*err)->code = e; /* the errno stays the one that happened */
        }
      r = avm_error_input_if_missing (err, -e);
      goto fail;
    }
  json_t *sec = manifest_section (manifest, path);
  if (!sec)
    {
      r = avm_error_input (err, "%s: %s does not describe %s", manifest_path, manifest_path, path);
      goto fail;
    }
  /* The appliance boots a Linux kernel: seconds with KVM, about a minute
     without.  */
  avm_status_step (status, "%s: starting libguestfs's appliance (a small Linux VM)", path);
  if ((r = gfs_load (&f, err)) < 0)
    goto fail;
  if (!(f.g = f.create ()))
    {
      r = avm_error_fail (err, EIO, "libguestfs: cannot create a handle");
      goto fail;
    }
  /* Its errors are ours to report (last_error), once, after the status
     line is erased: libguestfs would print each to stderr as well.  */
  f.set_error_handler (f.g, NULL, NULL);
  if (f.add_drive_ro (f.g, path) < 0 || f.launch (f.g) < 0)
    {
      /* Its first line: the rest tells how to debug libguestfs.  */
      const char *e = f.last_error (f.g) ?: "launch failed";
      r = avm_error_fail (err, EIO,
                          "libguestfs: %.*s (without KVM set LIBGUESTFS_BACKEND=direct "
                          "LIBGUESTFS_BACKEND_SETTINGS=force_tcg; LIBGUESTFS_DEBUG=1 tells more)",
                          (int) strcspn (e, "\n"), e);
      goto fail;
    }
  avm_status_step (status, "%s: reading the partition table through the appliance's kernel", path);
  char **devs = f.list_devices (f.g);
  const char *dev = devs && devs[0] ? devs[0] : "/dev/sda";
  char *ptype = f.part_get_parttype (f.g, dev);
  if (!ptype || !streq (ptype, "gpt"))
    problem (problems, "the kernel sees a %s partition table, not gpt", ptype ? ptype : "missing");
  free (ptype);
  struct guestfs_partition_list *pl = f.part_list (f.g, dev);
  if (!pl)
    {
      r = avm_error_fail (err, EIO, "libguestfs: %s", f.last_error (f.g) ?: "part-list failed");
      for (size_t i = 0; devs && devs[i]; i++)
        free (devs[i]);
      free (devs);
      goto fail;
    }
  json_t *want = json_object_get (sec, "partitions");
  if (pl->len != json_array_size (want))
    problem (problems, "the kernel sees %u partitions, the manifest lists %zu", pl->len, json_array_size (want));
  for (uint32_t i = 0; i < pl->len && i < json_array_size (want); i++)
    {
      json_t *w = json_array_get (want, i);
      const char *wname = json_string_value (json_object_get (w, "name"));
      uint64_t woff = json_integer_value (json_object_get (w, "offset"));
      uint64_t wsize = json_integer_value (json_object_get (w, "size"));
      uint64_t padded = (wsize + 4095) & ~(uint64_t) 4095;
      char *name = f.part_get_name (f.g, dev, pl->val[i].part_num);
      if (!name || !streq (name, wname))
        problem (problems, "partition %d: the kernel sees name \"%s\", the manifest says \"%s\"", pl->val[i].part_num,
                 name ? name : "?", wname);
      if ((uint64_t) pl->val[i].part_start != woff)
        problem (problems, "partition %s: starts at %lld, the manifest says %llu", wname,
                 (long long) pl->val[i].part_start, (unsigned long long) woff);
      if ((uint64_t) pl->val[i].part_size != padded)
        problem (problems, "partition %s: %lld bytes, the manifest says %llu (padded to 4 KiB: %llu)", wname,
                 (long long) pl->val[i].part_size, (unsigned long long) wsize, (unsigned long long) padded);
      free (name);

      /* Signed partitions: the bytes the kernel reads verify, and equal the file's.  */
      bool footer = streq (wname, "uboot_env") || streq (wname, "bootconfig");
      bool vbmeta = streq (wname, "vbmeta");
      if (!footer && !vbmeta)
        continue;
      char partdev[64];
      snprintf (partdev, sizeof partdev, "%s%d", dev, pl->val[i].part_num);
      avm_status_step (status, "%s: partition %u of %u (%s) through the kernel", path, i + 1, pl->len, wname);
      size_t got = 0;
      char *kbytes = f.pread_device (f.g, partdev, (int) padded, 0, &got);
      _cleanup_free_ uint8_t *fbytes = malloc (padded);
      if (!kbytes || got != padded || !fbytes || fd < 0 || pread (fd, fbytes, padded, woff) != (ssize_t) padded)
        problem (problems, "partition %s: cannot read %llu bytes through the kernel", wname,
                 (unsigned long long) padded);
      else
        {
          struct avm_avb_info info = { 0 };
          avm_error_t verr = NULL;
          int vr = footer ? avm_avb_verify_footer ((uint8_t *) kbytes, got, wname, &info, &verr)
                          : avm_avb_verify_vbmeta ((uint8_t *) kbytes, got, wname, &info, &verr);
          if (memcmp (kbytes, fbytes, padded) != 0)
            problem (problems, "partition %s: the kernel reads different bytes than the file holds", wname);
          if (vr < 0)
            problem (problems, "partition %s: %s", wname, verr->msg);
          else if (!info.signature_ok || !info.hash_ok || (footer && !info.digest_ok))
            problem (problems, "partition %s: AVB signature or digest does not verify", wname);
          avm_error_free (verr);
        }
      free (kbytes);
    }
  f.free_partition_list (pl);
  for (size_t i = 0; devs && devs[i]; i++)
    free (devs[i]);
  free (devs);
  gfs_unload (&f);
  *out = problems;
  return 0;

fail:
  gfs_unload (&f);
  json_decref (problems);
  return r;
}
