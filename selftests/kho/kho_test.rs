// SPDX-License-Identifier: GPL-2.0

//! Harness self-check: carries folios of known content across a KHO kexec.
//!
//! `mode=1` (before the kexec) allocates folios of several orders, fills them with a pattern,
//! preserves them with KHO and registers a small blob describing them under the KHO subtree
//! `fdbox-kho-test`. `mode=2` (after the kexec) finds that blob, restores every folio at its old
//! physical address and order, and verifies every byte. `mode=3` runs the restore path against a
//! subtree that was never preserved and must fail. Loading fails with an errno whenever a check
//! fails, so the test programs see the result in `insmod`'s exit status.

use kernel::{
    bindings,
    error::{
        from_err_ptr,
        to_result, //
    },
    ffi::{
        c_char,
        c_int,
        c_void, //
    },
    page::PAGE_SIZE,
    prelude::*, //
};

module! {
    type: KhoTest,
    name: "fdbox_kho_test",
    authors: ["FDBox developers"],
    description: "FDBox harness self-check: KHO folio round trip",
    license: "GPL",
    params: {
        mode: i32 {
            default: 0,
            description: "1: preserve, 2: restore and verify, 3: restore a missing blob",
        },
    },
}

/// The KHO subtree this test registers.
const SUBTREE: &CStr = c"fdbox-kho-test";
/// A subtree nobody registers, for the negative test.
const MISSING_SUBTREE: &CStr = c"fdbox-kho-test-missing";
/// Identifies a blob written by this module.
const MAGIC: u64 = 0x6664_626f_786b_686f;
/// Folio orders carried across: a single page up to a PMD-sized folio.
const ORDERS: [u32; REGIONS] = [0, 2, 4, 9];
const REGIONS: usize = 4;

/// One preserved folio.
#[repr(C)]
#[derive(Clone, Copy)]
struct Region {
    /// Physical address of the folio.
    phys: u64,
    /// Order of the folio.
    order: u64,
    /// Seed of the byte pattern it holds.
    seed: u64,
}

/// The blob handed to the next kernel.
#[repr(C)]
#[derive(Clone, Copy)]
struct Blob {
    magic: u64,
    regions: [Region; REGIONS],
}

// Hand-written: `kexec_handover.h` is not part of the kernel's Rust bindings. `folio` is only
// passed by pointer, so its zero-sized bindgen members do not matter.
#[allow(improper_ctypes)]
extern "C" {
    fn kho_is_enabled() -> bool;
    fn is_kho_boot() -> bool;
    fn kho_alloc_preserve(size: usize) -> *mut c_void;
    fn kho_unpreserve_free(mem: *mut c_void);
    fn kho_restore_folio(phys: u64) -> *mut bindings::folio;
    fn kho_add_subtree(name: *const c_char, blob: *mut c_void, size: usize) -> c_int;
    fn kho_retrieve_subtree(name: *const c_char, phys: *mut u64, size: *mut usize) -> c_int;
    fn fdbox_kho_test_folio_address(folio: *mut bindings::folio) -> *mut c_void;
    fn fdbox_kho_test_folio_order(folio: *mut bindings::folio) -> u32;
    fn fdbox_kho_test_folio_put(folio: *mut bindings::folio);
    fn fdbox_kho_test_virt_to_phys(addr: *mut c_void) -> u64;
}

/// The byte at `offset` of a region filled with `seed`.
fn pattern(seed: u64, offset: usize) -> u8 {
    // CAST: the offset is below 2 MiB, so it fits in a u64.
    let x = (offset as u64 ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // CAST: keeping only the top byte is the point.
    (x >> 56) as u8
}

fn region_size(order: u32) -> usize {
    PAGE_SIZE << order
}

/// A KHO-preserved allocation, unpreserved and freed on drop unless handed over.
struct Preserved {
    ptr: *mut c_void,
    size: usize,
}

impl Preserved {
    fn alloc(size: usize) -> Result<Self> {
        // SAFETY: `kho_alloc_preserve` may be called with any size; it returns an error pointer
        // on failure.
        let ptr = from_err_ptr(unsafe { kho_alloc_preserve(size) })?;
        Ok(Self { ptr, size })
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` points to `size` bytes of memory owned by `self`.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.cast(), self.size) }
    }

    fn phys(&self) -> u64 {
        // SAFETY: `ptr` is a direct-map address returned by `kho_alloc_preserve`.
        unsafe { fdbox_kho_test_virt_to_phys(self.ptr) }
    }

    /// Leaves the memory to the next kernel.
    fn hand_over(self) {
        core::mem::forget(self);
    }
}

impl Drop for Preserved {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `kho_alloc_preserve` and has not been freed.
        unsafe { kho_unpreserve_free(self.ptr) };
    }
}

fn preserve() -> Result {
    let blob_mem = Preserved::alloc(PAGE_SIZE)?;
    let mut blob = Blob {
        magic: MAGIC,
        regions: [Region {
            phys: 0,
            order: 0,
            seed: 0,
        }; REGIONS],
    };
    let mut regions = KVec::with_capacity(REGIONS, GFP_KERNEL)?;
    for (index, (region, &order)) in blob.regions.iter_mut().zip(ORDERS.iter()).enumerate() {
        let mut mem = Preserved::alloc(region_size(order))?;
        // CAST: the index is below `REGIONS`.
        let seed = 0x5eed_0000 + index as u64;
        for (offset, byte) in mem.bytes_mut().iter_mut().enumerate() {
            *byte = pattern(seed, offset);
        }
        *region = Region {
            phys: mem.phys(),
            order: order.into(),
            seed,
        };
        regions.push(mem, GFP_KERNEL)?;
    }

    // SAFETY: `blob_mem` holds a page, and `Blob` is smaller than a page and has no alignment
    // above the page's.
    unsafe { blob_mem.ptr.cast::<Blob>().write(blob) };
    // SAFETY: the name is a static NUL-terminated string, and the blob stays allocated and
    // preserved for the next kernel.
    to_result(unsafe {
        kho_add_subtree(
            SUBTREE.as_char_ptr(),
            blob_mem.ptr,
            core::mem::size_of::<Blob>(),
        )
    })?;

    // Nothing can fail after this point: the folios now belong to the next kernel.
    for mem in regions {
        mem.hand_over();
    }
    blob_mem.hand_over();
    pr_info!("preserved {} folios for the next kernel\n", REGIONS);
    Ok(())
}

/// A folio restored from KHO, released on drop.
struct RestoredFolio(*mut bindings::folio);

impl RestoredFolio {
    fn restore(phys: u64) -> Result<Self> {
        // `kho_restore_folio` accepts any address inside a preserved page.
        // CAST: PAGE_SIZE fits in u64.
        if phys % PAGE_SIZE as u64 != 0 {
            pr_err!("folio address {:#x} is not page-aligned\n", phys);
            return Err(EINVAL);
        }
        // SAFETY: `kho_restore_folio` checks that `phys` was preserved and returns NULL if not.
        let folio = unsafe { kho_restore_folio(phys) };
        if folio.is_null() {
            pr_err!("no preserved folio at {:#x}\n", phys);
            return Err(ENOENT);
        }
        Ok(Self(folio))
    }

    fn order(&self) -> u32 {
        // SAFETY: `self.0` is a valid folio that we hold a reference to.
        unsafe { fdbox_kho_test_folio_order(self.0) }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `self.0` is a valid, direct-mapped folio; its size follows from its order.
        unsafe {
            core::slice::from_raw_parts(
                fdbox_kho_test_folio_address(self.0).cast(),
                region_size(self.order()),
            )
        }
    }
}

impl Drop for RestoredFolio {
    fn drop(&mut self) {
        // SAFETY: `self.0` holds the reference `kho_restore_folio` gave us.
        unsafe { fdbox_kho_test_folio_put(self.0) };
    }
}

fn restore(name: &CStr) -> Result {
    // SAFETY: no preconditions.
    if !unsafe { is_kho_boot() } {
        pr_err!("this kernel was not started by a KHO kexec\n");
        return Err(ENOENT);
    }
    let mut phys = 0u64;
    let mut size = 0usize;
    // SAFETY: `name` is NUL-terminated and the out-pointers are valid for writes.
    let ret = unsafe { kho_retrieve_subtree(name.as_char_ptr(), &mut phys, &mut size) };
    if ret != 0 {
        pr_err!("no blob named {:?} in the KHO hand-over: {}\n", name, ret);
        return to_result(ret);
    }
    if size != core::mem::size_of::<Blob>() {
        pr_err!(
            "blob {:?} has {} bytes, expected {}\n",
            name,
            size,
            core::mem::size_of::<Blob>()
        );
        return Err(EINVAL);
    }
    let blob_folio = RestoredFolio::restore(phys)?;
    // SAFETY: the folio holds at least a page, `Blob` fits in it and is plain data.
    let blob = unsafe { blob_folio.bytes().as_ptr().cast::<Blob>().read_unaligned() };
    if blob.magic != MAGIC {
        pr_err!("blob magic {:#x}, expected {:#x}\n", blob.magic, MAGIC);
        return Err(EINVAL);
    }

    // Restore every folio before judging any, so none is left behind.
    let mut folios = KVec::with_capacity(REGIONS, GFP_KERNEL)?;
    for region in &blob.regions {
        folios.push(RestoredFolio::restore(region.phys)?, GFP_KERNEL)?;
    }
    let mut bad = 0;
    for ((region, folio), &order) in blob.regions.iter().zip(folios.iter()).zip(ORDERS.iter()) {
        if folio.order() != order || region.order != u64::from(order) {
            pr_err!(
                "folio at {:#x}: order {} (blob says {}), expected {}\n",
                region.phys,
                folio.order(),
                region.order,
                order
            );
            bad += 1;
            continue;
        }
        let mismatch = folio
            .bytes()
            .iter()
            .enumerate()
            .find(|&(offset, &byte)| byte != pattern(region.seed, offset));
        if let Some((offset, &byte)) = mismatch {
            pr_err!(
                "folio at {:#x}: byte {:#x} is {:#x}, expected {:#x}\n",
                region.phys,
                offset,
                byte,
                pattern(region.seed, offset)
            );
            bad += 1;
        }
    }
    if bad != 0 {
        return Err(EIO);
    }
    pr_info!("restored {} folios, every byte verified\n", REGIONS);
    Ok(())
}

struct KhoTest;

impl kernel::Module for KhoTest {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: no preconditions.
        if !unsafe { kho_is_enabled() } {
            pr_err!("KHO is disabled in this kernel\n");
            return Err(ENODEV);
        }
        match module_parameters::mode.value() {
            1 => preserve()?,
            2 => restore(SUBTREE)?,
            3 => restore(MISSING_SUBTREE)?,
            other => {
                pr_err!("mode={} is not 1, 2 or 3\n", other);
                return Err(EINVAL);
            }
        }
        Ok(KhoTest)
    }
}
