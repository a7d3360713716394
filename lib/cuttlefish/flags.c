/* SPDX-License-Identifier: Apache-2.0 */
#include "cuttlefish/flags.h"
#include "util/cachefile.h"
#include "util/capture.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strbuf.h"
#include "util/strv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_TIMEOUT_MS 5000
#define CACHE_MAGIC "avm-helper-flags 1"

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* <name>N</name> inside each <flag> of the --helpxml output.  */
static char **
parse_helpxml (const char *xml)
{
  struct avm_argv v = { 0 };
  if (!strstr (xml, "<AllFlags>"))
    return NULL;
  for (const char *p = strstr (xml, "<flag>"); p; p = strstr (p + 1, "<flag>"))
    {
      const char *n = strstr (p, "<name>"), *e = n ? strstr (n, "</name>") : NULL, *end = strstr (p, "</flag>");
      if (!n || !e || (end && n > end))
        continue;
      avm_argv_push_take (&v, strndup (n + 6, e - n - 6));
    }
  char **out = avm_argv_steal (&v);
  if (!out)
    out = calloc (1, sizeof *out);
  if (out)
    qsort (out, avm_strv_length (out), sizeof *out, cmp_str);
  return out;
}

/* The cache entry of PROGRAM if it was written for IDENTITY: 1 with *FLAGS
   (NULL for "not gflags"), or 0.  */
static int
read_cache (const char *file, const char *identity, char ***flags)
{
  _cleanup_free_ char *text = NULL;
  size_t len;
  _cleanup_error_ avm_error_t ignored = NULL;
  if (avm_read_file (file, 1u << 20, "a helper-flags cache entry", &text, &len, &ignored) < 0)
    return 0;
  char *save = NULL, *line = strtok_r (text, "\n", &save);
  if (!line || !streq (line, CACHE_MAGIC))
    return 0;
  line = strtok_r (NULL, "\n", &save);
  if (!line || strncmp (line, "identity ", 9) != 0 || !streq (line + 9, identity))
    return 0;
  line = strtok_r (NULL, "\n", &save);
  if (line && streq (line, "not-gflags"))
    {
      *flags = NULL;
      return 1;
    }
  struct avm_argv v = { 0 };
  for (; line; line = strtok_r (NULL, "\n", &save))
    if (strncmp (line, "flag ", 5) == 0)
      avm_argv_push (&v, line + 5);
  *flags = avm_argv_steal (&v);
  if (!*flags)
    *flags = calloc (1, sizeof **flags);
  return *flags ? 1 : 0;
}

static void
write_cache (const char *file, const char *identity, char *const *flags)
{
  struct avm_strbuf b = { 0 };
  avm_strbuf_addf (&b, "%s\nidentity %s\n", CACHE_MAGIC, identity);
  if (!flags)
    avm_strbuf_adds (&b, "not-gflags\n");
  for (size_t i = 0; flags && flags[i]; i++)
    avm_strbuf_addf (&b, "flag %s\n", flags[i]);
  _cleanup_free_ char *text = avm_strbuf_steal (&b), *dir = file ? strdup (file) : NULL;
  _cleanup_error_ avm_error_t ignored = NULL;
  if (!text || !dir)
    return;
  *strrchr (dir, '/') = '\0';
  /* A cache that cannot be written only costs the next start a probe.  */
  if (avm_mkdir_p (dir, 0700, &ignored) == 0)
    avm_write_file_atomic (file, text, strlen (text), 0600, &ignored);
}

int
avm_cf_gflags (const char *program, char ***flags, bool *cached, avm_error_t *err)
{
  char identity[4352];
  *flags = NULL;
  *cached = false;
  int r = avm_file_identity (program, identity, sizeof identity);
  if (r < 0)
    return avm_error_sys (err, -r, "%s", program);
  _cleanup_free_ char *file = avm_cache_file ("helper-flags", program, "flags");
  if (file && read_cache (file, identity, flags))
    {
      *cached = true;
      return 0;
    }
  char *argv[] = { (char *) program, "--helpxml", NULL };
  struct avm_capture job = { .argv = argv };
  if ((r = avm_capture_run (&job, 1, PROBE_TIMEOUT_MS, err)) < 0)
    return r;
  *flags = parse_helpxml (job.out ? job.out : "");
  avm_capture_clear (&job, 1);
  if (file)
    write_cache (file, identity, *flags);
  return 0;
}

static bool
has (char *const *v, const char *name)
{
  return v && bsearch (&name, v, avm_strv_length (v), sizeof *v, cmp_str);
}

/* gflags' own flags, which every program has.  */
static const char *const builtin[] = { "flagfile", "fromenv", "tryfromenv", "undefok", "help", "helpfull",
                                       "helpshort", "helpon", "helpmatch", "helppackage", "helpxml", "version",
                                       "tab_completion_columns", "tab_completion_word", NULL };

char *
avm_cf_gflags_unknown (char *const *flags, const char *const *argv)
{
  struct avm_strbuf b = { 0 };
  struct avm_argv undefok = { 0 };
  for (size_t i = 1; argv[i]; i++)
    if (strncmp (argv[i], "--undefok=", 10) == 0 || strncmp (argv[i], "-undefok=", 9) == 0)
      {
        _cleanup_free_ char *list = strdup (strchr (argv[i], '=') + 1);
        char *save = NULL;
        for (char *t = list ? strtok_r (list, ",", &save) : NULL; t; t = strtok_r (NULL, ",", &save))
          avm_argv_push (&undefok, t);
      }
  for (size_t i = 1; argv[i]; i++)
    {
      const char *a = argv[i];
      if (a[0] != '-' || streq (a, "-") || streq (a, "--"))
        continue;
      a += a[1] == '-' ? 2 : 1;
      size_t n = strcspn (a, "=");
      _cleanup_free_ char *name = strndup (a, n);
      if (!name)
        break;
      bool known = has (flags, name) || avm_strv_contains (undefok.v, name) || avm_strv_contains ((char **) builtin, name);
      /* -noNAME sets a boolean NAME to false.  */
      if (!known && strncmp (name, "no", 2) == 0)
        known = has (flags, name + 2) || avm_strv_contains (undefok.v, name + 2);
      if (!known)
        avm_strbuf_addf (&b, "%s-%s", b.len ? ", " : "", name);
    }
  avm_argv_clear (&undefok);
  return avm_strbuf_steal (&b);
}
