/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-instance Cuttlefish configuration the host tools read
 * ($CUTTLEFISH_CONFIG_FILE): launch_cvd's assemble_cvd writes a large one;
 * avm writes what the helpers it starts actually read, derived from each
 * helper's source (host/libs/config/cuttlefish_config{,_instance}.cpp and
 * the helpers' main files; the list with line references is in
 * man/avm-releases.7):
 *
 *   root_dir             every path: the instance directory is
 *                        ROOT/instances/cvd-N (logging.cpp: logs/launcher.log
 *                        must be creatable or every helper aborts)
 *   instances_uds_dir    secure_env's confui socket fallback (android15-qpr2+)
 *   instances.N.run_as_daemon          false: helpers log to stderr (avm's logs) too
 *   instances.N.modem_simulator_host_id  1000 + N: modem_simulator's control
 *                        socket, distinct per instance
 *   instances.N.ril_ipaddr, ril_prefixlen, ril_gateway, ril_dns
 *                        modem_simulator's answer to the guest's data call
 *                        (android15+; android14 asks config_server)
 *   instances.N.mobile_tap_name, mobile_bridge_name, display_configs
 *                        config_server (android14 only)
 *
 * N is the instance number, also given to every helper as
 * $CUTTLEFISH_INSTANCE (config_utils.cpp: without it every instance is 1).
 * A missing key reads as "", 0 or false in the helpers; a key of the wrong
 * JSON type aborts them, so the types here are exact.
 */
#pragma once

#include "util/error.h"

#include <stddef.h>

struct avm_cf_display
{
  int xres, yres, dpi;
};

struct avm_cf_config
{
  const char *root_dir; /* absolute */
  const char *uds_dir;  /* instances_uds_dir, absolute */
  int instance;
  const char *ril_ip, *ril_gateway, *ril_dns;
  int ril_prefix;
  const char *mobile_tap; /* network.tap in tap mode, else NULL */
  const struct avm_cf_display *displays;
  size_t ndisplays;
};

/* The JSON text (malloc'd).  */
int avm_cf_config_text (const struct avm_cf_config *in, char **out, avm_error_t *err);

/* ROOT/instances/cvd-N (malloc'd), the helpers' instance directory.  */
char *avm_cf_instance_dir (const char *root, int instance);

/* The RIL addresses of a QEMU user network NET ("a.b.c.d/n", NULL for
   QEMU's default 10.0.2.0/24) with its HOST and DNS (NULL: .2 and .3):
   the guest's address is QEMU's first DHCP address (.15).  Buffers of 16
   bytes.  */
int avm_cf_ril_from_slirp (const char *net, const char *host, const char *dns, char ip[16], char gateway[16],
                           char dnsbuf[16], int *prefix);
