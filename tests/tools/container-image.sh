#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Build containers/Containerfile once for the deploy tests (make
# container-image, which make check runs before the suite and the tests run
# themselves: a no-op while nothing the image copies has changed):
#
#   tests/tools/container-image.sh TAG STAMP
#
# builds the image as TAG and its build stage as TAG-build, and writes the
# image's ID to STAMP (the build's output to STAMP.log).  RUN steps cannot
# use an OCI runtime on some hosts (crun cannot set rlimits there):
# buildah's chroot isolation runs them without one; the base images must be
# in podman's storage (--pull=never; tests/tools/container-base.sh).
#
# Tagging the build stage keeps it and its package layer: the next build
# after a source change reuses both instead of installing the compilers
# again.  The images the two tags named before this build are dangling
# afterwards and are removed (with the layers only they used); nothing
# else: other trees' images and build caches are not this build's.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 TAG STAMP" >&2; exit 2; }
tag=$1 stamp=$2
stage=$tag-build
mkdir -p "$(dirname "$stamp")"
rm -f "$stamp"
log=$stamp.log

old=()
for t in "$stage" "$tag"; do
	old+=("$(podman image inspect --format '{{.Id}}' "$t" 2>/dev/null || true)")
done

build () {
	podman build --pull=never --isolation=chroot -q -f containers/Containerfile "$@" . 2>>"$log"
}
: >"$log"
start=$(date +%s)
if ! build --target build -t "$stage" >/dev/null || ! id=$(build -t "$tag"); then
	echo "container-image: podman build failed; the end of $log:" >&2
	tail -n 30 "$log" >&2
	exit 1
fi

dangling=$(podman images --quiet --no-trunc --filter dangling=true)
for o in "${old[@]}"; do
	if [ -n "$o" ] && [ "$o" != "$id" ] && grep -q "$o" <<<"$dangling"; then
		podman rmi "$o" >/dev/null 2>&1 || echo "container-image: could not remove the old image $o" >&2
	fi
done
echo "$id" >"$stamp.tmp"
mv "$stamp.tmp" "$stamp"
echo "container-image: $tag ($id) in $(($(date +%s) - start)) s"
