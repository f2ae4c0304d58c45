# SPDX-License-Identifier: GPL-2.0
# What the guest-side QEMU scripts share (sourced, after ktap.sh): loading
# the modules, one KTAP result per step, the test guest's QEMU arguments,
# launching it under fdbox vm, and reading its serial log.
#   fdbox-guest: boot, RAM 64 MiB       once, at power-on
#   fdbox-guest: filled 63 MiB          the pattern is in RAM
#   n=1 ok                              counter n, then the check of every page

QEMU_GUEST=/lib/fdbox/qemu-guest.bin
QEMU_SERIAL=/tmp/qemu-serial
export FDBOX_VM_DIR=/run/fdbox/vm
mkdir -p "$QEMU_SERIAL"

# load_modules: fdbox_core and fdbox_memfd, unless loaded.
load_modules() {
	for m in fdbox_core fdbox_memfd; do
		[ -d "/sys/module/$m" ] || insmod "${FDBOX_MODULES:-/lib/modules/fdbox}/$m.ko" || return 1
	done
}

# check NAME CMD...: one KTAP result, with CMD's output as diagnostics.
check() {
	local what=$1 out=$QEMU_SERIAL/check.out rc
	shift
	"$@" >"$out" 2>&1
	rc=$?
	# Output that ends mid-line would swallow the result line.
	[ -n "$(tail -c 1 "$out")" ] && echo >>"$out"
	ktap_diag <"$out"
	if [ "$rc" = 0 ]; then
		ktap_ok "$what"
	else
		ktap_fail "$what"
	fi
}

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

# handover NAME: what the next kernel needs to check NAME's continuity, as
# one word: K,TAIL. K is the count of the last whole "n=K ok" line; TAIL is
# what follows the last newline (QEMU may stop the guest mid-line, even
# mid-number), spaces as '+', or '-' if nothing does.
handover() {
	local log k tail
	log=$(vm_log "$1")
	k=$(grep -o '^n=[0-9]* ok$' "$log" | tail -n 1 | sed 's/n=\([0-9]*\) ok/\1/')
	if [ -s "$log" ] && [ "$(tail -c 1 "$log" | od -An -c | tr -d ' ')" != '\n' ]; then
		tail=$(tail -n 1 "$log" | tr ' ' '+')
	fi
	echo "${k:-0},${tail:--}"
}

# continues NAME K,TAIL: the restored guest's log, joined to TAIL, goes on
# at count K+1, with no second boot and no BAD.
continues() {
	local log k tail first
	log=$(vm_log "$1")
	k=${2%%,*}
	tail=${2#*,}
	[ "$tail" = - ] && tail=
	{
		printf '%s' "$tail" | tr '+' ' '
		cat "$log"
	} >"$log.joined"
	first=$(grep -o 'n=[0-9]*' "$log.joined" | head -n 1 | cut -d= -f2)
	echo "before the kexec: n=$k ok, then \"$(printf '%s' "$tail" | tr '+' ' ')\"; the restored guest's log begins:"
	awk 'NR <= 2' "$log"
	if grep -q 'fdbox-guest: boot' "$log"; then
		echo "a second boot"
		return 1
	fi
	if grep -q BAD "$log"; then
		echo "a page of the pattern changed"
		return 1
	fi
	[ "$first" = $((k + 1)) ] || { echo "the count went on at $first, not $((k + 1))"; return 1; }
}

# last_count NAME: the count of the last whole "n=K ok" line.
last_count() {
	handover "$1" | cut -d, -f1
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
