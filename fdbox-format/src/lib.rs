// SPDX-License-Identifier: GPL-2.0 OR MIT

//! FDBox's blob format: the self-describing manifest FDBox hands over a kexec.
//!
//! # Kernel inclusion
//!
//! The kernel has no `alloc` crate and no cross-module Rust crates, so each
//! module compiles the codec into itself from one entry file, `src/kernel.rs`:
//!
//! ```text
//! #[path = "../../fdbox-format/src/kernel.rs"]
//! pub mod fdbox_format;
//! ```
//!
//! (the path is relative to the including file; a private `mod` needs
//! `#[allow(dead_code, unused_imports, unreachable_pub)]`).
//!
//! That file and everything it pulls in use `core` only: the header, CRC32C,
//! the varint reader and writer, the allocation-free [`Encoder`] (write into a
//! `&mut [u8]`, with [`Encoder::counting`] to size it first), the borrowed
//! decoder ([`decode`] → [`ManifestView`]), the handler payloads and the
//! validation pass. `tests/kernel_build.rs` compiles it as a non-root module
//! of a `no_std` `rlib` crate without `alloc`, with the kernel's own rustc and
//! clippy lint flags and `-D warnings`, so it can't rot.
//! This `lib.rs` adds, for userspace only, the owned types of [`owned`]
//! (feature `alloc`) and their serde derives (feature `serde`).
//!
//! # Layout
//!
//! A 32-byte header ([`header`]: magic, major/minor version, flags, lengths,
//! CRC32C of the header and of the body), then the body: the postcard
//! encoding of a [`owned::Manifest`] (see [`manifest`] for the schema). Entry
//! payloads are opaque to the manifest and versioned per handler; the memfd
//! payload is in [`memfd`], the iommufd payload in [`iommufd`] and the VFIO
//! device payload in [`vfio`].
//!
//! # Compatibility rules
//!
//! These are enforced by `tests/compat.rs` and the golden blobs in
//! `tests/golden/`:
//!
//! 1. **Major versions.** A reader of major N decodes N and N−1. Version 1 is
//!    the first, so this reader decodes 1 and refuses everything else,
//!    including 0, as a whole with [`Error::UnsupportedVersion`]. A newer
//!    major is always refused as a whole.
//! 2. **Minor versions** only add what older readers may ignore: a longer
//!    header (`header_len` > 32; the extra bytes are covered by the header
//!    checksum and skipped) and extension bytes after the manifest in the
//!    body. A reader accepts a newer minor and ignores those additions; for
//!    its own or an older minor it refuses trailing bytes. Unknown entry
//!    flags fail validation unless the blob's minor is newer.
//! 3. **Header flags** are must-understand: unknown bits are refused
//!    ([`Error::UnknownFlags`]).
//! 4. **Per-entry versions.** An entry whose handler is unknown, or whose
//!    payload version is neither the newest N nor N−1 of its handler, decodes
//!    as [`Unavailable`] with a reason ([`decode_payload`]); the rest of the
//!    blob still decodes and validates.
//! 5. **Released versions are frozen.** Every released version has golden
//!    blobs; changing how they decode is a bug.
//!
//! # Hostile input
//!
//! The decoder never panics (the zerocopy lint set denies indexing, unchecked
//! arithmetic, `unwrap`, `expect`, `panic!` and `as` in the codec), never
//! reads out of bounds, never recurses, and checks every count against a
//! named limit ([`limits`]) and against the bytes left before walking it. It
//! allocates nothing; the owned conversion allocates only for counts the
//! input has already proven. Decoding is canonical: decoding then encoding a
//! valid blob gives back the same bytes.

#![no_std]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[path = "kernel.rs"]
mod kernel;

pub use kernel::*;

#[cfg(feature = "alloc")]
pub mod owned;

#[cfg(feature = "serde")]
pub mod report;

#[cfg(feature = "std")]
impl std::error::Error for Error {}
