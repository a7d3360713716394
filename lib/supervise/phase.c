/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor's phase (helpers, QEMU, booting, running, stopping):
 * sv_set_phase is the one writer of sv->phase, and says each change to
 * the service manager (STATUS=, READY=1, STOPPING=1) with the timers that
 * belong to the phase.
 */
#include "supervise/internal.h"
#include "util/cleanup.h"
#include "util/strfmt.h"

#include <string.h>

/* The stop sequence's fixed part: a failed boot's screenshot, QMP quit,
   QEMU's SIGTERM and 5 s to spare; QEMU's stop timeout and each helper's
   come on top.  */
#define STOP_BUDGET_FIXED (SV_SHOT_FAILURE_TIMEOUT + QMP_QUIT_TIMEOUT + QEMU_TERM_TIMEOUT + 5 * USEC_PER_SEC)

uint64_t
avm_supervise_stop_budget (const struct avm_plan *plan)
{
  uint64_t budget = STOP_BUDGET_FIXED + plan->stop.powerdown_timeout;
  for (size_t i = 0; i < plan->nservices; i++)
    if (plan->services[i].kind == AVM_SERVICE_HELPER)
      budget += plan->services[i].stop_timeout;
  return budget;
}

/* STOPPING=1: tell the manager how long the whole sequence may take (what
   avm_supervise_stop_budget says of the plan, from the services as they
   run).  */
static void
stop_budget_notify (struct sv *sv, const char *reason)
{
  uint64_t budget = STOP_BUDGET_FIXED + sv->g.qemu.stop_timeout;
  for (size_t i = 0; i < sv->n; i++)
    budget += sv->svcs[i].stop_timeout;
  avm_notify (&sv->notifier, "STOPPING=1\nSTATUS=stopping (%s)\nEXTEND_TIMEOUT_USEC=%llu", reason,
              (unsigned long long) budget);
}

/* STATUS= for the phase, sent when it changed.  */
void
sv_status (struct sv *sv)
{
  size_t helpers = sv->n, ready = 0;
  _cleanup_free_ char *text = NULL;
  for (size_t i = 0; i < helpers; i++)
    ready += sv->svcs[i].state == SVC_READY;
  switch (sv->phase)
    {
    case PHASE_HELPERS:
      text = avm_strdupf ("starting helpers %zu/%zu", ready, helpers);
      break;
    case PHASE_QEMU:
      text = avm_strdupf ("starting QEMU");
      break;
    case PHASE_BOOTING:
      text = avm_strdupf ("booting");
      break;
    case PHASE_RUNNING:
      if (ready < helpers)
        text = avm_strdupf ("running, %zu/%zu helpers ready", ready, helpers);
      else
        text = avm_strdupf ("running, booted in %.1f s", (double) (sv->g.t_booted - sv->g.t_qemu) / USEC_PER_SEC);
      break;
    case PHASE_STOPPING:
      text = avm_strdupf ("stopping");
      break;
    }
  if (!text || (sv->last_status && streq (sv->last_status, text)))
    return;
  avm_notify (&sv->notifier, "STATUS=%s", text);
  free (sv->last_status);
  sv->last_status = steal_pointer (&text);
}

void
sv_set_phase (struct sv *sv, enum phase p, const char *reason)
{
  if (sv->phase == PHASE_STOPPING || (sv->phase == p && p != PHASE_HELPERS))
    return; /* (a stop is never left) */
  sv->phase = p;
  switch (p)
    {
    case PHASE_HELPERS:
    case PHASE_QEMU:
    case PHASE_BOOTING:
      sv_status (sv);
      break;
    case PHASE_RUNNING:
      guest_boot_timers (sv, false);
      sv_timer_cancel (&sv->extend_timer);
      if (sv->g.boots > 0)
        avm_notify (&sv->notifier, "READY=1\nSTATUS=running, booted in %.1f s",
                    (double) (sv->g.t_booted - sv->g.t_qemu) / USEC_PER_SEC);
      else
        avm_notify (&sv->notifier, "READY=1\nSTATUS=running (no boot pattern in the profile)");
      break;
    case PHASE_STOPPING:
      guest_boot_timers (sv, false);
      sv_timer_cancel (&sv->extend_timer);
      sv_timer_cancel (&sv->ready_poll);
      svc_ready_watch_idle (sv);
      stop_budget_notify (sv, reason);
      break;
    }
}
