// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Owned types for userspace (feature `alloc`), with serde derives (feature
//! `serde`) whose postcard encoding is exactly the blob body.

use alloc::string::{
    String,
    ToString, //
};
use alloc::vec;
use alloc::vec::Vec;

use crate::iommufd::{
    self,
    IoasMapping, //
};
use crate::memfd::{
    self,
    FolioRun,
    MemfdHead, //
};
use crate::vfio::{
    self,
    PciIdentity,
    VfioDevice, //
};
use crate::{
    BoxHead,
    BoxState,
    Encoder,
    EntryRecord,
    ManifestView,
    PreservedRef,
    Result, //
};

/// A manifest: everything FDBox hands over, as owned values.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Manifest {
    /// The producer kernel's release (`uname -r`), at most `MAX_RELEASE_LEN`
    /// bytes.
    pub kernel_release: String,
    /// The producer's fdbox version, at most `MAX_VERSION_LEN` bytes.
    pub fdbox_version: String,
    /// The boxes, at most `MAX_BOXES`, names unique per owner.
    pub boxes: Vec<Box>,
}

/// A box: a named, owned set of entries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Box {
    /// Unique among the boxes of its owner; 1..=`MAX_NAME_LEN` bytes, no NUL.
    pub name: String,
    /// The owner's uid.
    pub owner_uid: u32,
    /// The owner's gid.
    pub owner_gid: u32,
    /// The box's state.
    #[cfg_attr(feature = "serde", serde(with = "BoxStateDef"))]
    pub state: BoxState,
    /// The entries, at most `MAX_ENTRIES_PER_BOX`, in restore order.
    pub entries: Vec<Entry>,
}

/// serde's view of [`BoxState`]: a unit enum, discriminants 0 and 1.
#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "BoxState")]
enum BoxStateDef {
    /// [`BoxState::Open`].
    Open,
    /// [`BoxState::Sealed`].
    Sealed,
}

/// One preserved file descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Entry {
    /// Unique within the box; 1..=`MAX_NAME_LEN` bytes, no NUL.
    pub name: String,
    /// The handler's compatible string, e.g. `"memfd"`.
    pub handler: String,
    /// The version of the handler's payload schema.
    pub payload_version: u32,
    /// `ENTRY_FLAG_*` bits.
    pub flags: u32,
    /// Indices of earlier entries of the box to restore first, ascending.
    pub deps: Vec<u32>,
    /// The handler's state.
    pub payload: Payload,
}

/// An entry's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Payload {
    /// Inline bytes, at most `MAX_INLINE_LEN`.
    Inline(Vec<u8>),
    /// Separately preserved memory.
    Preserved {
        /// Physical address; page-aligned.
        phys: u64,
        /// Length in bytes.
        len: u64,
        /// CRC32C of the bytes.
        crc32c: u32,
    },
    /// Chunks of separately preserved memory (format major 2).
    Chunked {
        /// Length in bytes.
        len: u64,
        /// CRC32C of the whole payload.
        crc32c: u32,
        /// The length of every chunk but the last.
        chunk_len: u32,
        /// The chunks' physical addresses.
        chunks: Vec<u64>,
    },
}

impl Manifest {
    /// Copies a decoded view.
    pub fn from_view(m: &ManifestView<'_>) -> Self {
        let boxes = m
            .boxes()
            .map(|b| Box {
                name: b.head.name.to_string(),
                owner_uid: b.head.owner_uid,
                owner_gid: b.head.owner_gid,
                state: b.head.state,
                entries: b
                    .entries()
                    .map(|e| Entry {
                        name: e.name.to_string(),
                        handler: e.handler.to_string(),
                        payload_version: e.payload_version,
                        flags: e.flags,
                        deps: e.deps().collect(),
                        payload: match e.payload {
                            crate::Payload::Inline(b) => Payload::Inline(b.to_vec()),
                            crate::Payload::Preserved(p) => Payload::Preserved {
                                phys: p.phys,
                                len: p.len,
                                crc32c: p.crc32c,
                            },
                            crate::Payload::Chunked(c) => Payload::Chunked {
                                len: c.len,
                                crc32c: c.crc32c,
                                chunk_len: c.chunk_len,
                                chunks: c.chunks.iter().collect(),
                            },
                        },
                    })
                    .collect(),
            })
            .collect();
        Manifest {
            kernel_release: m.kernel_release.to_string(),
            fdbox_version: m.fdbox_version.to_string(),
            boxes,
        }
    }

    /// Decodes a blob.
    pub fn decode(blob: &[u8]) -> Result<Self> {
        Ok(Self::from_view(&crate::decode(blob)?))
    }

    /// Runs the encoding through `enc`.
    pub fn encode_with(&self, enc: &mut Encoder<'_>) -> Result<()> {
        enc.manifest(&self.kernel_release, &self.fdbox_version, self.boxes.len())?;
        for b in &self.boxes {
            b.encode_with(enc)?;
        }
        Ok(())
    }

    /// Encodes the manifest from boxes encoded one by one with
    /// [`Box::encode_alone`] and spliced in, as a producer that caches them
    /// does; the result is the same as [`Manifest::encode`].
    pub fn encode_spliced(&self) -> Result<Vec<u8>> {
        let mut boxes = Vec::with_capacity(self.boxes.len());
        for b in &self.boxes {
            boxes.push(b.encode_alone()?);
        }
        let splice = |enc: &mut Encoder<'_>| -> Result<()> {
            enc.manifest(&self.kernel_release, &self.fdbox_version, self.boxes.len())?;
            for (b, bytes) in self.boxes.iter().zip(&boxes) {
                let n = u32::try_from(b.entries.len()).map_err(|_| crate::Error::BadInput {
                    what: "too many entries",
                })?;
                enc.encoded_box(bytes, n)?;
            }
            Ok(())
        };
        let mut counting = Encoder::counting();
        splice(&mut counting)?;
        let mut out = vec![0u8; counting.finish()?];
        let mut enc = Encoder::new(&mut out)?;
        splice(&mut enc)?;
        let n = enc.finish()?;
        out.truncate(n);
        Ok(out)
    }

    /// The exact length of the encoded blob.
    pub fn encoded_len(&self) -> Result<usize> {
        let mut enc = Encoder::counting();
        self.encode_with(&mut enc)?;
        enc.finish()
    }

    /// Encodes a blob.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.encoded_len()?];
        let mut enc = Encoder::new(&mut out)?;
        self.encode_with(&mut enc)?;
        let n = enc.finish()?;
        out.truncate(n);
        Ok(out)
    }
}

impl Box {
    /// Writes the box and its entries through `enc`.
    pub fn encode_with(&self, enc: &mut Encoder<'_>) -> Result<()> {
        let head = BoxHead {
            name: &self.name,
            owner_uid: self.owner_uid,
            owner_gid: self.owner_gid,
            state: self.state,
        };
        enc.begin_box(&head, self.entries.len())?;
        for e in &self.entries {
            enc.entry(&EntryRecord {
                name: &e.name,
                handler: &e.handler,
                payload_version: e.payload_version,
                flags: e.flags,
                deps: &e.deps,
                payload: match &e.payload {
                    Payload::Inline(b) => crate::Payload::Inline(b),
                    Payload::Preserved { phys, len, crc32c } => {
                        crate::Payload::Preserved(PreservedRef {
                            phys: *phys,
                            len: *len,
                            crc32c: *crc32c,
                        })
                    }
                    Payload::Chunked {
                        len,
                        crc32c,
                        chunk_len,
                        chunks,
                    } => crate::Payload::Chunked(crate::ChunkedRef {
                        len: *len,
                        crc32c: *crc32c,
                        chunk_len: *chunk_len,
                        chunks: crate::Chunks::List(chunks),
                    }),
                },
            })?;
        }
        Ok(())
    }

    /// Encodes the box alone ([`Encoder::for_box`]), to be spliced into a blob
    /// with [`Encoder::encoded_box`].
    pub fn encode_alone(&self) -> Result<Vec<u8>> {
        let mut counting = Encoder::counting_box();
        self.encode_with(&mut counting)?;
        let mut out = vec![0u8; counting.finish_box()?];
        let mut enc = Encoder::for_box(&mut out);
        self.encode_with(&mut enc)?;
        let n = enc.finish_box()?;
        out.truncate(n);
        Ok(out)
    }
}

/// Validates a decoded manifest, allocating the scratch space.
pub fn validate(m: &ManifestView<'_>) -> Result<()> {
    let mut scratch = vec![0u64; crate::scratch_len(m)];
    crate::validate(m, &mut scratch)
}

/// A reader that takes every page frame for RAM: userspace can't tell which
/// are, on the machine that will restore the blob.
struct AnyRam {
    /// The reader's page shift.
    page_shift: u8,
}

impl crate::Machine for AnyRam {
    fn page_shift(&self) -> u8 {
        self.page_shift
    }

    fn is_ram(&mut self, _pfn: u64, _pages: u64) -> bool {
        true
    }
}

/// Runs the per-entry checks ([`crate::check_entries`]) of a validated
/// manifest, for a reader of page size `1 << page_shift`: one verdict per
/// entry, in manifest order, `Some(reason)` when it is corrupt.
pub fn check(m: &ManifestView<'_>, page_shift: u8) -> Result<Vec<Option<crate::Error>>> {
    let entries = usize::try_from(m.entry_count()).unwrap_or(usize::MAX);
    let mut verdicts = vec![None; entries];
    let mut spans = vec![crate::Span::default(); crate::span_count(m)];
    crate::check_entries(m, &mut AnyRam { page_shift }, &mut spans, &mut verdicts)?;
    Ok(verdicts)
}

/// A memfd payload (handler `"memfd"`, version 1, or 2 for a hugetlb memfd), owned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Memfd {
    /// The file size in bytes.
    pub size: u64,
    /// The file position.
    pub pos: u64,
    /// The `F_SEAL_*` seals.
    pub seals: u32,
    /// log2 of the base page size.
    pub page_shift: u8,
    /// log2 of the huge page size of a hugetlb memfd (version 2); 0 for a
    /// shmem memfd (version 1).
    #[cfg_attr(feature = "serde", serde(default))]
    pub huge_shift: u8,
    /// The memfd's name.
    pub name: String,
    /// The folio runs, canonical (merged), in file order.
    pub runs: Vec<Run>,
}

/// A folio run of a [`Memfd`]; see [`FolioRun`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Run {
    /// The page index of the first folio in the file.
    pub index: u64,
    /// The page frame number of the first folio.
    pub pfn: u64,
    /// The folio order.
    pub order: u8,
    /// The number of folios.
    pub count: u64,
}

impl From<FolioRun> for Run {
    fn from(r: FolioRun) -> Self {
        Run {
            index: r.index,
            pfn: r.pfn,
            order: r.order,
            count: r.count,
        }
    }
}

impl From<Run> for FolioRun {
    fn from(r: Run) -> Self {
        FolioRun {
            index: r.index,
            pfn: r.pfn,
            order: r.order,
            count: r.count,
        }
    }
}

impl Memfd {
    /// The file-level fields.
    fn head(&self) -> MemfdHead<'_> {
        MemfdHead {
            size: self.size,
            pos: self.pos,
            seals: self.seals,
            page_shift: self.page_shift,
            huge_shift: self.huge_shift,
            name: &self.name,
        }
    }

    /// Encodes the payload.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let runs = self.runs.iter().map(|&r| FolioRun::from(r));
        let mut out = vec![0u8; memfd::encoded_len(&self.head(), runs.clone())?];
        let mut w = crate::wire::Writer::new(&mut out);
        memfd::encode(&mut w, &self.head(), runs)?;
        let n = w.position();
        out.truncate(n);
        Ok(out)
    }

    /// Copies a decoded view.
    pub fn from_view(v: &memfd::MemfdView<'_>) -> Self {
        Memfd {
            size: v.head.size,
            pos: v.head.pos,
            seals: v.head.seals,
            page_shift: v.head.page_shift,
            huge_shift: v.head.huge_shift,
            name: v.head.name.to_string(),
            runs: v.runs().map(Run::from).collect(),
        }
    }

    /// The payload version [`Memfd::encode`] writes.
    pub fn version(&self) -> u32 {
        self.head().version()
    }

    /// Decodes a version 1 payload.
    pub fn decode(payload: &[u8]) -> Result<Self> {
        Self::decode_version(payload, memfd::SHMEM_VERSION)
    }

    /// Decodes a payload of `version`.
    pub fn decode_version(payload: &[u8], version: u32) -> Result<Self> {
        Ok(Self::from_view(&memfd::decode_version(
            payload, 0, version,
        )?))
    }
}

/// An iommufd payload (handler `"iommufd"`, version 1), owned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Iommufd {
    /// The IOAS object ids, nonzero, strictly ascending.
    pub ioas: Vec<u32>,
    /// The mappings, ascending by (IOAS id, IOVA), disjoint within an IOAS.
    pub maps: Vec<Mapping>,
}

/// An IOAS mapping of an [`Iommufd`]; see [`IoasMapping`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Mapping {
    /// The IOAS object id.
    pub ioas_id: u32,
    /// The first I/O virtual address.
    pub iova: u64,
    /// The length in bytes.
    pub length: u64,
    /// The backing memfd's index among the entry's dependencies.
    pub dep: u32,
    /// The byte offset in the memfd.
    pub start: u64,
    /// `PROT_READ`/`PROT_WRITE` bits.
    pub prot: u8,
}

impl From<IoasMapping> for Mapping {
    fn from(m: IoasMapping) -> Self {
        Mapping {
            ioas_id: m.ioas_id,
            iova: m.iova,
            length: m.length,
            dep: m.dep,
            start: m.start,
            prot: m.prot,
        }
    }
}

impl From<Mapping> for IoasMapping {
    fn from(m: Mapping) -> Self {
        IoasMapping {
            ioas_id: m.ioas_id,
            iova: m.iova,
            length: m.length,
            dep: m.dep,
            start: m.start,
            prot: m.prot,
        }
    }
}

impl Iommufd {
    /// Encodes the payload.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let maps: Vec<IoasMapping> = self.maps.iter().map(|&m| m.into()).collect();
        let mut out = vec![0u8; iommufd::encoded_len(&self.ioas, &maps)?];
        let n = iommufd::encode(&self.ioas, &maps, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// Copies a decoded view.
    pub fn from_view(v: &iommufd::IommufdView<'_>) -> Self {
        Iommufd {
            ioas: v.ioas_ids().collect(),
            maps: v.maps().map(Mapping::from).collect(),
        }
    }

    /// Decodes a payload.
    pub fn decode(payload: &[u8]) -> Result<Self> {
        Ok(Self::from_view(&iommufd::decode(payload, 0)?))
    }
}

/// A vfio payload (handler `"vfio"`, version 2, or 1 without a HWPT and an
/// identity), owned; see [`VfioDevice`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Vfio {
    /// The PCI domain.
    pub domain: u32,
    /// The PCI bus number.
    pub bus: u8,
    /// The PCI device and function.
    pub devfn: u8,
    /// The PCI vendor id.
    pub vendor: u16,
    /// The PCI device id.
    pub device: u16,
    /// The iommufd's index among the entry's dependencies.
    pub iommufd_dep: u32,
    /// The iommufd device object id.
    pub devid: u32,
    /// The IOAS object id it was attached to, or 0.
    pub ioas_id: u32,
    /// The paging HWPT userspace allocated that it was attached to, or 0.
    pub hwpt_id: u32,
    /// That HWPT's `IOMMU_HWPT_ALLOC_*` flags.
    pub hwpt_flags: u32,
    /// The highest object id its iommufd used.
    pub iommufd_max_id: u32,
    /// Subsystem ids, class and serial number; `None` in version 1.
    pub identity: Option<Identity>,
}

/// [`PciIdentity`], owned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Identity {
    /// The PCI subsystem vendor id.
    pub subsystem_vendor: u16,
    /// The PCI subsystem id.
    pub subsystem_device: u16,
    /// The class code, 24 bits.
    pub class: u32,
    /// The Device Serial Number, if any.
    pub serial: Option<u64>,
}

impl From<PciIdentity> for Identity {
    fn from(i: PciIdentity) -> Self {
        Identity {
            subsystem_vendor: i.subsystem_vendor,
            subsystem_device: i.subsystem_device,
            class: i.class,
            serial: i.serial,
        }
    }
}

impl From<Identity> for PciIdentity {
    fn from(i: Identity) -> Self {
        PciIdentity {
            subsystem_vendor: i.subsystem_vendor,
            subsystem_device: i.subsystem_device,
            class: i.class,
            serial: i.serial,
        }
    }
}

impl From<VfioDevice> for Vfio {
    fn from(d: VfioDevice) -> Self {
        Vfio {
            domain: d.domain,
            bus: d.bus,
            devfn: d.devfn,
            vendor: d.vendor,
            device: d.device,
            iommufd_dep: d.iommufd_dep,
            devid: d.devid,
            ioas_id: d.ioas_id,
            hwpt_id: d.hwpt_id,
            hwpt_flags: d.hwpt_flags,
            iommufd_max_id: d.iommufd_max_id,
            identity: d.identity.map(Identity::from),
        }
    }
}

impl From<Vfio> for VfioDevice {
    fn from(d: Vfio) -> Self {
        VfioDevice {
            domain: d.domain,
            bus: d.bus,
            devfn: d.devfn,
            vendor: d.vendor,
            device: d.device,
            iommufd_dep: d.iommufd_dep,
            devid: d.devid,
            ioas_id: d.ioas_id,
            hwpt_id: d.hwpt_id,
            hwpt_flags: d.hwpt_flags,
            iommufd_max_id: d.iommufd_max_id,
            identity: d.identity.map(PciIdentity::from),
        }
    }
}

impl Vfio {
    /// Encodes the payload.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = vec![0u8; vfio::MAX_ENCODED_LEN];
        let n = vfio::encode(&VfioDevice::from(*self), &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// Decodes a payload of the current version.
    pub fn decode(payload: &[u8]) -> Result<Self> {
        vfio::decode(payload, 0).map(Self::from)
    }
}
