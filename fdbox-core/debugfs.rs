// SPDX-License-Identifier: GPL-2.0

//! `/sys/kernel/debug/fdbox/`: `boxes` (a table of boxes and entries with their states),
//! `outgoing` and `incoming` (the raw blobs, for `fdbox inspect`). The files themselves are
//! served by `fdbox_core_c.c`; each open takes a snapshot made here.

use crate::{
    state::{
        availability,
        Kind,
        State,
        FDBOX, //
    },
    uapi::*, //
};
use core::fmt::Write;
use kernel::{
    ffi::c_void,
    prelude::*, //
};

extern "C" {
    fn fdbox_debugfs_init() -> i32;
    fn fdbox_debugfs_exit();
}

/// Creates the debugfs files.
pub(crate) fn init() {
    // SAFETY: Called once from module init; a failure only leaves debugfs without the files.
    if unsafe { fdbox_debugfs_init() } != 0 {
        pr_warn!("no debugfs view\n");
    }
}

/// Removes the debugfs files.
pub(crate) fn exit() {
    // SAFETY: Called once from module exit, after `init`.
    unsafe { fdbox_debugfs_exit() };
}

/// A growing text buffer; a failed allocation fails the write.
struct Text(KVVec<u8>);

impl Write for Text {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0
            .extend_from_slice(s.as_bytes(), GFP_KERNEL)
            .map_err(|_| core::fmt::Error)
    }
}

fn entry_state_name(state: u32) -> &'static str {
    match state {
        FDBOX_ENTRY_PREPARED => "prepared",
        FDBOX_ENTRY_SEALED => "sealed",
        FDBOX_ENTRY_RESTORABLE => "restorable",
        FDBOX_ENTRY_UNAVAILABLE => "unavailable",
        FDBOX_ENTRY_RETRIEVED => "retrieved",
        FDBOX_ENTRY_DISCARDED => "discarded",
        _ => "unknown",
    }
}

fn reason_name(reason: u32) -> &'static str {
    match reason {
        FDBOX_REASON_NONE => "-",
        FDBOX_REASON_NO_HANDLER => "no-handler",
        FDBOX_REASON_VERSION => "unsupported-version",
        FDBOX_REASON_CORRUPT => "corrupt",
        FDBOX_REASON_DEPENDENCY => "dependency-unavailable",
        FDBOX_REASON_RESTORE_FAILED => "restore-failed",
        _ => "unknown",
    }
}

/// The `boxes` table.
fn boxes(state: &State, out: &mut Text) -> core::fmt::Result {
    let incoming = match state.incoming.status {
        FDBOX_INCOMING_OK => "ok",
        FDBOX_INCOMING_UNUSABLE => "unusable",
        _ => "none",
    };
    write!(out, "incoming: {incoming}")?;
    if let Some(err) = &state.incoming.error {
        write!(out, ": {err}")?;
    }
    if let Some(err) = &state.incoming.errno {
        write!(out, ": errno {}", err.to_errno())?;
    }
    writeln!(out)?;
    for h in state.handlers.iter() {
        let name = h.compatible().to_str().unwrap_or("?");
        let ops = h.ops();
        writeln!(
            out,
            "handler {name} versions {}..={}",
            ops.min_version, ops.version
        )?;
    }
    for b in state.boxes.iter() {
        let (dir, st) = match &b.kind {
            Kind::Outgoing(o) if o.sealed => ("outgoing", "sealed"),
            Kind::Outgoing(_) => ("outgoing", "open"),
            Kind::Incoming(_) => ("incoming", "incoming"),
        };
        writeln!(
            out,
            "box {} {dir} {st} owner {} fds {} entries {}",
            b.name.as_str(),
            b.owner,
            b.fds,
            b.len()
        )?;
        match &b.kind {
            Kind::Outgoing(o) => {
                for e in o.entries.iter() {
                    let st = if e.serialized { "sealed" } else { "prepared" };
                    let handler = e.handler.get().compatible().to_str().unwrap_or("?");
                    writeln!(
                        out,
                        "  entry {} {handler} {st} deps {} payload {}",
                        e.name.as_str(),
                        e.deps.len(),
                        e.payload.len()
                    )?;
                }
            }
            Kind::Incoming(entries) => {
                let status = availability(state, entries).map_err(|_| core::fmt::Error)?;
                for (e, &(st, reason)) in entries.iter().zip(status.iter()) {
                    writeln!(
                        out,
                        "  entry {} {} v{} {} {}",
                        e.name.as_str(),
                        e.compatible.as_str(),
                        e.version,
                        entry_state_name(st),
                        reason_name(reason)
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// Builds the snapshot of file `kind`.
fn snapshot(kind: u32) -> Result<KVVec<u8>> {
    let guard = FDBOX.lock();
    let mut out = Text(KVVec::new());
    match kind {
        0 => boxes(&guard, &mut out).map_err(|_| ENOMEM)?,
        1 => {
            if let Some(subtree) = &guard.subtree {
                out.0.extend_from_slice(subtree.as_slice(), GFP_KERNEL)?;
            }
        }
        2 => out.0.extend_from_slice(&guard.incoming.raw, GFP_KERNEL)?,
        _ => return Err(EINVAL),
    }
    Ok(out.0)
}

/// A snapshot of debugfs file `kind` for `fdbox_core_c.c`, which frees it with `kvfree()`.
///
/// # Safety
///
/// `len` must be valid for writes.
#[no_mangle]
unsafe extern "C" fn fdbox_debugfs_snapshot(kind: u32, len: *mut usize) -> *mut c_void {
    match snapshot(kind) {
        // An empty vector has no allocation to hand over.
        Ok(data) if data.is_empty() => {
            // SAFETY: By the safety requirements.
            unsafe { len.write(0) };
            core::ptr::null_mut()
        }
        Ok(data) => {
            let (ptr, length, _capacity) = data.into_raw_parts();
            // SAFETY: By the safety requirements.
            unsafe { len.write(length) };
            ptr.cast()
        }
        // CAST: An errno becomes an `ERR_PTR`.
        Err(err) => err.to_errno() as isize as *mut c_void,
    }
}
