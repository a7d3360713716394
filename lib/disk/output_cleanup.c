/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The temporaries of the output writer that are still to be renamed or
 * removed, and the handlers of the cleanup signals that remove them
 * (avm_out_signal_cleanup).  Everything a handler touches is
 * async-signal-safe.
 */
#include "disk/output.h"
#include "disk/output_internal.h"
#include "util/cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

/* Live temporaries, for the signal handlers.  A slot is published with a
   release store after its owner pid is set; the handler only unlinks paths
   created by its own process (a forked child that has not exec'd yet keeps
   the handlers and the registry).  Registration is serialised by a mutex
   the handler never takes.  */
static struct
{
  char *path;
  pid_t pid;
  bool tree; /* a temporary directory, removed whole */
} live[AVM_OUT_MAX_OPEN];
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t handlers_once = PTHREAD_ONCE_INIT;
const int avm_out_cleanup_signals[AVM_OUT_N_CLEANUP_SIGNALS] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

/* Remove NAME in DFD: a file, a symbolic link (never followed) or a
   directory with everything below it, even directories without write
   permission (a host package may have some).  Only system calls, with
   buffers on the stack: the signal handlers call it.  Best effort: goes on
   after a failure; 0 or the first -errno.  */
#define RM_MAX_DEPTH 256
#define RM_BUF 1024

int
avm_out_rm_tree_at (int dfd, const char *name, unsigned depth)
{
  if (unlinkat (dfd, name, 0) == 0 || errno == ENOENT)
    return 0;
  if (errno != EISDIR && errno != EPERM)
    return -errno;
  if (depth >= RM_MAX_DEPTH)
    return -ELOOP;
  int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : -errno;
  (void) fchmod (fd, 0700);
  int r = 0;
  /* Entries are removed while the directory is read: read it again until a
     pass finds nothing more (a few passes at most).  */
  for (int pass = 0; pass < 4; pass++)
    {
      bool any = false;
      if (lseek (fd, 0, SEEK_SET) < 0)
        break;
      for (;;)
        {
          char buf[RM_BUF] __attribute__ ((aligned (8)));
          ssize_t n = getdents64 (fd, buf, sizeof buf);
          if (n <= 0)
            {
              if (n < 0 && !r)
                r = -errno;
              break;
            }
          for (ssize_t off = 0; off < n;)
            {
              const struct dirent64 *d = (const struct dirent64 *) (buf + off);
              off += d->d_reclen;
              if (d->d_name[0] == '.' && (d->d_name[1] == '\0' || (d->d_name[1] == '.' && d->d_name[2] == '\0')))
                continue;
              any = true;
              int e = avm_out_rm_tree_at (fd, d->d_name, depth + 1);
              if (e < 0 && !r)
                r = e;
            }
        }
      if (!any)
        break;
    }
  close (fd);
  if (unlinkat (dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && !r)
    r = -errno;
  return r;
}

void
avm_out_signal_cleanup (void)
{
  pid_t self = getpid ();
  for (size_t i = 0; i < AVM_OUT_MAX_OPEN; i++)
    {
      char *p = __atomic_load_n (&live[i].path, __ATOMIC_ACQUIRE);
      if (p && live[i].pid == self)
        {
          if (live[i].tree)
            (void) avm_out_rm_tree_at (AT_FDCWD, p, 0);
          else
            unlink (p);
        }
    }
}

static void
on_signal (int sig)
{
  struct sigaction dfl = { .sa_handler = SIG_DFL };
  int saved = errno;

  avm_out_signal_cleanup ();
  sigemptyset (&dfl.sa_mask);
  sigaction (sig, &dfl, NULL);
  /* Blocked while this handler runs: delivered, with the default action,
     as soon as it returns.  */
  raise (sig);
  errno = saved;
}

static void
install_handlers (void)
{
  for (size_t i = 0; i < ARRAY_SIZE (avm_out_cleanup_signals); i++)
    {
      struct sigaction old, sa = { .sa_handler = on_signal };
      int sig = avm_out_cleanup_signals[i];

      if (sigaction (sig, NULL, &old) < 0)
        continue;
      if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
        continue; /* ignored, or the program's own: leave it */
      sigemptyset (&sa.sa_mask);
      for (size_t j = 0; j < ARRAY_SIZE (avm_out_cleanup_signals); j++)
        sigaddset (&sa.sa_mask, avm_out_cleanup_signals[j]);
      sigaction (sig, &sa, NULL);
    }
}

int
avm_out_live_add (char *path, bool tree)
{
  int slot = -1;
  pthread_mutex_lock (&live_lock);
  for (int i = 0; i < AVM_OUT_MAX_OPEN; i++)
    if (!live[i].path)
      {
        live[i].pid = getpid ();
        live[i].tree = tree;
        __atomic_store_n (&live[i].path, path, __ATOMIC_RELEASE);
        slot = i;
        break;
      }
  pthread_mutex_unlock (&live_lock);
  return slot;
}

void
avm_out_live_remove (int slot)
{
  if (slot < 0)
    return;
  pthread_mutex_lock (&live_lock);
  __atomic_store_n (&live[slot].path, NULL, __ATOMIC_RELEASE);
  pthread_mutex_unlock (&live_lock);
}

void
avm_out_install_handlers (void)
{
  pthread_once (&handlers_once, install_handlers);
}
