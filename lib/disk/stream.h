/* SPDX-License-Identifier: Apache-2.0 */
/* A sequential byte source: a file, or an entry of an archive being read. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct avm_stream
{
  /* Read up to LEN bytes; returns the count (0 at end) or -errno.  */
  ssize_t (*read) (void *ctx, void *buf, size_t len);
  void *ctx;
  const char *name; /* for messages: "super.img" or "img.zip:super.img" */
  uint64_t pos;     /* bytes consumed so far (maintained by avm_stream_read) */
  uint64_t size;    /* total size when known, else UINT64_MAX */
};

/* Read exactly LEN bytes (fewer only at end of stream: returns the count).  */
ssize_t avm_stream_read (struct avm_stream *s, void *buf, size_t len);
/* Skip LEN bytes; -EIO if the stream ends first.  */
int avm_stream_skip (struct avm_stream *s, uint64_t len);
/* A stream over a file descriptor (not owned).  */
void avm_stream_from_fd (struct avm_stream *s, int *fd, const char *name, uint64_t size);
