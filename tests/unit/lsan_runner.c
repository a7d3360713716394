/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Leak checking in the sanitizer build (make check-asan) covers every test
 * worker, where avm's code runs, and not Criterion's runner process, which
 * runs none of it.
 *
 * Why: the runner of libcriterion 2.4 (Debian 12) loses a 48-byte timeout
 * request from time to time.  BoxFort, built into it, queues two requests
 * per worker when a test has a timeout (the test's and the global one);
 * cancelling them walks on into the list of cancelled requests, and when a
 * new worker has the pid of one still there, that entry is unlinked and
 * never freed (BoxFort src/timeout-posix.c, bxfi_cancel_timeout).  Which
 * run hits it depends on pid reuse, so LeakSanitizer failed whole suites
 * at random with a stack of two frames, calloc and libcriterion, and no
 * suppression pattern can tell that stack from a real leak in a test (whose
 * stack also passes through libcriterion).
 *
 * A worker is the test binary run again by BoxFort with BXFI_MAP in its
 * environment; the runner is the process started without it.  In the
 * runner only, allocations of its main thread (where BoxFort queues the
 * requests) are left out of the leak report.
 */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#include <stdlib.h>

__attribute__ ((constructor)) static void
lsan_skip_criterion_runner (void)
{
  if (!getenv ("BXFI_MAP"))
    __lsan_disable ();
}
#endif
