# SPDX-License-Identifier: GPL-2.0
# Shared settings for the FDBox build scripts; sourced, never run.

FDBOX_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The toolchain and kernel builds are keyed by content and shared between
# checkouts; everything else lands in the checkout's build/.
FDBOX_CACHE=${FDBOX_CACHE:-/var/cache/fdbox}
FDBOX_BUILD=${FDBOX_BUILD:-$FDBOX_ROOT/build}

# Pinned versions (see kernel/VERSION and README.md).
KERNEL_PKG=linux-source-7.3
KERNEL_PKG_VERSION=$(sed -n 's/^package-version=//p' "$FDBOX_ROOT/kernel/VERSION")
KERNEL_TARBALL=/usr/src/linux-source-7.3.tar.xz
BINDGEN_VERSION=0.73.2
LLVM_VERSION=19

die() {
	echo "fdbox: error: $*" >&2
	exit 1
}

note() {
	echo "fdbox: $*" >&2
}

rustc_version() {
	rustc --version | awk '{ print $2 }'
}

rust_lib_src() {
	echo "$FDBOX_CACHE/rust-src/$(rustc_version)/usr/src/rustc-$(rustc_version)/library"
}

# The environment the kernel's Rust support needs.
kernel_env() {
	export PATH="/usr/lib/llvm-$LLVM_VERSION/bin:$FDBOX_CACHE/tools/bin:$PATH"
	export LIBCLANG_PATH="/usr/lib/llvm-$LLVM_VERSION/lib"
	RUST_LIB_SRC=$(rust_lib_src)
	export RUST_LIB_SRC
}

# Everything that decides the content of a kernel build of one flavour.
kernel_key() {
	local flavour=$1
	{
		echo "$KERNEL_PKG_VERSION"
		rustc --version
		"/usr/lib/llvm-$LLVM_VERSION/bin/clang" --version | head -n 1
		echo "bindgen $BINDGEN_VERSION"
		cat "$FDBOX_ROOT/kernel/fdbox.config"
		[ "$flavour" = debug ] && cat "$FDBOX_ROOT/kernel/debug.config"
		for p in "$FDBOX_ROOT"/kernel/patches/*.patch; do
			[ -e "$p" ] && cat "$p"
		done
		cat "$FDBOX_ROOT/scripts/kernel.sh"
	} | sha256sum | cut -c1-16
}

kernel_dir() {
	echo "$FDBOX_CACHE/kernel/$1-$(kernel_key "$1")"
}

# Builds what a release guest boots (kernel, modules, initramfs, runner) and
# sets kernel, initrd, vmrun and accel for make demo and make bench.
release_guest() {
	"$FDBOX_ROOT/scripts/deps.sh"
	note "building (cached after the first run)"
	local kdir
	kdir=$("$FDBOX_ROOT/scripts/kernel.sh" release)
	"$FDBOX_ROOT/scripts/modules.sh" release >/dev/null
	initrd=$("$FDBOX_ROOT/scripts/initramfs.sh" release)
	(cd "$FDBOX_ROOT" && cargo build -q --release --locked -p fdbox-vmrun)
	vmrun=$FDBOX_ROOT/target/release/fdbox-vmrun
	kernel=$kdir/out/arch/x86/boot/bzImage
	accel=$("$FDBOX_ROOT/scripts/accel.sh" "$vmrun" "$kernel" "$initrd")
}
