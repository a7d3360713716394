/* SPDX-License-Identifier: Apache-2.0 */
#include "util/capture.h"
#include "util/deadline.h"
#include "util/cleanup.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static int
spawn_one (struct avm_capture *job, pid_t *pid, int *rfd, avm_error_t *err)
{
  int p[2];
  posix_spawn_file_actions_t fa;
  int r;

  if (pipe2 (p, O_CLOEXEC) < 0)
    return avm_error_sys (err, errno, "pipe");
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2 (&fa, p[1], 1);
  if (job->with_stderr)
    posix_spawn_file_actions_adddup2 (&fa, p[1], 2);
  else
    posix_spawn_file_actions_addopen (&fa, 2, "/dev/null", O_WRONLY, 0);
  r = posix_spawn (pid, job->argv[0], &fa, NULL, job->argv, job->envp ? job->envp : environ);
  posix_spawn_file_actions_destroy (&fa);
  close (p[1]);
  if (r != 0)
    {
      close (p[0]);
      return avm_error_sys (err, r, "cannot run %s", job->argv[0]);
    }
  *rfd = p[0];
  return 0;
}

int
avm_capture_run (struct avm_capture *jobs, size_t n, int timeout_ms, avm_error_t *err)
{
  pid_t pids[n];
  struct pollfd pfd[n];
  size_t alloc[n], open_fds = 0;
  int ret = 0;

  for (size_t i = 0; i < n; i++)
    {
      pids[i] = -1;
      pfd[i].fd = -1;
      pfd[i].events = POLLIN;
      alloc[i] = 0;
      jobs[i].out = NULL;
      jobs[i].out_len = 0;
      jobs[i].status = -1;
    }
  for (size_t i = 0; i < n; i++)
    {
      ret = spawn_one (&jobs[i], &pids[i], &pfd[i].fd, err);
      if (ret < 0)
        goto out;
      open_fds++;
    }

  long long deadline = avm_now_ms () + timeout_ms;
  while (open_fds > 0)
    {
      long long left = deadline - avm_now_ms ();
      if (left <= 0)
        {
          ret = avm_error_fail (err, ETIMEDOUT, "%s did not finish within %d ms", jobs[0].argv[0], timeout_ms);
          goto out;
        }
      int r = poll (pfd, n, (int) left);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          ret = avm_error_sys (err, errno, "poll");
          goto out;
        }
      for (size_t i = 0; i < n; i++)
        {
          if (pfd[i].fd < 0 || !pfd[i].revents)
            continue;
          if (alloc[i] - jobs[i].out_len < 4096)
            {
              size_t na = alloc[i] ? alloc[i] * 2 : 16384;
              char *nb = realloc (jobs[i].out, na);
              if (!nb)
                {
                  ret = avm_error_sys (err, ENOMEM, "reading output of %s", jobs[i].argv[0]);
                  goto out;
                }
              jobs[i].out = nb;
              alloc[i] = na;
              jobs[i].out[jobs[i].out_len] = '\0'; /* also when nothing more comes (valgrind: make check-valgrind) */
            }
          ssize_t got = read (pfd[i].fd, jobs[i].out + jobs[i].out_len, alloc[i] - jobs[i].out_len - 1);
          if (got < 0 && errno == EINTR)
            continue;
          if (got <= 0)
            {
              close (pfd[i].fd);
              pfd[i].fd = -1;
              open_fds--;
              continue;
            }
          jobs[i].out_len += got;
          jobs[i].out[jobs[i].out_len] = '\0';
        }
    }

out:
  for (size_t i = 0; i < n; i++)
    {
      if (pfd[i].fd >= 0)
        close (pfd[i].fd);
      if (pids[i] > 0)
        {
          if (ret < 0)
            kill (pids[i], SIGKILL);
          while (waitpid (pids[i], &jobs[i].status, 0) < 0 && errno == EINTR)
            ;
        }
      if (!jobs[i].out)
        jobs[i].out = calloc (1, 1);
    }
  if (ret < 0)
    avm_capture_clear (jobs, n);
  return ret;
}

void
avm_capture_clear (struct avm_capture *jobs, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (jobs[i].out);
      jobs[i].out = NULL;
      jobs[i].out_len = 0;
    }
}
