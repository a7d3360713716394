/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host checks for `avm check`: what this machine offers a virtual platform.
 * Each check appends one or more items to a report; an item that FAILs
 * means the profile cannot run here.  Device discovery uses libudev.
 */
#pragma once

#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

enum avm_check_status
{
  AVM_CHECK_OK,
  AVM_CHECK_INFO, /* informative, never blocks */
  AVM_CHECK_WARN, /* works, degraded (e.g. no KVM but TCG allowed) */
  AVM_CHECK_FAIL, /* the profile cannot run here */
};

struct avm_check_item
{
  char *name;   /* "kvm", "render-node", "vhost-vsock", "qemu", "helper:vhost-user-gpu", ... */
  char *detail; /* "/dev/kvm: API 12, usable", "/dev/dri/renderD128 (virtio_gpu)" */
  char *hint;   /* what to do about it, or NULL */
  enum avm_check_status status;
};

struct avm_host_report
{
  struct avm_check_item *items;
  size_t n;
  bool lost; /* an item could not be recorded (out of memory): the report is not ok */
};

/* Is KVM usable by this user (open O_RDWR, KVM_GET_API_VERSION == 12,
   KVM_CREATE_VM succeeds)?  On false, *why (malloc'd, may be NULL) says why.  */
bool avm_kvm_usable (char **why);
/* The same for another device node (tests; a KVM device at a different path).  */
bool avm_kvm_usable_at (const char *path, char **why);

/* Run one vCPU under KVM, the way a guest would: QEMU (the binary QEMU, a
   machine of ARCH, "x86_64" or "aarch64", with the CPU model CPU) boots a
   firmware of avm's own that leaves at once (isa-debug-exit on pc, PSCI
   SYSTEM_OFF on virt).  Some hosts open /dev/kvm and create VMs but abort
   (QEMU: "failed to set MSR 0x10a ... Assertion") or hang as soon as a vCPU
   runs.  True when QEMU came back as the firmware asked within a few
   seconds; else *WHY (malloc'd) says what happened, QEMU's last words
   included.  */
bool avm_kvm_run_vcpu (const char *qemu, const char *arch, const char *cpu, char **why);

/* A device found with libudev.  */
struct avm_dev_node
{
  char *sysname;  /* "renderD128" */
  char *syspath;  /* "/sys/devices/pci0000:00/0000:00:02.0/drm/renderD128" */
  char *devnode;  /* "/dev/dri/renderD128", or NULL when the device has none */
  char *driver;   /* kernel driver of the nearest ancestor that has one ("virtio_gpu"), or NULL */
  int open_errno; /* 0: DEVNODE opened read-write; else why not (ENODEV without DEVNODE) */
};

/* Devices of SUBSYSTEM whose sysname matches the glob SYSNAME (NULL: all),
   in syspath order.  *NODES is malloc'd (NULL when *N is 0).  */
int avm_host_list_devices (const char *subsystem, const char *sysname, struct avm_dev_node **nodes, size_t *n,
                           avm_error_t *err);
void avm_dev_nodes_free (struct avm_dev_node *nodes, size_t n);

/* /dev/kvm.  REQUIRED: no fallback accelerator is allowed.  */
int avm_host_check_kvm (struct avm_host_report *r, bool required, avm_error_t *err);
/* DRM render nodes and their kernel drivers, found with libudev.  */
int avm_host_check_render_nodes (struct avm_host_report *r, bool required, avm_error_t *err);
/* A character device such as /dev/vhost-vsock or /dev/vhost-net, opened read-write.  */
int avm_host_check_char_device (struct avm_host_report *r, const char *name, const char *path, bool required,
                                const char *hint, avm_error_t *err);
/* An executable, by path or searched in DIRS (colon-separated) then $PATH.  */
int avm_host_check_program (struct avm_host_report *r, const char *name, const char *program, const char *dirs,
                            bool required, const char *hint, avm_error_t *err);
/* The items avm_host_check_render_nodes adds for NODES (from avm_host_list_devices
   ("drm", "renderD*")): OK per usable node, the others INFO when one is usable,
   else FAIL (REQUIRED) or WARN; one FAIL/WARN item when there is none.  */
int avm_host_report_render_nodes (struct avm_host_report *r, const struct avm_dev_node *nodes, size_t n, bool required,
                                  avm_error_t *err);
/* Add an item computed elsewhere (e.g. the QEMU version and capability
   check).  Out of memory marks the report lost (and returns -ENOMEM): a
   check that went missing must not leave the report ok.  */
int avm_host_report_add (struct avm_host_report *r, enum avm_check_status status, const char *name, const char *detail,
                         const char *hint);
/* The same with DETAIL formatted.  */
int avm_host_report_addf (struct avm_host_report *r, enum avm_check_status status, const char *name, const char *hint,
                          const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));
/* For a caller whose own allocation failed while making an item.  */
void avm_host_report_lose (struct avm_host_report *r);

/* No FAIL item and nothing lost.  */
bool avm_host_report_ok (const struct avm_host_report *r);
/* Aligned table: STATUS  NAME  DETAIL, and "  hint: ..." lines.  */
void avm_host_report_print (const struct avm_host_report *r, FILE *out);
/* {"ok": bool, "checks": [{"name","status","detail","hint"}]} */
json_t *avm_host_report_to_json (const struct avm_host_report *r);
void avm_host_report_clear (struct avm_host_report *r);
const char *avm_check_status_name (enum avm_check_status s);
