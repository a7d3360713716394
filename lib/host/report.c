/* SPDX-License-Identifier: Apache-2.0 */
/* The host report: items in the order the checks added them, printed as an
   aligned table or turned into JSON.  */
#include "host/hostcheck.h"
#include "util/cleanup.h"
#include "util/escape.h"
#include "util/strfmt.h"

#include <stdarg.h>
#include <string.h>

const char *
avm_check_status_name (enum avm_check_status s)
{
  switch (s)
    {
    case AVM_CHECK_OK:
      return "ok";
    case AVM_CHECK_INFO:
      return "info";
    case AVM_CHECK_WARN:
      return "warn";
    case AVM_CHECK_FAIL:
      return "fail";
    }
  return "unknown";
}

/* The label of the table: FAIL in capitals so that it stands out.  */
static const char *
status_label (enum avm_check_status s)
{
  return s == AVM_CHECK_FAIL ? "FAIL" : avm_check_status_name (s);
}

int
avm_host_report_add (struct avm_host_report *r, enum avm_check_status status, const char *name, const char *detail,
                     const char *hint)
{
  _cleanup_free_ char *n = strdup (name ? name : "");
  _cleanup_free_ char *d = strdup (detail ? detail : "");
  _cleanup_free_ char *h = hint ? strdup (hint) : NULL;
  struct avm_check_item *items;

  if (!n || !d || (hint && !h))
    {
      r->lost = true;
      return -ENOMEM;
    }
  items = realloc (r->items, (r->n + 1) * sizeof *items);
  if (!items)
    {
      r->lost = true;
      return -ENOMEM;
    }
  r->items = items;
  items[r->n++] = (struct avm_check_item) { .name = n, .detail = d, .hint = h, .status = status };
  n = d = h = NULL; /* owned by the report now */
  return 0;
}

int
avm_host_report_addf (struct avm_host_report *r, enum avm_check_status status, const char *name, const char *hint,
                      const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  _cleanup_free_ char *detail = avm_vstrdupf (fmt, ap);
  va_end (ap);
  if (!detail)
    {
      r->lost = true;
      return -ENOMEM;
    }
  return avm_host_report_add (r, status, name, detail, hint);
}

void
avm_host_report_lose (struct avm_host_report *r)
{
  r->lost = true;
}

bool
avm_host_report_ok (const struct avm_host_report *r)
{
  if (r->lost)
    return false;
  for (size_t i = 0; i < r->n; i++)
    if (r->items[i].status == AVM_CHECK_FAIL)
      return false;
  return true;
}

/* Print TEXT; every line after the first is indented by INDENT columns.  */
static void
print_lines (FILE *out, const char *text, int indent)
{
  for (;;)
    {
      const char *nl = strchr (text, '\n');
      if (!nl)
        {
          avm_fprintf_escaped (out, "%s\n", text);
          return;
        }
      avm_fput_escaped (out, text, nl - text);
      fprintf (out, "\n%*s", indent, "");
      text = nl + 1;
    }
}

void
avm_host_report_print (const struct avm_host_report *r, FILE *out)
{
  int sw = 0, nw = 0;

  for (size_t i = 0; i < r->n; i++)
    {
      int l = strlen (status_label (r->items[i].status));
      int m = strlen (r->items[i].name);
      sw = l > sw ? l : sw;
      nw = m > nw ? m : nw;
    }
  for (size_t i = 0; i < r->n; i++)
    {
      const struct avm_check_item *it = &r->items[i];
      const char *detail = it->detail ? it->detail : "";

      if (*detail)
        {
          avm_fprintf_escaped (out, "%-*s  %-*s  ", sw, status_label (it->status), nw, it->name);
          print_lines (out, detail, sw + nw + 4);
        }
      else
        avm_fprintf_escaped (out, "%-*s  %s\n", sw, status_label (it->status), it->name);
      if (it->hint && *it->hint)
        {
          fprintf (out, "%*s  hint: ", sw, "");
          print_lines (out, it->hint, sw + 8);
        }
    }
  if (r->lost)
    fprintf (out, "%-*s  report incomplete: out of memory while recording a check\n", sw,
             status_label (AVM_CHECK_FAIL));
}

json_t *
avm_host_report_to_json (const struct avm_host_report *r)
{
  json_t *root = json_object (), *checks = json_array ();

  if (!root || !checks)
    goto oom;
  for (size_t i = 0; i < r->n; i++)
    {
      const struct avm_check_item *it = &r->items[i];
      json_t *o = json_pack ("{s:s, s:s, s:s, s:s?}", "name", it->name, "status", avm_check_status_name (it->status),
                             "detail", it->detail ? it->detail : "", "hint", it->hint);
      /* "s?" packs a NULL hint as null.  */
      if (!o || json_array_append_new (checks, o) < 0)
        goto oom;
    }
  if (json_object_set_new (root, "ok", json_boolean (avm_host_report_ok (r))) < 0
      || (r->lost && json_object_set_new (root, "incomplete", json_true ()) < 0))
    goto oom;
  /* json_object_set_new consumes CHECKS even when it fails.  */
  if (json_object_set_new (root, "checks", steal_pointer (&checks)) < 0)
    goto oom;
  return root;

oom:
  json_decref (checks);
  json_decref (root);
  return NULL;
}

void
avm_host_report_clear (struct avm_host_report *r)
{
  for (size_t i = 0; i < r->n; i++)
    {
      free (r->items[i].name);
      free (r->items[i].detail);
      free (r->items[i].hint);
    }
  free (r->items);
  r->items = NULL;
  r->n = 0;
  r->lost = false;
}
