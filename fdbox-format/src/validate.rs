// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The validation pass: cross-references a decoded manifest.
//!
//! It checks that names are non-empty, NUL-free and unique (boxes per owner
//! within the manifest, entries within a box), that every dependency is the index of an
//! earlier entry of the same box and that each list is strictly ascending (so
//! the dependency graph is acyclic and index order is a valid restore order),
//! that entry flags are known, and that preserved payloads are page-aligned
//! and non-empty. Payloads are not its business: a bad payload makes only its own
//! entry corrupt ([`super::check`]), never the blob unusable.
//!
//! It runs without allocating: the caller lends `scratch`, at least
//! [`scratch_len`] slots. Each slot holds a name's hash (FNV-1a, high 32
//! bits) and its blob offset (low 32 bits); the slots are sorted as integers,
//! and only names with equal hashes are compared, after sorting each such
//! group by name, so crafted collisions cost O(n log n) too (heapsort: no
//! recursion, no allocation).

use core::cmp::Ordering;

use super::error::{
    Error,
    Result, //
};
use super::header::is_newer_minor;
use super::limits::{
    Limit,
    MAX_NAME_LEN, //
};
use super::manifest::{
    ManifestView,
    Payload,
    KNOWN_ENTRY_FLAGS, //
};
use super::wire::Reader;

/// The alignment of a preserved payload.
const PRESERVED_ALIGN: u64 = 4096;

/// The number of `u64` slots [`validate`] needs.
pub fn scratch_len(m: &ManifestView<'_>) -> usize {
    let n = m.box_count().max(m.max_box_entries());
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Validates `m`, returning the first problem found.
pub fn validate(m: &ManifestView<'_>, scratch: &mut [u64]) -> Result<()> {
    let needed = scratch_len(m);
    if scratch.len() < needed {
        return Err(Error::ScratchTooSmall { needed });
    }
    let (body, base) = m.body();
    // Names were checked by `decode`; compare their raw bytes.
    let name_at = |key: u64| -> &[u8] {
        let off = usize::try_from(key & 0xffff_ffff).unwrap_or(usize::MAX);
        let rel = off.saturating_sub(base);
        let mut r = Reader::new(body.get(rel..).unwrap_or(&[]), off);
        r.bytes(Limit::NameLen, MAX_NAME_LEN).unwrap_or(&[])
    };

    // Box names, unique per owner: the owner's uid follows the name.
    let box_key_at = |key: u64| -> (&[u8], Option<u32>) {
        let off = usize::try_from(key & 0xffff_ffff).unwrap_or(usize::MAX);
        let rel = off.saturating_sub(base);
        let mut r = Reader::new(body.get(rel..).unwrap_or(&[]), off);
        let name = r.bytes(Limit::NameLen, MAX_NAME_LEN).unwrap_or(&[]);
        (name, r.u32().ok())
    };
    let mut n = 0usize;
    for b in m.boxes() {
        check_name(b.head.name, b.offset)?;
        put(scratch, n, b.head.name, b.offset)?;
        n = n.saturating_add(1);
    }
    unique(scratch.get_mut(..n).unwrap_or(&mut []), &box_key_at)?;

    for b in m.boxes() {
        let count = b.entry_count();
        let mut n = 0usize;
        for e in b.entries() {
            check_name(e.name, e.offset)?;
            put(scratch, n, e.name, e.offset)?;
            n = n.saturating_add(1);
            let unknown = e.flags & !KNOWN_ENTRY_FLAGS;
            if unknown != 0 && !is_newer_minor(m.header.minor) {
                return Err(Error::UnknownEntryFlags {
                    offset: e.flags_offset,
                    flags: unknown,
                });
            }
            let mut deps = e.deps();
            let mut prev: Option<u32> = None;
            while let Some((d, offset)) = deps.next_with_offset() {
                if d >= count {
                    return Err(Error::DanglingDependency { offset, index: d });
                }
                if d >= e.index || prev.is_some_and(|p| d <= p) {
                    return Err(Error::DependencyOrder { offset, index: d });
                }
                prev = Some(d);
            }
            if let Payload::Preserved(p) = e.payload {
                let end = p.phys.checked_add(p.len);
                if p.len == 0 || p.phys % PRESERVED_ALIGN != 0 || end.is_none() {
                    return Err(Error::InconsistentSize {
                        offset: e.payload_offset,
                        what: "preserved payload address or length",
                    });
                }
            }
            if let Payload::Chunked(c) = e.payload {
                let bad = c.chunks.iter().any(|phys| {
                    phys == 0
                        || phys % PRESERVED_ALIGN != 0
                        || phys.checked_add(u64::from(c.chunk_len)).is_none()
                });
                if bad {
                    return Err(Error::InconsistentSize {
                        offset: e.payload_offset,
                        what: "payload chunk address",
                    });
                }
            }
        }
        unique(scratch.get_mut(..n).unwrap_or(&mut []), &name_at)?;
    }
    Ok(())
}

/// Checks one name.
fn check_name(name: &str, offset: usize) -> Result<()> {
    if name.is_empty() || name.as_bytes().contains(&0) {
        return Err(Error::BadName { offset });
    }
    Ok(())
}

/// FNV-1a, 32 bits.
fn fnv1a(b: &[u8]) -> u32 {
    b.iter().fold(0x811c_9dc5u32, |h, &c| {
        (h ^ u32::from(c)).wrapping_mul(0x0100_0193)
    })
}

/// Stores the hash of `name` and its blob offset in `scratch[i]`.
fn put(scratch: &mut [u64], i: usize, name: &str, offset: usize) -> Result<()> {
    let slot = scratch.get_mut(i).ok_or(Error::ScratchTooSmall {
        needed: i.saturating_add(1),
    })?;
    let offset = u32::try_from(offset).map_err(|_| Error::BadInput {
        what: "blob too large for validation",
    })?;
    *slot = u64::from(fnv1a(name.as_bytes())).wrapping_shl(32) | u64::from(offset);
    Ok(())
}

/// Fails on the first duplicate key among the slots of `v`, whose hashes are of the name that
/// starts each key.
fn unique<K: Ord>(v: &mut [u64], name_at: &impl Fn(u64) -> K) -> Result<()> {
    heapsort(v, |a, b| a.cmp(b));
    let mut i = 0usize;
    while i < v.len() {
        let hash = v.get(i).copied().unwrap_or(0).wrapping_shr(32);
        let mut j = i.saturating_add(1);
        while v.get(j).is_some_and(|&k| k.wrapping_shr(32) == hash) {
            j = j.saturating_add(1);
        }
        if let Some(group) = v.get_mut(i..j).filter(|g| g.len() > 1) {
            heapsort(group, |&a, &b| name_at(a).cmp(&name_at(b)).then(a.cmp(&b)));
            let mut prev: Option<u64> = None;
            for &k in group.iter() {
                if let Some(p) = prev.filter(|&p| name_at(p) == name_at(k)) {
                    return Err(Error::DuplicateName {
                        offset: usize::try_from(p.max(k) & 0xffff_ffff).unwrap_or(usize::MAX),
                    });
                }
                prev = Some(k);
            }
        }
        i = j;
    }
    Ok(())
}

/// Sorts `v` in place by `cmp`, without recursion or allocation.
///
/// The kernel side sorts with it too: its stack frame is the same at any length, where
/// `sort_unstable` recurses up to 2·log2(n) levels of most of a kilobyte each, past a 16 KiB
/// kernel stack at 10,000 elements.
pub fn heapsort<T>(v: &mut [T], cmp: impl Fn(&T, &T) -> Ordering) {
    let len = v.len();
    let mut start = len / 2;
    while start > 0 {
        start = start.saturating_sub(1);
        sift_down(v, start, len, &cmp);
    }
    let mut end = len;
    while end > 1 {
        end = end.saturating_sub(1);
        v.swap(0, end);
        sift_down(v, 0, end, &cmp);
    }
}

/// Moves `v[root]` down the heap `v[..end]`.
fn sift_down<T>(v: &mut [T], mut root: usize, end: usize, cmp: &impl Fn(&T, &T) -> Ordering) {
    loop {
        let Some(mut child) = root.checked_mul(2).and_then(|c| c.checked_add(1)) else {
            return;
        };
        if child >= end {
            return;
        }
        let right = child.saturating_add(1);
        if right < end {
            if let (Some(c), Some(r)) = (v.get(child), v.get(right)) {
                if cmp(c, r) == Ordering::Less {
                    child = right;
                }
            }
        }
        match (v.get(root), v.get(child)) {
            (Some(r), Some(c)) if cmp(r, c) == Ordering::Less => {}
            _ => return,
        }
        v.swap(root, child);
        root = child;
    }
}
