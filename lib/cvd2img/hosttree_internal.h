/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the files of the host package's tree (hosttree.c: the policy;
 * hosttree_write.c: the writer; hosttree_copy.c: a directory input).  Not
 * for use outside lib/cvd2img/hosttree*.c.
 */
#pragma once

#include "cvd2img/hosttree.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The next component of the path *P, skipping empty and "." ones; *P moves
   past it.  Its length (0 at the end), *COMP its start.  */
size_t avm_host_next_comp (const char **p, const char **comp);

/* Does a symbolic link DEPTH levels deep (1: at the top) to TARGET stay
   inside the tree?  Relative, ".." only as leading components, and at most
   DEPTH - 1 of them.  */
bool avm_host_link_stays_inside (size_t depth, const char *target);

/* avm_host_check, with DIR: WHERE is a directory input, so messages name
   the entry "WHERE/PATH" rather than "WHERE: entry PATH" (an archive).  */
int avm_host_check_entry (struct avm_host_tally *t, const char *where, const char *path, bool dir, mode_t type,
                          uint64_t size, const char *target, const char *hardlink, avm_error_t *err);
