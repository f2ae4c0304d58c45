// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The iommufd handler's payload, version 1: IOAS objects and their mappings.
//!
//! This is a hand-over contract between the kernel that preserves an iommufd
//! context and the kernel that restores it: any change to the layout or to
//! the meaning of a field bumps [`PAYLOAD_VERSION`]. Postcard layout:
//!
//! ```text
//! IommufdPayload {
//!     ioas: seq<u32>,   // IOAS object ids: nonzero, strictly ascending
//!     maps: seq<Map>,   // ascending by (ioas_id, iova); disjoint within an IOAS
//! }
//!
//! Map {
//!     ioas_id: u32,     // the IOAS the mapping is in: one of `ioas`
//!     iova: u64,        // the first I/O virtual address
//!     length: u64,      // bytes; nonzero, and iova + length − 1 ≤ 2^64 − 1
//!     dep: u32,         // the backing memfd: an index into the entry's
//!                       // restore dependencies (not an entry index)
//!     start: u64,       // byte offset into that memfd;
//!                       // start + length − 1 ≤ 2^64 − 1
//!     prot: u8,         // PROT_READ | PROT_WRITE: nonzero, no other bits
//! }
//! ```
//!
//! Every mapping is backed by a memfd that is another entry of the same box,
//! restored first; the payload names it by its position in the entry's
//! dependency list, so [`IommufdView::max_dep`] must be below the entry's
//! dependency count ([`IommufdView::check_deps`]). Whether that dependency
//! really is a memfd, and whether `start + length` lies inside it, only the
//! restorer can tell.

use super::error::{
    Error,
    Result, //
};
use super::limits::{
    Limit,
    MAX_IOAS,
    MAX_IOAS_MAPPINGS, //
};
use super::wire::{
    Reader,
    Writer, //
};

/// The iommufd handler's compatible string.
pub const HANDLER: &str = "iommufd";

/// The payload version this crate writes and reads (and `PAYLOAD_VERSION − 1`
/// when there is one).
pub const PAYLOAD_VERSION: u32 = 1;

/// A mapping's `prot` bit: the device may read (`IOMMU_IOAS_MAP_READABLE`).
pub const PROT_READ: u8 = 1;

/// A mapping's `prot` bit: the device may write (`IOMMU_IOAS_MAP_WRITEABLE`).
pub const PROT_WRITE: u8 = 2;

/// Every `prot` bit of version 1; the others must be zero.
const PROT_KNOWN: u8 = PROT_READ | PROT_WRITE;

/// The fewest bytes a mapping takes: five one-byte varints and `prot`.
const MIN_MAP_LEN: usize = 6;

/// The error of [`IommufdView::check_deps`].
const DEP_BEYOND: &str = "dependency index beyond the entry's dependencies";

/// One IOAS mapping: `length` bytes of a memfd from `start`, at `iova`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoasMapping {
    /// The IOAS object id the mapping is in.
    pub ioas_id: u32,
    /// The first I/O virtual address.
    pub iova: u64,
    /// The length in bytes, at least 1.
    pub length: u64,
    /// The backing memfd: an index into the entry's restore dependencies.
    pub dep: u32,
    /// The byte offset of the mapping in the memfd.
    pub start: u64,
    /// [`PROT_READ`] and/or [`PROT_WRITE`].
    pub prot: u8,
}

impl IoasMapping {
    /// The last I/O virtual address, if the mapping is nonempty and doesn't
    /// wrap around.
    #[inline]
    pub fn last_iova(&self) -> Option<u64> {
        self.iova.checked_add(self.length.checked_sub(1)?)
    }
}

/// A mapping's field, to point an error at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    /// `ioas_id`.
    IoasId,
    /// `iova`.
    Iova,
    /// `length`.
    Length,
    /// `start`.
    Start,
    /// `prot`.
    Prot,
}

/// The blob offsets of a decoded mapping's fields.
#[derive(Clone, Copy, Debug)]
struct MapAt {
    /// `ioas_id`.
    ioas_id: usize,
    /// `iova`.
    iova: usize,
    /// `length`.
    length: usize,
    /// `dep`.
    dep: usize,
    /// `start`.
    start: usize,
    /// `prot`.
    prot: usize,
}

impl MapAt {
    /// The offset of `field`.
    #[inline]
    fn of(&self, field: Field) -> usize {
        match field {
            Field::IoasId => self.ioas_id,
            Field::Iova => self.iova,
            Field::Length => self.length,
            Field::Start => self.start,
            Field::Prot => self.prot,
        }
    }
}

/// Checks the IOAS id that follows `prev` (0 before the first).
#[inline]
fn check_ioas(prev: u32, id: u32) -> core::result::Result<(), &'static str> {
    if id == 0 {
        Err("IOAS id 0")
    } else if id <= prev {
        Err("IOAS ids not strictly ascending")
    } else {
        Ok(())
    }
}

/// Checks mappings in order: each on its own, then against the previous one
/// and against the IOAS list, which it walks alongside (both ascend).
#[derive(Clone, Debug)]
struct Checker<I> {
    /// The IOAS ids after `at`, ascending.
    ids: I,
    /// The first IOAS id not below the previous mapping's.
    at: Option<u32>,
    /// The previous mapping's IOAS id, first IOVA and last IOVA.
    prev: Option<(u32, u64, u64)>,
}

impl<I: Iterator<Item = u32>> Checker<I> {
    /// A checker against the IOAS list `ids`, checked already.
    #[inline]
    fn new(mut ids: I) -> Self {
        let at = ids.next();
        Checker {
            ids,
            at,
            prev: None,
        }
    }

    /// Checks the next mapping.
    #[inline]
    fn check(&mut self, m: &IoasMapping) -> core::result::Result<(), (Field, &'static str)> {
        let Some(span) = m.length.checked_sub(1) else {
            return Err((Field::Length, "mapping length 0"));
        };
        let Some(last) = m.iova.checked_add(span) else {
            return Err((Field::Length, "mapping IOVA range beyond 2^64"));
        };
        if m.start.checked_add(span).is_none() {
            return Err((Field::Start, "mapping memfd range beyond 2^64"));
        }
        if m.prot == 0 || m.prot & !PROT_KNOWN != 0 {
            return Err((Field::Prot, "mapping protection"));
        }
        if let Some((ioas_id, iova, prev_last)) = self.prev {
            if m.ioas_id < ioas_id {
                return Err((Field::IoasId, "mappings not in (IOAS, IOVA) order"));
            }
            if m.ioas_id == ioas_id {
                if m.iova <= iova {
                    return Err((Field::Iova, "mappings not in (IOAS, IOVA) order"));
                }
                if m.iova <= prev_last {
                    return Err((Field::Iova, "overlapping mappings"));
                }
            }
        }
        while self.at.is_some_and(|id| id < m.ioas_id) {
            self.at = self.ids.next();
        }
        if self.at != Some(m.ioas_id) {
            return Err((Field::IoasId, "mapping in an IOAS not in the list"));
        }
        self.prev = Some((m.ioas_id, m.iova, last));
        Ok(())
    }
}

/// Reads one mapping and the offsets of its fields.
#[inline]
fn read_map(r: &mut Reader<'_>) -> Result<(IoasMapping, MapAt)> {
    let ioas_id_at = r.offset();
    let ioas_id = r.u32()?;
    let iova_at = r.offset();
    let iova = r.u64()?;
    let length_at = r.offset();
    let length = r.u64()?;
    let dep_at = r.offset();
    let dep = r.u32()?;
    let start_at = r.offset();
    let start = r.u64()?;
    let prot_at = r.offset();
    let prot = r.u8()?;
    let map = IoasMapping {
        ioas_id,
        iova,
        length,
        dep,
        start,
        prot,
    };
    let at = MapAt {
        ioas_id: ioas_id_at,
        iova: iova_at,
        length: length_at,
        dep: dep_at,
        start: start_at,
        prot: prot_at,
    };
    Ok((map, at))
}

/// Writes one mapping.
#[inline]
fn write_map(w: &mut Writer<'_>, m: &IoasMapping) -> Result<()> {
    w.u32(m.ioas_id)?;
    w.u64(m.iova)?;
    w.u64(m.length)?;
    w.u32(m.dep)?;
    w.u64(m.start)?;
    w.u8(m.prot)
}

/// Checks the whole payload and writes it through `w`.
fn write(w: &mut Writer<'_>, ioas: &[u32], maps: &[IoasMapping]) -> Result<()> {
    let fits = |n: usize, max: u32| u32::try_from(n).is_ok_and(|n| n <= max);
    if !fits(ioas.len(), MAX_IOAS) {
        return Err(Error::BadInput {
            what: "too many IOAS objects",
        });
    }
    if !fits(maps.len(), MAX_IOAS_MAPPINGS) {
        return Err(Error::BadInput {
            what: "too many IOAS mappings",
        });
    }
    w.len(ioas.len(), Limit::Ioas, MAX_IOAS)?;
    let mut prev = 0;
    for &id in ioas {
        check_ioas(prev, id).map_err(|what| Error::BadInput { what })?;
        w.u32(id)?;
        prev = id;
    }
    w.len(maps.len(), Limit::IoasMappings, MAX_IOAS_MAPPINGS)?;
    let mut checker = Checker::new(ioas.iter().copied());
    w.local(|w| {
        for m in maps {
            checker
                .check(m)
                .map_err(|(_, what)| Error::BadInput { what })?;
            write_map(w, m)?;
        }
        Ok(())
    })
}

/// Bytes [`encode`] would write; checks everything [`decode`] checks.
pub fn encoded_len(ioas: &[u32], maps: &[IoasMapping]) -> Result<usize> {
    let mut w = Writer::counting();
    write(&mut w, ioas, maps)?;
    Ok(w.position())
}

/// Writes the payload of the IOAS ids `ioas` and the mappings `maps` into
/// `out`, at least [`encoded_len`] bytes long (bytes past the encoding may be
/// overwritten); returns the bytes written.
pub fn encode(ioas: &[u32], maps: &[IoasMapping], out: &mut [u8]) -> Result<usize> {
    let mut w = Writer::new(out);
    write(&mut w, ioas, maps)?;
    Ok(w.position())
}

/// A decoded iommufd payload.
#[derive(Clone, Debug)]
pub struct IommufdView<'a> {
    /// The number of IOAS ids.
    ioas_count: u32,
    /// The number of mappings.
    map_count: u32,
    /// Positioned at the first IOAS id.
    ioas: Reader<'a>,
    /// Positioned at the first mapping.
    maps: Reader<'a>,
    /// The largest `dep` and the blob offset of a mapping's `dep` holding it.
    max_dep: Option<(u32, usize)>,
    /// Bytes mapped over all mappings, saturating.
    mapped: u64,
}

/// Decodes an iommufd payload whose first byte is at blob offset
/// `base_offset`, checking the IOAS list and every mapping: in range, in
/// order, disjoint within its IOAS, in a listed IOAS, and no bytes after the
/// last one.
pub fn decode(bytes: &[u8], base_offset: usize) -> Result<IommufdView<'_>> {
    let mut r = Reader::new(bytes, base_offset);
    let ioas_count = r.len(Limit::Ioas, MAX_IOAS, 1)?;
    let ioas = r.clone();
    let mut prev = 0;
    for _ in 0..ioas_count {
        let offset = r.offset();
        let id = r.u32()?;
        check_ioas(prev, id).map_err(|what| Error::BadField { offset, what })?;
        prev = id;
    }
    let map_count = r.len(Limit::IoasMappings, MAX_IOAS_MAPPINGS, MIN_MAP_LEN)?;
    let maps = r.clone();
    let mut checker = Checker::new(IoasIds {
        r: ioas.clone(),
        left: ioas_count,
    });
    let mut max_dep: Option<(u32, usize)> = None;
    let mut mapped: u64 = 0;
    for _ in 0..map_count {
        let (m, at) = read_map(&mut r)?;
        checker.check(&m).map_err(|(field, what)| Error::BadField {
            offset: at.of(field),
            what,
        })?;
        match max_dep {
            Some((d, _)) if d >= m.dep => {}
            _ => max_dep = Some((m.dep, at.dep)),
        }
        mapped = mapped.saturating_add(m.length);
    }
    r.end()?;
    Ok(IommufdView {
        ioas_count,
        map_count,
        ioas,
        maps,
        max_dep,
        mapped,
    })
}

impl IommufdView<'_> {
    /// The number of IOAS objects.
    #[inline]
    pub fn ioas_count(&self) -> u32 {
        self.ioas_count
    }

    /// The number of mappings, over all IOASes.
    #[inline]
    pub fn map_count(&self) -> u32 {
        self.map_count
    }

    /// The IOAS object ids, ascending.
    pub fn ioas_ids(&self) -> impl Iterator<Item = u32> + '_ {
        IoasIds {
            r: self.ioas.clone(),
            left: self.ioas_count,
        }
    }

    /// The mappings, ascending by (IOAS id, IOVA).
    pub fn maps(&self) -> impl Iterator<Item = IoasMapping> + '_ {
        Maps {
            r: self.maps.clone(),
            left: self.map_count,
        }
    }

    /// The largest dependency index a mapping uses, if there are mappings:
    /// the entry needs more dependencies than that.
    #[inline]
    pub fn max_dep(&self) -> Option<u32> {
        self.max_dep.map(|(d, _)| d)
    }

    /// Bytes mapped over all mappings (saturating at `u64::MAX`).
    #[inline]
    pub fn mapped_bytes(&self) -> u64 {
        self.mapped
    }

    /// Checks that every mapping's `dep` is below `dep_count`, the number of
    /// the entry's dependencies; the error points at the first `dep` holding
    /// the largest index.
    pub fn check_deps(&self, dep_count: u32) -> Result<()> {
        match self.max_dep {
            Some((index, offset)) if index >= dep_count => Err(Error::BadField {
                offset,
                what: DEP_BEYOND,
            }),
            _ => Ok(()),
        }
    }
}

/// The IOAS ids of an [`IommufdView`].
#[derive(Clone, Debug)]
struct IoasIds<'a> {
    /// Positioned at the next id.
    r: Reader<'a>,
    /// Ids left.
    left: u32,
}

impl Iterator for IoasIds<'_> {
    type Item = u32;

    #[inline]
    fn next(&mut self) -> Option<u32> {
        if self.left == 0 {
            return None;
        }
        // `decode` checked every id already; this can't fail.
        let Ok(id) = self.r.u32() else {
            self.left = 0;
            return None;
        };
        self.left = self.left.saturating_sub(1);
        Some(id)
    }
}

/// The mappings of an [`IommufdView`].
#[derive(Clone, Debug)]
struct Maps<'a> {
    /// Positioned at the next mapping.
    r: Reader<'a>,
    /// Mappings left.
    left: u32,
}

impl Iterator for Maps<'_> {
    type Item = IoasMapping;

    #[inline]
    fn next(&mut self) -> Option<IoasMapping> {
        if self.left == 0 {
            return None;
        }
        // `decode` checked every mapping already; this can't fail.
        let Ok((map, _)) = read_map(&mut self.r) else {
            self.left = 0;
            return None;
        };
        self.left = self.left.saturating_sub(1);
        Some(map)
    }
}
