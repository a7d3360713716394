/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QEMU capabilities: which devices, display backends, machine types,
 * accelerators and audio drivers a QEMU binary has, and its version.
 *
 * Probing runs the binary's help options (-version, -device help,
 * -display help, -machine help, -accel help, -audiodev help) concurrently,
 * never through a shell.  The answer is cached per binary under
 * $XDG_CACHE_HOME/avm/qemu-caps/ (default ~/.cache/avm/qemu-caps/), keyed on
 * the binary's path and identity (device, inode, size, mtime, ctime) and the
 * mtime of QEMU's module directory (display and audio back ends are modules);
 * a changed binary is probed again.  A recorded capability file (--caps FILE)
 * is JSON; a cache entry holds the same in a line format of avm's own, read
 * on every start without a JSON parser.  The recorded format is described in
 * caps.c, the cache entries and their file naming in caps_cache.c.
 */
#pragma once

#include "util/cleanup.h"
#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>

#define AVM_CAPS_FORMAT 1
/* A capabilities file (--caps) or cache entry is read only up to this size
   (a recorded one is about 12 KiB).  */
#define AVM_CAPS_MAX_SIZE (4u << 20)

enum avm_caps_source
{
  AVM_CAPS_PROBED,   /* probed just now (and written to the cache) */
  AVM_CAPS_CACHED,   /* read from the cache */
  AVM_CAPS_RECORDED, /* read from a recorded file (--caps) */
};

struct avm_qemu_caps
{
  char *binary;  /* absolute path probed, or as recorded */
  char *version; /* "7.2.22" */
  int major, minor, micro;
  char *package;    /* text in parentheses after the version, e.g. "Debian 1:7.2+dfsg-7+deb12u18+b3", or NULL */
  char **devices;   /* sorted, NULL-terminated: "virtio-gpu-pci", ... */
  char **displays;  /* "none", "gtk", "dbus", "egl-headless", ... */
  char **machines;  /* "pc", "pc-i440fx-7.2", "q35", "virt", ... (aliases included) */
  char **accels;    /* "tcg", "kvm" */
  char **audiodevs; /* "none", "alsa", "pa", "pipewire", ... */
  enum avm_caps_source source;
  char *source_path; /* cache file or recorded file, NULL when probed without cache */
};

/* Capabilities of BINARY (absolute path): from the cache when it is valid
   for the binary as it is now, else probed and cached.  A cache that cannot
   be written is not an error.  */
int avm_qemu_caps_get (const char *binary, struct avm_qemu_caps **out, avm_error_t *err);

/* Probe without looking at or writing the cache.  */
int avm_qemu_caps_probe (const char *binary, struct avm_qemu_caps **out, avm_error_t *err);

/* Read a recorded capability file (same format as the cache).  */
int avm_qemu_caps_load_file (const char *path, struct avm_qemu_caps **out, avm_error_t *err);

/* Serialise (cache/recorded format, without identity keys).  */
json_t *avm_qemu_caps_to_json (const struct avm_qemu_caps *caps);
/* The same as text, exactly as a recorded file is written (pretty-printed,
   trailing newline); malloc'd, NULL when out of memory.  */
char *avm_qemu_caps_dump (const struct avm_qemu_caps *caps);

/* Parsers for each help text (exposed for tests and recording).  They
   replace the corresponding field of CAPS.  */
int avm_qemu_caps_parse_version (struct avm_qemu_caps *caps, const char *text, avm_error_t *err);
int avm_qemu_caps_parse_devices (struct avm_qemu_caps *caps, const char *text, avm_error_t *err);
int avm_qemu_caps_parse_displays (struct avm_qemu_caps *caps, const char *text, avm_error_t *err);
int avm_qemu_caps_parse_machines (struct avm_qemu_caps *caps, const char *text, avm_error_t *err);
int avm_qemu_caps_parse_accels (struct avm_qemu_caps *caps, const char *text, avm_error_t *err);
int avm_qemu_caps_parse_audiodevs (struct avm_qemu_caps *caps, const char *text, avm_error_t *err);

bool avm_qemu_caps_has_device (const struct avm_qemu_caps *caps, const char *name);
bool avm_qemu_caps_has_display (const struct avm_qemu_caps *caps, const char *name);
bool avm_qemu_caps_has_machine (const struct avm_qemu_caps *caps, const char *name);
bool avm_qemu_caps_has_accel (const struct avm_qemu_caps *caps, const char *name);
bool avm_qemu_caps_has_audiodev (const struct avm_qemu_caps *caps, const char *name);
/* version >= major.minor */
bool avm_qemu_caps_at_least (const struct avm_qemu_caps *caps, int major, int minor);

/* Cache file path for BINARY (malloc'd).  */
char *avm_qemu_caps_cache_path (const char *binary);

void avm_qemu_caps_free (struct avm_qemu_caps *caps);
DEFINE_TRIVIAL_CLEANUP_FUNC (struct avm_qemu_caps *, avm_qemu_caps_free)
#define _cleanup_caps_ __attribute__ ((cleanup (avm_qemu_caps_freep)))
