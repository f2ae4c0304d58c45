// SPDX-License-Identifier: GPL-2.0

//! fdbox-format compiled into a module: a blob encoded by one kernel is decoded by the next.
//!
//! `mode=1` (before the kexec) encodes a sample manifest with the same codec the userspace tools
//! use, decodes and validates it, and hands it to the next kernel as the KHO subtree
//! `fdbox-format-test`, where `fdbox inspect` can read it from debugfs too. `mode=2` (after the
//! kexec) restores that blob and checks every field of it. `mode=3` hands the same blob, with one
//! bit flipped, to the next kernel as the subtree `fdbox`, where `fdbox_core` must report it
//! unusable. Loading fails with an errno whenever a check fails.

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
                3: hand a corrupt blob over as fdbox_core's",
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
        payload_version: memfd::PAYLOAD_VERSION,
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
    // SAFETY: `kho_alloc_preserve` may be called with any size; it returns an error pointer on
    // failure.
    let mem = from_err_ptr(unsafe { kho_alloc_preserve(blob.len()) })?;
    // SAFETY: `mem` holds at least `blob.len()` bytes and does not overlap `blob`.
    unsafe { core::ptr::copy_nonoverlapping(blob.as_ptr(), mem.cast::<u8>(), blob.len()) };
    // SAFETY: the name is a static NUL-terminated string, and `mem` stays allocated and
    // preserved for the next kernel.
    let ret = unsafe { kho_add_subtree(name.as_char_ptr(), mem, blob.len()) };
    if let Err(e) = to_result(ret) {
        // SAFETY: `mem` came from `kho_alloc_preserve` and was not handed over.
        unsafe { kho_unpreserve_free(mem) };
        return Err(e);
    }
    pr_info!(
        "encoded, verified and preserved a {} byte blob\n",
        blob.len()
    );
    Ok(())
}

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
            other => {
                pr_err!("mode={} is not 1, 2 or 3\n", other);
                return Err(EINVAL);
            }
        }
        Ok(FormatTest)
    }
}
