/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz targets (tests/fuzz/README.md).  Each fuzz_NAME.c defines
 * AVM_FUZZ_TARGET (NAME) { ... }: the function avm_fuzz_NAME (DATA, SIZE),
 * which feeds one input through the library and returns 0, and -- only
 * when built with -DAVM_FUZZ_MAIN by `make fuzz` -- libFuzzer's
 * LLVMFuzzerTestOneInput calling it.  The Criterion suite (fuzzregress)
 * links the same files without AVM_FUZZ_MAIN and calls avm_fuzz_NAME on
 * every seed and every regression input, so one copy of each harness
 * serves both.  A harness aborts when an invariant of the API is broken
 * (a failure without a message, a success without a result): libFuzzer
 * reports that as a crash, Criterion as a failed test.
 */
#pragma once

#include "util/error.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define AVM_FUZZ_DECLARE(name) int avm_fuzz_##name (const uint8_t *data, size_t size)

#ifdef AVM_FUZZ_MAIN
/* clang-format off */
#define AVM_FUZZ_TARGET(name)                                                                                          \
  AVM_FUZZ_DECLARE (name);                                                                                             \
  int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);                                                       \
  int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)                                                        \
  {                                                                                                                    \
    return avm_fuzz_##name (data, size);                                                                               \
  }                                                                                                                    \
  AVM_FUZZ_DECLARE (name)
/* clang-format on */
#else
#define AVM_FUZZ_TARGET(name) AVM_FUZZ_DECLARE (name)
#endif

/* Abort with a message when COND does not hold.  */
/* clang-format off */
#define AVM_FUZZ_CHECK(cond)                                                                                           \
  do                                                                                                                   \
    {                                                                                                                  \
      if (!(cond))                                                                                                     \
        {                                                                                                              \
          fprintf (stderr, "%s:%d: fuzz invariant broken: %s\n", __FILE__, __LINE__, #cond);                           \
          abort ();                                                                                                    \
        }                                                                                                              \
    }                                                                                                                  \
  while (0)
/* clang-format on */

/* R < 0 must come with a message in ERR; ERR is freed and reset.  */
static inline void
avm_fuzz_check_err (int r, avm_error_t *err)
{
  if (r < 0)
    AVM_FUZZ_CHECK (*err && (*err)->msg && (*err)->msg[0]);
  avm_error_free (*err);
  *err = NULL;
}

/* A private temporary directory for the process (created once, removed at
   exit with its files: each harness only creates plain files in it).  */
const char *avm_fuzz_tmpdir (void);
/* Write DATA to the file NAME in it (replaced); returns its path
   (malloc'd), or aborts.  */
char *avm_fuzz_write (const char *name, const void *data, size_t size);
/* The source tree (profiles/): $AVM_SRCDIR, else the build's directory.  */
const char *avm_fuzz_srcdir (void);

AVM_FUZZ_DECLARE (profile);
AVM_FUZZ_DECLARE (set);
AVM_FUZZ_DECLARE (sparse);
AVM_FUZZ_DECLARE (imgset);
AVM_FUZZ_DECLARE (qmp);
AVM_FUZZ_DECLARE (control);
AVM_FUZZ_DECLARE (framing);
AVM_FUZZ_DECLARE (gpt);
AVM_FUZZ_DECLARE (avb);
AVM_FUZZ_DECLARE (inspect);
