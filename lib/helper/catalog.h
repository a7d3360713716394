/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The catalog of approved helper programs: the allowlist behind the
 * Functional Safety promise for the processes avm starts beside QEMU, as
 * qemu/catalog.h is for QEMU's devices.  A service is approved when its
 * program (exec[0]'s base name) is listed here and every argument has a
 * shape the entry allows: a known flag with a value of the right kind (a
 * descriptor reference, an absolute path, a number, one of a few words...),
 * or a positional argument of the right kind, in order; and its
 * environment holds only approved variables.  Anything else (`sh -c`, an
 * unknown flag, LD_PRELOAD) needs --allow-unapproved and is flagged in
 * every output.
 *
 * What the catalog approves is the command line; which binary a name
 * resolves to (paths.helpers, the images' bin/) is the deployment's, as
 * for the QEMU binary.
 */
#pragma once

#include <jansson.h>

/* 0 when ARGV (the service's argument vector as planned: the program
   first, ${fd:NAME} references unexpanded) with ENV (an object of strings,
   may be NULL) is approved.  Otherwise 1 and *WHY (malloc'd) says what is
   not: "program sh is not an approved helper", "argument 2 \"--evil=1\":
   secure_env has no approved flag --evil".  -ENOMEM on allocation failure.  */
int avm_helper_approved (json_t *argv, json_t *env, char **why);

/* The approved program names, NULL-terminated (static), for avm-profile(5)
   and the tests.  */
const char *const *avm_helper_programs (void);
