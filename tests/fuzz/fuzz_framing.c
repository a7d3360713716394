/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control socket's line framing (util/linebuf.c, used by the server for
 * requests and by the client for its reply), differentially: the input is
 * fed in chunks whose sizes come from its first bytes, as reads of any size
 * would deliver it, and the lines the buffer yields, and where it refuses a
 * line as too long, must be exactly what one plain pass over the whole
 * input finds.  The first byte also picks the line limit: a small one, so
 * that the limit is reached, or the server's AVM_CONTROL_MAX_LINE.
 *
 * Input: [limit byte] [chunk seed byte] stream...
 */
#include "fuzz.h"
#include "supervise/control.h"
#include "util/linebuf.h"

#include <errno.h>
#include <string.h>

/* The reference: line I of DATA (start and length, terminator removed) and
   whether it is refused; returns false at the end of the complete lines,
   with *REFUSED telling whether the incomplete rest is already too long.  */
static bool
reference_line (const uint8_t *data, size_t size, size_t *off, size_t max, size_t *start, size_t *len, bool *refused)
{
  const uint8_t *nl = memchr (data + *off, '\n', size - *off);
  if (!nl)
    {
      *refused = size - *off > max + 1;
      return false;
    }
  *start = *off;
  *len = (size_t) (nl - data) - *off;
  *off += *len + 1;
  if (*len > 0 && data[*start + *len - 1] == '\r')
    (*len)--;
  *refused = *len > max;
  return true;
}

AVM_FUZZ_TARGET (framing)
{
  if (size < 2)
    return 0;
  size_t max = data[0] == 0xff ? AVM_CONTROL_MAX_LINE : 1 + data[0] % 64;
  uint32_t seed = data[1] | 0x100u;
  data += 2;
  size -= 2;

  struct avm_linebuf lb = AVM_LINEBUF_INIT (max);
  size_t fed = 0, ref_off = 0;
  bool done = false;
  while (!done)
    {
      /* Drain what is complete; compare each line with the reference.  */
      for (;;)
        {
          const char *line;
          size_t len, rstart = 0, rlen = 0;
          bool refused;
          int r = avm_linebuf_next (&lb, &line, &len);
          if (r == 0)
            break;
          bool more = reference_line (data, size, &ref_off, max, &rstart, &rlen, &refused);
          if (r < 0)
            {
              /* Refused: the reference refuses the same line (complete, or
                 the incomplete rest once enough of it is pending).  */
              AVM_FUZZ_CHECK (r == -EMSGSIZE);
              AVM_FUZZ_CHECK (refused);
              done = true;
              break;
            }
          AVM_FUZZ_CHECK (more && !refused);
          AVM_FUZZ_CHECK (len == rlen && memcmp (line, data + rstart, len) == 0);
        }
      if (done)
        break;
      if (fed == size)
        {
          /* End of input: no complete line left, and the rest is short
             enough that it was never refused.  */
          size_t s, l;
          bool refused;
          AVM_FUZZ_CHECK (!reference_line (data, size, &ref_off, max, &s, &l, &refused));
          AVM_FUZZ_CHECK (!refused);
          AVM_FUZZ_CHECK (avm_linebuf_pending (&lb) == size - ref_off);
          break;
        }
      /* Next chunk: 1 to 256 bytes, or the rest.  */
      seed = seed * 1103515245u + 12345u;
      size_t chunk = (seed >> 16) % 8 == 0 ? size - fed : 1 + (seed >> 8) % 256;
      if (chunk > size - fed)
        chunk = size - fed;
      AVM_FUZZ_CHECK (avm_linebuf_append (&lb, data + fed, chunk) == 0);
      fed += chunk;
    }
  avm_linebuf_free (&lb);
  return 0;
}
