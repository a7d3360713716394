/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loading libsystemd ahead of need (lib/supervise/lazy.c), for `avm start`:
 * apart from lazy_systemd.h so that the CLI does not see sd-event.
 */
#pragma once

/* Start loading libsystemd on a short-lived thread, with every signal
   blocked, so that it overlaps what the caller does next (avm_dlopen_systemd
   joins it).  Without a thread (pthread_create failing) avm_dlopen_systemd
   loads it when first called.  */
void avm_systemd_prefetch (void);
/* Wait for the prefetching thread, if one runs (a start that ends before
   the supervisor used libsystemd: nothing of the thread outlives avm's
   work).  Main thread only.  */
void avm_systemd_prefetch_join (void);
