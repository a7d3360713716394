/* SPDX-License-Identifier: Apache-2.0 */
/* First-use binding of libsystemd (see lazy_systemd.h and util/dl.h). */
#define AVM_LAZY_SYSTEMD_IMPL
#include "supervise/lazy_systemd.h"

#include "util/dl.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

AVM_DL_TABLE (systemd, AVM_SYSTEMD_FUNCS, "libsystemd.so.0", "Debian: libsystemd0")

/* The prefetching thread, joined by the first avm_systemd() (callers are
   all on the main thread), so that nothing of it outlives its work.  */
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

const struct avm_systemd_api *
avm_systemd (void)
{
  avm_systemd_prefetch_join ();
  return systemd_table ();
}

static void *
prefetch (void *unused)
{
  systemd_table ();
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
