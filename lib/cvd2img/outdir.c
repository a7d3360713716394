/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cvd2img's output directory: what the host package's tree replaces and
 * retires there (never a user's file), and the lock that keeps a second
 * conversion out.
 */
#include "cvd2img/internal.h"
#include "imageset/setcheck.h"
#include "profile/profile.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* A name a tree entry of the output directory may have: one component,
   not hidden (avm's temporaries and marker), not a file of the set.  */
static bool
entry_name_ok (const char *name, char *const *reserved)
{
  return *name && name[0] != '.' && !strchr (name, '/') && !avm_strv_contains (reserved, name);
}

/* The top-level entries of the output directory ODIR that an earlier
   conversion put there: the host package entries its manifest.json lists,
   and those the marker of an interrupted commit lists (which may have been
   put in place before the old manifest was replaced).  *LEGACY: ODIR has
   the manifest of an avm cvd2img that did not extract the host package
   (users unpacked it there themselves, to run it).  An unreadable or
   foreign manifest.json gives nothing: it is replaced anyway.  */
static int
previous_entries (const char *odir, char *const *reserved, struct avm_argv *prev, bool *legacy, avm_error_t *err)
{
  _cleanup_free_ char *mpath = avm_path_join (odir, "manifest.json"), *kpath = avm_path_join (odir, AVM_CVD2IMG_MARKER);
  _cleanup_error_ avm_error_t ignored = NULL, ignored2 = NULL;
  _cleanup_json_ json_t *m = NULL;
  _cleanup_free_ char *marker = NULL;
  size_t len;
  struct stat st;

  *legacy = false;
  if (!mpath || !kpath)
    return avm_error_sys (err, ENOMEM, "%s", odir);
  if (lstat (mpath, &st) == 0 && S_ISREG (st.st_mode)
      && avm_json_load_file (mpath, AVM_MANIFEST_MAX_SIZE, "a manifest", &m, &ignored) == 0)
    {
      json_t *host = json_object_get (m, "host_package"), *e;
      size_t i;
      *legacy = !host && json_object_get (m, "avm_version");
      json_array_foreach (json_object_get (host, "entries"), i, e)
        if (json_is_string (e) && entry_name_ok (json_string_value (e), reserved)
            && !avm_strv_contains (prev->v, json_string_value (e)))
          avm_argv_push (prev, json_string_value (e));
    }
  if (lstat (kpath, &st) == 0 && S_ISREG (st.st_mode)
      && avm_read_file (kpath, AVM_MANIFEST_MAX_SIZE, "a commit marker", &marker, &len, &ignored2) == 0)
    {
      /* Two lines of text, then one path per line.  */
      char *save = NULL;
      int line = 0;
      for (char *l = strtok_r (marker, "\n", &save); l; l = strtok_r (NULL, "\n", &save))
        if (++line > 2 && entry_name_ok (avm_path_base (l), reserved)
            && !avm_strv_contains (prev->v, avm_path_base (l)))
          avm_argv_push (prev, avm_path_base (l));
    }
  return 0;
}

/* Is PATH (an input of this conversion) inside ENTRY of the output
   directory, which the commit replaces or removes?  */
static bool
inside (const char *path, const char *entry)
{
  char a[PATH_MAX], b[PATH_MAX];
  if (!path || !realpath (path, a) || !realpath (entry, b))
    return false;
  size_t n = strlen (b);
  return strncmp (a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

/* What the host package's tree does to the output directory ODIR: its
   entries NEW replace those of the same names, which must be an earlier
   conversion's (or absent): never a directory of the user's that happens
   to be called bin or etc; and the earlier conversion's entries that NEW
   lacks go (*RETIRE).  Nothing this conversion reads may be inside what it
   replaces.  */
int
avm_cvd2img_plan_tree (const struct avm_cvd2img_request *req, const char *odir, char *const *new, char *const *reserved,
                       struct avm_argv *retire, avm_error_t *err)
{
  struct avm_argv prev = { 0 };
  bool legacy = false;
  int r = previous_entries (odir, reserved, &prev, &legacy, err);
  const char *inputs[] = { req->dir, req->zip, req->hostpkg, req->key, req->pubkey, req->profile };

  for (size_t i = 0; r == 0 && new[i]; i++)
    {
      _cleanup_free_ char *p = avm_path_join (odir, new[i]);
      struct stat st;
      if (!p)
        r = avm_error_sys (err, ENOMEM, "%s", odir);
      else if (!entry_name_ok (new[i], reserved))
        r = avm_error_input (err,
                             "%s: the host package has an entry %s at its top, the name of a file avm cvd2img "
                             "writes; refusing the host package",
                             req->hostpkg ? req->hostpkg : req->dir, new[i]);
      else if (lstat (p, &st) == 0 && !legacy && !avm_strv_contains (prev.v, new[i]))
        r = avm_error_input (err,
                             "%s is in the way: the host package's %s would replace it, and it is not from an "
                             "earlier avm cvd2img run (%s/manifest.json does not list it); move it away or "
                             "choose another output directory",
                             p, new[i], odir);
    }
  for (size_t i = 0; r == 0 && i < prev.n; i++)
    if (!avm_strv_contains (new, prev.v[i]))
      r = avm_argv_push (retire, prev.v[i]) < 0 ? avm_error_sys (err, ENOMEM, "%s", odir) : 0;

  /* Nothing read now may go with what the commit replaces.  */
  for (int pass = 0; pass < 2 && r == 0; pass++)
    for (char *const *e = pass ? retire->v : new; r == 0 && e &&*e; e++)
      {
        _cleanup_free_ char *p = avm_path_join (odir, *e);
        for (size_t k = 0; r == 0 && p && k < ARRAY_SIZE (inputs); k++)
          if (inputs[k] && inside (inputs[k], p))
            r = avm_error_input (err,
                                 "%s is inside %s, which this conversion replaces with the host package's; move "
                                 "it out of the output directory first",
                                 inputs[k], p);
      }
  avm_argv_clear (&prev);
  return r;
}

/* Hold the output directory for this conversion (flock on it): a second
   conversion into the same directory would have its temporaries removed
   as stale.  *FD stays open until the end.  A file system without flock
   works as before, without the cleanup of stale temporaries (*LOCKED
   false).  */
int
avm_cvd2img_lock_output (const char *odir, int *fd, bool *locked, avm_error_t *err)
{
  *locked = false;
  *fd = open (odir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (*fd < 0)
    return avm_error_sys (err, errno, "cannot open the output directory %s", odir);
  if (flock (*fd, LOCK_EX | LOCK_NB) == 0)
    *locked = true;
  else if (errno == EWOULDBLOCK)
    return avm_error_fail (err, EBUSY,
                           "%s: another conversion is writing there (it holds the directory's lock); "
                           "wait for it to finish",
                           odir);
  return 0;
}
