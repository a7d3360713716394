/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The QEMU command line (qemu_argv.c): the display, the GPU (PCI slot 2),
 * the serial port and the console ports with their chardevs.
 */
#include "plan/internal.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/strfmt.h"

#include <stdio.h>
#include <string.h>

#define GPU_SLOT 2

int
plan_emit_display (struct plan_ctx *c)
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
      _cleanup_free_ char *q = plan_qv (sock);
      if (!(c->display_backend = strdup ("dbus")) || !(c->display_address = avm_strdupf ("unix:path=%s", sock)))
        return avm_error_sys (c->err, ENOMEM, "plan");
      return plan_opt (c, "-display", "dbus,addr=unix:path=%s%s", q, gl ? ",gl=on" : "");
    }
  if (streq (backend, "vnc"))
    {
      _cleanup_free_ char *listen = NULL;
      if ((r = plan_expand_q (c, pstr (c, "display.vnc.listen"), "display.vnc.listen", &listen)) < 0)
        return r;
      long long disp = pint (c, "display.vnc.display") + c->instance - 1;
      if ((r = plan_opt (c, "-display", "none")) < 0)
        return r;
      /* A unix socket has no display number (QEMU would take ":N" as part
         of its name).  */
      if (strncmp (listen, "unix:", 5) == 0)
        {
          _cleanup_free_ char *raw = NULL;
          if ((r = plan_expand (c, pstr (c, "display.vnc.listen"), "display.vnc.listen", &raw)) < 0)
            return r;
          if (!(c->display_backend = strdup ("vnc")))
            return avm_error_sys (c->err, ENOMEM, "plan");
          c->display_address = steal_pointer (&raw);
          return plan_opt (c, "-vnc", "%s", listen);
        }
      /* Display N listens on TCP port 5900 + N.  */
      if (!(c->display_backend = strdup ("vnc"))
          || !(c->display_address = avm_strdupf (strchr (listen, ':') ? "[%s]:%lld" : "%s:%lld", listen, 5900 + disp)))
        return avm_error_sys (c->err, ENOMEM, "plan");
      return plan_opt (c, "-vnc", "%s:%lld", listen, disp);
    }
  if (!streq (backend, "none") && !(c->display_backend = strdup (backend)))
    return avm_error_sys (c->err, ENOMEM, "plan");
  if (streq (backend, "egl-headless"))
    return plan_opt (c, "-display", "egl-headless");
  return plan_opt (c, "-display", "%s%s", backend, gl ? ",gl=on" : "");
}

int
plan_emit_gpu (struct plan_ctx *c)
{
  const char *gpu = pstr (c, "display.gpu");
  json_t *outputs = avm_json_path (c->p, "display.outputs");
  char res[96] = "";
  int r;

  if (streq (gpu, "none"))
    return 0;
  c->gpu_outputs = json_array_size (outputs) ? (unsigned) json_array_size (outputs) : 1;
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
    return plan_device (c, "virtio-gpu-pci", "display.gpu", GPU_SLOT, "id=" AVM_PLAN_GPU_ID "%s", res);
  if (streq (gpu, "virtio-gpu-gl"))
    {
      if (!pbool (c, "display.gl") && !streq (pstr (c, "display.backend"), "egl-headless"))
        return avm_error_input (c->err, "%s: display.gpu: virtio-gpu-gl needs display.gl=true", c->file);
      return plan_device (c, "virtio-gpu-gl-pci", "display.gpu", GPU_SLOT, "id=" AVM_PLAN_GPU_ID "%s", res);
    }
  /* QEMU before 8.0 refuses vhost-user-gpu without KVM ("vhost
     initialization failed: requires kvm").  */
  if (!c->any_caps && streq (c->accel, "tcg") && !avm_qemu_caps_at_least (c->caps, 8, 0))
    return avm_error_input (c->err,
                            "profile %s needs vhost-user-gpu-pci, which %s %s supports only with KVM (the accelerator "
                            "here is tcg; QEMU 8.0 lifted that); use --set display.gpu=virtio-gpu, KVM, or a newer "
                            "QEMU",
                            c->req->profile->name, c->caps->binary, c->caps->version);
  _cleanup_free_ char *sock = NULL;
  if ((r = plan_service_socket (c, "display.gpu", pstr (c, "display.gpu_service"), &sock)) < 0)
    return r;
  _cleanup_free_ char *q = plan_qv (sock);
  if ((r = plan_need_device (c, "vhost-user-gpu-pci", "display.gpu")) < 0)
    return r;
  if ((r = plan_opt (c, "-chardev", "socket,id=vgpu,path=%s", q)) < 0)
    return r;
  return plan_device (c, "vhost-user-gpu-pci", "display.gpu", GPU_SLOT, "chardev=vgpu,id=" AVM_PLAN_GPU_ID "%s", res);
}

/* chardev for a console port or the serial port.  */
static int
emit_chardev (struct plan_ctx *c, const char *id, const char *kind, const char *path_tmpl, const char *res_name,
              const char *where)
{
  _cleanup_free_ char *path = NULL;
  int r;
  if (streq (kind, "null"))
    return plan_opt (c, "-chardev", "null,id=%s", id);
  if (res_name)
    {
      const struct avm_plan_resource *res = plan_resource (c, res_name);
      if (!res || !res->path || !(path = plan_qv (res->path)))
        return avm_error_sys (c->err, ENOMEM, "plan");
    }
  else
    {
      if (!path_tmpl)
        return avm_error_input (c->err, "%s: %s.path: required for kind %s", c->file, where, kind);
      if ((r = plan_expand_q (c, path_tmpl, where, &path)) < 0)
        return r;
    }
  if (streq (kind, "log") || streq (kind, "file"))
    return plan_opt (c, "-chardev", "file,id=%s,path=%s,append=on", id, path);
  if (streq (kind, "pipe"))
    return plan_opt (c, "-chardev", "pipe,id=%s,path=%s", id, path);
  return plan_opt (c, "-chardev", "socket,id=%s,path=%s,server=on,wait=off", id, path);
}

int
plan_emit_serial (struct plan_ctx *c)
{
  const char *kind = pstr (c, "serial.kind");
  const char *port = pstr (c, "serial.port");
  int r;
  if (streq (kind, "none"))
    return 0;
  if (port)
    {
      const struct avm_plan_resource *res = plan_resource (c, port);
      if (!streq (kind, "log") || !res || !res->log)
        return avm_error_input (c->err,
                                "%s: serial.port: \"%s\" is not a console port of kind log (needs serial.kind log)",
                                c->file, port);
    }
  else if (streq (kind, "log") && !pstr (c, "serial.path"))
    {
      /* Its own FIFO, read by avm like a console.  */
      struct avm_plan_resource res;
      _cleanup_free_ char *p = NULL;
      if (asprintf (&p, "%s/serial.fifo", c->run_dir) < 0 || plan_resource_init (&res, "serial", AVM_RES_FIFO, p) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
      res.log = true;
      if (!(res.console = strdup ("serial")))
        {
          avm_plan_resource_clear (&res);
          return avm_error_sys (c->err, ENOMEM, "plan");
        }
      if ((r = plan_set_resource (c, &res)) < 0)
        return r;
      port = "serial";
    }
  if ((r = emit_chardev (c, "serial0", kind, pstr (c, "serial.path"), port, "serial")) < 0)
    return r;
  return plan_opt (c, "-serial", "chardev:serial0");
}

/* The QEMU guest agent's port: a virtserialport (qemu-ga opens
   /dev/virtio-ports/NAME, which a console port has not) on a socket QEMU
   listens on, where avm talks to the agent (supervise/snapshot_clock.c).
   PER_PORT: the port's index, for a virtio-serial device of its own.  */
static int
emit_agent (struct plan_ctx *c, json_t *port, const char *id, const char *where, const size_t *per_port)
{
  const char *name = json_string_value (json_object_get (port, "name"));
  const char *tmpl = json_string_value (json_object_get (port, "path")) ?: "${run_dir}/agent.sock";
  _cleanup_free_ char *key = NULL, *path = NULL, *q = NULL;
  char bus[48] = "virtio-serial";
  int r;
  if (c->agent_socket)
    return avm_error_input (c->err, "%s: %s.kind: a second port of kind agent (one guest agent)", c->file, where);
  if (asprintf (&key, "%s.path", where) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  if ((r = plan_expand (c, tmpl, key, &path)) < 0)
    return r;
  if (!(q = plan_qv (path)))
    return avm_error_sys (c->err, ENOMEM, "plan");
  if ((r = plan_opt (c, "-chardev", "socket,id=%s,path=%s,server=on,wait=off", id, q)) < 0)
    return r;
  if (per_port)
    {
      int slot = 0;
      snprintf (bus, sizeof bus, "virtio-serial%zu", *per_port);
      if ((r = plan_alloc_slot (c, where, &slot)) < 0
          || (r = plan_device (c, "virtio-serial-pci-non-transitional", where, slot, "max_ports=1,id=%s", bus)) < 0)
        return r;
    }
  if ((r = plan_device (c, "virtserialport", where, -1, "bus=%s.0,chardev=%s,name=%s", bus, id, name)) < 0)
    return r;
  c->agent_socket = steal_pointer (&path);
  return 0;
}

int
plan_emit_consoles (struct plan_ctx *c)
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
      return avm_error_input (c->err, "%s: consoles.ports: at most 31 ports, got %zu", c->file,
                              json_array_size (ports));
    }
  if (multiport && json_array_size (ports) > 0)
    {
      int slot = 0;
      if ((r = plan_alloc_slot (c, "consoles", &slot)) < 0
          || (r = plan_device (c, "virtio-serial-pci-non-transitional", "consoles", slot,
                               "max_ports=31,id=virtio-serial"))
                 < 0)
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
      if (streq (kind, "agent"))
        {
          r = emit_agent (c, port, id, where, multiport ? NULL : &i);
          if (r < 0)
            goto out;
          continue;
        }
      bool has_res = streq (kind, "log") || streq (kind, "pipe");
      if ((r = emit_chardev (c, id, kind, json_string_value (json_object_get (port, "path")), has_res ? name : NULL,
                             where))
          < 0)
        goto out;
      if (multiport)
        r = plan_device (c, "virtconsole", where, -1, "bus=virtio-serial.0,chardev=%s,name=%s", id, name);
      else
        {
          int slot = 0;
          char bus[48];
          snprintf (bus, sizeof bus, "virtio-serial%zu", i);
          if ((r = plan_alloc_slot (c, where, &slot)) < 0
              || (r = plan_device (c, "virtio-serial-pci-non-transitional", where, slot, "max_ports=1,id=%s", bus)) < 0)
            goto out;
          r = plan_device (c, "virtconsole", where, -1, "bus=%s.0,chardev=%s,name=%s", bus, id, name);
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
