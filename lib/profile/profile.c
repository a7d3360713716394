/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device profiles: where they are (data directories, avm_profile_find,
 * avm_profile_list) and loading one (the "extends" chain merged, options
 * selected or detected, validated against the schema).  The --set
 * overrides are applied by profile_set.c.
 */
#include "profile/profile.h"
#include "profile/schema.h"
#include "util/cleanup.h"
#include "util/strbuf.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strv.h"

#include <ctype.h>
#include <dirent.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_EXTENDS_DEPTH 16

static bool
is_dir (const char *p)
{
  struct stat st;
  return stat (p, &st) == 0 && S_ISDIR (st.st_mode);
}

static char *
find_data_dir (void)
{
  _cleanup_free_ char *self = avm_self_dir ();
  if (self)
    {
      /* Installed: PREFIX/bin/avm next to PREFIX/share/avm (relocatable).  */
      _cleanup_free_ char *rel = avm_path_join (self, "../share/avm");
      if (rel && is_dir (rel))
        return realpath (rel, NULL);
      /* Running from the source tree (./avm, build-asan/avm).  */
      if (is_dir (self))
        {
          _cleanup_free_ char *p = avm_path_join (self, "profiles");
          if (p && is_dir (p))
            return strdup (self);
          _cleanup_free_ char *up = avm_path_join (self, "..");
          _cleanup_free_ char *pp = up ? avm_path_join (up, "profiles") : NULL;
          _cleanup_free_ char *mk = up ? avm_path_join (up, "Makefile") : NULL;
          if (pp && is_dir (pp) && mk && access (mk, F_OK) == 0)
            return realpath (up, NULL);
        }
    }
  return strdup (AVM_PREFIX_DATADIR);
}

char *
avm_data_dir (void)
{
  /* $AVM_DATA_DIR is read every time (tests change it); the lookup next
     to the executable is done once.  */
  static char *found;
  const char *env = getenv ("AVM_DATA_DIR");
  if (env && *env)
    return strdup (env);
  if (!found)
    found = find_data_dir ();
  return found ? strdup (found) : NULL;
}

char **
avm_profile_dirs (void)
{
  struct avm_argv a = { 0 };
  _cleanup_free_ char *data = avm_data_dir ();
  _cleanup_free_ char *conf = avm_xdg_dir ("XDG_CONFIG_HOME", ".config");
  if (data)
    avm_argv_push_take (&a, avm_path_join (data, "profiles"));
  avm_argv_push (&a, "/etc/avm/profiles");
  if (conf)
    avm_argv_push_take (&a, avm_path_join (conf, "avm/profiles"));
  return avm_argv_steal (&a);
}

static bool
is_path_like (const char *name)
{
  size_t l = strlen (name);
  return strchr (name, '/') || (l > 5 && streq (name + l - 5, ".json"));
}

int
avm_profile_find (const char *name, char **path, avm_error_t *err)
{
  if (!*name)
    return avm_error_input (err, "empty profile name");
  if (is_path_like (name))
    {
      if (access (name, R_OK) < 0)
        return avm_error_input (err, "profile %s: %s", name, strerror (errno));
      *path = strdup (name);
      return 0;
    }
  for (const char *p = name; *p; p++)
    if (!isalnum ((unsigned char) *p) && *p != '-' && *p != '_' && *p != '.')
      return avm_error_input (err, "invalid profile name \"%s\"", name);
  _cleanup_strv_ char **dirs = avm_profile_dirs ();
  _cleanup_free_ char *file = NULL;
  if (asprintf (&file, "%s.json", name) < 0)
    return avm_error_sys (err, ENOMEM, "profile %s", name);
  for (size_t i = 0; dirs[i]; i++)
    {
      char *cand = avm_path_join (dirs[i], file);
      if (cand && access (cand, R_OK) == 0)
        {
          *path = cand;
          return 0;
        }
      free (cand);
    }
  struct avm_strbuf b = { 0 };
  for (size_t i = 0; dirs[i]; i++)
    avm_strbuf_join (&b, ", ", dirs[i]);
  _cleanup_free_ char *searched = avm_strbuf_steal (&b);
  return avm_error_input (err, "profile \"%s\" not found (searched %s); `avm profiles list` shows the available ones",
                          name, searched ? searched : "?");
}

/* ----------------------------------------------------------------------- */

static int
profile_name_from_path (const char *path, char **name)
{
  _cleanup_free_ char *copy = strdup (path);
  if (!copy)
    return -ENOMEM;
  char *b = basename (copy);
  size_t l = strlen (b);
  if (l > 5 && streq (b + l - 5, ".json"))
    b[l - 5] = '\0';
  char *n = strdup (b);
  if (!n)
    return -ENOMEM;
  *name = n;
  return 0;
}

/* Read the profile file PATH; FROM is the profile that extends it (NULL for
   the profile asked for).  */
static int
load_profile_file (const char *path, const char *from, json_t **out, avm_error_t *err)
{
  int r = avm_json_load_file (path, AVM_PROFILE_MAX_SIZE, "a profile", out, err);
  if (r == -EFBIG && !from && *err)
    {
      /* `-p system.img` for `--images DIR`?  */
      _cleanup_free_ char *msg = strdup ((*err)->msg);
      if (msg)
        avm_error_input (err, "%s; did you mean --images?", msg);
      if (*err)
        (*err)->code = EFBIG;
    }
  else if (r < 0 && from)
    avm_error_prefix (err, "%s: extends", from);
  return r;
}

/* "a.json -> b.json -> a.json": CHAIN, then PATH.  */
static char *
chain_text (const struct avm_argv *chain, const char *path)
{
  struct avm_strbuf b = { 0 };
  for (size_t i = 0; i < chain->n; i++)
    avm_strbuf_join (&b, " -> ", chain->v[i]);
  avm_strbuf_join (&b, " -> ", path);
  return avm_strbuf_steal (&b);
}

/* PATH is the file being read, FROM the one whose extends named it; CHAIN
   the files read so far and REALS their resolved names (a file reached
   under another name, "./a.json" or a link, is the same file).  */
static int
resolve_file (const char *path, const char *from, struct avm_argv *chain, struct avm_argv *reals, json_t **out,
              avm_error_t *err)
{
  _cleanup_json_ json_t *j = NULL;
  int r;

  _cleanup_free_ char *real = realpath (path, NULL);
  if (!real && !(real = strdup (path)))
    return avm_error_sys (err, ENOMEM, "profile %s", path);
  for (size_t i = 0; i < reals->n; i++)
    if (streq (reals->v[i], real))
      {
        _cleanup_free_ char *text = chain_text (chain, path);
        return avm_error_input (err, "%s: extends: inheritance cycle: %s%s%s%s", chain->v[0], text ? text : path,
                                streq (chain->v[i], path) ? "" : " (the same file as ",
                                streq (chain->v[i], path) ? "" : chain->v[i], streq (chain->v[i], path) ? "" : ")");
      }
  if (chain->n >= MAX_EXTENDS_DEPTH)
    {
      _cleanup_free_ char *text = chain_text (chain, path);
      return avm_error_input (err, "%s: extends: more than %d levels of inheritance: %s", chain->v[0],
                              MAX_EXTENDS_DEPTH, text ? text : path);
    }
  avm_argv_push (chain, path);
  avm_argv_push (reals, real);

  r = load_profile_file (path, from, &j, err);
  if (r < 0)
    return r;
  if (!json_is_object (j))
    return avm_error_input (err, "%s: expected a JSON object at the top level", path);
  r = avm_schema_validate_fragment (j, avm_profile_schema (), path, "", err);
  if (r < 0)
    return r;

  json_t *ext = json_object_get (j, "extends");
  if (!ext || json_is_null (ext))
    {
      json_object_del (j, "extends");
      *out = steal_pointer (&j);
      return 0;
    }

  _cleanup_free_ char *parent_path = NULL;
  const char *pname = json_string_value (ext);
  if (is_path_like (pname) && pname[0] != '/')
    {
      _cleanup_free_ char *copy = strdup (path);
      if (!copy)
        return avm_error_sys (err, ENOMEM, "%s: extends", path);
      /* Relative to the file's directory, named without "./" (messages).  */
      while (pname[0] == '.' && pname[1] == '/')
        pname += 2;
      const char *dir = dirname (copy);
      parent_path = streq (dir, ".") ? strdup (pname) : avm_path_join (dir, pname);
      if (!parent_path)
        return avm_error_sys (err, ENOMEM, "%s: extends", path);
      if (access (parent_path, R_OK) < 0)
        return avm_error_input (err, "%s: extends: %s: %s", path, parent_path, strerror (errno));
    }
  else
    {
      r = avm_profile_find (pname, &parent_path, err);
      if (r < 0)
        {
          avm_error_prefix (err, "%s: extends", path);
          return r;
        }
    }

  json_t *parent = NULL;
  r = resolve_file (parent_path, path, chain, reals, &parent, err);
  if (r < 0)
    return r;
  json_object_del (j, "extends");
  *out = avm_json_merge_patch (parent, j);
  return 0;
}

/* The images directory a detector looks at: --images, or paths.images
   when it is made of plain paths and ${data_dir} (another profile variable
   cannot be known before planning: then nothing is detected); of several
   listed, the first that exists, as the plan picks.  */
static char *
detect_images_dir (json_t *root, const struct avm_profile_request *req)
{
  if (req->images)
    return strdup (req->images);
  const char *p = json_string_value (avm_json_path (root, "paths.images"));
  if (!p)
    p = "/images"; /* the schema's default */
  const char *dd = "${data_dir}";
  _cleanup_strbuf_ struct avm_strbuf list = { 0 };
  _cleanup_free_ char *data = NULL;
  for (const char *s = p; *s;)
    {
      const char *v = strchr (s, '$');
      if (!v)
        {
          avm_strbuf_add (&list, s, strlen (s));
          break;
        }
      if (strncmp (v, dd, strlen (dd)) != 0)
        return NULL;
      if (!data && !(data = avm_data_dir ()))
        return NULL;
      avm_strbuf_add (&list, s, v - s);
      avm_strbuf_add (&list, data, strlen (data));
      s = v + strlen (dd);
    }
  bool found;
  return list.s ? avm_first_dir (list.s, &found) : NULL;
}

/* Run the detector of option NAME; *CHOICE stays NULL when nothing tells.  */
static int
detect_choice (json_t *root, const char *name, json_t *opt, const struct avm_profile_request *req, json_t *detected,
               char **choice, avm_error_t *err)
{
  const char *detector = json_string_value (json_object_get (opt, "detect"));
  json_t *info = NULL;
  int r = 0;
  *choice = NULL;
  if (!detector)
    return 0;
  _cleanup_free_ char *images = detect_images_dir (root, req);
  if (req->detect && images && (r = req->detect (req->detect_data, detector, images, choice, &info, err)) < 0)
    return r;
  if (!info)
    info = json_pack ("{s:s, s:s}", "source", "default", "evidence",
                      !images       ? "paths.images is not a plain directory"
                      : req->detect ? "the images directory tells nothing"
                                    : "not detected");
  if (*choice)
    json_object_set_new (info, "choice", json_string (*choice));
  json_object_set_new (detected, name, info);
  return 0;
}

static int
apply_options (json_t *root, const char *file, const struct avm_profile_request *req, json_t *selected,
               json_t *detected, avm_error_t *err)
{
  char *const *requested = req->options;
  json_t *opts = json_object_get (root, "options");

  /* Every --option must name an existing option and choice.  */
  for (size_t i = 0; requested && requested[i]; i++)
    {
      const char *eq = strchr (requested[i], '=');
      if (!eq || eq == requested[i] || !eq[1])
        return avm_error_input (err, "--option %s: expected NAME=CHOICE", requested[i]);
      _cleanup_free_ char *name = strndup (requested[i], eq - requested[i]);
      json_t *opt = json_object_get (opts, name);
      if (!opt)
        {
          _cleanup_free_ char *list = avm_json_keys_join (opts, ", ");
          return avm_error_input (err, "--option %s: %s has no option \"%s\"%s%s", requested[i], file, name,
                                  list && *list ? "; options: " : " (it has no options)", list ? list : "");
        }
      json_t *choices = json_object_get (opt, "choices");
      if (!json_object_get (choices, eq + 1))
        {
          _cleanup_free_ char *list = avm_json_keys_join (choices, ", ");
          return avm_error_input (err, "--option %s: option %s has no choice \"%s\"; choices: %s", requested[i], name,
                                  eq + 1, list ? list : "");
        }
      json_object_set_new (selected, name, json_string (eq + 1));
    }

  const char *name;
  json_t *opt;
  json_object_foreach (opts, name, opt)
    {
      json_t *sel = json_object_get (selected, name);
      _cleanup_free_ char *found = NULL;
      int r;
      if (!sel && (r = detect_choice (root, name, opt, req, detected, &found, err)) < 0)
        return r;
      if (sel && json_object_get (opt, "detect"))
        json_object_set_new (detected, name, json_pack ("{s:s, s:s}", "source", "--option", "evidence", "chosen"));
      const char *choice = sel     ? json_string_value (sel)
                           : found ? found
                                   : json_string_value (json_object_get (opt, "default"));
      json_t *ch = json_object_get (json_object_get (opt, "choices"), choice);
      if (!ch && found)
        return avm_error_input (err,
                                "%s: options.%s: the images are %s (%s), which this profile has no choice for; "
                                "pass --option %s=CHOICE",
                                file, name, found,
                                json_string_value (json_object_get (json_object_get (detected, name), "evidence")),
                                name);
      if (!ch)
        return avm_error_input (err, "%s: options.%s.default: \"%s\" is not one of its choices", file, name, choice);
      if (!sel)
        json_object_set_new (selected, name, json_string (choice));
      json_t *patch = json_object_get (ch, "set");
      if (!patch)
        continue;
      if (json_object_get (patch, "options") || json_object_get (patch, "extends"))
        return avm_error_input (err, "%s: options.%s.choices.%s.set: may not change options or extends", file, name,
                                choice);
      _cleanup_free_ char *label = NULL;
      if (asprintf (&label, "%s (option %s=%s)", file, name, choice) < 0)
        return avm_error_sys (err, ENOMEM, "options");
      r = avm_schema_validate_fragment (patch, avm_profile_schema (), label, "", err);
      if (r < 0)
        return r;
    }
  /* Apply after checking all: patches see the profile as written.  */
  json_object_foreach (opts, name, opt)
    {
      const char *choice = json_string_value (json_object_get (selected, name));
      json_t *patch = json_object_get (json_object_get (json_object_get (opt, "choices"), choice), "set");
      if (patch)
        {
          json_incref (root);
          json_t *r = avm_json_merge_patch (root, patch);
          json_decref (r); /* same object as root */
        }
    }
  return 0;
}

/* ----------------------------------------------------------------------- */

int
avm_profile_load (const struct avm_profile_request *req, struct avm_profile **out, avm_error_t *err)
{
  _cleanup_profile_ struct avm_profile *p = calloc (1, sizeof *p);
  struct avm_argv chain = { 0 }, reals = { 0 };
  int r;

  if (!p)
    return avm_error_sys (err, ENOMEM, "loading profile");
  r = avm_profile_find (req->name, &p->path, err);
  if (r < 0)
    return r;
  if (profile_name_from_path (p->path, &p->name) < 0)
    return avm_error_sys (err, ENOMEM, "loading profile");

  r = resolve_file (p->path, NULL, &chain, &reals, &p->json, err);
  p->chain = avm_argv_steal (&chain);
  avm_argv_clear (&reals);
  if (r < 0)
    return r;

  p->options = json_object ();
  p->detected = json_object ();
  r = apply_options (p->json, p->path, req, p->options, p->detected, err);
  if (r < 0)
    return r;

  for (size_t i = 0; req->sets && req->sets[i]; i++)
    {
      r = avm_profile_apply_set (p->json, req->sets[i], err);
      if (r < 0)
        return r;
    }

  if (req->sets && req->sets[0] && !(p->sets = avm_strv_copy (req->sets)))
    return avm_error_sys (err, ENOMEM, "loading profile");
  r = avm_schema_validate (p->json, p->path, err);
  if (r < 0)
    {
      avm_profile_blame_sets (p, err);
      return r;
    }
  *out = steal_pointer (&p);
  return 0;
}

void
avm_profile_free (struct avm_profile *p)
{
  if (!p)
    return;
  free (p->name);
  free (p->path);
  avm_strv_free (p->chain);
  avm_strv_free (p->sets);
  json_decref (p->json);
  json_decref (p->options);
  json_decref (p->detected);
  free (p);
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

int
avm_profile_list (json_t **out, avm_error_t *err)
{
  _cleanup_strv_ char **dirs = avm_profile_dirs ();
  json_t *list = json_array ();
  json_t *seen = json_object ();

  for (size_t i = 0; dirs[i]; i++)
    {
      _cleanup_closedir_ DIR *d = opendir (dirs[i]);
      struct avm_argv names = { 0 };
      struct dirent *de;
      if (!d)
        continue;
      while ((de = readdir (d)))
        {
          size_t l = strlen (de->d_name);
          if (l > 5 && streq (de->d_name + l - 5, ".json") && de->d_name[0] != '.')
            avm_argv_push_take (&names, strndup (de->d_name, l - 5));
        }
      if (names.n)
        qsort (names.v, names.n, sizeof *names.v, cmp_str);
      for (size_t k = 0; k < names.n; k++)
        {
          _cleanup_free_ char *file = NULL;
          if (asprintf (&file, "%s/%s.json", dirs[i], names.v[k]) < 0)
            continue;
          json_t *e = json_object ();
          json_object_set_new (e, "name", json_string (names.v[k]));
          json_object_set_new (e, "path", json_string (file));
          json_t *first = json_object_get (seen, names.v[k]);
          if (first)
            json_object_set (e, "shadowed_by", first);
          else
            json_object_set_new (seen, names.v[k], json_string (file));
          /* Description: read from the file itself, errors shown as such
             (a FIFO or a huge file among the profiles is one of them).  */
          json_t *j = NULL;
          _cleanup_error_ avm_error_t lerr = NULL;
          (void) avm_json_load_file (file, AVM_PROFILE_MAX_SIZE, "a profile", &j, &lerr);
          json_t *desc = j ? json_object_get (j, "description") : NULL;
          if (!j)
            json_object_set_new (e, "error", json_string (lerr ? lerr->msg : "cannot read"));
          else if (json_is_string (desc))
            json_object_set (e, "description", desc);
          json_decref (j);
          json_array_append_new (list, e);
        }
      avm_argv_clear (&names);
    }
  json_decref (seen);
  (void) err;
  *out = list;
  return 0;
}
