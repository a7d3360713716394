/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* printf into a new string (malloc'd), or NULL when out of memory.  */
char *avm_strdupf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
char *avm_vstrdupf (const char *fmt, va_list ap) __attribute__ ((format (printf, 1, 0)));

/* "1.5 GiB", "512 B" */
void avm_format_bytes (uint64_t bytes, char *buf, size_t size);
