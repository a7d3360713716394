/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QEMU capabilities: the record (struct avm_qemu_caps), its queries and
 * its JSON form, i.e. recorded capability files.  The help text parsers are
 * in caps_parse.c, probing a binary in caps_probe.c, the per-binary cache
 * in caps_cache.c.
 *
 * Recorded files (--caps FILE; tests/data/ holds some) are JSON
 * (AVM_CAPS_FORMAT 1); cache entries hold the same information in a line
 * format of avm's own (see cache_text in caps_cache.c), with the identity.
 * JSON written pretty-printed (two-space indent), keys in this order,
 * every array sorted in strcmp order without duplicates, so a recorded
 * file diffs well in review:
 *
 *   {
 *     "format": 1,
 *     "binary": "/usr/bin/qemu-system-x86_64",
 *     "version": "7.2.22",
 *     "package": "Debian 1:7.2+dfsg-7+deb12u18+b3",    (or null)
 *     "devices": ["ac97", ...],        -device help names (not aliases)
 *     "displays": ["curses", ...],     -display help
 *     "machines": ["microvm", ...],    -machine help, aliases included
 *     "accels": ["kvm", "tcg"],        -accel help
 *     "audiodevs": ["alsa", ...],      -audiodev help
 *   }
 *
 * A recorded file may omit "package" and may carry an "identity" (ignored);
 * unknown keys are ignored.  Arrays that are not sorted are sorted on load.
 */
#include "qemu/caps.h"
#include "qemu/caps_internal.h"
#include "util/cleanup.h"
#include "util/analyzer.h"
#include "util/fs.h"
#include "util/strv.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* String vectors: sorted, unique, looked up with bsearch.  */

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

void
avm_caps_sort_unique (char **v)
{
  size_t n = avm_strv_length (v), w = 0;

  if (n < 2)
    return;
  qsort (v, n, sizeof *v, cmp_str);
  for (size_t i = 0; i < n; i++)
    {
      if (w > 0 && streq (v[w - 1], v[i]))
        free (v[i]);
      else
        v[w++] = v[i];
    }
  v[w] = NULL;
}

bool
avm_caps_sorted_unique (char *const *v)
{
  for (size_t i = 1; v[0] && v[i]; i++)
    if (strcmp (v[i - 1], v[i]) >= 0)
      return false;
  return true;
}

static bool
strv_has (char *const *v, const char *name)
{
  size_t n = avm_strv_length (v);

  if (!n || !name)
    return false;
  return bsearch (&name, v, n, sizeof *v, cmp_str) != NULL;
}

void
avm_caps_set_list (char ***field, char **v)
{
  avm_strv_free (*field);
  *field = v;
}

/* ------------------------------------------------------------------ */
/* Queries.  */

bool
avm_qemu_caps_has_device (const struct avm_qemu_caps *caps, const char *name)
{
  return strv_has (caps->devices, name);
}

bool
avm_qemu_caps_has_display (const struct avm_qemu_caps *caps, const char *name)
{
  return strv_has (caps->displays, name);
}

bool
avm_qemu_caps_has_machine (const struct avm_qemu_caps *caps, const char *name)
{
  return strv_has (caps->machines, name);
}

bool
avm_qemu_caps_has_accel (const struct avm_qemu_caps *caps, const char *name)
{
  return strv_has (caps->accels, name);
}

bool
avm_qemu_caps_has_audiodev (const struct avm_qemu_caps *caps, const char *name)
{
  return strv_has (caps->audiodevs, name);
}

bool
avm_qemu_caps_at_least (const struct avm_qemu_caps *caps, int major, int minor)
{
  return caps->major > major || (caps->major == major && caps->minor >= minor);
}

void
avm_qemu_caps_free (struct avm_qemu_caps *caps)
{
  if (!caps)
    return;
  free (caps->binary);
  free (caps->version);
  free (caps->package);
  avm_strv_free (caps->devices);
  avm_strv_free (caps->displays);
  avm_strv_free (caps->machines);
  avm_strv_free (caps->accels);
  avm_strv_free (caps->audiodevs);
  free (caps->source_path);
  free (caps);
}

/* ------------------------------------------------------------------ */
/* JSON.  */

const struct avm_caps_list avm_caps_lists[AVM_CAPS_N_LISTS] = {
  { "devices", offsetof (struct avm_qemu_caps, devices) },
  { "displays", offsetof (struct avm_qemu_caps, displays) },
  { "machines", offsetof (struct avm_qemu_caps, machines) },
  { "accels", offsetof (struct avm_qemu_caps, accels) },
  { "audiodevs", offsetof (struct avm_qemu_caps, audiodevs) },
};

json_t *
avm_qemu_caps_to_json (const struct avm_qemu_caps *caps)
{
  json_t *o = json_object ();
  int r = 0;

  if (!o)
    return NULL;
  r |= json_object_set_new (o, "format", json_integer (AVM_CAPS_FORMAT));
  r |= json_object_set_new (o, "binary", caps->binary ? json_string (caps->binary) : json_null ());
  r |= json_object_set_new (o, "version", caps->version ? json_string (caps->version) : json_null ());
  r |= json_object_set_new (o, "package", caps->package ? json_string (caps->package) : json_null ());
  for (size_t i = 0; i < ARRAY_SIZE (avm_caps_lists); i++)
    {
      char **v = *LIST_FIELD (caps, i);
      json_t *a = json_array ();
      for (size_t j = 0; a && v && v[j]; j++)
        r |= json_array_append_new (a, json_string (v[j]));
      r |= json_object_set_new (o, avm_caps_lists[i].key, a);
    }
  if (r)
    {
      json_decref (o);
      return NULL;
    }
  return o;
}

/* Serialised form, as written to cache and recorded files.  */
static char *
dump_json (json_t *o)
{
  char *s = json_dumps (o, JSON_INDENT (2)), *out = NULL;
  if (s && asprintf (&out, "%s\n", s) < 0)
    out = NULL;
  free (s);
  return out;
}

/* make lint: false positive: v[i] is freed by V's _cleanup_strv_ (avm_strv_freep
   in strv.c, which the analyzer does not see into).  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-malloc-leak")
static int
json_strv (json_t *root, const char *key, char ***out, const char *path, avm_error_t *err)
{
  json_t *a = json_object_get (root, key), *s;
  size_t i;

  if (!json_is_array (a))
    return avm_error_input (err, "%s: %s: expected array of strings", path, key);
  _cleanup_strv_ char **v = calloc (json_array_size (a) + 1, sizeof *v);
  if (!v)
    return avm_error_sys (err, ENOMEM, "reading %s", path);
  json_array_foreach (a, i, s)
    {
      if (!json_is_string (s))
        return avm_error_input (err, "%s: %s: expected array of strings", path, key);
      const char *str = json_string_value (s);
      size_t len = json_string_length (s);
      if (len == 0 || strlen (str) != len)
        return avm_error_input (err, "%s: %s[%zu]: expected a non-empty name", path, key, i);
      v[i] = strndup (str, len);
      if (!v[i])
        return avm_error_sys (err, ENOMEM, "reading %s", path);
    }
  if (!avm_caps_sorted_unique (v))
    avm_caps_sort_unique (v);
  avm_caps_set_list (out, steal_pointer (&v));
  return 0;
}
AVM_ANALYZER_IGNORE_END

/* Capabilities from the JSON object ROOT read from PATH (messages name
   PATH and the key at fault).  */
/* make lint: false positives: the fields are freed by CAPS's _cleanup_caps_, and
   json_strv sets caps->devices (through LIST_FIELD's offset) whenever it
   returns 0; the analyzer follows neither.  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-malloc-leak")
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-null-dereference")
static int
caps_from_json (json_t *root, const char *path, struct avm_qemu_caps **out, avm_error_t *err)
{
  _cleanup_caps_ struct avm_qemu_caps *caps = NULL;
  json_t *j;
  int r;

  if (!json_is_object (root))
    return avm_error_input (err, "%s: expected a JSON object", path);
  j = json_object_get (root, "format");
  if (!json_is_integer (j))
    return avm_error_input (err, "%s: format: expected integer %d", path, AVM_CAPS_FORMAT);
  if (json_integer_value (j) != AVM_CAPS_FORMAT)
    return avm_error_input (err, "%s: format: unsupported format %lld (expected %d)", path,
                            (long long) json_integer_value (j), AVM_CAPS_FORMAT);

  caps = calloc (1, sizeof *caps);
  if (!caps)
    return avm_error_sys (err, ENOMEM, "reading %s", path);

  j = json_object_get (root, "binary");
  if (!json_is_string (j) || json_string_length (j) == 0)
    return avm_error_input (err, "%s: binary: expected string", path);
  caps->binary = strdup (json_string_value (j));

  j = json_object_get (root, "version");
  if (!json_is_string (j))
    return avm_error_input (err, "%s: version: expected string", path);
  caps->version = strdup (json_string_value (j));
  if (!caps->binary || !caps->version)
    return avm_error_sys (err, ENOMEM, "reading %s", path);
  if (!avm_caps_split_version (caps->version, &caps->major, &caps->minor, &caps->micro))
    return avm_error_input (err, "%s: version: expected \"MAJOR.MINOR[.MICRO]\", got \"%s\"", path, caps->version);

  j = json_object_get (root, "package");
  if (json_is_string (j))
    {
      caps->package = strdup (json_string_value (j));
      if (!caps->package)
        return avm_error_sys (err, ENOMEM, "reading %s", path);
    }
  else if (j && !json_is_null (j))
    return avm_error_input (err, "%s: package: expected string or null", path);

  for (size_t i = 0; i < ARRAY_SIZE (avm_caps_lists); i++)
    {
      r = json_strv (root, avm_caps_lists[i].key, LIST_FIELD (caps, i), path, err);
      if (r < 0)
        return r;
    }
  if (!caps->devices[0])
    return avm_error_input (err, "%s: devices: expected at least one device", path);

  caps->source_path = strdup (path);
  if (!caps->source_path)
    return avm_error_sys (err, ENOMEM, "reading %s", path);
  *out = steal_pointer (&caps);
  return 0;
}
AVM_ANALYZER_IGNORE_END
AVM_ANALYZER_IGNORE_END

int
avm_qemu_caps_load_file (const char *path, struct avm_qemu_caps **out, avm_error_t *err)
{
  _cleanup_free_ char *text = NULL;
  size_t len;
  json_error_t jerr;
  int r;

  r = avm_read_file (path, AVM_CAPS_MAX_SIZE, "a QEMU capabilities file", &text, &len, err);
  /* A file named (--caps) that is not there is bad input, not a failure
     of the host.  */
  if (r == -ENOENT || r == -ENOTDIR || r == -ELOOP)
    {
      avm_error_input (err, "QEMU capabilities file %s: %s", path, strerror (-r));
      if (err && *err)
        (*err)->code = -r; /* the errno stays the one that happened */
      return r;
    }
  if (r < 0)
    return r;
  json_t *root = json_loadb (text, len, 0, &jerr);
  if (!root)
    return avm_error_input (err, "%s:%d:%d: malformed JSON: %s", path, jerr.line, jerr.column, jerr.text);
  r = caps_from_json (root, path, out, err);
  json_decref (root);
  if (r < 0)
    return r;
  (*out)->source = AVM_CAPS_RECORDED;
  return 0;
}

/* Serialise CAPS in the cache/recorded format (pretty-printed, trailing
   newline); exposed for recording capability files.  */
char *
avm_qemu_caps_dump (const struct avm_qemu_caps *caps)
{
  json_t *o = avm_qemu_caps_to_json (caps);
  char *s = o ? dump_json (o) : NULL;
  json_decref (o);
  return s;
}
