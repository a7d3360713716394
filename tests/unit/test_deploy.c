/* SPDX-License-Identifier: Apache-2.0 */
/* Deployment files: containers/Containerfile, quadlets/aaos.container,
   avm-images.volume, avm-state.volume, avm-display.container and
   avm@.service.

   - The stop budget (avm's own, the EXTEND_TIMEOUT_USEC it sends when it
     stops: the profile's stop.timeout, QMP quit, QEMU SIGTERM, a spare
     5 s, every helper's stop_timeout) computed from the aaos-x86_64 plan
     must be what the Containerfile label, the quadlet's StopTimeout= and
     avm@.service's TimeoutStopSec= say; the formula itself is checked
     against what avm sends when it stops.
   - The quadlets go through the real generator of Debian 13's podman
     (fetched by tests/tools/fetch-quadlet.sh, $AVM_QUADLET), then
     `systemd-analyze verify`; avm@.service through `systemd-analyze
     verify` with the binary of an install into a temporary DESTDIR.
   - The image's entrypoint runs as PID 1 of a new pid namespace, from the
     installed tree, with the Containerfile's ENTRYPOINT and CMD; and so
     does the demo guest (real QEMU, TCG), saved with `avm snapshot save`,
     stopped as podman stops it and restored (issue 18: --restore in each
     deployment; the state directory a volume that outlives the container).
   - The image is built with podman when it can build here, once for the
     suite (make container-image), and runs under podman with the
     project's containers/containers.conf (runc, the host's rlimits): the
     demo guest to READY=1 through --sdnotify=container, then podman stop
     (issue 19).  */
#include "supervise/internal.h"
#include "util/cleanup.h"
#include "test_start.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
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

TestSuite (deploy, .init = setup, .fini = teardown);

/* ---- helpers ------------------------------------------------------------ */

static char *
src (const char *rel)
{
  return ts_fmt ("%s/%s", tu_srcdir (), rel);
}

static char *
slurp (const char *path)
{
  char *s = tu_read (path);
  cr_assert (s, "cannot read %s", path);
  char *kept = ts_fmt ("%s", s);
  free (s);
  return kept;
}

/* Run ARGV; returns the status, *OUT and *ERR kept until the test ends.  */
static int
run (char *const argv[], char *const envv[], char **out, char **err)
{
  char *o = NULL, *e = NULL;
  int r = tu_run (argv, envv, &o, &e);
  *out = ts_fmt ("%s", o ? o : "");
  *err = ts_fmt ("%s", e ? e : "");
  free (o);
  free (e);
  return r;
}

/* "KEY=" lines of a unit file (all of them, "\n"-joined), or NULL.  */
static char *
unit_values (const char *text, const char *key)
{
  size_t kl = strlen (key);
  char *acc = NULL;
  for (const char *l = text; l && *l; l = strchr (l, '\n') ? strchr (l, '\n') + 1 : NULL)
    if (strncmp (l, key, kl) == 0 && l[kl] == '=')
      {
        const char *v = l + kl + 1, *end = strchrnul (v, '\n');
        acc = acc ? ts_fmt ("%s\n%.*s", acc, (int) (end - v), v) : ts_fmt ("%.*s", (int) (end - v), v);
      }
  return acc;
}

static char *
unit_value (const char *text, const char *key)
{
  char *v = unit_values (text, key);
  cr_assert (v, "no %s= in\n%s", key, text);
  char *nl = strrchr (v, '\n');
  return nl ? nl + 1 : v;
}

/* ---- the Containerfile -------------------------------------------------- */

struct instr
{
  char *op;   /* upper case */
  char *args; /* continuation lines joined, comment lines dropped */
};

/* Parse the Containerfile into instructions.  */
static size_t
containerfile (struct instr *in, size_t max)
{
  char *text = slurp (src ("containers/Containerfile"));
  size_t n = 0;
  char *cur = NULL;
  for (char *line = strtok (text, "\n"); line; line = strtok (NULL, "\n"))
    {
      while (isspace ((unsigned char) *line))
        line++;
      if (*line == '#' || !*line)
        continue;
      size_t l = strlen (line);
      bool cont = l > 0 && line[l - 1] == '\\';
      if (cont)
        line[l - 1] = ' ';
      cur = cur ? ts_fmt ("%s %s", cur, line) : ts_fmt ("%s", line);
      if (cont)
        continue;
      cr_assert_lt (n, max);
      char *sp = strpbrk (cur, " \t");
      cr_assert (sp, "instruction without arguments: %s", cur);
      in[n].op = ts_fmt ("%.*s", (int) (sp - cur), cur);
      for (char *p = in[n].op; *p; p++)
        *p = (char) toupper ((unsigned char) *p);
      in[n].args = sp + strspn (sp, " \t");
      n++;
      cur = NULL;
    }
  cr_assert_null (cur, "Containerfile ends in a continuation line");
  return n;
}

/* The JSON array of the last OP (ENTRYPOINT, CMD).  */
static json_t *
exec_form (const struct instr *in, size_t n, const char *op)
{
  const char *args = NULL;
  for (size_t i = 0; i < n; i++)
    if (streq (in[i].op, op))
      args = in[i].args;
  cr_assert (args, "no %s in the Containerfile", op);
  json_t *j = ts_json (args);
  cr_assert (json_is_array (j), "%s is not in exec form: %s", op, args);
  return j;
}

/* The value of a LABEL key.  */
static char *
label (const struct instr *in, size_t n, const char *key)
{
  char *pat = ts_fmt ("%s=\"", key);
  for (size_t i = 0; i < n; i++)
    if (streq (in[i].op, "LABEL"))
      {
        char *p = strstr (in[i].args, pat);
        if (p)
          {
            p += strlen (pat);
            return ts_fmt ("%.*s", (int) strcspn (p, "\""), p);
          }
      }
  cr_assert_fail ("no LABEL %s in the Containerfile", key);
  return NULL;
}

/* ---- the stop budget ---------------------------------------------------- */

/* avm's stop budget for a plan, in seconds: what sv_request_stop sends as
   EXTEND_TIMEOUT_USEC (QEMU's stop timeout is the profile's stop.timeout;
   the 5 s spare is the constant there).  */
static long long
plan_budget (json_t *plan)
{
  json_t *st = json_object_get (plan, "stop_timeout");
  cr_assert (json_is_number (st), "the plan has no stop_timeout");
  double b = json_number_value (st)
             + (double) (SV_SHOT_FAILURE_TIMEOUT + QMP_QUIT_TIMEOUT + QEMU_TERM_TIMEOUT) / USEC_PER_SEC + 5;
  size_t i;
  json_t *s;
  json_array_foreach (json_object_get (plan, "services"), i, s)
    {
      json_t *t = json_object_get (s, "stop_timeout");
      cr_assert (json_is_number (t), "service %s has no stop_timeout", json_string_value (json_object_get (s, "name")));
      b += json_number_value (t);
    }
  return (long long) b;
}

/* The dry-run plan of PROFILE (more avm arguments after it).  */
static json_t *
dry_plan (const char *profile, const char *extra_env, char *const more[])
{
  char *images = ts_path (&env, "images");
  mkdir (images, 0755);
  /* Every helper program present, as in a deployment with the images' host
     package: a missing one is skipped and would not count.  */
  char *helpers = ts_fmt ("paths.helpers=%s", tu_fake_helpers ());
  /* The tests' own profiles (files) run the fault-injection helper.  */
  char *argv[] = { (char *) tu_avm_bin (),
                   "start",
                   "--profile",
                   (char *) profile,
                   "--images",
                   images,
                   "--dry-run",
                   "--json",
                   "--set",
                   helpers,
                   strchr (profile, '/') ? "--allow-unapproved" : NULL,
                   NULL,
                   NULL,
                   NULL,
                   NULL,
                   NULL,
                   NULL,
                   NULL,
                   NULL,
                   NULL };
  size_t k = 0;
  while (argv[k])
    k++;
  for (size_t i = 0; more && more[i]; i++)
    {
      cr_assert (k + 1 < sizeof argv / sizeof argv[0], "too many arguments");
      argv[k++] = more[i];
    }
  char *e1 = ts_fmt ("AVM_RUNTIME_DIR=%s", env.run), *e2 = ts_fmt ("AVM_STATE_DIR=%s", env.state);
  char *envv[] = { extra_env ? (char *) extra_env : e1, e2, NULL };
  char *out, *err;
  cr_assert_eq (run (argv, envv, &out, &err), 0, "%s", err);
  return ts_json (out);
}

static long long
aaos_budget (void)
{
  json_t *plan = dry_plan ("aaos-x86_64", NULL, NULL);
  long long b = plan_budget (plan);
  json_decref (plan);
  return b;
}

/* The same for the quadlet's own command (its Exec=, which adds the web
   display: one more helper to stop).  */
static long long
quadlet_budget (void)
{
  char *c = slurp (src ("quadlets/aaos.container"));
  char *exec = ts_fmt ("%s", unit_value (c, "Exec"));
  char *more[16];
  size_t n = 0;
  for (char *save = NULL, *w = strtok_r (exec, " ", &save); w; w = strtok_r (NULL, " ", &save))
    if (streq (w, "--profile") || streq (w, "--images"))
      cr_assert_not_null (strtok_r (NULL, " ", &save)); /* dry_plan gives them */
    else if (n + 1 < sizeof more / sizeof more[0])
      more[n++] = w;
  more[n] = NULL;
  json_t *plan = dry_plan ("aaos-x86_64", NULL, more);
  long long b = plan_budget (plan);
  json_decref (plan);
  return b;
}

/* ---- installing into a temporary DESTDIR -------------------------------- */

/* `make install DESTDIR=... PREFIX=/usr` with the current Makefile rule and
   the binary under test (not rebuilt).  Returns DESTDIR.  */
static char *
install_tree (void)
{
  char *dest = ts_path (&env, "destdir");
  char *avm = ts_fmt ("%s", tu_avm_bin ());
  char *a1 = ts_fmt ("DESTDIR=%s", dest), *a2 = ts_fmt ("AVM=%s", avm);
  char *argv[] = { "make", "-s", "-C", (char *) tu_srcdir (), "install", a1, "PREFIX=/usr", a2, "-o", avm, NULL };
  char *out, *err;
  cr_assert_eq (run (argv, NULL, &out, &err), 0, "make install: %s%s", out, err);
  cr_assert_eq (access (ts_fmt ("%s/usr/bin/avm", dest), X_OK), 0, "no usr/bin/avm in the install");
  return dest;
}

/* ---- the quadlet generator ---------------------------------------------- */

static const char *
quadlet_bin (void)
{
  const char *q = getenv ("AVM_QUADLET");
  if (!q || !*q)
    q = src ("build/tools/quadlet");
  if (access (q, X_OK) != 0)
    {
      char *why = tu_read (ts_fmt ("%s.failed", q));
      char *reason = ts_fmt ("no quadlet generator at %s (tests/tools/fetch-quadlet.sh, run by make check%s%s)", q,
                             why ? ": " : "", why ? why : "");
      free (why);
      cr_skip_test ("%s", reason);
    }
  return q;
}

/* The quadlet files of the tree, all given to the generator.  */
static const char *const quadlet_files[]
    = { "aaos.container", "avm-images.volume", "avm-state.volume", "avm-display.container" };

/* Generate the quadlets into a unit directory NAME; returns it.  AAOS, when
   not NULL, stands for quadlets/aaos.container.  */
static char *
generate_as (const char *name, const char *aaos)
{
  const char *q = quadlet_bin ();
  char *in = ts_path (&env, ts_fmt ("quadlets-%s", name)), *outdir = ts_path (&env, name);
  mkdir (in, 0755);
  mkdir (outdir, 0755);
  for (size_t i = 0; i < sizeof quadlet_files / sizeof quadlet_files[0]; i++)
    free (tu_write (in, quadlet_files[i],
                    aaos && streq (quadlet_files[i], "aaos.container")
                        ? aaos
                        : slurp (src (ts_fmt ("quadlets/%s", quadlet_files[i])))));
  char *e = ts_fmt ("QUADLET_UNIT_DIRS=%s", in);
  char *envv[] = { e, NULL };
  char *out, *err;
  /* -dryrun: the generator's own check, everything printed.  */
  char *dry[] = { (char *) q, "-dryrun", "-no-kmsg-log", NULL };
  cr_assert_eq (run (dry, envv, &out, &err), 0, "quadlet -dryrun failed:\n%s", err);
  for (char *l = strtok (err, "\n"); l; l = strtok (NULL, "\n"))
    cr_assert (strstr (l, "Loading source unit file"), "quadlet complained: %s", l);
  cr_assert (strstr (out, "---aaos.service---") && strstr (out, "---avm-display.service---")
                 && strstr (out, "---avm-images-volume.service---") && strstr (out, "---avm-state-volume.service---"),
             "%s", out);
  /* Generator mode: the units written as systemd would get them.  */
  char *gen[] = { (char *) q, "-no-kmsg-log", outdir, outdir, outdir, NULL };
  cr_assert_eq (run (gen, envv, &out, &err), 0, "quadlet failed:\n%s", err);
  return outdir;
}

static char *
generate (void)
{
  return generate_as ("units", NULL);
}

/* `systemd-analyze verify` of UNITS (NULL-terminated), man pages from the
   installed tree DEST; everything it prints is a finding.  A generated
   unit's ExecStart is /usr/bin/podman: where podman is not installed the
   verifier says so, and that one message (and only it) is accepted.  */
static void
verify (const char *dest, const char *const *units)
{
  char *argv[16] = { "systemd-analyze", "verify" };
  size_t n = 2;
  for (size_t i = 0; units[i] && n < 15; i++)
    argv[n++] = (char *) units[i];
  argv[n] = NULL;
  char *m = ts_fmt ("MANPATH=%s/usr/share/man", dest);
  char *envv[] = { m, "SYSTEMD_LOG_COLOR=0", NULL };
  char *out, *err;
  int r = run (argv, envv, &out, &err);
  bool podman = access ("/usr/bin/podman", X_OK) == 0;
  for (char *l = strtok (err, "\n"); l; l = strtok (NULL, "\n"))
    cr_assert (!podman && strstr (l, "/usr/bin/podman") && strstr (l, "is not executable"),
               "systemd-analyze verify: %s", l);
  if (podman)
    cr_assert_eq (r, 0, "systemd-analyze verify exited %d: %s", r, out);
}

/* ---- tests -------------------------------------------------------------- */

Test (deploy, stop_budget_agrees_everywhere)
{
  long long b = aaos_budget ();
  cr_assert_gt (b, 30);
  struct instr in[64];
  size_t n = containerfile (in, 64);
  cr_assert_eq (atoll (label (in, n, "io.avm.stop-timeout")), b,
                "Containerfile label io.avm.stop-timeout %s, avm's budget %lld s", label (in, n, "io.avm.stop-timeout"),
                b);
  char *c = slurp (src ("quadlets/aaos.container"));
  long long qb = quadlet_budget ();
  cr_assert_eq (qb, b + 5, "the quadlet's web display is one more helper (5 s): %lld s against %lld s", qb, b);
  cr_assert_eq (atoll (unit_value (c, "StopTimeout")), qb, "aaos.container StopTimeout=%s, avm's budget %lld s",
                unit_value (c, "StopTimeout"), qb);
  /* systemd's own limit must leave podman the time to stop and remove.  */
  cr_assert_gt (atoll (unit_value (c, "TimeoutStopSec")), qb);
  char *s = slurp (src ("quadlets/avm@.service"));
  cr_assert_eq (atoll (unit_value (s, "TimeoutStopSec")), b, "avm@.service TimeoutStopSec=%s, avm's budget %lld s",
                unit_value (s, "TimeoutStopSec"), b);
  /* The comments say the same number.  */
  char *say = ts_fmt ("= %lld s", b);
  cr_assert (strstr (c, ts_fmt ("= %lld s", qb)) && strstr (s, say)
                 && strstr (slurp (src ("containers/Containerfile")), ts_fmt ("is %lld s", b)),
             "a comment still names another budget than %lld s", b);
}

Test (deploy, containerfile_static_checks)
{
  struct instr in[64];
  size_t n = containerfile (in, 64);
  size_t froms = 0;
  bool stopsig = false, volume = false, state_volume = false;
  const char *user = NULL;
  /* ARG defaults, for ${NAME} in package lists.  */
  const char *argn[16], *argv_[16];
  size_t nargs = 0;
  char *packages = ts_fmt ("%s", "");
  for (size_t i = 0; i < n; i++)
    {
      cr_assert (!strstr (in[i].args, "--privileged"), "--privileged in %s %s", in[i].op, in[i].args);
      if (streq (in[i].op, "FROM"))
        {
          froms++;
          cr_assert (strstr (in[i].args, "debian:${DEBIAN}"), "FROM %s: not Debian", in[i].args);
        }
      else if (streq (in[i].op, "ARG") && strchr (in[i].args, '=') && nargs < 16)
        {
          char *eq = strchr (in[i].args, '=');
          argn[nargs] = ts_fmt ("%.*s", (int) (eq - in[i].args), in[i].args);
          argv_[nargs++] = eq + 1;
        }
      else if (streq (in[i].op, "USER"))
        user = in[i].args;
      else if (streq (in[i].op, "STOPSIGNAL"))
        stopsig = streq (in[i].args, "SIGTERM");
      else if (streq (in[i].op, "VOLUME"))
        {
          volume |= streq (in[i].args, "/images");
          state_volume |= streq (in[i].args, "/var/lib/avm");
        }
      else if (streq (in[i].op, "RUN"))
        {
          char *p = strstr (in[i].args, "apt-get install");
          if (!p)
            continue;
          p += strlen ("apt-get install");
          size_t len = strcspn (p, "&;|");
          char *words = ts_fmt ("%.*s", (int) len, p);
          for (char *w = strtok (words, " \t"); w; w = strtok (NULL, " \t"))
            {
              if (*w == '-')
                continue;
              if (strncmp (w, "${", 2) == 0)
                {
                  char *name = ts_fmt ("%.*s", (int) strcspn (w + 2, "}"), w + 2);
                  const char *val = NULL;
                  for (size_t k = 0; k < nargs; k++)
                    if (streq (argn[k], name))
                      val = argv_[k];
                  cr_assert (val, "%s: no ARG default", w);
                  w = (char *) val;
                }
              packages = ts_fmt ("%s %s", packages, w);
            }
        }
    }
  cr_assert_eq (froms, 2, "not a two-stage build");
  cr_assert (stopsig, "no STOPSIGNAL SIGTERM");
  cr_assert (volume, "no VOLUME /images");
  /* The state directory (snapshots, logs) outlives the container.  */
  cr_assert (state_volume, "no VOLUME /var/lib/avm");
  cr_assert (strstr (slurp (src ("containers/Containerfile")), "AVM_STATE_DIR=/var/lib/avm"));
  cr_assert (user && !streq (user, "root") && !streq (user, "0"), "the image runs as root");
  cr_assert (strstr (packages, " qemu-system-x86") && strstr (packages, " dbus-daemon")
                 && strstr (packages, " qemu-system-gui"),
             "packages: %s", packages);

  /* Every package exists in Debian 12 (this machine's apt lists).  */
  if (access ("/usr/bin/apt-cache", X_OK) == 0)
    {
      char *list = ts_fmt ("%s", packages);
      for (char *w = strtok (list, " "); w; w = strtok (NULL, " "))
        {
          char *argv[] = { "apt-cache", "show", "--no-all-versions", w, NULL };
          char *out, *err;
          int r = run (argv, NULL, &out, &err);
          cr_assert (r == 0 && strstr (out, ts_fmt ("Package: %s\n", w)), "package %s not in Debian's lists: %s", w,
                     err);
        }
    }

  /* The entrypoint is the installed binary (make install PREFIX=/usr).  */
  json_t *ep = exec_form (in, n, "ENTRYPOINT");
  cr_assert_eq (json_array_size (ep), 2);
  cr_assert_str_eq (json_string_value (json_array_get (ep, 0)), "/usr/bin/avm");
  cr_assert_str_eq (json_string_value (json_array_get (ep, 1)), "start");
  bool prefix = false;
  for (size_t i = 0; i < n; i++)
    prefix |= streq (in[i].op, "RUN") && strstr (in[i].args, "make install PREFIX=/usr");
  cr_assert (prefix, "the build stage does not install with PREFIX=/usr");
  json_decref (ep);

  /* CMD options are `avm start` options.  */
  json_t *cmd = exec_form (in, n, "CMD");
  char *out, *err;
  char *help[] = { (char *) tu_avm_bin (), "start", "--help", NULL };
  cr_assert_eq (run (help, NULL, &out, &err), 0);
  size_t i;
  json_t *a;
  json_array_foreach (cmd, i, a)
    {
      const char *s = json_string_value (a);
      if (s[0] == '-')
        cr_assert (strstr (out, ts_fmt ("%s ", s)), "CMD option %s is not in avm start --help", s);
    }
  json_decref (cmd);

  /* What `make install` installs is in the build context the stage copies.  */
  char *mk = slurp (src ("Makefile"));
  char *rule = strstr (mk, "\ninstall:");
  cr_assert (rule);
  char *end = strstr (rule, "\n\n");
  char *recipe = ts_fmt ("%.*s", (int) (end ? end - rule : (long) strlen (rule)), rule);
  char *cf = slurp (src ("containers/Containerfile"));
  const char *dirs[] = { "profiles/", "man/", "quadlets/", "completion/", "completions/", "contrib/" };
  for (size_t k = 0; k < sizeof dirs / sizeof dirs[0]; k++)
    if (strstr (recipe, ts_fmt (" %s", dirs[k])))
      cr_assert (strstr (cf, ts_fmt ("COPY %.*s ", (int) strlen (dirs[k]) - 1, dirs[k])),
                 "make install reads %s, the Containerfile does not copy it", dirs[k]);
}

Test (deploy, quadlets_generate_and_verify)
{
  long long b = quadlet_budget ();
  char *units = generate ();
  char *svc = slurp (ts_fmt ("%s/aaos.service", units));
  cr_assert_str_eq (unit_value (svc, "Type"), "notify");
  cr_assert_str_eq (unit_value (svc, "NotifyAccess"), "all");
  cr_assert_str_eq (unit_value (svc, "KillMode"), "mixed");
  cr_assert_str_eq (unit_value (svc, "Restart"), "on-failure");
  cr_assert_geq (atoll (unit_value (svc, "TimeoutStartSec")), 600, "too short for a cold boot");
  char *exec = unit_value (svc, "ExecStart");
  cr_assert (strstr (exec, " --sdnotify=container "), "%s", exec);
  cr_assert (strstr (exec, " --device /dev/kvm "), "%s", exec);
  cr_assert (strstr (exec, " -v avm-images:/images:ro "), "%s", exec);
  cr_assert (strstr (exec, " -v avm-run:/run/avm "), "%s", exec);
  cr_assert (strstr (exec, " -v avm-state:/var/lib/avm "), "%s", exec);
  cr_assert (strstr (exec, ts_fmt (" --stop-timeout %lld ", b)), "%s", exec);
  /* A cold boot unless the commented Exec= is taken (deploy/quadlet_restore).  */
  cr_assert (!strstr (exec, "--restore"), "%s", exec);
  cr_assert (strstr (exec, " --stop-signal SIGTERM "), "%s", exec);
  cr_assert (!strstr (exec, "--privileged"), "%s", exec);
  /* The web display, on the host's loopback only (no VNC password).  */
  cr_assert (strstr (exec, " --publish 127.0.0.1:6080:6080 "), "%s", exec);
  cr_assert (strstr (exec, " -O display=web ") && strstr (exec, " --set display.web.remote=true"), "%s", exec);
  /* The optional devices: passed when the host has them, and never fatal.  */
  const char *optional[] = { "/dev/dri/renderD128", "/dev/vhost-vsock" };
  for (size_t i = 0; i < 2; i++)
    {
      bool has = access (optional[i], F_OK) == 0;
      cr_assert_eq (strstr (exec, ts_fmt (" --device %s ", optional[i])) != NULL, has, "%s (host has it: %d): %s",
                    optional[i], has, exec);
    }
  cr_assert (strstr (slurp (src ("quadlets/aaos.container")), "AddDevice=-/dev/vhost-vsock\n"));
  cr_assert (strstr (slurp (src ("quadlets/aaos.container")), "AddDevice=-/dev/dri/renderD128\n"));
  /* The images volume: its unit before the container.  */
  cr_assert (strstr (unit_values (svc, "Requires"), "avm-images-volume.service"), "%s", svc);
  char *vol = slurp (ts_fmt ("%s/avm-images-volume.service", units));
  cr_assert (strstr (unit_value (vol, "ExecStart"), "volume create")
                 && strstr (unit_value (vol, "ExecStart"), " avm-images"),
             "%s", vol);
  /* The state volume, likewise: snapshots and logs outlive the container.  */
  cr_assert (strstr (unit_values (svc, "Requires"), "avm-state-volume.service"), "%s", svc);
  char *svol = slurp (ts_fmt ("%s/avm-state-volume.service", units));
  cr_assert (strstr (unit_value (svol, "ExecStart"), "volume create")
                 && strstr (unit_value (svol, "ExecStart"), " avm-state"),
             "%s", svol);
  /* Enabled for the default target.  */
  struct stat st;
  cr_assert_eq (lstat (ts_fmt ("%s/default.target.wants/aaos.service", units), &st), 0);

  /* The display container reaches the platform's private bus: same runtime
     volume, same user, and the bus address of instance 1 in the image
     (AVM_RUNTIME_DIR=/run/avm, the Containerfile's ENV).  */
  char *disp = slurp (ts_fmt ("%s/avm-display.service", units));
  char *dexec = unit_value (disp, "ExecStart");
  cr_assert (strstr (dexec, " -v avm-run:/run/avm "), "%s", dexec);
  cr_assert (strstr (dexec, " --user 1000:36 "), "%s", dexec);
  cr_assert (strstr (unit_values (disp, "Requires"), "aaos.service")
                 && strstr (unit_values (disp, "After"), "aaos.service"),
             "%s", disp);
  cr_assert (strstr (slurp (src ("containers/Containerfile")), "AVM_RUNTIME_DIR=/run/avm"));
  cr_assert (strstr (slurp (src ("containers/Containerfile")), "--gid 36 kvm")
                 && strstr (slurp (src ("containers/Containerfile")), "--uid 1000 --gid kvm"),
             "the image's user is not 1000:36");
  json_t *plan = dry_plan ("aaos-x86_64", "AVM_RUNTIME_DIR=/run/avm", NULL);
  const char *bus = NULL;
  size_t i;
  json_t *s;
  json_array_foreach (json_object_get (plan, "services"), i, s)
    if (streq (json_string_value (json_object_get (s, "name")), "dbus"))
      bus = json_string_value (json_object_get (s, "socket"));
  cr_assert (bus, "aaos-x86_64 has no private dbus service");
  cr_assert (strstr (dexec, ts_fmt (" --env DBUS_SESSION_BUS_ADDRESS=unix:path=%s ", bus)), "bus %s: %s", bus, dexec);
  json_decref (plan);

  char *dest = install_tree ();
  const char *files[]
      = { ts_fmt ("%s/aaos.service", units), ts_fmt ("%s/avm-images-volume.service", units),
          ts_fmt ("%s/avm-state-volume.service", units), ts_fmt ("%s/avm-display.service", units), NULL };
  verify (dest, files);
}

/* quadlets/aaos-pod.kube: the manifest made as its comment says (avm kube
   of aaos-x86_64), through Debian 13's quadlet generator: podman kube
   play as a notify service (the manifest's sdnotify annotation relays
   avm's READY=1), kube down after it stops, and before that a pod stop
   with the manifest's grace period (podman 4.3's kube play ignores it);
   systemd-analyze verify of the result.  */
Test (deploy, kube_quadlet_generates)
{
  char *kube = slurp (src ("quadlets/aaos-pod.kube"));
  /* The command of the comment, run here.  */
  const char *cmd[] = { "avm",      "kube",           "-p",      "aaos-x86_64",          "--kind", "pod", "--name",
                        "aaos-pod", "--kvm-hostpath", "--image", "localhost/avm:latest", NULL };
  char *said = ts_fmt ("%s", "");
  for (size_t i = 0; cmd[i]; i++)
    said = ts_fmt ("%s%s%s", said, i ? " " : "", cmd[i]);
  char *flat = ts_fmt ("%s", kube);
  /* The comment's lines joined: "\\\n#   " continues it.  */
  for (char *p; (p = strstr (flat, " \\\n#     "));)
    memmove (p + 1, p + 9, strlen (p + 9) + 1);
  cr_assert (strstr (flat, said), "aaos-pod.kube does not say `%s`:\n%s", said, kube);
  char *out, *err;
  cr_assert_eq (ts_avm (&env, &out, "kube", "-p", "aaos-x86_64", "--kind", "pod", "--name", "aaos-pod",
                        "--kvm-hostpath", "--image", "localhost/avm:latest", NULL),
                0, "%s", out);
  json_t *m = ts_json (out);
  long long grace = json_integer_value (json_object_get (json_object_get (m, "spec"), "terminationGracePeriodSeconds"));
  cr_assert_eq (grace, aaos_budget ());
  cr_assert_str_eq (json_string_value (
                        json_object_get (json_object_get (json_object_get (m, "metadata"), "annotations"),
                                         "io.containers.sdnotify/avm")),
                    "container");

  char *in = ts_path (&env, "quadlets-kube"), *outdir = ts_path (&env, "units-kube");
  mkdir (in, 0755);
  mkdir (outdir, 0755);
  free (tu_write (in, "aaos-pod.kube", kube));
  free (tu_write (in, "aaos-pod.yaml", out));
  free (tu_write (in, "avm-images.volume", slurp (src ("quadlets/avm-images.volume"))));
  json_decref (m);
  char *e = ts_fmt ("QUADLET_UNIT_DIRS=%s", in);
  char *envv[] = { e, NULL };
  char *dry[] = { (char *) quadlet_bin (), "-dryrun", "-no-kmsg-log", NULL };
  cr_assert_eq (run (dry, envv, &out, &err), 0, "quadlet -dryrun failed:\n%s", err);
  for (char *l = strtok (err, "\n"); l; l = strtok (NULL, "\n"))
    cr_assert (strstr (l, "Loading source unit file"), "quadlet complained: %s", l);
  char *gen[] = { (char *) quadlet_bin (), "-no-kmsg-log", outdir, outdir, outdir, NULL };
  cr_assert_eq (run (gen, envv, &out, &err), 0, "quadlet failed:\n%s", err);

  char *svc = slurp (ts_fmt ("%s/aaos-pod.service", outdir));
  cr_assert_str_eq (unit_value (svc, "Type"), "notify");
  cr_assert_str_eq (unit_value (svc, "NotifyAccess"), "all");
  char *exec = unit_value (svc, "ExecStart");
  cr_assert (strstr (exec, " kube play ") && strstr (exec, " --replace ") && strstr (exec, " --service-container=true ")
                 && strstr (exec, ts_fmt ("%s/aaos-pod.yaml", in)),
             "%s", exec);
  cr_assert (strstr (unit_value (svc, "ExecStopPost"), " kube down ") != NULL, "%s", svc);
  cr_assert_str_eq (unit_value (svc, "ExecStop"), ts_fmt ("/usr/bin/podman pod stop --time %lld aaos-pod", grace));
  cr_assert_gt (atoll (unit_value (svc, "TimeoutStopSec")), grace, "%s", svc);
  cr_assert_geq (atoll (unit_value (svc, "TimeoutStartSec")), 600, "too short for a cold boot");
  cr_assert (strstr (unit_values (svc, "After"), "avm-images-volume.service"), "%s", svc);
  /* Not started at boot: aaos.container is the platform's default unit.  */
  struct stat st;
  cr_assert_neq (lstat (ts_fmt ("%s/default.target.wants/aaos-pod.service", outdir), &st), 0);

  char *dest = install_tree ();
  const char *files[]
      = { ts_fmt ("%s/aaos-pod.service", outdir), ts_fmt ("%s/avm-images-volume.service", outdir), NULL };
  verify (dest, files);
}

/* aaos.container's commented Exec= with --restore-or-boot: the active one
   plus that option, and, taken instead of it, in the generated ExecStart
   (after the image: Exec= replaces the image's CMD).  */
Test (deploy, quadlet_restore)
{
  char *c = slurp (src ("quadlets/aaos.container"));
  char *active = ts_fmt ("%s", unit_value (c, "Exec"));
  const char *p = strstr (c, "\n#Exec=");
  cr_assert (p, "no commented Exec= in aaos.container");
  p += strlen ("\n#");
  char *line = ts_fmt ("%.*s", (int) strcspn (p, "\n"), p);
  cr_assert_str_eq (line, ts_fmt ("Exec=%s --restore-or-boot booted", active),
                    "the commented Exec= is not the active one with --restore-or-boot booted");
  /* How to make the snapshot is said next to it.  */
  cr_assert (strstr (c, "podman exec aaos avm snapshot save booted"), "%s", c);
  char *copy = tu_replace (strdup (c), ts_fmt ("\nExec=%s\n", active), "\n");
  copy = tu_replace (copy, ts_fmt ("\n#%s\n", line), ts_fmt ("\n%s\n", line));
  char *text = ts_fmt ("%s", copy);
  free (copy);
  cr_assert_null (strstr (text, "\n#Exec="));
  cr_assert_str_eq (unit_values (text, "Exec"), ts_fmt ("%s --restore-or-boot booted", active));

  char *units = generate_as ("units-restore", text);
  char *svc = slurp (ts_fmt ("%s/aaos.service", units));
  char *exec = unit_value (svc, "ExecStart");
  const char *image = strstr (exec, " localhost/avm:latest ");
  cr_assert (image, "%s", exec);
  cr_assert (strstr (image, " --restore-or-boot booted"), "%s", exec);
  /* Its last arguments, as given to avm start.  */
  const char *tail = " --restore-or-boot booted";
  size_t el = strlen (exec), tl = strlen (tail);
  while (el > 0 && isspace ((unsigned char) exec[el - 1]))
    el--;
  cr_assert (el > tl && strncmp (exec + el - tl, tail, tl) == 0, "%s", exec);
  /* Everything else as in the shipped unit.  */
  cr_assert (strstr (exec, " -v avm-state:/var/lib/avm ") && strstr (exec, " --sdnotify=container "), "%s", exec);
  cr_assert_str_eq (unit_value (svc, "Type"), "notify");
  char *dest = install_tree ();
  const char *files[] = { ts_fmt ("%s/aaos.service", units), ts_fmt ("%s/avm-state-volume.service", units), NULL };
  verify (dest, files);
}

Test (deploy, quadlet_generator_rejects_a_bad_key)
{
  /* The generator check above can fail: an unknown key is an error.  */
  const char *q = quadlet_bin ();
  char *in = ts_path (&env, "bad");
  char *c = ts_fmt ("%s", slurp (src ("quadlets/aaos.container")));
  c = tu_replace (strdup (c), "AddDevice=/dev/kvm", "Device=/dev/kvm");
  free (tu_write (in, "aaos.container", c));
  free (c);
  char *e = ts_fmt ("QUADLET_UNIT_DIRS=%s", in);
  char *envv[] = { e, NULL };
  char *dry[] = { (char *) q, "-dryrun", "-no-kmsg-log", NULL };
  char *out, *err;
  cr_assert_neq (run (dry, envv, &out, &err), 0);
  cr_assert (strstr (err, "unsupported key 'Device'"), "%s", err);
}

Test (deploy, avm_service_unit_verifies)
{
  long long b = aaos_budget ();
  char *unit = slurp (src ("quadlets/avm@.service"));
  cr_assert_str_eq (unit_value (unit, "Type"), "notify");
  cr_assert_str_eq (unit_value (unit, "NotifyAccess"), "main");
  cr_assert_str_eq (unit_value (unit, "KillMode"), "mixed");
  cr_assert_str_eq (unit_value (unit, "KillSignal"), "SIGTERM");
  cr_assert_str_eq (unit_value (unit, "Restart"), "on-failure");
  cr_assert_null (unit_values (unit, "ExecStop"), "SIGTERM is the stop request");
  cr_assert_null (unit_values (unit, "MemoryDenyWriteExecute"), "TCG needs W+X memory");
  cr_assert_eq (atoll (unit_value (unit, "TimeoutStopSec")), b);
  cr_assert_gt (atoll (unit_value (unit, "WatchdogSec")), 0);
  cr_assert (strstr (unit_values (unit, "DeviceAllow"), "/dev/kvm rw"));
  cr_assert (strstr (unit_value (unit, "SupplementaryGroups"), "kvm"));
  char *exec = unit_value (unit, "ExecStart");
  const char *want = "/usr/bin/avm start --instance %i ";
  cr_assert (strncmp (exec, want, strlen (want)) == 0, "%s", exec);
  /* The directories avm uses are the ones systemd makes for it.  */
  cr_assert_str_eq (unit_value (unit, "RuntimeDirectory"), "avm/%i");
  cr_assert_str_eq (unit_value (unit, "StateDirectory"), "avm/%i");
  cr_assert (strstr (unit_values (unit, "Environment"), "AVM_RUNTIME_DIR=%t/avm AVM_STATE_DIR=%S/avm"));
  /* Its options are avm start's.  */
  char *help[] = { (char *) tu_avm_bin (), "start", "--help", NULL };
  char *out, *err;
  cr_assert_eq (run (help, NULL, &out, &err), 0);
  cr_assert (strstr (out, "--instance N") && strstr (out, "--images DIR"));

  /* systemd-analyze verify, instantiated, with the installed binary.  */
  char *dest = install_tree ();
  char *dir = ts_path (&env, "system");
  mkdir (dir, 0755);
  char *copy = tu_replace (strdup (unit), "/usr/bin/avm ", ts_fmt ("%s/usr/bin/avm ", dest));
  free (tu_write (dir, "avm@.service", copy));
  free (copy);
  const char *files[] = { ts_fmt ("%s/avm@1.service", dir), NULL };
  verify (dest, files);

  /* ... which can fail.  */
  copy = tu_replace (strdup (unit), "KillMode=mixed", "KillMode=mixd");
  copy = tu_replace (copy, "/usr/bin/avm ", ts_fmt ("%s/usr/bin/avm ", dest));
  free (tu_write (dir, "avm@.service", copy));
  free (copy);
  char *m = ts_fmt ("MANPATH=%s/usr/share/man", dest);
  char *envv[] = { m, NULL };
  char *argv[] = { "systemd-analyze", "verify", (char *) files[0], NULL };
  run (argv, envv, &out, &err);
  cr_assert (strstr (err, "mixd"), "the verifier did not notice a bad KillMode: %s", err);
}

/* avm@.service with the environment file its header documents for a quick
   boot: AVM_OPTIONS=--restore-or-boot booted.  */
Test (deploy, avm_service_restore_or_boot)
{
  char *unit = slurp (src ("quadlets/avm@.service"));
  const char *opt = "AVM_OPTIONS=--restore-or-boot booted";
  cr_assert (strstr (unit, ts_fmt ("\n#   %s\n", opt)), "avm@.service does not document %s", opt);
  cr_assert (strstr (unit, "\n#   avm snapshot save booted -i 1\n"), "avm@.service does not say how to save");
  /* The unit's state and runtime directories are the CLI's as root.  */
  cr_assert (strstr (unit_values (unit, "Environment"), "AVM_RUNTIME_DIR=%t/avm AVM_STATE_DIR=%S/avm"));
  cr_assert_str_eq (unit_value (unit, "EnvironmentFile"), "-/etc/avm/%i.env");
  char *exec = unit_value (unit, "ExecStart");
  cr_assert (strstr (exec, " $AVM_OPTIONS"), "%s", exec);

  /* systemd-analyze verify, instantiated, with that environment file.  */
  char *dest = install_tree ();
  char *dir = ts_path (&env, "system"), *etc = ts_path (&env, "etc");
  mkdir (dir, 0755);
  free (tu_write (etc, "1.env", ts_fmt ("%s\n", opt)));
  char *copy = tu_replace (strdup (unit), "/usr/bin/avm ", ts_fmt ("%s/usr/bin/avm ", dest));
  copy = tu_replace (copy, "EnvironmentFile=-/etc/avm/%i.env", ts_fmt ("EnvironmentFile=%s/%%i.env", etc));
  free (tu_write (dir, "avm@.service", copy));
  free (copy);
  const char *files[] = { ts_fmt ("%s/avm@1.service", dir), NULL };
  verify (dest, files);

  /* The command line systemd makes of it ($AVM_OPTIONS split at spaces):
     accepted, and without a snapshot a cold boot, said so.  */
  char *images = ts_path (&env, "images");
  mkdir (images, 0755);
  char *bin = ts_fmt ("%s/usr/bin/avm", dest);
  /* Every helper present, as in dry_plan.  */
  char *helpers = ts_fmt ("paths.helpers=%s", tu_fake_helpers ());
  char *argv[] = { bin,     "start", "--instance",        "1",      "--images",  images,   "--profile", "aaos-x86_64",
                   "--set", helpers, "--restore-or-boot", "booted", "--dry-run", "--json", NULL };
  char *e1 = ts_fmt ("AVM_RUNTIME_DIR=%s", env.run), *e2 = ts_fmt ("AVM_STATE_DIR=%s", env.state);
  char *envv[] = { e1, e2, "AVM_DATA_DIR", NULL };
  char *out, *err;
  cr_assert_eq (run (argv, envv, &out, &err), 0, "%s", err);
  cr_assert (strstr (err, "booting instead (--restore-or-boot)"), "%s", err);
  json_t *plan = ts_json (out);
  cr_assert_null (json_object_get (plan, "restore"), "%s", out);
  json_decref (plan);
}

Test (deploy, entrypoint_as_pid1_from_the_installed_tree)
{
  if (access ("/usr/bin/unshare", X_OK) != 0)
    cr_skip_test ("no unshare (util-linux)");
  struct instr in[64];
  size_t n = containerfile (in, 64);
  json_t *ep = exec_form (in, n, "ENTRYPOINT"), *cmd = exec_form (in, n, "CMD");
  /* ts_start_wrapped runs BIN start --profile P ARGS...: the entrypoint must
     be that, the CMD --profile P ARGS; the test's fast TCG profile stands for
     P, a temporary directory for /images, the rest is verbatim.  */
  cr_assert_str_eq (json_string_value (json_array_get (ep, 1)), "start");
  cr_assert_str_eq (json_string_value (json_array_get (cmd, 0)), "--profile");
  char *dest = install_tree ();
  char *bin = ts_fmt ("%s%s", dest, json_string_value (json_array_get (ep, 0)));
  cr_assert_eq (access (bin, X_OK), 0, "ENTRYPOINT %s is not in the installed tree",
                json_string_value (json_array_get (ep, 0)));
  char *images = ts_path (&env, "images");
  mkdir (images, 0755);
  const char *rest[16] = { 0 };
  size_t nrest = 0;
  for (size_t i = 2; i < json_array_size (cmd) && nrest < 14; i++)
    {
      const char *a = json_string_value (json_array_get (cmd, i));
      rest[nrest++] = streq (a, "/images") ? images : ts_fmt ("%s", a);
    }
  json_decref (ep);
  json_decref (cmd);

  char *svc = ts_fmt ("{\"h\": {\"exec\": [\"%s\", \"fork-orphan=0.5\", \"hang\"]},"
                      " \"g\": {\"exec\": [\"%s\", %s]}}",
                      env.fake, env.fake, ts_console_writes ("VIRTUAL_DEVICE_BOOT_COMPLETED"));
  char *profile = ts_profile (&env, "entry", svc, ts_boot (0), NULL);
  long long budget;
  {
    json_t *plan = dry_plan (profile, NULL, NULL);
    budget = plan_budget (plan);
    json_decref (plan);
  }
  const char *saved = getenv ("AVM_BIN");
  char *saved_copy = saved ? ts_fmt ("%s", saved) : NULL;
  setenv ("AVM_BIN", bin, 1);
  struct ts_avm a;
  ts_start_wrapped (&env, &a, profile, "/usr/bin/unshare", rest[0], rest[1], rest[2], rest[3], rest[4], rest[5],
                    rest[6], rest[7], rest[8], rest[9], rest[10], rest[11], rest[12], rest[13], NULL);
  if (saved_copy)
    setenv ("AVM_BIN", saved_copy, 1);
  else
    unsetenv ("AVM_BIN");
  ts_wait_notify (&a, "READY=1", 60);
  pid_t avm = ts_child_of (a.pid);
  cr_assert_gt (avm, 0, "no avm process under unshare");
  /* The orphan the helper left has been re-parented to avm and reaped.  */
  usleep (1500000);
  cr_assert_eq (ts_zombies_of (avm), 0, "avm as PID 1 left a zombie");
  /* podman stop: SIGTERM to PID 1.  */
  kill (avm, SIGTERM);
  cr_assert_eq (ts_wait (&a, 60), 0, "%s", ts_stderr (&a));
  char *msgs = ts_notify_all (&a);
  cr_assert (strstr (msgs, "STOPPING=1"), "%s", msgs);
  /* The budget formula the deployment files are checked with is what avm
     announces when it stops.  */
  cr_assert (strstr (msgs, ts_fmt ("EXTEND_TIMEOUT_USEC=%lld\n", budget * 1000000LL)), "budget %lld s:\n%s", budget,
             msgs);
  cr_assert_eq (ts_count_procs_under (env.dir), 0, "processes left running");
  cr_assert_eq (access (env.run1, F_OK), -1, "runtime directory left behind");
}

/* Start BIN (ARGS after `start --profile PROFILE`, NULL-terminated, at most
   12) as PID 1 of a new pid namespace, as the container's entrypoint.  */
static void
start_pid1 (struct ts_avm *a, const char *bin, const char *profile, const char *const *args)
{
  const char *r[13] = { 0 };
  for (size_t i = 0; args[i]; i++)
    {
      cr_assert_lt (i, 12);
      r[i] = args[i];
    }
  const char *saved = getenv ("AVM_BIN");
  char *saved_copy = saved ? ts_fmt ("%s", saved) : NULL;
  setenv ("AVM_BIN", bin, 1);
  ts_start_wrapped (&env, a, profile, "/usr/bin/unshare", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                    r[10], r[11], NULL);
  if (saved_copy)
    setenv ("AVM_BIN", saved_copy, 1);
  else
    unsetenv ("AVM_BIN");
}

/* podman stop: SIGTERM to PID 1 (avm, the child of unshare); exit 0 and
   nothing left.  */
static void
stop_pid1 (struct ts_avm *a)
{
  pid_t avm = ts_child_of (a->pid);
  cr_assert_gt (avm, 0, "no avm process under unshare");
  cr_assert_eq (kill (avm, SIGTERM), 0);
  cr_assert_eq (ts_wait (a, 90), 0, "%s", ts_stderr (a));
  cr_assert (strstr (ts_notify_all (a), "STOPPING=1"), "%s", ts_notify_all (a));
  cr_assert_eq (ts_count_procs_under (env.dir), 0, "processes left running");
  cr_assert_eq (access (env.run1, F_OK), -1, "runtime directory left behind");
}

/* `BIN ARGS...` (NULL-terminated) with this test's directories, as
   `podman exec` runs it in the container (the image's ENV).  */
static int
cli (const char *bin, char **out, char **err, ...)
{
  char *argv[16] = { (char *) bin };
  size_t n = 1;
  va_list ap;
  va_start (ap, err);
  for (char *s; (s = va_arg (ap, char *)) && n < 15;)
    argv[n++] = s;
  va_end (ap);
  argv[n] = NULL;
  char *e1 = ts_fmt ("AVM_RUNTIME_DIR=%s", env.run), *e2 = ts_fmt ("AVM_STATE_DIR=%s", env.state);
  char *envv[] = { e1, e2, NULL };
  return run (argv, envv, out, err);
}

/* Issue 18: the container's entrypoint (the installed avm as PID 1) boots
   the demo, `avm snapshot save booted` (podman exec) saves it into the
   state directory (the image's volume), podman stop; the next container
   with --restore booted is READY as soon as QEMU has loaded the state;
   --restore-or-boot of a snapshot that is not there boots cold.  */
Test (deploy, restore_as_pid1_from_the_installed_tree, .timeout = TU_TIMEOUT (600))
{
  if (access ("/usr/bin/unshare", X_OK) != 0)
    cr_skip_test ("no unshare (util-linux)");
  char *images = tu_demo_image ();
  char *img = ts_fmt ("%s", images);
  free (images);
  struct instr in[64];
  size_t n = containerfile (in, 64);
  json_t *ep = exec_form (in, n, "ENTRYPOINT");
  char *dest = install_tree ();
  char *bin = ts_fmt ("%s%s", dest, json_string_value (json_array_get (ep, 0)));
  json_decref (ep);
  cr_assert_eq (access (bin, X_OK), 0, "the ENTRYPOINT is not in the installed tree");
  /* The demo profile comes from the installed tree (datadir/profiles).  */
  cr_assert_eq (access (ts_fmt ("%s/usr/share/avm/profiles/demo.json", dest), R_OK), 0);

  /* First container: a cold boot.  */
  struct ts_avm a;
  start_pid1 (&a, bin, "demo",
              (const char *const[]) { "--images", img, "--set", "machine.accel=tcg", "-O", "share=off", NULL });
  char *msgs = ts_wait_notify (&a, "READY=1", 200);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  char *out, *err;
  cr_assert_eq (cli (bin, &out, &err, "status", "--json", NULL), 0, "%s", err);
  json_t *st = ts_json (out);
  cr_assert_str_eq (json_string_value (json_object_get (st, "profile")), "demo");
  cr_assert_null (json_object_get (st, "restored_from"));
  json_decref (st);
  /* podman exec CONTAINER avm snapshot save booted.  */
  int rc = cli (bin, &out, &err, "snapshot", "save", "booted", NULL);
  cr_assert_eq (rc, 0, "avm snapshot save: exit %d: %s", rc, err);
  cr_assert (strstr (out, ts_fmt ("%s/1/snapshots/booted", env.state)), "%s", out);
  stop_pid1 (&a);
  /* In the state directory, which outlives the container.  */
  struct stat stt;
  cr_assert_eq (stat (ts_fmt ("%s/1/snapshots/booted/snapshot.json", env.state), &stt), 0);

  /* Second container: restored.  */
  double t0 = ts_now ();
  start_pid1 (&a, bin, "demo",
              (const char *const[]) { "--images", img, "--set", "machine.accel=tcg", "-O", "share=off", "--restore",
                                      "booted", NULL });
  msgs = ts_wait_notify (&a, "READY=1", 60);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  cr_log_info ("deploy: restore as PID 1 READY after %.2f s", ts_now () - t0);
  cr_assert (strstr (ts_stderr (&a), "guest restored from snapshot booted"), "%s", ts_stderr (&a));
  cr_assert_eq (cli (bin, &out, &err, "status", "--json", NULL), 0, "%s", err);
  st = ts_json (out);
  cr_assert_str_eq (json_string_value (json_object_get (st, "restored_from")), "booted", "%s", out);
  cr_assert_str_eq (json_string_value (json_object_get (st, "state")), "running", "%s", out);
  json_decref (st);
  stop_pid1 (&a);

  /* Third: --restore-or-boot of a snapshot that is not there boots cold.  */
  start_pid1 (&a, bin, "demo",
              (const char *const[]) { "--images", img, "--set", "machine.accel=tcg", "-O", "share=off",
                                      "--restore-or-boot", "nosuch", NULL });
  msgs = ts_wait_notify (&a, "READY=1", 200);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  cr_assert (strstr (ts_stderr (&a), "booting instead (--restore-or-boot)"), "%s", ts_stderr (&a));
  cr_assert_null (strstr (ts_stderr (&a), "guest restored"), "%s", ts_stderr (&a));
  cr_assert_eq (cli (bin, &out, &err, "status", "--json", NULL), 0, "%s", err);
  st = ts_json (out);
  cr_assert_null (json_object_get (st, "restored_from"), "%s", out);
  json_decref (st);
  stop_pid1 (&a);
}

/* ---- the image under podman -------------------------------------------- */

/* `podman ARGS...` (NULL-terminated), tu_podman's; *OUT and *ERR kept
   until the test ends, never NULL.  */
#define podman(out, err, ...) kept (tu_podman (out, err, __VA_ARGS__), out, err)
static int
kept (int r, char **out, char **err)
{
  char *o = *out, *e = *err;
  *out = ts_fmt ("%s", o ? o : "");
  *err = ts_fmt ("%s", e ? e : "");
  free (o);
  free (e);
  return r;
}

Test (deploy, image_builds_with_podman, .timeout = TU_TIMEOUT (1200))
{
  char *id = tu_container_image ();
  char *out, *err;
  char *insp[] = { "podman", "image", "inspect", "--format", "{{json .Config}}", id, NULL };
  cr_assert_eq (run (insp, NULL, &out, &err), 0, "%s", err);
  json_t *conf = ts_json (out);
  cr_assert_str_eq (json_string_value (json_object_get (conf, "User")), "avm");
  cr_assert_str_eq (json_string_value (json_object_get (conf, "StopSignal")), "SIGTERM");
  cr_assert_str_eq (json_string_value (json_array_get (json_object_get (conf, "Entrypoint"), 0)), "/usr/bin/avm");
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (conf, "Labels"), "io.avm.stop-timeout")),
                    ts_fmt ("%lld", aaos_budget ()));
  cr_assert (json_object_get (json_object_get (conf, "Volumes"), "/images"));
  cr_assert (json_object_get (json_object_get (conf, "Volumes"), "/var/lib/avm"));
  json_decref (conf);

  /* Inside the image: its avm runs (as the image's user) and finds QEMU,
     the display bus daemon and the vhost-user GPU backend for the default
     profile.  */
  char *mnt[] = { "podman", "image", "mount", id, NULL };
  cr_assert_eq (run (mnt, NULL, &out, &err), 0, "%s", err);
  char *root = ts_fmt ("%.*s", (int) strcspn (out, "\n"), out);
  const char *files[] = { "/usr/bin/avm",
                          "/usr/share/avm/profiles/aaos-x86_64.json",
                          "/usr/share/avm/profiles/demo.json",
                          "/usr/bin/qemu-system-x86_64",
                          "/usr/bin/dbus-daemon",
                          "/usr/lib/qemu/vhost-user-gpu",
                          "/usr/lib/qemu/virtiofsd",
                          "/usr/lib/x86_64-linux-gnu/qemu/ui-dbus.so" };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
    cr_assert_eq (access (ts_fmt ("%s%s", root, files[i]), F_OK), 0, "%s is not in the image", files[i]);
  char *chroot_argv[] = { "chroot", "--userspec=avm:kvm", root, "/usr/bin/avm", "--version", NULL };
  int r = run (chroot_argv, NULL, &out, &err);
  char *um[] = { "podman", "image", "unmount", id, NULL };
  char *o2, *e2;
  run (um, NULL, &o2, &e2);
  cr_assert_eq (r, 0, "avm --version in the image: %s", err);
  cr_assert (strstr (out, "avm"), "%s", out);
}

/* The image's name in the documentation's commands.  */
static bool
image_word (const char *w)
{
  return streq (w, "avm") || streq (w, "localhost/avm:latest");
}

/* The podman run line the documentation gives for hosts whose crun cannot
   start containers: the words from "CONTAINERS_CONF=containers/
   containers.conf" to the end of the command in WHAT's TEXT (continuation
   lines joined, comment marks and roff escapes dropped), at most MAX into
   WORDS; returns their number.  */
static size_t
doc_run_line (const char *what, const char *text, char *words[], size_t max)
{
  const char *start = strstr (text, "CONTAINERS_CONF=containers/containers.conf podman run");
  cr_assert (start, "%s has no `CONTAINERS_CONF=containers/containers.conf podman run` line", what);
  char *line = ts_fmt ("%s", "");
  for (const char *p = start;;)
    {
      const char *nl = strchrnul (p, '\n');
      char *plain = tu_replace (tu_replace (strndup (p, (size_t) (nl - p)), "\\-", "-"), "\\e", "\\");
      char *l = ts_fmt ("%s", plain);
      free (plain);
      size_t len = strlen (l);
      bool cont = len > 0 && l[len - 1] == '\\';
      if (cont)
        l[len - 1] = ' ';
      line = ts_fmt ("%s %s", line, l);
      if (!cont || !*nl)
        break;
      p = nl + 1 + strspn (nl + 1, " #");
    }
  size_t n = 0;
  for (char *save = NULL, *w = strtok_r (line, " ", &save); w; w = strtok_r (NULL, " ", &save))
    {
      cr_assert_lt (n, max, "%s: a longer podman run line than %zu words", what, max);
      words[n++] = w;
    }
  return n;
}

/* What image_runs_with_podman made in podman's storage, removed by its
   .fini (which Criterion runs before the suite's) when it fails half-way.  */
static char *run_container, *run_volume;

static void
podman_cleanup (void)
{
  char *out, *err;
  if (run_container)
    podman (&out, &err, "rm", "--force", "--time", "0", run_container, NULL);
  if (run_volume)
    podman (&out, &err, "volume", "rm", "--force", run_volume, NULL);
  run_container = run_volume = NULL;
}

/* Issue 19: the image runs under podman, as documented for hosts whose
   crun cannot start containers (containers/containers.conf: runc, the
   host's rlimits): the demo guest (make demo-image, read-only at /images;
   the demo profile of the image's own tree) under TCG without the share
   (virtiofsd runs as root only), as the image's user avm, not privileged.
   `podman run --sdnotify=container` passes avm's READY=1 on to the test's
   NOTIFY_SOCKET when the guest has booted; `podman stop`, with the image's
   stop timeout (its io.avm.stop-timeout label), stops it cleanly within
   the demo's stop budget: exit status 0, the guest powered itself off (its
   console log, in the state volume).  Container and volume are removed.
   The command is the one the Containerfile's header, README.md and
   avm-start(1) give for such hosts, word for word.  */
Test (deploy, image_runs_with_podman, .fini = podman_cleanup, .timeout = TU_TIMEOUT (1200))
{
  char *id = tu_container_image ();
  if (access ("/usr/sbin/runc", X_OK) != 0 && access ("/usr/bin/runc", X_OK) != 0)
    cr_skip_test ("no runc (Debian package runc): containers/containers.conf runs the image with it");
  char *demo = tu_demo_image ();
  char *images = ts_fmt ("%s", demo);
  free (demo);
  cr_assert_eq (setenv ("CONTAINERS_CONF", src ("containers/containers.conf"), 1), 0);

  char *out, *err;
  cr_assert_eq (podman (&out, &err, "image", "inspect", "--format", "{{index .Config.Labels \"io.avm.stop-timeout\"}}",
                        id, NULL),
                0, "%s", err);
  long long stop_timeout = atoll (out);
  cr_assert_gt (stop_timeout, 10, "io.avm.stop-timeout %s", out);
  /* KVM guests hang here; virtiofsd (the share) runs as root only.  */
  char *args[] = { "--set", "machine.accel=tcg", "-O", "share=off", NULL };
  long long budget;
  {
    json_t *plan = dry_plan ("demo", NULL, args);
    budget = plan_budget (plan);
    json_decref (plan);
  }
  cr_assert_leq (budget, stop_timeout, "the demo's stop budget %lld s, the image's stop timeout %lld s", budget,
                 stop_timeout);

  /* The command the documentation gives: the same words in the
     Containerfile's header, README.md and avm-start(1) (the image's name
     aside), run as given but for --rm (the container is inspected after
     it stops), with the demo images made here, the image built, and a
     name and a state volume of the test's own.  */
  char *doc[48];
  size_t nd = doc_run_line ("containers/Containerfile", slurp (src ("containers/Containerfile")), doc, 48);
  const char *others[] = { "README.md", "man/avm-start.1" };
  for (size_t k = 0; k < sizeof others / sizeof others[0]; k++)
    {
      char *w[48];
      size_t nw = doc_run_line (others[k], slurp (src (others[k])), w, 48);
      cr_assert_eq (nw, nd, "%s and the Containerfile give podman run lines of %zu and %zu words", others[k], nw, nd);
      for (size_t i = 0; i < nd; i++)
        cr_assert (streq (w[i], doc[i]) || (image_word (w[i]) && image_word (doc[i])),
                   "%s's podman run line says %s where the Containerfile says %s", others[k], w[i], doc[i]);
    }
  cr_assert (nd > 3 && streq (doc[1], "podman") && streq (doc[2], "run"));
  run_container = ts_fmt ("avm-test-%d", (int) getpid ());
  run_volume = ts_fmt ("avm-test-state-%d", (int) getpid ());
  char *argv[64] = { "/usr/bin/podman", "run", "--name", run_container, "-v", ts_fmt ("%s:/var/lib/avm", run_volume) };
  size_t na = 6;
  const char *profile_args = NULL;
  bool sdnotify = false, stop = false;
  for (size_t i = 3; i < nd; i++)
    {
      char *w = doc[i];
      if (streq (w, "--rm"))
        continue;
      if (image_word (w))
        {
          w = id;
          profile_args = ts_fmt ("%s", "");
          for (size_t j = i + 1; j < nd; j++)
            profile_args = ts_fmt ("%s%s%s", profile_args, *profile_args ? " " : "", doc[j]);
        }
      else if (strncmp (w, "./build/demo:", 13) == 0)
        w = ts_fmt ("%s%s", images, w + strlen ("./build/demo"));
      sdnotify |= streq (w, "--sdnotify=container");
      if (streq (w, "--stop-timeout") && i + 1 < nd)
        {
          cr_assert_eq (atoll (doc[i + 1]), stop_timeout, "the documented --stop-timeout %s, the image's label %lld",
                        doc[i + 1], stop_timeout);
          stop = true;
        }
      cr_assert_lt (na, 63);
      argv[na++] = w;
    }
  argv[na] = NULL;
  cr_assert (sdnotify && stop, "the documented podman run line has no --sdnotify=container or --stop-timeout");
  cr_assert (profile_args, "no image (avm, localhost/avm:latest) in the documented podman run line");
  cr_assert_str_eq (profile_args, "--profile demo --images /images --set machine.accel=tcg -O share=off",
                    "the documented podman run line runs something else than the demo this test runs");
  cr_assert_str_eq (doc[0], "CONTAINERS_CONF=containers/containers.conf");
  podman (&out, &err, "rm", "--force", "--time", "0", run_container, NULL);
  podman (&out, &err, "volume", "rm", "--force", run_volume, NULL);
  struct ts_avm a;
  double t0 = ts_now ();
  ts_spawn (&env, &a, argv);
  ts_wait_notify (&a, "READY=1", 300);
  double ready = ts_now () - t0;
  cr_log_info ("deploy: the image under podman READY after %.1f s", ready);

  /* Booted (not merely started, as --sdnotify=conmon would say), in the
     container, as the image's user, unprivileged.  */
  cr_assert_eq (podman (&out, &err, "exec", run_container, "avm", "status", "--json", NULL), 0, "%s%s\n%s", out, err,
                ts_stderr (&a));
  json_t *st = ts_json (out);
  cr_assert_str_eq (json_string_value (json_object_get (st, "profile")), "demo", "%s", out);
  cr_assert_str_eq (json_string_value (json_object_get (st, "state")), "running", "%s", out);
  json_decref (st);
  cr_assert_eq (podman (&out, &err, "exec", run_container, "id", "-un", NULL), 0, "%s", err);
  cr_assert_str_eq (out, "avm\n");
  cr_assert_eq (podman (&out, &err, "inspect", "--format", "{{.HostConfig.Privileged}} {{.Config.StopTimeout}}",
                        run_container, NULL),
                0, "%s", err);
  cr_assert_str_eq (out, ts_fmt ("false %lld\n", stop_timeout));
  /* Quick boot (avm-snapshot(1)): saved into the state volume.  */
  cr_assert_eq (podman (&out, &err, "exec", run_container, "avm", "snapshot", "save", "booted", NULL), 0, "%s%s", out,
                err);
  cr_assert (strstr (out, "/var/lib/avm/1/snapshots/booted"), "%s", out);

  /* podman stop: the container's stop timeout, SIGTERM to avm as PID 1.  */
  double t1 = ts_now ();
  cr_assert_eq (podman (&out, &err, "stop", run_container, NULL), 0, "podman stop: %s", err);
  double stopped = ts_now () - t1;
  cr_log_info ("deploy: podman stop took %.1f s (budget %lld s)", stopped, budget);
  cr_assert_eq (ts_wait (&a, 60), 0, "podman run exited %d:\n%s", a.status, ts_stderr (&a));
  cr_assert_lt (stopped, (double) budget, "podman stop took %.1f s, the demo's budget is %lld s:\n%s", stopped, budget,
                ts_stderr (&a));
  cr_assert_eq (podman (&out, &err, "wait", run_container, NULL), 0, "%s", err);
  cr_assert_str_eq (out, "0\n", "podman wait: %s", out);
  cr_assert_eq (podman (&out, &err, "inspect", "--format", "{{.State.ExitCode}} {{.State.OOMKilled}}", run_container,
                        NULL),
                0, "%s", err);
  cr_assert_str_eq (out, "0 false\n");
  char *log = ts_stderr (&a);
  cr_assert (strstr (log, "guest booted in"), "%s", log);
  cr_assert (strstr (log, "avm: stopping: SIGTERM"), "%s", log);
  cr_assert (strstr (log, "qemu: system_powerdown"), "%s", log);
  cr_assert (strstr (log, "qemu: exited with status 0"), "%s", log);
  cr_assert (strstr (log, "avm: stopped"), "%s", log);
  /* The guest shut itself down: its console log, in the state volume.  */
  cr_assert_eq (podman (&out, &err, "volume", "inspect", "--format", "{{.Mountpoint}}", run_volume, NULL), 0, "%s",
                err);
  char *console = ts_fmt ("%.*s/1/logs/console-console.log", (int) strcspn (out, "\n"), out);
  char *c = slurp (console);
  cr_assert (strstr (c, "AVM_DEMO: shutdown: poweroff"), "the guest did not power off:\n%s", c);

  /* A new container on the same volume, as the Containerfile says:
     --restore-or-boot after the profile arguments.  READY once QEMU has
     loaded the state, the guest's clock set through its agent.  */
  cr_assert_eq (podman (&out, &err, "rm", run_container, NULL), 0, "podman rm: %s", err);
  cr_assert_lt (na, 61);
  argv[na++] = "--restore-or-boot";
  argv[na++] = "booted";
  argv[na] = NULL;
  t0 = ts_now ();
  ts_spawn (&env, &a, argv);
  ts_wait_notify (&a, "READY=1", 120);
  cr_log_info ("deploy: the image under podman restored, READY after %.1f s (a boot: %.1f s)", ts_now () - t0, ready);
  cr_assert_eq (podman (&out, &err, "exec", run_container, "avm", "status", "--json", NULL), 0, "%s%s\n%s", out, err,
                ts_stderr (&a));
  st = ts_json (out);
  cr_assert_str_eq (json_string_value (json_object_get (st, "restored_from")), "booted", "%s", out);
  json_decref (st);
  cr_assert (strstr (ts_stderr (&a), "guest restored from snapshot booted in"), "%s", ts_stderr (&a));
  cr_assert_eq (podman (&out, &err, "stop", run_container, NULL), 0, "podman stop: %s", err);
  cr_assert_eq (ts_wait (&a, 60), 0, "podman run --restore-or-boot exited %d:\n%s", a.status, ts_stderr (&a));
  cr_assert_null (strstr (ts_stderr (&a), "booting instead"), "%s", ts_stderr (&a));

  cr_assert_eq (podman (&out, &err, "rm", run_container, NULL), 0, "podman rm: %s", err);
  cr_assert_eq (podman (&out, &err, "volume", "rm", run_volume, NULL), 0, "podman volume rm: %s", err);
  run_container = run_volume = NULL;
  cr_assert_neq (podman (&out, &err, "container", "exists", ts_fmt ("avm-test-%d", (int) getpid ()), NULL), 0);
}
