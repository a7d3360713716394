/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plan as JSON (`avm start --dry-run --json`, avm-start(1) "JSON
 * PLAN"): an output only, made here and nowhere else.
 */
#include "plan/plan.h"
#include "util/cleanup.h"
#include "util/strv.h"

#include <string.h>

const struct avm_plan_service *
avm_plan_qemu (const struct avm_plan *plan)
{
  return &plan->services[plan->nservices - 1]; /* (a built plan always has it) */
}

int
avm_plan_add_warning (struct avm_plan *plan, const char *msg)
{
  struct avm_argv v = { .v = plan->warnings, .n = avm_strv_length (plan->warnings) };
  v.alloc = v.n + 1;
  int r = avm_argv_push (&v, msg);
  plan->warnings = v.v;
  return r;
}

static json_t *
strv_json (char *const *v)
{
  json_t *a = json_array ();
  for (size_t i = 0; v && v[i]; i++)
    json_array_append_new (a, json_string (v[i]));
  return a;
}

const char *
avm_plan_caps_source_name (enum avm_caps_source s)
{
  switch (s)
    {
    case AVM_CAPS_PROBED:
      return "probed";
    case AVM_CAPS_CACHED:
      return "cached";
    case AVM_CAPS_RECORDED:
      return "recorded";
    }
  return "?";
}

json_t *
avm_plan_guest_json (const struct avm_plan *plan)
{
  json_t *g = json_object ();
  json_object_set_new (g, "cid", plan->cid < 0 ? json_null () : json_integer (plan->cid));
  json_object_set_new (g, "macs", strv_json (plan->macs));
  json_object_set_new (g, "adb", plan->adb ? json_string (plan->adb) : json_null ());
  json_object_set_new (g, "display",
                       plan->display_backend ? json_pack ("{s:s, s:s?}", "backend", plan->display_backend, "address",
                                                          plan->display_address)
                                             : json_null ());
  json_object_set_new (g, "web",
                       plan->web_listen ? json_pack ("{s:s, s:o, s:o}", "listen", plan->web_listen, "urls",
                                                     strv_json (plan->web_urls), "vnc", strv_json (plan->vnc_sockets))
                                        : json_null ());
  return g;
}

json_t *
avm_plan_boot_props_json (const struct avm_plan *plan)
{
  json_t *o = json_object ();
  for (size_t i = 0; i < plan->nboot_props; i++)
    json_object_set_new (o, plan->boot_props[i].name, json_string (plan->boot_props[i].value));
  return o;
}

static const char *
ready_name (enum avm_ready_type t)
{
  static const char *const names[] = { [AVM_READY_NONE] = "none",
                                       [AVM_READY_SOCKET] = "socket",
                                       [AVM_READY_FILE] = "file",
                                       [AVM_READY_NOTIFY] = "notify",
                                       [AVM_READY_QMP] = "qmp" };
  return (size_t) t < ARRAY_SIZE (names) ? names[t] : "?";
}

static const char *
restart_name (enum avm_restart_policy p)
{
  return p == AVM_RESTART_ALWAYS ? "always" : p == AVM_RESTART_NO ? "no" : "on-failure";
}

/* A helper service (S of PLAN), its keys in the order the planner has
   always written them: an implied service's policy keys are those of its
   built-in definition, in that order.  */
static json_t *
service_json (const struct avm_plan *plan, const struct avm_plan_service *s)
{
  json_t *o = json_object ();
  json_object_set_new (o, "name", json_string (s->name));
  if (s->uses && s->uses[0])
    json_object_set_new (o, "uses", strv_json (s->uses));
  if (s->implied)
    json_object_set_new (o, "implied", json_true ());
  json_t *argv = json_array ();
  for (size_t i = 0; i < s->argc; i++)
    {
      /* As planned: "$$" for a literal dollar, ${fd:NAME} kept.  */
      _cleanup_free_ char *a = avm_plan_arg_string (&s->argv[i]);
      json_array_append_new (argv, json_string (a ? a : ""));
    }
  json_object_set_new (o, "argv", argv);
  json_t *env = json_object ();
  for (size_t i = 0; i < s->nenv; i++)
    json_object_set_new (env, s->env[i].name, json_string (s->env[i].value));
  json_object_set_new (o, "env", env);
  if (s->socket)
    json_object_set_new (o, "socket", json_string (s->socket));
  if (s->workdir)
    json_object_set_new (o, "workdir", json_string (s->workdir));
  if (s->stdin_res)
    json_object_set_new (o, "stdin", json_string (s->stdin_res));
  if (s->snapshot == AVM_SNAPSHOT_SUSPEND)
    json_object_set_new (o, "snapshot",
                         json_pack ("{s:s, s:s, s:s, s:o}", "mode", "suspend", "control", s->snapshot_control, "format",
                                    s->snapshot_control_format == AVM_SNAPSHOT_CONTROL_LAUNCHER_ACTION_TYPED
                                        ? "launcher-action-typed"
                                        : "launcher-action",
                                    "files", strv_json (s->snapshot_files)));
  else if (s->snapshot_files)
    json_object_set_new (o, "snapshot",
                         json_pack ("{s:s, s:o}", "mode", "stateless", "files", strv_json (s->snapshot_files)));
  json_object_set_new (o, "program", s->program ? json_string (s->program) : json_null ());
  if (s->missing)
    json_object_set_new (o, "missing", json_string (s->missing));
  if (s->missing_program)
    json_object_set_new (o, "missing_program", json_string (s->missing_program));
  json_t *ready = json_object ();
  json_object_set_new (ready, "type", json_string (ready_name (s->ready)));
  json_object_set_new (ready, "timeout", json_integer ((json_int_t) (s->ready_timeout / 1000000)));
  if (s->ready_path)
    json_object_set_new (ready, "path", json_string (s->ready_path));
  json_object_set_new (o, "ready", ready);
  json_t *after = json_array ();
  for (size_t i = 0; i < s->nafter; i++)
    json_array_append_new (after, json_string (plan->services[s->after[i]].name));
  json_t *stop = json_integer ((json_int_t) (s->stop_timeout / 1000000));
  if (!s->implied)
    {
      json_object_set_new (o, "after", after);
      after = NULL;
    }
  json_object_set_new (o, "restart", json_string (restart_name (s->restart)));
  json_object_set_new (o, "critical", json_boolean (s->critical));
  if (!s->implied)
    {
      json_object_set_new (o, "stop_timeout", stop);
      stop = NULL;
    }
  if (s->description)
    json_object_set_new (o, "description", json_string (s->description));
  if (after)
    json_object_set_new (o, "after", after);
  if (stop)
    json_object_set_new (o, "stop_timeout", stop);
  if (s->serves)
    json_object_set_new (o, "serves", strv_json (s->serves));
  return o;
}

/* Keys in this order: type, path, port, address, console, log, tee,
   content, name (each one only when set).  */
static json_t *
resource_json (const struct avm_plan_resource *r)
{
  json_t *o = json_object ();
  json_object_set_new (o, "type", json_string (r->type_name));
  if (r->path)
    json_object_set_new (o, "path", json_string (r->path));
  if (r->port >= 0)
    json_object_set_new (o, "port", json_integer (r->port));
  if (r->address)
    json_object_set_new (o, "address", json_string (r->address));
  if (r->console)
    json_object_set_new (o, "console", json_string (r->console));
  if (r->log)
    json_object_set_new (o, "log", json_true ());
  if (r->tee)
    json_object_set_new (o, "tee", json_string (r->tee));
  if (r->content)
    json_object_set_new (o, "content", json_string (r->content));
  json_object_set_new (o, "name", json_string (r->name));
  return o;
}

static json_t *
generated_json (const struct avm_plan_generated *g)
{
  if (g->kind == AVM_GENERATED_FLASH)
    return json_pack ("{s:s?, s:s, s:s, s:s, s:I}", "name", g->name, "kind", "flash", "path", g->path, "code", g->code,
                      "pad_to", (json_int_t) g->size);
  if (g->kind == AVM_GENERATED_PSTORE)
    return json_pack ("{s:s?, s:s, s:s, s:I}", "name", g->name, "kind", "pstore", "path", g->path, "size",
                      (json_int_t) g->size);
  return json_pack ("{s:s?, s:s, s:s}", "name", g->name, "path", g->path, "key", g->key);
}

static json_t *
disk_json (const struct avm_plan_disk *d)
{
  return json_pack ("{s:s, s:s, s:s, s:b, s:b, s:s*}", "name", d->name, "path", d->path, "format", d->format,
                    "snapshot", d->snapshot, "readonly", d->readonly, "layer", d->layer);
}

json_t *
avm_plan_to_json (const struct avm_plan *plan)
{
  json_t *j = json_object ();
  json_object_set_new (j, "avm_version", json_string (AVM_VERSION));
  json_object_set_new (j, "profile", json_string (plan->profile));
  json_object_set_new (j, "profile_path", json_string (plan->profile_path));
  json_object_set (j, "options", plan->options);
  if (plan->detected)
    json_object_set (j, "detected", plan->detected);
  json_object_set_new (j, "instance", json_integer (plan->instance));
  json_object_set_new (j, "approved", json_boolean (plan->approved));
  json_object_set_new (j, "unapproved", strv_json (plan->unapproved));
  json_t *vars = json_object ();
  for (size_t i = 0; i < plan->nvars; i++)
    json_object_set_new (vars, plan->vars[i].name, json_string (plan->vars[i].value));
  json_object_set_new (j, "variables", vars);
  json_t *q = json_object ();
  json_object_set_new (q, "binary", json_string (plan->qemu_argv[0]));
  json_object_set_new (q, "version", json_string (plan->caps->version));
  json_object_set_new (q, "capabilities", json_string (avm_plan_caps_source_name (plan->caps->source)));
  if (plan->caps->source_path)
    json_object_set_new (q, "capabilities_file", json_string (plan->caps->source_path));
  json_object_set_new (q, "accel", plan->accel ? json_string (plan->accel) : json_null ());
  json_object_set_new (q, "argv", strv_json (plan->qemu_argv));
  json_object_set_new (j, "qemu", q);
  json_object_set (j, "pci", plan->pci);
  /* How the guest is reached (avm status shows it; other instances are
     checked against it, see avm_peers_check).  */
  json_object_set_new (j, "guest", avm_plan_guest_json (plan));
  /* Services in start order (QEMU is "qemu" above).  */
  json_t *svcs = json_array ();
  for (size_t i = 0; i + 1 < plan->nservices; i++)
    json_array_append_new (svcs, service_json (plan, &plan->services[i]));
  json_object_set_new (j, "services", svcs);
  json_t *sk = json_array ();
  for (size_t i = 0; i < plan->nskipped; i++)
    json_array_append_new (sk, json_pack ("{s:s, s:s, s:s?}", "name", plan->skipped[i].name, "reason",
                                          plan->skipped[i].reason, "description", plan->skipped[i].description));
  json_object_set_new (j, "skipped_services", sk);
  json_t *res = json_array ();
  for (size_t i = 0; i < plan->nresources; i++)
    json_array_append_new (res, resource_json (&plan->resources[i]));
  json_object_set_new (j, "resources", res);
  json_object_set (j, "boot", plan->boot.json);
  json_object_set_new (j, "stop_timeout", json_integer ((json_int_t) (plan->stop.powerdown_timeout / 1000000)));
  json_object_set_new (j, "logs",
                       json_pack ("{s:I, s:I}", "max_size", (json_int_t) plan->log_max_size, "files",
                                  (json_int_t) plan->log_files));
  if (plan->has_boot_props)
    json_object_set_new (j, "boot_properties", avm_plan_boot_props_json (plan));
  json_t *gen = json_array ();
  for (size_t i = 0; i < plan->ngenerated; i++)
    json_array_append_new (gen, generated_json (&plan->generated[i]));
  json_object_set_new (j, "generated_disks", gen);
  json_t *disks = json_array ();
  for (size_t i = 0; i < plan->ndisks; i++)
    json_array_append_new (disks, disk_json (&plan->disks[i]));
  json_object_set_new (j, "disks", disks);
  if (plan->restore)
    json_object_set_new (j, "restore", json_string (plan->restore));
  if (plan->ram_file)
    json_object_set_new (j, "ram_file", json_string (plan->ram_file));
  size_t nb = avm_strv_length (plan->snapshot_blockers);
  static const char *const clocks[] = {
    [AVM_PLAN_CLOCK_NONE] = "none", [AVM_PLAN_CLOCK_GUEST_AGENT] = "guest-agent", [AVM_PLAN_CLOCK_SERVICE] = "service"
  };
  json_t *snap = json_pack ("{s:b, s:o, s:s}", "possible", nb == 0, "blockers", strv_json (plan->snapshot_blockers),
                            "clock", clocks[plan->clock]);
  if (plan->clock_service)
    json_object_set_new (snap, "clock_service", json_string (plan->clock_service));
  if (plan->agent_socket)
    json_object_set_new (snap, "agent_socket", json_string (plan->agent_socket));
  json_object_set_new (j, "snapshot", snap);
  json_object_set_new (j, "warnings", strv_json (plan->warnings));
  json_object_set (j, "missing_files", plan->missing);
  return j;
}
