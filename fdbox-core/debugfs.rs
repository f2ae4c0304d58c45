// SPDX-License-Identifier: GPL-2.0

//! `/sys/kernel/debug/fdbox/`: `boxes` (a table of boxes and entries with their states),
//! `outgoing` and `incoming` (the raw blobs, for `fdbox inspect`).
//!
//! `boxes` is rendered once per open. It never waits for a box: one that an operation holds
//! (a handler may be stuck in it) is listed as `busy`, without its entries. Each `read()` of a
//! blob copies its part under the lock and hands it to userspace after; a seal or cancel
//! between two reads of one file shows as a checksum mismatch to the inspector.

use crate::{
    outgoing::HANDOVER,
    state::{
        availability,
        FdBox,
        IncomingBox,
        Kind,
        TABLE, //
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
    sync::Arc,
    uaccess::UserSliceWriter, //
};

/// The `boxes` file.
pub(crate) struct BoxesView;

impl TextWriter for BoxesView {
    fn write(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        boxes(f)
    }
}

/// The `outgoing` file: one blob of every sealed box, with their out-of-line payloads inline.
pub(crate) struct OutgoingView;

impl BinaryWriter for OutgoingView {
    fn write_to_slice(
        &self,
        writer: &mut UserSliceWriter,
        offset: &mut file::Offset,
    ) -> Result<usize> {
        let chunk = chunk_at(HANDOVER.lock().view()?, *offset, writer.len())?;
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
        let chunk = chunk_at(&TABLE.lock().incoming.raw, *offset, writer.len())?;
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
fn boxes(out: &mut impl Write) -> core::fmt::Result {
    // The boxes are listed from a snapshot, so that no box lock is taken under the table's.
    let mut list: KVec<(Arc<FdBox>, u32)> = KVec::new();
    {
        let table = TABLE.lock();
        let incoming = match table.incoming.status {
            FDBOX_INCOMING_OK => "ok",
            FDBOX_INCOMING_UNUSABLE => "unusable",
            _ => "none",
        };
        write!(out, "incoming: {incoming}")?;
        if let Some(err) = &table.incoming.error {
            write!(out, ": {err}")?;
        }
        if let Some(err) = &table.incoming.errno {
            write!(out, ": errno {}", err.to_errno())?;
        }
        writeln!(out)?;
        for h in table.handlers().iter() {
            let name = h.compatible().to_str().unwrap_or("?");
            let ops = h.ops();
            writeln!(
                out,
                "handler {name} versions {}..={}",
                ops.min_version, ops.version
            )?;
        }
        for (uid, usage) in table.quotas.iter() {
            writeln!(
                out,
                "usage uid {uid} boxes {} entries {} bytes {}",
                usage.boxes, usage.entries, usage.bytes
            )?;
        }
        list.reserve(table.boxes().len(), GFP_KERNEL)
            .map_err(|_| core::fmt::Error)?;
        for slot in table.boxes() {
            let _ = list.push_within_capacity((slot.fdbox.clone(), slot.fds));
        }
    }
    for (b, fds) in list.iter() {
        write_box(out, b, *fds)?;
    }
    Ok(())
}

/// One box of the `boxes` table, with its entries unless an operation holds it.
fn write_box(out: &mut impl Write, b: &FdBox, fds: u32) -> core::fmt::Result {
    let dir = if b.direction == FDBOX_DIR_OUTGOING {
        "outgoing"
    } else {
        "incoming"
    };
    let Some(inner) = b.inner.try_lock() else {
        let st = match b.published_state() {
            FDBOX_BOX_SEALED => "sealed",
            FDBOX_BOX_OPEN => "open",
            _ => "incoming",
        };
        return writeln!(
            out,
            "box {} {dir} {st} owner {} fds {fds} entries {} busy",
            b.name.as_str(),
            b.owner,
            b.published_len()
        );
    };
    let st = match &inner.kind {
        Kind::Outgoing(o) if o.sealed => "sealed",
        Kind::Outgoing(_) => "open",
        Kind::Incoming(_) => "incoming",
    };
    writeln!(
        out,
        "box {} {dir} {st} owner {} fds {fds} entries {}",
        b.name.as_str(),
        b.owner,
        inner.len()
    )?;
    match &inner.kind {
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
            let status = availability(&TABLE.lock(), entries).map_err(|_| core::fmt::Error)?;
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
    Ok(())
}
