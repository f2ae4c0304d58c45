# SPDX-License-Identifier: GPL-2.0
# KTAP helpers for the guest's shell tests; sourced.

ktap_count=0
ktap_failed=0

ktap_plan() {
	echo "TAP version 13"
	echo "1..$1"
}

ktap_ok() {
	ktap_count=$((ktap_count + 1))
	echo "ok $ktap_count $*"
}

ktap_fail() {
	ktap_count=$((ktap_count + 1))
	ktap_failed=$((ktap_failed + 1))
	echo "not ok $ktap_count $*"
}

ktap_diag() {
	sed 's/^/# /'
}

# The kernel messages logged since the last call. The console keeps the
# whole log; this only clears the ring buffer.
ktap_new_dmesg() {
	dmesg -c
}

ktap_exit() {
	[ "$ktap_failed" = 0 ]
	exit $?
}

# The stage a two-stage test was started for ("-s N").
ktap_stage() {
	[ "$1" = -s ] && [ -n "$2" ] || { echo "usage: $0 -s 1|2" >&2; exit 2; }
	echo "$2"
}
