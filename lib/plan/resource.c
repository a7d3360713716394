/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A plan's resource, typed: its type names and descriptor ends, and the
 * check of what creating it needs (the planner's, when it adds one).
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
