// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Round-trip property tests, with real postcard as the oracle.

mod common;

use fdbox_format::limits::HEADER_LEN;
use fdbox_format::owned::{
    Manifest,
    Memfd, //
};
use fdbox_format::{
    decode,
    memfd, //
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// encode → decode gives the same manifest, and the size was exact.
    #[test]
    fn manifest_round_trip(m in common::manifest()) {
        let blob = m.encode().unwrap();
        prop_assert_eq!(blob.len(), m.encoded_len().unwrap());
        prop_assert_eq!(Manifest::decode(&blob).unwrap(), m);
    }

    /// Boxes encoded alone and spliced make the same blob as encoding them
    /// in one go.
    #[test]
    fn spliced_boxes_match(m in common::manifest()) {
        prop_assert_eq!(m.encode_spliced().unwrap(), m.encode().unwrap());
    }

    /// Our body bytes equal postcard's serialization of the serde derives.
    #[test]
    fn encoder_matches_postcard(m in common::manifest()) {
        let blob = m.encode().unwrap();
        let oracle = postcard::to_allocvec(&m).unwrap();
        prop_assert_eq!(&blob[HEADER_LEN..], &oracle[..]);
    }

    /// Our decoder reads what postcard writes, and postcard reads ours.
    #[test]
    fn decoder_reads_postcard(m in common::manifest()) {
        let blob = common::raw_blob(&m);
        prop_assert_eq!(&Manifest::decode(&blob).unwrap(), &m);
        let back: Manifest = postcard::from_bytes(&m.encode().unwrap()[HEADER_LEN..]).unwrap();
        prop_assert_eq!(back, m);
    }

    /// decode → encode gives back the same bytes (canonical decoding).
    #[test]
    fn decode_encode_is_identity(m in common::manifest()) {
        let blob = m.encode().unwrap();
        let again = Manifest::decode(&blob).unwrap().encode().unwrap();
        prop_assert_eq!(again, blob);
    }

    /// The iterators see every box and entry `decode` counted.
    #[test]
    fn view_counts(m in common::manifest()) {
        let blob = m.encode().unwrap();
        let v = decode(&blob).unwrap();
        prop_assert_eq!(v.boxes().count(), m.boxes.len());
        let entries: usize = m.boxes.iter().map(|b| b.entries.len()).sum();
        prop_assert_eq!(v.entry_count() as usize, entries);
        prop_assert_eq!(v.boxes().map(|b| b.entries().count()).sum::<usize>(), entries);
    }

    /// memfd payloads round-trip, canonically, with an exact size.
    #[test]
    fn memfd_round_trip(p in common::memfd()) {
        let bytes = p.encode().unwrap();
        let back = Memfd::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &p);
        prop_assert_eq!(back.encode().unwrap(), bytes);
    }

    /// Splitting runs into single folios encodes to the same bytes: the
    /// encoder merges them.
    #[test]
    fn memfd_merges_folios(p in common::memfd()) {
        let mut split = p.clone();
        split.runs = p
            .runs
            .iter()
            .flat_map(|r| (0..r.count).map(move |i| fdbox_format::owned::Run {
                index: r.index + (i << r.order),
                pfn: r.pfn + (i << r.order),
                order: r.order,
                count: 1,
            }))
            .collect();
        prop_assert_eq!(split.encode().unwrap(), p.encode().unwrap());
    }

    /// The decoder never panics on arbitrary bytes behind a valid header.
    #[test]
    fn garbage_body_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let blob = common::wrap(&body, 0);
        if let Ok(v) = decode(&blob) {
            if fdbox_format::owned::validate(&v).is_ok() {
                let m = Manifest::from_view(&v);
                prop_assert_eq!(m.encode().unwrap(), blob);
            }
        }
    }

    /// The memfd decoder never panics on arbitrary bytes.
    #[test]
    fn garbage_memfd_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(v) = memfd::decode(&body, 0) {
            prop_assert_eq!(Memfd::from_view(&v).encode().unwrap(), body);
        }
    }
}

/// The memfd payload as postcard sees it: the run stream is a sequence of
/// tuples whose optional parts are present or not, as the spec says.
#[derive(serde::Serialize)]
struct MemfdWire {
    size: u64,
    pos: u64,
    seals: u32,
    page_shift: u8,
    name: String,
    folios: u64,
    runs: Vec<common::RunWire>,
}

/// The memfd payload of `m` in the spec's model.
fn memfd_wire(m: &Memfd) -> MemfdWire {
    MemfdWire {
        size: m.size,
        pos: m.pos,
        seals: m.seals,
        page_shift: m.page_shift,
        name: m.name.clone(),
        folios: m.runs.iter().map(|r| r.count).sum(),
        runs: common::run_wire(&m.runs),
    }
}

proptest! {
    /// The memfd encoder's bytes equal postcard's for the spec's model, and
    /// the decoder reads postcard's bytes.
    #[test]
    fn memfd_matches_postcard(p in common::memfd()) {
        let oracle = postcard::to_allocvec(&memfd_wire(&p)).unwrap();
        prop_assert_eq!(&p.encode().unwrap(), &oracle);
        prop_assert_eq!(Memfd::decode(&oracle).unwrap(), p);
    }
}

/// A plain LEB128 reader: the reference for the fast path.
fn reference_varint(b: &[u8], max_bytes: usize) -> Option<(u64, usize)> {
    let mut v: u128 = 0;
    for (i, &x) in b.iter().take(max_bytes).enumerate() {
        v |= u128::from(x & 0x7f) << (7 * i);
        if x & 0x80 == 0 {
            if (i > 0 && x == 0) || v > u128::from(u64::MAX) {
                return None;
            }
            return Some((v as u64, i + 1));
        }
    }
    None
}

proptest! {
    /// The reader's varint (fast and slow paths) agrees with the reference
    /// on arbitrary bytes, and the writer round-trips any value.
    #[test]
    fn varint_matches_reference(bytes in proptest::collection::vec(any::<u8>(), 0..14), v in any::<u64>()) {
        let mut r = fdbox_format::wire::Reader::new(&bytes, 0);
        let got = r.u64().ok().map(|x| (x, r.offset()));
        prop_assert_eq!(got, reference_varint(&bytes, 10));
        let mut buf = [0u8; 10];
        let mut w = fdbox_format::wire::Writer::new(&mut buf);
        w.u64(v).unwrap();
        let n = w.position();
        prop_assert_eq!(n, fdbox_format::wire::varint_len(v));
        prop_assert_eq!(&buf[..n], &postcard::to_allocvec(&v).unwrap()[..]);
        let mut r = fdbox_format::wire::Reader::new(&buf[..n], 0);
        prop_assert_eq!(r.u64().unwrap(), v);
    }

    /// Small varints: the u16/u32 limits.
    #[test]
    fn varint_u32_matches_reference(bytes in proptest::collection::vec(0x80u8..=0xff, 0..6), last in any::<u8>()) {
        let mut b = bytes.clone();
        b.push(last & 0x7f);
        b.extend_from_slice(&[0; 8]);
        let mut r = fdbox_format::wire::Reader::new(&b, 0);
        let want = reference_varint(&b, 5).filter(|&(v, _)| v <= u64::from(u32::MAX));
        prop_assert_eq!(r.u32().ok().map(|x| (u64::from(x), r.offset())), want);
    }
}

#[test]
fn sample_round_trips_and_validates() {
    let m = common::sample();
    let blob = m.encode().unwrap();
    let v = decode(&blob).unwrap();
    fdbox_format::owned::validate(&v).unwrap();
    assert_eq!(Manifest::from_view(&v), m);
}

#[test]
fn crc32c_check_value() {
    assert_eq!(fdbox_format::crc32c::crc32c(b"123456789"), 0xe306_9283);
    assert_eq!(fdbox_format::crc32c::crc32c(b""), 0);
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    let (a, b) = data.split_at(333);
    assert_eq!(
        fdbox_format::crc32c::crc32c_update(fdbox_format::crc32c::crc32c(a), b),
        fdbox_format::crc32c::crc32c(&data)
    );
}

proptest! {
    /// Growing runs one folio at a time with `FolioRun::extend`, as the kernel's list of held
    /// folios does, gives the runs `Coalesce` gives.
    #[test]
    fn extend_coalesces_as_coalesce(steps in prop::collection::vec((0u64..3, 0u64..3, 0u8..2), 0..200)) {
        let mut folios = Vec::new();
        let (mut index, mut pfn) = (0u64, 1u64 << 20);
        for (index_gap, pfn_gap, order) in steps {
            let pages = 1u64 << order;
            index = (index + index_gap).next_multiple_of(pages);
            pfn = (pfn + pfn_gap).next_multiple_of(pages);
            folios.push(memfd::FolioRun { index, pfn, order, count: 1 });
            index += pages;
            pfn += pages;
        }
        let mut grown: Vec<memfd::FolioRun> = Vec::new();
        for run in &folios {
            if !grown.last_mut().is_some_and(|last| last.extend(run)) {
                grown.push(*run);
            }
        }
        let coalesced: Vec<_> = memfd::Coalesce::new(folios.into_iter()).collect();
        prop_assert_eq!(grown, coalesced);
    }
}
