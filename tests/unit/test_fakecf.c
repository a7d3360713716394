/* SPDX-License-Identifier: Apache-2.0 */
/* The Cuttlefish host tools' double, avm-fakecf (tests/helpers/fakecf.c),
   and the image sets of cfimage.c: the double must fail where the real
   tools fail (gflags errors, missing descriptors, a missing config) and
   work where they work (events, the proxy, the modem's stop protocol).  */
#include "cfimage.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define assert_has(hay, needle) cr_assert (strstr ((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))
#define assert_lacks(hay, needle) cr_assert (!strstr ((hay), (needle)), "unexpected \"%s\" in:\n%s", (needle), (hay))

/* A fixture: the image set of one release, a config with root_dir and
   instance 1, and the environment run_cvd gives the tools.  */
struct fx
{
  char *dir, *images, *root, *idir, *config, *log;
  int host_id;
  char *env[8];
};

/* What a test leaves is killed, removed and freed by the suite's fini,
   also after a failed assertion: processes, directories, and the memory
   given to keep().  */
static char *dirs[8];
static pid_t pids[16];
static void **kept;
static size_t nkept;

static void
cleanup (void)
{
  for (size_t i = 0; i < sizeof pids / sizeof *pids; i++)
    if (pids[i] > 0 && kill (pids[i], SIGKILL) == 0)
      waitpid (pids[i], NULL, 0);
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
    tu_rmtree (dirs[i]), free (dirs[i]);
  for (size_t i = 0; i < nkept; i++)
    free (kept[i]);
  free (kept);
}

static void *
keep (void *p)
{
  kept = realloc (kept, (nkept + 1) * sizeof *kept);
  cr_assert_not_null (kept);
  return kept[nkept++] = p;
}

/* The file's content (kept), or NULL.  */
static char *
rd (const char *path)
{
  return keep (tu_read (path));
}

static void
fx_init (struct fx *f, const char *release)
{
  f->dir = tu_tmpdir ();
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
    if (!dirs[i])
      {
        dirs[i] = f->dir;
        break;
      }
  f->images = keep (tu_cf_imageset (tu_fmt ("%s/images", f->dir), release, "x86_64"));
  f->root = tu_fmt ("%s/run", f->dir);
  f->idir = tu_fmt ("%s/instances/cvd-1", f->root);
  char *logs = tu_fmt ("%s/logs", f->idir), *internal = tu_fmt ("%s/internal", f->idir);
  cr_assert (mkdir (f->root, 0755) == 0 && mkdir (tu_fmt ("%s/instances", f->root), 0755) == 0
             && mkdir (f->idir, 0755) == 0 && mkdir (logs, 0755) == 0 && mkdir (internal, 0755) == 0);
  f->host_id = 5000 + getpid () % 4000; /* the modem's abstract socket: one per test worker */
  f->config = tu_fmt ("%s/cuttlefish_config.json", f->dir);
  char *json = tu_fmt ("{\"root_dir\": \"%s\", \"instances\": {\"1\": {\"run_as_daemon\": false, "
                       "\"modem_simulator_host_id\": %d}}}\n",
                       f->root, f->host_id);
  free (tu_write (f->dir, "cuttlefish_config.json", json));
  f->log = tu_fmt ("%s/fakecf.log", f->dir);
  char *env[] = { tu_fmt ("CUTTLEFISH_CONFIG_FILE=%s", f->config),
                  "CUTTLEFISH_INSTANCE=1",
                  tu_fmt ("ANDROID_HOST_OUT=%s", f->images),
                  tu_fmt ("HOME=%s", f->dir),
                  tu_fmt ("AVM_FAKECF_LOG=%s", f->log),
                  NULL };
  memcpy (f->env, env, sizeof env);
}

static char *
tool (struct fx *f, const char *name)
{
  return tu_fmt ("%s/bin/%s", f->images, name);
}

/* A tool run with stdout and stderr captured.  */
struct proc
{
  pid_t pid;
  int out, err;
  char *errs;
  size_t errlen;
  int status;
};

/* Start ARGV in CWD (NULL: here) with F's environment, EXTRA ("K=V" set,
   "K" unset) on top; the descriptors the test leaves without FD_CLOEXEC are
   inherited.  */
static void
spawn (struct fx *f, struct proc *p, const char *cwd, char *const extra[], char *const argv[])
{
  size_t n = 0;
  while (environ[n])
    n++;
  char **envp = calloc (n + 16, sizeof *envp);
  size_t k = 0;
  char *const *lists[] = { f->env, extra };
  for (size_t i = 0; i < n; i++)
    {
      bool drop = false;
      size_t klen = strcspn (environ[i], "=");
      for (size_t l = 0; l < 2; l++)
        for (size_t j = 0; lists[l] && lists[l][j]; j++)
          drop |= !strncmp (lists[l][j], environ[i], klen) && strchr ("=", lists[l][j][klen]);
      if (!drop)
        envp[k++] = environ[i];
    }
  for (size_t j = 0; f->env[j]; j++)
    {
      bool over = false;
      size_t klen = strcspn (f->env[j], "=");
      for (size_t x = 0; extra && extra[x]; x++)
        over |= !strncmp (extra[x], f->env[j], klen) && strchr ("=", extra[x][klen]);
      if (!over)
        envp[k++] = f->env[j];
    }
  for (size_t j = 0; extra && extra[j]; j++)
    if (strchr (extra[j], '='))
      envp[k++] = extra[j];
  int po[2], pe[2];
  cr_assert (pipe2 (po, O_CLOEXEC) == 0 && pipe2 (pe, O_CLOEXEC) == 0);
  p->pid = fork ();
  cr_assert (p->pid >= 0);
  if (p->pid == 0)
    {
      int null = open ("/dev/null", O_RDONLY);
      if (null < 0 || dup2 (null, 0) < 0 || dup2 (po[1], 1) < 0 || dup2 (pe[1], 2) < 0 || (cwd && chdir (cwd) < 0))
        _exit (126);
      execve (argv[0], argv, envp);
      _exit (127);
    }
  close (po[1]);
  close (pe[1]);
  free (envp);
  for (size_t i = 0; i < sizeof pids / sizeof *pids; i++)
    if (pids[i] <= 0)
      {
        pids[i] = p->pid;
        break;
      }
  p->out = po[0], p->err = pe[0];
  p->errs = calloc (1, 1), p->errlen = 0, p->status = -1;
}

/* Read stderr until it holds NEEDLE (true) or ends or SECONDS pass.  */
static bool
wait_stderr (struct proc *p, const char *needle, double seconds)
{
  struct timespec t0, t;
  clock_gettime (CLOCK_MONOTONIC, &t0);
  while (!strstr (p->errs, needle))
    {
      clock_gettime (CLOCK_MONOTONIC, &t);
      double left = seconds * AVM_TEST_TIME_SCALE - (double) (t.tv_sec - t0.tv_sec) - (t.tv_nsec - t0.tv_nsec) / 1e9;
      struct pollfd pf = { p->err, POLLIN, 0 };
      if (left <= 0 || poll (&pf, 1, (int) (left * 1000) + 1) <= 0)
        return false;
      char buf[4096];
      ssize_t r = read (p->err, buf, sizeof buf);
      if (r <= 0)
        return false;
      p->errs = realloc (p->errs, p->errlen + (size_t) r + 1);
      memcpy (p->errs + p->errlen, buf, (size_t) r);
      p->errs[p->errlen += (size_t) r] = '\0';
    }
  return true;
}

/* Collect the rest of the output and the status (128+N for signal N).  */
static int
finish (struct proc *p, char **out)
{
  wait_stderr (p, "\x01never", 30);
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream (&buf, &len);
  char chunk[4096];
  ssize_t r;
  while ((r = read (p->out, chunk, sizeof chunk)) > 0)
    fwrite (chunk, 1, (size_t) r, m);
  fclose (m);
  close (p->out), close (p->err);
  int st;
  while (waitpid (p->pid, &st, 0) < 0)
    cr_assert_eq (errno, EINTR);
  for (size_t i = 0; i < sizeof pids / sizeof *pids; i++)
    if (pids[i] == p->pid)
      pids[i] = 0;
  if (out)
    *out = keep (buf);
  else
    free (buf);
  keep (p->errs);
  return p->status = WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
}

static int
run (struct fx *f, const char *cwd, char *const extra[], char **out, char **err, char *const argv[])
{
  struct proc p;
  spawn (f, &p, cwd, extra, argv);
  int st = finish (&p, out);
  *err = p.errs;
  return st;
}
#define RUN(f, out, err, ...) run ((f), (f)->idir, NULL, (out), (err), (char *[]) { __VA_ARGS__, NULL })

/* Wait for the readiness line, then stop it: it must end with status 0.  */
static void
ready_then_term (struct proc *p)
{
  cr_assert (wait_stderr (p, "avm-fakecf: ", 10) && strstr (p->errs, ") ready"), "not ready:\n%s", p->errs);
  kill (p->pid, SIGTERM);
  cr_assert_eq (finish (p, NULL), 0, "%s", p->errs);
}

static int
listen_unix (const char *path)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", path);
  int fd = socket (AF_UNIX, SOCK_STREAM, 0);
  cr_assert (fd >= 0 && bind (fd, (struct sockaddr *) &sa, sizeof sa) == 0 && listen (fd, 4) == 0, "%s", path);
  return fd;
}

/* A listening TCP socket on 127.0.0.1 and its port.  */
static int
listen_tcp (int *port)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof sa;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert (fd >= 0 && bind (fd, (struct sockaddr *) &sa, sizeof sa) == 0 && listen (fd, 4) == 0);
  cr_assert_eq (getsockname (fd, (struct sockaddr *) &sa, &len), 0);
  *port = ntohs (sa.sin_port);
  return fd;
}

static void
cloexec (int fd)
{
  cr_assert_eq (fcntl (fd, F_SETFD, FD_CLOEXEC), 0);
}

/* An event as kernel_log_monitor writes it (native size_t, then JSON).  */
static void
write_event (int fd, int event)
{
  char json[64];
  size_t len = (size_t) snprintf (json, sizeof json, "{\n\t\"event\" : %d,\n\t\"metadata\" : null\n}", event);
  cr_assert_eq (write (fd, &len, sizeof len), (ssize_t) sizeof len);
  cr_assert_eq (write (fd, json, len), (ssize_t) len);
}

TestSuite (fakecf, .timeout = TU_TIMEOUT (60), .fini = cleanup);

/* ------------------------------------------------------------------ */
/* gflags */

Test (fakecf, gflags_unknown_flags)
{
  struct fx f;
  fx_init (&f, "android15");
  char *out, *err, *klm = tool (&f, "kernel_log_monitor");
  /* Every unknown flag, sorted by name, whatever the dashes; exit 1.  */
  cr_assert_eq (RUN (&f, &out, &err, klm, "--zzz=1", "-bogus", "--aaa", "positional"), 1);
  cr_assert_str_eq (err, "ERROR: unknown command line flag 'aaa'\n"
                         "ERROR: unknown command line flag 'bogus'\n"
                         "ERROR: unknown command line flag 'zzz'\n");
  cr_assert_str_eq (out, "");
  /* --undefok clears them (its list in any position); parsing goes on and
     the empty -subscriber_fds kills it as std::stoi("") does.  */
  cr_assert_eq (RUN (&f, &out, &err, klm, "--zzz=1", "-bogus", "--undefok=bogus,zzz", "-log_pipe_fd", "0"),
                128 + SIGABRT);
  assert_has (err, "libc++abi: terminating due to uncaught exception of type std::invalid_argument: stoi");
  assert_lacks (err, "ERROR:");
  /* -nofoo for a flag that is not a bool; a bad uint32; a missing value.  */
  char *svp = tool (&f, "socket_vsock_proxy");
  cr_assert_eq (RUN (&f, &out, &err, svp, "-nolabel", "--stop_event_id=-1", "--events_fd", "x", "-label"), 1);
  cr_assert_str_eq (err, "ERROR: illegal value 'x' specified for uint32 flag 'events_fd'\n"
                         "ERROR: flag '-label' is missing its argument; flag description: label for log lines\n"
                         "ERROR: boolean value (nolabel) specified for string command line flag\n"
                         "ERROR: illegal value '-1' specified for uint32 flag 'stop_event_id'\n");
  /* Bools: -f, -nof, -f=yes|0; dashes for underscores; --version exits 0.  */
  cr_assert_eq (RUN (&f, &out, &err, svp, "--vhost-user-vsock", "-novhost_user_vsock", "-restore=0", "--version"), 0);
  cr_assert_str_eq (out, "socket_vsock_proxy\n");
  cr_assert_eq (RUN (&f, &out, &err, svp, "-restore=maybe"), 1);
  cr_assert_str_eq (err, "ERROR: illegal value 'maybe' specified for bool flag 'restore'\n");
}

Test (fakecf, gflags_helpxml_per_release)
{
  struct fx f14, f14q2;
  fx_init (&f14, "android14");
  fx_init (&f14q2, "android14-qpr2");
  char *out, *err;
  /* --helpxml wins over the unknown flag, prints the current values, and
     lists gflags' own flags after the tool's (sorted by file).  */
  cr_assert_eq (RUN (&f14q2, &out, &err, tool (&f14q2, "secure_env"), "--bogus", "-oemlock_impl=software", "--helpxml"),
                1);
  cr_assert_str_eq (err, "");
  const char *head = "<?xml version=\"1.0\"?>\n<AllFlags>\n<program>secure_env</program>\n"
                     "<usage>Warning: SetUsageMessage() never called</usage>\n<flag><file>device/google/cuttlefish/"
                     "host/commands/secure_env/secure_env_not_windows_main.cpp</file><name>confui_server_fd</name>";
  cr_assert_eq (strncmp (out, head, strlen (head)), 0, "%s", out);
  assert_has (out, "<name>snapshot_control_fd</name><meaning>socket to run_cvd for snapshots</meaning>"
                   "<default>-1</default><current>-1</current><type>int32</type></flag>\n");
  assert_has (out, "<name>oemlock_impl</name><meaning>oemlock: \"tpm\" or \"software\"</meaning><default>tpm</default>"
                   "<current>software</current>");
  assert_has (out, "<flag><file>external/gflags/src/gflags.cc</file><name>undefok</name>");
  assert_has (out, "<name>helpxml</name><meaning>help as XML</meaning><default>false</default><current>true</current>");
  cr_assert (strstr (out, "secure_env_not_windows_main.cpp</file><name>tpm_impl")
             < strstr (out, "gflags.cc</file><name>flagfile"));
  cr_assert_eq (strcmp (out + strlen (out) - 12, "</AllFlags>\n"), 0);

  /* android14-release's secure_env has no snapshot, oemlock or keymint
     flags: passing one is an unknown flag.  */
  char *se14 = tool (&f14, "secure_env");
  cr_assert_eq (RUN (&f14, &out, &err, se14, "--helpxml"), 1);
  assert_has (out, "<file>device/google/cuttlefish/host/commands/secure_env/secure_env_linux_main.cpp</file>"
                   "<name>confui_server_fd</name>");
  assert_lacks (out, "snapshot_control_fd");
  assert_lacks (out, "oemlock");
  assert_lacks (out, "keymint_fd");
  cr_assert_eq (RUN (&f14, &out, &err, se14, "-snapshot_control_fd=3", "-oemlock_fd_in=4"), 1);
  cr_assert_str_eq (err, "ERROR: unknown command line flag 'oemlock_fd_in'\n"
                         "ERROR: unknown command line flag 'snapshot_control_fd'\n");
  /* tcp_connector: -data_path from android15-qpr2 only.  */
  cr_assert_eq (RUN (&f14q2, &out, &err, tool (&f14q2, "tcp_connector"), "-data_path=/x"), 1);
  cr_assert_str_eq (err, "ERROR: unknown command line flag 'data_path'\n");
}

/* flag_parser and argv tools: tombstone_receiver aborts on anything it does
   not know, --helpxml included; vhal_proxy_server's argc CHECK moved.  */
Test (fakecf, flag_parser_and_positional_tools)
{
  struct fx f15, f16;
  fx_init (&f15, "android15");
  fx_init (&f16, "android15-qpr2");
  char *out, *err;
  cr_assert_eq (RUN (&f15, &out, &err, tool (&f15, "tombstone_receiver"), "--helpxml"), 128 + SIGABRT);
  assert_has (err, "] Check failed: parse_res.ok() Could not process command line flags. Unexpected argument "
                   "\"--helpxml\"");
  cr_assert_str_eq (out, "");
  cr_assert_eq (RUN (&f15, &out, &err, tool (&f15, "tombstone_receiver"), "-tombstone_dir", f15.dir), 128 + SIGABRT);
  assert_has (err, "Check failed: server_fd->IsOpen() Did not receive a server fd");

  char *v15 = tool (&f15, "vhal_proxy_server"), *v16 = tool (&f16, "vhal_proxy_server");
  char *cfg = tu_fmt ("%s/etc/automotive/vhalconfig", f16.images);
  cr_assert_eq (RUN (&f15, &out, &err, v15, cfg), 128 + SIGABRT);
  assert_has (err, "Check failed: argc >= 3 Not enough arguments, require at least 2");
  cr_assert_eq (RUN (&f16, &out, &err, v16, cfg, "127.0.0.1:0"), 128 + SIGABRT);
  assert_has (err, "Check failed: argc >= 4 Not enough arguments, require at least 3");
  /* android15's host package has no vhalconfig: FakeVehicleHardware exits.  */
  cr_assert_eq (RUN (&f15, &out, &err, v15, tu_fmt ("%s/etc/automotive/vhalconfig", f15.images), "9300"), 1);
  assert_has (err, "Failed to load default config, exiting");
  /* android15-qpr2 with its config: listens on unix:// and ip:port.  */
  char *sock = tu_fmt ("%s/vhal.sock", f16.dir), *unix_addr = tu_fmt ("unix://%s", sock);
  struct proc p;
  spawn (&f16, &p, NULL, NULL, (char *[]) { v16, cfg, "127.0.0.1:0", unix_addr, NULL });
  cr_assert (wait_stderr (&p, ") ready", 10), "%s", p.errs);
  struct stat st;
  cr_assert (stat (sock, &st) == 0 && S_ISSOCK (st.st_mode));
  ready_then_term (&p);
  /* A bind failure is the gRPC server's CHECK.  */
  int port, busy = listen_tcp (&port);
  cr_assert_eq (RUN (&f16, &out, &err, v16, cfg, tu_fmt ("127.0.0.1:%d", port), unix_addr), 128 + SIGABRT);
  assert_has (err, "Check failed: mServer");
  close (busy);
}

/* ------------------------------------------------------------------ */
/* Config and descriptors */

Test (fakecf, config_is_required)
{
  struct fx f;
  fx_init (&f, "android16");
  char *out, *err, *missing[] = { tu_fmt ("CUTTLEFISH_CONFIG_FILE=%s/nope.json", f.dir), NULL };
  cr_assert_eq (run (&f, f.idir, missing, &out, &err, (char *[]) { tool (&f, "logcat_receiver"), NULL }),
                128 + SIGABRT);
  assert_has (err, " F ");
  assert_has (err, "logging.cpp:31] Check failed: config Could not open cuttlefish config");
  /* Even --helpxml: the config comes first.  */
  cr_assert_eq (run (&f, f.idir, missing, &out, &err, (char *[]) { tool (&f, "secure_env"), "--helpxml", NULL }),
                128 + SIGABRT);
  assert_has (err, "Could not open cuttlefish config");
  /* modem_simulator does not check: a null dereference.  */
  cr_assert_eq (run (&f, f.idir, missing, &out, &err, (char *[]) { tool (&f, "modem_simulator"), NULL }),
                128 + SIGSEGV);
  /* Without CUTTLEFISH_CONFIG_FILE: $HOME/.cuttlefish_config.json.  */
  char *unset[] = { "CUTTLEFISH_CONFIG_FILE", NULL };
  cr_assert_eq (run (&f, f.idir, unset, &out, &err, (char *[]) { tool (&f, "adb_connector"), NULL }), 128 + SIGABRT);
  assert_has (err, "Could not open cuttlefish config");
  cr_assert_eq (rename (f.config, tu_fmt ("%s/.cuttlefish_config.json", f.dir)), 0);
  cr_assert_eq (run (&f, f.idir, unset, &out, &err, (char *[]) { tool (&f, "adb_connector"), NULL }), 128 + SIGABRT);
  assert_has (err, "Check failed: !FLAGS_addresses.empty() Must specify --addresses flag");
  cr_assert_eq (rename (tu_fmt ("%s/.cuttlefish_config.json", f.dir), f.config), 0);
  /* The logs directory must exist; run_as_daemon must be a bool.  */
  char *other[] = { "CUTTLEFISH_INSTANCE=2", NULL };
  cr_assert_eq (run (&f, f.idir, other, &out, &err, (char *[]) { tool (&f, "adb_connector"), NULL }), 128 + SIGABRT);
  assert_has (err, tu_fmt ("Failed to create log file '%s/instances/cvd-2/logs/launcher.log'", f.root));
  free (tu_write (f.dir, "cuttlefish_config.json",
                  tu_fmt ("{\"root_dir\": \"%s\", \"instances\": {\"1\": {\"run_as_daemon\": \"no\"}}}", f.root)));
  cr_assert_eq (RUN (&f, &out, &err, tool (&f, "adb_connector")), 128 + SIGABRT);
  assert_has (err, "Json::LogicError: Value is not convertible to bool.");
}

/* secure_env: each release's mandatory descriptors, then a good start that
   stays up, re-executes itself on BootloaderLoaded, and ends on SIGTERM (0)
   or aborts on the kernel events' end of file.  */
struct se
{
  char *argv[16];
  int events_w;
  int snap; /* run_cvd's end of -snapshot_control_fd */
};

static void
secure_env_args (struct fx *f, struct se *s, const char *release)
{
  int snap[2], km_in[2], km_out[2], gk_in[2], gk_out[2], ol_in[2], ol_out[2], ev[2];
  cr_assert (socketpair (AF_UNIX, SOCK_STREAM, 0, snap) == 0 && pipe (km_in) == 0 && pipe (km_out) == 0
             && pipe (gk_in) == 0 && pipe (gk_out) == 0 && pipe (ol_in) == 0 && pipe (ol_out) == 0 && pipe (ev) == 0);
  int confui = listen_unix (tu_fmt ("%s/internal/confui_sign.sock", f->idir));
  int mine[] = { snap[0], km_in[1], km_out[0], gk_in[1], gk_out[0], ol_in[1], ol_out[0], ev[1] };
  for (size_t i = 0; i < sizeof mine / sizeof *mine; i++)
    cloexec (mine[i]);
  s->events_w = ev[1];
  s->snap = snap[0];
  size_t n = 0;
  s->argv[n++] = tool (f, "secure_env");
  s->argv[n++] = tu_fmt ("-confui_server_fd=%d", confui);
  if (strcmp (release, "android14"))
    s->argv[n++] = tu_fmt ("-snapshot_control_fd=%d", snap[1]);
  s->argv[n++] = tu_fmt ("-keymaster_fd_out=%d", km_out[1]);
  s->argv[n++] = tu_fmt ("-keymaster_fd_in=%d", km_in[0]);
  s->argv[n++] = tu_fmt ("-gatekeeper_fd_out=%d", gk_out[1]);
  s->argv[n++] = tu_fmt ("-gatekeeper_fd_in=%d", gk_in[0]);
  if (strcmp (release, "android14"))
    {
      s->argv[n++] = tu_fmt ("-oemlock_fd_out=%d", ol_out[1]);
      s->argv[n++] = tu_fmt ("-oemlock_fd_in=%d", ol_in[0]);
      s->argv[n++] = "-keymint_impl=software";
    }
  s->argv[n++] = tu_fmt ("-kernel_events_fd=%d", ev[0]);
  s->argv[n] = NULL;
}

Test (fakecf, secure_env_descriptors)
{
  struct fx f;
  fx_init (&f, "android15");
  char *out, *err;
  /* The first DupFdFlag of android15 is the snapshot socket.  */
  cr_assert_eq (RUN (&f, &out, &err, tool (&f, "secure_env")), 128 + SIGABRT);
  assert_has (err, "secure_env_not_windows_main.cpp:99] Check failed: fd != -1 \n");
  struct se s;
  secure_env_args (&f, &s, "android15");
  /* A descriptor number that is not open.  */
  s.argv[2] = "-snapshot_control_fd=999";
  cr_assert_eq (run (&f, f.idir, NULL, &out, &err, s.argv), 128 + SIGABRT);
  assert_has (err, "Check failed: duped->IsOpen() Could not dup output fd: Bad file descriptor");
  /* The write end of the events pipe: a warning, then its read fails.  */
  int bad[2];
  cr_assert_eq (pipe (bad), 0);
  cloexec (bad[0]);
  for (char **a = s.argv; *a; a++)
    if (!strncmp (*a, "-kernel_events_fd=", 18))
      *a = tu_fmt ("-kernel_events_fd=%d", bad[1]);
  s.argv[2] = tu_fmt ("-snapshot_control_fd=%d", atoi (strchr (s.argv[1], '=') + 1)); /* any socket will do */
  cr_assert_eq (run (&f, f.idir, NULL, &out, &err, s.argv), 128 + SIGABRT);
  assert_has (err, tu_fmt ("avm-fakecf: -kernel_events_fd=%d is not readable", bad[1]));
  assert_has (err, "Check failed: read_result.has_value() Bad file descriptor");
  /* oemlock writes its state into the CWD: not writable, LOG(FATAL).  */
  cr_assert_eq (chmod (f.idir, 0555), 0);
  if (access (f.idir, W_OK) != 0)
    {
      cr_assert_eq (run (&f, f.idir, NULL, &out, &err, s.argv), 128 + SIGABRT);
      assert_has (err, "Failed to initialize default state for OemLock TEE storage");
    }
  cr_assert_eq (chmod (f.idir, 0755), 0);
}

Test (fakecf, secure_env_runs)
{
  static const char *const rels[] = { "android14", "android14-qpr2", "android15-qpr2" };
  for (size_t r = 0; r < 3; r++)
    {
      struct fx f;
      fx_init (&f, rels[r]);
      struct se s;
      secure_env_args (&f, &s, rels[r]);
      struct proc p;
      spawn (&f, &p, f.idir, NULL, s.argv);
      cr_assert (wait_stderr (&p, ") ready", 10), "%s: %s", rels[r], p.errs);
      cr_assert_eq (access (tu_fmt ("%s/oemlock_secure", f.idir), F_OK), r ? 0 : -1, "%s", rels[r]);
      if (r == 1)
        { /* BootloaderLoaded: the same process runs $ANDROID_HOST_OUT/bin/secure_env again */
          write_event (s.events_w, 5);
          write_event (s.events_w, 9);
          p.errs[0] = '\0', p.errlen = 0;
          cr_assert (wait_stderr (&p, ") ready", 10), "%s", p.errs);
          char *log = rd (f.log);
          cr_assert_not_null (log);
          char *second = strchr (log, '\n');
          cr_assert (second && second[1], "%s", log);
          json_t *a = json_loads (log, JSON_DISABLE_EOF_CHECK, NULL), *b = json_loads (second + 1, 0, NULL);
          cr_assert (a && b, "%s", log);
          cr_assert_eq (json_integer_value (json_object_get (a, "pid")),
                        json_integer_value (json_object_get (b, "pid")));
          cr_assert (json_equal (json_object_get (a, "argv"), json_object_get (b, "argv")));
          cr_assert_str_eq (json_string_value (json_object_get (b, "cwd")), f.idir);
          /* The log shows what each descriptor is.  */
          const char *confui = strchr (s.argv[1], '=') + 1;
          const char *kind = json_string_value (json_object_get (json_object_get (a, "fds"), confui));
          cr_assert (kind && !strcmp (kind, "listening-socket rw"), "fd %s: %s", confui, kind ? kind : "missing");
          json_decref (a), json_decref (b);
          ready_then_term (&p);
          continue;
        }
      /* The monitor's end of file.  */
      close (s.events_w);
      cr_assert_eq (finish (&p, NULL), 128 + SIGABRT, "%s", p.errs);
      assert_has (p.errs, r == 2 ? "Check failed: read_result->has_value() EOF in kernel log monitor"
                                 : "Check failed: read_result.has_value()");
    }
}

/* The answer byte to REQ (LEN bytes) on FD within 3 s, or -1.  */
static int
exchange (int fd, const unsigned char *req, size_t len)
{
  cr_assert_eq (write (fd, req, len), (ssize_t) len);
  struct pollfd pf = { fd, POLLIN, 0 };
  unsigned char c;
  if (poll (&pf, 1, 3000) != 1 || read (fd, &c, 1) != 1)
    return -1;
  return c;
}

/* secure_env's snapshot control as run_cvd speaks it (the bytes avm sends,
   supervise/snapshot_helpers.c): suspend and resume answered 'S'; the other
   release's framing is not answered; its state files hold a recognisable
   default state, kept when they exist (a restored snapshot's).  */
Test (fakecf, secure_env_snapshot_control)
{
  static const unsigned char suspend15[] = { 'A', 2, 0, 0, 0, 0x2a, 0 }, resume15[] = { 'A', 2, 0, 0, 0, 0x32, 0 };
  static const unsigned char suspend14[] = { 'A', 5, 0, 0, 0, 2, 0, 0, 0, 0x2a, 0 },
                             resume14[] = { 'A', 6, 0, 0, 0, 2, 0, 0, 0, 0x32, 0 };
  static const char *const rels[] = { "android14-qpr2", "android15", "android16" };
  for (size_t r = 0; r < 3; r++)
    {
      struct fx f;
      fx_init (&f, rels[r]);
      free (tu_write (f.idir, "oemlock_insecure", "restored state\n"));
      struct se s;
      secure_env_args (&f, &s, rels[r]);
      struct proc p;
      spawn (&f, &p, f.idir, NULL, s.argv);
      cr_assert (wait_stderr (&p, ") ready", 10), "%s: %s", rels[r], p.errs);
      char *nv = rd (tu_fmt ("%s/NVChip", f.idir)), *ol = rd (tu_fmt ("%s/oemlock_insecure", f.idir));
      cr_assert (nv && strstr (nv, "avm-fakecf secure_env NVChip"), "%s: %s", rels[r], nv ? nv : "no NVChip");
      cr_assert (ol && !strcmp (ol, "restored state\n"), "%s: %s", rels[r], ol ? ol : "no oemlock_insecure");
      bool typed = r == 0;
      cr_assert_eq (exchange (s.snap, typed ? suspend14 : suspend15, typed ? sizeof suspend14 : sizeof suspend15), 'S',
                    "%s: %s", rels[r], p.errs);
      cr_assert (wait_stderr (&p, "Handling suspended...", 5), "%s: %s", rels[r], p.errs);
      cr_assert_eq (exchange (s.snap, typed ? resume14 : resume15, typed ? sizeof resume14 : sizeof resume15), 'S',
                    "%s: %s", rels[r], p.errs);
      cr_assert (wait_stderr (&p, "Handling resume...", 5), "%s: %s", rels[r], p.errs);
      /* The other framing: no answer (android14-qpr2 waits for the rest
         of what it takes for a length; the later ones end their handler
         thread; the tool goes on either way).  */
      cr_assert_eq (exchange (s.snap, typed ? suspend15 : suspend14, typed ? sizeof suspend15 : sizeof suspend14), -1,
                    "%s", rels[r]);
      if (!typed)
        cr_assert (wait_stderr (&p, "Unsupported run_cvd snapshot command.", 5), "%s: %s", rels[r], p.errs);
      ready_then_term (&p);
    }
}

/* kernel_log_monitor: kernel.log, and BOOT_COMPLETED as event 1 in the
   wire format (native size_t, jsoncpp's styled JSON) to every subscriber.  */
Test (fakecf, kernel_log_monitor_events)
{
  struct fx f;
  fx_init (&f, "android15-qpr2");
  int logp[2], s1[2], s2[2];
  cr_assert (pipe (logp) == 0 && pipe (s1) == 0 && pipe (s2) == 0);
  cloexec (logp[1]), cloexec (s1[0]), cloexec (s2[0]);
  struct proc p;
  spawn (&f, &p, NULL, NULL,
         (char *[]) { tool (&f, "kernel_log_monitor"), tu_fmt ("-log_pipe_fd=%d", logp[0]),
                      tu_fmt ("--subscriber_fds=%d,%d", s1[1], s2[1]), NULL });
  close (logp[0]), close (s1[1]), close (s2[1]);
  cr_assert (wait_stderr (&p, ") ready", 10), "%s", p.errs);
  const char *text = "[    0.000000] Linux version 6.6\ninit: x\nVIRTUAL_DEVICE_BOOT_COMPLETED\n"
                     "VIRTUAL_DEVICE_DISPLAY_POWER_MODE_CHANGED display=0 mode=on\n";
  cr_assert_eq (write (logp[1], text, strlen (text)), (ssize_t) strlen (text));
  cr_assert (wait_stderr (&p, "] VIRTUAL_DEVICE_BOOT_COMPLETED\n", 10), "%s", p.errs);
  static const struct
  {
    int event;
    const char *json;
  } want[] = {
    { 8, "{\n\t\"event\" : 8,\n\t\"metadata\" : null\n}" },
    { 1, "{\n\t\"event\" : 1,\n\t\"metadata\" : null\n}" },
    { 10, "{\n\t\"event\" : 10,\n\t\"metadata\" : \n\t{\n\t\t\"display\" : \"0\",\n\t\t\"mode\" : \"on\"\n\t}\n}" },
  };
  for (int s = 0; s < 2; s++)
    for (size_t i = 0; i < 3; i++)
      {
        size_t len = 0;
        char buf[256] = "";
        int fd = s ? s2[0] : s1[0];
        cr_assert_eq (read (fd, &len, sizeof len), (ssize_t) sizeof len);
        cr_assert_eq (len, strlen (want[i].json));
        cr_assert_eq (read (fd, buf, len), (ssize_t) len);
        cr_assert_str_eq (buf, want[i].json);
        json_t *j = json_loads (buf, 0, NULL);
        cr_assert_eq (json_integer_value (json_object_get (j, "event")), want[i].event);
        json_decref (j);
      }
  char *klog = NULL;
  for (int i = 0; i < 100 && !(klog && strstr (klog, "mode=on")); i++, tu_sleep_ms (20))
    klog = rd (tu_fmt ("%s/logs/kernel.log", f.idir));
  cr_assert_str_eq (klog, text);
  ready_then_term (&p);
  char *launcher = rd (tu_fmt ("%s/logs/launcher.log", f.idir));
  assert_has (launcher, "kernel_log_monitor I ");
  assert_has (launcher, "avm-fakecf: kernel_log_monitor (android15-qpr2) ready");
  /* An unopened subscriber is only logged; an empty list is std::stoi("").  */
  char *out, *err;
  cr_assert_eq (RUN (&f, &out, &err, tool (&f, "kernel_log_monitor"), "-log_pipe_fd=999", "-subscriber_fds=998"), 2);
  assert_has (err, "Subscriber fd isn't valid: Bad file descriptor");
  assert_has (err, "Error opening log pipe: Bad file descriptor");
  cr_assert_eq (RUN (&f, &out, &err, tool (&f, "kernel_log_monitor"), "-subscriber_fds=3,x"), 1);
  assert_has (err, "Invalid file descriptor list: 3,x");
}

/* logcat_receiver: the pipe into logs/logcat; an unreadable pipe ends it.  */
Test (fakecf, logcat_receiver)
{
  struct fx f;
  fx_init (&f, "android14-qpr2");
  int lp[2];
  cr_assert_eq (pipe (lp), 0);
  cloexec (lp[1]);
  struct proc p;
  spawn (&f, &p, NULL, NULL, (char *[]) { tool (&f, "logcat_receiver"), tu_fmt ("-log_pipe_fd=%d", lp[0]), NULL });
  close (lp[0]);
  cr_assert (wait_stderr (&p, ") ready", 10), "%s", p.errs);
  cr_assert_eq (write (lp[1], "12-07 I/init: hello\n", 20), 20);
  char *logcat = NULL;
  for (int i = 0; i < 100 && !(logcat && *logcat); i++, tu_sleep_ms (20))
    logcat = rd (tu_fmt ("%s/logs/logcat", f.idir));
  cr_assert_str_eq (logcat, "12-07 I/init: hello\n");
  ready_then_term (&p);
  char *out, *err;
  cr_assert_eq (RUN (&f, &out, &err, tool (&f, "logcat_receiver"), "-log_pipe_fd=1"), 0);
  assert_has (err, "Could not read logcat: Bad file descriptor");
  /* Without -log_pipe_fd: the instance's FIFO.  */
  cr_assert_eq (RUN (&f, &out, &err, tool (&f, "logcat_receiver")), 2);
  assert_has (err, "Error opening log pipe: No such file or directory");
}

/* socket_vsock_proxy: nothing is accepted before the start event; then
   connections reach the client; the end of the events stops it (15q2+).  */
Test (fakecf, socket_vsock_proxy_waits_for_start)
{
  struct fx f;
  fx_init (&f, "android15-qpr2");
  int sport, tport, server = listen_tcp (&sport), target = listen_tcp (&tport), ev[2];
  cr_assert_eq (pipe (ev), 0);
  cloexec (ev[1]);
  cr_assert_eq (fcntl (server, F_SETFD, 0), 0);
  struct proc p;
  spawn (&f, &p, NULL, NULL,
         (char *[]) { tool (&f, "socket_vsock_proxy"), "--label=adb", tu_fmt ("--events_fd=%d", ev[0]),
                      "--start_event_id=5", "--stop_event_id=11", "--server_type=tcp",
                      tu_fmt ("--server_fd=%d", server), "--client_type=tcp", "--client_tcp_host=127.0.0.1",
                      tu_fmt ("--client_tcp_port=%d", tport), NULL });
  close (ev[0]), close (server);
  cr_assert (wait_stderr (&p, ") ready", 10), "%s", p.errs);
  assert_has (p.errs, "proxy_adb] avm-fakecf: socket_vsock_proxy (android15-qpr2) ready");
  struct sockaddr_in sa
      = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) sport), .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  int c = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_eq (connect (c, (struct sockaddr *) &sa, sizeof sa), 0); /* queued in the backlog */
  cr_assert_eq (write (c, "ping", 4), 4);
  struct pollfd pf = { target, POLLIN, 0 };
  cr_assert_eq (poll (&pf, 1, 300), 0, "proxied before the start event");
  write_event (ev[1], 5);
  cr_assert_eq (poll (&pf, 1, 10000 * AVM_TEST_TIME_SCALE), 1, "%s", p.errs);
  int t = accept (target, NULL, NULL);
  char buf[8] = "";
  cr_assert_eq (read (t, buf, 4), 4);
  cr_assert_str_eq (buf, "ping");
  cr_assert_eq (write (t, "pong", 4), 4);
  cr_assert_eq (read (c, buf, 4), 4);
  cr_assert_str_eq (buf, "pong");
  close (ev[1]);
  cr_assert_eq (finish (&p, NULL), 0, "%s", p.errs);
  /* events_fd without start_event_id.  */
  char *out, *err;
  cr_assert_eq (RUN (&f, &out, &err, tool (&f, "socket_vsock_proxy"), "--events_fd=0", "--server_type=tcp",
                     "--server_tcp_port=1", "--client_type=vsock"),
                128 + SIGABRT);
  assert_has (err, "Failed to proxy: start_event_id is required if events_fd is provided");
}

/* modem_simulator: its abstract socket modem_simulator<host_id> is the
   instance's; a second one fails to bind; STOP gets OK and exit 0.  */
Test (fakecf, modem_simulator_host_id)
{
  struct fx f;
  fx_init (&f, "android16");
  int s1 = listen_unix (tu_fmt ("%s/m1.sock", f.dir)), s2 = listen_unix (tu_fmt ("%s/m2.sock", f.dir));
  struct proc p;
  spawn (&f, &p, NULL, NULL, (char *[]) { tool (&f, "modem_simulator"), tu_fmt ("-server_fds=%d", s1), NULL });
  cr_assert (wait_stderr (&p, ") ready", 10), "%s", p.errs);
  assert_lacks (p.errs, "SIM");
  char *out, *err;
  cr_assert_eq (RUN (&f, &out, &err, tool (&f, "modem_simulator"), tu_fmt ("-server_fds=%d", s2)), 2);
  assert_has (err, "Unable to create monitor socket for modem simulator");
  /* No profile anywhere: the guest has no SIM.  */
  char *nohost[] = { "ANDROID_HOST_OUT=/nonexistent", tu_fmt ("CUTTLEFISH_CONFIG_FILE=%s", f.config), NULL };
  free (tu_write (f.dir, "other.json",
                  tu_fmt ("{\"root_dir\": \"%s\", \"instances\": {\"1\": {\"modem_simulator_host_id\": %d}}}", f.root,
                          f.host_id + 1)));
  nohost[1] = tu_fmt ("CUTTLEFISH_CONFIG_FILE=%s/other.json", f.dir);
  struct proc q;
  spawn (&f, &q, NULL, nohost, (char *[]) { tool (&f, "modem_simulator"), tu_fmt ("-server_fds=%d", s2), NULL });
  cr_assert (wait_stderr (&q, ") ready", 10), "%s", q.errs);
  assert_has (q.errs, "the guest sees no SIM 0");
  ready_then_term (&q);
  /* run_cvd's stop: connect, STOP, OK.  */
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int n = snprintf (sa.sun_path + 1, sizeof sa.sun_path - 1, "modem_simulator%d", f.host_id);
  int c = socket (AF_UNIX, SOCK_STREAM, 0);
  cr_assert_eq (connect (c, (struct sockaddr *) &sa, (socklen_t) (offsetof (struct sockaddr_un, sun_path) + 1 + n)), 0);
  cr_assert_eq (write (c, "STOP", 4), 4);
  char ok[3] = "";
  cr_assert_eq (read (c, ok, 2), 2);
  cr_assert_str_eq (ok, "OK");
  cr_assert_eq (finish (&p, NULL), 0, "%s", p.errs);
  /* An empty -server_fds is std::stoi("").  */
  cr_assert_eq (RUN (&f, &out, &err, tool (&f, "modem_simulator")), 128 + SIGABRT);
  assert_has (err, "stoi: no conversion");
}

/* The other tools' one mandatory thing each, per release.  */
Test (fakecf, other_tools)
{
  struct fx f14, f16;
  fx_init (&f14, "android14");
  fx_init (&f16, "android16");
  char *out, *err;
  cr_assert_eq (RUN (&f16, &out, &err, tool (&f16, "sensors_simulator")), 128 + SIGABRT);
  assert_has (err, "main.cpp:85] Unable to connect webrtc: Bad file descriptor");
  cr_assert_eq (RUN (&f16, &out, &err, tool (&f16, "tcp_connector"), "-fifo_in=0", "-fifo_out=1"), 128 + SIGABRT);
  assert_has (err, "Need `--data_port` or `--data_path`");
  cr_assert_eq (RUN (&f16, &out, &err, tool (&f16, "tcp_connector"), "-fifo_in=999", "-fifo_out=1"), 1);
  assert_has (err, "Error dupping fd 999: Bad file descriptor");
  /* Before android15-qpr2 no port is not fatal: it retries on writes.  */
  struct proc p;
  spawn (&f14, &p, NULL, NULL,
         (char *[]) { tool (&f14, "tcp_connector"), "-fifo_in=0", "-fifo_out=1", "-buffer_size=16", NULL });
  ready_then_term (&p);
  assert_has (p.errs, "Failed to open socket: Connection refused");
  /* gnss_grpc_proxy ends with status 0 on a bad descriptor.  */
  cr_assert_eq (RUN (&f16, &out, &err, tool (&f16, "gnss_grpc_proxy"), "--gnss_in_fd=0"), 0);
  assert_has (err, "Error dupping fd -1: Bad file descriptor");
  /* config_server (android14): the mobile interface must exist.  */
  free (tu_write (f14.dir, "cuttlefish_config.json",
                  tu_fmt ("{\"root_dir\": \"%s\", \"instances\": {\"1\": {\"mobile_tap_name\": \"cvd-nope-01\"}}}",
                          f14.root)));
  cr_assert_eq (RUN (&f14, &out, &err, tool (&f14, "config_server"), "-server_fd=0"), 128 + SIGABRT);
  assert_has (err, "Unable to obtain the network configuration");
  assert_has (err, "Check failed: device_config_helper Could not open device config");
  /* root-canal: no config needed; ports are checked.  */
  cr_assert_eq (RUN (&f14, &out, &err, tool (&f14, "root-canal"), "--hci_port=70000"), 255);
  assert_has (err, "hci_port out of range: 70000");
  /* vhost_device_vsock (android14-qpr2 on): --vm with socket and uds-path.  */
  char *vm = tu_fmt ("guest-cid=3,socket=%s/vhost.socket,uds-path=%s/vm.vsock", f16.dir, f16.dir);
  spawn (&f16, &p, NULL, NULL, (char *[]) { tool (&f16, "vhost_device_vsock"), "--vm", vm, NULL });
  cr_assert (wait_stderr (&p, ") ready", 10), "%s", p.errs);
  struct stat st;
  cr_assert (stat (tu_fmt ("%s/vhost.socket", f16.dir), &st) == 0 && S_ISSOCK (st.st_mode));
  cr_assert (stat (tu_fmt ("%s/vm.vsock", f16.dir), &st) == 0 && S_ISSOCK (st.st_mode));
  ready_then_term (&p);
  cr_assert_eq (RUN (&f16, &out, &err, tool (&f16, "vhost_device_vsock"), "--bogus"), 2);
  assert_has (err, "error: unexpected argument '--bogus' found");
  /* adb_connector with its address stays up; the start is recorded.  */
  spawn (&f14, &p, NULL, NULL, (char *[]) { tool (&f14, "adb_connector"), "--addresses=0.0.0.0:6520", NULL });
  ready_then_term (&p);
  char *log = rd (f14.log);
  assert_has (log, "{\"tool\":\"adb_connector\",\"release\":\"android14\",\"pid\":");
  assert_has (log, "\"argv\":[\"");
  assert_has (log, "/bin/adb_connector\",\"--addresses=0.0.0.0:6520\"]");
  assert_has (log, tu_fmt ("\"CUTTLEFISH_CONFIG_FILE\":\"%s\"", f14.config));
}

/* ------------------------------------------------------------------ */
/* The image sets */

static char *
listing (const char *dir)
{
  struct dirent **names;
  int n = scandir (dir, &names, NULL, alphasort);
  cr_assert (n >= 0, "%s: %s", dir, strerror (errno));
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream (&buf, &len);
  for (int i = 0; i < n; i++)
    {
      if (strcmp (names[i]->d_name, ".") && strcmp (names[i]->d_name, ".."))
        fprintf (m, "%s ", names[i]->d_name);
      free (names[i]);
    }
  free (names);
  fclose (m);
  return keep (buf);
}

Test (fakecf, imagesets)
{
  static const struct
  {
    const char *release, *bin, *info, *key;
    int os_major;
    bool vhal;
  } want[] = {
    { "android14",
      ".fakecf-release adb_connector config_server gnss_grpc_proxy kernel_log_monitor logcat_receiver modem_simulator "
      "root-canal secure_env socket_vsock_proxy tcp_connector tombstone_receiver ",
      "config=auto\n", "cvd_avb_testkey.pem", 14, false },
    { "android14-qpr2",
      ".fakecf-release adb_connector config_server gnss_grpc_proxy kernel_log_monitor logcat_receiver modem_simulator "
      "root-canal secure_env socket_vsock_proxy tcp_connector tombstone_receiver vhost_device_vsock ",
      "config=auto\ngfxstream=supported\n", "cvd_avb_testkey.pem", 14, false },
    { "android15",
      ".fakecf-release adb_connector config_server gnss_grpc_proxy kernel_log_monitor logcat_receiver modem_simulator "
      "root-canal secure_env socket_vsock_proxy tcp_connector tombstone_receiver vhal_proxy_server vhost_device_vsock ",
      "config=auto\ngfxstream=supported\n", "cvd_avb_testkey_rsa4096.pem", 15, false },
    { "android15-qpr2",
      ".fakecf-release adb_connector config_server gnss_grpc_proxy kernel_log_monitor logcat_receiver modem_simulator "
      "root-canal secure_env socket_vsock_proxy tcp_connector tombstone_receiver vhal_proxy_server vhost_device_vsock ",
      "config=auto\ngfxstream=supported\ngfxstream_gl_program_binary_link_status=supported\nvhost_user_vsock=true\n",
      "cvd_avb_testkey_rsa4096.pem", 15, true },
    { "android16",
      ".fakecf-release adb_connector gnss_grpc_proxy kernel_log_monitor logcat_receiver modem_simulator root-canal "
      "secure_env sensors_simulator socket_vsock_proxy tcp_connector tombstone_receiver vhal_proxy_server "
      "vhost_device_vsock ",
      "config=auto\ngfxstream=supported\ngfxstream_gl_program_binary_link_status=supported\nvhost_user_vsock=true\n"
      "output_audio_streams_count=6\n",
      "cvd_avb_testkey_rsa4096.pem", 16, true },
  };
  char *tmp = tu_tmpdir ();
  dirs[0] = tmp;
  for (size_t r = 0; r < sizeof want / sizeof *want; r++)
    {
      char *dir = tu_fmt ("%s/%s", tmp, want[r].release), *got = keep (tu_cf_imageset (dir, want[r].release, "x86_64"));
      cr_assert_str_eq (got, dir);
      cr_assert_str_eq (listing (tu_fmt ("%s/bin", dir)), want[r].bin);
      cr_assert_str_eq (rd (tu_fmt ("%s/android-info.txt", dir)), want[r].info);
      cr_assert_str_eq (rd (tu_fmt ("%s/bin/.fakecf-release", dir)), tu_fmt ("%s\n", want[r].release));
      char *key = rd (tu_fmt ("%s/etc/%s", dir, want[r].key)), *copy = rd (tu_fmt ("%s/avb_key.pem", dir));
      cr_assert (key && strstr (key, "-----BEGIN PRIVATE KEY-----"), "%s", want[r].key);
      cr_assert_str_eq (key, copy);
      cr_assert_eq (access (tu_fmt ("%s/etc/automotive/vhalconfig/DefaultProperties.json", dir), R_OK) == 0,
                    want[r].vhal);
      cr_assert_eq (access (tu_fmt ("%s/etc/modem_simulator/files/iccprofile_for_sim0.xml", dir), R_OK), 0);
      struct stat st;
      cr_assert (stat (tu_fmt ("%s/etc/bootloader_x86_64/bootloader.qemu", dir), &st) == 0 && st.st_size >= 65536);
      cr_assert (stat (tu_fmt ("%s/system.img", dir), &st) == 0 && st.st_size == 64 << 20 && st.st_blocks == 0);
      /* boot.img: ANDROID! and os_version (A<<25 | B<<18 | C<<11 | ...) at byte 16.  */
      FILE *b = fopen (tu_fmt ("%s/boot.img", dir), "rb");
      unsigned char h[20];
      cr_assert (b && fread (h, 1, 20, b) == 20);
      fclose (b);
      cr_assert_eq (memcmp (h, "ANDROID!", 8), 0);
      uint32_t osv = (uint32_t) h[16] | (uint32_t) h[17] << 8 | (uint32_t) h[18] << 16 | (uint32_t) h[19] << 24;
      cr_assert_eq (osv >> 25, (uint32_t) want[r].os_major, "%s", want[r].release);
      /* Every tool is the double, told its release (root-canal needs no
         config).  */
      char *out, *err;
      cr_assert_eq (tu_run ((char *[]) { tu_fmt ("%s/bin/root-canal", dir), "--version", NULL }, NULL, &out, &err), 0);
      keep (out), keep (err);
      cr_assert_str_eq (out, "root-canal\n");
    }
  /* arm64: U-Boot's qemu_arm64 build.  */
  char *arm = keep (tu_cf_imageset (tu_fmt ("%s/arm", tmp), "android16", "arm64"));
  struct stat st;
  cr_assert (stat (tu_fmt ("%s/etc/bootloader_aarch64/bootloader.qemu", arm), &st) == 0 && st.st_size > 0);
}
