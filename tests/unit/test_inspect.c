/* SPDX-License-Identifier: Apache-2.0 */
/* avm inspect: reading properties disks back, AVB status, corruption, and
   --verify through libguestfs (a real kernel parses the GPT). */
#include "disk/avb.h"
#include "disk/gpt.h"
#include "disk/props.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <errno.h>
#include <pty.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/wait.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define assert_contains(hay, needle) cr_assert (strstr ((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))

static char *dir, *disk, *manifest;

/* A properties disk signed with a fresh key, and its manifest.  */
static void
setup (void)
{
  dir = tu_tmpdir ();
  char *key = NULL;
  cr_assert (asprintf (&key, "%s/key.pem", dir) > 0 && asprintf (&disk, "%s/properties.img", dir) > 0
             && asprintf (&manifest, "%s/manifest.json", dir) > 0);
  char *gen[] = { "openssl", "genrsa", "-out", key, "4096", NULL };
  cr_assert_eq (tu_run (gen, NULL, NULL, NULL), 0);
  avm_error_t err = NULL;
  struct avm_avb_key *k = NULL;
  cr_assert_eq (avm_avb_key_load (key, &k, &err), 0);
  json_t *props
      = json_pack ("{s:s, s:s}", "androidboot.serialno", "CAR42", "androidboot.boot_devices", "4010000000.pcie");
  struct avm_props_spec spec = { .boot_properties = props, .arch = "aarch64", .key = k };
  cr_assert_eq (avm_props_disk_create (&spec, disk, &err), 0, "%s", err ? err->msg : "");
  struct avm_gpt *g = malloc (sizeof *g);
  cr_assert_eq (avm_props_disk_layout (&spec, g, &err), 0);
  json_t *parts = json_array ();
  for (size_t i = 0; i < g->n; i++)
    json_array_append_new (parts, json_pack ("{s:s, s:I, s:I}", "name", g->parts[i].name, "offset",
                                             (json_int_t) g->parts[i].offset, "size", (json_int_t) g->parts[i].size));
  json_t *m = json_pack ("{s:{s:s, s:o}}", "properties", "file", disk, "partitions", parts);
  cr_assert_eq (json_dump_file (m, manifest, 0), 0);
  json_decref (m);
  json_decref (props);
  free (g);
  avm_avb_key_free (k);
  free (key);
}

static void
teardown (void)
{
  tu_rmtree (dir);
  free (dir);
  free (disk);
  free (manifest);
}

TestSuite (inspect, .init = setup, .fini = teardown);

Test (inspect, sound_properties_disk)
{
  char *out = NULL, *err = NULL;
  int r = tu_avm (&out, &err, "inspect", disk, NULL);
  cr_assert_eq (r, 0, "%s%s", out, err);
  assert_contains (out, "properties disk");
  assert_contains (out, "    androidboot.serialno=CAR42\n");
  assert_contains (out, "earlycon=pl011,mmio32,0x9000000");
  assert_contains (out, "chain bootconfig:2 key SHA-1");
  assert_contains (out, "=> sound");
  free (out);
  free (err);
  r = tu_avm (&out, &err, "inspect", "--json", disk, NULL);
  cr_assert_eq (r, 0);
  json_t *j = json_loads (out, 0, NULL);
  cr_assert_not_null (j);
  cr_assert (json_is_true (json_object_get (j, "ok")));
  json_t *bc = json_object_get (j, "bootconfig");
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (bc, "properties"), "androidboot.serialno")),
                    "CAR42");
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (bc, "avb"), "signature")), "verified");
  cr_assert_str_eq (json_string_value (
                        json_array_get (json_object_get (j, "partitions"), 0)
                            ? json_object_get (json_array_get (json_object_get (j, "partitions"), 0), "name")
                            : NULL),
                    "uboot_env");
  json_decref (j);
  free (out);
  free (err);
}

Test (inspect, tampered_bootconfig_is_not_sound)
{
  /* bootconfig is the 4th partition; its text starts the partition.  */
  avm_error_t e = NULL;
  struct avm_gpt *g = malloc (sizeof *g);
  int fd = open (disk, O_RDONLY);
  cr_assert_eq (avm_gpt_read (fd, lseek (fd, 0, SEEK_END), disk, g, &e), 0);
  close (fd);
  tu_flip_bits (disk, avm_gpt_find (g, "bootconfig")->offset + 5, 0x20);
  free (g);
  char *out = NULL, *err = NULL;
  int r = tu_avm (&out, &err, "inspect", disk, NULL);
  cr_assert_eq (r, 1, "%s%s", out, err);
  assert_contains (out, "digest MISMATCH");
  assert_contains (out, "=> NOT SOUND");
  free (out);
  free (err);
}

Test (inspect, malformed_disks_exit_2)
{
  char *out = NULL, *err = NULL;
  tu_flip_bits (disk, 512 + 20, 0x20); /* primary GPT header CRC field area */
  int r = tu_avm (&out, &err, "inspect", disk, NULL);
  cr_assert_eq (r, 2, "%s%s", out, err);
  assert_contains (err, "properties.img: primary GPT header");
  free (out);
  free (err);
  char *junk = tu_write (dir, "junk.img", "not a disk");
  r = tu_avm (&out, &err, "inspect", junk, NULL);
  cr_assert_eq (r, 2);
  free (out);
  free (err);
  free (junk);
  r = tu_avm (&out, &err, "inspect", NULL);
  cr_assert_eq (r, 2);
  assert_contains (err, "missing the disk image");
  free (out);
  free (err);
}

/* A FIFO is refused at once (exit 2) instead of waiting for a writer, with
   and without --verify; so is a character device.  */
Test (inspect, fifo_refused, .timeout = TU_TIMEOUT (20))
{
  char *fifo = NULL, *out = NULL, *err = NULL;
  cr_assert (asprintf (&fifo, "%s/system.img", dir) > 0);
  cr_assert_eq (mkfifo (fifo, 0600), 0);
  int r = tu_avm (&out, &err, "inspect", fifo, NULL);
  cr_assert_eq (r, 2, "%s%s", out, err);
  assert_contains (err, "system.img is a FIFO, not a disk image");
  free (out);
  free (err);
  r = tu_avm (&out, &err, "inspect", "--verify", fifo, NULL);
  cr_assert_eq (r, 2, "%s%s", out, err);
  assert_contains (err, "system.img is a FIFO, not a disk image");
  free (out);
  free (err);
  r = tu_avm (&out, &err, "inspect", "/dev/zero", NULL);
  cr_assert_eq (r, 2, "%s%s", out, err);
  assert_contains (err, "/dev/zero is a character device, not a disk image");
  free (out);
  free (err);
  free (fifo);
}

/* avm inspect ARGS must fail with exit 2 and one line on stderr that
   contains every NEEDLE (NULL-terminated), nothing on stdout.  */
static void
expect_bad_input (char *const args[], const char *const needles[])
{
  char *argv[8] = { "inspect" }, *out = NULL, *err = NULL;
  size_t n = 1;
  for (size_t i = 0; args[i]; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  int r = tu_avmv (argv, &out, &err);
  cr_assert_eq (r, 2, "avm inspect %s ...: exit %d, expected 2 (bad input): %s%s", args[0], r, out, err);
  cr_assert_str_empty (out);
  size_t len = strlen (err);
  cr_assert (len > 0 && err[len - 1] == '\n' && strchr (err, '\n') == err + len - 1, "not one line:\n%s", err);
  for (size_t i = 0; needles[i]; i++)
    assert_contains (err, needles[i]);
  free (out);
  free (err);
}

/* A disk or manifest that is not there is bad input (exit 2), with and
   without --verify (issue 15: exit 1), and so is a link loop or a path
   through a file; each said in one line naming the file.  */
Test (inspect, missing_file_exit_2)
{
  char *missing = NULL, *loop_a = NULL, *loop_b = NULL, *through = NULL, *sub = NULL, *lone = NULL;
  cr_assert (asprintf (&missing, "%s/nothere.img", dir) > 0 && asprintf (&loop_a, "%s/loop-a.img", dir) > 0
             && asprintf (&loop_b, "%s/loop-b.img", dir) > 0 && asprintf (&through, "%s/x", disk) > 0
             && asprintf (&sub, "%s/sub", dir) > 0 && asprintf (&lone, "%s/sub/properties.img", dir) > 0);
  cr_assert_eq (symlink (loop_b, loop_a), 0);
  cr_assert_eq (symlink (loop_a, loop_b), 0);
  expect_bad_input ((char *[]) { missing, NULL }, (const char *[]) { missing, "No such file", NULL });
  expect_bad_input ((char *[]) { "--json", missing, NULL }, (const char *[]) { missing, NULL });
  expect_bad_input ((char *[]) { loop_a, NULL }, (const char *[]) { loop_a, NULL });
  expect_bad_input ((char *[]) { through, NULL }, (const char *[]) { through, NULL });
  expect_bad_input ((char *[]) { "--verify", missing, NULL }, (const char *[]) { missing, NULL });
  expect_bad_input ((char *[]) { "--verify", "--manifest", missing, disk, NULL },
                    (const char *[]) { missing, "No such file", NULL });
  /* the default manifest, next to the disk: say how to name another */
  cr_assert_eq (mkdir (sub, 0755), 0);
  cr_assert_eq (link (disk, lone), 0);
  expect_bad_input ((char *[]) { "--verify", lone, NULL },
                    (const char *[]) { lone, "manifest.json", "--manifest", NULL });
  free (missing);
  free (loop_a);
  free (loop_b);
  free (through);
  free (sub);
  free (lone);
}

/* Run ARGV with stderr on a terminal (stdin and stdout /dev/null) and
   environment changes ENV: what the terminal shows, *RC the exit status.  */
static __attribute__ ((noinline)) char *
run_on_pty (char *const argv[], char *const env[], int *rc)
{
  size_t n = 0, k = 0;
  while (environ[n])
    n++;
  char **envp = calloc (n + 8, sizeof *envp);
  for (size_t i = 0; env[i]; i++)
    envp[k++] = env[i];
  for (size_t i = 0; i < n; i++)
    {
      bool overridden = false;
      for (size_t j = 0; env[j]; j++)
        overridden |= strncmp (environ[i], env[j], strcspn (env[j], "=") + 1) == 0;
      if (!overridden)
        envp[k++] = environ[i];
    }
  envp[k] = NULL;
  char *out = tu_run_on_pty (argv, envp, rc);
  free (envp);
  return out;
}

/* --verify on a terminal: a status line says what it is doing (the
   appliance takes a while to start) and is erased before what follows;
   off a terminal, nothing but the outcome (issue 15: no progress at all).
   The appliance's "hypervisor" here is /bin/false: it fails at once, the
   same way with and without a terminal.  */
Test (inspect, verify_progress, .timeout = TU_TIMEOUT (60))
{
  char *argv[] = { (char *) tu_avm_bin (), "inspect", "--verify", disk, NULL };
  char *env[] = { "LIBGUESTFS_BACKEND=direct", "LIBGUESTFS_HV=/bin/false", NULL };
  int rc;
  char *tty = run_on_pty (argv, env, &rc);
  cr_assert_eq (rc, 1, "exit %d:\n%s", rc, tty);
  cr_assert (strncmp (tty, "\r", 1) == 0, "\"%s\"", tty);
  assert_contains (tty, "properties.img: starting libguestfs's appliance");
  /* erased: the error starts a clean line */
  char *e = strstr (tty, "avm: libguestfs: ");
  cr_assert (e && e > tty && e[-1] == '\r', "the status line is not erased before the error:\n\"%s\"", tty);
  cr_assert_null (memchr (tty, '\n', e - tty), "the status line is not redrawn in place:\n\"%s\"", tty);
  free (tty);

  char *out = NULL, *err = NULL;
  rc = tu_run (argv, env, &out, &err);
  cr_assert_eq (rc, 1, "exit %d: %s", rc, err);
  size_t len = strlen (err);
  cr_assert (len > 0 && err[len - 1] == '\n' && strchr (err, '\n') == err + len - 1, "not one line:\n%s", err);
  cr_assert (strncmp (err, "avm: libguestfs: ", 17) == 0, "%s", err);
  cr_assert_null (strchr (err, '\r'), "%s", err);
  free (out);
  free (err);
}

/* One libguestfs launch per test: ~1 minute under TCG.  */
static char *genv[] = { "LIBGUESTFS_BACKEND=direct", "LIBGUESTFS_BACKEND_SETTINGS=force_tcg", NULL };

Test (inspect, verify_with_libguestfs)
{
  char *argv[] = { (char *) tu_avm_bin (), "inspect", "--verify", disk, NULL };
  char *out = NULL, *err = NULL;
  int r = tu_run (argv, genv, &out, &err);
  cr_assert_eq (r, 0, "%s%s", out, err);
  assert_contains (out, "matches against");
  /* not on a terminal: no progress, nothing from libguestfs */
  cr_assert_str_empty (err, "%s", err);
  free (out);
  free (err);

  /* A manifest that disagrees with the disk is caught by the kernel's view.  */
  json_t *m = json_load_file (manifest, 0, NULL);
  json_t *p = json_array_get (json_object_get (json_object_get (m, "properties"), "partitions"), 2);
  json_object_set_new (p, "offset", json_integer (json_integer_value (json_object_get (p, "offset")) + 4096));
  json_object_set_new (p, "name", json_string ("frq"));
  cr_assert_eq (json_dump_file (m, manifest, 0), 0);
  json_decref (m);
  r = tu_run (argv, genv, &out, &err);
  cr_assert_eq (r, 1, "%s%s", out, err);
  assert_contains (out, "the kernel sees name \"frp\", the manifest says \"frq\"");
  assert_contains (out, "partition frq: starts at");
  assert_contains (out, "DOES NOT MATCH");
  free (out);
  free (err);
}
