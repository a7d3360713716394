/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What bench.c (the harness: process runner, helpers, the dry-run series)
 * shares with bench/cvd2img.c (the cvd2img series).  See bench/README.md.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

extern char **child_env;                  /* the environment of every child */
extern bool failed;                       /* a command failed: exit status 1 */
extern bool progress_open;                /* the progress line on stderr is unfinished */
extern volatile sig_atomic_t interrupted; /* SIGINT/SIGTERM/SIGHUP seen (its number) */

void *xmalloc (size_t n);
char *xasprintf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
double now_ms (void);
void rm_rf (const char *path);
char *find_program (const char *prog);
void print_argv (FILE *f, char *const *argv);
void end_progress_line (void);
const char *verdict (bool met);
int cmp_double (const void *a, const void *b);
long self_hwm_kib (void);
void print_load (const char *when);

/* The QEMU probes start-avm runs on every start, in its order: `-display ?`,
   `-device ?`, `-audio ?` (../shared/BRIEF.md, "The tools avm replaces"),
   spelt `help` here, the same query without a shell glob character.  Both
   the dry-run series and the start series use these; each is run as
   `QEMU OPTION help`.  */
#define START_AVM_PROBES 3
extern const char *const start_avm_probes[START_AVM_PROBES];

/* Run ARGV to completion with stdin and stdout on /dev/null and stderr on
   ERR_PATH (created/truncated), or shown when SHOW_STDERR, else on
   /dev/null.  A SIGINT/SIGTERM/SIGHUP that reaches the harness meanwhile is
   passed on to the child.  *STATUS is the wait status, *MAXRSS_KIB
   ru_maxrss.  0, or -1 when it could not be run (reported).  */
int run_io (char *const *argv, const char *err_path, bool show_stderr, int *status, long *maxrss_kib);
int run (char *const *argv, bool show_stderr, int *status, long *maxrss_kib);

/* bench/cvd2img.c: the cvd2img series (BENCH_SKIP_C2I=1 skips them).
   bench_cvd2img_config reads their environment variables before anything
   runs (-1: bad value, reported).  bench_cvd2img returns 0 when done or
   skipped, -1 when a command failed (reported, `failed` set) or the run was
   interrupted.  */
int bench_cvd2img_config (void);
int bench_cvd2img (const char *avm);

/* bench/start.c: `avm start` to QEMU's exec with nine helpers against the
   start-avm way, and the demo's time to READY against a bare QEMU
   (BENCH_START_RUNS, BENCH_DEMO_RUNS; 0 skips).  0 when done or skipped,
   -1 when a command failed (reported, `failed` set).  */
int bench_start (const char *avm, const char *qemu, const char *srcdir);

/* bench/start.c's process helpers, shared with bench/web.c: the monotonic
   clock in ms; spawn ARGV in its own process group with EXTRA added to the
   environment and stdio on /dev/null (-1: reported); its exit status, or
   -1 when it had to be killed after TIMEOUT_MS; min/median/max of V (sorted
   in place); a NOTIFY_SOCKET at PATH and waiting on it for READY=1.  */
double mono_ms (void);
void nap_ms (double ms);
pid_t spawn_env (char *const *argv, char *const *extra);
int wait_exit (pid_t pid, double timeout_ms);
void stats (double *v, int n, double *min, double *med, double *max);
int notify_socket (const char *path);
bool wait_ready (int fd, double timeout_ms);

/* bench/web.c: the web display (BENCH_WEB_RUNS, default 3; 0 skips, and so
   does a machine without chromium or playwright-core): from READY, the
   time until the guest's first frame is on the page in headless Chromium,
   against the same browser loading the page without connecting.  */
int bench_web (const char *avm, const char *srcdir);

/* bench/snapshot.c: quick boot (BENCH_SNAP_RUNS rounds, default 2, of a
   cold boot, a save and BENCH_SNAP_RESTORES restores, default 3; 0 skips):
   the demo's time to READY restored against booted.  */
int bench_snapshot (const char *avm, const char *srcdir);

/* bench/kube.c: the container's cost (BENCH_KUBE_RUNS rounds, default 2;
   0 skips, and so does a host without podman, runc or the image built by
   make container-image): podman kube play of avm kube's demo Pod to READY
   against avm start on the host, and three pods side by side.  */
int bench_kube (const char *avm, const char *srcdir);

/* The summary table printed at the end (bench_summary_print): one row per
   benchmark, WHAT measured in UNIT (min/median/max over its runs; a single
   value has min = median = max), against BASELINE (its median, same unit
   unless noted in its name) measured in the same run, RATIO as the target
   states it, TARGET its text ("<= 5 ms", ">= 10x") and whether it was MET.  */
void bench_summary_add (const char *what, const char *unit, double min, double med, double max, const char *baseline,
                        double base_med, double ratio, const char *target, bool met);
void bench_summary_print (void);
