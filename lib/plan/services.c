/* SPDX-License-Identifier: Apache-2.0 */
#include "plan/internal.h"
#include "helper/catalog.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strbuf.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct avm_plan_resource *
plan_resource (struct plan_ctx *c, const char *name)
{
  for (size_t i = 0; name && i < c->nres; i++)
    if (streq (c->res[i].name, name))
      return &c->res[i];
  return NULL;
}

int
plan_resource_init (struct avm_plan_resource *r, const char *name, enum avm_resource_type type, const char *path)
{
  *r = (struct avm_plan_resource) { .type = type, .type_name = avm_resource_type_name (type), .port = -1 };
  r->name = strdup (name);
  r->path = path ? strdup (path) : NULL;
  if (!r->name || (path && !r->path))
    {
      avm_plan_resource_clear (r);
      return -ENOMEM;
    }
  return 0;
}

/* Add *RES (taken, cleared), in place of one of the same name when WHERE
   is NULL.  */
static int
put_resource (struct plan_ctx *c, struct avm_plan_resource *res, const char *where)
{
  struct avm_plan_resource *old = plan_resource (c, res->name);
  int r = avm_plan_resource_check (res, c->err);
  if (r >= 0 && old && where)
    r = avm_error_input (c->err, "%s: %s: resource name \"%s\" is used twice", c->file, where, res->name);
  if (r >= 0 && old)
    {
      avm_plan_resource_clear (old);
      *old = *res;
      *res = (struct avm_plan_resource) { .port = -1 };
      return 0;
    }
  if (r >= 0 && c->nres == c->res_alloc)
    {
      size_t na = c->res_alloc ? c->res_alloc * 2 : 16;
      struct avm_plan_resource *v = realloc (c->res, na * sizeof *v);
      if (!v)
        r = avm_error_sys (c->err, ENOMEM, "plan");
      else
        {
          c->res = v;
          c->res_alloc = na;
        }
    }
  if (r < 0)
    {
      avm_plan_resource_clear (res);
      return r;
    }
  c->res[c->nres++] = *res;
  *res = (struct avm_plan_resource) { .port = -1 };
  return 0;
}

int
plan_add_resource (struct plan_ctx *c, struct avm_plan_resource *res, const char *where)
{
  return put_resource (c, res, where);
}

int
plan_set_resource (struct plan_ctx *c, struct avm_plan_resource *res)
{
  return put_resource (c, res, NULL);
}

/* A resource the profile declares (resources.NAME, DEF).  */
static int
declared_resource (struct plan_ctx *c, const char *name, json_t *def)
{
  _cleanup_free_ char *where = NULL;
  const char *type = json_string_value (json_object_get (def, "type"));
  json_t *path = json_object_get (def, "path"), *port = json_object_get (def, "port");
  struct avm_plan_resource res;
  int r;
  if (asprintf (&where, "resources.%s", name) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  if (!type)
    return avm_error_input (c->err, "%s: %s.type: required key is missing", c->file, where);
  int t = avm_resource_type_from_name (type);
  if (t < 0)
    return avm_error_input (c->err, "%s: %s.type: unknown type \"%s\"", c->file, where, type);
  bool wants_path = t == AVM_RES_FIFO || t == AVM_RES_UNIX_LISTEN || t == AVM_RES_DIRECTORY;
  bool wants_port = t == AVM_RES_VSOCK_LISTEN || t == AVM_RES_TCP_LISTEN || t == AVM_RES_PORT;
  if (wants_path && !path)
    return avm_error_input (c->err, "%s: %s.path: required for type %s", c->file, where, type);
  if (wants_port && !port)
    return avm_error_input (c->err, "%s: %s.port: required for type %s", c->file, where, type);
  if (plan_resource_init (&res, name, (enum avm_resource_type) t, NULL) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  if (wants_path)
    {
      _cleanup_free_ char *w = NULL;
      if (asprintf (&w, "%s.path", where) < 0)
        r = avm_error_sys (c->err, ENOMEM, "plan");
      else
        r = plan_expand (c, json_string_value (path), w, &res.path);
      if (r < 0)
        {
          avm_plan_resource_clear (&res);
          return r;
        }
    }
  if (wants_port || port)
    {
      /* Host listeners shared by all instances (vsock on any CID, TCP)
         move with the instance; a unix socket standing for a vsock port
         lives in the instance's own run directory and keeps it.  */
      long long pt = json_integer_value (port) + (wants_port ? c->instance - 1 : 0);
      const char *address = json_string_value (json_object_get (def, "address"));
      if (pt > 65535)
        {
          avm_plan_resource_clear (&res);
          return avm_error_input (c->err, "%s: %s.port: %lld for instance %d is above 65535", c->file, where, pt,
                                  c->instance);
        }
      res.port = (int) pt;
      if (t == AVM_RES_TCP_LISTEN && address && !(res.address = strdup (address)))
        {
          avm_plan_resource_clear (&res);
          return avm_error_sys (c->err, ENOMEM, "plan");
        }
    }
  return plan_add_resource (c, &res, where);
}

/* The FIFO(s) of console port I (PORT) of kind log or pipe.  */
static int
console_resource (struct plan_ctx *c, size_t i, json_t *port)
{
  const char *pname = json_string_value (json_object_get (port, "name"));
  const char *kind = json_string_value (json_object_get (port, "kind"));
  const char *path = json_string_value (json_object_get (port, "path"));
  const char *tee = json_string_value (json_object_get (port, "tee"));
  _cleanup_free_ char *where = NULL, *expanded = NULL, *deflt = NULL;
  struct avm_plan_resource res;
  int r;
  if (asprintf (&where, "consoles.ports[%zu]", i) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  if (!path && streq (kind, "pipe"))
    return avm_error_input (c->err, "%s: %s.path: required for kind pipe (FIFOs PATH.in and PATH.out)", c->file,
                            where);
  if (!path && asprintf (&deflt, "${run_dir}/%s.fifo", pname) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  if ((r = plan_expand (c, path ? path : deflt, where, &expanded)) < 0)
    return r;
  if (tee && !streq (kind, "log"))
    return avm_error_input (c->err, "%s: %s.tee: only ports of kind log can tee", c->file, where);
  if (tee)
    {
      const struct avm_plan_resource *pipe = plan_resource (c, tee);
      if (!pipe || pipe->type != AVM_RES_PIPE)
        return avm_error_input (c->err, "%s: %s.tee: \"%s\" is not a pipe resource", c->file, where, tee);
      plan_note_use (c, tee);
    }
  if (plan_resource_init (&res, pname, streq (kind, "log") ? AVM_RES_FIFO : AVM_RES_FIFO_PAIR, expanded) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  res.log = streq (kind, "log");
  if (!(res.console = strdup (pname)) || (tee && !(res.tee = strdup (tee))))
    {
      avm_plan_resource_clear (&res);
      return avm_error_sys (c->err, ENOMEM, "plan");
    }
  return plan_add_resource (c, &res, where);
}

static int
plan_resources (struct plan_ctx *c)
{
  const char *name;
  json_t *def;
  int r;

  json_object_foreach (avm_json_path (c->p, "resources"), name, def)
    if ((r = declared_resource (c, name, def)) < 0)
      return r;

  /* Console ports that need host-side FIFOs.  */
  size_t i;
  json_t *port;
  json_array_foreach (avm_json_path (c->p, "consoles.ports"), i, port)
    {
      const char *kind = json_string_value (json_object_get (port, "kind"));
      if ((streq (kind, "log") || streq (kind, "pipe")) && (r = console_resource (c, i, port)) < 0)
        return r;
    }
  return 0;
}

static size_t
count_commas (const char *s)
{
  size_t n = 0;
  for (; s && *s; s++)
    n += *s == ',';
  return n;
}

static int
expand_service (struct plan_ctx *c, const char *name, json_t *def, bool implied, json_t **out)
{
  _cleanup_free_ char *socket = NULL, *base = NULL, *dirs = NULL, *found = NULL;
  _cleanup_json_ json_t *allenv = NULL;
  int r;
  if (asprintf (&base, "services.%s", name) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");

  json_t *sock = json_object_get (def, "socket");
  if (sock)
    {
      _cleanup_free_ char *w = NULL;
      if (asprintf (&w, "%s.socket", base) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
      if ((r = plan_expand (c, json_string_value (sock), w, &socket)) < 0)
        return r;
    }
  struct avm_var svars[1] = { { "socket", socket } };
  struct avm_vars scope = { .vars = svars, .n = socket ? 1 : 0, .parent = &c->scope };
  /* The supervisor expands the arguments again for ${fd:NAME}: literal
     dollars are written "$$" for it (profile/vars.h).  */
  struct avm_vars argscope = scope;
  argscope.keep_dollar = true;

  json_t *s = json_object ();
  json_t *uses = json_array ();
  json_object_set_new (s, "name", json_string (name));
  json_object_set_new (s, "uses", uses);
  c->uses = uses;
  if (implied)
    json_object_set_new (s, "implied", json_true ());
  json_t *argv = json_array ();
  json_object_set_new (s, "argv", argv);
  size_t i;
  json_t *a;
  json_array_foreach (json_object_get (def, "exec"), i, a)
    {
      _cleanup_free_ char *e = NULL, *label = NULL;
      if (asprintf (&label, "%s: %s.exec[%zu]", c->file, base, i) < 0)
        goto nomem;
      r = avm_vars_expand (&argscope, json_string_value (a), label, &e, c->err);
      if (r < 0)
        {
          json_decref (s);
          return r;
        }
      /* Helpers split many arguments at commas (virtiofsd -o source=...,
         vhost-device-vsock --vm guest-cid=...,socket=...): a comma that
         comes from a variable's value (a directory named "a,sandbox=none")
         would add options the profile never wrote.  No helper has an
         escape for it, so such a value is refused.  */
      if (count_commas (e) != count_commas (json_string_value (a)))
        {
          r = avm_error_input (c->err,
                               "%s: \"%s\" expands to \"%s\": commas from a variable's value are refused in "
                               "helper arguments (helpers such as virtiofsd split them into options); rename the "
                               "directory, or use another path",
                               label, json_string_value (a), e);
          json_decref (s);
          return r;
        }
      json_array_append_new (argv, json_string (e));
    }
  json_t *env = json_object ();
  json_object_set_new (s, "env", env);
  const char *k;
  json_t *v;
  allenv = json_deep_copy (avm_json_path (c->p, "service_env"));
  if (!allenv)
    allenv = json_object ();
  json_object_update (allenv, json_object_get (def, "env"));
  json_object_foreach (allenv, k, v)
    {
      _cleanup_free_ char *e = NULL, *label = NULL;
      if (asprintf (&label, "%s: %s.env.%s", c->file, base, k) < 0)
        goto nomem;
      r = avm_vars_expand (&scope, json_string_value (v), label, &e, c->err);
      if (r < 0)
        {
          json_decref (s);
          return r;
        }
      json_object_set_new (env, k, json_string (e));
    }
  if (socket)
    json_object_set_new (s, "socket", json_string (socket));
  json_t *wd = json_object_get (def, "workdir");
  if (wd)
    {
      _cleanup_free_ char *e = NULL, *w = NULL;
      if (asprintf (&w, "%s.workdir", base) < 0)
        goto nomem;
      if ((r = plan_expand (c, json_string_value (wd), w, &e)) < 0)
        {
          json_decref (s);
          return r;
        }
      if (e[0] != '/')
        {
          json_decref (s);
          return avm_error_input (c->err, "%s: %s: \"%s\" is not an absolute path", c->file, w, e);
        }
      json_object_set_new (s, "workdir", json_string (e));
    }

  /* The program: a path, or searched in paths.helpers then $PATH.  */
  const char *prog = json_string_value (json_array_get (argv, 0));
  if ((r = plan_expand (c, pstr (c, "paths.helpers"), "paths.helpers", &dirs)) < 0)
    {
      json_decref (s);
      return r;
    }
  found = prog ? avm_find_program (prog, *dirs ? dirs : NULL) : NULL;
  /* Other names the same program goes by (a host package's build and an
     upstream one), tried in order.  */
  json_t *alt;
  json_array_foreach (json_object_get (def, "alternatives"), i, alt)
    if (!found && (found = avm_find_program (json_string_value (alt), *dirs ? dirs : NULL)))
      json_array_set_new (argv, 0, json_string (json_string_value (alt)));
  json_object_set_new (s, "program", found ? json_string (found) : json_null ());
  if (!found)
    {
      /* Decided once every service is known (plan_missing_programs).  */
      _cleanup_free_ char *why = NULL;
      if (asprintf (&why, "program %s is not installed", prog) < 0)
        goto nomem;
      free (c->helper_dirs);
      c->helper_dirs = steal_pointer (&dirs);
      json_object_set_new (s, "missing", json_string (why));
      json_object_set_new (s, "missing_program", json_string (prog));
    }
  else if (json_is_true (json_object_get (def, "requires_root")) && geteuid () != 0)
    {
      /* A program that cannot run unprivileged (Debian 12's virtiofsd:
         setgroups(), a pid file under /run, a chroot sandbox) would fail at
         start with its own cryptic message.  A critical one is refused here
         with what to do; any other is skipped like a missing program, and
         what it serves (a share) is left out.  */
      if (json_is_true (json_object_get (def, "critical")))
        {
          const char *fmt = "%s: %s: %s runs only as root (requires_root) and avm runs as uid %u: run avm as root, "
                            "or set %s.critical to false to start without it";
          if (!c->req->dry_run)
            {
              r = avm_error_fail (c->err, EPERM, fmt, c->file, base, prog, (unsigned) geteuid (), base);
              json_decref (s);
              return r;
            }
          if ((r = plan_warn (c, fmt, c->file, base, prog, (unsigned) geteuid (), base)) < 0)
            {
              json_decref (s);
              return r;
            }
        }
      else
        {
          _cleanup_free_ char *why = NULL;
          if (asprintf (&why, "%s runs only as root (requires_root), avm runs as uid %u", prog,
                        (unsigned) geteuid ())
              < 0)
            goto nomem;
          json_object_set_new (s, "missing", json_string (why));
        }
    }

  const char *ready = json_string_value (json_object_get (def, "ready"));
  if (!ready)
    ready = "none";
  json_t *rd = json_object ();
  json_object_set_new (s, "ready", rd);
  json_object_set_new (rd, "type", json_string (ready));
  json_t *rt = json_object_get (def, "ready_timeout");
  json_object_set_new (rd, "timeout", json_integer (rt ? json_integer_value (rt) : 10));
  if (streq (ready, "socket"))
    {
      if (!socket)
        {
          json_decref (s);
          return avm_error_input (c->err, "%s: %s.ready: \"socket\" needs %s.socket", c->file, base, base);
        }
      json_object_set_new (rd, "path", json_string (socket));
    }
  else if (streq (ready, "file"))
    {
      json_t *rp = json_object_get (def, "ready_path");
      _cleanup_free_ char *e = NULL, *w = NULL;
      if (!rp)
        {
          json_decref (s);
          return avm_error_input (c->err, "%s: %s.ready: \"file\" needs %s.ready_path", c->file, base, base);
        }
      if (asprintf (&w, "%s.ready_path", base) < 0)
        goto nomem;
      if ((r = plan_expand (c, json_string_value (rp), w, &e)) < 0)
        {
          json_decref (s);
          return r;
        }
      json_object_set_new (rd, "path", json_string (e));
    }
  static const char *const copy[] = { "after", "restart", "critical", "stop_timeout", "description" };
  for (size_t j = 0; j < ARRAY_SIZE (copy); j++)
    {
      json_t *x = json_object_get (def, copy[j]);
      if (x)
        json_object_set (s, copy[j], x);
    }
  if (!json_object_get (s, "after"))
    json_object_set_new (s, "after", json_array ());
  if (!json_object_get (s, "restart"))
    json_object_set_new (s, "restart", json_string ("on-failure"));
  if (!json_object_get (s, "critical"))
    json_object_set_new (s, "critical", json_false ());
  if (!json_object_get (s, "stop_timeout"))
    json_object_set_new (s, "stop_timeout", json_integer (5));
  *out = s;
  return 0;

nomem:
  json_decref (s);
  return avm_error_sys (c->err, ENOMEM, "%s", base);
}

/* expand_service, recording the resources the service refers to in its
   "uses" (kept only when there are some).  */
static int
expand_one (struct plan_ctx *c, const char *name, json_t *def, bool implied, json_t **out)
{
  int r = expand_service (c, name, def, implied, out);
  c->uses = NULL;
  if (r >= 0 && json_array_size (json_object_get (*out, "uses")) == 0)
    json_object_del (*out, "uses");
  return r;
}

void
plan_note_use (struct plan_ctx *c, const char *name)
{
  json_t *into = c->uses ? c->uses : c->global_uses;
  _cleanup_free_ char *base = NULL;
  const char *dot = strrchr (name, '.');
  if (dot && !plan_resource (c, name))
    name = base = strndup (name, dot - name);
  if (!name || !into)
    return;
  size_t i;
  json_t *u;
  json_array_foreach (into, i, u)
    if (streq (json_string_value (u), name))
      return;
  json_array_append_new (into, json_string (name));
}

static bool
array_has (json_t *a, const char *s)
{
  size_t i;
  json_t *v;
  json_array_foreach (a, i, v)
    if (streq (json_string_value (v), s))
      return true;
  return false;
}

int
plan_prune_resources (struct plan_ctx *c)
{
  json_t *declared = avm_json_path (c->p, "resources");
  size_t kept = 0;
  for (size_t i = 0; i < c->nres; i++)
    {
      const char *name = c->res[i].name;
      bool used = !json_object_get (declared, name) || array_has (c->global_uses, name);
      /* (consoles, implied files; or used outside a service) */
      const char *sname;
      json_t *svc;
      json_object_foreach (c->services, sname, svc)
        used = used || array_has (json_object_get (svc, "uses"), name);
      if (used)
        c->res[kept++] = c->res[i];
      else
        avm_plan_resource_clear (&c->res[i]);
    }
  c->nres = kept;
  return 0;
}

/* Order by `after` (Kahn; ties keep declaration order).  */
static int
order_services (struct plan_ctx *c, json_t *unordered)
{
  size_t n = json_object_size (unordered), done = 0;
  while (done < n)
    {
      bool progress = false;
      const char *name;
      json_t *s;
      json_object_foreach (unordered, name, s)
        {
          if (json_object_get (c->services, name))
            continue;
          bool ready = true;
          size_t i;
          json_t *a;
          json_array_foreach (json_object_get (s, "after"), i, a)
            if (!json_object_get (c->services, json_string_value (a)))
              ready = false;
          if (!ready)
            continue;
          json_object_set (c->services, name, s);
          done++;
          progress = true;
        }
      if (!progress)
        {
          _cleanup_strbuf_ struct avm_strbuf list = { 0 };
          json_object_foreach (unordered, name, s)
            if (!json_object_get (c->services, name))
              avm_strbuf_join (&list, ", ", name);
          return avm_error_input (c->err, "%s: services: the `after` dependencies of %s form a cycle", c->file,
                                  list.s ? list.s : "?");
        }
    }
  return 0;
}

int
plan_services (struct plan_ctx *c)
{
  _cleanup_json_ json_t *unordered = json_object ();
  json_t *defs = avm_json_path (c->p, "services");
  const char *name;
  json_t *def;
  int r;

  if ((r = plan_resources (c)) < 0)
    return r;

  if (streq (pstr (c, "display.backend"), "dbus") && !json_object_get (defs, "dbus"))
    {
      _cleanup_json_ json_t *d = plan_implied_dbus ();
      json_t *s = NULL;
      if ((r = plan_implied_dbus_config (c)) < 0 || (r = expand_one (c, "dbus", d, true, &s)) < 0)
        return r;
      json_object_set_new (unordered, "dbus", s);
    }
  json_object_foreach (defs, name, def)
    {
      if (json_is_false (json_object_get (def, "enabled")))
        continue;
      json_t *s = NULL;
      if ((r = expand_one (c, name, def, false, &s)) < 0)
        return r;
      json_object_set_new (unordered, name, s);
    }
  if ((r = plan_check_flags (c, unordered)) < 0 || (r = plan_missing_programs (c, unordered)) < 0)
    return r;
  /* `after` must name enabled services.  */
  json_object_foreach (unordered, name, def)
    {
      size_t i;
      json_t *a;
      json_array_foreach (json_object_get (def, "after"), i, a)
        {
          const char *dep = json_string_value (a);
          if (json_object_get (unordered, dep))
            continue;
          if (json_object_get (defs, dep))
            return avm_error_input (c->err, "%s: services.%s.after[%zu]: service \"%s\" is disabled", c->file, name, i,
                                    dep);
          return avm_error_input (c->err, "%s: services.%s.after[%zu]: no service \"%s\"", c->file, name, i, dep);
        }
    }
  return order_services (c, unordered);
}

int
plan_approve_services (struct plan_ctx *c)
{
  const char *name;
  json_t *s;
  json_object_foreach (c->services, name, s)
    {
      _cleanup_free_ char *why = NULL;
      int r = avm_helper_approved (json_object_get (s, "argv"), json_object_get (s, "env"), &why);
      if (r < 0)
        return avm_error_sys (c->err, -r, "plan");
      if (r > 0 && json_array_append_new (c->unapproved, json_sprintf ("services.%s: %s", name, why)) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
    }
  return 0;
}

const char *
plan_service_skipped (struct plan_ctx *c, const char *service)
{
  size_t i;
  json_t *sk;
  json_array_foreach (c->skipped, i, sk)
    if (streq (json_string_value (json_object_get (sk, "name")), service))
      return json_string_value (json_object_get (sk, "reason"));
  return NULL;
}

int
plan_service_socket (struct plan_ctx *c, const char *key_path, const char *service, char **socket)
{
  json_t *s = json_object_get (c->services, service);
  const char *skipped = plan_service_skipped (c, service);
  if (skipped)
    return avm_error_fail (c->err, ENOENT, "%s: %s: service \"%s\" is skipped (%s)", c->file, key_path, service,
                           skipped);
  if (!s)
    {
      if (json_object_get (avm_json_path (c->p, "services"), service))
        return avm_error_input (c->err, "%s: %s: service \"%s\" is disabled (services.%s.enabled)", c->file, key_path,
                                service, service);
      return avm_error_input (c->err, "%s: %s: no service \"%s\" in services (declare the vhost-user backend there)",
                              c->file, key_path, service);
    }
  json_t *sock = json_object_get (s, "socket");
  if (!sock)
    return avm_error_input (c->err, "%s: %s: service \"%s\" declares no socket (services.%s.socket)", c->file,
                            key_path, service, service);
  json_t *serves = json_object_get (s, "serves");
  if (!serves)
    json_object_set_new (s, "serves", serves = json_array ());
  json_array_append_new (serves, json_string (key_path));
  *socket = strdup (json_string_value (sock));
  return *socket ? 0 : -ENOMEM;
}
