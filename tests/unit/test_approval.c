/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Issue 15, finding 4: helpers are approved like QEMU devices
 * (lib/helper/catalog.h).  The catalog's shapes, one by one; every shipped
 * profile with every option choice approved; `sh -c` through --set refused
 * (exit 2) and, with --allow-unapproved, flagged in the dry run, the JSON
 * plan, avm check, the warnings, the logs' run header and avm status of a
 * running instance.
 */
#include "helper/catalog.h"
#include "test_start.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define assert_contains(hay, needle) cr_assert (strstr ((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))

/* avm_helper_approved on ARGV (JSON text) and ENV (JSON text or NULL):
   the verdict, and the reason in *WHY (freed by the caller).  */
static int
verdict (const char *argv, const char *env, char **why)
{
  json_t *a = json_loads (argv, 0, NULL), *e = env ? json_loads (env, 0, NULL) : NULL;
  cr_assert_not_null (a, "%s", argv);
  int r = avm_helper_approved (a, e, why);
  json_decref (a);
  json_decref (e);
  cr_assert_geq (r, 0);
  return r;
}

static void
approved (const char *argv, const char *env)
{
  char *why = NULL;
  int r = verdict (argv, env, &why);
  cr_expect_eq (r, 0, "%s %s: not approved: %s", argv, env ? env : "", why);
  free (why);
}

static void
refused (const char *argv, const char *env, const char *reason)
{
  char *why = NULL;
  int r = verdict (argv, env, &why);
  cr_expect_eq (r, 1, "%s %s: approved", argv, env ? env : "");
  cr_expect (why && strstr (why, reason), "%s: \"%s\", want \"%s\"", argv, why, reason);
  free (why);
}

TestSuite (approval);

Test (approval, catalog_shapes)
{
  /* The program: its base name; nothing else.  */
  refused ("[\"sh\", \"-c\", \"id\"]", NULL, "program sh is not an approved helper");
  refused ("[\"/bin/true\"]", NULL, "program /bin/true is not an approved helper");
  approved ("[\"/opt/cf/bin/secure_env\", \"-keymint_impl=software\"]", NULL);
  for (const char *const *p = avm_helper_programs (); *p; p++)
    {
      char *a = NULL;
      cr_assert_geq (asprintf (&a, "[\"%s\"]", *p), 0);
      approved (a, NULL);
      free (a);
    }

  /* gflags: -name=V and --name=V; unknown flags and wrong shapes.  */
  approved ("[\"secure_env\", \"--keymint_fd_in=${fd:keymint.out}\", \"-keymint_impl=tpm\"]", NULL);
  refused ("[\"secure_env\", \"-evil=1\"]", NULL, "argument 1 \"-evil=1\": secure_env has no approved flag -evil");
  refused ("[\"secure_env\", \"-keymint_fd_in=3\"]", NULL, "-keymint_fd_in wants a descriptor ${fd:NAME}");
  refused ("[\"secure_env\", \"-keymint_impl=remote\"]", NULL, "wants software|tpm");
  refused ("[\"secure_env\", \"-keymint_impl\"]", NULL, "wants software|tpm");
  approved ("[\"kernel_log_monitor\", \"-subscriber_fds=${fd:a.write},${fd:b.write}\"]", NULL);
  refused ("[\"kernel_log_monitor\", \"-subscriber_fds=${fd:a},3\"]", NULL, "wants descriptors");
  approved ("[\"root-canal\", \"--hci_port=7300\"]", NULL);
  refused ("[\"root-canal\", \"--hci_port=70000\"]", NULL, "wants a port 1..65535");
  refused ("[\"root-canal\", \"--hci_port=0\"]", NULL, "wants a port");
  approved ("[\"socket_vsock_proxy\", \"--vhost_user_vsock=true\", \"--label=adb\"]", NULL);
  refused ("[\"socket_vsock_proxy\", \"--vhost_user_vsock=yes\"]", NULL, "wants true or false");
  refused ("[\"socket_vsock_proxy\", \"--label=a b\"]", NULL, "wants a word");
  refused ("[\"tombstone_receiver\", \"-tombstone_dir=relative/dir\"]", NULL, "wants an absolute path");
  refused ("[\"tombstone_receiver\", \"-tombstone_dir=/a,b\"]", NULL, "wants an absolute path without commas");
  refused ("[\"config_server\", \"extra\"]", NULL, "config_server takes no further positional argument");
  approved ("[\"adb_connector\", \"--addresses=127.0.0.1:6520\"]", NULL);
  refused ("[\"adb_connector\", \"--addresses=127.0.0.1:6520;reboot\"]", NULL, "wants HOST:PORT");

  /* GNU style, values in the next argument, option lists.  */
  approved ("[\"virtiofsd\", \"--socket-path=/run/v.sock\", \"-o\", \"source=/s\", \"-o\", \"cache=auto\"]", NULL);
  approved ("[\"virtiofsd\", \"-o\", \"source=/s,cache=auto,sandbox=chroot,xattr\"]", NULL);
  refused ("[\"virtiofsd\", \"-o\", \"source=/s,sandbox=none\"]", NULL, "option sandbox wants namespace|chroot");
  refused ("[\"virtiofsd\", \"-o\", \"source=relative\"]", NULL, "option source wants an absolute path");
  refused ("[\"virtiofsd\", \"-o\", \"source=/s,\"]", NULL, "option  is not approved");
  refused ("[\"virtiofsd\", \"-o\", \"xattr=1\"]", NULL, "option xattr wants no value");
  refused ("[\"virtiofsd\", \"-o\", \"evil\"]", NULL, "option evil is not approved");
  refused ("[\"virtiofsd\", \"-o\"]", NULL, "-o wants its value as the next argument");
  refused ("[\"virtiofsd\", \"-o=source=/s\"]", NULL, "-o wants its value as the next argument");
  refused ("[\"vhost-user-gpu\", \"--virgl=1\"]", NULL, "--virgl takes no value");
  refused ("[\"vhost-user-gpu\", \"--socket-path\"]", NULL, "--socket-path wants an absolute path");
  approved ("[\"vhost_device_vsock\", \"--vm\", \"guest-cid=3,socket=/r/v.sock,uds-path=/r/vm.vsock\"]", NULL);
  refused ("[\"vhost-device-vsock\", \"--vm\", \"guest-cid=x\"]", NULL, "option guest-cid wants a number");
  approved ("[\"dbus-daemon\", \"--nofork\", \"--address=unix:path=/r/dbus.sock\"]", NULL);
  refused ("[\"dbus-daemon\", \"--address=tcp:host=0.0.0.0,port=1\"]", NULL, "--address wants unix:path=PATH");

  /* Positional arguments, in order.  */
  approved ("[\"vhal_proxy_server\", \"/i/etc/vhalconfig\", \"127.0.0.1:9300\", \"vsock:2:9300\"]", NULL);
  approved ("[\"vhal_proxy_server\", \"/i/etc/vhalconfig\", \"192.168.98.1:9300\", \"unix:///r/vm.vsock_9300\"]", NULL);
  refused ("[\"vhal_proxy_server\", \"/i\", \"127.0.0.1:9300\", \"tcp:1.2.3.4:1\"]", NULL,
           "positional argument 3 wants vsock:CID:PORT or unix://PATH");
  refused ("[\"vhal_proxy_server\", \"/i\", \"127.0.0.1:9300\", \"vsock:2:9300\", \"more\"]", NULL,
           "takes no further positional argument");

  /* The environment.  */
  approved ("[\"secure_env\"]", "{\"HOME\": \"/my,images\", \"CUTTLEFISH_INSTANCE\": \"1\"}");
  refused ("[\"secure_env\"]", "{\"LD_PRELOAD\": \"/tmp/x.so\"}", "environment variable LD_PRELOAD is not approved");
  refused ("[\"secure_env\"]", "{\"HOME\": \"relative\"}", "environment variable HOME wants an absolute path");
  refused ("[\"secure_env\"]", "{\"CUTTLEFISH_INSTANCE\": \"1; x\"}", "CUTTLEFISH_INSTANCE wants a number");
}

/* A recorded capability set with the two devices upstream QEMU lacks
   (virtio-rotary-pci, vhost-user-video-pci), so that every option choice
   of the AAOS profiles can be planned.  */
static char *
patched_caps (const char *dir, const char *name)
{
  char *src = NULL, *dst = NULL;
  cr_assert_geq (asprintf (&src, "%s/tests/data/caps-qemu-%s.json", tu_srcdir (), name), 0);
  json_t *j = json_load_file (src, 0, NULL);
  cr_assert_not_null (j, "%s", src);
  json_array_append_new (json_object_get (j, "devices"), json_string ("virtio-rotary-pci"));
  json_array_append_new (json_object_get (j, "devices"), json_string ("vhost-user-video-pci"));
  cr_assert_geq (asprintf (&dst, "%s/caps-%s.json", dir, name), 0);
  cr_assert_eq (json_dump_file (j, dst, 0), 0);
  json_decref (j);
  free (src);
  return dst;
}

/* Plan PROFILE with one option choice (or none): approved, nothing listed.  */
static void
expect_approved (const char *profile, const char *caps, const char *option)
{
  char *args[] = { "start",
                   "-n",
                   "--json",
                   "--caps",
                   (char *) caps,
                   "--images",
                   "/nonexistent",
                   "--set",
                   "machine.accel=tcg",
                   "-p",
                   (char *) profile,
                   option ? "-O" : NULL,
                   (char *) option,
                   NULL };
  char *out = NULL, *err = NULL;
  int r = tu_avmv (args, &out, &err);
  cr_assert_eq (r, 0, "%s -O %s: exit %d: %s", profile, option ? option : "-", r, err);
  json_t *j = json_loads (out, 0, NULL);
  cr_assert_not_null (j);
  char *list = json_dumps (json_object_get (j, "unapproved"), 0);
  cr_expect (json_is_true (json_object_get (j, "approved")), "%s -O %s: not approved: %s", profile,
             option ? option : "-", list);
  cr_expect_str_eq (list, "[]");
  cr_expect_null (strstr (err, "UNAPPROVED"), "%s", err);
  free (list);
  json_decref (j);
  free (out);
  free (err);
}

Test (approval, every_shipped_profile_and_option_is_approved, .timeout = TU_TIMEOUT (240))
{
  char *dir = tu_tmpdir ();
  char *x86 = patched_caps (dir, "10.0-x86_64"), *arm = patched_caps (dir, "10.0-aarch64");
  char *out = NULL, *err = NULL;
  char *names[] = { "profiles", "list", "--names", NULL };
  cr_assert_eq (tu_avmv (names, &out, &err), 0, "%s", err);
  size_t n = 0, choices = 0;
  for (char *save = NULL, *name = strtok_r (out, "\n", &save); name; name = strtok_r (NULL, "\n", &save), n++)
    {
      const char *caps = strstr (name, "arm64") ? arm : x86;
      expect_approved (name, caps, NULL);
      /* Every choice of every option.  */
      char *show[] = { "profiles", "show", name, NULL };
      char *pj = NULL, *perr = NULL;
      cr_assert_eq (tu_avmv (show, &pj, &perr), 0, "%s", perr);
      json_t *p = json_loads (pj, 0, NULL);
      cr_assert_not_null (p);
      const char *opt, *choice;
      json_t *o, *c;
      json_object_foreach (json_object_get (p, "options"), opt, o)
        json_object_foreach (json_object_get (o, "choices"), choice, c)
          {
            char *oc = NULL;
            cr_assert_geq (asprintf (&oc, "%s=%s", opt, choice), 0);
            expect_approved (name, caps, oc);
            choices++;
            free (oc);
          }
      json_decref (p);
      free (pj);
      free (perr);
    }
  cr_assert_geq (n, 5, "only %zu shipped profiles", n);
  cr_assert_geq (choices, 20, "only %zu option choices", choices);
  free (out);
  free (err);
  free (x86);
  free (arm);
  tu_rmtree (dir);
  free (dir);
}

static const char *const evil = "services.evil.exec=[\"sh\", \"-c\", \"id > /tmp/pwned\"]";

Test (approval, shell_through_set_refused_or_flagged)
{
  char *caps = NULL;
  cr_assert_geq (asprintf (&caps, "%s/tests/data/caps-qemu-10.0-x86_64.json", tu_srcdir ()), 0);
  char *out = NULL, *err = NULL;
  /* Refused: exit 2, said, nothing on stdout; in a dry run too.  */
  for (int dry = 0; dry < 2; dry++)
    {
      char *args[]
          = { "start", dry ? "-n" : "--verbose", "--caps", caps,          "-p", "demo", "--images", "/nonexistent",
              "--set", "machine.accel=tcg",      "--set",  (char *) evil, NULL };
      int r = tu_avmv (args, &out, &err);
      cr_assert_eq (r, 2, "exit %d: %s", r, err);
      /* The override that brought it in is named, not the file.  */
      assert_contains (err, "avm: --set services.evil.exec=[\"sh\", \"-c\", \"id > /tmp/pwned\"]: not approved: "
                            "services.evil: program sh is not an approved helper\n");
      assert_contains (err, "or pass --allow-unapproved");
      cr_assert_str_eq (out, "");
      free (out);
      free (err);
    }

  /* Accepted with --allow-unapproved, and flagged.  */
  char *dry[] = { "start",
                  "-n",
                  "--caps",
                  caps,
                  "-p",
                  "demo",
                  "--images",
                  "/nonexistent",
                  "--set",
                  "machine.accel=tcg",
                  "--set",
                  (char *) evil,
                  "--set",
                  "services.virtiofsd.env={\"LD_PRELOAD\": \"/tmp/x.so\"}",
                  "--allow-unapproved",
                  NULL };
  cr_assert_eq (tu_avmv (dry, &out, &err), 0, "%s", err);
  assert_contains (out, "# WARNING: UNAPPROVED (--allow-unapproved): services.evil: program sh is not an approved "
                        "helper\n");
  assert_contains (out, "# WARNING: UNAPPROVED (--allow-unapproved): services.virtiofsd: environment variable "
                        "LD_PRELOAD is not approved\n");
  assert_contains (err, "avm: warning: UNAPPROVED configuration: services.evil: program sh is not an approved helper");
  free (out);
  free (err);
  char *json[] = { "start",
                   "-n",
                   "--json",
                   "--caps",
                   caps,
                   "-p",
                   "demo",
                   "--images",
                   "/nonexistent",
                   "--set",
                   "machine.accel=tcg",
                   "--set",
                   (char *) evil,
                   "--allow-unapproved",
                   NULL };
  cr_assert_eq (tu_avmv (json, &out, &err), 0, "%s", err);
  json_t *j = json_loads (out, 0, NULL);
  cr_assert_not_null (j);
  cr_assert (json_is_false (json_object_get (j, "approved")));
  cr_assert_str_eq (json_string_value (json_array_get (json_object_get (j, "unapproved"), 0)),
                    "services.evil: program sh is not an approved helper");
  json_decref (j);
  free (out);
  free (err);

  /* avm check: a warning naming it.  */
  char *check[] = { "check",
                    "-p",
                    "demo",
                    "--images",
                    "/nonexistent",
                    "--set",
                    "machine.accel=tcg",
                    "--set",
                    (char *) evil,
                    "--allow-unapproved",
                    "--json",
                    NULL };
  tu_avmv (check, &out, &err);
  assert_contains (out, "services.evil: program sh is not an approved helper");
  free (out);
  free (err);
  free (caps);
}

/* A running instance of an unapproved configuration says so in avm status
   and in its logs' run header.  */
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

Test (approval, running_unapproved_instance_is_flagged, .init = setup, .fini = teardown)
{
  const char *svc = ts_fmt ("{ \"h\": { \"exec\": [\"%s\", \"hang\"] } }", env.fake);
  char *profile = ts_profile (&env, "unapproved", svc, NULL, NULL);
  struct ts_avm a;
  /* ts_start passes --allow-unapproved for a profile file.  */
  ts_start (&env, &a, profile, "--set", "machine.accel=tcg", NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", 60);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "status", NULL), 0);
  assert_contains (out, ts_fmt ("  UNAPPROVED: services.h: program %s is not an approved helper\n", env.fake));
  cr_assert_eq (ts_avm (&env, &out, "status", "--json", NULL), 0);
  json_t *st = ts_json (out);
  cr_assert (json_is_false (json_object_get (st, "approved")), "%s", out);
  json_decref (st);
  char *log = ts_read_log (&env, "qemu.log");
  assert_contains (log, ", UNAPPROVED configuration (--allow-unapproved) ===");
  cr_assert_eq (kill (a.pid, SIGTERM), 0);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
}
