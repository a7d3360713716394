/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the files of the cvd2img suite share (test_cvd2img*.c): the
 * per-test scratch directory, the checks of a conversion's outputs against
 * independent tools, and the helpers more than one of them uses.  The
 * suite itself (TestSuite, with setup and teardown) is declared in
 * test_cvd2img.c.
 */
#pragma once

#include "cvdfixture.h"
#include "imageset/setcheck.h"
#include "disk/avb.h"
#include "disk/gpt.h"
#include "disk/propsync.h"
#include "disk/ubootenv.h"
#include "testutil.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strbuf.h"
#include "util/strv.h"

#include <archive.h>
#include <archive_entry.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pty.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define OLD_MTIME 1600000000

extern char *tmp;

extern char *mnt;

void setup (void);

extern char *last_error; /* message of the last expect_failure */

void teardown (void);

char *tpath (const char *name);

uint64_t file_size (const char *path);

bool exists (const char *path);

uint32_t le32 (const uint8_t *p);

void put_le16 (uint8_t *p, uint16_t v);

void put_le32 (uint8_t *p, uint32_t v);

uint64_t round4k (uint64_t v);

bool all_zero (const uint8_t *p, size_t n);

void digest_hex (const EVP_MD *md, const void *d, size_t n, char *out);

bool starts_with (const char *s, const char *prefix);

/* The variables tu_avmv sets for a hermetic avm (NULL-terminated).  */
char **hermetic_vars (void);

/* This environment with hermetic_vars (malloc'd vector), for posix_spawn.  */
char **avm_env (void);

struct snap
{
  size_t n;
  struct
  {
    char path[512];
    char sha[65];
    struct timespec mtime;
    off_t size;
  } f[64];
};

void snap_take (struct snap *s, const char *const *paths);

void snap_check (struct snap *s);

struct pinfo
{
  char name[64];
  uint64_t start, size; /* sectors */
};

struct disk
{
  size_t n;
  struct pinfo p[32];
  uint64_t firstlba, lastlba, bytes;
};

void sfdisk_read (const char *path, struct disk *d);

const struct pinfo *dpart (const struct disk *d, const char *name);

struct ctx
{
  const char *images;        /* directory with the input images (compared against) */
  const char *arch;          /* "x86_64" or "aarch64" */
  const char *bootloader;    /* file the bootloader output must equal */
  bool optional;             /* init_boot and the dlkm vbmetas present */
  bool virgl;                /* properties_virgl.img expected */
  bool key_copied;           /* avb_key.pem expected (the host package's key) */
  bool tree;                 /* the host package's tree expected in the output */
  const char *host_src;      /* the directory the tree must equal (default: IMAGES) */
  char *const *host_entries; /* its top-level entries (default: fx_host_entries) */
  char *keyfile;             /* the host package's signing key in the fixture */
  char *pubpem;              /* `openssl rsa -pubout` of the signing key */
  uint8_t pubkey[AVM_AVB_PUBKEY_SIZE];
  char key_sha1[41];
  char *expanded[2]; /* simg2img of super.img and userdata.img */
};

void ctx_init (struct ctx *c, const char *images, const char *arch, const char *bootloader);

void ctx_free (struct ctx *c);

/* system.img: layout (a, b), contents (a), sparseness (c).  */
void check_system (struct ctx *c, const char *path, struct disk *d);

/* properties(.virgl).img: layout, U-Boot env, vbmeta, frp, bootconfig.
   Returns the bootconfig text (malloc'd).  */
char *check_props (struct ctx *c, const char *path, struct disk *d);

bool has_line (const char *text, const char *line);

#define assert_line(text, line, what)                                                                                  \
  cr_assert (has_line ((text), (line)), "%s: bootconfig lacks \"%s\":\n%s", (what), (line), (text))

/* The output directory holds exactly NAMES: no temporaries.  */
void check_dir_entries (const char *dir, const char *const *names, size_t n);

struct result
{
  char *bc, *bc_virgl;
  json_t *manifest;
  struct disk sys, props, virgl;
};

void result_free (struct result *r);

/* Everything about the outputs of a conversion in OUT.  */
void check_all (struct ctx *c, const char *out, struct result *r);

/* Both conversions wrote the same partition contents (j): the system disk's
   partitions byte for byte, and the properties' environment and bootconfig
   text (signatures differ: AVB salts are random).  */
void check_same_contents (const struct result *a, const char *da, const struct result *b, const char *db);

/* E (a conversion's stderr) is its one-line summary, starting with PREFIX
   ("avm cvd2img: wrote "): the system disk with its size and partitions,
   the other outputs, the time taken.  */
void expect_summary (const char *e, const char *prefix);

/* Run avm with ARGS; it must succeed with nothing on stdout and, on
   stderr (not a terminal: no progress bar), a conversion's summary
   (none with -q) or nothing.  */
void avm_ok (char *const args[]);

extern const char *const out_names[];

void seed_outputs (const char *out);

void check_outputs_untouched (const char *out);

/* Run `avm cvd2img -o OUT ARGS...` over pre-existing outputs: exit WANT_RC,
   nothing on stdout, one line on stderr holding every NEEDLE, outputs and
   INPUTS unchanged, no temporaries.  */
void expect_failure (const char *out, int want_rc, char *const args[], const char *const needles[],
                     const char *const inputs[]);

/* A hard-link clone of the fixture's image directory in the test's scratch
   space, without SKIP (may be NULL).  */
char *clone_cvd (const char *name, const char *skip);

/* Nothing hidden in OUT: no temporary, no marker of an unfinished commit.  */
void check_nothing_hidden (const char *out, const char *when);

uint64_t rnd (uint64_t *x);

/* A profile that gets through planning without helpers or QEMU on this
   host (disabled services, recorded capabilities), so that `avm start`
   reaches the check of its images (and would fail right after it, never
   starting a guest).  */
char *no_helpers_profile (void);

/* `avm inspect DISK` says the set is not sound: exit 1, each NEEDLE in
   its report.  */
void expect_inspect_not_sound (const char *disk, const char *const needles[]);

void expect_inspect_sound (const char *disk);

/* `avm start` with IMAGES refuses before starting anything: exit 2, one
   line holding each NEEDLE; `avm start -n` and `avm check` report it.  */
void expect_start_refused (const char *images, const char *const needles[]);

int cmp_names (const void *a, const void *b);

/* OUT's entries, sorted, space-separated (malloc'd); hidden ones too.  */
char *listing (const char *out);
