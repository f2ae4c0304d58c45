// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The inspector's report: a stable, documented JSON schema (feature `serde`).
//!
//! `fdbox inspect --json` prints a [`Report`]. Schema version 1 (the
//! `schema` field) is stable: fields may be added, none renamed or removed
//! without bumping it. Integers are JSON numbers (u64 values above 2^53 lose
//! precision in JavaScript; every other reader keeps them exact).
//!
//! ```text
//! {
//!   "schema": 1,
//!   "format": { "major": 1, "minor": 0, "flags": 0,
//!               "header_len": 32, "body_len": 123, "body_crc32c": 305419896 },
//!   "kernel_release": "7.3.4", "fdbox_version": "0.1.0",
//!   "box_count": 1, "entry_count": 2,
//!   "boxes": [ {
//!     "index": 0, "name": "vm0", "owner_uid": 0, "owner_gid": 0,
//!     "state": "sealed" | "open",
//!     "entries": [ {
//!       "index": 0, "name": "ram", "handler": "memfd",
//!       "payload_version": 1, "flags": 0, "deps": [],
//!       "payload": { "kind": "inline", "len": 40 }
//!                | { "kind": "preserved", "len": 4096, "phys": 4096, "crc32c": 0 },
//!       "available": true, "reason": null | "unknown handler" | ...,
//!       "memfd": null | { "size": .., "pos": .., "seals": .., "page_shift": 12,
//!                         "name": "..", "folios": .., "pages": .., "runs": .. },
//!       "iommufd": null | { "ioas": [1, ..], "mappings": .., "mapped_bytes": ..,
//!                           "max_dep": null | .. },
//!       "vfio": null | { "address": "0000:00:04.0", "domain": 0, "bus": 0,
//!                        "devfn": 32, "vendor": 4660, "device": 4584,
//!                        "iommufd_dep": 1, "devid": 1, "ioas_id": 0 | ..,
//!                        "hwpt_id": .., "hwpt_flags": .., "iommufd_max_id": ..
//!                        (each absent if 0),
//!                        "identity": { "subsystem_vendor": .., "subsystem_device": ..,
//!                                      "class": .., "serial": null | .. }
//!                                    (absent in payload version 1) }
//!     } ]
//!   } ]
//! }
//! ```

use alloc::string::{
    String,
    ToString, //
};
use alloc::vec;
use alloc::vec::Vec;

use serde::Serialize;

use crate::owned::Identity;
use crate::{
    decode_payload,
    Decoded,
    ManifestView,
    Payload, //
};

/// The schema version of [`Report`].
pub const REPORT_SCHEMA: u32 = 1;

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// [`REPORT_SCHEMA`].
    pub schema: u32,
    /// The blob's header.
    pub format: FormatReport,
    /// The producer kernel's release.
    pub kernel_release: String,
    /// The producer's fdbox version.
    pub fdbox_version: String,
    /// The number of boxes.
    pub box_count: u32,
    /// The number of entries over all boxes.
    pub entry_count: u32,
    /// The boxes.
    pub boxes: Vec<BoxReport>,
}

/// The header fields.
#[derive(Clone, Debug, Serialize)]
pub struct FormatReport {
    /// Format major version.
    pub major: u16,
    /// Format minor version.
    pub minor: u16,
    /// Header flags.
    pub flags: u32,
    /// Header length in bytes.
    pub header_len: u32,
    /// Body length in bytes.
    pub body_len: u32,
    /// CRC32C of the body.
    pub body_crc32c: u32,
}

/// One box.
#[derive(Clone, Debug, Serialize)]
pub struct BoxReport {
    /// Index in the manifest.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Owner uid.
    pub owner_uid: u32,
    /// Owner gid.
    pub owner_gid: u32,
    /// `"open"` or `"sealed"`.
    pub state: &'static str,
    /// The entries.
    pub entries: Vec<EntryReport>,
}

/// One entry.
#[derive(Clone, Debug, Serialize)]
pub struct EntryReport {
    /// Index in the box.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Handler compatible string.
    pub handler: String,
    /// Payload schema version.
    pub payload_version: u32,
    /// Entry flags.
    pub flags: u32,
    /// Dependencies (entry indices).
    pub deps: Vec<u32>,
    /// Where the payload is.
    pub payload: PayloadReport,
    /// Whether this reader can decode the payload.
    pub available: bool,
    /// Why not, when `available` is false.
    pub reason: Option<String>,
    /// The decoded memfd payload, for handler `"memfd"`.
    pub memfd: Option<MemfdReport>,
    /// The decoded iommufd payload, for handler `"iommufd"`.
    pub iommufd: Option<IommufdReport>,
    /// The decoded VFIO device payload, for handler `"vfio"`.
    pub vfio: Option<VfioReport>,
}

/// Where an entry's payload is.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PayloadReport {
    /// Inline in the blob.
    Inline {
        /// Bytes.
        len: u64,
    },
    /// In separately preserved memory.
    Preserved {
        /// Bytes.
        len: u64,
        /// Physical address.
        phys: u64,
        /// CRC32C of the bytes.
        crc32c: u32,
    },
    /// In chunks of separately preserved memory.
    Chunked {
        /// Bytes.
        len: u64,
        /// CRC32C of the whole payload.
        crc32c: u32,
        /// The length of every chunk but the last.
        chunk_len: u32,
        /// The chunks' physical addresses.
        chunks: Vec<u64>,
    },
}

/// A decoded memfd payload.
#[derive(Clone, Debug, Serialize)]
pub struct MemfdReport {
    /// File size in bytes.
    pub size: u64,
    /// File position.
    pub pos: u64,
    /// `F_SEAL_*` bits.
    pub seals: u32,
    /// log2 of the page size.
    pub page_shift: u8,
    /// log2 of the huge page size of a hugetlb memfd; absent for shmem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub huge_shift: Option<u8>,
    /// memfd name.
    pub name: String,
    /// Folios.
    pub folios: u64,
    /// Pages.
    pub pages: u64,
    /// Folio runs.
    pub runs: u32,
}

/// A decoded iommufd payload.
#[derive(Clone, Debug, Serialize)]
pub struct IommufdReport {
    /// The IOAS object ids.
    pub ioas: Vec<u32>,
    /// Mappings over all IOASes.
    pub mappings: u32,
    /// Bytes mapped over all mappings.
    pub mapped_bytes: u64,
    /// The largest dependency index a mapping uses.
    pub max_dep: Option<u32>,
}

/// A decoded VFIO device payload.
#[derive(Clone, Debug, Serialize)]
pub struct VfioReport {
    /// The PCI address, `dddd:bb:ss.f`.
    pub address: String,
    /// PCI domain.
    pub domain: u32,
    /// PCI bus.
    pub bus: u8,
    /// PCI device and function.
    pub devfn: u8,
    /// PCI vendor id.
    pub vendor: u16,
    /// PCI device id.
    pub device: u16,
    /// The iommufd's index among the entry's dependencies.
    pub iommufd_dep: u32,
    /// The iommufd device object id.
    pub devid: u32,
    /// The IOAS it was attached to; 0 if not attached.
    pub ioas_id: u32,
    /// The paging HWPT userspace allocated that it was attached to; absent
    /// for an automatic one.
    #[serde(skip_serializing_if = "is_zero")]
    pub hwpt_id: u32,
    /// That HWPT's `IOMMU_HWPT_ALLOC_*` flags; absent if none.
    #[serde(skip_serializing_if = "is_zero")]
    pub hwpt_flags: u32,
    /// The highest object id its iommufd used; absent in payload version 1.
    #[serde(skip_serializing_if = "is_zero")]
    pub iommufd_max_id: u32,
    /// Subsystem ids, class and serial number; absent in payload version 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
}

/// For `skip_serializing_if`.
fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Report {
    /// Builds the report of a decoded blob, for a reader with 4 KiB pages.
    pub fn new(m: &ManifestView<'_>) -> Self {
        Self::for_reader(m, 12)
    }

    /// Builds the report of a decoded blob for a reader of page size
    /// `1 << page_shift`: an entry the per-entry checks
    /// ([`crate::check_entries`]) refuse is unavailable, with the reason.
    pub fn for_reader(m: &ManifestView<'_>, page_shift: u8) -> Self {
        let entries = usize::try_from(m.entry_count()).unwrap_or(usize::MAX);
        let verdicts = crate::owned::check(m, page_shift).unwrap_or_else(|_| vec![None; entries]);
        let mut verdicts = verdicts.into_iter();
        let boxes = m
            .boxes()
            .map(|b| BoxReport {
                index: b.index,
                name: b.head.name.to_string(),
                owner_uid: b.head.owner_uid,
                owner_gid: b.head.owner_gid,
                state: b.head.state.name(),
                entries: b
                    .entries()
                    .map(|e| entry_report(&e, verdicts.next().flatten()))
                    .collect(),
            })
            .collect();
        Report {
            schema: REPORT_SCHEMA,
            format: FormatReport {
                major: m.header.major,
                minor: m.header.minor,
                flags: m.header.flags,
                header_len: m.header.header_len,
                body_len: m.header.body_len,
                body_crc32c: m.header.body_crc,
            },
            kernel_release: m.kernel_release.to_string(),
            fdbox_version: m.fdbox_version.to_string(),
            box_count: m.box_count(),
            entry_count: m.entry_count(),
            boxes,
        }
    }
}

/// Builds one entry's report; `corrupt` is why the per-entry checks refused it.
fn entry_report(e: &crate::EntryView<'_>, corrupt: Option<crate::Error>) -> EntryReport {
    let payload = match e.payload {
        Payload::Inline(b) => PayloadReport::Inline {
            len: u64::try_from(b.len()).unwrap_or(u64::MAX),
        },
        Payload::Preserved(p) => PayloadReport::Preserved {
            len: p.len,
            phys: p.phys,
            crc32c: p.crc32c,
        },
        Payload::Chunked(c) => PayloadReport::Chunked {
            len: c.len,
            crc32c: c.crc32c,
            chunk_len: c.chunk_len,
            chunks: c.chunks.iter().collect(),
        },
    };
    let (mut memfd, mut iommufd, mut vfio) = (None, None, None);
    let reason = match decode_payload(e) {
        Ok(Decoded::Memfd(m)) => {
            memfd = Some(MemfdReport {
                size: m.head.size,
                pos: m.head.pos,
                seals: m.head.seals,
                page_shift: m.head.page_shift,
                huge_shift: Some(m.head.huge_shift).filter(|&s| s != 0),
                name: m.head.name.to_string(),
                folios: m.folios,
                pages: m.pages,
                runs: m.run_count,
            });
            None
        }
        Ok(Decoded::Iommufd(v)) => {
            iommufd = Some(IommufdReport {
                ioas: v.ioas_ids().collect(),
                mappings: v.map_count(),
                mapped_bytes: v.mapped_bytes(),
                max_dep: v.max_dep(),
            });
            None
        }
        Ok(Decoded::Vfio(d)) => {
            vfio = Some(VfioReport {
                address: d.pci_address().to_string(),
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
            });
            None
        }
        Err(why) => Some(why.to_string()),
    };
    let reason = match corrupt {
        Some(err) => Some(crate::Unavailable::Corrupt(err).to_string()),
        None => reason,
    };
    EntryReport {
        index: e.index,
        name: e.name.to_string(),
        handler: e.handler.to_string(),
        payload_version: e.payload_version,
        flags: e.flags,
        deps: e.deps().collect(),
        payload,
        available: reason.is_none(),
        reason,
        memfd,
        iommufd,
        vfio,
    }
}
