/* SPDX-License-Identifier: Apache-2.0 */
/* Cuttlefish-shaped image sets (cfimage.h).  What is slow to make (an
   RSA-4096 key, five boot images) is made once per test run in
   /tmp/avm-test-cfimage-<runner pid>, under a lock, and hard-linked.  */
#include "cfimage.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Per release: the boot image's version and patch level, and
   shared/auto/android-info.txt of its DGC branch (A14Q2 = qpr2/qpr3; the
   build copies the file without its '#' lines).  */
static const struct release
{
  const char *name, *os_version, *patch_level, *android_info;
  bool vhalconfig; /* Host_Prebuilt_VehicleHal*Properties_JSON, from android15-qpr1 */
} releases[] = {
  { "android14", "14.0.0", "2023-06", "config=auto\n", false },
  { "android14-qpr2", "14.0.0", "2024-03", "config=auto\ngfxstream=supported\n", false },
  { "android15", "15.0.0", "2024-07", "config=auto\ngfxstream=supported\n", false },
  { "android15-qpr2", "15.0.0", "2024-12",
    "config=auto\ngfxstream=supported\ngfxstream_gl_program_binary_link_status=supported\nvhost_user_vsock=true\n",
    true },
  { "android16", "16.0.0", "2025-03",
    "config=auto\ngfxstream=supported\ngfxstream_gl_program_binary_link_status=supported\nvhost_user_vsock=true\n"
    "output_audio_streams_count=6\n",
    true },
};
#define NREL (sizeof releases / sizeof *releases)

/* The host tools avm starts, and the releases whose host package ships
   them (indexes into releases[], first..last): DGC build/Android.bp.  */
static const struct
{
  const char *name;
  unsigned first, last;
} host_tools[] = {
  { "adb_connector", 0, 4 },      { "config_server", 0, 3 },      { "gnss_grpc_proxy", 0, 4 },
  { "kernel_log_monitor", 0, 4 }, { "logcat_receiver", 0, 4 },    { "modem_simulator", 0, 4 },
  { "root-canal", 0, 4 },         { "secure_env", 0, 4 },         { "sensors_simulator", 4, 4 },
  { "socket_vsock_proxy", 0, 4 }, { "tcp_connector", 0, 4 },      { "tombstone_receiver", 0, 4 },
  { "vhal_proxy_server", 2, 4 },  { "vhost_device_vsock", 1, 4 },
};

/* Firmware QEMU can run, by preference.  */
static const char *const firmware_x86[]
    = { "/usr/lib/u-boot/qemu-x86_64/u-boot.rom", "/usr/share/seabios/bios-256k.bin" };
static const char *const firmware_arm[] = { "/usr/lib/u-boot/qemu_arm64/u-boot.bin" };

static const char icc_profile[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                                  "<!-- a stand-in for the host package's SIM profile -->\n"
                                  "<MF><EFDIR id=\"2F00\"/></MF>\n";

static char *
pj (const char *a, const char *b)
{
  char *s = NULL;
  cr_assert (asprintf (&s, "%s/%s", a, b) > 0);
  return s;
}

static void
mkdirs (const char *path)
{
  char buf[PATH_MAX];
  snprintf (buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/')
      {
        *p = '\0';
        mkdir (buf, 0755);
        *p = '/';
      }
  cr_assert (mkdir (buf, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", buf, strerror (errno));
}

static void
write_file (const char *path, const char *content, mode_t mode)
{
  char *tmp = NULL;
  cr_assert (asprintf (&tmp, "%s.tmp.%d", path, (int) getpid ()) > 0);
  int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  cr_assert (fd >= 0, "%s: %s", tmp, strerror (errno));
  size_t len = strlen (content);
  cr_assert_eq (write (fd, content, len), (ssize_t) len, "%s", tmp);
  cr_assert_eq (close (fd), 0);
  cr_assert_eq (rename (tmp, path), 0, "%s: %s", path, strerror (errno));
  free (tmp);
}

static void
copy_file (const char *from, const char *to, mode_t mode)
{
  int in = open (from, O_RDONLY | O_CLOEXEC), out = open (to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  cr_assert (in >= 0 && out >= 0, "copy %s %s: %s", from, to, strerror (errno));
  char buf[65536];
  ssize_t n;
  while ((n = read (in, buf, sizeof buf)) > 0)
    cr_assert_eq (write (out, buf, (size_t) n), n, "%s", to);
  cr_assert_eq (n, 0, "%s: %s", from, strerror (errno));
  close (in);
  cr_assert_eq (close (out), 0);
}

/* TO as a hard link to FROM (replacing TO), or a copy across file systems.  */
static void
link_or_copy (const char *from, const char *to)
{
  unlink (to);
  if (link (from, to) == 0)
    return;
  cr_assert (errno == EXDEV || errno == EPERM || errno == EMLINK, "link %s %s: %s", from, to, strerror (errno));
  struct stat st;
  cr_assert_eq (stat (from, &st), 0);
  copy_file (from, to, st.st_mode & 07777);
}

static pid_t
spawn_quiet (char *const argv[])
{
  posix_spawn_file_actions_t fa;
  pid_t pid;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 2, "/dev/null", O_WRONLY, 0);
  int r = posix_spawnp (&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  cr_assert_eq (r, 0, "%s: %s (tests/deps.sh installs it)", argv[0], strerror (r));
  return pid;
}

static void
wait_ok (pid_t pid, const char *what)
{
  int st;
  while (waitpid (pid, &st, 0) < 0)
    cr_assert_eq (errno, EINTR);
  cr_assert (WIFEXITED (st) && WEXITSTATUS (st) == 0, "%s failed (status 0x%x)", what, st);
}

static const char *
first_existing (const char *const paths[], size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (access (paths[i], R_OK) == 0)
      return paths[i];
  return NULL;
}

/* The shared part: avm-fakecf, key.pem, boot-RELEASE.img, bootloader-ARCH.  */
static void
make_shared (const char *d, const char *fakecf)
{
  char *bin = pj (d, "avm-fakecf"), *key = pj (d, "key.pem"), *kernel = pj (d, "kernel");
  copy_file (fakecf, bin, 0755);
  pid_t gen = spawn_quiet ((char *[]) { "openssl", "genrsa", "-out", key, "4096", NULL });
  char blob[4096];
  for (size_t i = 0; i < sizeof blob; i++)
    blob[i] = (char) (i * 131 + 7);
  blob[sizeof blob - 1] = '\0';
  write_file (kernel, blob, 0644);
  pid_t mk[NREL];
  char *boot[NREL];
  for (size_t r = 0; r < NREL; r++)
    {
      char *name = NULL;
      cr_assert (asprintf (&name, "boot-%s.img", releases[r].name) > 0);
      boot[r] = pj (d, name);
      free (name);
      /* Debian's mkbootimg writes header versions up to 3; os_version is at
         byte 16 in both v3 and v4.  */
      mk[r] = spawn_quiet ((char *[]) { "mkbootimg", "--kernel", kernel, "--header_version", "3", "--os_version",
                                        (char *) releases[r].os_version, "--os_patch_level",
                                        (char *) releases[r].patch_level, "-o", boot[r], NULL });
    }
  const char *x86 = first_existing (firmware_x86, 2), *arm = first_existing (firmware_arm, 1);
  cr_assert_not_null (x86, "no firmware for QEMU x86_64: install u-boot-qemu or seabios (tests/deps.sh)");
  char *blx = pj (d, "bootloader-x86_64"), *bla = pj (d, "bootloader-arm64");
  copy_file (x86, blx, 0644);
  if (arm)
    copy_file (arm, bla, 0644);
  for (size_t r = 0; r < NREL; r++)
    {
      wait_ok (mk[r], "mkbootimg");
      free (boot[r]);
    }
  wait_ok (gen, "openssl genrsa 4096");
  free (bin), free (key), free (kernel), free (blx), free (bla);
}

static const char *
shared_dir (void)
{
  static char *dir;
  if (dir)
    return dir;
  const char *fakecf = tu_fakecf ();
  char *d = tu_run_shared_dir ("cfimage");
  struct stat st;
  cr_assert (mkdir (d, 0700) == 0 || errno == EEXIST, "mkdir %s: %s", d, strerror (errno));
  cr_assert (lstat (d, &st) == 0 && S_ISDIR (st.st_mode) && st.st_uid == getuid (), "%s is not ours", d);
  char *lock = pj (d, ".lock"), *ready = pj (d, ".ready");
  int fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  cr_assert (fd >= 0 && flock (fd, LOCK_EX) == 0, "%s: %s", lock, strerror (errno));
  if (access (ready, F_OK) != 0)
    {
      make_shared (d, fakecf);
      write_file (ready, "", 0600);
    }
  flock (fd, LOCK_UN);
  close (fd);
  free (lock), free (ready);
  return dir = d;
}

char *
tu_cf_imageset (const char *dir, const char *release, const char *arch)
{
  size_t r = 0;
  while (r < NREL && strcmp (releases[r].name, release))
    r++;
  cr_assert (r < NREL, "unknown release %s", release);
  bool arm = !strcmp (arch, "arm64") || !strcmp (arch, "aarch64");
  cr_assert (arm || !strcmp (arch, "x86_64"), "unknown arch %s", arch);
  const char *sh = shared_dir ();
  char *bl_src = pj (sh, arm ? "bootloader-arm64" : "bootloader-x86_64");
  if (access (bl_src, R_OK) != 0)
    cr_skip_test ("no U-Boot for QEMU arm64: install u-boot-qemu (tests/deps.sh)");

  char *bin = pj (dir, "bin"), *etc = pj (dir, "etc");
  mkdirs (bin);
  char *fakecf = pj (sh, "avm-fakecf");
  for (size_t t = 0; t < sizeof host_tools / sizeof *host_tools; t++)
    if (r >= host_tools[t].first && r <= host_tools[t].last)
      {
        char *p = pj (bin, host_tools[t].name);
        link_or_copy (fakecf, p);
        free (p);
      }
  char *content = NULL, *p = pj (bin, ".fakecf-release");
  cr_assert (asprintf (&content, "%s\n", release) > 0);
  write_file (p, content, 0644);
  free (p), free (content);

  char *bldir = NULL;
  cr_assert (asprintf (&bldir, "%s/bootloader_%s", etc, arm ? "aarch64" : "x86_64") > 0);
  mkdirs (bldir);
  p = pj (bldir, "bootloader.qemu");
  link_or_copy (bl_src, p);
  free (p);

  /* The AVB test key: etc/cvd_avb_testkey.pem until android14-qpr3,
     cvd_avb_testkey_rsa4096.pem from android15 (DGC build/Android.bp).  */
  char *key = pj (sh, "key.pem");
  p = pj (etc, r >= 2 ? "cvd_avb_testkey_rsa4096.pem" : "cvd_avb_testkey.pem");
  link_or_copy (key, p);
  free (p);
  p = pj (dir, "avb_key.pem");
  link_or_copy (key, p);
  free (p);

  char *modem = pj (etc, "modem_simulator/files");
  mkdirs (modem);
  p = pj (modem, "iccprofile_for_sim0.xml");
  write_file (p, icc_profile, 0644);
  free (p);
  if (releases[r].vhalconfig)
    {
      static const char *const files[]
          = { "DefaultProperties.json", "TestProperties.json", "VendorClusterTestProperties.json" };
      char *vhal = pj (etc, "automotive/vhalconfig");
      mkdirs (vhal);
      for (size_t i = 0; i < 3; i++)
        {
          p = pj (vhal, files[i]);
          write_file (p, "{\n    \"apiVersion\": 1,\n    \"properties\": []\n}\n", 0644);
          free (p);
        }
      free (vhal);
    }

  p = pj (dir, "android-info.txt");
  write_file (p, releases[r].android_info, 0644);
  free (p);
  char *name = NULL;
  cr_assert (asprintf (&name, "boot-%s.img", release) > 0);
  char *boot = pj (sh, name), *dst = pj (dir, "boot.img");
  link_or_copy (boot, dst);
  free (name), free (boot), free (dst);
  p = pj (dir, "system.img");
  int fd = open (p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  cr_assert (fd >= 0 && ftruncate (fd, 64 << 20) == 0 && close (fd) == 0, "%s: %s", p, strerror (errno));
  free (p);
  free (bl_src), free (bin), free (etc), free (fakecf), free (bldir), free (key), free (modem);
  return strdup (dir);
}
