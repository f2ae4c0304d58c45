#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The guest side of make demo: state handed from one kernel to the next with
# KHO. Until the memfd module exists, the state is the simplest preserved
# object: folios of known content (fdbox_kho_test.ko).
. /lib/fdbox/ktap.sh
stage=$(ktap_stage "$@") || exit 2
mod=$FDBOX_MODULES/fdbox_kho_test.ko

# Milliseconds since this kernel booted.
now_ms() {
	awk '{ printf "%d", $1 * 1000 }' /proc/uptime
}

ktap_new_dmesg >/dev/null
ktap_plan 1
case "$stage" in
1)
	echo "# Kernel 1 ($(uname -r)) is up after $(now_ms) ms."
	echo "# Preserving folios of orders 0, 2, 4 and 9 (2.08 MiB) with a known pattern..."
	t0=$(now_ms)
	if insmod "$mod" mode=1; then
		echo "# Preserved and registered the blob in $(($(now_ms) - t0)) ms:"
		ktap_new_dmesg | grep fdbox_kho_test | ktap_diag
		ktap_ok "preserve"
	else
		ktap_new_dmesg | ktap_diag
		ktap_fail "preserve"
	fi
	echo "# The blobs KHO will hand over (debugfs kho/out/sub_fdts):"
	ls -l /sys/kernel/debug/kho/out/sub_fdts/ 2>&1 | ktap_diag
	echo "# Now kexec into kernel 2..."
	;;
2)
	echo "# Kernel 2 is up after $(now_ms) ms; it was started by a KHO kexec."
	t0=$(now_ms)
	if insmod "$mod" mode=2; then
		echo "# Found the blob, restored every folio at its old address, verified every byte in $(($(now_ms) - t0)) ms:"
		ktap_new_dmesg | grep fdbox_kho_test | ktap_diag
		ktap_ok "restore and verify"
	else
		ktap_new_dmesg | ktap_diag
		ktap_fail "restore and verify"
	fi
	;;
esac
ktap_exit
