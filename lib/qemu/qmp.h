/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QMP client (QEMU Machine Protocol), usable synchronously and from an event
 * loop (sd-event or plain poll).
 *
 * Protocol (reference/formats.md section 8): QEMU sends a greeting
 * {"QMP": {"version": {"qemu": {...}, "package": ...}, "capabilities": [...]}},
 * the client negotiates with qmp_capabilities, then sends
 * {"execute": C, "arguments": {...}, "id": N} and QEMU answers
 * {"return": ..., "id": N} or {"error": {"class": ..., "desc": ...}, "id": N}.
 * Asynchronous events {"event": NAME, "data": {...}, "timestamp": {...}} may
 * arrive at any time, also before the reply to the command that caused them
 * (RESUME before cont's return, SHUTDOWN before quit's return).
 *
 * Framing: one JSON object per line ("\r\n" from QEMU; a lone "\n" and blank
 * lines are accepted).  A line longer than AVM_QMP_MAX_LINE bytes, bytes that
 * are not valid JSON, a value that is not an object, a second greeting or a
 * message that is neither a greeting, a reply nor an event, and members of
 * the wrong type (an event name that is not a string, "data" or "timestamp"
 * not objects, an "error" without string "class" and "desc") are protocol
 * errors: the connection is then unusable (every later call returns the same
 * error, pending requests are failed).  A reply whose "id" matches no pending
 * request is ignored; a reply without "id" (QEMU omits it only when it could
 * not parse the request) goes to the oldest pending request, since QEMU
 * answers requests in order.
 *
 * Errors name the socket ("QMP socket PATH: ..."), except replies with an
 * error object, which read "QMP COMMAND: CLASS: DESC".  Codes:
 *   -ETIMEDOUT    nothing (or not the expected thing) within the timeout
 *   -ECONNRESET   QEMU closed the monitor (EOF or reset)
 *   -EPROTO       protocol error (see above)
 *   -EOPNOTSUPP   error reply of class CommandNotFound
 *   -EREMOTEIO    any other error reply
 *   -ENOTCONN     request before the handshake completed
 *   -ENOBUFS      16 MiB of requests QEMU has not read yet (the request is
 *                 refused; the connection stays usable)
 *   -EINVAL       empty or non-UTF-8 command name, arguments not an object
 *   -EBADF        a descriptor to pass that is not one (below 0, or closed)
 *   -EBUSY        a descriptor to pass while another still waits to be written
 *   -EAFNOSUPPORT a descriptor to pass over a socket that is not a unix one
 *   -ENOTSOCK, -ENAMETOOLONG, other errno: avm_qmp_connect (path problems)
 * A timeout_ms below 0 waits without limit; 0 does not wait.
 *
 * Event-loop use: avm_qmp_fd() is a non-blocking stream socket.  Watch it for
 * avm_qmp_io_events() (EPOLLIN, plus EPOLLOUT while requests are waiting to be
 * written; the values equal POLLIN/POLLOUT) and call avm_qmp_process() when
 * it is ready; re-read avm_qmp_io_events() after every call into the client.
 * Requests go out with avm_qmp_send_async(); replies reach their callback,
 * events the event handler.  avm_qmp_process() returns 1 once QEMU closed
 * the monitor: that is how the supervisor learns that QEMU is exiting.  After
 * a non-zero return, disable the watch (avm_qmp_io_events() is then 0; a
 * closed socket would stay readable) and close the client when convenient.
 *
 * Callbacks (event handler, reply callbacks) may send further requests, also
 * synchronously, but must not call avm_qmp_close().  JSON values passed to
 * callbacks are borrowed: json_incref() what you keep.  Not thread-safe.
 */
#pragma once

#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Longest accepted message line, terminator excluded (query-qmp-schema on
   QEMU 7.2 x86_64 is about 200 KiB).  */
#define AVM_QMP_MAX_LINE (1024 * 1024)
/* Events kept while no event handler is set (the oldest are dropped).  */
#define AVM_QMP_MAX_QUEUED_EVENTS 256

struct avm_qmp;

/* EVENT is the event name; DATA_OBJ its "data" object and TIMESTAMP its
   "timestamp" object ({"seconds": S, "microseconds": US}); either may be
   NULL when QEMU sent none.  */
typedef void (*avm_qmp_event_fn) (void *data, const char *event, json_t *data_obj, json_t *timestamp);

/* Called exactly once per request: with RET (the "return" value) and
   ERROR == NULL on success; with RET == NULL and ERROR the error object
   ({"class": ..., "desc": ...}) on an error reply; with both NULL when the
   request got no reply because the connection closed, failed, or was closed
   by avm_qmp_close() (do not use the client from that last call).  */
typedef void (*avm_qmp_reply_fn) (void *data, json_t *ret, json_t *error);

/* Connect to the unix socket SOCKET_PATH, retrying while it does not exist
   or refuses connections (QEMU still starting; a path that exists but is
   not a socket fails at once), read the greeting and negotiate
   capabilities, all within TIMEOUT_MS.  QEMU serves one monitor client at a
   time: while another is connected the kernel still accepts, and this fails
   with "no greeting from QEMU within N ms (is another client connected?)".  */
int avm_qmp_connect (const char *socket_path, int timeout_ms, struct avm_qmp **out, avm_error_t *err);

/* The same over an already connected stream socket FD (owned by the client
   from now on, even on failure; made non-blocking).  NAME stands for the
   socket in messages.  */
int avm_qmp_connect_fd (int fd, const char *name, int timeout_ms, struct avm_qmp **out, avm_error_t *err);

/* A client over FD without any I/O yet: the greeting is handled and
   qmp_capabilities sent as data arrives (avm_qmp_process, avm_qmp_feed);
   avm_qmp_is_ready() tells when requests may be sent.  FD may be -1 (no
   socket: output accumulates, input comes from avm_qmp_feed; for fuzzing).  */
int avm_qmp_new (int fd, const char *name, struct avm_qmp **out, avm_error_t *err);

/* Close the socket and free.  Pending reply callbacks are called with
   (NULL, NULL) first.  NULL is allowed.  */
void avm_qmp_close (struct avm_qmp *q);
void avm_qmp_closep (struct avm_qmp **q);
#define _cleanup_qmp_ __attribute__ ((cleanup (avm_qmp_closep)))

/* Run COMMAND with ARGUMENTS (an object, or NULL; the reference is stolen,
   also on failure) and wait up to TIMEOUT_MS for its reply.  On success *RET
   (when RET is not NULL) holds the "return" value (new reference).  Events
   read meanwhile go to the event handler (or the queue), replies to other
   requests to their callbacks.  On timeout the request is forgotten: a late
   reply is ignored.  */
int avm_qmp_execute (struct avm_qmp *q, const char *command, json_t *arguments, int timeout_ms, json_t **ret,
                     avm_error_t *err);

/* Send "quit" and wait until QEMU closes the monitor: returns 0 once the
   socket is closed, whether the reply came first or not (QEMU sends the
   SHUTDOWN event, the reply, then closes; the SHUTDOWN event is dispatched
   as usual), and also when the monitor was already closed.  An error reply,
   a protocol error or TIMEOUT_MS passing without the close fail.  The caller
   still reaps QEMU and calls avm_qmp_close().  */
int avm_qmp_quit (struct avm_qmp *q, int timeout_ms, avm_error_t *err);

/* Queue COMMAND (ARGUMENTS as for avm_qmp_execute) and write as much as the
   socket takes without blocking; REPLY_CB (may be NULL) gets the reply.
   On failure REPLY_CB is not called.  */
int avm_qmp_send_async (struct avm_qmp *q, const char *command, json_t *arguments, avm_qmp_reply_fn reply_cb,
                        void *data, avm_error_t *err);

/* Like avm_qmp_send_async, and FD (a descriptor of the caller's, duplicated:
   the caller keeps and closes its own) travels with the request as
   SCM_RIGHTS ancillary data on its first byte, as QEMU's getfd and add-fd
   want ("getfd" {"fdname": NAME}; QEMU takes the descriptor that arrived
   last, with or before the command's bytes, so requests written earlier do
   not carry it).  The duplicate is closed once written, or when the
   connection closes or fails, or by avm_qmp_close().  While one descriptor
   waits to be written, another request with a descriptor is refused
   (-EBUSY); requests without one queue as usual.  FD < 0: -EBADF.
   ARGUMENTS is stolen, also on failure.  */
int avm_qmp_send_fd_async (struct avm_qmp *q, const char *command, json_t *arguments, int fd, avm_qmp_reply_fn reply_cb,
                           void *data, avm_error_t *err);

/* The synchronous form: avm_qmp_execute with FD passed as above.  */
int avm_qmp_execute_fd (struct avm_qmp *q, const char *command, json_t *arguments, int fd, int timeout_ms, json_t **ret,
                        avm_error_t *err);

/* Events go to FN (NULL: to the queue read by avm_qmp_wait_event).  Setting
   a handler hands it the events already queued, oldest first.  */
void avm_qmp_set_event_handler (struct avm_qmp *q, avm_qmp_event_fn fn, void *data);

/* Wait up to TIMEOUT_MS for an event named NAME (NULL: any event).  *EVENT
   (when EVENT is not NULL) receives the whole event object (new reference).
   Without an event handler, events queued earlier are searched first and the
   matching one is removed from the queue (the others stay); with a handler,
   only events arriving during the call are seen, and the handler gets them
   too.  */
int avm_qmp_wait_event (struct avm_qmp *q, const char *name, int timeout_ms, json_t **event, avm_error_t *err);

/* Event-loop interface (see the top of this file).  */
int avm_qmp_fd (const struct avm_qmp *q);
uint32_t avm_qmp_io_events (const struct avm_qmp *q);
/* Write pending requests and read and dispatch whatever is available,
   without blocking.  Returns 0 while the connection is open, 1 once QEMU
   closed the monitor (messages received before the close are dispatched
   first; pending requests get their callback with (NULL, NULL)), or a
   negative errno on a protocol or I/O error.  Reads are bounded per call so
   that a flood cannot starve the loop: call again while the fd is readable
   (level-triggered watches do).  */
int avm_qmp_process (struct avm_qmp *q, avm_error_t *err);
/* Hand bytes to the parser as if they had been read from the socket (for
   fuzzing and tests); same results as avm_qmp_process.  */
int avm_qmp_feed (struct avm_qmp *q, const void *buf, size_t len, avm_error_t *err);

/* State.  */
bool avm_qmp_is_ready (const struct avm_qmp *q);  /* handshake done, connection usable */
bool avm_qmp_is_closed (const struct avm_qmp *q); /* QEMU closed the monitor */
const char *avm_qmp_name (const struct avm_qmp *q);
/* Greeting: "7.2.22", the numbers, the package text ("Debian 1:7.2+dfsg-7+deb12u18+b3", or
   NULL), the whole greeting object (borrowed).  Empty/0/NULL before the greeting.  */
const char *avm_qmp_qemu_version (const struct avm_qmp *q);
void avm_qmp_qemu_version_numbers (const struct avm_qmp *q, int *major, int *minor, int *micro);
const char *avm_qmp_qemu_package (const struct avm_qmp *q);
json_t *avm_qmp_greeting (const struct avm_qmp *q);

/* One connection attempt to SOCKET_PATH that does not wait: the socket is
   connected at once (a unix socket accepts or refuses) and *OUT is a new
   monitor whose handshake runs as avm_qmp_process is called (an event
   loop's).  -ENOENT, -ECONNREFUSED, -EAGAIN: QEMU is not listening yet, try
   again later; any other -errno is a failure (in *ERR).  */
int avm_qmp_try_connect (const char *socket_path, struct avm_qmp **out, avm_error_t *err);

/* What a SHUTDOWN or RESET event's data says (strings borrowed from it).  */
struct avm_qmp_shutdown
{
  bool guest;         /* the guest asked for it */
  const char *reason; /* "guest-shutdown", "host-qmp-quit", ...; or NULL */
};
struct avm_qmp_shutdown avm_qmp_shutdown_data (json_t *data);
/* The "status" of a query-status answer ("running", ...), or NULL.  */
const char *avm_qmp_status_name (json_t *ret);
