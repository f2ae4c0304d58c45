// SPDX-License-Identifier: GPL-2.0

//! The incoming side: taking over the previous kernel's blob, restoring entries in dependency
//! order, and discarding what nobody claims.

use crate::{
    fdbox_format::{
        self as format,
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
    format::limits::MAX_BODY_LEN as usize + format::limits::MAX_HEADER_LEN as usize;

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
        Ok(Retrieved::Blob(raw)) => raw,
        Ok(Retrieved::TooLarge(len)) => {
            pr_err!("incoming hand-over unusable: {len} bytes, more than {MAX_BLOB}\n");
            state.incoming.status = FDBOX_INCOMING_UNUSABLE;
            state.incoming.errno = Some(E2BIG);
            return true;
        }
        Ok(Retrieved::NotPreserved { size, preserved }) => {
            pr_err!(
                "incoming hand-over unusable: it claims {size} bytes, and KHO preserved {preserved} there\n"
            );
            state.incoming.status = FDBOX_INCOMING_UNUSABLE;
            state.incoming.errno = Some(EINVAL);
            return true;
        }
        Err(err) => {
            pr_err!("incoming hand-over unusable: can't retrieve it: {err:?}\n");
            state.incoming.status = FDBOX_INCOMING_UNUSABLE;
            state.incoming.errno = Some(err);
            return true;
        }
    };
    match build(&raw, state) {
        Ok(slots) => {
            let n_boxes = slots.len();
            let mut n_entries = 0usize;
            for slot in slots {
                n_entries = n_entries.saturating_add(slot.charged.entries as usize);
                let (owner, charge) = (slot.fdbox.owner, slot.charged);
                if state.quotas.force(owner, &charge).is_err() {
                    pr_err!("out of memory taking over the hand-over\n");
                    continue;
                }
                if state.insert(slot).is_err() {
                    state.quotas.uncharge(owner, &charge);
                    pr_err!("out of memory taking over the hand-over\n");
                }
            }
            state.incoming.status = FDBOX_INCOMING_OK;
            pr_info!("took over {n_boxes} boxes with {n_entries} entries\n");
        }
        Err(LoadError::Format(err)) => {
            pr_err!("incoming hand-over unusable: {}\n", format_args!("{err}"));
            state.incoming.status = FDBOX_INCOMING_UNUSABLE;
            state.incoming.error = Some(err);
        }
        Err(LoadError::Kernel(err)) => {
            pr_err!("incoming hand-over unusable: {err:?}\n");
            state.incoming.status = FDBOX_INCOMING_UNUSABLE;
            state.incoming.errno = Some(err);
        }
    }
    state.incoming.raw = raw;
    true
}

/// Decodes and validates `raw` into incoming boxes, with ids from `table`, each with what it
/// costs its owner. A box without entries is left out: it would only take a name and a share
/// of its owner's limits.
fn build(raw: &[u8], table: &mut Table) -> core::result::Result<KVec<Slot>, LoadError> {
    let view = format::decode(raw)?;
    let mut scratch = KVVec::from_elem(0u64, format::scratch_len(&view), GFP_KERNEL)?;
    format::validate(&view, &mut scratch)?;
    drop(scratch);
    // The per-entry checks: what each payload names must be this kernel's RAM,
    // at its page size, and no page may be named twice.
    let mut verdicts = KVVec::from_elem(None, view.entry_count() as usize, GFP_KERNEL)?;
    let mut spans = KVVec::from_elem(
        format::Span::default(),
        format::span_count(&view),
        GFP_KERNEL,
    )?;
    format::check_entries(&view, &mut ThisKernel, &mut spans, &mut verdicts)?;
    drop(spans);
    let mut verdicts = verdicts.iter();
    let mut slots = KVec::with_capacity(view.box_count() as usize, GFP_KERNEL)?;
    for b in view.boxes() {
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
        for e in b.entries() {
            cond_resched();
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
            let corrupt = verdicts.next().copied().flatten();
            if let Some(err) = corrupt {
                pr_err!(
                    "incoming box {}: entry {} is corrupt, and unavailable: {}\n",
                    name.as_str(),
                    entry_name.as_str(),
                    format_args!("{err}")
                );
            }
            let (payload, phase) = match (e.payload, compatible) {
                (Payload::Inline(bytes), Ok(_)) if fits && corrupt.is_none() => {
                    let mut payload = KVVec::with_capacity(bytes.len(), GFP_KERNEL)?;
                    payload.extend_from_slice(bytes, GFP_KERNEL)?;
                    (payload, Phase::Pending)
                }
                // Payloads in separately preserved memory are not written by this version.
                _ => (KVVec::new(), Phase::Corrupt),
            };
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
                    payload,
                    phase,
                },
                GFP_KERNEL,
            )?;
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
            Some(Phase::Restored(f) | Phase::Retrieved(f)) => deps.push(f.as_ptr(), GFP_KERNEL)?,
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
        pr_warn!(
            "restore of entry {} ({} v{}) failed: {err:?}\n",
            e.name.as_str(),
            e.compatible.as_str(),
            e.version
        );
        e.phase = Phase::Failed;
        return Err(err);
    }
    let Some(out) = core::ptr::NonNull::new(out.cast::<File>()) else {
        e.phase = Phase::Failed;
        return Err(EINVAL);
    };
    // SAFETY: A successful `restore` stores a new file reference, which moves to us.
    e.phase = Phase::Restored(unsafe { ARef::from_raw(out) });
    e.payload = KVVec::new();
    Ok(())
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
    out.sort_unstable();
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
            e.phase = Phase::Retrieved(file.clone());
            Ok(file)
        }
        other => {
            e.phase = other;
            Err(EBUSY)
        }
    }
}

/// Puts back a retrieved entry of box `b` whose fd could not be installed.
pub(crate) fn unretrieve(b: &FdBox, name: &Name) {
    // Not killable: the entry must be put back.
    let mut inner = b.inner.lock();
    if let Ok(inc) = incoming_box(&mut inner) {
        if let Some(&index) = inc.names.get(name) {
            if let Some(e) = inc.entries.get_mut(index as usize) {
                if let Phase::Retrieved(file) = core::mem::replace(&mut e.phase, Phase::Discarded) {
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
            discard_one(&b.name, e)
        }
        None => {
            for e in inc.entries.iter_mut() {
                let _ = discard_one(&b.name, e);
                cond_resched();
            }
            Ok(())
        }
    }
}
