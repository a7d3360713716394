/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Do the files of a cvd2img output set belong together?  cvd2img replaces
 * its outputs as one set (output.h: avm_out_commit_set), with a marker file
 * in their directory while it renames them, and records each output's
 * identity in manifest.json: the GPT disk GUID and size of every disk (the
 * GUID is random per conversion, or derived from --seed and the inputs),
 * the SHA-256 and size of the bootloader,
 * of avb_key.pem and of android-info.txt, and the host package's tree: its
 * top-level entries and those of its entries that tell its release.  A set
 * whose marker is still there (a conversion killed or failing half-way), or
 * whose files do not match the manifest next to them (copied in from
 * another conversion by hand, a host tree removed or swapped), is reported
 * with one line per problem naming the files and saying what to do.
 */
#pragma once

#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>

/* Present in an output directory while cvd2img renames a new set into it.  */
#define AVM_CVD2IMG_MARKER ".cvd2img-commit"
#define AVM_CVD2IMG_REMEDY "run avm cvd2img again"

enum avm_setcheck_mode
{
  /* For avm start: one read of each disk's GPT header (its GUID), the size
     of the other files, a stat of each top-level entry of the host tree
     and of its release markers; nothing is hashed.  */
  AVM_SETCHECK_CHEAP,
  /* For avm inspect: also the SHA-256 of the bootloader and the key.  */
  AVM_SETCHECK_FULL,
};

/* Check FILE against the set of its directory: the marker of an
   interrupted conversion is a problem; when manifest.json is there and
   lists a file of FILE's name, FILE (WHOLE_SET: and every other file the
   manifest lists that is in the directory) must match what the manifest
   records.  A FILE the manifest does not list, or no manifest, is not a
   problem.  Each problem is appended to PROBLEMS as one line (the same line
   only once).  Returns 0, or an error when manifest.json is there but
   cannot be read (bad input, exit 2).  */
int avm_setcheck (const char *file, bool whole_set, enum avm_setcheck_mode mode, json_t *problems, avm_error_t *err);
