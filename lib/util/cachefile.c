/* SPDX-License-Identifier: Apache-2.0 */
#include "util/cachefile.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static uint64_t
fnv1a64 (const char *s)
{
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++)
    {
      h ^= (unsigned char) *s;
      h *= 0x100000001b3ULL;
    }
  return h;
}

char *
avm_cache_file (const char *kind, const char *program, const char *ext)
{
  _cleanup_free_ char *home = avm_xdg_dir ("XDG_CACHE_HOME", ".cache"), *rel = NULL;
  const char *base = strrchr (program, '/');
  char name[65];
  size_t n = 0;

  if (!home)
    return NULL;
  base = base ? base + 1 : program;
  for (; n < sizeof name - 1 && base[n]; n++)
    {
      char c = base[n];
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'
                || c == '.';
      name[n] = ok ? c : '_';
    }
  name[n] = '\0';
  if (n == 0 || streq (name, ".") || streq (name, ".."))
    snprintf (name, sizeof name, "%s", kind);
  if (asprintf (&rel, "avm/%s/%s-%016llx.%s", kind, name, (unsigned long long) fnv1a64 (program), ext) < 0)
    return NULL;
  return avm_path_join (home, rel);
}

int
avm_file_identity (const char *path, char *buf, size_t size)
{
  struct stat st;
  if (stat (path, &st) < 0)
    return -errno;
  int n = snprintf (buf, size, "%s %llu %llu %lld %lld %lld", path, (unsigned long long) st.st_dev,
                    (unsigned long long) st.st_ino, (long long) st.st_size,
                    (long long) st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                    (long long) st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec);
  return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}
