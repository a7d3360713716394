/* SPDX-License-Identifier: Apache-2.0 */
/* Byte-order accessors for on-disk formats (GPT and sparse are
   little-endian, AVB big-endian), independent of the host's order.  */
#pragma once

#include <stdint.h>

static inline void
put_le16 (uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t) v;
  p[1] = (uint8_t) (v >> 8);
}

static inline void
put_le32 (uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t) (v >> (8 * i));
}

static inline void
put_le64 (uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t) (v >> (8 * i));
}

static inline uint16_t
get_le16 (const uint8_t *p)
{
  return (uint16_t) (p[0] | p[1] << 8);
}

static inline uint32_t
get_le32 (const uint8_t *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static inline uint64_t
get_le64 (const uint8_t *p)
{
  return (uint64_t) get_le32 (p) | (uint64_t) get_le32 (p + 4) << 32;
}

static inline void
put_be32 (uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t) (v >> 24);
  p[1] = (uint8_t) (v >> 16);
  p[2] = (uint8_t) (v >> 8);
  p[3] = (uint8_t) v;
}

static inline void
put_be64 (uint8_t *p, uint64_t v)
{
  put_be32 (p, (uint32_t) (v >> 32));
  put_be32 (p + 4, (uint32_t) v);
}

static inline uint32_t
get_be32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static inline uint64_t
get_be64 (const uint8_t *p)
{
  return (uint64_t) get_be32 (p) << 32 | get_be32 (p + 4);
}
