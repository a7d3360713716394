/* SPDX-License-Identifier: Apache-2.0 */
/* Option handling shared by the subcommands. */
#include "avm.h"
#include "cuttlefish/release.h"
#include "supervise/control_client.h"
#include "supervise/rundir.h"
#include "util/cleanup.h"
#include "util/escape.h"
#include "util/fs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The one rule for --instance: a decimal integer 1..64.  */
static bool
instance_number (const char *arg, int *out)
{
  char *end;
  errno = 0;
  long v = strtol (arg, &end, 10);
  if (errno || *end || end == arg || v < 1 || v > 64)
    return false;
  *out = (int) v;
  return true;
}

int
avm_instance_default (const char *cmd, int *out)
{
  const char *ord = getenv ("AVM_POD_ORDINAL");
  *out = 1;
  if (!ord || !*ord)
    return 0;
  char *end;
  errno = 0;
  long v = strtol (ord, &end, 10);
  if (errno || *end || end == ord || v < 0 || v > 63)
    {
      avm_usage_error (cmd, "AVM_POD_ORDINAL=%s: expected an integer 0..63 (the pod's ordinal)", ord);
      return -EINVAL;
    }
  *out = (int) v + 1;
  return 0;
}

int
avm_parse_instance (const char *cmd, const char *arg, int *out)
{
  if (instance_number (arg, out))
    return 0;
  avm_usage_error (cmd, "--instance %s: expected an integer 1..64", arg);
  return -EINVAL;
}

int
avm_profile_opts_parse (struct avm_profile_opts *o, int c, const char *arg, avm_error_t *err)
{
  switch (c)
    {
    case 'p':
      o->profile = arg;
      return 1;
    case OPT_SET:
      if (!strchr (arg, '='))
        return avm_error_input (err, "--set %s: expected PATH=VALUE (e.g. --set machine.accel=tcg)", arg);
      avm_argv_push (&o->sets, arg);
      return 1;
    case 'O':
      if (!strchr (arg, '='))
        return avm_error_input (err, "--option %s: expected NAME=CHOICE (e.g. --option gpu=virgl)", arg);
      avm_argv_push (&o->options, arg);
      return 1;
    case 'i':
      if (!instance_number (arg, &o->instance))
        return avm_error_input (err, "--instance %s: expected an integer 1..64", arg);
      return 1;
    case OPT_IMAGES:
      o->images = arg;
      return 1;
    case OPT_CAPS:
      o->caps_file = arg;
      return 1;
    case OPT_ALLOW_UNAPPROVED:
      o->allow_unapproved = true;
      return 1;
    }
  return 0;
}

void
avm_profile_opts_clear (struct avm_profile_opts *o)
{
  avm_argv_clear (&o->options);
  avm_argv_clear (&o->sets);
}

const char *
avm_default_profile (void)
{
  static char buf[64];
  const char *env = getenv ("AVM_PROFILE");
  if (env && *env)
    return env;
  if (streq (avm_host_arch (), "aarch64"))
    return "aaos-arm64";
  snprintf (buf, sizeof buf, "aaos-x86_64");
  return buf;
}

int
avm_profile_opts_load (struct avm_profile_opts *o, struct avm_profile **out, avm_error_t *err)
{
  struct avm_profile_request req = {
    .name = o->profile ? o->profile : avm_default_profile (),
    .options = o->options.v,
    .sets = o->sets.v,
    .images = o->images,
    .detect = avm_cf_profile_detect,
  };
  return avm_profile_load (&req, out, err);
}

int
avm_usage_error (const char *cmd, const char *fmt, ...)
{
  va_list ap;
  /* A personality (avm run as cvd2img) is its own command.  */
  const char *prog = avm_error_program ();
  if (!streq (prog, "avm"))
    cmd = NULL;
  fprintf (stderr, "%s%s%s: ", prog, cmd ? " " : "", cmd ? cmd : "");
  va_start (ap, fmt);
  avm_vfprintf_escaped (stderr, fmt, ap);
  va_end (ap);
  fprintf (stderr, " (see '%s %s%s--help')\n", prog, cmd ? cmd : "", cmd ? " " : "");
  return AVM_EXIT_USAGE;
}

/* J is NULL when building it ran out of memory: said here, once for
   every caller, which then exits 1.  */
int
avm_json_print (json_t *j, FILE *out)
{
  if (!j)
    {
      fprintf (stderr, "avm: out of memory while building the JSON output\n");
      return -ENOMEM;
    }
  if (json_dumpf (j, out, JSON_INDENT (2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION (9)) < 0)
    {
      fprintf (stderr, "avm: cannot write the JSON output\n");
      return -EIO;
    }
  fputc ('\n', out);
  return 0;
}

int
avm_bad_option (const char *cmd, int c, char **argv)
{
  const char *arg = argv[optind - 1];
  if (c == ':')
    return avm_usage_error (cmd, "option %s needs an argument", arg);
  if (optopt && optopt < 0x100)
    return avm_usage_error (cmd, "unknown option '-%c'", optopt);
  return avm_usage_error (cmd, "unknown option '%s'", arg);
}

int
avm_instance_locate (int instance, char **dir, char **sock, pid_t *pid, avm_error_t *err)
{
  *pid = 0;
  *dir = avm_instance_run_dir (instance);
  *sock = *dir ? avm_path_join (*dir, AVM_CONTROL_SOCKET) : NULL;
  if (!*sock)
    return avm_error_sys (err, ENOMEM, "instance %d", instance);
  return avm_rundir_holder (*dir, pid, err);
}

int
avm_instance_running (const char *cmd, int instance, const char *hint, char **dir, char **sock, pid_t *pid)
{
  _cleanup_error_ avm_error_t err = NULL;
  int r = avm_instance_locate (instance, dir, sock, pid, &err);
  if (r < 0)
    return -avm_error_report (&err);
  if (r == 0)
    fprintf (stderr, "avm %s: instance %d is not running%s\n", cmd, instance, hint);
  return r;
}
