/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sd_notify protocol, both ways (reference/formats.md 7.3, 7.4).
 *
 * Outgoing: avm tells its service manager (systemd, or podman's conmon with
 * Notify=true) READY=1, STATUS=, STOPPING=1, WATCHDOG=1 and
 * EXTEND_TIMEOUT_USEC=.  The socket is taken from $NOTIFY_SOCKET once, at
 * startup, and the variable is removed from the environment with
 * $WATCHDOG_USEC and $WATCHDOG_PID, so that no helper and no QEMU can speak
 * for avm.  Written by hand rather than with libsystemd's sd_notify(): that
 * one reads the environment on every call, and avm must clear it first.
 *
 * Incoming: a helper service with `"ready": "notify"` gets its own datagram
 * socket as $NOTIFY_SOCKET and is ready when it sends READY=1.
 */
#pragma once

#include "util/error.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct avm_notifier
{
  int fd;                 /* -1: no service manager listening */
  char *socket;           /* as given in $NOTIFY_SOCKET */
  uint64_t watchdog_usec; /* 0: no watchdog */
};

/* Take $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID out of the
   environment.  An unusable socket address is an error (the manager would
   otherwise wait for READY=1 forever).  */
int avm_notifier_open (struct avm_notifier *n, avm_error_t *err);
void avm_notifier_close (struct avm_notifier *n);

/* Send one datagram of newline-separated KEY=VALUE lines.  Nothing happens
   without a socket.  Returns 0 or -errno (the manager may be gone: callers
   log and go on).  */
int avm_notify (struct avm_notifier *n, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* Parse the address of a $NOTIFY_SOCKET value ("/path" or "@abstract") into
   a sockaddr_un; returns its length or -EINVAL.  */
struct sockaddr_un;
int avm_notify_addr (const char *value, struct sockaddr_un *sa);

/* A receiving socket for a service, bound at PATH (mode 0600, SOCK_DGRAM,
   non-blocking, close-on-exec, credentials passed).  */
int avm_notify_listen (const char *path, int *fd, avm_error_t *err);

/* Read every datagram waiting on FD; *READY is set when one has a READY=1
   line (from any process: the socket is private to the service's runtime
   directory), *STATUS (malloc'd, replacing the previous one) gets the last
   STATUS= value.  Returns 0 or -errno.  */
int avm_notify_receive (int fd, bool *ready, char **status);
