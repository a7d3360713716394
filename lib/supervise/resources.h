/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plan's resources ("resources" array of `avm start --dry-run --json`),
 * created before any process starts and held by the supervisor for its whole
 * life, so helpers restarted later get the same descriptors and QEMU never
 * blocks on a FIFO nobody has open:
 *
 *   fifo          mkfifo PATH 0600 (an existing FIFO is reused and drained),
 *                 kept open O_RDWR; fd NAME
 *   fifo-pair     the same for PATH.in and PATH.out (QEMU `pipe` chardevs);
 *                 fds NAME.in, NAME.out
 *   pipe          pipe2; fds NAME.read, NAME.write
 *   unix-listen   listening AF_UNIX stream socket at PATH, mode 0600; fd NAME
 *   vsock-listen  listening AF_VSOCK stream socket, any CID, PORT; fd NAME
 *   tcp-listen    listening TCP socket on ADDRESS (a literal IPv4 or IPv6
 *                 address, default 127.0.0.1) and PORT; fd NAME
 *   file          PATH written with CONTENT, mode 0600; no descriptor (only
 *                 avm's own plan makes these: the private D-Bus's
 *                 configuration, the Cuttlefish configuration)
 *   socketpair    a connected AF_UNIX stream pair: fd NAME for a helper,
 *                 NAME.peer held by the supervisor
 *   directory     mkdir -p PATH (0700 for what is created); no descriptor
 *   port          a PORT a helper binds itself (moved per instance like
 *                 the listeners); nothing is created
 *
 * Every descriptor is close-on-exec (the spawner dups the ones a child
 * names with ${fd:NAME}).  The FIFO of a `log` resource is left non-blocking
 * for the supervisor's own event loop; every other descriptor is blocking,
 * as the helpers it is passed to expect (the flag belongs to the open file
 * description a child shares).
 */
#pragma once

#include "plan/plan.h"
#include "util/cleanup.h"
#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct avm_resources;

/* One descriptor, in creation order (a fifo-pair or a pipe gives two).  */
struct avm_resource_fd
{
  const char *name;     /* as in ${fd:NAME}: "kernel", "keymaster.in", "adb_events.read" */
  const char *resource; /* the resource's name: "keymaster" */
  const char *type;     /* "fifo", "fifo-pair", "pipe", "unix-listen", "vsock-listen", "tcp-listen" */
  const char *path;     /* the FIFO or socket, or NULL */
  int port;             /* vsock and TCP listeners (the bound port), else -1 */
  int fd;
  const struct avm_plan_resource *res; /* the plan's resource (log, console, tee, ...) */
};

/* Create the N resources V (a plan's: avm_plan.resources, borrowed for the
   life of *OUT) in order.  On failure everything created so far is closed
   and removed.  */
int avm_resources_create_plan (const struct avm_plan_resource *v, size_t n, struct avm_resources **out,
                               avm_error_t *err);

/* Close everything; remove the FIFOs this created and the unix sockets
   (only while they still are the ones created).  NULL is accepted.  */
void avm_resources_free (struct avm_resources *r);
DEFINE_TRIVIAL_CLEANUP_FUNC (struct avm_resources *, avm_resources_free)
#define _cleanup_resources_ __attribute__ ((cleanup (avm_resources_freep)))

/* Descriptor of NAME ("kernel", "keymaster.in", "adb_events.write"), or -1.  */
int avm_resources_fd (const struct avm_resources *r, const char *name);

/* avm_resources_fd for avm_spawn_request.lookup (DATA is the resources).  */
int avm_resources_lookup (void *data, const char *name);

/* Iteration: descriptors 0 .. count - 1 in creation order, and by name.  */
size_t avm_resources_count (const struct avm_resources *r);
const struct avm_resource_fd *avm_resources_at (const struct avm_resources *r, size_t i);
const struct avm_resource_fd *avm_resources_find (const struct avm_resources *r, const char *name);
