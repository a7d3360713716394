#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Download (never install) the arm64 demo guest's Debian packages: a kernel
# linux-image-VER-arm64 and busybox-static, both :arm64 (tests/demo/README.md).
#
#   tests/demo/fetch-arm64.sh DIR [AMD64_KVER]
#
# The .debs are kept in DIR (a cache: when the wanted ones are there, the
# network is not used).  The kernel is the arm64 build of AMD64_KVER
# (6.1.0-57-amd64 -> linux-image-6.1.0-57-arm64) when the archive has it,
# else the one Debian's linux-image-arm64 points to (the newest).  Uses the
# system's apt sources and lists: arm64 must be a dpkg architecture
# (tests/deps.sh adds it; as root this script does too) and its package lists
# present (fetched here with apt-get update when root and missing).
#
# Writes DIR/selected ("kernel FILE" and "busybox FILE" lines), only when it
# changes, for make to depend on.  Exit 0 with the .debs in DIR; 1 with a
# one-line reason on stderr, also written to DIR/unavailable (the tests skip
# with it), when they cannot be had.
set -eu

dir=${1:?usage: fetch-arm64.sh DIR [AMD64_KVER]}
amd64_kver=${2:-}
PATH="$PATH:/sbin:/usr/sbin"
mkdir -p "$dir"
rm -f "$dir/unavailable"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail () {
  echo "demo-image-arm64: $*" >&2
  echo "$*" >"$dir/unavailable"
  exit 1
}

# The first error line of an apt log (else its first warning, else its end).
apt_err () {
  grep -m 1 '^E:' "$1" || grep -m 1 '^W:' "$1" || tail -n 1 "$1"
}

# The newest cached .deb of package $1 (name_version_arm64.deb), or nothing.
cached () {
  # shellcheck disable=SC2012 # ls -v: version order; Debian's names are plain
  ls -1v "$dir/$1"_*_arm64.deb 2>/dev/null | tail -n 1
}

# Record the selection; touch DIR/selected only when it changes.
select_debs () {
  printf 'kernel %s\nbusybox %s\n' "${1##*/}" "${2##*/}" >"$tmp/selected"
  cmp -s "$tmp/selected" "$dir/selected" 2>/dev/null || mv "$tmp/selected" "$dir/selected"
  # Older downloads are not needed any more.
  for f in "$dir"/*.deb; do
    [ "$f" = "$1" ] || [ "$f" = "$2" ] || rm -f "$f"
  done
  exit 0
}

want=""
case $amd64_kver in
  *-amd64) want=linux-image-${amd64_kver%-amd64}-arm64 ;;
esac

# Cached: no network.
bb=$(cached busybox-static)
if [ -n "$want" ] && [ -n "$bb" ] && [ -n "$(cached "$want")" ]; then
  select_debs "$(cached "$want")" "$bb"
fi

# From here on apt and the registry are needed.  When they fail, the cached
# packages of an earlier kernel (if any) do.
unavailable () {
  # shellcheck disable=SC2012 # as in cached
  k=$(ls -1v "$dir"/linux-image-*_arm64.deb 2>/dev/null | tail -n 1)
  if [ -n "$k" ] && [ -n "$bb" ]; then
    echo "demo-image-arm64: $*; using the cached ${k##*/}" >&2
    select_debs "$k" "$bb"
  fi
  fail "$*"
}

command -v apt-get >/dev/null || unavailable "no apt-get (Debian's package tools download the arm64 packages)"
root=false
[ "$(id -u)" = 0 ] && root=true

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $root || unavailable "arm64 is not a dpkg architecture here: run sh tests/deps.sh (it adds it with sudo)"
  dpkg --add-architecture arm64 || unavailable "dpkg --add-architecture arm64 failed"
fi

# Is there an arm64 candidate for package $1?
available () {
  apt-cache policy "$1:arm64" 2>/dev/null | grep -q '^  Candidate: [^(]'
}

if ! available busybox-static; then
  $root || unavailable "no arm64 package lists: run apt-get update as root (or sh tests/deps.sh)"
  echo "demo-image-arm64: apt-get update (arm64 package lists)" >&2
  apt-get update -q >"$tmp/update.log" 2>&1 || unavailable "apt-get update failed: $(apt_err "$tmp/update.log")"
  available busybox-static \
    || unavailable "no arm64 package lists after apt-get update (registry unreachable?): $(apt_err "$tmp/update.log")"
fi

# The kernel: the arm64 build of this machine's kernel, else the newest.
kernel=""
if [ -n "$want" ] && available "$want"; then
  kernel=$want
else
  kernel=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null \
    | sed -n 's/^ *Depends: \(linux-image-[^:]*-arm64\)\(:arm64\)\{0,1\}$/\1/p' | head -n 1)
  [ -n "$kernel" ] || unavailable "no arm64 kernel package (linux-image-arm64:arm64) in the package lists"
  [ -z "$want" ] || echo "demo-image-arm64: no $want in the archive; using $kernel" >&2
fi
if [ -n "$(cached "$kernel")" ] && [ -n "$bb" ]; then
  select_debs "$(cached "$kernel")" "$bb"
fi

# apt downloads as the unprivileged _apt user when it can.
mkdir -p "$tmp/deb"
if $root && id _apt >/dev/null 2>&1; then
  chmod 0755 "$tmp"
  chown _apt "$tmp/deb"
fi
echo "demo-image-arm64: downloading $kernel:arm64 busybox-static:arm64" >&2
(cd "$tmp/deb" && apt-get download -q -o Acquire::Retries=3 "$kernel:arm64" busybox-static:arm64) >"$tmp/download.log" 2>&1 \
  || unavailable "apt-get download $kernel:arm64 busybox-static:arm64 failed: $(apt_err "$tmp/download.log")"
for f in "$tmp"/deb/*.deb; do
  [ -f "$f" ] || fail "apt-get download left no .deb"
  mv "$f" "$dir/${f##*/}"
done
# apt-get download names files with the version's epoch escaped (1%3a...).
[ -n "$(cached "$kernel")" ] || fail "apt-get download left no $kernel .deb"
[ -n "$(cached busybox-static)" ] || fail "apt-get download left no busybox-static .deb"
select_debs "$(cached "$kernel")" "$(cached busybox-static)"
