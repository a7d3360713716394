/* SPDX-License-Identifier: Apache-2.0 */
/* avm start: resolve a profile into a plan; --dry-run prints it, otherwise
   lib/supervise runs it. */
#include "avm.h"
#include "snapshot/snapshot.h"
#include "supervise/peers.h"
#include "supervise/prefetch.h"
#include "supervise/supervisor.h"
#include "util/cleanup.h"
#include "util/escape.h"
#include "util/json.h"

#include <string.h>

void
avm_help_start (FILE *out)
{
  fputs ("Usage: avm start [OPTIONS]\n"
         "\n"
         "Start the virtual platform described by a device profile: helper services,\n"
         "then QEMU with the approved command line.\n"
         "\n"
         "  -p, --profile NAME|FILE   device profile (default: $AVM_PROFILE or aaos-<host arch>)\n"
         "  -O, --option NAME=CHOICE  select a profile option (variant); repeatable\n"
         "      --set PATH=VALUE      override a profile key, e.g. --set machine.accel=tcg; repeatable\n"
         "  -i, --instance N          instance number 1..64 (runtime directory, guest CID, ports)\n"
         "      --images DIR          directory with the disk images (${images})\n"
         "      --caps FILE           check against recorded QEMU capabilities instead of the binary\n"
         "      --allow-unapproved    accept extra_qemu_args and helpers outside the approved\n"
         "                            catalog (flagged UNAPPROVED in every output)\n"
         "  -n, --dry-run             print the QEMU command line and exit; nothing is started\n"
         "      --json                with --dry-run: print the whole plan as JSON\n"
         "      --stop-after-boot     power the guest down once it has booted and exit 0\n"
         "      --restore NAME        start from snapshot NAME of the instance (avm snapshot save)\n"
         "                            instead of booting; refused when it does not fit the plan\n"
         "      --restore-or-boot NAME  the same, but boot cold when the snapshot is missing or\n"
         "                            does not fit (says why)\n"
         "      --log-target TARGET   auto (default: files, and the journal when stderr is the journal),\n"
         "                            file, or journal (files and the journal)\n"
         "  -v, --verbose             also echo console and helper output to stderr\n"
         "  -q, --quiet               no progress messages (errors only)\n"
         "  -h, --help                show this help\n"
         "\n"
         "Exit status: 0 clean stop, 1 runtime failure, 2 bad usage or bad profile, 3 boot failed,\n"
         "4 boot timeout, 5 QEMU exited or failed, 6 a critical helper failed, 7 killed at once.\n"
         "See avm-start(1) and avm-profile(5).\n",
         out);
}

static void
prefetch_joinp (bool *started)
{
  if (*started)
    avm_systemd_prefetch_join ();
}

/* Everything after option parsing, shared with the start-avm personality.  */
int
avm_start_run (struct avm_profile_opts *o, const struct avm_start_run *sr)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_profile_ struct avm_profile *profile = NULL;
  _cleanup_plan_ struct avm_plan *plan = NULL;
  int r;

  /* The supervisor's library loads while we plan; joined on the way out
     when planning fails.  */
  __attribute__ ((cleanup (prefetch_joinp))) bool prefetched = !sr->dry_run;
  if (prefetched)
    avm_systemd_prefetch ();
  r = avm_profile_opts_load (o, &profile, &err);
  if (r < 0)
    return avm_error_report (&err);
  struct avm_plan_request req = {
    .profile = profile,
    .instance = o->instance,
    .images = o->images,
    .caps_file = o->caps_file,
    .allow_unapproved = o->allow_unapproved,
    .dry_run = sr->dry_run,
  };
  /* --restore: the snapshot's layers go into the plan, which must then
     fit the snapshot.  */
  _cleanup_json_ json_t *meta = NULL;
  _cleanup_free_ char *snapdir = NULL, *state = NULL;
  _cleanup_free_ struct avm_plan_layer *layers = NULL;
  _cleanup_strv_ char **layer_paths = NULL;
  struct avm_plan_restore rs = { 0 };
  if (sr->restore)
    {
      if (!(state = avm_instance_state_dir (o->instance)) || !(snapdir = avm_snapshot_dir (state, sr->restore)))
        {
          avm_error_sys (&err, ENOMEM, "start");
          return avm_error_report (&err);
        }
      r = avm_snapshot_load (state, sr->restore, &meta, &err);
      if (r == 0)
        r = avm_snapshot_restore_request (meta, snapdir, &rs, &layers, &layer_paths, &err);
      if (r == 0)
        {
          req.restore = &rs;
          r = avm_plan_build (&req, &plan, &err);
          if (r == 0 && (r = avm_snapshot_match (meta, plan, &err)) < 0)
            avm_plan_freep (&plan);
          if (r < 0 && err->exit_code == AVM_EXIT_USAGE && err->code != ESTALE && !plan)
            {
              /* The profile itself is wrong: said as such, no fallback.  */
              return avm_error_report (&err);
            }
        }
      if (r < 0 && !sr->restore_or_boot)
        return avm_error_report (&err);
      if (r < 0)
        {
          avm_fprintf_escaped (stderr, "avm: warning: %s; booting instead (--restore-or-boot)\n", err->msg);
          avm_error_freep (&err);
          json_decref (meta);
          meta = NULL;
          req.restore = NULL;
        }
    }
  if (!plan)
    {
      r = avm_plan_build (&req, &plan, &err);
      if (r < 0)
        return avm_error_report (&err);
    }
  /* --restore-or-boot: the cold plan too, for a state QEMU cannot load.  */
  _cleanup_plan_ struct avm_plan *fallback = NULL;
  if (req.restore && sr->restore_or_boot && !sr->dry_run)
    {
      req.restore = NULL;
      if (avm_plan_build (&req, &fallback, &err) < 0)
        return avm_error_report (&err);
    }
  /* A guest that would share a CID or MAC with a running one.  */
  _cleanup_json_ json_t *peers = json_array ();
  size_t i;
  json_t *w;
  int pr = peers ? avm_peers_check (plan, peers) : -ENOMEM;
  json_array_foreach (peers, i, w)
    if (pr == 0)
      pr = avm_plan_add_warning (plan, json_string_value (w));
  if (pr < 0)
    {
      avm_error_sys (&err, ENOMEM, "start");
      return avm_error_report (&err);
    }
  for (size_t k = 0; plan->warnings[k]; k++)
    avm_fprintf_escaped (stderr, "avm: warning: %s\n", plan->warnings[k]);

  if (!sr->dry_run)
    {
      struct avm_supervise_options so = {
        .plan = plan,
        .stop_after_boot = sr->stop_after_boot,
        .log_target = sr->log_target,
        .verbose = sr->verbose,
        .quiet = sr->quiet,
        .restore_meta = meta,
        .restore_dir = snapdir,
        .fallback_plan = fallback,
      };
      if (sr->show_cmdline)
        avm_plan_print_cmdline (plan, stderr);
      fflush (stdout);
      int ret = avm_supervise (&so, &err);
      if (ret != 0 && err)
        avm_error_report (&err);
      return ret;
    }
  if (sr->json)
    {
      _cleanup_json_ json_t *j = avm_plan_to_json (plan);
      if (!j)
        {
          avm_error_sys (&err, ENOMEM, "start");
          return avm_error_report (&err);
        }
      r = avm_json_print (j, stdout);
    }
  else
    r = avm_plan_print_cmdline (plan, stdout);
  if (fflush (stdout) != 0 || r < 0)
    {
      fprintf (stderr, "avm: start: cannot write to standard output: %s\n", strerror (errno));
      return AVM_EXIT_FAILURE;
    }
  return AVM_EXIT_OK;
}

int
avm_cmd_start (int argc, char **argv)
{
  static const struct option longopts[] = {
    AVM_PROFILE_LONGOPTS,
    { "dry-run", no_argument, NULL, 'n' },
    { "json", no_argument, NULL, OPT_JSON },
    { "stop-after-boot", no_argument, NULL, OPT_STOP_AFTER_BOOT },
    { "restore", required_argument, NULL, OPT_RESTORE },
    { "restore-or-boot", required_argument, NULL, OPT_RESTORE_OR_BOOT },
    { "log-target", required_argument, NULL, OPT_LOG_TARGET },
    { "verbose", no_argument, NULL, 'v' },
    { "quiet", no_argument, NULL, 'q' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct avm_profile_opts o = { .instance = 1 };
  _cleanup_error_ avm_error_t err = NULL;
  struct avm_start_run sr = { .log_target = AVM_LOG_AUTO };
  int c, r, ret = AVM_EXIT_USAGE;

  if (avm_instance_default ("start", &o.instance) < 0)
    return AVM_EXIT_USAGE;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, "+:p:O:i:nvqh", longopts, NULL)) != -1)
    {
      r = avm_profile_opts_parse (&o, c, optarg, &err);
      if (r < 0)
        {
          ret = avm_error_report (&err);
          goto out;
        }
      if (r > 0)
        continue;
      switch (c)
        {
        case 'n':
          sr.dry_run = true;
          break;
        case OPT_JSON:
          sr.json = true;
          break;
        case OPT_STOP_AFTER_BOOT:
          sr.stop_after_boot = true;
          break;
        case OPT_RESTORE:
        case OPT_RESTORE_OR_BOOT:
          if (sr.restore)
            {
              ret = avm_usage_error ("start", "--restore or --restore-or-boot: once");
              goto out;
            }
          if (avm_snapshot_name_check (optarg, &err) < 0)
            {
              ret = avm_error_report (&err);
              goto out;
            }
          sr.restore = optarg;
          sr.restore_or_boot = c == OPT_RESTORE_OR_BOOT;
          break;
        case OPT_LOG_TARGET:
          if (streq (optarg, "auto"))
            sr.log_target = AVM_LOG_AUTO;
          else if (streq (optarg, "file"))
            sr.log_target = AVM_LOG_FILE;
          else if (streq (optarg, "journal"))
            sr.log_target = AVM_LOG_JOURNAL;
          else
            {
              ret = avm_usage_error ("start", "--log-target %s: expected auto, file or journal", optarg);
              goto out;
            }
          break;
        case 'v':
          sr.verbose = true;
          break;
        case 'q':
          sr.quiet = true;
          break;
        case 'h':
          avm_help_start (stdout);
          ret = 0;
          goto out;
        default:
          ret = avm_bad_option ("start", c, argv);
          goto out;
        }
    }
  if (optind < argc)
    {
      ret = avm_usage_error ("start", "unexpected argument \"%s\"", argv[optind]);
      goto out;
    }
  if (sr.json && !sr.dry_run)
    {
      ret = avm_usage_error ("start", "--json goes with --dry-run");
      goto out;
    }

  ret = avm_start_run (&o, &sr);
out:
  avm_profile_opts_clear (&o);
  return ret;
}
