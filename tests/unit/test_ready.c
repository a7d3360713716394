/* SPDX-License-Identifier: Apache-2.0 */
/* Readiness without connecting: /proc/net/unix, files. */
#include "supervise/ready.h"
#include "testutil.h"
#include "util/cleanup.h"

#include <errno.h>

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

Test (ready, many_paths_in_one_pass)
{
  /* A host's table: many sockets, abstract ones (@), unnamed ones, a path
     with a space, trailing blanks; one pass answers for every path.  */
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&text, &len);
  cr_assert (f);
  fputs ("Num       RefCount Protocol Flags    Type St Inode Path\n", f);
  for (int i = 0; i < 500; i++)
    fprintf (f, "00000000%08x: 00000002 00000000 %08x 0001 01 %d %s\n", i, i % 3 ? 0x10000 : 0, 20000 + i,
             i % 5 == 0   ? ""
             : i % 5 == 1 ? "@/org/freedesktop/abstract"
                          : "/run/user/1000/bus");
  fputs ("0000000000000000: 00000002 00000000 00010000 0001 01 9 /run/avm/1/h1.sock\n", f);
  fputs ("0000000000000000: 00000002 00000000 00000000 0001 01 10 /run/avm/1/h2.sock\n", f);
  fputs ("0000000000000000: 00000002 00000000 00010000 0001 01 11 /real/avm/1/h3.sock   \n", f);
  fputs ("0000000000000000: 00000002 00000000 00010000 0001 01 12 /run/avm/1/with space.sock", f);
  fclose (f);
  const char *paths[]
      = { "/run/avm/1/h1.sock",         "/run/avm/1/h2.sock", "/var/avm/1/h3.sock",        "/real/avm/1/h3.sock", NULL,
          "/run/avm/1/with space.sock", "/run/avm/1/h1",      "@/org/freedesktop/abstract" };
  bool found[8] = { false };
  avm_unix_listening_set (text, paths, 8, found);
  cr_assert (found[0], "listening");
  cr_assert (!found[1], "bound, not listening");
  cr_assert (!found[2]);
  cr_assert (found[3], "trailing blanks are not part of the path");
  cr_assert (!found[4]);
  cr_assert (found[5], "a path with a space, last line without a newline");
  cr_assert (!found[6], "a prefix is not the path");
  cr_assert (found[7], "abstract sockets are listed with @");
  free (text);
}

Test (ready, canonical_path)
{
  char *dir = tu_tmpdir (), *link = NULL, *via = NULL, *real = NULL, *out = NULL;
  cr_assert (asprintf (&link, "%s/link", dir) > 0);
  cr_assert_eq (symlink (dir, link), 0);
  cr_assert (asprintf (&via, "%s/link/x.sock", dir) > 0);
  _cleanup_free_ char *rdir = realpath (dir, NULL);
  cr_assert (asprintf (&real, "%s/x.sock", rdir) > 0);
  cr_assert_eq (avm_ready_canonical_path (via, &out), 0);
  cr_assert_str_eq (out, real);
  free (out);
  cr_assert_eq (avm_ready_canonical_path (real, &out), 0);
  cr_assert_null (out, "already canonical");
  free (via);
  cr_assert (asprintf (&via, "%s/missing/x.sock", dir) > 0);
  cr_assert_eq (avm_ready_canonical_path (via, &out), -ENOENT);
  tu_rmtree (dir);
  free (dir);
  free (link);
  free (via);
  free (real);
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
