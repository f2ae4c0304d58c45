// SPDX-License-Identifier: GPL-2.0

//! The outgoing side: adding and removing entries, sealing, cancelling, and the blob handed
//! to the next kernel.

use crate::{
    fdbox_format::{
        crc32c::crc32c_update,
        limits::MAX_BOX_BLOB_LEN,
        root,
        validate::heapsort,
        BoxHead,
        BoxState,
        ChunkedRef,
        Chunks,
        Encoder,
        EntryRecord,
        Payload, //
    },
    kho::{
        self,
        Preserved,
        Subtree, //
    },
    preservable::{
        DepSink,
        HandlerOps,
        Settled, //
    },
    quota::Usage,
    state::{
        cond_resched,
        dep_indices,
        file_key,
        may_manage,
        BoxInner,
        FdBox,
        HandlerState,
        Kind,
        OutEntry,
        Outgoing,
        TABLE, //
    },
    uapi::*, //
};
use core::sync::atomic::{
    AtomicBool,
    Ordering, //
};
use kernel::{
    alloc::flags::GFP_KERNEL_ACCOUNT,
    ffi::c_void,
    fs::File,
    page::PAGE_SIZE,
    prelude::*,
    rbtree::RBTreeNodeReservation,
    sync::{
        aref::ARef,
        Arc, //
    },
    time::{
        delay::fsleep,
        Delta, //
    }, //
};

extern "C" {
    fn fdbox_kernel_release() -> *const kernel::ffi::c_char;
    fn fdbox_handover_test_pause();
    fn fdbox_inline_max() -> usize;
}

kernel::sync::global_lock! {
    // SAFETY: Initialized in the module's init, before anything can use it.
    pub(crate) unsafe(uninit) static HANDOVER: Mutex<HandOver> = HandOver::new();
}

/// A sealed box, as the hand-over carries it.
struct SealedBox {
    /// The box's id.
    id: u64,
    /// Its slot in the root.
    slot: u32,
    /// Its blob, complete, in a KHO block of its own that the slot names.
    blob: Preserved,
}

/// Slots in the root: one per box the table can hold.
const ROOT_SLOTS: u32 = FDBOX_MAX_BOXES;

/// The hand-over: what the next kernel gets.
///
/// One root, registered with KHO at the first `SEAL` and kept until the module goes, names
/// each sealed box's blob from a slot of its own. `SEAL` writes one slot and `CANCEL` clears
/// it, under this lock, which the reboot notifier takes before a kexec: the next kernel finds
/// every box sealed before the kexec began, and no other, however many there are.
pub(crate) struct HandOver {
    /// The sealed boxes, in the order they were sealed.
    sealed: KVec<SealedBox>,
    /// The root, once a box has been sealed.
    root: Option<Subtree>,
    /// The root's free slots, the lowest last.
    free: KVec<u32>,
    /// What debugfs shows: one blob of every sealed box, payloads inline; built on demand.
    view: Option<KVVec<u8>>,
}

impl HandOver {
    /// Nothing to hand over.
    pub(crate) const fn new() -> Self {
        Self {
            sealed: KVec::new(),
            root: None,
            free: KVec::new(),
            view: None,
        }
    }

    /// One blob of every sealed box, with their out-of-line payloads inline: the outgoing
    /// hand-over as `fdbox inspect` reads it. Empty when no box is sealed.
    pub(crate) fn view(&mut self) -> Result<&[u8]> {
        if self.view.is_none() {
            let blobs = self.sealed.iter().map(|s| s.blob.as_slice());
            // SAFETY: Under this lock, every sealed box's chunks stay allocated: `CANCEL`, and
            // anything else that unseals a box, first takes its slot back under this lock.
            let combined = crate::combine::combine(blobs, |c| unsafe { read_own_chunks(c) })?;
            self.view = Some(combined);
        }
        Ok(self.view.as_deref().unwrap_or(&[]))
    }

    /// Hands nothing over, for the module's exit.
    pub(crate) fn clear(&mut self) {
        self.sealed.clear();
        self.root = None;
        self.free.clear();
        self.view = None;
    }

    /// Registers the root, empty, if it isn't yet.
    fn ensure_root(&mut self) -> Result {
        if self.root.is_some() {
            return Ok(());
        }
        // CAST: A small constant.
        let mut free = KVec::with_capacity(ROOT_SLOTS as usize, GFP_KERNEL)?;
        for slot in (0..ROOT_SLOTS).rev() {
            free.push_within_capacity(slot).map_err(|_| ENOMEM)?;
        }
        let mut mem = Preserved::new(root::root_len(ROOT_SLOTS))?;
        root::init_root(mem.as_mut_slice(), ROOT_SLOTS).map_err(encode_failed)?;
        self.root = Some(mem.register(kho::SUBTREE)?);
        self.free = free;
        Ok(())
    }

    /// Hands box `id`'s `blob` over: writes it into a free slot of the root.
    fn add(&mut self, id: u64, blob: Preserved) -> Result {
        handover_open()?;
        self.ensure_root()?;
        self.sealed.reserve(1, GFP_KERNEL)?;
        let len = u32::try_from(blob.len()).map_err(|_| EINVAL)?;
        let (phys, slot) = (blob.phys(), self.free.pop().ok_or(ENOSPC)?);
        let root = self.root.as_mut().ok_or(EINVAL)?;
        // SAFETY: No requirements.
        unsafe { fdbox_handover_test_pause() };
        if let Err(err) = root::write_slot(root.as_mut_slice(), slot, Some((phys, len))) {
            // Back where it was, in the room its removal left.
            let _ = self.free.push_within_capacity(slot);
            return Err(encode_failed(err));
        }
        let sealed = SealedBox { id, slot, blob };
        // Reserved above: it can't fail.
        let _ = self.sealed.push_within_capacity(sealed);
        self.view = None;
        Ok(())
    }

    /// Forgets box `id` once a kexec has started: its slot and its blob stay as the kexec
    /// finds them, and the view no longer reads the box's chunks, which go with its entries.
    fn forget(&mut self, id: u64) {
        if let Some(pos) = self.sealed.iter().position(|s| s.id == id) {
            if let Ok(sealed) = self.sealed.remove(pos) {
                // The slot names it: it stays preserved for the kexec under way.
                core::mem::forget(sealed);
            }
        }
        self.view = None;
    }

    /// Takes box `id` out of the hand-over: clears its slot.
    fn take(&mut self, id: u64) -> Option<SealedBox> {
        let pos = self.sealed.iter().position(|s| s.id == id)?;
        let sealed = self.sealed.remove(pos).ok()?;
        if let Some(root) = self.root.as_mut() {
            // A slot this kernel handed out is in the root: clearing it can't fail.
            let _ = root::write_slot(root.as_mut_slice(), sealed.slot, None);
        }
        // `take` always follows an `add`, which left room for the slot.
        let _ = self.free.push_within_capacity(sealed.slot);
        self.view = None;
        Some(sealed)
    }
}

/// Reads the payload of `c` from chunks this kernel preserved for a sealed box.
///
/// # Safety
///
/// The chunks must be allocated and not change while this runs.
unsafe fn read_own_chunks(c: &ChunkedRef<'_>) -> Option<KVVec<u8>> {
    let len = usize::try_from(c.len).ok()?;
    let mut payload = KVVec::with_capacity(len, GFP_KERNEL).ok()?;
    for (i, phys) in c.chunks.iter().enumerate() {
        let n = usize::try_from(c.chunk_len_at(i)).ok()?;
        // SAFETY: By the safety requirements, the chunk holds `n` bytes and stays.
        let chunk = unsafe { kho::preserved_bytes(phys, n) };
        payload.extend_from_slice(chunk, GFP_KERNEL).ok()?;
    }
    Some(payload)
}

/// The size of each chunk of an out-of-line payload but the last: a KHO block small enough
/// to be had on a fragmented host, large enough that a gigabyte of payload needs only
/// thousands.
const CHUNK_LEN: usize = 256 << 10;

/// An entry's payload preserved out of line, in chunks of KHO memory of its own; freed on
/// drop, at `CANCEL`.
pub(crate) struct OutOfLine {
    /// The chunks, in payload order; dropping them frees them.
    _chunks: KVec<Preserved>,
    /// Their physical addresses.
    phys: KVec<u64>,
    /// The payload's length.
    len: u64,
    /// CRC32C of the payload.
    crc32c: u32,
}

impl OutOfLine {
    /// Copies `payload` into chunks of preserved memory.
    fn new(payload: &[u8]) -> Result<Self> {
        let n = payload.len().div_ceil(CHUNK_LEN);
        let mut chunks = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut phys = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut crc = 0u32;
        for part in payload.chunks(CHUNK_LEN) {
            let mut chunk = Preserved::new(part.len())?;
            chunk.as_mut_slice().copy_from_slice(part);
            crc = crc32c_update(crc, part);
            phys.push_within_capacity(chunk.phys())
                .map_err(|_| ENOMEM)?;
            chunks.push_within_capacity(chunk).map_err(|_| ENOMEM)?;
            cond_resched();
        }
        Ok(Self {
            _chunks: chunks,
            phys,
            // CAST: `usize` fits `u64`.
            len: payload.len() as u64,
            crc32c: crc,
        })
    }

    /// The reference the box's blob carries.
    fn as_ref(&self) -> ChunkedRef<'_> {
        ChunkedRef {
            len: self.len,
            crc32c: self.crc32c,
            // CAST: A constant below 4 MiB.
            chunk_len: CHUNK_LEN as u32,
            chunks: Chunks::List(&self.phys),
        }
    }
}

/// Set once a kexec or reboot has started: from then on no `SEAL` or `CANCEL` replaces the
/// hand-over.
static HANDOVER_FINAL: AtomicBool = AtomicBool::new(false);

/// How long the reboot notifier waits for a replacement of the hand-over to finish.
const FINAL_WAIT_MS: i64 = 10_000;
/// How often it looks.
const FINAL_POLL_MS: i64 = 10;

/// Called by the reboot notifier (`fdbox_core_c.c`) once a kexec or reboot has started: makes
/// every later `SEAL` and `CANCEL` fail before it changes anything, then waits for one that is
/// replacing the hand-over, which holds [`HANDOVER`], to finish. The KHO subtree then holds the
/// state before or after each of them, never a mix or nothing.
///
/// Nothing holds [`HANDOVER`] across a handler callback, so only a replacement of the blob
/// can delay a kexec; it still waits at most `FINAL_WAIT_MS`.
#[no_mangle]
extern "C" fn fdbox_close_handover() {
    HANDOVER_FINAL.store(true, Ordering::SeqCst);
    for _ in 0..FINAL_WAIT_MS / FINAL_POLL_MS {
        if HANDOVER.try_lock().is_some() {
            pr_info!("the hand-over is final: a kexec or reboot has started\n");
            return;
        }
        fsleep(Delta::from_millis(FINAL_POLL_MS));
    }
    pr_warn!(
        "a replacement of the hand-over has taken {FINAL_WAIT_MS} ms: the kexec goes on with the hand-over as it is\n"
    );
}

/// Whether the hand-over is final: a kexec or reboot has started.
pub(crate) fn handover_final() -> bool {
    HANDOVER_FINAL.load(Ordering::SeqCst)
}

/// `EBUSY` once the hand-over is final.
fn handover_open() -> Result {
    if handover_final() {
        pr_info!("a kexec or reboot has started: the hand-over can't change any more\n");
        return Err(EBUSY);
    }
    Ok(())
}

/// The most files one entry may depend on.
// CAST: A small constant.
const MAX_DEPS: usize = crate::fdbox_format::limits::MAX_DEPS as usize;

// A box's blob is one KHO block.
const _: () =
    assert!(MAX_BOX_BLOB_LEN == kernel::page::PAGE_SIZE << kernel::bindings::MAX_PAGE_ORDER);

/// The version string written into the blob.
const FDBOX_VERSION: &str = "fdbox_core 0.1";

/// The contents of box `inner`, if it is an open outgoing box (`EBUSY` otherwise).
fn open_box(inner: &mut BoxInner) -> Result<&mut Outgoing> {
    match &mut inner.kind {
        Kind::Outgoing(out) if !out.sealed => Ok(out),
        _ => Err(EBUSY),
    }
}

/// `DepSink::add` of the core: takes a reference to `file` into a `KVec<ARef<File>>`.
///
/// # Safety
///
/// `ctx` must point to a `KVec<ARef<File>>` exclusive to the call; `file` must be valid.
unsafe extern "C" fn dep_add(ctx: *mut c_void, file: *mut kernel::bindings::file) -> i32 {
    // SAFETY: By the safety requirements.
    let deps = unsafe { &mut *ctx.cast::<KVec<ARef<File>>>() };
    if deps.len() >= MAX_DEPS {
        return ENOSPC.to_errno();
    }
    // SAFETY: `file` is valid for the call; `File` is a transparent wrapper of it.
    let file = unsafe { &*file.cast::<File>() };
    // A box fd can't be in a box, so it can't be a dependency either.
    if crate::is_fdbox_file(file) {
        return EINVAL.to_errno();
    }
    // `ARef::from` takes a new reference.
    let file = ARef::from(file);
    match deps.push(file, GFP_KERNEL_ACCOUNT) {
        Ok(()) => 0,
        Err(_) => ENOMEM.to_errno(),
    }
}

/// A file claimed for an entry: marked boxed, so that no other `ADD` prepares it, and one
/// entry charged to the box owner. Dropping it, once the entry is unprepared, gives both back.
pub(crate) struct Claim {
    key: usize,
    owner: u32,
}

impl Claim {
    /// Claims `file` for an entry of a box of `owner`.
    fn new(file: &File, owner: u32) -> Result<Self> {
        let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let mut table = TABLE.lock();
        table.mark_boxed(file, node)?;
        let key = file_key(file);
        if let Err(err) = table.quotas.charge(owner, &ENTRY, 0) {
            table.unmark_boxed(key);
            return Err(err);
        }
        Ok(Self { key, owner })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut table = TABLE.lock();
        table.unmark_boxed(self.key);
        table.quotas.uncharge(self.owner, &ENTRY);
    }
}

/// The charge of one entry.
const ENTRY: Usage = Usage {
    boxes: 0,
    entries: 1,
    bytes: 0,
};

/// `ADD`: prepares `file` as entry `name` of box `b`.
pub(crate) fn add(b: &FdBox, name: Name, file: ARef<File>) -> Result {
    if !may_manage(b.owner) {
        return Err(EPERM);
    }
    let mut inner = b.lock()?;
    {
        let out = open_box(&mut inner)?;
        // CAST: A small constant.
        if out.entries.len() >= FDBOX_MAX_ENTRIES as usize {
            return Err(ENOSPC);
        }
        if out.names.get(&name).is_some() {
            return Err(EEXIST);
        }
        // Reserved now, so that nothing can fail once the file is prepared; charged to the
        // caller's memory cgroup.
        out.entries.reserve(1, GFP_KERNEL_ACCOUNT)?;
    }
    if crate::is_fdbox_file(&file) {
        return Err(EOPNOTSUPP);
    }
    let claim = Claim::new(&file, b.owner)?;
    let handlers = TABLE.lock().pinned_handlers()?;
    let handler = handlers
        .into_iter()
        // SAFETY: `file` is valid for the call.
        .find(|h| unsafe { (h.get().ops().can_preserve)(file.as_ptr()) })
        .ok_or(EOPNOTSUPP)?;
    let name_node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
    let mut deps: KVec<ARef<File>> = KVec::new();
    let mut sink = DepSink {
        ctx: (&raw mut deps).cast(),
        add: dep_add,
    };
    let mut prepared: *mut c_void = core::ptr::null_mut();
    // SAFETY: `file` is valid; the sink and `prepared` are valid for the call.
    let ret = unsafe { (handler.get().ops().prepare)(file.as_ptr(), &mut sink, &mut prepared) };
    kernel::error::to_result(ret)?;
    // INVARIANT: `prepare` succeeded for `file`.
    let entry = OutEntry {
        _claim: claim,
        name,
        handler,
        file,
        state: HandlerState(prepared),
        deps,
        dep_pos: KVec::new(),
        payload: KVVec::new(),
        out_of_line: None,
        payload_len: 0,
        version: 0,
        serialized: false,
        owner: b.owner,
    };
    // A built-in handler that unregistered meanwhile has already swept this box.
    let registered = TABLE
        .lock()
        .handlers()
        .iter()
        .any(|h| core::ptr::eq(h.ops(), entry.handler.get().ops()));
    if !registered {
        drop(inner);
        return Err(ENODEV);
    }
    let out = open_box(&mut inner)?;
    out.names.insert(name_node.into_node(name, ()));
    out.entries
        .push_within_capacity(entry)
        .map_err(|_| ENOMEM)?;
    b.publish(&inner);
    Ok(())
}

/// `FDBOX_SETTLE_FD`: lets the handler of `file` move its memory where a hand-over can keep it.
/// No lock is held across the callback, which may migrate gigabytes.
pub(crate) fn settle(file: &File, flags: u32) -> Result<Settled> {
    if crate::is_fdbox_file(file) {
        return Err(EOPNOTSUPP);
    }
    // The handler's own check, under the file's lock, closes the race with an `ADD`.
    if TABLE.lock().is_boxed(file) {
        return Err(EBUSY);
    }
    let handlers = TABLE.lock().pinned_handlers()?;
    let handler = handlers
        .into_iter()
        // SAFETY: `file` is valid for the call.
        .find(|h| unsafe { (h.get().ops().can_preserve)(file.as_ptr()) })
        .ok_or(EOPNOTSUPP)?;
    let settle = handler.get().ops().settle.ok_or(EOPNOTSUPP)?;
    let mut settled = Settled::default();
    // SAFETY: `file` is valid and its handler accepts it; `settled` is valid for writes.
    kernel::error::to_result(unsafe { settle(file.as_ptr(), flags, &mut settled) })?;
    Ok(settled)
}

/// `REMOVE`: unprepares entry `name` of box `b`.
pub(crate) fn remove(b: &FdBox, name: &Name) -> Result {
    if !may_manage(b.owner) {
        return Err(EPERM);
    }
    let mut inner = b.lock()?;
    let out = open_box(&mut inner)?;
    let index = out
        .entries
        .iter()
        .position(|e| e.name == *name)
        .ok_or(ENOENT)?;
    let file = out.entries.get(index).ok_or(ENOENT)?.file.as_ptr();
    let needed = out
        .entries
        .iter()
        .any(|e| e.deps.iter().any(|d| core::ptr::eq(d.as_ptr(), file)));
    if needed {
        return Err(EBUSY);
    }
    let entry = out.take(index).ok_or(ENOENT)?;
    b.publish(&inner);
    drop(inner);
    // Unprepared outside the box's lock.
    drop(entry);
    Ok(())
}

/// Orders `entries` so that every entry comes after the entries it depends on, and records
/// each entry's dependency positions. `ENOENT` for a dependency outside the box, `ELOOP` for
/// a cycle.
fn plan(entries: &mut KVVec<OutEntry>) -> Result<KVec<u32>> {
    let n = entries.len();
    let dep_index = dep_indices(entries, false)?;
    // Kahn's algorithm: an entry is placed once every entry it depends on is.
    let mut waiting: KVec<u32> = KVec::with_capacity(n, GFP_KERNEL)?;
    let mut dependents: KVec<KVec<u32>> = KVec::with_capacity(n, GFP_KERNEL)?;
    for list in dep_index.iter() {
        // CAST: At most `MAX_DEPS`.
        waiting.push(list.len() as u32, GFP_KERNEL)?;
        dependents.push(KVec::new(), GFP_KERNEL)?;
    }
    for (i, list) in dep_index.iter().enumerate() {
        for &d in list.iter() {
            // CAST: At most `FDBOX_MAX_ENTRIES`.
            dependents
                .get_mut(d as usize)
                .ok_or(EINVAL)?
                .push(i as u32, GFP_KERNEL)?;
        }
    }
    let mut order: KVec<u32> = KVec::with_capacity(n, GFP_KERNEL)?;
    for (i, &w) in waiting.iter().enumerate() {
        if w == 0 {
            // CAST: At most `FDBOX_MAX_ENTRIES`.
            order.push(i as u32, GFP_KERNEL)?;
        }
    }
    let mut head = 0;
    while let Some(&i) = order.get(head) {
        head += 1;
        for &j in dependents
            .get(i as usize)
            .map(|l| l.as_slice())
            .unwrap_or(&[])
        {
            let w = waiting.get_mut(j as usize).ok_or(EINVAL)?;
            *w = w.saturating_sub(1);
            if *w == 0 {
                order.push(j, GFP_KERNEL)?;
            }
        }
    }
    if order.len() < n {
        return Err(ELOOP);
    }
    let mut pos: KVec<Option<u32>> = KVec::from_elem(None, n, GFP_KERNEL)?;
    for (at, &i) in order.iter().enumerate() {
        if let Some(p) = pos.get_mut(i as usize) {
            // CAST: At most `FDBOX_MAX_ENTRIES`.
            *p = Some(at as u32);
        }
    }
    for (i, e) in entries.iter_mut().enumerate() {
        let mut all: KVec<u32> = KVec::new();
        for &d in dep_index.get(i).map(|v| v.as_slice()).unwrap_or(&[]) {
            if let Some(Some(p)) = pos.get(d as usize) {
                all.push(*p, GFP_KERNEL)?;
            }
        }
        heapsort(&mut all, |a, b| a.cmp(b));
        // The format wants each dependency once, ascending.
        let mut dep_pos: KVec<u32> = KVec::with_capacity(all.len(), GFP_KERNEL)?;
        for &p in all.iter() {
            if dep_pos.last() != Some(&p) {
                dep_pos.push(p, GFP_KERNEL)?;
            }
        }
        e.dep_pos = dep_pos;
    }
    Ok(order)
}

/// Serializes entry `i`, telling it where its dependencies will be at restore.
fn serialize_at(entries: &mut KVVec<OutEntry>, order: &[u32], i: usize, previous: bool) -> Result {
    let e = entries.get(i).ok_or(EINVAL)?;
    let mut files = KVec::with_capacity(e.dep_pos.len(), GFP_KERNEL)?;
    for &p in e.dep_pos.iter() {
        let j = *order.get(p as usize).ok_or(EINVAL)?;
        files.push(
            entries.get(j as usize).ok_or(EINVAL)?.file.as_ptr(),
            GFP_KERNEL,
        )?;
    }
    entries
        .get_mut(i)
        .ok_or(EINVAL)?
        .serialize(&files, previous)
}

/// `SEAL`: serializes every entry of box `b` and hands the box over; all or nothing.
/// `flags` are `FDBOX_SEAL_*`, already checked.
pub(crate) fn seal(b: &FdBox, flags: u32) -> Result {
    if !may_manage(b.owner) {
        return Err(EPERM);
    }
    handover_open()?;
    let mut inner = b.lock()?;
    let out = open_box(&mut inner)?;
    let entries = &mut out.entries;
    let order = plan(entries)?;
    let previous = flags & FDBOX_SEAL_PREVIOUS != 0;
    for (done, &i) in order.iter().enumerate() {
        if let Err(err) = serialize_at(entries, &order, i as usize, previous) {
            for &j in order.iter().take(done).rev() {
                if let Some(e) = entries.get_mut(j as usize) {
                    e.unserialize();
                }
            }
            return Err(err);
        }
        cond_resched();
    }
    out.sealed = true;
    out.seal_flags = flags;
    out.order = order;
    let sealed = preserve_box(b, out).and_then(|blob| HANDOVER.lock().add(b.id, blob));
    if let Err(err) = sealed {
        unseal(out);
        return Err(err);
    }
    // The blob and the chunks hold the payloads now.
    for e in out.entries.iter_mut() {
        e.payload = KVVec::new();
    }
    b.publish(&inner);
    Ok(())
}

/// Moves the payloads of `out` longer than `threshold` bytes out of line.
fn move_out_of_line(out: &mut Outgoing, threshold: usize) -> Result {
    for e in out.entries.iter_mut() {
        if e.out_of_line.is_none() && e.payload.len() > threshold {
            e.out_of_line = Some(OutOfLine::new(&e.payload)?);
        }
        cond_resched();
    }
    Ok(())
}

/// What a chunked reference costs in a blob at most, beside its chunks' addresses.
const CHUNKED_REF_LEN: usize = 32;

/// Moves the longest inline payloads of `out` out of line until its blob, `len` bytes now,
/// fits a KHO block: what a box of many mid-sized payloads needs.
fn shrink_to_fit(out: &mut Outgoing, len: usize) -> Result {
    let mut inline: KVVec<(usize, usize)> = KVVec::with_capacity(out.entries.len(), GFP_KERNEL)?;
    for (i, e) in out.entries.iter().enumerate() {
        if e.out_of_line.is_none() {
            inline
                .push_within_capacity((e.payload.len(), i))
                .map_err(|_| ENOMEM)?;
        }
    }
    heapsort(&mut inline, |a, b| b.cmp(a));
    // A page of room for what the estimate misses.
    let mut over = len
        .saturating_sub(MAX_BOX_BLOB_LEN)
        .saturating_add(PAGE_SIZE);
    for &(payload_len, i) in inline.iter() {
        let chunks = payload_len.div_ceil(CHUNK_LEN);
        let added = CHUNKED_REF_LEN.saturating_add(chunks.saturating_mul(10));
        // Longest first: once moving saves nothing, nothing after it will.
        if over == 0 || payload_len <= added {
            break;
        }
        let e = out.entries.get_mut(i).ok_or(EINVAL)?;
        e.out_of_line = Some(OutOfLine::new(&e.payload)?);
        over = over.saturating_sub(payload_len.saturating_sub(added));
        cond_resched();
    }
    Ok(())
}

/// The blob of box `b`, just serialized, in KHO memory of its own, with the payloads longer
/// than `inline_max` out of line, and more, longest first, if the blob would not fit a KHO
/// block otherwise.
fn preserve_box(b: &FdBox, out: &mut Outgoing) -> Result<Preserved> {
    // SAFETY: No requirements.
    move_out_of_line(out, unsafe { fdbox_inline_max() })?;
    let mut len = blob_len(b, out)?;
    if len > MAX_BOX_BLOB_LEN {
        shrink_to_fit(out, len)?;
        len = blob_len(b, out)?;
    }
    if len > MAX_BOX_BLOB_LEN {
        pr_warn!(
            "box {}: its records take {len} bytes, more than a KHO block holds ({MAX_BOX_BLOB_LEN})\n",
            b.name.as_str()
        );
        return Err(ENOSPC);
    }
    let mut blob = Preserved::new(len)?;
    let written = encode_blob(
        b,
        out,
        Encoder::new(blob.as_mut_slice()).map_err(encode_failed)?,
    )?;
    if written != len {
        return Err(EINVAL);
    }
    Ok(blob)
}

/// `CANCEL`: unseals box `b`; its entries are prepared, as after `ADD`.
pub(crate) fn cancel(b: &FdBox) -> Result {
    if !may_manage(b.owner) {
        return Err(EPERM);
    }
    handover_open()?;
    let mut inner = b.lock()?;
    let out = match &mut inner.kind {
        Kind::Outgoing(out) if out.sealed => out,
        _ => return Err(EBUSY),
    };
    {
        let mut handover = HANDOVER.lock();
        handover_open()?;
        // SAFETY: No requirements.
        unsafe { fdbox_handover_test_pause() };
        // Its blob is freed; its chunks go with `unseal`, after the lock.
        handover.take(b.id).ok_or(EINVAL)?;
    }
    unseal(out);
    b.publish(&inner);
    Ok(())
}

/// Undoes the serialization of every entry of `out`, in reverse blob order (dependents before
/// their dependencies), and marks it open.
fn unseal(out: &mut Outgoing) {
    out.sealed = false;
    out.seal_flags = 0;
    let order = core::mem::take(&mut out.order);
    for &i in order.iter().rev() {
        if let Some(e) = out.entries.get_mut(i as usize) {
            e.unserialize();
        }
        cond_resched();
    }
    for e in out.entries.iter_mut().rev() {
        e.unserialize();
    }
}

/// The outgoing side of `fdbox_unregister_handler()`: unprepares the entries of the handler of
/// `ops`, which has just left the registry.
///
/// An outgoing entry pins its handler's module, so only built-in code can have any left. Their
/// sealed boxes are open again, to be sealed anew, and the hand-over is rebuilt without them.
pub(crate) fn drop_handler_entries(ops: *const HandlerOps) {
    let boxes = {
        let table = TABLE.lock();
        let mut boxes = KVec::with_capacity(table.boxes().len(), GFP_KERNEL);
        if let Ok(list) = &mut boxes {
            for slot in table.boxes() {
                let _ = list.push_within_capacity(slot.fdbox.clone());
            }
        }
        boxes
    };
    let Ok(boxes) = boxes else {
        pr_err!("out of memory unregistering a handler: its entries stay prepared\n");
        return;
    };
    let mut dropped = 0usize;
    for b in boxes.iter() {
        dropped = dropped.saturating_add(drop_entries_of(b, ops));
        cond_resched();
    }
    if dropped > 0 {
        pr_warn!("a handler unregistered with {dropped} live entries; they were unprepared\n");
    }
}

/// Unprepares the entries of box `b` whose handler is that of `ops`; returns how many.
fn drop_entries_of(b: &Arc<FdBox>, ops: *const HandlerOps) -> usize {
    // Not killable: unregistering can't fail.
    let mut inner = b.inner.lock();
    let Kind::Outgoing(out) = &mut inner.kind else {
        return 0;
    };
    let of_handler = |e: &OutEntry| core::ptr::eq(e.handler.get().ops(), ops);
    if !out.entries.iter().any(of_handler) {
        return 0;
    }
    if out.sealed {
        // Blob positions shift: the box is open again, to be sealed anew.
        let mut handover = HANDOVER.lock();
        pr_warn!(
            "box {} is open again, to be sealed anew: a handler of its entries unregistered\n",
            b.name.as_str()
        );
        if handover_final() {
            // A kexec is under way: the root stays as it is. What the box's blob names and is
            // no longer preserved, the next kernel's checks against KHO refuse.
            pr_err!("a kexec has started: the hand-over still names that handler's entries\n");
            handover.forget(b.id);
        } else {
            handover.take(b.id);
        }
        drop(handover);
        unseal(out);
    }
    let mut taken: KVVec<OutEntry> = KVVec::new();
    let mut i = 0;
    while let Some(e) = out.entries.get(i) {
        if !of_handler(e) {
            i = i.saturating_add(1);
            continue;
        }
        match out.take(i) {
            // Dropped after the lock, or at once if there is no memory to keep it.
            Some(e) => {
                let _ = taken.push(e, GFP_KERNEL);
            }
            None => break,
        }
    }
    b.publish(&inner);
    drop(inner);
    let n = taken.len();
    drop(taken);
    n
}

/// Logs why the encoder refused, and turns it into an errno.
fn encode_failed(err: crate::fdbox_format::Error) -> Error {
    pr_err!("can't encode the hand-over: {}\n", format_args!("{err}"));
    EINVAL
}

/// Runs the blob of box `b`, with contents `out`, through `enc`: a complete blob of this box
/// alone, entries in blob order, out-of-line payloads by reference. Returns its length.
fn encode_blob(b: &FdBox, out: &Outgoing, mut enc: Encoder<'_>) -> Result<usize> {
    // SAFETY: Returns a pointer to the static, NUL-terminated release string.
    let release = unsafe { CStr::from_char_ptr(fdbox_kernel_release()) };
    let release = release.to_str().unwrap_or("unknown");
    enc.manifest(release, FDBOX_VERSION, 1)
        .map_err(encode_failed)?;
    let head = BoxHead {
        name: b.name.as_str(),
        owner_uid: b.owner,
        owner_gid: b.owner_gid,
        state: BoxState::Sealed,
    };
    enc.begin_box(&head, out.entries.len())
        .map_err(encode_failed)?;
    for &i in out.order.iter() {
        let e = out.entries.get(i as usize).ok_or(EINVAL)?;
        let handler = e.handler.get().compatible().to_str().map_err(|_| EINVAL)?;
        let payload = match &e.out_of_line {
            Some(oob) => Payload::Chunked(oob.as_ref()),
            None => Payload::Inline(&e.payload),
        };
        enc.entry(&EntryRecord {
            name: e.name.as_str(),
            handler,
            payload_version: e.version,
            flags: 0,
            deps: &e.dep_pos,
            payload,
        })
        .map_err(encode_failed)?;
    }
    enc.finish().map_err(encode_failed)
}

/// The length of the blob of box `b`.
fn blob_len(b: &FdBox, out: &Outgoing) -> Result<usize> {
    encode_blob(b, out, Encoder::counting())
}
