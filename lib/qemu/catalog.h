/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The catalog of QEMU device types avm may put on a command line: the
 * allowlist behind the Functional Safety "blessed" line.  The command-line
 * builder only emits types listed here; each entry says which QEMU release
 * added it and what to do when the QEMU at hand lacks it.
 */
#pragma once

struct avm_qdev
{
  const char *name;             /* QEMU type name */
  int since_major, since_minor; /* first upstream release; 0.0 = not upstream */
  const char *what;             /* what it is, for messages */
  const char *fix;              /* what the user can do instead, or NULL */
  const char *no_migrate;       /* NULL: QEMU migrates it (a snapshot can save it); else why
                                   not, in a few words (QEMU 7.2, see catalog.c) */
};

/* NULL when NAME is not in the catalog.  */
const struct avm_qdev *avm_qdev_lookup (const char *name);
