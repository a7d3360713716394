/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The QEMU command line (qemu_argv.c): the devices after the disks, in a
 * fixed order (rng, input, network, vsock, audio, video, USB, shares), and
 * the vhost-user devices whose backends are the profile's services.
 */
#include "plan/internal.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/strfmt.h"
#include "util/strbuf.h"

#include <stdio.h>
#include <string.h>

static int
emit_vhost_user_device (struct plan_ctx *c, const char *type, const char *key, const char *service, const char *id,
                        const char *extra)
{
  _cleanup_free_ char *sock = NULL, *q = NULL;
  int slot = 0, r;
  if ((r = plan_service_socket (c, key, service, &sock)) < 0)
    return r;
  if ((r = plan_need_device (c, type, key)) < 0)
    return r;
  q = plan_qv (sock);
  if ((r = plan_opt (c, "-chardev", "socket,id=%s-char,path=%s", id, q)) < 0)
    return r;
  if ((r = plan_alloc_slot (c, key, &slot)) < 0)
    return r;
  return plan_device (c, type, key, slot, "chardev=%s-char,id=%s%s%s", id, id, extra ? "," : "", extra ? extra : "");
}

/* An IPv4 address ("a.b.c.d"), or with CIDR a network ("a.b.c.d/n"):
   nothing that could add an option to a QEMU -netdev.  */
static bool
ipv4_ok (const char *s, bool cidr)
{
  unsigned a, b, d, e, n;
  char tail;
  if (cidr)
    return sscanf (s, "%u.%u.%u.%u/%u%c", &a, &b, &d, &e, &n, &tail) == 5 && a < 256 && b < 256 && d < 256 && e < 256
           && n >= 8 && n <= 30 && strspn (s, "0123456789./") == strlen (s);
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
              return avm_error_input (c->err,
                                      "%s: network.forwards[%zu]: host_port and guest_port are required (1..65535)",
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
      r = plan_opt (c, "-netdev", "user,id=hostnet%d%s", n, extra);
    }
  else
    {
      const char *tap = pstr (c, K ("tap"));
      for (const char *p = tap; *p; p++)
        if (!strchr ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *p) || p - tap >= 15)
          return avm_error_input (c->err, "%s: %s: \"%s\" is not an interface name", c->file, K ("tap"), tap);
      r = plan_opt (c, "-netdev", "tap,id=hostnet%d,ifname=%s,script=no,downscript=no%s", n, tap,
                    pbool (c, K ("vhost")) ? ",vhost=on" : "");
    }
#undef K
  if (r < 0 || (r = plan_alloc_slot (c, key, &slot)) < 0)
    return r;
  if (avm_argv_push_take (&c->macs, avm_strdupf ("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]))
      < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  return plan_device (c, "virtio-net-pci-non-transitional", key, slot,
                      "netdev=hostnet%d,id=net%d,mac=%02x:%02x:%02x:%02x:%02x:%02x", n, n, m[0], m[1], m[2], m[3], m[4],
                      m[5]);
}

/* Share I (SH): a vhost-user-fs device, unless its service is skipped.  */
static int
emit_share (struct plan_ctx *c, size_t i, json_t *sh)
{
  char key[48], id[32];
  _cleanup_free_ char *extra = NULL;
  const char *tag = json_string_value (json_object_get (sh, "tag"));
  const char *service = json_string_value (json_object_get (sh, "service"));
  snprintf (key, sizeof key, "shares[%zu]", i);
  /* A share is as optional as the service serving it: the guest starts
     without the mount.  */
  if (plan_service_skipped (c, service))
    return plan_warn (c, "share %s left out: its service %s is skipped", tag, service);
  snprintf (id, sizeof id, "fs%zu", i);
  if (asprintf (&extra, "tag=%s", tag) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  return emit_vhost_user_device (c, "vhost-user-fs-pci", key, service, id, extra);
}

int
plan_emit_devices (struct plan_ctx *c)
{
  int slot = 0, r;

  if (pbool (c, "rng"))
    {
      if ((r = plan_opt (c, "-object", "rng-random,id=objrng0,filename=/dev/urandom")) < 0
          || (r = plan_alloc_slot (c, "rng", &slot)) < 0
          || (r = plan_device (c, "virtio-rng-pci-non-transitional", "rng", slot,
                               "rng=objrng0,id=rng0,max-bytes=1024,period=2000"))
                 < 0)
        return r;
    }
  const char *touch = pstr (c, "input.touch");
  if (!streq (touch, "none"))
    {
      const char *type = streq (touch, "mouse")    ? "virtio-mouse-pci"
                         : streq (touch, "tablet") ? "virtio-tablet-pci"
                                                   : "virtio-multitouch-pci";
      if ((r = plan_alloc_slot (c, "input.touch", &slot)) < 0
          || (r = plan_device (c, type, "input.touch", slot, "disable-legacy=on")) < 0)
        return r;
    }
  if (pbool (c, "input.keyboard"))
    {
      if ((r = plan_alloc_slot (c, "input.keyboard", &slot)) < 0
          || (r = plan_device (c, "virtio-keyboard-pci", "input.keyboard", slot, "disable-legacy=on")) < 0)
        return r;
    }
  if (pbool (c, "balloon"))
    {
      if ((r = plan_alloc_slot (c, "balloon", &slot)) < 0
          || (r = plan_device (c, "virtio-balloon-pci-non-transitional", "balloon", slot, "id=balloon0")) < 0)
        return r;
    }
  if (pbool (c, "input.rotary"))
    {
      if ((r = plan_alloc_slot (c, "input.rotary", &slot)) < 0
          || (r = plan_device (c, "virtio-rotary-pci", "input.rotary", slot, "disable-legacy=on")) < 0)
        return r;
    }
  size_t i;
  json_t *vi;
  json_array_foreach (avm_json_path (c->p, "input.vhost_user"), i, vi)
    {
      char key[48], id[80];
      snprintf (key, sizeof key, "input.vhost_user[%zu]", i);
      snprintf (id, sizeof id, "input-%s", json_string_value (json_object_get (vi, "name")));
      if ((r = emit_vhost_user_device (c, "vhost-user-input-pci", key,
                                       json_string_value (json_object_get (vi, "service")), id, NULL))
          < 0)
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
      if ((r = plan_alloc_slot (c, "vsock", &slot)) < 0
          || (r
              = plan_device (c, "vhost-vsock-pci-non-transitional", "vsock", slot, "guest-cid=%lld,id=vsock0", c->cid))
                 < 0)
        return r;
    }
  else if (streq (vs, "vhost-user"))
    {
      if ((r = emit_vhost_user_device (c, "vhost-user-vsock-pci", "vsock", pstr (c, "vsock.service"), "vsock0", NULL))
          < 0)
        return r;
    }

  /* Audio.  */
  const char *model = pstr (c, "audio.model");
  if (streq (model, "vhost-user-snd"))
    {
      if ((r = emit_vhost_user_device (c, "vhost-user-snd-pci", "audio.model", pstr (c, "audio.service"), "snd0", NULL))
          < 0)
        return r;
    }
  else if (!streq (model, "none"))
    {
      const char *backend = pstr (c, "audio.backend");
      if (!c->any_caps && !avm_qemu_caps_has_audiodev (c->caps, backend))
        return avm_error_input (c->err, "%s: audio.backend: %s %s has no audio driver %s; use --set audio.backend=none",
                                c->file, c->caps->binary, c->caps->version, backend);
      if ((r = plan_opt (c, "-audiodev", "%s,id=audio0", backend)) < 0 || (r = plan_alloc_slot (c, "audio", &slot)) < 0)
        return r;
      if (streq (model, "ac97"))
        r = plan_device (c, "AC97", "audio.model", slot, "audiodev=audio0");
      else if (streq (model, "virtio-sound"))
        r = plan_device (c, "virtio-sound-pci", "audio.model", slot, "audiodev=audio0");
      else if ((r = plan_device (c, "ich9-intel-hda", "audio.model", slot, "id=hda0")) >= 0)
        r = plan_device (c, "hda-duplex", "audio.model", -1, "bus=hda0.0,audiodev=audio0");
      if (r < 0)
        return r;
    }

  /* Video, after the sound card as in start-avm.  */
  if (streq (pstr (c, "video.model"), "vhost-user-video")
      && (r = emit_vhost_user_device (c, "vhost-user-video-pci", "video.model", pstr (c, "video.service"), "video0",
                                      NULL))
             < 0)
    return r;

  if (pbool (c, "xhci"))
    {
      if ((r = plan_alloc_slot (c, "xhci", &slot)) < 0
          || (r = plan_device (c, "qemu-xhci", "xhci", slot, "id=xhci")) < 0)
        return r;
    }

  json_t *sh;
  json_array_foreach (avm_json_path (c->p, "shares"), i, sh)
    if ((r = emit_share (c, i, sh)) < 0)
      return r;
  return 0;
}
