/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plan's resources as the planner makes them (typed from the start,
 * resource.c): those the profile declares, the console FIFOs, and what
 * other parts add (the serial FIFO, the D-Bus configuration, the
 * cuttlefish files); those nothing refers to are dropped at the end.
 */
#include "plan/internal.h"
#include "util/cleanup.h"
#include "util/json.h"

#include <stdio.h>
#include <string.h>

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
    return avm_error_input (c->err, "%s: %s.path: required for kind pipe (FIFOs PATH.in and PATH.out)", c->file, where);
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

int
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

static bool
strv_has (char *const *v, const char *s)
{
  for (size_t i = 0; v && v[i]; i++)
    if (streq (v[i], s))
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
      /* Consoles, implied files; or used outside a service.  */
      bool used = !json_object_get (declared, name) || strv_has (c->global_uses.v, name);
      for (size_t k = 0; k < c->nsvcs; k++)
        used = used || strv_has (c->svcs[k].uses.v, name);
      if (used)
        c->res[kept++] = c->res[i];
      else
        avm_plan_resource_clear (&c->res[i]);
    }
  c->nres = kept;
  return 0;
}
