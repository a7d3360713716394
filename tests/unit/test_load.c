/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Load and faults over time (issue 6): several instances side by side, 200
 * start/stop cycles, a helper flooding its stdout and a real guest flooding
 * its kernel console.  What is checked is the end state (nothing leaked,
 * logs size-capped, avm's memory flat), never how long anything took.
 *
 * ENOSPC during cvd2img is test_cvd2img.c's no_space_left (outputs
 * untouched on a full tmpfs); ENOSPC in a log directory is test_logsink.c's
 * write_error_recorded.
 */
#include "test_start.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct ts_env env;

static void
setup (void)
{
  ts_env_init (&env);
}

static void
teardown (void)
{
  ts_env_fini (&env);
}

TestSuite (load, .init = setup, .fini = teardown);

/* Under make check-asan avm's memory includes ASan's quarantine of freed
   blocks: its size says nothing about avm's own use.  */
static bool
sanitized (void)
{
  const char *s = getenv ("AVM_SANITIZED");
  return s && *s && strcmp (s, "0") != 0;
}

/* VmRSS or VmHWM of PID in KiB, or -1.  */
static long
proc_kib (pid_t pid, const char *field)
{
  char path[64], line[256];
  snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
  FILE *f = fopen (path, "r");
  long v = -1;
  if (!f)
    return -1;
  while (fgets (line, sizeof line, f))
    if (strncmp (line, field, strlen (field)) == 0 && line[strlen (field)] == ':')
      v = strtol (line + strlen (field) + 1, NULL, 10);
  fclose (f);
  return v;
}

/* Total size of the files in DIR whose names start with PREFIX (a log
   stream and its rotations), and how many there are.  */
static long long
logs_size (const char *dir, const char *prefix, int *files)
{
  DIR *d = opendir (dir);
  long long total = 0;
  *files = 0;
  cr_assert_not_null (d, "%s", dir);
  for (struct dirent *e; (e = readdir (d));)
    if (strncmp (e->d_name, prefix, strlen (prefix)) == 0)
      {
        struct stat st;
        char *p = ts_fmt ("%s/%s", dir, e->d_name);
        cr_assert_eq (stat (p, &st), 0, "%s", p);
        total += st.st_size;
        ++*files;
      }
  closedir (d);
  return total;
}

/* The default log cap (avm-start(1), LOGS): 8 MiB a file, 3 files a stream. */
#define LOG_CAP (3LL * 8 * 1024 * 1024)

static char *
wait_log_line (const char *log_dir, const char *name, const char *needle, double timeout)
{
  double t0 = ts_now ();
  char *log = NULL;
  while (ts_now () - t0 < timeout)
    {
      free (log);
      log = tu_read (ts_fmt ("%s/%s", log_dir, name));
      if (log && strstr (log, needle))
        return log;
      tu_sleep_ms (100);
    }
  cr_assert_fail ("%s/%s: no \"%s\" within %.0f s", log_dir, name, needle, timeout);
  return NULL;
}

Test (load, three_instances_side_by_side)
{
  char *svc = ts_fmt ("{\"h\": {\"exec\": [\"%s\", \"listen=${socket}\", \"hang\"], \"socket\": "
                      "\"${run_dir}/h.sock\", \"ready\": \"socket\"}}",
                      env.fake);
  char *profile = ts_profile (&env, "three", svc, NULL, NULL);
  struct ts_avm a[3];
  for (int i = 0; i < 3; i++)
    ts_start (&env, &a[i], profile, "--instance", ts_fmt ("%d", i + 1), NULL);
  for (int i = 0; i < 3; i++)
    ts_wait_notify (&a[i], "READY=1", 60);
  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "status", "--all", "--json", NULL), 0);
  json_t *all = ts_json (out);
  cr_assert_eq (json_array_size (all), 3, "%s", out);
  /* Each its own QEMU, helper, QMP socket and runtime directory.  */
  pid_t qemu[3] = { 0 };
  for (size_t i = 0; i < 3; i++)
    {
      json_t *st = json_array_get (all, i);
      cr_assert_eq (json_integer_value (json_object_get (st, "instance")), (json_int_t) i + 1, "%s", out);
      cr_assert_str_eq (json_string_value (json_object_get (st, "state")), "running", "%s", out);
      qemu[i] = (pid_t) json_integer_value (json_object_get (json_object_get (st, "qemu"), "pid"));
      cr_assert_gt (qemu[i], 0, "%s", out);
      cr_assert_eq (access (ts_fmt ("%s/%zu/h.sock", env.run, i + 1), F_OK), 0);
    }
  cr_assert (qemu[0] != qemu[1] && qemu[1] != qemu[2] && qemu[0] != qemu[2]);
  json_decref (all);
  /* Stopping the middle one leaves the others running.  */
  cr_assert_eq (ts_avm (&env, &out, "stop", "-i", "2", NULL), 0);
  cr_assert_eq (ts_wait (&a[1], 30), 0, "%s", ts_stderr (&a[1]));
  cr_assert_eq (ts_avm (&env, &out, "status", "--all", "--json", NULL), 0);
  all = ts_json (out);
  cr_assert_eq (json_array_size (all), 2, "%s", out);
  json_decref (all);
  for (int i = 0; i < 3; i += 2)
    {
      cr_assert_eq (ts_avm (&env, &out, "stop", "-i", ts_fmt ("%d", i + 1), NULL), 0);
      cr_assert_eq (ts_wait (&a[i], 30), 0, "%s", ts_stderr (&a[i]));
    }
  for (int i = 0; i < 3; i++)
    ts_avm_done (&a[i]); /* the test's own notification sockets */
  cr_assert_eq (ts_count_procs_under (env.dir), 0, "processes left running");
  char *unix_text = tu_read ("/proc/net/unix");
  cr_assert_eq (ts_count_unix_sockets_under (env.dir), 0, "sockets left listening: %s", unix_text);
  free (unix_text);
}

Test (load, two_hundred_start_stop_cycles_leak_nothing)
{
  char *svc = ts_fmt ("{\"h\": {\"exec\": [\"%s\", \"listen=${socket}\", \"hang\"], \"socket\": "
                      "\"${run_dir}/h.sock\", \"ready\": \"socket\"},"
                      " \"g\": {\"exec\": [\"%s\", %s]}}",
                      env.fake, env.fake, ts_console_writes ("VIRTUAL_DEVICE_BOOT_COMPLETED"));
  char *profile = ts_profile (&env, "cycles", svc, ts_boot (0), "\"stop\": {\"timeout\": 0}");
  int fds_before = ts_count_fds ();
  for (int i = 0; i < 200; i++)
    {
      struct ts_avm a;
      ts_start (&env, &a, profile, NULL);
      ts_wait_notify (&a, "READY=1", 30);
      pid_t pids[4];
      size_t n = ts_pids (&env, pids, 4);
      cr_assert_eq (n, 3, "cycle %d", i);
      kill (a.pid, SIGTERM);
      cr_assert_eq (ts_wait (&a, 30), 0, "cycle %d: %s", i, ts_stderr (&a));
      ts_assert_gone (pids, n);
      ts_avm_done (&a);
    }
  cr_assert_eq (ts_count_fds (), fds_before);
  cr_assert_eq (ts_count_procs_under (env.dir), 0, "processes left running");
  cr_assert_eq (ts_count_unix_sockets_under (env.dir), 0, "sockets left listening");
  cr_assert_eq (access (env.run1, F_OK), -1, "runtime directory left behind");
}

/* A helper writes 128 MiB to stdout as fast as it can: avm keeps draining
   it (the marker after the flood arrives), its log stays within the cap,
   and avm's peak memory is that of a quiet instance.  */
Test (load, helper_flooding_stdout_keeps_logs_capped_and_memory_flat)
{
  char *quiet = ts_fmt ("{\"talker\": {\"exec\": [\"%s\", \"print=QUIET DONE\", \"hang\"]}}", env.fake);
  char *loud = ts_fmt ("{\"talker\": {\"exec\": [\"%s\", \"flood=%d\", \"print=FLOOD DONE\", \"hang\"]}}", env.fake,
                       128 << 20);
  struct ts_avm q, l;
  ts_start (&env, &q, ts_profile (&env, "quiet", quiet, NULL, NULL), "--instance", "2", NULL);
  ts_wait_notify (&q, "READY=1", 60);
  free (wait_log_line (ts_fmt ("%s/2/logs", env.state), "talker.log", "QUIET DONE", 30));
  ts_start (&env, &l, ts_profile (&env, "loud", loud, NULL, NULL), NULL);
  ts_wait_notify (&l, "READY=1", 60);
  char *log_dir = ts_fmt ("%s/1/logs", env.state);
  free (wait_log_line (log_dir, "talker.log", "FLOOD DONE", 120));
  long quiet_hwm = proc_kib (q.pid, "VmHWM"), loud_hwm = proc_kib (l.pid, "VmHWM");
  cr_assert_gt (quiet_hwm, 0);
  cr_assert_gt (loud_hwm, 0);
  if (!sanitized ())
    cr_assert_lt (loud_hwm, quiet_hwm + 2048, "avm's peak RSS grew under the flood: %ld KiB vs %ld KiB quiet", loud_hwm,
                  quiet_hwm);
  int files;
  long long size = logs_size (log_dir, "talker.log", &files);
  cr_assert_leq (size, LOG_CAP, "talker logs: %lld bytes in %d files", size, files);
  cr_assert_eq (files, 3, "talker logs: %d files", files);
  /* Still answering while it drained 128 MiB.  */
  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "status", "--json", NULL), 0);
  kill (l.pid, SIGTERM);
  kill (q.pid, SIGTERM);
  cr_assert_eq (ts_wait (&l, 30), 0, "%s", ts_stderr (&l));
  cr_assert_eq (ts_wait (&q, 30), 0, "%s", ts_stderr (&q));
}

/* The demo guest (real kernel, TCG) floods its console, the kernel
   console hvc0, with 40 MiB after booting (30 under the sanitizers): avm
   drains all of it (the guest's line after the flood arrives), the console
   log stays capped and avm's resident memory does not grow.  */
Test (load, guest_flooding_its_console)
{
  char *images = tu_demo_image ();
  char *img = ts_fmt ("%s", images);
  free (images);
  struct ts_avm a;
  /* Under the sanitizers (RSS not checked, see below) 30 MiB: still more
     than the three log files hold, and the run of the whole suite under
     ASan in parallel stays within the limit.  */
  int mib = sanitized () ? 30 : 40;
  ts_start (&env, &a, "demo", "--images", img, "--set", "machine.accel=tcg", "--set",
            ts_fmt ("firmware.cmdline=console=hvc0 quiet panic=-1 avm_demo.flood=%d", mib), NULL);
  ts_wait_notify (&a, "READY=1", 240);
  long rss_booted = proc_kib (a.pid, "VmRSS");
  char *log_dir = ts_fmt ("%s/1/logs", env.state);
  free (wait_log_line (log_dir, "console-console.log", ts_fmt ("AVM_DEMO: flood done: %d MiB", mib),
                       sanitized () ? 1200 : 600));
  long rss_flooded = proc_kib (a.pid, "VmRSS"), hwm = proc_kib (a.pid, "VmHWM");
  cr_assert_gt (rss_booted, 0);
  if (!sanitized ())
    {
      cr_assert_lt (rss_flooded, rss_booted + 1024, "avm's RSS grew from %ld to %ld KiB under the flood", rss_booted,
                    rss_flooded);
      cr_assert_lt (hwm, 32 * 1024, "avm's peak RSS %ld KiB", hwm);
    }
  int files;
  long long size = logs_size (log_dir, "console-console.log", &files);
  cr_assert_leq (size, LOG_CAP, "console logs: %lld bytes in %d files", size, files);
  cr_assert_eq (files, 3, "console logs: %d files", files);
  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0);
  cr_assert_eq (ts_wait (&a, 60), 0, "%s", ts_stderr (&a));
  cr_assert_eq (ts_count_procs_under (env.dir), 0, "processes left running");
}
