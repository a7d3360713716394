/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stands in for QEMU in the start benchmark (bench/start.c): records the
 * moment it was exec'd (CLOCK_MONOTONIC, nanoseconds) in $AVM_BENCH_STAMP,
 * then waits to be stopped.  Only the time until QEMU's exec is measured;
 * what QEMU does after it is QEMU's business.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int
main (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  const char *path = getenv ("AVM_BENCH_STAMP");
  if (!path)
    return 2;
  char tmp[4096], buf[64];
  snprintf (tmp, sizeof tmp, "%s.tmp", path);
  int n = snprintf (buf, sizeof buf, "%lld\n", (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec);
  int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write (fd, buf, n) != n || close (fd) < 0 || rename (tmp, path) < 0)
    return 1;
  pause ();
  return 0;
}
