#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make bench: FDBox's memfd path against LUO's in one release-kernel VM run
# (selftests/bench/fdbox_memfd_bench.c, four stages, three KHO kexecs), as
# one table with the ratio FDBox/LUO on every row.
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
logs=$FDBOX_BUILD/logs/bench
rm -rf "$logs"

# 4 GiB, 384 MiB of it KHO scratch: room for both copies of the largest
# memfds outside scratch, scratch enough for the pressure regime to land
# folios in (and for the next kernel's early allocations), and little enough
# that the ample regime's allocations stay out of it.
note "running the benchmark VM (four stages, about five minutes under TCG)"
status=0
"$vmrun" run $accel --flavour "$flavour" --kernel "$kernel" --initrd "$initrd" \
	--tests /bench --stages 4 --memory 4096 --timeout 1200 --silence 300 \
	--append "kho_scratch=64M,256M,64M" --log-dir "$logs" >"$logs.out" 2>&1 || status=$?
cat "$logs.out"

grep -h '^# bench: ' "$logs"/*.log | sort -u | awk -f "$FDBOX_ROOT/scripts/bench-table.awk"
exit "$status"
