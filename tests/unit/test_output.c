/* SPDX-License-Identifier: Apache-2.0 */
/* Output files: atomic commit, abort, failures, signals, holes, progress. */
#include "disk/output.h"
#include "testutil.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strfmt.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir;
static char *mnt; /* a tmpfs mounted by a test, unmounted in teardown */

static void
setup (void)
{
  dir = tu_tmpdir ();
  mnt = NULL;
}

static void
teardown (void)
{
  if (mnt)
    {
      umount2 (mnt, MNT_DETACH);
      free (mnt);
    }
  tu_rmtree (dir);
  free (dir);
}

TestSuite (output, .init = setup, .fini = teardown);

static char *
path_in (const char *d, const char *name)
{
  char *p = NULL;
  cr_assert (asprintf (&p, "%s/%s", d, name) >= 0);
  return p;
}

/* Number of entries of D whose name starts with ".".  */
static int
count_hidden (const char *d)
{
  DIR *dh = opendir (d);
  struct dirent *e;
  int n = 0;
  cr_assert_not_null (dh);
  while ((e = readdir (dh)))
    if (e->d_name[0] == '.' && strcmp (e->d_name, ".") && strcmp (e->d_name, ".."))
      n++;
  closedir (dh);
  return n;
}

/* Is there a temporary for NAME in D ("." NAME ".tmp.XXXXXX")?  */
static int
count_temps (const char *d, const char *name)
{
  char prefix[256];
  DIR *dh = opendir (d);
  struct dirent *e;
  int n = 0;
  snprintf (prefix, sizeof prefix, ".%s.tmp.", name);
  cr_assert_not_null (dh);
  while ((e = readdir (dh)))
    if (strncmp (e->d_name, prefix, strlen (prefix)) == 0 && strlen (e->d_name) == strlen (prefix) + 6)
      n++;
  closedir (dh);
  return n;
}

static void
fill_random (uint8_t *buf, size_t len, unsigned seed)
{
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (size_t i = 0; i < len; i++)
    {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      buf[i] = (uint8_t) (x >> 24) | 1; /* never a zero byte */
    }
}

static uint8_t *
read_all (const char *path, size_t *len)
{
  int fd = open (path, O_RDONLY);
  struct stat st;
  cr_assert (fd >= 0, "open %s: %s", path, strerror (errno));
  cr_assert (fstat (fd, &st) == 0);
  uint8_t *buf = malloc (st.st_size + 1);
  cr_assert (pread (fd, buf, st.st_size, 0) == st.st_size);
  close (fd);
  *len = st.st_size;
  return buf;
}

static uint64_t
allocated (const char *path)
{
  struct stat st;
  cr_assert (stat (path, &st) == 0);
  return (uint64_t) st.st_blocks * 512;
}

struct progress
{
  uint64_t total;
  unsigned calls;
};

static void
on_progress (void *data, uint64_t bytes)
{
  struct progress *p = data;
  p->total += bytes;
  p->calls++;
}

Test (output, commit_renames_and_leaves_no_temporary)
{
  char *path = path_in (dir, "disk.img");
  struct avm_out *o = NULL;
  avm_error_t err = NULL;

  cr_assert_eq (avm_out_open (path, 8192, &o, &err), 0, "%s", err ? err->msg : "");
  cr_assert_str_eq (avm_out_path (o), path);
  cr_assert_eq (avm_out_size (o), 8192);
  /* While open: one temporary next to it, the final path not there yet.  */
  cr_assert_eq (count_temps (dir, "disk.img"), 1);
  cr_assert (access (path, F_OK) < 0);
  cr_assert_eq (avm_out_write (o, 4096, "hello", 5, &err), 0);
  cr_assert_eq (avm_out_commit (o, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (count_hidden (dir), 0);

  struct stat st;
  cr_assert (stat (path, &st) == 0);
  cr_assert_eq (st.st_size, 8192);
  cr_assert_eq (st.st_mode & 07777, 0644);
  size_t len;
  uint8_t *b = read_all (path, &len);
  cr_assert_eq (memcmp (b + 4096, "hello", 5), 0);
  for (size_t i = 0; i < 4096; i++)
    cr_assert_eq (b[i], 0);
  free (b);
  free (path);
}

/* A set of outputs (avm_out_commit_set): OLD contents in NAMES of D, new
   outputs for them, committed together.  */
#define MARKER ".set-commit"

static void
seed (const char *d, const char *name, const char *content)
{
  free (tu_write (d, name, content));
}

static struct avm_out *
open_new (const char *d, const char *name, const char *content)
{
  char *path = path_in (d, name);
  struct avm_out *o = NULL;
  avm_error_t err = NULL;
  cr_assert_eq (avm_out_open (path, strlen (content), &o, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (avm_out_write (o, 0, content, strlen (content), &err), 0);
  free (path);
  return o;
}

static void
assert_content (const char *d, const char *name, const char *want)
{
  char *path = path_in (d, name);
  char *got = tu_read (path);
  cr_assert_not_null (got, "%s is missing", path);
  cr_assert_str_eq (got, want, "%s", path);
  free (got);
  free (path);
}

Test (output, commit_set_replaces_every_output_and_removes_the_markers)
{
  char *sub = path_in (dir, "sub");
  cr_assert_eq (mkdir (sub, 0755), 0);
  seed (dir, "a", "old a");
  seed (sub, "b", "old b");
  struct avm_out *o[4]
      = { open_new (dir, "a", "new a"), NULL, open_new (sub, "b", "new b"), open_new (dir, "c", "new c") };
  avm_error_t err = NULL;
  cr_assert_eq (avm_out_commit_set (o, 4, MARKER, "write them again", &err), 0, "%s", err ? err->msg : "");
  for (size_t i = 0; i < 4; i++)
    cr_assert_null (o[i], "output %zu not released", i);
  assert_content (dir, "a", "new a");
  assert_content (sub, "b", "new b");
  assert_content (dir, "c", "new c");
  cr_assert_eq (count_hidden (dir), 0, "a temporary or the marker is left in %s", dir);
  cr_assert_eq (count_hidden (sub), 0, "a temporary or the marker is left in %s", sub);
  free (sub);
}

/* A rename that fails after another succeeded: the set is part old, part
   new, and the marker stays to say so; the error names the output, the
   marker and the remedy.  */
Test (output, commit_set_failing_halfway_leaves_the_marker)
{
  seed (dir, "a", "old a");
  seed (dir, "c", "old c");
  struct avm_out *o[3] = { open_new (dir, "a", "new a"), open_new (dir, "b", "new b"), open_new (dir, "c", "new c") };
  /* b cannot be renamed: a non-empty directory is in the way.  */
  char *b = path_in (dir, "b");
  cr_assert_eq (mkdir (b, 0755), 0);
  seed (b, "inside", "x");
  avm_error_t err = NULL;
  cr_assert_lt (avm_out_commit_set (o, 3, MARKER, "write them again", &err), 0);
  cr_assert_not_null (err);
  cr_assert_not_null (strstr (err->msg, b), "%s", err->msg);
  cr_assert_not_null (strstr (err->msg, "cannot rename"), "%s", err->msg);
  cr_assert_not_null (strstr (err->msg, "1 other output(s) already replaced"), "%s", err->msg);
  cr_assert_not_null (strstr (err->msg, MARKER), "%s", err->msg);
  cr_assert_not_null (strstr (err->msg, "write them again"), "%s", err->msg);
  assert_content (dir, "a", "new a");
  assert_content (dir, "c", "old c");
  char *marker = path_in (dir, MARKER);
  char *text = tu_read (marker);
  cr_assert_not_null (text, "no marker after a half-done commit");
  cr_assert_not_null (strstr (text, "write them again"), "%s", text);
  cr_assert_not_null (strstr (text, b), "the marker does not list %s:\n%s", b, text);
  /* Only the marker: the temporaries that were not renamed are gone.  */
  cr_assert_eq (count_hidden (dir), 1);
  avm_error_free (err);
  free (text);
  free (marker);
  free (b);
}

/* A failure before the first rename changes nothing: old outputs, no
   marker, no temporaries.  */
Test (output, commit_set_failing_first_changes_nothing)
{
  char *a = path_in (dir, "a");
  cr_assert_eq (mkdir (a, 0755), 0);
  seed (a, "inside", "x");
  seed (dir, "c", "old c");
  struct avm_out *o[2] = { open_new (dir, "a", "new a"), open_new (dir, "c", "new c") };
  avm_error_t err = NULL;
  cr_assert_lt (avm_out_commit_set (o, 2, MARKER, "write them again", &err), 0);
  cr_assert_not_null (strstr (err->msg, "cannot rename"), "%s", err->msg);
  cr_assert_null (strstr (err->msg, MARKER), "%s", err->msg);
  assert_content (dir, "c", "old c");
  cr_assert_eq (count_hidden (dir), 0);
  avm_error_free (err);
  free (a);
}

Test (output, commit_replaces_an_existing_file)
{
  free (tu_write (dir, "disk.img", "old contents"));
  char *path = path_in (dir, "disk.img");
  struct avm_out *o = NULL;
  avm_error_t err = NULL;

  cr_assert_eq (avm_out_open (path, 3, &o, &err), 0);
  cr_assert_eq (avm_out_write (o, 0, "new", 3, &err), 0);
  char *before = tu_read (path);
  cr_assert_str_eq (before, "old contents");
  free (before);
  cr_assert_eq (avm_out_commit (o, &err), 0);
  char *after = tu_read (path);
  cr_assert_str_eq (after, "new");
  free (after);
  cr_assert_eq (count_hidden (dir), 0);
  free (path);
}

Test (output, relative_path_in_the_current_directory)
{
  char cwd[4096];
  struct avm_out *o = NULL;
  avm_error_t err = NULL;

  cr_assert_not_null (getcwd (cwd, sizeof cwd));
  cr_assert (chdir (dir) == 0);
  cr_assert_eq (avm_out_open ("rel.img", 10, &o, &err), 0);
  cr_assert_eq (count_temps (".", "rel.img"), 1);
  cr_assert_eq (avm_out_commit (o, &err), 0, "%s", err ? err->msg : "");
  cr_assert (access ("rel.img", F_OK) == 0);
  cr_assert (chdir (cwd) == 0);
}

Test (output, abort_leaves_the_old_output_untouched)
{
  free (tu_write (dir, "disk.img", "old contents"));
  char *path = path_in (dir, "disk.img");
  struct avm_out *o = NULL;
  avm_error_t err = NULL;

  cr_assert_eq (avm_out_open (path, 1 << 20, &o, &err), 0);
  cr_assert_eq (avm_out_fill (o, 0, 0x01020304, 1 << 20, &err), 0);
  avm_out_abort (o);
  avm_out_abort (NULL);
  char *s = tu_read (path);
  cr_assert_str_eq (s, "old contents");
  free (s);
  cr_assert_eq (count_hidden (dir), 0);
  free (path);
}

Test (output, cleanup_attribute_aborts)
{
  char *path = path_in (dir, "disk.img");
  {
    _cleanup_out_ struct avm_out *o = NULL;
    avm_error_t err = NULL;
    cr_assert_eq (avm_out_open (path, 100, &o, &err), 0);
    cr_assert_eq (count_temps (dir, "disk.img"), 1);
  }
  cr_assert_eq (count_hidden (dir), 0);
  cr_assert (access (path, F_OK) < 0);
  free (path);
}

Test (output, missing_directory_is_an_error_naming_the_file)
{
  char *path = path_in (dir, "nope/disk.img");
  struct avm_out *o = NULL;
  avm_error_t err = NULL;

  cr_assert_lt (avm_out_open (path, 100, &o, &err), 0);
  cr_assert_null (o);
  cr_assert_not_null (strstr (err->msg, path), "%s", err->msg);
  cr_assert_not_null (strstr (err->msg, "No such file"), "%s", err->msg);
  avm_error_free (err);
  free (path);
}

Test (output, write_past_the_end_is_an_error)
{
  char *path = path_in (dir, "disk.img");
  struct avm_out *o = NULL;
  avm_error_t err = NULL;

  cr_assert_eq (avm_out_open (path, 100, &o, &err), 0);
  cr_assert_lt (avm_out_write (o, 98, "abc", 3, &err), 0);
  cr_assert_not_null (strstr (err->msg, path), "%s", err->msg);
  avm_error_free (err);
  err = NULL;
  cr_assert_lt (avm_out_fill (o, 50, 0, 51, &err), 0);
  avm_error_free (err);
  err = NULL;
  cr_assert_lt (avm_out_fill (o, UINT64_MAX, 1, 2, &err), 0);
  avm_error_free (err);
  avm_out_abort (o);
  free (path);
}

/* The write fails half-way (ENOSPC on a 1 MiB tmpfs): the error names the
   output, the old file is untouched and no temporary remains.  */
Test (output, enospc_keeps_the_old_output)
{
  mnt = path_in (dir, "small");
  cr_assert (mkdir (mnt, 0755) == 0);
  if (mount ("tmpfs", mnt, "tmpfs", 0, "size=1m") < 0)
    {
      int e = errno;
      free (mnt);
      mnt = NULL;
      cr_skip_test ("cannot mount a 1 MiB tmpfs to simulate ENOSPC: %s", strerror (e));
    }
  free (tu_write (mnt, "disk.img", "old contents"));
  char *path = path_in (mnt, "disk.img");
  size_t len = 2 << 20;
  uint8_t *buf = malloc (len);
  fill_random (buf, len, 1);

  struct avm_out *o = NULL;
  avm_error_t err = NULL;
  cr_assert_eq (avm_out_open (path, 8 << 20, &o, &err), 0, "%s", err ? err->msg : "");
  int r = avm_out_write (o, 0, buf, len, &err);
  cr_assert_eq (r, -ENOSPC, "write returned %d", r);
  cr_assert_not_null (strstr (err->msg, path), "%s", err->msg);
  cr_assert_not_null (strstr (err->msg, "No space left"), "%s", err->msg);
  cr_assert_eq (err->exit_code, 1);
  avm_error_free (err);
  err = NULL;
  r = avm_out_fill (o, 4 << 20, 0xdeadbeef, 4 << 20, &err);
  cr_assert_eq (r, -ENOSPC, "fill returned %d", r);
  cr_assert_not_null (strstr (err->msg, path), "%s", err->msg);
  avm_error_free (err);
  avm_out_abort (o);

  char *s = tu_read (path);
  cr_assert_str_eq (s, "old contents");
  free (s);
  cr_assert_eq (count_hidden (mnt), 0);
  free (buf);
  free (path);
}

/* ftruncate fails (EFBIG from RLIMIT_FSIZE; the test runs in its own
   process): an error naming the file, nothing left behind.  */
Test (output, efbig_at_open)
{
  struct rlimit rl = { 1 << 20, 1 << 20 };
  signal (SIGXFSZ, SIG_IGN);
  cr_assert (setrlimit (RLIMIT_FSIZE, &rl) == 0);
  free (tu_write (dir, "disk.img", "old contents"));
  char *path = path_in (dir, "disk.img");
  struct avm_out *o = NULL;
  avm_error_t err = NULL;

  int r = avm_out_open (path, 4 << 20, &o, &err);
  cr_assert_eq (r, -EFBIG, "open returned %d", r);
  cr_assert_null (o);
  cr_assert_not_null (strstr (err->msg, path), "%s", err->msg);
  cr_assert_not_null (strstr (err->msg, "4194304 bytes"), "%s", err->msg);
  cr_assert_not_null (strstr (err->msg, "File too large"), "%s", err->msg);
  avm_error_free (err);
  char *s = tu_read (path);
  cr_assert_str_eq (s, "old contents");
  free (s);
  cr_assert_eq (count_hidden (dir), 0);
  free (path);
}

Test (output, too_many_open_outputs)
{
  struct avm_out *o[AVM_OUT_MAX_OPEN + 1];
  avm_error_t err = NULL;
  char name[32];

  for (int i = 0; i < AVM_OUT_MAX_OPEN; i++)
    {
      snprintf (name, sizeof name, "d%d.img", i);
      char *p = path_in (dir, name);
      cr_assert_eq (avm_out_open (p, 10, &o[i], &err), 0);
      free (p);
    }
  char *p = path_in (dir, "extra.img");
  cr_assert_eq (avm_out_open (p, 10, &o[AVM_OUT_MAX_OPEN], &err), -EMFILE);
  cr_assert_not_null (strstr (err->msg, p), "%s", err->msg);
  avm_error_free (err);
  free (p);
  for (int i = 0; i < AVM_OUT_MAX_OPEN; i++)
    avm_out_abort (o[i]);
  cr_assert_eq (count_hidden (dir), 0);
}

/* A child opens an output and gets SIG: it dies of SIG, the temporary is
   gone, and an existing output is untouched.  */
static void
signal_cleanup (int sig)
{
  free (tu_write (dir, "disk.img", "old contents"));
  char *path = path_in (dir, "disk.img");
  int ready[2];
  cr_assert (pipe (ready) == 0);

  pid_t pid = fork ();
  cr_assert (pid >= 0);
  if (pid == 0)
    {
      struct avm_out *o = NULL, *o2 = NULL;
      avm_error_t err = NULL;
      char *second = path_in (dir, "other.img");
      struct rlimit nocore = { 0, 0 };
      setrlimit (RLIMIT_CORE, &nocore); /* SIGQUIT */
      signal (SIGINT, SIG_DFL);
      signal (SIGTERM, SIG_DFL);
      signal (SIGHUP, SIG_DFL);
      signal (SIGQUIT, SIG_DFL);
      if (avm_out_open (path, 1 << 20, &o, &err) < 0 || avm_out_open (second, 4096, &o2, &err) < 0)
        _exit (10);
      if (avm_out_write (o, 0, "partial", 7, &err) < 0)
        _exit (11);
      if (count_temps (dir, "disk.img") != 1 || count_temps (dir, "other.img") != 1)
        _exit (12);
      /* The parent too can signal us once we say so.  */
      if (write (ready[1], "x", 1) != 1)
        _exit (13);
      pause ();
      _exit (14);
    }
  close (ready[1]);
  char c;
  cr_assert_eq (read (ready[0], &c, 1), 1, "the child failed before signalling");
  close (ready[0]);
  cr_assert (kill (pid, sig) == 0);
  int status;
  cr_assert (waitpid (pid, &status, 0) == pid);
  cr_assert (WIFSIGNALED (status), "child exited with %d", WIFEXITED (status) ? WEXITSTATUS (status) : -1);
  cr_assert_eq (WTERMSIG (status), sig);
  cr_assert_eq (count_hidden (dir), 0, "temporaries left after signal %d", sig);
  char *s = tu_read (path);
  cr_assert_str_eq (s, "old contents");
  free (s);
  free (path);
}

Test (output, sigterm_removes_temporaries) { signal_cleanup (SIGTERM); }
Test (output, sigint_removes_temporaries) { signal_cleanup (SIGINT); }
Test (output, sighup_removes_temporaries) { signal_cleanup (SIGHUP); }
Test (output, sigquit_removes_temporaries) { signal_cleanup (SIGQUIT); }

/* raise() from the writing thread itself, as the brief's scenario.  */
Test (output, raise_sigterm_in_the_writer)
{
  char *path = path_in (dir, "disk.img");
  pid_t pid = fork ();
  cr_assert (pid >= 0);
  if (pid == 0)
    {
      struct avm_out *o = NULL;
      avm_error_t err = NULL;
      signal (SIGTERM, SIG_DFL);
      if (avm_out_open (path, 1 << 20, &o, &err) < 0)
        _exit (10);
      raise (SIGTERM);
      _exit (11);
    }
  int status;
  cr_assert (waitpid (pid, &status, 0) == pid);
  cr_assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGTERM, "status 0x%x", status);
  cr_assert_eq (count_hidden (dir), 0);
  cr_assert (access (path, F_OK) < 0);
  free (path);
}

/* An ignored signal stays ignored (nohup): the handler is not installed.  */
Test (output, ignored_sighup_stays_ignored)
{
  char *path = path_in (dir, "disk.img");
  pid_t pid = fork ();
  cr_assert (pid >= 0);
  if (pid == 0)
    {
      struct avm_out *o = NULL;
      avm_error_t err = NULL;
      signal (SIGHUP, SIG_IGN);
      if (avm_out_open (path, 100, &o, &err) < 0)
        _exit (10);
      raise (SIGHUP);
      _exit (avm_out_commit (o, &err) == 0 ? 0 : 12);
    }
  int status;
  cr_assert (waitpid (pid, &status, 0) == pid);
  cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0, "status 0x%x", status);
  cr_assert (access (path, F_OK) == 0);
  free (path);
}

/* Aligned zero blocks stay holes, data lands where it should, unaligned
   heads and tails are written as they are.  */
Test (output, zero_blocks_become_holes)
{
  char *path = path_in (dir, "disk.img");
  const size_t blocks = 64, size = blocks * 4096;
  uint8_t *buf = calloc (1, size);
  struct avm_out *o = NULL;
  avm_error_t err = NULL;
  struct progress pr = { 0, 0 };

  /* data in blocks 3-5, 9, 40-41 and the last; a single non-zero byte at
     the end of block 20.  */
  fill_random (buf + 3 * 4096, 3 * 4096, 2);
  fill_random (buf + 9 * 4096, 4096, 3);
  fill_random (buf + 40 * 4096, 2 * 4096, 4);
  fill_random (buf + 63 * 4096, 4096, 5);
  buf[21 * 4096 - 1] = 7;

  cr_assert_eq (avm_out_open (path, size, &o, &err), 0);
  avm_out_set_progress (o, on_progress, &pr);
  cr_assert_eq (avm_out_write (o, 0, buf, size, &err), 0);
  cr_assert_eq (avm_out_commit (o, &err), 0);
  cr_assert_eq (pr.total, size);

  size_t len;
  uint8_t *got = read_all (path, &len);
  cr_assert_eq (len, size);
  cr_assert_eq (memcmp (got, buf, size), 0);
  free (got);
  cr_assert_leq (allocated (path), 8 * 4096 + 4096, "%llu bytes allocated", (unsigned long long) allocated (path));
  cr_assert_eq (tu_next_data (path, 0), 3 * 4096);
  cr_assert_eq (tu_next_hole (path, 3 * 4096), 6 * 4096);
  cr_assert_eq (tu_next_data (path, 6 * 4096), 9 * 4096);
  cr_assert_eq (tu_next_data (path, 10 * 4096), 20 * 4096);
  cr_assert_eq (tu_next_data (path, 21 * 4096), 40 * 4096);
  cr_assert_eq (tu_next_hole (path, 40 * 4096), 42 * 4096);
  cr_assert_eq (tu_next_data (path, 42 * 4096), 63 * 4096);
  free (buf);
  free (path);
}

Test (output, unaligned_writes)
{
  char *path = path_in (dir, "disk.img");
  const size_t size = 5 * 4096 + 123;
  uint8_t *want = calloc (1, size), *buf = malloc (3 * 4096);
  struct avm_out *o = NULL;
  avm_error_t err = NULL;

  cr_assert_eq (avm_out_open (path, size, &o, &err), 0);
  /* zeros inside an unaligned buffer: the aligned zero block in the middle
     is skipped, the rest written.  */
  fill_random (buf, 3 * 4096, 6);
  memset (buf + 4000, 0, 3 * 4096 - 4000 - 100);
  cr_assert_eq (avm_out_write (o, 100, buf, 3 * 4096, &err), 0);
  memcpy (want + 100, buf, 3 * 4096);
  /* a tail that ends at the unaligned end of the file */
  cr_assert_eq (avm_out_write (o, size - 200, buf, 200, &err), 0);
  memcpy (want + size - 200, buf, 200);
  cr_assert_eq (avm_out_write (o, 7, "", 0, &err), 0);
  cr_assert_eq (avm_out_commit (o, &err), 0);

  size_t len;
  uint8_t *got = read_all (path, &len);
  cr_assert_eq (len, size);
  cr_assert_eq (memcmp (got, want, size), 0);
  /* block 2 (8192-12287) is buf[8092, 12188): zeros, skipped */
  cr_assert_eq (tu_next_data (path, 8192), 3 * 4096, "the zero block at 8192 was written");
  free (got);
  free (want);
  free (buf);
  free (path);
}

Test (output, fill_patterns)
{
  char *path = path_in (dir, "disk.img");
  const size_t size = 3 * AVM_OUT_BUFSIZE + 3 * 4096;
  uint8_t *want = calloc (1, size);
  struct avm_out *o = NULL;
  avm_error_t err = NULL;
  struct progress pr = { 0, 0 };

  cr_assert_eq (avm_out_open (path, size, &o, &err), 0);
  avm_out_set_progress (o, on_progress, &pr);
  /* zero: a hole, still counted */
  cr_assert_eq (avm_out_fill (o, 0, 0, 4096, &err), 0);
  /* small, unaligned, length not a multiple of 4 */
  cr_assert_eq (avm_out_fill (o, 4096 + 1, 0x44332211, 10, &err), 0);
  const uint8_t p1[] = { 0x11, 0x22, 0x33, 0x44, 0x11, 0x22, 0x33, 0x44, 0x11, 0x22 };
  memcpy (want + 4096 + 1, p1, 10);
  /* large: several buffers, in phase across them */
  uint64_t off = 2 * 4096, len = size - off - 4096;
  cr_assert_eq (avm_out_fill (o, off, 0xa1b2c3d4, len, &err), 0);
  for (uint64_t i = 0; i < len; i++)
    want[off + i] = (uint8_t) (0xa1b2c3d4U >> (8 * (i % 4)));
  cr_assert_eq (avm_out_commit (o, &err), 0);
  cr_assert_eq (pr.total, 4096 + 10 + len);

  size_t got_len;
  uint8_t *got = read_all (path, &got_len);
  cr_assert_eq (memcmp (got, want, size), 0);
  cr_assert_eq (tu_next_data (path, 0), 4096, "the zero fill was written");
  cr_assert_eq (tu_next_data (path, size - 4096), (off_t) size, "the end was written");
  free (got);
  free (want);
  free (path);
}

/* Input with holes made by ftruncate and a few pwrites.  */
static char *
make_holey_input (const char *d, const char *name, uint64_t size, uint8_t **content)
{
  char *in = path_in (d, name);
  int fd = open (in, O_RDWR | O_CREAT | O_TRUNC, 0644);
  uint8_t *c = calloc (1, size);
  cr_assert (fd >= 0);
  cr_assert (ftruncate (fd, size) == 0);
  const uint64_t at[] = { 0, 1 << 20, (5 << 20) + 4096, size - 8192 };
  for (size_t i = 0; i < 4; i++)
    {
      uint8_t blk[8192];
      fill_random (blk, sizeof blk, 10 + i);
      cr_assert (pwrite (fd, blk, sizeof blk, at[i]) == sizeof blk);
      memcpy (c + at[i], blk, sizeof blk);
    }
  close (fd);
  *content = c;
  return in;
}

static void
copy_and_check (const char *d)
{
  const uint64_t size = 16 << 20;
  uint8_t *content;
  char *in = make_holey_input (d, "in.img", size, &content);
  char *path = path_in (dir, "disk.img");
  const uint64_t base = 1 << 20;
  struct avm_out *o = NULL;
  avm_error_t err = NULL;
  struct progress pr = { 0, 0 };

  int fd = open (in, O_RDONLY);
  cr_assert (fd >= 0);
  cr_assert_eq (avm_out_open (path, base + size + 4096, &o, &err), 0);
  avm_out_set_progress (o, on_progress, &pr);
  cr_assert_eq (avm_out_copy_fd (o, base, fd, 0, size, in, &err), 0, "%s", err ? err->msg : "");
  /* and a sub-range, unaligned on both sides, over the tail block */
  cr_assert_eq (avm_out_copy_fd (o, base + size + 1, fd, size - 5000, 4000, in, &err), 0);
  cr_assert_eq (avm_out_commit (o, &err), 0);
  cr_assert_eq (pr.total, size + 4000);
  close (fd);

  size_t len;
  uint8_t *got = read_all (path, &len);
  cr_assert_eq (len, base + size + 4096);
  cr_assert_eq (memcmp (got + base, content, size), 0);
  cr_assert_eq (memcmp (got + base + size + 1, content + size - 5000, 4000), 0);
  for (uint64_t i = 0; i < base; i++)
    cr_assert_eq (got[i], 0);
  free (got);
  cr_assert_leq (allocated (path), 64 * 1024 + 4 * 8192, "%llu bytes allocated", (unsigned long long) allocated (path));
  cr_assert_eq (tu_next_data (path, 0), (off_t) base);
  cr_assert_eq (tu_next_hole (path, base), (off_t) (base + 8192));
  cr_assert_eq (tu_next_data (path, base + 8192), (off_t) (base + (1 << 20)));
  cr_assert_eq (tu_next_data (path, base + (1 << 20) + 8192), (off_t) (base + (5 << 20) + 4096));
  free (content);
  free (in);
  free (path);
}

Test (output, copy_fd_preserves_holes) { copy_and_check (dir); }

/* From another filesystem (tmpfs): copy_file_range may refuse (EXDEV), the
   read fallback keeps the holes too.  */
Test (output, copy_fd_across_filesystems)
{
  struct stat a, b;
  char *shm = strdup ("/dev/shm/avm-test-XXXXXX");
  if (stat ("/dev/shm", &a) < 0 || !mkdtemp (shm))
    cr_skip_test ("no /dev/shm to copy from another filesystem");
  cr_assert (stat (dir, &b) == 0);
  if (a.st_dev == b.st_dev)
    {
      tu_rmtree (shm);
      cr_skip_test ("/dev/shm is on the same filesystem as %s", dir);
    }
  copy_and_check (shm);
  tu_rmtree (shm);
  free (shm);
}

Test (output, copy_fd_short_input)
{
  char *in = tu_write (dir, "short.img", "0123456789");
  char *path = path_in (dir, "disk.img");
  struct avm_out *o = NULL;
  avm_error_t err = NULL;
  int fd = open (in, O_RDONLY);

  cr_assert_eq (avm_out_open (path, 100, &o, &err), 0);
  cr_assert_lt (avm_out_copy_fd (o, 0, fd, 4, 20, in, &err), 0);
  char *want = NULL;
  cr_assert (asprintf (&want, "%s: unexpected end of file at offset 10", in) >= 0);
  cr_assert_str_eq (err->msg, want);
  avm_error_free (err);
  err = NULL;
  /* exactly to the end is fine */
  cr_assert_eq (avm_out_copy_fd (o, 0, fd, 4, 6, in, &err), 0);
  avm_out_abort (o);
  close (fd);
  free (want);
  free (in);
  free (path);
}

/* Progress adds up to the size over writes, fills, holes and copies.  */
Test (output, progress_totals_equal_the_size)
{
  uint8_t *content;
  const uint64_t in_size = 8 << 20;
  char *in = make_holey_input (dir, "in.img", in_size, &content);
  char *path = path_in (dir, "disk.img");
  const uint64_t size = 4096 + (3 << 20) + in_size + 5;
  struct avm_out *o = NULL;
  avm_error_t err = NULL;
  struct progress pr = { 0, 0 };
  int fd = open (in, O_RDONLY);

  cr_assert_eq (avm_out_open (path, size, &o, &err), 0);
  avm_out_set_progress (o, on_progress, &pr);
  cr_assert_eq (avm_out_write (o, 0, content, 4096, &err), 0);
  cr_assert_eq (avm_out_fill (o, 4096, 0, 1 << 20, &err), 0);
  cr_assert_eq (avm_out_fill (o, 4096 + (1 << 20), 0x5a5a5a5a, 2 << 20, &err), 0);
  cr_assert_eq (avm_out_copy_fd (o, 4096 + (3 << 20), fd, 0, in_size, in, &err), 0);
  cr_assert_eq (avm_out_write (o, size - 5, "abcde", 5, &err), 0);
  cr_assert_eq (avm_out_commit (o, &err), 0);
  cr_assert_eq (pr.total, size);
  cr_assert_gt (pr.calls, 5);
  close (fd);
  free (content);
  free (in);
  free (path);
}

/* The pattern buffer is reused across fills of different patterns and
   sizes.  */
Test (output, fill_pattern_changes)
{
  char *path = path_in (dir, "disk.img");
  const uint32_t pats[] = { 0x11111111, 0x2222aaaa, 0x11111111, 0x33333333, 0x2222aaaa };
  const uint64_t lens[] = { 2 << 20, 8, (1 << 20) + 4, 4096, 3 << 20 };
  uint64_t size = 0;
  for (size_t i = 0; i < 5; i++)
    size += lens[i];
  uint8_t *want = malloc (size);
  struct avm_out *o = NULL;
  avm_error_t err = NULL;

  cr_assert_eq (avm_out_open (path, size, &o, &err), 0);
  uint64_t off = 0;
  for (size_t i = 0; i < 5; i++)
    {
      cr_assert_eq (avm_out_fill (o, off, pats[i], lens[i], &err), 0);
      for (uint64_t k = 0; k < lens[i]; k++)
        want[off + k] = (uint8_t) (pats[i] >> (8 * (k % 4)));
      off += lens[i];
    }
  cr_assert_eq (avm_out_commit (o, &err), 0);
  size_t len;
  uint8_t *got = read_all (path, &len);
  cr_assert_eq (len, size);
  cr_assert (memcmp (got, want, size) == 0);
  free (got);
  free (want);
  free (path);
}

/* Directories of outputs and of the instance (util/fs.c, avm_mkdir_p):
   missing parents created from the leaf up, existing ones left alone, a
   file in the way named.  */
Test (output, mkdir_p_creates_missing_parents_and_names_what_is_in_the_way)
{
  avm_error_t err = NULL;
  _cleanup_free_ char *deep = avm_strdupf ("%s/a/b/c/", dir);
  cr_assert_eq (avm_mkdir_p (deep, 0750, &err), 0, "%s", err ? err->msg : "");
  struct stat st;
  cr_assert_eq (stat (deep, &st), 0);
  cr_assert (S_ISDIR (st.st_mode));
  mode_t mask = umask (0);
  umask (mask);
  cr_assert_eq (st.st_mode & 07777, 0750 & ~mask);
  cr_assert_eq (avm_mkdir_p (deep, 0700, &err), 0, "an existing directory is fine");

  _cleanup_free_ char *file = tu_write (dir, "a/file", "x");
  _cleanup_free_ char *under = avm_strdupf ("%s/sub/dir", file);
  cr_assert_eq (avm_mkdir_p (under, 0750, &err), -ENOTDIR);
  cr_assert (strstr (err->msg, "cannot create directory ") && strstr (err->msg, "/a/file"), "%s", err->msg);
  avm_error_free (err);
  err = NULL;

  /* Relative: from the current directory.  */
  char cwd[4096];
  cr_assert (getcwd (cwd, sizeof cwd));
  cr_assert_eq (chdir (dir), 0);
  int r = avm_mkdir_p ("r1/r2", 0755, &err);
  cr_assert_eq (chdir (cwd), 0);
  cr_assert_eq (r, 0, "%s", err ? err->msg : "");
  _cleanup_free_ char *rel = avm_strdupf ("%s/r1/r2", dir);
  cr_assert_eq (access (rel, F_OK), 0);
}

/* ------------------------------------------------------------------ */
/* Tree outputs (avm_out_open_tree): a directory tree whose top-level
   entries replace those of its directory at the set's commit.  */

/* renameat2 as the test wants it: with no_exchange set, RENAME_EXCHANGE
   fails with EINVAL as on a file system without it (the executable's
   definition takes the place of libc's for avm's objects, which are linked
   into it); otherwise the system call.  */
static int no_exchange;
static int exchange_refused;

int
renameat2 (int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)
{
  if (no_exchange && (flags & RENAME_EXCHANGE))
    {
      exchange_refused++;
      errno = EINVAL;
      return -1;
    }
  return (int) syscall (SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}

static void
write_at (int dfd, const char *name, const char *content, mode_t mode)
{
  int fd = openat (dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  cr_assert (fd >= 0, "%s: %s", name, strerror (errno));
  cr_assert_eq (write (fd, content, strlen (content)), (ssize_t) strlen (content));
  cr_assert_eq (fchmod (fd, mode), 0);
  close (fd);
}

/* A tree output for D with bin/tool (mode 0755), lib64/libfoo.so.1,
   lib64/libfoo.so -> libfoo.so.1 and a read-only directory ro/ holding a
   read-only file: the new host package.  */
static struct avm_out *
new_tree (const char *d)
{
  struct avm_out *t = NULL;
  avm_error_t err = NULL;
  cr_assert_eq (avm_out_open_tree (d, "host", &t, &err), 0, "%s", err ? err->msg : "");
  int fd = avm_out_tree_fd (t);
  cr_assert_geq (fd, 0);
  cr_assert_eq (mkdirat (fd, "bin", 0755), 0);
  cr_assert_eq (mkdirat (fd, "lib64", 0755), 0);
  cr_assert_eq (mkdirat (fd, "ro", 0755), 0);
  int bin = openat (fd, "bin", O_RDONLY | O_DIRECTORY), lib = openat (fd, "lib64", O_RDONLY | O_DIRECTORY);
  int ro = openat (fd, "ro", O_RDONLY | O_DIRECTORY);
  write_at (bin, "tool", "new tool", 0755);
  write_at (lib, "libfoo.so.1", "new lib", 0644);
  cr_assert_eq (symlinkat ("libfoo.so.1", lib, "libfoo.so"), 0);
  write_at (ro, "data", "read-only", 0444);
  cr_assert_eq (fchmod (ro, 0555), 0);
  close (bin), close (lib), close (ro);
  return t;
}

/* D as a previous conversion left it: bin/tool and stale/old, a file of
   the set ("a"), and "keep", not the set's.  */
static void
seed_tree (const char *d)
{
  char *bin = path_in (d, "bin"), *stale = path_in (d, "stale"), *keep = path_in (d, "keep");
  cr_assert_eq (mkdir (bin, 0755), 0);
  cr_assert_eq (mkdir (stale, 0755), 0);
  cr_assert_eq (mkdir (keep, 0755), 0);
  seed (bin, "tool", "old tool");
  seed (bin, "only-in-old", "x");
  seed (stale, "old", "stale");
  seed (keep, "mine", "the user's");
  seed (d, "a", "old a");
  free (bin), free (stale), free (keep);
}

static void
check_new_tree (const char *d)
{
  char *bin = path_in (d, "bin"), *lib = path_in (d, "lib64"), *keep = path_in (d, "keep");
  char *tool = path_in (bin, "tool"), *gone = path_in (bin, "only-in-old"), *stale = path_in (d, "stale");
  char *link = path_in (lib, "libfoo.so"), *ro = path_in (d, "ro/data");
  assert_content (bin, "tool", "new tool");
  assert_content (lib, "libfoo.so", "new lib");
  assert_content (keep, "mine", "the user's");
  assert_content (d, "a", "new a");
  struct stat st;
  cr_assert_eq (stat (tool, &st), 0);
  cr_assert_eq (st.st_mode & 07777, 0755);
  cr_assert_eq (lstat (link, &st), 0);
  cr_assert (S_ISLNK (st.st_mode));
  cr_assert_eq (stat (ro, &st), 0);
  cr_assert (access (gone, F_OK) < 0, "%s: the old bin/ was merged, not replaced", gone);
  cr_assert (access (stale, F_OK) < 0, "%s: a retired entry is still there", stale);
  cr_assert_eq (count_hidden (d), 0, "a temporary or the marker is left in %s", d);
  free (bin), free (lib), free (keep), free (tool), free (gone), free (stale), free (link), free (ro);
}

static void
commit_tree_set (const char *d)
{
  seed_tree (d);
  struct avm_out *o[2] = { open_new (d, "a", "new a"), new_tree (d) };
  avm_error_t err = NULL;
  char *const retire[] = { "bin", "stale", "missing", NULL };
  cr_assert_eq (avm_out_tree_retire (o[1], retire, &err), 0);
  cr_assert_eq (avm_out_commit_set (o, 2, MARKER, "write them again", &err), 0, "%s", err ? err->msg : "");
  cr_assert_null (o[0]);
  cr_assert_null (o[1]);
  check_new_tree (d);
}

Test (output, tree_replaces_entries_and_retires_the_old_ones)
{
  commit_tree_set (dir);
  cr_assert_eq (exchange_refused, 0);
}

/* Where RENAME_EXCHANGE is not supported: the old entry is moved out
   first, the result is the same.  */
Test (output, tree_without_rename_exchange)
{
  no_exchange = 1;
  commit_tree_set (dir);
  cr_assert_gt (exchange_refused, 0, "the exchange was never tried");
}

Test (output, tree_abort_removes_the_temporary)
{
  seed_tree (dir);
  struct avm_out *t = new_tree (dir);
  avm_out_abort (t);
  cr_assert_eq (count_hidden (dir), 0);
  char *bin = path_in (dir, "bin");
  assert_content (bin, "tool", "old tool");
  free (bin);
}

/* A tree's entry named like another output of the set: refused, nothing
   changed.  */
Test (output, tree_entry_named_like_another_output)
{
  seed_tree (dir);
  struct avm_out *o[2] = { open_new (dir, "bin", "a file named bin"), new_tree (dir) };
  avm_error_t err = NULL;
  cr_assert_lt (avm_out_commit_set (o, 2, MARKER, "write them again", &err), 0);
  cr_assert_not_null (strstr (err->msg, "another output"), "%s", err->msg);
  char *bin = path_in (dir, "bin");
  assert_content (bin, "tool", "old tool");
  cr_assert_eq (count_hidden (dir), 0);
  avm_error_free (err);
  free (bin);
}

/* An entry that cannot be moved out of the way (a mount point: EBUSY)
   after another entry was put in place: the marker stays and lists the
   tree's entries.  */
Test (output, tree_failing_halfway_leaves_the_marker)
{
  seed_tree (dir);
  mnt = path_in (dir, "stale");
  if (mount ("tmpfs", mnt, "tmpfs", 0, "size=64k") < 0)
    {
      int e = errno;
      free (mnt);
      mnt = NULL;
      cr_skip_test ("cannot mount a tmpfs: %s", strerror (e));
    }
  struct avm_out *o[1] = { new_tree (dir) };
  avm_error_t err = NULL;
  char *const retire[] = { "stale", NULL };
  cr_assert_eq (avm_out_tree_retire (o[0], retire, &err), 0);
  cr_assert_lt (avm_out_commit_set (o, 1, MARKER, "write them again", &err), 0);
  cr_assert_not_null (strstr (err->msg, "stale"), "%s", err->msg);
  cr_assert_not_null (strstr (err->msg, "the set is incomplete"), "%s", err->msg);
  char *marker = path_in (dir, MARKER), *text = tu_read (marker);
  cr_assert_not_null (text, "no marker after a half-done commit");
  char *bin = path_in (dir, "bin"), *stale = path_in (dir, "stale");
  cr_assert_not_null (strstr (text, bin), "%s", text);
  cr_assert_not_null (strstr (text, stale), "%s", text);
  assert_content (bin, "tool", "new tool");
  /* Only the marker: the temporary went.  */
  cr_assert_eq (count_hidden (dir), 1);
  avm_error_free (err);
  free (marker), free (text), free (bin), free (stale);
}

/* A signal while a tree is being written removes it (the handler's
   removal makes only system calls).  */
Test (output, signal_removes_a_tree)
{
  seed_tree (dir);
  int ready[2];
  cr_assert (pipe (ready) == 0);
  pid_t pid = fork ();
  cr_assert (pid >= 0);
  if (pid == 0)
    {
      signal (SIGTERM, SIG_DFL);
      struct avm_out *t = new_tree (dir);
      int fd = avm_out_tree_fd (t);
      /* deep and wide enough to need several reads of each directory */
      char name[64];
      for (int i = 0; i < 40; i++)
        {
          snprintf (name, sizeof name, "d%02d", i);
          if (mkdirat (fd, name, 0755) < 0)
            _exit (10);
          int sub = openat (fd, name, O_RDONLY | O_DIRECTORY);
          for (int k = 0; k < 60; k++)
            {
              snprintf (name, sizeof name, "a-rather-long-file-name-to-fill-the-buffer-%03d", k);
              write_at (sub, name, "x", 0444);
            }
          fchmod (sub, 0555);
          fd = sub;
        }
      if (write (ready[1], "x", 1) != 1)
        _exit (13);
      pause ();
      _exit (14);
    }
  close (ready[1]);
  char c;
  cr_assert_eq (read (ready[0], &c, 1), 1, "the child failed before signalling");
  close (ready[0]);
  cr_assert (kill (pid, SIGTERM) == 0);
  int status;
  cr_assert (waitpid (pid, &status, 0) == pid);
  cr_assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGTERM, "status 0x%x", status);
  cr_assert_eq (count_hidden (dir), 0, "the tree's temporary is left after SIGTERM");
  char *bin = path_in (dir, "bin");
  assert_content (bin, "tool", "old tool");
  free (bin);
}

/* What a killed run left (temporaries of the named outputs, files or
   trees) goes; anything else stays.  */
Test (output, remove_stale_temporaries)
{
  static const char *const gone[] = { ".disk.img.tmp.AbC123", ".host.tmp.x1Y2z3" };
  static const char *const kept[]
      = { ".other.tmp.AbC123", ".disk.img.tmp.AbC1234", "disk.img", ".hidden", ".host.tmp." };
  char *tree = path_in (dir, gone[1]);
  cr_assert_eq (mkdir (tree, 0755), 0);
  char *sub = path_in (tree, "new");
  cr_assert_eq (mkdir (sub, 0555), 0);
  free (tu_write (dir, gone[0], "x"));
  for (size_t i = 0; i < ARRAY_SIZE (kept); i++)
    free (tu_write (dir, kept[i], "x"));
  avm_error_t err = NULL;
  char *const names[] = { "disk.img", "host", NULL };
  cr_assert_eq (avm_out_remove_stale (dir, names, &err), 0, "%s", err ? err->msg : "");
  for (size_t i = 0; i < ARRAY_SIZE (gone); i++)
    {
      char *p = path_in (dir, gone[i]);
      cr_assert (access (p, F_OK) < 0, "%s is still there", p);
      free (p);
    }
  for (size_t i = 0; i < ARRAY_SIZE (kept); i++)
    {
      char *p = path_in (dir, kept[i]);
      cr_assert (access (p, F_OK) == 0, "%s was removed", p);
      free (p);
    }
  free (tree);
  free (sub);
}
