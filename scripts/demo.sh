#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make demo: boots the release kernel, hands state to a second kernel through
# a real KHO kexec, and shows what happened with timings.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=release
release_guest

echo
echo "FDBox demo: state carried across a kexec with Kexec HandOver (KHO)"
echo
"$vmrun" run $accel --flavour "$flavour" --kernel "$kernel" --initrd "$initrd" \
	--tests /demo --stages 2 --echo --log-dir "$FDBOX_BUILD/logs/demo"
