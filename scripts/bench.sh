#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make bench: FDBox's memfd path against LUO's on the release kernel
# (selftests/bench/fdbox_memfd_bench.c: two VMs, three KHO kexecs in all), as
# one table with the ratio FDBox/LUO on every row; then an unmodified QEMU
# guest's blackout, FDBox against a file with RAM copied
# (selftests/qemu/qemu_bench.sh).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=release
release_guest
logs=$FDBOX_BUILD/logs/bench
rm -rf "$logs"

# Two VMs; the program sets where each memfd's folios sit (see
# selftests/bench/fdbox_memfd_bench.c). The ample run (12 GiB, KHO scratch
# 384 MiB) keeps both copies out of scratch, with room for three repetitions
# of the largest memfds; the pressure run (8 GiB, scratch 1.75 GiB) puts both
# copies in scratch; the vCPU runs (12 GiB, to hold three pairs of 1 GiB
# memfds) measure the same cases on 1 vCPU and on 4.
note "running the benchmark VMs (about fifteen minutes under TCG)"
status=0
# make bench CASE=NAME: only that row, in every run that has it.
only=${FDBOX_BENCH_CASE:+ fdbox.bench.case=$FDBOX_BENCH_CASE}
run() {
	local name=$1 stages=$2 memory=$3 append="$4$only" cpus=${5:-2}
	"$vmrun" run $accel --flavour "$flavour" --kernel "$kernel" --initrd "$initrd" \
		--tests /bench --stages "$stages" --memory "$memory" --cpus "$cpus" \
		--timeout 3600 --silence 600 \
		--append "$append" --log-dir "$logs/$name" >"$logs/$name.out" 2>&1 || status=1
	cat "$logs/$name.out"
}
mkdir -p "$logs"
run ample 3 12288 "kho_scratch=64M,256M,64M fdbox.bench=ample"
run pressure 2 8192 "kho_scratch=128M,1536M,128M fdbox.bench=pressure"
# QEMU's multi-threaded TCG runs each vCPU in a thread of its own.
run vcpus1 2 12288 "kho_scratch=64M,256M,64M fdbox.bench=vcpus" 1
run vcpus4 2 12288 "kho_scratch=64M,256M,64M fdbox.bench=vcpus" 4

grep -h '^# bench\(-seal\)\?: ' "$logs"/*/results.log |
	awk -f "$FDBOX_ROOT/scripts/bench-table.awk" || status=1

# The blackout rows: unmodified QEMUs in a VM of 8 GiB, so that the largest
# guest fits three times (boxed, and the file route's guest and file). KHO
# scratch is small (384 MiB), as in the ample run, so that guest RAM stays
# out of it: a folio in scratch costs a migration at ADD, whose speed and
# placement are measured apart (the rows print how many were migrated).
note "running the QEMU blackout VM (two stages)"
qemu_initrd=$("$FDBOX_ROOT/scripts/initramfs-qemu.sh" "$flavour")
"$vmrun" run $accel --flavour "$flavour" --kernel "$kernel" --initrd "$qemu_initrd" \
	--tests /qemu-bench --stages 2 --memory 8192 --timeout 2400 --silence 600 \
	--append "kho_scratch=64M,256M,64M" \
	--log-dir "$logs/qemu" >"$logs/qemu.out" 2>&1 || status=1
cat "$logs/qemu.out"
# The lines come as KTAP diagnostics ("# # bench-qemu: ...").
# The runner prints when stage 1 ended and stage 2 began, in seconds.
kexec_ms=$(awk '/s  stage 1 done, kexec$/ { a = $1 } /s  kexec to stage 2$/ { b = $1 }
	END { if (a != "" && b != "") printf "%.0f", (b - a) * 1000 }' "$logs/qemu.out")
sed -n 's/^[# ]*\(# bench-qemu: \)/\1/p' "$logs/qemu/results.log" |
	awk -v kexec_ms="$kexec_ms" -f "$FDBOX_ROOT/scripts/bench-qemu.awk" || status=1
exit "$status"
