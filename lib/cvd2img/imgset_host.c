/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host package of a Cuttlefish image set as a tree: counted (a
 * directory input; the tarball was counted when the set was opened) and
 * written into the output directory under cvd2img/hosttree.h's policy.
 */
#include "cvd2img/imgset.h"
#include "cvd2img/hosttree.h"
#include "cvd2img/imgset_internal.h"
#include "util/cleanup.h"

#include "disk/lazy_archive.h"
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The host package's tree.  */

int
avm_imgset_host_scan (struct avm_imgset *s, const char *out_dir, avm_error_t *err)
{
  struct stat st;
  if (!s->dir)
    return 0; /* the tarball was checked and counted when the set was opened */
  s->skip_dev = 0;
  s->skip_ino = 0;
  if (out_dir && stat (out_dir, &st) == 0 && S_ISDIR (st.st_mode))
    {
      s->skip_dev = st.st_dev;
      s->skip_ino = st.st_ino;
    }
  avm_host_tally_clear (&s->tally);
  int r = avm_host_dir_scan (s->dir, s->skip_dev, s->skip_ino, &s->tally, err);
  s->tally_done = r == 0;
  return r;
}

char *const *
avm_imgset_host_entries (const struct avm_imgset *s)
{
  static char *const none[] = { NULL };
  return s->tally_done && s->tally.top.v ? s->tally.top.v : none;
}

uint64_t
avm_imgset_host_bytes (const struct avm_imgset *s)
{
  return s->tally.bytes;
}

size_t
avm_imgset_host_count (const struct avm_imgset *s)
{
  return s->tally.entries;
}

/* The current entry of the host package A, a regular file, into W.  */
static int
extract_file (struct archive *a, const char *archive, struct archive_entry *e, const char *name,
              struct avm_host_writer *w, avm_error_t *err)
{
  int fd = -1;
  int r = avm_host_put_file (w, name, &fd, err);
  if (r < 0)
    return r;
  uint64_t size
      = sym_archive_entry_size_is_set (e) && sym_archive_entry_size (e) > 0 ? (uint64_t) sym_archive_entry_size (e) : 0;
  for (;;)
    {
      const void *buf;
      size_t len;
      la_int64_t off;
      int ar = sym_archive_read_data_block (a, &buf, &len, &off);
      if (ar == ARCHIVE_EOF)
        break;
      if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN)
        {
          close (fd);
          return avm_error_input (err, "%s: entry %s: %s", archive, name, sym_archive_error_string (a) ?: "unreadable");
        }
      if (off < 0 || (uint64_t) off > size || len > size - (uint64_t) off)
        {
          close (fd);
          return avm_error_input (err, "%s: entry %s: data beyond its size (%" PRIu64 " bytes)", archive, name, size);
        }
      for (size_t done = 0; done < len;)
        {
          ssize_t n = pwrite (fd, (const char *) buf + done, len - done, (off_t) ((uint64_t) off + done));
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            {
              int e2 = n < 0 ? errno : ENOSPC;
              close (fd);
              return avm_error_sys (err, e2, "%s: entry %s: cannot write it", w->label, name);
            }
          done += (size_t) n;
        }
      if ((r = avm_host_wrote (w, name, len, err)) < 0)
        {
          close (fd);
          return r;
        }
    }
  return avm_host_file_done (w, name, fd, size, (mode_t) sym_archive_entry_perm (e), err);
}

/* The whole host package into W, every entry checked again (the file may
   have changed since it was scanned).  */
static int
extract_hostpkg (struct avm_imgset *s, struct avm_host_writer *w, avm_error_t *err)
{
  struct archive *a = NULL;
  struct archive_entry *e;
  struct avm_host_tally t = { 0 };
  _cleanup_close_ int fd = -1;
  int r = avm_imgset_open_archive (s->hostpkg, false, &a, &fd, err);
  if (r < 0)
    return r;
  while ((r = avm_imgset_next_entry (a, s->hostpkg, &e, &t, err)) > 0)
    {
      const char *name = avm_imgset_clean_name (sym_archive_entry_pathname (e));
      const char *hard = sym_archive_entry_hardlink (e);
      int type = (int) sym_archive_entry_filetype (e);
      if (avm_host_is_root (name))
        continue;
      if (hard)
        r = avm_host_put_hardlink (w, name, avm_imgset_clean_name (hard), err);
      else if (type == AE_IFDIR)
        r = avm_host_put_dir (w, name, (mode_t) sym_archive_entry_perm (e), err);
      else if (type == AE_IFLNK)
        r = avm_host_put_symlink (w, name, sym_archive_entry_symlink (e), err);
      else
        r = extract_file (a, s->hostpkg, e, name, w, err);
      if (r < 0)
        break;
    }
  sym_archive_read_free (a);
  avm_host_tally_clear (&t);
  return r;
}

int
avm_imgset_host_write (struct avm_imgset *s, int root, avm_progress_fn fn, void *data, avm_error_t *err)
{
  struct avm_host_writer w;
  int r;
  if (!s->tally_done)
    return avm_error_fail (err, EINVAL, "%s: the host package was not scanned", avm_imgset_label (s));
  avm_host_writer_init (&w, root, s->dir ? s->dir : s->hostpkg);
  w.progress = fn;
  w.progress_data = data;
  r = s->dir ? avm_host_dir_copy (s->dir, s->skip_dev, s->skip_ino, s->tally.top.v, &w, err)
             : extract_hostpkg (s, &w, err);
  if (r >= 0)
    r = avm_host_writer_finish (&w, err);
  avm_host_writer_clear (&w);
  return r;
}
