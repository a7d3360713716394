/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The manual pages against the program: every page passes mandoc's lint,
 * and what the pages document is compared with what the binary prints
 * (help texts, the schema, the JSON plan, the shipped profiles and their
 * options).  The pages are read from $AVM_SRCDIR/man, the binary is
 * $AVM_BIN; both are set by `make check`.  Programs are run with
 * posix_spawn and argument vectors, never through a shell.
 *
 * Page text is compared after a light rendering: macro lines become their
 * text (alternating-font macros join their arguments), and the escapes
 * \- \. \& \e \~ \fX \(dq \(aq \(lq \(rq become plain characters.
 */
#include "testutil.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <poll.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

extern char **environ;

/* Every page in man/ (NAME.N, N a digit), found once.  */
static const char *man_pages[32];
static size_t n_pages_found;
static size_t
n_pages (void)
{
  if (!n_pages_found)
    {
      char *dir = NULL;
      cr_assert_geq (asprintf (&dir, "%s/man", getenv ("AVM_SRCDIR") ? getenv ("AVM_SRCDIR") : "."), 0);
      DIR *d = opendir (dir);
      cr_assert_not_null (d, "cannot list %s", dir);
      struct dirent *de;
      while ((de = readdir (d)) && n_pages_found < 32)
        {
          size_t l = strlen (de->d_name);
          if (de->d_name[0] != '.' && l > 2 && de->d_name[l - 2] == '.' && isdigit ((unsigned char) de->d_name[l - 1]))
            man_pages[n_pages_found++] = strdup (de->d_name);
        }
      closedir (d);
      free (dir);
    }
  return n_pages_found;
}
#define N_PAGES n_pages ()

/* ------------------------------------------------------------------ */
/* Small string helpers.  */

struct strlist
{
  char **v;
  size_t n;
};

static void
sl_add (struct strlist *l, const char *s, size_t len)
{
  l->v = realloc (l->v, (l->n + 2) * sizeof *l->v);
  cr_assert_not_null (l->v);
  l->v[l->n] = strndup (s, len);
  cr_assert_not_null (l->v[l->n]);
  l->v[++l->n] = NULL;
}

static bool
sl_has (const struct strlist *l, const char *s)
{
  for (size_t i = 0; i < l->n; i++)
    if (strcmp (l->v[i], s) == 0)
      return true;
  return false;
}

static void
sl_add_unique (struct strlist *l, const char *s, size_t len)
{
  char *tmp = strndup (s, len);
  cr_assert_not_null (tmp);
  if (!sl_has (l, tmp))
    sl_add (l, tmp, len);
  free (tmp);
}

static void
sl_free (struct strlist *l)
{
  for (size_t i = 0; i < l->n; i++)
    free (l->v[i]);
  free (l->v);
  l->v = NULL;
  l->n = 0;
}

/* The lines of TEXT (without newlines).  */
static struct strlist
split_lines (const char *text)
{
  struct strlist l = { 0 };
  const char *p = text;
  while (*p)
    {
      const char *nl = strchr (p, '\n');
      size_t n = nl ? (size_t) (nl - p) : strlen (p);
      sl_add (&l, p, n);
      p += n + (nl ? 1 : 0);
    }
  return l;
}

static char *
read_file (const char *path)
{
  FILE *f = fopen (path, "re");
  cr_assert_not_null (f, "cannot open %s: %s", path, strerror (errno));
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream (&buf, &len);
  cr_assert_not_null (m);
  char chunk[8192];
  size_t n;
  while ((n = fread (chunk, 1, sizeof chunk, f)) > 0)
    fwrite (chunk, 1, n, m);
  fclose (f);
  fclose (m);
  return buf;
}

/* Is WORD present in TEXT with no name character on either side?  */
static bool
has_word (const char *text, const char *word)
{
  size_t n = strlen (word);
  for (const char *p = strstr (text, word); p; p = strstr (p + 1, word))
    {
      bool left = p == text || !(isalnum ((unsigned char) p[-1]) || p[-1] == '_');
      bool right = !(isalnum ((unsigned char) p[n]) || p[n] == '_');
      if (left && right)
        return true;
    }
  return false;
}

/* Collapse runs of white space into one space and trim.  */
static char *
squeeze (const char *s)
{
  char *out = malloc (strlen (s) + 1), *o = out;
  cr_assert_not_null (out);
  bool space = false;
  for (; *s; s++)
    {
      if (isspace ((unsigned char) *s))
        space = o != out;
      else
        {
          if (space)
            *o++ = ' ';
          space = false;
          *o++ = *s;
        }
    }
  *o = '\0';
  return out;
}

/* ------------------------------------------------------------------ */
/* Running programs.  */

static const char *
srcdir (void)
{
  const char *s = getenv ("AVM_SRCDIR");
  cr_assert (s && *s, "AVM_SRCDIR is not set (run the suite with `make check`)");
  return s;
}

static const char *
avm_bin (void)
{
  const char *s = getenv ("AVM_BIN");
  cr_assert (s && *s, "AVM_BIN is not set (run the suite with `make check`)");
  return s;
}

static char *
page_path (const char *page)
{
  char *p = NULL;
  cr_assert_geq (asprintf (&p, "%s/man/%s", srcdir (), page), 0);
  return p;
}

static char *
read_page (const char *page)
{
  char *path = page_path (page);
  char *text = read_file (path);
  free (path);
  return text;
}

/* Run ARGV (argv[0] searched in $PATH) with the environment of the suite,
   minus the variables in UNSET, plus the "K=V" entries of SET; capture
   standard output and standard error.  Returns the exit status, 127 when
   the program could not be started, 128+N when killed by signal N.  */
static int
run (char *const argv[], char *const set[], char *const unset[], char **out, char **err)
{
  char *env[64];
  size_t n = 0;
  for (size_t i = 0; set && set[i] && n < 63; i++)
    env[n++] = set[i];
  for (size_t i = 0; unset && unset[i] && n < 63; i++)
    env[n++] = unset[i];
  env[n] = NULL;
  return tu_run (argv, env, out, err);
}

/* A private directory for the capability cache and the images.  */
static char scratch[64];
static bool scratch_made;

static const char *
scratch_dir (void)
{
  if (!scratch_made)
    {
      snprintf (scratch, sizeof scratch, "/tmp/avm-test-man-XXXXXX");
      cr_assert_not_null (mkdtemp (scratch), "mkdtemp: %s", strerror (errno));
      scratch_made = true;
    }
  return scratch;
}

static void
scratch_cleanup (void)
{
  if (scratch_made)
    tu_rmtree (scratch);
  scratch_made = false;
}

/* Run avm with ARGS (NULL-terminated) in a hermetic environment: profiles
   from the source tree only, a private cache, no $AVM_PROFILE.  Fails the
   test unless the exit status is 0.  Returns standard output.  */
static char *
avm_ok (const char *const *args)
{
  char *argv[32];
  size_t n = 0;
  argv[n++] = (char *) avm_bin ();
  for (size_t i = 0; args[i]; i++)
    {
      cr_assert_lt (n, 31);
      argv[n++] = (char *) args[i];
    }
  argv[n] = NULL;

  char *data = NULL, *config = NULL, *cache = NULL;
  cr_assert_geq (asprintf (&data, "AVM_DATA_DIR=%s", srcdir ()), 0);
  cr_assert_geq (asprintf (&config, "XDG_CONFIG_HOME=%s/no-config", scratch_dir ()), 0);
  cr_assert_geq (asprintf (&cache, "XDG_CACHE_HOME=%s/cache", scratch_dir ()), 0);
  char *set[] = { data, config, cache, NULL };
  char *unset[] = { "AVM_PROFILE", NULL };
  char *out = NULL, *err = NULL;
  int rc = run (argv, set, unset, &out, &err);

  char cmd[512] = "";
  size_t o = 0;
  for (size_t i = 0; argv[i] && o < sizeof cmd; i++)
    o += snprintf (cmd + o, sizeof cmd - o, "%s%s", i ? " " : "", argv[i]);
  cr_assert_eq (rc, 0, "%s: exit status %d\n%s", cmd, rc, err ? err : "");
  free (err);
  free (data);
  free (config);
  free (cache);
  return out;
}

/* ------------------------------------------------------------------ */
/* A little roff.  */

/* Replace the escapes we use by the characters they stand for and drop
   font changes.  */
static char *
unescape (const char *s)
{
  char *out = malloc (strlen (s) + 1), *o = out;
  cr_assert_not_null (out);
  while (*s)
    {
      if (s[0] != '\\' || !s[1])
        {
          *o++ = *s++;
          continue;
        }
      char c = s[1];
      if (c == '-' || c == '.' || c == '\'' || c == ' ')
        {
          *o++ = c;
          s += 2;
        }
      else if (c == '&' || c == '%')
        s += 2;
      else if (c == 'e' || c == '\\')
        {
          *o++ = '\\';
          s += 2;
        }
      else if (c == '~')
        {
          *o++ = ' ';
          s += 2;
        }
      else if (c == 'f' && s[2])
        s += 3;
      else if (c == '(' && s[2] && s[3])
        {
          const char *name = s + 2;
          if (!strncmp (name, "dq", 2) || !strncmp (name, "lq", 2) || !strncmp (name, "rq", 2))
            *o++ = '"';
          else if (!strncmp (name, "aq", 2))
            *o++ = '\'';
          else if (!strncmp (name, "bu", 2))
            *o++ = '*';
          else
            *o++ = '?';
          s += 4;
        }
      else
        {
          *o++ = *s++;
        }
    }
  *o = '\0';
  return out;
}

/* The text a line stands for: a text line as it is, a font macro line
   as its arguments (joined without space for alternating-font macros),
   other requests as nothing.  Escapes are resolved.  */
static char *
line_text (const char *line)
{
  if (line[0] != '.' && line[0] != '\'')
    return unescape (line);
  const char *p = line + 1;
  while (*p == ' ')
    p++;
  size_t mlen = strcspn (p, " ");
  char macro[8] = "";
  if (mlen < sizeof macro)
    memcpy (macro, p, mlen);
  static const char *const single[] = { "B", "I", "SM", "SB" };
  static const char *const alternating[] = { "BR", "RB", "BI", "IB", "IR", "RI" };
  bool is_single = false, is_alt = false;
  for (size_t i = 0; i < sizeof single / sizeof single[0]; i++)
    is_single |= strcmp (macro, single[i]) == 0;
  for (size_t i = 0; i < sizeof alternating / sizeof alternating[0]; i++)
    is_alt |= strcmp (macro, alternating[i]) == 0;
  if (!is_single && !is_alt)
    return strdup ("");

  /* Split the arguments: "quoted text" or words.  */
  char *buf = malloc (strlen (line) + 1), *o = buf;
  cr_assert_not_null (buf);
  p += mlen;
  bool first = true;
  while (*p)
    {
      while (*p == ' ')
        p++;
      if (!*p)
        break;
      if (!first && is_single)
        *o++ = ' ';
      first = false;
      if (*p == '"')
        {
          p++;
          while (*p && *p != '"')
            *o++ = *p++;
          if (*p)
            p++;
        }
      else
        while (*p && *p != ' ')
          {
            if (p[0] == '\\' && p[1])
              *o++ = *p++;
            *o++ = *p++;
          }
    }
  *o = '\0';
  char *text = unescape (buf);
  free (buf);
  return text;
}

/* The lines of section NAME (between its .SH and the next .SH).  */
static struct strlist
section_lines (const char *page_text, const char *name)
{
  struct strlist all = split_lines (page_text), sec = { 0 };
  bool in = false;
  for (size_t i = 0; i < all.n; i++)
    {
      const char *l = all.v[i];
      if (strncmp (l, ".SH", 3) == 0 && (l[3] == ' ' || l[3] == '\0'))
        {
          const char *t = l + 3;
          while (*t == ' ')
            t++;
          char want[128];
          snprintf (want, sizeof want, "\"%s\"", name);
          in = strcmp (t, name) == 0 || strcmp (t, want) == 0;
          continue;
        }
      if (in)
        sl_add (&sec, l, strlen (l));
    }
  sl_free (&all);
  return sec;
}

/* The plain text of some lines, white space squeezed.  */
static char *
lines_text (const struct strlist *lines, size_t from, size_t to)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream (&buf, &len);
  cr_assert_not_null (m);
  for (size_t i = from; i < to && i < lines->n; i++)
    {
      if (strncmp (lines->v[i], ".\\\"", 3) == 0)
        continue;
      char *t = line_text (lines->v[i]);
      fprintf (m, "%s\n", t);
      free (t);
    }
  fclose (m);
  char *s = squeeze (buf);
  free (buf);
  return s;
}

static char *
section_text (const char *page_text, const char *name)
{
  struct strlist sec = section_lines (page_text, name);
  cr_assert_gt (sec.n, 0, "section %s is missing or empty", name);
  char *t = lines_text (&sec, 0, sec.n);
  sl_free (&sec);
  return t;
}

/* The .TP entries of section NAME: tags[i] is the rendered tag line,
   bodies[i] the rendered text up to the next .TP, .SS or the end.  */
struct entries
{
  struct strlist tags, bodies;
};

static struct entries
section_entries (const char *page_text, const char *name)
{
  struct strlist sec = section_lines (page_text, name);
  struct entries e = { 0 };
  cr_assert_gt (sec.n, 0, "section %s is missing or empty", name);
  for (size_t i = 0; i < sec.n; i++)
    {
      if (strncmp (sec.v[i], ".TP", 3) != 0 || i + 1 >= sec.n)
        continue;
      char *raw = line_text (sec.v[i + 1]);
      char *tag = squeeze (raw);
      free (raw);
      size_t end = i + 2;
      while (end < sec.n && strncmp (sec.v[end], ".TP", 3) != 0 && strncmp (sec.v[end], ".SS", 3) != 0)
        end++;
      char *body = lines_text (&sec, i + 2, end);
      sl_add (&e.tags, tag, strlen (tag));
      sl_add (&e.bodies, body, strlen (body));
      free (tag);
      free (body);
    }
  sl_free (&sec);
  return e;
}

static void
entries_free (struct entries *e)
{
  sl_free (&e->tags);
  sl_free (&e->bodies);
}

/* Index of the entry whose tag is TAG, or whose tag starts with TAG and
   a space when PREFIX; -1 if none.  */
static ssize_t
entry_find (const struct entries *e, const char *tag, bool prefix)
{
  size_t n = strlen (tag);
  for (size_t i = 0; i < e->tags.n; i++)
    if (strcmp (e->tags.v[i], tag) == 0
        || (prefix && strncmp (e->tags.v[i], tag, n) == 0 && (e->tags.v[i][n] == ' ' || e->tags.v[i][n] == '=')))
      return (ssize_t) i;
  return -1;
}

/* ------------------------------------------------------------------ */
/* Options in help texts and in OPTIONS sections.  */

static bool
opt_char (char c)
{
  return islower ((unsigned char) c) || isdigit ((unsigned char) c) || c == '-';
}

/* Every --long-option token of TEXT.  */
static struct strlist
long_options (const char *text)
{
  struct strlist l = { 0 };
  for (const char *p = text; (p = strstr (p, "--")); p++)
    {
      if (p > text && (isalnum ((unsigned char) p[-1]) || p[-1] == '-'))
        continue;
      if (!islower ((unsigned char) p[2]))
        continue;
      size_t n = 2;
      while (opt_char (p[n]))
        n++;
      while (p[n - 1] == '-')
        n--;
      sl_add_unique (&l, p, n);
    }
  return l;
}

/* The short option paired with LONG in TEXT ("-p, --profile"), or "". */
static void
short_for (const char *text, const char *lng, char out[3])
{
  out[0] = '\0';
  for (const char *p = strstr (text, lng); p; p = strstr (p + 1, lng))
    {
      size_t n = strlen (lng);
      if (opt_char (p[n]))
        continue;
      if (p - text >= 4 && p[-1] == ' ' && p[-2] == ',' && p[-4] == '-' && isalpha ((unsigned char) p[-3])
          && (p - text == 4 || p[-5] == ' ' || p[-5] == '\n'))
        {
          out[0] = '-';
          out[1] = p[-3];
          out[2] = '\0';
        }
      return;
    }
}

/* Options documented in the OPTIONS section of PAGE: the long options of
   its .TP tags; TAGS gets the tag lines joined by newlines.  */
static struct strlist
page_options (const char *page, char **tags)
{
  char *text = read_page (page);
  struct entries e = section_entries (text, "OPTIONS");
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream (&buf, &len);
  for (size_t i = 0; i < e.tags.n; i++)
    fprintf (m, "%s\n", e.tags.v[i]);
  fclose (m);
  struct strlist l = long_options (buf);
  *tags = buf;
  entries_free (&e);
  free (text);
  return l;
}

/* The option words of TEXT: on every line that starts (after white space)
   with '-', the words "-x", "--long" before the first other word
   ("-p, --profile NAME", "-m/--mode MODE", "--set=PATH").  */
static struct strlist
option_words (const char *text)
{
  struct strlist l = { 0 };
  for (const char *line = text; *line; line += strcspn (line, "\n"), line += *line == '\n')
    {
      const char *p = line + strspn (line, " \t");
      const char *end = line + strcspn (line, "\n");
      while (p < end && *p == '-' && p[1] && p[1] != ' ')
        {
          size_t n = strcspn (p, " \t\n,=/[");
          sl_add_unique (&l, p, n);
          p += n;
          if (p < end && (*p == ',' || *p == '/'))
            p += 1 + strspn (p + 1, " ");
          else if (p + 1 < end && *p == ' ' && p[1] == '-')
            p++;
          else
            break;
        }
    }
  return l;
}

/* Compare the options of a help text with the OPTIONS of PAGE: the same
   option words (short and long), and the same pairs.  WHO names the
   command in messages.  */
static void
check_help_page (const char *who, const char *help, const char *page)
{
  char *tags = NULL;
  struct strlist in_page_long = page_options (page, &tags);
  struct strlist in_help = option_words (help), in_page = option_words (tags);

  cr_assert_gt (in_help.n, 0, "%s --help lists no option", who);
  for (size_t i = 0; i < in_help.n; i++)
    cr_expect (sl_has (&in_page, in_help.v[i]), "%s --help has %s, which the OPTIONS of man/%s do not document", who,
               in_help.v[i], page);
  for (size_t i = 0; i < in_page.n; i++)
    cr_expect (sl_has (&in_help, in_page.v[i]), "man/%s documents %s in OPTIONS, which %s --help does not list", page,
               in_page.v[i], who);
  /* A long option named anywhere in an OPTIONS tag is one of the help.  */
  for (size_t i = 0; i < in_page_long.n; i++)
    cr_expect (sl_has (&in_help, in_page_long.v[i]), "man/%s: OPTIONS name %s, which %s --help does not list", page,
               in_page_long.v[i], who);

  /* Where the help pairs a short option with a long one, so must the page. */
  for (size_t i = 0; i < in_help.n; i++)
    {
      char hs[3], ps[3];
      if (strncmp (in_help.v[i], "--", 2) != 0)
        continue;
      short_for (help, in_help.v[i], hs);
      if (!hs[0] || !sl_has (&in_page, in_help.v[i]))
        continue;
      short_for (tags, in_help.v[i], ps);
      cr_expect_str_eq (ps, hs, "%s: %s --help says \"%s, %s\", man/%s says \"%s\"", in_help.v[i], who, hs,
                        in_help.v[i], page, ps[0] ? ps : "(no short option)");
    }
  sl_free (&in_help);
  sl_free (&in_page);
  sl_free (&in_page_long);
  free (tags);
}

/* Compare the options of `avm CMD --help` with the OPTIONS of PAGE.  */
static void
check_options (const char *cmd, const char *page)
{
  const char *args[] = { cmd, "--help", NULL };
  char *help = avm_ok (args);
  char who[64];
  snprintf (who, sizeof who, "avm %s", cmd);
  check_help_page (who, help, page);
  free (help);
}

/* The commands under "Commands:" in `avm --help`.  */
static struct strlist
avm_commands (void)
{
  const char *args[] = { "--help", NULL };
  char *help = avm_ok (args);
  struct strlist lines = split_lines (help), names = { 0 };
  bool in = false;
  for (size_t i = 0; i < lines.n; i++)
    {
      const char *l = lines.v[i];
      if (strcmp (l, "Commands:") == 0)
        {
          in = true;
          continue;
        }
      if (!in)
        continue;
      if (!*l)
        break;
      const char *w = l + strspn (l, " ");
      sl_add (&names, w, strcspn (w, " "));
    }
  sl_free (&lines);
  free (help);
  cr_assert_geq (names.n, 3, "avm --help: no \"Commands:\" list");
  return names;
}

/* Run a personality of $AVM_BIN (a symbolic link named NAME to it) with
   --help; returns its standard output, or NULL when it exits non-zero.  */
static char *
personality_help (const char *name)
{
  char abs[4096], *link = NULL;
  cr_assert_not_null (realpath (avm_bin (), abs), "%s: %s", avm_bin (), strerror (errno));
  cr_assert_geq (asprintf (&link, "%s/%s", scratch_dir (), name), 0);
  unlink (link);
  cr_assert_eq (symlink (abs, link), 0, "symlink %s: %s", link, strerror (errno));
  char *argv[] = { link, "--help", NULL };
  char *out = NULL, *err = NULL;
  int rc = run (argv, NULL, NULL, &out, &err);
  free (err);
  free (link);
  if (rc != 0)
    {
      free (out);
      return NULL;
    }
  return out;
}

/* ------------------------------------------------------------------ */

TestSuite (man, .fini = scratch_cleanup);

Test (man, mandoc_lint)
{
  for (size_t i = 0; i < N_PAGES; i++)
    {
      char *path = page_path (man_pages[i]);
      char *argv[] = { "mandoc", "-Tlint", "-Wwarning", path, NULL };
      char *out = NULL, *err = NULL;
      int rc = run (argv, NULL, NULL, &out, &err);
      cr_expect_eq (rc, 0, "mandoc -Tlint -Wwarning %s: exit status %d\n%s%s", path, rc, out ? out : "",
                    err ? err : "");
      free (out);
      free (err);
      free (path);
    }
}

Test (man, headers)
{
  const char *args[] = { "--version", NULL };
  char *version = avm_ok (args);
  version[strcspn (version, "\n")] = '\0';
  cr_assert (strncmp (version, "avm ", 4) == 0, "avm --version: unexpected output \"%s\"", version);

  for (size_t i = 0; i < N_PAGES; i++)
    {
      const char *page = man_pages[i];
      char *text = read_page (page);
      const char *dot = strrchr (page, '.');
      char base[64], title[64];
      snprintf (base, sizeof base, "%.*s", (int) (dot - page), page);
      size_t k = 0;
      for (; base[k]; k++)
        title[k] = (char) toupper ((unsigned char) base[k]);
      title[k] = '\0';

      /* .TH TITLE SECTION DATE "avm VERSION" "avm Manual" */
      struct strlist lines = split_lines (text);
      const char *th = NULL;
      for (size_t j = 0; j < lines.n && !th; j++)
        if (strncmp (lines.v[j], ".TH ", 4) == 0)
          th = lines.v[j];
      cr_assert_not_null (th, "man/%s has no .TH line", page);
      char *th_text = unescape (th + 4);
      char want[256];
      snprintf (want, sizeof want, "%s %s ", title, dot + 1);
      cr_expect (strncmp (th_text, want, strlen (want)) == 0, "man/%s: .TH should start with \"%s\": %s", page, want,
                 th_text);
      snprintf (want, sizeof want, "\"%s\"", version);
      cr_expect (strstr (th_text, want) != NULL, "man/%s: .TH names another version than %s: %s", page, version,
                 th_text);

      char *name = section_text (text, "NAME");
      snprintf (want, sizeof want, "%s - ", base);
      cr_expect (strncmp (name, want, strlen (want)) == 0, "man/%s: NAME should start with \"%s\": %s", page, want,
                 name);
      free (name);
      free (th_text);
      sl_free (&lines);
      free (text);
    }
  free (version);
}

Test (man, cross_references)
{
  /* Every avm*(N) a page refers to exists.  */
  for (size_t i = 0; i < N_PAGES; i++)
    {
      char *text = read_page (man_pages[i]);
      struct strlist lines = split_lines (text);
      char *all = lines_text (&lines, 0, lines.n);
      for (const char *p = strstr (all, "avm"); p; p = strstr (p + 1, "avm"))
        {
          if (p > all && (isalnum ((unsigned char) p[-1]) || p[-1] == '-' || p[-1] == '/' || p[-1] == '_'))
            continue;
          size_t n = 3;
          while (isalnum ((unsigned char) p[n]) || p[n] == '-')
            n++;
          if (p[n] != '(' || !isdigit ((unsigned char) p[n + 1]) || p[n + 2] != ')')
            continue;
          char ref[80];
          snprintf (ref, sizeof ref, "%.*s.%c", (int) n, p, p[n + 1]);
          bool known = false;
          for (size_t k = 0; k < N_PAGES; k++)
            known |= strcmp (man_pages[k], ref) == 0;
          cr_expect (known, "man/%s refers to %.*s(%c), which is not one of the pages", man_pages[i], (int) n, p,
                     p[n + 1]);
        }
      free (all);
      sl_free (&lines);
      free (text);
    }
}

Test (man, commands_have_pages)
{
  char *avm1 = read_page ("avm.1");
  struct entries cmds = section_entries (avm1, "COMMANDS");
  char *avm1_text = section_text (avm1, "COMMANDS");
  struct strlist names = avm_commands ();

  for (size_t i = 0; i < names.n; i++)
    {
      const char *cmd = names.v[i];
      cr_expect_geq (entry_find (&cmds, cmd, true), 0, "avm --help lists \"%s\", which COMMANDS of man/avm.1 lacks",
                     cmd);
      if (strcmp (cmd, "help") == 0)
        continue; /* `help CMD` has no page of its own */
      char page[64], ref[64];
      snprintf (page, sizeof page, "avm-%s.1", cmd);
      snprintf (ref, sizeof ref, "avm-%s(1)", cmd);
      char *path = page_path (page);
      cr_expect_eq (access (path, R_OK), 0, "avm --help lists \"%s\" but %s does not exist", cmd, path);
      cr_expect (strstr (avm1_text, ref) != NULL, "COMMANDS of man/avm.1 does not refer to %s", ref);
      free (path);
    }
  /* And no command documented that avm does not have.  */
  for (size_t i = 0; i < cmds.tags.n; i++)
    {
      char word[64];
      snprintf (word, sizeof word, "%.*s", (int) strcspn (cmds.tags.v[i], " "), cmds.tags.v[i]);
      cr_expect (sl_has (&names, word), "man/avm.1 documents the command \"%s\", which avm --help does not list", word);
    }
  sl_free (&names);
  free (avm1_text);
  entries_free (&cmds);
  free (avm1);
}

Test (man, options_of_every_command)
{
  /* Every command of `avm --help` but help and profiles (whose
     subcommands are checked below) has its page, with the options of its
     --help in OPTIONS, and no other.  */
  struct strlist cmds = avm_commands ();
  size_t checked = 0;
  for (size_t i = 0; i < cmds.n; i++)
    {
      if (strcmp (cmds.v[i], "help") == 0 || strcmp (cmds.v[i], "profiles") == 0)
        continue;
      char page[64];
      snprintf (page, sizeof page, "avm-%s.1", cmds.v[i]);
      check_options (cmds.v[i], page);
      checked++;
    }
  cr_expect_geq (checked, 6);
  sl_free (&cmds);
}

Test (man, cvd2img_personality)
{
  /* Invoked as cvd2img: its help and the COMPATIBILITY section of
     avm-cvd2img(1) name the same options.  */
  char *help = personality_help ("cvd2img");
  cr_assert_not_null (help, "cvd2img --help failed");
  cr_assert (strncmp (help, "Usage: cvd2img ", 15) == 0, "cvd2img --help:\n%s", help);
  char *page = read_page ("avm-cvd2img.1");
  char *compat = section_text (page, "COMPATIBILITY");
  struct strlist in_help = option_words (help), in_page = { 0 };
  cr_assert_geq (in_help.n, 8, "cvd2img --help: only %zu options", in_help.n);
  for (size_t i = 0; i < in_help.n; i++)
    cr_expect (has_word (compat, in_help.v[i]) || strstr (compat, in_help.v[i]),
               "cvd2img --help has %s, which COMPATIBILITY of man/avm-cvd2img.1 does not name", in_help.v[i]);
  /* And the other way: the options COMPATIBILITY names (-x, --long).  */
  for (const char *p = compat; (p = strchr (p, '-')); p++)
    {
      if (p > compat && p[-1] != ' ' && p[-1] != '(')
        continue;
      size_t n = 1 + (p[1] == '-');
      if (!isalpha ((unsigned char) p[n]))
        continue;
      while (opt_char (p[n]) || isalpha ((unsigned char) p[n]))
        n++;
      sl_add_unique (&in_page, p, n);
    }
  cr_assert_gt (in_page.n, 0);
  for (size_t i = 0; i < in_page.n; i++)
    cr_expect (sl_has (&in_help, in_page.v[i]),
               "COMPATIBILITY of man/avm-cvd2img.1 names %s, which cvd2img --help "
               "does not list",
               in_page.v[i]);
  sl_free (&in_help);
  sl_free (&in_page);
  free (compat);
  free (page);
  free (help);
}

Test (man, start_avm_personality)
{
  /* man/start-avm.1 documents the options of `start-avm --help`.  */
  char *path = page_path ("start-avm.1");
  bool have_page = access (path, F_OK) == 0;
  free (path);
  if (!have_page)
    cr_skip_test ("man/start-avm.1 is not in this tree yet (the start-avm personality)");
  char *help = personality_help ("start-avm");
  cr_assert_not_null (help, "man/start-avm.1 exists but start-avm --help fails");
  check_help_page ("start-avm", help, "start-avm.1");
  free (help);
}

Test (man, profiles_subcommands)
{
  const char *args[] = { "profiles", "--help", NULL };
  char *help = avm_ok (args);
  char *page = read_page ("avm-profiles.1");
  struct entries cmds = section_entries (page, "COMMANDS");
  struct strlist lines = split_lines (help), opts = long_options (help);

  /* "Usage: avm profiles SUB ..." and "       avm profiles SUB ...".  */
  size_t subs = 0;
  for (size_t i = 0; i < lines.n; i++)
    {
      const char *p = strstr (lines.v[i], "avm profiles ");
      if (!p)
        continue;
      p += strlen ("avm profiles ");
      char sub[32];
      snprintf (sub, sizeof sub, "%.*s", (int) strcspn (p, " "), p);
      subs++;
      ssize_t k = entry_find (&cmds, sub, true);
      cr_expect_geq (k, 0, "avm profiles --help has \"%s\", which COMMANDS of man/avm-profiles.1 lacks", sub);
    }
  cr_expect_geq (subs, 3, "avm profiles --help: no usage lines");
  char *all = section_text (page, "COMMANDS");
  for (size_t i = 0; i < opts.n; i++)
    cr_expect (strstr (all, opts.v[i]) != NULL, "avm profiles --help has %s, which man/avm-profiles.1 does not mention",
               opts.v[i]);
  free (all);
  sl_free (&opts);
  sl_free (&lines);
  entries_free (&cmds);
  free (page);
  free (help);
}

Test (man, profile_keys)
{
  const char *brief_args[] = { "profiles", "keys", "--brief", NULL };
  const char *full_args[] = { "profiles", "keys", NULL };
  char *brief = avm_ok (brief_args);
  char *full = avm_ok (full_args);
  char *page = read_page ("avm-profile.5");
  struct entries keys = section_entries (page, "KEYS");
  struct strlist schema = split_lines (brief), doc = split_lines (full);

  cr_assert_gt (schema.n, 50, "avm profiles keys --brief printed only %zu keys", schema.n);
  cr_assert_eq (doc.n, schema.n * 3, "avm profiles keys: expected 3 lines per key");
  for (size_t i = 0; i < schema.n; i++)
    {
      const char *key = schema.v[i];
      cr_assert_str_eq (doc.v[3 * i], key, "avm profiles keys and keys --brief disagree");
      ssize_t k = entry_find (&keys, key, false);
      cr_expect_geq (k, 0, "KEYS of man/avm-profile.5 has no entry for %s", key);
      if (k < 0)
        continue;
      /* The type line (type, range or values, default, required).  */
      char *type = squeeze (doc.v[3 * i + 1]);
      cr_expect (strstr (keys.bodies.v[k], type) != NULL,
                 "man/avm-profile.5: %s: the entry does not say \"%s\" (as avm profiles keys does)", key, type);
      free (type);
    }
  for (size_t i = 0; i < keys.tags.n; i++)
    cr_expect (sl_has (&schema, keys.tags.v[i]), "KEYS of man/avm-profile.5 documents %s, which the schema lacks",
               keys.tags.v[i]);
  sl_free (&schema);
  sl_free (&doc);
  entries_free (&keys);
  free (page);
  free (full);
  free (brief);
}

Test (man, json_plan_keys)
{
  /* A hermetic plan with as many keys as possible: recorded capabilities
     (so no QEMU is probed; capabilities_file), the implied dbus service,
     a vhost-user backend (serves), boot properties.  */
  char *caps = NULL;
  cr_assert_geq (asprintf (&caps, "%s/tests/data/caps-qemu-10.0-x86_64.json", srcdir ()), 0);
  const char *args[] = { "start", "--dry-run",         "--json",   "-p",           "aaos-x86_64", "-O", "gpu=virgl",
                         "--set", "machine.accel=tcg", "--images", scratch_dir (), "--caps",      caps, NULL };
  char *out = avm_ok (args);
  json_error_t je;
  json_t *plan = json_loads (out, 0, &je);
  cr_assert_not_null (plan, "avm start --dry-run --json: %s", je.text);

  char *page = read_page ("avm-start.1");
  struct entries doc = section_entries (page, "JSON PLAN");
  char *text = section_text (page, "JSON PLAN");

  const char *k;
  json_t *v;
  json_object_foreach (plan, k, v)
    cr_expect_geq (entry_find (&doc, k, false), 0,
                   "the JSON plan has the key %s, which JSON PLAN in man/avm-start.1 "
                   "does not document",
                   k);

  /* Keys of the nested objects: documented as entries or in the text.  */
  struct strlist nested = { 0 };
  json_object_foreach (json_object_get (plan, "qemu"), k, v)
    sl_add_unique (&nested, k, strlen (k));
  const char *const arrays[] = { "pci", "services", "resources" };
  for (size_t a = 0; a < sizeof arrays / sizeof arrays[0]; a++)
    {
      size_t i;
      json_t *el;
      json_t *arr = json_object_get (plan, arrays[a]);
      cr_expect_gt (json_array_size (arr), 0, "the JSON plan has no %s", arrays[a]);
      json_array_foreach (arr, i, el)
        {
          json_object_foreach (el, k, v)
            sl_add_unique (&nested, k, strlen (k));
          json_object_foreach (json_object_get (el, "ready"), k, v)
            sl_add_unique (&nested, k, strlen (k));
        }
    }
  json_object_foreach (json_object_get (plan, "boot"), k, v)
    sl_add_unique (&nested, k, strlen (k));
  for (const char *must[] = { "capabilities_file", "implied", "serves", "program", "for", "console", "tee", NULL },
                  **m = must;
       *m; m++)
    cr_expect (sl_has (&nested, *m), "the test plan lacks the key %s; choose a profile that has it", *m);
  for (size_t i = 0; i < nested.n; i++)
    cr_expect (entry_find (&doc, nested.v[i], false) >= 0 || has_word (text, nested.v[i]),
               "the JSON plan has the nested key %s, which JSON PLAN in man/avm-start.1 does not mention", nested.v[i]);

  sl_free (&nested);
  free (text);
  entries_free (&doc);
  free (page);
  json_decref (plan);
  free (out);
  free (caps);
}

Test (man, shipped_profiles_and_options)
{
  const char *list_args[] = { "profiles", "list", "--json", NULL };
  char *out = avm_ok (list_args);
  json_error_t je;
  json_t *list = json_loads (out, 0, &je);
  cr_assert_not_null (list, "avm profiles list --json: %s", je.text);
  char *page = read_page ("avm-profile.5");
  struct entries shipped = section_entries (page, "SHIPPED PROFILES");
  struct entries options = section_entries (page, "OPTIONS OF THE AAOS PROFILES");
  struct strlist names = { 0 };

  char *shipped_dir = NULL;
  cr_assert_geq (asprintf (&shipped_dir, "%s/profiles/", srcdir ()), 0);
  size_t i;
  json_t *e;
  json_array_foreach (list, i, e)
    {
      const char *name = json_string_value (json_object_get (e, "name"));
      const char *path = json_string_value (json_object_get (e, "path"));
      /* Only the profiles of the source tree (not /etc/avm/profiles).  */
      if (!path || strncmp (path, shipped_dir, strlen (shipped_dir)) != 0)
        continue;
      sl_add (&names, name, strlen (name));
      cr_expect_geq (entry_find (&shipped, name, false), 0,
                     "profile %s is shipped but SHIPPED PROFILES of man/avm-profile.5 does not describe it", name);

      /* OPTIONS OF THE AAOS PROFILES covers the AAOS family; other
         profiles describe their options in their own entry.  */
      if (strncmp (name, "aaos-", 5) != 0 && strncmp (name, "phone-", 6) != 0)
        continue;
      const char *show_args[] = { "profiles", "show", name, NULL };
      char *shown = avm_ok (show_args);
      json_t *p = json_loads (shown, 0, &je);
      cr_assert_not_null (p, "avm profiles show %s: %s", name, je.text);
      const char *oname;
      json_t *opt;
      json_object_foreach (json_object_get (p, "options"), oname, opt)
        {
          ssize_t k = entry_find (&options, oname, true);
          cr_expect_geq (k, 0, "%s has the option %s, which OPTIONS OF THE AAOS PROFILES does not document", name,
                         oname);
          if (k < 0)
            continue;
          /* Tag: NAME={DEFAULT|OTHER...} (start-avm FLAG) */
          char want[512];
          size_t o = (size_t) snprintf (want, sizeof want, "%s={%s", oname,
                                        json_string_value (json_object_get (opt, "default")));
          const char *choice;
          json_t *c;
          json_object_foreach (json_object_get (opt, "choices"), choice, c)
            if (strcmp (choice, json_string_value (json_object_get (opt, "default"))) != 0 && o < sizeof want)
              o += (size_t) snprintf (want + o, sizeof want - o, "|%s", choice);
          if (o < sizeof want)
            snprintf (want + o, sizeof want - o, "}");
          const char *tag = options.tags.v[k];
          cr_expect (strncmp (tag, want, strlen (want)) == 0,
                     "%s: option %s: man/avm-profile.5 says \"%s\", the profile has %s (default first)", name, oname,
                     tag, want);
          /* The start-avm flag named in the option's description.  */
          const char *desc = json_string_value (json_object_get (opt, "description"));
          const char *flag = desc ? strstr (desc, "start-avm ") : NULL;
          if (flag)
            {
              char f[64];
              snprintf (f, sizeof f, "%.*s", (int) strcspn (flag, ");"), flag);
              cr_expect (strstr (tag, f) != NULL, "%s: option %s is \"%s\", man/avm-profile.5 says \"%s\"", name, oname,
                         f, tag);
            }
        }
      json_decref (p);
      free (shown);
    }
  cr_expect_geq (names.n, 5, "avm profiles list found only %zu profiles", names.n);
  for (size_t k = 0; k < shipped.tags.n; k++)
    cr_expect (sl_has (&names, shipped.tags.v[k]), "man/avm-profile.5 describes the profile %s, which is not shipped",
               shipped.tags.v[k]);
  sl_free (&names);
  free (shipped_dir);
  entries_free (&shipped);
  entries_free (&options);
  free (page);
  json_decref (list);
  free (out);
}
