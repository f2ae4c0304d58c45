#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds the QEMU save/restore test guest: a 64 KiB x86 firmware image for
# qemu-system-x86_64 -M microvm -bios (tools/qemu-guest/guest.S). It fills
# its RAM with a pattern and counts, checking the pattern, on COM1.
# binutils only (as, ld); rebuilt when missing or older than its sources.
# Output: build/qemu-guest/guest.bin (its path, alone, on stdout)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

src=$FDBOX_ROOT/tools/qemu-guest
out=$FDBOX_BUILD/qemu-guest
bin=$out/guest.bin

stale=false
[ -f "$bin" ] || stale=true
for f in "$src/guest.S" "$src/guest.ld" "$FDBOX_ROOT/scripts/qemu-guest.sh"; do
	[ "$f" -nt "$bin" ] && stale=true
done

if $stale; then
	mkdir -p "$out"
	# Built in a directory of its own and renamed into place, so that
	# builds running at once (cargo's parallel tests) don't collide.
	work=$(mktemp -d "$out/build.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	as --32 -o "$work/guest.o" "$src/guest.S"
	# guest.ld makes a raw binary linked at 0xffff0000.
	ld -m elf_i386 -T "$src/guest.ld" -o "$work/guest.bin" "$work/guest.o"
	size=$(stat -c %s "$work/guest.bin")
	[ "$size" -eq 65536 ] || die "$work/guest.bin: $size bytes, not 65536"
	mv -f "$work/guest.bin" "$bin"
fi
echo "$bin"
