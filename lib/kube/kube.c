/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The manifest of avm kube (kube.h), built with jansson and printed as
 * JSON, so that every string is quoted by the JSON writer.
 *
 * Memory: the container holds QEMU, avm and the helpers, so its memory is
 * the guest's RAM (machine.memory) plus
 *   - AVM_KUBE_QEMU_OVERHEAD_MIB, QEMU's own memory: measured with QEMU
 *     7.2.22 (Debian 12) running the demo profile (512 MiB guest, TCG,
 *     virtio-gpu on -display dbus) after its boot: VmRSS 260628 kB, of
 *     which the guest RAM's mapping 137216 kB and the TCG translation
 *     cache 57344 kB, leaving 66068 kB (64.5 MiB) for QEMU itself; with
 *     a 2 GiB guest 66000 kB (it does not grow with the guest's RAM); 96
 *     MiB leaves a half again for the devices of the AAOS profiles;
 *   - AVM_KUBE_HELPER_MIB for avm and for each helper (measured: avm 3.9
 *     MiB, dbus-daemon 4.6 MiB; Cuttlefish's helpers get the same);
 *   - under TCG, in the limit only, AVM_KUBE_TCG_CACHE_MIB: QEMU 7.2's
 *     translation cache is a 1 GiB mapping (1048572 kB) that fills as the
 *     guest runs code (57344 kB after the demo's boot).
 * CPU: the vCPUs (machine.cpus) requested, one more CPU allowed for QEMU's
 * main loop and I/O threads and the helpers.
 */
#include "kube/kube.h"
#include "supervise/supervisor.h"
#include "util/cleanup.h"
#include "util/strfmt.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_TIMEOUT_S 10 /* avm status waits 5 s for an answer */

size_t
avm_kube_name_max (enum avm_kube_kind kind)
{
  /* A StatefulSet's pods are NAME-ORDINAL and carry the label
     controller-revision-hash=NAME-HASH (10 characters) within 63.  */
  return kind == AVM_KUBE_STATEFULSET ? 52 : 63;
}

int
avm_kube_name_check (const char *what, const char *name, size_t max, avm_error_t *err)
{
  size_t n = strlen (name);
  if (n == 0 || n > max)
    return avm_error_input (err, "%s %s: a name of 1 to %zu characters", what, name, max);
  for (size_t i = 0; i < n; i++)
    if (!(islower ((unsigned char) name[i]) || isdigit ((unsigned char) name[i]) || name[i] == '-'))
      return avm_error_input (err, "%s %s: only lowercase letters, digits and '-' (a DNS-1123 label)", what, name);
  if (name[0] == '-' || name[n - 1] == '-')
    return avm_error_input (err, "%s %s: begins or ends with '-' (not a DNS-1123 label)", what, name);
  return 0;
}

void
avm_kube_label_value (const char *text, char buf[64])
{
  size_t o = 0;
  for (const char *p = text; *p && o < 63; p++)
    {
      unsigned char c = (unsigned char) *p;
      bool ok = isalnum (c) || c == '.' || c == '_' || c == '-';
      if (o == 0 && !isalnum (c))
        continue;
      buf[o++] = ok && c < 0x80 ? (char) c : '-';
    }
  while (o > 0 && !isalnum ((unsigned char) buf[o - 1]))
    o--;
  buf[o] = '\0';
}

void
avm_kube_default_name (const char *profile, enum avm_kube_kind kind, char buf[64])
{
  size_t max = avm_kube_name_max (kind), o = 0;
  const char *base = strrchr (profile, '/') ? strrchr (profile, '/') + 1 : profile;
  for (const char *p = "avm-"; *p; p++)
    buf[o++] = *p;
  for (const char *p = base; *p && o < max; p++)
    {
      unsigned char c = (unsigned char) tolower ((unsigned char) *p);
      if (c == '.' && !strcmp (p, ".json"))
        break;
      char d = isalnum (c) && c < 0x80 ? (char) c : '-';
      if (d == '-' && buf[o - 1] == '-')
        continue;
      buf[o++] = d;
    }
  while (buf[o - 1] == '-')
    o--;
  buf[o] = '\0';
}

/* The port of "ADDRESS:PORT", or -1.  */
static int
port_of (const char *addr)
{
  const char *c = addr ? strrchr (addr, ':') : NULL;
  if (!c)
    return -1;
  char *end;
  long v = strtol (c + 1, &end, 10);
  return *end || v < 1 || v > 65535 ? -1 : (int) v;
}

/* machine.accel as a list: whether it has kvm, and whether the first is
   tcg (QEMU then runs under TCG even with /dev/kvm).  */
static void
accels (json_t *machine, bool *kvm, bool *tcg_first)
{
  json_t *a = json_object_get (machine, "accel");
  *kvm = *tcg_first = false;
  if (json_is_string (a))
    {
      *kvm = !strcmp (json_string_value (a), "kvm");
      *tcg_first = !strcmp (json_string_value (a), "tcg");
      return;
    }
  size_t i;
  json_t *v;
  json_array_foreach (a, i, v)
    {
      const char *s = json_string_value (v);
      if (s && !strcmp (s, "kvm"))
        *kvm = true;
      if (s && i == 0 && !strcmp (s, "tcg"))
        *tcg_first = true;
    }
}

static json_t *
labels (const struct avm_kube_request *req, bool selector)
{
  json_t *l = json_pack ("{s:s, s:s}", "app.kubernetes.io/name", "avm", "app.kubernetes.io/instance", req->name);
  if (!l || selector)
    return l;
  char v[64];
  avm_kube_label_value (req->profile, v);
  json_object_set_new (l, "io.avm/profile", json_string (v));
  const char *name;
  json_t *choice;
  json_object_foreach (req->profile_resolved->options, name, choice)
    {
      char key[64];
      if (!json_is_string (choice))
        continue;
      /* The key's name part: at most 63 characters.  */
      snprintf (key, sizeof key, "option.%s", name);
      char k2[64];
      avm_kube_label_value (key, k2);
      _cleanup_free_ char *full = avm_strdupf ("io.avm/%s", k2);
      avm_kube_label_value (json_string_value (choice), v);
      if (full)
        json_object_set_new (l, full, json_string (v));
    }
  return l;
}

/* Append OPTION and VALUE to the array A.  */
static void
add_arg (json_t *a, const char *option, const char *value)
{
  if (a)
    {
      json_array_append_new (a, json_string (option));
      json_array_append_new (a, json_string (value));
    }
}

/* avm start's arguments after its entrypoint (/usr/bin/avm start).  */
static json_t *
container_args (const struct avm_kube_request *req)
{
  json_t *a = json_array ();
  add_arg (a, "--profile", req->profile);
  for (size_t i = 0; req->options && req->options[i]; i++)
    add_arg (a, "--option", req->options[i]);
  for (size_t i = 0; req->sets && req->sets[i]; i++)
    add_arg (a, "--set", req->sets[i]);
  add_arg (a, "--images", AVM_KUBE_IMAGES_DIR);
  if (req->kind == AVM_KUBE_POD)
    {
      char n[16];
      snprintf (n, sizeof n, "%d", req->plans[0]->instance);
      add_arg (a, "--instance", n);
    }
  if (req->allow_unapproved)
    json_array_append_new (a, json_string ("--allow-unapproved"));
  return a;
}

static json_t *
probe (const struct avm_kube_request *req, const char *what, int period, int delay)
{
  json_t *cmd = json_pack ("[s, s, s]", "/usr/bin/avm", "status", what);
  if (cmd && req->kind == AVM_KUBE_POD)
    {
      char n[16];
      snprintf (n, sizeof n, "%d", req->plans[0]->instance);
      add_arg (cmd, "-i", n);
    }
  return json_pack ("{s:{s:o}, s:i, s:i, s:i, s:i}", "exec", "command", cmd, "initialDelaySeconds", delay,
                    "periodSeconds", period, "timeoutSeconds", PROBE_TIMEOUT_S, "failureThreshold", 3);
}

/* Named ports: "adb" and "web" for a Pod, "adb-N" and "web-N" per
   instance N of a StatefulSet (every pod declares them all: the port
   numbers follow the instance number).  */
static json_t *
ports (const struct avm_kube_request *req)
{
  json_t *p = json_array ();
  for (size_t i = 0; p && i < req->nplans; i++)
    {
      const struct avm_plan *plan = req->plans[i];
      const struct
      {
        const char *name, *addr;
      } ep[] = { { "adb", plan->adb }, { "web", plan->web_listen } };
      for (size_t k = 0; k < sizeof ep / sizeof ep[0]; k++)
        {
          int port = port_of (ep[k].addr);
          if (port < 0)
            continue;
          char name[16];
          if (req->kind == AVM_KUBE_POD)
            snprintf (name, sizeof name, "%s", ep[k].name);
          else
            snprintf (name, sizeof name, "%s-%d", ep[k].name, plan->instance);
          json_array_append_new (p,
                                 json_pack ("{s:s, s:i, s:s}", "name", name, "containerPort", port, "protocol", "TCP"));
        }
    }
  return p;
}

static json_t *
resources (const struct avm_kube_request *req, bool *kvm, avm_error_t *err)
{
  json_t *machine = json_object_get (req->profile_resolved->json, "machine");
  long long cpus = json_integer_value (json_object_get (machine, "cpus"));
  long long mem = json_integer_value (json_object_get (machine, "memory"));
  if (cpus < 1 || mem < 1)
    {
      avm_error_input (err, "profile %s: machine.cpus and machine.memory must be set", req->profile);
      return NULL;
    }
  bool tcg;
  accels (machine, kvm, &tcg);
  size_t helpers = 0;
  const struct avm_plan *plan = req->plans[0];
  for (size_t i = 0; i < plan->nservices; i++)
    helpers += plan->services[i].kind == AVM_SERVICE_HELPER;
  long long request = mem + AVM_KUBE_QEMU_OVERHEAD_MIB + AVM_KUBE_HELPER_MIB * (long long) (helpers + 1);
  long long limit = request + (tcg || !*kvm ? AVM_KUBE_TCG_CACHE_MIB : 0);
  char cpu_rq[24], cpu_lm[24], mem_rq[32], mem_lm[32];
  snprintf (cpu_rq, sizeof cpu_rq, "%lld", cpus);
  snprintf (cpu_lm, sizeof cpu_lm, "%lld", cpus + 1);
  snprintf (mem_rq, sizeof mem_rq, "%lldMi", request);
  snprintf (mem_lm, sizeof mem_lm, "%lldMi", limit);
  json_t *r = json_pack ("{s:{s:s, s:s}, s:{s:s, s:s}}", "requests", "cpu", cpu_rq, "memory", mem_rq, "limits", "cpu",
                         cpu_lm, "memory", mem_lm);
  if (!r)
    return NULL;
  json_t *lm = json_object_get (r, "limits");
  /* An extended resource: its request is its limit.  */
  if (*kvm && req->kvm_resource)
    json_object_set_new (lm, req->kvm_resource, json_string ("1"));
  return r;
}

static json_t *
pod_spec (const struct avm_kube_request *req, avm_error_t *err)
{
  bool kvm = false;
  _cleanup_json_ json_t *res = resources (req, &kvm, err);
  if (!res)
    return NULL; /* (*ERR set when it is not memory) */
  /* avm's stop budget, whole seconds up.  */
  uint64_t budget = 0;
  for (size_t i = 0; i < req->nplans; i++)
    {
      uint64_t b = avm_supervise_stop_budget (req->plans[i]);
      budget = b > budget ? b : budget;
    }
  long long grace = (long long) ((budget + 999999) / 1000000);

  json_t *mounts
      = json_pack ("[{s:s, s:s, s:b}, {s:s, s:s}, {s:s, s:s}]", "name", "images", "mountPath", AVM_KUBE_IMAGES_DIR,
                   "readOnly", 1, "name", "state", "mountPath", "/var/lib/avm", "name", "run", "mountPath", "/run/avm");
  json_t *images;
  if (req->images_image)
    images = json_pack ("{s:s, s:{s:s, s:s}}", "name", "images", "image", "reference", req->images_image, "pullPolicy",
                        "IfNotPresent");
  else
    images = json_pack ("{s:s, s:{s:s, s:b}}", "name", "images", "persistentVolumeClaim", "claimName",
                        req->images_claim ? req->images_claim : "avm-images", "readOnly", 1);
  json_t *volumes
      = json_pack ("[o, {s:s, s:{}}, {s:s, s:{}}]", images, "name", "state", "emptyDir", "name", "run", "emptyDir");
  if (kvm && !req->kvm_resource)
    {
      /* The fallback: the host's node, which the container may open only
         where the runtime adds it to the device cgroup (podman kube play
         makes a CharDevice hostPath a device; see avm-kube(1)).  */
      json_array_append_new (mounts, json_pack ("{s:s, s:s}", "name", "kvm", "mountPath", "/dev/kvm"));
      json_array_append_new (volumes, json_pack ("{s:s, s:{s:s, s:s}}", "name", "kvm", "hostPath", "path", "/dev/kvm",
                                                 "type", "CharDevice"));
    }
  json_t *env = json_array ();
  if (req->kind == AVM_KUBE_STATEFULSET)
    json_array_append_new (env, json_pack ("{s:s, s:{s:{s:s}}}", "name", AVM_KUBE_ORDINAL_ENV, "valueFrom", "fieldRef",
                                           "fieldPath", "metadata.labels['apps.kubernetes.io/pod-index']"));
  json_t *container
      = json_pack ("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:b, s:b, s:{s:[s]}}}", "name", AVM_KUBE_CONTAINER,
                   "image", req->image, "args", container_args (req), "env", env, "ports", ports (req), "resources",
                   json_incref (res), "volumeMounts", mounts, "readinessProbe", probe (req, "--ready", 5, 5),
                   "livenessProbe", probe (req, "--live", 20, 10), "securityContext", "allowPrivilegeEscalation", 0,
                   "privileged", 0, "capabilities", "drop", "ALL");
  json_t *spec
      = json_pack ("{s:I, s:{s:b, s:i, s:i, s:i}, s:[o], s:o}", "terminationGracePeriodSeconds", (json_int_t) grace,
                   "securityContext", "runAsNonRoot", 1, "runAsUser", AVM_KUBE_UID, "runAsGroup", AVM_KUBE_GID,
                   "fsGroup", AVM_KUBE_GID, "containers", container, "volumes", volumes);
  /* /dev/kvm keeps the node's group, which is kvm's GID there (Debian
     allocates it dynamically), not the image's 36.  */
  if (spec && kvm && req->kvm_gid >= 0 && req->kvm_gid != AVM_KUBE_GID)
    json_object_set_new (json_object_get (spec, "securityContext"), "supplementalGroups",
                         json_pack ("[I]", (json_int_t) req->kvm_gid));
  return spec;
}

int
avm_kube_manifest (const struct avm_kube_request *req, json_t **out, avm_error_t *err)
{
  if (req->nplans == 0 || (req->kind == AVM_KUBE_POD && req->nplans != 1))
    return avm_error_input (err, "avm kube: one plan per instance");
  int r = avm_kube_name_check ("--name", req->name, avm_kube_name_max (req->kind), err);
  if (r < 0)
    return r;
  json_t *spec = pod_spec (req, err);
  if (!spec)
    return *err ? -EINVAL : avm_error_sys (err, ENOMEM, "avm kube");
  /* podman kube play (and a quadlet's .kube unit) relays the container's
     sd_notify READY=1, which avm sends when the guest has booted: the play
     returns, and the unit is active, once the guest has booted, as with
     podman run --sdnotify=container.  Kubernetes ignores it (its readiness
     is the probe's).  */
  json_t *m;
  if (req->kind == AVM_KUBE_POD)
    m = json_pack ("{s:s, s:s, s:{s:s, s:o, s:{s:s}}, s:o}", "apiVersion", "v1", "kind", "Pod", "metadata", "name",
                   req->name, "labels", labels (req, false), "annotations", AVM_KUBE_SDNOTIFY, "container", "spec",
                   spec);
  else
    m = json_pack ("{s:s, s:s, s:{s:s, s:o}, s:{s:s, s:I, s:s, s:{s:o}, s:{s:{s:o, s:{s:s}}, s:o}}}", "apiVersion",
                   "apps/v1", "kind", "StatefulSet", "metadata", "name", req->name, "labels", labels (req, false),
                   "spec", "serviceName", req->name, "replicas", (json_int_t) req->nplans, "podManagementPolicy",
                   "Parallel", "selector", "matchLabels", labels (req, true), "template", "metadata", "labels",
                   labels (req, false), "annotations", AVM_KUBE_SDNOTIFY, "container", "spec", spec);
  if (!m)
    return avm_error_sys (err, ENOMEM, "avm kube");
  *out = m;
  return 0;
}
