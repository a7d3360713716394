/* SPDX-License-Identifier: Apache-2.0 */
#include "supervise/spawn.h"
#include "util/analyzer.h"
#include "util/cleanup.h"
#include "util/strbuf.h"
#include "util/strv.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PASSED 64

extern char **environ;

/* The descriptors ARGS pass, by name in order of first use (the argument
   pieces were split at plan time: profile/vars.h, avm_vars_split_fd).  */
static int
collect_fds (const struct avm_plan_arg *args, size_t nargs, struct avm_argv *names, const char *what, avm_error_t *err)
{
  for (size_t i = 0; i < nargs; i++)
    for (size_t k = 0; k < args[i].n; k++)
      if (args[i].pieces[k].fd && !avm_strv_contains (names->v, args[i].pieces[k].text))
        {
          if (names->n >= MAX_PASSED)
            return avm_error_input (err, "%s: more than %d descriptors", what, MAX_PASSED);
          if (avm_argv_push (names, args[i].pieces[k].text) < 0)
            return avm_error_sys (err, ENOMEM, "%s", what);
        }
  return 0;
}

/* ARG with each descriptor reference replaced by its number: 3 + its index
   in MAP.  */
static char *
join_arg (const struct avm_plan_arg *arg, char *const *map, size_t n)
{
  struct avm_strbuf b = { 0 };
  for (size_t i = 0; i < arg->n; i++)
    {
      if (!arg->pieces[i].fd)
        {
          avm_strbuf_adds (&b, arg->pieces[i].text);
          continue;
        }
      size_t k = 0;
      while (k < n && !streq (map[k], arg->pieces[i].text))
        k++;
      avm_strbuf_addf (&b, "%zu", 3 + k);
    }
  return avm_strbuf_steal (&b);
}

char *
avm_spawn_expand_arg (const char *arg, char *const *map, size_t n)
{
  struct avm_plan_arg a;
  if (avm_plan_arg_parse (arg, &a) < 0)
    return strdup (arg);
  char *r = join_arg (&a, map, n);
  avm_plan_arg_clear (&a);
  return r;
}

/* In the child, which shares the parent's memory (CLONE_VM | CLONE_VFORK):
   only system calls until exec, nothing that allocates or takes a lock.
   A failure is written as an errno value and a step to ERR_FD, the write
   end of a close-on-exec pipe: the parent reads end of file once the exec
   succeeded.  (Not through the shared memory: under valgrind, which runs
   such a clone as a fork, the child's memory is a copy.)  */
struct child_args
{
  const char *program;
  char *const *argv, *const *envp;
  const int *src;
  size_t n;
  int in_fd, out_fd, err_fd; /* in_fd: standard input, or -1 for /dev/null */
  pid_t parent;
  const char *workdir;
};

struct child_failure
{
  int err, step;
};

static int
child_main (void *data)
{
  struct child_args *a = data;
  int step = 0;
  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP)
      signal (s, SIG_DFL);
  sigset_t none;
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  step = 1;
  if (setpgid (0, 0) < 0)
    goto fail;
  step = 2;
  if (prctl (PR_SET_PDEATHSIG, SIGKILL) < 0)
    goto fail;
  if (getppid () != a->parent) /* the supervisor died before the prctl */
    _exit (127);
  /* Move the error pipe and every passed descriptor out of the way, then
     the passed ones into 3, 4, ...  */
  int tmp[MAX_PASSED];
  step = 3;
  int moved = fcntl (a->err_fd, F_DUPFD_CLOEXEC, 3 + MAX_PASSED);
  if (moved < 0)
    goto fail;
  a->err_fd = moved; /* our copy of the arguments, or the parent's: it is done with them */
  for (size_t i = 0; i < a->n; i++)
    if ((tmp[i] = fcntl (a->src[i], F_DUPFD_CLOEXEC, 3 + MAX_PASSED)) < 0)
      goto fail;
  int in = -1;
  if (a->in_fd >= 0 && (in = fcntl (a->in_fd, F_DUPFD_CLOEXEC, 3 + MAX_PASSED)) < 0)
    goto fail;
  step = 4;
  int devnull = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0 || dup2 (in >= 0 ? in : devnull, 0) < 0 || dup2 (a->out_fd >= 0 ? a->out_fd : devnull, 1) < 0
      || dup2 (a->out_fd >= 0 ? a->out_fd : devnull, 2) < 0)
    goto fail;
  step = 5;
  for (size_t i = 0; i < a->n; i++)
    if (dup2 (tmp[i], 3 + (int) i) < 0) /* dup2 clears close-on-exec */
      goto fail;
  /* Everything else is closed at exec, whatever its flags.  */
  step = 6;
  if (syscall (SYS_close_range, 3 + a->n, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) < 0)
    for (int fd = 3 + (int) a->n; fd < 65536; fd++)
      close (fd);
  /* What a child creates (QEMU's QMP socket, dbus-daemon's, a helper's
     files) is the user's alone, whatever umask avm was started with.  */
  umask (077);
  step = 7;
  if (a->workdir && chdir (a->workdir) < 0)
    goto fail;
  step = 8;
  execve (a->program, a->argv, a->envp);
fail:;
  struct child_failure f = { errno, step };
  ssize_t w = write (a->err_fd, &f, sizeof f);
  (void) w; /* nothing more a child can do: the parent reads end of file and sees it exit 127 */
  _exit (127);
}

static const char *const steps[]
    = { "reset signals", "create its process group", "set the parent-death signal", "pass descriptors",
        "set up stdio",  "place descriptors",        "close descriptors",           "change to its working directory",
        "exec" };

int
avm_spawn (const struct avm_spawn_request *req, struct avm_child *out, avm_error_t *err)
{
  struct avm_argv names = { 0 }, argv = { 0 }, env = { 0 };
  const struct avm_plan_arg *args = req->args;
  size_t nargs = req->nargs;
  const struct avm_plan_pair *envv = req->envv;
  size_t nenv = req->nenv;
  int src[MAX_PASSED], r;
  pid_t pid;

  if ((r = collect_fds (args, nargs, &names, req->what, err)) < 0)
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
  int in_fd = -1;
  if (req->stdin_name && (in_fd = req->lookup ? req->lookup (req->lookup_data, req->stdin_name) : -1) < 0)
    {
      r = avm_error_input (err, "%s: no resource \"%s\" for its standard input", req->what, req->stdin_name);
      goto out;
    }
  for (size_t i = 0; i < nargs; i++)
    avm_argv_push_take (&argv, join_arg (&args[i], names.v, names.n));
  /* Environment: ours, with the service's additions replacing.  */
  for (char **e = environ; *e; e++)
    {
      size_t kl = strcspn (*e, "=");
      bool replaced = false;
      for (size_t k = 0; k < nenv; k++)
        replaced |= strlen (envv[k].name) == kl && strncmp (envv[k].name, *e, kl) == 0;
      if (!replaced)
        avm_argv_push (&env, *e);
    }
  for (size_t k = 0; k < nenv; k++)
    avm_argv_pushf (&env, "%s=%s", envv[k].name, envv[k].value ?: "");
  if (!argv.v || !env.v)
    {
      r = avm_error_sys (err, ENOMEM, "%s", req->what);
      goto out;
    }

  /* vfork semantics, as posix_spawn (which has no parent-death signal)
     does it: the child runs on its own stack in our memory and we resume
     once it has exec'd, so no page tables are copied, the exec's result is
     known at once, and the new program's start-up runs while we go on.
     Every signal is blocked until the child has reset their dispositions.  */
  int errpipe[2];
  if (pipe2 (errpipe, O_CLOEXEC) < 0)
    {
      r = avm_error_sys (err, errno, "%s: pipe", req->what);
      goto out;
    }
  struct child_args ca
      = { req->program, argv.v, env.v, src, names.n, in_fd, req->out_fd, errpipe[1], getpid (), req->workdir };
  size_t stack_size = 64 * 1024;
  void *stack = mmap (NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED)
    {
      r = avm_error_sys (err, errno, "%s: stack for the child", req->what);
      close (errpipe[0]);
      close (errpipe[1]);
      goto out;
    }
  sigset_t all, old;
  sigfillset (&all);
  sigprocmask (SIG_SETMASK, &all, &old);
  pid = clone (child_main, (char *) stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &ca);
  int saved = errno;
  sigprocmask (SIG_SETMASK, &old, NULL);
  munmap (stack, stack_size);
  close (errpipe[1]);
  if (pid < 0)
    {
      close (errpipe[0]);
      r = avm_error_sys (err, saved, "%s: clone", req->what);
      goto out;
    }
  /* End of file: the exec happened (at once with vfork semantics).  */
  struct child_failure f;
  ssize_t got;
  while ((got = read (errpipe[0], &f, sizeof f)) < 0 && errno == EINTR)
    ;
  close (errpipe[0]);
  if (got == (ssize_t) sizeof f)
    {
      waitpid (pid, NULL, 0);
      r = avm_error_sys (err, f.err, "%s: cannot %s %s", req->what,
                         f.step >= 0 && f.step < (int) ARRAY_SIZE (steps) ? steps[f.step] : "start", req->program);
      goto out;
    }
  out->pid = pid;
  r = 0;
out:
  avm_argv_clear (&names);
  avm_argv_clear (&argv);
  avm_argv_clear (&env);
  return r;
}
