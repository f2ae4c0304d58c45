// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox inspect` end to end: output, JSON and every exit code.

use std::path::{
    Path,
    PathBuf, //
};
use std::process::{
    Command,
    Output, //
};

use fdbox_format::crc32c::crc32c;

/// The golden blobs of format version 1.
fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fdbox-format/tests/golden/v1")
        .join(name)
}

/// Runs `fdbox` with `args`.
fn fdbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fdbox"))
        .args(args)
        .output()
        .unwrap()
}

/// Writes `blob` to a temporary file named `name`.
fn temp(name: &str, blob: &[u8]) -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&p, blob).unwrap();
    p
}

/// Asserts one line on stderr with `needle`, nothing on stdout for a failure.
fn one_line(out: &Output, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("fdbox: error: "), "{err}");
    assert!(err.contains(needle), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[test]
fn shows_a_table() {
    let g = golden("memfd-thp-holes.bin");
    let out = fdbox(&["inspect", g.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "format 1.0",
        "kernel 7.3.4-fdbox",
        "BOX  STATE  OWNER",
        "vm1  open   1000:1000  4",
        "unavailable: unsupported payload version 3 (this reader knows up to 2)",
        "ok: iommufd, 1 IOAS, 2 mappings, 1.0 MiB",
        "ok: memfd guest-ram, size 1.0 MiB, 18 folios in 2 runs",
        "preserved 8.0 KiB @0x100000",
        "optional",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
}

#[test]
fn shows_iommufd_and_vfio_entries() {
    let g = golden("iommufd-vfio.bin");
    let out = fdbox(&["inspect", g.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "vm2  sealed  1000:1000  4",
        "ok: memfd guest-ram, size 8.0 MiB, 4 folios in 1 runs",
        "iommu  iommufd  1    -      0     inline 28 B  ok: iommufd, 1 IOAS, 2 mappings, 8.0 MiB",
        "nic    vfio     1    -      1     inline 10 B  ok: vfio 0000:00:04.0 1234:11e8, ioas 1",
        "ok: vfio 0001:3a:00.2 8086:1572, not attached",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
    let out = fdbox(&["inspect", "verify", g.to_str().unwrap()]);
    assert!(out.status.success());
}

#[test]
fn json_shows_iommufd_and_vfio_entries() {
    let g = golden("iommufd-vfio.bin");
    let out = fdbox(&["inspect", "--json", g.to_str().unwrap()]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = &v["boxes"][0]["entries"];
    assert_eq!(
        entries[1]["iommufd"],
        serde_json::json!({
            "ioas": [1], "mappings": 2, "mapped_bytes": 8 << 20, "max_dep": 0,
        })
    );
    assert_eq!(
        entries[2]["vfio"],
        serde_json::json!({
            "address": "0000:00:04.0", "domain": 0, "bus": 0, "devfn": 32,
            "vendor": 0x1234, "device": 0x11e8, "iommufd_dep": 0, "devid": 1,
            "ioas_id": 1,
        })
    );
    assert_eq!(entries[3]["vfio"]["ioas_id"], 0);
    assert_eq!(entries[3]["vfio"]["address"], "0001:3a:00.2");
    // The other handlers' fields are null.
    assert_eq!(entries[0]["iommufd"], serde_json::Value::Null);
    assert_eq!(entries[0]["vfio"], serde_json::Value::Null);
    assert_eq!(entries[2]["memfd"], serde_json::Value::Null);
}

#[test]
fn a_mapping_of_a_missing_dependency_fails_verify() {
    let mut m =
        fdbox_format::owned::Manifest::decode(&std::fs::read(golden("iommufd-vfio.bin")).unwrap())
            .unwrap();
    // The iommufd's mappings use dependency 0; take its dependencies away.
    m.boxes[0].entries[1].deps.clear();
    let p = temp("iommufd-nodep.bin", &m.encode().unwrap());
    one_line(
        &fdbox(&["inspect", "verify", p.to_str().unwrap()]),
        5,
        "dependency index beyond the entry's dependencies at byte",
    );
    let out = fdbox(&["inspect", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "unavailable: corrupt payload: bad dependency index beyond the entry's dependencies"
        ),
        "{text}"
    );
}

#[test]
fn json_is_the_golden_report() {
    for name in [
        "empty",
        "sample",
        "memfd-thp-holes",
        "two-boxes-unknown-version",
        "iommufd-vfio",
    ] {
        let g = golden(&format!("{name}.bin"));
        let out = fdbox(&["inspect", "--json", g.to_str().unwrap()]);
        assert!(out.status.success());
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let want: serde_json::Value =
            serde_json::from_slice(&std::fs::read(golden(&format!("{name}.json"))).unwrap())
                .unwrap();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn reads_kho_debugfs_without_fdbox_core() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("debugfs");
    for dir in ["out", "in"] {
        let d = root.join("kho").join(dir).join("sub_fdts");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(golden("sample.bin"), d.join("fdbox")).unwrap();
    }
    for flag in ["--out", "--in"] {
        let out = fdbox(&[
            "inspect",
            "verify",
            flag,
            "--debugfs",
            root.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{flag}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("valid: boxes 1, entries 3"));
    }
}

/// A debugfs tree under the target's temporary directory: `files` are
/// (path under debugfs, contents).
fn debugfs(name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&root);
    for (path, blob) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, blob).unwrap();
    }
    root
}

#[test]
fn prefers_fdbox_cores_debugfs_files() {
    let sample = std::fs::read(golden("sample.bin")).unwrap();
    let thp = std::fs::read(golden("memfd-thp-holes.bin")).unwrap();
    // KHO's files hold garbage (as KHO's `in` does once fdbox_core freed
    // it): they must not be read while fdbox_core's exist.
    let root = debugfs(
        "debugfs-core",
        &[
            ("fdbox/outgoing", &sample),
            ("fdbox/incoming", &thp),
            ("kho/out/sub_fdts/fdbox", b"garbage"),
            ("kho/in/sub_fdts/fdbox", b"garbage"),
        ],
    );
    let root = root.to_str().unwrap();
    let out = fdbox(&["inspect", "verify", "--out", "--debugfs", root]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fdbox/outgoing: valid: boxes 1, entries 3"),
        "{text}"
    );
    let out = fdbox(&["inspect", "--in", "--debugfs", root]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("fdbox/incoming ("), "{text}");
    assert!(text.contains("vm1  open   1000:1000  4"), "{text}");
}

#[test]
fn an_empty_debugfs_file_is_no_blob() {
    let sample = std::fs::read(golden("sample.bin")).unwrap();
    // KHO's files are valid, but fdbox_core's exist: they are the truth.
    let root = debugfs(
        "debugfs-empty",
        &[
            ("fdbox/outgoing", b""),
            ("fdbox/incoming", b""),
            ("kho/out/sub_fdts/fdbox", &sample),
            ("kho/in/sub_fdts/fdbox", &sample),
        ],
    );
    let root = root.to_str().unwrap();
    for (flag, why) in [
        ("--out", "no box is sealed"),
        ("--in", "the previous kernel handed no blob over"),
    ] {
        for cmd in [
            &["inspect"][..],
            &["inspect", "--json"],
            &["inspect", "verify"],
        ] {
            let mut args = cmd.to_vec();
            args.extend([flag, "--debugfs", root]);
            let out = fdbox(&args);
            one_line(&out, 6, &format!("no blob: the file is empty: {why}"));
            assert!(out.stdout.is_empty(), "{args:?}");
        }
    }
    let p = temp("empty.bin", b"");
    one_line(
        &fdbox(&["inspect", p.to_str().unwrap()]),
        6,
        "empty.bin: no blob: the file is empty",
    );
}

#[test]
fn exit_0_verify_ok() {
    let g = golden("sample.bin");
    let out = fdbox(&["inspect", "verify", "--json", g.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"valid":true}"#
    );
}

#[test]
fn exit_1_io_error() {
    let out = fdbox(&["inspect", "/nonexistent/fdbox.bin"]);
    one_line(&out, 1, "cannot read /nonexistent/fdbox.bin");
    let out = fdbox(&["inspect", "--in", "--debugfs", "/nonexistent"]);
    one_line(&out, 1, "/nonexistent/kho/in/sub_fdts/fdbox");
}

#[test]
fn exit_2_usage() {
    assert_eq!(fdbox(&["inspect"]).status.code(), Some(2));
    assert_eq!(fdbox(&["inspect", "--in", "--out"]).status.code(), Some(2));
    assert_eq!(fdbox(&["frobnicate"]).status.code(), Some(2));
    let help = fdbox(&["inspect", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("5  validation failed"), "{text}");
    assert!(text.contains("6  no blob"), "{text}");
    assert!(text.contains("<debugfs>/fdbox/incoming"), "{text}");
    assert!(
        text.contains("only valid before fdbox_core loads"),
        "{text}"
    );
}

#[test]
fn exit_3_malformed_with_offset() {
    let blob = std::fs::read(golden("sample.bin")).unwrap();
    let p = temp("truncated.bin", &blob[..100]);
    one_line(
        &fdbox(&["inspect", p.to_str().unwrap()]),
        3,
        "truncated at byte 100",
    );
    let p = temp("garbage.bin", b"hello world");
    one_line(
        &fdbox(&["inspect", p.to_str().unwrap()]),
        3,
        "bad magic at byte 0",
    );
    let mut bad = blob.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let p = temp("badcrc.bin", &bad);
    one_line(
        &fdbox(&["inspect", "verify", p.to_str().unwrap()]),
        3,
        "checksum",
    );
}

#[test]
fn exit_4_unsupported_version() {
    let mut blob = std::fs::read(golden("sample.bin")).unwrap();
    blob[8] = 3;
    let crc = crc32c(&blob[..28]);
    blob[28..32].copy_from_slice(&crc.to_le_bytes());
    let p = temp("v3.bin", &blob);
    one_line(
        &fdbox(&["inspect", p.to_str().unwrap()]),
        4,
        "unsupported format version 3.0",
    );
}

#[test]
fn exit_5_validation_failed() {
    let mut m =
        fdbox_format::owned::Manifest::decode(&std::fs::read(golden("sample.bin")).unwrap())
            .unwrap();
    m.boxes[0].entries[2].name = "ram".into();
    let p = temp("dup.bin", &m.encode().unwrap());
    one_line(
        &fdbox(&["inspect", "verify", p.to_str().unwrap()]),
        5,
        "duplicate name at byte",
    );
    // Plain inspect still shows it.
    assert_eq!(
        fdbox(&["inspect", p.to_str().unwrap()]).status.code(),
        Some(0)
    );
}
