// SPDX-License-Identifier: GPL-2.0

//! Kexec HandOver: the calls FDBox makes, and the blob it registers.
//!
//! `kexec_handover.h` is not part of the kernel's Rust bindings, so the exported functions are
//! declared here, with the static inlines wrapped in `fdbox_core_c.c`.

use kernel::{
    error::to_result,
    ffi::{
        c_char,
        c_int,
        c_void, //
    },
    prelude::*, //
};

extern "C" {
    fn kho_is_enabled() -> bool;
    fn is_kho_boot() -> bool;
    fn kho_alloc_preserve(size: usize) -> *mut c_void;
    fn kho_unpreserve_free(mem: *mut c_void);
    fn kho_restore_free(mem: *mut c_void);
    fn kho_preserved_order(phys: u64) -> c_int;
    fn kho_add_subtree(name: *const c_char, blob: *mut c_void, size: usize) -> c_int;
    fn kho_remove_subtree(blob: *mut c_void);
    fn kho_retrieve_subtree(name: *const c_char, phys: *mut u64, size: *mut usize) -> c_int;
    fn fdbox_phys_to_virt(phys: u64) -> *mut c_void;
    fn fdbox_virt_to_phys(virt: *mut c_void) -> u64;
}

/// The KHO subtree FDBox hands its blob over in.
pub(crate) const SUBTREE: &CStr = c"fdbox";

/// Memory preserved with KHO, filled by the caller, not yet registered.
///
/// # Invariants
///
/// `mem` came from `kho_alloc_preserve(len)` and is owned by this value.
pub(crate) struct Preserved {
    mem: *mut u8,
    len: usize,
}

// SAFETY: The memory is plain kernel memory owned by this value.
unsafe impl Send for Preserved {}

impl Preserved {
    /// Allocates `len` zeroed bytes (at least one) preserved across the kexec; `EOPNOTSUPP`
    /// when KHO is off (`kho=on` missing from the command line).
    pub(crate) fn new(len: usize) -> Result<Self> {
        // SAFETY: No requirements.
        if !unsafe { kho_is_enabled() } {
            pr_warn!("KHO is off (boot with kho=on): nothing can be handed over\n");
            return Err(EOPNOTSUPP);
        }
        // SAFETY: Any size may be asked for; failure is an `ERR_PTR` or NULL.
        let mem = unsafe { kho_alloc_preserve(len.max(1)) };
        let mem = kernel::error::from_err_ptr(mem)?;
        if mem.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: `mem` came from `kho_alloc_preserve(len)`.
        Ok(Self {
            mem: mem.cast(),
            len,
        })
    }

    /// The memory.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: By the type invariants, `mem` is valid for `len` bytes and owned by `self`.
        unsafe { core::slice::from_raw_parts_mut(self.mem, self.len) }
    }

    /// The memory, read-only.
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: By the type invariants, `mem` is valid for `len` bytes and owned by `self`.
        unsafe { core::slice::from_raw_parts(self.mem, self.len) }
    }

    /// The physical address of the first byte, as the next kernel finds it.
    pub(crate) fn phys(&self) -> u64 {
        // SAFETY: `mem` is in the direct map (a folio's address).
        unsafe { fdbox_virt_to_phys(self.mem.cast()) }
    }

    /// The length asked for.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Registers the memory as the subtree `name`, for the next kernel.
    pub(crate) fn register(self, name: &'static CStr) -> Result<Subtree> {
        // SAFETY: `mem` is valid for `len` bytes, and `name` is a static NUL-terminated string.
        let ret = unsafe { kho_add_subtree(name.as_char_ptr(), self.mem.cast(), self.len) };
        to_result(ret)?;
        // INVARIANT: Registered just above; ownership moves to the subtree.
        let subtree = Subtree {
            mem: self.mem,
            len: self.len,
        };
        core::mem::forget(self);
        Ok(subtree)
    }
}

impl Drop for Preserved {
    fn drop(&mut self) {
        // SAFETY: By the type invariants, `mem` came from `kho_alloc_preserve`.
        unsafe { kho_unpreserve_free(self.mem.cast()) };
    }
}

/// Preserved memory registered as a KHO subtree; unregistered and freed on drop.
///
/// # Invariants
///
/// `mem` came from `kho_alloc_preserve` and is registered with `kho_add_subtree`.
pub(crate) struct Subtree {
    mem: *mut u8,
    len: usize,
}

// SAFETY: The memory is plain kernel memory owned by this value.
unsafe impl Send for Subtree {}

impl Subtree {
    /// The registered bytes, to change in place: the next kernel reads what they hold at the
    /// kexec.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: By the type invariants, `mem` is valid for `len` bytes and owned by `self`.
        unsafe { core::slice::from_raw_parts_mut(self.mem, self.len) }
    }
}

impl Drop for Subtree {
    fn drop(&mut self) {
        // SAFETY: By the type invariants, `mem` is registered and came from
        // `kho_alloc_preserve`.
        unsafe { kho_remove_subtree(self.mem.cast()) };
        // SAFETY: As above; it is no longer registered.
        unsafe { kho_unpreserve_free(self.mem.cast()) };
    }
}

/// What the previous kernel handed over under `name`.
pub(crate) enum Retrieved {
    /// Not a KHO boot, or no such subtree.
    Nothing,
    /// The subtree's bytes, copied; the preserved memory is freed.
    Blob(KVVec<u8>),
    /// The subtree is larger than `max` bytes; its memory is freed.
    TooLarge(usize),
    /// The subtree claims `size` bytes, but KHO preserved only `preserved` bytes there (0:
    /// nothing). Nothing is read, and nothing freed but the block KHO did preserve.
    NotPreserved {
        /// The size the subtree claims.
        size: usize,
        /// The size of the block KHO preserved at its address.
        preserved: usize,
    },
}

/// Copies out the incoming subtree `name` and frees its preserved memory.
///
/// Must be called at most once per boot: the memory is freed.
pub(crate) fn retrieve(name: &CStr, max: usize) -> Result<Retrieved> {
    // SAFETY: No requirements.
    if !unsafe { is_kho_boot() } {
        return Ok(Retrieved::Nothing);
    }
    let mut phys: u64 = 0;
    let mut size: usize = 0;
    // SAFETY: `name` is NUL-terminated; `phys` and `size` are valid for writes.
    let ret = unsafe { kho_retrieve_subtree(name.as_char_ptr(), &mut phys, &mut size) };
    if ret == ENOENT.to_errno() {
        return Ok(Retrieved::Nothing);
    }
    to_result(ret)?;
    claim(phys, size, max)
}

/// The size of the block KHO preserved at `phys`, if one starts there and was not claimed yet.
pub(crate) fn preserved_size(phys: u64) -> Option<usize> {
    // SAFETY: No requirements; any address may be asked about.
    let order = u32::try_from(unsafe { kho_preserved_order(phys) }).ok()?;
    // A block larger than the address space can't be: only a corrupt record claims one.
    // CAST: Both are below 64.
    Some(
        if (order as usize) < usize::BITS as usize - kernel::page::PAGE_SHIFT {
            kernel::page::PAGE_SIZE << order
        } else {
            usize::MAX
        },
    )
}

/// The `len` bytes at `phys`, which [`preserved_size`] said a preserved block of at least
/// `len` bytes holds.
///
/// # Safety
///
/// The block must not be claimed or freed while the slice lives.
pub(crate) unsafe fn preserved_bytes<'a>(phys: u64, len: usize) -> &'a [u8] {
    // SAFETY: By the safety requirements, a preserved block in the direct map holds `len`
    // bytes at `phys`, and stays.
    unsafe { core::slice::from_raw_parts(fdbox_phys_to_virt(phys).cast::<u8>(), len) }
}

/// Frees the preserved block at `phys`, which was allocated with `kho_alloc_preserve`.
///
/// # Safety
///
/// [`preserved_size`] must have found the block, nothing may refer to it, and it must be freed
/// only once.
pub(crate) unsafe fn free_preserved(phys: u64) {
    // SAFETY: By the safety requirements.
    unsafe { kho_restore_free(fdbox_phys_to_virt(phys)) };
}

/// Copies out the `size` bytes of the preserved block at `phys` and frees the block: what a
/// subtree or a slot of the root names. The block is checked against KHO before a byte of it
/// is read.
pub(crate) fn claim(phys: u64, size: usize, max: usize) -> Result<Retrieved> {
    let Some(preserved) = preserved_size(phys) else {
        return Ok(Retrieved::NotPreserved { size, preserved: 0 });
    };
    // SAFETY: KHO preserved a block at this physical address; it is in the direct map.
    let mem = unsafe { fdbox_phys_to_virt(phys) };
    if size > preserved {
        // SAFETY: A block KHO preserved, which nothing else refers to.
        unsafe { kho_restore_free(mem) };
        return Ok(Retrieved::NotPreserved { size, preserved });
    }
    if size > max {
        // SAFETY: The previous kernel allocated it with `kho_alloc_preserve`.
        unsafe { kho_restore_free(mem) };
        return Ok(Retrieved::TooLarge(size));
    }
    // Allocated before anything is freed: on failure the hand-over stays intact.
    let mut copy = KVVec::with_capacity(size, GFP_KERNEL)?;
    // SAFETY: The preserved block holds `size` bytes, checked above, and nothing else uses it.
    let blob = unsafe { core::slice::from_raw_parts(mem.cast::<u8>(), size) };
    copy.extend_from_slice(blob, GFP_KERNEL)?;
    // SAFETY: The previous kernel allocated it with `kho_alloc_preserve`; nothing refers to it
    // any more.
    unsafe { kho_restore_free(mem) };
    Ok(Retrieved::Blob(copy))
}
