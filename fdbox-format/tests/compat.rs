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
    assert_eq!(FORMAT_MAJOR, 1);
    let blob = with_major(FORMAT_MAJOR);
    let v = decode(&blob).unwrap();
    assert_eq!(
        (v.header.major, v.header.minor),
        (FORMAT_MAJOR, FORMAT_MINOR)
    );
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
            newest: 1
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
            newest: 1
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
