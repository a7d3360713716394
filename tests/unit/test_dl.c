/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Libraries bound on first use (lib/util/dl.h): a library that cannot be
 * loaded, or lacks a function, is an error that names the library, the
 * function and the Debian package, never an exit; the real tables bind
 * the functions of the real libraries; and a dry run loads none of them.
 */
#include "disk/lazy_archive.h"
#include "disk/lazy_crypto.h"
#include "disk/lazy_zlib.h"
#include "host/lazy_udev.h"
#include "supervise/lazy_systemd.h"
#include "testutil.h"
#include "util/cleanup.h"
#include "util/dl.h"
#include "util/error.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite (dl);

static void *const untouched = (void *) &untouched;

static void
assert_has (const char *msg, const char *needle)
{
  cr_assert_not_null (strstr (msg, needle), "\"%s\" not in: %s", needle, msg);
}

Test (dl, missing_library_is_an_error)
{
  _cleanup_error_ avm_error_t err = NULL;
  void *slot = untouched;
  const struct avm_dl_sym syms[] = { { "crc32", &slot } };
  struct avm_dl_lib lib = { .soname = "libavm-no-such-library.so.0", .package = "avm-test-pkg", .syms = syms, .n = 1 };

  avm_dl_load (&lib);
  cr_assert_eq (avm_dl_status (&lib, &err), -EOPNOTSUPP);
  cr_assert_not_null (err);
  cr_expect_eq (err->exit_code, AVM_EXIT_FAILURE);
  assert_has (err->msg, "cannot load libavm-no-such-library.so.0");
  assert_has (err->msg, "Debian package avm-test-pkg");
  cr_expect_eq (slot, untouched);
  /* Without ERR: the same outcome, no message.  */
  cr_expect_eq (avm_dl_status (&lib, NULL), -EOPNOTSUPP);
  free (lib.msg);
}

Test (dl, missing_symbol_is_an_error_and_binds_nothing)
{
  _cleanup_error_ avm_error_t err = NULL;
  void *crc = untouched, *absent = untouched;
  const struct avm_dl_sym syms[] = { { "crc32", &crc }, { "avm_no_such_function", &absent } };
  struct avm_dl_lib lib = { .soname = "libz.so.1", .package = "zlib1g", .syms = syms, .n = 2 };

  avm_dl_load (&lib);
  cr_assert_eq (avm_dl_status (&lib, &err), -EOPNOTSUPP);
  cr_expect_eq (err->exit_code, AVM_EXIT_FAILURE);
  assert_has (err->msg, "libz.so.1");
  assert_has (err->msg, "avm_no_such_function");
  assert_has (err->msg, "zlib1g");
  /* All or nothing: the function that was found is not bound either.  */
  cr_expect_eq (crc, untouched);
  cr_expect_eq (absent, untouched);
  free (lib.msg);
}

/* A table of the AVM_DL_DEFINE kind whose library lacks a function: the
   first call and every later one report it; nothing is bound.  (Never
   defined: only its type is taken.)  */
int avm_test_absent_function (int);
#define BROKEN_FUNCS(X) X (zlibVersion) X (avm_test_absent_function)
int avm_dlopen_broken (avm_error_t *err);
AVM_DL_DEFINE (broken, BROKEN_FUNCS, "libz.so.1", "zlib1g")

Test (dl, table_with_missing_symbol_reports_every_time)
{
  for (int i = 0; i < 2; i++)
    {
      _cleanup_error_ avm_error_t err = NULL;
      cr_assert_eq (avm_dlopen_broken (&err), -EOPNOTSUPP);
      assert_has (err->msg, "libz.so.1 lacks the function avm_test_absent_function");
      assert_has (err->msg, "Debian package zlib1g");
    }
  cr_expect_null (sym_zlibVersion);
  cr_expect_null (sym_avm_test_absent_function);
}

/* The real tables bind the real functions (the test binary links the
   libraries itself, so dlsym finds the very same ones).  */
Test (dl, real_tables_bind)
{
  _cleanup_error_ avm_error_t err = NULL;

  cr_assert_eq (avm_dlopen_zlib (&err), 0);
  cr_expect_eq ((void *) sym_crc32, (void *) crc32);
  cr_assert_eq (avm_dlopen_crypto (&err), 0);
  cr_expect_eq ((void *) sym_EVP_sha256, (void *) EVP_sha256);
  cr_assert_eq (avm_dlopen_archive (&err), 0);
  cr_expect_eq ((void *) sym_archive_read_new, (void *) archive_read_new);
  cr_assert_eq (avm_dlopen_udev (&err), 0);
  cr_expect_eq ((void *) sym_udev_new, (void *) udev_new);
  cr_assert_eq (avm_dlopen_systemd (&err), 0);
  cr_expect_eq ((void *) sym_sd_event_new, (void *) sd_event_new);
  cr_expect_eq ((void *) sym_sd_event_source_unref, (void *) sd_event_source_unref);
  /* Again: the same outcome, nothing loaded twice.  */
  cr_assert_eq (avm_dlopen_zlib (&err), 0);
}

/* Before libsystemd is bound, its unref functions take NULL (what a
   supervisor that failed before its loop releases).  */
Test (dl, systemd_unref_before_binding)
{
  cr_expect_null (sym_sd_event_source_unref (NULL));
  cr_expect_null (sym_sd_event_source_disable_unref (NULL));
  cr_expect_null (sym_sd_event_unref (NULL));
}

/* The prefetching thread binds the table; the caller's first
   avm_dlopen_systemd joins it and finds it bound.  */
Test (dl, systemd_prefetch_then_bind)
{
  _cleanup_error_ avm_error_t err = NULL;

  avm_systemd_prefetch ();
  cr_assert_eq (avm_dlopen_systemd (&err), 0);
  cr_expect_eq ((void *) sym_sd_event_loop, (void *) sd_event_loop);
  avm_systemd_prefetch_join (); /* (nothing left to join) */
}

/* A dry run loads none of the libraries bound on first use (ld.so says
   what it loads with LD_DEBUG=files).  */
Test (dl, dry_run_loads_no_lazy_library)
{
  _cleanup_free_ char *dir = tu_tmpdir ();
  _cleanup_free_ char *caps = NULL, *home = NULL;
  _cleanup_free_ char *out = NULL, *errs = NULL;

  cr_assert (asprintf (&caps, "%s/tests/data/caps-qemu-7.2-x86_64.json", tu_srcdir ()) > 0);
  cr_assert (asprintf (&home, "XDG_CONFIG_HOME=%s", dir) > 0);
  char *const argv[]
      = { (char *) tu_avm_bin (), "start", "-n", "-p", "aaos-x86_64", "--caps", caps, "--images", dir, NULL };
  char *const env[] = { "LD_DEBUG=files", home, "AVM_PROFILE", NULL };
  int st = tu_run (argv, env, &out, &errs);
  cr_assert_eq (st, 0, "avm start -n: %d\n%s", st, errs);
  assert_has (errs, "file=libjansson.so.4");
  static const char *const lazy[] = { "libsystemd", "libudev", "libarchive", "libcrypto", "libz.so" };
  for (size_t i = 0; i < ARRAY_SIZE (lazy); i++)
    cr_expect_null (strstr (errs, lazy[i]), "a dry run loaded %s", lazy[i]);
  tu_rmtree (dir);
}

/* The command reports a library that cannot be loaded like any runtime
   error: one message naming the library and the package, exit status 1.
   (A broken libz.so.1 first in LD_LIBRARY_PATH: dlopen finds it first.)  */
Test (dl, cli_reports_missing_library)
{
  _cleanup_free_ char *dir = tu_tmpdir ();
  _cleanup_free_ char *path = NULL, *lib = NULL, *disk = NULL;
  _cleanup_free_ char *out = NULL, *errs = NULL;

  free (tu_write (dir, "libz.so.1", "not a library\n"));
  disk = tu_write (dir, "disk.img", "");
  cr_assert (truncate (disk, 1 << 20) == 0);
  cr_assert (asprintf (&lib, "LD_LIBRARY_PATH=%s", dir) > 0);
  char *const argv[] = { (char *) tu_avm_bin (), "inspect", disk, NULL };
  char *const env[] = { lib, NULL };
  int st = tu_run (argv, env, &out, &errs);
  cr_expect_eq (st, 1, "avm inspect: %d\n%s", st, errs);
  assert_has (errs, "avm: cannot load libz.so.1 (install the Debian package zlib1g)");
  tu_rmtree (dir);
}
