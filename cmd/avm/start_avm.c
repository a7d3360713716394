/* SPDX-License-Identifier: Apache-2.0 */
/* The slp/start-avm-compatible `start-avm` personality: start_avm.sh's
   options, translated by lib/compat into an `avm start` of the aaos-<arch>
   profile. */
#include "avm.h"
#include "compat/startavm.h"
#include "util/cleanup.h"
#include "util/escape.h"
#include "util/quote.h"

#include <stdarg.h>
#include <string.h>

enum
{
  SA_MT = 0x200,
  SA_VIDEO,
  SA_ROTARY,
  SA_DRY_RUN,
  SA_JSON,
  SA_CAPS,
};

static void
help (FILE *out)
{
  fputs ("Usage: start-avm [OPTIONS] ANDROID_BASE_DIR\n"
         "\n"
         "avm with the interface of slp/start-avm's start_avm.sh: starts the Cuttlefish\n"
         "images in ANDROID_BASE_DIR with the aaos-<arch> profile, each option selecting\n"
         "the profile's equivalent setting (the same as `avm start -p aaos-<arch> -O ...`).\n"
         "The images are taken from ANDROID_BASE_DIR/qemu when it exists (cvd2img run\n"
         "there), else from ANDROID_BASE_DIR; the host tools from ANDROID_BASE_DIR/bin.\n"
         "\n"
         "  -r                       tap interface cvd-mtap-01 and the real config_server (-O network=tap)\n"
         "  -u                       vhost-user-vsock instead of vhost-vsock (-O vsock=vhost-user)\n"
         "  -v                       virgl GPU acceleration through vhost-user-gpu (-O gpu=virgl)\n"
         "  -d                       debug: print the equivalent avm command and the QEMU command\n"
         "                           line, echo console and helper output\n"
         "      --mt                 virtio-multitouch as input device (-O touch=multitouch)\n"
         "      --video              vhost-user-video device (-O video=on)\n"
         "      --rotary             virtio-rotary as input device (-O rotary=on)\n"
         "  -m, --mode PHONE|AUTO    Android phone or automotive display (default AUTO; any case)\n"
         "  -q, --qemu DIR           QEMU build directory: DIR/qemu-system-ARCH (the host's\n"
         "                           architecture unless DIR only has the other one) and, with -v,\n"
         "                           DIR/contrib/vhost-user-gpu/vhost-user-gpu\n"
         "  -n, --dry-run            print the QEMU command line and exit; nothing is started\n"
         "      --json               with --dry-run: print the whole plan as JSON\n"
         "      --caps FILE          check against recorded QEMU capabilities instead of the binary\n"
         "  -h, --help               show this help\n"
         "\n"
         "Refused when the QEMU at hand lacks the device, with the message and exit status\n"
         "of avm start: --mt needs QEMU 8.1 (virtio-multitouch-pci); --rotary\n"
         "(virtio-rotary-pci) and --video (vhost-user-video-pci) exist only in patched,\n"
         "out-of-tree QEMU builds, so no upstream QEMU has them; -v needs KVM before QEMU 8.0.\n"
         "\n"
         "Exit status: as avm start (0 clean stop, 1 runtime failure, 2 bad usage, bad\n"
         "input or a device this QEMU lacks, 3..7 see avm-start(1)).\n"
         "See start-avm(1).\n",
         out);
}

static int __attribute__ ((format (printf, 1, 2))) usage_error (const char *fmt, ...)
{
  va_list ap;
  fputs ("start-avm: ", stderr);
  va_start (ap, fmt);
  avm_vfprintf_escaped (stderr, fmt, ap);
  va_end (ap);
  fputs (" (see 'start-avm --help')\n", stderr);
  return AVM_EXIT_USAGE;
}

/* The equivalent avm command, on stderr (-d).  */
static void
print_equivalent (const struct avm_startavm_start *s, const struct avm_profile_opts *o, const struct avm_start_run *sr)
{
  _cleanup_free_ char *images = avm_shell_quote (s->images);
  fprintf (stderr, "start-avm: avm start%s -p %s", sr->dry_run ? " --dry-run" : "", s->profile);
  for (size_t i = 0; i < s->options.n; i++)
    fprintf (stderr, " -O %s", s->options.v[i]);
  for (size_t i = 0; i < s->sets.n; i++)
    {
      _cleanup_free_ char *q = avm_shell_quote (s->sets.v[i]);
      fprintf (stderr, " --set %s", q ? q : s->sets.v[i]);
    }
  if (o->caps_file)
    {
      _cleanup_free_ char *q = avm_shell_quote (o->caps_file);
      fprintf (stderr, " --caps %s", q ? q : o->caps_file);
    }
  fprintf (stderr, " --images %s%s\n", images ? images : s->images, sr->dry_run ? "" : " --verbose");
}

int
avm_cmd_start_avm (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "mt", no_argument, NULL, SA_MT },         { "video", no_argument, NULL, SA_VIDEO },
    { "rotary", no_argument, NULL, SA_ROTARY }, { "mode", required_argument, NULL, 'm' },
    { "qemu", required_argument, NULL, 'q' },   { "dry-run", no_argument, NULL, 'n' },
    { "json", no_argument, NULL, SA_JSON },     { "caps", required_argument, NULL, SA_CAPS },
    { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
  };
  struct avm_startavm sa = { 0 };
  struct avm_startavm_start s = { 0 };
  struct avm_profile_opts o = { .instance = 1 };
  struct avm_start_run sr = { .log_target = AVM_LOG_AUTO };
  _cleanup_error_ avm_error_t err = NULL;
  bool debug = false;
  int c, ret;

  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":ruvdm:q:nh", longopts, NULL)) != -1)
    switch (c)
      {
      case 'r':
        sa.tap_network = true;
        break;
      case 'u':
        sa.vhost_user_vsock = true;
        break;
      case 'v':
        sa.virgl = true;
        break;
      case 'd':
        debug = true;
        break;
      case SA_MT:
        sa.multitouch = true;
        break;
      case SA_VIDEO:
        sa.video = true;
        break;
      case SA_ROTARY:
        sa.rotary = true;
        break;
      case 'm':
        if (avm_startavm_parse_mode (optarg, &sa.phone, &err) < 0)
          {
            ret = usage_error ("%s", err->msg);
            goto out;
          }
        break;
      case 'q':
        sa.qemu_dir = optarg;
        break;
      case 'n':
        sr.dry_run = true;
        break;
      case SA_JSON:
        sr.json = true;
        break;
      case SA_CAPS:
        o.caps_file = optarg;
        break;
      case 'h':
        help (stdout);
        ret = 0;
        goto out;
      case ':':
        ret = usage_error ("option %s needs an argument", argv[optind - 1]);
        goto out;
      default:
        if (optopt && optopt < 0x100)
          ret = usage_error ("unknown option '-%c'", optopt);
        else
          ret = usage_error ("unknown option '%s'", argv[optind - 1]);
        goto out;
      }
  if (optind == argc)
    {
      ret = usage_error ("missing the Cuttlefish directory (ANDROID_BASE_DIR)");
      goto out;
    }
  if (argc - optind > 1)
    {
      ret = usage_error ("unexpected argument \"%s\"", argv[optind + 1]);
      goto out;
    }
  if (sr.json && !sr.dry_run)
    {
      ret = usage_error ("--json goes with --dry-run");
      goto out;
    }
  sa.cvd_dir = argv[optind];

  if (avm_startavm_translate (&sa, &s, &err) < 0)
    {
      ret = err->exit_code == AVM_EXIT_USAGE ? usage_error ("%s", err->msg) : avm_error_report (&err);
      goto out;
    }
  o.profile = s.profile;
  o.images = s.images;
  for (size_t i = 0; i < s.options.n; i++)
    avm_argv_push (&o.options, s.options.v[i]);
  for (size_t i = 0; i < s.sets.n; i++)
    avm_argv_push (&o.sets, s.sets.v[i]);
  if (debug)
    {
      sr.verbose = sr.show_cmdline = true;
      print_equivalent (&s, &o, &sr);
    }
  ret = avm_start_run (&o, &sr);
out:
  avm_profile_opts_clear (&o);
  avm_startavm_start_clear (&s);
  return ret;
}
