/* SPDX-License-Identifier: Apache-2.0 */
/* First-use binding of libsystemd (see lazy_systemd.h and util/dl.h). */
#include "supervise/lazy_systemd.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

AVM_DL_TABLE (systemd, AVM_SYSTEMD_FUNCS, "libsystemd.so.0", "libsystemd0")

/* Until libsystemd is bound (and for good when it cannot be), the unref
   functions are these, which accept what the library's accept before any
   event loop exists: NULL.  A supervisor that fails before its loop (a
   busy runtime directory, a missing libsystemd) releases its event
   sources, all NULL, through them, and loads no library to do so.
   (avm_dl_load writes the pointers only once all functions are found.)  */
static sd_event *
unref_nothing (sd_event *e)
{
  return NULL;
}
static sd_event_source *
unref_no_source (sd_event_source *s)
{
  return NULL;
}
__typeof__ (sd_event_unref) *sym_sd_event_unref = unref_nothing;
__typeof__ (sd_event_source_unref) *sym_sd_event_source_unref = unref_no_source;
__typeof__ (sd_event_source_disable_unref) *sym_sd_event_source_disable_unref = unref_no_source;

/* The prefetching thread, joined by the first avm_dlopen_systemd (callers
   are all on the main thread), so that nothing of it outlives its work.  */
static pthread_t prefetcher;
static bool prefetching;

void
avm_systemd_prefetch_join (void)
{
  if (prefetching)
    {
      pthread_join (prefetcher, NULL);
      prefetching = false;
    }
}

int
avm_dlopen_systemd (avm_error_t *err)
{
  avm_systemd_prefetch_join ();
  return systemd_bind (err);
}

static void *
prefetch (void *unused)
{
  (void) systemd_bind (NULL);
  return NULL;
}

void
avm_systemd_prefetch (void)
{
  pthread_attr_t attr;
  sigset_t all;

  if (prefetching || pthread_attr_init (&attr) != 0)
    return;
  /* Blocked signals: whatever arrives meanwhile is for the main thread (and
     its signalfd), never for this one.  A small stack: dlopen needs little.  */
  sigfillset (&all);
  if (pthread_attr_setsigmask_np (&attr, &all) == 0 && pthread_attr_setstacksize (&attr, 256 * 1024) == 0)
    prefetching = pthread_create (&prefetcher, &attr, prefetch, NULL) == 0;
  pthread_attr_destroy (&attr);
}
