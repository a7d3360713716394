/* SPDX-License-Identifier: Apache-2.0 */
/* Is KVM usable?  Open the device, ask for the API version, create (and
   drop) a VM.  No guest is run.  */
#include "host/hostcheck.h"
#include "util/capture.h"
#include "util/cleanup.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KVM_DEVICE "/dev/kvm"

static bool __attribute__ ((format (printf, 2, 3))) unusable (char **why, const char *fmt, ...)
{
  va_list ap;
  if (!why)
    return false;
  va_start (ap, fmt);
  if (vasprintf (why, fmt, ap) < 0)
    *why = NULL;
  va_end (ap);
  return false;
}

static int
ioctl_retry (int fd, unsigned long req, unsigned long arg)
{
  int r;
  do
    r = ioctl (fd, req, arg);
  while (r < 0 && errno == EINTR);
  return r;
}

bool
avm_kvm_usable_at (const char *path, char **why)
{
  _cleanup_close_ int fd = -1;
  int version, vm;

  if (why)
    *why = NULL;
  fd = open (path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    {
      int e = errno;
      struct stat st;
      switch (e)
        {
        case ENOENT:
          return unusable (why,
                           "%s does not exist (no KVM support in this kernel or not exposed to the "
                           "container: add --device %s)",
                           path, path);
        case EACCES:
          if (stat (path, &st) == 0)
            return unusable (why,
                             "permission denied opening %s (mode %04o, group %u: add the user to the kvm "
                             "group)",
                             path, (unsigned) (st.st_mode & 07777), (unsigned) st.st_gid);
          return unusable (why, "permission denied opening %s (add the user to the kvm group)", path);
        case EPERM:
          return unusable (why,
                           "opening %s is not permitted (the device cgroup or a security policy blocks "
                           "it: add --device %s to the container)",
                           path, path);
        case ENXIO:
        case ENODEV:
          return unusable (why,
                           "%s has no driver behind it (load kvm_intel or kvm_amd; is virtualization "
                           "enabled in the firmware?)",
                           path);
        case EROFS:
          return unusable (why, "%s is on a read-only file system (mount /dev read-write)", path);
        default:
          return unusable (why, "cannot open %s: %s", path, strerror (e));
        }
    }

  version = ioctl_retry (fd, KVM_GET_API_VERSION, 0);
  if (version < 0)
    {
      int e = errno;
      if (e == ENOTTY || e == EINVAL)
        return unusable (why, "%s is not a KVM device (KVM_GET_API_VERSION: %s)", path, strerror (e));
      return unusable (why, "%s: KVM_GET_API_VERSION failed: %s", path, strerror (e));
    }
  if (version != KVM_API_VERSION)
    return unusable (why, "%s: KVM API version %d, expected %d", path, version, KVM_API_VERSION);

  vm = ioctl_retry (fd, KVM_CREATE_VM, 0);
  if (vm < 0)
    {
      int e = errno;
      if (e == EPERM || e == EACCES)
        return unusable (why, "%s: KVM_CREATE_VM is not permitted (%s): a seccomp or security policy blocks it", path,
                         strerror (e));
      if (e == ENOMEM || e == EAGAIN)
        return unusable (why, "%s: KVM_CREATE_VM failed: %s (out of memory or VM limit reached)", path, strerror (e));
      return unusable (why,
                       "%s: KVM_CREATE_VM failed: %s (hardware virtualization disabled or taken by another "
                       "hypervisor?)",
                       path, strerror (e));
    }
  close (vm);
  return true;
}

bool
avm_kvm_usable (char **why)
{
  return avm_kvm_usable_at (KVM_DEVICE, why);
}

int
avm_host_check_kvm (struct avm_host_report *r, bool required, avm_error_t *err)
{
  _cleanup_free_ char *why = NULL;
  char detail[64];
  int ret;

  if (avm_kvm_usable (&why))
    {
      snprintf (detail, sizeof detail, "%s: KVM API %d, usable", KVM_DEVICE, KVM_API_VERSION);
      ret = avm_host_report_add (r, AVM_CHECK_OK, "kvm", detail, NULL);
    }
  else if (required)
    ret = avm_host_report_add (r, AVM_CHECK_FAIL, "kvm", why ? why : KVM_DEVICE ": not usable",
                               "this profile requires KVM (no TCG fallback): make " KVM_DEVICE
                               " usable or allow the TCG accelerator");
  else
    ret = avm_host_report_add (r, AVM_CHECK_WARN, "kvm", why ? why : KVM_DEVICE ": not usable",
                               "guests will run with TCG (software emulation), much slower");
  if (ret < 0)
    return avm_error_sys (err, -ret, "host check kvm");
  return 0;
}

/* The firmwares of avm_kvm_run_vcpu, 64 KiB each.  */
static void
vcpu_firmware (bool arm, unsigned char *rom, size_t len)
{
  memset (rom, 0, len);
  if (arm)
    {
      /* movz w0, #0x0008; movk w0, #0x8400, lsl #16 (PSCI SYSTEM_OFF);
         hvc #0; b .  */
      static const uint32_t code[] = { 0x52800100, 0x72B08000, 0xD4000002, 0x14000000 };
      for (size_t i = 0; i < ARRAY_SIZE (code); i++)
        for (int b = 0; b < 4; b++)
          rom[i * 4 + b] = (unsigned char) (code[i] >> (8 * b));
      return;
    }
  /* Reset at F000:FFF0: jmp far F000:E000; there mov al, 21h; out F4h, al
     (isa-debug-exit: QEMU exits with status 2 * 21h + 1 = 67); hlt.  */
  static const unsigned char code[] = { 0xB0, 0x21, 0xE6, 0xF4, 0xF4, 0xEB, 0xFD };
  static const unsigned char reset[] = { 0xEA, 0x00, 0xE0, 0x00, 0xF0 };
  memset (rom, 0xFF, len);
  memcpy (rom + 0xE000, code, sizeof code);
  memcpy (rom + 0xFFF0, reset, sizeof reset);
}

/* What QEMU said that matters, for messages: its first "error" line (the
   cause), else its last line.  */
static char *
last_words (const char *out)
{
  const char *best = NULL;
  size_t blen = 0;
  for (const char *p = out; p && *p;)
    {
      const char *nl = strchr (p, '\n');
      size_t n = nl ? (size_t) (nl - p) : strlen (p);
      bool err = memmem (p, n, "error", 5) != NULL;
      if (n > 0 && (!best || (err && !memmem (best, blen, "error", 5)) || (!err && !memmem (best, blen, "error", 5))))
        {
          best = p;
          blen = n;
        }
      p = nl ? nl + 1 : NULL;
    }
  return best ? strndup (best, blen > 200 ? 200 : blen) : NULL;
}

bool
avm_kvm_run_vcpu (const char *qemu, const char *arch, const char *cpu, char **why)
{
  bool arm = streq (arch, "aarch64");
  char path[] = "/tmp/avm-vcpu-XXXXXX";
  static unsigned char rom[65536];
  if (why)
    *why = NULL;
  vcpu_firmware (arm, rom, sizeof rom);
  _cleanup_close_ int fd = mkstemp (path);
  if (fd < 0 || write (fd, rom, sizeof rom) != (ssize_t) sizeof rom)
    {
      if (fd >= 0)
        unlink (path);
      return unusable (why, "cannot write a test firmware to %s: %s", path, strerror (errno));
    }
  char *argv[] = { (char *) qemu,
                   "-machine",
                   arm ? "virt,accel=kvm,gic-version=host" : "pc,accel=kvm",
                   "-cpu",
                   (char *) cpu,
                   "-m",
                   "64",
                   "-nodefaults",
                   "-no-user-config",
                   "-display",
                   "none",
                   "-no-reboot",
                   "-bios",
                   path,
                   arm ? NULL : "-device",
                   "isa-debug-exit,iobase=0xf4,iosize=0x04",
                   NULL };
  struct avm_capture job = { .argv = argv, .with_stderr = true };
  _cleanup_error_ avm_error_t err = NULL;
  int r = avm_capture_run (&job, 1, 5000, &err);
  unlink (path);
  if (r < 0)
    {
      _cleanup_free_ char *words = last_words (job.out);
      bool ok = r == -ETIMEDOUT
                    ? unusable (why, "a vCPU under KVM (-cpu %s) did not come back within 5 s: guests hang%s%s", cpu,
                                words ? "; QEMU said: " : "", words ? words : "")
                    : unusable (why, "%s", err && err->msg ? err->msg : "QEMU could not be run");
      avm_capture_clear (&job, 1);
      return ok;
    }
  int st = job.status;
  _cleanup_free_ char *words = last_words (job.out);
  avm_capture_clear (&job, 1);
  if (WIFEXITED (st) && WEXITSTATUS (st) == (arm ? 0 : 67))
    return true;
  if (WIFSIGNALED (st))
    return unusable (why, "QEMU was killed by SIG%s as soon as a vCPU ran under KVM (-cpu %s)%s%s",
                     sigabbrev_np (WTERMSIG (st)) ? sigabbrev_np (WTERMSIG (st)) : "?", cpu, words ? ": " : "",
                     words ? words : "");
  return unusable (why, "QEMU exited with status %d instead of running a vCPU under KVM (-cpu %s)%s%s",
                   WIFEXITED (st) ? WEXITSTATUS (st) : -1, cpu, words ? ": " : "", words ? words : "");
}
