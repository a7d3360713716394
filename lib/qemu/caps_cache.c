/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QEMU capabilities: the per-binary cache (avm_qemu_caps_get).  A cache
 * entry is the record of caps.c in a line format of avm's own (see
 * cache_text below) with the binary's identity.
 *
 * identity (of a cache entry): {"path", "dev", "ino", "size", "mtime_ns",
 * "ctime_ns"} of the binary as stat(2) sees it (symbolic links followed),
 * plus "moddirs": [{"path", "mtime_ns"}, ...], the existing directories QEMU
 * loads modules from (see moddirs_json).  Display and audio back ends and
 * several devices (virtio-gpu-pci, qxl, usb-host) are loadable modules, so
 * installing or removing e.g. qemu-system-gui changes the answer without
 * touching the binary; it changes the directory's mtime.  A cache entry is
 * used only when its format, binary and identity equal exactly what the
 * binary and its module directories look like now.
 *
 * Cache file name: $XDG_CACHE_HOME/avm/qemu-caps/<base>-<hash>.caps, <base>
 * the binary's file name (characters outside [A-Za-z0-9._-] replaced by
 * '_', at most 64 of them) for humans, <hash> the 64-bit FNV-1a hash of the
 * whole absolute path as 16 hex digits, so that distinct binaries do not
 * share a file.  A (practically impossible) hash collision would only cause
 * re-probes: the identity holds the full path.
 */
#include "qemu/caps.h"
#include "qemu/caps_internal.h"
#include "util/strbuf.h"
#include "util/cachefile.h"
#include "util/cleanup.h"
#include "util/analyzer.h"
#include "util/fs.h"
#include "util/strv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Cache.  */

char *
avm_qemu_caps_cache_path (const char *binary)
{
  return avm_cache_file ("qemu-caps", binary, "caps");
}

static long long
ns (struct timespec ts)
{
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#if defined(__x86_64__)
#define MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#elif defined(__i386__)
#define MULTIARCH "i386-linux-gnu"
#elif defined(__arm__)
#define MULTIARCH "arm-linux-gnueabihf"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MULTIARCH "powerpc64le-linux-gnu"
#elif defined(__riscv) && __riscv_xlen == 64
#define MULTIARCH "riscv64-linux-gnu"
#elif defined(__s390x__)
#define MULTIARCH "s390x-linux-gnu"
#endif

/* Append {"path", "mtime_ns"} of DIR to MODDIRS when DIR is a directory.  */
static int
add_moddir (json_t *moddirs, const char *dir)
{
  struct stat st;
  json_t *o;

  if (stat (dir, &st) < 0 || !S_ISDIR (st.st_mode))
    return 0;
  o = json_pack ("{s:s, s:I}", "path", dir, "mtime_ns", (json_int_t) ns (st.st_mtim));
  return json_array_append_new (moddirs, o);
}

/* The directories QEMU loads BINARY's modules from, as QEMU finds them:
   $QEMU_MODULE_DIR, then the configured module directory relocated next to
   the executable (symbolic links resolved): for PREFIX/bin/qemu-system-*,
   PREFIX/lib/<multiarch>/qemu (Debian, Ubuntu), PREFIX/lib64/qemu or
   PREFIX/lib/qemu (upstream defaults), the first that exists.  */
static json_t *
moddirs_json (const char *binary)
{
  static const char *const subs[] = {
#ifdef MULTIARCH
    "/lib/" MULTIARCH "/qemu",
#endif
    "/lib64/qemu",
    "/lib/qemu",
  };
  const char *env = getenv ("QEMU_MODULE_DIR");
  _cleanup_free_ char *real = realpath (binary, NULL);
  json_t *moddirs = json_array ();
  int r = 0;

  if (!moddirs)
    return NULL;
  if (env && *env)
    r |= add_moddir (moddirs, env);
  /* PREFIX, the parent of the executable's directory ("" for "/").  */
  char *slash = real ? strrchr (real, '/') : NULL;
  if (slash)
    {
      *slash = '\0';
      slash = strrchr (real, '/');
      if (slash)
        *slash = '\0';
      for (size_t i = 0; i < ARRAY_SIZE (subs); i++)
        {
          _cleanup_free_ char *cand = NULL;
          size_t n = json_array_size (moddirs);
          if (asprintf (&cand, "%s%s", real, subs[i]) < 0)
            {
              r = -1;
              break;
            }
          r |= add_moddir (moddirs, cand);
          if (json_array_size (moddirs) > n)
            break;
        }
    }
  if (r)
    {
      json_decref (moddirs);
      return NULL;
    }
  return moddirs;
}

static json_t *
identity_json (const char *binary, const struct stat *st)
{
  json_t *moddirs = moddirs_json (binary);

  if (!moddirs)
    return NULL;
  return json_pack ("{s:s, s:I, s:I, s:I, s:I, s:I, s:o}", "path", binary, "dev", (json_int_t) st->st_dev, "ino",
                    (json_int_t) st->st_ino, "size", (json_int_t) st->st_size, "mtime_ns",
                    (json_int_t) ns (st->st_mtim), "ctime_ns", (json_int_t) ns (st->st_ctim), "moddirs", moddirs);
}

/* Cache entries: a line format of avm's own, not JSON.  A start reads its
   entry every time, and jansson took about half of a dry run's
   instructions for the 11 KiB of a QEMU's capabilities; this is split in
   one pass.  Hand-written because it is private to avm (no other program
   reads it) and trivial:

     avm-qemu-caps-cache 1
     identity {"ctime_ns":...}      the identity, compact JSON, sorted keys
     binary /usr/bin/qemu-system-x86_64
     version 7.2.22
     package Debian 1:7.2+dfsg-7+deb12u18+b3   ("package" alone: none)
     devices 612                    then that many lines, one name each
     ...                            displays, machines, accels, audiodevs
     end

   Names are sorted and unique.  Anything else (a line too many or too few,
   a count that does not match, unsorted names, another identity) makes the
   entry invalid: the binary is probed again.  */
#define CACHE_MAGIC "avm-qemu-caps-cache 1"

static char *
identity_text (json_t *identity)
{
  return identity ? json_dumps (identity, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

static char *
cache_text (const struct avm_qemu_caps *caps, const char *identity)
{
  _cleanup_strbuf_ struct avm_strbuf b = { 0 };
  const char *fields[] = { caps->binary, caps->version, caps->package, identity };
  for (size_t i = 0; i < ARRAY_SIZE (fields); i++)
    if (fields[i] && strchr (fields[i], '\n'))
      return NULL; /* not representable: not cached */
  avm_strbuf_adds (&b, CACHE_MAGIC "\nidentity ");
  avm_strbuf_adds (&b, identity);
  avm_strbuf_adds (&b, "\nbinary ");
  avm_strbuf_adds (&b, caps->binary);
  avm_strbuf_adds (&b, "\nversion ");
  avm_strbuf_adds (&b, caps->version);
  avm_strbuf_adds (&b, caps->package ? "\npackage " : "\npackage");
  if (caps->package)
    avm_strbuf_adds (&b, caps->package);
  avm_strbuf_adds (&b, "\n");
  for (size_t i = 0; i < ARRAY_SIZE (avm_caps_lists); i++)
    {
      char **v = *LIST_FIELD (caps, i);
      char count[32];
      snprintf (count, sizeof count, " %zu\n", avm_strv_length (v));
      avm_strbuf_adds (&b, avm_caps_lists[i].key);
      avm_strbuf_adds (&b, count);
      for (size_t j = 0; v && v[j]; j++)
        {
          avm_strbuf_adds (&b, v[j]);
          avm_strbuf_adds (&b, "\n");
        }
    }
  avm_strbuf_adds (&b, "end\n");
  return avm_strbuf_steal (&b);
}

/* The next line of *POS (terminated in place), or NULL at the end.  */
static char *
cache_line (char **pos)
{
  char *line = *pos, *nl = line ? strchr (line, '\n') : NULL;
  if (!nl)
    return NULL;
  *nl = '\0';
  *pos = nl + 1;
  return line;
}

/* The value of "KEY value" (or "" for a line that is just KEY), or NULL.  */
static const char *
cache_value (const char *line, const char *key)
{
  size_t n = strlen (key);
  if (!line || strncmp (line, key, n) != 0)
    return NULL;
  return line[n] == ' ' ? line + n + 1 : line[n] == '\0' ? line + n : NULL;
}

/* make lint: false positive, as for caps_from_json: what strdup returns is
   stored in CAPS at once and freed by its _cleanup_caps_ (the analyzer
   reports each early return as a leak of it).  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-malloc-leak")
static struct avm_qemu_caps *
cache_parse (char *text, const char *identity, const char *binary, const char *path)
{
  _cleanup_caps_ struct avm_qemu_caps *caps = calloc (1, sizeof *caps);
  char *pos = text;
  const char *v;

  if (!caps || !streq (cache_line (&pos) ?: "", CACHE_MAGIC))
    return NULL;
  if (!(v = cache_value (cache_line (&pos), "identity")) || !streq (v, identity))
    return NULL;
  if (!(v = cache_value (cache_line (&pos), "binary")) || !streq (v, binary) || !(caps->binary = strdup (v)))
    return NULL;
  if (!(v = cache_value (cache_line (&pos), "version")) || !(caps->version = strdup (v))
      || !avm_caps_split_version (caps->version, &caps->major, &caps->minor, &caps->micro))
    return NULL;
  if (!(v = cache_value (cache_line (&pos), "package")) || (*v && !(caps->package = strdup (v))))
    return NULL;
  for (size_t i = 0; i < ARRAY_SIZE (avm_caps_lists); i++)
    {
      char *end;
      if (!(v = cache_value (cache_line (&pos), avm_caps_lists[i].key)) || !*v)
        return NULL;
      errno = 0;
      unsigned long long n = strtoull (v, &end, 10);
      if (*end || errno || n > 100000)
        return NULL;
      char **list = calloc (n + 1, sizeof *list);
      avm_caps_set_list (LIST_FIELD (caps, i), list);
      if (!list)
        return NULL;
      for (size_t j = 0; j < n; j++)
        {
          const char *name = cache_line (&pos);
          if (!name || !*name || (j > 0 && strcmp (list[j - 1], name) >= 0) || !(list[j] = strdup (name)))
            return NULL;
        }
    }
  if (!streq (cache_line (&pos) ?: "", "end") || *pos || !caps->devices[0])
    return NULL;
  if (!(caps->source_path = strdup (path)))
    return NULL;
  caps->source = AVM_CAPS_CACHED;
  return steal_pointer (&caps);
}
AVM_ANALYZER_IGNORE_END

/* The cache entry at PATH when it is valid for IDENTITY; any problem means
   "no".  */
static struct avm_qemu_caps *
read_cache (const char *path, const char *binary, json_t *identity)
{
  _cleanup_free_ char *text = NULL, *id = identity_text (identity);
  _cleanup_error_ avm_error_t ignored = NULL;
  size_t len;

  if (!id || avm_read_file (path, AVM_CAPS_MAX_SIZE, "a capability cache entry", &text, &len, &ignored) < 0
      || strlen (text) != len)
    return NULL;
  return cache_parse (text, id, binary, path);
}

static int
write_cache (const char *path, struct avm_qemu_caps *caps, json_t *identity)
{
  _cleanup_error_ avm_error_t ignored = NULL;
  _cleanup_free_ char *dir = strdup (path), *id = identity_text (identity);
  _cleanup_free_ char *text = id ? cache_text (caps, id) : NULL;
  int r;

  if (!dir || !text)
    return -ENOMEM;
  *strrchr (dir, '/') = '\0';
  r = avm_mkdir_p (dir, 0700, &ignored);
  if (r == 0)
    r = avm_write_file_atomic (path, text, strlen (text), 0600, &ignored);
  /* The entry's JSON predecessor (avm 0.1 before the line format) goes.  */
  size_t n = strlen (path);
  _cleanup_free_ char *legacy = n > 5 ? strdup (path) : NULL;
  if (r == 0 && legacy && streq (legacy + n - 5, ".caps"))
    {
      memcpy (legacy + n - 5, ".json", 5);
      unlink (legacy);
    }
  return r;
}

int
avm_qemu_caps_get (const char *binary, struct avm_qemu_caps **out, avm_error_t *err)
{
  _cleanup_caps_ struct avm_qemu_caps *caps = NULL;
  _cleanup_free_ char *cache = NULL;
  struct stat st;
  json_t *identity, *after;
  int r;

  r = avm_caps_check_binary (binary, &st, err);
  if (r < 0)
    return r;
  identity = identity_json (binary, &st);
  cache = avm_qemu_caps_cache_path (binary);
  if (identity && cache && (caps = read_cache (cache, binary, identity)))
    {
      json_decref (identity);
      *out = steal_pointer (&caps);
      return 0;
    }

  r = avm_caps_probe_binary (binary, &caps, err);
  if (r < 0)
    {
      json_decref (identity);
      return r;
    }
  /* Cache only what is known to belong to the binary as it still is.  */
  after = stat (binary, &st) == 0 ? identity_json (binary, &st) : NULL;
  if (identity && cache && json_equal (identity, after) && write_cache (cache, caps, identity) == 0)
    caps->source_path = steal_pointer (&cache);
  json_decref (identity);
  json_decref (after);
  *out = steal_pointer (&caps);
  return 0;
}
