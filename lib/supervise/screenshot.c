/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pictures of the guest's screen: QMP screendump (PNG, QEMU 7.1 or later)
 * of one head of the GPU (the plan's device gpu0), over the supervisor's
 * own monitor connection, never blocking the loop.  Two users:
 *   - `avm screenshot` (the control command "screenshot"): QEMU writes the
 *     PNG into the runtime directory under a name of its own, the reply
 *     names it, and the client copies it where the user wants it;
 *   - the boot failure picture (guest.c): into the log directory before
 *     QEMU is stopped, within SV_SHOT_FAILURE_TIMEOUT.
 * Each picture has a timer: when QEMU does not answer in time the picture
 * is given up (the callback says so); the request itself cannot be taken
 * back, so its state lives on until QEMU answers or the monitor closes
 * (QMP calls every reply callback once), and a file written late is
 * removed then.
 */
#include "supervise/internal.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/strfmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct shot
{
  struct sv *sv;
  char *path;
  char *what; /* "screenshot of output K" (messages) */
  sv_shot_fn done;
  void *data;
  sd_event_source *timer;
  uint64_t timeout;
  bool finished; /* DONE was called (reply, error or timeout) */
};

static void shot_finish (struct shot *s, const char *path, int exit_code, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static void
shot_finish (struct shot *s, const char *path, int exit_code, const char *fmt, ...)
{
  if (s->finished)
    return;
  s->finished = true;
  sv_timer_cancel (&s->timer);
  _cleanup_free_ char *msg = NULL;
  if (fmt)
    {
      va_list ap;
      va_start (ap, fmt);
      msg = avm_vstrdupf (fmt, ap);
      va_end (ap);
    }
  s->done (s->sv, s->data, path, fmt ? (msg ? msg : "out of memory") : NULL, exit_code);
}

static void
shot_free (struct shot *s)
{
  sv_timer_cancel (&s->timer);
  free (s->path);
  free (s->what);
  free (s);
}

static void
on_screendump (void *data, json_t *ret, json_t *error)
{
  struct shot *s = data;
  struct sv *sv = s->sv;
  if (s->finished)
    {
      /* Given up on (timeout): a file written late goes.  */
      if (ret)
        unlink (s->path);
      shot_free (s);
      return;
    }
  if (ret)
    shot_finish (s, s->path, 0, NULL);
  else if (error)
    {
      const char *desc = NULL;
      json_unpack (error, "{s?s}", "desc", &desc); /* (QMP's error object: desc may be missing) */
      int major = 0, minor = 0, micro = 0;
      if (sv->g.qmp)
        avm_qmp_qemu_version_numbers (sv->g.qmp, &major, &minor, &micro);
      if (desc && strstr (desc, "format") && (major < 7 || (major == 7 && minor < 1)))
        shot_finish (s, NULL, AVM_EXIT_FAILURE, "%s: QEMU %d.%d lacks PNG screendump (7.1+): %s", s->what, major, minor,
                     desc);
      else
        shot_finish (s, NULL, AVM_EXIT_FAILURE, "%s: QEMU screendump failed: %s", s->what, desc ? desc : "?");
      unlink (s->path);
    }
  else
    shot_finish (s, NULL, AVM_EXIT_FAILURE, "%s: QEMU closed its monitor before answering", s->what);
  shot_free (s);
}

static int
on_shot_timeout (sd_event_source *src, uint64_t usec, void *data)
{
  struct shot *s = data;
  s->timer = sym_sd_event_source_disable_unref (s->timer);
  shot_finish (s, NULL, AVM_EXIT_FAILURE, "%s: QEMU did not answer within %.1f s", s->what,
               (double) s->timeout / USEC_PER_SEC);
  return 0;
}

int
sv_screenshot (struct sv *sv, const char *path, unsigned output, uint64_t timeout, sv_shot_fn done, void *data,
               avm_error_t *err)
{
  unsigned outputs = sv->plan->gpu_outputs;
  if (outputs == 0)
    return avm_error_input (err, "instance %d has no GPU (display.gpu is none): there is no screen to take",
                            sv->instance);
  if (output >= outputs)
    return avm_error_input (err, "--output %u: profile %s has %u display output%s (0..%u)", output,
                            sv->profile ? sv->profile : "?", outputs, outputs == 1 ? "" : "s", outputs - 1);
  if (sv->g.qemu.pid <= 0)
    return avm_error_fail (err, ESRCH, "QEMU is not running");
  if (!sv->g.qmp_ready || !sv->g.qmp)
    return avm_error_fail (err, ENOTCONN, "QEMU's monitor is not connected yet; try again in a moment");
  int major = 0, minor = 0, micro = 0;
  avm_qmp_qemu_version_numbers (sv->g.qmp, &major, &minor, &micro);
  if (major < 7 || (major == 7 && minor < 1))
    return avm_error_fail (err, EOPNOTSUPP, "QEMU %d.%d lacks PNG screendump (7.1+)", major, minor);

  struct shot *s = calloc (1, sizeof *s);
  if (!s)
    return avm_error_sys (err, ENOMEM, "screenshot");
  *s = (struct shot) { .sv = sv, .done = done, .data = data, .timeout = timeout };
  s->path = strdup (path);
  s->what = avm_strdupf ("screenshot of output %u", output);
  json_t *args = json_pack ("{s:s, s:s, s:s, s:i}", "filename", path, "format", "png", "device", AVM_PLAN_GPU_ID,
                            "head", (int) output);
  if (!s->path || !s->what || !args)
    {
      json_decref (args);
      shot_free (s);
      return avm_error_sys (err, ENOMEM, "screenshot");
    }
  int r = avm_qmp_send_async (sv->g.qmp, "screendump", args, on_screendump, s, err);
  if (r < 0)
    {
      shot_free (s);
      return r;
    }
  guest_qmp_update_io (sv);
  if (timeout > 0)
    sv_timer (sv, &s->timer, timeout, on_shot_timeout, s);
  return 0;
}

/* ---- the boot failure picture ------------------------------------------- */

/* The boot failed: guest_stop takes a picture of the screen first (the
   first failure only; nothing when the stop was already under way).  */
void
sv_want_failure_shot (struct sv *sv)
{
  if (sv->phase != PHASE_STOPPING && sv->exit_status == 0)
    sv->g.failure_shot_wanted = true;
}

static void
on_failure_shot (struct sv *sv, void *data, const char *path, const char *error, int exit_code)
{
  if (path)
    {
      free (sv->g.failure_shot);
      sv->g.failure_shot = strdup (path);
      sv_info (sv, "the screen at the boot failure: %s", path);
      if (sv->error)
        avm_error_append (&sv->error, sv->error->exit_code, 0, "the screen at the boot failure: %s", path);
    }
  else
    sv_info (sv, "no picture of the screen at the boot failure: %s", error);
  if (sv->g.qstop == QSTOP_SCREENSHOT)
    {
      sv->g.qstop = QSTOP_NONE;
      guest_stop (sv);
    }
}

/* Start the picture (LOGDIR/boot-failed-YYYYmmdd-HHMMSS.png, output 0):
   true when guest_stop is to wait for it.  */
bool
sv_failure_shot_start (struct sv *sv)
{
  sv->g.failure_shot_wanted = false;
  if (!sv->g.qmp_ready || sv->plan->gpu_outputs == 0)
    return false;
  char stamp[32];
  time_t now = time (NULL);
  struct tm tm;
  strftime (stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime_r (&now, &tm));
  _cleanup_free_ char *path = avm_strdupf ("%s/boot-failed-%s.png", sv->log_dir, stamp);
  _cleanup_error_ avm_error_t err = NULL;
  if (!path)
    return false;
  if (sv_screenshot (sv, path, 0, SV_SHOT_FAILURE_TIMEOUT, on_failure_shot, NULL, &err) < 0)
    {
      sv_info (sv, "no picture of the screen at the boot failure: %s", err->msg);
      return false;
    }
  sv->g.qstop = QSTOP_SCREENSHOT;
  return true;
}

/* ---- the control command ------------------------------------------------ */

struct control_shot
{
  struct avm_control_request *req;
  unsigned output;
};

static void
on_control_shot (struct sv *sv, void *data, const char *path, const char *error, int exit_code)
{
  struct control_shot *cs = data;
  json_t *reply;
  if (path)
    reply = json_pack ("{s:b, s:s, s:i}", "ok", 1, "path", path, "output", (int) cs->output);
  else
    reply = json_pack ("{s:b, s:s, s:i}", "ok", 0, "error", error, "exit_code", exit_code);
  /* A client gone meanwhile will not copy the picture and remove it.  */
  if (avm_control_reply (cs->req, reply) < 0 && path)
    unlink (path);
  free (cs);
}

json_t *
sv_control_screenshot (struct sv *sv, json_t *request, struct avm_control_request *req)
{
  static unsigned counter;
  _cleanup_error_ avm_error_t err = NULL;
  json_t *out = NULL;
  json_unpack (request, "{s?o}", "output", &out); /* (checked below) */
  json_int_t output = out ? json_integer_value (out) : 0;
  if ((out && !json_is_integer (out)) || output < 0 || output > 15)
    return json_pack ("{s:b, s:s, s:i}", "ok", 0, "error", "\"output\" must be an integer 0..15", "exit_code",
                      AVM_EXIT_USAGE);
  _cleanup_free_ char *name
      = avm_strdupf ("screenshot-%d-%llu-%u.png", (int) getpid (), (unsigned long long) sv_now (sv), ++counter);
  _cleanup_free_ char *path = name ? avm_strdupf ("%s/%s", sv->run_dir, name) : NULL;
  struct control_shot *cs = calloc (1, sizeof *cs);
  if (!path || !cs)
    {
      free (cs);
      return json_pack ("{s:b, s:s, s:i}", "ok", 0, "error", "out of memory", "exit_code", AVM_EXIT_FAILURE);
    }
  *cs = (struct control_shot) { req, (unsigned) output };
  if (sv_screenshot (sv, path, (unsigned) output, SV_SHOT_CONTROL_TIMEOUT, on_control_shot, cs, &err) < 0)
    {
      free (cs);
      return json_pack ("{s:b, s:s, s:i}", "ok", 0, "error", err->msg, "exit_code", err->exit_code);
    }
  return AVM_CONTROL_PENDING;
}
