/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libudev.so.1, bound on first use (lib/util/dl.h): only device discovery
 * (DRM render nodes, passed-through devices) needs it, and most starts
 * never get there.  Include this header instead of <libudev.h> in lib/
 * sources; sym_udev_new (...) and the others after avm_dlopen_udev.
 */
#pragma once

#include "util/dl.h"

#include <libudev.h>

#define AVM_UDEV_FUNCS(X)                                                                                              \
  X (udev_new)                                                                                                         \
  X (udev_unref)                                                                                                       \
  X (udev_enumerate_new)                                                                                               \
  X (udev_enumerate_unref)                                                                                             \
  X (udev_enumerate_add_match_subsystem)                                                                               \
  X (udev_enumerate_add_match_sysname)                                                                                 \
  X (udev_enumerate_scan_devices)                                                                                      \
  X (udev_enumerate_get_list_entry)                                                                                    \
  X (udev_list_entry_get_next)                                                                                         \
  X (udev_list_entry_get_name)                                                                                         \
  X (udev_device_new_from_syspath)                                                                                     \
  X (udev_device_unref)                                                                                                \
  X (udev_device_get_parent)                                                                                           \
  X (udev_device_get_driver)                                                                                           \
  X (udev_device_get_sysname)                                                                                          \
  X (udev_device_get_devnode)                                                                                          \
  X (udev_device_get_syspath)

AVM_DL_DECLARE (AVM_UDEV_FUNCS)

/* Bind the sym_ pointers above, loading libudev.so.1 the first time (any
   thread; later calls return the first outcome).  0, or -errno with ERR
   naming the library, the missing function and the Debian package
   (libudev1).  Call it before the first sym_ use.  */
int avm_dlopen_udev (avm_error_t *err);
