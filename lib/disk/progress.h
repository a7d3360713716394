/* SPDX-License-Identifier: Apache-2.0 */
/* A progress bar on stderr (bytes, rate, ETA, current item), only on a terminal. */
#pragma once

#include "util/strfmt.h" /* avm_format_bytes */

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
