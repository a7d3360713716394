/* SPDX-License-Identifier: Apache-2.0 */
/* Run short-lived programs (argv arrays, never a shell) and collect stdout. */
#pragma once

#include "util/error.h"

#include <stdbool.h>
#include <stddef.h>

struct avm_capture
{
  char *const *argv; /* in: argv[0] is an absolute path */
  char *const *envp; /* in: the environment, or NULL for avm's own */
  bool with_stderr;  /* in: stderr into OUT too (else /dev/null) */
  char *out;         /* out: NUL-terminated stdout (malloc'd) */
  size_t out_len;
  int status; /* out: wait status */
};

/* Start all N programs at once (stdin and stderr on /dev/null), read their
   output concurrently and reap them.  Kills every child still running after
   TIMEOUT_MS.  Fails only when a program cannot be started or times out;
   callers check the wait statuses.  */
int avm_capture_run (struct avm_capture *jobs, size_t n, int timeout_ms, avm_error_t *err);
void avm_capture_clear (struct avm_capture *jobs, size_t n);
