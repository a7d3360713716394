#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Install the Debian 12 packages avm needs to build, test and run its demo,
# only those that are missing.  Uses sudo when not root.
set -eu

PACKAGES="
make gcc pkg-config
libjansson-dev libsystemd-dev libudev-dev libarchive-dev libssl-dev zlib1g-dev
libcriterion-dev
android-sdk-libsparse-utils gdisk fdisk mkbootimg openssl zip unzip
busybox-static cpio kmod
libguestfs-dev libguestfs0 supermin linux-image-amd64
qemu-system-x86 qemu-system-arm qemu-system-gui u-boot-qemu
dbus-daemon
mandoc man-db shellcheck bash
cppcheck
systemd util-linux debian-archive-keyring
podman debootstrap
clang valgrind
"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  echo "deps: all packages present"
  exit 0
fi

echo "deps: installing$missing"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "deps: need root (or sudo) to install:$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
