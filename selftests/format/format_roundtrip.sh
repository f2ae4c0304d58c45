#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Two-stage: fdbox-format inside the kernel. A blob the kernel encodes is
# read by the userspace inspector from KHO's debugfs, and decoded by the next
# kernel; both run the same codec source.
. /lib/fdbox/ktap.sh
stage=$(ktap_stage "$@") || exit 2
mod=$FDBOX_MODULES/fdbox_format_test.ko
kho=/sys/kernel/debug/kho

# inspect NAME DIR: the inspector verifies and reads the blob in KHO's DIR.
inspect() {
	blob=$kho/$2/sub_fdts/fdbox-format-test
	if out=$(fdbox inspect verify "$blob" 2>&1); then
		ktap_ok "$1_verifies"
	else
		echo "$out" | ktap_diag
		ktap_fail "$1_verifies"
	fi
	json=$(fdbox inspect --json "$blob" 2>&1)
	if echo "$json" | grep -q '"guest-ram"' && echo "$json" | grep -q '"iommufd-from-the-future"'; then
		ktap_ok "$1_reads_every_entry"
	else
		echo "$json" | ktap_diag
		ktap_fail "$1_reads_every_entry"
	fi
}

ktap_new_dmesg >/dev/null
ktap_plan 3
case "$stage" in
1)
	if insmod "$mod" mode=1; then
		ktap_ok "kernel_encodes_decodes_and_preserves"
	else
		ktap_new_dmesg | ktap_diag
		ktap_fail "kernel_encodes_decodes_and_preserves"
	fi
	inspect inspector_on_outgoing_blob out
	;;
2)
	# First: the module frees the incoming blob once it has decoded it.
	inspect inspector_on_incoming_blob in
	if insmod "$mod" mode=2; then
		ktap_ok "next_kernel_decodes_and_validates"
		rmmod fdbox_format_test
	else
		ktap_new_dmesg | ktap_diag
		ktap_fail "next_kernel_decodes_and_validates"
	fi
	;;
esac
ktap_exit
