/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the control socket serves (avm-status(1), avm-stop(1)):
 *   {"command":"status"}             the instance's state as JSON
 *   {"command":"live"}               {"ok":true,"live":true,"qemu":S} once
 *                                    QEMU's monitor answers query-status
 *                                    (at once before it is up), as the
 *                                    watchdog probes it (avm status --live)
 *   {"command":"stop"}               the graceful stop sequence
 *   {"command":"stop","kill":true}   everything killed at once
 *   {"command":"screenshot","output":K}
 *                                    a PNG of display output K (default 0),
 *                                    written by QEMU into the runtime
 *                                    directory: {"ok":true,"path":P,...};
 *                                    errors carry "exit_code" (2: bad
 *                                    output, no GPU; 1: runtime)
 *   {"command":"snapshot-save","name":N,"replace":B}
 *                                    save the booted platform as snapshot
 *                                    N (snapshot_save.c): {"ok":true,"path":P,
 *                                    "seconds":S,"paused":S}
 */
#include "supervise/internal.h"
#include "util/cleanup.h"
#include "util/json.h"

#include <string.h>
#include <unistd.h>

static const char *
phase_name (enum phase p)
{
  static const char *const names[] = { "starting", "starting", "booting", "running", "stopping" };
  return p < ARRAY_SIZE (names) ? names[p] : "?";
}

static json_t *
seconds (uint64_t usec)
{
  return json_real ((double) (usec / 1000) / 1000.0);
}

static json_t *
service_json (struct sv *sv, struct svc *s, uint64_t now)
{
  json_t *j = json_pack ("{s:s, s:s, s:b, s:i, s:i}", "name", s->name, "state", svc_state_name (s->state), "critical",
                         s->critical, "starts", (int) s->starts, "restarts", (int) s->restarts);
  if (!j)
    return NULL;
  json_object_set_new (j, "pid", s->pid > 0 ? json_integer (s->pid) : json_null ());
  json_object_set_new (j, "uptime", s->pid > 0 ? seconds (now - s->t_spawn) : json_null ());
  json_object_set_new (j, "ready_after",
                       s->t_ready >= s->t_spawn && s->t_ready ? seconds (s->t_ready - s->t_spawn) : json_null ());
  if (s->exit_code >= 0 || s->exit_signal)
    {
      _cleanup_free_ char *how = sv_describe_exit (s->exit_code, s->exit_signal);
      json_object_set_new (j, "last_exit", json_string (how));
    }
  if (s->state == SVC_BACKOFF)
    json_object_set_new (j, "restart_in", seconds (s->t_restart > now ? s->t_restart - now : 0));
  if (s->notify_status)
    json_object_set_new (j, "notify_status", json_string (s->notify_status));
  if (s->log)
    json_object_set_new (j, "log", json_string (avm_logsink_path (s->log)));
  if (s->program)
    json_object_set_new (j, "program", json_string (s->program));
  return j;
}

json_t *
sv_status_json (struct sv *sv)
{
  uint64_t now = sv_now (sv);
  json_t *j = json_pack ("{s:b, s:i, s:s?, s:i, s:s, s:o, s:s, s:s, s:s}", "ok", 1, "instance", sv->instance, "profile",
                         sv->profile, "pid", (int) getpid (), "state", phase_name (sv->phase), "uptime",
                         seconds (now - sv->t_start), "run_dir", sv->run_dir, "state_dir", sv->state_dir, "log_dir",
                         sv->log_dir);
  if (!j)
    return NULL;
  if (sv->plan->restore)
    json_object_set_new (j, "restored_from", json_string (sv->plan->restore));
  sv_clock_json (sv, j);
  /* The Functional Safety verdict of the plan this instance runs.  */
  json_object_set_new (j, "approved", json_boolean (sv->plan->approved));
  json_t *unapproved = json_array ();
  for (size_t i = 0; sv->plan->unapproved && sv->plan->unapproved[i]; i++)
    json_array_append_new (unapproved, json_string (sv->plan->unapproved[i]));
  json_object_set_new (j, "unapproved", unapproved);
  /* How the guest is reached, from the plan: its vsock CID, NICs' MACs,
     adb and display endpoints.  */
  _cleanup_json_ json_t *guest = avm_plan_guest_json (sv->plan);
  json_object_update (j, guest);
  json_object_set_new (j, "booted", json_boolean (sv->g.boots > 0));
  json_object_set_new (j, "boot_time", sv->g.boots > 0 ? seconds (sv->g.t_booted - sv->g.t_qemu) : json_null ());
  json_object_set_new (j, "boots", json_integer (sv->g.boots));
  if (sv->stop_reason)
    json_object_set_new (j, "stop_reason", json_string (sv->stop_reason));
  if (sv->g.failure_shot)
    json_object_set_new (j, "boot_failure_screenshot", json_string (sv->g.failure_shot));
  struct svc *q = &sv->g.qemu;
  json_t *qj = service_json (sv, q, now);
  json_object_del (qj, "critical");
  json_object_del (qj, "restarts");
  json_object_del (qj, "starts");
  json_object_set_new (qj, "monitor", json_boolean (sv->g.qmp_ready));
  json_object_set_new (qj, "status", sv->g.qemu_status ? json_string (sv->g.qemu_status) : json_null ());
  json_object_set_new (j, "qemu", qj);
  json_t *arr = json_array ();
  for (size_t i = 0; i < sv->n; i++)
    json_array_append_new (arr, service_json (sv, &sv->svcs[i], now));
  /* Services the plan skipped (program not installed): never started.  */
  for (size_t k = 0; k < sv->plan->nskipped; k++)
    json_array_append_new (arr, json_pack ("{s:s, s:s, s:b, s:s, s:i, s:i, s:n, s:n, s:n}", "name",
                                           sv->plan->skipped[k].name, "state", "skipped", "critical", 0, "reason",
                                           sv->plan->skipped[k].reason, "starts", 0, "restarts", 0, "pid", "uptime",
                                           "ready_after"));
  json_object_set_new (j, "services", arr);
  arr = json_array ();
  for (size_t i = 0; i < sv->g.ncons; i++)
    json_array_append_new (arr,
                           json_pack ("{s:s, s:s, s:I, s:b}", "name", sv->g.cons[i].name, "log",
                                      avm_logsink_path (sv->g.cons[i].log), "bytes",
                                      (json_int_t) avm_logsink_bytes (sv->g.cons[i].log), "boot", sv->g.cons[i].boot));
  json_object_set_new (j, "consoles", arr);
  return j;
}

json_t *
sv_control (void *data, const char *command, json_t *request, struct avm_control_request *req)
{
  struct sv *sv = data;
  if (streq (command, "status"))
    {
      /* Keep the cached QEMU status fresh for the next caller.  */
      if (sv->g.qmp_ready)
        guest_watchdog_refresh (sv);
      return sv_status_json (sv);
    }
  if (streq (command, "live"))
    return guest_control_live (sv, req);
  if (streq (command, "screenshot"))
    return sv_control_screenshot (sv, request, req);
  if (streq (command, "snapshot-save"))
    return sv_control_snapshot_save (sv, request, req);
  if (streq (command, "stop"))
    {
      int now = 0;
      json_unpack (request, "{s?b}", "kill", &now);
      bool already = sv->phase == PHASE_STOPPING;
      if (now)
        sv_kill_now (sv, "avm stop --kill");
      else if (!already)
        sv_request_stop (sv, "avm stop");
      return json_pack ("{s:b, s:b, s:i}", "ok", 1, "already_stopping", already, "pid", (int) getpid ());
    }
  return NULL;
}
