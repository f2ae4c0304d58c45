#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds every FDBox module out of tree against one kernel flavour, with
# clippy, warnings as errors. Output: build/modules/<flavour>/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=${1:?usage: modules.sh release|debug}
kdir=$("$FDBOX_ROOT/scripts/kernel.sh" "$flavour")
kernel_env
out=$FDBOX_BUILD/modules/$flavour
mkdir -p "$out"
make -s -C "$kdir/src" O="$kdir/out" ARCH=x86_64 LLVM=1 \
	M="$FDBOX_ROOT" MO="$out" CLIPPY=1 KRUSTFLAGS=-Dwarnings KCFLAGS=-Werror \
	-j"$(nproc)" modules
# compat_kexec's second build of the test handler: payload version 2, which
# reads only version 2 and writes version 1 on request. The same module name,
# so it goes to a directory of its own, never into the guest's module set.
make -s -C "$kdir/src" O="$kdir/out" ARCH=x86_64 LLVM=1 \
	M="$FDBOX_ROOT/selftests/core" MO="$out/compat-v2" CLIPPY=1 \
	KRUSTFLAGS="-Dwarnings --cfg fdbox_test_v2" KCFLAGS=-Werror \
	KBUILD_EXTRA_SYMBOLS="$out/Module.symvers" -j"$(nproc)" modules
# What fdbox check reads from a kernel that isn't running: each handler's
# versions and the core's format majors, built from the Rust constants.
for ko in fdbox-memfd/fdbox_memfd fdbox-iommufd/fdbox_iommufd fdbox-vfio/fdbox_vfio \
	selftests/core/fdbox_test compat-v2/fdbox_test; do
	modinfo -F fdbox_handler "$out/$ko.ko" | grep -Eq '^[^:]+:[0-9]+-[0-9]+$' ||
		die "$out/$ko.ko declares no fdbox_handler=COMPATIBLE:MIN-MAX"
done
modinfo -F fdbox_format_read "$out/fdbox-core/fdbox_core.ko" | grep -Eq '^[0-9]+-[0-9]+$' ||
	die "fdbox_core.ko declares no fdbox_format_read=MIN-MAX"
find "$out" -name '*.ko' | sort
