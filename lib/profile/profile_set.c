/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --set PATH=VALUE overrides of a device profile: applying one to the
 * resolved JSON (checked against the schema) and naming the overrides in
 * the problems the final validation finds.  Loading and resolving the
 * profile is profile.c's job.
 */
#include "profile/profile.h"
#include "profile/schema.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/strbuf.h"
#include "util/suggest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --set ---------------------------------------------------------------- */

static json_t *
parse_set_value (const char *text, const struct avm_skey *s)
{
  if (streq (text, "null"))
    return json_null ();
  if (s->type == AVM_ST_STRING || s->type == AVM_ST_ENUM)
    return json_string (text);
  json_t *v = json_loads (text, JSON_DECODE_ANY, NULL);
  if (v && s->type == AVM_ST_ENUM_LIST && json_is_string (v))
    return v;
  return v ? v : json_string (text);
}

int
avm_profile_apply_set (json_t *root_json, const char *assignment, avm_error_t *err)
{
  const char *eq = strchr (assignment, '=');
  if (!eq || eq == assignment)
    return avm_error_input (err, "--set %s: expected PATH=VALUE (e.g. --set machine.accel=tcg)", assignment);
  /* JSON keys and strings are UTF-8: jansson refuses anything else (and
     json_object_set_new then releases the value it was given).  */
  json_t *utf8 = json_string (assignment);
  if (!utf8)
    return avm_error_input (err, "--set: not valid UTF-8 (or an embedded NUL)");
  json_decref (utf8);
  _cleanup_free_ char *path = strndup (assignment, eq - assignment);
  const char *value = eq + 1;
  if (!path)
    return avm_error_sys (err, ENOMEM, "--set");
  /* Inheritance and options are resolved before the overrides: setting
     them would change nothing, silently.  */
  size_t top = strcspn (path, ".[");
  if (top == strlen ("extends") && strncmp (path, "extends", top) == 0)
    return avm_error_input (err,
                            "--set %s: extends cannot be set on the command line (inheritance is resolved first); "
                            "write a profile that extends the one you want and pass it with -p",
                            assignment);
  if (top == strlen ("options") && strncmp (path, "options", top) == 0)
    return avm_error_input (err,
                            "--set %s: options cannot be changed on the command line (they are applied before "
                            "--set); choose a variant with --option NAME=CHOICE",
                            assignment);
  const struct avm_skey *s = avm_profile_schema ();
  json_t *node = root_json, *parent = NULL;
  char key[256], last_key[256] = "";
  long index = -1, last_index = -1;
  const char *p = path;
  _cleanup_free_ char *walked = strdup ("");
  if (!walked)
    return avm_error_sys (err, ENOMEM, "--set");

  for (;;)
    {
      int kind;
      /* Flat-key maps (boot properties): the rest of the path is one key.  */
      if (s->type == AVM_ST_MAP && (s->flags & AVM_SF_FLATKEYS) && *p == '.' && p[1])
        {
          snprintf (key, sizeof key, "%s", p + 1);
          p += strlen (p);
          kind = 1;
        }
      else
        kind = avm_json_path_next (&p, key, sizeof key, &index);
      if (kind < 0)
        return avm_error_input (err, "--set %s: malformed path near \"%s\"", assignment, p);
      if (kind == 0)
        break;
      const struct avm_skey *child = NULL;
      if (kind == 1)
        {
          if (s->type != AVM_ST_OBJECT && s->type != AVM_ST_MAP)
            return avm_error_input (err, "--set %s: %s is not an object", assignment, *walked ? walked : "(top)");
          child = avm_skey_child (s, key);
          if (!child)
            {
              const char *names[64];
              size_t n = 0;
              for (const struct avm_skey *i = s->sub; i && i->name && n < 64; i++)
                names[n++] = i->name;
              const char *hint = avm_closest (key, names, n);
              return avm_error_input (err, "--set %s: %s%s%s: unknown key%s%s%s", assignment, walked,
                                      *walked ? "." : "", key, hint ? "; did you mean \"" : "", hint ? hint : "",
                                      hint ? "\"?" : "");
            }
        }
      else
        {
          if (s->type != AVM_ST_ARRAY)
            return avm_error_input (err, "--set %s: %s is not an array", assignment, *walked ? walked : "(top)");
          child = &s->sub[0];
        }
      /* Descend, creating objects as needed (except for the last step).  */
      json_t *next = NULL;
      if (kind == 1)
        {
          if (!json_is_object (node))
            return avm_error_input (err, "--set %s: %s is not an object in this profile", assignment, walked);
          next = json_object_get (node, key);
          if (!next && *p && (child->type == AVM_ST_OBJECT || child->type == AVM_ST_MAP))
            {
              next = json_object ();
              if (json_object_set_new (node, key, next) < 0)
                return avm_error_sys (err, ENOMEM, "--set %s", assignment);
            }
        }
      else
        {
          if (!json_is_array (node) || (size_t) index >= json_array_size (node))
            return avm_error_input (err, "--set %s: %s has no element [%ld] (it has %zu)", assignment, walked, index,
                                    json_array_size (node));
          next = json_array_get (node, index);
        }
      char *nw = NULL;
      if (kind == 1 ? asprintf (&nw, "%s%s%s", walked, *walked ? "." : "", key) < 0
                    : asprintf (&nw, "%s[%ld]", walked, index) < 0)
        return avm_error_sys (err, ENOMEM, "--set");
      free (walked);
      walked = nw;
      parent = node;
      node = next;
      s = child;
      if (kind == 1)
        {
          snprintf (last_key, sizeof last_key, "%s", key);
          last_index = -1;
        }
      else
        {
          last_key[0] = '\0';
          last_index = index;
        }
      if (!node && *p && (s->type == AVM_ST_OBJECT || s->type == AVM_ST_MAP || s->type == AVM_ST_ARRAY))
        return avm_error_input (err, "--set %s: %s does not exist in this profile", assignment, walked);
    }
  if (!parent)
    return avm_error_input (err, "--set %s: empty path", assignment);

  json_t *v = parse_set_value (value, s);
  if (!v)
    return avm_error_sys (err, ENOMEM, "--set");
  _cleanup_free_ char *label = NULL;
  if (asprintf (&label, "--set %s", assignment) < 0)
    {
      json_decref (v);
      return avm_error_sys (err, ENOMEM, "--set");
    }
  int r = avm_schema_validate_fragment (v, s, label, walked, err);
  if (r < 0)
    {
      json_decref (v);
      return r;
    }
  if (json_is_null (v))
    {
      json_decref (v);
      if (last_index >= 0)
        return avm_error_input (err, "--set %s: array elements cannot be deleted", assignment);
      json_object_del (parent, last_key);
      return 0;
    }
  if ((last_index >= 0 ? json_array_set_new (parent, last_index, v) : json_object_set_new (parent, last_key, v)) < 0)
    return avm_error_sys (err, ENOMEM, "--set %s", assignment);
  return 0;
}

/* Whether KEY (KLEN bytes) and the --set path of ASSIGNMENT are the same
   key or one lies inside the other ("display.outputs[0]" and
   "display.outputs[0].xres").  */
static bool
key_overlaps (const char *key, size_t klen, const char *assignment)
{
  size_t plen = strcspn (assignment, "=");
  size_t n = klen < plen ? klen : plen;
  if (n == 0 || strncmp (key, assignment, n) != 0)
    return false;
  char next = klen < plen ? assignment[n] : klen > plen ? key[n] : '\0';
  return next == '\0' || next == '.' || next == '[';
}

void
avm_profile_blame_sets (const struct avm_profile *p, avm_error_t *err)
{
  if (!p || !p->sets || !p->sets[0] || !err || !*err || !(*err)->msg)
    return;
  size_t flen = strlen (p->path);
  _cleanup_strbuf_ struct avm_strbuf all = { 0 }, out = { 0 };
  for (size_t i = 0; p->sets[i]; i++)
    {
      avm_strbuf_adds (&all, i ? ", --set " : "--set ");
      avm_strbuf_adds (&all, p->sets[i]);
    }
  const char *line = (*err)->msg;
  for (;;)
    {
      const char *nl = strchr (line, '\n');
      size_t len = nl ? (size_t) (nl - line) : strlen (line);
      if (len > flen + 2 && strncmp (line, p->path, flen) == 0 && line[flen] == ':' && line[flen + 1] == ' ')
        {
          const char *rest = line + flen + 2, *end = line + len;
          const char *key = rest, *kend = memmem (key, end - key, ": ", 2);
          /* "not approved: services.x: ...": the key comes second.  */
          if (kend && memchr (key, ' ', kend - key))
            {
              key = kend + 2;
              kend = memmem (key, end - key, ": ", 2);
            }
          size_t klen = kend ? (size_t) (kend - key) : 0;
          const char *culprit = NULL;
          /* The last override of the key is the one that stands.  */
          for (size_t i = 0; klen && p->sets[i]; i++)
            if (key_overlaps (key, klen, p->sets[i]))
              culprit = p->sets[i];
          if (culprit)
            avm_strbuf_addf (&out, "--set %s: %.*s", culprit, (int) (end - rest), rest);
          else
            avm_strbuf_addf (&out, "%s (with %s): %.*s", p->path, all.s ? all.s : "--set", (int) (end - rest), rest);
        }
      else
        avm_strbuf_add (&out, line, len);
      if (!nl)
        break;
      avm_strbuf_add (&out, "\n", 1);
      line = nl + 1;
    }
  char *msg = avm_strbuf_steal (&out);
  if (msg)
    {
      free ((*err)->msg);
      (*err)->msg = msg;
    }
}
