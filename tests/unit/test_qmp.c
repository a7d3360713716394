/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QMP client: the framing parser and message validation (bytes fed
 * directly, and a fake server forked per test on a socketpair or a listening
 * socket, writing crafted bytes), the synchronous and asynchronous APIs, and
 * the real QEMU of this machine (-machine none and -machine pc), also driven
 * from an sd-event loop as the supervisor does.  Descriptors passed with a
 * request (getfd): which byte they travel with, refusals, no leaks, and a
 * migration into a file and back through them.
 */
#include "qemu/qmp.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "testutil.h"
#include "util/deadline.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>
#include <time.h>

#define QEMU_X86 "/usr/bin/qemu-system-x86_64"

/* clang-format off */
#define GREETING                                                                                                       \
  "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"Debian "             \
  "1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}\r\n"
#define CAPS_OK "{\"return\": {}, \"id\": 1}\r\n"
#define TS "\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 5}"
/* clang-format on */

static pid_t server_pid = -1;
static pid_t qemu_pid = -1;
static pid_t qemu2_pid = -1; /* a second QEMU (migration) */
static char *tmp;

static void
setup (void)
{
  tmp = tu_tmpdir ();
}

static void
teardown (void)
{
  if (server_pid > 0)
    {
      kill (server_pid, SIGKILL);
      waitpid (server_pid, NULL, 0);
      server_pid = -1;
    }
  if (qemu_pid > 0)
    {
      kill (qemu_pid, SIGKILL);
      waitpid (qemu_pid, NULL, 0);
      qemu_pid = -1;
    }
  if (qemu2_pid > 0)
    {
      kill (qemu2_pid, SIGKILL);
      waitpid (qemu2_pid, NULL, 0);
      qemu2_pid = -1;
    }
  tu_rmtree (tmp);
  free (tmp);
  tmp = NULL;
}

/* Wait up to TIMEOUT_MS for PID; its wait status, or -1 when still running.  */
static int
wait_exit (pid_t pid, int timeout_ms)
{
  long long end = avm_now_ms () + timeout_ms;
  int status;

  for (;;)
    {
      pid_t r = waitpid (pid, &status, WNOHANG);
      if (r == pid)
        return status;
      if (r < 0 || avm_now_ms () >= end)
        return -1;
      tu_sleep_ms (10);
    }
}

/* ------------------------------------------------------------------ */
/* Event recording.  */

struct rec
{
  int n;
  char names[32][32];
  json_t *data[32];
};

static void
rec_event (void *data, const char *event, json_t *data_obj, json_t *timestamp)
{
  struct rec *r = data;
  cr_assert_not_null (event);
  if (r->n < 32)
    {
      snprintf (r->names[r->n], sizeof r->names[r->n], "%s", event);
      r->data[r->n] = json_incref (data_obj);
      r->n++;
    }
}

static void
rec_clear (struct rec *r)
{
  for (int i = 0; i < r->n; i++)
    json_decref (r->data[i]);
  r->n = 0;
}

static int
rec_find (const struct rec *r, const char *name)
{
  for (int i = 0; i < r->n; i++)
    if (streq (r->names[i], name))
      return i;
  return -1;
}

struct reply
{
  int calls;
  json_t *ret;
  json_t *error;
  int order;
};

static int reply_seq;

static void
rec_reply (void *data, json_t *ret, json_t *error)
{
  struct reply *r = data;
  r->calls++;
  r->ret = json_incref (ret);
  r->error = json_incref (error);
  r->order = ++reply_seq;
}

static void
reply_clear (struct reply *r)
{
  json_decref (r->ret);
  json_decref (r->error);
  memset (r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ */
/* Fake server: a child process running a script on one end of a stream
   socket.  "@IDn@" in written text stands for the "id" of the n-th request
   read (0 is qmp_capabilities).  */

enum step_kind
{
  S_END,   /* close and exit 0 */
  S_WRITE, /* write text */
  S_READ,  /* read one request line; text: expected command, or NULL */
  S_SLEEP, /* n milliseconds */
  S_BIG,   /* write n bytes of 'x' */
  S_HOLD,  /* keep the socket open until killed */
};

struct step
{
  enum step_kind kind;
  const char *text;
  int n;
};

/* clang-format off */
#define W(t) { S_WRITE, (t), 0 }
#define R(c) { S_READ, (c), 0 }
#define SLEEP(ms) { S_SLEEP, NULL, (ms) }
#define BIG(n) { S_BIG, NULL, (n) }
#define HOLD { S_HOLD, NULL, 0 }
#define END { S_END, NULL, 0 }
#define HANDSHAKE W (GREETING), R ("qmp_capabilities"), W ("{\"return\": {}, \"id\": @ID0@}\r\n")
/* clang-format on */

static void
child_write (int fd, const char *p, size_t len)
{
  while (len > 0)
    {
      ssize_t w = send (fd, p, len, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        _exit (4);
      p += w;
      len -= w;
    }
}

static void
run_script (int fd, const struct step *script)
{
  char ids[16][64] = { { 0 } };
  int nids = 0;
  static char line[1 << 20];
  /* Bytes read past the last line, kept for the next S_READ (reading a
     byte at a time made 2 MiB of requests cost 2 million system calls).  */
  static char rbuf[1 << 16];
  size_t rlen = 0;

  for (const struct step *s = script;; s++)
    switch (s->kind)
      {
      case S_END:
        close (fd);
        _exit (0);
      case S_HOLD:
        for (;;)
          pause ();
      case S_SLEEP:
        tu_sleep_ms (s->n);
        break;
      case S_BIG:
        {
          static char chunk[65536];
          memset (chunk, 'x', sizeof chunk);
          for (int left = s->n; left > 0; left -= (int) sizeof chunk)
            child_write (fd, chunk, left < (int) sizeof chunk ? (size_t) left : sizeof chunk);
          break;
        }
      case S_WRITE:
        {
          const char *p = s->text;
          while (*p)
            {
              const char *at = strstr (p, "@ID");
              if (!at)
                {
                  child_write (fd, p, strlen (p));
                  break;
                }
              child_write (fd, p, at - p);
              int k = at[3] - '0';
              if (k < 0 || k >= 16 || at[4] != '@')
                _exit (5);
              child_write (fd, ids[k], strlen (ids[k]));
              p = at + 5;
            }
          break;
        }
      case S_READ:
        {
          size_t len = 0;
          for (;;)
            {
              char *nl = memchr (rbuf, '\n', rlen);
              size_t take = nl ? (size_t) (nl - rbuf) : rlen;
              if (len + take >= sizeof line - 1)
                _exit (7);
              memcpy (line + len, rbuf, take);
              len += take;
              if (nl)
                {
                  rlen -= take + 1;
                  memmove (rbuf, nl + 1, rlen);
                  break;
                }
              rlen = 0;
              ssize_t r = read (fd, rbuf, sizeof rbuf);
              if (r < 0 && errno == EINTR)
                continue;
              if (r <= 0)
                _exit (6);
              rlen = (size_t) r;
            }
          line[len] = '\0';
          json_t *req = json_loads (line, 0, NULL);
          if (!req || nids >= 16)
            _exit (8);
          if (s->text && !streq (json_string_value (json_object_get (req, "execute")) ?: "", s->text))
            _exit (9);
          char *id = json_dumps (json_object_get (req, "id"), JSON_ENCODE_ANY | JSON_COMPACT);
          if (!id)
            _exit (10);
          snprintf (ids[nids++], sizeof ids[0], "%s", id);
          free (id);
          json_decref (req);
          break;
        }
      }
}

static void
child_setup (void)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  signal (SIGPIPE, SIG_IGN);
}

/* The client's end of a socketpair whose other end runs SCRIPT.  */
static int
start_fake (const struct step *script)
{
  int sv[2];

  cr_assert_eq (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  server_pid = fork ();
  cr_assert_geq (server_pid, 0);
  if (server_pid == 0)
    {
      child_setup ();
      close (sv[0]);
      run_script (sv[1], script);
      _exit (0);
    }
  close (sv[1]);
  return sv[0];
}

/* A fake server listening on PATH after DELAY_MS, serving one client.  */
static void
start_fake_listener (const char *path, int delay_ms, const struct step *script)
{
  server_pid = fork ();
  cr_assert_geq (server_pid, 0);
  if (server_pid == 0)
    {
      child_setup ();
      tu_sleep_ms (delay_ms);
      struct sockaddr_un sa = { .sun_family = AF_UNIX };
      snprintf (sa.sun_path, sizeof sa.sun_path, "%s", path);
      int l = socket (AF_UNIX, SOCK_STREAM, 0);
      if (l < 0 || bind (l, (struct sockaddr *) &sa, sizeof sa) < 0 || listen (l, 1) < 0)
        _exit (11);
      int fd = accept (l, NULL, NULL);
      if (fd < 0)
        _exit (12);
      run_script (fd, script);
      _exit (0);
    }
}

/* Exit status of the fake server (it must have ended within 5 s).  */
static int
fake_finish (void)
{
  int st = wait_exit (server_pid, 5000);
  cr_assert_neq (st, -1, "fake server still running");
  server_pid = -1;
  return WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
}

static struct avm_qmp *
fake_connect (const struct step *script)
{
  struct avm_qmp *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  int fd = start_fake (script);

  cr_assert_eq (avm_qmp_connect_fd (fd, "fake.sock", 2000, &q, &err), 0, "%s", err ? err->msg : "");
  cr_assert (avm_qmp_is_ready (q));
  return q;
}

/* ------------------------------------------------------------------ */
/* Parser, fed directly (no socket).  */

static struct avm_qmp *
fed_client (void)
{
  struct avm_qmp *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_qmp_new (-1, "fuzz.sock", &q, &err), 0);
  cr_assert_not (avm_qmp_is_ready (q));
  cr_assert_eq (avm_qmp_feed (q, GREETING, strlen (GREETING), &err), 0, "%s", err ? err->msg : "");
  cr_assert_not (avm_qmp_is_ready (q));
  cr_assert_eq (avm_qmp_feed (q, CAPS_OK, strlen (CAPS_OK), &err), 0, "%s", err ? err->msg : "");
  cr_assert (avm_qmp_is_ready (q));
  return q;
}

static int
feed_str (struct avm_qmp *q, const char *s, avm_error_t *err)
{
  return avm_qmp_feed (q, s, strlen (s), err);
}

Test (qmp, feed_greeting_and_framing)
{
  _cleanup_qmp_ struct avm_qmp *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  const char *all = GREETING "\r\n\n  \r\n" CAPS_OK "{\"event\": \"STOP\", " TS "}\n"
                             "{\"event\": \"RESUME\", " TS "}\r\n"
                             "{\"event\": \"RESET\", \"data\": {\"guest\": true}, " TS "}\r\n";
  struct rec rec = { 0 };
  int major, minor, micro;

  cr_assert_eq (avm_qmp_new (-1, "fuzz.sock", &q, &err), 0);
  avm_qmp_set_event_handler (q, rec_event, &rec);
  /* One byte at a time: every split point of every line.  */
  for (const char *p = all; *p; p++)
    cr_assert_eq (avm_qmp_feed (q, p, 1, &err), 0, "at byte %zu: %s", (size_t) (p - all), err ? err->msg : "");
  cr_assert (avm_qmp_is_ready (q));
  cr_assert_str_eq (avm_qmp_qemu_version (q), "7.2.22");
  avm_qmp_qemu_version_numbers (q, &major, &minor, &micro);
  cr_assert_eq (major, 7);
  cr_assert_eq (minor, 2);
  cr_assert_eq (micro, 22);
  cr_assert_str_eq (avm_qmp_qemu_package (q), "Debian 1:7.2+dfsg-7+deb12u18+b3");
  cr_assert (json_is_object (json_object_get (avm_qmp_greeting (q), "QMP")));
  cr_assert_str_eq (avm_qmp_name (q), "fuzz.sock");
  cr_assert_eq (rec.n, 3);
  cr_assert_str_eq (rec.names[0], "STOP");
  cr_assert_null (rec.data[0]);
  cr_assert_str_eq (rec.names[1], "RESUME");
  cr_assert_str_eq (rec.names[2], "RESET");
  cr_assert (json_is_true (json_object_get (rec.data[2], "guest")));
  rec_clear (&rec);

  /* Several messages and a partial one in one chunk.  */
  const char *chunk = "{\"event\": \"A\", " TS "}\r\n{\"event\": \"B\", " TS "}\r\n{\"event\": \"C\", ";
  cr_assert_eq (feed_str (q, chunk, &err), 0);
  cr_assert_eq (rec.n, 2);
  cr_assert_eq (feed_str (q, TS "}\r\n", &err), 0);
  cr_assert_eq (rec.n, 3);
  cr_assert_str_eq (rec.names[2], "C");
  rec_clear (&rec);
}

Test (qmp, feed_old_package_format)
{
  _cleanup_qmp_ struct avm_qmp *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_qmp_new (-1, "old", &q, &err), 0);
  cr_assert_eq (feed_str (q,
                          "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 1, \"minor\": 8, \"major\": 2}, "
                          "\"package\": \" (Debian 1:2.8+dfsg-6)\"}, \"capabilities\": []}}\n",
                          &err),
                0);
  cr_assert_str_eq (avm_qmp_qemu_version (q), "2.8.1");
  cr_assert_str_eq (avm_qmp_qemu_package (q), "Debian 1:2.8+dfsg-6");

  _cleanup_qmp_ struct avm_qmp *q2 = NULL;
  cr_assert_eq (avm_qmp_new (-1, "nopkg", &q2, &err), 0);
  cr_assert_eq (feed_str (q2,
                          "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 0, \"major\": 10}, "
                          "\"package\": \"\"}, \"capabilities\": []}}\n",
                          &err),
                0);
  cr_assert_null (avm_qmp_qemu_package (q2));
  cr_assert_str_eq (avm_qmp_qemu_version (q2), "10.0.0");
}

static void
expect_greeting_error (const char *input, const char *needle)
{
  _cleanup_qmp_ struct avm_qmp *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_qmp_new (-1, "fuzz.sock", &q, &err), 0);
  cr_assert_eq (feed_str (q, input, &err), -EPROTO, "accepted: %s", input);
  tu_assert_err_has (err, "QMP socket fuzz.sock: protocol error: ");
  tu_assert_err_has (err, needle);
  cr_assert_not (avm_qmp_is_ready (q));
}

Test (qmp, feed_bad_greetings)
{
  static const struct
  {
    const char *input, *needle;
  } greetings[] = {
    { "{\"event\": \"STOP\", " TS "}\n", "expected the QMP greeting: {\"event\": \"STOP\"" },
    { "{\"return\": {}}\n", "expected the QMP greeting" },
    { "{\"QMP\": 1}\n", "expected the QMP greeting" },
    { "{\"QMP\": {}}\n", "greeting without a valid QEMU version" },
    { "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2}}}}\n", "greeting without a valid QEMU version" },
    { "{\"QMP\": {\"version\": {\"qemu\": {\"major\": -7, \"minor\": 2, \"micro\": 0}}}}\n",
      "greeting without a valid QEMU version" },
    { "{\"QMP\": {\"version\": {\"qemu\": {\"major\": \"7\", \"minor\": 2, \"micro\": 0}}}}\n",
      "greeting without a valid QEMU version" },
    { "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, \"micro\": 0}, "
      "\"package\": 5}}}\n",
      "package that is not a string" },
    { "QMP ready\n", "malformed JSON at byte" },
    { "[]\n", "message is not a JSON object: []" },
  };
  for (size_t i = 0; i < ARRAY_SIZE (greetings); i++)
    expect_greeting_error (greetings[i].input, greetings[i].needle);
}

static void
expect_protocol_error (const char *input, const char *needle)
{
  _cleanup_qmp_ struct avm_qmp *q = fed_client ();
  _cleanup_error_ avm_error_t err = NULL;
  struct reply rep = { 0 };

  /* A request waiting for its reply: it must be failed with (NULL, NULL).  */
  cr_assert_eq (avm_qmp_send_async (q, "query-status", NULL, rec_reply, &rep, &err), 0);
  cr_assert_eq (feed_str (q, input, &err), -EPROTO, "accepted: %s", input);
  tu_assert_err_has (err, "QMP socket fuzz.sock: protocol error: ");
  tu_assert_err_has (err, needle);
  cr_assert_null (strchr (err->msg, '\n'), "multi-line message: %s", err->msg);
  cr_assert_eq (rep.calls, 1);
  cr_assert_null (rep.ret);
  cr_assert_null (rep.error);
  cr_assert_not (avm_qmp_is_ready (q));
  cr_assert_eq (avm_qmp_io_events (q), 0);

  /* Sticky: every later call reports the same error.  */
  _cleanup_free_ char *first = strdup (err->msg);
  avm_error_freep (&err);
  cr_assert_eq (feed_str (q, CAPS_OK, &err), -EPROTO);
  cr_assert_str_eq (err->msg, first);
  avm_error_freep (&err);
  cr_assert_eq (avm_qmp_send_async (q, "query-status", NULL, rec_reply, &rep, &err), -EPROTO);
  cr_assert_str_eq (err->msg, first);
  avm_error_freep (&err);
  cr_assert_eq (avm_qmp_execute (q, "query-status", json_object (), 100, NULL, &err), -EPROTO);
  cr_assert_str_eq (err->msg, first);
  cr_assert_eq (rep.calls, 1);
  reply_clear (&rep);
}

Test (qmp, feed_protocol_errors)
{
  static const struct
  {
    const char *input, *needle;
  } inputs[] = {
    { "{\"return\": {}, \"id\": \r\n", "malformed JSON at byte" },
    { "{\"return\": {}}garbage\n", "malformed JSON" },
    { "{\"return\": {}} {\"return\": {}}\n", "malformed JSON" },
    { "\"just a string\"\n", "malformed JSON" },
    { "42\n", "malformed JSON" },
    { "{\"a\": 1, \"a\": 2}\n", "malformed JSON" },
    { "\xff\xfe{}\n", "malformed JSON" },
    { "{\"return\": \"a\\u0000b\"}\n", "malformed JSON" },
    { "{\"return\": 1e999999}\n", "malformed JSON" },
    { "{\"return\": 123456789012345678901234567890}\n", "malformed JSON" },
    { "[1, 2]\n", "message is not a JSON object: [1, 2]" },
    { "{}\n", "message is neither a reply nor an event: {}" },
    { "{\"foo\": 1}\n", "message is neither a reply nor an event" },
    { "{\"event\": 5}\n", "event name is not a non-empty string" },
    { "{\"event\": \"\"}\n", "event name is not a non-empty string" },
    { "{\"event\": \"X\", \"data\": []}\n", "event data is not an object" },
    { "{\"event\": \"X\", \"data\": null}\n", "event data is not an object" },
    { "{\"event\": \"X\", \"timestamp\": 1}\n", "event timestamp is not an object" },
    { "{\"event\": \"X\", \"return\": {}}\n", "both an event and a reply" },
    { "{\"return\": {}, \"error\": {\"class\": \"A\", \"desc\": \"b\"}, \"id\": 2}\n", "reply with both" },
    { "{\"error\": \"bad\", \"id\": 2}\n", "error reply without a class and a description" },
    { "{\"error\": {\"class\": \"A\"}, \"id\": 2}\n", "error reply without a class" },
    { "{\"error\": {\"desc\": \"d\"}, \"id\": 2}\n", "error reply without a class" },
    { GREETING, "second greeting" },
    /* Control characters are escaped in the quoted message.  */
    { "{\"foo\": \"\x1b[31m\"}\n", "{\"foo\": \"\\x1b[31m\"}" },
  };
  for (size_t i = 0; i < ARRAY_SIZE (inputs); i++)
    expect_protocol_error (inputs[i].input, inputs[i].needle);
}

Test (qmp, feed_nul_byte)
{
  static const char line[] = "{\"return\": {}\0, \"id\": 2}\n";
  _cleanup_qmp_ struct avm_qmp *q = fed_client ();
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_qmp_feed (q, line, sizeof line - 1, &err), -EPROTO);
  tu_assert_err_has (err, "malformed JSON");
  tu_assert_err_has (err, "{\"return\": {}\\x00, ");
}

Test (qmp, feed_deep_nesting)
{
  /* jansson's depth limit, not the stack, ends this.  */
  size_t depth = 100000;
  _cleanup_free_ char *s = malloc (2 * depth + 2);
  memset (s, '[', depth);
  memset (s + depth, ']', depth);
  s[2 * depth] = '\n';
  s[2 * depth + 1] = '\0';
  expect_protocol_error (s, "malformed JSON");
  memset (s, '{', 1);
  expect_protocol_error (s, "malformed JSON");
}

/* A reply line of exactly LEN bytes (terminator excluded) to request 2.  */
static char *
reply_of_length (size_t len)
{
  const char *head = "{\"return\": \"", *tail = "\", \"id\": 2}";
  size_t pad = len - strlen (head) - strlen (tail);
  char *s = malloc (len + 3), *p = s;
  p = stpcpy (p, head);
  memset (p, 'y', pad);
  p += pad;
  p = stpcpy (p, tail);
  strcpy (p, "\r\n");
  return s;
}

Test (qmp, feed_line_limit)
{
  _cleanup_qmp_ struct avm_qmp *q = fed_client ();
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *max = reply_of_length (AVM_QMP_MAX_LINE);
  _cleanup_free_ char *over = reply_of_length (AVM_QMP_MAX_LINE + 1);
  struct reply rep = { 0 };

  /* Exactly the limit: accepted.  */
  cr_assert_eq (avm_qmp_send_async (q, "query-x", NULL, rec_reply, &rep, &err), 0);
  cr_assert_eq (feed_str (q, max, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (rep.calls, 1);
  cr_assert_eq (json_string_length (rep.ret), AVM_QMP_MAX_LINE - strlen ("{\"return\": \"\", \"id\": 2}"));
  reply_clear (&rep);

  /* One byte more: rejected, also when it arrives as one chunk.  */
  cr_assert_eq (avm_qmp_send_async (q, "query-x", NULL, rec_reply, &rep, &err), 0);
  cr_assert_eq (feed_str (q, over, &err), -EPROTO);
  tu_assert_err_has (err, "QMP socket fuzz.sock: protocol error: message longer than 1048576 bytes");
  cr_assert_eq (rep.calls, 1);
  cr_assert_null (rep.ret);
  reply_clear (&rep);
}

Test (qmp, feed_endless_line)
{
  /* No newline ever: rejected once the limit is passed, without buffering
     more than the limit plus one chunk.  */
  _cleanup_qmp_ struct avm_qmp *q = fed_client ();
  _cleanup_error_ avm_error_t err = NULL;
  char chunk[4096];
  size_t fed = 0;
  int r = 0;

  memset (chunk, 'z', sizeof chunk);
  while (fed < 4 * AVM_QMP_MAX_LINE && (r = avm_qmp_feed (q, chunk, sizeof chunk, &err)) == 0)
    fed += sizeof chunk;
  cr_assert_eq (r, -EPROTO);
  cr_assert_leq (fed, AVM_QMP_MAX_LINE + 1);
  tu_assert_err_has (err, "message longer than");
}

Test (qmp, feed_reply_matching)
{
  _cleanup_qmp_ struct avm_qmp *q = fed_client ();
  _cleanup_error_ avm_error_t err = NULL;
  struct reply a = { 0 }, b = { 0 }, c = { 0 };

  reply_seq = 0;
  cr_assert_eq (avm_qmp_send_async (q, "a", NULL, rec_reply, &a, &err), 0);                        /* id 2 */
  cr_assert_eq (avm_qmp_send_async (q, "b", json_pack ("{s:i}", "x", 1), rec_reply, &b, &err), 0); /* id 3 */
  cr_assert_eq (avm_qmp_send_async (q, "c", NULL, rec_reply, &c, &err), 0);                        /* id 4 */
  /* Unknown ids (number, string, object) are ignored.  */
  cr_assert_eq (feed_str (q,
                          "{\"return\": {\"wrong\": 1}, \"id\": 99}\r\n"
                          "{\"return\": {\"wrong\": 2}, \"id\": \"3\"}\r\n"
                          "{\"return\": {\"wrong\": 3}, \"id\": {\"n\": 3}}\r\n"
                          "{\"return\": {\"wrong\": 4}, \"id\": 3.0}\r\n",
                          &err),
                0);
  cr_assert_eq (a.calls + b.calls + c.calls, 0);
  /* Out of order.  */
  cr_assert_eq (feed_str (q, "{\"return\": {\"r\": \"b\"}, \"id\": 3}\r\n", &err), 0);
  cr_assert_eq (b.calls, 1);
  cr_assert_str_eq (json_string_value (json_object_get (b.ret, "r")), "b");
  /* Without an id: the oldest pending request's (QEMU could not parse it).  */
  cr_assert_eq (feed_str (q, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n", &err),
                0);
  cr_assert_eq (a.calls, 1);
  cr_assert_null (a.ret);
  cr_assert_str_eq (json_string_value (json_object_get (a.error, "desc")), "JSON parse error");
  /* Replayed id: ignored.  */
  cr_assert_eq (feed_str (q, "{\"return\": {\"r\": \"again\"}, \"id\": 3}\r\n", &err), 0);
  cr_assert_eq (b.calls, 1);
  cr_assert_eq (c.calls, 0);
  cr_assert_eq (feed_str (q, "{\"return\": [1, 2], \"id\": 4}\r\n", &err), 0);
  cr_assert_eq (c.calls, 1);
  cr_assert_eq (json_array_size (c.ret), 2);
  cr_assert_lt (b.order, a.order);
  cr_assert_lt (a.order, c.order);
  reply_clear (&a);
  reply_clear (&b);
  reply_clear (&c);
}

Test (qmp, feed_request_validation)
{
  _cleanup_qmp_ struct avm_qmp *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  struct reply rep = { 0 };

  cr_assert_eq (avm_qmp_new (-1, "fuzz.sock", &q, &err), 0);
  cr_assert_eq (avm_qmp_send_async (q, "query-status", NULL, rec_reply, &rep, &err), -ENOTCONN);
  tu_assert_err_has (err, "QMP socket fuzz.sock: cannot send query-status before the handshake completed");
  avm_qmp_closep (&q);

  q = fed_client ();
  avm_error_freep (&err);
  cr_assert_eq (avm_qmp_send_async (q, "", NULL, rec_reply, &rep, &err), -EINVAL);
  avm_error_freep (&err);
  cr_assert_eq (avm_qmp_send_async (q, "x", json_array (), rec_reply, &rep, &err), -EINVAL);
  tu_assert_err_has (err, "QMP x: the arguments must be a JSON object");
  avm_error_freep (&err);
  cr_assert_eq (avm_qmp_send_async (q, "\xff", NULL, rec_reply, &rep, &err), -EINVAL);
  cr_assert_eq (rep.calls, 0);
  /* Still usable.  */
  cr_assert (avm_qmp_is_ready (q));
}

Test (qmp, feed_event_queue)
{
  _cleanup_qmp_ struct avm_qmp *q = fed_client ();
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_json_ json_t *ev = NULL;
  struct rec rec = { 0 };

  cr_assert_eq (feed_str (q,
                          "{\"event\": \"STOP\", " TS "}\r\n"
                          "{\"event\": \"POWERDOWN\", " TS "}\r\n"
                          "{\"event\": \"RESUME\", " TS "}\r\n",
                          &err),
                0);
  /* Found in the queue, the others stay.  */
  cr_assert_eq (avm_qmp_wait_event (q, "POWERDOWN", 0, &ev, &err), 0);
  cr_assert_str_eq (json_string_value (json_object_get (ev, "event")), "POWERDOWN");
  json_decref (steal_pointer (&ev));
  cr_assert_eq (avm_qmp_wait_event (q, "POWERDOWN", 0, NULL, &err), -ETIMEDOUT);
  tu_assert_err_has (err, "QMP socket fuzz.sock: no POWERDOWN event within 0 ms");
  cr_assert_eq (avm_qmp_wait_event (q, NULL, 0, &ev, &err), 0);
  cr_assert_str_eq (json_string_value (json_object_get (ev, "event")), "STOP");
  /* Setting a handler hands it the rest.  */
  avm_qmp_set_event_handler (q, rec_event, &rec);
  cr_assert_eq (rec.n, 1);
  cr_assert_str_eq (rec.names[0], "RESUME");
  cr_assert_eq (avm_qmp_wait_event (q, NULL, 0, NULL, &err), -ETIMEDOUT);
  rec_clear (&rec);

  /* The queue is bounded: the oldest go.  */
  avm_qmp_set_event_handler (q, NULL, NULL);
  for (int i = 0; i < AVM_QMP_MAX_QUEUED_EVENTS + 10; i++)
    {
      char line[128];
      snprintf (line, sizeof line, "{\"event\": \"E%d\", " TS "}\n", i);
      cr_assert_eq (feed_str (q, line, &err), 0);
    }
  avm_qmp_set_event_handler (q, rec_event, &rec);
  cr_assert_eq (rec.n, 32); /* rec keeps 32 */
  cr_assert_str_eq (rec.names[0], "E10");
  rec_clear (&rec);
}

/* Tiny deterministic fuzzer: JSON-ish token soup, with requests pending and
   from every state; ASan/UBSan builds make this meaningful.  */
Test (qmp, feed_token_soup)
{
  static const char *tokens[] = {
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\n",
    "\r\n",
    "\"event\"",
    "\"return\"",
    "\"error\"",
    "\"id\"",
    "\"data\"",
    "\"timestamp\"",
    "\"QMP\"",
    "\"class\"",
    "\"desc\"",
    "1",
    "2",
    "3",
    "-1",
    "1e400",
    "null",
    "true",
    "\"x\"",
    "{\"class\": \"A\", \"desc\": \"d\"}",
    "\"\\u0000\"",
    "\xc3\x28",
    "\x00",
    " ",
    GREETING,
    CAPS_OK,
    "{\"return\": {}, \"id\": 2}\n",
    "{\"event\": \"E\", " TS "}\n",
  };
  unsigned long long seed = 0x2545F4914F6CDD1DULL;
  char buf[512];
  int outcomes[3] = { 0 };

  for (int iter = 0; iter < 3000; iter++)
    {
      _cleanup_qmp_ struct avm_qmp *q = NULL;
      _cleanup_error_ avm_error_t err = NULL;
      struct reply rep = { 0 };
      struct rec rec = { 0 };
      int r = 0;

      if (iter % 2)
        q = fed_client ();
      else
        cr_assert_eq (avm_qmp_new (-1, "soup", &q, &err), 0);
      if (iter % 3 == 0)
        avm_qmp_set_event_handler (q, rec_event, &rec);
      if (avm_qmp_is_ready (q))
        cr_assert_eq (avm_qmp_send_async (q, "q", NULL, rec_reply, &rep, &err), 0);
      for (int round = 0; round < 4 && r == 0; round++)
        {
          size_t len = 0;
          int ntok = 1 + (int) ((seed >> 33) % 24);
          for (int t = 0; t < ntok; t++)
            {
              seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
              size_t k = (seed >> 33) % ARRAY_SIZE (tokens);
              size_t tl = k == 28 ? 1 : strlen (tokens[k]); /* "\x00" is one NUL byte */
              if (len + tl > sizeof buf)
                break;
              memcpy (buf + len, tokens[k], tl);
              len += tl;
            }
          r = avm_qmp_feed (q, buf, len, &err);
          cr_assert (r == 0 || r == -EPROTO, "feed returned %d", r);
          if (r < 0)
            cr_assert_not_null (err);
        }
      outcomes[r == 0 ? 0 : 1]++;
      outcomes[2] += rec.n + (rep.ret != NULL);
      avm_qmp_closep (&q);
      /* Every request got exactly one answer, at the latest on close.  */
      cr_assert_leq (rep.calls, 1);
      reply_clear (&rep);
      rec_clear (&rec);
    }
  cr_assert_gt (outcomes[0], 0);
  cr_assert_gt (outcomes[1], 0);
  cr_assert_gt (outcomes[2], 0);
}

/* ------------------------------------------------------------------ */
/* Fake server over a socket.  */

Test (qmp, fake_handshake_and_execute, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = {
    HANDSHAKE,
    R ("query-status"),
    /* Events before the reply, all in one write, and the reply in pieces.  */
    W ("{\"event\": \"STOP\", " TS "}\r\n{\"event\": \"RESUME\", " TS "}\r\n{\"ret"),
    SLEEP (50),
    W ("urn\": {\"status\": \"run"),
    SLEEP (50),
    W ("ning\", \"running\": true}, \"id\": @ID1@}\r"),
    SLEEP (50),
    W ("\n"),
    R ("query-version"),
    W ("{\"return\": {\"qemu\": {\"major\": 7}}, \"id\": @ID2@}\r\n"),
    END,
  };
  _cleanup_qmp_ struct avm_qmp *q = fake_connect (script);
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_json_ json_t *ret = NULL;
  struct rec rec = { 0 };

  cr_assert_str_eq (avm_qmp_qemu_version (q), "7.2.22");
  avm_qmp_set_event_handler (q, rec_event, &rec);
  cr_assert_eq (avm_qmp_execute (q, "query-status", NULL, 2000, &ret, &err), 0, "%s", err ? err->msg : "");
  cr_assert_str_eq (json_string_value (json_object_get (ret, "status")), "running");
  cr_assert_eq (rec.n, 2);
  cr_assert_str_eq (rec.names[0], "STOP");
  cr_assert_str_eq (rec.names[1], "RESUME");
  json_decref (steal_pointer (&ret));
  cr_assert_eq (avm_qmp_execute (q, "query-version", NULL, 2000, &ret, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (json_integer_value (json_object_get (json_object_get (ret, "qemu"), "major")), 7);
  cr_assert_eq (fake_finish (), 0);
  rec_clear (&rec);
}

Test (qmp, fake_wrong_id_ignored, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = {
    HANDSHAKE,
    R ("query-status"),
    W ("{\"return\": {\"status\": \"wrong\"}, \"id\": 12345}\r\n"),
    W ("{\"return\": {\"status\": \"wrong too\"}, \"id\": \"@ID1@\"}\r\n"),
    W ("{\"return\": {\"status\": \"paused\"}, \"id\": @ID1@}\r\n"),
    END,
  };
  _cleanup_qmp_ struct avm_qmp *q = fake_connect (script);
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_json_ json_t *ret = NULL;

  cr_assert_eq (avm_qmp_execute (q, "query-status", NULL, 2000, &ret, &err), 0, "%s", err ? err->msg : "");
  cr_assert_str_eq (json_string_value (json_object_get (ret, "status")), "paused");
  cr_assert_eq (fake_finish (), 0);
}

Test (qmp, fake_error_reply, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = {
    HANDSHAKE,
    R ("system_powerdown"),
    W ("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command system_powerdown has not been "
       "found\"}, \"id\": @ID1@}\r\n"),
    R ("device_add"),
    W ("{\"error\": {\"class\": \"GenericError\", \"desc\": \"two\\nlines\"}, \"id\": @ID2@}\r\n"),
    R ("query-status"),
    W ("{\"return\": {\"status\": \"running\"}, \"id\": @ID3@}\r\n"),
    END,
  };
  _cleanup_qmp_ struct avm_qmp *q = fake_connect (script);
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_json_ json_t *ret = NULL;

  cr_assert_eq (avm_qmp_execute (q, "system_powerdown", NULL, 2000, &ret, &err), -EOPNOTSUPP);
  cr_assert_null (ret);
  cr_assert_str_eq (err->msg, "QMP system_powerdown: CommandNotFound: The command system_powerdown has not been found");
  cr_assert_eq (err->exit_code, AVM_EXIT_FAILURE);
  avm_error_freep (&err);
  cr_assert_eq (avm_qmp_execute (q, "device_add", json_pack ("{s:s}", "driver", "x"), 2000, &ret, &err), -EREMOTEIO);
  cr_assert_str_eq (err->msg, "QMP device_add: GenericError: two\\x0alines");
  avm_error_freep (&err);
  /* An error reply leaves the connection usable.  */
  cr_assert_eq (avm_qmp_execute (q, "query-status", NULL, 2000, &ret, &err), 0);
  cr_assert_eq (fake_finish (), 0);
}

Test (qmp, fake_greeting_missing, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step silent[] = { HOLD };
  struct avm_qmp *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  long long t0 = avm_now_ms ();

  cr_assert_eq (avm_qmp_connect_fd (start_fake (silent), "silent.sock", 300, &q, &err), -ETIMEDOUT);
  cr_assert_null (q);
  long long took = avm_now_ms () - t0;
  cr_assert_geq (took, 290);
  cr_assert_lt (took, 2000);
  cr_assert_str_eq (err->msg,
                    "QMP socket silent.sock: no greeting from QEMU within 300 ms (is another client connected?)");
}

/* The connection is refused before it is ready: QEMU closed it, greeted
   with something else, or refused the capabilities negotiation.  */
static const struct step closed_script[] = { END };
static const struct step bad_greeting_script[] = { W ("{\"event\": \"RESUME\", " TS "}\r\n"), HOLD };
static const struct step caps_refused_script[] = {
  W (GREETING),
  R ("qmp_capabilities"),
  W ("{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": @ID0@}\r\n"),
  HOLD,
};

Test (qmp, fake_connect_refused, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct
  {
    const struct step *script;
    const char *sock;
    int error;
    const char *msg; /* the message starts with it */
  } cases[] = {
    { closed_script, "gone.sock", -ECONNRESET, "QMP socket gone.sock: QEMU closed the monitor before the greeting" },
    { bad_greeting_script, "odd.sock", -EPROTO,
      "QMP socket odd.sock: protocol error: expected the QMP greeting: {\"event\": \"RESUME\"" },
    { caps_refused_script, "caps.sock", -EREMOTEIO, "QMP socket caps.sock: QMP qmp_capabilities: GenericError: no" },
  };
  for (size_t i = 0; i < ARRAY_SIZE (cases); i++)
    {
      struct avm_qmp *q = NULL;
      _cleanup_error_ avm_error_t err = NULL;

      int r = avm_qmp_connect_fd (start_fake (cases[i].script), cases[i].sock, 2000, &q, &err);
      cr_assert_eq (r, cases[i].error, "%s: %d, not %d", cases[i].sock, r, cases[i].error);
      cr_assert_null (q, "%s", cases[i].sock);
      cr_assert_not_null (err, "%s", cases[i].sock);
      cr_assert (strncmp (err->msg, cases[i].msg, strlen (cases[i].msg)) == 0, "%s: %s", cases[i].sock, err->msg);
      kill (server_pid, SIGKILL);
      waitpid (server_pid, NULL, 0);
      server_pid = -1;
    }
}

Test (qmp, fake_malformed_reply, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = {
    HANDSHAKE,
    R ("query-status"),
    W ("{\"return\": {\"status\": running}, \"id\": @ID1@}\r\n"),
    HOLD,
  };
  _cleanup_qmp_ struct avm_qmp *q = fake_connect (script);
  _cleanup_error_ avm_error_t err = NULL;
  json_t *ret = NULL;

  cr_assert_eq (avm_qmp_execute (q, "query-status", NULL, 2000, &ret, &err), -EPROTO);
  cr_assert_null (ret);
  tu_assert_err_has (err, "QMP socket fake.sock: protocol error: malformed JSON at byte ");
  tu_assert_err_has (err, "{\"return\": {\"status\": running}");
}

Test (qmp, fake_overlong_line, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = { HANDSHAKE, R ("query-qmp-schema"), W ("{\"return\": \""), BIG (3 << 20), HOLD };
  _cleanup_qmp_ struct avm_qmp *q = fake_connect (script);
  _cleanup_error_ avm_error_t err = NULL;
  json_t *ret = NULL;

  cr_assert_eq (avm_qmp_execute (q, "query-qmp-schema", NULL, 5000, &ret, &err), -EPROTO);
  cr_assert_str_eq (err->msg, "QMP socket fake.sock: protocol error: message longer than 1048576 bytes");
  cr_assert_eq (avm_qmp_process (q, NULL), -EPROTO);
}

Test (qmp, fake_close_mid_reply, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = { HANDSHAKE, R ("query-status"), W ("{\"return\": {\"sta"), END };
  _cleanup_qmp_ struct avm_qmp *q = fake_connect (script);
  _cleanup_error_ avm_error_t err = NULL;
  json_t *ret = NULL;

  cr_assert_eq (avm_qmp_execute (q, "query-status", NULL, 2000, &ret, &err), -ECONNRESET);
  cr_assert_null (ret);
  cr_assert_str_eq (err->msg, "QMP socket fake.sock: QEMU closed the monitor while waiting for the reply to "
                              "query-status (16 bytes of an incomplete message discarded)");
  cr_assert (avm_qmp_is_closed (q));
  cr_assert_eq (avm_qmp_io_events (q), 0);
  avm_error_freep (&err);
  cr_assert_eq (avm_qmp_execute (q, "query-status", NULL, 2000, &ret, &err), -ECONNRESET);
  tu_assert_err_has (err, "QMP socket fake.sock: QEMU closed the monitor");
  cr_assert_eq (avm_qmp_process (q, NULL), 1);
  cr_assert_eq (fake_finish (), 0);
}

Test (qmp, fake_execute_timeout_then_late_reply, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = {
    HANDSHAKE,
    R ("query-status"),
    SLEEP (400),
    W ("{\"return\": {\"status\": \"late\"}, \"id\": @ID1@}\r\n"),
    R ("query-version"),
    W ("{\"return\": {\"status\": \"current\"}, \"id\": @ID2@}\r\n"),
    END,
  };
  _cleanup_qmp_ struct avm_qmp *q = fake_connect (script);
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_json_ json_t *ret = NULL;
  long long t0 = avm_now_ms ();

  cr_assert_eq (avm_qmp_execute (q, "query-status", NULL, 150, &ret, &err), -ETIMEDOUT);
  cr_assert_geq (avm_now_ms () - t0, 145);
  cr_assert_str_eq (err->msg, "QMP socket fake.sock: no reply to query-status within 150 ms");
  avm_error_freep (&err);
  tu_sleep_ms (400);
  /* The late reply to the forgotten request is skipped.  */
  cr_assert_eq (avm_qmp_execute (q, "query-version", NULL, 2000, &ret, &err), 0, "%s", err ? err->msg : "");
  cr_assert_str_eq (json_string_value (json_object_get (ret, "status")), "current");
  cr_assert_eq (fake_finish (), 0);
}

Test (qmp, fake_async_event_loop, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = {
    HANDSHAKE,
    R ("first"),
    R ("second"),
    /* Second answered first, an event in between, then a close with a
       request still pending.  */
    W ("{\"return\": 2, \"id\": @ID2@}\r\n{\"event\": \"X\", " TS "}\r\n"),
    SLEEP (50),
    W ("{\"return\": 1, \"id\": @ID1@}\r\n"),
    R ("third"),
    END,
  };
  _cleanup_qmp_ struct avm_qmp *q = fake_connect (script);
  _cleanup_error_ avm_error_t err = NULL;
  struct reply r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
  struct rec rec = { 0 };
  int r = 0;

  reply_seq = 0;
  avm_qmp_set_event_handler (q, rec_event, &rec);
  cr_assert_eq (avm_qmp_send_async (q, "first", NULL, rec_reply, &r1, &err), 0);
  cr_assert_eq (avm_qmp_send_async (q, "second", NULL, rec_reply, &r2, &err), 0);
  cr_assert_eq (avm_qmp_send_async (q, "third", NULL, rec_reply, &r3, &err), 0);
  long long end = avm_now_ms () + 5000;
  while (r == 0 && avm_now_ms () < end)
    {
      struct pollfd pfd = { .fd = avm_qmp_fd (q), .events = avm_qmp_io_events (q) };
      cr_assert_neq (pfd.events, 0);
      poll (&pfd, 1, 100);
      r = avm_qmp_process (q, &err);
    }
  cr_assert_eq (r, 1, "%s", err ? err->msg : "");
  cr_assert (avm_qmp_is_closed (q));
  cr_assert_eq (json_integer_value (r1.ret), 1);
  cr_assert_eq (json_integer_value (r2.ret), 2);
  cr_assert_eq (r2.order, 1);
  cr_assert_eq (r1.order, 2);
  cr_assert_eq (rec.n, 1);
  /* The close answered the third with (NULL, NULL).  */
  cr_assert_eq (r3.calls, 1);
  cr_assert_null (r3.ret);
  cr_assert_null (r3.error);
  cr_assert_eq (avm_qmp_io_events (q), 0);
  cr_assert_eq (avm_qmp_send_async (q, "fourth", NULL, rec_reply, &r3, &err), -ECONNRESET);
  cr_assert_eq (r3.calls, 1);
  reply_clear (&r1);
  reply_clear (&r2);
  reply_clear (&r3);
  rec_clear (&rec);
  cr_assert_eq (fake_finish (), 0);
}

Test (qmp, fake_close_calls_pending_callbacks, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = { HANDSHAKE, HOLD };
  struct avm_qmp *q = fake_connect (script);
  _cleanup_error_ avm_error_t err = NULL;
  struct reply rep = { 0 };

  cr_assert_eq (avm_qmp_send_async (q, "query-status", NULL, rec_reply, &rep, &err), 0);
  cr_assert_eq (avm_qmp_process (q, &err), 0);
  cr_assert_eq (rep.calls, 0);
  avm_qmp_close (q);
  cr_assert_eq (rep.calls, 1);
  cr_assert_null (rep.ret);
  cr_assert_null (rep.error);
}

/* A reply callback sending a synchronous request: nested reads.  */
struct nested
{
  struct avm_qmp *q;
  int rc;
  json_t *inner;
};

static void
nested_reply (void *data, json_t *ret, json_t *error)
{
  struct nested *n = data;
  avm_error_t err = NULL;
  if (!ret)
    return;
  n->rc = avm_qmp_execute (n->q, "inner", NULL, 2000, &n->inner, &err);
  avm_error_free (err);
}

Test (qmp, fake_nested_execute, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = {
    HANDSHAKE,
    R ("outer"),
    R ("other"),
    /* The outer reply and the other one in one write: the nested execute
       runs between the two.  */
    W ("{\"return\": {}, \"id\": @ID1@}\r\n{\"return\": \"other\", \"id\": @ID2@}\r\n"),
    R ("inner"),
    W ("{\"event\": \"E\", " TS "}\r\n{\"return\": \"inner\", \"id\": @ID3@}\r\n"),
    END,
  };
  _cleanup_qmp_ struct avm_qmp *q = fake_connect (script);
  _cleanup_error_ avm_error_t err = NULL;
  struct nested n = { .q = q, .rc = -1 };
  struct reply other = { 0 };
  _cleanup_json_ json_t *ev = NULL;

  cr_assert_eq (avm_qmp_send_async (q, "outer", NULL, nested_reply, &n, &err), 0);
  cr_assert_eq (avm_qmp_send_async (q, "other", NULL, rec_reply, &other, &err), 0);
  cr_assert_eq (avm_qmp_wait_event (q, "E", 3000, &ev, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (n.rc, 0);
  cr_assert_str_eq (json_string_value (n.inner), "inner");
  cr_assert_str_eq (json_string_value (other.ret), "other");
  json_decref (n.inner);
  reply_clear (&other);
  cr_assert_eq (fake_finish (), 0);
}

Test (qmp, fake_quit, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  /* As QEMU does: SHUTDOWN, the reply, then the close.  */
  static const struct step normal[] = {
    HANDSHAKE,
    R ("quit"),
    W ("{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"SHUTDOWN\", \"data\": {\"guest\": "
       "false, \"reason\": \"host-qmp-quit\"}}\r\n{\"return\": {}, \"id\": @ID1@}\r\n"),
    END,
  };
  _cleanup_qmp_ struct avm_qmp *q = fake_connect (normal);
  _cleanup_error_ avm_error_t err = NULL;
  struct rec rec = { 0 };

  avm_qmp_set_event_handler (q, rec_event, &rec);
  cr_assert_eq (avm_qmp_quit (q, 2000, &err), 0, "%s", err ? err->msg : "");
  cr_assert (avm_qmp_is_closed (q));
  cr_assert_eq (rec.n, 1);
  cr_assert_str_eq (rec.names[0], "SHUTDOWN");
  cr_assert_str_eq (json_string_value (json_object_get (rec.data[0], "reason")), "host-qmp-quit");
  /* Again: already closed is fine.  */
  cr_assert_eq (avm_qmp_quit (q, 2000, &err), 0);
  rec_clear (&rec);
  cr_assert_eq (fake_finish (), 0);
}

Test (qmp, fake_quit_close_without_reply, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = { HANDSHAKE, R ("quit"), END };
  _cleanup_qmp_ struct avm_qmp *q = fake_connect (script);
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_qmp_quit (q, 2000, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (fake_finish (), 0);
}

Test (qmp, fake_quit_without_close, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = { HANDSHAKE, R ("quit"), W ("{\"return\": {}, \"id\": @ID1@}\r\n"), HOLD };
  _cleanup_qmp_ struct avm_qmp *q = fake_connect (script);
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_qmp_quit (q, 300, &err), -ETIMEDOUT);
  cr_assert_str_eq (err->msg,
                    "QMP socket fake.sock: QEMU acknowledged quit but did not close the monitor within 300 ms");
}

Test (qmp, fake_quit_after_close, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = { HANDSHAKE, END };
  _cleanup_qmp_ struct avm_qmp *q = fake_connect (script);
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (fake_finish (), 0);
  /* QEMU is gone before quit is even written (EPIPE): still success.  */
  cr_assert_eq (avm_qmp_quit (q, 2000, &err), 0, "%s", err ? err->msg : "");
  cr_assert (avm_qmp_is_closed (q));
}

/* Requests larger than the socket buffer wait in the output buffer:
   io_events asks for EPOLLOUT until they are written.  */
Test (qmp, fake_output_backpressure, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = {
    HANDSHAKE, SLEEP (300), R ("big"), R ("big"), R ("big"),  R ("big"),
    R ("big"), R ("big"),   R ("big"), R ("big"), R ("ping"), W ("{\"return\": \"pong\", \"id\": @ID9@}\r\n"),
    END,
  };
  _cleanup_qmp_ struct avm_qmp *q = fake_connect (script);
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_json_ json_t *ret = NULL;
  _cleanup_free_ char *big = malloc (256 * 1024 + 1);

  memset (big, 'a', 256 * 1024);
  big[256 * 1024] = '\0';
  for (int i = 0; i < 8; i++)
    cr_assert_eq (avm_qmp_send_async (q, "big", json_pack ("{s:s}", "s", big), NULL, NULL, &err), 0);
  cr_assert (avm_qmp_io_events (q) & EPOLLOUT);
  cr_assert (avm_qmp_io_events (q) & EPOLLIN);
  cr_assert_eq (avm_qmp_execute (q, "ping", NULL, 5000, &ret, &err), 0, "%s", err ? err->msg : "");
  cr_assert_str_eq (json_string_value (ret), "pong");
  cr_assert_eq (avm_qmp_io_events (q), EPOLLIN);
  cr_assert_eq (fake_finish (), 0);
}

Test (qmp, fake_output_bounded, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = { HANDSHAKE, HOLD };
  _cleanup_qmp_ struct avm_qmp *q = fake_connect (script);
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *big = malloc (1024 * 1024 + 1);
  int r = 0, i;

  memset (big, 'b', 1024 * 1024);
  big[1024 * 1024] = '\0';
  for (i = 0; i < 40 && r == 0; i++)
    r = avm_qmp_send_async (q, "big", json_pack ("{s:s}", "s", big), NULL, NULL, &err);
  cr_assert_eq (r, -ENOBUFS);
  cr_assert_gt (i, 10);
  tu_assert_err_has (err, "QMP socket fake.sock: QEMU does not read its requests");
  /* Refusing a request does not break the connection.  */
  cr_assert (avm_qmp_is_ready (q));
}

Test (qmp, fake_wait_event_close, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = { HANDSHAKE, SLEEP (100), END };
  _cleanup_qmp_ struct avm_qmp *q = fake_connect (script);
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_qmp_wait_event (q, "SHUTDOWN", 2000, NULL, &err), -ECONNRESET);
  cr_assert_str_eq (err->msg, "QMP socket fake.sock: QEMU closed the monitor while waiting for the SHUTDOWN event");
  cr_assert_eq (fake_finish (), 0);
}

/* ------------------------------------------------------------------ */
/* Passing descriptors (getfd, add-fd).  */

/* Open descriptors of this process.  */
static int
count_fds (void)
{
  _cleanup_closedir_ DIR *d = opendir ("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  cr_assert_not_null (d);
  while ((e = readdir (d)))
    if (e->d_name[0] != '.')
      n++;
  return n - 1; /* the directory's own */
}

/* The fake server's reading side: request bytes are read one at a time
   with recvmsg, so that a descriptor shows which byte it came with.  */
struct srv
{
  int fd;
  int nfds;   /* descriptors received */
  long fd_at; /* offset in its line of the byte the last came with */
  int got;    /* the last (the others are closed), or -1 */
  size_t len; /* bytes of the current line */
  char line[1 << 20];
};

/* Read one byte into the current line (or end it at a newline); the
   byte, or -1 when NOWAIT and nothing is there.  Exits the server on a
   problem.  */
static int
srv_byte (struct srv *s, bool nowait)
{
  for (;;)
    {
      union
      {
        char buf[CMSG_SPACE (4 * sizeof (int))];
        struct cmsghdr align;
      } control;
      char c;
      struct iovec iov = { .iov_base = &c, .iov_len = 1 };
      struct msghdr mh
          = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
      ssize_t r = recvmsg (s->fd, &mh, MSG_CMSG_CLOEXEC | (nowait ? MSG_DONTWAIT : 0));
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0 && nowait && errno == EAGAIN)
        return -1;
      if (r <= 0 || (mh.msg_flags & MSG_CTRUNC))
        _exit (20);
      for (struct cmsghdr *cm = CMSG_FIRSTHDR (&mh); cm; cm = CMSG_NXTHDR (&mh, cm))
        {
          if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            _exit (21);
          size_t n = (cm->cmsg_len - CMSG_LEN (0)) / sizeof (int);
          for (size_t i = 0; i < n; i++)
            {
              if (s->got >= 0)
                close (s->got);
              memcpy (&s->got, CMSG_DATA (cm) + i * sizeof (int), sizeof (int));
              s->nfds++;
              s->fd_at = (long) s->len;
            }
        }
      if (c == '\n')
        s->line[s->len] = '\0';
      else if (s->len + 1 < sizeof s->line)
        s->line[s->len++] = c;
      else
        _exit (22);
      return c;
    }
}

/* Read the rest of a request line; the line (NUL-terminated) and its
   length are in S until the next call.  */
static void
srv_line (struct srv *s)
{
  while (srv_byte (s, false) != '\n')
    ;
}

/* A fake server for descriptor passing, on FD: the handshake; then, once a
   byte arrives on GO, what the socket holds (the start of the next
   request) and a byte written to ACK; then, once another byte arrives on GO, N requests (the
   one begun included), each answered {"return": {}}.  Exactly one
   descriptor must arrive, with the first byte of request FD_LINE (0 is the
   first after qmp_capabilities), a getfd {"fdname": "f"}; "hello" is
   written into it.  Exits 0, or with the number of the check that failed.  */
static void
fd_server (int fd, int go, int ack, int n, int fd_line)
{
  static struct srv s;
  char c;

  s.fd = fd;
  s.got = -1;
  s.fd_at = -1;
  child_write (fd, GREETING, strlen (GREETING));
  srv_line (&s);
  if (s.nfds != 0 || !strstr (s.line, "qmp_capabilities"))
    _exit (30);
  child_write (fd, CAPS_OK, strlen (CAPS_OK));
  s.len = 0;
  if (read (go, &c, 1) != 1)
    _exit (31);
  for (int b; (b = srv_byte (&s, true)) >= 0;)
    if (b == '\n' || s.nfds != 0)
      _exit (39);
  if (write (ack, "a", 1) != 1 || read (go, &c, 1) != 1)
    _exit (31);
  for (int i = 0; i < n; i++)
    {
      int before = s.nfds;
      srv_line (&s);
      json_t *req = json_loads (s.line, 0, NULL);
      if (!req)
        _exit (32);
      if (i == fd_line)
        {
          if (s.nfds != before + 1 || s.fd_at != 0)
            _exit (33);
          if (!streq (json_string_value (json_object_get (req, "execute")) ?: "", "getfd")
              || !streq (json_string_value (json_object_get (json_object_get (req, "arguments"), "fdname")) ?: "", "f"))
            _exit (34);
          if (write (s.got, "hello", 5) != 5)
            _exit (35);
          close (s.got);
          s.got = -1;
        }
      else if (s.nfds != before)
        _exit (36); /* a descriptor with the wrong request */
      char *id = json_dumps (json_object_get (req, "id"), JSON_ENCODE_ANY | JSON_COMPACT);
      char *reply = NULL;
      if (!id || asprintf (&reply, "{\"return\": {}, \"id\": %s}\r\n", id) < 0)
        _exit (37);
      child_write (fd, reply, strlen (reply));
      free (reply);
      free (id);
      json_decref (req);
      s.len = 0;
    }
  if (s.nfds != 1)
    _exit (38);
  close (fd);
  _exit (0);
}

/* A small send buffer, so that a request of 64 KiB fills the socket while
   the server does not read.  */
static void
small_sndbuf (int fd)
{
  int size = 4096;
  cr_assert_eq (setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size), 0);
}

static json_t *
big_args (void)
{
  _cleanup_free_ char *big = malloc (64 * 1024 + 1);

  memset (big, 'a', 64 * 1024);
  big[64 * 1024] = '\0';
  return json_pack ("{s:s}", "s", big);
}

/* What a read of FD gives within TIMEOUT_MS: the byte count, 0 at EOF, -1
   when nothing came.  */
static ssize_t
read_within (int fd, char *buf, size_t len, int timeout_ms)
{
  struct pollfd pfd = { .fd = fd, .events = POLLIN };
  if (poll (&pfd, 1, timeout_ms) != 1)
    return -1;
  return read (fd, buf, len);
}

Test (qmp, fake_getfd_passes_descriptor, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  int fds_before = count_fds ();
  struct avm_qmp *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  struct reply replies[5] = { { 0 } };
  int sv[2], go[2], ack[2], p[2];
  char buf[16];
  json_t *ret = NULL;

  cr_assert_eq (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  cr_assert_eq (pipe2 (go, O_CLOEXEC), 0);
  cr_assert_eq (pipe2 (ack, O_CLOEXEC), 0);
  server_pid = fork ();
  cr_assert_geq (server_pid, 0);
  if (server_pid == 0)
    {
      child_setup ();
      close (sv[0]);
      close (go[1]);
      close (ack[0]);
      /* big, a, b, getfd, c, ping.  */
      fd_server (sv[1], go[0], ack[1], 6, 3);
    }
  close (sv[1]);
  close (go[0]);
  close (ack[1]);
  small_sndbuf (sv[0]);
  cr_assert_eq (avm_qmp_connect_fd (sv[0], "fake.sock", 2000, &q, &err), 0, "%s", err ? err->msg : "");

  /* The server does not read yet: "big" fills the socket, the rest waits
     in the output buffer.  */
  cr_assert_eq (avm_qmp_send_async (q, "big", big_args (), rec_reply, &replies[0], &err), 0);
  cr_assert_eq (avm_qmp_send_async (q, "a", NULL, rec_reply, &replies[1], &err), 0);
  cr_assert_eq (avm_qmp_send_async (q, "b", NULL, rec_reply, &replies[2], &err), 0);
  cr_assert_eq (pipe2 (p, O_CLOEXEC), 0);
  cr_assert_eq (avm_qmp_send_fd_async (q, "getfd", json_pack ("{s:s}", "fdname", "f"), p[1], rec_reply, &replies[3],
                                       &err),
                0, "%s", err ? err->msg : "");
  cr_assert (avm_qmp_io_events (q) & EPOLLOUT);
  /* The caller's descriptor stays the caller's.  */
  cr_assert_eq (fcntl (p[1], F_GETFD), FD_CLOEXEC);
  close (p[1]);

  /* A second descriptor while the first waits.  */
  cr_assert_eq (avm_qmp_send_fd_async (q, "getfd", json_pack ("{s:s}", "fdname", "g"), p[0], NULL, NULL, &err), -EBUSY);
  cr_assert_str_eq (err->msg, "QMP socket fake.sock: cannot send getfd with a descriptor while the descriptor of an "
                              "earlier request waits to be written");
  avm_error_freep (&err);
  cr_assert_eq (avm_qmp_execute_fd (q, "getfd", json_pack ("{s:s}", "fdname", "g"), p[0], 1000, &ret, &err), -EBUSY);
  cr_assert_null (ret);
  avm_error_freep (&err);
  /* Not a descriptor.  */
  cr_assert_eq (avm_qmp_send_fd_async (q, "getfd", json_pack ("{s:s}", "fdname", "g"), -1, NULL, NULL, &err), -EBADF);
  cr_assert_str_eq (err->msg, "QMP socket fake.sock: cannot pass descriptor -1 with getfd: not a descriptor");
  avm_error_freep (&err);
  cr_assert_eq (avm_qmp_execute_fd (q, "getfd", NULL, -1, 1000, &ret, &err), -EBADF);
  cr_assert_null (ret);
  avm_error_freep (&err);
  /* Refusals do not break the connection.  */
  cr_assert (avm_qmp_is_ready (q));

  /* The server takes part of "big"; more of it is written, and the next
     request moves the unwritten rest to the front of the output buffer,
     the descriptor's place with it.  */
  cr_assert_eq (write (go[1], "g", 1), 1);
  cr_assert_eq (read (ack[0], buf, 1), 1);
  cr_assert_eq (avm_qmp_process (q, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (avm_qmp_send_async (q, "c", NULL, rec_reply, &replies[4], &err), 0);
  cr_assert (avm_qmp_io_events (q) & EPOLLOUT);

  cr_assert_eq (write (go[1], "g", 1), 1);
  close (go[1]);
  close (ack[0]);
  cr_assert_eq (avm_qmp_execute (q, "ping", NULL, 5000, NULL, &err), 0, "%s", err ? err->msg : "");
  for (int i = 0; i < 5; i++)
    {
      cr_assert_eq (replies[i].calls, 1, "request %d", i);
      cr_assert (json_is_object (replies[i].ret), "request %d", i);
      reply_clear (&replies[i]);
    }
  cr_assert_eq (fake_finish (), 0);
  /* What the server wrote into the descriptor comes out of the pipe; then
     EOF: the client closed its duplicate once it was sent.  */
  cr_assert_eq (read_within (p[0], buf, sizeof buf, 2000), 5);
  cr_assert_eq (memcmp (buf, "hello", 5), 0);
  cr_assert_eq (read_within (p[0], buf, sizeof buf, 2000), 0);
  close (p[0]);
  avm_qmp_close (q);
  cr_assert_eq (count_fds (), fds_before);
}

Test (qmp, fake_getfd_descriptor_closed_unsent, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = { HANDSHAKE, HOLD };
  int fds_before = count_fds ();
  struct avm_qmp *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  struct reply r = { 0 };
  int fd = start_fake (script), p[2];
  char c;

  small_sndbuf (fd);
  cr_assert_eq (avm_qmp_connect_fd (fd, "fake.sock", 2000, &q, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (avm_qmp_send_async (q, "big", big_args (), NULL, NULL, &err), 0);
  /* A number that is not an open descriptor.  */
  cr_assert_eq (avm_qmp_send_fd_async (q, "getfd", json_pack ("{s:s}", "fdname", "f"), 1000000, NULL, NULL, &err),
                -EBADF);
  cr_assert_str_eq (err->msg, "QMP getfd: cannot duplicate descriptor 1000000: Bad file descriptor");
  avm_error_freep (&err);
  cr_assert_eq (pipe2 (p, O_CLOEXEC), 0);
  cr_assert_eq (avm_qmp_send_fd_async (q, "getfd", json_pack ("{s:s}", "fdname", "f"), p[1], rec_reply, &r, &err), 0);
  close (p[1]);
  /* The duplicate waits with its request: the pipe has a writer.  */
  cr_assert_eq (read_within (p[0], &c, 1, 100), -1);
  avm_qmp_close (q);
  cr_assert_eq (r.calls, 1);
  cr_assert_null (r.ret);
  /* Closing the client closed it.  */
  cr_assert_eq (read_within (p[0], &c, 1, 2000), 0);
  close (p[0]);
  cr_assert_eq (count_fds (), fds_before);
}

Test (qmp, getfd_needs_unix_socket)
{
  _cleanup_qmp_ struct avm_qmp *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  cr_assert_geq (fd, 0);
  cr_assert_eq (avm_qmp_new (fd, "tcp", &q, &err), 0);
  cr_assert_eq (avm_qmp_send_fd_async (q, "getfd", json_pack ("{s:s}", "fdname", "f"), 0, NULL, NULL, &err),
                -EAFNOSUPPORT);
  cr_assert_str_eq (err->msg, "QMP socket tcp: cannot pass a descriptor with getfd: not a unix socket");
}

Test (qmp, fake_getfd_descriptor_closed_with_connection, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = { HANDSHAKE, SLEEP (200), END };
  int fds_before = count_fds ();
  _cleanup_qmp_ struct avm_qmp *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  struct reply r = { 0 };
  int fd = start_fake (script), p[2];
  char c;

  small_sndbuf (fd);
  cr_assert_eq (avm_qmp_connect_fd (fd, "fake.sock", 2000, &q, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (avm_qmp_send_async (q, "big", big_args (), NULL, NULL, &err), 0);
  cr_assert_eq (pipe2 (p, O_CLOEXEC), 0);
  cr_assert_eq (avm_qmp_send_fd_async (q, "getfd", json_pack ("{s:s}", "fdname", "f"), p[1], rec_reply, &r, &err), 0);
  close (p[1]);
  /* The server closes without reading: the request fails, its duplicate
     is closed before the client is.  */
  cr_assert_eq (avm_qmp_wait_event (q, NULL, 5000, NULL, &err), -ECONNRESET);
  avm_error_freep (&err);
  cr_assert_eq (r.calls, 1);
  cr_assert_null (r.ret);
  cr_assert_eq (read_within (p[0], &c, 1, 2000), 0);
  close (p[0]);
  /* getfd on the closed connection: refused, nothing kept.  */
  cr_assert_eq (pipe2 (p, O_CLOEXEC), 0);
  cr_assert_eq (avm_qmp_execute_fd (q, "getfd", json_pack ("{s:s}", "fdname", "f"), p[1], 1000, NULL, &err),
                -ECONNRESET);
  cr_assert_str_eq (err->msg, "QMP socket fake.sock: QEMU closed the monitor");
  close (p[1]);
  cr_assert_eq (read_within (p[0], &c, 1, 2000), 0);
  close (p[0]);
  cr_assert_eq (fake_finish (), 0);
  avm_qmp_closep (&q);
  cr_assert_eq (count_fds (), fds_before);
}

/* ------------------------------------------------------------------ */
/* Connecting to a path.  */

Test (qmp, connect_timeout_nobody_listens, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  _cleanup_free_ char *path = avm_path_join (tmp, "absent.sock");
  _cleanup_free_ char *want = NULL, *want2 = NULL;
  struct avm_qmp *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  long long t0 = avm_now_ms ();

  cr_assert_eq (avm_qmp_connect (path, 300, &q, &err), -ETIMEDOUT);
  long long took = avm_now_ms () - t0;
  cr_assert_null (q);
  cr_assert_geq (took, 290);
  cr_assert_lt (took, 1500);
  cr_assert_geq (asprintf (&want, "cannot connect to QMP socket %s within 300 ms: No such file or directory", path), 0);
  cr_assert_str_eq (err->msg, want);
  avm_error_freep (&err);

  /* A stale socket file (bound, not listening): refused until the timeout.  */
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", path);
  _cleanup_close_ int s = socket (AF_UNIX, SOCK_STREAM, 0);
  cr_assert_eq (bind (s, (struct sockaddr *) &sa, sizeof sa), 0);
  cr_assert_eq (avm_qmp_connect (path, 200, &q, &err), -ETIMEDOUT);
  tu_assert_err_has (err, path);
  tu_assert_err_has (err, "Connection refused");
  avm_error_freep (&err);

  /* Not a socket: no retry.  */
  _cleanup_free_ char *file = tu_write (tmp, "plain", "x");
  t0 = avm_now_ms ();
  cr_assert_eq (avm_qmp_connect (file, 5000, &q, &err), -ENOTSOCK);
  cr_assert_lt (avm_now_ms () - t0, 1000);
  cr_assert_geq (asprintf (&want2, "QMP socket %s is not a socket", file), 0);
  cr_assert_str_eq (err->msg, want2);
  avm_error_freep (&err);

  /* Path too long for sun_path.  */
  char longpath[200];
  memset (longpath, 'a', sizeof longpath - 1);
  longpath[0] = '/';
  longpath[sizeof longpath - 1] = '\0';
  cr_assert_eq (avm_qmp_connect (longpath, 100, &q, &err), -ENAMETOOLONG);
  tu_assert_err_has (err, "is too long");
}

Test (qmp, connect_retries_until_listening, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (20))
{
  static const struct step script[] = {
    HANDSHAKE,
    R ("query-status"),
    W ("{\"return\": {\"status\": \"prelaunch\"}, \"id\": @ID1@}\r\n"),
    END,
  };
  _cleanup_free_ char *path = avm_path_join (tmp, "late.sock");
  _cleanup_qmp_ struct avm_qmp *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_json_ json_t *ret = NULL;

  start_fake_listener (path, 300, script);
  cr_assert_eq (avm_qmp_connect (path, 5000, &q, &err), 0, "%s", err ? err->msg : "");
  cr_assert_str_eq (avm_qmp_name (q), path);
  cr_assert_eq (avm_qmp_execute (q, "query-status", NULL, 2000, &ret, &err), 0);
  cr_assert_str_eq (json_string_value (json_object_get (ret, "status")), "prelaunch");
  cr_assert_eq (fake_finish (), 0);
}

/* ------------------------------------------------------------------ */
/* The real QEMU.  */

/* Start QEMU with a QMP socket TMP/SOCKNAME (returned, malloc'd) into
 *PID; INCOMING (unless NULL) is the -incoming argument.  */
static char *
start_qemu_at (const char *sockname, const char *machine, bool paused, const char *incoming, pid_t *pid)
{
  char *sock = avm_path_join (tmp, sockname);
  _cleanup_free_ char *qmp = NULL;

  if (access (QEMU_X86, X_OK) != 0)
    cr_skip_test ("%s not installed", QEMU_X86);
  cr_assert_geq (asprintf (&qmp, "unix:%s,server=on,wait=off", sock), 0);
  char *argv[18];
  int n = 0;
  argv[n++] = QEMU_X86;
  argv[n++] = "-machine";
  argv[n++] = (char *) machine;
  argv[n++] = "-accel";
  argv[n++] = "tcg";
  if (!streq (machine, "none"))
    {
      argv[n++] = "-m";
      argv[n++] = "64";
    }
  argv[n++] = "-nodefaults";
  argv[n++] = "-nographic";
  if (paused)
    argv[n++] = "-S";
  if (incoming)
    {
      argv[n++] = "-incoming";
      argv[n++] = (char *) incoming;
    }
  argv[n++] = "-qmp";
  argv[n++] = qmp;
  argv[n] = NULL;
  *pid = fork ();
  cr_assert_geq (*pid, 0);
  if (*pid == 0)
    {
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      int null = open ("/dev/null", O_RDWR);
      dup2 (null, 0);
      dup2 (null, 1);
      execv (argv[0], argv);
      _exit (127);
    }
  return sock;
}

static char *
start_qemu (const char *machine, bool paused)
{
  return start_qemu_at ("qmp.sock", machine, paused, NULL, &qemu_pid);
}

static char *
qemu_version_line (void)
{
  char *argv[] = { QEMU_X86, "-version", NULL };
  char *out = NULL, *errout = NULL;
  cr_assert_eq (tu_run (argv, NULL, &out, &errout), 0);
  free (errout);
  return out;
}

static const char *
status_of (struct avm_qmp *q)
{
  static char buf[64];
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_json_ json_t *ret = NULL;

  cr_assert_eq (avm_qmp_execute (q, "query-status", NULL, 5000, &ret, &err), 0, "%s", err ? err->msg : "");
  cr_assert (json_is_boolean (json_object_get (ret, "running")));
  snprintf (buf, sizeof buf, "%s", json_string_value (json_object_get (ret, "status")) ?: "?");
  return buf;
}

Test (qmp, qemu_machine_none, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (60))
{
  _cleanup_free_ char *sock = start_qemu ("none", true);
  _cleanup_free_ char *vline = qemu_version_line ();
  _cleanup_free_ char *want = NULL;
  _cleanup_qmp_ struct avm_qmp *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_json_ json_t *ret = NULL;
  struct rec rec = { 0 };
  int major = -1, minor = -1;

  cr_assert_eq (avm_qmp_connect (sock, 10000, &q, &err), 0, "%s", err ? err->msg : "");
  /* The greeting's version is the binary's (7.2.x on Debian 12).  */
  cr_assert_geq (asprintf (&want, "QEMU emulator version %s", avm_qmp_qemu_version (q)), 0);
  cr_assert (strstr (vline, want), "greeting says %s, -version says %s", avm_qmp_qemu_version (q), vline);
  avm_qmp_qemu_version_numbers (q, &major, &minor, NULL);
  cr_assert_geq (major, 7);
  if (avm_qmp_qemu_package (q))
    cr_assert (strstr (vline, avm_qmp_qemu_package (q)));

  cr_assert_str_eq (status_of (q), "prelaunch");

  avm_qmp_set_event_handler (q, rec_event, &rec);
  cr_assert_eq (avm_qmp_execute (q, "cont", NULL, 5000, NULL, &err), 0, "%s", err ? err->msg : "");
  /* RESUME comes before cont's reply on 7.2; allow it to trail anyway.  */
  for (long long end = avm_now_ms () + 3000; rec_find (&rec, "RESUME") < 0 && avm_now_ms () < end;)
    {
      struct pollfd pfd = { .fd = avm_qmp_fd (q), .events = avm_qmp_io_events (q) };
      poll (&pfd, 1, 50);
      cr_assert_eq (avm_qmp_process (q, &err), 0);
    }
  cr_assert_geq (rec_find (&rec, "RESUME"), 0);
  cr_assert_str_eq (status_of (q), "running");

  cr_assert_eq (avm_qmp_execute (q, "no-such-command", NULL, 5000, &ret, &err), -EOPNOTSUPP);
  cr_assert_str_eq (err->msg, "QMP no-such-command: CommandNotFound: The command no-such-command has not been found");
  avm_error_freep (&err);
  cr_assert_eq (avm_qmp_execute (q, "query-status", json_pack ("{s:i}", "bogus", 1), 5000, &ret, &err), -EREMOTEIO);
  tu_assert_err_has (err, "QMP query-status: GenericError: ");
  avm_error_freep (&err);

  cr_assert_eq (avm_qmp_execute (q, "query-version", NULL, 5000, &ret, &err), 0);
  cr_assert_eq (json_integer_value (json_object_get (json_object_get (ret, "qemu"), "major")), major);
  cr_assert_eq (json_integer_value (json_object_get (json_object_get (ret, "qemu"), "minor")), minor);
  json_decref (steal_pointer (&ret));

  /* The largest reply QEMU gives (about 200 KiB on 7.2) fits.  */
  cr_assert_eq (avm_qmp_execute (q, "query-qmp-schema", NULL, 10000, &ret, &err), 0, "%s", err ? err->msg : "");
  cr_assert_gt (json_array_size (ret), 100);

  cr_assert_eq (avm_qmp_quit (q, 10000, &err), 0, "%s", err ? err->msg : "");
  int i = rec_find (&rec, "SHUTDOWN");
  cr_assert_geq (i, 0);
  cr_assert_str_eq (json_string_value (json_object_get (rec.data[i], "reason")), "host-qmp-quit");
  cr_assert (json_is_false (json_object_get (rec.data[i], "guest")));
  int st = wait_exit (qemu_pid, 10000);
  cr_assert_neq (st, -1, "QEMU still running after quit");
  qemu_pid = -1;
  cr_assert (WIFEXITED (st) && WEXITSTATUS (st) == 0, "QEMU wait status %d", st);
  rec_clear (&rec);
}

Test (qmp, qemu_powerdown, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (60))
{
  _cleanup_free_ char *sock = start_qemu ("pc", false);
  _cleanup_qmp_ struct avm_qmp *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_json_ json_t *ev = NULL;

  cr_assert_eq (avm_qmp_connect (sock, 10000, &q, &err), 0, "%s", err ? err->msg : "");
  cr_assert_str_eq (status_of (q), "running");
  /* No guest OS: the ACPI button press is just the event.  */
  cr_assert_eq (avm_qmp_execute (q, "system_powerdown", NULL, 5000, NULL, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (avm_qmp_wait_event (q, "POWERDOWN", 5000, &ev, &err), 0, "%s", err ? err->msg : "");
  cr_assert (json_is_object (json_object_get (ev, "timestamp")));
  cr_assert_str_eq (status_of (q), "running");
  /* Nothing shuts the guest down.  */
  cr_assert_eq (avm_qmp_wait_event (q, "SHUTDOWN", 300, NULL, &err), -ETIMEDOUT);
  avm_error_freep (&err);
  cr_assert_eq (avm_qmp_quit (q, 10000, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (avm_qmp_wait_event (q, "SHUTDOWN", 0, NULL, &err), 0);
  cr_assert_neq (wait_exit (qemu_pid, 10000), -1);
  qemu_pid = -1;
}

Test (qmp, qemu_second_client, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (60))
{
  _cleanup_free_ char *sock = start_qemu ("none", true);
  _cleanup_qmp_ struct avm_qmp *q = NULL, *q2 = NULL;
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_qmp_connect (sock, 10000, &q, &err), 0, "%s", err ? err->msg : "");
  /* QEMU serves one monitor client at a time; the kernel still accepts.  */
  cr_assert_eq (avm_qmp_connect (sock, 500, &q2, &err), -ETIMEDOUT);
  tu_assert_err_has (err, sock);
  tu_assert_err_has (err, "no greeting from QEMU within 500 ms (is another client connected?)");
  avm_error_freep (&err);
  avm_qmp_closep (&q);
  /* Once the first is gone, a new client gets in.  */
  cr_assert_eq (avm_qmp_connect (sock, 10000, &q2, &err), 0, "%s", err ? err->msg : "");
  cr_assert_str_eq (status_of (q2), "prelaunch");
  cr_assert_eq (avm_qmp_quit (q2, 10000, &err), 0);
  cr_assert_neq (wait_exit (qemu_pid, 10000), -1);
  qemu_pid = -1;
}

/* Migration into a file and back, the descriptors passed with getfd: the
   way avm saves and restores a VM without an exec: shell.  */
static void
wait_migration (struct avm_qmp *q, const char *want)
{
  _cleanup_error_ avm_error_t err = NULL;
  const char *status = "?";

  for (long long end = avm_now_ms () + 5000 * AVM_TEST_TIME_SCALE; avm_now_ms () < end; tu_sleep_ms (10))
    {
      _cleanup_json_ json_t *ret = NULL;
      cr_assert_eq (avm_qmp_execute (q, "query-migrate", NULL, 5000, &ret, &err), 0, "%s", err ? err->msg : "");
      status = json_string_value (json_object_get (ret, "status"));
      cr_assert_not_null (status, "query-migrate without a status");
      cr_assert_str_neq (status, "failed");
      if (streq (status, want))
        return;
    }
  cr_assert_fail ("migration still %s after 5 s", status);
}

Test (qmp, qemu_migrate_through_passed_fd, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (60))
{
  /* The source runs (a paused one, in prelaunch, would be restored in
     prelaunch too: the destination takes over the source's run state).  */
  _cleanup_free_ char *sock = start_qemu ("pc", false);
  _cleanup_free_ char *state = avm_path_join (tmp, "state");
  _cleanup_free_ char *sock2 = NULL;
  _cleanup_qmp_ struct avm_qmp *q = NULL, *q2 = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_json_ json_t *ret = NULL;
  struct stat st;
  char magic[8];
  int fd;

  cr_assert_eq (avm_qmp_connect (sock, 10000, &q, &err), 0, "%s", err ? err->msg : "");
  cr_assert_str_eq (status_of (q), "running");
  /* getfd without a descriptor: QEMU's own refusal.  */
  cr_assert_eq (avm_qmp_execute (q, "getfd", json_pack ("{s:s}", "fdname", "f"), 5000, NULL, &err), -EREMOTEIO);
  tu_assert_err_has (err, "QMP getfd: GenericError: ");
  avm_error_freep (&err);
  /* The default limit (32 MiB/s) would be the slowest part.  */
  cr_assert_eq (avm_qmp_execute (q, "migrate-set-parameters",
                                 json_pack ("{s:I}", "max-bandwidth", (json_int_t) 1 << 40), 5000, NULL, &err),
                0, "%s", err ? err->msg : "");

  fd = open (state, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  cr_assert_geq (fd, 0);
  cr_assert_eq (avm_qmp_execute_fd (q, "getfd", json_pack ("{s:s}", "fdname", "f"), fd, 5000, &ret, &err), 0, "%s",
                err ? err->msg : "");
  close (fd);
  cr_assert (json_is_object (ret) && json_object_size (ret) == 0);
  cr_assert_eq (avm_qmp_execute (q, "migrate", json_pack ("{s:s}", "uri", "fd:f"), 5000, NULL, &err), 0, "%s",
                err ? err->msg : "");
  wait_migration (q, "completed");
  cr_assert_str_eq (status_of (q), "postmigrate");
  /* The descriptor was used up by migrate.  */
  cr_assert_eq (avm_qmp_execute (q, "closefd", json_pack ("{s:s}", "fdname", "f"), 5000, NULL, &err), -EREMOTEIO);
  avm_error_freep (&err);
  cr_assert_eq (avm_qmp_quit (q, 10000, &err), 0, "%s", err ? err->msg : "");
  cr_assert_neq (wait_exit (qemu_pid, 10000), -1);
  qemu_pid = -1;

  /* QEMU's migration stream: magic "QEVM", version 3.  */
  cr_assert_eq (stat (state, &st), 0);
  cr_assert_gt (st.st_size, 8);
  fd = open (state, O_RDONLY | O_CLOEXEC);
  cr_assert_geq (fd, 0);
  cr_assert_eq (read (fd, magic, sizeof magic), sizeof magic);
  cr_assert_eq (memcmp (magic, "QEVM\0\0\0\3", sizeof magic), 0);
  cr_assert_eq (lseek (fd, 0, SEEK_SET), 0);

  /* Restore into a second QEMU, paused.  */
  sock2 = start_qemu_at ("qmp2.sock", "pc", true, "defer", &qemu2_pid);
  cr_assert_eq (avm_qmp_connect (sock2, 10000, &q2, &err), 0, "%s", err ? err->msg : "");
  cr_assert_str_eq (status_of (q2), "inmigrate");
  cr_assert_eq (avm_qmp_execute_fd (q2, "getfd", json_pack ("{s:s}", "fdname", "f"), fd, 5000, NULL, &err), 0, "%s",
                err ? err->msg : "");
  close (fd);
  cr_assert_eq (avm_qmp_execute (q2, "migrate-incoming", json_pack ("{s:s}", "uri", "fd:f"), 5000, NULL, &err), 0, "%s",
                err ? err->msg : "");
  const char *status = "inmigrate";
  for (long long end = avm_now_ms () + 5000 * AVM_TEST_TIME_SCALE; streq (status, "inmigrate") && avm_now_ms () < end;)
    {
      tu_sleep_ms (10);
      status = status_of (q2);
    }
  cr_assert_str_eq (status, "paused");
  wait_migration (q2, "completed");
  cr_assert_eq (avm_qmp_execute (q2, "cont", NULL, 5000, NULL, &err), 0, "%s", err ? err->msg : "");
  cr_assert_str_eq (status_of (q2), "running");
  cr_assert_eq (avm_qmp_quit (q2, 10000, &err), 0, "%s", err ? err->msg : "");
  cr_assert_neq (wait_exit (qemu2_pid, 10000), -1);
  qemu2_pid = -1;

  /* getfd on the closed monitor fails cleanly, without keeping the
     descriptor.  */
  int fds_before = count_fds ();
  fd = open (state, O_RDONLY | O_CLOEXEC);
  cr_assert_geq (fd, 0);
  cr_assert_eq (avm_qmp_execute_fd (q2, "getfd", json_pack ("{s:s}", "fdname", "g"), fd, 5000, NULL, &err),
                -ECONNRESET);
  tu_assert_err_has (err, "QEMU closed the monitor");
  close (fd);
  cr_assert_eq (count_fds (), fds_before);
}

/* The supervisor's way: sd-event drives the client.  */
struct loop
{
  struct avm_qmp *q;
  struct rec rec;
  struct reply cont, status, quit;
  int result;
  bool timed_out;
};

static void
loop_quit_reply (void *data, json_t *ret, json_t *error)
{
  rec_reply (&((struct loop *) data)->quit, ret, error);
}

static void
loop_status_reply (void *data, json_t *ret, json_t *error)
{
  struct loop *l = data;
  rec_reply (&l->status, ret, error);
  if (ret)
    cr_assert_eq (avm_qmp_send_async (l->q, "quit", NULL, loop_quit_reply, l, NULL), 0);
}

static void
loop_cont_reply (void *data, json_t *ret, json_t *error)
{
  struct loop *l = data;
  rec_reply (&l->cont, ret, error);
  if (ret)
    cr_assert_eq (avm_qmp_send_async (l->q, "query-status", NULL, loop_status_reply, l, NULL), 0);
}

static int
loop_io (sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  struct loop *l = userdata;
  _cleanup_error_ avm_error_t err = NULL;

  l->result = avm_qmp_process (l->q, &err);
  if (l->result != 0)
    {
      sd_event_source_set_enabled (s, SD_EVENT_OFF);
      return sd_event_exit (sd_event_source_get_event (s), 0);
    }
  return sd_event_source_set_io_events (s, avm_qmp_io_events (l->q));
}

static int
loop_timeout (sd_event_source *s, uint64_t usec, void *userdata)
{
  ((struct loop *) userdata)->timed_out = true;
  return sd_event_exit (sd_event_source_get_event (s), 0);
}

Test (qmp, qemu_sd_event, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (60))
{
  _cleanup_free_ char *sock = start_qemu ("none", true);
  _cleanup_qmp_ struct avm_qmp *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  sd_event *ev = NULL;
  sd_event_source *io = NULL, *timer = NULL;
  struct loop l = { .result = -1 };
  uint64_t now;

  cr_assert_eq (avm_qmp_connect (sock, 10000, &q, &err), 0, "%s", err ? err->msg : "");
  l.q = q;
  avm_qmp_set_event_handler (q, rec_event, &l.rec);
  cr_assert_eq (avm_qmp_send_async (q, "cont", NULL, loop_cont_reply, &l, &err), 0);

  cr_assert_geq (sd_event_new (&ev), 0);
  cr_assert_geq (sd_event_add_io (ev, &io, avm_qmp_fd (q), avm_qmp_io_events (q), loop_io, &l), 0);
  cr_assert_geq (sd_event_now (ev, CLOCK_MONOTONIC, &now), 0);
  cr_assert_geq (sd_event_add_time (ev, &timer, CLOCK_MONOTONIC, now + 20 * 1000000ULL, 0, loop_timeout, &l), 0);
  cr_assert_geq (sd_event_loop (ev), 0);
  sd_event_source_unref (io);
  sd_event_source_unref (timer);
  sd_event_unref (ev);

  cr_assert_not (l.timed_out);
  cr_assert_eq (l.result, 1, "process returned %d", l.result);
  cr_assert_eq (l.cont.calls, 1);
  cr_assert_not_null (l.cont.ret);
  cr_assert_str_eq (json_string_value (json_object_get (l.status.ret, "status")), "running");
  cr_assert_eq (l.quit.calls, 1);
  cr_assert_geq (rec_find (&l.rec, "RESUME"), 0);
  cr_assert_geq (rec_find (&l.rec, "SHUTDOWN"), 0);
  cr_assert_gt (rec_find (&l.rec, "SHUTDOWN"), rec_find (&l.rec, "RESUME"));
  cr_assert_neq (wait_exit (qemu_pid, 10000), -1);
  qemu_pid = -1;
  reply_clear (&l.cont);
  reply_clear (&l.status);
  reply_clear (&l.quit);
  rec_clear (&l.rec);
}
