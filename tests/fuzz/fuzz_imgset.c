/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Archive input: the input is an image zip and a host package tarball
 * separated by the line "--avm-fuzz-split--\n" (without it, both files get
 * the whole input), opened with avm_imgset_open as cvd2img does; every
 * image found is then copied (expanded when sparse) into a discarded
 * output of 8 MiB, the host files are read, and the host package is
 * extracted into a tree output (cvd2img/hosttree.h), which must stay inside
 * its temporary directory, then aborted.
 */
#include "fuzz.h"
#include "cvd2img/imgset.h"
#include "disk/output.h"
#include "util/cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>

#define SPLIT "--avm-fuzz-split--\n"
#define LIMIT (8u << 20)

static char *const wanted[] = { "boot.img", "super.img", "vbmeta.img", "userdata.img", NULL };
static const char *const host_paths[]
    = { "etc/cvd_avb_testkey_rsa4096.pem", "etc/cvd.avbpubkey", "etc/bootloader_x86_64/bootloader.qemu", "etc/none" };

AVM_FUZZ_TARGET (imgset)
{
  const uint8_t *sep = memmem (data, size, SPLIT, strlen (SPLIT));
  size_t zlen = sep ? (size_t) (sep - data) : size;
  const uint8_t *tar = sep ? sep + strlen (SPLIT) : data;
  size_t tlen = sep ? size - zlen - strlen (SPLIT) : size;
  _cleanup_free_ char *zip = avm_fuzz_write ("img.zip", data, zlen);
  _cleanup_free_ char *hostpkg = avm_fuzz_write ("host.tar.gz", tar, tlen);
  static char *outpath;
  if (!outpath && asprintf (&outpath, "%s/out.img", avm_fuzz_tmpdir ()) < 0)
    abort ();

  _cleanup_error_ avm_error_t err = NULL;
  struct avm_imgset *s = NULL;
  int r = avm_imgset_open (NULL, zip, hostpkg, wanted, &s, &err);
  avm_fuzz_check_err (r, &err);
  if (r < 0)
    return 0;

  for (size_t i = 0; wanted[i]; i++)
    {
      const struct avm_img *img = avm_imgset_get (s, wanted[i]);
      AVM_FUZZ_CHECK (img);
      if (!img->present)
        continue;
      _cleanup_out_ struct avm_out *o = NULL;
      r = avm_out_open (outpath, LIMIT, &o, &err);
      AVM_FUZZ_CHECK (r == 0);
      r = avm_imgset_copy (s, wanted[i], o, 0, LIMIT, &err);
      avm_fuzz_check_err (r, &err);
    }
  for (size_t i = 0; i < sizeof host_paths / sizeof *host_paths; i++)
    {
      uint8_t *buf = NULL;
      size_t len = 0;
      r = avm_imgset_host_file (s, host_paths[i], &buf, &len, &err);
      if (r == -ENOENT)
        AVM_FUZZ_CHECK (!err);
      else
        avm_fuzz_check_err (r, &err);
      free (buf);
    }
  (void) avm_imgset_bootloader_arch (s);

  /* The tree: whatever the archive holds, nothing lands outside the
     temporary, which the abort removes whole.  */
  struct avm_out *t = NULL;
  r = avm_out_open_tree (avm_fuzz_tmpdir (), "host", &t, &err);
  AVM_FUZZ_CHECK (r == 0);
  r = avm_imgset_host_write (s, avm_out_tree_fd (t), NULL, NULL, &err);
  avm_fuzz_check_err (r, &err);
  avm_out_abort (t);
  DIR *d = opendir (avm_fuzz_tmpdir ());
  AVM_FUZZ_CHECK (d);
  for (struct dirent *e; (e = readdir (d));)
    AVM_FUZZ_CHECK (!strcmp (e->d_name, ".") || !strcmp (e->d_name, "..") || !strcmp (e->d_name, "img.zip")
                    || !strcmp (e->d_name, "host.tar.gz") || !strcmp (e->d_name, "out.img"));
  closedir (d);
  avm_imgset_free (s);
  return 0;
}
