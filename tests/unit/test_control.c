/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Control socket: a server running in its own sd-event loop on a thread of
 * the test process (started per test, stopped through an eventfd), driven
 * with avm_control_call and with raw sockets; the listening rules (mode,
 * stale and foreign files at the path, removal at the end) checked without
 * a loop; the client against fake servers (never accepting, writing
 * garbage, closing at once) forked per test.
 */
#include "supervise/control.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "testutil.h"
#include "util/deadline.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#define SOCK AVM_CONTROL_SOCKET

/* ------------------------------------------------------------------ */
/* Helpers.  */

static char *tmp;
static pid_t child_pid = -1;

static char *
sock_path (void)
{
  char *p = NULL;
  cr_assert_geq (asprintf (&p, "%s/%s", tmp, SOCK), 0);
  return p;
}

static int
open_dir (void)
{
  int fd = open (tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cr_assert_geq (fd, 0);
  return fd;
}

/* A socket bound at PATH, listening or not (the caller closes it).  */
static int
bind_at (const char *path, bool listening)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  cr_assert_geq (fd, 0);
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", path);
  cr_assert_eq (bind (fd, (struct sockaddr *) &sa, sizeof sa), 0, "bind %s: %s", path, strerror (errno));
  if (listening)
    cr_assert_eq (listen (fd, 4), 0);
  return fd;
}

/* ------------------------------------------------------------------ */
/* Server thread.  */

struct server
{
  pthread_t thread;
  bool running;
  sd_event *event;
  char *path;
  int stop_fd;
  int ready_fd;
  uint64_t idle_usec;
  int listen_r;
  char listen_msg[512];
  int seq;           /* server thread only */
  int deferred_done; /* deferred replies given (server thread) */
  int deferred_r;    /* what avm_control_reply returned for the last */
};

static struct server srv;

/* A deferred reply ("defer"), given by a timer of the server's loop.  */
struct deferred
{
  struct server *s;
  struct avm_control_request *req;
  char *tag;
};

static int
on_deferred (sd_event_source *es, uint64_t usec, void *userdata)
{
  struct deferred *d = userdata;
  d->s->deferred_done++;
  d->s->deferred_r
      = avm_control_reply (d->req, json_pack ("{s:b, s:s, s:i}", "ok", 1, "tag", d->tag, "seq", ++d->s->seq));
  free (d->tag);
  free (d);
  return 0;
}

static json_t *
test_cb (void *data, const char *command, json_t *request, struct avm_control_request *req)
{
  struct server *s = data;

  if (streq (command, "defer"))
    {
      /* {"command":"defer","ms":N,"tag":T}: {"ok":true,"tag":T} after N ms
         (0: given from within the callback, before it returns).  */
      int ms = json_integer_value (json_object_get (request, "ms"));
      const char *tag = json_string_value (json_object_get (request, "tag"));
      if (ms == 0)
        {
          avm_control_reply (req, json_pack ("{s:b, s:s?, s:i}", "ok", 1, "tag", tag, "seq", ++s->seq));
          return AVM_CONTROL_PENDING;
        }
      struct deferred *d = calloc (1, sizeof *d);
      cr_assert_not_null (d);
      *d = (struct deferred) { s, req, strdup (tag ? tag : "") };
      cr_assert_geq (sd_event_add_time_relative (s->event, NULL, CLOCK_MONOTONIC, ms * 1000ULL, 1000, on_deferred, d),
                     0);
      return AVM_CONTROL_PENDING;
    }

  if (streq (command, "status"))
    return json_pack ("{s:b, s:s, s:i}", "ok", 1, "state", "running", "pid", (int) getpid ());
  if (streq (command, "echo"))
    return json_pack ("{s:b, s:O}", "ok", 1, "request", request);
  if (streq (command, "seq"))
    return json_pack ("{s:b, s:i}", "ok", 1, "seq", ++s->seq);
  if (streq (command, "big"))
    {
      size_t n = json_integer_value (json_object_get (request, "size"));
      _cleanup_free_ char *x = malloc (n + 1);
      if (!x)
        return NULL;
      memset (x, 'x', n);
      x[n] = '\0';
      return json_pack ("{s:b, s:s}", "ok", 1, "data", x);
    }
  if (streq (command, "scalar"))
    return json_integer (42);
  if (streq (command, "exit"))
    {
      sd_event_exit (s->event, 0);
      return json_pack ("{s:b}", "ok", 1);
    }
  return NULL;
}

static int
on_stop (sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
  return sd_event_exit (sd_event_source_get_event (es), 0);
}

static void *
server_main (void *arg)
{
  struct server *s = arg;
  struct avm_control *c = NULL;
  avm_error_t err = NULL;
  uint64_t one = 1;
  int dirfd = open (tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  s->listen_r = avm_control_listen (s->event, dirfd, SOCK, s->path, test_cb, s, &c, &err);
  close (dirfd);
  if (err)
    snprintf (s->listen_msg, sizeof s->listen_msg, "%s", err->msg);
  avm_error_free (err);
  if (c && s->idle_usec)
    avm_control_set_idle_timeout (c, s->idle_usec);
  (void) !write (s->ready_fd, &one, sizeof one);
  if (c)
    sd_event_loop (s->event);
  avm_control_free (c);
  return NULL;
}

/* Start a server on TMP/control.sock (IDLE_MS: idle timeout, 0 for the
   default).  */
static void
server_start (int idle_ms)
{
  uint64_t v;

  srv.path = sock_path ();
  srv.idle_usec = idle_ms * 1000ULL;
  srv.stop_fd = eventfd (0, EFD_CLOEXEC);
  srv.ready_fd = eventfd (0, EFD_CLOEXEC);
  cr_assert_geq (srv.stop_fd, 0);
  cr_assert_geq (srv.ready_fd, 0);
  cr_assert_geq (sd_event_new (&srv.event), 0);
  cr_assert_geq (sd_event_add_io (srv.event, NULL, srv.stop_fd, EPOLLIN, on_stop, NULL), 0);
  cr_assert_eq (pthread_create (&srv.thread, NULL, server_main, &srv), 0);
  srv.running = true;
  struct pollfd p = { srv.ready_fd, POLLIN, 0 };
  cr_assert_eq (poll (&p, 1, 5000), 1, "server thread did not start");
  cr_assert_eq (read (srv.ready_fd, &v, sizeof v), (ssize_t) sizeof v);
  cr_assert_eq (srv.listen_r, 0, "listen: %s", srv.listen_msg);
}

/* Join the server thread, which returns by itself after "exit" or when
   told to stop.  */
static void
server_join (bool tell)
{
  uint64_t one = 1;

  if (!srv.running)
    return;
  if (tell)
    (void) !write (srv.stop_fd, &one, sizeof one);
  pthread_join (srv.thread, NULL);
  srv.running = false;
  sd_event_unref (srv.event);
  srv.event = NULL;
  close (srv.stop_fd);
  close (srv.ready_fd);
  free (srv.path);
  srv.path = NULL;
}

static void
setup (void)
{
  signal (SIGPIPE, SIG_IGN);
  tmp = tu_tmpdir ();
  memset (&srv, 0, sizeof srv);
}

static void
teardown (void)
{
  server_join (true);
  if (child_pid > 0)
    {
      kill (child_pid, SIGKILL);
      waitpid (child_pid, NULL, 0);
      child_pid = -1;
    }
  tu_rmtree (tmp);
  free (tmp);
  tmp = NULL;
}

/* ------------------------------------------------------------------ */
/* Raw connections.  */

struct conn
{
  int fd;
  char *buf;
  size_t len, alloc;
  bool eof;
};

static void
conn_open (struct conn *c, const char *path)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };

  memset (c, 0, sizeof *c);
  c->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_geq (c->fd, 0);
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", path);
  cr_assert_eq (connect (c->fd, (struct sockaddr *) &sa, sizeof sa), 0, "connect: %s", strerror (errno));
}

static void
conn_close (struct conn *c)
{
  if (c->fd >= 0)
    close (c->fd);
  c->fd = -1;
  free (c->buf);
  c->buf = NULL;
  c->len = c->alloc = 0;
}

/* Send everything; false when the peer is gone.  */
static bool
conn_send_n (struct conn *c, const char *p, size_t len)
{
  while (len > 0)
    {
      ssize_t n = send (c->fd, p, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      p += n;
      len -= n;
    }
  return true;
}

static void
conn_send (struct conn *c, const char *s)
{
  cr_assert (conn_send_n (c, s, strlen (s)), "send: %s", strerror (errno));
}

/* Read once (waiting up to TIMEOUT_MS); false on timeout.  Sets eof at
   the end of the stream (or a reset).  */
static bool
conn_fill (struct conn *c, int timeout_ms)
{
  struct pollfd p = { c->fd, POLLIN, 0 };

  if (c->eof)
    return true;
  if (poll (&p, 1, timeout_ms) <= 0)
    return false;
  if (c->alloc - c->len < 65536)
    {
      c->alloc = c->alloc ? c->alloc * 2 : 131072;
      c->buf = realloc (c->buf, c->alloc);
      cr_assert_not_null (c->buf);
    }
  ssize_t n = read (c->fd, c->buf + c->len, c->alloc - c->len);
  if (n <= 0)
    c->eof = true;
  else
    c->len += n;
  return true;
}

/* The next line (malloc'd, without "\n"), or NULL at the end of the stream
   or after TIMEOUT_MS.  */
static char *
conn_line (struct conn *c, int timeout_ms)
{
  long long end = avm_now_ms () + timeout_ms;

  for (;;)
    {
      char *nl = c->len ? memchr (c->buf, '\n', c->len) : NULL;
      if (nl)
        {
          char *line = strndup (c->buf, nl - c->buf);
          c->len -= nl + 1 - c->buf;
          memmove (c->buf, nl + 1, c->len);
          return line;
        }
      if (c->eof)
        return NULL;
      long long left = end - avm_now_ms ();
      if (left <= 0 || !conn_fill (c, (int) left))
        return NULL;
    }
}

/* Read until the end of the stream; false when it does not come within
   TIMEOUT_MS.  */
static bool
conn_wait_eof (struct conn *c, int timeout_ms)
{
  long long end = avm_now_ms () + (long long) timeout_ms * AVM_TEST_TIME_SCALE;

  while (!c->eof)
    {
      long long left = end - avm_now_ms ();
      if (left <= 0 || !conn_fill (c, (int) left))
        return false;
    }
  return true;
}

/* The next reply line, parsed (asserts that it came within 2 s).  */
static json_t *
conn_reply (struct conn *c)
{
  _cleanup_free_ char *line = conn_line (c, 2000);
  json_error_t jerr;

  cr_assert_not_null (line, "no reply line");
  json_t *j = json_loads (line, 0, &jerr);
  cr_assert_not_null (j, "reply is not JSON (%s): %.200s", jerr.text, line);
  cr_assert (json_is_object (j));
  return j;
}

static void
assert_ok (json_t *reply)
{
  cr_assert (json_is_true (json_object_get (reply, "ok")), "reply not ok: %s",
             json_string_value (json_object_get (reply, "error")) ?: "(no error)");
}

static void
assert_error (json_t *reply, const char *needle)
{
  const char *e = json_string_value (json_object_get (reply, "error"));
  cr_assert (json_is_false (json_object_get (reply, "ok")), "\"ok\" is not false");
  cr_assert_not_null (e, "no \"error\" string");
  cr_assert (strstr (e, needle), "\"%s\" not in \"%s\"", needle, e);
}

static json_t *
call (const char *path, json_t *request, int timeout_ms, int *r, avm_error_t *err)
{
  json_t *reply = NULL;
  *r = avm_control_call (path, request, &reply, timeout_ms, err);
  json_decref (request);
  return reply;
}

/* Call COMMAND and assert success of the call (not of the reply).  */
static json_t *
call_ok (const char *command)
{
  _cleanup_error_ avm_error_t err = NULL;
  int r;
  json_t *reply = call (srv.path, json_pack ("{s:s}", "command", command), 2000, &r, &err);
  cr_assert_eq (r, 0, "call %s: %s", command, err ? err->msg : "");
  cr_assert_not_null (reply);
  return reply;
}

/* ------------------------------------------------------------------ */
/* Requests and replies.  */

Test (control, status_round_trip, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  server_start (0);
  _cleanup_json_ json_t *reply = call_ok ("status");
  assert_ok (reply);
  cr_assert_str_eq (json_string_value (json_object_get (reply, "state")), "running");
  cr_assert_eq (json_integer_value (json_object_get (reply, "pid")), getpid ());

  /* The callback sees the whole request.  */
  _cleanup_error_ avm_error_t err = NULL;
  int r;
  _cleanup_json_ json_t *echo
      = call (srv.path, json_pack ("{s:s, s:[i,s]}", "command", "echo", "args", 1, "two"), 2000, &r, &err);
  cr_assert_eq (r, 0);
  assert_ok (echo);
  json_t *req = json_object_get (echo, "request");
  cr_assert_str_eq (json_string_value (json_object_get (req, "command")), "echo");
  cr_assert_eq (json_integer_value (json_array_get (json_object_get (req, "args"), 0)), 1);
  cr_assert_str_eq (json_string_value (json_array_get (json_object_get (req, "args"), 1)), "two");
}

Test (control, unknown_command, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  server_start (0);
  _cleanup_json_ json_t *reply = call_ok ("frobnicate");
  assert_error (reply, "unknown command: frobnicate");
  cr_assert_str_eq (json_string_value (json_object_get (reply, "error")), "unknown command: frobnicate");
}

Test (control, reply_not_an_object, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  server_start (0);
  _cleanup_json_ json_t *reply = call_ok ("scalar");
  assert_error (reply, "internal error");
}

/* Malformed JSON gets an error reply; the connection stays usable.  */
Test (control, malformed_json, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  struct conn c;
  json_t *j;

  server_start (0);
  conn_open (&c, srv.path);
  conn_send (&c, "{not json\n");
  j = conn_reply (&c);
  assert_error (j, "malformed request");
  json_decref (j);
  conn_send (&c, "[1, 2]\n");
  j = conn_reply (&c);
  assert_error (j, "not a JSON object");
  json_decref (j);
  conn_send (&c, "{\"command\": \"status\"} trailing\n");
  j = conn_reply (&c);
  assert_error (j, "malformed request");
  json_decref (j);
  conn_send (&c, "{\"command\": \"status\", \"command\": \"status\"}\n");
  j = conn_reply (&c);
  assert_error (j, "malformed request");
  json_decref (j);
  conn_send (&c, "{\"command\": \"\xff\"}\n");
  j = conn_reply (&c);
  assert_error (j, "malformed request");
  json_decref (j);
  /* Blank lines are skipped: the next reply is the status.  */
  conn_send (&c, "\n\r\n{\"command\": \"status\"}\n");
  j = conn_reply (&c);
  assert_ok (j);
  cr_assert_str_eq (json_string_value (json_object_get (j, "state")), "running");
  json_decref (j);
  conn_close (&c);
}

Test (control, missing_command, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  struct conn c;
  json_t *j;
  const char *bad[] = { "{}\n", "{\"cmd\": \"status\"}\n", "{\"command\": 5}\n", "{\"command\": null}\n",
                        "{\"command\": [\"status\"]}\n" };

  server_start (0);
  conn_open (&c, srv.path);
  for (size_t i = 0; i < ARRAY_SIZE (bad); i++)
    {
      conn_send (&c, bad[i]);
      j = conn_reply (&c);
      assert_error (j, "no \"command\" string");
      json_decref (j);
    }
  conn_send (&c, "{\"command\": \"sta\\u0000tus\"}\n");
  j = conn_reply (&c);
  assert_error (j, "NUL");
  json_decref (j);
  conn_close (&c);

  /* Through the client: the call succeeds, the reply says what is wrong.  */
  _cleanup_error_ avm_error_t err = NULL;
  int r;
  _cleanup_json_ json_t *reply = call (srv.path, json_pack ("{s:i}", "verbose", 1), 2000, &r, &err);
  cr_assert_eq (r, 0);
  assert_error (reply, "no \"command\" string");
}

Test (control, requests_answered_in_order, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  struct conn c;
  json_t *j;

  server_start (0);
  conn_open (&c, srv.path);
  /* Two requests in one write, then two more split across writes.  */
  conn_send (&c, "{\"command\":\"seq\"}\n{\"command\":\"echo\",\"id\":\"b\"}\r\n");
  conn_send (&c, "{\"command\":\"se");
  tu_sleep_ms (20);
  conn_send (&c, "q\"}\n{\"command\":\"nope\"}\n");
  j = conn_reply (&c);
  assert_ok (j);
  cr_assert_eq (json_integer_value (json_object_get (j, "seq")), 1);
  json_decref (j);
  j = conn_reply (&c);
  assert_ok (j);
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (j, "request"), "id")), "b");
  json_decref (j);
  j = conn_reply (&c);
  assert_ok (j);
  cr_assert_eq (json_integer_value (json_object_get (j, "seq")), 2);
  json_decref (j);
  j = conn_reply (&c);
  assert_error (j, "unknown command: nope");
  json_decref (j);
  conn_close (&c);
}

/* The peer shuts down writing after its request: the reply still comes,
   then the server closes.  */
Test (control, half_close, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  struct conn c;

  server_start (0);
  conn_open (&c, srv.path);
  conn_send (&c, "{\"command\":\"seq\"}\n{\"command\":\"seq\"}\n{\"command\":\"incomplete");
  cr_assert_eq (shutdown (c.fd, SHUT_WR), 0);
  json_t *j = conn_reply (&c);
  cr_assert_eq (json_integer_value (json_object_get (j, "seq")), 1);
  json_decref (j);
  j = conn_reply (&c);
  cr_assert_eq (json_integer_value (json_object_get (j, "seq")), 2);
  json_decref (j);
  cr_assert (conn_wait_eof (&c, 2000));
  cr_assert_eq (c.len, 0, "unexpected data after the replies");
  conn_close (&c);
}

/* ------------------------------------------------------------------ */
/* Deferred replies.  */

/* What a reply stands for in the cases below: the "tag" of a deferred
   reply, the "id" an echo saw, else its error.  */
static const char *
reply_label (json_t *j)
{
  const char *tag = json_string_value (json_object_get (j, "tag"));
  const char *id = json_string_value (json_object_get (json_object_get (j, "request"), "id"));
  const char *error = json_string_value (json_object_get (j, "error"));
  return tag ? tag : id ? id : error ? error : "?";
}

#define DEFER(ms, tag) "{\"command\":\"defer\",\"ms\":" #ms ",\"tag\":\"" tag "\"}\n"
#define ECHO(id) "{\"command\":\"echo\",\"id\":\"" id "\"}\n"

static const struct defer_case
{
  const char *name;
  const char *send;
  bool half_close;     /* shutdown (SHUT_WR) after sending */
  const char *want[5]; /* labels of the replies, in order */
} defer_cases[] = {
  { "sync reply waits behind a deferred one",
    DEFER (150, "a") ECHO ("b") DEFER (20, "c") ECHO ("d"),
    false,
    { "a", "b", "c", "d" } },
  { "given from within the callback", DEFER (0, "a") ECHO ("b") DEFER (0, "c"), false, { "a", "b", "c" } },
  { "deferred replies completing out of order",
    DEFER (150, "a") DEFER (10, "b") DEFER (80, "c"),
    false,
    { "a", "b", "c" } },
  { "end of input waits for the deferred reply", ECHO ("a") DEFER (100, "b"), true, { "a", "b" } },
  { "unknown command behind a deferred one",
    DEFER (50, "a") "{\"command\":\"nope\"}\n",
    false,
    { "a", "unknown command: nope" } },
};

Test (control, deferred_replies_in_order, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  server_start (0);
  for (size_t i = 0; i < ARRAY_SIZE (defer_cases); i++)
    {
      const struct defer_case *dc = &defer_cases[i];
      struct conn c;
      conn_open (&c, srv.path);
      conn_send (&c, dc->send);
      if (dc->half_close)
        cr_assert_eq (shutdown (c.fd, SHUT_WR), 0);
      for (size_t k = 0; k < ARRAY_SIZE (dc->want) && dc->want[k]; k++)
        {
          json_t *j = conn_reply (&c);
          cr_assert_not_null (j, "%s: no reply %zu", dc->name, k);
          cr_assert_str_eq (reply_label (j), dc->want[k], "%s: reply %zu", dc->name, k);
          json_decref (j);
        }
      if (dc->half_close)
        {
          cr_assert (conn_wait_eof (&c, 2000), "%s: not closed", dc->name);
          cr_assert_eq (c.len, 0, "%s: unexpected data after the replies", dc->name);
        }
      conn_close (&c);
    }
}

/* The client goes before its deferred reply: the reply is dropped (no use
   after free: the sanitizer build checks), the server goes on.  Table:
   how the client goes.  */
static const struct gone_case
{
  const char *name;
  int idle_ms;     /* server's idle timeout */
  int defer_ms;    /* when the reply comes */
  bool close_fast; /* close at once (else wait for the idle timeout) */
  const char *farewell;
} gone_cases[] = {
  { "client closes", 0, 200, true, NULL },
  { "idle timeout before the reply", 100, 400, false, "no reply within 100 ms" },
};

Test (control, deferred_reply_client_gone, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  for (size_t i = 0; i < ARRAY_SIZE (gone_cases); i++)
    {
      const struct gone_case *gc = &gone_cases[i];
      struct conn c;
      char req[128];
      server_start (gc->idle_ms);
      snprintf (req, sizeof req, "{\"command\":\"defer\",\"ms\":%d,\"tag\":\"x\"}\n", gc->defer_ms);
      conn_open (&c, srv.path);
      conn_send (&c, req);
      if (gc->farewell)
        {
          _cleanup_free_ char *line = conn_line (&c, 2000);
          cr_assert_not_null (line, "%s: no farewell", gc->name);
          cr_assert (strstr (line, gc->farewell), "%s: %s", gc->name, line);
          cr_assert (conn_wait_eof (&c, 2000), "%s: not closed", gc->name);
        }
      conn_close (&c);
      /* Past the deferred reply: the server still answers.  */
      tu_sleep_ms (gc->defer_ms + 100);
      _cleanup_json_ json_t *reply = call_ok ("status");
      assert_ok (reply);
      server_join (true);
      cr_assert_eq (srv.deferred_done, 1, "%s: the deferred reply was not given", gc->name);
      cr_assert_eq (srv.deferred_r, -ENOTCONN, "%s: a reply to nobody was not reported", gc->name);
      srv.deferred_done = 0;
    }
}

/* More requests than AVM_CONTROL_MAX_PENDING behind a deferred reply:
   the server stops reading, then answers them all, in order.  */
Test (control, deferred_queue_limit, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  struct conn c;
  const int n = AVM_CONTROL_MAX_PENDING * 2;

  server_start (0);
  conn_open (&c, srv.path);
  conn_send (&c, DEFER (200, "first"));
  for (int i = 0; i < n; i++)
    conn_send (&c, "{\"command\":\"seq\"}\n");
  json_t *j = conn_reply (&c);
  cr_assert_str_eq (reply_label (j), "first");
  json_decref (j);
  /* (The deferred reply takes its number when it is given: in between.)  */
  long long last = 0;
  for (int i = 0; i < n; i++)
    {
      j = conn_reply (&c);
      cr_assert_not_null (j, "reply %d missing", i);
      long long seq = json_integer_value (json_object_get (j, "seq"));
      cr_assert_gt (seq, last, "reply %d out of order", i);
      last = seq;
      json_decref (j);
    }
  conn_close (&c);
}

/* Without a request handle (avm_control_handle_request, the fuzz target's
   entry), a deferred reply cannot be given: "internal error".  */
Test (control, deferred_without_handle, .init = setup, .fini = teardown)
{
  const char *line = "{\"command\":\"defer\",\"ms\":0}";
  _cleanup_json_ json_t *reply = avm_control_handle_request (test_cb, &srv, line, strlen (line));
  assert_error (reply, "internal error");
}

static char *
echo_line (size_t total)
{
  const char *head = "{\"command\":\"echo\",\"pad\":\"";
  const char *tail = "\"}";
  size_t hl = strlen (head), tl = strlen (tail);
  char *s = malloc (total + 2);

  cr_assert (total > hl + tl);
  memcpy (s, head, hl);
  memset (s + hl, 'x', total - hl - tl);
  memcpy (s + total - tl, tail, tl);
  s[total] = '\n';
  s[total + 1] = '\0';
  return s;
}

Test (control, line_limit, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  struct conn c;
  json_t *j;

  server_start (0);

  /* Exactly the limit: served.  */
  _cleanup_free_ char *max = echo_line (AVM_CONTROL_MAX_LINE);
  conn_open (&c, srv.path);
  conn_send (&c, max);
  j = conn_reply (&c);
  assert_ok (j);
  cr_assert_eq (strlen (json_string_value (json_object_get (json_object_get (j, "request"), "pad"))),
                AVM_CONTROL_MAX_LINE - strlen ("{\"command\":\"echo\",\"pad\":\"\"}"));
  json_decref (j);

  /* One byte more: refused, and the connection is closed.  */
  _cleanup_free_ char *over = echo_line (AVM_CONTROL_MAX_LINE + 1);
  conn_send (&c, over);
  j = conn_reply (&c);
  assert_error (j, "longer than 65536 bytes");
  json_decref (j);
  cr_assert (conn_wait_eof (&c, 2000));
  conn_close (&c);

  /* A line that never ends.  */
  _cleanup_free_ char *endless = malloc (200000);
  memset (endless, 'x', 200000);
  conn_open (&c, srv.path);
  conn_send_n (&c, endless, 200000); /* may fail once the server closed */
  j = conn_reply (&c);
  assert_error (j, "longer than 65536 bytes");
  json_decref (j);
  cr_assert (conn_wait_eof (&c, 2000));
  conn_close (&c);

  /* The server is still fine.  */
  _cleanup_json_ json_t *reply = call_ok ("status");
  assert_ok (reply);
}

/* ------------------------------------------------------------------ */
/* Timeouts and limits.  */

Test (control, idle_client_dropped, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  struct conn c;

  server_start (100);

  /* Nothing sent.  */
  long long t0 = avm_now_ms ();
  conn_open (&c, srv.path);
  _cleanup_free_ char *line = conn_line (&c, 2000);
  cr_assert_not_null (line, "no farewell line");
  cr_assert (strstr (line, "no complete request within 100 ms"), "%s", line);
  cr_assert (conn_wait_eof (&c, 2000), "idle client not dropped");
  long long took = avm_now_ms () - t0;
  cr_assert (took >= 90 && took < 900, "dropped after %lld ms", took);
  conn_close (&c);

  /* Half a request is not a request.  */
  t0 = avm_now_ms ();
  conn_open (&c, srv.path);
  conn_send (&c, "{\"command\":");
  cr_assert (conn_wait_eof (&c, 2000), "idle client not dropped");
  took = avm_now_ms () - t0;
  cr_assert (took >= 90 && took < 900, "dropped after %lld ms", took);
  conn_close (&c);
}

/* Each complete request restarts the idle timeout.  */
Test (control, idle_timeout_restarts, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  struct conn c;

  /* (Times scale with the build: the server runs in this process.)  */
  const int S = AVM_TEST_TIME_SCALE;
  server_start (250 * S);
  long long t0 = avm_now_ms ();
  conn_open (&c, srv.path);
  for (int i = 0; i < 2; i++)
    {
      tu_sleep_ms (150 * S);
      conn_send (&c, "{\"command\":\"status\"}\n");
      json_t *j = conn_reply (&c);
      assert_ok (j);
      json_decref (j);
    }
  /* 300 ms after the connection: still served; dropped 250 ms after the
     last request.  */
  cr_assert (conn_wait_eof (&c, 2000));
  long long took = avm_now_ms () - t0;
  cr_assert (took >= 500 * S && took < 950 * S, "dropped after %lld ms", took);
  conn_close (&c);
}

Test (control, too_many_clients, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  struct conn cs[AVM_CONTROL_MAX_CLIENTS];
  _cleanup_error_ avm_error_t err = NULL;
  int r;

  server_start (0);
  /* 16 clients, each served once so that the server has accepted it.  */
  for (int i = 0; i < AVM_CONTROL_MAX_CLIENTS; i++)
    {
      conn_open (&cs[i], srv.path);
      conn_send (&cs[i], "{\"command\":\"status\"}\n");
      json_t *j = conn_reply (&cs[i]);
      assert_ok (j);
      json_decref (j);
    }

  /* The 17th is refused, raw or through the client.  */
  struct conn extra;
  conn_open (&extra, srv.path);
  json_t *j = conn_reply (&extra);
  assert_error (j, "too many clients");
  json_decref (j);
  cr_assert (conn_wait_eof (&extra, 2000));
  conn_close (&extra);
  json_t *reply = call (srv.path, json_pack ("{s:s}", "command", "status"), 2000, &r, &err);
  cr_assert_eq (r, 0, "%s", err ? err->msg : "");
  assert_error (reply, "too many clients");
  json_decref (reply);

  /* The 16 are still served.  */
  conn_send (&cs[15], "{\"command\":\"status\"}\n");
  j = conn_reply (&cs[15]);
  assert_ok (j);
  json_decref (j);

  /* One leaves: there is room again (once the server noticed).  */
  conn_close (&cs[0]);
  bool served = false;
  for (long long end = avm_now_ms () + 2000; !served && avm_now_ms () < end;)
    {
      reply = call (srv.path, json_pack ("{s:s}", "command", "status"), 2000, &r, &err);
      cr_assert_eq (r, 0, "%s", err ? err->msg : "");
      served = json_is_true (json_object_get (reply, "ok"));
      json_decref (reply);
      if (!served)
        tu_sleep_ms (10);
    }
  cr_assert (served, "a slot did not free up");
  for (int i = 1; i < AVM_CONTROL_MAX_CLIENTS; i++)
    conn_close (&cs[i]);
}

/* A reply larger than the socket buffer is written as the client reads.  */
Test (control, large_reply_buffered, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  struct conn c;

  server_start (0);
  conn_open (&c, srv.path);
  conn_send (&c, "{\"command\":\"big\",\"size\":600000}\n{\"command\":\"seq\"}\n");
  tu_sleep_ms (100);
  json_t *j = conn_reply (&c);
  assert_ok (j);
  cr_assert_eq (strlen (json_string_value (json_object_get (j, "data"))), 600000);
  json_decref (j);
  j = conn_reply (&c);
  cr_assert_eq (json_integer_value (json_object_get (j, "seq")), 1);
  json_decref (j);
  conn_close (&c);

  /* Through the client too.  */
  _cleanup_error_ avm_error_t err = NULL;
  int r;
  _cleanup_json_ json_t *reply
      = call (srv.path, json_pack ("{s:s, s:i}", "command", "big", "size", 900000), 2000, &r, &err);
  cr_assert_eq (r, 0, "%s", err ? err->msg : "");
  cr_assert_eq (strlen (json_string_value (json_object_get (reply, "data"))), 900000);
}

/* A client leaving more than 1 MiB unread is dropped.  */
Test (control, output_limit, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  struct conn c;

  server_start (0);
  conn_open (&c, srv.path);
  conn_send (&c, "{\"command\":\"big\",\"size\":3000000}\n");
  tu_sleep_ms (200);
  cr_assert (conn_wait_eof (&c, 2000), "client not dropped");
  cr_assert_lt (c.len, 3000000);
  cr_assert_null (memchr (c.buf, '\n', c.len), "a complete reply came through");
  conn_close (&c);

  _cleanup_json_ json_t *reply = call_ok ("status");
  assert_ok (reply);
}

/* A callback may end the loop; its reply still reaches the client.  */
Test (control, exit_from_callback, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  server_start (0);
  _cleanup_free_ char *path = strdup (srv.path);
  _cleanup_json_ json_t *reply = call_ok ("exit");
  assert_ok (reply);
  server_join (false);
  cr_assert_eq (access (path, F_OK), -1, "socket left behind");
  cr_assert_eq (errno, ENOENT);
}

/* Peers running as another user are refused (needs root to be one).  */
Test (control, other_user_refused, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  if (geteuid () != 0)
    cr_skip_test ("needs root to connect as another user");
  server_start (0);
  cr_assert_eq (chmod (tmp, 0711), 0);
  cr_assert_eq (chmod (srv.path, 0666), 0);
  child_pid = fork ();
  cr_assert_geq (child_pid, 0);
  if (child_pid == 0)
    {
      struct sockaddr_un sa = { .sun_family = AF_UNIX };
      char buf[256];
      size_t len = 0;
      if (setgroups (0, NULL) < 0 || setresgid (65534, 65534, 65534) < 0 || setresuid (65534, 65534, 65534) < 0)
        _exit (10);
      int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      snprintf (sa.sun_path, sizeof sa.sun_path, "%s", srv.path);
      if (fd < 0 || connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
        _exit (11);
      if (send (fd, "{\"command\":\"status\"}\n", 21, MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET)
        _exit (12);
      for (;;)
        {
          ssize_t n = read (fd, buf + len, sizeof buf - 1 - len);
          if (n <= 0)
            break;
          len += n;
        }
      buf[len] = '\0';
      if (!strstr (buf, "{\"ok\":false,\"error\":\"permission denied\"}\n"))
        _exit (13);
      if (strstr (buf, "running"))
        _exit (14);
      _exit (0);
    }
  int st;
  long long end = avm_now_ms () + 3000;
  while (waitpid (child_pid, &st, WNOHANG) == 0 && avm_now_ms () < end)
    tu_sleep_ms (10);
  cr_assert (WIFEXITED (st), "child did not finish");
  child_pid = -1;
  cr_assert_eq (WEXITSTATUS (st), 0, "child failed at step %d", WEXITSTATUS (st));

  /* The owner is still served.  */
  _cleanup_json_ json_t *reply = call_ok ("status");
  assert_ok (reply);
}

/* ------------------------------------------------------------------ */
/* The socket file.  */

static int
try_listen (sd_event *e, const char *path, struct avm_control **c, avm_error_t *err)
{
  _cleanup_close_ int dirfd = open_dir ();
  return avm_control_listen (e, dirfd, SOCK, path, test_cb, &srv, c, err);
}

Test (control, socket_mode, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  _cleanup_free_ char *path = sock_path ();
  _cleanup_error_ avm_error_t err = NULL;
  sd_event *e = NULL;
  struct avm_control *c = NULL;
  struct stat st;

  cr_assert_geq (sd_event_new (&e), 0);
  mode_t old = umask (0);
  int r = try_listen (e, path, &c, &err);
  umask (old);
  cr_assert_eq (r, 0, "%s", err ? err->msg : "");
  cr_assert_eq (lstat (path, &st), 0);
  cr_assert (S_ISSOCK (st.st_mode));
  cr_assert_eq (st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
  cr_assert_eq (st.st_uid, geteuid ());
  avm_control_free (c);
  cr_assert_eq (lstat (path, &st), -1);
  cr_assert_eq (errno, ENOENT);
  avm_control_free (NULL);
  sd_event_unref (e);
}

Test (control, stale_socket_replaced, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  _cleanup_free_ char *path = sock_path ();
  struct stat before, after;

  /* A socket file nobody listens on (a crashed supervisor's).  */
  close (bind_at (path, false));
  cr_assert_eq (chmod (path, 0644), 0);
  cr_assert_eq (lstat (path, &before), 0);
  cr_assert (S_ISSOCK (before.st_mode));
  server_start (0);
  cr_assert_eq (lstat (path, &after), 0);
  cr_assert (S_ISSOCK (after.st_mode));
  /* (tmpfs may reuse the inode number: the mode tells them apart.)  */
  cr_assert_eq (after.st_mode & 07777, 0600, "the stale socket was not replaced");
  _cleanup_json_ json_t *reply = call_ok ("status");
  assert_ok (reply);
}

Test (control, live_socket_kept, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  _cleanup_free_ char *path = sock_path ();
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_close_ int live = bind_at (path, true);
  struct stat before, after;
  sd_event *e = NULL;
  struct avm_control *c = NULL;

  cr_assert_eq (lstat (path, &before), 0);
  cr_assert_geq (sd_event_new (&e), 0);
  cr_assert_eq (try_listen (e, path, &c, &err), -EADDRINUSE);
  cr_assert_null (c);
  tu_assert_err_has (err, path);
  tu_assert_err_has (err, "another process is listening");
  cr_assert_eq (lstat (path, &after), 0);
  cr_assert_eq (before.st_ino, after.st_ino);
  sd_event_unref (e);
}

Test (control, symlink_not_followed, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  _cleanup_free_ char *path = sock_path ();
  _cleanup_free_ char *target = tu_write (tmp, "target", "keep");
  _cleanup_free_ char *dead = NULL;
  sd_event *e = NULL;
  struct avm_control *c = NULL;
  struct stat st;
  char link[64];

  cr_assert_geq (sd_event_new (&e), 0);

  /* To a regular file.  */
  cr_assert_eq (symlink ("target", path), 0);
  {
    _cleanup_error_ avm_error_t err = NULL;
    cr_assert_eq (try_listen (e, path, &c, &err), -EEXIST);
    tu_assert_err_has (err, path);
    tu_assert_err_has (err, "symbolic link");
  }
  cr_assert_eq (lstat (path, &st), 0);
  cr_assert (S_ISLNK (st.st_mode));
  cr_assert_eq (readlink (path, link, sizeof link), 6);
  _cleanup_free_ char *content = tu_read (target);
  cr_assert_str_eq (content, "keep");

  /* To a stale socket: neither it nor the link is touched.  */
  cr_assert_geq (asprintf (&dead, "%s/dead.sock", tmp), 0);
  close (bind_at (dead, false));
  cr_assert_eq (unlink (path), 0);
  cr_assert_eq (symlink ("dead.sock", path), 0);
  {
    _cleanup_error_ avm_error_t err = NULL;
    cr_assert_eq (try_listen (e, path, &c, &err), -EEXIST);
    tu_assert_err_has (err, "symbolic link");
  }
  cr_assert_eq (lstat (path, &st), 0);
  cr_assert (S_ISLNK (st.st_mode));
  cr_assert_eq (lstat (dead, &st), 0);
  cr_assert (S_ISSOCK (st.st_mode));

  /* Dangling.  */
  cr_assert_eq (unlink (path), 0);
  cr_assert_eq (symlink ("nowhere", path), 0);
  {
    _cleanup_error_ avm_error_t err = NULL;
    cr_assert_eq (try_listen (e, path, &c, &err), -EEXIST);
  }
  cr_assert_eq (lstat (path, &st), 0);
  cr_assert (S_ISLNK (st.st_mode));
  cr_assert_null (c);
  sd_event_unref (e);
}

Test (control, regular_file_kept, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  _cleanup_free_ char *path = tu_write (tmp, SOCK, "not a socket");
  _cleanup_error_ avm_error_t err = NULL;
  sd_event *e = NULL;
  struct avm_control *c = NULL;

  cr_assert_geq (sd_event_new (&e), 0);
  cr_assert_eq (try_listen (e, path, &c, &err), -EEXIST);
  tu_assert_err_has (err, "not a socket");
  _cleanup_free_ char *content = tu_read (path);
  cr_assert_str_eq (content, "not a socket");
  sd_event_unref (e);
}

Test (control, bad_paths, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  sd_event *e = NULL;
  struct avm_control *c = NULL;
  _cleanup_close_ int dirfd = open_dir ();
  char longpath[200];

  cr_assert_geq (sd_event_new (&e), 0);
  /* Too long for sun_path.  */
  snprintf (longpath, sizeof longpath, "%s/%0120d/%s", tmp, 0, SOCK);
  {
    _cleanup_error_ avm_error_t err = NULL;
    cr_assert_eq (avm_control_listen (e, dirfd, SOCK, longpath, test_cb, NULL, &c, &err), -ENAMETOOLONG);
    tu_assert_err_has (err, "too long for a unix socket");
  }
  /* PATH not naming NAME inside DIRFD.  */
  {
    _cleanup_error_ avm_error_t err = NULL;
    cr_assert_eq (avm_control_listen (e, dirfd, SOCK, "/tmp/" SOCK, test_cb, NULL, &c, &err), -EINVAL);
    tu_assert_err_has (err, "not the directory given");
  }
  {
    _cleanup_free_ char *path = sock_path ();
    _cleanup_error_ avm_error_t err = NULL;
    cr_assert_eq (avm_control_listen (e, dirfd, "other.sock", path, test_cb, NULL, &c, &err), -EINVAL);
    tu_assert_err_has (err, "does not end with");
  }
  cr_assert_null (c);
  /* The client refuses it too.  */
  {
    _cleanup_error_ avm_error_t err = NULL;
    json_t *reply = NULL;
    _cleanup_json_ json_t *req = json_pack ("{s:s}", "command", "status");
    cr_assert_eq (avm_control_call (longpath, req, &reply, 100, &err), -ENAMETOOLONG);
    cr_assert_null (reply);
  }
  sd_event_unref (e);
}

Test (control, free_unlinks_only_its_socket, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  _cleanup_free_ char *path = sock_path ();
  sd_event *e = NULL;
  struct avm_control *c = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  struct stat st;

  cr_assert_geq (sd_event_new (&e), 0);

  /* Replaced by a regular file.  */
  cr_assert_eq (try_listen (e, path, &c, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (unlink (path), 0);
  free (tu_write (tmp, SOCK, "someone else's"));
  avm_control_free (c);
  _cleanup_free_ char *content = tu_read (path);
  cr_assert_str_eq (content, "someone else's");
  cr_assert_eq (unlink (path), 0);

  /* Replaced by another socket.  */
  c = NULL;
  cr_assert_eq (try_listen (e, path, &c, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (unlink (path), 0);
  _cleanup_close_ int other = bind_at (path, true);
  avm_control_free (c);
  cr_assert_eq (lstat (path, &st), 0);
  cr_assert (S_ISSOCK (st.st_mode));
  cr_assert_eq (unlink (path), 0);

  /* Still its own: removed; through the cleanup attribute.  */
  {
    _cleanup_control_ struct avm_control *own = NULL;
    cr_assert_eq (try_listen (e, path, &own, &err), 0, "%s", err ? err->msg : "");
    cr_assert_eq (lstat (path, &st), 0);
  }
  cr_assert_eq (lstat (path, &st), -1);
  cr_assert_eq (errno, ENOENT);
  sd_event_unref (e);
}

/* ------------------------------------------------------------------ */
/* Client errors.  */

Test (control, call_not_running, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  _cleanup_free_ char *path = sock_path ();
  int r;

  {
    _cleanup_error_ avm_error_t err = NULL;
    json_t *reply = call (path, json_pack ("{s:s}", "command", "status"), 1000, &r, &err);
    cr_assert_eq (r, -ENOENT);
    cr_assert_null (reply);
    tu_assert_err_has (err, "no avm instance is running here");
    tu_assert_err_has (err, path);
    cr_assert_eq (err->code, ENOENT);
  }
  /* A stale socket file.  */
  close (bind_at (path, false));
  {
    _cleanup_error_ avm_error_t err = NULL;
    json_t *reply = call (path, json_pack ("{s:s}", "command", "status"), 1000, &r, &err);
    cr_assert_eq (r, -ECONNREFUSED);
    cr_assert_null (reply);
    tu_assert_err_has (err, "no avm instance is running here");
    tu_assert_err_has (err, path);
  }
}

/* A server that accepts (the kernel does, through the backlog) but never
   replies.  */
Test (control, call_timeout, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  _cleanup_free_ char *path = sock_path ();
  _cleanup_close_ int mute = bind_at (path, true);
  _cleanup_error_ avm_error_t err = NULL;
  int r;

  long long t0 = avm_now_ms ();
  json_t *reply = call (path, json_pack ("{s:s}", "command", "status"), 200, &r, &err);
  long long took = avm_now_ms () - t0;
  cr_assert_eq (r, -ETIMEDOUT, "%d %s", r, err ? err->msg : "");
  cr_assert_null (reply);
  tu_assert_err_has (err, path);
  tu_assert_err_has (err, "no reply within 200 ms");
  cr_assert (took >= 190 && took < 900, "took %lld ms", took);
}

/* A fake server on PATH answering the first connection with REPLY (NULL:
   closing at once, after reading the request).  */
static void
fake_server (const char *path, const char *reply)
{
  int l = bind_at (path, true);

  child_pid = fork ();
  cr_assert_geq (child_pid, 0);
  if (child_pid == 0)
    {
      char buf[4096];
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      int fd = accept (l, NULL, NULL);
      if (fd < 0)
        _exit (1);
      for (ssize_t n; (n = read (fd, buf, sizeof buf)) > 0 && !memchr (buf, '\n', n);)
        ;
      if (reply)
        (void) !write (fd, reply, strlen (reply));
      close (fd);
      _exit (0);
    }
  close (l);
}

Test (control, call_malformed_reply, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  _cleanup_free_ char *path = sock_path ();
  _cleanup_error_ avm_error_t err = NULL;
  int r;

  fake_server (path, "this is not json\n");
  json_t *reply = call (path, json_pack ("{s:s}", "command", "status"), 2000, &r, &err);
  cr_assert_eq (r, -EPROTO, "%d %s", r, err ? err->msg : "");
  cr_assert_null (reply);
  tu_assert_err_has (err, path);
  tu_assert_err_has (err, "malformed reply");
}

Test (control, call_reply_not_object, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  _cleanup_free_ char *path = sock_path ();
  _cleanup_error_ avm_error_t err = NULL;
  int r;

  fake_server (path, "[true]\n");
  json_t *reply = call (path, json_pack ("{s:s}", "command", "status"), 2000, &r, &err);
  cr_assert_eq (r, -EPROTO);
  cr_assert_null (reply);
  tu_assert_err_has (err, "not a JSON object");
}

Test (control, call_closed_without_reply, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (10))
{
  _cleanup_free_ char *path = sock_path ();
  _cleanup_error_ avm_error_t err = NULL;
  int r;

  fake_server (path, "{\"ok\":tr");
  json_t *reply = call (path, json_pack ("{s:s}", "command", "status"), 2000, &r, &err);
  cr_assert_eq (r, -ECONNRESET, "%d %s", r, err ? err->msg : "");
  cr_assert_null (reply);
  tu_assert_err_has (err, path);
  tu_assert_err_has (err, "closed the connection without a reply");
}
