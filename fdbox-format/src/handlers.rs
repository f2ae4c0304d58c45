// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The handler payload schemas this crate knows, and entry availability.
//!
//! An entry whose handler or payload version this crate doesn't know still
//! decodes: it is reported as [`Unavailable`], with the reason, and the rest
//! of the blob is unaffected. Each handler's payload is versioned on its own;
//! a reader of payload version N decodes N and N−1.

use core::fmt;

use super::error::Error;
use super::iommufd::{
    self,
    IommufdView, //
};
use super::manifest::{
    EntryView,
    Payload, //
};
use super::memfd::{
    self,
    MemfdView, //
};
use super::vfio::{
    self,
    VfioDevice, //
};

/// A handler payload decoded with a schema of this crate.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Decoded<'a> {
    /// A memfd (handler [`memfd::HANDLER`]).
    Memfd(MemfdView<'a>),
    /// An iommufd context (handler [`iommufd::HANDLER`]); every mapping's
    /// dependency index is below the entry's dependency count.
    Iommufd(IommufdView<'a>),
    /// A VFIO device (handler [`vfio::HANDLER`]); its iommufd's dependency
    /// index is below the entry's dependency count.
    Vfio(VfioDevice),
}

/// Why an entry's payload can't be decoded here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unavailable {
    /// No schema for this handler in this crate.
    UnknownHandler,
    /// The handler is known but not this payload version.
    UnsupportedVersion {
        /// The entry's payload version.
        found: u32,
        /// The newest version this crate decodes.
        newest: u32,
    },
    /// The payload is in separately preserved memory, not in the blob.
    Preserved,
    /// The payload is corrupt.
    Corrupt(Error),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::UnknownHandler => write!(f, "unknown handler"),
            Unavailable::UnsupportedVersion { found, newest } => write!(
                f,
                "unsupported payload version {found} (this reader knows up to {newest})"
            ),
            Unavailable::Preserved => write!(f, "payload in preserved memory"),
            Unavailable::Corrupt(e) => write!(f, "corrupt payload: {e}"),
        }
    }
}

/// Decodes an entry's payload with the handler schemas of this crate.
///
/// A payload that names a dependency by index (iommufd's mappings, vfio's
/// iommufd) is checked against the entry's dependency count here, so that
/// [`super::validate()`] refuses it; what the dependency is, only the
/// restorer can check.
pub fn decode_payload<'a>(e: &EntryView<'a>) -> core::result::Result<Decoded<'a>, Unavailable> {
    // Each handler's newest version. When version 2 of a payload is defined,
    // version 1 keeps its decoder here as N−1, and older ones go.
    match e.handler {
        memfd::HANDLER => match e.payload_version {
            version @ 1..=2 => memfd::decode_version(inline(e)?, e.payload_offset, version)
                .map(Decoded::Memfd)
                .map_err(Unavailable::Corrupt),
            found => Err(Unavailable::UnsupportedVersion {
                found,
                newest: memfd::PAYLOAD_VERSION,
            }),
        },
        iommufd::HANDLER => match e.payload_version {
            1 => iommufd::decode(inline(e)?, e.payload_offset)
                .and_then(|v| v.check_deps(e.dep_count()).map(|()| v))
                .map(Decoded::Iommufd)
                .map_err(Unavailable::Corrupt),
            found => Err(Unavailable::UnsupportedVersion {
                found,
                newest: iommufd::PAYLOAD_VERSION,
            }),
        },
        vfio::HANDLER => match e.payload_version {
            version @ 1..=2 => if version == 1 {
                vfio::decode_v1(inline(e)?, e.payload_offset)
            } else {
                vfio::decode(inline(e)?, e.payload_offset)
            }
            .and_then(|d| d.check_deps(e.dep_count(), e.payload_offset).map(|()| d))
            .map(Decoded::Vfio)
            .map_err(Unavailable::Corrupt),
            found => Err(Unavailable::UnsupportedVersion {
                found,
                newest: vfio::PAYLOAD_VERSION,
            }),
        },
        _ => Err(Unavailable::UnknownHandler),
    }
}

/// The entry's inline payload; every schema of this crate is inline.
#[inline]
fn inline<'a>(e: &EntryView<'a>) -> core::result::Result<&'a [u8], Unavailable> {
    match e.payload {
        Payload::Inline(bytes) => Ok(bytes),
        Payload::Preserved(_) | Payload::Chunked(_) => Err(Unavailable::Preserved),
    }
}
