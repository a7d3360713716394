// SPDX-License-Identifier: Apache-2.0
// Offline check of avm kube's manifests (tests/unit/test_kube.c):
//   node validate.mjs [--budget SECONDS] [--no-kvm] FILE... [--budget ...]
// (--budget and --no-kvm apply to the files after them).
// Each FILE is one manifest (JSON, as avm kube prints it).  It must pass
// the Kubernetes API schema of its kind (npm's kubernetes-models, pinned
// in package-lock.json), have no field the schema does not know, and
// follow avm's rules: DNS-1123 names, label keys and values, the grace
// period at least the stop budget, /dev/kvm given to the container (a
// device plugin resource, or a hostPath mounted at /dev/kvm), the pod
// unprivileged, the probes `avm status --ready` and `--live`.
// Prints one line per problem, "FILE: PATH: MESSAGE"; exits 1 when there
// is any, 2 for bad usage, 0 otherwise.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
// The schemas' compiled validators: not exported by the package, so
// imported by their path.
const schemas = {
  "v1/Pod": "IoK8sApiCoreV1Pod.mjs",
  "apps/v1/StatefulSet": "IoK8sApiAppsV1StatefulSet.mjs",
};

let budget = null;
let kvm = true;
const files = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--budget") {
    budget = Number(args[++i]);
    if (!Number.isFinite(budget)) files.length = 0;
  } else if (args[i] === "--no-kvm") kvm = false;
  else if (args[i].startsWith("--")) {
    console.error(`validate.mjs: unknown option ${args[i]}`);
    process.exit(2);
  } else files.push({ file: args[i], budget, kvm });
}
if (files.length === 0) {
  console.error("usage: node validate.mjs [--budget SECONDS] [--no-kvm] FILE...");
  process.exit(2);
}

// Every property the validator reads, by JSON path: a key it never read
// is one the schema does not have (maps, such as labels, are read whole).
function tracked(value, path, seen) {
  if (value === null || typeof value !== "object") return value;
  const cache = new Map();
  return new Proxy(value, {
    get(target, prop, receiver) {
      if (typeof prop !== "string") return Reflect.get(target, prop, receiver);
      seen.add(`${path}/${prop}`);
      const v = Reflect.get(target, prop, receiver);
      if (v === null || typeof v !== "object") return v;
      if (!cache.has(prop)) cache.set(prop, tracked(v, `${path}/${prop}`, seen));
      return cache.get(prop);
    },
  });
}

function unknownFields(value, path, seen, out) {
  if (value === null || typeof value !== "object") return;
  for (const [k, v] of Object.entries(value)) {
    const p = `${path}/${k}`;
    if (!Array.isArray(value) && !seen.has(p)) out.push([p, "unknown field"]);
    else unknownFields(v, p, seen, out);
  }
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

function label(name, max) {
  return typeof name === "string" && name.length <= max && DNS1123_LABEL.test(name);
}

function checkLabels(labels, path, problems) {
  for (const [k, v] of Object.entries(labels ?? {})) {
    const slash = k.lastIndexOf("/");
    const prefix = slash >= 0 ? k.slice(0, slash) : null;
    const name = slash >= 0 ? k.slice(slash + 1) : k;
    if (prefix !== null && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)))
      problems.push([`${path}/${k}`, "label key prefix is not a DNS-1123 subdomain"]);
    if (name.length > 63 || !LABEL_NAME.test(name)) problems.push([`${path}/${k}`, "bad label key name"]);
    if (typeof v !== "string" || v.length > 63 || (v !== "" && !LABEL_NAME.test(v)))
      problems.push([`${path}/${k}`, `bad label value ${JSON.stringify(v)}`]);
  }
}

function avmRules(m, problems, { budget, kvm }) {
  const sts = m.kind === "StatefulSet";
  const name = m.metadata?.name;
  if (!label(name, sts ? 52 : 63)) problems.push(["/metadata/name", `not a DNS-1123 label: ${JSON.stringify(name)}`]);
  checkLabels(m.metadata?.labels, "/metadata/labels", problems);
  const base = sts ? "/spec/template/spec" : "/spec";
  const spec = sts ? m.spec?.template?.spec : m.spec;
  if (sts) {
    checkLabels(m.spec?.template?.metadata?.labels, "/spec/template/metadata/labels", problems);
    const tl = m.spec?.template?.metadata?.labels ?? {};
    for (const [k, v] of Object.entries(m.spec?.selector?.matchLabels ?? {}))
      if (tl[k] !== v) problems.push([`/spec/selector/matchLabels/${k}`, "the template's labels do not match"]);
  }
  if (!spec) {
    problems.push([base, "no pod spec"]);
    return;
  }
  const grace = spec.terminationGracePeriodSeconds;
  if (budget !== null && !(grace >= budget))
    problems.push([`${base}/terminationGracePeriodSeconds`, `${grace} is below avm's stop budget ${budget} s`]);
  const psc = spec.securityContext ?? {};
  if (psc.runAsNonRoot !== true) problems.push([`${base}/securityContext/runAsNonRoot`, "must be true"]);
  if (!(psc.runAsUser > 0)) problems.push([`${base}/securityContext/runAsUser`, "must be a non-root user"]);
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  (spec.volumes ?? []).forEach((v, i) => {
    if (!label(v.name, 63)) problems.push([`${base}/volumes/${i}/name`, "not a DNS-1123 label"]);
  });
  const containers = spec.containers ?? [];
  if (containers.length !== 1) problems.push([`${base}/containers`, "expected the one avm container"]);
  containers.forEach((c, i) => {
    const cp = `${base}/containers/${i}`;
    if (!label(c.name, 63)) problems.push([`${cp}/name`, "not a DNS-1123 label"]);
    const sc = c.securityContext ?? {};
    if (sc.allowPrivilegeEscalation !== false) problems.push([`${cp}/securityContext/allowPrivilegeEscalation`, "must be false"]);
    if (sc.privileged === true) problems.push([`${cp}/securityContext/privileged`, "must not be true"]);
    const ports = new Set();
    (c.ports ?? []).forEach((p, k) => {
      if (!(typeof p.name === "string" && p.name.length <= 15 && IANA_SVC_NAME.test(p.name) && /[a-z]/.test(p.name) && !p.name.includes("--")))
        problems.push([`${cp}/ports/${k}/name`, `not an IANA service name: ${JSON.stringify(p.name)}`]);
      if (ports.has(p.name)) problems.push([`${cp}/ports/${k}/name`, "used twice"]);
      ports.add(p.name);
    });
    for (const [k, mnt] of (c.volumeMounts ?? []).entries())
      if (!volumes.has(mnt.name)) problems.push([`${cp}/volumeMounts/${k}`, `no volume ${mnt.name}`]);
    const images = (c.volumeMounts ?? []).find((v) => v.mountPath === "/images");
    if (!images || images.readOnly !== true) problems.push([`${cp}/volumeMounts`, "/images is not mounted read-only"]);
    if (kvm) {
      const limits = c.resources?.limits ?? {};
      const plugin = Object.keys(limits).some((k) => /(^|\/)kvm$/.test(k) && String(limits[k]) === "1");
      const host = (c.volumeMounts ?? []).some(
        (v) => v.mountPath === "/dev/kvm" && volumes.get(v.name)?.hostPath?.path === "/dev/kvm",
      );
      if (!plugin && !host) problems.push([`${cp}/resources/limits`, "/dev/kvm is not given (device plugin resource or hostPath)"]);
    }
    for (const r of ["cpu", "memory"])
      if (!c.resources?.requests?.[r] || !c.resources?.limits?.[r])
        problems.push([`${cp}/resources`, `no ${r} request and limit`]);
    const cmd = (probe) => (c[probe]?.exec?.command ?? []).join(" ");
    if (!/ status --ready( |$)/.test(cmd("readinessProbe"))) problems.push([`${cp}/readinessProbe`, "not avm status --ready"]);
    if (!/ status --live( |$)/.test(cmd("livenessProbe"))) problems.push([`${cp}/livenessProbe`, "not avm status --live"]);
  });
}

let bad = 0;
for (const { file, budget, kvm } of files) {
  const problems = [];
  let m;
  try {
    m = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    console.log(`${file}: not JSON: ${e.message}`);
    bad++;
    continue;
  }
  const key = `${m?.apiVersion}/${m?.kind}`;
  if (!schemas[key]) problems.push(["", `kind ${key}: not a Pod or StatefulSet`]);
  else {
    const { validate } = await import(pathToFileURL(join(here, "node_modules/kubernetes-models/_schemas", schemas[key])));
    const seen = new Set(["/apiVersion", "/kind"]);
    if (!validate(tracked(m, "", seen)))
      for (const e of validate.errors)
        problems.push([e.instancePath, `schema: ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`]);
    unknownFields(m, "", seen, problems);
    avmRules(m, problems, { budget, kvm });
  }
  for (const [p, msg] of problems) console.log(`${file}: ${p || "/"}: ${msg}`);
  bad += problems.length;
}
process.exit(bad ? 1 : 0);
