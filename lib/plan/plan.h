/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plan: everything `avm start` will do, computed from a resolved
 * profile before anything runs.  QEMU binary, capabilities and accelerator,
 * the approved QEMU argv with its pinned PCI layout, helper services in
 * start order, resources to create, boot detection and boot properties.
 * `avm start --dry-run --json` prints it; the supervisor executes it.
 */
#pragma once

#include "profile/profile.h"
#include "qemu/caps.h"
#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>

struct avm_plan_request
{
  struct avm_profile *profile;
  int instance;              /* 1.. */
  const char *images;        /* --images, or NULL for paths.images */
  const char *caps_file;     /* --caps FILE, or NULL to probe/cache the binary */
  bool allow_unapproved;     /* --allow-unapproved */
  bool dry_run;              /* missing files are warnings, not errors */
  bool layout_only;          /* no QEMU needed: devices, displays and the first
                                accelerator are assumed available, files and
                                programs are not checked (cvd2img uses this to
                                derive boot properties from a profile) */
};

struct avm_plan
{
  json_t *json;         /* the whole plan (see avm-start(1), "JSON PLAN") */
  char **qemu_argv;     /* NULL-terminated */
  size_t *qemu_lines;   /* index of the first argv element of each output line */
  size_t n_lines;
  bool approved;        /* false when extra_qemu_args were used */
  struct avm_qemu_caps *caps;
};

int avm_plan_build (const struct avm_plan_request *req, struct avm_plan **out, avm_error_t *err);
void avm_plan_free (struct avm_plan *plan);
void avm_plan_freep (struct avm_plan **plan);
#define _cleanup_plan_ __attribute__ ((cleanup (avm_plan_freep)))

/* What PROFILE (resolved) asks of this host beyond what it has: guest
   memory above the host's, more vCPUs than CPUs online.  One warning
   string each is appended to WARNINGS.  avm_plan_build adds them to the
   plan's warnings, except for a layout or with --caps (a plan for another
   QEMU, maybe on another host); avm check reports them.  */
int avm_plan_host_fit (json_t *profile, json_t *warnings);

/* The QEMU command line, shell-quoted, one option per line, with a comment
   header.  */
int avm_plan_print_cmdline (const struct avm_plan *plan, FILE *out);

/* Runtime and state directories of an instance (malloc'd):
   $AVM_RUNTIME_DIR/N, else $XDG_RUNTIME_DIR/avm/N, or /run/avm/N as root;
   $AVM_STATE_DIR/N, else $XDG_STATE_HOME/avm/N, or /var/lib/avm/N as root.  */
char *avm_instance_run_dir (int instance);
char *avm_instance_state_dir (int instance);

/* The host's architecture as QEMU names it (uname's machine, "arm64" as
   "aarch64"), or "".  */
const char *avm_host_arch (void);
