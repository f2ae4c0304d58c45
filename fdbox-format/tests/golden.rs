// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Golden blobs of every released format version, with their expected JSON.
//!
//! `tests/golden/v<major>/<name>.bin` must decode, validate (unless the name
//! starts with `invalid-`) and report exactly `<name>.json`. The blobs of the
//! current version must also be what the encoder writes today. Regenerate the
//! current version's files with `FDBOX_BLESS=1 cargo test --test golden`;
//! never regenerate a released version's files.

mod common;

use std::path::{
    Path,
    PathBuf, //
};

use fdbox_format::iommufd::{
    PROT_READ,
    PROT_WRITE, //
};
use fdbox_format::limits::HEADER_LEN;
use fdbox_format::memfd;
use fdbox_format::owned::{
    validate,
    Box as FdBox,
    Entry,
    Identity,
    Iommufd,
    Manifest,
    Mapping,
    Memfd,
    Payload,
    Run,
    Vfio, //
};
use fdbox_format::report::Report;
use fdbox_format::vfio;
use fdbox_format::{
    decode,
    BoxState, //
};

/// The directory of the current version's golden files.
fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/golden/v{}", fdbox_format::FORMAT_MAJOR))
}

/// The manifests whose blobs are golden for the current version.
fn cases() -> Vec<(&'static str, Manifest)> {
    let empty = Manifest {
        kernel_release: "7.3.4".into(),
        fdbox_version: "0.1.0".into(),
        boxes: vec![],
    };
    let thp = Memfd {
        size: (16 << 20) + 100,
        pos: 0,
        seals: 0x1f,
        page_shift: 12,
        huge_shift: 0,
        name: "thp".into(),
        runs: vec![
            Run {
                index: 0,
                pfn: 0x4_0000,
                order: 9,
                count: 3,
            },
            Run {
                index: 2048,
                pfn: 0x1_2345,
                order: 0,
                count: 1,
            },
            Run {
                index: 2049,
                pfn: 0x2_0000,
                order: 0,
                count: 7,
            },
        ],
    };
    let mut holes = common::sample();
    holes.boxes[0].name = "vm1".into();
    holes.boxes[0].state = BoxState::Open;
    holes.boxes[0].entries.push(Entry {
        name: "thp".into(),
        handler: "memfd".into(),
        payload_version: 1,
        flags: 1,
        deps: vec![],
        payload: Payload::Inline(thp.encode().unwrap()),
    });
    let mut two = common::sample();
    let mut other = two.boxes[0].clone();
    other.name = "vm-b".into();
    other.owner_uid = 0;
    other.entries[0].payload_version = memfd::PAYLOAD_VERSION + 1;
    two.boxes.push(other);
    // A hugetlb memfd of 2 MiB pages (memfd payload version 2): two pages,
    // a hole of five, and one more.
    let hugetlb = Memfd {
        size: 16 << 20,
        pos: 4096,
        seals: 0x8,
        page_shift: 12,
        huge_shift: 21,
        name: "guest-ram-2m".into(),
        runs: vec![
            Run {
                index: 0,
                pfn: 0x8_0000,
                order: 9,
                count: 2,
            },
            Run {
                index: 7 * 512,
                pfn: 0x9_0000,
                order: 9,
                count: 1,
            },
        ],
    };
    let mut huge = common::sample();
    huge.boxes[0].entries.push(Entry {
        name: "ram-2m".into(),
        handler: "memfd".into(),
        payload_version: hugetlb.version(),
        flags: 1,
        deps: vec![],
        payload: Payload::Inline(hugetlb.encode().unwrap()),
    });
    // Decodes, but fails validation: two entries named "ram".
    let mut dup = common::sample();
    dup.boxes[0].entries[2].name = "ram".into();
    // A memfd payload out of line, in three chunks of 64 KiB and less.
    let mut chunked = common::sample();
    chunked.boxes[0].entries[0].payload = Payload::Chunked {
        len: (2 << 16) + 1000,
        crc32c: 0x1234_5678,
        chunk_len: 1 << 16,
        chunks: vec![0x1_0000_0000, 0x2000, 0x7_ffff_f000],
    };
    vec![
        ("chunked-payload", chunked),
        ("invalid-duplicate-names", dup),
        ("empty", empty),
        ("sample", common::sample()),
        ("memfd-thp-holes", holes),
        ("two-boxes-unknown-version", two),
        ("iommufd-vfio", passthrough()),
        ("vfio-hwpt-identity", passthrough_v2()),
        ("memfd-hugetlb", huge),
    ]
}

/// `passthrough()` with its devices in vfio payload version 2: the NIC on a
/// HWPT userspace allocated, with a serial number, the spare bound only.
fn passthrough_v2() -> Manifest {
    let mut m = passthrough();
    let [nic, spare] = passthrough_devices();
    let nic = Vfio {
        hwpt_id: 3,
        iommufd_max_id: 3,
        identity: Some(Identity {
            subsystem_vendor: 0x1af4,
            subsystem_device: 0x1100,
            class: 0xff00,
            serial: Some(0x0011_2233_4455_6677),
        }),
        ..nic
    };
    let spare = Vfio {
        iommufd_max_id: 3,
        identity: Some(Identity {
            subsystem_vendor: 0x8086,
            subsystem_device: 0x0000,
            class: 0x02_0000,
            serial: None,
        }),
        ..spare
    };
    for (e, d) in m.boxes[0].entries[2..].iter_mut().zip([nic, spare]) {
        e.payload_version = vfio::PAYLOAD_VERSION;
        e.payload = Payload::Inline(d.encode().unwrap());
    }
    m
}

/// `passthrough()`'s devices, as its payloads of version 1 have them: a NIC
/// attached to IOAS 1, and a spare only bound.
fn passthrough_devices() -> [Vfio; 2] {
    let nic = Vfio {
        domain: 0,
        bus: 0,
        devfn: 4 << 3,
        vendor: 0x1234,
        device: 0x11e8,
        iommufd_dep: 0,
        devid: 1,
        ioas_id: 1,
        hwpt_id: 0,
        hwpt_flags: 0,
        iommufd_max_id: 0,
        identity: None,
    };
    let spare = Vfio {
        domain: 1,
        bus: 0x3a,
        devfn: 2,
        vendor: 0x8086,
        device: 0x1572,
        devid: 2,
        ioas_id: 0,
        ..nic
    };
    [nic, spare]
}

/// A VM with device passthrough: 8 MiB of guest RAM in a memfd, an iommufd
/// mapping it at two IOVAs, a device attached to the IOAS and one only
/// bound.
fn passthrough() -> Manifest {
    let ram = Memfd {
        size: 8 << 20,
        pos: 0,
        seals: 0,
        page_shift: 12,
        huge_shift: 0,
        name: "guest-ram".into(),
        runs: vec![Run {
            index: 0,
            pfn: 0x8_0000,
            order: 9,
            count: 4,
        }],
    };
    let iommu = Iommufd {
        ioas: vec![1],
        maps: vec![
            Mapping {
                ioas_id: 1,
                iova: 0,
                length: 4 << 20,
                dep: 0,
                start: 0,
                prot: PROT_READ | PROT_WRITE,
            },
            Mapping {
                ioas_id: 1,
                iova: 1 << 32,
                length: 4 << 20,
                dep: 0,
                start: 4 << 20,
                prot: PROT_READ | PROT_WRITE,
            },
        ],
    };
    let [nic, spare] = passthrough_devices();
    let entry = |name: &str, handler: &str, deps: Vec<u32>, payload: Vec<u8>| Entry {
        name: name.into(),
        handler: handler.into(),
        payload_version: 1,
        flags: 0,
        deps,
        payload: Payload::Inline(payload),
    };
    Manifest {
        kernel_release: "7.3.4-fdbox".into(),
        fdbox_version: "0.1.0".into(),
        boxes: vec![FdBox {
            name: "vm2".into(),
            owner_uid: 1000,
            owner_gid: 1000,
            state: BoxState::Sealed,
            entries: vec![
                entry("ram", "memfd", vec![], ram.encode().unwrap()),
                entry("iommu", "iommufd", vec![0], iommu.encode().unwrap()),
                entry("nic", "vfio", vec![1], common::vfio_v1_bytes(&nic)),
                entry("spare", "vfio", vec![1], common::vfio_v1_bytes(&spare)),
            ],
        }],
    }
}

/// The pretty JSON report of a blob.
fn report(blob: &[u8]) -> String {
    let v = decode(blob).unwrap();
    serde_json::to_string_pretty(&Report::new(&v)).unwrap() + "\n"
}

#[test]
fn current_encoder_writes_the_golden_blobs() {
    let bless = std::env::var_os("FDBOX_BLESS").is_some();
    for (name, m) in cases() {
        let blob = m.encode().unwrap();
        let bin = dir().join(format!("{name}.bin"));
        let json = dir().join(format!("{name}.json"));
        if bless {
            std::fs::create_dir_all(dir()).unwrap();
            std::fs::write(&bin, &blob).unwrap();
            std::fs::write(&json, report(&blob)).unwrap();
        }
        let golden = std::fs::read(&bin).unwrap();
        assert!(golden == blob, "{name}: the encoder's output changed");
    }
}

#[test]
fn every_golden_blob_decodes_to_its_json() {
    for version in std::fs::read_dir(dir().parent().unwrap()).unwrap() {
        let version = version.unwrap().path();
        if !version.is_dir() {
            continue;
        }
        let mut seen = 0;
        for f in std::fs::read_dir(&version).unwrap() {
            let bin = f.unwrap().path();
            if bin.extension().is_none_or(|e| e != "bin") {
                continue;
            }
            let blob = std::fs::read(&bin).unwrap();
            let expected = std::fs::read_to_string(bin.with_extension("json")).unwrap();
            let got: serde_json::Value = serde_json::from_str(&report(&blob)).unwrap();
            let want: serde_json::Value = serde_json::from_str(&expected).unwrap();
            assert_eq!(got, want, "{}", bin.display());
            let v = decode(&blob).unwrap();
            let stem = bin.file_stem().unwrap().to_string_lossy().into_owned();
            assert_eq!(
                validate(&v).is_ok(),
                !stem.starts_with("invalid-"),
                "{stem}"
            );
            // Canonical: decode → encode gives the same bytes; a blob of an
            // older version, the same body.
            let again = Manifest::from_view(&v).encode().unwrap();
            if v.header.major == fdbox_format::FORMAT_MAJOR {
                assert_eq!(again, blob, "{stem}");
            } else {
                assert_eq!(again[HEADER_LEN..], blob[HEADER_LEN..], "{stem}");
            }
            seen += 1;
        }
        assert!(seen >= 5, "{}: too few golden blobs", version.display());
    }
}
