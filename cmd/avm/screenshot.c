/* SPDX-License-Identifier: Apache-2.0 */
/* avm screenshot: a PNG of a running instance's screen.  The supervisor
   has QEMU write it into the runtime directory (lib/supervise/screenshot.c);
   this copies it where the user wants it and removes it there.  */
#include "avm.h"
#include "plan/plan.h"
#include "supervise/control_client.h"
#include "supervise/rundir.h"
#include "util/cleanup.h"
#include "util/escape.h"
#include "util/fs.h"
#include "util/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Largest picture copied: 16 heads of 4K, uncompressed, with room.  */
#define MAX_PNG (256u << 20)

void
avm_help_screenshot (FILE *out)
{
  fputs ("Usage: avm screenshot [OPTIONS]\n"
         "\n"
         "Save a PNG picture of a running instance's screen (one display output of\n"
         "its GPU), taken by QEMU (screendump; QEMU 7.1 or later), and print the\n"
         "path written.\n"
         "\n"
         "  -i, --instance N   instance number 1..64 (default 1)\n"
         "  -o, --output-file FILE\n"
         "                     write the PNG to FILE (replaced atomically; default\n"
         "                     avm-N-YYYYmmdd-HHMMSS.png here); - for stdout\n"
         "      --output K     display output K, from 0 (default 0)\n"
         "  -h, --help         show this help\n"
         "\n"
         "Exit status: 0 written, 1 failure (not running, QEMU not ready, QEMU\n"
         "error), 2 bad usage (no such output, no GPU).\n"
         "See avm-screenshot(1).\n",
         out);
}

/* The path the supervisor named must be its own file in the runtime
   directory DIR: nothing else is read (or removed) on its word.  */
static bool
path_is_ours (const char *dir, const char *path)
{
  size_t n = strlen (dir);
  return strncmp (path, dir, n) == 0 && path[n] == '/' && strncmp (path + n + 1, "screenshot-", 11) == 0
         && !strchr (path + n + 1, '/');
}

static int
write_all (int fd, const char *p, size_t len)
{
  while (len > 0)
    {
      ssize_t w = write (fd, p, len);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return -errno;
      p += w;
      len -= (size_t) w;
    }
  return 0;
}

int
avm_cmd_screenshot (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "instance", required_argument, NULL, 'i' },
    { "output-file", required_argument, NULL, 'o' },
    { "output", required_argument, NULL, OPT_OUTPUT },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  _cleanup_error_ avm_error_t err = NULL;
  int instance = 1, c;
  long output = 0;
  const char *file = NULL;
  char *end;

  if (avm_instance_default ("screenshot", &instance) < 0)
    return AVM_EXIT_USAGE;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, "+:i:o:h", longopts, NULL)) != -1)
    switch (c)
      {
      case 'i':
        if (avm_parse_instance ("screenshot", optarg, &instance) < 0)
          return AVM_EXIT_USAGE;
        break;
      case 'o':
        if (!*optarg)
          return avm_usage_error ("screenshot", "-o: empty file name");
        file = optarg;
        break;
      case OPT_OUTPUT:
        errno = 0;
        output = strtol (optarg, &end, 10);
        if (errno || *end || end == optarg || output < 0 || output > 15)
          return avm_usage_error ("screenshot", "--output %s: expected a display output number 0..15", optarg);
        break;
      case 'h':
        avm_help_screenshot (stdout);
        return 0;
      default:
        return avm_bad_option ("screenshot", c, argv);
      }
  if (optind < argc)
    return avm_usage_error ("screenshot", "unexpected argument \"%s\"", argv[optind]);

  _cleanup_free_ char *dir = NULL, *sock = NULL;
  pid_t pid = 0;
  int r = avm_instance_running ("screenshot", instance, "", &dir, &sock, &pid);
  if (r <= 0)
    return r < 0 ? -r : AVM_EXIT_FAILURE;

  /* The default name, from the time of the request.  */
  _cleanup_free_ char *def = NULL;
  if (!file)
    {
      char stamp[32];
      time_t now = time (NULL);
      struct tm tm;
      strftime (stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime_r (&now, &tm));
      if (asprintf (&def, "avm-%d-%s.png", instance, stamp) < 0)
        def = NULL;
      if (!def)
        {
          avm_error_sys (&err, ENOMEM, "screenshot");
          return avm_error_report (&err);
        }
      file = def;
    }

  _cleanup_json_ json_t *req = json_pack ("{s:s, s:i}", "command", "screenshot", "output", (int) output);
  _cleanup_json_ json_t *reply = NULL;
  if (!req)
    {
      avm_error_sys (&err, ENOMEM, "screenshot");
      return avm_error_report (&err);
    }
  r = avm_control_call (sock, req, &reply, 5000, &err);
  if (r < 0)
    {
      avm_error_prefix (&err, "instance %d (pid %d)", instance, (int) pid);
      return avm_error_report (&err);
    }
  if (!json_is_true (json_object_get (reply, "ok")))
    {
      json_int_t code = json_integer_value (json_object_get (reply, "exit_code"));
      avm_fprintf_escaped (stderr, "avm screenshot: instance %d: %s\n", instance,
                           json_string_value (json_object_get (reply, "error")) ?: "request refused");
      return code == AVM_EXIT_USAGE ? AVM_EXIT_USAGE : AVM_EXIT_FAILURE;
    }
  const char *src = json_string_value (json_object_get (reply, "path"));
  if (!src || !path_is_ours (dir, src))
    {
      avm_fprintf_escaped (stderr, "avm screenshot: instance %d: unexpected reply (path %s)\n", instance,
                           src ? src : "missing");
      return AVM_EXIT_FAILURE;
    }

  _cleanup_free_ char *png = NULL;
  size_t len = 0;
  r = avm_read_file_nofollow (src, MAX_PNG, "screenshot", &png, &len, &err);
  unlink (src);
  if (r < 0)
    {
      err->exit_code = AVM_EXIT_FAILURE;
      return avm_error_report (&err);
    }
  if (streq (file, "-"))
    {
      r = write_all (STDOUT_FILENO, png, len);
      if (r < 0)
        {
          avm_error_sys (&err, -r, "screenshot: standard output");
          return avm_error_report (&err);
        }
      return AVM_EXIT_OK;
    }
  mode_t mask = umask (0);
  umask (mask);
  if (avm_write_file_atomic (file, png, len, 0666 & ~mask, &err) < 0)
    return avm_error_report (&err);
  avm_fprintf_escaped (stdout, "%s\n", file);
  return AVM_EXIT_OK;
}
