/* SPDX-License-Identifier: Apache-2.0 */
#include "supervise/spawn.h"
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

/* The plan's arguments: "$$" is a literal '$', "${fd:NAME}" a descriptor
   reference (profile/vars.h, keep_dollar); anything else is literal.
   Calls FN for each reference; returns the argument with the references
   replaced by FN's text (malloc'd), or NULL for an unterminated one.  */
static char *
scan_arg (const char *arg, const char *(*fn) (void *data, const char *name, size_t len, char *buf), void *data)
{
  struct avm_strbuf b = { 0 };
  for (const char *p = arg; *p;)
    {
      const char *d = strchr (p, '$');
      if (!d)
        {
          avm_strbuf_adds (&b, p);
          break;
        }
      avm_strbuf_add (&b, p, d - p);
      if (d[1] == '$')
        {
          avm_strbuf_add (&b, "$", 1);
          p = d + 2;
          continue;
        }
      if (strncmp (d, "${fd:", 5) != 0)
        {
          avm_strbuf_add (&b, "$", 1);
          p = d + 1;
          continue;
        }
      const char *end = strchr (d, '}');
      if (!end)
        {
          avm_strbuf_free (&b);
          return NULL;
        }
      char num[24];
      avm_strbuf_adds (&b, fn (data, d + 5, end - d - 5, num));
      p = end + 1;
    }
  return avm_strbuf_steal (&b);
}

static const char *
collect_one (void *data, const char *name, size_t len, char *buf)
{
  struct avm_argv *names = data;
  _cleanup_free_ char *n = strndup (name, len);
  if (n && !avm_strv_contains (names->v, n) && names->n < MAX_PASSED + 1)
    avm_argv_push (names, n);
  buf[0] = '\0';
  return buf;
}

/* Collect the ${fd:NAME} names of ARGV in order of first use.  */
static int
collect_fds (json_t *argv, struct avm_argv *names, const char *what, avm_error_t *err)
{
  size_t i;
  json_t *a;
  json_array_foreach (argv, i, a)
    {
      _cleanup_free_ char *scanned = scan_arg (json_string_value (a) ?: "", collect_one, names);
      if (!scanned)
        return avm_error_input (err, "%s: argument %zu: unterminated ${fd:", what, i);
      if (names->n > MAX_PASSED)
        return avm_error_input (err, "%s: more than %d descriptors", what, MAX_PASSED);
    }
  return 0;
}

struct fd_map
{
  char *const *map;
  size_t n;
};

static const char *
number_of (void *data, const char *name, size_t len, char *buf)
{
  const struct fd_map *m = data;
  size_t k = 0;
  for (; k < m->n; k++)
    if (strlen (m->map[k]) == len && strncmp (m->map[k], name, len) == 0)
      break;
  snprintf (buf, 24, "%zu", 3 + k);
  return buf;
}

char *
avm_spawn_expand_arg (const char *arg, char *const *map, size_t n)
{
  struct fd_map m = { map, n };
  char *r = scan_arg (arg, number_of, &m);
  return r ? r : strdup (arg);
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
  int out_fd, err_fd;
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
  step = 4;
  int devnull = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0 || dup2 (devnull, 0) < 0 || dup2 (a->out_fd >= 0 ? a->out_fd : devnull, 1) < 0
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

static const char *const steps[] = { "reset signals", "create its process group", "set the parent-death signal",
                                     "pass descriptors", "set up stdio", "place descriptors", "close descriptors",
                                     "change to its working directory", "exec" };

int
avm_spawn (const struct avm_spawn_request *req, struct avm_child *out, avm_error_t *err)
{
  struct avm_argv names = { 0 }, argv = { 0 }, env = { 0 };
  int src[MAX_PASSED], r;
  pid_t pid;

  if (!req->literal && (r = collect_fds (req->argv, &names, req->what, err)) < 0)
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
    avm_argv_push_take (&argv, req->literal ? strdup (json_string_value (a))
                                            : avm_spawn_expand_arg (json_string_value (a), names.v, names.n));
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
  struct child_args ca = { req->program, argv.v, env.v, src, names.n, req->out_fd, errpipe[1], getpid (), req->workdir };
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
