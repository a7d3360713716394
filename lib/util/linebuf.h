/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Newline-delimited input that arrives in chunks of any size: the framing
 * of the control socket, its requests on the server side and its reply on
 * the client side.  Lines end with "\n" or "\r\n"; a line longer than
 * MAX_LINE bytes (without its terminator) is refused as soon as that many
 * bytes are pending, complete or not, so a peer cannot make the buffer
 * grow without bound.  Each byte is scanned for a newline once.
 */
#pragma once

#include <stddef.h>

struct avm_linebuf
{
  char *buf;
  size_t pos, len, alloc; /* pending input is buf[pos, len) */
  size_t scanned;         /* buf[pos, scanned) holds no newline */
  size_t max_line;
};

/* clang-format off */
#define AVM_LINEBUF_INIT(max) { .max_line = (max) }
/* clang-format on */

/* Room for at least N more bytes: *TAIL is where they go.  -ENOMEM.  */
int avm_linebuf_reserve (struct avm_linebuf *lb, size_t n, char **tail);
/* N bytes were written at the tail.  */
void avm_linebuf_commit (struct avm_linebuf *lb, size_t n);
/* Append N bytes (reserve, copy, commit).  -ENOMEM.  */
int avm_linebuf_append (struct avm_linebuf *lb, const void *data, size_t n);

/* The next complete line: 1, with *LINE and *LEN (terminator removed; the
   bytes stay valid until the next call); 0 when no line is complete yet;
   -EMSGSIZE when the next line is longer than max_line.  */
int avm_linebuf_next (struct avm_linebuf *lb, const char **line, size_t *len);

/* Bytes of an incomplete line pending.  */
size_t avm_linebuf_pending (const struct avm_linebuf *lb);

void avm_linebuf_free (struct avm_linebuf *lb);
#define _cleanup_linebuf_ __attribute__ ((cleanup (avm_linebuf_free)))
