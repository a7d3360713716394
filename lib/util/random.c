/* SPDX-License-Identifier: Apache-2.0 */
#include "util/random.h"
#include "util/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void
avm_random_bytes (uint8_t *buf, size_t len)
{
  size_t got = 0;

  while (got < len)
    {
      ssize_t r = getrandom (buf + got, len - got, 0);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        break;
      got += r;
    }
  if (got == len)
    return;

  /* No getrandom (seccomp filters, very old kernels): /dev/urandom, then
     a last resort that is unique enough for partition GUIDs.  */
  _cleanup_close_ int fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);
  while (fd >= 0 && got < len)
    {
      ssize_t r = read (fd, buf + got, len - got);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        break;
      got += r;
    }
  if (got == len)
    return;

  static uint64_t counter;
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  uint64_t x = (uint64_t) ts.tv_sec * 1000000007ULL ^ (uint64_t) ts.tv_nsec ^ (uint64_t) getpid () << 32
               ^ ++counter * 0x9E3779B97F4A7C15ULL;
  for (; got < len; got++)
    {
      /* splitmix64 */
      x += 0x9E3779B97F4A7C15ULL;
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
      buf[got] = (uint8_t) (z ^ (z >> 31));
    }
}
