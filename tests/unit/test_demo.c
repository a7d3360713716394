/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The demo guest (tests/demo/README.md) booted for real under TCG: the
 * Debian kernel and the busybox initramfs of `make demo-image`, found in
 * $AVM_SRCDIR/build/demo (built there first, under a lock, when missing or
 * out of date).
 *
 *   plain     QEMU alone: console and report ports on a virtio-serial
 *             device, no GPU, no share, no disk; the guest reports them
 *             absent, still completes its boot, then ticks every second.
 *   backends  the real helpers: virtiofsd sharing build/demo/share, and
 *             vhost-user-gpu; the data disk (snapshot=on), where the guest
 *             writes its boot token and its ticks and reads them back.
 *             QEMU before 8.0 refuses vhost-user-gpu without KVM ("vhost
 *             initialization failed: requires kvm"); then the GPU is
 *             QEMU's own virtio-gpu-pci (an info line says so: not a
 *             warning, which would fail the run).  The guest's
 *             screen (fbcon on virtio-gpu) shows its banner and report
 *             (QMP screendump); a key and a tablet click sent with QMP
 *             input-send-event are echoed on the console and the screen.
 *
 * Both end with QMP system_powerdown, after which QEMU must exit within
 * 10 s (the guest's acpid handles the ACPI power button).  Skipped only when
 * the kernel (linux-image-amd64) or busybox-static is not installed.
 */
#include "testutil.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QEMU "qemu-system-x86_64"
#define VHOST_USER_GPU "/usr/lib/qemu/vhost-user-gpu"
#define VIRTIOFSD "/usr/lib/qemu/virtiofsd"
#define MARKER_OK "VIRTUAL_DEVICE_BOOT_COMPLETED"
#define MARKER_FAILED "VIRTUAL_DEVICE_BOOT_FAILED"
#define BOOT_TIMEOUT 70.0
#define POWERDOWN_TIMEOUT 10.0

/* Processes this test started (killed by the fini if still running).  */
static pid_t procs[8];
static size_t nprocs;
static char *tmp;
/* Strings made by fmt, freed by the fini.  */
static char *garbage[96];
static size_t ngarbage;

static void
kill_all (void)
{
  for (size_t i = 0; i < nprocs; i++)
    if (procs[i] > 0)
      {
        kill (procs[i], SIGKILL);
        waitpid (procs[i], NULL, 0);
        procs[i] = 0;
      }
  nprocs = 0;
}

static void
teardown (void)
{
  kill_all ();
  tu_rmtree (tmp);
  free (tmp);
  tmp = NULL;
  while (ngarbage > 0)
    free (garbage[--ngarbage]);
}

static void
setup (void)
{
  tmp = tu_tmpdir ();
}

TestSuite (demo, .init = setup, .fini = teardown);

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
nap (void)
{
  struct timespec ts = { 0, 100 * 1000 * 1000 };
  nanosleep (&ts, NULL);
}

/* A formatted string, freed by the fini.  */
static char *
pj (const char *a, const char *b)
{
  return tu_fmt ("%s/%s", a, b);
}

/* Start ARGV (argv[0] a path, or a name in $PATH) with stdin /dev/null and
   stdout+stderr to LOG; killed when this process dies.  */
static pid_t
spawn (char *const argv[], const char *log)
{
  pid_t parent = getpid ();
  pid_t pid = fork ();
  cr_assert_geq (pid, 0, "fork: %s", strerror (errno));
  if (pid == 0)
    {
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      if (getppid () != parent)
        _exit (127);
      int in = open ("/dev/null", O_RDONLY);
      int out = open (log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (in < 0 || out < 0 || dup2 (in, 0) < 0 || dup2 (out, 1) < 0 || dup2 (out, 2) < 0)
        _exit (127);
      execvp (argv[0], argv);
      _exit (127);
    }
  if (nprocs < sizeof procs / sizeof procs[0])
    procs[nprocs++] = pid;
  return pid;
}

/* Reap PID if it has exited: its wait status in *STATUS.  */
static bool
exited (pid_t pid, int *status)
{
  if (waitpid (pid, status, WNOHANG) != pid)
    return false;
  for (size_t i = 0; i < nprocs; i++)
    if (procs[i] == pid)
      procs[i] = 0;
  return true;
}

static void
wait_socket (const char *path, pid_t owner, const char *log)
{
  struct stat st;
  double end = now () + 10;
  int status;
  while (stat (path, &st) != 0 || !S_ISSOCK (st.st_mode))
    {
      if (exited (owner, &status))
        {
          char *l = tu_read (log);
          cr_assert_fail ("the backend for %s exited (status %d): %s", path, status, l ? l : "");
        }
      cr_assert_lt (now (), end, "no socket %s after 10 s", path);
      nap ();
    }
}

/* The image directory, built by `make demo-image` when needed (always run:
   make knows when it is out of date).  */
static char *
demo_image (void)
{
  char *dir = tu_demo_image ();
  char *kept = tu_fmt ("%s", dir);
  free (dir);
  return kept;
}

/* Wait for a boot marker on the console file; returns the console text.
   QEMU exiting first fails the test, unless ALLOW_EXIT: then NULL with its
   status in *STATUS.  */
static char *
wait_marker (pid_t qemu, const char *console, const char *log, double *elapsed, bool allow_exit, int *status)
{
  double start = now ();
  for (;;)
    {
      char *c = tu_read (console);
      if (c && (strstr (c, MARKER_OK) || strstr (c, MARKER_FAILED)))
        {
          *elapsed = now () - start;
          return c;
        }
      free (c);
      int st;
      if (exited (qemu, &st))
        {
          if (allow_exit)
            {
              *status = st;
              return NULL;
            }
          char *l = tu_read (log), *cc = tu_read (console);
          cr_assert_fail ("QEMU exited (status %d) before a boot marker: %s\nconsole:\n%s", st, l ? l : "",
                          cc ? cc : "");
        }
      if (now () - start > BOOT_TIMEOUT)
        {
          char *cc = tu_read (console);
          cr_assert_fail ("no boot marker after %.0f s; console:\n%s", BOOT_TIMEOUT, cc ? cc : "");
        }
      nap ();
    }
}

/* Read one line (up to \n) from FD into BUF; false on EOF or timeout.  */
static bool
read_line (int fd, char *buf, size_t size)
{
  size_t n = 0;
  while (n + 1 < size)
    {
      ssize_t r = read (fd, buf + n, 1);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        break;
      if (buf[n] == '\n')
        {
          buf[n] = '\0';
          return true;
        }
      n++;
    }
  buf[n] = '\0';
  return false;
}

/* Send CMD; skip events up to its answer, which must be a "return".  */
static void
qmp (int fd, const char *cmd)
{
  char line[4096];
  cr_assert_eq (write (fd, cmd, strlen (cmd)), (ssize_t) strlen (cmd), "QMP write: %s", strerror (errno));
  for (;;)
    {
      cr_assert (read_line (fd, line, sizeof line), "QMP: no answer to %s", cmd);
      if (strstr (line, "\"return\""))
        return;
      cr_assert_null (strstr (line, "\"error\""), "QMP %s: %s", cmd, line);
    }
}

/* Connect to QEMU's QMP socket, past the capabilities negotiation.  */
static int
qmp_open (const char *qmp_path)
{
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_geq (fd, 0);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", qmp_path);
  cr_assert_eq (connect (fd, (struct sockaddr *) &sa, sizeof sa), 0, "connect %s: %s", qmp_path, strerror (errno));
  struct timeval tv = { 10, 0 };
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char line[4096];
  cr_assert (read_line (fd, line, sizeof line) && strstr (line, "\"QMP\""), "no QMP greeting: %s", line);
  qmp (fd, "{\"execute\":\"qmp_capabilities\"}\n");
  return fd;
}

/* QMP system_powerdown; QEMU must exit (status 0) within 10 s.  */
static void
powerdown (pid_t qemu, const char *qmp_path, const char *console)
{
  int fd = qmp_open (qmp_path);
  double start = now ();
  qmp (fd, "{\"execute\":\"system_powerdown\"}\n");
  int status;
  while (!exited (qemu, &status))
    {
      if (now () - start > POWERDOWN_TIMEOUT)
        {
          char *c = tu_read (console);
          cr_assert_fail ("QEMU still running %.0f s after system_powerdown; console:\n%s", POWERDOWN_TIMEOUT,
                          c ? c : "");
        }
      nap ();
    }
  close (fd);
  cr_log_info ("demo: QEMU exited %.1f s after system_powerdown", now () - start);
  cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0, "QEMU status %d after system_powerdown", status);
  char *c = tu_read (console);
  cr_assert (c && strstr (c, "AVM_DEMO: shutdown: poweroff"), "the guest did not shut down itself:\n%s", c ? c : "");
  free (c);
}

static void
expect (const char *console, const char *what)
{
  cr_expect_not_null (strstr (console, what), "console lacks \"%s\":\n%s", what, console);
}

/* A screendump (QMP, PPM) of QEMU's display: its size, how many pixels are
   not black, in all and in the top 32 rows (the demo's banner: one line of
   reverse video in fbcon's TER16x32 font).  */
struct shot
{
  int w, h;
  long lit, top;
};

static struct shot
screendump (int qmp_fd, const char *path)
{
  struct shot s = { 0, 0, 0, 0 };
  char cmd[4096];
  unlink (path);
  snprintf (cmd, sizeof cmd, "{\"execute\":\"screendump\",\"arguments\":{\"filename\":\"%s\"}}\n", path);
  qmp (qmp_fd, cmd);
  FILE *f = fopen (path, "rb");
  cr_assert_not_null (f, "screendump %s: %s", path, strerror (errno));
  int max = 0;
  cr_assert_eq (fscanf (f, "P6 %d %d %d", &s.w, &s.h, &max), 3, "%s: not a PPM", path);
  cr_assert (max == 255 && fgetc (f) != EOF, "%s: maxval %d", path, max);
  for (int y = 0; y < s.h; y++)
    for (int x = 0; x < s.w; x++)
      {
        int r = fgetc (f), g = fgetc (f), b = fgetc (f);
        cr_assert_neq (b, EOF, "%s: short at %d,%d", path, x, y);
        if (r | g | b)
          {
            s.lit++;
            s.top += y < 32;
          }
      }
  fclose (f);
  return s;
}

/* Wait up to 20 s for each of LINES (whole lines; NULL ends them) on the
   console.  */
static void
wait_lines (const char *console, const char *const *lines)
{
  double end = now () + 20;
  for (;;)
    {
      char *c = tu_read (console);
      const char *const *l = lines;
      for (; *l; l++)
        {
          char line[256];
          snprintf (line, sizeof line, "\n%s", *l);
          const char *p = c;
          size_t n = strlen (line);
          /* The console's lines end in \r\n (the guest's tty); a
             pattern ending in '=' is a line's start (a value follows).  */
          while (p && (p = strstr (p, line)) && line[n - 1] != '=' && !strchr ("\r\n", p[n]))
            p += n;
          if (!p)
            break;
        }
      if (!*l)
        {
          free (c);
          return;
        }
      if (now () > end)
        cr_assert_fail ("no line \"%s\" on the console after 20 s:\n%s", *l, c ? c : "");
      free (c);
      nap ();
    }
}

/* Ticks 1 and 2 (tests/demo/README.md) on the console, in this order: with
   a disk, the boot token the guest said it wrote (in C) read back from the
   disk, the second tick having read the first back; without one, the
   counter alone.  */
static void
wait_ticks (const char *console, const char *c, bool disk)
{
  const char *lines[3] = { "AVM_DEMO tick 1 time=", "AVM_DEMO tick 2 time=", NULL };
  if (disk)
    {
      const char *prefix = "AVM_DEMO: disk: vda 16 MiB, wrote boot ";
      const char *p = strstr (c, prefix);
      cr_assert_not_null (p, "console lacks \"%s\":\n%s", prefix, c);
      p += strlen (prefix);
      cr_assert (strcspn (p, "\r\n") == 36, "not a UUID: %.60s", p);
      lines[0] = tu_fmt ("AVM_DEMO tick 1 disk=%.36s last=none time=", p);
      lines[1] = tu_fmt ("AVM_DEMO tick 2 disk=%.36s last=1 time=", p);
    }
  wait_lines (console, lines);
  char *t = tu_read (console);
  cr_assert_not_null (t);
  const char *t1 = strstr (t, lines[0]), *t2 = strstr (t, lines[1]);
  cr_assert (t1 && t2 && t1 < t2, "ticks 1 and 2 not in order:\n%s", t);
  free (t);
}

/* The demo's screen and input echo (tests/demo/README.md): the banner and
   its report on the screen (fbcon on virtio-gpu's fb0), then keyboard and
   tablet events sent with QMP input-send-event echoed on the console and
   drawn on the screen.  */
static void
screen_and_input (const char *qmp_path, const char *console)
{
  int fd = qmp_open (qmp_path);
  /* The text reaches the host's display a little after the console.  */
  struct shot s = { 0, 0, 0, 0 };
  char *shot1 = pj (tmp, "screen1.ppm"), *shot2 = pj (tmp, "screen2.ppm");
  double end = now () + 10;
  do
    {
      if (now () > end)
        cr_assert_fail ("screen %dx%d: %ld pixels lit, %ld in the banner's row", s.w, s.h, s.lit, s.top);
      nap ();
      s = screendump (fd, shot1);
    }
  while (s.top < 16 * 1024);
  cr_assert (s.w == 1024 && s.h == 768, "screen %dx%d", s.w, s.h);
  /* Text on black: 1-30 % lit (the report alone is about 10 %).  */
  cr_assert (s.lit > 1024 * 768 / 100 && s.lit < 1024 * 768 * 3 / 10, "%ld pixels lit", s.lit);
  cr_log_info ("demo: screen %dx%d, %ld pixels lit (%ld in the banner's row)", s.w, s.h, s.lit, s.top);

  qmp (fd, "{\"execute\":\"input-send-event\",\"arguments\":{\"events\":[{\"type\":\"key\",\"data\":"
           "{\"down\":true,\"key\":{\"type\":\"qcode\",\"data\":\"a\"}}}]}}\n");
  qmp (fd, "{\"execute\":\"input-send-event\",\"arguments\":{\"events\":[{\"type\":\"key\",\"data\":"
           "{\"down\":false,\"key\":{\"type\":\"qcode\",\"data\":\"a\"}}}]}}\n");
  qmp (fd, "{\"execute\":\"input-send-event\",\"arguments\":{\"events\":["
           "{\"type\":\"abs\",\"data\":{\"axis\":\"x\",\"value\":16384}},"
           "{\"type\":\"abs\",\"data\":{\"axis\":\"y\",\"value\":8192}},"
           "{\"type\":\"btn\",\"data\":{\"down\":true,\"button\":\"left\"}}]}}\n");
  qmp (fd, "{\"execute\":\"input-send-event\",\"arguments\":{\"events\":["
           "{\"type\":\"btn\",\"data\":{\"down\":false,\"button\":\"left\"}}]}}\n");
  static const char *const echoed[]
      = { "AVM_DEMO input: key 30 down", "AVM_DEMO input: key 30 up", "AVM_DEMO input: click 272 down at 16384,8192",
          "AVM_DEMO input: click 272 up at 16384,8192", NULL };
  wait_lines (console, echoed);

  /* The same lines on the screen: it changes (four more lines of text).  */
  end = now () + 10;
  struct shot t = s;
  do
    {
      if (now () > end)
        cr_assert_fail ("the screen did not change after the input: %ld pixels lit", t.lit);
      nap ();
      t = screendump (fd, shot2);
    }
  while (t.lit == s.lit);
  close (fd);
}

Test (demo, plain, .timeout = TU_TIMEOUT (90))
{
  char *img = demo_image ();
  char *kernel = pj (img, "vmlinuz"), *initrd = pj (img, "initramfs.cpio.gz");
  char *console = pj (tmp, "console.log"), *report = pj (tmp, "report.log"), *log = pj (tmp, "qemu.log");
  char *qmp_path = pj (tmp, "qmp.sock");
  char *c0 = tu_fmt ("file,id=c0,path=%s", console), *r0 = tu_fmt ("file,id=r0,path=%s", report);
  char *qmparg = tu_fmt ("unix:%s,server=on,wait=off", qmp_path);
  char *argv[] = { QEMU,
                   "-accel",
                   "tcg",
                   "-m",
                   "512",
                   "-nodefaults",
                   "-no-user-config",
                   "-display",
                   "none",
                   "-kernel",
                   kernel,
                   "-initrd",
                   initrd,
                   "-append",
                   "console=hvc0 quiet panic=-1",
                   "-device",
                   "virtio-serial-pci",
                   "-chardev",
                   c0,
                   "-device",
                   "virtconsole,chardev=c0,name=console",
                   "-chardev",
                   r0,
                   "-device",
                   "virtserialport,chardev=r0,name=report",
                   "-qmp",
                   qmparg,
                   NULL };
  pid_t qemu = spawn (argv, log);
  double t;
  char *c = wait_marker (qemu, console, log, &t, false, NULL);
  cr_log_info ("demo: plain QEMU (TCG): boot marker after %.1f s", t);

  cr_assert_null (strstr (c, MARKER_FAILED), "boot failed:\n%s", c);
  expect (c, MARKER_OK);
  expect (c, "AVM_DEMO: power button: event");
  expect (c, "AVM_DEMO: gpu: absent");
  expect (c, "AVM_DEMO: screen: absent (no virtio-gpu device)");
  /* The pc machine's PS/2 keyboard.  */
  expect (c, "AVM_DEMO: input echo: event");
  expect (c, "AVM_DEMO: share: absent");
  expect (c, "AVM_DEMO: port report: present (vport");
  expect (c, "AVM_DEMO: agent: absent (no port org.qemu.guest_agent.0)");
  expect (c, "AVM_DEMO: rng: absent");
  expect (c, "AVM_DEMO: disk: absent (no virtio-blk device)");
  wait_ticks (console, c, false);
  char *r = tu_read (report);
  cr_expect (r && strstr (r, "AVM_DEMO report: hello from the demo guest"), "report port got: %s", r ? r : "");
  free (r);

  powerdown (qemu, qmp_path, console);
  free (c);
}

struct run
{
  pid_t qemu, gpu, fs;
  char *console, *log, *report_out, *qmp_path;
};

/* Start the backends and QEMU: vhost-user-gpu when REAL_GPU, else QEMU's
   virtio-gpu-pci.  */
static void
start_backends (struct run *run, const char *img, bool real_gpu, int attempt)
{
  char *dir = tu_fmt ("%s/run%d", tmp, attempt);
  mkdir (dir, 0755);
  char *kernel = pj (img, "vmlinuz"), *initrd = pj (img, "initramfs.cpio.gz"), *share = pj (img, "share");
  char *disk = tu_fmt ("file=%s/data.img,if=none,id=d0,format=raw,snapshot=on", img);
  char *gpu_sock = pj (dir, "gpu.sock"), *fs_sock = pj (dir, "fs.sock"), *report = pj (dir, "report");
  char *report_in = pj (dir, "report.in");
  run->console = pj (dir, "console.log");
  run->log = pj (dir, "qemu.log");
  run->report_out = pj (dir, "report.out");
  run->qmp_path = pj (dir, "qmp.sock");
  cr_assert_eq (mkfifo (report_in, 0600), 0);
  cr_assert_eq (mkfifo (run->report_out, 0600), 0);

  /* virtiofsd: chroot sandbox as root (the demo profile's), none otherwise.  */
  char *fs_sockarg = tu_fmt ("--socket-path=%s", fs_sock), *srcarg = tu_fmt ("source=%s", share);
  char *fsargv[] = { VIRTIOFSD, fs_sockarg,   "-o", srcarg,
                     "-o",      "cache=auto", "-o", geteuid () == 0 ? "sandbox=chroot" : "sandbox=none",
                     NULL };
  char *fslog = pj (dir, "virtiofsd.log");
  run->fs = spawn (fsargv, fslog);
  wait_socket (fs_sock, run->fs, fslog);

  char *gpu_chardev = NULL, *gpu_device;
  if (real_gpu)
    {
      char *gpu_sockarg = tu_fmt ("--socket-path=%s", gpu_sock);
      char *gargv[] = { VHOST_USER_GPU, gpu_sockarg, NULL };
      char *glog = pj (dir, "vhost-user-gpu.log");
      run->gpu = spawn (gargv, glog);
      wait_socket (gpu_sock, run->gpu, glog);
      gpu_chardev = tu_fmt ("socket,id=g,path=%s", gpu_sock);
      gpu_device = "vhost-user-gpu-pci,chardev=g,xres=1024,yres=768";
    }
  else
    {
      run->gpu = 0;
      gpu_chardev = "null,id=g";
      gpu_device = "virtio-gpu-pci,xres=1024,yres=768";
    }

  char *c0 = tu_fmt ("file,id=c0,path=%s", run->console), *r0 = tu_fmt ("pipe,id=r0,path=%s", report);
  char *f0 = tu_fmt ("socket,id=f,path=%s", fs_sock), *qmparg = tu_fmt ("unix:%s,server=on,wait=off", run->qmp_path);
  /* Like avm's demo plan: shared guest memory for the vhost-user
     backends, the report port a virtconsole on a FIFO pair.  */
  char *argv[] = { QEMU,
                   "-accel",
                   "tcg",
                   "-m",
                   "512",
                   "-nodefaults",
                   "-no-user-config",
                   "-display",
                   "none",
                   "-object",
                   "memory-backend-memfd,id=mem,size=512M,share=on",
                   "-machine",
                   "pc,memory-backend=mem",
                   "-kernel",
                   kernel,
                   "-initrd",
                   initrd,
                   "-append",
                   "console=hvc0 quiet panic=-1 fbcon=font:TER16x32",
                   "-device",
                   "virtio-serial-pci,max_ports=31",
                   "-chardev",
                   c0,
                   "-device",
                   "virtconsole,chardev=c0,name=console",
                   "-chardev",
                   r0,
                   "-device",
                   "virtconsole,chardev=r0,name=report",
                   "-chardev",
                   gpu_chardev,
                   "-device",
                   gpu_device,
                   "-chardev",
                   f0,
                   "-device",
                   "vhost-user-fs-pci,chardev=f,tag=demo",
                   "-drive",
                   disk,
                   "-device",
                   "virtio-blk-pci,drive=d0",
                   "-object",
                   "rng-random,id=rng0,filename=/dev/urandom",
                   "-device",
                   "virtio-rng-pci,rng=rng0",
                   "-device",
                   "virtio-tablet-pci",
                   "-device",
                   "virtio-keyboard-pci",
                   "-qmp",
                   qmparg,
                   NULL };
  run->qemu = spawn (argv, run->log);
}

/* A backend still running some time after QEMU is gone is killed.  */
static void
stop_backend (pid_t pid)
{
  int status;
  double end = now () + 5;
  if (pid <= 0)
    return;
  while (!exited (pid, &status))
    {
      if (now () > end)
        {
          kill (pid, SIGKILL);
          waitpid (pid, &status, 0);
          exited (pid, &status);
          for (size_t i = 0; i < nprocs; i++)
            if (procs[i] == pid)
              procs[i] = 0;
          return;
        }
      nap ();
    }
}

Test (demo, backends, .timeout = TU_TIMEOUT (90))
{
  char *img = demo_image ();
  char *hello_path = pj (img, "share/hello.txt");
  char *hello = tu_read (hello_path);
  cr_assert_not_null (hello, "%s missing", hello_path);
  hello[strcspn (hello, "\n")] = '\0';

  struct run run;
  double t;
  int status = 0;
  start_backends (&run, img, true, 1);
  char *c = wait_marker (run.qemu, run.console, run.log, &t, true, &status);
  bool real_gpu = true;
  if (!c)
    {
      char *l = tu_read (run.log);
      cr_assert (l && strstr (l, "requires kvm"), "QEMU exited (status %d) before a boot marker: %s", status,
                 l ? l : "");
      cr_log_info ("demo: this QEMU refuses vhost-user-gpu without KVM (%s); the GPU check uses QEMU's "
                   "virtio-gpu-pci instead",
                   strtok (l, "\n"));
      free (l);
      stop_backend (run.gpu);
      stop_backend (run.fs);
      start_backends (&run, img, false, 2);
      c = wait_marker (run.qemu, run.console, run.log, &t, false, NULL);
      real_gpu = false;
    }
  cr_log_info ("demo: TCG boot with virtiofsd and %s: boot marker after %.1f s",
               real_gpu ? "vhost-user-gpu" : "virtio-gpu-pci", t);

  cr_assert_null (strstr (c, MARKER_FAILED), "boot failed:\n%s", c);
  expect (c, MARKER_OK);
  expect (c, "AVM_DEMO: gpu: card0 virtio_gpu Virtual-1 connected 1024x768");
  /* fbcon on virtio-gpu's framebuffer, 16x32 characters (fbcon=font:).  */
  expect (c, "AVM_DEMO: screen: fb0 1024x768 (virtio_gpudrmfb), tty1 64x24\r\n");
  expect (c, tu_fmt ("AVM_DEMO: share: %s", hello));
  expect (c, "AVM_DEMO: port report: present");
  expect (c, "AVM_DEMO: rng: virtio_rng");
  expect (c, "QEMU Virtio Tablet");
  expect (c, "QEMU Virtio Keyboard");
  expect (c, " (QEMU Virtio Tablet)");
  expect (c, " (QEMU Virtio Keyboard)");
  expect (c, "AVM_DEMO: input echo: ");
  wait_ticks (run.console, c, true);

  /* QEMU holds both FIFOs open read-write: the guest's line waits there.  */
  int fd = open (run.report_out, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  cr_assert_geq (fd, 0, "%s: %s", run.report_out, strerror (errno));
  char buf[512];
  ssize_t n = read (fd, buf, sizeof buf - 1);
  close (fd);
  buf[n > 0 ? n : 0] = '\0';
  cr_expect_not_null (strstr (buf, "AVM_DEMO report: hello from the demo guest"), "report.out: \"%s\"", buf);

  screen_and_input (run.qmp_path, run.console);
  powerdown (run.qemu, run.qmp_path, run.console);
  stop_backend (run.gpu);
  stop_backend (run.fs);
  free (c);
  free (hello);
}
