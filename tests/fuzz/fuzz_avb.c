/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AVB readers of `avm inspect`: the input is verified both as a bare
 * vbmeta image and as a partition with a hash footer.  The strings of the
 * report must be NUL-terminated printable ASCII.
 */
#include "fuzz.h"
#include "disk/avb.h"
#include "util/cleanup.h"

#include <string.h>

static void
check_name (const char *s, size_t max)
{
  const char *end = memchr (s, '\0', max);
  AVM_FUZZ_CHECK (end);
  for (; s < end; s++)
    AVM_FUZZ_CHECK (*s >= 0x20 && *s < 0x7f);
}

static void
check_info (const struct avm_avb_info *info)
{
  check_name (info->partition, sizeof info->partition);
  AVM_FUZZ_CHECK (info->n_chains <= 8 && info->n_chains <= info->n_chains_total);
  for (size_t i = 0; i < info->n_chains; i++)
    check_name (info->chains[i].partition, sizeof info->chains[i].partition);
}

AVM_FUZZ_TARGET (avb)
{
  /* An exact-size heap copy: ASan then sees any read past the end.  */
  _cleanup_free_ uint8_t *buf = malloc (size ? size : 1);
  AVM_FUZZ_CHECK (buf);
  memcpy (buf, data, size);

  _cleanup_error_ avm_error_t err = NULL;
  struct avm_avb_info info;
  memset (&info, 0, sizeof info);
  int r = avm_avb_verify_vbmeta (buf, size, "vbmeta.img", &info, &err);
  if (r == 0)
    check_info (&info);
  avm_fuzz_check_err (r, &err);

  memset (&info, 0, sizeof info);
  r = avm_avb_verify_footer (buf, size, "boot.img", &info, &err);
  if (r == 0)
    check_info (&info);
  avm_fuzz_check_err (r, &err);
  return 0;
}
