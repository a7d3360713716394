/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libudev.so.1, bound on first use (lib/util/dl.h): only device discovery
 * (DRM render nodes, passed-through devices) needs it, and most starts
 * never get there.  Include this header instead of <libudev.h> in lib/
 * sources.
 */
#pragma once

#include <libudev.h>

#define AVM_UDEV_FUNCS(X) \
  X (udev_new) \
  X (udev_unref) \
  X (udev_enumerate_new) \
  X (udev_enumerate_unref) \
  X (udev_enumerate_add_match_subsystem) \
  X (udev_enumerate_add_match_sysname) \
  X (udev_enumerate_scan_devices) \
  X (udev_enumerate_get_list_entry) \
  X (udev_list_entry_get_next) \
  X (udev_list_entry_get_name) \
  X (udev_device_new_from_syspath) \
  X (udev_device_unref) \
  X (udev_device_get_parent) \
  X (udev_device_get_driver) \
  X (udev_device_get_sysname) \
  X (udev_device_get_devnode) \
  X (udev_device_get_syspath)

struct avm_udev_api
{
#define X(f) __typeof__ (f) *f;
  AVM_UDEV_FUNCS (X)
#undef X
};

/* The table; loads libudev.so.1 the first time (exits 1 if it cannot:
   Debian: libudev1).  */
const struct avm_udev_api *avm_udev (void);

#ifndef AVM_LAZY_UDEV_IMPL
#define udev_new(...) (avm_udev ()->udev_new (__VA_ARGS__))
#define udev_unref(...) (avm_udev ()->udev_unref (__VA_ARGS__))
#define udev_enumerate_new(...) (avm_udev ()->udev_enumerate_new (__VA_ARGS__))
#define udev_enumerate_unref(...) (avm_udev ()->udev_enumerate_unref (__VA_ARGS__))
#define udev_enumerate_add_match_subsystem(...) (avm_udev ()->udev_enumerate_add_match_subsystem (__VA_ARGS__))
#define udev_enumerate_add_match_sysname(...) (avm_udev ()->udev_enumerate_add_match_sysname (__VA_ARGS__))
#define udev_enumerate_scan_devices(...) (avm_udev ()->udev_enumerate_scan_devices (__VA_ARGS__))
#define udev_enumerate_get_list_entry(...) (avm_udev ()->udev_enumerate_get_list_entry (__VA_ARGS__))
#define udev_list_entry_get_next(...) (avm_udev ()->udev_list_entry_get_next (__VA_ARGS__))
#define udev_list_entry_get_name(...) (avm_udev ()->udev_list_entry_get_name (__VA_ARGS__))
#define udev_device_new_from_syspath(...) (avm_udev ()->udev_device_new_from_syspath (__VA_ARGS__))
#define udev_device_unref(...) (avm_udev ()->udev_device_unref (__VA_ARGS__))
#define udev_device_get_parent(...) (avm_udev ()->udev_device_get_parent (__VA_ARGS__))
#define udev_device_get_driver(...) (avm_udev ()->udev_device_get_driver (__VA_ARGS__))
#define udev_device_get_sysname(...) (avm_udev ()->udev_device_get_sysname (__VA_ARGS__))
#define udev_device_get_devnode(...) (avm_udev ()->udev_device_get_devnode (__VA_ARGS__))
#define udev_device_get_syspath(...) (avm_udev ()->udev_device_get_syspath (__VA_ARGS__))
#endif
