/* SPDX-License-Identifier: Apache-2.0 */
/*
 * start-avm compatibility: slp/start-avm's start_avm.sh interface mapped
 * onto `avm start` with the aaos-<arch> profile.  Every flag becomes one of
 * the profile's own knobs (an --option choice or a --set override), so the
 * command line stays the approved, allowlist-generated one:
 *
 *   -r           network=tap (tap cvd-mtap-01 and the real config_server)
 *   -u           vsock=vhost-user
 *   -v           gpu=virgl (with -q: DIR/contrib/vhost-user-gpu/vhost-user-gpu)
 *   --mt         touch=multitouch
 *   --video      video=on
 *   --rotary     rotary=on
 *   -m PHONE     mode=phone (AUTO is the default)
 *   -q DIR       qemu.binary=DIR/qemu-system-ARCH; ARCH is the host's unless
 *                DIR only has the other one
 *   CVD_DIR      --images CVD_DIR; when CVD_DIR/qemu is a directory (the
 *                start-avm layout, cvd2img run there), the profile's disks
 *                and bootloader under ${images} are taken from it, the
 *                bootloader falling back to etc/bootloader_ARCH/bootloader.qemu
 *                and the signing key to the host package's test key.
 */
#pragma once

#include "util/error.h"
#include "util/strv.h"

#include <stdbool.h>

struct avm_startavm
{
  bool tap_network;      /* -r */
  bool vhost_user_vsock; /* -u */
  bool virgl;            /* -v */
  bool multitouch;       /* --mt */
  bool video;            /* --video */
  bool rotary;           /* --rotary */
  bool phone;            /* -m PHONE (default AUTO) */
  const char *qemu_dir;  /* -q DIR, or NULL */
  const char *cvd_dir;   /* the Cuttlefish directory */
};

/* -m/--mode ARG: PHONE or AUTO in any letter case (start_avm.sh upper-cases
   it).  Bad input otherwise.  */
int avm_startavm_parse_mode (const char *arg, bool *phone, avm_error_t *err);

/* The equivalent `avm start` request.  */
struct avm_startavm_start
{
  char *profile;           /* aaos-x86_64 or aaos-arm64 */
  char *arch;              /* x86_64 or aarch64 */
  char *images;            /* --images: the Cuttlefish directory, absolute */
  struct avm_argv options; /* NAME=CHOICE */
  struct avm_argv sets;    /* PATH=VALUE */
};

/* Translate O.  Bad input (exit code 2) when the Cuttlefish directory or
   -q DIR is not a directory, or DIR has no qemu-system-x86_64 or
   qemu-system-aarch64.  */
int avm_startavm_translate (const struct avm_startavm *o, struct avm_startavm_start *out, avm_error_t *err);
void avm_startavm_start_clear (struct avm_startavm_start *s);
