/* SPDX-License-Identifier: Apache-2.0 */
/* avm profiles list|show|keys */
#include "avm.h"
#include "profile/schema.h"
#include "util/cleanup.h"
#include "util/escape.h"
#include "util/json.h"

#include <string.h>

void
avm_help_profiles (FILE *out)
{
  fputs ("Usage: avm profiles list [--json|--names]\n"
         "       avm profiles show [NAME|FILE] [-O NAME=CHOICE]... [--set PATH=VALUE]...\n"
         "       avm profiles keys [--brief]\n"
         "\n"
         "list   every profile found, in lookup order: the installed profile directory,\n"
         "       /etc/avm/profiles, $XDG_CONFIG_HOME/avm/profiles (the first match wins)\n"
         "       --json: as JSON; --names: the names -p accepts, one a line\n"
         "show   the resolved profile after inheritance, options and overrides, as JSON\n"
         "keys   every profile key with its type, default and meaning\n"
         "\n"
         "See avm-profile(5).\n",
         out);
}

static int
cmd_list (int argc, char **argv)
{
  bool json = false, names = false;
  for (int i = 1; i < argc; i++)
    {
      if (streq (argv[i], "--json"))
        json = true;
      else if (streq (argv[i], "--names"))
        names = true;
      else
        return avm_usage_error ("profiles", "list: unexpected argument \"%s\"", argv[i]);
    }
  if (json && names)
    return avm_usage_error ("profiles", "list: --json and --names exclude each other");
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_json_ json_t *list = NULL;
  if (avm_profile_list (&list, &err) < 0)
    return avm_error_report (&err);
  if (json)
    return avm_json_print (list, stdout) < 0 ? AVM_EXIT_FAILURE : 0;
  size_t i, w = 4;
  json_t *e;
  if (names)
    {
      /* For shell completion: each name once (a shadowed file is the same
         name), in lookup order.  */
      json_array_foreach (list, i, e)
        if (!json_object_get (e, "shadowed_by"))
          printf ("%s\n", json_string_value (json_object_get (e, "name")));
      return fflush (stdout) == 0 && !ferror (stdout) ? 0 : AVM_EXIT_FAILURE;
    }
  json_array_foreach (list, i, e)
    if (strlen (json_string_value (json_object_get (e, "name"))) > w)
      w = strlen (json_string_value (json_object_get (e, "name")));
  json_array_foreach (list, i, e)
    {
      json_t *desc = json_object_get (e, "description"), *shadow = json_object_get (e, "shadowed_by");
      json_t *error = json_object_get (e, "error");
      const char *why = json_string_value (error);
      /* Names, paths and descriptions are the files' own: shown escaped.  */
      avm_fprintf_escaped (stdout, "%-*s  %s\n", (int) w, json_string_value (json_object_get (e, "name")),
                           why    ? (strstr (why, "malformed JSON") ? "(malformed JSON)" : "(unreadable: see --json)")
                           : desc ? json_string_value (desc)
                                  : "");
      avm_fprintf_escaped (stdout, "%-*s  %s%s%s%s\n", (int) w, "", json_string_value (json_object_get (e, "path")),
                           shadow ? "  (shadowed by " : "", shadow ? json_string_value (shadow) : "",
                           shadow ? ")" : "");
    }
  return 0;
}

static int
cmd_show (int argc, char **argv)
{
  static const struct option longopts[] = {
    AVM_PROFILE_LONGOPTS,
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct avm_profile_opts o = { .instance = 1 };
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_profile_ struct avm_profile *p = NULL;
  int c, r, ret;

  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":p:O:i:h", longopts, NULL)) != -1)
    {
      r = avm_profile_opts_parse (&o, c, optarg, &err);
      if (r < 0)
        {
          ret = avm_error_report (&err);
          goto out;
        }
      if (r == 0)
        {
          if (c == 'h')
            {
              avm_help_profiles (stdout);
              ret = 0;
            }
          else
            ret = avm_bad_option ("profiles show", c, argv);
          goto out;
        }
    }
  if (optind < argc && !o.profile)
    o.profile = argv[optind++];
  if (optind < argc)
    {
      ret = avm_usage_error ("profiles", "show: unexpected argument \"%s\"", argv[optind]);
      goto out;
    }
  if (avm_profile_opts_load (&o, &p, &err) < 0)
    {
      ret = avm_error_report (&err);
      goto out;
    }
  ret = avm_json_print (p->json, stdout) < 0 ? AVM_EXIT_FAILURE : 0;
out:
  avm_profile_opts_clear (&o);
  return ret;
}

int
avm_cmd_profiles (int argc, char **argv)
{
  if (argc < 2 || streq (argv[1], "-h") || streq (argv[1], "--help"))
    {
      avm_help_profiles (argc < 2 ? stderr : stdout);
      return argc < 2 ? AVM_EXIT_USAGE : 0;
    }
  if (streq (argv[1], "list"))
    return cmd_list (argc - 1, argv + 1);
  if (streq (argv[1], "show"))
    return cmd_show (argc - 1, argv + 1);
  if (streq (argv[1], "keys"))
    {
      bool brief = argc > 2 && streq (argv[2], "--brief");
      if (argc > 2 + brief)
        return avm_usage_error ("profiles", "keys: unexpected argument \"%s\"", argv[2 + brief]);
      avm_schema_print_keys (stdout, !brief);
      return 0;
    }
  return avm_usage_error ("profiles", "unknown subcommand \"%s\" (list, show, keys)", argv[1]);
}
