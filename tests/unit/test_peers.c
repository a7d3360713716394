/* SPDX-License-Identifier: Apache-2.0 */
/* A guest that would share a vsock CID or a MAC address with a running one
   is warned about (issue 15); lib/supervise/peers.c.  The comparison on
   its own here; against a running instance in test_start.c. */
#include "supervise/peers.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <string.h>

#define assert_contains(hay, needle) cr_assert (strstr ((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))

static json_t *
j (const char *text)
{
  json_error_t e;
  json_t *v = json_loads (text, 0, &e);
  cr_assert_not_null (v, "%s: %s", text, e.text);
  return v;
}

Test (peers, shared_cid_and_mac_are_warned)
{
  json_t *guest = j ("{\"cid\": 4, \"macs\": [\"00:1a:11:e0:cf:01\", \"00:1a:11:e1:cf:01\"]}");
  json_t *peer = j ("{\"ok\": true, \"instance\": 1, \"pid\": 42, \"profile\": \"aaos-x86_64\", \"cid\": 4,"
                    " \"macs\": [\"00:1A:11:E1:CF:01\"]}");
  json_t *w = json_array ();
  cr_assert_eq (avm_peers_compare (guest, 2, peer, w), 0);
  cr_assert_eq (json_array_size (w), 2, "%s", json_dumps (w, 0));
  assert_contains (json_string_value (json_array_get (w, 0)),
                   "vsock.guest_cid: instance 1 (profile aaos-x86_64, avm pid 42) already runs a guest with vsock "
                   "CID 4; the two guests would share it");
  assert_contains (json_string_value (json_array_get (w, 1)),
                   "network: instance 1 (profile aaos-x86_64, avm pid 42) already runs a guest with MAC address "
                   "00:1a:11:e1:cf:01");
  json_decref (w);
  json_decref (peer);
  json_decref (guest);
}

Test (peers, nothing_shared_nothing_said)
{
  json_t *guest = j ("{\"cid\": 4, \"macs\": [\"00:1a:11:e0:cf:01\"]}");
  json_t *w = json_array ();
  /* Other CID and MAC; no vsock (null) and no NIC; the instance itself.  */
  json_t *other = j ("{\"instance\": 1, \"cid\": 3, \"macs\": [\"00:1a:11:e0:cf:00\"]}");
  json_t *none = j ("{\"instance\": 3, \"cid\": null, \"macs\": []}");
  json_t *self = j ("{\"instance\": 2, \"cid\": 4, \"macs\": [\"00:1a:11:e0:cf:01\"]}");
  json_t *old = j ("{\"instance\": 4, \"state\": \"preparing\"}"); /* no keys: an older avm, or not up yet */
  cr_assert_eq (avm_peers_compare (guest, 2, other, w), 0);
  cr_assert_eq (avm_peers_compare (guest, 2, none, w), 0);
  cr_assert_eq (avm_peers_compare (guest, 2, self, w), 0);
  cr_assert_eq (avm_peers_compare (guest, 2, old, w), 0);
  cr_assert_eq (json_array_size (w), 0);
  json_decref (w);
  json_decref (other);
  json_decref (none);
  json_decref (self);
  json_decref (old);
  json_decref (guest);
}
