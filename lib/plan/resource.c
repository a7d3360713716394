/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A plan's resource, typed: the one place a resource definition is read
 * and checked after the schema (the planner's resources and the JSON
 * array avm_resources_create is given both come through here).
 */
#include "plan/plan.h"
#include "util/cleanup.h"

#include <string.h>

static const char *const type_names[] = {
  [AVM_RES_FIFO] = "fifo",
  [AVM_RES_FIFO_PAIR] = "fifo-pair",
  [AVM_RES_PIPE] = "pipe",
  [AVM_RES_UNIX_LISTEN] = "unix-listen",
  [AVM_RES_VSOCK_LISTEN] = "vsock-listen",
  [AVM_RES_TCP_LISTEN] = "tcp-listen",
  [AVM_RES_FILE] = "file",
  [AVM_RES_SOCKETPAIR] = "socketpair",
  [AVM_RES_DIRECTORY] = "directory",
  [AVM_RES_PORT] = "port",
};

const char *const *
avm_resource_ends (enum avm_resource_type t)
{
  static const char *const pipe_ends[] = { ".read", ".write", NULL };
  static const char *const fifo_ends[] = { ".in", ".out", NULL };
  return t == AVM_RES_PIPE ? pipe_ends : t == AVM_RES_FIFO_PAIR ? fifo_ends : NULL;
}

int
avm_resource_type_from_name (const char *name)
{
  for (size_t t = 0; name && t < ARRAY_SIZE (type_names); t++)
    if (streq (type_names[t], name))
      return (int) t;
  return -1;
}

const char *
avm_resource_type_name (enum avm_resource_type t)
{
  return (size_t) t < ARRAY_SIZE (type_names) ? type_names[t] : "?";
}

static bool
needs_path (enum avm_resource_type t)
{
  return t == AVM_RES_FIFO || t == AVM_RES_FIFO_PAIR || t == AVM_RES_UNIX_LISTEN || t == AVM_RES_FILE
         || t == AVM_RES_DIRECTORY;
}

static bool
needs_port (enum avm_resource_type t)
{
  return t == AVM_RES_VSOCK_LISTEN || t == AVM_RES_TCP_LISTEN || t == AVM_RES_PORT;
}

static int
dup_str (json_t *v, char **out)
{
  *out = NULL;
  if (!json_is_string (v))
    return 0;
  *out = strdup (json_string_value (v));
  return *out ? 0 : -ENOMEM;
}

int
avm_plan_resource_check (const struct avm_plan_resource *r, avm_error_t *err)
{
  const char *n = r->name, *type = avm_resource_type_name (r->type);
  if (needs_path (r->type) && (!r->path || !*r->path))
    return avm_error_input (err, "resource %s: path is required for type %s", n, type);
  if (needs_port (r->type) && r->port < 0)
    return avm_error_input (err, "resource %s: port is required for type %s", n, type);
  if (r->port > 65535)
    return avm_error_input (err, "resource %s: port %d is out of range", n, r->port);
  if (r->type == AVM_RES_FILE && !r->content)
    return avm_error_input (err, "resource %s: content is required for type file", n);
  return 0;
}

int
avm_plan_resource_from_json (json_t *res, size_t i, struct avm_plan_resource *out, avm_error_t *err)
{
  memset (out, 0, sizeof *out);
  out->port = -1;
  if (!json_is_object (res))
    return avm_error_input (err, "resources[%zu]: not an object", i);
  const char *n = json_string_value (json_object_get (res, "name"));
  if (!n || !*n)
    return avm_error_input (err, "resources[%zu]: name is missing", i);
  const char *type = json_string_value (json_object_get (res, "type"));
  if (!type)
    return avm_error_input (err, "resource %s: type is missing", n);
  int t = avm_resource_type_from_name (type);
  if (t < 0)
    return avm_error_input (err, "resource %s: unknown type \"%s\"", n, type);
  out->type = (enum avm_resource_type) t;
  out->type_name = type_names[t];
  const char *path = json_string_value (json_object_get (res, "path"));
  if (needs_port (out->type))
    {
      json_t *p = json_object_get (res, "port");
      if (!json_is_integer (p))
        return avm_error_input (err, "resource %s: port is required for type %s", n, type);
      long long port = json_integer_value (p);
      if (port < 0 || port > 65535)
        return avm_error_input (err, "resource %s: port %lld is out of range", n, port);
      out->port = (int) port;
    }
  json_t *a = json_object_get (res, "address");
  if (out->type == AVM_RES_TCP_LISTEN && a && !json_is_string (a) && !json_is_null (a))
    return avm_error_input (err, "resource %s: address must be a string", n);
  out->log = json_is_true (json_object_get (res, "log"));
  int r = 0;
  if (!(out->name = strdup (n)) || (needs_path (out->type) && path && !(out->path = strdup (path)))
      || dup_str (a, &out->address) < 0 || dup_str (json_object_get (res, "content"), &out->content) < 0
      || dup_str (json_object_get (res, "console"), &out->console) < 0
      || dup_str (json_object_get (res, "tee"), &out->tee) < 0)
    r = avm_error_sys (err, ENOMEM, "resource %s", n);
  if (r == 0)
    r = avm_plan_resource_check (out, err);
  if (r < 0)
    avm_plan_resource_clear (out);
  return r;
}

void
avm_plan_resource_clear (struct avm_plan_resource *r)
{
  free (r->name);
  free (r->path);
  free (r->address);
  free (r->content);
  free (r->console);
  free (r->tee);
  memset (r, 0, sizeof *r);
  r->port = -1;
}
