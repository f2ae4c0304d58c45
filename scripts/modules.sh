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
find "$out" -name '*.ko' | sort
