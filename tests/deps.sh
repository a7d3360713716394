#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Install the Debian 12 packages avm needs to build, test and run its demo,
# only those that are missing.  Uses sudo when not root.
#
# The arm64 demo guest (make demo-image-arm64) downloads Debian's arm64
# kernel and busybox-static with apt-get download (never installs them):
# arm64 is added as a dpkg architecture, with its package lists.
set -eu

PACKAGES="
make gcc pkg-config
libjansson-dev libsystemd-dev libudev-dev libarchive-dev libssl-dev zlib1g-dev
libcriterion-dev
android-sdk-libsparse-utils gdisk fdisk mkbootimg openssl zip unzip
busybox-static cpio kmod
libguestfs-dev libguestfs0 supermin linux-image-amd64
qemu-system-x86 qemu-system-arm qemu-system-gui u-boot-qemu qemu-utils lz4 qemu-guest-agent
dbus-daemon websockify novnc
mandoc man-db shellcheck bash
cppcheck
systemd util-linux debian-archive-keyring
podman runc catatonit debootstrap
clang clang-format valgrind
chromium
"
# runc (and catatonit, podman's --init) runs the image in the deploy tests
# where crun cannot (containers/containers.conf says why).
# The browser test (tests/browser/) drives chromium with npm's
# playwright-core, the kube test (tests/kube/) validates manifests with
# npm's kubernetes-models: Node.js and npm from Debian, unless the machine has its
# own (a nodesource nodejs bundles npm and conflicts with Debian's npm).
command -v node >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs"
command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES npm"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

arch=""
dpkg --print-foreign-architectures | grep -qx arm64 || arch=arm64

# playwright-core, as tests/browser/package-lock.json pins it (no browser
# download: it drives /usr/bin/chromium).
browser_modules () {
  if [ ! -d tests/browser/node_modules/playwright-core ] && command -v npm >/dev/null 2>&1; then
    echo "deps: npm ci in tests/browser (playwright-core)"
    (cd tests/browser && npm ci --no-audit --no-fund --ignore-scripts)
  fi
  # kubernetes-models, as tests/kube/package-lock.json pins it: the
  # Kubernetes API schemas avm kube's manifests are checked against
  # (tests/unit/test_kube.c, offline).
  if [ ! -d tests/kube/node_modules/kubernetes-models ] && command -v npm >/dev/null 2>&1; then
    echo "deps: npm ci in tests/kube (kubernetes-models)"
    (cd tests/kube && npm ci --no-audit --no-fund --ignore-scripts)
  fi
}

if [ -z "$missing" ] && [ -z "$arch" ]; then
  echo "deps: all packages present"
  browser_modules
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "deps: need root (or sudo) to install:$missing${arch:+ (and to add the dpkg architecture $arch)}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if [ -n "$arch" ]; then
  echo "deps: adding the dpkg architecture $arch (package lists only, for make demo-image-arm64)"
  $SUDO dpkg --add-architecture "$arch"
fi
$SUDO apt-get update -q
if [ -n "$missing" ]; then
  echo "deps: installing$missing"
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -q --no-install-recommends $missing
fi
browser_modules
