/* SPDX-License-Identifier: Apache-2.0 */
/* A progress bar on stderr (bytes, rate, ETA, current item), only on a terminal. */
#pragma once

#include "util/strfmt.h" /* avm_format_bytes */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct avm_progress
{
  bool enabled;
  uint64_t total, done;
  const char *item;
  long long start_ns, last_ns;
  int width;
};

/* Enabled when stderr is a terminal and QUIET is false.  */
void avm_progress_init (struct avm_progress *p, uint64_t total, bool quiet);
void avm_progress_item (struct avm_progress *p, const char *item);
/* Matches avm_progress_fn (disk/output.h).  */
void avm_progress_add (void *p, uint64_t bytes);
/* Final line (newline) when enabled.  */
void avm_progress_done (struct avm_progress *p);

/* A status line on stderr for work counted in steps, not bytes (avm
   inspect --verify: starting libguestfs's appliance, which takes about a
   minute without KVM, then reading through its kernel): on a terminal
   only, the current step and the seconds it has lasted, redrawn in place
   every second by a thread while the step lasts, and erased at the end,
   so that what follows starts on a clean line.  Off a terminal, or with
   QUIET, nothing is drawn and no thread runs.  */
struct avm_status
{
  bool enabled, running, stop;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  char text[160];
  long long step_ns;
  int drawn; /* columns of the line on the terminal */
  int width;
};
void avm_status_begin (struct avm_status *s, bool quiet);
/* The current step (printf-style; bytes outside printable ASCII are shown
   as '?').  Does nothing when S is NULL or not enabled.  */
void avm_status_step (struct avm_status *s, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Erase the line and stop the thread.  */
void avm_status_end (struct avm_status *s);
