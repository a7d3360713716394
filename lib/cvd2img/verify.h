/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `avm inspect --verify`: a disk written by cvd2img checked against its
 * manifest.json through libguestfs (loaded on first use), so that a real
 * Linux kernel parses the GPT and reads the signed partitions.
 */
#pragma once

#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>

/* Check the disk through libguestfs against MANIFEST (manifest.json as
   written by cvd2img; MANIFEST_NAMED: the user named it, else it is the
   default next to the disk).  PROBLEMS gets one string per mismatch.  A
   disk or manifest that is not there is bad input (exit code 2).  Each
   step (the appliance's start, the partition table, each signed
   partition read through the kernel) is shown on STATUS (may be NULL;
   disk/progress.h), which the caller begins and ends.  */
struct avm_status;
int avm_inspect_verify (const char *path, const char *manifest, bool manifest_named, struct avm_status *status,
                        json_t **problems, avm_error_t *err);
