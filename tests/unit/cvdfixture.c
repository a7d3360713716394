/* SPDX-License-Identifier: Apache-2.0 */
/* The Cuttlefish image set of the cvd2img and tour suites (cvdfixture.h). */
#include "cvdfixture.h"
#include "testutil.h"
#include "util/cleanup.h"
#include "util/error.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

char *const fx_host_entries[] = { "bin", "etc", "lib64", "usr", NULL };

/* An RSA-4096 key with public exponent 3, made once with `openssl genpkey
   -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -pkeyopt rsa_keygen_pubexp:3`
   (generating one takes 1 to 5 seconds here, more than the rest of the
   fixture): refused as a signing key, and its public key blob is the
   well-formed 4096-bit .avbpubkey that does not match.  */
const char fx_key_e3_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIIJQwIBADANBgkqhkiG9w0BAQEFAASCCS0wggkpAgEAAoICAQDM7zD067mAVXhc\n"
                             "oa4cJeSj5BLYP4E2031yprD4wic7D0+p7NXJA4e+QNWH8qETQkgN36KH0t2bd6Ef\n"
                             "Kylf+wSw2Bk0ysvPRf6/3ak3XW48y+cpT7Ao+4wRXOaHOAzk7X/UkjKuQXJryjNq\n"
                             "NQnvc+MPJFvbeKUNJmcLpIJWyMI+MR6JXsGvt7CRPyxxsgQEwQTMFd0D/WlAMPD1\n"
                             "9bVA8rs6v83gB8p0tjq2WNjVj2M1y+n89guDhqIBfU0sFpSGCEwXKK2F5UeiE84y\n"
                             "LZAS7VHanadzOZ11bb1HPM8dpQdYj9eQs9lJun0u8Ctp26k4GIQfzv49YkDYmP3i\n"
                             "D+cHR2EKShawB8p/RQ4gtQ44Gof8cjhpneeKkxKVfkyXFwL4JGFsRx3kWe1VGHH3\n"
                             "td448/leaB56t9hpDsjcGV8NpsuZhC38pdXLZ7Z/1IY20RGmyxUrBTiCckAo3cZq\n"
                             "vDA9shR50WXDduTu3pF5/ljIVnO0HqiwzdvzIDNBTCupi/ULu0gXSd2F/nV+P+ro\n"
                             "Pi5WSgM+QlkfS8V1CqyFWxIyUcIrGcfhz6X453Xx8HGRveGw5nqN1rksnd+fjtIe\n"
                             "hwV/8Q0YP405aUV42gZGmuB3jlyyhpGdjt4zlPfBtYyASXzK2GBbTIAiFgxGRhJT\n"
                             "FoJpGmx0iC/hr4eN76MLXFaUqIuEXQIBAwKCAgEAiJ91+J0mVY5QPcEevW6YbUK3\n"
                             "OtUAzzeo9xnLUIFvfLTfxp3j21ev1Cs5BUxrYiwwCT/Br+HpEk/Av3IblVIDIJAQ\n"
                             "zdyH34P/KpPGJOj0KIfvcN/Kxf0IC5NEWiVd7fOqjbbMdCuhnTF3nCNb9PfstMLn\n"
                             "56XDXhmaB8MBjzCBfstpsOnWdSUgYNTIS8wCrdYDMrk+Aqjw1XX1+U541fcnfH/e\n"
                             "lVqG+Hl8eZCQjl+XeTKb/fldAlnBVlOIyA8NrrAyuhseWUOFFrfezB5gDJ42kb5v\n"
                             "oiZo+PPThNM0vm4E5bU6YHfmMSb+H0rHm+fGJWWtaon+05bV5btT7AqaBNpAsFRm\n"
                             "IEDpNFUHqrLsiWJZNwzt7kIplPeRhNt5UJC2TsZbqSKmD7f9nnvLVXiInH2+9WIg\n"
                             "SbcR+GFX/Ecx5Yl3dZPogvSCZW5NyN2aDnQAmKY8oKRz3i+NoaLkRdWxjEYpkOTD\n"
                             "j29CqqdP420wy87OvY7OVIHPjrE89kLvzeu/qWTHr52YLPX2XvlLepCZe1NcHPaf\n"
                             "1ycSP4fOtRid9HYDvbbHDG1Oib0LSM3u1CW+SkgXedjhjwgCsYz5tjFpJG77WvFB\n"
                             "3mBWvOU/sgOKZZOudHotyXeZJiAovipxpgRTMx6qWI4IHN3xNEoK8HbEnRqW2J78\n"
                             "L+wX5ylJD0dTn3zAoxMCggEBAPefiuQ12MsBGrQui+6TtMtGJwyNkLjIRD+JfG8v\n"
                             "Sac6iFlffkUx1bLhxJw0Lo81gYkGO93rq5ub/Q7qWfrSwV9Kk9jqCUylcIuk/B8+\n"
                             "7q3pz9/n6BtFLXDT5JGc/ZNtVAfM3Z0LCfAOAEZH7V4KgU7RQr+Zo4etSxB2u4AZ\n"
                             "WnInkfBqvjs15CEgpDFNHeCH2vvOT1eOeaPRc/Ws70o/1ZhKuQgS7oQraVXgtn3B\n"
                             "e9f76nYrFgil4zpTevW0Rl+gS7H22S/wEGAaqSzWdBgOECY+T7CuaXTuTiM2ZsfO\n"
                             "vM4SApwKIXR2+gVxBnpNqLPLnYD8C8VSljMLEioipxoANKsCggEBANPd9MI21/qB\n"
                             "hfR83hhudRONXS4bmmbwCfWNIc7COFOdZjnFToC/EavfMuTdH6glbMvn0EdRyOEo\n"
                             "5J+p213Fp8cGpF4oKfWcYfx6JQPR0yPQai6izQ+miPicHWoI7bVozHJzjrL15POL\n"
                             "pJRHqUIzFnmh70uK+Y6qhNdNOSo8MzH0/e0OhFJOC6jZDDP6/2xxN9SbDTmbnBsl\n"
                             "AcB4VFZ8uO9SliOdO8e5m2WqnQeCxaJbbJs7wAk1sgEIEkczgurzxCOzkqjTTSIM\n"
                             "Emi6axjI86kOn6rKEO/MVlKroHsxQVxO09tp1VSrfdGQ4+oN1L6+khi5jggRHP6q\n"
                             "Ykc2flNqWxcCggEBAKUVB0LOkIdWEc10XUm3zdzZb12ztdCFgtUGUvTKMRonBZDq\n"
                             "VC4hOSHr2GgiybTOVltZfT6dHRJn/gnxkVHh1j+HDTtGsN3DoF0YqBTUnx6b3+qa\n"
                             "mrzYyPXimGETU7eeOAUzPmiyBqAJVYQv85QHAN82LH+7wlpzh2BPJ6q7kaFvtqBH\n"
                             "KXzOmBYVwsuIvpWv51KJijpe+8KLoqPIn4bVORAx0LAMnwLHm46Vzv6A/Tqn8aQc\n"
                             "uVsZQibiUfki2ZUVh8v55h/1YEARxh3kTWVetW7UNSB0Rk30NBd5mdqJ0zQMAb1c\n"
                             "Fk2kpq5LWabecHfdE6tSsoOMZCIHYXFsb2aqzccCggEBAI0+oywkj/xWWU2olBBJ\n"
                             "o2JePh69EZn1W/kIwTSBeuJo7tEuNFXUtnKUzJiTanAY8zKaito2hetwmGpxPOku\n"
                             "b9oEbZQaxqO9lqhRbgKL4hfgRsnB3gpvBfsSvkawnnjwiExNCcyj7feybbgvxiwi\n"
                             "DvvBSjJcpl8cWI+I0MbSzMv4qUi0WDbesnCQss1R/52gz+MSCNESaBIYq9WljY79\n"
                             "0J+MZBe+J9p7vO5xvgUB2RbnnbzSgAYjzACwDC93rJyigsJ3txs3iMFdYZsm8hCF\n"
                             "98YJv8cxYJ/djuHHwFIg1j2J4pJGjjhyU+ELQpwJOH8ptrsmXrALaKnG7C95qYzx\n"
                             "kg8CggEBAPH+cctZGnbj7YrI6N2QHT9S8sIBLfAwB3tZJ6/OgJ5JnXWHKRyn0xf8\n"
                             "OvVJSs+T9ER56syQ39ywty83r95FdML2yNVu8N5RzJ5jgTmwEbRS6ttpJJLF3JPq\n"
                             "pXuGteomLGtxBP33C9pzpPbPwInLf0fhotaQYbRXnLAIt2YbTnfJlB9PrDFOkpzP\n"
                             "whmCYnAPWXen/DuSiYPCP2YHvjAHvu8V/HXDCnddPNr57aaWbJOIVMxhLDPvRUiL\n"
                             "dB/+yJe8u6Q/7WoqQd7VgNrYEQUST4fsK0/T8elcsmMNXG67dETn7Exx8c7AcLqB\n"
                             "MEKMwf6cUXZFrpIOrITOM5tVACUAif8=\n"
                             "-----END PRIVATE KEY-----\n";

/* The Cuttlefish images of the fixture's image zip.  */
const char *const fx_zip_images[7] = { "boot.img",  "vendor_boot.img", "vbmeta.img",      "vbmeta_system.img",
                                       "super.img", "userdata.img",    "android-info.txt" };
const char *const fx_opt_images[3] = { "init_boot.img", "vbmeta_vendor_dlkm.img", "vbmeta_system_dlkm.img" };

char *
fx_join (const char *a, const char *b)
{
  char *p = NULL;
  cr_assert (asprintf (&p, "%s/%s", a, b) >= 0);
  return p;
}

void
fx_mkdirs (const char *path)
{
  char buf[PATH_MAX];
  snprintf (buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/')
      {
        *p = '\0';
        mkdir (buf, 0755);
        *p = '/';
      }
  cr_assert (mkdir (buf, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", buf, strerror (errno));
}

void
fx_fill_random (uint8_t *buf, size_t len, uint64_t seed)
{
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL;
  for (size_t i = 0; i < len; i++)
    {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      buf[i] = (uint8_t) (x >> 29);
    }
}

void
fx_write_bin (const char *path, const void *data, size_t len)
{
  unlink (path); /* never write through a hard link into the fixture */
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  cr_assert (fd >= 0, "%s: %s", path, strerror (errno));
  cr_assert_eq (write (fd, data, len), (ssize_t) len, "%s: short write", path);
  cr_assert_eq (close (fd), 0);
}

uint8_t *
fx_read_bin (const char *path, size_t *len)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  cr_assert (fd >= 0, "open %s: %s", path, strerror (errno));
  cr_assert_eq (fstat (fd, &st), 0);
  uint8_t *buf = malloc (st.st_size + 1);
  cr_assert_not_null (buf);
  size_t done = 0;
  while (done < (size_t) st.st_size)
    {
      ssize_t n = pread (fd, buf + done, st.st_size - done, done);
      cr_assert (n > 0, "read %s: %s", path, n < 0 ? strerror (errno) : "short");
      done += n;
    }
  buf[done] = 0;
  close (fd);
  *len = done;
  return buf;
}

void
fx_write_random (const char *path, size_t len, uint64_t seed)
{
  uint8_t *b = malloc (len);
  fx_fill_random (b, len, seed);
  fx_write_bin (path, b, len);
  free (b);
}

void
fx_write_vbmeta_like (const char *path, size_t len, uint64_t seed)
{
  uint8_t *b = malloc (len);
  fx_fill_random (b, len, seed);
  memcpy (b, "AVB0", 4);
  fx_write_bin (path, b, len);
  free (b);
}

/* NAME in $PATH, /usr/sbin or /sbin (sgdisk and sfdisk live in sbin).  */
char *
fx_tool (const char *name)
{
  const char *path = getenv ("PATH");
  _cleanup_free_ char *dirs = NULL;
  char *save = NULL;
  cr_assert (asprintf (&dirs, "%s:/usr/sbin:/sbin", path ? path : "/usr/bin:/bin") >= 0);
  for (char *d = strtok_r (dirs, ":", &save); d; d = strtok_r (NULL, ":", &save))
    {
      char *p = fx_join (*d ? d : ".", name);
      if (access (p, X_OK) == 0)
        return p;
      free (p);
    }
  cr_assert_fail ("%s not found: install it (tests/deps.sh)", name);
  return NULL;
}

/* Run ARGV (argv[0] a tool name): it must exit 0.  Returns stdout; *ERR
   gets stderr when ERR is given.  */
char *
fx_run_ok (char *const argv[], char **err)
{
  char *av[32];
  size_t n = 0;
  _cleanup_free_ char *bin = fx_tool (argv[0]);
  av[n++] = bin;
  for (size_t i = 1; argv[i] && n < 31; i++)
    av[n++] = argv[i];
  av[n] = NULL;
  char *env[] = { "LC_ALL=C", NULL };
  char *out = NULL, *e = NULL;
  int rc = tu_run (av, env, &out, &e);
  cr_assert_eq (rc, 0, "%s %s %s: exit %d\n%s%s", argv[0], argv[1] ? argv[1] : "", argv[1] && argv[2] ? argv[2] : "",
                rc, out, e);
  if (err)
    *err = e;
  else
    free (e);
  return out;
}

/* A child with stdio on /dev/null, for work done in parallel.  */
pid_t
fx_spawn_quiet (char *const argv[])
{
  posix_spawn_file_actions_t fa;
  pid_t pid;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 2, "/dev/null", O_WRONLY, 0);
  int r = posix_spawnp (&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  cr_assert_eq (r, 0, "spawn %s: %s", argv[0], strerror (r));
  return pid;
}

void
fx_wait_ok (pid_t pid, const char *what)
{
  int st;
  while (waitpid (pid, &st, 0) < 0)
    cr_assert_eq (errno, EINTR);
  cr_assert (WIFEXITED (st) && WEXITSTATUS (st) == 0, "%s failed (status 0x%x)", what, st);
}

static char *
fixture_path (void)
{
  return tu_run_shared_dir ("cvd2img");
}

/* AvbRSAPublicKeyHeader blob of the RSA key in PEM file PATH, computed here
   with OpenSSL's BN (independently of lib/disk/avb.c): key_num_bits, n0inv =
   -1/n mod 2^32, n, rr = 2^(2*4096) mod n, all big-endian.  */
void
fx_pubkey_blob (const char *path, uint8_t blob[AVM_AVB_PUBKEY_SIZE])
{
  FILE *f = fopen (path, "r");
  cr_assert_not_null (f, "%s: %s", path, strerror (errno));
  EVP_PKEY *pk = PEM_read_PrivateKey (f, NULL, NULL, NULL);
  fclose (f);
  cr_assert_not_null (pk, "%s: not a PEM private key", path);
  BIGNUM *n = NULL;
  cr_assert (EVP_PKEY_get_bn_param (pk, OSSL_PKEY_PARAM_RSA_N, &n));
  cr_assert_eq (BN_num_bits (n), 4096, "%s: not RSA-4096", path);
  BN_CTX *ctx = BN_CTX_new ();
  BIGNUM *b32 = BN_new (), *n0 = BN_new (), *inv = BN_new (), *r = BN_new (), *rr = BN_new ();
  cr_assert (BN_lshift (b32, BN_value_one (), 32));
  cr_assert (BN_nnmod (n0, n, b32, ctx));
  cr_assert (BN_mod_inverse (inv, n0, b32, ctx));
  cr_assert (BN_sub (inv, b32, inv));
  cr_assert (BN_lshift (r, BN_value_one (), 8192));
  cr_assert (BN_mod (rr, r, n, ctx));
  uint32_t n0inv = (uint32_t) BN_get_word (inv);
  uint8_t *p = blob;
  p[0] = 0, p[1] = 0, p[2] = 0x10, p[3] = 0; /* 4096 */
  p[4] = n0inv >> 24, p[5] = n0inv >> 16, p[6] = n0inv >> 8, p[7] = n0inv;
  cr_assert_eq (BN_bn2binpad (n, p + 8, 512), 512);
  cr_assert_eq (BN_bn2binpad (rr, p + 520, 512), 512);
  BN_free (b32), BN_free (n0), BN_free (inv), BN_free (r), BN_free (rr), BN_free (n);
  BN_CTX_free (ctx);
  EVP_PKEY_free (pk);
}

/* Hard-link the tree SRC to DST (directories are created).  */
void
fx_link_tree (const char *src, const char *dst)
{
  DIR *d = opendir (src);
  struct dirent *e;
  cr_assert_not_null (d, "%s: %s", src, strerror (errno));
  fx_mkdirs (dst);
  while ((e = readdir (d)))
    {
      if (streq (e->d_name, ".") || streq (e->d_name, ".."))
        continue;
      _cleanup_free_ char *s = fx_join (src, e->d_name), *t = fx_join (dst, e->d_name);
      struct stat st;
      cr_assert_eq (lstat (s, &st), 0);
      if (S_ISDIR (st.st_mode))
        {
          fx_link_tree (s, t);
          cr_assert_eq (chmod (t, st.st_mode & 07777), 0, "chmod %s: %s", t, strerror (errno));
        }
      else
        {
          unlink (t);
          cr_assert_eq (link (s, t), 0, "link %s %s: %s", s, t, strerror (errno));
        }
    }
  closedir (d);
}

static void
make_fixture (const char *F)
{
  static const char *const subdirs[] = { "src", "keys", "cvd", "cvd-opt", "cvd-arm", "host-dot" };
  for (size_t i = 0; i < ARRAY_SIZE (subdirs); i++)
    {
      _cleanup_free_ char *d = fx_join (F, subdirs[i]);
      tu_rmtree (d);
    }
  _cleanup_free_ char *src = fx_join (F, "src"), *keys = fx_join (F, "keys"), *cvd = fx_join (F, "cvd");
  _cleanup_free_ char *cvd_opt = fx_join (F, "cvd-opt"), *cvd_arm = fx_join (F, "cvd-arm");
  _cleanup_free_ char *etc_x86 = fx_join (cvd, "etc/bootloader_x86_64");
  fx_mkdirs (src);
  fx_mkdirs (keys);
  fx_mkdirs (etc_x86);

  /* The RSA-4096 key takes a second or two: make it meanwhile.  */
  _cleanup_free_ char *key = fx_join (cvd, KEY_PEM), *ke3 = fx_join (keys, "ke3.pem"),
                      *k2048 = fx_join (keys, "k2048.pem");
  _cleanup_free_ char *openssl = fx_tool ("openssl");
  pid_t gen1 = fx_spawn_quiet ((char *[]) { openssl, "genrsa", "-out", key, "4096", NULL });
  pid_t gen2 = fx_spawn_quiet ((char *[]) { openssl, "genrsa", "-out", k2048, "2048", NULL });
  fx_write_bin (ke3, fx_key_e3_pem, strlen (fx_key_e3_pem));

  /* Boot images by mkbootimg (header v3; v4 init_boot is beyond Debian's).  */
  _cleanup_free_ char *K = fx_join (src, "kernel"), *R = fx_join (src, "ramdisk"), *D = fx_join (src, "dtb");
  _cleanup_free_ char *K2 = fx_join (src, "kernel2"), *R2 = fx_join (src, "ramdisk2");
  fx_write_random (K, 40000, 1);
  fx_write_random (R, 21000, 2);
  fx_write_random (D, 1500, 3);
  fx_write_random (K2, 5000, 4);
  fx_write_random (R2, 9000, 5);
  _cleanup_free_ char *boot = fx_join (cvd, "boot.img"), *vboot = fx_join (cvd, "vendor_boot.img");
  _cleanup_free_ char *iboot = fx_join (src, "init_boot.img");
  _cleanup_free_ char *mkbootimg = fx_tool ("mkbootimg");
  pid_t mk[3];
  mk[0] = fx_spawn_quiet (
      (char *[]) { mkbootimg, "--kernel", K, "--ramdisk", R, "--header_version", "3", "-o", boot, NULL });
  mk[1] = fx_spawn_quiet ((char *[]) { mkbootimg, "--vendor_boot", vboot, "--vendor_ramdisk", R, "--dtb", D,
                                       "--header_version", "3", NULL });
  mk[2] = fx_spawn_quiet (
      (char *[]) { mkbootimg, "--kernel", K2, "--ramdisk", R2, "--header_version", "3", "-o", iboot, NULL });

  /* super and userdata: random data, zero runs, 4-byte patterns, a
     compressible run (so zip deflates them) and a block that is zero but
     for one byte; img2simg turns them into RAW and FILL chunks.  */
  uint8_t *raw = calloc (16, BLK);
  fx_fill_random (raw, 3 * BLK, 10);
  for (size_t i = 7 * BLK; i < 10 * BLK; i += 4)
    memcpy (raw + i, "\xde\xad\xbe\xef", 4);
  for (size_t i = 10 * BLK; i < 12 * BLK; i++)
    raw[i] = "Cuttlefish super partition, compressible text. "[i % 48];
  fx_fill_random (raw + 12 * BLK, BLK, 11);
  raw[14 * BLK - 1] = 0x01;
  _cleanup_free_ char *super_raw = fx_join (src, "super.raw"), *super = fx_join (cvd, "super.img");
  fx_write_bin (super_raw, raw, 16 * BLK);
  memset (raw, 0, 16 * BLK);
  fx_fill_random (raw + BLK, 2 * BLK, 12);
  for (size_t i = 3 * BLK; i < 5 * BLK; i += 4)
    memcpy (raw + i, "\x01\x02\x03\x04", 4);
  fx_fill_random (raw + 5 * BLK, BLK, 13);
  _cleanup_free_ char *ud_raw = fx_join (src, "userdata.raw"), *ud = fx_join (cvd, "userdata.img");
  fx_write_bin (ud_raw, raw, 8 * BLK);
  free (raw);
  free (fx_run_ok ((char *[]) { "img2simg", super_raw, super, "4096", NULL }, NULL));
  free (fx_run_ok ((char *[]) { "img2simg", ud_raw, ud, "4096", NULL }, NULL));

  for (int i = 0; i < 3; i++)
    fx_wait_ok (mk[i], "mkbootimg");

  _cleanup_free_ char *info = fx_join (cvd, "android-info.txt"), *vbs = fx_join (cvd, "vbmeta_system.img");
  fx_write_bin (info, "require board=cutf\n", 19);
  fx_write_vbmeta_like (vbs, 3000, 20);
  _cleanup_free_ char *bl = fx_join (cvd, BL_X86);
  fx_write_random (bl, MIB, 30);

  /* The rest of a host package: an executable (setuid in the package,
     which the output must not keep), a library under its versioned name
     and the link to it, a link to a directory one level up, data in usr/
     in a directory of its own mode.  */
  _cleanup_free_ char *bin = fx_join (cvd, "bin"), *lib = fx_join (cvd, "lib64");
  _cleanup_free_ char *share = fx_join (cvd, "usr/share/cuttlefish");
  fx_mkdirs (bin);
  fx_mkdirs (lib);
  fx_mkdirs (share);
  _cleanup_free_ char *toolp = fx_join (bin, "tool"), *libp = fx_join (lib, "libfoo.so.1");
  _cleanup_free_ char *libl = fx_join (lib, "libfoo.so"), *bindir = fx_join (bin, "lib64dir");
  _cleanup_free_ char *data = fx_join (share, "data.txt");
  fx_write_bin (toolp, "#!/bin/sh\necho host tool\n", 26);
  cr_assert_eq (chmod (toolp, 04755), 0);
  fx_write_random (libp, 3000, 40);
  cr_assert_eq (symlink ("libfoo.so.1", libl), 0);
  cr_assert_eq (symlink ("../lib64", bindir), 0);
  fx_write_bin (data, "cuttlefish data\n", 16);
  cr_assert_eq (chmod (share, 0750), 0);

  fx_wait_ok (gen2, "openssl genrsa 2048");
  fx_wait_ok (gen1, "openssl genrsa 4096");

  /* The public key blob, written with the library and checked against
     the one computed here.  */
  struct avm_avb_key *k = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  cr_assert_eq (avm_avb_key_load (key, &k, &err), 0, "%s", err ? err->msg : "");
  uint8_t blob[AVM_AVB_PUBKEY_SIZE], mine[AVM_AVB_PUBKEY_SIZE];
  cr_assert_eq (avm_avb_key_blob (k, blob, &err), 0);
  fx_pubkey_blob (key, mine);
  cr_assert (memcmp (blob, mine, sizeof blob) == 0, "avm_avb_key_blob differs from the blob computed with BN");
  _cleanup_free_ char *pub = fx_join (cvd, KEY_PUB);
  fx_write_bin (pub, blob, sizeof blob);

  /* vbmeta.img: a real vbmeta image (chain to boot), not a 4 KiB multiple.  */
  const struct avm_avb_chain chain = { "boot", 1, blob };
  uint8_t *vb = NULL;
  size_t vblen = 0;
  cr_assert_eq (avm_avb_make_vbmeta (&chain, 1, k, &vb, &vblen, &err), 0);
  cr_assert (vblen % 4096 != 0 && vblen < 65536);
  _cleanup_free_ char *vbpath = fx_join (cvd, "vbmeta.img");
  fx_write_bin (vbpath, vb, vblen);
  free (vb);
  avm_avb_key_free (k);

  /* A well-formed RSA-4096 public key blob of another key.  */
  fx_pubkey_blob (ke3, mine);
  _cleanup_free_ char *mismatch = fx_join (keys, "other.avbpubkey");
  fx_write_bin (mismatch, mine, sizeof mine);

  /* With the optional images.  */
  fx_link_tree (cvd, cvd_opt);
  _cleanup_free_ char *ib = fx_join (cvd_opt, "init_boot.img"), *vd = fx_join (cvd_opt, "vbmeta_vendor_dlkm.img");
  _cleanup_free_ char *sd = fx_join (cvd_opt, "vbmeta_system_dlkm.img");
  cr_assert_eq (link (iboot, ib), 0);
  fx_write_vbmeta_like (vd, 2000, 21);
  fx_write_vbmeta_like (sd, 1500, 22);

  /* For aarch64: only the arm bootloader.  */
  fx_link_tree (cvd, cvd_arm);
  _cleanup_free_ char *x86dir = fx_join (cvd_arm, "etc/bootloader_x86_64"), *armbl = fx_join (cvd_arm, BL_ARM);
  tu_rmtree (x86dir);
  _cleanup_free_ char *armdir = fx_join (cvd_arm, "etc/bootloader_aarch64");
  fx_mkdirs (armdir);
  fx_write_random (armbl, MIB, 31);

  /* The image zips (deflated and stored) and the host packages.  */
  char *zargs[32];
  const char *zips[] = { "img.zip", "img-stored.zip", "img-opt.zip" };
  for (size_t z = 0; z < ARRAY_SIZE (zips); z++)
    {
      size_t n = 0;
      zargs[n++] = "zip";
      zargs[n++] = "-q";
      if (z == 1)
        zargs[n++] = "-0";
      zargs[n++] = "-j";
      zargs[n++] = fx_join (F, zips[z]);
      unlink (zargs[n - 1]);
      size_t first = n;
      for (size_t i = 0; i < ARRAY_SIZE (fx_zip_images); i++)
        zargs[n++] = fx_join (z == 2 ? cvd_opt : cvd, fx_zip_images[i]);
      if (z == 2)
        for (size_t i = 0; i < ARRAY_SIZE (fx_opt_images); i++)
          zargs[n++] = fx_join (cvd_opt, fx_opt_images[i]);
      zargs[n] = NULL;
      free (fx_run_ok (zargs, NULL));
      for (size_t i = first - 1; i < n; i++)
        free (zargs[i]);
    }
  _cleanup_free_ char *host = fx_join (F, "host.tar.gz"), *host_arm = fx_join (F, "host-arm.tar.gz");
  free (fx_run_ok ((char *[]) { "tar", "czf", host, "-C", cvd, "etc", "bin", "lib64", "usr", NULL }, NULL));
  free (fx_run_ok ((char *[]) { "tar", "czf", host_arm, "-C", cvd_arm, "etc", NULL }, NULL));
  /* Made here: tests hard-link fixture files, which changes their ctime and
     makes a concurrent tar complain.  */
  _cleanup_free_ char *host_dot = fx_join (F, "host-dot.tar.gz"), *dot = fx_join (F, "host-dot");
  _cleanup_free_ char *cvd_etc = fx_join (cvd, "etc"), *dot_etc = fx_join (dot, "etc");
  fx_link_tree (cvd_etc, dot_etc);
  free (fx_run_ok ((char *[]) { "tar", "czf", host_dot, "-C", dot, ".", NULL }, NULL));
}

/* The fixture directory, generated on first use.  */
const char *
fx_dir (void)
{
  static char *dir;
  if (dir)
    return dir;
  char *d = fixture_path ();
  struct stat st;
  if (mkdir (d, 0700) < 0 && errno != EEXIST)
    cr_assert_fail ("mkdir %s: %s", d, strerror (errno));
  cr_assert (lstat (d, &st) == 0 && S_ISDIR (st.st_mode) && st.st_uid == getuid (), "%s is not ours", d);
  _cleanup_free_ char *lock = fx_join (d, ".lock"), *ready = fx_join (d, ".ready");
  int fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  cr_assert (fd >= 0);
  cr_assert_eq (flock (fd, LOCK_EX), 0);
  if (access (ready, F_OK) != 0)
    {
      make_fixture (d);
      fx_write_bin (ready, "", 0);
    }
  flock (fd, LOCK_UN);
  close (fd);
  dir = d;
  return dir;
}

char *
fx_path (const char *name)
{
  return fx_join (fx_dir (), name);
}
