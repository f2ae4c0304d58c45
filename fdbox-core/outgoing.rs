// SPDX-License-Identifier: GPL-2.0

//! The outgoing side: adding and removing entries, sealing, cancelling, and the blob handed
//! to the next kernel.

use crate::{
    fdbox_format::{
        BoxHead,
        BoxState,
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
}

kernel::sync::global_lock! {
    // SAFETY: Initialized in the module's init, before anything can use it.
    pub(crate) unsafe(uninit) static HANDOVER: Mutex<HandOver> = HandOver::new();
}

/// A sealed box, as the hand-over carries it.
struct SealedBox {
    /// The box's id.
    id: u64,
    /// Its encoding, spliced into every blob until it is unsealed, so that a seal or cancel
    /// re-encodes only its own box.
    encoded: KVVec<u8>,
    /// Its number of entries.
    entries: u32,
}

/// The hand-over: what the next kernel gets.
pub(crate) struct HandOver {
    /// The sealed boxes, in the order they were sealed.
    sealed: KVec<SealedBox>,
    /// The blob registered with KHO, when a box is sealed.
    subtree: Option<Subtree>,
}

impl HandOver {
    /// Nothing to hand over.
    pub(crate) const fn new() -> Self {
        Self {
            sealed: KVec::new(),
            subtree: None,
        }
    }

    /// The blob registered with KHO, if any.
    pub(crate) fn blob(&self) -> &[u8] {
        self.subtree.as_ref().map(|s| s.as_slice()).unwrap_or(&[])
    }

    /// Hands nothing over, for the module's exit.
    pub(crate) fn clear(&mut self) {
        self.sealed.clear();
        self.subtree = None;
    }

    /// Takes box `id` out of the hand-over, without rebuilding the blob.
    fn take(&mut self, id: u64) -> Option<(usize, SealedBox)> {
        let pos = self.sealed.iter().position(|s| s.id == id)?;
        Some((pos, self.sealed.remove(pos).ok()?))
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

/// The largest blob: KHO registers one physically contiguous folio of at most
/// `MAX_PAGE_ORDER` (4 MiB on x86-64).
const MAX_BLOB: usize = kernel::page::PAGE_SIZE << kernel::bindings::MAX_PAGE_ORDER;

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
fn plan(entries: &mut KVec<OutEntry>) -> Result<KVec<u32>> {
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
        all.sort_unstable();
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
fn serialize_at(entries: &mut KVec<OutEntry>, order: &[u32], i: usize) -> Result {
    let e = entries.get(i).ok_or(EINVAL)?;
    let mut files = KVec::with_capacity(e.dep_pos.len(), GFP_KERNEL)?;
    for &p in e.dep_pos.iter() {
        let j = *order.get(p as usize).ok_or(EINVAL)?;
        files.push(
            entries.get(j as usize).ok_or(EINVAL)?.file.as_ptr(),
            GFP_KERNEL,
        )?;
    }
    entries.get_mut(i).ok_or(EINVAL)?.serialize(&files)
}

/// `SEAL`: serializes every entry of box `b` and hands the box over; all or nothing.
pub(crate) fn seal(b: &FdBox) -> Result {
    if !may_manage(b.owner) {
        return Err(EPERM);
    }
    handover_open()?;
    let mut inner = b.lock()?;
    let out = open_box(&mut inner)?;
    let entries = &mut out.entries;
    let order = plan(entries)?;
    // Payloads add up to at most the hand-over's size: stop as soon as they can't fit.
    let mut total = 0usize;
    for (done, &i) in order.iter().enumerate() {
        let result = serialize_at(entries, &order, i as usize).and_then(|()| {
            let e = entries.get_mut(i as usize).ok_or(EINVAL)?;
            total = total.saturating_add(e.payload.len());
            if total > MAX_BLOB {
                e.unserialize();
                pr_warn!("the payloads of a box grew past {MAX_BLOB} bytes\n");
                return Err(ENOSPC);
            }
            Ok(())
        });
        if let Err(err) = result {
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
    out.order = order;
    let sealed = encode_box(b, out).and_then(|encoded| {
        let mut handover = HANDOVER.lock();
        handover.sealed.push(
            SealedBox {
                id: b.id,
                encoded,
                // CAST: At most `FDBOX_MAX_ENTRIES`.
                entries: out.entries.len() as u32,
            },
            GFP_KERNEL,
        )?;
        handover.rebuild().inspect_err(|_| {
            handover.take(b.id);
        })
    });
    match sealed {
        Ok(()) => {
            // The encoding holds the payloads now.
            for e in out.entries.iter_mut() {
                e.payload = KVVec::new();
            }
        }
        Err(err) => {
            unseal(out);
            return Err(err);
        }
    }
    b.publish(&inner);
    Ok(())
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
        let (pos, taken) = handover.take(b.id).ok_or(EINVAL)?;
        if let Err(err) = handover.rebuild() {
            // Back where it was, in the room its removal left: it can't fail.
            let _ = handover.sealed.insert_within_capacity(pos, taken);
            return Err(err);
        }
    }
    unseal(out);
    b.publish(&inner);
    Ok(())
}

/// Undoes the serialization of every entry of `out`, in reverse blob order (dependents before
/// their dependencies), and marks it open.
fn unseal(out: &mut Outgoing) {
    out.sealed = false;
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
        handover.take(b.id);
        pr_warn!(
            "box {} is open again, to be sealed anew: a handler of its entries unregistered\n",
            b.name.as_str()
        );
        if handover_final() {
            // A kexec is under way with the blob as it is; what it names and is no longer
            // preserved, the next kernel's checks against KHO refuse.
            pr_err!("a kexec has started: the hand-over still names that handler's entries\n");
        } else if let Err(err) = handover.rebuild() {
            // The old blob describes entries that are gone: hand nothing over rather than that.
            handover.subtree = None;
            pr_err!("can't rebuild the hand-over ({err:?}): nothing is handed over until the next seal\n");
        }
        drop(handover);
        unseal(out);
    }
    let mut taken: KVec<OutEntry> = KVec::new();
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

/// Runs the encoding of box `b`, with contents `out`, in blob order, through `enc`.
fn encode_box_with(b: &FdBox, out: &Outgoing, enc: &mut Encoder<'_>) -> Result {
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
        enc.entry(&EntryRecord {
            name: e.name.as_str(),
            handler,
            payload_version: e.version,
            flags: 0,
            deps: &e.dep_pos,
            payload: Payload::Inline(&e.payload),
        })
        .map_err(encode_failed)?;
    }
    Ok(())
}

/// Encodes box `b`, with contents `out` just serialized, alone.
fn encode_box(b: &FdBox, out: &Outgoing) -> Result<KVVec<u8>> {
    let mut counting = Encoder::counting_box();
    encode_box_with(b, out, &mut counting)?;
    let len = counting.finish_box().map_err(encode_failed)?;
    if len > MAX_BLOB {
        pr_warn!(
            "box {} would take {len} bytes of the hand-over, more than {MAX_BLOB}\n",
            b.name.as_str()
        );
        return Err(ENOSPC);
    }
    let mut encoded = KVVec::from_elem(0u8, len, GFP_KERNEL_ACCOUNT)?;
    let mut enc = Encoder::for_box(&mut encoded);
    encode_box_with(b, out, &mut enc)?;
    if enc.finish_box().map_err(encode_failed)? != len {
        return Err(EINVAL);
    }
    Ok(encoded)
}

impl HandOver {
    /// Runs the blob of every sealed box, from their encodings, through `enc`.
    fn encode(&self, mut enc: Encoder<'_>) -> Result<usize> {
        // SAFETY: Returns a pointer to the static, NUL-terminated release string.
        let release = unsafe { CStr::from_char_ptr(fdbox_kernel_release()) };
        let release = release.to_str().unwrap_or("unknown");
        enc.manifest(release, FDBOX_VERSION, self.sealed.len())
            .map_err(encode_failed)?;
        for sealed in self.sealed.iter() {
            enc.encoded_box(&sealed.encoded, sealed.entries)
                .map_err(encode_failed)?;
        }
        enc.finish().map_err(encode_failed)
    }

    /// Rebuilds the blob from every sealed box and registers it in place of the old one; the
    /// old one stays registered if anything fails.
    fn rebuild(&mut self) -> Result {
        handover_open()?;
        if self.sealed.is_empty() {
            self.subtree = None;
            return Ok(());
        }
        let len = self.encode(Encoder::counting())?;
        if len > MAX_BLOB {
            pr_warn!("the hand-over would take {len} bytes, more than {MAX_BLOB}\n");
            return Err(ENOSPC);
        }
        let mut blob = Preserved::new(len)?;
        let written = self.encode(Encoder::new(blob.as_mut_slice()).map_err(|_| EINVAL)?)?;
        if written != len {
            return Err(EINVAL);
        }
        let old = self.subtree.take().map(|s| s.unregister());
        // SAFETY: No requirements.
        unsafe { fdbox_handover_test_pause() };
        match blob.register(kho::SUBTREE) {
            Ok(subtree) => {
                self.subtree = Some(subtree);
                // Dropping `old` frees it.
                Ok(())
            }
            Err(err) => {
                if let Some(old) = old {
                    match old.register(kho::SUBTREE) {
                        Ok(subtree) => self.subtree = Some(subtree),
                        Err(again) => pr_err!(
                            "the hand-over is lost: can't register it ({err:?}), nor the previous \
                             one again ({again:?}); seal or cancel a box to retry\n"
                        ),
                    }
                }
                Err(err)
            }
        }
    }
}
