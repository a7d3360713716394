/* SPDX-License-Identifier: Apache-2.0 */
#include "util/deadline.h"

#include <limits.h>
#include <time.h>

long long
avm_now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

long long
avm_deadline_after (int timeout_ms)
{
  return timeout_ms < 0 ? -1 : avm_now_ms () + timeout_ms;
}

int
avm_time_left (long long deadline)
{
  if (deadline < 0)
    return -1;
  long long left = deadline - avm_now_ms ();
  if (left <= 0)
    return 0;
  return left > INT_MAX ? INT_MAX : (int) left;
}
