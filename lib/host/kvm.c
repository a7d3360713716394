/* SPDX-License-Identifier: Apache-2.0 */
/* Is KVM usable?  Open the device, ask for the API version, create (and
   drop) a VM.  No guest is run.  */
#include "host/hostcheck.h"
#include "util/cleanup.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#define KVM_DEVICE "/dev/kvm"

static bool __attribute__ ((format (printf, 2, 3)))
unusable (char **why, const char *fmt, ...)
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
        return unusable (why, "%s: KVM_CREATE_VM is not permitted (%s): a seccomp or security policy blocks it",
                         path, strerror (e));
      if (e == ENOMEM || e == EAGAIN)
        return unusable (why, "%s: KVM_CREATE_VM failed: %s (out of memory or VM limit reached)", path,
                         strerror (e));
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
