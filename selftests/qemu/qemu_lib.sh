# SPDX-License-Identifier: GPL-2.0
# What the guest-side QEMU scripts share (sourced): the test guest's QEMU
# arguments, launching it under fdbox vm, and reading its serial log.
#   fdbox-guest: boot, RAM 64 MiB       once, at power-on
#   fdbox-guest: filled 63 MiB          the pattern is in RAM
#   n=1 ok                              counter n, then the check of every page

QEMU_GUEST=/lib/fdbox/qemu-guest.bin
QEMU_SERIAL=/tmp/qemu-serial
export FDBOX_VM_DIR=/run/fdbox/vm
mkdir -p "$QEMU_SERIAL"

# vm_launch NAME RAM [QEMU-ARGS...]: the test guest, its serial port appended
# to $QEMU_SERIAL/NAME.log. TCG: this kernel has no KVM.
vm_launch() {
	local vm=$1 ram=$2
	shift 2
	fdbox vm launch "$vm" --ram "$ram" -- -M microvm -nodefaults -no-user-config \
		-display none -accel tcg,tb-size=16 -bios "$QEMU_GUEST" \
		-chardev "file,id=ser0,path=$QEMU_SERIAL/$vm.log,append=on" \
		-serial chardev:ser0 "$@"
}

# vm_log NAME: the guest's serial log.
vm_log() {
	echo "$QEMU_SERIAL/$1.log"
}

# last_count NAME: the last counter value the guest printed.
last_count() {
	grep -o 'n=[0-9]*' "$(vm_log "$1")" 2>/dev/null | tail -n 1 | cut -d= -f2
}

# first_count NAME: the first.
first_count() {
	grep -o 'n=[0-9]*' "$(vm_log "$1")" 2>/dev/null | head -n 1 | cut -d= -f2
}

# wait_ok NAME N: waits (up to 300 s: TCG in a VM) until the guest has
# checked every page of its pattern with a counter of N or more. Fails at
# once on BAD.
wait_ok() {
	local log i n
	log=$(vm_log "$1")
	i=0
	while [ $i -lt 3000 ]; do
		grep -q BAD "$log" 2>/dev/null && return 1
		n=$(grep -o 'n=[0-9]* ok' "$log" 2>/dev/null | tail -n 1 | sed 's/n=\([0-9]*\) ok/\1/')
		[ -n "$n" ] && [ "$n" -ge "$2" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "no 'n=$2 ok' from $1 in 300 s; its log ends:"
	tail -c 300 "$log"
	return 1
}

# record_field NAME FIELD: a number from fdbox vm's record of NAME.
record_field() {
	tr -d ' \n' <"$FDBOX_VM_DIR/$1.json" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"
}

# ms_of PHASE FILE: the milliseconds of PHASE in fdbox vm's output.
ms_of() {
	awk -v p="$1" '$1 == p && $3 == "ms" { print $2; exit }' "$2"
}
