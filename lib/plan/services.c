/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The helper services as planned: expanded from the profile (and the
 * implied D-Bus, dbus.c), checked against their programs (helpers.c),
 * ordered by `after`, approved, and the sockets vhost-user devices use.
 */
#include "plan/internal.h"
#include "helper/catalog.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strbuf.h"
#include "util/strfmt.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static size_t
count_commas (const char *s)
{
  size_t n = 0;
  for (; s && *s; s++)
    n += *s == ',';
  return n;
}

struct plan_service *
plan_service_find (struct plan_service *v, size_t n, const char *name)
{
  for (size_t i = 0; name && i < n; i++)
    if (v[i].s.name && streq (v[i].s.name, name))
      return &v[i];
  return NULL;
}

void
plan_service_clear (struct plan_service *ps)
{
  struct avm_plan_service *s = &ps->s;
  free (s->name);
  free (s->program);
  for (size_t i = 0; i < s->nenv; i++)
    {
      free (s->env[i].name);
      free (s->env[i].value);
    }
  free (s->env);
  free (s->workdir);
  free (s->stdin_res);
  free (s->ready_path);
  free (s->socket);
  free (s->missing);
  free (s->missing_program);
  free (s->description);
  free (s->snapshot_control);
  avm_strv_free (s->snapshot_files);
  for (size_t i = 0; i < s->argc; i++)
    avm_plan_arg_clear (&s->argv[i]);
  free (s->argv);
  free (s->after);
  avm_strv_free (s->uses);
  avm_strv_free (s->serves);
  avm_argv_clear (&ps->argv);
  avm_argv_clear (&ps->uses);
  avm_argv_clear (&ps->serves);
  avm_strv_free (ps->after);
  *ps = (struct plan_service) { 0 };
}

static int
set_missing (struct plan_service *ps, char *why)
{
  if (!why)
    return -ENOMEM;
  free (ps->s.missing);
  ps->s.missing = why;
  return 0;
}

/* The arguments (ARGSCOPE: "$$" kept for the supervisor) and environment
   of service NAME (DEF; BASE is "services.NAME").  */
static int
expand_command (struct plan_ctx *c, json_t *def, const char *base, const struct avm_vars *scope,
                const struct avm_vars *argscope, struct plan_service *ps)
{
  _cleanup_json_ json_t *allenv = NULL;
  size_t i;
  json_t *a;
  int r;
  json_array_foreach (json_object_get (def, "exec"), i, a)
    {
      _cleanup_free_ char *e = NULL, *label = NULL;
      if (asprintf (&label, "%s: %s.exec[%zu]", c->file, base, i) < 0)
        return avm_error_sys (c->err, ENOMEM, "%s", base);
      if ((r = avm_vars_expand (argscope, json_string_value (a), label, &e, c->err)) < 0)
        return r;
      /* Helpers split many arguments at commas (virtiofsd -o source=...,
         vhost-device-vsock --vm guest-cid=...,socket=...): a comma that
         comes from a variable's value (a directory named "a,sandbox=none")
         would add options the profile never wrote.  No helper has an
         escape for it, so such a value is refused.  */
      if (count_commas (e) != count_commas (json_string_value (a)))
        return avm_error_input (c->err,
                                "%s: \"%s\" expands to \"%s\": commas from a variable's value are refused in "
                                "helper arguments (helpers such as virtiofsd split them into options); rename the "
                                "directory, or use another path",
                                label, json_string_value (a), e);
      if (avm_argv_push_take (&ps->argv, steal_pointer (&e)) < 0)
        return avm_error_sys (c->err, ENOMEM, "%s", base);
    }
  const char *k;
  json_t *v;
  allenv = json_deep_copy (avm_json_path (c->p, "service_env"));
  if (!allenv)
    allenv = json_object ();
  json_object_update (allenv, json_object_get (def, "env"));
  struct avm_plan_pair *env = calloc (json_object_size (allenv) + 1, sizeof *env);
  if (!(ps->s.env = env))
    return avm_error_sys (c->err, ENOMEM, "%s", base);
  json_object_foreach (allenv, k, v)
    {
      _cleanup_free_ char *e = NULL, *label = NULL;
      if (asprintf (&label, "%s: %s.env.%s", c->file, base, k) < 0)
        return avm_error_sys (c->err, ENOMEM, "%s", base);
      if ((r = avm_vars_expand (scope, json_string_value (v), label, &e, c->err)) < 0)
        return r;
      if (asprintf (&env[ps->s.nenv].name, "%s", k) < 0)
        {
          env[ps->s.nenv].name = NULL;
          return avm_error_sys (c->err, ENOMEM, "%s", base);
        }
      env[ps->s.nenv++].value = steal_pointer (&e);
    }
  return 0;
}

/* The program: a path, or searched in paths.helpers then $PATH; when it
   cannot run, why (ps->s.missing).  */
static int
find_program (struct plan_ctx *c, json_t *def, const char *base, struct plan_service *ps)
{
  _cleanup_free_ char *dirs = NULL, *found = NULL, *prog = NULL;
  struct avm_plan_service *s = &ps->s;
  size_t i;
  json_t *alt;
  int r;
  if (ps->argv.n && !(prog = strdup (ps->argv.v[0])))
    return avm_error_sys (c->err, ENOMEM, "%s", base);
  if ((r = plan_expand (c, pstr (c, "paths.helpers"), "paths.helpers", &dirs)) < 0)
    return r;
  found = prog ? avm_find_program (prog, *dirs ? dirs : NULL) : NULL;
  /* Other names the same program goes by (a host package's build and an
     upstream one), tried in order.  */
  json_array_foreach (json_object_get (def, "alternatives"), i, alt)
    if (!found && (found = avm_find_program (json_string_value (alt), *dirs ? dirs : NULL)))
      {
        char *name = strdup (json_string_value (alt));
        if (!name)
          return avm_error_sys (c->err, ENOMEM, "%s", base);
        free (ps->argv.v[0]);
        ps->argv.v[0] = name;
      }
  s->program = steal_pointer (&found);
  if (!s->program)
    {
      /* Decided once every service is known (plan_missing_programs).  */
      free (c->helper_dirs);
      c->helper_dirs = steal_pointer (&dirs);
      if (set_missing (ps, avm_strdupf ("program %s is not installed", prog)) < 0
          || !(s->missing_program = strdup (prog ? prog : "")))
        return avm_error_sys (c->err, ENOMEM, "%s", base);
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
            return avm_error_fail (c->err, EPERM, fmt, c->file, base, prog, (unsigned) geteuid (), base);
          return plan_warn (c, fmt, c->file, base, prog, (unsigned) geteuid (), base);
        }
      if (set_missing (ps, avm_strdupf ("%s runs only as root (requires_root), avm runs as uid %u", prog,
                                        (unsigned) geteuid ()))
          < 0)
        return avm_error_sys (c->err, ENOMEM, "%s", base);
    }
  return 0;
}

/* Readiness and the policies (DEF's, or their defaults).  */
static int
expand_policy (struct plan_ctx *c, json_t *def, const char *base, struct plan_service *ps)
{
  struct avm_plan_service *s = &ps->s;
  const char *ready = json_string_value (json_object_get (def, "ready"));
  json_t *rt = json_object_get (def, "ready_timeout"), *st = json_object_get (def, "stop_timeout");
  const char *restart = json_string_value (json_object_get (def, "restart"));
  int r;
  if (!ready || streq (ready, "none"))
    s->ready = AVM_READY_NONE;
  else if (streq (ready, "socket"))
    s->ready = AVM_READY_SOCKET;
  else if (streq (ready, "file"))
    s->ready = AVM_READY_FILE;
  else if (streq (ready, "notify"))
    s->ready = AVM_READY_NOTIFY;
  else
    return avm_error_input (c->err, "%s: %s.ready: unknown readiness \"%s\"", c->file, base, ready);
  s->ready_timeout = (uint64_t) (rt ? json_integer_value (rt) : 10) * 1000000;
  if (s->ready == AVM_READY_SOCKET)
    {
      if (!s->socket)
        return avm_error_input (c->err, "%s: %s.ready: \"socket\" needs %s.socket", c->file, base, base);
      if (!(s->ready_path = strdup (s->socket)))
        return avm_error_sys (c->err, ENOMEM, "%s", base);
    }
  else if (s->ready == AVM_READY_FILE)
    {
      json_t *rp = json_object_get (def, "ready_path");
      _cleanup_free_ char *w = NULL;
      if (!rp)
        return avm_error_input (c->err, "%s: %s.ready: \"file\" needs %s.ready_path", c->file, base, base);
      if (asprintf (&w, "%s.ready_path", base) < 0)
        return avm_error_sys (c->err, ENOMEM, "%s", base);
      if ((r = plan_expand (c, json_string_value (rp), w, &s->ready_path)) < 0)
        return r;
    }
  if (!restart || streq (restart, "on-failure"))
    s->restart = AVM_RESTART_ON_FAILURE;
  else if (streq (restart, "always"))
    s->restart = AVM_RESTART_ALWAYS;
  else if (streq (restart, "no"))
    s->restart = AVM_RESTART_NO;
  else
    return avm_error_input (c->err, "%s: %s.restart: unknown policy \"%s\"", c->file, base, restart);
  s->critical = json_is_true (json_object_get (def, "critical"));
  s->stop_timeout = (uint64_t) (st ? json_integer_value (st) : 5) * 1000000;
  const char *desc = json_string_value (json_object_get (def, "description"));
  if (desc && !(s->description = strdup (desc)))
    return avm_error_sys (c->err, ENOMEM, "%s", base);
  struct avm_argv after = { 0 };
  size_t i;
  json_t *a;
  json_array_foreach (json_object_get (def, "after"), i, a)
    if (avm_argv_push (&after, json_string_value (a) ?: "") < 0)
      {
        avm_argv_clear (&after);
        return avm_error_sys (c->err, ENOMEM, "%s", base);
      }
  ps->after = avm_argv_steal (&after);
  if (!ps->after && !(ps->after = calloc (1, sizeof *ps->after)))
    return avm_error_sys (c->err, ENOMEM, "%s", base);
  return 0;
}

/* services.NAME.snapshot; for "suspend", its control socket (a
   socketpair resource); for "suspend" and "stateless", state files
   (absolute, base names distinct: each is kept in the snapshot under its
   base name), which a stateless helper's snapshot carries as Cuttlefish's
   carries the instance directory (its files as they are while the guest
   is paused; the helper starts anew on them on a restore).  */
static int
expand_snapshot (struct plan_ctx *c, json_t *def, const char *base, struct avm_plan_service *s)
{
  const char *how = json_string_value (json_object_get (def, "snapshot"));
  const char *ctl = json_string_value (json_object_get (def, "snapshot_control"));
  const char *fmt = json_string_value (json_object_get (def, "snapshot_control_format"));
  json_t *files = json_object_get (def, "snapshot_files");
  s->snapshot = !how || streq (how, "stateless") ? AVM_SNAPSHOT_STATELESS
                : streq (how, "refuse")          ? AVM_SNAPSHOT_REFUSE
                                                 : AVM_SNAPSHOT_SUSPEND;
  /* (snapshot_control_format has a default: not looked at.)  */
  if (s->snapshot != AVM_SNAPSHOT_SUSPEND && ctl)
    return avm_error_input (c->err, "%s: %s.snapshot_control: only for \"snapshot\": \"suspend\"", c->file, base);
  if (s->snapshot == AVM_SNAPSHOT_REFUSE && json_array_size (files) > 0)
    return avm_error_input (c->err, "%s: %s.snapshot_files: not for \"snapshot\": \"refuse\"", c->file, base);
  if (s->snapshot == AVM_SNAPSHOT_SUSPEND)
    {
      if (!ctl)
        return avm_error_input (c->err,
                                "%s: %s.snapshot: \"suspend\" needs %s.snapshot_control (a socketpair resource)",
                                c->file, base, base);
      const struct avm_plan_resource *res = plan_resource (c, ctl);
      if (!res || res->type != AVM_RES_SOCKETPAIR)
        return avm_error_input (c->err, "%s: %s.snapshot_control: \"%s\" is %s", c->file, base, ctl,
                                res ? "not a socketpair resource" : "no resource");
      if (!(s->snapshot_control = strdup (ctl)))
        return avm_error_sys (c->err, ENOMEM, "%s", base);
      s->snapshot_control_format = fmt && streq (fmt, "launcher-action-typed")
                                       ? AVM_SNAPSHOT_CONTROL_LAUNCHER_ACTION_TYPED
                                       : AVM_SNAPSHOT_CONTROL_LAUNCHER_ACTION;
    }
  if (json_array_size (files) == 0)
    return 0;
  struct avm_argv v = { 0 };
  size_t i;
  json_t *f;
  int r = 0;
  json_array_foreach (files, i, f)
    {
      _cleanup_free_ char *w = NULL, *path = NULL;
      if (asprintf (&w, "%s.snapshot_files[%zu]", base, i) < 0)
        r = avm_error_sys (c->err, ENOMEM, "%s", base);
      else if ((r = plan_expand (c, json_string_value (f), w, &path)) < 0)
        ;
      else if (path[0] != '/' || path[strlen (path) - 1] == '/')
        r = avm_error_input (c->err, "%s: %s: \"%s\" is not an absolute file path", c->file, w, path);
      else
        {
          const char *b = strrchr (path, '/') + 1;
          for (size_t k = 0; r == 0 && k < v.n; k++)
            if (streq (strrchr (v.v[k], '/') + 1, b))
              r = avm_error_input (c->err, "%s: %s: \"%s\" has the base name of %s", c->file, w, path, v.v[k]);
          if (r == 0 && avm_argv_push (&v, path) < 0)
            r = avm_error_sys (c->err, ENOMEM, "%s", base);
        }
      if (r < 0)
        {
          avm_argv_clear (&v);
          return r;
        }
    }
  s->snapshot_files = avm_argv_steal (&v);
  return 0;
}

static int
expand_service (struct plan_ctx *c, const char *name, json_t *def, bool implied, struct plan_service *ps)
{
  _cleanup_free_ char *base = NULL;
  int r;
  if (asprintf (&base, "services.%s", name) < 0 || !(ps->s.name = strdup (name)))
    return avm_error_sys (c->err, ENOMEM, "plan");
  ps->s.kind = AVM_SERVICE_HELPER;
  ps->s.implied = implied;

  json_t *sock = json_object_get (def, "socket");
  if (sock)
    {
      _cleanup_free_ char *w = NULL;
      if (asprintf (&w, "%s.socket", base) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
      if ((r = plan_expand (c, json_string_value (sock), w, &ps->s.socket)) < 0)
        return r;
    }
  struct avm_var svars[1] = { { "socket", ps->s.socket } };
  struct avm_vars scope = { .vars = svars, .n = ps->s.socket ? 1 : 0, .parent = &c->scope };
  /* The supervisor expands the arguments again for ${fd:NAME}: literal
     dollars are written "$$" for it (profile/vars.h).  */
  struct avm_vars argscope = scope;
  argscope.keep_dollar = true;
  if ((r = expand_command (c, def, base, &scope, &argscope, ps)) < 0)
    return r;
  json_t *wd = json_object_get (def, "workdir");
  if (wd)
    {
      _cleanup_free_ char *w = NULL;
      if (asprintf (&w, "%s.workdir", base) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
      if ((r = plan_expand (c, json_string_value (wd), w, &ps->s.workdir)) < 0)
        return r;
      if (ps->s.workdir[0] != '/')
        return avm_error_input (c->err, "%s: %s: \"%s\" is not an absolute path", c->file, w, ps->s.workdir);
    }
  const char *in = json_string_value (json_object_get (def, "stdin"));
  if (in)
    {
      _cleanup_free_ char *w = NULL;
      if (asprintf (&w, "%s.stdin", base) < 0 || !(ps->s.stdin_res = strdup (in)))
        return avm_error_sys (c->err, ENOMEM, "plan");
      if ((r = plan_check_fd (c, in, c->file, w, c->err)) < 0)
        return r;
    }
  if ((r = expand_snapshot (c, def, base, &ps->s)) < 0 || (r = find_program (c, def, base, ps)) < 0)
    return r;
  return expand_policy (c, def, base, ps);
}

/* expand_service into *PS, recording the resources the service refers to
   (its uses).  */
static int
expand_one (struct plan_ctx *c, const char *name, json_t *def, bool implied, struct plan_service *ps)
{
  *ps = (struct plan_service) { 0 };
  c->uses = &ps->uses;
  int r = expand_service (c, name, def, implied, ps);
  c->uses = NULL;
  if (r < 0)
    plan_service_clear (ps);
  return r;
}

void
plan_note_use (struct plan_ctx *c, const char *name)
{
  struct avm_argv *into = c->uses ? c->uses : &c->global_uses;
  _cleanup_free_ char *base = NULL;
  const char *dot = strrchr (name, '.');
  if (dot && !plan_resource (c, name))
    name = base = strndup (name, dot - name);
  if (!name)
    return;
  for (size_t i = 0; i < into->n; i++)
    if (streq (into->v[i], name))
      return;
  avm_argv_push (into, name);
}

/* Order the N services V by `after` into c->svcs (Kahn; ties keep
   declaration order), moving them.  */
static int
order_services (struct plan_ctx *c, struct plan_service *v, size_t n)
{
  if (!(c->svcs = calloc (n + 1, sizeof *c->svcs)))
    return avm_error_sys (c->err, ENOMEM, "plan");
  while (c->nsvcs < n)
    {
      bool progress = false;
      for (size_t i = 0; i < n; i++)
        {
          if (!v[i].s.name)
            continue; /* (moved) */
          bool ready = true;
          for (char **a = v[i].after; *a; a++)
            if (!plan_service_find (c->svcs, c->nsvcs, *a))
              ready = false;
          if (!ready)
            continue;
          c->svcs[c->nsvcs++] = v[i];
          v[i] = (struct plan_service) { 0 };
          progress = true;
        }
      if (!progress)
        {
          _cleanup_strbuf_ struct avm_strbuf list = { 0 };
          for (size_t i = 0; i < n; i++)
            if (v[i].s.name)
              avm_strbuf_join (&list, ", ", v[i].s.name);
          return avm_error_input (c->err, "%s: services: the `after` dependencies of %s form a cycle", c->file,
                                  list.s ? list.s : "?");
        }
    }
  return 0;
}

static void
services_free (struct plan_service *v, size_t n)
{
  for (size_t i = 0; v && i < n; i++)
    plan_service_clear (&v[i]);
  free (v);
}

int
plan_services (struct plan_ctx *c)
{
  json_t *defs = avm_json_path (c->p, "services");
  struct plan_service *v = calloc (json_object_size (defs) + 3, sizeof *v); /* and the implied ones */
  size_t n = 0;
  const char *name;
  json_t *def;
  int r;

  if (!v)
    return avm_error_sys (c->err, ENOMEM, "plan");
  if ((r = plan_resources (c)) < 0)
    goto out;
  if (streq (pstr (c, "display.backend"), "dbus") && !json_object_get (defs, "dbus"))
    {
      _cleanup_json_ json_t *d = plan_implied_dbus ();
      if ((r = plan_implied_dbus_config (c)) < 0 || (r = expand_one (c, "dbus", d, true, &v[n])) < 0)
        goto out;
      n++;
    }
  if (plan_web_enabled (c))
    {
      if ((r = plan_web_resources (c)) < 0)
        goto out;
      if (!json_object_get (defs, "websockify"))
        {
          _cleanup_json_ json_t *d = plan_implied_web (c);
          if (!d)
            {
              r = avm_error_sys (c->err, ENOMEM, "plan");
              goto out;
            }
          if ((r = expand_one (c, "websockify", d, true, &v[n])) < 0)
            goto out;
          n++;
        }
    }
  json_object_foreach (defs, name, def)
    {
      if (json_is_false (json_object_get (def, "enabled")))
        continue;
      if ((r = expand_one (c, name, def, false, &v[n])) < 0)
        goto out;
      n++;
    }
  if ((r = plan_check_flags (c, v, n)) < 0 || (r = plan_missing_programs (c, v, &n)) < 0)
    goto out;
  /* `after` must name enabled services.  */
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; v[i].after[k]; k++)
      {
        const char *dep = v[i].after[k];
        if (plan_service_find (v, n, dep))
          continue;
        if (json_object_get (defs, dep))
          r = avm_error_input (c->err, "%s: services.%s.after[%zu]: service \"%s\" is disabled", c->file, v[i].s.name,
                               k, dep);
        else
          r = avm_error_input (c->err, "%s: services.%s.after[%zu]: no service \"%s\"", c->file, v[i].s.name, k, dep);
        goto out;
      }
  r = order_services (c, v, n);
out:
  services_free (v, n);
  return r;
}

int
plan_approve_services (struct plan_ctx *c)
{
  for (size_t i = 0; i < c->nsvcs; i++)
    {
      const struct plan_service *ps = &c->svcs[i];
      _cleanup_json_ json_t *argv = json_array (), *env = json_object ();
      _cleanup_free_ char *why = NULL;
      for (size_t k = 0; k < ps->argv.n; k++)
        json_array_append_new (argv, json_string (ps->argv.v[k]));
      for (size_t k = 0; k < ps->s.nenv; k++)
        json_object_set_new (env, ps->s.env[k].name, json_string (ps->s.env[k].value));
      int r = avm_helper_approved (argv, env, &why);
      if (r < 0)
        return avm_error_sys (c->err, -r, "plan");
      if (r > 0 && json_array_append_new (c->unapproved, json_sprintf ("services.%s: %s", ps->s.name, why)) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
    }
  return 0;
}

const char *
plan_service_skipped (struct plan_ctx *c, const char *service)
{
  for (size_t i = 0; i < c->nskipped; i++)
    if (streq (c->skipped[i].name, service))
      return c->skipped[i].reason;
  return NULL;
}

int
plan_service_socket (struct plan_ctx *c, const char *key_path, const char *service, char **socket)
{
  struct plan_service *ps = plan_service_find (c->svcs, c->nsvcs, service);
  const char *skipped = plan_service_skipped (c, service);
  if (skipped)
    return avm_error_fail (c->err, ENOENT, "%s: %s: service \"%s\" is skipped (%s)", c->file, key_path, service,
                           skipped);
  if (!ps)
    {
      if (json_object_get (avm_json_path (c->p, "services"), service))
        return avm_error_input (c->err, "%s: %s: service \"%s\" is disabled (services.%s.enabled)", c->file, key_path,
                                service, service);
      return avm_error_input (c->err, "%s: %s: no service \"%s\" in services (declare the vhost-user backend there)",
                              c->file, key_path, service);
    }
  if (!ps->s.socket)
    return avm_error_input (c->err, "%s: %s: service \"%s\" declares no socket (services.%s.socket)", c->file, key_path,
                            service, service);
  if (avm_argv_push (&ps->serves, key_path) < 0 || !(*socket = strdup (ps->s.socket)))
    return -ENOMEM;
  return 0;
}
