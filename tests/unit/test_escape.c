/* SPDX-License-Identifier: Apache-2.0 */
/* What a terminal would act on, shown instead of sent (issue 15: ANSI
   escapes in paths and names were echoed raw in messages). */
#include "testutil.h"
#include "util/escape.h"
#include "util/quote.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define assert_contains(hay, needle) cr_assert (strstr ((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))

static void
check (const char *in, const char *want)
{
  char *got = avm_escape (in);
  cr_assert_str_eq (got, want, "escaping \"%s\"", in);
  cr_assert_eq (avm_needs_escape (in, strlen (in)), strcmp (in, want) != 0, "%s", in);
  free (got);
}

Test (escape, control_characters_and_bad_utf8)
{
  check ("plain/path.json", "plain/path.json");
  check ("/tmp/\033[31mred\033[0m", "/tmp/\\x1b[31mred\\x1b[0m");
  check ("tab\tand\nnewline", "tab\tand\nnewline"); /* kept: line structure */
  check ("bell\a cr\r del\x7f", "bell\\x07 cr\\x0d del\\x7f");
  check ("c1 csi \xc2\x9b"
         "31m",
         "c1 csi \\xc2\\x9b31m");                                                                   /* U+009B */
  check ("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"); /* UTF-8 */
  check ("nbsp \xc2\xa0", "nbsp \xc2\xa0");
  check ("bad \xff", "bad \\xff");
  check ("overlong \xc0\xaf", "overlong \\xc0\\xaf");
  check ("surrogate \xed\xa0\x80", "surrogate \\xed\\xa0\\x80");
  check ("cut \xe2\x82", "cut \\xe2\\x82");
  check ("past U+10FFFF \xf4\x90\x80\x80", "past U+10FFFF \\xf4\\x90\\x80\\x80");
}

Test (escape, shell_quote_never_carries_raw_controls)
{
  char *q = avm_shell_quote ("/img/\033]0;pwned\a/it's\\x");
  cr_assert_str_eq (q, "$'/img/\\x1b]0;pwned\\x07/it\\'s\\\\x'");
  free (q);
  q = avm_shell_quote ("plain it's");
  cr_assert_str_eq (q, "'plain it'\\''s'");
  free (q);
}
