#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The guest's /init. Runs one stage of the tests and reports on ttyS1, the
# results port, while the kernel log goes to ttyS0:
#
#   # fdbox: stage N begin
#   # fdbox: run NAME         then NAME's own KTAP output
#   # fdbox: exit NAME RC
#   # fdbox: kexec            every stage but the last, when two-stage tests exist
#   # fdbox: done             the last stage finished
#
# Kernel command line:
#   fdbox.stage=N     which stage this boot is (1 when absent)
#   fdbox.stages=N    the last stage (default 2): each stage before it kexecs
#                     into the next when two-stage tests exist
#   fdbox.tests=DIR   the test tree (default /tests); DIR/single holds
#                     single-boot programs, DIR/twostage programs run as
#                     "PROG -s 1" before the kexec and "PROG -s 2" after it.
#
# A test hands words to the next stage's command line by appending them to
# /tmp/fdbox.next-cmdline (nothing on the root file system survives a kexec).

/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp

exec >/dev/ttyS1 2>&1

cmdline_arg() {
	for word in $(cat /proc/cmdline); do
		case "$word" in
		"$1="*) echo "${word#*=}" ;;
		esac
	done
}

stage=$(cmdline_arg fdbox.stage)
stage=${stage:-1}
last=$(cmdline_arg fdbox.stages)
last=${last:-2}
tests=$(cmdline_arg fdbox.tests)
tests=${tests:-/tests}
export FDBOX_STAGE=$stage

run() {
	name=$1
	shift
	echo "# fdbox: run $name"
	"$@"
	echo "# fdbox: exit $name $?"
}

# kmemleak reports what this stage leaked. A scan takes ~15 s under TCG.
check_kmemleak() {
	echo "TAP version 13"
	echo "1..1"
	# kmemleak ignores objects younger than 5 s: let the last test's age.
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	leaks=$(cat /sys/kernel/debug/kmemleak)
	if [ -z "$leaks" ]; then
		echo "ok 1 no leaks in stage $stage"
	else
		echo "$leaks" | sed 's/^/# /'
		echo "not ok 1 kmemleak found leaks in stage $stage"
	fi
}

finish() {
	echo "# fdbox: done"
	sync
	poweroff -f
}

echo "# fdbox: stage $stage begin"
for mod in /lib/modules/fdbox/*.ko; do
	[ -e "$mod" ] && export FDBOX_MODULES=/lib/modules/fdbox
done

if [ "$stage" = 1 ]; then
	for t in "$tests"/single/*; do
		[ -x "$t" ] && run "$(basename "$t")" "$t"
	done
fi
for t in "$tests"/twostage/*; do
	[ -x "$t" ] && run "$(basename "$t")" "$t" -s "$stage"
done
[ -e /sys/kernel/debug/kmemleak ] && run kmemleak check_kmemleak
echo "# fdbox: stage $stage end"

if [ "$stage" -lt "$last" ] && [ -n "$(ls "$tests"/twostage 2>/dev/null)" ]; then
	next=$(sed -e 's/ *fdbox\.stage=[0-9]*//' /proc/cmdline)
	[ -f /tmp/fdbox.next-cmdline ] && next="$next $(tr '\n' ' ' </tmp/fdbox.next-cmdline)"
	initrd=/boot/initrd.cpio
	# A stage that kexecs again needs /boot too: send it along as a second archive.
	if [ $((stage + 1)) -lt "$last" ]; then
		initrd=/tmp/initrd-next.cpio
		cat /boot/initrd.cpio >"$initrd"
		(cd / && find boot | cpio -o -H newc 2>/dev/null) >>"$initrd"
	fi
	echo "# fdbox: kexec"
	fdbox-kexec /boot/bzImage "$initrd" "$next fdbox.stage=$((stage + 1))"
	echo "# fdbox: kexec failed: exit $?"
	poweroff -f
fi
finish
