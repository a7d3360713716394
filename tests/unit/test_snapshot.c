/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Snapshots (avm-snapshot(1), avm start --restore), with the demo guest
 * under real QEMU (TCG):
 *   - the store: names, a missing snapshot, list and delete, a state file
 *     of the wrong size;
 *   - a helper service marked "snapshot": "refuse" (a fast profile without
 *     a guest): the save is refused naming it, the platform runs on;
 *   - a helper marked "snapshot": "suspend" (the fake helper speaking
 *     secure_env's snapshot control on a socketpair): the save asks it to
 *     suspend, then to resume, in that order; its state file is in the
 *     snapshot and copied back before it starts on a restore, one absent
 *     at the save is removed; one that never answers fails the save naming
 *     it within the timeout, and the guest runs on;
 *   - the demo with its virtiofs share: the save is refused with QEMU's
 *     reason (vhost-user-fs) and the guest runs on;
 *   - the demo without it (-O share=off): its /init writes a boot token to
 *     its data disk (snapshot=on) and then ticks every second, reading the
 *     token and the last tick back from the disk and writing the new one.
 *     Saved, stopped and restored twice: each restore is READY at once,
 *     its first tick continues the saved count, sees the token (the
 *     snapshot's disk layer) and the tick saved last (not one the first
 *     restore wrote: every restore runs on a fresh top layer); the image
 *     itself stays zeros;
 *   - a plan that differs (memory), a damaged state (its header flipped;
 *     truncated): refused with the difference or QEMU's failure, the
 *     snapshot kept; --restore-or-boot boots cold instead, saying why
 *     (before QEMU starts for a plan that differs, after QEMU's failure
 *     for the damaged state).
 */
#include "test_start.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct ts_env env;

static void
setup (void)
{
  ts_env_init (&env);
}

static void
teardown (void)
{
  ts_env_fini (&env);
}

TestSuite (snapshot, .init = setup, .fini = teardown);

/* `avm ARGS...` with this test's directories: exit status, stdout and
   stderr (freed at the end of the test).  */
static int
run_avm (char **out, char **err, ...)
{
  const char *argv[32];
  size_t n = 0;
  argv[n++] = tu_avm_bin ();
  va_list ap;
  va_start (ap, err);
  for (const char *s; (s = va_arg (ap, const char *)) && n < 31;)
    argv[n++] = s;
  va_end (ap);
  argv[n] = NULL;
  char *envv[] = { ts_fmt ("AVM_RUNTIME_DIR=%s", env.run), ts_fmt ("AVM_STATE_DIR=%s", env.state), NULL };
  char *o = NULL, *e = NULL;
  int r = tu_run ((char **) argv, envv, &o, &e);
  *out = ts_fmt ("%s", o ? o : "");
  *err = ts_fmt ("%s", e ? e : "");
  free (o);
  free (e);
  return r;
}

/* ---- the store, without QEMU -------------------------------------------- */

Test (snapshot, names_and_store)
{
  char *out, *err;
  int rc = ts_avm (&env, &out, "snapshot", "list", NULL);
  cr_assert_eq (rc, 0);
  cr_assert (strstr (out, "no snapshots of instance 1"), "%s", out);
  rc = ts_avm (&env, &out, "snapshot", "list", "--json", NULL);
  cr_assert_eq (rc, 0);
  cr_assert (strstr (out, "[]"), "%s", out);

  const char *bad[] = { "", ".hidden", "a/b", "-x", "x y", NULL };
  for (size_t i = 0; bad[i]; i++)
    {
      rc = tu_avm (&out, &err, "snapshot", "delete", bad[i], NULL);
      cr_expect_eq (rc, 2, "name \"%s\": exit %d", bad[i], rc);
      free (out);
      free (err);
    }
  rc = tu_avm (&out, &err, "snapshot", "save", NULL);
  cr_assert_eq (rc, 2);
  cr_assert (strstr (err, "missing snapshot NAME"), "%s", err);
  free (out);
  free (err);
  rc = tu_avm (&out, &err, "snapshot", "frobnicate", NULL);
  cr_assert_eq (rc, 2);
  free (out);
  free (err);

  /* Not there: exit 1, and what there is.  */
  rc = ts_avm (&env, &out, "snapshot", "delete", "nope", NULL);
  cr_assert_eq (rc, 1);
  /* Not running.  */
  rc = ts_avm (&env, &out, "snapshot", "save", "x", NULL);
  cr_assert_eq (rc, 1);
}

/* ---- the demo ------------------------------------------------------------- */

static char *
demo_images (void)
{
  char *images = tu_demo_image ();
  char *img = ts_fmt ("%s", images);
  free (images);
  return img;
}

/* The console log of the current run (after its last run header).  */
static const char *
this_run (const char *log)
{
  const char *p = log, *q;
  while ((q = strstr (p, "=== avm ")))
    p = q + 1;
  return p;
}

struct tick
{
  long n, last;
  char disk[64];
  long long time; /* the guest's clock */
};

/* The first (FIRST) or last tick line of TEXT, or false.  */
static bool
find_tick (const char *text, bool first, struct tick *t)
{
  const char *p = text, *hit = NULL, *q;
  while ((q = strstr (p, "AVM_DEMO tick ")))
    {
      hit = q;
      if (first)
        break;
      p = q + 1;
    }
  if (!hit)
    return false;
  char last[32] = "";
  *t = (struct tick) { .n = -1, .last = -1 };
  if (sscanf (hit, "AVM_DEMO tick %ld disk=%63s last=%31s time=%lld", &t->n, t->disk, last, &t->time) < 4)
    return false;
  t->last = strcmp (last, "none") ? strtol (last, NULL, 10) : -1;
  return true;
}

/* Wait until the current run's console shows a tick after tick AFTER.  */
static struct tick
wait_tick (long after, bool first, double timeout)
{
  double end = ts_now () + timeout;
  struct tick t = { 0 };
  do
    {
      char *log = tu_read (ts_fmt ("%s/1/logs/console-console.log", env.state));
      bool ok = log && find_tick (this_run (log), first, &t) && t.n > after;
      free (log);
      if (ok)
        return t;
      tu_sleep_ms (200);
    }
  while (ts_now () < end);
  cr_assert_fail ("no tick after %ld within %.0f s", after, timeout);
  return t;
}

static void
assert_zeros (const char *path)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  cr_assert_geq (fd, 0, "%s: %s", path, strerror (errno));
  static char buf[1 << 16];
  ssize_t n;
  long long off = 0;
  while ((n = read (fd, buf, sizeof buf)) > 0)
    {
      for (ssize_t i = 0; i < n; i++)
        cr_assert_eq (buf[i], 0, "%s: byte %lld is not zero: the image was written", path, off + i);
      off += n;
    }
  close (fd);
}

static void
stop_avm (struct ts_avm *a)
{
  cr_assert_eq (kill (a->pid, SIGTERM), 0);
  cr_assert_eq (ts_wait (a, 60), 0, "%s", ts_stderr (a));
}

/* A helper holding guest state (services.NAME.snapshot: refuse): the
   supervisor refuses the save itself, naming it, before asking QEMU.  */
Test (snapshot, stateful_helper_refuses, .timeout = TU_TIMEOUT (120))
{
  char *svc = ts_fmt ("{\"keys\": {\"exec\": [\"%s\", \"hang\"], \"snapshot\": \"refuse\"},"
                      " \"logs\": {\"exec\": [\"%s\", \"hang\"]}}",
                      env.fake, env.fake);
  struct ts_avm a;
  ts_start (&env, &a, ts_profile (&env, "stateful", svc, NULL, NULL), NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", 60);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  char *out, *err;
  int rc = run_avm (&out, &err, "snapshot", "save", "s1", NULL);
  cr_assert_eq (rc, 1, "exit %d: %s", rc, err);
  cr_assert (strstr (err, "snapshot s1: services.keys holds guest state (snapshot: refuse)"), "%s", err);
  /* The hint names the profile as avm check takes it (its file).  */
  cr_assert (strstr (err, "(avm check -p /") && strstr (err, "stateful.json lists what blocks snapshots)"), "%s", err);
  cr_assert_null (strstr (err, "services.logs"), "%s", err);
  struct stat st;
  cr_assert_neq (stat (ts_fmt ("%s/1/snapshots/s1", env.state), &st), 0);
  char *status = NULL;
  cr_assert_eq (ts_avm (&env, &status, "status", "--json", NULL), 0);
  cr_assert (strstr (status, "\"running\""), "%s", status);
  stop_avm (&a);
}

/* A profile with one helper that suspends (services.keys, the fake
   helper's snapshot control, ACTION: snapshot-control or snapshot-mute)
   and its state files STATE and GONE.  */
static char *
suspend_profile (const char *name, const char *action, const char *state, const char *gone)
{
  char *svc = ts_fmt ("{\"keys\": {\"exec\": [\"%s\", \"cat=%s\", \"write-file=%s:written at start\","
                      " \"%s=${fd:keys_snapshot}\"],"
                      " \"snapshot\": \"suspend\", \"snapshot_control\": \"keys_snapshot\","
                      " \"snapshot_files\": [\"%s\", \"%s\"]},"
                      " \"logs\": {\"exec\": [\"%s\", \"hang\"]}}",
                      env.fake, state, state, action, state, gone, env.fake);
  return ts_profile (&env, name, svc, NULL,
                     "\"stop\": {\"timeout\": 1}, \"resources\": {\"keys_snapshot\": {\"type\": \"socketpair\"}}");
}

/* The lines of services.keys's log so far.  */
static char *
keys_log (void)
{
  char *log = tu_read (ts_fmt ("%s/1/logs/keys.log", env.state));
  char *r = ts_fmt ("%s", log ? log : "");
  free (log);
  return r;
}

static void
wait_log (const char *what, double timeout)
{
  double end = ts_now () + timeout;
  while (!strstr (keys_log (), what) && ts_now () < end)
    tu_sleep_ms (100);
  cr_assert (strstr (keys_log (), what), "no \"%s\" in keys.log: %s", what, keys_log ());
}

/* services.NAME.snapshot: suspend: suspend, then resume, around the save;
   the state file in the snapshot, copied back before the helper starts on
   a restore.  */
Test (snapshot, helper_suspends, .timeout = TU_TIMEOUT (180))
{
  char *state = ts_fmt ("%s/keys-state", env.dir), *gone = ts_fmt ("%s/keys-gone", env.dir);
  char *profile = suspend_profile ("suspending", "snapshot-control", state, gone);
  struct ts_avm a;
  ts_start (&env, &a, profile, NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", 60);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  wait_log ("cat ", 10);
  cr_assert (strstr (keys_log (), ts_fmt ("cat %s: absent", state)), "%s", keys_log ());
  char *out, *err;
  int rc = run_avm (&out, &err, "snapshot", "save", "s1", NULL);
  cr_assert_eq (rc, 0, "exit %d: %s\n%s", rc, err, ts_stderr (&a));
  wait_log ("snapshot: resume", 10);
  /* Suspended, then resumed: once each, in that order.  */
  char *log = keys_log ();
  char *sus = strstr (log, "snapshot: suspend"), *res = strstr (log, "snapshot: resume");
  cr_assert (sus && res && sus < res, "%s", log);
  cr_assert_null (strstr (sus + 1, "snapshot: suspend"), "%s", log);
  cr_assert_null (strstr (res + 1, "snapshot: resume"), "%s", log);
  cr_assert (strstr (ts_stderr (&a), "snapshot s1: services.keys suspended"), "%s", ts_stderr (&a));
  cr_assert (strstr (ts_stderr (&a), "snapshot s1: services.keys resumed"), "%s", ts_stderr (&a));
  /* The state file in the snapshot, listed in its metadata with the one
     that was absent.  */
  char *dir = ts_fmt ("%s/1/snapshots/s1", env.state);
  char *copy = tu_read (ts_fmt ("%s/service-keys/keys-state", dir));
  cr_assert (copy && !strcmp (copy, "written at start\n"), "%s", copy ? copy : "(no copy)");
  free (copy);
  char *text = tu_read (ts_fmt ("%s/snapshot.json", dir));
  json_t *meta = ts_json (text);
  free (text);
  json_t *files = json_object_get (json_object_get (json_object_get (meta, "services"), "keys"), "files");
  cr_assert_eq (json_array_size (files), 2);
  cr_assert_str_eq (json_string_value (json_object_get (json_array_get (files, 0), "file")), "service-keys/keys-state");
  cr_assert_str_eq (json_string_value (json_object_get (json_array_get (files, 0), "path")), state);
  cr_assert (json_is_true (json_object_get (json_array_get (files, 1), "absent")));
  json_decref (meta);
  char *status = NULL;
  cr_assert_eq (ts_avm (&env, &status, "status", "--json", NULL), 0);
  cr_assert (strstr (status, "\"running\""), "%s", status);
  stop_avm (&a);

  /* Changed since: the restore puts the saved state back before the
     helper starts (it prints what it finds), and removes the file the
     save found absent.  */
  free (tu_write (env.dir, "keys-state", "changed after the save\n"));
  free (tu_write (env.dir, "keys-gone", "made after the save\n"));
  struct ts_avm b;
  ts_start (&env, &b, profile, "--restore", "s1", NULL);
  msgs = ts_wait_notify (&b, "READY=1", 60);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&b));
  cr_assert (strstr (ts_stderr (&b), "snapshot s1: state files of services.keys restored"), "%s", ts_stderr (&b));
  wait_log (ts_fmt ("cat %s: written at start", state), 10);
  cr_assert_null (strstr (this_run (keys_log ()), "changed after the save"), "%s", keys_log ());
  struct stat st;
  cr_assert_neq (stat (gone, &st), 0, "%s was not removed", gone);
  stop_avm (&b);
}

/* A helper that never acknowledges the suspend request: the save fails
   naming it within the timeout (5 s), nothing is left behind, the guest
   runs on and the helper is asked to resume.  */
Test (snapshot, helper_mute, .timeout = TU_TIMEOUT (120))
{
  char *state = ts_fmt ("%s/keys-state", env.dir), *gone = ts_fmt ("%s/keys-gone", env.dir);
  struct ts_avm a;
  ts_start (&env, &a, suspend_profile ("mute", "snapshot-mute", state, gone), NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", 60);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  char *out, *err;
  double t0 = ts_now ();
  int rc = run_avm (&out, &err, "snapshot", "save", "s1", NULL);
  double took = ts_now () - t0;
  cr_assert_eq (rc, 1, "exit %d: %s", rc, err);
  cr_assert (strstr (err, "services.keys did not acknowledge the suspend request within 5 s"), "%s", err);
  cr_assert (took >= 4.5 && took < 30, "the save failed after %.1f s", took);
  wait_log ("snapshot: resume (mute)", 10);
  struct stat st;
  cr_assert_neq (stat (ts_fmt ("%s/1/snapshots/s1", env.state), &st), 0);
  cr_assert_neq (stat (ts_fmt ("%s/1/snapshots/.s1.new", env.state), &st), 0);
  char *status = NULL;
  cr_assert_eq (ts_avm (&env, &status, "status", "--json", NULL), 0);
  cr_assert (strstr (status, "\"running\""), "%s", status);
  stop_avm (&a);
}

Test (snapshot, share_blocks, .timeout = TU_TIMEOUT (300))
{
  char *img = demo_images ();
  struct ts_avm a;
  ts_start (&env, &a, "demo", "--images", img, "--set", "machine.accel=tcg", NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", 200);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  char *out, *err;
  int rc = run_avm (&out, &err, "snapshot", "save", "boot", NULL);
  if (getuid () != 0)
    cr_skip_test ("not root: the demo has no virtiofs share to block the save");
  cr_assert_eq (rc, 1, "exit %d: %s", rc, err);
  /* QEMU's reason, and the profile key of the device.  */
  cr_assert (strstr (err, "non-migratable device") && strstr (err, "vhost-user-fs") && strstr (err, "shares[0]"), "%s",
             err);
  char *status = NULL;
  cr_assert_eq (ts_avm (&env, &status, "status", "--json", NULL), 0);
  cr_assert (strstr (status, "\"running\""), "%s", status);
  /* Nothing left behind.  */
  struct stat st;
  cr_assert_neq (stat (ts_fmt ("%s/1/snapshots/boot", env.state), &st), 0);
  cr_assert_neq (stat (ts_fmt ("%s/1/snapshots/.boot.new", env.state), &st), 0);
  /* The guest runs on: ticks after the refusal.  */
  struct tick t = wait_tick (0, false, 30);
  wait_tick (t.n, false, 30);
  stop_avm (&a);
}

/* Restore snapshot NAME (with one more --set SET, or NULL): READY, said
   so, and the first tick.  */
static struct tick
restore_with (const char *img, struct ts_avm *a, const char *name, const char *set)
{
  double t0 = ts_now ();
  ts_start (&env, a, "demo", "--images", img, "--set", "machine.accel=tcg", "-O", "share=off", "--restore", name,
            set ? "--set" : NULL, set, NULL);
  char *msgs = ts_wait_notify (a, "READY=1", 60);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (a));
  cr_log_info ("snapshot: restore of %s READY after %.2f s", name, ts_now () - t0);
  cr_assert (strstr (ts_stderr (a), ts_fmt ("guest restored from snapshot %s", name)), "%s", ts_stderr (a));
  return wait_tick (0, true, 30);
}

static struct tick
restore (const char *img, struct ts_avm *a, const char *name)
{
  return restore_with (img, a, name, NULL);
}

Test (snapshot, demo_save_restore, .timeout = TU_TIMEOUT (600))
{
  char *img = demo_images ();
  char *data = ts_fmt ("%s/data.img", img);
  struct ts_avm a;
  ts_start (&env, &a, "demo", "--images", img, "--set", "machine.accel=tcg", "-O", "share=off", NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", 200);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  /* The boot token /init wrote to the disk, read back by the ticks.  */
  struct tick t = wait_tick (1, false, 30);
  cr_assert (strcmp (t.disk, "none"), "the guest sees no token on its disk: %ld %s", t.n, t.disk);
  char *token = ts_fmt ("%s", t.disk);

  char *out, *err;
  int rc = run_avm (&out, &err, "snapshot", "save", "boot", NULL);
  cr_assert_eq (rc, 0, "exit %d: %s", rc, err);
  cr_assert (strstr (out, ts_fmt ("%s/1/snapshots/boot", env.state)), "%s", out);
  /* Saving again under the name needs --replace.  */
  rc = run_avm (&out, &err, "snapshot", "save", "boot", NULL);
  cr_assert_eq (rc, 1, "exit %d: %s", rc, err);
  cr_assert (strstr (err, "exists"), "%s", err);
  /* The guest runs on after the save.  */
  struct tick after_save = wait_tick (t.n, false, 30);
  double saved = ts_now ();
  /* A second one, compressed (lz4).  */
  rc = run_avm (&out, &err, "snapshot", "save", "packed", "--compress", NULL);
  cr_assert_eq (rc, 0, "exit %d: %s", rc, err);
  stop_avm (&a);
  assert_zeros (data);
  /* Let the host's clock run ahead of the saved guest's.  */
  while (ts_now () - saved < 4)
    tu_sleep_ms (200);

  rc = run_avm (&out, &err, "snapshot", "list", NULL);
  cr_assert_eq (rc, 0, "%s", err);
  cr_assert (strstr (out, "boot") && strstr (out, "demo"), "%s", out);

  /* First restore: the count goes on from the save, the token is there.  */
  struct tick r1 = restore (img, &a, "boot");
  cr_assert_str_eq (r1.disk, token);
  cr_assert (r1.n > 1 && r1.n <= after_save.n, "tick %ld after the restore; saved around %ld", r1.n, after_save.n);
  cr_assert_eq (r1.last, r1.n - 1);
  /* It runs on, writing ticks to its disk.  */
  struct tick later = wait_tick (r1.n + 2, false, 30);
  cr_assert_eq (later.last, later.n - 1);
  /* Its clock was set to the host's through the guest agent (it was 4 s
     or more behind), and says so.  */
  long long host = (long long) time (NULL);
  cr_assert (later.time >= host - 3 && later.time <= host + 1, "the guest's clock says %lld, the host's %lld",
             later.time, host);
  cr_assert (strstr (ts_stderr (&a), "guest clock set through the guest agent (it was "), "%s", ts_stderr (&a));
  char *stj = NULL;
  cr_assert_eq (ts_avm (&env, &stj, "status", "--json", NULL), 0);
  json_t *sj = json_loads (stj, 0, NULL);
  json_t *clock = json_object_get (sj, "clock");
  cr_assert_str_eq (json_string_value (json_object_get (clock, "state")), "set", "%s", stj);
  cr_assert_geq (json_real_value (json_object_get (clock, "behind")), 3.0, "%s", stj);
  json_decref (sj);
  stop_avm (&a);

  /* Second restore: the same state again; the first restore's writes are
     gone (a fresh top layer each time).  */
  struct tick r2 = restore (img, &a, "boot");
  cr_assert_str_eq (r2.disk, token);
  cr_assert_eq (r2.n, r1.n, "restores of one snapshot differ: tick %ld, then %ld", r1.n, r2.n);
  cr_assert_eq (r2.last, r1.last, "the second restore sees tick %ld on its disk (the first restore wrote %ld)", r2.last,
                later.n);
  char *status = NULL;
  cr_assert_eq (ts_avm (&env, &status, "status", "--json", NULL), 0);
  cr_assert (strstr (status, "\"running\""), "%s", status);
  stop_avm (&a);
  assert_zeros (data);

  /* The compressed one: smaller (about half, for the demo), restored
     alike.  */
  struct stat plain, packed;
  cr_assert_eq (stat (ts_fmt ("%s/1/snapshots/boot/state", env.state), &plain), 0);
  cr_assert_eq (stat (ts_fmt ("%s/1/snapshots/packed/state.lz4", env.state), &packed), 0);
  cr_assert_lt (packed.st_size, plain.st_size * 3 / 4, "lz4: %lld bytes of %lld", (long long) packed.st_size,
                (long long) plain.st_size);
  struct tick r3 = restore (img, &a, "packed");
  cr_assert_str_eq (r3.disk, token);
  cr_assert (r3.n > after_save.n, "tick %ld after restoring packed, saved after tick %ld", r3.n, after_save.n);
  stop_avm (&a);
  rc = run_avm (&out, &err, "snapshot", "delete", "packed", NULL);
  cr_assert_eq (rc, 0, "%s", err);

  /* A plan that differs: refused before anything starts, naming it.  */
  rc = run_avm (&out, &err, "start", "-p", "demo", "--images", img, "--set", "machine.accel=tcg", "-O", "share=off",
                "--set", "machine.memory=640M", "--restore", "boot", NULL);
  cr_assert_eq (rc, 1, "exit %d: %s", rc, err);
  cr_assert (strstr (err, "snapshot boot has the QEMU line -m 512M") && strstr (err, "640M"), "%s", err);
  /* ... or booted cold when asked (a dry run shows it).  */
  rc = run_avm (&out, &err, "start", "-p", "demo", "--images", img, "--set", "machine.accel=tcg", "-O", "share=off",
                "--set", "machine.memory=640M", "--restore-or-boot", "boot", "--dry-run", NULL);
  cr_assert_eq (rc, 0, "exit %d: %s", rc, err);
  cr_assert (strstr (err, "booting instead (--restore-or-boot)"), "%s", err);
  cr_assert_null (strstr (out, "-incoming"), "%s", out);
  /* A disk that is no longer writable: its layer fits nothing.  */
  rc = run_avm (&out, &err, "start", "-p", "demo", "--images", img, "--set", "machine.accel=tcg", "-O", "share=off",
                "--set", "disks[0].readonly=true", "--restore", "boot", "--dry-run", NULL);
  cr_assert_eq (rc, 1, "exit %d: %s", rc, err);
  cr_assert (strstr (err, "has a layer for disk data, which"), "%s", err);
  rc = run_avm (&out, &err, "start", "-p", "demo", "--images", img, "--set", "machine.accel=tcg", "-O", "share=off",
                "--set", "disks[0].readonly=true", "--restore-or-boot", "boot", "--dry-run", NULL);
  cr_assert_eq (rc, 0, "exit %d: %s", rc, err);
  cr_assert (strstr (err, "booting instead (--restore-or-boot)"), "%s", err);
  /* The restore plan itself.  */
  rc = run_avm (&out, &err, "start", "-p", "demo", "--images", img, "--set", "machine.accel=tcg", "-O", "share=off",
                "--restore", "boot", "--dry-run", NULL);
  cr_assert_eq (rc, 0, "exit %d: %s", rc, err);
  cr_assert (strstr (out, "-incoming defer"), "%s", out);
  cr_assert (strstr (out, ts_fmt ("%s/1/snapshots/boot/disk-data.qcow2", env.state)), "%s", out);

  /* A damaged copy: the stream's header flipped (flipped RAM pages would
     load: QEMU has no checksum of them).  */
  char *bad = ts_fmt ("%s/1/snapshots/bad", env.state);
  char *cp[] = { "/bin/cp", "-a", ts_fmt ("%s/1/snapshots/boot", env.state), bad, NULL };
  cr_assert_eq (tu_run (cp, NULL, NULL, NULL), 0);
  struct stat st;
  cr_assert_eq (stat (ts_fmt ("%s/state", bad), &st), 0);
  for (long long off = 0; off < 8; off++)
    tu_flip_bits (ts_fmt ("%s/state", bad), off, 0xff);
  ts_start (&env, &a, "demo", "--images", img, "--set", "machine.accel=tcg", "-O", "share=off", "--restore", "bad",
            NULL);
  rc = ts_wait (&a, 60);
  cr_assert_eq (rc, 5, "exit %d: %s", rc, ts_stderr (&a));
  cr_assert (strstr (ts_stderr (&a), "snapshot bad: QEMU could not restore it"), "%s", ts_stderr (&a));
  cr_assert_eq (stat (ts_fmt ("%s/state", bad), &st), 0, "the damaged snapshot was removed");
  /* ... or, asked to, boots cold after QEMU's failure: a new boot, its
     ticks from 1 with a token of its own.  */
  ts_start (&env, &a, "demo", "--images", img, "--set", "machine.accel=tcg", "-O", "share=off", "--restore-or-boot",
            "bad", NULL);
  msgs = ts_wait_notify (&a, "READY=1", 200);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  cr_assert (strstr (ts_stderr (&a), "snapshot bad: QEMU could not restore it")
                 && strstr (ts_stderr (&a), "booting instead (--restore-or-boot)"),
             "%s", ts_stderr (&a));
  struct tick cold = wait_tick (0, true, 30);
  cr_assert_eq (cold.n, 1, "tick %ld: not a cold boot", cold.n);
  cr_assert_str_neq (cold.disk, token);
  stop_avm (&a);
  /* Truncated: refused before QEMU starts.  */
  cr_assert_eq (truncate (ts_fmt ("%s/state", bad), st.st_size / 2), 0);
  rc = run_avm (&out, &err, "start", "-p", "demo", "--images", img, "--set", "machine.accel=tcg", "-O", "share=off",
                "--restore", "bad", NULL);
  cr_assert_eq (rc, 1, "exit %d: %s", rc, err);
  cr_assert (strstr (err, "the state file is damaged"), "%s", err);

  rc = run_avm (&out, &err, "snapshot", "delete", "bad", NULL);
  cr_assert_eq (rc, 0, "%s", err);
  rc = run_avm (&out, &err, "snapshot", "delete", "boot", NULL);
  cr_assert_eq (rc, 0, "%s", err);
  rc = run_avm (&out, &err, "snapshot", "list", "--json", NULL);
  cr_assert (strstr (out, "[]"), "%s", out);
}

/* snapshot.fast: the RAM in ${run_dir}/ram, copied by the save (holes
   kept), mapped private by the restore, the state without it.  */
Test (snapshot, fast_path, .timeout = TU_TIMEOUT (400))
{
  char *img = demo_images ();
  struct ts_avm a;
  ts_start (&env, &a, "demo", "--images", img, "--set", "machine.accel=tcg", "-O", "share=off", "--set",
            "snapshot.fast=true", NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", 200);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  struct stat st;
  cr_assert_eq (stat (ts_fmt ("%s/1/ram", env.run), &st), 0, "no RAM file in the runtime directory");
  cr_assert_eq (st.st_size, 512 << 20);
  struct tick t = wait_tick (1, false, 30);
  char *out, *err;
  int rc = run_avm (&out, &err, "snapshot", "save", "fast", NULL);
  cr_assert_eq (rc, 0, "exit %d: %s", rc, err);
  stop_avm (&a);
  char *dir = ts_fmt ("%s/1/snapshots/fast", env.state);
  struct stat ram, state;
  cr_assert_eq (stat (ts_fmt ("%s/ram", dir), &ram), 0);
  cr_assert_eq (stat (ts_fmt ("%s/state", dir), &state), 0);
  /* The copy kept the holes; the state left the RAM out.  */
  cr_assert_eq (ram.st_size, 512 << 20);
  cr_assert_lt ((long long) ram.st_blocks * 512, 400ll << 20, "the RAM copy is not sparse: %lld bytes allocated",
                (long long) ram.st_blocks * 512);
  cr_assert_lt (state.st_size, 32 << 20, "the state holds the RAM: %lld bytes", (long long) state.st_size);

  struct tick r1 = restore_with (img, &a, "fast", "snapshot.fast=true");
  cr_assert_str_eq (r1.disk, t.disk);
  cr_assert (r1.n > t.n, "tick %ld after the restore; %ld before the save", r1.n, t.n);
  /* QEMU maps the snapshot's RAM file (private: copy on write), nothing
     copied up front.  */
  pid_t q = ts_qemu_pid (&env);
  char *maps = tu_read (ts_fmt ("/proc/%d/maps", (int) q));
  cr_assert (maps && strstr (maps, ts_fmt ("%s/ram", dir)), "QEMU (pid %d) does not map %s/ram", (int) q, dir);
  free (maps);
  /* Saved again, such a guest's RAM (no longer a shared file) is
     streamed; that snapshot restores into the same plan.  */
  rc = run_avm (&out, &err, "snapshot", "save", "again", NULL);
  cr_assert_eq (rc, 0, "exit %d: %s", rc, err);
  stop_avm (&a);
  struct stat again_ram;
  cr_assert_neq (stat (ts_fmt ("%s/1/snapshots/again/ram", env.state), &again_ram), 0);
  cr_assert_eq (stat (ts_fmt ("%s/1/snapshots/again/state", env.state), &state), 0);
  cr_assert_gt (state.st_size, 32 << 20, "the RAM was not streamed: %lld bytes", (long long) state.st_size);
  struct tick r2 = restore_with (img, &a, "again", "snapshot.fast=true");
  cr_assert_str_eq (r2.disk, t.disk);
  cr_assert (r2.n > r1.n, "tick %ld, restored from a save after tick %ld", r2.n, r1.n);
  stop_avm (&a);
  /* The snapshot's RAM is a copy: the restored guest did not write it.  */
  struct stat again;
  cr_assert_eq (stat (ts_fmt ("%s/ram", dir), &again), 0);
  cr_assert_eq (again.st_mtim.tv_sec, ram.st_mtim.tv_sec);
  cr_assert_eq (again.st_mtim.tv_nsec, ram.st_mtim.tv_nsec);

  /* Without snapshot.fast the plan's RAM line differs: refused.  */
  rc = run_avm (&out, &err, "start", "-p", "demo", "--images", img, "--set", "machine.accel=tcg", "-O", "share=off",
                "--restore", "fast", NULL);
  cr_assert_eq (rc, 1, "exit %d: %s", rc, err);
  cr_assert (strstr (err, "memory-backend"), "%s", err);
}

/* avm_copy_sparse (lib/util/fs.c), which copies layers and RAM files:
   the same bytes, the holes kept, blocks of zeros left out between file
   systems (a tmpfs into a disk's), on the same one too.  */
#include "util/fs.h"

static void
copy_case (const char *from, const char *to)
{
  int fd = open (from, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  cr_assert_geq (fd, 0, "%s: %s", from, strerror (errno));
  cr_assert_eq (ftruncate (fd, 64 << 20), 0);
  static char data[1 << 16], zeros[1 << 16];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (char) (i * 7 + 1);
  /* Data at 1 MiB and at the end, written zeros at 8 MiB.  */
  cr_assert_eq (pwrite (fd, data, sizeof data, 1 << 20), (ssize_t) sizeof data);
  cr_assert_eq (pwrite (fd, zeros, sizeof zeros, 8 << 20), (ssize_t) sizeof zeros);
  cr_assert_eq (pwrite (fd, data, 100, (64 << 20) - 100), 100);
  close (fd);
  unlink (to);
  avm_error_t err = NULL;
  int r = avm_copy_sparse (from, to, 0600, &err);
  cr_assert_eq (r, 0, "%s", err ? err->msg : "");
  char *argv[] = { "/usr/bin/cmp", (char *) from, (char *) to, NULL };
  cr_assert_eq (tu_run (argv, NULL, NULL, NULL), 0, "%s and %s differ", from, to);
  struct stat st;
  cr_assert_eq (stat (to, &st), 0);
  cr_assert_eq (st.st_size, 64 << 20);
  cr_assert_leq ((long long) st.st_blocks * 512, 1 << 20, "%s: %lld bytes allocated", to,
                 (long long) st.st_blocks * 512);
  /* An existing target is not overwritten.  */
  r = avm_copy_sparse (from, to, 0600, &err);
  cr_assert_eq (r, -EEXIST);
  avm_error_free (err);
  unlink (from);
  unlink (to);
}

Test (snapshot, copy_sparse)
{
  copy_case (ts_fmt ("%s/a", env.dir), ts_fmt ("%s/b", env.dir));
  if (access ("/dev/shm", W_OK) == 0)
    copy_case (ts_fmt ("/dev/shm/avm-test-copy-%d", (int) getpid ()), ts_fmt ("%s/c", env.dir));
}

/* services.NAME.snapshot_files on a stateless helper (the AAOS modem
   simulator's files): taken as they are while the guest is paused, put
   back before the helper starts anew on a restore; no suspend request.  */
Test (snapshot, helper_files_stateless, .timeout = TU_TIMEOUT (120))
{
  char *state = ts_fmt ("%s/modem-state", env.dir);
  free (tu_write (env.dir, "modem-state", "at the save\n"));
  char *svc = ts_fmt ("{\"keys\": {\"exec\": [\"%s\", \"cat=%s\", \"hang\"], \"snapshot_files\": [\"%s\"]}}", env.fake,
                      state, state);
  char *profile = ts_profile (&env, "stateless-files", svc, NULL, "\"stop\": {\"timeout\": 1}");
  struct ts_avm a;
  ts_start (&env, &a, profile, NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", 60);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  wait_log ("cat ", 10);
  char *out, *err;
  int rc = run_avm (&out, &err, "snapshot", "save", "s1", NULL);
  cr_assert_eq (rc, 0, "exit %d: %s\n%s", rc, err, ts_stderr (&a));
  char *copy = tu_read (ts_fmt ("%s/1/snapshots/s1/service-keys/modem-state", env.state));
  cr_assert (copy && !strcmp (copy, "at the save\n"), "%s", copy ? copy : "(no copy)");
  free (copy);
  cr_assert_null (strstr (keys_log (), "snapshot: suspend"), "%s", keys_log ());
  stop_avm (&a);

  free (tu_write (env.dir, "modem-state", "changed since\n"));
  ts_start (&env, &a, profile, "--restore", "s1", NULL);
  msgs = ts_wait_notify (&a, "READY=1", 60);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  char *now = tu_read (state);
  cr_assert (now && !strcmp (now, "at the save\n"), "%s", now ? now : "(none)");
  free (now);
  stop_avm (&a);
  char *log = keys_log ();
  const char *last = strstr (log, "=== avm ");
  for (const char *q; last && (q = strstr (last + 1, "=== avm "));)
    last = q;
  cr_assert (last && strstr (last, ts_fmt ("cat %s: at the save", state)),
             "the helper did not start on the saved file:\n%s", log);
}
