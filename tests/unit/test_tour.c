/* SPDX-License-Identifier: Apache-2.0 */
/*
 * README.md's "A five-minute tour", run as the README gives it (issue 14):
 * its commands are read from the README itself, so that the tour and this
 * test cannot drift apart, and run on a fixture in place of the files users
 * download:
 *   - the image zip: the cvd2img fixture's images (boot.img and
 *     vendor_boot.img by mkbootimg, vbmeta images, sparse super.img and
 *     userdata.img by img2simg: cvdfixture.h) and android16's
 *     android-info.txt;
 *   - the host package: bin/ and etc/ of tu_cf_imageset's android16 set
 *     (cfimage.h: the host tools are avm-fakecf, which checks what each
 *     real tool checks), its bootloader replaced by tu_test_firmware's image,
 *     which prints an Android guest's boot messages, so that avm sees the
 *     guest boot.
 * The commands are adapted only as the test plan allows: paths (~/aaos,
 * the downloads, tests/data/), and for `avm start` the settings this host
 * needs (--set machine.accel=tcg: KVM guests hang here; --set
 * vsock.mode=none: no /dev/vhost-vsock; --set stop.timeout=0).  Each
 * command must do what the README says it does; `avm check` may report
 * FAIL for what this host lacks (KVM, vhost-vsock), not for the images or
 * the helpers.
 */
#include "cfimage.h"
#include "cvdfixture.h"
#include "test_start.h"
#include "util/cleanup.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct ts_env env;

static void
setup (void)
{
  ts_env_init (&env);
}

static void
teardown (void)
{
  ts_env_fini (&env);
}

TestSuite (tour, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (300));

/* ---------------------------------------------------------------- */
/* The tour's commands, from the README.  */

struct cmd
{
  char *line;     /* as the README has it, without its comment */
  char *argv[48]; /* after "avm", adapted */
  size_t argc;
  bool background; /* ends with & */
};

struct tour
{
  struct cmd c[16];
  size_t n;
};

/* Paths the tour names, and what the test uses instead.  */
struct paths
{
  const char *out, *zip, *hostpkg;
};

static const char *
adapt (const struct paths *p, const char *word)
{
  if (streq (word, "~/aaos"))
    return p->out;
  if (strncmp (word, "~/aaos/", 7) == 0)
    return ts_fmt ("%s/%s", p->out, word + 7);
  if (strncmp (word, "aosp_cf_x86_64_auto-img-", 24) == 0 && strstr (word, ".zip"))
    return p->zip;
  if (streq (word, "cvd-host_package.tar.gz"))
    return p->hostpkg;
  if (strncmp (word, "tests/", 6) == 0)
    return ts_fmt ("%s/%s", tu_srcdir (), word);
  return word;
}

static void
read_tour (struct tour *t, const struct paths *p)
{
  char *readme = tu_read (ts_fmt ("%s/README.md", tu_srcdir ()));
  cr_assert_not_null (readme, "no README.md in %s", tu_srcdir ());
  char *sec = strstr (readme, "\n## A five-minute tour\n");
  cr_assert_not_null (sec, "README.md has no section \"A five-minute tour\"");
  memset (t, 0, sizeof *t);
  char *line = strchr (sec + 1, '\n') + 1;
  bool in_block = false;
  for (char *next; line && *line; line = next)
    {
      next = strchr (line, '\n');
      if (next)
        *next++ = '\0';
      if (strncmp (line, "    ", 4) != 0)
        {
          if (in_block && *line)
            break; /* the end of the code block */
          continue;
        }
      in_block = true;
      char *text = line + 4;
      while (*text == ' ')
        text++;
      if (!*text || *text == '#')
        continue;
      /* a comment: " #" and what follows */
      char *hash = strstr (text, " #");
      if (hash)
        *hash = '\0';
      size_t len = strlen (text);
      while (len && text[len - 1] == ' ')
        text[--len] = '\0';
      cr_assert_lt (t->n, ARRAY_SIZE (t->c));
      struct cmd *c = &t->c[t->n++];
      c->line = ts_fmt ("%s", text);
      if (len && text[len - 1] == '&')
        {
          c->background = true;
          text[--len] = '\0';
        }
      char *save = NULL;
      char *word = strtok_r (text, " ", &save);
      cr_assert (word && streq (word, "avm"), "README tour: not an avm command: %s", c->line);
      while ((word = strtok_r (NULL, " ", &save)))
        {
          cr_assert_lt (c->argc, ARRAY_SIZE (c->argv) - 8);
          c->argv[c->argc++] = (char *) adapt (p, ts_fmt ("%s", word));
        }
      /* avm start: this host's settings */
      if (c->argc && streq (c->argv[0], "start"))
        {
          static const char *const sets[] = { "machine.accel=tcg", "vsock.mode=none", "stop.timeout=0" };
          for (size_t i = 0; i < ARRAY_SIZE (sets); i++)
            {
              c->argv[c->argc++] = "--set";
              c->argv[c->argc++] = (char *) sets[i];
            }
        }
    }
  free (readme);
}

/* The first command of the tour whose line starts with PREFIX ("avm
   cvd2img"); *FROM is where the search starts and moves past it.  */
static struct cmd *
find (struct tour *t, size_t *from, const char *prefix)
{
  for (size_t i = *from; i < t->n; i++)
    if (strncmp (t->c[i].line, prefix, strlen (prefix)) == 0)
      {
        *from = i + 1;
        return &t->c[i];
      }
  cr_assert_fail ("README tour: no command \"%s...\" (after the %zu-th)", prefix, *from);
  return NULL;
}

/* Run C in the foreground: its exit status, stdout and stderr.  */
static int
run (const struct cmd *c, char **out, char **err)
{
  char *argv[64];
  size_t n = 0;
  argv[n++] = (char *) tu_avm_bin ();
  for (size_t i = 0; i < c->argc; i++)
    argv[n++] = c->argv[i];
  argv[n] = NULL;
  char *envv[] = { ts_fmt ("AVM_RUNTIME_DIR=%s", env.run), ts_fmt ("AVM_STATE_DIR=%s", env.state),
                   ts_fmt ("XDG_CACHE_HOME=/tmp/avm-test-cache-%u", (unsigned) getuid ()),
                   ts_fmt ("XDG_CONFIG_HOME=/tmp/avm-test-config-%u", (unsigned) getuid ()), NULL };
  char *o = NULL, *e = NULL;
  int rc = tu_run (argv, envv, &o, &e);
  *out = ts_fmt ("%s", o ? o : "");
  *err = ts_fmt ("%s", e ? e : "");
  free (o);
  free (e);
  return rc;
}

/* ---------------------------------------------------------------- */
/* The downloads.  */

static void
make_downloads (const struct paths *p)
{
  /* The host package: android16's bin/ and etc/, U-Boot replaced by the
     test firmware (never written through the fixture's hard links).  */
  const char *cf = ts_path (&env, "cf");
  free (tu_cf_imageset (cf, "android16", "x86_64"));
  const char *bl = ts_fmt ("%s/etc/bootloader_x86_64/bootloader.qemu", cf);
  cr_assert_eq (unlink (bl), 0, "%s: %s", bl, strerror (errno));
  tu_test_firmware ("x86_64", bl);
  free (fx_run_ok ((char *[]) { "tar", "czf", (char *) p->hostpkg, "-C", (char *) cf, "bin", "etc", NULL }, NULL));

  /* The image zip: the fixture's images, android16's android-info.txt.  */
  char *zargs[16];
  size_t n = 0;
  zargs[n++] = "zip";
  zargs[n++] = "-q";
  zargs[n++] = "-j";
  zargs[n++] = (char *) p->zip;
  for (size_t i = 0; i < ARRAY_SIZE (fx_zip_images); i++)
    if (!streq (fx_zip_images[i], "android-info.txt"))
      {
        char *path = fx_path (ts_fmt ("cvd/%s", fx_zip_images[i]));
        zargs[n++] = ts_fmt ("%s", path);
        free (path);
      }
  zargs[n++] = ts_fmt ("%s/android-info.txt", cf);
  zargs[n] = NULL;
  free (fx_run_ok (zargs, NULL));
}

/* Each line of TEXT starting with PREFIX, in order, NULL-terminated.  */
static char **
lines_starting (const char *text, const char *prefix)
{
  static char *found[64];
  size_t n = 0;
  for (const char *l = text; l && *l && n + 1 < ARRAY_SIZE (found); l = strchr (l, '\n') ? strchr (l, '\n') + 1 : NULL)
    if (strncmp (l, prefix, strlen (prefix)) == 0)
      found[n++] = ts_fmt ("%.*s", (int) strcspn (l, "\n"), l);
  found[n] = NULL;
  return found;
}

Test (tour, readme_tour_on_a_fixture)
{
  struct paths p = {
    .out = ts_path (&env, "aaos"),
    .zip = ts_path (&env, "aosp_cf_x86_64_auto-img-12345678.zip"),
    .hostpkg = ts_path (&env, "cvd-host_package.tar.gz"),
  };
  make_downloads (&p);
  struct tour t;
  read_tour (&t, &p);
  size_t at = 0;
  char *out, *err;
  struct cmd *c;
  int rc;

  /* 1. Convert: the output directory runs as it is.  */
  c = find (&t, &at, "avm cvd2img");
  rc = run (c, &out, &err);
  cr_assert_eq (rc, 0, "%s: exit %d\n%s%s", c->line, rc, out, err);
  static const char *const outputs[] = { "system.img",
                                         "properties.img",
                                         "properties_virgl.img",
                                         "bootloader",
                                         "manifest.json",
                                         "avb_key.pem",
                                         "android-info.txt",
                                         "bin/kernel_log_monitor",
                                         "bin/sensors_simulator",
                                         "etc/automotive/vhalconfig/DefaultProperties.json" };
  for (size_t i = 0; i < ARRAY_SIZE (outputs); i++)
    cr_assert_eq (access (ts_fmt ("%s/%s", p.out, outputs[i]), R_OK), 0, "%s: no %s after `%s`", p.out, outputs[i],
                  c->line);
  cr_assert_eq (access (ts_fmt ("%s/bin/secure_env", p.out), X_OK), 0, "the host tools are not executable");
  json_t *m = json_load_file (ts_fmt ("%s/manifest.json", p.out), 0, NULL);
  cr_assert_not_null (m);
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (m, "release"), "name")), "android16");
  json_decref (m);

  c = find (&t, &at, "avm inspect");
  rc = run (c, &out, &err);
  cr_assert_eq (rc, 0, "%s: exit %d\n%s%s", c->line, rc, out, err);
  cr_assert_not_null (strstr (out, "androidboot.serialno="), "%s: no boot properties:\n%s", c->line, out);
  cr_assert_null (strstr (out, "NOT SOUND"), "%s", out);

  /* 2. The approved command line; can this host run it?  */
  c = find (&t, &at, "avm profiles list");
  rc = run (c, &out, &err);
  cr_assert_eq (rc, 0, "%s: exit %d\n%s", c->line, rc, err);
  cr_assert_not_null (strstr (out, "aaos-x86_64"), "%s", out);

  c = find (&t, &at, "avm profiles show");
  rc = run (c, &out, &err);
  cr_assert_eq (rc, 0, "%s: exit %d\n%s", c->line, rc, err);
  json_t *prof = ts_json (out);
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (prof, "display"), "gpu_service")),
                    "vhost-user-gpu", "%s: not the virgl variant", c->line);
  json_decref (prof);

  /* This host may lack KVM or vhost-vsock (FAIL or warn): not the images,
     the release or a helper, every one found in the output's bin/.  */
  c = find (&t, &at, "avm check");
  rc = run (c, &out, &err);
  cr_assert (rc == 0 || rc == 1, "%s: exit %d\n%s%s", c->line, rc, out, err);
  char **rel = lines_starting (out, "ok    release");
  cr_assert (rel[0] && strstr (rel[0], "android16") && strstr (rel[0], "manifest.json"), "%s:\n%s", c->line, out);
  cr_assert_null (strstr (out, "FAIL  images"), "%s:\n%s", c->line, out);
  cr_assert_null (strstr (out, "FAIL  release"), "%s:\n%s", c->line, out);
  char **helpers = lines_starting (out, "");
  size_t nhelpers = 0;
  for (size_t i = 0; helpers[i]; i++)
    {
      const char *h = strstr (helpers[i], "helper:");
      if (!h || h - helpers[i] != 6 || strncmp (h, "helper:dbus ", 12) == 0)
        continue; /* not a helper, or avm's private D-Bus (dbus-daemon) */
      cr_assert (strncmp (helpers[i], "ok ", 3) == 0 && strstr (helpers[i], ts_fmt (" %s/bin/", p.out)),
                 "%s: a helper not found in %s/bin:\n%s\n%s", c->line, p.out, helpers[i], out);
      nhelpers++;
    }
  cr_assert_geq (nhelpers, 12, "%s lists %zu helpers:\n%s", c->line, nhelpers, out);

  /* The dry run with multitouch: QEMU 8.1 and later have the device;
     older ones get the refusal the README's troubleshooting shows.  */
  c = find (&t, &at, "avm start -n -p aaos-x86_64");
  rc = run (c, &out, &err);
  if (rc == 0)
    {
      cr_assert_not_null (strstr (out, "virtio-multitouch-pci"), "%s:\n%s", c->line, out);
      cr_assert_not_null (strstr (out, "# release android16 (manifest.json"), "%s:\n%s", c->line, out);
    }
  else
    {
      cr_assert_eq (rc, 2, "%s: exit %d\n%s%s", c->line, rc, out, err);
      cr_assert_not_null (strstr (err, "virtio-multitouch-pci"), "%s:\n%s", c->line, err);
      cr_assert_not_null (strstr (err, "use --set input.touch=mouse or a newer QEMU"), "%s:\n%s", c->line, err);
    }
  c = find (&t, &at, "avm start -n --json -p aaos-arm64");
  rc = run (c, &out, &err);
  cr_assert_eq (rc, 0, "%s: exit %d\n%s", c->line, rc, err);
  json_decref (ts_json (out));

  /* 3. Run it, look at it, stop it.  */
  c = find (&t, &at, "avm start -p aaos-x86_64");
  cr_assert (c->background, "the README runs `%s` in the background", c->line);
  struct ts_avm a;
  ts_start_argv (&env, &a, c->argv);
  char *msgs = ts_wait_notify (&a, "READY=1", TU_TIMEOUT (120));
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  cr_assert_not_null (strstr (ts_stderr (&a), "guest booted in"), "%s", ts_stderr (&a));

  c = find (&t, &at, "avm status");
  rc = run (c, &out, &err);
  cr_assert_eq (rc, 0, "%s: exit %d\n%s%s", c->line, rc, out, err);
  cr_assert_not_null (strstr (out, "instance 1: running"), "%s", out);

  /* Every helper runs from the output's bin/, none is skipped.  */
  struct cmd js = *c;
  js.argv[js.argc++] = "--json";
  rc = run (&js, &out, &err);
  cr_assert_eq (rc, 0, "avm status --json: exit %d\n%s", rc, err);
  json_t *st = ts_json (out), *svc;
  size_t i, nsvc = 0;
  json_array_foreach (json_object_get (st, "services"), i, svc)
    {
      const char *name = json_string_value (json_object_get (svc, "name"));
      const char *state = json_string_value (json_object_get (svc, "state"));
      const char *prog = json_string_value (json_object_get (svc, "program"));
      cr_assert_str_neq (state, "skipped", "service %s skipped:\n%s", name, out);
      if (streq (name, "dbus"))
        continue; /* avm's private D-Bus for the display, not a host tool */
      cr_assert (prog && strncmp (prog, ts_fmt ("%s/bin/", p.out), strlen (p.out) + 5) == 0,
                 "service %s runs %s, not from %s/bin", name, prog ? prog : "nothing", p.out);
      nsvc++;
    }
  cr_assert_geq (nsvc, 12, "only %zu host tools run:\n%s", nsvc, out);
  json_decref (st);

  c = find (&t, &at, "avm stop");
  rc = run (c, &out, &err);
  cr_assert_eq (rc, 0, "%s: exit %d\n%s%s", c->line, rc, out, err);
  cr_assert_eq (ts_wait (&a, TU_TIMEOUT (60)), 0, "%s", ts_stderr (&a));

  /* 4. The screen in a browser: the page of each output, printed at boot
     and listed by avm status (test_web.c follows the page to QEMU).  */
  if (access ("/usr/bin/websockify", X_OK) != 0 || access ("/usr/share/novnc/vnc.html", R_OK) != 0)
    cr_skip_test ("websockify or novnc not installed (tests/deps.sh installs them)");
  c = find (&t, &at, "avm start -p aaos-x86_64");
  cr_assert (c->background && strstr (c->line, "-O display=web"), "%s", c->line);
  ts_start_argv (&env, &a, c->argv);
  msgs = ts_wait_notify (&a, "READY=1", TU_TIMEOUT (120));
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  const char *url = "http://127.0.0.1:6080/vnc.html?autoconnect=true&resize=scale&path=websockify%3Ftoken%3D";
  for (int k = 0; k < 2; k++)
    cr_assert_not_null (strstr (ts_stderr (&a), ts_fmt ("web display, output %d: %s%d", k, url, k)), "%s",
                        ts_stderr (&a));
  c = find (&t, &at, "avm status");
  rc = run (c, &out, &err);
  cr_assert_eq (rc, 0, "%s: exit %d\n%s%s", c->line, rc, out, err);
  cr_assert_not_null (strstr (out, ts_fmt ("web display, output 0: %s0", url)), "%s", out);
  cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0);
  cr_assert_eq (ts_wait (&a, TU_TIMEOUT (60)), 0, "%s", ts_stderr (&a));

  /* 5. Quick boot: the demo booted, saved, stopped, restored (test_snapshot.c
     looks into the guest).  */
  free (tu_demo_image ());
  c = find (&t, &at, "avm start -p demo");
  cr_assert (c->background && !strstr (c->line, "--restore"), "%s", c->line);
  ts_start_argv (&env, &a, c->argv);
  msgs = ts_wait_notify (&a, "READY=1", TU_TIMEOUT (200));
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  c = find (&t, &at, "avm snapshot save");
  rc = run (c, &out, &err);
  cr_assert_eq (rc, 0, "%s: exit %d\n%s%s", c->line, rc, out, err);
  cr_assert_not_null (strstr (out, ts_fmt ("%s/1/snapshots/booted", env.state)), "%s", out);
  c = find (&t, &at, "avm stop");
  rc = run (c, &out, &err);
  cr_assert_eq (rc, 0, "%s: exit %d\n%s%s", c->line, rc, out, err);
  cr_assert_eq (ts_wait (&a, TU_TIMEOUT (60)), 0, "%s", ts_stderr (&a));
  c = find (&t, &at, "avm start -p demo");
  cr_assert (c->background && strstr (c->line, "--restore booted"), "%s", c->line);
  ts_start_argv (&env, &a, c->argv);
  msgs = ts_wait_notify (&a, "READY=1", TU_TIMEOUT (60));
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  cr_assert_not_null (strstr (ts_stderr (&a), "guest restored from snapshot booted"), "%s", ts_stderr (&a));
  cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0);
  cr_assert_eq (ts_wait (&a, TU_TIMEOUT (60)), 0, "%s", ts_stderr (&a));
  cr_assert_eq (at, t.n, "README tour: %zu commands, %zu run", t.n, at);
}
