#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make test: every suite, from a fresh machine if need be. Prints one line per
# test case and ends with "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

results=$FDBOX_BUILD/results.txt
logs=$FDBOX_BUILD/logs
mkdir -p "$logs"
: >"$results"
started=$(date +%s)

record() {
	echo "$1 $2" >>"$results"
	case "$1" in
	PASS) echo "ok    $2" ;;
	FAIL) echo "FAIL  $2" ;;
	SKIP) echo "skip  $2" ;;
	esac
}

# step NAME CMD...: runs CMD with its output in build/logs/NAME.log and
# records one case; a failure shows the end of that log.
step() {
	local name=$1 log
	shift
	log=$logs/${name//\//-}.log
	if "$@" >"$log" 2>&1; then
		record PASS "$name"
	else
		record FAIL "$name"
		tail -n 25 "$log" | sed 's/^/  | /'
		echo "  full log: $log"
		return 1
	fi
}

summary() {
	local passed failed skipped
	passed=$(grep -c '^PASS ' "$results")
	failed=$(grep -c '^FAIL ' "$results")
	skipped=$(grep -c '^SKIP ' "$results")
	echo
	echo "make test took $(($(date +%s) - started)) s; logs in $logs"
	if [ "$failed" -gt 0 ]; then
		echo "failed:"
		sed -n 's/^FAIL /  /p' "$results"
	fi
	echo "$skipped skipped"
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
	exit $?
}

step setup/deps "$FDBOX_ROOT/scripts/deps.sh" || summary

# Userspace crates.
cd "$FDBOX_ROOT"
step check/rustfmt-userspace cargo fmt --all --check
step check/uapi-bindings "$FDBOX_ROOT/scripts/uapi-bindings.sh" --check
step check/clippy-userspace cargo clippy --workspace --all-targets --locked -- -D warnings
cargo_log=$logs/cargo-test.log
# --no-fail-fast: a failing crate must not hide the tests of the others.
if cargo test --workspace --locked --no-fail-fast >"$cargo_log" 2>&1; then
	cargo_ok=1
else
	cargo_ok=
fi
# One case per Rust test, named after its test binary.
awk '
	/^ *Running .*\(target\// {
		bin = $NF; sub(/.*\//, "", bin); sub(/-[0-9a-f]+\)$/, "", bin)
	}
	/^ *Doc-tests / { bin = "doctest-" $2 }
	/^test .* \.\.\. (ok|FAILED|ignored)$/ {
		name = $0; sub(/^test /, "", name); sub(/ \.\.\. [a-zA-Z]+$/, "", name)
		gsub(/ /, "", name)
		print $NF, bin "/" name
	}
' "$cargo_log" | while read -r status name; do
	case "$status" in
	ok) record PASS "cargo/$name" ;;
	FAILED) record FAIL "cargo/$name" ;;
	ignored) record SKIP "cargo/$name" ;;
	esac
done
if [ -z "$cargo_ok" ] && ! grep -q '^test .* FAILED$' "$cargo_log"; then
	record FAIL "cargo/build"
	tail -n 25 "$cargo_log" | sed 's/^/  | /'
fi
step fuzz/smoke "$FDBOX_ROOT/scripts/fuzz.sh" --smoke
step build/vmrun cargo build --release --locked -p fdbox-vmrun
vmrun=$FDBOX_ROOT/target/release/fdbox-vmrun

# The kernel side, per flavour: kernel, modules (clippy, -Dwarnings),
# initramfs. The tests run on the debug kernel; the runner's self-tests boot
# the release kernel, which boots several times faster.
for f in debug release; do
	step build/kernel-$f "$FDBOX_ROOT/scripts/kernel.sh" "$f" || summary
	step build/modules-$f "$FDBOX_ROOT/scripts/modules.sh" "$f" || summary
	step build/initramfs-$f "$FDBOX_ROOT/scripts/initramfs.sh" "$f" || summary
done
# Its failure costs only the QEMU boot pair.
qemu_initrd=
step build/initramfs-release-qemu "$FDBOX_ROOT/scripts/initramfs-qemu.sh" release &&
	qemu_initrd=$FDBOX_BUILD/initramfs/release-qemu/initrd.cpio
step check/rustfmt-kernel "$FDBOX_ROOT/scripts/rustfmt-kernel.sh" --check
[ -x "$vmrun" ] || summary

boot() {
	local command=$1 f=$2
	shift 2
	local kernel initrd accel
	kernel=$("$FDBOX_ROOT/scripts/kernel.sh" "$f")/out/arch/x86/boot/bzImage
	initrd=${initrd_override:-$FDBOX_BUILD/initramfs/$f/initrd.cpio}
	accel=$("$FDBOX_ROOT/scripts/accel.sh" "$vmrun" "$kernel" "$initrd")
	echo "$command: the $f kernel under ${accel:+KVM}${accel:-TCG}"
	"$vmrun" "$command" $accel --flavour "$f" --kernel "$kernel" --initrd "$initrd" \
		--results "$results" "$@"
	# Status 1 means failures, each already recorded; anything else is the
	# runner's own error.
	case $? in
	0 | 1) ;;
	*) record FAIL "harness/fdbox-vmrun-$command" ;;
	esac
}
# The self-tests mostly wait (for a silent guest to time out), so they run
# beside the tests, with their report shown after them; then, in that
# background, the boot pairs whose first kernel hands over a corrupt blob, and
# a CRC-valid one with forged entries (neither can share a boot: there is one
# fdbox subtree per kexec), one whose blob's size reaches past its memory,
# one with a 1 GiB hugetlb page reserved at boot, the three-stage chain
# between kernels with different test handler versions,
# the one whose kexec lands inside a SEAL, the stress fuzzer's (which needs
# the box table to itself), and the QEMU pair.
"$FDBOX_ROOT/scripts/accel.sh" "$vmrun" \
	"$("$FDBOX_ROOT/scripts/kernel.sh" release)/out/arch/x86/boot/bzImage" \
	"$FDBOX_BUILD/initramfs/release/initrd.cpio" >/dev/null
{
	boot selftest release --log-dir "$logs/vm-selftest"
	boot run debug --log-dir "$logs/vm-corrupt" --tests /corrupt --stages 2
	boot run debug --log-dir "$logs/vm-forged" --tests /forged --stages 2 \
		--append check_pages=1
	boot run debug --log-dir "$logs/vm-atomic" --tests /atomic --stages 2
	boot run debug --log-dir "$logs/vm-oversized" --tests /oversized --stages 2
	# Kernels whose test handlers read different payload versions: forward,
	# then back with FDBOX_SEAL_PREVIOUS.
	boot run debug --log-dir "$logs/vm-compat" --tests /compat --stages 3
	# A 1 GiB hugetlb page, reserved at boot, and refused at ADD: one boot, on
	# the release kernel (kmemleak's scan of the debug kernel's 4 GiB under
	# TCG outlasts the runner's silence limit).
	boot run release --log-dir "$logs/vm-gigantic" --tests /gigantic --stages 1 \
		--memory 4096 --append "hugepagesz=1G hugepages=1"
	# The stress fuzzer: 60 s, seed 1, then the kexec and its check.
	boot run debug --log-dir "$logs/vm-stress" --tests /stress --stages 2
	# Unmodified QEMUs across the kexec, on the release kernel (TCG inside
	# the debug kernel's TCG is too slow), with QEMU in the initramfs.
	[ -n "$qemu_initrd" ] && initrd_override=$qemu_initrd \
		boot run release --log-dir "$logs/vm-qemu" --tests /qemu --stages 2 \
		--memory 2048 --timeout 900 --silence 300
} >"$logs/vm-background.out" 2>&1 &
background=$!
boot run debug --log-dir "$logs/vm-debug" --stages 2
wait "$background"
cat "$logs/vm-background.out"
summary
