// SPDX-License-Identifier: GPL-2.0

//! The box table, the boxes, and the locks that guard them.
//!
//! # Locking
//!
//! Three kinds of lock, always taken in this order, each also alone:
//!
//! 1. a box's own lock ([`FdBox::inner`], class `fdbox_box`): its state and entries. It is held
//!    across that box's handler callbacks (`prepare`, `serialize`, `restore`...), so a slow or
//!    stuck handler stalls that box only. User-caused waits for it are killable. No one holds
//!    two box locks at once.
//! 2. [`HANDOVER`](crate::outgoing::HANDOVER): the sealed boxes' encodings and the blob
//!    registered with KHO.
//! 3. [`TABLE`]: the box table, the handler registry, the set of boxed files and the per-user
//!    usage. Held only for lookups and bookkeeping, never across a handler callback.
//!
//! Entries are dropped (unprepared) after their box's lock is released; a file stays in the
//! boxed set until its `unprepare` has returned, so that it can't be prepared twice at once.
//! `Documentation/fdbox/locking.md` says the same for reviewers.

use crate::{
    fdbox_format::validate::heapsort,
    preservable::HandlerOps,
    quota::{
        Quotas,
        Usage, //
    },
    registry::{
        Handler,
        HandlerRef, //
    },
    uapi::*, //
};
use core::sync::atomic::{
    AtomicU32,
    Ordering, //
};
use kernel::{
    alloc::flags::GFP_KERNEL_ACCOUNT,
    bindings,
    ffi::c_void,
    fs::File,
    new_mutex,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::{
        aref::ARef,
        Arc,
        Mutex,
        MutexGuard, //
    },
};

kernel::sync::global_lock! {
    // SAFETY: Initialized in the module's init, before anything can use it.
    pub(crate) unsafe(uninit) static TABLE: Mutex<Table> = Table::new();
}

extern "C" {
    fn fdbox_current_euid() -> u32;
    fn fdbox_current_egid() -> u32;
    fn fdbox_uid_to_user(uid: u32) -> u32;
    fn fdbox_uid_from_user(uid: u32) -> i64;
    fn fdbox_gid_to_user(gid: u32) -> u32;
    fn fdbox_mutex_lock_killable(lock: *mut bindings::mutex) -> i32;
    fn fdbox_cond_resched();
}

/// The caller's effective uid in the initial user namespace.
pub(crate) fn current_euid() -> u32 {
    // SAFETY: No requirements; reads the current task's credentials.
    unsafe { fdbox_current_euid() }
}

/// The caller's effective gid in the initial user namespace.
pub(crate) fn current_egid() -> u32 {
    // SAFETY: No requirements; reads the current task's credentials.
    unsafe { fdbox_current_egid() }
}

/// `uid` of the initial user namespace as the caller sees it.
pub(crate) fn uid_to_user(uid: u32) -> u32 {
    // SAFETY: No requirements.
    unsafe { fdbox_uid_to_user(uid) }
}

/// `uid` of the caller's user namespace in the initial one (`EINVAL` if it has no mapping).
pub(crate) fn uid_from_user(uid: u32) -> Result<u32> {
    // SAFETY: No requirements.
    let kuid = unsafe { fdbox_uid_from_user(uid) };
    u32::try_from(kuid).map_err(|_| EINVAL)
}

/// `gid` of the initial user namespace as the caller sees it.
pub(crate) fn gid_to_user(gid: u32) -> u32 {
    // SAFETY: No requirements.
    unsafe { fdbox_gid_to_user(gid) }
}

/// Whether the caller may manage a box of `owner`: its owner, or `CAP_SYS_ADMIN`.
pub(crate) fn may_manage(owner: u32) -> bool {
    // CAST: A small capability number.
    // SAFETY: No requirements.
    current_euid() == owner || unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}

/// Yields the CPU in a long loop over entries or boxes.
pub(crate) fn cond_resched() {
    // SAFETY: No requirements; called in process context without spinlocks held.
    unsafe { fdbox_cond_resched() };
}

/// Takes `lock`, or fails with `EINTR` if the caller is killed while it waits: a box's lock may
/// be held across a handler that waits on something a user controls.
pub(crate) fn lock_killable<T>(lock: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    // `Lock` is `repr(C)` with the kernel's lock state first, as `Lock::from_raw` relies on.
    let raw = core::ptr::from_ref(lock)
        .cast::<bindings::mutex>()
        .cast_mut();
    // SAFETY: `raw` is the initialized `struct mutex` of `lock`, which outlives the call.
    kernel::error::to_result(unsafe { fdbox_mutex_lock_killable(raw) })?;
    // SAFETY: The lock was just acquired; `MutexBackend`'s guard state is `()`.
    Ok(unsafe { kernel::sync::lock::Guard::new(lock, ()) })
}

/// What the previous kernel handed over.
pub(crate) struct Incoming {
    /// An `FDBOX_INCOMING_*` value.
    pub(crate) status: u32,
    /// Why the blob is unusable.
    pub(crate) error: Option<crate::fdbox_format::Error>,
    /// Why the blob is unusable, when it is not a format error.
    pub(crate) errno: Option<Error>,
    /// A copy of the blob, for the inspector.
    pub(crate) raw: KVVec<u8>,
}

/// A box in the table.
pub(crate) struct Slot {
    /// The box.
    pub(crate) fdbox: Arc<FdBox>,
    /// Its open box fds; the box leaves the table when the last one closes, if disposable.
    pub(crate) fds: u32,
    /// What the box is charged while it is in the table (incoming boxes: all they hold).
    pub(crate) charged: Usage,
}

/// Everything FDBox knows beyond the boxes' contents.
pub(crate) struct Table {
    /// The registered handlers.
    handlers: KVec<Handler>,
    /// Every box, outgoing and incoming.
    boxes: KVec<Slot>,
    /// The files that are entries of an outgoing box, or being prepared as one, by address;
    /// made at the first `ADD` (`RBTree::new` is not `const`).
    boxed: Option<RBTree<usize, ()>>,
    /// What each uid holds.
    pub(crate) quotas: Quotas,
    /// The id of the next box.
    next_id: u64,
    /// The hand-over from the previous kernel.
    pub(crate) incoming: Incoming,
}

impl Table {
    /// An empty table.
    pub(crate) const fn new() -> Self {
        Self {
            handlers: KVec::new(),
            boxes: KVec::new(),
            boxed: None,
            quotas: Quotas::new(),
            next_id: 1,
            incoming: Incoming {
                status: FDBOX_INCOMING_NONE,
                error: None,
                errno: None,
                raw: KVVec::new(),
            },
        }
    }

    /// A new box id.
    pub(crate) fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Every box, in creation order.
    pub(crate) fn boxes(&self) -> &[Slot] {
        &self.boxes
    }

    /// The box of `owner` named `name` in `direction`.
    pub(crate) fn lookup(&self, owner: u32, direction: u32, name: &Name) -> Option<&Slot> {
        self.boxes.iter().find(|s| {
            s.fdbox.owner == owner && s.fdbox.direction == direction && s.fdbox.name == *name
        })
    }

    /// Adds `slot` to the table.
    pub(crate) fn insert(&mut self, slot: Slot) -> Result {
        self.boxes.push(slot, GFP_KERNEL_ACCOUNT)?;
        Ok(())
    }

    /// The slot of box `id`.
    pub(crate) fn slot_mut(&mut self, id: u64) -> Option<&mut Slot> {
        self.boxes.iter_mut().find(|s| s.fdbox.id == id)
    }

    /// Takes box `id` out of the table and uncharges its owner.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Arc<FdBox>> {
        let index = self.boxes.iter().position(|s| s.fdbox.id == id)?;
        let slot = self.boxes.remove(index).ok()?;
        self.quotas.uncharge(slot.fdbox.owner, &slot.charged);
        Some(slot.fdbox)
    }

    /// Takes every box out of the table, for the module's exit.
    pub(crate) fn take_all(&mut self) -> KVec<Slot> {
        core::mem::take(&mut self.boxes)
    }

    /// The registered handlers.
    pub(crate) fn handlers(&self) -> &[Handler] {
        &self.handlers
    }

    /// Registers `handler`: `EEXIST` for a compatible string taken, `ENOSPC` past `max`.
    pub(crate) fn add_handler(&mut self, handler: Handler, max: usize) -> Result {
        if self
            .handlers
            .iter()
            .any(|h| h.compatible() == handler.compatible())
        {
            return Err(EEXIST);
        }
        if self.handlers.len() >= max {
            return Err(ENOSPC);
        }
        self.handlers.push(handler, GFP_KERNEL)?;
        Ok(())
    }

    /// Unregisters the handler of `ops`.
    pub(crate) fn remove_handler(&mut self, ops: *const HandlerOps) {
        self.handlers.retain(|h| !h.is(ops));
    }

    /// Every registered handler, each pinned, so that their callbacks can run after the lock
    /// is dropped.
    pub(crate) fn pinned_handlers(&self) -> Result<KVec<HandlerRef>> {
        let mut list = KVec::with_capacity(self.handlers.len(), GFP_KERNEL)?;
        for h in self.handlers.iter() {
            // A module on its way out can't take new entries.
            if let Ok(pinned) = h.pin() {
                list.push(pinned, GFP_KERNEL)?;
            }
        }
        Ok(list)
    }

    /// The registered handler named `compatible`.
    pub(crate) fn handler_named(&self, compatible: &[u8]) -> Option<Handler> {
        self.handlers
            .iter()
            .find(|h| h.compatible().to_bytes() == compatible)
            .copied()
    }

    /// Marks `file` as boxed; `EEXIST` if it is already. `node` is allocated beforehand.
    pub(crate) fn mark_boxed(
        &mut self,
        file: &File,
        node: RBTreeNodeReservation<usize, ()>,
    ) -> Result {
        let key = file_key(file);
        let boxed = self.boxed.get_or_insert_with(RBTree::new);
        if boxed.get(&key).is_some() {
            return Err(EEXIST);
        }
        boxed.insert(node.into_node(key, ()));
        Ok(())
    }

    /// Whether `file` is an entry of a box.
    pub(crate) fn is_boxed(&self, file: &File) -> bool {
        self.boxed
            .as_ref()
            .is_some_and(|boxed| boxed.get(&file_key(file)).is_some())
    }

    /// Undoes [`Table::mark_boxed`], once `file`'s entry is unprepared.
    pub(crate) fn unmark_boxed(&mut self, key: usize) {
        if let Some(boxed) = &mut self.boxed {
            boxed.remove(&key);
        }
    }
}

/// A box. Box fds hold it through their private data, the table through its [`Slot`].
#[pin_data]
pub(crate) struct FdBox {
    /// Unique for the life of the module.
    pub(crate) id: u64,
    /// Unique among the boxes of one owner and one direction.
    pub(crate) name: Name,
    /// The owner's uid, in the initial user namespace.
    pub(crate) owner: u32,
    /// The owner's gid, in the initial user namespace.
    pub(crate) owner_gid: u32,
    /// `FDBOX_DIR_OUTGOING` or `FDBOX_DIR_INCOMING`, for life.
    pub(crate) direction: u32,
    /// The state and the entries.
    #[pin]
    pub(crate) inner: Mutex<BoxInner>,
    /// The `FDBOX_BOX_*` state, published under `inner` for readers that must not wait.
    state: AtomicU32,
    /// The number of entries, published likewise.
    entries: AtomicU32,
}

impl FdBox {
    /// A new box, not yet in the table.
    pub(crate) fn new(
        id: u64,
        name: Name,
        owner: u32,
        owner_gid: u32,
        kind: Kind,
    ) -> Result<Arc<Self>> {
        let direction = kind.direction();
        let inner = BoxInner { kind };
        let (state, entries) = (inner.state(), inner.len());
        Arc::pin_init(
            pin_init!(Self {
                id,
                name,
                owner,
                owner_gid,
                direction,
                inner <- new_mutex!(inner, "fdbox_box"),
                state: AtomicU32::new(state),
                // CAST: At most `FDBOX_MAX_ENTRIES`.
                entries: AtomicU32::new(entries as u32),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Takes the box's lock; `EINTR` if the caller is killed while it waits.
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, BoxInner>> {
        lock_killable(&self.inner)
    }

    /// Publishes the state and entry count of `inner`, this box's contents, to lock-free
    /// readers (`LIST_BOXES`, debugfs).
    pub(crate) fn publish(&self, inner: &BoxInner) {
        self.state.store(inner.state(), Ordering::Relaxed);
        // CAST: At most `FDBOX_MAX_ENTRIES`.
        self.entries.store(inner.len() as u32, Ordering::Relaxed);
    }

    /// The `FDBOX_BOX_*` state last published.
    pub(crate) fn published_state(&self) -> u32 {
        self.state.load(Ordering::Relaxed)
    }

    /// The entry count last published.
    pub(crate) fn published_len(&self) -> u32 {
        self.entries.load(Ordering::Relaxed)
    }
}

/// A box's contents, under its lock.
pub(crate) struct BoxInner {
    /// Outgoing or incoming, with the entries.
    pub(crate) kind: Kind,
}

impl BoxInner {
    /// The `FDBOX_BOX_*` value.
    pub(crate) fn state(&self) -> u32 {
        match &self.kind {
            Kind::Outgoing(out) if out.sealed => FDBOX_BOX_SEALED,
            Kind::Outgoing(_) => FDBOX_BOX_OPEN,
            Kind::Incoming(_) => FDBOX_BOX_INCOMING,
        }
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        match &self.kind {
            Kind::Outgoing(out) => out.entries.len(),
            Kind::Incoming(inc) => inc.entries.len(),
        }
    }

    /// Whether the box goes away when its last fd closes: an open outgoing box, or an incoming
    /// box with nothing left to retrieve.
    pub(crate) fn is_disposable(&self) -> bool {
        match &self.kind {
            Kind::Outgoing(out) => !out.sealed,
            Kind::Incoming(inc) => inc
                .entries
                .iter()
                .all(|e| matches!(e.phase, Phase::Retrieved(_) | Phase::Discarded)),
        }
    }

    /// Empties the box, for dropping its entries after the lock is released.
    pub(crate) fn take(&mut self) -> Kind {
        let empty = match &self.kind {
            Kind::Outgoing(_) => Kind::Outgoing(Outgoing::new()),
            Kind::Incoming(_) => Kind::Incoming(IncomingBox::default()),
        };
        core::mem::replace(&mut self.kind, empty)
    }
}

/// The entries of a box, by direction.
pub(crate) enum Kind {
    /// Created in this kernel.
    Outgoing(Outgoing),
    /// Handed over by the previous kernel.
    Incoming(IncomingBox),
}

impl Kind {
    /// The `FDBOX_DIR_*` value.
    pub(crate) fn direction(&self) -> u32 {
        match self {
            Kind::Outgoing(_) => FDBOX_DIR_OUTGOING,
            Kind::Incoming(_) => FDBOX_DIR_INCOMING,
        }
    }
}

/// An incoming box's entries.
#[derive(Default)]
pub(crate) struct IncomingBox {
    /// The entries, in blob order: dependencies first.
    pub(crate) entries: KVec<InEntry>,
    /// The index of each entry, by name.
    pub(crate) names: RBTree<Name, u32>,
}

/// An outgoing box's entries; dropping it unprepares them, dependents first.
pub(crate) struct Outgoing {
    /// Whether the box is sealed.
    pub(crate) sealed: bool,
    /// While sealed: the `FDBOX_SEAL_*` flags it was sealed with.
    pub(crate) seal_flags: u32,
    /// The entries, in the order they were added.
    pub(crate) entries: KVVec<OutEntry>,
    /// While sealed: the blob order of the entries (dependencies first).
    pub(crate) order: KVec<u32>,
    /// The entries' names: `ADD` checks for a duplicate in O(log n).
    pub(crate) names: RBTree<Name, ()>,
}

impl Outgoing {
    /// An open box without entries.
    pub(crate) fn new() -> Self {
        Self {
            sealed: false,
            seal_flags: 0,
            entries: KVVec::new(),
            order: KVec::new(),
            names: RBTree::new(),
        }
    }

    /// Removes entry `index` from the box; dropping it unprepares it.
    pub(crate) fn take(&mut self, index: usize) -> Option<OutEntry> {
        let entry = self.entries.remove(index).ok()?;
        self.names.remove(&entry.name);
        Some(entry)
    }
}

/// The key of `file` in the boxed set.
pub(crate) fn file_key(file: &File) -> usize {
    // CAST: The address identifies the file while the entry holds a reference to it.
    file.as_ptr() as usize
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        drop_dependents_first(&mut self.entries);
    }
}

/// For each entry, the indices of the entries it depends on. A dependency outside the box is
/// `ENOENT`, or left out if `skip_missing`.
pub(crate) fn dep_indices(entries: &[OutEntry], skip_missing: bool) -> Result<KVec<KVec<u32>>> {
    let mut by_file: KVec<(usize, u32)> = KVec::with_capacity(entries.len(), GFP_KERNEL)?;
    for (i, e) in entries.iter().enumerate() {
        // CAST: At most `FDBOX_MAX_ENTRIES`.
        by_file.push((file_key(&e.file), i as u32), GFP_KERNEL)?;
    }
    heapsort(&mut by_file, |a, b| a.cmp(b));
    let mut out = KVec::with_capacity(entries.len(), GFP_KERNEL)?;
    for e in entries {
        let mut list = KVec::with_capacity(e.deps.len(), GFP_KERNEL)?;
        for d in e.deps.iter() {
            let key = file_key(d);
            match by_file.binary_search_by(|&(f, _)| f.cmp(&key)) {
                Ok(k) => list.push(by_file.get(k).ok_or(ENOENT)?.1, GFP_KERNEL)?,
                Err(_) if skip_missing => {}
                Err(_) => return Err(ENOENT),
            }
        }
        out.push(list, GFP_KERNEL)?;
    }
    Ok(out)
}

/// Drops (unprepares) `entries` so that an entry goes before the entries it depends on, the
/// last added first among the rest; entries in a cycle go last.
pub(crate) fn drop_dependents_first(entries: &mut KVVec<OutEntry>) {
    if entries.iter().all(|e| e.deps.is_empty()) || drop_in_order(entries).is_err() {
        // No order to keep, or no memory to compute it: the last added first.
        while entries.pop().is_some() {}
    }
}

fn drop_in_order(entries: &mut KVVec<OutEntry>) -> Result {
    let n = entries.len();
    let deps = dep_indices(entries, true)?;
    // How many entries still depend on each one.
    let mut users: KVec<u32> = KVec::from_elem(0, n, GFP_KERNEL)?;
    for &d in deps.iter().flat_map(|list| list.iter()) {
        if let Some(u) = users.get_mut(d as usize) {
            *u = u.saturating_add(1);
        }
    }
    let mut slots: KVec<Option<OutEntry>> = KVec::with_capacity(n, GFP_KERNEL)?;
    let mut free: KVec<u32> = KVec::with_capacity(n, GFP_KERNEL)?;
    // Nothing can fail from here on: every allocation is made.
    for (i, e) in entries.drain_all().enumerate() {
        // CAST: At most `FDBOX_MAX_ENTRIES`.
        if users.get(i).is_some_and(|&u| u == 0) {
            let _ = free.push_within_capacity(i as u32);
        }
        let _ = slots.push_within_capacity(Some(e));
    }
    while let Some(i) = free.pop() {
        drop(slots.get_mut(i as usize).and_then(Option::take));
        cond_resched();
        for &d in deps.get(i as usize).map(|l| l.as_slice()).unwrap_or(&[]) {
            if let Some(u) = users.get_mut(d as usize) {
                *u = u.saturating_sub(1);
                if *u == 0 {
                    let _ = free.push_within_capacity(d);
                }
            }
        }
    }
    // Cycles: the last added first.
    while slots.pop().is_some() {}
    Ok(())
}

/// A handler's state for one entry, from `prepare`.
pub(crate) struct HandlerState(pub(crate) *mut c_void);

// SAFETY: `Preservable::State` is `Send`; C handlers promise the same.
unsafe impl Send for HandlerState {}

/// An outgoing entry: a prepared file.
///
/// # Invariants
///
/// `state` came from a successful `prepare` of `file` by `handler`, not yet unprepared; if
/// `serialized`, a successful `serialize` not yet undone.
pub(crate) struct OutEntry {
    /// The file's claim; first, so that it is given back right after the unprepare.
    pub(crate) _claim: crate::outgoing::Claim,
    /// Unique in the box.
    pub(crate) name: Name,
    /// The handler, pinned.
    pub(crate) handler: HandlerRef,
    /// The file.
    pub(crate) file: ARef<File>,
    /// The handler's state.
    pub(crate) state: HandlerState,
    /// The files `prepare` said this entry depends on.
    pub(crate) deps: KVec<ARef<File>>,
    /// While sealed: the blob positions of the dependencies, ascending.
    pub(crate) dep_pos: KVec<u32>,
    /// While sealing: the payload, until the box's blob or `out_of_line` holds it.
    pub(crate) payload: KVVec<u8>,
    /// While sealed: the payload, if it is too long for the box's blob.
    pub(crate) out_of_line: Option<crate::outgoing::OutOfLine>,
    /// While sealed: the payload's length.
    pub(crate) payload_len: usize,
    /// While sealed: the payload version written.
    pub(crate) version: u32,
    /// Whether `serialize` succeeded and was not undone; its payload is then charged to
    /// `owner`.
    pub(crate) serialized: bool,
    /// The box owner's uid: the entry and its payload are charged to it.
    pub(crate) owner: u32,
}

impl OutEntry {
    fn ops(&self) -> &HandlerOps {
        self.handler.get().ops()
    }

    /// Serializes the entry: fills `payload` and `version`. `restored_deps` are the files of
    /// its dependencies as `restore` will get them; with `previous`, the handler writes at most
    /// its previous payload version.
    pub(crate) fn serialize(
        &mut self,
        restored_deps: &[*mut bindings::file],
        previous: bool,
    ) -> Result {
        let current = self.ops().version;
        let max_version = if previous {
            // Version 0 doesn't exist: the handler has no previous version to write.
            current
                .checked_sub(1)
                .filter(|&v| v > 0)
                .ok_or(EOPNOTSUPP)?
        } else {
            current
        };
        let mut ctx = SinkCtx {
            payload: KVVec::new(),
            deps: restored_deps,
        };
        let mut sink = crate::preservable::PayloadSink {
            ctx: (&raw mut ctx).cast(),
            write: payload_write,
            dep_index: payload_dep_index,
            max_version,
        };
        let mut version = 0u32;
        // SAFETY: By the type invariants, `state` is the live state of `file`; the sink and
        // `version` are valid for the call.
        let ret = unsafe {
            (self.ops().serialize)(self.file.as_ptr(), self.state.0, &mut sink, &mut version)
        };
        kernel::error::to_result(ret)?;
        let len = ctx.payload.len();
        // Bound first: the table's lock must be released before `unserialize` runs.
        let charged = if previous && version > max_version {
            pr_warn!(
                "handler {}: wrote payload version {version} when asked for at most {max_version}\n",
                self.handler.get().compatible().to_str().unwrap_or("?")
            );
            Err(EPROTO)
        } else {
            TABLE.lock().quotas.charge_bytes(self.owner, len)
        };
        if let Err(err) = charged {
            // SAFETY: `serialize` just succeeded on the live state of `file`.
            unsafe { (self.ops().unserialize)(self.file.as_ptr(), self.state.0) };
            return Err(err);
        }
        // INVARIANT: `serialize` succeeded.
        self.serialized = true;
        self.payload_len = len;
        self.payload = ctx.payload;
        self.version = version;
        Ok(())
    }

    /// Undoes [`OutEntry::serialize`].
    pub(crate) fn unserialize(&mut self) {
        if self.serialized {
            // SAFETY: By the type invariants, `state` is the live, serialized state of `file`.
            unsafe { (self.ops().unserialize)(self.file.as_ptr(), self.state.0) };
            // INVARIANT: Undone just above.
            self.serialized = false;
            TABLE
                .lock()
                .quotas
                .uncharge_bytes(self.owner, self.payload_len);
        }
        self.payload = KVVec::new();
        self.out_of_line = None;
        self.payload_len = 0;
        self.dep_pos.clear();
    }
}

impl Drop for OutEntry {
    fn drop(&mut self) {
        self.unserialize();
        // SAFETY: By the type invariants, `state` is the live state of `file`; it is freed here
        // and never used again.
        unsafe { (self.ops().unprepare)(self.file.as_ptr(), self.state.0) };
        // Only now may the file be boxed again: `claim`, dropped next, gives it back.
    }
}

/// The longest payload one entry may write.
// CAST: A constant that fits.
const MAX_PAYLOAD: usize = crate::fdbox_format::limits::MAX_INLINE_LEN as usize;

/// The context of the core's `PayloadSink`.
struct SinkCtx<'a> {
    /// The payload written so far.
    payload: KVVec<u8>,
    /// The dependencies in the order `restore` gets them.
    deps: &'a [*mut bindings::file],
}

/// `PayloadSink::write` of the core: appends to the payload.
///
/// # Safety
///
/// `ctx` must point to a `SinkCtx` exclusive to the call; `data` valid for `len` bytes.
unsafe extern "C" fn payload_write(ctx: *mut c_void, data: *const u8, len: usize) -> i32 {
    // SAFETY: By the safety requirements.
    let payload = unsafe { &mut (*ctx.cast::<SinkCtx<'_>>()).payload };
    if payload.len().saturating_add(len) > MAX_PAYLOAD {
        pr_warn!("a payload grew past {MAX_PAYLOAD} bytes\n");
        return ENOSPC.to_errno();
    }
    if len == 0 {
        return 0;
    }
    // SAFETY: By the safety requirements.
    let data = unsafe { core::slice::from_raw_parts(data, len) };
    // Charged to the caller: the VMM that seals pays for its payloads.
    match payload.extend_from_slice(data, GFP_KERNEL_ACCOUNT) {
        Ok(()) => 0,
        Err(_) => ENOMEM.to_errno(),
    }
}

/// `PayloadSink::dep_index` of the core.
///
/// # Safety
///
/// `ctx` must point to a `SinkCtx` exclusive to the call.
unsafe extern "C" fn payload_dep_index(ctx: *mut c_void, file: *mut bindings::file) -> i32 {
    // SAFETY: By the safety requirements.
    let deps = unsafe { (*ctx.cast::<SinkCtx<'_>>()).deps };
    match deps.iter().position(|&d| core::ptr::eq(d, file)) {
        // CAST: At most `MAX_DEPS`.
        Some(index) => index as i32,
        None => ENOENT.to_errno(),
    }
}

/// Where an incoming entry is in its life.
pub(crate) enum Phase {
    /// Not restored yet.
    Pending,
    /// Its record can't be used.
    Corrupt,
    /// Its handler failed to restore it.
    Failed,
    /// Restored as a dependency of another entry, not yet retrieved.
    Restored(ARef<File>),
    /// Handed to userspace. The reference is kept only while entries that depend on it are
    /// pending (`InEntry::dependents`), for their restore: otherwise closing the file
    /// userspace got frees it, and its memory, as for any file.
    Retrieved(Option<ARef<File>>),
    /// Discarded.
    Discarded,
}

/// An incoming entry.
pub(crate) struct InEntry {
    /// Unique in the box.
    pub(crate) name: Name,
    /// The handler's compatible string.
    pub(crate) compatible: Name,
    /// The payload version.
    pub(crate) version: u32,
    /// Indices of earlier entries of the box it depends on.
    pub(crate) deps: KVec<u32>,
    /// Pending entries that depend on it.
    pub(crate) dependents: u32,
    /// The payload.
    pub(crate) payload: KVVec<u8>,
    /// Where it is in its life.
    pub(crate) phase: Phase,
}

/// The `FDBOX_ENTRY_*` state and `FDBOX_REASON_*` of incoming entry `e`, given whether every
/// entry it depends on is (or may still be) restored.
pub(crate) fn entry_state(table: &Table, e: &InEntry, deps_ok: bool) -> (u32, u32) {
    match &e.phase {
        Phase::Corrupt => (FDBOX_ENTRY_UNAVAILABLE, FDBOX_REASON_CORRUPT),
        Phase::Failed => (FDBOX_ENTRY_UNAVAILABLE, FDBOX_REASON_RESTORE_FAILED),
        Phase::Restored(_) => (FDBOX_ENTRY_RESTORABLE, FDBOX_REASON_NONE),
        Phase::Retrieved(_) => (FDBOX_ENTRY_RETRIEVED, FDBOX_REASON_NONE),
        Phase::Discarded => (FDBOX_ENTRY_DISCARDED, FDBOX_REASON_NONE),
        Phase::Pending => match table.handler_named(e.compatible.as_bytes()) {
            None => (FDBOX_ENTRY_UNAVAILABLE, FDBOX_REASON_NO_HANDLER),
            Some(h) if !h.reads(e.version) => (FDBOX_ENTRY_UNAVAILABLE, FDBOX_REASON_VERSION),
            Some(_) if !deps_ok => (FDBOX_ENTRY_UNAVAILABLE, FDBOX_REASON_DEPENDENCY),
            Some(_) => (FDBOX_ENTRY_RESTORABLE, FDBOX_REASON_NONE),
        },
    }
}

/// The `FDBOX_ENTRY_*` state and `FDBOX_REASON_*` of each entry of an incoming box.
///
/// One pass in index order: dependencies always have smaller indices.
pub(crate) fn availability(table: &Table, entries: &[InEntry]) -> Result<KVec<(u32, u32)>> {
    let mut out: KVec<(u32, u32)> = KVec::with_capacity(entries.len(), GFP_KERNEL)?;
    for e in entries {
        let deps_ok = e.deps.iter().all(|&d| {
            out.get(d as usize)
                .is_some_and(|&(s, _)| s != FDBOX_ENTRY_UNAVAILABLE && s != FDBOX_ENTRY_DISCARDED)
        });
        out.push(entry_state(table, e, deps_ok), GFP_KERNEL)?;
    }
    Ok(out)
}
