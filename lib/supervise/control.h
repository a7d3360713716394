/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server of the control socket of a running avm instance
 * (RUNDIR/control.sock).  The protocol and the client (avm_control_call,
 * what "avm status" and "avm stop" use) are in control_client.h, which
 * this header includes.
 *
 * Server (avm_control_listen): runs inside the supervisor's sd-event loop,
 * single-threaded, never blocking it.  The socket is created with mode 0600
 * in the instance's runtime directory.  Connections are served when the
 * peer (SO_PEERCRED) runs as the same user as this process (its effective
 * uid) or as root; others get {"ok":false,"error":"permission denied"} and
 * are closed.  At most AVM_CONTROL_MAX_CLIENTS are served at a time; further
 * ones get "too many clients" and are closed.  What the server replies by
 * itself:
 *   - bytes that are not JSON, JSON that is not an object, or an object
 *     without a string "command": an error reply; the connection stays open
 *     (lines are framed by "\n", so the next line is unaffected);
 *   - a line longer than AVM_CONTROL_MAX_LINE bytes: an error reply, then
 *     the connection is closed (the rest of that line cannot be framed);
 *   - no complete request line for the idle timeout (5 s by default,
 *     counted from the connection or from the last request): an error
 *     reply when nothing else is waiting to be written, then the connection
 *     is closed;
 *   - a command the callback does not know (it returned NULL):
 *     {"ok":false,"error":"unknown command: NAME"}.
 * Blank lines are ignored.  Replies that cannot be written at once are
 * buffered (the loop watches for EPOLLOUT); a client that leaves more than
 * AVM_CONTROL_MAX_OUTPUT bytes unread is dropped without further notice.
 * At end of input (the peer shut down writing) the replies already due are
 * still written, then the connection is closed.
 *
 * Deferred replies: a handler that cannot answer at once (it waits for
 * QEMU) returns AVM_CONTROL_PENDING and later hands the reply to
 * avm_control_reply() with the request handle it was given.  Replies still
 * go out in request order on each connection: requests read after a
 * pending one are handled at once, but their replies wait behind it.  At
 * most AVM_CONTROL_MAX_PENDING replies wait per connection; further input
 * is not read until they are sent.  The idle timeout still applies (from
 * the last request): a reply that has not come by then gets an error reply
 * (when nothing else is waiting to be written) and the connection is closed.
 * A connection that ends (peer gone, idle, avm_control_free) before a
 * deferred reply is given leaves the handle valid: avm_control_reply() then
 * discards the reply and frees the handle.
 */
#pragma once

#include "supervise/control_client.h"
#include "util/cleanup.h"
#include "util/error.h"

#include <jansson.h>
#include <stdint.h>
#include "supervise/lazy_systemd.h"

/* (Its name inside the runtime directory, AVM_CONTROL_SOCKET, is the plan's.)  */
#include "plan/plan.h"
/* Longest request line, terminator excluded.  */
#define AVM_CONTROL_MAX_LINE (64 * 1024)
/* Connections served at a time.  */
#define AVM_CONTROL_MAX_CLIENTS 16
/* Reply bytes a client may leave unread before it is dropped.  */
#define AVM_CONTROL_MAX_OUTPUT (1024 * 1024)
/* Default idle timeout, microseconds.  */
#define AVM_CONTROL_IDLE_TIMEOUT_USEC (5 * 1000000ULL)
/* Replies waiting (deferred, or behind a deferred one) per connection.  */
#define AVM_CONTROL_MAX_PENDING 32

struct avm_control;
/* One request whose reply is deferred (see the top of this file).  */
struct avm_control_request;

/* What a handler returns when it will reply later with avm_control_reply.  */
extern json_t avm_control_pending_;
#define AVM_CONTROL_PENDING (&avm_control_pending_)

/* Handle one request.  COMMAND is the request's "command" string; REQUEST
   the whole request object (borrowed).  Returns the reply object (a new
   reference, which the server releases), including its "ok" member, or NULL
   for an unknown command.  A reply that is not an object is replaced by an
   "internal error" reply.  Or returns AVM_CONTROL_PENDING, and then calls
   avm_control_reply (REQ, ...) exactly once, later or even before it
   returns; REQ is NULL where replies cannot be deferred (the fuzz target):
   AVM_CONTROL_PENDING is then answered with "internal error".  The callback
   may call sd_event_exit() (the reply is still sent if the socket takes it
   at once, which it normally does) but must not call avm_control_free().  */
typedef json_t *(*avm_control_fn) (void *data, const char *command, json_t *request, struct avm_control_request *req);

/* Complete the deferred request REQ with REPLY (an object with "ok"; the
   reference is stolen; NULL or a non-object becomes "internal error") and
   send it when the replies before it are sent.  REQ is freed: do not use it
   again.  Returns 0, or -ENOTCONN when its connection is already gone and
   the reply is dropped (what the reply named may then be cleaned up).  Not
   to be called from within avm_control_free().  */
int avm_control_reply (struct avm_control_request *req, json_t *reply);

/* A deferred request REQ that may take longer than the idle timeout (a
   snapshot save): its connection waits USEC microseconds from now for the
   reply instead (until its next request).  NULL is accepted.  */
void avm_control_request_wait (struct avm_control_request *req, uint64_t usec);

/* Listen on the unix socket NAME inside the directory DIRFD, whose full
   path is PATH (used for bind(), which needs a path, and in messages; it
   must name the entry NAME of the directory DIRFD, and fit in sun_path:
   at most 107 bytes).  DIRFD is duplicated: the caller keeps its own.
   An existing socket file at PATH is replaced when nobody listens on it;
   a live socket fails with -EADDRINUSE, and anything else that is not a
   socket (a symbolic link, whatever it points to; a regular file) with
   -EEXIST, left untouched.  The socket file gets mode 0600 whatever the
   umask is (the umask is not changed).  Requests go to FN with DATA.  */
int avm_control_listen (sd_event *e, int dirfd, const char *name, const char *path, avm_control_fn fn, void *data,
                        struct avm_control **out, avm_error_t *err);

/* The reply to one request line (LINE, LEN bytes, terminator removed, not
   blank), as the server computes it: the checks described above, then FN
   with DATA.  A new reference (NULL only when out of memory, which the
   server answers with "internal error").  Exposed for the fuzz target.  */
json_t *avm_control_handle_request (avm_control_fn fn, void *data, const char *line, size_t len);

/* Idle timeout for clients, in microseconds (0: the default).  Applies from
   the next request or connection on.  */
void avm_control_set_idle_timeout (struct avm_control *c, uint64_t usec);

/* Close the connections and the socket, remove the socket file if it is
   still the one bound (same device and inode; a file that replaced it is
   left alone), release the event loop reference and free.  NULL is
   accepted.  */
void avm_control_free (struct avm_control *c);
DEFINE_TRIVIAL_CLEANUP_FUNC (struct avm_control *, avm_control_free)
#define _cleanup_control_ __attribute__ ((cleanup (avm_control_freep)))
