// SPDX-License-Identifier: GPL-2.0 OR MIT

//! memfd payload version 2, a hugetlb memfd: round trips, postcard as the
//! oracle, one test per rejection path, and the version dispatch of
//! `decode_payload`. Version 1, a shmem memfd, must not change.

mod common;

use std::path::Path;

use fdbox_format::memfd::{
    self,
    FolioRun,
    MemfdHead,
    PAYLOAD_VERSION,
    SHMEM_VERSION, //
};
use fdbox_format::owned::{
    self,
    Entry,
    Manifest,
    Memfd,
    Payload,
    Run, //
};
use fdbox_format::{
    decode,
    decode_payload,
    Decoded,
    Error,
    Unavailable, //
};
use proptest::prelude::*;

/// The plan's and the decoder's reason for a bad huge page shift or size.
const BAD_HUGE_SHIFT: &str = "huge page shift out of range, or not dividing the size";

/// The plan's and the decoder's reason for a run of another order.
const NOT_ONE_HUGE_PAGE: &str = "a hugetlb folio that is not one huge page";

/// 2 MiB in 4 KiB pages.
const PAGES_2M: u64 = 1 << 9;

/// 1 GiB in 4 KiB pages.
const PAGES_1G: u64 = 1 << 18;

/// A run.
fn run(index: u64, pfn: u64, order: u8, count: u64) -> Run {
    Run {
        index,
        pfn,
        order,
        count,
    }
}

/// A hugetlb memfd of 2 MiB pages over 4 KiB base pages: 16 huge pages, a
/// hole at the start, between the runs and at the end; the second run lies
/// below the first in physical memory (a negative pfn delta).
fn huge_2m() -> Memfd {
    Memfd {
        size: 16 << 21,
        pos: 3 << 21,
        seals: 0x1f,
        page_shift: 12,
        huge_shift: 21,
        name: "guest-ram-2m".into(),
        runs: vec![
            run(PAGES_2M, 0x40_0000, 9, 3),
            run(5 * PAGES_2M, 0x8_0000, 9, 1),
            // File-contiguous with the previous run but not physically: a run
            // of its own, without `ext`.
            run(6 * PAGES_2M, 0x20_0000, 9, 2),
            run(12 * PAGES_2M, 0x20_0000 + 2 * PAGES_2M, 9, 1),
        ],
    }
}

/// A hugetlb memfd of 1 GiB pages over 4 KiB base pages: order-18 runs, with
/// a hole.
fn huge_1g() -> Memfd {
    Memfd {
        size: 8 << 30,
        pos: 0,
        seals: 0x8,
        page_shift: 12,
        huge_shift: 30,
        name: "guest-ram-1g".into(),
        runs: vec![
            run(0, 4 * PAGES_1G, 18, 2),
            run(3 * PAGES_1G, 64 * PAGES_1G, 18, 1),
            run(7 * PAGES_1G, PAGES_1G, 18, 1),
        ],
    }
}

/// A shmem memfd of mixed orders: payload version 1.
fn shmem() -> Memfd {
    Memfd {
        size: (4 << 20) + 1,
        pos: 4096,
        seals: 0x8,
        page_shift: 12,
        huge_shift: 0,
        name: "guest-ram".into(),
        runs: vec![run(0, 0x1000, 0, 16), run(512, 0x4_0000, 9, 1)],
    }
}

/// The fields before the name as version 1 writes them, by postcard.
fn head_v1(m: &Memfd) -> Vec<u8> {
    postcard::to_allocvec(&(m.size, m.pos, m.seals, m.page_shift)).unwrap()
}

/// The fields before the name as version 2 writes them, by postcard.
fn head_v2(m: &Memfd) -> Vec<u8> {
    postcard::to_allocvec(&(m.size, m.pos, m.seals, m.page_shift, m.huge_shift)).unwrap()
}

/// Every field before the runs, as `m.version()` writes them, by postcard.
fn fixed(m: &Memfd) -> Vec<u8> {
    let folios: u64 = m.runs.iter().map(|r| r.count).sum();
    let runs = u32::try_from(m.runs.len()).unwrap();
    let mut out = if m.version() == SHMEM_VERSION {
        head_v1(m)
    } else {
        head_v2(m)
    };
    out.extend(postcard::to_allocvec(&(m.name.as_str(), folios, runs)).unwrap());
    out
}

/// `m`'s encoding with the fields before its name replaced by `head`: bytes
/// the encoder refuses to write.
fn with_head(m: &Memfd, head: &[u8]) -> Vec<u8> {
    let bytes = m.encode().unwrap();
    let old = if m.version() == SHMEM_VERSION {
        head_v1(m)
    } else {
        head_v2(m)
    };
    assert_eq!(&bytes[..old.len()], &old[..]);
    [head, &bytes[old.len()..]].concat()
}

/// Encodes `m`, checks the plan agrees, and decodes it as `m.version()`.
fn round_trip(m: &Memfd) -> Vec<u8> {
    let bytes = m.encode().unwrap();
    let head = MemfdHead {
        size: m.size,
        pos: m.pos,
        seals: m.seals,
        page_shift: m.page_shift,
        huge_shift: m.huge_shift,
        name: &m.name,
    };
    let runs = m.runs.iter().map(|&r| FolioRun::from(r));
    let plan = memfd::plan(&head, runs.clone()).unwrap();
    assert_eq!(plan.len, bytes.len());
    assert_eq!(memfd::encoded_len(&head, runs).unwrap(), bytes.len());
    assert_eq!(plan.runs as usize, m.runs.len());
    assert_eq!(plan.folios, m.runs.iter().map(|r| r.count).sum::<u64>());
    assert_eq!(head.version(), m.version());
    assert_eq!(Memfd::decode_version(&bytes, m.version()).unwrap(), *m);
    bytes
}

#[test]
fn hugetlb_2m_round_trips_as_version_2() {
    let m = huge_2m();
    assert_eq!(m.version(), 2);
    assert_eq!(m.version(), PAYLOAD_VERSION);
    let bytes = round_trip(&m);
    let v = memfd::decode_version(&bytes, 0, 2).unwrap();
    assert_eq!(v.head.huge_shift, 21);
    assert_eq!(v.head.page_shift, 12);
    assert_eq!(v.head.name, "guest-ram-2m");
    assert_eq!(v.folios, 7);
    assert_eq!(v.pages, 7 * PAGES_2M);
    assert_eq!(v.run_count, 4);
    assert!(v.runs().all(|r| r.order == 9));
    // Decoding is canonical: decode → encode gives the same bytes.
    assert_eq!(Memfd::from_view(&v).encode().unwrap(), bytes);
}

#[test]
fn hugetlb_1g_round_trips_as_version_2() {
    let m = huge_1g();
    assert_eq!(m.version(), 2);
    let bytes = round_trip(&m);
    let v = memfd::decode_version(&bytes, 0, 2).unwrap();
    assert_eq!(v.head.huge_shift, 30);
    assert_eq!(v.folios, 4);
    assert_eq!(v.pages, 4 * PAGES_1G);
    assert!(v.runs().all(|r| r.order == 18));
}

#[test]
fn hugetlb_round_trips_at_every_base_page_size() {
    // (page_shift, huge_shift): 16 KiB pages with 32 MiB huge pages, 64 KiB
    // pages with 512 MiB and 16 GiB ones (the largest order, 18), and 4 KiB
    // pages with the smallest huge pages (order 1).
    for (page_shift, huge_shift) in [(14u8, 25u8), (16, 29), (16, 34), (12, 13)] {
        let order = huge_shift - page_shift;
        let pages = 1u64 << order;
        let m = Memfd {
            size: 4u64 << huge_shift,
            pos: 1,
            seals: 0,
            page_shift,
            huge_shift,
            name: format!("h{huge_shift}"),
            runs: vec![run(0, 7 * pages, order, 1), run(2 * pages, 0, order, 2)],
        };
        assert_eq!(m.version(), 2, "{page_shift}/{huge_shift}");
        round_trip(&m);
    }
}

#[test]
fn hugetlb_without_folios_round_trips() {
    // Never faulted in, and empty.
    for size in [16 << 21, 0] {
        let m = Memfd {
            size,
            runs: vec![],
            ..huge_2m()
        };
        let bytes = round_trip(&m);
        let v = memfd::decode_version(&bytes, 0, 2).unwrap();
        assert_eq!((v.folios, v.pages, v.run_count), (0, 0, 0));
        assert_eq!(v.head.huge_shift, 21);
    }
}

#[test]
fn hugetlb_runs_given_per_folio_are_merged() {
    // One run per huge page, as a producer walking the folios hands them over.
    let m = huge_2m();
    let per_folio = Memfd {
        runs: m
            .runs
            .iter()
            .flat_map(|r| {
                (0..r.count).map(move |i| run(r.index + i * PAGES_2M, r.pfn + i * PAGES_2M, 9, 1))
            })
            .collect(),
        ..m.clone()
    };
    assert_eq!(per_folio.encode().unwrap(), m.encode().unwrap());
    assert_eq!(
        Memfd::decode_version(&per_folio.encode().unwrap(), 2).unwrap(),
        m
    );
}

#[test]
fn shmem_stays_version_1_and_its_bytes_do_not_change() {
    let m = shmem();
    assert_eq!(m.version(), 1);
    assert_eq!(m.version(), SHMEM_VERSION);
    let bytes = round_trip(&m);
    // No huge shift byte: the name follows the page shift, as in version 1.
    assert_eq!(&bytes[..fixed(&m).len()], &fixed(&m)[..]);
    assert_eq!(Memfd::decode(&bytes).unwrap(), m);
    assert_eq!(Memfd::decode_version(&bytes, 1).unwrap(), m);
    // The same bytes read as version 2 take the name's length for the huge
    // shift (9, below the page shift), and must not pass for the memfd.
    assert!(!matches!(Memfd::decode_version(&bytes, 2), Ok(v) if v == m));
    assert!(Memfd::decode_version(&bytes, 2).is_err());
    // And the other way round.
    let huge = huge_2m().encode().unwrap();
    assert!(!matches!(Memfd::decode(&huge), Ok(v) if v == huge_2m()));
}

/// Whether any memfd payload of version 1 decodes as version 2 to the same
/// memfd: names whose length byte is a valid huge shift, sizes that are
/// multiples of the huge page.
#[test]
fn shmem_bytes_never_pass_for_hugetlb() {
    for len in [0usize, 1, 9, 13, 21, 30, 33, 63] {
        for (size, runs) in [
            (0, vec![]),
            (1u64 << 30, vec![]),
            (1 << 30, vec![run(0, 0, 0, 1)]),
            (1 << 30, vec![run(0, 0, 9, 1)]),
        ] {
            let m = Memfd {
                size,
                pos: 0,
                seals: 0,
                page_shift: 12,
                huge_shift: 0,
                name: "x".repeat(len),
                runs,
            };
            let bytes = m.encode().unwrap();
            assert_eq!(Memfd::decode(&bytes).unwrap(), m);
            if let Ok(v) = Memfd::decode_version(&bytes, 2) {
                assert_ne!(v, m, "name length {len}");
            }
        }
    }
}

/// Every memfd payload of the golden blobs, those of the released version 1
/// included: the version 1 ones decode and encode to the same bytes with the
/// version 2 code, the version 2 one is a hugetlb memfd.
#[test]
fn golden_memfd_payloads_are_unchanged() {
    let mut seen = [0usize; 2];
    for major in ["v1", "v2"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(major);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "bin"))
            .collect();
        files.sort();
        for path in files {
            let blob = std::fs::read(&path).unwrap();
            let v = decode(&blob).unwrap();
            for b in v.boxes() {
                for e in b.entries() {
                    let fdbox_format::Payload::Inline(bytes) = e.payload else {
                        continue;
                    };
                    if e.handler != memfd::HANDLER {
                        continue;
                    }
                    let at = format!("{}: {}", path.display(), e.name);
                    match e.payload_version {
                        1 => {
                            let m = Memfd::decode(bytes).unwrap();
                            assert_eq!(m.huge_shift, 0, "{at}");
                            assert_eq!(m.version(), 1, "{at}");
                            assert_eq!(m.encode().unwrap(), bytes, "{at}");
                            assert!(
                                !matches!(Memfd::decode_version(bytes, 2), Ok(ref v) if *v == m),
                                "{at}"
                            );
                            assert!(matches!(decode_payload(&e), Ok(Decoded::Memfd(_))), "{at}");
                            seen[0] += 1;
                        }
                        // Before memfd payload version 2 was defined, the
                        // released v1 blob used it for "a version this reader
                        // doesn't know", over version 1 bytes: those are
                        // version 1 bytes, corrupt as version 2.
                        2 if path.ends_with("v1/two-boxes-unknown-version.bin") => {
                            assert_eq!(Memfd::decode(bytes).unwrap().encode().unwrap(), bytes);
                            assert!(
                                matches!(decode_payload(&e), Err(Unavailable::Corrupt(_))),
                                "{at}"
                            );
                        }
                        2 => {
                            let m = Memfd::decode_version(bytes, 2).unwrap();
                            assert_ne!(m.huge_shift, 0, "{at}");
                            assert_eq!(m.version(), 2, "{at}");
                            assert_eq!(m.encode().unwrap(), bytes, "{at}");
                            seen[1] += 1;
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    assert!(seen[0] >= 4, "version 1 memfd payloads: {}", seen[0]);
    assert!(seen[1] >= 1, "version 2 memfd payloads: {}", seen[1]);
}

/// The fields of a version 2 payload before the folio count, as the spec
/// lists them: postcard is the oracle for them.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct HeadV2 {
    size: u64,
    pos: u64,
    seals: u32,
    page_shift: u8,
    huge_shift: u8,
    name: String,
}

impl HeadV2 {
    fn of(m: &Memfd) -> Self {
        HeadV2 {
            size: m.size,
            pos: m.pos,
            seals: m.seals,
            page_shift: m.page_shift,
            huge_shift: m.huge_shift,
            name: m.name.clone(),
        }
    }
}

#[test]
fn hugetlb_head_matches_postcard() {
    let big = Memfd {
        // Multi-byte varints in every field that has them.
        pos: u64::MAX,
        seals: u32::MAX,
        size: 1 << 50,
        ..huge_1g()
    };
    for m in [huge_2m(), huge_1g(), big] {
        let ours = m.encode().unwrap();
        let oracle = postcard::to_allocvec(&HeadV2::of(&m)).unwrap();
        assert_eq!(&ours[..oracle.len()], &oracle[..]);
        let (head, rest): (HeadV2, &[u8]) = postcard::take_from_bytes(&ours).unwrap();
        assert_eq!(head, HeadV2::of(&m));
        // Then the folio count and the run count.
        let (counts, _): ((u64, u32), &[u8]) = postcard::take_from_bytes(rest).unwrap();
        assert_eq!(counts.0, m.runs.iter().map(|r| r.count).sum::<u64>());
        assert_eq!(counts.1 as usize, m.runs.len());
    }
}

/// The whole version 2 payload as postcard sees it (the run model of
/// `roundtrip.rs`, with the huge shift).
#[derive(serde::Serialize)]
struct MemfdWireV2 {
    size: u64,
    pos: u64,
    seals: u32,
    page_shift: u8,
    huge_shift: u8,
    name: String,
    folios: u64,
    runs: Vec<common::RunWire>,
}

/// The version 2 payload of `m` in the spec's model.
fn wire_v2(m: &Memfd) -> MemfdWireV2 {
    MemfdWireV2 {
        size: m.size,
        pos: m.pos,
        seals: m.seals,
        page_shift: m.page_shift,
        huge_shift: m.huge_shift,
        name: m.name.clone(),
        folios: m.runs.iter().map(|r| r.count).sum(),
        runs: common::run_wire(&m.runs),
    }
}

#[test]
fn hugetlb_payloads_match_postcard() {
    for m in [huge_2m(), huge_1g()] {
        let oracle = postcard::to_allocvec(&wire_v2(&m)).unwrap();
        assert_eq!(m.encode().unwrap(), oracle);
        assert_eq!(Memfd::decode_version(&oracle, 2).unwrap(), m);
    }
}

/// Canonical hugetlb memfds: one huge page per folio, ascending, aligned,
/// merged, the size a multiple of the huge page.
fn hugetlb() -> impl Strategy<Value = Memfd> {
    (
        prop_oneof![
            Just((12u8, 21u8)),
            Just((12, 30)),
            Just((12, 13)),
            Just((14, 25)),
            Just((16, 29)),
            Just((16, 34)),
        ],
        proptest::collection::vec((0u64..4, 0u64..64, 1u64..5), 0..12),
        0u64..3,
        any::<u64>(),
        any::<u32>(),
        "[a-z0-9-]{0,24}",
    )
        .prop_map(|((page_shift, huge_shift), raw, tail, pos, seals, name)| {
            let order = huge_shift - page_shift;
            let mut runs: Vec<Run> = Vec::new();
            // In huge pages.
            let mut end = 0u64;
            let mut end_pfn = None;
            for (gap, pfn, count) in raw {
                // A run that continues the previous one is merged by the
                // encoder; move it in physical memory instead.
                let pfn = if gap == 0 && end_pfn == Some(pfn) {
                    pfn + 64
                } else {
                    pfn
                };
                let index = end + gap;
                runs.push(run(index << order, pfn << order, order, count));
                end = index + count;
                end_pfn = Some(pfn + count);
            }
            Memfd {
                size: (end + tail) << huge_shift,
                pos,
                seals,
                page_shift,
                huge_shift,
                name,
                runs,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The encoder's bytes equal postcard's for the spec's version 2 model,
    /// the decoder reads them back, and the plan's size is exact.
    #[test]
    fn hugetlb_matches_postcard(m in hugetlb()) {
        prop_assert_eq!(m.version(), 2);
        let ours = m.encode().unwrap();
        let oracle = postcard::to_allocvec(&wire_v2(&m)).unwrap();
        prop_assert_eq!(&ours, &oracle);
        prop_assert_eq!(Memfd::decode_version(&ours, 2).unwrap(), m.clone());
        let v = memfd::decode_version(&ours, 0, 2).unwrap();
        let pages: u64 = m.runs.iter().map(|r| r.count << r.order).sum();
        prop_assert_eq!(v.pages, pages);
    }

    /// Every huge shift the decoder accepts for a payload is one the encoder
    /// accepts, and gives the same bytes back.
    #[test]
    fn decoded_hugetlb_reencodes(m in hugetlb(), huge_shift in any::<u8>()) {
        let bytes = with_head(&m, &head_v2(&Memfd { huge_shift, ..m.clone() }));
        match Memfd::decode_version(&bytes, 2) {
            Ok(v) => {
                prop_assert_eq!(v.huge_shift, huge_shift);
                prop_assert_eq!(v.encode().unwrap(), bytes);
            }
            Err(e) => prop_assert!(huge_shift != m.huge_shift, "{:?}", e),
        }
    }
}

// The encoder's refusals: `plan` (and so `encode`) says `BadInput`.

/// `m.encode()`'s error, and that `plan` agrees.
fn refused(m: &Memfd) -> Error {
    let head = MemfdHead {
        size: m.size,
        pos: m.pos,
        seals: m.seals,
        page_shift: m.page_shift,
        huge_shift: m.huge_shift,
        name: &m.name,
    };
    let planned = memfd::plan(&head, m.runs.iter().map(|&r| FolioRun::from(r))).unwrap_err();
    let encoded = m.encode().unwrap_err();
    assert_eq!(planned, encoded);
    encoded
}

#[test]
fn encoder_refuses_huge_shift_equal_to_page_shift() {
    for page_shift in 12..=16 {
        let m = Memfd {
            page_shift,
            huge_shift: page_shift,
            runs: vec![],
            ..huge_2m()
        };
        assert_eq!(
            refused(&m),
            Error::BadInput {
                what: BAD_HUGE_SHIFT
            }
        );
    }
}

#[test]
fn encoder_refuses_huge_shift_below_page_shift() {
    let m = Memfd {
        page_shift: 16,
        huge_shift: 14,
        runs: vec![],
        ..huge_2m()
    };
    assert_eq!(
        refused(&m),
        Error::BadInput {
            what: BAD_HUGE_SHIFT
        }
    );
}

#[test]
fn encoder_refuses_huge_shift_above_the_largest_order() {
    // page_shift + 18 is the largest (an order-18 folio); one more is not.
    let ok = Memfd {
        size: 1 << 31,
        runs: vec![],
        ..huge_1g()
    };
    assert_eq!(ok.huge_shift, ok.page_shift + 18);
    ok.encode().unwrap();
    for huge_shift in [31u8, 40, 63, 64, 255] {
        let m = Memfd {
            // A multiple of every huge page size up to 2^63.
            size: 0,
            huge_shift,
            runs: vec![],
            ..huge_1g()
        };
        assert_eq!(
            refused(&m),
            Error::BadInput {
                what: BAD_HUGE_SHIFT
            },
            "huge_shift {huge_shift}"
        );
    }
}

#[test]
fn encoder_refuses_a_size_not_a_multiple_of_the_huge_page() {
    for (m, size) in [
        (huge_2m(), (16 << 21) + 4096),
        (huge_2m(), (16 << 21) - 1),
        (huge_1g(), (8 << 30) + (2 << 20)),
        (huge_1g(), 1 << 29),
    ] {
        let m = Memfd { size, ..m };
        assert_eq!(
            refused(&m),
            Error::BadInput {
                what: BAD_HUGE_SHIFT
            },
            "size {size:#x}"
        );
    }
}

#[test]
fn encoder_refuses_a_run_of_another_order() {
    let cases = [
        // An order-0 folio in a 2 MiB memfd.
        (huge_2m(), run(0, 0x1000, 0, 1)),
        // Four base pages, aligned.
        (huge_2m(), run(0, 0x1000, 2, 1)),
        // Two huge pages in one folio.
        (huge_2m(), run(0, 0x10_0000, 10, 1)),
        // A 2 MiB folio in a 1 GiB memfd.
        (huge_1g(), run(0, 0x10_0000, 9, 1)),
    ];
    for (m, bad) in cases {
        // Alone, first among good runs, and last (at the end of the file).
        let mut last = m.runs[..m.runs.len() - 1].to_vec();
        last.push(run(
            (m.size >> m.page_shift) - (1 << bad.order),
            bad.pfn,
            bad.order,
            1,
        ));
        for runs in [vec![bad], [vec![bad], m.runs[1..].to_vec()].concat(), last] {
            let m = Memfd { runs, ..m.clone() };
            assert_eq!(
                refused(&m),
                Error::BadInput {
                    what: NOT_ONE_HUGE_PAGE
                },
                "{:?}",
                m.runs
            );
        }
    }
    // The same runs are fine in a shmem memfd.
    let m = Memfd {
        huge_shift: 0,
        runs: vec![run(0, 0x1000, 0, 1), run(512, 0x10_0000, 9, 1)],
        ..huge_2m()
    };
    assert_eq!(Memfd::decode(&m.encode().unwrap()).unwrap(), m);
}

#[test]
fn encoder_refuses_a_huge_page_past_the_size() {
    let m = huge_2m();
    let m = Memfd {
        size: 12 * (1 << 21),
        ..m
    };
    assert_eq!(
        refused(&m),
        Error::BadInput {
            what: "folio beyond the file size"
        }
    );
}

// The decoder's refusals: bytes the encoder would not write.

#[test]
fn decoder_refuses_a_zero_huge_shift() {
    // Version 1 bytes with a 0 inserted after the page shift.
    for m in [
        shmem(),
        Memfd {
            size: 4 << 20,
            ..shmem()
        },
    ] {
        let v1 = m.encode().unwrap();
        let at = head_v1(&m).len();
        let mut v2 = v1.clone();
        v2.insert(at, 0);
        assert_eq!(
            Memfd::decode_version(&v2, 2).unwrap_err(),
            Error::BadField {
                offset: at,
                what: BAD_HUGE_SHIFT
            }
        );
        // At a base offset, the offset moves with it.
        assert_eq!(
            memfd::decode_version(&v2, 1000, 2).unwrap_err(),
            Error::BadField {
                offset: 1000 + at,
                what: BAD_HUGE_SHIFT
            }
        );
    }
    // As crafted from a version 2 payload too.
    let from_huge = with_head(
        &huge_2m(),
        &head_v2(&Memfd {
            huge_shift: 0,
            ..huge_2m()
        }),
    );
    assert_eq!(
        Memfd::decode_version(&from_huge, 2).unwrap_err(),
        Error::BadField {
            offset: head_v1(&huge_2m()).len(),
            what: BAD_HUGE_SHIFT
        }
    );
}

/// The bytes of `m` (version 2) with its huge shift and size replaced, and
/// the offset of the huge shift byte.
fn mutated(m: &Memfd, huge_shift: u8, size: u64) -> (Vec<u8>, usize) {
    let new = Memfd {
        huge_shift,
        size,
        ..m.clone()
    };
    let bytes = with_head(m, &head_v2(&new));
    // The huge shift byte is the last of the head.
    let at = head_v2(&new).len() - 1;
    assert_eq!(bytes[at], huge_shift);
    (bytes, at)
}

#[test]
fn decoder_refuses_huge_shift_equal_to_page_shift() {
    let m = huge_2m();
    let (bytes, at) = mutated(&m, m.page_shift, m.size);
    assert_eq!(
        Memfd::decode_version(&bytes, 2).unwrap_err(),
        Error::BadField {
            offset: at,
            what: BAD_HUGE_SHIFT
        }
    );
}

#[test]
fn decoder_refuses_huge_shift_below_page_shift() {
    let m = Memfd {
        runs: vec![],
        ..huge_2m()
    };
    for huge_shift in [1u8, 11] {
        let (bytes, at) = mutated(&m, huge_shift, m.size);
        assert_eq!(
            Memfd::decode_version(&bytes, 2).unwrap_err(),
            Error::BadField {
                offset: at,
                what: BAD_HUGE_SHIFT
            }
        );
    }
}

#[test]
fn decoder_refuses_huge_shift_above_the_largest_order() {
    // No runs, size 0: only the huge shift is wrong.
    let m = Memfd {
        size: 0,
        runs: vec![],
        ..huge_1g()
    };
    let (ok, _) = mutated(&m, 30, 0);
    assert_eq!(Memfd::decode_version(&ok, 2).unwrap(), m);
    for huge_shift in [31u8, 63, 64, 127, 255] {
        let (bytes, at) = mutated(&m, huge_shift, 0);
        assert_eq!(
            Memfd::decode_version(&bytes, 2).unwrap_err(),
            Error::BadField {
                offset: at,
                what: BAD_HUGE_SHIFT
            },
            "huge_shift {huge_shift}"
        );
    }
    // With its runs, a 1 GiB memfd read as 2^31 pages.
    let (bytes, at) = mutated(&huge_1g(), 31, 16 << 30);
    assert_eq!(
        Memfd::decode_version(&bytes, 2).unwrap_err(),
        Error::BadField {
            offset: at,
            what: BAD_HUGE_SHIFT
        }
    );
}

#[test]
fn decoder_refuses_a_size_not_a_multiple_of_the_huge_page() {
    for (m, size) in [
        (huge_2m(), (16 << 21) + 4096),
        (huge_2m(), (16 << 21) + 1),
        (huge_1g(), (8 << 30) + (2 << 20)),
    ] {
        let (bytes, at) = mutated(&m, m.huge_shift, size);
        assert_eq!(
            Memfd::decode_version(&bytes, 2).unwrap_err(),
            Error::BadField {
                offset: at,
                what: BAD_HUGE_SHIFT
            },
            "size {size:#x}"
        );
    }
}

#[test]
fn decoder_refuses_a_run_of_another_order() {
    // A shmem memfd of order-0 folios, its bytes given a huge shift of 21.
    let m = Memfd {
        size: 4 << 20,
        pos: 0,
        seals: 0,
        page_shift: 12,
        huge_shift: 0,
        name: "small".into(),
        runs: vec![run(0, 0x1000, 0, 3)],
    };
    let bytes = with_head(
        &m,
        &head_v2(&Memfd {
            huge_shift: 21,
            ..m.clone()
        }),
    );
    let first_run = fixed(&Memfd {
        huge_shift: 21,
        ..m.clone()
    })
    .len();
    assert_eq!(
        Memfd::decode_version(&bytes, 2).unwrap_err(),
        Error::BadField {
            offset: first_run,
            what: NOT_ONE_HUGE_PAGE
        }
    );
    // A good huge page, then a folio of two: the second run is the culprit.
    let good = run(0, 0x10_0000, 9, 1);
    let two = run(1024, 0x20_0000, 10, 1);
    let m = Memfd {
        size: 8 << 20,
        runs: vec![good, two],
        ..m
    };
    let bytes = with_head(
        &m,
        &head_v2(&Memfd {
            huge_shift: 21,
            ..m.clone()
        }),
    );
    let second_run = Memfd {
        huge_shift: 21,
        runs: vec![good],
        ..m.clone()
    }
    .encode()
    .unwrap()
    .len();
    assert_eq!(
        Memfd::decode_version(&bytes, 2).unwrap_err(),
        Error::BadField {
            offset: second_run,
            what: NOT_ONE_HUGE_PAGE
        }
    );
}

#[test]
fn decoder_refuses_unknown_versions() {
    let bad = Error::BadInput {
        what: "memfd payload version",
    };
    for m in [shmem(), huge_2m()] {
        let bytes = m.encode().unwrap();
        for version in [0, 3, 99, u32::MAX] {
            assert_eq!(
                Memfd::decode_version(&bytes, version).unwrap_err(),
                bad,
                "{version}"
            );
            assert_eq!(
                memfd::decode_version(&bytes, 0, version).unwrap_err(),
                bad,
                "{version}"
            );
        }
    }
    // Before reading a byte.
    assert_eq!(Memfd::decode_version(&[], 3).unwrap_err(), bad);
    assert_eq!(Memfd::decode_version(&[], 0).unwrap_err(), bad);
}

// Through `decode_payload`: the entry's payload version picks the schema.

/// The sample manifest with a hugetlb memfd entry of `version` appended.
fn with_hugetlb(version: u32, payload: Vec<u8>) -> Manifest {
    let mut m = common::sample();
    m.boxes[0].entries.push(Entry {
        name: "ram-2m".into(),
        handler: memfd::HANDLER.into(),
        payload_version: version,
        flags: 0,
        deps: vec![],
        payload: Payload::Inline(payload),
    });
    m
}

#[test]
fn decode_payload_reads_version_2() {
    let huge = huge_2m();
    let m = with_hugetlb(huge.version(), huge.encode().unwrap());
    let blob = m.encode().unwrap();
    let v = decode(&blob).unwrap();
    owned::validate(&v).unwrap();
    let entries: Vec<_> = v.boxes().next().unwrap().entries().collect();
    assert_eq!(entries[3].payload_version, 2);
    let Ok(Decoded::Memfd(view)) = decode_payload(&entries[3]) else {
        panic!("not a memfd: {:?}", decode_payload(&entries[3]));
    };
    assert_eq!(view.head.huge_shift, 21);
    assert_eq!(Memfd::from_view(&view), huge);
    // The shmem memfd next to it is still version 1.
    let Ok(Decoded::Memfd(shm)) = decode_payload(&entries[0]) else {
        panic!("not a memfd: {:?}", decode_payload(&entries[0]));
    };
    assert_eq!(entries[0].payload_version, 1);
    assert_eq!(shm.head.huge_shift, 0);
    // Nothing in it is corrupt for a reader of 4 KiB pages.
    assert_eq!(
        owned::check(&v, 12).unwrap(),
        vec![None; entries.len()],
        "{:?}",
        entries
    );
}

#[test]
fn decode_payload_refuses_version_3() {
    let huge = huge_2m();
    let blob = with_hugetlb(3, huge.encode().unwrap()).encode().unwrap();
    let v = decode(&blob).unwrap();
    owned::validate(&v).unwrap();
    let e = v.boxes().next().unwrap().entries().nth(3).unwrap();
    assert_eq!(
        decode_payload(&e).unwrap_err(),
        Unavailable::UnsupportedVersion {
            found: 3,
            newest: 2
        }
    );
    // Unavailable, not corrupt.
    assert_eq!(owned::check(&v, 12).unwrap()[3], None);
}

#[test]
fn decode_payload_checks_the_version_against_the_bytes() {
    // Version 2 bytes labelled 1, and version 1 bytes labelled 2.
    let huge = huge_2m();
    let blob = with_hugetlb(1, huge.encode().unwrap()).encode().unwrap();
    let v = decode(&blob).unwrap();
    let e = v.boxes().next().unwrap().entries().nth(3).unwrap();
    assert!(
        !matches!(decode_payload(&e), Ok(Decoded::Memfd(ref m)) if Memfd::from_view(m) == huge),
        "{:?}",
        decode_payload(&e)
    );
    let mut m = common::sample();
    m.boxes[0].entries[0].payload_version = 2;
    let blob = m.encode().unwrap();
    let v = decode(&blob).unwrap();
    let e = v.boxes().next().unwrap().entries().next().unwrap();
    assert!(
        matches!(decode_payload(&e), Err(Unavailable::Corrupt(_))),
        "{:?}",
        decode_payload(&e)
    );
    assert!(owned::check(&v, 12).unwrap()[0].is_some());
}

#[test]
fn decode_payload_reports_a_bad_huge_shift_at_its_blob_offset() {
    let huge = huge_2m();
    let (bytes, at) = mutated(&huge, 0, huge.size);
    let blob = with_hugetlb(2, bytes).encode().unwrap();
    let v = decode(&blob).unwrap();
    let e = v.boxes().next().unwrap().entries().nth(3).unwrap();
    let want = Error::BadField {
        offset: e.payload_offset + at,
        what: BAD_HUGE_SHIFT,
    };
    assert_eq!(decode_payload(&e).unwrap_err(), Unavailable::Corrupt(want));
    assert_eq!(owned::check(&v, 12).unwrap()[3], Some(want));
}
