/* SPDX-License-Identifier: Apache-2.0 */
#include "disk/progress.h"

#include <stdio.h>
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
