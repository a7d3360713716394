/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `avm start`: execute a plan and supervise it until it stops.
 *
 *   1. lock the runtime directory (a live instance is refused, a stale one
 *      emptied), create the state and log directories, bring generated
 *      disks (the properties disk) in line with the plan's boot properties;
 *   2. create every resource (FIFOs, sockets, pipes) before any process;
 *   3. start the helper services in plan order, each as soon as the
 *      services it comes `after` are ready, and wait for each to be ready
 *      (listening socket, file, READY=1 notification, or at once) within
 *      its timeout;
 *   4. start QEMU last, connect to QMP, read the consoles into size-capped
 *      logs and match the boot console against the boot patterns;
 *   5. tell the service manager READY=1 when the guest has booted (or when
 *      QMP answers, for profiles without boot patterns), keep STATUS= up
 *      to date, WATCHDOG=1 while QMP query-status answers,
 *      EXTEND_TIMEOUT_USEC= while booting;
 *   6. supervise: restart helpers by policy with exponential backoff and a
 *      burst limit, tear everything down when a critical helper gives up or
 *      QEMU exits; serve `avm status` and `avm stop` on the control socket;
 *   7. stop on SIGTERM/SIGINT/SIGHUP or `avm stop`: QMP system_powerdown,
 *      wait the profile's stop timeout, QMP quit, SIGTERM, SIGKILL; then the
 *      helpers in reverse start order, SIGTERM then SIGKILL after each one's
 *      timeout.  A second SIGINT kills everything at once.
 *
 * avm is a child subreaper and reaps every process re-parented to it (as
 * PID 1 of a container, everything); each child gets SIGKILL if avm dies
 * without stopping it (killed, crashed).
 */
#pragma once

#include "plan/plan.h"
#include "util/error.h"

#include <stdbool.h>
#include <stdint.h>

/* Exit statuses of `avm start` (avm-start(1), EXIT STATUS).  */
enum
{
  AVM_EXIT_BOOT_FAILED = 3,  /* the guest printed a boot-failure pattern */
  AVM_EXIT_BOOT_TIMEOUT = 4, /* no boot-completed pattern within boot.timeout */
  AVM_EXIT_QEMU = 5,         /* QEMU exited, was killed, or its monitor failed */
  AVM_EXIT_SERVICE = 6,      /* a critical helper service failed for good */
  AVM_EXIT_KILLED = 7,       /* stopped at once (second interrupt, stop --kill) */
};

enum avm_log_target
{
  AVM_LOG_AUTO, /* files, and the journal when stderr is the journal */
  AVM_LOG_FILE,
  AVM_LOG_JOURNAL, /* files and the journal */
};

struct avm_supervise_options
{
  struct avm_plan *plan;
  bool stop_after_boot; /* power down once booted; exit 0 */
  enum avm_log_target log_target;
  bool verbose; /* echo console and helper lines to stderr */
  bool quiet;   /* no progress lines on stderr */
  /* --restore: the snapshot's metadata (avm_snapshot_load; checked against
     the plan, which was built with its restore request) and directory.  */
  json_t *restore_meta;
  const char *restore_dir;
  /* --restore-or-boot: the cold boot's plan (the same profile without the
     restore), run when QEMU cannot load the snapshot; or NULL.  */
  const struct avm_plan *fallback_plan;
};

/* avm's stop budget for PLAN, in microseconds: the longest the stop
   sequence may take (the EXTEND_TIMEOUT_USEC= sent with STOPPING=1); what
   a container's stop timeout, a unit's TimeoutStopSec= and a pod's
   terminationGracePeriodSeconds must give it.  */
uint64_t avm_supervise_stop_budget (const struct avm_plan *plan);

/* Run the plan to the end.  Returns the exit status (0 after a clean stop,
   AVM_EXIT_* otherwise); *ERR holds the reason when it is not 0.  */
int avm_supervise (const struct avm_supervise_options *o, avm_error_t *err);
