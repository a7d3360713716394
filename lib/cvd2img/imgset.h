/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Cuttlefish image set: an unpacked directory (images at the top, the host
 * package's etc/ beside them, as start-avm expects), or the two files users
 * download -- the image zip (aosp_cf_<arch>_*-img-<build>.zip) and the host
 * package tarball (cvd-host_package.tar.gz) -- read with libarchive without
 * unpacking them.  Nothing of the input is ever modified.
 *
 * Archives are checked for hostile entries before anything is used: an
 * absolute path or a ".." component is an error that names the archive and
 * the entry, and so is any link in the image zip; the host package, which
 * becomes a tree in the output directory, is held to the policy of
 * cvd2img/hosttree.h (links inside the package are part of it).
 */
#pragma once

#include "disk/output.h"
#include "util/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct avm_img
{
  const char *name; /* "super.img" */
  bool present;
  bool sparse;
  uint64_t size;        /* expanded size in bytes */
  uint64_t stored_size; /* bytes in the file or archive entry */
  /* Its first bytes, head_len of them: a boot image's header, and far
     enough for a raw super image's geometry (at 4096).  */
  unsigned char head[4104];
  size_t head_len;
};

struct avm_imgset;

/* Open a directory (ZIP and HOSTPKG NULL) or an image zip plus a host
   package.  WANTED lists the image names whose size must be known
   ("boot.img", ...), NULL-terminated.  */
int avm_imgset_open (const char *dir, const char *zip, const char *hostpkg, char *const *wanted,
                     struct avm_imgset **out, avm_error_t *err);
void avm_imgset_free (struct avm_imgset *s);

/* How messages name image NAME: "DIR/super.img", "IMG.zip:super.img"
   (malloc'd; NULL when out of memory).  */
char *avm_imgset_image_label (const struct avm_imgset *s, const char *name);

/* Information about image NAME (NULL if not among WANTED).  */
const struct avm_img *avm_imgset_get (const struct avm_imgset *s, const char *name);

/* Write image NAME (expanded if sparse) into O at OFF; LIMIT is the room
   (partition size).  */
int avm_imgset_copy (struct avm_imgset *s, const char *name, struct avm_out *o, uint64_t off, uint64_t limit,
                     avm_error_t *err);

/* Can the size of image NAME be believed?  A raw image's always; a
   sparse image's when its chunks cover what its header says
   (avm_sparse_check: every chunk header read, the data skipped, which
   for an archive entry means decompressing it).  0, or a bad input error
   naming the image ("img.zip:super.img: offset ...").  For a conversion
   that failed because of an image's size, to tell a damaged image from a
   real one too large for the output.  */
int avm_imgset_check_size (struct avm_imgset *s, const char *name, avm_error_t *err);

/* A small file of the host package ("etc/cvd_avb_testkey_rsa4096.pem"), read
   whole (at most 64 MiB).  -ENOENT when absent (no message).  */
int avm_imgset_host_file (struct avm_imgset *s, const char *path, uint8_t **data, size_t *len, avm_error_t *err);

/* What the set says about its Android release (cuttlefish/release.h):
   android-info.txt, the boot image's header, the host package's markers.  */
struct avm_cf_facts;
int avm_imgset_cf_facts (const struct avm_imgset *s, struct avm_cf_facts *f, avm_error_t *err);

/* The host package as a tree (cvd2img/hosttree.h).  For a directory input,
   avm_imgset_host_scan walks and checks its host package first (the
   tarball is checked when the set is opened), leaving out OUT_DIR when it
   is inside the input; the entries at its top (NULL-terminated, empty when
   not scanned), the bytes of its files, its number of entries.  */
int avm_imgset_host_scan (struct avm_imgset *s, const char *out_dir, avm_error_t *err);
char *const *avm_imgset_host_entries (const struct avm_imgset *s);
uint64_t avm_imgset_host_bytes (const struct avm_imgset *s);
size_t avm_imgset_host_count (const struct avm_imgset *s);
/* Write the host package's tree into the empty directory ROOT: the
   tarball extracted, a directory input's host package copied; every entry
   checked again as it is written; FN (may be NULL) gets the bytes.  */
int avm_imgset_host_write (struct avm_imgset *s, int root, avm_progress_fn fn, void *data, avm_error_t *err);
/* The images' android-info.txt, or NULL.  */
const char *avm_imgset_android_info (const struct avm_imgset *s);

/* "DIR" or "IMG.zip" for messages.  */
const char *avm_imgset_label (const struct avm_imgset *s);
/* The architecture the host package's bootloader is for (x86_64/aarch64), or NULL.  */
const char *avm_imgset_bootloader_arch (const struct avm_imgset *s);
