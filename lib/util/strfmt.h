/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdarg.h>

/* printf into a new string (malloc'd), or NULL when out of memory.  */
char *avm_strdupf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
char *avm_vstrdupf (const char *fmt, va_list ap) __attribute__ ((format (printf, 1, 0)));
