// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The per-entry checks: a payload that names memory it can't own makes its
//! own entry corrupt, and only that entry.

mod common;

use fdbox_format::owned::{
    check,
    validate,
    Box as FdBox,
    Entry,
    Manifest,
    Memfd,
    Payload,
    Run, //
};
use fdbox_format::{
    check_entries,
    check_entries_with,
    decode,
    span_count,
    span_count_with,
    BoxState,
    Error,
    Machine,
    Span, //
};

/// A memfd entry of one run of `count` 4 KiB pages from `pfn`.
fn memfd(name: &str, pfn: u64, count: u64, page_shift: u8) -> Entry {
    let m = Memfd {
        size: count << 12,
        pos: 0,
        seals: 0,
        page_shift,
        huge_shift: 0,
        name: name.into(),
        runs: vec![Run {
            index: 0,
            pfn,
            order: 0,
            count,
        }],
    };
    Entry {
        name: name.into(),
        handler: "memfd".into(),
        payload_version: 1,
        flags: 0,
        deps: vec![],
        payload: Payload::Inline(m.encode().unwrap()),
    }
}

fn manifest(boxes: Vec<Vec<Entry>>) -> Vec<u8> {
    Manifest {
        kernel_release: "7.3.4".into(),
        fdbox_version: "0.1".into(),
        boxes: boxes
            .into_iter()
            .enumerate()
            .map(|(i, entries)| FdBox {
                name: format!("box{i}"),
                owner_uid: 0,
                owner_gid: 0,
                state: BoxState::Sealed,
                entries,
            })
            .collect(),
    }
    .encode()
    .unwrap()
}

/// Whether each entry is corrupt, in manifest order.
fn corrupt(blob: &[u8]) -> Vec<bool> {
    let v = decode(blob).unwrap();
    validate(&v).unwrap();
    check(&v, 12).unwrap().iter().map(Option::is_some).collect()
}

#[test]
fn clean_entries_pass() {
    let blob = manifest(vec![
        vec![memfd("a", 0x100, 8, 12), memfd("b", 0x108, 8, 12)],
        vec![memfd("c", 0x200, 1, 12)],
    ]);
    assert_eq!(corrupt(&blob), [false, false, false]);
}

#[test]
fn a_page_named_by_two_entries_makes_both_corrupt() {
    let blob = manifest(vec![vec![
        memfd("a", 0x100, 8, 12),
        memfd("b", 0x107, 2, 12),
        memfd("clean", 0x300, 4, 12),
    ]]);
    assert_eq!(corrupt(&blob), [true, true, false]);
}

#[test]
fn a_page_named_in_two_boxes_makes_both_corrupt() {
    let blob = manifest(vec![
        vec![memfd("clean", 0x50, 1, 12), memfd("a", 0x100, 1, 12)],
        vec![memfd("a", 0x100, 1, 12)],
    ]);
    assert_eq!(corrupt(&blob), [false, true, true]);
}

#[test]
fn a_page_named_twice_in_one_entry_makes_it_corrupt() {
    let m = Memfd {
        size: 1 << 20,
        pos: 0,
        seals: 0,
        page_shift: 12,
        huge_shift: 0,
        name: "twice".into(),
        runs: vec![
            Run {
                index: 0,
                pfn: 0x100,
                order: 0,
                count: 4,
            },
            Run {
                index: 10,
                pfn: 0x102,
                order: 0,
                count: 1,
            },
        ],
    };
    let mut e = memfd("twice", 0, 1, 12);
    e.payload = Payload::Inline(m.encode().unwrap());
    let blob = manifest(vec![vec![e, memfd("clean", 0x200, 1, 12)]]);
    let v = decode(&blob).unwrap();
    let verdicts = check(&v, 12).unwrap();
    assert!(
        matches!(
            verdicts[..],
            [Some(Error::ForeignMemory { pfn: 0x102, .. }), None]
        ),
        "{verdicts:?}"
    );
}

#[test]
fn another_page_size_is_corrupt() {
    let blob = manifest(vec![vec![
        memfd("big", 0x100, 1, 16),
        memfd("clean", 0x200, 1, 12),
    ]]);
    assert_eq!(corrupt(&blob), [true, false]);
}

/// RAM is page frames `0..ram`.
struct Ram(u64);

impl Machine for Ram {
    fn page_shift(&self) -> u8 {
        12
    }

    fn is_ram(&mut self, pfn: u64, pages: u64) -> bool {
        pfn.checked_add(pages).is_some_and(|end| end <= self.0)
    }
}

#[test]
fn a_run_outside_ram_is_corrupt_and_claims_no_span() {
    // "far" also overlaps "clean" by page frame: as its spans were dropped,
    // "clean" stays clean.
    let blob = manifest(vec![vec![
        memfd("far", 0x100, 0x10_0000, 12),
        memfd("clean", 0x200, 1, 12),
    ]]);
    let v = decode(&blob).unwrap();
    let mut spans = vec![Span::default(); span_count(&v)];
    let mut verdicts = vec![None; 2];
    check_entries(&v, &mut Ram(0x1000), &mut spans, &mut verdicts).unwrap();
    assert!(
        matches!(
            verdicts[..],
            [Some(Error::ForeignMemory { pfn: 0x100, .. }), None]
        ),
        "{verdicts:?}"
    );
}

#[test]
fn too_few_verdicts_is_refused() {
    let blob = manifest(vec![vec![memfd("a", 0x100, 1, 12)]]);
    let v = decode(&blob).unwrap();
    let mut spans = vec![Span::default(); span_count(&v)];
    assert_eq!(
        check_entries(&v, &mut Ram(1 << 20), &mut spans, &mut []).unwrap_err(),
        Error::ScratchTooSmall { needed: 1 }
    );
}

#[test]
fn a_mapping_past_its_memfd_is_corrupt() {
    // The sample's memfd is 1 MiB, mapped in two halves.
    let mut m = common::sample();
    assert_eq!(corrupt(&m.encode().unwrap()), [false, false, false]);
    let mut iommufd = common::sample_iommufd();
    iommufd.maps[1].start = 1 << 20;
    m.boxes[0].entries[1].payload = Payload::Inline(iommufd.encode().unwrap());
    assert_eq!(corrupt(&m.encode().unwrap()), [false, true, false]);
}

/// An entry whose payload is out of line, in one chunk.
fn chunked(name: &str, len: usize) -> Entry {
    Entry {
        name: name.into(),
        handler: "memfd".into(),
        payload_version: 1,
        flags: 0,
        deps: vec![],
        payload: Payload::Chunked {
            len: len as u64,
            crc32c: 0,
            chunk_len: 4096,
            chunks: vec![0x1000],
        },
    }
}

/// The payload bytes of a memfd entry.
fn inline_bytes(e: &Entry) -> Vec<u8> {
    match &e.payload {
        Payload::Inline(b) => b.clone(),
        _ => unreachable!(),
    }
}

#[test]
fn a_resolved_payload_is_checked_as_if_inline() {
    // Entry 1's payload, out of line, names the pages entry 0 names; entry 2's
    // names pages past RAM. Unresolved, neither can be checked.
    let shared = inline_bytes(&memfd("x", 0x100, 2, 12));
    let far = inline_bytes(&memfd("y", 0x10_0000, 1, 12));
    let blob = manifest(vec![vec![
        memfd("a", 0x101, 1, 12),
        chunked("b", shared.len()),
        chunked("c", far.len()),
    ]]);
    let v = decode(&blob).unwrap();
    let none = |_: u32| -> Option<&[u8]> { None };
    assert_eq!(span_count_with(&v, &none), 1);
    let mut spans = vec![Span::default(); 1];
    let mut verdicts = vec![None; 3];
    let used = check_entries_with(&v, &none, &mut Ram(0x1000), &mut spans, &mut verdicts).unwrap();
    assert_eq!((used, &verdicts[..]), (1, &[None, None, None][..]));

    let resolve = |i: u32| -> Option<&[u8]> {
        match i {
            1 => Some(&shared),
            2 => Some(&far),
            _ => None,
        }
    };
    assert_eq!(span_count_with(&v, &resolve), 3);
    let mut spans = vec![Span::default(); 3];
    let mut verdicts = vec![None; 3];
    let used =
        check_entries_with(&v, &resolve, &mut Ram(0x1000), &mut spans, &mut verdicts).unwrap();
    // Entry 2's run outside RAM claims no span.
    assert_eq!(used, 2);
    assert!(
        matches!(
            verdicts[..],
            [
                Some(Error::ForeignMemory { pfn: 0x101, .. }),
                Some(Error::ForeignMemory { pfn: 0x101, .. }),
                Some(Error::ForeignMemory { pfn: 0x10_0000, .. })
            ]
        ),
        "{verdicts:?}"
    );
}
