// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The postcard wire format's primitives: a bounds-checked reader and writer.
//!
//! Postcard encodes `u8` as one byte, `bool` as `0`/`1`, `u16`/`u32`/`u64` and
//! lengths as LEB128 varints (at most 3, 5 and 10 bytes), `i64` as a zigzag
//! varint, strings and byte strings as a varint length then the bytes,
//! sequences as a varint count then the elements, and enums as a varint
//! discriminant then the variant's fields. The reader here also insists on the
//! canonical (shortest) varint, which postcard always writes, so that decoding
//! then encoding gives back the same bytes.

use super::error::{
    Error,
    Result, //
};
use super::limits::Limit;

/// A cursor over part of a blob that never reads out of bounds.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    /// The bytes being read.
    buf: &'a [u8],
    /// The next byte to read, as an index into `buf`.
    pos: usize,
    /// The blob offset of `buf[0]`, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, whose first byte is at blob offset `base`.
    #[inline]
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    /// The blob offset of the next byte.
    #[inline]
    pub fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    /// The bytes left.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The bytes not read yet.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Reads `n` bytes.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let err = Error::Truncated {
            offset: self.offset(),
        };
        let end = self.pos.checked_add(n).ok_or(err)?;
        let s = self.buf.get(self.pos..end).ok_or(err)?;
        self.pos = end;
        Ok(s)
    }

    /// Reads a `u8`.
    #[inline]
    pub fn u8(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(Error::Truncated {
            offset: self.offset(),
        })?;
        self.pos = self.pos.saturating_add(1);
        Ok(b)
    }

    /// Reads a `bool`.
    #[inline]
    pub fn bool(&mut self) -> Result<bool> {
        let offset = self.offset();
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::BadField {
                offset,
                what: "bool",
            }),
        }
    }

    /// Reads a canonical LEB128 varint of at most `max_bytes` bytes whose value
    /// is at most `max` (at least 127 for every caller).
    #[inline(always)]
    fn varint(&mut self, max_bytes: usize, max: u64) -> Result<u64> {
        let offset = self.offset();
        let rest = self.rest();
        if let Some(&b) = rest.first() {
            if b < 0x80 {
                self.pos = self.pos.saturating_add(1);
                return Ok(u64::from(b));
            }
        }
        // Fast path: the varint ends within the next eight bytes. Find its
        // last byte from the clear continuation bits and gather the 7-bit
        // groups with three mask-and-shift steps.
        if let Some(word) = rest.get(..8).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
            let word = u64::from_le_bytes(word);
            let stops = !word & 0x8080_8080_8080_8080;
            if stops != 0 {
                // The first clear continuation bit is bit 8 * len − 1.
                let bits = stops.trailing_zeros().saturating_add(1);
                let len = usize::try_from(bits / 8).unwrap_or(usize::MAX);
                let mask = 1u64
                    .checked_shl(bits)
                    .map_or(u64::MAX, |m| m.wrapping_sub(1));
                let last = word.checked_shr(bits.saturating_sub(8)).unwrap_or(0) & 0xff;
                let mut x = word & mask & 0x7f7f_7f7f_7f7f_7f7f;
                x = (x & 0x007f_007f_007f_007f) | (x & 0x7f00_7f00_7f00_7f00).wrapping_shr(1);
                x = (x & 0x0000_3fff_0000_3fff) | (x & 0x3fff_0000_3fff_0000).wrapping_shr(2);
                x = (x & 0x0000_0000_0fff_ffff) | (x & 0x0fff_ffff_0000_0000).wrapping_shr(4);
                if len > max_bytes || last == 0 || x > max {
                    return Err(Error::BadVarint { offset });
                }
                self.pos = self.pos.saturating_add(len);
                return Ok(x);
            }
        }
        let mut value: u64 = 0;
        let mut shift: u32 = 0;
        for (i, &b) in rest.iter().take(max_bytes).enumerate() {
            let low = u64::from(b & 0x7f);
            // Bits that would fall off the top make the varint too large.
            let part = low.checked_shl(shift).unwrap_or(0);
            if part.checked_shr(shift).unwrap_or(0) != low {
                return Err(Error::BadVarint { offset });
            }
            value |= part;
            if b & 0x80 == 0 {
                // A final zero byte after others (the first byte had the
                // continuation bit) is an overlong encoding.
                if b == 0 || value > max {
                    return Err(Error::BadVarint { offset });
                }
                self.pos = self.pos.saturating_add(i).saturating_add(1);
                return Ok(value);
            }
            shift = shift.saturating_add(7);
        }
        if rest.len() < max_bytes {
            Err(Error::Truncated {
                offset: offset.saturating_add(rest.len()),
            })
        } else {
            Err(Error::BadVarint { offset })
        }
    }

    /// Skips a byte string whose bounds were checked before.
    #[inline]
    pub fn skip_bytes(&mut self) -> Result<()> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| Error::Truncated {
            offset: self.offset(),
        })?;
        self.take(n).map(|_| ())
    }

    /// Reads a varint `u16`.
    #[inline]
    pub fn u16(&mut self) -> Result<u16> {
        let v = self.varint(3, u64::from(u16::MAX))?;
        Ok(u16::try_from(v).unwrap_or(u16::MAX))
    }

    /// Reads a varint `u32`.
    #[inline]
    pub fn u32(&mut self) -> Result<u32> {
        let v = self.varint(5, u64::from(u32::MAX))?;
        Ok(u32::try_from(v).unwrap_or(u32::MAX))
    }

    /// Reads a varint `u64`.
    #[inline]
    pub fn u64(&mut self) -> Result<u64> {
        self.varint(10, u64::MAX)
    }

    /// Reads a zigzag varint `i64`.
    #[inline]
    pub fn i64(&mut self) -> Result<i64> {
        Ok(unzigzag(self.u64()?))
    }

    /// Reads a length or count (postcard `usize`) and checks it against
    /// `limit`/`max` and against the input left, assuming each element takes
    /// at least `min_size` bytes.
    #[inline]
    pub fn len(&mut self, limit: Limit, max: u32, min_size: usize) -> Result<u32> {
        let offset = self.offset();
        let v = self.u64()?;
        let n = match u32::try_from(v) {
            Ok(n) if n <= max => n,
            _ => {
                return Err(Error::Limit {
                    offset,
                    limit,
                    value: v,
                })
            }
        };
        let need = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(min_size));
        match need {
            Some(need) if need <= self.remaining() => Ok(n),
            _ => Err(Error::Overrun {
                offset,
                count: v,
                remaining: self.remaining(),
            }),
        }
    }

    /// Reads a byte string of at most `max` bytes.
    #[inline]
    pub fn bytes(&mut self, limit: Limit, max: u32) -> Result<&'a [u8]> {
        let n = self.len(limit, max, 1)?;
        self.take(usize::try_from(n).map_err(|_| Error::Truncated {
            offset: self.offset(),
        })?)
    }

    /// Reads a UTF-8 string of at most `max` bytes.
    #[inline]
    pub fn str(&mut self, limit: Limit, max: u32) -> Result<&'a str> {
        let b = self.bytes(limit, max)?;
        let offset = self.offset().saturating_sub(b.len());
        core::str::from_utf8(b).map_err(|_| Error::BadUtf8 { offset })
    }

    /// Fails unless every byte has been read.
    #[inline]
    pub fn end(&self) -> Result<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(Error::TrailingBytes {
                offset: self.offset(),
            })
        }
    }
}

/// Zigzag-encodes an `i64` as postcard does.
#[inline]
pub fn zigzag(v: i64) -> u64 {
    // CAST: a bit-for-bit reinterpretation (`cast_unsigned` needs Rust 1.87).
    u64::from_ne_bytes((v.wrapping_shl(1) ^ v.wrapping_shr(63)).to_ne_bytes())
}

/// Decodes a zigzag `u64`.
#[inline]
pub fn unzigzag(v: u64) -> i64 {
    let x = v.wrapping_shr(1) ^ (v & 1).wrapping_neg();
    // CAST: a bit-for-bit reinterpretation.
    i64::from_ne_bytes(x.to_ne_bytes())
}

/// Bytes in the varint encoding of `v`.
#[inline]
pub fn varint_len(v: u64) -> usize {
    let bits = 64u32.saturating_sub(v.leading_zeros()).max(1);
    // ceil(bits / 7) for 1 ≤ bits ≤ 64, without a division.
    usize::try_from(bits.wrapping_add(6).wrapping_mul(37).wrapping_shr(8)).unwrap_or(10)
}

/// A writer into a caller-provided buffer, or a counter of the bytes an
/// encoding needs (see [`Writer::counting`]). It never allocates.
#[derive(Debug)]
pub struct Writer<'a> {
    /// The output; empty when counting.
    buf: &'a mut [u8],
    /// Bytes written or counted so far.
    pos: usize,
    /// Only count, don't write.
    counting: bool,
}

impl<'a> Writer<'a> {
    /// A writer into `buf`. Bytes of `buf` past the final
    /// [`Writer::position`] may be overwritten.
    #[inline]
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer {
            buf,
            pos: 0,
            counting: false,
        }
    }

    /// A writer that only counts: run an encoding through it first to learn
    /// the exact size to allocate.
    pub fn counting() -> Writer<'static> {
        Writer {
            buf: &mut [],
            pos: 0,
            counting: true,
        }
    }

    /// Runs `f` on a writer that continues this one, then moves this one
    /// past what `f` wrote (also when `f` fails). The local writer's fields
    /// stay in registers in hot loops, where stores through the buffer would
    /// otherwise make the compiler reload them.
    #[inline(always)]
    pub fn local<R>(&mut self, f: impl FnOnce(&mut Writer<'_>) -> R) -> R {
        let mut w = Writer {
            buf: &mut *self.buf,
            pos: self.pos,
            counting: self.counting,
        };
        let r = f(&mut w);
        self.pos = w.pos;
        r
    }

    /// Bytes written or counted so far.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether this writer only counts.
    #[inline]
    pub fn is_counting(&self) -> bool {
        self.counting
    }

    /// Writes raw bytes.
    #[inline]
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let end = self
            .pos
            .checked_add(bytes.len())
            .ok_or(Error::BufferTooSmall { needed: usize::MAX })?;
        if !self.counting {
            let dst = self
                .buf
                .get_mut(self.pos..end)
                .ok_or(Error::BufferTooSmall { needed: end })?;
            dst.copy_from_slice(bytes);
        }
        self.pos = end;
        Ok(())
    }

    /// Overwrites bytes already written at `at`.
    pub fn patch(&mut self, at: usize, bytes: &[u8]) -> Result<()> {
        if self.counting {
            return Ok(());
        }
        let end = at
            .checked_add(bytes.len())
            .filter(|&end| end <= self.pos)
            .ok_or(Error::BadInput {
                what: "patch beyond written bytes",
            })?;
        let dst = self
            .buf
            .get_mut(at..end)
            .ok_or(Error::BufferTooSmall { needed: end })?;
        dst.copy_from_slice(bytes);
        Ok(())
    }

    /// The bytes written in `from..` (empty when counting).
    pub fn written(&self, from: usize) -> &[u8] {
        self.buf.get(from..self.pos).unwrap_or(&[])
    }

    /// Writes a `u8`.
    #[inline]
    pub fn u8(&mut self, v: u8) -> Result<()> {
        self.write(&[v])
    }

    /// Writes a `bool`.
    #[inline]
    pub fn bool(&mut self, v: bool) -> Result<()> {
        self.u8(u8::from(v))
    }

    /// Writes a varint.
    #[inline(always)]
    pub fn varint(&mut self, mut v: u64) -> Result<()> {
        let n = varint_len(v);
        let end = self
            .pos
            .checked_add(n)
            .ok_or(Error::BufferTooSmall { needed: usize::MAX })?;
        if self.counting {
            self.pos = end;
            return Ok(());
        }
        // Fast path: up to eight bytes, with a whole word of room: spread the
        // 7-bit groups into bytes with three mask-and-shift steps, set the
        // continuation bits and store the word. The bytes past `end` are
        // overwritten by later writes or lie past the encoding.
        if n <= 8 {
            let word_end = self.pos.saturating_add(8);
            if let Some(dst) = self.buf.get_mut(self.pos..word_end) {
                let mut x = v;
                x = (x & 0x0fff_ffff) | (x & 0x00ff_ffff_f000_0000).wrapping_shl(4);
                x = (x & 0x0000_3fff_0000_3fff) | (x & 0x0fff_c000_0fff_c000).wrapping_shl(2);
                x = (x & 0x007f_007f_007f_007f) | (x & 0x3f80_3f80_3f80_3f80).wrapping_shl(1);
                let bits = u32::try_from(n.saturating_sub(1))
                    .unwrap_or(0)
                    .saturating_mul(8);
                let cont = 0x8080_8080_8080_8080 & 1u64.wrapping_shl(bits).wrapping_sub(1);
                dst.copy_from_slice(&(x | cont).to_le_bytes());
                self.pos = end;
                return Ok(());
            }
        }
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(Error::BufferTooSmall { needed: end })?;
        for slot in dst.iter_mut() {
            let [low, ..] = v.to_le_bytes();
            v = v.wrapping_shr(7);
            *slot = if v == 0 { low & 0x7f } else { low | 0x80 };
        }
        self.pos = end;
        Ok(())
    }

    /// Writes a varint `u16`.
    #[inline]
    pub fn u16(&mut self, v: u16) -> Result<()> {
        self.varint(u64::from(v))
    }

    /// Writes a varint `u32`.
    #[inline]
    pub fn u32(&mut self, v: u32) -> Result<()> {
        self.varint(u64::from(v))
    }

    /// Writes a varint `u64`.
    #[inline]
    pub fn u64(&mut self, v: u64) -> Result<()> {
        self.varint(v)
    }

    /// Writes a zigzag varint `i64`.
    #[inline]
    pub fn i64(&mut self, v: i64) -> Result<()> {
        self.varint(zigzag(v))
    }

    /// Writes a length or count after checking it against `limit`/`max`.
    #[inline]
    pub fn len(&mut self, n: usize, limit: Limit, max: u32) -> Result<()> {
        match u32::try_from(n) {
            Ok(v) if v <= max => self.u32(v),
            _ => Err(Error::Limit {
                offset: self.pos,
                limit,
                value: u64::try_from(n).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Writes a byte string of at most `max` bytes.
    #[inline]
    pub fn bytes(&mut self, b: &[u8], limit: Limit, max: u32) -> Result<()> {
        self.len(b.len(), limit, max)?;
        self.write(b)
    }

    /// Writes a string of at most `max` bytes.
    #[inline]
    pub fn str(&mut self, s: &str, limit: Limit, max: u32) -> Result<()> {
        self.bytes(s.as_bytes(), limit, max)
    }
}
