#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make bench-format: fdbox-format's memfd metadata density and codec speed,
# printed as a table. Built like a kernel module's codec: optimized, one
# codegen unit, LTO. Timings are the best of several runs; run it on an idle
# machine (a VM test running beside it inflates them).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

cd "$FDBOX_ROOT"
export CARGO_PROFILE_BENCH_CODEGEN_UNITS=1
export CARGO_PROFILE_BENCH_LTO=fat
cargo bench --locked -q -p fdbox-format --bench format
