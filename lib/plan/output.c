/* SPDX-License-Identifier: Apache-2.0 */
#include "plan/plan.h"
#include "util/cleanup.h"
#include "util/escape.h"
#include "util/quote.h"
#include "util/strv.h"

#include <string.h>

/* The header's names, reasons and warnings are shown escaped (util/escape.h);
   the arguments are quoted (util/quote.h).  */
int
avm_plan_print_cmdline (const struct avm_plan *plan, FILE *out)
{
  json_t *j = plan->json;
  json_t *q = json_object_get (j, "qemu");
  avm_fprintf_escaped (out, "# avm %s dry run: profile %s, instance %lld\n", AVM_VERSION,
           json_string_value (json_object_get (j, "profile")), json_integer_value (json_object_get (j, "instance")));
  avm_fprintf_escaped (out, "# QEMU %s (%s capabilities), accelerator %s\n", json_string_value (json_object_get (q, "version")),
           json_string_value (json_object_get (q, "capabilities")), json_string_value (json_object_get (q, "accel")));
  const char *name;
  json_t *d;
  json_object_foreach (json_object_get (j, "detected"), name, d)
    {
      /* "# release android16 (android-info.txt: output_audio_streams_count=6)"  */
      const char *choice = json_string_value (json_object_get (json_object_get (j, "options"), name));
      const char *source = json_string_value (json_object_get (d, "source"));
      const char *evidence = json_string_value (json_object_get (d, "evidence"));
      const char *warning = json_string_value (json_object_get (d, "warning"));
      avm_fprintf_escaped (out, "# %s %s (%s%s: %s)\n", name, choice ? choice : "?",
               source && streq (source, "default") ? "the profile's " : "", source ? source : "?",
               evidence ? evidence : "");
      if (warning)
        avm_fprintf_escaped (out, "# WARNING: %s\n", warning);
    }
  json_t *svcs = json_object_get (j, "services");
  if (json_array_size (svcs))
    {
      size_t i;
      json_t *s;
      avm_fprintf_escaped (out, "# started first, in this order:");
      json_array_foreach (svcs, i, s)
        avm_fprintf_escaped (out, "%s %s", i ? "," : "", json_string_value (json_object_get (s, "name")));
      fputc ('\n', out);
    }
  json_t *sk = json_object_get (j, "skipped_services");
  if (json_array_size (sk))
    {
      size_t i;
      json_t *s;
      avm_fprintf_escaped (out, "# skipped:");
      json_array_foreach (sk, i, s)
        avm_fprintf_escaped (out, "%s %s (%s)", i ? ";" : "", json_string_value (json_object_get (s, "name")),
                 json_string_value (json_object_get (s, "reason")));
      fputc ('\n', out);
    }
  size_t i;
  json_t *w;
  json_array_foreach (json_object_get (j, "unapproved"), i, w)
    avm_fprintf_escaped (out, "# WARNING: UNAPPROVED (--allow-unapproved): %s\n", json_string_value (w));

  for (size_t l = 0; l < plan->n_lines; l++)
    {
      size_t start = plan->qemu_lines[l];
      size_t end = l + 1 < plan->n_lines ? plan->qemu_lines[l + 1] : avm_strv_length (plan->qemu_argv);
      fputs (l ? "  " : "", out);
      for (size_t i = start; i < end; i++)
        {
          _cleanup_free_ char *qs = avm_shell_quote (plan->qemu_argv[i]);
          fprintf (out, "%s%s", i > start ? " " : "", qs ? qs : "''");
        }
      fputs (l + 1 < plan->n_lines ? " \\\n" : "\n", out);
    }
  return ferror (out) ? -EIO : 0;
}
