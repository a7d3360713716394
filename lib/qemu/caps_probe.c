/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QEMU capabilities: probing a binary.  Its help options run concurrently
 * (util/capture.h), never through a shell, within PROBE_TIMEOUT_MS; their
 * output goes through the parsers of caps_parse.c.
 */
#include "qemu/caps.h"
#include "qemu/caps_internal.h"
#include "util/capture.h"
#include "util/cleanup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROBE_TIMEOUT_MS 10000

/* ------------------------------------------------------------------ */
/* Probing.  */

int
avm_caps_check_binary (const char *binary, struct stat *st, avm_error_t *err)
{
  if (!binary || binary[0] != '/')
    return avm_error_input (err, "QEMU binary %s: not an absolute path", binary ? binary : "(null)");
  if (stat (binary, st) < 0)
    return avm_error_sys (err, errno, "QEMU binary %s", binary);
  if (!S_ISREG (st->st_mode))
    return avm_error_fail (err, EACCES, "QEMU binary %s: not a regular file", binary);
  if (access (binary, X_OK) < 0)
    return avm_error_sys (err, errno, "QEMU binary %s: not executable", binary);
  return 0;
}

static void
describe_status (int status, char *buf, size_t size)
{
  if (WIFEXITED (status))
    snprintf (buf, size, "exited with status %d", WEXITSTATUS (status));
  else if (WIFSIGNALED (status))
    snprintf (buf, size, "was killed by signal %d (%s)", WTERMSIG (status), strsignal (WTERMSIG (status)));
  else
    snprintf (buf, size, "failed (wait status %#x)", (unsigned) status);
}

static bool
succeeded (int status)
{
  return WIFEXITED (status) && WEXITSTATUS (status) == 0;
}

enum
{
  JOB_VERSION,
  JOB_DEVICE,
  JOB_DISPLAY,
  JOB_MACHINE,
  JOB_ACCEL,
  JOB_AUDIODEV,
  N_JOBS
};

static const struct
{
  const char *opt, *arg;
  int (*parse) (struct avm_qemu_caps *, const char *, avm_error_t *);
  bool required;
} probes[N_JOBS] = {
  [JOB_VERSION] = { "-version", NULL, avm_qemu_caps_parse_version, true },
  [JOB_DEVICE] = { "-device", "help", avm_qemu_caps_parse_devices, true },
  [JOB_DISPLAY] = { "-display", "help", avm_qemu_caps_parse_displays, false },
  [JOB_MACHINE] = { "-machine", "help", avm_qemu_caps_parse_machines, false },
  [JOB_ACCEL] = { "-accel", "help", avm_qemu_caps_parse_accels, false },
  [JOB_AUDIODEV] = { "-audiodev", "help", avm_qemu_caps_parse_audiodevs, false },
};

static int
parse_outputs (struct avm_qemu_caps *caps, struct avm_capture *jobs, avm_error_t *err)
{
  const char *binary = caps->binary;

  for (size_t i = 0; i < N_JOBS; i++)
    {
      const char *text = jobs[i].out;
      if (!succeeded (jobs[i].status))
        {
          char how[96];
          describe_status (jobs[i].status, how, sizeof how);
          if (probes[i].required)
            return avm_error_fail (err, EPROTO, "%s %s%s%s %s", binary, probes[i].opt, probes[i].arg ? " " : "",
                                   probes[i].arg ? probes[i].arg : "", how);
          text = ""; /* odd build: treat as an empty list */
        }
      int r = probes[i].parse (caps, text, err);
      if (r < 0)
        {
          avm_error_prefix (err, "%s", binary);
          return r;
        }
    }
  return 0;
}

int
avm_caps_probe_binary (const char *binary, struct avm_qemu_caps **out, avm_error_t *err)
{
  _cleanup_caps_ struct avm_qemu_caps *caps = calloc (1, sizeof *caps);
  struct avm_capture jobs[N_JOBS] = { 0 };
  char *argvs[N_JOBS][4];
  int r;

  if (!caps || !(caps->binary = strdup (binary)))
    return avm_error_sys (err, ENOMEM, "probing %s", binary);
  for (size_t i = 0; i < N_JOBS; i++)
    {
      argvs[i][0] = (char *) binary;
      argvs[i][1] = (char *) probes[i].opt;
      argvs[i][2] = (char *) probes[i].arg;
      argvs[i][3] = NULL;
      jobs[i].argv = argvs[i];
    }
  r = avm_capture_run (jobs, N_JOBS, PROBE_TIMEOUT_MS, err);
  if (r < 0)
    return r;
  r = parse_outputs (caps, jobs, err);
  avm_capture_clear (jobs, N_JOBS);
  if (r < 0)
    return r;
  caps->source = AVM_CAPS_PROBED;
  *out = steal_pointer (&caps);
  return 0;
}

int
avm_qemu_caps_probe (const char *binary, struct avm_qemu_caps **out, avm_error_t *err)
{
  struct stat st;
  int r = avm_caps_check_binary (binary, &st, err);
  if (r < 0)
    return r;
  return avm_caps_probe_binary (binary, out, err);
}
