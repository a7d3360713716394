/* SPDX-License-Identifier: Apache-2.0 */
/*
 * avm cvd2img (suite cvd2img), its command line: the slp/cvd2img
 * compatibility (avm invoked through a link named cvd2img) and the progress
 * display.  See test_cvd2img.c.
 */
#include "cvd2imgutil.h"

static char *
compat_link (void)
{
  _cleanup_free_ char *bin = tpath ("bin");
  fx_mkdirs (bin);
  char *link = fx_join (bin, "cvd2img");
  char abs[PATH_MAX];
  cr_assert_not_null (realpath (tu_avm_bin (), abs), "%s: %s", tu_avm_bin (), strerror (errno));
  cr_assert_eq (symlink (abs, link), 0);
  return link;
}

/* Run the compat personality with ARGS in directory CWD (chdir in this
   worker process; restored afterwards).  */
static int
compat_run (const char *link, const char *cwd, char *const args[], char **out, char **err)
{
  char *argv[16];
  size_t n = 0;
  argv[n++] = (char *) link;
  for (size_t i = 0; args[i]; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  char saved[PATH_MAX];
  cr_assert_not_null (getcwd (saved, sizeof saved));
  cr_assert_eq (chdir (cwd), 0);
  int rc = tu_run (argv, hermetic_vars (), out, err);
  cr_assert_eq (chdir (saved), 0);
  return rc;
}

/* -s/-p/-v name the three disks, wherever the command runs.  */
Test (cvd2img, compat_paths)
{
  _cleanup_free_ char *link = compat_link (), *cvd = fx_path ("cvd"), *cwd = tpath ("cwd"), *dst = tpath ("dst");
  _cleanup_free_ char *S = fx_join (dst, "S.img"), *P = fx_join (dst, "P.img"), *V = fx_join (dst, "V.img");
  _cleanup_free_ char *bl = fx_path ("cvd/" BL_X86);
  fx_mkdirs (cwd);
  fx_mkdirs (dst);
  char *o = NULL, *e = NULL;
  int rc = compat_run (link, cwd, (char *[]) { "-a", "x86-64", "-s", S, "-p", P, "-v", V, cvd, NULL }, &o, &e);
  cr_assert_eq (rc, 0, "cvd2img exited %d: %s%s", rc, o, e);
  cr_assert_str_empty (o);
  /* the disks by their paths, named as given */
  _cleanup_free_ char *want = NULL;
  cr_assert (asprintf (&want, "cvd2img: wrote %s (", S) > 0);
  expect_summary (e, want);
  cr_assert_not_null (strstr (e, "), P.img, V.img, bootloader, avb_key.pem, android-info.txt and manifest.json in "),
                      "%s", e);
  free (o);
  free (e);
  struct ctx c;
  struct disk ds, dp, dv;
  ctx_init (&c, cvd, "x86_64", bl);
  check_system (&c, S, &ds);
  char *bc = check_props (&c, P, &dp), *bcv = check_props (&c, V, &dv);
  assert_line (bc, "androidboot.hardware.egl=angle", P);
  assert_line (bcv, "androidboot.hardware.egl=mesa", V);
  free (bc);
  free (bcv);
  ctx_free (&c);
  /* slp/cvd2img's outputs: no host package tree (it is run in the image
     directory, which has one).  */
  const char *names[] = { "S.img", "P.img", "V.img", "bootloader", "manifest.json", "avb_key.pem", "android-info.txt" };
  check_dir_entries (dst, names, 7);
  /* bootloader and manifest.json go next to the system disk, never into
     the current directory.  */
  DIR *d = opendir (cwd);
  struct dirent *ent;
  char found[1024] = "";
  while ((ent = readdir (d)))
    if (!streq (ent->d_name, ".") && !streq (ent->d_name, "..") && strlen (found) < 512)
      snprintf (found + strlen (found), sizeof found - strlen (found), " %.255s", ent->d_name);
  closedir (d);
  cr_expect_str_empty (found,
                       "`cvd2img -s DIR/S.img -p DIR/P.img -v DIR/V.img CVD` wrote%s into the current directory "
                       "instead of next to the disks",
                       found);
}

/* Without -s/-p/-v the disks are named as slp/cvd2img names them, in the
   current directory.  */
Test (cvd2img, compat_defaults)
{
  _cleanup_free_ char *link = compat_link (), *cvd = fx_path ("cvd"), *cwd = tpath ("cwd");
  _cleanup_free_ char *bl = fx_path ("cvd/" BL_X86);
  fx_mkdirs (cwd);
  char *o = NULL, *e = NULL;
  int rc = compat_run (link, cwd, (char *[]) { "-a", "x86-64", cvd, NULL }, &o, &e);
  cr_assert_eq (rc, 0, "cvd2img exited %d: %s%s", rc, o, e);
  cr_assert_str_empty (o);
  expect_summary (e, "cvd2img: wrote ./system.img (");
  free (o);
  free (e);
  struct ctx c;
  struct result r;
  ctx_init (&c, cvd, "x86_64", bl);
  c.tree = false;
  check_all (&c, cwd, &r);
  result_free (&r);
  ctx_free (&c);
}

Test (cvd2img, compat_help)
{
  _cleanup_free_ char *link = compat_link (), *cwd = tpath ("cwd");
  fx_mkdirs (cwd);
  char *o = NULL, *e = NULL;
  int rc = compat_run (link, cwd, (char *[]) { "--help", NULL }, &o, &e);
  cr_assert_eq (rc, 0, "%s", e);
  cr_assert (starts_with (o, "Usage: cvd2img "), "%s", o);
  const char *const opts[] = { "-a, --arch", "-s, --system", "-p, --props", "-v, --virgl-props" };
  for (size_t i = 0; i < ARRAY_SIZE (opts); i++)
    cr_assert_not_null (strstr (o, opts[i]), "cvd2img --help lacks %s:\n%s", opts[i], o);
  free (o);
  free (e);
  /* and an unknown option is a usage error */
  rc = compat_run (link, cwd, (char *[]) { "-o", "x", "y", NULL }, &o, &e);
  cr_assert_eq (rc, 2, "cvd2img -o: exit %d", rc);
  free (o);
  free (e);
}

/* The personality's messages start with the name the user typed, and
   point to its own help, never to "avm cvd2img" (issue 15): usage errors,
   bad input found by the conversion, a runtime failure.  */
static void
expect_compat_error (const char *e, const char *needle)
{
  size_t len = strlen (e);
  cr_assert (len > 0 && e[len - 1] == '\n' && strchr (e, '\n') == e + len - 1, "not one line:\n%s", e);
  cr_assert (starts_with (e, "cvd2img: "), "%s", e);
  cr_assert_null (strstr (e, "avm cvd2img"), "%s", e);
  cr_assert_null (strstr (e, "avm:"), "%s", e);
  cr_assert_not_null (strstr (e, needle), "no \"%s\" in: %s", needle, e);
}

Test (cvd2img, compat_messages)
{
  _cleanup_free_ char *link = compat_link (), *cwd = tpath ("cwd"), *cvd = clone_cvd ("cvd", "boot.img");
  fx_mkdirs (cwd);
  char *o = NULL, *e = NULL;
  int rc = compat_run (link, cwd, (char *[]) { "--bogus", cvd, NULL }, &o, &e);
  cr_assert_eq (rc, 2, "exit %d: %s", rc, e);
  expect_compat_error (e, "(see 'cvd2img --help')");
  free (o);
  free (e);
  rc = compat_run (link, cwd, (char *[]) { "-a", "sparc", cvd, NULL }, &o, &e);
  cr_assert_eq (rc, 2, "exit %d: %s", rc, e);
  expect_compat_error (e, "(see 'cvd2img --help')");
  free (o);
  free (e);
  rc = compat_run (link, cwd, (char *[]) { "-a", "x86-64", cvd, NULL }, &o, &e);
  cr_assert_eq (rc, 2, "exit %d: %s", rc, e);
  expect_compat_error (e, "boot.img");
  free (o);
  free (e);
  /* a runtime failure: another conversion holds the directory */
  _cleanup_free_ char *full = fx_path ("cvd");
  int fd = open (cwd, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cr_assert (fd >= 0 && flock (fd, LOCK_EX) == 0);
  rc = compat_run (link, cwd, (char *[]) { "-a", "x86-64", full, NULL }, &o, &e);
  close (fd);
  cr_assert_eq (rc, 1, "exit %d: %s", rc, e);
  expect_compat_error (e, "another conversion is writing there");
  free (o);
  free (e);
  /* its help says how it exits */
  rc = compat_run (link, cwd, (char *[]) { "--help", NULL }, &o, &e);
  cr_assert_eq (rc, 0);
  cr_assert_not_null (strstr (o, "Exit status: 0 success, 1 runtime failure, 2 bad usage or bad input"), "%s", o);
  free (o);
  free (e);
}

/* ------------------------------------------------------------------ */
/* Progress: a bar on a terminal, nothing with -q.  */

static char *
run_on_pty (char *const args[], int *rc)
{
  char *argv[16];
  size_t n = 0;
  argv[n++] = (char *) tu_avm_bin ();
  for (size_t i = 0; args[i]; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  char **env = avm_env ();
  char *out = tu_run_on_pty (argv, env, rc);
  free (env);
  return out;
}

Test (cvd2img, progress_on_terminal)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out"), *outq = tpath ("outq");
  int rc;
  _cleanup_free_ char *bar = run_on_pty ((char *[]) { "cvd2img", "-o", out, cvd, NULL }, &rc);
  cr_assert_eq (rc, 0, "%s", bar);
  cr_assert_not_null (strstr (bar, "100%"), "no progress bar on a terminal: \"%s\"", bar);
  cr_assert_not_null (strstr (bar, "\r["), "\"%s\"", bar);
  /* then, on a line of its own, what was written */
  const char *sum = strstr (bar, "\navm cvd2img: wrote ");
  cr_assert_not_null (sum, "no summary after the bar: \"%s\"", bar);
  /* the terminal's line discipline ends it with \r\n; nothing redraws it */
  cr_assert (strchr (sum + 1, '\r') == sum + strcspn (sum, "\r") && strchr (sum + 1, '\r')[1] == '\n', "\"%s\"", bar);
  _cleanup_free_ char *quiet = run_on_pty ((char *[]) { "cvd2img", "-q", "-o", outq, cvd, NULL }, &rc);
  cr_assert_eq (rc, 0, "%s", quiet);
  cr_assert_str_empty (quiet, "-q still draws: \"%s\"", quiet);
}

/* Not on a terminal (a log, CI, a pipe): no bar, but one line says what
   was written, where, and how long it took (issue 15: nothing at all);
   -q: nothing.  */
Test (cvd2img, summary_when_not_on_terminal)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out"), *outq = tpath ("outq");
  char *o = NULL, *e = NULL;
  int rc = tu_avmv ((char *[]) { "cvd2img", "-o", out, cvd, NULL }, &o, &e);
  cr_assert_eq (rc, 0, "exit %d: %s", rc, e);
  cr_assert_str_empty (o);
  _cleanup_free_ char *want = NULL;
  cr_assert (asprintf (&want, "avm cvd2img: wrote %s/system.img (", out) > 0);
  expect_summary (e, want);
  char *p = e + strlen (want);
  cr_assert (strchr ("0123456789", *p), "no size: %s", e);
  cr_assert_not_null (strstr (p, " partitions), properties.img, properties_virgl.img, bootloader, avb_key.pem, "
                                 "android-info.txt, the host package ("),
                      "%s", e);
  cr_assert_not_null (strstr (p, " entries, "), "%s", e);
  cr_assert_not_null (strstr (p, ") and manifest.json in "), "%s", e);
  cr_assert_null (strchr (e, '\r'), "a progress bar where there is no terminal: %s", e);
  free (o);
  free (e);
  rc = tu_avmv ((char *[]) { "cvd2img", "-q", "-o", outq, cvd, NULL }, &o, &e);
  cr_assert_eq (rc, 0, "exit %d: %s", rc, e);
  cr_assert_str_empty (e, "-q: %s", e);
  free (o);
  free (e);
}

/* ------------------------------------------------------------------ */
/* The output set is replaced whole (issue 15: a SIGINT or SIGTERM during
   the final renames left the new system.img next to the old manifest,
   properties disks, bootloader and key, and avm inspect called that
   sound).  */
