/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Snapshots of a booted platform (avm-snapshot(1)): the store, the
 * metadata, and whether a snapshot fits a plan.
 *
 * A snapshot lives in ${state_dir}/snapshots/NAME/ of its instance:
 *   snapshot.json    the metadata (below), written last
 *   state            QEMU's migration stream (RAM and device state), or
 *   state.lz4        the same compressed by lz4 (avm snapshot save --compress)
 *   ram              snapshot.fast: a copy of the guest RAM's file (holes
 *                    kept); the state then leaves the RAM out
 *   disk-DISK.qcow2  per writable disk, the guest's writes up to the save:
 *                    a qcow2 layer over the disk's image (a disk that is
 *                    written in place gets a whole copy instead)
 * It is made in a hidden directory (.NAME.new) and renamed into place, so a
 * snapshot is either whole or absent; a replaced one is swapped out
 * atomically.  A restore never writes to it: QEMU runs each disk on a fresh
 * temporary top over the layer.
 *
 * The metadata records what must not differ for the state to be loaded:
 * the QEMU binary (path, version, package, size, mtime) and the versioned
 * machine type it ran (pc-i440fx-7.2, not the alias pc); every line of the
 * QEMU command line but the disks' (the device list, in order, with its
 * options: the PCI layout, memory, CPUs, sockets); per disk its image
 * (path, format, size, mtime) and layer; the profile and options it was
 * planned from.  avm_snapshot_match names the first difference.
 */
#pragma once

#include "plan/plan.h"
#include "util/error.h"

#include <jansson.h>
#include <stdint.h>

#define AVM_SNAPSHOT_FORMAT 1
#define AVM_SNAPSHOT_META "snapshot.json"
#define AVM_SNAPSHOT_STATE "state"
#define AVM_SNAPSHOT_STATE_LZ4 "state.lz4"
#define AVM_SNAPSHOT_RAM "ram"
#define AVM_SNAPSHOT_NAME_MAX 64

/* NAME is a snapshot name: 1-64 of [A-Za-z0-9._-], starting with a letter
   or digit.  An input error (exit 2) naming it otherwise.  */
int avm_snapshot_name_check (const char *name, avm_error_t *err);

/* ${state_dir}/snapshots, its NAME, the staging directory of NAME
   (malloc'd, NULL when out of memory).  */
char *avm_snapshot_store (const char *state_dir);
char *avm_snapshot_dir (const char *state_dir, const char *name);
char *avm_snapshot_staging_dir (const char *state_dir, const char *name);
/* The file name of DISK's layer in a snapshot ("disk-system.qcow2").  */
char *avm_snapshot_layer_name (const char *disk);

/* What the plan contributes to the metadata: profile, options, instance,
   accelerator, QEMU (binary identity, version), the device lines and the
   disks' images (stat'ed now).  The saver adds name, time, machine type,
   package, layers, state size and parent.  */
int avm_snapshot_plan_facts (const struct avm_plan *plan, json_t **out, avm_error_t *err);

/* Whether META (a snapshot's metadata) fits PLAN (built with its restore
   request): 0, or -ESTALE with the first difference named ("snapshot boot
   was saved with QEMU 7.2.21; this plan runs 7.2.22: save it again").  */
int avm_snapshot_match (json_t *meta, const struct avm_plan *plan, avm_error_t *err);

/* Read snapshot NAME of the instance whose state directory is STATE_DIR:
   its metadata, checked for form and for its files (the state's size, the
   layers present).  -ENOENT (exit 1) naming the snapshots there when it
   does not exist.  */
int avm_snapshot_load (const char *state_dir, const char *name, json_t **meta, avm_error_t *err);

/* The restore request of META (loaded from DIR): layers point into DIR;
   strings borrowed from META and *PATHS (free with avm_strv_free).  */
int avm_snapshot_restore_request (json_t *meta, const char *dir, struct avm_plan_restore *rs,
                                  struct avm_plan_layer **layers, char ***paths, avm_error_t *err);

/* Every snapshot of the instance, oldest first: an array of their
   metadata objects; an unreadable one is listed as {"name", "error"}.  */
int avm_snapshot_list (const char *state_dir, json_t **out, avm_error_t *err);

/* Remove snapshot NAME (every snapshot stands alone: a save of a restored
   platform copies the layers it runs on).  Renamed away first, then
   removed, so a crash leaves no half snapshot under the name.  */
int avm_snapshot_delete (const char *state_dir, const char *name, avm_error_t *err);

/* Remove a directory tree of the store (a staging or deleted snapshot):
   regular files and one level of directories only.  */
int avm_snapshot_remove_tree (const char *dir, avm_error_t *err);

/* Put STAGING in place as snapshot NAME: renamed, or exchanged with an
   existing one (REPLACE; else -EEXIST), which is then removed.  */
int avm_snapshot_commit (const char *state_dir, const char *name, const char *staging, bool replace, avm_error_t *err);
