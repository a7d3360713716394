/* SPDX-License-Identifier: Apache-2.0 */
#include "util/json.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strbuf.h"

#include <stdlib.h>
#include <string.h>

char *
avm_json_keys_join (json_t *obj, const char *sep)
{
  struct avm_strbuf b = { 0 };
  const char *k;
  json_t *v;
  json_object_foreach (obj, k, v)
    avm_strbuf_join (&b, sep, k);
  return avm_strbuf_steal (&b);
}

char *
avm_json_brief (const json_t *v)
{
  char *s = json_dumps (v, JSON_ENCODE_ANY | JSON_COMPACT);
  if (s && strlen (s) > 60)
    strcpy (s + 56, "...");
  return s ? s : strdup ("?");
}

int
avm_json_load_file (const char *path, size_t max, const char *what, json_t **out, avm_error_t *err)
{
  json_error_t je;
  _cleanup_free_ char *text = NULL;
  size_t len;
  int r = avm_read_file (path, max, what, &text, &len, err);
  if (r < 0)
    return r;
  /* Some Windows editors save one; jansson would call it a syntax error at
     1:1 and show the three bytes as they are.  */
  if (len >= 3 && memcmp (text, "\xef\xbb\xbf", 3) == 0)
    return avm_error_input (err, "%s starts with a UTF-8 byte order mark (EF BB BF); save it without one", path);
  json_t *j = json_loadb (text, len, JSON_REJECT_DUPLICATES, &je);
  if (!j)
    return avm_error_input (err, "%s:%d:%d: malformed JSON: %s", path, je.line, je.column, je.text);
  *out = j;
  return 0;
}

json_t *
avm_json_merge_patch (json_t *target, json_t *patch)
{
  if (!json_is_object (patch))
    {
      json_decref (target);
      return json_deep_copy (patch);
    }
  if (!json_is_object (target))
    {
      json_decref (target);
      target = json_object ();
    }
  const char *k;
  json_t *v;
  json_object_foreach (patch, k, v)
    {
      if (json_is_null (v))
        {
          json_object_del (target, k);
          continue;
        }
      json_t *cur = json_object_get (target, k);
      json_incref (cur);
      json_object_set_new (target, k, avm_json_merge_patch (cur, v));
    }
  return target;
}

/* Split the next segment off *P: a key (letters, digits, '_', '-') or
   [N] / ["key"].  Returns 1 for a key, 2 for an index, 0 at the end.  */
int
avm_json_path_next (const char **p, char *key, size_t keylen, long *index)
{
  const char *s = *p;
  if (*s == '.')
    s++;
  if (!*s)
    return 0;
  if (*s == '[')
    {
      if (s[1] == '"')
        {
          const char *e = strstr (s + 2, "\"]");
          if (!e || (size_t) (e - s - 2) >= keylen)
            return -1;
          memcpy (key, s + 2, e - s - 2);
          key[e - s - 2] = '\0';
          *p = e + 2;
          return 1;
        }
      char *end;
      *index = strtol (s + 1, &end, 10);
      if (end == s + 1 || *end != ']' || *index < 0)
        return -1;
      *p = end + 1;
      return 2;
    }
  size_t n = strcspn (s, ".[");
  if (n == 0 || n >= keylen)
    return -1;
  memcpy (key, s, n);
  key[n] = '\0';
  *p = s + n;
  return 1;
}

json_t *
avm_json_path (json_t *node, const char *path)
{
  char key[256];
  long index;
  const char *p = path;
  for (;;)
    {
      int kind = avm_json_path_next (&p, key, sizeof key, &index);
      if (kind <= 0)
        return kind == 0 ? node : NULL;
      node = kind == 1 ? json_object_get (node, key) : json_array_get (node, index);
      if (!node)
        return NULL;
    }
}
