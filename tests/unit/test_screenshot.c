/* SPDX-License-Identifier: Apache-2.0 */
/*
 * avm screenshot and the picture of a failed boot, with real QEMU (TCG):
 *   - a QEMU without a guest (the fast test profile with a two-output
 *     virtio-gpu): QEMU draws its "not initialized" note; each output
 *     can be taken, one beyond them is bad usage (2), a profile without a
 *     GPU too; FILE, the default name, -o - into a pipe, an existing FILE
 *     left as it was when the picture fails, nothing left in the runtime
 *     directory;
 *   - the demo guest booted to READY: the picture has the profile's
 *     display.outputs[0] size and is not all one colour (the guest's
 *     text console);
 *   - a demo boot that times out, or shows a boot.failed pattern, leaves
 *     LOGDIR/boot-failed-*.png and names it in the error; without a guest,
 *     avm status names it while the stop goes on, and a QEMU that does not
 *     answer (stopped) costs the stop 2 s, not more;
 *   - no instance: exit 1.
 * PNGs are decoded here with zlib (8-bit RGB/RGBA, not interlaced: what
 * QEMU writes).
 */
#include "test_start.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static struct ts_env env;

static void
setup (void)
{
  ts_env_init (&env);
}

static void
teardown (void)
{
  ts_env_fini (&env);
}

TestSuite (screenshot, .init = setup, .fini = teardown);

/* ---- PNG ----------------------------------------------------------------- */

struct png
{
  unsigned width, height;
  bool one_colour;
  size_t differing; /* pixels not of the colour of the first */
};

static uint32_t
be32 (const unsigned char *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static unsigned char *
read_all (const char *path, size_t *len)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  cr_assert_geq (fd, 0, "%s: %s", path, strerror (errno));
  struct stat st;
  cr_assert_eq (fstat (fd, &st), 0);
  unsigned char *buf = malloc (st.st_size + 1);
  cr_assert_not_null (buf);
  size_t n = 0;
  while (n < (size_t) st.st_size)
    {
      ssize_t r = read (fd, buf + n, st.st_size - n);
      cr_assert_gt (r, 0, "%s: short read", path);
      n += r;
    }
  close (fd);
  *len = n;
  return buf;
}

static int
paeth (int a, int b, int c)
{
  int p = a + b - c, pa = abs (p - a), pb = abs (p - b), pc = abs (p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Check the PNG at PATH and decode it into P.  */
static void
png_read (const char *path, struct png *p)
{
  size_t len;
  unsigned char *buf = read_all (path, &len);
  static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  cr_assert (len > 33 && memcmp (buf, sig, 8) == 0, "%s: not a PNG", path);
  cr_assert (memcmp (buf + 12, "IHDR", 4) == 0, "%s: no IHDR first", path);
  *p = (struct png) { .width = be32 (buf + 16), .height = be32 (buf + 20) };
  unsigned depth = buf[24], ctype = buf[25], interlace = buf[28];
  cr_assert (depth == 8 && (ctype == 2 || ctype == 6) && interlace == 0,
             "%s: depth %u, colour type %u, interlace %u: not decoded here", path, depth, ctype, interlace);
  size_t bpp = ctype == 6 ? 4 : 3;

  /* The IDAT chunks, joined.  */
  unsigned char *z = malloc (len);
  size_t zlen = 0;
  cr_assert_not_null (z);
  for (size_t off = 8; off + 12 <= len;)
    {
      uint32_t clen = be32 (buf + off);
      cr_assert (off + 12 + clen <= len, "%s: truncated chunk", path);
      if (memcmp (buf + off + 4, "IDAT", 4) == 0)
        {
          memcpy (z + zlen, buf + off + 8, clen);
          zlen += clen;
        }
      if (memcmp (buf + off + 4, "IEND", 4) == 0)
        break;
      off += 12 + clen;
    }
  size_t stride = (size_t) p->width * bpp;
  uLongf rawlen = (uLongf) (stride + 1) * p->height;
  unsigned char *raw = malloc (rawlen);
  cr_assert_not_null (raw);
  cr_assert_eq (uncompress (raw, &rawlen, z, zlen), Z_OK, "%s: image data does not inflate", path);
  cr_assert_eq (rawlen, (uLongf) (stride + 1) * p->height, "%s: image data of the wrong size", path);

  /* Unfilter in place: row Y's pixels at raw + Y * (stride + 1) + 1.  */
  p->one_colour = true;
  unsigned char *prev = NULL;
  for (unsigned y = 0; y < p->height; y++)
    {
      unsigned char *row = raw + (size_t) y * (stride + 1);
      unsigned f = row[0];
      unsigned char *px = row + 1;
      cr_assert (f <= 4, "%s: filter type %u in row %u", path, f, y);
      for (size_t i = 0; i < stride; i++)
        {
          int a = i >= bpp ? px[i - bpp] : 0, b = prev ? prev[i] : 0, c = prev && i >= bpp ? prev[i - bpp] : 0;
          int pred = f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) / 2 : f == 4 ? paeth (a, b, c) : 0;
          px[i] = (unsigned char) (px[i] + pred);
        }
      for (size_t x = 0; x < p->width; x++)
        if (memcmp (px + x * bpp, raw + 1, bpp) != 0)
          p->differing++;
      prev = px;
    }
  p->one_colour = p->differing == 0;
  free (raw);
  free (z);
  free (buf);
}

/* ---- running avm screenshot ---------------------------------------------- */

/* Run `avm screenshot ARGS...` in the directory CWD with the test's
   instance directories; exit status, stdout and stderr.  PIPE: its
   standard output goes through a pipe into CWD/piped.png.  */
static int
shot_in (const char *cwd, bool pipe, char **out, char **err, const char *const *args)
{
  const char *argv[24];
  size_t n = 0;
  argv[n++] = "/bin/bash";
  argv[n++] = "-c";
  argv[n++] = pipe ? "set -o pipefail; cd \"$0\" && \"$@\" | cat > piped.png" : "cd \"$0\" && exec \"$@\"";
  argv[n++] = cwd;
  argv[n++] = tu_avm_bin ();
  argv[n++] = "screenshot";
  for (size_t i = 0; args && args[i] && n < 23; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  char *e1 = ts_fmt ("AVM_RUNTIME_DIR=%s", env.run), *e2 = ts_fmt ("AVM_STATE_DIR=%s", env.state);
  char *envv[] = { e1, e2, NULL };
  char *o = NULL, *e = NULL;
  int rc = tu_run ((char **) argv, envv, &o, &e);
  *out = ts_fmt ("%s", o ? o : "");
  *err = ts_fmt ("%s", e ? e : "");
  free (o);
  free (e);
  return rc;
}

#define SHOT(out, err, ...) shot_in (env.dir, false, out, err, (const char *const[]) { __VA_ARGS__, NULL })

/* Files of DIR whose names start with PREFIX.  */
static int
count_files (const char *dir, const char *prefix, char **first)
{
  DIR *d = opendir (dir);
  int n = 0;
  if (!d)
    return 0;
  for (struct dirent *de; (de = readdir (d));)
    if (strncmp (de->d_name, prefix, strlen (prefix)) == 0)
      {
        if (first && n == 0)
          *first = ts_fmt ("%s/%s", dir, de->d_name);
        n++;
      }
  closedir (d);
  return n;
}

static void
assert_file_is (const char *path, const char *content)
{
  char *s = tu_read (path);
  cr_assert_not_null (s, "%s is gone", path);
  cr_assert_str_eq (s, content, "%s was changed", path);
  free (s);
}

/* ---- tests --------------------------------------------------------------- */

Test (screenshot, no_instance)
{
  char *out, *err;
  int rc = SHOT (&out, &err, "-o", "x.png");
  cr_assert_eq (rc, 1, "exit %d: %s", rc, err);
  cr_assert (strstr (err, "instance 1 is not running"), "%s", err);
  cr_assert_eq (access (ts_fmt ("%s/x.png", env.dir), F_OK), -1);
  rc = SHOT (&out, &err, "--output", "x");
  cr_assert_eq (rc, 2, "exit %d: %s", rc, err);
}

/* QEMU without a guest and a two-output GPU: everything but what a guest
   draws, in a few seconds.  */
Test (screenshot, qemu_without_guest, .timeout = TU_TIMEOUT (120))
{
  struct ts_avm a;
  char *out, *err;
  int rc;
  ts_start (&env, &a, ts_profile (&env, "gpu", "{}", NULL, NULL), "--set", "display.gpu=virtio-gpu", "--set",
            "display.outputs=[{\"xres\":800,\"yres\":600},{\"xres\":640,\"yres\":480}]", NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", 60);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));

  /* Each output, to FILE; the path is printed.  QEMU draws its note at
     640x480 until a guest sets a mode.  */
  for (int k = 0; k < 2; k++)
    {
      char *file = ts_fmt ("%s/out%d.png", env.dir, k);
      rc = SHOT (&out, &err, "--output", k ? "1" : "0", "-o", file);
      cr_assert_eq (rc, 0, "output %d: exit %d: %s", k, rc, err);
      cr_assert_str_eq (out, ts_fmt ("%s\n", file));
      struct png p;
      png_read (file, &p);
      cr_assert (p.width == 640 && p.height == 480, "output %d: %ux%u", k, p.width, p.height);
      cr_assert_not (p.one_colour, "output %d: QEMU's note is missing", k);
    }

  /* An output beyond the GPU's: bad usage, and an existing FILE stays.  */
  char *written = tu_write (env.dir, "keep.png", "precious");
  char *keep = ts_fmt ("%s", written);
  free (written);
  rc = SHOT (&out, &err, "--output", "2", "-o", keep);
  cr_assert_eq (rc, 2, "exit %d: %s", rc, err);
  cr_assert (strstr (err, "--output 2: profile"), "%s", err);
  cr_assert (strstr (err, "has 2 display outputs (0..1)"), "%s", err);
  assert_file_is (keep, "precious");

  /* The default name, in the current directory.  */
  rc = SHOT (&out, &err, "-i", "1");
  cr_assert_eq (rc, 0, "exit %d: %s", rc, err);
  char *def = NULL;
  cr_assert_eq (count_files (env.dir, "avm-1-", &def), 1);
  cr_assert (strstr (out, "avm-1-") && strstr (out, ".png\n"), "%s", out);
  struct png p;
  png_read (def, &p);

  /* -o -: the PNG through a pipe, nothing else on stdout.  */
  rc = shot_in (env.dir, true, &out, &err, (const char *const[]) { "-o", "-", NULL });
  cr_assert_eq (rc, 0, "exit %d: %s", rc, err);
  png_read (ts_fmt ("%s/piped.png", env.dir), &p);
  cr_assert (p.width == 640 && p.height == 480);

  /* Nothing left behind in the runtime directory.  */
  cr_assert_eq (count_files (env.run1, "screenshot-", NULL), 0);

  cr_assert_eq (kill (a.pid, SIGTERM), 0);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));

  /* Gone: a runtime failure, FILE untouched.  */
  rc = SHOT (&out, &err, "-o", keep);
  cr_assert_eq (rc, 1, "exit %d: %s", rc, err);
  assert_file_is (keep, "precious");
}

/* No GPU (display.gpu none): bad usage.  */
Test (screenshot, no_gpu, .timeout = TU_TIMEOUT (120))
{
  struct ts_avm a;
  char *out, *err;
  ts_start (&env, &a, ts_profile (&env, "nogpu", "{}", NULL, NULL), NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", 60);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  int rc = SHOT (&out, &err, "-o", "x.png");
  cr_assert_eq (rc, 2, "exit %d: %s", rc, err);
  cr_assert (strstr (err, "has no GPU (display.gpu is none)"), "%s", err);
  cr_assert_eq (strchr (err, '\n'), err + strlen (err) - 1, "not one line: %s", err);
  cr_assert_eq (access (ts_fmt ("%s/x.png", env.dir), F_OK), -1);
  cr_assert_eq (kill (a.pid, SIGTERM), 0);
  cr_assert_eq (ts_wait (&a, 30), 0, "%s", ts_stderr (&a));
}

/* The demo guest at READY: its text console on the profile's output.  */
Test (screenshot, demo_guest, .timeout = TU_TIMEOUT (600))
{
  char *images = tu_demo_image ();
  char *img = ts_fmt ("%s", images);
  free (images);
  struct ts_avm a;
  ts_start (&env, &a, "demo", "--images", img, "--set", "machine.accel=tcg", NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", 300);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));

  char *out, *err, *file = ts_fmt ("%s/demo.png", env.dir);
  int rc = SHOT (&out, &err, "-o", file);
  cr_assert_eq (rc, 0, "exit %d: %s", rc, err);
  struct png p;
  png_read (file, &p);
  /* The profile's display.outputs[0].  */
  cr_assert (p.width == 1024 && p.height == 768, "%ux%u", p.width, p.height);
  rc = SHOT (&out, &err, "--output", "1");
  cr_assert_eq (rc, 2, "exit %d: %s", rc, err);
  cr_assert (strstr (err, "has 1 display output (0..0)"), "%s", err);
  char *status = NULL;
  cr_assert_eq (ts_avm (&env, &status, "status", "--json", NULL), 0);
  cr_assert_null (strstr (status, "boot_failure_screenshot"), "%s", status);
  cr_assert_eq (kill (a.pid, SIGTERM), 0);
  cr_assert_eq (ts_wait (&a, 60), 0, "%s", ts_stderr (&a));
  /* Last: what the guest drew, its text console: more than fbcon's cursor
     (8x2 pixels; it blinks), a few characters at least.  */
  cr_expect_gt (p.differing, 4 * 8 * 16,
                "the demo guest's screen is blank: %zu of %ux%u pixels differ from the background (the cursor?)",
                p.differing, p.width, p.height);
}

/* A failed boot: a picture in the log directory, named in the error.
   Table: how the boot fails, the exit status, the error's first words.  */
static const struct failed_case
{
  const char *name;
  const char *set;
  int exit;
  const char *error;
} failed_cases[] = {
  { "boot.timeout", "boot.timeout=2", 4, "avm: the guest did not boot within 2 s" },
  { "boot.failed pattern", "boot.failed=[\"AVM_DEMO: kernel\"]", 3,
    "avm: the guest reported a boot failure on console console: " },
};

Test (screenshot, failed_boot_picture, .timeout = TU_TIMEOUT (600))
{
  char *images = tu_demo_image ();
  char *img = ts_fmt ("%s", images);
  free (images);
  char *logs = ts_fmt ("%s/1/logs", env.state);
  for (size_t i = 0; i < sizeof failed_cases / sizeof failed_cases[0]; i++)
    {
      const struct failed_case *fc = &failed_cases[i];
      struct ts_avm a;
      char *pic = NULL;
      tu_rmtree (logs);
      ts_start (&env, &a, "demo", "--images", img, "--set", "machine.accel=tcg", "--set", fc->set, NULL);
      int rc = ts_wait (&a, 180);
      char *err = ts_stderr (&a);
      cr_assert_eq (rc, fc->exit, "%s: exit %d\n%s", fc->name, rc, err);
      cr_assert_eq (count_files (logs, "boot-failed-", &pic), 1, "%s:\n%s", fc->name, err);
      /* Named in the error, which comes last, after it.  */
      const char *fail = strstr (err, fc->error);
      cr_assert (fail, "%s:\n%s", fc->name, err);
      cr_assert (strstr (fail, ts_fmt ("\navm: the screen at the boot failure: %s\n", pic)), "%s:\n%s", fc->name, err);
      struct png p;
      png_read (pic, &p);
      cr_assert (p.width > 0 && p.height > 0);
      ts_avm_done (&a);
    }
}

/* The fast profile with a GPU and boot patterns but no guest: the boot
   times out after 1 s.  A helper that ignores SIGTERM (stop timeout 5 s)
   holds the stop up long enough for `avm status` to show the picture.  */
static char *
gpu_boot_profile (const char *name, int boot_timeout)
{
  char *svc = ts_fmt ("{\"stubborn\": {\"exec\": [\"%s\", \"ignore-term\", \"hang\"], \"stop_timeout\": 5}}", env.fake);
  return ts_profile (&env, name, svc, ts_boot (boot_timeout), NULL);
}

Test (screenshot, failed_boot_in_status, .timeout = TU_TIMEOUT (120))
{
  struct ts_avm a;
  ts_start (&env, &a, gpu_boot_profile ("bootshot", 1), "--set", "display.gpu=virtio-gpu", NULL);
  /* Stopping, the picture taken: avm status names it.  */
  json_t *st = NULL;
  const char *named = NULL;
  for (double end = ts_now () + 60; ts_now () < end && !named;)
    {
      char *out = NULL;
      if (ts_avm (&env, &out, "status", "--json", NULL) == 0 && out && (st = ts_json (out)))
        named = json_string_value (json_object_get (st, "boot_failure_screenshot"));
      if (!named)
        {
          json_decref (st);
          st = NULL;
          tu_sleep_ms (50);
        }
    }
  cr_assert_not_null (named, "avm status never named the picture:\n%s", ts_stderr (&a));
  cr_assert_str_eq (json_string_value (json_object_get (st, "state")), "stopping");
  char *pic = ts_fmt ("%s", named);
  json_decref (st);
  cr_assert (strncmp (pic, ts_fmt ("%s/1/logs/boot-failed-", env.state), strlen (env.state) + 20) == 0, "%s", pic);
  cr_assert_eq (ts_wait (&a, 60), 4, "%s", ts_stderr (&a));
  char *err = ts_stderr (&a);
  const char *fail = strstr (err, "avm: the guest did not boot within 1 s");
  cr_assert (fail && strstr (fail, ts_fmt ("\navm: the screen at the boot failure: %s\n", pic)), "%s", err);
  /* QEMU's note: the guest never set up the display.  */
  struct png p;
  png_read (pic, &p);
  cr_assert (p.width == 640 && p.height == 480 && !p.one_colour, "%ux%u", p.width, p.height);
}

/* A QEMU that does not answer (stopped) cannot hold the stop up: the
   picture is given up after 2 s, the stop goes on.  */
Test (screenshot, failed_boot_hung_qemu, .timeout = TU_TIMEOUT (120))
{
  struct ts_avm a;
  ts_start (&env, &a, gpu_boot_profile ("hung", 3), "--set", "display.gpu=virtio-gpu", "--set",
            "services.stubborn.stop_timeout=1", NULL);
  ts_wait_notify (&a, "STATUS=booting", 60);
  pid_t q = ts_qemu_pid (&env);
  cr_assert_gt (q, 0);
  cr_assert_eq (kill (q, SIGSTOP), 0);
  double t0 = ts_now ();
  cr_assert_eq (ts_wait (&a, 60), 4, "%s", ts_stderr (&a));
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, "avm: no picture of the screen at the boot failure: screenshot of output 0: QEMU did not "
                          "answer within 2.0 s"),
             "%s", err);
  cr_assert_null (strstr (err, "the screen at the boot failure: /"), "%s", err);
  char *logs = ts_fmt ("%s/1/logs", env.state);
  cr_assert_eq (count_files (logs, "boot-failed-", NULL), 0);
  /* Boot timeout (3 s from QEMU's start), 2 s for the picture, then quit,
     SIGTERM and SIGKILL 5 s apart (a stopped QEMU answers none), the
     helper's 1 s: well under the minute.  */
  cr_assert_lt (ts_now () - t0, 30);
}
