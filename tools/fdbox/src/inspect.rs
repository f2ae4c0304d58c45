// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox inspect`: decode a blob and show it; `fdbox inspect verify`: run the
//! validation pass.

use std::io::Read;
use std::path::{
    Path,
    PathBuf, //
};

use fdbox::Caps;
use fdbox_format::report::{
    EntryReport,
    PayloadReport,
    Report, //
};
use fdbox_format::{
    limits,
    ManifestView, //
};

use crate::exit::{
    Code,
    Failure,
    Result, //
    EXIT_CODES_HELP,
};
use crate::table::Table;

/// Where `fdbox_core` serves the blob it registered with KHO, under the
/// debugfs mount; empty when no box is sealed.
pub const FDBOX_OUT: &str = "fdbox/outgoing";

/// Where `fdbox_core` serves its copy of the blob the previous kernel handed
/// over, under the debugfs mount; empty when there was none.
pub const FDBOX_IN: &str = "fdbox/incoming";

/// Where KHO's debugfs puts FDBox's outgoing blob, under the debugfs mount.
pub const KHO_OUT: &str = "kho/out/sub_fdts/fdbox";

/// Where KHO's debugfs puts the blob handed over by the previous kernel.
/// Only valid until `fdbox_core` loads: it copies the blob and frees KHO's
/// memory, which this file then still shows.
pub const KHO_IN: &str = "kho/in/sub_fdts/fdbox";

/// Arguments of `fdbox inspect`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, after_help = EXIT_CODES_HELP)]
pub struct Args {
    /// `verify`, or nothing to show the blob.
    #[command(subcommand)]
    action: Option<Action>,
    /// The blob to read.
    #[command(flatten)]
    source: Source,
    /// Where debugfs is mounted.
    #[command(flatten)]
    debugfs: Debugfs,
    /// Print the stable JSON report (schema 1, documented in
    /// fdbox_format::report) instead of tables; errors still go to stderr as
    /// one line.
    #[arg(long)]
    json: bool,
}

/// The actions under `inspect`.
#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Decode the blob and run the validation pass (names unique,
    /// dependencies in range and acyclic, sizes consistent).
    #[command(after_help = EXIT_CODES_HELP)]
    Verify {
        /// The blob to read.
        #[command(flatten)]
        source: Source,
        /// Where debugfs is mounted.
        #[command(flatten)]
        debugfs: Debugfs,
        /// Print `{"valid": true}` or `{"valid": false, "error": ...}`.
        #[arg(long)]
        json: bool,
    },
}

/// Where the blob comes from: a file, or debugfs.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
struct Source {
    /// A blob file (e.g. a copy of a debugfs file).
    #[arg(group = "src")]
    file: Option<PathBuf>,
    /// This kernel's outgoing blob: <debugfs>/fdbox/outgoing, or, when
    /// fdbox_core isn't loaded, KHO's <debugfs>/kho/out/sub_fdts/fdbox.
    #[arg(long = "out")]
    outgoing: bool,
    /// The blob handed over by the previous kernel: fdbox_core's copy,
    /// <debugfs>/fdbox/incoming, or, when fdbox_core isn't loaded, KHO's
    /// <debugfs>/kho/in/sub_fdts/fdbox, which is only valid before
    /// fdbox_core loads (it frees that memory when it takes the blob over).
    #[arg(long = "in")]
    incoming: bool,
}

/// Where debugfs is mounted.
#[derive(Debug, Clone, clap::Args)]
struct Debugfs {
    /// Where debugfs is mounted (for --out and --in).
    #[arg(long, value_name = "DIR", default_value = "/sys/kernel/debug")]
    debugfs: PathBuf,
}

/// Which blob a [`Source`] names, to say what an empty file means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// A file named on the command line.
    File,
    /// `--out`.
    Outgoing,
    /// `--in`.
    Incoming,
}

/// The file to read and which blob it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Blob {
    /// The path to read.
    path: PathBuf,
    /// Which blob it is.
    side: Side,
}

impl Source {
    /// The file to read: a file as given; for --out and --in, fdbox_core's
    /// debugfs file, or KHO's when fdbox_core's doesn't exist.
    fn blob(&self, debugfs: &Debugfs) -> Blob {
        let (side, ours, kho) = match (&self.file, self.outgoing) {
            (Some(f), _) => {
                return Blob {
                    path: f.clone(),
                    side: Side::File,
                }
            }
            (None, true) => (Side::Outgoing, FDBOX_OUT, KHO_OUT),
            (None, false) => (Side::Incoming, FDBOX_IN, KHO_IN),
        };
        let ours = debugfs.debugfs.join(ours);
        // Only a missing file means fdbox_core isn't loaded; any other error
        // is reported on fdbox_core's file when it is read.
        let missing = matches!(
            std::fs::symlink_metadata(&ours),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound
        );
        let path = if missing {
            debugfs.debugfs.join(kho)
        } else {
            ours
        };
        Blob { path, side }
    }
}

/// This kernel's outgoing blob, `fdbox_core`'s [`FDBOX_OUT`] under the
/// debugfs mount `debugfs`, as `fdbox inspect --out` reads it while
/// `fdbox_core` is loaded, and the file it was read from.
pub fn read_outgoing(debugfs: &Path) -> Result<(PathBuf, Vec<u8>)> {
    let src = Blob {
        path: debugfs.join(FDBOX_OUT),
        side: Side::Outgoing,
    };
    let blob = read(&src)?;
    Ok((src.path, blob))
}

/// Runs `fdbox inspect`.
pub fn run(args: Args) -> Result {
    match args.action {
        None => show(&args.source.blob(&args.debugfs), args.json),
        Some(Action::Verify {
            source,
            debugfs,
            json,
        }) => verify(&source.blob(&debugfs), json),
    }
}

/// Reads a blob, refusing an empty file (no blob) and anything larger than
/// a blob can be.
fn read(src: &Blob) -> Result<Vec<u8>> {
    let path = &src.path;
    let io =
        |e: std::io::Error| Failure::new(Code::Io, format!("cannot read {}: {e}", path.display()));
    let f = std::fs::File::open(path).map_err(io)?;
    let max = u64::from(limits::MAX_HEADER_LEN) + u64::from(limits::MAX_BODY_LEN);
    let mut blob = Vec::new();
    f.take(max + 1).read_to_end(&mut blob).map_err(io)?;
    if blob.is_empty() {
        let why = match src.side {
            Side::File => "the file is empty",
            Side::Outgoing => "the file is empty: no box is sealed",
            Side::Incoming => "the file is empty: the previous kernel handed no blob over",
        };
        return Err(Failure::new(
            Code::NoBlob,
            format!("{}: no blob: {why}", path.display()),
        ));
    }
    if blob.len() as u64 > max {
        return Err(Failure::new(
            Code::Malformed,
            format!(
                "{}: malformed blob: larger than any blob ({max} bytes)",
                path.display()
            ),
        ));
    }
    Ok(blob)
}

/// Decodes a blob.
fn decode<'a>(path: &Path, blob: &'a [u8]) -> Result<ManifestView<'a>> {
    fdbox_format::decode(blob).map_err(|e| Failure::format(&path.display().to_string(), &e))
}

/// `fdbox inspect`.
fn show(src: &Blob, json: bool) -> Result {
    let path = &src.path;
    let blob = read(src)?;
    let view = decode(path, &blob)?;
    let report = Report::for_reader(&view, page_shift());
    // This kernel's handlers, to compare the outgoing blob's versions with:
    // only for --out, and only if the device answers (inspect needs none).
    let caps = (src.side == Side::Outgoing)
        .then(|| fdbox::Device::open().and_then(|d| d.caps()).ok())
        .flatten();
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::new(Code::Io, format!("cannot format JSON: {e}")))?;
        println!("{text}");
    } else {
        print!(
            "{}",
            render(
                &path.display().to_string(),
                blob.len(),
                &report,
                caps.as_ref()
            )
        );
    }
    Ok(())
}

/// log2 of this machine's page size, which the entries' checks compare with.
fn page_shift() -> u8 {
    // CAST: A page size is a power of two below 2^32.
    rustix::param::page_size().trailing_zeros() as u8
}

/// `fdbox inspect verify`.
fn verify(src: &Blob, json: bool) -> Result {
    let path = &src.path;
    let blob = read(src)?;
    let view = decode(path, &blob)?;
    let checked = fdbox_format::owned::validate(&view)
        .and_then(|()| fdbox_format::owned::check(&view, page_shift()));
    match checked {
        Ok(verdicts) if verdicts.iter().any(Option::is_some) => {
            let corrupt: Vec<(String, String, String)> = view
                .boxes()
                .flat_map(|b| b.entries().map(move |e| (b.head.name, e.name)))
                .zip(verdicts)
                .filter_map(|((b, e), v)| {
                    v.map(|err| (b.to_string(), e.to_string(), err.to_string()))
                })
                .collect();
            if json {
                let list: Vec<_> = corrupt
                    .iter()
                    .map(|(b, e, why)| serde_json::json!({ "box": b, "entry": e, "reason": why }))
                    .collect();
                println!("{}", serde_json::json!({ "valid": false, "corrupt": list }));
            } else {
                for (b, e, why) in &corrupt {
                    println!(
                        "{}: entry {}/{}: corrupt: {why}",
                        path.display(),
                        show_str(b),
                        show_str(e)
                    );
                }
            }
            let (b, e, why) = &corrupt[0];
            Err(Failure::new(
                Code::Invalid,
                format!(
                    "{}: {} of {} entries corrupt, the others restore; entry {}/{}: {why}",
                    path.display(),
                    corrupt.len(),
                    view.entry_count(),
                    show_str(b),
                    show_str(e)
                ),
            ))
        }
        Ok(_) => {
            if json {
                println!("{}", serde_json::json!({ "valid": true }));
            } else {
                println!(
                    "{}: valid: boxes {}, entries {}",
                    path.display(),
                    view.box_count(),
                    view.entry_count()
                );
            }
            Ok(())
        }
        Err(e) => {
            if json {
                let error = serde_json::json!({
                    "message": e.to_string(),
                    "offset": e.offset(),
                });
                println!("{}", serde_json::json!({ "valid": false, "error": error }));
            }
            Err(Failure::format(&path.display().to_string(), &e))
        }
    }
}

/// Escapes control characters in names from the blob.
fn show_str(s: &str) -> String {
    if s.chars().any(char::is_control) || s.is_empty() {
        format!("{s:?}")
    } else {
        s.to_string()
    }
}

/// A byte count for humans.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The human-readable form of a report; with this kernel's `caps`, entries
/// written at a version below their handler's in this kernel say so.
pub fn render(path: &str, len: usize, r: &Report, caps: Option<&Caps>) -> String {
    let mut out = format!(
        "blob      {path} ({len} bytes, format {}.{}, body crc32c {:#010x})\n\
         producer  kernel {}, fdbox {}\n\
         contents  boxes {}, entries {}\n",
        r.format.major,
        r.format.minor,
        r.format.body_crc32c,
        show_str(&r.kernel_release),
        show_str(&r.fdbox_version),
        r.box_count,
        r.entry_count,
    );
    if r.boxes.is_empty() {
        return out;
    }
    let mut boxes = Table::new(&["BOX", "STATE", "OWNER", "ENTRIES"]);
    for b in &r.boxes {
        boxes.row(vec![
            show_str(&b.name),
            b.state.to_string(),
            format!("{}:{}", b.owner_uid, b.owner_gid),
            b.entries.len().to_string(),
        ]);
    }
    out.push('\n');
    out.push_str(&boxes.render());
    let mut entries = Table::new(&[
        "BOX", "#", "ENTRY", "HANDLER", "VER", "FLAGS", "DEPS", "PAYLOAD", "STATUS",
    ]);
    for b in &r.boxes {
        for e in &b.entries {
            entries.row(vec![
                show_str(&b.name),
                e.index.to_string(),
                show_str(&e.name),
                show_str(&e.handler),
                e.payload_version.to_string(),
                flags(e.flags),
                deps(&e.deps),
                payload(&e.payload),
                match older(e, caps) {
                    Some(note) => format!("{}; {note}", status(e)),
                    None => status(e),
                },
            ]);
        }
    }
    if r.entry_count > 0 {
        out.push('\n');
        out.push_str(&entries.render());
    }
    out
}

/// A note if the entry is written at a version below this kernel's handler
/// version: sealed with previous versions for a rollback, or a state the
/// handler writes in an older layout (memfd writes a shmem memfd at 1). A
/// target that reads only the handler's version won't read it.
fn older(e: &EntryReport, caps: Option<&Caps>) -> Option<String> {
    let h = caps?.handler(&e.handler)?;
    (e.payload_version < h.version).then(|| {
        format!(
            "older than this kernel's {} handler version ({})",
            show_str(&e.handler),
            h.version
        )
    })
}

/// Entry flags by name.
fn flags(f: u32) -> String {
    if f == 0 {
        return "-".into();
    }
    let mut names = Vec::new();
    if f & fdbox_format::manifest::ENTRY_FLAG_OPTIONAL != 0 {
        names.push("optional".to_string());
    }
    let unknown = f & !fdbox_format::manifest::KNOWN_ENTRY_FLAGS;
    if unknown != 0 {
        names.push(format!("{unknown:#x}"));
    }
    names.join(",")
}

/// Dependencies as a list of indices.
fn deps(d: &[u32]) -> String {
    if d.is_empty() {
        "-".into()
    } else {
        d.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
    }
}

/// Where the payload is and its size.
fn payload(p: &PayloadReport) -> String {
    match p {
        PayloadReport::Inline { len } => format!("inline {}", bytes(*len)),
        PayloadReport::Preserved { len, phys, .. } => {
            format!("preserved {} @{phys:#x}", bytes(*len))
        }
        PayloadReport::Chunked { len, chunks, .. } => {
            format!("out of line {} in {} chunks", bytes(*len), chunks.len())
        }
    }
}

/// The entry's availability and, for the payloads this tool decodes, a
/// summary.
fn status(e: &EntryReport) -> String {
    if let Some(why) = &e.reason {
        return format!("unavailable: {why}");
    }
    if let Some(m) = &e.memfd {
        return format!(
            "ok: memfd {}, size {}, {} folios in {} runs",
            show_str(&m.name),
            bytes(m.size),
            m.folios,
            m.runs
        );
    }
    if let Some(i) = &e.iommufd {
        return format!(
            "ok: iommufd, {} IOAS, {} {}, {}",
            i.ioas.len(),
            i.mappings,
            if i.mappings == 1 {
                "mapping"
            } else {
                "mappings"
            },
            bytes(i.mapped_bytes)
        );
    }
    if let Some(v) = &e.vfio {
        let attached = match (v.ioas_id, v.hwpt_id) {
            (0, _) => "not attached".to_string(),
            (ioas, 0) => format!("ioas {ioas}"),
            (ioas, hwpt) => format!("hwpt {hwpt} on ioas {ioas}"),
        };
        return format!(
            "ok: vfio {} {:04x}:{:04x}, {attached}",
            v.address, v.vendor, v.device
        );
    }
    "ok".into()
}

#[cfg(test)]
mod tests {
    use fdbox_format::report::{
        IommufdReport,
        VfioReport, //
    };

    use super::*;

    /// An available entry of `handler` with no decoded payload.
    fn entry(handler: &str) -> EntryReport {
        EntryReport {
            index: 0,
            name: "e".into(),
            handler: handler.into(),
            payload_version: 1,
            flags: 0,
            deps: vec![],
            payload: PayloadReport::Inline { len: 10 },
            available: true,
            reason: None,
            memfd: None,
            iommufd: None,
            vfio: None,
        }
    }

    #[test]
    fn iommufd_status() {
        let mut e = entry("iommufd");
        e.iommufd = Some(IommufdReport {
            ioas: vec![1, 2],
            mappings: 1,
            mapped_bytes: 4096,
            max_dep: Some(0),
        });
        assert_eq!(status(&e), "ok: iommufd, 2 IOAS, 1 mapping, 4.0 KiB");
        e.iommufd = Some(IommufdReport {
            ioas: vec![],
            mappings: 0,
            mapped_bytes: 0,
            max_dep: None,
        });
        assert_eq!(status(&e), "ok: iommufd, 0 IOAS, 0 mappings, 0 B");
    }

    #[test]
    fn vfio_status() {
        let mut e = entry("vfio");
        let mut v = VfioReport {
            address: "0000:00:04.0".into(),
            domain: 0,
            bus: 0,
            devfn: 0x20,
            vendor: 0x1234,
            device: 0x11e8,
            iommufd_dep: 0,
            devid: 1,
            ioas_id: 1,
            hwpt_id: 0,
            hwpt_flags: 0,
            iommufd_max_id: 0,
            identity: None,
        };
        e.vfio = Some(v.clone());
        assert_eq!(status(&e), "ok: vfio 0000:00:04.0 1234:11e8, ioas 1");
        v.hwpt_id = 4;
        e.vfio = Some(v.clone());
        assert_eq!(
            status(&e),
            "ok: vfio 0000:00:04.0 1234:11e8, hwpt 4 on ioas 1"
        );
        v.hwpt_id = 0;
        v.ioas_id = 0;
        v.vendor = 0x8086;
        e.vfio = Some(v);
        assert_eq!(status(&e), "ok: vfio 0000:00:04.0 8086:11e8, not attached");
    }

    #[test]
    fn older_versions_are_noted_against_this_kernels_handlers() {
        let raw = fdbox::uapi::fdbox_get_caps::default();
        let mut memfd = fdbox::uapi::fdbox_handler_info::default();
        for (o, b) in memfd.compatible.iter_mut().zip(b"memfd") {
            *o = *b as _;
        }
        memfd.version = 2;
        memfd.min_version = 1;
        let caps = Caps::from_raw(&raw, &[memfd]);
        let mut e = entry("memfd");
        assert_eq!(
            older(&e, Some(&caps)).as_deref(),
            Some("older than this kernel's memfd handler version (2)")
        );
        assert_eq!(older(&e, None), None);
        e.payload_version = 2;
        assert_eq!(older(&e, Some(&caps)), None);
        assert_eq!(older(&entry("vfio"), Some(&caps)), None);
    }

    #[test]
    fn unavailable_status() {
        let mut e = entry("vfio");
        e.available = false;
        e.reason = Some("unknown handler".into());
        assert_eq!(status(&e), "unavailable: unknown handler");
        assert_eq!(status(&entry("other")), "ok");
    }
}
