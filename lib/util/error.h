/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error model: every fallible function returns 0 or -errno and, on failure,
 * fills an avm_error_t with a message that names the file, key or device at
 * fault.  The error also carries the process exit code the CLI should use:
 * AVM_EXIT_USAGE (2) for bad input (usage, profile, --set), AVM_EXIT_FAILURE
 * (1) for runtime failures.  A message may hold several lines, one problem
 * per line (profile validation reports every problem it finds).
 *
 * Out of memory is an error like any other, never an abort: a function
 * that takes an avm_error_t fills it on an allocation failure, normally
 * with avm_error_sys (err, ENOMEM, "WHAT"), and returns -ENOMEM; it never
 * returns -ENOMEM (or a NULL meaning "out of memory") with ERR unset.
 * Helpers without an avm_error_t (strv, linebuf, strbuf, json builders)
 * return -ENOMEM or NULL and say so in their comment; their callers fill
 * the error.  Nothing in lib/ or cmd/ calls abort() or exits on a failed
 * allocation (the fuzz harnesses may: tests/fuzz/fuzz.h).
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

enum
{
  AVM_EXIT_OK = 0,
  AVM_EXIT_FAILURE = 1,
  AVM_EXIT_USAGE = 2,
};

struct avm_error
{
  int code;      /* positive errno */
  int exit_code; /* AVM_EXIT_* */
  char *msg;     /* one or more lines, no trailing newline */
};
typedef struct avm_error *avm_error_t;

/* Runtime failure caused by errno value ERRNUM; ": strerror" is appended
   when ERRNUM is not 0.  Returns -ERRNUM (or -EIO when ERRNUM is 0).  */
int avm_error_sys (avm_error_t *err, int errnum, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

/* Bad input (exit code 2).  Returns -EINVAL.  */
int avm_error_input (avm_error_t *err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* Runtime failure with a given errno but no strerror suffix.  */
int avm_error_fail (avm_error_t *err, int errnum, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

/* Add "PREFIX: " in front of the message (each line).  */
void avm_error_prefix (avm_error_t *err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* R (a negative errno, with ERR filled) unchanged; when R says a path
   does not lead to a file (-ENOENT, -ENOTDIR, -ELOOP), ERR's exit code
   becomes AVM_EXIT_USAGE: a file the user named that is not there is bad
   input, not a failure of the host.  Its errno and message stay.  */
int avm_error_input_if_missing (avm_error_t *err, int r);

/* Append one more line to an existing (or new) error.  */
int avm_error_append (avm_error_t *err, int exit_code, int errnum, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

/* The four functions above return a negative errno, always.  The static
   analyzer (make lint) does not see into error.c and would otherwise follow
   paths on which an error return is taken for success; these wrappers say
   it in the caller and compile to nothing.  error.c defines the functions
   with their names in parentheses, which these macros do not expand.  */
static inline int
avm_error_neg_ (int r)
{
  if (r >= 0)
    __builtin_unreachable ();
  return r;
}
#define avm_error_sys(...) avm_error_neg_ (avm_error_sys (__VA_ARGS__))
#define avm_error_input(...) avm_error_neg_ (avm_error_input (__VA_ARGS__))
#define avm_error_fail(...) avm_error_neg_ (avm_error_fail (__VA_ARGS__))
#define avm_error_append(...) avm_error_neg_ (avm_error_append (__VA_ARGS__))

void avm_error_free (avm_error_t err);
void avm_error_freep (avm_error_t *err);
#define _cleanup_error_ __attribute__ ((cleanup (avm_error_freep)))

/* The name messages start with: "avm", or a personality's, the name the
   user typed ("cvd2img: ..."), set once at the start of main.  NAME must
   stay valid.  */
void avm_error_set_program (const char *name);
const char *avm_error_program (void);

/* Print "avm: MSG" (each line prefixed; avm_error_program) to stderr, free
   it, return its exit code. */
int avm_error_report (avm_error_t *err);
