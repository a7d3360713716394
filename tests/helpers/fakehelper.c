/* SPDX-License-Identifier: Apache-2.0 */
/* avm-fakehelper: a fault-injection "service" for the supervisor's tests.

   Each argument is one action, `name` or `name=value`, run left to right:

     print=TEXT          TEXT and a newline on stdout (write(2), unbuffered)
     stderr=TEXT         the same on stderr
     listen=PATH         AF_UNIX stream socket bound to PATH, listening, kept open
     touch=PATH          create the regular file PATH
     notify=TEXT         TEXT as one datagram to $NOTIFY_SOCKET (a path or
                         @abstract); the two characters `\n` mean a newline
     sleep=SECONDS       sleep (fractions allowed), restarting on EINTR
     exit=N              exit with status N
     crash               die by SIGSEGV (default disposition, no core dump)
     kill=SIG            raise signal number SIG on itself
     ignore-term         ignore SIGTERM, SIGINT and SIGHUP
     hang                pause() forever
     flood=BYTES         BYTES bytes of 64-byte text lines on stdout
     flood-nolf=BYTES    the same without any newline
     fork-orphan=SECONDS print "orphan PID", then a child (same process group,
                         same descriptors) sleeps SECONDS and exits while this
                         process goes on with the next action
     count=PATH          append this process's pid and a newline to PATH
     fail-first=PATH:N   exit 3 when PATH has fewer than N lines
     pidfile=PATH        write the pid to PATH (atomically: temporary + rename)
     env=NAME            print "NAME=value", or "NAME unset"
     fds                 print "fds: 0 1 2 ..." (the open descriptors)
     echo-fd=N           copy descriptor N to stdout until end of file
     write-fd=N:TEXT     write TEXT and a newline to descriptor N
     write-file=PATH:TEXT  write TEXT and a newline to PATH (replacing it)
     cat=PATH            print "cat PATH: " and PATH's first line, or
                         "cat PATH: absent"
     snapshot-control=N  serve Cuttlefish's snapshot control on descriptor N
                         as secure_env does (a LauncherAction: 'A', a u32
                         length, the ExtendedLauncherAction protobuf with
                         suspend or resume set), forever: print "snapshot:
                         suspend" or "snapshot: resume" and answer 'S'
     snapshot-mute=N     the same, printing "snapshot: suspend (mute)",
                         never answering

   An unknown action or a malformed value: a message and exit status 2.  A
   failing system call: a message and exit status 1.  After the last action
   the status is 0.  Standalone: libc only, not linked with libavm.  */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PROG "avm-fakehelper"

static const char *current; /* the action being run, for messages */

static void __attribute__ ((format (printf, 2, 3), noreturn)) die (int status, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  dprintf (STDERR_FILENO, "%s: %s\n", PROG, msg);
  _exit (status);
}

static void __attribute__ ((noreturn)) die_errno (const char *what)
{
  die (1, "%s: %s: %s", current, what, strerror (errno));
}

static void __attribute__ ((noreturn)) bad_value (void) { die (2, "bad value in '%s'", current); }

/* Write all of BUF to FD; blocking, restarting on EINTR.  */
static void
write_all (int fd, const char *buf, size_t len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, buf, len);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          die_errno ("write");
        }
      buf += n;
      len -= (size_t) n;
    }
}

static void
write_line (int fd, const char *text)
{
  size_t len = strlen (text);
  char *buf = malloc (len + 1);
  if (!buf)
    die_errno ("malloc");
  memcpy (buf, text, len);
  buf[len] = '\n';
  write_all (fd, buf, len + 1); /* one write: lines from concurrent writers do not interleave */
  free (buf);
}

static long long
parse_number (const char *s, long long min, long long max)
{
  char *end;
  errno = 0;
  long long v = strtoll (s, &end, 10);
  if (errno || end == s || *end || v < min || v > max)
    bad_value ();
  return v;
}

static int
parse_fd (const char *s)
{
  return (int) parse_number (s, 0, INT_MAX);
}

/* A size: a decimal number with an optional K, M or G (powers of 1024).  */
static unsigned long long
parse_size (const char *s)
{
  char *end;
  errno = 0;
  if (*s == '-')
    bad_value ();
  unsigned long long v = strtoull (s, &end, 10);
  if (errno || end == s)
    bad_value ();
  unsigned shift = 0;
  switch (*end)
    {
    case '\0':
      break;
    case 'K':
      shift = 10;
      break;
    case 'M':
      shift = 20;
      break;
    case 'G':
      shift = 30;
      break;
    default:
      bad_value ();
    }
  if (*end && end[1])
    bad_value ();
  if (shift && v > (~0ULL >> shift))
    bad_value ();
  return v << shift;
}

static void
sleep_seconds (const char *s)
{
  char *end;
  errno = 0;
  double d = strtod (s, &end);
  if (errno || end == s || *end || !(d >= 0) || d > 1e9)
    bad_value ();
  struct timespec ts = { (time_t) d, (long) ((d - (double) (time_t) d) * 1e9) };
  if (ts.tv_nsec >= 1000000000L)
    ts.tv_nsec = 999999999L;
  while (nanosleep (&ts, &ts) < 0)
    if (errno != EINTR)
      die_errno ("nanosleep");
}

/* Split "A:B" at the first (FIRST) or last colon; returns B, A is cut.  */
static char *
split_colon (char *s, int first)
{
  char *c = first ? strchr (s, ':') : strrchr (s, ':');
  if (!c)
    bad_value ();
  *c = '\0';
  return c + 1;
}

static void
do_listen (const char *path)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  if (strlen (path) >= sizeof sa.sun_path)
    bad_value ();
  strcpy (sa.sun_path, path);
  struct stat st;
  if (lstat (path, &st) == 0 && S_ISSOCK (st.st_mode) && unlink (path) < 0)
    die_errno ("unlink");
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die_errno ("socket");
  if (bind (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    die_errno ("bind");
  if (listen (fd, 16) < 0)
    die_errno ("listen");
  /* Kept open until exit; nobody accepts.  */
}

static void
do_touch (const char *path)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    die_errno ("open");
  close (fd);
}

static void
do_notify (const char *text)
{
  const char *where = getenv ("NOTIFY_SOCKET");
  if (!where || !*where)
    die (1, "%s: NOTIFY_SOCKET is not set", current);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  size_t wlen = strlen (where);
  if (wlen >= sizeof sa.sun_path)
    die (1, "%s: NOTIFY_SOCKET too long", current);
  memcpy (sa.sun_path, where, wlen);
  socklen_t salen = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + wlen);
  if (where[0] == '@')
    sa.sun_path[0] = '\0'; /* abstract: exactly the name's length */
  else
    salen++;

  size_t len = strlen (text), n = 0;
  char *msg = malloc (len + 1);
  if (!msg)
    die_errno ("malloc");
  for (size_t i = 0; i < len; i++)
    if (text[i] == '\\' && text[i + 1] == 'n')
      {
        msg[n++] = '\n';
        i++;
      }
    else
      msg[n++] = text[i];

  int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die_errno ("socket");
  ssize_t r;
  do
    r = sendto (fd, msg, n, MSG_NOSIGNAL, (struct sockaddr *) &sa, salen);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    die_errno (where);
  close (fd);
  free (msg);
}

static void __attribute__ ((noreturn)) do_crash (void)
{
  struct rlimit rl = { 0, 0 };
  setrlimit (RLIMIT_CORE, &rl);
  struct sigaction sa = { .sa_handler = SIG_DFL };
  sigemptyset (&sa.sa_mask);
  sigaction (SIGSEGV, &sa, NULL);
  sigset_t set;
  sigemptyset (&set);
  sigaddset (&set, SIGSEGV);
  sigprocmask (SIG_UNBLOCK, &set, NULL);
  raise (SIGSEGV);
  die (1, "crash: still alive after SIGSEGV");
}

static void
do_ignore_term (void)
{
  struct sigaction sa = { .sa_handler = SIG_IGN };
  sigemptyset (&sa.sa_mask);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
}

/* BYTES bytes of "flood 000000001 xxx...\n" lines, 64 bytes each (the last
   one cut short); with NOLF the newlines are 'x' too.  */
static void
do_flood (unsigned long long bytes, int nolf)
{
  enum
  {
    LINE = 64,
    LINES = 1024
  };
  static char buf[LINE * LINES];
  unsigned long long line = 1;
  while (bytes > 0)
    {
      size_t len = 0;
      for (int i = 0; i < LINES && len < bytes; i++, line++)
        {
          char *p = buf + len;
          int h = snprintf (p, LINE, "flood %09llu ", line % 1000000000ULL);
          memset (p + h, 'x', LINE - h);
          p[LINE - 1] = nolf ? 'x' : '\n';
          len += LINE;
        }
      if (len > bytes)
        len = (size_t) bytes;
      write_all (STDOUT_FILENO, buf, len);
      bytes -= len;
    }
}

static void
do_fork_orphan (const char *seconds)
{
  /* Check the value before forking: the child must not report it twice.  */
  char *end;
  errno = 0;
  double d = strtod (seconds, &end);
  if (errno || end == seconds || *end || !(d >= 0))
    bad_value ();
  pid_t pid = fork ();
  if (pid < 0)
    die_errno ("fork");
  if (pid == 0)
    {
      sleep_seconds (seconds);
      _exit (0);
    }
  char line[64];
  snprintf (line, sizeof line, "orphan %d", (int) pid);
  write_line (STDOUT_FILENO, line);
}

static void
do_count (const char *path)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    die_errno ("open");
  char line[32];
  snprintf (line, sizeof line, "%d", (int) getpid ());
  write_line (fd, line);
  close (fd);
}

static void
do_fail_first (char *value)
{
  char *nstr = split_colon (value, 0);
  long long n = parse_number (nstr, 0, LLONG_MAX);
  long long lines = 0;
  int fd = open (value, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno != ENOENT)
    die_errno ("open");
  if (fd >= 0)
    {
      char buf[4096];
      ssize_t r;
      while ((r = read (fd, buf, sizeof buf)) != 0)
        {
          if (r < 0)
            {
              if (errno == EINTR)
                continue;
              die_errno ("read");
            }
          for (ssize_t i = 0; i < r; i++)
            lines += buf[i] == '\n';
        }
      close (fd);
    }
  if (lines < n)
    _exit (3);
}

static void
do_pidfile (const char *path)
{
  char *tmp = NULL;
  if (asprintf (&tmp, "%s.tmp.%d", path, (int) getpid ()) < 0)
    die_errno ("asprintf");
  int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    die_errno ("open");
  char line[32];
  snprintf (line, sizeof line, "%d", (int) getpid ());
  write_line (fd, line);
  if (close (fd) < 0)
    die_errno ("close");
  if (rename (tmp, path) < 0)
    die_errno ("rename");
  free (tmp);
}

static void
do_env (const char *name)
{
  const char *v = getenv (name);
  char *line = NULL;
  if ((v ? asprintf (&line, "%s=%s", name, v) : asprintf (&line, "%s unset", name)) < 0)
    die_errno ("asprintf");
  write_line (STDOUT_FILENO, line);
  free (line);
}

static int
cmp_int (const void *a, const void *b)
{
  int x = *(const int *) a, y = *(const int *) b;
  return (x > y) - (x < y);
}

static void
do_fds (void)
{
  DIR *d = opendir ("/proc/self/fd");
  if (!d)
    die_errno ("/proc/self/fd");
  int self = dirfd (d), *fds = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir (d)))
    {
      if (e->d_name[0] < '0' || e->d_name[0] > '9')
        continue;
      int fd = atoi (e->d_name);
      if (fd == self)
        continue;
      if (n == cap)
        {
          cap = cap ? 2 * cap : 16;
          fds = realloc (fds, cap * sizeof *fds);
          if (!fds)
            die_errno ("realloc");
        }
      fds[n++] = fd;
    }
  closedir (d);
  if (n)
    qsort (fds, n, sizeof *fds, cmp_int);
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream (&buf, &len);
  if (!m)
    die_errno ("open_memstream");
  fputs ("fds:", m);
  for (size_t i = 0; i < n; i++)
    fprintf (m, " %d", fds[i]);
  fclose (m);
  write_line (STDOUT_FILENO, buf);
  free (buf);
  free (fds);
}

static void
do_echo_fd (int fd)
{
  char buf[8192];
  for (;;)
    {
      ssize_t r = read (fd, buf, sizeof buf);
      if (r == 0)
        break;
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          die_errno ("read");
        }
      write_all (STDOUT_FILENO, buf, (size_t) r);
    }
}

static void
do_write_file (const char *path, const char *text)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    die_errno ("open");
  write_line (fd, text);
  close (fd);
}

static void
do_cat (const char *path)
{
  char buf[256], line[512];
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read (fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0)
    close (fd);
  if (n < 0)
    n = 0;
  buf[n] = '\0';
  buf[strcspn (buf, "\n")] = '\0';
  snprintf (line, sizeof line, "cat %s: %s", path, fd >= 0 ? buf : "absent");
  write_line (STDOUT_FILENO, line);
}

static int
read_exact (int fd, void *buf, size_t len)
{
  size_t got = 0;
  while (got < len)
    {
      ssize_t n = read (fd, (char *) buf + got, len - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return -1;
      got += (size_t) n;
    }
  return 0;
}

/* secure_env's SnapshotCommandHandler (google/android-cuttlefish
   base/cvd/cuttlefish/host/commands/secure_env/suspend_resume_handler.cpp):
   a LauncherAction read with ReadLauncherActionFromFd (command_util/
   util.cc: 'A', a host-order uint32 length, the serialized
   ExtendedLauncherAction: suspend is field 5, resume field 6), answered
   with LauncherResponse::kSuccess ('S').  */
static void
do_snapshot_control (int fd, bool mute)
{
  for (;;)
    {
      unsigned char action, msg[64];
      uint32_t len;
      if (read_exact (fd, &action, 1) < 0 || action != 'A' || read_exact (fd, &len, 4) < 0 || len > sizeof msg
          || read_exact (fd, msg, len) < 0 || len < 1)
        die (1, "%s: not a LauncherAction (or end of file)", current);
      const char *what = msg[0] == 0x2a ? "suspend" : msg[0] == 0x32 ? "resume" : "unsupported";
      char line[64];
      snprintf (line, sizeof line, "snapshot: %s%s", what, mute ? " (mute)" : "");
      write_line (STDOUT_FILENO, line);
      if (mute)
        continue;
      if (!strcmp (what, "unsupported"))
        die (1, "Unsupported run_cvd snapshot command.");
      char ok = 'S';
      if (write (fd, &ok, 1) != 1)
        die_errno ("write");
    }
}

static void
run_action (char *arg)
{
  current = arg;
  char *name = strdup (arg);
  if (!name)
    die_errno ("strdup");
  char *value = strchr (name, '=');
  if (value)
    *value++ = '\0';

  /* Actions without a value.  */
  static const char *const bare[] = { "crash", "ignore-term", "hang", "fds", NULL };
  /* Actions with one.  */
  static const char *const valued[] = { "print",         "stderr",   "listen",     "touch",   "notify",
                                        "sleep",         "exit",     "kill",       "flood",   "flood-nolf",
                                        "fork-orphan",   "count",    "fail-first", "pidfile", "env",
                                        "echo-fd",       "write-fd", "write-file", "cat",     "snapshot-control",
                                        "snapshot-mute", NULL };
  int known = 0;
  for (const char *const *k = value ? valued : bare; *k; k++)
    known |= !strcmp (*k, name);
  if (!known)
    {
      for (const char *const *k = value ? bare : valued; *k; k++)
        if (!strcmp (*k, name))
          die (2, value ? "action '%s' takes no value" : "action '%s' needs a value", arg);
      die (2, "unknown action '%s'", arg);
    }

  if (!strcmp (name, "print"))
    write_line (STDOUT_FILENO, value);
  else if (!strcmp (name, "stderr"))
    write_line (STDERR_FILENO, value);
  else if (!strcmp (name, "listen"))
    do_listen (value);
  else if (!strcmp (name, "touch"))
    do_touch (value);
  else if (!strcmp (name, "notify"))
    do_notify (value);
  else if (!strcmp (name, "sleep"))
    sleep_seconds (value);
  else if (!strcmp (name, "exit"))
    _exit ((int) parse_number (value, 0, 255));
  else if (!strcmp (name, "crash"))
    do_crash ();
  else if (!strcmp (name, "kill"))
    {
      int sig = (int) parse_number (value, 1, SIGRTMAX);
      if (raise (sig) != 0)
        die_errno ("raise");
    }
  else if (!strcmp (name, "ignore-term"))
    do_ignore_term ();
  else if (!strcmp (name, "hang"))
    for (;;)
      pause ();
  else if (!strcmp (name, "flood") || !strcmp (name, "flood-nolf"))
    do_flood (parse_size (value), !strcmp (name, "flood-nolf"));
  else if (!strcmp (name, "fork-orphan"))
    do_fork_orphan (value);
  else if (!strcmp (name, "count"))
    do_count (value);
  else if (!strcmp (name, "fail-first"))
    do_fail_first (value);
  else if (!strcmp (name, "pidfile"))
    do_pidfile (value);
  else if (!strcmp (name, "env"))
    do_env (value);
  else if (!strcmp (name, "fds"))
    do_fds ();
  else if (!strcmp (name, "echo-fd"))
    do_echo_fd (parse_fd (value));
  else if (!strcmp (name, "write-file"))
    {
      char *text = split_colon (value, 1);
      do_write_file (value, text);
    }
  else if (!strcmp (name, "cat"))
    do_cat (value);
  else if (!strcmp (name, "snapshot-control") || !strcmp (name, "snapshot-mute"))
    do_snapshot_control (parse_fd (value), !strcmp (name, "snapshot-mute"));
  else if (!strcmp (name, "write-fd"))
    {
      char *text = split_colon (value, 1);
      write_line (parse_fd (value), text);
    }
  free (name);
}

int
main (int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    run_action (argv[i]);
  return 0;
}
