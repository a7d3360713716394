/* SPDX-License-Identifier: Apache-2.0 */
#include "supervise/notify.h"
#include "util/cleanup.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

int
avm_notify_addr (const char *value, struct sockaddr_un *sa)
{
  size_t len = value ? strlen (value) : 0;
  memset (sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (len < 2 || len >= sizeof sa->sun_path || (value[0] != '/' && value[0] != '@'))
    return -EINVAL;
  memcpy (sa->sun_path, value, len);
  if (value[0] == '@')
    {
      sa->sun_path[0] = '\0';
      return (int) (offsetof (struct sockaddr_un, sun_path) + len);
    }
  return (int) (offsetof (struct sockaddr_un, sun_path) + len + 1);
}

int
avm_notifier_open (struct avm_notifier *n, avm_error_t *err)
{
  const char *sock = getenv ("NOTIFY_SOCKET");
  const char *wd = getenv ("WATCHDOG_USEC"), *wdpid = getenv ("WATCHDOG_PID");
  struct sockaddr_un sa;

  *n = (struct avm_notifier) { .fd = -1 };
  if (wd && (!wdpid || !*wdpid || (pid_t) strtol (wdpid, NULL, 10) == getpid ()))
    n->watchdog_usec = strtoull (wd, NULL, 10);
  if (sock && *sock)
    {
      if (avm_notify_addr (sock, &sa) < 0)
        return avm_error_input (err, "NOTIFY_SOCKET=%s: not a unix socket path or @abstract name", sock);
      n->fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (n->fd < 0)
        return avm_error_sys (err, errno, "NOTIFY_SOCKET: socket");
      n->socket = strdup (sock);
    }
  unsetenv ("NOTIFY_SOCKET");
  unsetenv ("WATCHDOG_USEC");
  unsetenv ("WATCHDOG_PID");
  return 0;
}

void
avm_notifier_close (struct avm_notifier *n)
{
  if (n->fd >= 0)
    close (n->fd);
  free (n->socket);
  *n = (struct avm_notifier) { .fd = -1 };
}

int
avm_notify (struct avm_notifier *n, const char *fmt, ...)
{
  struct sockaddr_un sa;
  _cleanup_free_ char *msg = NULL;
  va_list ap;
  int len, salen;

  if (!n || n->fd < 0)
    return 0;
  va_start (ap, fmt);
  len = vasprintf (&msg, fmt, ap);
  va_end (ap);
  if (len < 0)
    return -ENOMEM;
  if ((salen = avm_notify_addr (n->socket, &sa)) < 0)
    return salen;
  if (sendto (n->fd, msg, len, MSG_NOSIGNAL, (struct sockaddr *) &sa, salen) < 0)
    return -errno;
  return 0;
}

int
avm_notify_listen (const char *path, int *fd, avm_error_t *err)
{
  struct sockaddr_un sa;
  int salen = avm_notify_addr (path, &sa), one = 1;
  if (salen < 0 || path[0] != '/')
    return avm_error_input (err, "%s: notify socket path too long", path);
  _cleanup_close_ int s = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0)
    return avm_error_sys (err, errno, "%s: socket", path);
  struct stat st;
  if (lstat (path, &st) == 0 && S_ISSOCK (st.st_mode))
    unlink (path);
  mode_t old = umask (0177);
  int r = bind (s, (struct sockaddr *) &sa, salen);
  umask (old);
  if (r < 0)
    return avm_error_sys (err, errno, "%s: bind", path);
  (void) setsockopt (s, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
  *fd = steal_fd (&s);
  return 0;
}

int
avm_notify_receive (int fd, bool *ready, char **status)
{
  char buf[4096];
  for (;;)
    {
      ssize_t n = recv (fd, buf, sizeof buf - 1, MSG_DONTWAIT);
      if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
      buf[n] = '\0';
      for (char *line = buf, *next; line && *line; line = next)
        {
          next = strchr (line, '\n');
          if (next)
            *next++ = '\0';
          if (streq (line, "READY=1"))
            *ready = true;
          else if (strncmp (line, "STATUS=", 7) == 0 && status)
            {
              free (*status);
              *status = strdup (line + 7);
            }
        }
    }
}
