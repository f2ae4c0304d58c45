// SPDX-License-Identifier: GPL-2.0 OR MIT

//! One test per rejection path of the decoder, the validator and the encoder.

mod common;

use fdbox_format::limits::{
    self,
    Limit,
    HEADER_LEN, //
};
use fdbox_format::owned::{
    validate,
    Entry,
    Manifest,
    Memfd,
    Payload,
    Run, //
};
use fdbox_format::wire::Writer;
use fdbox_format::{
    decode,
    decode_payload,
    memfd,
    BoxHead,
    BoxState,
    Encoder,
    EntryRecord,
    Error,
    ErrorClass,
    Unavailable, //
};

/// A body written by hand: `f` fills it.
fn body(f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 16];
    let mut w = Writer::new(&mut buf);
    f(&mut w);
    let n = w.position();
    buf.truncate(n);
    buf
}

/// The sample manifest with its first box's entries replaced.
fn with_entries(entries: Vec<Entry>) -> Manifest {
    let mut m = common::sample();
    m.boxes[0].entries = entries;
    m
}

/// An entry with an unknown handler and the given dependencies.
fn plain(name: &str, deps: Vec<u32>) -> Entry {
    Entry {
        name: name.into(),
        handler: "x".into(),
        payload_version: 1,
        flags: 0,
        deps,
        payload: Payload::Inline(vec![]),
    }
}

/// Decodes and validates a blob that must decode.
fn validate_blob(blob: &[u8]) -> Result<(), Error> {
    validate(&decode(blob).unwrap())
}

#[test]
fn truncated_at_every_byte() {
    let blob = common::sample().encode().unwrap();
    for cut in 0..blob.len() {
        let err = decode(&blob[..cut]).unwrap_err();
        assert_eq!(err, Error::Truncated { offset: cut }, "cut at {cut}");
        assert_eq!(err.class(), ErrorClass::Malformed);
    }
}

#[test]
fn truncated_body_at_every_byte_with_valid_header() {
    let blob = common::sample().encode().unwrap();
    let body = &blob[HEADER_LEN..];
    for cut in 0..body.len() {
        let err = decode(&common::wrap(&body[..cut], 0)).unwrap_err();
        assert!(
            matches!(err, Error::Truncated { .. } | Error::Overrun { .. }),
            "cut at {cut}: {err:?}"
        );
        assert!(err.offset().unwrap() <= HEADER_LEN + cut);
    }
}

#[test]
fn bad_magic() {
    let mut blob = common::sample().encode().unwrap();
    blob[0] = b'X';
    assert_eq!(decode(&blob).unwrap_err(), Error::BadMagic);
    assert_eq!(decode(b"ELF").unwrap_err(), Error::BadMagic);
    assert_eq!(decode(b"").unwrap_err(), Error::Truncated { offset: 0 });
}

#[test]
fn bad_header_checksum() {
    let mut blob = common::sample().encode().unwrap();
    blob[20] ^= 1;
    assert!(matches!(
        decode(&blob).unwrap_err(),
        Error::HeaderChecksum { .. }
    ));
}

#[test]
fn bad_body_checksum() {
    let mut blob = common::sample().encode().unwrap();
    let last = blob.len() - 1;
    blob[last] ^= 0x40;
    let err = decode(&blob).unwrap_err();
    assert!(matches!(err, Error::BodyChecksum { .. }), "{err:?}");
    assert_eq!(err.offset(), Some(24));
}

#[test]
fn unknown_header_flags() {
    let mut blob = common::sample().encode().unwrap();
    blob[12] = 0x10;
    common::fix_header_crc(&mut blob);
    let err = decode(&blob).unwrap_err();
    assert_eq!(err, Error::UnknownFlags { flags: 0x10 });
    assert_eq!(err.class(), ErrorClass::Unsupported);
}

#[test]
fn header_lengths() {
    let mut blob = common::sample().encode().unwrap();
    blob[16..20].copy_from_slice(&8u32.to_le_bytes());
    common::fix_header_crc(&mut blob);
    assert!(matches!(
        decode(&blob).unwrap_err(),
        Error::BadField { offset: 16, .. }
    ));

    blob[16..20].copy_from_slice(&(limits::MAX_HEADER_LEN + 1).to_le_bytes());
    common::fix_header_crc(&mut blob);
    assert!(matches!(
        decode(&blob).unwrap_err(),
        Error::Limit {
            limit: Limit::HeaderLen,
            ..
        }
    ));

    let mut blob = common::sample().encode().unwrap();
    blob[20..24].copy_from_slice(&(limits::MAX_BODY_LEN + 1).to_le_bytes());
    common::fix_header_crc(&mut blob);
    assert!(matches!(
        decode(&blob).unwrap_err(),
        Error::Limit {
            limit: Limit::BodyLen,
            ..
        }
    ));
}

#[test]
fn trailing_bytes_after_blob() {
    let mut blob = common::sample().encode().unwrap();
    let n = blob.len();
    blob.push(0);
    assert_eq!(
        decode(&blob).unwrap_err(),
        Error::TrailingBytes { offset: n }
    );
}

#[test]
fn trailing_bytes_in_body() {
    let mut body = common::sample().encode().unwrap()[HEADER_LEN..].to_vec();
    let n = body.len();
    body.push(7);
    assert_eq!(
        decode(&common::wrap(&body, 0)).unwrap_err(),
        Error::TrailingBytes {
            offset: HEADER_LEN + n
        }
    );
}

#[test]
fn oversized_box_count() {
    let b = body(|w| {
        w.str("", Limit::ReleaseLen, 64).unwrap();
        w.str("", Limit::VersionLen, 64).unwrap();
        w.u32(limits::MAX_BOXES + 1).unwrap();
    });
    let err = decode(&common::wrap(&b, 0)).unwrap_err();
    assert_eq!(
        err,
        Error::Limit {
            offset: HEADER_LEN + 2,
            limit: Limit::Boxes,
            value: u64::from(limits::MAX_BOXES + 1)
        }
    );
}

#[test]
fn count_larger_than_input() {
    let b = body(|w| {
        w.str("", Limit::ReleaseLen, 64).unwrap();
        w.str("", Limit::VersionLen, 64).unwrap();
        w.u32(1000).unwrap();
        w.write(&[0; 20]).unwrap();
    });
    let err = decode(&common::wrap(&b, 0)).unwrap_err();
    assert!(matches!(err, Error::Overrun { count: 1000, .. }), "{err:?}");
}

#[test]
fn oversized_entry_count() {
    let b = body(|w| {
        w.str("", Limit::ReleaseLen, 64).unwrap();
        w.str("", Limit::VersionLen, 64).unwrap();
        w.u32(1).unwrap();
        w.str("b", Limit::NameLen, 64).unwrap();
        w.u32(0).unwrap();
        w.u32(0).unwrap();
        w.u32(1).unwrap();
        w.u32(limits::MAX_ENTRIES_PER_BOX + 1).unwrap();
    });
    let err = decode(&common::wrap(&b, 0)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Limit {
                limit: Limit::EntriesPerBox,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn oversized_name() {
    let mut m = common::sample();
    m.boxes[0].name = "n".repeat(limits::MAX_NAME_LEN as usize + 1);
    let err = decode(&common::raw_blob(&m)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Limit {
                limit: Limit::NameLen,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        m.encode().unwrap_err(),
        Error::Limit {
            limit: Limit::NameLen,
            ..
        }
    ));
}

#[test]
fn oversized_dependency_count() {
    let mut e = plain("e", (0..=limits::MAX_DEPS).collect());
    e.deps.sort();
    let m = with_entries(vec![e]);
    let err = decode(&common::raw_blob(&m)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Limit {
                limit: Limit::Deps,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn oversized_inline_payload() {
    let b = body(|w| {
        w.str("", Limit::ReleaseLen, 64).unwrap();
        w.str("", Limit::VersionLen, 64).unwrap();
        w.u32(1).unwrap();
        w.str("b", Limit::NameLen, 64).unwrap();
        w.write(&[0, 0, 1, 1]).unwrap();
        w.str("e", Limit::NameLen, 64).unwrap();
        w.str("h", Limit::NameLen, 64).unwrap();
        w.write(&[1, 0, 0, 0]).unwrap();
        w.u32(limits::MAX_INLINE_LEN + 1).unwrap();
        w.write(&[0; 16]).unwrap();
    });
    let err = decode(&common::wrap(&b, 0)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Limit {
                limit: Limit::InlineLen,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn oversized_preserved_payload() {
    let mut m = common::sample();
    m.boxes[0].entries[2].payload = Payload::Preserved {
        phys: 0,
        len: limits::MAX_PRESERVED_LEN + 1,
        crc32c: 0,
    };
    let err = decode(&common::raw_blob(&m)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Limit {
                limit: Limit::PreservedLen,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn overlong_varint() {
    // owner_uid written as 0x81 0x80 0x00: overlong.
    let b = body(|w| {
        w.write(&[0, 0, 1, 1, b'b', 0x81, 0x80, 0x00]).unwrap();
    });
    let err = decode(&common::wrap(&b, 0)).unwrap_err();
    assert_eq!(
        err,
        Error::BadVarint {
            offset: HEADER_LEN + 5
        }
    );
}

#[test]
fn varint_too_large_for_type() {
    // owner_uid = 2^32.
    let b = body(|w| {
        w.write(&[0, 0, 1, 1, b'b']).unwrap();
        w.u64(1 << 32).unwrap();
    });
    let err = decode(&common::wrap(&b, 0)).unwrap_err();
    assert_eq!(
        err,
        Error::BadVarint {
            offset: HEADER_LEN + 5
        }
    );
}

#[test]
fn bad_utf8() {
    let b = body(|w| w.write(&[2, 0xff, 0xfe]).unwrap());
    assert_eq!(
        decode(&common::wrap(&b, 0)).unwrap_err(),
        Error::BadUtf8 {
            offset: HEADER_LEN + 1
        }
    );
}

#[test]
fn unknown_box_state() {
    let b = body(|w| w.write(&[0, 0, 1, 1, b'b', 0, 0, 2, 0]).unwrap());
    assert_eq!(
        decode(&common::wrap(&b, 0)).unwrap_err(),
        Error::BadDiscriminant {
            offset: HEADER_LEN + 7,
            value: 2
        }
    );
}

#[test]
fn unknown_payload_kind() {
    let b = body(|w| {
        w.write(&[0, 0, 1, 1, b'b', 0, 0, 1, 1]).unwrap();
        w.write(&[1, b'e', 1, b'h', 1, 0, 0, 3]).unwrap();
    });
    assert_eq!(
        decode(&common::wrap(&b, 0)).unwrap_err(),
        Error::BadDiscriminant {
            offset: HEADER_LEN + 16,
            value: 3
        }
    );
}

#[test]
fn dangling_dependency() {
    let m = with_entries(vec![plain("a", vec![]), plain("b", vec![5])]);
    let err = validate_blob(&common::raw_blob(&m)).unwrap_err();
    assert!(
        matches!(err, Error::DanglingDependency { index: 5, .. }),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Invalid);
}

#[test]
fn dependency_cycle() {
    let m = with_entries(vec![plain("a", vec![1]), plain("b", vec![0])]);
    let err = validate_blob(&common::raw_blob(&m)).unwrap_err();
    assert!(
        matches!(err, Error::DependencyOrder { index: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn self_dependency() {
    let m = with_entries(vec![plain("a", vec![0])]);
    let err = validate_blob(&common::raw_blob(&m)).unwrap_err();
    assert!(
        matches!(err, Error::DependencyOrder { index: 0, .. }),
        "{err:?}"
    );
}

#[test]
fn unordered_dependencies() {
    let m = with_entries(vec![
        plain("a", vec![]),
        plain("b", vec![]),
        plain("c", vec![1, 0]),
    ]);
    let err = validate_blob(&common::raw_blob(&m)).unwrap_err();
    assert!(
        matches!(err, Error::DependencyOrder { index: 0, .. }),
        "{err:?}"
    );
}

#[test]
fn duplicate_entry_names() {
    let m = with_entries(vec![
        plain("a", vec![]),
        plain("b", vec![]),
        plain("a", vec![]),
    ]);
    let blob = common::raw_blob(&m);
    let err = validate_blob(&blob).unwrap_err();
    let third = decode(&blob)
        .unwrap()
        .boxes()
        .next()
        .unwrap()
        .entries()
        .nth(2)
        .unwrap();
    assert_eq!(
        err,
        Error::DuplicateName {
            offset: third.offset
        }
    );
}

#[test]
fn duplicate_box_names() {
    let mut m = common::sample();
    let mut b = m.boxes[0].clone();
    b.entries.clear();
    m.boxes.push(b);
    let blob = common::raw_blob(&m);
    let err = validate_blob(&blob).unwrap_err();
    let second = decode(&blob).unwrap().boxes().nth(1).unwrap();
    assert_eq!(
        err,
        Error::DuplicateName {
            offset: second.offset
        }
    );
}

#[test]
fn box_names_are_unique_per_owner() {
    let mut m = common::sample();
    let mut b = m.boxes[0].clone();
    b.entries.clear();
    b.owner_uid = b.owner_uid.wrapping_add(1);
    m.boxes.push(b);
    let blob = common::raw_blob(&m);
    validate_blob(&blob).expect("another owner's box of the same name");
}

#[test]
fn empty_and_nul_names() {
    let m = with_entries(vec![plain("", vec![])]);
    assert!(matches!(
        validate_blob(&common::raw_blob(&m)),
        Err(Error::BadName { .. })
    ));
    let m = with_entries(vec![plain("a\0b", vec![])]);
    assert!(matches!(
        validate_blob(&common::raw_blob(&m)),
        Err(Error::BadName { .. })
    ));
}

#[test]
fn unknown_entry_flags() {
    let mut e = plain("a", vec![]);
    e.flags = 0x100;
    let err = validate_blob(&common::raw_blob(&with_entries(vec![e]))).unwrap_err();
    assert!(
        matches!(err, Error::UnknownEntryFlags { flags: 0x100, .. }),
        "{err:?}"
    );
}

#[test]
fn misaligned_preserved_payload() {
    let mut e = plain("a", vec![]);
    e.payload = Payload::Preserved {
        phys: 0x1001,
        len: 1,
        crc32c: 0,
    };
    let err = validate_blob(&common::raw_blob(&with_entries(vec![e]))).unwrap_err();
    assert!(matches!(err, Error::InconsistentSize { .. }), "{err:?}");
}

#[test]
fn unknown_handler_is_unavailable_not_an_error() {
    let mut m = common::sample();
    let mut future = plain("future", vec![0]);
    future.handler = "iommufd-from-the-future".into();
    future.payload = Payload::Inline(vec![1, 2, 3]);
    m.boxes[0].entries.push(future);
    let blob = m.encode().unwrap();
    let v = decode(&blob).unwrap();
    validate(&v).unwrap();
    let b = v.boxes().next().unwrap();
    let reasons: Vec<_> = b.entries().map(|e| decode_payload(&e).err()).collect();
    assert_eq!(
        reasons,
        [
            None,
            None,
            Some(Unavailable::UnsupportedVersion {
                found: 3,
                newest: fdbox_format::vfio::PAYLOAD_VERSION
            }),
            Some(Unavailable::UnknownHandler)
        ]
    );
}

#[test]
fn corrupt_memfd_payload_costs_only_its_entry() {
    let mut e = plain("ram", vec![]);
    e.handler = "memfd".into();
    e.payload = Payload::Inline(vec![1, 2, 3]);
    let blob = common::raw_blob(&with_entries(vec![e, plain("other", vec![])]));
    let v = decode(&blob).unwrap();
    let first = v.boxes().next().unwrap().entries().next().unwrap();
    assert!(matches!(
        decode_payload(&first),
        Err(Unavailable::Corrupt(Error::Truncated { .. }))
    ));
    validate(&v).unwrap();
    let verdicts = fdbox_format::owned::check(&v, 12).unwrap();
    assert!(
        matches!(verdicts[..], [Some(Error::Truncated { .. }), None]),
        "{verdicts:?}"
    );
}

#[test]
fn scratch_too_small() {
    let blob = common::sample().encode().unwrap();
    let v = decode(&blob).unwrap();
    let mut scratch = [0u64; 2];
    assert_eq!(
        fdbox_format::validate(&v, &mut scratch).unwrap_err(),
        Error::ScratchTooSmall { needed: 3 }
    );
}

#[test]
fn encoder_refuses_bad_input() {
    let head = BoxHead {
        name: "b",
        owner_uid: 0,
        owner_gid: 0,
        state: BoxState::Sealed,
    };
    let rec = |name, deps: &'static [u32], flags| EntryRecord {
        name,
        handler: "h",
        payload_version: 1,
        flags,
        deps,
        payload: fdbox_format::Payload::Inline(&[]),
    };
    let start = || {
        let mut e = Encoder::counting();
        e.manifest("r", "v", 1).unwrap();
        e.begin_box(&head, 2).unwrap();
        e
    };
    assert!(matches!(
        start().entry(&rec("a", &[0], 0)),
        Err(Error::BadInput { .. })
    ));
    assert!(matches!(
        start().entry(&rec("a", &[], 0x80)),
        Err(Error::BadInput { .. })
    ));
    assert!(matches!(
        start().entry(&rec("", &[], 0)),
        Err(Error::BadInput { .. })
    ));
    let mut e = start();
    e.entry(&rec("a", &[], 0)).unwrap();
    assert!(matches!(e.finish(), Err(Error::BadInput { .. })));
    let mut e = start();
    e.entry(&rec("a", &[], 0)).unwrap();
    e.entry(&rec("b", &[0], 0)).unwrap();
    assert!(matches!(
        e.entry(&rec("c", &[], 0)),
        Err(Error::BadInput { .. })
    ));
    assert!(e.finish().is_ok());

    let m = common::sample();
    let mut small = vec![0u8; m.encoded_len().unwrap() - 1];
    let mut enc = Encoder::new(&mut small).unwrap();
    let err = m.encode_with(&mut enc).err().or_else(|| enc.finish().err());
    assert!(matches!(err, Some(Error::BufferTooSmall { .. })), "{err:?}");
}

/// A memfd payload written by hand after the file fields.
fn memfd_raw(folios: u64, runs: &[&[u8]]) -> Vec<u8> {
    body(|w| {
        w.write(&[0x80, 0x80, 0x04, 0, 0, 12, 0]).unwrap(); // size 64 KiB
        w.u64(folios).unwrap();
        w.u32(runs.len() as u32).unwrap();
        for r in runs {
            w.write(r).unwrap();
        }
    })
}

#[test]
fn memfd_rejects() {
    // A valid one: one folio at pfn 1 (head: zigzag(1) << 2 = 8).
    assert!(memfd::decode(&memfd_raw(1, &[&[8]]), 0).is_ok());
    let bad = |raw: Vec<u8>| memfd::decode(&raw, 0).unwrap_err();
    // ext bit with zero index delta and the same order: non-canonical.
    assert!(matches!(
        bad(memfd_raw(1, &[&[8 | 2, 0, 0]])),
        Error::NonCanonical { .. }
    ));
    // A second run continuing the first: should have been merged.
    assert!(matches!(
        bad(memfd_raw(2, &[&[8], &[0]])),
        Error::NonCanonical { .. }
    ));
    // Order above the limit.
    assert!(matches!(
        bad(memfd_raw(1, &[&[2, 0, 19]])),
        Error::Limit {
            limit: Limit::FolioOrder,
            ..
        }
    ));
    // A 2-page folio at an odd pfn.
    assert!(matches!(
        bad(memfd_raw(1, &[&[8 | 2, 0, 1]])),
        Error::BadField { .. }
    ));
    // Beyond the file size (index 16 of a 16-page file).
    assert!(matches!(
        bad(memfd_raw(1, &[&[2, 16, 1]])),
        Error::InconsistentSize { .. }
    ));
    // Folio count disagrees with the runs.
    assert!(matches!(
        bad(memfd_raw(2, &[&[8]])),
        Error::InconsistentSize { .. }
    ));
    // A negative pfn (zigzag(-1) << 2 = 4).
    assert!(matches!(
        bad(memfd_raw(1, &[&[4]])),
        Error::Limit {
            limit: Limit::Pfn,
            ..
        }
    ));
    // Too many runs for the input.
    assert!(matches!(
        bad(memfd_raw(1, &[&[], &[]])),
        Error::Overrun { .. }
    ));
    // Trailing bytes.
    assert!(matches!(
        bad(memfd_raw(1, &[&[8, 0]])),
        Error::TrailingBytes { .. }
    ));
    // Page shift out of range.
    let mut raw = memfd_raw(1, &[&[8]]);
    raw[5] = 40;
    assert!(matches!(
        bad(raw),
        Error::Limit {
            limit: Limit::PageShift,
            ..
        }
    ));
}

#[test]
fn memfd_encoder_refuses_bad_runs() {
    let mut m = Memfd {
        size: 1 << 20,
        pos: 0,
        seals: 0,
        page_shift: 12,
        huge_shift: 0,
        name: "m".into(),
        runs: vec![
            Run {
                index: 8,
                pfn: 0,
                order: 0,
                count: 1,
            },
            Run {
                index: 0,
                pfn: 9,
                order: 0,
                count: 1,
            },
        ],
    };
    assert!(matches!(m.encode(), Err(Error::BadInput { .. })));
    m.runs = vec![Run {
        index: 1,
        pfn: 0,
        order: 1,
        count: 1,
    }];
    assert!(matches!(m.encode(), Err(Error::BadInput { .. })));
    m.runs = vec![Run {
        index: 256,
        pfn: 0,
        order: 0,
        count: 1,
    }];
    assert!(matches!(m.encode(), Err(Error::BadInput { .. })));
    m.page_shift = 40;
    m.runs.clear();
    assert!(matches!(m.encode(), Err(Error::BadInput { .. })));
}

/// FNV-1a, as the validator hashes names.
fn fnv1a(b: &[u8]) -> u32 {
    b.iter().fold(0x811c_9dc5u32, |h, &c| {
        (h ^ u32::from(c)).wrapping_mul(0x0100_0193)
    })
}

#[test]
fn hash_collisions_are_not_duplicates() {
    // Find two names with the same 32-bit hash (birthday bound: ~2^16).
    let mut seen = std::collections::HashMap::new();
    let (a, b) = (0u32..)
        .find_map(|i| {
            let n = format!("n{i}");
            seen.insert(fnv1a(n.as_bytes()), n.clone())
                .map(|other| (other, n))
        })
        .unwrap();
    assert_ne!(a, b);
    let m = with_entries(vec![
        plain(&a, vec![]),
        plain("x", vec![]),
        plain(&b, vec![]),
    ]);
    validate_blob(&common::raw_blob(&m)).unwrap();
    // The same pair plus a real duplicate of one of them is caught.
    let m = with_entries(vec![
        plain(&a, vec![]),
        plain(&b, vec![]),
        plain(&a, vec![]),
    ]);
    assert!(matches!(
        validate_blob(&common::raw_blob(&m)),
        Err(Error::DuplicateName { .. })
    ));
}
