/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Cuttlefish image set the cvd2img and tour suites convert
 * (cvdfixture.c): made by the real tools (boot images by mkbootimg, sparse
 * super/userdata by img2simg, keys by openssl, the image zips by zip, the
 * host packages by tar) once per test run, on first use, in
 * /tmp/avm-test-cvd2img-<pid of the Criterion runner> (under a lock: tests
 * run in parallel worker processes), removed when the runner exits.  Tests
 * never modify it: image sets with a broken file are hard-link clones in
 * which that one file is replaced.
 *
 * Its files (fx_path ("NAME")):
 *   cvd/                 the image directory: boot.img, vendor_boot.img,
 *                        vbmeta.img, vbmeta_system.img, super.img and
 *                        userdata.img (sparse), android-info.txt, and the
 *                        host package: etc/ (the keys, bootloader_x86_64),
 *                        bin/tool (mode 04755 in the package), bin/lib64dir
 *                        -> ../lib64, lib64/libfoo.so.1 and libfoo.so ->
 *                        libfoo.so.1, usr/share/cuttlefish/data.txt (its
 *                        directory mode 0750)
 *   cvd-opt/             the same with init_boot.img and the dlkm vbmetas
 *   cvd-arm/             the same with only an aarch64 bootloader
 *   img.zip, img-stored.zip, img-opt.zip
 *                        the images of cvd/ (deflated, stored) and cvd-opt/
 *   host.tar.gz          etc, bin, lib64 and usr of cvd/ (FX_HOST_ENTRIES)
 *   host-arm.tar.gz      etc of cvd-arm/
 *   host-dot.tar.gz      etc of cvd/ as `tar -C DIR .` writes it ("./etc/...")
 *   keys/ke3.pem         RSA-4096 with exponent 3; keys/k2048.pem;
 *                        keys/other.avbpubkey, another key's public key
 */
#pragma once

#include "disk/avb.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BLK 4096
#define MIB (1024 * 1024)
#define KEY_PEM "etc/cvd_avb_testkey_rsa4096.pem"
#define KEY_PUB "etc/cvd_rsa4096.avbpubkey"
#define BL_X86 "etc/bootloader_x86_64/bootloader.qemu"
#define BL_ARM "etc/bootloader_aarch64/bootloader.qemu"

/* The image zip's entries, and the optional images of img-opt.zip.  */
extern const char *const fx_zip_images[7];
extern const char *const fx_opt_images[3];
/* The host package's top-level entries, sorted (NULL-terminated).  */
extern char *const fx_host_entries[];
/* An RSA-4096 key with public exponent 3 (PEM).  */
extern const char fx_key_e3_pem[];

/* The fixture directory, made on first use; a path in it (malloc'd).  */
const char *fx_dir (void);
char *fx_path (const char *name);

/* "A/B" (malloc'd).  */
char *fx_join (const char *a, const char *b);
/* mkdir -p.  */
void fx_mkdirs (const char *path);
/* Deterministic bytes from SEED.  */
void fx_fill_random (uint8_t *buf, size_t len, uint64_t seed);
/* PATH replaced (never written through a hard link) by DATA.  */
void fx_write_bin (const char *path, const void *data, size_t len);
/* Random bytes behind the vbmeta magic AVB0: what cvd2img looks at of
   an image it copies verbatim.  */
void fx_write_vbmeta_like (const char *path, size_t len, uint64_t seed);
void fx_write_random (const char *path, size_t len, uint64_t seed);
/* A whole file (NUL-terminated, *LEN bytes).  */
uint8_t *fx_read_bin (const char *path, size_t *len);
/* NAME in $PATH, /usr/sbin or /sbin (malloc'd); fails the test if absent.  */
char *fx_tool (const char *name);
/* Run ARGV (argv[0] a tool name, no shell): it must exit 0.  Its stdout;
 *ERR its stderr when ERR is given.  */
char *fx_run_ok (char *const argv[], char **err);
/* A child with stdio on /dev/null; wait for it to exit 0.  */
pid_t fx_spawn_quiet (char *const argv[]);
void fx_wait_ok (pid_t pid, const char *what);
/* Hard-link the tree SRC to DST (directories created with SRC's modes,
   symbolic links linked as they are).  */
void fx_link_tree (const char *src, const char *dst);
/* AvbRSAPublicKeyHeader blob of the RSA key in the PEM file PATH, computed
   with OpenSSL's BN (independently of lib/disk/avb.c).  */
void fx_pubkey_blob (const char *path, uint8_t blob[AVM_AVB_PUBKEY_SIZE]);
