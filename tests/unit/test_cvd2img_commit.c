/* SPDX-License-Identifier: Apache-2.0 */
/*
 * avm cvd2img (suite cvd2img): the output set is replaced whole, signals
 * and kills during the commit included, and inspect and start refuse a
 * set that is not.  See test_cvd2img.c.
 */
#include "cvd2imgutil.h"

#define SET_FILES 6
static const char *const set_files[SET_FILES]
    = { "system.img", "properties.img", "properties_virgl.img", "bootloader", "manifest.json", "avb_key.pem" };

struct setsum
{
  char sha[SET_FILES][65];
  char tree[65]; /* the host tree: its top-level entries and bin/tool */
};

/* A digest of PATH's contents that reads only its data (system.img is
   mostly holes): SHA-256 over its size and every 4 KiB block that is not
   all zeros, with its offset.  Equal contents give equal digests whatever
   the holes.  */
static void
sha_file (const char *path, char out[65])
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  cr_assert (fd >= 0 && fstat (fd, &st) == 0, "%s: %s", path, strerror (errno));
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  cr_assert (ctx && EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL));
  uint64_t size = st.st_size;
  EVP_DigestUpdate (ctx, &size, sizeof size);
  uint8_t *buf = malloc (MIB);
  for (off_t pos = 0; pos < st.st_size;)
    {
      off_t data = lseek (fd, pos, SEEK_DATA);
      if (data < 0)
        break; /* a hole to the end */
      off_t hole = lseek (fd, data, SEEK_HOLE);
      cr_assert (hole > data);
      data -= data % BLK;
      for (off_t off = data; off < hole;)
        {
          size_t want = hole - off < MIB ? (size_t) (hole - off) : MIB;
          ssize_t got = pread (fd, buf, want, off);
          cr_assert (got > 0, "%s: read at %lld", path, (long long) off);
          for (ssize_t b = 0; b < got; b += BLK)
            {
              size_t n = got - b < BLK ? (size_t) (got - b) : BLK;
              if (all_zero (buf + b, n))
                continue;
              uint64_t at = off + b;
              EVP_DigestUpdate (ctx, &at, sizeof at);
              EVP_DigestUpdate (ctx, buf + b, n);
            }
          off += got;
        }
      pos = hole;
    }
  uint8_t md[32];
  unsigned int len = 0;
  cr_assert (EVP_DigestFinal_ex (ctx, md, &len) && len == 32);
  for (unsigned i = 0; i < len; i++)
    sprintf (out + 2 * i, "%02x", md[i]);
  EVP_MD_CTX_free (ctx);
  free (buf);
  close (fd);
}

/* The SHA-256 of the whole file, as manifest.json records it.  */
static void
sha256_plain (const char *path, char out[65])
{
  size_t len;
  _cleanup_free_ uint8_t *d = fx_read_bin (path, &len);
  digest_hex (EVP_sha256 (), d, len, out);
}

/* OUT's top-level entries but the set's files, sorted, space-separated
   (malloc'd).  */
static char *
tree_entries (const char *out)
{
  DIR *d = opendir (out);
  struct dirent *e;
  char *names[64];
  size_t n = 0;
  cr_assert_not_null (d);
  while ((e = readdir (d)) && n < ARRAY_SIZE (names))
    {
      bool file = e->d_name[0] == '.' || streq (e->d_name, "android-info.txt");
      for (size_t i = 0; i < SET_FILES; i++)
        file |= streq (e->d_name, set_files[i]);
      if (!file)
        names[n++] = strdup (e->d_name);
    }
  closedir (d);
  qsort (names, n, sizeof *names, cmp_names);
  char *s = NULL;
  size_t len = 0;
  FILE *m = open_memstream (&s, &len);
  for (size_t i = 0; i < n; i++)
    {
      fprintf (m, "%s%s", i ? " " : "", names[i]);
      free (names[i]);
    }
  fclose (m);
  return s;
}

static void
set_digests (const char *out, struct setsum *s)
{
  for (size_t i = 0; i < SET_FILES; i++)
    {
      _cleanup_free_ char *p = fx_join (out, set_files[i]);
      sha_file (p, s->sha[i]);
    }
  _cleanup_free_ char *entries = tree_entries (out), *tool = fx_join (out, "bin/tool");
  _cleanup_free_ char *content = tu_read (tool), *all = NULL;
  cr_assert (asprintf (&all, "%s\n%s", entries, content ? content : "(no bin/tool)") > 0);
  digest_hex (EVP_sha256 (), all, strlen (all), s->tree);
}

/* The disk GUID of the GPT disk PATH, read here (primary header, bytes
   56..71 of LBA 1, mixed-endian as GPT stores it).  */
static void
guid_of (const char *path, char out[40])
{
  uint8_t g[16];
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  cr_assert (fd >= 0, "%s: %s", path, strerror (errno));
  cr_assert_eq (pread (fd, g, 16, 512 + 56), 16);
  close (fd);
  snprintf (out, 40, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X", g[3], g[2], g[1], g[0],
            g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* OUT is one complete set converted from INPUT (bootloader digest BL_SHA,
   key digest KEY_SHA) with the serial number SERIAL, checked file by file
   without avm's own readers: every disk's GUID and size, the bootloader's
   and the key's digests are those manifest.json records, and both
   properties disks hold this run's serial number.  */
static void
check_new_set (const char *out, const char *input, const char *bl_sha, const char *key_sha, const char *serial)
{
  _cleanup_free_ char *man = fx_join (out, "manifest.json");
  json_error_t jerr;
  json_t *m = json_load_file (man, 0, &jerr);
  cr_assert_not_null (m, "%s: %s", man, jerr.text);
  cr_assert_str_eq (json_string_value (json_object_get (json_object_get (m, "input"), "dir")), input,
                    "%s is not the manifest of the conversion of %s", man, input);
  static const char *const disks[][2] = { { "system", "system.img" },
                                          { "properties", "properties.img" },
                                          { "properties_virgl", "properties_virgl.img" } };
  char want_bc[64];
  snprintf (want_bc, sizeof want_bc, "androidboot.serialno=%s\n", serial);
  for (size_t i = 0; i < ARRAY_SIZE (disks); i++)
    {
      _cleanup_free_ char *p = fx_join (out, disks[i][1]);
      json_t *sec = json_object_get (m, disks[i][0]);
      char guid[40];
      guid_of (p, guid);
      cr_assert_str_eq (guid, json_string_value (json_object_get (sec, "disk_guid")),
                        "%s is not the disk %s records: the set is mixed", p, man);
      cr_assert_eq ((uint64_t) json_integer_value (json_object_get (sec, "size")), file_size (p));
      if (i > 0)
        {
          size_t len;
          _cleanup_free_ uint8_t *d = fx_read_bin (p, &len);
          cr_assert_not_null (memmem (d, len, want_bc, strlen (want_bc)), "%s does not hold %s", p, want_bc);
        }
    }
  /* The host tree is INPUT's: the same top-level entries, its bin/tool
     (which differs from input to input), its entries in the manifest.  */
  _cleanup_free_ char *have = tree_entries (out), *want = NULL, *tool = fx_join (out, "bin/tool");
  _cleanup_free_ char *src_tool = fx_join (input, "bin/tool");
  {
    _cleanup_free_ char *all = listing (input);
    /* the input's directories, as the conversion takes them */
    char buf[1024], *save = NULL;
    size_t o = 0;
    snprintf (buf, sizeof buf, "%s", all);
    want = calloc (1, 1024);
    for (char *t = strtok_r (buf, " ", &save); t; t = strtok_r (NULL, " ", &save))
      {
        _cleanup_free_ char *p = fx_join (input, t);
        struct stat st;
        if (lstat (p, &st) == 0 && S_ISDIR (st.st_mode))
          o += snprintf (want + o, 1024 - o, "%s%s", o ? " " : "", t);
      }
  }
  cr_assert_str_eq (have, want, "%s: the host tree is not that of %s: the set is mixed", out, input);
  _cleanup_free_ char *tool_have = tu_read (tool), *tool_want = tu_read (src_tool);
  cr_assert_str_eq (tool_have, tool_want, "%s is not %s's: the set is mixed", tool, input);
  json_t *ents = json_object_get (json_object_get (m, "host_package"), "entries"), *e;
  size_t i;
  char joined[1024] = "";
  json_array_foreach (ents, i, e)
    snprintf (joined + strlen (joined), sizeof joined - strlen (joined), "%s%s", i ? " " : "", json_string_value (e));
  cr_assert_str_eq (joined, want, "%s does not list the host tree's entries", man);

  char sha[65];
  _cleanup_free_ char *bl = fx_join (out, "bootloader"), *key = fx_join (out, "avb_key.pem");
  sha256_plain (bl, sha);
  cr_assert_str_eq (sha, bl_sha, "%s is not the bootloader of %s", bl, input);
  cr_assert_str_eq (sha, json_string_value (json_object_get (json_object_get (m, "bootloader"), "sha256")));
  sha256_plain (key, sha);
  cr_assert_str_eq (sha, key_sha);
  cr_assert_str_eq (sha, json_string_value (json_object_get (json_object_get (m, "key"), "sha256")));
  json_decref (m);

  /* And avm's own check agrees.  */
  _cleanup_free_ char *sys = fx_join (out, "system.img");
  _cleanup_error_ avm_error_t err = NULL;
  json_t *problems = json_array ();
  cr_assert_eq (avm_setcheck (sys, true, AVM_SETCHECK_FULL, problems, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq (json_array_size (problems), 0, "%s", json_string_value (json_array_get (problems, 0)));
  json_decref (problems);
}

static long long
now_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* `avm cvd2img -q -o OUT --set boot_properties.androidboot.serialno=SERIAL
   INPUT` in the background, quiet, with default signal dispositions and
   nothing blocked.  */
static pid_t
spawn_conversion (const char *out, const char *input, const char *serial)
{
  char set[64];
  snprintf (set, sizeof set, "boot_properties.androidboot.serialno=%s", serial);
  char *argv[] = { (char *) tu_avm_bin (), "cvd2img", "-q", "-o", (char *) out, "--set", set, (char *) input, NULL };
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t none, dfl;
  sigemptyset (&none);
  sigemptyset (&dfl);
  sigaddset (&dfl, SIGINT);
  sigaddset (&dfl, SIGTERM);
  sigaddset (&dfl, SIGHUP);
  sigaddset (&dfl, SIGQUIT);
  posix_spawnattr_init (&at);
  posix_spawnattr_setflags (&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setsigmask (&at, &none);
  posix_spawnattr_setsigdefault (&at, &dfl);
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 2, "/dev/null", O_WRONLY, 0);
  char **env = avm_env ();
  pid_t pid;
  int r = posix_spawn (&pid, argv[0], &fa, &at, argv, env);
  posix_spawn_file_actions_destroy (&fa);
  posix_spawnattr_destroy (&at);
  free (env);
  cr_assert_eq (r, 0, "spawn %s: %s", argv[0], strerror (r));
  return pid;
}

static int
wait_status (pid_t pid)
{
  int st;
  while (waitpid (pid, &st, 0) < 0)
    cr_assert_eq (errno, EINTR);
  return st;
}

/* Wait (up to 10 s) until the conversion PID starts replacing outputs in
   the directory watched by INOTIFY: the commit marker appears, or (avm
   before the fix) the first output is renamed into place.  False when
   the process ended first.  */
static bool
wait_for_commit (int inotify, pid_t pid)
{
  long long deadline = now_us () + 10 * 1000000LL;
  while (now_us () < deadline)
    {
      struct pollfd p = { .fd = inotify, .events = POLLIN };
      int n = poll (&p, 1, 5);
      if (n > 0)
        {
          char buf[4096] __attribute__ ((aligned (__alignof__(struct inotify_event))));
          ssize_t len = read (inotify, buf, sizeof buf);
          for (char *q = buf; len > 0 && q < buf + len;)
            {
              const struct inotify_event *ev = (const struct inotify_event *) q;
              if (ev->len && ((ev->mask & IN_CREATE && streq (ev->name, AVM_CVD2IMG_MARKER)) || ev->mask & IN_MOVED_TO))
                return true;
              q += sizeof *ev + ev->len;
            }
          continue;
        }
      siginfo_t si = { 0 };
      if (waitid (P_PID, (id_t) pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
        return false; /* ended (left to reap) */
    }
  cr_assert_fail ("conversion %d did not reach its commit within 10 s", (int) pid);
  return false;
}

static void
drain (int inotify)
{
  char buf[4096] __attribute__ ((aligned (__alignof__(struct inotify_event))));
  while (read (inotify, buf, sizeof buf) > 0)
    ;
}

static void
spin_us (long long us)
{
  long long end = now_us () + us;
  while (now_us () < end)
    ;
}

/* The race, driven hundreds of times: conversions of different
   inputs over the same output directory, each sent SIGINT or SIGTERM
   either a random time after the commit starts (seen with inotify: the
   marker, or the first rename) or at a random time of the whole run.
   After every run the set must be entirely the old one (same digests) or
   entirely the new one (every file as the new manifest records it, of this
   run's input and serial number), with nothing left behind.  */
Test (cvd2img, signals_during_commit_replace_the_set_whole, .timeout = TU_TIMEOUT (300))
{
  enum
  {
    VARIANTS = 4,
    RUNS = 300,
  };
  _cleanup_free_ char *out = tpath ("out"), *key = fx_path ("cvd/" KEY_PEM);
  char *in[VARIANTS], bl_sha[VARIANTS][65], key_sha[65], serial[32];
  for (int v = 0; v < VARIANTS; v++)
    {
      char name[16];
      snprintf (name, sizeof name, "in%d", v);
      in[v] = clone_cvd (name, NULL);
      _cleanup_free_ char *bl = fx_join (in[v], BL_X86);
      fx_write_random (bl, 256 * 1024, 700 + v); /* a different bootloader in each */
      sha256_plain (bl, bl_sha[v]);
      /* and a different host tree: bin/tool differs; some have entries
         others lack (the commit exchanges, renames and retires) */
      _cleanup_free_ char *tool = fx_join (in[v], "bin/tool"), *opt = NULL, *lib = fx_join (in[v], "lib64");
      char text[64];
      snprintf (text, sizeof text, "#!/bin/sh\necho variant %d\n", v);
      fx_write_bin (tool, text, strlen (text));
      cr_assert_eq (chmod (tool, 0755), 0);
      if (v % 2)
        {
          cr_assert (asprintf (&opt, "%s/opt%d/share", in[v], v) > 0);
          fx_mkdirs (opt);
        }
      if (v == 2)
        tu_rmtree (lib);
    }
  sha256_plain (key, key_sha);

  /* The first set, and how long a conversion takes.  */
  fx_mkdirs (out);
  long long t0 = now_us ();
  int st = wait_status (spawn_conversion (out, in[0], "R0"));
  long long run_us = now_us () - t0;
  cr_assert (WIFEXITED (st) && WEXITSTATUS (st) == 0, "first conversion: status 0x%x", st);
  check_new_set (out, in[0], bl_sha[0], key_sha, "R0");
  struct setsum old, now;
  set_digests (out, &old);
  int old_v = 0;

  int inotify = inotify_init1 (IN_CLOEXEC | IN_NONBLOCK);
  cr_assert (inotify >= 0);
  cr_assert (inotify_add_watch (inotify, out, IN_CREATE | IN_MOVED_TO) >= 0);
  uint64_t x = 0x15c0ffee;
  int kept_old = 0, killed_new = 0, finished = 0;
  for (int i = 1; i <= RUNS; i++)
    {
      int v = (old_v + 1 + (int) (rnd (&x) % (VARIANTS - 1))) % VARIANTS;
      int sig = i % 2 ? SIGINT : SIGTERM;
      bool at_commit = i % 4 != 0;
      snprintf (serial, sizeof serial, "R%d", i);
      drain (inotify);
      pid_t pid = spawn_conversion (out, in[v], serial);
      if (at_commit)
        {
          if (wait_for_commit (inotify, pid))
            {
              spin_us ((long long) (rnd (&x) % 4000));
              kill (pid, sig);
            }
        }
      else
        {
          spin_us ((long long) (rnd (&x) % (uint64_t) (run_us + run_us / 5 + 1)));
          kill (pid, sig);
        }
      st = wait_status (pid);
      bool signalled = WIFSIGNALED (st);
      cr_assert ((WIFEXITED (st) && WEXITSTATUS (st) == 0) || (signalled && WTERMSIG (st) == sig),
                 "run %d: status 0x%x", i, st);
      check_nothing_hidden (out, "after a signal");
      set_digests (out, &now);
      if (memcmp (&now, &old, sizeof now) == 0)
        {
          cr_assert (signalled, "run %d (%s) finished, yet the old set is still there", i, in[v]);
          kept_old++;
          continue;
        }
      /* Not the old set: then wholly the new one.  Every file but the
         key (the same in every input) differs from the old set's.  */
      for (size_t f = 0; f < SET_FILES; f++)
        if (!streq (set_files[f], "avb_key.pem"))
          cr_assert_str_neq (now.sha[f], old.sha[f],
                             "run %d (%s, %s %s): %s is the old one, other files are new: a mixed set", i, in[v],
                             strsignal (sig), at_commit ? "during the commit" : "at a random time", set_files[f]);
      cr_assert_str_neq (now.tree, old.tree, "run %d (%s, %s %s): the host tree is the old one, the files new", i,
                         in[v], strsignal (sig), at_commit ? "during the commit" : "at a random time");
      check_new_set (out, in[v], bl_sha[v], key_sha, serial);
      old = now;
      old_v = v;
      killed_new += signalled;
      finished += !signalled;
    }
  close (inotify);
  cr_log_info ("%d runs: %d killed with the old set kept, %d killed after replacing it whole, %d finished", RUNS,
               kept_old, killed_new, finished);
  /* The signals hit both sides of the commit.  */
  cr_assert_geq (killed_new, RUNS / 10, "too few signals landed during the commit (%d)", killed_new);
  cr_assert_geq (kept_old, 5, "too few signals landed before the commit (%d)", kept_old);
  for (int v = 0; v < VARIANTS; v++)
    free (in[v]);
}

/* A marker left by a conversion that died in its commit (by hand here,
   as SIGKILL or a power cut would leave it): inspect calls every disk of
   the set not sound, start refuses; the next conversion clears it.  */
Test (cvd2img, stale_commit_marker)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out");
  _cleanup_free_ char *sys = fx_join (out, "system.img"), *props = fx_join (out, "properties.img");
  _cleanup_free_ char *marker = fx_join (out, AVM_CVD2IMG_MARKER);
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  expect_inspect_sound (sys);
  fx_write_bin (marker, "interrupted\n", 12);
  const char *const needles[] = { out, AVM_CVD2IMG_MARKER, "interrupted", NULL };
  expect_inspect_not_sound (sys, needles);
  expect_inspect_not_sound (props, needles);
  expect_start_refused (out, needles);
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  cr_assert (!exists (marker), "the next conversion left %s", marker);
  expect_inspect_sound (sys);
}

/* SIGKILL (which no process can block) as the commit starts: the marker
   stays, and says so until the set is converted again.  */
Test (cvd2img, sigkill_during_commit_leaves_the_marker, .timeout = TU_TIMEOUT (120))
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *out = tpath ("out");
  _cleanup_free_ char *sys = fx_join (out, "system.img"), *marker = fx_join (out, AVM_CVD2IMG_MARKER);
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  int inotify = inotify_init1 (IN_CLOEXEC | IN_NONBLOCK);
  cr_assert (inotify >= 0 && inotify_add_watch (inotify, out, IN_CREATE | IN_MOVED_TO) >= 0);
  bool left = false;
  for (int i = 0; i < 20 && !left; i++)
    {
      drain (inotify);
      pid_t pid = spawn_conversion (out, cvd, "K");
      if (wait_for_commit (inotify, pid))
        kill (pid, SIGKILL);
      wait_status (pid);
      left = exists (marker);
    }
  close (inotify);
  cr_assert (left, "SIGKILL never landed inside the commit in 20 tries");
  /* The marker names the host tree's entries too: the next conversion
     may replace them whatever the old manifest says.  (Empty when the kill
     came between its creation and its one write: nothing was renamed.)  */
  _cleanup_free_ char *text = tu_read (marker), *bin = fx_join (out, "bin\n");
  cr_assert (!*text || strstr (text, bin), "the marker does not list the tree's entries:\n%s", text);
  const char *const needles[] = { AVM_CVD2IMG_MARKER, NULL };
  expect_inspect_not_sound (sys, needles);
  /* The next conversion also removes what the killed one left (its
     temporaries, the tree's with what it replaced).  */
  avm_ok ((char *[]) { "cvd2img", "-o", out, cvd, NULL });
  cr_assert (!exists (marker));
  check_nothing_hidden (out, "after the conversion following a SIGKILL");
  expect_inspect_sound (sys);
}

/* Files of two conversions mixed by hand: inspect names the file that
   does not belong (also when asked about another disk of the set), start
   refuses a foreign system disk (its GUID) and bootloader (its size).  */
Test (cvd2img, hand_mixed_set)
{
  _cleanup_free_ char *cvd = fx_path ("cvd"), *other = clone_cvd ("other", NULL);
  _cleanup_free_ char *a = tpath ("a"), *b = tpath ("b");
  _cleanup_free_ char *obl = fx_join (other, BL_X86);
  fx_write_random (obl, 512 * 1024, 900); /* another bootloader, of another size */
  avm_ok ((char *[]) { "cvd2img", "-o", a, cvd, NULL });
  avm_ok ((char *[]) { "cvd2img", "-o", b, other, NULL });
  _cleanup_free_ char *asys = fx_join (a, "system.img"), *bsys = fx_join (b, "system.img");
  _cleanup_free_ char *aprops = fx_join (a, "properties.img"), *abl = fx_join (a, "bootloader"),
                      *bbl = fx_join (b, "bootloader");
  expect_inspect_sound (asys);
  expect_inspect_sound (bsys);

  /* b's system disk in a */
  _cleanup_free_ char *saved = fx_join (tmp, "system.img.a"), *bc = tpath ("b-copy"),
                      *bcsys = fx_join (bc, "system.img");
  cr_assert_eq (rename (asys, saved), 0);
  fx_link_tree (b, bc);
  cr_assert_eq (rename (bcsys, asys), 0);
  const char *const sys_needles[] = { asys, "does not belong with", "manifest.json", "disk GUID", NULL };
  expect_inspect_not_sound (asys, sys_needles);
  expect_inspect_not_sound (aprops, sys_needles); /* the set, whichever disk is asked about */
  expect_start_refused (a, sys_needles);
  cr_assert_eq (rename (saved, asys), 0);
  expect_inspect_sound (asys);

  /* b's bootloader in a: 512 KiB where the manifest says 1 MiB */
  unlink (abl);
  cr_assert_eq (link (bbl, abl), 0);
  const char *const bl_needles[] = { abl, "does not belong with", "bytes, the manifest says", NULL };
  expect_inspect_not_sound (asys, bl_needles);
  expect_start_refused (a, bl_needles);
}

/* ------------------------------------------------------------------ */
/* The host package's tree in the output directory (issue 14).  */
