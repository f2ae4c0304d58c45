// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The per-entry checks: what makes one entry corrupt without costing the
//! others.
//!
//! [`super::validate()`] refuses a blob whose manifest is broken. Payloads are
//! checked here instead, one entry at a time, so that a bad payload makes only
//! its own entry unavailable. An entry is corrupt when:
//! - its payload, of a handler and version this crate knows, doesn't decode;
//! - a memfd payload's page size is not the reader's;
//! - a memfd run is not all RAM, as [`Machine::is_ram`] says;
//! - a page is named twice: by two runs of one entry, or by two entries of
//!   any boxes (both are then corrupt: which one lies can't be told);
//! - an iommufd mapping reaches past the end of the memfd it maps.
//!
//! Whether the memory a payload names was really preserved only KHO knows:
//! the restorer checks that block by block as it claims the memory.
//!
//! Nothing is allocated: the caller lends [`span_count`] spans and one
//! verdict per entry of the manifest.

use super::error::{
    Error,
    Result, //
};
use super::handlers::{
    decode_payload,
    Decoded, //
};
use super::iommufd::IommufdView;
use super::manifest::{
    BoxView,
    EntryView,
    ManifestView, //
};
use super::memfd::MemfdView;
use super::validate::heapsort;

/// One slot per dependency an entry may have (`limits::MAX_DEPS`).
const DEP_SLOTS: usize = 64;
const _: () = assert!(super::limits::MAX_DEPS == 64);

/// The machine that reads the blob.
pub trait Machine {
    /// log2 of its base page size.
    fn page_shift(&self) -> u8;

    /// Whether the `pages` pages from page frame `pfn` are all RAM.
    fn is_ram(&mut self, pfn: u64, pages: u64) -> bool;
}

/// The page frames `start..end` that a memfd entry names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// The first page frame.
    pub start: u64,
    /// The page frame after the last.
    pub end: u64,
    /// The entry's index in the manifest (over all boxes).
    pub entry: u32,
    /// The blob offset of the entry's payload.
    pub offset: u32,
}

/// The number of spans [`check_entries`] needs: one per memfd run.
pub fn span_count(m: &ManifestView<'_>) -> usize {
    span_count_with(m, &|_| None)
}

/// [`span_count`] with the payloads `resolve` gives, as for [`check_entries_with`].
pub fn span_count_with<'s, R>(m: &ManifestView<'s>, resolve: &R) -> usize
where
    R: Fn(u32) -> Option<&'s [u8]>,
{
    let mut index = 0u32;
    let mut count = 0usize;
    for b in m.boxes() {
        for e in b.entries() {
            let e = resolved(e, index, resolve);
            if let Ok(Decoded::Memfd(v)) = decode_payload(&e) {
                count = count.saturating_add(usize::try_from(v.run_count).unwrap_or(usize::MAX));
            }
            index = index.saturating_add(1);
        }
    }
    count
}

/// Entry `index` of the manifest, with its payload inline where `resolve` has its bytes.
fn resolved<'s, R>(e: EntryView<'s>, index: u32, resolve: &R) -> EntryView<'s>
where
    R: Fn(u32) -> Option<&'s [u8]>,
{
    match resolve(index) {
        Some(bytes) => e.with_inline(bytes),
        None => e,
    }
}

/// Checks every entry of `m`, a manifest that passed [`super::validate()`].
///
/// `verdicts[i]` is set to the reason entry `i` (in manifest order, over all
/// boxes) is corrupt, and left alone otherwise; `spans` must hold at least
/// [`span_count`] spans. An entry whose handler or payload version this crate
/// doesn't know is not checked, and not corrupt: it is unavailable for that
/// reason instead.
pub fn check_entries<M: Machine>(
    m: &ManifestView<'_>,
    machine: &mut M,
    spans: &mut [Span],
    verdicts: &mut [Option<Error>],
) -> Result<()> {
    check_entries_with(m, &|_| None, machine, spans, verdicts).map(|_| ())
}

/// [`check_entries`], where `resolve(i)` gives the bytes of entry `i`'s payload
/// when the blob keeps it out of line and the reader has copied it out and
/// checked it. Returns how many of `spans` hold the entries' memfd runs (those
/// of entries found corrupt left out); [`span_count_with`] says how many it
/// needs.
pub fn check_entries_with<'s, R, M>(
    m: &ManifestView<'s>,
    resolve: &R,
    machine: &mut M,
    spans: &mut [Span],
    verdicts: &mut [Option<Error>],
) -> Result<usize>
where
    R: Fn(u32) -> Option<&'s [u8]>,
    M: Machine,
{
    let entries = usize::try_from(m.entry_count()).unwrap_or(usize::MAX);
    if verdicts.len() < entries {
        return Err(Error::ScratchTooSmall { needed: entries });
    }
    let mut used = 0usize;
    let mut index = 0u32;
    for b in m.boxes() {
        let first = index;
        for e in b.entries() {
            let e = resolved(e, index, resolve);
            let checked = match decode_payload(&e) {
                Ok(Decoded::Memfd(v)) => check_memfd(&e, &v, machine, index, spans, &mut used),
                Ok(Decoded::Iommufd(v)) => check_iommufd(&b, first, resolve, &e, &v),
                Ok(Decoded::Vfio(_)) => Ok(()),
                Err(super::Unavailable::Corrupt(err)) => Err(err),
                Err(_) => Ok(()),
            };
            if let Err(err) = checked {
                mark(verdicts, index, err);
            }
            index = index.saturating_add(1);
        }
    }
    let spans = spans.get_mut(..used).unwrap_or(&mut []);
    heapsort(spans, |a, b| (a.start, a.entry).cmp(&(b.start, b.entry)));
    // The span reaching furthest so far: any later span starting below its
    // end shares pages with it.
    let mut reach: Option<Span> = None;
    for &s in spans.iter() {
        if let Some(r) = reach {
            if s.start < r.end {
                let shared = Error::ForeignMemory {
                    offset: 0,
                    what: "a page another run or entry names too",
                    pfn: s.start,
                };
                mark(verdicts, r.entry, offset_to(shared, r.offset));
                mark(verdicts, s.entry, offset_to(shared, s.offset));
            }
            if s.end <= r.end {
                continue;
            }
        }
        reach = Some(s);
    }
    Ok(used)
}

/// `err` pointed at blob offset `offset`.
fn offset_to(err: Error, offset: u32) -> Error {
    match err {
        Error::ForeignMemory { what, pfn, .. } => Error::ForeignMemory {
            offset: usize::try_from(offset).unwrap_or(usize::MAX),
            what,
            pfn,
        },
        other => other,
    }
}

/// Records the first reason entry `index` is corrupt.
fn mark(verdicts: &mut [Option<Error>], index: u32, err: Error) {
    let slot = usize::try_from(index)
        .ok()
        .and_then(|i| verdicts.get_mut(i));
    if let Some(slot) = slot {
        slot.get_or_insert(err);
    }
}

/// Checks a memfd entry's page size and runs, and lends its runs to `spans`.
fn check_memfd<M: Machine>(
    e: &EntryView<'_>,
    v: &MemfdView<'_>,
    machine: &mut M,
    index: u32,
    spans: &mut [Span],
    used: &mut usize,
) -> Result<()> {
    let expected = machine.page_shift();
    if v.head.page_shift != expected {
        return Err(Error::BadField {
            offset: e.payload_offset,
            what: "page shift: not this kernel's page size",
        });
    }
    let offset = u32::try_from(e.payload_offset).unwrap_or(u32::MAX);
    let first = *used;
    for run in v.runs() {
        let not_ram = Error::ForeignMemory {
            offset: e.payload_offset,
            what: "a folio run outside RAM",
            pfn: run.pfn,
        };
        // `decode` bounded every run below 2^40 page frames.
        let Some(pages) = run.pages() else {
            *used = first;
            return Err(not_ram);
        };
        if !machine.is_ram(run.pfn, pages) {
            // This entry's spans are dropped: they are not its memory.
            *used = first;
            return Err(not_ram);
        }
        let Some(slot) = spans.get_mut(*used) else {
            return Err(Error::ScratchTooSmall {
                needed: used.saturating_add(1),
            });
        };
        *slot = Span {
            start: run.pfn,
            end: run.pfn.saturating_add(pages),
            entry: index,
            offset,
        };
        *used = used.saturating_add(1);
    }
    Ok(())
}

/// Checks that every mapping of an iommufd entry lies inside its memfd, where
/// the dependency is a memfd of this crate's schema.
fn check_iommufd<'s, R>(
    b: &BoxView<'s>,
    first: u32,
    resolve: &R,
    e: &EntryView<'s>,
    v: &IommufdView<'_>,
) -> Result<()>
where
    R: Fn(u32) -> Option<&'s [u8]>,
{
    // The size of each dependency that is a memfd; `check_deps` bounded the
    // mappings' dependency indices by the list, itself at most `MAX_DEPS`.
    let mut sizes = [None::<u64>; DEP_SLOTS];
    for (slot, dep) in sizes.iter_mut().zip(e.deps()) {
        *slot = b
            .entries()
            .nth(usize::try_from(dep).unwrap_or(usize::MAX))
            .map(|d| resolved(d, first.saturating_add(dep), resolve))
            .and_then(|d| match decode_payload(&d) {
                Ok(Decoded::Memfd(m)) => Some(m.head.size),
                _ => None,
            });
    }
    for map in v.maps() {
        let size = usize::try_from(map.dep)
            .ok()
            .and_then(|d| sizes.get(d))
            .copied()
            .flatten();
        let Some(size) = size else {
            continue;
        };
        let inside = map
            .start
            .checked_add(map.length)
            .is_some_and(|end| end <= size);
        if !inside {
            return Err(Error::InconsistentSize {
                offset: e.payload_offset,
                what: "an IOAS mapping past the end of its memfd",
            });
        }
    }
    Ok(())
}
