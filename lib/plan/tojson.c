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
  json_object_set_new (g, "display", plan->display_backend
                                         ? json_pack ("{s:s, s:s?}", "backend", plan->display_backend, "address",
                                                      plan->display_address)
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

static json_t *
service_json (const struct avm_plan_service *s)
{
  return json_incref (s->json);
}

static json_t *
generated_json (const struct avm_plan_generated *g)
{
  if (g->flash)
    return json_pack ("{s:s?, s:s, s:s, s:s, s:I}", "name", g->name, "kind", "flash", "path", g->path, "code",
                      g->code, "pad_to", (json_int_t) g->pad_to);
  return json_pack ("{s:s?, s:s, s:s}", "name", g->name, "path", g->path, "key", g->key);
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
    json_array_append_new (svcs, service_json (&plan->services[i]));
  json_object_set_new (j, "services", svcs);
  json_t *sk = json_array ();
  for (size_t i = 0; i < plan->nskipped; i++)
    json_array_append_new (sk, json_pack ("{s:s, s:s, s:s?}", "name", plan->skipped[i].name, "reason",
                                          plan->skipped[i].reason, "description", plan->skipped[i].description));
  json_object_set_new (j, "skipped_services", sk);
  json_t *res = json_array ();
  for (size_t i = 0; i < plan->nresources; i++)
    json_array_append (res, plan->resources[i].json);
  json_object_set_new (j, "resources", res);
  json_object_set (j, "boot", plan->boot.json);
  json_object_set_new (j, "stop_timeout", json_integer ((json_int_t) (plan->stop.powerdown_timeout / 1000000)));
  json_object_set_new (j, "logs", json_pack ("{s:I, s:I}", "max_size", (json_int_t) plan->log_max_size, "files",
                                             (json_int_t) plan->log_files));
  if (plan->has_boot_props)
    json_object_set_new (j, "boot_properties", avm_plan_boot_props_json (plan));
  json_t *gen = json_array ();
  for (size_t i = 0; i < plan->ngenerated; i++)
    json_array_append_new (gen, generated_json (&plan->generated[i]));
  json_object_set_new (j, "generated_disks", gen);
  json_object_set_new (j, "warnings", strv_json (plan->warnings));
  json_object_set (j, "missing_files", plan->missing);
  return j;
}
