/* SPDX-License-Identifier: Apache-2.0 */
/* The snapshot store of an instance: names, directories, listing, loading,
   putting a new snapshot in place and removing one (snapshot.h).  */
#include "snapshot/snapshot.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strfmt.h"
#include "util/strv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A metadata file is a few KiB (the device lines); refuse anything huge.  */
#define META_MAX (1u << 20)

int
avm_snapshot_name_check (const char *name, avm_error_t *err)
{
  size_t n = name ? strlen (name) : 0;
  bool ok = n > 0 && n <= AVM_SNAPSHOT_NAME_MAX;
  for (size_t i = 0; ok && i < n; i++)
    {
      char ch = name[i];
      bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
      ok = alnum || (i > 0 && (ch == '.' || ch == '_' || ch == '-'));
    }
  if (!ok)
    return avm_error_input (err,
                            "snapshot name \"%s\": use 1-%d letters, digits, '.', '_' or '-', starting with a letter "
                            "or digit",
                            name ? name : "", AVM_SNAPSHOT_NAME_MAX);
  return 0;
}

char *
avm_snapshot_store (const char *state_dir)
{
  return avm_path_join (state_dir, "snapshots");
}

char *
avm_snapshot_dir (const char *state_dir, const char *name)
{
  return avm_strdupf ("%s/snapshots/%s", state_dir, name);
}

char *
avm_snapshot_staging_dir (const char *state_dir, const char *name)
{
  return avm_strdupf ("%s/snapshots/.%s.new", state_dir, name);
}

char *
avm_snapshot_layer_name (const char *disk)
{
  return avm_strdupf ("disk-%s.qcow2", disk);
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The names of the snapshots in STORE (sorted), for messages: "a, b" or
   "none".  */
static char *
names_in (const char *store)
{
  _cleanup_closedir_ DIR *d = opendir (store);
  struct avm_argv v = { 0 };
  struct dirent *de;
  while (d && (de = readdir (d)))
    if (de->d_name[0] != '.' && avm_argv_push (&v, de->d_name) < 0)
      {
        avm_argv_clear (&v);
        return NULL;
      }
  if (v.n == 0)
    {
      avm_argv_clear (&v);
      return strdup ("none");
    }
  qsort (v.v, v.n, sizeof *v.v, cmp_str);
  char *s = avm_strv_join_prose (v.v, v.n);
  avm_argv_clear (&v);
  return s;
}

static int
stat_in (const char *dir, const char *name, struct stat *st)
{
  _cleanup_free_ char *p = avm_path_join (dir, name);
  if (!p)
    return -ENOMEM;
  return stat (p, st) < 0 ? -errno : 0;
}

int
avm_snapshot_load (const char *state_dir, const char *name, json_t **meta, avm_error_t *err)
{
  int r;
  if ((r = avm_snapshot_name_check (name, err)) < 0)
    return r;
  _cleanup_free_ char *dir = avm_snapshot_dir (state_dir, name);
  _cleanup_free_ char *store = avm_snapshot_store (state_dir);
  _cleanup_free_ char *path = dir ? avm_path_join (dir, AVM_SNAPSHOT_META) : NULL;
  if (!path || !store)
    return avm_error_sys (err, ENOMEM, "snapshot %s", name);
  struct stat st;
  if (stat (dir, &st) < 0)
    {
      int e = errno;
      if (e != ENOENT)
        return avm_error_sys (err, e, "snapshot %s: %s", name, dir);
      _cleanup_free_ char *names = names_in (store);
      return avm_error_fail (err, ENOENT, "no snapshot %s in %s (there: %s); see avm snapshot list", name, store,
                             names ? names : "?");
    }
  _cleanup_json_ json_t *m = NULL;
  if ((r = avm_json_load_file (path, META_MAX, "snapshot metadata", &m, err)) < 0)
    return r;
  json_int_t format = 0, state_size = -1;
  const char *mname = NULL;
  json_t *disks = NULL;
  if (json_unpack (m, "{s:I, s:s, s:{s:I}, s:o}", "format", &format, "name", &mname, "state", "size", &state_size,
                   "disks", &disks)
          < 0
      || !json_is_array (disks))
    return avm_error_fail (err, EBADMSG,
                           "snapshot %s: %s is not avm snapshot metadata (format, name, state.size, disks)", name,
                           path);
  if (format != AVM_SNAPSHOT_FORMAT)
    return avm_error_fail (err, EBADMSG, "snapshot %s: %s has format %lld; this avm reads format %d", name, path,
                           (long long) format, AVM_SNAPSHOT_FORMAT);
  const char *sfile = json_string_value (json_object_get (json_object_get (m, "state"), "file")) ?: "?";
  if (strcmp (sfile, AVM_SNAPSHOT_STATE) && strcmp (sfile, AVM_SNAPSHOT_STATE_LZ4))
    return avm_error_fail (err, EBADMSG, "snapshot %s: %s: state.file \"%s\" is not %s or %s", name, path, sfile,
                           AVM_SNAPSHOT_STATE, AVM_SNAPSHOT_STATE_LZ4);
  if ((r = stat_in (dir, sfile, &st)) < 0)
    return avm_error_sys (err, -r, "snapshot %s: %s/%s", name, dir, sfile);
  if (st.st_size != state_size)
    return avm_error_fail (err, EBADMSG,
                           "snapshot %s: %s/%s is %lld bytes, the metadata says %lld: the state file is damaged; "
                           "delete the snapshot (avm snapshot delete %s) and save it again",
                           name, dir, sfile, (long long) st.st_size, (long long) state_size, name);
  const char *ram = json_string_value (json_object_get (m, "ram"));
  if (ram && (strcmp (ram, AVM_SNAPSHOT_RAM) || (r = stat_in (dir, ram, &st)) < 0))
    return avm_error_fail (err, EBADMSG, "snapshot %s: its guest RAM file %s/%s is missing: delete the snapshot", name,
                           dir, ram);
  size_t i;
  json_t *d;
  json_array_foreach (disks, i, d)
    {
      const char *layer = json_string_value (json_object_get (d, "layer"));
      if (!layer)
        continue;
      if (strchr (layer, '/') || layer[0] == '.')
        return avm_error_fail (err, EBADMSG, "snapshot %s: %s: disks[%zu].layer \"%s\" is not a file name", name, path,
                               i, layer);
      if ((r = stat_in (dir, layer, &st)) < 0)
        return avm_error_sys (err, -r, "snapshot %s: layer %s/%s", name, dir, layer);
    }
  /* Named by its directory (a snapshot renamed by hand is that name).  */
  if (json_object_set_new (m, "name", json_string (name)) < 0)
    return avm_error_sys (err, ENOMEM, "snapshot %s", name);
  *meta = steal_pointer (&m);
  return 0;
}

int
avm_snapshot_restore_request (json_t *meta, const char *dir, struct avm_plan_restore *rs,
                              struct avm_plan_layer **layers, char ***paths, avm_error_t *err)
{
  json_t *disks = json_object_get (meta, "disks");
  size_t n = json_array_size (disks), k = 0, i;
  _cleanup_free_ struct avm_plan_layer *l = calloc (n + 1, sizeof *l);
  struct avm_argv p = { 0 };
  json_t *d;
  if (!l)
    return avm_error_sys (err, ENOMEM, "snapshot");
  json_array_foreach (disks, i, d)
    {
      const char *name = json_string_value (json_object_get (d, "name"));
      const char *layer = json_string_value (json_object_get (d, "layer"));
      if (!name || !layer)
        continue;
      if (avm_argv_pushf (&p, "%s/%s", dir, layer) < 0)
        {
          avm_argv_clear (&p);
          return avm_error_sys (err, ENOMEM, "snapshot");
        }
      l[k++] = (struct avm_plan_layer) { name, NULL };
    }
  /* snapshot.fast: its RAM file, mapped by the restore's QEMU.  */
  const char *ram = json_string_value (json_object_get (meta, "ram"));
  if (ram && avm_argv_pushf (&p, "%s/%s", dir, ram) < 0)
    {
      avm_argv_clear (&p);
      return avm_error_sys (err, ENOMEM, "snapshot");
    }
  char **v = p.n ? avm_argv_steal (&p) : calloc (1, sizeof *v);
  if (!v)
    return avm_error_sys (err, ENOMEM, "snapshot");
  for (i = 0; i < k; i++)
    l[i].path = v[i];
  *rs = (struct avm_plan_restore) { json_string_value (json_object_get (meta, "name")), l, k, ram ? v[k] : NULL };
  *layers = steal_pointer (&l);
  *paths = v;
  return 0;
}

static int
by_created (const void *a, const void *b)
{
  json_t *x = *(json_t *const *) a, *y = *(json_t *const *) b;
  json_int_t tx = json_integer_value (json_object_get (x, "created_unix"));
  json_int_t ty = json_integer_value (json_object_get (y, "created_unix"));
  if (tx != ty)
    return tx < ty ? -1 : 1;
  return strcmp (json_string_value (json_object_get (x, "name")) ?: "",
                 json_string_value (json_object_get (y, "name")) ?: "");
}

int
avm_snapshot_list (const char *state_dir, json_t **out, avm_error_t *err)
{
  _cleanup_free_ char *store = avm_snapshot_store (state_dir);
  if (!store)
    return avm_error_sys (err, ENOMEM, "snapshots");
  _cleanup_json_ json_t *list = json_array ();
  if (!list)
    return avm_error_sys (err, ENOMEM, "snapshots");
  _cleanup_closedir_ DIR *d = opendir (store);
  if (!d && errno != ENOENT)
    return avm_error_sys (err, errno, "snapshots: %s", store);
  struct dirent *de;
  while (d && (de = readdir (d)))
    {
      if (de->d_name[0] == '.')
        continue;
      _cleanup_error_ avm_error_t e = NULL;
      json_t *m = NULL;
      if (avm_snapshot_load (state_dir, de->d_name, &m, &e) < 0)
        m = json_pack ("{s:s, s:s}", "name", de->d_name, "error", e ? e->msg : "?");
      if (!m || json_array_append_new (list, m) < 0)
        return avm_error_sys (err, ENOMEM, "snapshots");
    }
  size_t n = json_array_size (list);
  _cleanup_free_ json_t **v = calloc (n + 1, sizeof *v);
  if (!v)
    return avm_error_sys (err, ENOMEM, "snapshots");
  for (size_t i = 0; i < n; i++)
    v[i] = json_incref (json_array_get (list, i));
  qsort (v, n, sizeof *v, by_created);
  json_array_clear (list);
  for (size_t i = 0; i < n; i++)
    json_array_append_new (list, v[i]);
  *out = steal_pointer (&list);
  return 0;
}

int
avm_snapshot_remove_tree (const char *dir, avm_error_t *err)
{
  _cleanup_closedir_ DIR *d = opendir (dir);
  if (!d)
    return errno == ENOENT ? 0 : avm_error_sys (err, errno, "%s", dir);
  struct dirent *de;
  int fd = dirfd (d);
  while ((de = readdir (d)))
    {
      if (!strcmp (de->d_name, ".") || !strcmp (de->d_name, ".."))
        continue;
      if (unlinkat (fd, de->d_name, 0) < 0 && errno != ENOENT)
        {
          if (errno != EISDIR && errno != EPERM)
            return avm_error_sys (err, errno, "%s/%s", dir, de->d_name);
          _cleanup_free_ char *sub = avm_path_join (dir, de->d_name);
          int r = sub ? avm_snapshot_remove_tree (sub, err) : avm_error_sys (err, ENOMEM, "%s", dir);
          if (r < 0)
            return r;
        }
    }
  if (rmdir (dir) < 0 && errno != ENOENT)
    return avm_error_sys (err, errno, "%s", dir);
  return 0;
}

int
avm_snapshot_delete (const char *state_dir, const char *name, avm_error_t *err)
{
  _cleanup_json_ json_t *meta = NULL;
  int r;
  if ((r = avm_snapshot_name_check (name, err)) < 0)
    return r;
  _cleanup_free_ char *dir = avm_snapshot_dir (state_dir, name);
  _cleanup_free_ char *gone = avm_strdupf ("%s/snapshots/.%s.deleted", state_dir, name);
  if (!dir || !gone)
    return avm_error_sys (err, ENOMEM, "snapshot %s", name);
  struct stat st;
  if (lstat (dir, &st) < 0)
    {
      /* The same message as a restore's.  */
      if (errno == ENOENT)
        return avm_snapshot_load (state_dir, name, &meta, err);
      return avm_error_sys (err, errno, "snapshot %s: %s", name, dir);
    }
  if ((r = avm_snapshot_remove_tree (gone, err)) < 0)
    return r;
  if (rename (dir, gone) < 0)
    return avm_error_sys (err, errno, "snapshot %s: cannot rename %s", name, dir);
  return avm_snapshot_remove_tree (gone, err);
}

int
avm_snapshot_commit (const char *state_dir, const char *name, const char *staging, bool replace, avm_error_t *err)
{
  _cleanup_free_ char *dir = avm_snapshot_dir (state_dir, name);
  if (!dir)
    return avm_error_sys (err, ENOMEM, "snapshot %s", name);
  if (renameat2 (AT_FDCWD, staging, AT_FDCWD, dir, RENAME_NOREPLACE) == 0)
    return 0;
  if (errno != EEXIST || !replace)
    {
      if (errno == EEXIST || errno == ENOTEMPTY)
        return avm_error_fail (err, EEXIST, "snapshot %s exists; delete it first or save with --replace", name);
      return avm_error_sys (err, errno, "snapshot %s: cannot rename %s to %s", name, staging, dir);
    }
  /* Swap the new one in atomically, then remove the old one (now at the
     staging path).  */
  if (renameat2 (AT_FDCWD, staging, AT_FDCWD, dir, RENAME_EXCHANGE) < 0)
    return avm_error_sys (err, errno, "snapshot %s: cannot exchange %s and %s", name, staging, dir);
  return avm_snapshot_remove_tree (staging, err);
}
