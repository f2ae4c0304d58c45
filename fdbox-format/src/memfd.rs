// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The memfd handler's payload: file state and folio runs. Version 1
//! describes a shmem memfd; version 2 adds the huge page size of a hugetlb
//! memfd (`MFD_HUGETLB`), and is written only for one, so that a reader of
//! version 1 restores every shmem memfd and refuses only the hugetlb ones.
//!
//! Postcard layout:
//!
//! ```text
//! MemfdPayload {
//!     size: u64,        // i_size in bytes
//!     pos: u64,         // file position of the preserved open file
//!     seals: u32,       // F_SEAL_* bits
//!     page_shift: u8,   // log2 of the base page size (12 for 4 KiB)
//!     [huge_shift: u8,] // version 2: log2 of the huge page size (21 for
//!                       // 2 MiB); every folio is one huge page, and the
//!                       // size is a multiple of it
//!     name: str,        // the memfd name without the "memfd:" prefix
//!     folios: u64,      // number of folios over all runs
//!     runs: seq<Run>,   // in ascending file index
//! }
//! ```
//!
//! A run is `count` folios of order `order` (2^order pages each) that are
//! consecutive both in the file (from page index `index`) and in physical
//! memory (from page frame `pfn`). Runs are delta-encoded against the end of
//! the previous run (index and pfn both start at 0, order at 0):
//!
//! ```text
//! Run {
//!     head: u64,              // zigzag(pfn − prev_end_pfn) << 2 | ext << 1 | multi
//!     [index_delta: u64,      // if ext: index − prev_end_index (a hole)
//!      order: u8]             // if ext: the run's folio order
//!     [count_minus_2: u64]    // if multi: count − 2; else count is 1
//! }
//! ```
//!
//! `ext` is set only when the index jumps or the order changes, and a run that
//! continues the previous one (no `ext`, zero pfn delta) is never written but
//! merged, so the encoding is canonical. A scattered 4 KiB folio costs one
//! `head` varint: 4 bytes while |pfn delta| < 2^24 (physical memory under
//! 64 GiB), one bit more per doubling. A physically contiguous file is one
//! run, a few bytes in all. LUO's `memfd_luo_folio_ser` takes 16 bytes.

use super::error::{
    Error,
    Result, //
};
use super::limits::{
    Limit,
    MAX_FOLIO_ORDER,
    MAX_FOLIO_RUNS,
    MAX_MEMFD_NAME_LEN,
    MAX_PAGE_INDEX,
    MAX_PFN,
    PAGE_SHIFT_RANGE, //
};
use super::wire::{
    unzigzag,
    zigzag,
    Reader,
    Writer, //
};

/// The memfd handler's compatible string.
pub const HANDLER: &str = "memfd";

/// The newest payload version this crate writes and reads. It reads
/// `PAYLOAD_VERSION − 1` too, and writes it for a shmem memfd.
pub const PAYLOAD_VERSION: u32 = 2;

/// The payload version of a shmem memfd, the oldest this crate reads.
pub const SHMEM_VERSION: u32 = 1;

/// The `multi` bit of a run head: a count follows.
const HEAD_MULTI: u64 = 1;

/// The `ext` bit of a run head: an index delta and an order follow.
const HEAD_EXT: u64 = 2;

/// The file-level fields of a memfd payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemfdHead<'a> {
    /// The file size in bytes.
    pub size: u64,
    /// The file position.
    pub pos: u64,
    /// The `F_SEAL_*` seals.
    pub seals: u32,
    /// log2 of the base page size, in `PAGE_SHIFT_RANGE`.
    pub page_shift: u8,
    /// log2 of the huge page size of a hugetlb memfd, above `page_shift` by
    /// at most `MAX_FOLIO_ORDER`; 0 for a shmem memfd.
    pub huge_shift: u8,
    /// The memfd's name, at most `MAX_MEMFD_NAME_LEN` bytes.
    pub name: &'a str,
}

impl MemfdHead<'_> {
    /// The payload version that describes this memfd: the oldest that can.
    #[inline]
    pub fn version(&self) -> u32 {
        if self.huge_shift == 0 {
            SHMEM_VERSION
        } else {
            PAYLOAD_VERSION
        }
    }

    /// The folio order of a hugetlb memfd: its huge pages, in base pages.
    #[inline]
    fn huge_order(&self) -> Option<u8> {
        self.huge_shift
            .checked_sub(self.page_shift)
            .filter(|&o| o > 0 && o <= MAX_FOLIO_ORDER)
    }

    /// Whether a hugetlb memfd's size is a whole number of huge pages.
    #[inline]
    fn huge_aligned(&self) -> bool {
        1u64.checked_shl(u32::from(self.huge_shift))
            .and_then(|huge| self.size.checked_rem(huge))
            .is_some_and(|rest| rest == 0)
    }
}

/// `count` folios, consecutive in the file and in physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FolioRun {
    /// The page index of the first folio in the file; a multiple of 2^order.
    pub index: u64,
    /// The page frame number of the first folio; a multiple of 2^order.
    pub pfn: u64,
    /// The folio order: each folio is 2^order pages.
    pub order: u8,
    /// The number of folios, at least 1.
    pub count: u64,
}

impl FolioRun {
    /// Pages in the run, if that fits in `u64`.
    #[inline]
    pub fn pages(&self) -> Option<u64> {
        self.count
            .checked_mul(1u64.checked_shl(u32::from(self.order))?)
    }

    /// Grows this run by `next` if `next` continues it, in the file and in physical memory,
    /// with folios of the same order; whether it did.
    #[inline]
    pub fn extend(&mut self, next: &FolioRun) -> bool {
        let pages = self.pages();
        let continues = next.order == self.order
            && pages.and_then(|p| self.index.checked_add(p)) == Some(next.index)
            && pages.and_then(|p| self.pfn.checked_add(p)) == Some(next.pfn);
        match self.count.checked_add(next.count) {
            Some(count) if continues => {
                self.count = count;
                true
            }
            _ => false,
        }
    }
}

/// A decoded memfd payload.
#[derive(Clone, Debug)]
pub struct MemfdView<'a> {
    /// The file-level fields.
    pub head: MemfdHead<'a>,
    /// Folios over all runs.
    pub folios: u64,
    /// Pages over all runs.
    pub pages: u64,
    /// The number of runs.
    pub run_count: u32,
    /// The runs.
    runs: Reader<'a>,
}

/// The running state of the run delta coding.
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    /// The page index after the previous run.
    end_index: u64,
    /// The pfn after the previous run.
    end_pfn: u64,
    /// The previous run's order.
    order: u8,
    /// Whether a run has been seen.
    started: bool,
    /// Pages skipped by index jumps (holes), over all runs.
    holes: u64,
}

impl Cursor {
    /// Decodes and checks one run.
    #[inline(always)]
    fn decode(&mut self, r: &mut Reader<'_>) -> Result<FolioRun> {
        let offset = r.offset();
        let head = r.u64()?;
        let delta = unzigzag(head.wrapping_shr(2));
        let (index_delta, order) = if head & HEAD_EXT != 0 {
            let d = r.u64()?;
            let order_offset = r.offset();
            let o = r.u8()?;
            if o > MAX_FOLIO_ORDER {
                return Err(Error::Limit {
                    offset: order_offset,
                    limit: Limit::FolioOrder,
                    value: u64::from(o),
                });
            }
            if d == 0 && o == self.order {
                return Err(Error::NonCanonical { offset });
            }
            (d, o)
        } else {
            if self.started && delta == 0 {
                return Err(Error::NonCanonical { offset });
            }
            (0, self.order)
        };
        let count = if head & HEAD_MULTI != 0 {
            let c_offset = r.offset();
            r.u64()?.checked_add(2).ok_or(Error::BadField {
                offset: c_offset,
                what: "folio count",
            })?
        } else {
            1
        };
        self.holes = self.holes.saturating_add(index_delta);
        let index = self
            .end_index
            .checked_add(index_delta)
            .filter(|&i| i <= MAX_PAGE_INDEX)
            .ok_or(Error::Limit {
                offset,
                limit: Limit::PageIndex,
                value: index_delta,
            })?;
        let pfn = self
            .end_pfn
            .checked_add_signed(delta)
            .filter(|&p| p <= MAX_PFN)
            .ok_or(Error::Limit {
                offset,
                limit: Limit::Pfn,
                value: head,
            })?;
        let run = FolioRun {
            index,
            pfn,
            order,
            count,
        };
        self.advance(&run)
            .map_err(|what| Error::BadField { offset, what })?;
        Ok(run)
    }

    /// Checks a run's alignment and range and moves past it.
    #[inline(always)]
    fn advance(&mut self, run: &FolioRun) -> core::result::Result<(), &'static str> {
        if run.order > MAX_FOLIO_ORDER
            || run.count == 0
            || run.index > MAX_PAGE_INDEX
            || run.pfn > MAX_PFN
        {
            return Err("folio run out of range");
        }
        // OVERFLOW: `shift` ≤ 18, and every quantity below stays under 2^52.
        let shift = u32::from(run.order);
        let mask = 1u64.wrapping_shl(shift).wrapping_sub(1);
        if (run.index | run.pfn) & mask != 0 {
            return Err("misaligned folio");
        }
        if run.count > MAX_PAGE_INDEX.wrapping_shr(shift) {
            return Err("folio count");
        }
        let pages = run.count.wrapping_shl(shift);
        let end_index = run.index.wrapping_add(pages);
        let end_pfn = run.pfn.wrapping_add(pages);
        if end_index > MAX_PAGE_INDEX.wrapping_add(1) || end_pfn > MAX_PFN.wrapping_add(1) {
            return Err("folio run out of range");
        }
        self.end_index = end_index;
        self.end_pfn = end_pfn;
        self.order = run.order;
        self.started = true;
        Ok(())
    }

    /// Checks and encodes one run.
    #[inline(always)]
    fn encode(&mut self, w: &mut Writer<'_>, run: &FolioRun) -> Result<()> {
        let Some(index_delta) = run.index.checked_sub(self.end_index) else {
            return Err(Error::BadInput {
                what: "folio runs not in ascending file order",
            });
        };
        // CAST: both pfns are checked below 2^40 by `advance` (`end_pfn` by
        // the previous call), so the difference fits an `i64`.
        let pfn_delta = i64::from_ne_bytes(run.pfn.wrapping_sub(self.end_pfn).to_ne_bytes());
        let ext = index_delta != 0 || run.order != self.order;
        let multi = run.count > 1;
        if let Err(what) = self.advance(run) {
            return Err(Error::BadInput { what });
        }
        let mut head = zigzag(pfn_delta).wrapping_shl(2);
        if ext {
            head |= HEAD_EXT;
        }
        if multi {
            head |= HEAD_MULTI;
        }
        w.u64(head)?;
        if ext {
            w.u64(index_delta)?;
            w.u8(run.order)?;
        }
        if multi {
            w.u64(run.count.wrapping_sub(2))?;
        }
        Ok(())
    }
}

/// Merges adjacent runs that continue each other, and checks order and
/// alignment: the canonical runs of a folio sequence.
#[derive(Clone, Debug)]
pub struct Coalesce<I> {
    /// The runs as given.
    inner: I,
    /// The run being grown.
    pending: Option<FolioRun>,
}

impl<I: Iterator<Item = FolioRun>> Coalesce<I> {
    /// Coalesces `runs` (e.g. one run of count 1 per folio).
    #[inline]
    pub fn new(runs: I) -> Self {
        Coalesce {
            inner: runs,
            pending: None,
        }
    }
}

impl<I: Iterator<Item = FolioRun>> Iterator for Coalesce<I> {
    type Item = FolioRun;

    #[inline]
    fn next(&mut self) -> Option<FolioRun> {
        loop {
            let Some(next) = self.inner.next() else {
                return self.pending.take();
            };
            if next.count == 0 {
                continue;
            }
            let Some(cur) = self.pending.as_mut() else {
                self.pending = Some(next);
                continue;
            };
            if !cur.extend(&next) {
                return self.pending.replace(next);
            }
        }
    }
}

/// What one pass over the runs learned: enough to write the payload in one
/// more pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Canonical (merged) runs.
    pub runs: u32,
    /// Folios over all runs.
    pub folios: u64,
    /// The exact encoded length in bytes.
    pub len: usize,
}

/// Checks `runs` and computes the [`Plan`] of their encoding: one pass.
pub fn plan<I>(head: &MemfdHead<'_>, runs: I) -> Result<Plan>
where
    I: Iterator<Item = FolioRun>,
{
    if !(PAGE_SHIFT_RANGE.0..=PAGE_SHIFT_RANGE.1).contains(&head.page_shift) {
        return Err(Error::BadInput {
            what: "page shift out of range",
        });
    }
    let huge_order = head.huge_order();
    if head.huge_shift != 0 && (huge_order.is_none() || !head.huge_aligned()) {
        return Err(Error::BadInput {
            what: "huge page shift out of range, or not dividing the size",
        });
    }
    let mut w = Writer::counting();
    let mut cur = Cursor::default();
    let mut folios: u64 = 0;
    let mut count: u32 = 0;
    let mut last: Option<FolioRun> = None;
    for run in Coalesce::new(runs) {
        if huge_order.is_some_and(|o| o != run.order) {
            return Err(Error::BadInput {
                what: "a hugetlb folio that is not one huge page",
            });
        }
        cur.encode(&mut w, &run)?;
        last = Some(run);
        folios = folios.checked_add(run.count).ok_or(Error::BadInput {
            what: "folio count",
        })?;
        count = count
            .checked_add(1)
            .filter(|&c| c <= MAX_FOLIO_RUNS)
            .ok_or(Error::BadInput {
                what: "too many folio runs",
            })?;
    }
    // Runs ascend in the file, so only the last one can reach past the size.
    if last.is_some_and(|run| !starts_below(&run, head)) {
        return Err(Error::BadInput {
            what: "folio beyond the file size",
        });
    }
    let plan = Plan {
        runs: count,
        folios,
        len: 0,
    };
    write_head(&mut w, head, &plan)?;
    Ok(Plan {
        len: w.position(),
        ..plan
    })
}

/// Writes the file-level fields and the counts.
fn write_head(w: &mut Writer<'_>, head: &MemfdHead<'_>, plan: &Plan) -> Result<()> {
    w.u64(head.size)?;
    w.u64(head.pos)?;
    w.u32(head.seals)?;
    w.u8(head.page_shift)?;
    if head.huge_shift != 0 {
        w.u8(head.huge_shift)?;
    }
    w.str(head.name, Limit::MemfdNameLen, MAX_MEMFD_NAME_LEN)?;
    w.u64(plan.folios)?;
    w.u32(plan.runs)
}

/// Writes a payload planned by [`plan`] over the same runs: one pass.
pub fn encode_planned<I>(
    w: &mut Writer<'_>,
    head: &MemfdHead<'_>,
    plan: &Plan,
    runs: I,
) -> Result<()>
where
    I: Iterator<Item = FolioRun>,
{
    write_head(w, head, plan)?;
    let mut cur = Cursor::default();
    let mut count: u32 = 0;
    w.local(|w| {
        for run in Coalesce::new(runs) {
            count = count.saturating_add(1);
            if count > plan.runs {
                break;
            }
            cur.encode(w, &run)?;
        }
        Ok(())
    })?;
    if count != plan.runs {
        return Err(Error::BadInput {
            what: "runs differ from the plan",
        });
    }
    Ok(())
}

/// Encodes a memfd payload: [`plan`], then [`encode_planned`]. `runs` is
/// walked twice, hence `Clone`; it may hold one run per folio, they are
/// merged here.
#[inline]
pub fn encode<I>(w: &mut Writer<'_>, head: &MemfdHead<'_>, runs: I) -> Result<()>
where
    I: Iterator<Item = FolioRun> + Clone,
{
    let p = plan(head, runs.clone())?;
    encode_planned(w, head, &p, runs)
}

/// The exact size of [`encode`]'s output.
pub fn encoded_len<I>(head: &MemfdHead<'_>, runs: I) -> Result<usize>
where
    I: Iterator<Item = FolioRun>,
{
    plan(head, runs).map(|p| p.len)
}

/// Whether the last folio of `run` starts below the file size.
#[inline]
fn starts_below(run: &FolioRun, head: &MemfdHead<'_>) -> bool {
    let last = run
        .count
        .checked_sub(1)
        .and_then(|c| c.checked_shl(u32::from(run.order)))
        .and_then(|p| run.index.checked_add(p));
    let byte = last.and_then(|i| i.checked_mul(1u64.checked_shl(u32::from(head.page_shift))?));
    byte.is_some_and(|b| b < head.size)
}

/// Decodes a version 1 memfd payload; see [`decode_version`].
#[inline]
pub fn decode(payload: &[u8], base: usize) -> Result<MemfdView<'_>> {
    decode_version(payload, base, SHMEM_VERSION)
}

/// Decodes a memfd payload of `version` (1 or 2) whose first byte is at blob
/// offset `base`, checking every run: canonical, aligned, ascending, inside
/// the file size, one huge page each for a hugetlb memfd, and adding up to
/// `folios`.
#[inline]
pub fn decode_version(payload: &[u8], base: usize, version: u32) -> Result<MemfdView<'_>> {
    if !(SHMEM_VERSION..=PAYLOAD_VERSION).contains(&version) {
        return Err(Error::BadInput {
            what: "memfd payload version",
        });
    }
    let mut r = Reader::new(payload, base);
    let size = r.u64()?;
    let pos = r.u64()?;
    let seals = r.u32()?;
    let shift_offset = r.offset();
    let page_shift = r.u8()?;
    if !(PAGE_SHIFT_RANGE.0..=PAGE_SHIFT_RANGE.1).contains(&page_shift) {
        return Err(Error::Limit {
            offset: shift_offset,
            limit: Limit::PageShift,
            value: u64::from(page_shift),
        });
    }
    let huge_offset = r.offset();
    let huge_shift = if version == SHMEM_VERSION { 0 } else { r.u8()? };
    let name = r.str(Limit::MemfdNameLen, MAX_MEMFD_NAME_LEN)?;
    let folios_offset = r.offset();
    let folios = r.u64()?;
    let run_count = r.len(Limit::FolioRuns, MAX_FOLIO_RUNS, 1)?;
    let runs = r.clone();
    let head = MemfdHead {
        size,
        pos,
        seals,
        page_shift,
        huge_shift,
        name,
    };
    let huge_order = head.huge_order();
    if version != SHMEM_VERSION && (huge_order.is_none() || !head.huge_aligned()) {
        return Err(Error::BadField {
            offset: huge_offset,
            what: "huge page shift out of range, or not dividing the size",
        });
    }
    let mut cur = Cursor::default();
    let mut sum: u64 = 0;
    // Runs ascend in the file, so only the last one can reach past the size.
    let mut last: Option<(FolioRun, usize)> = None;
    for _ in 0..run_count {
        let offset = r.offset();
        let run = cur.decode(&mut r)?;
        if huge_order.is_some_and(|o| o != run.order) {
            return Err(Error::BadField {
                offset,
                what: "a hugetlb folio that is not one huge page",
            });
        }
        sum = sum.saturating_add(run.count);
        last = Some((run, offset));
    }
    if let Some((run, offset)) = last {
        if !starts_below(&run, &head) {
            return Err(Error::InconsistentSize {
                offset,
                what: "folio beyond the file size",
            });
        }
    }
    // Pages: everything up to the end of the last run, less the holes.
    let pages = cur.end_index.saturating_sub(cur.holes);
    r.end()?;
    if sum != folios {
        return Err(Error::InconsistentSize {
            offset: folios_offset,
            what: "folio count differs from the runs",
        });
    }
    Ok(MemfdView {
        head,
        folios,
        pages,
        run_count,
        runs,
    })
}

impl<'a> MemfdView<'a> {
    /// The runs, in file order.
    pub fn runs(&self) -> Runs<'a> {
        Runs {
            r: self.runs.clone(),
            cur: Cursor::default(),
            left: self.run_count,
        }
    }
}

/// The runs of a [`MemfdView`].
#[derive(Clone, Debug)]
pub struct Runs<'a> {
    /// Positioned at the next run.
    r: Reader<'a>,
    /// The delta state.
    cur: Cursor,
    /// Runs left.
    left: u32,
}

impl Iterator for Runs<'_> {
    type Item = FolioRun;

    #[inline]
    fn next(&mut self) -> Option<FolioRun> {
        if self.left == 0 {
            return None;
        }
        // `decode` checked every run already; this can't fail.
        let Ok(run) = self.cur.decode(&mut self.r) else {
            self.left = 0;
            return None;
        };
        self.left = self.left.saturating_sub(1);
        Some(run)
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        // At most `left`: a run that fails to decode ends the iteration early.
        (0, usize::try_from(self.left).ok())
    }
}
