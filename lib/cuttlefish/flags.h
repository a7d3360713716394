/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The command-line flags a Cuttlefish host tool accepts.  The tools parse
 * their flags with gflags (2.2): an unknown flag makes them print "ERROR:
 * unknown command line flag 'X'" and exit 1, unless --undefok names it;
 * --helpxml lists every flag they define (gflags_reporting.cc: a <flag>
 * element with <name> per flag) and exits 1.  avm asks each helper once,
 * caches the answer per binary (util/cachefile.h, kind "helper-flags",
 * until the binary changes), and checks the argv of the plan against it,
 * so that a host package of another release than the profile's choice is
 * named at plan time instead of failing a start.
 */
#pragma once

#include "util/error.h"

#include <stdbool.h>

/* The sorted flag names PROGRAM defines (*FLAGS a NULL-terminated vector),
   or *FLAGS NULL when it does not answer --helpxml as gflags does (then
   nothing can be checked), from the cache: 1 when the cache answered, 0
   when the program must be asked.  */
int avm_cf_gflags_cached (const char *program, char ***flags);

/* Ask PROGRAM (--helpxml) with the environment ENVP and cache the answer.
   The tools set up their logging from the Cuttlefish configuration before
   they parse their flags (the mains under host/commands: DefaultSubprocessLogging, then
   ParseCommandLineFlags), so ENVP must name a configuration they can read
   (avm_cf_probe_env).  Fails only when the program cannot be run.  */
int avm_cf_gflags_probe (const char *program, char *const *envp, char ***flags, avm_error_t *err);

/* A throw-away Cuttlefish configuration for the probes: a temporary root
   with the configuration and the instance's logs/, and the environment
   (avm's, with CUTTLEFISH_CONFIG_FILE, CUTTLEFISH_INSTANCE and HOME
   pointing there).  */
struct avm_cf_probe_env
{
  char *root;
  char **envp;
};
int avm_cf_probe_env_make (struct avm_cf_probe_env *pe, int instance, avm_error_t *err);
void avm_cf_probe_env_clear (struct avm_cf_probe_env *pe);

/* The flags of ARGV (argv[0] excluded: "-name=...", "--name", "-noname")
   that FLAGS does not define and no --undefok of ARGV excuses, as a
   comma-separated list (malloc'd, "" when there is none).  */
char *avm_cf_gflags_unknown (char *const *flags, const char *const *argv);
