/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the fuzz targets (fuzz.h).  */
#include "fuzz.h"
#include "util/cleanup.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#ifndef AVM_FUZZ_SRCDIR
#define AVM_FUZZ_SRCDIR "."
#endif

static char tmpdir[64];

static void
remove_tmpdir (void)
{
  DIR *d = opendir (tmpdir);
  if (d)
    {
      struct dirent *de;
      while ((de = readdir (d)))
        if (strcmp (de->d_name, ".") && strcmp (de->d_name, ".."))
          unlinkat (dirfd (d), de->d_name, 0);
      closedir (d);
    }
  rmdir (tmpdir);
}

const char *
avm_fuzz_tmpdir (void)
{
  if (!tmpdir[0])
    {
      strcpy (tmpdir, "/tmp/avm-fuzz-XXXXXX");
      if (!mkdtemp (tmpdir))
        {
          perror ("avm-fuzz: mkdtemp");
          abort ();
        }
      atexit (remove_tmpdir);
    }
  return tmpdir;
}

char *
avm_fuzz_write (const char *name, const void *data, size_t size)
{
  char *path = NULL;
  if (asprintf (&path, "%s/%s", avm_fuzz_tmpdir (), name) < 0)
    abort ();
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  AVM_FUZZ_CHECK (fd >= 0);
  const uint8_t *p = data;
  while (size > 0)
    {
      ssize_t n = write (fd, p, size);
      AVM_FUZZ_CHECK (n > 0);
      p += n;
      size -= n;
    }
  close (fd);
  return path;
}

const char *
avm_fuzz_srcdir (void)
{
  const char *s = getenv ("AVM_SRCDIR");
  return s && *s ? s : AVM_FUZZ_SRCDIR;
}
