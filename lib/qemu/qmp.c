/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QMP client.  The protocol, the framing rules and the error model are
 * described in qmp.h.
 *
 * Files: qmp.c (this one) is the protocol engine: the error helpers, the
 * output buffer and the pending list, reading and dispatching what QEMU
 * sends, the I/O loops (do_io, qmp_wait_for) and the event-loop interface.
 * qmp_connect.c creates, connects and closes a client, holds the handshake
 * (the greeting, qmp_capabilities) and the state accessors.  qmp_call.c
 * holds the requests (avm_qmp_send_async, avm_qmp_execute, avm_qmp_quit)
 * and the event API (avm_qmp_set_event_handler, avm_qmp_wait_event).
 * qmp_internal.h is what they share: struct avm_qmp and the engine's qmp_*
 * functions.  qmploop.c is the non-blocking connection attempt and the
 * event fields the supervisor reads.
 *
 * Structure: one non-blocking socket, an input buffer holding at most one
 * incomplete line (util/linebuf.h, the framing the control socket uses too:
 * bounded by AVM_QMP_MAX_LINE plus one read), an output
 * buffer of requests not yet written (with at most one descriptor to pass,
 * sent by sendmsg() with the first byte of its request, the bytes before it
 * by plain send()), and a FIFO of pending requests, each with a reply
 * callback.  Everything that arrives goes through ingest(),
 * which parses complete lines and dispatches greeting, replies and events.
 * The synchronous calls (connect, execute, quit, wait_event) are loops of
 * do_io() and poll() until a predicate holds (qmp_wait_for);
 * avm_qmp_process() is one do_io().  Synchronous execute registers an
 * internal reply callback, so replies to requests sent asynchronously keep
 * reaching their own callbacks while it waits.
 *
 * Re-entrancy: a line is consumed from the input buffer and parsed before
 * anything is dispatched, and the pending list is unlinked before callbacks
 * run, so callbacks may send requests, also synchronously (which reads more
 * input from a nested loop).
 *
 * States: GREETING (nothing received yet) -> NEGOTIATING (qmp_capabilities
 * sent) -> READY; CLOSED once QEMU closed the monitor, FAILED after a
 * protocol or I/O error (sticky, with its message).  Leaving READY fails
 * every pending request: its callback gets (NULL, NULL).
 */
#include "qemu/qmp_internal.h"
#include "util/deadline.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/strfmt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 65536
/* Reads per avm_qmp_process call, so that a flood cannot starve the loop.  */
#define MAX_READS_PER_CALL 16
/* Requests QEMU has not read yet.  */
#define MAX_OUTPUT (16 * 1024 * 1024)
/* Bytes of a message quoted in an error.  */
#define SNIPPET_LEN 64
/* Longest error description from QEMU copied into a message.  */
#define DESC_LEN 512

/* ------------------------------------------------------------------ */
/* Messages.  */

/* Printable copy of at most MAX bytes of S (control bytes and backslashes
   escaped, "..." appended when cut), so that whatever QEMU (or a fuzzer)
   sends cannot break the one-problem-per-line error format.  malloc'd, or
   NULL when out of memory.  */
char *
qmp_printable (const char *s, size_t len, size_t max)
{
  size_t n = len < max ? len : max;
  char *out = malloc (n * 4 + 4), *o = out;
  if (!out)
    return NULL;
  for (size_t i = 0; i < n; i++)
    {
      unsigned char c = s[i];
      if (c < 0x20 || c == 0x7f || c == '\\')
        o += sprintf (o, "\\x%02x", c);
      else
        *o++ = c;
    }
  if (n < len)
    o = stpcpy (o, "...");
  *o = '\0';
  return out;
}

void
qmp_fail_pending (struct avm_qmp *q)
{
  struct pending *p = q->head;

  q->head = q->tail = NULL;
  while (p)
    {
      struct pending *next = p->next;
      if (p->cb)
        p->cb (p->data, NULL, NULL);
      free (p);
      p = next;
    }
}

int
qmp_fail_conn (struct avm_qmp *q, int errnum, bool with_strerror, const char *fmt, ...)
{
  va_list ap;
  _cleanup_free_ char *msg = NULL;

  if (q->state == QMP_FAILED)
    return q->fail_code;
  if (q->state == QMP_CLOSED)
    return -ECONNRESET;
  va_start (ap, fmt);
  msg = avm_vstrdupf (fmt, ap);
  va_end (ap);
  free (q->fail_msg);
  if (with_strerror)
    q->fail_msg = avm_strdupf ("QMP socket %s: %s: %s", q->name, msg ? msg : "error", strerror (errnum));
  else
    q->fail_msg = avm_strdupf ("QMP socket %s: %s", q->name, msg ? msg : "error");
  q->fail_code = -(errnum > 0 ? errnum : EIO);
  q->state = QMP_FAILED;
  qmp_drop_pass_fd (q);
  qmp_fail_pending (q);
  return q->fail_code;
}

int
qmp_protocol_error (struct avm_qmp *q, const char *what, const char *line, size_t len)
{
  _cleanup_free_ char *snip = line ? qmp_printable (line, len, SNIPPET_LEN) : NULL;

  if (snip)
    return qmp_fail_conn (q, EPROTO, false, "protocol error: %s: %s", what, snip);
  return qmp_fail_conn (q, EPROTO, false, "protocol error: %s", what);
}

/* The sticky error of a FAILED client into ERR.  */
int
qmp_failed_error (struct avm_qmp *q, avm_error_t *err)
{
  return avm_error_fail (err, -q->fail_code, "%s", q->fail_msg ? q->fail_msg : "QMP connection failed");
}

static void
mark_closed (struct avm_qmp *q)
{
  if (q->state == QMP_CLOSED || q->state == QMP_FAILED)
    return;
  q->closed_in = q->state;
  q->discarded = avm_linebuf_pending (&q->in);
  q->state = QMP_CLOSED;
  qmp_drop_pass_fd (q);
  qmp_fail_pending (q);
}

/* "QMP socket NAME: QEMU closed the monitor[ WHILE]" into ERR.  */
int
qmp_closed_error (struct avm_qmp *q, const char *while_fmt, const char *what, avm_error_t *err)
{
  _cleanup_free_ char *tail = NULL;
  _cleanup_free_ char *extra = NULL;

  if (while_fmt)
    tail = avm_strdupf (while_fmt, what);
  if (q->discarded)
    extra = avm_strdupf (" (%zu bytes of an incomplete message discarded)", q->discarded);
  return avm_error_fail (err, ECONNRESET, "QMP socket %s: QEMU closed the monitor%s%s", q->name, tail ? tail : "",
                         extra ? extra : "");
}

/* An error reply to COMMAND into ERR: "QMP COMMAND: CLASS: DESC".  */
int
qmp_reply_error (const char *command, json_t *error, avm_error_t *err)
{
  /* Both are strings: handle_reply checked.  */
  json_t *cls = json_object_get (error, "class");
  json_t *desc = json_object_get (error, "desc");
  _cleanup_free_ char *cls_p = qmp_printable (json_string_value (cls), json_string_length (cls), 128);
  _cleanup_free_ char *desc_p = qmp_printable (json_string_value (desc), json_string_length (desc), DESC_LEN);
  int code = streq (json_string_value (cls), "CommandNotFound") ? EOPNOTSUPP : EREMOTEIO;

  return avm_error_fail (err, code, "QMP %s: %s: %s", command, cls_p ? cls_p : "?", desc_p ? desc_p : "?");
}

/* ------------------------------------------------------------------ */
/* Output.  */

void
qmp_drop_pass_fd (struct avm_qmp *q)
{
  if (q->pass_fd >= 0)
    close (q->pass_fd);
  q->pass_fd = -1;
}

/* Send the output from WPOS on with the waiting descriptor attached (as
   SCM_RIGHTS) to its first byte; the descriptor is closed once anything was
   sent.  What send() returns.  */
static ssize_t
send_with_fd (struct avm_qmp *q)
{
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } control;
  struct iovec iov = { .iov_base = q->wbuf + q->wpos, .iov_len = q->wlen - q->wpos };
  struct msghdr mh
      = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
  struct cmsghdr *c;
  ssize_t w;

  memset (&control, 0, sizeof control);
  c = CMSG_FIRSTHDR (&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (c), &q->pass_fd, sizeof (int));
  w = sendmsg (q->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
  /* The descriptor went with the first byte, whatever else was taken.  */
  if (w > 0)
    qmp_drop_pass_fd (q);
  return w;
}

int
qmp_flush_output (struct avm_qmp *q)
{
  if (q->state == QMP_FAILED)
    return q->fail_code;
  if (q->state == QMP_CLOSED || q->write_dead || q->fd < 0)
    return 0;
  while (q->wpos < q->wlen)
    {
      bool with_fd = q->pass_fd >= 0 && q->wpos == q->pass_fd_at;
      /* Plain bytes stop where the descriptor's request starts, so that
         the descriptor arrives with that request and no earlier.  */
      size_t end = q->pass_fd >= 0 && q->wpos < q->pass_fd_at ? q->pass_fd_at : q->wlen;
      ssize_t w
          = with_fd ? send_with_fd (q) : send (q->fd, q->wbuf + q->wpos, end - q->wpos, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
          if (errno == EPIPE || errno == ECONNRESET)
            {
              /* QEMU stopped reading; what it wrote before (a SHUTDOWN
                 event, a reply) may still be waiting in our receive
                 buffer, and the read side reports the close.  */
              q->write_dead = true;
              q->wpos = q->wlen = 0;
              qmp_drop_pass_fd (q);
              return 0;
            }
          if (with_fd)
            return qmp_fail_conn (q, errno, true, "cannot send a descriptor");
          return qmp_fail_conn (q, errno, true, "cannot write");
        }
      q->wpos += w;
    }
  q->wpos = q->wlen = 0;
  return 0;
}

/* Append a request to the output buffer and the pending list.  ARGS is
   stolen.  FD (unless -1) is duplicated to go out with the request's first
   byte.  No I/O.  */
int
qmp_enqueue (struct avm_qmp *q, const char *command, json_t *args, int fd, avm_qmp_reply_fn cb, void *data,
             json_int_t *idp, avm_error_t *err)
{
  _cleanup_json_ json_t *a = args;
  _cleanup_json_ json_t *msg = NULL;
  _cleanup_free_ char *text = NULL;
  _cleanup_free_ struct pending *p = NULL;
  json_t *cmd;

  if (!command || !*command)
    return avm_error_fail (err, EINVAL, "QMP socket %s: empty command name", q->name);
  if (a && !json_is_object (a))
    return avm_error_fail (err, EINVAL, "QMP %s: the arguments must be a JSON object", command);
  if (fd >= 0 && q->pass_fd >= 0)
    return avm_error_fail (err, EBUSY,
                           "QMP socket %s: cannot send %s with a descriptor while the descriptor of an earlier "
                           "request waits to be written",
                           q->name, command);
  cmd = json_string (command);
  if (!cmd)
    return avm_error_fail (err, EINVAL, "QMP socket %s: command name is not valid UTF-8", q->name);
  msg = json_object ();
  p = calloc (1, sizeof *p);
  if (!msg || !p || json_object_set_new (msg, "execute", cmd) < 0 || (a && json_object_set (msg, "arguments", a) < 0)
      || json_object_set_new (msg, "id", json_integer (q->next_id)) < 0)
    return avm_error_sys (err, ENOMEM, "QMP %s", command);
  text = json_dumps (msg, JSON_COMPACT);
  if (!text)
    return avm_error_sys (err, ENOMEM, "QMP %s", command);

  size_t n = strlen (text);
  if (q->wlen - q->wpos + n + 1 > MAX_OUTPUT)
    return avm_error_fail (err, ENOBUFS, "QMP socket %s: QEMU does not read its requests (%zu bytes waiting)", q->name,
                           q->wlen - q->wpos);
  if (q->wpos > 0)
    {
      memmove (q->wbuf, q->wbuf + q->wpos, q->wlen - q->wpos);
      if (q->pass_fd >= 0) /* not written yet: at or after WPOS */
        q->pass_fd_at -= q->wpos;
      q->wlen -= q->wpos;
      q->wpos = 0;
    }
  if (q->walloc < q->wlen + n + 1)
    {
      size_t na = q->walloc ? q->walloc : 4096;
      while (na < q->wlen + n + 1)
        na *= 2;
      char *nb = realloc (q->wbuf, na);
      if (!nb)
        return avm_error_sys (err, ENOMEM, "QMP %s", command);
      q->wbuf = nb;
      q->walloc = na;
    }
  /* The last step that can fail: nothing is left to undo.  */
  if (fd >= 0)
    {
      int d = fcntl (fd, F_DUPFD_CLOEXEC, 3);
      if (d < 0)
        return avm_error_sys (err, errno, "QMP %s: cannot duplicate descriptor %d", command, fd);
      q->pass_fd = d;
      q->pass_fd_at = q->wlen;
    }
  memcpy (q->wbuf + q->wlen, text, n);
  q->wbuf[q->wlen + n] = '\n';
  q->wlen += n + 1;

  p->id = q->next_id++;
  p->cb = cb;
  p->data = data;
  if (idp)
    *idp = p->id;
  if (q->tail)
    q->tail->next = p;
  else
    q->head = p;
  q->tail = steal_pointer (&p);
  return 0;
}

/* Take P (whose predecessor is PREV, or NULL) out of the pending list.  */
static void
unlink_pending (struct avm_qmp *q, struct pending *prev, struct pending *p)
{
  if (prev)
    prev->next = p->next;
  else
    q->head = p->next;
  if (q->tail == p)
    q->tail = prev;
}

/* Forget a pending request (timeout): a late reply is then ignored.  */
void
qmp_cancel_pending (struct avm_qmp *q, json_int_t id)
{
  struct pending *prev = NULL;
  for (struct pending *p = q->head; p; prev = p, p = p->next)
    if (p->id == id)
      {
        unlink_pending (q, prev, p);
        free (p);
        return;
      }
}

/* ------------------------------------------------------------------ */
/* Input.  */

void
qmp_queue_event (struct avm_qmp *q, json_t *msg)
{
  if (!q->queue)
    q->queue = json_array ();
  if (!q->queue)
    return;
  while (json_array_size (q->queue) >= AVM_QMP_MAX_QUEUED_EVENTS)
    json_array_remove (q->queue, 0);
  json_array_append (q->queue, msg);
}

bool
qmp_event_matches (const char *want, json_t *msg)
{
  return !want || streq (want, json_string_value (json_object_get (msg, "event")));
}

static int
handle_event (struct avm_qmp *q, json_t *msg, json_t *ev, const char *line, size_t len)
{
  json_t *data = json_object_get (msg, "data");
  json_t *ts = json_object_get (msg, "timestamp");
  bool taken = false;

  if (!json_is_string (ev) || json_string_length (ev) == 0)
    return qmp_protocol_error (q, "event name is not a non-empty string", line, len);
  if (data && !json_is_object (data))
    return qmp_protocol_error (q, "event data is not an object", line, len);
  if (ts && !json_is_object (ts))
    return qmp_protocol_error (q, "event timestamp is not an object", line, len);
  if (json_object_get (msg, "return") || json_object_get (msg, "error"))
    return qmp_protocol_error (q, "message is both an event and a reply", line, len);

  if (q->waiter && !q->waiter->got && qmp_event_matches (q->waiter->name, msg))
    {
      q->waiter->got = json_incref (msg);
      taken = true;
    }
  if (q->event_fn)
    q->event_fn (q->event_data, json_string_value (ev), data, ts);
  else if (!taken)
    qmp_queue_event (q, msg);
  return 0;
}

static int
handle_reply (struct avm_qmp *q, json_t *msg, json_t *ret, json_t *error, const char *line, size_t len)
{
  json_t *id = json_object_get (msg, "id");
  struct pending *p, *prev = NULL;

  if (ret && error)
    return qmp_protocol_error (q, "reply with both \"return\" and \"error\"", line, len);
  if (error
      && (!json_is_object (error) || !json_is_string (json_object_get (error, "class"))
          || !json_is_string (json_object_get (error, "desc"))))
    return qmp_protocol_error (q, "error reply without a class and a description", line, len);

  /* QEMU echoes the id; it omits it only when it could not parse the
     request, and it answers in order: such a reply is the oldest request's.  */
  for (p = q->head; p; prev = p, p = p->next)
    if (!id || (json_is_integer (id) && json_integer_value (id) == p->id))
      break;
  if (!p)
    return 0; /* not ours (any more): ignored */
  unlink_pending (q, prev, p);
  if (p->cb)
    p->cb (p->data, ret, error);
  free (p);
  return 0;
}

static bool
is_blank (const char *s, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
      return false;
  return true;
}

static int
handle_line (struct avm_qmp *q, const char *line, size_t len)
{
  json_error_t jerr;
  _cleanup_json_ json_t *msg = NULL;
  json_t *ev, *ret, *error;

  if (len > AVM_QMP_MAX_LINE)
    return qmp_fail_conn (q, EPROTO, false, "protocol error: message longer than %d bytes", AVM_QMP_MAX_LINE);
  msg = json_loadb (line, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!msg)
    {
      _cleanup_free_ char *what = avm_strdupf ("malformed JSON at byte %d (%s)", jerr.position, jerr.text);
      return qmp_protocol_error (q, what ? what : "malformed JSON", line, len);
    }
  if (!json_is_object (msg))
    return qmp_protocol_error (q, "message is not a JSON object", line, len);
  if (q->state == QMP_GREETING)
    return qmp_handle_greeting (q, msg, line, len);

  ev = json_object_get (msg, "event");
  ret = json_object_get (msg, "return");
  error = json_object_get (msg, "error");
  if (ev)
    return handle_event (q, msg, ev, line, len);
  if (ret || error)
    return handle_reply (q, msg, ret, error, line, len);
  if (json_object_get (msg, "QMP"))
    return qmp_protocol_error (q, "second greeting", line, len);
  return qmp_protocol_error (q, "message is neither a reply nor an event", line, len);
}

/* Parse and dispatch every complete line in the input buffer.  */
static int
ingest (struct avm_qmp *q)
{
  while (q->state != QMP_FAILED && q->state != QMP_CLOSED)
    {
      const char *line;
      size_t len;
      /* The line is consumed before it is dispatched: callbacks may read
         more input.  */
      int r = avm_linebuf_next (&q->in, &line, &len);
      if (r == 0)
        return 0;
      if (r < 0)
        return qmp_fail_conn (q, EPROTO, false, "protocol error: message longer than %d bytes", AVM_QMP_MAX_LINE);
      if (is_blank (line, len))
        continue;
      r = handle_line (q, line, len);
      if (r < 0)
        return r;
    }
  return q->state == QMP_FAILED ? q->fail_code : 0;
}

/* Write what can be written, then read and dispatch what is available,
   without blocking.  0: open, 1: closed, <0: failed.  */
static int
do_io (struct avm_qmp *q)
{
  int r;

  if (q->state == QMP_FAILED)
    return q->fail_code;
  if (q->state == QMP_CLOSED)
    return 1;
  r = qmp_flush_output (q);
  if (r < 0)
    return r;
  for (int i = 0; q->fd >= 0 && i < MAX_READS_PER_CALL; i++)
    {
      char *tail;
      if (avm_linebuf_reserve (&q->in, READ_CHUNK, &tail) < 0)
        return qmp_fail_conn (q, ENOMEM, true, "reading");
      ssize_t n = read (q->fd, tail, READ_CHUNK);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
          if (errno == ECONNRESET)
            {
              mark_closed (q);
              return 1;
            }
          return qmp_fail_conn (q, errno, true, "cannot read");
        }
      if (n == 0)
        {
          mark_closed (q);
          return 1;
        }
      avm_linebuf_commit (&q->in, n);
      r = ingest (q);
      if (r < 0)
        return r;
      if (q->state == QMP_CLOSED)
        return 1;
      if (n < READ_CHUNK)
        break;
    }
  /* Dispatching may have queued requests (qmp_capabilities, callbacks).  */
  r = qmp_flush_output (q);
  if (r < 0)
    return r;
  return q->state == QMP_CLOSED ? 1 : 0;
}

/* Loop of do_io and poll until DONE holds, the connection closes or fails
   (-ECONNRESET, the failure code), or DEADLINE passes (-ETIMEDOUT).  DONE
   is checked first, so what completes together with the close counts.  */
int
qmp_wait_for (struct avm_qmp *q, bool (*done) (struct avm_qmp *, void *), void *arg, long long deadline)
{
  for (;;)
    {
      if (done (q, arg))
        return 0;
      int r = do_io (q);
      if (done (q, arg))
        return 0;
      if (r < 0)
        return r;
      if (r > 0)
        return -ECONNRESET;
      int left = avm_time_left (deadline);
      if (left == 0 || q->fd < 0) /* no socket: nothing more can arrive */
        return -ETIMEDOUT;
      struct pollfd pfd = { .fd = q->fd, .events = POLLIN | (q->wpos < q->wlen && !q->write_dead ? POLLOUT : 0) };
      if (poll (&pfd, 1, left) < 0 && errno != EINTR)
        return qmp_fail_conn (q, errno, true, "poll");
    }
}

/* ------------------------------------------------------------------ */
/* Event-loop interface.  */

int
avm_qmp_fd (const struct avm_qmp *q)
{
  return q->fd;
}

uint32_t
avm_qmp_io_events (const struct avm_qmp *q)
{
  if (q->fd < 0 || q->state == QMP_CLOSED || q->state == QMP_FAILED)
    return 0;
  return EPOLLIN | (q->wpos < q->wlen && !q->write_dead ? EPOLLOUT : 0);
}

static int
process_result (struct avm_qmp *q, int r, avm_error_t *err)
{
  if (q->state == QMP_FAILED)
    return qmp_failed_error (q, err);
  if (r < 0)
    return avm_error_fail (err, -r, "QMP socket %s: I/O error", q->name);
  return q->state == QMP_CLOSED ? 1 : 0;
}

int
avm_qmp_process (struct avm_qmp *q, avm_error_t *err)
{
  return process_result (q, do_io (q), err);
}

int
avm_qmp_feed (struct avm_qmp *q, const void *buf, size_t len, avm_error_t *err)
{
  const char *p = buf;
  int r = 0;

  while (len > 0 && q->state != QMP_FAILED && q->state != QMP_CLOSED)
    {
      size_t n = len < READ_CHUNK ? len : READ_CHUNK;
      if (avm_linebuf_append (&q->in, p, n) < 0)
        {
          r = qmp_fail_conn (q, ENOMEM, true, "reading");
          break;
        }
      p += n;
      len -= n;
      r = ingest (q);
      if (r < 0)
        break;
    }
  if (r >= 0)
    r = qmp_flush_output (q);
  return process_result (q, r, err);
}
