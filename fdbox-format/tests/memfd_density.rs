// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The memfd payload's size targets: ≤ 4 bytes per scattered 4 KiB folio
//! (physical memory under 64 GiB) and < 0.1 byte per contiguous folio.

use fdbox_format::owned::{
    Memfd,
    Run, //
};

/// 1 GiB of 4 KiB folios.
const FOLIOS: u64 = 262_144;

/// Page frames below 64 GiB.
const PFNS: u64 = 1 << 24;

/// A memfd of single folios at the given pfns, file-contiguous.
fn memfd(pfns: impl Iterator<Item = u64>) -> Memfd {
    Memfd {
        size: FOLIOS * 4096,
        pos: 0,
        seals: 0,
        page_shift: 12,
        huge_shift: 0,
        name: "ram".into(),
        runs: pfns
            .enumerate()
            .map(|(i, pfn)| Run {
                index: i as u64,
                pfn,
                order: 0,
                count: 1,
            })
            .collect(),
    }
}

/// Header bytes before the runs (size, pos, seals, shift, name, counts).
fn fixed_len(m: &Memfd) -> usize {
    Memfd {
        runs: vec![],
        size: m.size,
        ..m.clone()
    }
    .encode()
    .unwrap()
    .len()
        + 6
}

#[test]
fn scattered_folios_take_at_most_4_bytes() {
    // xorshift: random pfns anywhere below 64 GiB.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let m = memfd((0..FOLIOS).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % PFNS
    }));
    let len = m.encode().unwrap().len();
    assert!(len - fixed_len(&m) <= 4 * FOLIOS as usize, "{len} bytes");
}

#[test]
fn adversarial_folios_take_at_most_4_bytes() {
    // Alternating between the ends of the range: the largest deltas.
    let m = memfd((0..FOLIOS).map(|i| if i % 2 == 0 { 0 } else { PFNS - 1 }));
    let len = m.encode().unwrap().len();
    assert!(len - fixed_len(&m) <= 4 * FOLIOS as usize, "{len} bytes");
}

#[test]
fn contiguous_folios_take_under_a_tenth_of_a_byte() {
    let m = memfd((0..FOLIOS).map(|i| 0x10_0000 + i));
    let bytes = m.encode().unwrap();
    assert!(
        (bytes.len() as f64) / (FOLIOS as f64) < 0.1,
        "{} bytes",
        bytes.len()
    );
    assert_eq!(Memfd::decode(&bytes).unwrap().runs.len(), 1);
}
