// SPDX-License-Identifier: GPL-2.0

//! `/sys/kernel/debug/fdbox/`: `boxes` (a table of boxes and entries with their states),
//! `outgoing` and `incoming` (the raw blobs, for `fdbox inspect`).
//!
//! `boxes` is rendered once per open. Each `read()` of a blob copies its part under the lock
//! and hands it to userspace after; a seal or cancel between two reads of one file shows as a
//! checksum mismatch to the inspector.

use crate::{
    state::{
        availability,
        IncomingBox,
        Kind,
        State,
        FDBOX, //
    },
    uapi::*, //
};
use core::fmt::Write;
use kernel::{
    debugfs::{
        BinaryWriter,
        Writer as TextWriter, //
    },
    fs::file,
    prelude::*,
    uaccess::UserSliceWriter, //
};

/// The `boxes` file.
pub(crate) struct BoxesView;

impl TextWriter for BoxesView {
    fn write(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        boxes(&FDBOX.lock(), f)
    }
}

/// The `outgoing` file: the blob registered with KHO, if any.
pub(crate) struct OutgoingView;

impl BinaryWriter for OutgoingView {
    fn write_to_slice(
        &self,
        writer: &mut UserSliceWriter,
        offset: &mut file::Offset,
    ) -> Result<usize> {
        let chunk = {
            let guard = FDBOX.lock();
            let blob = guard.subtree.as_ref().map(|s| s.as_slice()).unwrap_or(&[]);
            chunk_at(blob, *offset, writer.len())?
        };
        copy_out(writer, offset, &chunk)
    }
}

/// The `incoming` file: a copy of the blob the previous kernel handed over, if any.
pub(crate) struct IncomingView;

impl BinaryWriter for IncomingView {
    fn write_to_slice(
        &self,
        writer: &mut UserSliceWriter,
        offset: &mut file::Offset,
    ) -> Result<usize> {
        let chunk = chunk_at(&FDBOX.lock().incoming.raw, *offset, writer.len())?;
        copy_out(writer, offset, &chunk)
    }
}

/// The most a blob file's `read()` copies at once.
const CHUNK: usize = 64 << 10;

/// A copy of the part of `blob` a read at `offset` of up to `len` bytes returns.
fn chunk_at(blob: &[u8], offset: file::Offset, len: usize) -> Result<KVVec<u8>> {
    let start = usize::try_from(offset).map_err(|_| EINVAL)?.min(blob.len());
    let end = start.saturating_add(len.min(CHUNK)).min(blob.len());
    let mut chunk = KVVec::new();
    chunk.extend_from_slice(blob.get(start..end).unwrap_or(&[]), GFP_KERNEL)?;
    Ok(chunk)
}

/// Copies `chunk` to userspace, outside the lock, and advances `offset`.
fn copy_out(
    writer: &mut UserSliceWriter,
    offset: &mut file::Offset,
    chunk: &[u8],
) -> Result<usize> {
    writer.write_slice(chunk)?;
    // CAST: At most `CHUNK`.
    *offset = offset.saturating_add(chunk.len() as file::Offset);
    Ok(chunk.len())
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
fn boxes(state: &State, out: &mut impl Write) -> core::fmt::Result {
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
                        e.payload_len
                    )?;
                }
            }
            Kind::Incoming(IncomingBox { entries, .. }) => {
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
