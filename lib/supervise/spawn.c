/* SPDX-License-Identifier: Apache-2.0 */
#include "supervise/spawn.h"
#include "util/cleanup.h"
#include "util/strv.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PASSED 64

extern char **environ;

/* Collect the ${fd:NAME} names of ARGV in order of first use.  */
static int
collect_fds (json_t *argv, struct avm_argv *names, const char *what, avm_error_t *err)
{
  size_t i;
  json_t *a;
  json_array_foreach (argv, i, a)
    {
      const char *s = json_string_value (a);
      for (const char *p = s ? strstr (s, "${fd:") : NULL; p; p = strstr (p + 1, "${fd:"))
        {
          const char *end = strchr (p, '}');
          if (!end)
            return avm_error_input (err, "%s: argument %zu: unterminated ${fd:", what, i);
          _cleanup_free_ char *name = strndup (p + 5, end - p - 5);
          if (!avm_strv_contains (names->v, name))
            {
              if (names->n == MAX_PASSED)
                return avm_error_input (err, "%s: more than %d descriptors", what, MAX_PASSED);
              avm_argv_push (names, name);
            }
        }
    }
  return 0;
}

char *
avm_spawn_expand_arg (const char *arg, char *const *map, size_t n)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  if (!f)
    return NULL;
  for (const char *p = arg; *p;)
    {
      const char *ref = strstr (p, "${fd:");
      if (!ref)
        {
          fputs (p, f);
          break;
        }
      fwrite (p, 1, ref - p, f);
      const char *end = strchr (ref, '}');
      if (!end)
        {
          fputs (ref, f);
          break;
        }
      size_t k = 0;
      for (; k < n; k++)
        if (strlen (map[k]) == (size_t) (end - ref - 5) && strncmp (map[k], ref + 5, end - ref - 5) == 0)
          break;
      fprintf (f, "%zu", 3 + k);
      p = end + 1;
    }
  if (fclose (f) != 0)
    {
      free (buf);
      return NULL;
    }
  return buf;
}

/* In the child: only async-signal-safe calls until exec.  Failures are
   reported to the parent through ERRPIPE as an errno value and a step.  */
static void __attribute__ ((noreturn))
child (const char *program, char *const *argv, char *const *envp, const int *src, size_t n, int out_fd, int errpipe,
       pid_t parent)
{
  int step = 0;
  sigset_t none;
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP)
      signal (s, SIG_DFL);
  step = 1;
  if (setpgid (0, 0) < 0)
    goto fail;
  step = 2;
  if (prctl (PR_SET_PDEATHSIG, SIGKILL) < 0)
    goto fail;
  if (getppid () != parent) /* the supervisor died before the prctl */
    _exit (127);
  /* Move every passed descriptor out of the way, then into 3, 4, ...  */
  int tmp[MAX_PASSED];
  step = 3;
  for (size_t i = 0; i < n; i++)
    if ((tmp[i] = fcntl (src[i], F_DUPFD_CLOEXEC, 3 + MAX_PASSED)) < 0)
      goto fail;
  step = 4;
  int devnull = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0 || dup2 (devnull, 0) < 0 || dup2 (out_fd >= 0 ? out_fd : devnull, 1) < 0
      || dup2 (out_fd >= 0 ? out_fd : devnull, 2) < 0)
    goto fail;
  step = 5;
  for (size_t i = 0; i < n; i++)
    if (dup2 (tmp[i], 3 + (int) i) < 0) /* dup2 clears close-on-exec */
      goto fail;
  /* Everything else is closed at exec, whatever its flags; ERRPIPE stays
     open until then to report a failed exec.  */
  step = 6;
  if (syscall (SYS_close_range, 3 + n, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) < 0)
    for (int fd = 3 + (int) n; fd < 65536; fd++)
      if (fd != errpipe)
        close (fd);
  step = 7;
  execve (program, argv, envp);
fail:;
  int msg[2] = { errno, step };
  ssize_t w = write (errpipe, msg, sizeof msg);
  (void) w;
  _exit (127);
}

static const char *const steps[] = { "reset signals", "create its process group", "set the parent-death signal",
                                     "pass descriptors", "set up stdio", "place descriptors", "close descriptors",
                                     "exec" };

int
avm_spawn (const struct avm_spawn_request *req, struct avm_child *out, avm_error_t *err)
{
  struct avm_argv names = { 0 }, argv = { 0 }, env = { 0 };
  int src[MAX_PASSED], ep[2] = { -1, -1 }, r;
  pid_t pid;

  if ((r = collect_fds (req->argv, &names, req->what, err)) < 0)
    goto out;
  for (size_t i = 0; i < names.n; i++)
    {
      src[i] = req->lookup ? req->lookup (req->lookup_data, names.v[i]) : -1;
      if (src[i] < 0)
        {
          r = avm_error_input (err, "%s: no resource \"%s\" for ${fd:%s}", req->what, names.v[i], names.v[i]);
          goto out;
        }
    }
  size_t i;
  json_t *a;
  json_array_foreach (req->argv, i, a)
    avm_argv_push_take (&argv, avm_spawn_expand_arg (json_string_value (a), names.v, names.n));
  /* Environment: ours, with the service's additions replacing.  */
  const char *k;
  json_t *v;
  for (char **e = environ; *e; e++)
    {
      size_t kl = strcspn (*e, "=");
      bool replaced = false;
      json_object_foreach (req->env, k, v)
        replaced |= strlen (k) == kl && strncmp (k, *e, kl) == 0;
      if (!replaced)
        avm_argv_push (&env, *e);
    }
  json_object_foreach (req->env, k, v)
    avm_argv_pushf (&env, "%s=%s", k, json_string_value (v));
  if (!argv.v || !env.v)
    {
      r = avm_error_sys (err, ENOMEM, "%s", req->what);
      goto out;
    }

  if (pipe2 (ep, O_CLOEXEC) < 0)
    {
      r = avm_error_sys (err, errno, "%s: pipe", req->what);
      goto out;
    }
  pid_t parent = getpid ();
  pid = fork ();
  if (pid < 0)
    {
      r = avm_error_sys (err, errno, "%s: fork", req->what);
      goto out;
    }
  if (pid == 0)
    child (req->program, argv.v, env.v, src, names.n, req->out_fd, ep[1], parent);
  close (ep[1]);
  ep[1] = -1;
  /* The exec closes the pipe; an error arrives as errno + step.  */
  int msg[2];
  ssize_t got;
  do
    got = read (ep[0], msg, sizeof msg);
  while (got < 0 && errno == EINTR);
  if (got == sizeof msg)
    {
      waitpid (pid, NULL, 0);
      r = avm_error_sys (err, msg[0], "%s: cannot %s %s", req->what,
                         msg[1] >= 0 && msg[1] < (int) ARRAY_SIZE (steps) ? steps[msg[1]] : "start", req->program);
      goto out;
    }
  out->pid = pid;
  out->pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
  if (out->pidfd < 0)
    {
      r = avm_error_sys (err, errno, "%s: pidfd_open", req->what);
      kill (pid, SIGKILL);
      waitpid (pid, NULL, 0);
      goto out;
    }
  fcntl (out->pidfd, F_SETFD, FD_CLOEXEC);
  r = 0;
out:
  if (ep[0] >= 0)
    close (ep[0]);
  if (ep[1] >= 0)
    close (ep[1]);
  avm_argv_clear (&names);
  avm_argv_clear (&argv);
  avm_argv_clear (&env);
  return r;
}
