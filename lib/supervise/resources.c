/* SPDX-License-Identifier: Apache-2.0 */
#include "supervise/resources.h"
#include "util/cleanup.h"
#include "util/analyzer.h"
#include "util/fs.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define VSOCK_UNAVAILABLE                                                                                              \
  "AF_VSOCK is not available (load vhost_vsock, pass /dev/vhost-vsock to the container, or use the vhost-user vsock "  \
  "option)"

struct entry
{
  struct avm_resource_fd pub;
  char *name;
  char *resource;
  char *path;
  bool remove; /* unlink PATH on free while it is still DEV/INO */
  dev_t dev;
  ino_t ino;
};

struct avm_resources
{
  struct entry *v;
  size_t n, alloc;
};

/* What one resource definition says.  */
struct def
{
  const char *name;
  const char *type;
  const char *path;
  long long port;
  const struct avm_plan_resource *res;
};

void
avm_resources_free (struct avm_resources *r)
{
  if (!r)
    return;
  /* Reverse creation order.  */
  for (size_t i = r->n; i-- > 0;)
    {
      struct entry *e = &r->v[i];
      if (e->pub.fd >= 0)
        close (e->pub.fd);
      if (e->remove && e->path)
        {
          struct stat st;
          if (lstat (e->path, &st) == 0 && st.st_dev == e->dev && st.st_ino == e->ino)
            unlink (e->path);
        }
      free (e->name);
      free (e->resource);
      free (e->path);
    }
  free (r->v);
  free (r);
}

size_t
avm_resources_count (const struct avm_resources *r)
{
  return r ? r->n : 0;
}

const struct avm_resource_fd *
avm_resources_at (const struct avm_resources *r, size_t i)
{
  return r && i < r->n ? &r->v[i].pub : NULL;
}

const struct avm_resource_fd *
avm_resources_find (const struct avm_resources *r, const char *name)
{
  if (!r || !name)
    return NULL;
  for (size_t i = 0; i < r->n; i++)
    if (streq (r->v[i].name, name))
      return &r->v[i].pub;
  return NULL;
}

int
avm_resources_fd (const struct avm_resources *r, const char *name)
{
  const struct avm_resource_fd *f = avm_resources_find (r, name);
  return f ? f->fd : -1;
}

int
avm_resources_lookup (void *data, const char *name)
{
  return avm_resources_fd (data, name);
}

/* Record descriptor FD (owned from now on, closed on failure; -1 for
   none) of resource D under NAME = D->name + SUFFIX.  PATH is copied.  CREATED, when not NULL,
   is PATH's inode, created here and to be unlinked on free; on failure the
   caller removes it.  */
/* make lint: false positive: the strings are stored in R->v[R->n] and freed
   with R; the analyzer does not follow the reallocated array.  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-malloc-leak")
static int
add_fd (struct avm_resources *r, const struct def *d, const char *suffix, const char *path, int port, int fd,
        const struct stat *created, avm_error_t *err)
{
  _cleanup_close_ int owned = fd;

  if (r->n == r->alloc)
    {
      size_t alloc = r->alloc ? r->alloc * 2 : 16;
      struct entry *v = realloc (r->v, alloc * sizeof *v);
      if (!v)
        return avm_error_sys (err, ENOMEM, "resource %s", d->name);
      r->v = v;
      r->alloc = alloc;
    }
  struct entry *e = &r->v[r->n];
  memset (e, 0, sizeof *e);
  if (asprintf (&e->name, "%s%s", d->name, suffix) < 0)
    e->name = NULL;
  e->resource = strdup (d->name);
  e->path = path ? strdup (path) : NULL;
  if (!e->name || !e->resource || (path && !e->path))
    {
      free (e->name);
      free (e->resource);
      free (e->path);
      return avm_error_sys (err, ENOMEM, "resource %s", d->name);
    }
  e->pub.name = e->name;
  e->pub.resource = e->resource;
  e->pub.type = d->type;
  e->pub.path = e->path;
  e->pub.port = port;
  e->pub.res = d->res;
  e->pub.fd = steal_fd (&owned);
  if (created && path)
    {
      e->remove = true;
      e->dev = created->st_dev;
      e->ino = created->st_ino;
    }
  r->n++;
  return 0;
}
AVM_ANALYZER_IGNORE_END

/* Create or reuse the FIFO PATH and open it read-write.  */
/* make lint: false positive: PATH comes from asprintf (never NULL once it
   succeeded), which GCC 12's analyzer does not model.  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-null-argument")
static int
make_fifo (struct avm_resources *r, const struct def *d, const char *path, const char *suffix, bool nonblock,
           avm_error_t *err)
{
  _cleanup_close_ int fd = -1;
  struct stat st;
  bool made = false;

  if (mkfifo (path, 0600) == 0)
    made = true;
  else if (errno != EEXIST)
    return avm_error_sys (err, errno, "resource %s: cannot create FIFO %s", d->name, path);
  else if (lstat (path, &st) < 0)
    return avm_error_sys (err, errno, "resource %s: cannot stat %s", d->name, path);
  else if (!S_ISFIFO (st.st_mode))
    return avm_error_fail (err, EEXIST, "resource %s: %s exists and is not a FIFO", d->name, path);

  /* O_RDWR never blocks on a FIFO (Linux), and keeps both a reader and a
     writer: QEMU's open for writing does not block, its writes do not
     SIGPIPE, and whatever it writes stays readable here.  */
  fd = open (path, O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    {
      int e = errno;
      if (made)
        unlink (path);
      return avm_error_sys (err, e, "resource %s: cannot open FIFO %s", d->name, path);
    }
  if (fstat (fd, &st) < 0 || !S_ISFIFO (st.st_mode))
    {
      if (made)
        unlink (path);
      return avm_error_fail (err, EEXIST, "resource %s: %s is not a FIFO", d->name, path);
    }
  if (made && fchmod (fd, 0600) < 0)
    {
      int e = errno;
      unlink (path);
      return avm_error_sys (err, e, "resource %s: cannot chmod %s", d->name, path);
    }
  if (!made)
    {
      /* Drain what a previous run left in a FIFO someone still holds.  */
      char buf[4096];
      while (read (fd, buf, sizeof buf) > 0)
        ;
    }
  if (!nonblock && fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK) < 0)
    {
      int e = errno;
      if (made)
        unlink (path);
      return avm_error_sys (err, e, "resource %s: %s", d->name, path);
    }
  int rr = add_fd (r, d, suffix, path, -1, steal_fd (&fd), made ? &st : NULL, err);
  if (rr < 0 && made)
    unlink (path);
  return rr;
}
AVM_ANALYZER_IGNORE_END

static int
create_fifo (struct avm_resources *r, const struct def *d, avm_error_t *err)
{
  return make_fifo (r, d, d->path, "", d->res->log, err);
}

static int
create_fifo_pair (struct avm_resources *r, const struct def *d, avm_error_t *err)
{
  const char *const *ends = avm_resource_ends (AVM_RES_FIFO_PAIR);
  for (size_t i = 0; ends[i]; i++)
    {
      _cleanup_free_ char *p = NULL;
      int rr;
      if (asprintf (&p, "%s%s", d->path, ends[i]) < 0)
        return avm_error_sys (err, ENOMEM, "resource %s", d->name);
      if ((rr = make_fifo (r, d, p, ends[i], false, err)) < 0)
        return rr;
    }
  return 0;
}

static int
create_pipe (struct avm_resources *r, const struct def *d, avm_error_t *err)
{
  int fds[2], rr;
  if (pipe2 (fds, O_CLOEXEC) < 0)
    return avm_error_sys (err, errno, "resource %s: cannot create a pipe", d->name);
  const char *const *ends = avm_resource_ends (AVM_RES_PIPE);
  if ((rr = add_fd (r, d, ends[0], NULL, -1, fds[0], NULL, err)) < 0)
    {
      close (fds[1]);
      return rr;
    }
  return add_fd (r, d, ends[1], NULL, -1, fds[1], NULL, err);
}

static int
create_unix (struct avm_resources *r, const struct def *d, avm_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  _cleanup_close_ int fd = -1;
  struct stat st;
  int rr;

  if (strlen (d->path) >= sizeof sa.sun_path)
    return avm_error_input (err, "resource %s: socket path %s is longer than %zu bytes", d->name, d->path,
                            sizeof sa.sun_path - 1);
  strcpy (sa.sun_path, d->path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return avm_error_sys (err, errno, "resource %s: cannot create a unix socket", d->name);

  if (lstat (d->path, &st) == 0)
    {
      if (!S_ISSOCK (st.st_mode))
        return avm_error_fail (err, EEXIST, "resource %s: %s exists and is not a socket", d->name, d->path);
      /* A socket someone still accepts on is not stale.  */
      _cleanup_close_ int probe = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (probe >= 0 && (connect (probe, (struct sockaddr *) &sa, sizeof sa) == 0 || errno == EAGAIN))
        return avm_error_fail (err, EADDRINUSE, "resource %s: %s is in use by another process", d->name, d->path);
      if (unlink (d->path) < 0 && errno != ENOENT)
        return avm_error_sys (err, errno, "resource %s: cannot remove the stale socket %s", d->name, d->path);
    }
  else if (errno != ENOENT)
    return avm_error_sys (err, errno, "resource %s: cannot stat %s", d->name, d->path);

  if (bind (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    return avm_error_sys (err, errno, "resource %s: cannot bind %s", d->name, d->path);
  if (chmod (d->path, 0600) < 0)
    {
      rr = avm_error_sys (err, errno, "resource %s: cannot chmod %s", d->name, d->path);
      unlink (d->path);
      return rr;
    }
  if (listen (fd, SOMAXCONN) < 0 || lstat (d->path, &st) < 0)
    {
      rr = avm_error_sys (err, errno, "resource %s: cannot listen on %s", d->name, d->path);
      unlink (d->path);
      return rr;
    }
  rr = add_fd (r, d, "", d->path, -1, steal_fd (&fd), &st, err);
  if (rr < 0)
    unlink (d->path);
  return rr;
}

static int
create_vsock (struct avm_resources *r, const struct def *d, avm_error_t *err)
{
  struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = (unsigned) d->port };
  _cleanup_close_ int fd = socket (AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    {
      if (errno == EAFNOSUPPORT || errno == ENODEV)
        return avm_error_fail (err, errno, "resource %s: " VSOCK_UNAVAILABLE, d->name);
      return avm_error_sys (err, errno, "resource %s: cannot create a vsock socket", d->name);
    }
  if (bind (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      if (errno == EADDRINUSE)
        return avm_error_fail (err, EADDRINUSE, "resource %s: vsock port %lld is already in use", d->name, d->port);
      if (errno == ENODEV || errno == EAFNOSUPPORT)
        return avm_error_fail (err, errno, "resource %s: " VSOCK_UNAVAILABLE, d->name);
      return avm_error_sys (err, errno, "resource %s: cannot bind vsock port %lld", d->name, d->port);
    }
  if (listen (fd, SOMAXCONN) < 0)
    return avm_error_sys (err, errno, "resource %s: cannot listen on vsock port %lld", d->name, d->port);
  return add_fd (r, d, "", NULL, (int) d->port, steal_fd (&fd), NULL, err);
}

static int
create_tcp (struct avm_resources *r, const struct def *d, avm_error_t *err)
{
  const char *address = d->res->address ? d->res->address : "127.0.0.1";
  struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                            .ai_family = AF_UNSPEC,
                            .ai_socktype = SOCK_STREAM };
  struct addrinfo *ai = NULL;
  char portstr[16], shown[INET6_ADDRSTRLEN + 16];
  _cleanup_close_ int fd = -1;
  int one = 1, g;

  snprintf (portstr, sizeof portstr, "%lld", d->port);
  snprintf (shown, sizeof shown, strchr (address, ':') ? "[%s]:%lld" : "%s:%lld", address, d->port);
  g = getaddrinfo (address, portstr, &hints, &ai);
  if (g == EAI_NONAME || (g == 0 && !ai))
    return avm_error_input (err, "resource %s: address \"%s\" is not a literal IPv4 or IPv6 address", d->name, address);
  if (g != 0)
    return avm_error_fail (err, EINVAL, "resource %s: address \"%s\": %s", d->name, address, gai_strerror (g));

  fd = socket (ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0)
    {
      freeaddrinfo (ai);
      return avm_error_sys (err, errno, "resource %s: cannot create a TCP socket for %s", d->name, shown);
    }
  if (setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    {
      freeaddrinfo (ai);
      return avm_error_sys (err, errno, "resource %s: SO_REUSEADDR on %s", d->name, shown);
    }
  int br = bind (fd, ai->ai_addr, ai->ai_addrlen);
  int be = errno;
  freeaddrinfo (ai);
  if (br < 0 || listen (fd, SOMAXCONN) < 0)
    {
      if (br == 0)
        be = errno;
      if (be == EADDRINUSE)
        return avm_error_fail (err, EADDRINUSE,
                               "resource %s: %s is already in use (another instance or program listens there)", d->name,
                               shown);
      return avm_error_sys (err, be, "resource %s: cannot listen on %s", d->name, shown);
    }

  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int port = (int) d->port;
  if (getsockname (fd, (struct sockaddr *) &ss, &sl) == 0)
    port = ntohs (ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                                           : ((struct sockaddr_in *) &ss)->sin_port);
  return add_fd (r, d, "", NULL, port, steal_fd (&fd), NULL, err);
}

/* A file written by avm with the plan's CONTENT (the private D-Bus's
   configuration), mode 0600, replacing a stale one atomically; removed on
   free.  Nothing for children to inherit: it has no descriptor (-1).  */
static int
create_file (struct avm_resources *r, const struct def *d, avm_error_t *err)
{
  const char *content = d->res->content;
  struct stat st;
  int rr;
  if ((rr = avm_write_file_atomic (d->path, content, strlen (content), 0600, err)) < 0)
    return rr;
  if (lstat (d->path, &st) < 0)
    {
      rr = avm_error_sys (err, errno, "resource %s: %s", d->name, d->path);
      unlink (d->path);
      return rr;
    }
  if ((rr = add_fd (r, d, "", d->path, -1, -1, &st, err)) < 0)
    unlink (d->path);
  return rr;
}

/* A connected AF_UNIX stream pair: the helper gets NAME (one end), the
   supervisor holds the peer (NAME.peer) for the helper's whole life, so the
   helper never reads end of file: secure_env's snapshot control channel,
   sensors_simulator's WebRTC channel (run_cvd keeps the other end the same
   way, host/commands/run_cvd/launch/snapshot_control_files.cpp).  */
static int
create_socketpair (struct avm_resources *r, const struct def *d, avm_error_t *err)
{
  int sv[2];
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return avm_error_sys (err, errno, "resource %s: socketpair", d->name);
  int rr = add_fd (r, d, "", NULL, -1, sv[0], NULL, err);
  if (rr < 0)
    {
      close (sv[1]);
      return rr;
    }
  return add_fd (r, d, ".peer", NULL, -1, sv[1], NULL, err);
}

/* A directory (mkdir -p, mode 0700 for what is created), kept: helpers
   write their state and logs there.  No descriptor.  */
static int
create_directory (struct avm_resources *r, const struct def *d, avm_error_t *err)
{
  int rr = avm_mkdir_p (d->path, 0700, err);
  if (rr < 0)
    return rr;
  return add_fd (r, d, "", d->path, -1, -1, NULL, err);
}

/* A port a helper binds itself (vhal_proxy_server): nothing to create; the
   plan has already moved it with the instance.  */
static int
create_port (struct avm_resources *r, const struct def *d, avm_error_t *err)
{
  return add_fd (r, d, "", NULL, (int) d->port, -1, NULL, err);
}

/* By type (enum avm_resource_type).  */
static int (*const create[]) (struct avm_resources *r, const struct def *d, avm_error_t *err) = {
  [AVM_RES_FIFO] = create_fifo,        [AVM_RES_FIFO_PAIR] = create_fifo_pair,   [AVM_RES_PIPE] = create_pipe,
  [AVM_RES_UNIX_LISTEN] = create_unix, [AVM_RES_VSOCK_LISTEN] = create_vsock,    [AVM_RES_TCP_LISTEN] = create_tcp,
  [AVM_RES_FILE] = create_file,        [AVM_RES_SOCKETPAIR] = create_socketpair, [AVM_RES_DIRECTORY] = create_directory,
  [AVM_RES_PORT] = create_port,
};

/* (The definition was checked when it was planned: avm_plan_resource_check.)  */
static int
create_one (struct avm_resources *r, const struct avm_plan_resource *res, avm_error_t *err)
{
  struct def d = { .name = res->name, .type = res->type_name, .path = res->path, .port = res->port, .res = res };
  for (size_t k = 0; k < r->n; k++)
    if (streq (r->v[k].resource, res->name))
      return avm_error_input (err, "resource %s: defined twice", res->name);
  if ((size_t) res->type >= ARRAY_SIZE (create))
    return avm_error_input (err, "resource %s: unknown type", res->name);
  return create[res->type](r, &d, err);
}

int
avm_resources_create_plan (const struct avm_plan_resource *v, size_t n, struct avm_resources **out, avm_error_t *err)
{
  _cleanup_resources_ struct avm_resources *r = calloc (1, sizeof *r);
  int rr;

  *out = NULL;
  if (!r)
    return avm_error_sys (err, ENOMEM, "resources");
  for (size_t i = 0; i < n; i++)
    if ((rr = create_one (r, &v[i], err)) < 0)
      return rr;
  *out = steal_pointer (&r);
  return 0;
}
