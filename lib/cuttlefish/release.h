/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which Android release a Cuttlefish image set was built from, told by
 * what the set contains, never by a version the user types (an explicit
 * `--option release=...` still wins, in the profile loader).
 *
 * The guest decides what the launcher must provide, so the image markers
 * come first; the host package only says which helpers exist:
 *   1. manifest.json written by `avm cvd2img` (it saw the whole set);
 *   2. android-info.txt of the images (device/google/cuttlefish
 *      shared/auto/android-info.txt per branch):
 *        output_audio_streams_count=   android16
 *        vhost_user_vsock=true         android15-qpr2 (QPR1 and QPR2)
 *        gfxstream=supported           android14-qpr2 (QPR2, QPR3) or android15,
 *                                      told apart by boot.img's os_version
 *                                      (14 or 15), else by the host package
 *        none of them                  android14 (release and QPR1)
 *   3. the host package alone (its bin/ and etc/, build/Android.bp per branch):
 *        bin/sensors_simulator         android16
 *        etc/automotive/vhalconfig/    android15-qpr2
 *        bin/vhal_proxy_server         android15
 *        bin/vhost_device_vsock        android14-qpr2
 *        bin/secure_env                android14
 * Nothing of the above: no release (the profile's default applies).
 * docs: man/avm-releases.7 has the whole table with its AOSP sources.
 */
#pragma once

#include "util/error.h"

#include <stdbool.h>
#include <stddef.h>

/* The releases avm knows, oldest first.  */
extern const char *const avm_cf_releases[];

/* What a set was seen to contain.  */
struct avm_cf_facts
{
  char *android_info; /* android-info.txt, or NULL */
  int boot_os_major;  /* boot.img header os_version major (14, 15, ...), 0 when unknown */
  bool hostpkg;       /* a host package is there (bin/ or etc/) */
  bool sensors_simulator, vhalconfig, vhal_proxy_server, vhost_device_vsock, secure_env;
  char *manifest_release; /* "release" recorded in manifest.json, or NULL */
  char *manifest_evidence;
};
void avm_cf_facts_clear (struct avm_cf_facts *f);

/* The facts of an image directory (images and host package unpacked in
   it, as `avm cvd2img` leaves them or as start-avm used them).  A missing
   file is not an error; an unreadable or malformed one is.  */
int avm_cf_facts_from_dir (const char *dir, struct avm_cf_facts *f, avm_error_t *err);

/* The host package's entries that tell its release, newest first, as
   item 3 above lists them ("etc/automotive/vhalconfig/" is a directory),
   in the order of the facts' flags sensors_simulator, vhalconfig,
   vhal_proxy_server, vhost_device_vsock, secure_env.  */
#define AVM_CF_HOST_MARKERS 5
extern const char *const avm_cf_host_markers[AVM_CF_HOST_MARKERS];
/* Those F has, in that order (pointers into avm_cf_host_markers); their
   number.  */
size_t avm_cf_host_marker_list (const struct avm_cf_facts *f, const char *out[AVM_CF_HOST_MARKERS]);
/* F's host package facts (hostpkg and the markers) from the directory DFD,
   as avm_cf_facts_from_dir finds them (following links, as a program
   started from there would).  */
void avm_cf_host_facts_at (int dfd, struct avm_cf_facts *f);

/* Read the os_version major of a boot image header (the first 48 bytes
   of boot.img or init_boot.img, header versions 0 to 4); 0 when HDR is not
   a boot image or carries no version.  */
int avm_cf_boot_os_major (const unsigned char *hdr, size_t len);

struct avm_cf_release
{
  const char *release; /* one of avm_cf_releases, or NULL */
  char source[64];     /* "manifest.json", "android-info.txt", "host package" */
  char evidence[256];  /* what decided it, for the dry run and avm check */
  char warning[320];   /* e.g. the host package is older than the images; "" */
};

/* Decide from FACTS (never fails).  */
void avm_cf_release_decide (const struct avm_cf_facts *f, struct avm_cf_release *out);

/* Index of RELEASE in avm_cf_releases, or -1.  */
int avm_cf_release_index (const char *release);

#include <jansson.h>

/* The choice of the profile option "release" from F (*CHOICE malloc'd,
   NULL when nothing tells) and *INFO {"source","evidence","warning"?}.  */
int avm_cf_release_choice (const struct avm_cf_facts *f, char **choice, json_t **info, avm_error_t *err);

/* An avm_profile_detect_fn for "cuttlefish-release": the release of the
   image directory IMAGES (DATA unused).  */
int avm_cf_profile_detect (void *data, const char *detector, const char *images, char **choice, json_t **info,
                           avm_error_t *err);
