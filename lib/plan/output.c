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
  avm_fprintf_escaped (out, "# avm %s dry run: profile %s, instance %d\n", AVM_VERSION, plan->profile, plan->instance);
  avm_fprintf_escaped (out, "# QEMU %s (%s capabilities), accelerator %s\n", plan->caps->version,
                       avm_plan_caps_source_name (plan->caps->source), plan->accel);
  const char *name;
  json_t *d;
  json_object_foreach (plan->detected, name, d)
    {
      /* "# release android16 (android-info.txt: output_audio_streams_count=6)"  */
      const char *choice = json_string_value (json_object_get (plan->options, name));
      const char *source = json_string_value (json_object_get (d, "source"));
      const char *evidence = json_string_value (json_object_get (d, "evidence"));
      const char *warning = json_string_value (json_object_get (d, "warning"));
      avm_fprintf_escaped (out, "# %s %s (%s%s: %s)\n", name, choice ? choice : "?",
                           source && streq (source, "default") ? "the profile's " : "", source ? source : "?",
                           evidence ? evidence : "");
      if (warning)
        avm_fprintf_escaped (out, "# WARNING: %s\n", warning);
    }
  if (plan->nservices > 1)
    {
      avm_fprintf_escaped (out, "# started first, in this order:");
      for (size_t i = 0; i + 1 < plan->nservices; i++)
        avm_fprintf_escaped (out, "%s %s", i ? "," : "", plan->services[i].name);
      fputc ('\n', out);
    }
  if (plan->nskipped)
    {
      avm_fprintf_escaped (out, "# skipped:");
      for (size_t i = 0; i < plan->nskipped; i++)
        avm_fprintf_escaped (out, "%s %s (%s)", i ? ";" : "", plan->skipped[i].name, plan->skipped[i].reason);
      fputc ('\n', out);
    }
  for (size_t i = 0; plan->unapproved && plan->unapproved[i]; i++)
    avm_fprintf_escaped (out, "# WARNING: UNAPPROVED (--allow-unapproved): %s\n", plan->unapproved[i]);

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
