// SPDX-License-Identifier: GPL-2.0

//! FDBox's memfd handler: guest RAM across the kexec without copying a byte.
//!
//! - `ADD` (`prepare`) freezes the size, then takes a reference on every folio in the page
//!   cache and migrates the ones in KHO scratch out: the part whose cost depends on memory
//!   pressure, done while the guest still runs. Holes stay holes.
//! - `SEAL` (`serialize`) forbids new folios, picks up the ones that filled holes since `ADD`,
//!   preserves the final folio set with KHO, run by run (a physically contiguous run of 4 KiB
//!   folios is one KHO range, a large folio is preserved at its order), and writes name, size,
//!   position, seals and the runs (`fdbox_format::memfd`). From then on, filling a hole fails
//!   visibly (`EPERM`, `SIGBUS`) instead of being lost at the kexec; data written to existing
//!   folios needs nothing, it is the memory that carries over.
//! - `CANCEL`/`REMOVE` undo both exactly.
//! - After the kexec, `restore` builds a memfd of the same name, size, position and seals
//!   and inserts the preserved folios into its page cache, charged to the retriever's memory
//!   cgroup; `discard` frees them.
//!
//! A hugetlb memfd (`MFD_HUGETLB`) goes the same way, one huge folio per run entry, in payload
//! version 2. Its restore first takes a pool folio for every preserved one, with the charges
//! and reservations the retriever's faults would make, so that a pool or limit too small
//! refuses the restore (`ENOSPC`) before anything is consumed; then each preserved folio takes
//! its pool folio's place and state, and the pool folio goes back to the buddy allocator.
//!
//! The mm steps are in `fdbox_memfd_mm.c`; this file sequences them and owns the state.

use core::{
    ptr::NonNull,
    sync::atomic::{
        AtomicU64,
        Ordering, //
    },
};
use kernel::{
    bindings,
    debugfs::{
        Dir,
        File as DebugFile,
        Writer as TextWriter, //
    },
    error::to_result,
    ffi::{
        c_char,
        c_int,
        c_uint,
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
    memfd::{
        self,
        FolioRun,
        MemfdHead, //
    },
    wire::Writer, //
};
use preservable::{
    Dependencies,
    Payload,
    Preservable,
    Registration,
    RestoredDeps,
    Settled,
    SETTLE_FUTURE,
    SETTLE_NOW, //
};

module! {
    type: MemfdModule,
    name: "fdbox_memfd",
    authors: ["FDBox developers"],
    description: "FDBox: carry memfds across a kexec without copying them",
    license: "GPL",
}

/// `enum fdbox_memfd_kind` of `fdbox_memfd_mm.h`.
const KIND_SHMEM: c_int = 1;
/// As above: a hugetlbfs memfd (`MFD_HUGETLB`).
const KIND_HUGETLB: c_int = 2;
/// `FDBOX_MEMFD_BATCH`.
const BATCH: usize = 31;

// The functions of `fdbox_memfd_mm.h`.
#[allow(improper_ctypes)]
extern "C" {
    fn fdbox_memfd_setup() -> c_int;
    fn fdbox_memfd_kind(file: *mut bindings::file) -> c_int;
    fn fdbox_memfd_name(file: *mut bindings::file) -> *const c_char;
    fn fdbox_memfd_freeze(file: *mut bindings::file, was_unevictable: *mut bool) -> c_int;
    fn fdbox_memfd_thaw(file: *mut bindings::file, was_unevictable: bool);
    fn fdbox_memfd_forbid_new(file: *mut bindings::file, forbid: bool) -> c_int;
    fn fdbox_memfd_size(file: *mut bindings::file) -> u64;
    fn fdbox_memfd_pos(file: *mut bindings::file) -> u64;
    fn fdbox_memfd_swapped(file: *mut bindings::file) -> u64;
    fn fdbox_memfd_huge_shift(file: *mut bindings::file) -> u8;
    fn fdbox_memfd_gigantic(file: *mut bindings::file) -> bool;
    fn fdbox_memfd_seals(file: *mut bindings::file) -> c_int;
    fn fdbox_memfd_only_held(
        file: *mut bindings::file,
        next_held: unsafe extern "C" fn(ctx: *mut c_void, folio: *mut bindings::folio) -> bool,
        ctx: *mut c_void,
    ) -> bool;
    fn fdbox_memfd_grab(
        file: *mut bindings::file,
        start: *mut u64,
        end: u64,
        slots: *mut Slot,
    ) -> c_uint;
    fn fdbox_memfd_settle(
        file: *mut bindings::file,
        slots: *mut Slot,
        n: c_uint,
        migrated: *mut c_uint,
        zeroed: *mut c_uint,
    ) -> c_int;
    fn fdbox_memfd_settle_file(
        file: *mut bindings::file,
        now: bool,
        future: bool,
        unsettled: *mut u64,
        migrated: *mut u64,
    ) -> c_int;
    fn fdbox_memfd_put(folio: *mut bindings::folio);
    fn fdbox_memfd_preserve_run(pfn: u64, order: u8, count: u64) -> c_int;
    fn fdbox_memfd_unpreserve_run(pfn: u64, order: u8, count: u64);
    fn fdbox_memfd_create(
        name: *const c_char,
        size: u64,
        pos: u64,
        pages: u64,
    ) -> *mut bindings::file;
    fn fdbox_memfd_create_huge(
        name: *const c_char,
        size: u64,
        pos: u64,
        huge_shift: u8,
    ) -> *mut bindings::file;
    fn fdbox_memfd_reserve_huge(file: *mut bindings::file, runs: *const Run, n: usize) -> c_int;
    fn fdbox_memfd_fill(
        file: *mut bindings::file,
        runs: *const Run,
        n: usize,
        refused_run: *mut usize,
        inserted: *mut u64,
    ) -> c_int;
    fn fdbox_memfd_cpus() -> c_uint;
    fn fdbox_memfd_walk_cost(file: *mut bindings::file) -> u64;
    fn fdbox_memfd_max_folio_pages() -> u64;
    fn fdbox_memfd_spread(
        n: c_uint,
        f: unsafe extern "C" fn(ctx: *mut c_void, i: c_uint),
        ctx: *mut c_void,
    );
    fn fdbox_memfd_finish(file: *mut bindings::file, pages: u64);
    fn fdbox_memfd_add_seals(file: *mut bindings::file, seals: u32) -> c_int;
}

/// `struct fdbox_memfd_run`: a run of a payload, as `fdbox_memfd_fill` takes it.
#[repr(C)]
#[derive(Clone, Copy)]
struct Run {
    index: u64,
    pfn: u64,
    count: u64,
    order: u8,
}

impl From<FolioRun> for Run {
    fn from(r: FolioRun) -> Self {
        Run {
            index: r.index,
            pfn: r.pfn,
            count: r.count,
            order: r.order,
        }
    }
}

/// Runs handed to `fdbox_memfd_fill` at once: many, so that scattered single-page runs keep
/// every CPU busy; bounded, so that the copy stays small (512 KiB).
const FILL_RUNS: usize = 16_384;

/// `struct fdbox_memfd_slot`: a referenced folio and where it is.
#[repr(C)]
#[derive(Clone, Copy)]
struct Slot {
    folio: *mut bindings::folio,
    index: u64,
    pfn: u64,
    order: u8,
}

impl Slot {
    const EMPTY: Slot = Slot {
        folio: core::ptr::null_mut(),
        index: 0,
        pfn: 0,
        order: 0,
    };
}

/// The `F_SEAL_*` bits this version carries (`F_SEAL_SEAL` … `F_SEAL_EXEC`).
const KNOWN_SEALS: u32 = 0x3f;

/// Longest name `memfd_create()` accepts, without the `memfd:` prefix (`MFD_NAME_MAX_LEN`).
const NAME_MAX: usize = 249;

/// What the module did since it was loaded: `/sys/kernel/debug/fdbox_memfd/stats`, which
/// the tests read to see what happened to the folios.
struct Stats {
    /// Folios referenced by `ADD` and `SEAL`.
    held: AtomicU64,
    /// Of those, large (THP) folios.
    held_large: AtomicU64,
    /// Of those, folios migrated out of KHO scratch or `ZONE_MOVABLE` first.
    migrated: AtomicU64,
    /// Folios that were fallocated but never written, zeroed before preservation.
    zeroed: AtomicU64,
    /// Folios that filled holes between `ADD` and `SEAL`, picked up at `SEAL`.
    late: AtomicU64,
    /// Folios preserved with KHO by `SEAL`.
    preserved: AtomicU64,
    /// The runs they were preserved in.
    preserved_runs: AtomicU64,
    /// Folios put back into a memfd after the kexec.
    restored: AtomicU64,
    /// Of those, large (THP) folios.
    restored_large: AtomicU64,
    /// Preserved folios freed by `DISCARD` or a failed restore.
    freed: AtomicU64,
    /// Payloads whose memory KHO did not preserve as they say: refused at `RETRIEVE` or
    /// `DISCARD`, the rest of their memory left reserved.
    refused: AtomicU64,
}

static STATS: Stats = Stats {
    held: AtomicU64::new(0),
    held_large: AtomicU64::new(0),
    migrated: AtomicU64::new(0),
    zeroed: AtomicU64::new(0),
    late: AtomicU64::new(0),
    preserved: AtomicU64::new(0),
    preserved_runs: AtomicU64::new(0),
    restored: AtomicU64::new(0),
    restored_large: AtomicU64::new(0),
    freed: AtomicU64::new(0),
    refused: AtomicU64::new(0),
};

/// Adds `n` to a counter.
fn count(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// The `stats` file.
struct StatsView;

impl TextWriter for StatsView {
    fn write(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = &STATS;
        for (name, v) in [
            ("held", &s.held),
            ("held_large", &s.held_large),
            ("migrated", &s.migrated),
            ("zeroed", &s.zeroed),
            ("late", &s.late),
            ("preserved", &s.preserved),
            ("preserved_runs", &s.preserved_runs),
            ("restored", &s.restored),
            ("restored_large", &s.restored_large),
            ("freed", &s.freed),
            ("refused", &s.refused),
        ] {
            writeln!(f, "{name} {}", v.load(Ordering::Relaxed))?;
        }
        Ok(())
    }
}

/// A folio a prepared memfd holds a reference on, dropped with it.
///
/// # Invariants
///
/// `folio` is referenced by this value, and sits at page index `index` of a frozen memfd,
/// where it stays while referenced, at page frame `pfn`, of order `order`.
struct Held {
    folio: NonNull<bindings::folio>,
    index: u64,
    pfn: u64,
    order: u8,
}

// SAFETY: A folio reference may be dropped from any thread.
unsafe impl Send for Held {}
// SAFETY: `&Held` gives no access to the folio.
unsafe impl Sync for Held {}

impl Held {
    /// The folio as one run of the payload.
    fn run(&self) -> FolioRun {
        FolioRun {
            index: self.index,
            pfn: self.pfn,
            order: self.order,
            count: 1,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // SAFETY: By the type invariants, this value holds the reference.
        unsafe { fdbox_memfd_put(self.folio.as_ptr()) };
    }
}

/// Held folios in file order, in page-sized chunks: a memfd of a million folios never
/// reallocates and copies its list of folios, nor needs one large allocation. Beside them,
/// the runs they form, kept as folios are pushed, so that `SEAL` costs the runs and not the
/// folios: a run takes as much memory as a held folio, and there are as many only when no two
/// folios are physically contiguous.
#[derive(Default)]
struct HeldList {
    chunks: KVVec<KVec<Held>>,
    runs: KVVec<FolioRun>,
}

/// The iterator of [`HeldList::iter`].
type HeldIter<'a> = core::iter::Flatten<core::slice::Iter<'a, KVec<Held>>>;

impl HeldList {
    /// Folios per chunk: a page's worth.
    const CHUNK: usize = kernel::page::PAGE_SIZE / core::mem::size_of::<Held>();

    /// Appends `held`, which comes after every folio held so far in file order; on error it
    /// is dropped (released).
    fn push(&mut self, held: Held) -> Result {
        let run = held.run();
        let full = self.chunks.last().is_none_or(|c| c.len() == c.capacity());
        if full {
            let chunk = KVec::with_capacity(Self::CHUNK, GFP_KERNEL_ACCOUNT)?;
            self.chunks.push(chunk, GFP_KERNEL_ACCOUNT)?;
        }
        self.push_run(run)?;
        match self.chunks.last_mut() {
            Some(chunk) => chunk.push_within_capacity(held).map_err(|_| ENOMEM),
            None => Err(ENOMEM),
        }
    }

    fn iter(&self) -> HeldIter<'_> {
        self.chunks.iter().flatten()
    }

    fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.len()).sum()
    }

    /// Extends the last run by `run`, which comes after it in file order, or appends it.
    fn push_run(&mut self, run: FolioRun) -> Result {
        if !self.runs.last_mut().is_some_and(|last| last.extend(&run)) {
            self.runs.push(run, GFP_KERNEL_ACCOUNT)?;
        }
        Ok(())
    }

    /// The held folios as coalesced runs, in file order.
    fn runs(&self) -> &[FolioRun] {
        &self.runs
    }

    /// Appends `other`, whose folios all come after this list's in file order; on error
    /// what is not appended is dropped (released).
    fn append(&mut self, mut other: HeldList) -> Result {
        self.chunks
            .reserve(other.chunks.len(), GFP_KERNEL_ACCOUNT)?;
        self.runs.reserve(other.runs.len(), GFP_KERNEL_ACCOUNT)?;
        for &run in other.runs.iter() {
            // Reserved above: this can't fail.
            self.push_run(run)?;
        }
        for chunk in other.chunks.drain_all() {
            let _ = self.chunks.push_within_capacity(chunk);
        }
        Ok(())
    }
}

/// Runs of folios preserved with KHO, unpreserved on drop.
///
/// # Invariants
///
/// Each run is preserved with `fdbox_memfd_preserve_run()`, and its folios are held by the
/// same [`Prepared`] for as long as this value lives.
struct Preserved(KVVec<FolioRun>);

impl Preserved {
    /// Preserves `runs`, each the unit restore takes back.
    fn new(runs: &[FolioRun]) -> Result<Preserved> {
        let mut preserved = Preserved(KVVec::with_capacity(runs.len(), GFP_KERNEL_ACCOUNT)?);
        for &run in runs {
            // SAFETY: The run's folios are referenced by the caller's `Prepared`.
            to_result(unsafe { fdbox_memfd_preserve_run(run.pfn, run.order, run.count) })?;
            // INVARIANT: Preserved just now; room was made above.
            if preserved.0.push_within_capacity(run).is_err() {
                // SAFETY: Preserved just above.
                unsafe { fdbox_memfd_unpreserve_run(run.pfn, run.order, run.count) };
                return Err(ENOMEM);
            }
        }
        count(&STATS.preserved, runs.iter().map(|r| r.count).sum());
        count(&STATS.preserved_runs, runs.len() as u64);
        Ok(preserved)
    }
}

impl Drop for Preserved {
    fn drop(&mut self) {
        for run in self.0.iter() {
            // SAFETY: By the type invariants, the run is preserved and its folios held.
            unsafe { fdbox_memfd_unpreserve_run(run.pfn, run.order, run.count) };
        }
    }
}

/// A prepared memfd.
struct Prepared {
    /// What `SEAL` preserved; dropped (unpreserved) before the folios are released.
    preserved: Option<Preserved>,
    /// The folios found at `ADD`, by index.
    held: HeldList,
    /// The folios that filled holes between `ADD` and `SEAL`, by index; empty unless sealed.
    late: HeldList,
    /// Whether the mapping was unevictable before `ADD` made it so, to be put back.
    was_unevictable: bool,
}

/// The handler.
struct MemfdHandler;

/// Whether `file` is a memfd, a hugetlb memfd, or neither.
fn kind(file: &File) -> c_int {
    // SAFETY: `file` is valid.
    unsafe { fdbox_memfd_kind(file.as_ptr()) }
}

/// Walks `file`'s page cache and holds every folio below its size that `known` (sorted by
/// index) doesn't hold already, appending them to `out` in index order.
fn collect(file: &File, known: &HeldList, out: &mut HeldList) -> Result {
    collect_range(file, known, out, 0..u64::MAX)
}

/// The least work of a share of [`collect_spread`], in folios walked (see
/// `fdbox_memfd_walk_cost`): enough that a worker's start-up is a small part of its share. A
/// THP-backed memfd has few folios, each about as cheap to walk as a small one, and is walked
/// by the caller alone up to 16 GiB, unless its folios must move out of KHO scratch.
const SHARE_FOLIOS: u64 = 8192;

/// Shares of [`collect_spread`] per online CPU, so that a CPU slowed down (by migrations out
/// of KHO scratch, say) holds the others up less.
const SHARES_PER_CPU: u64 = 4;

/// The most shares of [`collect_spread`].
const MAX_SHARES: u64 = 64;

/// One share of [`collect_spread`]: the folios whose first page lies in `pages`. The last
/// share runs to the end of the page cache, past the size, as [`collect`] does.
struct Share {
    pages: core::ops::Range<u64>,
    held: Result<HeldList>,
}

/// What the workers of [`collect_spread`] share: the file, read by all of them at once, and
/// the shares, each written by one and then taken by the caller.
struct Spread<'a> {
    file: &'a File,
    shares: *mut Share,
}

// The workers' access: `File` is `Sync`, and a `HeldList` built in a worker is dropped, or
// joined, by the caller.
const _: () = {
    const fn sync<T: Sync + ?Sized>() {}
    const fn send<T: Send>() {}
    sync::<File>();
    send::<HeldList>();
};

/// The work of [`collect_spread`] on share `i`, on any CPU, beside the other shares' work.
///
/// # Safety
///
/// `ctx` must point to a [`Spread`] whose `shares` holds more than `i` shares, valid for the
/// call; no other call may have the same `i`, and nothing else may touch share `i`, until this
/// call returns. Other calls may run concurrently, on other shares.
unsafe extern "C" fn collect_share(ctx: *mut c_void, i: c_uint) {
    // SAFETY: By the safety requirements.
    let spread = unsafe { &*ctx.cast::<Spread<'_>>() };
    // SAFETY: By the safety requirements, share `i` exists and is this call's alone.
    let share = unsafe { &mut *spread.shares.add(i as usize) };
    let mut held = HeldList::default();
    share.held = collect_range(
        spread.file,
        &HeldList::default(),
        &mut held,
        share.pages.clone(),
    )
    .map(|()| held);
}

/// [`collect`] for a memfd that holds nothing yet, its page range shared out among every
/// online CPU if it holds enough folios.
fn collect_spread(file: &File, out: &mut HeldList) -> Result {
    // SAFETY: `file` is valid.
    let pages = unsafe { fdbox_memfd_size(file.as_ptr()) }.div_ceil(bindings::PAGE_SIZE as u64);
    // SAFETY: No requirements.
    let cpus = u64::from(unsafe { fdbox_memfd_cpus() });
    if cpus < 2 || pages / SHARE_FOLIOS < 2 {
        return collect(file, &HeldList::default(), out);
    }
    // SAFETY: `file` is valid.
    let cost = unsafe { fdbox_memfd_walk_cost(file.as_ptr()) };
    let n = (cost / SHARE_FOLIOS)
        .min(cpus * SHARES_PER_CPU)
        .min(MAX_SHARES);
    if n < 2 {
        return collect(file, &HeldList::default(), out);
    }
    // No folio crosses a boundary: one that did would be referenced by two shares at once,
    // and fail the migration the other share may need.
    // SAFETY: No requirements.
    let align = unsafe { fdbox_memfd_max_folio_pages() }.max(1);
    let boundary = |i: u64| {
        if i == n {
            u64::MAX
        } else {
            i * pages / n / align * align
        }
    };
    let mut shares: KVec<Share> = KVec::with_capacity(n as usize, GFP_KERNEL)?;
    for i in 0..n {
        let pages = boundary(i)..boundary(i + 1);
        shares
            .push_within_capacity(Share {
                pages,
                // Every share is collected: `fdbox_memfd_spread` runs each index once.
                held: Err(EINVAL),
            })
            .map_err(|_| ENOMEM)?;
    }
    let spread = Spread {
        file,
        shares: shares.as_mut_ptr(),
    };
    // SAFETY: `spread` and its shares outlive the call, which runs `collect_share` once per
    // share and returns when all are done; the workers only read `spread` itself.
    unsafe {
        fdbox_memfd_spread(
            // CAST: At most `MAX_SHARES`.
            n as c_uint,
            collect_share,
            (&raw const spread).cast_mut().cast(),
        )
    };
    for share in shares.drain_all() {
        out.append(share.held?)?;
    }
    Ok(())
}

/// [`collect`] of the folios whose first page lies in `pages`.
fn collect_range(
    file: &File,
    known: &HeldList,
    out: &mut HeldList,
    pages: core::ops::Range<u64>,
) -> Result {
    let f = file.as_ptr();
    // SAFETY: `file` is valid.
    let size = unsafe { fdbox_memfd_size(f) };
    let mut start: u64 = pages.start;
    let mut known = known.iter().peekable();
    let mut batch = [Slot::EMPTY; BATCH];
    let (mut held, mut large, mut migrated_all, mut zeroed_all) = (0u64, 0u64, 0u64, 0u64);
    let result = 'walk: loop {
        // SAFETY: `file` is valid, `batch` has room for `BATCH` slots.
        let n = unsafe { fdbox_memfd_grab(f, &mut start, pages.end, batch.as_mut_ptr()) } as usize;
        let Some(grabbed) = batch.get_mut(..n).filter(|b| !b.is_empty()) else {
            break Ok(());
        };
        // Keep the new folios below the size at the front of the batch.
        let mut kept = 0;
        for i in 0..grabbed.len() {
            let Some(&slot) = grabbed.get(i) else {
                break;
            };
            while known.next_if(|h| h.index < slot.index).is_some() {}
            let past_end = slot
                .index
                .checked_mul(bindings::PAGE_SIZE as u64)
                .is_none_or(|b| b >= size);
            let before = slot.index < pages.start;
            if past_end || before || known.peek().is_some_and(|h| h.folio.as_ptr() == slot.folio) {
                // Fallocated past the end: no data. Or held already, or by the share before.
                // SAFETY: `grab` handed us this reference.
                unsafe { fdbox_memfd_put(slot.folio) };
                continue;
            }
            // `kept <= i`, so the slot exists.
            if let Some(to) = grabbed.get_mut(kept) {
                *to = slot;
                kept += 1;
            }
        }
        let Some(kept) = grabbed.get_mut(..kept).filter(|k| !k.is_empty()) else {
            continue;
        };
        let (mut migrated, mut zeroed) = (0, 0);
        // SAFETY: `kept` holds referenced folios of `file` in ascending file order; on error
        // `settle` has dropped every reference.
        let settled = to_result(unsafe {
            fdbox_memfd_settle(
                f,
                kept.as_mut_ptr(),
                // CAST: At most `BATCH`.
                kept.len() as c_uint,
                &mut migrated,
                &mut zeroed,
            )
        });
        if let Err(err) = settled {
            break Err(err);
        }
        migrated_all += u64::from(migrated);
        zeroed_all += u64::from(zeroed);
        for (i, slot) in kept.iter().enumerate() {
            let Some(folio) = NonNull::new(slot.folio) else {
                put_all(kept.get(i + 1..).unwrap_or(&[]));
                break 'walk Err(EINVAL);
            };
            // INVARIANT: `folio` is referenced, at `slot.index` of a frozen memfd (migration
            // keeps the index), and `settle` left its frame and order in the slot.
            let h = Held {
                folio,
                index: slot.index,
                pfn: slot.pfn,
                order: slot.order,
            };
            large += u64::from(h.order > 0);
            held += 1;
            if let Err(err) = out.push(h) {
                put_all(kept.get(i + 1..).unwrap_or(&[]));
                break 'walk Err(err);
            }
        }
    };
    count(&STATS.held, held);
    count(&STATS.held_large, large);
    count(&STATS.migrated, migrated_all);
    count(&STATS.zeroed, zeroed_all);
    result
}

/// Drops the references to the folios of `slots`.
fn put_all(slots: &[Slot]) {
    for slot in slots {
        // SAFETY: The caller owns these references.
        unsafe { fdbox_memfd_put(slot.folio) };
    }
}

/// The folios of `a` and `b` (each sorted by index, disjoint) as runs, in index order.
#[derive(Clone)]
struct MergedRuns<'a> {
    a: core::iter::Peekable<HeldIter<'a>>,
    b: core::iter::Peekable<HeldIter<'a>>,
}

impl Iterator for MergedRuns<'_> {
    type Item = FolioRun;

    fn next(&mut self) -> Option<FolioRun> {
        let take_a = match (self.a.peek(), self.b.peek()) {
            (Some(a), Some(b)) => a.index < b.index,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let next = if take_a { self.a.next() } else { self.b.next() };
        next.map(Held::run)
    }
}

/// `runs`, coalesced.
fn coalesced(runs: impl Iterator<Item = FolioRun>) -> Result<KVVec<FolioRun>> {
    let mut out = KVVec::new();
    for run in memfd::Coalesce::new(runs) {
        out.push(run, GFP_KERNEL)?;
    }
    Ok(out)
}

impl Prepared {
    /// Every held folio, from `ADD` and late, as a run of one, in index order.
    fn merged(&self) -> MergedRuns<'_> {
        MergedRuns {
            a: self.held.iter().peekable(),
            b: self.late.iter().peekable(),
        }
    }

    /// Whether the folios below `file`'s size are exactly the held ones: no hole filled, and
    /// nothing is in swap. A walk without references, much cheaper than [`collect`].
    fn holds_exactly(&self, file: &File) -> bool {
        // `SEAL` picks late folios up anew each time: none are held before it walks.
        if self.late.len() != 0 {
            return false;
        }
        let mut expected = self.held.iter();
        let ctx = (&raw mut expected).cast::<c_void>();
        // SAFETY: `file` is a prepared memfd; `ctx` is the iterator `is_next` expects, valid
        // and exclusive for the call.
        let only_held = unsafe { fdbox_memfd_only_held(file.as_ptr(), is_next, ctx) };
        only_held && expected.next().is_none()
    }
}

/// The iterator of [`Prepared::holds_exactly`].
type Expected<'a> = HeldIter<'a>;

/// `next_held` of `fdbox_memfd_only_held`: whether `folio` is the next held folio.
///
/// # Safety
///
/// `ctx` must point to an [`Expected`] exclusive to the call.
unsafe extern "C" fn is_next(ctx: *mut c_void, folio: *mut bindings::folio) -> bool {
    // SAFETY: By the safety requirements.
    let expected = unsafe { &mut *ctx.cast::<Expected<'_>>() };
    expected
        .next()
        .is_some_and(|h| core::ptr::eq(h.folio.as_ptr(), folio))
}

/// Refuses a memfd with swapped-out pages: a page-cache walk doesn't see them.
///
/// Called after a walk: a page the walk missed because it was in swap is either still there,
/// and refused here, or came back before this check as a new folio, which `SEAL`'s walk (under
/// the ban on new folios) then sees. From `ADD` on the mapping is unevictable; only a swap-out
/// that reclaim began before can still complete after `ADD`, and `SEAL` refuses the memfd
/// then (`EAGAIN`) until the page is touched.
fn check_swapped(file: &File) -> Result {
    // SAFETY: `file` is valid.
    if unsafe { fdbox_memfd_swapped(file.as_ptr()) } != 0 {
        pr_info!("a memfd with pages in swap can't be preserved; fault them in first\n");
        return Err(EAGAIN);
    }
    Ok(())
}

/// The memfd's name, without the `memfd:` prefix.
fn name_of(file: &File) -> Result<&str> {
    // SAFETY: `file` is a memfd (checked by the caller), whose name can't change while it is
    // referenced; the name is NUL-terminated.
    let name = unsafe { CStr::from_char_ptr(fdbox_memfd_name(file.as_ptr())) };
    name.to_str().map_err(|_| {
        pr_info!("a memfd whose name is not UTF-8 can't be preserved\n");
        EINVAL
    })
}

crate::fdbox_handler_modinfo!(MemfdHandler);

#[vtable]
impl Preservable for MemfdHandler {
    type State = Prepared;

    const COMPATIBLE: &'static CStr = c"memfd";
    const VERSION: u32 = memfd::PAYLOAD_VERSION;
    const MIN_VERSION: u32 = memfd::SHMEM_VERSION;

    fn can_preserve(file: &File) -> bool {
        matches!(kind(file), KIND_SHMEM | KIND_HUGETLB)
    }

    fn prepare(file: &File, _deps: &mut Dependencies<'_>) -> Result<Prepared> {
        name_of(file)?;
        // SAFETY: `file` is a memfd.
        if unsafe { fdbox_memfd_gigantic(file.as_ptr()) } {
            // Its restore would need a free 1 GiB page in the new kernel's pool, and a kernel
            // that KHO boots with one preserved gets none: KHO makes every other free 1 GiB
            // block scratch before hugetlb reserves its boot pages, and scratch is CMA, which
            // alloc_contig_pages() doesn't take at runtime.
            pr_info!("1 GiB hugetlb pages can't be carried: the kernel KHO boots can't reserve any to restore them into\n");
            return Err(EOPNOTSUPP);
        }
        let mut was_unevictable = false;
        // SAFETY: `file` is a memfd; `was_unevictable` is valid for writes.
        to_result(unsafe { fdbox_memfd_freeze(file.as_ptr(), &mut was_unevictable) })?;
        let mut prepared = Prepared {
            preserved: None,
            held: HeldList::default(),
            late: HeldList::default(),
            was_unevictable,
        };
        // The swap check comes after the walk: see `check_swapped`. A hugetlb memfd has few
        // folios, and one may cross any boundary the shares of `collect_spread` could use.
        let collected = if kind(file) == KIND_HUGETLB {
            collect(file, &HeldList::default(), &mut prepared.held)
        } else {
            collect_spread(file, &mut prepared.held)
        };
        let result = collected.and_then(|()| check_swapped(file));
        if let Err(err) = result {
            drop(prepared);
            // SAFETY: Frozen above.
            unsafe { fdbox_memfd_thaw(file.as_ptr(), was_unevictable) };
            return Err(err);
        }
        Ok(prepared)
    }

    fn unprepare(file: &File, mut prepared: Prepared) {
        prepared.preserved = None;
        let was_unevictable = prepared.was_unevictable;
        drop(prepared);
        let f = file.as_ptr();
        // SAFETY: `prepare` froze the memfd; forbidding is undone too, in case a `SEAL` was
        // not followed by its `unserialize`.
        unsafe {
            let _ = fdbox_memfd_forbid_new(f, false);
            fdbox_memfd_thaw(f, was_unevictable);
        }
    }

    fn serialize(file: &File, prepared: &mut Prepared, out: &mut Payload<'_>) -> Result<u32> {
        let f = file.as_ptr();
        // SAFETY: `file` is a prepared memfd.
        to_result(unsafe { fdbox_memfd_forbid_new(f, true) })?;
        let result = write_payload(file, prepared, out);
        if result.is_err() {
            Self::unserialize(file, prepared);
        }
        result
    }

    fn unserialize(file: &File, prepared: &mut Prepared) {
        // Unpreserved before the late folios go.
        prepared.preserved = None;
        prepared.late = HeldList::default();
        // SAFETY: `file` is a prepared memfd; allowing again can't fail.
        let _ = unsafe { fdbox_memfd_forbid_new(file.as_ptr(), false) };
    }

    fn restore(version: u32, payload: &[u8], _deps: &RestoredDeps<'_>) -> Result<ARef<File>> {
        // The core checked the payload when it took the hand-over over.
        let view = memfd::decode_version(payload, 0, version).map_err(|_| EINVAL)?;
        rebuild(&view)
    }

    fn discard(version: u32, payload: &[u8]) {
        // A hugetlb memfd's folios were never in this kernel's pool: they go back to the
        // buddy allocator, and the pool's counters don't change.
        if let Ok(view) = memfd::decode_version(payload, 0, version) {
            free_runs(view.runs().map(Run::from));
        }
    }

    fn settle(file: &File, flags: u32) -> Result<Settled> {
        if kind(file) != KIND_SHMEM {
            return Err(EOPNOTSUPP);
        }
        let mut settled = Settled::default();
        // SAFETY: `file` is a shmem memfd; the counters are valid for writes.
        to_result(unsafe {
            fdbox_memfd_settle_file(
                file.as_ptr(),
                flags & SETTLE_NOW != 0,
                flags & SETTLE_FUTURE != 0,
                &mut settled.unsettled,
                &mut settled.migrated,
            )
        })?;
        Ok(settled)
    }
}

/// Captures the final folio set of a memfd that forbids new folios, and writes its payload.
///
/// Every page that holds data is then in the payload, or this fails: no folio can appear
/// after the walk (new folios are forbidden), none of those below the size can leave (they
/// are held, the size is frozen, and the mapping is unevictable), and none was in swap at
/// the walk (checked after it). Every folio below the size is looked at, never a count: no
/// count of the page cache can prove that nothing changed, as `ftruncate` to the same size
/// drops pages past the end while a hole fills below it. Returns the payload version written.
fn write_payload(file: &File, prepared: &mut Prepared, out: &mut Payload<'_>) -> Result<u32> {
    let f = file.as_ptr();
    // SAFETY: `file` is valid.
    let huge_shift = unsafe { fdbox_memfd_huge_shift(f) };
    // Version 1, which a shmem memfd is written at anyway, has no page size of its own.
    if huge_shift != 0 && out.max_version() < memfd::PAYLOAD_VERSION {
        pr_info!(
            "a hugetlb memfd needs payload version {}; this box allows {}\n",
            memfd::PAYLOAD_VERSION,
            out.max_version()
        );
        return Err(EOPNOTSUPP);
    }
    // The usual case, no hole filled since `ADD`, is settled by a walk without references; any
    // difference takes the full walk, which holds what is new.
    if !prepared.holds_exactly(file) {
        collect(file, &prepared.held, &mut prepared.late)?;
        count(&STATS.late, prepared.late.len() as u64);
    }
    check_swapped(file)?;
    // SAFETY: `file` is valid.
    let seals = unsafe { fdbox_memfd_seals(f) };
    let seals = u32::try_from(seals).map_err(|_| EINVAL)?;
    if seals & !KNOWN_SEALS != 0 {
        pr_info!("memfd seals {seals:#x} include some this version can't carry\n");
        return Err(EOPNOTSUPP);
    }
    let head = MemfdHead {
        // SAFETY: `file` is valid.
        size: unsafe { fdbox_memfd_size(f) },
        // SAFETY: `file` is valid.
        pos: unsafe { fdbox_memfd_pos(f) },
        seals,
        // CAST: The page shift is 12 to 16.
        page_shift: bindings::PAGE_SHIFT as u8,
        huge_shift,
        name: name_of(file)?,
    };
    // Folios that filled holes since `ADD` interleave with the held ones: their runs are
    // worked out anew, in one pass.
    let merged;
    let runs = if prepared.late.len() == 0 {
        prepared.held.runs()
    } else {
        merged = coalesced(prepared.merged())?;
        &merged[..]
    };
    let plan = memfd::plan(&head, runs.iter().copied()).map_err(|_| EINVAL)?;
    let mut bytes = KVVec::from_elem(0u8, plan.len, GFP_KERNEL)?;
    memfd::encode_planned(
        &mut Writer::new(&mut bytes),
        &head,
        &plan,
        runs.iter().copied(),
    )
    .map_err(|_| EINVAL)?;
    prepared.preserved = Some(Preserved::new(runs)?);
    out.write(&bytes)?;
    Ok(head.version())
}

/// Frees the preserved folios of `runs`, each block checked against KHO first. At the first
/// block KHO did not preserve as the payload says, it stops: nothing more the payload names
/// is trusted, and the rest stays reserved until the next kexec.
fn free_runs(runs: impl Iterator<Item = Run>) {
    let Ok(mut batch) = fill_batch(&runs) else {
        // One run at a time, without the batch.
        for run in runs {
            if fill(core::ptr::null_mut(), &[run]).is_err() {
                return;
            }
        }
        return;
    };
    let mut runs = runs;
    while next_batch(&mut runs, &mut batch) {
        if fill(core::ptr::null_mut(), &batch).is_err() {
            return;
        }
    }
}

/// An empty batch for `runs`: room for all of them, up to [`FILL_RUNS`].
fn fill_batch(runs: &impl Iterator<Item = Run>) -> Result<KVVec<Run>> {
    let most = runs.size_hint().1.unwrap_or(FILL_RUNS);
    Ok(KVVec::with_capacity(most.clamp(1, FILL_RUNS), GFP_KERNEL)?)
}

/// Refills `batch` from `runs`; false when there is none left.
fn next_batch(runs: &mut impl Iterator<Item = Run>, batch: &mut KVVec<Run>) -> bool {
    batch.clear();
    for run in runs.by_ref() {
        if batch.push_within_capacity(run).is_err() {
            break;
        }
        if batch.len() == batch.capacity() {
            break;
        }
    }
    !batch.is_empty()
}

/// Puts `runs` into memfd `file`'s page cache, or frees them if `file` is null, on every
/// online CPU; counts what was done. `EIO` when memory was not preserved as a run says: that
/// run is reported, and nothing more is claimed.
fn fill(file: *mut bindings::file, runs: &[Run]) -> Result {
    let mut refused_run = usize::MAX;
    let mut inserted = 0u64;
    // SAFETY: `file` is null or a memfd this module created; the runs come from a payload the
    // core checked (RAM, no page named twice), and `fill` claims only the blocks KHO preserved
    // as they say; the out-pointers are valid for writes.
    let ret = unsafe {
        fdbox_memfd_fill(
            file,
            runs.as_ptr(),
            runs.len(),
            &mut refused_run,
            &mut inserted,
        )
    };
    let result = to_result(ret);
    if result == Err(EIO) {
        match runs.get(refused_run) {
            Some(run) => refused(run),
            None => {
                count(&STATS.refused, 1);
                pr_err!("preserved memory doesn't match its record: the rest is left reserved until the next kexec\n");
            }
        }
    }
    if result.is_ok() {
        for run in runs {
            let done = if file.is_null() {
                &STATS.freed
            } else {
                &STATS.restored
            };
            count(done, run.count);
            if run.order > 0 && !file.is_null() {
                count(&STATS.restored_large, run.count);
            }
        }
    }
    result
}

/// Reports a run whose memory KHO did not preserve as it says.
fn refused(run: &Run) {
    count(&STATS.refused, 1);
    pr_err!(
        "preserved memory doesn't match its record (run of {} order-{} folios at page frame {:#x}): the rest is left reserved until the next kexec\n",
        run.count,
        run.order,
        run.pfn
    );
}

/// Builds the memfd of a decoded payload. On error every preserved folio is freed.
fn rebuild(view: &memfd::MemfdView<'_>) -> Result<ARef<File>> {
    let head = &view.head;
    const PREFIX: &[u8] = b"memfd:";
    let mut name = [0u8; PREFIX.len() + NAME_MAX + 1];
    // Room for the prefix, the name and a NUL; a NUL inside would cut the name short.
    let fits = head.name.len() <= NAME_MAX && !head.name.as_bytes().contains(&0);
    let (prefix, rest) = name.split_at_mut(PREFIX.len());
    match rest.get_mut(..head.name.len()) {
        Some(dst) if fits => {
            prefix.copy_from_slice(PREFIX);
            dst.copy_from_slice(head.name.as_bytes());
        }
        _ => {
            free_runs(view.runs().map(Run::from));
            return Err(EINVAL);
        }
    }
    let Ok(mut batch) = fill_batch(&view.runs().map(Run::from)) else {
        free_runs(view.runs().map(Run::from));
        return Err(ENOMEM);
    };
    let file = if head.huge_shift == 0 {
        // SAFETY: `name` is NUL-terminated.
        unsafe { fdbox_memfd_create(name.as_ptr().cast(), head.size, head.pos, view.pages) }
    } else {
        // SAFETY: `name` is NUL-terminated.
        unsafe {
            fdbox_memfd_create_huge(name.as_ptr().cast(), head.size, head.pos, head.huge_shift)
        }
    };
    let file = match kernel::error::from_err_ptr(file) {
        Ok(file) => file,
        // An LSM refused this retriever the memfd, or its limits can't take it: nothing is
        // consumed yet, and the entry stays pending (`Preservable::restore`).
        Err(err) if err == EACCES || err == ENOSPC => return Err(err),
        Err(err) => {
            free_runs(view.runs().map(Run::from));
            return Err(consumed(err));
        }
    };
    // SAFETY: `fdbox_memfd_create*` returned a new reference; `File` is transparent.
    let file: ARef<File> = unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast::<File>())) };
    let f = file.as_ptr();
    if head.huge_shift != 0 {
        if let Err(err) = reserve_huge(&file, view) {
            // Dropping the file frees the pool folios and their reservations: nothing
            // preserved is claimed yet.
            drop(file);
            if err == ENOSPC {
                pr_info!(
                    "hugetlb memfd \"{}\": {} huge pages don't fit in this caller's hugetlb pool or limits; the entry stays restorable\n",
                    head.name,
                    view.folios
                );
                return Err(err);
            }
            if err == EINTR {
                return Err(err);
            }
            free_runs(view.runs().map(Run::from));
            return Err(consumed(err));
        }
    }
    let mut runs = view.runs().map(Run::from);
    let mut inserted = Ok(());
    while next_batch(&mut runs, &mut batch) {
        inserted = fill(f, &batch);
        if inserted.is_err() {
            break;
        }
    }
    // SAFETY: `f` is the new memfd, charged for `view.pages` by `fdbox_memfd_create`.
    unsafe { fdbox_memfd_finish(f, view.pages) };
    match inserted {
        // Nothing more this payload names is trusted.
        Err(EIO) => return Err(EIO),
        Err(err) => {
            free_runs(runs);
            return Err(consumed(err));
        }
        Ok(()) => {}
    }
    // SAFETY: `f` is the new memfd.
    to_result(unsafe { fdbox_memfd_add_seals(f, head.seals) }).map_err(consumed)?;
    Ok(file)
}

/// Gives the new hugetlb memfd `file` a pool folio, charged to the caller, at every index
/// `view` holds a folio: `ENOSPC` if the caller's pool or limits can't take them all.
fn reserve_huge(file: &File, view: &memfd::MemfdView<'_>) -> Result {
    let mut runs = KVVec::with_capacity(view.run_count as usize, GFP_KERNEL)?;
    for run in view.runs() {
        runs.push(Run::from(run), GFP_KERNEL)?;
    }
    // SAFETY: `file` is a new hugetlb memfd no user can reach; `runs` is valid for its length.
    to_result(unsafe { fdbox_memfd_reserve_huge(file.as_ptr(), runs.as_ptr(), runs.len()) })
}

/// The error of a restore that has consumed its entry: never `EACCES`, `EBUSY`, `ENOSPC` or
/// `EINTR`, which would tell the core the entry is still whole (`Preservable::restore`).
fn consumed(err: Error) -> Error {
    if err == EACCES || err == EBUSY || err == ENOSPC || err == EINTR {
        EIO
    } else {
        err
    }
}

#[pin_data]
struct MemfdModule {
    _debugfs: Dir,
    #[pin]
    _stats: DebugFile<StatsView>,
    #[pin]
    _handler: Registration<MemfdHandler>,
}

impl kernel::InPlaceModule for MemfdModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        pin_init::pin_init_scope(|| {
            // SAFETY: No requirements; called once, before the handler is registered.
            to_result(unsafe { fdbox_memfd_setup() })?;
            // debugfs is for inspection and tests only.
            let dir = Dir::new(c"fdbox_memfd");
            Ok(try_pin_init!(Self {
                _stats <- dir.read_only_file(c"stats", StatsView),
                _debugfs: dir,
                _handler <- Registration::<MemfdHandler>::register(),
            }))
        })
    }
}
