/* SPDX-License-Identifier: Apache-2.0 */
/*
 * avm_props_sync: a generated properties disk is kept when it matches the
 * boot properties, the architecture and the key, and rebuilt otherwise;
 * read back with avm_inspect.  Two RSA-4096 keys are made with `openssl
 * genrsa` once per run (in parallel, under a lock) in the runner's shared
 * directory.
 */
#include "disk/avb.h"
#include "disk/gpt.h"
#include "disk/inspect.h"
#include "disk/props.h"
#include "disk/propsync.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define assert_contains(hay, needle) cr_assert (strstr ((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))

static char *dir, *disk, *key1, *key2;

/* Both keys, made on first use by whichever worker gets the lock.  */
static void
make_keys (void)
{
  _cleanup_free_ char *shared = tu_run_shared_dir ("propsync"), *lock = NULL, *t1 = NULL, *t2 = NULL;
  struct stat st;
  if (mkdir (shared, 0700) < 0 && errno != EEXIST)
    cr_assert_fail ("mkdir %s: %s", shared, strerror (errno));
  cr_assert (lstat (shared, &st) == 0 && S_ISDIR (st.st_mode) && st.st_uid == getuid (), "%s is not ours", shared);
  cr_assert (asprintf (&key1, "%s/k1.pem", shared) > 0 && asprintf (&key2, "%s/k2.pem", shared) > 0
             && asprintf (&t1, "%s/.tmp-k1.pem", shared) > 0 && asprintf (&t2, "%s/.tmp-k2.pem", shared) > 0
             && asprintf (&lock, "%s/.lock", shared) > 0);
  _cleanup_close_ int fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  cr_assert_geq (fd, 0);
  cr_assert_eq (flock (fd, LOCK_EX), 0);
  if (access (key2, F_OK) != 0)
    {
      char *a1[] = { "openssl", "genrsa", "-out", t1, "4096", NULL };
      char *a2[] = { "openssl", "genrsa", "-out", t2, "4096", NULL };
      posix_spawn_file_actions_t fa;
      pid_t p1, p2;
      int s1, s2;
      posix_spawn_file_actions_init (&fa);
      posix_spawn_file_actions_addopen (&fa, 2, "/dev/null", O_WRONLY, 0);
      cr_assert_eq (posix_spawnp (&p1, "openssl", &fa, NULL, a1, environ), 0);
      cr_assert_eq (posix_spawnp (&p2, "openssl", &fa, NULL, a2, environ), 0);
      posix_spawn_file_actions_destroy (&fa);
      cr_assert_eq (waitpid (p1, &s1, 0), p1);
      cr_assert_eq (waitpid (p2, &s2, 0), p2);
      cr_assert (WIFEXITED (s1) && WEXITSTATUS (s1) == 0 && WIFEXITED (s2) && WEXITSTATUS (s2) == 0,
                 "openssl genrsa 4096 failed");
      cr_assert_eq (rename (t1, key1), 0);
      cr_assert_eq (rename (t2, key2), 0);
    }
  flock (fd, LOCK_UN);
}

static void
setup (void)
{
  umask (022);
  make_keys ();
  dir = tu_tmpdir ();
  cr_assert (asprintf (&disk, "%s/state/properties.img", dir) > 0);
}

static void
teardown (void)
{
  tu_rmtree (dir);
  free (dir);
  free (disk);
  free (key1);
  free (key2);
}

TestSuite (propsync, .init = setup, .fini = teardown);

static json_t *
props (const char *serialno)
{
  return json_pack ("{s:s, s:s, s:s}", "androidboot.serialno", serialno, "androidboot.boot_devices",
                    "pci0000:00/0000:00:0f.0,pci0000:00/0000:00:10.0", "androidboot.hardware.egl", "angle");
}

/* PATH built directly with the library, as cvd2img does.  */
static void
create (const char *path, json_t *bp, const char *arch, const char *keyfile)
{
  _cleanup_error_ avm_error_t err = NULL;
  struct avm_avb_key *k = NULL;
  cr_assert_eq (avm_avb_key_load (keyfile, &k, &err), 0, "%s", err ? err->msg : "");
  struct avm_props_spec spec = { .boot_properties = bp, .arch = arch, .key = k };
  _cleanup_free_ char *parent = strdup (path);
  *strrchr (parent, '/') = '\0';
  mkdir (parent, 0755);
  cr_assert_eq (avm_props_disk_create (&spec, path, &err), 0, "%s", err ? err->msg : "");
  avm_avb_key_free (k);
}

/* avm_props_sync must succeed; returns whether it rebuilt.  */
static bool
sync_ok (const char *path, json_t *bp, const char *arch, const char *keyfile)
{
  _cleanup_error_ avm_error_t err = NULL;
  bool rebuilt = true;
  int r = avm_props_sync (path, bp, arch, keyfile, &rebuilt, &err);
  cr_assert_eq (r, 0, "avm_props_sync: %s", err ? err->msg : "?");
  cr_assert_null (err);
  return rebuilt;
}

/* avm_props_sync must fail; returns the message (malloc'd).  */
static char *
sync_fails (const char *path, json_t *bp, const char *arch, const char *keyfile)
{
  avm_error_t err = NULL;
  bool rebuilt = true;
  int r = avm_props_sync (path, bp, arch, keyfile, &rebuilt, &err);
  cr_assert_lt (r, 0, "avm_props_sync succeeded");
  cr_assert_not_null (err);
  cr_assert (!rebuilt);
  char *msg = strdup (err->msg);
  avm_error_free (err);
  return msg;
}

static char *
key_sha1 (const char *keyfile)
{
  _cleanup_error_ avm_error_t err = NULL;
  struct avm_avb_key *k = NULL;
  cr_assert_eq (avm_avb_key_load (keyfile, &k, &err), 0);
  char hex[41];
  avm_avb_key_sha1 (k, hex);
  avm_avb_key_free (k);
  return strdup (hex);
}

/* The disk read back: every signature verified, signed by KEYFILE.  */
static json_t *
inspect_ok (const char *path, const char *keyfile)
{
  _cleanup_error_ avm_error_t err = NULL;
  json_t *rep = NULL;
  cr_assert_eq (avm_inspect (path, &rep, &err), 0, "%s", err ? err->msg : "");
  cr_assert (json_is_true (json_object_get (rep, "ok")), "%s does not verify", path);
  cr_assert_str_eq (json_string_value (json_object_get (rep, "kind")), "properties");
  _cleanup_free_ char *sha1 = key_sha1 (keyfile);
  const char *got
      = json_string_value (json_object_get (json_object_get (json_object_get (rep, "vbmeta"), "avb"), "key_sha1"));
  cr_assert_str_eq (got, sha1, "%s is not signed by %s", path, keyfile);
  return rep;
}

static const char *
prop (json_t *rep, const char *key)
{
  return json_string_value (json_object_get (json_object_get (json_object_get (rep, "bootconfig"), "properties"), key));
}

static bool
env_has (json_t *rep, const char *needle)
{
  size_t i;
  json_t *e;
  json_array_foreach (json_object_get (json_object_get (rep, "uboot_env"), "entries"), i, e)
    if (strstr (json_string_value (e), needle))
      return true;
  return false;
}

static void
assert_same_file (const struct stat *a, const char *path)
{
  struct stat b;
  cr_assert_eq (stat (path, &b), 0);
  cr_assert_eq (a->st_ino, b.st_ino, "%s was replaced", path);
  cr_assert (a->st_mtim.tv_sec == b.st_mtim.tv_sec && a->st_mtim.tv_nsec == b.st_mtim.tv_nsec, "%s was written", path);
}

/* Let a rewrite show in the mtime even on coarse-grained filesystems.  */
static void
age (const char *path, struct stat *st)
{
  struct timespec ts[2] = { { 1600000000, 0 }, { 1600000000, 0 } };
  cr_assert_eq (utimensat (AT_FDCWD, path, ts, 0), 0);
  cr_assert_eq (stat (path, st), 0);
}

/* Offset of partition NAME in PATH.  */
static off_t
part_offset (const char *path, const char *name)
{
  _cleanup_json_ json_t *rep = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  cr_assert_eq (avm_inspect (path, &rep, &err), 0);
  size_t i;
  json_t *p;
  json_array_foreach (json_object_get (rep, "partitions"), i, p)
    if (streq (json_string_value (json_object_get (p, "name")), name))
      return json_integer_value (json_object_get (p, "offset"));
  cr_assert_fail ("%s: no partition %s", path, name);
  return -1;
}

Test (propsync, same_properties_kept)
{
  _cleanup_json_ json_t *bp = props ("CAR1");
  struct stat st;
  create (disk, bp, "x86_64", key1);
  age (disk, &st);
  cr_assert (!sync_ok (disk, bp, "x86_64", key1));
  assert_same_file (&st, disk);
  /* The same properties in a new object (a new plan): still the same.  */
  _cleanup_json_ json_t *again = props ("CAR1");
  cr_assert (!sync_ok (disk, again, "x86_64", key1));
  assert_same_file (&st, disk);
}

Test (propsync, changed_property_rebuilt)
{
  _cleanup_json_ json_t *bp = props ("CAR1"), *changed = props ("CAR2");
  struct stat st;
  create (disk, bp, "x86_64", key1);
  age (disk, &st);
  cr_assert (sync_ok (disk, changed, "x86_64", key1));
  struct stat now;
  cr_assert_eq (stat (disk, &now), 0);
  cr_assert (now.st_ino != st.st_ino || now.st_mtim.tv_sec != st.st_mtim.tv_sec, "not rewritten");
  _cleanup_json_ json_t *rep = inspect_ok (disk, key1);
  cr_assert_str_eq (prop (rep, "androidboot.serialno"), "CAR2");
  cr_assert (env_has (rep, "earlycon=uart8250"));
  /* Now up to date.  */
  age (disk, &st);
  cr_assert (!sync_ok (disk, changed, "x86_64", key1));
  assert_same_file (&st, disk);

  /* An added property (a longer bootconfig: another layout) and a removed one.  */
  json_object_set_new (changed, "androidboot.extra", json_string ("a value long enough to matter"));
  cr_assert (sync_ok (disk, changed, "x86_64", key1));
  json_decref (rep);
  rep = inspect_ok (disk, key1);
  cr_assert_str_eq (prop (rep, "androidboot.extra"), "a value long enough to matter");
  json_object_del (changed, "androidboot.extra");
  cr_assert (sync_ok (disk, changed, "x86_64", key1));
  json_decref (rep);
  rep = inspect_ok (disk, key1);
  cr_assert_null (prop (rep, "androidboot.extra"));
  cr_assert (!sync_ok (disk, changed, "x86_64", key1));
}

Test (propsync, other_arch_rebuilt)
{
  _cleanup_json_ json_t *bp = props ("CAR1");
  create (disk, bp, "x86_64", key1);
  cr_assert (sync_ok (disk, bp, "aarch64", key1));
  _cleanup_json_ json_t *rep = inspect_ok (disk, key1);
  cr_assert (env_has (rep, "earlycon=pl011"));
  cr_assert (!env_has (rep, "uart8250"));
  cr_assert_str_eq (prop (rep, "androidboot.serialno"), "CAR1");
  cr_assert (!sync_ok (disk, bp, "aarch64", key1));
}

Test (propsync, other_key_rebuilt)
{
  _cleanup_json_ json_t *bp = props ("CAR1");
  create (disk, bp, "x86_64", key1);
  cr_assert (sync_ok (disk, bp, "x86_64", key2));
  json_decref (inspect_ok (disk, key2));
  cr_assert (!sync_ok (disk, bp, "x86_64", key2));
}

Test (propsync, missing_disk_built)
{
  /* The state directory does not exist yet either.  */
  _cleanup_json_ json_t *bp = props ("CAR1");
  _cleanup_free_ char *deep = NULL, *parent = NULL;
  cr_assert (asprintf (&parent, "%s/state/avm/1", dir) > 0 && asprintf (&deep, "%s/properties.img", parent) > 0);
  cr_assert (sync_ok (deep, bp, "x86_64", key1));
  struct stat st;
  cr_assert_eq (stat (parent, &st), 0);
  cr_assert_eq (st.st_mode & 07777, 0750, "directory mode %o", st.st_mode & 07777);
  _cleanup_json_ json_t *rep = inspect_ok (deep, key1);
  cr_assert_str_eq (prop (rep, "androidboot.serialno"), "CAR1");
  cr_assert_str_eq (prop (rep, "androidboot.hardware.egl"), "angle");
  /* No temporary left behind.  */
  size_t n = 0;
  _cleanup_closedir_ DIR *d = opendir (parent);
  struct dirent *e;
  while ((e = readdir (d)))
    if (e->d_name[0] != '.')
      n++;
    else
      cr_assert (streq (e->d_name, ".") || streq (e->d_name, ".."), "left behind: %s", e->d_name);
  cr_assert_eq (n, 1);
  cr_assert (!sync_ok (deep, bp, "x86_64", key1));
}

Test (propsync, missing_key_and_disk)
{
  _cleanup_json_ json_t *bp = props ("CAR1");
  _cleanup_free_ char *nokey = NULL;
  cr_assert (asprintf (&nokey, "%s/images/avb_key.pem", dir) > 0);
  _cleanup_free_ char *msg = sync_fails (disk, bp, "x86_64", nokey);
  assert_contains (msg, nokey);
  assert_contains (msg, disk);
  assert_contains (msg, "does not exist");
  assert_contains (msg, "avm cvd2img");
  assert_contains (msg, "disks[N].key");
  cr_assert_neq (access (disk, F_OK), 0, "%s was created", disk);
}

/* The key is needed to build the disk, not to use one that is up to date.  */
Test (propsync, missing_key_with_current_disk)
{
  _cleanup_json_ json_t *bp = props ("CAR1"), *changed = props ("CAR2");
  _cleanup_free_ char *nokey = NULL;
  cr_assert (asprintf (&nokey, "%s/images/avb_key.pem", dir) > 0);
  struct stat st;
  create (disk, bp, "x86_64", key1);
  age (disk, &st);
  cr_assert (!sync_ok (disk, bp, "x86_64", nokey));
  assert_same_file (&st, disk);
  _cleanup_free_ char *msg = sync_fails (disk, changed, "x86_64", nokey);
  assert_contains (msg, nokey);
  assert_contains (msg, "cannot rebuild the properties disk");
  assert_same_file (&st, disk);
}

Test (propsync, bad_key_is_an_error)
{
  _cleanup_json_ json_t *bp = props ("CAR1");
  _cleanup_free_ char *bad = tu_write (dir, "bad.pem", "not a key\n");
  create (disk, bp, "x86_64", key1);
  _cleanup_free_ char *msg = sync_fails (disk, bp, "x86_64", bad);
  assert_contains (msg, bad);
}

Test (propsync, garbage_rebuilt)
{
  _cleanup_json_ json_t *bp = props ("CAR1");
  _cleanup_free_ char *state = NULL;
  cr_assert (asprintf (&state, "%s/state", dir) > 0);
  char junk[100000];
  for (size_t i = 0; i < sizeof junk; i++)
    junk[i] = (char) (i * 7 + 3);
  junk[sizeof junk - 1] = '\0';
  free (tu_write (state, "properties.img", junk));
  cr_assert (sync_ok (disk, bp, "x86_64", key1));
  json_decref (inspect_ok (disk, key1));

  /* Empty, and truncated in the middle.  */
  free (tu_write (state, "properties.img", ""));
  cr_assert (sync_ok (disk, bp, "x86_64", key1));
  cr_assert_eq (truncate (disk, 512 * 1024), 0);
  cr_assert (sync_ok (disk, bp, "x86_64", key1));
  json_decref (inspect_ok (disk, key1));
}

Test (propsync, tampering_rebuilt)
{
  _cleanup_json_ json_t *bp = props ("CAR1");
  create (disk, bp, "x86_64", key1);
  /* A byte of the vbmeta signature (after the 256-byte header and the
     32-byte hash), of the signed environment, of the bootconfig text.  */
  const struct
  {
    const char *part;
    off_t off;
  } spots[] = { { "vbmeta", 256 + 32 + 10 }, { "uboot_env", 100 }, { "bootconfig", 3 } };
  for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++)
    {
      tu_flip_bits (disk, part_offset (disk, spots[i].part) + spots[i].off, 0x01);
      cr_assert (sync_ok (disk, bp, "x86_64", key1), "%s tampered with, yet kept", spots[i].part);
      json_decref (inspect_ok (disk, key1));
      cr_assert (!sync_ok (disk, bp, "x86_64", key1));
    }
}

Test (propsync, symlink_refused)
{
  _cleanup_json_ json_t *bp = props ("CAR1"), *changed = props ("CAR2");
  _cleanup_free_ char *real = NULL;
  cr_assert (asprintf (&real, "%s/real.img", dir) > 0);
  create (real, bp, "x86_64", key1);
  _cleanup_free_ char *state = NULL;
  cr_assert (asprintf (&state, "%s/state", dir) > 0);
  cr_assert_eq (mkdir (state, 0750), 0);
  cr_assert_eq (symlink (real, disk), 0);
  struct stat st;
  age (real, &st);
  for (int i = 0; i < 2; i++)
    {
      _cleanup_free_ char *msg = sync_fails (disk, i ? changed : bp, "x86_64", key1);
      assert_contains (msg, disk);
      assert_contains (msg, "symbolic link");
    }
  struct stat lst;
  cr_assert_eq (lstat (disk, &lst), 0);
  cr_assert (S_ISLNK (lst.st_mode), "the link was replaced");
  assert_same_file (&st, real);

  /* A dangling link is refused too (never followed to create a file).  */
  _cleanup_free_ char *nowhere = NULL;
  cr_assert (asprintf (&nowhere, "%s/nowhere.img", dir) > 0);
  cr_assert_eq (unlink (disk), 0);
  cr_assert_eq (symlink (nowhere, disk), 0);
  _cleanup_free_ char *msg = sync_fails (disk, bp, "x86_64", key1);
  assert_contains (msg, "symbolic link");
  cr_assert_neq (access (nowhere, F_OK), 0);
}

Test (propsync, not_a_regular_file)
{
  _cleanup_json_ json_t *bp = props ("CAR1");
  _cleanup_free_ char *state = NULL;
  cr_assert (asprintf (&state, "%s/state", dir) > 0);
  cr_assert_eq (mkdir (state, 0750), 0);
  cr_assert_eq (mkdir (disk, 0750), 0);
  _cleanup_free_ char *msg = sync_fails (disk, bp, "x86_64", key1);
  assert_contains (msg, "not a regular file");
}

/* A mistyped path never destroys another image.  */
Test (propsync, other_images_never_replaced)
{
  _cleanup_json_ json_t *bp = props ("CAR1");
  _cleanup_free_ char *state = NULL;
  cr_assert (asprintf (&state, "%s/state", dir) > 0);
  cr_assert_eq (mkdir (state, 0750), 0);

  /* A GPT disk with other partitions (a system disk).  */
  struct avm_gpt *g = malloc (sizeof *g);
  _cleanup_free_ uint8_t *head = malloc (AVM_GPT_HEAD_SIZE), *tail = malloc (AVM_GPT_TAIL_SIZE);
  _cleanup_error_ avm_error_t err = NULL;
  avm_gpt_init (g);
  cr_assert_eq (avm_gpt_add (g, "misc", 1 << 20, &err), 0);
  cr_assert_eq (avm_gpt_add (g, "super", 4 << 20, &err), 0);
  cr_assert_eq (avm_gpt_finish (g, &err), 0);
  cr_assert_eq (avm_gpt_build (g, head, tail, &err), 0);
  int fd = open (disk, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  cr_assert_geq (fd, 0);
  cr_assert_eq (ftruncate (fd, g->disk_size), 0);
  cr_assert_eq (pwrite (fd, head, AVM_GPT_HEAD_SIZE, 0), AVM_GPT_HEAD_SIZE);
  cr_assert_eq (pwrite (fd, tail, AVM_GPT_TAIL_SIZE, g->disk_size - AVM_GPT_TAIL_SIZE), AVM_GPT_TAIL_SIZE);
  close (fd);
  free (g);
  struct stat st;
  age (disk, &st);
  _cleanup_free_ char *msg = sync_fails (disk, bp, "x86_64", key1);
  assert_contains (msg, "not a properties disk");
  assert_same_file (&st, disk);

  /* A large file that is no GPT disk (sparse: 65 MiB of hole).  */
  cr_assert_eq (unlink (disk), 0);
  fd = open (disk, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  cr_assert_geq (fd, 0);
  cr_assert_eq (ftruncate (fd, 65 << 20), 0);
  close (fd);
  age (disk, &st);
  free (msg);
  msg = sync_fails (disk, bp, "x86_64", key1);
  assert_contains (msg, "not a properties disk");
  assert_same_file (&st, disk);
}

Test (propsync, invalid_properties)
{
  _cleanup_json_ json_t *bp = json_pack ("{s:s}", "androidboot.x", "two\nlines");
  _cleanup_free_ char *msg = sync_fails (disk, bp, "x86_64", key1);
  assert_contains (msg, disk);
  assert_contains (msg, "androidboot.x");
}
