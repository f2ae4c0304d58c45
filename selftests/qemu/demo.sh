#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The guest side of make demo: two unmodified QEMUs run tiny guests that
# fill their RAM with a pattern and count; fdbox vm saves both (device state
# only: guest RAM stays in its memfd, boxed), the host kexecs, and fdbox vm
# restores both. Each guest goes on counting with no second boot, and checks
# every page of its pattern again.
. /lib/fdbox/ktap.sh
. /lib/fdbox/qemu_lib.sh
stage=$(ktap_stage "$@") || exit 2

now_ms() {
	awk '{ printf "%d", $1 * 1000 }' /proc/uptime
}

launch() {
	vm_launch "$1" "$2" && wait_ok "$1" 3 || return 1
	echo "guest $1 says:"
	grep -v '^$' "$(vm_log "$1")" | head -n 2
	echo "n=$(last_count "$1") ..."
	echo "THP-backed shmem now: $(awk '/^ShmemHugePages:/ { print $2, $3 }' /proc/meminfo)"
}

# counts_on NAME HANDOVER: the restored guest passed a whole check of its
# RAM after the restore, and its count went on at the next value.
counts_on() {
	wait_ok "$1" $((${2%%,*} + 1)) && continues "$1" "$2"
}

ktap_new_dmesg >/dev/null
case "$stage" in
1)
	ktap_plan 6
	echo "# Kernel 1 ($(uname -r)) is up after $(now_ms) ms. $(qemu-system-x86_64 --version | head -n 1)."
	# THP for guest RAM where asked for; QEMU asks (MADV_HUGEPAGE).
	echo advise >/sys/kernel/mm/transparent_hugepage/shmem_enabled
	check "load fdbox_core and fdbox_memfd" load_modules
	check "launch QEMU: guest red, 64 MiB of RAM in a memfd" launch red 64M
	check "launch QEMU: guest blue, 32 MiB of RAM in a memfd" launch blue 32M
	check "fdbox vm save red: stop, write device state, box RAM + state + metadata, seal" fdbox vm save red
	check "fdbox vm save blue" fdbox vm save blue
	echo "# The hand-over blob, decoded by the inspector:"
	check "inspect the outgoing blob" fdbox inspect --out
	echo "fdbox.demo.red=$(handover red) fdbox.demo.blue=$(handover blue)" >>/tmp/fdbox.next-cmdline
	echo "# Now kexec into kernel 2..."
	;;
2)
	ktap_plan 6
	red=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^fdbox\.demo\.red=//p')
	blue=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^fdbox\.demo\.blue=//p')
	echo "# Kernel 2 is up after $(now_ms) ms; it was started by a KHO kexec."
	check "load fdbox_core and fdbox_memfd" load_modules
	check "fdbox vm ls: what came over" fdbox vm ls
	check "fdbox vm restore red: retrieve, start QEMU on the same RAM, load the state, continue" fdbox vm restore red
	check "fdbox vm restore blue" fdbox vm restore blue
	check "red counts on from where it stopped, every page of its pattern intact" counts_on red "$red"
	check "blue counts on from where it stopped, every page of its pattern intact" counts_on blue "$blue"
	fdbox vm quit red >/dev/null
	fdbox vm quit blue >/dev/null
	;;
esac
ktap_exit
