// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The fixed header in front of every blob.
//!
//! All integers are little-endian. Format version 1 has this 32-byte layout:
//!
//! | offset | size | field | meaning |
//! |---|---|---|---|
//! | 0 | 8 | `magic` | [`MAGIC`], `"FDBOX\0KH"` |
//! | 8 | 2 | `major` | format major version ([`FORMAT_MAJOR`]) |
//! | 10 | 2 | `minor` | format minor version ([`FORMAT_MINOR`]) |
//! | 12 | 4 | `flags` | must-understand flags; none defined, all zero |
//! | 16 | 4 | `header_len` | bytes before the body, ≥ 32, ≤ `MAX_HEADER_LEN` |
//! | 20 | 4 | `body_len` | bytes in the body, ≤ `MAX_BODY_LEN` |
//! | 24 | 4 | `body_crc` | CRC32C of the body |
//! | 28 | 4 | `header_crc` | CRC32C of bytes 0..28, then of bytes 32..`header_len` |
//!
//! The magic and the two version fields keep their place in every future
//! version, so any reader can refuse a version it doesn't know. The body
//! follows at `header_len` and the blob ends right after it.

use super::crc32c::{
    crc32c,
    crc32c_update, //
};
use super::error::{
    Error,
    Result, //
};
use super::limits::{
    Limit,
    HEADER_LEN,
    MAX_BODY_LEN,
    MAX_HEADER_LEN, //
};

/// The first eight bytes of every blob.
pub const MAGIC: [u8; 8] = *b"FDBOX\0KH";

/// The format major version this crate writes and reads. A reader of major N
/// decodes N and N−1; version 1 is the first, so major 0 is refused.
///
/// Major 2 adds chunked out-of-line payloads ([`crate::Payload::Chunked`]),
/// which a major-1 reader can't skip, and hands over one blob per box, named
/// from a root table ([`crate::root`]); a major-1 hand-over is one blob.
pub const FORMAT_MAJOR: u16 = 2;

/// The oldest major version this crate reads (`FORMAT_MAJOR − 1`, but never 0).
pub const MIN_FORMAT_MAJOR: u16 = 1;

/// The format minor version this crate writes. Minor versions only add things
/// older readers may ignore: a longer header, or extension bytes after the
/// manifest in the body.
pub const FORMAT_MINOR: u16 = 0;

/// Whether `minor` is newer than this crate's [`FORMAT_MINOR`], so that its
/// additions may be ignored.
pub fn is_newer_minor(minor: u16) -> bool {
    minor > FORMAT_MINOR
}

/// The header flags this crate understands (none yet).
pub const KNOWN_FLAGS: u32 = 0;

/// A parsed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format major version.
    pub major: u16,
    /// Format minor version.
    pub minor: u16,
    /// Header flags (all known to this reader).
    pub flags: u32,
    /// Bytes before the body.
    pub header_len: u32,
    /// Bytes in the body.
    pub body_len: u32,
    /// CRC32C of the body.
    pub body_crc: u32,
}

/// Reads a little-endian `u16` at `at` of the 32-byte header.
fn le16(h: &[u8; HEADER_LEN], at: usize) -> u16 {
    let mut b = [0u8; 2];
    if let Some(s) = h.get(at..at.saturating_add(2)) {
        b.copy_from_slice(s);
    }
    u16::from_le_bytes(b)
}

/// Reads a little-endian `u32` at `at` of the 32-byte header.
fn le32(h: &[u8; HEADER_LEN], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = h.get(at..at.saturating_add(4)) {
        b.copy_from_slice(s);
    }
    u32::from_le_bytes(b)
}

/// Checks the header of `blob` and its checksums. Returns the header and the
/// body, with the body's blob offset.
pub fn parse(blob: &[u8]) -> Result<(Header, &[u8], usize)> {
    let prefix = blob.get(..MAGIC.len()).unwrap_or(blob);
    if MAGIC.get(..prefix.len()) != Some(prefix) {
        return Err(Error::BadMagic);
    }
    let h: &[u8; HEADER_LEN] = blob
        .get(..HEADER_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::Truncated { offset: blob.len() })?;
    let major = le16(h, 8);
    let minor = le16(h, 10);
    if !(MIN_FORMAT_MAJOR..=FORMAT_MAJOR).contains(&major) {
        return Err(Error::UnsupportedVersion { major, minor });
    }
    let header_len = le32(h, 16);
    if header_len > MAX_HEADER_LEN {
        return Err(Error::Limit {
            offset: 16,
            limit: Limit::HeaderLen,
            value: u64::from(header_len),
        });
    }
    let hlen = usize::try_from(header_len).unwrap_or(usize::MAX);
    if hlen < HEADER_LEN {
        return Err(Error::BadField {
            offset: 16,
            what: "header length",
        });
    }
    let ext = blob
        .get(HEADER_LEN..hlen)
        .ok_or(Error::Truncated { offset: blob.len() })?;
    let stored = le32(h, 28);
    let computed = crc32c_update(crc32c(h.get(..28).unwrap_or(&[])), ext);
    if stored != computed {
        return Err(Error::HeaderChecksum { stored, computed });
    }
    let flags = le32(h, 12);
    if flags & !KNOWN_FLAGS != 0 {
        return Err(Error::UnknownFlags {
            flags: flags & !KNOWN_FLAGS,
        });
    }
    let body_len = le32(h, 20);
    if body_len > MAX_BODY_LEN {
        return Err(Error::Limit {
            offset: 20,
            limit: Limit::BodyLen,
            value: u64::from(body_len),
        });
    }
    let end = hlen.saturating_add(usize::try_from(body_len).unwrap_or(usize::MAX));
    let body = blob
        .get(hlen..end)
        .ok_or(Error::Truncated { offset: blob.len() })?;
    if blob.len() > end {
        return Err(Error::TrailingBytes { offset: end });
    }
    let body_crc = le32(h, 24);
    let computed = crc32c(body);
    if body_crc != computed {
        return Err(Error::BodyChecksum {
            stored: body_crc,
            computed,
        });
    }
    let header = Header {
        major,
        minor,
        flags,
        header_len,
        body_len,
        body_crc,
    };
    Ok((header, body, hlen))
}

/// Builds a version-1 header for `body` (format `FORMAT_MAJOR.minor`).
pub fn build(minor: u16, body: &[u8]) -> Result<[u8; HEADER_LEN]> {
    let body_len = u32::try_from(body.len())
        .ok()
        .filter(|&n| n <= MAX_BODY_LEN)
        .ok_or(Error::Limit {
            offset: HEADER_LEN,
            limit: Limit::BodyLen,
            value: u64::try_from(body.len()).unwrap_or(u64::MAX),
        })?;
    let mut h = [0u8; HEADER_LEN];
    let header_len = u32::try_from(HEADER_LEN).unwrap_or(u32::MAX);
    let fields: [(usize, &[u8]); 7] = [
        (0, &MAGIC),
        (8, &FORMAT_MAJOR.to_le_bytes()),
        (10, &minor.to_le_bytes()),
        (12, &0u32.to_le_bytes()),
        (16, &header_len.to_le_bytes()),
        (20, &body_len.to_le_bytes()),
        (24, &crc32c(body).to_le_bytes()),
    ];
    for (at, bytes) in fields {
        if let Some(dst) = h.get_mut(at..at.saturating_add(bytes.len())) {
            dst.copy_from_slice(bytes);
        }
    }
    let crc = crc32c(h.get(..28).unwrap_or(&[]));
    if let Some(dst) = h.get_mut(28..32) {
        dst.copy_from_slice(&crc.to_le_bytes());
    }
    Ok(h)
}
