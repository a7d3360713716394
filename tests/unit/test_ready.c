/* SPDX-License-Identifier: Apache-2.0 */
/* Readiness without connecting: /proc/net/unix, files. */
#include "supervise/ready.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int
bind_unix (const char *path, bool do_listen)
{
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  snprintf (a.sun_path, sizeof a.sun_path, "%s", path);
  cr_assert_eq (bind (fd, (struct sockaddr *) &a, sizeof a), 0);
  if (do_listen)
    cr_assert_eq (listen (fd, 1), 0);
  return fd;
}

Test (ready, listening_socket_is_seen_without_connecting)
{
  char *dir = tu_tmpdir (), *s1 = NULL, *s2 = NULL, *s3 = NULL;
  cr_assert (asprintf (&s1, "%s/listening.sock", dir) > 0 && asprintf (&s2, "%s/bound.sock", dir) > 0
             && asprintf (&s3, "%s/absent.sock", dir) > 0);
  cr_assert (!avm_unix_listening (s1));
  int a = bind_unix (s1, true), b = bind_unix (s2, false);
  cr_assert (avm_unix_listening (s1), "a listening socket must be ready");
  cr_assert (!avm_unix_listening (s2), "bound but not listening is not ready");
  cr_assert (!avm_unix_listening (s3));
  /* No connection was made: nothing is waiting to be accepted.  */
  struct pollfd pfd = { .fd = a, .events = POLLIN };
  cr_assert_eq (poll (&pfd, 1, 0), 0, "the readiness check connected to the socket");
  close (a);
  cr_assert (!avm_unix_listening (s1), "a closed socket is not ready any more");
  close (b);
  tu_rmtree (dir);
  free (dir);
  free (s1);
  free (s2);
  free (s3);
}

Test (ready, proc_net_unix_parsing)
{
  const char *text = "Num       RefCount Protocol Flags    Type St Inode Path\n"
                     "0000000000000000: 00000002 00000000 00010000 0001 01 12345 /run/avm/1/gpu.sock\n"
                     "0000000000000000: 00000002 00000000 00000000 0001 01 12346 /run/avm/1/other.sock\n"
                     "0000000000000000: 00000003 00000000 00000000 0001 03 12347\n"
                     "0000000000000000: 00000002 00000000 00010000 0001 01 12348 /run/avm/1/gpu.sock.bak\n";
  cr_assert (avm_unix_listening_in (text, "/run/avm/1/gpu.sock"));
  cr_assert (!avm_unix_listening_in (text, "/run/avm/1/other.sock"));
  cr_assert (!avm_unix_listening_in (text, "/run/avm/1/gpu"));
  cr_assert (!avm_unix_listening_in ("garbage\nmore garbage", "/x"));
  cr_assert (!avm_unix_listening_in ("", "/x"));
}

Test (ready, files)
{
  char *dir = tu_tmpdir (), *p = NULL;
  cr_assert (asprintf (&p, "%s/ready", dir) > 0);
  cr_assert (!avm_file_ready (p));
  free (tu_write (dir, "ready", "1"));
  cr_assert (avm_file_ready (p));
  tu_rmtree (dir);
  free (dir);
  free (p);
}
