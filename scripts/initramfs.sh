#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Assembles the guest's initramfs for one kernel flavour:
#   busybox-static, /init, the modules, the static test programs, the planted
#   failures for the runner's self-test, and the kexec payload (/boot: the
#   same kernel and the same initramfs, for stage 2).
# Output: build/initramfs/<flavour>/initrd.cpio
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=${1:?usage: initramfs.sh release|debug}
kdir=$("$FDBOX_ROOT/scripts/kernel.sh" "$flavour")
modules=$FDBOX_BUILD/modules/$flavour
out=$FDBOX_BUILD/initramfs/$flavour
root=$out/root
progs=$out/progs
hdr=$kdir/headers/include
selftests=$kdir/src/tools/testing/selftests

rm -rf "$root"
mkdir -p "$progs" "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,boot,lib/fdbox,lib/modules/fdbox}
mkdir -p "$root"/tests/{single,twostage}

# Stripped: the initramfs is in the guest's memory twice (unpacked, and as
# the next stage's archive), and a kexec needs room beside what tests keep.
cc_static() {
	gcc -static -s -O2 -Wall -Werror -I"$hdr" "$@"
}

# Static programs, against this kernel's uapi headers.
cc_static -o "$progs/fdbox-kexec" "$FDBOX_ROOT/selftests/harness/fdbox-kexec.c"
cc_static -Wno-unused-function -I"$selftests" -I"$selftests/liveupdate/lib/include" \
	-o "$progs/luo_kexec_simple" \
	"$selftests/liveupdate/luo_kexec_simple.c" "$selftests/liveupdate/lib/lu_utils.c"
# fdbox_core's kselftests: kselftest_harness.h, the uapi header, and the test
# handler's. Each loads the modules it needs; a load failure is a KTAP failure.
for t in uapi scale kexec users compat; do
	cc_static -I"$selftests" -I"$FDBOX_ROOT/uapi" -I"$FDBOX_ROOT/selftests/core" \
		-I"$FDBOX_ROOT/selftests/memfd" -o "$progs/fdbox_${t}_test" \
		"$FDBOX_ROOT/selftests/core/fdbox_${t}_test.c" "$FDBOX_ROOT/selftests/core/fdbox_util.c"
done

# fdbox_memfd's kselftests.
for t in uapi kexec seal_complete hugetlb_kexec hugetlb_gigantic; do
	cc_static -I"$selftests" -I"$FDBOX_ROOT/uapi" -I"$FDBOX_ROOT/selftests/core" \
		-I"$FDBOX_ROOT/selftests/memfd" -o "$progs/fdbox_memfd_${t}_test" \
		"$FDBOX_ROOT/selftests/memfd/fdbox_memfd_${t}_test.c" "$FDBOX_ROOT/selftests/core/fdbox_util.c"
done

# fdbox_iommufd's and fdbox_vfio's kselftests, which drive QEMU's edu device.
for t in uapi kexec; do
	cc_static -I"$selftests" -I"$FDBOX_ROOT/uapi" -I"$FDBOX_ROOT/selftests/core" \
		-I"$FDBOX_ROOT/selftests/memfd" -I"$FDBOX_ROOT/selftests/vfio" \
		-o "$progs/fdbox_vfio_${t}_test" \
		"$FDBOX_ROOT/selftests/vfio/fdbox_vfio_${t}_test.c" "$FDBOX_ROOT/selftests/core/fdbox_util.c"
done

# The Rust userspace tools, static.
static_target=x86_64-unknown-linux-gnu
(cd "$FDBOX_ROOT" && RUSTFLAGS="-C target-feature=+crt-static -C strip=symbols" \
	cargo build -q --release --locked -p fdbox-cli -p fdbox-vmm-demo --features fdbox-cli/test-hooks \
	--target "$static_target" --target-dir "$FDBOX_BUILD/cargo-static")
for p in fdbox fdbox-vmm-demo; do
	install -m 0755 "$FDBOX_BUILD/cargo-static/$static_target/release/$p" "$progs/$p"
done

install -m 0755 /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
install -m 0755 "$FDBOX_ROOT/selftests/harness/init.sh" "$root/init"
install -m 0644 "$FDBOX_ROOT/selftests/harness/ktap.sh" "$root/lib/fdbox/ktap.sh"
install -m 0755 "$progs/fdbox-kexec" "$progs/fdbox" "$progs/fdbox-vmm-demo" "$root/bin/"
install -m 0755 "$progs/luo_kexec_simple" "$root/lib/fdbox/luo_kexec_simple"
find "$modules" -path "$modules/compat-v2" -prune -o -name '*.ko' \
	-exec install -m 0644 -t "$root/lib/modules/fdbox" {} +
# compat_kexec's other kernel: the same modules without fdbox_iommufd, with
# the test handler's version 2 build, and two modules compressed as
# distributions ship them, for fdbox check to read.
# Hard links, not copies: the guest's memory is tight when it kexecs.
v1=$root/lib/modules/fdbox
v2=$root/lib/modules/fdbox-v2
mkdir -p "$v2"
for m in fdbox_core fdbox_format_test fdbox_kho_test; do
	ln "$v1/$m.ko" "$v2/$m.ko"
done
install -m 0644 "$modules/compat-v2/fdbox_test.ko" "$v2/fdbox_test.ko"
xz -c --check=crc32 "$v1/fdbox_memfd.ko" >"$v2/fdbox_memfd.ko.xz"
zstd -q -c "$v1/fdbox_vfio.ko" >"$v2/fdbox_vfio.ko.zst"

# The tests /init runs: single-boot ones in tests/single, two-stage ones in
# tests/twostage (run with -s 1, then -s 2 after the kexec).
install -m 0755 "$FDBOX_ROOT/selftests/kho/kho_roundtrip.sh" "$root/tests/twostage/kho_roundtrip"
install -m 0755 "$FDBOX_ROOT/selftests/luo/luo_kexec_simple.sh" "$root/tests/twostage/luo_kexec_simple"
install -m 0755 "$FDBOX_ROOT/selftests/format/format_roundtrip.sh" "$root/tests/twostage/format_roundtrip"
install -m 0755 "$progs/fdbox_uapi_test" "$root/tests/single/core_uapi"
install -m 0755 "$progs/fdbox_kexec_test" "$root/tests/twostage/core_kexec"
# After core_kexec in both stages (the order is alphabetical): core_kexec's
# stage 1 expects no box at all, and its stage 2 runs before anything loads
# fdbox_test.ko.
install -m 0755 "$progs/fdbox_scale_test" "$root/tests/twostage/core_scale"
# make scale runs it alone, at full size (fdbox.tests=/scale).
mkdir -p "$root/scale/twostage"
install -m 0755 "$progs/fdbox_scale_test" "$root/scale/twostage/core_scale"
install -m 0755 "$progs/fdbox_users_test" "$root/tests/twostage/core_users"
# A boot chain of its own (fdbox.tests=/compat, three stages): kernels with
# different builds of the test handler, forward and back.
mkdir -p "$root/compat/twostage"
install -m 0755 "$progs/fdbox_compat_test" "$root/compat/twostage/compat_kexec"
# The stress fuzzer, in a tree of its own (fdbox.tests=/stress), so that its
# model of the box table is exact: a boot pair of 60 s in make test, longer
# with make stress (the seconds, seed and stages on the command line).
cc_static -I"$FDBOX_ROOT/uapi" -I"$FDBOX_ROOT/selftests/core" -I"$selftests" \
	-o "$progs/fdbox_stress" "$FDBOX_ROOT/selftests/stress/fdbox_stress.c" \
	"$FDBOX_ROOT/selftests/core/fdbox_util.c" -lpthread
mkdir -p "$root/stress/twostage"
install -m 0755 "$progs/fdbox_stress" "$root/stress/twostage/stress_fuzz"
install -m 0755 "$FDBOX_ROOT/selftests/core/cli_roundtrip.sh" "$root/tests/twostage/tool_cli"
install -m 0755 "$progs/fdbox_memfd_uapi_test" "$root/tests/single/memfd_uapi"
install -m 0755 "$progs/fdbox_memfd_kexec_test" "$root/tests/twostage/memfd_kexec"
install -m 0755 "$progs/fdbox_memfd_seal_complete_test" "$root/tests/twostage/memfd_seal_complete"
install -m 0755 "$progs/fdbox_memfd_hugetlb_kexec_test" "$root/tests/twostage/hugetlb_kexec"
# A boot of its own (fdbox.tests=/gigantic), whose command line reserves a
# 1 GiB page.
mkdir -p "$root/gigantic/single"
install -m 0755 "$progs/fdbox_memfd_hugetlb_gigantic_test" "$root/gigantic/single/hugetlb_gigantic"
install -m 0755 "$progs/fdbox_vfio_uapi_test" "$root/tests/single/vfio_uapi"
install -m 0755 "$progs/fdbox_vfio_kexec_test" "$root/tests/twostage/vfio_kexec"

# A boot pair of its own (fdbox.tests=/corrupt): the first kernel hands over a
# corrupt blob as fdbox_core's.
mkdir -p "$root/corrupt/twostage"
install -m 0755 "$FDBOX_ROOT/selftests/core/core_corrupt_blob.sh" "$root/corrupt/twostage/core_corrupt_blob"

# Another (fdbox.tests=/oversized): the first kernel hands over a blob whose
# recorded size reaches past the memory KHO preserved for it.
mkdir -p "$root/oversized/twostage"
install -m 0755 "$FDBOX_ROOT/selftests/core/core_oversized_blob.sh" "$root/oversized/twostage/core_oversized_blob"

# Another (fdbox.tests=/forged): the first kernel hands over, as fdbox_core's,
# a blob with a valid checksum whose entries are forged (fdbox_format_test
# mode=4); the second loads fdbox_core and the handlers itself.
cc_static -I"$selftests" -I"$FDBOX_ROOT/uapi" -I"$FDBOX_ROOT/selftests/core" \
	-o "$progs/fdbox_forged_test" \
	"$FDBOX_ROOT/selftests/core/fdbox_forged_test.c" "$FDBOX_ROOT/selftests/core/fdbox_util.c"
mkdir -p "$root/forged/twostage"
install -m 0755 "$progs/fdbox_forged_test" "$root/forged/twostage/core_forged_blob"

# Another (fdbox.tests=/atomic): a kexec lands while a SEAL or CANCEL replaces
# the hand-over, held there by fdbox_core's test hook; the paused SEAL holds
# FDBox's lock until the kexec, so nothing else can share the boot.
cc_static -I"$selftests" -I"$FDBOX_ROOT/uapi" -I"$FDBOX_ROOT/selftests/core" \
	-o "$progs/fdbox_atomic_test" \
	"$FDBOX_ROOT/selftests/core/fdbox_atomic_test.c" "$FDBOX_ROOT/selftests/core/fdbox_util.c"
mkdir -p "$root/atomic/twostage"
install -m 0755 "$progs/fdbox_atomic_test" "$root/atomic/twostage/core_handover_atomic"

# make bench's guest program, a tree of its own (fdbox.tests=/bench).
cc_static -I"$selftests" -I"$FDBOX_ROOT/uapi" -I"$FDBOX_ROOT/selftests/core" \
	-I"$FDBOX_ROOT/selftests/memfd" -o "$progs/fdbox_memfd_bench" \
	"$FDBOX_ROOT/selftests/bench/fdbox_memfd_bench.c" "$FDBOX_ROOT/selftests/core/fdbox_util.c"
mkdir -p "$root/bench/twostage"
install -m 0755 "$progs/fdbox_memfd_bench" "$root/bench/twostage/memfd_bench"

# make demo's guest program.
mkdir -p "$root/demo/twostage"
install -m 0755 "$FDBOX_ROOT/selftests/demo/demo.sh" "$root/demo/twostage/demo"

# Planted failures, booted only by the runner's self-test.
cp -r "$FDBOX_ROOT/selftests/harness/planted" "$root/planted"

# The kernel opens /dev/console for init before devtmpfs is mounted.
mknod -m 600 "$root/dev/console" c 5 1

cpio_of() {
	(cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet)
}

# Stage 2 boots the same image without the payload; the kernel unpacks
# concatenated archives, so the payload is a second archive on top.
payload=$out/payload
rm -rf "$payload"
mkdir -p "$payload/boot"
cpio_of "$root" >"$out/root.cpio"
cp "$out/root.cpio" "$payload/boot/initrd.cpio"
install -m 0644 "$kdir/out/arch/x86/boot/bzImage" "$payload/boot/bzImage"
{
	cat "$payload/boot/initrd.cpio"
	cpio_of "$payload"
} >"$out/initrd.cpio.tmp"
mv "$out/initrd.cpio.tmp" "$out/initrd.cpio"
rm -rf "$payload"
ln -sf "$kdir/out/arch/x86/boot/bzImage" "$out/bzImage"
echo "$out/initrd.cpio"
