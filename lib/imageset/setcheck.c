/* SPDX-License-Identifier: Apache-2.0 */
#include "imageset/setcheck.h"
#include "cuttlefish/release.h"
#include "disk/avb.h"
#include "disk/gpt.h"
#include "profile/profile.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strfmt.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The manifest sections that describe one file each ("file"), in the order
   cvd2img writes them.  */
static const char *const sections[]
    = { "system", "properties", "properties_virgl", "bootloader", "key", "android_info" };

/* The bootloader and the key are hashed whole (FULL mode) up to these
   sizes; cvd2img copies at most 64 MiB of bootloader and 1 MiB of key.  */
#define MAX_HASHED (64u << 20)

struct set
{
  char *dir;
  char *manifest_path;
  json_t *manifest;
  enum avm_setcheck_mode mode;
  json_t *problems;
};

/* Append LINE (malloc'd, taken; NULL: out of memory) unless already there.  */
static void
add (json_t *problems, char *line)
{
  const char *text = line ? line : "out of memory";
  size_t i;
  json_t *p;
  bool seen = false;
  json_array_foreach (problems, i, p)
    seen |= json_is_string (p) && streq (json_string_value (p), text);
  if (!seen)
    json_array_append_new (problems, json_string (text));
  free (line);
}

static void
mismatch (struct set *s, const char *path, const char *detail)
{
  add (s->problems, avm_strdupf ("%s does not belong with %s (%s): the files in %s come from different conversions "
                                 "or were changed since; " AVM_CVD2IMG_REMEDY,
                                 path, s->manifest_path, detail, s->dir));
}

static const char *
base_name (const char *path)
{
  const char *slash = strrchr (path, '/');
  return slash ? slash + 1 : path;
}

/* The section whose "file" has the base name BASE, or NULL.  */
static const char *
section_of (json_t *manifest, const char *base)
{
  for (size_t i = 0; i < ARRAY_SIZE (sections); i++)
    {
      const char *f = json_string_value (json_object_get (json_object_get (manifest, sections[i]), "file"));
      if (f && streq (base_name (f), base))
        return sections[i];
    }
  return NULL;
}

static bool
is_disk_section (const char *name)
{
  return streq (name, "system") || streq (name, "properties") || streq (name, "properties_virgl");
}

/* PATH (in the set's directory) against section NAME of the manifest.  */
static int
check_member (struct set *s, const char *name, const char *path, avm_error_t *err)
{
  json_t *sec = json_object_get (s->manifest, name);
  json_t *jsize = json_object_get (sec, "size");
  struct stat st;
  char detail[256];

  _cleanup_close_ int fd = open (path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    return 0; /* not in this directory: not part of the set here */
  if (fd < 0)
    return avm_error_input_if_missing (err, avm_error_sys (err, errno, "cannot open %s", path));
  if (fstat (fd, &st) < 0)
    return avm_error_sys (err, errno, "cannot read %s", path);
  if (!S_ISREG (st.st_mode))
    {
      snprintf (detail, sizeof detail, "it is %s", avm_file_kind (st.st_mode));
      mismatch (s, path, detail);
      return 0;
    }
  if (json_is_integer (jsize) && (uint64_t) json_integer_value (jsize) != (uint64_t) st.st_size)
    {
      snprintf (detail, sizeof detail, "%" PRIu64 " bytes, the manifest says %" PRIu64, (uint64_t) st.st_size,
                (uint64_t) json_integer_value (jsize));
      mismatch (s, path, detail);
      return 0;
    }

  if (is_disk_section (name))
    {
      const char *want = json_string_value (json_object_get (sec, "disk_guid"));
      uint8_t guid[16];
      char have[40];
      _cleanup_error_ avm_error_t gerr = NULL;
      if (!want)
        return 0; /* a manifest written before avm recorded disk GUIDs */
      if (avm_gpt_read_disk_guid (fd, st.st_size, path, guid, &gerr) < 0)
        {
          snprintf (detail, sizeof detail, "no readable GPT: %s", gerr->msg);
          mismatch (s, path, detail);
          return 0;
        }
      avm_guid_format (guid, have);
      if (strcasecmp (have, want) != 0)
        {
          snprintf (detail, sizeof detail, "disk GUID %s, the manifest says %s", have, want);
          mismatch (s, path, detail);
        }
      return 0;
    }

  /* The bootloader and the key: hashed in FULL mode only (milliseconds,
     which avm start does not spend).  */
  const char *want = json_string_value (json_object_get (sec, "sha256"));
  if (s->mode != AVM_SETCHECK_FULL || !want)
    return 0;
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  char have[65];
  int r = avm_read_file (path, MAX_HASHED, "a file of this image set", &data, &len, err);
  if (r < 0)
    return r;
  avm_avb_sha256_hex ((const uint8_t *) data, len, have);
  if (!streq (have, want))
    {
      snprintf (detail, sizeof detail, "SHA-256 %.16s..., the manifest says %.16s...", have, want);
      mismatch (s, path, detail);
    }
  return 0;
}

/* The host package's tree (manifest.json "host_package"): each top-level
   entry the conversion put there still there (one fstatat each), and the
   entries that tell the release (cuttlefish/release.h) those the
   conversion saw, so that avm start tells the same release and finds the
   same helpers.  */
static int
check_host_tree (struct set *s, avm_error_t *err)
{
  json_t *hp = json_object_get (s->manifest, "host_package"), *e;
  size_t i;
  if (!json_is_object (hp))
    return 0;
  _cleanup_close_ int dfd = open (s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return avm_error_sys (err, errno, "cannot open %s", s->dir);
  json_array_foreach (json_object_get (hp, "entries"), i, e)
    {
      const char *name = json_string_value (e);
      struct stat st;
      if (!name || !*name || strchr (name, '/') || streq (name, ".") || streq (name, ".."))
        continue;
      if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
        add (s->problems, avm_strdupf ("%s/%s is missing: %s lists it among the host package's entries (the host "
                                       "tools, their libraries and data); " AVM_CVD2IMG_REMEDY,
                                       s->dir, name, s->manifest_path));
    }

  json_t *recorded = json_object_get (hp, "markers");
  if (!json_is_array (recorded))
    return 0;
  struct avm_cf_facts f = { 0 };
  const char *have[AVM_CF_HOST_MARKERS];
  avm_cf_host_facts_at (dfd, &f);
  size_t n = avm_cf_host_marker_list (&f, have);
  bool same = n == json_array_size (recorded);
  for (size_t k = 0; same && k < n; k++)
    {
      bool found = false;
      json_array_foreach (recorded, i, e)
        found |= json_is_string (e) && streq (json_string_value (e), have[k]);
      same = found;
    }
  if (same)
    return 0;
  char want[256] = "", got[256] = "";
  size_t o = 0;
  json_array_foreach (recorded, i, e)
    if (json_is_string (e) && o < sizeof want)
      o += snprintf (want + o, sizeof want - o, "%s%s", o ? ", " : "", json_string_value (e));
  o = 0;
  for (size_t k = 0; k < n && o < sizeof got; k++)
    o += snprintf (got + o, sizeof got - o, "%s%s", o ? ", " : "", have[k]);
  add (s->problems,
       avm_strdupf ("the host tools in %s are not those converted (another host package, or changed "
                    "since): %s records the release markers [%s], the directory has [%s]; " AVM_CVD2IMG_REMEDY,
                    s->dir, s->manifest_path, want, got));
  return 0;
}

int
avm_setcheck (const char *file, bool whole_set, enum avm_setcheck_mode mode, json_t *problems, avm_error_t *err)
{
  _cleanup_free_ char *copy = strdup (file);
  _cleanup_free_ char *marker = NULL;
  struct set s = { .mode = mode, .problems = problems };
  struct stat st;
  int r = 0;

  if (!copy)
    return avm_error_sys (err, ENOMEM, "%s", file);
  char *slash = strrchr (copy, '/');
  if (!slash)
    s.dir = strdup (".");
  else if (slash == copy)
    s.dir = strdup ("/");
  else
    s.dir = strndup (copy, slash - copy);
  if (!s.dir || !(marker = avm_path_join (s.dir, AVM_CVD2IMG_MARKER))
      || !(s.manifest_path = avm_path_join (s.dir, "manifest.json")))
    {
      r = avm_error_sys (err, ENOMEM, "%s", file);
      goto out;
    }

  if (lstat (marker, &st) == 0)
    add (problems, avm_strdupf ("%s: an avm cvd2img run was interrupted while it replaced the files in %s (%s is "
                                "still there): they may not belong together; " AVM_CVD2IMG_REMEDY,
                                s.dir, s.dir, AVM_CVD2IMG_MARKER));

  if (lstat (s.manifest_path, &st) < 0 && errno == ENOENT)
    goto out; /* not a cvd2img set: nothing to compare with */
  if ((r = avm_json_load_file (s.manifest_path, AVM_MANIFEST_MAX_SIZE, "a manifest", &s.manifest, err)) < 0)
    {
      /* A dangling link or a loop in its place: bad input, as the rest.  */
      r = avm_error_input_if_missing (err, r);
      avm_error_prefix (err, "%s: cannot check it against its image set", file);
      goto out;
    }
  const char *mine = section_of (s.manifest, base_name (file));
  if (!mine)
    goto out; /* a file the conversion did not write */
  if ((r = check_host_tree (&s, err)) < 0)
    goto out;
  if (!whole_set)
    {
      r = check_member (&s, mine, file, err);
      goto out;
    }
  for (size_t i = 0; i < ARRAY_SIZE (sections) && r == 0; i++)
    {
      const char *f = json_string_value (json_object_get (json_object_get (s.manifest, sections[i]), "file"));
      if (!f)
        continue;
      _cleanup_free_ char *path = avm_path_join (s.dir, base_name (f));
      r = path ? check_member (&s, sections[i], path, err) : avm_error_sys (err, ENOMEM, "%s", file);
    }

out:
  json_decref (s.manifest);
  free (s.dir);
  free (s.manifest_path);
  return r;
}
