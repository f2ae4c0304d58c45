// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The codec the kernel modules include: `core` only, no allocation.
//!
//! A kernel module (its own crate, without `alloc`) includes this file as a
//! module:
//!
//! ```text
//! #[path = "../../fdbox-format/src/kernel.rs"]
//! pub mod fdbox_format;
//! ```
//!
//! at its crate root (the kernel builds modules as `rlib`s, so public items
//! that the module doesn't use raise no warning); a private `mod` needs
//! `#[allow(dead_code, unused_imports, unreachable_pub)]`.
//!
//! Typical use in a module, all without `alloc`:
//!
//! - **Seal:** run the box table through [`Encoder::counting`] to learn the
//!   size, allocate that many bytes (`KVec`), run it again through
//!   [`Encoder::new`], then `kho_add_subtree("fdbox", …)`. A handler sizes its
//!   payload the same way (`memfd::plan`, then `memfd::encode_planned`;
//!   `iommufd::encoded_len`, then `iommufd::encode`; `vfio::encode` into a
//!   `[u8; vfio::MAX_ENCODED_LEN]`).
//! - **Restore:** [`decode`] the retrieved blob into a borrowed
//!   [`ManifestView`], allocate [`scratch_len`] `u64`s and [`validate`], then
//!   walk `boxes()`/`entries()`; [`decode_payload`] says per entry whether it
//!   can be restored or why not.
//!
//! Every submodule below is named with an explicit `#[path]`, relative to this
//! file's directory, so the same tree resolves whether this file is loaded by
//! `lib.rs` or by a module elsewhere. Items refer to each other through
//! `super::`, never `crate::`.

#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::as_conversions,
    missing_docs,
    unsafe_code
)]

#[path = "check.rs"]
pub mod check;
#[path = "crc32c.rs"]
pub mod crc32c;
#[path = "error.rs"]
pub mod error;
#[path = "handlers.rs"]
pub mod handlers;
#[path = "header.rs"]
pub mod header;
#[path = "iommufd.rs"]
pub mod iommufd;
#[path = "limits.rs"]
pub mod limits;
#[path = "manifest.rs"]
pub mod manifest;
#[path = "memfd.rs"]
pub mod memfd;
#[path = "root.rs"]
pub mod root;
#[path = "validate.rs"]
pub mod validate;
#[path = "vfio.rs"]
pub mod vfio;
#[path = "wire.rs"]
pub mod wire;

pub use check::{
    check_entries,
    check_entries_with,
    span_count,
    span_count_with,
    Machine,
    Span, //
};
pub use error::{
    Error,
    ErrorClass,
    Result, //
};
pub use handlers::{
    decode_payload,
    Decoded,
    Unavailable, //
};
pub use header::{
    Header,
    FORMAT_MAJOR,
    FORMAT_MINOR,
    MAGIC, //
};
pub use manifest::{
    decode,
    BoxHead,
    BoxState,
    BoxView,
    ChunkedRef,
    Chunks,
    Encoder,
    EntryRecord,
    EntryView,
    ManifestView,
    Payload,
    PreservedRef, //
};
pub use validate::{
    scratch_len,
    validate, //
};
