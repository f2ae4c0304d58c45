#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make demo: boots the release kernel with two unmodified QEMUs in its
# initramfs; fdbox vm saves both guests (their RAM stays in boxed memfds),
# the kernel kexecs through KHO, and fdbox vm restores both, which go on
# counting where they stopped. selftests/qemu/demo.sh is the guest side.
# make demo-mini (FDBOX_DEMO=mini) runs the miniature VMM instead.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=release
release_guest

if [ "${FDBOX_DEMO:-qemu}" = mini ]; then
	echo
	echo "FDBox demo: a miniature VMM's RAM and state carried across a kexec with Kexec HandOver (KHO)"
	echo
	exec "$vmrun" run $accel --flavour "$flavour" --kernel "$kernel" --initrd "$initrd" \
		--tests /demo --stages 2 --echo --log-dir "$FDBOX_BUILD/logs/demo-mini"
fi

initrd=$("$FDBOX_ROOT/scripts/initramfs-qemu.sh" "$flavour")
echo
echo "FDBox demo: two unmodified QEMU guests continue across a kexec with Kexec HandOver (KHO);"
echo "guest RAM stays in place in boxed memfds, only device state is written"
echo
# KHO scratch sized as a host would (small), so that guest RAM stays out of
# it: a folio in scratch must be migrated out at ADD, a copy, and make bench
# measures that apart.
"$vmrun" run $accel --flavour "$flavour" --kernel "$kernel" --initrd "$initrd" \
	--tests /qemu-demo --stages 2 --memory 2048 --timeout 900 --silence 300 --echo \
	--append "kho_scratch=64M,256M,64M" --log-dir "$FDBOX_BUILD/logs/demo"
