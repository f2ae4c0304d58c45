// SPDX-License-Identifier: GPL-2.0 OR MIT

//! CRC32C (Castagnoli), table-driven with slicing-by-8, in `core` only.
//!
//! Same parameters as the kernel's `crc32c()`: reflected polynomial
//! `0x82f63b78`, initial value and final XOR `0xffffffff`. The check value of
//! `b"123456789"` is `0xe3069283`.

/// The reflected CRC32C polynomial.
const POLY: u32 = 0x82f6_3b78;

/// Eight 256-entry tables for slicing-by-8, built at compile time.
static TABLES: [[u32; 256]; 8] = tables();

// PANIC: evaluated at compile time only; every index is below 256 or 8 by the
// loop bounds, and an out-of-range index would fail the build, not run.
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions
)]
const fn tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

/// Looks up table `s` at the low byte of `x`.
#[inline(always)]
fn look(s: usize, x: u32) -> u32 {
    let [b, ..] = x.to_le_bytes();
    // The indices are in range (`s < 8`, `b < 256`); `get` keeps it panic-free.
    TABLES
        .get(s)
        .and_then(|t| t.get(usize::from(b)))
        .copied()
        .unwrap_or(0)
}

/// Continues a CRC32C over `data`. Start with `0` for a fresh checksum.
pub fn crc32c_update(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let lo = u32::from_le_bytes([w[0], w[1], w[2], w[3]]) ^ c;
        let hi = u32::from_le_bytes([w[4], w[5], w[6], w[7]]);
        c = look(7, lo)
            ^ look(6, lo >> 8)
            ^ look(5, lo >> 16)
            ^ look(4, lo >> 24)
            ^ look(3, hi)
            ^ look(2, hi >> 8)
            ^ look(1, hi >> 16)
            ^ look(0, hi >> 24);
    }
    for &b in chunks.remainder() {
        c = look(0, c ^ u32::from(b)) ^ (c >> 8);
    }
    !c
}

/// The CRC32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_update(0, data)
}
