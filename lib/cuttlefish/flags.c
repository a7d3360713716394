/* SPDX-License-Identifier: Apache-2.0 */
#include "cuttlefish/flags.h"
#include "cuttlefish/config.h"
#include "util/cachefile.h"
#include "util/capture.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strbuf.h"
#include "util/strv.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

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
avm_cf_gflags_cached (const char *program, char ***flags)
{
  char identity[4352];
  *flags = NULL;
  if (avm_file_identity (program, identity, sizeof identity) < 0)
    return 0;
  _cleanup_free_ char *file = avm_cache_file ("helper-flags", program, "flags");
  return file && read_cache (file, identity, flags);
}

int
avm_cf_gflags_probe (const char *program, char *const *envp, char ***flags, avm_error_t *err)
{
  char identity[4352];
  *flags = NULL;
  int r = avm_file_identity (program, identity, sizeof identity);
  if (r < 0)
    return avm_error_sys (err, -r, "%s", program);
  char *argv[] = { (char *) program, "--helpxml", NULL };
  struct avm_capture job = { .argv = argv, .envp = envp };
  if ((r = avm_capture_run (&job, 1, PROBE_TIMEOUT_MS, err)) < 0)
    return r;
  *flags = parse_helpxml (job.out ? job.out : "");
  avm_capture_clear (&job, 1);
  _cleanup_free_ char *file = avm_cache_file ("helper-flags", program, "flags");
  if (file)
    write_cache (file, identity, *flags);
  return 0;
}

int
avm_cf_probe_env_make (struct avm_cf_probe_env *pe, int instance, avm_error_t *err)
{
  struct avm_argv env = { 0 };
  char tmpl[] = "/tmp/avm-probe-XXXXXX";
  *pe = (struct avm_cf_probe_env) { 0 };
  if (!mkdtemp (tmpl))
    return avm_error_sys (err, errno, "a temporary directory for the helpers' flag probes");
  pe->root = strdup (tmpl);
  _cleanup_free_ char *idir = avm_cf_instance_dir (tmpl, instance), *logs = NULL, *conf = NULL, *text = NULL;
  if (!pe->root || !idir || asprintf (&logs, "%s/logs", idir) < 0
      || asprintf (&conf, "%s/cuttlefish_config.json", tmpl) < 0)
    return avm_error_sys (err, ENOMEM, "flag probes");
  const struct avm_cf_config cfg = { .root_dir = tmpl,
                                     .uds_dir = tmpl,
                                     .instance = instance,
                                     .ril_ip = "10.0.2.15",
                                     .ril_gateway = "10.0.2.2",
                                     .ril_dns = "10.0.2.3",
                                     .ril_prefix = 24 };
  int r;
  if ((r = avm_mkdir_p (logs, 0700, err)) < 0 || (r = avm_cf_config_text (&cfg, &text, err)) < 0
      || (r = avm_write_file_atomic (conf, text, strlen (text), 0600, err)) < 0)
    return r;
  for (char **e = environ; *e; e++)
    if (strncmp (*e, "CUTTLEFISH_", 11) != 0 && strncmp (*e, "HOME=", 5) != 0)
      avm_argv_push (&env, *e);
  avm_argv_pushf (&env, "CUTTLEFISH_CONFIG_FILE=%s", conf);
  avm_argv_pushf (&env, "CUTTLEFISH_INSTANCE=%d", instance);
  avm_argv_pushf (&env, "HOME=%s", tmpl);
  if (!(pe->envp = avm_argv_steal (&env)))
    return avm_error_sys (err, ENOMEM, "flag probes");
  return 0;
}

static int
remove_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) st;
  (void) ftw;
  if (flag == FTW_DP)
    rmdir (path);
  else
    unlink (path);
  return 0;
}

void
avm_cf_probe_env_clear (struct avm_cf_probe_env *pe)
{
  /* What the probes left there (the configuration, launcher.log): a tree
     of avm's own under a fresh mkdtemp, removed depth-first, links not
     followed.  */
  if (pe->root)
    nftw (pe->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  free (pe->root);
  avm_strv_free (pe->envp);
  *pe = (struct avm_cf_probe_env) { 0 };
}

static bool
has (char *const *v, const char *name)
{
  return v && bsearch (&name, v, avm_strv_length (v), sizeof *v, cmp_str);
}

/* gflags' own flags, which every program has.  */
static const char *const builtin[] = { "flagfile",
                                       "fromenv",
                                       "tryfromenv",
                                       "undefok",
                                       "help",
                                       "helpfull",
                                       "helpshort",
                                       "helpon",
                                       "helpmatch",
                                       "helppackage",
                                       "helpxml",
                                       "version",
                                       "tab_completion_columns",
                                       "tab_completion_word",
                                       NULL };

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
      bool known
          = has (flags, name) || avm_strv_contains (undefok.v, name) || avm_strv_contains ((char **) builtin, name);
      /* -noNAME sets a boolean NAME to false.  */
      if (!known && strncmp (name, "no", 2) == 0)
        known = has (flags, name + 2) || avm_strv_contains (undefok.v, name + 2);
      if (!known)
        avm_strbuf_addf (&b, "%s-%s", b.len ? ", " : "", name);
    }
  avm_argv_clear (&undefok);
  return avm_strbuf_steal (&b);
}
