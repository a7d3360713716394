/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Other instances on this host: a guest that would share a vsock CID or a
 * MAC address with a running one (another profile, or a guest_cid/mac
 * set by hand, can make the per-instance offsets meet) cannot reach, or
 * be reached by, the host reliably.  Warnings, not errors: the kernel
 * refuses a CID in use only when QEMU starts (vhost-vsock), and two MACs
 * on separate user-mode networks do not meet.
 */
#pragma once

#include <jansson.h>

/* The guest GUEST (a plan's "guest" object) of instance INSTANCE against
   PEER (the `avm status` JSON of another running instance): one warning
   string appended to WARNINGS for a CID and for each MAC they share.  */
int avm_peers_compare (json_t *guest, int instance, json_t *peer, json_t *warnings);

/* The same against every other instance that runs (1..64, found as
   `avm status` finds them, asked over their control sockets; one that
   does not answer within a second is left out).  */
struct avm_plan;
int avm_peers_check (const struct avm_plan *plan, json_t *warnings);
