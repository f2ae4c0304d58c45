#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The initramfs of the boots that run an unmodified QEMU (make demo, the
# qemu_cpr tests, make bench's blackout rows): scripts/initramfs.sh's image
# plus a zstd archive of the host's qemu-system-x86_64 and its libraries
# (from ldd), the test guest (scripts/qemu-guest.sh) and the guest-side
# scripts (selftests/qemu). The other boots stay small. Stage 2 boots the
# same image, QEMU included.
# Output: build/initramfs/<flavour>-qemu/initrd.cpio
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=${1:?usage: initramfs-qemu.sh release|debug}
kdir=$("$FDBOX_ROOT/scripts/kernel.sh" "$flavour")
base=$FDBOX_BUILD/initramfs/$flavour
out=$FDBOX_BUILD/initramfs/$flavour-qemu
overlay=$out/overlay
[ -f "$base/root.cpio" ] || die "$base/root.cpio: run scripts/initramfs.sh $flavour first"
qemu=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 is not installed (make deps)"

rm -rf "$overlay"
mkdir -p "$overlay"/{usr/bin,lib/fdbox,run}
install -m 0755 "$qemu" "$overlay/usr/bin/qemu-system-x86_64"
# Each library at the path the loader looks for, symlinks resolved.
ldd "$qemu" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
	while read -r lib; do
		install -D -m 0755 "$(readlink -f "$lib")" "$overlay$lib"
	done
install -m 0644 "$("$FDBOX_ROOT/scripts/qemu-guest.sh")" "$overlay/lib/fdbox/qemu-guest.bin"
install -m 0644 "$FDBOX_ROOT/selftests/qemu/qemu_lib.sh" "$overlay/lib/fdbox/qemu_lib.sh"
# The test trees (fdbox.tests=DIR).
mkdir -p "$overlay"/{qemu,qemu-demo,qemu-bench}/twostage
install -m 0755 "$FDBOX_ROOT/selftests/qemu/qemu_cpr.sh" "$overlay/qemu/twostage/qemu_cpr"
install -m 0755 "$FDBOX_ROOT/selftests/qemu/demo.sh" "$overlay/qemu-demo/twostage/demo"
install -m 0755 "$FDBOX_ROOT/selftests/qemu/qemu_bench.sh" "$overlay/qemu-bench/twostage/qemu_bench"

cpio_of() {
	(cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet)
}

# The kernel unpacks concatenated archives, compressed or not; an archive
# after a compressed one must start aligned, and zeros between are skipped.
inner=$out/inner.cpio
{
	cat "$base/root.cpio"
	cpio_of "$overlay" | zstd -q -6 -T0
} >"$inner"
truncate -s %512 "$inner"
payload=$out/payload
rm -rf "$payload"
mkdir -p "$payload/boot"
cp "$inner" "$payload/boot/initrd.cpio"
install -m 0644 "$kdir/out/arch/x86/boot/bzImage" "$payload/boot/bzImage"
{
	cat "$inner"
	cpio_of "$payload"
} >"$out/initrd.cpio.tmp"
mv "$out/initrd.cpio.tmp" "$out/initrd.cpio"
rm -rf "$payload" "$inner"
echo "$out/initrd.cpio"
