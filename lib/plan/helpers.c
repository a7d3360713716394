/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The helpers' programs, once every service is expanded (services.c):
 * flags they do not accept, programs that are not installed, and the
 * services skipped for it.
 */
#include "plan/internal.h"
#include "cuttlefish/flags.h"
#include "util/cleanup.h"
#include "util/strbuf.h"

#include <stdio.h>
#include <string.h>

/* Services whose program parses its flags with gflags (services.*.flags):
   every flag of the plan's argv must be one the program defines, asked
   once per binary (cuttlefish/flags.h).  A flag it does not know would
   make it exit at once: the service counts as missing, named with the
   flags, before anything starts.  */
int
plan_check_flags (struct plan_ctx *c, struct plan_service *v, size_t n)
{
  json_t *defs = avm_json_path (c->p, "services");
  struct avm_cf_probe_env pe = { 0 };
  int r = 0;
  if (c->req->layout_only)
    return 0;
  for (size_t i = 0; i < n; i++)
    {
      struct plan_service *ps = &v[i];
      const char *name = ps->s.name, *program = ps->s.program;
      const char *kind = json_string_value (json_object_get (json_object_get (defs, name), "flags"));
      if (!program || !kind || !streq (kind, "gflags") || ps->s.missing)
        continue;
      _cleanup_strv_ char **flags = NULL;
      _cleanup_error_ avm_error_t perr = NULL;
      /* Asked only the first time (per binary), with a configuration of
         its own to read (made once for all the probes of this plan).  */
      if (!avm_cf_gflags_cached (program, &flags)
          && ((!pe.root && (r = avm_cf_probe_env_make (&pe, c->instance, c->err)) < 0)
              || avm_cf_gflags_probe (program, pe.envp, &flags, &perr) < 0))
        {
          if (r < 0)
            break;
          /* It could not even be run: it would not start either.  */
          if (asprintf (&ps->s.missing, "%s", perr && perr->msg ? perr->msg : "cannot be run") < 0)
            {
              ps->s.missing = NULL;
              r = avm_error_sys (c->err, ENOMEM, "plan");
              break;
            }
          continue;
        }
      if (!flags)
        {
          plan_warn (c, "service %s: %s does not list its flags as gflags does (--helpxml); they are not checked", name,
                     program);
          continue;
        }
      _cleanup_free_ char *unknown = avm_cf_gflags_unknown (flags, (const char **) ps->argv.v);
      if (!unknown)
        {
          r = avm_error_sys (c->err, ENOMEM, "plan");
          break;
        }
      if (!*unknown)
        continue;
      if (asprintf (&ps->s.missing, "%s does not accept %s", program, unknown) < 0)
        {
          ps->s.missing = NULL;
          r = avm_error_sys (c->err, ENOMEM, "plan");
          break;
        }
      c->flags_mismatch = true;
    }
  avm_cf_probe_env_clear (&pe);
  return r;
}

/* Helper programs that are not installed.  A critical service cannot do
   without its program: the start is refused, naming every program missing
   at once.  A service that is not critical is skipped with a warning (a
   feature the images may not ship, e.g. a helper of a later release), and
   so is every service started after it; `avm status` lists them.  In a dry
   run the refusal is a warning too.  */
int
plan_missing_programs (struct plan_ctx *c, struct plan_service *v, size_t *n)
{
  struct avm_strbuf crit = { 0 }, skipped = { 0 };
  bool changed = true;

  if (c->req->layout_only)
    return 0;
  /* Skipping is transitive through `after`.  */
  while (changed)
    {
      changed = false;
      for (size_t i = 0; i < *n; i++)
        {
          if (v[i].s.missing)
            continue;
          for (char **a = v[i].after; *a; a++)
            {
              struct plan_service *dep = plan_service_find (v, *n, *a);
              if (dep && dep->s.missing)
                {
                  if (asprintf (&v[i].s.missing, "needs %s", *a) < 0)
                    {
                      v[i].s.missing = NULL;
                      return avm_error_sys (c->err, ENOMEM, "plan");
                    }
                  changed = true;
                  break;
                }
            }
        }
    }
  for (size_t i = 0; i < *n; i++)
    {
      const char *why = v[i].s.missing, *name = v[i].s.name;
      if (!why)
        continue;
      /* "name", "name (program P)" or "name (needs S)".  */
      struct avm_strbuf *b = v[i].s.critical ? &crit : &skipped;
      const char *prog = v[i].s.missing_program;
      avm_strbuf_addf (b, "%s%s", b->len ? ", " : "", name);
      if (!prog)
        avm_strbuf_addf (b, " (%s)", why);
      else if (!streq (prog, name))
        avm_strbuf_addf (b, " (program %s)", prog);
    }
  _cleanup_free_ char *critmsg = avm_strbuf_steal (&crit), *skipmsg = avm_strbuf_steal (&skipped);
  if (!critmsg || !skipmsg)
    return avm_error_sys (c->err, ENOMEM, "plan");
  if (*critmsg)
    {
      const char *dirs = c->helper_dirs ? c->helper_dirs : "";
      _cleanup_free_ char *searched = NULL;
      if (c->helper_dirs && asprintf (&searched, " (searched %s%s$PATH)", dirs, *dirs ? " and " : "") < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
      const char *fix = c->flags_mismatch && !c->helper_dirs
                            ? "the helpers are of another release than the profile's choice: use the host package of "
                              "these images, or pass --option release=... to match it"
                        : c->flags_mismatch
                            ? "install the Cuttlefish host package of these images in the images directory (bin/), or "
                              "set paths.helpers"
                            : "install the Cuttlefish host package in the images directory (bin/) or set paths.helpers";
      const char *fmt = "%s: critical services cannot start: %s%s%s%s; %s";
      const char *also = *skipmsg ? "; and, not critical: " : "";
      if (!c->req->dry_run)
        return avm_error_fail (c->err, ENOENT, fmt, c->file, critmsg, also, skipmsg, searched ? searched : "", fix);
      plan_warn (c, fmt, c->file, critmsg, also, skipmsg, searched ? searched : "", fix);
    }
  /* Move the skipped ones out of the start order.  */
  size_t kept = 0;
  for (size_t i = 0; i < *n; i++)
    {
      struct plan_service *ps = &v[i];
      if (!ps->s.missing || ps->s.critical)
        {
          v[kept++] = *ps;
          continue;
        }
      plan_warn (c, "service %s skipped: %s", ps->s.name, ps->s.missing);
      struct avm_plan_skipped *sk = realloc (c->skipped, (c->nskipped + 1) * sizeof *sk);
      if (!sk)
        {
          for (size_t k = i; k < *n; k++)
            v[kept++] = v[k];
          *n = kept;
          return avm_error_sys (c->err, ENOMEM, "plan");
        }
      c->skipped = sk;
      struct avm_plan_skipped *e = &sk[c->nskipped++];
      e->name = steal_pointer (&ps->s.name);
      e->reason = steal_pointer (&ps->s.missing);
      e->description = steal_pointer (&ps->s.description);
      plan_service_clear (ps);
    }
  *n = kept;
  return 0;
}
