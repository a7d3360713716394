/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Narrow suppressions for GCC's static analyzer (-fanalyzer, run by
 * `make lint`).  Each use wraps one function and says, next to it, why the
 * finding is a false positive.  GCC 12's analyzer loses track of memory
 * once its pointer is stored in a structure reached through another heap
 * pointer, and does not keep list or ownership invariants; those are the
 * cases silenced here.  Leaks are covered for real by the ASan/LeakSanitizer
 * build (make check-asan).  Other compilers see nothing.
 */
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#define AVM_PRAGMA_(x) _Pragma (#x)
#define AVM_ANALYZER_IGNORE_BEGIN(w) _Pragma ("GCC diagnostic push") AVM_PRAGMA_ (GCC diagnostic ignored w)
#define AVM_ANALYZER_IGNORE_END _Pragma ("GCC diagnostic pop")
#else
#define AVM_ANALYZER_IGNORE_BEGIN(w)
#define AVM_ANALYZER_IGNORE_END
#endif
