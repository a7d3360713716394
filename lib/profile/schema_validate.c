/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device-profile validator: walks a profile against the schema table
 * (schema.c), fills in defaults, normalises sizes and enum lists, and reports
 * every problem as "FILE: PATH: problem".  The key reference
 * (avm_schema_print_keys) is here too: it names paths and types in the
 * validator's words.
 */
#include "profile/schema.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/strbuf.h"
#include "util/strfmt.h"
#include "util/suggest.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool
avm_strv_has (const char *const *v, const char *s)
{
  for (; v && *v; v++)
    if (streq (*v, s))
      return true;
  return false;
}

static size_t
avm_strv_count (const char *const *v)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

struct vctx
{
  const char *file;
  avm_error_t *err;
  int nerr;
  bool partial; /* a fragment (file with extends, patch, --set): no required keys, no defaults, null deletes */
};

/* Where a value is: a chain of keys and indexes up to the root, kept on the
   stack while the validation descends and written out only for an error
   (a string per node visited was a fifth of a dry run's instructions).  */
struct vpath
{
  const struct vpath *up;
  const char *key;  /* an object key, or NULL: ... */
  size_t idx;       /* ... an array index */
  const char *text; /* the root: the path the fragment is at ("" for a file) */
};

static bool valid_name (const char *s, bool dots);

static void
path_write (FILE *f, const struct vpath *p)
{
  if (!p) /* (only the root has no parent, and it has a text) */
    return;
  if (p->text)
    {
      fputs (p->text, f);
      return;
    }
  path_write (f, p->up);
  if (!p->key)
    fprintf (f, "[%zu]", p->idx);
  else if (ftell (f) == 0)
    fputs (p->key, f);
  else
    fprintf (f, valid_name (p->key, false) ? ".%s" : "[\"%s\"]", p->key);
}

static char *
path_string (const struct vpath *p)
{
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&out, &len);
  if (!f)
    return NULL;
  path_write (f, p);
  if (fclose (f) != 0)
    {
      free (out);
      return NULL;
    }
  return out;
}

static void __attribute__ ((format (printf, 3, 4)))
verror (struct vctx *c, const struct vpath *path, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  _cleanup_free_ char *msg = avm_vstrdupf (fmt, ap);
  va_end (ap);
  c->nerr++;
  if (c->nerr <= 20)
    {
      _cleanup_free_ char *where = path_string (path);
      avm_error_append (c->err, AVM_EXIT_USAGE, EINVAL, "%s: %s: %s", c->file, where && *where ? where : "(top level)",
                        msg ? msg : "invalid");
    }
  else if (c->nerr == 21)
    avm_error_append (c->err, AVM_EXIT_USAGE, EINVAL, "%s: more problems not shown", c->file);
}

static bool
valid_name (const char *s, bool dots)
{
  size_t n = 0;
  for (; s[n]; n++)
    if (!isalnum ((unsigned char) s[n]) && s[n] != '_' && s[n] != '-' && !(dots && s[n] == '.'))
      return false;
  return n > 0 && n <= (dots ? 128 : 63);
}

static bool
has_control (const char *s)
{
  for (; *s; s++)
    if ((unsigned char) *s < 0x20 || *s == 0x7f)
      return true;
  return false;
}

/* BASE.KEY, written as a validation error writes it (for the key list).  */
static char *
join_path (const char *base, const char *key)
{
  const struct vpath top = { .text = base }, p = { .up = &top, .key = key };
  return path_string (&p);
}

static const char *
type_name (const struct avm_skey *s)
{
  switch (s->type)
    {
    case AVM_ST_OBJECT:
    case AVM_ST_MAP:
      return "object";
    case AVM_ST_ARRAY:
      return "array";
    case AVM_ST_STRING:
      return "string";
    case AVM_ST_INT:
      return "integer";
    case AVM_ST_BOOL:
      return "boolean";
    case AVM_ST_ENUM:
      return "string";
    case AVM_ST_ENUM_LIST:
      return "string or array of strings";
    case AVM_ST_SIZE_MIB:
      return "size";
    }
  return "?";
}

static void
enum_expected (const struct avm_skey *s, char *buf, size_t len)
{
  struct avm_strbuf b = { 0 };
  for (size_t i = 0; s->values[i]; i++)
    avm_strbuf_join (&b, ", ", s->values[i]);
  _cleanup_free_ char *text = avm_strbuf_steal (&b);
  snprintf (buf, len, "%s", text ? text : "");
}

/* Parse "4G", "512M", "4096MiB", "1T" into MiB.  */
static bool
parse_size_mib (const char *s, long long *out)
{
  char *end;
  errno = 0;
  long long v = strtoll (s, &end, 10);
  if (errno || end == s || v < 0)
    return false;
  long long mul;
  if (!*end || !strcasecmp (end, "M") || !strcasecmp (end, "MiB") || !strcasecmp (end, "MB"))
    mul = 1;
  else if (!strcasecmp (end, "G") || !strcasecmp (end, "GiB") || !strcasecmp (end, "GB"))
    mul = 1024;
  else if (!strcasecmp (end, "T") || !strcasecmp (end, "TiB") || !strcasecmp (end, "TB"))
    mul = 1024 * 1024;
  else
    return false;
  if (v > (1LL << 40) / mul)
    return false;
  *out = v * mul;
  return true;
}

static void validate_node (struct vctx *c, json_t *parent, const char *key, size_t idx, json_t *v,
                           const struct avm_skey *s, const struct vpath *path);

static void
validate_string (struct vctx *c, const struct avm_skey *s, json_t *v, const struct vpath *path)
{
  const char *str = json_string_value (v);
  if ((s->flags & AVM_SF_NOTEMPTY) && !*str)
    verror (c, path, "must not be empty");
  else if ((s->flags & AVM_SF_NAME) && !valid_name (str, false))
    verror (c, path, "expected a name of letters, digits, '_' and '-' (at most 63), got \"%s\"", str);
  else if ((s->flags & AVM_SF_PORTNAME) && (!valid_name (str, true) || *str == '.' || strlen (str) > 63))
    verror (c, path, "expected a name of letters, digits, '_', '-' and '.' (not first; at most 63), got \"%s\"", str);
  else if (has_control (str))
    verror (c, path, "control characters are not allowed");
}

/* A key's default, JSON text in the schema table.  Most are a boolean, an
   integer or a plain string, made directly: parsing them was a sixth of a
   dry run's instructions.  */
json_t *
avm_schema_default (const struct avm_skey *k)
{
  if (!k->def)
    return NULL;
  const char *text = k->def;
  size_t len = strlen (text);
  if (streq (text, "true") || streq (text, "false"))
    return json_boolean (text[0] == 't');
  if (len >= 2 && text[0] == '"' && text[len - 1] == '"' && !memchr (text + 1, '\\', len - 2)
      && !memchr (text + 1, '"', len - 2))
    return json_stringn (text + 1, len - 2);
  char *end;
  errno = 0;
  long long n = strtoll (text, &end, 10);
  const char *digits = text + (text[0] == '-');
  if (len && !*end && !errno && *digits >= '0' && *digits <= '9' && (digits[0] != '0' || !digits[1]))
    return json_integer (n); /* (JSON has no leading zeros: "007" is left to jansson to refuse) */
  return json_loads (text, JSON_DECODE_ANY, NULL);
}

static void
validate_object (struct vctx *c, json_t *v, const struct avm_skey *s, const struct vpath *path)
{
  const char *key;
  json_t *val;
  void *tmp;

  if (!s->sub) /* free-form object (merge patches): checked when applied */
    return;
  json_object_foreach_safe (v, tmp, key, val)
    {
      const struct avm_skey *k = avm_skey_child (s, key);
      const struct vpath here = { .up = path, .key = key }, *p = &here;
      if (!k)
        {
          const char *names[64];
          size_t n = 0;
          for (const struct avm_skey *i = s->sub; i->name && n < 64; i++)
            names[n++] = i->name;
          const char *hint = avm_closest (key, names, n);
          if (hint)
            verror (c, p, "unknown key; did you mean \"%s\"?", hint);
          else
            verror (c, p, "unknown key (see avm-profile(5) or `avm profiles keys`)");
          continue;
        }
      if (!(c->partial && json_is_null (val)))
        validate_node (c, v, key, 0, val, k, p);
    }
  if (c->partial)
    return;
  /* Required keys and defaults.  */
  for (const struct avm_skey *k = s->sub; k->name; k++)
    {
      if (json_object_get (v, k->name))
        continue;
      if (k->flags & AVM_SF_REQUIRED)
        {
          const struct vpath p = { .up = path, .key = k->name };
          verror (c, &p, "required key is missing");
          continue;
        }
      if (k->def)
        {
          json_t *d = avm_schema_default (k);
          if (d)
            json_object_set_new (v, k->name, d);
        }
      else if (k->type == AVM_ST_OBJECT && k->sub)
        {
          /* Materialise nested objects so that their defaults appear.  */
          json_t *o = json_object ();
          json_object_set_new (v, k->name, o);
          const struct vpath p = { .up = path, .key = k->name };
          validate_object (c, o, k, &p);
        }
    }
}

static void
validate_node (struct vctx *c, json_t *parent, const char *key, size_t idx, json_t *v, const struct avm_skey *s,
               const struct vpath *path)
{
  _cleanup_free_ char *got = NULL;
  char buf[256];

  switch (s->type)
    {
    case AVM_ST_OBJECT:
      if (!json_is_object (v))
        goto type_error;
      validate_object (c, v, s, path);
      return;

    case AVM_ST_MAP:
      {
        const char *k;
        json_t *val;
        if (!json_is_object (v))
          goto type_error;
        json_object_foreach (v, k, val)
          {
            const struct vpath here = { .up = path, .key = k }, *p = &here;
            if (!valid_name (k, (s->flags & AVM_SF_PROPKEY) != 0))
              {
                verror (c, p, "invalid key name \"%s\" (letters, digits, '_', '-'%s)", k,
                        (s->flags & AVM_SF_PROPKEY) ? ", '.'" : "");
                continue;
              }
            if (!(c->partial && json_is_null (val)))
              validate_node (c, v, k, 0, val, &s->sub[0], p);
          }
        return;
      }

    case AVM_ST_ARRAY:
      {
        size_t i;
        json_t *el;
        if (!json_is_array (v))
          goto type_error;
        if ((s->flags & AVM_SF_NOTEMPTY) && json_array_size (v) == 0)
          verror (c, path, "must not be empty");
        json_array_foreach (v, i, el)
          {
            const struct vpath p = { .up = path, .idx = i };
            validate_node (c, v, NULL, i, el, &s->sub[0], &p);
          }
        return;
      }

    case AVM_ST_STRING:
      if (!json_is_string (v))
        goto type_error;
      validate_string (c, s, v, path);
      return;

    case AVM_ST_INT:
      if (!json_is_integer (v) || json_integer_value (v) < s->min || json_integer_value (v) > s->max)
        {
          got = avm_json_brief (v);
          verror (c, path, "expected integer %lld..%lld, got %s", s->min, s->max, got);
        }
      return;

    case AVM_ST_BOOL:
      if (!json_is_boolean (v))
        goto type_error;
      return;

    case AVM_ST_ENUM:
      if (!json_is_string (v) || !avm_strv_has (s->values, json_string_value (v)))
        {
          enum_expected (s, buf, sizeof buf);
          got = avm_json_brief (v);
          const char *hint
              = json_is_string (v) ? avm_closest (json_string_value (v), s->values, avm_strv_count (s->values)) : NULL;
          if (hint)
            verror (c, path, "expected one of %s, got %s; did you mean \"%s\"?", buf, got, hint);
          else
            verror (c, path, "expected one of %s, got %s", buf, got);
        }
      return;

    case AVM_ST_ENUM_LIST:
      {
        if (json_is_string (v))
          {
            json_t *arr = json_array ();
            json_array_append (arr, v);
            if (key)
              json_object_set_new (parent, key, arr);
            else
              json_array_set_new (parent, idx, arr);
            v = arr;
          }
        if (!json_is_array (v) || json_array_size (v) == 0)
          goto type_error;
        size_t i;
        json_t *el;
        json_array_foreach (v, i, el)
          if (!json_is_string (el) || !avm_strv_has (s->values, json_string_value (el)))
            {
              enum_expected (s, buf, sizeof buf);
              got = avm_json_brief (el);
              verror (c, path, "expected one or more of %s, got %s", buf, got);
              return;
            }
        return;
      }

    case AVM_ST_SIZE_MIB:
      {
        long long mib = -1;
        if (json_is_integer (v))
          mib = json_integer_value (v);
        else if (!json_is_string (v) || !parse_size_mib (json_string_value (v), &mib))
          mib = -1;
        if (mib < s->min || mib > s->max)
          {
            got = avm_json_brief (v);
            verror (c, path, "expected a size of %lldM..%lldM (integer MiB or \"4G\"), got %s", s->min, s->max, got);
            return;
          }
        json_t *n = json_integer (mib);
        if (key)
          json_object_set_new (parent, key, n);
        else
          json_array_set_new (parent, idx, n);
        return;
      }
    }
  return;

type_error:
  got = avm_json_brief (v);
  verror (c, path, "expected %s, got %s", type_name (s), got);
}

int
avm_schema_validate (json_t *root_json, const char *file, avm_error_t *err)
{
  struct vctx c = { .file = file, .err = err };
  if (!json_is_object (root_json))
    {
      _cleanup_free_ char *got = avm_json_brief (root_json);
      return avm_error_input (err, "%s: expected a JSON object at the top level, got %s", file, got);
    }
  const struct vpath top = { .text = "" };
  validate_object (&c, root_json, avm_profile_schema (), &top);
  return c.nerr ? -EINVAL : 0;
}

int
avm_schema_validate_fragment (json_t *v, const struct avm_skey *s, const char *file, const char *path, avm_error_t *err)
{
  struct vctx c = { .file = file, .err = err, .partial = true };
  const struct vpath top = { .text = path };
  if (json_is_null (v))
    return 0;
  if (s->type == AVM_ST_OBJECT && !json_is_object (v))
    {
      _cleanup_free_ char *got = avm_json_brief (v);
      verror (&c, &top, "expected object, got %s", got);
      return -EINVAL;
    }
  if (s->type == AVM_ST_OBJECT)
    validate_object (&c, v, s, &top);
  else
    {
      /* Leaves may be normalised in place: wrap in a holder.  */
      json_t *holder = json_array ();
      json_array_append (holder, v);
      validate_node (&c, holder, NULL, 0, v, s, &top);
      json_decref (holder);
    }
  return c.nerr ? -EINVAL : 0;
}

/* ---------------------------------------------------------------- */

static void
print_keys (FILE *out, const struct avm_skey *s, const char *path, bool docs)
{
  for (const struct avm_skey *k = s->sub; k && k->name; k++)
    {
      _cleanup_free_ char *p = join_path (path, k->name);
      if (!p)
        return;
      char typebuf[256];
      const char *t = type_name (k);
      if (k->type == AVM_ST_ENUM || k->type == AVM_ST_ENUM_LIST)
        {
          char vals[200];
          enum_expected (k, vals, sizeof vals);
          snprintf (typebuf, sizeof typebuf, "%s (%s)", k->type == AVM_ST_ENUM ? "enum" : "enum list", vals);
          t = typebuf;
        }
      else if (k->type == AVM_ST_INT)
        {
          snprintf (typebuf, sizeof typebuf, "integer %lld..%lld", k->min, k->max);
          t = typebuf;
        }
      if (docs)
        fprintf (out, "%s\n    %s%s%s%s\n    %s\n", p, t, k->def ? ", default " : "", k->def ? k->def : "",
                 (k->flags & AVM_SF_REQUIRED) ? ", required" : "", k->doc);
      else
        fprintf (out, "%s\n", p);
      const struct avm_skey *sub = k;
      _cleanup_free_ char *subpath = NULL;
      while (sub->type == AVM_ST_ARRAY || sub->type == AVM_ST_MAP)
        {
          char *np = NULL;
          if (asprintf (&np, "%s%s", subpath ? subpath : p, sub->type == AVM_ST_ARRAY ? "[]" : ".*") < 0)
            return;
          free (subpath);
          subpath = np;
          sub = &sub->sub[0];
        }
      if (sub->type == AVM_ST_OBJECT && sub->sub)
        print_keys (out, sub, subpath ? subpath : p, docs);
    }
}

void
avm_schema_print_keys (FILE *out, bool with_docs)
{
  print_keys (out, avm_profile_schema (), "", with_docs);
}
