/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared between the files of the QEMU capabilities (caps.c: the record and
 * its JSON form; caps_parse.c: help text; caps_probe.c: running the binary;
 * caps_cache.c: the per-binary cache).  Not for use outside lib/qemu/caps*.c.
 */
#pragma once

#include "qemu/caps.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* The name lists of struct avm_qemu_caps, in the order they are written
   (recorded files and cache entries): the key and the field's offset.  */
struct avm_caps_list
{
  const char *key;
  size_t offset;
};
#define AVM_CAPS_N_LISTS 5
extern const struct avm_caps_list avm_caps_lists[AVM_CAPS_N_LISTS];
/* The field (char ***) of CAPS that avm_caps_lists[I] names.  */
#define LIST_FIELD(caps, i) ((char ***) ((char *) (caps) + avm_caps_lists[i].offset))

/* Sort the NULL-terminated V in strcmp order and drop (free) duplicates,
   in place.  */
void avm_caps_sort_unique (char **v);
/* Whether V is sorted in strcmp order without duplicates.  */
bool avm_caps_sorted_unique (char *const *v);
/* Replace *FIELD by V (the old vector is freed; V is owned by *FIELD).  */
void avm_caps_set_list (char ***field, char **v);

/* "MAJOR.MINOR[.MICRO]" with an optional non-numeric tail ("-rc1"): true
   and the numbers set (MICRO 0 when absent), or false.  */
bool avm_caps_split_version (const char *s, int *major, int *minor, int *micro);

/* 0 when BINARY is an absolute path to an executable regular file (ST its
   stat), else -errno with ERR filled.  */
int avm_caps_check_binary (const char *binary, struct stat *st, avm_error_t *err);
/* Run BINARY's help options and parse them into a new *OUT (source
   AVM_CAPS_PROBED, no source_path): 0, or -errno with ERR filled.  The
   binary is not checked (avm_caps_check_binary) and no cache is used.  */
int avm_caps_probe_binary (const char *binary, struct avm_qemu_caps **out, avm_error_t *err);
