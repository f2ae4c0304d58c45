# SPDX-License-Identifier: GPL-2.0
# FDBox. The two commands that matter: make demo, make test.
# Every target installs what it needs first (scripts/deps.sh, idempotent).

# Kernel-build invocations (make -C <ksrc> M=$PWD) include this directory's
# Kbuild, never this Makefile.

FLAVOUR ?= debug
FUZZ_SECONDS ?= 60
SECONDS ?= 600
SEED ?= 1
ROUNDS ?=
S := scripts

.PHONY: all deps kernel modules initramfs rustfmt-check rustfmt clippy \
	test demo demo-mini vm fuzz stress scale bench bench-format uapi clean help

all: modules

help:
	@echo "make demo            two unmodified QEMU guests continue across a KHO kexec, with timings"
	@echo "make demo-mini       the same with the miniature VMM (tools/vmm-demo)"
	@echo "make test            every suite; ends with 'N passed, N failed'"
	@echo "make deps            install the toolchain (apt, rust-src, bindgen, kernel source)"
	@echo "make kernel          build the release and debug kernels (cached)"
	@echo "make modules         build the modules with clippy (FLAVOUR=debug|release)"
	@echo "make initramfs       assemble the guest image (FLAVOUR=debug|release)"
	@echo "make vm              boot the guest and run the VM tests only (FLAVOUR=debug|release)"
	@echo "make rustfmt-check   check formatting of kernel and userspace Rust"
	@echo "make fuzz            fuzz fdbox-format's decoder (FUZZ_SECONDS per target, default 60)"
	@echo "make stress          the in-VM stress fuzzer: SECONDS (600), SEED (1), ROUNDS (a kexec each)"
	@echo "make scale           a hand-over past 4 MiB: a scattered memfd of MIB MiB (6144), a kexec"
	@echo "make bench           FDBox vs LUO memfd preservation, one release VM run, with ratios"
	@echo "                     (CASE=64M-THP: that row alone)"
	@echo "make bench-format    fdbox-format: memfd metadata size and codec speed"
	@echo "make uapi            regenerate the Rust bindings of uapi/linux/fdbox.h"
	@echo "make clean           remove build/ and target/ (the kernel cache stays)"

deps:
	@$(S)/deps.sh

kernel: deps
	@$(S)/kernel.sh release >/dev/null
	@$(S)/kernel.sh debug

modules: deps
	@$(S)/modules.sh $(FLAVOUR)

initramfs: modules
	@$(S)/initramfs.sh $(FLAVOUR)

rustfmt-check: deps
	cargo fmt --all --check
	$(S)/rustfmt-kernel.sh --check

rustfmt: deps
	cargo fmt --all
	$(S)/rustfmt-kernel.sh

clippy: deps
	cargo clippy --workspace --all-targets --locked -- -D warnings
	$(S)/modules.sh $(FLAVOUR) >/dev/null

vm: initramfs
	@cargo build -q --release --locked -p fdbox-vmrun
	@k=$$($(S)/kernel.sh $(FLAVOUR)); \
	target/release/fdbox-vmrun run --flavour $(FLAVOUR) \
		$$($(S)/accel.sh target/release/fdbox-vmrun $$k/out/arch/x86/boot/bzImage build/initramfs/$(FLAVOUR)/initrd.cpio) \
		--kernel $$k/out/arch/x86/boot/bzImage \
		--initrd build/initramfs/$(FLAVOUR)/initrd.cpio \
		--log-dir build/logs/vm-$(FLAVOUR)

test:
	@$(S)/test.sh

demo:
	@$(S)/demo.sh

demo-mini:
	@FDBOX_DEMO=mini $(S)/demo.sh

fuzz: deps
	@$(S)/fuzz.sh $(FUZZ_SECONDS)

stress:
	@$(S)/stress.sh $(SECONDS) $(SEED) $(ROUNDS)

MIB ?= 6144
scale:
	@$(S)/scale.sh $(MIB)

bench:
	@FDBOX_BENCH_CASE=$(CASE) $(S)/bench.sh

bench-format:
	@$(S)/bench-format.sh

uapi: deps
	@$(S)/uapi-bindings.sh

clean:
	rm -rf build target
