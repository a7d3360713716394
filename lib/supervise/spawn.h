/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starting a helper service or QEMU from the plan: an argv array (never a
 * shell), ${fd:NAME} references replaced by descriptors passed to the child
 * ("$$" is a literal '$': profile/vars.h, keep_dollar)
 * as 3, 4, ... in order of first use, every other descriptor closed, stdin
 * on /dev/null or a resource (stdin_name), stdout and stderr on OUT_FD (the supervisor's log pipe), its
 * own process group, SIGKILL when the supervisor dies (PR_SET_PDEATHSIG: a
 * supervisor that dies without stopping its children was killed or crashed,
 * and nothing may outlive it, not even a helper ignoring SIGTERM),
 * default signal dispositions and an empty signal mask.  The caller gets
 * the pid; the supervisor reaps with waitpid(-1) as a child subreaper, which
 * also collects re-parented grandchildren, so no pidfd is kept.
 */
#pragma once

#include "plan/plan.h"
#include "util/error.h"

#include <stdbool.h>
#include <sys/types.h>

/* Descriptor of resource NAME ("kernel_log_tee.read", "keymaster.in", ...)
   or -1.  */
typedef int (*avm_fd_lookup_fn) (void *data, const char *name);

struct avm_spawn_request
{
  const char *program; /* absolute path */
  /* The arguments, argv[0] kept as the process name: a plan's (split at
     plan time).  */
  const struct avm_plan_arg *args;
  size_t nargs;
  /* Environment additions: a plan's pairs.  */
  const struct avm_plan_pair *envv;
  size_t nenv;
  avm_fd_lookup_fn lookup; /* for ${fd:NAME} and STDIN_NAME */
  const char *stdin_name;  /* resource for standard input (a listening socket: inetd style), or NULL: /dev/null */
  void *lookup_data;
  int out_fd;          /* stdout and stderr, or -1 for /dev/null */
  const char *workdir; /* working directory, or NULL for the supervisor's */
  const char *what;    /* "service kernel_log_monitor", for messages */
};

struct avm_child
{
  pid_t pid;
};

int avm_spawn (const struct avm_spawn_request *req, struct avm_child *child, avm_error_t *err);

/* Expand ${fd:NAME} in ARG given the mapping decided by avm_spawn (exposed
   for tests): MAP[i] names the resource passed as descriptor 3 + i; ARG as
   it is when it cannot be read.  */
char *avm_spawn_expand_arg (const char *arg, char *const *map, size_t n);
