#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Make the base images containers/Containerfile builds FROM, when no
# container registry is reachable (only Debian's mirror is):
#
#   tests/tools/container-base.sh
#
# debootstraps Debian 12 (minbase) from deb.debian.org and imports it into
# podman's local storage as docker.io/library/debian:bookworm and
# docker.io/library/debian:bookworm-slim (the same tree under both names: the
# slim image only drops documentation).  Does nothing when both exist.
# Then `podman build --pull=never --isolation=chroot -f containers/Containerfile .`
# builds without a registry.
set -euo pipefail

mirror=${AVM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
images=(docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim)

have_all=1
for i in "${images[@]}"; do
	podman image exists "$i" || have_all=0
done
[ "$have_all" = 1 ] && exit 0

command -v debootstrap >/dev/null || { echo "container-base: no debootstrap (install debootstrap)" >&2; exit 1; }
tmp=$(mktemp -d /var/tmp/avm-bookworm.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
debootstrap --variant=minbase bookworm "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1 \
	|| { echo "container-base: debootstrap failed: $(tail -n 1 "$tmp/debootstrap.log")" >&2; exit 1; }
# As in Debian's images: the sources in deb822 form, no package caches.
rm -f "$tmp/root/etc/apt/sources.list"
mkdir -p "$tmp/root/etc/apt/sources.list.d"
printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
	"$mirror" >"$tmp/root/etc/apt/sources.list.d/debian.sources"
rm -rf "$tmp"/root/var/cache/apt/archives/*.deb "$tmp"/root/var/lib/apt/lists/*
tar --numeric-owner -C "$tmp/root" -c . >"$tmp/rootfs.tar"
id=$(podman import --change 'CMD ["bash"]' "$tmp/rootfs.tar")
for i in "${images[@]}"; do
	podman tag "$id" "$i"
done
echo "container-base: ${images[*]} imported"
