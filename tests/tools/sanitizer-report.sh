#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# After `make check-asan`: every report AddressSanitizer, LeakSanitizer or
# UndefinedBehaviorSanitizer wrote under DIR (ASAN_OPTIONS/UBSAN_OPTIONS
# log_path, one file per process) fails the run, and is shown.  A leak in a
# test worker does not fail its test (Criterion has already counted the test
# when the worker's LeakSanitizer runs at exit), and a report of an avm
# process started by a test can end up in a string the test throws away:
# the files are what no process can lose.
set -eu
dir=$1
# A file without an error is a warning (ASan's "ignoring requested
# __asan_handle_no_return" when a process switches stacks): named, not fatal.
n=0
for f in "$dir"/*; do
	[ -s "$f" ] || continue
	if ! grep -q -e 'ERROR: [A-Za-z]*Sanitizer' -e 'runtime error:' "$f"; then
		echo "sanitizer: warning only: $f: $(grep -m1 WARNING "$f" | sed 's/^==[0-9]*==//')" >&2
		continue
	fi
	n=$((n + 1))
	echo "sanitizer: $f:" >&2
	sed -n '1,40p' "$f" >&2
done
if [ "$n" -gt 0 ]; then
	echo "sanitizer: $n process(es) reported errors or leaks (above; all in $dir)" >&2
	exit 1
fi
echo "sanitizer: no report from any process"
