/* SPDX-License-Identifier: Apache-2.0 */
#include "disk/stream.h"
#include "util/cleanup.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bounded buffer for skipping over streams that cannot seek.  */
#define SKIP_BUFSIZE (64 * 1024)

ssize_t
avm_stream_read (struct avm_stream *s, void *buf, size_t len)
{
  char *p = buf;
  size_t done = 0;

  while (done < len)
    {
      ssize_t r = s->read (s->ctx, p + done, len - done);
      if (r == -EINTR)
        continue;
      if (r < 0)
        return r;
      if (r == 0)
        break;
      done += (size_t) r;
      s->pos += (uint64_t) r;
    }
  return (ssize_t) done;
}

static ssize_t
fd_read (void *ctx, void *buf, size_t len)
{
  int fd = *(int *) ctx;
  for (;;)
    {
      ssize_t r = read (fd, buf, len);
      if (r >= 0)
        return r;
      if (errno != EINTR)
        return -errno;
    }
}

/* Seek forward over LEN bytes of a regular file.  Returns 1 when done, 0
   when the descriptor cannot seek (the caller reads instead), -EIO when the
   file ends first (the position is then left at the end).  */
static int
fd_skip (struct avm_stream *s, uint64_t len)
{
  int fd = *(int *) s->ctx;
  struct stat st;

  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    return 0;
  off_t cur = lseek (fd, 0, SEEK_CUR);
  if (cur < 0)
    return 0;
  uint64_t end = (uint64_t) st.st_size;
  if ((uint64_t) cur > end || len > end - (uint64_t) cur)
    {
      if ((uint64_t) cur < end && lseek (fd, 0, SEEK_END) >= 0)
        s->pos += end - (uint64_t) cur;
      return -EIO;
    }
  if (lseek (fd, (off_t) len, SEEK_CUR) < 0)
    return 0;
  s->pos += len;
  return 1;
}

int
avm_stream_skip (struct avm_stream *s, uint64_t len)
{
  if (len == 0)
    return 0;
  if (s->read == fd_read)
    {
      int r = fd_skip (s, len);
      if (r != 0)
        return r < 0 ? r : 0;
    }

  _cleanup_free_ char *buf = malloc (len < SKIP_BUFSIZE ? (size_t) len : SKIP_BUFSIZE);
  if (!buf)
    return -ENOMEM;
  while (len > 0)
    {
      size_t n = len < SKIP_BUFSIZE ? (size_t) len : SKIP_BUFSIZE;
      ssize_t r = avm_stream_read (s, buf, n);
      if (r < 0)
        return (int) r;
      if ((size_t) r < n)
        return -EIO;
      len -= n;
    }
  return 0;
}

void
avm_stream_from_fd (struct avm_stream *s, int *fd, const char *name, uint64_t size)
{
  s->read = fd_read;
  s->ctx = fd;
  s->name = name;
  s->pos = 0;
  s->size = size;
}
