/* SPDX-License-Identifier: Apache-2.0 */
#include "util/suggest.h"

#include <ctype.h>
#include <string.h>

static size_t
edit_distance (const char *a, const char *b)
{
  size_t la = strlen (a), lb = strlen (b);
  if (la > 64 || lb > 64)
    return 99;
  size_t d[65];
  for (size_t j = 0; j <= lb; j++)
    d[j] = j;
  for (size_t i = 1; i <= la; i++)
    {
      size_t prev = d[0];
      d[0] = i;
      for (size_t j = 1; j <= lb; j++)
        {
          size_t cur = d[j];
          size_t best = prev + (tolower ((unsigned char) a[i - 1]) != tolower ((unsigned char) b[j - 1]));
          if (d[j] + 1 < best)
            best = d[j] + 1;
          if (d[j - 1] + 1 < best)
            best = d[j - 1] + 1;
          d[j] = best;
          prev = cur;
        }
    }
  return d[lb];
}

const char *
avm_closest (const char *word, const char *const *cands, size_t n)
{
  const char *best = NULL;
  size_t bestd = (size_t) -1, limit = strlen (word) / 3 + 1;
  for (size_t i = 0; i < n; i++)
    {
      size_t d = edit_distance (word, cands[i]);
      if (d < bestd)
        {
          bestd = d;
          best = cands[i];
        }
    }
  return bestd <= limit ? best : NULL;
}
