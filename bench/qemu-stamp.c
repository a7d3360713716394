/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stands in for QEMU in the start benchmark (bench/start.c): records the
 * moment it was exec'd (CLOCK_MONOTONIC, nanoseconds) in $AVM_BENCH_STAMP,
 * then waits to be stopped.  Only the time until QEMU's exec is measured;
 * what QEMU does after it is QEMU's business.  Asked for its capabilities
 * (-version, -device help, -machine help, ...), it runs the
 * real QEMU, $AVM_BENCH_QEMU, which answers, so that avm probes and caches
 * it as it would QEMU itself.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int
main (int argc, char **argv)
{
  if ((argc == 2 && strcmp (argv[1], "-version") == 0) || (argc == 3 && strcmp (argv[2], "help") == 0))
    {
      const char *qemu = getenv ("AVM_BENCH_QEMU");
      if (!qemu)
        return 2;
      argv[0] = (char *) qemu;
      execv (qemu, argv);
      return 127;
    }
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
