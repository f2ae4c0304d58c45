// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox inspect`: decode a blob and show it; `fdbox inspect verify`: run the
//! validation pass.

use std::io::Read;
use std::path::{
    Path,
    PathBuf, //
};

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

/// Where KHO's debugfs puts FDBox's outgoing blob, under the debugfs mount.
pub const KHO_OUT: &str = "kho/out/sub_fdts/fdbox";

/// Where KHO's debugfs puts the blob handed over by the previous kernel.
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

/// Where the blob comes from: a file, or KHO's debugfs.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
struct Source {
    /// A blob file (e.g. a copy of a debugfs file).
    #[arg(group = "src")]
    file: Option<PathBuf>,
    /// This kernel's outgoing blob: <debugfs>/kho/out/sub_fdts/fdbox.
    #[arg(long = "out")]
    outgoing: bool,
    /// The blob handed over by the previous kernel:
    /// <debugfs>/kho/in/sub_fdts/fdbox.
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

impl Source {
    /// The path to read.
    fn path(&self, debugfs: &Debugfs) -> PathBuf {
        match (&self.file, self.outgoing) {
            (Some(f), _) => f.clone(),
            (None, true) => debugfs.debugfs.join(KHO_OUT),
            (None, false) => debugfs.debugfs.join(KHO_IN),
        }
    }
}

/// Runs `fdbox inspect`.
pub fn run(args: Args) -> Result {
    match args.action {
        None => show(&args.source.path(&args.debugfs), args.json),
        Some(Action::Verify {
            source,
            debugfs,
            json,
        }) => verify(&source.path(&debugfs), json),
    }
}

/// Reads a blob, refusing anything larger than a blob can be.
fn read(path: &Path) -> Result<Vec<u8>> {
    let io =
        |e: std::io::Error| Failure::new(Code::Io, format!("cannot read {}: {e}", path.display()));
    let f = std::fs::File::open(path).map_err(io)?;
    let max = u64::from(limits::MAX_HEADER_LEN) + u64::from(limits::MAX_BODY_LEN);
    let mut blob = Vec::new();
    f.take(max + 1).read_to_end(&mut blob).map_err(io)?;
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
fn show(path: &Path, json: bool) -> Result {
    let blob = read(path)?;
    let view = decode(path, &blob)?;
    let report = Report::new(&view);
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::new(Code::Io, format!("cannot format JSON: {e}")))?;
        println!("{text}");
    } else {
        print!(
            "{}",
            render(&path.display().to_string(), blob.len(), &report)
        );
    }
    Ok(())
}

/// `fdbox inspect verify`.
fn verify(path: &Path, json: bool) -> Result {
    let blob = read(path)?;
    let view = decode(path, &blob)?;
    match fdbox_format::owned::validate(&view) {
        Ok(()) => {
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

/// The human-readable form of a report.
pub fn render(path: &str, len: usize, r: &Report) -> String {
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
                status(e),
            ]);
        }
    }
    if r.entry_count > 0 {
        out.push('\n');
        out.push_str(&entries.render());
    }
    out
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
    }
}

/// The entry's availability and, for memfds, a summary.
fn status(e: &EntryReport) -> String {
    match (&e.memfd, &e.reason) {
        (Some(m), _) => format!(
            "ok: memfd {}, size {}, {} folios in {} runs",
            show_str(&m.name),
            bytes(m.size),
            m.folios,
            m.runs
        ),
        (None, Some(why)) => format!("unavailable: {why}"),
        (None, None) => "ok".into(),
    }
}
