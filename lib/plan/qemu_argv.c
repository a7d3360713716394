/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The approved QEMU command line.  Every option is generated here from
 * typed, validated profile values; device types come only from the
 * catalog (lib/qemu/catalog.c) and must exist in the QEMU at hand.  PCI
 * addresses are pinned: slot 2 is the GPU, the console devices follow from
 * slot 3, then the disks, then the other devices in a fixed order, so that
 * androidboot.boot_devices (bootprops.c) is derived from the same table.
 */
#include "plan/internal.h"
#include "qemu/catalog.h"
#include "util/cleanup.h"
#include "util/quote.h"
#include "util/strbuf.h"
#include "util/strfmt.h"

#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#define GPU_SLOT 2
#define FIRST_CONSOLE_SLOT 3
#define MAX_SLOT 0x1f
/* Both x86 flash chips together (launch_cvd pads the bootloader to 4 MiB).  */
#define AVM_PFLASH_SIZE (4 << 20)

static int
new_line (struct plan_ctx *c)
{
  if (c->n_lines == c->lines_alloc)
    {
      size_t na = c->lines_alloc ? c->lines_alloc * 2 : 64;
      size_t *nl = realloc (c->lines, na * sizeof *nl);
      if (!nl)
        return -ENOMEM;
      c->lines = nl;
      c->lines_alloc = na;
    }
  c->lines[c->n_lines++] = c->argv.n;
  return 0;
}

/* One option line: OPT followed by an optional formatted value.  */
static int __attribute__ ((format (printf, 3, 4)))
opt (struct plan_ctx *c, const char *option, const char *fmt, ...)
{
  if (new_line (c) < 0 || avm_argv_push (&c->argv, option) < 0)
    return avm_error_sys (c->err, ENOMEM, "building the QEMU command line");
  if (!fmt)
    return 0;
  va_list ap;
  va_start (ap, fmt);
  char *v = avm_vstrdupf (fmt, ap);
  va_end (ap);
  if (avm_argv_push_take (&c->argv, v) < 0)
    return avm_error_sys (c->err, ENOMEM, "building the QEMU command line");
  return 0;
}

/* A device from the catalog, checked against the QEMU capabilities.  */
static int
need_device (struct plan_ctx *c, const char *type, const char *key)
{
  const struct avm_qdev *d = avm_qdev_lookup (type);
  if (!d)
    return avm_error_fail (c->err, EINVAL, "internal error: device %s is not in the approved catalog", type);
  if (c->any_caps || avm_qemu_caps_has_device (c->caps, type))
    return 0;
  char added[64];
  if (d->since_major)
    snprintf (added, sizeof added, "added in QEMU %d.%d", d->since_major, d->since_minor);
  else
    snprintf (added, sizeof added, "not in upstream QEMU");
  return avm_error_input (c->err, "profile %s needs %s (%s, for %s), which %s %s lacks (%s); use %s%s", c->req->profile->name,
                          type, d->what, key, c->caps->binary, c->caps->version, added, d->fix ? d->fix : "a QEMU that has it",
                          d->fix && d->since_major ? " or a newer QEMU" : "");
}

static int __attribute__ ((format (printf, 5, 6)))
device (struct plan_ctx *c, const char *type, const char *key, int slot, const char *fmt, ...)
{
  int r = need_device (c, type, key);
  if (r < 0)
    return r;
  _cleanup_free_ char *props = NULL;
  if (fmt)
    {
      va_list ap;
      va_start (ap, fmt);
      props = avm_vstrdupf (fmt, ap);
      va_end (ap);
      if (!props)
        return avm_error_sys (c->err, ENOMEM, "building the QEMU command line");
    }
  if (slot >= 0)
    {
      json_t *e = json_object ();
      char sl[16];
      snprintf (sl, sizeof sl, "0x%02x", slot);
      json_object_set_new (e, "slot", json_string (sl));
      json_object_set_new (e, "device", json_string (type));
      json_object_set_new (e, "for", json_string (key));
      json_array_append_new (c->pci, e);
      return opt (c, "-device", "%s%s%s,addr=0x%x", type, props ? "," : "", props ? props : "", slot);
    }
  return opt (c, "-device", "%s%s%s", type, props ? "," : "", props ? props : "");
}

static int
alloc_slot (struct plan_ctx *c, const char *what, int *slot)
{
  if (c->next_slot > MAX_SLOT - 1)
    return avm_error_input (c->err, "%s: too many PCI devices for one bus (at %s)", c->file, what);
  *slot = c->next_slot++;
  return 0;
}

/* A path or other free value inside a QEMU option: commas doubled.  */
static char *
qv (const char *s)
{
  return avm_qemu_escape (s);
}

static int
expand_q (struct plan_ctx *c, const char *s, const char *where, char **out)
{
  _cleanup_free_ char *e = NULL;
  int r = plan_expand (c, s, where, &e);
  if (r < 0)
    return r;
  *out = qv (e);
  return *out ? 0 : -ENOMEM;
}

/* ---------------------------------------------------------------- */

static int
emit_machine (struct plan_ctx *c)
{
  const char *type = pstr (c, "machine.type");
  const char *arch = c->arch;
  bool x86 = streq (arch, "x86_64");
  bool kvm = streq (c->accel, "kvm");
  long long mem = pint (c, "machine.memory"), cpus = pint (c, "machine.cpus");
  const char *backend = pstr (c, "machine.memory_backend");
  int r;

  if (!type)
    type = x86 ? "pc" : "virt";
  if (x86 && streq (type, "virt"))
    return avm_error_input (c->err, "%s: machine.type: virt is an aarch64 machine; use pc or q35 for x86_64", c->file);
  if (!x86 && !streq (type, "virt"))
    return avm_error_input (c->err, "%s: machine.type: %s is an x86 machine; use virt for aarch64", c->file, type);
  if (!c->any_caps && !avm_qemu_caps_has_machine (c->caps, type))
    return avm_error_input (c->err, "%s: machine.type: %s %s has no machine type %s", c->file, c->caps->binary,
                            c->caps->version, type);
  if (c->shared_memory && streq (backend, "default"))
    return avm_error_input (c->err,
                            "%s: machine.memory_backend: vhost-user devices need shared guest RAM; use auto, memfd or file",
                            c->file);
  bool shared = c->shared_memory || streq (backend, "memfd") || streq (backend, "file");
  if (!x86 && !kvm && cpus > 8)
    return avm_error_input (c->err, "%s: machine.cpus: at most 8 vCPUs with GICv2 under TCG on aarch64", c->file);

  if ((r = opt (c, "-name", "guest=%s,debug-threads=on", c->guest_name)) < 0)
    return r;
  if ((r = opt (c, "-machine", "%s,usb=off,dump-guest-core=off%s%s", type, shared ? ",memory-backend=vm_ram" : "",
                x86 ? "" : (kvm ? ",gic-version=3" : ",gic-version=2"))) < 0)
    return r;
  if ((r = opt (c, "-accel", "%s", c->accel)) < 0)
    return r;

  const char *cpu = pstr (c, "machine.cpu");
  if (streq (cpu, "auto"))
    cpu = kvm ? "host" : "max";
  else if (streq (cpu, "host") && !kvm)
    return avm_error_input (c->err, "%s: machine.cpu: \"host\" needs KVM but the accelerator is %s; use auto or max",
                            c->file, c->accel);
  for (const char *p = cpu; *p; p++)
    if (!strchr ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *p))
      return avm_error_input (c->err, "%s: machine.cpu: \"%s\" is not a CPU model name", c->file, cpu);
  if ((r = opt (c, "-cpu", "%s", cpu)) < 0)
    return r;

  if (shared && !streq (backend, "file"))
    r = opt (c, "-object", "memory-backend-memfd,id=vm_ram,size=%lldM,share=on", mem);
  else if (shared)
    {
      _cleanup_free_ char *dir = NULL;
      if ((r = expand_q (c, pstr (c, "machine.memory_path"), "machine.memory_path", &dir)) < 0)
        return r;
      r = opt (c, "-object", "memory-backend-file,id=vm_ram,size=%lldM,mem-path=%s,share=on", mem, dir);
    }
  if (r < 0 || (r = opt (c, "-m", "%lldM", mem)) < 0)
    return r;
  if ((r = opt (c, "-smp", "%lld,cores=%lld,threads=1", cpus, cpus)) < 0)
    return r;
  if ((r = opt (c, "-overcommit", "mem-lock=off")) < 0)
    return r;
  static const char *const fixed[] = { "-no-user-config", "-nodefaults" };
  for (size_t i = 0; i < ARRAY_SIZE (fixed); i++)
    if ((r = opt (c, fixed[i], NULL)) < 0)
      return r;
  if ((r = opt (c, "-rtc", "base=utc")) < 0 || (r = opt (c, "-boot", "strict=on")) < 0)
    return r;
  if ((r = opt (c, "-msg", "timestamp=on")) < 0)
    return r;
  /* QMP for the supervisor (graceful stop, status, watchdog).  */
  _cleanup_free_ char *qmp = NULL;
  if (asprintf (&qmp, "%s/qmp.sock", c->run_dir) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  _cleanup_free_ char *qmpq = qv (qmp);
  if ((r = opt (c, "-chardev", "socket,id=qmp,path=%s,server=on,wait=off", qmpq)) < 0)
    return r;
  return opt (c, "-mon", "chardev=qmp,mode=control");
}

static int
emit_display (struct plan_ctx *c)
{
  const char *backend = pstr (c, "display.backend");
  bool gl = pbool (c, "display.gl");
  int r;

  if (gl && !streq (backend, "dbus") && !streq (backend, "gtk") && !streq (backend, "egl-headless"))
    return avm_error_input (c->err, "%s: display.gl: OpenGL needs display.backend dbus, gtk or egl-headless, not %s",
                            c->file, backend);
  const char *qbackend = streq (backend, "vnc") ? "none" : backend;
  if (!c->any_caps && !avm_qemu_caps_has_display (c->caps, qbackend))
    return avm_error_input (c->err,
                            "profile %s needs display backend %s, which %s %s lacks (Debian: install qemu-system-gui); "
                            "use --set display.backend=none",
                            c->req->profile->name, qbackend, c->caps->binary, c->caps->version);
  if (streq (backend, "dbus"))
    {
      _cleanup_free_ char *sock = NULL;
      if ((r = plan_service_socket (c, "display.backend", "dbus", &sock)) < 0)
        return r;
      _cleanup_free_ char *q = qv (sock);
      c->display = json_pack ("{s:s, s:s+}", "backend", "dbus", "address", "unix:path=", sock);
      return opt (c, "-display", "dbus,addr=unix:path=%s%s", q, gl ? ",gl=on" : "");
    }
  if (streq (backend, "vnc"))
    {
      _cleanup_free_ char *listen = NULL;
      if ((r = expand_q (c, pstr (c, "display.vnc.listen"), "display.vnc.listen", &listen)) < 0)
        return r;
      long long disp = pint (c, "display.vnc.display") + c->instance - 1;
      if ((r = opt (c, "-display", "none")) < 0)
        return r;
      /* A unix socket has no display number (QEMU would take ":N" as part
         of its name).  */
      if (strncmp (listen, "unix:", 5) == 0)
        {
          _cleanup_free_ char *raw = NULL;
          if ((r = plan_expand (c, pstr (c, "display.vnc.listen"), "display.vnc.listen", &raw)) < 0)
            return r;
          c->display = json_pack ("{s:s, s:s}", "backend", "vnc", "address", raw);
          return opt (c, "-vnc", "%s", listen);
        }
      /* Display N listens on TCP port 5900 + N.  */
      c->display = json_pack ("{s:s, s:s}", "backend", "vnc", "address", "");
      json_object_set_new (c->display, "address",
                           strchr (listen, ':') ? json_sprintf ("[%s]:%lld", listen, 5900 + disp)
                                                : json_sprintf ("%s:%lld", listen, 5900 + disp));
      return opt (c, "-vnc", "%s:%lld", listen, disp);
    }
  if (!streq (backend, "none"))
    c->display = json_pack ("{s:s, s:n}", "backend", backend, "address");
  if (streq (backend, "egl-headless"))
    return opt (c, "-display", "egl-headless");
  return opt (c, "-display", "%s%s", backend, gl ? ",gl=on" : "");
}

static int
emit_gpu (struct plan_ctx *c)
{
  const char *gpu = pstr (c, "display.gpu");
  json_t *outputs = avm_json_path (c->p, "display.outputs");
  char res[96] = "";
  int r;

  if (streq (gpu, "none"))
    return 0;
  if (json_array_size (outputs) > 0)
    {
      json_t *o = json_array_get (outputs, 0);
      size_t n = json_array_size (outputs);
      snprintf (res, sizeof res, ",xres=%lld,yres=%lld", (long long) json_integer_value (json_object_get (o, "xres")),
                (long long) json_integer_value (json_object_get (o, "yres")));
      if (n > 1)
        snprintf (res + strlen (res), sizeof res - strlen (res), ",max_outputs=%zu", n);
      if (n > 16)
        return avm_error_input (c->err, "%s: display.outputs: at most 16 outputs, got %zu", c->file, n);
    }
  if (streq (gpu, "virtio-gpu"))
    return device (c, "virtio-gpu-pci", "display.gpu", GPU_SLOT, "id=gpu0%s", res);
  if (streq (gpu, "virtio-gpu-gl"))
    {
      if (!pbool (c, "display.gl") && !streq (pstr (c, "display.backend"), "egl-headless"))
        return avm_error_input (c->err, "%s: display.gpu: virtio-gpu-gl needs display.gl=true", c->file);
      return device (c, "virtio-gpu-gl-pci", "display.gpu", GPU_SLOT, "id=gpu0%s", res);
    }
  /* QEMU before 8.0 refuses vhost-user-gpu without KVM ("vhost
     initialization failed: requires kvm").  */
  if (!c->any_caps && streq (c->accel, "tcg") && !avm_qemu_caps_at_least (c->caps, 8, 0))
    return avm_error_input (c->err,
                            "profile %s needs vhost-user-gpu-pci, which %s %s supports only with KVM (the accelerator "
                            "here is tcg; QEMU 8.0 lifted that); use --set display.gpu=virtio-gpu, KVM, or a newer QEMU",
                            c->req->profile->name, c->caps->binary, c->caps->version);
  _cleanup_free_ char *sock = NULL;
  if ((r = plan_service_socket (c, "display.gpu", pstr (c, "display.gpu_service"), &sock)) < 0)
    return r;
  _cleanup_free_ char *q = qv (sock);
  if ((r = need_device (c, "vhost-user-gpu-pci", "display.gpu")) < 0)
    return r;
  if ((r = opt (c, "-chardev", "socket,id=vgpu,path=%s", q)) < 0)
    return r;
  return device (c, "vhost-user-gpu-pci", "display.gpu", GPU_SLOT, "chardev=vgpu,id=gpu0%s", res);
}

/* chardev for a console port or the serial port.  */
static int
emit_chardev (struct plan_ctx *c, const char *id, const char *kind, const char *path_tmpl, const char *res_name,
              const char *where)
{
  _cleanup_free_ char *path = NULL;
  int r;
  if (streq (kind, "null"))
    return opt (c, "-chardev", "null,id=%s", id);
  if (res_name)
    {
      json_t *res = json_object_get (c->resources, res_name);
      path = qv (json_string_value (json_object_get (res, "path")));
    }
  else
    {
      if (!path_tmpl)
        return avm_error_input (c->err, "%s: %s.path: required for kind %s", c->file, where, kind);
      if ((r = expand_q (c, path_tmpl, where, &path)) < 0)
        return r;
    }
  if (streq (kind, "log") || streq (kind, "file"))
    return opt (c, "-chardev", "file,id=%s,path=%s,append=on", id, path);
  if (streq (kind, "pipe"))
    return opt (c, "-chardev", "pipe,id=%s,path=%s", id, path);
  return opt (c, "-chardev", "socket,id=%s,path=%s,server=on,wait=off", id, path);
}

static int
emit_serial (struct plan_ctx *c)
{
  const char *kind = pstr (c, "serial.kind");
  const char *port = pstr (c, "serial.port");
  int r;
  if (streq (kind, "none"))
    return 0;
  if (port)
    {
      json_t *res = json_object_get (c->resources, port);
      if (!streq (kind, "log") || !res || !json_object_get (res, "log"))
        return avm_error_input (c->err, "%s: serial.port: \"%s\" is not a console port of kind log (needs serial.kind log)",
                                c->file, port);
    }
  else if (streq (kind, "log") && !pstr (c, "serial.path"))
    {
      /* Its own FIFO, read by avm like a console.  */
      json_t *res = json_pack ("{s:s, s:s, s:b}", "type", "fifo", "console", "serial", "log", 1);
      _cleanup_free_ char *p = NULL;
      if (asprintf (&p, "%s/serial.fifo", c->run_dir) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
      json_object_set_new (res, "path", json_string (p));
      json_object_set_new (c->resources, "serial", res);
      port = "serial";
    }
  if ((r = emit_chardev (c, "serial0", kind, pstr (c, "serial.path"), port, "serial")) < 0)
    return r;
  return opt (c, "-serial", "chardev:serial0");
}

static int
emit_consoles (struct plan_ctx *c)
{
  json_t *ports = avm_json_path (c->p, "consoles.ports");
  bool multiport = streq (pstr (c, "consoles.transport"), "multiport");
  const char *watch = pstr (c, "boot.console");
  json_t *names = json_object ();
  size_t i;
  json_t *port;
  int r = 0;

  if (json_array_size (ports) > 31)
    {
      json_decref (names);
      return avm_error_input (c->err, "%s: consoles.ports: at most 31 ports, got %zu", c->file, json_array_size (ports));
    }
  if (multiport && json_array_size (ports) > 0)
    {
      int slot = 0;
      if ((r = alloc_slot (c, "consoles", &slot)) < 0
          || (r = device (c, "virtio-serial-pci-non-transitional", "consoles", slot, "max_ports=31,id=virtio-serial")) < 0)
        goto out;
    }
  json_array_foreach (ports, i, port)
    {
      const char *name = json_string_value (json_object_get (port, "name"));
      const char *kind = json_string_value (json_object_get (port, "kind"));
      char id[32], where[48];
      snprintf (id, sizeof id, "hvc%zu", i);
      snprintf (where, sizeof where, "consoles.ports[%zu]", i);
      if (json_object_get (names, name))
        {
          r = avm_error_input (c->err, "%s: %s.name: \"%s\" is used twice", c->file, where, name);
          goto out;
        }
      json_object_set_new (names, name, json_string (kind));
      bool has_res = streq (kind, "log") || streq (kind, "pipe");
      if ((r = emit_chardev (c, id, kind, json_string_value (json_object_get (port, "path")), has_res ? name : NULL,
                             where)) < 0)
        goto out;
      if (multiport)
        r = device (c, "virtconsole", where, -1, "bus=virtio-serial.0,chardev=%s,name=%s", id, name);
      else
        {
          int slot = 0;
          char bus[48];
          snprintf (bus, sizeof bus, "virtio-serial%zu", i);
          if ((r = alloc_slot (c, where, &slot)) < 0
              || (r = device (c, "virtio-serial-pci-non-transitional", where, slot, "max_ports=1,id=%s", bus)) < 0)
            goto out;
          r = device (c, "virtconsole", where, -1, "bus=%s.0,chardev=%s,name=%s", bus, id, name);
        }
      if (r < 0)
        goto out;
      if (!c->boot_console && !watch && streq (kind, "log"))
        c->boot_console = name;
    }
  if (watch)
    {
      json_t *k = json_object_get (names, watch);
      if (!k || !streq (json_string_value (k), "log"))
        r = avm_error_input (c->err, "%s: boot.console: \"%s\" is not a console port of kind log", c->file, watch);
    }
  if (!watch && !c->boot_console && json_array_size (avm_json_path (c->p, "boot.completed")) > 0)
    r = avm_error_input (c->err, "%s: boot.completed: boot patterns need a console port of kind log to watch", c->file);
out:
  json_decref (names);
  return r;
}

static int
emit_disks (struct plan_ctx *c)
{
  size_t i;
  json_t *d;
  json_t *names = json_object ();
  int r = 0;
  json_array_foreach (avm_json_path (c->p, "disks"), i, d)
    {
      char where[48];
      _cleanup_free_ char *path = NULL;
      const char *name = json_string_value (json_object_get (d, "name"));
      snprintf (where, sizeof where, "disks[%zu]", i);
      if (json_object_get (names, name))
        {
          r = avm_error_input (c->err, "%s: %s.name: \"%s\" is used twice", c->file, where, name);
          break;
        }
      json_object_set_new (names, name, json_true ());
      char wpath[64];
      snprintf (wpath, sizeof wpath, "%s.path", where);
      if ((r = expand_q (c, json_string_value (json_object_get (d, "path")), wpath, &path)) < 0)
        break;
      if ((r = opt (c, "-drive", "file=%s,if=none,id=drive-virtio-disk%zu,format=%s,aio=%s%s%s", path, i,
                    json_string_value (json_object_get (d, "format")), json_string_value (json_object_get (d, "aio")),
                    json_is_true (json_object_get (d, "snapshot")) ? ",snapshot=on" : "",
                    json_is_true (json_object_get (d, "readonly")) ? ",readonly=on" : "")) < 0)
        break;
      int slot = 0;
      if ((r = alloc_slot (c, where, &slot)) < 0)
        break;
      if ((r = device (c, "virtio-blk-pci-non-transitional", where, slot, "drive=drive-virtio-disk%zu,id=virtio-disk%zu%s",
                       i, i, i == 0 ? ",bootindex=1" : "")) < 0)
        break;
    }
  json_decref (names);
  return r;
}

static int
emit_vhost_user_device (struct plan_ctx *c, const char *type, const char *key, const char *service, const char *id,
                        const char *extra)
{
  _cleanup_free_ char *sock = NULL, *q = NULL;
  int slot = 0, r;
  if ((r = plan_service_socket (c, key, service, &sock)) < 0)
    return r;
  if ((r = need_device (c, type, key)) < 0)
    return r;
  q = qv (sock);
  if ((r = opt (c, "-chardev", "socket,id=%s-char,path=%s", id, q)) < 0)
    return r;
  if ((r = alloc_slot (c, key, &slot)) < 0)
    return r;
  return device (c, type, key, slot, "chardev=%s-char,id=%s%s%s", id, id, extra ? "," : "", extra ? extra : "");
}

/* An IPv4 address ("a.b.c.d"), or with CIDR a network ("a.b.c.d/n"):
   nothing that could add an option to a QEMU -netdev.  */
static bool
ipv4_ok (const char *s, bool cidr)
{
  unsigned a, b, d, e, n;
  char tail;
  if (cidr)
    return sscanf (s, "%u.%u.%u.%u/%u%c", &a, &b, &d, &e, &n, &tail) == 5 && a < 256 && b < 256 && d < 256
           && e < 256 && n >= 8 && n <= 30 && strspn (s, "0123456789./") == strlen (s);
  return sscanf (s, "%u.%u.%u.%u%c", &a, &b, &d, &e, &tail) == 4 && a < 256 && b < 256 && d < 256 && e < 256
         && strspn (s, "0123456789.") == strlen (s);
}

/* NIC number N (0: network, the mobile interface eth0; 1:
   network.ethernet, eth1), at KEY.  Cuttlefish's order (qemu_manager.cpp:
   the NICs are added in the order ethprime refers to) and MACs
   00:1a:11:e<N>:cf:<instance - 1> (common/libs/utils/network.cpp).  */
static int
emit_nic (struct plan_ctx *c, const char *key, int n)
{
  char path[64];
  int slot = 0, r;
#define K(name) (snprintf (path, sizeof path, "%s.%s", key, name), path)
  const char *mode = pstr (c, K ("mode"));
  if (!mode || streq (mode, "none"))
    return 0;
  unsigned m[6];
  const char *mac = pstr (c, K ("mac"));
  if (sscanf (mac, "%2x:%2x:%2x:%2x:%2x:%2x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6 || strlen (mac) != 17)
    return avm_error_input (c->err, "%s: %s: expected xx:xx:xx:xx:xx:xx, got \"%s\"", c->file, path, mac);
  if (m[0] & 1)
    return avm_error_input (c->err, "%s: %s: %s is a multicast address", c->file, path, mac);
  m[5] = (m[5] + c->instance - 1) & 0xff; /* distinct per instance */
  if (streq (mode, "user"))
    {
      struct avm_strbuf b = { 0 };
      static const char *const addrs[] = { "net", "host", "dns" };
      for (size_t i = 0; i < ARRAY_SIZE (addrs); i++)
        {
          const char *v = pstr (c, K (addrs[i]));
          if (!v)
            continue;
          if (!ipv4_ok (v, i == 0))
            {
              avm_strbuf_free (&b);
              return avm_error_input (c->err, "%s: %s: \"%s\" is not an IPv4 %s", c->file, path, v,
                                      i == 0 ? "network (a.b.c.d/N, N from 8 to 30)" : "address");
            }
          avm_strbuf_addf (&b, ",%s=%s", addrs[i], v);
        }
      size_t i;
      json_t *fw;
      json_array_foreach (n == 0 ? avm_json_path (c->p, "network.forwards") : NULL, i, fw)
        {
          const char *addr = json_string_value (json_object_get (fw, "host_addr"));
          long long hp = json_integer_value (json_object_get (fw, "host_port")) + c->instance - 1;
          long long gp = json_integer_value (json_object_get (fw, "guest_port"));
          if (!json_object_get (fw, "host_port") || !json_object_get (fw, "guest_port") || hp > 65535)
            {
              avm_strbuf_free (&b);
              return avm_error_input (c->err, "%s: network.forwards[%zu]: host_port and guest_port are required (1..65535)",
                                      c->file, i);
            }
          for (const char *p = addr; *p; p++)
            if (!strchr ("0123456789.abcdefABCDEF:", *p))
              {
                avm_strbuf_free (&b);
                return avm_error_input (c->err, "%s: network.forwards[%zu].host_addr: \"%s\" is not an IP address",
                                        c->file, i, addr);
              }
          avm_strbuf_addf (&b, ",hostfwd=%s:%s:%lld-:%lld", json_string_value (json_object_get (fw, "proto")), addr, hp,
                           gp);
        }
      _cleanup_free_ char *extra = avm_strbuf_steal (&b);
      if (!extra)
        return avm_error_sys (c->err, ENOMEM, "plan");
      r = opt (c, "-netdev", "user,id=hostnet%d%s", n, extra);
    }
  else
    {
      const char *tap = pstr (c, K ("tap"));
      for (const char *p = tap; *p; p++)
        if (!strchr ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *p) || p - tap >= 15)
          return avm_error_input (c->err, "%s: %s: \"%s\" is not an interface name", c->file, K ("tap"), tap);
      r = opt (c, "-netdev", "tap,id=hostnet%d,ifname=%s,script=no,downscript=no%s", n, tap,
               pbool (c, K ("vhost")) ? ",vhost=on" : "");
    }
#undef K
  if (r < 0 || (r = alloc_slot (c, key, &slot)) < 0)
    return r;
  json_array_append_new (c->macs, json_sprintf ("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]));
  return device (c, "virtio-net-pci-non-transitional", key, slot,
                 "netdev=hostnet%d,id=net%d,mac=%02x:%02x:%02x:%02x:%02x:%02x", n, n, m[0], m[1], m[2], m[3], m[4],
                 m[5]);
}

static int
emit_devices (struct plan_ctx *c)
{
  int slot = 0, r;

  if (pbool (c, "rng"))
    {
      if ((r = opt (c, "-object", "rng-random,id=objrng0,filename=/dev/urandom")) < 0 || (r = alloc_slot (c, "rng", &slot)) < 0
          || (r = device (c, "virtio-rng-pci-non-transitional", "rng", slot, "rng=objrng0,id=rng0,max-bytes=1024,period=2000")) < 0)
        return r;
    }
  const char *touch = pstr (c, "input.touch");
  if (!streq (touch, "none"))
    {
      const char *type = streq (touch, "mouse")    ? "virtio-mouse-pci"
                         : streq (touch, "tablet") ? "virtio-tablet-pci"
                                                   : "virtio-multitouch-pci";
      if ((r = alloc_slot (c, "input.touch", &slot)) < 0 || (r = device (c, type, "input.touch", slot, "disable-legacy=on")) < 0)
        return r;
    }
  if (pbool (c, "input.keyboard"))
    {
      if ((r = alloc_slot (c, "input.keyboard", &slot)) < 0
          || (r = device (c, "virtio-keyboard-pci", "input.keyboard", slot, "disable-legacy=on")) < 0)
        return r;
    }
  if (pbool (c, "balloon"))
    {
      if ((r = alloc_slot (c, "balloon", &slot)) < 0
          || (r = device (c, "virtio-balloon-pci-non-transitional", "balloon", slot, "id=balloon0")) < 0)
        return r;
    }
  if (pbool (c, "input.rotary"))
    {
      if ((r = alloc_slot (c, "input.rotary", &slot)) < 0
          || (r = device (c, "virtio-rotary-pci", "input.rotary", slot, "disable-legacy=on")) < 0)
        return r;
    }
  size_t i;
  json_t *vi;
  json_array_foreach (avm_json_path (c->p, "input.vhost_user"), i, vi)
    {
      char key[48], id[80];
      snprintf (key, sizeof key, "input.vhost_user[%zu]", i);
      snprintf (id, sizeof id, "input-%s", json_string_value (json_object_get (vi, "name")));
      if ((r = emit_vhost_user_device (c, "vhost-user-input-pci", key, json_string_value (json_object_get (vi, "service")),
                                       id, NULL)) < 0)
        return r;
    }

  /* Network.  */
  json_t *fwd = avm_json_path (c->p, "network.forwards");
  if (!streq (pstr (c, "network.mode"), "user") && json_array_size (fwd) > 0)
    return avm_error_input (c->err, "%s: network.forwards: port forwards need network.mode user", c->file);
  if ((r = emit_nic (c, "network", 0)) < 0 || (r = emit_nic (c, "network.ethernet", 1)) < 0)
    return r;

  /* vsock.  */
  const char *vs = pstr (c, "vsock.mode");
  if (streq (vs, "kernel"))
    {
      if ((r = alloc_slot (c, "vsock", &slot)) < 0
          || (r = device (c, "vhost-vsock-pci-non-transitional", "vsock", slot, "guest-cid=%lld,id=vsock0", c->cid)) < 0)
        return r;
    }
  else if (streq (vs, "vhost-user"))
    {
      if ((r = emit_vhost_user_device (c, "vhost-user-vsock-pci", "vsock", pstr (c, "vsock.service"), "vsock0", NULL)) < 0)
        return r;
    }

  /* Audio.  */
  const char *model = pstr (c, "audio.model");
  if (streq (model, "vhost-user-snd"))
    {
      if ((r = emit_vhost_user_device (c, "vhost-user-snd-pci", "audio.model", pstr (c, "audio.service"), "snd0", NULL)) < 0)
        return r;
    }
  else if (!streq (model, "none"))
    {
      const char *backend = pstr (c, "audio.backend");
      if (!c->any_caps && !avm_qemu_caps_has_audiodev (c->caps, backend))
        return avm_error_input (c->err, "%s: audio.backend: %s %s has no audio driver %s; use --set audio.backend=none",
                                c->file, c->caps->binary, c->caps->version, backend);
      if ((r = opt (c, "-audiodev", "%s,id=audio0", backend)) < 0 || (r = alloc_slot (c, "audio", &slot)) < 0)
        return r;
      if (streq (model, "ac97"))
        r = device (c, "AC97", "audio.model", slot, "audiodev=audio0");
      else if (streq (model, "virtio-sound"))
        r = device (c, "virtio-sound-pci", "audio.model", slot, "audiodev=audio0");
      else if ((r = device (c, "ich9-intel-hda", "audio.model", slot, "id=hda0")) >= 0)
        r = device (c, "hda-duplex", "audio.model", -1, "bus=hda0.0,audiodev=audio0");
      if (r < 0)
        return r;
    }

  /* Video, after the sound card as in start-avm.  */
  if (streq (pstr (c, "video.model"), "vhost-user-video")
      && (r = emit_vhost_user_device (c, "vhost-user-video-pci", "video.model", pstr (c, "video.service"), "video0", NULL))
             < 0)
    return r;

  if (pbool (c, "xhci"))
    {
      if ((r = alloc_slot (c, "xhci", &slot)) < 0 || (r = device (c, "qemu-xhci", "xhci", slot, "id=xhci")) < 0)
        return r;
    }

  json_t *sh;
  json_array_foreach (avm_json_path (c->p, "shares"), i, sh)
    {
      char key[48], id[32];
      _cleanup_free_ char *extra = NULL;
      const char *tag = json_string_value (json_object_get (sh, "tag"));
      const char *service = json_string_value (json_object_get (sh, "service"));
      snprintf (key, sizeof key, "shares[%zu]", i);
      if (plan_service_skipped (c, service))
        {
          /* A share is as optional as the service serving it: the guest
             starts without the mount.  */
          if ((r = plan_warn (c, "share %s left out: its service %s is skipped", tag, service)) < 0)
            return r;
          continue;
        }
      snprintf (id, sizeof id, "fs%zu", i);
      if (asprintf (&extra, "tag=%s", tag) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
      if ((r = emit_vhost_user_device (c, "vhost-user-fs-pci", key, service, id, extra)) < 0)
        return r;
    }
  return 0;
}

/* x86 firmware in flash (launch_cvd from Android 15: qemu_manager.cpp,
   assemble_cvd's InitializePflash): the bootloader read-only as unit 0,
   and a writable unit 1 (U-Boot's environment) that pads the pair to
   4 MiB, created by avm at start (plan "generated_disks", kind flash) and
   kept from run to run.  QEMU maps both below 4 GiB, unit 0 at the top
   (the reset vector), and wants each a whole number of 4 KiB sectors.  */
static int
emit_pflash (struct plan_ctx *c, const char *bios)
{
  _cleanup_free_ char *code = NULL, *vars = NULL, *qcode = NULL, *qvars = NULL;
  int r;
  if (!streq (c->arch, "x86_64"))
    return avm_error_input (c->err,
                            "%s: firmware.pflash: x86 machines only (%s boots its firmware with -bios, as launch_cvd "
                            "does); set it to false",
                            c->file, c->arch);
  if ((r = plan_expand (c, bios, "firmware.bios", &code)) < 0
      || (r = plan_expand (c, "${state_dir}/pflash.img", "firmware.pflash", &vars)) < 0)
    return r;
  struct stat st;
  if (stat (code, &st) == 0 && S_ISREG (st.st_mode) && (st.st_size % 4096 != 0 || st.st_size >= AVM_PFLASH_SIZE))
    return avm_error_input (c->err,
                            "%s: firmware.bios %s is %lld bytes: in flash (firmware.pflash) it must be a whole number "
                            "of 4 KiB sectors and smaller than 4 MiB",
                            c->file, code, (long long) st.st_size);
  if (!(qcode = qv (code)) || !(qvars = qv (vars)))
    return avm_error_sys (c->err, ENOMEM, "plan");
  json_t *g = json_pack ("{s:s, s:s, s:s, s:s, s:I}", "name", "pflash", "kind", "flash", "path", vars, "code", code,
                         "pad_to", (json_int_t) AVM_PFLASH_SIZE);
  if (!g || json_array_append_new (c->generated, g) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  if ((r = opt (c, "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=%s", qcode)) < 0)
    return r;
  return opt (c, "-drive", "if=pflash,format=raw,unit=1,file=%s", qvars);
}

static int
emit_firmware (struct plan_ctx *c)
{
  const char *bios = pstr (c, "firmware.bios"), *kernel = pstr (c, "firmware.kernel");
  const char *initrd = pstr (c, "firmware.initrd"), *cmdline = pstr (c, "firmware.cmdline");
  int r;
  if (bios && kernel)
    return avm_error_input (c->err, "%s: firmware: bios and kernel exclude each other", c->file);
  if ((initrd || cmdline) && !kernel)
    return avm_error_input (c->err, "%s: firmware: initrd and cmdline need firmware.kernel", c->file);
  if (bios && pbool (c, "firmware.pflash"))
    return emit_pflash (c, bios);
  if (pbool (c, "firmware.pflash"))
    return avm_error_input (c->err, "%s: firmware.pflash: there is no firmware.bios to put in flash", c->file);
  if (bios)
    {
      _cleanup_free_ char *p = NULL;
      if ((r = plan_expand (c, bios, "firmware.bios", &p)) < 0)
        return r;
      return opt (c, "-bios", "%s", p);
    }
  if (!kernel)
    return 0;
  _cleanup_free_ char *k = NULL, *i = NULL, *a = NULL;
  if ((r = plan_expand (c, kernel, "firmware.kernel", &k)) < 0 || (r = opt (c, "-kernel", "%s", k)) < 0)
    return r;
  if (initrd && ((r = plan_expand (c, initrd, "firmware.initrd", &i)) < 0 || (r = opt (c, "-initrd", "%s", i)) < 0))
    return r;
  if (cmdline && ((r = plan_expand (c, cmdline, "firmware.cmdline", &a)) < 0 || (r = opt (c, "-append", "%s", a)) < 0))
    return r;
  return 0;
}

/* A share that is not left out (its service skipped).  */
static bool
any_share (struct plan_ctx *c)
{
  size_t i;
  json_t *sh;
  json_array_foreach (avm_json_path (c->p, "shares"), i, sh)
    if (!plan_service_skipped (c, json_string_value (json_object_get (sh, "service"))))
      return true;
  return false;
}

static bool
needs_shared_memory (struct plan_ctx *c)
{
  return streq (pstr (c, "display.gpu"), "vhost-user-gpu") || streq (pstr (c, "vsock.mode"), "vhost-user")
         || streq (pstr (c, "audio.model"), "vhost-user-snd") || streq (pstr (c, "video.model"), "vhost-user-video")
         || any_share (c)
         || json_array_size (avm_json_path (c->p, "input.vhost_user")) > 0;
}

int
plan_qemu_argv (struct plan_ctx *c)
{
  int r;
  c->next_slot = FIRST_CONSOLE_SLOT;
  c->shared_memory = needs_shared_memory (c);
  if ((r = new_line (c)) < 0 || (r = avm_argv_push (&c->argv, c->qemu_binary)) < 0)
    return avm_error_sys (c->err, ENOMEM, "building the QEMU command line");
  if ((r = emit_machine (c)) < 0 || (r = emit_display (c)) < 0 || (r = emit_gpu (c)) < 0 || (r = emit_serial (c)) < 0
      || (r = emit_consoles (c)) < 0 || (r = emit_disks (c)) < 0 || (r = emit_devices (c)) < 0
      || (r = emit_firmware (c)) < 0)
    return r;

  size_t i;
  json_t *a;
  json_array_foreach (avm_json_path (c->p, "extra_qemu_args"), i, a)
    {
      const char *s = json_string_value (a);
      if (s[0] == '-' || i == 0)
        r = new_line (c);
      if (r < 0 || avm_argv_push (&c->argv, s) < 0)
        return avm_error_sys (c->err, ENOMEM, "building the QEMU command line");
    }
  return 0;
}
