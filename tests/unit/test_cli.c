/* SPDX-License-Identifier: Apache-2.0 */
/* The command line: exit codes, one-line errors, help, profiles commands. */
#include "testutil.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define assert_contains(hay, needle) cr_assert (strstr ((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))

static int
avm (char **out, char **err, const char *a, const char *b, const char *c, const char *d)
{
  char *args[] = { (char *) a, (char *) b, (char *) c, (char *) d, NULL };
  return tu_avmv (args, out, err);
}

static void
expect (int code, const char *needle, const char *a, const char *b, const char *c, const char *d)
{
  char *out = NULL, *err = NULL;
  int r = avm (&out, &err, a, b, c, d);
  cr_assert_eq (r, code, "avm %s %s: exit %d, want %d\n%s", a ?: "", b ?: "", r, code, err);
  if (needle)
    {
      char *hay = code == 0 ? out : err;
      assert_contains (hay, needle);
    }
  if (code == 2 && err)
    {
      /* Usage errors are one line.  */
      size_t lines = 0;
      for (char *p = err; *p; p++)
        lines += *p == '\n';
      cr_assert_eq (lines, 1, "usage error should be one line:\n%s", err);
    }
  free (out);
  free (err);
}

Test (cli, exit_codes_and_messages)
{
  expect (2, "avm: missing command", NULL, NULL, NULL, NULL);
  expect (2, "avm: unknown command \"frobnicate\"", "frobnicate", NULL, NULL, NULL);
  expect (2, "avm start: unknown option '--bogus'", "start", "--bogus", NULL, NULL);
  expect (2, "avm start: option --profile needs an argument", "start", "-n", "--profile", NULL);
  expect (2, "avm check: unknown option '-z'", "check", "-z", NULL, NULL);
  expect (2, "avm start: unexpected argument \"extra\"", "start", "-n", "extra", NULL);
  expect (2, "--json goes with --dry-run", "start", "--json", NULL, NULL);
  expect (2, "--instance 0: expected an integer 1..64", "start", "-n", "--instance", "0");
  expect (2, "--set x: expected PATH=VALUE", "start", "-n", "--set", "x");
  expect (2, "profile \"nope\" not found", "start", "-n", "-p", "nope");
  expect (2, "profile /nonexistent.json: No such file", "start", "-n", "-p", "/nonexistent.json");
  expect (0, "avm 0.", "--version", NULL, NULL, NULL);
  expect (0, "Usage: avm start", "start", "--help", NULL, NULL);
  expect (0, "Usage: avm check", "help", "check", NULL, NULL);
  expect (2, "help: unknown command", "help", "nope", NULL, NULL);
  expect (2, "unknown subcommand \"lst\"", "profiles", "lst", NULL, NULL);
}

Test (cli, help_command_equals_option)
{
  char *a = NULL, *b = NULL;
  cr_assert_eq (avm (&a, NULL, "help", "start", NULL, NULL), 0);
  cr_assert_eq (avm (&b, NULL, "start", "--help", NULL, NULL), 0);
  cr_assert_str_eq (a, b);
  free (a);
  free (b);
}

Test (cli, real_start_is_refused_clearly)
{
  /* Missing files are errors in a real start (warnings in a dry run).  */
  char *out = NULL, *err = NULL;
  char *args[] = { "start", "-p", "demo", "--set", "machine.accel=tcg", "--images", "/nonexistent", NULL };
  int r = tu_avmv (args, &out, &err);
  cr_assert_eq (r, 2, "%s", err);
  /* Said once for the directory, not for each file in it.  */
  cr_assert_str_eq (err, "avm: images directory /nonexistent does not exist (--images)\n");
  free (out);
  free (err);
  char *dry[] = { "start", "-n", "-p", "demo", "--set", "machine.accel=tcg", "--images", "/nonexistent", NULL };
  r = tu_avmv (dry, &out, &err);
  cr_assert_eq (r, 0, "%s", err);
  assert_contains (err, "avm: warning: images directory /nonexistent does not exist (--images)\n");
  cr_assert_null (strstr (err, "vmlinuz"), "%s", err);
  free (out);
  free (err);
  /* Missing helper programs are named all at once, critical ones first
     (this message once used freed memory).  */
  char *helpers[] = { "start", "-p", "aaos-x86_64", "--set", "machine.accel=tcg", "--images", "/nonexistent", NULL };
  r = tu_avmv (helpers, &out, &err);
  cr_assert_eq (r, 1, "%s", err);
  assert_contains (err, "critical services cannot start: kernel_log_monitor, secure_env; and, not critical: "
                        "logcat_receiver,");
  assert_contains (err, "(searched /nonexistent/bin:");
  cr_assert_eq (strchr (err, '\n'), err + strlen (err) - 1, "not one line: %s", err);
  free (out);
  free (err);
  /* Start options are checked before anything starts.  */
  char *args2[] = { "start", "-p", "demo", "--log-target", "syslog", NULL };
  r = tu_avmv (args2, &out, &err);
  cr_assert_eq (r, 2, "%s", err);
  assert_contains (err, "--log-target syslog: expected auto, file or journal");
  free (out);
  free (err);
  char *args3[] = { "start", "-p", "demo", "--json", NULL };
  r = tu_avmv (args3, &out, &err);
  cr_assert_eq (r, 2, "%s", err);
  assert_contains (err, "--json goes with --dry-run");
  free (out);
  free (err);
}

Test (cli, bad_profile_exits_2_with_file_and_path)
{
  char *dir = tu_tmpdir ();
  char *path = tu_write (dir, "bad.json", "{\"machine\": {\"cpus\": \"lots\"}}");
  char *out = NULL, *err = NULL;
  int r = avm (&out, &err, "start", "-n", "-p", path);
  cr_assert_eq (r, 2);
  assert_contains (err, "bad.json: machine.cpus: expected integer 1..256, got \"lots\"");
  cr_assert_str_eq (out, "");
  free (out);
  free (err);
  free (tu_write (dir, "broken.json", "{\n\"a\": }"));
  free (path);
  cr_assert (asprintf (&path, "%s/broken.json", dir) > 0);
  r = avm (&out, &err, "profiles", "show", path, NULL);
  cr_assert_eq (r, 2);
  assert_contains (err, "broken.json:2:");
  free (out);
  free (err);
  free (path);
  tu_rmtree (dir);
  free (dir);
}

/* The plan's checks name the --set that caused a problem, and say that the
   profile was changed by them otherwise, instead of blaming the file
   (issue 15).  */
Test (cli, plan_problems_name_the_set)
{
  char *out = NULL, *err = NULL;
  char *a1[] = { "start", "-n", "-p", "demo", "--set", "machine.type=virt", NULL };
  cr_assert_eq (tu_avmv (a1, &out, &err), 2, "%s", err);
  assert_contains (err, "avm: --set machine.type=virt: machine.type: virt is an aarch64 machine");
  cr_assert_null (strstr (err, "demo.json"), "%s", err);
  free (out);
  free (err);
  char *a2[] = { "start", "-n", "-p", "demo", "--set", "consoles.ports[0].name=report", NULL };
  cr_assert_eq (tu_avmv (a2, &out, &err), 2, "%s", err);
  assert_contains (err, "demo.json (with --set consoles.ports[0].name=report): consoles.ports[1]");
  free (out);
  free (err);
}

/* Paths, names and values from the command line are shown with their
   control characters escaped, never sent to the terminal raw (issue 15).  */
Test (cli, escape_sequences_in_messages_are_shown_not_sent)
{
  char *dir = tu_tmpdir (), *path = NULL, *out = NULL, *err = NULL;
  cr_assert (asprintf (&path, "%s/\033[31mred\033]0;title\a.json", dir) > 0);
  free (tu_write (dir, "\033[31mred\033]0;title\a.json", "{\"machine\": {\"cpus\": \"lots\"}}"));
  char *a1[] = { "start", "-n", "-p", path, NULL };
  cr_assert_eq (tu_avmv (a1, &out, &err), 2, "%s", err);
  assert_contains (err, "/\\x1b[31mred\\x1b]0;title\\x07.json: machine.cpus: expected integer");
  cr_assert_null (strchr (err, '\033'), "a raw ESC reached the terminal: %s", err);
  free (out);
  free (err);
  char *a2[] = { "status", "-i", "\0331", NULL };
  cr_assert_eq (tu_avmv (a2, &out, &err), 2, "%s", err);
  assert_contains (err, "--instance \\x1b1: expected an integer 1..64");
  cr_assert_null (strchr (err, '\033'), "%s", err);
  free (out);
  free (err);
  char *a3[] = { "start", "-n", "-p", "demo", "--set", "machine.cpu=\033[2J", NULL };
  cr_assert_eq (tu_avmv (a3, &out, &err), 2, "%s", err);
  assert_contains (err, "--set machine.cpu=\\x1b[2J: machine.cpu: control characters are not allowed");
  cr_assert_null (strchr (err, '\033'), "%s", err);
  free (out);
  free (err);
  free (path);
  tu_rmtree (dir);
  free (dir);
}

/* What is not a profile is refused at once, exit 2, one line saying what
   it is (issue 15: `-p /dev/zero` read for ever, a FIFO hung, a disk image
   for --images was loaded whole).  */
Test (cli, non_profiles_exit_2_at_once, .timeout = TU_TIMEOUT (20))
{
  char *dir = tu_tmpdir ();
  char *fifo = NULL, *img = NULL;
  cr_assert (asprintf (&fifo, "%s/p.json", dir) > 0 && asprintf (&img, "%s/system.img", dir) > 0);
  cr_assert_eq (mkfifo (fifo, 0600), 0);
  int fd = open (img, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  cr_assert (fd >= 0);
  cr_assert_eq (ftruncate (fd, 3435973837LL), 0);
  close (fd);
  expect (2, "avm: /dev/zero is a character device, not a profile", "start", "-n", "-p", "/dev/zero");
  expect (2, "is a FIFO, not a profile", "check", "-p", fifo, NULL);
  expect (2, "system.img is 3.2 GiB, not a profile (at most 1.0 MiB); did you mean --images?", "start", "-n", "-p",
          img);
  expect (2, "is a directory, not a profile", "profiles", "show", dir, NULL);
  free (fifo);
  free (img);
  tu_rmtree (dir);
  free (dir);
}

Test (cli, profiles_list_show_keys)
{
  char *out = NULL, *err = NULL;
  cr_assert_eq (avm (&out, &err, "profiles", "list", "--json", NULL), 0, "%s", err);
  json_t *list = json_loads (out, 0, NULL);
  cr_assert_not_null (list);
  const char *want[] = { "aaos-x86_64", "aaos-arm64", "phone-x86_64", "demo", "demo-arm64" };
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
    {
      size_t i;
      json_t *e;
      int found = 0;
      json_array_foreach (list, i, e)
        found += !strcmp (json_string_value (json_object_get (e, "name")), want[k]);
      cr_assert_eq (found, 1, "%s not listed", want[k]);
    }
  json_decref (list);
  free (out);
  free (err);

  char *args[] = { "profiles", "show", "aaos-x86_64", "-O", "mode=phone", "--set", "machine.cpus=4", NULL };
  cr_assert_eq (tu_avmv (args, &out, &err), 0, "%s", err);
  json_t *p = json_loads (out, 0, NULL);
  cr_assert_not_null (p);
  json_t *outputs = json_object_get (json_object_get (p, "display"), "outputs");
  cr_assert_eq (json_array_size (outputs), 1);
  cr_assert_eq (json_integer_value (json_object_get (json_array_get (outputs, 0), "xres")), 720);
  cr_assert_eq (json_integer_value (json_object_get (json_object_get (p, "machine"), "cpus")), 4);
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (p, "machine"), "arch")), "x86_64");
  json_decref (p);
  free (out);
  free (err);

  cr_assert_eq (avm (&out, &err, "profiles", "keys", "--brief", NULL), 0);
  assert_contains (out, "display.outputs[].xres\n");
  assert_contains (out, "services.*.exec\n");
  assert_contains (out, "boot_properties\n");
  free (out);
  free (err);
}

Test (cli, installed_tree_finds_its_profiles)
{
  /* PREFIX/bin/avm finds PREFIX/share/avm/profiles wherever PREFIX is.  */
  char *dir = tu_tmpdir ();
  char *bin = NULL, *share = NULL, *exe = NULL, *src = NULL;
  cr_assert (asprintf (&bin, "%s/usr/bin", dir) > 0 && asprintf (&share, "%s/usr/share/avm/profiles", dir) > 0);
  cr_assert (asprintf (&exe, "%s/avm", bin) > 0 && asprintf (&src, "%s/profiles/demo.json", tu_srcdir ()) > 0);
  char *mk[] = { "/bin/mkdir", "-p", bin, share, NULL };
  cr_assert_eq (tu_run (mk, NULL, NULL, NULL), 0);
  char *cp1[] = { "/bin/cp", (char *) tu_avm_bin (), exe, NULL };
  char *cp2[] = { "/bin/cp", src, share, NULL };
  cr_assert_eq (tu_run (cp1, NULL, NULL, NULL), 0);
  cr_assert_eq (tu_run (cp2, NULL, NULL, NULL), 0);
  char *argv[] = { exe, "profiles", "list", NULL };
  char *env[] = { "XDG_CONFIG_HOME=/nonexistent", "AVM_DATA_DIR=", NULL };
  char *out = NULL, *err = NULL;
  cr_assert_eq (tu_run (argv, env, &out, &err), 0, "%s", err);
  assert_contains (out, "/usr/share/avm/profiles/demo.json");
  cr_assert_null (strstr (out, "aaos-x86_64"), "source-tree profiles leaked into an installed tree:\n%s", out);
  free (out);
  free (err);
  free (bin);
  free (share);
  free (exe);
  free (src);
  tu_rmtree (dir);
  free (dir);
}
