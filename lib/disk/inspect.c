/* SPDX-License-Identifier: Apache-2.0 */
#include "disk/inspect.h"
#include "disk/avb.h"
#include "disk/gpt.h"
#include "disk/ubootenv.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_SIGNED_PARTITION (4u << 20) /* properties partitions are small */

static const char *
algorithm_name (uint32_t a)
{
  static const char *const names[] = { "NONE",           "SHA256_RSA2048", "SHA256_RSA4096", "SHA256_RSA8192",
                                       "SHA512_RSA2048", "SHA512_RSA4096", "SHA512_RSA8192" };
  return a < sizeof names / sizeof names[0] ? names[a] : "unknown";
}

static json_t *
avb_json (const struct avm_avb_info *i, bool footer)
{
  json_t *j = json_object ();
  json_object_set_new (j, "algorithm", json_string (algorithm_name (i->algorithm)));
  json_object_set_new (j, "signature", json_string (i->signature_ok && i->hash_ok ? "verified" : "INVALID"));
  json_object_set_new (j, "key_sha1", json_string (i->key_sha1));
  if (footer)
    {
      json_object_set_new (j, "partition", json_string (i->partition));
      json_object_set_new (j, "image_size", json_integer (i->original_size));
      json_object_set_new (j, "digest", json_string (i->digest_ok ? "ok" : "MISMATCH"));
    }
  if (i->n_chains)
    {
      json_t *chains = json_array ();
      for (size_t k = 0; k < i->n_chains; k++)
        json_array_append_new (chains, json_pack ("{s:s, s:i, s:s}", "partition", i->chains[k].partition,
                                                  "rollback_index_location", (int) i->chains[k].location, "key_sha1",
                                                  i->chains[k].key_sha1));
      json_object_set_new (j, "chains", chains);
    }
  return j;
}

int
avm_inspect_read_partition (int fd, const struct avm_gpt_part *p, const char *file, uint8_t **out, size_t *len,
                            avm_error_t *err)
{
  uint64_t size = (p->last_lba - p->first_lba + 1) * 512;
  if (size > MAX_SIGNED_PARTITION)
    return avm_error_input (err, "%s: partition %s is %llu bytes, too large for a properties partition", file, p->name,
                            (unsigned long long) size);
  uint8_t *buf = malloc (size);
  if (!buf)
    return avm_error_sys (err, ENOMEM, "%s", file);
  ssize_t got = pread (fd, buf, size, p->first_lba * 512);
  if (got != (ssize_t) size)
    {
      free (buf);
      return avm_error_sys (err, got < 0 ? errno : EIO, "%s: cannot read partition %s", file, p->name);
    }
  *out = buf;
  *len = size;
  return 0;
}

/* A signed partition with a hash footer: its AVB status into REPORT[NAME].  */
static int
inspect_footer (int fd, const struct avm_gpt_part *p, const char *file, json_t *report, struct avm_avb_info *info,
                uint8_t **data, bool *ok, avm_error_t *err)
{
  size_t len;
  _cleanup_free_ char *what = NULL;
  int r = avm_inspect_read_partition (fd, p, file, data, &len, err);
  if (r < 0)
    return r;
  if (asprintf (&what, "%s: %s", file, p->name) < 0)
    return avm_error_sys (err, ENOMEM, "%s", file);
  r = avm_avb_verify_footer (*data, len, what, info, err);
  if (r < 0)
    return r;
  json_t *j = json_object ();
  json_object_set_new (j, "avb", avb_json (info, true));
  json_object_set_new (report, p->name, j);
  *ok &= info->signature_ok && info->hash_ok && info->digest_ok;
  return 0;
}

static int
inspect_properties (int fd, const struct avm_gpt *g, const char *file, json_t *report, bool *ok, avm_error_t *err)
{
  const struct avm_gpt_part *env = avm_gpt_find (g, "uboot_env"), *vbm = avm_gpt_find (g, "vbmeta");
  const struct avm_gpt_part *bc = avm_gpt_find (g, "bootconfig");
  struct avm_avb_info ienv = { 0 }, ibc = { 0 }, ivb = { 0 };
  _cleanup_free_ uint8_t *denv = NULL, *dbc = NULL, *dvb = NULL;
  int r;

  if (g->n == 0 || !streq (g->parts[0].name, "uboot_env"))
    {
      json_object_set_new (report, "warning",
                           json_string ("uboot_env is not the first partition: U-Boot will not find its environment"));
      *ok = false;
    }
  if ((r = inspect_footer (fd, env, file, report, &ienv, &denv, ok, err)) < 0)
    return r;
  _cleanup_strv_ char **entries = NULL;
  avm_error_t perr = NULL;
  json_t *envj = json_object_get (report, "uboot_env");
  if (avm_uboot_env_parse (denv, ienv.original_size, &entries, &perr) < 0)
    {
      json_object_set_new (envj, "error", json_string (perr->msg));
      avm_error_free (perr);
      *ok = false;
    }
  else
    {
      json_t *a = json_array ();
      for (size_t i = 0; entries[i]; i++)
        json_array_append_new (a, json_string (entries[i]));
      json_object_set_new (envj, "entries", a);
    }

  if (bc)
    {
      if ((r = inspect_footer (fd, bc, file, report, &ibc, &dbc, ok, err)) < 0)
        return r;
      json_t *props = json_object ();
      const char *text = (const char *) dbc;
      for (size_t o = 0; o < ibc.original_size;)
        {
          const char *nl = memchr (text + o, '\n', ibc.original_size - o);
          size_t n = nl ? (size_t) (nl - text - o) : ibc.original_size - o;
          const char *eq = memchr (text + o, '=', n);
          if (eq && eq > text + o)
            {
              _cleanup_free_ char *k = strndup (text + o, eq - text - o);
              _cleanup_free_ char *v = strndup (eq + 1, text + o + n - eq - 1);
              json_object_set_new (props, k, json_string (v));
            }
          o += n + 1;
        }
      json_object_set_new (json_object_get (report, "bootconfig"), "properties", props);
    }

  if (vbm)
    {
      size_t len;
      _cleanup_free_ char *what = NULL;
      if ((r = avm_inspect_read_partition (fd, vbm, file, &dvb, &len, err)) < 0)
        return r;
      if (asprintf (&what, "%s: vbmeta", file) < 0)
        return avm_error_sys (err, ENOMEM, "%s", file);
      if ((r = avm_avb_verify_vbmeta (dvb, len, what, &ivb, err)) < 0)
        return r;
      json_t *j = json_object ();
      json_t *avb = avb_json (&ivb, false);
      *ok &= ivb.signature_ok && ivb.hash_ok;
      /* Each chained partition must be signed by the key its descriptor names.  */
      size_t k;
      json_t *ch;
      json_array_foreach (json_object_get (avb, "chains"), k, ch)
        {
          const char *part = json_string_value (json_object_get (ch, "partition"));
          const char *want = json_string_value (json_object_get (ch, "key_sha1"));
          const struct avm_avb_info *signer = streq (part, "uboot_env")          ? &ienv
                                              : streq (part, "bootconfig") && bc ? &ibc
                                                                                 : NULL;
          bool match = signer && streq (signer->key_sha1, want);
          json_object_set_new (ch, "signer",
                               json_string (match    ? "matches"
                                            : signer ? "DIFFERENT KEY"
                                                     : "partition missing"));
          *ok &= match;
        }
      json_object_set_new (j, "avb", avb);
      json_object_set_new (report, "vbmeta", j);
    }
  return 0;
}

int
avm_inspect_open (const char *path, int *fdp, struct stat *st, avm_error_t *err)
{
  /* O_NONBLOCK: a FIFO is refused below, not waited on.  */
  _cleanup_close_ int fd = open (path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  *fdp = -1;
  if (fd < 0)
    return avm_error_input_if_missing (err, avm_error_sys (err, errno, "cannot open %s", path));
  if (fstat (fd, st) < 0)
    return avm_error_sys (err, errno, "cannot read %s", path);
  if (!S_ISREG (st->st_mode) && !S_ISBLK (st->st_mode))
    return avm_error_input (err, "%s is %s, not a disk image", path, avm_file_kind (st->st_mode));
  *fdp = steal_fd (&fd);
  return 0;
}

int
avm_inspect (const char *path, json_t **out, avm_error_t *err)
{
  _cleanup_close_ int fd = -1;
  struct stat st;
  int r;
  if ((r = avm_inspect_open (path, &fd, &st, err)) < 0)
    return r;
  struct avm_gpt *g = calloc (1, sizeof *g);
  if (!g)
    return avm_error_sys (err, ENOMEM, "%s", path);
  if ((r = avm_gpt_read (fd, st.st_size, path, g, err)) < 0)
    {
      free (g);
      return r;
    }
  char guid[40];
  avm_guid_format (g->disk_guid, guid);
  json_t *rep = json_object ();
  bool ok = true;
  json_object_set_new (rep, "file", json_string (path));
  json_object_set_new (rep, "size", json_integer (st.st_size));
  json_object_set_new (rep, "disk_guid", json_string (guid));
  json_t *parts = json_array ();
  for (size_t i = 0; i < g->n; i++)
    {
      char pg[40], tg[40];
      avm_guid_format (g->parts[i].unique_guid, pg);
      avm_guid_format (g->parts[i].type_guid, tg);
      json_array_append_new (parts,
                             json_pack ("{s:i, s:s, s:I, s:I, s:I, s:I, s:s, s:s}", "index", (int) i + 1, "name",
                                        g->parts[i].name, "offset", (json_int_t) g->parts[i].offset, "size",
                                        (json_int_t) g->parts[i].size, "first_lba", (json_int_t) g->parts[i].first_lba,
                                        "last_lba", (json_int_t) g->parts[i].last_lba, "type_guid", tg, "guid", pg));
    }
  json_object_set_new (rep, "partitions", parts);
  bool props = avm_gpt_find (g, "uboot_env") != NULL;
  json_object_set_new (rep, "kind", json_string (props ? "properties" : avm_gpt_find (g, "super") ? "system" : "gpt"));
  if (props && (r = inspect_properties (fd, g, path, rep, &ok, err)) < 0)
    {
      json_decref (rep);
      free (g);
      return r;
    }
  json_object_set_new (rep, "ok", json_boolean (ok));
  free (g);
  *out = rep;
  return 0;
}
