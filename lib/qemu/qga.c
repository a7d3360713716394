/* SPDX-License-Identifier: Apache-2.0 */
/* The guest agent's clock exchange (qga.h).  By hand, not with a library:
   no Debian library speaks the agent's protocol (libvirt's does, inside
   libvirtd), and the three requests, the 0xFF sentinel and line framing
   are all there is to it.  */
#include "qemu/qga.h"
#include "util/cleanup.h"
#include "util/json.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Longest reply line (the agent's replies here are a few dozen bytes).  */
#define QGA_MAX_LINE (64 * 1024)

enum qga_step
{
  QGA_SYNC,
  QGA_GET_TIME,
  QGA_SET_TIME,
  QGA_DONE,
  QGA_FAILED,
};

struct avm_qga
{
  int fd;
  char *name;
  enum qga_step step;
  int64_t sync_id;
  bool synced; /* the sentinel seen: lines are replies */
  char *out;   /* what waits to be written */
  size_t out_len, out_off;
  char *in; /* a reply line being read */
  size_t in_len;
  int64_t behind_ns;
  bool behind_known;
};

static int64_t
realtime_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Queue a request: PREFIX (0xFF before the sync, else "") and the JSON.  */
static int
queue (struct avm_qga *q, const char *prefix, json_t *req, avm_error_t *err)
{
  _cleanup_free_ char *text = req ? json_dumps (req, JSON_COMPACT) : NULL;
  json_decref (req);
  if (!text)
    return avm_error_sys (err, ENOMEM, "guest agent %s", q->name);
  size_t n = strlen (prefix) + strlen (text) + 1;
  char *buf = realloc (q->out, q->out_len - q->out_off + n + 1);
  if (!buf)
    return avm_error_sys (err, ENOMEM, "guest agent %s", q->name);
  memmove (buf, buf + q->out_off, q->out_len - q->out_off);
  q->out_len -= q->out_off;
  q->out_off = 0;
  q->out = buf;
  q->out_len += (size_t) sprintf (buf + q->out_len, "%s%s\n", prefix, text);
  return 0;
}

static int
fail (struct avm_qga *q, avm_error_t *err, int code, const char *what)
{
  q->step = QGA_FAILED;
  return avm_error_fail (err, code, "guest agent %s: %s", q->name, what);
}

/* One reply line (the sentinel already seen).  */
static int
on_line (struct avm_qga *q, const char *line, size_t len, avm_error_t *err)
{
  json_error_t jerr;
  _cleanup_json_ json_t *msg = json_loadb (line, len, 0, &jerr);
  if (!msg || !json_is_object (msg))
    return fail (q, err, EPROTO, "a reply that is not a JSON object");
  json_t *error = json_object_get (msg, "error");
  if (error)
    {
      const char *cls = json_string_value (json_object_get (error, "class")) ?: "?";
      const char *desc = json_string_value (json_object_get (error, "desc")) ?: "?";
      static const char *const cmds[] = {
        [QGA_SYNC] = "guest-sync-delimited", [QGA_GET_TIME] = "guest-get-time", [QGA_SET_TIME] = "guest-set-time"
      };
      const char *cmd = q->step <= QGA_SET_TIME ? cmds[q->step] : "?";
      q->step = QGA_FAILED;
      return avm_error_fail (err, EREMOTEIO, "guest agent %s: %s: %s: %s", q->name, cmd, cls, desc);
    }
  json_t *ret = json_object_get (msg, "return");
  if (!ret)
    return fail (q, err, EPROTO, "a reply without \"return\"");
  switch (q->step)
    {
    case QGA_SYNC:
      if (!json_is_integer (ret) || json_integer_value (ret) != q->sync_id)
        {
          /* A stale answer to an earlier client's sync: wait for ours.  */
          q->synced = false;
          return 0;
        }
      q->step = QGA_GET_TIME;
      return queue (q, "", json_pack ("{s:s}", "execute", "guest-get-time"), err);
    case QGA_GET_TIME:
      if (!json_is_integer (ret))
        return fail (q, err, EPROTO, "guest-get-time: the time is not an integer");
      q->behind_ns = realtime_ns () - (int64_t) json_integer_value (ret);
      q->behind_known = true;
      q->step = QGA_SET_TIME;
      /* The host's time as the request is written (queue, then flush).  */
      return queue (q, "",
                    json_pack ("{s:s, s:{s:I}}", "execute", "guest-set-time", "arguments", "time",
                               (json_int_t) realtime_ns ()),
                    err);
    case QGA_SET_TIME:
      q->step = QGA_DONE;
      return 1;
    default:
      return 0;
    }
}

static int
on_input (struct avm_qga *q, const char *buf, size_t n, avm_error_t *err)
{
  for (size_t i = 0; i < n; i++)
    {
      unsigned char ch = (unsigned char) buf[i];
      if (ch == 0xff)
        {
          /* The sentinel: what came before is stale.  */
          q->synced = q->step == QGA_SYNC;
          q->in_len = 0;
          continue;
        }
      if (!q->synced)
        continue;
      if (ch == '\n')
        {
          size_t len = q->in_len;
          q->in_len = 0;
          while (len > 0 && (q->in[len - 1] == '\r' || q->in[len - 1] == ' '))
            len--;
          if (len == 0)
            continue;
          int r = on_line (q, q->in, len, err);
          if (r != 0)
            return r;
          continue;
        }
      if (q->in_len >= QGA_MAX_LINE)
        return fail (q, err, EPROTO, "a reply line longer than 64 KiB");
      if (!q->in && !(q->in = malloc (QGA_MAX_LINE)))
        return avm_error_sys (err, ENOMEM, "guest agent %s", q->name);
      q->in[q->in_len++] = (char) ch;
    }
  return 0;
}

int
avm_qga_process (struct avm_qga *q, avm_error_t *err)
{
  if (q->step == QGA_DONE)
    return 1;
  if (q->step == QGA_FAILED)
    return avm_error_fail (err, EPROTO, "guest agent %s: the exchange failed before", q->name);
  while (q->out_off < q->out_len)
    {
      ssize_t w = send (q->fd, q->out + q->out_off, q->out_len - q->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      if (w < 0)
        {
          q->step = QGA_FAILED;
          return avm_error_sys (err, errno == EPIPE ? ECONNRESET : errno, "guest agent %s", q->name);
        }
      q->out_off += (size_t) w;
    }
  char buf[4096];
  for (;;)
    {
      ssize_t n = recv (q->fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
      if (n <= 0)
        {
          q->step = QGA_FAILED;
          return avm_error_fail (err, ECONNRESET, "guest agent %s: the socket closed%s%s", q->name, n < 0 ? ": " : "",
                                 n < 0 ? strerror (errno) : "");
        }
      int r = on_input (q, buf, (size_t) n, err);
      if (r != 0)
        return r;
      /* A request queued by a reply goes out at once.  */
      if (q->out_off < q->out_len)
        return avm_qga_process (q, err);
    }
}

int
avm_qga_clock_new (int fd, const char *name, int64_t sync_id, struct avm_qga **out, avm_error_t *err)
{
  _cleanup_close_ int owned = fd;
  *out = NULL;
  int fl = fcntl (fd, F_GETFL);
  if (fl < 0 || fcntl (fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return avm_error_sys (err, errno, "guest agent %s", name);
  struct avm_qga *q = calloc (1, sizeof *q);
  if (!q || !(q->name = strdup (name)))
    {
      free (q);
      return avm_error_sys (err, ENOMEM, "guest agent %s", name);
    }
  q->fd = steal_fd (&owned);
  q->sync_id = sync_id;
  int r
      = queue (q, "\xff",
               json_pack ("{s:s, s:{s:I}}", "execute", "guest-sync-delimited", "arguments", "id", (json_int_t) sync_id),
               err);
  if (r < 0)
    {
      avm_qga_close (q);
      return r;
    }
  *out = q;
  return 0;
}

int
avm_qga_clock_connect (const char *path, int64_t sync_id, struct avm_qga **out, avm_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  *out = NULL;
  if (strlen (path) >= sizeof sa.sun_path)
    return avm_error_fail (err, ENAMETOOLONG, "guest agent %s: the path is too long", path);
  strcpy (sa.sun_path, path);
  _cleanup_close_ int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    return avm_error_sys (err, errno, "guest agent %s: cannot connect", path);
  return avm_qga_clock_new (steal_fd (&fd), path, sync_id, out, err);
}

int
avm_qga_fd (const struct avm_qga *q)
{
  return q->fd;
}

uint32_t
avm_qga_io_events (const struct avm_qga *q)
{
  if (q->step == QGA_DONE || q->step == QGA_FAILED)
    return 0;
  return EPOLLIN | (q->out_off < q->out_len ? EPOLLOUT : 0);
}

const char *
avm_qga_step (const struct avm_qga *q)
{
  static const char *const names[] = { [QGA_SYNC] = "sync",
                                       [QGA_GET_TIME] = "get-time",
                                       [QGA_SET_TIME] = "set-time",
                                       [QGA_DONE] = "done",
                                       [QGA_FAILED] = "failed" };
  return names[q->step];
}

int64_t
avm_qga_behind_ns (const struct avm_qga *q, bool *known)
{
  *known = q->behind_known;
  return q->behind_ns;
}

void
avm_qga_close (struct avm_qga *q)
{
  if (!q)
    return;
  if (q->fd >= 0)
    close (q->fd);
  free (q->name);
  free (q->out);
  free (q->in);
  free (q);
}

void
avm_qga_closep (struct avm_qga **q)
{
  avm_qga_close (*q);
  *q = NULL;
}
