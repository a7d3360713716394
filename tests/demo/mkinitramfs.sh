#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Build the demo guest's initramfs (tests/demo/README.md), for either
# architecture:
#
#   tests/demo/mkinitramfs.sh OUT INIT BUSYBOX MODROOT KVER MODULE...
#
# OUT       the gzip'ed newc archive to write (atomically, via OUT.tmp)
# INIT      the /init script (tests/demo/init)
# BUSYBOX   a static busybox for the guest's architecture
# MODROOT   where lib/modules/KVER is: / for this machine's kernel, or a
#           kernel package unpacked with dpkg-deb -x (with modules.dep made
#           by depmod -b MODROOT KVER)
# KVER      the kernel release
# MODULE    modules to load, each after its dependencies
#           (modprobe --show-depends); built-in ones are skipped
#
# The modules go to /lib/modules/KVER/... uncompressed, their load order to
# /lib/modules/demo.order.  Busybox's applets become symlinks when BUSYBOX
# runs here (--list-full); a busybox for another architecture gets /bin/sh
# only and /init installs the links at boot (busybox --install -s).
# With DEMO_AGENT set (the x86_64 image: /usr/sbin/qemu-ga, Debian's
# qemu-guest-agent), that program goes to /usr/sbin/qemu-ga with the
# shared libraries ldd finds for it (and their loader), so that /init can
# run the QEMU guest agent: it must be built for the guest's architecture,
# which is this machine's.  The archive is reproducible: mtimes zeroed,
# sorted names, owner 0:0, cpio --reproducible, gzip -n.
set -eu

[ $# -ge 5 ] || { echo "usage: mkinitramfs.sh OUT INIT BUSYBOX MODROOT KVER MODULE..." >&2; exit 2; }
out=$1 init=$2 busybox=$3 modroot=$4 kver=$5
shift 5
PATH="$PATH:/sbin:/usr/sbin"

die () { echo "demo-image: $*" >&2; exit 1; }

[ -d "$modroot/lib/modules/$kver" ] || die "no $modroot/lib/modules/$kver"
# modprobe -d prints absolute, resolved paths; / is the empty prefix.
modroot=$(cd "$modroot" && pwd -P)
[ "$modroot" != / ] || modroot=""
command -v cpio >/dev/null || die "no cpio: install cpio"
command -v modprobe >/dev/null || die "no modprobe: install kmod"

work=$(dirname "$out")/mkinitramfs.$$
root=$work/root
trap 'rm -rf "$work"' EXIT
rm -rf "$work"
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/dev" "$root/proc" \
  "$root/sys" "$root/mnt" "$root/tmp" "$root/run" "$root/etc" "$root/var/log" "$root/lib/modules"
cp "$busybox" "$root/bin/busybox"
if applets=$("$root/bin/busybox" --list-full 2>/dev/null) && [ -n "$applets" ]; then
  for a in $applets; do
    [ -e "$root/$a" ] || ln -s /bin/busybox "$root/$a"
  done
else
  ln -s busybox "$root/bin/sh"
fi
install -m 0755 "$init" "$root/init"

# modprobe prints "insmod PATH" for each module to load (PATH under
# MODROOT), "builtin NAME" for built-in ones.
: >"$work/deps"
for m in "$@"; do
  if [ -n "$modroot" ]; then
    modprobe -d "$modroot" -S "$kver" --show-depends "$m" >>"$work/deps" 2>"$work/err" \
      || die "no module $m in $modroot/lib/modules/$kver: $(head -n 1 "$work/err")"
  else
    modprobe -S "$kver" --show-depends "$m" >>"$work/deps" 2>"$work/err" \
      || die "no module $m in /lib/modules/$kver: $(head -n 1 "$work/err")"
  fi
done
: >"$root/lib/modules/demo.order"
awk '$1 == "insmod" && !seen[$2]++ { print $2 }' "$work/deps" | while read -r ko; do
  rel=${ko#"$modroot"}
  case $rel in
    *.ko) dst=$rel ;;
    *.ko.xz) dst=${rel%.xz} ;;
    *.ko.zst) dst=${rel%.zst} ;;
    *) die "unknown module format $ko" ;;
  esac
  mkdir -p "$root$(dirname "$dst")"
  case $ko in
    *.ko) cp "$ko" "$root$dst" ;;
    *.ko.xz) xz -dc "$ko" >"$root$dst" ;;
    *.ko.zst) zstd -qdc "$ko" >"$root$dst" ;;
  esac
  echo "$dst" >>"$root/lib/modules/demo.order"
done

if [ -n "${DEMO_AGENT:-}" ]; then
  [ -x "$DEMO_AGENT" ] || die "no guest agent $DEMO_AGENT: install qemu-guest-agent"
  install -D -m 0755 "$DEMO_AGENT" "$root/usr/sbin/qemu-ga"
  # ldd prints "name => /path (addr)" and "/lib64/ld-linux-x86-64.so.2 (addr)".
  libs=$(ldd "$DEMO_AGENT" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }') \
    || die "ldd $DEMO_AGENT failed"
  for l in $libs; do
    # Under its own path (the loader's is fixed), symlinks resolved.
    install -D -m 0755 "$(readlink -f "$l")" "$root$l"
  done
fi

find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) \
  | gzip -9n >"$out.tmp"
mv "$out.tmp" "$out"
