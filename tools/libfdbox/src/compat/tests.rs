// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Scans of module directories built here: real ELF objects with a
//! `.modinfo` section, plain and compressed as distributions ship them; and
//! predictions against declared module sets.

use core::ffi::c_char;
use std::io::Write;
use std::path::{
    Path,
    PathBuf, //
};

use fdbox_uapi as uapi;
use object::write::Object as ObjectWriter;
use object::{
    Architecture,
    BinaryFormat,
    Endianness,
    SectionKind, //
};

use super::*;
use crate::types::{
    BoxInfo,
    Caps,
    SealFlags, //
};

/// A relocatable ELF object, as a `.ko` is, whose `.modinfo` holds
/// `strings`, each NUL-terminated as `MODULE_INFO` lays them out.
fn module(strings: &[&str]) -> Vec<u8> {
    let mut obj = ObjectWriter::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    let text = obj.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
    obj.append_section_data(text, &[0xc3], 16);
    let modinfo = obj.add_section(Vec::new(), b".modinfo".to_vec(), SectionKind::ReadOnlyData);
    let mut data = Vec::new();
    for s in strings {
        data.extend_from_slice(s.as_bytes());
        data.push(0);
    }
    obj.append_section_data(modinfo, &data, 1);
    obj.write().unwrap()
}

/// `data` compressed as `.ko.xz`.
fn xz(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    lzma_rs::xz_compress(&mut std::io::BufReader::new(data), &mut out).unwrap();
    out
}

/// `data` compressed as `.ko.zst`.
fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

/// `data` compressed as `.ko.gz`.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Writes `data` to `root/rel`, creating directories.
fn put(root: &Path, rel: &str, data: &[u8]) -> PathBuf {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, data).unwrap();
    path
}

/// The handler declarations as `(compatible, min, version, module, builtin)`.
fn handlers(t: &TargetModules) -> Vec<(&str, u32, u32, &str, bool)> {
    t.handlers
        .iter()
        .map(|h| {
            (
                h.compatible.as_str(),
                h.min_version,
                h.version,
                h.origin.module.as_str(),
                h.origin.builtin,
            )
        })
        .collect()
}

/// The warnings' paths, relative to `root`, and messages.
fn warnings(t: &TargetModules, root: &Path) -> Vec<(String, String)> {
    t.warnings
        .iter()
        .map(|w| {
            let rel = w.path.strip_prefix(root).unwrap_or(&w.path);
            (rel.display().to_string(), w.message.clone())
        })
        .collect()
}

#[test]
fn scan_reads_plain_and_compressed_modules() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let memfd = module(&["license=GPL", "name=fdbox_memfd", "fdbox_handler=memfd:1-2"]);
    put(root, "kernel/fdbox/fdbox_memfd.ko", &memfd);
    let iommufd = module(&["name=fdbox_iommufd", "fdbox_handler=iommufd:2-3"]);
    put(root, "kernel/fdbox/fdbox_iommufd.ko.xz", &xz(&iommufd));
    let vfio = module(&["name=fdbox_vfio", "fdbox_handler=vfio:1-1"]);
    put(root, "kernel/fdbox/fdbox_vfio.ko.zst", &zstd(&vfio));
    // Two handlers in one module, and no name= (the file name stands in).
    let test = module(&["fdbox_handler=fdbox-test:1-1", "fdbox_handler=other:4-5"]);
    put(root, "extra/fdbox-test.ko.gz", &gzip(&test));
    let core = module(&[
        "name=fdbox_core",
        "fdbox_format_read=1-2",
        "fdbox_format_write=2.0",
    ]);
    let core_path = put(root, "kernel/fdbox/fdbox_core.ko.xz", &xz(&core));
    put(
        root,
        "kernel/fs/loop.ko",
        &module(&["name=loop", "license=GPL"]),
    );
    put(root, "modules.dep", b"kernel/fs/loop.ko:\n");

    let t = TargetModules::scan(root).unwrap();
    assert_eq!(warnings(&t, root), []);
    assert_eq!(t.modules_read, 6);
    // In path order: extra/ before kernel/, and within kernel/fdbox/ by name.
    assert_eq!(
        handlers(&t),
        [
            ("fdbox-test", 1, 1, "fdbox_test", false),
            ("other", 4, 5, "fdbox_test", false),
            ("iommufd", 2, 3, "fdbox_iommufd", false),
            ("memfd", 1, 2, "fdbox_memfd", false),
            ("vfio", 1, 1, "fdbox_vfio", false),
        ]
    );
    assert_eq!(
        t.handlers_for("memfd")[0].origin.path,
        root.join("kernel/fdbox/fdbox_memfd.ko")
    );
    assert_eq!(
        t.core(),
        Some(&CoreDecl {
            read: Some(FormatRange {
                min_major: 1,
                max_major: 2
            }),
            write: Some(FormatVersion { major: 2, minor: 0 }),
            origin: Origin {
                path: core_path,
                module: "fdbox_core".into(),
                builtin: false,
            },
        })
    );
}

#[test]
fn builtin_modules_come_from_modules_builtin_modinfo() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    put(
        root,
        BUILTIN_MODINFO,
        b"ext4.license=GPL\0fdbox_core.fdbox_format_read=1-2\0\
          fdbox_core.fdbox_format_write=2.1\0fdbox_memfd.fdbox_handler=memfd:2-3\0",
    );
    // A loadable core too: the built-in one is the one that runs.
    put(
        root,
        "updates/fdbox_core.ko",
        &module(&["name=fdbox_core", "fdbox_format_read=3-3"]),
    );
    let t = TargetModules::scan(root).unwrap();
    assert_eq!(warnings(&t, root), []);
    assert_eq!(handlers(&t), [("memfd", 2, 3, "fdbox_memfd", true)]);
    assert_eq!(t.cores.len(), 2);
    let core = t.core().unwrap();
    assert!(core.origin.builtin);
    assert_eq!(core.origin.path, root.join(BUILTIN_MODINFO));
    assert_eq!(core.write, Some(FormatVersion { major: 2, minor: 1 }));
    assert_eq!(
        core.read,
        Some(FormatRange {
            min_major: 1,
            max_major: 2
        })
    );
}

#[test]
fn symlinked_directories_are_not_followed_symlinked_modules_are() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("src");
    put(
        &other,
        "fdbox_build.ko",
        &module(&["fdbox_handler=from-build:1-1"]),
    );
    put(
        &other,
        "fdbox_weak.ko",
        &module(&["fdbox_handler=weak:1-1"]),
    );
    let root = dir.path().join("6.99.0");
    put(
        &root,
        "kernel/fdbox_memfd.ko",
        &module(&["fdbox_handler=memfd:1-2"]),
    );
    std::os::unix::fs::symlink(&other, root.join("build")).unwrap();
    std::fs::create_dir_all(root.join("weak-updates")).unwrap();
    std::os::unix::fs::symlink(
        other.join("fdbox_weak.ko"),
        root.join("weak-updates/fdbox_weak.ko"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        other.join("missing.ko"),
        root.join("weak-updates/missing.ko"),
    )
    .unwrap();
    let t = TargetModules::scan(&root).unwrap();
    let compatibles: Vec<&str> = t.handlers.iter().map(|h| h.compatible.as_str()).collect();
    assert_eq!(compatibles, ["memfd", "weak"]);
    let w = warnings(&t, &root);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].0, "weak-updates/missing.ko");
    assert!(w[0].1.starts_with("broken symlink: "), "{w:?}");
}

#[test]
fn undecodable_files_are_skipped_with_a_warning_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    put(root, "kernel/not-elf.ko", b"#!/bin/sh\necho not a module\n");
    put(root, "kernel/bad.ko.xz", b"not xz at all");
    put(root, "kernel/bad.ko.zst", b"not zstd at all");
    put(root, "kernel/bad.ko.gz", b"not gzip at all");
    let mut bare = ObjectWriter::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    bare.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
    put(root, "kernel/bare.ko", &bare.write().unwrap());
    put(
        root,
        "kernel/typo.ko",
        &module(&["name=typo", "fdbox_handler=memfd:2", "fdbox_format_read=x"]),
    );
    put(
        root,
        "kernel/good.ko",
        &module(&["fdbox_handler=memfd:1-2"]),
    );
    let t = TargetModules::scan(root).unwrap();
    assert_eq!(t.modules_read, 7);
    assert_eq!(handlers(&t), [("memfd", 1, 2, "good", false)]);
    let w = warnings(&t, root);
    let find = |file: &str| {
        w.iter()
            .filter(|(p, _)| p == file)
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
    };
    assert!(
        find("kernel/not-elf.ko")[0].starts_with("not an ELF object"),
        "{w:?}"
    );
    for f in ["kernel/bad.ko.xz", "kernel/bad.ko.zst", "kernel/bad.ko.gz"] {
        assert!(find(f)[0].starts_with("cannot decompress: "), "{f}: {w:?}");
    }
    assert_eq!(
        find("kernel/bare.ko"),
        ["no .modinfo section: not a kernel module"]
    );
    assert_eq!(
        find("kernel/typo.ko"),
        [
            "module typo: fdbox_handler=memfd:2: expected MIN-MAX",
            "module typo: fdbox_format_read=x: expected MIN-MAX",
        ]
    );
    assert_eq!(w.len(), 7, "{w:?}");
    // A format key that doesn't parse makes no core.
    assert_eq!(t.cores.len(), 0);
}

#[test]
fn a_directory_that_cant_be_read_fails_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("6.99.0");
    let e = TargetModules::scan(&missing).unwrap_err();
    assert_eq!(e.path, missing);
    assert_eq!(e.source.kind(), std::io::ErrorKind::NotFound);
    assert!(e
        .to_string()
        .starts_with(&format!("cannot read {}: ", missing.display())));
    let file = put(dir.path(), "file", b"");
    assert_eq!(TargetModules::scan(&file).unwrap_err().path, file);
}

#[test]
fn duplicate_compatibles_are_all_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    put(
        root,
        "kernel/fdbox_memfd.ko",
        &module(&["fdbox_handler=memfd:1-2"]),
    );
    put(
        root,
        "extra/memfd_new.ko.zst",
        &zstd(&module(&["fdbox_handler=memfd:3-3"])),
    );
    let t = TargetModules::scan(root).unwrap();
    let both: Vec<_> = t
        .handlers_for("memfd")
        .iter()
        .map(|h| (h.origin.module.as_str(), h.min_version, h.version))
        .collect();
    assert_eq!(both, [("memfd_new", 3, 3), ("fdbox_memfd", 1, 2)]);
}

/// `s` in a C `char` array.
fn chars<const N: usize>(s: &str) -> [c_char; N] {
    let mut out = [0; N];
    for (o, b) in out.iter_mut().zip(s.bytes()) {
        *o = b as c_char;
    }
    out
}

/// This kernel: format 2.0, reading majors 1-2, with handlers
/// `(compatible, min_version, version)`.
fn caps(handlers: &[(&str, u32, u32)]) -> Caps {
    let raw = uapi::fdbox_get_caps {
        format_major: 2,
        format_minor: 0,
        format_read_min: 1,
        format_read_max: 2,
        ..Default::default()
    };
    let handlers: Vec<_> = handlers
        .iter()
        .map(|&(c, min, v)| uapi::fdbox_handler_info {
            compatible: chars(c),
            version: v,
            min_version: min,
            __reserved: 0,
        })
        .collect();
    Caps::from_raw(&raw, &handlers)
}

/// This kernel's handlers in most cases: memfd writes 2, iommufd 3, vfio 1.
fn our_caps() -> Caps {
    caps(&[("memfd", 1, 2), ("iommufd", 2, 3), ("vfio", 1, 1)])
}

/// A sealed outgoing box with `flags` and entries
/// `(name, compatible, version, n_deps)`.
fn sealed(name: &str, flags: SealFlags, entries: &[(&str, &str, u32, u32)]) -> BoxInfo {
    let info = uapi::fdbox_box_info {
        name: chars(name),
        direction: uapi::FDBOX_DIR_OUTGOING,
        state: uapi::FDBOX_BOX_SEALED,
        seal_flags: flags.bits(),
        ..Default::default()
    };
    let entries: Vec<_> = entries
        .iter()
        .map(|&(n, c, v, deps)| uapi::fdbox_entry_info {
            name: chars(n),
            compatible: chars(c),
            version: v,
            state: uapi::FDBOX_ENTRY_SEALED,
            n_deps: deps,
            ..Default::default()
        })
        .collect();
    BoxInfo::from_raw(&info, &entries)
}

/// A target with a core reading `read` and the module strings `modules`.
fn target(read: &str, modules: &[&[&str]]) -> TargetModules {
    let mut t = TargetModules::new("/lib/modules/6.99.0");
    let core = format!("fdbox_format_read={read}\0fdbox_format_write=2.0\0");
    t.add_modinfo(
        Path::new("/lib/modules/6.99.0/fdbox_core.ko"),
        core.as_bytes(),
    );
    for (i, strings) in modules.iter().enumerate() {
        let bytes: Vec<u8> = strings
            .iter()
            .flat_map(|s| [s.as_bytes(), b"\0"].concat())
            .collect();
        t.add_modinfo(Path::new(&format!("/lib/modules/6.99.0/m{i}.ko")), &bytes);
    }
    t
}

/// The verdicts of a prediction's first box, by entry.
fn verdicts(p: &Prediction) -> Vec<(&str, Verdict)> {
    p.boxes[0]
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.verdict))
        .collect()
}

#[test]
fn every_entry_restores() {
    let b = sealed(
        "vm0",
        SealFlags::empty(),
        &[("ram", "memfd", 2, 0), ("iommu", "iommufd", 3, 1)],
    );
    let t = target(
        "1-2",
        &[&["fdbox_handler=memfd:1-2"], &["fdbox_handler=iommufd:2-3"]],
    );
    let p = predict(&[b], &our_caps(), &t, None);
    assert!(matches!(p.format, FormatVerdict::Ok { .. }));
    assert_eq!(
        p.format_summary(),
        "this kernel writes 2.0; the target reads majors 1-2: ok"
    );
    assert_eq!(verdicts(&p), [("ram", Verdict::Ok), ("iommu", Verdict::Ok)]);
    assert_eq!(p.boxes[0].entries[0].explain(), None);
    assert_eq!(p.boxes[0].entries[0].target.as_ref().unwrap().version, 2);
    assert_eq!((p.restorable(), p.entries()), (2, 2));
    assert_eq!(p.outcome(), Outcome::AllRestore);
    assert_eq!(p.notes, Vec::<String>::new());
}

#[test]
fn a_missing_handler_and_its_dependents_dont_restore() {
    let b = sealed(
        "vm0",
        SealFlags::empty(),
        &[
            ("ram", "memfd", 2, 0),
            ("iommu", "iommufd", 3, 0),
            ("dev", "vfio", 1, 1),
        ],
    );
    let t = target(
        "1-2",
        &[&["fdbox_handler=memfd:1-2"], &["fdbox_handler=vfio:1-1"]],
    );
    let p = predict(&[b], &our_caps(), &t, None);
    assert_eq!(
        verdicts(&p),
        [
            ("ram", Verdict::Ok),
            ("iommu", Verdict::NoHandler),
            ("dev", Verdict::Dependency { exact: false }),
        ]
    );
    let e = &p.boxes[0].entries;
    assert_eq!(e[1].target, None);
    assert_eq!(
        e[1].explain().unwrap(),
        "no module of the target registers compatible iommufd: the target has no iommufd \
         handler"
    );
    assert!(e[2].explain().unwrap().starts_with("uncertain: "));
    assert!(e[2].explain().unwrap().contains("on the safe side"));
    assert!(!e[2].verdict.is_exact());
    assert_eq!(e[2].deps, None);
    assert_eq!((p.restorable(), p.entries()), (1, 3));
    assert_eq!(p.outcome(), Outcome::SomeWont);
}

#[test]
fn dependencies_are_judged_per_box() {
    let a = sealed("a", SealFlags::empty(), &[("x", "gone", 1, 0)]);
    let b = sealed(
        "b",
        SealFlags::empty(),
        &[("ram", "memfd", 2, 0), ("dev", "vfio", 1, 1)],
    );
    let t = target(
        "1-2",
        &[&["fdbox_handler=memfd:1-2", "fdbox_handler=vfio:1-1"]],
    );
    let p = predict(&[a, b], &our_caps(), &t, None);
    assert_eq!(p.boxes[1].entries[1].verdict, Verdict::Ok);
    assert_eq!((p.restorable(), p.entries()), (2, 3));
}

#[test]
fn versions_too_new_or_too_old_dont_restore() {
    let b = sealed(
        "vm0",
        SealFlags::empty(),
        &[("ram", "memfd", 2, 0), ("iommu", "iommufd", 1, 0)],
    );
    let t = target(
        "1-2",
        &[&["fdbox_handler=memfd:1-1"], &["fdbox_handler=iommufd:2-3"]],
    );
    let p = predict(&[b], &caps(&[("memfd", 1, 2), ("iommufd", 1, 3)]), &t, None);
    assert_eq!(
        verdicts(&p),
        [
            (
                "ram",
                Verdict::Version {
                    entry: 2,
                    target_min: 1,
                    target_max: 1
                }
            ),
            (
                "iommu",
                Verdict::Version {
                    entry: 1,
                    target_min: 2,
                    target_max: 3
                }
            ),
        ]
    );
    let e = &p.boxes[0].entries;
    assert_eq!(
        e[0].explain().unwrap(),
        "the target's memfd handler reads versions 1-1; this entry is version 2, newer than it \
         reads"
    );
    assert!(e[1]
        .explain()
        .unwrap()
        .ends_with("version 1, older than it reads"));
    // iommu is too old for the target: --previous can't help the box.
    assert_eq!(p.boxes[0].hint, None);
    assert_eq!(p.restorable(), 0);
    assert_eq!(p.outcome(), Outcome::SomeWont);
}

/// The box hint and each entry's previous version, of a box of `entries`
/// sealed with `flags`, under `caps`, for target `t`.
fn hint(
    t: &TargetModules,
    caps: &Caps,
    flags: SealFlags,
    entries: &[(&str, &str, u32, u32)],
) -> (Option<Hint>, Vec<Option<u32>>) {
    let b = sealed("vm0", flags, entries);
    let p = predict(&[b], caps, t, None);
    let b = &p.boxes[0];
    (b.hint, b.entries.iter().map(|e| e.previous).collect())
}

#[test]
fn the_previous_hint_needs_every_entry_readable_at_its_previous_version() {
    // A kernel one version behind this one.
    let t = target(
        "1-2",
        &[
            &["fdbox_handler=memfd:1-1"],
            &["fdbox_handler=vfio:1-1"],
            &["fdbox_handler=iommufd:1-1"],
        ],
    );
    // As shipped: memfd 1-2, vfio 1-2, iommufd 1-1.
    let ours = caps(&[("memfd", 1, 2), ("vfio", 1, 2), ("iommufd", 1, 1)]);
    let seal_previous = Some(Hint::SealPrevious);
    assert_eq!(
        hint(&t, &ours, SealFlags::empty(), &[("ram", "memfd", 2, 0)]),
        (seal_previous, vec![Some(1)])
    );
    // The flag applies to the whole box: a shmem memfd already written at 1
    // stays at 1, and the box still gets the hint.
    assert_eq!(
        hint(
            &t,
            &ours,
            SealFlags::empty(),
            &[("ram", "memfd", 2, 0), ("shm", "memfd", 1, 0)]
        ),
        (seal_previous, vec![Some(1), Some(1)])
    );
    // vfio's VERSION is 2: its previous version, 1, is read by the target
    // (whether the handler can write it is for the seal to tell).
    assert_eq!(
        hint(
            &t,
            &ours,
            SealFlags::empty(),
            &[("ram", "memfd", 2, 0), ("dev", "vfio", 2, 0)]
        ),
        (seal_previous, vec![Some(1), Some(1)])
    );
    // iommufd's VERSION is 1: it has no previous version, and would fail the
    // whole seal, even though its entry restores as it is.
    let with_iommufd = [("ram", "memfd", 2, 0), ("iommu", "iommufd", 1, 0)];
    let p = predict(
        &[sealed("vm0", SealFlags::empty(), &with_iommufd)],
        &ours,
        &t,
        None,
    );
    assert_eq!(p.boxes[0].entries[1].verdict, Verdict::Ok);
    assert_eq!(
        hint(&t, &ours, SealFlags::empty(), &with_iommufd),
        (None, vec![None, None])
    );
    // Sealed with it already.
    assert_eq!(
        hint(&t, &ours, SealFlags::PREVIOUS, &[("ram", "memfd", 2, 0)]),
        (None, vec![None])
    );
    // Every entry restores already: nothing to hint.
    let t2 = target("1-2", &[&["fdbox_handler=memfd:1-2"]]);
    assert_eq!(
        hint(&t2, &ours, SealFlags::empty(), &[("ram", "memfd", 2, 0)]),
        (None, vec![None])
    );
    // This kernel writes 3: its previous version 2 isn't read either.
    assert_eq!(
        hint(
            &t,
            &caps(&[("memfd", 1, 3)]),
            SealFlags::empty(),
            &[("ram", "memfd", 3, 0)]
        ),
        (None, vec![None])
    );
    // No such handler in this kernel, or none in the target.
    assert_eq!(
        hint(
            &t,
            &caps(&[]),
            SealFlags::empty(),
            &[("ram", "memfd", 2, 0)]
        ),
        (None, vec![None])
    );
    assert_eq!(
        hint(
            &t,
            &caps(&[("memfd", 1, 2), ("gpu", 1, 2)]),
            SealFlags::empty(),
            &[("ram", "memfd", 2, 0), ("gpu", "gpu", 2, 0)]
        ),
        (None, vec![None, None])
    );
    // A target two versions behind reads neither.
    let t0 = target("1-2", &[&["fdbox_handler=memfd:0-0"]]);
    assert_eq!(
        hint(&t0, &ours, SealFlags::empty(), &[("ram", "memfd", 2, 0)]),
        (None, vec![None])
    );
}

/// The blob's dependencies of box `name` (owner 0): `(entry, version,
/// deps)`.
fn blob_deps(name: &str, entries: &[(&str, u32, &[&str])]) -> Dependencies {
    Dependencies {
        boxes: vec![BoxDeps {
            name: name.into(),
            owner_uid: 0,
            entries: entries
                .iter()
                .map(|&(n, v, d)| EntryDeps {
                    name: n.into(),
                    version: v,
                    deps: d.iter().map(|s| s.to_string()).collect(),
                })
                .collect(),
        }],
    }
}

#[test]
fn exact_dependencies_spare_entries_that_dont_depend_on_the_lost_one() {
    // A has no handler in the target; B depends on C, which restores.
    let b = sealed(
        "vm0",
        SealFlags::empty(),
        &[
            ("a", "gone", 1, 0),
            ("c", "memfd", 2, 0),
            ("b", "memfd", 2, 1),
        ],
    );
    let t = target("1-2", &[&["fdbox_handler=memfd:1-2"]]);
    let deps = blob_deps("vm0", &[("a", 1, &[]), ("c", 2, &[]), ("b", 2, &["c"])]);
    let p = predict(std::slice::from_ref(&b), &our_caps(), &t, Some(&deps));
    assert_eq!(
        verdicts(&p),
        [
            ("a", Verdict::NoHandler),
            ("c", Verdict::Ok),
            ("b", Verdict::Ok)
        ]
    );
    assert_eq!(p.boxes[0].entries[2].deps, Some(vec!["c".to_string()]));
    assert_eq!((p.restorable(), p.entries()), (2, 3));

    // Without the blob: on the safe side, and said to be uncertain.
    let p = predict(std::slice::from_ref(&b), &our_caps(), &t, None);
    assert_eq!(
        verdicts(&p),
        [
            ("a", Verdict::NoHandler),
            ("c", Verdict::Ok),
            ("b", Verdict::Dependency { exact: false }),
        ]
    );
    assert_eq!(p.boxes[0].entries[2].verdict.as_str(), "dependency");
    assert!(p.boxes[0].entries[2]
        .explain()
        .unwrap()
        .starts_with("uncertain: "));
    assert_eq!((p.restorable(), p.entries()), (1, 3));
}

#[test]
fn exact_dependencies_follow_chains() {
    // C depends on B, which depends on A, which has no handler; D on C and
    // E; E restores. The kernel's order need not be the blob's.
    let b = sealed(
        "vm0",
        SealFlags::empty(),
        &[
            ("d", "memfd", 2, 2),
            ("c", "memfd", 2, 1),
            ("b", "memfd", 2, 1),
            ("a", "gone", 1, 0),
            ("e", "memfd", 2, 0),
        ],
    );
    let t = target("1-2", &[&["fdbox_handler=memfd:1-2"]]);
    let deps = blob_deps(
        "vm0",
        &[
            ("a", 1, &[]),
            ("b", 2, &["a"]),
            ("c", 2, &["b"]),
            ("e", 2, &[]),
            ("d", 2, &["c", "e"]),
        ],
    );
    let p = predict(&[b], &our_caps(), &t, Some(&deps));
    let dep = Verdict::Dependency { exact: true };
    assert_eq!(
        verdicts(&p),
        [
            ("d", dep),
            ("c", dep),
            ("b", dep),
            ("a", Verdict::NoHandler),
            ("e", Verdict::Ok),
        ]
    );
    let e = &p.boxes[0].entries;
    assert_eq!(e[0].blocked_by, ["c"]);
    assert_eq!(
        e[0].explain().unwrap(),
        "it depends on c, which won't restore"
    );
    assert_eq!(e[2].blocked_by, ["a"]);
    assert!(e[0].verdict.is_exact());
}

#[test]
fn a_blob_that_doesnt_match_the_box_is_not_trusted() {
    let b = sealed(
        "vm0",
        SealFlags::empty(),
        &[
            ("a", "gone", 1, 0),
            ("c", "memfd", 2, 0),
            ("b", "memfd", 2, 1),
        ],
    );
    let t = target("1-2", &[&["fdbox_handler=memfd:1-2"]]);
    let conservative = [
        ("a", Verdict::NoHandler),
        ("c", Verdict::Ok),
        ("b", Verdict::Dependency { exact: false }),
    ];
    let mismatched = [
        // Another box.
        blob_deps("vm1", &[("a", 1, &[]), ("c", 2, &[]), ("b", 2, &["c"])]),
        // A count of dependencies that differs from BOX_INFO's.
        blob_deps("vm0", &[("a", 1, &[]), ("c", 2, &[]), ("b", 2, &[])]),
        // Another version: sealed again since.
        blob_deps("vm0", &[("a", 1, &[]), ("c", 1, &[]), ("b", 2, &["c"])]),
        // An entry missing, or a dependency that isn't in the box.
        blob_deps("vm0", &[("c", 2, &[]), ("b", 2, &["c"])]),
        blob_deps("vm0", &[("a", 1, &[]), ("c", 2, &[]), ("b", 2, &["x"])]),
    ];
    for deps in &mismatched {
        let p = predict(std::slice::from_ref(&b), &our_caps(), &t, Some(deps));
        assert_eq!(verdicts(&p), conservative, "{deps:?}");
    }
}

#[test]
fn an_open_box_is_not_sealed_whatever_the_target_reads() {
    let info = uapi::fdbox_box_info {
        name: chars("vm1"),
        direction: uapi::FDBOX_DIR_OUTGOING,
        state: uapi::FDBOX_BOX_OPEN,
        ..Default::default()
    };
    let entry = |n: &str, c: &str| uapi::fdbox_entry_info {
        name: chars(n),
        compatible: chars(c),
        version: 2,
        state: uapi::FDBOX_ENTRY_PREPARED,
        ..Default::default()
    };
    let b = BoxInfo::from_raw(&info, &[entry("ram", "memfd"), entry("gpu", "gpu")]);
    let t = target("1-2", &[&["fdbox_handler=memfd:1-2"]]);
    let p = predict(&[b], &our_caps(), &t, None);
    assert_eq!(
        verdicts(&p),
        [("ram", Verdict::NotSealed), ("gpu", Verdict::NotSealed)]
    );
    let e = &p.boxes[0].entries;
    assert_eq!(e[0].verdict.as_str(), "not-sealed");
    assert_eq!(
        e[0].explain().unwrap(),
        "its box is not sealed, and a box isn't handed over until it is; sealed now, this \
         entry would be written at most at version 2 (the target's memfd handler reads \
         versions 1-2)"
    );
    assert!(e[1]
        .explain()
        .unwrap()
        .ends_with("at most at version 2 (the target has no gpu handler)"));
    assert_eq!(p.boxes[0].hint, None);
    assert_eq!((p.restorable(), p.not_sealed(), p.entries()), (0, 2, 2));
    assert_eq!(p.outcome(), Outcome::SomeWont);
}

#[test]
fn a_refused_format_or_no_core_restores_nothing() {
    let b = sealed("vm0", SealFlags::empty(), &[("ram", "memfd", 2, 0)]);
    let refused = target("3-4", &[&["fdbox_handler=memfd:1-2"]]);
    let p = predict(std::slice::from_ref(&b), &our_caps(), &refused, None);
    assert!(matches!(
        p.format,
        FormatVerdict::Refused {
            read: FormatRange {
                min_major: 3,
                max_major: 4
            },
            ..
        }
    ));
    assert_eq!(
        p.format_summary(),
        "this kernel writes 2.0; the target reads majors 3-4: refused, nothing will restore"
    );
    // Whatever the handlers read, no entry restores.
    assert_eq!(verdicts(&p), [("ram", Verdict::Format)]);
    assert_eq!(p.boxes[0].entries[0].verdict.as_str(), "format");
    assert!(p.boxes[0].entries[0]
        .explain()
        .unwrap()
        .contains("nothing of it restores"));
    assert_eq!((p.restorable(), p.outcome()), (0, Outcome::NothingWill));
    // Nor does a version mismatch get a hint then.
    let old = sealed("vm0", SealFlags::empty(), &[("ram", "memfd", 2, 0)]);
    let refused_old = target("3-4", &[&["fdbox_handler=memfd:1-1"]]);
    let p = predict(&[old], &our_caps(), &refused_old, None);
    assert_eq!(verdicts(&p), [("ram", Verdict::Format)]);
    assert_eq!(p.boxes[0].hint, None);

    let mut no_core = TargetModules::new("/lib/modules/6.99.0");
    no_core.add_modinfo(Path::new("/m.ko"), b"fdbox_handler=memfd:1-2\0");
    let p = predict(std::slice::from_ref(&b), &our_caps(), &no_core, None);
    assert_eq!(p.format, FormatVerdict::NoCore);
    assert_eq!(
        p.format_summary(),
        "this kernel writes 2.0; the target has no fdbox_core: nothing will restore"
    );
    assert_eq!(verdicts(&p), [("ram", Verdict::Format)]);
    assert_eq!((p.restorable(), p.outcome()), (0, Outcome::NothingWill));
    // Nothing sealed: nothing to lose.
    assert_eq!(
        predict(&[], &our_caps(), &no_core, None).outcome(),
        Outcome::AllRestore
    );
}

#[test]
fn a_core_without_declarations_cant_be_judged() {
    let b = sealed("vm0", SealFlags::empty(), &[("ram", "memfd", 2, 0)]);
    let mut t = TargetModules::new("/lib/modules/6.99.0");
    t.add_modinfo(
        Path::new("/k/fdbox_core.ko"),
        b"name=fdbox_core\0license=GPL\0",
    );
    t.add_modinfo(Path::new("/k/fdbox_memfd.ko"), b"fdbox_handler=memfd:1-2\0");
    let p = predict(&[b], &our_caps(), &t, None);
    assert!(matches!(p.format, FormatVerdict::Undeclared { .. }));
    assert!(p.format_summary().contains("declares no fdbox_format_read"));
    assert_eq!(p.restorable(), 1);
    assert_eq!(p.outcome(), Outcome::SomeWont);
}

#[test]
fn conflicting_handlers_restore_only_if_each_reads_the_entry() {
    let b = sealed(
        "vm0",
        SealFlags::empty(),
        &[("ram", "memfd", 2, 0), ("old", "memfd", 1, 0)],
    );
    let t = target(
        "1-2",
        &[&["fdbox_handler=memfd:1-2"], &["fdbox_handler=memfd:2-3"]],
    );
    let p = predict(&[b], &our_caps(), &t, None);
    assert_eq!(
        verdicts(&p),
        [
            ("ram", Verdict::Ok),
            (
                "old",
                Verdict::Version {
                    entry: 1,
                    target_min: 2,
                    target_max: 3
                }
            ),
        ]
    );
    assert_eq!(p.boxes[0].entries[0].rivals.len(), 1);
    assert_eq!(p.notes.len(), 1, "{:?}", p.notes);
    assert!(
        p.notes[0].starts_with("compatible memfd is declared by 2 modules: ")
            && p.notes[0].ends_with("depends on load order"),
        "{}",
        p.notes[0]
    );

    // A built-in handler registers first: it alone decides.
    let mut t = target("1-2", &[&["fdbox_handler=memfd:2-3"]]);
    t.add_builtin_modinfo(
        Path::new("/lib/modules/6.99.0/modules.builtin.modinfo"),
        b"fdbox_memfd.fdbox_handler=memfd:1-2\0",
    );
    let b = sealed("vm0", SealFlags::empty(), &[("old", "memfd", 1, 0)]);
    let p = predict(&[b], &our_caps(), &t, None);
    assert_eq!(verdicts(&p), [("old", Verdict::Ok)]);
    assert!(
        p.notes[0].contains("the built-in one registers first"),
        "{:?}",
        p.notes
    );
}

#[test]
fn notes_when_this_kernel_cant_read_what_the_target_writes() {
    let mut t = TargetModules::new("/t");
    t.add_modinfo(
        Path::new("/t/fdbox_core.ko"),
        b"fdbox_format_read=2-3\0fdbox_format_write=3.0\0",
    );
    let p = predict(&[], &our_caps(), &t, None);
    assert_eq!(p.notes.len(), 1);
    assert!(p.notes[0].contains("a kexec back from the target would hand nothing over"));
}

#[test]
fn compatibles_the_kernel_forbids_are_skipped_with_a_warning() {
    let mut t = TargetModules::new("/t");
    t.add_modinfo(
        Path::new("/t/m.ko"),
        b"name=m\0fdbox_handler=a:b:1-1\0fdbox_handler=a=b:1-1\0fdbox_handler=ok:1-1\0",
    );
    let compatibles: Vec<&str> = t.handlers.iter().map(|h| h.compatible.as_str()).collect();
    assert_eq!(compatibles, ["ok"]);
    let w: Vec<&str> = t.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        w,
        [
            "module m: fdbox_handler=a:b:1-1: the compatible string holds ':', which no \
             handler's can (NUL, ':', '=' or ' ')",
            "module m: fdbox_handler=a=b:1-1: the compatible string holds '=', which no \
             handler's can (NUL, ':', '=' or ' ')",
        ]
    );
}
