/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The typed plan (plan.h): what the planner decided, filled in once at
 * the end of avm_plan_build from the planner's working state, for the
 * supervisor to execute without reading any of it back by name.
 */
#include "plan/internal.h"
#include "util/analyzer.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strbuf.h"
#include "util/strv.h"

#include <string.h>

/* ---- arguments ---------------------------------------------------------- */

static int
add_piece (void *data, const char *text, size_t len, bool fd)
{
  struct avm_plan_arg *a = data;
  struct avm_plan_piece *v = realloc (a->pieces, (a->n + 1) * sizeof *v);
  if (!v)
    return -ENOMEM;
  a->pieces = v;
  if (!(v[a->n].text = strndup (text, len)))
    return -ENOMEM;
  v[a->n++].fd = fd;
  return 0;
}

int
avm_plan_arg_parse (const char *arg, struct avm_plan_arg *out)
{
  *out = (struct avm_plan_arg) { 0 };
  int r = avm_vars_split_fd (arg, add_piece, out);
  if (r == 0 && out->n == 0)
    r = add_piece (out, "", 0, false); /* "" is an argument too */
  if (r < 0)
    avm_plan_arg_clear (out);
  return r;
}

int
avm_plan_arg_literal (const char *arg, struct avm_plan_arg *out)
{
  *out = (struct avm_plan_arg) { 0 };
  int r = add_piece (out, arg, strlen (arg), false);
  if (r < 0)
    avm_plan_arg_clear (out);
  return r;
}

char *
avm_plan_arg_string (const struct avm_plan_arg *a)
{
  struct avm_strbuf b = { 0 };
  for (size_t i = 0; i < a->n; i++)
    if (a->pieces[i].fd)
      avm_strbuf_addf (&b, "${fd:%s}", a->pieces[i].text);
    else
      for (const char *p = a->pieces[i].text; *p; p++)
        avm_strbuf_adds (&b, *p == '$' ? "$$" : (char[2]) { *p, 0 });
  return avm_strbuf_steal (&b);
}

void
avm_plan_arg_clear (struct avm_plan_arg *a)
{
  for (size_t i = 0; i < a->n; i++)
    free (a->pieces[i].text);
  free (a->pieces);
  *a = (struct avm_plan_arg) { 0 };
}

/* ---- from the planner's state ---------------------------------------- */

static char *
dup_or_null (const char *s)
{
  return s ? strdup (s) : NULL;
}

static char **
strv_of (json_t *a)
{
  struct avm_argv v = { 0 };
  size_t i;
  json_t *s;
  json_array_foreach (a, i, s)
    if (json_is_string (s) && avm_argv_push (&v, json_string_value (s)) < 0)
      {
        avm_argv_clear (&v);
        return NULL;
      }
  char **out = avm_argv_steal (&v);
  return out ? out : calloc (1, sizeof (char *));
}

static uint64_t
usec_of (json_t *seconds)
{
  return (uint64_t) (json_number_value (seconds) * 1000000.0);
}

/* make lint: false positive: what helper_of stores in the plan's services
   (moved there by plan_hand_over, freed by plan_typed_clear) is lost by
   the analyzer, which cannot bound I against their number.  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-malloc-leak")
/* One helper service (index I of the start order, moved from the
   planner's PS by plan_hand_over): its arguments split, its `after` as
   indexes of services before it.  */
static int
helper_of (struct plan_ctx *c, struct avm_plan *plan, size_t i, struct plan_service *ps)
{
  struct avm_plan_service *s = &plan->services[i];
  if (!(s->argv = calloc (ps->argv.n + 1, sizeof *s->argv))
      || !(s->after = calloc (avm_strv_length (ps->after) + 1, sizeof *s->after)))
    return avm_error_sys (c->err, ENOMEM, "plan");
  for (size_t k = 0; k < ps->argv.n; k++)
    {
      int r = avm_plan_arg_parse (ps->argv.v[k], &s->argv[k]);
      if (r < 0)
        return avm_error_input (c->err, "plan: service %s: argument %zu: unterminated ${fd:", s->name, k);
      s->argc = k + 1;
    }
  if (s->argc == 0)
    return avm_error_input (c->err, "plan: service %s has no argv", s->name);
  for (char **a = ps->after; a && *a; a++)
    {
      size_t j = 0;
      while (j < i && !streq (plan->services[j].name, *a))
        j++;
      if (j >= i)
        return avm_error_input (c->err, "service %s: after \"%s\": no such service started before it", s->name, *a);
      s->after[s->nafter++] = j;
    }
  return 0;
}
AVM_ANALYZER_IGNORE_END

/* QEMU: the last service, ready when its monitor answers.  */
static int
qemu_of (struct plan_ctx *c, struct avm_plan *plan)
{
  struct avm_plan_service *q = &plan->services[plan->nservices - 1];
  size_t n = avm_strv_length (plan->qemu_argv);
  q->kind = AVM_SERVICE_QEMU;
  q->ready = AVM_READY_QMP;
  q->restart = AVM_RESTART_NO;
  q->critical = true;
  if (!(q->name = strdup ("qemu")) || !(q->program = dup_or_null (plan->qemu_argv[0]))
      || !(q->argv = calloc (n + 1, sizeof *q->argv)) || !(q->env = calloc (1, sizeof *q->env))
      || !(q->after = calloc (1, sizeof *q->after)))
    return avm_error_sys (c->err, ENOMEM, "plan");
  /* QEMU's command line is literal: no descriptor references.  */
  for (size_t i = 0; i < n; i++, q->argc++)
    if (avm_plan_arg_literal (plan->qemu_argv[i], &q->argv[i]) < 0)
      return avm_error_sys (c->err, ENOMEM, "plan");
  return 0;
}

static int
services_of (struct plan_ctx *c, struct avm_plan *plan)
{
  int r;
  for (size_t i = 0; i + 1 < plan->nservices; i++)
    if ((r = helper_of (c, plan, i, &c->svcs[i])) < 0)
      return r;
  if ((r = qemu_of (c, plan)) < 0)
    return r;
  return 0;
}

static int
boot_of (struct plan_ctx *c, struct avm_plan *plan)
{
  struct avm_plan_boot *b = &plan->boot;
  json_t *boot = json_deep_copy (avm_json_path (c->p, "boot"));
  if (!boot)
    return avm_error_sys (c->err, ENOMEM, "plan");
  b->json = boot;
  /* The timeout the supervisor applies: scaled under software emulation.  */
  if (c->accel && streq (c->accel, "tcg"))
    json_object_set_new (boot, "timeout", json_integer (pint (c, "boot.timeout") * pint (c, "boot.tcg_multiplier")));
  if (c->boot_console)
    json_object_set_new (boot, "console", json_string (c->boot_console));
  json_t *t = json_object_get (boot, "timeout");
  b->timeout = json_is_number (t) ? usec_of (t) : 0;
  b->reset_limit = (unsigned) json_integer_value (json_object_get (boot, "reset_limit"));
  const char *console = json_string_value (json_object_get (boot, "console"));
  b->console = dup_or_null (console);
  if (!(b->completed = strv_of (json_object_get (boot, "completed")))
      || !(b->failed = strv_of (json_object_get (boot, "failed"))) || (console && !b->console))
    return avm_error_sys (c->err, ENOMEM, "plan");
  return 0;
}

int
plan_add_generated (struct plan_ctx *c, struct avm_plan_generated *g)
{
  struct avm_plan_generated *v = NULL;
  if (!g->path || (g->kind == AVM_GENERATED_FLASH && !g->code) || (g->kind == AVM_GENERATED_PROPERTIES && !g->key)
      || !(v = realloc (c->gen, (c->ngen + 1) * sizeof *v)))
    {
      plan_generated_clear (g);
      return avm_error_sys (c->err, ENOMEM, "plan");
    }
  c->gen = v;
  c->gen[c->ngen++] = *g;
  *g = (struct avm_plan_generated) { 0 };
  return 0;
}

void
plan_generated_clear (struct avm_plan_generated *g)
{
  free (g->name);
  free (g->path);
  free (g->key);
  free (g->code);
  *g = (struct avm_plan_generated) { 0 };
}

static int
disks_of (struct plan_ctx *c, struct avm_plan *plan)
{
  plan->has_boot_props = json_object_get (c->p, "boot_properties") != NULL;
  const char *k;
  json_t *v;
  size_t n = 0;
  struct avm_plan_pair *props = calloc (json_object_size (c->bootprops) + 1, sizeof *props);
  if (!props)
    return avm_error_sys (c->err, ENOMEM, "plan");
  json_object_foreach (c->bootprops, k, v)
    {
      if (!(props[n].name = strdup (k)) || !(props[n].value = strdup (json_string_value (v) ?: "")))
        break;
      n++;
    }
  plan->boot_props = props;
  plan->nboot_props = n + (n < json_object_size (c->bootprops)); /* (a pair half made is freed too) */
  if (n < json_object_size (c->bootprops))
    return avm_error_sys (c->err, ENOMEM, "plan");
  return 0;
}

static int
reach_of (struct plan_ctx *c, struct avm_plan *plan, json_t *adb)
{
  plan->cid = streq (pstr (c, "vsock.mode"), "none") ? -1 : c->cid;
  plan->adb = dup_or_null (json_string_value (adb));
  if (!plan->macs && !(plan->macs = calloc (1, sizeof (char *))))
    return avm_error_sys (c->err, ENOMEM, "plan");
  return 0;
}

static int
paths_of (struct plan_ctx *c, struct avm_plan *plan)
{
  plan->vars = calloc (c->scope.n + 1, sizeof *plan->vars);
  if (!plan->vars)
    return avm_error_sys (c->err, ENOMEM, "plan");
  for (size_t i = 0; i < c->scope.n; i++, plan->nvars++)
    if (!(plan->vars[i].name = strdup (c->vars[i].name)) || !(plan->vars[i].value = strdup (c->vars[i].value)))
      return avm_error_sys (c->err, ENOMEM, "plan");
  plan->run_dir = strdup (c->run_dir);
  plan->state_dir = strdup (c->state_dir);
  plan->qmp_socket = avm_path_join (c->run_dir, AVM_QMP_SOCKET);
  plan->control_socket = avm_path_join (c->run_dir, AVM_CONTROL_SOCKET);
  plan->arch = strdup (c->arch);
  if (!plan->run_dir || !plan->state_dir || !plan->qmp_socket || !plan->control_socket || !plan->arch)
    return avm_error_sys (c->err, ENOMEM, "plan");
  return 0;
}

/* What the planner made typed moves to the plan as it is: resources,
   services (all but their arguments and `after`), skipped services,
   generated disks, MACs and display.  (Here, apart from plan_make_typed,
   which only reads the planner's state: gcc -fanalyzer cannot tell the
   two apart and loses what is stored in the plan.)  */
int
plan_hand_over (struct plan_ctx *c, struct avm_plan *plan)
{
  plan->services = calloc (c->nsvcs + 1, sizeof *plan->services);
  if (!plan->services)
    return avm_error_sys (c->err, ENOMEM, "plan");
  plan->nservices = c->nsvcs + 1; /* and QEMU */
  for (size_t i = 0; i < c->nsvcs; i++)
    {
      struct plan_service *ps = &c->svcs[i];
      plan->services[i] = ps->s;
      ps->s = (struct avm_plan_service) { 0 };
      plan->services[i].uses = ps->uses.n ? avm_argv_steal (&ps->uses) : NULL;
      plan->services[i].serves = ps->serves.n ? avm_argv_steal (&ps->serves) : NULL;
    }
  plan->resources = steal_pointer (&c->res);
  plan->nresources = c->nres;
  c->nres = c->res_alloc = 0;
  plan->skipped = steal_pointer (&c->skipped);
  plan->nskipped = c->nskipped;
  c->nskipped = 0;
  plan->generated = steal_pointer (&c->gen);
  plan->ngenerated = c->ngen;
  c->ngen = 0;
  plan->display_backend = steal_pointer (&c->display_backend);
  plan->display_address = steal_pointer (&c->display_address);
  plan->macs = avm_argv_steal (&c->macs);
  plan->gpu_outputs = c->gpu_outputs;
  plan->ram_file = steal_pointer (&c->ram_file);
  plan->agent_socket = steal_pointer (&c->agent_socket);
  plan->ram_line = c->ram_line;
  plan->disks = steal_pointer (&c->disks);
  plan->ndisks = c->ndisks;
  c->ndisks = 0;
  plan->web_listen = steal_pointer (&c->web_listen);
  plan->web_urls = c->web_urls.n ? avm_argv_steal (&c->web_urls) : NULL;
  plan->vnc_sockets = c->vnc_sockets.n ? avm_argv_steal (&c->vnc_sockets) : NULL;
  return 0;
}

int
plan_make_typed (struct plan_ctx *c, struct avm_plan *plan, json_t *adb)
{
  int r;
  plan->instance = c->instance;
  plan->stop.powerdown_timeout = (uint64_t) pint (c, "stop.timeout") * 1000000;
  plan->log_max_size = (uint64_t) pint (c, "logs.max_size") << 20;
  plan->log_files = (unsigned) pint (c, "logs.files");
  if (!(plan->profile = strdup (c->req->profile->name)) || !(plan->profile_path = strdup (c->file))
      || !(plan->accel = dup_or_null (c->accel))
      || (c->req->restore && !(plan->restore = strdup (c->req->restore->snapshot)))
      || !(plan->unapproved = strv_of (c->unapproved)) || !(plan->warnings = strv_of (c->warnings)))
    return avm_error_sys (c->err, ENOMEM, "plan");
  if ((r = paths_of (c, plan)) < 0 || (r = services_of (c, plan)) < 0 || (r = boot_of (c, plan)) < 0
      || (r = disks_of (c, plan)) < 0 || (r = reach_of (c, plan, adb)) < 0 || (r = plan_snapshot_blockers (c, plan)) < 0
      || (r = plan_snapshot_clock (c, plan)) < 0)
    return r;
  plan->options = json_incref (c->req->profile->options);
  if (!(plan->sets = c->req->profile->sets ? avm_strv_copy (c->req->profile->sets) : calloc (1, sizeof (char *))))
    return avm_error_sys (c->err, ENOMEM, "plan");
  plan->detected = c->req->profile->detected && json_object_size (c->req->profile->detected)
                       ? json_incref (c->req->profile->detected)
                       : NULL;
  plan->pci = json_incref (c->pci);
  plan->missing = json_incref (c->missing);
  return 0;
}

/* ---- freeing ------------------------------------------------------------ */

static void
pairs_free (struct avm_plan_pair *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (v[i].name);
      free (v[i].value);
    }
  free (v);
}

static void
service_clear (struct avm_plan_service *s)
{
  free (s->name);
  free (s->program);
  for (size_t i = 0; i < s->argc; i++)
    avm_plan_arg_clear (&s->argv[i]);
  free (s->argv);
  pairs_free (s->env, s->nenv);
  free (s->workdir);
  free (s->stdin_res);
  free (s->ready_path);
  free (s->after);
  avm_strv_free (s->uses);
  free (s->socket);
  free (s->missing);
  free (s->missing_program);
  free (s->description);
  avm_strv_free (s->serves);
  free (s->snapshot_control);
  avm_strv_free (s->snapshot_files);
}

void
plan_typed_clear (struct avm_plan *plan)
{
  free (plan->profile);
  free (plan->profile_path);
  avm_strv_free (plan->unapproved);
  for (size_t i = 0; i < plan->nservices; i++)
    service_clear (&plan->services[i]);
  free (plan->services);
  for (size_t i = 0; i < plan->nskipped; i++)
    {
      free (plan->skipped[i].name);
      free (plan->skipped[i].reason);
      free (plan->skipped[i].description);
    }
  free (plan->skipped);
  for (size_t i = 0; i < plan->nresources; i++)
    avm_plan_resource_clear (&plan->resources[i]);
  free (plan->resources);
  avm_strv_free (plan->boot.completed);
  avm_strv_free (plan->boot.failed);
  free (plan->boot.console);
  json_decref (plan->boot.json);
  for (size_t i = 0; i < plan->ngenerated; i++)
    plan_generated_clear (&plan->generated[i]);
  free (plan->generated);
  for (size_t i = 0; i < plan->ndisks; i++)
    plan_disk_clear (&plan->disks[i]);
  free (plan->disks);
  free (plan->restore);
  avm_strv_free (plan->sets);
  free (plan->ram_file);
  free (plan->agent_socket);
  free (plan->clock_service);
  pairs_free (plan->boot_props, plan->nboot_props);
  free (plan->run_dir);
  free (plan->state_dir);
  free (plan->qmp_socket);
  free (plan->control_socket);
  pairs_free (plan->vars, plan->nvars);
  free (plan->arch);
  free (plan->accel);
  avm_strv_free (plan->macs);
  free (plan->adb);
  free (plan->display_backend);
  free (plan->display_address);
  free (plan->web_listen);
  avm_strv_free (plan->web_urls);
  avm_strv_free (plan->vnc_sockets);
  avm_strv_free (plan->snapshot_blockers);
  avm_strv_free (plan->warnings);
  json_decref (plan->options);
  json_decref (plan->detected);
  json_decref (plan->pci);
  json_decref (plan->missing);
}
