/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fuzz targets' inputs, replayed without clang: every seed of
 * tests/fuzz/corpus/NAME/ and every input that once crashed a target,
 * tests/fuzz/regressions/NAME/, goes through the harness function the fuzz
 * target itself runs (tests/fuzz/fuzz_NAME.c, linked into this binary).
 * A harness aborts on a broken invariant; under `make check-asan` the
 * sanitizers check each input as in the fuzzer.
 */
#include "../fuzz/fuzz.h"
#include "testutil.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <string.h>

typedef int (*fuzz_fn) (const uint8_t *data, size_t size);

/* Feed every file of tests/fuzz/SUB/NAME to FN; returns how many.  */
static size_t
replay_dir (const char *sub, const char *name, fuzz_fn fn)
{
  _cleanup_free_ char *dir = NULL;
  cr_assert (asprintf (&dir, "%s/tests/fuzz/%s/%s", tu_srcdir (), sub, name) > 0);
  DIR *d = opendir (dir);
  if (!d)
    {
      cr_assert_eq (errno, ENOENT, "%s: %s", dir, strerror (errno));
      return 0;
    }
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir (d)))
    {
      if (de->d_name[0] == '.')
        continue;
      _cleanup_free_ char *path = avm_path_join (dir, de->d_name);
      _cleanup_free_ char *data = NULL;
      size_t len = 0;
      avm_error_t err = NULL;
      cr_assert_eq (avm_read_file (path, 64u << 20, "a fuzz input", &data, &len, &err), 0, "%s", err ? err->msg : path);
      cr_log_info ("%s/%s: %s (%zu bytes)", sub, name, de->d_name, len);
      cr_assert_eq (fn ((const uint8_t *) data, len), 0, "%s", path);
      n++;
    }
  closedir (d);
  return n;
}

static void
replay (const char *name, fuzz_fn fn)
{
  size_t seeds = replay_dir ("corpus", name, fn);
  replay_dir ("regressions", name, fn);
  cr_assert_gt (seeds, 0, "no seeds in tests/fuzz/corpus/%s", name);
}

Test (fuzzregress, profile) { replay ("profile", avm_fuzz_profile); }
Test (fuzzregress, set) { replay ("set", avm_fuzz_set); }
Test (fuzzregress, sparse) { replay ("sparse", avm_fuzz_sparse); }
Test (fuzzregress, imgset) { replay ("imgset", avm_fuzz_imgset); }
Test (fuzzregress, qmp) { replay ("qmp", avm_fuzz_qmp); }
Test (fuzzregress, control) { replay ("control", avm_fuzz_control); }
Test (fuzzregress, framing) { replay ("framing", avm_fuzz_framing); }
Test (fuzzregress, gpt) { replay ("gpt", avm_fuzz_gpt); }
Test (fuzzregress, avb) { replay ("avb", avm_fuzz_avb); }
Test (fuzzregress, inspect) { replay ("inspect", avm_fuzz_inspect); }

/* The plumbing itself: a harness must be able to fail.  */
Test (fuzzregress, invariant_aborts, .signal = SIGABRT)
{
  avm_error_t err = NULL;
  avm_fuzz_check_err (-EINVAL, &err);
}

/* fuzz_set found a use-after-free: a key that is not UTF-8 made
   json_object_set_new fail and release the object just created, which
   --set then descended into.  Now a bad-input error.  */
#include "profile/profile.h"
Test (fuzzregress, set_non_utf8_key)
{
  json_t *root = json_pack ("{s:{}}", "resources");
  avm_error_t err = NULL;
  cr_assert_eq (avm_profile_apply_set (root,
                                       "resources[\"a\xe4"
                                       "b\"].port=6520",
                                       &err),
                -EINVAL);
  tu_assert_err_has (err, "not valid UTF-8");
  cr_assert_eq (err->exit_code, AVM_EXIT_USAGE);
  avm_error_free (err);
  json_decref (root);
}
