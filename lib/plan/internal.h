/* SPDX-License-Identifier: Apache-2.0 */
/* Shared state of the plan builder (the files of lib/plan only). */
#pragma once

#include "plan/plan.h"
#include "profile/vars.h"
#include "util/strv.h"

/* A helper service while it is planned: the plan's service (argv and
   after are made from what follows when the plan is (typed.c)) and what
   only the planner needs.  */
struct plan_service
{
  struct avm_plan_service s;
  struct avm_argv argv;   /* as expanded ("$$" and ${fd:NAME} kept) */
  char **after;           /* names of the services it starts after */
  struct avm_argv uses;   /* the resources it refers to */
  struct avm_argv serves; /* the QEMU devices it backs */
};

struct plan_ctx
{
  const struct avm_plan_request *req;
  json_t *p;        /* resolved profile */
  const char *file; /* profile path, for messages */
  const char *arch; /* "x86_64", "aarch64" */
  int instance;
  long long cid;
  char *run_dir, *state_dir, *images, *data_dir;
  char *images_tried; /* expanded paths.images (may list several): when none exists */
  bool images_said;   /* ... said once */
  char instance_str[16], cid_str[24], guest_name[128];
  struct avm_var vars[12];
  char *cf_root, *cf_instance_dir, *cf_config; /* cuttlefish.config */
  struct avm_vars scope;
  struct avm_qemu_caps *caps;
  const char *accel;
  const char *qemu_binary;  /* resolved path (argv[0]) */
  bool shared_memory;       /* a vhost-user device needs share=on RAM */
  const char *boot_console; /* console port watched for boot patterns */
  bool any_caps;            /* layout only: every device counts as present */

  struct avm_argv argv;
  size_t *lines;
  size_t n_lines, lines_alloc;

  json_t *pci;               /* [{"slot","device","for"}] */
  struct plan_service *svcs; /* the helper services as expanded, in start order */
  size_t nsvcs;
  struct avm_plan_resource *res; /* resources, in order */
  size_t nres, res_alloc;
  struct avm_argv *uses;            /* while expanding a service: the resources it refers to (${fd:}, ${port:}) */
  int var_depth;                    /* ${var:} expansions under way */
  struct avm_argv global_uses;      /* ... referred to outside any service (boot properties, console tees) */
  json_t *warnings;                 /* ["..."] */
  json_t *unapproved;               /* ["what is not approved", ...] */
  json_t *missing;                  /* dry run: [{"key","path","error"}] of files that are not there */
  char *helper_dirs;                /* paths.helpers, expanded (named when programs are missing) */
  bool flags_mismatch;              /* a helper does not accept a flag of its argv */
  struct avm_plan_skipped *skipped; /* services whose program is missing */
  size_t nskipped;
  json_t *bootprops;              /* {"androidboot.x": "v"} */
  struct avm_plan_generated *gen; /* disks avm builds: from bootprops, the x86 flash variables */
  size_t ngen;
  char *ram_file;              /* snapshot.fast: the guest RAM's file, or NULL */
  char *agent_socket;          /* the console port of kind agent: QEMU's socket, or NULL */
  size_t ram_line;             /* snapshot.fast: the line of its -object, else 0 */
  struct avm_plan_disk *disks; /* disks[], as emitted */
  size_t ndisks;
  struct avm_argv macs;                    /* the guest NICs' MAC addresses, as given to QEMU */
  char *display_backend, *display_address; /* where a viewer connects, or NULL */
  unsigned gpu_outputs;                    /* heads of the GPU; 0: none */
  struct avm_argv web_urls, vnc_sockets;   /* display.web: one each per output */
  char *web_listen;                        /* ... ADDRESS:PORT, or NULL */
  int next_slot;
  avm_error_t *err;
};

/* Expand profile variables in S; WHERE is the JSON path (file is added).  */
int plan_expand (struct plan_ctx *c, const char *s, const char *where, char **out);
int plan_check_fd (struct plan_ctx *c, const char *name, const char *where, const char *what, avm_error_t *err);
int plan_warn (struct plan_ctx *c, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Profile value at PATH (validated, defaults present).  */
const char *pstr (struct plan_ctx *c, const char *path);
long long pint (struct plan_ctx *c, const char *path);
bool pbool (struct plan_ctx *c, const char *path);

/* Services and resources (services.c): expand, add implied services, check
   references, order by `after`.  The socket a vhost-user device uses is
   the one its service declares.  */
int plan_services (struct plan_ctx *c);
/* Services that run, against the approved helper catalog (helper/catalog.h):
   each one that is not approved is added to c->unapproved.  */
int plan_approve_services (struct plan_ctx *c);
/* Why SERVICE was skipped (plan_services), or NULL.  */
const char *plan_service_skipped (struct plan_ctx *c, const char *service);
int plan_service_socket (struct plan_ctx *c, const char *key_path, const char *service, char **socket);
/* Drop the profile's resources that nothing planned refers to (a resource
   of a disabled or skipped service); after plan_boot_properties.  */
int plan_prune_resources (struct plan_ctx *c);
/* Record in C->uses that NAME (or NAME.suffix) is referenced.  */
void plan_note_use (struct plan_ctx *c, const char *name);
/* The resources the profile declares and the console FIFOs (resources.c).  */
int plan_resources (struct plan_ctx *c);
/* Resource NAME, or NULL.  */
struct avm_plan_resource *plan_resource (struct plan_ctx *c, const char *name);
/* *R with NAME, TYPE and PATH (copied, or NULL) set, no port; -ENOMEM.  */
int plan_resource_init (struct avm_plan_resource *r, const char *name, enum avm_resource_type type, const char *path);
/* Add *RES (taken: cleared, also on failure), checked; declared at WHERE
   (an input error when the name is taken), or in place of one of the same
   name (plan_set_resource).  */
int plan_add_resource (struct plan_ctx *c, struct avm_plan_resource *res, const char *where);
int plan_set_resource (struct plan_ctx *c, struct avm_plan_resource *res);
/* The private dbus-daemon of -display dbus (dbus.c): its definition, as a
   profile would write it, and its configuration file (a resource).  */
json_t *plan_implied_dbus (void);
int plan_implied_dbus_config (struct plan_ctx *c);
/* The web display (web.c): whether the profile has it; its resources (the
   listening socket, the VNC socket directory) and URLs; websockify as a
   profile would write it (NULL: no memory); QEMU's VNC servers.  */
bool plan_web_enabled (struct plan_ctx *c);
int plan_web_resources (struct plan_ctx *c);
json_t *plan_implied_web (struct plan_ctx *c);
int plan_emit_web (struct plan_ctx *c);
/* The N expanded services V against their programs (helpers.c): flags a
   gflags program does not define, programs that are not installed
   (refused when critical, else skipped with what is started after them:
   moved from V into c->skipped, *N lowered).  */
int plan_check_flags (struct plan_ctx *c, struct plan_service *v, size_t n);
int plan_missing_programs (struct plan_ctx *c, struct plan_service *v, size_t *n);
/* Service NAME of the N in V, or NULL.  */
struct plan_service *plan_service_find (struct plan_service *v, size_t n, const char *name);
void plan_service_clear (struct plan_service *ps);

/* QEMU argv (qemu_argv.c).  */
int plan_qemu_argv (struct plan_ctx *c);
/* ... its pieces: a new output line; an option line (OPTION, then the
   formatted value unless FMT is NULL); a catalog device checked against
   the QEMU capabilities (KEY: the profile key it is for); the same added
   at PCI SLOT (-1: none), recorded in c->pci; the next free PCI slot; a
   free value with its commas doubled; a profile value expanded so.  */
int plan_new_line (struct plan_ctx *c);
int plan_opt (struct plan_ctx *c, const char *option, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
int plan_need_device (struct plan_ctx *c, const char *type, const char *key);
int plan_device (struct plan_ctx *c, const char *type, const char *key, int slot, const char *fmt, ...)
    __attribute__ ((format (printf, 5, 6)));
int plan_alloc_slot (struct plan_ctx *c, const char *what, int *slot);
char *plan_qv (const char *s);
int plan_expand_q (struct plan_ctx *c, const char *s, const char *where, char **out);
/* The display, GPU, serial and console options (qemu_display.c); the
   devices after the disks (qemu_devices.c).  */
int plan_emit_display (struct plan_ctx *c);
int plan_emit_gpu (struct plan_ctx *c);
int plan_emit_serial (struct plan_ctx *c);
int plan_emit_consoles (struct plan_ctx *c);
int plan_emit_devices (struct plan_ctx *c);
/* cuttlefish.config (cuttlefish.c): the variables ${cf_config} and
   ${cf_instance_dir} (before the services are planned), then the
   configuration file and directories (once the network is known).  */
int plan_cuttlefish_vars (struct plan_ctx *c);
int plan_cuttlefish_config (struct plan_ctx *c);
/* Unix socket paths that do not fit sun_path (sockets.c): the runtime
   directory's, services', unix-listen resources', QEMU's.  */
int plan_check_sockets (struct plan_ctx *c);
/* Android boot properties (bootprops.c).  */
int plan_boot_properties (struct plan_ctx *c);
/* Add *G (its strings taken, also on failure) to the generated disks.  */
int plan_add_generated (struct plan_ctx *c, struct avm_plan_generated *g);
void plan_generated_clear (struct avm_plan_generated *g);
void plan_disk_clear (struct avm_plan_disk *d);
/* The typed plan from the planner's state (typed.c); ADB is the guest's
   adb endpoint (a string or null).  */
int plan_make_typed (struct plan_ctx *c, struct avm_plan *plan, json_t *adb);
/* ... first moving what the planner made typed to PLAN.  */
int plan_hand_over (struct plan_ctx *c, struct avm_plan *plan);
void plan_typed_clear (struct avm_plan *plan);
/* What blocks a snapshot (snapshot.c): plan->snapshot_blockers from the
   PCI layout and PLAN's services; after plan_hand_over.  */
int plan_snapshot_blockers (struct plan_ctx *c, struct avm_plan *plan);
/* ... and what sets the guest clock after a restore (snapshot.clock), with
   its requirements checked: an agent port, or a service started anew.  */
int plan_snapshot_clock (struct plan_ctx *c, struct avm_plan *plan);
