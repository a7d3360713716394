/* SPDX-License-Identifier: Apache-2.0 */
/*
 * "Did you mean" suggestions for a misspelt name.
 */
#pragma once

#include <stddef.h>

/* The one of the N CANDIDATES closest to WORD by edit distance (letters
   compared case-insensitively), or NULL when none is within
   strlen (WORD) / 3 + 1 edits.  Words longer than 64 characters match
   nothing.  Ties go to the first candidate.  */
const char *avm_closest (const char *word, const char *const *candidates, size_t n);
