#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make test: every suite, from a fresh machine if need be. Prints one line per
# test case and ends with "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

results=$FDBOX_BUILD/results.txt
logs=$FDBOX_BUILD/logs
flavour=debug
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
step check/clippy-userspace cargo clippy --workspace --all-targets --locked -- -D warnings
cargo_log=$logs/cargo-test.log
if cargo test --workspace --locked >"$cargo_log" 2>&1; then
	cargo_ok=1
else
	cargo_ok=
fi
# One case per Rust test.
sed -nE 's/^test (.*) \.\.\. (ok|FAILED|ignored)$/\2 \1/p' "$cargo_log" | while read -r status name; do
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
step build/vmrun cargo build --release --locked -p fdbox-vmrun
vmrun=$FDBOX_ROOT/target/release/fdbox-vmrun

# The kernel side: modules with clippy, kernel-style rustfmt, then the VM.
step build/kernel-$flavour "$FDBOX_ROOT/scripts/kernel.sh" "$flavour" || summary
kdir=$("$FDBOX_ROOT/scripts/kernel.sh" "$flavour")
step check/rustfmt-kernel "$FDBOX_ROOT/scripts/rustfmt-kernel.sh" --check
step build/modules-$flavour "$FDBOX_ROOT/scripts/modules.sh" "$flavour" || summary
step build/initramfs-$flavour "$FDBOX_ROOT/scripts/initramfs.sh" "$flavour" || summary
[ -x "$vmrun" ] || summary

initrd=$FDBOX_BUILD/initramfs/$flavour/initrd.cpio
kernel=$kdir/out/arch/x86/boot/bzImage
accel=$("$FDBOX_ROOT/scripts/accel.sh" "$vmrun" "$kernel" "$initrd")
echo "guest: the $flavour kernel under ${accel:+KVM}${accel:-TCG}"
"$vmrun" run $accel --flavour "$flavour" --kernel "$kernel" --initrd "$initrd" \
	--log-dir "$logs/vm-$flavour" --results "$results" --stages 2
"$vmrun" selftest $accel --flavour "$flavour" --kernel "$kernel" --initrd "$initrd" \
	--log-dir "$logs/vm-selftest" --results "$results"
summary
