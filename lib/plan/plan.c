/* SPDX-License-Identifier: Apache-2.0 */
#include "plan/internal.h"
#include "imageset/setcheck.h"
#include "host/hostcheck.h"
#include "qemu/catalog.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strbuf.h"
#include "util/strfmt.h"

#include <stdarg.h>
#include <string.h>
#include <sys/utsname.h>

const char *
pstr (struct plan_ctx *c, const char *path)
{
  return json_string_value (avm_json_path (c->p, path));
}

long long
pint (struct plan_ctx *c, const char *path)
{
  return json_integer_value (avm_json_path (c->p, path));
}

bool
pbool (struct plan_ctx *c, const char *path)
{
  return json_is_true (avm_json_path (c->p, path));
}

int
plan_warn (struct plan_ctx *c, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *msg = avm_vstrdupf (fmt, ap);
  va_end (ap);
  if (msg)
    json_array_append_new (c->warnings, json_string (msg));
  free (msg);
  return 0;
}

int
plan_expand (struct plan_ctx *c, const char *s, const char *where, char **out)
{
  _cleanup_free_ char *label = NULL;
  if (asprintf (&label, "%s: %s", c->file, where) < 0)
    return avm_error_sys (c->err, ENOMEM, "expanding %s", where);
  return avm_vars_expand (&c->scope, s, label, out, c->err);
}

/* A descriptor a service is given (${fd:NAME}, its stdin): NAME, or
   NAME.read/NAME.write of a pipe, NAME.in/NAME.out of a FIFO pair.  WHAT
   says how it was named, for the error.  */
int
plan_check_fd (struct plan_ctx *c, const char *name, const char *where, const char *what, avm_error_t *err)
{
  plan_note_use (c, name);
  const char *dot = strrchr (name, '.');
  if (dot && !plan_resource (c, name))
    {
      _cleanup_free_ char *base = strndup (name, dot - name);
      const struct avm_plan_resource *res = plan_resource (c, base);
      for (const char *const *end = res ? avm_resource_ends (res->type) : NULL; end && *end; end++)
        if (streq (dot, *end))
          return 0;
    }
  if (plan_resource (c, name))
    return 0;
  _cleanup_strbuf_ struct avm_strbuf list = { 0 };
  for (size_t i = 0; i < c->nres; i++)
    avm_strbuf_join (&list, ", ", c->res[i].name);
  bool any = list.s && *list.s;
  return avm_error_input (err, "%s: %s: no such resource%s%s%s", where, what, any ? " (resources: " : "",
                          any ? list.s : "", any ? ")" : "");
}

/* ${fd:NAME} and ${port:NAME} refer to resources.  */
static int
lookup_resource (void *data, const char *ns, const char *arg, const char *where, char **repl, avm_error_t *err)
{
  struct plan_ctx *c = data;
  if (streq (ns, "fd"))
    {
      _cleanup_free_ char *what = NULL;
      if (asprintf (&what, "${fd:%s}", arg) < 0)
        return avm_error_sys (err, ENOMEM, "%s", where);
      /* The supervisor substitutes the descriptor number.  */
      return plan_check_fd (c, arg, where, what, err);
    }
  if (streq (ns, "port"))
    plan_note_use (c, arg);
  if (streq (ns, "port"))
    {
      const struct avm_plan_resource *res = plan_resource (c, arg);
      if (!res || res->port < 0)
        return avm_error_input (err, "%s: ${port:%s}: no listening resource with a port of that name", where, arg);
      return asprintf (repl, "%d", res->port) < 0 ? -ENOMEM : 0;
    }
  if (streq (ns, "var"))
    {
      /* The profile's own variables (vars), themselves expanded (a few
         levels deep at most: a cycle is an error).  */
      json_t *v = json_object_get (avm_json_path (c->p, "vars"), arg);
      if (!json_is_string (v))
        return avm_error_input (err, "%s: ${var:%s}: no such variable in vars", where, arg);
      if (c->var_depth >= 8)
        return avm_error_input (err, "%s: ${var:%s}: variables refer to each other in a cycle", where, arg);
      c->var_depth++;
      int r = avm_vars_expand (&c->scope, json_string_value (v), where, repl, err);
      c->var_depth--;
      return r;
    }
  return avm_error_input (err, "%s: unknown variable namespace ${%s:...} (known: fd, port, var)", where, ns);
}

static int
resolve_qemu (struct plan_ctx *c, char **binary)
{
  _cleanup_free_ char *name = NULL, *dirs = NULL;
  int r = plan_expand (c, pstr (c, "qemu.binary"), "qemu.binary", &name);
  if (r < 0)
    return r;
  r = plan_expand (c, pstr (c, "qemu.search_path"), "qemu.search_path", &dirs);
  if (r < 0)
    return r;
  *binary = avm_find_program (name, *dirs ? dirs : NULL);
  if (*binary)
    return 0;
  if (strchr (name, '/') && !c->req->caps_file)
    return avm_error_sys (c->err, errno, "%s: qemu.binary: %s", c->file, name);
  if (c->req->caps_file)
    {
      *binary = strdup (name);
      return plan_warn (c, "QEMU binary %s not found on this host; using the recorded capabilities of %s", name,
                        c->req->caps_file);
    }
  return avm_error_fail (c->err, ENOENT,
                         "%s: qemu.binary: %s not found in %s%s$PATH (install Debian's qemu-system-%s package or set "
                         "qemu.binary)",
                         c->file, name, dirs, *dirs ? " or " : "", streq (c->arch, "x86_64") ? "x86" : "arm");
}

const char *
avm_host_arch (void)
{
  static struct utsname u;
  if (uname (&u) < 0)
    return "";
  return streq (u.machine, "arm64") ? "aarch64" : u.machine;
}

static int
resolve_accel (struct plan_ctx *c)
{
  json_t *list = avm_json_path (c->p, "machine.accel");
  size_t i;
  json_t *a;
  _cleanup_strbuf_ struct avm_strbuf tried = { 0 };

  json_array_foreach (list, i, a)
    {
      const char *name = json_string_value (a);
      _cleanup_free_ char *why = NULL;
      if (!avm_qemu_caps_has_accel (c->caps, name))
        why = strdup ("not built into this QEMU");
      else if (streq (name, "kvm") && !streq (c->arch, avm_host_arch ()))
        asprintf (&why, "guest %s on a %s host", c->arch, avm_host_arch ());
      else if (streq (name, "kvm") && !avm_kvm_usable (&why) && !why)
        why = strdup ("unusable");
      if (!why)
        {
          c->accel = name;
          if (i > 0)
            plan_warn (c, "using accelerator %s: %s", name, tried.s ? tried.s : "");
          return 0;
        }
      avm_strbuf_addf (&tried, "%s%s %s", tried.len ? "; " : "", name, why);
    }
  return avm_error_fail (c->err, ENODEV, "%s: machine.accel: no usable accelerator (%s)", c->file,
                         tried.s ? tried.s : "");
}

/* The images directory does not exist (none of paths.images): said once,
   instead of each file in it.  */
static int
images_missing (struct plan_ctx *c)
{
  if (c->images_said)
    return 0;
  c->images_said = true;
  /* paths.images may list several: "a, b: none exists".  */
  _cleanup_free_ char *tried = strdup (c->images_tried ? c->images_tried : c->images);
  if (!tried)
    return avm_error_sys (c->err, ENOMEM, "plan");
  _cleanup_strbuf_ struct avm_strbuf list = { 0 };
  char *save = NULL;
  size_t n = 0;
  for (char *d = strtok_r (tried, ":", &save); d; d = strtok_r (NULL, ":", &save), n++)
    avm_strbuf_join (&list, ", ", d);
  bool several = n > 1;
  struct stat st;
  /* One that is there but is no directory (--images system.img) is said so.  */
  const char *absent = several ? "do not exist"
                       : stat (list.s ? list.s : c->images, &st) == 0 && !S_ISDIR (st.st_mode) ? "is not a directory"
                                                                                               : "does not exist";
  const char *hint = c->req->images ? NULL : pstr (c, "paths.images_hint");
  _cleanup_free_ char *msg = NULL;
  if (!list.s
      || asprintf (&msg, "%s %s %s (%s)%s%s%s", several ? "images directories" : "images directory", list.s, absent,
                   c->req->images ? "--images" : "paths.images", c->req->images ? "" : ": ", hint ? hint : "",
                   c->req->images ? ""
                   : hint         ? ", or pass --images DIR"
                                  : "pass --images DIR")
             < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  if (!c->req->dry_run)
    return c->req->images ? avm_error_input (c->err, "%s", msg) : avm_error_input (c->err, "%s: %s", c->file, msg);
  json_array_append_new (c->missing, json_pack ("{s:s, s:s, s:s}", "key", "paths.images", "path", c->images, "error",
                                                "No such directory"));
  return plan_warn (c, "%s", msg);
}

/* Under the images directory, or the directory itself.  */
static bool
in_images (struct plan_ctx *c, const char *path)
{
  size_t n = strlen (c->images);
  return strncmp (path, c->images, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static int
check_file (struct plan_ctx *c, const char *path, const char *what)
{
  struct stat st;
  int e = 0;
  if (access (path, R_OK) < 0)
    e = errno;
  else if (stat (path, &st) == 0 && S_ISDIR (st.st_mode))
    e = EISDIR; /* QEMU would refuse it only once it runs */
  else
    return 0;
  if ((e == ENOENT || e == ENOTDIR) && in_images (c, path))
    {
      struct stat dst;
      if (stat (c->images, &dst) < 0 || !S_ISDIR (dst.st_mode))
        return images_missing (c);
    }
  if (c->req->dry_run)
    {
      json_array_append_new (c->missing,
                             json_pack ("{s:s, s:s, s:s}", "key", what, "path", path, "error", strerror (e)));
      return plan_warn (c, "%s %s: %s", what, path, strerror (e));
    }
  /* A file that is not there is bad input (exit 2); one that cannot be
     read is a failure of the host.  */
  if (e == ENOENT || e == ENOTDIR || e == ELOOP || e == EISDIR)
    return avm_error_input (c->err, "%s %s: %s", what, path, strerror (e));
  return avm_error_sys (c->err, e, "%s %s", what, path);
}

/* PATH (profile key WHAT) against the cvd2img image set it belongs to, if
   any (imageset/setcheck.h): an interrupted conversion, or files from different
   conversions, are refused (listed in a dry run).  Cheap: a disk's GPT
   header, the other files' sizes.  */
static int
check_set (struct plan_ctx *c, const char *path, const char *what)
{
  _cleanup_json_ json_t *problems = json_array ();
  int r = avm_setcheck (path, false, AVM_SETCHECK_CHEAP, problems, c->err);
  if (r < 0)
    return r;
  if (json_array_size (problems) == 0)
    return 0;
  const char *first = json_string_value (json_array_get (problems, 0));
  if (!c->req->dry_run)
    return avm_error_input (c->err, "%s", first);
  size_t i;
  json_t *p;
  json_array_foreach (problems, i, p)
    {
      json_array_append_new (c->missing, json_pack ("{s:s, s:s, s:s, s:s}", "key", what, "path", path, "error",
                                                    json_string_value (p), "kind", "image_set"));
      /* The marker concerns every file of its directory: said once.  */
      size_t k;
      json_t *w;
      bool said = false;
      json_array_foreach (c->warnings, k, w)
        said |= json_equal (w, p);
      if (!said && (r = plan_warn (c, "%s", json_string_value (p))) < 0)
        return r;
    }
  return 0;
}

static int
check_files (struct plan_ctx *c)
{
  size_t i;
  json_t *d;
  static const char *const fw[] = { "bios", "kernel", "initrd" };
  for (size_t k = 0; k < ARRAY_SIZE (fw); k++)
    {
      char path[32];
      snprintf (path, sizeof path, "firmware.%s", fw[k]);
      const char *v = pstr (c, path);
      if (v)
        {
          _cleanup_free_ char *e = NULL;
          int r = plan_expand (c, v, path, &e);
          /* (A file a dry run lists as missing has no set to check.)  */
          if (r < 0 || (r = check_file (c, e, path)) < 0 || (access (e, R_OK) == 0 && (r = check_set (c, e, path)) < 0))
            return r;
        }
    }
  json_array_foreach (avm_json_path (c->p, "disks"), i, d)
    {
      _cleanup_free_ char *where = NULL, *e = NULL;
      if (asprintf (&where, "disks[%zu].path", i) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
      int r = plan_expand (c, json_string_value (json_object_get (d, "path")), where, &e);
      if (r < 0)
        return r;
      if (!json_is_true (json_object_get (d, "boot_properties")))
        {
          if ((r = check_file (c, e, where)) == 0 && access (e, R_OK) == 0)
            r = check_set (c, e, where);
        }
      else
        {
          /* Generated at start: what must be there is the key to build it
             with (a disk that exists is checked, and kept or rebuilt, by
             avm_props_sync); a key of a cvd2img set must be that set's.  */
          _cleanup_free_ char *kwhere = NULL, *key = NULL;
          if (asprintf (&kwhere, "disks[%zu].key", i) < 0)
            return avm_error_sys (c->err, ENOMEM, "plan");
          if ((r = plan_expand (c, json_string_value (json_object_get (d, "key")), kwhere, &key)) < 0)
            return r;
          if (access (e, F_OK) < 0)
            r = check_file (c, key, kwhere);
          if (r == 0 && access (key, F_OK) == 0)
            r = check_set (c, key, kwhere);
        }
      if (r < 0)
        return r;
    }
  return 0;
}

/* Disks with boot_properties: avm builds them from the plan's boot
   properties before QEMU starts (disk/propsync.h).  */
static int
generated_disks (struct plan_ctx *c)
{
  size_t i;
  json_t *d;
  json_array_foreach (avm_json_path (c->p, "disks"), i, d)
    {
      _cleanup_free_ char *pwhere = NULL, *kwhere = NULL, *path = NULL, *key = NULL;
      const char *format = json_string_value (json_object_get (d, "format"));
      int r;
      if (!json_is_true (json_object_get (d, "boot_properties")))
        continue;
      if (!json_object_get (c->p, "boot_properties"))
        return avm_error_input (c->err,
                                "%s: disks[%zu].boot_properties: the profile has no boot_properties to generate the "
                                "disk from (add a boot_properties object, or set disks[%zu].boot_properties to false)",
                                c->file, i, i);
      if (!streq (format, "raw"))
        return avm_error_input (c->err,
                                "%s: disks[%zu].format: a generated properties disk (boot_properties true) is raw, "
                                "not %s",
                                c->file, i, format);
      if (asprintf (&pwhere, "disks[%zu].path", i) < 0 || asprintf (&kwhere, "disks[%zu].key", i) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
      if ((r = plan_expand (c, json_string_value (json_object_get (d, "path")), pwhere, &path)) < 0
          || (r = plan_expand (c, json_string_value (json_object_get (d, "key")), kwhere, &key)) < 0)
        return r;
      const char *name = json_string_value (json_object_get (d, "name"));
      struct avm_plan_generated g
          = { .name = name ? strdup (name) : NULL, .path = steal_pointer (&path), .key = steal_pointer (&key) };
      if ((r = plan_add_generated (c, &g)) < 0)
        return r;
    }
  return 0;
}

/* The Functional Safety verdict: free-form QEMU arguments and helpers
   outside the approved catalog (plan_approve_services) are refused, all
   named at once, unless --allow-unapproved, which flags them in every
   output (warnings, the dry run's header, the JSON plan, avm status, the
   logs' run header).  A layout-only plan runs nothing: no verdict.  */
static int
check_unapproved (struct plan_ctx *c, bool *approved)
{
  json_t *extra = avm_json_path (c->p, "extra_qemu_args");
  size_t i;
  json_t *w;
  int r;
  *approved = true;
  if (c->req->layout_only)
    return 0;
  if (json_array_size (extra) > 0
      && json_array_insert_new (c->unapproved, 0,
                                json_sprintf ("extra_qemu_args: %zu free-form QEMU argument(s)",
                                              json_array_size (extra)))
             < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  if ((r = plan_approve_services (c)) < 0)
    return r;
  if (json_array_size (c->unapproved) == 0)
    return 0;
  if (!c->req->allow_unapproved)
    {
      json_array_foreach (c->unapproved, i, w)
        avm_error_append (c->err, AVM_EXIT_USAGE, 0, "%s: not approved: %s", c->file, json_string_value (w));
      return avm_error_append (c->err, AVM_EXIT_USAGE, 0,
                               "refusing an unapproved configuration: use the approved helpers and flags "
                               "(avm-profile(5), APPROVED HELPERS), or pass --allow-unapproved to run it flagged "
                               "UNAPPROVED");
    }
  *approved = false;
  json_array_foreach (c->unapproved, i, w)
    if ((r = plan_warn (c, "UNAPPROVED configuration: %s", json_string_value (w))) < 0)
      return r;
  return 0;
}

/* Where adb reaches the guest from the host: the TCP listener adb_tcp
   (Cuttlefish's socket_vsock_proxy, the AAOS profiles), else a user-mode
   port forward to the guest's adbd (5555); null when there is neither.  */
static json_t *
adb_endpoint (struct plan_ctx *c)
{
  const struct avm_plan_resource *res = plan_resource (c, "adb_tcp");
  if (res && res->type == AVM_RES_TCP_LISTEN)
    {
      const char *a = res->address ? res->address : "127.0.0.1"; /* resources.c's default */
      return json_sprintf (strchr (a, ':') ? "[%s]:%d" : "%s:%d", a, res->port);
    }
  size_t i;
  json_t *fw;
  if (streq (pstr (c, "network.mode"), "user"))
    json_array_foreach (avm_json_path (c->p, "network.forwards"), i, fw)
      if (json_integer_value (json_object_get (fw, "guest_port")) == 5555
          && streq (json_string_value (json_object_get (fw, "proto")) ?: "tcp", "tcp"))
        {
          const char *a = json_string_value (json_object_get (fw, "host_addr"));
          if (!a)
            a = "127.0.0.1";
          else if (!*a)
            a = "0.0.0.0"; /* QEMU's hostfwd: every address */
          return json_sprintf (strchr (a, ':') ? "[%s]:%lld" : "%s:%lld", a,
                               (long long) json_integer_value (json_object_get (fw, "host_port")) + c->instance - 1);
        }
  return json_null ();
}

int
avm_plan_build (const struct avm_plan_request *req, struct avm_plan **out, avm_error_t *err)
{
  struct plan_ctx c = { 0 };
  _cleanup_free_ char *qemu = NULL;
  struct avm_plan *plan = NULL;
  json_t *adb = NULL;
  bool approved;
  int r;

  c.req = req;
  c.err = err;
  c.p = req->profile->json;
  c.file = req->profile->path;
  c.arch = pstr (&c, "machine.arch");
  c.instance = req->instance > 0 ? req->instance : 1;
  c.cid = pint (&c, "vsock.guest_cid") + c.instance - 1;
  c.pci = json_array ();
  c.warnings = json_array ();
  c.unapproved = json_array ();
  c.missing = json_array ();
  c.bootprops = json_object ();
  c.run_dir = avm_instance_run_dir (c.instance);
  c.state_dir = avm_instance_state_dir (c.instance);
  c.data_dir = avm_data_dir ();
  snprintf (c.instance_str, sizeof c.instance_str, "%d", c.instance);
  snprintf (c.cid_str, sizeof c.cid_str, "%lld", c.cid);
  snprintf (c.guest_name, sizeof c.guest_name, "%s-%d", req->profile->name, c.instance);

  /* ${images} may itself use the other variables.  */
  size_t nv = 0;
  c.vars[nv++] = (struct avm_var) { "arch", c.arch };
  c.vars[nv++] = (struct avm_var) { "name", req->profile->name };
  c.vars[nv++] = (struct avm_var) { "instance", c.instance_str };
  c.vars[nv++] = (struct avm_var) { "cid", c.cid_str };
  c.vars[nv++] = (struct avm_var) { "run_dir", c.run_dir };
  c.vars[nv++] = (struct avm_var) { "state_dir", c.state_dir };
  c.vars[nv++] = (struct avm_var) { "data_dir", c.data_dir };
  c.scope = (struct avm_vars) { .vars = c.vars, .n = nv, .lookup_ns = lookup_resource, .data = &c };
  if (req->images)
    c.images = realpath (req->images, NULL) ?: strdup (req->images);
  else
    {
      /* paths.images may list several directories: the first that exists
         (an installed demo, then the source tree's build).  */
      _cleanup_free_ char *list = NULL;
      bool found;
      if ((r = plan_expand (&c, pstr (&c, "paths.images"), "paths.images", &list)) < 0)
        goto out;
      if (!(c.images = avm_first_dir (list, &found)))
        {
          r = avm_error_input (err, "%s: paths.images: no directory", c.file);
          goto out;
        }
      if (!found)
        c.images_tried = steal_pointer (&list);
    }
  c.vars[nv++] = (struct avm_var) { "images", c.images };
  c.scope.n = nv;

  if (req->layout_only)
    {
      qemu = strdup (pstr (&c, "qemu.binary"));
      c.caps = calloc (1, sizeof *c.caps);
      if (!qemu || !c.caps || !(c.caps->version = strdup ("any")) || !(c.caps->binary = strdup (qemu)))
        {
          r = avm_error_sys (err, ENOMEM, "plan");
          goto out;
        }
      c.any_caps = true;
      c.accel = json_string_value (avm_json_path (c.p, "machine.accel[0]"));
    }
  else
    {
      if ((r = resolve_qemu (&c, &qemu)) < 0)
        goto out;
      if (req->caps_file)
        r = avm_qemu_caps_load_file (req->caps_file, &c.caps, err);
      else
        r = avm_qemu_caps_get (qemu, &c.caps, err);
      if (r < 0)
        goto out;
      if ((r = resolve_accel (&c)) < 0)
        goto out;
    }
  c.qemu_binary = qemu;
  if ((r = plan_cuttlefish_vars (&c)) < 0 || (r = plan_services (&c)) < 0)
    goto out;
  if ((r = plan_qemu_argv (&c)) < 0 || (r = plan_cuttlefish_config (&c)) < 0)
    goto out;
  if ((r = plan_boot_properties (&c)) < 0 || (r = plan_prune_resources (&c)) < 0 || (r = plan_check_sockets (&c)) < 0)
    goto out;
  /* After every structural check: a wrong profile is said as such first.  */
  if ((r = generated_disks (&c)) < 0 || (r = check_unapproved (&c, &approved)) < 0)
    goto out;
  if (!req->layout_only && (r = check_files (&c)) < 0)
    goto out;
  if (!req->layout_only && !req->caps_file && avm_plan_host_fit (c.p, c.warnings) < 0)
    {
      r = avm_error_sys (err, ENOMEM, "plan");
      goto out;
    }

  plan = calloc (1, sizeof *plan);
  if (!plan)
    {
      r = avm_error_sys (err, ENOMEM, "plan");
      goto out;
    }
  plan->approved = approved;
  plan->qemu_argv = avm_argv_steal (&c.argv);
  plan->qemu_lines = steal_pointer (&c.lines);
  plan->n_lines = c.n_lines;
  plan->caps = steal_pointer (&c.caps);
  adb = adb_endpoint (&c);
  if ((r = plan_hand_over (&c, plan)) < 0 || (r = plan_make_typed (&c, plan, adb)) < 0)
    goto out;
  *out = steal_pointer (&plan);
  r = 0;

out:
  if (r < 0)
    avm_profile_blame_sets (req->profile, err);
  avm_argv_clear (&c.argv);
  free (c.lines);
  json_decref (c.pci);
  for (size_t i = 0; i < c.nsvcs; i++)
    plan_service_clear (&c.svcs[i]);
  free (c.svcs);
  for (size_t i = 0; i < c.nres; i++)
    avm_plan_resource_clear (&c.res[i]);
  free (c.res);
  json_decref (c.warnings);
  json_decref (c.unapproved);
  json_decref (c.missing);
  for (size_t i = 0; i < c.nskipped; i++)
    {
      free (c.skipped[i].name);
      free (c.skipped[i].reason);
      free (c.skipped[i].description);
    }
  free (c.skipped);
  avm_argv_clear (&c.global_uses);
  free (c.helper_dirs);
  json_decref (c.bootprops);
  for (size_t i = 0; i < c.ngen; i++)
    plan_generated_clear (&c.gen[i]);
  free (c.gen);
  for (size_t i = 0; i < c.ndisks; i++)
    plan_disk_clear (&c.disks[i]);
  free (c.disks);
  free (c.ram_file);
  free (c.agent_socket);
  avm_argv_clear (&c.macs);
  avm_argv_clear (&c.web_urls);
  avm_argv_clear (&c.vnc_sockets);
  free (c.web_listen);
  free (c.display_backend);
  free (c.display_address);
  free (c.run_dir);
  free (c.state_dir);
  free (c.data_dir);
  free (c.images);
  free (c.images_tried);
  free (c.cf_root);
  free (c.cf_instance_dir);
  free (c.cf_config);
  avm_qemu_caps_free (c.caps);
  avm_plan_free (plan);
  json_decref (adb);
  return r;
}

void
avm_plan_free (struct avm_plan *plan)
{
  if (!plan)
    return;
  plan_typed_clear (plan);
  avm_strv_free (plan->qemu_argv);
  free (plan->qemu_lines);
  avm_qemu_caps_free (plan->caps);
  free (plan);
}

void
avm_plan_freep (struct avm_plan **plan)
{
  avm_plan_free (*plan);
  *plan = NULL;
}
