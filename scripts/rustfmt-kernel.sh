#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# rustfmt over the kernel-side Rust (everything outside the cargo workspace),
# with the kernel's own .rustfmt.toml. --check only reports.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kdir=$("$FDBOX_ROOT/scripts/kernel.sh" debug)
cd "$FDBOX_ROOT"
mapfile -t files < <(git ls-files -co --exclude-standard '*.rs' |
	grep -v -e '^tools/' -e '^fdbox-format/' -e '^fuzz/' -e '^uapi/')
[ ${#files[@]} -gt 0 ] || exit 0
rustfmt --edition 2021 --config-path "$kdir/src/.rustfmt.toml" "$@" "${files[@]}"
