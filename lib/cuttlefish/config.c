/* SPDX-License-Identifier: Apache-2.0 */
#include "cuttlefish/config.h"
#include "util/cleanup.h"
#include "util/json.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

char *
avm_cf_instance_dir (const char *root, int instance)
{
  char *out = NULL;
  return asprintf (&out, "%s/instances/cvd-%d", root, instance) < 0 ? NULL : out;
}

int
avm_cf_ril_from_slirp (const char *net, const char *host, const char *dns, char ip[16], char gateway[16],
                       char dnsbuf[16], int *prefix)
{
  char base[16] = "10.0.2.0";
  int n = 24;
  if (net)
    {
      const char *slash = strchr (net, '/');
      if (!slash || (size_t) (slash - net) >= sizeof base)
        return -EINVAL;
      memcpy (base, net, slash - net);
      base[slash - net] = '\0';
      n = atoi (slash + 1);
    }
  struct in_addr a;
  if (inet_pton (AF_INET, base, &a) != 1 || n < 8 || n > 30)
    return -EINVAL;
  uint32_t h = ntohl (a.s_addr) & (0xffffffffu << (32 - n));
  struct in_addr x;
  x.s_addr = htonl (h + 15);
  inet_ntop (AF_INET, &x, ip, 16);
  x.s_addr = htonl (h + 2);
  inet_ntop (AF_INET, &x, gateway, 16);
  x.s_addr = htonl (h + 3);
  inet_ntop (AF_INET, &x, dnsbuf, 16);
  if (host)
    snprintf (gateway, 16, "%s", host);
  if (dns)
    snprintf (dnsbuf, 16, "%s", dns);
  *prefix = n;
  return 0;
}

int
avm_cf_config_text (const struct avm_cf_config *in, char **out, avm_error_t *err)
{
  char id[16];
  snprintf (id, sizeof id, "%d", in->instance);
  _cleanup_json_ json_t *inst
      = json_pack ("{s:b, s:i, s:s, s:i, s:s, s:s, s:s, s:s}", "run_as_daemon", 0, "modem_simulator_host_id",
                   1000 + in->instance, "ril_ipaddr", in->ril_ip, "ril_prefixlen", in->ril_prefix, "ril_gateway",
                   in->ril_gateway, "ril_dns", in->ril_dns, "mobile_tap_name", in->mobile_tap ? in->mobile_tap : "",
                   "mobile_bridge_name", "");
  json_t *displays = json_array ();
  if (!inst || !displays)
    {
      json_decref (displays);
      return avm_error_sys (err, ENOMEM, "Cuttlefish configuration");
    }
  for (size_t i = 0; i < in->ndisplays; i++)
    json_array_append_new (displays,
                           json_pack ("{s:i, s:i, s:i, s:i}", "x_res", in->displays[i].xres, "y_res",
                                      in->displays[i].yres, "dpi", in->displays[i].dpi, "refresh_rate_hz", 60));
  json_object_set_new (inst, "display_configs", displays);
  _cleanup_json_ json_t *root = json_pack ("{s:s, s:s, s:{s:O}}", "root_dir", in->root_dir, "instances_uds_dir",
                                           in->uds_dir, "instances", id, inst);
  if (!root || !(*out = json_dumps (root, JSON_INDENT (2) | JSON_PRESERVE_ORDER)))
    return avm_error_sys (err, ENOMEM, "Cuttlefish configuration");
  return 0;
}
