/* SPDX-License-Identifier: Apache-2.0 */
/*
 * avm_props_sync (propsync.h): compare a properties disk with what
 * props.c would write, reading it with the readers of `avm inspect`
 * (gpt.c, inspect.c, avb.c), and rebuild it when they differ.
 */
#include "disk/propsync.h"
#include "disk/avb.h"
#include "disk/gpt.h"
#include "disk/inspect.h"
#include "disk/props.h"
#include "disk/ubootenv.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

/* Largest file replaced without being recognised: a properties disk is
   about 1.3 MiB.  */
#define MAX_REPLACED (64ULL << 20)

struct want
{
  const char *path;
  const char *text; /* bootconfig */
  size_t text_len;
  uint8_t env[AVM_UBOOT_ENV_SIZE]; /* uboot_env image */
  struct avm_gpt *layout;
  char signer[41]; /* key SHA-1; "" (key missing): the first signature's */
};

DEFINE_TRIVIAL_CLEANUP_FUNC (struct avm_avb_key *, avm_avb_key_free)

/* INFO was signed by the wanted key (the first signer sets it when the key
   is missing) and its signature and hash verify.  */
static bool
signed_ok (struct want *w, const struct avm_avb_info *info)
{
  if (!info->signature_ok || !info->hash_ok)
    return false;
  if (!w->signer[0])
    memcpy (w->signer, info->key_sha1, sizeof w->signer);
  return streq (w->signer, info->key_sha1);
}

/* Read the signed partition P (of the layout, so present) and verify it:
 *OK false when it does not parse or verify; errors are I/O failures.  */
static int
read_signed (int fd, const struct avm_gpt_part *p, bool footer, struct want *w, struct avm_avb_info *info,
             uint8_t **data, bool *ok, avm_error_t *err)
{
  _cleanup_free_ char *what = NULL;
  _cleanup_error_ avm_error_t verr = NULL;
  size_t len = 0;
  int r;

  *ok = false;
  if ((r = avm_inspect_read_partition (fd, p, w->path, data, &len, err)) < 0)
    return r;
  if (asprintf (&what, "%s: %s", w->path, p->name) < 0)
    return avm_error_sys (err, ENOMEM, "%s", w->path);
  r = footer ? avm_avb_verify_footer (*data, len, what, info, &verr)
             : avm_avb_verify_vbmeta (*data, len, what, info, &verr);
  *ok = r == 0 && signed_ok (w, info) && (!footer || (info->digest_ok && streq (info->partition, p->name)));
  return 0;
}

enum kind
{
  NOT_GPT,    /* garbage, empty, truncated */
  OTHER_GPT,  /* a GPT disk without uboot_env: some other image */
  PROPERTIES, /* a properties disk (maybe stale) */
};

/* Whether the open disk FD (SIZE bytes) holds what W describes, and what
   kind of file it is.  */
static int
disk_matches (int fd, uint64_t size, struct want *w, bool *match, enum kind *kind, avm_error_t *err)
{
  _cleanup_free_ struct avm_gpt *g = calloc (1, sizeof *g);
  _cleanup_error_ avm_error_t gerr = NULL;
  _cleanup_free_ uint8_t *env = NULL, *bc = NULL, *vbmeta = NULL;
  struct avm_avb_info ienv, ibc, ivb;
  int r;

  *match = false;
  *kind = NOT_GPT;
  if (!g)
    return avm_error_sys (err, ENOMEM, "%s", w->path);
  if (avm_gpt_read (fd, size, w->path, g, &gerr) < 0)
    return 0;
  *kind = avm_gpt_find (g, "uboot_env") ? PROPERTIES : OTHER_GPT;

  /* The layout props.c makes for this bootconfig text (GUIDs aside).  */
  if (*kind != PROPERTIES || size != w->layout->disk_size || g->n != w->layout->n)
    return 0;
  for (size_t i = 0; i < g->n; i++)
    if (!streq (g->parts[i].name, w->layout->parts[i].name) || g->parts[i].first_lba != w->layout->parts[i].first_lba
        || g->parts[i].last_lba != w->layout->parts[i].last_lba)
      return 0;

  /* Each signed partition: verified, signed by the key, holding exactly
     what props.c writes.  */
  const struct avm_gpt_part *penv = avm_gpt_find (g, "uboot_env"), *pbc = avm_gpt_find (g, "bootconfig");
  const struct avm_gpt_part *pvb = avm_gpt_find (g, "vbmeta");
  bool ok;
  if ((r = read_signed (fd, penv, true, w, &ienv, &env, &ok, err)) < 0 || !ok || ienv.original_size != sizeof w->env
      || memcmp (env, w->env, sizeof w->env) != 0)
    return r;
  if ((r = read_signed (fd, pbc, true, w, &ibc, &bc, &ok, err)) < 0 || !ok || ibc.original_size != w->text_len
      || memcmp (bc, w->text, w->text_len) != 0)
    return r;
  if ((r = read_signed (fd, pvb, false, w, &ivb, &vbmeta, &ok, err)) < 0 || !ok)
    return r;
  /* The chain descriptors props.c writes, naming the same key.  */
  static const struct
  {
    const char *partition;
    uint32_t location;
  } chains[] = { { "uboot_env", 1 }, { "bootconfig", 2 } };
  if (ivb.n_chains_total != ARRAY_SIZE (chains))
    return 0;
  for (size_t i = 0; i < ARRAY_SIZE (chains); i++)
    if (!streq (ivb.chains[i].partition, chains[i].partition) || ivb.chains[i].location != chains[i].location
        || !streq (ivb.chains[i].key_sha1, w->signer))
      return 0;
  *match = true;
  return 0;
}

static char *
parent_dir (const char *path)
{
  const char *slash = strrchr (path, '/');
  if (!slash)
    return strdup (".");
  if (slash == path)
    return strdup ("/");
  return strndup (path, slash - path);
}

int
avm_props_sync (const char *path, json_t *boot_properties, const char *arch, const char *key_path, bool *rebuilt,
                avm_error_t *err)
{
  _cleanup_free_ struct avm_gpt *layout = calloc (1, sizeof *layout);
  _cleanup_ (avm_avb_key_freep) struct avm_avb_key *key = NULL;
  _cleanup_free_ char *text = NULL, *dir = NULL;
  _cleanup_strv_ char **entries = avm_props_uboot_env_entries (arch);
  struct want w = { .path = path, .layout = layout };
  struct avm_props_spec spec = { .boot_properties = boot_properties, .arch = arch };
  struct stat st;
  int r;

  *rebuilt = false;
  if (!layout || !entries)
    return avm_error_sys (err, ENOMEM, "%s", path);

  /* What the disk must hold.  */
  if ((r = avm_bootconfig_text (boot_properties, &text, err)) < 0 || (r = avm_uboot_env_build (entries, w.env, err)) < 0
      || (r = avm_props_disk_layout (&spec, layout, err)) < 0)
    {
      avm_error_prefix (err, "properties disk %s", path);
      return r;
    }
  w.text = text;
  w.text_len = strlen (text);
  if (access (key_path, F_OK) < 0 && errno == ENOENT)
    key = NULL; /* needed only to build the disk */
  else if ((r = avm_avb_key_load (key_path, &key, err)) < 0)
    {
      avm_error_prefix (err, "properties disk %s", path);
      return r;
    }
  else
    avm_avb_key_sha1 (key, w.signer);

  /* What it holds.  O_NOFOLLOW: a link swapped in after lstat is refused
     too (ELOOP).  */
  bool exists = true;
  if (lstat (path, &st) < 0)
    {
      if (errno != ENOENT)
        return avm_error_sys (err, errno, "properties disk %s", path);
      exists = false;
    }
  if (exists)
    {
      if (S_ISLNK (st.st_mode))
        return avm_error_input (err,
                                "properties disk %s is a symbolic link: avm generates this disk and replaces it when "
                                "the boot properties change; point disks[].path at a regular file",
                                path);
      if (!S_ISREG (st.st_mode))
        return avm_error_input (err, "properties disk %s is not a regular file: avm generates this disk", path);
      _cleanup_close_ int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 || fstat (fd, &st) < 0)
        return errno == ELOOP ? avm_error_input (err, "properties disk %s is a symbolic link", path)
                              : avm_error_sys (err, errno, "cannot open properties disk %s", path);
      if (!S_ISREG (st.st_mode))
        return avm_error_input (err, "properties disk %s is not a regular file: avm generates this disk", path);
      bool match;
      enum kind kind;
      if ((r = disk_matches (fd, st.st_size, &w, &match, &kind, err)) < 0)
        return r;
      if (match)
        return 0;
      /* Never overwrite an image a mistyped path points at.  */
      if (kind == OTHER_GPT)
        return avm_error_input (err,
                                "%s is a GPT disk without a uboot_env partition, not a properties disk: refusing to "
                                "replace it with a generated one (check disks[].path and disks[].boot_properties)",
                                path);
      if (kind == NOT_GPT && (uint64_t) st.st_size > MAX_REPLACED)
        return avm_error_input (err,
                                "%s (%lld bytes) is not a properties disk: refusing to replace it with a generated one "
                                "(check disks[].path and disks[].boot_properties)",
                                path, (long long) st.st_size);
    }

  /* (Re)build it.  */
  if (!key)
    return avm_error_fail (err, ENOENT,
                           "cannot %s the properties disk %s: its signing key %s does not exist; run `avm cvd2img` "
                           "again, which writes avb_key.pem next to the images, or set disks[N].key of this disk to "
                           "the AVB key (PEM, RSA-4096) that signs it",
                           exists ? "rebuild" : "create", path, key_path);
  spec.key = key;
  dir = parent_dir (path);
  if (!dir)
    return avm_error_sys (err, ENOMEM, "%s", path);
  if ((r = avm_mkdir_p (dir, 0750, err)) < 0 || (r = avm_props_disk_create (&spec, path, err)) < 0)
    return r;
  *rebuilt = true;
  return 0;
}
