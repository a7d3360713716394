/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Control socket: the server, inside the sd-event loop.  The protocol is
 * described in control_client.h, the server and its limits in control.h;
 * the blocking client is control_client.c.
 *
 * One job, one file (about 760 lines): the server's clients.  Accepting,
 * reading and framing lines, the ordered reply queue with its deferred
 * slots, writing and the idle timer all work on the same struct client and
 * its life cycle (a slot outlives its client, a client is freed only when
 * its queue is written); split, that struct and its invariants would be
 * shared through a header by files that each see only part of them.
 *
 * Server structure: one listening socket (an io source) and a list of
 * clients, each with a non-blocking socket (an io source watching EPOLLIN,
 * plus EPOLLOUT while replies wait to be written), an idle timer, an input
 * buffer holding the lines not yet handled (at most one incomplete line of
 * AVM_CONTROL_MAX_LINE bytes plus one read) and an output buffer.  Lines are
 * handled as soon as they are complete, in order, and each reply is written
 * at once as far as the socket takes it.  Each request has a slot in the
 * client's queue (struct avm_control_request): a synchronous reply fills
 * its slot at once, a deferred one when avm_control_reply() comes; the
 * queue is written out from its head as far as the slots are filled, which
 * keeps replies in request order.  A pending slot outlives its client: the
 * client's end only unhooks it (cl = NULL), and avm_control_reply() frees
 * it.  A client is "closing" once no
 * more input is wanted from it (end of input, over-long line): it is freed
 * when its output is written.  Handlers always return 0 (sd-event disables
 * a source whose handler fails); failures drop the client concerned.
 *
 * The socket file is created through its full path (bind() takes a path),
 * everything else goes through the directory descriptor and the entry name,
 * without following symbolic links: the stale-file check, the mode, the
 * device and inode recorded after bind(), and the removal at the end, which
 * only happens when the entry is still that inode.
 */
#include "supervise/control.h"
#include "util/linebuf.h"
#include "util/cleanup.h"
#include "util/analyzer.h"
#include "util/json.h"
#include "util/strfmt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BACKLOG 16
#define READ_CHUNK 16384
/* Reads per dispatch, so that one client cannot starve the loop.  */
#define MAX_READS_PER_CALL 8
#define MAX_ACCEPTS_PER_CALL 32
/* Accepting pauses this long when out of descriptors (EMFILE).  */
#define ACCEPT_RETRY_USEC (100 * 1000ULL)
#define TIMER_ACCURACY_USEC 1000ULL

struct avm_control_request
{
  struct client *cl; /* NULL once the client is gone */
  struct avm_control_request *next;
  json_t *reply; /* once done */
  bool done;
};

json_t avm_control_pending_ = { .type = JSON_NULL, .refcount = (size_t) -1 };

struct client
{
  struct avm_control *ctl;
  struct client *prev, *next;
  int fd;
  sd_event_source *io;
  sd_event_source *timer;
  struct avm_linebuf in;
  char *wbuf;
  size_t wpos, wlen, walloc; /* unwritten output is wbuf[wpos, wlen) */
  bool closing;
  struct avm_control_request *qhead, *qtail; /* replies to send, in request order */
  unsigned nqueued;
  unsigned busy; /* handling a line: avm_control_reply only fills the slot */
};

struct avm_control
{
  sd_event *event;
  sd_event_source *listen_io;
  sd_event_source *retry_timer;
  int fd;
  int dirfd;
  char *name;
  char *path;
  bool bound;
  dev_t dev;
  ino_t ino;
  avm_control_fn fn;
  void *data;
  uint64_t idle_usec;
  struct client *clients;
  unsigned nclients;
};

/* ------------------------------------------------------------------ */
/* Replies.  */

static json_t *error_reply (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

static json_t *
error_reply (const char *fmt, ...)
{
  va_list ap;
  _cleanup_free_ char *msg = NULL;

  va_start (ap, fmt);
  msg = avm_vstrdupf (fmt, ap);
  va_end (ap);
  if (!msg)
    return NULL;
  /* json_string rejects invalid UTF-8; the message then loses its details.  */
  json_t *m = json_string (msg);
  if (!m)
    m = json_string ("invalid request");
  return json_pack ("{s:b, s:o*}", "ok", 0, "error", m);
}

/* The serialized reply line (malloc'd, "\n" included), or NULL.  Falls back
   to a fixed text when REPLY is NULL (out of memory) or cannot be dumped.  */
static char *
reply_line (json_t *reply, size_t *len)
{
  _cleanup_free_ char *text = reply ? json_dumps (reply, JSON_COMPACT) : NULL;
  char *line = avm_strdupf ("%s\n", text ? text : "{\"ok\":false,\"error\":\"internal error\"}");
  if (line)
    *len = strlen (line);
  return line;
}

/* Best-effort reply on a connection that is about to be closed (rejected
   connections: the socket buffer is empty, so a short line fits).  */
static void
send_and_forget (int fd, json_t *reply)
{
  size_t len = 0;
  _cleanup_free_ char *line = reply_line (reply, &len);
  if (line)
    (void) !send (fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* ------------------------------------------------------------------ */
/* Clients.  */

/* make lint: false positive: the list head has no prev, so freeing it
   moves c->clients on; the analyzer does not keep that list invariant and
   believes avm_control_free frees the same client twice.  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-use-after-free")
static void
client_free (struct client *cl)
{
  struct avm_control *c = cl->ctl;

  sym_sd_event_source_disable_unref (cl->io);
  sym_sd_event_source_disable_unref (cl->timer);
  if (cl->fd >= 0)
    close (cl->fd);
  if (cl->prev)
    cl->prev->next = cl->next;
  else
    c->clients = cl->next;
  if (cl->next)
    cl->next->prev = cl->prev;
  c->nclients--;
  /* Filled slots go; pending ones stay with their handler, unhooked.  */
  for (struct avm_control_request *rq = cl->qhead, *next; rq; rq = next)
    {
      next = rq->next;
      if (rq->done)
        {
          json_decref (rq->reply);
          free (rq);
        }
      else
        {
          rq->cl = NULL;
          rq->next = NULL;
        }
    }
  avm_linebuf_free (&cl->in);
  free (cl->wbuf);
  free (cl);
}
AVM_ANALYZER_IGNORE_END

/* Write as much output as the socket takes.  0, or -errno when the
   connection is unusable.  */
static int
client_flush (struct client *cl)
{
  while (cl->wpos < cl->wlen)
    {
      ssize_t n = send (cl->fd, cl->wbuf + cl->wpos, cl->wlen - cl->wpos, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
          return -errno;
        }
      cl->wpos += n;
    }
  if (cl->wpos == cl->wlen)
    cl->wpos = cl->wlen = 0;
  return 0;
}

/* Queue REPLY (the reference is stolen) and write what can be written.
   -errno when the client must be dropped (out of memory, write error, more
   than AVM_CONTROL_MAX_OUTPUT bytes unread).  */
static int
client_reply (struct client *cl, json_t *reply)
{
  size_t len = 0;
  _cleanup_free_ char *line = reply_line (reply, &len);

  json_decref (reply);
  if (!line)
    return -ENOMEM;
  if (cl->wpos > 0 && cl->wlen + len > cl->walloc)
    {
      memmove (cl->wbuf, cl->wbuf + cl->wpos, cl->wlen - cl->wpos);
      cl->wlen -= cl->wpos;
      cl->wpos = 0;
    }
  if (cl->wlen + len > cl->walloc)
    {
      size_t want = cl->walloc ? cl->walloc : 4096;
      while (want < cl->wlen + len)
        want *= 2;
      char *p = realloc (cl->wbuf, want);
      if (!p)
        return -ENOMEM;
      cl->wbuf = p;
      cl->walloc = want;
    }
  memcpy (cl->wbuf + cl->wlen, line, len);
  cl->wlen += len;
  int r = client_flush (cl);
  if (r < 0)
    return r;
  if (cl->wlen - cl->wpos > AVM_CONTROL_MAX_OUTPUT)
    return -ENOBUFS;
  return 0;
}

static void
client_rearm (struct client *cl)
{
  if (sym_sd_event_source_set_time_relative (cl->timer, cl->ctl->idle_usec) >= 0)
    sym_sd_event_source_set_enabled (cl->timer, SD_EVENT_ONESHOT);
}

static json_t *
handle_request (avm_control_fn fn, void *data, const char *line, size_t len, struct avm_control_request *rq)
{
  json_error_t jerr;
  json_t *reply;

  _cleanup_json_ json_t *req = json_loadb (line, len, JSON_REJECT_DUPLICATES, &jerr);
  json_t *cmd = NULL;
  json_unpack (req, "{s?o}", "command", &cmd); /* (checked below) */
  if (!req)
    reply = error_reply ("malformed request: %s (column %d)", jerr.text, jerr.column);
  else if (!json_is_object (req))
    reply = error_reply ("malformed request: not a JSON object");
  else if (!json_is_string (cmd))
    reply = error_reply ("malformed request: no \"command\" string");
  else if (strlen (json_string_value (cmd)) != json_string_length (cmd))
    reply = error_reply ("malformed request: NUL byte in \"command\"");
  else
    {
      const char *name = json_string_value (cmd);
      reply = fn ? fn (data, name, req, rq) : NULL;
      if (reply == AVM_CONTROL_PENDING && rq)
        return reply;
      if (reply == AVM_CONTROL_PENDING)
        reply = error_reply ("internal error: %s cannot be answered here", name);
      else if (!reply)
        reply = error_reply ("unknown command: %s", name);
      else if (!json_is_object (reply))
        {
          json_decref (reply);
          reply = error_reply ("internal error: the reply to %s is not a JSON object", name);
        }
    }
  return reply;
}

json_t *
avm_control_handle_request (avm_control_fn fn, void *data, const char *line, size_t len)
{
  return handle_request (fn, data, line, len, NULL);
}

/* Send the filled slots at the head of the queue.  */
static int
client_drain (struct client *cl)
{
  while (cl->qhead && cl->qhead->done)
    {
      struct avm_control_request *rq = cl->qhead;
      cl->qhead = rq->next;
      if (!cl->qhead)
        cl->qtail = NULL;
      cl->nqueued--;
      json_t *reply = rq->reply;
      free (rq);
      int r = client_reply (cl, reply);
      if (r < 0)
        return r;
    }
  return 0;
}

/* Handle one request line (LEN bytes, terminator removed).  */
static int
client_handle_line (struct client *cl, const char *line, size_t len)
{
  struct avm_control *c = cl->ctl;

  if (len == 0)
    return 0;
  client_rearm (cl);
  struct avm_control_request *rq = calloc (1, sizeof *rq);
  if (!rq)
    return -ENOMEM;
  rq->cl = cl;
  if (cl->qtail)
    cl->qtail->next = rq;
  else
    cl->qhead = rq;
  cl->qtail = rq;
  cl->nqueued++;
  cl->busy++;
  json_t *reply = handle_request (c->fn, c->data, line, len, rq);
  cl->busy--;
  if (reply != AVM_CONTROL_PENDING)
    {
      rq->reply = reply ? reply : error_reply ("internal error");
      rq->done = true;
    }
  return client_drain (cl);
}

/* Handle the complete lines in the input buffer.  */
static int
client_handle_input (struct client *cl)
{
  while (!cl->closing && cl->nqueued < AVM_CONTROL_MAX_PENDING)
    {
      const char *line;
      size_t len;
      int r = avm_linebuf_next (&cl->in, &line, &len);
      if (r == 0)
        break;
      if (r < 0)
        {
          cl->closing = true;
          return client_reply (cl, error_reply ("request line longer than %d bytes", AVM_CONTROL_MAX_LINE));
        }
      r = client_handle_line (cl, line, len);
      if (r < 0)
        return r;
    }
  return 0;
}

static int
client_read (struct client *cl)
{
  for (int i = 0; i < MAX_READS_PER_CALL && !cl->closing && cl->nqueued < AVM_CONTROL_MAX_PENDING; i++)
    {
      char *tail;
      if (avm_linebuf_reserve (&cl->in, READ_CHUNK, &tail) < 0)
        return -ENOMEM;
      ssize_t n = read (cl->fd, tail, READ_CHUNK);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
          return -errno;
        }
      if (n == 0)
        {
          /* End of input: an incomplete last line is dropped.  */
          cl->closing = true;
          return 0;
        }
      avm_linebuf_commit (&cl->in, n);
      int r = client_handle_input (cl);
      if (r < 0)
        return r;
    }
  return 0;
}

/* Free a closing client whose output is written; otherwise watch for what
   it needs next.  */
static void
client_update (struct client *cl)
{
  bool pending = cl->wpos < cl->wlen;
  bool reading = !cl->closing && cl->nqueued < AVM_CONTROL_MAX_PENDING;

  if (cl->closing && !pending && !cl->qhead)
    {
      client_free (cl);
      return;
    }
  if (sym_sd_event_source_set_io_events (cl->io, (reading ? EPOLLIN : 0) | (pending ? EPOLLOUT : 0)) < 0)
    client_free (cl);
}

void
avm_control_request_wait (struct avm_control_request *rq, uint64_t usec)
{
  struct client *cl = rq ? rq->cl : NULL;
  if (cl && cl->timer && sym_sd_event_source_set_time_relative (cl->timer, usec) >= 0)
    sym_sd_event_source_set_enabled (cl->timer, SD_EVENT_ONESHOT);
}

int
avm_control_reply (struct avm_control_request *rq, json_t *reply)
{
  if (!rq)
    {
      json_decref (reply);
      return -ENOTCONN;
    }
  struct client *cl = rq->cl;
  if (!cl)
    {
      /* Its client is gone: nobody to tell.  */
      json_decref (reply);
      free (rq);
      return -ENOTCONN;
    }
  if (!json_is_object (reply))
    {
      json_decref (reply);
      reply = error_reply ("internal error: a deferred reply is not a JSON object");
    }
  rq->reply = reply ? reply : error_reply ("internal error");
  rq->done = true;
  if (cl->busy)
    return 0; /* (given from within the handler: client_handle_line sends it) */
  /* Send what is due, then the lines that waited behind a full queue.  */
  if (client_drain (cl) < 0 || client_handle_input (cl) < 0)
    {
      client_free (cl);
      return 0; /* (the reply was queued: the client failed after it) */
    }
  client_update (cl);
  return 0;
}

static int
on_client_io (sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  struct client *cl = userdata;

  if (cl->wpos < cl->wlen && (revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
    if (client_flush (cl) < 0)
      {
        client_free (cl);
        return 0;
      }
  if (!cl->closing && (revents & (EPOLLIN | EPOLLERR | EPOLLHUP)))
    if (client_read (cl) < 0)
      {
        client_free (cl);
        return 0;
      }
  /* The peer is gone for good (EPOLLHUP is reported whatever is watched):
     a client waiting for deferred replies, or not reading, would spin.  */
  if ((revents & (EPOLLERR | EPOLLHUP)) && (cl->closing || cl->nqueued >= AVM_CONTROL_MAX_PENDING))
    {
      client_free (cl);
      return 0;
    }
  client_update (cl);
  return 0;
}

static int
on_client_idle (sd_event_source *s, uint64_t usec, void *userdata)
{
  struct client *cl = userdata;

  if (cl->wpos == cl->wlen)
    {
      unsigned long long ms = cl->ctl->idle_usec / 1000;
      _cleanup_json_ json_t *reply = cl->qhead ? error_reply ("no reply within %llu ms", ms)
                                               : error_reply ("no complete request within %llu ms", ms);
      send_and_forget (cl->fd, reply);
    }
  client_free (cl);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Accepting.  */

static void
reject (int fd, const char *why)
{
  _cleanup_json_ json_t *reply = error_reply ("%s", why);
  send_and_forget (fd, reply);
  close (fd);
}

static void
accept_client (struct avm_control *c, int fd)
{
  struct ucred cred;
  socklen_t len = sizeof cred;

  if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof cred
      || (cred.uid != geteuid () && cred.uid != 0))
    {
      reject (fd, "permission denied");
      return;
    }
  if (c->nclients >= AVM_CONTROL_MAX_CLIENTS)
    {
      reject (fd, "too many clients");
      return;
    }
  struct client *cl = calloc (1, sizeof *cl);
  if (!cl)
    {
      reject (fd, "out of memory");
      return;
    }
  cl->ctl = c;
  cl->fd = fd;
  cl->in.max_line = AVM_CONTROL_MAX_LINE;
  cl->next = c->clients;
  if (c->clients)
    c->clients->prev = cl;
  c->clients = cl;
  c->nclients++;
  if (sym_sd_event_add_io (c->event, &cl->io, fd, EPOLLIN, on_client_io, cl) < 0
      || sym_sd_event_add_time_relative (c->event, &cl->timer, CLOCK_MONOTONIC, c->idle_usec, TIMER_ACCURACY_USEC,
                                         on_client_idle, cl)
             < 0)
    {
      cl->fd = -1;
      client_free (cl);
      reject (fd, "internal error");
    }
}

static int
on_accept_retry (sd_event_source *s, uint64_t usec, void *userdata)
{
  struct avm_control *c = userdata;
  sym_sd_event_source_set_enabled (c->listen_io, SD_EVENT_ON);
  return 0;
}

/* Out of descriptors: the pending connection would keep the socket
   readable, so stop watching it for a while instead of spinning.  */
static void
pause_accepting (struct avm_control *c)
{
  int r;

  if (c->retry_timer)
    {
      r = sym_sd_event_source_set_time_relative (c->retry_timer, ACCEPT_RETRY_USEC);
      if (r >= 0)
        r = sym_sd_event_source_set_enabled (c->retry_timer, SD_EVENT_ONESHOT);
    }
  else
    r = sym_sd_event_add_time_relative (c->event, &c->retry_timer, CLOCK_MONOTONIC, ACCEPT_RETRY_USEC,
                                        TIMER_ACCURACY_USEC, on_accept_retry, c);
  if (r >= 0)
    sym_sd_event_source_set_enabled (c->listen_io, SD_EVENT_OFF);
}

static int
on_accept (sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  struct avm_control *c = userdata;

  for (int i = 0; i < MAX_ACCEPTS_PER_CALL; i++)
    {
      int cfd = accept4 (c->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (cfd < 0)
        {
          if (errno == EINTR || errno == ECONNABORTED)
            continue;
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            pause_accepting (c);
          return 0;
        }
      accept_client (c, cfd);
    }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Listening.  */

/* Check that PATH names the entry NAME of the directory DIRFD.  */
static int
check_path (int dirfd, const char *name, const char *path, avm_error_t *err)
{
  struct sockaddr_un sa;
  size_t plen = strlen (path), nlen = strlen (name);
  struct stat dst, pst;

  if (plen >= sizeof sa.sun_path)
    return avm_error_fail (err, ENAMETOOLONG, "%s: path too long for a unix socket (%zu bytes, at most %zu)", path,
                           plen, sizeof sa.sun_path - 1);
  if (nlen == 0 || strchr (name, '/') || streq (name, ".") || streq (name, ".."))
    return avm_error_fail (err, EINVAL, "%s: invalid socket name \"%s\"", path, name);
  if (plen < nlen || !streq (path + plen - nlen, name) || (plen > nlen && path[plen - nlen - 1] != '/'))
    return avm_error_fail (err, EINVAL, "%s: path does not end with the socket name \"%s\"", path, name);
  _cleanup_free_ char *dir = plen == nlen ? strdup (".") : strndup (path, plen - nlen);
  if (!dir)
    return avm_error_sys (err, ENOMEM, "%s", path);
  if (fstat (dirfd, &dst) < 0)
    return avm_error_sys (err, errno, "%s: directory descriptor", path);
  if (stat (dir, &pst) < 0)
    return avm_error_sys (err, errno, "%s", dir);
  if (dst.st_dev != pst.st_dev || dst.st_ino != pst.st_ino)
    return avm_error_fail (err, EINVAL, "%s: %s is not the directory given", path, dir);
  return 0;
}

/* Remove a stale socket file at NAME; refuse anything else.  */
static int
remove_stale (int dirfd, const char *name, const char *path, avm_error_t *err)
{
  struct stat st;
  struct sockaddr_un sa = { .sun_family = AF_UNIX };

  if (fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    {
      if (errno == ENOENT)
        return 0;
      return avm_error_sys (err, errno, "%s", path);
    }
  if (S_ISLNK (st.st_mode))
    return avm_error_fail (err, EEXIST, "%s: exists and is a symbolic link, not a socket; refusing to replace it",
                           path);
  if (!S_ISSOCK (st.st_mode))
    return avm_error_fail (err, EEXIST, "%s: exists and is not a socket; refusing to replace it", path);

  /* A socket: stale unless somebody listens on it.  */
  _cleanup_close_ int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return avm_error_sys (err, errno, "%s: socket", path);
  memcpy (sa.sun_path, path, strlen (path) + 1);
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0 || errno == EAGAIN || errno == EINPROGRESS)
    return avm_error_fail (err, EADDRINUSE, "%s: another process is listening on this socket", path);
  if (unlinkat (dirfd, name, 0) < 0 && errno != ENOENT)
    return avm_error_sys (err, errno, "%s: cannot remove the stale socket", path);
  return 0;
}

int
avm_control_listen (sd_event *e, int dirfd, const char *name, const char *path, avm_control_fn fn, void *data,
                    struct avm_control **out, avm_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  struct stat st;
  int r;

  r = avm_dlopen_systemd (err);
  if (r < 0)
    return r;
  r = check_path (dirfd, name, path, err);
  if (r < 0)
    return r;
  r = remove_stale (dirfd, name, path, err);
  if (r < 0)
    return r;

  struct avm_control *c = calloc (1, sizeof *c);
  if (!c)
    return avm_error_sys (err, ENOMEM, "%s", path);
  c->fd = -1;
  c->dirfd = -1;
  c->fn = fn;
  c->data = data;
  c->idle_usec = AVM_CONTROL_IDLE_TIMEOUT_USEC;
  c->event = sym_sd_event_ref (e);
  _cleanup_control_ struct avm_control *guard = c;

  c->name = strdup (name);
  c->path = strdup (path);
  if (!c->name || !c->path)
    return avm_error_sys (err, ENOMEM, "%s", path);
  c->dirfd = fcntl (dirfd, F_DUPFD_CLOEXEC, 3);
  if (c->dirfd < 0)
    return avm_error_sys (err, errno, "%s: directory descriptor", path);
  c->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (c->fd < 0)
    return avm_error_sys (err, errno, "%s: socket", path);

  /* Linux derives the file's mode from the socket inode's (less the umask),
     so this keeps the file private from the start; the fchmodat below makes
     sure of it anyway, without touching the process-wide umask.  */
  (void) fchmod (c->fd, 0600);
  memcpy (sa.sun_path, path, strlen (path) + 1);
  if (bind (c->fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    return avm_error_sys (err, errno, "%s: bind", path);
  if (fstatat (c->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return avm_error_sys (err, errno, "%s", path);
  if (!S_ISSOCK (st.st_mode))
    return avm_error_fail (err, EEXIST, "%s: replaced by something else than the socket bound", path);
  c->bound = true;
  c->dev = st.st_dev;
  c->ino = st.st_ino;
  if ((st.st_mode & 07777) != 0600 && fchmodat (c->dirfd, name, 0600, 0) < 0)
    return avm_error_sys (err, errno, "%s: chmod", path);
  if (listen (c->fd, BACKLOG) < 0)
    return avm_error_sys (err, errno, "%s: listen", path);
  r = sym_sd_event_add_io (e, &c->listen_io, c->fd, EPOLLIN, on_accept, c);
  if (r < 0)
    return avm_error_sys (err, -r, "%s: event source", path);
  *out = steal_pointer (&guard);
  return 0;
}

void
avm_control_set_idle_timeout (struct avm_control *c, uint64_t usec)
{
  c->idle_usec = usec ? usec : AVM_CONTROL_IDLE_TIMEOUT_USEC;
}

void
avm_control_free (struct avm_control *c)
{
  struct stat st;

  if (!c)
    return;
  while (c->clients)
    client_free (c->clients);
  sym_sd_event_source_disable_unref (c->listen_io);
  sym_sd_event_source_disable_unref (c->retry_timer);
  if (c->bound && fstatat (c->dirfd, c->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK (st.st_mode)
      && st.st_dev == c->dev && st.st_ino == c->ino)
    unlinkat (c->dirfd, c->name, 0);
  if (c->fd >= 0)
    close (c->fd);
  if (c->dirfd >= 0)
    close (c->dirfd);
  sym_sd_event_unref (c->event);
  free (c->name);
  free (c->path);
  free (c);
}
