/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QEMU capabilities: parsing the help texts of a QEMU binary (-version,
 * -device help, -display help, -machine help, -accel help, -audiodev help)
 * into struct avm_qemu_caps.  Pure text in, lists out: no process is run
 * here (caps_probe.c runs the binary).
 */
#include "qemu/caps.h"
#include "qemu/caps_internal.h"
#include "util/cleanup.h"
#include "util/strv.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Help text parsing.  */

static bool
is_name_char (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'
         || c == ',' || c == '+';
}

static bool
is_name_start (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Length of LINE before a QEMU diagnostic glued into it: "qemu: ..." or
   "qemu-system-x86_64: ..." (module loader messages on stderr can end up in
   the middle of a recorded stdout line).  */
static size_t
strip_diagnostic (const char *line, size_t len)
{
  const char *p = line, *end = line + len;

  while ((p = memmem (p, end - p, "qemu", 4)))
    {
      const char *q = p + 4;
      while (q < end && (is_name_start (*q) || *q == '-'))
        q++;
      if (end - q >= 2 && q[0] == ':' && q[1] == ' ')
        return p - line;
      p += 4;
    }
  return len;
}

/* Next line of the text at *POS (NUL-terminated), without its newline,
   diagnostics or trailing blanks.  */
static bool
next_line (const char **pos, const char **line, size_t *len)
{
  const char *p = *pos, *nl;
  size_t l;

  if (!*p)
    return false;
  nl = strchrnul (p, '\n');
  *pos = *nl ? nl + 1 : nl;
  l = strip_diagnostic (p, nl - p);
  while (l > 0 && (p[l - 1] == ' ' || p[l - 1] == '\t' || p[l - 1] == '\r'))
    l--;
  *line = p;
  *len = l;
  return true;
}

static size_t
name_len (const char *s, size_t len)
{
  size_t i = 0;

  if (len == 0 || !is_name_start (s[0]))
    return 0;
  while (i < len && is_name_char (s[i]))
    i++;
  return i;
}

enum list_style
{
  ONE_NAME_PER_LINE, /* "name" alone on its line; anything else is prose */
  NAME_THEN_TEXT,    /* "name   description" */
};

static int
parse_list (char ***field, const char *text, enum list_style style, const char *what, avm_error_t *err)
{
  struct avm_argv a = { 0 };
  const char *pos = text ? text : "", *line;
  size_t len;

  while (next_line (&pos, &line, &len))
    {
      size_t n = name_len (line, len);
      if (n == 0 || line[len - 1] == ':')
        continue; /* blank, indented, header */
      if (n < len && (style == ONE_NAME_PER_LINE || (line[n] != ' ' && line[n] != '\t')))
        continue;
      if (avm_argv_push_take (&a, strndup (line, n)) < 0)
        {
          avm_argv_clear (&a);
          return avm_error_sys (err, ENOMEM, "parsing %s output", what);
        }
    }
  char **v = avm_argv_steal (&a);
  if (!v)
    return avm_error_sys (err, ENOMEM, "parsing %s output", what);
  avm_caps_sort_unique (v);
  avm_caps_set_list (field, v);
  return 0;
}

int
avm_qemu_caps_parse_devices (struct avm_qemu_caps *caps, const char *text, avm_error_t *err)
{
  static const char prefix[] = "name \"";
  struct avm_argv a = { 0 };
  const char *pos = text ? text : "", *line;
  size_t len;

  while (next_line (&pos, &line, &len))
    {
      if (len <= sizeof prefix - 1 || memcmp (line, prefix, sizeof prefix - 1) != 0)
        continue;
      const char *name = line + sizeof prefix - 1;
      const char *q = memchr (name, '"', len - (name - line));
      if (!q || q == name)
        continue;
      bool ok = true;
      for (const char *c = name; c < q; c++)
        ok &= *c > ' ' && *c < 0x7f;
      if (!ok)
        continue;
      if (avm_argv_push_take (&a, strndup (name, q - name)) < 0)
        {
          avm_argv_clear (&a);
          return avm_error_sys (err, ENOMEM, "parsing -device help output");
        }
    }
  if (a.n == 0)
    {
      avm_argv_clear (&a);
      return avm_error_fail (err, EPROTO, "no device names in -device help output");
    }
  char **v = avm_argv_steal (&a);
  avm_caps_sort_unique (v);
  avm_caps_set_list (&caps->devices, v);
  return 0;
}

int
avm_qemu_caps_parse_displays (struct avm_qemu_caps *caps, const char *text, avm_error_t *err)
{
  return parse_list (&caps->displays, text, ONE_NAME_PER_LINE, "-display help", err);
}

int
avm_qemu_caps_parse_machines (struct avm_qemu_caps *caps, const char *text, avm_error_t *err)
{
  return parse_list (&caps->machines, text, NAME_THEN_TEXT, "-machine help", err);
}

int
avm_qemu_caps_parse_accels (struct avm_qemu_caps *caps, const char *text, avm_error_t *err)
{
  return parse_list (&caps->accels, text, ONE_NAME_PER_LINE, "-accel help", err);
}

int
avm_qemu_caps_parse_audiodevs (struct avm_qemu_caps *caps, const char *text, avm_error_t *err)
{
  return parse_list (&caps->audiodevs, text, ONE_NAME_PER_LINE, "-audiodev help", err);
}

static bool
parse_number (const char **p, int *out)
{
  long v = 0;
  const char *s = *p;

  if (*s < '0' || *s > '9')
    return false;
  for (; *s >= '0' && *s <= '9'; s++)
    {
      v = v * 10 + (*s - '0');
      if (v > 1000000)
        return false;
    }
  *out = (int) v;
  *p = s;
  return true;
}

/* "MAJOR.MINOR[.MICRO]" with an optional non-numeric tail ("-rc1").  */
bool
avm_caps_split_version (const char *s, int *major, int *minor, int *micro)
{
  *micro = 0;
  if (!parse_number (&s, major) || *s++ != '.' || !parse_number (&s, minor))
    return false;
  if (*s == '.')
    {
      s++;
      if (!parse_number (&s, micro))
        return false;
    }
  return *s != '.';
}

int
avm_qemu_caps_parse_version (struct avm_qemu_caps *caps, const char *text, avm_error_t *err)
{
  static const char marker[] = "QEMU emulator version ";
  const char *p = text ? strstr (text, marker) : NULL;
  _cleanup_free_ char *version = NULL, *package = NULL;
  int major, minor, micro;

  if (!p)
    return avm_error_fail (err, EPROTO, "unexpected -version output (no \"%.*s\")", (int) sizeof marker - 2, marker);
  p += sizeof marker - 1;
  const char *eol = strchrnul (p, '\n');
  size_t vlen = strcspn (p, " \t\r\n(");
  version = strndup (p, vlen);
  if (!version)
    return avm_error_sys (err, ENOMEM, "parsing -version output");
  if (!avm_caps_split_version (version, &major, &minor, &micro))
    return avm_error_fail (err, EPROTO, "unexpected QEMU version \"%s\" in -version output", version);

  p += vlen;
  while (p < eol && (*p == ' ' || *p == '\t'))
    p++;
  if (p < eol && *p == '(')
    {
      const char *close = memrchr (p, ')', eol - p);
      if (close && close > p + 1)
        {
          package = strndup (p + 1, close - p - 1);
          if (!package)
            return avm_error_sys (err, ENOMEM, "parsing -version output");
          for (char *c = package; *c; c++)
            if (*c < ' ' || *c >= 0x7f)
              *c = '?';
        }
    }

  free (caps->version);
  free (caps->package);
  caps->version = steal_pointer (&version);
  caps->package = steal_pointer (&package);
  caps->major = major;
  caps->minor = minor;
  caps->micro = micro;
  return 0;
}
