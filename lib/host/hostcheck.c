/* SPDX-License-Identifier: Apache-2.0 */
/* Character devices (/dev/vhost-vsock, /dev/vhost-net, ...) and programs.  */
#include "host/hostcheck.h"
#include "util/strfmt.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define PROGRAM_HINT "install it or set its path in the profile"

#define fmt avm_strdupf

/* "modprobe vhost_vsock" for /dev/vhost-vsock: module names use '_'.  */
static char *
module_hint (const char *path)
{
  const char *base = strrchr (path, '/');
  _cleanup_free_ char *module = strdup (base ? base + 1 : path);

  if (!module)
    return NULL;
  for (char *p = module; *p; p++)
    if (*p == '-')
      *p = '_';
  return fmt ("load its kernel module (modprobe %s) and, in a container, pass it with --device %s", module, path);
}

int
avm_host_check_char_device (struct avm_host_report *r, const char *name, const char *path, bool required,
                            const char *hint, avm_error_t *err)
{
  _cleanup_free_ char *detail = NULL;
  _cleanup_free_ char *own_hint = NULL;
  enum avm_check_status bad = required ? AVM_CHECK_FAIL : AVM_CHECK_WARN;
  struct stat st;
  int fd, ret;

  if (stat (path, &st) < 0)
    {
      int e = errno;
      if (e == ENOENT)
        {
          detail = fmt ("%s does not exist", path);
          own_hint = hint ? NULL : module_hint (path);
        }
      else
        {
          detail = fmt ("cannot stat %s: %s", path, strerror (e));
          own_hint = hint ? NULL : fmt ("check the permissions of the directories leading to %s", path);
        }
    }
  else if (!S_ISCHR (st.st_mode))
    {
      detail = fmt ("%s is not a character device", path);
      own_hint = hint ? NULL : module_hint (path);
    }
  else
    {
      do
        fd = open (path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
      while (fd < 0 && errno == EINTR);
      if (fd >= 0)
        {
          close (fd);
          detail = fmt ("%s: character device %u:%u, opened read-write", path, major (st.st_rdev), minor (st.st_rdev));
          if (!detail)
            return avm_error_sys (err, ENOMEM, "host check %s", name);
          ret = avm_host_report_add (r, AVM_CHECK_OK, name, detail, NULL);
          if (ret < 0)
            return avm_error_sys (err, -ret, "host check %s", name);
          return 0;
        }
      int e = errno;
      if (e == EACCES || e == EPERM)
        {
          detail = fmt ("permission denied opening %s read-write (mode %04o, owner %u:%u)", path,
                        (unsigned) (st.st_mode & 07777), (unsigned) st.st_uid, (unsigned) st.st_gid);
          own_hint = hint ? NULL : fmt ("add the user to the group owning %s, or a udev rule granting access", path);
        }
      else if (e == ENXIO || e == ENODEV)
        {
          detail = fmt ("%s has no driver behind it: %s", path, strerror (e));
          own_hint = hint ? NULL : module_hint (path);
        }
      else
        detail = fmt ("cannot open %s read-write: %s", path, strerror (e));
    }
  if (!hint && !own_hint)
    own_hint = strdup ("check the device node and its kernel driver");
  if (!detail || (!hint && !own_hint))
    return avm_error_sys (err, ENOMEM, "host check %s", name);
  ret = avm_host_report_add (r, bad, name, detail, hint ? hint : own_hint);
  if (ret < 0)
    return avm_error_sys (err, -ret, "host check %s", name);
  return 0;
}

int
avm_host_check_program (struct avm_host_report *r, const char *name, const char *program, const char *dirs,
                        bool required, const char *hint, avm_error_t *err)
{
  _cleanup_free_ char *path = avm_find_program (program, dirs);
  _cleanup_free_ char *detail = NULL;
  int e = errno, ret;

  if (path)
    ret = avm_host_report_add (r, AVM_CHECK_OK, name, path, NULL);
  else
    {
      if (e == ENOMEM)
        return avm_error_sys (err, ENOMEM, "host check %s", name);
      if (strchr (program, '/'))
        detail = e == ENOENT ? fmt ("%s does not exist", program)
                             : fmt ("%s is not an executable file: %s", program, strerror (e));
      else if (dirs && *dirs)
        detail = fmt ("%s not found in %s or PATH", program, dirs);
      else
        detail = fmt ("%s not found in PATH", program);
      if (!detail)
        return avm_error_sys (err, ENOMEM, "host check %s", name);
      ret = avm_host_report_add (r, required ? AVM_CHECK_FAIL : AVM_CHECK_WARN, name, detail,
                                 hint ? hint : PROGRAM_HINT);
    }
  if (ret < 0)
    return avm_error_sys (err, -ret, "host check %s", name);
  return 0;
}
