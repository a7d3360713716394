/* SPDX-License-Identifier: Apache-2.0 */
/*
 * avm kube (issue 19): the manifests of every shipped profile, without and
 * with each choice of each of its options, as a StatefulSet and as a Pod,
 * pass tests/kube/validate.mjs: the Kubernetes API schema of their kind
 * (npm's kubernetes-models, pinned by tests/kube/package-lock.json and
 * installed by tests/deps.sh), no unknown field, and avm's rules (DNS-1123
 * names, the grace period at least avm's stop budget, /dev/kvm, an
 * unprivileged pod, the status probes).  The stop budget is computed here
 * from `avm start --dry-run --json`, as the supervisor computes it when it
 * stops (as in test_deploy.c).  Manifests broken on purpose must be
 * rejected, each for its fault: the validator can fail.
 */
#include "kube/kube.h"
#include "supervise/internal.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *tmp;

static void
setup (void)
{
  tmp = tu_tmpdir ();
}

static void
teardown (void)
{
  tu_rmtree (tmp);
  free (tmp);
}

TestSuite (kube, .init = setup, .fini = teardown);

static void
need_validator (void)
{
  char *mods = tu_fmt ("%s/tests/kube/node_modules/kubernetes-models", tu_srcdir ());
  char *argv[] = { "node", "--version", NULL };
  char *out = NULL, *err = NULL;
  bool node = tu_run (argv, NULL, &out, &err) == 0;
  bool ok = node && access (mods, R_OK) == 0;
  free (mods);
  free (out);
  free (err);
  if (!ok)
    cr_skip_test ("node or tests/kube/node_modules missing (tests/deps.sh installs them)");
}

/* node validate.mjs ARGS... (--budget B and files): its exit status, *OUT
   its lines.  */
static int
validate_argv (char *const args[], char **out)
{
  char *script = tu_fmt ("%s/tests/kube/validate.mjs", tu_srcdir ());
  size_t n = 0;
  while (args[n])
    n++;
  char **argv = calloc (n + 3, sizeof *argv);
  cr_assert_not_null (argv);
  argv[0] = "node";
  argv[1] = script;
  memcpy (argv + 2, args, n * sizeof *argv);
  char *err = NULL;
  int r = tu_run (argv, NULL, out, &err);
  cr_assert (r == 0 || r == 1, "validate.mjs exited %d: %s%s", r, *out, err);
  free (err);
  free (script);
  free (argv);
  return r;
}

static int
validate (long long budget, char *const files[], char **out)
{
  char *b = tu_fmt ("%lld", budget);
  char *args[40] = { "--budget", b };
  size_t n = 2;
  for (size_t i = 0; files[i] && n < 39; i++)
    args[n++] = files[i];
  args[n] = NULL;
  int r = validate_argv (args, out);
  free (b);
  return r;
}

/* The arguments every plan here is made with: an empty images directory
   and every helper present (the fake ones), as in the image.  */
static char **
common_args (char **v, size_t *n, const char *profile, const char *option)
{
  v[(*n)++] = "-p";
  v[(*n)++] = (char *) profile;
  v[(*n)++] = "--images";
  v[(*n)++] = tmp;
  v[(*n)++] = "--set";
  v[(*n)++] = tu_fmt ("paths.helpers=%s", tu_fake_helpers ());
  if (option)
    {
      v[(*n)++] = "-O";
      v[(*n)++] = (char *) option;
    }
  return v;
}

/* Recorded QEMU 10.0 capabilities of ARCH with the devices of the
   patched QEMU some options need (as test_approval.c has them): a path in
   the test's directory.  */
static char *
caps_for (const char *arch)
{
  char *dst = tu_fmt ("%s/caps-%s.json", tmp, arch);
  if (access (dst, R_OK) == 0)
    return dst;
  char *src = tu_fmt ("%s/tests/data/caps-qemu-10.0-%s.json", tu_srcdir (), arch);
  json_t *j = json_load_file (src, 0, NULL);
  cr_assert_not_null (j, "%s", src);
  json_array_append_new (json_object_get (j, "devices"), json_string ("virtio-rotary-pci"));
  json_array_append_new (json_object_get (j, "devices"), json_string ("vhost-user-video-pci"));
  cr_assert_eq (json_dump_file (j, dst, 0), 0);
  json_decref (j);
  free (src);
  return dst;
}

/* The dry-run plan of PROFILE with OPTION, against those capabilities (a
   plan for the image's QEMU, whatever this host has).  */
static json_t *
dry_plan (const char *profile, const char *option)
{
  char *caps = caps_for (strstr (profile, "arm64") ? "aarch64" : "x86_64");
  char *v[24] = { "start", "-n", "--json", "--caps", caps };
  size_t n = 5;
  common_args (v, &n, profile, option);
  v[n] = NULL;
  char *out = NULL, *err = NULL;
  int r = tu_avmv (v, &out, &err);
  cr_assert_eq (r, 0, "avm start -n -p %s -O %s: exit %d: %s", profile, option ? option : "-", r, err);
  json_t *plan = json_loads (out, 0, NULL);
  cr_assert_not_null (plan);
  free (out);
  free (err);
  free (caps);
  free (v[n - (option ? 3 : 1)]);
  return plan;
}

/* avm's stop budget (s) of PROFILE with OPTION, from its dry-run plan: the
   profile's stop timeout, QMP quit, QEMU SIGTERM, the failure screenshot,
   5 s spare and every helper's stop timeout.  */
static long long
budget_of (const char *profile, const char *option)
{
  json_t *plan = dry_plan (profile, option);
  double b = json_number_value (json_object_get (plan, "stop_timeout"))
             + (double) (SV_SHOT_FAILURE_TIMEOUT + QMP_QUIT_TIMEOUT + QEMU_TERM_TIMEOUT) / USEC_PER_SEC + 5;
  size_t i;
  json_t *s;
  json_array_foreach (json_object_get (plan, "services"), i, s)
    b += json_number_value (json_object_get (s, "stop_timeout"));
  json_decref (plan);
  return (long long) b;
}

static size_t
helpers_of (const char *profile, const char *option)
{
  json_t *plan = dry_plan (profile, option);
  size_t n = json_array_size (json_object_get (plan, "services"));
  json_decref (plan);
  return n;
}

/* avm kube of PROFILE with OPTION and MORE (NULL-ended) into a file.  */
static char *
kube_file (const char *profile, const char *option, const char *tag, char *const more[])
{
  char *v[32] = { "kube" };
  size_t n = 1;
  common_args (v, &n, profile, option);
  char *helpers = v[n - (option ? 3 : 1)];
  for (size_t i = 0; more && more[i]; i++)
    v[n++] = more[i];
  v[n] = NULL;
  char *out = NULL, *err = NULL;
  int r = tu_avmv (v, &out, &err);
  cr_assert_eq (r, 0, "avm kube -p %s -O %s: exit %d: %s", profile, option ? option : "-", r, err);
  cr_assert_str_eq (err, "", "avm kube -p %s: %s", profile, err);
  char *name = tu_fmt ("%s-%s-%s.json", profile, option ? option : "default", tag);
  char *path = tu_write (tmp, name, out);
  free (name);
  free (out);
  free (err);
  free (helpers);
  return path;
}

/* The manifests of PROFILE with OPTION (a StatefulSet of 3, a Pod with
   the hostPath /dev/kvm) and their budget, appended to the validator's
   arguments.  */
static void
add (char ***args, size_t *n, const char *profile, const char *option)
{
  long long b = budget_of (profile, option);
  char *const sts[] = { "--replicas", "3", NULL };
  char *const pod[] = { "--kind", "pod", "-i", "2", "--kvm-hostpath", NULL };
  *args = realloc (*args, (*n + 5) * sizeof **args);
  cr_assert_not_null (*args);
  (*args)[(*n)++] = "--budget";
  (*args)[(*n)++] = tu_fmt ("%lld", b);
  (*args)[(*n)++] = kube_file (profile, option, "sts", sts);
  (*args)[(*n)++] = kube_file (profile, option, "pod", pod);
  (*args)[*n] = NULL;
}

Test (kube, every_shipped_profile_and_option_validates, .timeout = TU_TIMEOUT (300))
{
  need_validator ();
  char *out = NULL, *err = NULL;
  char *names[] = { "profiles", "list", "--names", NULL };
  cr_assert_eq (tu_avmv (names, &out, &err), 0, "%s", err);
  size_t n = 0, choices = 0, na = 0;
  char **args = NULL;
  for (char *save = NULL, *name = strtok_r (out, "\n", &save); name; name = strtok_r (NULL, "\n", &save), n++)
    {
      add (&args, &na, name, NULL);
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
            char *oc = tu_fmt ("%s=%s", opt, choice);
            add (&args, &na, name, oc);
            choices++;
            free (oc);
          }
      json_decref (p);
      free (pj);
      free (perr);
    }
  cr_assert_geq (n, 5, "only %zu shipped profiles", n);
  cr_assert_geq (choices, 20, "only %zu option choices", choices);
  char *vout = NULL;
  int r = validate_argv (args, &vout);
  cr_assert_eq (r, 0, "rejected:\n%s", vout);
  for (size_t i = 0; i < na; i++)
    if (strcmp (args[i], "--budget"))
      free (args[i]);
  free (args);
  free (vout);
  free (out);
  free (err);
}

/* ---- what a manifest says ---------------------------------------------- */

static json_t *
kube_json (char *const args[], int *rc, char **err)
{
  char *v[40] = { "kube" };
  size_t n = 1;
  for (size_t i = 0; args[i]; i++)
    v[n++] = args[i];
  v[n] = NULL;
  char *out = NULL;
  *rc = tu_avmv (v, &out, err);
  json_t *j = *rc == 0 ? json_loads (out, 0, NULL) : NULL;
  free (out);
  return j;
}

static json_t *
named (json_t *arr, const char *name)
{
  size_t i;
  json_t *e;
  json_array_foreach (arr, i, e)
    if (!strcmp (json_string_value (json_object_get (e, "name")) ?: "", name))
      return e;
  return NULL;
}

Test (kube, statefulset_ports_resources_and_probes)
{
  char *err = NULL;
  int rc;
  char *args[] = { "-p",
                   "demo",
                   "--images",
                   tmp,
                   "-O",
                   "display=web",
                   "--set",
                   "display.web.listen=0.0.0.0",
                   "--set",
                   "display.web.remote=true",
                   "--set",
                   "machine.accel=tcg",
                   "--replicas",
                   "3",
                   "--images-image",
                   "registry.example/aaos-images:16",
                   NULL };
  json_t *m = kube_json (args, &rc, &err);
  cr_assert_eq (rc, 0, "%s", err);
  cr_assert_str_eq (json_string_value (json_object_get (m, "kind")), "StatefulSet");
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (m, "metadata"), "name")), "avm-demo");
  json_t *spec = json_object_get (json_object_get (json_object_get (m, "spec"), "template"), "spec");
  json_t *c = json_array_get (json_object_get (spec, "containers"), 0);
  /* Instances 1..3: web display ports 6080..6082, named per instance.  */
  for (int i = 1; i <= 3; i++)
    {
      char name[16];
      snprintf (name, sizeof name, "web-%d", i);
      json_t *p = named (json_object_get (c, "ports"), name);
      cr_assert_not_null (p, "no port %s", name);
      cr_assert_eq (json_integer_value (json_object_get (p, "containerPort")), 6079 + i);
    }
  /* The ordinal reaches avm through the environment.  */
  json_t *e = named (json_object_get (c, "env"), "AVM_POD_ORDINAL");
  cr_assert_not_null (e);
  /* Memory: 512 MiB of guest, QEMU's overhead, avm and its helpers
     (virtiofsd, websockify); TCG: the translation cache in the limit.  */
  json_t *res = json_object_get (c, "resources");
  long long want
      = 512 + AVM_KUBE_QEMU_OVERHEAD_MIB + AVM_KUBE_HELPER_MIB * (long long) (helpers_of ("demo", "display=web") + 1);
  char *mem = tu_fmt ("%lldMi", want), *lim = tu_fmt ("%lldMi", want + 1024);
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (res, "requests"), "memory")), mem);
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (res, "limits"), "memory")), lim);
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (res, "requests"), "cpu")), "1");
  /* TCG only: no /dev/kvm asked for.  */
  cr_assert_null (json_object_get (json_object_get (res, "limits"), "devices.kubevirt.io/kvm"));
  json_t *img = json_object_get (named (json_object_get (spec, "volumes"), "images"), "image");
  cr_assert_str_eq (json_string_value (json_object_get (img, "reference")), "registry.example/aaos-images:16");
  /* The grace period is the budget of the dry-run plan.  */
  cr_assert_eq (json_integer_value (json_object_get (spec, "terminationGracePeriodSeconds")),
                budget_of ("demo", "display=web"));
  char *ready = json_dumps (json_object_get (json_object_get (c, "readinessProbe"), "exec"), JSON_COMPACT);
  cr_assert_str_eq (ready, "{\"command\":[\"/usr/bin/avm\",\"status\",\"--ready\"]}");
  free (ready);
  free (mem);
  free (lim);
  free (err);
  json_decref (m);
}

Test (kube, pod_instance_and_kvm)
{
  char *err = NULL;
  int rc;
  char *args[] = { "-p",   "aaos-x86_64",    "--images",        tmp,           "--kind", "pod", "-i", "4", "--name",
                   "hu-4", "--kvm-resource", "example.com/kvm", "--kvm-group", "107",    NULL };
  json_t *m = kube_json (args, &rc, &err);
  cr_assert_eq (rc, 0, "%s", err);
  cr_assert_str_eq (json_string_value (json_object_get (m, "kind")), "Pod");
  json_t *c = json_array_get (json_object_get (json_object_get (m, "spec"), "containers"), 0);
  char *a = json_dumps (json_object_get (c, "args"), JSON_COMPACT);
  cr_assert (strstr (a, "\"--instance\",\"4\""), "%s", a);
  free (a);
  char *live = json_dumps (json_object_get (json_object_get (c, "livenessProbe"), "exec"), JSON_COMPACT);
  cr_assert_str_eq (live, "{\"command\":[\"/usr/bin/avm\",\"status\",\"--live\",\"-i\",\"4\"]}");
  free (live);
  json_t *adb = named (json_object_get (c, "ports"), "adb");
  cr_assert_eq (json_integer_value (json_object_get (adb, "containerPort")), 6523);
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (json_object_get (c, "resources"), "limits"),
                                                        "example.com/kvm")),
                    "1");
  /* /dev/kvm keeps the node's group.  */
  json_t *groups
      = json_object_get (json_object_get (json_object_get (m, "spec"), "securityContext"), "supplementalGroups");
  cr_assert_eq (json_integer_value (json_array_get (groups, 0)), 107);
  json_t *labels = json_object_get (json_object_get (m, "metadata"), "labels");
  cr_assert_str_eq (json_string_value (json_object_get (labels, "io.avm/profile")), "aaos-x86_64");
  cr_assert_not_null (json_object_get (labels, "io.avm/option.release"));
  free (err);
  json_decref (m);
}

Test (kube, usage_errors_are_one_line_exit_2)
{
  static const char *const bad[][8] = {
    { "--kind", "deployment" },
    { "--replicas", "0" },
    { "--replicas", "65" },
    { "--name", "Bad_Name" },
    { "--kind", "pod", "--replicas", "2" },
    { "-i", "2" },
    { "-p", "./demo.json" },
    { "--bogus" },
    { "-p", "demo", "-O", "share=maybe" },
    { "--kvm-group", "0" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      char *v[12] = { "kube", "--images", tmp };
      size_t n = 3;
      for (size_t k = 0; bad[i][k]; k++)
        v[n++] = (char *) bad[i][k];
      v[n] = NULL;
      char *out = NULL, *err = NULL;
      int r = tu_avmv (v, &out, &err);
      cr_assert_eq (r, 2, "avm kube %s %s: exit %d: %s", bad[i][0], bad[i][1] ?: "", r, err);
      cr_assert_str_eq (out, "");
      char *nl = strchr (err, '\n');
      cr_assert (nl && nl[1] == '\0', "not one line: %s", err);
      free (out);
      free (err);
    }
}

/* ---- the validator fails ------------------------------------------------ */

/* One fault each, and what the validator must say about it.  */
static void
breaks (json_t *m, int which)
{
  json_t *spec = json_object_get (m, "spec");
  json_t *c = json_array_get (json_object_get (spec, "containers"), 0);
  switch (which)
    {
    case 0:
      json_object_set_new (c, "privilegedd", json_true ());
      break;
    case 1:
      json_object_set_new (json_object_get (m, "metadata"), "name", json_string ("AVM_demo"));
      break;
    case 2:
      json_object_set_new (spec, "terminationGracePeriodSeconds", json_integer (10));
      break;
    case 3:
      json_object_del (json_object_get (json_object_get (c, "resources"), "limits"), "devices.kubevirt.io/kvm");
      break;
    case 4:
      json_object_set_new (json_array_get (json_object_get (c, "ports"), 0), "containerPort", json_string ("6520"));
      break;
    case 5:
      json_object_set_new (json_object_get (c, "securityContext"), "privileged", json_true ());
      break;
    case 6:
      json_object_set_new (json_object_get (json_object_get (m, "metadata"), "labels"), "io.avm/profile",
                           json_string ("aaos x86_64"));
      break;
    }
}

Test (kube, broken_manifests_are_rejected, .timeout = TU_TIMEOUT (60))
{
  need_validator ();
  static const char *const said[] = {
    "/spec/containers/0/privilegedd: unknown field",
    "/metadata/name: not a DNS-1123 label",
    "/spec/terminationGracePeriodSeconds: 10 is below avm's stop budget",
    "/dev/kvm is not given",
    "/spec/containers/0/ports/0/containerPort: schema: type",
    "/spec/containers/0/securityContext/privileged: must not be true",
    "/metadata/labels/io.avm/profile: bad label value",
  };
  char *const pod[] = { "--kind", "pod", NULL };
  char *good = kube_file ("aaos-x86_64", NULL, "good", pod);
  long long b = budget_of ("aaos-x86_64", NULL);
  char *out = NULL;
  char *files[] = { good, NULL };
  cr_assert_eq (validate (b, files, &out), 0, "%s", out);
  free (out);
  for (int i = 0; i < (int) (sizeof said / sizeof said[0]); i++)
    {
      json_t *m = json_load_file (good, 0, NULL);
      cr_assert_not_null (m);
      breaks (m, i);
      char *path = tu_fmt ("%s/broken-%d.json", tmp, i);
      cr_assert_eq (json_dump_file (m, path, 0), 0);
      json_decref (m);
      char *one[] = { path, NULL };
      cr_assert_eq (validate (b, one, &out), 1, "fault %d accepted: %s", i, out);
      cr_assert (strstr (out, said[i]), "fault %d: expected \"%s\" in:\n%s", i, said[i], out);
      free (out);
      free (path);
    }
  free (good);
}

/* In a StatefulSet's pod, commands take instance $AVM_POD_ORDINAL + 1.  */
Test (kube, pod_ordinal_picks_the_instance)
{
  char *rt = tu_fmt ("AVM_RUNTIME_DIR=%s", tmp);
  char *ord[] = { "AVM_POD_ORDINAL=2", rt, NULL };
  char *argv[] = { (char *) tu_avm_bin (), "status", NULL };
  char *out = NULL, *err = NULL;
  cr_assert_eq (tu_run (argv, ord, &out, &err), 3, "%s", err);
  cr_assert_str_eq (out, "instance 3 is not running\n");
  free (out);
  free (err);
  char *badord[] = { "AVM_POD_ORDINAL=64", rt, NULL };
  cr_assert_eq (tu_run (argv, badord, &out, &err), 2, "%s", err);
  cr_assert (strstr (err, "AVM_POD_ORDINAL=64"), "%s", err);
  free (out);
  free (err);
  free (rt);
}

/* The grace period of the default profile is the stop budget the
   Containerfile's label io.avm.stop-timeout (and so the quadlets and
   avm@.service, test_deploy.c) give it.  */
Test (kube, grace_period_is_the_containerfile_budget)
{
  char *path = tu_fmt ("%s/containers/Containerfile", tu_srcdir ());
  char *cf = tu_read (path);
  const char *l = strstr (cf, "io.avm.stop-timeout=\"");
  cr_assert_not_null (l, "no io.avm.stop-timeout label in %s", path);
  long long label = atoll (l + strlen ("io.avm.stop-timeout=\""));
  char *err = NULL;
  int rc;
  char *args[] = { "-p", "aaos-x86_64", "--images", tmp, NULL };
  json_t *m = kube_json (args, &rc, &err);
  cr_assert_eq (rc, 0, "%s", err);
  json_t *spec = json_object_get (json_object_get (json_object_get (m, "spec"), "template"), "spec");
  cr_assert_eq (json_integer_value (json_object_get (spec, "terminationGracePeriodSeconds")), label,
                "avm kube: %lld s, the Containerfile's label: %lld s",
                (long long) json_integer_value (json_object_get (spec, "terminationGracePeriodSeconds")), label);
  json_decref (m);
  free (err);
  free (cf);
  free (path);
}
