/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control socket of a running avm instance (RUNDIR/control.sock), used
 * by "avm status" and "avm stop": the protocol, and the client.  The server
 * (avm_control_listen, inside the supervisor's sd-event loop) is in
 * control.h; this header does not see sd-event, so that the CLI does not.
 *
 * Protocol: a unix stream socket carrying one JSON object per line ("\n";
 * a "\r" before it is accepted) in both directions.  A request is
 * {"command": NAME, ...}; the reply is one object, with "ok" true or false,
 * and "error" (a message) when false.  A connection may carry several
 * requests; they are answered in order.
 *
 * Client (avm_control_call): blocking, one request and one reply.
 */
#pragma once

#include "util/error.h"

#include <jansson.h>

/* Connect to the control socket PATH, send REQUEST (an object, not
   consumed) as one line and wait for one reply line, all within TIMEOUT_MS
   (below 0: no limit).  On success *REPLY holds the reply object (new
   reference), whether its "ok" is true or not.  Errors:
     -ENOENT, -ECONNREFUSED  nothing listens at PATH: "no avm instance is
                             running here (PATH: ...)"
     -ETIMEDOUT              "PATH: no reply within N ms"
     -EPROTO                 the reply is not a JSON object, or too long
     -ECONNRESET             the server closed the connection without a reply
     -ENAMETOOLONG           PATH does not fit in sun_path
     other errno             connect() or I/O failures, naming PATH  */
int avm_control_call (const char *path, json_t *request, json_t **reply, int timeout_ms, avm_error_t *err);
