// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `make bench-format`: memfd metadata density and codec speed, as a table.
//!
//! Physical-range assumption for the scattered case: random 4 KiB frames
//! below 64 GiB (2^24 pfns), the worst case for the run-head varint to stay
//! at 4 bytes; each doubling of the range adds at most one bit.

use std::hint::black_box;
use std::time::{
    Duration,
    Instant, //
};

use fdbox_format::iommufd::{
    PROT_READ,
    PROT_WRITE, //
};
use fdbox_format::memfd::{
    self,
    FolioRun,
    MemfdHead, //
};
use fdbox_format::owned::{
    Box as FdBox,
    Entry,
    Iommufd,
    Manifest,
    Mapping,
    Payload, //
};
use fdbox_format::wire::Writer;
use fdbox_format::{
    decode,
    BoxState,
    Encoder, //
};

/// Timed runs per measurement; the best one counts.
const REPS: u32 = 15;

/// LUO's metadata per folio (`struct memfd_luo_folio_ser`).
const LUO_BYTES_PER_FOLIO: f64 = 16.0;

/// Frames below 64 GiB.
const PFNS_64G: u64 = 1 << 24;

/// A deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The best timing of `f` over at least `reps` runs and 300 ms (after one
/// warm-up), so that short workloads get many tries on a busy machine.
fn time<T>(reps: u32, mut f: impl FnMut() -> T) -> Duration {
    black_box(f());
    let start = Instant::now();
    let mut best = Duration::MAX;
    let mut n = 0;
    while n < reps || start.elapsed() < Duration::from_millis(300) {
        let t = Instant::now();
        black_box(f());
        best = best.min(t.elapsed());
        n += 1;
    }
    best
}

/// Milliseconds.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nanoseconds per item.
fn ns_per(d: Duration, n: u64) -> f64 {
    d.as_secs_f64() * 1e9 / n as f64
}

/// One folio per page, file-contiguous, at the given pfns.
fn folios(pfns: &[u64]) -> Vec<FolioRun> {
    pfns.iter()
        .enumerate()
        .map(|(i, &pfn)| FolioRun {
            index: i as u64,
            pfn,
            order: 0,
            count: 1,
        })
        .collect()
}

/// The head of a memfd of `pages` 4 KiB pages.
fn head(pages: u64) -> MemfdHead<'static> {
    MemfdHead {
        size: pages * 4096,
        pos: 0,
        seals: 0,
        page_shift: 12,
        huge_shift: 0,
        name: "guest-ram",
    }
}

/// Encodes a memfd payload.
fn encode_memfd(h: &MemfdHead<'_>, runs: &[FolioRun]) -> Vec<u8> {
    let len = memfd::encoded_len(h, runs.iter().copied()).unwrap();
    let mut out = vec![0u8; len];
    let mut w = Writer::new(&mut out);
    memfd::encode(&mut w, h, runs.iter().copied()).unwrap();
    out
}

fn density() {
    const N: u64 = 262_144;
    // size (5) + pos (1) + seals (1) + page_shift (1) + name (10) + folio
    // count (3) + run count (3, 2 for the 512-run cases: counted below).
    const FIXED: usize = 24;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let scattered: Vec<u64> = (0..N).map(|_| rng.next() % PFNS_64G).collect();
    let alternating: Vec<u64> = (0..N)
        .map(|i| if i % 2 == 0 { 0 } else { PFNS_64G - 1 })
        .collect();
    let contiguous: Vec<u64> = (0..N).map(|i| 0x10_0000 + i).collect();
    // 2 MiB chunks scattered (THP-backed memory split into 4 KiB folios).
    let chunked: Vec<u64> = (0..N)
        .map(|i| {
            if i % 512 == 0 {
                rng.0 = rng.0.wrapping_add(i);
            }
            ((Rng(rng.0 ^ (i / 512)).next() % (PFNS_64G / 512)) * 512) + i % 512
        })
        .collect();
    let cases: [(&str, &[u64]); 4] = [
        ("scattered random pfns < 64 GiB", &scattered),
        ("worst case: alternating 0 / 64 GiB", &alternating),
        ("random 2 MiB chunks of 4 KiB folios", &chunked),
        ("physically contiguous", &contiguous),
    ];
    println!("memfd folio metadata, 1 GiB of 4 KiB folios ({N} folios)");
    println!("assumption: scattered pfns are uniform below 64 GiB (2^24 frames); each");
    println!("doubling of the physical range adds at most 1 bit per scattered folio");
    println!("(\"runs\" bytes exclude the payload's fixed file fields, {FIXED} bytes here)");
    println!(
        "{:<38} {:>10} {:>8} {:>12} {:>12} {:>11}",
        "layout", "total B", "runs", "run B/folio", "total/folio", "LUO 16 / x"
    );
    for (name, pfns) in cases {
        let runs = folios(pfns);
        let bytes = encode_memfd(&head(N), &runs);
        let view = memfd::decode(&bytes, 0).unwrap();
        let per = (bytes.len() - FIXED) as f64 / N as f64;
        println!(
            "{:<38} {:>10} {:>8} {:>12.4} {:>12.4} {:>10.1}x",
            name,
            bytes.len(),
            view.run_count,
            per,
            bytes.len() as f64 / N as f64,
            LUO_BYTES_PER_FOLIO / per
        );
    }
    // 2 MiB folios: one folio per 512 pages.
    let thp: Vec<FolioRun> = (0..N / 512)
        .map(|i| FolioRun {
            index: i * 512,
            pfn: (rng.next() % (PFNS_64G / 512)) * 512,
            order: 9,
            count: 1,
        })
        .collect();
    let bytes = encode_memfd(&head(N), &thp);
    let per = (bytes.len() - FIXED) as f64 / (N / 512) as f64;
    println!(
        "{:<38} {:>10} {:>8} {:>12.4} {:>12.4} {:>10.1}x  (per 2 MiB folio)",
        "scattered 2 MiB folios",
        bytes.len(),
        N / 512,
        per,
        bytes.len() as f64 / (N / 512) as f64,
        LUO_BYTES_PER_FOLIO / per
    );
    println!();
}

/// A manifest of `n` entries in boxes of at most 1,000.
fn manifest(n: u32) -> Manifest {
    let mut rng = Rng(42);
    let small: Vec<u64> = (0..8).map(|_| rng.next() % PFNS_64G).collect();
    let ram = encode_memfd(&head(8), &folios(&small));
    // An iommufd mapping the memfd before it (its dependency 0) at two IOVAs.
    let map = |iova: u64, start: u64| Mapping {
        ioas_id: 1,
        iova,
        length: 4 << 20,
        dep: 0,
        start,
        prot: PROT_READ | PROT_WRITE,
    };
    let iommu = Iommufd {
        ioas: vec![1],
        maps: vec![map(0, 0), map(1 << 32, 4 << 20)],
    }
    .encode()
    .unwrap();
    let boxes = (0..n.div_ceil(1000))
        .map(|b| {
            let count = (n - b * 1000).min(1000);
            FdBox {
                name: format!("vm-{b:04}"),
                owner_uid: 1000 + b,
                owner_gid: 1000,
                state: BoxState::Sealed,
                entries: (0..count)
                    .map(|i| Entry {
                        name: format!("entry-{i:05}"),
                        handler: ["memfd", "iommufd", "vfio"][(i % 3) as usize].into(),
                        payload_version: 1,
                        flags: 0,
                        deps: if i == 0 { vec![] } else { vec![i - 1] },
                        payload: if i % 3 == 0 {
                            Payload::Inline(ram.clone())
                        } else if i % 3 == 1 {
                            Payload::Inline(iommu.clone())
                        } else {
                            Payload::Preserved {
                                phys: (rng.next() % PFNS_64G) << 12,
                                len: 1 << 20,
                                crc32c: rng.next() as u32,
                            }
                        },
                    })
                    .collect(),
            }
        })
        .collect();
    Manifest {
        kernel_release: "7.3.4-fdbox".into(),
        fdbox_version: "0.1.0".into(),
        boxes,
    }
}

fn speed() {
    println!("codec speed (best of several runs; per item in ns)");
    println!(
        "{:<28} {:>9} {:>9} {:>7} {:>9} {:>7} {:>8} {:>9} {:>7} {:>7}",
        "workload",
        "bytes",
        "encode ms",
        "ns/item",
        "decode ms",
        "ns/item",
        "walk ms",
        "valid. ms",
        "ns/item",
        "growth"
    );
    let mut base = None;
    for n in [1_000u32, 10_000, 100_000] {
        let m = manifest(n);
        let len = m.encoded_len().unwrap();
        let mut buf = vec![0u8; len];
        let enc = time(REPS, || {
            let mut c = Encoder::counting();
            m.encode_with(&mut c).unwrap();
            let size = c.finish().unwrap();
            let mut e = Encoder::new(&mut buf[..size]).unwrap();
            m.encode_with(&mut e).unwrap();
            e.finish().unwrap()
        });
        let blob = m.encode().unwrap();
        let dec = time(REPS, || decode(&blob).unwrap().entry_count());
        let view = decode(&blob).unwrap();
        // Touch every entry, as a consumer would.
        let walk = time(REPS, || {
            view.boxes()
                .map(|b| b.entries().map(|e| e.name.len()).sum::<usize>())
                .sum::<usize>()
        });
        let mut scratch = vec![0u64; 1000.max(n.div_ceil(1000)) as usize];
        let val = time(REPS, || {
            let v = decode(&blob).unwrap();
            fdbox_format::validate(&v, &mut scratch).unwrap()
        });
        let b = *base.get_or_insert(dec.as_secs_f64() + enc.as_secs_f64());
        println!(
            "{:<28} {:>9} {:>9.3} {:>7.1} {:>9.3} {:>7.1} {:>8.3} {:>9.3} {:>7.1} {:>6.1}x",
            format!("manifest, {n} entries"),
            blob.len(),
            ms(enc),
            ns_per(enc, n.into()),
            ms(dec),
            ns_per(dec, n.into()),
            ms(walk),
            ms(val),
            ns_per(val, n.into()),
            (dec.as_secs_f64() + enc.as_secs_f64()) / b
        );
    }
    let mut base = None;
    for n in [26_214u64, 262_144, 2_621_440] {
        let mut rng = Rng(7);
        let pfns: Vec<u64> = (0..n).map(|_| rng.next() % PFNS_64G).collect();
        // Runs made on the fly from a pfn per folio, as the kernel walks
        // its folio array: 8 bytes of input per folio, not a 32-byte run.
        let runs = pfns.iter().enumerate().map(|(i, &pfn)| FolioRun {
            index: i as u64,
            pfn,
            order: 0,
            count: 1,
        });
        let h = head(n);
        let len = memfd::encoded_len(&h, runs.clone()).unwrap();
        let mut buf = vec![0u8; len];
        let enc = time(REPS, || {
            let plan = memfd::plan(&h, runs.clone()).unwrap();
            let mut w = Writer::new(&mut buf[..plan.len]);
            memfd::encode_planned(&mut w, &h, &plan, runs.clone()).unwrap();
            w.position()
        });
        let bytes = buf.clone();
        let dec = time(REPS, || memfd::decode(&bytes, 0).unwrap().folios);
        let view = memfd::decode(&bytes, 0).unwrap();
        let walk = time(REPS, || {
            view.runs().map(|r| r.pfn).fold(0u64, u64::wrapping_add)
        });
        let b = *base.get_or_insert(dec.as_secs_f64() + enc.as_secs_f64());
        println!(
            "{:<28} {:>9} {:>9.3} {:>7.1} {:>9.3} {:>7.1} {:>8.3} {:>9} {:>7} {:>6.1}x",
            format!("memfd {} MiB scattered", (n * 4096) >> 20),
            bytes.len(),
            ms(enc),
            ns_per(enc, n),
            ms(dec),
            ns_per(dec, n),
            ms(walk),
            "-",
            "-",
            (dec.as_secs_f64() + enc.as_secs_f64()) / b
        );
    }
    println!();
    println!("encode = size pass + write pass into a preallocated buffer (as the kernel does);");
    println!("decode = header, checksum and a full checked walk (everything a reader needs");
    println!("before trusting the blob); walk = iterating every entry / run afterwards;");
    println!("valid. = decode + the validation pass. memfd ns/item is per 4 KiB folio;");
    println!("growth = (encode + decode) time relative to the first row of its kind.");
}

/// One guest's memfd on the simulated host: `pages` 4 KiB pages as `layout` lays them out.
fn host_memfd(layout: &str, pages: u64, rng: &mut Rng) -> Vec<FolioRun> {
    const FRAMES_1T: u64 = 1 << 28;
    match layout {
        "fully scattered 4 KiB" => (0..pages)
            .map(|i| FolioRun {
                index: i,
                pfn: rng.next() % FRAMES_1T,
                order: 0,
                count: 1,
            })
            .collect(),
        // 4 KiB folios, each 2 MiB of the file physically contiguous.
        "2 MiB-coalesced 4 KiB" => (0..pages / 512)
            .map(|i| FolioRun {
                index: i * 512,
                pfn: (rng.next() % (FRAMES_1T / 512)) * 512,
                order: 0,
                count: 512,
            })
            .collect(),
        _ => (0..pages / 512)
            .map(|i| FolioRun {
                index: i * 512,
                pfn: (rng.next() % (FRAMES_1T / 512)) * 512,
                order: 9,
                count: 1,
            })
            .collect(),
    }
}

/// A simulated host of 1 TiB of guest RAM: 16 guests of 64 GiB, each one memfd. One guest is
/// encoded and decoded; the host's figures are 16 times its own.
fn host_1tib() {
    const GUESTS: u64 = 16;
    const PAGES: u64 = 64 << 18;
    println!(
        "a simulated host: 1 TiB of guest RAM as {GUESTS} memfds of 64 GiB, frames below 1 TiB"
    );
    println!(
        "{:<24} {:>10} {:>12} {:>9} {:>12} {:>8} {:>10} {:>10}",
        "layout", "folios", "FDBox MiB", "B/GiB", "LUO MiB", "LUO / x", "encode s", "decode s"
    );
    for layout in [
        "fully scattered 4 KiB",
        "2 MiB-coalesced 4 KiB",
        "THP (2 MiB folios)",
    ] {
        let mut rng = Rng(0x1_7e11);
        let runs = host_memfd(layout, PAGES, &mut rng);
        let folios: u64 = runs.iter().map(|r| r.count).sum();
        let h = head(PAGES);
        let len = memfd::encoded_len(&h, runs.iter().copied()).unwrap();
        let mut buf = vec![0u8; len];
        let enc = time(1, || {
            let plan = memfd::plan(&h, runs.iter().copied()).unwrap();
            let mut w = Writer::new(&mut buf[..plan.len]);
            memfd::encode_planned(&mut w, &h, &plan, runs.iter().copied()).unwrap();
            w.position()
        });
        let dec = time(1, || {
            memfd::decode(&buf, 0)
                .unwrap()
                .runs()
                .map(|r| r.pfn)
                .fold(0u64, u64::wrapping_add)
        });
        let fdbox = (len as u64 * GUESTS) as f64;
        let luo = LUO_BYTES_PER_FOLIO * (folios * GUESTS) as f64;
        println!(
            "{:<24} {:>10} {:>12.1} {:>9.0} {:>12.1} {:>7.1}x {:>10.2} {:>10.2}",
            layout,
            folios * GUESTS,
            fdbox / (1 << 20) as f64,
            fdbox / 1024.0,
            luo / (1 << 20) as f64,
            luo / fdbox,
            enc.as_secs_f64() * GUESTS as f64,
            dec.as_secs_f64() * GUESTS as f64,
        );
    }
    println!("encode = size pass + write pass; decode = a checked walk of every run; both for");
    println!("the whole host, on one CPU of this machine.");
    println!();
}

fn main() {
    density();
    speed();
    host_1tib();
}
