/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UTF-8 and UTF-16 conversions, strict: no overlong forms, no surrogates
 * encoded in UTF-8, no unpaired surrogates in UTF-16, nothing above
 * U+10FFFF.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Decode the character at S into *CP: its length in bytes (1 to 4), or 0
   when S does not start with a valid UTF-8 character (a NUL byte inside a
   sequence ends it: invalid).  */
size_t avm_utf8_decode (const unsigned char *s, uint32_t *cp);

/* Encode C (at most U+10FFFF, not a surrogate) in OUT (room for 4 bytes,
   not NUL-terminated): the number of bytes written.  */
size_t avm_utf8_encode (uint32_t c, char *out);

/* NAME (UTF-8, NUL-terminated) as UTF-16 code units: how many, or -1 when
   NAME is not valid UTF-8.  At most MAX units are stored in OUT (which may
   be NULL: counting only; a surrogate pair is stored only whole), but all
   are counted.  */
ssize_t avm_utf8_to_utf16 (const char *name, uint16_t *out, size_t max);

/* NAME for an error message, malloc'd (NULL when out of memory): bytes
   that are not valid UTF-8, control characters and DEL as \xNN, the rest
   as it is.  */
char *avm_utf8_for_message (const char *name);

/* At most UNITS little-endian UTF-16 code units at RAW, up to the first
   NUL unit, as UTF-8 in OUT (room for 3 * UNITS + 1 bytes), NUL-terminated:
   0, or -1 for an unpaired surrogate (OUT then undefined).  */
int avm_utf16le_to_utf8 (const uint8_t *raw, size_t units, char *out);
