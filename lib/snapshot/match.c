/* SPDX-License-Identifier: Apache-2.0 */
/* What a plan records in a snapshot's metadata, and whether a snapshot
   fits a plan (snapshot.h).  */
#include "snapshot/snapshot.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/strfmt.h"
#include "util/strv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static json_t *
mtime_json (const struct stat *st)
{
  char buf[48];
  snprintf (buf, sizeof buf, "%lld.%09ld", (long long) st->st_mtim.tv_sec, (long) st->st_mtim.tv_nsec);
  return json_string (buf);
}

/* Line L of the QEMU command line, as an array of its arguments.  */
static json_t *
line_json (const struct avm_plan *plan, size_t l)
{
  size_t end = l + 1 < plan->n_lines ? plan->qemu_lines[l + 1] : avm_strv_length (plan->qemu_argv);
  json_t *a = json_array ();
  for (size_t i = plan->qemu_lines[l]; a && i < end; i++)
    if (json_array_append_new (a, json_string (plan->qemu_argv[i])) < 0)
      {
        json_decref (a);
        return NULL;
      }
  return a;
}

/* Lines of the QEMU command line that a snapshot must match: all but the
   binary (compared on its own), the disks' (their images are), the RAM
   file's of snapshot.fast (a restore maps the snapshot's; the size is in
   -m, the kind in -machine) and -incoming.  */
static bool
line_compared (const struct avm_plan *plan, size_t l)
{
  if (l == 0 || (plan->ram_line && l == plan->ram_line))
    return false;
  for (size_t i = 0; i < plan->ndisks; i++)
    if (plan->disks[i].line == l)
      return false;
  const char *opt = plan->qemu_argv[plan->qemu_lines[l]];
  return strcmp (opt, "-incoming") != 0;
}

static json_t *
devices_json (const struct avm_plan *plan)
{
  json_t *a = json_array ();
  for (size_t l = 0; a && l < plan->n_lines; l++)
    if (line_compared (plan, l) && json_array_append_new (a, line_json (plan, l)) < 0)
      {
        json_decref (a);
        return NULL;
      }
  return a;
}

int
avm_snapshot_plan_facts (const struct avm_plan *plan, json_t **out, avm_error_t *err)
{
  const char *binary = plan->qemu_argv[0];
  struct stat st;
  if (stat (binary, &st) < 0)
    return avm_error_sys (err, errno, "snapshot: QEMU binary %s", binary);
  _cleanup_json_ json_t *qemu = json_pack ("{s:s, s:s, s:I, s:o}", "binary", binary, "version", plan->caps->version,
                                           "size", (json_int_t) st.st_size, "mtime", mtime_json (&st));
  _cleanup_json_ json_t *disks = json_array ();
  _cleanup_json_ json_t *devices = devices_json (plan);
  if (!qemu || !disks || !devices)
    return avm_error_sys (err, ENOMEM, "snapshot");
  for (size_t i = 0; i < plan->ndisks; i++)
    {
      const struct avm_plan_disk *d = &plan->disks[i];
      if (stat (d->path, &st) < 0)
        return avm_error_sys (err, errno, "snapshot: disk %s: %s", d->name, d->path);
      json_t *o = json_pack ("{s:s, s:s, s:s, s:b, s:b, s:I, s:o}", "name", d->name, "path", d->path, "format",
                             d->format, "snapshot", d->snapshot, "readonly", d->readonly, "size",
                             (json_int_t) st.st_size, "mtime", mtime_json (&st));
      if (!o || json_array_append_new (disks, o) < 0)
        return avm_error_sys (err, ENOMEM, "snapshot");
    }
  json_t *sets = json_array ();
  for (size_t i = 0; sets && plan->sets && plan->sets[i]; i++)
    if (json_array_append_new (sets, json_string (plan->sets[i])) < 0)
      {
        json_decref (sets);
        sets = NULL;
      }
  json_t *f = sets
                  ? json_pack ("{s:s, s:s, s:i, s:O, s:o, s:s?, s:O, s:O, s:O}", "profile", plan->profile,
                               "profile_path", plan->profile_path, "instance", plan->instance, "options", plan->options,
                               "sets", sets, "accel", plan->accel, "qemu", qemu, "devices", devices, "disks", disks)
                  : NULL;
  if (!f)
    return avm_error_sys (err, ENOMEM, "snapshot");
  *out = f;
  return 0;
}

static char *
line_text (json_t *line)
{
  size_t i;
  json_t *a;
  char *s = strdup ("");
  json_array_foreach (line, i, a)
    {
      char *n = s ? avm_strdupf ("%s%s%s", s, i ? " " : "", json_string_value (a) ?: "?") : NULL;
      free (s);
      s = n;
    }
  return s;
}

#define STALE(fmt, ...)                                                                                                \
  avm_error_fail (err, ESTALE, "snapshot %s " fmt "; save it again from a platform started as now", name, __VA_ARGS__)

static int
match_qemu (const char *name, json_t *was, json_t *now, avm_error_t *err)
{
  const char *keys[] = { "binary", "version", "size", "mtime" };
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    {
      json_t *a = json_object_get (was, keys[i]), *b = json_object_get (now, keys[i]);
      if (json_equal (a, b))
        continue;
      _cleanup_free_ char *sa = avm_json_brief (a), *sb = avm_json_brief (b);
      return STALE ("was saved with QEMU %s %s; this plan's is %s", keys[i], sa ? sa : "?", sb ? sb : "?");
    }
  return 0;
}

static int
match_disks (const char *name, json_t *was, json_t *now, avm_error_t *err)
{
  size_t i;
  json_t *d;
  json_array_foreach (now, i, d)
    {
      const char *dn = json_string_value (json_object_get (d, "name"));
      json_t *w = NULL, *x;
      size_t j;
      json_array_foreach (was, j, x)
        if (!strcmp (json_string_value (json_object_get (x, "name")) ?: "", dn))
          w = x;
      if (!w)
        return STALE ("has no disk %s (this plan's disks[%zu])", dn, i);
      const char *keys[] = { "path", "format", "readonly", "size", "mtime" };
      /* A disk written in place has a whole copy in the snapshot: its image
         may change.  */
      bool whole = !json_is_true (json_object_get (w, "snapshot")) && !json_is_true (json_object_get (w, "readonly"));
      for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        {
          if (whole && k >= 3)
            break;
          json_t *a = json_object_get (w, keys[k]), *b = json_object_get (d, keys[k]);
          if (json_equal (a, b))
            continue;
          _cleanup_free_ char *sa = avm_json_brief (a), *sb = avm_json_brief (b);
          if (k >= 3)
            return STALE ("was saved with disk %s's image %s at %s %s; it is now %s (the image changed)", dn,
                          json_string_value (json_object_get (d, "path")), keys[k], sa ? sa : "?", sb ? sb : "?");
          return STALE ("was saved with disk %s's %s %s; this plan's is %s", dn, keys[k], sa ? sa : "?", sb ? sb : "?");
        }
    }
  if (json_array_size (was) != json_array_size (now))
    return STALE ("has %zu disks; this plan has %zu", json_array_size (was), json_array_size (now));
  return 0;
}

static int
match_devices (const char *name, json_t *was, json_t *now, avm_error_t *err)
{
  size_t nw = json_array_size (was), nn = json_array_size (now);
  for (size_t i = 0; i < nw || i < nn; i++)
    {
      json_t *a = json_array_get (was, i), *b = json_array_get (now, i);
      if (a && b && json_equal (a, b))
        continue;
      _cleanup_free_ char *ta = a ? line_text (a) : NULL, *tb = b ? line_text (b) : NULL;
      if (!a)
        return STALE ("has no QEMU line %s (this plan's devices differ)", tb ? tb : "?");
      if (!b)
        return STALE ("has the QEMU line %s, which this plan has not (its devices differ)", ta ? ta : "?");
      return STALE ("has the QEMU line %s where this plan has %s", ta ? ta : "?", tb ? tb : "?");
    }
  return 0;
}

int
avm_snapshot_match (json_t *meta, const struct avm_plan *plan, avm_error_t *err)
{
  const char *name = json_string_value (json_object_get (meta, "name")) ?: "?";
  _cleanup_json_ json_t *now = NULL;
  int r;
  if ((r = avm_snapshot_plan_facts (plan, &now, err)) < 0)
    return r;
  const char *was_profile = json_string_value (json_object_get (meta, "profile")) ?: "?";
  if (strcmp (was_profile, plan->profile))
    return STALE ("was saved from profile %s; this plan's is %s", was_profile, plan->profile);
  json_int_t inst = json_integer_value (json_object_get (meta, "instance"));
  if (inst != plan->instance)
    return STALE ("belongs to instance %lld; this is instance %d", (long long) inst, plan->instance);
  if ((r = match_qemu (name, json_object_get (meta, "qemu"), json_object_get (now, "qemu"), err)) < 0)
    return r;
  json_t *wa = json_object_get (meta, "accel"), *na = json_object_get (now, "accel");
  if (!json_equal (wa, na))
    {
      _cleanup_free_ char *sa = avm_json_brief (wa), *sb = avm_json_brief (na);
      return STALE ("was saved under accelerator %s; this plan's is %s", sa ? sa : "?", sb ? sb : "?");
    }
  if ((r = match_devices (name, json_object_get (meta, "devices"), json_object_get (now, "devices"), err)) < 0)
    return r;
  return match_disks (name, json_object_get (meta, "disks"), json_object_get (now, "disks"), err);
}
