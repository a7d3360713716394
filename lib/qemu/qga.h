/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Setting the guest's wall clock through the QEMU guest agent (qemu-ga),
 * as `virsh domtime --sync` does after a restore: the guest's clock goes
 * on from the saved state otherwise.
 *
 * Protocol (QEMU's qga/qapi-schema.json): JSON objects over the agent's
 * virtio-serial port, which QEMU connects to a unix socket (the profile's
 * console port of kind agent).  No greeting; the stream may hold stale
 * data from an earlier client or a partial request, so the exchange
 * starts with a 0xFF byte (the agent resets its parser) and
 * {"execute":"guest-sync-delimited","arguments":{"id":ID}}, answered with
 * 0xFF then {"return":ID}: everything before that answer is ignored.
 * Then guest-get-time ({"return": NANOSECONDS}), and guest-set-time with
 * the host's CLOCK_REALTIME read as the request is written ({"return":{}};
 * qemu-ga also writes the RTC with hwclock -w).  Replies end with "\n".
 *
 * Event-loop use, as the QMP client's: a non-blocking stream socket,
 * avm_qga_io_events() to watch for, avm_qga_process() when it is ready;
 * it returns 1 once the clock is set.  Errors name the socket:
 * -ECONNRESET the agent's socket closed, -EPROTO a reply that is not
 * what was asked for (a line longer than 64 KiB, not JSON, another id),
 * -EREMOTEIO an error reply (its class and description in the message).
 * Timeouts are the caller's.  Not thread-safe.
 */
#pragma once
#include "util/error.h"

#include <stdbool.h>
#include <stdint.h>

struct avm_qga;

/* A client over the connected stream socket FD (owned from now on, also
   on failure; made non-blocking), NAME standing for it in messages,
   with its first request queued.  SYNC_ID: the guest-sync-delimited id
   (any number the caller has not used on this socket before).  */
int avm_qga_clock_new (int fd, const char *name, int64_t sync_id, struct avm_qga **out, avm_error_t *err);
/* The same, connecting to the unix socket PATH first (at once: QEMU
   listens on it from its start).  */
int avm_qga_clock_connect (const char *path, int64_t sync_id, struct avm_qga **out, avm_error_t *err);
int avm_qga_fd (const struct avm_qga *q);
/* EPOLLIN, plus EPOLLOUT while a request waits to be written; 0 once done
   or failed.  */
uint32_t avm_qga_io_events (const struct avm_qga *q);
/* Read and write what the socket allows: 0 going on, 1 the clock is set,
   or -errno (ERR filled; the client is then done).  */
int avm_qga_process (struct avm_qga *q, avm_error_t *err);
/* What is known so far: the step ("sync", "get-time", "set-time",
   "done"), and once guest-get-time answered, the host's clock minus the
   guest's in nanoseconds at that moment (*KNOWN false before).  */
const char *avm_qga_step (const struct avm_qga *q);
int64_t avm_qga_behind_ns (const struct avm_qga *q, bool *known);
void avm_qga_close (struct avm_qga *q);
void avm_qga_closep (struct avm_qga **q);
#define _cleanup_qga_ __attribute__ ((cleanup (avm_qga_closep)))
