/* SPDX-License-Identifier: Apache-2.0 */
#include "util/error.h"
#include "util/cleanup.h"
#include "util/escape.h"
#include "util/strfmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
set_error (avm_error_t *err, int exit_code, int errnum, bool with_strerror, const char *fmt, va_list ap)
{
  char *msg = avm_vstrdupf (fmt, ap);
  if (msg && with_strerror && errnum)
    {
      char *full = NULL;
      if (asprintf (&full, "%s: %s", msg, strerror (errnum)) >= 0)
        {
          free (msg);
          msg = full;
        }
    }
  if (errnum <= 0)
    errnum = EIO;
  if (err)
    {
      avm_error_free (*err);
      *err = calloc (1, sizeof **err);
      if (*err)
        {
          (*err)->code = errnum;
          (*err)->exit_code = exit_code;
          (*err)->msg = msg ? msg : strdup ("out of memory");
          msg = NULL;
        }
    }
  free (msg);
  return -errnum;
}

int (avm_error_sys) (avm_error_t *err, int errnum, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  int r = set_error (err, AVM_EXIT_FAILURE, errnum, true, fmt, ap);
  va_end (ap);
  return r;
}

int (avm_error_fail) (avm_error_t *err, int errnum, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  int r = set_error (err, AVM_EXIT_FAILURE, errnum, false, fmt, ap);
  va_end (ap);
  return r;
}

int (avm_error_input) (avm_error_t *err, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  int r = set_error (err, AVM_EXIT_USAGE, EINVAL, false, fmt, ap);
  va_end (ap);
  return r;
}

int (avm_error_append) (avm_error_t *err, int exit_code, int errnum, const char *fmt, ...)
{
  va_list ap;
  char *line = NULL;

  if (errnum <= 0)
    errnum = EIO;
  va_start (ap, fmt);
  if (!err || !*err)
    {
      int r = set_error (err, exit_code, errnum, false, fmt, ap);
      va_end (ap);
      return r;
    }
  line = avm_vstrdupf (fmt, ap);
  va_end (ap);
  if (line)
    {
      char *joined = NULL;
      if (asprintf (&joined, "%s\n%s", (*err)->msg, line) >= 0)
        {
          free ((*err)->msg);
          (*err)->msg = joined;
        }
      free (line);
    }
  return -(*err)->code;
}

int
avm_error_input_if_missing (avm_error_t *err, int r)
{
  if ((r == -ENOENT || r == -ENOTDIR || r == -ELOOP) && err && *err)
    (*err)->exit_code = AVM_EXIT_USAGE;
  return r;
}

void
avm_error_prefix (avm_error_t *err, const char *fmt, ...)
{
  va_list ap;
  _cleanup_free_ char *prefix = NULL;
  if (!err || !*err)
    return;
  va_start (ap, fmt);
  prefix = avm_vstrdupf (fmt, ap);
  va_end (ap);
  if (!prefix)
    return;
  /* Prefix every line.  */
  size_t plen = strlen (prefix), n = 1;
  for (const char *p = (*err)->msg; *p; p++)
    n += *p == '\n';
  char *out = malloc (strlen ((*err)->msg) + n * (plen + 2) + 1), *o = out;
  if (!out)
    return;
  const char *line = (*err)->msg;
  for (;;)
    {
      const char *nl = strchr (line, '\n');
      size_t len = nl ? (size_t) (nl - line) : strlen (line);
      o = mempcpy (o, prefix, plen);
      o = mempcpy (o, ": ", 2);
      o = mempcpy (o, line, len);
      if (!nl)
        break;
      *o++ = '\n';
      line = nl + 1;
    }
  *o = '\0';
  free ((*err)->msg);
  (*err)->msg = out;
}

void
avm_error_free (avm_error_t err)
{
  if (!err)
    return;
  free (err->msg);
  free (err);
}

void
avm_error_freep (avm_error_t *err)
{
  avm_error_free (*err);
  *err = NULL;
}

static const char *program = "avm";

void
avm_error_set_program (const char *name)
{
  program = name;
}

const char *
avm_error_program (void)
{
  return program;
}

int
avm_error_report (avm_error_t *err)
{
  int code = AVM_EXIT_FAILURE;
  if (!err || !*err)
    {
      /* A failure that named nothing (an allocation failure deep down):
         never exit 1 in silence.  */
      fprintf (stderr, "%s: failed without a message (out of memory?)\n", program);
      return code;
    }
  code = (*err)->exit_code;
  const char *line = (*err)->msg;
  for (;;)
    {
      const char *nl = strchr (line, '\n');
      /* Names from outside (paths, --set values) may hold escape
         sequences: shown, never acted on by the terminal.  */
      fprintf (stderr, "%s: ", program);
      avm_fput_escaped (stderr, line, nl ? (size_t) (nl - line) : strlen (line));
      fputc ('\n', stderr);
      if (!nl)
        break;
      line = nl + 1;
    }
  avm_error_freep (err);
  return code;
}
