/* SPDX-License-Identifier: Apache-2.0 */
/* avm cvd2img, and the slp/cvd2img-compatible `cvd2img` personality. */
#include "avm.h"
#include "cvd2img/cvd2img.h"
#include "util/escape.h"
#include "util/cleanup.h"

#include <libgen.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void
avm_help_cvd2img (FILE *out)
{
  fputs ("Usage: avm cvd2img [OPTIONS] CVD_DIR\n"
         "       avm cvd2img [OPTIONS] IMAGES.zip HOST_PACKAGE.tar.gz\n"
         "\n"
         "Convert a Cuttlefish image set into a directory `avm start --images DIR` runs as\n"
         "it is: system.img (GPT, Cuttlefish's OS partitions), properties.img and\n"
         "properties_virgl.img (boot properties from a profile, AVB-signed), the bootloader,\n"
         "manifest.json, the images' android-info.txt, the host package's tree (bin/,\n"
         "lib64/, etc/, usr/, ...: the host tools, their libraries and data) and, when\n"
         "signing with the host package's test key, that key as avb_key.pem (avm start\n"
         "rebuilds the properties disk with it when the profile's boot properties change).\n"
         "Archives are read directly; inputs are never modified; existing outputs, host\n"
         "tools included, are only replaced once every new output is complete.\n"
         "\n"
         "  -o, --output DIR          output directory (default: the current directory)\n"
         "  -a, --arch ARCH           x86_64 or aarch64 (default: from the bootloader, else the host)\n"
         "      --key FILE            signing key, PEM RSA-4096 (default: the host package's test key)\n"
         "      --pubkey FILE         .avbpubkey that must match the signing key\n"
         "  -p, --profile NAME|FILE   profile the boot properties come from (default: aaos-<arch>)\n"
         "  -O, --option NAME=CHOICE  select a profile option; repeatable\n"
         "      --set PATH=VALUE      override a profile key; repeatable\n"
         "      --no-virgl            do not write properties_virgl.img\n"
         "      --seed SEED           reproducible output: the disks' GUIDs and AVB salts derived\n"
         "                            from SEED and the images, not drawn at random\n"
         "  -q, --quiet               no progress bar, no summary of what was written\n"
         "  -h, --help                show this help\n"
         "\n"
         "Invoked as `cvd2img`, avm takes slp/cvd2img's interface instead:\n"
         "  cvd2img [-a x86-64|aarch64] [-s FILE] [-p FILE] [-v FILE] CVD_DIR\n"
         "\n"
         "Exit status: 0 success, 1 runtime failure, 2 bad usage or bad input.\n"
         "See avm-cvd2img(1).\n",
         out);
}

static const char *
parse_arch (const char *a)
{
  if (streq (a, "x86_64") || streq (a, "x86-64"))
    return "x86_64";
  if (streq (a, "aarch64") || streq (a, "arm64"))
    return "aarch64";
  return NULL;
}

static bool
is_dir (const char *p)
{
  struct stat st;
  return stat (p, &st) == 0 && S_ISDIR (st.st_mode);
}

static bool
ends_with (const char *s, const char *suffix)
{
  size_t l = strlen (s), n = strlen (suffix);
  return l >= n && streq (s + l - n, suffix);
}

static int
run (struct avm_cvd2img_request *req, const char *cmd, int nargs, char **args)
{
  _cleanup_error_ avm_error_t err = NULL;
  struct stat st;
  if (req->out_dir && stat (req->out_dir, &st) == 0 && !S_ISDIR (st.st_mode))
    return avm_usage_error (cmd, "--output %s is not a directory", req->out_dir);
  if (nargs == 1)
    {
      if (!is_dir (args[0]))
        return avm_usage_error (cmd,
                                "%s is not a directory (give a Cuttlefish image directory, or the image zip and "
                                "the host package)",
                                args[0]);
      req->dir = args[0];
    }
  else if (nargs == 2)
    {
      /* Either order: the zip is the one that looks like a zip.  */
      bool first_zip = ends_with (args[0], ".zip") || !ends_with (args[1], ".zip");
      req->zip = first_zip ? args[0] : args[1];
      req->hostpkg = first_zip ? args[1] : args[0];
    }
  else
    return avm_usage_error (cmd, nargs ? "too many arguments" : "missing the Cuttlefish image directory");
  struct avm_cvd2img_result res = { 0 };
  struct timespec t0, t1;
  clock_gettime (CLOCK_MONOTONIC, &t0);
  if (avm_cvd2img (req, &res, &err) < 0)
    return avm_error_report (&err);
  clock_gettime (CLOCK_MONOTONIC, &t1);
  /* What was written, where, and how long it took: one line, also where
     no progress bar was drawn (standard error not a terminal).  */
  _cleanup_free_ char *summary = req->quiet ? NULL : avm_cvd2img_summary (&res);
  if (summary)
    {
      const char *prog = avm_error_program ();
      double secs = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
      fprintf (stderr, "%s%s: wrote ", prog, streq (prog, "avm") ? " cvd2img" : "");
      avm_fput_escaped (stderr, summary, strlen (summary));
      fprintf (stderr, " in %.1f s\n", secs);
    }
  avm_cvd2img_result_clear (&res);
  return 0;
}

/* slp/cvd2img: cvd2img [-a x86-64|aarch64] [-s FILE] [-p FILE] [-v FILE] CVD_DIR  */
int
avm_cmd_cvd2img_compat (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "arch", required_argument, NULL, 'a' },  { "system", required_argument, NULL, 's' },
    { "props", required_argument, NULL, 'p' }, { "virgl-props", required_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },        { NULL, 0, NULL, 0 },
  };
  /* slp/cvd2img's outputs only: it is run in the image directory, which
     already has the host package (avm-cvd2img(1), COMPATIBILITY).  */
  struct avm_cvd2img_request req = { .no_host_tree = true, .tool = "cvd2img" };
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":a:s:p:v:h", longopts, NULL)) != -1)
    switch (c)
      {
      case 'a':
        if (!(req.arch = parse_arch (optarg)))
          return avm_usage_error ("cvd2img", "--arch %s: expected x86-64 or aarch64", optarg);
        break;
      case 's':
        req.system_path = optarg;
        break;
      case 'p':
        req.props_path = optarg;
        break;
      case 'v':
        req.props_virgl_path = optarg;
        break;
      case 'h':
        fputs ("Usage: cvd2img [-a x86-64|aarch64] [-s FILE] [-p FILE] [-v FILE] CVD_DIR\n"
               "\n"
               "  -a, --arch ARCH          architecture of the source images\n"
               "  -s, --system FILE        system disk image (default: system.img)\n"
               "  -p, --props FILE         properties disk image (default: properties.img)\n"
               "  -v, --virgl-props FILE   virgl properties disk image (default: properties_virgl.img)\n"
               "  -h, --help               show this help\n"
               "\n"
               "This is avm's slp/cvd2img-compatible interface; see avm-cvd2img(1).\n"
               "Exit status: 0 success, 1 runtime failure, 2 bad usage or bad input.\n",
               stdout);
        return 0;
      default:
        return avm_bad_option ("cvd2img", c, argv);
      }
  /* bootloader and manifest.json go next to the system disk.  */
  _cleanup_free_ char *sysdir = NULL;
  if (req.system_path && strchr (req.system_path, '/'))
    {
      sysdir = strdup (req.system_path);
      if (!sysdir)
        {
          _cleanup_error_ avm_error_t err = NULL;
          avm_error_sys (&err, ENOMEM, "cvd2img");
          return avm_error_report (&err);
        }
      req.out_dir = dirname (sysdir);
    }
  struct stat st;
  if (req.out_dir && stat (req.out_dir, &st) == 0 && !S_ISDIR (st.st_mode))
    return avm_usage_error ("cvd2img", "--system %s: %s is not a directory", req.system_path, req.out_dir);
  return run (&req, "cvd2img", argc - optind, argv + optind);
}

int
avm_cmd_cvd2img (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "output", required_argument, NULL, 'o' },
    { "arch", required_argument, NULL, 'a' },
    { "key", required_argument, NULL, 'k' },
    { "pubkey", required_argument, NULL, 'K' },
    { "profile", required_argument, NULL, 'p' },
    { "option", required_argument, NULL, 'O' },
    { "set", required_argument, NULL, OPT_SET },
    { "no-virgl", no_argument, NULL, 'V' },
    { "seed", required_argument, NULL, OPT_SEED },
    { "quiet", no_argument, NULL, 'q' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct avm_cvd2img_request req = { 0 };
  struct avm_argv options = { 0 }, sets = { 0 };
  int c, ret;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":o:a:p:O:qh", longopts, NULL)) != -1)
    switch (c)
      {
      case 'o':
        req.out_dir = optarg;
        break;
      case 'a':
        if (!(req.arch = parse_arch (optarg)))
          {
            ret = avm_usage_error ("cvd2img", "--arch %s: expected x86_64 or aarch64", optarg);
            goto out;
          }
        break;
      case 'k':
        req.key = optarg;
        break;
      case 'K':
        req.pubkey = optarg;
        break;
      case 'p':
        req.profile = optarg;
        break;
      case 'O':
        if (!strchr (optarg, '='))
          {
            ret = avm_usage_error ("cvd2img", "--option %s: expected NAME=CHOICE", optarg);
            goto out;
          }
        avm_argv_push (&options, optarg);
        break;
      case OPT_SET:
        if (!strchr (optarg, '='))
          {
            ret = avm_usage_error ("cvd2img", "--set %s: expected PATH=VALUE", optarg);
            goto out;
          }
        avm_argv_push (&sets, optarg);
        break;
      case 'V':
        req.no_virgl = true;
        break;
      case OPT_SEED:
        if (!*optarg)
          {
            ret = avm_usage_error ("cvd2img", "--seed: expected a non-empty string (e.g. the build ID)");
            goto out;
          }
        req.seed = optarg;
        break;
      case 'q':
        req.quiet = true;
        break;
      case 'h':
        avm_help_cvd2img (stdout);
        ret = 0;
        goto out;
      default:
        ret = avm_bad_option ("cvd2img", c, argv);
        goto out;
      }
  req.options = options.v;
  req.sets = sets.v;
  ret = run (&req, "cvd2img", argc - optind, argv + optind);
out:
  avm_argv_clear (&options);
  avm_argv_clear (&sets);
  return ret;
}
