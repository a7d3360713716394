/* SPDX-License-Identifier: Apache-2.0 */
/* avm status: ask a running instance over its control socket. */
#include "avm.h"
#include "plan/plan.h"
#include "supervise/control_client.h"
#include "supervise/rundir.h"
#include "util/cleanup.h"
#include "util/escape.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strbuf.h"

#include <stdlib.h>
#include <string.h>

/* Not running: like systemctl status (LSB "program is not running").  */
#define EXIT_NOT_RUNNING 3
/* --ready: running but the guest has not booted (yet), or stopping;
   --live: the supervisor or QEMU's monitor did not answer in time.  */
#define EXIT_NOT_YET 4
/* How long --live waits for the supervisor and QEMU's monitor.  */
#define LIVE_TIMEOUT_MS 5000

void
avm_help_status (FILE *out)
{
  fputs ("Usage: avm status [OPTIONS]\n"
         "\n"
         "Show the state of a running instance: phase, QEMU and helper processes,\n"
         "uptime, boot time and restarts, asked over its control socket.\n"
         "\n"
         "  -i, --instance N   instance number 1..64 (default 1)\n"
         "  -a, --all          every running instance\n"
         "      --json         print the state as JSON\n"
         "      --ready        no output; exit 0 when the guest has booted (readiness probe)\n"
         "      --live         no output; exit 0 while the supervisor and QEMU's monitor\n"
         "                     answer (liveness probe, as avm's watchdog)\n"
         "  -h, --help         show this help\n"
         "\n"
         "Exit status: 0 running (--ready: booted; --live: answering), 3 not running,\n"
         "4 --ready: not booted yet or stopping, --live: no answer within 5 s,\n"
         "1 failure, 2 bad usage.\n"
         "See avm-status(1).\n",
         out);
}

static void
format_duration (double s, char *buf, size_t len)
{
  if (s < 60)
    snprintf (buf, len, "%.1f s", s);
  else if (s < 3600)
    snprintf (buf, len, "%dm%02ds", (int) s / 60, (int) s % 60);
  else
    snprintf (buf, len, "%dh%02dm", (int) s / 3600, ((int) s % 3600) / 60);
}

/* One line, padded into columns but never ending in blanks.  */
static void
put_line (FILE *out, struct avm_strbuf *b)
{
  _cleanup_free_ char *line = avm_strbuf_steal (b);
  if (!line)
    return;
  size_t n = strlen (line);
  while (n > 0 && line[n - 1] == ' ')
    n--;
  avm_fput_escaped (out, line, n);
  fputc ('\n', out);
}

static void
print_process (FILE *out, json_t *p)
{
  char up[32] = "-", pidbuf[24] = "-";
  _cleanup_strbuf_ struct avm_strbuf b = { 0 };
  const char *reason = json_string_value (json_object_get (p, "reason"));
  if (reason)
    {
      /* Never started (the plan skipped it).  */
      avm_strbuf_addf (&b, "  %-22s %-10s %s", json_string_value (json_object_get (p, "name")),
                       json_string_value (json_object_get (p, "state")), reason);
      put_line (out, &b);
      return;
    }
  json_t *pid = json_object_get (p, "pid");
  if (json_is_integer (pid))
    snprintf (pidbuf, sizeof pidbuf, "%lld", (long long) json_integer_value (pid));
  if (json_is_number (json_object_get (p, "uptime")))
    format_duration (json_number_value (json_object_get (p, "uptime")), up, sizeof up);
  avm_strbuf_addf (&b, "  %-22s %-10s pid %-8s up %-9s", json_string_value (json_object_get (p, "name")),
                   json_string_value (json_object_get (p, "state")), pidbuf, up);
  json_t *restarts = json_object_get (p, "restarts");
  if (json_is_integer (restarts))
    avm_strbuf_addf (&b, " restarts %lld", (long long) json_integer_value (restarts));
  const char *last = json_string_value (json_object_get (p, "last_exit"));
  if (last)
    avm_strbuf_addf (&b, " (last: %s)", last);
  json_t *in = json_object_get (p, "restart_in");
  if (json_is_number (in))
    avm_strbuf_addf (&b, ", next start in %.1f s", json_number_value (in));
  put_line (out, &b);
}

static const char *
field (json_t *j, const char *key)
{
  const char *s = json_string_value (json_object_get (j, key));
  return s ? s : "-";
}

static void
print_status (FILE *out, json_t *st)
{
  if (!json_object_get (st, "qemu"))
    {
      /* Locked, control socket not up yet (or no longer).  */
      avm_fprintf_escaped (out, "instance %lld: %s (avm pid %lld, runtime directory %s)\n",
                           (long long) json_integer_value (json_object_get (st, "instance")), field (st, "state"),
                           (long long) json_integer_value (json_object_get (st, "pid")), field (st, "run_dir"));
      return;
    }
  char up[32], boot[32] = "";
  format_duration (json_number_value (json_object_get (st, "uptime")), up, sizeof up);
  json_t *bt = json_object_get (st, "boot_time");
  if (json_is_number (bt))
    format_duration (json_number_value (bt), boot, sizeof boot);
  avm_fprintf_escaped (out, "instance %lld: %s (profile %s, avm pid %lld, up %s)\n",
                       (long long) json_integer_value (json_object_get (st, "instance")), field (st, "state"),
                       field (st, "profile"), (long long) json_integer_value (json_object_get (st, "pid")), up);
  size_t k;
  json_t *w;
  json_array_foreach (json_object_get (st, "unapproved"), k, w)
    avm_fprintf_escaped (out, "  UNAPPROVED: %s\n", json_string_value (w));
  /* Where to reach the guest, when the plan says.  */
  _cleanup_strbuf_ struct avm_strbuf reach = { 0 };
  json_t *cid = json_object_get (st, "cid"), *display = json_object_get (st, "display");
  const char *adb = json_string_value (json_object_get (st, "adb"));
  if (json_is_integer (cid))
    avm_strbuf_addf (&reach, "vsock CID %lld", (long long) json_integer_value (cid));
  if (adb)
    avm_strbuf_addf (&reach, "%sadb %s", reach.len ? ", " : "", adb);
  if (json_is_object (display))
    {
      const char *addr = json_string_value (json_object_get (display, "address"));
      avm_strbuf_addf (&reach, "%sdisplay %s%s%s", reach.len ? ", " : "", field (display, "backend"), addr ? " " : "",
                       addr ? addr : "");
    }
  if (reach.len)
    {
      _cleanup_free_ char *text = avm_strbuf_steal (&reach);
      if (text)
        avm_fprintf_escaped (out, "  %s\n", text);
    }
  json_t *web = json_object_get (st, "web");
  json_array_foreach (json_object_get (web, "urls"), k, w)
    avm_fprintf_escaped (out, "  web display, output %zu: %s (VNC %s)\n", k, json_string_value (w),
                         json_string_value (json_array_get (json_object_get (web, "vnc"), k)) ?: "?");
  if (*boot)
    avm_fprintf_escaped (out, "  booted in %s%s\n", boot,
                         json_integer_value (json_object_get (st, "boots")) > 1 ? " (rebooted since)" : "");
  else
    avm_fprintf_escaped (out, "  not booted yet\n");
  json_t *q = json_object_get (st, "qemu");
  json_object_set_new (q, "name", json_string ("qemu"));
  print_process (out, q);
  size_t i;
  json_t *s;
  json_array_foreach (json_object_get (st, "services"), i, s)
    print_process (out, s);
  avm_fprintf_escaped (out, "  runtime directory %s\n  logs %s\n", field (st, "run_dir"), field (st, "log_dir"));
}

/* --all: the host's instances, a line each (the fleet view): instance,
   profile, state, boot time, uptime, helper restarts, where to reach it.  */
static void
print_fleet (FILE *out, json_t *list)
{
  _cleanup_strbuf_ struct avm_strbuf b = { 0 };
  avm_strbuf_addf (&b, "%-8s %-14s %-10s %-16s %-9s %-8s %s", "INSTANCE", "PROFILE", "STATE", "BOOTED IN", "UP",
                   "RESTARTS", "ENDPOINTS");
  put_line (out, &b);
  size_t i, k;
  json_t *st, *s;
  json_array_foreach (list, i, st)
    {
      char up[32] = "-", boot[40] = "-", restarts[16] = "-";
      if (json_is_number (json_object_get (st, "uptime")))
        format_duration (json_number_value (json_object_get (st, "uptime")), up, sizeof up);
      json_t *bt = json_object_get (st, "boot_time");
      if (json_is_number (bt))
        {
          format_duration (json_number_value (bt), boot, sizeof boot);
          if (json_object_get (st, "restored_from"))
            strncat (boot, " restored", sizeof boot - strlen (boot) - 1);
        }
      if (json_object_get (st, "qemu"))
        {
          long long n = 0;
          json_array_foreach (json_object_get (st, "services"), k, s)
            n += json_integer_value (json_object_get (s, "restarts"));
          snprintf (restarts, sizeof restarts, "%lld", n);
        }
      _cleanup_strbuf_ struct avm_strbuf reach = { 0 };
      const char *adb = json_string_value (json_object_get (st, "adb"));
      const char *web = json_string_value (json_array_get (json_object_get (json_object_get (st, "web"), "urls"), 0));
      json_t *display = json_object_get (st, "display");
      if (adb)
        avm_strbuf_addf (&reach, "adb %s", adb);
      if (web)
        avm_strbuf_addf (&reach, "%sweb %s", reach.len ? ", " : "", web);
      else if (json_is_object (display) && json_string_value (json_object_get (display, "address")))
        avm_strbuf_addf (&reach, "%sdisplay %s", reach.len ? ", " : "", field (display, "address"));
      _cleanup_free_ char *where = avm_strbuf_steal (&reach);
      avm_strbuf_addf (&b, "%-8lld %-14s %-10s %-16s %-9s %-8s %s",
                       (long long) json_integer_value (json_object_get (st, "instance")), field (st, "profile"),
                       field (st, "state"), boot, up, restarts, where ? where : "-");
      put_line (out, &b);
    }
}

/* Ask instance N for its status: 0 and *ST, or 1 when it is not running.  */
static int
query (int instance, json_t **st, avm_error_t *err)
{
  _cleanup_free_ char *dir = NULL, *sock = NULL;
  pid_t pid = 0;
  int r = avm_instance_locate (instance, &dir, &sock, &pid, err);
  if (r < 0)
    return r;
  if (r == 0)
    return 1;
  _cleanup_json_ json_t *req = json_pack ("{s:s}", "command", "status");
  if (!req)
    return avm_error_sys (err, ENOMEM, "status");
  r = avm_control_call (sock, req, st, 5000, err);
  if (r == 0 && !json_is_true (json_object_get (*st, "ok")))
    {
      r = avm_error_fail (err, EPERM, "instance %d: %s", instance,
                          json_string_value (json_object_get (*st, "error")) ?: "request refused");
      json_decref (*st);
      *st = NULL;
      return r;
    }
  if (r == -ENOENT || r == -ECONNREFUSED)
    {
      /* Locked but no control socket: still setting up, or stopping.  */
      avm_error_free (*err);
      *err = NULL;
      *st = json_pack ("{s:b, s:i, s:s, s:i, s:s}", "ok", 1, "instance", instance, "state", "preparing", "pid",
                       (int) pid, "run_dir", dir);
      return *st ? 0 : avm_error_sys (err, ENOMEM, "status");
    }
  return r;
}

/* --ready and --live: quiet, the answer is the exit status.  */
static int
probe (int instance, bool live)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *dir = NULL, *sock = NULL;
  pid_t pid = 0;
  int r = avm_instance_locate (instance, &dir, &sock, &pid, &err);
  if (r < 0)
    return avm_error_report (&err);
  if (r == 0)
    return EXIT_NOT_RUNNING;
  _cleanup_json_ json_t *req = json_pack ("{s:s}", "command", live ? "live" : "status");
  _cleanup_json_ json_t *reply = NULL;
  if (!req)
    {
      avm_error_sys (&err, ENOMEM, "status");
      return avm_error_report (&err);
    }
  r = avm_control_call (sock, req, &reply, LIVE_TIMEOUT_MS, &err);
  if (r == -ENOENT || r == -ECONNREFUSED)
    /* Locked, no control socket: setting up (live, as the watchdog
       says while starting) or tearing down.  */
    return live ? AVM_EXIT_OK : EXIT_NOT_YET;
  if (r < 0 || !json_is_true (json_object_get (reply, "ok")))
    return EXIT_NOT_YET;
  if (live)
    return json_is_true (json_object_get (reply, "live")) ? AVM_EXIT_OK : EXIT_NOT_YET;
  /* "running" is the phase of READY=1: booted (also restored from a
     snapshot), or QMP answers for a profile without boot patterns.  */
  const char *state = json_string_value (json_object_get (reply, "state"));
  return state && streq (state, "running") ? AVM_EXIT_OK : EXIT_NOT_YET;
}

int
avm_cmd_status (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "instance", required_argument, NULL, 'i' },
    { "all", no_argument, NULL, 'a' },
    { "json", no_argument, NULL, OPT_JSON },
    { "ready", no_argument, NULL, OPT_READY },
    { "live", no_argument, NULL, OPT_LIVE },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  _cleanup_error_ avm_error_t err = NULL;
  int instance = 1, c;
  bool json = false, all = false, ready = false, live = false;

  if (avm_instance_default ("status", &instance) < 0)
    return AVM_EXIT_USAGE;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, "+:i:ah", longopts, NULL)) != -1)
    switch (c)
      {
      case 'i':
        if (avm_parse_instance ("status", optarg, &instance) < 0)
          return AVM_EXIT_USAGE;
        break;
      case 'a':
        all = true;
        break;
      case OPT_JSON:
        json = true;
        break;
      case OPT_READY:
        ready = true;
        break;
      case OPT_LIVE:
        live = true;
        break;
      case 'h':
        avm_help_status (stdout);
        return 0;
      default:
        return avm_bad_option ("status", c, argv);
      }
  if (optind < argc)
    return avm_usage_error ("status", "unexpected argument \"%s\"", argv[optind]);
  if (ready + live + json > 1 || ((ready || live) && all))
    return avm_usage_error ("status", "--ready and --live go alone (not with each other, --json or --all)");
  if (ready || live)
    return probe (instance, live);

  _cleanup_json_ json_t *list = json_array ();
  int first = all ? 1 : instance, last = all ? 64 : instance;
  for (int i = first; i <= last; i++)
    {
      json_t *st = NULL;
      int r = query (i, &st, &err);
      if (r < 0)
        return avm_error_report (&err);
      /* An instance left out of the list would look stopped.  */
      if (r == 0 && (!list || json_array_append_new (list, st) < 0))
        {
          avm_error_sys (&err, ENOMEM, "status of instance %d", i);
          return avm_error_report (&err);
        }
    }
  if (json)
    {
      int pr;
      if (all)
        pr = avm_json_print (list, stdout);
      else if (json_array_size (list))
        pr = avm_json_print (json_array_get (list, 0), stdout);
      else
        {
          _cleanup_json_ json_t *none
              = json_pack ("{s:b, s:i, s:s}", "ok", 1, "instance", instance, "state", "stopped");
          pr = avm_json_print (none, stdout);
        }
      if (pr < 0)
        return AVM_EXIT_FAILURE;
    }
  else
    {
      size_t i;
      json_t *st;
      if (all && json_array_size (list))
        print_fleet (stdout, list);
      else
        json_array_foreach (list, i, st)
          print_status (stdout, st);
      if (json_array_size (list) == 0)
        {
          if (all)
            printf ("no instance is running\n");
          else
            printf ("instance %d is not running\n", instance);
        }
    }
  if (fflush (stdout) != 0)
    return AVM_EXIT_FAILURE;
  return json_array_size (list) ? AVM_EXIT_OK : EXIT_NOT_RUNNING;
}
