/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the files of the image set (imgset.c: opening and scanning;
 * imgset_read.c: an image's bytes; imgset_host.c: the host package's
 * tree).  Not for use outside lib/cvd2img/imgset*.c.
 */
#pragma once

#include "cuttlefish/release.h"
#include "cvd2img/hosttree.h"
#include "cvd2img/imgset.h"
#include "util/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define MAX_IMAGES 32
/* The host package files avm may need (host_files in imgset.c).  */
#define AVM_IMGSET_HOST_FILES 6

/* A host package file kept in memory when read from the tarball.  */
struct avm_imgset_blob
{
  uint8_t *data;
  size_t len;
  bool present;
};

struct avm_imgset
{
  char *dir, *zip, *hostpkg;
  char *android_info;                /* android-info.txt of the images, or NULL */
  bool markers[AVM_CF_HOST_MARKERS]; /* avm_cf_host_markers */
  bool host_seen;                    /* the host package had any entry */
  struct avm_img imgs[MAX_IMAGES];
  char *names[MAX_IMAGES];
  size_t n;
  struct avm_imgset_blob host[AVM_IMGSET_HOST_FILES];
  /* The host package's tree (cvd2img/hosttree.h): counted by scan_hostpkg, or
     by avm_imgset_host_scan for a directory, which leaves out the output
     directory (SKIP_DEV, SKIP_INO) when it is inside.  */
  struct avm_host_tally tally;
  bool tally_done;
  dev_t skip_dev;
  ino_t skip_ino;
};

struct archive;
struct archive_entry;

/* The archive_read_data of CTX (a struct archive *) as an avm_stream read:
   bytes read, or -EIO.  */
ssize_t avm_imgset_archive_stream_read (void *ctx, void *buf, size_t len);

/* An entry name as users see it: "./etc/x" is "etc/x" (points into P).  */
const char *avm_imgset_clean_name (const char *p);

/* The archive PATH (ZIP: the image zip, else the host package tarball)
   opened for reading into *OUT, read from *FD (a regular file: a FIFO or a
   device is refused, never waited on); the caller closes *FD after
   archive_read_free (*OUT).  0 or -errno with ERR filled.  */
int avm_imgset_open_archive (const char *path, bool zip, struct archive **out, int *fd, avm_error_t *err);

/* An image of a directory input opened: a regular file, not a link.  0 or
   -errno with ERR filled.  */
int avm_imgset_open_image_file (const char *path, int *fd, struct stat *st, avm_error_t *err);

/* The next entry of archive A (named ARCHIVE) into *E, checked (an image zip
   entry: a regular file or directory by a relative name without ".."; with
   T, a host package entry held to cvd2img/hosttree.h's policy and
   counted): 1, 0 at the end, or -errno with ERR filled.  */
int avm_imgset_next_entry (struct archive *a, const char *archive, struct archive_entry **e, struct avm_host_tally *t,
                           avm_error_t *err);
