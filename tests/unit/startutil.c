/* SPDX-License-Identifier: Apache-2.0 */
#include "test_start.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char **garbage; /* freed at the end of the test */
static size_t ngarbage, garbage_cap;
static unsigned nstarts;
static uid_t chown_uid; /* ts_env_as_user */
/* Notification buffers of every start, freed by ts_env_fini.  */
static char *msgbufs[256];

static char *
keep (char *s)
{
  cr_assert (s);
  if (ngarbage == garbage_cap)
    {
      garbage_cap = garbage_cap ? 2 * garbage_cap : 512;
      garbage = realloc (garbage, garbage_cap * sizeof *garbage);
      cr_assert (garbage);
    }
  garbage[ngarbage++] = s;
  return s;
}

static char proc_state (pid_t pid, pid_t *ppid);

/* Processes other than this one whose command line mentions DIR, zombies
   left out; with KILL they get SIGKILL.  */
static int
procs_under (const char *dir, bool kill_them)
{
  DIR *d = opendir ("/proc");
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir (d)))
    {
      pid_t pid = (pid_t) atoi (e->d_name);
      char path[64], buf[4096];
      if (pid <= 0 || pid == getpid ())
        continue;
      snprintf (path, sizeof path, "/proc/%d/cmdline", pid);
      int fd = open (path, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        continue;
      ssize_t len = read (fd, buf, sizeof buf - 1);
      close (fd);
      for (ssize_t i = 0; i < len; i++)
        if (buf[i] == '\0')
          buf[i] = ' ';
      if (len <= 0 || (buf[len] = '\0', !strstr (buf, dir)) || proc_state (pid, NULL) == 'Z')
        continue;
      if (kill_them)
        kill (pid, SIGKILL);
      n++;
    }
  if (d)
    closedir (d);
  return n;
}

char *
ts_fmt (const char *fmt, ...)
{
  char *s = NULL;
  va_list ap;
  va_start (ap, fmt);
  int r = vasprintf (&s, fmt, ap);
  va_end (ap);
  cr_assert_geq (r, 0);
  return keep (s);
}

void
ts_env_init (struct ts_env *env)
{
  env->fake = getenv ("AVM_FAKEHELPER");
  if (!env->fake || access (env->fake, X_OK) != 0)
    cr_skip_test ("AVM_FAKEHELPER is not set (run through make check)");
  if (access ("/usr/bin/qemu-system-x86_64", X_OK) != 0)
    cr_skip_test ("no qemu-system-x86_64 (qemu-system-x86)");
  env->dir = keep (tu_tmpdir ());
  env->run = ts_fmt ("%s/run", env->dir);
  env->state = ts_fmt ("%s/state", env->dir);
  env->run1 = ts_fmt ("%s/1", env->run);
  nstarts = 0;
}

static int
chown_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) st, (void) flag, (void) ftw;
  return lchown (path, chown_uid, chown_uid);
}

void
ts_env_as_user (struct ts_env *env, uid_t uid, ...)
{
  cr_assert_eq (geteuid (), 0, "ts_env_as_user needs root");
  /* Can UID read what the test names?  Asked of the kernel, as UID.  */
  va_list ap;
  va_start (ap, uid);
  for (const char *p; (p = va_arg (ap, const char *));)
    {
      pid_t pid = fork ();
      cr_assert_geq (pid, 0);
      if (pid == 0)
        _exit (setgroups (0, NULL) < 0 || setgid (uid) < 0 || setuid (uid) < 0 ? 2 : access (p, R_OK) < 0 ? 1 : 0);
      int st;
      cr_assert_eq (waitpid (pid, &st, 0), pid);
      cr_assert (WIFEXITED (st) && WEXITSTATUS (st) != 2, "cannot become uid %u", (unsigned) uid);
      if (WEXITSTATUS (st) != 0)
        {
          va_end (ap);
          cr_skip_test ("uid %u cannot read %s (a source tree or images private to their owner)", (unsigned) uid, p);
        }
    }
  va_end (ap);
  chown_uid = uid;
  cr_assert_eq (nftw (env->dir, chown_entry, 16, FTW_PHYS), 0, "chown %s: %s", env->dir, strerror (errno));
  env->uid = uid;
}

void
ts_env_fini (struct ts_env *env)
{
  /* Nothing this test started may survive it.  */
  if (env->dir)
    {
      procs_under (env->dir, true);
      tu_rmtree (env->dir);
    }
  while (ngarbage > 0)
    free (garbage[--ngarbage]);
  free (garbage);
  garbage = NULL;
  garbage_cap = 0;
  for (size_t i = 0; i < sizeof msgbufs / sizeof msgbufs[0]; i++)
    {
      free (msgbufs[i]);
      msgbufs[i] = NULL;
    }
  memset (env, 0, sizeof *env);
}

char *
ts_path (struct ts_env *env, const char *name)
{
  return ts_fmt ("%s/%s", env->dir, name);
}

char *
ts_boot (int timeout)
{
  return ts_fmt ("\"boot\": {\"console\": \"console\", \"completed\": [\"VIRTUAL_DEVICE_BOOT_COMPLETED\"],"
                 " \"failed\": [\"VIRTUAL_DEVICE_BOOT_FAILED\"], \"timeout\": %d}",
                 timeout);
}

char *
ts_profile (struct ts_env *env, const char *name, const char *services, const char *boot, const char *extra)
{
  char *text
      = ts_fmt ("{\n"
                "  \"description\": \"test profile %s\",\n"
                "  \"machine\": { \"arch\": \"x86_64\", \"type\": \"pc\", \"accel\": \"tcg\", \"cpus\": 1,"
                " \"memory\": \"128M\" },\n"
                "  \"display\": { \"backend\": \"none\", \"gpu\": \"none\" },\n"
                "  \"input\": { \"keyboard\": false, \"touch\": \"none\" },\n"
                "  \"network\": { \"mode\": \"none\" },\n"
                "  \"rng\": false, \"balloon\": false,\n"
                "  \"consoles\": { \"transport\": \"multiport\", \"ports\": [ { \"name\": \"console\","
                " \"kind\": \"log\" } ] },\n"
                "  %s%s\n"
                "  %s%s\n"
                "  \"services\": %s\n"
                "}\n",
                name, boot ? boot : "", boot ? "," : "", extra ? extra : "\"stop\": {\"timeout\": 1}", ",", services);
  char *file = ts_fmt ("%s.json", name);
  return keep (tu_write (env->dir, file, text));
}

char *
ts_console_writes (const char *line)
{
  return ts_fmt ("\"sleep=0.2\", \"write-fd=${fd:console}:%s\", \"sleep=0.3\", \"write-fd=${fd:console}:%s\","
                 " \"sleep=0.5\", \"write-fd=${fd:console}:%s\", \"sleep=1\", \"write-fd=${fd:console}:%s\","
                 " \"sleep=2\", \"write-fd=${fd:console}:%s\", \"sleep=4\", \"write-fd=${fd:console}:%s\","
                 " \"hang\"",
                 line, line, line, line, line, line);
}

/* Run ARGV (NULL-terminated) in the background as avm's, with this
   environment's directories and A's notification socket.  */
static void
spawn_avm (struct ts_env *env, struct ts_avm *a, const char *const *argv)
{
  memset (a, 0, sizeof *a);
  a->status = -1;
  unsigned k = nstarts++;
  cr_assert_lt (k, sizeof msgbufs / sizeof msgbufs[0]);
  a->slot = k;
  a->notify_path = ts_fmt ("%s/notify-%u.sock", env->dir, k);
  a->stderr_path = ts_fmt ("%s/stderr-%u.txt", env->dir, k);
  a->notify_fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  cr_assert_geq (a->notify_fd, 0);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  cr_assert_lt (strlen (a->notify_path), sizeof sa.sun_path);
  strcpy (sa.sun_path, a->notify_path);
  cr_assert_eq (bind (a->notify_fd, (struct sockaddr *) &sa, sizeof sa), 0, "bind %s: %s", a->notify_path,
                strerror (errno));

  if (env->uid)
    cr_assert_eq (chmod (a->notify_path, 0666), 0, "%s: %s", a->notify_path, strerror (errno));
  a->pid = fork ();
  cr_assert_geq (a->pid, 0);
  if (a->pid == 0)
    {
      int fd = open (a->stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int null = open ("/dev/null", O_RDWR);
      if (fd < 0 || null < 0)
        _exit (126);
      dup2 (null, 0);
      dup2 (null, 1);
      dup2 (fd, 2);
      if (env->uid && (setgroups (0, NULL) < 0 || setgid (env->uid) < 0 || setuid (env->uid) < 0))
        _exit (126);
      setenv ("AVM_RUNTIME_DIR", env->run, 1);
      setenv ("AVM_STATE_DIR", env->state, 1);
      setenv ("NOTIFY_SOCKET", a->notify_path, 1);
      unsetenv ("JOURNAL_STREAM");
      execv (argv[0], (char **) argv);
      _exit (127);
    }
}

static void
start (struct ts_env *env, struct ts_avm *a, const char *profile, const char *wrapper, va_list ap)
{
  const char *argv[64];
  size_t n = 0;
  if (wrapper)
    {
      argv[n++] = wrapper;
      argv[n++] = "--pid";
      argv[n++] = "--fork";
      argv[n++] = "--mount-proc";
    }
  argv[n++] = tu_avm_bin ();
  argv[n++] = "start";
  argv[n++] = "--profile";
  argv[n++] = profile;
  /* The tests' own profiles (files) run the fault-injection helper, which
     is no approved helper; the shipped ones (names) must be approved.  */
  if (strchr (profile, '/'))
    argv[n++] = "--allow-unapproved";
  for (const char *s; (s = va_arg (ap, const char *)) && n < 62;)
    argv[n++] = s;
  argv[n] = NULL;
  spawn_avm (env, a, argv);
}

void
ts_spawn (struct ts_env *env, struct ts_avm *a, char *const argv[])
{
  spawn_avm (env, a, (const char *const *) argv);
}

void
ts_start_argv (struct ts_env *env, struct ts_avm *a, char *const args[])
{
  const char *argv[64];
  size_t n = 0;
  argv[n++] = tu_avm_bin ();
  for (size_t i = 0; args[i] && n < 63; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  spawn_avm (env, a, argv);
}

void
ts_start (struct ts_env *env, struct ts_avm *a, const char *profile, ...)
{
  va_list ap;
  va_start (ap, profile);
  start (env, a, profile, NULL, ap);
  va_end (ap);
}

void
ts_start_wrapped (struct ts_env *env, struct ts_avm *a, const char *profile, const char *wrapper, ...)
{
  va_list ap;
  va_start (ap, wrapper);
  start (env, a, profile, wrapper, ap);
  va_end (ap);
}

double
ts_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
take (struct ts_avm *a, int timeout_ms)
{
  struct pollfd p = { .fd = a->notify_fd, .events = POLLIN };
  while (poll (&p, 1, timeout_ms) == 1)
    {
      char buf[4096];
      ssize_t n = recv (a->notify_fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0)
        break;
      a->msgs = realloc (a->msgs, a->len + n + 2);
      memcpy (a->msgs + a->len, buf, n);
      a->len += n;
      a->msgs[a->len++] = '\n';
      a->msgs[a->len] = '\0';
      timeout_ms = 0;
    }
  if (!a->msgs)
    a->msgs = calloc (1, 1);
  msgbufs[a->slot] = a->msgs;
}

char *
ts_stderr (struct ts_avm *a)
{
  return keep (tu_read (a->stderr_path));
}

char *
ts_wait_notify (struct ts_avm *a, const char *what, double timeout)
{
  timeout *= AVM_TEST_TIME_SCALE;
  double end = ts_now () + timeout;
  for (;;)
    {
      take (a, 50);
      if (strstr (a->msgs, what))
        return a->msgs;
      int st;
      if (a->status < 0 && waitpid (a->pid, &st, WNOHANG) == a->pid)
        {
          a->status = WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
          take (a, 0);
          if (strstr (a->msgs, what))
            return a->msgs;
          cr_assert_fail ("avm exited (%d) before %s; notifications:\n%s\nstderr:\n%s", a->status, what, a->msgs,
                          ts_stderr (a));
        }
      if (ts_now () > end)
        {
          kill (a->pid, SIGKILL);
          cr_assert_fail ("no %s within %.0f s; notifications:\n%s\nstderr:\n%s", what, timeout, a->msgs,
                          ts_stderr (a));
        }
    }
}

char *
ts_notify_all (struct ts_avm *a)
{
  take (a, 0);
  return a->msgs;
}

int
ts_wait (struct ts_avm *a, double timeout)
{
  timeout *= AVM_TEST_TIME_SCALE;
  double end = ts_now () + timeout;
  while (a->status < 0)
    {
      int st;
      pid_t r = waitpid (a->pid, &st, WNOHANG);
      if (r == a->pid)
        a->status = WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
      else if (ts_now () > end)
        {
          kill (a->pid, SIGKILL);
          waitpid (a->pid, NULL, 0);
          cr_assert_fail ("avm still running after %.0f s; stderr:\n%s", timeout, ts_stderr (a));
        }
      else
        usleep (10000);
    }
  take (a, 0);
  return a->status;
}

void
ts_avm_done (struct ts_avm *a)
{
  if (a->notify_fd >= 0)
    close (a->notify_fd);
  unlink (a->notify_path);
  free (a->msgs);
  msgbufs[a->slot] = NULL;
  a->msgs = NULL;
  a->notify_fd = -1;
}

int
ts_avm (struct ts_env *env, char **out, ...)
{
  const char *argv[32];
  size_t n = 0;
  argv[n++] = tu_avm_bin ();
  va_list ap;
  va_start (ap, out);
  for (const char *s; (s = va_arg (ap, const char *)) && n < 31;)
    argv[n++] = s;
  va_end (ap);
  argv[n] = NULL;
  char *e1 = ts_fmt ("AVM_RUNTIME_DIR=%s", env->run), *e2 = ts_fmt ("AVM_STATE_DIR=%s", env->state);
  char *envv[] = { e1, e2, NULL };
  char *o = NULL, *err = NULL;
  int r = tu_run ((char **) argv, envv, &o, &err);
  free (err);
  *out = o ? keep (o) : NULL;
  return r;
}

json_t *
ts_json (const char *text)
{
  json_error_t e;
  json_t *j = json_loads (text ? text : "", 0, &e);
  cr_assert (j, "not JSON (%s): %s", e.text, text);
  return j;
}

size_t
ts_pids (struct ts_env *env, pid_t *pids, size_t max)
{
  char *out = NULL;
  cr_assert_eq (ts_avm (env, &out, "status", "--json", NULL), 0, "%s", out);
  json_t *st = ts_json (out);
  size_t n = 0, i;
  json_t *s;
  json_array_foreach (json_object_get (st, "services"), i, s)
    if (json_is_integer (json_object_get (s, "pid")) && n < max)
      pids[n++] = (pid_t) json_integer_value (json_object_get (s, "pid"));
  json_t *q = json_object_get (json_object_get (st, "qemu"), "pid");
  if (json_is_integer (q) && n < max)
    pids[n++] = (pid_t) json_integer_value (q);
  json_decref (st);
  return n;
}

pid_t
ts_qemu_pid (struct ts_env *env)
{
  char *out = NULL;
  cr_assert_eq (ts_avm (env, &out, "status", "--json", NULL), 0, "%s", out);
  json_t *st = ts_json (out);
  pid_t pid = (pid_t) json_integer_value (json_object_get (json_object_get (st, "qemu"), "pid"));
  json_decref (st);
  return pid;
}

/* 'Z' for a zombie, 0 when gone, else the state letter.  */
static char
proc_state (pid_t pid, pid_t *ppid)
{
  char path[64], buf[512];
  snprintf (path, sizeof path, "/proc/%d/stat", pid);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  char *p = strrchr (buf, ')');
  char st = 0;
  int pp = 0;
  if (!p || sscanf (p + 1, " %c %d", &st, &pp) != 2)
    return 0;
  if (ppid)
    *ppid = pp;
  return st;
}

void
ts_assert_gone (const pid_t *pids, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      double end = ts_now () + 5;
      char st;
      while ((st = proc_state (pids[i], NULL)) != 0 && st != 'Z' && ts_now () < end)
        usleep (10000);
      cr_assert (st == 0 || st == 'Z', "process %d is still running", (int) pids[i]);
    }
}

void
ts_kill_pids (const pid_t *pids, size_t n)
{
  for (size_t i = 0; i < n; i++)
    kill (pids[i], SIGKILL);
}

char *
ts_read_log (struct ts_env *env, const char *name)
{
  char *path = ts_fmt ("%s/1/logs/%s", env->state, name);
  char *t = tu_read (path);
  cr_assert (t, "no log %s", path);
  return keep (t);
}

int
ts_count_lines (const char *path)
{
  FILE *f = fopen (path, "r");
  int n = 0, c;
  if (!f)
    return 0;
  while ((c = fgetc (f)) != EOF)
    n += c == '\n';
  fclose (f);
  return n;
}

int
ts_count_fds (void)
{
  DIR *d = opendir ("/proc/self/fd");
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir (d)))
    n += e->d_name[0] != '.';
  if (d)
    closedir (d);
  return n;
}

static int
scan_procs (pid_t parent, bool zombies_only, pid_t *first)
{
  DIR *d = opendir ("/proc");
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir (d)))
    {
      pid_t pid = (pid_t) atoi (e->d_name), pp = 0;
      if (pid <= 0)
        continue;
      char st = proc_state (pid, &pp);
      if (!st || pp != parent || (zombies_only && st != 'Z'))
        continue;
      if (first && !*first)
        *first = pid;
      n++;
    }
  if (d)
    closedir (d);
  return n;
}

pid_t
ts_child_of (pid_t parent)
{
  pid_t first = 0;
  scan_procs (parent, false, &first);
  return first;
}

int
ts_zombies_of (pid_t parent)
{
  return scan_procs (parent, true, NULL);
}

int
ts_count_procs_under (const char *dir)
{
  return procs_under (dir, false);
}

int
ts_count_unix_sockets_under (const char *dir)
{
  char *t = tu_read ("/proc/net/unix");
  int n = 0;
  for (char *p = t; p && (p = strstr (p, dir)); p++)
    n++;
  free (t);
  return n;
}
