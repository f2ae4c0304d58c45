// SPDX-License-Identifier: GPL-2.0 OR MIT

//! A VMM in miniature, for `make demo`: what a real one does around a host kernel update.
//!
//! `fdbox-vmm-demo save`, in the old kernel:
//! 1. allocates sparse guest RAM in a memfd (THP where the kernel allows), and writes it;
//! 2. starts a "vCPU" thread that keeps writing to the RAM, holes included;
//! 3. boxes the RAM while the vCPU runs (`ADD`), then pauses the vCPU, as a VMM pauses its
//!    vCPUs before the kexec;
//! 4. boxes a second memfd with its own state (the vCPU's progress), seals, and exits.
//!
//! `fdbox-vmm-demo restore`, in the new kernel, retrieves both by name, maps them, checks
//! every byte of RAM against what the first instance wrote, and prints the timings.

use std::{
    ffi::c_void,
    fmt::Write as _,
    os::fd::{
        AsFd,
        BorrowedFd,
        OwnedFd, //
    },
    process::ExitCode,
    ptr::NonNull,
    sync::{
        atomic::{
            AtomicBool,
            AtomicU64,
            Ordering, //
        },
        Arc,
    },
    time::Instant,
};

use fdbox::{
    Device,
    Direction, //
};
use rustix::{
    fs::{
        self,
        MemfdFlags,
        SealFlags,
        SeekFrom, //
    },
    mm::{
        self,
        Advice,
        MapFlags,
        ProtFlags, //
    },
    time::{
        clock_gettime,
        ClockId, //
    },
};

const BOX: &str = "vmm-demo";
const RAM: &str = "guest-ram";
const STATE: &str = "vmm-state";
const PAGE: usize = 4096;
const REGION: usize = 2 << 20;
/// Guest RAM size.
const RAM_BYTES: usize = 256 << 20;
/// vCPU iterations to let run after `ADD` before pausing.
const VCPU_AFTER_ADD: u64 = 200_000;
/// One vCPU write in this many goes into a hole.
const HOLE_EVERY: u64 = 50_000;
/// Marks a word the vCPU wrote.
const VCPU_MARK: u64 = 0xc0de << 48;

type Result<T> = std::result::Result<T, String>;

/// Every fourth 2 MiB region is never written by the guest's boot: a hole.
fn populated(region: usize) -> bool {
    region % 4 != 3
}

/// Word `word` of page `page` as first written.
fn initial(page: usize, word: usize) -> u64 {
    ((page as u64) << 32 | word as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
}

/// The page the vCPU writes at iteration `iter`: RAM the guest uses, and now and then the
/// first page of a hole, which then needs a new folio.
fn vcpu_page(iter: u64) -> usize {
    const PAGES_PER_REGION: usize = REGION / PAGE;
    let regions = RAM_BYTES / REGION;
    if iter % HOLE_EVERY == HOLE_EVERY - 1 {
        let hole = (iter / HOLE_EVERY) as usize % (regions / 4);
        return (hole * 4 + 3) * PAGES_PER_REGION;
    }
    let n =
        (iter.wrapping_mul(2_654_435_761) % (regions / 4 * 3 * PAGES_PER_REGION) as u64) as usize;
    let (region, page) = (n / PAGES_PER_REGION, n % PAGES_PER_REGION);
    (region / 3 * 4 + region % 3) * PAGES_PER_REGION + page
}

/// A shared mapping of a whole memfd, unmapped on drop.
struct Mapping {
    ptr: NonNull<u64>,
    len: usize,
}

// SAFETY: The mapping is plain shared memory; the threads coordinate their own accesses.
unsafe impl Send for Mapping {}
// SAFETY: As above.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize) -> Result<Mapping> {
        // SAFETY: A fresh shared mapping of `len` bytes of `fd`, placed by the kernel.
        let ptr = unsafe {
            mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )
        }
        .map_err(|e| format!("mmap: {e}"))?;
        let ptr = NonNull::new(ptr.cast::<u64>()).ok_or("mmap returned NULL")?;
        Ok(Mapping { ptr, len })
    }

    /// Writes `v` to word `i`; the vCPU and the main thread may both write.
    fn store(&self, i: usize, v: u64) {
        assert!(i < self.len / 8);
        // SAFETY: `i` is inside the mapping; volatile because another thread reads it.
        unsafe { self.ptr.as_ptr().add(i).write_volatile(v) };
    }

    fn load(&self, i: usize) -> u64 {
        assert!(i < self.len / 8);
        // SAFETY: As above.
        unsafe { self.ptr.as_ptr().add(i).read_volatile() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: The mapping was made by `Mapping::new` with this length.
        let _ = unsafe { mm::munmap(self.ptr.as_ptr().cast::<c_void>(), self.len) };
    }
}

fn now_ns() -> u64 {
    let t = clock_gettime(ClockId::Realtime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// One counter of fdbox_memfd's debugfs statistics, if readable.
fn memfd_stat(key: &str) -> Option<u64> {
    let stats = std::fs::read_to_string("/sys/kernel/debug/fdbox_memfd/stats").ok()?;
    stats
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

fn save() -> Result<()> {
    let dev = Device::open().map_err(|e| format!("/dev/fdbox: {e}"))?;
    let caps = dev.caps().map_err(|e| format!("GET_CAPS: {e}"))?;
    if caps.handler("memfd").is_none() {
        return Err("no memfd handler registered: load fdbox_memfd.ko".into());
    }

    let ram: OwnedFd =
        fs::memfd_create(RAM, MemfdFlags::CLOEXEC).map_err(|e| format!("memfd_create: {e}"))?;
    fs::ftruncate(&ram, RAM_BYTES as u64).map_err(|e| format!("ftruncate: {e}"))?;
    let map = Arc::new(Mapping::new(ram.as_fd(), RAM_BYTES)?);
    // THP where the kernel allows it (shmem_enabled=advise); 4 KiB pages otherwise.
    // SAFETY: Advice only, on our own mapping.
    let _ = unsafe { mm::madvise(map.ptr.as_ptr().cast(), RAM_BYTES, Advice::LinuxHugepage) };
    let t = Instant::now();
    for region in (0..RAM_BYTES / REGION).filter(|&r| populated(r)) {
        for page in region * REGION / PAGE..(region + 1) * REGION / PAGE {
            for word in 0..PAGE / 8 {
                map.store(page * PAGE / 8 + word, initial(page, word));
            }
        }
    }
    println!(
        "guest RAM: {} MiB memfd, {} MiB written in {:.0} ms, every 4th 2 MiB region a hole",
        RAM_BYTES >> 20,
        ((0..RAM_BYTES / REGION).filter(|&r| populated(r)).count() * REGION) >> 20,
        ms(t)
    );

    // The vCPU runs until paused.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let vcpu = {
        let (map, stop, done) = (Arc::clone(&map), Arc::clone(&stop), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut iter = 0u64;
            while !stop.load(Ordering::Relaxed) {
                map.store(vcpu_page(iter) * PAGE / 8, VCPU_MARK | (iter + 1));
                iter += 1;
                done.store(iter, Ordering::Release);
            }
            iter
        })
    };

    let bx = dev
        .create_box(BOX)
        .map_err(|e| format!("CREATE_BOX {BOX}: {e}"))?;
    let migrated = memfd_stat("migrated");
    let t = Instant::now();
    bx.add(RAM, &ram).map_err(|e| format!("ADD {RAM}: {e}"))?;
    let add_ms = ms(t);
    if let Some(n) = migrated.zip(memfd_stat("migrated")).map(|(a, b)| b - a) {
        println!("ADD moved {n} folios of guest RAM out of KHO scratch, which the next kernel overwrites");
    }
    let at_add = done.load(Ordering::Acquire);
    // Let the vCPU keep writing after ADD, then pause it, as a VMM does before the kexec.
    while done.load(Ordering::Acquire) < at_add + VCPU_AFTER_ADD {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    let iterations = vcpu.join().map_err(|_| "the vCPU thread panicked")?;
    println!(
        "vCPU: {iterations} writes, {} of them after ADD, then paused",
        iterations - at_add
    );

    // The VMM's own state: what the new instance needs to check the RAM.
    let state: OwnedFd = fs::memfd_create(STATE, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .map_err(|e| format!("memfd_create: {e}"))?;
    let mut text = String::new();
    let _ = writeln!(text, "ram_bytes={RAM_BYTES}\nvcpu_iterations={iterations}");
    // The seal time goes here after SEAL: an existing page stays writable.
    let _ = writeln!(text, "sealed_at_ns={:020}", 0);
    rustix::io::write(&state, text.as_bytes()).map_err(|e| format!("write: {e}"))?;
    fs::fcntl_add_seals(&state, SealFlags::SHRINK | SealFlags::GROW)
        .map_err(|e| format!("F_ADD_SEALS: {e}"))?;
    let t = Instant::now();
    bx.add(STATE, &state)
        .map_err(|e| format!("ADD {STATE}: {e}"))?;
    let add_state_ms = ms(t);
    let late = memfd_stat("late");
    let t = Instant::now();
    bx.seal().map_err(|e| format!("SEAL: {e}"))?;
    let seal_ms = ms(t);
    let late = late.zip(memfd_stat("late")).map(|(a, b)| b - a);
    let stamp = format!("sealed_at_ns={:020}\n", now_ns());
    let at = text.find("sealed_at_ns=").unwrap_or(0) as u64;
    rustix::io::pwrite(&state, stamp.as_bytes(), at).map_err(|e| format!("pwrite: {e}"))?;

    println!(
        "timings: ADD {RAM} {add_ms:.1} ms, ADD {STATE} {add_state_ms:.1} ms, SEAL {seal_ms:.1} ms"
    );
    if let Some(late) = late {
        println!("SEAL picked up {late} folios that the vCPU allocated into holes after ADD");
    }
    println!("box {BOX} sealed; this process exits and the box stays with the kernel");
    Ok(())
}

/// The data extents of `fd` (start, end), as `SEEK_DATA`/`SEEK_HOLE` show them; moves the
/// file position.
fn data_extents(fd: BorrowedFd<'_>) -> Result<Vec<(u64, u64)>> {
    let mut extents = Vec::new();
    let mut pos = 0u64;
    while let Ok(data) = fs::seek(fd, SeekFrom::Data(pos)) {
        pos = fs::seek(fd, SeekFrom::Hole(data)).map_err(|e| format!("SEEK_HOLE: {e}"))?;
        extents.push((data, pos));
    }
    Ok(extents)
}

fn restore() -> Result<()> {
    let t = Instant::now();
    let dev = Device::open().map_err(|e| format!("/dev/fdbox: {e}"))?;
    let bx = dev
        .open_box(BOX, Direction::Incoming)
        .map_err(|e| format!("OPEN_BOX {BOX}: {e}"))?;
    let state = bx
        .retrieve(STATE)
        .map_err(|e| format!("RETRIEVE {STATE}: {e}"))?;
    let t_ram = Instant::now();
    let ram = bx
        .retrieve(RAM)
        .map_err(|e| format!("RETRIEVE {RAM}: {e}"))?;
    let retrieve_ram_ms = ms(t_ram);
    let retrieve_ms = ms(t);
    let now = now_ns();

    let mut buf = vec![0u8; PAGE];
    let n = rustix::io::pread(&state, &mut buf, 0).map_err(|e| format!("pread: {e}"))?;
    let text = String::from_utf8_lossy(&buf[..n]);
    let field = |k: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('=')?.parse().ok())
            .ok_or(format!("{STATE} has no {k}"))
    };
    let (ram_bytes, iterations, sealed_at) = (
        field("ram_bytes")?,
        field("vcpu_iterations")?,
        field("sealed_at_ns")?,
    );
    if ram_bytes != RAM_BYTES as u64 {
        return Err(format!(
            "{STATE} says {ram_bytes} bytes of RAM, expected {RAM_BYTES}"
        ));
    }
    let st = fs::fstat(&ram).map_err(|e| format!("fstat: {e}"))?;
    if st.st_size as usize != RAM_BYTES {
        return Err(format!(
            "{RAM} is {} bytes, expected {RAM_BYTES}",
            st.st_size
        ));
    }

    // What the vCPU last wrote to each page.
    let mut last = vec![0u64; RAM_BYTES / PAGE];
    for iter in 0..iterations {
        last[vcpu_page(iter)] = VCPU_MARK | (iter + 1);
    }
    // Holes first: reading one through the mapping would fill it.
    let extents = data_extents(ram.as_fd())?;
    fs::seek(&ram, SeekFrom::Start(0)).map_err(|e| format!("lseek: {e}"))?;
    let mut is_data = vec![false; RAM_BYTES / PAGE];
    for &(start, end) in &extents {
        is_data[start as usize / PAGE..(end as usize).div_ceil(PAGE)].fill(true);
    }
    let map = Mapping::new(ram.as_fd(), RAM_BYTES)?;
    let t = Instant::now();
    let mut bad = 0usize;
    for (page, (&vcpu, &data)) in last.iter().zip(&is_data).enumerate() {
        let base = populated(page * PAGE / REGION);
        for word in 0..PAGE / 8 {
            let want = match (word, vcpu, base) {
                (0, v, _) if v != 0 => v,
                (_, _, true) => initial(page, word),
                _ => 0,
            };
            // A hole reads as zeros.
            let got = if data {
                map.load(page * PAGE / 8 + word)
            } else {
                0
            };
            if got != want {
                if bad < 5 {
                    eprintln!("page {page} word {word}: mismatch");
                }
                bad += 1;
            }
        }
    }
    let verify_ms = ms(t);
    drop(map);
    let extents = extents.len();

    println!(
        "retrieved {STATE} and {RAM} ({} MiB, {} MiB of it allocated, in {extents} data extents: holes stayed holes)",
        RAM_BYTES >> 20,
        (st.st_blocks * 512) >> 20
    );
    println!(
        "verified all {} MiB of guest RAM against the old instance's writes ({iterations} vCPU writes) in {verify_ms:.0} ms: {}",
        RAM_BYTES >> 20,
        if bad == 0 { "every byte intact".to_string() } else { format!("{bad} words differ") }
    );
    println!(
        "timings: RETRIEVE {RAM} {retrieve_ram_ms:.1} ms, both {retrieve_ms:.1} ms; SEAL to RETRIEVE across the kexec {:.2} s",
        now.saturating_sub(sealed_at) as f64 / 1e9
    );
    if bad != 0 {
        return Err("guest RAM differs".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = match std::env::args().nth(1).as_deref() {
        Some("save") => save(),
        Some("restore") => restore(),
        _ => Err("usage: fdbox-vmm-demo save|restore".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fdbox-vmm-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_data_extents() {
        let fd = fs::memfd_create("extents", MemfdFlags::CLOEXEC).unwrap();
        fs::ftruncate(&fd, 16 * PAGE as u64).unwrap();
        for page in [1u64, 2, 5, 15] {
            rustix::io::pwrite(&fd, &[1u8; 8], page * PAGE as u64).unwrap();
        }
        let page = PAGE as u64;
        assert_eq!(
            data_extents(fd.as_fd()).unwrap(),
            [
                (page, 3 * page),
                (5 * page, 6 * page),
                (15 * page, 16 * page)
            ]
        );
    }

    #[test]
    fn vcpu_writes_hit_used_ram_and_sometimes_a_hole() {
        let holes = (0..4 * HOLE_EVERY)
            .filter(|&i| !populated(vcpu_page(i) * PAGE / REGION))
            .count();
        assert_eq!(holes, 4);
        assert!((0..100_000).all(|i| vcpu_page(i) < RAM_BYTES / PAGE));
    }
}
