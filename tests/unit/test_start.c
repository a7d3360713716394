/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `avm start` supervising for real: real QEMU (TCG, no guest: SeaBIOS finds
 * nothing to boot, which is all these tests need), the fault-injection
 * helper (tests/helpers/fakehelper.c) as the services, a real unix datagram
 * socket as NOTIFY_SOCKET, and `avm status` / `avm stop` over the control
 * socket.  The guest's boot console is written by a helper through the
 * console FIFO (${fd:console}) where a test needs boot patterns.  The demo
 * guest booted end to end is in test_start_demo.c.
 *
 * Each test has its own AVM_RUNTIME_DIR and AVM_STATE_DIR.
 */
#include "test_start.h"
#include "host/hostcheck.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define assert_contains(hay, needle) cr_assert (strstr ((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))

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

TestSuite (start, .init = setup, .fini = teardown);

/* ---- readiness and order ---------------------------------------------- */

Test (start, helpers_ready_before_qemu_and_ready_notification)
{
  /* a: a socket that listens after 0.3 s; b: after a, READY=1 by notify;
     c: a file.  QEMU must start after all three are ready.  */
  char *svc = ts_fmt ("{"
                      "\"a\": {\"exec\": [\"%s\", \"sleep=0.3\", \"listen=${socket}\", \"hang\"],"
                      "        \"socket\": \"${run_dir}/a.sock\", \"ready\": \"socket\"},"
                      "\"b\": {\"exec\": [\"%s\", \"sleep=0.1\", \"notify=STATUS=almost\\\\nREADY=1\", \"hang\"],"
                      "        \"ready\": \"notify\", \"after\": [\"a\"]},"
                      "\"c\": {\"exec\": [\"%s\", \"sleep=0.2\", \"touch=${run_dir}/c.ready\", \"hang\"],"
                      "        \"ready\": \"file\", \"ready_path\": \"${run_dir}/c.ready\"}"
                      "}",
                      env.fake, env.fake, env.fake);
  char *profile = ts_profile (&env, "order", svc, NULL, NULL);
  struct ts_avm a;
  ts_start (&env, &a, profile, NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", 30);
  cr_assert (strstr (msgs, "STATUS=starting helpers "), "%s", msgs);
  cr_assert (strstr (msgs, "STATUS=starting QEMU"), "%s", msgs);
  cr_assert (strstr (msgs, "READY=1"), "%s", msgs);
  cr_assert_lt (strstr (msgs, "STATUS=starting QEMU") - msgs, strstr (msgs, "READY=1") - msgs);

  char *err = ts_stderr (&a);
  const char *ra = strstr (err, "a: ready"), *sb = strstr (err, "b: started"), *rb = strstr (err, "b: ready"),
             *rc = strstr (err, "c: ready"), *q = strstr (err, "qemu: started");
  cr_assert (ra && sb && rb && rc && q, "%s", err);
  cr_assert (ra < sb, "b started before a was ready:\n%s", err);
  cr_assert (rb < q && rc < q && ra < q, "QEMU started before every helper was ready:\n%s", err);

  /* Status over the control socket.  */
  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "status", "--json", NULL), 0);
  json_t *st = ts_json (out);
  cr_assert_str_eq (json_string_value (json_object_get (st, "state")), "running");
  cr_assert_eq (json_array_size (json_object_get (st, "services")), 3);
  json_t *b = json_array_get (json_object_get (st, "services"), 1);
  cr_assert_str_eq (json_string_value (json_object_get (b, "name")), "b");
  cr_assert_str_eq (json_string_value (json_object_get (b, "state")), "ready");
  cr_assert_str_eq (json_string_value (json_object_get (b, "notify_status")), "almost");
  /* the executable each runs, as found */
  cr_assert_str_eq (json_string_value (json_object_get (b, "program")), env.fake);
  const char *qp = json_string_value (json_object_get (json_object_get (st, "qemu"), "program"));
  cr_assert (qp && qp[0] == '/' && strstr (qp, "qemu-system-"), "qemu program: %s", qp ? qp : "none");
  cr_assert (json_integer_value (json_object_get (json_object_get (st, "qemu"), "pid")) > 0);
  json_decref (st);
  cr_assert_eq (ts_avm (&env, &out, "status", NULL), 0);
  cr_assert (strstr (out, "instance 1: running"), "%s", out);
  /* Columns, but no line ends in blanks (QEMU's has no restarts column).  */
  cr_assert_null (strstr (out, " \n"), "a line of avm status ends in a blank:\n%s", out);

  /* avm stop: exit 0, everything gone.  */
  pid_t pids[8];
  size_t n = ts_pids (&env, pids, 8);
  cr_assert_eq (n, 4);
  cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
  ts_assert_gone (pids, n);
  msgs = ts_notify_all (&a);
  cr_assert (strstr (msgs, "STOPPING=1"), "%s", msgs);
  cr_assert_eq (ts_avm (&env, &out, "status", NULL), 3);
  cr_assert (strstr (out, "not running"), "%s", out);
  cr_assert_eq (access (env.run1, F_OK), -1, "runtime directory left behind");
}

Test (start, readiness_timeout_fails_the_start)
{
  char *svc = ts_fmt ("{\"slow\": {\"exec\": [\"%s\", \"print=never listening\", \"hang\"],"
                      " \"socket\": \"${run_dir}/slow.sock\", \"ready\": \"socket\", \"ready_timeout\": 1,"
                      " \"critical\": true}}",
                      env.fake);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "slow", svc, NULL, NULL), NULL);
  cr_assert_eq (ts_wait (&a, 30), 6);
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, "service slow (pid"), "%s", err);
  cr_assert (strstr (err, "not ready within 1.0 s: its socket is not listening"), "%s", err);
  cr_assert (!strstr (err, "qemu: started"), "%s", err);
}

Test (start, helper_dying_before_ready_fails_with_its_output)
{
  char *svc = ts_fmt ("{\"bad\": {\"exec\": [\"%s\", \"stderr=cannot open /dev/vhost-vsock\", \"exit=1\"],"
                      " \"socket\": \"${run_dir}/bad.sock\", \"ready\": \"socket\"}}",
                      env.fake);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "bad", svc, NULL, NULL), NULL);
  cr_assert_eq (ts_wait (&a, 30), 6);
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, "service bad exited with status 1 before it was ready; last output: cannot open "
                          "/dev/vhost-vsock; log: "),
             "%s", err);
}

/* The helpers that wait for nothing are spawned before the event loop
   exists (supervisor.c, start_early): one that cannot be executed there
   fails the start as it would in the loop, and the helper spawned before
   it is stopped in order (SIGTERM), not killed.  */
Test (start, helper_that_cannot_be_executed_stops_the_ones_started_before_it)
{
  char *bogus = ts_fmt ("%s/not-a-program", env.dir);
  FILE *f = fopen (bogus, "w");
  cr_assert (f);
  fputs ("neither ELF nor #!\n", f);
  fclose (f);
  chmod (bogus, 0755);
  char *svc = ts_fmt ("{\"first\": {\"exec\": [\"%s\", \"hang\"]},"
                      " \"broken\": {\"exec\": [\"%s\"]}}",
                      env.fake, bogus);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "broken", svc, NULL, NULL), NULL);
  cr_assert_eq (ts_wait (&a, 30), 6, "%s", ts_stderr (&a));
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, "service broken: cannot exec "), "%s", err);
  cr_assert (strstr (err, "Exec format error"), "%s", err);
  cr_assert (strstr (err, "first: stopping (SIGTERM"), "%s", err);
  cr_assert (!strstr (err, "qemu: started"), "%s", err);
  cr_assert_eq (access (env.run1, F_OK), -1, "runtime directory left behind");
}

/* Fifty helpers in a chain, each `after` the one before and ready as soon
   as it runs: the scheduler readies them in a loop within its pass (not
   one recursion level per service, as it once did), each started only once
   the one before is ready, QEMU after the last.  */
Test (start, fifty_chained_helpers_ready_in_one_pass, .timeout = 180)
{
  enum
  {
    N = 50
  };
  char *svc = ts_fmt ("{\"s0\": {\"exec\": [\"%s\", \"hang\"], \"ready\": \"none\"}", env.fake);
  for (int i = 1; i < N; i++)
    svc = ts_fmt ("%s, \"s%d\": {\"exec\": [\"%s\", \"hang\"], \"ready\": \"none\", \"after\": [\"s%d\"]}", svc, i,
                  env.fake, i - 1);
  svc = ts_fmt ("%s}", svc);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "fifty", svc, NULL, NULL), NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", 120);
  cr_assert (strstr (msgs, "READY=1"), "%s", msgs);
  char *err = ts_stderr (&a);
  const char *prev_ready = NULL;
  for (int i = 0; i < N; i++)
    {
      const char *started = strstr (err, ts_fmt ("s%d: started", i));
      const char *ready = strstr (err, ts_fmt ("s%d: ready", i));
      cr_assert (started && ready, "s%d not started and ready:\n%s", i, err);
      cr_assert (!prev_ready || prev_ready < started, "s%d started before s%d was ready:\n%s", i, i - 1, err);
      prev_ready = ready;
    }
  const char *q = strstr (err, "qemu: started");
  cr_assert (q && prev_ready < q, "QEMU started before every helper was ready:\n%s", err);

  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "status", "--json", NULL), 0);
  json_t *st = ts_json (out);
  json_t *services = json_object_get (st, "services");
  cr_assert_eq (json_array_size (services), N);
  for (size_t i = 0; i < N; i++)
    cr_assert_str_eq (json_string_value (json_object_get (json_array_get (services, i), "state")), "ready");
  json_decref (st);
  cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0);
  cr_assert_eq (ts_wait (&a, 120), 0, "%s", ts_stderr (&a));
}

/* ---- boot detection ----------------------------------------------------- */

Test (start, boot_pattern_ready_and_stop_after_boot)
{
  char *svc = ts_fmt ("{\"guestish\": {\"exec\": [\"%s\", \"write-fd=${fd:console}:kernel: hello\", %s]}}", env.fake,
                      ts_console_writes ("VIRTUAL_DEVICE_BOOT_COMPLETED"));
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "boot", svc, ts_boot (0), NULL), "--stop-after-boot", NULL);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
  char *msgs = ts_notify_all (&a);
  char *ready = strstr (msgs, "READY=1\nSTATUS=running, booted in ");
  cr_assert (ready, "%s", msgs);
  /* "booting" comes once QMP is up: a guest whose marker arrives before
     that goes from "starting QEMU" straight to running.  */
  char *qemu = strstr (msgs, "STATUS=starting QEMU"), *booting = strstr (msgs, "STATUS=booting");
  cr_assert (qemu && qemu < ready, "%s", msgs);
  cr_assert (!booting || (qemu < booting && booting < ready), "%s", msgs);
  cr_assert (strstr (ready, "STOPPING=1"), "%s", msgs);
  char *log = ts_read_log (&env, "console-console.log");
  cr_assert (strstr (log, "kernel: hello\n"), "%s", log);
  cr_assert (strstr (log, "VIRTUAL_DEVICE_BOOT_COMPLETED\n"), "%s", log);
}

Test (start, boot_failure_pattern)
{
  char *svc = ts_fmt ("{\"guestish\": {\"exec\": [\"%s\", %s]}}", env.fake,
                      ts_console_writes ("VIRTUAL_DEVICE_BOOT_FAILED no system partition"));
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "bootfail", svc, ts_boot (0), NULL), NULL);
  cr_assert_eq (ts_wait (&a, 30), 3, "%s", ts_stderr (&a));
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, "the guest reported a boot failure on console console: VIRTUAL_DEVICE_BOOT_FAILED no "
                          "system partition"),
             "%s", err);
  cr_assert (!strstr (ts_notify_all (&a), "READY=1"));
}

Test (start, boot_timeout)
{
  char *svc = ts_fmt ("{\"quiet\": {\"exec\": [\"%s\", \"hang\"]}}", env.fake);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "boottimeout", svc, ts_boot (1), NULL), NULL);
  cr_assert_eq (ts_wait (&a, 30), 4, "%s", ts_stderr (&a));
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, "the guest did not boot within 1 s (no \"VIRTUAL_DEVICE_BOOT_COMPLETED\" on console "
                          "console)"),
             "%s", err);
}

/* A boot that takes long says so every 30 s (issue 15).  No timing is
   asserted: the line must come within a generous limit.  */
Test (start, slow_boot_says_still_booting, .timeout = TU_TIMEOUT (150))
{
  char *svc = ts_fmt ("{\"quiet\": {\"exec\": [\"%s\", \"hang\"]}}", env.fake);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "slowboot", svc, ts_boot (0), NULL), NULL);
  double t0 = ts_now ();
  char *err = NULL;
  while ((!err || !strstr (err, "still booting (")) && ts_now () - t0 < TU_TIMEOUT (120))
    {
      free (err);
      tu_sleep_ms (200);
      err = tu_read (a.stderr_path);
    }
  free (err);
  err = ts_stderr (&a);
  cr_assert (strstr (err, "avm: still booting (3"), "no progress line:\n%s", err);
  cr_assert_lt (strstr (err, "qemu: started"), strstr (err, "still booting"), "%s", err);
  kill (a.pid, SIGTERM);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
}

Test (start, boot_loop_of_resets_is_a_boot_failure)
{
  /* SeaBIOS finds nothing to boot and, with reboot-timeout, resets the
     machine 0.1 s later: a guest that never completes a boot.  */
  char *svc = ts_fmt ("{\"quiet\": {\"exec\": [\"%s\", \"hang\"]}}", env.fake);
  char *boot = ts_fmt ("\"boot\": {\"completed\": [\"VIRTUAL_DEVICE_BOOT_COMPLETED\"], \"reset_limit\": 2}");
  char *extra = ts_fmt ("\"stop\": {\"timeout\": 1}, \"extra_qemu_args\": [\"-boot\", \"reboot-timeout=100\"]");
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "bootloop", svc, boot, extra), "--allow-unapproved", NULL);
  cr_assert_eq (ts_wait (&a, 60), 3, "%s", ts_stderr (&a));
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, "the guest reset 3 times without completing a boot (a boot loop; last reset: guest-reset)"),
             "%s", err);
  cr_assert (!strstr (ts_notify_all (&a), "READY=1"));
}

Test (start, boot_timeout_scaled_under_tcg)
{
  /* The plan applies boot.tcg_multiplier: 1 s x 2 under TCG.  */
  char *svc = ts_fmt ("{\"quiet\": {\"exec\": [\"%s\", \"hang\"]}}", env.fake);
  char *boot = ts_fmt ("\"boot\": {\"completed\": [\"VIRTUAL_DEVICE_BOOT_COMPLETED\"], \"timeout\": 1, "
                       "\"tcg_multiplier\": 2}");
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "tcgtimeout", svc, boot, NULL), NULL);
  cr_assert_eq (ts_wait (&a, 30), 4, "%s", ts_stderr (&a));
  cr_assert (strstr (ts_stderr (&a), "the guest did not boot within 2 s"), "%s", ts_stderr (&a));
}

/* Issue 15: the sockets of a running instance are the user's alone: avm's
   control socket 0600, and what QEMU and the helpers create (the QMP
   socket, a helper's socket) under the umask avm gives them, 077.  */
Test (start, sockets_are_private)
{
  char *svc = ts_fmt ("{\"h\": {\"exec\": [\"%s\", \"listen=${socket}\", \"hang\"], \"socket\": "
                      "\"${run_dir}/h.sock\", \"ready\": \"socket\"}}",
                      env.fake);
  mode_t old = umask (0);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "private", svc, NULL, NULL), NULL);
  umask (old);
  ts_wait_notify (&a, "READY=1", 30);
  static const char *const socks[] = { "control.sock", "qmp.sock", "h.sock" };
  for (size_t i = 0; i < sizeof socks / sizeof socks[0]; i++)
    {
      struct stat st;
      char *p = ts_fmt ("%s/%s", env.run1, socks[i]);
      cr_assert_eq (lstat (p, &st), 0, "%s", p);
      cr_assert (S_ISSOCK (st.st_mode), "%s", p);
      cr_assert_eq (st.st_mode & 077, 0, "%s: mode %04o", p, (unsigned) (st.st_mode & 07777));
    }
  struct stat st;
  cr_assert_eq (stat (ts_fmt ("%s/control.sock", env.run1), &st), 0);
  cr_assert_eq (st.st_mode & 0777, 0600);
  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
}

/* Issue 15: "$${fd:x}" is a literal "${fd:x}" for the service, not a
   descriptor reference (the plan once turned it into one for the
   supervisor); nor is a "${fd:" that comes from a variable's value.  */
Test (start, literal_dollars_reach_the_service_as_written)
{
  char *svc = ts_fmt ("{\"lit\": {\"exec\": [\"%s\", \"print=<$${fd:nope} $$5 ${fd:console}>\","
                      " \"print=<${name}>\", \"hang\"]}}",
                      env.fake);
  char *name = ts_fmt ("%s/x${fd:nope}y.json", env.dir);
  char *src = ts_profile (&env, "lit", svc, NULL, NULL);
  cr_assert_eq (rename (src, name), 0);
  struct ts_avm a;
  ts_start (&env, &a, name, NULL);
  ts_wait_notify (&a, "READY=1", 30);
  char *log = ts_read_log (&env, "lit.log");
  cr_assert (strstr (log, "<${fd:nope} $5 3>"), "%s", log);
  cr_assert (strstr (log, "<x${fd:nope}y>"), "%s", log);
  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
}

/* Issue 15: logs appended across runs say where each run begins and when
   each line came; their size is the profile's (logs.max_size, logs.files);
   --log-target journal without journald says so instead of losing lines
   silently.  */
Test (start, logs_mark_runs_and_times_and_follow_the_profile)
{
  char *svc = ts_fmt ("{\"chatty\": {\"exec\": [\"%s\", \"print=hello from chatty\", \"flood=3000000\", "
                      "\"hang\"]}}",
                      env.fake);
  char *extra = ts_fmt ("\"stop\": {\"timeout\": 1}, \"logs\": {\"max_size\": \"1M\", \"files\": 2}");
  char *profile = ts_profile (&env, "logs", svc, NULL, extra);
  for (int run = 0; run < 2; run++)
    {
      struct ts_avm a;
      ts_start (&env, &a, profile, "--log-target", run ? "journal" : "file", NULL);
      ts_wait_notify (&a, "READY=1", 30);
      char *out = NULL;
      for (int i = 0; i < 100 && ts_count_lines (ts_fmt ("%s/1/logs/chatty.log.1", env.state)) <= 0; i++)
        tu_sleep_ms (100);
      cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0);
      cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
      if (run && access ("/run/systemd/journal/socket", W_OK) < 0)
        cr_assert (strstr (ts_stderr (&a), "warning: --log-target journal, but there is no journald here"), "%s",
                   ts_stderr (&a));
    }
  /* Rotated at 1 MiB, two files kept.  */
  struct stat st;
  cr_assert_eq (stat (ts_fmt ("%s/1/logs/chatty.log", env.state), &st), 0);
  cr_assert_leq (st.st_size, 1 << 20);
  cr_assert_eq (stat (ts_fmt ("%s/1/logs/chatty.log.1", env.state), &st), 0);
  cr_assert_leq (st.st_size, 1 << 20);
  cr_assert_eq (stat (ts_fmt ("%s/1/logs/chatty.log.2", env.state), &st), -1);
  /* The QEMU log holds both runs, each marked, every line stamped.  */
  char *qlog = ts_read_log (&env, "qemu.log");
  char *first = strstr (qlog, "=== avm "), *second = first ? strstr (first + 1, "=== avm ") : NULL;
  cr_assert (first && second, "%s", qlog);
  cr_assert (strstr (first, ": instance 1, profile logs, started "), "%s", qlog);
  /* The helper's lines: each after its UTC time.  */
  char *clog = ts_read_log (&env, "chatty.log");
  cr_assert (clog[0] == '2' && clog[4] == '-' && clog[10] == 'T' && clog[23] == 'Z' && clog[24] == ' ', "%.80s", clog);
}

/* Issue 15: a QEMU that dies under KVM before the guest booted (hosts
   whose KVM aborts it: "failed to set MSR ...", SIGABRT) gets a hint to
   check KVM and to run without it.  A stand-in QEMU dies that way.  */
Test (start, qemu_dying_under_kvm_suggests_tcg)
{
  char *why = NULL;
  if (!avm_kvm_usable (&why))
    cr_skip_test ("no usable /dev/kvm: %s", why ? why : "?");
  char *qemu = tu_write (env.dir, "qemu-abort",
                         "#!/bin/sh\necho 'qemu: error: failed to set MSR 0x10a to 0x69' >&2\n"
                         "kill -ABRT $$\n");
  chmod (qemu, 0755);
  char *svc = ts_fmt ("{\"h\": {\"exec\": [\"%s\", \"hang\"]}}", env.fake);
  char *caps = ts_fmt ("%s/tests/data/caps-qemu-7.2-x86_64.json", tu_srcdir ());
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "kvmabort", svc, ts_boot (0), NULL), "--caps", caps, "--set",
            "machine.accel=kvm", "--set", ts_fmt ("qemu.binary=%s", qemu), NULL);
  cr_assert_eq (ts_wait (&a, 30), 5, "%s", ts_stderr (&a));
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, "qemu was killed by signal 6 (SIGABRT)"), "%s", err);
  cr_assert (strstr (err, "failed to set MSR 0x10a"), "%s", err);
  cr_assert (strstr (err, "it ran under KVM before the guest booted: if this host's KVM cannot run guests (avm check "
                          "runs a vCPU to tell), --set machine.accel=tcg runs without it"),
             "%s", err);
  free (qemu);
}

/* Issue 15: a guest that has not booted cannot act on the power button:
   avm stop quits QEMU at once instead of waiting out stop.timeout, and
   says so.  */
Test (start, stop_while_booting_quits_at_once)
{
  char *svc = ts_fmt ("{\"quiet\": {\"exec\": [\"%s\", \"hang\"]}}", env.fake);
  char *extra = ts_fmt ("\"stop\": {\"timeout\": 60}");
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "stopboot", svc, ts_boot (0), extra), NULL);
  ts_wait_notify (&a, "STATUS=booting", 30);
  double t0 = ts_now ();
  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
  cr_assert_lt (ts_now () - t0, 20, "avm stop waited for a power button the guest cannot handle");
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, "qemu: the guest has not booted: no power button, quit at once"), "%s", err);
  cr_assert (strstr (err, "stopped before the guest had booted"), "%s", err);
  cr_assert (!strstr (err, "system_powerdown"), "%s", err);
}

/* ---- faults ------------------------------------------------------------- */

Test (start, helper_crash_restarted_with_backoff)
{
  char *count = ts_path (&env, "starts");
  char *svc = ts_fmt ("{\"flaky\": {\"exec\": [\"%s\", \"count=%s\", \"fail-first=%s:3\", \"hang\"],"
                      " \"restart\": \"on-failure\", \"critical\": true}}",
                      env.fake, count, count);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "flaky", svc, NULL, NULL), NULL);
  ts_wait_notify (&a, "READY=1", 30);
  /* Starts 1 and 2 fail (1 is ready at once: readiness none), restarts
     after 0.1 s and 0.2 s; the third start stays up.  */
  double t0 = ts_now ();
  while (ts_count_lines (count) < 3 && ts_now () - t0 < 10)
    usleep (20000);
  cr_assert_eq (ts_count_lines (count), 3);
  char *out = NULL;
  usleep (100000);
  cr_assert_eq (ts_avm (&env, &out, "status", "--json", NULL), 0);
  json_t *st = ts_json (out);
  json_t *f = json_array_get (json_object_get (st, "services"), 0);
  cr_assert_eq (json_integer_value (json_object_get (f, "restarts")), 2, "%s", out);
  cr_assert_str_eq (json_string_value (json_object_get (f, "state")), "ready");
  cr_assert_str_eq (json_string_value (json_object_get (f, "last_exit")), "exited with status 3");
  json_decref (st);
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, "flaky: exited with status 3; restarting in 0.1 s"), "%s", err);
  cr_assert (strstr (err, "flaky: exited with status 3; restarting in 0.2 s"), "%s", err);
  kill (a.pid, SIGTERM);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
}

/* `avm status` while a service waits out its restart delay: the state,
   the restart count and when it starts next (the delays grow 0.1, 0.2,
   0.4, 0.8 s, so the later ones are long enough to be seen).  */
Test (start, status_shows_restart_delay)
{
  /* The restart delays (100 to 800 ms) are shorter than one `avm status`
     when avm runs under valgrind: nothing to observe there.  */
  if (AVM_TEST_TIME_SCALE > 1)
    cr_skip_test ("restart delays are shorter than an avm status under valgrind");
  char *count = ts_path (&env, "starts");
  char *svc = ts_fmt ("{\"flaky\": {\"exec\": [\"%s\", \"count=%s\", \"fail-first=%s:5\", \"hang\"],"
                      " \"restart\": \"on-failure\"}}",
                      env.fake, count, count);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "flaky", svc, NULL, NULL), NULL);
  ts_wait_notify (&a, "READY=1", 30);
  bool seen_json = false, seen_text = false;
  double t0 = ts_now ();
  while (!(seen_json && seen_text) && ts_now () - t0 < 20)
    {
      char *out = NULL;
      cr_assert_eq (ts_avm (&env, &out, "status", "--json", NULL), 0);
      json_t *st = ts_json (out);
      json_t *f = json_array_get (json_object_get (st, "services"), 0);
      const char *state = json_string_value (json_object_get (f, "state"));
      if (state && strcmp (state, "restarting") == 0)
        {
          double in = json_number_value (json_object_get (f, "restart_in"));
          cr_assert (json_is_number (json_object_get (f, "restart_in")), "%s", out);
          cr_assert (in >= 0 && in <= 0.8, "%s", out);
          cr_assert_str_eq (json_string_value (json_object_get (f, "last_exit")), "exited with status 3");
          seen_json = true;
        }
      else
        cr_assert_null (json_object_get (f, "restart_in"), "%s", out);
      json_decref (st);
      cr_assert_eq (ts_avm (&env, &out, "status", NULL), 0);
      const char *line = strstr (out, "  flaky ");
      cr_assert_not_null (line, "%s", out);
      if (strncmp (line + 2 + 23, "restarting", 10) == 0)
        {
          cr_assert (strstr (line, "(last: exited with status 3), next start in "), "%s", out);
          seen_text = true;
        }
    }
  cr_assert (seen_json && seen_text, "a restart delay was never seen by avm status");
  /* The fifth start stays up.  */
  while (ts_count_lines (count) < 5 && ts_now () - t0 < 20)
    tu_sleep_ms (20);
  cr_assert_eq (ts_count_lines (count), 5);
  kill (a.pid, SIGTERM);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
}

/* What a helper printed is quoted in messages with its control characters
   escaped: a helper cannot recolour or retitle the terminal of whoever
   runs avm (issue 15).  */
Test (start, helper_output_in_messages_is_escaped)
{
  cr_assert_eq (setenv ("AVM_TEST_COLOUR", "\033[31mred\033]0;title\a", 1), 0);
  char *svc = ts_fmt ("{\"colourful\": {\"exec\": [\"%s\", \"env=AVM_TEST_COLOUR\", \"exit=3\"], \"ready\": \"file\","
                      " \"ready_path\": \"${run_dir}/never\"}}",
                      env.fake);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "colour", svc, NULL, NULL), NULL);
  cr_assert_eq (ts_wait (&a, 30), 6, "%s", ts_stderr (&a));
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, "last output: AVM_TEST_COLOUR=\\x1b[31mred\\x1b]0;title\\x07"), "%s", err);
  cr_assert_null (strchr (err, '\033'), "a raw ESC reached the terminal:\n%s", err);
}

/* A TCP port nothing listens on now (the kernel's choice).  */
static int
free_tcp_port (void)
{
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof sa;
  cr_assert_geq (fd, 0);
  cr_assert_eq (bind (fd, (struct sockaddr *) &sa, sizeof sa), 0);
  cr_assert_eq (getsockname (fd, (struct sockaddr *) &sa, &len), 0);
  close (fd);
  return ntohs (sa.sin_port);
}

/* avm status says how to reach the guest: vsock CID, adb, display
   (issue 15).  */
Test (start, status_shows_how_to_reach_the_guest)
{
  int port = free_tcp_port ();
  char *svc = ts_fmt ("{\"adbproxy\": {\"exec\": [\"%s\", \"print=${fd:adb_tcp}\", \"hang\"]}}", env.fake);
  char *extra = ts_fmt ("\"stop\": {\"timeout\": 1}, \"resources\": {\"adb_tcp\": {\"type\": \"tcp-listen\","
                        " \"address\": \"127.0.0.1\", \"port\": %d}}",
                        port);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "reach", svc, NULL, extra), "--set", "display.backend=vnc", "--set",
            "display.vnc.listen=unix:${run_dir}/vnc.sock", NULL);
  ts_wait_notify (&a, "READY=1", 30);
  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "status", "--json", NULL), 0);
  json_t *st = ts_json (out);
  char *adb = ts_fmt ("127.0.0.1:%d", port), *vnc = ts_fmt ("unix:%s/vnc.sock", env.run1);
  cr_assert (json_is_null (json_object_get (st, "cid")), "%s", out); /* vsock.mode none */
  cr_assert_eq (json_array_size (json_object_get (st, "macs")), 0, "%s", out);
  cr_assert_str_eq (json_string_value (json_object_get (st, "adb")), adb);
  json_t *display = json_object_get (st, "display");
  cr_assert_str_eq (json_string_value (json_object_get (display, "backend")), "vnc");
  cr_assert_str_eq (json_string_value (json_object_get (display, "address")), vnc);
  json_decref (st);
  cr_assert_eq (ts_avm (&env, &out, "status", NULL), 0);
  cr_assert (strstr (out, ts_fmt ("\n  adb %s, display vnc %s\n", adb, vnc)), "%s", out);
  cr_assert_null (strstr (out, " \n"), "%s", out);
  kill (a.pid, SIGTERM);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
}

/* A second instance whose guest would have the MAC address of a running
   one is warned about in its plan and by avm check (issue 15).  */
Test (start, mac_shared_with_a_running_instance_is_warned)
{
  char *svc = ts_fmt ("{\"h\": {\"exec\": [\"%s\", \"hang\"]}}", env.fake);
  char *profile = ts_profile (&env, "nic", svc, NULL, NULL);
  struct ts_avm a;
  ts_start (&env, &a, profile, "--set", "network.mode=user", NULL);
  ts_wait_notify (&a, "READY=1", 30);
  char *out = NULL;
  /* Instance 2 adds 1 to the last byte: ff + 1 is instance 1's 00.  */
  cr_assert_eq (ts_avm (&env, &out, "start", "-n", "--json", "-p", profile, "--allow-unapproved", "-i", "2", "--set",
                        "network.mode=user", "--set", "network.mac=00:1a:11:e0:cf:ff", NULL),
                0);
  assert_contains (out, "network: instance 1 (profile nic, avm pid ");
  assert_contains (out, ") already runs a guest with MAC address 00:1a:11:e0:cf:00; the two guests would share it");
  cr_assert_eq (ts_avm (&env, &out, "check", "-p", profile, "--allow-unapproved", "-i", "2", "--set",
                        "network.mode=user", "--set", "network.mac=00:1a:11:e0:cf:ff", NULL),
                0, "%s", out);
  assert_contains (out, "warn  instances ");
  assert_contains (out, "already runs a guest with MAC address 00:1a:11:e0:cf:00");
  /* Its own MAC: nothing said.  */
  cr_assert_eq (ts_avm (&env, &out, "start", "-n", "--json", "-p", profile, "--allow-unapproved", "-i", "2", "--set",
                        "network.mode=user", NULL),
                0);
  cr_assert_null (strstr (out, "already runs a guest"), "%s", out);
  kill (a.pid, SIGTERM);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
}

Test (start, crash_loop_tears_down_naming_the_service)
{
  char *svc = ts_fmt ("{\"looping\": {\"exec\": [\"%s\", \"stderr=segfault in libfoo\", \"crash\"],"
                      " \"restart\": \"always\", \"critical\": true}}",
                      env.fake);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "loop", svc, NULL, NULL), NULL);
  cr_assert_eq (ts_wait (&a, 60), 6, "%s", ts_stderr (&a));
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, "service looping was killed by signal 11 (SIGSEGV); crash loop: 5 starts within 30 s"), "%s",
             err);
  cr_assert (strstr (err, "last output: segfault in libfoo"), "%s", err);
}

Test (start, helper_ignoring_sigterm_is_killed_after_its_timeout)
{
  char *svc = ts_fmt ("{\"stubborn\": {\"exec\": [\"%s\", \"ignore-term\", \"hang\"], \"stop_timeout\": 1}}", env.fake);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "stubborn", svc, NULL, NULL), NULL);
  ts_wait_notify (&a, "READY=1", 30);
  pid_t pids[4];
  size_t n = ts_pids (&env, pids, 4);
  double t0 = ts_now ();
  kill (a.pid, SIGTERM);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
  cr_assert_geq (ts_now () - t0, 0.9);
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, "stubborn: still running 1.0 s after SIGTERM: SIGKILL"), "%s", err);
  cr_assert (strstr (err, "stubborn: was killed by signal 9 (SIGKILL)\n"), "%s", err);
  /* The signal is named once.  */
  cr_assert_null (strstr (err, "(SIGKILL) (SIGKILL)"), "%s", err);
  ts_assert_gone (pids, n);
}

Test (start, qemu_killed_tears_everything_down)
{
  char *svc = ts_fmt ("{\"h\": {\"exec\": [\"%s\", \"hang\"]}}", env.fake);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "qkill", svc, NULL, NULL), NULL);
  ts_wait_notify (&a, "READY=1", 30);
  pid_t pids[4];
  size_t n = ts_pids (&env, pids, 4);
  pid_t qemu = ts_qemu_pid (&env);
  cr_assert_gt (qemu, 0);
  kill (qemu, SIGKILL);
  cr_assert_eq (ts_wait (&a, 30), 5, "%s", ts_stderr (&a));
  cr_assert (strstr (ts_stderr (&a), "qemu was killed by signal 9 (SIGKILL)"), "%s", ts_stderr (&a));
  ts_assert_gone (pids, n);
}

Test (start, avm_sigkilled_leaves_no_orphans)
{
  char *svc = ts_fmt ("{\"h1\": {\"exec\": [\"%s\", \"hang\"]}, \"h2\": {\"exec\": [\"%s\", \"ignore-term\", "
                      "\"hang\"], \"restart\": \"no\"}}",
                      env.fake, env.fake);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "sigkill", svc, NULL, NULL), NULL);
  ts_wait_notify (&a, "READY=1", 30);
  pid_t pids[4];
  size_t n = ts_pids (&env, pids, 4);
  cr_assert_eq (n, 3);
  kill (a.pid, SIGKILL);
  cr_assert_eq (ts_wait (&a, 10), 128 + SIGKILL);
  /* The parent-death signal is SIGKILL: h2, which ignores SIGTERM, goes too.  */
  ts_assert_gone (pids, n);
}

Test (start, second_sigint_stops_at_once)
{
  char *svc
      = ts_fmt ("{\"stubborn\": {\"exec\": [\"%s\", \"ignore-term\", \"hang\"], \"stop_timeout\": 60}}", env.fake);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "twice", svc, NULL, NULL), NULL);
  ts_wait_notify (&a, "READY=1", 30);
  pid_t pids[4];
  size_t n = ts_pids (&env, pids, 4);
  kill (a.pid, SIGINT);
  usleep (300000);
  double t0 = ts_now ();
  kill (a.pid, SIGINT);
  cr_assert_eq (ts_wait (&a, 10), 7, "%s", ts_stderr (&a));
  cr_assert_lt (ts_now () - t0, 5);
  cr_assert (strstr (ts_stderr (&a), "second SIGINT: killing everything now"), "%s", ts_stderr (&a));
  ts_assert_gone (pids, n);
}

Test (start, second_instance_refused_and_two_side_by_side)
{
  char *svc = ts_fmt ("{\"h\": {\"exec\": [\"%s\", \"listen=${socket}\", \"hang\"], \"socket\": "
                      "\"${run_dir}/h.sock\", \"ready\": \"socket\"}}",
                      env.fake);
  char *profile = ts_profile (&env, "pair", svc, NULL, NULL);
  struct ts_avm a, b, c;
  ts_start (&env, &a, profile, NULL);
  ts_wait_notify (&a, "READY=1", 30);
  ts_start (&env, &b, profile, NULL);
  cr_assert_eq (ts_wait (&b, 30), 1);
  cr_assert (strstr (ts_stderr (&b), "already running"), "%s", ts_stderr (&b));
  ts_start (&env, &c, profile, "--instance", "2", NULL);
  ts_wait_notify (&c, "READY=1", 30);
  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "status", "--all", "--json", NULL), 0);
  json_t *all = ts_json (out);
  cr_assert_eq (json_array_size (all), 2, "%s", out);
  json_decref (all);
  /* The fleet view: a header, then a line per instance.  */
  cr_assert_eq (ts_avm (&env, &out, "status", "--all", NULL), 0);
  cr_assert (strncmp (out, "INSTANCE PROFILE ", 17) == 0, "%s", out);
  char *l1 = strstr (out, "\n1 "), *l2 = strstr (out, "\n2 ");
  cr_assert (l1 && l2 && l1 < l2 && strstr (l1, " pair ") && strstr (l1, " running "), "%s", out);
  cr_assert_eq (ts_avm (&env, &out, "stop", "-i", "2", NULL), 0);
  cr_assert_eq (ts_wait (&c, 30), 0, "%s", ts_stderr (&c));
  cr_assert_eq (ts_avm (&env, &out, "status", NULL), 0);
  cr_assert_eq (ts_avm (&env, &out, "stop", "--kill", NULL), 0);
  cr_assert_eq (ts_wait (&a, 30), 7, "%s", ts_stderr (&a));
  cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0); /* not running: nothing to do */
}

/* Issue 14: a service whose program is not installed is skipped when it
   is not critical (with the services after it), and shown as skipped.  */
Test (start, missing_optional_helpers_are_skipped_and_shown)
{
  char *svc = ts_fmt ("{"
                      "\"a\": {\"exec\": [\"%s\", \"hang\"]},"
                      "\"b\": {\"exec\": [\"avm-test-no-such-helper\", \"-x\"]},"
                      "\"c\": {\"exec\": [\"%s\", \"hang\"], \"after\": [\"b\"]},"
                      "\"d\": {\"exec\": [\"avm-test-no-such-helper-2\", \"hang\"], \"alternatives\": [\"%s\"],"
                      "      \"critical\": true}"
                      "}",
                      env.fake, env.fake, env.fake);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "skips", svc, NULL, NULL), NULL);
  ts_wait_notify (&a, "READY=1", 30);
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, "service b skipped: program avm-test-no-such-helper is not installed"), "%s", err);
  cr_assert (strstr (err, "service c skipped: needs b"), "%s", err);
  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "status", "--json", NULL), 0);
  json_t *st = ts_json (out);
  json_t *svcs = json_object_get (st, "services");
  cr_assert_eq (json_array_size (svcs), 4, "%s", out);
  int skipped = 0;
  size_t i;
  json_t *s;
  json_array_foreach (svcs, i, s)
    {
      const char *name = json_string_value (json_object_get (s, "name"));
      const char *state = json_string_value (json_object_get (s, "state"));
      if (!strcmp (name, "b") || !strcmp (name, "c"))
        {
          cr_assert_str_eq (state, "skipped");
          cr_assert (json_is_null (json_object_get (s, "pid")));
          skipped++;
        }
      else
        cr_assert_str_eq (state, "ready", "%s: %s", name, state);
    }
  cr_assert_eq (skipped, 2);
  json_decref (st);
  cr_assert_eq (ts_avm (&env, &out, "status", NULL), 0);
  cr_assert (strstr (out, "skipped    program avm-test-no-such-helper is not installed"), "%s", out);
  cr_assert (strstr (out, "skipped    needs b"), "%s", out);
  cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
}

Test (start, missing_critical_helpers_named_at_once_and_nothing_starts)
{
  char *marker = ts_path (&env, "started");
  char *svc = ts_fmt ("{"
                      "\"a\": {\"exec\": [\"%s\", \"touch=%s\", \"hang\"]},"
                      "\"b\": {\"exec\": [\"avm-test-missing-one\"], \"critical\": true},"
                      "\"c\": {\"exec\": [\"avm-test-missing-two\"], \"critical\": true},"
                      "\"d\": {\"exec\": [\"%s\", \"hang\"], \"after\": [\"b\"], \"critical\": true}"
                      "}",
                      env.fake, marker, env.fake);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "critmiss", svc, NULL, NULL), NULL);
  cr_assert_eq (ts_wait (&a, 30), 1, "%s", ts_stderr (&a));
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, "critical services cannot start: b (program avm-test-missing-one), c "
                          "(program avm-test-missing-two), d (needs b) (searched "),
             "%s", err);
  cr_assert_eq (access (marker, F_OK), -1, "a helper was started");
}

/* Issue 15: a malformed --instance once printed the usage error and then
   acted on instance 1 (stop stopped it and exited 0).  */
Test (start, bad_instance_number_touches_no_instance)
{
  char *svc = ts_fmt ("{\"h\": {\"exec\": [\"%s\", \"listen=${socket}\", \"hang\"], \"socket\": "
                      "\"${run_dir}/h.sock\", \"ready\": \"socket\"}}",
                      env.fake);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "typo", svc, NULL, NULL), NULL);
  ts_wait_notify (&a, "READY=1", 30);
  const char *bad[] = { "x", "0", "65", "1x", "" };
  char *out = NULL;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    {
      cr_assert_eq (ts_avm (&env, &out, "stop", "-i", bad[i], NULL), 2, "stop -i '%s'", bad[i]);
      cr_assert_eq (ts_avm (&env, &out, "stop", "--kill", "--instance", bad[i], NULL), 2, "stop -i '%s'", bad[i]);
      cr_assert_eq (ts_avm (&env, &out, "status", "-i", bad[i], NULL), 2, "status -i '%s'", bad[i]);
      cr_assert (!strstr (out, "instance 1"), "status -i '%s' reported instance 1: %s", bad[i], out);
    }
  cr_assert_eq (ts_avm (&env, &out, "status", NULL), 0, "instance 1 was stopped by a malformed -i");
  cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
}

Test (start, pid1_in_a_pid_namespace_reaps_orphans)
{
  if (access ("/usr/bin/unshare", X_OK) != 0)
    cr_skip_test ("no unshare (util-linux)");
  /* The helper leaves an orphan that outlives it by 0.5 s: re-parented to
     avm (PID 1 of the namespace), which must reap it.  */
  char *svc = ts_fmt ("{\"parent\": {\"exec\": [\"%s\", \"fork-orphan=0.5\", \"exit=0\"], \"restart\": \"no\"},"
                      " \"h\": {\"exec\": [\"%s\", \"hang\"]}}",
                      env.fake, env.fake);
  struct ts_avm a;
  ts_start_wrapped (&env, &a, ts_profile (&env, "pid1", svc, NULL, NULL), "/usr/bin/unshare", NULL);
  ts_wait_notify (&a, "READY=1", 30);
  usleep (1500000);
  pid_t avm = ts_child_of (a.pid);
  cr_assert_gt (avm, 0, "no avm process under unshare");
  cr_assert_eq (ts_zombies_of (avm), 0, "avm as PID 1 left a zombie");
  kill (avm, SIGTERM);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
  cr_assert (strstr (ts_stderr (&a), "parent: exited with status 0; not restarted"), "%s", ts_stderr (&a));
}

/* Contains the bytes of S?  */
static bool
file_contains (const char *path, const char *s)
{
  FILE *f = fopen (path, "rb");
  if (!f)
    return false;
  size_t cap = 16 << 20;
  char *buf = malloc (cap);
  size_t n = buf ? fread (buf, 1, cap, f) : 0;
  fclose (f);
  bool found = buf && memmem (buf, n, s, strlen (s)) != NULL;
  free (buf);
  return found;
}

Test (start, properties_disk_built_and_rebuilt_when_boot_properties_change)
{
  if (access ("/usr/bin/openssl", X_OK) != 0)
    cr_skip_test ("no openssl");
  char *key = ts_path (&env, "avb.pem");
  char *gen[] = { "openssl", "genrsa", "-out", key, "4096", NULL };
  char *o = NULL, *e = NULL;
  cr_assert_eq (tu_run (gen, NULL, &o, &e), 0, "%s", e);
  free (o);
  free (e);
  char *svc = ts_fmt ("{\"h\": {\"exec\": [\"%s\", \"hang\"]}}", env.fake);
  const char *values[] = { "one", "one", "two" };
  const char *expect_rebuilt[] = { "yes", "no", "yes" };
  char *disk = ts_fmt ("%s/1/properties.img", env.state);
  for (int i = 0; i < 3; i++)
    {
      char *extra = ts_fmt ("\"stop\": {\"timeout\": 0},"
                            " \"disks\": [{\"name\": \"properties\", \"path\": \"${state_dir}/properties.img\","
                            " \"boot_properties\": true, \"key\": \"%s\", \"snapshot\": true}],"
                            " \"boot_properties\": {\"androidboot.avm_test\": \"%s\"}",
                            key, values[i]);
      struct ts_avm a;
      ts_start (&env, &a, ts_profile (&env, ts_fmt ("props%d", i), svc, NULL, extra), NULL);
      ts_wait_notify (&a, "READY=1", 60);
      kill (a.pid, SIGTERM);
      cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
      bool rebuilt = strstr (ts_stderr (&a), "properties: (re)built with the profile's boot properties") != NULL;
      cr_assert_eq (rebuilt, strcmp (expect_rebuilt[i], "yes") == 0, "start %d:\n%s", i, ts_stderr (&a));
      cr_assert (file_contains (disk, ts_fmt ("androidboot.avm_test=%s\n", values[i])), "start %d", i);
      ts_avm_done (&a);
    }
}

/* ---- journal ------------------------------------------------------------ */

/* --log-target=journal end to end, with the real systemd-journald: in a
   private mount namespace of this test process, /run is a fresh tmpfs
   where journald binds its sockets and keeps its files, so the host's
   journal (if any) is untouched.  Helper output and the guest console
   reach the journal with avm's fields; journalctl reads them back.  */
static pid_t journald = -1;

static void
stop_journald (void)
{
  if (journald > 0)
    {
      kill (journald, SIGTERM);
      waitpid (journald, NULL, 0);
      journald = -1;
    }
}

Test (start, journal_log_target_end_to_end, .fini = teardown)
{
  const char *jd = "/lib/systemd/systemd-journald";
  if (access (jd, X_OK) < 0 || access ("/usr/bin/journalctl", X_OK) < 0)
    cr_skip_test ("systemd-journald or journalctl is not installed");
  if (unshare (CLONE_NEWNS) < 0 || mount ("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0
      || mount ("tmpfs", "/run", "tmpfs", 0, "size=64m,mode=0755") < 0)
    cr_skip_test ("cannot make a private /run for journald: %s", strerror (errno));
  journald = fork ();
  cr_assert_geq (journald, 0);
  if (journald == 0)
    {
      int null = open ("/dev/null", O_RDWR);
      dup2 (null, 0);
      dup2 (null, 1);
      dup2 (null, 2);
      execl (jd, jd, (char *) NULL);
      _exit (127);
    }
  atexit (stop_journald);
  for (int i = 0; i < 500 && access ("/run/systemd/journal/socket", F_OK) < 0; i++)
    tu_sleep_ms (10);
  cr_assert_eq (access ("/run/systemd/journal/socket", F_OK), 0, "journald did not create its socket");

  char *svc = ts_fmt ("{\"talker\": {\"exec\": [\"%s\", \"print=talker says hello\", \"stderr=talker warns\", "
                      "\"hang\"]}, \"writer\": {\"exec\": [\"%s\", %s]}}",
                      env.fake, env.fake, ts_console_writes ("guest line for the journal"));
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "journaled", svc, NULL, NULL), "--log-target=journal", "-i", "4", NULL);
  ts_wait_notify (&a, "READY=1", 60);
  char *log = NULL;
  double t0 = ts_now ();
  while ((!log || !strstr (log, "guest line for the journal")) && ts_now () - t0 < 30)
    {
      free (log);
      tu_sleep_ms (100);
      log = tu_read (ts_fmt ("%s/4/logs/console-console.log", env.state));
    }
  cr_assert (log && strstr (log, "guest line for the journal"), "%s", log);
  free (log);
  kill (a.pid, SIGTERM);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));

  /* journald writes asynchronously: ask until the last line is there.  */
  char *argv[] = { "journalctl", "-D", "/run/log/journal", "--no-pager", "-o", "json", "AVM_INSTANCE=4", NULL };
  char *out = NULL, *e = NULL;
  t0 = ts_now ();
  for (;;)
    {
      free (out);
      free (e);
      cr_assert_eq (tu_run (argv, NULL, &out, &e), 0, "%s", e);
      if ((strstr (out, "guest line for the journal") && strstr (out, "talker warns")) || ts_now () - t0 > 20)
        break;
      tu_sleep_ms (200);
    }
  bool talker_out = false, talker_err = false, console = false;
  for (char *line = strtok (out, "\n"); line; line = strtok (NULL, "\n"))
    {
      json_t *j = ts_json (line);
      const char *msg = json_string_value (json_object_get (j, "MESSAGE"));
      const char *service = json_string_value (json_object_get (j, "AVM_SERVICE"));
      const char *stream = json_string_value (json_object_get (j, "AVM_STREAM"));
      cr_assert_str_eq (json_string_value (json_object_get (j, "SYSLOG_IDENTIFIER")), "avm", "%s", line);
      if (msg && strcmp (msg, "talker says hello") == 0)
        {
          cr_assert_str_eq (service, "talker", "%s", line);
          talker_out = true;
        }
      if (msg && strcmp (msg, "talker warns") == 0)
        talker_err = true;
      if (msg && strcmp (msg, "guest line for the journal") == 0)
        {
          cr_assert (stream && strstr (stream, "console"), "%s", line);
          console = true;
        }
      json_decref (j);
    }
  cr_assert (talker_out && talker_err && console, "journal entries missing (stdout %d, stderr %d, console %d)",
             talker_out, talker_err, console);
  free (out);
  free (e);
  stop_journald ();
}
