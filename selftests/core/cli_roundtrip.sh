#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Two-stage: the fdbox tool drives fdbox_core across a kexec. Stage 1 makes
# and seals a box of two test files with `fdbox create`, and checks what ls,
# caps and the inspector say, a dry run and a refused source. Stage 2 finds
# the box in fdbox_core's copy of the incoming blob, retrieves one entry into
# a command, refuses a second retrieve, and discards the other.
. /lib/fdbox/ktap.sh
stage=$(ktap_stage "$@") || exit 2
mods=${FDBOX_MODULES:-/lib/modules/fdbox}
tmp=/tmp/cli_roundtrip
mkdir -p "$tmp"

# load NAME: insmod NAME unless it is loaded already.
load() {
	[ -d "/sys/module/$1" ] && return 0
	insmod "$mods/$1.ko" >"$tmp/insmod" 2>&1 && return 0
	ktap_diag <"$tmp/insmod"
	return 1
}

# The JSON the tool prints, on one line without blanks, for grep -E.
flat() {
	tr -d ' \t\n'
}

# has NAME TEXT ERE: NAME passes if TEXT, flattened, matches ERE.
has() {
	if printf '%s' "$2" | flat | grep -Eq -- "$3"; then
		ktap_ok "$1"
	else
		printf '%s\n' "$2" | ktap_diag
		ktap_fail "$1"
	fi
}

# runs NAME CMD...: NAME passes if CMD exits 0.
runs() {
	name=$1
	shift
	if "$@" >"$tmp/out" 2>&1; then
		ktap_ok "$name"
	else
		ktap_diag <"$tmp/out"
		ktap_fail "$name"
	fi
}

# An entry of `fdbox ls BOX --json` in STATE: entry NAME STATE.
# The CLI's JSON objects have their keys in alphabetical order.
entry() {
	echo "\"compatible\":\"fdbox-test\",\"n_deps\":0,\"name\":\"$1\",\"reason\":[^,]*,\"state\":\"$2\""
}

# cli-box in the inspector's report, with a test entry first.
report_box='"name":"cli-box","owner_uid":[0-9]+,"owner_gid":[0-9]+,"state":"[a-z]+","entries":\[\{"index":0,"name":"(one|two)","handler":"fdbox-test"'

modules_load() {
	if load fdbox_core && load fdbox_test; then
		ktap_ok "modules_load"
	else
		ktap_new_dmesg | ktap_diag
		ktap_fail "modules_load"
	fi
}

ktap_new_dmesg >/dev/null
case "$stage" in
1)
	ktap_plan 9
	modules_load
	has caps_lists_the_test_handler "$(fdbox caps --json 2>&1)" \
		'"handlers":\[.*"compatible":"fdbox-test"'
	runs create_seals_a_box \
		fdbox create cli-box --add one=/dev/fdbox_test --add two=/dev/fdbox_test --seal
	has ls_shows_the_sealed_box "$(fdbox ls --json 2>&1)" \
		'"direction":"outgoing","n_entries":2,"name":"cli-box",[^}]*"state":"sealed"'
	runs inspector_verifies_the_outgoing_blob fdbox inspect verify --out
	has inspector_shows_the_box "$(fdbox inspect --out --json 2>&1)" "$report_box"

	runs dry_run_succeeds fdbox create cli-dry --add x=/dev/fdbox_test
	json=$(fdbox ls --json 2>&1)
	if [ $? = 0 ] && ! printf '%s' "$json" | flat | grep -q '"name":"cli-dry"'; then
		ktap_ok "dry_run_leaves_no_box"
	else
		printf '%s\n' "$json" | ktap_diag
		ktap_fail "dry_run_leaves_no_box"
	fi

	# A regular file: no handler preserves it, so the kernel refuses it.
	# (The guest has no /etc/passwd.)
	echo "not preservable" >"$tmp/plain"
	fdbox create cli-bad --add "x=$tmp/plain" --seal >/dev/null 2>"$tmp/err"
	rc=$?
	left=$(fdbox ls --json 2>&1 | flat)
	if [ "$rc" = 1 ] && [ $(($(wc -l <"$tmp/err"))) = 1 ] &&
		grep -q "x=$tmp/plain: .*EOPNOTSUPP" "$tmp/err" &&
		! echo "$left" | grep -q '"name":"cli-bad"'; then
		ktap_ok "unpreservable_source_fails_in_one_line"
	else
		echo "exit $rc" | ktap_diag
		ktap_diag <"$tmp/err"
		ktap_fail "unpreservable_source_fails_in_one_line"
	fi
	;;
2)
	ktap_plan 7
	modules_load
	has inspector_reads_fdbox_cores_incoming_copy \
		"$(fdbox inspect --in --json 2>&1)" "$report_box"
	json=$(fdbox ls cli-box --in --json 2>&1)
	if printf '%s' "$json" | flat | grep -Eq "$(entry one restorable)" &&
		printf '%s' "$json" | flat | grep -Eq "$(entry two restorable)"; then
		ktap_ok "both_entries_restorable"
	else
		printf '%s\n' "$json" | ktap_diag
		ktap_fail "both_entries_restorable"
	fi

	# The single quotes are the point: the command expands FDBOX_FDS.
	# shellcheck disable=SC2016
	out=$(fdbox retrieve cli-box one -- sh -c 'echo $FDBOX_FDS' 2>&1)
	if echo "$out" | grep -qx 'one=[0-9][0-9]*'; then
		ktap_ok "retrieve_passes_the_fd"
	else
		echo "$out" | ktap_diag
		ktap_fail "retrieve_passes_the_fd"
	fi
	fdbox retrieve cli-box one -- true >"$tmp/out" 2>&1
	rc=$?
	if [ "$rc" = 1 ]; then
		ktap_ok "second_retrieve_fails"
	else
		echo "exit $rc" | ktap_diag
		ktap_diag <"$tmp/out"
		ktap_fail "second_retrieve_fails"
	fi
	runs discard_frees_the_other fdbox discard cli-box two
	# Nothing left to retrieve: the box went with its last fd.
	json=$(fdbox ls --json 2>&1)
	rc=$?
	if [ "$rc" = 0 ] && printf '%s' "$json" | flat | grep -q '"boxes":\[' &&
		! printf '%s' "$json" | flat | grep -q '"name":"cli-box"'; then
		ktap_ok "box_released_once_emptied"
	else
		printf '%s\n' "$json" | ktap_diag
		ktap_fail "box_released_once_emptied"
	fi
	;;
esac
rm -rf "$tmp"
ktap_exit
