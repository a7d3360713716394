/* SPDX-License-Identifier: Apache-2.0 */
/* avm: Android Automotive virtual platforms under QEMU. */
#include "avm.h"
#include "util/cleanup.h"

#include <string.h>

static const struct
{
  const char *name;
  int (*run) (int argc, char **argv);
  void (*help) (FILE *out);
  const char *summary;
} commands[] = {
  { "start", avm_cmd_start, avm_help_start, "start a virtual platform (--dry-run: print its QEMU command line)" },
  { "profiles", avm_cmd_profiles, avm_help_profiles, "list, show and document device profiles" },
  { "check", avm_cmd_check, avm_help_check, "check that this host can run a profile" },
  { "cvd2img", avm_cmd_cvd2img, avm_help_cvd2img, "convert a Cuttlefish image set into raw GPT disks" },
  { "inspect", avm_cmd_inspect, avm_help_inspect, "show (and verify) a disk: partitions, boot properties, AVB" },
  { "status", avm_cmd_status, avm_help_status, "show a running instance: state, processes, boot time, restarts" },
  { "stop", avm_cmd_stop, avm_help_stop, "stop a running instance (guest power-down, then helpers)" },
  { "screenshot", avm_cmd_screenshot, avm_help_screenshot, "save a PNG of a running instance's screen" },
  { "snapshot", avm_cmd_snapshot, avm_help_snapshot, "save, list and delete snapshots of a booted platform" },
  { "kube", avm_cmd_kube, avm_help_kube, "print a Kubernetes StatefulSet or Pod that runs a profile" },
};

static void
usage (FILE *out)
{
  fputs ("Usage: avm [--version] [--help] COMMAND [ARGS]\n"
         "\n"
         "avm runs Android Automotive OS virtual platforms under QEMU: it starts the\n"
         "helper services, builds the approved QEMU command line from a device profile\n"
         "and supervises the whole process tree.\n"
         "\n"
         "Commands:\n",
         out);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf (out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fputs ("  help CMD   show the help of CMD\n"
         "\n"
         "See avm(1), avm-start(1) and avm-profile(5).\n",
         out);
}

int
main (int argc, char **argv)
{
  /* Personalities: installed as a symlink named after the tool it replaces.  */
  const char *self = strrchr (argv[0], '/') ? strrchr (argv[0], '/') + 1 : argv[0];
  if (streq (self, "cvd2img"))
    {
      /* Its messages start with the name the user typed.  */
      avm_error_set_program (self);
      return avm_cmd_cvd2img_compat (argc, argv);
    }
  if (streq (self, "start-avm"))
    return avm_cmd_start_avm (argc, argv);

  if (argc < 2)
    return avm_usage_error (NULL, "missing command (start, profiles, check)");
  const char *cmd = argv[1];
  if (streq (cmd, "--help") || streq (cmd, "-h"))
    {
      usage (stdout);
      return 0;
    }
  if (streq (cmd, "--version") || streq (cmd, "-V"))
    {
      printf ("avm %s\n", AVM_VERSION);
      return 0;
    }
  if (streq (cmd, "help"))
    {
      if (argc < 3)
        {
          usage (stdout);
          return 0;
        }
      for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (streq (argv[2], commands[i].name))
          {
            commands[i].help (stdout);
            return 0;
          }
      return avm_usage_error (NULL, "help: unknown command \"%s\"", argv[2]);
    }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (streq (cmd, commands[i].name))
      return commands[i].run (argc - 1, argv + 1);
  return avm_usage_error (NULL, "unknown command \"%s\"", cmd);
}
