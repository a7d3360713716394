/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Scheduling: which helper starts when, and QEMU once every helper is
 * ready.  A pass runs from a deferred event source (sd-event's run queue,
 * as systemd's manager runs its jobs): whatever finds a service ready asks
 * for a pass with sv_schedule, and a pass never starts another one, so
 * nothing recurses however long the chain of `after` services.
 */
#include "supervise/internal.h"
#include "util/cleanup.h"

#include <string.h>

/* Spawn every helper that is waiting and whose `after` services are all
   ready, marking it in STARTED; stops at the first that cannot be spawned
   (marked failed, its error in ERR).  Needs no event loop (start_early).  */
static int
spawn_batch (struct sv *sv, bool *started, avm_error_t *err)
{
  for (size_t i = 0; i < sv->n; i++)
    {
      struct svc *s = &sv->svcs[i];
      if (s->state != SVC_WAITING)
        continue;
      bool go = true;
      for (size_t k = 0; k < s->def->nafter; k++)
        go &= sv->svcs[s->def->after[k]].state == SVC_READY;
      if (!go)
        continue;
      sv->ready_poll_since = sv_now (sv);
      int r = svc_start (s, err);
      if (r < 0)
        {
          s->state = SVC_FAILED;
          return r;
        }
      started[i] = true;
    }
  return 0;
}

/* One scheduling pass: start whatever can start, helpers whose `after`
   services are ready, QEMU once every helper is.  The whole batch of
   startable helpers is started before the readiness of any is looked at,
   so their start-ups overlap; those ready at once (no readiness rule) let
   the pass go on with the next batch, in a loop, not by recursion.  A
   service found ready later (its socket, file or READY=1) asks for another
   pass (sv_schedule), which runs from the loop.  */
static void
schedule_pass (struct sv *sv)
{
  bool more = true;
  while (more && sv->phase == PHASE_HELPERS)
    {
      memset (sv->started, 0, sv->n * sizeof *sv->started);
      _cleanup_error_ avm_error_t err = NULL;
      if (spawn_batch (sv, sv->started, &err) < 0)
        {
          sv_fail (sv, AVM_EXIT_SERVICE, "%s", err->msg);
          return;
        }
      /* Those spawned before the loop existed (start_early) are looked at
         with the first batch.  */
      for (size_t i = 0; i < sv->n; i++)
        if (sv->svcs[i].early)
          {
            sv->svcs[i].early = false;
            sv->started[i] = sv->svcs[i].state == SVC_STARTING;
          }
      /* Those without a readiness check are ready now; those waiting for a
         socket or a file are looked at once for the whole batch.  */
      bool check = false;
      more = false;
      for (size_t i = 0; i < sv->n && sv->phase == PHASE_HELPERS; i++)
        if (sv->started[i] && sv->svcs[i].state == SVC_STARTING)
          {
            if (sv->svcs[i].ready == AVM_READY_NONE)
              more |= svc_mark_ready (&sv->svcs[i]);
            else if (sv->svcs[i].ready == AVM_READY_SOCKET || sv->svcs[i].ready == AVM_READY_FILE)
              check = true;
          }
      if (check && sv->phase == PHASE_HELPERS)
        more |= svc_check_ready (sv);
    }
  if (sv->phase != PHASE_HELPERS)
    return;
  bool all_ready = true;
  for (size_t i = 0; i < sv->n; i++)
    all_ready &= sv->svcs[i].state == SVC_READY;
  sv_status (sv);
  if (all_ready && sv->g.qemu.state == SVC_WAITING)
    guest_start (sv);
}

static int
on_schedule (sd_event_source *src, void *data)
{
  schedule_pass (data);
  return 0;
}

/* Ask for a scheduling pass (from the loop, once, however often asked).  */
void
sv_schedule (struct sv *sv)
{
  if (sv->phase == PHASE_STOPPING || !sv->schedule_src)
    return;
  sym_sd_event_source_set_enabled (sv->schedule_src, SD_EVENT_ONESHOT);
}

/* The helpers that wait for nothing are spawned before the event loop
   exists: a spawn needs no sd-event, and libsystemd, loaded on a thread
   meanwhile (avm_systemd_prefetch), is then ready when setup_loop needs it
   instead of being waited for on the way to QEMU.  Their event sources
   are attached by setup_loop; their readiness is looked at by the first
   sv_schedule.  A spawn that fails here is reported the same way as one
   in the loop (sv_fail, once the loop exists), so the helpers already
   started are stopped in order, not killed.  */
void
sv_start_early (struct sv *sv)
{
  memset (sv->started, 0, sv->n * sizeof *sv->started);
  spawn_batch (sv, sv->started, &sv->early_error); /* (nothing is ready yet: those with no `after`) */
  for (size_t i = 0; i < sv->n; i++)
    sv->svcs[i].early = sv->started[i];
}

int
sv_schedule_attach (struct sv *sv, avm_error_t *err)
{
  int r = sym_sd_event_add_defer (sv->e, &sv->schedule_src, on_schedule, sv);
  if (r < 0)
    return avm_error_sys (err, -r, "scheduler");
  sym_sd_event_source_set_enabled (sv->schedule_src, SD_EVENT_OFF);
  return 0;
}
