/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Log sinks (see logsink.h): size-capped rotating log files, a non-blocking
 * tee, line splitting with a bounded buffer, and per-line delivery to a
 * callback, the journal and an echo descriptor.  Nothing here allocates
 * while feeding: the line buffer is part of the sink.
 */
#define SD_JOURNAL_SUPPRESS_LOCATION 1

#include "supervise/logsink.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strfmt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include "supervise/lazy_systemd.h"
#include <time.h>
#include <unistd.h>

#define MSG_PREFIX "MESSAGE="
#define MSG_PREFIX_LEN (sizeof MSG_PREFIX - 1)
#define READ_CHUNK (64 * 1024)

/* Journal fields other than MESSAGE.  */
enum
{
  JF_PRIORITY,
  JF_IDENT,
  JF_INSTANCE,
  JF_STREAM,
  JF_SERVICE, /* last: absent without a service */
  JF_MAX,
};

struct avm_logsink
{
  int dirfd;
  int fd; /* NAME.log, -1 after a failed (re)open */
  char *dir;
  char *name;
  char *logname; /* NAME.log */
  char *path;    /* DIR/NAME.log */
  uint64_t max_size;
  uint64_t size; /* of NAME.log */
  unsigned keep;

  bool journal;
  char *jfield[JF_MAX];
  int n_jfields;

  int echo_fd;
  int tee_fd;
  avm_logsink_line_fn cb;
  void *cb_data;

  uint64_t bytes;
  uint64_t tee_dropped;
  uint64_t write_errors;
  uint64_t journal_errors;
  char *error;
  bool error_told;
  bool timestamps;

  size_t line_len;
  /* "MESSAGE=" followed by the pending line and room for its NUL, so the
     journal gets the line without a copy.  */
  char msg[MSG_PREFIX_LEN + AVM_LOGSINK_LINE_MAX + 1];
};

static char *
line_buf (struct avm_logsink *s)
{
  return s->msg + MSG_PREFIX_LEN;
}

/* Count a log-file error and keep the first message.  */
static void record_error (struct avm_logsink *s, int errnum, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
record_error (struct avm_logsink *s, int errnum, const char *fmt, ...)
{
  s->write_errors++;
  if (s->error)
    return;
  va_list ap;
  va_start (ap, fmt);
  _cleanup_free_ char *msg = avm_vstrdupf (fmt, ap);
  va_end (ap);
  if (!msg)
    return;
  s->error = errnum ? avm_strdupf ("%s: %s", msg, strerror (errnum)) : steal_pointer (&msg);
}

static void
record_avm_error (struct avm_logsink *s, avm_error_t *err)
{
  record_error (s, 0, "%s", *err && (*err)->msg ? (*err)->msg : "log file error");
  avm_error_free (*err);
  *err = NULL;
}

/* writev that cannot raise SIGPIPE: the signal is blocked around the call
   and one the call caused is consumed before unblocking.  A pipe is not a
   socket, so MSG_NOSIGNAL is not available.  */
static ssize_t
writev_nosigpipe (int fd, const struct iovec *iov, int n)
{
  sigset_t pipe_set, old, pending;
  bool was_pending;
  ssize_t r;
  int saved;

  sigemptyset (&pipe_set);
  sigaddset (&pipe_set, SIGPIPE);
  pthread_sigmask (SIG_BLOCK, &pipe_set, &old);
  was_pending = sigpending (&pending) == 0 && sigismember (&pending, SIGPIPE) == 1;
  do
    r = writev (fd, iov, n);
  while (r < 0 && errno == EINTR);
  saved = errno;
  if (r < 0 && saved == EPIPE && !was_pending)
    {
      static const struct timespec zero = { 0, 0 };
      while (sigtimedwait (&pipe_set, NULL, &zero) < 0 && errno == EINTR)
        ;
    }
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  errno = saved;
  return r;
}

/* --- log file --------------------------------------------------------- */

static int
open_log (struct avm_logsink *s, avm_error_t *err)
{
  struct stat st;
  /* O_NONBLOCK: a FIFO planted as NAME.log must not block the open.  */
  _cleanup_close_ int fd
      = openat (s->dirfd, s->logname, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                0640);
  if (fd < 0)
    {
      if (errno == ELOOP)
        return avm_error_fail (err, ELOOP, "%s is a symbolic link; refusing to write a log through it", s->path);
      if (errno == ENXIO)
        return avm_error_fail (err, ENXIO, "%s is not a regular file; refusing to write a log to it", s->path);
      return avm_error_sys (err, errno, "cannot open %s", s->path);
    }
  if (fstat (fd, &st) < 0)
    return avm_error_sys (err, errno, "cannot stat %s", s->path);
  if (!S_ISREG (st.st_mode))
    return avm_error_fail (err, EINVAL, "%s is not a regular file; refusing to write a log to it", s->path);
  s->fd = steal_fd (&fd);
  s->size = (uint64_t) st.st_size;
  return 0;
}

static void
close_log (struct avm_logsink *s)
{
  if (s->fd >= 0)
    close (s->fd);
  s->fd = -1;
}

/* NAME.log.GEN into BUF (NAME_MAX + 1 bytes; the length was checked at
   open).  */
static void
gen_name (const struct avm_logsink *s, unsigned gen, char *buf)
{
  snprintf (buf, NAME_MAX + 1, "%s.%u", s->logname, gen);
}

static bool
truncate_log (struct avm_logsink *s)
{
  if (s->fd >= 0 && ftruncate (s->fd, 0) == 0)
    {
      s->size = 0;
      return true;
    }
  record_error (s, s->fd >= 0 ? errno : EBADF, "cannot truncate %s", s->path);
  return false;
}

/* Start an empty NAME.log.  Returns true when there is one (size 0).  */
static bool
rotate (struct avm_logsink *s)
{
  char from[NAME_MAX + 1], to[NAME_MAX + 1];
  avm_error_t err = NULL;

  if (s->keep == 0)
    return truncate_log (s);

  gen_name (s, s->keep, to);
  if (unlinkat (s->dirfd, to, 0) < 0 && errno != ENOENT)
    record_error (s, errno, "cannot remove %s/%s", s->dir, to);
  for (unsigned k = s->keep; k-- > 1;)
    {
      gen_name (s, k, from);
      gen_name (s, k + 1, to);
      /* A missing generation is fine; another failure loses one older
         generation (it is overwritten below), never the current file.  */
      if (renameat (s->dirfd, from, s->dirfd, to) < 0 && errno != ENOENT)
        record_error (s, errno, "cannot rename %s/%s to %s", s->dir, from, to);
    }
  gen_name (s, 1, to);
  /* ENOENT: NAME.log was removed behind our back; just start a new one.  */
  if (renameat (s->dirfd, s->logname, s->dirfd, to) < 0 && errno != ENOENT)
    {
      /* Stay within the cap: lose the current file rather than grow it.  */
      record_error (s, errno, "cannot rename %s to %s", s->path, to);
      return truncate_log (s);
    }
  close_log (s);
  if (open_log (s, &err) < 0)
    {
      record_avm_error (s, &err);
      return false;
    }
  return true;
}

static void
write_log (struct avm_logsink *s, const char *p, size_t len)
{
  if (s->fd < 0)
    {
      avm_error_t err = NULL;
      if (open_log (s, &err) < 0)
        {
          record_avm_error (s, &err);
          return;
        }
    }
  while (len > 0)
    {
      size_t n = len;
      if (s->max_size > 0)
        {
          if (s->size > 0 && (s->size >= s->max_size || n > s->max_size - s->size))
            {
              if (!rotate (s))
                return;
              /* Now s->size == 0.  */
            }
          if (n > s->max_size)
            n = s->max_size;
        }
      ssize_t w = write (s->fd, p, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        {
          record_error (s, w < 0 ? errno : EIO, "cannot write %s", s->path);
          return;
        }
      s->size += (uint64_t) w;
      p += w;
      len -= (size_t) w;
    }
}

/* --- tee ------------------------------------------------------------- */

static void
write_tee (struct avm_logsink *s, const void *buf, size_t len)
{
  struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };
  ssize_t w = writev_nosigpipe (s->tee_fd, &iov, 1);
  /* EAGAIN, EPIPE or anything else: what was not written is dropped.  A
     partial write is not completed either, that could block.  */
  if (w < 0)
    w = 0;
  s->tee_dropped += len - (size_t) w;
}

/* --- lines ----------------------------------------------------------- */

static void
emit_line (struct avm_logsink *s, bool strip_cr)
{
  char *line = line_buf (s);
  size_t len = s->line_len;

  s->line_len = 0;
  if (strip_cr && len > 0 && line[len - 1] == '\r')
    len--;
  line[len] = '\0';
  for (char *z = memchr (line, '\0', len); z; z = memchr (z, '\0', len - (size_t) (z - line)))
    *z = ' ';

  if (s->timestamps)
    {
      /* UTC to the millisecond, ISO 8601: "2026-12-07T03:55:01.123Z ".  */
      struct timespec ts;
      struct tm tm;
      char stamp[40];
      clock_gettime (CLOCK_REALTIME, &ts);
      gmtime_r (&ts.tv_sec, &tm);
      size_t n = strftime (stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
      n += (size_t) snprintf (stamp + n, sizeof stamp - n, ".%03ldZ ", ts.tv_nsec / 1000000);
      /* One write for the stamped line: a rotation never splits it.  */
      _cleanup_free_ char *full = malloc (n + len + 1);
      if (full)
        {
          memcpy (full, stamp, n);
          memcpy (full + n, line, len);
          full[n + len] = '\n';
          write_log (s, full, n + len + 1);
        }
    }

  if (s->journal)
    {
      struct iovec iov[1 + JF_MAX];
      iov[0] = (struct iovec) { .iov_base = s->msg, .iov_len = MSG_PREFIX_LEN + len };
      for (int i = 0; i < s->n_jfields; i++)
        iov[1 + i] = (struct iovec) { .iov_base = s->jfield[i], .iov_len = strlen (s->jfield[i]) };
      /* libsystemd is bound by the first line (as the supervisor's loop does,
         on the main thread), not when the sink opens: `avm start` loads it
         meanwhile (avm_systemd_prefetch).  */
      if (avm_dlopen_systemd (NULL) < 0 || sym_sd_journal_sendv (iov, 1 + s->n_jfields) < 0)
        s->journal_errors++;
    }

  if (s->echo_fd >= 0)
    {
      struct iovec iov[] = {
        { .iov_base = (void *) "[", .iov_len = 1 },  { .iov_base = s->name, .iov_len = strlen (s->name) },
        { .iov_base = (void *) "] ", .iov_len = 2 }, { .iov_base = line, .iov_len = len },
        { .iov_base = (void *) "\n", .iov_len = 1 },
      };
      (void) writev_nosigpipe (s->echo_fd, iov, (int) ARRAY_SIZE (iov));
    }

  /* Last: what the callback does (the boot marker's READY=1) comes after
     the line is in the log, where whoever READY wakes may look for it.  */
  if (s->cb)
    s->cb (s->cb_data, line, len);
}

/* Add N bytes without a newline to the pending line.  A full buffer is
   emitted only when more bytes arrive, so that a line of exactly
   AVM_LOGSINK_LINE_MAX bytes and its newline make one line, not two.  */
static void
append_partial (struct avm_logsink *s, const char *p, size_t n)
{
  while (n > 0)
    {
      if (s->line_len == AVM_LOGSINK_LINE_MAX)
        emit_line (s, false);
      size_t k = AVM_LOGSINK_LINE_MAX - s->line_len;
      if (k > n)
        k = n;
      memcpy (line_buf (s) + s->line_len, p, k);
      s->line_len += k;
      p += k;
      n -= k;
    }
}

static void
split_lines (struct avm_logsink *s, const char *p, size_t len)
{
  while (len > 0)
    {
      const char *nl = memchr (p, '\n', len);
      size_t seg = nl ? (size_t) (nl - p) : len;
      append_partial (s, p, seg);
      if (!nl)
        break;
      emit_line (s, true);
      p += seg + 1;
      len -= seg + 1;
    }
}

/* --- API ------------------------------------------------------------- */

int
avm_logsink_open (const struct avm_logsink_config *cfg, const char *name, const char *service, int priority,
                  struct avm_logsink **out, avm_error_t *err)
{
  struct avm_logsink *s;
  int r;

  *out = NULL;
  if (!cfg || !cfg->dir || !*cfg->dir)
    return avm_error_input (err, "log sink: no log directory");
  if (!name || !*name || strchr (name, '/') || streq (name, ".") || streq (name, ".."))
    return avm_error_input (err, "log sink: invalid log name '%s'", name ? name : "");
  /* NAME.log.KEEP must be a valid file name.  */
  if (strlen (name) + sizeof ".log.1000" > NAME_MAX)
    return avm_error_input (err, "log sink: log name '%s' is too long", name);
  if (cfg->keep > AVM_LOGSINK_KEEP_MAX)
    return avm_error_input (err, "log sink %s: cannot keep %u rotated logs (at most %u)", name, cfg->keep,
                            AVM_LOGSINK_KEEP_MAX);
  if (priority < 0 || priority > 7)
    return avm_error_input (err, "log sink %s: journal priority %d is not between 0 and 7", name, priority);

  s = calloc (1, sizeof *s);
  if (!s)
    return avm_error_sys (err, ENOMEM, "log sink %s", name);
  s->dirfd = -1;
  s->fd = -1;
  s->tee_fd = -1;
  s->echo_fd = cfg->echo_fd;
  s->max_size = cfg->max_size;
  s->keep = cfg->keep;
  s->journal = cfg->journal;
  s->timestamps = cfg->timestamps;
  memcpy (s->msg, MSG_PREFIX, MSG_PREFIX_LEN);

  s->dir = strdup (cfg->dir);
  s->name = strdup (name);
  s->logname = avm_strdupf ("%s.log", name);
  s->path = s->dir ? avm_path_join (s->dir, s->logname ? s->logname : "") : NULL;
  s->jfield[JF_PRIORITY] = avm_strdupf ("PRIORITY=%d", priority);
  s->jfield[JF_IDENT] = strdup ("SYSLOG_IDENTIFIER=avm");
  s->jfield[JF_INSTANCE] = avm_strdupf ("AVM_INSTANCE=%d", cfg->instance);
  s->jfield[JF_STREAM] = avm_strdupf ("AVM_STREAM=%s", name);
  s->n_jfields = JF_SERVICE;
  if (service)
    {
      s->jfield[JF_SERVICE] = avm_strdupf ("AVM_SERVICE=%s", service);
      s->n_jfields = JF_SERVICE + 1;
    }
  if (!s->dir || !s->name || !s->logname || !s->path)
    goto oom;
  for (int i = 0; i < s->n_jfields; i++)
    if (!s->jfield[i])
      goto oom;

  r = avm_mkdir_p (s->dir, 0750, err);
  if (r < 0)
    goto fail;
  s->dirfd = open (s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->dirfd < 0)
    {
      r = avm_error_sys (err, errno, "cannot open log directory %s", s->dir);
      goto fail;
    }
  r = open_log (s, err);
  if (r < 0)
    goto fail;
  if (cfg->run_header)
    {
      _cleanup_free_ char *h = avm_strdupf ("=== %s ===\n", cfg->run_header);
      if (!h)
        goto oom;
      write_log (s, h, strlen (h));
    }
  *out = s;
  return 0;

oom:
  r = avm_error_sys (err, ENOMEM, "log sink %s", name);
fail:
  avm_logsink_free (s);
  return r;
}

void
avm_logsink_set_tee (struct avm_logsink *s, int fd)
{
  s->tee_fd = fd;
}

void
avm_logsink_set_line_cb (struct avm_logsink *s, avm_logsink_line_fn cb, void *data)
{
  s->cb = cb;
  s->cb_data = data;
}

void
avm_logsink_feed (struct avm_logsink *s, const void *buf, size_t len)
{
  if (len == 0)
    return;
  s->bytes += len;
  if (!s->timestamps)
    write_log (s, buf, len);
  if (s->tee_fd >= 0)
    write_tee (s, buf, len);
  split_lines (s, buf, len);
}

int
avm_logsink_drain (struct avm_logsink *s, int fd)
{
  char buf[READ_CHUNK];
  size_t budget = AVM_LOGSINK_DRAIN_BUDGET;

  while (budget > 0)
    {
      ssize_t n = read (fd, buf, budget < sizeof buf ? budget : sizeof buf);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            return AVM_LOGSINK_AGAIN;
          return errno == EPERM ? -EIO : -errno;
        }
      if (n == 0)
        {
          avm_logsink_flush (s);
          return AVM_LOGSINK_EOF;
        }
      avm_logsink_feed (s, buf, (size_t) n);
      budget -= (size_t) n;
    }
  return AVM_LOGSINK_MORE;
}

void
avm_logsink_flush (struct avm_logsink *s)
{
  if (s->line_len > 0)
    emit_line (s, true);
}

uint64_t
avm_logsink_bytes (const struct avm_logsink *s)
{
  return s->bytes;
}

uint64_t
avm_logsink_tee_dropped (const struct avm_logsink *s)
{
  return s->tee_dropped;
}

uint64_t
avm_logsink_write_errors (const struct avm_logsink *s)
{
  return s->write_errors;
}

uint64_t
avm_logsink_journal_errors (const struct avm_logsink *s)
{
  return s->journal_errors;
}

const char *
avm_logsink_error (const struct avm_logsink *s)
{
  return s->error;
}

const char *
avm_logsink_new_error (struct avm_logsink *s)
{
  if (s->error_told)
    return NULL;
  if (!s->error && s->journal_errors > 0)
    {
      _cleanup_error_ avm_error_t e = NULL;
      if (avm_dlopen_systemd (&e) < 0 && e && e->msg)
        s->error = strdup (e->msg); /* no libsystemd: say which package */
      else
        s->error = strdup ("cannot send lines to the systemd journal (is journald running?)");
    }
  if (!s->error)
    return NULL;
  s->error_told = true;
  return s->error;
}

const char *
avm_logsink_path (const struct avm_logsink *s)
{
  return s->path;
}

void
avm_logsink_free (struct avm_logsink *s)
{
  if (!s)
    return;
  avm_logsink_flush (s);
  close_log (s);
  if (s->dirfd >= 0)
    close (s->dirfd);
  for (int i = 0; i < JF_MAX; i++)
    free (s->jfield[i]);
  free (s->dir);
  free (s->name);
  free (s->logname);
  free (s->path);
  free (s->error);
  free (s);
}
