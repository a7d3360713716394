/* SPDX-License-Identifier: Apache-2.0 */
#include "profile/vars.h"
#include "util/cleanup.h"
#include "util/strbuf.h"

#include <stdio.h>
#include <string.h>

static const char *
find_var (const struct avm_vars *vars, const char *name, size_t len)
{
  for (const struct avm_vars *s = vars; s; s = s->parent)
    for (size_t i = 0; i < s->n; i++)
      if (strlen (s->vars[i].name) == len && memcmp (s->vars[i].name, name, len) == 0)
        return s->vars[i].value;
  return NULL;
}

static char *
known_list (const struct avm_vars *vars)
{
  struct avm_strbuf b = { 0 };
  for (const struct avm_vars *s = vars; s; s = s->parent)
    for (size_t i = 0; i < s->n; i++)
      avm_strbuf_join (&b, ", ", s->vars[i].name);
  return avm_strbuf_steal (&b);
}

/* A variable's value, its '$' written as DOLLAR.  */
static void
add_value (struct avm_strbuf *b, const char *v, const char *dollar)
{
  for (const char *d; (d = strchr (v, '$')); v = d + 1)
    {
      avm_strbuf_add (b, v, d - v);
      avm_strbuf_adds (b, dollar);
    }
  avm_strbuf_adds (b, v);
}

int
avm_vars_expand (const struct avm_vars *vars, const char *in, const char *where, char **out, avm_error_t *err)
{
  _cleanup_strbuf_ struct avm_strbuf b = { 0 };
  const char *dollar = vars && vars->keep_dollar ? "$$" : "$";

  for (const char *p = in; *p;)
    {
      if (p[0] != '$')
        {
          const char *d = strchr (p, '$');
          size_t n = d ? (size_t) (d - p) : strlen (p);
          avm_strbuf_add (&b, p, n);
          p += n;
          continue;
        }
      if (p[1] == '$')
        {
          avm_strbuf_adds (&b, dollar);
          p += 2;
          continue;
        }
      if (p[1] != '{')
        {
          avm_strbuf_adds (&b, dollar);
          p++;
          continue;
        }
      const char *end = strchr (p + 2, '}');
      if (!end)
        return avm_error_input (err, "%s: unterminated variable reference in \"%s\" (write $$ for a literal $)", where,
                                in);
      const char *name = p + 2;
      size_t len = end - name;
      const char *colon = memchr (name, ':', len);
      if (len == 0)
        return avm_error_input (err, "%s: empty variable reference ${} in \"%s\"", where, in);
      if (colon)
        {
          _cleanup_free_ char *ns = strndup (name, colon - name);
          _cleanup_free_ char *arg = strndup (colon + 1, end - colon - 1);
          const struct avm_vars *s = vars;
          while (s && !s->lookup_ns)
            s = s->parent;
          if (!s)
            return avm_error_input (err, "%s: ${%s:...} is not allowed here", where, ns);
          _cleanup_free_ char *repl = NULL;
          int r = s->lookup_ns (s->data, ns, arg, where, &repl, err);
          if (r < 0)
            return r;
          if (repl)
            add_value (&b, repl, dollar);
          else
            avm_strbuf_add (&b, p, end + 1 - p);
        }
      else
        {
          const char *v = find_var (vars, name, len);
          if (!v)
            {
              _cleanup_free_ char *known = known_list (vars);
              return avm_error_input (err, "%s: unknown variable ${%.*s} (known: %s)", where, (int) len, name,
                                      known ? known : "?");
            }
          add_value (&b, v, dollar);
        }
      p = end + 1;
    }
  if (!(*out = avm_strbuf_steal (&b)))
    return avm_error_sys (err, ENOMEM, "expanding %s", where);
  return 0;
}

static int
flush_literal (struct avm_strbuf *lit, avm_vars_piece_fn fn, void *data)
{
  if (lit->oom)
    return -ENOMEM;
  int r = lit->len ? fn (data, lit->s, lit->len, false) : 0;
  avm_strbuf_free (lit);
  return r;
}

int
avm_vars_split_fd (const char *arg, avm_vars_piece_fn fn, void *data)
{
  _cleanup_strbuf_ struct avm_strbuf lit = { 0 };
  int r;
  for (const char *p = arg; *p;)
    {
      const char *d = strchr (p, '$');
      if (!d)
        {
          avm_strbuf_adds (&lit, p);
          break;
        }
      avm_strbuf_add (&lit, p, d - p);
      if (d[1] == '$')
        {
          avm_strbuf_add (&lit, "$", 1);
          p = d + 2;
          continue;
        }
      if (strncmp (d, "${fd:", 5) != 0)
        {
          avm_strbuf_add (&lit, "$", 1);
          p = d + 1;
          continue;
        }
      const char *end = strchr (d, '}');
      if (!end)
        return -EINVAL;
      if ((r = flush_literal (&lit, fn, data)) < 0 || (r = fn (data, d + 5, end - d - 5, true)) < 0)
        return r;
      p = end + 1;
    }
  return flush_literal (&lit, fn, data);
}
