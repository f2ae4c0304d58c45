#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make fuzz: runs every cargo-fuzz target of fdbox-format (fuzz/) for SECONDS
# each (default 60), seeded with the golden blobs. --smoke: about 20 s of
# fuzzing in all, for make test. Needs the nightly toolchain; installs
# cargo-fuzz at a pinned version into the shared cache if missing. Crashes
# land in build/fuzz/artifacts/<target>/ and fail the run.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

CARGO_FUZZ_VERSION=0.13.2
SMOKE_TOTAL=20

usage() {
	echo "usage: $0 [--smoke] [SECONDS]" >&2
	exit 2
}

smoke=
seconds=60
while [ $# -gt 0 ]; do
	case "$1" in
	--smoke) smoke=1 ;;
	-h | --help) usage ;;
	*[!0-9]* | '') usage ;;
	*) seconds=$1 ;;
	esac
	shift
done

rustup run nightly rustc --version >/dev/null 2>&1 ||
	die "the nightly toolchain is missing (rustup toolchain install nightly)"

tools=$FDBOX_CACHE/tools
if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
	note "installing cargo-fuzz $CARGO_FUZZ_VERSION"
	cargo +nightly install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" \
		--root "$tools" || die "cannot install cargo-fuzz"
fi
export PATH="$tools/bin:$PATH"

out=$FDBOX_BUILD/fuzz
target_dir=$out/target
mkdir -p "$out"
cd "$FDBOX_ROOT/fuzz"
mapfile -t targets < <(cargo +nightly fuzz list)
[ ${#targets[@]} -gt 0 ] || die "no fuzz targets"
if [ -n "$smoke" ]; then
	seconds=$((SMOKE_TOTAL / ${#targets[@]}))
	[ "$seconds" -gt 0 ] || seconds=1
fi

note "building ${#targets[@]} fuzz targets"
cargo +nightly fuzz build --target-dir "$target_dir" >"$out/build.log" 2>&1 ||
	{ tail -n 25 "$out/build.log" >&2; die "fuzz build failed (log: $out/build.log)"; }

golden=$FDBOX_ROOT/fdbox-format/tests/golden
status=0
for t in "${targets[@]}"; do
	corpus=$out/corpus/$t
	artifacts=$out/artifacts/$t
	mkdir -p "$corpus" "$artifacts"
	# Seeds: whole blobs for decode, bodies (header stripped) for roundtrip.
	for f in "$golden"/v*/*.bin; do
		[ -e "$f" ] || continue
		seed=$corpus/golden-$(basename "$(dirname "$f")")-$(basename "$f")
		case "$t" in
		decode) cp "$f" "$seed" ;;
		roundtrip) tail -c +33 "$f" >"$seed" ;;
		esac
	done
	note "fuzzing $t for $seconds s"
	if ! cargo +nightly fuzz run --target-dir "$target_dir" "$t" "$corpus" -- \
		-max_total_time="$seconds" -max_len=8192 -print_final_stats=1 \
		-artifact_prefix="$artifacts/" >"$out/$t.log" 2>&1; then
		tail -n 40 "$out/$t.log" >&2
		echo "fdbox: fuzz target $t failed; artifacts in $artifacts" >&2
		status=1
		continue
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log" | tail -n 1)
	echo "fuzz $t: ${runs:-?} runs in $seconds s, no crash"
done
exit $status
