#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Two-stage, in a boot of its own: the previous kernel hands over, under
# fdbox_core's subtree, a sound blob whose recorded size (1 MiB) reaches past
# the one page KHO preserved for it (fdbox_format_test mode=5). The new kernel
# must check the size against the preserved block before it reads a byte:
# fdbox_core loads without an oops, reports the hand-over unusable with the
# reason, offers no box, and still works.
. /lib/fdbox/ktap.sh
stage=$(ktap_stage "$@") || exit 2
mods=$FDBOX_MODULES
dbg=/sys/kernel/debug/fdbox

ktap_new_dmesg >/dev/null
case "$stage" in
1)
	ktap_plan 1
	if insmod "$mods/fdbox_format_test.ko" mode=5; then
		ktap_ok "oversized_blob_handed_over"
	else
		ktap_new_dmesg | ktap_diag
		ktap_fail "oversized_blob_handed_over"
	fi
	;;
2)
	ktap_plan 4
	if insmod "$mods/fdbox_core.ko"; then
		ktap_ok "core_loads_despite_oversized_blob"
	else
		ktap_new_dmesg | ktap_diag
		ktap_fail "core_loads_despite_oversized_blob"
	fi
	log=$(ktap_new_dmesg)
	if echo "$log" | grep -q "fdbox_core: incoming hand-over unusable: it claims 1048576 bytes, and KHO preserved 4096 there"; then
		ktap_ok "kernel_log_gives_the_reason"
	else
		echo "$log" | ktap_diag
		ktap_fail "kernel_log_gives_the_reason"
	fi
	status=$(head -n 1 "$dbg/boxes")
	case "$status" in
	"incoming: unusable"*)
		if grep -q '^box ' "$dbg/boxes"; then
			ktap_diag <"$dbg/boxes"
			ktap_fail "unusable_and_no_box_offered"
		else
			ktap_ok "unusable_and_no_box_offered"
		fi
		;;
	*)
		echo "$status" | ktap_diag
		ktap_fail "unusable_and_no_box_offered"
		;;
	esac
	if insmod "$mods/fdbox_test.ko" && grep -q '^handler fdbox-test' "$dbg/boxes"; then
		ktap_ok "core_still_works"
	else
		ktap_new_dmesg | ktap_diag
		ktap_fail "core_still_works"
	fi
	;;
esac
ktap_exit
