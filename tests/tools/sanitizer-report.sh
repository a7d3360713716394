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
n=0
for f in "$dir"/*; do
	[ -s "$f" ] || continue
	n=$((n + 1))
	echo "sanitizer: $f:" >&2
	sed -n '1,40p' "$f" >&2
done
if [ "$n" -gt 0 ]; then
	echo "sanitizer: $n process(es) reported errors or leaks (above; all in $dir)" >&2
	exit 1
fi
echo "sanitizer: no report from any process"
