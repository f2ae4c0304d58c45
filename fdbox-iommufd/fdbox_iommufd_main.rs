// SPDX-License-Identifier: GPL-2.0

//! FDBox's iommufd handler: an iommufd context across the kexec, IOAS by IOAS.
//!
//! - `ADD` (`prepare`) freezes the context, so that its IOASes and mappings can't change
//!   until `REMOVE` (iommufd ioctls other than the queries fail with `EBUSY`), and describes
//!   it. Only mappings of files can be carried, because user virtual addresses don't survive
//!   the kexec: a mapping of user memory (`IOMMU_IOAS_MAP`), a dma-buf, or an object that
//!   isn't an IOAS, a device, or a paging HWPT a device is attached to (the device carries
//!   it: automatic, or allocated by userspace without a fault queue) is refused with
//!   `EOPNOTSUPP`.
//!   Each mapped file becomes a dependency, so `SEAL` requires it to be an entry of the box
//!   (a memfd, restored first).
//! - `SEAL` (`serialize`) writes the IOAS IDs and every mapping, its file named by dependency
//!   index (`fdbox_format::iommufd`). Nothing is preserved beyond the payload: the mapped
//!   memory is the memfds'.
//! - After the kexec, `restore` creates a context, the IOASes with their old IDs, and maps
//!   the restored memfds at the same IOVAs, lengths and permissions.
//!
//! Devices are the VFIO handler's: it binds them to the restored context again.

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
    iommufd::{
        self,
        IoasMapping,
        PROT_READ,
        PROT_WRITE, //
    },
    limits::{
        MAX_IOAS,
        MAX_IOAS_MAPPINGS, //
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
    type: IommufdModule,
    name: "fdbox_iommufd",
    authors: ["FDBox developers"],
    description: "FDBox: carry an iommufd context across a kexec",
    license: "GPL",
}

/// `struct fdbox_iommufd_mapping` of `fdbox_iommufd_glue.h`.
#[repr(C)]
struct RawMapping {
    ioas_id: u32,
    prot: u32,
    iova: u64,
    length: u64,
    file: *mut bindings::file,
    start: u64,
}

// The functions of `fdbox_iommufd_glue.h`. `struct file` is only passed by pointer, so the zero-sized
// bindgen members of its fields don't matter.
#[allow(improper_ctypes)]
extern "C" {
    fn fdbox_iommufd_max_mappings() -> u32;
    fn fdbox_iommufd_is(file: *mut bindings::file) -> bool;
    fn fdbox_iommufd_freeze(file: *mut bindings::file) -> c_int;
    fn fdbox_iommufd_thaw(file: *mut bindings::file);
    fn fdbox_iommufd_walk(file: *mut bindings::file, arg: *mut c_void) -> c_int;
    fn fdbox_iommufd_create() -> *mut bindings::file;
    fn fdbox_iommufd_ioas_create(file: *mut bindings::file, ioas_id: u32) -> c_int;
    fn fdbox_iommufd_map(
        file: *mut bindings::file,
        ioas_id: u32,
        iova: u64,
        backing: *mut bindings::file,
        start: u64,
        length: u64,
        prot: u32,
    ) -> c_int;
}

/// A mapping of a frozen context, holding its file.
struct Mapping {
    ioas_id: u32,
    iova: u64,
    length: u64,
    file: ARef<File>,
    start: u64,
    prot: u8,
}

/// A frozen context, as `prepare` described it.
struct Described {
    /// IOAS IDs, ascending (the walk goes in ID order).
    ioas: KVVec<u32>,
    /// Mappings by IOAS, then IOVA; up to [`MAX_IOAS_MAPPINGS`] of them, more than kmalloc
    /// could hold in one piece.
    maps: KVVec<Mapping>,
}

impl Described {
    /// Whether `other` describes the same IOASes and mappings, of the same files.
    fn same_as(&self, other: &Described) -> bool {
        self.ioas.as_slice() == other.ioas.as_slice()
            && self.maps.len() == other.maps.len()
            && self.maps.iter().zip(other.maps.iter()).all(|(a, b)| {
                a.ioas_id == b.ioas_id
                    && a.iova == b.iova
                    && a.length == b.length
                    && a.start == b.start
                    && a.prot == b.prot
                    && core::ptr::eq(a.file.as_ptr(), b.file.as_ptr())
            })
    }
}

/// What the walk found, and why it stopped if it did.
struct Walk {
    described: Described,
    /// The first thing that can't be carried, to be reported once the walk is over.
    refused: Option<Refusal>,
}

/// Something in a context that can't be carried.
enum Refusal {
    /// A mapping of user memory or of a dma-buf.
    NotFile {
        ioas_id: u32,
        iova: u64,
        length: u64,
    },
    /// An object of this `enum iommufd_object_type`.
    Object { id: u32, kind: u32 },
    /// More IOASes or mappings than the payload carries.
    TooMany,
}

/// Recovers the walk from the callbacks' `arg`.
///
/// # Safety
///
/// `arg` must be the `Walk` that `describe` passed to `fdbox_iommufd_walk`, not otherwise
/// borrowed during the callback.
unsafe fn walk_of<'a>(arg: *mut c_void) -> &'a mut Walk {
    // SAFETY: As the function's safety requirements say.
    unsafe { &mut *arg.cast::<Walk>() }
}

/// `fdbox_iommufd_walk`'s callback for an IOAS.
///
/// # Safety
///
/// `arg` as for [`walk_of`].
#[no_mangle]
unsafe extern "C" fn fdbox_iommufd_on_ioas(arg: *mut c_void, ioas_id: u32) -> c_int {
    // SAFETY: The caller passes the walk.
    let walk = unsafe { walk_of(arg) };
    // CAST: Both limits are far below `usize::MAX`.
    if walk.described.ioas.len() >= MAX_IOAS as usize {
        walk.refused = Some(Refusal::TooMany);
        return ENOSPC.to_errno();
    }
    match walk.described.ioas.push(ioas_id, GFP_KERNEL_ACCOUNT) {
        Ok(()) => 0,
        Err(_) => ENOMEM.to_errno(),
    }
}

/// `fdbox_iommufd_walk`'s callback for a mapping.
///
/// # Safety
///
/// `arg` as for [`walk_of`]; `map` valid for the call, its file too if not NULL.
#[no_mangle]
unsafe extern "C" fn fdbox_iommufd_on_mapping(arg: *mut c_void, map: *const RawMapping) -> c_int {
    // SAFETY: The caller passes the walk.
    let walk = unsafe { walk_of(arg) };
    // SAFETY: The caller passes a valid mapping.
    let map = unsafe { &*map };
    if map.file.is_null() {
        walk.refused = Some(Refusal::NotFile {
            ioas_id: map.ioas_id,
            iova: map.iova,
            length: map.length,
        });
        return EOPNOTSUPP.to_errno();
    }
    if walk.described.maps.len() >= max_mappings() {
        walk.refused = Some(Refusal::TooMany);
        return ENOSPC.to_errno();
    }
    // SAFETY: The file is valid for the call, and no `fdget_pos` region is active on it.
    let file: ARef<File> = unsafe { File::from_raw_file(map.file) }.into();
    // The glue checks that `IOMMU_READ` and `IOMMU_WRITE` are the payload's bits.
    let prot = u8::try_from(map.prot & u32::from(PROT_READ | PROT_WRITE)).unwrap_or(0);
    let mapping = Mapping {
        ioas_id: map.ioas_id,
        iova: map.iova,
        length: map.length,
        file,
        start: map.start,
        prot,
    };
    match walk.described.maps.push(mapping, GFP_KERNEL_ACCOUNT) {
        Ok(()) => 0,
        Err(_) => ENOMEM.to_errno(),
    }
}

/// The most mappings a boxed iommufd may have: the format's, or the `max_mappings` parameter
/// if lower.
fn max_mappings() -> usize {
    // SAFETY: No requirements.
    let param = unsafe { fdbox_iommufd_max_mappings() };
    // CAST: Both are far below `usize::MAX`.
    param.min(MAX_IOAS_MAPPINGS) as usize
}

/// `fdbox_iommufd_walk`'s callback for an object that isn't an IOAS or a device's.
///
/// # Safety
///
/// `arg` as for [`walk_of`].
#[no_mangle]
unsafe extern "C" fn fdbox_iommufd_on_other(arg: *mut c_void, id: u32, kind: u32) -> c_int {
    // SAFETY: The caller passes the walk.
    let walk = unsafe { walk_of(arg) };
    walk.refused = Some(Refusal::Object { id, kind });
    EOPNOTSUPP.to_errno()
}

/// Describes a frozen context.
fn describe(file: &File) -> Result<Described> {
    let mut walk = Walk {
        described: Described {
            ioas: KVVec::new(),
            maps: KVVec::new(),
        },
        refused: None,
    };
    // SAFETY: `file` is a frozen iommufd; `walk` outlives the call and is only reached through
    // `arg` during it.
    let ret = unsafe { fdbox_iommufd_walk(file.as_ptr(), (&raw mut walk).cast()) };
    match walk.refused {
        Some(Refusal::NotFile {
            ioas_id,
            iova,
            length,
        }) => pr_info!(
            "IOAS {ioas_id} maps IOVA {iova:#x}+{length:#x} from user memory or a dma-buf; \
             only mappings of memfds (IOMMU_IOAS_MAP_FILE) can be carried\n"
        ),
        Some(Refusal::Object { id, kind }) => pr_info!(
            "object {id} (iommufd object type {kind}) can't be carried: only IOASes, \
             devices, and paging HWPTs without a fault queue that a device is attached to, \
             can\n"
        ),
        Some(Refusal::TooMany) => pr_info!(
            "an iommufd with more than {MAX_IOAS} IOASes or {} mappings can't be carried\n",
            max_mappings()
        ),
        None => {}
    }
    to_result(ret)?;
    Ok(walk.described)
}

struct IommufdHandler;

crate::fdbox_handler_modinfo!(IommufdHandler);

#[vtable]
impl Preservable for IommufdHandler {
    type State = Described;

    const COMPATIBLE: &'static CStr = c"iommufd";
    const VERSION: u32 = iommufd::PAYLOAD_VERSION;
    const MIN_VERSION: u32 = iommufd::PAYLOAD_VERSION;

    fn can_preserve(file: &File) -> bool {
        // SAFETY: `file` is valid.
        unsafe { fdbox_iommufd_is(file.as_ptr()) }
    }

    fn prepare(file: &File, deps: &mut Dependencies<'_>) -> Result<Described> {
        // SAFETY: `file` is an iommufd.
        to_result(unsafe { fdbox_iommufd_freeze(file.as_ptr()) }).inspect_err(|_| {
            pr_info!("the iommufd is already preserved\n");
        })?;
        let described = describe(file).and_then(|described| {
            // Each file once, though it may back many mappings. The core takes at most
            // `MAX_DEPS` dependencies, so `added` stays short.
            let mut added: KVec<*mut bindings::file> = KVec::new();
            for map in described.maps.iter() {
                let f = map.file.as_ptr();
                if !added.contains(&f) {
                    deps.add(&map.file)?;
                    added.push(f, GFP_KERNEL)?;
                }
            }
            Ok(described)
        });
        if described.is_err() {
            // SAFETY: Frozen above.
            unsafe { fdbox_iommufd_thaw(file.as_ptr()) };
        }
        described
    }

    fn unprepare(file: &File, described: Described) {
        drop(described);
        // SAFETY: `prepare` froze it.
        unsafe { fdbox_iommufd_thaw(file.as_ptr()) };
    }

    fn serialize(file: &File, described: &mut Described, out: &mut Payload<'_>) -> Result<u32> {
        // Nothing changes a frozen context's IOASes or mappings; one that raced the freeze from
        // outside its ioctls (a group's compat IOAS) is found here, before anything is written.
        // Devices' attachments are the VFIO handler's to record, at its own `SEAL`.
        if !describe(file)?.same_as(described) {
            pr_info!("the iommufd changed while it was frozen: remove it and add it again\n");
            return Err(EBUSY);
        }
        let mut maps = KVVec::with_capacity(described.maps.len(), GFP_KERNEL)?;
        for m in described.maps.iter() {
            let dep = u32::try_from(out.dep_index(&m.file)?).map_err(|_| EINVAL)?;
            maps.push(
                IoasMapping {
                    ioas_id: m.ioas_id,
                    iova: m.iova,
                    length: m.length,
                    dep,
                    start: m.start,
                    prot: m.prot,
                },
                GFP_KERNEL,
            )?;
        }
        let len = iommufd::encoded_len(&described.ioas, &maps).map_err(|_| EINVAL)?;
        let mut bytes = KVVec::from_elem(0u8, len, GFP_KERNEL)?;
        let written = iommufd::encode(&described.ioas, &maps, &mut bytes).map_err(|_| EINVAL)?;
        out.write(bytes.get(..written).ok_or(EINVAL)?)?;
        Ok(iommufd::PAYLOAD_VERSION)
    }

    fn restore(version: u32, payload: &[u8], deps: &RestoredDeps<'_>) -> Result<ARef<File>> {
        if version != iommufd::PAYLOAD_VERSION {
            return Err(EINVAL);
        }
        let view = iommufd::decode(payload, 0).map_err(|_| EINVAL)?;
        if let Some(max) = view.max_dep() {
            if usize::try_from(max).map_err(|_| EINVAL)? >= deps.len() {
                return Err(EINVAL);
            }
        }
        // SAFETY: No precondition.
        let file = kernel::error::from_err_ptr(unsafe { fdbox_iommufd_create() })?;
        // SAFETY: `fdbox_iommufd_create` returned a new reference; `File` is transparent.
        // Dropping it on error releases the context and all it holds.
        let file: ARef<File> =
            unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast::<File>())) };
        let f = file.as_ptr();
        for id in view.ioas_ids() {
            // SAFETY: `f` is the new iommufd.
            to_result(unsafe { fdbox_iommufd_ioas_create(f, id) })
                .inspect_err(|e| pr_info!("can't create IOAS {id}: {e:?}\n"))?;
        }
        for m in view.maps() {
            let dep = usize::try_from(m.dep).map_err(|_| EINVAL)?;
            let backing = deps.get(dep).ok_or(EINVAL)?;
            // SAFETY: `f` is the new iommufd, `backing` a restored file the core holds; the
            // mapping takes its own reference.
            to_result(unsafe {
                fdbox_iommufd_map(
                    f,
                    m.ioas_id,
                    m.iova,
                    backing.as_ptr(),
                    m.start,
                    m.length,
                    u32::from(m.prot),
                )
            })
            .inspect_err(|e| {
                pr_info!(
                    "can't map IOVA {:#x}+{:#x} in IOAS {}: {e:?}\n",
                    m.iova,
                    m.length,
                    m.ioas_id
                )
            })?;
        }
        Ok(file)
    }
}

#[pin_data]
struct IommufdModule {
    #[pin]
    _handler: Registration<IommufdHandler>,
}

impl kernel::InPlaceModule for IommufdModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _handler <- Registration::<IommufdHandler>::register(),
        })
    }
}
