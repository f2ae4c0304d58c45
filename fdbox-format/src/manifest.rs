// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The manifest: borrowed views that decode a blob, and a streaming encoder.
//!
//! The body of a version-1 blob is the postcard encoding of this schema (the
//! owned types in `owned` derive exactly this with serde):
//!
//! ```text
//! Manifest { kernel_release: str, fdbox_version: str, boxes: seq<Box> }
//! Box      { name: str, owner_uid: u32, owner_gid: u32, state: BoxState,
//!            entries: seq<Entry> }
//! BoxState = Open (0) | Sealed (1)
//! Entry    { name: str, handler: str, payload_version: u32, flags: u32,
//!            deps: seq<u32>, payload: Payload }
//! Payload  = Inline (0) { bytes } | Preserved (1) { phys: u64, len: u64, crc32c: u32 }
//!          | Chunked (2) { len: u64, crc32c: u32, chunk_len: u32, chunks: seq<u64> }
//! ```
//!
//! `Chunked` exists from major version 2 on: a major-1 blob that has one is
//! refused.
//!
//! [`decode`] walks the whole body once, checking every count and length
//! against its limit and the input left, so the iterators of a
//! [`ManifestView`] can't fail afterwards. It never recurses and never
//! allocates.

use super::error::{
    Error,
    Result, //
};
use super::header::{
    self,
    Header,
    FORMAT_MINOR, //
};
use super::limits::{
    Limit,
    CHUNK_LEN_RANGE, //
    HEADER_LEN,
    MAX_BODY_LEN,
    MAX_BOXES,
    MAX_DEPS,
    MAX_ENTRIES,
    MAX_ENTRIES_PER_BOX,
    MAX_HANDLER_LEN,
    MAX_INLINE_LEN,
    MAX_NAME_LEN,
    MAX_PRESERVED_LEN,
    MAX_RELEASE_LEN,
    MAX_VERSION_LEN,
};
use super::wire::{
    Reader,
    Writer, //
};

/// Fewest bytes a box takes on the wire (empty name, one-byte fields).
const MIN_BOX_LEN: usize = 5;

/// Fewest bytes an entry takes on the wire.
const MIN_ENTRY_LEN: usize = 7;

/// Entry flag: the entry is optional; a VMM can run without it, so tools
/// report its absence as a warning rather than an error.
pub const ENTRY_FLAG_OPTIONAL: u32 = 1 << 0;

/// Every entry flag this crate knows. Unknown bits fail validation unless the
/// blob's minor version is newer than this crate's.
pub const KNOWN_ENTRY_FLAGS: u32 = ENTRY_FLAG_OPTIONAL;

/// The state of a box when the blob was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoxState {
    /// Still being filled (only in debugfs snapshots of the outgoing kernel).
    Open,
    /// Sealed: every entry is preserved and will be handed over.
    Sealed,
}

impl BoxState {
    /// The discriminant on the wire.
    pub fn to_wire(self) -> u32 {
        match self {
            BoxState::Open => 0,
            BoxState::Sealed => 1,
        }
    }

    /// The state of a wire discriminant.
    pub fn from_wire(v: u32) -> Option<Self> {
        match v {
            0 => Some(BoxState::Open),
            1 => Some(BoxState::Sealed),
            _ => None,
        }
    }

    /// A lowercase name for tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            BoxState::Open => "open",
            BoxState::Sealed => "sealed",
        }
    }
}

/// A reference to handler state preserved in its own KHO memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreservedRef {
    /// Physical address of the first byte; page-aligned.
    pub phys: u64,
    /// Length in bytes; non-zero, at most `MAX_PRESERVED_LEN`.
    pub len: u64,
    /// CRC32C of the `len` bytes.
    pub crc32c: u32,
}

/// The physical addresses of the chunks of a [`ChunkedRef`].
#[derive(Clone, Copy, Debug)]
pub enum Chunks<'a> {
    /// As a decoded blob holds them: `count` varints.
    Wire {
        /// The varints.
        bytes: &'a [u8],
        /// How many.
        count: u32,
    },
    /// As a producer lists them.
    List(&'a [u64]),
}

impl<'a> Chunks<'a> {
    /// The number of chunks.
    pub fn count(&self) -> usize {
        match self {
            Chunks::Wire { count, .. } => usize::try_from(*count).unwrap_or(usize::MAX),
            Chunks::List(l) => l.len(),
        }
    }

    /// The addresses, in payload order.
    pub fn iter(&self) -> ChunkIter<'a> {
        match *self {
            Chunks::Wire { bytes, count } => ChunkIter::Wire(Reader::new(bytes, 0), count),
            Chunks::List(l) => ChunkIter::List(l.iter()),
        }
    }
}

impl PartialEq for Chunks<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.count() == other.count() && self.iter().eq(other.iter())
    }
}

impl Eq for Chunks<'_> {}

/// The addresses of [`Chunks`].
#[derive(Clone, Debug)]
pub enum ChunkIter<'a> {
    /// Reading varints; the count left.
    Wire(Reader<'a>, u32),
    /// Walking a list.
    List(core::slice::Iter<'a, u64>),
}

impl Iterator for ChunkIter<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        match self {
            ChunkIter::Wire(r, left) => {
                *left = left.checked_sub(1)?;
                r.u64().ok()
            }
            ChunkIter::List(l) => l.next().copied(),
        }
    }
}

/// A payload preserved out of line, in chunks of separately preserved memory:
/// chunk `i` holds bytes `i * chunk_len ..` of the payload, `chunk_len` of
/// them except the last, which holds the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkedRef<'a> {
    /// The payload's length in bytes; non-zero, at most `MAX_PRESERVED_LEN`.
    pub len: u64,
    /// CRC32C of the whole payload.
    pub crc32c: u32,
    /// The length of every chunk but the last: a power of two in
    /// `CHUNK_LEN_RANGE`.
    pub chunk_len: u32,
    /// The physical address of each chunk, page-aligned; exactly
    /// `len.div_ceil(chunk_len)` of them.
    pub chunks: Chunks<'a>,
}

impl ChunkedRef<'_> {
    /// The length of chunk `i`.
    pub fn chunk_len_at(&self, i: usize) -> u64 {
        let start = u64::try_from(i)
            .unwrap_or(u64::MAX)
            .saturating_mul(u64::from(self.chunk_len));
        self.len
            .saturating_sub(start)
            .min(u64::from(self.chunk_len))
    }
}

/// An entry's payload, borrowed from the blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// The handler's state, inline in the blob.
    Inline(&'a [u8]),
    /// The handler's state, in separately preserved memory.
    Preserved(PreservedRef),
    /// The handler's state, in chunks of separately preserved memory (major 2).
    Chunked(ChunkedRef<'a>),
}

/// The fixed fields of a box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxHead<'a> {
    /// Unique among the boxes of its owner in the manifest; 1..=`MAX_NAME_LEN` bytes, no NUL.
    pub name: &'a str,
    /// The owner's uid (in the initial user namespace).
    pub owner_uid: u32,
    /// The owner's gid (in the initial user namespace).
    pub owner_gid: u32,
    /// The box's state.
    pub state: BoxState,
}

/// An entry to encode.
#[derive(Clone, Copy, Debug)]
pub struct EntryRecord<'a> {
    /// Unique within the box; 1..=`MAX_NAME_LEN` bytes, no NUL.
    pub name: &'a str,
    /// The handler's compatible string, e.g. [`super::memfd::HANDLER`].
    pub handler: &'a str,
    /// The version of the handler's payload schema.
    pub payload_version: u32,
    /// `ENTRY_FLAG_*` bits.
    pub flags: u32,
    /// Indices of the entries of the same box this one needs restored first;
    /// each smaller than this entry's index, strictly ascending.
    pub deps: &'a [u32],
    /// The handler's state.
    pub payload: Payload<'a>,
}

/// A decoded blob: the header and a view of the manifest in the body.
#[derive(Clone, Debug)]
pub struct ManifestView<'a> {
    /// The blob's header.
    pub header: Header,
    /// The producer kernel's release (`uname -r`).
    pub kernel_release: &'a str,
    /// The producer's fdbox version.
    pub fdbox_version: &'a str,
    /// Extension bytes after the manifest, written by a newer minor version.
    pub extension: &'a [u8],
    /// The body and its blob offset.
    body: (&'a [u8], usize),
    /// The boxes.
    boxes: Reader<'a>,
    /// The number of boxes.
    box_count: u32,
    /// Entries over all boxes.
    entry_count: u32,
    /// The most entries in one box.
    max_box_entries: u32,
}

/// A box of a [`ManifestView`].
#[derive(Clone, Debug)]
pub struct BoxView<'a> {
    /// The box's index in the manifest.
    pub index: u32,
    /// The blob offset of the box (its name).
    pub offset: usize,
    /// The fixed fields.
    pub head: BoxHead<'a>,
    /// The entries.
    entries: Reader<'a>,
    /// The number of entries.
    entry_count: u32,
}

/// An entry of a [`BoxView`].
#[derive(Clone, Debug)]
pub struct EntryView<'a> {
    /// The entry's index in its box.
    pub index: u32,
    /// The blob offset of the entry (its name).
    pub offset: usize,
    /// Unique within the box.
    pub name: &'a str,
    /// The handler's compatible string.
    pub handler: &'a str,
    /// The version of the handler's payload schema.
    pub payload_version: u32,
    /// `ENTRY_FLAG_*` bits.
    pub flags: u32,
    /// The blob offset of `flags`.
    pub flags_offset: usize,
    /// The dependencies.
    deps: Reader<'a>,
    /// The number of dependencies.
    dep_count: u32,
    /// The payload.
    pub payload: Payload<'a>,
    /// The blob offset of the payload's bytes (inline) or record.
    pub payload_offset: usize,
}

/// Decodes a blob: checks the header, the checksums and every record.
#[inline]
pub fn decode(blob: &[u8]) -> Result<ManifestView<'_>> {
    let (header, body, body_offset) = header::parse(blob)?;
    let mut r = Reader::new(body, body_offset);
    let kernel_release = r.str(Limit::ReleaseLen, MAX_RELEASE_LEN)?;
    let fdbox_version = r.str(Limit::VersionLen, MAX_VERSION_LEN)?;
    let box_count = r.len(Limit::Boxes, MAX_BOXES, MIN_BOX_LEN)?;
    let boxes = r.clone();
    let mut entry_count: u32 = 0;
    let mut max_box_entries: u32 = 0;
    for _ in 0..box_count {
        let offset = r.offset();
        let (_, n) = parse_box_head(&mut r)?;
        entry_count = entry_count
            .checked_add(n)
            .filter(|&t| t <= MAX_ENTRIES)
            .ok_or(Error::Limit {
                offset,
                limit: Limit::Entries,
                value: u64::from(entry_count).saturating_add(u64::from(n)),
            })?;
        max_box_entries = max_box_entries.max(n);
        for i in 0..n {
            parse_entry(&mut r, i, header.major)?;
        }
    }
    let extension = r.rest();
    if !extension.is_empty() && !header::is_newer_minor(header.minor) {
        return Err(Error::TrailingBytes { offset: r.offset() });
    }
    Ok(ManifestView {
        header,
        kernel_release,
        fdbox_version,
        extension,
        body: (body, body_offset),
        boxes,
        box_count,
        entry_count,
        max_box_entries,
    })
}

/// Parses the fixed fields and the entry count of a box.
#[inline]
fn parse_box_head<'a>(r: &mut Reader<'a>) -> Result<(BoxHead<'a>, u32)> {
    let name = r.str(Limit::NameLen, MAX_NAME_LEN)?;
    let owner_uid = r.u32()?;
    let owner_gid = r.u32()?;
    let offset = r.offset();
    let v = r.u32()?;
    let state = BoxState::from_wire(v).ok_or(Error::BadDiscriminant { offset, value: v })?;
    let n = r.len(Limit::EntriesPerBox, MAX_ENTRIES_PER_BOX, MIN_ENTRY_LEN)?;
    let head = BoxHead {
        name,
        owner_uid,
        owner_gid,
        state,
    };
    Ok((head, n))
}

/// Skips one entry that `decode` has already checked.
#[inline]
fn skip_entry(r: &mut Reader<'_>) -> Result<()> {
    r.skip_bytes()?;
    r.skip_bytes()?;
    r.u32()?;
    r.u32()?;
    let deps = r.u32()?;
    for _ in 0..deps {
        r.u32()?;
    }
    match r.u32()? {
        0 => r.skip_bytes(),
        1 => {
            r.u64()?;
            r.u64()?;
            r.u32().map(|_| ())
        }
        _ => {
            r.u64()?;
            r.u32()?;
            r.u32()?;
            let n = r.u32()?;
            for _ in 0..n {
                r.u64()?;
            }
            Ok(())
        }
    }
}

/// Parses one entry of a blob of format `major`.
#[inline]
fn parse_entry<'a>(r: &mut Reader<'a>, index: u32, major: u16) -> Result<EntryView<'a>> {
    let offset = r.offset();
    let name = r.str(Limit::NameLen, MAX_NAME_LEN)?;
    let handler = r.str(Limit::HandlerLen, MAX_HANDLER_LEN)?;
    let payload_version = r.u32()?;
    let flags_offset = r.offset();
    let flags = r.u32()?;
    let dep_count = r.len(Limit::Deps, MAX_DEPS, 1)?;
    let deps = r.clone();
    for _ in 0..dep_count {
        r.u32()?;
    }
    let disc_offset = r.offset();
    let (payload, payload_offset) = match r.u32()? {
        0 => {
            let b = r.bytes(Limit::InlineLen, MAX_INLINE_LEN)?;
            (Payload::Inline(b), r.offset().saturating_sub(b.len()))
        }
        1 => {
            let at = r.offset();
            let phys = r.u64()?;
            let len_offset = r.offset();
            let len = r.u64()?;
            if len > MAX_PRESERVED_LEN {
                return Err(Error::Limit {
                    offset: len_offset,
                    limit: Limit::PreservedLen,
                    value: len,
                });
            }
            let crc32c = r.u32()?;
            (Payload::Preserved(PreservedRef { phys, len, crc32c }), at)
        }
        2 if major >= 2 => {
            let at = r.offset();
            (Payload::Chunked(parse_chunked(r)?), at)
        }
        value => {
            return Err(Error::BadDiscriminant {
                offset: disc_offset,
                value,
            })
        }
    };
    Ok(EntryView {
        index,
        offset,
        name,
        handler,
        payload_version,
        flags,
        flags_offset,
        deps,
        dep_count,
        payload,
        payload_offset,
    })
}

/// Parses the fields of a chunked payload, checking that they agree.
#[inline]
fn parse_chunked<'a>(r: &mut Reader<'a>) -> Result<ChunkedRef<'a>> {
    let len_offset = r.offset();
    let len = r.u64()?;
    if len == 0 || len > MAX_PRESERVED_LEN {
        return Err(Error::Limit {
            offset: len_offset,
            limit: Limit::PreservedLen,
            value: len,
        });
    }
    let crc32c = r.u32()?;
    let chunk_offset = r.offset();
    let chunk_len = r.u32()?;
    if !chunk_len.is_power_of_two() || !(CHUNK_LEN_RANGE.0..=CHUNK_LEN_RANGE.1).contains(&chunk_len)
    {
        return Err(Error::Limit {
            offset: chunk_offset,
            limit: Limit::ChunkLen,
            value: u64::from(chunk_len),
        });
    }
    let count_offset = r.offset();
    let count = r.len(Limit::PreservedLen, u32::MAX, 1)?;
    if u64::from(count) != len.div_ceil(u64::from(chunk_len)) {
        return Err(Error::InconsistentSize {
            offset: count_offset,
            what: "chunk count: not the payload length over the chunk length",
        });
    }
    let start = r.clone();
    for _ in 0..count {
        r.u64()?;
    }
    let bytes = start
        .rest()
        .get(..r.offset().saturating_sub(start.offset()))
        .unwrap_or(&[]);
    Ok(ChunkedRef {
        len,
        crc32c,
        chunk_len,
        chunks: Chunks::Wire { bytes, count },
    })
}

impl<'a> ManifestView<'a> {
    /// The number of boxes.
    pub fn box_count(&self) -> u32 {
        self.box_count
    }

    /// The number of entries over all boxes.
    pub fn entry_count(&self) -> u32 {
        self.entry_count
    }

    /// The most entries in one box.
    pub fn max_box_entries(&self) -> u32 {
        self.max_box_entries
    }

    /// The boxes, in blob order.
    pub fn boxes(&self) -> BoxIter<'a> {
        BoxIter {
            r: self.boxes.clone(),
            left: self.box_count,
            index: 0,
        }
    }

    /// The body and its blob offset.
    pub fn body(&self) -> (&'a [u8], usize) {
        self.body
    }
}

impl<'a> BoxView<'a> {
    /// The number of entries.
    pub fn entry_count(&self) -> u32 {
        self.entry_count
    }

    /// The entries, in index order.
    pub fn entries(&self) -> EntryIter<'a> {
        EntryIter {
            r: self.entries.clone(),
            left: self.entry_count,
            index: 0,
        }
    }
}

impl<'a> EntryView<'a> {
    /// The number of dependencies.
    pub fn dep_count(&self) -> u32 {
        self.dep_count
    }

    /// The dependencies: indices of entries of the same box.
    pub fn deps(&self) -> Deps<'a> {
        Deps {
            r: self.deps.clone(),
            left: self.dep_count,
        }
    }

    /// This entry with `bytes` as its payload, inline: what a reader does once it has copied
    /// an out-of-line payload out and checked it.
    pub fn with_inline<'s>(self, bytes: &'s [u8]) -> EntryView<'s>
    where
        'a: 's,
    {
        let e: EntryView<'s> = self;
        EntryView {
            payload: Payload::Inline(bytes),
            ..e
        }
    }

    /// The payload's size in bytes (inline or preserved).
    pub fn payload_len(&self) -> u64 {
        match self.payload {
            Payload::Inline(b) => u64::try_from(b.len()).unwrap_or(u64::MAX),
            Payload::Preserved(p) => p.len,
            Payload::Chunked(c) => c.len,
        }
    }
}

/// The boxes of a [`ManifestView`].
#[derive(Clone, Debug)]
pub struct BoxIter<'a> {
    /// Positioned at the next box.
    r: Reader<'a>,
    /// Boxes left.
    left: u32,
    /// The index of the next box.
    index: u32,
}

impl<'a> Iterator for BoxIter<'a> {
    type Item = BoxView<'a>;

    #[inline]
    fn next(&mut self) -> Option<BoxView<'a>> {
        if self.left == 0 {
            return None;
        }
        let offset = self.r.offset();
        // `decode` walked these bytes already, so this can't fail; if it did,
        // the iteration would just stop.
        let Ok((head, entry_count)) = parse_box_head(&mut self.r) else {
            self.left = 0;
            return None;
        };
        let entries = self.r.clone();
        for _ in 0..entry_count {
            if skip_entry(&mut self.r).is_err() {
                self.left = 0;
                return None;
            }
        }
        let view = BoxView {
            index: self.index,
            offset,
            head,
            entries,
            entry_count,
        };
        self.left = self.left.saturating_sub(1);
        self.index = self.index.saturating_add(1);
        Some(view)
    }
}

/// The entries of a [`BoxView`].
#[derive(Clone, Debug)]
pub struct EntryIter<'a> {
    /// Positioned at the next entry.
    r: Reader<'a>,
    /// Entries left.
    left: u32,
    /// The index of the next entry.
    index: u32,
}

impl<'a> Iterator for EntryIter<'a> {
    type Item = EntryView<'a>;

    #[inline]
    fn next(&mut self) -> Option<EntryView<'a>> {
        if self.left == 0 {
            return None;
        }
        // `decode` checked the entry against the blob's major version.
        let Ok(e) = parse_entry(&mut self.r, self.index, super::header::FORMAT_MAJOR) else {
            self.left = 0;
            return None;
        };
        self.left = self.left.saturating_sub(1);
        self.index = self.index.saturating_add(1);
        Some(e)
    }
}

/// The dependencies of an [`EntryView`], with their blob offsets.
#[derive(Clone, Debug)]
pub struct Deps<'a> {
    /// Positioned at the next dependency.
    r: Reader<'a>,
    /// Dependencies left.
    left: u32,
}

impl Deps<'_> {
    /// The next dependency and its blob offset.
    pub fn next_with_offset(&mut self) -> Option<(u32, usize)> {
        if self.left == 0 {
            return None;
        }
        let offset = self.r.offset();
        let Ok(v) = self.r.u32() else {
            self.left = 0;
            return None;
        };
        self.left = self.left.saturating_sub(1);
        Some((v, offset))
    }
}

impl Iterator for Deps<'_> {
    type Item = u32;

    #[inline]
    fn next(&mut self) -> Option<u32> {
        self.next_with_offset().map(|(v, _)| v)
    }
}

/// Where the encoder is in the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Nothing written yet.
    Start,
    /// In the box list: `boxes` boxes left, `entries` entries of the current
    /// box left, `index` the index of the next entry.
    Boxes {
        /// Boxes still to begin.
        boxes: u32,
        /// Entries of the current box still to write.
        entries: u32,
        /// Index of the next entry of the current box.
        index: u32,
    },
}

/// A streaming, allocation-free blob encoder.
///
/// Call [`Encoder::manifest`], then for each box [`Encoder::begin_box`]
/// followed by one [`Encoder::entry`] per entry, then [`Encoder::finish`].
/// Run the same sequence through [`Encoder::counting`] first to learn the
/// exact size of the output buffer. The encoder enforces every limit and the
/// counts it was promised, so what it writes always decodes.
#[derive(Debug)]
pub struct Encoder<'a> {
    /// The output.
    w: Writer<'a>,
    /// The position in the schema.
    stage: Stage,
    /// Entries written so far over all boxes.
    total: u32,
}

impl<'a> Encoder<'a> {
    /// An encoder writing a blob into `buf`.
    #[inline]
    pub fn new(buf: &'a mut [u8]) -> Result<Self> {
        Self::start(Writer::new(buf))
    }

    /// An encoder that only counts bytes.
    pub fn counting() -> Encoder<'static> {
        Encoder {
            w: Writer::counting(),
            stage: Stage::Start,
            total: 0,
        }
        .reserve_header()
    }

    /// Reserves the header's bytes.
    fn start(w: Writer<'a>) -> Result<Self> {
        let mut e = Encoder {
            w,
            stage: Stage::Start,
            total: 0,
        };
        e.w.write(&[0u8; HEADER_LEN])?;
        Ok(e)
    }

    /// Reserves the header's bytes in a counting encoder, which can't fail.
    fn reserve_header(mut self) -> Self {
        let _ = self.w.write(&[0u8; HEADER_LEN]);
        self
    }

    /// Writes the manifest's fields and the number of boxes to follow.
    pub fn manifest(
        &mut self,
        kernel_release: &str,
        fdbox_version: &str,
        box_count: usize,
    ) -> Result<()> {
        if self.stage != Stage::Start {
            return Err(Error::BadInput {
                what: "manifest written twice",
            });
        }
        self.w
            .str(kernel_release, Limit::ReleaseLen, MAX_RELEASE_LEN)?;
        self.w
            .str(fdbox_version, Limit::VersionLen, MAX_VERSION_LEN)?;
        self.w.len(box_count, Limit::Boxes, MAX_BOXES)?;
        self.stage = Stage::Boxes {
            boxes: u32::try_from(box_count).unwrap_or(0),
            entries: 0,
            index: 0,
        };
        Ok(())
    }

    /// Begins a box of `entry_count` entries.
    pub fn begin_box(&mut self, head: &BoxHead<'_>, entry_count: usize) -> Result<()> {
        let Stage::Boxes {
            boxes, entries: 0, ..
        } = self.stage
        else {
            return Err(Error::BadInput {
                what: "box begun out of order",
            });
        };
        let boxes = boxes.checked_sub(1).ok_or(Error::BadInput {
            what: "more boxes than announced",
        })?;
        check_name(head.name)?;
        self.w.str(head.name, Limit::NameLen, MAX_NAME_LEN)?;
        self.w.u32(head.owner_uid)?;
        self.w.u32(head.owner_gid)?;
        self.w.u32(head.state.to_wire())?;
        self.w
            .len(entry_count, Limit::EntriesPerBox, MAX_ENTRIES_PER_BOX)?;
        let n = u32::try_from(entry_count).unwrap_or(0);
        self.total = self
            .total
            .checked_add(n)
            .filter(|&t| t <= MAX_ENTRIES)
            .ok_or(Error::Limit {
                offset: self.w.position(),
                limit: Limit::Entries,
                value: u64::from(self.total).saturating_add(u64::from(n)),
            })?;
        self.stage = Stage::Boxes {
            boxes,
            entries: n,
            index: 0,
        };
        Ok(())
    }

    /// Writes the next entry of the current box.
    pub fn entry(&mut self, e: &EntryRecord<'_>) -> Result<()> {
        let Stage::Boxes {
            boxes,
            entries,
            index,
        } = self.stage
        else {
            return Err(Error::BadInput {
                what: "entry before the manifest",
            });
        };
        let entries = entries.checked_sub(1).ok_or(Error::BadInput {
            what: "more entries than announced",
        })?;
        check_name(e.name)?;
        if e.flags & !KNOWN_ENTRY_FLAGS != 0 {
            return Err(Error::BadInput {
                what: "unknown entry flags",
            });
        }
        let mut prev: Option<u32> = None;
        for &d in e.deps {
            if d >= index || prev.is_some_and(|p| d <= p) {
                return Err(Error::BadInput {
                    what: "dependency not on an earlier entry in ascending order",
                });
            }
            prev = Some(d);
        }
        self.w.str(e.name, Limit::NameLen, MAX_NAME_LEN)?;
        self.w.str(e.handler, Limit::HandlerLen, MAX_HANDLER_LEN)?;
        self.w.u32(e.payload_version)?;
        self.w.u32(e.flags)?;
        self.w.len(e.deps.len(), Limit::Deps, MAX_DEPS)?;
        for &d in e.deps {
            self.w.u32(d)?;
        }
        match e.payload {
            Payload::Inline(b) => {
                self.w.u32(0)?;
                self.w.bytes(b, Limit::InlineLen, MAX_INLINE_LEN)?;
            }
            Payload::Preserved(p) => {
                if p.len > MAX_PRESERVED_LEN {
                    return Err(Error::BadInput {
                        what: "preserved payload too long",
                    });
                }
                self.w.u32(1)?;
                self.w.u64(p.phys)?;
                self.w.u64(p.len)?;
                self.w.u32(p.crc32c)?;
            }
            Payload::Chunked(c) => {
                let count = c.len.div_ceil(u64::from(c.chunk_len.max(1)));
                if c.len == 0
                    || c.len > MAX_PRESERVED_LEN
                    || !c.chunk_len.is_power_of_two()
                    || !(CHUNK_LEN_RANGE.0..=CHUNK_LEN_RANGE.1).contains(&c.chunk_len)
                    || u64::try_from(c.chunks.count()).ok() != Some(count)
                {
                    return Err(Error::BadInput {
                        what: "chunked payload: length, chunk length and chunks disagree",
                    });
                }
                self.w.u32(2)?;
                self.w.u64(c.len)?;
                self.w.u32(c.crc32c)?;
                self.w.u32(c.chunk_len)?;
                self.w
                    .len(c.chunks.count(), Limit::PreservedLen, u32::MAX)?;
                for phys in c.chunks.iter() {
                    self.w.u64(phys)?;
                }
            }
        }
        self.stage = Stage::Boxes {
            boxes,
            entries,
            index: index.saturating_add(1),
        };
        Ok(())
    }

    /// An encoder of one box alone, into `buf`: call [`Encoder::begin_box`] and
    /// [`Encoder::entry`] as usual, then [`Encoder::finish_box`]. The bytes can
    /// be spliced into any later blob with [`Encoder::encoded_box`], so that a
    /// producer re-encodes only the boxes that changed.
    #[inline]
    pub fn for_box(buf: &'a mut [u8]) -> Self {
        Encoder {
            w: Writer::new(buf),
            stage: Stage::Boxes {
                boxes: 1,
                entries: 0,
                index: 0,
            },
            total: 0,
        }
    }

    /// [`Encoder::for_box`] that only counts bytes.
    pub fn counting_box() -> Encoder<'static> {
        Encoder {
            w: Writer::counting(),
            stage: Stage::Boxes {
                boxes: 1,
                entries: 0,
                index: 0,
            },
            total: 0,
        }
    }

    /// Ends a [`Encoder::for_box`] encoder; returns the box's length.
    pub fn finish_box(self) -> Result<usize> {
        if !matches!(
            self.stage,
            Stage::Boxes {
                boxes: 0,
                entries: 0,
                ..
            }
        ) {
            return Err(Error::BadInput {
                what: "box not complete",
            });
        }
        Ok(self.w.position())
    }

    /// Appends a box of `entry_count` entries that [`Encoder::for_box`]
    /// encoded, in place of [`Encoder::begin_box`] and its entries.
    pub fn encoded_box(&mut self, encoded: &[u8], entry_count: u32) -> Result<()> {
        let Stage::Boxes {
            boxes, entries: 0, ..
        } = self.stage
        else {
            return Err(Error::BadInput {
                what: "box begun out of order",
            });
        };
        let boxes = boxes.checked_sub(1).ok_or(Error::BadInput {
            what: "more boxes than announced",
        })?;
        self.total = self
            .total
            .checked_add(entry_count)
            .filter(|&t| t <= MAX_ENTRIES)
            .ok_or(Error::Limit {
                offset: self.w.position(),
                limit: Limit::Entries,
                value: u64::from(self.total).saturating_add(u64::from(entry_count)),
            })?;
        self.w.write(encoded)?;
        self.stage = Stage::Boxes {
            boxes,
            entries: 0,
            index: 0,
        };
        Ok(())
    }

    /// Writes the header and returns the blob's length.
    pub fn finish(mut self) -> Result<usize> {
        if !matches!(
            self.stage,
            Stage::Boxes {
                boxes: 0,
                entries: 0,
                ..
            }
        ) {
            return Err(Error::BadInput {
                what: "fewer boxes or entries than announced",
            });
        }
        let len = self.w.position();
        if !self.w.is_counting() {
            let h = header::build(FORMAT_MINOR, self.w.written(HEADER_LEN))?;
            self.w.patch(0, &h)?;
        } else if len.saturating_sub(HEADER_LEN) > usize::try_from(MAX_BODY_LEN).unwrap_or(0) {
            return Err(Error::Limit {
                offset: HEADER_LEN,
                limit: Limit::BodyLen,
                value: u64::try_from(len).unwrap_or(u64::MAX),
            });
        }
        Ok(len)
    }
}

/// Checks that a box or entry name is non-empty and has no NUL byte.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.as_bytes().contains(&0) {
        return Err(Error::BadInput {
            what: "empty name or NUL in name",
        });
    }
    Ok(())
}
