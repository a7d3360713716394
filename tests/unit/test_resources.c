/* SPDX-License-Identifier: Apache-2.0 */
/* Runtime directory (lock, stale cleanup, refusals) and plan resources
   (FIFOs, pipes, listeners, rollback, cleanup). */
#include "supervise/resources.h"
#include "supervise/rundir.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

static char *dir;

static void
setup (void)
{
  dir = tu_tmpdir ();
}

static void made_free (void);

static void
teardown (void)
{
  made_free ();
  tu_rmtree (dir);
  free (dir);
}

TestSuite (resources, .init = setup, .fini = teardown);

static char *
path_in (const char *d, const char *name)
{
  char *p = NULL;
  cr_assert (asprintf (&p, "%s/%s", d, name) >= 0);
  return p;
}

static int
count_fds (void)
{
  DIR *d = opendir ("/proc/self/fd");
  struct dirent *e;
  int n = 0;
  cr_assert_not_null (d);
  while ((e = readdir (d)))
    if (e->d_name[0] != '.')
      n++;
  closedir (d);
  return n;
}

/* Entries of D other than "." and "..".  */
static int
count_entries (const char *d)
{
  DIR *dh = opendir (d);
  struct dirent *e;
  int n = 0;
  cr_assert_not_null (dh, "%s: %s", d, strerror (errno));
  while ((e = readdir (dh)))
    if (strcmp (e->d_name, ".") && strcmp (e->d_name, ".."))
      n++;
  closedir (dh);
  return n;
}

static bool
exists (const char *p)
{
  struct stat st;
  return lstat (p, &st) == 0;
}

/* Bind a unix socket at PATH and close it: what a killed process leaves.  */
static void
leave_socket (const char *path, bool keep_listening, int *fd_out)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert (fd >= 0);
  strcpy (sa.sun_path, path);
  cr_assert_eq (bind (fd, (struct sockaddr *) &sa, sizeof sa), 0, "%s: %s", path, strerror (errno));
  if (keep_listening)
    {
      cr_assert_eq (listen (fd, 4), 0);
      *fd_out = fd;
    }
  else
    close (fd);
}

/* A TCP port on 127.0.0.1 that was free a moment ago.  */
static int
free_tcp_port (void)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t sl = sizeof sa;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert (fd >= 0);
  cr_assert_eq (bind (fd, (struct sockaddr *) &sa, sizeof sa), 0);
  cr_assert_eq (getsockname (fd, (struct sockaddr *) &sa, &sl), 0);
  close (fd);
  return ntohs (sa.sin_port);
}

/* ---------------------------------------------------------------- rundir */

Test (resources, rundir_create_lock_release)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *base = path_in (dir, "xdg/avm"), *path = path_in (dir, "xdg/avm/3");
  _cleanup_free_ char *lock = path_in (path, "lock");
  struct avm_rundir *d = NULL;
  struct stat st;
  pid_t pid = -1;
  int before = count_fds ();

  cr_assert_eq (avm_rundir_holder (path, &pid, &err), 0);
  cr_assert_eq (avm_rundir_acquire (path, &d, &err), 0, "%s", err ? err->msg : "");
  cr_assert_str_eq (avm_rundir_path (d), path);
  cr_assert_eq (lstat (path, &st), 0);
  cr_assert (S_ISDIR (st.st_mode));
  cr_assert_eq (st.st_mode & 07777, 0700);
  cr_assert_eq (lstat (base, &st), 0);
  cr_assert (S_ISDIR (st.st_mode));

  /* The descriptors: a directory usable with *at(), both close-on-exec.  */
  int fd = avm_rundir_fd (d);
  cr_assert (fd >= 0);
  cr_assert (fcntl (fd, F_GETFD) & FD_CLOEXEC);
  _cleanup_free_ char *probe = path_in (path, "probe");
  cr_assert_eq (mkfifoat (fd, "probe", 0600), 0);
  cr_assert (exists (probe));
  cr_assert_eq (count_fds (), before + 2);

  _cleanup_free_ char *content = tu_read (lock);
  char want[32];
  snprintf (want, sizeof want, "%ld\n", (long) getpid ());
  cr_assert_str_eq (content, want);
  cr_assert_eq (avm_rundir_holder (path, &pid, &err), 1);
  cr_assert_eq (pid, getpid ());

  /* Contents of any kind go with the directory.  */
  cr_assert_eq (mkdirat (fd, "sub", 0700), 0);
  free (tu_write (path, "sub/file", "x"));
  cr_assert_eq (avm_rundir_release (d, &err), 0, "%s", err ? err->msg : "");
  cr_assert (!exists (path));
  cr_assert (exists (base));
  cr_assert_eq (count_fds (), before);
  cr_assert_eq (avm_rundir_holder (path, &pid, &err), 0);

  /* And it can be acquired again.  */
  cr_assert_eq (avm_rundir_acquire (path, &d, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (avm_rundir_release (d, &err), 0);
}

Test (resources, rundir_busy_in_child, .timeout = TU_TIMEOUT (20))
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *path = path_in (dir, "avm/3");
  struct avm_rundir *d = NULL;
  int p[2];

  cr_assert_eq (avm_rundir_acquire (path, &d, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (pipe (p), 0);
  pid_t child = fork ();
  cr_assert (child >= 0);
  if (child == 0)
    {
      avm_error_t cerr = NULL;
      struct avm_rundir *cd = NULL;
      close (p[0]);
      int r = avm_rundir_acquire (path, &cd, &cerr);
      const char *msg = r == -EBUSY && cerr ? cerr->msg : "(acquired, or another error)";
      if (write (p[1], msg, strlen (msg)) < 0)
        _exit (2);
      _exit (r == -EBUSY && !cd ? 0 : 1);
    }
  close (p[1]);
  char buf[1024] = "";
  size_t len = 0;
  ssize_t n;
  while ((n = read (p[0], buf + len, sizeof buf - 1 - len)) > 0)
    len += n;
  buf[len] = '\0';
  close (p[0]);
  int status;
  cr_assert_eq (waitpid (child, &status, 0), child);
  char want[1024];
  snprintf (want, sizeof want,
            "instance 3 is already running (pid %ld, runtime directory %s); stop it with "
            "`avm stop --instance 3` or choose another --instance",
            (long) getpid (), path);
  cr_assert_str_eq (buf, want);
  cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);

  /* The failed attempt touched nothing.  */
  _cleanup_free_ char *lock = path_in (path, "lock"), *content = tu_read (lock);
  cr_assert_eq (atol (content), (long) getpid ());
  cr_assert_eq (avm_rundir_release (d, &err), 0);
  cr_assert (!exists (path));
}

Test (resources, rundir_stale_cleaned_and_reused)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *path = path_in (dir, "avm/1");
  _cleanup_free_ char *sock = path_in (path, "confui.sock"), *fifo = path_in (path, "kernel-log-pipe");
  _cleanup_free_ char *sub = path_in (path, "sub"), *lock = path_in (path, "lock"), *avm = path_in (dir, "avm");
  struct avm_rundir *d = NULL;

  cr_assert_eq (mkdir (avm, 0755), 0);
  cr_assert_eq (mkdir (path, 0700), 0);
  /* What a killed supervisor leaves: its lock file with its pid, sockets,
     FIFOs, files, directories.  */
  free (tu_write (path, "lock", "999999999\n"));
  leave_socket (sock, false, NULL);
  cr_assert_eq (mkfifo (fifo, 0600), 0);
  free (tu_write (path, "qmp.log", "old"));
  cr_assert_eq (mkdir (sub, 0700), 0);
  free (tu_write (sub, "deeper", "old"));
  cr_assert_eq (count_entries (path), 5);

  cr_assert_eq (avm_rundir_acquire (path, &d, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (count_entries (path), 1);
  cr_assert (exists (lock));
  _cleanup_free_ char *content = tu_read (lock);
  cr_assert_eq (atol (content), (long) getpid ());
  cr_assert_eq (avm_rundir_release (d, &err), 0);
  cr_assert (!exists (path));
}

Test (resources, rundir_symlink_refused)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *real = path_in (dir, "real"), *link = path_in (dir, "avm/2"), *avm = path_in (dir, "avm");
  _cleanup_free_ char *keep = NULL;
  struct avm_rundir *d = NULL;

  cr_assert_eq (mkdir (real, 0700), 0);
  keep = tu_write (real, "keep", "precious");
  cr_assert_eq (mkdir (avm, 0755), 0);
  cr_assert_eq (symlink (real, link), 0);
  cr_assert_lt (avm_rundir_acquire (link, &d, &err), 0);
  cr_assert_null (d);
  cr_assert_not_null (err);
  cr_assert_not_null (strstr (err->msg, link), "%s", err->msg);
  cr_assert_not_null (strstr (err->msg, "symbolic link"), "%s", err->msg);
  cr_assert (exists (keep));
  cr_assert_eq (count_entries (real), 1);
}

Test (resources, rundir_writable_refused)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *path = path_in (dir, "open"), *want = NULL;
  struct avm_rundir *d = NULL;

  cr_assert_eq (mkdir (path, 0700), 0);
  cr_assert_eq (chmod (path, 0777), 0);
  cr_assert_eq (avm_rundir_acquire (path, &d, &err), -EPERM);
  cr_assert_null (d);
  cr_assert (asprintf (&want, "%s: mode 0777, must not be writable by others", path) > 0);
  cr_assert_str_eq (err->msg, want);

  cr_assert_eq (chmod (path, 0720), 0);
  cr_assert_eq (avm_rundir_acquire (path, &d, &err), -EPERM);
  cr_assert_not_null (strstr (err->msg, "mode 0720"), "%s", err->msg);
}

Test (resources, rundir_foreign_owner_refused)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *path = path_in (dir, "foreign"), *want = NULL;
  struct avm_rundir *d = NULL;

  if (geteuid () != 0)
    cr_skip_test ("needs root to give a directory away");
  cr_assert_eq (mkdir (path, 0700), 0);
  cr_assert_eq (chown (path, 65534, 65534), 0);
  cr_assert_eq (avm_rundir_acquire (path, &d, &err), -EPERM);
  cr_assert (asprintf (&want, "%s: owned by uid 65534, not you", path) > 0);
  cr_assert_str_eq (err->msg, want);
}

/* Issue 15: the base that holds the instance directories (/tmp/avm-UID
   without XDG_RUNTIME_DIR) must be trusted too: another user who may write
   there could rename a live instance's directory away.  */
Test (resources, rundir_untrusted_base_refused)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *base = path_in (dir, "avm-base"), *inst = path_in (base, "1");
  struct avm_rundir *d = NULL;
  pid_t pid;

  cr_assert_eq (mkdir (base, 0700), 0);
  cr_assert_eq (chmod (base, 0777), 0);
  cr_assert_eq (avm_rundir_acquire (inst, &d, &err), -EPERM);
  cr_assert_null (d);
  cr_assert_not_null (strstr (err->msg, "with mode 0777: another user could move the runtime directories away; "
                                        "remove it, or set XDG_RUNTIME_DIR"),
                      "%s", err->msg);
  avm_error_freep (&err);
  /* avm status and stop refuse it as well, rather than say "not running".  */
  cr_assert_eq (avm_rundir_holder (inst, &pid, &err), -EPERM);
  avm_error_freep (&err);
  if (geteuid () == 0)
    {
      cr_assert_eq (chmod (base, 0755), 0);
      cr_assert_eq (chown (base, 65534, 65534), 0);
      cr_assert_eq (avm_rundir_acquire (inst, &d, &err), -EPERM);
      cr_assert_not_null (strstr (err->msg, "owned by uid 65534"), "%s", err->msg);
      avm_error_freep (&err);
      cr_assert_eq (chown (base, 0, 0), 0);
    }
  /* A base of one's own is fine; so is a root-owned sticky one (/tmp).  */
  cr_assert_eq (chmod (base, 0755), 0);
  cr_assert_eq (avm_rundir_acquire (inst, &d, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (avm_rundir_release (d, &err), 0);
  _cleanup_free_ char *tmpinst = NULL;
  cr_assert (asprintf (&tmpinst, "/tmp/avm-test-base-%d", (int) getpid ()) > 0);
  cr_assert_eq (avm_rundir_acquire (tmpinst, &d, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (avm_rundir_release (d, &err), 0);
}

Test (resources, rundir_symlinks_inside_not_followed)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *path = path_in (dir, "run"), *outside = path_in (dir, "outside");
  _cleanup_free_ char *sub = path_in (path, "sub");
  _cleanup_free_ char *l1 = path_in (path, "to-dir"), *l2 = path_in (path, "to-file"), *l3 = path_in (sub, "to-dir");
  _cleanup_free_ char *target = NULL;
  struct avm_rundir *d = NULL;

  cr_assert_eq (mkdir (outside, 0755), 0);
  target = tu_write (outside, "target", "must survive");
  free (tu_write (outside, "other", "must survive too"));
  cr_assert_eq (mkdir (path, 0700), 0);
  cr_assert_eq (mkdir (sub, 0700), 0);
  cr_assert_eq (symlink (outside, l1), 0);
  cr_assert_eq (symlink (target, l2), 0);
  cr_assert_eq (symlink (outside, l3), 0);

  cr_assert_eq (avm_rundir_acquire (path, &d, &err), 0, "%s", err ? err->msg : "");
  cr_assert (!exists (l1));
  cr_assert (!exists (l2));
  cr_assert (!exists (sub));
  cr_assert_eq (count_entries (outside), 2);
  _cleanup_free_ char *content = tu_read (target);
  cr_assert_str_eq (content, "must survive");

  /* The same on release.  */
  cr_assert_eq (symlinkat (outside, avm_rundir_fd (d), "again"), 0);
  cr_assert_eq (avm_rundir_release (d, &err), 0, "%s", err ? err->msg : "");
  cr_assert (!exists (path));
  cr_assert_eq (count_entries (outside), 2);
}

Test (resources, rundir_close_keeps_contents)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *path = path_in (dir, "kept");
  struct avm_rundir *d = NULL;
  pid_t pid;

  cr_assert_eq (avm_rundir_acquire (path, &d, &err), 0, "%s", err ? err->msg : "");
  free (tu_write (path, "file", "x"));
  avm_rundir_close (d);
  cr_assert_eq (count_entries (path), 2);
  cr_assert_eq (avm_rundir_holder (path, &pid, &err), 0);
  /* Stale now: the next acquire empties it.  */
  cr_assert_eq (avm_rundir_acquire (path, &d, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (count_entries (path), 1);
  cr_assert_eq (avm_rundir_release (d, &err), 0);
}

/* ------------------------------------------------------------- resources */

static json_t *
parse (const char *text)
{
  json_error_t je;
  json_t *j = json_loads (text, 0, &je);
  cr_assert_not_null (j, "%s: %s", text, je.text);
  return j;
}

static json_t *
parsef (const char *fmt, ...)
{
  va_list ap;
  char *s = NULL;
  va_start (ap, fmt);
  cr_assert (vasprintf (&s, fmt, ap) >= 0);
  va_end (ap);
  json_t *j = parse (s);
  free (s);
  return j;
}

/* The resources described by RES (an array of objects written as the JSON
   plan prints them), typed and checked as the planner does
   (avm_plan_resource_check), then created.  Kept until the test ends: the
   set borrows them.  */
static struct avm_plan_resource *made[32];
static size_t nmade[32], nsets;

static void
made_free (void)
{
  for (size_t k = 0; k < nsets; k++)
    {
      for (size_t i = 0; i < nmade[k]; i++)
        avm_plan_resource_clear (&made[k][i]);
      free (made[k]);
    }
  nsets = 0;
}

static char *
str_of (json_t *o, const char *key)
{
  const char *v = json_string_value (json_object_get (o, key));
  return v ? strdup (v) : NULL;
}

static int
create (json_t *res, struct avm_resources **out, avm_error_t *err)
{
  size_t n = json_array_size (res), i;
  json_t *o;
  cr_assert_lt (nsets, ARRAY_SIZE (made));
  struct avm_plan_resource *v = calloc (n + 1, sizeof *v);
  cr_assert_not_null (v);
  made[nsets] = v;
  json_array_foreach (res, i, o)
    {
      int t = avm_resource_type_from_name (json_string_value (json_object_get (o, "type")));
      cr_assert_geq (t, 0);
      v[i] = (struct avm_plan_resource) { .name = str_of (o, "name"),
                                          .type = (enum avm_resource_type) t,
                                          .type_name = avm_resource_type_name ((enum avm_resource_type) t),
                                          .path = str_of (o, "path"),
                                          .port = -1,
                                          .address = str_of (o, "address"),
                                          .content = str_of (o, "content"),
                                          .console = str_of (o, "console"),
                                          .tee = str_of (o, "tee"),
                                          .log = json_is_true (json_object_get (o, "log")) };
      if (json_is_integer (json_object_get (o, "port")))
        v[i].port = (int) json_integer_value (json_object_get (o, "port"));
      nmade[nsets] = i + 1;
    }
  nsets++;
  *out = NULL;
  for (i = 0; i < n; i++)
    {
      int r = avm_plan_resource_check (&v[i], err);
      if (r < 0)
        return r;
    }
  return avm_resources_create_plan (v, n, out, err);
}

static void
assert_cloexec_all (const struct avm_resources *r)
{
  for (size_t i = 0; i < avm_resources_count (r); i++)
    {
      const struct avm_resource_fd *f = avm_resources_at (r, i);
      cr_assert (f->fd >= 0, "%s", f->name);
      cr_assert (fcntl (f->fd, F_GETFD) & FD_CLOEXEC, "%s is not close-on-exec", f->name);
    }
}

Test (resources, every_type, .timeout = TU_TIMEOUT (20))
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *kfifo = path_in (dir, "kernel-log-pipe"), *pair = path_in (dir, "keymaster_fifo_vm");
  _cleanup_free_ char *pin = path_in (dir, "keymaster_fifo_vm.in"), *pout = path_in (dir, "keymaster_fifo_vm.out");
  _cleanup_free_ char *sock = path_in (dir, "confui.sock");
  int port = free_tcp_port ();
  _cleanup_json_ json_t *res
      = parsef ("[{\"name\": \"kernel_log_tee\", \"type\": \"pipe\"},"
                " {\"name\": \"adb_tcp\", \"type\": \"tcp-listen\", \"port\": %d, \"address\": \"127.0.0.1\"},"
                " {\"name\": \"confui\", \"type\": \"unix-listen\", \"path\": \"%s\"},"
                " {\"name\": \"kernel\", \"type\": \"fifo\", \"path\": \"%s\", \"console\": \"kernel\", \"log\": true,"
                "  \"tee\": \"kernel_log_tee\"},"
                " {\"name\": \"keymaster\", \"type\": \"fifo-pair\", \"path\": \"%s\", \"console\": \"keymaster\"}]",
                port, sock, kfifo, pair);
  struct avm_resources *r = NULL;
  struct stat st;

  cr_assert_eq (create (res, &r, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (avm_resources_count (r), 7);
  static const char *const names[] = { "kernel_log_tee.read", "kernel_log_tee.write", "adb_tcp", "confui", "kernel",
                                       "keymaster.in",        "keymaster.out" };
  for (size_t i = 0; i < ARRAY_SIZE (names); i++)
    {
      cr_assert_str_eq (avm_resources_at (r, i)->name, names[i]);
      cr_assert_eq (avm_resources_fd (r, names[i]), avm_resources_at (r, i)->fd);
      cr_assert_eq (avm_resources_lookup (r, names[i]), avm_resources_at (r, i)->fd);
    }
  cr_assert_null (avm_resources_at (r, 7));
  cr_assert_eq (avm_resources_fd (r, "keymaster"), -1);
  cr_assert_eq (avm_resources_fd (r, "kernel_log_tee"), -1);
  cr_assert_eq (avm_resources_fd (r, "nope"), -1);
  assert_cloexec_all (r);

  /* fifo: mode 0600, kept non-blocking for the supervisor's loop (log).  */
  const struct avm_resource_fd *k = avm_resources_find (r, "kernel");
  cr_assert_str_eq (k->type, "fifo");
  cr_assert_str_eq (k->resource, "kernel");
  cr_assert_str_eq (k->path, kfifo);
  cr_assert_eq (k->port, -1);
  cr_assert_str_eq (k->res->tee, "kernel_log_tee");
  cr_assert_eq (lstat (kfifo, &st), 0);
  cr_assert (S_ISFIFO (st.st_mode));
  cr_assert_eq (st.st_mode & 07777, 0600);
  cr_assert_eq (fcntl (k->fd, F_GETFL) & O_ACCMODE, O_RDWR);
  cr_assert (fcntl (k->fd, F_GETFL) & O_NONBLOCK);

  /* fifo-pair: PATH.in and PATH.out, blocking (they go to helpers).  */
  const struct avm_resource_fd *in = avm_resources_find (r, "keymaster.in");
  const struct avm_resource_fd *out = avm_resources_find (r, "keymaster.out");
  cr_assert_str_eq (in->path, pin);
  cr_assert_str_eq (out->path, pout);
  cr_assert_str_eq (in->resource, "keymaster");
  cr_assert_str_eq (in->type, "fifo-pair");
  cr_assert (!exists (pair));
  cr_assert_eq (lstat (pin, &st), 0);
  cr_assert (S_ISFIFO (st.st_mode));
  cr_assert_eq (st.st_mode & 07777, 0600);
  cr_assert_eq (lstat (pout, &st), 0);
  cr_assert (S_ISFIFO (st.st_mode));
  cr_assert_eq (fcntl (in->fd, F_GETFL) & O_ACCMODE, O_RDWR);
  cr_assert_eq (fcntl (in->fd, F_GETFL) & O_NONBLOCK, 0);
  /* A helper writes .in, QEMU reads it (opening O_RDWR, as its pipe chardev
     does).  */
  int q = open (pin, O_RDWR | O_CLOEXEC);
  cr_assert (q >= 0);
  cr_assert_eq (write (in->fd, "km", 2), 2);
  char buf[16] = "";
  cr_assert_eq (read (q, buf, sizeof buf), 2);
  cr_assert_eq (memcmp (buf, "km", 2), 0);
  close (q);

  /* pipe */
  int pr = avm_resources_fd (r, "kernel_log_tee.read"), pw = avm_resources_fd (r, "kernel_log_tee.write");
  cr_assert_null (avm_resources_find (r, "kernel_log_tee.read")->path);
  cr_assert_eq (write (pw, "tee", 3), 3);
  memset (buf, 0, sizeof buf);
  cr_assert_eq (read (pr, buf, sizeof buf), 3);
  cr_assert_str_eq (buf, "tee");
  cr_assert_eq (fcntl (pr, F_GETFL) & O_NONBLOCK, 0);

  /* unix-listen: a listening socket, mode 0600.  */
  const struct avm_resource_fd *u = avm_resources_find (r, "confui");
  cr_assert_eq (lstat (sock, &st), 0);
  cr_assert (S_ISSOCK (st.st_mode));
  cr_assert_eq (st.st_mode & 07777, 0600);
  int acc = 0;
  socklen_t al = sizeof acc;
  cr_assert_eq (getsockopt (u->fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al), 0);
  cr_assert_eq (acc, 1);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  strcpy (sa.sun_path, sock);
  int c = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_eq (connect (c, (struct sockaddr *) &sa, sizeof sa), 0, "%s", strerror (errno));
  int a = accept4 (u->fd, NULL, NULL, SOCK_CLOEXEC);
  cr_assert (a >= 0);
  cr_assert_eq (write (c, "hi", 2), 2);
  cr_assert_eq (read (a, buf, sizeof buf), 2);
  close (a);
  close (c);

  /* tcp-listen on 127.0.0.1:PORT.  */
  const struct avm_resource_fd *t = avm_resources_find (r, "adb_tcp");
  cr_assert_eq (t->port, port);
  cr_assert_str_eq (t->type, "tcp-listen");
  struct sockaddr_in si
      = { .sin_family = AF_INET, .sin_port = htons (port), .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  c = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_eq (connect (c, (struct sockaddr *) &si, sizeof si), 0, "%s", strerror (errno));
  a = accept4 (t->fd, NULL, NULL, SOCK_CLOEXEC);
  cr_assert (a >= 0);
  close (a);
  close (c);
  int reuse = 0;
  al = sizeof reuse;
  cr_assert_eq (getsockopt (t->fd, SOL_SOCKET, SO_REUSEADDR, &reuse, &al), 0);
  cr_assert (reuse);

  /* free removes the FIFOs and the socket it made.  */
  avm_resources_free (r);
  cr_assert (!exists (kfifo));
  cr_assert (!exists (pin));
  cr_assert (!exists (pout));
  cr_assert (!exists (sock));
  cr_assert_eq (count_entries (dir), 0);
}

Test (resources, fifo_writer_does_not_block, .timeout = TU_TIMEOUT (10))
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *fifo = path_in (dir, "logcat-pipe");
  _cleanup_json_ json_t *res
      = parsef ("[{\"name\": \"logcat\", \"type\": \"fifo\", \"path\": \"%s\", \"log\": true}]", fifo);
  struct avm_resources *r = NULL;

  cr_assert_eq (create (res, &r, &err), 0, "%s", err ? err->msg : "");
  int kept = avm_resources_fd (r, "logcat");
  char buf[64] = "";
  /* Nothing written yet: the kept descriptor reads EAGAIN, not EOF.  */
  cr_assert_eq (read (kept, buf, sizeof buf), -1);
  cr_assert_eq (errno, EAGAIN);

  /* QEMU's `file,path=FIFO,append=on`: a blocking open for writing, which
     would hang without a reader.  */
  int q = open (fifo, O_WRONLY | O_APPEND | O_CLOEXEC);
  cr_assert (q >= 0, "%s", strerror (errno));
  cr_assert_eq (write (q, "boot line\n", 10), 10);
  cr_assert_eq (read (kept, buf, sizeof buf), 10);
  cr_assert_str_eq (buf, "boot line\n");
  /* QEMU exiting does not give the reader EOF (the supervisor holds a
     writer too); the next QEMU can open it again.  */
  close (q);
  cr_assert_eq (read (kept, buf, sizeof buf), -1);
  cr_assert_eq (errno, EAGAIN);
  q = open (fifo, O_WRONLY | O_CLOEXEC);
  cr_assert (q >= 0);
  close (q);
  avm_resources_free (r);
  cr_assert (!exists (fifo));
}

Test (resources, existing_fifo_reused_and_kept)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *fifo = path_in (dir, "shared"), *file = path_in (dir, "plain");
  _cleanup_json_ json_t *res = parsef ("[{\"name\": \"s\", \"type\": \"fifo\", \"path\": \"%s\"}]", fifo);
  _cleanup_json_ json_t *bad = parsef ("[{\"name\": \"p\", \"type\": \"fifo\", \"path\": \"%s\"}]", file);
  struct avm_resources *r = NULL;
  struct stat st;

  cr_assert_eq (mkfifo (fifo, 0640), 0);
  cr_assert_eq (create (res, &r, &err), 0, "%s", err ? err->msg : "");
  /* Not ours: the mode is left alone and free leaves it in place.  */
  cr_assert_eq (lstat (fifo, &st), 0);
  cr_assert_eq (st.st_mode & 07777, 0640);
  avm_resources_free (r);
  cr_assert (exists (fifo));

  free (tu_write (dir, "plain", "not a fifo"));
  cr_assert_lt (create (bad, &r, &err), 0);
  cr_assert_null (r);
  _cleanup_free_ char *want = NULL;
  cr_assert (asprintf (&want, "resource p: %s exists and is not a FIFO", file) > 0);
  cr_assert_str_eq (err->msg, want);
  _cleanup_free_ char *content = tu_read (file);
  cr_assert_str_eq (content, "not a fifo");
}

Test (resources, unix_socket_stale_and_live)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *sock = path_in (dir, "x.sock"), *want = NULL;
  _cleanup_json_ json_t *res = parsef ("[{\"name\": \"x\", \"type\": \"unix-listen\", \"path\": \"%s\"}]", sock);
  struct avm_resources *r = NULL;
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int live = -1, c;

  /* A stale socket (nobody accepts on it) is replaced.  */
  strcpy (sa.sun_path, sock);
  leave_socket (sock, false, NULL);
  c = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_eq (connect (c, (struct sockaddr *) &sa, sizeof sa), -1);
  cr_assert_eq (errno, ECONNREFUSED);
  close (c);
  cr_assert_eq (create (res, &r, &err), 0, "%s", err ? err->msg : "");
  c = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_eq (connect (c, (struct sockaddr *) &sa, sizeof sa), 0, "%s", strerror (errno));
  close (c);
  avm_resources_free (r);
  cr_assert (!exists (sock));

  /* A socket someone listens on is not.  */
  leave_socket (sock, true, &live);
  cr_assert_eq (create (res, &r, &err), -EADDRINUSE);
  cr_assert (asprintf (&want, "resource x: %s is in use by another process", sock) > 0);
  cr_assert_str_eq (err->msg, want);
  cr_assert (exists (sock));
  close (live);
  unlink (sock);

  /* Something else is never removed.  */
  free (tu_write (dir, "x.sock", "data"));
  cr_assert_lt (create (res, &r, &err), 0);
  free (want);
  cr_assert (asprintf (&want, "resource x: %s exists and is not a socket", sock) > 0);
  cr_assert_str_eq (err->msg, want);
  _cleanup_free_ char *content = tu_read (sock);
  cr_assert_str_eq (content, "data");
}

Test (resources, tcp_in_use)
{
  _cleanup_error_ avm_error_t err = NULL;
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t sl = sizeof sa;
  int busy = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_eq (bind (busy, (struct sockaddr *) &sa, sizeof sa), 0);
  cr_assert_eq (listen (busy, 1), 0);
  cr_assert_eq (getsockname (busy, (struct sockaddr *) &sa, &sl), 0);
  int port = ntohs (sa.sin_port);
  /* No address: 127.0.0.1 is the default.  */
  _cleanup_json_ json_t *res = parsef ("[{\"name\": \"adb_tcp\", \"type\": \"tcp-listen\", \"port\": %d}]", port);
  struct avm_resources *r = NULL;
  _cleanup_free_ char *want = NULL;

  cr_assert_eq (create (res, &r, &err), -EADDRINUSE);
  cr_assert_null (r);
  cr_assert (asprintf (&want,
                       "resource adb_tcp: 127.0.0.1:%d is already in use (another instance or program listens there)",
                       port)
             > 0);
  cr_assert_str_eq (err->msg, want);
  cr_assert_eq (err->exit_code, AVM_EXIT_FAILURE);
  close (busy);

  /* Once it is free, the default address is used.  */
  cr_assert_eq (create (res, &r, &err), 0, "%s", err ? err->msg : "");
  struct sockaddr_in got;
  sl = sizeof got;
  cr_assert_eq (getsockname (avm_resources_fd (r, "adb_tcp"), (struct sockaddr *) &got, &sl), 0);
  cr_assert_eq (got.sin_family, AF_INET);
  cr_assert_eq (ntohl (got.sin_addr.s_addr), INADDR_LOOPBACK);
  avm_resources_free (r);
}

Test (resources, tcp_ipv6_and_bad_address)
{
  _cleanup_error_ avm_error_t err = NULL;
  struct avm_resources *r = NULL;
  _cleanup_json_ json_t *bad
      = parse ("[{\"name\": \"t\", \"type\": \"tcp-listen\", \"port\": 6520, \"address\": \"localhost\"}]");

  cr_assert_eq (create (bad, &r, &err), -EINVAL);
  cr_assert_str_eq (err->msg, "resource t: address \"localhost\" is not a literal IPv4 or IPv6 address");
  cr_assert_eq (err->exit_code, AVM_EXIT_USAGE);

  _cleanup_json_ json_t *v6
      = parse ("[{\"name\": \"t\", \"type\": \"tcp-listen\", \"port\": 0, \"address\": \"::1\"}]");
  int rr = create (v6, &r, &err);
  if (rr == -EADDRNOTAVAIL || rr == -EAFNOSUPPORT)
    cr_skip_test ("no IPv6 loopback: %s", err->msg);
  cr_assert_eq (rr, 0, "%s", err ? err->msg : "");
  const struct avm_resource_fd *t = avm_resources_find (r, "t");
  cr_assert_gt (t->port, 0);
  struct sockaddr_in6 got;
  socklen_t sl = sizeof got;
  cr_assert_eq (getsockname (t->fd, (struct sockaddr *) &got, &sl), 0);
  cr_assert_eq (got.sin6_family, AF_INET6);
  avm_resources_free (r);
}

Test (resources, vsock_or_clear_error)
{
  _cleanup_error_ avm_error_t err = NULL;
  struct avm_resources *r = NULL;
  int port = 20000 + getpid () % 20000;
  _cleanup_json_ json_t *res = parsef ("[{\"name\": \"modem_vsock\", \"type\": \"vsock-listen\", \"port\": %d}]", port);

  int rr = create (res, &r, &err);
  if (rr == 0)
    {
      const struct avm_resource_fd *v = avm_resources_find (r, "modem_vsock");
      cr_assert_eq (v->port, port);
      cr_assert_str_eq (v->type, "vsock-listen");
      cr_assert (fcntl (v->fd, F_GETFD) & FD_CLOEXEC);
      int acc = 0;
      socklen_t al = sizeof acc;
      cr_assert_eq (getsockopt (v->fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al), 0);
      cr_assert_eq (acc, 1);
      avm_resources_free (r);
    }
  else if (rr == -EADDRINUSE)
    {
      _cleanup_free_ char *want = NULL;
      cr_assert (asprintf (&want, "resource modem_vsock: vsock port %d is already in use", port) > 0);
      cr_assert_str_eq (err->msg, want);
    }
  else
    cr_assert_str_eq (err->msg, "resource modem_vsock: AF_VSOCK is not available (load vhost_vsock, pass "
                                "/dev/vhost-vsock to the container, or use the vhost-user vsock option)");
}

/* A host without vsock, whatever this one has: socket(AF_VSOCK, ...) fails
   with ERRNUM under a seccomp filter (this test's process only).  */
static bool
deny_vsock (int errnum)
{
  struct sock_filter code[] = {
    BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr)),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 3),
    BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[0])),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, AF_VSOCK, 0, 1),
    BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (errnum & SECCOMP_RET_DATA)),
    BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { .len = ARRAY_SIZE (code), .filter = code };
  return prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

Test (resources, vsock_unavailable_message)
{
  static const int errnums[] = { EAFNOSUPPORT, ENODEV };
  _cleanup_free_ char *fifo = path_in (dir, "before-vsock");
  _cleanup_json_ json_t *res = parsef ("[{\"name\": \"f\", \"type\": \"fifo\", \"path\": \"%s\"},"
                                       " {\"name\": \"modem_vsock\", \"type\": \"vsock-listen\", \"port\": 9600}]",
                                       fifo);
  for (size_t i = 0; i < ARRAY_SIZE (errnums); i++)
    {
      pid_t child = fork ();
      cr_assert (child >= 0);
      if (child == 0)
        {
          avm_error_t err = NULL;
          struct avm_resources *r = NULL;
          if (!deny_vsock (errnums[i]))
            _exit (77);
          int rr = create (res, &r, &err);
          bool ok = rr == -errnums[i] && !r && err
                    && streq (err->msg, "resource modem_vsock: AF_VSOCK is not available (load vhost_vsock, pass "
                                        "/dev/vhost-vsock to the container, or use the vhost-user vsock option)")
                    && !exists (fifo);
          if (!ok)
            fprintf (stderr, "rr %d: %s\n", rr, err ? err->msg : "(no error)");
          avm_error_free (err);
          _exit (ok ? 0 : 1);
        }
      int status;
      cr_assert_eq (waitpid (child, &status, 0), child);
      if (WIFEXITED (status) && WEXITSTATUS (status) == 77)
        cr_skip_test ("cannot install a seccomp filter");
      cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0, "errno %d", errnums[i]);
    }
}

Test (resources, rollback_on_failure)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *fifo = path_in (dir, "first"), *pair = path_in (dir, "pair");
  _cleanup_free_ char *sock = path_in (dir, "ok.sock"), *missing = path_in (dir, "no/such/dir/x.sock");
  _cleanup_json_ json_t *res = parsef ("[{\"name\": \"first\", \"type\": \"fifo\", \"path\": \"%s\"},"
                                       " {\"name\": \"pipe\", \"type\": \"pipe\"},"
                                       " {\"name\": \"pair\", \"type\": \"fifo-pair\", \"path\": \"%s\"},"
                                       " {\"name\": \"ok\", \"type\": \"unix-listen\", \"path\": \"%s\"},"
                                       " {\"name\": \"broken\", \"type\": \"unix-listen\", \"path\": \"%s\"}]",
                                       fifo, pair, sock, missing);
  struct avm_resources *r = (struct avm_resources *) 1;
  int before = count_fds ();

  cr_assert_lt (create (res, &r, &err), 0);
  cr_assert_null (r);
  cr_assert_not_null (strstr (err->msg, "resource broken: cannot bind"), "%s", err->msg);
  cr_assert_not_null (strstr (err->msg, missing), "%s", err->msg);
  cr_assert_eq (count_entries (dir), 0);
  cr_assert_eq (count_fds (), before);

  /* Second resource fails: the first one's FIFO is removed.  */
  _cleanup_json_ json_t *two = parsef ("[{\"name\": \"first\", \"type\": \"fifo\", \"path\": \"%s\"},"
                                       " {\"name\": \"second\", \"type\": \"fifo\", \"path\": \"%s\"}]",
                                       fifo, missing);
  cr_assert_eq (create (two, &r, &err), -ENOENT);
  cr_assert_not_null (strstr (err->msg, "resource second: cannot create FIFO"), "%s", err->msg);
  cr_assert (!exists (fifo));
  cr_assert_eq (count_fds (), before);

  /* The second half of a pair.  */
  _cleanup_free_ char *pout = path_in (dir, "pair.out"), *pin = path_in (dir, "pair.in");
  free (tu_write (dir, "pair.out", "in the way"));
  _cleanup_json_ json_t *half = parsef ("[{\"name\": \"pair\", \"type\": \"fifo-pair\", \"path\": \"%s\"}]", pair);
  cr_assert_lt (create (half, &r, &err), 0);
  cr_assert (!exists (pin));
  cr_assert (exists (pout));
  cr_assert_eq (count_fds (), before);
}

/* socketpair: the helper's end and the supervisor's peer are connected;
   directory: created with missing parents, kept at free; port: nothing.  */
Test (resources, socketpair_directory_and_port)
{
  char *tmp = tu_tmpdir ();
  _cleanup_free_ char *deep = NULL;
  cr_assert_geq (asprintf (&deep, "%s/a/b/c", tmp), 0);
  _cleanup_free_ char *text = NULL;
  cr_assert_geq (asprintf (&text,
                           "[{\"name\": \"sp\", \"type\": \"socketpair\"},"
                           " {\"name\": \"d\", \"type\": \"directory\", \"path\": \"%s\"},"
                           " {\"name\": \"p\", \"type\": \"port\", \"port\": 9301}]",
                           deep),
                 0);
  _cleanup_json_ json_t *res = parse (text);
  _cleanup_error_ avm_error_t err = NULL;
  struct avm_resources *r = NULL;
  int before = count_fds ();
  cr_assert_eq (create (res, &r, &err), 0, "%s", err ? err->msg : "");
  int a = avm_resources_fd (r, "sp"), b = avm_resources_fd (r, "sp.peer");
  cr_assert (a >= 0 && b >= 0 && a != b);
  cr_assert_eq (write (a, "x", 1), 1);
  char c = 0;
  cr_assert_eq (read (b, &c, 1), 1);
  cr_assert_eq (c, 'x');
  cr_assert_eq (fcntl (a, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  struct stat st;
  cr_assert_eq (stat (deep, &st), 0);
  cr_assert (S_ISDIR (st.st_mode));
  cr_assert_eq (st.st_mode & 0777, 0700);
  cr_assert_eq (avm_resources_fd (r, "d"), -1);
  const struct avm_resource_fd *pf = avm_resources_find (r, "p");
  cr_assert_not_null (pf);
  cr_assert_eq (pf->port, 9301);
  cr_assert_eq (pf->fd, -1);
  avm_resources_free (r);
  cr_assert_eq (count_fds (), before);
  cr_assert_eq (stat (deep, &st), 0, "a directory resource is kept");
  tu_rmtree (tmp);
  free (tmp);
}

Test (resources, bad_definitions)
{
  static const struct
  {
    const char *json;
    const char *msg;
  } cases[] = {
    { "[{\"name\": \"a\", \"type\": \"directory\"}]", "resource a: path is required for type directory" },
    { "[{\"name\": \"a\", \"type\": \"port\"}]", "resource a: port is required for type port" },
    { "[{\"name\": \"a\", \"type\": \"fifo\"}]", "resource a: path is required for type fifo" },
    { "[{\"name\": \"a\", \"type\": \"tcp-listen\"}]", "resource a: port is required for type tcp-listen" },
    { "[{\"name\": \"a\", \"type\": \"vsock-listen\", \"port\": 70000}]", "resource a: port 70000 is out of range" },
    { "[{\"name\": \"a\", \"type\": \"pipe\"}, {\"name\": \"a\", \"type\": \"pipe\"}]", "resource a: defined twice" },
  };
  int before = count_fds ();
  for (size_t i = 0; i < ARRAY_SIZE (cases); i++)
    {
      _cleanup_error_ avm_error_t err = NULL;
      _cleanup_json_ json_t *res = parse (cases[i].json);
      struct avm_resources *r = NULL;
      cr_assert_eq (create (res, &r, &err), -EINVAL, "%s", cases[i].json);
      cr_assert_null (r);
      cr_assert_str_eq (err->msg, cases[i].msg);
      cr_assert_eq (err->exit_code, AVM_EXIT_USAGE);
    }
  cr_assert_eq (count_fds (), before);

  /* A socket path longer than sun_path.  */
  {
    char longp[200];
    memset (longp, 'x', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    memcpy (longp, "/tmp/", 5);
    _cleanup_error_ avm_error_t err = NULL;
    _cleanup_json_ json_t *res = parsef ("[{\"name\": \"a\", \"type\": \"unix-listen\", \"path\": \"%s\"}]", longp);
    _cleanup_free_ char *want = NULL;
    struct avm_resources *r = NULL;
    cr_assert_eq (create (res, &r, &err), -EINVAL);
    cr_assert (asprintf (&want, "resource a: socket path %s is longer than 107 bytes", longp) > 0);
    cr_assert_str_eq (err->msg, want);
  }

  /* An empty plan has no resources.  */
  _cleanup_error_ avm_error_t err = NULL;
  struct avm_resources *r = NULL;
  cr_assert_eq (create (NULL, &r, &err), 0);
  cr_assert_eq (avm_resources_count (r), 0);
  avm_resources_free (r);
  avm_resources_free (NULL);
}

Test (resources, no_fd_leaks)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *run = path_in (dir, "avm/1");
  int before = count_fds ();
  struct avm_rundir *d = NULL;

  for (int round = 0; round < 3; round++)
    {
      cr_assert_eq (avm_rundir_acquire (run, &d, &err), 0, "%s", err ? err->msg : "");
      _cleanup_json_ json_t *res
          = parsef ("[{\"name\": \"e\", \"type\": \"pipe\"},"
                    " {\"name\": \"k\", \"type\": \"fifo\", \"path\": \"%s/kernel-log-pipe\", \"log\": true},"
                    " {\"name\": \"km\", \"type\": \"fifo-pair\", \"path\": \"%s/keymaster_fifo_vm\"},"
                    " {\"name\": \"c\", \"type\": \"unix-listen\", \"path\": \"%s/confui.sock\"},"
                    " {\"name\": \"t\", \"type\": \"tcp-listen\", \"port\": 0}]",
                    run, run, run);
      struct avm_resources *r = NULL;
      cr_assert_eq (create (res, &r, &err), 0, "%s", err ? err->msg : "");
      cr_assert_eq (count_fds (), before + 2 + 7);
      assert_cloexec_all (r);
      cr_assert_eq (count_entries (run), 1 + 4);
      avm_resources_free (r);
      cr_assert_eq (count_entries (run), 1);
      cr_assert_eq (avm_rundir_release (d, &err), 0, "%s", err ? err->msg : "");
      cr_assert_eq (count_fds (), before);
    }
}

Test (resources, file_written_private_replacing_symlink_and_removed)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_free_ char *conf = path_in (dir, "bus.conf"), *victim = path_in (dir, "victim");
  _cleanup_json_ json_t *res
      = parsef ("[{\"name\": \"c\", \"type\": \"file\", \"path\": \"%s\", \"content\": \"<busconfig/>\\n\"}]", conf);
  _cleanup_json_ json_t *bad = parsef ("[{\"name\": \"c\", \"type\": \"file\", \"path\": \"%s\"}]", conf);
  struct avm_resources *r = NULL;
  struct stat st;

  /* A stale symlink at the path is replaced, its target left alone.  */
  free (tu_write (dir, "victim", "precious"));
  cr_assert_eq (symlink (victim, conf), 0);
  cr_assert_eq (create (res, &r, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (lstat (conf, &st), 0);
  cr_assert (S_ISREG (st.st_mode));
  cr_assert_eq (st.st_mode & 07777, 0600);
  _cleanup_free_ char *got = tu_read (conf), *kept = tu_read (victim);
  cr_assert_str_eq (got, "<busconfig/>\n");
  cr_assert_str_eq (kept, "precious");
  cr_assert_eq (avm_resources_fd (r, "c"), -1, "a file is not passed to children");
  avm_resources_free (r);
  cr_assert_not (exists (conf));

  cr_assert_lt (create (bad, &r, &err), 0);
  cr_assert_null (r);
  cr_assert_str_eq (err->msg, "resource c: content is required for type file");
}
