/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bash completion (cmd/avm/avm.bash) run by real bash: the completion
 * function is called the way bash calls it (COMP_WORDS, COMP_CWORD) and
 * COMPREPLY is compared with what the program itself says: the commands of
 * `avm --help`, the options of every `avm CMD --help`, the names of
 * `avm profiles list --names`, files, running instances.
 */
#include "testutil.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct words
{
  char **v;
  size_t n;
};

static void
w_add (struct words *w, const char *s, size_t len)
{
  for (size_t i = 0; i < w->n; i++)
    if (strlen (w->v[i]) == len && strncmp (w->v[i], s, len) == 0)
      return;
  w->v = realloc (w->v, (w->n + 1) * sizeof *w->v);
  cr_assert_not_null (w->v);
  w->v[w->n++] = strndup (s, len);
}

static bool
w_has (const struct words *w, const char *s)
{
  for (size_t i = 0; i < w->n; i++)
    if (strcmp (w->v[i], s) == 0)
      return true;
  return false;
}

static void
w_free (struct words *w)
{
  for (size_t i = 0; i < w->n; i++)
    free (w->v[i]);
  free (w->v);
  w->v = NULL;
  w->n = 0;
}

static char *
w_join (const struct words *w)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream (&buf, &len);
  for (size_t i = 0; i < w->n; i++)
    fprintf (m, "%s%s", i ? " " : "", w->v[i]);
  fclose (m);
  return buf;
}

static struct words
lines_of (const char *text)
{
  struct words w = { 0 };
  for (const char *p = text; *p;)
    {
      size_t n = strcspn (p, "\n");
      if (n)
        w_add (&w, p, n);
      p += n + (p[n] == '\n');
    }
  return w;
}

static char *
completion_file (void)
{
  char *p = NULL;
  cr_assert_geq (asprintf (&p, "%s/cmd/avm/avm.bash", tu_srcdir ()), 0);
  return p;
}

/* The test's own environment for avm and bash: profiles from the source
   tree plus a per-user directory, a private runtime directory.  */
static char *user_dir, *env_data, *env_config, *env_cache, *env_run;

static void
setup (void)
{
  user_dir = tu_tmpdir ();
  cr_assert_geq (asprintf (&env_data, "AVM_DATA_DIR=%s", tu_srcdir ()), 0);
  cr_assert_geq (asprintf (&env_config, "XDG_CONFIG_HOME=%s/config", user_dir), 0);
  cr_assert_geq (asprintf (&env_cache, "XDG_CACHE_HOME=%s/cache", user_dir), 0);
  cr_assert_geq (asprintf (&env_run, "AVM_RUNTIME_DIR=%s/run", user_dir), 0);
}

static void
teardown (void)
{
  tu_rmtree (user_dir);
  free (user_dir);
  free (env_data);
  free (env_config);
  free (env_cache);
  free (env_run);
}

TestSuite (completion, .init = setup, .fini = teardown);

static char *const *
test_env (void)
{
  static char *env[8];
  env[0] = env_data;
  env[1] = env_config;
  env[2] = env_cache;
  env[3] = env_run;
  env[4] = "AVM_PROFILE";
  env[5] = NULL;
  return env;
}

/* Complete the command line WORDS (NULL-terminated; the last word is the
   one being completed, "" for a new word) with FN, as bash does.  */
static struct words
complete_with (const char *fn, const char *const *words)
{
  static const char script[] = "source \"$1\" || exit 1\n"
                               "fn=$2 COMP_CWORD=$3\n"
                               "shift 3\n"
                               "COMP_WORDS=(\"$@\")\n"
                               "COMP_LINE=\"${COMP_WORDS[*]}\" COMP_POINT=${#COMP_LINE}\n"
                               "$fn \"$1\" \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\" || exit 1\n"
                               "printf '%s\\n' \"${COMPREPLY[@]}\"\n";
  char *file = completion_file (), cword[24];
  size_t n = 0;
  while (words[n])
    n++;
  cr_assert_gt (n, 0);
  snprintf (cword, sizeof cword, "%zu", n - 1);
  char *argv[64] = { "bash", "--norc", "--noprofile", "-c", (char *) script, "bash", file, (char *) fn, cword };
  size_t a = 9;
  for (size_t i = 0; i < n && a < 63; i++)
    argv[a++] = (char *) words[i];
  argv[a] = NULL;
  char *out = NULL, *err = NULL;
  int rc = tu_run (argv, test_env (), &out, &err);
  cr_assert_eq (rc, 0, "bash completion %s failed (exit %d):\n%s", fn, rc, err);
  cr_expect_str_empty (err, "bash completion %s wrote to stderr:\n%s", fn, err);
  struct words w = lines_of (out);
  free (out);
  free (err);
  free (file);
  return w;
}

#define COMPLETE(fn, ...) complete_with (fn, (const char *const[]) { __VA_ARGS__, NULL })

static char *
run_ok (char *const argv[])
{
  char *out = NULL, *err = NULL;
  int rc = tu_run (argv, test_env (), &out, &err);
  cr_assert_eq (rc, 0, "%s %s: exit %d\n%s", argv[0], argv[1] ? argv[1] : "", rc, err);
  free (err);
  return out;
}

/* The options of a help text: on every line that starts (after spaces)
   with '-', the option words before the first other word.  */
static struct words
help_options (const char *help)
{
  struct words w = { 0 };
  for (const char *line = help; *line; line += strcspn (line, "\n"), line += *line == '\n')
    {
      const char *p = line + strspn (line, " \t");
      if (*p != '-')
        continue;
      const char *end = line + strcspn (line, "\n");
      while (p < end && *p == '-')
        {
          size_t n = strcspn (p, " \t\n,=/");
          w_add (&w, p, n);
          p += n;
          while (p < end && (*p == ',' || *p == '/' || *p == ' ' || *p == '\t'))
            {
              if (*p == ' ' && p + 1 < end && p[1] == ' ')
                break; /* two spaces: the description follows */
              p++;
            }
          if (*p == ' ')
            break;
        }
    }
  return w;
}

/* The commands listed under "Commands:" in `avm --help`.  */
static struct words
avm_commands (void)
{
  char *argv[] = { (char *) tu_avm_bin (), "--help", NULL };
  char *help = run_ok (argv);
  struct words w = { 0 };
  const char *p = strstr (help, "\nCommands:\n");
  cr_assert_not_null (p, "avm --help has no \"Commands:\" list:\n%s", help);
  p += strlen ("\nCommands:\n");
  while (*p == ' ')
    {
      p += strspn (p, " ");
      w_add (&w, p, strcspn (p, " \n"));
      p += strcspn (p, "\n");
      p += *p == '\n';
    }
  free (help);
  cr_assert_geq (w.n, 7, "avm --help lists only %zu commands", w.n);
  return w;
}

static void
expect_same (const struct words *got, const struct words *want, const char *what)
{
  char *g = w_join (got), *w = w_join (want);
  for (size_t i = 0; i < want->n; i++)
    cr_expect (w_has (got, want->v[i]), "%s: the completion lacks %s\n  completion: %s\n  expected:   %s", what,
               want->v[i], g, w);
  for (size_t i = 0; i < got->n; i++)
    cr_expect (w_has (want, got->v[i]),
               "%s: the completion offers %s, which is not expected\n  completion: %s\n"
               "  expected:   %s",
               what, got->v[i], g, w);
  free (g);
  free (w);
}

Test (completion, commands)
{
  struct words cmds = avm_commands ();
  struct words all = COMPLETE ("_avm", tu_avm_bin (), "");
  expect_same (&all, &cmds, "avm <TAB>");
  struct words st = COMPLETE ("_avm", tu_avm_bin (), "st");
  struct words want = { 0 };
  for (size_t i = 0; i < cmds.n; i++)
    if (strncmp (cmds.v[i], "st", 2) == 0)
      w_add (&want, cmds.v[i], strlen (cmds.v[i]));
  cr_assert_geq (want.n, 3, "avm --help: expected start, status and stop");
  expect_same (&st, &want, "avm st<TAB>");
  /* `avm help CMD`: the commands, not help itself.  */
  struct words help = COMPLETE ("_avm", tu_avm_bin (), "help", "");
  cr_expect (w_has (&help, "cvd2img") && !w_has (&help, "help"), "avm help <TAB>: %zu words", help.n);
  struct words opts = COMPLETE ("_avm", tu_avm_bin (), "--");
  cr_expect (w_has (&opts, "--help") && w_has (&opts, "--version"), "avm --<TAB>");
  w_free (&opts);
  w_free (&help);
  w_free (&want);
  w_free (&st);
  w_free (&all);
  w_free (&cmds);
}

/* For every command but help and profiles: `avm CMD -<TAB>` offers exactly
   the options of `avm CMD --help`.  */
Test (completion, options_match_help)
{
  struct words cmds = avm_commands ();
  size_t checked = 0;
  for (size_t i = 0; i < cmds.n; i++)
    {
      const char *cmd = cmds.v[i];
      if (strcmp (cmd, "help") == 0 || strcmp (cmd, "profiles") == 0)
        continue;
      char *argv[] = { (char *) tu_avm_bin (), (char *) cmd, "--help", NULL };
      char *help = run_ok (argv);
      struct words want = help_options (help);
      cr_expect_geq (want.n, 4, "avm %s --help: found only %zu options", cmd, want.n);
      struct words got = COMPLETE ("_avm", tu_avm_bin (), cmd, "-");
      char what[64];
      snprintf (what, sizeof what, "avm %s -<TAB>", cmd);
      expect_same (&got, &want, what);
      /* Long options alone, after other arguments.  */
      struct words longs = COMPLETE ("_avm", tu_avm_bin (), cmd, "--json", "--");
      for (size_t k = 0; k < want.n; k++)
        if (strncmp (want.v[k], "--", 2) == 0)
          cr_expect (w_has (&longs, want.v[k]), "avm %s --json --<TAB> lacks %s", cmd, want.v[k]);
      for (size_t k = 0; k < longs.n; k++)
        cr_expect (strncmp (longs.v[k], "--", 2) == 0, "avm %s --<TAB> offers %s", cmd, longs.v[k]);
      w_free (&longs);
      w_free (&got);
      w_free (&want);
      free (help);
      checked++;
    }
  cr_expect_geq (checked, 6);
  w_free (&cmds);
}

/* `avm profiles`: the subcommands and every option their usage lines
   name.  */
Test (completion, profiles_subcommands)
{
  char *argv[] = { (char *) tu_avm_bin (), "profiles", "--help", NULL };
  char *help = run_ok (argv);
  struct words subs = { 0 };
  for (const char *p = strstr (help, "avm profiles "); p; p = strstr (p + 1, "avm profiles "))
    {
      const char *sub = p + strlen ("avm profiles ");
      size_t n = strcspn (sub, " \n");
      w_add (&subs, sub, n);
      char name[32];
      snprintf (name, sizeof name, "%.*s", (int) n, sub);
      struct words got = COMPLETE ("_avm", tu_avm_bin (), "profiles", name, "-");
      const char *eol = sub + strcspn (sub, "\n");
      for (const char *o = strchr (sub, '-'); o && o < eol; o = strchr (o + 1, '-'))
        {
          if (o[-1] != '[' && o[-1] != '|' && o[-1] != ' ')
            continue;
          size_t len = strcspn (o, " ]|.\n");
          char opt[32];
          snprintf (opt, sizeof opt, "%.*s", (int) len, o);
          cr_expect (w_has (&got, opt), "avm profiles %s -<TAB> lacks %s (from avm profiles --help)", name, opt);
          o += len - 1;
        }
      w_free (&got);
    }
  struct words got = COMPLETE ("_avm", tu_avm_bin (), "profiles", "");
  expect_same (&got, &subs, "avm profiles <TAB>");
  w_free (&got);
  w_free (&subs);
  free (help);
}

Test (completion, cvd2img_personality)
{
  /* cvd2img -<TAB> offers the options of the personality's own help.  */
  char *dir = tu_tmpdir (), *link = NULL;
  cr_assert_geq (asprintf (&link, "%s/cvd2img", dir), 0);
  char abs[4096];
  cr_assert_not_null (realpath (tu_avm_bin (), abs));
  cr_assert_eq (symlink (abs, link), 0);
  char *argv[] = { link, "--help", NULL };
  char *help = run_ok (argv);
  cr_assert (strstr (help, "Usage: cvd2img"), "cvd2img --help is not the personality's help:\n%s", help);
  struct words want = help_options (help);
  struct words got = COMPLETE ("_avm_cvd2img_compat", link, "-");
  expect_same (&got, &want, "cvd2img -<TAB>");
  struct words arch = COMPLETE ("_avm_cvd2img_compat", link, "-a", "");
  cr_expect (w_has (&arch, "x86-64") && w_has (&arch, "aarch64") && arch.n == 2, "cvd2img -a <TAB>");
  w_free (&arch);
  w_free (&got);
  w_free (&want);
  free (help);
  free (link);
  tu_rmtree (dir);
  free (dir);
}

Test (completion, start_avm_personality)
{
  /* start-avm's options are read from its --help when completing.  */
  char *dir = tu_tmpdir (), *link = NULL;
  cr_assert_geq (asprintf (&link, "%s/start-avm", dir), 0);
  char abs[4096];
  cr_assert_not_null (realpath (tu_avm_bin (), abs));
  cr_assert_eq (symlink (abs, link), 0);
  char *argv[] = { link, "--help", NULL };
  char *help = NULL, *err = NULL;
  int rc = tu_run (argv, test_env (), &help, &err);
  if (rc != 0 || !strstr (help, "start-avm"))
    {
      free (help);
      free (err);
      tu_rmtree (dir);
      cr_skip_test ("this avm has no start-avm personality yet (start-avm --help: exit %d)", rc);
    }
  struct words want = help_options (help);
  cr_expect_geq (want.n, 5, "start-avm --help: only %zu options", want.n);
  struct words got = COMPLETE ("_avm_start_avm", link, "-");
  char *g = w_join (&got);
  for (size_t i = 0; i < want.n; i++)
    cr_expect (w_has (&got, want.v[i]), "start-avm -<TAB> lacks %s (from its --help): %s", want.v[i], g);
  free (g);
  w_free (&got);
  w_free (&want);
  free (help);
  free (err);
  free (link);
  tu_rmtree (dir);
  free (dir);
}

Test (completion, profile_names)
{
  /* A per-user profile, and one the installed directory shadows.  */
  char *conf = NULL;
  cr_assert_geq (asprintf (&conf, "%s/config/avm/profiles", user_dir), 0);
  char *mk[] = { "mkdir", "-p", conf, NULL };
  cr_assert_eq (tu_run (mk, NULL, NULL, NULL), 0);
  free (tu_write (conf, "zz-mine.json", "{\"extends\": \"demo\", \"description\": \"mine\"}\n"));
  free (tu_write (conf, "demo.json", "{\"extends\": \"demo\"}\n"));

  char *argv[] = { (char *) tu_avm_bin (), "profiles", "list", "--names", NULL };
  char *out = run_ok (argv);
  struct words names = lines_of (out);
  /* --names: each name once, the non-shadowed entries of --json in order. */
  size_t lines = 0;
  for (char *p = out; *p; p++)
    lines += *p == '\n';
  cr_expect_eq (lines, names.n, "avm profiles list --names repeats a name:\n%s", out);
  char *jargv[] = { (char *) tu_avm_bin (), "profiles", "list", "--json", NULL };
  char *jout = run_ok (jargv);
  json_t *list = json_loads (jout, 0, NULL);
  cr_assert_not_null (list);
  size_t i, k = 0;
  json_t *e;
  json_array_foreach (list, i, e)
    {
      if (json_object_get (e, "shadowed_by"))
        continue;
      const char *name = json_string_value (json_object_get (e, "name"));
      cr_expect (k < names.n && strcmp (names.v[k], name) == 0, "--names entry %zu: %s, --json has %s", k,
                 k < names.n ? names.v[k] : "(none)", name);
      k++;
    }
  cr_expect_eq (k, names.n);
  cr_expect (w_has (&names, "demo") && w_has (&names, "zz-mine") && w_has (&names, "aaos-x86_64"),
             "avm profiles list --names:\n%s", out);

  struct words got = COMPLETE ("_avm", tu_avm_bin (), "start", "-p", "");
  expect_same (&got, &names, "avm start -p <TAB>");
  w_free (&got);
  got = COMPLETE ("_avm", tu_avm_bin (), "check", "--profile", "=", "zz");
  cr_expect (got.n == 1 && strcmp (got.v[0], "zz-mine") == 0, "avm check --profile=zz<TAB>: %zu words", got.n);
  w_free (&got);
  got = COMPLETE ("_avm", tu_avm_bin (), "profiles", "show", "de");
  cr_expect (got.n == 2 && w_has (&got, "demo") && w_has (&got, "demo-arm64"), "avm profiles show de<TAB>: %zu words",
             got.n);
  w_free (&got);
  got = COMPLETE ("_avm", tu_avm_bin (), "cvd2img", "-p", "aaos-");
  cr_expect (w_has (&got, "aaos-x86_64") && w_has (&got, "aaos-arm64"), "avm cvd2img -p aaos-<TAB>");
  w_free (&got);

  /* --json and --names together are a usage error.  */
  char *both[] = { (char *) tu_avm_bin (), "profiles", "list", "--names", "--json", NULL };
  char *o2 = NULL, *e2 = NULL;
  cr_expect_eq (tu_run (both, test_env (), &o2, &e2), 2);
  free (o2);
  free (e2);
  json_decref (list);
  free (jout);
  w_free (&names);
  free (out);
  free (conf);
}

Test (completion, files_and_values)
{
  char *d = NULL;
  cr_assert_geq (asprintf (&d, "%s/files", user_dir), 0);
  cr_assert_eq (mkdir (d, 0755), 0);
  char *sub = NULL, *file = NULL, *prefix = NULL;
  cr_assert_geq (asprintf (&sub, "%s/images-dir", d), 0);
  cr_assert_geq (asprintf (&prefix, "%s/i", d), 0);
  cr_assert_eq (mkdir (sub, 0755), 0);
  file = tu_write (d, "images.json", "{}\n");

  /* Directories only for --images and cvd2img -o; files too for --caps.  */
  struct words got = COMPLETE ("_avm", tu_avm_bin (), "start", "--images", prefix);
  cr_expect (got.n == 1 && strcmp (got.v[0], sub) == 0, "avm start --images %s<TAB>: %zu words", prefix, got.n);
  w_free (&got);
  got = COMPLETE ("_avm", tu_avm_bin (), "cvd2img", "-o", prefix);
  cr_expect (got.n == 1 && strcmp (got.v[0], sub) == 0, "avm cvd2img -o %s<TAB>: %zu words", prefix, got.n);
  w_free (&got);
  got = COMPLETE ("_avm", tu_avm_bin (), "check", "--caps", prefix);
  cr_expect (got.n == 2 && w_has (&got, sub) && w_has (&got, file), "avm check --caps %s<TAB>: %zu words", prefix,
             got.n);
  w_free (&got);
  got = COMPLETE ("_avm", tu_avm_bin (), "inspect", "--json", prefix);
  cr_expect (got.n == 2 && w_has (&got, file), "avm inspect --json %s<TAB>: %zu words", prefix, got.n);
  w_free (&got);
  /* A profile given as a path.  */
  got = COMPLETE ("_avm", tu_avm_bin (), "start", "-p", prefix);
  cr_expect (w_has (&got, file), "avm start -p %s<TAB>: %zu words", prefix, got.n);
  w_free (&got);

  got = COMPLETE ("_avm", tu_avm_bin (), "start", "--log-target", "");
  cr_expect (got.n == 3 && w_has (&got, "auto") && w_has (&got, "file") && w_has (&got, "journal"),
             "avm start --log-target <TAB>: %zu words", got.n);
  w_free (&got);
  got = COMPLETE ("_avm", tu_avm_bin (), "cvd2img", "--arch", "");
  cr_expect (got.n == 2 && w_has (&got, "x86_64") && w_has (&got, "aarch64"), "avm cvd2img --arch <TAB>");
  w_free (&got);
  /* Options that take a value offer no options after them.  */
  got = COMPLETE ("_avm", tu_avm_bin (), "start", "--set", "-");
  cr_expect_eq (got.n, 0, "avm start --set -<TAB>: %zu words", got.n);
  w_free (&got);

  free (file);
  free (prefix);
  free (sub);
  free (d);
}

Test (completion, running_instances)
{
  /* Instances 2 and 11 have a control socket; 5 only a stale directory. */
  const char *run = strchr (env_run, '=') + 1;
  cr_assert_eq (mkdir (run, 0700), 0);
  const char *dirs[] = { "2", "11", "5" };
  for (size_t i = 0; i < 3; i++)
    {
      char path[80];
      cr_assert_lt ((size_t) snprintf (path, sizeof path, "%s/%s", run, dirs[i]), sizeof path);
      cr_assert_eq (mkdir (path, 0700), 0);
      if (i == 2)
        continue;
      struct sockaddr_un sa = { .sun_family = AF_UNIX };
      snprintf (sa.sun_path, sizeof sa.sun_path, "%s/control.sock", path);
      int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      cr_assert_geq (fd, 0);
      cr_assert_eq (bind (fd, (struct sockaddr *) &sa, sizeof sa), 0, "bind %s", sa.sun_path);
      close (fd);
    }
  struct words got = COMPLETE ("_avm", tu_avm_bin (), "status", "-i", "");
  struct words want = { 0 };
  w_add (&want, "2", 1);
  w_add (&want, "11", 2);
  expect_same (&got, &want, "avm status -i <TAB>");
  w_free (&got);
  got = COMPLETE ("_avm", tu_avm_bin (), "stop", "--instance", "1");
  cr_expect (got.n == 1 && strcmp (got.v[0], "11") == 0, "avm stop --instance 1<TAB>: %zu words", got.n);
  w_free (&got);
  w_free (&want);
}

Test (completion, shellcheck)
{
  char *file = completion_file ();
  char *argv[] = { "shellcheck", "-s", "bash", "-S", "warning", file, NULL };
  char *out = NULL, *err = NULL;
  int rc = tu_run (argv, NULL, &out, &err);
  cr_expect_eq (rc, 0, "shellcheck %s: exit %d\n%s%s", file, rc, out, err);
  free (out);
  free (err);
  free (file);
}
