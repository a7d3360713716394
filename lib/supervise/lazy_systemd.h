/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libsystemd.so.0 (sd-event, sd-journal), bound on first use (lib/util/dl.h).
 * Only a supervised start needs it, and it is the heaviest library avm
 * uses: with its dependencies (libgcrypt, liblzma, libzstd, liblz4, libcap)
 * about a millisecond of every process start.  `avm start` begins loading
 * it on a thread of its own (avm_systemd_prefetch) while it plans, so the
 * supervisor finds it loaded; dry runs, status, stop, cvd2img and inspect
 * never load it.  Include this header instead of libsystemd's in lib/;
 * sym_sd_event_new (...) and the others after avm_dlopen_systemd.
 */
#pragma once

#include "util/dl.h"

/* Entries carry avm's own fields (AVM_INSTANCE, AVM_SERVICE, ...), not
   the CODE_FILE/CODE_LINE of the sink that sends every one of them; this
   also makes sd_journal_sendv a function rather than a macro.  */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#define AVM_SYSTEMD_FUNCS(X)                                                                                           \
  X (sd_event_new)                                                                                                     \
  X (sd_event_ref)                                                                                                     \
  X (sd_event_unref)                                                                                                   \
  X (sd_event_loop)                                                                                                    \
  X (sd_event_exit)                                                                                                    \
  X (sd_event_now)                                                                                                     \
  X (sd_event_add_io)                                                                                                  \
  X (sd_event_add_signal)                                                                                              \
  X (sd_event_add_time)                                                                                                \
  X (sd_event_add_time_relative)                                                                                       \
  X (sd_event_add_defer)                                                                                               \
  X (sd_event_source_unref)                                                                                            \
  X (sd_event_source_disable_unref)                                                                                    \
  X (sd_event_source_set_enabled)                                                                                      \
  X (sd_event_source_set_time_relative)                                                                                \
  X (sd_event_source_set_io_events)                                                                                    \
  X (sd_event_source_set_priority)                                                                                     \
  X (sd_journal_sendv)

AVM_DL_DECLARE (AVM_SYSTEMD_FUNCS)

/* Bind the sym_ pointers above, loading libsystemd.so.0 the first time or
   waiting for the load avm_systemd_prefetch started (main thread: it joins
   that thread; later calls return the first outcome).  0, or -errno with
   ERR naming the library, the missing function and the Debian package
   (libsystemd0).  Call it before the first sym_ use; until then the three
   unref functions accept only NULL (lazy.c).  */
int avm_dlopen_systemd (avm_error_t *err);

/* avm_systemd_prefetch, avm_systemd_prefetch_join.  */
#include "supervise/prefetch.h"
