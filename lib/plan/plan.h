/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plan: everything `avm start` will do, computed from a resolved
 * profile before anything runs.  QEMU binary, capabilities and accelerator,
 * the approved QEMU argv with its pinned PCI layout, helper services in
 * start order, resources to create, boot detection and boot properties.
 * `avm start --dry-run --json` prints it; the supervisor executes it.
 */
#pragma once

#include "profile/profile.h"
#include "profile/vars.h"
#include "qemu/caps.h"
#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* A disk that runs on a layer of a snapshot (avm start --restore).  */
struct avm_plan_layer
{
  const char *disk; /* disks[].name */
  const char *path; /* the snapshot's qcow2 layer */
};

/* What `avm start --restore` asks of the plan: QEMU waits for the
   snapshot's state (-incoming defer) and each disk listed runs on a fresh
   top over the snapshot's layer (snapshot=on), so a restore never changes
   the layer.  */
struct avm_plan_restore
{
  const char *snapshot; /* its name */
  const struct avm_plan_layer *layers;
  size_t nlayers;
  const char *ram; /* a snapshot.fast snapshot's RAM file (mapped private), or NULL */
};

struct avm_plan_request
{
  struct avm_profile *profile;
  int instance;                           /* 1.. */
  const char *images;                     /* --images, or NULL for paths.images */
  const char *caps_file;                  /* --caps FILE, or NULL to probe/cache the binary */
  bool allow_unapproved;                  /* --allow-unapproved */
  bool dry_run;                           /* missing files are warnings, not errors */
  const struct avm_plan_restore *restore; /* or NULL: a cold boot */
  bool layout_only;                       /* no QEMU needed: devices, displays and the first
                                             accelerator are assumed available, files and
                                             programs are not checked (cvd2img uses this to
                                             derive boot properties from a profile) */
};

/* One argument of a service's command line, split at plan time: literal
   text and descriptor references (${fd:NAME} of the profile) in order.
   The spawner numbers the descriptors and joins the pieces; nothing
   parses "${fd:" again after the plan.  */
struct avm_plan_piece
{
  char *text; /* literal text ('$' as it is), or the descriptor's name */
  bool fd;    /* a descriptor reference: "keymaster.in" */
};

struct avm_plan_arg
{
  struct avm_plan_piece *pieces;
  size_t n;
};

enum avm_service_kind
{
  AVM_SERVICE_HELPER,
  AVM_SERVICE_QEMU, /* the guest: started last, ready when QMP answers */
};

enum avm_ready_type
{
  AVM_READY_NONE,
  AVM_READY_SOCKET,
  AVM_READY_FILE,
  AVM_READY_NOTIFY,
  AVM_READY_QMP, /* QEMU */
};

enum avm_restart_policy
{
  AVM_RESTART_NO,
  AVM_RESTART_ON_FAILURE,
  AVM_RESTART_ALWAYS,
};

struct avm_plan_pair
{
  char *name, *value;
};

/* snapshot.clock: what sets the guest's wall clock after a restore.  */
enum avm_plan_clock
{
  AVM_PLAN_CLOCK_NONE,        /* nothing: it goes on from the save */
  AVM_PLAN_CLOCK_GUEST_AGENT, /* avm, through the QEMU guest agent (guest-set-time) */
  AVM_PLAN_CLOCK_SERVICE,     /* a helper started anew (modem_simulator's NITZ) */
};

/* services.NAME.snapshot.  */
enum avm_snapshot_mode
{
  AVM_SNAPSHOT_STATELESS,
  AVM_SNAPSHOT_REFUSE,
  AVM_SNAPSHOT_SUSPEND, /* suspends over its control socket; its files are copied */
};

/* services.NAME.snapshot_control_format: Cuttlefish's LauncherAction as
   run_cvd writes it to secure_env's -snapshot_control_fd.  */
enum avm_snapshot_control_format
{
  AVM_SNAPSHOT_CONTROL_LAUNCHER_ACTION,       /* 'A', u32 length, protobuf (Android 15+) */
  AVM_SNAPSHOT_CONTROL_LAUNCHER_ACTION_TYPED, /* 'A', u32 type, u32 length, protobuf (14 QPR2/QPR3) */
};

struct avm_plan_service
{
  enum avm_service_kind kind;
  char *name;
  char *program; /* absolute path, or NULL when it was not found */
  struct avm_plan_arg *argv;
  size_t argc;
  struct avm_plan_pair *env;
  size_t nenv;
  char *workdir;   /* or NULL */
  char *stdin_res; /* resource given as its standard input (inetd style), or NULL: /dev/null */
  enum avm_ready_type ready;
  char *ready_path;       /* socket and file readiness */
  uint64_t ready_timeout; /* microseconds */
  enum avm_restart_policy restart;
  bool critical;
  uint64_t stop_timeout; /* microseconds between SIGTERM and SIGKILL (helpers; QEMU: see avm_plan.stop) */
  size_t *after;         /* indexes into avm_plan.services, all before this one */
  size_t nafter;
  /* What the plan shows of a helper (avm_plan_to_json).  */
  bool implied;          /* added by avm (the private D-Bus of -display dbus) */
  char **uses;           /* resources it refers to (${fd:}, ${port:}), or NULL */
  char *socket;          /* its socket (services.NAME.socket), or NULL */
  char *missing;         /* why it cannot start (a critical one, in a dry run), or NULL */
  char *missing_program; /* ... the program that is not installed, or NULL */
  char *description;     /* or NULL */
  char **serves;         /* the QEMU devices it backs ("display.gpu"), or NULL */
  /* services.NAME.snapshot (avm snapshot save).  */
  enum avm_snapshot_mode snapshot;
  char *snapshot_control;                                   /* suspend: the socketpair resource (avm holds NAME.peer) */
  enum avm_snapshot_control_format snapshot_control_format; /* suspend: how its requests are framed */
  char **snapshot_files; /* suspend: its state files, absolute (NULL-terminated), or NULL */
};

enum avm_resource_type
{
  AVM_RES_FIFO,
  AVM_RES_FIFO_PAIR,
  AVM_RES_PIPE,
  AVM_RES_UNIX_LISTEN,
  AVM_RES_VSOCK_LISTEN,
  AVM_RES_TCP_LISTEN,
  AVM_RES_FILE,
  AVM_RES_SOCKETPAIR,
  AVM_RES_DIRECTORY,
  AVM_RES_PORT,
};

struct avm_plan_resource
{
  char *name;
  enum avm_resource_type type;
  const char *type_name; /* "fifo-pair" (static) */
  char *path;            /* or NULL */
  int port;              /* listeners and ports (a unix socket standing for a
                            vsock port keeps it), else -1 */
  char *address;         /* tcp-listen, or NULL for 127.0.0.1 */
  char *content;         /* file */
  bool log;              /* a console FIFO avm reads into a log */
  char *console;         /* ... its console name, or NULL for the resource's */
  char *tee;             /* ... the pipe its lines are copied to, or NULL */
};

/* The descriptors of a resource of type T when they are not named like it:
   ".read"/".write" of a pipe, ".in"/".out" of a FIFO pair (the suffixes of
   ${fd:NAME.read}); NULL-terminated, or NULL for the other types.  */
const char *const *avm_resource_ends (enum avm_resource_type t);
/* "pipe" -> AVM_RES_PIPE; -1 when unknown.  */
int avm_resource_type_from_name (const char *name);
const char *avm_resource_type_name (enum avm_resource_type t);
/* What creating R needs (a path, a port, a file's content): an input
   error naming the resource when it is not there.  */
int avm_plan_resource_check (const struct avm_plan_resource *r, avm_error_t *err);
void avm_plan_resource_clear (struct avm_plan_resource *r);

struct avm_plan_boot
{
  char **completed; /* boot patterns, NULL-terminated (may be empty) */
  char **failed;
  char *console;        /* console port matched, or NULL */
  uint64_t timeout;     /* microseconds, 0: none (already scaled under TCG) */
  unsigned reset_limit; /* 0: any */
  json_t *json;         /* output only: the boot object */
};

/* How the guest is stopped (the profile's "stop").  */
struct avm_plan_stop
{
  uint64_t powerdown_timeout; /* microseconds between system_powerdown and QMP quit; 0: quit at once */
};

/* Files avm makes before QEMU opens them.  */
enum avm_plan_generated_kind
{
  AVM_GENERATED_PROPERTIES, /* a properties disk holding the plan's boot properties */
  AVM_GENERATED_FLASH,      /* the x86 flash variables (firmware.pflash) */
  AVM_GENERATED_PSTORE,     /* the x86 pstore nvdimm's file (machine.ramoops) */
};

struct avm_plan_generated
{
  char *name;
  enum avm_plan_generated_kind kind;
  char *path;
  char *key;     /* properties disk: the signing key */
  char *code;    /* flash: the bootloader */
  uint64_t size; /* flash: both chips together (the bootloader padded to it); pstore: the file */
};

/* A disk of the profile (disks[]) as QEMU gets it.  */
struct avm_plan_disk
{
  char *name;
  char *path;    /* the image, expanded */
  char *format;  /* the image's: "raw", "qcow2" */
  bool snapshot; /* snapshot=on: the guest's writes are dropped when QEMU exits */
  bool readonly;
  size_t line; /* its -drive line (index into qemu_lines) */
  char *layer; /* a restore: the snapshot layer it runs on instead, or NULL */
};

/* QEMU's id of the -drive of disks[I].  */
#define AVM_PLAN_DRIVE_ID_FMT "drive-virtio-disk%zu"

struct avm_plan_skipped
{
  char *name, *reason, *description;
};

/* QEMU's id of the GPU device: VNC servers and screenshots name it.  */
#define AVM_PLAN_GPU_ID "gpu0"

/* Names of avm's own sockets in the runtime directory of an instance.  */
#define AVM_CONTROL_SOCKET "control.sock"
#define AVM_QMP_SOCKET "qmp.sock"

struct avm_plan
{
  /* What runs.  */
  char *profile; /* name */
  char *profile_path;
  int instance;
  bool approved;                     /* false when unapproved parts run (--allow-unapproved) */
  char **unapproved;                 /* what is not approved */
  struct avm_plan_service *services; /* helpers in start order, then QEMU (kind AVM_SERVICE_QEMU) */
  size_t nservices;                  /* including QEMU */
  struct avm_plan_skipped *skipped;
  size_t nskipped;
  struct avm_plan_resource *resources;
  size_t nresources;
  struct avm_plan_boot boot;
  struct avm_plan_stop stop;
  struct avm_plan_generated *generated;
  size_t ngenerated;
  struct avm_plan_disk *disks; /* the profile's, in order */
  size_t ndisks;
  char *restore;   /* the snapshot restored (-incoming defer), or NULL */
  char *ram_file;  /* snapshot.fast: the file holding the guest RAM (${run_dir}/ram), or NULL */
  size_t ram_line; /* snapshot.fast: the line of the RAM's -object (a restore maps another file), else 0 */
  struct avm_plan_pair *boot_props; /* in order */
  size_t nboot_props;
  bool has_boot_props;   /* the profile has boot_properties (maybe none) */
  uint64_t log_max_size; /* bytes */
  unsigned log_files;

  /* Where.  */
  char *run_dir, *state_dir;
  char *qmp_socket, *control_socket; /* in run_dir */
  struct avm_plan_pair *vars;        /* the profile variables as expanded, in order */
  size_t nvars;
  char *arch; /* of the guest: "x86_64", "aarch64" */

  /* QEMU.  */
  char **qemu_argv;   /* NULL-terminated */
  size_t *qemu_lines; /* index of the first argv element of each output line */
  size_t n_lines;
  char *accel;
  struct avm_qemu_caps *caps;

  /* How the guest is reached.  */
  long long cid; /* -1: no vsock */
  char **macs;
  char *adb;                               /* "127.0.0.1:6520", or NULL */
  char *display_backend, *display_address; /* or NULL */
  unsigned gpu_outputs;                    /* heads of the GPU (AVM_PLAN_GPU_ID); 0: no GPU */
  /* display.web: ADDRESS:PORT websockify serves, and per output its page
     and QEMU's VNC socket behind it (NULL-terminated); all NULL without.  */
  char *web_listen;
  char **web_urls, **vnc_sockets;

  /* What a snapshot (avm snapshot save) cannot save, one line each
     (NULL-terminated; NULL or empty: a snapshot is possible): a device
     QEMU does not migrate, "shares[0]: vhost-user-fs-pci (virtiofs
     (vhost-user-fs)): QEMU does not migrate its state (it lives in
     virtiofsd)", or a helper holding guest state, "services.secure_env:
     holds guest state (snapshot: refuse)" (always "services." first).  */
  char **snapshot_blockers;
  /* How the guest clock is set after a restore (snapshot.clock).  */
  enum avm_plan_clock clock;
  char *clock_service; /* AVM_PLAN_CLOCK_SERVICE: the helper that does it */
  char *agent_socket;  /* the console port of kind agent: the socket QEMU listens on, or NULL */

  char **sets;     /* the --set PATH=VALUE overrides the profile was resolved with (NULL-terminated) */
  char **warnings; /* grows: avm start adds the peers' */
  /* Output only (avm_plan_to_json).  */
  json_t *options, *detected, *pci, *missing;
};

/* The plan as `avm start --dry-run --json` prints it (see avm-start(1),
   "JSON PLAN"); the only place that JSON is made.  */
json_t *avm_plan_to_json (const struct avm_plan *plan);
/* Parts of it: the guest's reach ({"cid","macs","adb","display"}), the
   boot properties object.  */
json_t *avm_plan_guest_json (const struct avm_plan *plan);
json_t *avm_plan_boot_props_json (const struct avm_plan *plan);
/* "probed", "cached", "recorded".  */
const char *avm_plan_caps_source_name (enum avm_caps_source s);
/* Append a warning (a copy of MSG).  */
int avm_plan_add_warning (struct avm_plan *plan, const char *msg);
/* A tool of QEMU's ("qemu-img"): next to the plan's QEMU binary, else on
   $PATH; malloc'd, or NULL when it is not installed.  */
char *avm_plan_qemu_tool (const struct avm_plan *plan, const char *name);
/* The QEMU service (the last one).  */
const struct avm_plan_service *avm_plan_qemu (const struct avm_plan *plan);

int avm_plan_build (const struct avm_plan_request *req, struct avm_plan **out, avm_error_t *err);
void avm_plan_free (struct avm_plan *plan);
void avm_plan_freep (struct avm_plan **plan);
#define _cleanup_plan_ __attribute__ ((cleanup (avm_plan_freep)))

/* What PROFILE (resolved) asks of this host beyond what it has: guest
   memory above the host's, more vCPUs than CPUs online.  One warning
   string each is appended to WARNINGS.  avm_plan_build adds them to the
   plan's warnings, except for a layout or with --caps (a plan for another
   QEMU, maybe on another host); avm check reports them.  */
int avm_plan_host_fit (json_t *profile, json_t *warnings);

/* The QEMU command line, shell-quoted, one option per line, with a comment
   header.  */
int avm_plan_print_cmdline (const struct avm_plan *plan, FILE *out);

/* Runtime and state directories of an instance (malloc'd):
   $AVM_RUNTIME_DIR/N, else $XDG_RUNTIME_DIR/avm/N, or /run/avm/N as root;
   $AVM_STATE_DIR/N, else $XDG_STATE_HOME/avm/N, or /var/lib/avm/N as root.  */
char *avm_instance_run_dir (int instance);
char *avm_instance_state_dir (int instance);

/* The host's architecture as QEMU names it (uname's machine, "arm64" as
   "aarch64"), or "".  */
const char *avm_host_arch (void);

/* ARG (a planned argument, "$$" and ${fd:NAME} as written) split into its
   pieces; -EINVAL for an unterminated ${fd:.  */
int avm_plan_arg_parse (const char *arg, struct avm_plan_arg *out);
/* ARG as one literal piece (QEMU's arguments).  */
int avm_plan_arg_literal (const char *arg, struct avm_plan_arg *out);
/* The pieces written back ("$" as "$$"), malloc'd.  */
char *avm_plan_arg_string (const struct avm_plan_arg *a);
void avm_plan_arg_clear (struct avm_plan_arg *a);
