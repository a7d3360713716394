/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Control socket: the blocking client ("avm status", "avm stop", the peer
 * checks).  The protocol is described in control_client.h; the server
 * (inside the supervisor's sd-event loop) is control.c.
 */
#include "supervise/control_client.h"
#include "util/linebuf.h"
#include "util/deadline.h"
#include "util/cleanup.h"
#include "util/strfmt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define READ_CHUNK 16384
/* Longest reply the client accepts.  */
#define MAX_REPLY (16 * 1024 * 1024)

static int
timed_out (const char *path, int timeout_ms, avm_error_t *err)
{
  return avm_error_fail (err, ETIMEDOUT, "%s: no reply within %d ms", path, timeout_ms);
}

int
avm_control_call (const char *path, json_t *request, json_t **reply, int timeout_ms, avm_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  size_t plen = strlen (path);
  long long deadline = avm_deadline_after (timeout_ms);
  json_error_t jerr;

  *reply = NULL;
  if (plen == 0 || plen >= sizeof sa.sun_path)
    return avm_error_fail (err, ENAMETOOLONG, "%s: path too long for a unix socket (%zu bytes, at most %zu)", path,
                           plen, sizeof sa.sun_path - 1);
  if (!json_is_object (request))
    return avm_error_fail (err, EINVAL, "%s: the control request is not a JSON object", path);
  _cleanup_free_ char *text = json_dumps (request, JSON_COMPACT);
  _cleanup_free_ char *line = text ? avm_strdupf ("%s\n", text) : NULL;
  if (!line)
    return avm_error_sys (err, ENOMEM, "%s", path);
  size_t len = strlen (line);

  _cleanup_close_ int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return avm_error_sys (err, errno, "%s: socket", path);
  /* connect() waits while the listen backlog is full: bound that wait.  */
  if (timeout_ms >= 0)
    {
      struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
      if (timeout_ms == 0)
        tv.tv_usec = 1000;
      setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
  memcpy (sa.sun_path, path, plen + 1);
  while (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      int e = errno;
      if (e == EINTR)
        continue;
      if (e == ENOENT || e == ECONNREFUSED)
        return avm_error_fail (err, e, "no avm instance is running here (%s: %s)", path, strerror (e));
      if (e == EAGAIN || e == EINPROGRESS)
        return timed_out (path, timeout_ms, err);
      return avm_error_sys (err, e, "%s: connect", path);
    }
  int fl = fcntl (fd, F_GETFL);
  if (fl < 0 || fcntl (fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return avm_error_sys (err, errno, "%s: fcntl", path);

  /* Send.  When the server closes the connection early (it refused it),
     its reply may already be waiting: read it.  */
  for (size_t off = 0; off < len;)
    {
      ssize_t n = send (fd, line + off, len - off, MSG_NOSIGNAL);
      if (n >= 0)
        {
          off += n;
          continue;
        }
      if (errno == EINTR)
        continue;
      if (errno == EPIPE || errno == ECONNRESET)
        break;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        return avm_error_sys (err, errno, "%s: send", path);
      struct pollfd p = { fd, POLLOUT, 0 };
      int pr = poll (&p, 1, avm_time_left (deadline));
      if (pr < 0 && errno != EINTR)
        return avm_error_sys (err, errno, "%s: poll", path);
      if (pr == 0)
        return timed_out (path, timeout_ms, err);
    }

  /* Receive one line.  */
  _cleanup_linebuf_ struct avm_linebuf in = AVM_LINEBUF_INIT (MAX_REPLY);
  const char *buf = NULL;
  size_t llen = 0;
  for (;;)
    {
      int r = avm_linebuf_next (&in, &buf, &llen);
      if (r > 0)
        break;
      if (r < 0)
        return avm_error_fail (err, EPROTO, "%s: reply longer than %d bytes", path, MAX_REPLY);
      char *tail;
      if (avm_linebuf_reserve (&in, READ_CHUNK, &tail) < 0)
        return avm_error_sys (err, ENOMEM, "%s", path);
      ssize_t n = read (fd, tail, READ_CHUNK);
      if (n > 0)
        {
          avm_linebuf_commit (&in, n);
          continue;
        }
      if (n == 0 || errno == ECONNRESET || errno == EPIPE)
        return avm_error_fail (err, ECONNRESET, "%s: the avm instance closed the connection without a reply", path);
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        return avm_error_sys (err, errno, "%s: read", path);
      struct pollfd p = { fd, POLLIN, 0 };
      int pr = poll (&p, 1, avm_time_left (deadline));
      if (pr < 0 && errno != EINTR)
        return avm_error_sys (err, errno, "%s: poll", path);
      if (pr == 0)
        return timed_out (path, timeout_ms, err);
    }

  json_t *j = json_loadb (buf, llen, 0, &jerr);
  if (!j)
    return avm_error_fail (err, EPROTO, "%s: malformed reply: %s", path, jerr.text);
  if (!json_is_object (j))
    {
      json_decref (j);
      return avm_error_fail (err, EPROTO, "%s: malformed reply: not a JSON object", path);
    }
  *reply = j;
  return 0;
}
