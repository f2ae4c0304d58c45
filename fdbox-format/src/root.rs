// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The root of a major-2 hand-over: a table of the sealed boxes' blobs.
//!
//! A kernel registers one root with KHO, once, and gives each sealed box a
//! slot: `SEAL` writes the address and length of the box's blob into a free
//! slot, `CANCEL` zeroes it, and nothing else changes, so that sealing a box
//! costs the same however many are sealed. Each box's blob is a complete blob
//! ([`crate::decode`]) in a KHO block of its own; the next kernel checks each
//! slot's block against what KHO preserved before it reads a byte of it.
//!
//! All integers are little-endian:
//!
//! | offset | size | field | meaning |
//! |---|---|---|---|
//! | 0 | 8 | `magic` | [`ROOT_MAGIC`], `"FDBOX\0RT"` |
//! | 8 | 2 | `major` | format major version, 2 |
//! | 10 | 2 | `minor` | format minor version |
//! | 12 | 4 | `flags` | must-understand flags; none defined, all zero |
//! | 16 | 4 | `slot_count` | slots that follow, ≤ [`MAX_SLOTS`] |
//! | 20 | 8 | reserved | zero |
//! | 28 | 4 | `header_crc` | CRC32C of bytes 0..28 |
//! | 32 + 16 i | 16 | slot `i` | `phys` (8), `len` (4), `crc` (4): CRC32C of the slot's first 12 bytes |
//!
//! An empty slot is 16 zero bytes. A slot whose `crc` doesn't match is
//! corrupt, and only its box is lost.
//!
//! A reader takes each box on its own: a slot whose block KHO didn't preserve
//! at exactly the blob's size, or whose blob doesn't decode and validate,
//! costs that box; a chunk that fails its checks costs its entry. Memory that
//! two records name (two slots, a slot and a chunk, a chunk and a memfd's
//! folio, in any boxes) is trusted to neither: their boxes are lost, or their
//! entries corrupt, and the reader frees none of it.

use super::crc32c::crc32c;
use super::error::{
    Error,
    Result, //
};
use super::header::{
    FORMAT_MAJOR,
    FORMAT_MINOR, //
};

/// The first eight bytes of a root.
pub const ROOT_MAGIC: [u8; 8] = *b"FDBOX\0RT";

/// Bytes before the first slot.
pub const ROOT_HEADER_LEN: usize = 32;

/// Bytes per slot.
pub const SLOT_LEN: usize = 16;

/// Most slots in a root.
pub const MAX_SLOTS: u32 = 65_536;

/// The length of a root of `slots` slots.
pub fn root_len(slots: u32) -> usize {
    let slots = usize::try_from(slots).unwrap_or(usize::MAX);
    ROOT_HEADER_LEN.saturating_add(slots.saturating_mul(SLOT_LEN))
}

/// Whether `buf` starts like a root (rather than like a major-1 blob).
pub fn is_root(buf: &[u8]) -> bool {
    buf.get(..ROOT_MAGIC.len()) == Some(&ROOT_MAGIC[..])
}

/// Writes an empty root of `slots` slots over all of `buf`, which must be
/// [`root_len`]`(slots)` bytes long.
pub fn init_root(buf: &mut [u8], slots: u32) -> Result<()> {
    if slots > MAX_SLOTS || buf.len() != root_len(slots) {
        return Err(Error::BadInput {
            what: "root buffer not the length of its slots",
        });
    }
    buf.fill(0);
    let fields: [(usize, &[u8]); 4] = [
        (0, &ROOT_MAGIC),
        (8, &FORMAT_MAJOR.to_le_bytes()),
        (10, &FORMAT_MINOR.to_le_bytes()),
        (16, &slots.to_le_bytes()),
    ];
    for (at, bytes) in fields {
        if let Some(dst) = buf.get_mut(at..at.saturating_add(bytes.len())) {
            dst.copy_from_slice(bytes);
        }
    }
    let crc = crc32c(buf.get(..28).unwrap_or(&[]));
    if let Some(dst) = buf.get_mut(28..32) {
        dst.copy_from_slice(&crc.to_le_bytes());
    }
    Ok(())
}

/// The 16 bytes of a slot naming a blob of `len` bytes at `phys`.
fn slot_bytes(phys: u64, len: u32) -> [u8; SLOT_LEN] {
    let mut s = [0u8; SLOT_LEN];
    let (head, crc) = s.split_at_mut(12);
    let (p, l) = head.split_at_mut(8);
    p.copy_from_slice(&phys.to_le_bytes());
    l.copy_from_slice(&len.to_le_bytes());
    crc.copy_from_slice(&crc32c(head).to_le_bytes());
    s
}

/// Reads a `u16` at `at` of `b`.
fn le16(b: &[u8], at: usize) -> u16 {
    let mut v = [0u8; 2];
    if let Some(s) = b.get(at..at.saturating_add(2)) {
        v.copy_from_slice(s);
    }
    u16::from_le_bytes(v)
}

/// Reads a `u64` at `at` of `b`.
fn le64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(at..at.saturating_add(8)) {
        v.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

/// Fills slot `i` of the root in `buf` with a blob of `len` bytes at `phys`,
/// or empties it (`None`). A blob is never at address 0 nor empty.
pub fn write_slot(buf: &mut [u8], i: u32, blob: Option<(u64, u32)>) -> Result<()> {
    let bytes = match blob {
        Some((phys, len)) if phys != 0 && len != 0 => slot_bytes(phys, len),
        Some(_) => {
            return Err(Error::BadInput {
                what: "a slot's blob at address 0 or empty",
            })
        }
        None => [0u8; SLOT_LEN],
    };
    let at = usize::try_from(i)
        .ok()
        .and_then(|i| i.checked_mul(SLOT_LEN))
        .and_then(|o| o.checked_add(ROOT_HEADER_LEN))
        .ok_or(Error::BadInput { what: "slot index" })?;
    buf.get_mut(at..at.saturating_add(SLOT_LEN))
        .ok_or(Error::BadInput { what: "slot index" })?
        .copy_from_slice(&bytes);
    Ok(())
}

/// A slot of a root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// No box.
    Empty,
    /// A box's blob: `len` bytes at physical address `phys`.
    Blob {
        /// Physical address.
        phys: u64,
        /// Length in bytes.
        len: u32,
    },
    /// The slot's checksum doesn't match; `offset` is the slot's offset in
    /// the root.
    Corrupt {
        /// The slot's offset.
        offset: usize,
    },
}

/// A checked root.
#[derive(Clone, Copy, Debug)]
pub struct RootView<'a> {
    /// Format major version.
    pub major: u16,
    /// Format minor version.
    pub minor: u16,
    /// The slots' bytes.
    slots: &'a [u8],
}

/// Reads a `u32` at `at` of `b`.
fn le32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    if let Some(s) = b.get(at..at.saturating_add(4)) {
        v.copy_from_slice(s);
    }
    u32::from_le_bytes(v)
}

/// Checks the header of the root in `buf`: magic, version, flags, checksum,
/// and that its slots fit.
pub fn parse_root(buf: &[u8]) -> Result<RootView<'_>> {
    if !is_root(buf) {
        return Err(Error::BadMagic);
    }
    let h = buf
        .get(..ROOT_HEADER_LEN)
        .ok_or(Error::Truncated { offset: buf.len() })?;
    let stored = le32(h, 28);
    let computed = crc32c(h.get(..28).unwrap_or(&[]));
    if stored != computed {
        return Err(Error::HeaderChecksum { stored, computed });
    }
    let major = le16(h, 8);
    let minor = le16(h, 10);
    if major != FORMAT_MAJOR {
        return Err(Error::UnsupportedVersion { major, minor });
    }
    let flags = le32(h, 12);
    if flags != 0 {
        return Err(Error::UnknownFlags { flags });
    }
    if le64(h, 20) != 0 {
        return Err(Error::BadField {
            offset: 20,
            what: "root reserved bytes",
        });
    }
    let count = le32(h, 16);
    if count > MAX_SLOTS {
        return Err(Error::BadField {
            offset: 16,
            what: "root slot count",
        });
    }
    let slots = buf
        .get(ROOT_HEADER_LEN..root_len(count))
        .ok_or(Error::Truncated { offset: buf.len() })?;
    Ok(RootView {
        major,
        minor,
        slots,
    })
}

impl RootView<'_> {
    /// The number of slots.
    pub fn slot_count(&self) -> u32 {
        u32::try_from(self.slots.len() / SLOT_LEN).unwrap_or(u32::MAX)
    }

    /// Every slot, in order, with its index.
    pub fn slots(&self) -> impl Iterator<Item = (u32, Slot)> + '_ {
        self.slots.chunks_exact(SLOT_LEN).enumerate().map(|(i, s)| {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            if s.iter().all(|&b| b == 0) {
                return (index, Slot::Empty);
            }
            let (phys, len) = (le64(s, 0), le32(s, 8));
            if slot_bytes(phys, len) != *s || phys == 0 || len == 0 {
                let offset = ROOT_HEADER_LEN.saturating_add(i.saturating_mul(SLOT_LEN));
                return (index, Slot::Corrupt { offset });
            }
            (index, Slot::Blob { phys, len })
        })
    }
}
