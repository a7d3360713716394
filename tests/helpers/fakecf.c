/* SPDX-License-Identifier: Apache-2.0 */
/* avm-fakecf: a test double of the Cuttlefish host tools that avm starts.

   One binary, installed as bin/TOOL (a hard link or a copy) in a fixture's
   host package (tests/unit/cfimage.c); it behaves as the tool named by
   basename(argv[0]) in the release named by the one-line file
   .fakecf-release next to it: android14 (android14-release), android14-qpr2
   (qpr2/qpr3: the qpr3 shape), android15, android15-qpr2, android16 (DGC
   main, 2025-03).  It encodes what the AOSP sources make the real tool
   require, so that a regression in avm's argv, descriptors, environment or
   config fails as it would with the real tool.  Sources: the research
   reports r1 (config), r2 (flags, descriptors), r3 (host packages), whose
   citations name device/google/cuttlefish (DGC) paths and lines; no AOSP
   code is copied.  (I) marks an inference rather than a reading.

   Emulated:
     - gflags 2.2 parsing: -f=v, --f=v, -f v, bools (-f, -nof, -f=true|1|yes),
       dashes for underscores, --undefok, errors on stderr sorted by flag
       name then exit 1, --helpxml and --help (exit 1, before the errors),
       --version (exit 0); Cuttlefish's flag_parser for tombstone_receiver
       (anything unexpected aborts); plain argv for vhal_proxy_server; a
       clap-like parser for vhost_device_vsock.
     - each main's order: config, logs/launcher.log, flags, descriptors,
       files, then a minimal but real runtime.
     - CHECK and LOG(FATAL): android-base's line
         TAG F MM-DD HH:MM:SS PID TID FILE:LINE] Check failed: EXPR MSG
       on stderr (and in launcher.log once the tool set its logger), then
       SIGABRT; uncaught C++ exceptions: libc++abi's line, then SIGABRT.
   Lines of the double's own start with "avm-fakecf:": "TOOL (RELEASE)
   ready" once every check passed, and warnings where the real tool would
   only misbehave later (a descriptor of the wrong kind, no SIM profile).
   Every tool exits 0 on SIGTERM (the real ones mostly die by it).
   AVM_FAKECF_LOG=PATH appends a JSON line per start: tool, release, pid,
   argv, cwd, the inherited descriptors and the Cuttlefish variables.
   Not emulated: --flagfile/--fromenv (exit 2), CF_*_SEVERITY, jsoncpp's
   comments in the config, tombstones written, tcp_connector's relaying,
   adb_connector's 'adb connect', config_server's DeviceConfig reply,
   logcat_receiver's android14-qpr3 restore handshake, AT commands.
   secure_env answers run_cvd's suspend and resume requests on
   -snapshot_control_fd (snapshot_request), and writes a recognisable
   default state into its state files when they do not exist.  */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <limits.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PROG "avm-fakecf"
#define DGC "device/google/cuttlefish/"
#define N(a) (sizeof (a) / sizeof *(a))

/* ---- Releases and tools ------------------------------------------------- */

enum rel
{
  A14,
  A14Q2,
  A15,
  A15Q2,
  A16,
  NREL
};
static const char *const rel_names[NREL]
    = { "android14", "android14-qpr2", "android15", "android15-qpr2", "android16" };
#define B(r) (1u << (r))
#define ALL ((1u << NREL) - 1)
#define FROM(r) (ALL & ~(B (r) - 1))
#define UPTO(r) (B ((r) + 1) - 1)

enum tool
{
  SECURE_ENV,
  KLM,
  LOGCAT,
  MODEM,
  SVP,
  ADB,
  TCP,
  ROOTCANAL,
  GNSS,
  TOMBSTONE,
  VHAL,
  SENSORS,
  CONFIGSRV,
  VSOCKDEV,
  NTOOLS
};

static const struct
{
  const char *name;
  unsigned shipped; /* releases whose host package has bin/NAME (r3 §7.2, DGC build/Android.bp) */
  bool gflags;
  const char *src; /* the main's source: --helpxml's <file> */
} tools[NTOOLS] = {
  [SECURE_ENV] = { "secure_env", ALL, true, DGC "host/commands/secure_env/secure_env_not_windows_main.cpp" },
  [KLM] = { "kernel_log_monitor", ALL, true, DGC "host/commands/kernel_log_monitor/main.cc" },
  [LOGCAT] = { "logcat_receiver", ALL, true, DGC "host/commands/logcat_receiver/main.cpp" },
  [MODEM] = { "modem_simulator", ALL, true, DGC "host/commands/modem_simulator/main.cpp" },
  [SVP] = { "socket_vsock_proxy", ALL, true, DGC "common/frontend/socket_vsock_proxy/socket_vsock_proxy.cpp" },
  [ADB] = { "adb_connector", ALL, true, DGC "host/frontend/adb_connector/main.cpp" },
  [TCP] = { "tcp_connector", ALL, true, DGC "host/commands/tcp_connector/main.cpp" },
  [ROOTCANAL] = { "root-canal", ALL, true, "packages/modules/Bluetooth/tools/rootcanal/desktop/root_canal_main.cc" },
  [GNSS] = { "gnss_grpc_proxy", ALL, true, DGC "host/commands/gnss_grpc_proxy/gnss_grpc_proxy.cpp" },
  [TOMBSTONE] = { "tombstone_receiver", ALL, false, DGC "host/commands/tombstone_receiver/main.cpp" },
  [VHAL] = { "vhal_proxy_server", FROM (A15), false, DGC "host/commands/vhal_proxy_server/vhal_proxy_server.cpp" },
  [SENSORS] = { "sensors_simulator", B (A16), true, DGC "host/commands/sensors_simulator/main.cpp" },
  /* r3 §8.17: kept in the host package through android15-qpr2, launched by
     run_cvd on android14* only.  */
  [CONFIGSRV] = { "config_server", UPTO (A15Q2), true, DGC "host/commands/config_server/main.cpp" },
  /* external/rust/crates/vhost-device-vsock, not in the reports: (I).  */
  [VSOCKDEV] = { "vhost_device_vsock", FROM (A14Q2), false, "vhost-device-vsock/src/main.rs" },
};

/* ---- Flags per tool and release ------------------------------------------ */

/* Rows leave their trailing fields out (NULL, 0).  */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

enum ftype
{
  BOOL,
  INT32,
  UINT32,
  STRING
};
static const char *const type_names[] = { "bool", "int32", "uint32", "string" };

static const struct flagdef
{
  int tool; /* NTOOLS: gflags' own flags, in every gflags tool */
  unsigned rels;
  const char *name;
  enum ftype type;
  const char *def;     /* as gflags prints it (uint32 -1 is 4294967295) */
  const char *meaning; /* paraphrased */
  const char *file;    /* NULL: the tool's src */
} flags[] = {
  /* secure_env: A14 secure_env_linux_main.cpp:50-67; A14Q2..A16
     secure_env_not_windows_main.cpp:60-89 (r2 §2).  */
  { SECURE_ENV, ALL, "confui_server_fd", INT32, "-1", "listening socket for confirmation UI signing" },
  { SECURE_ENV, FROM (A14Q2), "snapshot_control_fd", INT32, "-1", "socket to run_cvd for snapshots" },
  { SECURE_ENV, ALL, "keymaster_fd_in", INT32, "-1", "keymaster pipe" },
  { SECURE_ENV, ALL, "keymaster_fd_out", INT32, "-1", "keymaster pipe" },
  { SECURE_ENV, FROM (A14Q2), "keymint_fd_in", INT32, "-1", "keymint pipe" },
  { SECURE_ENV, FROM (A14Q2), "keymint_fd_out", INT32, "-1", "keymint pipe" },
  { SECURE_ENV, ALL, "gatekeeper_fd_in", INT32, "-1", "gatekeeper pipe" },
  { SECURE_ENV, ALL, "gatekeeper_fd_out", INT32, "-1", "gatekeeper pipe" },
  { SECURE_ENV, FROM (A14Q2), "oemlock_fd_in", INT32, "-1", "oemlock pipe" },
  { SECURE_ENV, FROM (A14Q2), "oemlock_fd_out", INT32, "-1", "oemlock pipe" },
  { SECURE_ENV, ALL, "kernel_events_fd", INT32, "-1", "kernel log monitor events, to detect guest reboots" },
  { SECURE_ENV, ALL, "tpm_impl", STRING, "in_memory", "TPM: \"in_memory\" or \"host_device\"" },
  { SECURE_ENV, ALL, "keymint_impl", STRING, "tpm", "KeyMint: \"tpm\" or \"software\" (A14: also rust-*)" },
  { SECURE_ENV, ALL, "gatekeeper_impl", STRING, "tpm", "gatekeeper: \"tpm\" or \"software\"" },
  { SECURE_ENV, FROM (A14Q2), "oemlock_impl", STRING, "tpm", "oemlock: \"tpm\" or \"software\"" },
  /* kernel_log_monitor/main.cc:35-41, every release (r2 §3).  */
  { KLM, ALL, "log_pipe_fd", INT32, "-1", "kernel log pipe; -1: open the configured FIFO" },
  { KLM, ALL, "subscriber_fds", STRING, "", "comma-separated descriptors to send events to" },
  /* logcat_receiver/main.cpp:27-30 (r2 §4).  */
  { LOGCAT, ALL, "log_pipe_fd", INT32, "-1", "logcat pipe; -1: open the configured FIFO" },
  /* modem_simulator/main.cpp:33-34 (r2 §5).  */
  { MODEM, ALL, "server_fds", STRING, "", "comma-separated listening sockets, one per modem" },
  { MODEM, ALL, "sim_type", INT32, "1", "1: normal, 2: CtsCarrierApiTestCases" },
  /* socket_vsock_proxy.cpp: A14 :38-56, A14Q2..A16 :45-70 (r2 §6).  */
  { SVP, ALL, "label", STRING, "socket_vsock_proxy", "label for log lines" },
  { SVP, ALL, "server_type", STRING, "", "`vsock` or `tcp`" },
  { SVP, ALL, "client_type", STRING, "", "`vsock` or `tcp`" },
  { SVP, ALL, "server_tcp_port", UINT32, "0", "server TCP port" },
  { SVP, ALL, "client_tcp_host", STRING, "localhost", "client TCP host" },
  { SVP, ALL, "client_tcp_port", UINT32, "0", "client TCP port" },
  { SVP, ALL, "server_vsock_port", UINT32, "0", "server vsock port" },
  { SVP, FROM (A14Q2), "server_vsock_id", UINT32, "0", "server vsock cid" },
  { SVP, ALL, "client_vsock_id", UINT32, "0", "client vsock cid" },
  { SVP, ALL, "client_vsock_port", UINT32, "0", "client vsock port" },
  { SVP, ALL, "server_fd", INT32, "-1", "listening socket to serve (overrides the port flags)" },
  { SVP, ALL, "events_fd", UINT32, "4294967295", "kernel events to start/stop on" },
  { SVP, ALL, "start_event_id", UINT32, "4294967295", "event that starts the proxy" },
  { SVP, ALL, "stop_event_id", UINT32, "4294967295", "event that stops the proxy" },
  /* qpr2 itself had start_immediately where qpr3 has restore (r2 §6).  */
  { SVP, FROM (A14Q2), "restore", BOOL, "false", "wait on the restore pipe first" },
  { SVP, FROM (A14Q2), "vhost_user_vsock", BOOL, "false", "reach vsock through vhost-user" },
  /* adb_connector/main.cpp:36 (r2 §7).  */
  { ADB, ALL, "addresses", STRING, "", "comma-separated addresses to 'adb connect' to" },
  /* tcp_connector/main.cpp: A14 :31-34, A14Q2/A15 :31-35, A15Q2+ :30-35 (r2 §8).  */
  { TCP, ALL, "fifo_in", INT32, "-1", "pipe from the guest" },
  { TCP, ALL, "fifo_out", INT32, "-1", "pipe to the guest" },
  { TCP, ALL, "data_port", INT32, "-1", "TCP port to connect to" },
  { TCP, FROM (A15Q2), "data_path", STRING, "", "unix socket to connect to" },
  { TCP, ALL, "buffer_size", INT32, "-1", "buffer size" },
  { TCP, FROM (A14Q2), "dump_packet_size", INT32, "-1", "dump packets up to this size" },
  /* gnss_grpc_proxy.cpp:64-84, every release (r2 §10).  */
  { GNSS, ALL, "gnss_in_fd", INT32, "-1", "gnss channel to the guest" },
  { GNSS, ALL, "gnss_out_fd", INT32, "-1", "gnss channel from the guest" },
  { GNSS, ALL, "fixed_location_in_fd", INT32, "-1", "fixed location channel to the guest" },
  { GNSS, ALL, "fixed_location_out_fd", INT32, "-1", "fixed location channel from the guest" },
  { GNSS, ALL, "gnss_grpc_port", INT32, "-1", "gRPC TCP port" },
  { GNSS, ALL, "gnss_grpc_socket", STRING, "", "gRPC unix socket" },
  { GNSS, ALL, "gnss_file_path", STRING, "", "raw measurement file (no gRPC server)" },
  { GNSS, ALL, "fixed_location_file_path", STRING, "", "fixed location file" },
  /* sensors_simulator/main.cpp:27-29, A16 (r2 §13).  */
  { SENSORS, ALL, "sensors_in_fd", INT32, "-1", "sensors console (unused)" },
  { SENSORS, ALL, "sensors_out_fd", INT32, "-1", "sensors console (unused)" },
  { SENSORS, ALL, "webrtc_fd", INT32, "-1", "socket to the streamer" },
  /* tombstone_receiver/main.cpp:60-70, flag_parser flags (r2 §11).  */
  { TOMBSTONE, ALL, "tombstone_dir", STRING, "", "directory to write tombstones in" },
  { TOMBSTONE, ALL, "server_fd", INT32, "-1", "vsock server" },
  /* config_server/main.cpp:25-27 (r2 §14).  */
  { CONFIGSRV, ALL, "server_fd", INT32, "-1", "vsock server, must be given" },
  /* root-canal desktop/root_canal_main.cc: the same set from google/rootcanal
     af4ddb5 (2023-06) to dba0cff (2025); which snapshot a release ships is (I).  */
  { ROOTCANAL, ALL, "controller_properties_file", STRING, "", "deprecated" },
  { ROOTCANAL, ALL, "configuration", STRING, "", "controller configuration" },
  { ROOTCANAL, ALL, "configuration_file", STRING, "", "controller configuration file" },
  { ROOTCANAL, ALL, "default_commands_file", STRING, "", "deprecated" },
  { ROOTCANAL, ALL, "enable_log_color", BOOL, "false", "log colours" },
  { ROOTCANAL, ALL, "enable_hci_sniffer", BOOL, "false", "HCI sniffer" },
  { ROOTCANAL, ALL, "enable_baseband_sniffer", BOOL, "false", "baseband sniffer" },
  { ROOTCANAL, ALL, "enable_pcap_filter", BOOL, "false", "PCAP filter" },
  { ROOTCANAL, ALL, "disable_address_reuse", BOOL, "false", "never reuse device addresses" },
  { ROOTCANAL, ALL, "test_port", UINT32, "6401", "test TCP port" },
  { ROOTCANAL, ALL, "hci_port", UINT32, "6402", "HCI TCP port" },
  { ROOTCANAL, ALL, "link_port", UINT32, "6403", "link TCP port" },
  { ROOTCANAL, ALL, "link_ble_port", UINT32, "6404", "LE link TCP port" },
/* gflags 2.2.2's own: gflags.cc:119-128, gflags_completions.cc:68-72,
   gflags_reporting.cc:65-72 (r2 §1).  */
#define GF "external/gflags/src/gflags.cc"
#define GFC "external/gflags/src/gflags_completions.cc"
#define GFR "external/gflags/src/gflags_reporting.cc"
  { NTOOLS, ALL, "flagfile", STRING, "", "read flags from a file", GF },
  { NTOOLS, ALL, "fromenv", STRING, "", "read flags from FLAGS_* variables", GF },
  { NTOOLS, ALL, "tryfromenv", STRING, "", "read flags from FLAGS_* variables when set", GF },
  { NTOOLS, ALL, "undefok", STRING, "", "comma-separated flags that may be unknown (use flag=value)", GF },
  { NTOOLS, ALL, "tab_completion_columns", INT32, "80", "columns for tab completion", GFC },
  { NTOOLS, ALL, "tab_completion_word", STRING, "", "complete this word and exit", GFC },
  { NTOOLS, ALL, "help", BOOL, "false", "help on all flags", GFR },
  { NTOOLS, ALL, "helpfull", BOOL, "false", "help on all flags", GFR },
  { NTOOLS, ALL, "helpshort", BOOL, "false", "help on the main module", GFR },
  { NTOOLS, ALL, "helpon", STRING, "", "help on the named modules", GFR },
  { NTOOLS, ALL, "helpmatch", STRING, "", "help on modules matching", GFR },
  { NTOOLS, ALL, "helppackage", BOOL, "false", "help on the main package", GFR },
  { NTOOLS, ALL, "helpxml", BOOL, "false", "help as XML", GFR },
  { NTOOLS, ALL, "version", BOOL, "false", "version and exit", GFR },
};

/* ---- Mandatory descriptors ----------------------------------------------- */

enum how
{
  DUP_CHECK,  /* secure_env's DupFdFlag: CHECK(fd != -1), CHECK(dup is open) */
  CHECK_OPEN, /* CHECK(fd->IsOpen()) << MSG[: error] */
  FATAL,      /* LOG(FATAL) << MSG[: error] */
  RETURN,     /* LOG(ERROR) << MSG[: error]; exit(CODE) */
  LOG_ONLY,   /* LOG(ERROR) << MSG[: error]; go on without it */
};
enum kind
{
  SOCKET,
  LISTENING,
  LISTENING_UNIX,
  READABLE,
  WRITABLE
};
static const char *const kind_names[]
    = { "a socket", "a listening socket", "a listening AF_UNIX socket", "readable", "writable" };

static const struct fdrule
{
  int tool;
  unsigned rels;
  const char *flag;
  enum how how;
  int code;
  enum kind kind;         /* what the real tool uses it as: otherwise a warning */
  const char *expr, *msg; /* MSG may hold a %d: the descriptor */
  bool err;               /* ": strerror" appended */
  const char *where;
} fdrules[] = {
  /* secure_env_not_windows_main.cpp:98-105 DupFdFlag, used at :291 snapshot,
     :347-348 keymaster, :371-372 gatekeeper, :395-396 oemlock, :417 confui,
     :424 kernel_events (A16); A14 secure_env_linux_main.cpp:78-85 (r2 §2).  */
  { SECURE_ENV, FROM (A14Q2), "snapshot_control_fd", DUP_CHECK, 0, SOCKET },
  { SECURE_ENV, ALL, "keymaster_fd_in", DUP_CHECK, 0, READABLE },
  { SECURE_ENV, ALL, "keymaster_fd_out", DUP_CHECK, 0, WRITABLE },
  { SECURE_ENV, ALL, "gatekeeper_fd_in", DUP_CHECK, 0, READABLE },
  { SECURE_ENV, ALL, "gatekeeper_fd_out", DUP_CHECK, 0, WRITABLE },
  { SECURE_ENV, FROM (A14Q2), "oemlock_fd_in", DUP_CHECK, 0, READABLE },
  { SECURE_ENV, FROM (A14Q2), "oemlock_fd_out", DUP_CHECK, 0, WRITABLE },
  { SECURE_ENV, ALL, "confui_server_fd", DUP_CHECK, 0, LISTENING_UNIX },
  { SECURE_ENV, ALL, "kernel_events_fd", DUP_CHECK, 0, READABLE },
  /* kernel_log_monitor/main.cc:56-63 subscribers, :89-98 the log pipe (A16).  */
  { KLM, ALL, "log_pipe_fd", RETURN, 2, READABLE, NULL, "Error opening log pipe", 1, "main.cc:96" },
  { KLM, ALL, "subscriber_fds", LOG_ONLY, 0, WRITABLE, NULL, "Subscriber fd isn't valid", 1, "main.cc:116" },
  /* logcat_receiver/main.cpp:45-57.  */
  { LOGCAT, ALL, "log_pipe_fd", RETURN, 2, READABLE, NULL, "Error opening log pipe", 1, "main.cpp:56" },
  /* modem_simulator/main.cpp:102 (A14 :99).  */
  { MODEM, ALL, "server_fds", CHECK_OPEN, 0, LISTENING, "fd->IsOpen()",
    "Error creating or inheriting modem simulator server", 1, "main.cpp:102" },
  /* tcp_connector/main.cpp:94-108 (A16).  */
  { TCP, ALL, "fifo_in", RETURN, 1, READABLE, NULL, "Error dupping fd %d", 1, "main.cpp:97" },
  { TCP, ALL, "fifo_out", RETURN, 1, WRITABLE, NULL, "Error dupping fd %d", 1, "main.cpp:105" },
  /* gnss_grpc_proxy.cpp:409-443: RunServer returns, main returns 0 (r2 §10).  */
  { GNSS, ALL, "gnss_in_fd", RETURN, 0, WRITABLE, NULL, "Error dupping fd %d", 1, "gnss_grpc_proxy.cpp:413" },
  { GNSS, ALL, "gnss_out_fd", RETURN, 0, READABLE, NULL, "Error dupping fd %d", 1, "gnss_grpc_proxy.cpp:422" },
  { GNSS, ALL, "fixed_location_in_fd", RETURN, 0, WRITABLE, NULL, "Error dupping fd %d", 1, "gnss_grpc_proxy.cpp:431" },
  { GNSS, ALL, "fixed_location_out_fd", RETURN, 0, READABLE, NULL, "Error dupping fd %d", 1,
    "gnss_grpc_proxy.cpp:441" },
  /* sensors_simulator/main.cpp:82-86 (A16).  */
  { SENSORS, ALL, "webrtc_fd", FATAL, 0, SOCKET, NULL, "Unable to connect webrtc", 1, "main.cpp:85" },
  /* config_server/main.cpp:37-40.  */
  { CONFIGSRV, ALL, "server_fd", CHECK_OPEN, 0, LISTENING, "server_fd->IsOpen()", "Inheriting logcat server", 1,
    "main.cpp:39" },
  /* tombstone_receiver/main.cpp:77 (A14 :78).  */
  { TOMBSTONE, ALL, "server_fd", CHECK_OPEN, 0, LISTENING, "server_fd->IsOpen()", "Did not receive a server fd", 0,
    "main.cpp:77" },
  /* socket_vsock_proxy: -server_fd is checked when the proxy starts (server.cpp
     DupServer::Start); -events_fd not open ends it with 0 (r2 §6).  */
};

/* ---- kernel_log_monitor's stages ----------------------------------------- */

/* kernel_log_server.cc kStageTable with config_constants.h (A14:
   cuttlefish_config.h), event ids of kernel_log_server.h:31-47 (r2 §3).  In
   table order: one line may emit several events.  */
enum evfmt
{
  BARE,
  KV,
  PREFIX
};
static const struct
{
  unsigned rels;
  const char *match;
  int event;
  enum evfmt fmt;
} stages[] = {
  { ALL, "VIRTUAL_DEVICE_BOOT_STARTED", 0, BARE },
  { FROM (A15), "VIRTUAL_DEVICE_BOOT_PENDING", 12, PREFIX },
  { ALL, "VIRTUAL_DEVICE_BOOT_COMPLETED", 1, BARE },
  { UPTO (A14Q2), "VIRTUAL_DEVICE_BOOT_FAILED", 2, KV },
  { FROM (A15), "VIRTUAL_DEVICE_BOOT_FAILED", 2, PREFIX },
  { ALL, "VIRTUAL_DEVICE_NETWORK_MOBILE_CONNECTED", 4, BARE },
  { ALL, "VIRTUAL_DEVICE_NETWORK_WIFI_CONNECTED", 3, BARE },
  { ALL, "VIRTUAL_DEVICE_NETWORK_ETHERNET_CONNECTED", 7, BARE },
  { ALL, "init: starting service 'adbd'...", 5, BARE },
  { ALL, "init: starting service 'fastbootd'...", 11, BARE },
  { FROM (A14Q2), "Listening for fastboot command on tcp", 11, BARE },
  { ALL, "VIRTUAL_DEVICE_SCREEN_CHANGED", 6, KV },
  { ALL, "U-Boot 20", 9, BARE },
  { ALL, "] Linux version", 8, BARE },
  { ALL, "VIRTUAL_DEVICE_DISPLAY_POWER_MODE_CHANGED", 10, KV },
  { FROM (A15Q2), "PM: hibernation: hibernation exit", 13, BARE },
  { FROM (A15Q2), "PM: hibernation: hibernation exit", 5, BARE },
};
enum
{
  EV_BOOTLOADER_LOADED = 9
};
#pragma GCC diagnostic pop

/* ---- Logging and dying -------------------------------------------------- */

static enum tool T;
static enum rel R;
static int ARGC;
static char **ARGV;
static const char *prog; /* basename (argv[0]) */

/* android-base's StderrLogger until the tool sets its logger, then stderr
   (unless run_as_daemon) and its files.  */
static bool logger_set, to_stderr = true, tag_and_message;
static int log_fds[2] = { -1, -1 };
static char tag[80], log_prefix[32];

static void
write_all (int fd, const void *buf, size_t len)
{
  for (ssize_t n; len > 0; buf = (const char *) buf + n, len -= (size_t) n)
    if ((n = write (fd, buf, len)) <= 0 && !(n < 0 && errno == EINTR && (n = 0) == 0))
      return;
}

static void __attribute__ ((format (printf, 3, 4))) lg (char sev, const char *where, const char *fmt, ...)
{
  char msg[2048], line[2300], ts[32];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  time_t t = time (NULL);
  struct tm tm;
  strftime (ts, sizeof ts, "%m-%d %H:%M:%S", localtime_r (&t, &tm));
  int n = snprintf (line, sizeof line, "%s %c %s %5d %5d %s] %s%s\n", tag, sev, ts, (int) getpid (), (int) getpid (),
                    where, log_prefix, msg);
  size_t len = n < 0 ? 0 : (size_t) n < sizeof line ? (size_t) n : sizeof line - 1;
  if ((!logger_set || to_stderr) && sev != 'D') /* console: INFO and up */
    {
      if (logger_set && tag_and_message)
        dprintf (STDERR_FILENO, "%s] %s%s\n", tag, log_prefix, msg);
      else
        write_all (STDERR_FILENO, line, len);
    }
  for (int i = 0; logger_set && i < 2; i++)
    if (log_fds[i] >= 0)
      write_all (log_fds[i], line, len);
}

static void __attribute__ ((noreturn)) die_by (int sig)
{
  struct rlimit rl = { 0, 0 };
  setrlimit (RLIMIT_CORE, &rl);
  signal (sig, SIG_DFL);
  sigset_t set;
  sigemptyset (&set);
  sigaddset (&set, sig);
  sigprocmask (SIG_UNBLOCK, &set, NULL);
  raise (sig);
  _exit (128 + sig);
}

#define FATALF(where, ...) (lg ('F', (where), __VA_ARGS__), die_by (SIGABRT))
/* clang-format off */
#define CHECK(cond, where, expr, ...)                                                                      \
  do                                                                                                       \
    if (!(cond))                                                                                           \
      {                                                                                                    \
        char check_msg_[1024];                                                                             \
        snprintf (check_msg_, sizeof check_msg_, __VA_ARGS__);                                             \
        FATALF ((where), "Check failed: %s %s", (expr), check_msg_);                                       \
      }                                                                                                    \
  while (0)
/* clang-format on */

static void __attribute__ ((noreturn)) uncaught (const char *type, const char *what)
{
  dprintf (STDERR_FILENO, "libc++abi: terminating due to uncaught exception of type %s: %s\n", type, what);
  die_by (SIGABRT);
}

static void __attribute__ ((noreturn, format (printf, 1, 2))) usage_error (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  dprintf (STDERR_FILENO, "%s: ", PROG);
  vdprintf (STDERR_FILENO, fmt, ap);
  dprintf (STDERR_FILENO, "\n");
  va_end (ap);
  _exit (2);
}

static void
ready (void)
{
  lg ('I', "fakecf.c:1", "%s: %s (%s) ready", PROG, tools[T].name, rel_names[R]);
}

static void __attribute__ ((noreturn)) hold (void)
{
  for (;;)
    pause ();
}

static void __attribute__ ((noreturn)) ready_and_hold (void)
{
  ready ();
  hold ();
}

static char *__attribute__ ((format (printf, 1, 2))) str (const char *fmt, ...)
{
  char *s = NULL;
  va_list ap;
  va_start (ap, fmt);
  if (vasprintf (&s, fmt, ap) < 0)
    abort ();
  va_end (ap);
  return s;
}

/* ---- gflags --------------------------------------------------------------- */

static char *cur[N (flags)];
static bool active[N (flags)];

static int
find_flag (const char *name)
{
  for (size_t i = 0; i < N (flags); i++)
    if (active[i] && !strcmp (flags[i].name, name))
      return (int) i;
  if (!strchr (name, '-'))
    return -1;
  char *u = strdup (name); /* dashes may stand for underscores */
  for (char *p = u; *p; p++)
    *p = *p == '-' ? '_' : *p;
  int r = find_flag (u);
  free (u);
  return r;
}

static const char *
F (const char *name)
{
  int i = find_flag (name);
  if (i < 0)
    usage_error ("internal: %s has no flag %s in %s", tools[T].name, name, rel_names[R]);
  return cur[i];
}

static long long
FI (const char *name)
{
  return strtoll (F (name), NULL, 10);
}

static bool
FB (const char *name)
{
  return !strcmp (F (name), "true");
}

/* FlagValue::ParseFrom: the value as gflags prints it, or NULL.  */
static char *
parse_value (enum ftype type, const char *v)
{
  static const char *const yes[] = { "1", "t", "true", "y", "yes" }, *const no[] = { "0", "f", "false", "n", "no" };
  char *end;
  if (type == STRING)
    return strdup (v);
  for (size_t i = 0; type == BOOL && i < N (yes); i++)
    if (!strcasecmp (v, yes[i]) || !strcasecmp (v, no[i]))
      return strdup (!strcasecmp (v, yes[i]) ? "true" : "false");
  if (type == BOOL || !*v)
    return NULL;
  int base = v[0] == '0' && (v[1] == 'x' || v[1] == 'X') ? 16 : 10;
  errno = 0;
  if (type == INT32)
    {
      long long r = strtoll (v, &end, base);
      return errno || *end || r < INT32_MIN || r > INT32_MAX ? NULL : str ("%lld", r);
    }
  v += strspn (v, " ");
  unsigned long long r = *v == '-' ? 0 : strtoull (v, &end, base);
  return *v == '-' || errno || *end || r > UINT32_MAX ? NULL : str ("%llu", r);
}

/* One message per flag name (a std::map in gflags): printed sorted.  */
static struct gflags_error
{
  char *key, *msg;
} errs[64];
static size_t nerrs;
static char *undefined[64];
static size_t nundefined;

static void
set_error (const char *key, char *msg)
{
  size_t i = 0;
  while (i < nerrs && strcmp (errs[i].key, key))
    i++;
  if (i == N (errs))
    return;
  if (i == nerrs)
    errs[nerrs++].key = strdup (key);
  free (errs[i].msg);
  errs[i].msg = msg;
}

static int
cmp_err (const void *a, const void *b)
{
  return strcmp (((const struct gflags_error *) a)->key, ((const struct gflags_error *) b)->key);
}

static const char *
flag_file (size_t i)
{
  if (flags[i].file)
    return flags[i].file;
  if (T == SECURE_ENV && R == A14)
    return DGC "host/commands/secure_env/secure_env_linux_main.cpp";
  return tools[T].src;
}

static int
cmp_flag (const void *a, const void *b)
{
  size_t x = *(const size_t *) a, y = *(const size_t *) b;
  int c = strcmp (flag_file (x), flag_file (y));
  return c ? c : strcmp (flags[x].name, flags[y].name);
}

static void
xml_text (const char *s)
{
  for (; *s; s++)
    fputs (*s == '&' ? "&amp;" : *s == '<' ? "&lt;" : (char[]) { *s, 0 }, stdout);
}

/* --helpxml (gflags_reporting.cc:186-213, 312-334), --help (:119-183):
   every flag sorted by (file, name), gflags' own ones included; exit 1.  */
static void __attribute__ ((noreturn)) show_flags (bool xml)
{
  size_t order[N (flags)] = { 0 }, n = 0;
  for (size_t i = 0; i < N (flags); i++)
    if (active[i])
      order[n++] = i;
  qsort (order, n, sizeof *order, cmp_flag);
  const char *usage = "Warning: SetUsageMessage() never called", *last = "";
  printf (xml ? "<?xml version=\"1.0\"?>\n<AllFlags>\n<program>%s</program>\n<usage>%s</usage>\n" : "%s: %s\n", prog,
          usage);
  for (size_t k = 0; k < n; k++)
    {
      const struct flagdef *f = &flags[order[k]];
      const char *q = f->type == STRING ? "\"" : "", *file = flag_file (order[k]);
      if (!xml)
        {
          if (strcmp (last, file))
            printf ("\n  Flags from %s:\n", last = file);
          printf ("    -%s (%s) type: %s default: %s%s%s", f->name, f->meaning, type_names[f->type], q, f->def, q);
          printf (strcmp (f->def, cur[order[k]]) ? " currently: %s%s%s\n" : "\n", q, cur[order[k]], q);
          continue;
        }
      const char *const text[] = { file, f->name, f->meaning, f->def, cur[order[k]], type_names[f->type] };
      static const char *const tags[] = { "file", "name", "meaning", "default", "current", "type" };
      printf ("<flag>");
      for (size_t j = 0; j < N (tags); j++)
        printf ("<%s>", tags[j]), xml_text (text[j]), printf ("</%s>", tags[j]);
      printf ("</flag>\n");
    }
  if (xml)
    printf ("</AllFlags>\n");
  exit (1);
}

/* gflags::ParseCommandLineFlags: ParseNewCommandLineFlags,
   SplitArgumentLocked, HandleCommandLineHelpFlags, ReportErrors.  */
static void
parse_gflags (void)
{
  char **av = malloc ((size_t) (ARGC + 1) * sizeof *av);
  memcpy (av, ARGV, (size_t) (ARGC + 1) * sizeof *av);
  int first_nonopt = ARGC;
  for (int i = 1; i < first_nonopt; i++)
    {
      char *arg = av[i];
      if (arg[0] != '-' || arg[1] == '\0')
        { /* a positional argument, moved to the end */
          memmove (av + i, av + i + 1, (size_t) (ARGC - i - 1) * sizeof *av);
          av[ARGC - 1] = arg;
          first_nonopt--, i--;
          continue;
        }
      arg += arg[1] == '-' ? 2 : 1;
      if (!*arg)
        break; /* "--" */
      char *key = strdup (arg), *eq = strchr (key, '=');
      const char *value = eq ? eq + 1 : NULL;
      if (eq)
        *eq = '\0';
      int f = find_flag (key);
      if (f < 0 && key[0] == 'n' && key[1] == 'o' && (f = find_flag (key + 2)) >= 0 && flags[f].type != BOOL)
        {
          set_error (key, str ("ERROR: boolean value (%s) specified for %s command line flag\n", key,
                               type_names[flags[f].type]));
          f = -1;
        }
      else if (f >= 0 && strcmp (flags[f].name, key) && !strncmp (key, "no", 2) && find_flag (key) < 0)
        value = "0"; /* -nofoo for the bool foo */
      else if (f < 0)
        set_error (key, str ("ERROR: unknown command line flag '%s'\n", key));
      if (f < 0)
        {
          if (nundefined < N (undefined))
            undefined[nundefined++] = key;
          continue;
        }
      if (!value && flags[f].type == BOOL)
        value = "1";
      else if (!value && i + 1 >= first_nonopt)
        {
          set_error (key,
                     str ("ERROR: flag '%s' is missing its argument; flag description: %s\n", av[i], flags[f].meaning));
          break;
        }
      else if (!value)
        value = av[++i];
      char *v = parse_value (flags[f].type, value);
      if (!v)
        set_error (flags[f].name, str ("ERROR: illegal value '%s' specified for %s flag '%s'\n", value,
                                       type_names[flags[f].type], flags[f].name));
      else
        cur[f] = v;
      if (v && *v && strstr (" flagfile fromenv tryfromenv tab_completion_word ", str (" %s ", flags[f].name)))
        usage_error ("--%s is not emulated", flags[f].name);
    }
  free (av);

  if (FB ("helpshort") || FB ("help") || FB ("helpfull") || *F ("helpon") || *F ("helpmatch") || FB ("helppackage"))
    show_flags (false);
  if (FB ("helpxml"))
    show_flags (true);
  if (FB ("version"))
    printf ("%s\n", prog), exit (0);

  for (const char *p = F ("undefok"); *p;)
    {
      size_t len = strcspn (p, ",");
      if (len == 0 || *p == '-')
        {
          if (len == 0)
            dprintf (STDERR_FILENO, "ERROR: empty flaglist entry\n");
          else
            dprintf (STDERR_FILENO, "ERROR: flag \"%.*s\" begins with '-'\n", (int) len, p);
          exit (1);
        }
      char *name = strndup (p, len), *no = str ("no%s", name);
      bool has_name = false, has_no = false;
      for (size_t i = 0; i < nundefined; i++)
        has_name |= !strcmp (undefined[i], name), has_no |= !strcmp (undefined[i], no);
      if (has_name || has_no)
        set_error (has_name ? name : no, NULL);
      free (name), free (no);
      p += len + (p[len] == ',');
    }
  qsort (errs, nerrs, sizeof *errs, cmp_err);
  bool failed = false;
  for (size_t i = 0; i < nerrs; i++)
    if (errs[i].msg)
      dprintf (STDERR_FILENO, "%s", errs[i].msg), failed = true;
  if (failed)
    exit (1);
}

/* tombstone_receiver's flag_parser (flag_parser.cpp GflagsCompatFlag,
   SharedFDFlag, HelpFlag, UnexpectedArgumentGuard): each flag in turn takes
   its matches (-name=V, --name=V, -name V, --name V, dashes as
   underscores); whatever is left aborts.  */
static void
parse_flag_parser (void)
{
  const char *where = "main.cpp:74", *expr = R == A14 ? "ParseFlags(flags, args)" : "parse_res.ok()";
  char **args = calloc ((size_t) ARGC, sizeof *args);
  int n = 0;
  for (int i = 1; i < ARGC; i++)
    args[n++] = ARGV[i];
  static const char *const names[] = { "tombstone_dir", "server_fd" };
  for (size_t k = 0; k < N (names); k++)
    for (int i = 0; i < n;)
      {
        char *norm = strdup (args[i]), *eq1 = str ("_%s=", names[k]), *eq2 = str ("__%s=", names[k]);
        for (char *p = norm; *p; p++)
          *p = *p == '-' ? '_' : *p;
        const char *value = !strncmp (norm, eq1, strlen (eq1))   ? args[i] + strlen (eq1)
                            : !strncmp (norm, eq2, strlen (eq2)) ? args[i] + strlen (eq2)
                                                                 : NULL;
        int used = 1;
        if (!value && (!strncmp (norm, eq1, strlen (eq1) - 1) || !strncmp (norm, eq2, strlen (eq2) - 1))
            && strlen (norm) == strlen (names[k]) + (norm[1] == '_' ? 2 : 1))
          {
            CHECK (i + 1 < n, where, expr, "Could not process command line flags. Expected an argument after \"%s\"",
                   args[i]);
            value = args[i + 1], used = 2;
          }
        free (norm), free (eq1), free (eq2);
        if (!value)
          {
            i++;
            continue;
          }
        char *end = NULL;
        errno = 0;
        long fd = k ? strtol (value, &end, 0) : 0;
        CHECK (!k || (*value && !*end && !errno && fd >= INT_MIN && fd <= INT_MAX), where, expr,
               "Could not process command line flags. Failed to parse value \"%s\" for fd flag", value);
        cur[find_flag (names[k])] = k ? str ("%ld", fd) : strdup (value);
        memmove (args + i, args + i + used, (size_t) (n - i - used) * sizeof *args);
        n -= used;
      }
  for (int i = 0; i < n; i++)
    {
      bool help = !strcmp (args[i], "-help") || !strcmp (args[i], "--help");
      CHECK (0, where, expr, "Could not process command line flags. %s%s%s", help ? "" : "Unexpected argument \"",
             help ? "user requested early exit" : args[i], help ? "" : "\"");
    }
  free (args);
}

/* ---- The Cuttlefish config (r1 §1) ---------------------------------------- */

static json_t *config;
static int instance_id = 1;
static char *instance_dir;

/* jsoncpp's lookups and conversions: a mismatch throws (r1 §1.5).  */
static const json_t *
jget (const json_t *obj, const char *key)
{
  if (!obj || json_is_null (obj))
    return NULL;
  if (!json_is_object (obj))
    uncaught ("Json::LogicError", "in Json::Value::find(key, end, found): requires objectValue or nullValue");
  return json_object_get (obj, key);
}

static char *
jstr (const json_t *v)
{
  if (!v || json_is_null (v))
    return strdup ("");
  if (json_is_string (v))
    return strdup (json_string_value (v));
  if (json_is_boolean (v))
    return strdup (json_is_true (v) ? "true" : "false");
  if (json_is_integer (v))
    return str ("%lld", (long long) json_integer_value (v));
  if (json_is_real (v))
    return str ("%.17g", json_real_value (v));
  uncaught ("Json::LogicError", "Type is not convertible to string");
}

static bool
jbool (const json_t *v)
{
  if (!v || json_is_null (v) || json_is_boolean (v))
    return v && json_is_true (v);
  if (json_is_number (v))
    return json_number_value (v) != 0;
  uncaught ("Json::LogicError", "Value is not convertible to bool.");
}

static long long
jint (const json_t *v)
{
  if (!v || json_is_null (v) || json_is_boolean (v))
    return v && json_is_true (v);
  if (json_is_number (v) && json_number_value (v) >= INT32_MIN && json_number_value (v) <= INT32_MAX)
    return (long long) json_number_value (v);
  uncaught ("Json::LogicError",
            json_is_number (v) ? "LargestInt out of Int range" : "Value is not convertible to Int.");
}

/* AbsolutePath (files.cpp): a relative path is taken from the CWD.  */
static char *
absolute_path (const char *p)
{
  char cwd[PATH_MAX];
  return !*p || *p == '/' ? strdup (p) : getcwd (cwd, sizeof cwd) ? str ("%s/%s", cwd, p) : strdup ("");
}

/* std::stoi (libc++): blanks, a sign, digits; throws otherwise.  */
static int
stoi (const char *s)
{
  char *end;
  errno = 0;
  long v = strtol (s, &end, 10);
  if (end == s)
    uncaught ("std::invalid_argument", "stoi: no conversion");
  if (errno == ERANGE || v < INT_MIN || v > INT_MAX)
    uncaught ("std::out_of_range", "stoi: out of range");
  return (int) v;
}

static const json_t *
instance_json (void)
{
  char id[16];
  snprintf (id, sizeof id, "%d", instance_id);
  return jget (jget (config, "instances"), id);
}

/* CuttlefishConfig::Get: $CUTTLEFISH_CONFIG_FILE, else
   ${HOME:-.}/.cuttlefish_config.json; NULL when unreadable.  The instance:
   CUTTLEFISH_INSTANCE, else USER=vsoc-NN, else 1 (config_utils.cpp:32-71);
   its directory <root_dir>/instances/cvd-<id>.  */
static json_t *
config_get (void)
{
  static bool tried;
  if (tried)
    return config;
  tried = true;
  const char *env = getenv ("CUTTLEFISH_CONFIG_FILE"), *home = getenv ("HOME");
  char *path = env ? strdup (env) : str ("%s/.cuttlefish_config.json", home ? home : "."), *abs = absolute_path (path);
  json_error_t e;
  if (!*abs)
    lg ('E', "cuttlefish_config.cpp:639", "Could not get real path for file %s", path);
  else if (!(config = json_load_file (abs, JSON_DECODE_ANY, &e)))
    lg ('E', "cuttlefish_config.cpp:646", "Could not read config file %s: %s", abs, e.text);
  free (path), free (abs);
  if (!config)
    return NULL;
  const char *ie = getenv ("CUTTLEFISH_INSTANCE"), *user = getenv ("USER");
  const char *s = ie && *ie ? ie : user && !strncmp (user, "vsoc-", 5) ? user : NULL;
  if (s)
    {
      s += !strncmp (s, "vsoc-", 5) ? 5 : !strncmp (s, "cvd-", 4) ? 4 : 0;
      instance_id = stoi (s) > 0 ? stoi (s) : 1;
    }
  char *root = jstr (jget (config, "root_dir")), *inst = str ("%s/instances", root), *abs_inst = absolute_path (inst);
  if (*root != '/')
    dprintf (STDERR_FILENO, "%s: root_dir \"%s\" is not absolute: %s is taken from the CWD\n", PROG, root, abs_inst);
  instance_dir = str ("%s/cvd-%d", abs_inst, instance_id);
  free (root), free (inst), free (abs_inst);
  return config;
}

static char *
instance_path (const char *sub)
{
  return str ("%s/%s", instance_dir, sub);
}

/* ${ANDROID_HOST_OUT:-${HOME:-.}}/SUB (DefaultHostArtifactsPath).  */
static char *
host_path (const char *sub)
{
  const char *h = getenv ("ANDROID_HOST_OUT"), *home = getenv ("HOME");
  return str ("%s/%s", h ? h : home ? home : ".", sub);
}

/* The tool's logger: logs/launcher.log (and EXTRA) opened O_APPEND, else
   LOG(FATAL) (tee_logging.cpp:268, A14 :230).  */
static void
set_logger (const char *extra)
{
  to_stderr = extra || !jbool (jget (instance_json (), "run_as_daemon")); /* modem_simulator's: always */
  const json_t *all = jget (config, "instances");
  if (json_is_object (all) && json_object_size (all) > 1)
    snprintf (log_prefix, sizeof log_prefix, "cvd-%d: ", instance_id);
  const char *files[2] = { "logs/launcher.log", extra };
  for (int i = 0; i < 2 && files[i]; i++)
    {
      char *rel = instance_path (files[i]), *path = absolute_path (rel);
      if ((log_fds[i] = open (path, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0664)) < 0)
        FATALF (R == A14 ? "tee_logging.cpp:230" : "tee_logging.cpp:268", "Failed to create log file '%s': %s", path,
                strerror (errno));
      free (rel), free (path);
    }
  logger_set = true;
}

/* DefaultSubprocessLogging (host/libs/config/logging.cpp:26-44).  */
static void
default_subprocess_logging (void)
{
  CHECK (config_get (), "logging.cpp:31", "config", "Could not open cuttlefish config");
  set_logger (NULL);
}

/* ---- Descriptors and sockets ---------------------------------------------- */

static bool
fd_is (int fd, enum kind k)
{
  struct stat st;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss, len = sizeof (int);
  int fl = fcntl (fd, F_GETFL), on = 0;
  if (fstat (fd, &st) < 0 || fl < 0)
    return false;
  if (k == READABLE || k == WRITABLE)
    return (fl & O_ACCMODE) != (k == READABLE ? O_WRONLY : O_RDONLY);
  if (!S_ISSOCK (st.st_mode) || k == SOCKET)
    return S_ISSOCK (st.st_mode);
  if (k == LISTENING_UNIX && (getsockname (fd, (struct sockaddr *) &ss, &sl) < 0 || ss.ss_family != AF_UNIX))
    return false;
  return getsockopt (fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

/* The inherited descriptor FD given as FLAG (or in its list), checked as the
   tool's fdrules row says; returns a dup, or -1 (LOG_ONLY).  */
static int
take_fd (const char *flag, long long fd)
{
  const struct fdrule *r = NULL;
  for (size_t i = 0; i < N (fdrules); i++)
    if (fdrules[i].tool == (int) T && (fdrules[i].rels & B (R)) && !strcmp (fdrules[i].flag, flag))
      r = &fdrules[i];
  if (!r)
    usage_error ("internal: no descriptor rule for %s", flag);
  const char *src = R == A14 ? "secure_env_linux_main.cpp" : "secure_env_not_windows_main.cpp";
  char where[64];
  if (r->how == DUP_CHECK)
    snprintf (where, sizeof where, "%s:%d", src, R == A14 ? 79 : 99);
  else
    snprintf (where, sizeof where, "%s", r->where);
  if (r->how == DUP_CHECK)
    CHECK (fd != -1, where, "fd != -1", "%s", "");
  int d = fd >= 0 && fd <= INT_MAX ? fcntl ((int) fd, F_DUPFD_CLOEXEC, 3) : (errno = EBADF, -1), e = errno;
  if (d < 0)
    {
      char msg[512];
      snprintf (msg, sizeof msg, r->msg ? r->msg : "Could not dup output fd", (int) fd);
      if (r->err || r->how == DUP_CHECK)
        snprintf (msg + strlen (msg), sizeof msg - strlen (msg), ": %s", strerror (e));
      if (r->how == DUP_CHECK)
        snprintf (where, sizeof where, "%s:%d", src, R == A14 ? 81 : 101);
      if (r->how == DUP_CHECK || r->how == CHECK_OPEN)
        CHECK (0, where, r->how == DUP_CHECK ? "duped->IsOpen()" : r->expr, "%s", msg);
      if (r->how == FATAL)
        FATALF (where, "%s", msg);
      lg ('E', where, "%s", msg);
      if (r->how == RETURN)
        exit (r->code);
      return -1;
    }
  if (r->how != DUP_CHECK)
    close ((int) fd); /* secure_env keeps its originals for its re-exec */
  if (!fd_is (d, r->kind))
    lg ('W', "fakecf.c:1", "%s: -%s=%lld is not %s: the real %s fails when it uses it", PROG, flag, fd,
        kind_names[r->kind], tools[T].name);
  return d;
}

/* "3,4,5" (digits and commas only, else exit 1), split like
   android::base::Split: "" is one empty element, which std::stoi rejects.  */
static int
split_fds (const char *list, const char *where, int out[], int max)
{
  if (list[strspn (list, "0123456789,")])
    lg ('E', where, "Invalid file descriptor list: %s", list), exit (1);
  int n = 0;
  for (const char *p = list;; p++)
    {
      char item[16];
      size_t len = strcspn (p, ",");
      snprintf (item, sizeof item, "%.*s", (int) len, p);
      int v = stoi (item);
      if (n < max)
        out[n++] = v;
      if (!*(p += len))
        return n;
    }
}

static int
listen_at (int family, const void *sa, socklen_t len)
{
  int fd = socket (family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, e;
  if (fd < 0)
    return -1;
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind (fd, sa, len) == 0 && listen (fd, 16) == 0)
    return fd;
  e = errno, close (fd), errno = e;
  return -1;
}

/* A unix socket (a stale one replaced), or an abstract one.  */
static int
listen_unix (const char *path, bool abstract)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  struct stat st;
  size_t len = strlen (path);
  if (len + 1 >= sizeof sa.sun_path)
    return errno = ENAMETOOLONG, -1;
  memcpy (sa.sun_path + abstract, path, len);
  if (!abstract && lstat (path, &st) == 0 && S_ISSOCK (st.st_mode))
    unlink (path);
  return listen_at (AF_UNIX, &sa, (socklen_t) (offsetof (struct sockaddr_un, sun_path) + len + 1));
}

static int
listen_inet (const char *ip, int port)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
  return inet_pton (AF_INET, ip, &sa.sin_addr) == 1 ? listen_at (AF_INET, &sa, sizeof sa) : (errno = EINVAL, -1);
}

/* AF_VSOCK; -2 when this host has no vsock transport for CID.  */
static int
listen_vsock (unsigned cid, unsigned port)
{
  struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
  int fd = listen_at (AF_VSOCK, &sa, sizeof sa);
  return fd < 0 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL || errno == ENODEV) ? -2 : fd;
}

static int
connect_to (int family, const void *sa, socklen_t len)
{
  int fd = socket (family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect (fd, sa, len) < 0)
    close (fd), fd = -1;
  return fd;
}

static int
connect_unix (const char *path)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", path);
  return connect_to (AF_UNIX, &sa, sizeof sa);
}

static int
connect_inet (const char *host, unsigned port)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
  inet_pton (AF_INET, !strcmp (host, "localhost") ? "127.0.0.1" : host, &sa.sin_addr);
  return connect_to (AF_INET, &sa, sizeof sa);
}

static ssize_t
read_full (int fd, void *buf, size_t len)
{
  size_t got = 0;
  for (ssize_t n; got < len; got += (size_t) n)
    if ((n = read (fd, (char *) buf + got, len - got)) <= 0 && !(n < 0 && errno == EINTR && (n = 0) == 0))
      return n < 0 ? -1 : (ssize_t) got;
  return (ssize_t) got;
}

/* A kernel_log_monitor event (native size_t length, then JSON): 1 and its
   id, 0 at end of file, -1 on an error or a short event.  */
static int
read_event (int fd, int *event)
{
  size_t len;
  ssize_t n = read_full (fd, &len, sizeof len);
  if (n <= 0 || n != sizeof len || len > 1 << 20)
    return n <= 0 ? (int) n : -1;
  char *buf = malloc (len);
  n = read_full (fd, buf, len);
  json_t *j = n == (ssize_t) len ? json_loadb (buf, len, 0, NULL) : NULL;
  free (buf);
  if (!j)
    return n == 0 ? 0 : -1;
  *event = (int) json_integer_value (json_object_get (j, "event"));
  json_decref (j);
  return 1;
}

/* ---- The tools -------------------------------------------------------------- */

/* A state file of secure_env's in the CWD (the instance directory): FILE
   with LINE when it does not exist (its default state), else left as it is
   (a restored snapshot's state is kept).  0, or -1 with errno.  */
static int
state_default (const char *file, const char *line)
{
  int fd = open (file, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0)
    return errno == EEXIST ? 0 : -1;
  dprintf (fd, "%s (pid %d)\n", line, (int) getpid ());
  close (fd);
  return 0;
}

/* secure_env's snapshot control (-snapshot_control_fd): one request from
   run_cvd, answered.  google/android-cuttlefish 9b10c273 base/cvd/
   cuttlefish/host/commands/secure_env/suspend_resume_handler.cpp
   SuspendResumeHandler reads a LauncherAction (command_util/util.cc
   ReadLauncherActionFromFd: 'A' kExtended, a host-order uint32 length, the
   serialized ExtendedLauncherAction of runner/run_cvd.proto: suspend is
   field 5, resume field 6); on suspend it asks its worker threads to
   suspend and, once they all acknowledged, writes LauncherResponse
   kSuccess 'S'; on resume it asks them to resume and writes 'S'; anything
   else ends the handler thread without an answer ("Unsupported run_cvd
   snapshot command.", or "Channel to run_cvd closed unexpectedly" at end
   of file).  Android 14 QPR2/QPR3 (DGC android14-qpr2-release
   host/libs/command_util/launcher_message.cc ReadFromFd) have a uint32
   ExtendedActionType (kSuspend 5, kResume 6) between the action and the
   length, and take the type from it.  While suspended the worker threads
   block, so the state files (NVChip, the *_secure and *_insecure storage)
   are not written: this double writes them only at start anyway.  0 when
   answered, -1 when the handler thread ended.  */
static int
snapshot_request (int fd)
{
  const char *src = "suspend_resume_handler.cpp";
  unsigned char action, msg[64];
  uint32_t type = 0, len = 0;
  ssize_t n = read_full (fd, &action, 1);
  if (n == 0)
    {
      lg ('E', src, "Channel to run_cvd closed unexpectedly");
      return -1;
    }
  if (n != 1 || action != 'A' || (R == A14Q2 && read_full (fd, &type, 4) != 4) || read_full (fd, &len, 4) != 4
      || len > sizeof msg || read_full (fd, msg, len) != (ssize_t) len)
    {
      lg ('E', src, "Failed to read LauncherAction from run_cvd");
      return -1;
    }
  /* The protobuf: one empty length-delimited member (2a 00 or 32 00).  */
  bool suspend = len == 2 && msg[0] == 0x2a && msg[1] == 0, resume = len == 2 && msg[0] == 0x32 && msg[1] == 0;
  if (R == A14Q2 && !((type == 5 && suspend) || (type == 6 && resume)))
    suspend = resume = false;
  if (!suspend && !resume)
    {
      lg ('E', src, "Unsupported run_cvd snapshot command.");
      return -1;
    }
  /* VLOG(0): absl's INFO (A14Q2: LOG(DEBUG), shown here the same) */
  lg ('I', src, suspend ? "Handling suspended..." : "Handling resume...");
  char ok = 'S';
  if (write (fd, &ok, 1) != 1)
    {
      lg ('E', src, "socket write failed: %s", strerror (errno));
      return -1;
    }
  return 0;
}

/* secure_env (r2 §2, r1 §2.3), in SecureEnvMain's order.  */
static void
run_secure_env (void)
{
  const char *src = R == A14 ? "secure_env_linux_main.cpp" : "secure_env_not_windows_main.cpp";
  char w[80];
#define AT(line) (snprintf (w, sizeof w, "%s:%d", src, (line)), w)
  default_subprocess_logging ();
  parse_gflags ();
  const char *gk = F ("gatekeeper_impl"), *tpm = F ("tpm_impl"), *km = F ("keymint_impl");
  if (strcmp (gk, "software") && strcmp (gk, "tpm"))
    FATALF (AT (R == A14 ? 137 : 173), "Invalid gatekeeper implementation: %s", gk);
  if (strcmp (tpm, "in_memory") && strcmp (tpm, "host_device"))
    FATALF (AT (R == A14 ? 153 : 211), "Unknown TPM implementation: %s", tpm);
  if (!strcmp (tpm, "host_device") && access ("/dev/tpm0", R_OK | W_OK) != 0)
    FATALF (AT (R == A14 ? 159 : 216), "Unable to connect to TPM implementation.");
  if (!strcmp (tpm, "in_memory")) /* the in-process TPM's NV file, in the CWD (I); manufactured when new */
    state_default ("NVChip", "avm-fakecf secure_env NVChip (manufactured)");
  if (R >= A14Q2)
    { /* OemLock writes its default state at startup, in the CWD (oemlock.cpp:45-50) */
      const char *oi = F ("oemlock_impl"), *file = !strcmp (oi, "tpm") ? "oemlock_secure" : "oemlock_insecure";
      if (strcmp (oi, "software") && strcmp (oi, "tpm"))
        FATALF (AT (190), "Invalid oemlock implementation: %s", oi);
      if (state_default (file, "avm-fakecf secure_env oemlock default state") < 0)
        FATALF ("oemlock.cpp:47", "Failed to initialize default state for OemLock TEE storage: %s: %s", file,
                strerror (errno));
    }
  bool rust = R == A14 && !strncmp (km, "rust-", 5);
  if (rust ? strcmp (km, "rust-tpm") && strcmp (km, "rust-software") : strcmp (km, "tpm") && strcmp (km, "software"))
    {
      if (R == A14)
        FATALF (AT (222), "Unknown keymaster implementation %s", km);
      FATALF (AT (440), "Unknown Keymint Implementation: %s", km);
    }
  int snap = R >= A14Q2 ? take_fd ("snapshot_control_fd", FI ("snapshot_control_fd")) : -1;
  static const char *const fds[] = { "keymaster_fd_in",   "keymaster_fd_out", "gatekeeper_fd_in",
                                     "gatekeeper_fd_out", "oemlock_fd_in",    "oemlock_fd_out" };
  for (size_t i = rust ? 2 : 0; i < (R == A14 ? 4u : 6u); i++) /* A14's Rust KeyMint takes raw keymaster fds */
    take_fd (fds[i], FI (fds[i]));
  int confui = take_fd ("confui_server_fd", FI ("confui_server_fd"));
  int events = take_fd ("kernel_events_fd", FI ("kernel_events_fd"));
  /* Re-executed on a guest reboot: A14 /proc/self/exe, later
     $ANDROID_HOST_OUT/bin/secure_env (r1 §2.3).  */
  char *self = R == A14 ? strdup ("/proc/self/exe") : host_path ("bin/secure_env");
  if (access (self, X_OK) != 0)
    lg ('W', "fakecf.c:1", "%s: no %s: the real secure_env fails at the guest's next reboot", PROG, self);
  ready ();
  struct pollfd p[3] = { { events, POLLIN, 0 }, { snap, POLLIN, 0 }, { confui, POLLIN, 0 } };
  bool unreadable = !fd_is (events, READABLE); /* the real one's blocking read fails at once */
  if (!fd_is (confui, LISTENING))
    {
      lg ('E', "confui_sign_server.cpp:51", "Confirmation UI host signing client socket is broken.");
      p[2].fd = -1;
    }
  for (;;)
    {
      if (!unreadable && poll (p, 3, -1) < 0)
        continue;
      int ev = -1, r = p[0].revents || unreadable ? read_event (events, &ev) : 1;
      if (R >= A15Q2)
        {
          CHECK (r >= 0, AT (130), "read_result.ok()", "Failed reading length: '%s'", strerror (errno));
          CHECK (r > 0, AT (131), "read_result->has_value()", "EOF in kernel log monitor");
        }
      else if (r <= 0)
        {
          const char *e = r < 0 ? strerror (errno) : "Success";
          lg ('E', "utils.cc:30", "Failed to read event buffer size: %s", e);
          CHECK (0, AT (R == A14 ? 109 : 130), "read_result.has_value()", "%s", e);
        }
      if (ev == EV_BOOTLOADER_LOADED)
        {
          lg ('D', AT (132), "secure_env detected guest reboot, restarting.");
          execv (self, ARGV);
          FATALF (AT (R == A14 ? 98 : 118), "Exec failed, secure_env is out of sync with the guest: %d(%s)", errno,
                  strerror (errno));
        }
      if (p[1].revents && snapshot_request (snap) < 0)
        p[1].fd = -1; /* (the real one's handler thread ends; the rest goes on) */
      if (p[2].revents)
        close (accept (confui, NULL, NULL));
    }
#undef AT
}

/* The guest's log pipe: -log_pipe_fd, else the configured FIFO.  */
static int
log_pipe (const char *fifo)
{
  if (FI ("log_pipe_fd") >= 0)
    return take_fd ("log_pipe_fd", FI ("log_pipe_fd"));
  char *path = instance_path (fifo);
  int r = open (path, O_RDONLY | O_CLOEXEC);
  if (r < 0)
    lg ('E', "main.cc:96", "Error opening log pipe: %s", strerror (errno)), exit (2);
  free (path);
  return r;
}

static void
json_quote (FILE *f, const char *s)
{
  fputc ('"', f);
  for (; *s; s++)
    fprintf (f, *s == '"' || *s == '\\' ? "\\%c" : (unsigned char) *s < 0x20 ? "\\u%04x" : "%c", *s);
  fputc ('"', f);
}

/* An event as utils.cc WriteEvent sends it: its native size_t length, then
   the JSON as jsoncpp's StreamWriterBuilder writes it (tabs, " : ", keys
   sorted); KV's key=value fields make the metadata object.  */
static void
send_event (int subs[], int nsubs, int event, char *kv)
{
  char *buf = NULL, *keys[32], *vals[32], *save = NULL;
  size_t len = 0;
  int n = 0;
  FILE *m = open_memstream (&buf, &len);
  fprintf (m, "{\n\t\"event\" : %d,\n\t\"metadata\" : ", event);
  for (char *f = kv ? strtok_r (kv, " \t\r\n", &save) : NULL; f && n < 32; f = strtok_r (NULL, " \t\r\n", &save))
    {
      char *eq = strchr (f, '=');
      if (!eq || strchr (eq + 1, '='))
        {
          lg ('W', "kernel_log_server.cc:154", "Field is not in key=value format: %s", f);
          continue;
        }
      *eq = '\0';
      int k = 0;
      while (k < n && strcmp (keys[k], f) < 0)
        k++;
      if (k == n || strcmp (keys[k], f))
        {
          memmove (keys + k + 1, keys + k, (size_t) (n - k) * sizeof *keys);
          memmove (vals + k + 1, vals + k, (size_t) (n - k) * sizeof *vals);
          n++;
        }
      keys[k] = f, vals[k] = eq + 1;
    }
  fputs (n ? "\n\t{" : "null", m);
  for (int k = 0; k < n; k++)
    {
      fputs ("\n\t\t", m), json_quote (m, keys[k]), fputs (" : ", m), json_quote (m, vals[k]);
      fputs (k + 1 < n ? "," : "\n\t}", m);
    }
  fputs ("\n}", m);
  fclose (m);
  for (int i = 0; i < nsubs; i++)
    {
      struct iovec iov[2] = { { &len, sizeof len }, { buf, len } };
      if (subs[i] >= 0 && writev (subs[i], iov, 2) != (ssize_t) (sizeof len + len))
        {
          if (errno != EPIPE)
            lg ('E', "main.cc:107", "Error while writing to pipe: %s", strerror (errno));
          close (subs[i]);
          subs[i] = -1;
        }
    }
  free (buf);
}

/* kernel_log_monitor (r2 §3): logs/kernel.log, and events to subscribers.  */
static void
run_kernel_log_monitor (void)
{
  default_subprocess_logging ();
  parse_gflags ();
  int raw[64], subs[64], n = split_fds (F ("subscriber_fds"), "main.cc:51", raw, 64);
  for (int i = 0; i < n; i++)
    subs[i] = take_fd ("subscriber_fds", raw[i]);
  signal (SIGPIPE, SIG_IGN);
  int in = log_pipe ("internal/kernel-log-pipe");
  char *path = instance_path ("logs/kernel.log"), buf[256], *line = malloc (256);
  int out = open (path, O_CREAT | O_RDWR | O_APPEND | O_CLOEXEC, 0666);
  size_t len = 0, cap = 256;
  ready ();
  for (ssize_t r; line;)
    {
      if ((r = read (in, buf, sizeof buf)) < 0 && errno == EINTR)
        continue;
      if (r <= 0) /* the real one spins on a closed or broken pipe */
        {
          if (r < 0)
            lg ('E', "kernel_log_server.cc:100", "Could not read kernel logs: %s", strerror (errno));
          hold ();
        }
      if (out >= 0)
        write_all (out, buf, (size_t) r);
      for (ssize_t i = 0; i < r; i++)
        {
          if (buf[i] == '\n')
            {
              line[len] = '\0';
              for (size_t s = 0; s < N (stages); s++)
                {
                  char *pos = (stages[s].rels & B (R)) ? strstr (line, stages[s].match) : NULL, *kv;
                  if (!pos)
                    continue;
                  lg ('I', "kernel_log_server.cc:128", "%s", stages[s].fmt == PREFIX ? pos : stages[s].match);
                  kv = stages[s].fmt == KV ? strdup (pos + strlen (stages[s].match)) : NULL;
                  send_event (subs, n, stages[s].event, kv);
                  free (kv);
                }
              len = 0;
            }
          if (len + 2 > cap)
            {
              char *bigger = realloc (line, cap *= 2);
              if (!bigger)
                abort ();
              line = bigger;
            }
          line[len++] = buf[i];
        }
    }
}

/* logcat_receiver (r2 §4): the pipe into logs/logcat.  A14Q2's restore
   handshake (<root_dir>/assembly/restore, main.cpp:80-105) is not emulated.  */
static void
run_logcat_receiver (void)
{
  default_subprocess_logging ();
  parse_gflags ();
  signal (SIGPIPE, SIG_IGN);
  int in = log_pipe ("internal/logcat-pipe");
  char *path = instance_path ("logs/logcat"), buf[1024];
  int out = open (path, O_CREAT | O_APPEND | O_WRONLY | O_CLOEXEC, 0666);
  ready ();
  for (ssize_t r;;)
    {
      if ((r = read (in, buf, sizeof buf)) < 0 && errno == EINTR)
        continue;
      if (r < 0)
        lg ('E', "main.cpp:69", "Could not read logcat: %s", strerror (errno)), exit (0);
      if (r == 0) /* the real one spins */
        hold ();
      CHECK (write (out, buf, (size_t) r) == r, "main.cpp:76", "written == read",
             "Error writing to log file: %s. This is unrecoverable.", strerror (errno));
    }
}

/* modem_simulator (r2 §5, r1 §2.4): flags first, then the config without a
   check (a null dereference), its own logger, the abstract monitor socket
   modem_simulator<host_id> and run_cvd's STOP/OK.  */
static void
run_modem_simulator (void)
{
  parse_gflags ();
  if (!config_get ())
    die_by (SIGSEGV);
  set_logger ("logs/modem_simulator.log");
  int sim_type = (int) FI ("sim_type"), raw[16];
  lg ('I', "main.cpp:73", "Start modem simulator, server_fds: %s, Sim type: %s", F ("server_fds"),
      sim_type == 2 ? "special for CtsCarrierApiTestCases" : "normal");
  int n = split_fds (F ("server_fds"), "main.cpp:44", raw, 16);
  for (int i = 0; i < n; i++)
    {
      if (!fd_is (take_fd ("server_fds", raw[i]), LISTENING)) /* the real one logs this in a loop */
        lg ('E', "channel_monitor.cpp:123", "Error accepting connection on socket: %s", strerror (EINVAL));
      /* sim_service.cpp:371-404: the instance's profile, else the host
         package's; neither: the SIM is absent (the real one says nothing).  */
      char *name = str ("iccprofile_for_sim%d%s.xml", i, sim_type == 2 ? "_for_CtsCarrierApiTestCases" : "");
      char *own = instance_path (name), *sub = str ("etc/modem_simulator/files/%s", name), *pkg = host_path (sub);
      struct stat st;
      if (!(stat (own, &st) == 0 && st.st_size > 0) && !(stat (pkg, &st) == 0 && st.st_size > 0))
        lg ('W', "fakecf.c:1", "%s: no %s nor %s: the guest sees no SIM %d", PROG, own, pkg, i);
      free (name), free (own), free (sub), free (pkg);
    }
  char name[64];
  snprintf (name, sizeof name, "modem_simulator%lld", jint (jget (instance_json (), "modem_simulator_host_id")));
  int mon = listen_unix (name, true);
  if (mon < 0)
    {
      lg ('E', "shared_fd.cpp:675", "Bind failed; name=%s: %s", name, strerror (errno));
      lg ('E', "main.cpp:123", "Unable to create monitor socket for modem simulator");
      exit (2);
    }
  ready ();
  for (char cmd[5] = "";;)
    {
      int c = accept (mon, NULL, NULL);
      if (c >= 0 && read_full (c, cmd, 4) == 4 && !strcmp (cmd, "STOP"))
        {
          lg ('I', "main.cpp:141", "Exit request from parent process");
          write_all (c, "OK", 2);
          exit (0);
        }
      if (c >= 0)
        close (c);
    }
}

/* socket_vsock_proxy (r2 §6): a proxy started and stopped by kernel events
   when -events_fd is given; a thread per connection.  With
   --vhost_user_vsock, vsock is vhost_device_vsock's unix sockets
   (shared_fd.cpp GetVhostUserVsockClientAddr/ServerAddr).  */
static char *
vhost_user_path (const char *cid_flag)
{
  const char *tmp = R >= A16 && getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp";
  return str ("%s/vsock_%lld_%u/vm.vsock", tmp, FI (cid_flag), (unsigned) getuid ());
}

static int
proxy_client (void)
{
  if (!strcmp (F ("client_type"), "tcp"))
    return connect_inet (F ("client_tcp_host"), (unsigned) FI ("client_tcp_port"));
  if (R >= A14Q2 && FB ("vhost_user_vsock"))
    { /* VsockClient: connect to vm.vsock, "connect PORT\n", "OK PORT\n" */
      char *path = vhost_user_path ("client_vsock_id");
      char *msg = str ("connect %lld\n", FI ("client_vsock_port")), *want = str ("OK %lld\n", FI ("client_vsock_port"));
      char got[32] = "";
      int fd = connect_unix (path);
      if (fd >= 0
          && (write (fd, msg, strlen (msg)) < 0 || read_full (fd, got, strlen (want)) < 0 || strcmp (got, want)))
        close (fd), fd = -1;
      free (path), free (msg), free (want);
      return fd;
    }
  struct sockaddr_vm sa = { .svm_family = AF_VSOCK,
                            .svm_cid = (unsigned) FI ("client_vsock_id"),
                            .svm_port = (unsigned) FI ("client_vsock_port") };
  return connect_to (AF_VSOCK, &sa, sizeof sa);
}

/* A connection's thread: ARG holds the two descriptors.  */
static void *
relay (void *arg)
{
  int *fds = arg;
  struct pollfd p[2] = { { fds[0], POLLIN, 0 }, { fds[1], POLLIN, 0 } };
  char buf[8192];
  for (ssize_t r = 1; r > 0;)
    for (int i = 0; r > 0 && poll (p, 2, -1) > 0 && i < 2; i++)
      if (p[i].revents && ((r = read (p[i].fd, buf, sizeof buf)) <= 0 || write (p[!i].fd, buf, (size_t) r) != r))
        r = 0;
  close (fds[0]), close (fds[1]), free (fds);
  return NULL;
}

/* The server: the inherited -server_fd (DupServer), else TCP or vsock.  */
static int
proxy_server (int dup_server)
{
  if (FI ("server_fd") >= 0 && dup_server < 0)
    FATALF ("socket_vsock_proxy.cpp:264", "Failed to proxy: Could not start duplicate server for passed fd");
  if (FI ("server_fd") >= 0)
    return dup_server;
  int fd = -1, port = (int) FI (strcmp (F ("server_type"), "tcp") ? "server_vsock_port" : "server_tcp_port");
  if (strcmp (F ("server_type"), "tcp"))
    {
      bool vu = R >= A14Q2 && FB ("vhost_user_vsock");
      char *path = vu ? str ("%s_%d", vhost_user_path ("server_vsock_id"), port) : NULL;
      if ((fd = path ? listen_unix (path, false) : listen_vsock (VMADDR_CID_ANY, (unsigned) port)) < 0)
        /* then it sleeps forever (server.cpp:74-80) */
        lg ('E', "server.cpp:76", "Could not open vsock socket: %s", strerror (errno)), hold ();
      return fd;
    }
  for (int i = 0; i < 10 && (fd = listen_inet ("0.0.0.0", port)) < 0; i++)
    lg ('I', "server.cpp:55", "Failed to start TCP server on port: %d after attempt #%d", port, i + 1), usleep (100000);
  if (fd < 0)
    FATALF ("socket_vsock_proxy.cpp:264", "Failed to proxy: Could not start TCP server on port: %d", port);
  return fd;
}

static void
run_socket_vsock_proxy (void)
{
  signal (SIGPIPE, SIG_IGN);
  tag_and_message = true; /* DefaultSubprocessLogging(argv, TAG_AND_MESSAGE) */
  default_subprocess_logging ();
  parse_gflags ();
  if (*F ("label"))
    snprintf (tag, sizeof tag, "proxy_%s", F ("label"));
  const char *st = F ("server_type"), *ct = F ("client_type"), *loc = "socket_vsock_proxy.cpp:86";
  int dup_server = FI ("server_fd") >= 0 ? fcntl ((int) FI ("server_fd"), F_DUPFD_CLOEXEC, 3) : -1;
  if (dup_server >= 0)
    close ((int) FI ("server_fd"));
  if (dup_server >= 0 && !fd_is (dup_server, LISTENING))
    lg ('W', "fakecf.c:1", "%s: -server_fd=%lld is not a listening socket", PROG, FI ("server_fd"));
  if (FI ("server_fd") < 0)
    {
      CHECK (!strcmp (st, "tcp") || !strcmp (st, "vsock"), loc,
             "FLAGS_server_type == TRANSPORT_TCP || FLAGS_server_type == TRANSPORT_VSOCK",
             "Must specify -server_type with tcp or vsock values");
      CHECK (strcmp (st, "tcp") || FI ("server_tcp_port"), loc, "FLAGS_server_tcp_port != 0",
             "Must specify -server_tcp_port or -server_fd with -server_type=tcp flag");
      CHECK (strcmp (st, "vsock") || FI ("server_vsock_port"), loc, "FLAGS_server_vsock_port != 0",
             "Must specify -server_vsock_port or -server_fd with -server_type=vsock flag");
      CHECK (strcmp (st, "vsock") || R == A14 || !FB ("vhost_user_vsock") || FI ("server_vsock_id") > VMADDR_CID_HOST,
             loc, "FLAGS_server_vsock_id > VMADDR_CID_HOST",
             "Must specify --server_vsock_id with --vhost_user_vsock=true flag");
    }
  CHECK (!strcmp (ct, "tcp") || !strcmp (ct, "vsock"), "socket_vsock_proxy.cpp:121",
         "FLAGS_client_type == TRANSPORT_TCP || FLAGS_client_type == TRANSPORT_VSOCK",
         "Must specify -client_type with tcp or vsock values");
  CHECK (strcmp (ct, "tcp") || FI ("client_tcp_port"), "socket_vsock_proxy.cpp:125", "FLAGS_client_tcp_port != 0",
         "For -client_type=tcp you must specify -client_tcp_port flag");

  bool with_events = strcmp (F ("events_fd"), "4294967295"), no_start = !strcmp (F ("start_event_id"), "4294967295");
  CHECK (!with_events || !no_start || R > A14, "socket_vsock_proxy.cpp:179", "FLAGS_start_event_id != -1",
         "start_event_id is required if events_fd is provided");
  if (with_events && no_start)
    FATALF ("socket_vsock_proxy.cpp:264", "Failed to proxy: start_event_id is required if events_fd is provided");
  int events = with_events ? fcntl ((int) FI ("events_fd"), F_DUPFD_CLOEXEC, 3) : -1, server = -1;
  if (with_events)
    close ((int) FI ("events_fd"));
  if (with_events && events < 0)
    exit (0); /* ListenEventsAndProxy's loop never runs: Main returns */
  if (with_events && R >= A14Q2 && FB ("restore"))
    { /* waits for logcat_receiver's "2" on the restore pipe; needs the config */
      char *pp = instance_path ("internal/restore-pipe-adbd"), c;
      int fd = open (pp, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || read (fd, &c, 1) <= 0)
        FATALF ("socket_vsock_proxy.cpp:264", "Failed to proxy: %s restore pipe: %s",
                fd < 0 ? "Error opening" : "Could not read", strerror (errno));
      server = proxy_server (dup_server);
    }
  if (!with_events)
    server = proxy_server (dup_server);
  ready ();
  for (bool accepting = server >= 0;;)
    {
      struct pollfd p[2] = { { events, POLLIN, 0 }, { accepting ? server : -1, POLLIN, 0 } };
      if (poll (p, 2, -1) <= 0)
        continue;
      int ev = -1, r = p[0].revents ? read_event (events, &ev) : 1;
      if (r == 0 && R >= A15Q2)
        lg ('D', "socket_vsock_proxy.cpp:202", "Kernel log message channel closed"), exit (0);
      if (r <= 0) /* earlier releases log and spin */
        lg ('E', "socket_vsock_proxy.cpp:193", "Failed to read a complete kernel log event"), events = -1;
      else if (ev >= 0 && ev == (int) FI ("start_event_id") && !accepting)
        {
          lg ('I', "socket_vsock_proxy.cpp:208", "Start event (%d) received. Starting proxy", ev);
          server = server < 0 ? proxy_server (dup_server) : server;
          accepting = true;
        }
      else if (ev >= 0 && ev == (int) FI ("stop_event_id"))
        {
          lg ('I', "socket_vsock_proxy.cpp:216", "Stop event (%lld) received. Stopping proxy", FI ("start_event_id"));
          accepting = false;
        }
      if (!p[1].revents)
        continue;
      int a = accept4 (server, NULL, NULL, SOCK_CLOEXEC), b = a >= 0 ? proxy_client () : -1;
      if (a < 0 && errno != EINTR && errno != ECONNABORTED) /* the real one logs this in a loop */
        lg ('E', "proxy.cpp:1", "Failed to accept a connection: %s", strerror (errno)), accepting = false;
      int *pair = malloc (2 * sizeof *pair);
      pthread_t th;
      pair[0] = a, pair[1] = b;
      if (a < 0 || b < 0 || pthread_create (&th, NULL, relay, pair) != 0)
        close (a), close (b), free (pair);
      else
        pthread_detach (th);
    }
}

/* tcp_connector (r2 §8): the fifos, then a TCP port or (A15Q2+) a unix
   socket; before A15Q2 one attempt (the real one retries on write), from
   A15Q2 every second until it connects.  Bytes are not relayed.  */
static void
run_tcp_connector (void)
{
  default_subprocess_logging ();
  parse_gflags ();
  take_fd ("fifo_in", FI ("fifo_in"));
  take_fd ("fifo_out", FI ("fifo_out"));
  bool path = R >= A15Q2 && FI ("data_port") < 0;
  if (path && !*F ("data_path"))
    FATALF ("main.cpp:116", "Need `--data_port` or `--data_path`");
  for (int fd = -1, tries = 0; fd < 0 && (tries == 0 || R >= A15Q2); tries++)
    if ((fd = path ? connect_unix (F ("data_path")) : connect_inet ("127.0.0.1", (unsigned) FI ("data_port"))) < 0)
      {
        if (tries == 0)
          lg ('E', "main.cpp:48", "Failed to open socket: %s", strerror (errno));
        if (R >= A15Q2)
          sleep (1);
      }
  if (FI ("buffer_size") <= 0)
    die_by (SIGSEGV); /* char buf[FLAGS_buffer_size] in both threads (I) */
  ready_and_hold ();
}

/* gnss_grpc_proxy (r2 §10): gRPC on 0.0.0.0:PORT and unix:SOCKET; a failed
   listen makes BuildAndStart return null and Wait() crash (I).  */
static void
run_gnss_grpc_proxy (void)
{
  default_subprocess_logging ();
  parse_gflags ();
  static const char *const fds[] = { "gnss_in_fd", "gnss_out_fd", "fixed_location_in_fd", "fixed_location_out_fd" };
  for (size_t i = 0; i < N (fds); i++)
    take_fd (fds[i], FI (fds[i]));
  if (!*F ("gnss_file_path") && FI ("gnss_grpc_port") >= 0 && listen_inet ("0.0.0.0", (int) FI ("gnss_grpc_port")) < 0)
    die_by (SIGSEGV);
  if (!*F ("gnss_file_path") && *F ("gnss_grpc_socket") && listen_unix (F ("gnss_grpc_socket"), false) < 0)
    die_by (SIGSEGV);
  ready_and_hold ();
}

/* tombstone_receiver (r2 §11).  Tombstones are not written.  */
static void
run_tombstone_receiver (void)
{
  default_subprocess_logging ();
  parse_flag_parser ();
  take_fd ("server_fd", FI ("server_fd"));
  ready_and_hold ();
}

/* vhal_proxy_server (r2 §12): positional, no config; A15 CHECK(argc >= 3)
   and vsock:2:argv[2]; A15Q2+ CHECK(argc >= 4), argv[3] then argv[2].  */
static void
vhal_listen (const char *addr)
{
  int fd = -1;
  unsigned cid, port;
  char ip[64];
  if (sscanf (addr, "vsock:%u:%u", &cid, &port) == 2 && (fd = listen_vsock (cid, port)) == -2)
    {
      dprintf (STDERR_FILENO, "%s: warning: no vsock on this host: %s is not listened on\n", PROG, addr);
      return;
    }
  if (!strncmp (addr, "unix://", 7))
    fd = listen_unix (addr + 7, false);
  else if (strncmp (addr, "vsock:", 6) && sscanf (addr, "%63[^:]:%u", ip, &port) == 2)
    fd = listen_inet (ip, (int) port);
  CHECK (fd >= 0, "GRPCVehicleProxyServer.cpp:1", "mServer", /* the CHECK's text (I) */
         "Start: failed to create the GRPC server, please make sure the configuration and permissions are correct "
         "(%s: %s)",
         addr, strerror (errno));
}

static void
run_vhal_proxy_server (void)
{
  if (R == A15)
    CHECK (ARGC >= 3, "VhalProxyServer.cpp:37", "argc >= 3",
           "Not enough arguments, require at least 2: config file path and vsock port");
  CHECK (ARGC >= 4 || R == A15, "vhal_proxy_server.cpp:46", "argc >= 4",
         "Not enough arguments, require at least 3: config file path, IP address, vsock address");
  /* FakeVehicleHardware (hardware/interfaces automotive/vehicle/aidl/impl/
     fake_impl): an unreadable directory exits 1; without the JSON files it
     runs with no properties (I).  */
  DIR *d = opendir (ARGV[1]);
  if (!d)
    {
      dprintf (STDERR_FILENO, "%s: failed to open config directory %s: %s\n", prog, ARGV[1], strerror (errno));
      dprintf (STDERR_FILENO, "%s: Failed to load default config, exiting\n", prog);
      exit (1);
    }
  closedir (d);
  char *def = str ("%s/DefaultProperties.json", ARGV[1]), *vs = str ("vsock:2:%d", atoi (ARGV[2]));
  if (access (def, R_OK) != 0)
    dprintf (STDERR_FILENO, "%s: warning: no %s: the guest's VHAL has no properties\n", PROG, def);
  vhal_listen (R == A15 ? vs : ARGV[3]);
  if (R > A15)
    vhal_listen (ARGV[2]);
  ready_and_hold ();
}

/* config_server (r1 §2.8): DeviceConfigHelper::Get needs the instance's
   mobile_bridge_name, else mobile_tap_name, to be an IPv4 interface with a
   broadcast address (host_device_config.cpp:60-146).  */
static bool
iface_ok (const char *name)
{
  struct ifaddrs *list, *ifa;
  bool ok = false;
  if (!*name || getifaddrs (&list) < 0)
    return false;
  for (ifa = list; ifa; ifa = ifa->ifa_next)
    if (ifa->ifa_addr && !strcmp (ifa->ifa_name, name) && ifa->ifa_addr->sa_family == AF_INET)
      {
        if (!ifa->ifa_broadaddr)
          die_by (SIGSEGV); /* dereferenced (I) */
        ok = ((struct sockaddr_in *) ifa->ifa_addr)->sin_addr.s_addr
             != ((struct sockaddr_in *) ifa->ifa_broadaddr)->sin_addr.s_addr;
        if (!ok)
          lg ('E', "host_device_config.cpp:83", "Gateway and Broadcast addresses are the same on %s, which is invalid.",
              name);
        break;
      }
  freeifaddrs (list);
  return ok;
}

static void
run_config_server (void)
{
  default_subprocess_logging ();
  parse_gflags ();
  const json_t *inst = instance_json ();
  char *bridge = jstr (jget (inst, "mobile_bridge_name")), *tap = jstr (jget (inst, "mobile_tap_name"));
  bool ok = iface_ok (bridge) || iface_ok (tap);
  if (!ok)
    lg ('E', "host_device_config.cpp:143", "Unable to obtain the network configuration");
  CHECK (ok, "main.cpp:35", "device_config_helper", "Could not open device config");
  take_fd ("server_fd", FI ("server_fd"));
  ready_and_hold (); /* the real one sends each connection a DeviceConfig */
}

/* root-canal (r2 §9): no config; ports past 65535 end it (return -1); a
   port in use is only logged (I).  */
static void
run_root_canal (void)
{
  parse_gflags ();
  static const char *const ports[] = { "test_port", "hci_port", "link_port", "link_ble_port" };
  for (size_t i = 0; i < N (ports); i++)
    if (FI (ports[i]) > 65535)
      dprintf (STDERR_FILENO, "%s out of range: %lld\n", ports[i], FI (ports[i])), exit (255);
  for (size_t i = 0; i < N (ports); i++)
    if (listen_inet ("0.0.0.0", (int) FI (ports[i])) < 0)
      dprintf (STDERR_FILENO, "Error binding test channel listener socket to port: %lld, %s\n", FI (ports[i]),
               strerror (errno));
  ready_and_hold ();
}

static void
run_adb_connector (void)
{
  default_subprocess_logging ();
  parse_gflags ();
  CHECK (*F ("addresses"), "main.cpp:63", "!FLAGS_addresses.empty()", "Must specify --addresses flag");
  ready_and_hold (); /* the real one keeps 'adb connect'ing through localhost:5037 */
}

static void
run_sensors_simulator (void)
{
  default_subprocess_logging ();
  parse_gflags ();
  int fd = take_fd ("webrtc_fd", FI ("webrtc_fd"));
  ready ();
  for (char buf[4096]; read (fd, buf, sizeof buf) != 0;)
    ;
  lg ('E', "channel_sharedfd.cpp:40", "Couldn't receive message."); /* the real one: in a tight loop */
  hold ();
}

/* vhost_device_vsock (I): clap; each --vm guest-cid=N,socket=PATH,uds-path=
   PATH listens on its vhost-user socket and on the host-side uds-path (which
   run_cvd waits for).  */
static void
run_vhost_device_vsock (void)
{
  int nvm = 0;
  for (int i = 1; i < ARGC; i++)
    {
      const char *a = ARGV[i], *v = !strncmp (a, "--vm=", 5)              ? a + 5
                                    : !strcmp (a, "--vm") && i + 1 < ARGC ? ARGV[++i]
                                                                          : NULL;
      if (!strcmp (a, "-V") || !strcmp (a, "--version"))
        printf ("vhost-device-vsock 0.1.0\n"), exit (0);
      if (!strcmp (a, "-h") || !strcmp (a, "--help"))
        printf ("Usage: vhost-device-vsock [OPTIONS]\n"), exit (0);
      if (!v)
        dprintf (STDERR_FILENO,
                 "error: unexpected argument '%s' found\n\nUsage: vhost-device-vsock [OPTIONS]\n\n"
                 "For more information, try '--help'.\n",
                 a),
            exit (2);
      char *copy = strdup (v), *save = NULL, *sock = NULL, *uds = NULL;
      bool bad = false;
      for (char *kv = strtok_r (copy, ",", &save); kv; kv = strtok_r (NULL, ",", &save))
        if (!strncmp (kv, "socket=", 7) || !strncmp (kv, "uds-path=", 9))
          *(kv[0] == 's' ? &sock : &uds) = strchr (kv, '=') + 1;
        else
          bad |= strncmp (kv, "guest-cid=", 10) && strncmp (kv, "tx-buffer-size=", 15) && strncmp (kv, "groups=", 7);
      if (bad || !sock || !uds)
        dprintf (STDERR_FILENO, "error: invalid value '%s' for '--vm <VM>'\n\nFor more information, try '--help'.\n",
                 v),
            exit (2);
      if (listen_unix (sock, false) < 0 || listen_unix (uds, false) < 0)
        dprintf (STDERR_FILENO, "Error: %s\n", strerror (errno)), exit (1);
      nvm++;
    }
  if (!nvm)
    dprintf (STDERR_FILENO, "error: the following required arguments were not provided:\n  --socket <SOCKET>\n"),
        exit (2);
  ready_and_hold ();
}

/* ---- main ------------------------------------------------------------------ */

/* AVM_FAKECF_LOG: one JSON line per start.  */
static void
log_start (void)
{
  const char *path = getenv ("AVM_FAKECF_LOG");
  if (!path || !*path)
    return;
  json_t *argv = json_array (), *fds = json_object (), *env = json_object ();
  for (int i = 0; i < ARGC; i++)
    json_array_append_new (argv, json_string (ARGV[i]));
  DIR *d = opendir ("/proc/self/fd");
  for (struct dirent *e; d && (e = readdir (d));)
    {
      int fd = atoi (e->d_name);
      struct stat st;
      if (fd < 3 || fd == dirfd (d) || fstat (fd, &st) < 0)
        continue;
      const char *k = S_ISFIFO (st.st_mode)                            ? "fifo"
                      : S_ISSOCK (st.st_mode) && fd_is (fd, LISTENING) ? "listening-socket"
                      : S_ISSOCK (st.st_mode)                          ? "socket"
                      : S_ISREG (st.st_mode)                           ? "file"
                                                                       : "other";
      const char *m = !fd_is (fd, WRITABLE) ? "r" : !fd_is (fd, READABLE) ? "w" : "rw";
      json_object_set_new (fds, e->d_name, json_string (str ("%s %s", k, m)));
    }
  if (d)
    closedir (d);
  static const char *const vars[]
      = { "CUTTLEFISH_CONFIG_FILE", "CUTTLEFISH_INSTANCE", "ANDROID_HOST_OUT", "HOME", "USER" };
  for (size_t i = 0; i < N (vars); i++)
    if (getenv (vars[i]))
      json_object_set_new (env, vars[i], json_string (getenv (vars[i])));
  char cwd[PATH_MAX];
  json_t *o
      = json_pack ("{s:s, s:s, s:i, s:o, s:s, s:o, s:o}", "tool", tools[T].name, "release", rel_names[R], "pid",
                   (int) getpid (), "argv", argv, "cwd", getcwd (cwd, sizeof cwd) ? cwd : "", "fds", fds, "env", env);
  char *line = json_dumps (o, JSON_COMPACT), *nl = str ("%s\n", line ? line : "{}");
  int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd >= 0)
    write_all (fd, nl, strlen (nl)), close (fd); /* one write: concurrent lines do not interleave */
  free (line), free (nl);
  json_decref (o);
}

static void
on_term (int sig)
{
  (void) sig;
  _exit (0);
}

int
main (int argc, char **argv)
{
  static void (*const run[NTOOLS]) (void) = {
    [SECURE_ENV] = run_secure_env,   [KLM] = run_kernel_log_monitor,
    [LOGCAT] = run_logcat_receiver,  [MODEM] = run_modem_simulator,
    [SVP] = run_socket_vsock_proxy,  [ADB] = run_adb_connector,
    [TCP] = run_tcp_connector,       [ROOTCANAL] = run_root_canal,
    [GNSS] = run_gnss_grpc_proxy,    [TOMBSTONE] = run_tombstone_receiver,
    [VHAL] = run_vhal_proxy_server,  [SENSORS] = run_sensors_simulator,
    [CONFIGSRV] = run_config_server, [VSOCKDEV] = run_vhost_device_vsock,
  };
  ARGC = argc, ARGV = argv;
  const char *slash = strrchr (argv[0], '/');
  prog = slash ? slash + 1 : argv[0];
  snprintf (tag, sizeof tag, "%s", prog);
  for (T = 0; T < NTOOLS && strcmp (tools[T].name, prog); T++)
    ;
  if (T == NTOOLS)
    usage_error ("run me as one of the Cuttlefish host tools (bin/secure_env, ...), not as %s", prog);
  /* The release: .fakecf-release in argv[0]'s directory (the executable's
     when argv[0] has no slash).  */
  char dir[PATH_MAX] = "", buf[64] = "";
  ssize_t n = slash ? snprintf (dir, sizeof dir, "%.*s", (int) (slash - argv[0]), argv[0])
                    : readlink ("/proc/self/exe", dir, sizeof dir - 1);
  if (!slash && n > 0)
    dir[n] = '\0', *strrchr (dir, '/') = '\0';
  char *path = str ("%s/.fakecf-release", dir);
  FILE *f = fopen (path, "r");
  if (!f || !fgets (buf, sizeof buf, f))
    usage_error ("%s: %s", path, f ? "empty" : strerror (errno));
  fclose (f);
  buf[strcspn (buf, "\r\n")] = '\0';
  for (R = 0; R < NREL && strcmp (rel_names[R], buf); R++)
    ;
  if (R == NREL)
    usage_error ("%s: unknown release '%s'", path, buf);
  if (!(tools[T].shipped & B (R)))
    usage_error ("%s is not in the %s host package", prog, buf);
  for (size_t i = 0; i < N (flags); i++)
    {
      active[i] = (flags[i].tool == (int) T || (flags[i].tool == NTOOLS && tools[T].gflags)) && (flags[i].rels & B (R));
      cur[i] = (char *) flags[i].def;
    }
  signal (SIGTERM, on_term);
  log_start ();
  run[T]();
  return 0;
}
