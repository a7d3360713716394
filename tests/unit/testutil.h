/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for the Criterion suite: temporary trees and running the CLI. */
#pragma once

#include <stddef.h>

/* How much slower than natively avm and the test workers run: 1, or more in
   a build made for valgrind (make check-valgrind compiles the suite with
   -DAVM_TEST_TIME_SCALE=10).  Criterion's .timeout takes TU_TIMEOUT (s);
   the wait helpers (ts_wait, ts_wait_notify, ...) scale their own limits.
   Limits only: nothing in the suite asserts that something was fast.  */
#ifndef AVM_TEST_TIME_SCALE
#define AVM_TEST_TIME_SCALE 1
#endif
#define TU_TIMEOUT(s) ((s) *AVM_TEST_TIME_SCALE)

/* A fresh temporary directory (malloc'd); removed by tu_rmtree.  */
char *tu_tmpdir (void);
void tu_rmtree (const char *dir);
/* Write CONTENT to DIR/NAME (creating DIR); returns the path (malloc'd).  */
char *tu_write (const char *dir, const char *name, const char *content);
/* Read a whole file (malloc'd, NUL-terminated) or NULL.  */
char *tu_read (const char *path);
/* asprintf that fails the test instead of returning NULL.  */
char *tu_fmt (const char *f, ...) __attribute__ ((format (printf, 1, 2)));

/* Run ARGV (argv[0] a path, or a name searched in $PATH) with environment
   changes ENV ("K=V" sets, "K" unsets; NULL-terminated, may be NULL);
   capture stdout and stderr.
   Returns the exit status (128+signal when killed).  */
int tu_run (char *const argv[], char *const env[], char **out, char **err);

/* Run $AVM_BIN with the given arguments (NULL-terminated) in a hermetic
   environment: private capability cache and config directory.  */
int tu_avm (char **out, char **err, ...) __attribute__ ((sentinel));
int tu_avmv (char *const args[], char **out, char **err);
/* The same hermetic run of BIN (a link to avm: start-avm, cvd2img).  */
int tu_avmv_as (const char *bin, char *const args[], char **out, char **err);

/* A directory shared by all the worker processes of one test run (fixtures
   built once, e.g. RSA keys): /tmp/avm-test-TAG-<runner pid> (malloc'd).  The
   runner removes every such directory when it exits.  */
char *tu_run_shared_dir (const char *tag);

/* First data (SEEK_DATA; the file size when none) and first hole (SEEK_HOLE)
   at or after OFF in PATH.  */
long long tu_next_data (const char *path, long long off);
long long tu_next_hole (const char *path, long long off);

const char *tu_srcdir (void);
/* A 64 KiB firmware image for QEMU's -bios that prints the boot messages of
   an Android guest on the first serial port (the 16550 at 0x3f8 of pc, the
   PL011 of virt) and halts: "U-Boot 20..." (Cuttlefish's BootloaderLoaded),
   VIRTUAL_DEVICE_BOOT_STARTED, adbd's start and
   VIRTUAL_DEVICE_BOOT_COMPLETED.  With the AAOS profiles the serial port
   shares the kernel console's FIFO, so avm sees a guest boot and the
   helpers that read the console see its events.  ARCH: x86_64 or
   aarch64.  Writes PATH.  */
void tu_test_firmware (const char *arch, const char *path);

/* A directory of stand-ins for every helper program the shipped profiles
   name (links to /bin/true: only their presence matters to a plan), made
   once per run and shared by its workers.  */
const char *tu_fake_helpers (void);
const char *tu_avm_bin (void);
/* $AVM_FAKECF, the Cuttlefish host tools' double (make check sets it);
   skips the test when unset.  */
const char *tu_fakecf (void);
/* Replace every occurrence of FROM in S by TO (S is freed, result malloc'd).  */
char *tu_replace (char *s, const char *from, const char *to);

/* Run `make TARGET` in $AVM_SRCDIR (BUILD=build) under the lock LOCK_NAME,
   a path relative to it (shared by parallel tests); its exit status, its
   output in *OUT and *ERR (malloc'd).  */
int tu_make_locked (const char *target, const char *lock_name, char **out, char **err);
/* The image of containers/Containerfile (its ID, allocated), built once
   for the suite by `make container-image` (tests/tools/container-image.sh;
   make check runs it before the suite, so this finds it up to date) under
   a lock the tests share.  A failed build fails the test; skipped when
   podman or the Debian base images are missing.  */
char *tu_container_image (void);
/* `podman ARGS...` (NULL-terminated) under the project's
   containers/containers.conf (runc: crun fails on some hosts); its exit
   status, *OUT and *ERR (allocated; either may be NULL: dropped).  */
int tu_podman (char **out, char **err, ...) __attribute__ ((sentinel));

/* $AVM_SRCDIR/build/demo (malloc'd), built by `make demo-image` first when
   missing or out of date (under a lock); skips the test when the kernel or
   busybox-static is not installed.  */
char *tu_demo_image (void);
/* The same for the arm64 demo guest: $AVM_SRCDIR/build/demo-arm64 (make
   demo-image-arm64); skips the test when qemu-system-aarch64 is missing or
   Debian's arm64 packages cannot be downloaded (with the reason).  */
char *tu_demo_image_arm64 (void);

void tu_sleep_ms (int ms);

/* XOR the byte at OFF of PATH with MASK (corrupting a disk on purpose).  */
void tu_flip_bits (const char *path, long long off, unsigned char mask);

/* Fail the test unless ERR is set and its message contains NEEDLE.  */
#include "util/error.h"
void tu_assert_err_has (avm_error_t err, const char *needle);

/* ARGV with environment ENVP and stderr on a pty: what the terminal
   shows (malloc'd), *RC the exit status; skips without a pty.  */
char *tu_run_on_pty (char *const argv[], char *const envp[], int *rc);
