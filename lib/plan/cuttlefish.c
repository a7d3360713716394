/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cuttlefish.config: the Cuttlefish host tools' per-instance configuration
 * and the directories they write to, as resources of the plan (a "file"
 * and "directory" resources the supervisor creates before any helper
 * starts), and the variables ${cf_config} and ${cf_instance_dir} for the
 * profile's services.  What the file holds: cuttlefish/config.h.
 */
#include "plan/internal.h"
#include "cuttlefish/config.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <string.h>

int
plan_cuttlefish_vars (struct plan_ctx *c)
{
  int r;
  if (!pbool (c, "cuttlefish.config"))
    return 0;
  if ((r = plan_expand (c, pstr (c, "cuttlefish.root"), "cuttlefish.root", &c->cf_root)) < 0)
    return r;
  if (c->cf_root[0] != '/')
    return avm_error_input (c->err, "%s: cuttlefish.root: \"%s\" is not an absolute path (the host tools need one)",
                            c->file, c->cf_root);
  c->cf_instance_dir = avm_cf_instance_dir (c->cf_root, c->instance);
  c->cf_config = avm_path_join (c->cf_root, "cuttlefish_config.json");
  if (!c->cf_instance_dir || !c->cf_config)
    return avm_error_sys (c->err, ENOMEM, "cuttlefish.root");
  c->vars[c->scope.n++] = (struct avm_var) { "cf_config", c->cf_config };
  c->vars[c->scope.n++] = (struct avm_var) { "cf_instance_dir", c->cf_instance_dir };
  return 0;
}

/* The address of tap interface NAME and its prefix, when it has one
   (config_server and modem_simulator derive the guest's from it the same
   way: host/commands/assemble_cvd/network_flags.cpp).  */
static bool
tap_address (const char *name, char ip[16], char gw[16], int *prefix)
{
  struct ifaddrs *ifa = NULL;
  bool found = false;
  if (getifaddrs (&ifa) < 0)
    return false;
  for (struct ifaddrs *i = ifa; i && !found; i = i->ifa_next)
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && i->ifa_netmask && streq (i->ifa_name, name))
      {
        uint32_t a = ntohl (((struct sockaddr_in *) i->ifa_addr)->sin_addr.s_addr);
        uint32_t m = ntohl (((struct sockaddr_in *) i->ifa_netmask)->sin_addr.s_addr);
        struct in_addr x = { htonl (a) }, g = { htonl ((a & m) + 2 == a ? (a & m) + 1 : a + 1) };
        /* The host holds the gateway, the guest the next address.  */
        inet_ntop (AF_INET, &x, gw, 16);
        inet_ntop (AF_INET, &g, ip, 16);
        *prefix = __builtin_popcount (m);
        found = true;
      }
  freeifaddrs (ifa);
  return found;
}

static int
add_dir (struct plan_ctx *c, const char *name, const char *path)
{
  struct avm_plan_resource res;
  if (plan_resource_init (&res, name, AVM_RES_DIRECTORY, path) < 0)
    return avm_error_sys (c->err, ENOMEM, "cuttlefish");
  return plan_set_resource (c, &res);
}

int
plan_cuttlefish_config (struct plan_ctx *c)
{
  char ip[16], gw[16], dns[16];
  int prefix = 24, r;
  if (!c->cf_config)
    return 0;
  const char *mode = pstr (c, "network.mode");
  bool tap = streq (mode, "tap");
  if (!tap || !tap_address (pstr (c, "network.tap"), ip, gw, &prefix))
    if (avm_cf_ril_from_slirp (streq (mode, "user") ? pstr (c, "network.net") : NULL,
                               streq (mode, "user") ? pstr (c, "network.host") : NULL,
                               streq (mode, "user") ? pstr (c, "network.dns") : NULL, ip, gw, dns, &prefix)
        < 0)
      return avm_error_input (c->err, "%s: network.net: \"%s\" is not an IPv4 network", c->file,
                              pstr (c, "network.net"));
  if (tap)
    snprintf (dns, sizeof dns, "8.8.8.8"); /* assemble_cvd's default ril_dns */

  json_t *outs = avm_json_path (c->p, "display.outputs");
  size_t n = json_array_size (outs);
  _cleanup_free_ struct avm_cf_display *d = calloc (n + 1, sizeof *d);
  if (!d)
    return avm_error_sys (c->err, ENOMEM, "cuttlefish");
  for (size_t i = 0; i < n; i++)
    {
      json_t *o = json_array_get (outs, i);
      d[i] = (struct avm_cf_display) { (int) json_integer_value (json_object_get (o, "xres")),
                                       (int) json_integer_value (json_object_get (o, "yres")),
                                       (int) json_integer_value (json_object_get (o, "dpi")) };
    }
  _cleanup_free_ char *uds = avm_path_join (c->run_dir, "cuttlefish"), *text = NULL;
  struct avm_cf_config cfg = {
    .root_dir = c->cf_root,
    .uds_dir = uds,
    .instance = c->instance,
    .ril_ip = ip,
    .ril_gateway = gw,
    .ril_dns = dns,
    .ril_prefix = prefix,
    .mobile_tap = tap ? pstr (c, "network.tap") : NULL,
    .displays = d,
    .ndisplays = n,
  };
  if (!uds)
    return avm_error_sys (c->err, ENOMEM, "cuttlefish");
  if ((r = avm_cf_config_text (&cfg, &text, c->err)) < 0)
    return r;
  static const char *const subdirs[][2] = {
    { "cuttlefish_logs", "logs" },             /* launcher.log, kernel.log, logcat */
    { "cuttlefish_internal", "internal" },     /* the helpers' own FIFOs and sockets */
    { "cuttlefish_tombstones", "tombstones" }, /* tombstone_receiver -tombstone_dir */
  };
  if ((r = add_dir (c, "cuttlefish_instance", c->cf_instance_dir)) < 0)
    return r;
  for (size_t i = 0; i < ARRAY_SIZE (subdirs); i++)
    {
      _cleanup_free_ char *p = avm_path_join (c->cf_instance_dir, subdirs[i][1]);
      if (!p)
        return avm_error_sys (c->err, ENOMEM, "cuttlefish");
      if ((r = add_dir (c, subdirs[i][0], p)) < 0)
        return r;
    }
  struct avm_plan_resource file;
  if (plan_resource_init (&file, "cuttlefish_config", AVM_RES_FILE, c->cf_config) < 0)
    return avm_error_sys (c->err, ENOMEM, "cuttlefish");
  file.content = steal_pointer (&text);
  return plan_set_resource (c, &file);
}
