/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The web display series (issue 17; bench/README.md): the demo guest
 * started with -O display=web; from its READY=1, Debian's headless
 * Chromium (tests/browser/novnc.mjs, through npm's playwright-core) opens
 * the page avm prints and waits until the guest's screen is on it.  The
 * baseline, in the same run and on the same instance: the same browser
 * loading the same page without connecting (the browser's start and
 * noVNC's own page: what any web display costs before its first frame).
 */
#define _GNU_SOURCE
#include "bench.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define TARGET_FRAME_RATIO 1.5 /* first frame / page alone, at most */

/* Run ARGV with stdout into a buffer (stderr to /dev/null): its exit
   status, or -1; *OUT the output (malloc'd).  */
static int
capture (char *const *argv, char **out)
{
  int p[2];
  if (pipe2 (p, O_CLOEXEC) < 0)
    return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2 (&fa, p[1], 1);
  posix_spawn_file_actions_addopen (&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int r = posix_spawn (&pid, argv[0], &fa, NULL, argv, child_env);
  posix_spawn_file_actions_destroy (&fa);
  close (p[1]);
  size_t len = 0, cap = 4096;
  *out = xmalloc (cap);
  ssize_t n;
  while (r == 0 && (n = read (p[0], *out + len, cap - len - 1)) > 0)
    if ((len += (size_t) n) + 1 == cap)
      {
        char *bigger = xmalloc (cap *= 2);
        memcpy (bigger, *out, len);
        free (*out);
        *out = bigger;
      }
  (*out)[len] = '\0';
  close (p[0]);
  int st = -1;
  if (r != 0 || waitpid (pid, &st, 0) != pid)
    return -1;
  return WIFEXITED (st) ? WEXITSTATUS (st) : -1;
}

/* "KEY":NUMBER of the one-line JSON the script prints; -1 when absent.  */
static double
json_number (const char *text, const char *key)
{
  char *k = xasprintf ("\"%s\":", key);
  const char *p = strstr (text, k);
  free (k);
  return p ? strtod (strchr (p, ':') + 1, NULL) : -1;
}

static int
free_port (void)
{
  int s = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t l = sizeof a;
  int port = -1;
  if (s >= 0 && bind (s, (struct sockaddr *) &a, sizeof a) == 0 && getsockname (s, (struct sockaddr *) &a, &l) == 0)
    port = ntohs (a.sin_port);
  if (s >= 0)
    close (s);
  return port;
}

int
bench_web (const char *avm, const char *srcdir)
{
  const char *e = getenv ("BENCH_WEB_RUNS"), *images = getenv ("BENCH_DEMO_IMAGES");
  int runs = e && *e ? atoi (e) : 3;
  char *script = xasprintf ("%s/tests/browser/novnc.mjs", srcdir);
  char *modules = xasprintf ("%s/tests/browser/node_modules/playwright-core", srcdir);
  char *node = find_program ("node");
  if (runs <= 0 || !node || access ("/usr/bin/chromium", X_OK) != 0 || access (modules, R_OK) != 0
      || access ("/usr/bin/websockify", X_OK) != 0)
    {
      printf ("\n(web display series skipped: %s)\n",
              runs <= 0 ? "BENCH_WEB_RUNS=0" : "chromium, node, playwright-core or websockify missing: tests/deps.sh");
      free (script);
      free (modules);
      free (node);
      return 0;
    }
  const char *tmp = getenv ("TMPDIR");
  char *dir = xasprintf ("%s/avm-bench-web.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp (dir))
    return -1;
  char *img = images && *images ? xasprintf ("%s", images) : xasprintf ("%s/build/demo", srcdir);
  char *run = xasprintf ("AVM_RUNTIME_DIR=%s/run", dir), *state = xasprintf ("AVM_STATE_DIR=%s/state", dir);
  char *npath = xasprintf ("%s/notify.sock", dir), *notify = xasprintf ("NOTIFY_SOCKET=%s", npath);
  char *shot = xasprintf ("%s/page.png", dir);
  double *frame = xmalloc (runs * sizeof *frame), *page = xmalloc (runs * sizeof *page);
  int ok = 0, r = 0;
  for (int i = 0; i < runs && !interrupted; i++)
    {
      int port = free_port ();
      char *set_port = xasprintf ("display.web.port=%d", port);
      char *url = xasprintf ("http://127.0.0.1:%d/vnc.html?autoconnect=true&resize=scale&path=websockify%%3Ftoken%%3D0",
                             port);
      char *extra[] = { run, state, notify, NULL };
      char *argv[] = { (char *) avm,        "start", "-q",          "-p",    "demo",   "--images", img, "--set",
                       "machine.accel=tcg", "-O",    "display=web", "--set", set_port, NULL };
      int nfd = notify_socket (npath);
      pid_t pid = spawn_env (argv, extra);
      bool ready = pid > 0 && nfd >= 0 && wait_ready (nfd, 300000);
      char *out = NULL;
      /* Alternate which goes first, so that neither always finds the
         other's files in the page cache.  */
      for (int which = 0; ready && which < 2; which++)
        {
          bool first_frame = (which + i) % 2 == 0;
          char *frame_argv[] = { node, script, url, shot, "a", NULL };
          char *page_argv[] = { node, script, "--page-only", url, NULL };
          int st = capture (first_frame ? frame_argv : page_argv, &out);
          double t = json_number (out ? out : "", "total_ms");
          if (st != 0 || t < 0)
            {
              fprintf (stderr, "avm-bench: web: novnc.mjs %s failed (exit %d): %s\n",
                       first_frame ? "(first frame)" : "--page-only", st, out ? out : "");
              ready = false;
            }
          else
            (first_frame ? frame : page)[ok] = t;
          free (out);
          out = NULL;
        }
      if (pid > 0)
        {
          kill (pid, SIGTERM);
          wait_exit (pid, 60000);
        }
      if (nfd >= 0)
        close (nfd);
      free (set_port);
      free (url);
      if (!ready)
        {
          fprintf (stderr, "avm-bench: web: no READY=1 or no page from the demo with -O display=web\n");
          failed = true;
          r = -1;
          break;
        }
      ok++;
      fprintf (stderr, "\rweb display: %d/%d", ok, runs);
      progress_open = true;
    }
  end_progress_line ();
  if (ok > 0)
    {
      double fmin, fmed, fmax, pmin, pmed, pmax;
      stats (frame, ok, &fmin, &fmed, &fmax);
      stats (page, ok, &pmin, &pmed, &pmax);
      double ratio = fmed / pmed;
      printf ("\n== web display: demo guest at READY (TCG), headless Chromium, noVNC through websockify ==\n");
      printf ("%-46s %5s %9s %9s %9s\n", "series (ms)", "runs", "min", "median", "max");
      printf ("%-46s %5d %9.0f %9.0f %9.0f\n", "READY to the guest's first frame on the page", ok, fmin, fmed, fmax);
      printf ("%-46s %5d %9.0f %9.0f %9.0f\n", "the same browser and page, not connecting", ok, pmin, pmed, pmax);
      printf ("  first frame / page alone <= %.1f:  %.2f  %s\n", TARGET_FRAME_RATIO, ratio,
              verdict (ratio <= TARGET_FRAME_RATIO));
      char target[32];
      snprintf (target, sizeof target, "<= %.1fx", TARGET_FRAME_RATIO);
      bench_summary_add ("web display: READY to first frame", "ms", fmin, fmed, fmax, "browser + page, no connection",
                         pmed, ratio, target, ratio <= TARGET_FRAME_RATIO);
    }
  rm_rf (dir);
  free (frame);
  free (page);
  free (shot);
  free (npath);
  free (notify);
  free (run);
  free (state);
  free (img);
  free (dir);
  free (script);
  free (modules);
  free (node);
  fflush (stdout);
  return r;
}
