/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QMP client.  The protocol, the framing rules and the error model are
 * described in qmp.h.
 *
 * Structure: one non-blocking socket, an input buffer holding at most one
 * incomplete line (util/linebuf.h, the framing the control socket uses too:
 * bounded by AVM_QMP_MAX_LINE plus one read), an output
 * buffer of requests not yet written, and a FIFO of pending requests, each
 * with a reply callback.  Everything that arrives goes through ingest(),
 * which parses complete lines and dispatches greeting, replies and events.
 * The synchronous calls (connect, execute, quit, wait_event) are loops of
 * do_io() and poll() until a predicate holds; avm_qmp_process() is one
 * do_io().  Synchronous execute registers an internal reply callback, so
 * replies to requests sent asynchronously keep reaching their own callbacks
 * while it waits.
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
#include "qemu/qmp.h"
#include "util/deadline.h"
#include "util/linebuf.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/strfmt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#define READ_CHUNK 65536
/* Reads per avm_qmp_process call, so that a flood cannot starve the loop.  */
#define MAX_READS_PER_CALL 16
/* Requests QEMU has not read yet.  */
#define MAX_OUTPUT (16 * 1024 * 1024)
/* Bytes of a message quoted in an error.  */
#define SNIPPET_LEN 64
/* Longest error description from QEMU copied into a message.  */
#define DESC_LEN 512

enum qmp_state
{
  QMP_GREETING,
  QMP_NEGOTIATING,
  QMP_READY,
  QMP_CLOSED,
  QMP_FAILED,
};

struct pending
{
  struct pending *next;
  json_int_t id;
  avm_qmp_reply_fn cb;
  void *data;
};

struct event_waiter
{
  const char *name; /* NULL: any */
  json_t *got;
};

struct avm_qmp
{
  int fd;
  char *name;
  enum qmp_state state;
  enum qmp_state closed_in; /* state when QEMU closed the monitor */
  int fail_code;            /* negative errno when FAILED */
  char *fail_msg;           /* whole message when FAILED */
  size_t discarded;         /* bytes of an incomplete line at the close */
  bool write_dead;          /* the peer stopped reading (EPIPE) */

  json_t *greeting;
  char version[48];
  int major, minor, micro;
  char *package;

  struct avm_linebuf in; /* framing (util/linebuf.h), at most AVM_QMP_MAX_LINE a message */
  char *wbuf;
  size_t wpos, wlen, walloc;

  json_int_t next_id;
  struct pending *head, *tail;

  avm_qmp_event_fn event_fn;
  void *event_data;
  json_t *queue; /* events kept while no handler is set */
  struct event_waiter *waiter;
};

/* ------------------------------------------------------------------ */
/* Messages.  */

/* Printable copy of at most MAX bytes of S (control bytes and backslashes
   escaped, "..." appended when cut), so that whatever QEMU (or a fuzzer)
   sends cannot break the one-problem-per-line error format.  malloc'd, or
   NULL when out of memory.  */
static char *
printable (const char *s, size_t len, size_t max)
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

static void
fail_pending (struct avm_qmp *q)
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

/* Enter FAILED with "QMP socket NAME: MESSAGE" (": strerror" appended when
   WITH_STRERROR); the first failure is kept.  Returns the stored code.  */
static int fail_conn (struct avm_qmp *q, int errnum, bool with_strerror, const char *fmt, ...)
  __attribute__ ((format (printf, 4, 5)));

static int
fail_conn (struct avm_qmp *q, int errnum, bool with_strerror, const char *fmt, ...)
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
  fail_pending (q);
  return q->fail_code;
}

static int
protocol_error (struct avm_qmp *q, const char *what, const char *line, size_t len)
{
  _cleanup_free_ char *snip = line ? printable (line, len, SNIPPET_LEN) : NULL;

  if (snip)
    return fail_conn (q, EPROTO, false, "protocol error: %s: %s", what, snip);
  return fail_conn (q, EPROTO, false, "protocol error: %s", what);
}

/* The sticky error of a FAILED client into ERR.  */
static int
failed_error (struct avm_qmp *q, avm_error_t *err)
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
  fail_pending (q);
}

/* "QMP socket NAME: QEMU closed the monitor[ WHILE]" into ERR.  */
static int
closed_error (struct avm_qmp *q, const char *while_fmt, const char *what, avm_error_t *err)
{
  _cleanup_free_ char *tail = NULL;
  _cleanup_free_ char *extra = NULL;

  if (while_fmt)
    tail = avm_strdupf (while_fmt, what);
  if (q->discarded)
    extra = avm_strdupf (" (%zu bytes of an incomplete message discarded)", q->discarded);
  return avm_error_fail (err, ECONNRESET, "QMP socket %s: QEMU closed the monitor%s%s", q->name,
                         tail ? tail : "", extra ? extra : "");
}

/* An error reply to COMMAND into ERR: "QMP COMMAND: CLASS: DESC".  */
static int
reply_error (const char *command, json_t *error, avm_error_t *err)
{
  /* Both are strings: handle_reply checked.  */
  json_t *cls = json_object_get (error, "class");
  json_t *desc = json_object_get (error, "desc");
  _cleanup_free_ char *cls_p = printable (json_string_value (cls), json_string_length (cls), 128);
  _cleanup_free_ char *desc_p = printable (json_string_value (desc), json_string_length (desc), DESC_LEN);
  int code = streq (json_string_value (cls), "CommandNotFound") ? EOPNOTSUPP : EREMOTEIO;

  return avm_error_fail (err, code, "QMP %s: %s: %s", command, cls_p ? cls_p : "?", desc_p ? desc_p : "?");
}

/* ------------------------------------------------------------------ */
/* Output.  */

static int
flush_output (struct avm_qmp *q)
{
  if (q->state == QMP_FAILED)
    return q->fail_code;
  if (q->state == QMP_CLOSED || q->write_dead || q->fd < 0)
    return 0;
  while (q->wpos < q->wlen)
    {
      ssize_t w = send (q->fd, q->wbuf + q->wpos, q->wlen - q->wpos, MSG_NOSIGNAL | MSG_DONTWAIT);
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
              return 0;
            }
          return fail_conn (q, errno, true, "cannot write");
        }
      q->wpos += w;
    }
  q->wpos = q->wlen = 0;
  return 0;
}

/* Append a request to the output buffer and the pending list.  ARGS is
   stolen.  No I/O.  */
static int
enqueue (struct avm_qmp *q, const char *command, json_t *args, avm_qmp_reply_fn cb, void *data, json_int_t *idp,
         avm_error_t *err)
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
  cmd = json_string (command);
  if (!cmd)
    return avm_error_fail (err, EINVAL, "QMP socket %s: command name is not valid UTF-8", q->name);
  msg = json_object ();
  p = calloc (1, sizeof *p);
  if (!msg || !p || json_object_set_new (msg, "execute", cmd) < 0
      || (a && json_object_set (msg, "arguments", a) < 0)
      || json_object_set_new (msg, "id", json_integer (q->next_id)) < 0)
    return avm_error_sys (err, ENOMEM, "QMP %s", command);
  text = json_dumps (msg, JSON_COMPACT);
  if (!text)
    return avm_error_sys (err, ENOMEM, "QMP %s", command);

  size_t n = strlen (text);
  if (q->wlen - q->wpos + n + 1 > MAX_OUTPUT)
    return avm_error_fail (err, ENOBUFS, "QMP socket %s: QEMU does not read its requests (%zu bytes waiting)",
                           q->name, q->wlen - q->wpos);
  if (q->wpos > 0)
    {
      memmove (q->wbuf, q->wbuf + q->wpos, q->wlen - q->wpos);
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
static void
cancel_pending (struct avm_qmp *q, json_int_t id)
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

static void
caps_reply (void *data, json_t *ret, json_t *error)
{
  struct avm_qmp *q = data;

  /* (NULL, NULL): the connection closed or failed, or the client is being
     freed; the state already says so.  */
  if (ret)
    {
      if (q->state == QMP_NEGOTIATING)
        q->state = QMP_READY;
    }
  else if (error)
    {
      avm_error_t e = NULL;
      reply_error ("qmp_capabilities", error, &e);
      fail_conn (q, e ? e->code : EPROTO, false, "%s", e ? e->msg : "qmp_capabilities failed");
      avm_error_free (e);
    }
}

static int
handle_greeting (struct avm_qmp *q, json_t *msg, const char *line, size_t len)
{
  json_t *qmp = json_object_get (msg, "QMP");
  json_t *ver = json_object_get (qmp, "version");
  json_t *qemu = json_object_get (ver, "qemu");
  json_t *pkg = json_object_get (ver, "package");
  json_t *num[3] = { json_object_get (qemu, "major"), json_object_get (qemu, "minor"),
                     json_object_get (qemu, "micro") };
  int v[3];

  if (!json_is_object (qmp))
    return protocol_error (q, "expected the QMP greeting", line, len);
  for (int i = 0; i < 3; i++)
    {
      if (!json_is_integer (num[i]) || json_integer_value (num[i]) < 0 || json_integer_value (num[i]) > 99999)
        return protocol_error (q, "greeting without a valid QEMU version", line, len);
      v[i] = (int) json_integer_value (num[i]);
    }
  if (pkg && !json_is_string (pkg))
    return protocol_error (q, "greeting with a package that is not a string", line, len);

  q->major = v[0];
  q->minor = v[1];
  q->micro = v[2];
  snprintf (q->version, sizeof q->version, "%d.%d.%d", v[0], v[1], v[2]);
  if (pkg)
    {
      /* Older QEMU sent " (Debian 1:2.8+dfsg-6)".  */
      const char *s = json_string_value (pkg), *e = s + json_string_length (pkg);
      while (s < e && (*s == ' ' || *s == '('))
        s++;
      while (e > s && (e[-1] == ' ' || e[-1] == ')'))
        e--;
      if (e > s)
        {
          q->package = printable (s, e - s, 256);
          if (!q->package)
            return fail_conn (q, ENOMEM, true, "reading the greeting");
        }
    }
  q->greeting = json_incref (msg);
  q->state = QMP_NEGOTIATING;
  avm_error_t e = NULL;
  int r = enqueue (q, "qmp_capabilities", NULL, caps_reply, q, NULL, &e);
  if (r < 0)
    {
      fail_conn (q, -r, false, "%s", e ? e->msg : "cannot send qmp_capabilities");
      avm_error_free (e);
      return q->fail_code;
    }
  return 0;
}

static void
queue_event (struct avm_qmp *q, json_t *msg)
{
  if (!q->queue)
    q->queue = json_array ();
  if (!q->queue)
    return;
  while (json_array_size (q->queue) >= AVM_QMP_MAX_QUEUED_EVENTS)
    json_array_remove (q->queue, 0);
  json_array_append (q->queue, msg);
}

static bool
event_matches (const char *want, json_t *msg)
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
    return protocol_error (q, "event name is not a non-empty string", line, len);
  if (data && !json_is_object (data))
    return protocol_error (q, "event data is not an object", line, len);
  if (ts && !json_is_object (ts))
    return protocol_error (q, "event timestamp is not an object", line, len);
  if (json_object_get (msg, "return") || json_object_get (msg, "error"))
    return protocol_error (q, "message is both an event and a reply", line, len);

  if (q->waiter && !q->waiter->got && event_matches (q->waiter->name, msg))
    {
      q->waiter->got = json_incref (msg);
      taken = true;
    }
  if (q->event_fn)
    q->event_fn (q->event_data, json_string_value (ev), data, ts);
  else if (!taken)
    queue_event (q, msg);
  return 0;
}

static int
handle_reply (struct avm_qmp *q, json_t *msg, json_t *ret, json_t *error, const char *line, size_t len)
{
  json_t *id = json_object_get (msg, "id");
  struct pending *p, *prev = NULL;

  if (ret && error)
    return protocol_error (q, "reply with both \"return\" and \"error\"", line, len);
  if (error && (!json_is_object (error) || !json_is_string (json_object_get (error, "class"))
                || !json_is_string (json_object_get (error, "desc"))))
    return protocol_error (q, "error reply without a class and a description", line, len);

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
    return fail_conn (q, EPROTO, false, "protocol error: message longer than %d bytes", AVM_QMP_MAX_LINE);
  msg = json_loadb (line, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!msg)
    {
      _cleanup_free_ char *what = avm_strdupf ("malformed JSON at byte %d (%s)", jerr.position, jerr.text);
      return protocol_error (q, what ? what : "malformed JSON", line, len);
    }
  if (!json_is_object (msg))
    return protocol_error (q, "message is not a JSON object", line, len);
  if (q->state == QMP_GREETING)
    return handle_greeting (q, msg, line, len);

  ev = json_object_get (msg, "event");
  ret = json_object_get (msg, "return");
  error = json_object_get (msg, "error");
  if (ev)
    return handle_event (q, msg, ev, line, len);
  if (ret || error)
    return handle_reply (q, msg, ret, error, line, len);
  if (json_object_get (msg, "QMP"))
    return protocol_error (q, "second greeting", line, len);
  return protocol_error (q, "message is neither a reply nor an event", line, len);
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
        return fail_conn (q, EPROTO, false, "protocol error: message longer than %d bytes", AVM_QMP_MAX_LINE);
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
  r = flush_output (q);
  if (r < 0)
    return r;
  for (int i = 0; q->fd >= 0 && i < MAX_READS_PER_CALL; i++)
    {
      char *tail;
      if (avm_linebuf_reserve (&q->in, READ_CHUNK, &tail) < 0)
        return fail_conn (q, ENOMEM, true, "reading");
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
          return fail_conn (q, errno, true, "cannot read");
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
  r = flush_output (q);
  if (r < 0)
    return r;
  return q->state == QMP_CLOSED ? 1 : 0;
}

/* Loop of do_io and poll until DONE holds, the connection closes or fails
   (-ECONNRESET, the failure code), or DEADLINE passes (-ETIMEDOUT).  DONE
   is checked first, so what completes together with the close counts.  */
static int
wait_for (struct avm_qmp *q, bool (*done) (struct avm_qmp *, void *), void *arg, long long deadline)
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
        return fail_conn (q, errno, true, "poll");
    }
}

/* ------------------------------------------------------------------ */
/* Connection.  */

int
avm_qmp_new (int fd, const char *name, struct avm_qmp **out, avm_error_t *err)
{
  _cleanup_close_ int owned = fd;
  struct avm_qmp *q;

  *out = NULL;
  if (!name)
    name = "(unnamed)";
  if (fd >= 0)
    {
      int fl = fcntl (fd, F_GETFL);
      if (fl < 0 || fcntl (fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return avm_error_sys (err, errno, "QMP socket %s", name);
    }
  q = calloc (1, sizeof *q);
  if (!q || !(q->name = strdup (name)))
    {
      free (q);
      return avm_error_sys (err, ENOMEM, "QMP socket %s", name);
    }
  q->fd = steal_fd (&owned);
  q->in.max_line = AVM_QMP_MAX_LINE;
  q->state = QMP_GREETING;
  q->next_id = 1;
  *out = q;
  return 0;
}

static bool
ready_done (struct avm_qmp *q, void *arg)
{
  return q->state == QMP_READY;
}

static int
handshake (struct avm_qmp *q, long long deadline, int timeout_ms, avm_error_t *err)
{
  int r = wait_for (q, ready_done, NULL, deadline);

  if (r == 0)
    return 0;
  if (q->state == QMP_FAILED)
    return failed_error (q, err);
  if (q->state == QMP_CLOSED)
    return closed_error (q, q->closed_in == QMP_GREETING ? " before the greeting" : " during %s",
                         "capabilities negotiation", err);
  if (q->state == QMP_GREETING)
    return avm_error_fail (err, ETIMEDOUT,
                           "QMP socket %s: no greeting from QEMU within %d ms (is another client connected?)",
                           q->name, timeout_ms);
  return avm_error_fail (err, ETIMEDOUT, "QMP socket %s: no reply to qmp_capabilities within %d ms", q->name,
                         timeout_ms);
}

static int
connect_fd_until (int fd, const char *name, long long deadline, int timeout_ms, struct avm_qmp **out,
                  avm_error_t *err)
{
  struct avm_qmp *q = NULL;
  int r = avm_qmp_new (fd, name, &q, err);

  if (r < 0)
    return r;
  r = handshake (q, deadline, timeout_ms, err);
  if (r < 0)
    {
      avm_qmp_close (q);
      return r;
    }
  *out = q;
  return 0;
}

int
avm_qmp_connect_fd (int fd, const char *name, int timeout_ms, struct avm_qmp **out, avm_error_t *err)
{
  *out = NULL;
  return connect_fd_until (fd, name, avm_deadline_after (timeout_ms), timeout_ms, out, err);
}

/* Wait for a non-blocking connect that returned EINPROGRESS.  0 or errno.  */
static int
finish_connect (int fd, long long deadline)
{
  struct pollfd pfd = { .fd = fd, .events = POLLOUT };
  int e = 0;
  socklen_t elen = sizeof e;

  for (;;)
    {
      int r = poll (&pfd, 1, avm_time_left (deadline));
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return errno;
      if (r == 0)
        return ETIMEDOUT;
      break;
    }
  if (getsockopt (fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0)
    return errno;
  return e;
}

int
avm_qmp_connect (const char *socket_path, int timeout_ms, struct avm_qmp **out, avm_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  long long deadline = avm_deadline_after (timeout_ms);
  int delay = 5;

  *out = NULL;
  if (strlen (socket_path) >= sizeof sa.sun_path)
    return avm_error_fail (err, ENAMETOOLONG, "QMP socket path %s is too long (at most %zu bytes)", socket_path,
                           sizeof sa.sun_path - 1);
  strcpy (sa.sun_path, socket_path);

  for (;;)
    {
      _cleanup_close_ int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      int e = 0;

      if (fd < 0)
        return avm_error_sys (err, errno, "cannot create a socket for QMP socket %s", socket_path);
      if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
        e = errno == EINPROGRESS ? finish_connect (fd, deadline) : errno;
      if (e == 0)
        return connect_fd_until (steal_fd (&fd), socket_path, deadline, timeout_ms, out, err);
      /* A regular file or a directory is refused too: not worth waiting for.  */
      struct stat st;
      if (e == ECONNREFUSED && stat (socket_path, &st) == 0 && !S_ISSOCK (st.st_mode))
        return avm_error_fail (err, ENOTSOCK, "QMP socket %s is not a socket", socket_path);
      /* Not there yet, or not listening yet (QEMU starting), or the
         backlog is full: retry.  */
      if (e != ENOENT && e != ECONNREFUSED && e != EAGAIN && e != EINTR && e != ETIMEDOUT)
        return avm_error_sys (err, e, "cannot connect to QMP socket %s", socket_path);
      int left = avm_time_left (deadline);
      if (left == 0)
        return avm_error_fail (err, ETIMEDOUT, "cannot connect to QMP socket %s within %d ms: %s", socket_path,
                               timeout_ms, strerror (e));
      int ms = left >= 0 && left < delay ? left : delay;
      struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
      nanosleep (&ts, NULL);
      if (delay < 100)
        delay *= 2;
    }
}

void
avm_qmp_close (struct avm_qmp *q)
{
  if (!q)
    return;
  if (q->state != QMP_FAILED)
    q->state = QMP_CLOSED;
  fail_pending (q);
  if (q->fd >= 0)
    close (q->fd);
  json_decref (q->greeting);
  json_decref (q->queue);
  free (q->package);
  avm_linebuf_free (&q->in);
  free (q->wbuf);
  free (q->fail_msg);
  free (q->name);
  free (q);
}

void
avm_qmp_closep (struct avm_qmp **q)
{
  avm_qmp_close (*q);
  *q = NULL;
}

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
      return failed_error (q, err);
    case QMP_CLOSED:
      return closed_error (q, NULL, NULL, err);
    default:
      return avm_error_fail (err, ENOTCONN, "QMP socket %s: cannot send %s before the handshake completed", q->name,
                             command ? command : "a command");
    }
}

int
avm_qmp_send_async (struct avm_qmp *q, const char *command, json_t *arguments, avm_qmp_reply_fn reply_cb,
                    void *data, avm_error_t *err)
{
  _cleanup_json_ json_t *args = arguments;
  int r = check_ready (q, command, err);

  if (r < 0)
    return r;
  r = enqueue (q, command, steal_pointer (&args), reply_cb, data, NULL, err);
  if (r < 0)
    return r;
  /* A write failure fails the connection, and with it this request: its
     callback runs, so the request counts as sent.  */
  flush_output (q);
  return 0;
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

int
avm_qmp_execute (struct avm_qmp *q, const char *command, json_t *arguments, int timeout_ms, json_t **ret,
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
  r = enqueue (q, command, steal_pointer (&args), sync_reply_cb, &s, &id, err);
  if (r < 0)
    return r;
  r = wait_for (q, sync_done, &s, deadline);
  if (!s.done)
    cancel_pending (q, id);

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
      r = reply_error (command, s.error, err);
      json_decref (s.error);
      return r;
    }
  if (q->state == QMP_FAILED)
    return failed_error (q, err);
  if (q->state == QMP_CLOSED)
    return closed_error (q, " while waiting for the reply to %s", command, err);
  if (r == -ETIMEDOUT)
    return avm_error_fail (err, ETIMEDOUT, "QMP socket %s: no reply to %s within %d ms", q->name, command,
                           timeout_ms);
  return avm_error_fail (err, r < 0 ? -r : EIO, "QMP socket %s: %s failed", q->name, command);
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
  r = enqueue (q, "quit", NULL, sync_reply_cb, &s, &id, err);
  if (r < 0)
    return r;
  r = wait_for (q, quit_done, &s, deadline);
  if (!s.done)
    cancel_pending (q, id);
  json_decref (s.ret);

  if (s.error)
    {
      r = reply_error ("quit", s.error, err);
      json_decref (s.error);
      return r;
    }
  if (q->state == QMP_CLOSED)
    return 0;
  if (q->state == QMP_FAILED)
    return failed_error (q, err);
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
          queue_event (q, ev);
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
        if (event_matches (name, ev))
          {
            if (event)
              *event = json_incref (ev);
            json_array_remove (q->queue, i);
            return 0;
          }
    }
  if (q->state == QMP_FAILED)
    return failed_error (q, err);
  if (q->state == QMP_CLOSED)
    return closed_error (q, " while waiting for the %s event", what, err);

  q->waiter = &w;
  r = wait_for (q, event_done, &w, deadline);
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
    return failed_error (q, err);
  if (q->state == QMP_CLOSED)
    return closed_error (q, " while waiting for the %s event", what, err);
  if (r == -ETIMEDOUT)
    return avm_error_fail (err, ETIMEDOUT, "QMP socket %s: no %s event within %d ms", q->name, what, timeout_ms);
  return avm_error_fail (err, r < 0 ? -r : EIO, "QMP socket %s: waiting for the %s event failed", q->name, what);
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
    return failed_error (q, err);
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
          r = fail_conn (q, ENOMEM, true, "reading");
          break;
        }
      p += n;
      len -= n;
      r = ingest (q);
      if (r < 0)
        break;
    }
  if (r >= 0)
    r = flush_output (q);
  return process_result (q, r, err);
}

/* ------------------------------------------------------------------ */
/* State.  */

bool
avm_qmp_is_ready (const struct avm_qmp *q)
{
  return q->state == QMP_READY;
}

bool
avm_qmp_is_closed (const struct avm_qmp *q)
{
  return q->state == QMP_CLOSED;
}

const char *
avm_qmp_name (const struct avm_qmp *q)
{
  return q->name;
}

const char *
avm_qmp_qemu_version (const struct avm_qmp *q)
{
  return q->version;
}

void
avm_qmp_qemu_version_numbers (const struct avm_qmp *q, int *major, int *minor, int *micro)
{
  if (major)
    *major = q->major;
  if (minor)
    *minor = q->minor;
  if (micro)
    *micro = q->micro;
}

const char *
avm_qmp_qemu_package (const struct avm_qmp *q)
{
  return q->package;
}

json_t *
avm_qmp_greeting (const struct avm_qmp *q)
{
  return q->greeting;
}
