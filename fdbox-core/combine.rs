// SPDX-License-Identifier: GPL-2.0

//! One blob of many boxes, from the blobs of single boxes.
//!
//! A kernel hands each sealed box over as a blob of its own, with long payloads out of line
//! (`Payload::Chunked`). Joined, with those payloads inline, they make one blob of the
//! format's single-blob shape: what debugfs shows of the outgoing hand-over, and what the
//! incoming side validates and takes its boxes from.

use crate::fdbox_format::{
    Encoder,
    EntryRecord,
    ManifestView,
    Payload, //
};
use kernel::prelude::*;

/// Joins the boxes of `views`, in order, into one blob. `resolve` gives the bytes of each
/// chunked payload, or `None` to keep its reference (an entry the reader will find corrupt).
/// Empty if there is no box.
pub(crate) fn combine<'a, I, F>(views: I, mut resolve: F) -> Result<KVVec<u8>>
where
    I: Iterator<Item = &'a [u8]> + Clone,
    F: FnMut(&crate::fdbox_format::ChunkedRef<'_>) -> Option<KVVec<u8>>,
{
    let mut decoded = KVec::new();
    for blob in views {
        decoded.push(decode(blob)?, GFP_KERNEL)?;
    }
    let mut resolved: KVec<KVVec<Option<KVVec<u8>>>> = KVec::new();
    for v in decoded.iter() {
        let mut payloads = KVVec::new();
        for b in v.boxes() {
            for e in b.entries() {
                let bytes = match e.payload {
                    Payload::Chunked(c) => resolve(&c),
                    _ => None,
                };
                payloads.push(bytes, GFP_KERNEL)?;
            }
        }
        resolved.push(payloads, GFP_KERNEL)?;
    }
    let mut payloads = KVec::with_capacity(resolved.len(), GFP_KERNEL)?;
    for r in resolved.iter() {
        payloads.push(r.as_slice(), GFP_KERNEL)?;
    }
    combine_views(&decoded, &payloads)
}

/// Decodes one box's blob, which this kernel wrote or the caller has checked.
fn decode(blob: &[u8]) -> Result<ManifestView<'_>> {
    crate::fdbox_format::decode(blob).map_err(|err| {
        pr_err!("a box's blob doesn't decode: {}\n", format_args!("{err}"));
        EINVAL
    })
}

/// Joins `views`, with the payloads of `resolved`: for each view, one per entry in order.
pub(crate) fn combine_views(
    views: &[ManifestView<'_>],
    resolved: &[&[Option<KVVec<u8>>]],
) -> Result<KVVec<u8>> {
    if views.is_empty() {
        return Ok(KVVec::new());
    }
    let len = encode(views, resolved, Encoder::counting())?;
    let mut blob = KVVec::from_elem(0u8, len, GFP_KERNEL)?;
    let enc = Encoder::new(&mut blob).map_err(failed)?;
    if encode(views, resolved, enc)? != len {
        return Err(EINVAL);
    }
    Ok(blob)
}

/// Runs the joined blob through `enc`; returns its length.
fn encode(
    views: &[ManifestView<'_>],
    resolved: &[&[Option<KVVec<u8>>]],
    mut enc: Encoder<'_>,
) -> Result<usize> {
    let first = views.first().ok_or(EINVAL)?;
    let boxes = views.iter().map(|v| v.box_count() as usize).sum();
    enc.manifest(first.kernel_release, first.fdbox_version, boxes)
        .map_err(failed)?;
    for (i, v) in views.iter().enumerate() {
        let mut payloads = resolved.get(i).copied().unwrap_or(&[]).iter();
        for b in v.boxes() {
            enc.begin_box(&b.head, b.entry_count() as usize)
                .map_err(failed)?;
            for e in b.entries() {
                let mut deps = KVec::with_capacity(e.dep_count() as usize, GFP_KERNEL)?;
                for d in e.deps() {
                    deps.push_within_capacity(d).map_err(|_| ENOMEM)?;
                }
                let payload = match (payloads.next(), e.payload) {
                    (Some(Some(bytes)), Payload::Chunked(_)) => Payload::Inline(bytes),
                    (_, payload) => payload,
                };
                enc.entry(&EntryRecord {
                    name: e.name,
                    handler: e.handler,
                    payload_version: e.payload_version,
                    flags: e.flags,
                    deps: &deps,
                    payload,
                })
                .map_err(failed)?;
            }
        }
    }
    enc.finish().map_err(failed)
}

/// Logs why the encoder refused, and turns it into an errno.
fn failed(err: crate::fdbox_format::Error) -> Error {
    pr_err!("can't join the boxes' blobs: {}\n", format_args!("{err}"));
    EINVAL
}
