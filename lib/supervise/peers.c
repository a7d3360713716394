/* SPDX-License-Identifier: Apache-2.0 */
#include "supervise/peers.h"
#include "plan/plan.h"
#include "supervise/control_client.h"
#include "supervise/rundir.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strv.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define PEER_TIMEOUT_MS 1000

static int
warn (json_t *warnings, json_t *w)
{
  return w && json_array_append_new (warnings, w) == 0 ? 0 : -ENOMEM;
}

int
avm_peers_compare (json_t *guest, int instance, json_t *peer, json_t *warnings)
{
  /* The peer's `avm status` answer and the plan's guest, as far as they
     are there: a field that is absent or of another type is no match.  */
  json_int_t other = 0, pid = 0;
  const char *profile = NULL;
  json_t *cid = NULL, *pcid = NULL, *macs = NULL, *pmacs = NULL;
  json_unpack (peer, "{s?I, s?I, s?s, s?o, s?o}", "instance", &other, "pid", &pid, "profile", &profile, "cid", &pcid,
               "macs", &pmacs);
  json_unpack (guest, "{s?o, s?o}", "cid", &cid, "macs", &macs);
  int r;
  if (other == instance)
    return 0;
  if (json_is_integer (cid) && json_is_integer (pcid) && json_integer_value (cid) == json_integer_value (pcid)
      && (r = warn (warnings, json_sprintf ("vsock.guest_cid: instance %d (profile %s, avm pid %d) already runs a "
                                            "guest with vsock CID %lld; the two guests would share it: use another "
                                            "--instance or --set vsock.guest_cid=N",
                                            (int) other, profile ? profile : "?", (int) pid,
                                            (long long) json_integer_value (cid))))
             < 0)
    return r;
  size_t i, k;
  json_t *m, *pm;
  json_array_foreach (macs, i, m)
    json_array_foreach (pmacs, k, pm)
      if (json_is_string (m) && json_is_string (pm) && strcasecmp (json_string_value (m), json_string_value (pm)) == 0
          && (r = warn (warnings,
                        json_sprintf ("network: instance %d (profile %s, avm pid %d) already runs a guest with MAC "
                                      "address %s; the two guests would share it: use another --instance or --set "
                                      "network.mac=xx:xx:xx:xx:xx:xx",
                                      (int) other, profile ? profile : "?", (int) pid, json_string_value (m))))
                 < 0)
        return r;
  return 0;
}

/* The status of instance N, or NULL when it does not run or does not
   answer.  */
static json_t *
peer_status (int n)
{
  _cleanup_free_ char *dir = avm_instance_run_dir (n);
  _cleanup_free_ char *sock = dir ? avm_path_join (dir, AVM_CONTROL_SOCKET) : NULL;
  _cleanup_error_ avm_error_t err = NULL;
  struct stat st;
  pid_t pid;
  json_t *st_json = NULL;
  if (!sock || stat (dir, &st) < 0 || avm_rundir_holder (dir, &pid, &err) != 1)
    return NULL;
  _cleanup_json_ json_t *req = json_pack ("{s:s}", "command", "status");
  if (!req || avm_control_call (sock, req, &st_json, PEER_TIMEOUT_MS, &err) < 0)
    return NULL;
  int ok = 0;
  if (json_unpack (st_json, "{s:b}", "ok", &ok) < 0 || !ok)
    {
      json_decref (st_json);
      return NULL;
    }
  return st_json;
}

int
avm_peers_check (const struct avm_plan *plan, json_t *warnings)
{
  if (plan->cid < 0 && avm_strv_length (plan->macs) == 0)
    return 0; /* nothing to share */
  _cleanup_json_ json_t *guest = avm_plan_guest_json (plan);
  if (!guest)
    return -ENOMEM;
  for (int n = 1; n <= 64; n++)
    {
      if (n == plan->instance)
        continue;
      _cleanup_json_ json_t *peer = peer_status (n);
      int r;
      if (peer && (r = avm_peers_compare (guest, plan->instance, peer, warnings)) < 0)
        return r;
    }
  return 0;
}
