// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Named limits on every count and length in a blob, checked before use.
//!
//! The decoder compares each count and length it reads against one of these
//! constants *and* against the bytes left in the input before it walks or
//! allocates anything, so a hostile blob can't make it allocate more than its
//! own size justifies. The encoder enforces the same limits, so a blob this
//! crate writes is always one it reads back.

/// Length of the fixed header of format version 1, in bytes.
pub const HEADER_LEN: usize = 32;

/// Largest `header_len` a reader accepts; a newer minor version may grow the
/// header up to this size, and readers skip the part they don't know.
pub const MAX_HEADER_LEN: u32 = 4096;

/// Largest body, in bytes (4 GiB less a page): what `body_len`, a `u32`,
/// holds. A reader allocates in proportion to the bytes it was given, never
/// to a count it reads, so this bounds nothing else. A kernel keeps each
/// box's blob in one KHO block of at most [`MAX_BOX_BLOB_LEN`], with large
/// payloads out of line ([`crate::Payload::Chunked`]); a reader reassembles
/// them into one blob, which this bounds.
pub const MAX_BODY_LEN: u32 = u32::MAX - 4095;

/// Largest blob of one box as a kernel hands it over: one KHO block of
/// `MAX_PAGE_ORDER` (4 MiB on x86-64).
pub const MAX_BOX_BLOB_LEN: usize = 4 << 20;

/// Most boxes in one manifest.
pub const MAX_BOXES: u32 = 1024;

/// Most entries in one box.
pub const MAX_ENTRIES_PER_BOX: u32 = 65_536;

/// Most entries in one manifest, over all boxes.
pub const MAX_ENTRIES: u32 = 262_144;

/// Longest box or entry name, in bytes of UTF-8.
pub const MAX_NAME_LEN: u32 = 255;

/// Longest handler compatible string, in bytes (e.g. `"memfd"`).
pub const MAX_HANDLER_LEN: u32 = 64;

/// Longest producer kernel release (`uname -r`; `__NEW_UTS_LEN` is 64).
pub const MAX_RELEASE_LEN: u32 = 64;

/// Longest producer fdbox version string.
pub const MAX_VERSION_LEN: u32 = 32;

/// Most dependencies of one entry.
pub const MAX_DEPS: u32 = 64;

/// Largest inline payload of one entry, in bytes (1 GiB): a memfd of
/// [`MAX_FOLIO_RUNS`] scattered runs takes about 80 MiB.
pub const MAX_INLINE_LEN: u32 = 1 << 30;

/// Smallest and largest chunk of a [`crate::Payload::Chunked`] payload, in
/// bytes (a page to `MAX_PAGE_ORDER`).
pub const CHUNK_LEN_RANGE: (u32, u32) = (4096, 4 << 20);

/// Largest separately preserved payload an entry may reference (1 TiB).
pub const MAX_PRESERVED_LEN: u64 = 1 << 40;

/// Longest memfd name, in bytes: `MFD_NAME_MAX_LEN` (249) in `mm/memfd.c`.
pub const MAX_MEMFD_NAME_LEN: u32 = 249;

/// Most folio runs in one memfd payload.
pub const MAX_FOLIO_RUNS: u32 = 1 << 24;

/// Largest folio order (2^18 pages: a 1 GiB folio of 4 KiB pages).
pub const MAX_FOLIO_ORDER: u8 = 18;

/// Largest page frame number (52-bit physical addresses of 4 KiB pages).
pub const MAX_PFN: u64 = (1 << 40) - 1;

/// Largest page-cache index of a memfd page (`MAX_LFS_FILESIZE` in pages).
pub const MAX_PAGE_INDEX: u64 = (1 << 51) - 1;

/// Smallest and largest page shift a memfd payload may state (4 KiB–64 KiB).
pub const PAGE_SHIFT_RANGE: (u8, u8) = (12, 16);

/// Most IOAS objects in one iommufd payload.
pub const MAX_IOAS: u32 = 256;

/// Most IOAS mappings in one iommufd payload, over all its IOASes.
pub const MAX_IOAS_MAPPINGS: u32 = 1 << 20;

/// Largest PCI domain (segment group) of a VFIO device: 16 bits in a PCI
/// address.
pub const MAX_PCI_DOMAIN: u32 = 0xffff;

/// Which limit an `Error::Limit` refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// [`MAX_HEADER_LEN`].
    HeaderLen,
    /// [`MAX_BODY_LEN`].
    BodyLen,
    /// [`MAX_BOXES`].
    Boxes,
    /// [`MAX_ENTRIES_PER_BOX`].
    EntriesPerBox,
    /// [`MAX_ENTRIES`].
    Entries,
    /// [`MAX_NAME_LEN`].
    NameLen,
    /// [`MAX_HANDLER_LEN`].
    HandlerLen,
    /// [`MAX_RELEASE_LEN`].
    ReleaseLen,
    /// [`MAX_VERSION_LEN`].
    VersionLen,
    /// [`MAX_DEPS`].
    Deps,
    /// [`MAX_INLINE_LEN`].
    InlineLen,
    /// [`MAX_PRESERVED_LEN`].
    PreservedLen,
    /// [`CHUNK_LEN_RANGE`].
    ChunkLen,
    /// [`MAX_MEMFD_NAME_LEN`].
    MemfdNameLen,
    /// [`MAX_FOLIO_RUNS`].
    FolioRuns,
    /// [`MAX_FOLIO_ORDER`].
    FolioOrder,
    /// [`MAX_PFN`].
    Pfn,
    /// [`MAX_PAGE_INDEX`].
    PageIndex,
    /// [`PAGE_SHIFT_RANGE`].
    PageShift,
    /// [`MAX_IOAS`].
    Ioas,
    /// [`MAX_IOAS_MAPPINGS`].
    IoasMappings,
    /// [`MAX_PCI_DOMAIN`].
    PciDomain,
}

impl Limit {
    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Limit::HeaderLen => "header length",
            Limit::BodyLen => "body length",
            Limit::Boxes => "box count",
            Limit::EntriesPerBox => "entries per box",
            Limit::Entries => "total entries",
            Limit::NameLen => "name length",
            Limit::HandlerLen => "handler length",
            Limit::ReleaseLen => "kernel release length",
            Limit::VersionLen => "fdbox version length",
            Limit::Deps => "dependency count",
            Limit::InlineLen => "inline payload length",
            Limit::PreservedLen => "preserved payload length",
            Limit::ChunkLen => "payload chunk length",
            Limit::MemfdNameLen => "memfd name length",
            Limit::FolioRuns => "folio run count",
            Limit::FolioOrder => "folio order",
            Limit::Pfn => "page frame number",
            Limit::PageIndex => "page index",
            Limit::PageShift => "page shift",
            Limit::Ioas => "IOAS count",
            Limit::IoasMappings => "IOAS mapping count",
            Limit::PciDomain => "PCI domain",
        }
    }
}
