/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libsystemd.so.0 (sd-event, sd-journal), bound on first use (lib/util/dl.h).
 * Only a supervised start needs it, and it is the heaviest library avm
 * uses: with its dependencies (libgcrypt, liblzma, libzstd, liblz4, libcap)
 * about a millisecond of every process start.  `avm start` begins loading
 * it on a thread of its own (avm_systemd_prefetch) while it plans, so the
 * supervisor finds it loaded; dry runs, status, stop, cvd2img and inspect
 * never load it.  Include this header instead of libsystemd's in lib/.
 */
#pragma once

/* Entries carry avm's own fields (AVM_INSTANCE, AVM_SERVICE, ...), not
   the CODE_FILE/CODE_LINE of the sink that sends every one of them; this
   also makes sd_journal_sendv a function rather than a macro.  */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#define AVM_SYSTEMD_FUNCS(X) \
  X (sd_event_new) \
  X (sd_event_ref) \
  X (sd_event_unref) \
  X (sd_event_loop) \
  X (sd_event_exit) \
  X (sd_event_now) \
  X (sd_event_add_io) \
  X (sd_event_add_signal) \
  X (sd_event_add_time) \
  X (sd_event_add_time_relative) \
  X (sd_event_add_defer) \
  X (sd_event_source_unref) \
  X (sd_event_source_disable_unref) \
  X (sd_event_source_set_enabled) \
  X (sd_event_source_set_time_relative) \
  X (sd_event_source_set_io_events) \
  X (sd_event_source_set_priority) \
  X (sd_journal_sendv)

struct avm_systemd_api
{
#define X(f) __typeof__ (f) *f;
  AVM_SYSTEMD_FUNCS (X)
#undef X
};

/* The table; loads libsystemd.so.0 the first time, or waits for the load
   avm_systemd_prefetch started (exits 1 if it cannot: Debian: libsystemd0).  */
const struct avm_systemd_api *avm_systemd (void);

/* avm_systemd_prefetch, avm_systemd_prefetch_join.  */
#include "supervise/prefetch.h"

#ifndef AVM_LAZY_SYSTEMD_IMPL
#define sd_event_new(...) (avm_systemd ()->sd_event_new (__VA_ARGS__))
#define sd_event_ref(...) (avm_systemd ()->sd_event_ref (__VA_ARGS__))
#define sd_event_unref(...) (avm_systemd ()->sd_event_unref (__VA_ARGS__))
#define sd_event_loop(...) (avm_systemd ()->sd_event_loop (__VA_ARGS__))
#define sd_event_exit(...) (avm_systemd ()->sd_event_exit (__VA_ARGS__))
#define sd_event_now(...) (avm_systemd ()->sd_event_now (__VA_ARGS__))
#define sd_event_add_io(...) (avm_systemd ()->sd_event_add_io (__VA_ARGS__))
#define sd_event_add_signal(...) (avm_systemd ()->sd_event_add_signal (__VA_ARGS__))
#define sd_event_add_time(...) (avm_systemd ()->sd_event_add_time (__VA_ARGS__))
#define sd_event_add_time_relative(...) (avm_systemd ()->sd_event_add_time_relative (__VA_ARGS__))
#define sd_event_add_defer(...) (avm_systemd ()->sd_event_add_defer (__VA_ARGS__))
#define sd_event_source_unref(...) (avm_systemd ()->sd_event_source_unref (__VA_ARGS__))
#define sd_event_source_disable_unref(...) (avm_systemd ()->sd_event_source_disable_unref (__VA_ARGS__))
#define sd_event_source_set_enabled(...) (avm_systemd ()->sd_event_source_set_enabled (__VA_ARGS__))
#define sd_event_source_set_time_relative(...) (avm_systemd ()->sd_event_source_set_time_relative (__VA_ARGS__))
#define sd_event_source_set_io_events(...) (avm_systemd ()->sd_event_source_set_io_events (__VA_ARGS__))
#define sd_event_source_set_priority(...) (avm_systemd ()->sd_event_source_set_priority (__VA_ARGS__))
#define sd_journal_sendv(...) (avm_systemd ()->sd_journal_sendv (__VA_ARGS__))
#endif
