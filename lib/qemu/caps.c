/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QEMU capabilities: probing, parsing, the per-binary cache and recorded
 * capability files.
 *
 * Recorded files (--caps FILE; tests/data/ holds some) are JSON
 * (AVM_CAPS_FORMAT 1); cache entries hold the same information in a line
 * format of avm's own (see cache_text below), with the identity.  JSON
 * written pretty-printed (two-space indent), keys in this order,
 * every array sorted in strcmp order without duplicates, so a recorded
 * file diffs well in review:
 *
 *   {
 *     "format": 1,
 *     "binary": "/usr/bin/qemu-system-x86_64",
 *     "version": "7.2.22",
 *     "package": "Debian 1:7.2+dfsg-7+deb12u18+b3",    (or null)
 *     "devices": ["ac97", ...],        -device help names (not aliases)
 *     "displays": ["curses", ...],     -display help
 *     "machines": ["microvm", ...],    -machine help, aliases included
 *     "accels": ["kvm", "tcg"],        -accel help
 *     "audiodevs": ["alsa", ...],      -audiodev help
 *   }
 *
 * A recorded file may omit "package" and may carry an "identity" (ignored);
 * unknown keys are ignored.  Arrays that are not sorted are sorted on load.
 *
 * identity (of a cache entry): {"path", "dev", "ino", "size", "mtime_ns",
 * "ctime_ns"} of the binary as stat(2) sees it (symbolic links followed),
 * plus "moddirs": [{"path", "mtime_ns"}, ...], the existing directories QEMU
 * loads modules from (see moddirs_json).  Display and audio back ends and
 * several devices (virtio-gpu-pci, qxl, usb-host) are loadable modules, so
 * installing or removing e.g. qemu-system-gui changes the answer without
 * touching the binary; it changes the directory's mtime.  A cache entry is
 * used only when its format, binary and identity equal exactly what the
 * binary and its module directories look like now.
 *
 * Cache file name: $XDG_CACHE_HOME/avm/qemu-caps/<base>-<hash>.caps, <base>
 * the binary's file name (characters outside [A-Za-z0-9._-] replaced by
 * '_', at most 64 of them) for humans, <hash> the 64-bit FNV-1a hash of the
 * whole absolute path as 16 hex digits, so that distinct binaries do not
 * share a file.  A (practically impossible) hash collision would only cause
 * re-probes: the identity holds the full path.
 */
#include "qemu/caps.h"
#include "util/strbuf.h"
#include "util/cachefile.h"
#include "util/capture.h"
#include "util/cleanup.h"
#include "util/analyzer.h"
#include "util/fs.h"
#include "util/strv.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define PROBE_TIMEOUT_MS 10000

/* ------------------------------------------------------------------ */
/* String vectors: sorted, unique, looked up with bsearch.  */

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static void
sort_unique (char **v)
{
  size_t n = avm_strv_length (v), w = 0;

  if (n < 2)
    return;
  qsort (v, n, sizeof *v, cmp_str);
  for (size_t i = 0; i < n; i++)
    {
      if (w > 0 && streq (v[w - 1], v[i]))
        free (v[i]);
      else
        v[w++] = v[i];
    }
  v[w] = NULL;
}

static bool
sorted_unique (char *const *v)
{
  for (size_t i = 1; v[0] && v[i]; i++)
    if (strcmp (v[i - 1], v[i]) >= 0)
      return false;
  return true;
}

static bool
strv_has (char *const *v, const char *name)
{
  size_t n = avm_strv_length (v);

  if (!n || !name)
    return false;
  return bsearch (&name, v, n, sizeof *v, cmp_str) != NULL;
}

static void
set_list (char ***field, char **v)
{
  avm_strv_free (*field);
  *field = v;
}

/* ------------------------------------------------------------------ */
/* Help text parsing.  */

static bool
is_name_char (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
         || c == '_' || c == '-' || c == '.' || c == ',' || c == '+';
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
  sort_unique (v);
  set_list (field, v);
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
  sort_unique (v);
  set_list (&caps->devices, v);
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
static bool
split_version (const char *s, int *major, int *minor, int *micro)
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
    return avm_error_fail (err, EPROTO, "unexpected -version output (no \"%.*s\")",
                           (int) sizeof marker - 2, marker);
  p += sizeof marker - 1;
  const char *eol = strchrnul (p, '\n');
  size_t vlen = strcspn (p, " \t\r\n(");
  version = strndup (p, vlen);
  if (!version)
    return avm_error_sys (err, ENOMEM, "parsing -version output");
  if (!split_version (version, &major, &minor, &micro))
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

/* ------------------------------------------------------------------ */
/* Queries.  */

bool
avm_qemu_caps_has_device (const struct avm_qemu_caps *caps, const char *name)
{
  return strv_has (caps->devices, name);
}

bool
avm_qemu_caps_has_display (const struct avm_qemu_caps *caps, const char *name)
{
  return strv_has (caps->displays, name);
}

bool
avm_qemu_caps_has_machine (const struct avm_qemu_caps *caps, const char *name)
{
  return strv_has (caps->machines, name);
}

bool
avm_qemu_caps_has_accel (const struct avm_qemu_caps *caps, const char *name)
{
  return strv_has (caps->accels, name);
}

bool
avm_qemu_caps_has_audiodev (const struct avm_qemu_caps *caps, const char *name)
{
  return strv_has (caps->audiodevs, name);
}

bool
avm_qemu_caps_at_least (const struct avm_qemu_caps *caps, int major, int minor)
{
  return caps->major > major || (caps->major == major && caps->minor >= minor);
}

void
avm_qemu_caps_free (struct avm_qemu_caps *caps)
{
  if (!caps)
    return;
  free (caps->binary);
  free (caps->version);
  free (caps->package);
  avm_strv_free (caps->devices);
  avm_strv_free (caps->displays);
  avm_strv_free (caps->machines);
  avm_strv_free (caps->accels);
  avm_strv_free (caps->audiodevs);
  free (caps->source_path);
  free (caps);
}

void
avm_qemu_caps_freep (struct avm_qemu_caps **caps)
{
  avm_qemu_caps_free (*caps);
  *caps = NULL;
}

/* ------------------------------------------------------------------ */
/* JSON.  */

static const struct
{
  const char *key;
  size_t offset;
} lists[] = {
  { "devices", offsetof (struct avm_qemu_caps, devices) },
  { "displays", offsetof (struct avm_qemu_caps, displays) },
  { "machines", offsetof (struct avm_qemu_caps, machines) },
  { "accels", offsetof (struct avm_qemu_caps, accels) },
  { "audiodevs", offsetof (struct avm_qemu_caps, audiodevs) },
};

#define LIST_FIELD(caps, i) ((char ***) ((char *) (caps) + lists[i].offset))

json_t *
avm_qemu_caps_to_json (const struct avm_qemu_caps *caps)
{
  json_t *o = json_object ();
  int r = 0;

  if (!o)
    return NULL;
  r |= json_object_set_new (o, "format", json_integer (AVM_CAPS_FORMAT));
  r |= json_object_set_new (o, "binary", caps->binary ? json_string (caps->binary) : json_null ());
  r |= json_object_set_new (o, "version", caps->version ? json_string (caps->version) : json_null ());
  r |= json_object_set_new (o, "package", caps->package ? json_string (caps->package) : json_null ());
  for (size_t i = 0; i < ARRAY_SIZE (lists); i++)
    {
      char **v = *LIST_FIELD (caps, i);
      json_t *a = json_array ();
      for (size_t j = 0; a && v && v[j]; j++)
        r |= json_array_append_new (a, json_string (v[j]));
      r |= json_object_set_new (o, lists[i].key, a);
    }
  if (r)
    {
      json_decref (o);
      return NULL;
    }
  return o;
}

/* Serialised form, as written to cache and recorded files.  */
static char *
dump_json (json_t *o)
{
  char *s = json_dumps (o, JSON_INDENT (2)), *out = NULL;
  if (s && asprintf (&out, "%s\n", s) < 0)
    out = NULL;
  free (s);
  return out;
}

/* make lint: false positive: v[i] is freed by V's _cleanup_strv_ (avm_strv_freep
   in strv.c, which the analyzer does not see into).  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-malloc-leak")
static int
json_strv (json_t *root, const char *key, char ***out, const char *path, avm_error_t *err)
{
  json_t *a = json_object_get (root, key), *s;
  size_t i;

  if (!json_is_array (a))
    return avm_error_input (err, "%s: %s: expected array of strings", path, key);
  _cleanup_strv_ char **v = calloc (json_array_size (a) + 1, sizeof *v);
  if (!v)
    return avm_error_sys (err, ENOMEM, "reading %s", path);
  json_array_foreach (a, i, s)
    {
      if (!json_is_string (s))
        return avm_error_input (err, "%s: %s: expected array of strings", path, key);
      const char *str = json_string_value (s);
      size_t len = json_string_length (s);
      if (len == 0 || strlen (str) != len)
        return avm_error_input (err, "%s: %s[%zu]: expected a non-empty name", path, key, i);
      v[i] = strndup (str, len);
      if (!v[i])
        return avm_error_sys (err, ENOMEM, "reading %s", path);
    }
  if (!sorted_unique (v))
    sort_unique (v);
  set_list (out, steal_pointer (&v));
  return 0;
}
AVM_ANALYZER_IGNORE_END

/* Capabilities from the JSON object ROOT read from PATH (messages name
   PATH and the key at fault).  */
/* make lint: false positives: the fields are freed by CAPS's _cleanup_caps_, and
   json_strv sets caps->devices (through LIST_FIELD's offset) whenever it
   returns 0; the analyzer follows neither.  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-malloc-leak")
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-null-dereference")
static int
caps_from_json (json_t *root, const char *path, struct avm_qemu_caps **out, avm_error_t *err)
{
  _cleanup_caps_ struct avm_qemu_caps *caps = NULL;
  json_t *j;
  int r;

  if (!json_is_object (root))
    return avm_error_input (err, "%s: expected a JSON object", path);
  j = json_object_get (root, "format");
  if (!json_is_integer (j))
    return avm_error_input (err, "%s: format: expected integer %d", path, AVM_CAPS_FORMAT);
  if (json_integer_value (j) != AVM_CAPS_FORMAT)
    return avm_error_input (err, "%s: format: unsupported format %lld (expected %d)", path,
                            (long long) json_integer_value (j), AVM_CAPS_FORMAT);

  caps = calloc (1, sizeof *caps);
  if (!caps)
    return avm_error_sys (err, ENOMEM, "reading %s", path);

  j = json_object_get (root, "binary");
  if (!json_is_string (j) || json_string_length (j) == 0)
    return avm_error_input (err, "%s: binary: expected string", path);
  caps->binary = strdup (json_string_value (j));

  j = json_object_get (root, "version");
  if (!json_is_string (j))
    return avm_error_input (err, "%s: version: expected string", path);
  caps->version = strdup (json_string_value (j));
  if (!caps->binary || !caps->version)
    return avm_error_sys (err, ENOMEM, "reading %s", path);
  if (!split_version (caps->version, &caps->major, &caps->minor, &caps->micro))
    return avm_error_input (err, "%s: version: expected \"MAJOR.MINOR[.MICRO]\", got \"%s\"", path, caps->version);

  j = json_object_get (root, "package");
  if (json_is_string (j))
    {
      caps->package = strdup (json_string_value (j));
      if (!caps->package)
        return avm_error_sys (err, ENOMEM, "reading %s", path);
    }
  else if (j && !json_is_null (j))
    return avm_error_input (err, "%s: package: expected string or null", path);

  for (size_t i = 0; i < ARRAY_SIZE (lists); i++)
    {
      r = json_strv (root, lists[i].key, LIST_FIELD (caps, i), path, err);
      if (r < 0)
        return r;
    }
  if (!caps->devices[0])
    return avm_error_input (err, "%s: devices: expected at least one device", path);

  caps->source_path = strdup (path);
  if (!caps->source_path)
    return avm_error_sys (err, ENOMEM, "reading %s", path);
  *out = steal_pointer (&caps);
  return 0;
}
AVM_ANALYZER_IGNORE_END
AVM_ANALYZER_IGNORE_END

int
avm_qemu_caps_load_file (const char *path, struct avm_qemu_caps **out, avm_error_t *err)
{
  _cleanup_free_ char *text = NULL;
  size_t len;
  json_error_t jerr;
  int r;

  r = avm_read_file (path, AVM_CAPS_MAX_SIZE, "a QEMU capabilities file", &text, &len, err);
  /* A file named (--caps) that is not there is bad input, not a failure
     of the host.  */
  if (r == -ENOENT || r == -ENOTDIR || r == -ELOOP)
    {
      avm_error_input (err, "QEMU capabilities file %s: %s", path, strerror (-r));
      if (err && *err)
        (*err)->code = -r; /* the errno stays the one that happened */
      return r;
    }
  if (r < 0)
    return r;
  json_t *root = json_loadb (text, len, 0, &jerr);
  if (!root)
    return avm_error_input (err, "%s:%d:%d: malformed JSON: %s", path, jerr.line, jerr.column, jerr.text);
  r = caps_from_json (root, path, out, err);
  json_decref (root);
  if (r < 0)
    return r;
  (*out)->source = AVM_CAPS_RECORDED;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Probing.  */

static int
check_binary (const char *binary, struct stat *st, avm_error_t *err)
{
  if (!binary || binary[0] != '/')
    return avm_error_input (err, "QEMU binary %s: not an absolute path", binary ? binary : "(null)");
  if (stat (binary, st) < 0)
    return avm_error_sys (err, errno, "QEMU binary %s", binary);
  if (!S_ISREG (st->st_mode))
    return avm_error_fail (err, EACCES, "QEMU binary %s: not a regular file", binary);
  if (access (binary, X_OK) < 0)
    return avm_error_sys (err, errno, "QEMU binary %s: not executable", binary);
  return 0;
}

static void
describe_status (int status, char *buf, size_t size)
{
  if (WIFEXITED (status))
    snprintf (buf, size, "exited with status %d", WEXITSTATUS (status));
  else if (WIFSIGNALED (status))
    snprintf (buf, size, "was killed by signal %d (%s)", WTERMSIG (status), strsignal (WTERMSIG (status)));
  else
    snprintf (buf, size, "failed (wait status %#x)", (unsigned) status);
}

static bool
succeeded (int status)
{
  return WIFEXITED (status) && WEXITSTATUS (status) == 0;
}

enum
{
  JOB_VERSION,
  JOB_DEVICE,
  JOB_DISPLAY,
  JOB_MACHINE,
  JOB_ACCEL,
  JOB_AUDIODEV,
  N_JOBS
};

static const struct
{
  const char *opt, *arg;
  int (*parse) (struct avm_qemu_caps *, const char *, avm_error_t *);
  bool required;
} probes[N_JOBS] = {
  [JOB_VERSION] = { "-version", NULL, avm_qemu_caps_parse_version, true },
  [JOB_DEVICE] = { "-device", "help", avm_qemu_caps_parse_devices, true },
  [JOB_DISPLAY] = { "-display", "help", avm_qemu_caps_parse_displays, false },
  [JOB_MACHINE] = { "-machine", "help", avm_qemu_caps_parse_machines, false },
  [JOB_ACCEL] = { "-accel", "help", avm_qemu_caps_parse_accels, false },
  [JOB_AUDIODEV] = { "-audiodev", "help", avm_qemu_caps_parse_audiodevs, false },
};

static int
parse_outputs (struct avm_qemu_caps *caps, struct avm_capture *jobs, avm_error_t *err)
{
  const char *binary = caps->binary;

  for (size_t i = 0; i < N_JOBS; i++)
    {
      const char *text = jobs[i].out;
      if (!succeeded (jobs[i].status))
        {
          char how[96];
          describe_status (jobs[i].status, how, sizeof how);
          if (probes[i].required)
            return avm_error_fail (err, EPROTO, "%s %s%s%s %s", binary, probes[i].opt,
                                   probes[i].arg ? " " : "", probes[i].arg ? probes[i].arg : "", how);
          text = ""; /* odd build: treat as an empty list */
        }
      int r = probes[i].parse (caps, text, err);
      if (r < 0)
        {
          avm_error_prefix (err, "%s", binary);
          return r;
        }
    }
  return 0;
}

static int
probe_binary (const char *binary, struct avm_qemu_caps **out, avm_error_t *err)
{
  _cleanup_caps_ struct avm_qemu_caps *caps = calloc (1, sizeof *caps);
  struct avm_capture jobs[N_JOBS] = { 0 };
  char *argvs[N_JOBS][4];
  int r;

  if (!caps || !(caps->binary = strdup (binary)))
    return avm_error_sys (err, ENOMEM, "probing %s", binary);
  for (size_t i = 0; i < N_JOBS; i++)
    {
      argvs[i][0] = (char *) binary;
      argvs[i][1] = (char *) probes[i].opt;
      argvs[i][2] = (char *) probes[i].arg;
      argvs[i][3] = NULL;
      jobs[i].argv = argvs[i];
    }
  r = avm_capture_run (jobs, N_JOBS, PROBE_TIMEOUT_MS, err);
  if (r < 0)
    return r;
  r = parse_outputs (caps, jobs, err);
  avm_capture_clear (jobs, N_JOBS);
  if (r < 0)
    return r;
  caps->source = AVM_CAPS_PROBED;
  *out = steal_pointer (&caps);
  return 0;
}

int
avm_qemu_caps_probe (const char *binary, struct avm_qemu_caps **out, avm_error_t *err)
{
  struct stat st;
  int r = check_binary (binary, &st, err);
  if (r < 0)
    return r;
  return probe_binary (binary, out, err);
}

/* ------------------------------------------------------------------ */
/* Cache.  */

char *
avm_qemu_caps_cache_path (const char *binary)
{
  return avm_cache_file ("qemu-caps", binary, "caps");
}

static long long
ns (struct timespec ts)
{
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#if defined(__x86_64__)
# define MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
# define MULTIARCH "aarch64-linux-gnu"
#elif defined(__i386__)
# define MULTIARCH "i386-linux-gnu"
#elif defined(__arm__)
# define MULTIARCH "arm-linux-gnueabihf"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
# define MULTIARCH "powerpc64le-linux-gnu"
#elif defined(__riscv) && __riscv_xlen == 64
# define MULTIARCH "riscv64-linux-gnu"
#elif defined(__s390x__)
# define MULTIARCH "s390x-linux-gnu"
#endif

/* Append {"path", "mtime_ns"} of DIR to MODDIRS when DIR is a directory.  */
static int
add_moddir (json_t *moddirs, const char *dir)
{
  struct stat st;
  json_t *o;

  if (stat (dir, &st) < 0 || !S_ISDIR (st.st_mode))
    return 0;
  o = json_pack ("{s:s, s:I}", "path", dir, "mtime_ns", (json_int_t) ns (st.st_mtim));
  return json_array_append_new (moddirs, o);
}

/* The directories QEMU loads BINARY's modules from, as QEMU finds them:
   $QEMU_MODULE_DIR, then the configured module directory relocated next to
   the executable (symbolic links resolved): for PREFIX/bin/qemu-system-*,
   PREFIX/lib/<multiarch>/qemu (Debian, Ubuntu), PREFIX/lib64/qemu or
   PREFIX/lib/qemu (upstream defaults), the first that exists.  */
static json_t *
moddirs_json (const char *binary)
{
  static const char *const subs[] = {
#ifdef MULTIARCH
    "/lib/" MULTIARCH "/qemu",
#endif
    "/lib64/qemu",
    "/lib/qemu",
  };
  const char *env = getenv ("QEMU_MODULE_DIR");
  _cleanup_free_ char *real = realpath (binary, NULL);
  json_t *moddirs = json_array ();
  int r = 0;

  if (!moddirs)
    return NULL;
  if (env && *env)
    r |= add_moddir (moddirs, env);
  /* PREFIX, the parent of the executable's directory ("" for "/").  */
  char *slash = real ? strrchr (real, '/') : NULL;
  if (slash)
    {
      *slash = '\0';
      slash = strrchr (real, '/');
      if (slash)
        *slash = '\0';
      for (size_t i = 0; i < ARRAY_SIZE (subs); i++)
        {
          _cleanup_free_ char *cand = NULL;
          size_t n = json_array_size (moddirs);
          if (asprintf (&cand, "%s%s", real, subs[i]) < 0)
            {
              r = -1;
              break;
            }
          r |= add_moddir (moddirs, cand);
          if (json_array_size (moddirs) > n)
            break;
        }
    }
  if (r)
    {
      json_decref (moddirs);
      return NULL;
    }
  return moddirs;
}

static json_t *
identity_json (const char *binary, const struct stat *st)
{
  json_t *moddirs = moddirs_json (binary);

  if (!moddirs)
    return NULL;
  return json_pack ("{s:s, s:I, s:I, s:I, s:I, s:I, s:o}",
                    "path", binary,
                    "dev", (json_int_t) st->st_dev,
                    "ino", (json_int_t) st->st_ino,
                    "size", (json_int_t) st->st_size,
                    "mtime_ns", (json_int_t) ns (st->st_mtim),
                    "ctime_ns", (json_int_t) ns (st->st_ctim),
                    "moddirs", moddirs);
}

/* Cache entries: a line format of avm's own, not JSON.  A start reads its
   entry every time, and jansson took about half of a dry run's
   instructions for the 11 KiB of a QEMU's capabilities; this is split in
   one pass.  Hand-written because it is private to avm (no other program
   reads it) and trivial:

     avm-qemu-caps-cache 1
     identity {"ctime_ns":...}      the identity, compact JSON, sorted keys
     binary /usr/bin/qemu-system-x86_64
     version 7.2.22
     package Debian 1:7.2+dfsg-7+deb12u18+b3   ("package" alone: none)
     devices 612                    then that many lines, one name each
     ...                            displays, machines, accels, audiodevs
     end

   Names are sorted and unique.  Anything else (a line too many or too few,
   a count that does not match, unsorted names, another identity) makes the
   entry invalid: the binary is probed again.  */
#define CACHE_MAGIC "avm-qemu-caps-cache 1"

static char *
identity_text (json_t *identity)
{
  return identity ? json_dumps (identity, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

static char *
cache_text (const struct avm_qemu_caps *caps, const char *identity)
{
  _cleanup_strbuf_ struct avm_strbuf b = { 0 };
  const char *fields[] = { caps->binary, caps->version, caps->package, identity };
  for (size_t i = 0; i < ARRAY_SIZE (fields); i++)
    if (fields[i] && strchr (fields[i], '\n'))
      return NULL; /* not representable: not cached */
  avm_strbuf_adds (&b, CACHE_MAGIC "\nidentity ");
  avm_strbuf_adds (&b, identity);
  avm_strbuf_adds (&b, "\nbinary ");
  avm_strbuf_adds (&b, caps->binary);
  avm_strbuf_adds (&b, "\nversion ");
  avm_strbuf_adds (&b, caps->version);
  avm_strbuf_adds (&b, caps->package ? "\npackage " : "\npackage");
  if (caps->package)
    avm_strbuf_adds (&b, caps->package);
  avm_strbuf_adds (&b, "\n");
  for (size_t i = 0; i < ARRAY_SIZE (lists); i++)
    {
      char **v = *LIST_FIELD (caps, i);
      char count[32];
      snprintf (count, sizeof count, " %zu\n", avm_strv_length (v));
      avm_strbuf_adds (&b, lists[i].key);
      avm_strbuf_adds (&b, count);
      for (size_t j = 0; v && v[j]; j++)
        {
          avm_strbuf_adds (&b, v[j]);
          avm_strbuf_adds (&b, "\n");
        }
    }
  avm_strbuf_adds (&b, "end\n");
  return avm_strbuf_steal (&b);
}

/* The next line of *POS (terminated in place), or NULL at the end.  */
static char *
cache_line (char **pos)
{
  char *line = *pos, *nl = line ? strchr (line, '\n') : NULL;
  if (!nl)
    return NULL;
  *nl = '\0';
  *pos = nl + 1;
  return line;
}

/* The value of "KEY value" (or "" for a line that is just KEY), or NULL.  */
static const char *
cache_value (const char *line, const char *key)
{
  size_t n = strlen (key);
  if (!line || strncmp (line, key, n) != 0)
    return NULL;
  return line[n] == ' ' ? line + n + 1 : line[n] == '\0' ? line + n : NULL;
}

/* make lint: false positive, as for caps_from_json: what strdup returns is
   stored in CAPS at once and freed by its _cleanup_caps_ (the analyzer
   reports each early return as a leak of it).  */
AVM_ANALYZER_IGNORE_BEGIN ("-Wanalyzer-malloc-leak")
static struct avm_qemu_caps *
cache_parse (char *text, const char *identity, const char *binary, const char *path)
{
  _cleanup_caps_ struct avm_qemu_caps *caps = calloc (1, sizeof *caps);
  char *pos = text;
  const char *v;

  if (!caps || !streq (cache_line (&pos) ?: "", CACHE_MAGIC))
    return NULL;
  if (!(v = cache_value (cache_line (&pos), "identity")) || !streq (v, identity))
    return NULL;
  if (!(v = cache_value (cache_line (&pos), "binary")) || !streq (v, binary) || !(caps->binary = strdup (v)))
    return NULL;
  if (!(v = cache_value (cache_line (&pos), "version")) || !(caps->version = strdup (v))
      || !split_version (caps->version, &caps->major, &caps->minor, &caps->micro))
    return NULL;
  if (!(v = cache_value (cache_line (&pos), "package")) || (*v && !(caps->package = strdup (v))))
    return NULL;
  for (size_t i = 0; i < ARRAY_SIZE (lists); i++)
    {
      char *end;
      if (!(v = cache_value (cache_line (&pos), lists[i].key)) || !*v)
        return NULL;
      errno = 0;
      unsigned long long n = strtoull (v, &end, 10);
      if (*end || errno || n > 100000)
        return NULL;
      char **list = calloc (n + 1, sizeof *list);
      set_list (LIST_FIELD (caps, i), list);
      if (!list)
        return NULL;
      for (size_t j = 0; j < n; j++)
        {
          const char *name = cache_line (&pos);
          if (!name || !*name || (j > 0 && strcmp (list[j - 1], name) >= 0) || !(list[j] = strdup (name)))
            return NULL;
        }
    }
  if (!streq (cache_line (&pos) ?: "", "end") || *pos || !caps->devices[0])
    return NULL;
  if (!(caps->source_path = strdup (path)))
    return NULL;
  caps->source = AVM_CAPS_CACHED;
  return steal_pointer (&caps);
}
AVM_ANALYZER_IGNORE_END

/* The cache entry at PATH when it is valid for IDENTITY; any problem means
   "no".  */
static struct avm_qemu_caps *
read_cache (const char *path, const char *binary, json_t *identity)
{
  _cleanup_free_ char *text = NULL, *id = identity_text (identity);
  _cleanup_error_ avm_error_t ignored = NULL;
  size_t len;

  if (!id || avm_read_file (path, AVM_CAPS_MAX_SIZE, "a capability cache entry", &text, &len, &ignored) < 0 || strlen (text) != len)
    return NULL;
  return cache_parse (text, id, binary, path);
}

static int
write_cache (const char *path, struct avm_qemu_caps *caps, json_t *identity)
{
  _cleanup_error_ avm_error_t ignored = NULL;
  _cleanup_free_ char *dir = strdup (path), *id = identity_text (identity);
  _cleanup_free_ char *text = id ? cache_text (caps, id) : NULL;
  int r;

  if (!dir || !text)
    return -ENOMEM;
  *strrchr (dir, '/') = '\0';
  r = avm_mkdir_p (dir, 0700, &ignored);
  if (r == 0)
    r = avm_write_file_atomic (path, text, strlen (text), 0600, &ignored);
  /* The entry's JSON predecessor (avm 0.1 before the line format) goes.  */
  size_t n = strlen (path);
  _cleanup_free_ char *legacy = n > 5 ? strdup (path) : NULL;
  if (r == 0 && legacy && streq (legacy + n - 5, ".caps"))
    {
      memcpy (legacy + n - 5, ".json", 5);
      unlink (legacy);
    }
  return r;
}

int
avm_qemu_caps_get (const char *binary, struct avm_qemu_caps **out, avm_error_t *err)
{
  _cleanup_caps_ struct avm_qemu_caps *caps = NULL;
  _cleanup_free_ char *cache = NULL;
  struct stat st;
  json_t *identity, *after;
  int r;

  r = check_binary (binary, &st, err);
  if (r < 0)
    return r;
  identity = identity_json (binary, &st);
  cache = avm_qemu_caps_cache_path (binary);
  if (identity && cache && (caps = read_cache (cache, binary, identity)))
    {
      json_decref (identity);
      *out = steal_pointer (&caps);
      return 0;
    }

  r = probe_binary (binary, &caps, err);
  if (r < 0)
    {
      json_decref (identity);
      return r;
    }
  /* Cache only what is known to belong to the binary as it still is.  */
  after = stat (binary, &st) == 0 ? identity_json (binary, &st) : NULL;
  if (identity && cache && json_equal (identity, after) && write_cache (cache, caps, identity) == 0)
    caps->source_path = steal_pointer (&cache);
  json_decref (identity);
  json_decref (after);
  *out = steal_pointer (&caps);
  return 0;
}

/* Serialise CAPS in the cache/recorded format (pretty-printed, trailing
   newline); exposed for recording capability files.  */
char *
avm_qemu_caps_dump (const struct avm_qemu_caps *caps)
{
  json_t *o = avm_qemu_caps_to_json (caps);
  char *s = o ? dump_json (o) : NULL;
  json_decref (o);
  return s;
}
