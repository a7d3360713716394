/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Readiness of helper services, checked without disturbing them: a unix
 * socket is ready when a socket bound to its path is listening, seen in
 * /proc/net/unix (connecting would use up the single connection QEMU's
 * vhost-user-gpu accepts); a file is ready when it exists.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* /proc/net/unix is read only up to this size (about 150 bytes a socket:
   some 400000 sockets).  */
#define AVM_PROC_NET_UNIX_MAX (64u << 20)

/* Is a socket listening on PATH?  Paths are compared after resolving the
   directory part (the kernel shows the path as bound).  */
bool avm_unix_listening (const char *path);

/* Parse /proc/net/unix text (exposed for tests).  */
bool avm_unix_listening_in (const char *proc_net_unix, const char *path);

/* avm_unix_listening over /proc/net/unix text already read (one read serves
   many checks).  */
bool avm_unix_listening_text (const char *proc_net_unix, const char *path);

/* One pass over /proc/net/unix text for many paths: FOUND[i] becomes true
   when PATHS[i] (NULL entries skipped) is the path of a listening socket.  */
void avm_unix_listening_set (const char *proc_net_unix, const char *const *paths, size_t n, bool *found);

/* *OUT: PATH with its directory resolved (symbolic links, "..": the form
   a helper may have bound), or NULL when that is PATH itself.  -errno when
   the directory cannot be resolved (-ENOENT: not there yet).  */
int avm_ready_canonical_path (const char *path, char **out);

bool avm_file_ready (const char *path);
