#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# make bench's blackout rows (two stages): an unmodified QEMU guest of
# 64 MiB, 256 MiB and the largest this VM allows, each with its RAM filled
# with non-zero data, saved and restored by two routes in the same VM run.
#   file:  stop, migrate with guest RAM into a file, a new QEMU starts, loads
#          it (migrate-incoming), cont; what a user has without FDBox.
#   fdbox: stop, cpr-reboot save (device state only), box and SEAL; after the
#          kexec, RETRIEVE, a new QEMU starts on the same RAM, loads, cont.
# Both routes pay the kexec equally, so it is printed apart. Each case prints
# "# bench-qemu: key=value ..." lines that scripts/bench-qemu.awk joins.
. /lib/fdbox/ktap.sh
. /lib/fdbox/qemu_lib.sh
stage=$(ktap_stage "$@") || exit 2
tmp=/tmp/qemu_bench
mkdir -p "$tmp"

# The sizes in MiB: 64, 256, and the largest guest this VM has room for in
# steps of 256 MiB, at most 3 GiB (the test guest fills RAM below 3 GiB).
# Each size is saved the FDBox way first, on fresh memory, and stays boxed
# while the file route then needs the guest and its state file at once: three
# guests' worth, beside the smaller boxed guests and QEMU's own.
sizes() {
	avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
	big=$(((avail - 64 - 256 - 768) / 3 / 256 * 256))
	[ "$big" -gt 3072 ] && big=3072
	# Too small a VM for a third size: the run then fails, not shrinks.
	[ "$big" -gt 256 ] || big=0
	echo 64 256 "$big"
}

# stat_of NAME: one of fdbox_memfd's counters.
stat_of() {
	awk -v k="$1" '$1 == k { print $2 }' /sys/kernel/debug/fdbox_memfd/stats
}

# phases FILE PHASE...: "phase=ms" for each.
phases() {
	f=$1
	shift
	for p in "$@"; do
		printf ' %s=%s' "$p" "$(ms_of "$p" "$f")"
	done
}

file_route() {
	local mib=$1 vm=f$1 k
	vm_launch "$vm" "${mib}M" && wait_ok "$vm" 1 || return 1
	fdbox vm save "$vm" --to-file "$tmp/$vm.state" >"$tmp/$vm.save" || return 1
	bytes=$(stat -c %s "$tmp/$vm.state")
	k=$(last_count "$vm")
	fdbox vm restore "$vm" --from-file "$tmp/$vm.state" >"$tmp/$vm.restore" || return 1
	wait_ok "$vm" $((k + 1)) || return 1
	fdbox vm quit "$vm" >/dev/null
	rm -f "$tmp/$vm.state"
	cat "$tmp/$vm.save" "$tmp/$vm.restore"
	echo "# bench-qemu: route=file mib=$mib state_bytes=$bytes$(phases "$tmp/$vm.save" stop migrate)$(phases "$tmp/$vm.restore" qemu-start load cont)"
}

fdbox_save() {
	local mib=$1 vm=b$1
	vm_launch "$vm" "${mib}M" && wait_ok "$vm" 1 || return 1
	held0=$(stat_of held)
	large0=$(stat_of held_large)
	migrated0=$(stat_of migrated)
	fdbox vm save "$vm" >"$tmp/$vm.save" || return 1
	cat "$tmp/$vm.save"
	# What ADD did to the folios: held, of them large, and migrated out of
	# KHO scratch (a copy each), which is where the time goes if it grows.
	folios=$(($(stat_of held) - held0))
	large=$(($(stat_of held_large) - large0))
	migrated=$(($(stat_of migrated) - migrated0))
	bytes=$(sed -n 's/.*written (\([0-9]*\) bytes).*/\1/p' "$tmp/$vm.save")
	echo "fdbox.qemu_bench.$vm=$(handover "$vm")" >>/tmp/fdbox.next-cmdline
	echo "# bench-qemu: route=fdbox-save mib=$mib state_bytes=$bytes folios=$folios large=$large migrated=$migrated$(phases "$tmp/$vm.save" stop migrate box meta seal)"
}

fdbox_restore() {
	local mib=$1 vm=b$1 k
	k=$(tr ' ' '\n' </proc/cmdline | sed -n "s/^fdbox\.qemu_bench\.$vm=//p")
	[ -n "$k" ] || { echo "stage 1 handed over nothing for $vm"; return 1; }
	fdbox vm restore "$vm" >"$tmp/$vm.restore" || { cat "$tmp/$vm.restore"; return 1; }
	cat "$tmp/$vm.restore"
	wait_ok "$vm" $((${k%%,*} + 1)) || return 1
	continues "$vm" "$k" || return 1
	fdbox vm quit "$vm" >/dev/null
	echo "# bench-qemu: route=fdbox-restore mib=$mib$(phases "$tmp/$vm.restore" check retrieve qemu-start load cont)"
}

warm_up() {
	vm_launch warm 16M && fdbox vm quit warm
}

ktap_new_dmesg >/dev/null
case "$stage" in
1)
	# As on a host that runs QEMU on memfds: shmem THP where asked for, and
	# QEMU asks (MADV_HUGEPAGE on guest RAM). Both routes get the same.
	echo advise >/sys/kernel/mm/transparent_hugepage/shmem_enabled
	echo "# bench-qemu-thp: shmem_enabled=$(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled)"
	set -- $(sizes)
	ktap_plan 7
	check "load fdbox_core and fdbox_memfd" load_modules
	echo "fdbox.qemu_bench.sizes=$1,$2,$3" >>/tmp/fdbox.next-cmdline
	awk '/^(MemTotal|MemAvailable|CmaTotal|CmaFree):/' /proc/meminfo | ktap_diag
	for mib in "$@"; do
		[ "$mib" -gt 0 ] || { ktap_fail "a VM too small for a third guest size"; continue; }
		check "fdbox route, save, $mib MiB guest" fdbox_save "$mib"
		check "file route, $mib MiB guest" file_route "$mib"
	done
	;;
2)
	set -- $(sed -n 's/.*fdbox\.qemu_bench\.sizes=\([0-9]*\),\([0-9]*\),\([0-9]*\).*/\1 \2 \3/p' /proc/cmdline)
	# Three sizes, or the plan (5) is not met.
	ktap_plan 5
	check "load fdbox_core and fdbox_memfd" load_modules
	# The first QEMU of a fresh kernel pages its 60 MB in from the
	# initramfs; stage 1's file route never pays that, so neither does this.
	check "warm up: one QEMU started and quit" warm_up
	for mib in "$@"; do
		check "fdbox route, restore, $mib MiB guest" fdbox_restore "$mib"
	done
	;;
esac
ktap_exit
