/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control-socket protocol: every line of the input is a request line
 * handled by avm_control_handle_request, the function the server runs on
 * each line it frames, with a callback that knows "status" and "stop" and
 * echoes members of the request as a real one does.  The reply must always
 * be an object with a boolean "ok" that serializes.
 */
#include "fuzz.h"
#include "supervise/control.h"
#include "util/cleanup.h"
#include "util/json.h"

#include <string.h>

static json_t *
handler (void *data, const char *command, json_t *request, struct avm_control_request *req)
{
  if (!strcmp (command, "status"))
    return json_pack ("{s:b, s:O*}", "ok", 1, "echo", json_object_get (request, "verbose"));
  if (!strcmp (command, "stop"))
    return json_pack ("{s:b}", "ok", 1);
  if (!strcmp (command, "bad"))
    return json_string ("not an object");
  if (!strcmp (command, "later"))
    return AVM_CONTROL_PENDING; /* (REQ is NULL here: answered "internal error") */
  return NULL;
}

AVM_FUZZ_TARGET (control)
{
  size_t off = 0;
  while (off < size)
    {
      const uint8_t *nl = memchr (data + off, '\n', size - off);
      size_t len = nl ? (size_t) (nl - (data + off)) : size - off;
      const char *line = (const char *) data + off;
      off += len + (nl != NULL);
      if (len > 0 && line[len - 1] == '\r')
        len--;
      if (len == 0 || len > AVM_CONTROL_MAX_LINE)
        continue;
      _cleanup_json_ json_t *reply = avm_control_handle_request (handler, NULL, line, len);
      AVM_FUZZ_CHECK (json_is_object (reply));
      AVM_FUZZ_CHECK (json_is_boolean (json_object_get (reply, "ok")));
      if (json_is_false (json_object_get (reply, "ok")))
        AVM_FUZZ_CHECK (json_is_string (json_object_get (reply, "error")));
      _cleanup_free_ char *text = json_dumps (reply, JSON_COMPACT);
      AVM_FUZZ_CHECK (text);
    }
  return 0;
}
