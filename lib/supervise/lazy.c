/* SPDX-License-Identifier: Apache-2.0 */
/* First-use binding of libsystemd (see lazy_systemd.h and util/dl.h). */
#define AVM_LAZY_SYSTEMD_IMPL
#include "supervise/lazy_systemd.h"

#include "util/dl.h"

#include <pthread.h>
#include <signal.h>

AVM_DL_DEFINE (systemd, AVM_SYSTEMD_FUNCS, "libsystemd.so.0", "Debian: libsystemd0")

static void *
prefetch (void *unused)
{
  avm_systemd ();
  return NULL;
}

void
avm_systemd_prefetch (void)
{
  pthread_attr_t attr;
  sigset_t all;
  pthread_t t;

  if (pthread_attr_init (&attr) != 0)
    return;
  /* Blocked signals: whatever arrives meanwhile is for the main thread (and
     its signalfd), never for this one.  A small stack: dlopen needs little.  */
  sigfillset (&all);
  if (pthread_attr_setsigmask_np (&attr, &all) == 0 && pthread_attr_setstacksize (&attr, 256 * 1024) == 0
      && pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED) == 0)
    pthread_create (&t, &attr, prefetch, NULL);
  pthread_attr_destroy (&attr);
}
