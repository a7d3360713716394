/* SPDX-License-Identifier: Apache-2.0 */
/* Deadlines for blocking waits with poll(): CLOCK_MONOTONIC milliseconds. */
#pragma once

/* Now, in milliseconds.  */
long long avm_now_ms (void);

/* The deadline TIMEOUT_MS from now; -1 (no deadline) when TIMEOUT_MS < 0.  */
long long avm_deadline_after (int timeout_ms);

/* Milliseconds left until DEADLINE for poll(): -1 without deadline, 0 when
   passed, at most INT_MAX.  */
int avm_time_left (long long deadline);
