/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QMP message parsing: a client without a socket (avm_qmp_new with fd -1)
 * is fed the input as if QEMU had sent it, in pieces cut after every
 * newline (a greeting, then replies and events).  Whenever the client is
 * ready and fewer than four requests wait, one more is sent, so that
 * replies find pending requests (ids 2, 3, ...) as with a real QEMU.
 */
#include "fuzz.h"
#include "qemu/qmp.h"
#include "util/cleanup.h"

#include <string.h>

struct state
{
  int pending;
  unsigned replies, events;
};

static void
on_reply (void *data, json_t *ret, json_t *error)
{
  struct state *st = data;
  st->pending--;
  st->replies++;
  AVM_FUZZ_CHECK (!(ret && error));
  if (error)
    AVM_FUZZ_CHECK (json_is_string (json_object_get (error, "class"))
                    && json_is_string (json_object_get (error, "desc")));
}

static void
on_event (void *data, const char *event, json_t *data_obj, json_t *timestamp)
{
  struct state *st = data;
  st->events++;
  AVM_FUZZ_CHECK (event);
  AVM_FUZZ_CHECK (!data_obj || json_is_object (data_obj));
  AVM_FUZZ_CHECK (!timestamp || json_is_object (timestamp));
}

AVM_FUZZ_TARGET (qmp)
{
  _cleanup_error_ avm_error_t err = NULL;
  struct state st = { 0 };
  struct avm_qmp *q = NULL;
  int r = avm_qmp_new (-1, "fuzz", &q, &err);
  AVM_FUZZ_CHECK (r == 0);
  /* Events before the handler is set are queued; set it half-way.  */
  bool handler = false;

  size_t off = 0;
  while (off < size)
    {
      const uint8_t *nl = memchr (data + off, '\n', size - off);
      size_t len = nl ? (size_t) (nl - (data + off)) + 1 : size - off;
      r = avm_qmp_feed (q, data + off, len, &err);
      off += len;
      if (r != 0)
        {
          avm_fuzz_check_err (r, &err);
          break;
        }
      if (!handler && off * 2 >= size)
        {
          avm_qmp_set_event_handler (q, on_event, &st);
          handler = true;
        }
      if (avm_qmp_is_ready (q) && st.pending < 4)
        {
          r = avm_qmp_send_async (q, st.pending % 2 ? "query-status" : "cont", NULL, on_reply, &st, &err);
          avm_fuzz_check_err (r, &err);
          if (r == 0)
            st.pending++;
        }
    }
  if (avm_qmp_is_ready (q))
    {
      int major, minor, micro;
      AVM_FUZZ_CHECK (avm_qmp_greeting (q));
      AVM_FUZZ_CHECK (avm_qmp_qemu_version (q));
      avm_qmp_qemu_version_numbers (q, &major, &minor, &micro);
      (void) avm_qmp_qemu_package (q);
    }
  avm_qmp_close (q);
  /* Every request got its callback, exactly once.  */
  AVM_FUZZ_CHECK (st.pending == 0);
  return 0;
}
