/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The approved QEMU command line.  Every option is generated here from
 * typed, validated profile values; device types come only from the
 * catalog (lib/qemu/catalog.c) and must exist in the QEMU at hand.  PCI
 * addresses are pinned: slot 2 is the GPU, the console devices follow from
 * slot 3, then the disks, then the other devices in a fixed order, so that
 * androidboot.boot_devices (bootprops.c) is derived from the same table.
 */
#include "plan/internal.h"
#include "util/fs.h"
#include "disk/props.h"
#include "qemu/catalog.h"
#include "util/cleanup.h"
#include "util/quote.h"
#include "util/strbuf.h"
#include "util/strfmt.h"

#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#define FIRST_CONSOLE_SLOT 3
#define MAX_SLOT 0x1f
/* Both x86 flash chips together (launch_cvd pads the bootloader to 4 MiB).  */
#define AVM_PFLASH_SIZE (4 << 20)

int
plan_new_line (struct plan_ctx *c)
{
  if (c->n_lines == c->lines_alloc)
    {
      size_t na = c->lines_alloc ? c->lines_alloc * 2 : 64;
      size_t *nl = realloc (c->lines, na * sizeof *nl);
      if (!nl)
        return -ENOMEM;
      c->lines = nl;
      c->lines_alloc = na;
    }
  c->lines[c->n_lines++] = c->argv.n;
  return 0;
}

/* One option line: OPT followed by an optional formatted value.  */
int
plan_opt (struct plan_ctx *c, const char *option, const char *fmt, ...)
{
  if (plan_new_line (c) < 0 || avm_argv_push (&c->argv, option) < 0)
    return avm_error_sys (c->err, ENOMEM, "building the QEMU command line");
  if (!fmt)
    return 0;
  va_list ap;
  va_start (ap, fmt);
  char *v = avm_vstrdupf (fmt, ap);
  va_end (ap);
  if (avm_argv_push_take (&c->argv, v) < 0)
    return avm_error_sys (c->err, ENOMEM, "building the QEMU command line");
  return 0;
}

/* A device from the catalog, checked against the QEMU capabilities.  */
int
plan_need_device (struct plan_ctx *c, const char *type, const char *key)
{
  const struct avm_qdev *d = avm_qdev_lookup (type);
  if (!d)
    return avm_error_fail (c->err, EINVAL, "internal error: device %s is not in the approved catalog", type);
  if (c->any_caps || avm_qemu_caps_has_device (c->caps, type))
    return 0;
  char added[64];
  if (d->since_major)
    snprintf (added, sizeof added, "added in QEMU %d.%d", d->since_major, d->since_minor);
  else
    snprintf (added, sizeof added, "not in upstream QEMU");
  return avm_error_input (c->err, "profile %s needs %s (%s, for %s), which %s %s lacks (%s); use %s%s",
                          c->req->profile->name, type, d->what, key, c->caps->binary, c->caps->version, added,
                          d->fix ? d->fix : "a QEMU that has it", d->fix && d->since_major ? " or a newer QEMU" : "");
}

int
plan_device (struct plan_ctx *c, const char *type, const char *key, int slot, const char *fmt, ...)
{
  int r = plan_need_device (c, type, key);
  if (r < 0)
    return r;
  _cleanup_free_ char *props = NULL;
  if (fmt)
    {
      va_list ap;
      va_start (ap, fmt);
      props = avm_vstrdupf (fmt, ap);
      va_end (ap);
      if (!props)
        return avm_error_sys (c->err, ENOMEM, "building the QEMU command line");
    }
  if (slot >= 0)
    {
      json_t *e = json_object ();
      char sl[16];
      snprintf (sl, sizeof sl, "0x%02x", slot);
      json_object_set_new (e, "slot", json_string (sl));
      json_object_set_new (e, "device", json_string (type));
      json_object_set_new (e, "for", json_string (key));
      json_array_append_new (c->pci, e);
      return plan_opt (c, "-device", "%s%s%s,addr=0x%x", type, props ? "," : "", props ? props : "", slot);
    }
  return plan_opt (c, "-device", "%s%s%s", type, props ? "," : "", props ? props : "");
}

int
plan_alloc_slot (struct plan_ctx *c, const char *what, int *slot)
{
  if (c->next_slot > MAX_SLOT - 1)
    return avm_error_input (c->err, "%s: too many PCI devices for one bus (at %s)", c->file, what);
  *slot = c->next_slot++;
  return 0;
}

/* A path or other free value inside a QEMU option: commas doubled.  */
char *
plan_qv (const char *s)
{
  return avm_qemu_escape (s);
}

int
plan_expand_q (struct plan_ctx *c, const char *s, const char *where, char **out)
{
  _cleanup_free_ char *e = NULL;
  int r = plan_expand (c, s, where, &e);
  if (r < 0)
    return r;
  *out = plan_qv (e);
  return *out ? 0 : -ENOMEM;
}

/* ---------------------------------------------------------------- */

/* Where QEMU's pc and q35 machines begin the memory-device region (the
   nvdimm's home): after the RAM above 4 GiB, rounded up to a GiB.  The RAM
   is split at 4 GiB once it reaches the machine's PCI hole (QEMU's
   hw/i386/pc_piix.c and pc_q35.c, unchanged from 2.x to 10.x: pc keeps
   3 GiB below once RAM reaches 3.5 GiB, q35 2 GiB once it reaches 2.75 GiB).  */
static uint64_t
device_memory_base (bool q35, uint64_t ram)
{
  uint64_t split = q35 ? 0xb0000000ULL : 0xe0000000ULL, low = q35 ? 0x80000000ULL : 0xc0000000ULL;
  uint64_t above = ram >= split ? ram - low : 0, gib = 1ULL << 30;
  return (1ULL << 32) + (above + gib - 1) / gib * gib;
}

/* machine.ramoops: the pstore nvdimm is pinned at the address the kernel
   arguments of the properties disk name (disk/props.h).  That address is
   inside QEMU's memory-device region only while the RAM above 4 GiB stays
   under a GiB (pc: 4 GiB of RAM, q35: 3 GiB); with more, QEMU would refuse
   the nvdimm, so it is left out with a warning (the kernel then finds RAM
   there and keeps ramoops off).  */
static int
check_pstore (struct plan_ctx *c, const char *type, long long mem, bool *on)
{
  if (!streq (c->arch, "x86_64"))
    return avm_error_input (c->err,
                            "%s: machine.ramoops: x86 machines only (launch_cvd attaches the pstore nvdimm on x86 "
                            "only); set it to false",
                            c->file);
  bool q35 = strncmp (type, "q35", 3) == 0 || strncmp (type, "pc-q35", 6) == 0;
  uint64_t base = device_memory_base (q35, (uint64_t) mem << 20);
  if (base <= AVM_RAMOOPS_ADDRESS)
    return 0;
  *on = false;
  return plan_warn (c,
                    "machine.ramoops: left out: with %lld MiB of RAM the %s machine puts memory devices at 0x%llx, "
                    "above the pstore address 0x%llx of the guest's kernel arguments (%s keeps it up to %d MiB)",
                    mem, type, (unsigned long long) base, (unsigned long long) AVM_RAMOOPS_ADDRESS, type,
                    q35 ? 3072 : 4096);
}

/* The pstore nvdimm (launch_cvd's qemu_manager.cpp, x86 only): a 2 MiB
   file in the state directory that avm makes at start and keeps from run
   to run, so the guest finds the previous boot's log in /sys/fs/pstore.  */
static int
emit_pstore (struct plan_ctx *c)
{
  _cleanup_free_ char *path = NULL, *qpath = NULL;
  int r;
  if ((r = plan_expand (c, "${state_dir}/pstore.img", "machine.ramoops", &path)) < 0)
    return r;
  if (!(qpath = plan_qv (path)))
    return avm_error_sys (c->err, ENOMEM, "plan");
  struct avm_plan_generated g
      = { .name = strdup ("pstore"), .kind = AVM_GENERATED_PSTORE, .path = strdup (path), .size = AVM_RAMOOPS_SIZE };
  if ((r = plan_add_generated (c, &g)) < 0)
    return r;
  if ((r = plan_opt (c, "-object", "memory-backend-file,id=objpmem0,share=on,mem-path=%s,size=%d", qpath,
                     AVM_RAMOOPS_SIZE))
      < 0)
    return r;
  return plan_device (c, "nvdimm", "machine.ramoops", -1, "memdev=objpmem0,id=ramoops,addr=0x%llx",
                      (unsigned long long) AVM_RAMOOPS_ADDRESS);
}

static int
emit_machine (struct plan_ctx *c)
{
  const char *type = pstr (c, "machine.type");
  const char *arch = c->arch;
  bool x86 = streq (arch, "x86_64");
  bool kvm = streq (c->accel, "kvm");
  long long mem = pint (c, "machine.memory"), cpus = pint (c, "machine.cpus");
  const char *backend = pstr (c, "machine.memory_backend");
  int r;

  if (!type)
    type = x86 ? "pc" : "virt";
  if (x86 && streq (type, "virt"))
    return avm_error_input (c->err, "%s: machine.type: virt is an aarch64 machine; use pc or q35 for x86_64", c->file);
  if (!x86 && !streq (type, "virt"))
    return avm_error_input (c->err, "%s: machine.type: %s is an x86 machine; use virt for aarch64", c->file, type);
  if (!c->any_caps && !avm_qemu_caps_has_machine (c->caps, type))
    return avm_error_input (c->err, "%s: machine.type: %s %s has no machine type %s", c->file, c->caps->binary,
                            c->caps->version, type);
  if (c->shared_memory && streq (backend, "default"))
    return avm_error_input (c->err,
                            "%s: machine.memory_backend: vhost-user devices need shared guest RAM; use auto, memfd or "
                            "file",
                            c->file);
  /* snapshot.fast: the RAM in a file of its own that a snapshot copies.  */
  bool fast = pbool (c, "snapshot.fast");
  if (fast && (streq (backend, "default") || streq (backend, "memfd")))
    return avm_error_input (c->err,
                            "%s: snapshot.fast keeps the guest RAM in the file ${run_dir}/ram; machine.memory_backend "
                            "%s contradicts it: use auto or file",
                            c->file, backend);
  bool shared = fast || c->shared_memory || streq (backend, "memfd") || streq (backend, "file");
  if (!x86 && !kvm && cpus > 8)
    return avm_error_input (c->err, "%s: machine.cpus: at most 8 vCPUs with GICv2 under TCG on aarch64", c->file);

  bool ramoops = pbool (c, "machine.ramoops");
  if (ramoops && (r = check_pstore (c, type, mem, &ramoops)) < 0)
    return r;

  if ((r = plan_opt (c, "-name", "guest=%s,debug-threads=on", c->guest_name)) < 0)
    return r;
  if ((r = plan_opt (c, "-machine", "%s,usb=off,dump-guest-core=off%s%s%s", type, ramoops ? ",nvdimm=on" : "",
                     shared ? ",memory-backend=vm_ram" : "", x86 ? "" : (kvm ? ",gic-version=3" : ",gic-version=2")))
      < 0)
    return r;
  if ((r = plan_opt (c, "-accel", "%s", c->accel)) < 0)
    return r;

  const char *cpu = pstr (c, "machine.cpu");
  if (streq (cpu, "auto"))
    cpu = kvm ? "host" : "max";
  else if (streq (cpu, "host") && !kvm)
    return avm_error_input (c->err, "%s: machine.cpu: \"host\" needs KVM but the accelerator is %s; use auto or max",
                            c->file, c->accel);
  for (const char *p = cpu; *p; p++)
    if (!strchr ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *p))
      return avm_error_input (c->err, "%s: machine.cpu: \"%s\" is not a CPU model name", c->file, cpu);
  if ((r = plan_opt (c, "-cpu", "%s", cpu)) < 0)
    return r;

  const char *snap_ram = c->req->restore ? c->req->restore->ram : NULL;
  if (fast && snap_ram)
    {
      /* A restore of a snapshot.fast snapshot: its RAM file mapped private
         (copy on write): the guest's pages come from it as they are
         touched, nothing is copied up front, and the file never changes.
         Such a guest's RAM is no longer shared: a save of it streams it.  */
      _cleanup_free_ char *qfile = plan_qv (snap_ram);
      if (!qfile)
        return avm_error_sys (c->err, ENOMEM, "plan");
      c->ram_line = c->n_lines;
      r = plan_opt (c, "-object", "memory-backend-file,id=vm_ram,size=%lldM,mem-path=%s,share=off", mem, qfile);
    }
  else if (fast)
    {
      _cleanup_free_ char *qfile = NULL;
      if (!(c->ram_file = avm_path_join (c->run_dir, "ram")) || !(qfile = plan_qv (c->ram_file)))
        return avm_error_sys (c->err, ENOMEM, "plan");
      c->ram_line = c->n_lines;
      r = plan_opt (c, "-object", "memory-backend-file,id=vm_ram,size=%lldM,mem-path=%s,share=on", mem, qfile);
    }
  else if (shared && !streq (backend, "file"))
    r = plan_opt (c, "-object", "memory-backend-memfd,id=vm_ram,size=%lldM,share=on", mem);
  else if (shared)
    {
      _cleanup_free_ char *dir = NULL;
      if ((r = plan_expand_q (c, pstr (c, "machine.memory_path"), "machine.memory_path", &dir)) < 0)
        return r;
      r = plan_opt (c, "-object", "memory-backend-file,id=vm_ram,size=%lldM,mem-path=%s,share=on", mem, dir);
    }
  if (r < 0)
    return r;
  if (ramoops)
    r = plan_opt (c, "-m", "%lldM,maxmem=%lldM,slots=2", mem, mem + (AVM_RAMOOPS_SIZE >> 20));
  else
    r = plan_opt (c, "-m", "%lldM", mem);
  if (r < 0 || (ramoops && (r = emit_pstore (c)) < 0))
    return r;
  if ((r = plan_opt (c, "-smp", "%lld,cores=%lld,threads=1", cpus, cpus)) < 0)
    return r;
  if ((r = plan_opt (c, "-overcommit", "mem-lock=off")) < 0)
    return r;
  static const char *const fixed[] = { "-no-user-config", "-nodefaults" };
  for (size_t i = 0; i < ARRAY_SIZE (fixed); i++)
    if ((r = plan_opt (c, fixed[i], NULL)) < 0)
      return r;
  if ((r = plan_opt (c, "-rtc", "base=utc")) < 0 || (r = plan_opt (c, "-boot", "strict=on")) < 0)
    return r;
  if ((r = plan_opt (c, "-msg", "timestamp=on")) < 0)
    return r;
  /* QMP for the supervisor (graceful stop, status, watchdog).  */
  _cleanup_free_ char *qmp = NULL;
  if (asprintf (&qmp, "%s/" AVM_QMP_SOCKET, c->run_dir) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  _cleanup_free_ char *qmpq = plan_qv (qmp);
  if ((r = plan_opt (c, "-chardev", "socket,id=qmp,path=%s,server=on,wait=off", qmpq)) < 0)
    return r;
  return plan_opt (c, "-mon", "chardev=qmp,mode=control");
}

void
plan_disk_clear (struct avm_plan_disk *d)
{
  free (d->name);
  free (d->path);
  free (d->format);
  free (d->layer);
  *d = (struct avm_plan_disk) { 0 };
}

/* The layer a restore puts disk NAME on, or NULL; marks it used.  */
static const char *
restore_layer (struct plan_ctx *c, const char *name, bool *used)
{
  const struct avm_plan_restore *rs = c->req->restore;
  for (size_t i = 0; rs && i < rs->nlayers; i++)
    if (streq (rs->layers[i].disk, name))
      {
        used[i] = true;
        return rs->layers[i].path;
      }
  return NULL;
}

static int
emit_disks (struct plan_ctx *c)
{
  size_t i;
  json_t *d;
  json_t *disks = avm_json_path (c->p, "disks");
  const struct avm_plan_restore *rs = c->req->restore;
  _cleanup_free_ bool *used = calloc (rs ? rs->nlayers + 1 : 1, sizeof *used);
  if (!used || !(c->disks = calloc (json_array_size (disks) + 1, sizeof *c->disks)))
    return avm_error_sys (c->err, ENOMEM, "plan");
  json_array_foreach (disks, i, d)
    {
      char where[48];
      _cleanup_free_ char *path = NULL, *qpath = NULL;
      const char *name = json_string_value (json_object_get (d, "name"));
      const char *format = json_string_value (json_object_get (d, "format"));
      bool snapshot = json_is_true (json_object_get (d, "snapshot"));
      bool readonly = json_is_true (json_object_get (d, "readonly"));
      snprintf (where, sizeof where, "disks[%zu]", i);
      for (size_t j = 0; j < c->ndisks; j++)
        if (streq (c->disks[j].name, name))
          return avm_error_input (c->err, "%s: %s.name: \"%s\" is used twice", c->file, where, name);
      char wpath[64];
      snprintf (wpath, sizeof wpath, "%s.path", where);
      int r = plan_expand (c, json_string_value (json_object_get (d, "path")), wpath, &path);
      if (r < 0)
        return r;
      /* A restore runs a writable disk on the snapshot's layer (qcow2 over
         the image), under a fresh top that QEMU drops at exit.  */
      const char *layer = readonly ? NULL : restore_layer (c, name, used);
      struct avm_plan_disk *pd = &c->disks[c->ndisks++];
      *pd = (struct avm_plan_disk) { .snapshot = snapshot, .readonly = readonly, .line = c->n_lines };
      if (!(pd->name = strdup (name)) || !(pd->path = strdup (path)) || !(pd->format = strdup (format))
          || (layer && !(pd->layer = strdup (layer))) || !(qpath = plan_qv (layer ? layer : path)))
        return avm_error_sys (c->err, ENOMEM, "plan");
      if ((r = plan_opt (c, "-drive", "file=%s,if=none,id=" AVM_PLAN_DRIVE_ID_FMT ",format=%s,aio=%s%s%s", qpath, i,
                         layer ? "qcow2" : format, json_string_value (json_object_get (d, "aio")),
                         snapshot || layer ? ",snapshot=on" : "", readonly ? ",readonly=on" : ""))
          < 0)
        return r;
      int slot = 0;
      if ((r = plan_alloc_slot (c, where, &slot)) < 0)
        return r;
      if ((r = plan_device (c, "virtio-blk-pci-non-transitional", where, slot,
                            "drive=" AVM_PLAN_DRIVE_ID_FMT ",id=virtio-disk%zu%s", i, i, i == 0 ? ",bootindex=1" : ""))
          < 0)
        return r;
    }
  for (i = 0; rs && i < rs->nlayers; i++)
    if (!used[i])
      /* (Not bad input: a snapshot that does not fit, as avm_snapshot_match
         says it; --restore-or-boot then boots.)  */
      return avm_error_fail (c->err, ESTALE,
                             "snapshot %s has a layer for disk %s, which %s does not have as a writable disk",
                             rs->snapshot, rs->layers[i].disk, c->file);
  return 0;
}

/* x86 firmware in flash (launch_cvd from Android 15: qemu_manager.cpp,
   assemble_cvd's InitializePflash): the bootloader read-only as unit 0,
   and a writable unit 1 (U-Boot's environment) that pads the pair to
   4 MiB, created by avm at start (plan "generated_disks", kind flash) and
   kept from run to run.  QEMU maps both below 4 GiB, unit 0 at the top
   (the reset vector), and wants each a whole number of 4 KiB sectors.  */
static int
emit_pflash (struct plan_ctx *c, const char *bios)
{
  _cleanup_free_ char *code = NULL, *vars = NULL, *qcode = NULL, *qvars = NULL;
  int r;
  if (!streq (c->arch, "x86_64"))
    return avm_error_input (c->err,
                            "%s: firmware.pflash: x86 machines only (%s boots its firmware with -bios, as launch_cvd "
                            "does); set it to false",
                            c->file, c->arch);
  if ((r = plan_expand (c, bios, "firmware.bios", &code)) < 0
      || (r = plan_expand (c, "${state_dir}/pflash.img", "firmware.pflash", &vars)) < 0)
    return r;
  struct stat st;
  if (stat (code, &st) == 0 && S_ISREG (st.st_mode) && (st.st_size % 4096 != 0 || st.st_size >= AVM_PFLASH_SIZE))
    return avm_error_input (c->err,
                            "%s: firmware.bios %s is %lld bytes: in flash (firmware.pflash) it must be a whole number "
                            "of 4 KiB sectors and smaller than 4 MiB",
                            c->file, code, (long long) st.st_size);
  if (!(qcode = plan_qv (code)) || !(qvars = plan_qv (vars)))
    return avm_error_sys (c->err, ENOMEM, "plan");
  struct avm_plan_generated g = { .name = strdup ("pflash"),
                                  .kind = AVM_GENERATED_FLASH,
                                  .path = strdup (vars),
                                  .code = strdup (code),
                                  .size = AVM_PFLASH_SIZE };
  if ((r = plan_add_generated (c, &g)) < 0)
    return r;
  if ((r = plan_opt (c, "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=%s", qcode)) < 0)
    return r;
  return plan_opt (c, "-drive", "if=pflash,format=raw,unit=1,file=%s", qvars);
}

static int
emit_firmware (struct plan_ctx *c)
{
  const char *bios = pstr (c, "firmware.bios"), *kernel = pstr (c, "firmware.kernel");
  const char *initrd = pstr (c, "firmware.initrd"), *cmdline = pstr (c, "firmware.cmdline");
  int r;
  if (bios && kernel)
    return avm_error_input (c->err, "%s: firmware: bios and kernel exclude each other", c->file);
  if ((initrd || cmdline) && !kernel)
    return avm_error_input (c->err, "%s: firmware: initrd and cmdline need firmware.kernel", c->file);
  if (bios && pbool (c, "firmware.pflash"))
    return emit_pflash (c, bios);
  if (pbool (c, "firmware.pflash"))
    return avm_error_input (c->err, "%s: firmware.pflash: there is no firmware.bios to put in flash", c->file);
  if (bios)
    {
      _cleanup_free_ char *p = NULL;
      if ((r = plan_expand (c, bios, "firmware.bios", &p)) < 0)
        return r;
      return plan_opt (c, "-bios", "%s", p);
    }
  if (!kernel)
    return 0;
  _cleanup_free_ char *k = NULL, *i = NULL, *a = NULL;
  if ((r = plan_expand (c, kernel, "firmware.kernel", &k)) < 0 || (r = plan_opt (c, "-kernel", "%s", k)) < 0)
    return r;
  if (initrd
      && ((r = plan_expand (c, initrd, "firmware.initrd", &i)) < 0 || (r = plan_opt (c, "-initrd", "%s", i)) < 0))
    return r;
  if (cmdline
      && ((r = plan_expand (c, cmdline, "firmware.cmdline", &a)) < 0 || (r = plan_opt (c, "-append", "%s", a)) < 0))
    return r;
  return 0;
}

/* A share that is not left out (its service skipped).  */
static bool
any_share (struct plan_ctx *c)
{
  size_t i;
  json_t *sh;
  json_array_foreach (avm_json_path (c->p, "shares"), i, sh)
    if (!plan_service_skipped (c, json_string_value (json_object_get (sh, "service"))))
      return true;
  return false;
}

static bool
needs_shared_memory (struct plan_ctx *c)
{
  return streq (pstr (c, "display.gpu"), "vhost-user-gpu") || streq (pstr (c, "vsock.mode"), "vhost-user")
         || streq (pstr (c, "audio.model"), "vhost-user-snd") || streq (pstr (c, "video.model"), "vhost-user-video")
         || any_share (c) || json_array_size (avm_json_path (c->p, "input.vhost_user")) > 0;
}

int
plan_qemu_argv (struct plan_ctx *c)
{
  int r;
  c->next_slot = FIRST_CONSOLE_SLOT;
  c->shared_memory = needs_shared_memory (c);
  if ((r = plan_new_line (c)) < 0 || (r = avm_argv_push (&c->argv, c->qemu_binary)) < 0)
    return avm_error_sys (c->err, ENOMEM, "building the QEMU command line");
  if ((r = emit_machine (c)) < 0 || (r = plan_emit_display (c)) < 0 || (r = plan_emit_gpu (c)) < 0
      || (r = plan_emit_web (c)) < 0 || (r = plan_emit_serial (c)) < 0 || (r = plan_emit_consoles (c)) < 0
      || (r = emit_disks (c)) < 0 || (r = plan_emit_devices (c)) < 0 || (r = emit_firmware (c)) < 0)
    return r;
  /* A restore: QEMU starts paused and waits for the saved state, which the
     supervisor hands it over QMP (migrate-incoming).  */
  if (c->req->restore && (r = plan_opt (c, "-incoming", "defer")) < 0)
    return r;

  size_t i;
  json_t *a;
  json_array_foreach (avm_json_path (c->p, "extra_qemu_args"), i, a)
    {
      const char *s = json_string_value (a);
      if (s[0] == '-' || i == 0)
        r = plan_new_line (c);
      if (r < 0 || avm_argv_push (&c->argv, s) < 0)
        return avm_error_sys (c->err, ENOMEM, "building the QEMU command line");
    }
  return 0;
}
