/* SPDX-License-Identifier: Apache-2.0 */
#include "disk/progress.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static long long
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void
avm_progress_init (struct avm_progress *p, uint64_t total, bool quiet)
{
  struct winsize ws;
  p->enabled = !quiet && isatty (STDERR_FILENO);
  p->total = total;
  p->done = 0;
  p->item = "";
  p->start_ns = p->last_ns = now_ns ();
  p->width = ioctl (STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 40 ? ws.ws_col : 80;
}

void
avm_progress_item (struct avm_progress *p, const char *item)
{
  p->item = item;
}

static void
draw (struct avm_progress *p, long long now)
{
  char done[32], total[32], rate[32], eta[32] = "--:--";
  double secs = (now - p->start_ns) / 1e9;
  double bps = secs > 0 ? p->done / secs : 0;
  avm_format_bytes (p->done, done, sizeof done);
  avm_format_bytes (p->total, total, sizeof total);
  avm_format_bytes ((uint64_t) bps, rate, sizeof rate);
  if (bps > 0 && p->total >= p->done)
    {
      long long left = (long long) ((p->total - p->done) / bps);
      snprintf (eta, sizeof eta, "%lld:%02lld", left / 60, left % 60);
    }
  int pct = p->total ? (int) (p->done * 100 / p->total) : 100;
  int barw = p->width - 60;
  if (barw < 10)
    barw = 10;
  if (barw > 40)
    barw = 40;
  char bar[64];
  int fill = barw * pct / 100;
  for (int i = 0; i < barw; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[barw] = '\0';
  fprintf (stderr, "\r[%s] %3d%% %s/%s %s/s ETA %s %-16.16s", bar, pct, done, total, rate, eta, p->item);
  fflush (stderr);
  p->last_ns = now;
}

void
avm_progress_add (void *data, uint64_t bytes)
{
  struct avm_progress *p = data;
  p->done += bytes;
  if (!p->enabled)
    return;
  long long now = now_ns ();
  if (now - p->last_ns >= 100000000LL)
    draw (p, now);
}

void
avm_progress_done (struct avm_progress *p)
{
  if (!p->enabled)
    return;
  draw (p, now_ns ());
  fputc ('\n', stderr);
}

/* ---- status line ------------------------------------------------------ */

/* With S->lock held.  */
static void
status_draw (struct avm_status *s)
{
  char line[sizeof s->text + 32];
  long long secs = (now_ns () - s->step_ns) / 1000000000LL;
  int n = snprintf (line, sizeof line, "%s (%lld s)", s->text, secs);
  if (n >= s->width)
    n = s->width - 1; /* never wraps: \r returns to its start */
  if (n < 0)
    n = 0;
  fprintf (stderr, "\r%.*s%*s", n, line, s->drawn > n ? s->drawn - n : 0, "");
  fflush (stderr);
  s->drawn = n;
}

static void *
status_ticker (void *data)
{
  struct avm_status *s = data;
  pthread_mutex_lock (&s->lock);
  while (!s->stop)
    {
      struct timespec ts;
      clock_gettime (CLOCK_MONOTONIC, &ts);
      ts.tv_sec += 1;
      pthread_cond_timedwait (&s->wake, &s->lock, &ts);
      if (!s->stop)
        status_draw (s);
    }
  pthread_mutex_unlock (&s->lock);
  return NULL;
}

void
avm_status_begin (struct avm_status *s, bool quiet)
{
  struct winsize ws;
  pthread_condattr_t ca;
  memset (s, 0, sizeof *s);
  s->enabled = !quiet && isatty (STDERR_FILENO);
  if (!s->enabled)
    return;
  s->width = ioctl (STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20 ? ws.ws_col : 80;
  s->step_ns = now_ns ();
  pthread_mutex_init (&s->lock, NULL);
  pthread_condattr_init (&ca);
  pthread_condattr_setclock (&ca, CLOCK_MONOTONIC);
  pthread_cond_init (&s->wake, &ca);
  pthread_condattr_destroy (&ca);
  /* The ticker takes no signal: they stay the main thread's.  */
  sigset_t all, old;
  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &old);
  s->running = pthread_create (&s->thread, NULL, status_ticker, s) == 0;
  pthread_sigmask (SIG_SETMASK, &old, NULL);
}

void
avm_status_step (struct avm_status *s, const char *fmt, ...)
{
  va_list ap;
  if (!s || !s->enabled)
    return;
  pthread_mutex_lock (&s->lock);
  va_start (ap, fmt);
  vsnprintf (s->text, sizeof s->text, fmt, ap);
  va_end (ap);
  for (char *c = s->text; *c; c++)
    if ((unsigned char) *c < 0x20 || (unsigned char) *c >= 0x7f)
      *c = '?';
  s->step_ns = now_ns ();
  status_draw (s);
  pthread_mutex_unlock (&s->lock);
}

void
avm_status_end (struct avm_status *s)
{
  if (!s->enabled)
    return;
  pthread_mutex_lock (&s->lock);
  s->stop = true;
  pthread_cond_signal (&s->wake);
  pthread_mutex_unlock (&s->lock);
  if (s->running)
    pthread_join (s->thread, NULL);
  if (s->drawn)
    fprintf (stderr, "\r%*s\r", s->drawn, "");
  fflush (stderr);
  pthread_cond_destroy (&s->wake);
  pthread_mutex_destroy (&s->lock);
  s->enabled = s->running = false;
}
