/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QMP client: the requests (avm_qmp_send_async, avm_qmp_execute, their
 * forms passing a descriptor, avm_qmp_quit) and the event API
 * (avm_qmp_set_event_handler, avm_qmp_wait_event), on top of the engine of
 * qmp.c.
 */
#include "qemu/qmp_internal.h"
#include "util/deadline.h"
#include "util/cleanup.h"
#include "util/json.h"

#include <errno.h>
#include <sys/socket.h>

/* ------------------------------------------------------------------ */
/* Requests.  */

/* Can requests be sent?  */
static int
check_ready (struct avm_qmp *q, const char *command, avm_error_t *err)
{
  switch (q->state)
    {
    case QMP_READY:
      return 0;
    case QMP_FAILED:
      return qmp_failed_error (q, err);
    case QMP_CLOSED:
      return qmp_closed_error (q, NULL, NULL, err);
    default:
      return avm_error_fail (err, ENOTCONN, "QMP socket %s: cannot send %s before the handshake completed", q->name,
                             command ? command : "a command");
    }
}

/* Can FD be passed with COMMAND?  */
static int
check_pass_fd (struct avm_qmp *q, const char *command, int fd, avm_error_t *err)
{
  int domain = AF_UNIX;
  socklen_t len = sizeof domain;

  if (!command)
    command = "a command";
  if (fd < 0)
    return avm_error_fail (err, EBADF, "QMP socket %s: cannot pass descriptor %d with %s: not a descriptor", q->name,
                           fd, command);
  /* Only a unix socket carries descriptors (a TCP socket would fail the
     connection at the write).  No socket (fuzzing): output accumulates.  */
  if (q->fd >= 0 && getsockopt (q->fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain != AF_UNIX)
    return avm_error_fail (err, EAFNOSUPPORT, "QMP socket %s: cannot pass a descriptor with %s: not a unix socket",
                           q->name, command);
  return 0;
}

/* avm_qmp_send_async, with FD (or -1) passed along.  */
static int
send_async (struct avm_qmp *q, const char *command, json_t *arguments, int fd, avm_qmp_reply_fn reply_cb, void *data,
            avm_error_t *err)
{
  _cleanup_json_ json_t *args = arguments;
  int r = check_ready (q, command, err);

  if (r < 0)
    return r;
  r = qmp_enqueue (q, command, steal_pointer (&args), fd, reply_cb, data, NULL, err);
  if (r < 0)
    return r;
  /* A write failure fails the connection, and with it this request: its
     callback runs, so the request counts as sent.  */
  qmp_flush_output (q);
  return 0;
}

int
avm_qmp_send_async (struct avm_qmp *q, const char *command, json_t *arguments, avm_qmp_reply_fn reply_cb, void *data,
                    avm_error_t *err)
{
  return send_async (q, command, arguments, -1, reply_cb, data, err);
}

int
avm_qmp_send_fd_async (struct avm_qmp *q, const char *command, json_t *arguments, int fd, avm_qmp_reply_fn reply_cb,
                       void *data, avm_error_t *err)
{
  _cleanup_json_ json_t *args = arguments;
  int r = check_pass_fd (q, command, fd, err);

  if (r < 0)
    return r;
  return send_async (q, command, steal_pointer (&args), fd, reply_cb, data, err);
}

struct sync_reply
{
  bool done;
  json_t *ret;
  json_t *error;
};

static void
sync_reply_cb (void *data, json_t *ret, json_t *error)
{
  struct sync_reply *s = data;
  s->done = true;
  s->ret = json_incref (ret);
  s->error = json_incref (error);
}

static bool
sync_done (struct avm_qmp *q, void *arg)
{
  return ((struct sync_reply *) arg)->done;
}

/* avm_qmp_execute, with FD (or -1) passed along.  */
static int
execute (struct avm_qmp *q, const char *command, json_t *arguments, int fd, int timeout_ms, json_t **ret,
         avm_error_t *err)
{
  _cleanup_json_ json_t *args = arguments;
  long long deadline = avm_deadline_after (timeout_ms);
  struct sync_reply s = { 0 };
  json_int_t id;
  int r;

  if (ret)
    *ret = NULL;
  r = check_ready (q, command, err);
  if (r < 0)
    return r;
  r = qmp_enqueue (q, command, steal_pointer (&args), fd, sync_reply_cb, &s, &id, err);
  if (r < 0)
    return r;
  r = qmp_wait_for (q, sync_done, &s, deadline);
  if (!s.done)
    qmp_cancel_pending (q, id);

  if (s.ret)
    {
      if (ret)
        *ret = s.ret;
      else
        json_decref (s.ret);
      return 0;
    }
  if (s.error)
    {
      r = qmp_reply_error (command, s.error, err);
      json_decref (s.error);
      return r;
    }
  if (q->state == QMP_FAILED)
    return qmp_failed_error (q, err);
  if (q->state == QMP_CLOSED)
    return qmp_closed_error (q, " while waiting for the reply to %s", command, err);
  if (r == -ETIMEDOUT)
    return avm_error_fail (err, ETIMEDOUT, "QMP socket %s: no reply to %s within %d ms", q->name, command, timeout_ms);
  return avm_error_fail (err, r < 0 ? -r : EIO, "QMP socket %s: %s failed", q->name, command);
}

int
avm_qmp_execute (struct avm_qmp *q, const char *command, json_t *arguments, int timeout_ms, json_t **ret,
                 avm_error_t *err)
{
  return execute (q, command, arguments, -1, timeout_ms, ret, err);
}

int
avm_qmp_execute_fd (struct avm_qmp *q, const char *command, json_t *arguments, int fd, int timeout_ms, json_t **ret,
                    avm_error_t *err)
{
  _cleanup_json_ json_t *args = arguments;
  int r;

  if (ret)
    *ret = NULL;
  r = check_pass_fd (q, command, fd, err);
  if (r < 0)
    return r;
  return execute (q, command, steal_pointer (&args), fd, timeout_ms, ret, err);
}

static bool
quit_done (struct avm_qmp *q, void *arg)
{
  return q->state == QMP_CLOSED || ((struct sync_reply *) arg)->error;
}

int
avm_qmp_quit (struct avm_qmp *q, int timeout_ms, avm_error_t *err)
{
  long long deadline = avm_deadline_after (timeout_ms);
  struct sync_reply s = { 0 };
  json_int_t id;
  int r;

  if (q->state == QMP_CLOSED)
    return 0;
  r = check_ready (q, "quit", err);
  if (r < 0)
    return r;
  r = qmp_enqueue (q, "quit", NULL, -1, sync_reply_cb, &s, &id, err);
  if (r < 0)
    return r;
  r = qmp_wait_for (q, quit_done, &s, deadline);
  if (!s.done)
    qmp_cancel_pending (q, id);
  json_decref (s.ret);

  if (s.error)
    {
      r = qmp_reply_error ("quit", s.error, err);
      json_decref (s.error);
      return r;
    }
  if (q->state == QMP_CLOSED)
    return 0;
  if (q->state == QMP_FAILED)
    return qmp_failed_error (q, err);
  if (r == -ETIMEDOUT)
    return avm_error_fail (err, ETIMEDOUT, "QMP socket %s: %s within %d ms", q->name,
                           s.done ? "QEMU acknowledged quit but did not close the monitor"
                                  : "no reply to quit and no close of the monitor",
                           timeout_ms);
  return avm_error_fail (err, r < 0 ? -r : EIO, "QMP socket %s: quit failed", q->name);
}

/* ------------------------------------------------------------------ */
/* Events.  */

void
avm_qmp_set_event_handler (struct avm_qmp *q, avm_qmp_event_fn fn, void *data)
{
  q->event_fn = fn;
  q->event_data = data;
  if (!fn || !q->queue || json_array_size (q->queue) == 0)
    return;
  /* Detach first: the handler may change the handler again.  */
  _cleanup_json_ json_t *queued = steal_pointer (&q->queue);
  size_t i;
  json_t *ev;
  json_array_foreach (queued, i, ev)
    {
      if (!q->event_fn)
        {
          qmp_queue_event (q, ev);
          continue;
        }
      q->event_fn (q->event_data, json_string_value (json_object_get (ev, "event")), json_object_get (ev, "data"),
                   json_object_get (ev, "timestamp"));
    }
}

static bool
event_done (struct avm_qmp *q, void *arg)
{
  return ((struct event_waiter *) arg)->got != NULL;
}

int
avm_qmp_wait_event (struct avm_qmp *q, const char *name, int timeout_ms, json_t **event, avm_error_t *err)
{
  long long deadline = avm_deadline_after (timeout_ms);
  struct event_waiter w = { .name = name };
  struct event_waiter *outer = q->waiter;
  const char *what = name ? name : "QMP";
  int r;

  if (event)
    *event = NULL;
  if (!q->event_fn && q->queue)
    {
      size_t i;
      json_t *ev;
      json_array_foreach (q->queue, i, ev)
        if (qmp_event_matches (name, ev))
          {
            if (event)
              *event = json_incref (ev);
            json_array_remove (q->queue, i);
            return 0;
          }
    }
  if (q->state == QMP_FAILED)
    return qmp_failed_error (q, err);
  if (q->state == QMP_CLOSED)
    return qmp_closed_error (q, " while waiting for the %s event", what, err);

  q->waiter = &w;
  r = qmp_wait_for (q, event_done, &w, deadline);
  q->waiter = outer;

  if (w.got)
    {
      if (event)
        *event = w.got;
      else
        json_decref (w.got);
      return 0;
    }
  if (q->state == QMP_FAILED)
    return qmp_failed_error (q, err);
  if (q->state == QMP_CLOSED)
    return qmp_closed_error (q, " while waiting for the %s event", what, err);
  if (r == -ETIMEDOUT)
    return avm_error_fail (err, ETIMEDOUT, "QMP socket %s: no %s event within %d ms", q->name, what, timeout_ms);
  return avm_error_fail (err, r < 0 ? -r : EIO, "QMP socket %s: waiting for the %s event failed", q->name, what);
}
