/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device profiles: lookup, inheritance, variants and overrides.
 *
 * A profile NAME is looked up as NAME.json in, in this order: the installed
 * profile directory, /etc/avm/profiles, $XDG_CONFIG_HOME/avm/profiles (the
 * first match wins); an argument containing '/' or ending in ".json" is a
 * path.  Resolution:
 *   1. each file is parsed (errors give line and column) and checked on its
 *      own (unknown keys, types), so a problem names the file that has it;
 *   2. `extends`: the child is a JSON merge patch (RFC 7386) over its parent;
 *   3. `options`: for every option the selected choice's `set` patch is
 *      merged (--option NAME=CHOICE, else the option's default);
 *   4. `--set PATH=VALUE` overrides, checked against the schema;
 *   5. the result is validated in full and defaults are filled in.
 */
#pragma once

#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h" /* avm_json_load_file, avm_json_merge_patch, avm_json_path */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct avm_profile
{
  char *name;       /* "aaos-x86_64" */
  char *path;       /* file of the profile itself */
  char **chain;     /* files from the profile up to its root ancestor */
  json_t *json;     /* resolved and validated, defaults filled in */
  json_t *options;  /* {"option": "choice"} as selected */
  json_t *detected; /* {"option": {"choice"?, "source", "evidence", "warning"?}}: options with a detector */
  char **sets;      /* the --set PATH=VALUE overrides applied, or NULL */
};

/* A detector for options with "detect" (the CLI wires lib/cuttlefish's):
   look at IMAGES and set *CHOICE (malloc'd; NULL when nothing tells) and
   *INFO ({"source","evidence","warning"?}, owned by the caller; may stay
   NULL).  */
typedef int (*avm_profile_detect_fn) (void *data, const char *detector, const char *images, char **choice,
                                      json_t **info, avm_error_t *err);

struct avm_profile_request
{
  const char *name;             /* name or path */
  char *const *options;         /* "NAME=CHOICE" */
  char *const *sets;            /* "PATH=VALUE" */
  const char *images;           /* --images, for detectors (else the profile's paths.images) */
  avm_profile_detect_fn detect; /* NULL: options with "detect" take their default */
  void *detect_data;
};

int avm_profile_load (const struct avm_profile_request *req, struct avm_profile **out, avm_error_t *err);
void avm_profile_free (struct avm_profile *p);
DEFINE_TRIVIAL_CLEANUP_FUNC (struct avm_profile *, avm_profile_free)
#define _cleanup_profile_ __attribute__ ((cleanup (avm_profile_freep)))

/* The profile search directories in lookup order (NULL-terminated, malloc'd).  */
char **avm_profile_dirs (void);
/* The installed data directory (profiles/ lives below it), malloc'd.  */
char *avm_data_dir (void);

/* Locate NAME (see above).  */
int avm_profile_find (const char *name, char **path, avm_error_t *err);

/* Every profile found: [{"name","path","description","shadowed_by"?}]  */
int avm_profile_list (json_t **out, avm_error_t *err);

/* Apply one "PATH=VALUE" override to ROOT, checking PATH and VALUE against
   the schema.  Exposed for tests.  */
int avm_profile_apply_set (json_t *root, const char *assignment, avm_error_t *err);

/* A profile is a regular file of at most this many bytes (the shipped ones
   are a few KiB): a disk image or a device given by mistake is refused
   before it is read.  */
#define AVM_PROFILE_MAX_SIZE (1u << 20)
/* manifest.json (written by avm cvd2img, about 10 KiB; read by inspect, by
   the plan's image-set check and by the release detection) is read only up
   to this size.  */
#define AVM_MANIFEST_MAX_SIZE (1u << 20)

/* Problems found in P once its --set overrides were applied name them:
   each line of ERR "P->path: KEY: problem" becomes "--set PATH=VALUE: KEY:
   problem" when KEY is (in, or holds) the PATH of an override, else
   "P->path (with --set PATH=VALUE, ...): KEY: problem".  Nothing changes
   without overrides.  Used on the final validation and by the plan.  */
void avm_profile_blame_sets (const struct avm_profile *p, avm_error_t *err);
