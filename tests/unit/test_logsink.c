/* SPDX-License-Identifier: Apache-2.0 */
/* Log sinks: rotation and size caps, line splitting and its bounded buffer,
   tee and echo descriptors, draining, refusals, write errors and the journal
   (the last two in a private mount namespace when root). */
#include "supervise/logsink.h"
#include "util/cleanup.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir;

static void
setup (void)
{
  dir = tu_tmpdir ();
  umask (022);
}

static void
teardown (void)
{
  tu_rmtree (dir);
  free (dir);
}

TestSuite (logsink, .init = setup, .fini = teardown);

static char *
path_in (const char *name)
{
  char *p = NULL;
  cr_assert (asprintf (&p, "%s/%s", dir, name) >= 0);
  return p;
}

/* Size of DIR/NAME, -1 when missing.  */
static long long
fsize (const char *name)
{
  _cleanup_free_ char *p = path_in (name);
  struct stat st;
  if (lstat (p, &st) < 0)
    return -1;
  return st.st_size;
}

static char *
slurp (const char *name)
{
  _cleanup_free_ char *p = path_in (name);
  char *s = tu_read (p);
  cr_assert_not_null (s, "%s: %s", p, strerror (errno));
  return s;
}

static struct avm_logsink *
open_sink (uint64_t max_size, unsigned keep, int echo_fd)
{
  struct avm_logsink_config cfg = { .dir = dir, .max_size = max_size, .keep = keep, .echo_fd = echo_fd };
  struct avm_logsink *s = NULL;
  avm_error_t err = NULL;
  int r = avm_logsink_open (&cfg, "con", "svc", 6, &s, &err);
  cr_assert_eq (r, 0, "%s", err ? err->msg : "?");
  cr_assert_not_null (s);
  return s;
}

static void
feed_str (struct avm_logsink *s, const char *str)
{
  avm_logsink_feed (s, str, strlen (str));
}

/* Lines seen by the callback: the first 64 kept, all counted.  */
struct lines
{
  size_t n;
  size_t total;
  size_t max_len;
  char last[128];
  char *v[64];
  size_t len[64];
};

static void
collect (void *data, const char *line, size_t len)
{
  struct lines *l = data;
  cr_assert_eq (line[len], '\0', "line not NUL-terminated");
  if (l->n < ARRAY_SIZE (l->v))
    {
      l->v[l->n] = malloc (len + 1);
      memcpy (l->v[l->n], line, len + 1);
      l->len[l->n] = len;
    }
  snprintf (l->last, sizeof l->last, "%s", line);
  l->n++;
  l->total += len;
  if (len > l->max_len)
    l->max_len = len;
}

static void
lines_free (struct lines *l)
{
  for (size_t i = 0; i < l->n && i < ARRAY_SIZE (l->v); i++)
    free (l->v[i]);
}

/* 100 numbered lines of 35 bytes.  */
static char *
numbered_input (void)
{
  char *in = malloc (3500 + 1), *p = in;
  for (int i = 0; i < 100; i++)
    {
      int n = sprintf (p, "line %04d: abcdefghijklmnopqrstuvw\n", i);
      cr_assert_eq (n, 35);
      p += n;
    }
  return in;
}

/* NAME.log.KEEP ... NAME.log.1 NAME.log together are the tail of IN, no
   file exceeds MAX and there is no NAME.log.KEEP+1.  */
static void
check_tail (const char *in, size_t in_len, size_t max, unsigned keep)
{
  char *all = strdup ("");
  for (unsigned g = keep + 1; g-- > 0;)
    {
      char name[32];
      if (g)
        snprintf (name, sizeof name, "con.log.%u", g);
      else
        snprintf (name, sizeof name, "con.log");
      _cleanup_free_ char *c = slurp (name);
      cr_assert_leq (strlen (c), max, "%s: %zu bytes", name, strlen (c));
      char *n = NULL;
      cr_assert (asprintf (&n, "%s%s", all, c) >= 0);
      free (all);
      all = n;
    }
  size_t n = strlen (all);
  cr_assert (n <= in_len);
  cr_assert (memcmp (all, in + in_len - n, n) == 0, "the generations are not the tail of the input");
  char extra[32];
  snprintf (extra, sizeof extra, "con.log.%u", keep + 1);
  cr_assert_eq (fsize (extra), -1, "%s was kept", extra);
  free (all);
}

Test (logsink, rotation_line_by_line)
{
  _cleanup_free_ char *in = numbered_input ();
  struct avm_logsink *s = open_sink (1000, 2, -1);
  for (int i = 0; i < 100; i++)
    avm_logsink_feed (s, in + 35 * i, 35);
  /* 28 lines (980 bytes) per file: lines 28-55, 56-83 and 84-99 remain.  */
  cr_assert_eq (fsize ("con.log.2"), 980);
  cr_assert_eq (fsize ("con.log.1"), 980);
  cr_assert_eq (fsize ("con.log"), 560);
  check_tail (in, 3500, 1000, 2);
  _cleanup_free_ char *g2 = slurp ("con.log.2");
  cr_assert (strncmp (g2, "line 0028:", 10) == 0, "%.20s", g2);
  cr_assert_eq (avm_logsink_bytes (s), 3500);
  cr_assert_null (avm_logsink_error (s));
  avm_logsink_free (s);
}

Test (logsink, rotation_single_large_write)
{
  _cleanup_free_ char *in = numbered_input ();
  struct avm_logsink *s = open_sink (1000, 2, -1);
  avm_logsink_feed (s, in, 3500);
  /* Pieces of 1000, 1000, 1000 and 500: the first one is gone.  */
  cr_assert_eq (fsize ("con.log.2"), 1000);
  cr_assert_eq (fsize ("con.log.1"), 1000);
  cr_assert_eq (fsize ("con.log"), 500);
  check_tail (in, 3500, 1000, 2);
  avm_logsink_free (s);
}

Test (logsink, rotation_odd_chunks)
{
  _cleanup_free_ char *in = numbered_input ();
  struct avm_logsink *s = open_sink (1000, 2, -1);
  size_t off = 0, step = 1;
  while (off < 3500)
    {
      size_t n = step < 3500 - off ? step : 3500 - off;
      avm_logsink_feed (s, in + off, n);
      off += n;
      step = (step * 7 + 3) % 1500 + 1;
    }
  check_tail (in, 3500, 1000, 2);
  cr_assert (fsize ("con.log") + fsize ("con.log.1") + fsize ("con.log.2") >= 1000);
  avm_logsink_free (s);
}

Test (logsink, rotation_keeps_generations_in_order)
{
  _cleanup_free_ char *in = numbered_input ();
  struct avm_logsink *s = open_sink (500, 3, -1);
  for (int i = 0; i < 100; i++)
    avm_logsink_feed (s, in + 35 * i, 35);
  /* 14 lines (490 bytes) per file: 8 files written (the last one 2
     lines), the last 4 kept.  */
  cr_assert_eq (fsize ("con.log.3"), 490);
  cr_assert_eq (fsize ("con.log.2"), 490);
  cr_assert_eq (fsize ("con.log.1"), 490);
  cr_assert_eq (fsize ("con.log"), 70);
  check_tail (in, 3500, 500, 3);
  avm_logsink_free (s);
}

Test (logsink, keep_zero_truncates)
{
  char in[250];
  for (size_t i = 0; i < sizeof in; i++)
    in[i] = (char) ('a' + i % 26);
  struct avm_logsink *s = open_sink (100, 0, -1);
  avm_logsink_feed (s, in, sizeof in);
  cr_assert_eq (fsize ("con.log"), 50);
  cr_assert_eq (fsize ("con.log.1"), -1);
  _cleanup_free_ char *c = slurp ("con.log");
  cr_assert (memcmp (c, in + 200, 50) == 0);
  feed_str (s, "0123456789012345678901234567890123456789012345678901234567890\n"); /* 62 */
  cr_assert_eq (fsize ("con.log"), 62);
  cr_assert_eq (fsize ("con.log.1"), -1);
  avm_logsink_free (s);
}

Test (logsink, unlimited)
{
  static char chunk[4096];
  memset (chunk, 'u', sizeof chunk);
  chunk[sizeof chunk - 1] = '\n';
  struct avm_logsink *s = open_sink (0, 2, -1);
  for (int i = 0; i < 256; i++)
    avm_logsink_feed (s, chunk, sizeof chunk);
  cr_assert_eq (fsize ("con.log"), 1 << 20);
  cr_assert_eq (fsize ("con.log.1"), -1);
  avm_logsink_free (s);
}

Test (logsink, appends_to_existing)
{
  free (tu_write (dir, "con.log", "old\n"));
  struct avm_logsink *s = open_sink (1000, 2, -1);
  feed_str (s, "new\n");
  avm_logsink_free (s);
  _cleanup_free_ char *c = slurp ("con.log");
  cr_assert_str_eq (c, "old\nnew\n");
}

Test (logsink, existing_size_counts)
{
  char old[901];
  memset (old, 'o', 900);
  old[900] = '\0';
  free (tu_write (dir, "con.log", old));
  struct avm_logsink *s = open_sink (1000, 2, -1);
  char in[200];
  memset (in, 'n', sizeof in);
  avm_logsink_feed (s, in, sizeof in);
  cr_assert_eq (fsize ("con.log.1"), 900);
  cr_assert_eq (fsize ("con.log"), 200);
  avm_logsink_free (s);
}

Test (logsink, log_removed_behind_its_back)
{
  struct avm_logsink *s = open_sink (100, 1, -1);
  char in[60];
  memset (in, 'r', sizeof in);
  avm_logsink_feed (s, in, sizeof in);
  _cleanup_free_ char *p = path_in ("con.log");
  cr_assert_eq (unlink (p), 0);
  avm_logsink_feed (s, in, sizeof in);
  cr_assert_eq (fsize ("con.log"), 60);
  cr_assert_eq (fsize ("con.log.1"), -1);
  cr_assert_null (avm_logsink_error (s), "%s", avm_logsink_error (s));
  avm_logsink_free (s);
}

Test (logsink, rotation_failure_keeps_going)
{
  /* con.log.1 is a non-empty directory: neither removed nor replaced.  */
  _cleanup_free_ char *g1 = path_in ("con.log.1");
  cr_assert_eq (mkdir (g1, 0755), 0);
  free (tu_write (g1, "x", "x"));
  struct lines l = { 0 };
  struct avm_logsink *s = open_sink (100, 1, -1);
  avm_logsink_set_line_cb (s, collect, &l);
  feed_str (s, "first: 0123456789012345678901234567890123456789012345678901234567890123456789\n"); /* 78 */
  feed_str (s, "second: 012345678901234567890123456789012345678901234567890123456789012345678\n");
  /* The cap holds (the file was truncated), the error is kept, lines flow.  */
  cr_assert_eq (fsize ("con.log"), 78);
  _cleanup_free_ char *c = slurp ("con.log");
  cr_assert (strncmp (c, "second:", 7) == 0, "%s", c);
  cr_assert_not_null (avm_logsink_error (s));
  cr_assert (strstr (avm_logsink_error (s), "con.log.1"), "%s", avm_logsink_error (s));
  cr_assert_geq (avm_logsink_write_errors (s), 1);
  cr_assert_eq (l.n, 2);
  avm_logsink_free (s);
  lines_free (&l);
}

Test (logsink, creates_directory_and_modes)
{
  _cleanup_free_ char *logs = path_in ("a/b/logs");
  struct avm_logsink_config cfg = { .dir = logs, .echo_fd = -1 };
  struct avm_logsink *s = NULL;
  avm_error_t err = NULL;
  cr_assert_eq (avm_logsink_open (&cfg, "con", NULL, 6, &s, &err), 0, "%s", err ? err->msg : "?");
  /* The configuration may go away: the sink copied what it needs.  */
  cfg.dir = "/nonexistent";
  feed_str (s, "x\n");
  _cleanup_free_ char *expect = NULL;
  cr_assert (asprintf (&expect, "%s/con.log", logs) >= 0);
  cr_assert_str_eq (avm_logsink_path (s), expect);
  struct stat st;
  cr_assert_eq (stat (logs, &st), 0);
  cr_assert_eq (st.st_mode & 07777, 0750, "%o", st.st_mode & 07777);
  cr_assert_eq (stat (expect, &st), 0);
  cr_assert_eq (st.st_mode & 07777, 0640, "%o", st.st_mode & 07777);
  cr_assert_eq (st.st_size, 2);
  avm_logsink_free (s);
}

Test (logsink, line_splitting)
{
  struct lines l = { 0 };
  struct avm_logsink *s = open_sink (0, 0, -1);
  avm_logsink_set_line_cb (s, collect, &l);
  feed_str (s, "hel");
  cr_assert_eq (l.n, 0);
  feed_str (s, "lo\nwor");
  cr_assert_eq (l.n, 1);
  feed_str (s, "ld\r");
  feed_str (s, "\n\nmid\rdle\r\n");
  avm_logsink_feed (s, "nul\0byte\n", 9);
  feed_str (s, "partial");
  cr_assert_eq (l.n, 5);
  cr_assert_str_eq (l.v[0], "hello");
  cr_assert_str_eq (l.v[1], "world");
  cr_assert_eq (l.len[1], 5);
  cr_assert_str_eq (l.v[2], "");
  cr_assert_str_eq (l.v[3], "mid\rdle");
  cr_assert_str_eq (l.v[4], "nul byte");
  avm_logsink_flush (s);
  cr_assert_eq (l.n, 6);
  cr_assert_str_eq (l.v[5], "partial");
  avm_logsink_flush (s);
  cr_assert_eq (l.n, 6, "flush with nothing pending emitted a line");
  avm_logsink_free (s);
  /* The file has the bytes as they came.  */
  static const char raw[] = "hello\nworld\r\n\nmid\rdle\r\nnul\0byte\npartial";
  _cleanup_free_ char *c = slurp ("con.log");
  cr_assert_eq (fsize ("con.log"), (long long) sizeof raw - 1);
  cr_assert (memcmp (c, raw, sizeof raw - 1) == 0);
  lines_free (&l);
}

Test (logsink, free_flushes_partial_line)
{
  struct lines l = { 0 };
  struct avm_logsink *s = open_sink (0, 0, -1);
  avm_logsink_set_line_cb (s, collect, &l);
  feed_str (s, "no newline at the end\r");
  cr_assert_eq (l.n, 0);
  avm_logsink_free (s);
  cr_assert_eq (l.n, 1);
  cr_assert_str_eq (l.v[0], "no newline at the end");
  lines_free (&l);
}

Test (logsink, long_lines_in_pieces)
{
  static char flood[10000];
  memset (flood, 'a', sizeof flood);
  struct lines l = { 0 };
  struct avm_logsink *s = open_sink (0, 0, -1);
  avm_logsink_set_line_cb (s, collect, &l);
  for (size_t off = 0; off < sizeof flood; off += 1000)
    avm_logsink_feed (s, flood + off, 1000);
  cr_assert_eq (l.n, 2);
  cr_assert_eq (l.len[0], AVM_LOGSINK_LINE_MAX);
  cr_assert_eq (l.len[1], AVM_LOGSINK_LINE_MAX);
  cr_assert_eq (strlen (l.v[0]), AVM_LOGSINK_LINE_MAX);
  avm_logsink_flush (s);
  cr_assert_eq (l.n, 3);
  cr_assert_eq (l.len[2], 10000 - 2 * AVM_LOGSINK_LINE_MAX);
  /* A line of exactly the maximum and its newline: one line.  */
  static char exact[AVM_LOGSINK_LINE_MAX + 1];
  memset (exact, 'e', AVM_LOGSINK_LINE_MAX);
  exact[AVM_LOGSINK_LINE_MAX] = '\n';
  avm_logsink_feed (s, exact, sizeof exact);
  feed_str (s, "next\n");
  cr_assert_eq (l.n, 5);
  cr_assert_eq (l.len[3], AVM_LOGSINK_LINE_MAX);
  cr_assert_str_eq (l.v[4], "next");
  /* A long line with CRLF in one feed.  */
  static char crlf[9000];
  memset (crlf, 'c', sizeof crlf);
  memcpy (crlf + sizeof crlf - 2, "\r\n", 2);
  avm_logsink_feed (s, crlf, sizeof crlf);
  cr_assert_eq (l.n, 8);
  cr_assert_eq (l.len[5] + l.len[6] + l.len[7], 8998);
  cr_assert_eq (l.max_len, AVM_LOGSINK_LINE_MAX);
  avm_logsink_free (s);
  lines_free (&l);
}

static void
count_only (void *data, const char *line, size_t len)
{
  size_t *c = data;
  *c += 1;
  cr_assert_leq (len, AVM_LOGSINK_LINE_MAX);
}

Test (logsink, flood_without_newlines_bounded_memory)
{
  static char chunk[65536];
  memset (chunk, 'f', sizeof chunk);
  size_t count = 0;
  struct avm_logsink *s = open_sink (1 << 20, 1, -1);
  avm_logsink_set_line_cb (s, count_only, &count);
  avm_logsink_feed (s, chunk, sizeof chunk);
  struct mallinfo2 before = mallinfo2 ();
  for (int i = 0; i < 255; i++)
    avm_logsink_feed (s, chunk, sizeof chunk);
  struct mallinfo2 after = mallinfo2 ();
  /* 16 MiB went through; the heap did not follow.  */
  cr_assert_lt (after.uordblks, before.uordblks + 65536, "heap grew from %zu to %zu", before.uordblks, after.uordblks);
  cr_assert_eq (count, (size_t) (256 * 65536) / AVM_LOGSINK_LINE_MAX - 1);
  cr_assert_leq (fsize ("con.log"), 1 << 20);
  cr_assert_eq (avm_logsink_bytes (s), 256 * 65536);
  avm_logsink_free (s);
  cr_assert_eq (count, (size_t) (256 * 65536) / AVM_LOGSINK_LINE_MAX);
}

static size_t
read_all (int fd, char *buf, size_t size)
{
  size_t got = 0;
  for (;;)
    {
      ssize_t n = read (fd, buf + got, size - got);
      if (n <= 0)
        break;
      got += (size_t) n;
      if (got == size)
        break;
    }
  return got;
}

Test (logsink, tee_through_pipe_drops_when_full)
{
  int p[2];
  cr_assert_eq (pipe2 (p, O_NONBLOCK | O_CLOEXEC), 0);
  cr_assert_geq (fcntl (p[1], F_SETPIPE_SZ, 65536), 65536);
  size_t cap = (size_t) fcntl (p[1], F_GETPIPE_SZ);
  struct avm_logsink *s = open_sink (0, 0, -1);
  avm_logsink_set_tee (s, p[1]);

  char buf[4096];
  feed_str (s, "abc\n");
  cr_assert_eq (read (p[0], buf, sizeof buf), 4);
  cr_assert (memcmp (buf, "abc\n", 4) == 0);
  cr_assert_eq (avm_logsink_tee_dropped (s), 0);

  _cleanup_free_ char *big = malloc (cap + 1000);
  memset (big, 'k', cap + 1000);
  avm_logsink_feed (s, big, cap);
  cr_assert_eq (avm_logsink_tee_dropped (s), 0);
  avm_logsink_feed (s, big, 1000);
  cr_assert_eq (avm_logsink_tee_dropped (s), 1000);
  /* A write that fits only partly: the rest is dropped.  */
  _cleanup_free_ char *sink = malloc (cap + 4096);
  cr_assert_eq (read_all (p[0], sink, cap + 4096), cap);
  avm_logsink_feed (s, big, cap - 4096);
  avm_logsink_feed (s, big, 8192);
  cr_assert_eq (avm_logsink_tee_dropped (s), 1000 + 4096);
  cr_assert_eq (read_all (p[0], sink, cap + 4096), cap);

  feed_str (s, "z\n");
  cr_assert_eq (read (p[0], buf, sizeof buf), 2);
  cr_assert_eq (avm_logsink_tee_dropped (s), 1000 + 4096);
  /* The log file got everything.  */
  cr_assert_eq (fsize ("con.log"), (long long) (4 + cap + 1000 + cap - 4096 + 8192 + 2));
  avm_logsink_set_tee (s, -1);
  feed_str (s, "off\n");
  cr_assert_eq (read (p[0], buf, sizeof buf), -1);
  cr_assert_eq (errno, EAGAIN);
  avm_logsink_free (s);
  close (p[0]);
  close (p[1]);
}

Test (logsink, closed_readers_raise_no_sigpipe)
{
  signal (SIGPIPE, SIG_DFL);
  int t[2], e[2];
  cr_assert_eq (pipe2 (t, O_NONBLOCK | O_CLOEXEC), 0);
  cr_assert_eq (pipe2 (e, O_NONBLOCK | O_CLOEXEC), 0);
  close (t[0]);
  close (e[0]);
  struct lines l = { 0 };
  struct avm_logsink *s = open_sink (0, 0, e[1]);
  avm_logsink_set_tee (s, t[1]);
  avm_logsink_set_line_cb (s, collect, &l);
  feed_str (s, "x\n");
  feed_str (s, "yy\n");
  /* Still alive, nothing pending, the bytes counted as dropped.  */
  sigset_t pending;
  cr_assert_eq (sigpending (&pending), 0);
  cr_assert_not (sigismember (&pending, SIGPIPE));
  cr_assert_eq (avm_logsink_tee_dropped (s), 5);
  cr_assert_eq (l.n, 2);
  cr_assert_eq (fsize ("con.log"), 5);
  avm_logsink_free (s);
  close (t[1]);
  close (e[1]);
  lines_free (&l);
}

Test (logsink, echo_format)
{
  int p[2];
  cr_assert_eq (pipe2 (p, O_NONBLOCK | O_CLOEXEC), 0);
  struct avm_logsink *s = open_sink (0, 0, p[1]);
  feed_str (s, "a\r\nb");
  feed_str (s, "\n");
  avm_logsink_feed (s, "z\0z\n", 4);
  feed_str (s, "c");
  avm_logsink_flush (s);
  char buf[256] = { 0 };
  ssize_t n = read (p[0], buf, sizeof buf - 1);
  cr_assert_gt (n, 0);
  cr_assert_str_eq (buf, "[con] a\n[con] b\n[con] z z\n[con] c\n");
  avm_logsink_free (s);
  close (p[0]);
  close (p[1]);
}

Test (logsink, drain_results)
{
  int p[2];
  cr_assert_eq (pipe2 (p, O_NONBLOCK | O_CLOEXEC), 0);
  cr_assert_geq (fcntl (p[1], F_SETPIPE_SZ, 1 << 20), 1 << 20);
  struct lines l = { 0 };
  struct avm_logsink *s = open_sink (0, 0, -1);
  avm_logsink_set_line_cb (s, collect, &l);

  cr_assert_eq (avm_logsink_drain (s, p[0]), AVM_LOGSINK_AGAIN);
  cr_assert_eq (avm_logsink_bytes (s), 0);

  /* 400 KiB of 100-byte lines: more than one call's budget.  */
  char line[100];
  memset (line, 'd', sizeof line);
  line[99] = '\n';
  for (int i = 0; i < 4096; i++)
    cr_assert_eq (write (p[1], line, sizeof line), (ssize_t) sizeof line);
  cr_assert_eq (avm_logsink_drain (s, p[0]), AVM_LOGSINK_MORE);
  cr_assert_eq (avm_logsink_bytes (s), AVM_LOGSINK_DRAIN_BUDGET);
  cr_assert_eq (avm_logsink_drain (s, p[0]), AVM_LOGSINK_AGAIN);
  cr_assert_eq (avm_logsink_bytes (s), 409600);
  cr_assert_eq (l.n, 4096);
  cr_assert_eq (avm_logsink_drain (s, p[0]), AVM_LOGSINK_AGAIN);

  cr_assert_eq (write (p[1], "tail", 4), 4);
  cr_assert_eq (avm_logsink_drain (s, p[0]), AVM_LOGSINK_AGAIN);
  cr_assert_eq (l.n, 4096);
  close (p[1]);
  cr_assert_eq (avm_logsink_drain (s, p[0]), AVM_LOGSINK_EOF);
  cr_assert_eq (l.n, 4097);
  cr_assert_str_eq (l.last, "tail");
  cr_assert_eq (avm_logsink_bytes (s), 409604);
  close (p[0]);

  cr_assert_eq (avm_logsink_drain (s, p[0]), -EBADF);
  avm_logsink_free (s);
  cr_assert_eq (fsize ("con.log"), 409604);
  lines_free (&l);
}

static void
last_line (void *data, const char *line, size_t len)
{
  snprintf (data, 64, "%s", line);
}

Test (logsink, drain_flushes_at_eof)
{
  int p[2];
  char last[64] = "";
  cr_assert_eq (pipe2 (p, O_NONBLOCK | O_CLOEXEC), 0);
  struct avm_logsink *s = open_sink (0, 0, -1);
  avm_logsink_set_line_cb (s, last_line, last);
  cr_assert_eq (write (p[1], "one\ntwo", 7), 7);
  cr_assert_eq (avm_logsink_drain (s, p[0]), AVM_LOGSINK_AGAIN);
  cr_assert_str_eq (last, "one");
  close (p[1]);
  cr_assert_eq (avm_logsink_drain (s, p[0]), AVM_LOGSINK_EOF);
  cr_assert_str_eq (last, "two");
  close (p[0]);
  avm_logsink_free (s);
}

static int
try_open (const char *name, struct avm_logsink_config *cfg, char **msg)
{
  struct avm_logsink *s = NULL;
  avm_error_t err = NULL;
  int r = avm_logsink_open (cfg, name, NULL, 6, &s, &err);
  if (r == 0)
    {
      cr_assert_not_null (s);
      avm_logsink_free (s);
      *msg = NULL;
    }
  else
    {
      cr_assert_null (s);
      cr_assert_not_null (err);
      *msg = strdup (err->msg);
      avm_error_free (err);
    }
  return r;
}

Test (logsink, refuses_symlink)
{
  _cleanup_free_ char *link = path_in ("con.log");
  _cleanup_free_ char *target = path_in ("target");
  cr_assert_eq (symlink (target, link), 0);
  struct avm_logsink_config cfg = { .dir = dir, .echo_fd = -1 };
  _cleanup_free_ char *msg = NULL;
  cr_assert_eq (try_open ("con", &cfg, &msg), -ELOOP);
  cr_assert (strstr (msg, link), "%s", msg);
  cr_assert (strstr (msg, "symbolic link"), "%s", msg);
  cr_assert_eq (fsize ("target"), -1, "the link was followed");
}

Test (logsink, refuses_fifo)
{
  _cleanup_free_ char *fifo = path_in ("con.log");
  cr_assert_eq (mkfifo (fifo, 0600), 0);
  struct avm_logsink_config cfg = { .dir = dir, .echo_fd = -1 };
  _cleanup_free_ char *msg = NULL, *msg2 = NULL;
  /* No reader: the open must not block.  */
  cr_assert_lt (try_open ("con", &cfg, &msg), 0);
  cr_assert (strstr (msg, fifo) && strstr (msg, "not a regular file"), "%s", msg);
  /* With a reader the open succeeds, and the type is checked.  */
  int rd = open (fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  cr_assert_geq (rd, 0);
  cr_assert_lt (try_open ("con", &cfg, &msg2), 0);
  cr_assert (strstr (msg2, fifo) && strstr (msg2, "not a regular file"), "%s", msg2);
  close (rd);
}

Test (logsink, invalid_arguments)
{
  struct avm_logsink_config cfg = { .dir = dir, .echo_fd = -1 };
  _cleanup_free_ char *m1 = NULL, *m2 = NULL, *m3 = NULL, *m4 = NULL, *m5 = NULL;
  cr_assert_eq (try_open ("a/b", &cfg, &m1), -EINVAL);
  cr_assert_eq (try_open ("", &cfg, &m2), -EINVAL);
  cr_assert_eq (try_open ("..", &cfg, &m3), -EINVAL);
  cfg.keep = AVM_LOGSINK_KEEP_MAX + 1;
  cr_assert_eq (try_open ("con", &cfg, &m4), -EINVAL);
  cfg.keep = 1;
  struct avm_logsink *s = NULL;
  avm_error_t err = NULL;
  cr_assert_eq (avm_logsink_open (&cfg, "con", NULL, 8, &s, &err), -EINVAL);
  cr_assert_null (s);
  avm_error_free (err);
  /* A file where the directory should be.  */
  _cleanup_free_ char *file = tu_write (dir, "file", "x");
  cfg.dir = file;
  cr_assert_lt (try_open ("con", &cfg, &m5), 0);
  cr_assert (strstr (m5, file), "%s", m5);
  cr_assert_eq (fsize ("con.log"), -1);
  avm_logsink_free (NULL);
}

/* --- tests in a private mount namespace ---------------------------------- */

/* Run FN in a child that has its own mount namespace; FN returns "ok",
   "skip: ..." or a failure message.  */
static void
in_namespace (const char *(*fn) (void) )
{
  int p[2];
  cr_assert_eq (pipe2 (p, O_CLOEXEC), 0);
  pid_t pid = fork ();
  cr_assert_geq (pid, 0);
  if (pid == 0)
    {
      const char *res;
      char buf[512];
      close (p[0]);
      if (geteuid () != 0)
        res = "skip: needs root (a private mount namespace)";
      else if (unshare (CLONE_NEWNS) < 0)
        res = (snprintf (buf, sizeof buf, "skip: unshare(CLONE_NEWNS): %s", strerror (errno)), buf);
      else if (mount ("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
        res = (snprintf (buf, sizeof buf, "skip: cannot make mounts private: %s", strerror (errno)), buf);
      else
        res = fn ();
      if (write (p[1], res, strlen (res)) < 0)
        _exit (2);
      _exit (0);
    }
  close (p[1]);
  char buf[512] = { 0 };
  size_t n = read_all (p[0], buf, sizeof buf - 1);
  buf[n] = '\0';
  close (p[0]);
  int status;
  cr_assert_eq (waitpid (pid, &status, 0), pid);
  cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0, "child status %#x: %s", status, buf);
  if (strncmp (buf, "skip: ", 6) == 0)
    cr_skip_test ("%s", buf + 6);
  cr_assert_str_eq (buf, "ok");
}

static char child_msg[512];

static const char *
child_fail (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (child_msg, sizeof child_msg, fmt, ap);
  va_end (ap);
  return child_msg;
}

static size_t child_lines;

static void
child_count (void *data, const char *line, size_t len)
{
  child_lines++;
}

static const char *
enospc_child (void)
{
  char small[1024];
  snprintf (small, sizeof small, "%s/small", dir);
  if (mkdir (small, 0755) < 0)
    return child_fail ("mkdir %s: %s", small, strerror (errno));
  if (mount ("tmpfs", small, "tmpfs", 0, "size=64k,mode=0755") < 0)
    return child_fail ("skip: cannot mount a tmpfs: %s", strerror (errno));
  struct avm_logsink_config cfg = { .dir = small, .echo_fd = -1 };
  struct avm_logsink *s = NULL;
  avm_error_t err = NULL;
  if (avm_logsink_open (&cfg, "con", NULL, 6, &s, &err) < 0)
    return child_fail ("open: %s", err->msg);
  avm_logsink_set_line_cb (s, child_count, NULL);
  char line[1024];
  memset (line, 'x', sizeof line);
  line[sizeof line - 1] = '\n';
  for (int i = 0; i < 256; i++)
    avm_logsink_feed (s, line, sizeof line);
  const char *e = avm_logsink_error (s);
  char expect[2048];
  snprintf (expect, sizeof expect, "cannot write %s/con.log: %s", small, strerror (ENOSPC));
  if (!e || strcmp (e, expect) != 0)
    return child_fail ("error '%s', expected '%s'", e ? e : "(null)", expect);
  if (avm_logsink_write_errors (s) < 2)
    return child_fail ("%llu write errors", (unsigned long long) avm_logsink_write_errors (s));
  if (child_lines != 256)
    return child_fail ("%zu lines reached the callback", child_lines);
  if (avm_logsink_bytes (s) != 256 * 1024)
    return child_fail ("%llu bytes counted", (unsigned long long) avm_logsink_bytes (s));
  /* Told once: the supervisor warns once per log.  */
  const char *told = avm_logsink_new_error (s);
  if (!told || strcmp (told, expect) != 0 || avm_logsink_new_error (s) != NULL)
    return child_fail ("new_error '%s', then not NULL", told ? told : "(null)");
  avm_logsink_free (s);
  return "ok";
}

Test (logsink, write_error_recorded) { in_namespace (enospc_child); }

static bool
has (const char *buf, size_t len, const char *needle)
{
  return memmem (buf, len, needle, strlen (needle)) != NULL;
}

static const char *
journal_child (void)
{
  if (mount ("tmpfs", "/run", "tmpfs", 0, "size=1m,mode=0755") < 0)
    return child_fail ("skip: cannot mount a tmpfs on /run: %s", strerror (errno));
  if (mkdir ("/run/systemd", 0755) < 0 || mkdir ("/run/systemd/journal", 0755) < 0)
    return child_fail ("mkdir /run/systemd/journal: %s", strerror (errno));
  int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "/run/systemd/journal/socket" };
  if (fd < 0 || bind (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    return child_fail ("bind %s: %s", sa.sun_path, strerror (errno));

  char buf[8192];
  ssize_t n;
  struct avm_logsink_config cfg = { .dir = dir, .echo_fd = -1, .instance = 7 };
  struct avm_logsink *s = NULL;
  avm_error_t err = NULL;

  /* journal = false: nothing is sent.  */
  if (avm_logsink_open (&cfg, "quiet", "svc", 6, &s, &err) < 0)
    return child_fail ("open: %s", err->msg);
  avm_logsink_feed (s, "nope\n", 5);
  avm_logsink_free (s);
  n = recv (fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n >= 0 || errno != EAGAIN)
    return child_fail ("journal=false sent a datagram (%zd)", n);

  cfg.journal = true;
  if (avm_logsink_open (&cfg, "console", "svc", 6, &s, &err) < 0)
    return child_fail ("open: %s", err->msg);
  avm_logsink_feed (s, "hello\r\na\0b\n", 11);
  n = recv (fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0)
    return child_fail ("no datagram: %s", strerror (errno));
  const char *want[] = { "MESSAGE=hello\n",  "PRIORITY=6\n",      "SYSLOG_IDENTIFIER=avm\n",
                         "AVM_INSTANCE=7\n", "AVM_SERVICE=svc\n", "AVM_STREAM=console\n" };
  for (size_t i = 0; i < ARRAY_SIZE (want); i++)
    if (!has (buf, (size_t) n, want[i]))
      return child_fail ("datagram lacks %.*s: %.*s", (int) strlen (want[i]) - 1, want[i], (int) n, buf);
  if (has (buf, (size_t) n, "CODE_FILE"))
    return child_fail ("datagram has a code location: %.*s", (int) n, buf);
  n = recv (fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0)
    return child_fail ("no second datagram: %s", strerror (errno));
  if (!has (buf, (size_t) n, "MESSAGE=a b\n"))
    return child_fail ("NUL not replaced: %.*s", (int) n, buf);
  if (avm_logsink_journal_errors (s) != 0)
    return child_fail ("%llu journal errors", (unsigned long long) avm_logsink_journal_errors (s));
  avm_logsink_free (s);
  close (fd);
  return "ok";
}

Test (logsink, journal_fields) { in_namespace (journal_child); }

/* Issue 15: files appended to across runs mark where each run begins, and
   every line carries its time (UTC, milliseconds).  */
Test (logsink, run_header_and_timestamps)
{
  struct avm_logsink_config cfg = { .dir = dir, .echo_fd = -1, .timestamps = true, .run_header = "run one" };
  struct avm_logsink *s = NULL;
  avm_error_t err = NULL;
  cr_assert_eq (avm_logsink_open (&cfg, "stamped", NULL, 6, &s, &err), 0);
  avm_logsink_feed (s, "first line\nsecond", 17);
  avm_logsink_feed (s, " half\n", 6);
  avm_logsink_feed (s, "no newline", 10);
  avm_logsink_flush (s);
  cr_assert_null (avm_logsink_new_error (s));
  avm_logsink_free (s);
  cfg.run_header = "run two";
  cr_assert_eq (avm_logsink_open (&cfg, "stamped", NULL, 6, &s, &err), 0);
  avm_logsink_feed (s, "again\n", 6);
  avm_logsink_free (s);
  char *path = NULL;
  cr_assert_geq (asprintf (&path, "%s/stamped.log", dir), 0);
  char *text = tu_read (path);
  const char *want[] = { "=== run one ===", "first line", "second half", "no newline", "=== run two ===", "again" };
  char *save = NULL, *line = strtok_r (text, "\n", &save);
  for (size_t i = 0; i < sizeof want / sizeof *want; i++, line = strtok_r (NULL, "\n", &save))
    {
      cr_assert_not_null (line, "line %zu missing", i);
      if (strncmp (want[i], "===", 3) == 0)
        {
          cr_assert_str_eq (line, want[i]);
          continue;
        }
      /* 2026-12-07T03:55:01.123Z TEXT */
      cr_assert_eq (strlen (line), 25 + strlen (want[i]), "%s", line);
      cr_assert (line[4] == '-' && line[10] == 'T' && line[19] == '.' && line[23] == 'Z' && line[24] == ' ', "%s",
                 line);
      cr_assert_str_eq (line + 25, want[i]);
    }
  cr_assert_null (line, "extra line %s", line);
  free (text);
  free (path);
}

/* The line callback runs once the line is in the log file: the boot
   marker's callback sends READY=1, and whoever that wakes may read the
   log for the line.  */
struct in_log
{
  struct avm_logsink *s;
  int calls, found;
};

static void
check_in_log (void *data, const char *line, size_t len)
{
  struct in_log *c = data;
  char *log = tu_read (avm_logsink_path (c->s));
  c->calls++;
  if (log && memmem (log, strlen (log), line, len))
    c->found++;
  free (log);
}

Test (logsink, line_in_the_log_before_its_callback)
{
  struct in_log c = { 0 };
  /* As the consoles' logs: lines, stamped (the raw bytes otherwise).  */
  struct avm_logsink_config cfg = { .dir = dir, .echo_fd = -1, .timestamps = true };
  avm_error_t err = NULL;
  cr_assert_eq (avm_logsink_open (&cfg, "con", "svc", 6, &c.s, &err), 0, "%s", err ? err->msg : "?");
  avm_logsink_set_line_cb (c.s, check_in_log, &c);
  feed_str (c.s, "VIRTUAL_DEVICE_BOOT_");
  feed_str (c.s, "COMPLETED\r\nnext line\n");
  cr_assert_eq (c.calls, 2);
  cr_assert_eq (c.found, 2, "the callback ran before its line was in %s", avm_logsink_path (c.s));
  avm_logsink_free (c.s);
}
