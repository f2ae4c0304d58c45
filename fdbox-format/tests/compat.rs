// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The compatibility rules of the crate docs, one test each.

mod common;

use fdbox_format::header::{
    FORMAT_MAJOR,
    FORMAT_MINOR, //
};
use fdbox_format::limits::HEADER_LEN;
use fdbox_format::owned::{
    validate,
    Manifest,
    Payload, //
};
use fdbox_format::{
    decode,
    decode_payload,
    memfd,
    Decoded,
    Error,
    ErrorClass,
    Unavailable, //
};

/// The sample blob with its major version replaced.
fn with_major(major: u16) -> Vec<u8> {
    let mut blob = common::sample().encode().unwrap();
    blob[8..10].copy_from_slice(&major.to_le_bytes());
    common::fix_header_crc(&mut blob);
    blob
}

#[test]
fn current_major_decodes() {
    assert_eq!(FORMAT_MAJOR, 2);
    let blob = with_major(FORMAT_MAJOR);
    let v = decode(&blob).unwrap();
    assert_eq!(
        (v.header.major, v.header.minor),
        (FORMAT_MAJOR, FORMAT_MINOR)
    );
}

#[test]
fn previous_major_decodes() {
    // N−1: a major-1 blob, as a kernel before chunked payloads wrote it.
    let old = with_major(FORMAT_MAJOR - 1);
    let v = decode(&old).unwrap();
    assert_eq!(v.header.major, FORMAT_MAJOR - 1);
    let current = common::sample().encode().unwrap();
    assert_eq!(v.entry_count(), decode(&current).unwrap().entry_count());
}

/// A manifest of one entry whose payload is in two chunks.
fn chunked() -> Manifest {
    let mut m = common::sample();
    m.boxes.truncate(1);
    m.boxes[0].entries.truncate(1);
    m.boxes[0].entries[0].payload = Payload::Chunked {
        len: 4096 + 10,
        crc32c: 0xdead_beef,
        chunk_len: 4096,
        chunks: vec![0x10_0000, 0x20_0000],
    };
    m
}

#[test]
fn chunked_payloads_round_trip_in_major_2() {
    let m = chunked();
    let blob = m.encode().unwrap();
    let v = decode(&blob).unwrap();
    assert_eq!(Manifest::from_view(&v), m);
    validate(&v).unwrap();
    let e = v.boxes().next().unwrap().entries().next().unwrap();
    let fdbox_format::Payload::Chunked(c) = e.payload else {
        panic!("not chunked: {:?}", e.payload);
    };
    assert_eq!(
        (c.chunk_len_at(0), c.chunk_len_at(1), c.chunk_len_at(2)),
        (4096, 10, 0)
    );
    #[cfg(feature = "serde")]
    assert_eq!(postcard::to_allocvec(&m).unwrap(), blob[HEADER_LEN..]);
}

#[test]
fn chunked_payloads_are_refused_in_major_1() {
    let mut blob = chunked().encode().unwrap();
    blob[8..10].copy_from_slice(&1u16.to_le_bytes());
    common::fix_header_crc(&mut blob);
    assert!(matches!(
        decode(&blob).unwrap_err(),
        Error::BadDiscriminant { value: 2, .. }
    ));
}

#[test]
fn chunked_payloads_whose_fields_disagree_are_refused() {
    let bad = [
        (0u64, 4096u32, 0usize), // empty
        (4097, 4096, 1),         // one chunk short
        (4096, 4096, 2),         // one chunk too many
        (4096, 3000, 2),         // not a power of two
        (4096, 2048, 2),         // below a page
        (64 << 20, 8 << 20, 8),  // above 4 MiB
    ];
    for (len, chunk_len, n) in bad {
        let mut m = chunked();
        m.boxes[0].entries[0].payload = Payload::Chunked {
            len,
            crc32c: 0,
            chunk_len,
            chunks: (0..n as u64).map(|i| (i + 1) << 20).collect(),
        };
        assert!(m.encode().is_err(), "{len} {chunk_len} {n}: encoded");
        // The same bytes written by hand are refused by the decoder.
        #[cfg(feature = "serde")]
        {
            let body = postcard::to_allocvec(&m).unwrap();
            let blob = common::wrap(&body, FORMAT_MINOR);
            assert!(decode(&blob).is_err(), "{len} {chunk_len} {n}: decoded");
        }
    }
}

#[test]
fn newer_major_is_refused_as_a_whole() {
    for major in [FORMAT_MAJOR + 1, u16::MAX] {
        let err = decode(&with_major(major)).unwrap_err();
        assert_eq!(
            err,
            Error::UnsupportedVersion {
                major,
                minor: FORMAT_MINOR
            }
        );
        assert_eq!(err.class(), ErrorClass::Unsupported);
    }
}

#[test]
fn major_zero_is_refused() {
    // N−1 of version 1 does not exist: 0 was never released.
    assert_eq!(
        decode(&with_major(0)).unwrap_err(),
        Error::UnsupportedVersion {
            major: 0,
            minor: FORMAT_MINOR
        }
    );
}

#[test]
fn newer_minor_with_extensions_decodes() {
    // A newer minor may grow the header and append to the body.
    let m = common::sample();
    let mut body = m.encode().unwrap()[HEADER_LEN..].to_vec();
    body.extend_from_slice(b"future extension");
    let mut blob = common::wrap(&body, FORMAT_MINOR + 1);
    // Grow the header by 8 bytes, covered by the header checksum.
    blob.splice(HEADER_LEN..HEADER_LEN, [0xaa; 8]);
    blob[16..20].copy_from_slice(&(HEADER_LEN as u32 + 8).to_le_bytes());
    let crc = fdbox_format::crc32c::crc32c_update(
        fdbox_format::crc32c::crc32c(&blob[..28]),
        &blob[32..40],
    );
    blob[28..32].copy_from_slice(&crc.to_le_bytes());
    let v = decode(&blob).unwrap();
    assert_eq!(v.header.minor, FORMAT_MINOR + 1);
    assert_eq!(v.extension, b"future extension");
    validate(&v).unwrap();
    assert_eq!(Manifest::from_view(&v), m);
}

#[test]
fn own_minor_refuses_extensions() {
    let mut body = common::sample().encode().unwrap()[HEADER_LEN..].to_vec();
    body.push(1);
    assert!(matches!(
        decode(&common::wrap(&body, FORMAT_MINOR)).unwrap_err(),
        Error::TrailingBytes { .. }
    ));
}

#[test]
fn newer_minor_entry_flags_are_tolerated() {
    let mut m = common::sample();
    m.boxes[0].entries[1].flags = 0x8000;
    let body = postcard::to_allocvec(&m).unwrap();
    assert!(matches!(
        validate(&decode(&common::wrap(&body, FORMAT_MINOR)).unwrap()),
        Err(Error::UnknownEntryFlags { .. })
    ));
    validate(&decode(&common::wrap(&body, FORMAT_MINOR + 1)).unwrap()).unwrap();
}

#[test]
fn unknown_payload_version_is_unavailable_and_the_rest_decodes() {
    let mut m = common::sample();
    m.boxes[0].entries[0].payload_version = 99;
    let mut extra = m.boxes[0].entries[0].clone();
    extra.name = "ram2".into();
    extra.payload_version = 1;
    m.boxes[0].entries.push(extra);
    let blob = m.encode().unwrap();
    let v = decode(&blob).unwrap();
    validate(&v).unwrap();
    let entries: Vec<_> = v.boxes().next().unwrap().entries().collect();
    assert_eq!(
        decode_payload(&entries[0]).unwrap_err(),
        Unavailable::UnsupportedVersion {
            found: 99,
            newest: memfd::PAYLOAD_VERSION
        }
    );
    assert!(matches!(
        decode_payload(&entries[1]),
        Ok(Decoded::Iommufd(_))
    ));
    assert_eq!(
        decode_payload(&entries[2]).unwrap_err(),
        Unavailable::UnsupportedVersion {
            found: 3,
            newest: fdbox_format::vfio::PAYLOAD_VERSION
        }
    );
    assert!(matches!(decode_payload(&entries[3]), Ok(Decoded::Memfd(_))));
}

#[test]
fn memfd_payload_version_zero_is_unavailable() {
    let mut m = common::sample();
    m.boxes[0].entries[0].payload_version = 0;
    let blob = m.encode().unwrap();
    let v = decode(&blob).unwrap();
    let e = v.boxes().next().unwrap().entries().next().unwrap();
    assert!(matches!(
        decode_payload(&e),
        Err(Unavailable::UnsupportedVersion { found: 0, .. })
    ));
}

#[test]
fn preserved_memfd_payload_is_unavailable_here() {
    let mut m = common::sample();
    m.boxes[0].entries[0].payload = Payload::Preserved {
        phys: 0x20_0000,
        len: 4096,
        crc32c: 1,
    };
    let blob = m.encode().unwrap();
    let v = decode(&blob).unwrap();
    let e = v.boxes().next().unwrap().entries().next().unwrap();
    assert_eq!(decode_payload(&e).unwrap_err(), Unavailable::Preserved);
}
