/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared between the files of the QMP client (qmp.c: the protocol engine;
 * qmp_connect.c: creating, connecting, the handshake, closing; qmp_call.c:
 * requests and the event API): the client's structure and the engine's
 * functions the other two use.  Not for use outside lib/qemu/qmp*.c; the
 * interface is qmp.h.
 */
#pragma once

#include "qemu/qmp.h"
#include "util/linebuf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The states, described at the top of qmp.c.  */
enum qmp_state
{
  QMP_GREETING,
  QMP_NEGOTIATING,
  QMP_READY,
  QMP_CLOSED,
  QMP_FAILED,
};

/* A request sent, waiting for its reply (the FIFO of struct avm_qmp).  */
struct pending
{
  struct pending *next;
  json_int_t id;
  avm_qmp_reply_fn cb;
  void *data;
};

/* An avm_qmp_wait_event in progress.  */
struct event_waiter
{
  const char *name; /* NULL: any */
  json_t *got;
};

/* The client (qmp.h).  */
struct avm_qmp
{
  int fd;
  char *name;
  enum qmp_state state;
  enum qmp_state closed_in; /* state when QEMU closed the monitor */
  int fail_code;            /* negative errno when FAILED */
  char *fail_msg;           /* whole message when FAILED */
  size_t discarded;         /* bytes of an incomplete line at the close */
  bool write_dead;          /* the peer stopped reading (EPIPE) */

  json_t *greeting;
  char version[48];
  int major, minor, micro;
  char *package;

  struct avm_linebuf in; /* framing (util/linebuf.h), at most AVM_QMP_MAX_LINE a message */
  char *wbuf;
  size_t wpos, wlen, walloc;
  /* The descriptor of a request waiting to be written (avm_qmp_send_fd_async:
     a duplicate, ours to close), or -1; it goes out as SCM_RIGHTS with the
     byte at offset PASS_FD_AT of WBUF, the request's first.  One at a time.  */
  int pass_fd;
  size_t pass_fd_at;

  json_int_t next_id;
  struct pending *head, *tail;

  avm_qmp_event_fn event_fn;
  void *event_data;
  json_t *queue; /* events kept while no handler is set */
  struct event_waiter *waiter;
};

/* ---- Errors (qmp.c).  */

/* Printable copy of at most MAX bytes of S (control bytes and backslashes
   escaped, "..." appended when cut), so that whatever QEMU (or a fuzzer)
   sends cannot break the one-problem-per-line error format.  malloc'd, or
   NULL when out of memory.  */
char *qmp_printable (const char *s, size_t len, size_t max);
/* Empty the pending list, each callback getting (NULL, NULL).  */
void qmp_fail_pending (struct avm_qmp *q);
/* Enter FAILED with "QMP socket NAME: MESSAGE" (": strerror" appended when
   WITH_STRERROR); the first failure is kept.  Returns the stored code.  */
int qmp_fail_conn (struct avm_qmp *q, int errnum, bool with_strerror, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
/* Fail with "protocol error: WHAT: " and the start of LINE (when not NULL).  */
int qmp_protocol_error (struct avm_qmp *q, const char *what, const char *line, size_t len);
/* The sticky error of a FAILED client into ERR.  */
int qmp_failed_error (struct avm_qmp *q, avm_error_t *err);
/* "QMP socket NAME: QEMU closed the monitor[ WHILE]" into ERR, WHILE being
   WHILE_FMT (when not NULL) formatted with WHAT.  */
int qmp_closed_error (struct avm_qmp *q, const char *while_fmt, const char *what, avm_error_t *err);
/* An error reply to COMMAND into ERR: "QMP COMMAND: CLASS: DESC".  */
int qmp_reply_error (const char *command, json_t *error, avm_error_t *err);

/* ---- Output (qmp.c).  */

/* Write what can be written of the output buffer without blocking.  0, or
   the failure code.  */
int qmp_flush_output (struct avm_qmp *q);
/* Append a request to the output buffer and the pending list (its id into
 *IDP when IDP is not NULL).  ARGS is stolen.  FD, when not -1, is
   duplicated to travel with the request's first byte (-EBUSY while another
   descriptor waits).  No I/O.  */
int qmp_enqueue (struct avm_qmp *q, const char *command, json_t *args, int fd, avm_qmp_reply_fn cb, void *data,
                 json_int_t *idp, avm_error_t *err);
/* Close the descriptor waiting to be written, if any (the connection
   failed or closed, or the client is being freed).  */
void qmp_drop_pass_fd (struct avm_qmp *q);
/* Forget a pending request (timeout): a late reply is then ignored.  */
void qmp_cancel_pending (struct avm_qmp *q, json_int_t id);

/* ---- Events (qmp.c).  */

/* Keep event MSG for later (at most AVM_QMP_MAX_QUEUED_EVENTS, the oldest
   dropped).  */
void qmp_queue_event (struct avm_qmp *q, json_t *msg);
/* Whether event MSG is a WANT event (any event when WANT is NULL).  */
bool qmp_event_matches (const char *want, json_t *msg);

/* ---- Waiting (qmp.c).  */

/* Loop of do_io and poll until DONE holds, the connection closes or fails
   (-ECONNRESET, the failure code), or DEADLINE passes (-ETIMEDOUT).  DONE
   is checked first, so what completes together with the close counts.  */
int qmp_wait_for (struct avm_qmp *q, bool (*done) (struct avm_qmp *, void *), void *arg, long long deadline);

/* ---- Handshake (qmp_connect.c).  */

/* The first message, MSG (LINE and LEN its text, for errors): record the
   version and send qmp_capabilities.  0 or the failure code.  */
int qmp_handle_greeting (struct avm_qmp *q, json_t *msg, const char *line, size_t len);
