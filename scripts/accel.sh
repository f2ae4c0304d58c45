#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Prints "--kvm" if a KVM guest shows signs of life here, else nothing (TCG).
# /dev/kvm can exist and still not run ordinary guests (nested PVM does
# that), so only a probe boot tells. The answer is kept until the host reboots.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

vmrun=${1:?usage: accel.sh VMRUN KERNEL INITRD}
kernel=${2:?}
initrd=${3:?}
cache=$FDBOX_BUILD/kvm-probe
boot_id=$(cat /proc/sys/kernel/random/boot_id)

if [ "${FDBOX_ACCEL:-}" = tcg ]; then
	exit 0
fi
if [ -f "$cache" ] && [ "$(head -n 1 "$cache")" = "$boot_id" ]; then
	tail -n 1 "$cache"
	exit 0
fi
answer=
if "$vmrun" probe-kvm --kernel "$kernel" --initrd "$initrd" >/dev/null 2>&1; then
	answer=--kvm
fi
mkdir -p "$(dirname "$cache")"
printf '%s\n%s\n' "$boot_id" "$answer" >"$cache"
echo "$answer"
