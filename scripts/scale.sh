#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make scale: scale_handover at full size. core_scale (selftests/core/
# fdbox_scale_test.c) seals its thousand boxes, its box of ten thousand
# entries, and a memfd of MIB MiB (default 6144) whose pages are physically
# scattered, so that the memfd's own metadata passes 4 MiB, the single KHO
# block the whole hand-over once had to fit; then the kexec, and every byte
# comes back. A release VM of its own, with room for the memfd beside the rest.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mib=${1:-6144}
case "$mib" in
'' | *[!0-9]*) die "usage: $0 [MIB]" ;;
esac
release_guest
logs=$FDBOX_BUILD/logs/scale
rm -rf "$logs"
mkdir -p "$logs"
memory=$((mib + 3072))
note "a scattered memfd of $mib MiB, in a VM of $memory MiB; logs in $logs"
"$vmrun" run $accel --flavour release --kernel "$kernel" --initrd "$initrd" \
	--tests /scale --stages 2 --memory "$memory" --timeout 3600 --silence 600 \
	--append "fdbox.scale_mib=$mib" --log-dir "$logs" --echo |
	tee "$logs/results.txt"
status=${PIPESTATUS[0]}
grep -h "scattered memfd\|outgoing hand-over\|retrieve of the" "$logs/results.log" |
	sed 's/^[# ]*//' || true
exit "$status"
