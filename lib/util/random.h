/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Fill BUF with LEN random bytes: from getrandom, else /dev/urandom, else
   (seccomp filters, very old kernels) a splitmix64 stream seeded from the
   time, the pid and a counter: unique enough for GUIDs, not for keys.
   Never fails.  */
void avm_random_bytes (uint8_t *buf, size_t len);
