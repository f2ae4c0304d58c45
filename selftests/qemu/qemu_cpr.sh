#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Two-stage: unmodified QEMUs carried across the kexec by fdbox vm.
# Stage 1 launches guests a (64 MiB), b (32 MiB) and c (16 MiB), saves them,
# and checks the refusals that leave everything as it was: RAM off the shared
# file backend, QEMU killed before the seal, a second save. Stage 2 refuses an
# unknown name and a wrong RAM size, then restores a and b: each guest's
# counter continues at the next value with no second boot, and it checks
# every page of its pattern again. c's restore gets arguments QEMU refuses
# after its RAM is retrieved: the guest goes back into a sealed box, whole.
. /lib/fdbox/ktap.sh
. /lib/fdbox/qemu_lib.sh
stage=$(ktap_stage "$@") || exit 2
tmp=/tmp/qemu_cpr
mkdir -p "$tmp"

# exits CODE CMD...: CMD exits with CODE and says so on one line.
exits() {
	want=$1
	shift
	"$@" >"$tmp/exits.out" 2>&1
	got=$?
	cat "$tmp/exits.out"
	[ "$got" = "$want" ] || { echo "exit $got, not $want"; return 1; }
	[ "$(grep -c '^fdbox: error: ' "$tmp/exits.out")" = 1 ]
}

# no_box NAME: no box NAME on either side.
no_box() {
	! fdbox ls --json | tr -d ' \n' | grep -q "\"name\":\"$1\""
}

launch_two() {
	vm_launch a 64M && vm_launch b 32M && vm_launch c 16M &&
		wait_ok a 2 && wait_ok b 2 && wait_ok c 1
}

# RAM on a plain backend: x-ignore-shared would copy it, so save refuses
# before it stops the guest, and the guest counts on.
refuse_plain_ram() {
	vm_launch plain 32M -object memory-backend-ram,id=other,size=32M \
		-machine memory-backend=other || return 1
	wait_ok plain 1 || return 1
	exits 10 fdbox vm save plain || return 1
	grep -q 'not on "fdbox-ram"' "$tmp/exits.out" || return 1
	no_box vm:plain || return 1
	n=$(last_count plain)
	wait_ok plain $((n + 1)) || return 1
	fdbox vm quit plain
}

# QEMU dies after its state is written and before the seal (the test hook
# kills it there): the box is discarded and the RAM memfd, held here through
# /proc, keeps its size and pattern and can be boxed again.
killed_before_seal() {
	vm_launch victim 32M && wait_ok victim 1 || return 1
	pid=$(record_field victim pid)
	ram_fd=$(record_field victim ram_fd)
	# A failed redirection of exec would end this shell: check first.
	[ -r "/proc/$pid/fd/$ram_fd" ] || return 1
	exec 9<"/proc/$pid/fd/$ram_fd"
	victim_checks
	rc=$?
	exec 9<&-
	fdbox vm quit victim
	return $rc
}

victim_checks() {
	FDBOX_VM_TEST_HOOK=kill-before-seal exits 7 fdbox vm save victim || return 1
	grep -q 'box vm:victim discarded' "$tmp/exits.out" || return 1
	no_box vm:victim || return 1
	if [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status"; then
		echo "QEMU $pid still runs"
		return 1
	fi
	[ "$(stat -L -c %s /proc/self/fd/9)" = 33554432 ] || return 1
	# The word at 2 MiB is 0x200000 ^ 0xa5a5a5a5.
	word=$(dd if=/proc/self/fd/9 bs=4096 skip=512 count=1 2>/dev/null | od -An -tx4 -N4 | tr -d ' ')
	[ "$word" = a585a5a5 ] || { echo "word at 2 MiB: $word"; return 1; }
	fdbox create victim-again --add ram=/proc/self/fd/9
}

# save_one NAME RAM_BYTES: saves, and checks the state is under RAM/64.
save_one() {
	fdbox vm save "$1" >"$tmp/save-$1.out" || { cat "$tmp/save-$1.out"; return 1; }
	cat "$tmp/save-$1.out"
	state=$(sed -n 's/.*written (\([0-9]*\) bytes).*/\1/p' "$tmp/save-$1.out")
	echo "state $state bytes, RAM $2 bytes"
	[ -n "$state" ] && [ "$state" -gt 0 ] && [ $((state * 64)) -lt "$2" ]
}

saved_twice() {
	exits 9 fdbox vm save a && grep -q 'saved already' "$tmp/exits.out"
}

listed() {
	fdbox vm ls --json >"$tmp/ls" || return 1
	cat "$tmp/ls"
	for vm in "$@"; do
		tr -d ' \n' <"$tmp/ls" | grep -q "\"name\":\"${vm%:*}\",\"state\":\"${vm#*:}\"" || return 1
	done
}

# The counters of stage 1, for stage 2's command line.
hand_counts() {
	for vm in a b; do
		echo "fdbox.qemu_cpr.$vm=$(handover $vm)" | tee -a /tmp/fdbox.next-cmdline
	done
}

# cmdline_count NAME: what stage 1 handed over for NAME.
cmdline_count() {
	tr ' ' '\n' </proc/cmdline | sed -n "s/^fdbox\.qemu_cpr\.$1=//p"
}

wrong_ram_changes_nothing() {
	exits 10 fdbox vm restore a --ram 128M || return 1
	grep -q 'not 128' "$tmp/exits.out" || return 1
	fdbox ls vm:a --in --json | tr -d ' \n' >"$tmp/ls-a"
	cat "$tmp/ls-a"
	grep -q '"name":"ram","reason":[^,]*,"state":"restorable"' "$tmp/ls-a" &&
		grep -q '"name":"state","reason":[^,]*,"state":"restorable"' "$tmp/ls-a"
}

# QEMU refuses the arguments restore gives it, after RAM and state are
# retrieved: the guest goes back into a sealed outgoing box vm:c, whole.
reboxed() {
	exits 7 fdbox vm restore c -- -M no-such-machine || return 1
	grep -q 'boxed again in the sealed box vm:c' "$tmp/exits.out" || return 1
	fdbox ls vm:c --out --json | tr -d ' \n' >"$tmp/ls-c"
	cat "$tmp/ls-c"
	for e in ram state meta; do
		grep -q "\"name\":\"$e\",\"reason\":[^,]*,\"state\":\"sealed\"" "$tmp/ls-c" || return 1
	done
	fdbox cancel vm:c
}

# restores NAME HANDOVER: restores NAME; the new QEMU's guest counts on at
# the next value with no boot line, and pass K+1, wholly after the restore,
# checks every page.
restores() {
	fdbox vm restore "$1" || return 1
	wait_ok "$1" $((${2%%,*} + 1)) || return 1
	continues "$1" "$2"
}

ktap_new_dmesg >/dev/null
case "$stage" in
1)
	ktap_plan 10
	check "load fdbox_core and fdbox_memfd" load_modules
	check "launch guests a, b and c; they count and check their RAM" launch_two
	check "save refuses guest RAM off the shared file backend; the guest runs on" refuse_plain_ram
	check "QEMU killed before the seal: box discarded, RAM memfd intact" killed_before_seal
	check "save a: the state is under 1/64 of RAM" save_one a 67108864
	check "save a twice is refused" saved_twice
	check "save b" save_one b 33554432
	check "save c" save_one c 16777216
	check "ls shows a, b and c saved" listed a:saved b:saved c:saved
	check "hand the guests' last counts to stage 2" hand_counts
	;;
2)
	ktap_plan 8
	ka=$(cmdline_count a)
	kb=$(cmdline_count b)
	check "load fdbox_core and fdbox_memfd" load_modules
	check "ls shows a and b incoming" listed a:incoming b:incoming
	check "restore of an unknown VM is refused" exits 11 fdbox vm restore nosuch
	check "restore with the wrong RAM size is refused and changes nothing" wrong_ram_changes_nothing
	check "a continues at the next count, RAM intact" restores a "$ka"
	check "b continues at the next count, RAM intact" restores b "$kb"
	check "ls shows a and b running" listed a:running b:running
	check "a QEMU that won't start: the guest is boxed again, nothing lost" reboxed
	fdbox vm quit a >/dev/null
	fdbox vm quit b >/dev/null
	;;
esac
ktap_exit
