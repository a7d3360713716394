/* SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"
#include <pty.h>

#include <criterion/criterion.h>
#include <sys/file.h>
#include <errno.h>
#include <time.h>
#include <glob.h>
#include <limits.h>
#include <stdbool.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

const char *
tu_srcdir (void)
{
  const char *s = getenv ("AVM_SRCDIR");
  return s ? s : ".";
}

const char *
tu_avm_bin (void)
{
  const char *s = getenv ("AVM_BIN");
  return s ? s : "./avm";
}

const char *
tu_fakecf (void)
{
  const char *s = getenv ("AVM_FAKECF");
  if (!s || !*s)
    cr_skip_test ("AVM_FAKECF is not set (run through make check)");
  return s;
}

char *
tu_tmpdir (void)
{
  char *t = strdup ("/tmp/avm-test-XXXXXX");
  if (!mkdtemp (t))
    abort ();
  return t;
}

static int
rm_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) st;
  (void) flag;
  (void) ftw;
  return remove (path);
}

void
tu_rmtree (const char *dir)
{
  if (dir)
    nftw (dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *
tu_write (const char *dir, const char *name, const char *content)
{
  char *path = NULL;
  if (asprintf (&path, "%s/%s", dir, name) < 0)
    abort ();
  mkdir (dir, 0755);
  FILE *f = fopen (path, "w");
  if (!f)
    abort ();
  fputs (content, f);
  fclose (f);
  return path;
}

char *
tu_read (const char *path)
{
  FILE *f = fopen (path, "r");
  if (!f)
    return NULL;
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream (&buf, &len);
  char chunk[8192];
  size_t n;
  while ((n = fread (chunk, 1, sizeof chunk, f)) > 0)
    fwrite (chunk, 1, n, m);
  fclose (m);
  fclose (f);
  return buf;
}

int
tu_run (char *const argv[], char *const env[], char **out, char **err)
{
  int po[2], pe[2];
  pid_t pid;
  posix_spawn_file_actions_t fa;
  size_t nenv = 0, nextra = 0;
  while (environ[nenv])
    nenv++;
  while (env && env[nextra])
    nextra++;
  char **envp = calloc (nenv + nextra + 1, sizeof *envp);
  size_t k = 0;
  for (size_t i = 0; i < nenv; i++)
    {
      /* drop variables that ENV overrides */
      const char *eq = strchr (environ[i], '=');
      size_t klen = eq ? (size_t) (eq - environ[i]) : strlen (environ[i]);
      int overridden = 0;
      for (size_t j = 0; j < nextra; j++)
        if (strncmp (env[j], environ[i], klen) == 0 && (env[j][klen] == '=' || env[j][klen] == '\0'))
          overridden = 1;
      if (!overridden)
        envp[k++] = environ[i];
    }
  for (size_t j = 0; j < nextra; j++)
    if (strchr (env[j], '='))
      envp[k++] = env[j];
  envp[k] = NULL;

  if (pipe2 (po, O_CLOEXEC) < 0 || pipe2 (pe, O_CLOEXEC) < 0)
    abort ();
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2 (&fa, po[1], 1);
  posix_spawn_file_actions_adddup2 (&fa, pe[1], 2);
  int r = posix_spawnp (&pid, argv[0], &fa, NULL, argv, envp);
  posix_spawn_file_actions_destroy (&fa);
  free (envp);
  close (po[1]);
  close (pe[1]);
  if (r != 0)
    {
      close (po[0]);
      close (pe[0]);
      if (out)
        *out = strdup ("");
      if (err)
        *err = strdup (strerror (r));
      return 127;
    }
  char *bufs[2] = { NULL, NULL };
  size_t lens[2] = { 0, 0 };
  FILE *ms[2] = { open_memstream (&bufs[0], &lens[0]), open_memstream (&bufs[1], &lens[1]) };
  struct pollfd pfd[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
  int open_fds = 2;
  while (open_fds > 0)
    {
      if (poll (pfd, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      for (int i = 0; i < 2; i++)
        {
          if (pfd[i].fd < 0 || !pfd[i].revents)
            continue;
          char chunk[8192];
          ssize_t n = read (pfd[i].fd, chunk, sizeof chunk);
          if (n <= 0)
            {
              close (pfd[i].fd);
              pfd[i].fd = -1;
              open_fds--;
            }
          else
            fwrite (chunk, 1, n, ms[i]);
        }
    }
  fclose (ms[0]);
  fclose (ms[1]);
  int status;
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (out)
    *out = bufs[0];
  else
    free (bufs[0]);
  if (err)
    *err = bufs[1];
  else
    free (bufs[1]);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

int
tu_avmv_as (const char *bin, char *const args[], char **out, char **err)
{
  char *argv[64];
  size_t n = 0;
  argv[n++] = (char *) bin;
  for (size_t i = 0; args[i] && n < 63; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  char cache[128], config[128];
  snprintf (cache, sizeof cache, "XDG_CACHE_HOME=/tmp/avm-test-cache-%u", (unsigned) getuid ());
  snprintf (config, sizeof config, "XDG_CONFIG_HOME=/tmp/avm-test-config-%u", (unsigned) getuid ());
  char *env[] = { cache, config, NULL };
  return tu_run (argv, env, out, err);
}

int
tu_avmv (char *const args[], char **out, char **err)
{
  return tu_avmv_as (tu_avm_bin (), args, out, err);
}

int
tu_avm (char **out, char **err, ...)
{
  char *args[64];
  size_t n = 0;
  va_list ap;
  va_start (ap, err);
  char *a;
  while ((a = va_arg (ap, char *)) && n < 63)
    args[n++] = a;
  va_end (ap);
  args[n] = NULL;
  return tu_avmv (args, out, err);
}

char *
tu_replace (char *s, const char *from, const char *to)
{
  if (!s || !*from)
    return s;
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream (&buf, &len);
  size_t fl = strlen (from);
  for (const char *p = s;;)
    {
      const char *hit = strstr (p, from);
      if (!hit)
        {
          fputs (p, m);
          break;
        }
      fwrite (p, 1, hit - p, m);
      fputs (to, m);
      p = hit + fl;
    }
  fclose (m);
  free (s);
  return buf;
}

/* Criterion re-executes the test binary for each test: a worker's parent is
   the runner, running the same executable.  */
static pid_t runner_pid;

static bool
same_exe (pid_t a, pid_t b)
{
  char pa[64], pb[64], ta[PATH_MAX], tb[PATH_MAX];
  snprintf (pa, sizeof pa, "/proc/%d/exe", (int) a);
  snprintf (pb, sizeof pb, "/proc/%d/exe", (int) b);
  ssize_t na = readlink (pa, ta, sizeof ta - 1), nb = readlink (pb, tb, sizeof tb - 1);
  return na > 0 && na == nb && memcmp (ta, tb, na) == 0;
}

__attribute__ ((constructor)) static void
find_runner (void)
{
  runner_pid = same_exe (getpid (), getppid ()) ? getppid () : getpid ();
}

char *
tu_run_shared_dir (const char *tag)
{
  char *d = NULL;
  if (asprintf (&d, "/tmp/avm-test-%s-%d", tag, (int) runner_pid) < 0)
    abort ();
  return d;
}

__attribute__ ((destructor)) static void
remove_shared_dirs (void)
{
  if (getpid () != runner_pid)
    return;
  char *pattern = NULL;
  glob_t g;
  if (asprintf (&pattern, "/tmp/avm-test-*-%d", (int) runner_pid) < 0)
    return;
  if (glob (pattern, GLOB_NOSORT, NULL, &g) == 0)
    {
      for (size_t i = 0; i < g.gl_pathc; i++)
        {
          struct stat st;
          if (lstat (g.gl_pathv[i], &st) == 0 && S_ISDIR (st.st_mode) && st.st_uid == getuid ())
            tu_rmtree (g.gl_pathv[i]);
        }
      globfree (&g);
    }
  free (pattern);
}

long long
tu_next_data (const char *path, long long off)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  off_t d = lseek (fd, off, SEEK_DATA);
  if (d < 0 && errno == ENXIO)
    d = lseek (fd, 0, SEEK_END);
  close (fd);
  return d;
}

long long
tu_next_hole (const char *path, long long off)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  off_t h = lseek (fd, off, SEEK_HOLE);
  close (fd);
  return h;
}

static char *
tu_join (const char *a, const char *b)
{
  char *s = NULL;
  if (asprintf (&s, "%s/%s", a, b) < 0)
    abort ();
  return s;
}

/* Not the BUILD=... of a `make check` this runs under: the images are
   always in build/.  */
int
tu_make_locked (const char *target, const char *lock_name, char **out, char **err)
{
  const char *src = tu_srcdir ();
  char *lock = tu_join (src, lock_name);
  char *build = tu_join (src, "build");
  mkdir (build, 0755);
  int fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  cr_assert_geq (fd, 0, "%s: %s", lock, strerror (errno));
  cr_assert_eq (flock (fd, LOCK_EX), 0);
  char *argv[] = { "make", "-s", "-C", (char *) src, "BUILD=build", (char *) target, NULL };
  char *env[] = { "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", NULL };
  int r = tu_run (argv, env, out, err);
  flock (fd, LOCK_UN);
  close (fd);
  free (lock);
  free (build);
  return r;
}

/* The demo guest's images in $AVM_SRCDIR/build/demo, built first (make
   demo-image, under a lock shared by parallel tests) when missing or out of
   date; skips the test when the kernel or busybox is not installed.  */
char *
tu_demo_image (void)
{
  glob_t g;
  bool kernel = glob ("/boot/vmlinuz-*", 0, NULL, &g) == 0;
  globfree (&g);
  if (!kernel)
    cr_skip_test ("no /boot/vmlinuz-*: install linux-image-amd64 to boot the demo guest");
  if (access ("/bin/busybox", X_OK) != 0)
    cr_skip_test ("no /bin/busybox: install busybox-static to build the demo guest");

  char *out = NULL, *err = NULL;
  int r = tu_make_locked ("demo-image", "build/.demo-image.lock", &out, &err);
  cr_assert_eq (r, 0, "make demo-image failed (%d): %s%s", r, out, err);
  free (out);
  free (err);
  return tu_join (tu_srcdir (), "build/demo");
}

/* The arm64 demo guest's images in $AVM_SRCDIR/build/demo-arm64 (make
   demo-image-arm64: Debian's arm64 packages, downloaded once); skips the
   test when qemu-system-aarch64 is missing or the packages cannot be had
   (the reason tests/demo/fetch-arm64.sh left in debs/unavailable).  */
char *
tu_demo_image_arm64 (void)
{
  char *qv[] = { "qemu-system-aarch64", "--version", NULL };
  char *noenv[] = { NULL };
  char *out = NULL, *err = NULL;
  int qr = tu_run (qv, noenv, &out, &err);
  free (out);
  free (err);
  out = err = NULL;
  if (qr != 0)
    cr_skip_test ("no qemu-system-aarch64: install qemu-system-arm to boot the arm64 demo guest");

  const char *src = tu_srcdir ();
  int r = tu_make_locked ("demo-image-arm64", "build/.demo-image-arm64.lock", &out, &err);
  if (r != 0)
    {
      char *why_path = tu_join (src, "build/demo-arm64/debs/unavailable");
      char *why = tu_read (why_path);
      free (why_path);
      if (why)
        {
          why[strcspn (why, "\n")] = '\0';
          cr_skip_test ("the arm64 demo guest's packages cannot be had: %s", why);
        }
    }
  cr_assert_eq (r, 0, "make demo-image-arm64 failed (%d): %s%s", r, out, err);
  free (out);
  free (err);
  return tu_join (src, "build/demo-arm64");
}

void
tu_sleep_ms (int ms)
{
  struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
  nanosleep (&ts, NULL);
}

void
tu_assert_err_has (avm_error_t err, const char *needle)
{
  cr_assert_not_null (err);
  cr_assert (strstr (err->msg, needle), "\"%s\" not in error message: %s", needle, err->msg);
}

void
tu_flip_bits (const char *path, long long off, unsigned char mask)
{
  int fd = open (path, O_RDWR | O_CLOEXEC);
  cr_assert_geq (fd, 0, "%s: %s", path, strerror (errno));
  unsigned char b;
  cr_assert_eq (pread (fd, &b, 1, off), 1, "%s", path);
  b ^= mask;
  cr_assert_eq (pwrite (fd, &b, 1, off), 1, "%s", path);
  close (fd);
}

const char *
tu_fake_helpers (void)
{
  static char *dir;
  static const char *const tools[] = { "kernel_log_monitor", "logcat_receiver",    "secure_env",
                                       "modem_simulator",    "root-canal",         "tcp_connector",
                                       "socket_vsock_proxy", "adb_connector",      "gnss_grpc_proxy",
                                       "tombstone_receiver", "vhal_proxy_server",  "sensors_simulator",
                                       "config_server",      "vhost_device_vsock", "vhost-user-gpu",
                                       "vhost-device-video", "virtiofsd",          NULL };
  if (dir)
    return dir;
  dir = tu_run_shared_dir ("helpers");
  if (mkdir (dir, 0700) < 0 && errno != EEXIST)
    abort ();
  for (size_t i = 0; tools[i]; i++)
    {
      char *p = NULL;
      if (asprintf (&p, "%s/%s", dir, tools[i]) < 0 || (symlink ("/bin/true", p) < 0 && errno != EEXIST))
        abort ();
      free (p);
    }
  return dir;
}

void
tu_test_firmware (const char *arch, const char *path)
{
  static const char msg[] = "U-Boot 2024.01 (avm test firmware)\r\n"
                            "VIRTUAL_DEVICE_BOOT_STARTED\r\n"
                            "init: starting service 'adbd'...\r\n"
                            "VIRTUAL_DEVICE_BOOT_COMPLETED\r\n";
  static unsigned char rom[65536];
  memset (rom, 0, sizeof rom);
  if (strcmp (arch, "aarch64") == 0)
    {
      /* virt: -bios is flash at 0, where the CPU starts (EL1, MMU off).
           0  adr  x0, msg          (0x40)
           4  movz x1, #0x0900, lsl #16   the PL011 at 0x09000000
           8  movz w3, #0x301       UARTEN | TXE | RXE
          12  str  w3, [x1, #0x30]  UARTCR
          16  ldrb w2, [x0], #1     loop:
          20  cbz  w2, done
          24  strb w2, [x1]         UARTDR
          28  b    loop
          32  wfi                   done:
          36  b    done  */
      static const uint32_t code[] = { 0x10000200, 0xD2A12001, 0x52806023, 0xB9003023, 0x38401402,
                                       0x34000062, 0x39000022, 0x17FFFFFD, 0xD503207F, 0x17FFFFFF };
      for (size_t i = 0; i < sizeof code / sizeof code[0]; i++)
        for (int b = 0; b < 4; b++)
          rom[i * 4 + b] = (unsigned char) (code[i] >> (8 * b));
      memcpy (rom + 0x40, msg, sizeof msg);
    }
  else
    {
      /* pc: the last 64 KiB below 1 MiB; reset at F000:FFF0.
           FFF0  jmp far F000:E000
           E000  cli; mov ax, cs; mov ds, ax; mov si, E100h; mov dx, 3F8h
           E00B  lodsb; test al, al; jz E013; out dx, al; jmp E00B
           E013  hlt; jmp E013  */
      static const unsigned char code[] = { 0xFA, 0x8C, 0xC8, 0x8E, 0xD8, 0xBE, 0x00, 0xE1, 0xBA, 0xF8, 0x03,
                                            0xAC, 0x84, 0xC0, 0x74, 0x03, 0xEE, 0xEB, 0xF8, 0xF4, 0xEB, 0xFD };
      static const unsigned char reset[] = { 0xEA, 0x00, 0xE0, 0x00, 0xF0 };
      memset (rom, 0xFF, sizeof rom);
      memcpy (rom + 0xE000, code, sizeof code);
      memcpy (rom + 0xE100, msg, sizeof msg);
      memcpy (rom + 0xFFF0, reset, sizeof reset);
    }
  FILE *f = fopen (path, "w");
  if (!f || fwrite (rom, 1, sizeof rom, f) != sizeof rom || fclose (f) != 0)
    abort ();
}

/* Run ARGV with environment ENVP, stderr on a terminal (stdin and stdout
   /dev/null): what the terminal shows (malloc'd), *RC the exit status.
   Skips the test when no pty can be had.  */
char *
tu_run_on_pty (char *const argv[], char *const envp[], int *rc)
{
  int master, slave;
  if (openpty (&master, &slave, NULL, NULL, NULL) < 0)
    cr_skip_test ("openpty: %s", strerror (errno));
  fcntl (master, F_SETFD, FD_CLOEXEC);
  fcntl (slave, F_SETFD, FD_CLOEXEC);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2 (&fa, slave, 2);
  pid_t pid;
  int r = posix_spawn (&pid, argv[0], &fa, NULL, argv, envp);
  posix_spawn_file_actions_destroy (&fa);
  close (slave);
  cr_assert_eq (r, 0, "spawn %s: %s", argv[0], strerror (r));
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream (&buf, &len);
  char chunk[4096];
  for (;;)
    {
      ssize_t got = read (master, chunk, sizeof chunk);
      if (got < 0 && errno == EINTR)
        continue;
      if (got <= 0)
        break; /* EIO once the child closed the slave */
      fwrite (chunk, 1, got, m);
    }
  fclose (m);
  close (master);
  int st;
  while (waitpid (pid, &st, 0) < 0)
    cr_assert_eq (errno, EINTR);
  *rc = WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
  return buf;
}

char *
tu_container_image (void)
{
  static const char *const bases[] = { "docker.io/library/debian:bookworm", "docker.io/library/debian:bookworm-slim" };
  if (access ("/usr/bin/podman", X_OK) != 0)
    cr_skip_test ("no podman (Debian package podman)");
  for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++)
    {
      char *argv[] = { "podman", "image", "exists", (char *) bases[i], NULL };
      if (tu_run (argv, NULL, NULL, NULL) != 0)
        cr_skip_test ("no %s in podman's storage and no container registry reachable here: "
                      "tests/tools/container-base.sh makes it with debootstrap",
                      bases[i]);
    }
  char *out = NULL, *err = NULL;
  int r = tu_make_locked ("container-image", "build/.container-image.lock", &out, &err);
  cr_assert_eq (r, 0, "make container-image failed (%d):\n%s%s", r, out ? out : "", err ? err : "");
  free (out);
  free (err);
  char *path = NULL;
  cr_assert_geq (asprintf (&path, "%s/build/container-image.id", tu_srcdir ()), 0);
  char *id = tu_read (path);
  cr_assert_not_null (id, "no %s after make container-image", path);
  free (path);
  id[strcspn (id, "\n")] = '\0';
  cr_assert (*id, "empty build/container-image.id");
  return id;
}

char *
tu_fmt (const char *f, ...)
{
  va_list ap;
  char *s = NULL;
  va_start (ap, f);
  cr_assert_geq (vasprintf (&s, f, ap), 0);
  va_end (ap);
  return s;
}

int
tu_podman (char **out, char **err, ...)
{
  char *argv[32] = { "podman" };
  size_t n = 1;
  va_list ap;
  va_start (ap, err);
  for (char *a; (a = va_arg (ap, char *)) && n < 31;)
    argv[n++] = a;
  va_end (ap);
  argv[n] = NULL;
  char *conf = tu_fmt ("CONTAINERS_CONF=%s/containers/containers.conf", tu_srcdir ());
  char *env[] = { conf, NULL };
  char *o = NULL, *e = NULL;
  int r = tu_run (argv, env, &o, &e);
  free (conf);
  if (out)
    *out = o;
  else
    free (o);
  if (err)
    *err = e;
  else
    free (e);
  return r;
}
