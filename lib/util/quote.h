/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* POSIX-shell quoting for copy-pasteable output (malloc'd).  Strings made
   only of characters that are never special are returned as they are.  */
char *avm_shell_quote (const char *s);

/* QEMU option-value escaping: every ',' doubled (malloc'd).  */
char *avm_qemu_escape (const char *s);
