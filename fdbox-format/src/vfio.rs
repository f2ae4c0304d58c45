// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The vfio handler's payload, version 2: a VFIO cdev device fd.
//!
//! This is a hand-over contract between the kernel that preserves a VFIO
//! device fd and the kernel that restores it: any change to the layout or to
//! the meaning of a field bumps [`PAYLOAD_VERSION`]. Postcard layout:
//!
//! ```text
//! VfioPayload {
//!     domain: u32,      // PCI domain (segment), at most 0xffff
//!     bus: u8,          // PCI bus number
//!     devfn: u8,        // PCI device (bits 7:3) and function (bits 2:0)
//!     vendor: u16,      // PCI vendor id, to check it's the same device
//!     device: u16,      // PCI device id, likewise
//!     iommufd_dep: u32, // the iommufd the device is bound to: an index into
//!                       // the entry's restore dependencies (not an entry index)
//!     devid: u32,       // the iommufd device object id it had; nonzero
//!     ioas_id: u32,     // the IOAS it was attached to; 0 if bound only
//!     // Version 2 on:
//!     hwpt_id: u32,     // the paging HWPT userspace allocated that it was
//!                       // attached to, on `ioas_id`; 0 for an automatic one
//!     hwpt_flags: u32,  // that HWPT's IOMMU_HWPT_ALLOC_* flags; 0 if none
//!     iommufd_max_id: u32, // the highest object id in its iommufd: the new
//!                       // kernel's iommufd allocates above it
//!     subsystem_vendor: u16, // PCI subsystem vendor id
//!     subsystem_device: u16, // PCI subsystem id
//!     class: u32,       // PCI class code (24 bits: class, subclass, prog-if)
//!     serial: Option<u64>, // the Device Serial Number capability, if any
//! }
//! ```
//!
//! Version 1 ends after `ioas_id`; [`decode_v1`] reads it.

use core::fmt;

use super::error::{
    Error,
    Result, //
};
use super::limits::{
    Limit,
    MAX_PCI_DOMAIN, //
};
use super::wire::{
    varint_len,
    Reader,
    Writer, //
};

/// The vfio handler's compatible string.
pub const HANDLER: &str = "vfio";

/// The payload version this crate writes and reads (and `PAYLOAD_VERSION − 1`
/// when there is one).
pub const PAYLOAD_VERSION: u32 = 2;

/// The oldest payload version this crate reads.
pub const MIN_PAYLOAD_VERSION: u32 = 1;

/// The longest encoding, in bytes: `domain` (at most [`MAX_PCI_DOMAIN`]) in 3,
/// `bus` and `devfn` in 1 each, the four `u16`s in 3 each, six `u32`s in 5
/// each, `class` (24 bits) in 4 and `serial` in 11. A kernel can encode into
/// a stack buffer of this size.
pub const MAX_ENCODED_LEN: usize = 3 + 2 + 4 * 3 + 6 * 5 + 4 + 11;

/// What identifies a PCI function beyond its vendor and device ids: what a
/// VMM would be hurt by if it changed under it. Version 2 on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciIdentity {
    /// The PCI subsystem vendor id.
    pub subsystem_vendor: u16,
    /// The PCI subsystem id.
    pub subsystem_device: u16,
    /// The class code: class, subclass and programming interface, 24 bits.
    pub class: u32,
    /// The Device Serial Number capability, if the function has one.
    pub serial: Option<u64>,
}

/// A VFIO cdev device fd: which PCI device, and how it was bound to iommufd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VfioDevice {
    /// The PCI domain (segment group), at most [`MAX_PCI_DOMAIN`].
    pub domain: u32,
    /// The PCI bus number.
    pub bus: u8,
    /// The PCI device (bits 7:3) and function (bits 2:0).
    pub devfn: u8,
    /// The PCI vendor id.
    pub vendor: u16,
    /// The PCI device id.
    pub device: u16,
    /// The iommufd the device is bound to: an index into the entry's restore
    /// dependencies.
    pub iommufd_dep: u32,
    /// The iommufd device object id it had; nonzero.
    pub devid: u32,
    /// The IOAS object id it was attached to, or 0 if it was bound but not
    /// attached.
    pub ioas_id: u32,
    /// The paging HWPT userspace allocated (`IOMMU_HWPT_ALLOC`) on `ioas_id`
    /// that it was attached to, or 0 for an automatic one. Version 1: 0.
    pub hwpt_id: u32,
    /// That HWPT's `IOMMU_HWPT_ALLOC_*` flags. Version 1: 0.
    pub hwpt_flags: u32,
    /// The highest object id its iommufd used: the restored iommufd allocates new objects
    /// above it, so that the ids of what is restored after them stay free. Version 1: 0.
    pub iommufd_max_id: u32,
    /// Version 2 on: `Some`, and [`encode`] requires it.
    pub identity: Option<PciIdentity>,
}

/// A PCI address, displayed as `dddd:bb:ss.f` (e.g. `0000:00:04.0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciAddress {
    /// The PCI domain.
    pub domain: u32,
    /// The bus number.
    pub bus: u8,
    /// The device (bits 7:3) and function (bits 2:0).
    pub devfn: u8,
}

impl PciAddress {
    /// The device (slot) number, 0–31.
    #[inline]
    pub fn slot(&self) -> u8 {
        self.devfn.wrapping_shr(3)
    }

    /// The function number, 0–7.
    #[inline]
    pub fn function(&self) -> u8 {
        self.devfn & 7
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain,
            self.bus,
            self.slot(),
            self.function()
        )
    }
}

impl VfioDevice {
    /// The device's PCI address.
    #[inline]
    pub fn pci_address(&self) -> PciAddress {
        PciAddress {
            domain: self.domain,
            bus: self.bus,
            devfn: self.devfn,
        }
    }

    /// Checks that `iommufd_dep` is below `dep_count`, the number of the
    /// entry's dependencies; `base_offset` is the blob offset of the payload,
    /// as given to [`decode`].
    pub fn check_deps(&self, dep_count: u32, base_offset: usize) -> Result<()> {
        if self.iommufd_dep < dep_count {
            return Ok(());
        }
        // The varints before `iommufd_dep`, as `encode` writes them.
        let before = varint_len(u64::from(self.domain))
            .saturating_add(2)
            .saturating_add(varint_len(u64::from(self.vendor)))
            .saturating_add(varint_len(u64::from(self.device)));
        Err(Error::BadField {
            offset: base_offset.saturating_add(before),
            what: "dependency index beyond the entry's dependencies",
        })
    }
}

/// Writes `dev` into `out`, at least [`MAX_ENCODED_LEN`] bytes long or as
/// long as the encoding (bytes past it may be overwritten); returns the bytes
/// written.
pub fn encode(dev: &VfioDevice, out: &mut [u8]) -> Result<usize> {
    if dev.domain > MAX_PCI_DOMAIN {
        return Err(Error::BadInput {
            what: "PCI domain above 0xffff",
        });
    }
    if dev.devid == 0 {
        return Err(Error::BadInput {
            what: "iommufd device id 0",
        });
    }
    if dev.hwpt_id != 0 && dev.ioas_id == 0 {
        return Err(Error::BadInput {
            what: "a HWPT without its IOAS",
        });
    }
    let Some(id) = dev.identity else {
        return Err(Error::BadInput {
            what: "no PCI identity",
        });
    };
    if id.class > MAX_PCI_CLASS {
        return Err(Error::BadInput {
            what: "PCI class code above 24 bits",
        });
    }
    let mut w = Writer::new(out);
    w.u32(dev.domain)?;
    w.u8(dev.bus)?;
    w.u8(dev.devfn)?;
    w.u16(dev.vendor)?;
    w.u16(dev.device)?;
    w.u32(dev.iommufd_dep)?;
    w.u32(dev.devid)?;
    w.u32(dev.ioas_id)?;
    w.u32(dev.hwpt_id)?;
    w.u32(dev.hwpt_flags)?;
    w.u32(dev.iommufd_max_id)?;
    w.u16(id.subsystem_vendor)?;
    w.u16(id.subsystem_device)?;
    w.u32(id.class)?;
    match id.serial {
        None => w.bool(false)?,
        Some(serial) => {
            w.bool(true)?;
            w.u64(serial)?;
        }
    }
    Ok(w.position())
}

/// Decodes a version 2 vfio payload whose first byte is at blob offset
/// `base_offset`.
pub fn decode(bytes: &[u8], base_offset: usize) -> Result<VfioDevice> {
    let mut r = Reader::new(bytes, base_offset);
    let mut dev = decode_v1_fields(&mut r)?;
    let hwpt_offset = r.offset();
    dev.hwpt_id = r.u32()?;
    if dev.hwpt_id != 0 && dev.ioas_id == 0 {
        return Err(Error::BadField {
            offset: hwpt_offset,
            what: "a HWPT without its IOAS",
        });
    }
    dev.hwpt_flags = r.u32()?;
    dev.iommufd_max_id = r.u32()?;
    let subsystem_vendor = r.u16()?;
    let subsystem_device = r.u16()?;
    let class_offset = r.offset();
    let class = r.u32()?;
    if class > MAX_PCI_CLASS {
        return Err(Error::BadField {
            offset: class_offset,
            what: "PCI class code above 24 bits",
        });
    }
    let serial = if r.bool()? { Some(r.u64()?) } else { None };
    r.end()?;
    dev.identity = Some(PciIdentity {
        subsystem_vendor,
        subsystem_device,
        class,
        serial,
    });
    Ok(dev)
}

/// Decodes a version 1 vfio payload, as [`decode`] does version 2: no HWPT
/// and no [`PciIdentity`].
pub fn decode_v1(bytes: &[u8], base_offset: usize) -> Result<VfioDevice> {
    let mut r = Reader::new(bytes, base_offset);
    let dev = decode_v1_fields(&mut r)?;
    r.end()?;
    Ok(dev)
}

/// The largest PCI class code: 24 bits.
const MAX_PCI_CLASS: u32 = 0xff_ffff;

/// The fields of version 1, which version 2 begins with.
fn decode_v1_fields(r: &mut Reader<'_>) -> Result<VfioDevice> {
    let domain_offset = r.offset();
    let domain = r.u32()?;
    if domain > MAX_PCI_DOMAIN {
        return Err(Error::Limit {
            offset: domain_offset,
            limit: Limit::PciDomain,
            value: u64::from(domain),
        });
    }
    let bus = r.u8()?;
    let devfn = r.u8()?;
    let vendor = r.u16()?;
    let device = r.u16()?;
    let iommufd_dep = r.u32()?;
    let devid_offset = r.offset();
    let devid = r.u32()?;
    if devid == 0 {
        return Err(Error::BadField {
            offset: devid_offset,
            what: "iommufd device id 0",
        });
    }
    let ioas_id = r.u32()?;
    Ok(VfioDevice {
        domain,
        bus,
        devfn,
        vendor,
        device,
        iommufd_dep,
        devid,
        ioas_id,
        hwpt_id: 0,
        hwpt_flags: 0,
        iommufd_max_id: 0,
        identity: None,
    })
}
