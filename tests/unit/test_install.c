/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `make install` and `make uninstall` for real, into temporary DESTDIRs,
 * and the installed tree run from there.
 *
 * The suite runs in parallel with everything else, with the test binary
 * and ./avm of the source tree in use: the installs build in a build
 * directory of their own (BUILD=, once per run, under a lock), so nothing
 * of the source tree's build is touched.  make is run with an argument
 * vector and without the make variables of the outer `make check` (a
 * check-asan run exports BUILD, SANFLAGS, LDFLAGS...).
 */
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#define PREFIX "/usr"

/* The environment of make: none of the outer make's variables.  */
static char *const make_env[] = {
  "MAKEFLAGS", "MFLAGS", "MAKELEVEL",  "MAKEOVERRIDES",  "GNUMAKEFLAGS", "BUILD",    "DESTDIR",  "PREFIX", "BINDIR",
  "DATADIR",   "MANDIR", "QUADLETDIR", "SYSTEMDUNITDIR", "BASHCOMPDIR",  "OPTFLAGS", "SANFLAGS", "CFLAGS", "CPPFLAGS",
  "LDFLAGS",   NULL,
};

/* make -C $AVM_SRCDIR BUILD=BUILD DESTDIR=DEST PREFIX=PFX TARGET; fails the
   test unless it succeeds.  Returns its standard output.  */
static char *
make_with (const char *build, const char *dest, const char *pfx, const char *target, const char *extra)
{
  char *b = tu_fmt ("BUILD=%s", build), *d = tu_fmt ("DESTDIR=%s", dest), *p = tu_fmt ("PREFIX=%s", pfx);
  char *argv[] = { "make", "-C", (char *) tu_srcdir (), b, d, p, (char *) target, (char *) extra, NULL };
  char *out = NULL, *err = NULL;
  int rc = tu_run (argv, make_env, &out, &err);
  cr_assert_eq (rc, 0, "make %s %s %s %s: exit %d\n%s\n%s", b, d, p, target, rc, out, err);
  free (err);
  free (b);
  free (d);
  free (p);
  return out;
}

static char *
make (const char *build, const char *dest, const char *pfx, const char *target)
{
  return make_with (build, dest, pfx, target, NULL);
}

/* The shared fixture: BUILD and an install of it into DEST with
   PREFIX=/usr, made once per run.  LOCK is held by callers that change
   BUILD.  */
static char *shared, *build, *dest;
static int lock_fd = -1;

static void
lock_shared (void)
{
  char *lock = tu_fmt ("%s/lock", shared);
  lock_fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  cr_assert_geq (lock_fd, 0, "%s: %s", lock, strerror (errno));
  cr_assert_eq (flock (lock_fd, LOCK_EX), 0);
  free (lock);
}

static void
unlock_shared (void)
{
  if (lock_fd >= 0)
    close (lock_fd);
  lock_fd = -1;
}

static void
setup (void)
{
  shared = tu_run_shared_dir ("install");
  build = tu_fmt ("%s/build", shared);
  dest = tu_fmt ("%s/dest", shared);
  mkdir (shared, 0755);
  lock_shared ();
  char *done = tu_fmt ("%s/installed", shared);
  if (access (done, F_OK) != 0)
    {
      free (make (build, dest, PREFIX, "install"));
      free (tu_write (shared, "installed", "\n"));
    }
  free (done);
  unlock_shared ();
}

static void
teardown (void)
{
  unlock_shared ();
  free (shared);
  free (build);
  free (dest);
}

TestSuite (install, .init = setup, .fini = teardown);

/* ------------------------------------------------------------------ */
/* The files of a tree.  */

struct entry
{
  char *rel;    /* path under the tree */
  char type;    /* 'f' file, 'l' symbolic link */
  char *target; /* of a link */
  mode_t mode;
};

static struct entry *walked;
static size_t n_walked;
static size_t root_len;

static int
walk_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) ftw;
  if (flag == FTW_D || flag == FTW_DP)
    return 0;
  walked = realloc (walked, (n_walked + 1) * sizeof *walked);
  cr_assert_not_null (walked);
  struct entry *e = &walked[n_walked++];
  e->rel = strdup (path + root_len + 1);
  e->type = flag == FTW_SL ? 'l' : 'f';
  e->mode = st->st_mode & 07777;
  e->target = NULL;
  if (flag == FTW_SL)
    {
      char buf[4096];
      ssize_t n = readlink (path, buf, sizeof buf - 1);
      cr_assert_gt (n, 0);
      buf[n] = '\0';
      e->target = strdup (buf);
    }
  return 0;
}

/* Every file and link under ROOT (directories left out).  */
static void
walk (const char *root, struct entry **out, size_t *n)
{
  walked = NULL;
  n_walked = 0;
  root_len = strlen (root);
  cr_assert_eq (nftw (root, walk_one, 16, FTW_PHYS), 0, "cannot walk %s", root);
  *out = walked;
  *n = n_walked;
}

static void
entries_free (struct entry *e, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (e[i].rel);
      free (e[i].target);
    }
  free (e);
}

static bool
ends_with (const char *s, const char *suffix)
{
  size_t a = strlen (s), b = strlen (suffix);
  return a >= b && strcmp (s + a - b, suffix) == 0;
}

/* What install should put there: REL -> SOURCE (a file of the source tree)
   or a link target.  */
struct want
{
  char *rel;
  char *source; /* NULL for a link */
  const char *target;
  mode_t mode;
  bool seen;
};

static struct want wants[256];
static size_t n_wants;

static void
want_file (char *rel, char *source, mode_t mode)
{
  cr_assert_lt (n_wants, sizeof wants / sizeof wants[0]);
  wants[n_wants++] = (struct want) { .rel = rel, .source = source, .mode = mode };
}

static void
want_link (char *rel, const char *target)
{
  cr_assert_lt (n_wants, sizeof wants / sizeof wants[0]);
  wants[n_wants++] = (struct want) { .rel = rel, .target = target };
}

/* Source files of DIR with one of the SUFFIXES, each installed as
   INSTALL_DIR/NAME.  Returns how many.  */
static size_t
want_dir (const char *dir, const char *const *suffixes, const char *install_dir)
{
  char *src = tu_fmt ("%s/%s", tu_srcdir (), dir);
  DIR *d = opendir (src);
  size_t n = 0;
  if (!d)
    {
      cr_assert_eq (errno, ENOENT, "%s: %s", src, strerror (errno));
      free (src);
      return 0;
    }
  struct dirent *de;
  while ((de = readdir (d)))
    for (const char *const *s = suffixes; *s; s++)
      if (de->d_name[0] != '.' && ends_with (de->d_name, *s))
        {
          want_file (tu_fmt ("%s/%s", install_dir, de->d_name), tu_fmt ("%s/%s", src, de->d_name), 0644);
          n++;
        }
  closedir (d);
  free (src);
  return n;
}

static void
wants_build (void)
{
  n_wants = 0;
  want_file (strdup ("usr/bin/avm"), NULL, 0755);
  want_link (strdup ("usr/bin/start-avm"), "avm");
  want_link (strdup ("usr/bin/cvd2img"), "avm");
  want_file (strdup ("usr/share/bash-completion/completions/avm"), tu_fmt ("%s/cmd/avm/avm.bash", tu_srcdir ()), 0644);
  want_link (strdup ("usr/share/bash-completion/completions/start-avm"), "avm");
  want_link (strdup ("usr/share/bash-completion/completions/cvd2img"), "avm");
  cr_assert_geq (want_dir ("profiles", (const char *const[]) { ".json", NULL }, "usr/share/avm/profiles"), 5);
  cr_assert_geq (want_dir ("man", (const char *const[]) { ".1", NULL }, "usr/share/man/man1"), 8);
  cr_assert_geq (want_dir ("man", (const char *const[]) { ".5", NULL }, "usr/share/man/man5"), 1);
  cr_assert_geq (want_dir ("man", (const char *const[]) { ".7", NULL }, "usr/share/man/man7"), 1);
  /* Whatever quadlets and units the tree has (none is fine).  */
  want_dir ("quadlets", (const char *const[]) { ".container", ".volume", ".network", ".kube", NULL },
            "usr/share/containers/systemd");
  want_dir ("quadlets", (const char *const[]) { ".service", NULL }, "usr/lib/systemd/system");
}

static void
wants_free (void)
{
  for (size_t i = 0; i < n_wants; i++)
    {
      free (wants[i].rel);
      free (wants[i].source);
    }
  n_wants = 0;
}

static bool
same_content (const char *a, const char *b)
{
  char *x = tu_read (a), *y = tu_read (b);
  bool same = x && y && strcmp (x, y) == 0;
  free (x);
  free (y);
  return same;
}

/* ------------------------------------------------------------------ */

Test (install, tree)
{
  /* Exactly the expected files, links and modes; copies of the sources. */
  wants_build ();
  struct entry *got;
  size_t n;
  walk (dest, &got, &n);
  for (size_t i = 0; i < n; i++)
    {
      struct want *w = NULL;
      for (size_t k = 0; k < n_wants && !w; k++)
        if (strcmp (wants[k].rel, got[i].rel) == 0)
          w = &wants[k];
      cr_expect_not_null (w, "make install put %s there, which is not expected", got[i].rel);
      if (!w)
        continue;
      w->seen = true;
      if (w->target)
        {
          cr_expect_eq (got[i].type, 'l', "%s: not a symbolic link", got[i].rel);
          cr_expect_str_eq (got[i].target ?: "", w->target, "%s: a link to %s, want %s (relative)", got[i].rel,
                            got[i].target, w->target);
          continue;
        }
      cr_expect_eq (got[i].type, 'f', "%s: not a regular file", got[i].rel);
      cr_expect_eq (got[i].mode, w->mode, "%s: mode %04o, want %04o", got[i].rel, got[i].mode, w->mode);
      if (w->source)
        {
          char *path = tu_fmt ("%s/%s", dest, got[i].rel);
          cr_expect (same_content (path, w->source), "%s differs from %s", path, w->source);
          free (path);
        }
    }
  for (size_t k = 0; k < n_wants; k++)
    cr_expect (wants[k].seen, "make install did not install %s", wants[k].rel);
  entries_free (got, n);
  wants_free ();
}

Test (install, binary_and_personalities)
{
  char *avm = tu_fmt ("%s/usr/bin/avm", dest), *start_avm = tu_fmt ("%s/usr/bin/start-avm", dest);
  char *cvd2img = tu_fmt ("%s/usr/bin/cvd2img", dest);
  char *out = NULL, *err = NULL, *ref = NULL;

  /* The version of this build.  */
  char *v1[] = { avm, "--version", NULL }, *v2[] = { (char *) tu_avm_bin (), "--version", NULL };
  cr_assert_eq (tu_run (v1, NULL, &out, &err), 0, "%s --version: %s", avm, err);
  free (err);
  cr_assert_eq (tu_run (v2, NULL, &ref, &err), 0);
  free (err);
  cr_expect_str_eq (out, ref, "the installed avm says %s, the build %s", out, ref);
  free (out);
  free (ref);

  /* cvd2img: the personality.  */
  char *c[] = { cvd2img, "--help", NULL };
  cr_assert_eq (tu_run (c, NULL, &out, &err), 0, "%s --help: %s", cvd2img, err);
  cr_expect (strncmp (out, "Usage: cvd2img ", 15) == 0, "installed cvd2img --help:\n%s", out);
  free (out);
  free (err);

  /* start-avm: what a start-avm link to this build's avm does.  */
  char *dir = tu_tmpdir (), *link = tu_fmt ("%s/start-avm", dir), abs[4096];
  cr_assert_not_null (realpath (tu_avm_bin (), abs));
  cr_assert_eq (symlink (abs, link), 0);
  char *s1[] = { start_avm, "--help", NULL }, *s2[] = { link, "--help", NULL };
  int rc = tu_run (s1, NULL, &out, &err);
  cr_assert_eq (rc, 0, "%s --help: exit %d\n%s", start_avm, rc, err);
  free (err);
  cr_assert_eq (tu_run (s2, NULL, &ref, &err), 0);
  free (err);
  cr_expect_str_eq (out, ref, "installed start-avm --help differs from the build's");
  cr_expect (strstr (out, "start-avm") || strstr (out, "Usage: avm"), "start-avm --help:\n%s", out);
  free (out);
  free (ref);
  tu_rmtree (dir);
  free (dir);
  free (link);
  free (avm);
  free (start_avm);
  free (cvd2img);
}

Test (install, finds_installed_profiles)
{
  /* The installed avm finds DEST/usr/share/avm/profiles next to itself:
     no AVM_DATA_DIR, no per-user profiles.  */
  char *avm = tu_fmt ("%s/usr/bin/avm", dest), *tmp = tu_tmpdir ();
  char *conf = tu_fmt ("XDG_CONFIG_HOME=%s/config", tmp), *cache = tu_fmt ("XDG_CACHE_HOME=%s/cache", tmp);
  char *run = tu_fmt ("AVM_RUNTIME_DIR=%s/run", tmp);
  char *env[] = { "AVM_DATA_DIR", "AVM_PROFILE", conf, cache, run, NULL };
  char *pdir = tu_fmt ("%s/usr/share/avm/profiles/", dest);
  char *out = NULL, *err = NULL;

  char *list[] = { avm, "profiles", "list", "--json", NULL };
  cr_assert_eq (tu_run (list, env, &out, &err), 0, "%s profiles list: %s", avm, err);
  json_t *l = json_loads (out, 0, NULL);
  cr_assert_not_null (l, "profiles list --json:\n%s", out);
  size_t i, found = 0;
  json_t *e;
  json_array_foreach (l, i, e)
    {
      const char *path = json_string_value (json_object_get (e, "path"));
      if (strncmp (path, "/etc/avm/profiles/", 18) == 0)
        continue; /* this host's own */
      cr_expect (strncmp (path, pdir, strlen (pdir)) == 0, "the installed avm lists %s", path);
      found++;
    }
  wants_build ();
  size_t shipped = 0;
  for (size_t k = 0; k < n_wants; k++)
    shipped += strncmp (wants[k].rel, "usr/share/avm/profiles/", 23) == 0;
  wants_free ();
  cr_expect_eq (found, shipped, "the installed avm lists %zu profiles, %zu are installed", found, shipped);
  json_decref (l);
  free (out);
  free (err);

  /* A dry run of the demo with the installed profile.  */
  char *images = tu_fmt ("%s/images", tmp);
  char *dry[] = { avm, "start", "--dry-run", "--json", "-p", "demo", "--images", images, NULL };
  cr_assert_eq (tu_run (dry, env, &out, &err), 0, "%s start --dry-run -p demo: %s", avm, err);
  json_t *plan = json_loads (out, 0, NULL);
  cr_assert_not_null (plan);
  char *want = tu_fmt ("%sdemo.json", pdir);
  cr_expect_str_eq (json_string_value (json_object_get (plan, "profile_path")), want);
  json_decref (plan);
  free (out);
  free (err);
  char *text[] = { avm, "start", "-n", "-p", "demo", "--images", images, NULL };
  cr_assert_eq (tu_run (text, env, &out, &err), 0, "%s start -n -p demo: %s", avm, err);
  cr_expect (strstr (out, "profile demo") && strstr (out, "qemu-system-"), "dry run:\n%s", out);
  free (out);
  free (err);

  free (want);
  free (images);
  free (pdir);
  free (run);
  free (cache);
  free (conf);
  free (avm);
  tu_rmtree (tmp);
  free (tmp);
}

/* The profile directories a lone copy of BIN (nothing next to it) searches,
   from the error message for a profile that does not exist.  */
static char *
compiled_in_dirs (const char *bin)
{
  char *tmp = tu_tmpdir (), *copy = tu_fmt ("%s/avm", tmp);
  char *cp[] = { "cp", (char *) bin, copy, NULL };
  cr_assert_eq (tu_run (cp, NULL, NULL, NULL), 0);
  char *conf = tu_fmt ("XDG_CONFIG_HOME=%s/config", tmp);
  char *env[] = { "AVM_DATA_DIR", conf, NULL };
  char *argv[] = { copy, "start", "-n", "-p", "no-such-profile", NULL };
  char *out = NULL, *err = NULL;
  cr_assert_eq (tu_run (argv, env, &out, &err), 2, "%s", err);
  const char *p = strstr (err, "(searched ");
  cr_assert_not_null (p, "no searched directories in: %s", err);
  char *dirs = strndup (p, strcspn (p, ")"));
  free (out);
  free (err);
  free (conf);
  free (copy);
  tu_rmtree (tmp);
  free (tmp);
  return dirs;
}

Test (install, datadir_follows_prefix)
{
  /* Built with PREFIX=/usr: /usr/share/avm when not relocatable.  */
  char *bin = tu_fmt ("%s/usr/bin/avm", dest);
  char *dirs = compiled_in_dirs (bin);
  cr_expect (strncmp (dirs, "(searched /usr/share/avm/profiles,", 34) == 0, "PREFIX=/usr build: %s", dirs);
  free (dirs);
  free (bin);

  /* Another PREFIX on the same build directory: rebuilt and relinked, not
     merely copied; the same PREFIX again: copied only.  */
  lock_shared ();
  char *dest2 = tu_fmt ("%s/dest-opt", shared);
  char *out = make (build, dest2, "/opt/avm", "install");
  cr_expect (strstr (out, "lib/profile/profile.c") != NULL, "PREFIX changed, profile.c not recompiled:\n%s", out);
  free (out);
  out = make (build, dest2, "/opt/avm", "install");
  cr_expect (strstr (out, " -c ") == NULL && strstr (out, " -o ") == NULL,
             "the same PREFIX again rebuilt something:\n%s", out);
  free (out);
  unlock_shared ();
  bin = tu_fmt ("%s/opt/avm/bin/avm", dest2);
  dirs = compiled_in_dirs (bin);
  cr_expect (strncmp (dirs, "(searched /opt/avm/share/avm/profiles,", 38) == 0, "PREFIX=/opt/avm build: %s", dirs);
  free (dirs);
  free (bin);
  tu_rmtree (dest2);
  free (dest2);
}

Test (install, man_pages)
{
  /* Every installed page renders with man -l, and man finds them by name
     in the installed tree.  */
  char *mandir = tu_fmt ("%s/usr/share/man", dest);
  char *env[] = { "MANPAGER=cat", "PAGER=cat", "MANWIDTH=80", "LC_ALL=C.UTF-8", "MANOPT", NULL };
  wants_build ();
  size_t pages = 0;
  for (size_t k = 0; k < n_wants; k++)
    {
      if (strncmp (wants[k].rel, "usr/share/man/", 14) != 0)
        continue;
      char *path = tu_fmt ("%s/%s", dest, wants[k].rel);
      char *argv[] = { "man", "-l", path, NULL };
      char *out = NULL, *err = NULL;
      int rc = tu_run (argv, env, &out, &err);
      cr_expect_eq (rc, 0, "man -l %s: exit %d\n%s", path, rc, err);
      cr_expect (strstr (out, "NAME") && strstr (out, "DESCRIPTION"), "man -l %s rendered:\n%.400s", path, out);
      free (out);
      free (err);
      free (path);
      pages++;
    }
  wants_free ();
  cr_expect_geq (pages, 9);
  const char *names[][2] = { { "1", "avm" }, { "1", "avm-start" }, { "5", "avm-profile" } };
  for (size_t i = 0; i < 3; i++)
    {
      char *argv[] = { "man", "-M", mandir, (char *) names[i][0], (char *) names[i][1], NULL };
      char *out = NULL, *err = NULL;
      int rc = tu_run (argv, env, &out, &err);
      cr_expect_eq (rc, 0, "man -M %s %s %s: exit %d\n%s", mandir, names[i][0], names[i][1], rc, err);
      free (out);
      free (err);
    }
  free (mandir);
}

Test (install, completion_with_installed_avm)
{
  /* The installed completion, run by bash for the installed avm: the
     installed profiles complete.  */
  char *file = tu_fmt ("%s/usr/share/bash-completion/completions/avm", dest);
  char *avm = tu_fmt ("%s/usr/bin/avm", dest), *tmp = tu_tmpdir ();
  char *conf = tu_fmt ("XDG_CONFIG_HOME=%s/config", tmp);
  char *env[] = { "AVM_DATA_DIR", conf, NULL };
  static const char script[] = "source \"$1\" || exit 1\n"
                               "COMP_WORDS=(\"$2\" start -p '') COMP_CWORD=3\n"
                               "_avm \"$2\" '' -p || exit 1\n"
                               "printf '%s\\n' \"${COMPREPLY[@]}\"\n"
                               "complete -p avm start-avm cvd2img\n";
  char *argv[] = { "bash", "--norc", "--noprofile", "-c", (char *) script, "bash", file, avm, NULL };
  char *out = NULL, *err = NULL;
  int rc = tu_run (argv, env, &out, &err);
  cr_assert_eq (rc, 0, "bash: exit %d\n%s", rc, err);
  wants_build ();
  for (size_t k = 0; k < n_wants; k++)
    if (strncmp (wants[k].rel, "usr/share/avm/profiles/", 23) == 0)
      {
        char *name = strdup (wants[k].rel + 23);
        name[strlen (name) - 5] = '\0';
        char *line = tu_fmt ("\n%s\n", name);
        cr_expect (strstr (out, line) || strncmp (out, line + 1, strlen (line) - 1) == 0,
                   "avm start -p <TAB> lacks %s:\n%s", name, out);
        free (line);
        free (name);
      }
  wants_free ();
  cr_expect (strstr (out, "complete -F _avm avm") && strstr (out, "complete -F _avm_start_avm start-avm")
                 && strstr (out, "complete -F _avm_cvd2img_compat cvd2img"),
             "completions registered:\n%s", out);
  free (out);
  free (err);
  free (conf);
  free (avm);
  free (file);
  tu_rmtree (tmp);
  free (tmp);
}

Test (install, uninstall)
{
  /* Install into a tree of its own, add files of the host's, uninstall:
     only the host's files are left, and of avm's directories only the one
     that still holds a host file.  */
  char *d = tu_fmt ("%s/dest-uninstall-%d", shared, (int) getpid ());
  lock_shared ();
  free (make (build, d, PREFIX, "install"));
  unlock_shared ();
  char *bin = tu_fmt ("%s/usr/bin", d), *share = tu_fmt ("%s/usr/share", d);
  free (tu_write (bin, "other-tool", "#!/bin/sh\n"));
  free (tu_write (share, "other.txt", "x\n"));

  struct entry *got;
  size_t n;
  walk (d, &got, &n);
  cr_assert_geq (n, 20, "only %zu files installed", n);
  entries_free (got, n);

  lock_shared ();
  free (make (build, d, PREFIX, "uninstall"));
  unlock_shared ();
  walk (d, &got, &n);
  cr_expect_eq (n, 2, "make uninstall left %zu files (want the 2 of the host)", n);
  for (size_t i = 0; i < n; i++)
    cr_expect (strcmp (got[i].rel, "usr/bin/other-tool") == 0 || strcmp (got[i].rel, "usr/share/other.txt") == 0,
               "make uninstall left %s", got[i].rel);
  entries_free (got, n);
  char *avmdir = tu_fmt ("%s/usr/share/avm", d);
  struct stat st;
  cr_expect (lstat (avmdir, &st) < 0 && errno == ENOENT, "make uninstall left %s", avmdir);
  free (avmdir);

  /* A profile added by hand keeps its directory, and uninstall succeeds. */
  lock_shared ();
  free (make (build, d, PREFIX, "install"));
  char *pdir = tu_fmt ("%s/usr/share/avm/profiles", d);
  free (tu_write (pdir, "local.json", "{}\n"));
  free (make (build, d, PREFIX, "uninstall"));
  unlock_shared ();
  walk (d, &got, &n);
  cr_expect_eq (n, 3, "make uninstall left %zu files (want the 3 of the host)", n);
  entries_free (got, n);
  char *local = tu_fmt ("%s/local.json", pdir);
  cr_expect_eq (access (local, F_OK), 0, "make uninstall removed %s", local);
  free (local);
  free (pdir);
  free (bin);
  free (share);
  tu_rmtree (d);
  free (d);
}

/* Issue 15: quadlet never reads /usr/local/share/containers/systemd: with
   any PREFIX but /usr the quadlets go to /etc/containers/systemd, where it
   looks (and uninstall removes them from there).  */
Test (install, quadlets_where_quadlet_reads_them)
{
  static const char *const prefixes[][2] = { { "/usr/local", "/etc/containers/systemd" },
                                             { "/opt/avm", "/etc/containers/systemd" },
                                             { "/usr", "/usr/share/containers/systemd" } };
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
    {
      char *p = tu_fmt ("PREFIX=%s", prefixes[i][0]), *want = tu_fmt ("/x%s/", prefixes[i][1]);
      char *targets[] = { "install", "uninstall" };
      for (size_t t = 0; t < 2; t++)
        {
          /* make -n: the commands, nothing built or installed.  */
          char *argv[] = { "make", "-n", "-C", (char *) tu_srcdir (), "DESTDIR=/x", p, targets[t], NULL };
          char *out = NULL, *err = NULL;
          cr_assert_eq (tu_run (argv, make_env, &out, &err), 0, "%s", err);
          cr_expect (strstr (out, want), "make %s %s: quadlets not in %s:\n%s", p, targets[t], want, out);
          cr_expect (!strstr (out, "local/share/containers"), "make %s %s:\n%s", p, targets[t], out);
          free (out);
          free (err);
        }
      free (p);
      free (want);
    }
}

/* Issue 15: the demo's images, once built, are installed with the rest, so
   that `avm start -p demo` works from the installed tree (paths.images
   lists PREFIX/share/avm/demo first); uninstall removes them.  A stand-in
   image directory: what is checked is where the files go.  */
Test (install, demo_images_when_built)
{
  char *d = tu_fmt ("%s/dest-demo-%d", shared, (int) getpid ()),
       *img = tu_fmt ("%s/demo-image-%d", shared, (int) getpid ());
  char *share = tu_fmt ("%s/share", img);
  free (tu_write (img, "vmlinuz", "kernel"));
  free (tu_write (img, "initramfs.cpio.gz", "initramfs"));
  free (tu_write (img, "data.img", "disk"));
  free (tu_write (share, "hello.txt", "hello"));
  char *demo_dir = tu_fmt ("DEMO_DIR=%s", img);
  lock_shared ();
  free (make_with (build, d, PREFIX, "install", demo_dir));
  unlock_shared ();
  const char *files[] = { "vmlinuz", "initramfs.cpio.gz", "data.img", "share/hello.txt" };
  for (size_t i = 0; i < 4; i++)
    {
      char *f = tu_fmt ("%s/usr/share/avm/demo/%s", d, files[i]);
      struct stat st;
      cr_expect (stat (f, &st) == 0 && (st.st_mode & 07777) == 0644, "%s not installed (0644)", f);
      free (f);
    }

  char *avm = tu_fmt ("%s/usr/bin/avm", d), *tmp = tu_tmpdir ();
  char *conf = tu_fmt ("XDG_CONFIG_HOME=%s/config", tmp), *cache = tu_fmt ("XDG_CACHE_HOME=%s/cache", tmp);
  char *env[] = { "AVM_DATA_DIR", "AVM_PROFILE", conf, cache, NULL };
  char *caps = tu_fmt ("%s/tests/data/caps-qemu-10.0-x86_64.json", tu_srcdir ());
  char *argv[] = { avm, "start", "--dry-run", "-p", "demo", "--caps", caps, "--set", "machine.accel=tcg", NULL };
  char *out = NULL, *err = NULL;
  cr_assert_eq (tu_run (argv, env, &out, &err), 0, "%s", err);
  char *want = tu_fmt ("-kernel %s/usr/share/avm/demo/vmlinuz", d);
  cr_expect (strstr (out, want), "the installed demo does not boot %s:\n%s", want, out);
  cr_expect_null (strstr (err, "does not exist"), "%s", err);
  free (out);
  free (err);

  lock_shared ();
  free (make_with (build, d, PREFIX, "uninstall", demo_dir));
  unlock_shared ();
  char *avmdir = tu_fmt ("%s/usr/share/avm", d);
  struct stat st;
  cr_expect (lstat (avmdir, &st) < 0 && errno == ENOENT, "make uninstall left %s", avmdir);
  free (avmdir);
  free (want);
  free (caps);
  free (conf);
  free (cache);
  free (avm);
  tu_rmtree (tmp);
  free (tmp);
  tu_rmtree (d);
  tu_rmtree (img);
  free (demo_dir);
  free (share);
  free (img);
  free (d);
}
