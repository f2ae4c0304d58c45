// SPDX-License-Identifier: GPL-2.0

//! The handler registry: the exported `fdbox_register_handler()` and
//! `fdbox_unregister_handler()`, and references that pin a handler's module.

use crate::{
    preservable::{
        HandlerOps,
        ABI_VERSION, //
    },
    state::TABLE,
    uapi::FDBOX_COMPATIBLE_LEN, //
};
use kernel::{
    bindings,
    ffi::c_int,
    prelude::*,
    str::CStr, //
};

/// The most handlers registered at once.
pub(crate) const MAX_HANDLERS: usize = 64;

/// A registered handler's table.
///
/// # Invariants
///
/// `ops` points to a table registered with `fdbox_register_handler()` and checked there. It
/// stays valid while registered, and while its owner module is pinned.
#[derive(Clone, Copy)]
pub(crate) struct Handler {
    ops: *const HandlerOps,
}

// SAFETY: The table is immutable while registered and may be read from any thread.
unsafe impl Send for Handler {}

impl Handler {
    /// The table.
    pub(crate) fn ops(&self) -> &HandlerOps {
        // SAFETY: By the type invariants, `ops` is valid.
        unsafe { &*self.ops }
    }

    /// The compatible string.
    pub(crate) fn compatible(&self) -> &CStr {
        // SAFETY: Checked at registration to be a NUL-terminated string that lives as long as
        // the table.
        unsafe { CStr::from_char_ptr(self.ops().compatible) }
    }

    /// Whether this is the handler of `ops`.
    pub(crate) fn is(&self, ops: *const HandlerOps) -> bool {
        core::ptr::eq(self.ops, ops)
    }

    /// Whether `version` is one this handler restores.
    pub(crate) fn reads(&self, version: u32) -> bool {
        (self.ops().min_version..=self.ops().version).contains(&version)
    }

    /// Pins the handler's module, so that its callbacks stay loaded while the returned
    /// reference lives.
    pub(crate) fn pin(&self) -> Result<HandlerRef> {
        // SAFETY: `owner` is the handler's module (or NULL for built-in code).
        if !unsafe { bindings::try_module_get(self.ops().owner) } {
            return Err(ENODEV);
        }
        // INVARIANT: The module reference was just taken.
        Ok(HandlerRef { handler: *self })
    }
}

/// A handler whose module is pinned.
///
/// # Invariants
///
/// Holds a reference to the handler's owner module.
pub(crate) struct HandlerRef {
    handler: Handler,
}

impl HandlerRef {
    /// The handler.
    pub(crate) fn get(&self) -> &Handler {
        &self.handler
    }
}

impl Drop for HandlerRef {
    fn drop(&mut self) {
        // SAFETY: By the type invariants, we hold a reference to this module.
        unsafe { bindings::module_put(self.handler.ops().owner) };
    }
}

/// Checks a table a module wants to register.
///
/// # Safety
///
/// `ops` must be NULL or point to a readable table of at least the size it claims.
unsafe fn check(ops: *const HandlerOps) -> Result<Handler> {
    if ops.is_null() {
        return Err(EINVAL);
    }
    // SAFETY: Non-NULL and readable by the safety requirements; the ABI version and size come
    // first in every version of the table.
    let (abi, size) = unsafe { ((*ops).abi_version, (*ops).size) };
    // CAST: The size of the table fits `u32`.
    if abi != ABI_VERSION || (size as usize) < core::mem::size_of::<HandlerOps>() {
        pr_err!(
            "handler table of ABI {abi}, size {size} refused; this core has ABI {ABI_VERSION}\n"
        );
        return Err(EINVAL);
    }
    // SAFETY: The table is as large as this core's `HandlerOps`.
    let table = unsafe { &*ops };
    if table.compatible.is_null() || table.min_version > table.version {
        return Err(EINVAL);
    }
    // INVARIANT: The table is checked; it stays valid until unregistered, by the contract of
    // `fdbox_register_handler()`.
    let handler = Handler { ops };
    let compatible = handler.compatible().to_str().map_err(|_| EINVAL)?;
    // CAST: A small constant.
    if compatible.is_empty() || compatible.len() >= FDBOX_COMPATIBLE_LEN as usize {
        return Err(EINVAL);
    }
    Ok(handler)
}

/// Registers a handler.
///
/// Returns 0, `-EINVAL` for a malformed table, `-EEXIST` if a handler with the same compatible
/// string is registered, `-ENOSPC` past [`MAX_HANDLERS`], or `-ENOMEM`.
///
/// # Safety
///
/// `ops` must point to a valid table that stays valid and unchanged until
/// `fdbox_unregister_handler(ops)` returns, or, for built-in code (no owner module), for good.
#[no_mangle]
unsafe extern "C" fn fdbox_register_handler(ops: *const HandlerOps) -> c_int {
    // SAFETY: By the safety requirements.
    let handler = match unsafe { check(ops) } {
        Ok(handler) => handler,
        Err(err) => return err.to_errno(),
    };
    if let Err(err) = TABLE.lock().add_handler(handler, MAX_HANDLERS) {
        return err.to_errno();
    }
    pr_info!(
        "handler {} registered (payload versions {}..={})\n",
        handler.compatible(),
        handler.ops().min_version,
        handler.ops().version
    );
    0
}

/// Unregisters a handler.
///
/// Safe with live entries. An outgoing entry pins its handler's module, so a module's handler
/// has none left by the time it unregisters; built-in code (no owner module) may still have
/// some, and they are unprepared here, leaving their boxes and the hand-over without them.
/// Incoming entries look their handler up again when they are restored. A call already under
/// way (an `ADD` that chose this handler, an entry being dropped) may still run a callback of
/// a built-in handler after this returns: built-in code stays loaded, and its table must stay
/// valid.
///
/// # Safety
///
/// `ops` must have been passed to a successful `fdbox_register_handler()`.
#[no_mangle]
unsafe extern "C" fn fdbox_unregister_handler(ops: *const HandlerOps) {
    TABLE.lock().remove_handler(ops);
    crate::outgoing::drop_handler_entries(ops);
}
