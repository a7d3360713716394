/* SPDX-License-Identifier: Apache-2.0 */
#include "cuttlefish/release.h"
#include "profile/profile.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const avm_cf_releases[] = {
  "android14", "android14-qpr2", "android15", "android15-qpr2", "android16", NULL,
};

int
avm_cf_release_index (const char *release)
{
  for (int i = 0; release && avm_cf_releases[i]; i++)
    if (streq (avm_cf_releases[i], release))
      return i;
  return -1;
}

void
avm_cf_facts_clear (struct avm_cf_facts *f)
{
  free (f->android_info);
  free (f->manifest_release);
  free (f->manifest_evidence);
  *f = (struct avm_cf_facts) { 0 };
}

static uint32_t
le32 (const unsigned char *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* system/tools/mkbootimg include/bootimg/bootimg.h: header versions 0-2
   keep os_version at offset 44, versions 3 and 4 at offset 16 (after
   kernel_size and ramdisk_size); header_version is at 40 in all of them.
   os_version packs A.B.C (7 bits each) above the patch level.  */
int
avm_cf_boot_os_major (const unsigned char *hdr, size_t len)
{
  if (len < 48 || memcmp (hdr, "ANDROID!", 8) != 0)
    return 0;
  uint32_t version = le32 (hdr + 40);
  uint32_t os = version >= 3 ? le32 (hdr + 16) : le32 (hdr + 44);
  return (int) (os >> 25);
}

/* The value of KEY= on a line of TEXT ("" when the line is KEY= alone),
   or NULL.  */
static const char *
info_value (const char *text, const char *key, char *buf, size_t size)
{
  size_t klen = strlen (key);
  for (const char *p = text; p && *p; p = strchr (p, '\n') ? strchr (p, '\n') + 1 : NULL)
    {
      while (*p == ' ' || *p == '\t')
        p++;
      if (strncmp (p, key, klen) == 0 && p[klen] == '=')
        {
          size_t n = strcspn (p + klen + 1, "\r\n");
          snprintf (buf, size, "%.*s", (int) n, p + klen + 1);
          for (size_t e = strlen (buf); e > 0 && (buf[e - 1] == ' ' || buf[e - 1] == '\t'); e--)
            buf[e - 1] = '\0';
          return buf;
        }
    }
  return NULL;
}

/* The host package's markers, newest release first, with the flag of the
   facts each sets and the release it tells (index in avm_cf_releases).  */
static const struct
{
  size_t off;
  int release;
} marks[AVM_CF_HOST_MARKERS] = {
  { offsetof (struct avm_cf_facts, sensors_simulator), 4 }, { offsetof (struct avm_cf_facts, vhalconfig), 3 },
  { offsetof (struct avm_cf_facts, vhal_proxy_server), 2 }, { offsetof (struct avm_cf_facts, vhost_device_vsock), 1 },
  { offsetof (struct avm_cf_facts, secure_env), 0 },
};
const char *const avm_cf_host_markers[AVM_CF_HOST_MARKERS] = {
  "bin/sensors_simulator", "etc/automotive/vhalconfig/", "bin/vhal_proxy_server", "bin/vhost_device_vsock",
  "bin/secure_env",
};

static bool
mark_of (const struct avm_cf_facts *f, size_t i)
{
  return *(const bool *) ((const char *) f + marks[i].off);
}

size_t
avm_cf_host_marker_list (const struct avm_cf_facts *f, const char *out[AVM_CF_HOST_MARKERS])
{
  size_t n = 0;
  for (size_t i = 0; i < AVM_CF_HOST_MARKERS; i++)
    if (mark_of (f, i))
      out[n++] = avm_cf_host_markers[i];
  return n;
}

/* The release the host package alone says, or -1.  */
static int
hostpkg_release (const struct avm_cf_facts *f, const char **why)
{
  if (!f->hostpkg)
    return -1;
  for (size_t i = 0; i < ARRAY_SIZE (marks); i++)
    if (mark_of (f, i))
      {
        *why = avm_cf_host_markers[i];
        return marks[i].release;
      }
  return -1;
}

void
avm_cf_release_decide (const struct avm_cf_facts *f, struct avm_cf_release *out)
{
  char v[64];
  const char *hwhy = NULL;
  int host = hostpkg_release (f, &hwhy);
  int rel = -1;

  *out = (struct avm_cf_release) { 0 };
  if (f->manifest_release && avm_cf_release_index (f->manifest_release) >= 0)
    {
      rel = avm_cf_release_index (f->manifest_release);
      snprintf (out->source, sizeof out->source, "manifest.json");
      snprintf (out->evidence, sizeof out->evidence, "recorded by avm cvd2img%s%s", f->manifest_evidence ? ": " : "",
                f->manifest_evidence ? f->manifest_evidence : "");
    }
  else if (f->android_info)
    {
      snprintf (out->source, sizeof out->source, "android-info.txt");
      if (info_value (f->android_info, "output_audio_streams_count", v, sizeof v))
        {
          rel = 4;
          snprintf (out->evidence, sizeof out->evidence, "output_audio_streams_count=%s", v);
        }
      else if (info_value (f->android_info, "vhost_user_vsock", v, sizeof v) && streq (v, "true"))
        {
          rel = 3;
          snprintf (out->evidence, sizeof out->evidence, "vhost_user_vsock=true");
        }
      else if (info_value (f->android_info, "gfxstream", v, sizeof v) && streq (v, "supported"))
        {
          if (f->boot_os_major == 14 || f->boot_os_major == 15)
            {
              rel = f->boot_os_major == 14 ? 1 : 2;
              snprintf (out->evidence, sizeof out->evidence, "gfxstream=supported, boot.img os_version %d",
                        f->boot_os_major);
            }
          else
            {
              rel = host == 2 ? 2 : 1;
              snprintf (out->evidence, sizeof out->evidence, "gfxstream=supported, %s",
                        host == 2 ? "bin/vhal_proxy_server in the host package"
                                  : "no vhal_proxy_server in the host package");
            }
        }
      else
        {
          rel = 0;
          snprintf (out->evidence, sizeof out->evidence,
                    "none of gfxstream, vhost_user_vsock, "
                    "output_audio_streams_count");
        }
      if (info_value (f->android_info, "config", v, sizeof v) && !streq (v, "auto"))
        snprintf (out->warning, sizeof out->warning,
                  "android-info.txt says config=%s: these are not Android Automotive (auto) images", v);
    }
  else if (host >= 0)
    {
      rel = host;
      snprintf (out->source, sizeof out->source, "host package");
      snprintf (out->evidence, sizeof out->evidence, "%s", hwhy);
    }
  if (rel < 0)
    return;
  out->release = avm_cf_releases[rel];
  if (host >= 0 && host < rel && !*out->warning)
    snprintf (out->warning, sizeof out->warning,
              "the host package is older than the %s images (it has nothing newer than %s: %s); helpers of the "
              "newer release are missing",
              avm_cf_releases[rel], avm_cf_releases[host], hwhy);
}

static bool
exists (int dirfd, const char *path, bool dir)
{
  struct stat st;
  return fstatat (dirfd, path, &st, 0) == 0 && (dir ? S_ISDIR (st.st_mode) : S_ISREG (st.st_mode));
}

int
avm_cf_facts_from_dir (const char *dir, struct avm_cf_facts *f, avm_error_t *err)
{
  _cleanup_close_ int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r;
  *f = (struct avm_cf_facts) { 0 };
  if (dfd < 0)
    return 0; /* no images directory: nothing to tell (the plan names it) */

  _cleanup_free_ char *manifest = avm_path_join (dir, "manifest.json");
  if (manifest && exists (dfd, "manifest.json", false))
    {
      _cleanup_json_ json_t *m = NULL;
      if ((r = avm_json_load_file (manifest, AVM_MANIFEST_MAX_SIZE, "a manifest", &m, err)) < 0)
        return r;
      json_t *rel = json_object_get (m, "release");
      const char *name = json_string_value (json_object_get (rel, "name"));
      const char *ev = json_string_value (json_object_get (rel, "evidence"));
      if (name)
        f->manifest_release = strdup (name);
      if (ev)
        f->manifest_evidence = strdup (ev);
    }
  if (exists (dfd, "android-info.txt", false))
    {
      _cleanup_free_ char *path = avm_path_join (dir, "android-info.txt");
      size_t len;
      if (!path)
        return avm_error_sys (err, ENOMEM, "%s", dir);
      if ((r = avm_read_file (path, 64u << 10, "android-info.txt", &f->android_info, &len, err)) < 0)
        return r;
    }
  static const char *const boots[] = { "boot.img", "init_boot.img" };
  for (size_t i = 0; i < ARRAY_SIZE (boots) && !f->boot_os_major; i++)
    {
      _cleanup_close_ int fd = openat (dfd, boots[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      unsigned char hdr[48];
      struct stat st;
      if (fd >= 0 && fstat (fd, &st) == 0 && S_ISREG (st.st_mode) && pread (fd, hdr, sizeof hdr, 0) == sizeof hdr)
        f->boot_os_major = avm_cf_boot_os_major (hdr, sizeof hdr);
    }
  avm_cf_host_facts_at (dfd, f);
  return 0;
}

void
avm_cf_host_facts_at (int dfd, struct avm_cf_facts *f)
{
  f->hostpkg = exists (dfd, "bin", true) || exists (dfd, "etc", true);
  for (size_t i = 0; i < AVM_CF_HOST_MARKERS; i++)
    {
      char path[64];
      size_t l = strlen (avm_cf_host_markers[i]);
      bool dir = avm_cf_host_markers[i][l - 1] == '/';
      snprintf (path, sizeof path, "%.*s", (int) (dir ? l - 1 : l), avm_cf_host_markers[i]);
      *(bool *) ((char *) f + marks[i].off) = exists (dfd, path, dir);
    }
}

int
avm_cf_release_choice (const struct avm_cf_facts *f, char **choice, json_t **info, avm_error_t *err)
{
  struct avm_cf_release rel;
  *choice = NULL;
  *info = NULL;
  avm_cf_release_decide (f, &rel);
  if (!rel.release)
    return 0;
  *choice = strdup (rel.release);
  *info = json_pack ("{s:s, s:s}", "source", rel.source, "evidence", rel.evidence);
  if (*info && *rel.warning)
    json_object_set_new (*info, "warning", json_string (rel.warning));
  if (!*choice || !*info)
    return avm_error_sys (err, ENOMEM, "release");
  return 0;
}

int
avm_cf_profile_detect (void *data, const char *detector, const char *images, char **choice, json_t **info,
                       avm_error_t *err)
{
  struct avm_cf_facts f;
  (void) data;
  *choice = NULL;
  *info = NULL;
  if (!streq (detector, "cuttlefish-release"))
    return avm_error_input (err, "unknown detector \"%s\"", detector);
  int r = avm_cf_facts_from_dir (images, &f, err);
  if (r >= 0)
    r = avm_cf_release_choice (&f, choice, info, err);
  avm_cf_facts_clear (&f);
  return r;
}
