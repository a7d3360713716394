/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unix socket paths, checked when the plan is made: a path that does not
 * fit sun_path (107 bytes and the NUL) cannot be bound or connected to,
 * and would otherwise fail only once avm, a helper or QEMU runs.
 */
#include "plan/internal.h"
#include "util/cleanup.h"

#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#define SUN_PATH_MAX (sizeof ((struct sockaddr_un *) 0)->sun_path - 1)

static int
too_long (struct plan_ctx *c, const char *key, const char *path, const char *fix)
{
  return avm_error_input (c->err,
                          "%s: %s: socket path %s is %zu bytes, more than the %zu a unix socket path can have; %s",
                          c->file, key, path, strlen (path), SUN_PATH_MAX, fix);
}

/* The sockets avm itself makes in the runtime directory.  */
static int
check_run_dir (struct plan_ctx *c)
{
  static const char *const fixed[] = { AVM_CONTROL_SOCKET, AVM_QMP_SOCKET };
  const char *fix = "set AVM_RUNTIME_DIR to a shorter directory";
  for (size_t i = 0; i < ARRAY_SIZE (fixed); i++)
    {
      _cleanup_free_ char *p = NULL;
      if (asprintf (&p, "%s/%s", c->run_dir, fixed[i]) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
      if (strlen (p) > SUN_PATH_MAX)
        return avm_error_input (c->err,
                                "runtime directory %s: socket path %s is %zu bytes, more than the %zu a unix socket "
                                "path can have; %s",
                                c->run_dir, p, strlen (p), SUN_PATH_MAX, fix);
    }
  /* The notification socket of each service with readiness notify.  */
  for (size_t i = 0; i < c->nsvcs; i++)
    {
      const char *name = c->svcs[i].s.name;
      _cleanup_free_ char *p = NULL, *key = NULL;
      if (c->svcs[i].s.ready != AVM_READY_NOTIFY)
        continue;
      if (asprintf (&p, "%s/notify-%s.sock", c->run_dir, name) < 0 || asprintf (&key, "services.%s.ready", name) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
      if (strlen (p) > SUN_PATH_MAX)
        return too_long (c, key, p, "set AVM_RUNTIME_DIR to a shorter directory, or give the service a shorter name");
    }
  return 0;
}

/* A console or serial port of kind socket: QEMU listens on PATH.  */
static int
check_port (struct plan_ctx *c, json_t *port, const char *where)
{
  const char *kind = json_string_value (json_object_get (port, "kind"));
  const char *path = json_string_value (json_object_get (port, "path"));
  _cleanup_free_ char *key = NULL, *p = NULL;
  int r;
  if (kind && streq (kind, "agent") && !path)
    path = "${run_dir}/agent.sock";
  if (!kind || !(streq (kind, "socket") || streq (kind, "agent")) || !path)
    return 0;
  if (asprintf (&key, "%s.path", where) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  if ((r = plan_expand (c, path, key, &p)) < 0)
    return r;
  return strlen (p) > SUN_PATH_MAX ? too_long (c, key, p, "use a shorter path") : 0;
}

int
plan_check_sockets (struct plan_ctx *c)
{
  json_t *v;
  int r;

  if (c->req->layout_only)
    return 0; /* nothing runs */
  if ((r = check_run_dir (c)) < 0)
    return r;
  /* Services' sockets (the private D-Bus, vhost-user backends).  */
  for (size_t k = 0; k < c->nsvcs; k++)
    {
      const char *p = c->svcs[k].s.socket;
      _cleanup_free_ char *key = NULL;
      if (!p || strlen (p) <= SUN_PATH_MAX)
        continue;
      if (asprintf (&key, "services.%s.socket", c->svcs[k].s.name) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
      return too_long (c, key, p, "use a shorter path");
    }
  /* Listening sockets avm creates for the services.  */
  for (size_t k = 0; k < c->nres; k++)
    {
      const char *p = c->res[k].path;
      _cleanup_free_ char *key = NULL;
      if (c->res[k].type != AVM_RES_UNIX_LISTEN || !p || strlen (p) <= SUN_PATH_MAX)
        continue;
      if (asprintf (&key, "resources.%s.path", c->res[k].name) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
      return too_long (c, key, p, "use a shorter path");
    }
  /* QEMU's: VNC on a unix socket, console and serial ports of kind socket.  */
  if (streq (pstr (c, "display.backend"), "vnc"))
    {
      _cleanup_free_ char *listen = NULL;
      if ((r = plan_expand (c, pstr (c, "display.vnc.listen"), "display.vnc.listen", &listen)) < 0)
        return r;
      if (strncmp (listen, "unix:", 5) == 0 && strlen (listen + 5) > SUN_PATH_MAX)
        return too_long (c, "display.vnc.listen", listen + 5, "use a shorter path");
    }
  size_t i;
  json_array_foreach (avm_json_path (c->p, "consoles.ports"), i, v)
    {
      char where[48];
      snprintf (where, sizeof where, "consoles.ports[%zu]", i);
      if ((r = check_port (c, v, where)) < 0)
        return r;
    }
  return check_port (c, avm_json_path (c->p, "serial"), "serial");
}
