#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Installs everything FDBox builds and tests with. Idempotent: a machine that
# already has it all is checked in about a second and left untouched.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

APT_PACKAGES=(
	clang-19 lld-19 llvm-19 libclang-19-dev libelf-dev libssl-dev bc bison
	flex cpio busybox-static python3 make gcc libc6-dev xz-utils rsync kmod
	linux-libc-dev binutils zstd
)
QEMU_PACKAGE=qemu-system-x86
SOURCES_FILE=/etc/apt/sources.list.d/fdbox.sources
PIN_FILE=/etc/apt/preferences.d/fdbox

[ "$(id -u)" = 0 ] || die "run as root: the toolchain is installed with apt"
command -v rustc >/dev/null || die "rustc not found: FDBox needs the machine's rustup toolchain"

installed_version() {
	dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null |
		awk '$3 == "installed" { print $4 }'
}

# The Debian mirror this machine already uses; never hard-coded.
debian_mirror() {
	local uri
	uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
		uri=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ { print $2; exit }' /etc/apt/sources.list)
	fi
	[ -n "$uri" ] || die "cannot find the Debian mirror in the apt sources"
	echo "$uri"
}

setup_apt_sources() {
	local mirror want
	mirror=$(debian_mirror)
	want="Types: deb
URIs: $mirror
Suites: bookworm-backports trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
	if [ ! -f "$SOURCES_FILE" ] || [ "$(cat "$SOURCES_FILE")" != "$want" ]; then
		echo "$want" >"$SOURCES_FILE"
		APT_UPDATED=
	fi
	# Backports only ever give what is asked for by name.
	cat >"$PIN_FILE" <<-EOF
	Package: *
	Pin: release n=bookworm
	Pin-Priority: 900
	EOF
}

APT_UPDATED=
apt_update() {
	[ -n "$APT_UPDATED" ] && return
	note "apt-get update"
	apt-get update -qq || die "apt-get update failed"
	APT_UPDATED=1
}

apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
		>/dev/null || die "cannot install: $*"
}

install_packages() {
	local missing=() p
	for p in "${APT_PACKAGES[@]}"; do
		[ -n "$(installed_version "$p")" ] || missing+=("$p")
	done
	local want_qemu= want_src=
	[ -n "$(installed_version "$QEMU_PACKAGE")" ] || want_qemu=1
	[ "$(installed_version "$KERNEL_PKG")" = "$KERNEL_PKG_VERSION" ] || want_src=1
	if [ ${#missing[@]} -eq 0 ] && [ -z "$want_qemu" ] && [ -z "$want_src" ]; then
		return
	fi
	setup_apt_sources
	apt_update
	if [ ${#missing[@]} -gt 0 ]; then
		note "installing ${missing[*]}"
		apt_install "${missing[@]}"
	fi
	if [ -n "$want_qemu" ]; then
		note "installing $QEMU_PACKAGE from bookworm-backports"
		apt_install -t bookworm-backports "$QEMU_PACKAGE"
	fi
	if [ -n "$want_src" ]; then
		apt-cache madison "$KERNEL_PKG" | grep -qF " $KERNEL_PKG_VERSION " ||
			die "$KERNEL_PKG=$KERNEL_PKG_VERSION is not available from the mirror"
		note "installing $KERNEL_PKG=$KERNEL_PKG_VERSION"
		apt_install "$KERNEL_PKG=$KERNEL_PKG_VERSION"
	fi
}

# The kernel's Rust needs the library source of exactly the rustc in use.
# The package is unpacked, not installed: installing it would pull in
# trixie's libc.
install_rust_src() {
	local ver dir debver deb
	ver=$(rustc_version)
	dir="$FDBOX_CACHE/rust-src/$ver"
	[ -d "$(rust_lib_src)/core" ] && return
	setup_apt_sources
	apt_update
	debver=$(apt-cache madison rust-src | awk -v v="$ver" '
		{ split($3, a, "+"); if (a[1] == v) { print $3; exit } }')
	[ -n "$debver" ] || die "no Debian rust-src package matches rustc $ver (have: $(apt-cache madison rust-src | awk '{ printf "%s ", $3 }'))"
	note "unpacking rust-src $debver into $dir"
	rm -rf "$dir" "$dir.tmp"
	mkdir -p "$dir.tmp"
	chown _apt "$dir.tmp" 2>/dev/null || true
	(cd "$dir.tmp" && apt-get download -qq "rust-src=$debver" >/dev/null) ||
		die "cannot download rust-src=$debver"
	deb=$(ls "$dir.tmp"/rust-src_*.deb)
	dpkg -x "$deb" "$dir.tmp"
	rm -f "$deb"
	mv "$dir.tmp" "$dir"
	[ -d "$(rust_lib_src)/core" ] || die "rust-src $debver does not hold library/core"
}

install_bindgen() {
	local bin="$FDBOX_CACHE/tools/bin/bindgen"
	if [ -x "$bin" ] && "$bin" --version | grep -qF " $BINDGEN_VERSION"; then
		return
	fi
	note "installing bindgen-cli $BINDGEN_VERSION"
	cargo install -q --locked bindgen-cli --version "$BINDGEN_VERSION" \
		--root "$FDBOX_CACHE/tools" || die "cannot install bindgen-cli $BINDGEN_VERSION"
}

mkdir -p "$FDBOX_CACHE"
install_packages
install_rust_src
install_bindgen
[ -f "$KERNEL_TARBALL" ] || die "$KERNEL_TARBALL is missing although $KERNEL_PKG is installed"
