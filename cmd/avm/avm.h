/* SPDX-License-Identifier: Apache-2.0 */
/* The avm command line: one file per subcommand over lib/. */
#pragma once

#include "plan/plan.h"
#include "profile/profile.h"
#include "supervise/supervisor.h"
#include "util/error.h"
#include "util/strv.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

/* Options shared by the commands that resolve a profile.  */
struct avm_profile_opts
{
  const char *profile;
  struct avm_argv options; /* --option NAME=CHOICE */
  struct avm_argv sets;    /* --set PATH=VALUE */
  int instance;
  const char *images;
  const char *caps_file;
  bool allow_unapproved;
};

enum
{
  OPT_PROFILE = 0x100,
  OPT_SET,
  OPT_OPTION,
  OPT_INSTANCE,
  OPT_IMAGES,
  OPT_CAPS,
  OPT_ALLOW_UNAPPROVED,
  OPT_DRY_RUN,
  OPT_JSON,
  OPT_HELP,
  OPT_STOP_AFTER_BOOT,
  OPT_LOG_TARGET,
  OPT_NO_WAIT,
  OPT_TIMEOUT,
  OPT_KILL,
  OPT_SEED,
  OPT_OUTPUT,
  OPT_REPLACE,
  OPT_COMPRESS,
  OPT_RESTORE,
  OPT_RESTORE_OR_BOOT,
  OPT_READY,
  OPT_LIVE,
};

/* clang-format off */
#define AVM_PROFILE_LONGOPTS                                                                                           \
  { "profile", required_argument, NULL, 'p' }, { "set", required_argument, NULL, OPT_SET },                            \
      { "option", required_argument, NULL, 'O' }, { "instance", required_argument, NULL, 'i' },                        \
      { "images", required_argument, NULL, OPT_IMAGES }, { "caps", required_argument, NULL, OPT_CAPS },                \
      { "allow-unapproved", no_argument, NULL, OPT_ALLOW_UNAPPROVED }
/* clang-format on */

/* Handle one of the shared options; returns 1 if handled, 0 if not, or a
   negative error (usage).  */
int avm_profile_opts_parse (struct avm_profile_opts *o, int c, const char *arg, avm_error_t *err);
void avm_profile_opts_clear (struct avm_profile_opts *o);
/* Default profile: $AVM_PROFILE, else aaos-<host architecture>.  */
const char *avm_default_profile (void);
int avm_profile_opts_load (struct avm_profile_opts *o, struct avm_profile **out, avm_error_t *err);

/* A usage error: prints "avm CMD: MSG" and a pointer to --help; exit code 2.
   Under a personality (avm_error_program), "cvd2img: MSG" and its --help.  */
int avm_usage_error (const char *cmd, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Report an option getopt_long rejected (C is '?' or ':'); exit code 2.  */
int avm_bad_option (const char *cmd, int c, char **argv);
int avm_json_print (json_t *j, FILE *out);
/* Instance N's runtime directory and control socket (*DIR, *SOCK:
   malloc'd, set also when it does not run) and whether avm start holds
   it: 1 (its pid in *PID), 0 (not running), or -errno with ERR filled.  */
int avm_instance_locate (int instance, char **dir, char **sock, pid_t *pid, avm_error_t *err);
/* The same for command CMD that needs the instance running: 1 when it
   runs; 0 when not, said on stderr ("avm CMD: instance N is not running"
   and HINT, which may be ""); or minus the exit status after reporting a
   failure.  */
int avm_instance_running (const char *cmd, int instance, const char *hint, char **dir, char **sock, pid_t *pid);

/* `avm start` once its options are parsed; start-avm runs it too.  */
struct avm_start_run
{
  bool dry_run;      /* print the plan, start nothing */
  bool json;         /* with dry_run: the whole plan as JSON */
  bool show_cmdline; /* print the QEMU command line on stderr before starting */
  bool stop_after_boot;
  enum avm_log_target log_target;
  bool verbose, quiet;
  const char *restore;  /* --restore NAME, --restore-or-boot NAME */
  bool restore_or_boot; /* ... a snapshot that is missing or does not fit: boot cold */
};
int avm_start_run (struct avm_profile_opts *o, const struct avm_start_run *sr);

int avm_cmd_start (int argc, char **argv);
int avm_cmd_start_avm (int argc, char **argv);
int avm_cmd_profiles (int argc, char **argv);
int avm_cmd_check (int argc, char **argv);
int avm_cmd_cvd2img (int argc, char **argv);
int avm_cmd_cvd2img_compat (int argc, char **argv);
int avm_cmd_inspect (int argc, char **argv);
int avm_cmd_status (int argc, char **argv);
int avm_cmd_stop (int argc, char **argv);
int avm_cmd_screenshot (int argc, char **argv);
int avm_cmd_snapshot (int argc, char **argv);
int avm_cmd_kube (int argc, char **argv);

void avm_help_start (FILE *out);
void avm_help_profiles (FILE *out);
void avm_help_check (FILE *out);
void avm_help_cvd2img (FILE *out);
void avm_help_inspect (FILE *out);
void avm_help_status (FILE *out);
void avm_help_stop (FILE *out);
void avm_help_screenshot (FILE *out);
void avm_help_snapshot (FILE *out);
void avm_help_kube (FILE *out);

/* The instance a command takes without --instance: 1, or in a pod of a
   StatefulSet (avm kube) $AVM_POD_ORDINAL + 1.  A bad value prints a usage
   error and returns -EINVAL.  */
int avm_instance_default (const char *cmd, int *out);
/* --instance N: 1..64.  Anything else prints a usage error and returns
   -EINVAL (the caller exits with AVM_EXIT_USAGE).  */
int avm_parse_instance (const char *cmd, const char *arg, int *out);
