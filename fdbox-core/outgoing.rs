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
        Preserved, //
    },
    preservable::DepSink,
    state::{
        dep_indices,
        file_key,
        BoxData,
        HandlerState,
        Kind,
        OutEntry,
        Outgoing,
        State, //
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
    sync::aref::ARef,
    time::{
        delay::fsleep,
        Delta, //
    }, //
};

extern "C" {
    fn fdbox_kernel_release() -> *const kernel::ffi::c_char;
    fn fdbox_handover_test_pause();
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
/// replacing the hand-over, which holds FDBox's lock, to finish. The KHO subtree then holds the
/// state before or after each of them, never a mix or nothing.
///
/// The lock may also be held for long by an operation that doesn't touch the hand-over, such
/// as an `ADD` waiting for a memfd's `i_rwsem`, which a user can hold. A kexec doesn't wait for
/// that one for more than `FINAL_WAIT_MS`: the hand-over, which nothing is replacing, goes as
/// it is.
#[no_mangle]
extern "C" fn fdbox_close_handover() {
    HANDOVER_FINAL.store(true, Ordering::SeqCst);
    for _ in 0..FINAL_WAIT_MS / FINAL_POLL_MS {
        if crate::state::FDBOX.try_lock().is_some() {
            pr_info!("the hand-over is final: a kexec or reboot has started\n");
            return;
        }
        fsleep(Delta::from_millis(FINAL_POLL_MS));
    }
    pr_warn!(
        "a box operation has held FDBox's lock for {FINAL_WAIT_MS} ms: the kexec goes on with the hand-over as it is\n"
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

/// Box `b`, if it is an open outgoing box (`EBUSY` otherwise).
fn open_box(b: &mut BoxData) -> Result<&mut Outgoing> {
    match &mut b.kind {
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

/// `ADD`: prepares `file` as entry `name` of box `id`.
pub(crate) fn add(state: &mut State, id: u64, name: Name, file: ARef<File>) -> Result {
    if !crate::state::may_manage(state.find(id)?.owner) {
        return Err(EPERM);
    }
    {
        let out = open_box(state.find(id)?)?;
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
    if state.is_boxed(&file) {
        return Err(EEXIST);
    }
    let handler = state.handler_for(&file).ok_or(EOPNOTSUPP)?;
    let handler = handler.pin()?;
    let name_node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
    let file_node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
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
    };
    let out = open_box(state.find(id)?)?;
    out.names.insert(name_node.into_node(name, ()));
    out.files
        .insert(file_node.into_node(file_key(&entry.file), ()));
    out.entries.push_within_capacity(entry).map_err(|_| ENOMEM)
}

/// `REMOVE`: unprepares entry `name` of box `id`.
pub(crate) fn remove(state: &mut State, id: u64, name: &Name) -> Result {
    let b = state.find(id)?;
    if !crate::state::may_manage(b.owner) {
        return Err(EPERM);
    }
    let out = open_box(b)?;
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
    // Dropping the entry unprepares it.
    out.take(index).ok_or(ENOENT)?;
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

/// `SEAL`: serializes every entry of box `id` and hands the box over; all or nothing.
pub(crate) fn seal(state: &mut State, id: u64) -> Result {
    let b = state.find(id)?;
    if !crate::state::may_manage(b.owner) {
        return Err(EPERM);
    }
    handover_open()?;
    let b = state.find(id)?;
    let entries = &mut open_box(b)?.entries;
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
    }
    let b = state.find(id)?;
    set_sealed(b, Some(order));
    let encoded = encode_box(b);
    let Kind::Outgoing(out) = &mut b.kind else {
        return Err(EINVAL);
    };
    match encoded {
        Ok(encoded) => {
            out.encoded = encoded;
            // The encoding holds the payloads now.
            for e in out.entries.iter_mut() {
                e.payload = KVVec::new();
            }
        }
        Err(err) => {
            unseal(b);
            return Err(err);
        }
    }
    if let Err(err) = rebuild(state) {
        unseal(state.find(id)?);
        return Err(err);
    }
    Ok(())
}

/// `CANCEL`: unseals box `id`; its entries are prepared, as after `ADD`.
pub(crate) fn cancel(state: &mut State, id: u64) -> Result {
    let b = state.find(id)?;
    if !crate::state::may_manage(b.owner) {
        return Err(EPERM);
    }
    handover_open()?;
    let b = state.find(id)?;
    let order = match &mut b.kind {
        Kind::Outgoing(out) if out.sealed => core::mem::take(&mut out.order),
        _ => return Err(EBUSY),
    };
    set_sealed(b, None);
    if let Err(err) = rebuild(state) {
        set_sealed(state.find(id)?, Some(order));
        return Err(err);
    }
    let b = state.find(id)?;
    set_sealed(b, Some(order));
    unseal(b);
    Ok(())
}

fn set_sealed(b: &mut BoxData, order: Option<KVec<u32>>) {
    if let Kind::Outgoing(out) = &mut b.kind {
        out.sealed = order.is_some();
        out.order = order.unwrap_or_default();
    }
}

/// Undoes the serialization of every entry of `b`, in reverse blob order (dependents before
/// their dependencies), and marks it open.
pub(crate) fn unseal(b: &mut BoxData) {
    if let Kind::Outgoing(out) = &mut b.kind {
        out.sealed = false;
        out.encoded = KVVec::new();
        let order = core::mem::take(&mut out.order);
        for &i in order.iter().rev() {
            if let Some(e) = out.entries.get_mut(i as usize) {
                e.unserialize();
            }
        }
        for e in out.entries.iter_mut().rev() {
            e.unserialize();
        }
    }
}

/// Logs why the encoder refused, and turns it into an errno.
fn encode_failed(err: crate::fdbox_format::Error) -> Error {
    pr_err!("can't encode the hand-over: {}\n", format_args!("{err}"));
    EINVAL
}

/// Runs box `b`'s encoding, in blob order, through `enc`.
fn encode_box_with(b: &BoxData, out: &Outgoing, enc: &mut Encoder<'_>) -> Result {
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

/// Encodes box `b`, just serialized, alone.
fn encode_box(b: &BoxData) -> Result<KVVec<u8>> {
    let Kind::Outgoing(out) = &b.kind else {
        return Err(EINVAL);
    };
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

/// Runs the blob of every sealed box, from their cached encodings, through `enc`.
fn encode(state: &State, mut enc: Encoder<'_>) -> Result<usize> {
    // SAFETY: Returns a pointer to the static, NUL-terminated release string.
    let release = unsafe { CStr::from_char_ptr(fdbox_kernel_release()) };
    let release = release.to_str().unwrap_or("unknown");
    let sealed = || {
        state.boxes.iter().filter_map(|b| match &b.kind {
            Kind::Outgoing(out) if out.sealed => Some(out),
            _ => None,
        })
    };
    enc.manifest(release, FDBOX_VERSION, sealed().count())
        .map_err(encode_failed)?;
    for out in sealed() {
        // CAST: At most `FDBOX_MAX_ENTRIES`.
        enc.encoded_box(&out.encoded, out.entries.len() as u32)
            .map_err(encode_failed)?;
    }
    enc.finish().map_err(encode_failed)
}

/// Rebuilds the blob from every sealed box and registers it in place of the old one; the old
/// one stays registered if anything fails.
pub(crate) fn rebuild(state: &mut State) -> Result {
    handover_open()?;
    let any_sealed = state
        .boxes
        .iter()
        .any(|b| matches!(&b.kind, Kind::Outgoing(out) if out.sealed));
    if !any_sealed {
        state.subtree = None;
        return Ok(());
    }
    let len = encode(state, Encoder::counting())?;
    if len > MAX_BLOB {
        pr_warn!("the hand-over would take {len} bytes, more than {MAX_BLOB}\n");
        return Err(ENOSPC);
    }
    let mut blob = Preserved::new(len)?;
    let written = encode(
        state,
        Encoder::new(blob.as_mut_slice()).map_err(|_| EINVAL)?,
    )?;
    if written != len {
        return Err(EINVAL);
    }
    let old = state.subtree.take().map(|s| s.unregister());
    // SAFETY: No requirements.
    unsafe { fdbox_handover_test_pause() };
    match blob.register(kho::SUBTREE) {
        Ok(subtree) => {
            state.subtree = Some(subtree);
            // Dropping `old` frees it.
            Ok(())
        }
        Err(err) => {
            if let Some(old) = old {
                match old.register(kho::SUBTREE) {
                    Ok(subtree) => state.subtree = Some(subtree),
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
