#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The guest side of make demo: a VMM in miniature (fdbox-vmm-demo) keeps its
# guest RAM in a memfd, boxes it with its own state while a vCPU writes, and
# exits; the kernel kexecs; a fresh instance gets both back by name and
# checks every byte. The inspector shows the hand-over in between.
. /lib/fdbox/ktap.sh
stage=$(ktap_stage "$@") || exit 2
mods=${FDBOX_MODULES:-/lib/modules/fdbox}

# Milliseconds since this kernel booted.
now_ms() {
	awk '{ printf "%d", $1 * 1000 }' /proc/uptime
}

load_modules() {
	for m in fdbox_core fdbox_memfd; do
		grep -q "^$m " /proc/modules || insmod "$mods/$m.ko" || return 1
	done
}

# step NAME CMD...: one KTAP result, CMD's output as diagnostics.
step() {
	name=$1
	shift
	if "$@" >/tmp/step.out 2>&1; then
		ktap_diag </tmp/step.out
		ktap_ok "$name"
	else
		ktap_diag </tmp/step.out
		ktap_fail "$name"
	fi
}

ktap_new_dmesg >/dev/null
ktap_plan 3
case "$stage" in
1)
	echo "# Kernel 1 ($(uname -r)) is up after $(now_ms) ms."
	# THP for guest RAM. A VMM asks with MADV_HUGEPAGE under "advise"; this
	# small kernel has no madvise(2), so "always" stands in for it.
	echo always >/sys/kernel/mm/transparent_hugepage/shmem_enabled
	step "load fdbox_core and fdbox_memfd" load_modules
	step "the VMM boxes its guest RAM and state, and seals" fdbox-vmm-demo save
	echo "# The hand-over blob, decoded by the inspector from debugfs:"
	step "inspect the outgoing blob" fdbox inspect --out
	echo "# Now kexec into kernel 2..."
	;;
2)
	echo "# Kernel 2 is up after $(now_ms) ms; it was started by a KHO kexec."
	step "load fdbox_core and fdbox_memfd" load_modules
	echo "# What came over, as the inspector sees it:"
	step "inspect the incoming blob" fdbox inspect --in
	step "a new VMM instance gets its RAM back by name and verifies every byte" fdbox-vmm-demo restore
	;;
esac
ktap_exit
