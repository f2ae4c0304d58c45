// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Proves `src/kernel.rs` builds the way a kernel module includes it: as a
//! non-root `#[path]` module of a `no_std` crate without `alloc`, warning-free.

use std::path::{
    Path,
    PathBuf, //
};
use std::process::Command;

/// The kernel entry file.
fn entry() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/kernel.rs")
}

/// The lint flags of the kernel's `rust_common_flags` (Linux 7.3 Makefile)
/// that apply to safe code, plus `--cfg MODULE`.
const KERNEL_FLAGS: &[&str] = &[
    "--cfg",
    "MODULE",
    "-Dnon_ascii_idents",
    "-Dunsafe_op_in_unsafe_fn",
    "-Wmissing_docs",
    "-Wrust_2018_idioms",
    "-Wunreachable_pub",
];

/// The kernel's clippy flags (with `CLIPPY=1`), for `clippy-driver`.
const KERNEL_CLIPPY_FLAGS: &[&str] = &[
    "-Wclippy::all",
    "-Wclippy::as_ptr_cast_mut",
    "-Wclippy::as_underscore",
    "-Wclippy::cast_lossless",
    "-Aclippy::collapsible_if",
    "-Aclippy::collapsible_match",
    "-Wclippy::ignored_unit_patterns",
    "-Aclippy::incompatible_msrv",
    "-Wclippy::mut_mut",
    "-Wclippy::needless_bitwise_bool",
    "-Aclippy::needless_lifetimes",
    "-Wclippy::no_mangle_with_rust_abi",
    "-Wclippy::ptr_as_ptr",
    "-Wclippy::ptr_cast_constness",
    "-Wclippy::ref_as_ptr",
    "-Wclippy::undocumented_unsafe_blocks",
    "-Aclippy::uninlined_format_args",
    "-Wclippy::unnecessary_safety_comment",
    "-Wclippy::unnecessary_safety_doc",
    "-Aclippy::unwrap_or_default",
];

/// The compiler: `clippy-driver` (as `make CLIPPY=1` runs) when the
/// toolchain has it, else `rustc`.
fn compiler() -> (String, bool) {
    let clippy = Command::new("clippy-driver").arg("--version").output();
    if clippy.is_ok_and(|o| o.status.success()) {
        ("clippy-driver".into(), true)
    } else {
        (
            std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()),
            false,
        )
    }
}

/// Compiles `root` as the kernel does a module (`--crate-type rlib`, edition
/// 2021, the kernel's lint flags) with `-D warnings`; returns stderr on
/// failure.
fn compile(name: &str, root: &str) -> Result<(), String> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("lib.rs");
    std::fs::write(&src, root).unwrap();
    let (cc, clippy) = compiler();
    let mut cmd = Command::new(cc);
    cmd.args([
        "--edition",
        "2021",
        "--crate-type",
        "rlib",
        "--emit",
        "metadata",
    ])
    .args([
        "-D",
        "warnings",
        "--check-cfg",
        "cfg(MODULE)",
        "--crate-name",
        name,
    ])
    .args(KERNEL_FLAGS);
    if clippy {
        cmd.args(KERNEL_CLIPPY_FLAGS);
    }
    let out = cmd.arg("--out-dir").arg(&dir).arg(&src).output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A module-like crate root using the encoder, the decoder and validation.
fn module_root(decl: &str) -> String {
    format!(
        r#"//! A stand-in for a kernel module crate.
#![no_std]
#![deny(warnings)]
#[path = {path:?}]
{decl}

/// Encodes, decodes and validates a one-entry blob.
pub fn probe(buf: &mut [u8], scratch: &mut [u64]) -> fdbox_format::Result<usize> {{
    use fdbox_format::memfd::{{FolioRun, MemfdHead}};
    let head = MemfdHead {{ size: 4096, pos: 0, seals: 0, page_shift: 12, huge_shift: 0, name: "m" }};
    let runs = [FolioRun {{ index: 0, pfn: 1, order: 0, count: 1 }}];
    let mut payload = [0u8; 64];
    let mut w = fdbox_format::wire::Writer::new(&mut payload);
    fdbox_format::memfd::encode(&mut w, &head, runs.iter().copied())?;
    let n = w.position();
    let mut enc = fdbox_format::Encoder::new(buf)?;
    enc.manifest("7.3", "0.1", 1)?;
    enc.begin_box(&fdbox_format::BoxHead {{
        name: "b", owner_uid: 0, owner_gid: 0, state: fdbox_format::BoxState::Sealed,
    }}, 1)?;
    enc.entry(&fdbox_format::EntryRecord {{
        name: "e", handler: fdbox_format::memfd::HANDLER, payload_version: 1, flags: 0,
        deps: &[], payload: fdbox_format::Payload::Inline(payload.get(..n).unwrap_or(&[])),
    }})?;
    let len = enc.finish()?;
    let view = fdbox_format::decode(buf.get(..len).unwrap_or(&[]))?;
    fdbox_format::validate(&view, scratch)?;
    Ok(len)
}}

/// Encodes and decodes an iommufd and a vfio payload in stack buffers.
pub fn probe_passthrough() -> fdbox_format::Result<u32> {{
    use fdbox_format::iommufd::{{self, IoasMapping, PROT_READ}};
    use fdbox_format::vfio::{{self, VfioDevice}};
    let maps = [IoasMapping {{ ioas_id: 1, iova: 0, length: 4096, dep: 0, start: 0, prot: PROT_READ }}];
    let mut buf = [0u8; 64];
    let n = iommufd::encode(&[1], &maps, &mut buf)?;
    let view = iommufd::decode(buf.get(..n).unwrap_or(&[]), 0)?;
    view.check_deps(1)?;
    let mut sum = view.ioas_ids().chain(view.maps().map(|m| m.dep)).fold(0u32, u32::wrapping_add);
    let dev = VfioDevice {{
        domain: 0, bus: 0, devfn: 0x20, vendor: 0x1234, device: 0x11e8,
        iommufd_dep: 0, devid: 1, ioas_id: 1, hwpt_id: 2, hwpt_flags: 0,
        iommufd_max_id: 2,
        identity: Some(vfio::PciIdentity {{
            subsystem_vendor: 0x1af4, subsystem_device: 0x1100, class: 0xff00, serial: None,
        }}),
    }};
    let mut out = [0u8; vfio::MAX_ENCODED_LEN];
    let n = vfio::encode(&dev, &mut out)?;
    sum = sum.wrapping_add(vfio::decode(out.get(..n).unwrap_or(&[]), 0)?.devid);
    Ok(sum)
}}
"#,
        path = entry().display().to_string(),
    )
}

#[test]
fn kernel_entry_builds_as_a_pub_module() {
    compile("fdbox_kmod_pub", &module_root("pub mod fdbox_format;")).unwrap();
}

#[test]
fn kernel_entry_builds_as_a_private_module() {
    // A module that uses only part of the codec silences dead code once.
    let decl = "#[allow(dead_code, unused_imports, unreachable_pub)]\nmod fdbox_format;";
    compile("fdbox_kmod_priv", &module_root(decl)).unwrap();
}

#[test]
fn alloc_use_would_be_caught() {
    // The check can fail: a root that uses `alloc` without the crate doesn't
    // build.
    let root = "//! x\n#![no_std]\n/// x\npub fn f() -> alloc::vec::Vec<u8> { todo!() }\n";
    assert!(compile("fdbox_kmod_alloc", root).is_err());
}

#[test]
fn kernel_sources_use_core_only() {
    let dir = entry().parent().unwrap().to_path_buf();
    let text = std::fs::read_to_string(entry()).unwrap();
    let mut files = vec![entry()];
    for line in text.lines() {
        if let Some(p) = line.trim().strip_prefix("#[path = \"") {
            files.push(dir.join(p.trim_end_matches("\"]")));
        }
    }
    assert!(files.len() > 5, "{files:?}");
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap();
        let code: String = src
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for bad in [
            "alloc::",
            "std::",
            "crate::",
            "f32",
            "f64",
            "cfg(feature",
            "unsafe ",
        ] {
            assert!(!code.contains(bad), "{} uses {bad:?}", f.display());
        }
    }
}
