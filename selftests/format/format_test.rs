// SPDX-License-Identifier: GPL-2.0

//! fdbox-format compiled into a module: a blob encoded by one kernel is decoded by the next.
//!
//! `mode=1` (before the kexec) encodes a sample manifest with the same codec the userspace tools
//! use, decodes and validates it, and hands it to the next kernel as the KHO subtree
//! `fdbox-format-test`, where `fdbox inspect` can read it from debugfs too. `mode=2` (after the
//! kexec) restores that blob and checks every field of it. `mode=3` hands the same blob, with one
//! bit flipped, to the next kernel as the subtree `fdbox`, where `fdbox_core` must report it
//! unusable. `mode=4` hands over as `fdbox` a blob whose checksum is right but whose entries are
//! forged: they name memory that KHO did not preserve, or not as they say, or that another entry
//! names too, beside clean entries that must still restore (see `forged`). `mode=5` hands over
//! as `fdbox` a sound blob whose recorded size reaches past the memory KHO preserved for it.
//! Loading fails with an errno whenever a check fails.

#[path = "../../fdbox-format/src/kernel.rs"]
pub mod fdbox_format;

use fdbox_format::{
    handlers::{
        decode_payload,
        Decoded,
        Unavailable, //
    },
    manifest::{
        decode,
        BoxHead,
        BoxState,
        Encoder,
        EntryRecord,
        ManifestView,
        Payload, //
    },
    memfd::{
        self,
        FolioRun,
        MemfdHead, //
    },
    validate::{
        scratch_len,
        validate, //
    },
    wire::Writer,
};
use kernel::{
    bindings,
    error::{
        from_err_ptr,
        to_result, //
    },
    ffi::{
        c_char,
        c_int,
        c_uint,
        c_ulong,
        c_void, //
    },
    page::PAGE_SIZE,
    prelude::*, //
};

module! {
    type: FormatTest,
    name: "fdbox_format_test",
    authors: ["FDBox developers"],
    description: "FDBox test: fdbox-format across a KHO kexec",
    license: "GPL",
    params: {
        mode: i32 {
            default: 0,
            description: "1: encode and preserve, 2: restore and decode, \
                3: hand a corrupt blob over as fdbox_core's, \
                4: hand a blob of forged entries over as fdbox_core's, \
                5: hand a blob over as fdbox_core's with a size past its memory",
        },
    },
}

/// The KHO subtree holding the sample blob.
const SUBTREE: &CStr = c"fdbox-format-test";
const RELEASE: &str = "fdbox-format-test";
const VERSION: &str = "0.1.0";

const MEMFD_HEAD: MemfdHead<'static> = MemfdHead {
    size: 64 << 20,
    pos: 4096,
    seals: 0x1f,
    page_shift: 12,
    huge_shift: 0,
    name: "guest-ram",
};

/// A PMD-sized THP run, a lone page after a hole, and three contiguous pages.
const MEMFD_RUNS: [FolioRun; 3] = [
    FolioRun {
        index: 0,
        pfn: 0x10000,
        order: 9,
        count: 4,
    },
    FolioRun {
        index: 4096,
        pfn: 0x23456,
        order: 0,
        count: 1,
    },
    FolioRun {
        index: 4097,
        pfn: 0x30000,
        order: 0,
        count: 3,
    },
];

const STATE: &[u8] = b"vcpu registers";

// Hand-written: `kexec_handover.h` is not part of the kernel's Rust bindings. `folio` is only
// passed by pointer, so its zero-sized bindgen members do not matter.
#[allow(improper_ctypes)]
extern "C" {
    fn kho_alloc_preserve(size: usize) -> *mut c_void;
    fn kho_unpreserve_free(mem: *mut c_void);
    fn kho_restore_folio(phys: u64) -> *mut bindings::folio;
    fn kho_add_subtree(name: *const c_char, blob: *mut c_void, size: usize) -> c_int;
    fn kho_retrieve_subtree(name: *const c_char, phys: *mut u64, size: *mut usize) -> c_int;
    fn fdbox_format_test_folio_address(folio: *mut bindings::folio) -> *mut c_void;
    fn fdbox_format_test_folio_size(folio: *mut bindings::folio) -> usize;
    fn fdbox_format_test_folio_put(folio: *mut bindings::folio);
    fn kho_preserve_pages(page: *mut bindings::page, nr_pages: c_ulong) -> c_int;
    fn kho_unpreserve_pages(page: *mut bindings::page, nr_pages: c_ulong);
    fn fdbox_format_test_alloc_pages(order: c_uint) -> *mut bindings::page;
    fn fdbox_format_test_free_pages(page: *mut bindings::page, order: c_uint);
    fn fdbox_format_test_page_pfn(page: *mut bindings::page) -> u64;
    fn fdbox_format_test_virt_to_phys(virt: *mut c_void) -> u64;
    fn fdbox_format_test_fill(page: *mut bindings::page, nr_pages: c_ulong, seed: u8);
}

/// Reports a codec error and turns it into an errno.
fn codec(what: &str, err: fdbox_format::Error) -> Error {
    pr_err!("{}: {}\n", what, format_args!("{err}"));
    EINVAL
}

fn check(ok: bool, what: &str) -> Result {
    if ok {
        Ok(())
    } else {
        pr_err!("mismatch: {}\n", what);
        Err(EINVAL)
    }
}

fn memfd_payload() -> Result<KVec<u8>> {
    let len = memfd::encoded_len(&MEMFD_HEAD, MEMFD_RUNS.iter().copied())
        .map_err(|e| codec("memfd size", e))?;
    let mut buf = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    let mut w = Writer::new(&mut buf);
    memfd::encode(&mut w, &MEMFD_HEAD, MEMFD_RUNS.iter().copied())
        .map_err(|e| codec("memfd encode", e))?;
    check(w.position() == len, "memfd payload length")?;
    Ok(buf)
}

/// The sample: two boxes, a dependency, a memfd payload and an entry of a handler no reader
/// knows.
fn encode_sample(enc: &mut Encoder<'_>, memfd: &[u8]) -> fdbox_format::Result<()> {
    enc.manifest(RELEASE, VERSION, 2)?;
    enc.begin_box(
        &BoxHead {
            name: "vm0",
            owner_uid: 1000,
            owner_gid: 1000,
            state: BoxState::Sealed,
        },
        2,
    )?;
    enc.entry(&EntryRecord {
        name: "guest-ram",
        handler: memfd::HANDLER,
        payload_version: memfd::SHMEM_VERSION,
        flags: 0,
        deps: &[],
        payload: Payload::Inline(memfd),
    })?;
    enc.entry(&EntryRecord {
        name: "vmm-state",
        handler: memfd::HANDLER,
        payload_version: 99,
        flags: 0,
        deps: &[0],
        payload: Payload::Inline(STATE),
    })?;
    enc.begin_box(
        &BoxHead {
            name: "vm1",
            owner_uid: 0,
            owner_gid: 0,
            state: BoxState::Sealed,
        },
        1,
    )?;
    enc.entry(&EntryRecord {
        name: "iommu",
        handler: "iommufd-from-the-future",
        payload_version: 1,
        flags: 0,
        deps: &[],
        payload: Payload::Inline(&[1, 2, 3]),
    })?;
    Ok(())
}

fn encode_blob() -> Result<KVec<u8>> {
    let memfd = memfd_payload()?;
    let mut counting = Encoder::counting();
    encode_sample(&mut counting, &memfd).map_err(|e| codec("size", e))?;
    let len = counting.finish().map_err(|e| codec("size", e))?;
    let mut blob = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    let mut enc = Encoder::new(&mut blob).map_err(|e| codec("encode", e))?;
    encode_sample(&mut enc, &memfd).map_err(|e| codec("encode", e))?;
    let written = enc.finish().map_err(|e| codec("encode", e))?;
    check(written == len, "blob length")?;
    Ok(blob)
}

/// Decodes and validates `blob` and checks that it holds exactly the sample.
fn verify(blob: &[u8]) -> Result {
    let view = decode(blob).map_err(|e| codec("decode", e))?;
    let mut scratch = KVec::from_elem(0u64, scratch_len(&view), GFP_KERNEL)?;
    validate(&view, &mut scratch).map_err(|e| codec("validate", e))?;
    check_sample(&view)
}

fn check_sample(view: &ManifestView<'_>) -> Result {
    check(view.kernel_release == RELEASE, "kernel release")?;
    check(view.fdbox_version == VERSION, "fdbox version")?;
    check(view.box_count() == 2 && view.entry_count() == 3, "counts")?;
    let mut boxes = view.boxes();
    let vm0 = boxes.next().ok_or(EINVAL)?;
    let vm1 = boxes.next().ok_or(EINVAL)?;
    check(
        vm0.head.name == "vm0" && vm0.head.owner_uid == 1000,
        "box vm0",
    )?;
    check(vm1.head.name == "vm1" && vm1.head.owner_uid == 0, "box vm1")?;

    let mut entries = vm0.entries();
    let ram = entries.next().ok_or(EINVAL)?;
    let state = entries.next().ok_or(EINVAL)?;
    check(
        ram.name == "guest-ram" && ram.dep_count() == 0,
        "entry guest-ram",
    )?;
    let Ok(Decoded::Memfd(memfd)) = decode_payload(&ram) else {
        return check(false, "guest-ram payload does not decode");
    };
    check(memfd.head == MEMFD_HEAD, "memfd head")?;
    check(
        memfd.run_count == 3 && memfd.folios == 8,
        "memfd run and folio counts",
    )?;
    check(memfd.runs().eq(MEMFD_RUNS.iter().copied()), "memfd runs")?;

    // A payload version this reader doesn't know is unavailable, not an error.
    check(
        state.name == "vmm-state" && state.deps().eq([0]),
        "entry vmm-state",
    )?;
    check(state.payload == Payload::Inline(STATE), "vmm-state payload")?;
    check(
        matches!(
            decode_payload(&state),
            Err(Unavailable::UnsupportedVersion { found: 99, .. })
        ),
        "vmm-state is unavailable",
    )?;
    let iommu = vm1.entries().next().ok_or(EINVAL)?;
    check(
        matches!(decode_payload(&iommu), Err(Unavailable::UnknownHandler)),
        "iommu has an unknown handler",
    )
}

/// The subtree `fdbox_core` reads, for the corrupt-blob test.
const CORE_SUBTREE: &CStr = c"fdbox";

fn preserve(name: &'static CStr, corrupt: bool) -> Result {
    let mut blob = encode_blob()?;
    verify(&blob)?;
    if corrupt {
        // One bit of the body flipped: the checksum no longer matches.
        let last = blob.len().checked_sub(1).ok_or(EINVAL)?;
        *blob.get_mut(last).ok_or(EINVAL)? ^= 1;
    }
    add_subtree(name, &blob)?;
    pr_info!(
        "encoded, verified and preserved a {} byte blob\n",
        blob.len()
    );
    Ok(())
}

/// Copies `blob` into preserved memory and hands it to the next kernel as the KHO subtree `name`.
fn add_subtree(name: &'static CStr, blob: &[u8]) -> Result {
    add_subtree_as(name, blob, blob.len())
}

/// Hands `blob` over as the subtree `name`, recording `recorded` bytes as its size.
fn add_subtree_as(name: &'static CStr, blob: &[u8], recorded: usize) -> Result {
    // SAFETY: `kho_alloc_preserve` may be called with any size; it returns an error pointer on
    // failure.
    let mem = from_err_ptr(unsafe { kho_alloc_preserve(blob.len()) })?;
    // SAFETY: `mem` holds at least `blob.len()` bytes and does not overlap `blob`.
    unsafe { core::ptr::copy_nonoverlapping(blob.as_ptr(), mem.cast::<u8>(), blob.len()) };
    // SAFETY: the name is a static NUL-terminated string, and `mem` stays allocated and
    // preserved for the next kernel.
    let ret = unsafe { kho_add_subtree(name.as_char_ptr(), mem, recorded) };
    if let Err(e) = to_result(ret) {
        // SAFETY: `mem` came from `kho_alloc_preserve` and was not handed over.
        unsafe { kho_unpreserve_free(mem) };
        return Err(e);
    }
    Ok(())
}

/// `mode=5`: a sound blob under `fdbox_core`'s subtree, whose recorded size is larger than the
/// memory KHO preserves for it: the next kernel must check the size against the preserved
/// block before it reads a byte.
fn oversized() -> Result {
    let blob = encode_blob()?;
    add_subtree_as(CORE_SUBTREE, &blob, OVERSIZED_LEN)?;
    pr_info!(
        "handed over a {} byte blob as {OVERSIZED_LEN} bytes\n",
        blob.len()
    );
    Ok(())
}

/// The size `mode=5` records: past the page `kho_alloc_preserve` gives a blob of a few hundred
/// bytes.
const OVERSIZED_LEN: usize = 1 << 20;

fn restore() -> Result {
    let mut phys = 0u64;
    let mut size = 0usize;
    // SAFETY: the name is NUL-terminated and the out-pointers are valid for writes.
    to_result(unsafe { kho_retrieve_subtree(SUBTREE.as_char_ptr(), &mut phys, &mut size) })
        .inspect_err(|_| pr_err!("no blob named {:?} in the KHO hand-over\n", SUBTREE))?;
    // `kho_restore_folio` accepts any address inside a preserved page.
    // CAST: PAGE_SIZE fits in u64.
    if phys % PAGE_SIZE as u64 != 0 {
        pr_err!("blob address {:#x} is not page-aligned\n", phys);
        return Err(EINVAL);
    }
    // SAFETY: `kho_restore_folio` checks that `phys` was preserved and returns NULL if not.
    let folio = unsafe { kho_restore_folio(phys) };
    if folio.is_null() {
        pr_err!("the blob at {:#x} was not preserved\n", phys);
        return Err(ENOENT);
    }
    let folio = kernel::types::ScopeGuard::new_with_data(folio, |folio| {
        // SAFETY: `folio` holds the reference `kho_restore_folio` gave us.
        unsafe { fdbox_format_test_folio_put(folio) }
    });
    // SAFETY: `folio` is a valid folio we hold a reference to.
    let capacity = unsafe { fdbox_format_test_folio_size(*folio) };
    if size > capacity {
        pr_err!("blob of {} bytes in a {} byte folio\n", size, capacity);
        return Err(EINVAL);
    }
    // SAFETY: the folio is direct-mapped, holds `capacity >= size` bytes, and stays referenced
    // while `blob` is used.
    let blob = unsafe {
        core::slice::from_raw_parts(fdbox_format_test_folio_address(*folio).cast::<u8>(), size)
    };
    verify(blob)?;
    pr_info!(
        "decoded and verified the {} byte blob of the previous kernel\n",
        size
    );
    Ok(())
}

struct FormatTest;

impl kernel::Module for FormatTest {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        match module_parameters::mode.value() {
            1 => preserve(SUBTREE, false)?,
            2 => restore()?,
            3 => preserve(CORE_SUBTREE, true)?,
            4 => forged::hand_over()?,
            5 => oversized()?,
            other => {
                pr_err!("mode={} is not 1 to 5\n", other);
                return Err(EINVAL);
            }
        }
        Ok(FormatTest)
    }
}

/// `mode=4`: a blob with a valid checksum and forged entries, under `fdbox_core`'s subtree.
///
/// Every memfd payload is encoded by the crate (but `count40`'s, which it refuses to write) and
/// names pages allocated here with `alloc_pages` from the unmovable pool, never CMA and so never
/// KHO scratch, preserved with `kho_preserve_pages` where said. A clean entry's pages hold a
/// pattern that `selftests/core/fdbox_forged_test.c` recomputes after the kexec: byte `i` of page `p` is
/// `(p * 131 + i + seed) & 0xff`, and the memfd's name ends in `seed-N`. Boxes, owned by root:
///
/// - `forged`: `clean-a` (8 pages); `longer` (a 2 MiB block of which only the first page is
///   preserved, named whole); `order` (a page preserved at order 0, named as an order-2 folio);
///   `longer-d` and `order-d` (the same again, which stage 2 discards without retrieving);
///   `dup-1` and `dup-2` (one page, named by both); `past-ram` (a page frame far past RAM);
///   `count40` (a run of 2^40 pages, past the format's `MAX_PFN`); `shift16` (a preserved page
///   in a payload of 64 KiB pages); `clean-b` (4 pages); `dup-x2` (a page `forged-2`'s `dup-x`
///   names too).
/// - `forged-2`: `dup-x`; `clean-c` (2 pages).
/// - `forged-iommu`: `ram` (4 pages); `iommufd`, mapping 1 MiB of that 16 KiB memfd.
/// - `forged-vfio`: `ram` (4 pages); `iommufd`, mapping all of it; `dev`, the VFIO device
///   0000:ff:1f.7, which doesn't exist; `other`, edu at 0000:00:01.0, where the test VM has
///   it, but with a subsystem id edu doesn't have: another board in the same slot.
///
/// `longer`, `order`, `longer-d` and `order-d` are structurally sound: only a check against
/// what KHO preserved, at RETRIEVE or DISCARD, catches them. The other forged entries are corrupt from the moment `fdbox_core`
/// loads (`CORRUPT`).
mod forged {
    use super::*;
    use core::ptr::NonNull;
    use fdbox_format::{
        check::{
            check_entries,
            span_count,
            Machine,
            Span, //
        },
        iommufd::{
            self,
            IoasMapping, //
        },
        limits::{
            Limit,
            MAX_MEMFD_NAME_LEN, //
        },
        vfio::{
            self,
            PciIdentity,
            VfioDevice, //
        },
        wire::zigzag,
    };

    /// The page shift every payload states but `shift16`'s.
    const PAGE_SHIFT: u8 = 12;

    /// Bytes in a page of `PAGE_SHIFT`.
    const PAGE: u64 = 1 << PAGE_SHIFT;

    /// A page frame 1 PiB up: far past the RAM of the test guest, below the format's `MAX_PFN`.
    const PAST_RAM_PFN: u64 = 1 << 38;

    /// A folio count that takes a run from any nonzero page frame past the format's `MAX_PFN`.
    const COUNT40: u64 = 1 << 40;

    /// The `multi` bit of a run head (`memfd.rs`): a count follows.
    const HEAD_MULTI: u64 = 1;

    /// The IOAS of both iommufd entries.
    const IOAS_ID: u32 = 1;

    /// The seed of the pages no clean entry names; nothing reads them after the kexec.
    const JUNK_SEED: u8 = 0x5a;

    /// The entries that `fdbox_core` must find corrupt as it loads, as (box, entry). The
    /// self-check here, like `fdbox inspect verify`, can't tell RAM from userspace's view, and
    /// takes RAM to end at `PAST_RAM_PFN`.
    const CORRUPT: [(&str, &str); 8] = [
        ("forged", "dup-1"),
        ("forged", "dup-2"),
        ("forged", "past-ram"),
        ("forged", "count40"),
        ("forged", "shift16"),
        ("forged", "dup-x2"),
        ("forged-2", "dup-x"),
        ("forged-iommu", "iommufd"),
    ];

    /// A clean memfd: `pages` preserved pages (a power of two) of the pattern of `seed`, in one
    /// order-0 run.
    struct Clean {
        /// The entry's name.
        entry: &'static str,
        /// The memfd's name, ending in the seed.
        memfd: &'static str,
        /// The seed of the pattern.
        seed: u8,
        /// The number of pages; the file is that long.
        pages: usize,
    }

    // The same table is in selftests/core/fdbox_forged_test.c.
    const CLEAN_A: Clean = Clean {
        entry: "clean-a",
        memfd: "fdbox-forged-seed-11",
        seed: 11,
        pages: 8,
    };
    const CLEAN_B: Clean = Clean {
        entry: "clean-b",
        memfd: "fdbox-forged-seed-12",
        seed: 12,
        pages: 4,
    };
    const CLEAN_C: Clean = Clean {
        entry: "clean-c",
        memfd: "fdbox-forged-seed-13",
        seed: 13,
        pages: 2,
    };
    const IOMMU_RAM: Clean = Clean {
        entry: "ram",
        memfd: "fdbox-forged-seed-14",
        seed: 14,
        pages: 4,
    };
    const VFIO_RAM: Clean = Clean {
        entry: "ram",
        memfd: "fdbox-forged-seed-15",
        seed: 15,
        pages: 4,
    };

    /// 2^`order` pages from `alloc_pages`, the first `preserved` of them preserved with KHO.
    ///
    /// # Invariants
    ///
    /// `page` is the first of the 2^`order` pages the block owns, from
    /// `fdbox_format_test_alloc_pages(order)`. Unless `preserved` is 0, its first `preserved`
    /// pages were preserved by one `kho_preserve_pages` call.
    struct Block {
        /// The first page.
        page: NonNull<bindings::page>,
        /// The allocation order.
        order: u32,
        /// The pages preserved, from the first.
        preserved: usize,
        /// Handed to the next kernel: left preserved and allocated when dropped.
        handed_over: bool,
    }

    impl Block {
        /// Allocates 2^`order` pages, filled with the pattern of `seed`.
        fn new(order: u32, seed: u8) -> Result<Self> {
            // SAFETY: any order may be asked for; NULL on failure.
            let page = unsafe { fdbox_format_test_alloc_pages(order) };
            let page = NonNull::new(page).ok_or(ENOMEM)?;
            // INVARIANT: `page` heads 2^`order` pages just allocated; none is preserved.
            let block = Block {
                page,
                order,
                preserved: 0,
                handed_over: false,
            };
            // SAFETY: the block owns its pages, which are in the direct map (not highmem).
            unsafe { fdbox_format_test_fill(page.as_ptr(), block.pages(), seed) };
            Ok(block)
        }

        /// The number of pages.
        fn pages(&self) -> usize {
            1usize << self.order
        }

        /// The page frame number of the first page.
        fn pfn(&self) -> u64 {
            // SAFETY: `page` is a valid page (invariant).
            unsafe { fdbox_format_test_page_pfn(self.page.as_ptr()) }
        }

        /// Writes `bytes` over the start of an order-0 block.
        fn write(&mut self, bytes: &[u8]) -> Result {
            // CAST: a page's size fits `usize`.
            if self.order != 0 || bytes.len() > PAGE as usize {
                return Err(EINVAL);
            }
            // SAFETY: an order-0 page is its own folio; it is in the direct map.
            let at = unsafe { fdbox_format_test_folio_address(self.page.as_ptr().cast()) };
            // SAFETY: the block owns the page, which holds `bytes.len()` bytes.
            unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), at.cast(), bytes.len()) };
            Ok(())
        }

        /// Preserves the first `pages` pages with one `kho_preserve_pages` call, which splits
        /// them into the largest aligned blocks, as the memfd handler does with an order-0 run.
        fn preserve(&mut self, pages: usize) -> Result {
            if self.preserved != 0 || pages == 0 || pages > self.pages() {
                return Err(EINVAL);
            }
            // SAFETY: the block owns these pages, and none of them is preserved yet.
            to_result(unsafe { kho_preserve_pages(self.page.as_ptr(), pages) })?;
            // INVARIANT: the first `pages` pages were preserved by that one call.
            self.preserved = pages;
            Ok(())
        }
    }

    impl Drop for Block {
        fn drop(&mut self) {
            if self.handed_over {
                return;
            }
            if self.preserved != 0 {
                // SAFETY: the very pages of the one `kho_preserve_pages` call (invariant).
                unsafe { kho_unpreserve_pages(self.page.as_ptr(), self.preserved) };
            }
            // SAFETY: the block owns its pages (invariant), which are no longer preserved.
            unsafe { fdbox_format_test_free_pages(self.page.as_ptr(), self.order) };
        }
    }

    /// Allocates a block of 2^`order` pages of the pattern of `seed`, preserves its first
    /// `preserved` pages (none if 0), and keeps it in `blocks`; returns its first page frame.
    fn block(blocks: &mut KVec<Block>, order: u32, seed: u8, preserved: usize) -> Result<u64> {
        let mut b = Block::new(order, seed)?;
        if preserved != 0 {
            b.preserve(preserved)?;
        }
        let pfn = b.pfn();
        blocks.push(b, GFP_KERNEL)?;
        Ok(pfn)
    }

    /// A run from file index 0.
    fn run(pfn: u64, order: u8, count: u64) -> FolioRun {
        FolioRun {
            index: 0,
            pfn,
            order,
            count,
        }
    }

    /// A memfd payload of one run, `size` bytes long, encoded by the crate.
    fn memfd(name: &str, size: u64, page_shift: u8, run: FolioRun) -> Result<KVec<u8>> {
        let head = MemfdHead {
            size,
            pos: 0,
            seals: 0,
            page_shift,
            huge_shift: 0,
            name,
        };
        let runs = [run];
        let len =
            memfd::encoded_len(&head, runs.iter().copied()).map_err(|e| codec("memfd size", e))?;
        let mut buf = KVec::from_elem(0u8, len, GFP_KERNEL)?;
        let mut w = Writer::new(&mut buf);
        memfd::encode(&mut w, &head, runs.iter().copied()).map_err(|e| codec("memfd encode", e))?;
        check(w.position() == len, "memfd payload length")?;
        Ok(buf)
    }

    /// A clean memfd's pages and payload.
    fn clean(blocks: &mut KVec<Block>, c: &Clean) -> Result<KVec<u8>> {
        let pfn = block(blocks, c.pages.trailing_zeros(), c.seed, c.pages)?;
        // CAST: usize is 64-bit here.
        let pages = c.pages as u64;
        memfd(c.memfd, pages * PAGE, PAGE_SHIFT, run(pfn, 0, pages))
    }

    /// Writes a memfd payload of one order-0 run of `count` ≥ 2 pages from file index 0, field
    /// by field as `memfd.rs` lays it out, so that it can say what the encoder refuses to.
    fn write_by_hand(
        w: &mut Writer<'_>,
        name: &str,
        size: u64,
        head: u64,
        count: u64,
    ) -> fdbox_format::Result<()> {
        w.u64(size)?;
        w.u64(0)?; // pos
        w.u32(0)?; // seals
        w.u8(PAGE_SHIFT)?;
        w.str(name, Limit::MemfdNameLen, MAX_MEMFD_NAME_LEN)?;
        w.u64(count)?; // folios
        w.u32(1)?; // runs
        w.u64(head)?;
        w.u64(count - 2)
    }

    /// `write_by_hand` into a buffer of the exact size.
    fn memfd_by_hand(name: &str, size: u64, pfn: u64, count: u64) -> Result<KVec<u8>> {
        check(count >= 2, "a run written by hand has at least two folios")?;
        // The pfn delta from 0, no `ext` (index 0, and order 0 as the cursor starts), `multi`.
        let head = (zigzag(i64::try_from(pfn)?) << 2) | HEAD_MULTI;
        let mut counting = Writer::counting();
        write_by_hand(&mut counting, name, size, head, count).map_err(|e| codec("size", e))?;
        let mut buf = KVec::from_elem(0u8, counting.position(), GFP_KERNEL)?;
        let mut w = Writer::new(&mut buf);
        write_by_hand(&mut w, name, size, head, count).map_err(|e| codec("by hand", e))?;
        Ok(buf)
    }

    /// An iommufd payload: IOAS 1, with one read-write mapping of `length` bytes at IOVA 0 of
    /// its first dependency, from its start.
    fn ioas(length: u64) -> Result<KVec<u8>> {
        let ids = [IOAS_ID];
        let maps = [IoasMapping {
            ioas_id: IOAS_ID,
            iova: 0,
            length,
            dep: 0,
            start: 0,
            prot: iommufd::PROT_READ | iommufd::PROT_WRITE,
        }];
        let len = iommufd::encoded_len(&ids, &maps).map_err(|e| codec("iommufd size", e))?;
        let mut buf = KVec::from_elem(0u8, len, GFP_KERNEL)?;
        let n = iommufd::encode(&ids, &maps, &mut buf).map_err(|e| codec("iommufd encode", e))?;
        check(n == len, "iommufd payload length")?;
        Ok(buf)
    }

    /// A vfio payload: QEMU's edu device at `bus:devfn` with subsystem id `subsystem_device`,
    /// bound to the iommufd of its first dependency and attached to IOAS 1.
    fn device(bus: u8, devfn: u8, subsystem_device: u16) -> Result<KVec<u8>> {
        let dev = VfioDevice {
            domain: 0,
            bus,
            devfn,
            vendor: 0x1234,
            device: 0x11e8,
            iommufd_dep: 0,
            devid: 1,
            ioas_id: IOAS_ID,
            hwpt_id: 0,
            hwpt_flags: 0,
            iommufd_max_id: 0,
            identity: Some(PciIdentity {
                subsystem_vendor: 0x1af4,
                subsystem_device,
                class: 0xff00,
                serial: None,
            }),
        };
        let mut out = [0u8; vfio::MAX_ENCODED_LEN];
        let n = vfio::encode(&dev, &mut out).map_err(|e| codec("vfio encode", e))?;
        let mut buf = KVec::with_capacity(n, GFP_KERNEL)?;
        buf.extend_from_slice(out.get(..n).ok_or(EINVAL)?, GFP_KERNEL)?;
        Ok(buf)
    }

    /// The payloads of every entry.
    struct Payloads {
        clean_a: KVec<u8>,
        longer: KVec<u8>,
        order: KVec<u8>,
        longer_d: KVec<u8>,
        order_d: KVec<u8>,
        dup_1: KVec<u8>,
        dup_2: KVec<u8>,
        past_ram: KVec<u8>,
        count40: KVec<u8>,
        shift16: KVec<u8>,
        clean_b: KVec<u8>,
        dup_x2: KVec<u8>,
        dup_x: KVec<u8>,
        clean_c: KVec<u8>,
        iommu_ram: KVec<u8>,
        iommu_bad: KVec<u8>,
        vfio_ram: KVec<u8>,
        vfio_iommufd: KVec<u8>,
        vfio_dev: KVec<u8>,
        vfio_other: KVec<u8>,
    }

    /// Allocates and preserves the memory, into `blocks`, and forges the payloads naming it.
    fn forge(blocks: &mut KVec<Block>) -> Result<Payloads> {
        let clean_a = clean(blocks, &CLEAN_A)?;

        // 2 MiB, of which KHO preserves only the first page; the payload names all 512.
        let pfn = block(blocks, 9, JUNK_SEED, 1)?;
        let longer = memfd(
            "fdbox-forged-longer",
            512 * PAGE,
            PAGE_SHIFT,
            run(pfn, 0, 512),
        )?;

        // A page KHO preserves at order 0, named as a folio of order 2 (the pfn is aligned).
        let pfn = block(blocks, 2, JUNK_SEED, 1)?;
        let order = memfd("fdbox-forged-order", 4 * PAGE, PAGE_SHIFT, run(pfn, 2, 1))?;

        // The same two forgeries again, for stage 2 to DISCARD without retrieving them.
        let pfn = block(blocks, 9, JUNK_SEED, 1)?;
        let longer_d = memfd(
            "fdbox-forged-longer-d",
            512 * PAGE,
            PAGE_SHIFT,
            run(pfn, 0, 512),
        )?;
        let pfn = block(blocks, 2, JUNK_SEED, 1)?;
        let order_d = memfd("fdbox-forged-order-d", 4 * PAGE, PAGE_SHIFT, run(pfn, 2, 1))?;

        // One preserved page, named by two entries.
        let d = block(blocks, 0, JUNK_SEED, 1)?;
        let dup_1 = memfd("fdbox-forged-dup-1", PAGE, PAGE_SHIFT, run(d, 0, 1))?;
        let dup_2 = memfd("fdbox-forged-dup-2", PAGE, PAGE_SHIFT, run(d, 0, 1))?;

        let past_ram = memfd(
            "fdbox-forged-past-ram",
            PAGE,
            PAGE_SHIFT,
            run(PAST_RAM_PFN, 0, 1),
        )?;

        // A preserved page as the first of 2^40: the encoder refuses it, so it is written by
        // hand, in the layout the encoder writes for a count it takes.
        let pfn = block(blocks, 0, JUNK_SEED, 1)?;
        let name = "fdbox-forged-count40";
        let size = COUNT40 * PAGE;
        let count40 = memfd_by_hand(name, size, pfn, COUNT40)?;
        let head = MemfdHead {
            size,
            pos: 0,
            seals: 0,
            page_shift: PAGE_SHIFT,
            huge_shift: 0,
            name,
        };
        check(
            memfd::encoded_len(&head, [run(pfn, 0, COUNT40)].into_iter()).is_err(),
            "the encoder refuses a run of 2^40 pages",
        )?;
        check(
            memfd_by_hand(name, size, pfn, 2)?[..]
                == memfd(name, size, PAGE_SHIFT, run(pfn, 0, 2))?[..],
            "a payload by hand is laid out as the encoder's",
        )?;
        check(
            memfd::decode(&count40, 0).is_err(),
            "the decoder refuses a run of 2^40 pages",
        )?;

        // A preserved page, in a payload of 64 KiB pages.
        let pfn = block(blocks, 0, JUNK_SEED, 1)?;
        let shift16 = memfd("fdbox-forged-shift16", 1 << 16, 16, run(pfn, 0, 1))?;

        let clean_b = clean(blocks, &CLEAN_B)?;

        // One preserved page, named by an entry of `forged` and one of `forged-2`.
        let e = block(blocks, 0, JUNK_SEED, 1)?;
        let dup_x2 = memfd("fdbox-forged-dup-x2", PAGE, PAGE_SHIFT, run(e, 0, 1))?;
        let dup_x = memfd("fdbox-forged-dup-x", PAGE, PAGE_SHIFT, run(e, 0, 1))?;

        let clean_c = clean(blocks, &CLEAN_C)?;

        let iommu_ram = clean(blocks, &IOMMU_RAM)?;
        // CAST: usize is 64-bit here.
        let ram_len = IOMMU_RAM.pages as u64 * PAGE;
        // 1 MiB of a 16 KiB memfd.
        let iommu_bad = ioas(1 << 20)?;
        check(ram_len < 1 << 20, "the mapping reaches past its memfd")?;

        let vfio_ram = clean(blocks, &VFIO_RAM)?;
        // CAST: usize is 64-bit here.
        let vfio_iommufd = ioas(VFIO_RAM.pages as u64 * PAGE)?;
        // Nothing is at 0000:ff:1f.7; edu is at 0000:00:01.0, with subsystem 1af4:1100.
        let vfio_dev = device(0xff, (0x1f << 3) | 7, 0x1100)?;
        let vfio_other = device(0, 1 << 3, 0xdead)?;

        Ok(Payloads {
            clean_a,
            longer,
            order,
            longer_d,
            order_d,
            dup_1,
            dup_2,
            past_ram,
            count40,
            shift16,
            clean_b,
            dup_x2,
            dup_x,
            clean_c,
            iommu_ram,
            iommu_bad,
            vfio_ram,
            vfio_iommufd,
            vfio_dev,
            vfio_other,
        })
    }

    /// A sealed box owned by root.
    fn root(name: &str) -> BoxHead<'_> {
        BoxHead {
            name,
            owner_uid: 0,
            owner_gid: 0,
            state: BoxState::Sealed,
        }
    }

    fn memfd_entry(enc: &mut Encoder<'_>, name: &str, payload: &[u8]) -> fdbox_format::Result<()> {
        memfd_record(enc, name, Payload::Inline(payload))
    }

    /// A memfd entry of no dependencies whose payload is `payload`, inline or not.
    fn memfd_record(
        enc: &mut Encoder<'_>,
        name: &str,
        payload: Payload<'_>,
    ) -> fdbox_format::Result<()> {
        enc.entry(&EntryRecord {
            name,
            handler: memfd::HANDLER,
            payload_version: memfd::SHMEM_VERSION,
            flags: 0,
            deps: &[],
            payload,
        })
    }

    /// An entry `iommufd`, mapping the box's entry 0.
    fn iommufd_entry(enc: &mut Encoder<'_>, payload: &[u8]) -> fdbox_format::Result<()> {
        enc.entry(&EntryRecord {
            name: "iommufd",
            handler: iommufd::HANDLER,
            payload_version: iommufd::PAYLOAD_VERSION,
            flags: 0,
            deps: &[0],
            payload: Payload::Inline(payload),
        })
    }

    fn encode(enc: &mut Encoder<'_>, p: &Payloads) -> fdbox_format::Result<()> {
        enc.manifest(RELEASE, VERSION, 4)?;

        enc.begin_box(&root("forged"), 12)?;
        memfd_entry(enc, CLEAN_A.entry, &p.clean_a)?;
        memfd_entry(enc, "longer", &p.longer)?;
        memfd_entry(enc, "order", &p.order)?;
        memfd_entry(enc, "longer-d", &p.longer_d)?;
        memfd_entry(enc, "order-d", &p.order_d)?;
        memfd_entry(enc, "dup-1", &p.dup_1)?;
        memfd_entry(enc, "dup-2", &p.dup_2)?;
        memfd_entry(enc, "past-ram", &p.past_ram)?;
        memfd_entry(enc, "count40", &p.count40)?;
        memfd_entry(enc, "shift16", &p.shift16)?;
        memfd_entry(enc, CLEAN_B.entry, &p.clean_b)?;
        memfd_entry(enc, "dup-x2", &p.dup_x2)?;

        enc.begin_box(&root("forged-2"), 2)?;
        memfd_entry(enc, "dup-x", &p.dup_x)?;
        memfd_entry(enc, CLEAN_C.entry, &p.clean_c)?;

        enc.begin_box(&root("forged-iommu"), 2)?;
        memfd_entry(enc, IOMMU_RAM.entry, &p.iommu_ram)?;
        iommufd_entry(enc, &p.iommu_bad)?;

        enc.begin_box(&root("forged-vfio"), 4)?;
        memfd_entry(enc, VFIO_RAM.entry, &p.vfio_ram)?;
        iommufd_entry(enc, &p.vfio_iommufd)?;
        for (name, payload) in [("dev", &p.vfio_dev), ("other", &p.vfio_other)] {
            enc.entry(&EntryRecord {
                name,
                handler: vfio::HANDLER,
                payload_version: vfio::PAYLOAD_VERSION,
                flags: 0,
                deps: &[1],
                payload: Payload::Inline(payload),
            })?;
        }
        Ok(())
    }

    /// The reader the self-check models: pages of 4 KiB, RAM below `PAST_RAM_PFN`.
    struct Model;

    impl Machine for Model {
        fn page_shift(&self) -> u8 {
            PAGE_SHIFT
        }

        fn is_ram(&mut self, pfn: u64, pages: u64) -> bool {
            pfn.checked_add(pages)
                .is_some_and(|end| end <= PAST_RAM_PFN)
        }
    }

    /// Checks that the blob decodes and validates, and that the per-entry checks find corrupt
    /// exactly the entries of `CORRUPT`: the forgery is the one intended.
    fn self_check(blob: &[u8]) -> Result {
        let view = decode(blob).map_err(|e| codec("decode", e))?;
        let mut scratch = KVec::from_elem(0u64, scratch_len(&view), GFP_KERNEL)?;
        validate(&view, &mut scratch).map_err(|e| codec("validate", e))?;
        let mut spans = KVec::from_elem(Span::default(), span_count(&view), GFP_KERNEL)?;
        // CAST: u32 fits in usize.
        let entries = view.entry_count() as usize;
        let mut verdicts =
            KVec::<Option<fdbox_format::Error>>::from_elem(None, entries, GFP_KERNEL)?;
        check_entries(&view, &mut Model, &mut spans, &mut verdicts)
            .map_err(|e| codec("check", e))?;
        let mut verdicts = verdicts.iter();
        for b in view.boxes() {
            for e in b.entries() {
                let verdict = verdicts.next().ok_or(EINVAL)?;
                let forged = CORRUPT
                    .iter()
                    .any(|&(bx, en)| bx == b.head.name && en == e.name);
                if verdict.is_some() != forged {
                    pr_err!(
                        "entry {}/{}: corrupt: {}, but forged to be {}\n",
                        b.head.name,
                        e.name,
                        verdict.is_some(),
                        forged
                    );
                    return Err(EINVAL);
                }
            }
        }
        Ok(())
    }

    /// Forges the blob and hands it, with the memory it names, to the next kernel.
    pub(super) fn hand_over() -> Result {
        let mut blocks = KVec::new();
        let payloads = forge(&mut blocks)?;
        let mut counting = Encoder::counting();
        encode(&mut counting, &payloads).map_err(|e| codec("size", e))?;
        let len = counting.finish().map_err(|e| codec("size", e))?;
        let mut blob = KVec::from_elem(0u8, len, GFP_KERNEL)?;
        let mut enc = Encoder::new(&mut blob).map_err(|e| codec("encode", e))?;
        encode(&mut enc, &payloads).map_err(|e| codec("encode", e))?;
        let written = enc.finish().map_err(|e| codec("encode", e))?;
        check(written == len, "blob length")?;
        self_check(&blob)?;
        let root = root::forge(&mut blocks, &blob)?;
        add_subtree(CORE_SUBTREE, &root)?;
        for b in blocks.iter_mut() {
            b.handed_over = true;
        }
        pr_info!(
            "forged a {} byte blob over {} preserved blocks, handed over in a root as {:?}\n",
            blob.len(),
            blocks.len(),
            CORE_SUBTREE
        );
        Ok(())
    }

    /// The root the forged blob is handed over in, with the slots and chunked payloads that
    /// `fdbox_core` must refuse, each costing only its own box or entry:
    ///
    /// - slot 0: the forged blob's first box, and slots 12 on its others, one blob each;
    /// - slot 1: a slot whose checksum is wrong;
    /// - slot 2: 100 bytes at a page KHO never preserved;
    /// - slot 3: 8192 bytes at a preserved page;
    /// - slot 4: box `root-lost-crc`, its blob's body checksum wrong;
    /// - slot 5: box `root-lost-invalid`, two entries of one name;
    /// - slot 6: box `root-chunks`: `chunked` (`CHUNKED`, 4000 pages, each a block of its own, its payload in
    ///   two chunks), and five entries whose chunks are forged: `chunk-gone` (a page KHO never
    ///   preserved), `chunk-size` (a block of two pages for a chunk of one), `chunk-crc` (the
    ///   checksum off by one bit), `chunk-twice-1` and `chunk-twice-2` (one chunk, named by
    ///   both);
    /// - slot 7: a second box `root-chunks` of root's, empty;
    /// - slot 8: box `root-cross`: `victim`, a memfd of one page, and `thief`, whose one chunk
    ///   is that page, which holds a sound payload and its checksum;
    /// - slots 9 and 10: box `root-shared`, both naming one block;
    /// - slot 11: boxes `root-two-a` and `root-two-b`, in one blob.
    mod root {
        use super::*;
        use fdbox_format::{
            crc32c::crc32c,
            root::{
                init_root,
                root_len,
                write_slot,
                ROOT_HEADER_LEN,
                SLOT_LEN, //
            },
            ChunkedRef,
            Chunks, //
        };

        /// Slots in the root.
        const SLOTS: u32 = 16;

        /// The chunk length of every chunked payload here.
        const CHUNK_LEN: u32 = 4096;

        // The same table is in selftests/core/fdbox_forged_test.c.
        const CHUNKED_SEED: u8 = 21;
        const CHUNKED_PAGES: u64 = 4000;

        /// Copies `bytes` into KHO memory of its own, handed over; returns its address.
        fn preserved_copy(bytes: &[u8]) -> Result<u64> {
            // SAFETY: any size may be asked for; an error pointer on failure.
            let mem = from_err_ptr(unsafe { kho_alloc_preserve(bytes.len()) })?;
            // SAFETY: `mem` holds at least `bytes.len()` bytes, and is ours.
            unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), mem.cast(), bytes.len()) };
            // SAFETY: `mem` is a folio's address, in the direct map.
            Ok(unsafe { fdbox_format_test_virt_to_phys(mem) })
        }

        /// `payload` in chunks of `CHUNK_LEN`, each in KHO memory of its own: their addresses.
        fn chunks_of(payload: &[u8]) -> Result<KVec<u64>> {
            let mut phys = KVec::new();
            for part in payload.chunks(CHUNK_LEN as usize) {
                phys.push(preserved_copy(part)?, GFP_KERNEL)?;
            }
            Ok(phys)
        }

        /// A blob of one box of root's, `name`, whose entries `entries` writes.
        fn box_blob(
            name: &str,
            n: usize,
            entries: impl Fn(&mut Encoder<'_>) -> fdbox_format::Result<()>,
        ) -> Result<KVec<u8>> {
            encoded(|enc: &mut Encoder<'_>| -> fdbox_format::Result<()> {
                enc.manifest(RELEASE, VERSION, 1)?;
                enc.begin_box(&super::root(name), n)?;
                entries(enc)
            })
        }

        /// A memfd entry whose payload is the chunks `c`.
        fn chunked_entry(
            enc: &mut Encoder<'_>,
            name: &str,
            c: ChunkedRef<'_>,
        ) -> fdbox_format::Result<()> {
            memfd_record(enc, name, Payload::Chunked(c))
        }

        /// The memfd of `CHUNKED_PAGES` pages, each a block of its own, so that its payload
        /// takes more than one chunk.
        fn scattered(blocks: &mut KVec<Block>) -> Result<KVec<u8>> {
            // CAST: a small constant.
            let n = CHUNKED_PAGES as usize;
            let mut pfns = KVec::from_elem(0u64, n, GFP_KERNEL)?;
            // Allocated in a stride order, so that the pages of consecutive file pages are
            // far apart and the payload can't pack them into a few bytes.
            for m in 0..CHUNKED_PAGES {
                let k = m * 7919 % CHUNKED_PAGES;
                // Page `k` of the file holds the pattern of `CHUNKED_SEED` at page `k`.
                // CAST: the pattern wraps at a byte.
                let seed = (u64::from(CHUNKED_SEED) + 131 * k) as u8;
                // CAST: below `n`.
                *pfns.get_mut(k as usize).ok_or(EINVAL)? = block(blocks, 0, seed, 1)?;
            }
            let mut runs = KVec::with_capacity(n, GFP_KERNEL)?;
            for (k, &pfn) in pfns.iter().enumerate() {
                runs.push(
                    FolioRun {
                        // CAST: `usize` fits `u64`.
                        index: k as u64,
                        pfn,
                        order: 0,
                        count: 1,
                    },
                    GFP_KERNEL,
                )?;
            }
            let head = MemfdHead {
                size: CHUNKED_PAGES * PAGE,
                pos: 0,
                seals: 0,
                page_shift: PAGE_SHIFT,
                huge_shift: 0,
                name: "fdbox-forged-seed-21",
            };
            let len = memfd::encoded_len(&head, runs.iter().copied())
                .map_err(|e| codec("memfd size", e))?;
            let mut buf = KVec::from_elem(0u8, len, GFP_KERNEL)?;
            let mut w = Writer::new(&mut buf);
            memfd::encode(&mut w, &head, runs.iter().copied())
                .map_err(|e| codec("memfd encode", e))?;
            check(
                len > CHUNK_LEN as usize,
                "the scattered payload takes two chunks",
            )?;
            Ok(buf)
        }

        /// `blob`'s boxes, each in a blob of its own, as a major-2 kernel hands them over.
        fn per_box(blob: &[u8]) -> Result<KVec<KVec<u8>>> {
            let view = fdbox_format::decode(blob).map_err(|e| codec("decode", e))?;
            let mut out = KVec::new();
            for b in view.boxes() {
                let mut deps = KVec::new();
                let run = |enc: &mut Encoder<'_>| -> fdbox_format::Result<()> {
                    enc.manifest(view.kernel_release, view.fdbox_version, 1)?;
                    enc.begin_box(&b.head, b.entry_count() as usize)?;
                    for e in b.entries() {
                        deps.clear();
                        for d in e.deps() {
                            deps.push(d, GFP_KERNEL)
                                .map_err(|_| fdbox_format::Error::ScratchTooSmall { needed: 1 })?;
                        }
                        enc.entry(&EntryRecord {
                            name: e.name,
                            handler: e.handler,
                            payload_version: e.payload_version,
                            flags: e.flags,
                            deps: &deps,
                            payload: e.payload,
                        })?;
                    }
                    Ok(())
                };
                out.push(encoded(run)?, GFP_KERNEL)?;
            }
            Ok(out)
        }

        /// The blob `run` writes.
        fn encoded(
            mut run: impl FnMut(&mut Encoder<'_>) -> fdbox_format::Result<()>,
        ) -> Result<KVec<u8>> {
            let mut counting = Encoder::counting();
            run(&mut counting).map_err(|e| codec("size", e))?;
            let len = counting.finish().map_err(|e| codec("size", e))?;
            let mut blob = KVec::from_elem(0u8, len, GFP_KERNEL)?;
            let mut enc = Encoder::new(&mut blob).map_err(|e| codec("encode", e))?;
            run(&mut enc).map_err(|e| codec("encode", e))?;
            check(
                enc.finish().map_err(|e| codec("encode", e))? == len,
                "blob length",
            )?;
            Ok(blob)
        }

        /// The root, with the forged blob's boxes in slot 0 and slots 12 on.
        pub(super) fn forge(blocks: &mut KVec<Block>, forged: &[u8]) -> Result<KVec<u8>> {
            let mut root = KVec::from_elem(0u8, root_len(SLOTS), GFP_KERNEL)?;
            init_root(&mut root, SLOTS).map_err(|e| codec("root", e))?;
            let slot = |root: &mut KVec<u8>, i: u32, phys: u64, len: usize| -> Result {
                let len = u32::try_from(len).map_err(|_| EINVAL)?;
                write_slot(root, i, Some((phys, len))).map_err(|e| codec("slot", e))
            };
            // Slot 0 and slots 12 on: the forged blob's boxes, one blob each.
            let boxes = per_box(forged)?;
            let first = boxes.first().ok_or(EINVAL)?;
            slot(&mut root, 0, preserved_copy(first)?, first.len())?;
            for (i, b) in (12..).zip(boxes.iter().skip(1)) {
                slot(&mut root, i, preserved_copy(b)?, b.len())?;
            }

            // Slot 1: a sound slot, one bit of its address flipped afterwards.
            slot(&mut root, 1, preserved_copy(first)?, first.len())?;
            let at = ROOT_HEADER_LEN + SLOT_LEN + 2;
            *root.get_mut(at).ok_or(EINVAL)? ^= 1;

            // Slot 2: a page never preserved. Slot 3: a preserved page, named as two.
            let never = block(blocks, 0, JUNK_SEED, 0)?;
            slot(&mut root, 2, never * PAGE, 100)?;
            let one = block(blocks, 0, JUNK_SEED, 1)?;
            slot(&mut root, 3, one * PAGE, 2 * PAGE as usize)?;

            // A small clean-looking memfd payload the forged chunks carry.
            let pfn = block(blocks, 0, JUNK_SEED, 1)?;
            let small = memfd("fdbox-forged-chunk", PAGE, PAGE_SHIFT, run(pfn, 0, 1))?;

            // Slot 4: the body checksum off. Slot 5: valid bytes, an invalid box.
            let mut lost = box_blob("root-lost-crc", 0, |_| Ok(()))?;
            *lost.last_mut().ok_or(EINVAL)? ^= 1;
            slot(&mut root, 4, preserved_copy(&lost)?, lost.len())?;
            let invalid = box_blob("root-lost-invalid", 2, |enc| {
                memfd_entry(enc, "x", &small)?;
                memfd_entry(enc, "x", &small)
            })?;
            slot(&mut root, 5, preserved_copy(&invalid)?, invalid.len())?;

            // Slot 6: the chunked entries.
            let payload = scattered(blocks)?;
            let chunked = chunks_of(&payload)?;
            let gone = block(blocks, 0, JUNK_SEED, 0)? * PAGE;
            let two_pages = block(blocks, 1, JUNK_SEED, 2)? * PAGE;
            let good = chunks_of(&small)?;
            let twice = chunks_of(&small)?;
            // CAST: `usize` fits `u64`.
            let (len, small_len) = (payload.len() as u64, small.len() as u64);
            let (crc, small_crc) = (crc32c(&payload), crc32c(&small));
            fn refs(chunks: &[u64], len: u64, crc: u32) -> ChunkedRef<'_> {
                ChunkedRef {
                    len,
                    crc32c: crc,
                    chunk_len: CHUNK_LEN,
                    chunks: Chunks::List(chunks),
                }
            }
            let entries = |enc: &mut Encoder<'_>| -> fdbox_format::Result<()> {
                chunked_entry(
                    enc,
                    "chunked",
                    ChunkedRef {
                        len,
                        crc32c: crc,
                        chunk_len: CHUNK_LEN,
                        chunks: Chunks::List(&chunked),
                    },
                )?;
                chunked_entry(enc, "chunk-gone", refs(&[gone], small_len, small_crc))?;
                chunked_entry(enc, "chunk-size", refs(&[two_pages], small_len, small_crc))?;
                chunked_entry(enc, "chunk-crc", refs(&good, small_len, small_crc ^ 1))?;
                chunked_entry(enc, "chunk-twice-1", refs(&twice, small_len, small_crc))?;
                chunked_entry(enc, "chunk-twice-2", refs(&twice, small_len, small_crc))
            };
            let chunks = box_blob("root-chunks", 6, entries)?;
            slot(&mut root, 6, preserved_copy(&chunks)?, chunks.len())?;

            // Slot 7: the same name again.
            let again = box_blob("root-chunks", 0, |_| Ok(()))?;
            slot(&mut root, 7, preserved_copy(&again)?, again.len())?;

            // Slot 8: one page, named by two entries: "victim" as its memfd's page, "thief"
            // as the chunk of its payload, which that page holds, checksum and all.
            let loot_pfn = block(blocks, 0, JUNK_SEED, 1)?;
            let loot = memfd("fdbox-forged-loot", PAGE, PAGE_SHIFT, run(loot_pfn, 0, 1))?;
            let page = block(blocks, 0, JUNK_SEED, 1)?;
            blocks.last_mut().ok_or(EINVAL)?.write(&loot)?;
            let victim = memfd("fdbox-forged-victim", PAGE, PAGE_SHIFT, run(page, 0, 1))?;
            let stolen = [page * PAGE];
            // CAST: `usize` fits `u64`.
            let loot_ref = refs(&stolen, loot.len() as u64, crc32c(&loot));
            let cross = box_blob("root-cross", 2, |enc| {
                memfd_entry(enc, "victim", &victim)?;
                chunked_entry(enc, "thief", loot_ref)
            })?;
            slot(&mut root, 8, preserved_copy(&cross)?, cross.len())?;

            // Slots 9 and 10: one blob, in one block, named twice.
            let shared_pfn = block(blocks, 0, JUNK_SEED, 1)?;
            let x = memfd(
                "fdbox-forged-shared",
                PAGE,
                PAGE_SHIFT,
                run(shared_pfn, 0, 1),
            )?;
            let shared = box_blob("root-shared", 1, |enc| memfd_entry(enc, "x", &x))?;
            let at = preserved_copy(&shared)?;
            slot(&mut root, 9, at, shared.len())?;
            slot(&mut root, 10, at, shared.len())?;

            // Slot 11: a blob of two boxes, where one is expected, each with a sound entry.
            let a = block(blocks, 0, JUNK_SEED, 1)?;
            let a = memfd("fdbox-forged-two-a", PAGE, PAGE_SHIFT, run(a, 0, 1))?;
            let b = block(blocks, 0, JUNK_SEED, 1)?;
            let b = memfd("fdbox-forged-two-b", PAGE, PAGE_SHIFT, run(b, 0, 1))?;
            let two = |enc: &mut Encoder<'_>| -> fdbox_format::Result<()> {
                enc.manifest(RELEASE, VERSION, 2)?;
                enc.begin_box(&super::root("root-two-a"), 1)?;
                memfd_entry(enc, "x", &a)?;
                enc.begin_box(&super::root("root-two-b"), 1)?;
                memfd_entry(enc, "x", &b)
            };
            let pair = encoded(two)?;
            slot(&mut root, 11, preserved_copy(&pair)?, pair.len())?;
            Ok(root)
        }
    }
}
