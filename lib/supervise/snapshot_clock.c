/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshots: the guest's wall clock after a restore (snapshot.clock).  A
   restored guest's clock goes on from the save, however long ago that was
   (QEMU keeps the guest's clocks as saved).  guest-agent: once the guest
   runs, avm sets it to the host's time through the QEMU guest agent
   (qemu/qga.h), as `virsh domtime --sync` does; the guest counts as booted
   already (READY=1 is not held back for it), and the answer, or why there
   was none, goes to the log and the status JSON ("clock").  service: a
   helper the restore starts anew does it (Cuttlefish's modem_simulator
   sends the network time on the guest's first signal strength query);
   none: nothing does, which the log says with how far behind it is.  */
#include "qemu/qga.h"
#include "supervise/internal.h"
#include "util/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long the agent may take: it answers in milliseconds when it runs;
   one that does not run never does.  */
#define CLOCK_TIMEOUT (10 * USEC_PER_SEC)

static void
clock_close (struct restore *rs)
{
  rs->clock_io = sym_sd_event_source_disable_unref (rs->clock_io);
  sv_timer_cancel (&rs->clock_timer);
  avm_qga_closep (&rs->qga);
}

/* Seconds the guest's clock is behind: the agent's answer, else the time
   since the save.  */
static double
behind_s (struct restore *rs)
{
  if (rs->behind_known)
    return (double) rs->behind_ns / 1e9;
  json_int_t saved = json_integer_value (json_object_get (rs->meta, "created_unix"));
  return saved > 0 ? difftime (time (NULL), (time_t) saved) : 0;
}

static void
clock_failed (struct sv *sv, const char *why)
{
  struct restore *rs = &sv->g.restore;
  bool known = false;
  if (rs->qga)
    {
      rs->behind_ns = avm_qga_behind_ns (rs->qga, &known);
      rs->behind_known = known;
    }
  clock_close (rs);
  rs->clock = "failed";
  free (rs->clock_error);
  rs->clock_error = strdup (why);
  sv_info (sv, "warning: the guest clock was not set: %s; it goes on from snapshot %s (%.1f s behind)", why, rs->name,
           behind_s (rs));
}

static void
clock_step (struct sv *sv)
{
  struct restore *rs = &sv->g.restore;
  _cleanup_error_ avm_error_t err = NULL;
  int r = avm_qga_process (rs->qga, &err);
  if (r < 0)
    {
      clock_failed (sv, err->msg);
      return;
    }
  if (r == 1)
    {
      rs->behind_ns = avm_qga_behind_ns (rs->qga, &rs->behind_known);
      clock_close (rs);
      rs->clock = "set";
      sv_info (sv, "guest clock set through the guest agent (it was %.1f s behind)", behind_s (rs));
      return;
    }
  sym_sd_event_source_set_io_events (rs->clock_io, avm_qga_io_events (rs->qga));
}

static int
on_clock_io (sd_event_source *src, int fd, uint32_t revents, void *data)
{
  (void) src, (void) fd, (void) revents;
  clock_step (data);
  return 0;
}

static int
on_clock_timeout (sd_event_source *src, uint64_t usec, void *data)
{
  (void) src, (void) usec;
  struct sv *sv = data;
  struct restore *rs = &sv->g.restore;
  rs->clock_timer = sym_sd_event_source_disable_unref (rs->clock_timer);
  _cleanup_free_ char *why = NULL;
  if (asprintf (&why, "the guest agent on %s did not answer (%s) within %llu s: is qemu-ga running in the guest?",
                sv->plan->agent_socket, rs->qga ? avm_qga_step (rs->qga) : "?",
                (unsigned long long) (CLOCK_TIMEOUT / USEC_PER_SEC))
      < 0)
    why = NULL;
  clock_failed (sv, why ? why : "the guest agent did not answer");
  return 0;
}

void
sv_clock_after_restore (struct sv *sv)
{
  struct restore *rs = &sv->g.restore;
  switch (sv->plan->clock)
    {
    case AVM_PLAN_CLOCK_SERVICE:
      rs->clock = "service";
      sv_info (sv, "guest clock: set by %s, started anew (it is %.1f s behind until then)", sv->plan->clock_service,
               behind_s (rs));
      return;
    case AVM_PLAN_CLOCK_NONE:
      rs->clock = "none";
      sv_info (sv, "guest clock: not set (snapshot.clock none): it goes on from snapshot %s (%.1f s behind)", rs->name,
               behind_s (rs));
      return;
    case AVM_PLAN_CLOCK_GUEST_AGENT:
      break;
    }
  _cleanup_error_ avm_error_t err = NULL;
  rs->clock = "pending";
  /* A fresh id per restore: an answer left in the port by an earlier
     client is not taken for this one's.  */
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  int64_t id = ((int64_t) getpid () << 20) ^ ((int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
  if (avm_qga_clock_connect (sv->plan->agent_socket, id, &rs->qga, &err) < 0)
    {
      clock_failed (sv, err->msg);
      return;
    }
  if (sym_sd_event_add_io (sv->e, &rs->clock_io, avm_qga_fd (rs->qga), avm_qga_io_events (rs->qga), on_clock_io, sv) < 0
      || sv_timer (sv, &rs->clock_timer, CLOCK_TIMEOUT, on_clock_timeout, sv) < 0)
    {
      clock_failed (sv, "cannot watch the guest agent's socket");
      return;
    }
  clock_step (sv);
}

void
sv_clock_json (struct sv *sv, json_t *status)
{
  struct restore *rs = &sv->g.restore;
  if (!rs->clock)
    return;
  json_t *c = json_pack ("{s:s}", "state", rs->clock);
  if (!c)
    return;
  if (sv->plan->clock_service)
    json_object_set_new (c, "service", json_string (sv->plan->clock_service));
  if (rs->behind_known)
    json_object_set_new (c, "behind", json_real ((double) rs->behind_ns / 1e9));
  if (rs->clock_error)
    json_object_set_new (c, "error", json_string (rs->clock_error));
  json_object_set_new (status, "clock", c);
}

void
sv_clock_clear (struct sv *sv)
{
  struct restore *rs = &sv->g.restore;
  if (rs->qga && rs->clock && !strcmp (rs->clock, "pending"))
    clock_failed (sv, "QEMU exited before the guest agent answered");
  clock_close (rs);
}

/* ... and what it said, at teardown.  */
void
sv_clock_free (struct sv *sv)
{
  sv_clock_clear (sv);
  free (sv->g.restore.clock_error);
  sv->g.restore.clock_error = NULL;
}
