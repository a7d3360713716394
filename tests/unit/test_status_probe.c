/* SPDX-License-Identifier: Apache-2.0 */
/*
 * avm status --ready and --live, the probes of a Kubernetes pod (avm
 * kube): quiet, and the answer in the exit status.  Real QEMU (TCG, no
 * guest) under avm start as in test_start.c; the boot console is written
 * by the fault-injection helper.  --ready is 4 while booting and 0 once
 * booted; --live is 0 while the supervisor and QEMU's monitor answer, and
 * 4 once QEMU is stopped (SIGSTOP: its monitor never answers, as a wedged
 * QEMU); both are 3 when the instance does not run.
 */
#include "test_start.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>

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

TestSuite (status, .init = setup, .fini = teardown);

/* `avm status ARGS` must print nothing at all and exit STATUS.  */
static void
probe (int status, const char *what, const char *instance)
{
  char *out = NULL;
  int r = ts_avm (&env, &out, "status", what, "-i", instance, NULL);
  cr_assert_eq (r, status, "avm status %s -i %s exited %d, expected %d: %s", what, instance, r, status, out);
  cr_assert_str_eq (out, "", "avm status %s printed: %s", what, out);
}

Test (status, probes_before_during_and_after_a_run)
{
  probe (3, "--ready", "1");
  probe (3, "--live", "1");
  /* Never boots: QEMU runs, no boot pattern comes.  */
  char *svc = ts_fmt ("{\"quiet\": {\"exec\": [\"%s\", \"hang\"]}}", env.fake);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "probe", svc, ts_boot (0), NULL), NULL);
  ts_wait_notify (&a, "STATUS=booting", 30);
  probe (4, "--ready", "1");
  probe (0, "--live", "1");
  probe (3, "--ready", "2");

  /* QEMU stopped: its monitor never answers query-status.  */
  pid_t q = ts_qemu_pid (&env);
  cr_assert_gt (q, 0);
  cr_assert_eq (kill (q, SIGSTOP), 0);
  double t0 = ts_now ();
  probe (4, "--live", "1");
  cr_assert_lt (ts_now () - t0, 15);
  cr_assert_eq (kill (q, SIGCONT), 0);
  probe (0, "--live", "1");

  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
  probe (3, "--ready", "1");
  probe (3, "--live", "1");
}

Test (status, ready_once_booted)
{
  char *svc = ts_fmt ("{\"guestish\": {\"exec\": [\"%s\", %s]}}", env.fake,
                      ts_console_writes ("VIRTUAL_DEVICE_BOOT_COMPLETED"));
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "booted", svc, ts_boot (0), NULL), NULL);
  ts_wait_notify (&a, "READY=1", 30);
  probe (0, "--ready", "1");
  probe (0, "--live", "1");
  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
}

Test (status, probe_usage)
{
  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "status", "--ready", "--live", NULL), 2);
  cr_assert_eq (ts_avm (&env, &out, "status", "--ready", "--json", NULL), 2);
  cr_assert_eq (ts_avm (&env, &out, "status", "--live", "--all", NULL), 2);
}
