/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QMP client: creating a client, connecting it (to a socket path, or on a
 * descriptor already connected), the handshake (QEMU's greeting, then
 * qmp_capabilities), closing, and the state accessors (ready, closed, name,
 * QEMU's version and greeting).  The engine is qmp.c; the non-blocking
 * connection attempt for event loops is in qmploop.c.
 */
#include "qemu/qmp_internal.h"
#include "util/deadline.h"
#include "util/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Handshake.  */

static void
caps_reply (void *data, json_t *ret, json_t *error)
{
  struct avm_qmp *q = data;

  /* (NULL, NULL): the connection closed or failed, or the client is being
     freed; the state already says so.  */
  if (ret)
    {
      if (q->state == QMP_NEGOTIATING)
        q->state = QMP_READY;
    }
  else if (error)
    {
      avm_error_t e = NULL;
      qmp_reply_error ("qmp_capabilities", error, &e);
      qmp_fail_conn (q, e ? e->code : EPROTO, false, "%s", e ? e->msg : "qmp_capabilities failed");
      avm_error_free (e);
    }
}

int
qmp_handle_greeting (struct avm_qmp *q, json_t *msg, const char *line, size_t len)
{
  json_t *qmp = json_object_get (msg, "QMP");
  json_t *ver = json_object_get (qmp, "version");
  json_t *qemu = json_object_get (ver, "qemu");
  json_t *pkg = json_object_get (ver, "package");
  json_t *num[3]
      = { json_object_get (qemu, "major"), json_object_get (qemu, "minor"), json_object_get (qemu, "micro") };
  int v[3];

  if (!json_is_object (qmp))
    return qmp_protocol_error (q, "expected the QMP greeting", line, len);
  for (int i = 0; i < 3; i++)
    {
      if (!json_is_integer (num[i]) || json_integer_value (num[i]) < 0 || json_integer_value (num[i]) > 99999)
        return qmp_protocol_error (q, "greeting without a valid QEMU version", line, len);
      v[i] = (int) json_integer_value (num[i]);
    }
  if (pkg && !json_is_string (pkg))
    return qmp_protocol_error (q, "greeting with a package that is not a string", line, len);

  q->major = v[0];
  q->minor = v[1];
  q->micro = v[2];
  snprintf (q->version, sizeof q->version, "%d.%d.%d", v[0], v[1], v[2]);
  if (pkg)
    {
      /* Older QEMU sent " (Debian 1:2.8+dfsg-6)".  */
      const char *s = json_string_value (pkg), *e = s + json_string_length (pkg);
      while (s < e && (*s == ' ' || *s == '('))
        s++;
      while (e > s && (e[-1] == ' ' || e[-1] == ')'))
        e--;
      if (e > s)
        {
          q->package = qmp_printable (s, e - s, 256);
          if (!q->package)
            return qmp_fail_conn (q, ENOMEM, true, "reading the greeting");
        }
    }
  q->greeting = json_incref (msg);
  q->state = QMP_NEGOTIATING;
  avm_error_t e = NULL;
  int r = qmp_enqueue (q, "qmp_capabilities", NULL, -1, caps_reply, q, NULL, &e);
  if (r < 0)
    {
      qmp_fail_conn (q, -r, false, "%s", e ? e->msg : "cannot send qmp_capabilities");
      avm_error_free (e);
      return q->fail_code;
    }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Connection.  */

int
avm_qmp_new (int fd, const char *name, struct avm_qmp **out, avm_error_t *err)
{
  _cleanup_close_ int owned = fd;
  struct avm_qmp *q;

  *out = NULL;
  if (!name)
    name = "(unnamed)";
  if (fd >= 0)
    {
      int fl = fcntl (fd, F_GETFL);
      if (fl < 0 || fcntl (fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return avm_error_sys (err, errno, "QMP socket %s", name);
    }
  q = calloc (1, sizeof *q);
  if (!q || !(q->name = strdup (name)))
    {
      free (q);
      return avm_error_sys (err, ENOMEM, "QMP socket %s", name);
    }
  q->fd = steal_fd (&owned);
  q->in.max_line = AVM_QMP_MAX_LINE;
  q->state = QMP_GREETING;
  q->next_id = 1;
  q->pass_fd = -1;
  *out = q;
  return 0;
}

static bool
ready_done (struct avm_qmp *q, void *arg)
{
  return q->state == QMP_READY;
}

static int
handshake (struct avm_qmp *q, long long deadline, int timeout_ms, avm_error_t *err)
{
  int r = qmp_wait_for (q, ready_done, NULL, deadline);

  if (r == 0)
    return 0;
  if (q->state == QMP_FAILED)
    return qmp_failed_error (q, err);
  if (q->state == QMP_CLOSED)
    return qmp_closed_error (q, q->closed_in == QMP_GREETING ? " before the greeting" : " during %s",
                             "capabilities negotiation", err);
  if (q->state == QMP_GREETING)
    return avm_error_fail (err, ETIMEDOUT,
                           "QMP socket %s: no greeting from QEMU within %d ms (is another client connected?)", q->name,
                           timeout_ms);
  return avm_error_fail (err, ETIMEDOUT, "QMP socket %s: no reply to qmp_capabilities within %d ms", q->name,
                         timeout_ms);
}

static int
connect_fd_until (int fd, const char *name, long long deadline, int timeout_ms, struct avm_qmp **out, avm_error_t *err)
{
  struct avm_qmp *q = NULL;
  int r = avm_qmp_new (fd, name, &q, err);

  if (r < 0)
    return r;
  r = handshake (q, deadline, timeout_ms, err);
  if (r < 0)
    {
      avm_qmp_close (q);
      return r;
    }
  *out = q;
  return 0;
}

int
avm_qmp_connect_fd (int fd, const char *name, int timeout_ms, struct avm_qmp **out, avm_error_t *err)
{
  *out = NULL;
  return connect_fd_until (fd, name, avm_deadline_after (timeout_ms), timeout_ms, out, err);
}

/* Wait for a non-blocking connect that returned EINPROGRESS.  0 or errno.  */
static int
finish_connect (int fd, long long deadline)
{
  struct pollfd pfd = { .fd = fd, .events = POLLOUT };
  int e = 0;
  socklen_t elen = sizeof e;

  for (;;)
    {
      int r = poll (&pfd, 1, avm_time_left (deadline));
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return errno;
      if (r == 0)
        return ETIMEDOUT;
      break;
    }
  if (getsockopt (fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0)
    return errno;
  return e;
}

int
avm_qmp_connect (const char *socket_path, int timeout_ms, struct avm_qmp **out, avm_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  long long deadline = avm_deadline_after (timeout_ms);
  int delay = 5;

  *out = NULL;
  if (strlen (socket_path) >= sizeof sa.sun_path)
    return avm_error_fail (err, ENAMETOOLONG, "QMP socket path %s is too long (at most %zu bytes)", socket_path,
                           sizeof sa.sun_path - 1);
  strcpy (sa.sun_path, socket_path);

  for (;;)
    {
      _cleanup_close_ int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      int e = 0;

      if (fd < 0)
        return avm_error_sys (err, errno, "cannot create a socket for QMP socket %s", socket_path);
      if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
        e = errno == EINPROGRESS ? finish_connect (fd, deadline) : errno;
      if (e == 0)
        return connect_fd_until (steal_fd (&fd), socket_path, deadline, timeout_ms, out, err);
      /* A regular file or a directory is refused too: not worth waiting for.  */
      struct stat st;
      if (e == ECONNREFUSED && stat (socket_path, &st) == 0 && !S_ISSOCK (st.st_mode))
        return avm_error_fail (err, ENOTSOCK, "QMP socket %s is not a socket", socket_path);
      /* Not there yet, or not listening yet (QEMU starting), or the
         backlog is full: retry.  */
      if (e != ENOENT && e != ECONNREFUSED && e != EAGAIN && e != EINTR && e != ETIMEDOUT)
        return avm_error_sys (err, e, "cannot connect to QMP socket %s", socket_path);
      int left = avm_time_left (deadline);
      if (left == 0)
        return avm_error_fail (err, ETIMEDOUT, "cannot connect to QMP socket %s within %d ms: %s", socket_path,
                               timeout_ms, strerror (e));
      int ms = left >= 0 && left < delay ? left : delay;
      struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
      nanosleep (&ts, NULL);
      if (delay < 100)
        delay *= 2;
    }
}

void
avm_qmp_close (struct avm_qmp *q)
{
  if (!q)
    return;
  if (q->state != QMP_FAILED)
    q->state = QMP_CLOSED;
  qmp_fail_pending (q);
  qmp_drop_pass_fd (q);
  if (q->fd >= 0)
    close (q->fd);
  json_decref (q->greeting);
  json_decref (q->queue);
  free (q->package);
  avm_linebuf_free (&q->in);
  free (q->wbuf);
  free (q->fail_msg);
  free (q->name);
  free (q);
}

void
avm_qmp_closep (struct avm_qmp **q)
{
  avm_qmp_close (*q);
  *q = NULL;
}

/* ------------------------------------------------------------------ */
/* State.  */

bool
avm_qmp_is_ready (const struct avm_qmp *q)
{
  return q->state == QMP_READY;
}

bool
avm_qmp_is_closed (const struct avm_qmp *q)
{
  return q->state == QMP_CLOSED;
}

const char *
avm_qmp_name (const struct avm_qmp *q)
{
  return q->name;
}

const char *
avm_qmp_qemu_version (const struct avm_qmp *q)
{
  return q->version;
}

void
avm_qmp_qemu_version_numbers (const struct avm_qmp *q, int *major, int *minor, int *micro)
{
  if (major)
    *major = q->major;
  if (minor)
    *minor = q->minor;
  if (micro)
    *micro = q->micro;
}

const char *
avm_qmp_qemu_package (const struct avm_qmp *q)
{
  return q->package;
}

json_t *
avm_qmp_greeting (const struct avm_qmp *q)
{
  return q->greeting;
}
