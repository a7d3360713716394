/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest agent's clock exchange (qemu/qga.h): against a scripted agent
 * on a socketpair (what goes out byte for byte, stale data before the
 * sentinel, an earlier client's sync answer, error replies, a closed
 * socket, an endless line), and against Debian's real qemu-ga listening on
 * a unix socket here, with guest-set-time blocked (-b): on this host it
 * would set the host's clock.  The whole path, qemu-ga in the demo guest
 * setting its clock after a restore, is tests/unit/test_snapshot.c's.
 */
#include "qemu/qga.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QGA "/usr/sbin/qemu-ga"
#define SYNC_ID 424242

static int64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* What the client wrote so far to the agent's end AGENT (non-blocking).  */
static char *
agent_read (int agent)
{
  static char buf[65536];
  size_t n = 0;
  ssize_t r;
  while (n < sizeof buf - 1 && (r = recv (agent, buf + n, sizeof buf - 1 - n, MSG_DONTWAIT)) > 0)
    n += (size_t) r;
  buf[n] = '\0';
  return buf;
}

static void
agent_say (int agent, const char *text)
{
  size_t n = strlen (text);
  cr_assert_eq (send (agent, text, n, MSG_NOSIGNAL), (ssize_t) n);
}

/* A client on one end of a socketpair; *AGENT gets the other.  */
static struct avm_qga *
client (int *agent)
{
  int sv[2];
  cr_assert_eq (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  struct avm_qga *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  cr_assert_eq (avm_qga_clock_new (sv[0], "test-agent", SYNC_ID, &q, &err), 0, "%s", err ? err->msg : "");
  *agent = sv[1];
  return q;
}

static int
step (struct avm_qga *q, avm_error_t *err)
{
  return avm_qga_process (q, err);
}

Test (qga, clock_exchange)
{
  int agent;
  _cleanup_qga_ struct avm_qga *q = client (&agent);
  _cleanup_error_ avm_error_t err = NULL;
  cr_assert_str_eq (avm_qga_step (q), "sync");
  cr_assert_eq (step (q, &err), 0);
  /* 0xFF first (the agent drops a partial request), then the sync.  */
  char *req = agent_read (agent);
  cr_assert_eq ((unsigned char) req[0], 0xff, "%s", req);
  _cleanup_json_ json_t *sync = json_loads (req + 1, JSON_DISABLE_EOF_CHECK, NULL);
  cr_assert_not_null (sync, "%s", req + 1);
  cr_assert_str_eq (json_string_value (json_object_get (sync, "execute")), "guest-sync-delimited");
  cr_assert_eq (json_integer_value (json_object_get (json_object_get (sync, "arguments"), "id")), SYNC_ID);
  cr_assert (req[strlen (req) - 1] == '\n');

  /* Stale bytes of an earlier client, then an earlier client's sync
     answer: both ignored; then ours.  */
  agent_say (agent, "{\"return\": {}}\n{\"return\": 7");
  agent_say (agent, "\xff{\"return\": 17}\n");
  cr_assert_eq (step (q, &err), 0);
  cr_assert_str_eq (avm_qga_step (q), "sync");
  cr_assert_str_eq (agent_read (agent), "");
  agent_say (agent, "\xff{\"return\": 424242}\r\n");
  cr_assert_eq (step (q, &err), 0, "%s", err ? err->msg : "");
  cr_assert_str_eq (avm_qga_step (q), "get-time");
  cr_assert_str_eq (agent_read (agent), "{\"execute\":\"guest-get-time\"}\n");
  bool known = true;
  avm_qga_behind_ns (q, &known);
  cr_assert (!known);

  /* The guest's clock 90 s behind: the set-time carries the host's now.  */
  int64_t t0 = now_ns ();
  char *reply = NULL;
  cr_assert (asprintf (&reply, "{\"return\": %lld}\n", (long long) (t0 - 90000000000LL)) > 0);
  agent_say (agent, reply);
  free (reply);
  cr_assert_eq (step (q, &err), 0);
  cr_assert_str_eq (avm_qga_step (q), "set-time");
  int64_t behind = avm_qga_behind_ns (q, &known);
  cr_assert (known);
  cr_assert (behind >= 90000000000LL && behind < 92000000000LL, "behind %lld ns", (long long) behind);
  _cleanup_json_ json_t *set = json_loads (agent_read (agent), 0, NULL);
  cr_assert_not_null (set);
  cr_assert_str_eq (json_string_value (json_object_get (set, "execute")), "guest-set-time");
  json_int_t t = json_integer_value (json_object_get (json_object_get (set, "arguments"), "time"));
  cr_assert (t >= t0 && t <= now_ns (), "time %lld, now %lld", (long long) t, (long long) now_ns ());
  cr_assert (avm_qga_io_events (q) != 0);
  agent_say (agent, "{\"return\": {}}\n");
  cr_assert_eq (step (q, &err), 1);
  cr_assert_str_eq (avm_qga_step (q), "done");
  cr_assert_eq (avm_qga_io_events (q), 0);
  close (agent);
}

Test (qga, error_reply)
{
  int agent;
  _cleanup_qga_ struct avm_qga *q = client (&agent);
  _cleanup_error_ avm_error_t err = NULL;
  step (q, &err);
  agent_read (agent);
  agent_say (agent, "\xff{\"return\": 424242}\n");
  step (q, &err);
  agent_say (agent, "{\"return\": 1}\n");
  cr_assert_eq (step (q, &err), 0);
  agent_say (agent, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"hwclock failed to set hardware clock to "
                    "system time\"}}\n");
  cr_assert_eq (step (q, &err), -EREMOTEIO);
  tu_assert_err_has (err, "guest agent test-agent: guest-set-time: GenericError: hwclock failed");
  cr_assert_str_eq (avm_qga_step (q), "failed");
  cr_assert_eq (avm_qga_io_events (q), 0);
  close (agent);
}

Test (qga, closed_and_garbage)
{
  int agent;
  _cleanup_error_ avm_error_t err = NULL;
  struct avm_qga *q = client (&agent);
  close (agent);
  cr_assert_eq (step (q, &err), -ECONNRESET);
  tu_assert_err_has (err, "guest agent test-agent");
  avm_qga_close (q);
  avm_error_freep (&err);

  /* Not JSON after the sentinel.  */
  q = client (&agent);
  step (q, &err);
  agent_say (agent, "\xffnot json\n");
  cr_assert_eq (step (q, &err), -EPROTO);
  tu_assert_err_has (err, "not a JSON object");
  avm_qga_close (q);
  close (agent);
  avm_error_freep (&err);

  /* A line without end.  */
  q = client (&agent);
  step (q, &err);
  agent_say (agent, "\xff");
  static char big[70000];
  memset (big, 'x', sizeof big - 1);
  agent_say (agent, big);
  cr_assert_eq (step (q, &err), -EPROTO);
  tu_assert_err_has (err, "longer than 64 KiB");
  avm_qga_close (q);
  close (agent);
}

/* Debian's qemu-ga on a unix socket, guest-set-time blocked: the sync and
   guest-get-time pass (the same clock: nothing behind), and the refusal
   comes back as the agent words it.  */
Test (qga, real_agent, .timeout = 60)
{
  if (access (QGA, X_OK) != 0)
    cr_skip_test ("no %s (Debian package qemu-guest-agent)", QGA);
  char *dir = tu_tmpdir ();
  char *sock = NULL, *pidf = NULL;
  cr_assert (asprintf (&sock, "%s/qga.sock", dir) > 0 && asprintf (&pidf, "%s/qga.pid", dir) > 0);
  pid_t pid = fork ();
  cr_assert_geq (pid, 0);
  if (pid == 0)
    {
      execl (QGA, "qemu-ga", "-m", "unix-listen", "-p", sock, "-t", dir, "-f", pidf, "-b", "guest-set-time",
             (char *) NULL);
      _exit (127);
    }
  struct avm_qga *q = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  for (int i = 0; i < 200 && avm_qga_clock_connect (sock, 99, &q, &err) < 0; i++)
    {
      avm_error_freep (&err);
      tu_sleep_ms (25);
    }
  cr_assert_not_null (q, "cannot connect to qemu-ga at %s: %s", sock, err ? err->msg : "");
  int r = 0;
  for (int i = 0; i < 500 && r == 0; i++)
    {
      struct pollfd p = { .fd = avm_qga_fd (q), .events = (short) avm_qga_io_events (q) };
      poll (&p, 1, 20);
      r = avm_qga_process (q, &err);
    }
  kill (pid, SIGTERM);
  waitpid (pid, NULL, 0);
  cr_assert_eq (r, -EREMOTEIO, "%d: %s", r, err ? err->msg : "");
  tu_assert_err_has (err, "guest-set-time: CommandNotFound: Command guest-set-time has been disabled");
  bool known = false;
  int64_t behind = avm_qga_behind_ns (q, &known);
  cr_assert (known);
  cr_assert (behind > -1000000000LL && behind < 1000000000LL, "behind %lld ns on one clock", (long long) behind);
  avm_qga_close (q);
  tu_rmtree (dir);
  free (sock);
  free (pidf);
  free (dir);
}
