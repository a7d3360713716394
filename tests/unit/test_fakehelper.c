/* SPDX-License-Identifier: Apache-2.0 */
/* The supervisor tests' fault-injection service, avm-fakehelper: output, exit
   statuses, deaths by signal, sd_notify datagrams, "fail the first N starts",
   bad actions.  */
#include "testutil.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define assert_contains(hay, needle) cr_assert (strstr ((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))

static char *
fake (void)
{
  char *p = getenv ("AVM_FAKEHELPER");
  if (!p || !*p)
    cr_skip_test ("AVM_FAKEHELPER is not set (run through make check)");
  return p;
}

/* Run the helper with ACTIONS (NULL-terminated, at most 15).  */
static int
run (char *const env[], char **out, char **err, char *const actions[])
{
  char *argv[16] = { fake () };
  for (size_t i = 0; actions[i] && i < 14; i++)
    argv[i + 1] = actions[i];
  return tu_run (argv, env, out, err);
}

#define RUN(env, out, err, ...) run ((env), (out), (err), (char *[]) { __VA_ARGS__, NULL })

/* A variable for env=NAME; tu_run passes the worker's environment on.  */
static void
set_x (void)
{
  setenv ("AVM_FH_X", "one", 1);
}

TestSuite (fakehelper, .init = set_x);

Test (fakehelper, output_and_exit_status)
{
  char *out, *err;
  cr_assert_eq (RUN (NULL, &out, &err, "print=hello", "stderr=oops", "env=AVM_FH_X", "exit=7", "print=never"), 7);
  cr_assert_str_eq (out, "hello\nAVM_FH_X=one\n");
  cr_assert_str_eq (err, "oops\n");
  free (out);
  free (err);
  char *unset[] = { "AVM_FH_X", NULL };
  cr_assert_eq (RUN (unset, &out, NULL, "env=AVM_FH_X"), 0);
  cr_assert_str_eq (out, "AVM_FH_X unset\n");
  free (out);
  cr_assert_eq (RUN (NULL, &out, NULL, "flood=1000"), 0);
  cr_assert_eq (strlen (out), 1000);
  cr_assert_eq (strncmp (out, "flood 000000001 xxx", 19), 0, "%s", out);
  cr_assert_eq (out[63], '\n');
  cr_assert_eq (strncmp (out + 64, "flood 000000002 ", 16), 0, "%s", out);
  free (out);
}

Test (fakehelper, deaths_by_signal)
{
  char *out;
  cr_assert_eq (RUN (NULL, &out, NULL, "print=before", "crash", "print=after"), 128 + SIGSEGV);
  cr_assert_str_eq (out, "before\n");
  free (out);
  cr_assert_eq (RUN (NULL, NULL, NULL, "kill=15"), 128 + SIGTERM);
  /* ignore-term: SIGTERM no longer kills it.  */
  cr_assert_eq (RUN (NULL, &out, NULL, "ignore-term", "kill=15", "print=alive", "exit=4"), 4);
  cr_assert_str_eq (out, "alive\n");
  free (out);
}

Test (fakehelper, notify_sends_one_datagram)
{
  char *dir = tu_tmpdir (), *path = NULL, *env = NULL;
  cr_assert (asprintf (&path, "%s/notify", dir) > 0 && asprintf (&env, "NOTIFY_SOCKET=%s", path) > 0);
  int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  cr_assert_lt (strlen (path), sizeof sa.sun_path);
  strcpy (sa.sun_path, path);
  cr_assert_eq (bind (fd, (struct sockaddr *) &sa, sizeof sa), 0);

  char *envs[] = { env, NULL };
  cr_assert_eq (RUN (envs, NULL, NULL, "notify=READY=1\\nSTATUS=up", "notify=STOPPING=1"), 0);
  char buf[256];
  ssize_t n = recv (fd, buf, sizeof buf - 1, MSG_DONTWAIT);
  cr_assert_gt (n, 0);
  buf[n] = '\0';
  cr_assert_str_eq (buf, "READY=1\nSTATUS=up");
  n = recv (fd, buf, sizeof buf - 1, MSG_DONTWAIT);
  cr_assert_gt (n, 0);
  buf[n] = '\0';
  cr_assert_str_eq (buf, "STOPPING=1");
  cr_assert_lt (recv (fd, buf, sizeof buf, MSG_DONTWAIT), 0);

  /* Without NOTIFY_SOCKET: an error.  */
  char *err;
  char *unset[] = { "NOTIFY_SOCKET", NULL };
  cr_assert_eq (RUN (unset, NULL, &err, "notify=READY=1"), 1);
  assert_contains (err, "NOTIFY_SOCKET");
  free (err);

  close (fd);
  tu_rmtree (dir);
  free (dir);
  free (path);
  free (env);
}

Test (fakehelper, fail_first_starts_then_stay_up)
{
  char *dir = tu_tmpdir (), *count = NULL, *fail = NULL;
  cr_assert (asprintf (&count, "count=%s/starts", dir) > 0 && asprintf (&fail, "fail-first=%s/starts:3", dir) > 0);
  int expect[] = { 3, 3, 0, 0 };
  for (int i = 0; i < 4; i++)
    {
      char *out;
      cr_assert_eq (RUN (NULL, &out, NULL, count, fail, "print=up"), expect[i], "start %d", i + 1);
      cr_assert_str_eq (out, expect[i] ? "" : "up\n");
      free (out);
    }
  char *starts = tu_read (count + strlen ("count="));
  cr_assert_not_null (starts);
  int lines = 0;
  for (char *p = starts; *p; p++)
    lines += *p == '\n';
  cr_assert_eq (lines, 4, "%s", starts);
  free (starts);
  tu_rmtree (dir);
  free (dir);
  free (count);
  free (fail);
}

Test (fakehelper, bad_actions_exit_2)
{
  char *out, *err;
  cr_assert_eq (RUN (NULL, &out, &err, "print=first", "bogus=1", "print=never"), 2);
  cr_assert_str_eq (out, "first\n");
  cr_assert_str_eq (err, "avm-fakehelper: unknown action 'bogus=1'\n");
  free (out);
  free (err);
  cr_assert_eq (RUN (NULL, NULL, &err, "exit=abc"), 2);
  assert_contains (err, "exit=abc");
  free (err);
  cr_assert_eq (RUN (NULL, NULL, NULL, "print"), 2);
  cr_assert_eq (RUN (NULL, NULL, NULL, "crash=now"), 2);
}
