#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make stress: FDBox's in-VM stress fuzzer (selftests/stress/) on the debug
# kernel (KASAN, lockdep, kmemleak), for SECONDS in all, split into ROUNDS
# rounds that each end in a kexec; the next round first checks that exactly
# the sealed boxes of the model came back, with their data. A failure prints
# the seed, to replay it: make stress SECONDS=N SEED=S.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

seconds=${1:-600}
seed=${2:-1}
# A kexec every ten minutes unless told otherwise.
rounds=${3:-$(((seconds + 599) / 600))}
case "$seconds$seed$rounds" in
*[!0-9]*) die "usage: $0 [SECONDS [SEED [ROUNDS]]]" ;;
esac
[ "$rounds" -ge 1 ] || rounds=1
per_round=$((seconds / rounds))
[ "$per_round" -ge 1 ] || per_round=1

"$FDBOX_ROOT/scripts/deps.sh"
"$FDBOX_ROOT/scripts/kernel.sh" debug >/dev/null
"$FDBOX_ROOT/scripts/modules.sh" debug >/dev/null
"$FDBOX_ROOT/scripts/initramfs.sh" debug >/dev/null
(cd "$FDBOX_ROOT" && cargo build -q --release --locked -p fdbox-vmrun)
vmrun=$FDBOX_ROOT/target/release/fdbox-vmrun
kernel=$("$FDBOX_ROOT/scripts/kernel.sh" debug)/out/arch/x86/boot/bzImage
initrd=$FDBOX_BUILD/initramfs/debug/initrd.cpio
logs=$FDBOX_BUILD/logs/stress
rm -rf "$logs"
mkdir -p "$logs"
echo "stress: $rounds round(s) of $per_round s, seed $seed, $rounds kexec(s); logs in $logs"
# Each round: boot or kexec (~2 min under TCG), the fuzz, the check.
"$vmrun" run --flavour debug --kernel "$kernel" --initrd "$initrd" \
	$("$FDBOX_ROOT/scripts/accel.sh" "$vmrun" "$kernel" "$initrd") \
	--tests /stress --stages $((rounds + 1)) --log-dir "$logs" \
	--append "fdbox.stress_seconds=$per_round fdbox.stress_seed=$seed" \
	--timeout $((rounds * (per_round + 600) + 600)) --silence 300 --echo |
	tee "$logs/results.txt"
status=${PIPESTATUS[0]}
grep -h "# stress" "$logs/guest.log" | sed 's/^.*res| //' || true
exit "$status"
