// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The iommufd payload: round trips, postcard as the oracle, and one test per
//! rejection path of the decoder and the encoder.

mod common;

use fdbox_format::iommufd::{
    self,
    IoasMapping,
    PROT_READ,
    PROT_WRITE, //
};
use fdbox_format::limits::{
    Limit,
    MAX_IOAS,
    MAX_IOAS_MAPPINGS, //
};
use fdbox_format::owned::{
    validate,
    Iommufd,
    Mapping,
    Payload, //
};
use fdbox_format::{
    decode,
    decode_payload,
    Decoded,
    Error,
    Unavailable, //
};
use proptest::prelude::*;
use serde::{
    Deserialize,
    Serialize, //
};

/// The payload as the spec writes it, for postcard: an independent model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct IommufdWire {
    ioas: Vec<u32>,
    maps: Vec<MapWire>,
}

/// One mapping as the spec writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct MapWire {
    ioas_id: u32,
    iova: u64,
    length: u64,
    dep: u32,
    start: u64,
    prot: u8,
}

impl From<&Iommufd> for IommufdWire {
    fn from(p: &Iommufd) -> Self {
        IommufdWire {
            ioas: p.ioas.clone(),
            maps: p
                .maps
                .iter()
                .map(|m| MapWire {
                    ioas_id: m.ioas_id,
                    iova: m.iova,
                    length: m.length,
                    dep: m.dep,
                    start: m.start,
                    prot: m.prot,
                })
                .collect(),
        }
    }
}

/// A valid mapping in IOAS `ioas_id` at `iova`.
fn map(ioas_id: u32, iova: u64, length: u64) -> MapWire {
    MapWire {
        ioas_id,
        iova,
        length,
        dep: 0,
        start: 0,
        prot: PROT_READ | PROT_WRITE,
    }
}

/// The wire payload's bytes.
fn bytes(w: &IommufdWire) -> Vec<u8> {
    postcard::to_allocvec(w).unwrap()
}

/// A mapping's fields, to compute where they are.
#[derive(Clone, Copy, Debug)]
enum At {
    IoasId,
    Iova,
    Length,
    Dep,
    Start,
    Prot,
}

/// The offset of field `at` of mapping `i` in `w`'s encoding.
fn offset_of(w: &IommufdWire, i: usize, at: At) -> usize {
    let before = IommufdWire {
        ioas: w.ioas.clone(),
        maps: w.maps[..i].to_vec(),
    };
    // The count is one byte for the small counts of these tests.
    assert!(w.maps.len() < 128);
    let m = w.maps[i];
    let len = |v: u64| postcard::to_allocvec(&v).unwrap().len();
    let mut off = bytes(&before).len();
    for (field, size) in [
        (At::IoasId, len(m.ioas_id.into())),
        (At::Iova, len(m.iova)),
        (At::Length, len(m.length)),
        (At::Dep, len(m.dep.into())),
        (At::Start, len(m.start)),
        (At::Prot, 1),
    ] {
        if std::mem::discriminant(&field) == std::mem::discriminant(&at) {
            return off;
        }
        off += size;
    }
    unreachable!()
}

/// Decodes `w`'s bytes at base offset 1000 and expects `BadField` with
/// `what` at field `at` of mapping `i`; the encoder refuses it too.
fn refused_map(w: &IommufdWire, i: usize, at: At, what: &'static str) {
    let err = iommufd::decode(&bytes(w), 1000).unwrap_err();
    let offset = 1000 + offset_of(w, i, at);
    assert_eq!(err, Error::BadField { offset, what }, "{w:?}");
    refused_by_encoder(w, what);
}

/// Asserts the encoder refuses `w` with `BadInput { what }`.
fn refused_by_encoder(w: &IommufdWire, what: &'static str) {
    let maps: Vec<IoasMapping> = w
        .maps
        .iter()
        .map(|m| IoasMapping {
            ioas_id: m.ioas_id,
            iova: m.iova,
            length: m.length,
            dep: m.dep,
            start: m.start,
            prot: m.prot,
        })
        .collect();
    let want = Error::BadInput { what };
    assert_eq!(iommufd::encoded_len(&w.ioas, &maps).unwrap_err(), want);
    let mut out = vec![0u8; 4096];
    assert_eq!(iommufd::encode(&w.ioas, &maps, &mut out).unwrap_err(), want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// encode → decode gives the same payload, the size was exact, and
    /// decode → encode gives the same bytes.
    #[test]
    fn round_trip(p in common::iommufd()) {
        let bytes = p.encode().unwrap();
        let maps: Vec<IoasMapping> = p.maps.iter().map(|&m| m.into()).collect();
        prop_assert_eq!(bytes.len(), iommufd::encoded_len(&p.ioas, &maps).unwrap());
        let back = Iommufd::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &p);
        prop_assert_eq!(back.encode().unwrap(), bytes.clone());
        let v = iommufd::decode(&bytes, 0).unwrap();
        prop_assert_eq!(v.ioas_count() as usize, p.ioas.len());
        prop_assert_eq!(v.map_count() as usize, p.maps.len());
        prop_assert_eq!(v.max_dep(), p.maps.iter().map(|m| m.dep).max());
        let total = p.maps.iter().fold(0u64, |t, m| t.saturating_add(m.length));
        prop_assert_eq!(v.mapped_bytes(), total);
    }

    /// The encoder's bytes equal postcard's for the spec's model, and the
    /// two read each other's bytes.
    #[test]
    fn matches_postcard(p in common::iommufd()) {
        let wire = IommufdWire::from(&p);
        let oracle = postcard::to_allocvec(&wire).unwrap();
        let ours = p.encode().unwrap();
        prop_assert_eq!(&ours, &oracle);
        prop_assert_eq!(Iommufd::decode(&oracle).unwrap(), p.clone());
        prop_assert_eq!(postcard::from_bytes::<IommufdWire>(&ours).unwrap(), wire);
        // The owned type's serde derive is the same layout.
        prop_assert_eq!(postcard::to_allocvec(&p).unwrap(), ours);
    }

    /// The decoder never panics on arbitrary bytes, and what it accepts
    /// re-encodes to the same bytes.
    #[test]
    fn garbage_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(v) = iommufd::decode(&body, 0) {
            prop_assert_eq!(v.ioas_ids().count(), v.ioas_count() as usize);
            prop_assert_eq!(v.maps().count(), v.map_count() as usize);
            prop_assert_eq!(Iommufd::from_view(&v).encode().unwrap(), body);
        }
    }

    /// Arbitrary mappings: the encoder accepts exactly what the decoder
    /// accepts in postcard's encoding of them.
    #[test]
    fn encoder_and_decoder_agree(
        ioas in proptest::collection::vec(0u32..6, 0..4),
        maps in proptest::collection::vec(
            (0u32..6, 0u64..64, 0u64..32, 0u32..3, prop_oneof![0u64..64, Just(u64::MAX)], 0u8..5),
            0..6,
        ),
    ) {
        let maps: Vec<MapWire> = maps
            .into_iter()
            .map(|(ioas_id, iova, length, dep, start, prot)| MapWire {
                ioas_id, iova, length, dep, start, prot,
            })
            .collect();
        let wire = IommufdWire { ioas, maps };
        let owned = Iommufd {
            ioas: wire.ioas.clone(),
            maps: wire.maps.iter().map(|m| Mapping {
                ioas_id: m.ioas_id,
                iova: m.iova,
                length: m.length,
                dep: m.dep,
                start: m.start,
                prot: m.prot,
            }).collect(),
        };
        let raw = bytes(&wire);
        let decoded = iommufd::decode(&raw, 0).map(|_| ());
        let encoded = owned.encode();
        prop_assert_eq!(decoded.is_ok(), encoded.is_ok(), "{:?} {:?}", decoded, encoded);
        if let Ok(e) = encoded {
            prop_assert_eq!(e, raw);
        }
    }
}

#[test]
fn sample_decodes() {
    let p = common::sample_iommufd();
    let bytes = p.encode().unwrap();
    let v = iommufd::decode(&bytes, 0).unwrap();
    assert_eq!(v.ioas_count(), 1);
    assert_eq!(v.map_count(), 2);
    assert_eq!(v.ioas_ids().collect::<Vec<_>>(), [1]);
    assert_eq!(v.maps().next().unwrap(), p.maps[0].into());
    assert_eq!(v.max_dep(), Some(0));
    assert_eq!(v.mapped_bytes(), 1 << 20);
    v.check_deps(1).unwrap();
}

#[test]
fn empty_payload() {
    let bytes = Iommufd {
        ioas: vec![],
        maps: vec![],
    }
    .encode()
    .unwrap();
    assert_eq!(bytes, [0, 0]);
    let v = iommufd::decode(&bytes, 0).unwrap();
    assert_eq!((v.ioas_count(), v.map_count(), v.max_dep()), (0, 0, None));
    v.check_deps(0).unwrap();
}

#[test]
fn truncated_at_every_length() {
    let bytes = common::sample_iommufd().encode().unwrap();
    for cut in 0..bytes.len() {
        let err = iommufd::decode(&bytes[..cut], 100).unwrap_err();
        assert!(
            matches!(err, Error::Truncated { .. } | Error::Overrun { .. }),
            "cut at {cut}: {err:?}"
        );
        let offset = err.offset().unwrap();
        assert!((100..=100 + cut).contains(&offset), "cut at {cut}: {err:?}");
    }
    // Cut inside a mapping, after the counts proved enough bytes: the exact
    // end of the input.
    let cut = bytes.len() - 1;
    assert_eq!(
        iommufd::decode(&bytes[..cut], 100).unwrap_err(),
        Error::Truncated { offset: 100 + cut }
    );
}

#[test]
fn trailing_bytes() {
    let mut bytes = common::sample_iommufd().encode().unwrap();
    let n = bytes.len();
    bytes.push(0);
    assert_eq!(
        iommufd::decode(&bytes, 7).unwrap_err(),
        Error::TrailingBytes { offset: 7 + n }
    );
}

#[test]
fn too_many_ioas() {
    let mut raw = postcard::to_allocvec(&(MAX_IOAS + 1)).unwrap();
    raw.extend(std::iter::repeat_n(1, 300));
    assert_eq!(
        iommufd::decode(&raw, 10).unwrap_err(),
        Error::Limit {
            offset: 10,
            limit: Limit::Ioas,
            value: u64::from(MAX_IOAS + 1)
        }
    );
    let ioas: Vec<u32> = (1..=MAX_IOAS + 1).collect();
    assert_eq!(
        iommufd::encoded_len(&ioas, &[]).unwrap_err(),
        Error::BadInput {
            what: "too many IOAS objects"
        }
    );
    // The limit itself is fine.
    let p = Iommufd {
        ioas: (1..=MAX_IOAS).collect(),
        maps: vec![],
    };
    assert_eq!(Iommufd::decode(&p.encode().unwrap()).unwrap(), p);
}

#[test]
fn too_many_mappings() {
    let mut raw = vec![0];
    raw.extend(postcard::to_allocvec(&(MAX_IOAS_MAPPINGS + 1)).unwrap());
    assert_eq!(
        iommufd::decode(&raw, 10).unwrap_err(),
        Error::Limit {
            offset: 11,
            limit: Limit::IoasMappings,
            value: u64::from(MAX_IOAS_MAPPINGS + 1)
        }
    );
    let one = IoasMapping {
        ioas_id: 1,
        iova: 0,
        length: 1,
        dep: 0,
        start: 0,
        prot: PROT_READ,
    };
    let maps = vec![one; MAX_IOAS_MAPPINGS as usize + 1];
    // Refused before the mappings are looked at (they overlap).
    assert_eq!(
        iommufd::encoded_len(&[1], &maps).unwrap_err(),
        Error::BadInput {
            what: "too many IOAS mappings"
        }
    );
}

#[test]
fn counts_larger_than_the_input() {
    // Five IOAS ids claimed, two bytes left.
    assert_eq!(
        iommufd::decode(&[5, 1, 2], 0).unwrap_err(),
        Error::Overrun {
            offset: 0,
            count: 5,
            remaining: 2
        }
    );
    // Two mappings claimed, at least 12 bytes needed, 6 left.
    let raw = [1, 1, 2, 1, 0, 1, 0, 0, 1];
    assert_eq!(
        iommufd::decode(&raw, 0).unwrap_err(),
        Error::Overrun {
            offset: 2,
            count: 2,
            remaining: 6
        }
    );
}

#[test]
fn bad_varints() {
    // An overlong IOAS id (0x81 0x00).
    assert_eq!(
        iommufd::decode(&[1, 0x81, 0x00, 0], 0).unwrap_err(),
        Error::BadVarint { offset: 1 }
    );
    // An IOAS id above u32::MAX.
    let mut raw = vec![1];
    raw.extend(postcard::to_allocvec(&(1u64 << 32)).unwrap());
    raw.push(0);
    assert_eq!(
        iommufd::decode(&raw, 0).unwrap_err(),
        Error::BadVarint { offset: 1 }
    );
}

#[test]
fn ioas_id_zero() {
    let w = IommufdWire {
        ioas: vec![0],
        maps: vec![],
    };
    assert_eq!(
        iommufd::decode(&bytes(&w), 50).unwrap_err(),
        Error::BadField {
            offset: 51,
            what: "IOAS id 0"
        }
    );
    refused_by_encoder(&w, "IOAS id 0");
}

#[test]
fn ioas_ids_not_ascending() {
    for ioas in [vec![1, 3, 2], vec![1, 3, 3]] {
        let w = IommufdWire { ioas, maps: vec![] };
        assert_eq!(
            iommufd::decode(&bytes(&w), 50).unwrap_err(),
            Error::BadField {
                offset: 53,
                what: "IOAS ids not strictly ascending"
            }
        );
        refused_by_encoder(&w, "IOAS ids not strictly ascending");
    }
}

#[test]
fn mapping_in_an_unlisted_ioas() {
    let what = "mapping in an IOAS not in the list";
    // Between two listed ids, after the last, and with no IOAS at all.
    for (ioas, maps, bad) in [
        (vec![1, 3], vec![map(1, 0, 8), map(2, 0, 8)], 1),
        (vec![1, 3], vec![map(3, 0, 8), map(4, 0, 8)], 1),
        (vec![], vec![map(1, 0, 8), map(2, 0, 8)], 0),
    ] {
        refused_map(&IommufdWire { ioas, maps }, bad, At::IoasId, what);
    }
    // The first mapping below the first IOAS.
    let w = IommufdWire {
        ioas: vec![5],
        maps: vec![map(4, 0, 8)],
    };
    refused_map(&w, 0, At::IoasId, what);
}

#[test]
fn mappings_out_of_order() {
    let what = "mappings not in (IOAS, IOVA) order";
    // A lower IOAS after a higher one.
    let w = IommufdWire {
        ioas: vec![1, 2],
        maps: vec![map(2, 0, 8), map(1, 100, 8)],
    };
    refused_map(&w, 1, At::IoasId, what);
    // A lower IOVA, and the same IOVA, in the same IOAS.
    for iova in [0, 100] {
        let w = IommufdWire {
            ioas: vec![1],
            maps: vec![map(1, 100, 8), map(1, iova, 8)],
        };
        refused_map(&w, 1, At::Iova, what);
    }
    // The same IOVA in different IOASes is fine.
    let w = IommufdWire {
        ioas: vec![1, 2],
        maps: vec![map(1, 100, 8), map(2, 100, 8)],
    };
    iommufd::decode(&bytes(&w), 0).unwrap();
}

#[test]
fn overlapping_mappings() {
    // The second starts on the first's last byte.
    let w = IommufdWire {
        ioas: vec![1],
        maps: vec![map(1, 100, 8), map(1, 107, 8)],
    };
    refused_map(&w, 1, At::Iova, "overlapping mappings");
    // Adjacent is fine.
    let w = IommufdWire {
        ioas: vec![1],
        maps: vec![map(1, 100, 8), map(1, 108, 8)],
    };
    iommufd::decode(&bytes(&w), 0).unwrap();
}

#[test]
fn mapping_length_zero() {
    let w = IommufdWire {
        ioas: vec![1],
        maps: vec![map(1, 0, 0)],
    };
    refused_map(&w, 0, At::Length, "mapping length 0");
}

#[test]
fn mapping_iova_range_wraps() {
    let w = IommufdWire {
        ioas: vec![1],
        maps: vec![map(1, u64::MAX - 6, 8)],
    };
    refused_map(&w, 0, At::Length, "mapping IOVA range beyond 2^64");
    // Ending on the last address is fine, also for the whole space less one.
    for (iova, length) in [(u64::MAX - 7, 8), (0, u64::MAX), (u64::MAX, 1)] {
        let w = IommufdWire {
            ioas: vec![1],
            maps: vec![map(1, iova, length)],
        };
        iommufd::decode(&bytes(&w), 0).unwrap();
    }
}

#[test]
fn mapping_memfd_range_wraps() {
    let mut m = map(1, 0, 8);
    m.start = u64::MAX - 6;
    let w = IommufdWire {
        ioas: vec![1],
        maps: vec![m],
    };
    refused_map(&w, 0, At::Start, "mapping memfd range beyond 2^64");
    let mut m = map(1, 0, 8);
    m.start = u64::MAX - 7;
    let w = IommufdWire {
        ioas: vec![1],
        maps: vec![m],
    };
    iommufd::decode(&bytes(&w), 0).unwrap();
}

#[test]
fn mapping_protection() {
    for prot in [0, 4, 0x80, PROT_READ | 4, 0xff] {
        let mut m = map(1, 0, 8);
        m.prot = prot;
        let w = IommufdWire {
            ioas: vec![1],
            maps: vec![m],
        };
        refused_map(&w, 0, At::Prot, "mapping protection");
    }
    for prot in [PROT_READ, PROT_WRITE, PROT_READ | PROT_WRITE] {
        let mut m = map(1, 0, 8);
        m.prot = prot;
        let w = IommufdWire {
            ioas: vec![1],
            maps: vec![m],
        };
        iommufd::decode(&bytes(&w), 0).unwrap();
    }
}

#[test]
fn encoder_buffer_too_small() {
    let p = common::sample_iommufd();
    let maps: Vec<IoasMapping> = p.maps.iter().map(|&m| m.into()).collect();
    let len = iommufd::encoded_len(&p.ioas, &maps).unwrap();
    let mut out = vec![0u8; len - 1];
    assert!(matches!(
        iommufd::encode(&p.ioas, &maps, &mut out),
        Err(Error::BufferTooSmall { .. })
    ));
    // Exactly `encoded_len` bytes suffice.
    let mut out = vec![0u8; len];
    assert_eq!(iommufd::encode(&p.ioas, &maps, &mut out).unwrap(), len);
    assert_eq!(out, p.encode().unwrap());
}

#[test]
fn dependency_beyond_the_entry() {
    let mut w = IommufdWire {
        ioas: vec![1],
        maps: vec![map(1, 0, 8), map(1, 8, 8), map(1, 16, 8)],
    };
    w.maps[0].dep = 2;
    w.maps[1].dep = 300;
    w.maps[2].dep = 300;
    let raw = bytes(&w);
    let v = iommufd::decode(&raw, 40).unwrap();
    assert_eq!(v.max_dep(), Some(300));
    v.check_deps(301).unwrap();
    // Points at the first mapping with the largest index.
    assert_eq!(
        v.check_deps(300).unwrap_err(),
        Error::BadField {
            offset: 40 + offset_of(&w, 1, At::Dep),
            what: "dependency index beyond the entry's dependencies"
        }
    );
}

/// The sample blob with the iommufd entry's payload, version and
/// dependencies replaced.
fn sample_with(payload: Payload, version: u32, deps: Vec<u32>) -> Vec<u8> {
    let mut m = common::sample();
    let e = &mut m.boxes[0].entries[1];
    assert_eq!(e.handler, iommufd::HANDLER);
    e.payload = payload;
    e.payload_version = version;
    e.deps = deps;
    m.encode().unwrap()
}

#[test]
fn decode_payload_of_an_iommufd_entry() {
    let blob = common::sample().encode().unwrap();
    let v = decode(&blob).unwrap();
    validate(&v).unwrap();
    let e = v.boxes().next().unwrap().entries().nth(1).unwrap();
    let Ok(Decoded::Iommufd(p)) = decode_payload(&e) else {
        panic!("{:?}", decode_payload(&e));
    };
    assert_eq!(Iommufd::from_view(&p), common::sample_iommufd());
}

#[test]
fn decode_payload_versions_and_places() {
    let inline = Payload::Inline(common::sample_iommufd().encode().unwrap());
    for (version, want) in [
        (
            0,
            Unavailable::UnsupportedVersion {
                found: 0,
                newest: 1,
            },
        ),
        (
            2,
            Unavailable::UnsupportedVersion {
                found: 2,
                newest: 1,
            },
        ),
    ] {
        let blob = sample_with(inline.clone(), version, vec![0]);
        let v = decode(&blob).unwrap();
        validate(&v).unwrap();
        let e = v.boxes().next().unwrap().entries().nth(1).unwrap();
        assert_eq!(decode_payload(&e).unwrap_err(), want);
    }
    let preserved = Payload::Preserved {
        phys: 0x20_0000,
        len: 4096,
        crc32c: 1,
    };
    let blob = sample_with(preserved, 1, vec![0]);
    let v = decode(&blob).unwrap();
    validate(&v).unwrap();
    let e = v.boxes().next().unwrap().entries().nth(1).unwrap();
    assert_eq!(decode_payload(&e).unwrap_err(), Unavailable::Preserved);
}

#[test]
fn corrupt_iommufd_payload_is_corrupt_alone() {
    let blob = sample_with(Payload::Inline(vec![1, 2, 3]), 1, vec![0]);
    let v = decode(&blob).unwrap();
    let e = v.boxes().next().unwrap().entries().nth(1).unwrap();
    assert!(matches!(
        decode_payload(&e),
        Err(Unavailable::Corrupt(Error::Overrun { .. }))
    ));
    // The blob is fine; only this entry is corrupt, for the decoder's reason.
    validate(&v).unwrap();
    let verdicts = fdbox_format::owned::check(&v, 12).unwrap();
    assert!(
        matches!(verdicts[..], [None, Some(Error::Overrun { .. }), None]),
        "{verdicts:?}"
    );
}

#[test]
fn mapping_of_a_missing_dependency_is_corrupt() {
    // The mappings use dependency 0, and the entry has none.
    let inline = Payload::Inline(common::sample_iommufd().encode().unwrap());
    let blob = sample_with(inline, 1, vec![]);
    let v = decode(&blob).unwrap();
    let e = v.boxes().next().unwrap().entries().nth(1).unwrap();
    let Err(Unavailable::Corrupt(inner)) = decode_payload(&e) else {
        panic!("{:?}", decode_payload(&e));
    };
    let w = IommufdWire::from(&common::sample_iommufd());
    assert_eq!(
        inner,
        Error::BadField {
            offset: e.payload_offset + offset_of(&w, 0, At::Dep),
            what: "dependency index beyond the entry's dependencies"
        }
    );
    validate(&v).unwrap();
    assert_eq!(
        fdbox_format::owned::check(&v, 12).unwrap(),
        vec![None, Some(inner), None]
    );
}
