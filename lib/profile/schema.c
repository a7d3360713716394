/* SPDX-License-Identifier: Apache-2.0 */
#include "profile/schema.h"
#include "util/cleanup.h"
#include "util/strbuf.h"
#include "util/strfmt.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool
avm_strv_has (const char *const *v, const char *s)
{
  for (; v && *v; v++)
    if (streq (*v, s))
      return true;
  return false;
}

static size_t
avm_strv_count (const char *const *v)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

#define END { NULL, 0, NULL, 0, 0, NULL, NULL, 0, NULL }
#define V(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* -------- leaf helpers -------- */
#define STR(n, d, f, doc) { n, AVM_ST_STRING, NULL, 0, 0, NULL, d, f, doc }
#define INT(n, lo, hi, d, doc) { n, AVM_ST_INT, NULL, lo, hi, NULL, d, 0, doc }
#define BOOL(n, d, doc) { n, AVM_ST_BOOL, NULL, 0, 0, NULL, d, 0, doc }
#define ENUM(n, vals, d, doc) { n, AVM_ST_ENUM, NULL, 0, 0, vals, d, 0, doc }
#define OBJ(n, sub, f, doc) { n, AVM_ST_OBJECT, sub, 0, 0, NULL, NULL, f, doc }
#define ARR(n, f, doc, ...) { n, AVM_ST_ARRAY, (const struct avm_skey[]){ __VA_ARGS__, END }, 0, 0, NULL, NULL, f, doc }
#define MAP(n, f, doc, ...) { n, AVM_ST_MAP, (const struct avm_skey[]){ __VA_ARGS__, END }, 0, 0, NULL, NULL, f, doc }

static const struct avm_skey machine_keys[] = {
  ENUM ("arch", V ("x86_64", "aarch64"), "\"x86_64\"", "Guest architecture; selects qemu-system-ARCH."),
  ENUM ("type", V ("pc", "q35", "virt"), NULL,
        "QEMU machine type (default: pc for x86_64, virt for aarch64)."),
  { "accel", AVM_ST_ENUM_LIST, NULL, 0, 0, V ("kvm", "tcg"), "[\"kvm\", \"tcg\"]", 0,
    "Accelerators in order of preference; the first one usable on this host is used (a string is a list of one)." },
  INT ("cpus", 1, 256, "2", "Number of vCPUs."),
  { "memory", AVM_ST_SIZE_MIB, NULL, 128, 1048576, NULL, "4096", 0,
    "Guest RAM: integer MiB or a string with a unit (\"4G\", \"512M\")." },
  STR ("cpu", "\"auto\"", AVM_SF_TEXT,
       "CPU model: auto (host with KVM, max with TCG), host, max, or a QEMU CPU model name."),
  ENUM ("memory_backend", V ("auto", "default", "memfd", "file"), "\"auto\"",
        "Guest RAM backend: auto (shared memfd when a vhost-user device needs it), default, memfd or file (share=on)."),
  STR ("memory_path", "\"/dev/shm\"", AVM_SF_TEXT, "Directory for the file memory backend."),
  END,
};

static const struct avm_skey qemu_keys[] = {
  STR ("binary", "\"qemu-system-${arch}\"", AVM_SF_TEXT | AVM_SF_NOTEMPTY,
       "QEMU binary: a path, or a name searched in qemu.search_path then $PATH."),
  STR ("search_path", "\"\"", AVM_SF_TEXT, "Colon-separated directories searched for the QEMU binary first."),
  END,
};

static const struct avm_skey paths_keys[] = {
  STR ("images", "\"/images\"", AVM_SF_TEXT,
       "Directory holding the disk images and bootloader (${images}; --images overrides). Several may be listed, "
       "colon-separated: the first that exists."),
  STR ("images_hint", NULL, AVM_SF_TEXT | AVM_SF_NOTEMPTY,
       "How to get the images, said when the images directory does not exist (e.g. the demo's `make demo-image`)."),
  STR ("helpers", "\"\"", AVM_SF_TEXT, "Colon-separated directories searched for helper programs before $PATH."),
  END,
};

static const struct avm_skey firmware_keys[] = {
  STR ("bios", NULL, AVM_SF_TEXT, "Bootloader image passed with -bios (U-Boot for Cuttlefish images)."),
  BOOL ("pflash", "false",
        "x86 only: load firmware.bios as a read-only flash chip instead of -bios, with a writable second chip "
        "(${state_dir}/pflash.img, kept from run to run) padding the pair to 4 MiB, as launch_cvd does for x86 "
        "images from Android 15."),
  STR ("kernel", NULL, AVM_SF_TEXT, "Kernel for direct boot (-kernel)."),
  STR ("initrd", NULL, AVM_SF_TEXT, "Initial ramdisk for direct boot (-initrd)."),
  STR ("cmdline", NULL, AVM_SF_TEXT, "Kernel command line for direct boot (-append)."),
  END,
};

static const struct avm_skey disk_keys[] = {
  STR ("name", NULL, AVM_SF_REQUIRED | AVM_SF_NAME, "Disk name (unique)."),
  STR ("path", NULL, AVM_SF_REQUIRED | AVM_SF_TEXT | AVM_SF_NOTEMPTY, "Image file."),
  ENUM ("format", V ("raw", "qcow2"), "\"raw\"", "Image format."),
  BOOL ("snapshot", "false", "Discard guest writes when QEMU exits (snapshot=on)."),
  BOOL ("readonly", "false", "Attach read-only."),
  ENUM ("aio", V ("threads", "native", "io_uring"), "\"threads\"", "QEMU AIO mode."),
  BOOL ("boot_device", "true", "List this disk in androidboot.boot_devices (Android profiles)."),
  BOOL ("boot_properties", "false",
        "avm generates this disk from the plan's boot properties before QEMU starts, and rebuilds it when they change."),
  STR ("key", "\"${images}/avb_key.pem\"", AVM_SF_TEXT | AVM_SF_NOTEMPTY,
       "AVB signing key (PEM, RSA-4096) of a generated disk; only used with boot_properties."),
  END,
};

static const struct avm_skey output_keys[] = {
  { "xres", AVM_ST_INT, NULL, 64, 8192, NULL, NULL, AVM_SF_REQUIRED, "Horizontal resolution in pixels." },
  { "yres", AVM_ST_INT, NULL, 64, 8192, NULL, NULL, AVM_SF_REQUIRED, "Vertical resolution in pixels." },
  INT ("dpi", 60, 1000, "160", "Pixel density (androidboot.lcd_density from the first output)."),
  END,
};

static const struct avm_skey vnc_keys[] = {
  STR ("listen", "\"127.0.0.1\"", AVM_SF_TEXT, "Address the VNC server listens on (loopback unless said otherwise)."),
  INT ("display", 0, 99, "0", "VNC display number (port 5900 + display + instance - 1)."),
  END,
};

static const struct avm_skey display_keys[] = {
  ENUM ("backend", V ("none", "dbus", "egl-headless", "vnc", "gtk"), "\"none\"",
        "QEMU display backend; dbus starts a private dbus-daemon for an external display program."),
  ENUM ("gpu", V ("none", "virtio-gpu", "virtio-gpu-gl", "vhost-user-gpu"), "\"virtio-gpu\"",
        "GPU device: virtio-gpu (guest rendering), virtio-gpu-gl (virgl in QEMU), vhost-user-gpu (virgl in a backend service)."),
  STR ("gpu_service", "\"vhost-user-gpu\"", AVM_SF_NAME, "Service providing the vhost-user-gpu backend socket."),
  BOOL ("gl", "false", "Enable OpenGL in the display backend (gl=on)."),
  ARR ("outputs", 0, "Display outputs; the first sets xres/yres, their count sets max_outputs.",
       OBJ (NULL, output_keys, 0, "A display output.")),
  OBJ ("vnc", vnc_keys, 0, "VNC server (backend vnc)."),
  END,
};

static const struct avm_skey vhost_input_keys[] = {
  STR ("name", NULL, AVM_SF_REQUIRED | AVM_SF_NAME, "Input device name."),
  STR ("service", NULL, AVM_SF_REQUIRED | AVM_SF_NAME, "Service providing the vhost-user-input socket."),
  END,
};

static const struct avm_skey input_keys[] = {
  BOOL ("keyboard", "true", "virtio keyboard."),
  ENUM ("touch", V ("none", "mouse", "tablet", "multitouch"), "\"mouse\"",
        "Pointing device the touchscreen is driven with: virtio mouse, tablet or multitouch (QEMU 8.1+)."),
  BOOL ("rotary", "false", "virtio rotary encoder (virtio-rotary-pci, only in patched QEMU builds)."),
  ARR ("vhost_user", 0, "vhost-user-input devices served by backend services.",
       OBJ (NULL, vhost_input_keys, 0, "A vhost-user input device.")),
  END,
};

static const struct avm_skey audio_keys[] = {
  ENUM ("model", V ("none", "ac97", "intel-hda", "virtio-sound", "vhost-user-snd"), "\"none\"",
        "Sound device (virtio-sound needs QEMU 8.2, vhost-user-snd QEMU 9.0)."),
  ENUM ("backend", V ("none", "pipewire", "pa", "alsa", "dbus"), "\"none\"", "Host audio driver (-audiodev)."),
  STR ("service", "\"vhost-user-snd\"", AVM_SF_NAME, "Service providing the vhost-user-snd socket."),
  END,
};

static const struct avm_skey vsock_keys[] = {
  ENUM ("mode", V ("none", "kernel", "vhost-user"), "\"none\"",
        "kernel: vhost-vsock (/dev/vhost-vsock); vhost-user: a vhost-user-vsock backend service."),
  INT ("guest_cid", 3, 4294967294LL, "3", "Guest CID of instance 1; instance N uses guest_cid + N - 1 (${cid})."),
  STR ("service", "\"vhost-user-vsock\"", AVM_SF_NAME, "Service providing the vhost-user-vsock socket."),
  END,
};

static const struct avm_skey video_keys[] = {
  ENUM ("model", V ("none", "vhost-user-video"), "\"none\"",
        "Video decoder: vhost-user-video (virtio-video served by a backend service; the QEMU device exists only in "
        "out-of-tree builds)."),
  STR ("service", "\"vhost-user-video\"", AVM_SF_NAME, "Service providing the vhost-user-video socket."),
  END,
};

static const struct avm_skey port_keys[] = {
  STR ("name", NULL, AVM_SF_REQUIRED | AVM_SF_NAME, "Port name (unique)."),
  ENUM ("kind", V ("null", "log", "file", "pipe", "socket"), "\"null\"",
        "null: discarded; log: read by avm into a size-capped log and matched for boot patterns; "
        "file: written by QEMU to path; pipe: FIFO pair path.in/path.out for a helper; socket: unix socket QEMU listens on."),
  STR ("path", NULL, AVM_SF_TEXT, "Path (file, pipe base name, socket); log ports default to ${run_dir}/NAME.fifo."),
  STR ("tee", NULL, AVM_SF_NAME,
       "Log ports: a pipe resource that also receives everything read (for a helper such as kernel_log_monitor)."),
  END,
};

static const struct avm_skey consoles_keys[] = {
  ENUM ("transport", V ("per-port", "multiport"), "\"per-port\"",
        "per-port: one virtio-serial PCI device per port (start-avm, Android 14 images); multiport: one device."),
  ARR ("ports", 0, "virtio-console ports in hvc order.",
       OBJ (NULL, port_keys, 0, "A virtio console port (hvcN = index).")),
  END,
};

static const struct avm_skey serial_keys[] = {
  ENUM ("kind", V ("none", "null", "log", "file", "pipe", "socket"), "\"none\"", "Legacy serial port (ttyS0/ttyAMA0)."),
  STR ("path", NULL, AVM_SF_TEXT, "Path for file, pipe or socket."),
  STR ("port", NULL, AVM_SF_NAME, "Share the log FIFO of this console port (kind log)."),
  END,
};

static const struct avm_skey forward_keys[] = {
  ENUM ("proto", V ("tcp", "udp"), "\"tcp\"", "Protocol."),
  STR ("host_addr", "\"127.0.0.1\"", AVM_SF_TEXT, "Host address (loopback unless said otherwise)."),
  { "host_port", AVM_ST_INT, NULL, 1, 65535, NULL, NULL, AVM_SF_REQUIRED, "Host port of instance 1 (instance N adds N - 1)." },
  { "guest_port", AVM_ST_INT, NULL, 1, 65535, NULL, NULL, AVM_SF_REQUIRED, "Guest port." },
  END,
};

#define SLIRP_KEYS                                                                                                     \
  STR ("net", NULL, AVM_SF_TEXT, "Mode user: the guest's network, an IPv4 CIDR (QEMU's default 10.0.2.0/24)."),          \
      STR ("host", NULL, AVM_SF_TEXT,                                                                                  \
           "Mode user: the host's address in that network (default: its .2); connections to it reach the host's "    \
           "loopback."),                                                                                               \
      STR ("dns", NULL, AVM_SF_TEXT, "Mode user: the virtual DNS server's address (default: its .3).")

static const struct avm_skey ethernet_keys[] = {
  ENUM ("mode", V ("none", "user", "tap"), "\"none\"",
        "The second NIC (guest eth1, Cuttlefish's ethernet interface): none, user networking or a tap interface."),
  STR ("tap", "\"cvd-etap-01\"", AVM_SF_TEXT, "Tap interface name (mode tap)."),
  STR ("mac", "\"00:1a:11:e1:cf:00\"", AVM_SF_TEXT, "MAC address (instance N adds N - 1 to the last byte)."),
  BOOL ("vhost", "false", "vhost-net acceleration for tap (/dev/vhost-net)."),
  SLIRP_KEYS,
  END,
};

static const struct avm_skey network_keys[] = {
  ENUM ("mode", V ("none", "user", "tap"), "\"user\"", "user: QEMU user networking; tap: an existing tap interface."),
  STR ("tap", "\"cvd-mtap-01\"", AVM_SF_TEXT, "Tap interface name (mode tap)."),
  STR ("mac", "\"00:1a:11:e0:cf:00\"", AVM_SF_TEXT, "MAC address of the NIC (instance N adds N - 1 to the last byte)."),
  BOOL ("vhost", "false", "vhost-net acceleration for tap (/dev/vhost-net)."),
  SLIRP_KEYS,
  ARR ("forwards", 0, "Host-to-guest port forwards (mode user).",
       OBJ (NULL, forward_keys, 0, "A host port forward.")),
  OBJ ("ethernet", ethernet_keys, 0, "A second NIC (guest eth1)."),
  END,
};

static const struct avm_skey share_keys[] = {
  STR ("tag", NULL, AVM_SF_REQUIRED | AVM_SF_NAME, "Mount tag seen by the guest."),
  STR ("service", NULL, AVM_SF_REQUIRED | AVM_SF_NAME, "virtiofsd service serving the share."),
  END,
};

static const struct avm_skey service_keys[] = {
  { "exec", AVM_ST_ARRAY, (const struct avm_skey[]){ STR (NULL, NULL, AVM_SF_TEXT, "An argument."), END }, 0, 0,
    NULL, NULL, AVM_SF_REQUIRED | AVM_SF_NOTEMPTY,
    "Program and arguments (argv; never a shell). ${socket}, ${fd:RESOURCE} and profile variables are expanded." },
  { "alternatives", AVM_ST_ARRAY, (const struct avm_skey[]){ STR (NULL, NULL, AVM_SF_TEXT | AVM_SF_NOTEMPTY, "A program name."), END },
    0, 0, NULL, NULL, 0,
    "Other names of the program (exec[0]), tried in order when it is not found (a host package's build and an upstream one)." },
  MAP ("env", 0, "Environment variables added for the service.",
       STR (NULL, NULL, AVM_SF_TEXT, "A value.")),
  BOOL ("enabled", "true", "Start this service."),
  ENUM ("flags", V ("none", "gflags"), "\"none\"",
        "How the program parses its flags: gflags (Cuttlefish's host tools): avm asks it once for the flags it "
        "defines (--helpxml, cached per binary) and refuses an argv with a flag it does not know."),
  STR ("workdir", NULL, AVM_SF_TEXT,
       "Working directory of the service (created by avm when missing); default: the directory avm was started in."),
  STR ("socket", NULL, AVM_SF_TEXT, "Unix socket the service listens on (vhost-user backends; ${socket})."),
  ENUM ("ready", V ("none", "socket", "file", "notify"), "\"none\"",
        "Readiness: socket (listening, checked without connecting), file (appears), notify (sd_notify READY=1), none."),
  STR ("ready_path", NULL, AVM_SF_TEXT, "File that signals readiness (ready: file)."),
  INT ("ready_timeout", 1, 3600, "10", "Seconds to wait for readiness."),
  { "after", AVM_ST_ARRAY, (const struct avm_skey[]){ STR (NULL, NULL, AVM_SF_NAME, "A service name."), END }, 0, 0,
    NULL, "[]", 0, "Services that must be ready before this one starts." },
  ENUM ("restart", V ("no", "on-failure", "always"), "\"on-failure\"", "Restart policy."),
  BOOL ("critical", "false", "Tear the platform down when this service fails for good."),
  BOOL ("requires_root", "false",
        "The program runs only as root (Debian 12's virtiofsd). When avm does not run as root, a critical service "
        "is refused with what to do; any other is skipped, and the shares it serves are left out."),
  INT ("stop_timeout", 1, 600, "5", "Seconds between SIGTERM and SIGKILL at stop."),
  STR ("description", NULL, AVM_SF_TEXT, "What the service is for."),
  MAP ("boot_properties", AVM_SF_FLATKEYS | AVM_SF_PROPKEY,
       "Boot properties the guest needs only when this service runs (its port, its address); written when the service "
       "is planned, not when it is disabled or skipped. The profile's own boot_properties override them.",
       STR (NULL, NULL, AVM_SF_TEXT | AVM_SF_NOTEMPTY, "A value.")),
  END,
};

static const struct avm_skey resource_keys[] = {
  { "type", AVM_ST_ENUM, NULL, 0, 0,
    V ("fifo", "unix-listen", "vsock-listen", "tcp-listen", "pipe", "socketpair", "directory", "port"), NULL, AVM_SF_REQUIRED,
    "fifo: a FIFO held open read-write; unix-listen/vsock-listen/tcp-listen: listening sockets; pipe: a pipe (NAME.read, "
    "NAME.write); socketpair: a connected pair, one end for a helper (NAME), the other held by avm; directory: created "
    "(mkdir -p); port: a port number a helper binds itself (${port:NAME}), nothing created." },
  STR ("path", NULL, AVM_SF_TEXT, "Path (fifo, unix-listen, directory)."),
  INT ("port", 1, 65535, NULL,
       "Port of instance 1 (vsock-listen, tcp-listen, port; instance N adds N - 1), or the vsock port a unix-listen "
       "socket stands for (vhost-user-vsock, unchanged per instance)."),
  STR ("address", "\"127.0.0.1\"", AVM_SF_TEXT, "Listen address (tcp-listen)."),
  END,
};

static const struct avm_skey boot_keys[] = {
  STR ("console", NULL, AVM_SF_NAME, "Console port (kind log) watched for the boot patterns."),
  { "completed", AVM_ST_ARRAY, (const struct avm_skey[]){ STR (NULL, NULL, AVM_SF_TEXT | AVM_SF_NOTEMPTY, "A pattern."), END },
    0, 0, NULL, "[]", 0, "Substrings that mean the guest has booted." },
  { "failed", AVM_ST_ARRAY, (const struct avm_skey[]){ STR (NULL, NULL, AVM_SF_TEXT | AVM_SF_NOTEMPTY, "A pattern."), END },
    0, 0, NULL, "[]", 0, "Substrings that mean the boot failed." },
  INT ("timeout", 0, 86400, "0", "Seconds to wait for boot before failing (0: no limit)."),
  INT ("tcg_multiplier", 1, 100, "1",
       "The timeout is multiplied by this when the accelerator is tcg (software emulation boots many times slower)."),
  INT ("reset_limit", 0, 1000, "0",
       "Guest resets (QMP RESET) tolerated before a boot completes; one more is a boot failure, a boot loop (0: no limit)."),
  END,
};

static const struct avm_skey logs_keys[] = {
  { "max_size", AVM_ST_SIZE_MIB, NULL, 1, 4096, NULL, "8", 0,
    "Largest log file, MiB or with a unit (\"8M\"); a fuller one is rotated to NAME.log.1, .2, ..." },
  INT ("files", 1, 100, "3", "Files kept per log, the current one included (NAME.log, NAME.log.1, ...)."),
  END,
};

static const struct avm_skey stop_keys[] = {
  INT ("timeout", 0, 3600, "30",
       "Seconds to wait for the guest after system_powerdown before quitting QEMU (0: no power-down, QMP quit at once)."),
  END,
};

static const struct avm_skey choice_keys[] = {
  STR ("description", NULL, AVM_SF_TEXT, "What this choice selects."),
  { "set", AVM_ST_OBJECT, NULL, 0, 0, NULL, "{}", 0,
    "JSON merge patch (RFC 7386) applied to the profile when this choice is selected." },
  END,
};

static const struct avm_skey option_keys[] = {
  STR ("description", NULL, AVM_SF_TEXT, "What the option selects."),
  STR ("default", NULL, AVM_SF_REQUIRED | AVM_SF_NAME,
       "Choice used unless --option NAME=CHOICE says otherwise (or detection, see detect, tells)."),
  ENUM ("detect", V ("cuttlefish-release"), NULL,
        "Choose from what the images directory contains unless --option NAME=CHOICE is given: cuttlefish-release "
        "detects the Android release of a Cuttlefish image set (avm-releases(7)); the default applies when nothing "
        "tells."),
  MAP ("choices", AVM_SF_REQUIRED, "The choices.",
       OBJ (NULL, choice_keys, 0, "A choice.")),
  END,
};

static const struct avm_skey cuttlefish_keys[] = {
  BOOL ("config", "false",
        "Write the per-instance configuration the Cuttlefish host tools read ($CUTTLEFISH_CONFIG_FILE: ${cf_config}) "
        "and create the directories they write to (${cf_instance_dir}: logs/, internal/, tombstones/)."),
  STR ("root", "\"${state_dir}/cuttlefish\"", AVM_SF_TEXT | AVM_SF_NOTEMPTY,
       "Its root_dir (absolute): the instance's files are ROOT/instances/cvd-N (secure_env's state, the helpers' own "
       "logs, tombstones); kept across starts."),
  END,
};

static const struct avm_skey root_keys[] = {
  STR ("description", NULL, AVM_SF_TEXT, "One line describing the platform."),
  STR ("extends", NULL, AVM_SF_TEXT, "Parent profile (name or path); this profile is a merge patch over it."),
  MAP ("options", 0, "Named variants selected with --option NAME=CHOICE.",
       OBJ (NULL, option_keys, 0, "An option.")),
  OBJ ("machine", machine_keys, 0, "Machine, CPU and memory."),
  OBJ ("qemu", qemu_keys, 0, "The QEMU binary."),
  OBJ ("paths", paths_keys, 0, "Directories."),
  OBJ ("firmware", firmware_keys, 0, "Bootloader or direct kernel boot."),
  ARR ("disks", 0, "virtio-blk disks in PCI order; the first is the boot disk.",
       OBJ (NULL, disk_keys, 0, "A disk.")),
  OBJ ("display", display_keys, 0, "Display backend, GPU and outputs."),
  OBJ ("input", input_keys, 0, "Input devices."),
  OBJ ("audio", audio_keys, 0, "Sound."),
  OBJ ("vsock", vsock_keys, 0, "virtio-vsock."),
  OBJ ("video", video_keys, 0, "virtio-video (cameras, Extended View System)."),
  OBJ ("consoles", consoles_keys, 0, "virtio-console ports."),
  OBJ ("serial", serial_keys, 0, "Legacy serial port."),
  OBJ ("network", network_keys, 0, "Network interface."),
  BOOL ("rng", "true", "virtio-rng fed from /dev/urandom."),
  BOOL ("balloon", "true", "virtio-balloon."),
  BOOL ("xhci", "false", "USB xHCI controller."),
  ARR ("shares", 0, "virtiofs shares (vhost-user-fs), each served by a virtiofsd service.",
       OBJ (NULL, share_keys, 0, "A virtiofs share.")),
  OBJ ("cuttlefish", cuttlefish_keys, 0, "The Cuttlefish host tools' own configuration."),
  MAP ("vars", 0,
       "The profile's own variables, ${var:NAME} in any string (options set them to vary one value used in many "
       "places, e.g. the HAL implementations secure_env serves for a release).",
       STR (NULL, NULL, AVM_SF_TEXT, "A value (may refer to other variables).")),
  MAP ("service_env", 0, "Environment variables given to every service (a service's env adds to it).",
       STR (NULL, NULL, AVM_SF_TEXT, "A value.")),
  MAP ("services", 0, "Helper services started before QEMU, keyed by name.",
       OBJ (NULL, service_keys, 0, "A helper service.")),
  MAP ("resources", 0, "FIFOs, listening sockets and pipes created by avm before any process starts; services get them as ${fd:NAME}.",
       OBJ (NULL, resource_keys, 0, "A resource.")),
  OBJ ("boot", boot_keys, 0, "Boot detection."),
  OBJ ("stop", stop_keys, 0, "Shutdown."),
  OBJ ("logs", logs_keys, 0, "Log files of the consoles, the helpers and QEMU (${state_dir}/logs)."),
  MAP ("boot_properties", AVM_SF_FLATKEYS | AVM_SF_PROPKEY, "androidboot.* boot properties written to the bootconfig partition; derived keys are added by avm.",
       STR (NULL, NULL, AVM_SF_TEXT | AVM_SF_NOTEMPTY, "A value.")),
  { "extra_qemu_args", AVM_ST_ARRAY, (const struct avm_skey[]){ STR (NULL, NULL, 0, "An argument."), END }, 0, 0, NULL,
    NULL, 0, "Unapproved free-form QEMU arguments; refused unless --allow-unapproved, flagged in every output." },
  END,
};

static const struct avm_skey root = { "", AVM_ST_OBJECT, root_keys, 0, 0, NULL, NULL, 0, "A device profile." };

const struct avm_skey *
avm_profile_schema (void)
{
  return &root;
}

const struct avm_skey *
avm_skey_child (const struct avm_skey *s, const char *key)
{
  if (!s || !s->sub)
    return NULL;
  if (s->type == AVM_ST_MAP || s->type == AVM_ST_ARRAY)
    return &s->sub[0];
  if (s->type != AVM_ST_OBJECT)
    return NULL;
  for (const struct avm_skey *k = s->sub; k->name; k++)
    if (streq (k->name, key))
      return k;
  return NULL;
}

/* ---------------------------------------------------------------- */

char *
avm_json_brief (const json_t *v)
{
  char *s = json_dumps (v, JSON_ENCODE_ANY | JSON_COMPACT);
  if (s && strlen (s) > 60)
    strcpy (s + 56, "...");
  return s ? s : strdup ("?");
}

static size_t
edit_distance (const char *a, const char *b)
{
  size_t la = strlen (a), lb = strlen (b);
  if (la > 64 || lb > 64)
    return 99;
  size_t d[65];
  for (size_t j = 0; j <= lb; j++)
    d[j] = j;
  for (size_t i = 1; i <= la; i++)
    {
      size_t prev = d[0];
      d[0] = i;
      for (size_t j = 1; j <= lb; j++)
        {
          size_t cur = d[j];
          size_t best = prev + (tolower ((unsigned char) a[i - 1]) != tolower ((unsigned char) b[j - 1]));
          if (d[j] + 1 < best)
            best = d[j] + 1;
          if (d[j - 1] + 1 < best)
            best = d[j - 1] + 1;
          d[j] = best;
          prev = cur;
        }
    }
  return d[lb];
}

const char *
avm_closest (const char *word, const char *const *cands, size_t n)
{
  const char *best = NULL;
  size_t bestd = (size_t) -1, limit = strlen (word) / 3 + 1;
  for (size_t i = 0; i < n; i++)
    {
      size_t d = edit_distance (word, cands[i]);
      if (d < bestd)
        {
          bestd = d;
          best = cands[i];
        }
    }
  return bestd <= limit ? best : NULL;
}

struct vctx
{
  const char *file;
  avm_error_t *err;
  int nerr;
  bool partial; /* a fragment (file with extends, patch, --set): no required keys, no defaults, null deletes */
};

/* Where a value is: a chain of keys and indexes up to the root, kept on the
   stack while the validation descends and written out only for an error
   (a string per node visited was a fifth of a dry run's instructions).  */
struct vpath
{
  const struct vpath *up;
  const char *key;  /* an object key, or NULL: ... */
  size_t idx;       /* ... an array index */
  const char *text; /* the root: the path the fragment is at ("" for a file) */
};

static bool valid_name (const char *s, bool dots);

static void
path_write (FILE *f, const struct vpath *p)
{
  if (!p) /* (only the root has no parent, and it has a text) */
    return;
  if (p->text)
    {
      fputs (p->text, f);
      return;
    }
  path_write (f, p->up);
  if (!p->key)
    fprintf (f, "[%zu]", p->idx);
  else if (ftell (f) == 0)
    fputs (p->key, f);
  else
    fprintf (f, valid_name (p->key, false) ? ".%s" : "[\"%s\"]", p->key);
}

static char *
path_string (const struct vpath *p)
{
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&out, &len);
  if (!f)
    return NULL;
  path_write (f, p);
  if (fclose (f) != 0)
    {
      free (out);
      return NULL;
    }
  return out;
}

static void __attribute__ ((format (printf, 3, 4)))
verror (struct vctx *c, const struct vpath *path, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  _cleanup_free_ char *msg = avm_vstrdupf (fmt, ap);
  va_end (ap);
  c->nerr++;
  if (c->nerr <= 20)
    {
      _cleanup_free_ char *where = path_string (path);
      avm_error_append (c->err, AVM_EXIT_USAGE, EINVAL, "%s: %s: %s", c->file,
                        where && *where ? where : "(top level)", msg ? msg : "invalid");
    }
  else if (c->nerr == 21)
    avm_error_append (c->err, AVM_EXIT_USAGE, EINVAL, "%s: more problems not shown", c->file);
}

static bool
valid_name (const char *s, bool dots)
{
  size_t n = 0;
  for (; s[n]; n++)
    if (!isalnum ((unsigned char) s[n]) && s[n] != '_' && s[n] != '-' && !(dots && s[n] == '.'))
      return false;
  return n > 0 && n <= (dots ? 128 : 63);
}

static bool
has_control (const char *s)
{
  for (; *s; s++)
    if ((unsigned char) *s < 0x20 || *s == 0x7f)
      return true;
  return false;
}

/* BASE.KEY, written as a validation error writes it (for the key list).  */
static char *
join_path (const char *base, const char *key)
{
  const struct vpath top = { .text = base }, p = { .up = &top, .key = key };
  return path_string (&p);
}

static const char *
type_name (const struct avm_skey *s)
{
  switch (s->type)
    {
    case AVM_ST_OBJECT:
    case AVM_ST_MAP:
      return "object";
    case AVM_ST_ARRAY:
      return "array";
    case AVM_ST_STRING:
      return "string";
    case AVM_ST_INT:
      return "integer";
    case AVM_ST_BOOL:
      return "boolean";
    case AVM_ST_ENUM:
      return "string";
    case AVM_ST_ENUM_LIST:
      return "string or array of strings";
    case AVM_ST_SIZE_MIB:
      return "size";
    }
  return "?";
}

static void enum_expected (const struct avm_skey *s, char *buf, size_t len)
{
  struct avm_strbuf b = { 0 };
  for (size_t i = 0; s->values[i]; i++)
    avm_strbuf_join (&b, ", ", s->values[i]);
  _cleanup_free_ char *text = avm_strbuf_steal (&b);
  snprintf (buf, len, "%s", text ? text : "");
}

/* Parse "4G", "512M", "4096MiB", "1T" into MiB.  */
static bool
parse_size_mib (const char *s, long long *out)
{
  char *end;
  errno = 0;
  long long v = strtoll (s, &end, 10);
  if (errno || end == s || v < 0)
    return false;
  long long mul;
  if (!*end || !strcasecmp (end, "M") || !strcasecmp (end, "MiB") || !strcasecmp (end, "MB"))
    mul = 1;
  else if (!strcasecmp (end, "G") || !strcasecmp (end, "GiB") || !strcasecmp (end, "GB"))
    mul = 1024;
  else if (!strcasecmp (end, "T") || !strcasecmp (end, "TiB") || !strcasecmp (end, "TB"))
    mul = 1024 * 1024;
  else
    return false;
  if (v > (1LL << 40) / mul)
    return false;
  *out = v * mul;
  return true;
}

static void validate_node (struct vctx *c, json_t *parent, const char *key, size_t idx, json_t *v,
                           const struct avm_skey *s, const struct vpath *path);

static void
validate_string (struct vctx *c, const struct avm_skey *s, json_t *v, const struct vpath *path)
{
  const char *str = json_string_value (v);
  if ((s->flags & AVM_SF_NOTEMPTY) && !*str)
    verror (c, path, "must not be empty");
  else if ((s->flags & AVM_SF_NAME) && !valid_name (str, false))
    verror (c, path, "expected a name of letters, digits, '_' and '-' (at most 63), got \"%s\"", str);
  else if (has_control (str))
    verror (c, path, "control characters are not allowed");
}

/* A key's default, JSON text in the schema table.  Most are a boolean, an
   integer or a plain string, made directly: parsing them was a sixth of a
   dry run's instructions.  */
json_t *
avm_schema_default (const struct avm_skey *k)
{
  if (!k->def)
    return NULL;
  const char *text = k->def;
  size_t len = strlen (text);
  if (streq (text, "true") || streq (text, "false"))
    return json_boolean (text[0] == 't');
  if (len >= 2 && text[0] == '"' && text[len - 1] == '"' && !memchr (text + 1, '\\', len - 2)
      && !memchr (text + 1, '"', len - 2))
    return json_stringn (text + 1, len - 2);
  char *end;
  errno = 0;
  long long n = strtoll (text, &end, 10);
  const char *digits = text + (text[0] == '-');
  if (len && !*end && !errno && *digits >= '0' && *digits <= '9' && (digits[0] != '0' || !digits[1]))
    return json_integer (n); /* (JSON has no leading zeros: "007" is left to jansson to refuse) */
  return json_loads (text, JSON_DECODE_ANY, NULL);
}

static void
validate_object (struct vctx *c, json_t *v, const struct avm_skey *s, const struct vpath *path)
{
  const char *key;
  json_t *val;
  void *tmp;

  if (!s->sub) /* free-form object (merge patches): checked when applied */
    return;
  json_object_foreach_safe (v, tmp, key, val)
    {
      const struct avm_skey *k = avm_skey_child (s, key);
      const struct vpath here = { .up = path, .key = key }, *p = &here;
      if (!k)
        {
          const char *names[64];
          size_t n = 0;
          for (const struct avm_skey *i = s->sub; i->name && n < 64; i++)
            names[n++] = i->name;
          const char *hint = avm_closest (key, names, n);
          if (hint)
            verror (c, p, "unknown key; did you mean \"%s\"?", hint);
          else
            verror (c, p, "unknown key (see avm-profile(5) or `avm profiles keys`)");
          continue;
        }
      if (!(c->partial && json_is_null (val)))
        validate_node (c, v, key, 0, val, k, p);
    }
  if (c->partial)
    return;
  /* Required keys and defaults.  */
  for (const struct avm_skey *k = s->sub; k->name; k++)
    {
      if (json_object_get (v, k->name))
        continue;
      if (k->flags & AVM_SF_REQUIRED)
        {
          const struct vpath p = { .up = path, .key = k->name };
          verror (c, &p, "required key is missing");
          continue;
        }
      if (k->def)
        {
          json_t *d = avm_schema_default (k);
          if (d)
            json_object_set_new (v, k->name, d);
        }
      else if (k->type == AVM_ST_OBJECT && k->sub)
        {
          /* Materialise nested objects so that their defaults appear.  */
          json_t *o = json_object ();
          json_object_set_new (v, k->name, o);
          const struct vpath p = { .up = path, .key = k->name };
          validate_object (c, o, k, &p);
        }
    }
}

static void
validate_node (struct vctx *c, json_t *parent, const char *key, size_t idx, json_t *v, const struct avm_skey *s,
               const struct vpath *path)
{
  _cleanup_free_ char *got = NULL;
  char buf[256];

  switch (s->type)
    {
    case AVM_ST_OBJECT:
      if (!json_is_object (v))
        goto type_error;
      validate_object (c, v, s, path);
      return;

    case AVM_ST_MAP:
      {
        const char *k;
        json_t *val;
        if (!json_is_object (v))
          goto type_error;
        json_object_foreach (v, k, val)
          {
            const struct vpath here = { .up = path, .key = k }, *p = &here;
            if (!valid_name (k, (s->flags & AVM_SF_PROPKEY) != 0))
              {
                verror (c, p, "invalid key name \"%s\" (letters, digits, '_', '-'%s)", k,
                        (s->flags & AVM_SF_PROPKEY) ? ", '.'" : "");
                continue;
              }
            if (!(c->partial && json_is_null (val)))
              validate_node (c, v, k, 0, val, &s->sub[0], p);
          }
        return;
      }

    case AVM_ST_ARRAY:
      {
        size_t i;
        json_t *el;
        if (!json_is_array (v))
          goto type_error;
        if ((s->flags & AVM_SF_NOTEMPTY) && json_array_size (v) == 0)
          verror (c, path, "must not be empty");
        json_array_foreach (v, i, el)
          {
            const struct vpath p = { .up = path, .idx = i };
            validate_node (c, v, NULL, i, el, &s->sub[0], &p);
          }
        return;
      }

    case AVM_ST_STRING:
      if (!json_is_string (v))
        goto type_error;
      validate_string (c, s, v, path);
      return;

    case AVM_ST_INT:
      if (!json_is_integer (v) || json_integer_value (v) < s->min || json_integer_value (v) > s->max)
        {
          got = avm_json_brief (v);
          verror (c, path, "expected integer %lld..%lld, got %s", s->min, s->max, got);
        }
      return;

    case AVM_ST_BOOL:
      if (!json_is_boolean (v))
        goto type_error;
      return;

    case AVM_ST_ENUM:
      if (!json_is_string (v) || !avm_strv_has (s->values, json_string_value (v)))
        {
          enum_expected (s, buf, sizeof buf);
          got = avm_json_brief (v);
          const char *hint = json_is_string (v)
                                 ? avm_closest (json_string_value (v), s->values, avm_strv_count (s->values))
                                 : NULL;
          if (hint)
            verror (c, path, "expected one of %s, got %s; did you mean \"%s\"?", buf, got, hint);
          else
            verror (c, path, "expected one of %s, got %s", buf, got);
        }
      return;

    case AVM_ST_ENUM_LIST:
      {
        if (json_is_string (v))
          {
            json_t *arr = json_array ();
            json_array_append (arr, v);
            if (key)
              json_object_set_new (parent, key, arr);
            else
              json_array_set_new (parent, idx, arr);
            v = arr;
          }
        if (!json_is_array (v) || json_array_size (v) == 0)
          goto type_error;
        size_t i;
        json_t *el;
        json_array_foreach (v, i, el)
          if (!json_is_string (el) || !avm_strv_has (s->values, json_string_value (el)))
            {
              enum_expected (s, buf, sizeof buf);
              got = avm_json_brief (el);
              verror (c, path, "expected one or more of %s, got %s", buf, got);
              return;
            }
        return;
      }

    case AVM_ST_SIZE_MIB:
      {
        long long mib = -1;
        if (json_is_integer (v))
          mib = json_integer_value (v);
        else if (!json_is_string (v) || !parse_size_mib (json_string_value (v), &mib))
          mib = -1;
        if (mib < s->min || mib > s->max)
          {
            got = avm_json_brief (v);
            verror (c, path, "expected a size of %lldM..%lldM (integer MiB or \"4G\"), got %s", s->min, s->max, got);
            return;
          }
        json_t *n = json_integer (mib);
        if (key)
          json_object_set_new (parent, key, n);
        else
          json_array_set_new (parent, idx, n);
        return;
      }
    }
  return;

type_error:
  got = avm_json_brief (v);
  verror (c, path, "expected %s, got %s", type_name (s), got);
}

int
avm_schema_validate (json_t *root_json, const char *file, avm_error_t *err)
{
  struct vctx c = { .file = file, .err = err };
  if (!json_is_object (root_json))
    {
      _cleanup_free_ char *got = avm_json_brief (root_json);
      return avm_error_input (err, "%s: expected a JSON object at the top level, got %s", file, got);
    }
  const struct vpath top = { .text = "" };
  validate_object (&c, root_json, &root, &top);
  return c.nerr ? -EINVAL : 0;
}

int
avm_schema_validate_fragment (json_t *v, const struct avm_skey *s, const char *file, const char *path,
                              avm_error_t *err)
{
  struct vctx c = { .file = file, .err = err, .partial = true };
  const struct vpath top = { .text = path };
  if (json_is_null (v))
    return 0;
  if (s->type == AVM_ST_OBJECT && !json_is_object (v))
    {
      _cleanup_free_ char *got = avm_json_brief (v);
      verror (&c, &top, "expected object, got %s", got);
      return -EINVAL;
    }
  if (s->type == AVM_ST_OBJECT)
    validate_object (&c, v, s, &top);
  else
    {
      /* Leaves may be normalised in place: wrap in a holder.  */
      json_t *holder = json_array ();
      json_array_append (holder, v);
      validate_node (&c, holder, NULL, 0, v, s, &top);
      json_decref (holder);
    }
  return c.nerr ? -EINVAL : 0;
}

/* ---------------------------------------------------------------- */

static void
print_keys (FILE *out, const struct avm_skey *s, const char *path, bool docs)
{
  for (const struct avm_skey *k = s->sub; k && k->name; k++)
    {
      _cleanup_free_ char *p = join_path (path, k->name);
      if (!p)
        return;
      char typebuf[256];
      const char *t = type_name (k);
      if (k->type == AVM_ST_ENUM || k->type == AVM_ST_ENUM_LIST)
        {
          char vals[200];
          enum_expected (k, vals, sizeof vals);
          snprintf (typebuf, sizeof typebuf, "%s (%s)", k->type == AVM_ST_ENUM ? "enum" : "enum list", vals);
          t = typebuf;
        }
      else if (k->type == AVM_ST_INT)
        {
          snprintf (typebuf, sizeof typebuf, "integer %lld..%lld", k->min, k->max);
          t = typebuf;
        }
      if (docs)
        fprintf (out, "%s\n    %s%s%s%s\n    %s\n", p, t, k->def ? ", default " : "", k->def ? k->def : "",
                 (k->flags & AVM_SF_REQUIRED) ? ", required" : "", k->doc);
      else
        fprintf (out, "%s\n", p);
      const struct avm_skey *sub = k;
      _cleanup_free_ char *subpath = NULL;
      while (sub->type == AVM_ST_ARRAY || sub->type == AVM_ST_MAP)
        {
          char *np = NULL;
          if (asprintf (&np, "%s%s", subpath ? subpath : p, sub->type == AVM_ST_ARRAY ? "[]" : ".*") < 0)
            return;
          free (subpath);
          subpath = np;
          sub = &sub->sub[0];
        }
      if (sub->type == AVM_ST_OBJECT && sub->sub)
        print_keys (out, sub, subpath ? subpath : p, docs);
    }
}

void
avm_schema_print_keys (FILE *out, bool with_docs)
{
  print_keys (out, &root, "", with_docs);
}
