// SPDX-License-Identifier: GPL-2.0

//! FDBox's VFIO handler: a VFIO cdev device fd across the kexec, bound and attached again.
//!
//! - `ADD` (`prepare`) checks the file is a PCI device opened through its cdev and bound to
//!   an iommufd, and names that iommufd as a dependency, so `SEAL` requires it in the box.
//!   It refuses a group fd, a device opened through a group, an unbound device, an emulated
//!   device, an SR-IOV virtual function, and a device attached to anything but an IOAS or a
//!   paging HWPT userspace allocated.
//! - `SEAL` (`serialize`) records the PCI identity (domain, bus, devfn, vendor, device,
//!   subsystem ids, class, serial number), the iommufd device ID, the IOAS the device is
//!   attached to and the HWPT if userspace allocated it, and quiesces the device: Bus Master
//!   goes off, so no DMA lands after the blackout begins. `CANCEL` writes back the command
//!   register as `SEAL` found it.
//! - After the kexec, `restore` finds the same device (a different one is refused), checks
//!   that the retriever may open its `/dev/vfio/devices/vfioN` (`EACCES`), opens it through
//!   VFIO, binds it to the restored iommufd with the same device ID (`EBUSY` if taken), and
//!   attaches it as it was, allocating the HWPT again with its ID. `EACCES` and `EBUSY` leave
//!   the entry pending. The device has been reset, as after any open: the VMM sets Bus Master
//!   and re-arms interrupts, as it did the first time.

use core::ptr::NonNull;
use kernel::{
    bindings,
    error::to_result,
    ffi::{
        c_int,
        c_void, //
    },
    fs::File,
    prelude::*,
    sync::aref::ARef, //
};

#[path = "../fdbox-core/preservable.rs"]
pub mod preservable;

#[path = "../fdbox-format/src/kernel.rs"]
pub mod fdbox_format;

use fdbox_format::{
    limits::MAX_PCI_DOMAIN,
    vfio::{
        self,
        PciIdentity,
        VfioDevice, //
    },
};
use preservable::{
    Dependencies,
    Payload,
    Preservable,
    Registration,
    RestoredDeps, //
};

module! {
    type: VfioModule,
    name: "fdbox_vfio",
    authors: ["FDBox developers"],
    description: "FDBox: carry a VFIO device fd across a kexec",
    license: "GPL",
}

/// `struct fdbox_vfio_desc` of `fdbox_vfio_glue.h`.
#[repr(C)]
struct Desc {
    pdev: *mut c_void,
    iommufd: *mut bindings::file,
    domain: u32,
    bus: u8,
    devfn: u8,
    vendor: u16,
    device: u16,
    devid: u32,
    ioas_id: u32,
    hwpt_id: u32,
    hwpt_flags: u32,
    iommufd_max_id: u32,
    subsystem_vendor: u16,
    subsystem_device: u16,
    class: u32,
    serial: u64,
    has_serial: bool,
    has_identity: bool,
    is_virtfn: bool,
}

impl Desc {
    const EMPTY: Desc = Desc {
        pdev: core::ptr::null_mut(),
        iommufd: core::ptr::null_mut(),
        domain: 0,
        bus: 0,
        devfn: 0,
        vendor: 0,
        device: 0,
        devid: 0,
        ioas_id: 0,
        hwpt_id: 0,
        hwpt_flags: 0,
        iommufd_max_id: 0,
        subsystem_vendor: 0,
        subsystem_device: 0,
        class: 0,
        serial: 0,
        has_serial: false,
        has_identity: false,
        is_virtfn: false,
    };

    /// What `restore` looks for: the device and its attachment as the payload names them.
    fn from_payload(d: &VfioDevice) -> Self {
        let mut desc = Desc {
            domain: d.domain,
            bus: d.bus,
            devfn: d.devfn,
            vendor: d.vendor,
            device: d.device,
            devid: d.devid,
            ioas_id: d.ioas_id,
            hwpt_id: d.hwpt_id,
            hwpt_flags: d.hwpt_flags,
            iommufd_max_id: d.iommufd_max_id,
            ..Desc::EMPTY
        };
        if let Some(id) = d.identity {
            desc.subsystem_vendor = id.subsystem_vendor;
            desc.subsystem_device = id.subsystem_device;
            desc.class = id.class;
            desc.serial = id.serial.unwrap_or(0);
            desc.has_serial = id.serial.is_some();
            desc.has_identity = true;
        }
        desc
    }
}

/// `enum fdbox_vfio_kind`: a VFIO device file.
const KIND_DEVICE: c_int = 1;
/// As above: a VFIO group file.
const KIND_GROUP: c_int = 2;

// The functions of `fdbox_vfio_glue.h`. `struct file` is only passed by pointer, so the zero-sized
// bindgen members of its fields don't matter.
#[allow(improper_ctypes)]
extern "C" {
    fn fdbox_vfio_kind(file: *mut bindings::file) -> c_int;
    fn fdbox_vfio_describe(file: *mut bindings::file, desc: *mut Desc) -> c_int;
    fn fdbox_vfio_put(desc: *mut Desc);
    fn fdbox_vfio_quiesce(pdev: *mut c_void, saved_cmd: *mut u16) -> c_int;
    fn fdbox_vfio_unquiesce(pdev: *mut c_void, saved_cmd: u16);
    fn fdbox_vfio_open(desc: *const Desc, iommufd: *mut bindings::file) -> *mut bindings::file;
}

/// A described device file: its references to the PCI device and the iommufd.
///
/// # Invariants
///
/// `desc` was filled by a successful `fdbox_vfio_describe`, and is put on drop.
struct Described {
    desc: Desc,
}

// SAFETY: The references may be put from any thread.
unsafe impl Send for Described {}
// SAFETY: `&Described` only reads plain fields.
unsafe impl Sync for Described {}

impl Described {
    /// Describes a VFIO device file, with a clear message for what can't be carried.
    fn new(file: &File) -> Result<Self> {
        let mut desc = Desc::EMPTY;
        // SAFETY: `file` is a VFIO device file; `desc` is valid for writes.
        let ret = unsafe { fdbox_vfio_describe(file.as_ptr(), &mut desc) };
        match to_result(ret) {
            Ok(()) if desc.is_virtfn => {
                drop(Self { desc });
                pr_info!(
                    "an SR-IOV virtual function can't be carried: the new kernel has no VFs \
                     until its PF enables them again, nor the PF's VF token\n"
                );
                Err(EOPNOTSUPP)
            }
            Ok(()) if desc.domain > MAX_PCI_DOMAIN => {
                // The payload's limit; only some machines (VMD) have such domains.
                let domain = desc.domain;
                drop(Self { desc });
                pr_info!("a device in PCI domain {domain:#x} can't be carried\n");
                Err(EOPNOTSUPP)
            }
            Ok(()) => Ok(Self { desc }),
            Err(e) if e == ENOTCONN => {
                pr_info!("the VFIO device is not bound to an iommufd (VFIO_DEVICE_BIND_IOMMUFD)\n");
                Err(EINVAL)
            }
            Err(e) if e == EOPNOTSUPP => {
                pr_info!(
                    "only a PCI device opened through its cdev, and attached to an IOAS or a \
                     paging HWPT if at all, can be carried: not one opened through a group, an \
                     emulated device, one with a PASID attached, or one attached to a nested \
                     HWPT or a HWPT with a fault queue\n"
                );
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// The iommufd the device is bound to.
    fn iommufd(&self) -> &File {
        // SAFETY: By the type invariants, `iommufd` is referenced while `self` lives, and no
        // `fdget_pos` region is active on it.
        unsafe { File::from_raw_file(self.desc.iommufd) }
    }
}

impl Drop for Described {
    fn drop(&mut self) {
        // SAFETY: By the type invariants, `desc` holds the references to put.
        unsafe { fdbox_vfio_put(&mut self.desc) };
    }
}

/// What `prepare` keeps: the description at `ADD`, and the command register as `SEAL` found
/// it before it stopped Bus Master (`None`: not quiesced).
struct Prepared {
    at_add: Described,
    quiesced: Option<u16>,
}

struct VfioHandler;

crate::fdbox_handler_modinfo!(VfioHandler);

#[vtable]
impl Preservable for VfioHandler {
    type State = Prepared;

    const COMPATIBLE: &'static CStr = c"vfio";
    const VERSION: u32 = vfio::PAYLOAD_VERSION;
    const MIN_VERSION: u32 = vfio::MIN_PAYLOAD_VERSION;

    fn can_preserve(file: &File) -> bool {
        // A group fd is claimed so that `prepare` can say why it is refused.
        // SAFETY: `file` is valid.
        let kind = unsafe { fdbox_vfio_kind(file.as_ptr()) };
        matches!(kind, KIND_DEVICE | KIND_GROUP)
    }

    fn prepare(file: &File, deps: &mut Dependencies<'_>) -> Result<Prepared> {
        // SAFETY: `file` is valid.
        if unsafe { fdbox_vfio_kind(file.as_ptr()) } == KIND_GROUP {
            pr_info!(
                "a VFIO group fd can't be carried: box the device's cdev \
                 (/dev/vfio/devices/vfioN) bound to an iommufd instead\n"
            );
            return Err(EOPNOTSUPP);
        }
        let at_add = Described::new(file)?;
        deps.add(at_add.iommufd())?;
        Ok(Prepared {
            at_add,
            quiesced: None,
        })
    }

    fn unprepare(_file: &File, prepared: Prepared) {
        if let Some(saved_cmd) = prepared.quiesced {
            // SAFETY: The PCI device is referenced.
            unsafe { fdbox_vfio_unquiesce(prepared.at_add.desc.pdev, saved_cmd) };
        }
    }

    fn serialize(file: &File, prepared: &mut Prepared, out: &mut Payload<'_>) -> Result<u32> {
        // Version 1 can't name the HWPT nor the id space the restored iommufd must keep.
        if out.max_version() < vfio::PAYLOAD_VERSION {
            pr_info!(
                "a VFIO device fd is written at payload version {} only\n",
                vfio::PAYLOAD_VERSION
            );
            return Err(EOPNOTSUPP);
        }
        // The attachment may have changed since `ADD`; the binding can't.
        let now = Described::new(file)?;
        let iommufd_dep = u32::try_from(out.dep_index(now.iommufd())?).map_err(|_| EINVAL)?;
        let d = &now.desc;
        let device = VfioDevice {
            domain: d.domain,
            bus: d.bus,
            devfn: d.devfn,
            vendor: d.vendor,
            device: d.device,
            iommufd_dep,
            devid: d.devid,
            ioas_id: d.ioas_id,
            hwpt_id: d.hwpt_id,
            hwpt_flags: d.hwpt_flags,
            iommufd_max_id: d.iommufd_max_id,
            identity: Some(PciIdentity {
                subsystem_vendor: d.subsystem_vendor,
                subsystem_device: d.subsystem_device,
                class: d.class,
                serial: d.has_serial.then_some(d.serial),
            }),
        };
        let mut bytes = [0u8; vfio::MAX_ENCODED_LEN];
        let len = vfio::encode(&device, &mut bytes).map_err(|_| EINVAL)?;
        out.write(bytes.get(..len).ok_or(EINVAL)?)?;
        // Last, so that nothing fails after the device stopped.
        let mut saved_cmd = 0;
        // SAFETY: The PCI device is referenced; `saved_cmd` is valid for writes.
        to_result(unsafe { fdbox_vfio_quiesce(prepared.at_add.desc.pdev, &mut saved_cmd) })?;
        prepared.quiesced = Some(saved_cmd);
        Ok(vfio::PAYLOAD_VERSION)
    }

    fn unserialize(_file: &File, prepared: &mut Prepared) {
        if let Some(saved_cmd) = prepared.quiesced.take() {
            // SAFETY: The PCI device is referenced.
            unsafe { fdbox_vfio_unquiesce(prepared.at_add.desc.pdev, saved_cmd) };
        }
    }

    fn restore(version: u32, payload: &[u8], deps: &RestoredDeps<'_>) -> Result<ARef<File>> {
        let device = match version {
            1 => vfio::decode_v1(payload, 0),
            vfio::PAYLOAD_VERSION => vfio::decode(payload, 0),
            _ => return Err(EINVAL),
        }
        .map_err(|_| EINVAL)?;
        let dep = usize::try_from(device.iommufd_dep).map_err(|_| EINVAL)?;
        let iommufd = deps.get(dep).ok_or(EINVAL)?;
        let desc = Desc::from_payload(&device);
        // SAFETY: `desc` is valid for the call; `iommufd` is a restored iommufd the core holds.
        let file = unsafe { fdbox_vfio_open(&desc, iommufd.as_ptr()) };
        let file = kernel::error::from_err_ptr(file)?;
        // SAFETY: `fdbox_vfio_open` returned a new reference; `File` is transparent.
        Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast::<File>())) })
    }
}

#[pin_data]
struct VfioModule {
    #[pin]
    _handler: Registration<VfioHandler>,
}

impl kernel::InPlaceModule for VfioModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _handler <- Registration::<VfioHandler>::register(),
        })
    }
}
