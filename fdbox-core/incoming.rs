// SPDX-License-Identifier: GPL-2.0

//! The incoming side: taking over the previous kernel's blob, restoring entries in dependency
//! order, and discarding what nobody claims.

use crate::{
    fdbox_format::{
        self as format,
        validate::heapsort,
        Payload, //
    },
    kho::{
        self,
        Retrieved, //
    },
    quota::Usage,
    state::{
        cond_resched,
        entry_state,
        may_manage,
        BoxInner,
        FdBox,
        InEntry,
        IncomingBox,
        Kind,
        Phase,
        Slot,
        Table,
        TABLE, //
    },
    uapi::*, //
};
use kernel::{
    bindings,
    fs::File,
    prelude::*,
    rbtree::RBTree,
    sync::aref::ARef, //
};

/// The largest blob FDBox takes over.
// CAST: Constants that fit.
const MAX_BLOB: usize =
    (format::limits::MAX_BODY_LEN as usize).saturating_add(format::limits::MAX_HEADER_LEN as usize);

/// Why a blob can't be taken over.
enum LoadError {
    Format(format::Error),
    Kernel(Error),
}

impl From<Error> for LoadError {
    fn from(err: Error) -> Self {
        LoadError::Kernel(err)
    }
}

impl From<kernel::alloc::AllocError> for LoadError {
    fn from(_: kernel::alloc::AllocError) -> Self {
        LoadError::Kernel(ENOMEM)
    }
}

impl From<format::Error> for LoadError {
    fn from(err: format::Error) -> Self {
        LoadError::Format(err)
    }
}

/// Takes over what the previous kernel handed over; returns whether there was a blob.
///
/// Whatever the blob holds, this never fails: an unusable blob is reported, with the reason,
/// and leaves no box behind.
pub(crate) fn load(state: &mut Table) -> bool {
    let raw = match kho::retrieve(kho::SUBTREE, MAX_BLOB) {
        Ok(Retrieved::Nothing) => return false,
        // A major-2 hand-over: a root naming one blob per box.
        Ok(Retrieved::Blob(raw)) if format::root::is_root(&raw) => return load_root(&raw, state),
        Ok(Retrieved::Blob(raw)) => raw,
        Ok(Retrieved::TooLarge(len)) => {
            pr_err!("incoming hand-over unusable: {len} bytes, more than {MAX_BLOB}\n");
            return unusable(state, E2BIG);
        }
        Ok(Retrieved::NotPreserved { size, preserved }) => {
            pr_err!(
                "incoming hand-over unusable: it claims {size} bytes, and KHO preserved {preserved} there\n"
            );
            return unusable(state, EINVAL);
        }
        Err(err) => {
            pr_err!("incoming hand-over unusable: can't retrieve it: {err:?}\n");
            return unusable(state, err);
        }
    };
    // A major-1 hand-over: one blob of every box.
    match build_blob(&raw, state) {
        Ok(slots) => take(state, slots),
        Err(LoadError::Format(err)) => {
            pr_err!("incoming hand-over unusable: {}\n", format_args!("{err}"));
            state.incoming.status = FDBOX_INCOMING_UNUSABLE;
            state.incoming.error = Some(err);
        }
        Err(LoadError::Kernel(err)) => {
            pr_err!("incoming hand-over unusable: {err:?}\n");
            return unusable(state, err);
        }
    }
    state.incoming.raw = raw;
    true
}

/// Records that the hand-over can't be used, for `err`.
fn unusable(state: &mut Table, err: Error) -> bool {
    state.incoming.status = FDBOX_INCOMING_UNUSABLE;
    state.incoming.errno = Some(err);
    true
}

/// Adds the boxes taken over to the table, charging their owners.
fn take(state: &mut Table, slots: KVec<Slot>) {
    let mut taken = Taken::default();
    for slot in slots {
        insert_box(state, slot, &mut taken);
    }
    taken.report(state);
}

/// What was taken over.
#[derive(Default)]
struct Taken {
    boxes: usize,
    entries: usize,
}

impl Taken {
    /// Logs what was taken over; the hand-over is usable.
    fn report(&self, state: &mut Table) {
        state.incoming.status = FDBOX_INCOMING_OK;
        pr_info!(
            "took over {} boxes with {} entries\n",
            self.boxes,
            self.entries
        );
    }
}

/// Adds one box taken over to the table, charging its owner; false if it can't be added.
fn insert_box(state: &mut Table, slot: Slot, taken: &mut Taken) -> bool {
    let entries = slot.charged.entries as usize;
    let (owner, charge) = (slot.fdbox.owner, slot.charged);
    if state.quotas.force(owner, &charge).is_err() {
        pr_err!("out of memory taking over the hand-over\n");
        return false;
    }
    if state.insert(slot).is_err() {
        state.quotas.uncharge(owner, &charge);
        pr_err!("out of memory taking over the hand-over\n");
        return false;
    }
    taken.boxes = taken.boxes.saturating_add(1);
    taken.entries = taken.entries.saturating_add(entries);
    true
}

/// Decodes, validates and checks the major-1 blob `raw` into incoming boxes.
fn build_blob(raw: &[u8], table: &mut Table) -> core::result::Result<KVec<Slot>, LoadError> {
    let view = format::decode(raw)?;
    let mut scratch = KVVec::from_elem(0u64, format::scratch_len(&view), GFP_KERNEL)?;
    format::validate(&view, &mut scratch)?;
    drop(scratch);
    let mut named = KVVec::new();
    let verdicts = check(&view, &[], 0, &mut named)?;
    let mut accepted = KVVec::new();
    build(&view, &mut [], &verdicts, &mut accepted, table)
}

/// A box's blob, read in place from the block its root slot names.
struct BoxBlob<'a> {
    /// The root slot.
    slot: u32,
    /// The blob, decoded and validated: one box.
    view: format::ManifestView<'a>,
    /// The payloads the blob keeps out of line, copied out and checked, by entry in manifest
    /// order; `None` for one inline or not resolved.
    resolved: KVVec<Option<KVVec<u8>>>,
    /// Why each entry is corrupt, by entry in manifest order.
    verdicts: KVVec<Option<format::Error>>,
    /// Which entries were taken over whole, by entry in manifest order: their chunks are free.
    accepted: KVVec<bool>,
    /// Its box is not taken over: nothing the blob names is claimed or freed.
    lost: bool,
    /// Its box was taken over: its block is free.
    taken: bool,
}

/// Page frames `start..end` that the hand-over names, and who names them.
#[derive(Clone, Copy)]
struct Named {
    start: u64,
    end: u64,
    by: Namer,
}

/// What names memory in the hand-over.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Namer {
    /// A root slot refused already: it names memory, but nothing of it is used.
    Refused,
    /// Blob `.0`'s root slot: the blob itself.
    Blob(usize),
    /// Entry `entry` of blob `blob`: one chunk of its payload, or the block of a `Preserved`
    /// payload.
    Chunk { blob: usize, entry: u32 },
    /// Entry `entry` of blob `blob`: one run of its memfd's folios.
    Run { blob: usize, entry: u32 },
}

/// The page frames of a block of `len` bytes at `phys`; at least one.
fn frames(phys: u64, len: usize) -> (u64, u64) {
    let start = phys >> kernel::page::PAGE_SHIFT;
    // CAST: `usize` fits `u64`.
    let pages = (len >> kernel::page::PAGE_SHIFT).max(1) as u64;
    (start, start.saturating_add(pages))
}

/// The size of the block `kho_alloc_preserve(len)` allocates: the next power of two of pages.
fn block_len(len: usize) -> Option<usize> {
    Some(
        len.checked_next_power_of_two()?
            .max(kernel::page::PAGE_SIZE),
    )
}

/// Adds the block of `len` bytes at `phys`, which `by` names, to `named`.
fn name(named: &mut KVVec<Named>, phys: u64, len: usize, by: Namer) -> Result {
    let (start, end) = frames(phys, block_len(len).unwrap_or(usize::MAX));
    named.push(Named { start, end, by }, GFP_KERNEL)?;
    Ok(())
}

/// [`name`], if KHO preserved a block of exactly `len` bytes' size at `phys`. A record KHO
/// contradicts is a known liar: what it names is not counted against anyone.
fn name_if_preserved(named: &mut KVVec<Named>, phys: u64, len: usize, by: Namer) -> Result {
    if block_len(len).is_some() && kho::preserved_size(phys) == block_len(len) {
        name(named, phys, len, by)?;
    }
    Ok(())
}

/// Of a debugfs view of the incoming hand-over, the most bytes of out-of-line payloads it
/// copies inline; past that it keeps their references.
const VIEW_INLINE_MAX: usize = 64 << 20;

/// Takes over the boxes the major-2 root `raw` names, each checked on its own: a slot, a blob,
/// a chunk or a memfd run that fails its checks costs only its own box or entry. Of the
/// memory the previous kernel preserved, only the blocks of boxes taken over, and the chunks
/// of their entries taken over whole, are freed, and only if no other record names them; what
/// a refused record names stays reserved.
fn load_root(raw: &[u8], state: &mut Table) -> bool {
    let root = match format::root::parse_root(raw) {
        Ok(root) => root,
        Err(err) => {
            pr_err!(
                "incoming hand-over unusable: its root: {}\n",
                format_args!("{err}")
            );
            state.incoming.status = FDBOX_INCOMING_UNUSABLE;
            state.incoming.error = Some(err);
            return true;
        }
    };
    let mut blobs = KVVec::new();
    let mut named = KVVec::new();
    // SAFETY: Nothing is freed before `blobs` is dropped below.
    let result = unsafe { read_slots(&root, &mut blobs, &mut named) }
        .and_then(|slots| take_blobs(slots, &mut blobs, &mut named, state));
    match result {
        Ok(None) => false,
        Ok(Some(free)) => {
            drop(blobs);
            for &phys in free.iter() {
                // SAFETY: A block KHO preserved at exactly the size its one record names, which
                // no other record names, of a box or entry taken over, whose bytes were copied
                // out; no view of it is left.
                unsafe { kho::free_preserved(phys) };
                cond_resched();
            }
            true
        }
        Err(err) => {
            pr_err!("incoming hand-over unusable: {err:?}\n");
            unusable(state, err)
        }
    }
}

/// Reads the blob of every slot of `root` in place, decoded and validated, into `blobs`, and
/// adds every block a slot names to `named`. Of two boxes of one owner and name, the later
/// slot's is lost; so are boxes past `MAX_BOXES`. Returns how many slots name a box.
///
/// # Safety
///
/// No block a blob is read from may be freed while `blobs` lives.
unsafe fn read_slots<'a>(
    root: &format::root::RootView<'_>,
    blobs: &mut KVVec<BoxBlob<'a>>,
    named: &mut KVVec<Named>,
) -> Result<usize> {
    let mut slots = 0usize;
    for (i, slot) in root.slots() {
        cond_resched();
        let (phys, len) = match slot {
            format::root::Slot::Empty => continue,
            format::root::Slot::Corrupt { offset } => {
                slots = slots.saturating_add(1);
                pr_err!(
                    "incoming hand-over: slot {i} (at byte {offset}) is corrupt: its box is lost\n"
                );
                continue;
            }
            // CAST: `u32` fits `usize`.
            format::root::Slot::Blob { phys, len } => (phys, len as usize),
        };
        slots = slots.saturating_add(1);
        if len > format::limits::MAX_BOX_BLOB_LEN || kho::preserved_size(phys) != block_len(len) {
            // KHO says the slot lies: what it names is not counted against anyone.
            pr_err!(
                "incoming hand-over: slot {i} names {len} bytes at {phys:#x}, not a block KHO preserved for them: its box is lost\n"
            );
            continue;
        }
        // SAFETY: KHO preserved a block of at least `len` bytes at `phys`, checked just above;
        // by the safety requirements it stays while `blobs` lives.
        let bytes: &'a [u8] = unsafe { kho::preserved_bytes(phys, len) };
        let view = match decode_and_validate(bytes) {
            Ok(view) if view.box_count() == 1 => view,
            Ok(_) => {
                pr_err!("incoming hand-over: slot {i}'s blob is not one box: lost\n");
                name(named, phys, len, Namer::Refused)?;
                continue;
            }
            Err(LoadError::Format(err)) => {
                pr_err!(
                    "incoming hand-over: slot {i}'s blob is unusable: {}: its box is lost\n",
                    format_args!("{err}")
                );
                name(named, phys, len, Namer::Refused)?;
                continue;
            }
            Err(LoadError::Kernel(err)) => return Err(err),
        };
        name(named, phys, len, Namer::Blob(blobs.len()))?;
        blobs.push(
            BoxBlob {
                slot: i,
                view,
                resolved: KVVec::new(),
                verdicts: KVVec::new(),
                accepted: KVVec::new(),
                lost: false,
                taken: false,
            },
            GFP_KERNEL,
        )?;
    }
    refuse_duplicates(blobs)?;
    Ok(slots)
}

/// Of two boxes of one owner and name, loses the later slot's; then the boxes past
/// `MAX_BOXES`.
fn refuse_duplicates<'a>(blobs: &mut KVVec<BoxBlob<'a>>) -> Result {
    let mut order = KVVec::with_capacity(blobs.len(), GFP_KERNEL)?;
    for i in 0..blobs.len() {
        order.push_within_capacity(i).map_err(|_| ENOMEM)?;
    }
    let key = box_key;
    // Of equal keys, the earlier slot comes first.
    heapsort(&mut order, |&a, &b| {
        let (ka, kb) = (blobs.get(a).and_then(key), blobs.get(b).and_then(key));
        ka.cmp(&kb).then(a.cmp(&b))
    });
    for pair in order.windows(2) {
        let (Some(&first), Some(&second)) = (pair.first(), pair.get(1)) else {
            continue;
        };
        let same = blobs.get(first).and_then(key) == blobs.get(second).and_then(key);
        if let Some(b) = blobs.get_mut(second).filter(|_| same) {
            pr_err!(
                "incoming hand-over: slot {}: a box of the same owner and name came first: lost\n",
                b.slot
            );
            b.lost = true;
        }
    }
    let mut kept = 0usize;
    for b in blobs.iter_mut().filter(|b| !b.lost) {
        kept = kept.saturating_add(1);
        if kept > format::limits::MAX_BOXES as usize {
            pr_err!(
                "incoming hand-over: slot {}: more boxes than the table holds: lost\n",
                b.slot
            );
            b.lost = true;
        }
    }
    Ok(())
}

/// The owner and name of the one box of blob `b`.
fn box_key<'a>(b: &BoxBlob<'a>) -> Option<(u32, &'a str)> {
    let x = b.view.boxes().next()?;
    Some((x.head.owner_uid, x.head.name))
}

/// Decodes and validates one blob.
fn decode_and_validate(bytes: &[u8]) -> core::result::Result<format::ManifestView<'_>, LoadError> {
    let view = format::decode(bytes)?;
    let mut scratch = KVVec::from_elem(0u64, format::scratch_len(&view), GFP_KERNEL)?;
    format::validate(&view, &mut scratch)?;
    Ok(view)
}

/// Resolves and checks the entries of `blobs`, refuses all memory named twice, and takes over
/// the boxes of the blobs not lost. Returns the blocks to free once no view of a blob is left;
/// `None` if the root names no box.
fn take_blobs(
    slots: usize,
    blobs: &mut KVVec<BoxBlob<'_>>,
    named: &mut KVVec<Named>,
    state: &mut Table,
) -> Result<Option<KVVec<u64>>> {
    if slots == 0 {
        return Ok(None);
    }
    if blobs.iter().all(|b| b.lost) {
        pr_err!("incoming hand-over: none of the {slots} boxes its root names is usable\n");
        return Err(EINVAL);
    }
    // Every record's memory is named, a lost box's too: whatever another record shares with
    // it is not trusted either.
    for (i, b) in blobs.iter_mut().enumerate() {
        resolve_chunks(i, b, named)?;
        b.verdicts = check(&b.view, &b.resolved, i, named).map_err(errno)?;
    }
    let contested = refuse_named_twice(named, blobs)?;
    // What debugfs shows: every box taken over, payloads inline up to a budget.
    state.incoming.raw = incoming_view(blobs).unwrap_or_else(|err| {
        pr_warn!("no copy of the hand-over is kept for debugfs: {err:?}\n");
        KVVec::new()
    });
    // Room for every block to free, before any box is taken over.
    let mut free = KVVec::with_capacity(named.len(), GFP_KERNEL)?;
    let mut taken = Taken::default();
    for b in blobs.iter_mut().filter(|b| !b.lost) {
        let built = build(
            &b.view,
            &mut b.resolved,
            &b.verdicts,
            &mut b.accepted,
            state,
        );
        match built {
            Ok(boxes) => {
                b.taken = true;
                for slot in boxes {
                    b.taken &= insert_box(state, slot, &mut taken);
                }
            }
            Err(err) => pr_err!(
                "incoming hand-over: slot {}: its box can't be taken over: {:?}: it is lost\n",
                b.slot,
                errno(err)
            ),
        }
    }
    taken.report(state);
    for (n, &contested) in named.iter().zip(contested.iter()) {
        let owned = match n.by {
            Namer::Blob(i) => blobs.get(i).is_some_and(|b| b.taken),
            Namer::Chunk { blob, entry } => blobs
                .get(blob)
                .filter(|b| b.taken)
                .and_then(|b| b.accepted.get(entry as usize))
                .is_some_and(|&a| a),
            Namer::Run { .. } | Namer::Refused => false,
        };
        if owned && !contested {
            free.push_within_capacity(n.start << kernel::page::PAGE_SHIFT)
                .map_err(|_| ENOMEM)?;
        }
    }
    Ok(Some(free))
}

/// The errno of a load error; a format error is `EINVAL`.
fn errno(err: LoadError) -> Error {
    match err {
        LoadError::Kernel(err) => err,
        LoadError::Format(_) => EINVAL,
    }
}

/// Adds the blocks each out-of-line payload of blob `b` (number `index`) names to `named`,
/// and, if the blob is not lost, copies out each chunked payload whose chunks are blocks KHO
/// preserved of exactly their size and whose bytes match the checksum. Nothing is freed.
fn resolve_chunks(index: usize, b: &mut BoxBlob<'_>, named: &mut KVVec<Named>) -> Result {
    let mut resolved = KVVec::with_capacity(b.view.entry_count() as usize, GFP_KERNEL)?;
    let mut entry = 0u32;
    for bx in b.view.boxes() {
        for e in bx.entries() {
            let by = Namer::Chunk { blob: index, entry };
            let bytes = match e.payload {
                Payload::Chunked(c) => {
                    for (i, phys) in c.chunks.iter().enumerate() {
                        let len = usize::try_from(c.chunk_len_at(i)).unwrap_or(usize::MAX);
                        name_if_preserved(named, phys, len, by)?;
                    }
                    let bytes = if b.lost { None } else { claim_chunks(&c) };
                    if bytes.is_none() && !b.lost {
                        pr_err!(
                            "incoming box {}: entry {}'s out-of-line payload is not what KHO preserved\n",
                            bx.head.name,
                            e.name
                        );
                    }
                    bytes
                }
                Payload::Preserved(p) => {
                    let len = usize::try_from(p.len).unwrap_or(usize::MAX);
                    name_if_preserved(named, p.phys, len, by)?;
                    None
                }
                Payload::Inline(_) => None,
            };
            resolved.push(bytes, GFP_KERNEL)?;
            entry = entry.saturating_add(1);
            cond_resched();
        }
    }
    b.resolved = resolved;
    Ok(())
}

/// The payload of `c`, copied out of its chunks; `None` unless every chunk is a block KHO
/// preserved of exactly the chunk's size and the bytes match the checksum, or if there is no
/// memory for the copy (the entry is then unavailable, and the log says why).
fn claim_chunks(c: &format::ChunkedRef<'_>) -> Option<KVVec<u8>> {
    // No longer than an inline payload may be: it is kept inline from now on.
    let len = usize::try_from(c.len)
        .ok()
        .filter(|&len| len <= format::limits::MAX_INLINE_LEN as usize)?;
    for (i, phys) in c.chunks.iter().enumerate() {
        let block = usize::try_from(c.chunk_len_at(i)).ok().and_then(block_len);
        if block.is_none() || kho::preserved_size(phys) != block {
            return None;
        }
    }
    let Ok(mut payload) = KVVec::with_capacity(len, GFP_KERNEL | __GFP_NOWARN) else {
        pr_err!("no memory to copy out a payload of {len} bytes\n");
        return None;
    };
    let mut crc = 0u32;
    for (i, phys) in c.chunks.iter().enumerate() {
        let want = usize::try_from(c.chunk_len_at(i)).ok()?;
        // SAFETY: Checked above: a preserved block of at least `want` bytes, which is not
        // freed before every record has been checked against every other.
        let bytes = unsafe { kho::preserved_bytes(phys, want) };
        crc = format::crc32c::crc32c_update(crc, bytes);
        // Within the capacity: `chunk_len_at` never passes `len` in all.
        payload.extend_from_slice(bytes, GFP_KERNEL).ok()?;
        cond_resched();
    }
    (crc == c.crc32c && payload.len() == len).then_some(payload)
}

/// Finds every page frame `named` lists twice, and refuses whoever names it, as nobody can
/// tell which of them lies: a blob's box is lost; an entry is corrupt. Sorts `named`, and
/// returns, for each of its records, whether it is refused.
fn refuse_named_twice(
    named: &mut KVVec<Named>,
    blobs: &mut KVVec<BoxBlob<'_>>,
) -> Result<KVVec<bool>> {
    heapsort(named, |a, b| (a.start, a.end).cmp(&(b.start, b.end)));
    let mut contested = KVVec::from_elem(false, named.len(), GFP_KERNEL)?;
    // The record reaching furthest so far: any later one starting below its end overlaps it.
    let mut reach: Option<(usize, u64)> = None;
    for (i, n) in named.iter().enumerate() {
        if let Some((r, end)) = reach {
            if n.start < end {
                for k in [r, i] {
                    if let Some(c) = contested.get_mut(k) {
                        *c = true;
                    }
                }
            }
            if n.end <= end {
                continue;
            }
        }
        reach = Some((i, n.end));
    }
    let mut refused = 0usize;
    for (n, _) in named.iter().zip(contested.iter()).filter(|(_, &c)| c) {
        refused = refused.saturating_add(1);
        match n.by {
            Namer::Refused => {}
            Namer::Blob(i) => {
                if let Some(b) = blobs.get_mut(i) {
                    b.lost = true;
                }
            }
            Namer::Chunk { blob, entry } | Namer::Run { blob, entry } => {
                let verdict = blobs
                    .get_mut(blob)
                    .and_then(|b| b.verdicts.get_mut(entry as usize));
                if let Some(v) = verdict {
                    // The page frame says where; finding the entry's offset would cost a walk
                    // of its box per record.
                    v.get_or_insert(format::Error::ForeignMemory {
                        offset: 0,
                        what: "a page another record of the hand-over names too",
                        pfn: n.start,
                    });
                }
            }
        }
    }
    if refused > 0 {
        pr_err!(
            "incoming hand-over: {refused} records name memory another one names: their boxes are lost, or their entries corrupt\n"
        );
    }
    Ok(contested)
}

/// One blob of every box of `blobs` not lost, with their out-of-line payloads inline up to
/// `VIEW_INLINE_MAX` bytes in all, and as references past that: what debugfs shows.
fn incoming_view(blobs: &[BoxBlob<'_>]) -> Result<KVVec<u8>> {
    let mut views = KVec::new();
    let mut payloads: KVec<&[Option<KVVec<u8>>]> = KVec::new();
    let mut inline = 0usize;
    for b in blobs.iter().filter(|b| !b.lost) {
        let bytes = b
            .resolved
            .iter()
            .map(|p| p.as_ref().map_or(0, |p| p.len()))
            .fold(0usize, usize::saturating_add);
        inline = inline.saturating_add(bytes);
        views.push(b.view.clone(), GFP_KERNEL)?;
        payloads.push(
            if inline <= VIEW_INLINE_MAX {
                b.resolved.as_slice()
            } else {
                &[]
            },
            GFP_KERNEL,
        )?;
    }
    if inline > VIEW_INLINE_MAX {
        pr_info!("debugfs shows payloads out of line past {VIEW_INLINE_MAX} bytes as references\n");
    }
    crate::combine::combine_views(&views, &payloads)
}

/// The per-entry checks of `view`, blob number `blob` (0 for a major-1 blob), with the
/// payloads of `resolved` (by entry, in manifest order) inline. Returns why each entry is
/// corrupt, and adds the memfd runs of the others to `named`.
fn check(
    view: &format::ManifestView<'_>,
    resolved: &[Option<KVVec<u8>>],
    blob: usize,
    named: &mut KVVec<Named>,
) -> core::result::Result<KVVec<Option<format::Error>>, LoadError> {
    let resolve = |i: u32| -> Option<&[u8]> { resolved.get(i as usize)?.as_deref() };
    let mut verdicts = KVVec::from_elem(None, view.entry_count() as usize, GFP_KERNEL)?;
    let mut spans = KVVec::from_elem(
        format::Span::default(),
        format::span_count_with(view, &resolve),
        GFP_KERNEL,
    )?;
    let used =
        format::check_entries_with(view, &resolve, &mut ThisKernel, &mut spans, &mut verdicts)?;
    named.reserve(used, GFP_KERNEL)?;
    for s in spans.iter().take(used) {
        let by = Namer::Run {
            blob,
            entry: s.entry,
        };
        named
            .push_within_capacity(Named {
                start: s.start,
                end: s.end,
                by,
            })
            .map_err(|_| ENOMEM)?;
    }
    Ok(verdicts)
}

/// Builds the incoming boxes of `view`, with ids from `table`, each with what it costs its
/// owner. `resolved` holds, by entry in manifest order, the payloads kept out of line and
/// copied out, which move into their entries; `verdicts` why each entry is corrupt;
/// `accepted` is set to whether each entry was taken over whole, with its payload. A box
/// without entries is left out: it would only take a name and a share of its owner's limits.
fn build(
    view: &format::ManifestView<'_>,
    resolved: &mut [Option<KVVec<u8>>],
    verdicts: &[Option<format::Error>],
    accepted: &mut KVVec<bool>,
    table: &mut Table,
) -> core::result::Result<KVec<Slot>, LoadError> {
    *accepted = KVVec::from_elem(false, view.entry_count() as usize, GFP_KERNEL)?;
    let mut next = 0usize;
    let mut slots = KVec::with_capacity(view.box_count() as usize, GFP_KERNEL)?;
    for b in view.boxes() {
        let first = next;
        next = next.saturating_add(b.entry_count() as usize);
        if b.entry_count() == 0 {
            pr_info!("incoming box {} is empty: left out\n", b.index);
            continue;
        }
        let Ok(name) = Name::from_bytes(b.head.name.as_bytes()) else {
            pr_err!(
                "incoming box {} skipped: its name doesn't fit the user API\n",
                b.index
            );
            continue;
        };
        let mut entries = KVec::with_capacity(b.entry_count() as usize, GFP_KERNEL)?;
        let mut names = RBTree::new();
        let mut charge = Usage {
            boxes: 1,
            ..Usage::default()
        };
        for (k, e) in b.entries().enumerate() {
            cond_resched();
            let at = first.saturating_add(k);
            // An entry keeps its index, which its dependents refer to, even when its name
            // doesn't fit the user API: it is then unavailable, under a placeholder name.
            let (entry_name, fits) = match Name::from_bytes(e.name.as_bytes()) {
                Ok(n) => (n, true),
                Err(_) => {
                    pr_err!(
                        "incoming box {}: entry {}'s name doesn't fit the user API\n",
                        name.as_str(),
                        e.index
                    );
                    (placeholder(e.index)?, false)
                }
            };
            let mut deps = KVec::with_capacity(e.dep_count() as usize, GFP_KERNEL)?;
            for d in e.deps() {
                deps.push(d, GFP_KERNEL)?;
            }
            let compatible = Name::from_bytes(e.handler.as_bytes());
            let mut corrupt = verdicts.get(at).cloned().flatten();
            let copied = resolved.get_mut(at).and_then(Option::take);
            // A payload out of line and not copied out is one whose chunks failed their checks.
            if !matches!(e.payload, Payload::Inline(_)) && copied.is_none() && corrupt.is_none() {
                corrupt = Some(format::Error::BadField {
                    offset: e.payload_offset,
                    what: "payload: not in the hand-over",
                });
            }
            if let Some(err) = corrupt {
                pr_err!(
                    "incoming box {}: entry {} is corrupt, and unavailable: {}\n",
                    name.as_str(),
                    entry_name.as_str(),
                    format_args!("{err}")
                );
            }
            let (payload, phase) = match (e.payload, copied, compatible) {
                (_, Some(bytes), Ok(_)) if fits && corrupt.is_none() => (bytes, Phase::Pending),
                (Payload::Inline(bytes), None, Ok(_)) if fits && corrupt.is_none() => {
                    let mut payload = KVVec::with_capacity(bytes.len(), GFP_KERNEL)?;
                    payload.extend_from_slice(bytes, GFP_KERNEL)?;
                    (payload, Phase::Pending)
                }
                _ => (KVVec::new(), Phase::Corrupt),
            };
            if let Some(a) = accepted.get_mut(at) {
                *a = matches!(phase, Phase::Pending);
            }
            // CAST: At most `MAX_ENTRIES_PER_BOX`. A placeholder that equals a real name
            // leaves the first of the two reachable.
            let index = entries.len() as u32;
            charge.entries = charge.entries.saturating_add(1);
            // CAST: `usize` fits `u64`.
            charge.bytes = charge.bytes.saturating_add(payload.len() as u64);
            if names.get(&entry_name).is_none() {
                names.try_create_and_insert(entry_name, index, GFP_KERNEL)?;
            }
            entries.push(
                InEntry {
                    name: entry_name,
                    compatible: match compatible {
                        Ok(c) => c,
                        Err(_) => Name::from_bytes(b"?")?,
                    },
                    version: e.payload_version,
                    deps,
                    dependents: 0,
                    payload,
                    phase,
                },
                GFP_KERNEL,
            )?;
        }
        for i in 0..entries.len() {
            depend(&mut entries, i, true);
        }
        let kind = Kind::Incoming(IncomingBox { entries, names });
        let fdbox = FdBox::new(
            table.new_id(),
            name,
            b.head.owner_uid,
            b.head.owner_gid,
            kind,
        )?;
        slots.push(
            Slot {
                fdbox,
                fds: 0,
                charged: charge,
            },
            GFP_KERNEL,
        )?;
    }
    Ok(slots)
}

extern "C" {
    fn fdbox_pfn_range_is_ram(pfn: u64, pages: u64) -> bool;
}

/// This kernel, as the per-entry checks of the incoming blob see it.
struct ThisKernel;

impl format::Machine for ThisKernel {
    fn page_shift(&self) -> u8 {
        // CAST: The page shift is 12 to 16.
        bindings::PAGE_SHIFT as u8
    }

    fn is_ram(&mut self, pfn: u64, pages: u64) -> bool {
        // SAFETY: No requirements; any page frame may be asked about.
        unsafe { fdbox_pfn_range_is_ram(pfn, pages) }
    }
}

/// `#INDEX`: the name of an entry whose own name doesn't fit the user API.
fn placeholder(index: u32) -> Result<Name> {
    let mut buf = [0u8; 16];
    let mut f = kernel::str::Formatter::new(&mut buf);
    core::fmt::Write::write_fmt(&mut f, format_args!("#{index}")).map_err(|_| EINVAL)?;
    let len = f.bytes_written();
    Name::from_bytes(buf.get(..len).ok_or(EINVAL)?)
}

/// The contents of incoming box `inner` (`EBUSY` for an outgoing box).
fn incoming_box(inner: &mut BoxInner) -> Result<&mut IncomingBox> {
    match &mut inner.kind {
        Kind::Incoming(inc) => Ok(inc),
        Kind::Outgoing(_) => Err(EBUSY),
    }
}

/// Restores entry `index` of `entries` with its handler; its dependencies are restored.
fn restore_one(entries: &mut [InEntry], index: usize) -> Result {
    let e = entries.get(index).ok_or(ENOENT)?;
    let handler = TABLE
        .lock()
        .handler_named(e.compatible.as_bytes())
        .ok_or(ENODATA)?
        .pin()?;
    let mut deps: KVec<*mut bindings::file> = KVec::with_capacity(e.deps.len(), GFP_KERNEL)?;
    for &d in e.deps.iter() {
        match entries.get(d as usize).map(|d| &d.phase) {
            Some(Phase::Restored(f) | Phase::Retrieved(Some(f))) => {
                deps.push(f.as_ptr(), GFP_KERNEL)?
            }
            _ => return Err(ENODATA),
        }
    }
    let mut out: *mut bindings::file = core::ptr::null_mut();
    // SAFETY: The payload is valid for its length; `deps` holds valid files, referenced by
    // their entries for the call; `out` is valid for writes.
    let ret = unsafe {
        (handler.get().ops().restore)(
            e.version,
            e.payload.as_ptr(),
            e.payload.len(),
            deps.as_ptr(),
            deps.len(),
            &mut out,
        )
    };
    let e = entries.get_mut(index).ok_or(ENOENT)?;
    if let Err(err) = kernel::error::to_result(ret) {
        if err == EACCES || err == EBUSY || err == ENOSPC || err == EINTR {
            // The handler consumed nothing (`Preservable::restore`): the entry stays pending,
            // for a caller with permission, or once what it needs is free again.
            return Err(err);
        }
        pr_warn!(
            "restore of entry {} ({} v{}) failed: {err:?}\n",
            e.name.as_str(),
            e.compatible.as_str(),
            e.version
        );
        e.phase = Phase::Failed;
        depend(entries, index, false);
        return Err(err);
    }
    let Some(out) = core::ptr::NonNull::new(out.cast::<File>()) else {
        e.phase = Phase::Failed;
        depend(entries, index, false);
        return Err(EINVAL);
    };
    // SAFETY: A successful `restore` stores a new file reference, which moves to us.
    e.phase = Phase::Restored(unsafe { ARef::from_raw(out) });
    e.payload = KVVec::new();
    depend(entries, index, false);
    Ok(())
}

/// Counts pending entry `index` among the dependents of each entry it depends on, or, once it
/// is no longer pending (`pending` false), no more: a retrieved entry that no pending entry
/// depends on any more drops its file, which is then userspace's alone.
fn depend(entries: &mut [InEntry], index: usize, pending: bool) {
    let Some(e) = entries.get(index) else {
        return;
    };
    if pending && !matches!(e.phase, Phase::Pending) {
        return;
    }
    for k in 0..e.deps.len() {
        let Some(&d) = entries.get(index).and_then(|e| e.deps.get(k)) else {
            break;
        };
        let Some(d) = entries.get_mut(d as usize) else {
            continue;
        };
        if pending {
            d.dependents = d.dependents.saturating_add(1);
            continue;
        }
        d.dependents = d.dependents.saturating_sub(1);
        if d.dependents == 0 {
            if let Phase::Retrieved(file) = &mut d.phase {
                // Dropped under the box lock: the last `fput` is deferred anyway.
                *file = None;
            }
        }
    }
}

/// `RETRIEVE`: restores entry `name` of box `b`, after its dependencies, and takes it.
pub(crate) fn retrieve(b: &FdBox, name: &Name) -> Result<ARef<File>> {
    if !may_manage(b.owner) {
        return Err(EPERM);
    }
    let mut inner = b.lock()?;
    let inc = incoming_box(&mut inner)?;
    let index = *inc.names.get(name).ok_or(ENOENT)? as usize;
    retrieve_in(&mut inc.entries, index)
}

/// Entry `index` and, transitively, the entries it depends on, ascending (dependencies first).
///
/// A walk over the dependencies only, so that retrieving every entry of a big box costs in
/// proportion to its size; `seen` marks entries already on the list.
fn closure(entries: &[InEntry], index: usize) -> Result<KVec<u32>> {
    let mut seen = KVVec::from_elem(false, index.saturating_add(1), GFP_KERNEL)?;
    let mut todo: KVec<u32> = KVec::new();
    let mut out: KVec<u32> = KVec::new();
    // CAST: At most `MAX_ENTRIES_PER_BOX`.
    todo.push(index as u32, GFP_KERNEL)?;
    while let Some(i) = todo.pop() {
        match seen.get_mut(i as usize) {
            Some(s) if !*s => *s = true,
            _ => continue,
        }
        out.push(i, GFP_KERNEL)?;
        for &d in entries
            .get(i as usize)
            .map(|e| e.deps.as_slice())
            .unwrap_or(&[])
        {
            todo.push(d, GFP_KERNEL)?;
        }
    }
    heapsort(&mut out, |a, b| a.cmp(b));
    Ok(out)
}

fn retrieve_in(entries: &mut KVec<InEntry>, index: usize) -> Result<ARef<File>> {
    let needed = closure(entries, index)?;
    // The states of just those entries, dependencies first.
    let mut status: KVec<(u32, u32)> = KVec::with_capacity(needed.len(), GFP_KERNEL)?;
    let table = TABLE.lock();
    for &i in needed.iter() {
        let e = entries.get(i as usize).ok_or(ENOENT)?;
        let deps_ok = e.deps.iter().all(|d| {
            needed
                .binary_search(d)
                .ok()
                .and_then(|k| status.get(k))
                .is_some_and(|&(s, _)| s != FDBOX_ENTRY_UNAVAILABLE && s != FDBOX_ENTRY_DISCARDED)
        });
        status.push(entry_state(&table, e, deps_ok), GFP_KERNEL)?;
    }
    drop(table);
    match status.last().map(|s| s.0) {
        Some(FDBOX_ENTRY_RESTORABLE) => {}
        Some(FDBOX_ENTRY_UNAVAILABLE) => return Err(ENODATA),
        _ => return Err(EBUSY),
    }
    for &i in needed.iter() {
        let pending = matches!(
            entries.get(i as usize).map(|e| &e.phase),
            Some(Phase::Pending)
        );
        if pending {
            restore_one(entries, i as usize)?;
        }
        cond_resched();
    }
    let e = entries.get_mut(index).ok_or(ENOENT)?;
    match core::mem::replace(&mut e.phase, Phase::Discarded) {
        Phase::Restored(file) => {
            e.phase = Phase::Retrieved((e.dependents > 0).then(|| file.clone()));
            Ok(file)
        }
        other => {
            e.phase = other;
            Err(EBUSY)
        }
    }
}

/// Puts back retrieved entry `name` of box `b`, whose fd could not be installed, with its
/// `file`.
pub(crate) fn unretrieve(b: &FdBox, name: &Name, file: ARef<File>) {
    // Not killable: the entry must be put back.
    let mut inner = b.inner.lock();
    if let Ok(inc) = incoming_box(&mut inner) {
        if let Some(&index) = inc.names.get(name) {
            if let Some(e) = inc.entries.get_mut(index as usize) {
                if matches!(e.phase, Phase::Retrieved(_)) {
                    e.phase = Phase::Restored(file);
                }
            }
        }
    }
}

/// Discards one entry; `EBUSY` if it was retrieved or discarded.
fn discard_one(b: &Name, e: &mut InEntry) -> Result {
    match &e.phase {
        Phase::Retrieved(_) | Phase::Discarded => return Err(EBUSY),
        // A failed `restore` freed what the entry held.
        Phase::Restored(_) | Phase::Failed => {}
        // Nothing a corrupt record names is trusted, so nothing is freed.
        Phase::Corrupt => pr_warn!(
            "box {}: entry {} is corrupt: discarded without freeing what it names, which stays reserved until the next kexec\n",
            b.as_str(),
            e.name.as_str()
        ),
        Phase::Pending => {
            let handler = TABLE
                .lock()
                .handler_named(e.compatible.as_bytes())
                .filter(|h| h.reads(e.version))
                .map(|h| h.pin());
            match handler {
                Some(h) => {
                    let h = h?;
                    // SAFETY: The payload is valid for its length.
                    unsafe { (h.get().ops().discard)(e.version, e.payload.as_ptr(), e.payload.len()) };
                }
                None => pr_warn!(
                    "box {}: entry {} discarded without its handler ({} v{}): its preserved memory stays reserved until the next kexec\n",
                    b.as_str(),
                    e.name.as_str(),
                    e.compatible.as_str(),
                    e.version
                ),
            }
        }
    }
    e.phase = Phase::Discarded;
    e.payload = KVVec::new();
    Ok(())
}

/// `DISCARD`: frees entry `name` of box `b`, or every entry not retrieved.
pub(crate) fn discard(b: &FdBox, name: Option<&Name>) -> Result {
    if !may_manage(b.owner) {
        return Err(EPERM);
    }
    let mut inner = b.lock()?;
    let inc = incoming_box(&mut inner)?;
    match name {
        Some(name) => {
            let index = *inc.names.get(name).ok_or(ENOENT)? as usize;
            let e = inc.entries.get_mut(index).ok_or(ENOENT)?;
            let was_pending = matches!(e.phase, Phase::Pending);
            discard_one(&b.name, e)?;
            if was_pending {
                depend(&mut inc.entries, index, false);
            }
            Ok(())
        }
        None => {
            for index in 0..inc.entries.len() {
                let Some(e) = inc.entries.get_mut(index) else {
                    break;
                };
                let was_pending = matches!(e.phase, Phase::Pending);
                if discard_one(&b.name, e).is_ok() && was_pending {
                    depend(&mut inc.entries, index, false);
                }
                cond_resched();
            }
            Ok(())
        }
    }
}
