#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Sum up one suite's logs of `make check-valgrind` (one per traced process):
# how many processes ran, which had memory errors or leaks (with their log),
# whether the suite itself passed.  A process killed on purpose by a test
# (SIGKILL) writes no summary: counted, not an error.
set -eu
dir=$1
total=0 clean=0 killed=0 bad=0
for log in "$dir"/*.log; do
	[ -e "$log" ] || continue
	total=$((total + 1))
	summary=$(grep -h 'ERROR SUMMARY:' "$log" | tail -n 1 || true)
	# valgrind itself failing to run the program is no kill: an error.
	[ -n "$summary" ] || summary=$(grep -h -m1 'FATAL:' "$log" || true)
	case $summary in
	*"ERROR SUMMARY: 0 errors"*) clean=$((clean + 1)) ;;
	"") killed=$((killed + 1)) ;;
	*)
		bad=$((bad + 1))
		cmd=$(grep -h -m1 'Command:' "$log" | sed 's/^==[0-9]*== //')
		echo "  valgrind: $log: $cmd" >&2
		echo "    $summary" | sed 's/==[0-9]*== //' >&2
		;;
	esac
done
status=$(cat "$dir/suite.status" 2>/dev/null || echo '?')
tests=$(sed -n 's/.*Synthesis: \(.*\)/\1/p' "$dir/suite.out" 2>/dev/null | tail -n 1)
echo "$total processes: $clean clean, $bad with errors or leaks, $killed without a summary (killed); suite exit $status: $tests"
if [ "$status" != 0 ]; then
	grep -E '^\[(FAIL|----)\]' "$dir/suite.out" | head -n 20 >&2 || true
fi
[ "$bad" -eq 0 ] && [ "$status" = 0 ]
