/* SPDX-License-Identifier: Apache-2.0 */
/* Spawning services: argv with ${fd:NAME}, descriptor hygiene, process group,
   environment, parent-death signal, exec failures. */
#include "supervise/spawn.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define assert_contains(hay, needle) cr_assert (strstr ((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))

/* Arguments as a plan has them (split by avm_plan_arg_parse).  */
struct targs
{
  struct avm_plan_arg *v;
  size_t n;
};

static struct targs
targs (const char *const *v)
{
  struct targs t = { 0 };
  while (v[t.n])
    t.n++;
  t.v = calloc (t.n + 1, sizeof *t.v);
  cr_assert_not_null (t.v);
  for (size_t i = 0; i < t.n; i++)
    cr_assert_eq (avm_plan_arg_parse (v[i], &t.v[i]), 0);
  return t;
}
#define TARGS(...) targs ((const char *const[]) { __VA_ARGS__, NULL })

static void
targs_free (struct targs *t)
{
  for (size_t i = 0; i < t->n; i++)
    avm_plan_arg_clear (&t->v[i]);
  free (t->v);
  *t = (struct targs) { 0 };
}

struct fds
{
  const char *names[4];
  int fds[4];
};

static int
lookup (void *data, const char *name)
{
  struct fds *f = data;
  for (int i = 0; i < 4 && f->names[i]; i++)
    if (!strcmp (f->names[i], name))
      return f->fds[i];
  return -1;
}

/* Run REQ to completion with output into a pipe; returns the output.  */
static char *
run (struct avm_spawn_request *req, int *status)
{
  int p[2];
  cr_assert_eq (pipe2 (p, O_CLOEXEC), 0);
  req->out_fd = p[1];
  struct avm_child c;
  avm_error_t err = NULL;
  int r = avm_spawn (req, &c, &err);
  cr_assert_eq (r, 0, "%s", err ? err->msg : "");
  close (p[1]);
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream (&buf, &len);
  char chunk[4096];
  ssize_t n;
  while ((n = read (p[0], chunk, sizeof chunk)) > 0)
    fwrite (chunk, 1, n, m);
  fclose (m);
  close (p[0]);
  cr_assert_eq (waitpid (c.pid, status, 0), c.pid);
  return buf;
}

Test (spawn, descriptors_are_passed_in_order_and_nothing_else)
{
  char *dir = tu_tmpdir (), *a = NULL, *b = NULL;
  cr_assert (asprintf (&a, "%s/a", dir) > 0 && asprintf (&b, "%s/b", dir) > 0);
  int fa = open (a, O_CREAT | O_RDWR | O_CLOEXEC, 0600), fb = open (b, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  int leak = open ("/dev/null", O_RDONLY); /* not close-on-exec: must not reach the child */
  struct fds f = { { "b.thing", "a", NULL }, { fb, fa } };
  struct targs argv = TARGS ("ls", "-l", "--", "/proc/self/fd/", "fd=${fd:a},${fd:b.thing},${fd:a}");
  /* ls lists its own fd directory too; the last argument is a file name that
     does not exist, so ls reports it with the expanded numbers.  */
  struct avm_spawn_request req = {
    .program = "/bin/ls", .args = argv.v, .nargs = argv.n, .lookup = lookup, .lookup_data = &f, .what = "service test"
  };
  int status;
  char *out = run (&req, &status);
  assert_contains (out, "fd=3,4,3");
  assert_contains (out, "3 -> ");
  assert_contains (out, "/a\n");
  assert_contains (out, "4 -> ");
  assert_contains (out, "/b\n");
  /* 0, 1, 2, 3, 4 and the directory ls itself opened; nothing else.  */
  cr_assert_null (strstr (out, " 6 -> "), "a descriptor leaked:\n%s", out);
  cr_assert_null (strstr (out, "/dev/null\n 4"), "%s", out);
  free (out);
  targs_free (&argv);
  close (fa);
  close (fb);
  close (leak);
  tu_rmtree (dir);
  free (dir);
  free (a);
  free (b);
}

/* stdin_name: a resource as standard input (websockify --inetd gets its
   listening socket so); otherwise /dev/null; a missing one is refused.  */
Test (spawn, stdin_from_a_resource)
{
  int p[2];
  cr_assert_eq (pipe2 (p, O_CLOEXEC), 0);
  cr_assert_eq (write (p[1], "through stdin\n", 14), 14);
  close (p[1]);
  struct fds f = { { "in.read", NULL }, { p[0] } };
  struct targs argv = TARGS ("cat");
  struct avm_spawn_request req = { .program = "/bin/cat",
                                   .args = argv.v,
                                   .nargs = argv.n,
                                   .lookup = lookup,
                                   .lookup_data = &f,
                                   .stdin_name = "in.read",
                                   .what = "service cat" };
  int status;
  char *out = run (&req, &status);
  cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  cr_assert_str_eq (out, "through stdin\n");
  free (out);
  close (p[0]);
  /* Without: /dev/null, cat ends at once with nothing.  */
  req.stdin_name = NULL;
  out = run (&req, &status);
  cr_assert_str_eq (out, "");
  free (out);
  req.stdin_name = "missing";
  struct avm_child c;
  avm_error_t err = NULL;
  cr_assert_lt (avm_spawn (&req, &c, &err), 0);
  assert_contains (err->msg, "service cat: no resource \"missing\" for its standard input");
  avm_error_freep (&err);
  targs_free (&argv);
}

Test (spawn, environment_and_process_group)
{
  struct targs argv = TARGS ("env");
  struct avm_plan_pair env[] = { { (char *) "AVM_TEST_X", (char *) "one" }, { (char *) "HOME", (char *) "/images" } };
  struct avm_spawn_request req
      = { .program = "/usr/bin/env", .args = argv.v, .nargs = argv.n, .envv = env, .nenv = 2, .what = "service env" };
  int status;
  char *out = run (&req, &status);
  cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  assert_contains (out, "AVM_TEST_X=one\n");
  assert_contains (out, "HOME=/images\n");
  free (out);
  targs_free (&argv);

  /* Its own process group.  */
  argv = TARGS ("sleep", "5");
  struct avm_spawn_request s2
      = { .program = "/bin/sleep", .args = argv.v, .nargs = argv.n, .out_fd = -1, .what = "service sleep" };
  struct avm_child c;
  avm_error_t err = NULL;
  cr_assert_eq (avm_spawn (&s2, &c, &err), 0);
  cr_assert_eq (getpgid (c.pid), c.pid);
  kill (c.pid, SIGKILL);
  waitpid (c.pid, NULL, 0);
  targs_free (&argv);
}

Test (spawn, exec_failure_and_missing_resource_are_reported)
{
  struct targs argv = TARGS ("nope");
  struct avm_spawn_request req
      = { .program = "/nonexistent/nope", .args = argv.v, .nargs = argv.n, .out_fd = -1, .what = "service nope" };
  struct avm_child c;
  avm_error_t err = NULL;
  cr_assert_lt (avm_spawn (&req, &c, &err), 0);
  assert_contains (err->msg, "service nope: cannot exec /nonexistent/nope: No such file or directory");
  avm_error_freep (&err);
  targs_free (&argv);
  argv = TARGS ("true", "--x=${fd:missing}");
  struct avm_spawn_request r2
      = { .program = "/bin/true", .args = argv.v, .nargs = argv.n, .out_fd = -1, .what = "service t" };
  cr_assert_lt (avm_spawn (&r2, &c, &err), 0);
  assert_contains (err->msg, "service t: no resource \"missing\"");
  avm_error_freep (&err);
  targs_free (&argv);
}

Test (spawn, children_die_with_the_supervisor)
{
  /* An intermediate "supervisor" spawns sleep and dies: sleep gets SIGKILL.  */
  int p[2];
  cr_assert_eq (pipe (p), 0);
  pid_t sup = fork ();
  if (sup == 0)
    {
      struct targs argv = TARGS ("sleep", "30");
      struct avm_spawn_request req
          = { .program = "/bin/sleep", .args = argv.v, .nargs = argv.n, .out_fd = -1, .what = "s" };
      struct avm_child c;
      avm_error_t err = NULL;
      if (avm_spawn (&req, &c, &err) < 0)
        _exit (1);
      ssize_t w = write (p[1], &c.pid, sizeof c.pid);
      (void) w;
      _exit (0);
    }
  close (p[1]);
  pid_t child;
  cr_assert_eq (read (p[0], &child, sizeof child), (ssize_t) sizeof child);
  waitpid (sup, NULL, 0);
  /* The orphan is re-parented; wait until it is gone (SIGKILL).  */
  int gone = 0;
  for (int i = 0; i < 200 && !gone; i++)
    {
      char path[64];
      snprintf (path, sizeof path, "/proc/%d/stat", child);
      FILE *f = fopen (path, "r");
      if (!f)
        gone = 1;
      else
        {
          char st = 0;
          int n = fscanf (f, "%*d %*s %c", &st);
          gone = n == 1 && st == 'Z';
          fclose (f);
        }
      if (!gone)
        usleep (10000);
    }
  cr_assert (gone, "the child of a dead supervisor is still running");
}
