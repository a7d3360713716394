/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cvd2img's result: freeing it, and the one-line summary of what was
 * written.
 */
#include "cvd2img/internal.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/strfmt.h"

#include <stdlib.h>
#include <string.h>

void
avm_cvd2img_result_clear (struct avm_cvd2img_result *res)
{
  json_decref (res->manifest);
  free (res->manifest_path);
  memset (res, 0, sizeof *res);
}

/* PATH by its name when it is in directory DIR (of LEN bytes, with its
   slash; 0: the current directory), else by its path.  */
static const char *
summary_name (const char *path, const char *dir, size_t len)
{
  const char *base = avm_path_base (path);
  return (size_t) (base - path) == len && strncmp (path, dir, len) == 0 ? base : path;
}

char *
avm_cvd2img_summary (const struct avm_cvd2img_result *res)
{
  static const char *const others[] = { "properties", "properties_virgl", "bootloader", "key", "android_info" };
  json_t *m = res->manifest, *sys = json_object_get (m, "system");
  const char *sys_path = json_string_value (json_object_get (sys, "file"));
  struct avm_argv items = { 0 };
  char size[32];

  if (!sys_path)
    return NULL;
  size_t dlen = (size_t) (avm_path_base (sys_path) - sys_path);
  avm_format_bytes (json_integer_value (json_object_get (sys, "size")), size, sizeof size);
  avm_argv_pushf (&items, "%s (%s, %zu partitions)", sys_path, size,
                  json_array_size (json_object_get (sys, "partitions")));
  for (size_t i = 0; i < ARRAY_SIZE (others); i++)
    {
      const char *f = json_string_value (json_object_get (json_object_get (m, others[i]), "file"));
      if (f)
        avm_argv_push (&items, summary_name (f, sys_path, dlen));
    }
  json_t *host = json_object_get (m, "host_package");
  if (res->host_tree && host)
    {
      avm_format_bytes (json_integer_value (json_object_get (host, "size")), size, sizeof size);
      avm_argv_pushf (&items, "the host package (%" JSON_INTEGER_FORMAT " entries, %s)",
                      json_integer_value (json_object_get (host, "count")), size);
    }
  if (res->manifest_path)
    avm_argv_push (&items, summary_name (res->manifest_path, sys_path, dlen));
  char *text = avm_strv_join_prose (items.v, items.n);
  avm_argv_clear (&items);
  return text;
}
