/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QMP from an event loop (the supervisor's): one connection attempt that
 * does not wait, and the fields of the events and answers the supervisor
 * acts on, read here with the rest of the protocol (qmp.h).
 */
#include "qemu/qmp.h"
#include "util/cleanup.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

int
avm_qmp_try_connect (const char *socket_path, struct avm_qmp **out, avm_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  *out = NULL;
  if (strlen (socket_path) >= sizeof sa.sun_path)
    return avm_error_fail (err, ENAMETOOLONG, "QMP socket path %s is too long (at most %zu bytes)", socket_path,
                           sizeof sa.sun_path - 1);
  strcpy (sa.sun_path, socket_path);
  _cleanup_close_ int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return avm_error_sys (err, errno, "cannot create a socket for QMP socket %s", socket_path);
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      int e = errno;
      if (e == ENOENT || e == ECONNREFUSED || e == EAGAIN)
        return -e;
      return avm_error_sys (err, e, "cannot connect to QMP socket %s", socket_path);
    }
  return avm_qmp_new (steal_fd (&fd), socket_path, out, err);
}

struct avm_qmp_shutdown
avm_qmp_shutdown_data (json_t *data)
{
  struct avm_qmp_shutdown sd = { 0 };
  sd.guest = json_is_true (json_object_get (data, "guest"));
  sd.reason = json_string_value (json_object_get (data, "reason"));
  return sd;
}

const char *
avm_qmp_status_name (json_t *ret)
{
  return json_string_value (json_object_get (ret, "status"));
}
