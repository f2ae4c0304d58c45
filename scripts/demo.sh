#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make demo: boots the release kernel, hands state to a second kernel through
# a real KHO kexec, and shows what happened with timings.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=release
"$FDBOX_ROOT/scripts/deps.sh"
note "building (cached after the first run)"
kdir=$("$FDBOX_ROOT/scripts/kernel.sh" "$flavour")
"$FDBOX_ROOT/scripts/modules.sh" "$flavour" >/dev/null
initrd=$("$FDBOX_ROOT/scripts/initramfs.sh" "$flavour")
(cd "$FDBOX_ROOT" && cargo build -q --release --locked -p fdbox-vmrun)
vmrun=$FDBOX_ROOT/target/release/fdbox-vmrun
kernel=$kdir/out/arch/x86/boot/bzImage
accel=$("$FDBOX_ROOT/scripts/accel.sh" "$vmrun" "$kernel" "$initrd")

echo
echo "FDBox demo: state carried across a kexec with Kexec HandOver (KHO)"
echo
"$vmrun" run $accel --flavour "$flavour" --kernel "$kernel" --initrd "$initrd" \
	--tests /demo --stages 2 --echo --log-dir "$FDBOX_BUILD/logs/demo"
