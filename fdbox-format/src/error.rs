// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The one error type of the codec, with the byte offset of malformed input.

use core::fmt;

use super::limits::Limit;

/// Everything that can go wrong while decoding, validating or encoding a blob.
///
/// Every `offset` is a byte offset from the start of the blob (header
/// included), pointing at the first byte of the item that is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input ended where more bytes were expected.
    Truncated {
        /// Where the missing bytes should have started.
        offset: usize,
    },
    /// The blob doesn't start with [`super::header::MAGIC`].
    BadMagic,
    /// The header's own checksum doesn't match its bytes.
    HeaderChecksum {
        /// The checksum stored in the header.
        stored: u32,
        /// The checksum computed over the header.
        computed: u32,
    },
    /// The body's checksum doesn't match the header's.
    BodyChecksum {
        /// The checksum stored in the header.
        stored: u32,
        /// The checksum computed over the body.
        computed: u32,
    },
    /// The format's major version is not one this reader decodes.
    UnsupportedVersion {
        /// The blob's major version.
        major: u16,
        /// The blob's minor version.
        minor: u16,
    },
    /// The header has flag bits this reader doesn't know; header flags are
    /// must-understand.
    UnknownFlags {
        /// The unknown bits.
        flags: u32,
    },
    /// A field is out of the range its definition allows.
    BadField {
        /// Where the field starts.
        offset: usize,
        /// Which field.
        what: &'static str,
    },
    /// A count or length exceeds its named limit.
    Limit {
        /// Where the count or length starts.
        offset: usize,
        /// Which limit.
        limit: Limit,
        /// The value found.
        value: u64,
    },
    /// A count claims more elements than the remaining input can hold.
    Overrun {
        /// Where the count starts.
        offset: usize,
        /// The count found.
        count: u64,
        /// Bytes left after the count.
        remaining: usize,
    },
    /// A varint is overlong, not in canonical form, or too large for its type.
    BadVarint {
        /// Where the varint starts.
        offset: usize,
    },
    /// A string is not valid UTF-8.
    BadUtf8 {
        /// Where the string's bytes start.
        offset: usize,
    },
    /// An enum discriminant is unknown.
    BadDiscriminant {
        /// Where the discriminant starts.
        offset: usize,
        /// The discriminant found.
        value: u32,
    },
    /// An encoding that this crate would never write (e.g. a run that should
    /// have been merged with the previous one); decoding is canonical.
    NonCanonical {
        /// Where the item starts.
        offset: usize,
    },
    /// Bytes follow the last item where none may.
    TrailingBytes {
        /// Where the extra bytes start.
        offset: usize,
    },
    /// Two boxes of a manifest, or two entries of a box, have the same name.
    DuplicateName {
        /// Where the second of the two names starts.
        offset: usize,
    },
    /// A name is empty or contains a NUL byte.
    BadName {
        /// Where the name starts.
        offset: usize,
    },
    /// A dependency index is not the index of an entry of the same box.
    DanglingDependency {
        /// Where the dependency starts.
        offset: usize,
        /// The index found.
        index: u32,
    },
    /// A dependency doesn't point to an earlier entry, so the dependencies
    /// could form a cycle; or a dependency list is not strictly ascending.
    DependencyOrder {
        /// Where the dependency starts.
        offset: usize,
        /// The index found.
        index: u32,
    },
    /// Sizes inside an entry disagree with each other.
    InconsistentSize {
        /// Where the offending item starts.
        offset: usize,
        /// What disagrees.
        what: &'static str,
    },
    /// An entry uses flag bits this reader doesn't know.
    UnknownEntryFlags {
        /// Where the flags start.
        offset: usize,
        /// The unknown bits.
        flags: u32,
    },
    /// A payload names memory its entry can't own: outside RAM, or named
    /// twice in the blob.
    ForeignMemory {
        /// Where the entry's payload starts.
        offset: usize,
        /// What is wrong.
        what: &'static str,
        /// The first page frame concerned.
        pfn: u64,
    },
    /// A known handler's payload can't be decoded.
    BadPayload {
        /// The offset of the entry.
        entry: usize,
        /// What went wrong inside the payload (offsets are blob offsets).
        inner: PayloadError,
    },
    /// The caller's scratch space for validation is too small.
    ScratchTooSmall {
        /// The number of `u64` slots needed.
        needed: usize,
    },
    /// The output buffer is too small for the encoding.
    BufferTooSmall {
        /// Bytes needed at least.
        needed: usize,
    },
    /// The encoder was given a value it can't represent or used out of order.
    BadInput {
        /// What is wrong.
        what: &'static str,
    },
}

/// The error inside a handler payload: the same as [`Error`] without nesting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadError {
    /// Where inside the blob the error is.
    pub offset: usize,
    /// A message.
    pub what: &'static str,
}

/// Results of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// The broad class of an error, for exit codes and errnos.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The input is not a well-formed blob (`EINVAL`).
    Malformed,
    /// The blob's version or flags are not supported (`EOPNOTSUPP`).
    Unsupported,
    /// The blob is well-formed but fails the validation pass (`EINVAL`).
    Invalid,
    /// The caller misused the API (`EINVAL`/`ENOSPC`).
    Usage,
}

impl Error {
    /// The byte offset of the problem, where there is one.
    pub fn offset(&self) -> Option<usize> {
        match *self {
            Error::Truncated { offset }
            | Error::BadField { offset, .. }
            | Error::Limit { offset, .. }
            | Error::Overrun { offset, .. }
            | Error::BadVarint { offset }
            | Error::BadUtf8 { offset }
            | Error::BadDiscriminant { offset, .. }
            | Error::NonCanonical { offset }
            | Error::TrailingBytes { offset }
            | Error::DuplicateName { offset }
            | Error::BadName { offset }
            | Error::DanglingDependency { offset, .. }
            | Error::DependencyOrder { offset, .. }
            | Error::InconsistentSize { offset, .. }
            | Error::UnknownEntryFlags { offset, .. }
            | Error::ForeignMemory { offset, .. } => Some(offset),
            Error::BadPayload { inner, .. } => Some(inner.offset),
            Error::BadMagic => Some(0),
            Error::HeaderChecksum { .. } => Some(28),
            Error::BodyChecksum { .. } => Some(24),
            Error::UnsupportedVersion { .. } => Some(8),
            Error::UnknownFlags { .. } => Some(12),
            Error::ScratchTooSmall { .. }
            | Error::BufferTooSmall { .. }
            | Error::BadInput { .. } => None,
        }
    }

    /// A short static description of the kind of error.
    pub fn what(&self) -> &'static str {
        match self {
            Error::Truncated { .. } => "truncated",
            Error::BadMagic => "bad magic",
            Error::HeaderChecksum { .. } => "header checksum mismatch",
            Error::BodyChecksum { .. } => "body checksum mismatch",
            Error::UnsupportedVersion { .. } => "unsupported version",
            Error::UnknownFlags { .. } => "unknown flags",
            Error::BadField { what, .. } => what,
            Error::Limit { .. } => "limit exceeded",
            Error::Overrun { .. } => "count exceeds input",
            Error::BadVarint { .. } => "bad varint",
            Error::BadUtf8 { .. } => "bad UTF-8",
            Error::BadDiscriminant { .. } => "unknown discriminant",
            Error::NonCanonical { .. } => "non-canonical encoding",
            Error::TrailingBytes { .. } => "trailing bytes",
            Error::DuplicateName { .. } => "duplicate name",
            Error::BadName { .. } => "bad name",
            Error::DanglingDependency { .. } => "dangling dependency",
            Error::DependencyOrder { .. } => "dependency order",
            Error::InconsistentSize { what, .. } => what,
            Error::UnknownEntryFlags { .. } => "unknown entry flags",
            Error::ForeignMemory { what, .. } => what,
            Error::BadPayload { inner, .. } => inner.what,
            Error::ScratchTooSmall { .. } => "scratch too small",
            Error::BufferTooSmall { .. } => "buffer too small",
            Error::BadInput { what } => what,
        }
    }

    /// The broad class of the error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::UnsupportedVersion { .. } | Error::UnknownFlags { .. } => {
                ErrorClass::Unsupported
            }
            Error::DuplicateName { .. }
            | Error::BadName { .. }
            | Error::DanglingDependency { .. }
            | Error::DependencyOrder { .. }
            | Error::InconsistentSize { .. }
            | Error::UnknownEntryFlags { .. }
            | Error::ForeignMemory { .. }
            | Error::BadPayload { .. } => ErrorClass::Invalid,
            Error::ScratchTooSmall { .. }
            | Error::BufferTooSmall { .. }
            | Error::BadInput { .. } => ErrorClass::Usage,
            _ => ErrorClass::Malformed,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { offset } => write!(f, "input truncated at byte {offset}"),
            Error::BadMagic => write!(f, "bad magic at byte 0: not an fdbox blob"),
            Error::HeaderChecksum { stored, computed } => write!(
                f,
                "header checksum mismatch at byte 28: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Error::BodyChecksum { stored, computed } => write!(
                f,
                "body checksum mismatch (header byte 24): stored {stored:#010x}, computed {computed:#010x}"
            ),
            Error::UnsupportedVersion { major, minor } => {
                write!(f, "unsupported format version {major}.{minor} at byte 8")
            }
            Error::UnknownFlags { flags } => {
                write!(f, "unknown header flags {flags:#x} at byte 12")
            }
            Error::BadField { offset, what } => write!(f, "bad {what} at byte {offset}"),
            Error::Limit {
                offset,
                limit,
                value,
            } => write!(f, "{} {value} exceeds its limit at byte {offset}", limit.name()),
            Error::Overrun {
                offset,
                count,
                remaining,
            } => write!(
                f,
                "count {count} at byte {offset} exceeds the {remaining} bytes left"
            ),
            Error::BadVarint { offset } => write!(f, "bad varint at byte {offset}"),
            Error::BadUtf8 { offset } => write!(f, "string is not UTF-8 at byte {offset}"),
            Error::BadDiscriminant { offset, value } => {
                write!(f, "unknown discriminant {value} at byte {offset}")
            }
            Error::NonCanonical { offset } => write!(f, "non-canonical encoding at byte {offset}"),
            Error::TrailingBytes { offset } => write!(f, "trailing bytes at byte {offset}"),
            Error::DuplicateName { offset } => write!(f, "duplicate name at byte {offset}"),
            Error::BadName { offset } => write!(f, "empty name or NUL in name at byte {offset}"),
            Error::DanglingDependency { offset, index } => {
                write!(f, "dependency on missing entry {index} at byte {offset}")
            }
            Error::DependencyOrder { offset, index } => write!(
                f,
                "dependency on entry {index} at byte {offset} is not on an earlier entry in ascending order"
            ),
            Error::InconsistentSize { offset, what } => {
                write!(f, "inconsistent size: {what} at byte {offset}")
            }
            Error::UnknownEntryFlags { offset, flags } => {
                write!(f, "unknown entry flags {flags:#x} at byte {offset}")
            }
            Error::ForeignMemory { offset, what, pfn } => write!(
                f,
                "payload at byte {offset} names memory it can't own: {what} (page frame {pfn:#x})"
            ),
            Error::BadPayload { entry, inner } => write!(
                f,
                "bad payload of the entry at byte {entry}: {} at byte {}",
                inner.what, inner.offset
            ),
            Error::ScratchTooSmall { needed } => {
                write!(f, "validation scratch too small: {needed} slots needed")
            }
            Error::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: at least {needed} bytes needed")
            }
            Error::BadInput { what } => write!(f, "cannot encode: {what}"),
        }
    }
}
