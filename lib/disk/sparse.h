/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Android sparse images (libsparse format; see ../shared/reference/formats.md
 * section 2): RAW, FILL, DONT_CARE and CRC32 chunks, every bound checked,
 * expanded straight into an output (DONT_CARE and zero fills become holes).
 * Streaming: memory use does not depend on the image size.
 */
#pragma once

#include "disk/output.h"
#include "disk/stream.h"
#include "util/error.h"

#include <stdbool.h>
#include <stdint.h>

#define AVM_SPARSE_MAGIC 0xed26ff3aU

struct avm_sparse_header
{
  uint16_t major, minor, file_hdr_sz, chunk_hdr_sz;
  uint32_t blk_sz, total_blks, total_chunks, image_checksum;
  /* Set by a caller that knows the image has no CRC32 chunk (and the header
     no checksum): the running CRC is then not computed (it is a third of
     the CPU time of an expansion).  avm_sparse_scan_crc tells.  */
  bool crc_unneeded;
};

/* Does BUF (at least 4 bytes) start with the sparse magic?  */
bool avm_sparse_magic (const void *buf);

/* Read and check the file header from S (consumes file_hdr_sz bytes).
   Errors name the stream and the offset ("super.img: offset 4: unsupported
   sparse major version 2").  */
int avm_sparse_read_header (struct avm_stream *s, struct avm_sparse_header *h, avm_error_t *err);

/* Check the 28-byte file header at BUF, for a caller that has already read
   it from a stream named NAME starting at offset 0 (to look at the magic);
   it then skips the FILE_HDR_SZ - 28 extra bytes itself.  Same checks and
   messages as avm_sparse_read_header.  */
int avm_sparse_parse_header (const void *buf, const char *name, struct avm_sparse_header *h, avm_error_t *err);

/* Walk the chunk headers of a sparse file FD (header H already read) and
   say whether a CRC32 chunk or a header checksum needs the running CRC.
   Anything odd answers true: the expansion then reports it.  */
bool avm_sparse_needs_crc (int fd, const struct avm_sparse_header *h);

/* Walk the chunks of S (its file header H read), skipping their data:
   every chunk header is checked as avm_sparse_expand checks it, its data
   must be there, and the chunks must cover the blocks the header says
   (what avm_sparse_size promises).  No CRC is computed.  For a caller
   that must know whether an image's size can be believed before
   expanding it: a header that says 16 TiB over a few chunks is damaged
   ("super.img: offset 8236: the 3 chunks cover 2048 blocks, the header
   says 4294967295 (of 4096 bytes: 16.0 TiB, at offset 16): the sparse
   image is damaged").  Errors are bad input (exit code 2).  */
int avm_sparse_check (struct avm_stream *s, const struct avm_sparse_header *h, avm_error_t *err);

/* Expanded size in bytes.  */
uint64_t avm_sparse_size (const struct avm_sparse_header *h);

/* Expand the chunks of S into O at BASE.  LIMIT is the room available
   (partition size): an image that expands beyond it is an error.
   Offsets in messages are S->pos values, offsets in the sparse file when the
   stream starts at its beginning; chunks are numbered from 1, as simg_dump
   does ("super.img: offset 123456: chunk 7: RAW chunk of 10 blocks has 4096
   bytes of data, expected 40960").  Format errors are bad input (exit code 2).
   The running CRC32 of the expanded data (zlib's, DONT_CARE counting as
   zeros; zero and fill runs are folded in arithmetically, not byte by byte)
   is checked against every CRC32 chunk and, when it is not 0, against the
   header's image_checksum at the end.  Data after the last chunk is an
   error.  The range [BASE, BASE + size) of O is expected to be unwritten:
   DONT_CARE and zero FILL chunks are left as holes.  */
int avm_sparse_expand (struct avm_stream *s, const struct avm_sparse_header *h, struct avm_out *o, uint64_t base,
                       uint64_t limit, avm_error_t *err);
