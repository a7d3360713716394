/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device-profile schema table: every key of a profile, its type, range
 * or values, default, flags and documentation, declared in one place and
 * nothing else (a reviewer reads this file alone).  It drives validation
 * (schema_validate.c), defaults, --set path resolution (avm_skey_child) and
 * the key reference (`avm profiles keys`, avm-profile(5)).
 */
#include "profile/schema.h"
#include "util/cleanup.h"

#include <string.h>

/* clang-format off */
#define END { NULL, 0, NULL, 0, 0, NULL, NULL, 0, NULL }
#define V(...) ((const char *const[]){ __VA_ARGS__, NULL })
/* clang-format on */

/* -------- leaf helpers -------- */
/* clang-format off */
#define STR(n, d, f, doc) { n, AVM_ST_STRING, NULL, 0, 0, NULL, d, f, doc }
#define INT(n, lo, hi, d, doc) { n, AVM_ST_INT, NULL, lo, hi, NULL, d, 0, doc }
#define BOOL(n, d, doc) { n, AVM_ST_BOOL, NULL, 0, 0, NULL, d, 0, doc }
#define ENUM(n, vals, d, doc) { n, AVM_ST_ENUM, NULL, 0, 0, vals, d, 0, doc }
#define OBJ(n, sub, f, doc) { n, AVM_ST_OBJECT, sub, 0, 0, NULL, NULL, f, doc }
#define ARR(n, f, doc, ...) { n, AVM_ST_ARRAY, (const struct avm_skey[]){ __VA_ARGS__, END }, 0, 0, NULL, NULL, f, doc }
#define MAP(n, f, doc, ...) { n, AVM_ST_MAP, (const struct avm_skey[]){ __VA_ARGS__, END }, 0, 0, NULL, NULL, f, doc }
/* clang-format on */

static const struct avm_skey machine_keys[] = {
  ENUM ("arch", V ("x86_64", "aarch64"), "\"x86_64\"", "Guest architecture; selects qemu-system-ARCH."),
  ENUM ("type", V ("pc", "q35", "virt"), NULL, "QEMU machine type (default: pc for x86_64, virt for aarch64)."),
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
  BOOL ("ramoops", "false",
        "x86 machines only: the guest kernel's pstore (its log kept across a reboot) in a 2 MiB nvdimm at "
        "0x150000000, where launch_cvd's ramoops kernel arguments look for it, backed by ${state_dir}/pstore.img "
        "(kept from run to run); left out with a warning when machine.memory is over 4 GiB on pc, 3 GiB on q35 "
        "(QEMU places memory devices above that address then)."),
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
        "avm generates this disk from the plan's boot properties before QEMU starts, and rebuilds it when they "
        "change."),
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

static const struct avm_skey web_keys[] = {
  BOOL ("enabled", "false",
        "Serve the guest's screen to a browser: a VNC server per output on a unix socket in the runtime directory, "
        "and Debian's websockify serving Debian's noVNC pages on one TCP port (clicks and keys reach the guest)."),
  STR ("listen", "\"127.0.0.1\"", AVM_SF_TEXT,
       "IPv4 address the page is served on; a non-loopback one needs display.web.remote (the VNC server has no "
       "password)."),
  INT ("port", 1, 65535, "6080", "TCP port of instance 1 (instance N: port + N - 1)."),
  BOOL ("remote", "false",
        "Allow a listen address other than loopback. Whoever reaches the port sees and drives the guest: use it only "
        "on a network that is yours, or behind an authenticating proxy."),
  STR ("novnc", "\"/usr/share/novnc\"", AVM_SF_TEXT | AVM_SF_NOTEMPTY, "noVNC's pages (Debian's novnc package)."),
  END,
};
static const struct avm_skey display_keys[] = {
  ENUM ("backend", V ("none", "dbus", "egl-headless", "vnc", "gtk"), "\"none\"",
        "QEMU display backend; dbus starts a private dbus-daemon for an external display program."),
  ENUM ("gpu", V ("none", "virtio-gpu", "virtio-gpu-gl", "vhost-user-gpu"), "\"virtio-gpu\"",
        "GPU device: virtio-gpu (guest rendering), virtio-gpu-gl (virgl in QEMU), vhost-user-gpu (virgl in a backend "
        "service)."),
  STR ("gpu_service", "\"vhost-user-gpu\"", AVM_SF_NAME, "Service providing the vhost-user-gpu backend socket."),
  BOOL ("gl", "false", "Enable OpenGL in the display backend (gl=on)."),
  ARR ("outputs", 0, "Display outputs; the first sets xres/yres, their count sets max_outputs.",
       OBJ (NULL, output_keys, 0, "A display output.")),
  OBJ ("vnc", vnc_keys, 0, "VNC server (backend vnc)."),
  OBJ ("web", web_keys, 0, "The screen in a browser (noVNC through websockify)."),
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
  STR ("name", NULL, AVM_SF_REQUIRED | AVM_SF_PORTNAME,
       "Port name (unique; the guest sees it in /sys/class/virtio-ports)."),
  ENUM ("kind", V ("null", "log", "file", "pipe", "socket", "agent"), "\"null\"",
        "null: discarded; log: read by avm into a size-capped log and matched for boot patterns; "
        "file: written by QEMU to path; pipe: FIFO pair path.in/path.out for a helper; socket: unix socket QEMU "
        "listens on; agent: the QEMU guest agent's port (a virtio-serial port, not a console: the guest's qemu-ga "
        "opens /dev/virtio-ports/NAME, so name it org.qemu.guest_agent.0), a unix socket QEMU listens on that avm "
        "talks to (snapshot.clock guest-agent); at most one."),
  STR ("path", NULL, AVM_SF_TEXT,
       "Path (file, pipe base name, socket); log ports default to ${run_dir}/NAME.fifo, agent ports to "
       "${run_dir}/agent.sock."),
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
  { "host_port", AVM_ST_INT, NULL, 1, 65535, NULL, NULL, AVM_SF_REQUIRED,
    "Host port of instance 1 (instance N adds N - 1)." },
  { "guest_port", AVM_ST_INT, NULL, 1, 65535, NULL, NULL, AVM_SF_REQUIRED, "Guest port." },
  END,
};

#define SLIRP_KEYS                                                                                                     \
  STR ("net", NULL, AVM_SF_TEXT, "Mode user: the guest's network, an IPv4 CIDR (QEMU's default 10.0.2.0/24)."),        \
      STR ("host", NULL, AVM_SF_TEXT,                                                                                  \
           "Mode user: the host's address in that network (default: its .2); connections to it reach the host's "      \
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
  ARR ("forwards", 0, "Host-to-guest port forwards (mode user).", OBJ (NULL, forward_keys, 0, "A host port forward.")),
  OBJ ("ethernet", ethernet_keys, 0, "A second NIC (guest eth1)."),
  END,
};

static const struct avm_skey share_keys[] = {
  STR ("tag", NULL, AVM_SF_REQUIRED | AVM_SF_NAME, "Mount tag seen by the guest."),
  STR ("service", NULL, AVM_SF_REQUIRED | AVM_SF_NAME, "virtiofsd service serving the share."),
  END,
};

static const struct avm_skey service_keys[] = {
  { "exec", AVM_ST_ARRAY, (const struct avm_skey[]) { STR (NULL, NULL, AVM_SF_TEXT, "An argument."), END }, 0, 0, NULL,
    NULL, AVM_SF_REQUIRED | AVM_SF_NOTEMPTY,
    "Program and arguments (argv; never a shell). ${socket}, ${fd:RESOURCE} and profile variables are expanded." },
  { "alternatives", AVM_ST_ARRAY,
    (const struct avm_skey[]) { STR (NULL, NULL, AVM_SF_TEXT | AVM_SF_NOTEMPTY, "A program name."), END }, 0, 0, NULL,
    NULL, 0,
    "Other names of the program (exec[0]), tried in order when it is not found (a host package's build and an upstream "
    "one)." },
  MAP ("env", 0, "Environment variables added for the service.", STR (NULL, NULL, AVM_SF_TEXT, "A value.")),
  BOOL ("enabled", "true", "Start this service."),
  ENUM ("flags", V ("none", "gflags"), "\"none\"",
        "How the program parses its flags: gflags (Cuttlefish's host tools): avm asks it once for the flags it "
        "defines (--helpxml, cached per binary) and refuses an argv with a flag it does not know."),
  STR ("workdir", NULL, AVM_SF_TEXT,
       "Working directory of the service (created by avm when missing); default: the directory avm was started in."),
  STR ("socket", NULL, AVM_SF_TEXT, "Unix socket the service listens on (vhost-user backends; ${socket})."),
  STR ("stdin", NULL, AVM_SF_TEXT | AVM_SF_NOTEMPTY,
       "A resource given to the service as its standard input instead of /dev/null: a listening socket for a "
       "program in inetd mode (avm binds it, so the address and port are avm's to check), or a pipe or FIFO end."),
  ENUM ("ready", V ("none", "socket", "file", "notify"), "\"none\"",
        "Readiness: socket (listening, checked without connecting), file (appears), notify (sd_notify READY=1), none."),
  STR ("ready_path", NULL, AVM_SF_TEXT, "File that signals readiness (ready: file)."),
  INT ("ready_timeout", 1, 3600, "10", "Seconds to wait for readiness."),
  { "after", AVM_ST_ARRAY, (const struct avm_skey[]) { STR (NULL, NULL, AVM_SF_NAME, "A service name."), END }, 0, 0,
    NULL, "[]", 0, "Services that must be ready before this one starts." },
  ENUM ("restart", V ("no", "on-failure", "always"), "\"on-failure\"", "Restart policy."),
  BOOL ("critical", "false", "Tear the platform down when this service fails for good."),
  ENUM ("snapshot", V ("stateless", "refuse", "suspend"), "\"stateless\"",
        "What a snapshot (avm snapshot save) makes of this service: stateless, it keeps nothing the guest relies on "
        "across a save and restore and is started anew on a restore; refuse, it holds guest state a restore would "
        "lose (keys, property values, a simulated device's state), so a save is refused, naming it; suspend, it "
        "holds guest state in files (snapshot_files) and suspends on request over its control socket "
        "(snapshot_control, Cuttlefish's secure_env): while the guest is paused avm asks it to suspend, copies the "
        "files into the snapshot and asks it to resume; a restore copies them back before it starts. A vhost-user "
        "back-end's state is its device's: QEMU refuses that device itself (avm check lists both)."),
  STR ("snapshot_control", NULL, AVM_SF_NAME,
       "snapshot: suspend: the socketpair resource whose end the service is given (${fd:NAME}) for suspend and "
       "resume requests; avm holds the other end."),
  ENUM ("snapshot_control_format", V ("launcher-action", "launcher-action-typed"), "\"launcher-action\"",
        "How the requests on snapshot_control are framed (Cuttlefish's LauncherAction, answered with one byte, 'S' "
        "for success): launcher-action ('A', a 32-bit length, the ExtendedLauncherAction protobuf: Android 15 and "
        "later), launcher-action-typed (with a 32-bit ExtendedActionType before the length: Android 14 QPR2 and "
        "QPR3)."),
  ARR ("snapshot_files", 0,
       "snapshot: suspend or stateless: the service's state files (absolute paths; profile variables expanded), "
       "copied into the snapshot while the guest is paused (a suspending service suspended; one missing is recorded "
       "as absent) and copied back (or removed) before the service starts on avm start --restore. Their base names "
       "must differ.",
       STR (NULL, NULL, AVM_SF_TEXT | AVM_SF_NOTEMPTY, "A file.")),
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
    V ("fifo", "unix-listen", "vsock-listen", "tcp-listen", "pipe", "socketpair", "directory", "port"), NULL,
    AVM_SF_REQUIRED,
    "fifo: a FIFO held open read-write; unix-listen/vsock-listen/tcp-listen: listening sockets; pipe: a pipe "
    "(NAME.read, "
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
  { "completed", AVM_ST_ARRAY,
    (const struct avm_skey[]) { STR (NULL, NULL, AVM_SF_TEXT | AVM_SF_NOTEMPTY, "A pattern."), END }, 0, 0, NULL, "[]",
    0, "Substrings that mean the guest has booted." },
  { "failed", AVM_ST_ARRAY,
    (const struct avm_skey[]) { STR (NULL, NULL, AVM_SF_TEXT | AVM_SF_NOTEMPTY, "A pattern."), END }, 0, 0, NULL, "[]",
    0, "Substrings that mean the boot failed." },
  INT ("timeout", 0, 86400, "0", "Seconds to wait for boot before failing (0: no limit)."),
  INT ("tcg_multiplier", 1, 100, "1",
       "The timeout is multiplied by this when the accelerator is tcg (software emulation boots many times slower)."),
  INT ("reset_limit", 0, 1000, "0",
       "Guest resets (QMP RESET) tolerated before a boot completes; one more is a boot failure, a boot loop (0: no "
       "limit)."),
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
       "Seconds to wait for the guest after system_powerdown before quitting QEMU (0: no power-down, QMP quit at "
       "once)."),
  END,
};

static const struct avm_skey snapshot_keys[] = {
  BOOL ("fast", "false",
        "Guest RAM in the named file ${run_dir}/ram (share=on): a snapshot copies that file (holes kept) instead of "
        "streaming the RAM (QEMU's x-ignore-shared), and a restore maps the snapshot's copy private (copy on write) "
        "instead of loading it; machine.memory_backend must be auto or file."),
  ENUM ("clock", V ("none", "guest-agent", "service"), "\"none\"",
        "How the guest's wall clock is set after a restore (it goes on from the save otherwise): guest-agent: avm "
        "sets it to the host's time through the QEMU guest agent (guest-set-time on the console port of kind agent); "
        "service: a helper started anew with every restore does (clock_service; Cuttlefish's modem_simulator sends "
        "the network time, NITZ, on the guest's first signal strength query); none: nothing does."),
  STR ("clock_service", NULL, AVM_SF_NAME,
       "clock service: the helper that sets the guest clock (started by the plan, snapshot: stateless)."),
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
  MAP ("choices", AVM_SF_REQUIRED, "The choices.", OBJ (NULL, choice_keys, 0, "A choice.")),
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
  MAP ("options", 0, "Named variants selected with --option NAME=CHOICE.", OBJ (NULL, option_keys, 0, "An option.")),
  OBJ ("machine", machine_keys, 0, "Machine, CPU and memory."),
  OBJ ("qemu", qemu_keys, 0, "The QEMU binary."),
  OBJ ("paths", paths_keys, 0, "Directories."),
  OBJ ("firmware", firmware_keys, 0, "Bootloader or direct kernel boot."),
  ARR ("disks", 0, "virtio-blk disks in PCI order; the first is the boot disk.", OBJ (NULL, disk_keys, 0, "A disk.")),
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
  MAP ("resources", 0,
       "FIFOs, listening sockets and pipes created by avm before any process starts; services get them as ${fd:NAME}.",
       OBJ (NULL, resource_keys, 0, "A resource.")),
  OBJ ("boot", boot_keys, 0, "Boot detection."),
  OBJ ("stop", stop_keys, 0, "Shutdown."),
  OBJ ("snapshot", snapshot_keys, 0, "Snapshots of the booted platform (avm snapshot, avm start --restore)."),
  OBJ ("logs", logs_keys, 0, "Log files of the consoles, the helpers and QEMU (${state_dir}/logs)."),
  MAP ("boot_properties", AVM_SF_FLATKEYS | AVM_SF_PROPKEY,
       "androidboot.* boot properties written to the bootconfig partition; derived keys are added by avm.",
       STR (NULL, NULL, AVM_SF_TEXT | AVM_SF_NOTEMPTY, "A value.")),
  { "extra_qemu_args", AVM_ST_ARRAY, (const struct avm_skey[]) { STR (NULL, NULL, 0, "An argument."), END }, 0, 0, NULL,
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
