#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Two-stage, in a boot of its own: the previous kernel hands over a corrupt
# blob under fdbox_core's subtree (fdbox_format_test mode=3 flips one bit).
# The new kernel must load fdbox_core without an oops, report the blob
# unusable with the reason, offer no box, and still work.
. /lib/fdbox/ktap.sh
stage=$(ktap_stage "$@") || exit 2
mods=$FDBOX_MODULES
dbg=/sys/kernel/debug/fdbox

ktap_new_dmesg >/dev/null
case "$stage" in
1)
	ktap_plan 1
	if insmod "$mods/fdbox_format_test.ko" mode=3; then
		ktap_ok "corrupt_blob_handed_over"
	else
		ktap_new_dmesg | ktap_diag
		ktap_fail "corrupt_blob_handed_over"
	fi
	;;
2)
	ktap_plan 6
	if insmod "$mods/fdbox_core.ko"; then
		ktap_ok "core_loads_despite_corrupt_blob"
	else
		ktap_new_dmesg | ktap_diag
		ktap_fail "core_loads_despite_corrupt_blob"
	fi
	log=$(ktap_new_dmesg)
	if echo "$log" | grep -q "fdbox_core: incoming hand-over unusable: .*checksum"; then
		ktap_ok "kernel_log_gives_the_reason"
	else
		echo "$log" | ktap_diag
		ktap_fail "kernel_log_gives_the_reason"
	fi
	status=$(head -n 1 "$dbg/boxes")
	case "$status" in
	"incoming: unusable: "*checksum*) ktap_ok "debugfs_reports_unusable" ;;
	*)
		echo "$status" | ktap_diag
		ktap_fail "debugfs_reports_unusable"
		;;
	esac
	if grep -q '^box ' "$dbg/boxes"; then
		ktap_diag <"$dbg/boxes"
		ktap_fail "no_box_offered"
	else
		ktap_ok "no_box_offered"
	fi
	# The inspector reads the same bytes and agrees.
	# (debugfs files have no size: read, not test -s.)
	fdbox inspect verify "$dbg/incoming" >/tmp/verify 2>&1
	rc=$?
	if [ "$rc" != 0 ] && grep -q "checksum" /tmp/verify; then
		ktap_ok "inspector_rejects_the_same_blob"
	else
		echo "exit $rc" | ktap_diag
		ktap_diag </tmp/verify
		ktap_fail "inspector_rejects_the_same_blob"
	fi
	# The core still serves: a handler registers and a box can be made.
	if insmod "$mods/fdbox_test.ko" && grep -q '^handler fdbox-test' "$dbg/boxes"; then
		ktap_ok "core_still_works"
	else
		ktap_new_dmesg | ktap_diag
		ktap_fail "core_still_works"
	fi
	;;
esac
ktap_exit
