/* SPDX-License-Identifier: Apache-2.0 */
/* Device discovery with libudev: sysfs is read directly, so this works
   without a running udevd (in containers, too).  */
#include "host/hostcheck.h"
#include "util/cleanup.h"

#include <fcntl.h>
#include "host/lazy_udev.h"
#include <string.h>

DEFINE_TRIVIAL_CLEANUP_FUNC (struct udev *, sym_udev_unref)
DEFINE_TRIVIAL_CLEANUP_FUNC (struct udev_enumerate *, sym_udev_enumerate_unref)
DEFINE_TRIVIAL_CLEANUP_FUNC (struct udev_device *, sym_udev_device_unref)

/* The driver of DEV or of its nearest ancestor that has one: a render node
   has no driver itself, its PCI or virtio parent has.  */
static const char *
device_driver (struct udev_device *dev)
{
  for (struct udev_device *d = dev; d; d = sym_udev_device_get_parent (d))
    {
      const char *drv = sym_udev_device_get_driver (d);
      if (drv && *drv)
        return drv;
    }
  return NULL;
}

static int
probe_open (const char *devnode)
{
  int fd;
  if (!devnode)
    return ENODEV;
  do
    fd = open (devnode, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return errno ? errno : EIO;
  close (fd);
  return 0;
}

static int
node_fill (struct avm_dev_node *node, struct udev_device *dev)
{
  const char *sysname = sym_udev_device_get_sysname (dev);
  const char *devnode = sym_udev_device_get_devnode (dev);
  const char *driver = device_driver (dev);

  *node = (struct avm_dev_node) { 0 };
  node->sysname = strdup (sysname ? sysname : "");
  node->syspath = strdup (sym_udev_device_get_syspath (dev));
  node->devnode = devnode ? strdup (devnode) : NULL;
  node->driver = driver ? strdup (driver) : NULL;
  if (!node->sysname || !node->syspath || (devnode && !node->devnode) || (driver && !node->driver))
    return -ENOMEM;
  node->open_errno = probe_open (node->devnode);
  return 0;
}

void
avm_dev_nodes_free (struct avm_dev_node *nodes, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (nodes[i].sysname);
      free (nodes[i].syspath);
      free (nodes[i].devnode);
      free (nodes[i].driver);
    }
  free (nodes);
}

int
avm_host_list_devices (const char *subsystem, const char *sysname, struct avm_dev_node **nodes, size_t *n,
                       avm_error_t *err)
{
  _cleanup_ (sym_udev_unrefp) struct udev *udev = NULL;
  _cleanup_ (sym_udev_enumerate_unrefp) struct udev_enumerate *e = NULL;
  struct avm_dev_node *out = NULL;
  size_t count = 0;
  int r;

  *nodes = NULL;
  *n = 0;
  if ((r = avm_dlopen_udev (err)) < 0)
    return r;
  udev = sym_udev_new ();
  if (!udev)
    return avm_error_sys (err, errno ? errno : ENOMEM, "libudev: cannot create a context");
  e = sym_udev_enumerate_new (udev);
  if (!e)
    return avm_error_sys (err, errno ? errno : ENOMEM, "libudev: cannot enumerate devices");
  r = sym_udev_enumerate_add_match_subsystem (e, subsystem);
  if (r >= 0 && sysname)
    r = sym_udev_enumerate_add_match_sysname (e, sysname);
  if (r < 0)
    return avm_error_sys (err, -r, "libudev: cannot match subsystem %s", subsystem);
  r = sym_udev_enumerate_scan_devices (e);
  if (r < 0)
    return avm_error_sys (err, -r, "libudev: cannot scan /sys for %s devices", subsystem);

  struct udev_list_entry *entry;
  for (entry = sym_udev_enumerate_get_list_entry (e); entry; entry = sym_udev_list_entry_get_next (entry))
    {
      const char *syspath = sym_udev_list_entry_get_name (entry);
      _cleanup_ (sym_udev_device_unrefp) struct udev_device *dev = sym_udev_device_new_from_syspath (udev, syspath);
      struct avm_dev_node *grown;

      if (!dev)
        continue; /* Removed while we scanned.  */
      grown = realloc (out, (count + 1) * sizeof *out);
      if (!grown)
        {
          avm_dev_nodes_free (out, count);
          return avm_error_sys (err, ENOMEM, "listing %s devices", subsystem);
        }
      out = grown;
      r = node_fill (&out[count], dev);
      count++;
      if (r < 0)
        {
          avm_dev_nodes_free (out, count);
          return avm_error_sys (err, -r, "listing %s devices", subsystem);
        }
    }
  *nodes = out;
  *n = count;
  return 0;
}
