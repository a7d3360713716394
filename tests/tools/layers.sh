#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The module graph of lib/ is one-way: each directory may include only the
# modules listed for it here (and itself); cmd/ may include any.  `make
# lint` runs this; a new dependency is a decision, written down below.
# The order is the layering, lowest first (man/avm-architecture.7).
set -eu
cd "${1:-.}"
allowed() {
	case $1 in
	util) echo "" ;;
	profile | qemu | host | helper | disk) echo "util" ;;
	cuttlefish) echo "util profile" ;;
	imageset) echo "util profile cuttlefish disk" ;;
	plan) echo "util profile qemu host helper cuttlefish imageset disk" ;;
	cvd2img) echo "util profile cuttlefish disk imageset plan" ;;
	snapshot) echo "util qemu plan" ;;
	supervise) echo "util qemu disk plan snapshot" ;;
	kube) echo "util profile plan supervise" ;;
	compat) echo "util profile plan" ;;
	*) echo "?" ;;
	esac
}
bad=0
for dir in lib/*/; do
	mod=$(basename "$dir")
	ok=$(allowed "$mod")
	if [ "$ok" = "?" ]; then
		echo "layers: lib/$mod/ is not in tests/tools/layers.sh: add it with the modules it may use" >&2
		bad=1
		continue
	fi
	for f in "$dir"*.c "$dir"*.h; do
		[ -e "$f" ] || continue
		grep -n '^#include "[a-z0-9_]*/' "$f" | while IFS= read -r line; do
			dep=${line#*#include \"}
			dep=${dep%%/*}
			[ "$dep" = "$mod" ] && continue
			case " $ok " in
			*" $dep "*) ;;
			*) echo "layers: $f:${line%%:*}: lib/$mod/ may not include $dep/ (allowed: ${ok:-none})" ;;
			esac
		done
	done
done >"${TMPDIR:-/tmp}/layers.$$"
if [ -s "${TMPDIR:-/tmp}/layers.$$" ]; then
	cat "${TMPDIR:-/tmp}/layers.$$" >&2
	bad=1
fi
rm -f "${TMPDIR:-/tmp}/layers.$$"
exit $bad
