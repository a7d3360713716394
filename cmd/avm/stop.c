/* SPDX-License-Identifier: Apache-2.0 */
/* avm stop: ask a running instance to stop, and wait until it has. */
#include "avm.h"
#include "plan/plan.h"
#include "supervise/control_client.h"
#include "supervise/rundir.h"
#include "util/cleanup.h"
#include "util/escape.h"
#include "util/fs.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void
avm_help_stop (FILE *out)
{
  fputs ("Usage: avm stop [OPTIONS]\n"
         "\n"
         "Stop a running instance the way SIGTERM does: QMP system_powerdown, the\n"
         "profile's stop timeout, quit, SIGTERM, SIGKILL; then the helpers in reverse\n"
         "start order.  Waits until the instance is gone.\n"
         "\n"
         "  -i, --instance N   instance number 1..64 (default 1)\n"
         "      --kill         kill QEMU and every helper at once (no guest shutdown)\n"
         "      --no-wait      return once the instance has accepted the request\n"
         "      --timeout SEC  wait at most SEC seconds (default 300)\n"
         "  -h, --help         show this help\n"
         "\n"
         "Exit status: 0 stopped (or not running), 1 failure or timeout, 2 bad usage.\n"
         "See avm-stop(1).\n",
         out);
}

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int
avm_cmd_stop (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "instance", required_argument, NULL, 'i' },
    { "kill", no_argument, NULL, OPT_KILL },
    { "no-wait", no_argument, NULL, OPT_NO_WAIT },
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  _cleanup_error_ avm_error_t err = NULL;
  int instance = 1, c;
  bool kill_now = false, wait = true;
  double timeout = 300;
  char *end;

  if (avm_instance_default ("stop", &instance) < 0)
    return AVM_EXIT_USAGE;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, "+:i:h", longopts, NULL)) != -1)
    switch (c)
      {
      case 'i':
        if (avm_parse_instance ("stop", optarg, &instance) < 0)
          return AVM_EXIT_USAGE;
        break;
      case OPT_KILL:
        kill_now = true;
        break;
      case OPT_NO_WAIT:
        wait = false;
        break;
      case OPT_TIMEOUT:
        timeout = strtod (optarg, &end);
        if (*end || end == optarg || !(timeout > 0 && timeout <= 86400))
          return avm_usage_error ("stop", "--timeout %s: expected seconds, 0 < SEC <= 86400", optarg);
        break;
      case 'h':
        avm_help_stop (stdout);
        return 0;
      default:
        return avm_bad_option ("stop", c, argv);
      }
  if (optind < argc)
    return avm_usage_error ("stop", "unexpected argument \"%s\"", argv[optind]);

  _cleanup_free_ char *dir = NULL, *sock = NULL;
  pid_t pid = 0;
  int r = avm_instance_running ("stop", instance, "", &dir, &sock, &pid);
  if (r <= 0)
    return r < 0 ? -r : AVM_EXIT_OK;
  _cleanup_json_ json_t *req = json_pack ("{s:s, s:b}", "command", "stop", "kill", kill_now);
  _cleanup_json_ json_t *reply = NULL;
  if (!req)
    {
      avm_error_sys (&err, ENOMEM, "stop");
      return avm_error_report (&err);
    }
  r = avm_control_call (sock, req, &reply, 5000, &err);
  if (r < 0)
    {
      avm_error_prefix (&err, "instance %d (pid %d)", instance, (int) pid);
      return avm_error_report (&err);
    }
  if (!json_is_true (json_object_get (reply, "ok")))
    {
      avm_fprintf_escaped (stderr, "avm stop: instance %d: %s\n", instance,
                           json_string_value (json_object_get (reply, "error")) ?: "request refused");
      return AVM_EXIT_FAILURE;
    }
  if (!wait)
    return AVM_EXIT_OK;
  double deadline = now_s () + timeout;
  while ((r = avm_rundir_holder (dir, &pid, &err)) == 1)
    {
      if (now_s () > deadline)
        {
          fprintf (stderr, "avm stop: instance %d (pid %d) still running after %.0f s; try avm stop --kill\n", instance,
                   (int) pid, timeout);
          return AVM_EXIT_FAILURE;
        }
      struct timespec ts = { 0, 20 * 1000 * 1000 };
      nanosleep (&ts, NULL);
    }
  if (r < 0)
    return avm_error_report (&err);
  return AVM_EXIT_OK;
}
