/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The GPT reader of `avm inspect`: the input is a disk image, read through
 * a memfd with avm_gpt_read; every partition found must lie inside the
 * disk, within the usable LBAs, and be found again by name.
 */
#include "fuzz.h"
#include "disk/gpt.h"
#include "util/cleanup.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

AVM_FUZZ_TARGET (gpt)
{
  _cleanup_close_ int fd = memfd_create ("fuzz-gpt", MFD_CLOEXEC);
  AVM_FUZZ_CHECK (fd >= 0);
  AVM_FUZZ_CHECK (write (fd, data, size) == (ssize_t) size);

  _cleanup_error_ avm_error_t err = NULL;
  static struct avm_gpt g;
  int r = avm_gpt_read (fd, size, "fuzz.img", &g, &err);
  avm_fuzz_check_err (r, &err);
  if (r < 0)
    return 0;
  AVM_FUZZ_CHECK (g.n <= AVM_GPT_MAX_PARTS);
  for (size_t i = 0; i < g.n; i++)
    {
      const struct avm_gpt_part *p = &g.parts[i];
      AVM_FUZZ_CHECK (memchr (p->name, '\0', sizeof p->name));
      AVM_FUZZ_CHECK (p->first_lba <= p->last_lba);
      AVM_FUZZ_CHECK (p->first_lba >= g.first_usable_lba && p->last_lba <= g.last_usable_lba);
      AVM_FUZZ_CHECK (p->offset + p->size <= size);
      AVM_FUZZ_CHECK (avm_gpt_find (&g, p->name));
      char guid[37];
      avm_guid_format (p->unique_guid, guid);
    }
  return 0;
}
