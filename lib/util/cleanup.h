/* SPDX-License-Identifier: Apache-2.0 */
/* Resource cleanup attributes, in the manner of systemd and crun. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <errno.h>
#include <dirent.h>

static inline void
avm_freep (void *p)
{
  free (*(void **) p);
}
static inline void
avm_closep (int *fd)
{
  if (*fd >= 0)
    {
      int saved = errno;
      close (*fd);
      errno = saved;
    }
}
static inline void
avm_fclosep (FILE **f)
{
  if (*f)
    fclose (*f);
}
static inline void
avm_closedirp (DIR **d)
{
  if (*d)
    closedir (*d);
}
void avm_strv_freep (char ***v);

#define _cleanup_(f) __attribute__ ((cleanup (f)))

/* Define FUNCp (TYPE *p), which calls FUNC (*p) unless *p is NULL: the
   function for _cleanup_ of a TYPE released by FUNC, as systemd's macro of
   the same name.  It does not reset *p (cleanup runs as the variable goes
   out of scope); a FUNCp also called by hand must be written out.  */
/* clang-format off */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
  static inline void func##p (type *p) { if (*p) func (*p); }
/* clang-format on */
#define _cleanup_free_ _cleanup_ (avm_freep)
#define _cleanup_close_ _cleanup_ (avm_closep)
#define _cleanup_fclose_ _cleanup_ (avm_fclosep)
#define _cleanup_closedir_ _cleanup_ (avm_closedirp)
#define _cleanup_strv_ _cleanup_ (avm_strv_freep)

/* Hand ownership out of a cleanup variable. */
/* clang-format off */
#define steal_pointer(pp) ({ __typeof__ (*(pp)) _p = *(pp); *(pp) = NULL; _p; })
#define steal_fd(fdp) ({ int _fd = *(fdp); *(fdp) = -1; _fd; })
/* clang-format on */

#define ARRAY_SIZE(a) (sizeof (a) / sizeof ((a)[0]))
#define streq(a, b) (strcmp ((a), (b)) == 0)
