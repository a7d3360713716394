/* SPDX-License-Identifier: Apache-2.0 */
/* avm inspect: read a disk back. */
#include "avm.h"
#include "imageset/setcheck.h"
#include "cvd2img/verify.h"
#include "disk/inspect.h"
#include "disk/progress.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

#include <libgen.h>
#include <string.h>

void
avm_help_inspect (FILE *out)
{
  fputs ("Usage: avm inspect [--json] DISK\n"
         "       avm inspect --verify [--manifest FILE] DISK\n"
         "\n"
         "Print a disk's partition table; for a properties disk also the boot\n"
         "properties, the U-Boot environment and the AVB status of every signed\n"
         "partition (hash and signature verified, key shown by its SHA-1).  A disk\n"
         "avm cvd2img wrote is also checked against the manifest.json next to it,\n"
         "with the rest of its set: files from different conversions, or a\n"
         "conversion interrupted while it replaced them, make the set not sound.\n"
         "\n"
         "      --json            print the report as JSON\n"
         "      --verify          open the disk with libguestfs (a real Linux kernel parses\n"
         "                        the GPT) and check names, offsets, sizes and the signed\n"
         "                        partitions against manifest.json (on a terminal, a status\n"
         "                        line shows each step: the appliance takes a while to start)\n"
         "      --manifest FILE   manifest to check against (default: manifest.json next to DISK)\n"
         "  -h, --help            show this help\n"
         "\n"
         "Exit status: 0 the disk is sound (every signature verifies, its set belongs\n"
         "together), 1 a check failed, 2 bad usage or bad input (a disk or manifest that\n"
         "is not there, a malformed disk).  See avm-inspect(1).\n",
         out);
}

static void
print_avb (json_t *avb)
{
  const char *sig = json_string_value (json_object_get (avb, "signature"));
  const char *digest = json_string_value (json_object_get (avb, "digest"));
  printf ("    AVB %s: signature %s%s%s, key SHA-1 %s\n", json_string_value (json_object_get (avb, "algorithm")), sig,
          digest ? ", digest " : "", digest ? digest : "", json_string_value (json_object_get (avb, "key_sha1")));
  size_t i;
  json_t *c;
  json_array_foreach (json_object_get (avb, "chains"), i, c)
    printf ("    chain %s:%lld key SHA-1 %s (%s)\n", json_string_value (json_object_get (c, "partition")),
            json_integer_value (json_object_get (c, "rollback_index_location")),
            json_string_value (json_object_get (c, "key_sha1")), json_string_value (json_object_get (c, "signer")));
}

static void
print_report (json_t *rep)
{
  char size[32];
  json_t *parts = json_object_get (rep, "partitions");
  avm_format_bytes (json_integer_value (json_object_get (rep, "size")), size, sizeof size);
  printf ("%s: %s disk, %s, %zu partitions, disk GUID %s\n", json_string_value (json_object_get (rep, "file")),
          json_string_value (json_object_get (rep, "kind")), size, json_array_size (parts),
          json_string_value (json_object_get (rep, "disk_guid")));
  printf ("  %3s  %-22s %12s %12s  %s\n", "#", "name", "first LBA", "last LBA", "size");
  size_t i;
  json_t *p;
  json_array_foreach (parts, i, p)
    {
      avm_format_bytes (json_integer_value (json_object_get (p, "size")), size, sizeof size);
      printf ("  %3lld  %-22s %12lld %12lld  %s\n", json_integer_value (json_object_get (p, "index")),
              json_string_value (json_object_get (p, "name")), json_integer_value (json_object_get (p, "first_lba")),
              json_integer_value (json_object_get (p, "last_lba")), size);
    }
  json_t *env = json_object_get (rep, "uboot_env");
  if (env)
    {
      printf ("uboot_env:\n");
      print_avb (json_object_get (env, "avb"));
      json_t *e;
      json_array_foreach (json_object_get (env, "entries"), i, e)
        printf ("    %s\n", json_string_value (e));
      if (json_object_get (env, "error"))
        printf ("    %s\n", json_string_value (json_object_get (env, "error")));
    }
  json_t *vb = json_object_get (rep, "vbmeta");
  if (vb)
    {
      printf ("vbmeta:\n");
      print_avb (json_object_get (vb, "avb"));
    }
  json_t *bc = json_object_get (rep, "bootconfig");
  if (bc)
    {
      printf ("bootconfig:\n");
      print_avb (json_object_get (bc, "avb"));
      const char *k;
      json_t *v;
      json_object_foreach (json_object_get (bc, "properties"), k, v)
        printf ("    %s=%s\n", k, json_string_value (v));
    }
  if (json_object_get (rep, "warning"))
    printf ("warning: %s\n", json_string_value (json_object_get (rep, "warning")));
  json_array_foreach (json_object_get (rep, "image_set_problems"), i, p)
    printf ("image set: %s\n", json_string_value (p));
  printf ("%s\n", json_is_true (json_object_get (rep, "ok")) ? "=> sound" : "=> NOT SOUND (see above)");
}

int
avm_cmd_inspect (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "json", no_argument, NULL, OPT_JSON },
    { "verify", no_argument, NULL, 'v' },
    { "manifest", required_argument, NULL, 'm' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_json_ json_t *rep = NULL;
  _cleanup_free_ char *manifest_default = NULL;
  bool json = false, verify = false;
  const char *manifest = NULL;
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":h", longopts, NULL)) != -1)
    switch (c)
      {
      case OPT_JSON:
        json = true;
        break;
      case 'v':
        verify = true;
        break;
      case 'm':
        manifest = optarg;
        break;
      case 'h':
        avm_help_inspect (stdout);
        return 0;
      default:
        return avm_bad_option ("inspect", c, argv);
      }
  if (optind + 1 != argc)
    return avm_usage_error ("inspect", optind == argc ? "missing the disk image" : "one disk at a time");
  const char *disk = argv[optind];

  if (verify)
    {
      bool named = manifest != NULL;
      if (!manifest)
        {
          _cleanup_free_ char *copy = strdup (disk);
          manifest_default = copy ? avm_path_join (dirname (copy), "manifest.json") : NULL;
          if (!manifest_default)
            {
              avm_error_sys (&err, ENOMEM, "inspect");
              return avm_error_report (&err);
            }
          manifest = manifest_default;
        }
      /* On a terminal, what it is doing and for how long: the
         appliance takes a while to start.  Erased before the report.  */
      struct avm_status status;
      avm_status_begin (&status, false);
      int r = avm_inspect_verify (disk, manifest, named, &status, &rep, &err);
      if (r == 0)
        {
          avm_status_step (&status, "%s: checking the files of its set", disk);
          r = avm_setcheck (disk, true, AVM_SETCHECK_FULL, rep, &err);
        }
      avm_status_end (&status);
      if (r < 0)
        return avm_error_report (&err);
      if (json)
        {
          _cleanup_json_ json_t *out = json_pack ("{s:s, s:s, s:O, s:b}", "file", disk, "manifest", manifest,
                                                  "problems", rep, "ok", json_array_size (rep) == 0);
          if (avm_json_print (out, stdout) < 0)
            return AVM_EXIT_FAILURE;
        }
      else
        {
          size_t i;
          json_t *p;
          json_array_foreach (rep, i, p)
            printf ("%s: %s\n", disk, json_string_value (p));
          printf ("%s: %s against %s (libguestfs)\n", disk, json_array_size (rep) ? "DOES NOT MATCH" : "matches",
                  manifest);
        }
      return json_array_size (rep) ? AVM_EXIT_FAILURE : 0;
    }

  if (avm_inspect (disk, &rep, &err) < 0)
    return avm_error_report (&err);
  /* The disk is sound on its own; with the files converted with it too?  */
  _cleanup_json_ json_t *set = json_array ();
  if (!set)
    {
      fprintf (stderr, "avm inspect: out of memory\n");
      return AVM_EXIT_FAILURE;
    }
  if (avm_setcheck (disk, true, AVM_SETCHECK_FULL, set, &err) < 0)
    return avm_error_report (&err);
  if (json_array_size (set)
      && (json_object_set (rep, "image_set_problems", set) < 0 || json_object_set_new (rep, "ok", json_false ()) < 0))
    json_decref (steal_pointer (&rep));
  if (json && avm_json_print (rep, stdout) < 0)
    return AVM_EXIT_FAILURE;
  if (!rep)
    {
      fprintf (stderr, "avm inspect: out of memory while building the report\n");
      return AVM_EXIT_FAILURE;
    }
  if (!json)
    print_report (rep);
  return json_is_true (json_object_get (rep, "ok")) ? 0 : AVM_EXIT_FAILURE;
}
