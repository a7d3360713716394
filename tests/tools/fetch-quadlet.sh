#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Fetch podman's quadlet generator from Debian 13 (trixie) for the deploy tests.
#
#   tests/tools/fetch-quadlet.sh DEST
#
# Debian 12's podman 4.3 has no quadlet (it came with podman 4.4).  This
# downloads trixie's podman .deb with a private apt configuration (its own
# sources list, lists and cache under a temporary directory: the system's apt
# sources and state are not touched; Release files are checked against the
# Debian archive keyring as usual) and unpacks only usr/libexec/podman/quadlet,
# which needs only libc, into DEST.  Does nothing when DEST already exists.
# Exit 0 with DEST in place, 1 (and a one-line reason on stderr, also written
# to DEST.failed for the test to quote) when it cannot be fetched.
set -euo pipefail

dest=${1:?usage: fetch-quadlet.sh DEST}
[ -x "$dest" ] && exit 0

suite=${AVM_QUADLET_SUITE:-trixie}
mirror=${AVM_QUADLET_MIRROR:-http://deb.debian.org/debian}
keyring=${AVM_QUADLET_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}

mkdir -p "$(dirname "$dest")"
rm -f "$dest.failed"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The first error line of an apt log (else its first warning).
apt_err() {
	grep -m 1 '^E:' "$1" || grep -m 1 '^W:' "$1" || tail -n 1 "$1"
}

fail() {
	echo "fetch-quadlet: $*" >&2
	echo "$*" >"$dest.failed"
	exit 1
}

[ -r "$keyring" ] || fail "no Debian archive keyring at $keyring (install debian-archive-keyring)"

mkdir -p "$tmp/etc/sources.list.d" "$tmp/etc/preferences.d" "$tmp/lists/partial" \
	"$tmp/cache/archives/partial" "$tmp/deb"
echo "deb [signed-by=$keyring] $mirror $suite main" >"$tmp/etc/sources.list"
# apt downloads as the unprivileged _apt user when it can.
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then
	chmod 0755 "$tmp"
	chown _apt "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/deb"
fi
: >"$tmp/status"
apt_opts=(
	-o "Dir::Etc::SourceList=$tmp/etc/sources.list"
	-o "Dir::Etc::SourceParts=$tmp/etc/sources.list.d"
	-o "Dir::Etc::Preferences=$tmp/etc/preferences"
	-o "Dir::Etc::PreferencesParts=$tmp/etc/preferences.d"
	-o "Dir::State::Lists=$tmp/lists"
	-o "Dir::State::status=$tmp/status"
	-o "Dir::Cache=$tmp/cache"
	-o "Debug::NoLocking=true"
	-o "APT::Get::List-Cleanup=false"
	-o "Acquire::Languages=none"
	-o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
	-q
)

apt-get "${apt_opts[@]}" update >"$tmp/update.log" 2>&1 \
	|| fail "apt-get update of $suite failed: $(apt_err "$tmp/update.log")"
# apt-get update exits 0 when the mirror cannot be reached: look for the index.
ls "$tmp"/lists/*_Packages* >/dev/null 2>&1 \
	|| fail "no package index for $suite from $mirror: $(apt_err "$tmp/update.log")"
(cd "$tmp/deb" && apt-get "${apt_opts[@]}" download podman) >"$tmp/download.log" 2>&1 \
	|| fail "apt-get download podman ($suite) failed: $(apt_err "$tmp/download.log")"
deb=$(ls "$tmp"/deb/podman_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || fail "apt-get download podman ($suite) left no .deb"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./usr/libexec/podman/quadlet \
	|| fail "$(basename "$deb") has no usr/libexec/podman/quadlet"
install -m 0755 "$tmp/usr/libexec/podman/quadlet" "$dest.tmp"
mv "$dest.tmp" "$dest"
echo "fetch-quadlet: $dest from $(basename "$deb")"
