/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What blocks a snapshot of the planned platform (plan->snapshot_blockers):
 * each PCI device QEMU does not migrate (the device catalog's no_migrate,
 * read in QEMU's sources), named by the profile key it is for, then each
 * helper service that holds guest state (services.NAME.snapshot: refuse;
 * one that suspends for a save, "suspend", is no blocker: avm asks it over
 * its control socket and copies its files, supervise/snapshot_helpers.c).
 * avm check lists them; `avm snapshot save` refuses the services' itself
 * and leaves the devices to QEMU's blocked-reasons.
 */
#include "plan/internal.h"
#include "qemu/catalog.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strfmt.h"
#include "util/strv.h"

#include <errno.h>
#include <string.h>

int
plan_snapshot_blockers (struct plan_ctx *c, struct avm_plan *plan)
{
  struct avm_argv v = { 0 };
  size_t i;
  json_t *e;
  int r = 0;
  json_array_foreach (c->pci, i, e)
    {
      const char *type = json_string_value (json_object_get (e, "device"));
      const struct avm_qdev *d = type ? avm_qdev_lookup (type) : NULL;
      if (d && d->no_migrate
          && (r = avm_argv_pushf (&v, "%s: %s (%s): %s", json_string_value (json_object_get (e, "for")) ?: "?", type,
                                  d->what, d->no_migrate))
                 < 0)
        goto fail;
    }
  json_t *defs = json_object_get (c->p, "services");
  for (i = 0; i + 1 < plan->nservices; i++)
    {
      const char *name = plan->services[i].name;
      const char *how = json_string_value (json_object_get (json_object_get (defs, name), "snapshot"));
      if (how && streq (how, "refuse")
          && (r = avm_argv_pushf (&v, "services.%s: holds guest state (snapshot: refuse)", name)) < 0)
        goto fail;
    }
  if (!(plan->snapshot_blockers = avm_argv_steal (&v)))
    return avm_error_sys (c->err, ENOMEM, "plan");
  return 0;
fail:
  avm_argv_clear (&v);
  return avm_error_sys (c->err, -r, "plan");
}

/* snapshot.clock.  The guest agent's socket is the console port of kind
   agent (qemu_display.c); a clock service must run in this plan and be
   started anew by every restore, which a stateless one is (a helper that
   suspends is restored with its state, one that refuses blocks the save).
   The AAOS profiles name modem_simulator: a fresh one sends the network
   time (%CTZV, NITZ) on the guest's first signal strength query
   (google/android-cuttlefish base/cvd/cuttlefish/host/commands/
   modem_simulator/network_service.cpp, HandleSignalStrength, and
   misc_service.cpp, TimeUpdate; also on AT+CFUN=1, HandleRadioPower).  */
int
plan_snapshot_clock (struct plan_ctx *c, struct avm_plan *plan)
{
  const char *how = pstr (c, "snapshot.clock");
  const char *name = pstr (c, "snapshot.clock_service");
  if (!how || streq (how, "none"))
    return 0;
  if (streq (how, "guest-agent"))
    {
      if (!plan->agent_socket)
        return avm_error_input (c->err,
                                "%s: snapshot.clock: guest-agent needs a console port of kind agent (the guest's "
                                "qemu-ga talks on it; consoles.ports)",
                                c->file);
      plan->clock = AVM_PLAN_CLOCK_GUEST_AGENT;
      return 0;
    }
  if (!name)
    return avm_error_input (c->err, "%s: snapshot.clock_service: required with snapshot.clock service", c->file);
  for (size_t i = 0; i + 1 < plan->nservices; i++)
    {
      if (!streq (plan->services[i].name, name))
        continue;
      if (plan->services[i].snapshot != AVM_SNAPSHOT_STATELESS)
        return avm_error_input (c->err,
                                "%s: snapshot.clock_service: service %s is not started anew by a restore (its "
                                "snapshot mode is not stateless)",
                                c->file, name);
      if (!(plan->clock_service = strdup (name)))
        return avm_error_sys (c->err, ENOMEM, "plan");
      plan->clock = AVM_PLAN_CLOCK_SERVICE;
      return 0;
    }
  /* Not started: skipped (its program is missing: said already) or
     disabled.  A restore then leaves the clock as saved.  */
  if (!json_object_get (json_object_get (c->p, "services"), name))
    return avm_error_input (c->err, "%s: snapshot.clock_service: no service %s (services)", c->file, name);
  for (size_t i = 0; i < plan->nskipped; i++)
    if (streq (plan->skipped[i].name, name))
      return 0;
  _cleanup_free_ char *w = avm_strdupf ("snapshot.clock_service: service %s is disabled: a restored guest's clock "
                                        "goes on from the snapshot",
                                        name);
  if (!w || avm_plan_add_warning (plan, w) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  return 0;
}

char *
avm_plan_qemu_tool (const struct avm_plan *plan, const char *name)
{
  _cleanup_free_ char *dir = strdup (plan->qemu_argv[0]);
  char *slash = dir ? strrchr (dir, '/') : NULL;
  if (slash)
    *slash = '\0';
  return avm_find_program (name, dir);
}
