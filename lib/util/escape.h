/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Text from outside (file names, --set values, helpers' output, messages
 * of other processes) shown on a terminal without the terminal acting on
 * it: what it would act on is written as \xHH instead.  That is every C0
 * control character but tab and newline (ESC starts the ANSI sequences
 * that recolour, move the cursor, retitle the window, ...), DEL, the C1
 * controls U+0080..U+009F (UTF-8 C2 80..C2 9F; U+009B is a CSI of its
 * own) and every byte that is not part of valid UTF-8.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* At S (N > 0 bytes left): how many bytes to escape (0 if none), else in
 *OK how many bytes are fine as they are (a whole UTF-8 sequence).  */
size_t avm_escape_span (const char *s, size_t n, size_t *ok);
/* Whether S (N bytes) has anything to escape.  */
bool avm_needs_escape (const char *s, size_t n);
/* S (N bytes) escaped (malloc'd), or NULL when out of memory.  */
char *avm_escape_n (const char *s, size_t n);
char *avm_escape (const char *s);
/* Write S (N bytes) to OUT, escaped.  */
void avm_fput_escaped (FILE *out, const char *s, size_t n);
/* fprintf, the whole result escaped (tab and newline are kept: the format's
   own line ends survive).  */
int avm_fprintf_escaped (FILE *out, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
int avm_vfprintf_escaped (FILE *out, const char *fmt, va_list ap) __attribute__ ((format (printf, 2, 0)));
