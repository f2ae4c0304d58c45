// SPDX-License-Identifier: GPL-2.0

//! The contract between `fdbox_core` and the modules that make a file type preservable.
//!
//! Every module includes this one file:
//!
//! ```text
//! #[path = "../fdbox-core/preservable.rs"]
//! pub mod preservable;
//! ```
//!
//! The kernel builds each module as its own crate, so the two sides meet at a C ABI: a
//! `#[repr(C)]` [`HandlerOps`] table registered with the exported `fdbox_register_handler()`.
//! A Rust handler implements [`Preservable`] and holds a [`Registration`]; the generic
//! [`PreservableVTable`] turns the trait into the table, as `miscdevice.rs` does for file
//! operations. A C subsystem could fill the table directly.
//!
//! The lifecycle of an entry, in the order the core calls a handler:
//!
//! - `can_preserve`: is this file of the handler's type? Cheap, no side effects.
//! - `prepare` (at `ADD`): make the file preservable. It may be destructive (freeze a memfd,
//!   quiesce a device), and may name other files this one depends on.
//! - `unprepare`: the exact undo of `prepare` (at `REMOVE`, when the last fd of an unsealed box
//!   closes, or when a built-in handler unregisters with entries left). It can't fail.
//! - `serialize` (at `SEAL`): capture the final state and write the payload; returns the
//!   payload version written. `unserialize` undoes what it did beyond writing bytes (at
//!   `CANCEL`, or when another entry's `serialize` fails).
//! - after the kexec, `restore` builds a new file from the payload, with the files of its
//!   dependencies already restored; `discard` frees what an entry that is never restored holds.

use core::marker::PhantomData;
use kernel::{
    bindings,
    error::{
        from_result,
        to_result, //
    },
    ffi::{
        c_char,
        c_int,
        c_void, //
    },
    fs::File,
    module::this_module,
    prelude::*,
    sync::aref::ARef,
    types::Opaque, //
};

/// The version of [`HandlerOps`]; a core refuses a table of another version.
pub const ABI_VERSION: u32 = 2;

/// Where `prepare` names the files an entry depends on.
///
/// The core takes a reference to each file; at `SEAL` each must be an entry of the same box.
#[repr(C)]
pub struct DepSink {
    /// The core's context.
    pub ctx: *mut c_void,
    /// Records one dependency; takes its own reference to `file`.
    pub add: unsafe extern "C" fn(ctx: *mut c_void, file: *mut bindings::file) -> c_int,
}

/// Where `serialize` writes an entry's payload.
#[repr(C)]
pub struct PayloadSink {
    /// The core's context.
    pub ctx: *mut c_void,
    /// Appends `len` bytes at `data`.
    pub write: unsafe extern "C" fn(ctx: *mut c_void, data: *const u8, len: usize) -> c_int,
    /// The index at which dependency `file` will be passed to `restore`, or `-ENOENT`.
    pub dep_index: unsafe extern "C" fn(ctx: *mut c_void, file: *mut bindings::file) -> c_int,
    /// The newest payload version `serialize` may write: the handler's `version`, or one
    /// less when the box is sealed with `FDBOX_SEAL_PREVIOUS`.
    pub max_version: u32,
}

/// A handler, as registered with `fdbox_register_handler()`.
///
/// The table must stay valid and unchanged until `fdbox_unregister_handler()` returns. The core
/// pins `owner` while the handler has entries, so the callbacks stay loaded.
#[repr(C)]
pub struct HandlerOps {
    /// [`ABI_VERSION`].
    pub abi_version: u32,
    /// `size_of::<HandlerOps>()`, so that later versions can append fields.
    pub size: u32,
    /// The handler's compatible string, e.g. `"memfd"`; NUL-terminated, at most 63 bytes.
    pub compatible: *const c_char,
    /// The payload version `serialize` writes by default.
    pub version: u32,
    /// The oldest payload version `restore` reads.
    pub min_version: u32,
    /// The module that holds the callbacks.
    pub owner: *mut bindings::module,
    /// Whether `file` is of this handler's type.
    pub can_preserve: unsafe extern "C" fn(file: *mut bindings::file) -> bool,
    /// Prepares `file`; on success stores the handler's state in `*state`.
    pub prepare: unsafe extern "C" fn(
        file: *mut bindings::file,
        deps: *mut DepSink,
        state: *mut *mut c_void,
    ) -> c_int,
    /// Undoes `prepare` and frees `state`.
    pub unprepare: unsafe extern "C" fn(file: *mut bindings::file, state: *mut c_void),
    /// Writes the payload; stores the payload version written in `*version`.
    pub serialize: unsafe extern "C" fn(
        file: *mut bindings::file,
        state: *mut c_void,
        out: *mut PayloadSink,
        version: *mut u32,
    ) -> c_int,
    /// Undoes the side effects of a successful `serialize`.
    pub unserialize: unsafe extern "C" fn(file: *mut bindings::file, state: *mut c_void),
    /// Builds a file from a payload; stores a new reference in `*out`.
    pub restore: unsafe extern "C" fn(
        version: u32,
        payload: *const u8,
        len: usize,
        deps: *const *mut bindings::file,
        n_deps: usize,
        out: *mut *mut bindings::file,
    ) -> c_int,
    /// Frees what an entry that will never be restored holds.
    pub discard: unsafe extern "C" fn(version: u32, payload: *const u8, len: usize),
    /// `FDBOX_SETTLE_FD`: moves `file`'s memory where a hand-over can keep it; NULL if the
    /// handler has no such notion.
    pub settle: Option<
        unsafe extern "C" fn(file: *mut bindings::file, flags: u32, out: *mut Settled) -> c_int,
    >,
}

/// `FDBOX_SETTLE_NOW`: move the memory out of KHO scratch and `ZONE_MOVABLE` now.
pub const SETTLE_NOW: u32 = 1 << 0;
/// `FDBOX_SETTLE_FUTURE`: allocate the file's future memory outside them.
pub const SETTLE_FUTURE: u32 = 1 << 1;

/// What [`Preservable::settle`] found and did, as `FDBOX_SETTLE_FD` reports it.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Settled {
    /// Folios that were in KHO scratch or `ZONE_MOVABLE` when the call began.
    pub unsettled: u64,
    /// How many of them were moved out.
    pub migrated: u64,
}

// The only exported entry points of `fdbox_core`. `HandlerOps` is only passed by pointer, so
// the zero-sized bindgen members of `struct module` don't matter.
#[allow(improper_ctypes)]
extern "C" {
    fn fdbox_register_handler(ops: *const HandlerOps) -> c_int;
    fn fdbox_unregister_handler(ops: *const HandlerOps);
}

/// The files an entry depends on, named during `prepare`.
pub struct Dependencies<'a> {
    sink: &'a mut DepSink,
}

impl Dependencies<'_> {
    /// Records that the entry being prepared needs `file` restored first.
    ///
    /// `file` must be added to the same box before it is sealed (`ENOENT` otherwise).
    pub fn add(&mut self, file: &File) -> Result {
        // SAFETY: The core gave us a valid sink for the duration of `prepare`, and `file` is a
        // valid file; the core takes its own reference.
        to_result(unsafe { (self.sink.add)(self.sink.ctx, file.as_ptr()) })
    }
}

/// Where `serialize` writes an entry's payload.
pub struct Payload<'a> {
    sink: &'a mut PayloadSink,
}

impl Payload<'_> {
    /// Appends `data` to the payload.
    pub fn write(&mut self, data: &[u8]) -> Result {
        // SAFETY: The core gave us a valid sink for the duration of `serialize`, and `data` is
        // valid for reads of `data.len()` bytes.
        to_result(unsafe { (self.sink.write)(self.sink.ctx, data.as_ptr(), data.len()) })
    }

    /// The index at which dependency `file` will be passed to [`Preservable::restore`] in its
    /// [`RestoredDeps`], for the payload to record which dependency is which.
    pub fn dep_index(&mut self, file: &File) -> Result<usize> {
        // SAFETY: The core gave us a valid sink for the duration of `serialize`, and `file` is
        // valid.
        let ret = unsafe { (self.sink.dep_index)(self.sink.ctx, file.as_ptr()) };
        to_result(ret)?;
        usize::try_from(ret).map_err(|_| EINVAL)
    }

    /// The newest payload version [`Preservable::serialize`] may write:
    /// [`Preservable::VERSION`], or `VERSION - 1` when the box is sealed with
    /// `FDBOX_SEAL_PREVIOUS` for a kernel that reads only that.
    pub fn max_version(&self) -> u32 {
        self.sink.max_version
    }
}

/// The restored files of an entry's dependencies, once each, in the order of the blob (which
/// restores dependencies first). `serialize` learns each one's index with
/// [`Payload::dep_index`].
pub struct RestoredDeps<'a> {
    files: &'a [*mut bindings::file],
}

impl RestoredDeps<'_> {
    /// The number of dependencies.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the entry has no dependency.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The restored file of dependency `index`.
    pub fn get(&self, index: usize) -> Option<&File> {
        let file = *self.files.get(index)?;
        // SAFETY: The core passes valid files it holds a reference to for the duration of
        // `restore`, and no `fdget_pos` region is active on them.
        Some(unsafe { File::from_raw_file(file) })
    }
}

/// A file type that FDBox can carry across a kexec.
///
/// Every method runs in process context and may sleep. None may panic.
#[vtable]
pub trait Preservable {
    /// What `prepare` keeps for `unprepare` and `serialize`.
    type State: Send + Sync;

    /// The compatible string naming the handler in the hand-over; at most 63 bytes.
    const COMPATIBLE: &'static CStr;

    /// The payload version `serialize` writes by default.
    const VERSION: u32;

    /// The oldest payload version `restore` reads.
    const MIN_VERSION: u32;

    /// Whether `file` is of this handler's type. Cheap, no side effects.
    fn can_preserve(file: &File) -> bool;

    /// Makes `file` preservable, naming in `deps` the files it depends on.
    ///
    /// May change the file (freeze it, quiesce a device); [`Preservable::unprepare`] must undo
    /// every change. On error, nothing may have changed.
    fn prepare(file: &File, deps: &mut Dependencies<'_>) -> Result<Self::State>;

    /// Undoes [`Preservable::prepare`] exactly. Can't fail.
    fn unprepare(file: &File, state: Self::State);

    /// Captures the final state of `file` into `out`; returns the payload version written,
    /// at most [`Payload::max_version`]. A handler that can't express the state at that
    /// version fails with `EOPNOTSUPP`. The core enforces the limit only under
    /// `FDBOX_SEAL_PREVIOUS` (`EPROTO`), so that a test handler can forge newer versions.
    ///
    /// Anything it does beyond writing bytes must be undone by [`Preservable::unserialize`].
    /// On error, it must have undone its own side effects.
    fn serialize(file: &File, state: &mut Self::State, out: &mut Payload<'_>) -> Result<u32>;

    /// Undoes the side effects of a successful [`Preservable::serialize`].
    fn unserialize(_file: &File, _state: &mut Self::State) {}

    /// Builds a new file from a payload of `version`, after the kexec.
    ///
    /// Consumes what the entry holds either way: on error it must free it (preserved memory
    /// can't be handed back to KHO), and the entry is never passed to
    /// [`Preservable::discard`]. Except for `EACCES` (the caller may not have the file),
    /// `EBUSY` (something it needs is taken), `ENOSPC` (the caller's pool or limits can't
    /// take it now) and `EINTR` (the caller is being killed), which it returns only before it
    /// has consumed anything: the entry then stays pending, to be retrieved again.
    fn restore(version: u32, payload: &[u8], deps: &RestoredDeps<'_>) -> Result<ARef<File>>;

    /// Frees what an entry holds that will never be restored (preserved memory).
    fn discard(_version: u32, _payload: &[u8]) {}

    /// `FDBOX_SETTLE_FD` on a file [`Preservable::can_preserve`] accepts: `FDBOX_SETTLE_*`
    /// `flags`, already checked. Only handlers of files with memory that a hand-over can't
    /// keep where it is (KHO scratch, `ZONE_MOVABLE`) implement it.
    fn settle(_file: &File, _flags: u32) -> Result<Settled> {
        kernel::build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }
}

/// The trampolines from [`HandlerOps`] into a [`Preservable`].
pub struct PreservableVTable<T: Preservable>(PhantomData<T>);

impl<T: Preservable> PreservableVTable<T> {
    /// # Safety
    ///
    /// `file` must be a valid file.
    unsafe extern "C" fn can_preserve(file: *mut bindings::file) -> bool {
        // SAFETY: `file` is valid for the call, and no `fdget_pos` region is active on it.
        T::can_preserve(unsafe { File::from_raw_file(file) })
    }

    /// # Safety
    ///
    /// `file` must be a valid file, `deps` a valid sink and `state` valid for writes.
    unsafe extern "C" fn prepare(
        file: *mut bindings::file,
        deps: *mut DepSink,
        state: *mut *mut c_void,
    ) -> c_int {
        from_result(|| {
            // Allocated first, so that nothing can fail after a successful `prepare`.
            let slot = KBox::<T::State>::new_uninit(GFP_KERNEL)?;
            // SAFETY: The caller passes a valid sink, exclusive for this call.
            let sink = unsafe { &mut *deps };
            let mut deps = Dependencies { sink };
            // SAFETY: `file` is valid for the call, and no `fdget_pos` region is active on it.
            let prepared = T::prepare(unsafe { File::from_raw_file(file) }, &mut deps)?;
            let prepared = KBox::write(slot, prepared);
            // SAFETY: The caller passes `state` valid for writes.
            unsafe { state.write(KBox::into_raw(prepared).cast()) };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// `file` must be valid, and `state` must come from a successful `prepare` of this file
    /// that was not unprepared yet. `state` is freed.
    unsafe extern "C" fn unprepare(file: *mut bindings::file, state: *mut c_void) {
        // SAFETY: By the safety requirements, `state` came from `KBox::into_raw` in `prepare`
        // and ownership passes back here.
        let state = unsafe { KBox::from_raw(state.cast::<T::State>()) };
        // SAFETY: `file` is valid for the call, and no `fdget_pos` region is active on it.
        T::unprepare(
            unsafe { File::from_raw_file(file) },
            KBox::into_inner(state),
        );
    }

    /// # Safety
    ///
    /// `file` and `state` as for `unprepare`; `out` a valid sink; `version` valid for writes.
    unsafe extern "C" fn serialize(
        file: *mut bindings::file,
        state: *mut c_void,
        out: *mut PayloadSink,
        version: *mut u32,
    ) -> c_int {
        from_result(|| {
            // SAFETY: `state` came from `prepare`; the core serializes calls for one entry.
            let state = unsafe { &mut *state.cast::<T::State>() };
            // SAFETY: The caller passes a valid sink, exclusive for this call.
            let sink = unsafe { &mut *out };
            let mut out = Payload { sink };
            // SAFETY: `file` is valid for the call, and no `fdget_pos` region is active on it.
            let written = T::serialize(unsafe { File::from_raw_file(file) }, state, &mut out)?;
            // SAFETY: The caller passes `version` valid for writes.
            unsafe { version.write(written) };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// As for `serialize`, after a successful `serialize`.
    unsafe extern "C" fn unserialize(file: *mut bindings::file, state: *mut c_void) {
        // SAFETY: `state` came from `prepare`; the core serializes calls for one entry.
        let state = unsafe { &mut *state.cast::<T::State>() };
        // SAFETY: `file` is valid for the call, and no `fdget_pos` region is active on it.
        T::unserialize(unsafe { File::from_raw_file(file) }, state);
    }

    /// # Safety
    ///
    /// `payload` valid for reads of `len` bytes; `deps` valid for reads of `n_deps` valid files;
    /// `out` valid for writes.
    unsafe extern "C" fn restore(
        version: u32,
        payload: *const u8,
        len: usize,
        deps: *const *mut bindings::file,
        n_deps: usize,
        out: *mut *mut bindings::file,
    ) -> c_int {
        from_result(|| {
            // SAFETY: The caller passes `payload` valid for `len` bytes for the call.
            let payload = unsafe { core::slice::from_raw_parts(payload, len) };
            let files = if n_deps == 0 {
                &[][..]
            } else {
                // SAFETY: The caller passes `deps` valid for `n_deps` elements for the call.
                unsafe { core::slice::from_raw_parts(deps, n_deps) }
            };
            let file = T::restore(version, payload, &RestoredDeps { files })?;
            // SAFETY: The caller passes `out` valid for writes; the reference moves to it.
            unsafe { out.write(ARef::into_raw(file).as_ptr().cast()) };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// `payload` valid for reads of `len` bytes.
    unsafe extern "C" fn discard(version: u32, payload: *const u8, len: usize) {
        // SAFETY: The caller passes `payload` valid for `len` bytes for the call.
        let payload = unsafe { core::slice::from_raw_parts(payload, len) };
        T::discard(version, payload);
    }

    /// # Safety
    ///
    /// `file` must be a valid file that `can_preserve` accepted; `out` valid for writes.
    unsafe extern "C" fn settle(file: *mut bindings::file, flags: u32, out: *mut Settled) -> c_int {
        from_result(|| {
            // SAFETY: `file` is valid for the call, and no `fdget_pos` region is active on it.
            let settled = T::settle(unsafe { File::from_raw_file(file) }, flags)?;
            // SAFETY: The caller passes `out` valid for writes.
            unsafe { out.write(settled) };
            Ok(0)
        })
    }

    /// The table of `T`, for `module`.
    fn ops(module: *mut bindings::module) -> HandlerOps {
        HandlerOps {
            abi_version: ABI_VERSION,
            // CAST: The table is a few dozen bytes.
            size: core::mem::size_of::<HandlerOps>() as u32,
            compatible: T::COMPATIBLE.as_char_ptr(),
            version: T::VERSION,
            min_version: T::MIN_VERSION,
            owner: module,
            can_preserve: Self::can_preserve,
            prepare: Self::prepare,
            unprepare: Self::unprepare,
            serialize: Self::serialize,
            unserialize: Self::unserialize,
            restore: Self::restore,
            discard: Self::discard,
            settle: if T::HAS_SETTLE {
                Some(Self::settle)
            } else {
                None
            },
        }
    }
}

/// A registered handler; unregisters on drop.
///
/// # Invariants
///
/// `ops` holds a table registered with `fdbox_register_handler()`, until drop.
#[pin_data(PinnedDrop)]
pub struct Registration<T: Preservable> {
    #[pin]
    ops: Opaque<HandlerOps>,
    _t: PhantomData<T>,
}

// SAFETY: The table is only read after registration, from any thread.
unsafe impl<T: Preservable> Send for Registration<T> {}
// SAFETY: As above; `&self` gives no access to the table.
unsafe impl<T: Preservable> Sync for Registration<T> {}

impl<T: Preservable> Registration<T> {
    /// Registers `T` with `fdbox_core`.
    pub fn register() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            ops <- Opaque::try_ffi_init(move |slot: *mut HandlerOps| {
                let module = this_module::<T::OwnerModule>().as_ptr();
                // SAFETY: The initializer may write to `slot`.
                unsafe { slot.write(PreservableVTable::<T>::ops(module)) };
                // SAFETY: `slot` holds a valid table; it is pinned and unregistered in drop
                // before its memory goes.
                // INVARIANT: On success the table is registered.
                to_result(unsafe { fdbox_register_handler(slot) })
            }),
            _t: PhantomData,
        })
    }
}

#[pinned_drop]
impl<T: Preservable> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariants, the table is registered.
        unsafe { fdbox_unregister_handler(self.ops.get()) };
    }
}

/// The `.modinfo` strings by which a module declares what it reads and writes, so that a tool
/// reads them from the `.ko` files of a kernel that isn't running (`fdbox check`).
///
/// `module!` takes no custom keys, and a C `MODULE_INFO` would repeat the trait's constants
/// that a build-time check then compares: built here from the constants themselves, the
/// strings can't disagree with what the module registers.
pub mod modinfo {
    /// A piece of a `.modinfo` string.
    pub enum Piece<'a> {
        /// Bytes as they are.
        Text(&'a [u8]),
        /// A number in decimal.
        Number(u32),
    }

    const fn digits(mut n: u32) -> usize {
        let mut len = 1;
        while n >= 10 {
            n /= 10;
            len += 1;
        }
        len
    }

    /// The length of the string of `pieces`, with its NUL.
    pub const fn len(pieces: &[Piece<'_>]) -> usize {
        let mut len = 1;
        let mut i = 0;
        while i < pieces.len() {
            len += match pieces[i] {
                Piece::Text(t) => t.len(),
                Piece::Number(n) => digits(n),
            };
            i += 1;
        }
        len
    }

    /// The string of `pieces`, NUL-terminated; `N` is [`len`]`(pieces)`.
    pub const fn build<const N: usize>(pieces: &[Piece<'_>]) -> [u8; N] {
        let mut out = [0u8; N];
        let mut at = 0;
        let mut i = 0;
        while i < pieces.len() {
            match pieces[i] {
                Piece::Text(t) => {
                    let mut j = 0;
                    while j < t.len() {
                        out[at] = t[j];
                        at += 1;
                        j += 1;
                    }
                }
                Piece::Number(n) => {
                    let len = digits(n);
                    let mut rest = n;
                    let mut j = len;
                    while j > 0 {
                        j -= 1;
                        // CAST: A decimal digit.
                        out[at + j] = b'0' + (rest % 10) as u8;
                        rest /= 10;
                    }
                    at += len;
                }
            }
            i += 1;
        }
        out
    }

    /// Whether `bytes` can stand in a `.modinfo` value between separators.
    pub const fn is_plain(bytes: &[u8]) -> bool {
        let mut i = 0;
        while i < bytes.len() {
            if matches!(bytes[i], 0 | b':' | b'=' | b' ') {
                return false;
            }
            i += 1;
        }
        !bytes.is_empty()
    }
}

/// Puts one `.modinfo` string made of [`modinfo::Piece`]s into the module; built in, prefixed
/// with the module's name and a dot, as `module!` does, for `modules.builtin.modinfo`.
#[macro_export]
macro_rules! fdbox_modinfo {
    ($($piece:expr),+ $(,)?) => {
        const _: () = {
            use $crate::preservable::modinfo::{self, Piece::*};
            #[cfg(MODULE)]
            const PIECES: &[modinfo::Piece<'static>] = &[$($piece),+];
            #[cfg(not(MODULE))]
            const PIECES: &[modinfo::Piece<'static>] = &[
                Text(<$crate::LocalModule as ::kernel::ModuleMetadata>::NAME.to_bytes()),
                Text(b"."),
                $($piece),+
            ];
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static MODINFO: [u8; modinfo::len(PIECES)] = modinfo::build(PIECES);
        };
    };
}

/// Declares handler `T` in the module's `.modinfo`: `fdbox_handler=COMPATIBLE:MIN-VERSION`,
/// the payload versions its `restore` reads and the newest its `serialize` writes.
#[macro_export]
macro_rules! fdbox_handler_modinfo {
    ($handler:ty) => {
        const _: () = {
            let compatible = <$handler as $crate::preservable::Preservable>::COMPATIBLE.to_bytes();
            assert!(
                $crate::preservable::modinfo::is_plain(compatible) && compatible.len() < 64,
                "a compatible string is 1 to 63 bytes without NUL, ':', '=' or ' '"
            );
            assert!(
                <$handler as $crate::preservable::Preservable>::MIN_VERSION
                    <= <$handler as $crate::preservable::Preservable>::VERSION,
                "MIN_VERSION is above VERSION"
            );
        };
        $crate::fdbox_modinfo!(
            Text(b"fdbox_handler="),
            Text(<$handler as $crate::preservable::Preservable>::COMPATIBLE.to_bytes()),
            Text(b":"),
            Number(<$handler as $crate::preservable::Preservable>::MIN_VERSION),
            Text(b"-"),
            Number(<$handler as $crate::preservable::Preservable>::VERSION),
        );
    };
}
