/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshots: the helpers that suspend (services.NAME.snapshot: suspend),
   asked over their control sockets while the guest is paused, their state
   files copied into the snapshot, and copied back on a restore
   (snapshot_internal.h has the overview).  */
#include "snapshot/snapshot.h"
#include "supervise/internal.h"
#include "supervise/snapshot_internal.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strfmt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * services.NAME.snapshot: suspend, with snapshot_control naming a
 * socketpair resource: the service has one end (${fd:NAME}), avm the other
 * (NAME.peer).  The requests are Cuttlefish's, as run_cvd writes them to
 * secure_env's -snapshot_control_fd: a LauncherAction (one byte, 'A' =
 * kExtended) followed by an ExtendedLauncherAction protobuf with its
 * suspend (field 5) or resume (field 6) member set to the empty message,
 * serialized as 2a 00 or 32 00; the answer is one byte, LauncherResponse
 * 'S' (kSuccess).  The framing between the two differs by release:
 *   launcher-action (Android 15, 15 QPR1/QPR2, 16 and google/android-
 *     cuttlefish main): 'A', a host-order uint32 length, the protobuf:
 *     41 02 00 00 00 2a 00 (suspend), 41 02 00 00 00 32 00 (resume);
 *   launcher-action-typed (Android 14 QPR2, QPR3): 'A', a host-order
 *     uint32 ExtendedActionType (kSuspend 5, kResume 6), the uint32 length,
 *     the protobuf: 41 05 00 00 00 02 00 00 00 2a 00 (suspend),
 *     41 06 00 00 00 02 00 00 00 32 00 (resume).
 * (android14-release and QPR1 have no snapshot control: secure_env ignores
 * the flag, --undefok, so the profile refuses the save there.)  Sources:
 * google/android-cuttlefish 9b10c273 (2026-08-22)
 * base/cvd/cuttlefish/host/libs/command_util/util.cc RunLauncherAction,
 * ReadLauncherActionFromFd; .../command_util/runner/defs.h LauncherAction,
 * LauncherResponse; .../runner/run_cvd.proto; .../process_monitor/
 * process_monitor.cc SuspendResumeImpl (run_cvd's side: the request, then
 * the response awaited, for suspend and for resume);
 * .../commands/secure_env/suspend_resume_handler.cpp (secure_env's side:
 * suspend answers 'S' once its worker threads acknowledged, resume at once;
 * an unexpected request ends its handler thread, unanswered);
 * device.google.cuttlefish android14-qpr2-release 45db0625
 * host/libs/command_util/launcher_message.cc WriteToFd,
 * host/libs/command_util/runner/defs.h ExtendedActionType.
 * The exchange is event driven (an sd-event io source and a timer): a
 * suspend waits for secure_env's worker threads to finish what they do,
 * which may be a KeyMint operation of seconds.
 */

#define HELPER_TIMEOUT (5 * USEC_PER_SEC)
#define LAUNCHER_ACTION_EXTENDED 'A'
#define LAUNCHER_RESPONSE_SUCCESS 'S'

/* The request for SUSPEND (else resume) in FORMAT, into BUF; its length.  */
size_t
helper_request (enum avm_snapshot_control_format format, bool suspend, unsigned char buf[16])
{
  uint32_t len = 2, type = suspend ? 5 : 6; /* ExtendedActionType kSuspend, kResume */
  size_t n = 0;
  buf[n++] = LAUNCHER_ACTION_EXTENDED;
  if (format == AVM_SNAPSHOT_CONTROL_LAUNCHER_ACTION_TYPED)
    {
      memcpy (buf + n, &type, 4); /* (host order, as the C++ struct is written) */
      n += 4;
    }
  memcpy (buf + n, &len, 4);
  n += 4;
  buf[n++] = suspend ? 0x2a : 0x32; /* field 5 or 6, length-delimited */
  buf[n++] = 0x00;                  /* the empty Suspend or Resume message */
  return n;
}

static const struct avm_plan_service *
helper_def (struct snapsave *s)
{
  return &s->sv->plan->services[s->helper];
}

static void
helper_done (struct snapsave *s)
{
  sv_timer_cancel (&s->ctl_io);
  sv_timer_cancel (&s->ctl_timer);
  s->helper++;
  helper_next (s);
}

/* An answer on the control socket.  */
static int
on_helper_io (sd_event_source *src, int fd, uint32_t revents, void *data)
{
  struct snapsave *s = data;
  const struct avm_plan_service *d = helper_def (s);
  bool suspend = s->step == SAVE_SUSPEND;
  unsigned char c;
  ssize_t n = recv (fd, &c, 1, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return 0;
  if (n == 1 && c == LAUNCHER_RESPONSE_SUCCESS)
    {
      if (suspend)
        s->held[s->helper] = HELD_SUSPENDED;
      else
        {
          s->held[s->helper] = HELD_NO;
          sv_info (s->sv, "snapshot %s: services.%s resumed", s->name, d->name);
        }
      helper_done (s);
      return 0;
    }
  char what[64];
  if (n == 1)
    snprintf (what, sizeof what, "answered %s0x%02x", c == 'E' ? "'E' (error), " : "", c);
  else
    snprintf (what, sizeof what, "%s", n == 0 ? "closed its control socket" : strerror (errno));
  if (suspend)
    save_fail (s, AVM_EXIT_FAILURE, "services.%s did not suspend for the save: it %s (snapshot_control %s)", d->name,
               what, d->snapshot_control);
  else
    {
      sv_info (s->sv, "snapshot %s: services.%s did not acknowledge its resume: it %s", s->name, d->name, what);
      s->held[s->helper] = HELD_NO;
      helper_done (s);
    }
  return 0;
}

static int
on_helper_timeout (sd_event_source *src, uint64_t usec, void *data)
{
  struct snapsave *s = data;
  const struct avm_plan_service *d = helper_def (s);
  s->ctl_timer = sym_sd_event_source_disable_unref (s->ctl_timer);
  if (s->step == SAVE_SUSPEND)
    save_fail (s, AVM_EXIT_FAILURE,
               "services.%s did not acknowledge the suspend request within %llu s (snapshot_control %s); the guest "
               "runs on",
               d->name, (unsigned long long) (HELPER_TIMEOUT / USEC_PER_SEC), d->snapshot_control);
  else
    {
      sv_info (s->sv, "snapshot %s: services.%s did not acknowledge its resume within %llu s", s->name, d->name,
               (unsigned long long) (HELPER_TIMEOUT / USEC_PER_SEC));
      s->held[s->helper] = HELD_NO;
      helper_done (s);
    }
  return 0;
}

/* Copy the state files of helper D (suspended, or stateless) into the
   staging directory (service-NAME/BASENAME), recording them (or their
   absence) in S->services.  */
static int
helper_files (struct snapsave *s, const struct avm_plan_service *d, avm_error_t *err)
{
  if (!d->snapshot_files || !d->snapshot_files[0])
    return 0;
  _cleanup_free_ char *sub = avm_strdupf ("service-%s", d->name);
  _cleanup_free_ char *dir = sub ? avm_path_join (s->staging, sub) : NULL;
  json_t *files = json_array ();
  if (!dir || !files || (!s->services && !(s->services = json_object ()))
      || json_object_set_new (s->services, d->name, json_pack ("{s:o}", "files", files)) < 0)
    return avm_error_sys (err, ENOMEM, "snapshot");
  if (mkdir (dir, 0700) < 0)
    return avm_error_sys (err, errno, "%s", dir);
  for (char **f = d->snapshot_files; *f; f++)
    {
      const char *base = strrchr (*f, '/') + 1;
      _cleanup_free_ char *rel = avm_strdupf ("%s/%s", sub, base);
      _cleanup_free_ char *to = avm_path_join (dir, base);
      struct stat st;
      int r;
      if (!rel || !to)
        return avm_error_sys (err, ENOMEM, "snapshot");
      if (stat (*f, &st) < 0 && errno == ENOENT)
        {
          if (json_array_append_new (files, json_pack ("{s:s, s:b}", "path", *f, "absent", 1)) < 0)
            return avm_error_sys (err, ENOMEM, "snapshot");
          continue;
        }
      if ((r = avm_copy_sparse (*f, to, 0600, err)) < 0 || (r = fsync_path (to, O_RDONLY, err)) < 0)
        {
          avm_error_prefix (err, "services.%s: state file", d->name);
          return r;
        }
      if (json_array_append_new (files, json_pack ("{s:s, s:s}", "path", *f, "file", rel)) < 0)
        return avm_error_sys (err, ENOMEM, "snapshot");
    }
  return fsync_path (dir, O_RDONLY | O_DIRECTORY, err);
}

/* The next helper to ask (SAVE_SUSPEND: each that suspends; SAVE_RESUME:
   each asked), else the next step.  */
void
helper_next (struct snapsave *s)
{
  struct sv *sv = s->sv;
  const struct avm_plan *plan = sv->plan;
  bool suspend = s->step == SAVE_SUSPEND;
  for (; s->helper < plan->nservices && s->helper < sv->n; s->helper++)
    {
      const struct avm_plan_service *d = &plan->services[s->helper];
      struct svc *svc = &sv->svcs[s->helper];
      if (d->snapshot != AVM_SNAPSHOT_SUSPEND || (!suspend && s->held[s->helper] == HELD_NO))
        continue;
      _cleanup_free_ char *peer = avm_strdupf ("%s.peer", d->snapshot_control);
      int fd = avm_resources_fd (sv->res, peer);
      bool running = svc->pid > 0 && (svc->state == SVC_STARTING || svc->state == SVC_READY);
      if (suspend && (!running || fd < 0))
        {
          save_fail (s, AVM_EXIT_FAILURE, "services.%s cannot suspend for the save: %s", d->name,
                     fd < 0 ? "its control socket is not open" : svc_state_name (svc->state));
          return;
        }
      if (!running || fd < 0)
        {
          s->held[s->helper] = HELD_NO; /* (gone: nothing to resume) */
          continue;
        }
      /* What a request that timed out earlier left unread goes first.  */
      unsigned char junk[64];
      while (recv (fd, junk, sizeof junk, MSG_DONTWAIT) > 0)
        ;
      unsigned char req[16];
      size_t len = helper_request (d->snapshot_control_format, suspend, req);
      ssize_t n = send (fd, req, len, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n != (ssize_t) len)
        {
          const char *why = n < 0 ? strerror (errno) : "a short write";
          if (suspend)
            {
              save_fail (s, AVM_EXIT_FAILURE, "services.%s: the suspend request: %s", d->name, why);
              return;
            }
          sv_info (sv, "snapshot %s: services.%s: the resume request: %s", s->name, d->name, why);
          s->held[s->helper] = HELD_NO;
          continue;
        }
      if (suspend)
        s->held[s->helper] = HELD_ASKED;
      else if (s->held[s->helper] == HELD_ASKED)
        {
          /* It never acknowledged the suspend: its late answer would be
             taken for this one's; not awaited.  */
          sv_info (sv, "snapshot %s: services.%s asked to resume", s->name, d->name);
          s->held[s->helper] = HELD_NO;
          continue;
        }
      int r = sym_sd_event_add_io (sv->e, &s->ctl_io, fd, EPOLLIN, on_helper_io, s);
      if (r >= 0)
        r = sv_timer (sv, &s->ctl_timer, HELPER_TIMEOUT, on_helper_timeout, s);
      if (r < 0)
        {
          if (suspend)
            save_fail (s, AVM_EXIT_FAILURE, "services.%s: %s", d->name, strerror (-r));
          else
            {
              s->held[s->helper] = HELD_NO;
              sv_timer_cancel (&s->ctl_io);
              continue;
            }
        }
      return; /* on_helper_io or on_helper_timeout goes on */
    }
  if (suspend)
    {
      /* All suspended: their files hold still.  A stateless helper's files
         are taken as they are, the guest paused (Cuttlefish's snapshot
         copies the instance directory so, its helpers stopped).  */
      for (size_t i = 0; i < plan->nservices && i < sv->n; i++)
        {
          const struct avm_plan_service *d = &plan->services[i];
          bool stateless = d->snapshot == AVM_SNAPSHOT_STATELESS && d->snapshot_files;
          if (s->held[i] != HELD_SUSPENDED && !stateless)
            continue;
          _cleanup_error_ avm_error_t err = NULL;
          if (helper_files (s, d, &err) < 0)
            {
              save_fail (s, AVM_EXIT_FAILURE, "%s", err->msg);
              return;
            }
          if (!stateless)
            sv_info (sv, "snapshot %s: services.%s suspended", s->name, d->name);
        }
      s->step = SAVE_DISK;
      s->disk = 0;
      s->dstep = DISK_ADD;
      save_next (s);
    }
  else if (s->failing)
    save_fail_cont (s);
  else
    {
      s->step = SAVE_CONT;
      save_next (s);
    }
}

/* The state files of the helpers (services.NAME.snapshot_files), as the
   snapshot restored has them: copied back (through a
   temporary file renamed into place), or removed when the save found
   none; before any helper starts.  A file the snapshot does not list is
   left as it is (a service that did not suspend then).  */
int
sv_restore_service_files (struct sv *sv, avm_error_t *err)
{
  json_t *meta = sv->o->restore_meta;
  json_t *saved = json_object_get (meta, "services");
  const char *name = sv->plan->restore ?: "?";
  if (!meta)
    return 0;
  for (size_t i = 0; i + 1 < sv->plan->nservices; i++)
    {
      const struct avm_plan_service *d = &sv->plan->services[i];
      if (!d->snapshot_files)
        continue;
      json_t *files = json_object_get (json_object_get (saved, d->name), "files");
      if (!files)
        {
          sv_info (sv, "snapshot %s has no state files of services.%s: it starts with those it has", name, d->name);
          continue;
        }
      for (char **f = d->snapshot_files; *f; f++)
        {
          const char *base = strrchr (*f, '/') + 1;
          json_t *e, *hit = NULL;
          size_t k;
          json_array_foreach (files, k, e)
            {
              const char *p = json_string_value (json_object_get (e, "path"));
              const char *b = p ? strrchr (p, '/') : NULL;
              if (b && streq (b + 1, base))
                hit = e;
            }
          if (!hit)
            continue;
          const char *file = json_string_value (json_object_get (hit, "file"));
          if (!file)
            {
              if (unlink (*f) < 0 && errno != ENOENT)
                return avm_error_sys (err, errno, "snapshot %s: services.%s: %s", name, d->name, *f);
              continue;
            }
          _cleanup_free_ char *from = avm_path_join (sv->o->restore_dir, file);
          _cleanup_free_ char *tmp = avm_strdupf ("%s.avm-restore", *f);
          _cleanup_free_ char *dir = strndup (*f, (size_t) (base - *f));
          int r;
          if (!from || !tmp || !dir)
            return avm_error_sys (err, ENOMEM, "snapshot %s", name);
          if (strstr (file, "..") || (r = avm_mkdir_p (dir, 0755, err)) == 0)
            r = strstr (file, "..") ? avm_error_fail (err, EINVAL, "\"%s\" is outside the snapshot", file)
                                    : avm_copy_sparse (from, tmp, 0600, err);
          if (r == 0 && rename (tmp, *f) < 0)
            r = avm_error_sys (err, errno, "%s", *f);
          if (r < 0)
            {
              unlink (tmp);
              avm_error_prefix (err, "snapshot %s: services.%s: state file", name, d->name);
              return r;
            }
        }
      sv_info (sv, "snapshot %s: state files of services.%s restored", name, d->name);
    }
  return 0;
}
