/* SPDX-License-Identifier: Apache-2.0 */
/* avm snapshot save|list|delete: snapshots of a booted platform
   (lib/snapshot/ for the store, lib/supervise/snapshot_save.c for the save).  */
#include "avm.h"
#include "snapshot/snapshot.h"
#include "supervise/control_client.h"
#include "util/cleanup.h"
#include "util/escape.h"
#include "util/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The supervisor gives up on a save after 600 s (lib/supervise/snapshot_save.c).  */
#define SAVE_WAIT_MS 610000

void
avm_help_snapshot (FILE *out)
{
  fputs ("Usage: avm snapshot save NAME [-i N] [--replace] [--compress]\n"
         "       avm snapshot list [-i N] [--json]\n"
         "       avm snapshot delete NAME [-i N]\n"
         "\n"
         "Save a booted, running platform (RAM, devices and the guest's disk writes) as\n"
         "snapshot NAME of its instance; `avm start --restore NAME` brings it back in\n"
         "a fraction of a boot.  The guest is paused while it is saved.  Devices that\n"
         "QEMU cannot migrate (a virtiofs share, vhost-user-gpu) refuse the save.\n"
         "\n"
         "  -i, --instance N   instance number 1..64 (default 1)\n"
         "      --replace      save: replace an existing snapshot NAME (atomically)\n"
         "      --compress     save: the state through lz4 (smaller, a little slower)\n"
         "      --json         list: the snapshots' metadata as JSON\n"
         "  -h, --help         show this help\n"
         "\n"
         "Snapshots live in the instance's state directory, under snapshots/.\n"
         "Exit status: 0 done, 1 failure (not running, not booted, blocked, no such\n"
         "snapshot), 2 bad usage.\n"
         "See avm-snapshot(1).\n",
         out);
}

static int
snapshot_save (int instance, const char *name, bool replace, bool compress)
{
  _cleanup_error_ avm_error_t err = NULL;
  if (avm_snapshot_name_check (name, &err) < 0)
    return avm_error_report (&err);
  _cleanup_free_ char *dir = NULL, *sock = NULL;
  pid_t pid = 0;
  int r = avm_instance_running ("snapshot", instance, " (start it, let it boot, then save)", &dir, &sock, &pid);
  if (r <= 0)
    return r < 0 ? -r : AVM_EXIT_FAILURE;
  _cleanup_json_ json_t *req = json_pack ("{s:s, s:s, s:b, s:b}", "command", "snapshot-save", "name", name, "replace",
                                          replace, "compress", compress);
  _cleanup_json_ json_t *reply = NULL;
  if (!req)
    {
      avm_error_sys (&err, ENOMEM, "snapshot");
      return avm_error_report (&err);
    }
  if (avm_control_call (sock, req, &reply, SAVE_WAIT_MS, &err) < 0)
    {
      avm_error_prefix (&err, "instance %d (pid %d)", instance, (int) pid);
      return avm_error_report (&err);
    }
  if (!json_is_true (json_object_get (reply, "ok")))
    {
      json_int_t code = json_integer_value (json_object_get (reply, "exit_code"));
      const char *error = json_string_value (json_object_get (reply, "error"));
      avm_fprintf_escaped (stderr, "avm snapshot: instance %d: snapshot %s: %s\n", instance, name,
                           error ? error : "request refused (an avm that does not know snapshots?)");
      return code == AVM_EXIT_USAGE ? AVM_EXIT_USAGE : AVM_EXIT_FAILURE;
    }
  avm_fprintf_escaped (stdout, "%s\n", json_string_value (json_object_get (reply, "path")) ?: name);
  double secs = json_real_value (json_object_get (reply, "seconds"));
  double paused = json_real_value (json_object_get (reply, "paused"));
  fprintf (stderr, "avm snapshot: saved %s in %.2f s (guest paused %.2f s)\n", name, secs, paused);
  return AVM_EXIT_OK;
}

static int
snapshot_list (int instance, bool as_json)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *state = avm_instance_state_dir (instance);
  _cleanup_json_ json_t *list = NULL;
  if (!state)
    {
      avm_error_sys (&err, ENOMEM, "snapshot");
      return avm_error_report (&err);
    }
  if (avm_snapshot_list (state, &list, &err) < 0)
    return avm_error_report (&err);
  if (as_json)
    return avm_json_print (list, stdout) < 0 ? AVM_EXIT_FAILURE : AVM_EXIT_OK;
  if (json_array_size (list) == 0)
    {
      printf ("no snapshots of instance %d (%s/snapshots)\n", instance, state);
      return AVM_EXIT_OK;
    }
  printf ("%-20s %-20s %-12s %10s  %s\n", "NAME", "CREATED", "PROFILE", "STATE", "QEMU");
  size_t i;
  json_t *m;
  json_array_foreach (list, i, m)
    {
      const char *name = json_string_value (json_object_get (m, "name")) ?: "?";
      const char *error = json_string_value (json_object_get (m, "error"));
      if (error)
        {
          avm_fprintf_escaped (stdout, "%-20s damaged: %s\n", name, error);
          continue;
        }
      json_t *q = json_object_get (m, "qemu");
      double mib = (double) json_integer_value (json_object_get (json_object_get (m, "state"), "size")) / 1048576.0;
      avm_fprintf_escaped (stdout, "%-20s %-20s %-12s %8.1f M  %s %s\n", name,
                           json_string_value (json_object_get (m, "created")) ?: "?",
                           json_string_value (json_object_get (m, "profile")) ?: "?", mib,
                           json_string_value (json_object_get (q, "version")) ?: "?",
                           json_string_value (json_object_get (q, "machine")) ?: "?");
    }
  return AVM_EXIT_OK;
}

static int
snapshot_delete (int instance, const char *name)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *state = avm_instance_state_dir (instance);
  if (!state)
    {
      avm_error_sys (&err, ENOMEM, "snapshot");
      return avm_error_report (&err);
    }
  if (!name)
    return avm_usage_error ("snapshot", "delete: missing snapshot NAME");
  if (avm_snapshot_name_check (name, &err) < 0)
    return avm_error_report (&err);
  /* A running platform restored from it would lose the layers it copies
     when it is saved again.  */
  _cleanup_free_ char *dir = NULL, *sock = NULL;
  pid_t pid = 0;
  if (avm_instance_locate (instance, &dir, &sock, &pid, &err) > 0)
    {
      _cleanup_json_ json_t *req = json_pack ("{s:s}", "command", "status");
      _cleanup_json_ json_t *reply = NULL;
      if (req && avm_control_call (sock, req, &reply, 5000, &err) == 0)
        {
          const char *from = json_string_value (json_object_get (reply, "restored_from"));
          if (from && streq (from, name))
            {
              fprintf (stderr, "avm snapshot: instance %d (pid %d) runs restored from snapshot %s; stop it first\n",
                       instance, (int) pid, name);
              return AVM_EXIT_FAILURE;
            }
        }
      avm_error_freep (&err);
    }
  if (avm_snapshot_delete (state, name, &err) < 0)
    return avm_error_report (&err);
  return AVM_EXIT_OK;
}

int
avm_cmd_snapshot (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "instance", required_argument, NULL, 'i' },
    { "replace", no_argument, NULL, OPT_REPLACE },
    { "compress", no_argument, NULL, OPT_COMPRESS },
    { "json", no_argument, NULL, OPT_JSON },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  int instance = 1, c;
  bool replace = false, as_json = false, compress = false;

  if (avm_instance_default ("snapshot", &instance) < 0)
    return AVM_EXIT_USAGE;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":i:h", longopts, NULL)) != -1)
    switch (c)
      {
      case 'i':
        if (avm_parse_instance ("snapshot", optarg, &instance) < 0)
          return AVM_EXIT_USAGE;
        break;
      case OPT_REPLACE:
        replace = true;
        break;
      case OPT_COMPRESS:
        compress = true;
        break;
      case OPT_JSON:
        as_json = true;
        break;
      case 'h':
        avm_help_snapshot (stdout);
        return 0;
      default:
        return avm_bad_option ("snapshot", c, argv);
      }
  /* argv[0] is "snapshot"; the action and its name follow (options may
     come anywhere: getopt_long permuted them to the front).  */
  if (optind >= argc)
    return avm_usage_error ("snapshot", "missing action: save NAME, list or delete NAME");
  const char *action = argv[optind++];
  const char *name = optind < argc ? argv[optind++] : NULL;
  if (optind < argc)
    return avm_usage_error ("snapshot", "unexpected argument \"%s\"", argv[optind]);
  bool named = streq (action, "save") || streq (action, "delete");
  if (!named && !streq (action, "list"))
    return avm_usage_error ("snapshot", "unknown action \"%s\": save NAME, list or delete NAME", action);
  if (named && !name)
    return avm_usage_error ("snapshot", "%s: missing snapshot NAME", action);
  if (!named && name)
    return avm_usage_error ("snapshot", "list: unexpected argument \"%s\"", name);
  if ((replace || compress) && !streq (action, "save"))
    return avm_usage_error ("snapshot", "%s goes with save", replace ? "--replace" : "--compress");
  if (as_json && !streq (action, "list"))
    return avm_usage_error ("snapshot", "--json goes with list");
  if (streq (action, "save"))
    return snapshot_save (instance, name, replace, compress);
  if (streq (action, "delete"))
    return snapshot_delete (instance, name);
  return snapshot_list (instance, as_json);
}
