#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Upstream LUO's luo_kexec_simple, as a self-check of the harness and of the
# anchor FDBox is benchmarked against. A disabled liveupdate is a failure.
. /lib/fdbox/ktap.sh
stage=$(ktap_stage "$@") || exit 2

ktap_plan 1
if [ ! -c /dev/liveupdate ]; then
	dmesg | grep -i -e kho -e liveupdate | ktap_diag
	ktap_fail "luo_kexec_simple stage $stage # /dev/liveupdate is missing"
elif /lib/fdbox/luo_kexec_simple -s "$stage"; then
	ktap_ok "luo_kexec_simple stage $stage"
else
	ktap_fail "luo_kexec_simple stage $stage # exit $?"
fi
ktap_exit
