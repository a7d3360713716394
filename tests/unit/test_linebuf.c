/* SPDX-License-Identifier: Apache-2.0 */
/* util/linebuf: the control socket's framing (also fuzzed: fuzz_framing).  */
#include "testutil.h"
#include "util/linebuf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void
expect_line (struct avm_linebuf *lb, const char *want)
{
  const char *line;
  size_t len;
  cr_assert_eq (avm_linebuf_next (lb, &line, &len), 1, "no line where \"%s\" was expected", want);
  cr_assert_eq (len, strlen (want));
  cr_assert (memcmp (line, want, len) == 0, "got \"%.*s\", expected \"%s\"", (int) len, line, want);
}

static void
expect_none (struct avm_linebuf *lb)
{
  const char *line;
  size_t len;
  cr_assert_eq (avm_linebuf_next (lb, &line, &len), 0);
}

Test (linebuf, lines_across_chunks_and_terminators)
{
  _cleanup_linebuf_ struct avm_linebuf lb = AVM_LINEBUF_INIT (100);
  cr_assert_eq (avm_linebuf_append (&lb, "{\"command\":", 11), 0);
  expect_none (&lb);
  cr_assert_eq (avm_linebuf_append (&lb, "\"status\"}\r", 10), 0);
  expect_none (&lb); /* "\r" alone ends nothing */
  cr_assert_eq (avm_linebuf_append (&lb, "\n\nnext\nrest", 11), 0);
  expect_line (&lb, "{\"command\":\"status\"}");
  expect_line (&lb, "");
  expect_line (&lb, "next");
  expect_none (&lb);
  cr_assert_eq (avm_linebuf_pending (&lb), 4);
  cr_assert_eq (avm_linebuf_append (&lb, "\n", 1), 0);
  expect_line (&lb, "rest");
  expect_none (&lb);
  cr_assert_eq (avm_linebuf_pending (&lb), 0);
}

Test (linebuf, limit_on_complete_and_incomplete_lines)
{
  _cleanup_linebuf_ struct avm_linebuf lb = AVM_LINEBUF_INIT (4);
  const char *line;
  size_t len;
  /* Exactly the limit, with "\r\n": accepted.  */
  cr_assert_eq (avm_linebuf_append (&lb, "abcd\r\n", 6), 0);
  expect_line (&lb, "abcd");
  /* One byte over, complete: refused.  */
  cr_assert_eq (avm_linebuf_append (&lb, "abcde\n", 6), 0);
  cr_assert_eq (avm_linebuf_next (&lb, &line, &len), -EMSGSIZE);

  _cleanup_linebuf_ struct avm_linebuf lb2 = AVM_LINEBUF_INIT (4);
  /* Incomplete: limit + 1 may still become "abcd\r\n"; limit + 2 cannot.  */
  cr_assert_eq (avm_linebuf_append (&lb2, "abcd\r", 5), 0);
  expect_none (&lb2);
  cr_assert_eq (avm_linebuf_append (&lb2, "x", 1), 0);
  cr_assert_eq (avm_linebuf_next (&lb2, &line, &len), -EMSGSIZE);
}

Test (linebuf, long_line_grows_and_consumed_lines_make_room)
{
  _cleanup_linebuf_ struct avm_linebuf lb = AVM_LINEBUF_INIT (16 * 1024 * 1024);
  size_t big = 3 * 1024 * 1024 + 17;
  char *text = malloc (big + 1);
  cr_assert (text);
  for (size_t i = 0; i < big; i++)
    text[i] = 'a' + (char) (i % 26);
  text[big] = '\n';
  /* In reads of 16 KiB, as the client does.  */
  for (size_t off = 0; off <= big; off += 16384)
    {
      char *tail;
      size_t n = big + 1 - off < 16384 ? big + 1 - off : 16384;
      cr_assert_eq (avm_linebuf_reserve (&lb, 16384, &tail), 0);
      memcpy (tail, text + off, n);
      avm_linebuf_commit (&lb, n);
    }
  const char *line;
  size_t len;
  cr_assert_eq (avm_linebuf_next (&lb, &line, &len), 1);
  cr_assert_eq (len, big);
  cr_assert (memcmp (line, text, big) == 0);
  size_t alloc = lb.alloc;
  /* Short lines afterwards reuse the buffer: it does not grow again.  */
  for (int i = 0; i < 10000; i++)
    {
      cr_assert_eq (avm_linebuf_append (&lb, "ok\npart", 7), 0);
      expect_line (&lb, "ok");
      cr_assert_eq (avm_linebuf_append (&lb, "ial\n", 4), 0);
      expect_line (&lb, "partial");
      expect_none (&lb);
    }
  cr_assert_eq (lb.alloc, alloc);
  free (text);
}
