#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Two-stage: folios of known content cross a real KHO kexec intact
# (fdbox_kho_test.ko does the kernel side), and a missing blob fails loudly.
. /lib/fdbox/ktap.sh
stage=$(ktap_stage "$@") || exit 2
mod=$FDBOX_MODULES/fdbox_kho_test.ko

ktap_new_dmesg >/dev/null
case "$stage" in
1)
	ktap_plan 1
	if insmod "$mod" mode=1; then
		ktap_ok "kho_preserve_folios"
	else
		ktap_new_dmesg | ktap_diag
		ktap_fail "kho_preserve_folios"
	fi
	;;
2)
	ktap_plan 2
	# The restore path must fail, not skip, when its blob is absent.
	if insmod "$mod" mode=3; then
		rmmod fdbox_kho_test
		ktap_fail "kho_missing_blob_fails"
	else
		log=$(ktap_new_dmesg)
		if echo "$log" | grep -q "no blob named \"fdbox-kho-test-missing\""; then
			ktap_ok "kho_missing_blob_fails"
		else
			echo "$log" | ktap_diag
			ktap_fail "kho_missing_blob_fails # failed for another reason"
		fi
	fi
	if insmod "$mod" mode=2; then
		ktap_new_dmesg | ktap_diag
		ktap_ok "kho_restore_folios_verified"
		rmmod fdbox_kho_test
	else
		ktap_new_dmesg | ktap_diag
		ktap_fail "kho_restore_folios_verified"
	fi
	;;
esac
ktap_exit
