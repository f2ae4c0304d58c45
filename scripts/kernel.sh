#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds the pinned kernel of one flavour (release or debug) into the cache,
# keyed by everything that decides its content, and prints its directory.
# An unchanged kernel is never rebuilt.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=${1:?usage: kernel.sh release|debug}
case "$flavour" in
release | debug) ;;
*) die "unknown kernel flavour '$flavour' (release or debug)" ;;
esac

kernel_env
dir=$(kernel_dir "$flavour")
src=$dir/src
out=$dir/out
kmake() {
	make -s -C "$src" O="$out" ARCH=x86_64 LLVM=1 "$@"
}

# One build of a flavour at a time: a second caller waits, then finds it built.
mkdir -p "$(dirname "$dir")"
exec 9>"$(dirname "$dir")/.lock-$flavour"
flock 9

if [ -f "$dir/.built" ]; then
	echo "$dir"
	exit 0
fi

if [ ! -f "$dir/.patched" ]; then
	note "extracting $KERNEL_TARBALL into $src"
	rm -rf "$dir"
	mkdir -p "$src"
	tar -xJf "$KERNEL_TARBALL" --strip-components=1 -C "$src"
	for p in "$FDBOX_ROOT"/kernel/patches/*.patch; do
		[ -e "$p" ] || continue
		note "applying $(basename "$p")"
		patch -s -p1 -d "$src" --no-backup-if-mismatch <"$p" ||
			die "kernel/patches/$(basename "$p") does not apply to $KERNEL_PKG $KERNEL_PKG_VERSION"
	done
	touch "$dir/.patched"
fi

fragments=("$FDBOX_ROOT/kernel/fdbox.config")
[ "$flavour" = debug ] && fragments+=("$FDBOX_ROOT/kernel/debug.config")

mkdir -p "$out"
kmake rustavailable >/dev/null || die "the kernel's Rust support is unavailable: run 'make -C $src O=$out LLVM=1 rustavailable'"
kmake tinyconfig >/dev/null
"$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${fragments[@]}" >/dev/null
kmake olddefconfig >/dev/null

# Kconfig drops an option silently when a dependency is missing.
dropped=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*)
		if ! grep -qxF "$line" "$out/.config"; then
			echo "fdbox: error: config option dropped by Kconfig: $line (have: $(grep -E "^(# )?${line%%=*}[= ]" "$out/.config" || echo unset))" >&2
			dropped=1
		fi
		;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }
		opt=${opt%% *}
		if grep -q "^$opt=" "$out/.config"; then
			echo "fdbox: error: config option forced on by Kconfig: $opt" >&2
			dropped=1
		fi
		;;
	esac
done < <(cat "${fragments[@]}")
[ "$dropped" = 0 ] || exit 1

note "building the $flavour kernel in $out (a cold build takes about 5 minutes)"
kmake -j"$(nproc)" bzImage modules
kmake headers_install INSTALL_HDR_PATH="$dir/headers" >/dev/null
touch "$dir/.built"

# Keep the two newest builds of this flavour; each is about 0.5 GB.
ls -1dt "$FDBOX_CACHE/kernel/$flavour"-* 2>/dev/null | tail -n +3 | xargs -r rm -rf

echo "$dir"
