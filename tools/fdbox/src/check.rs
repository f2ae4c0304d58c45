// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox check [BOX...] --modules DIR`: what a target kernel, whose
//! modules are in DIR, would restore of this kernel's hand-over.
//!
//! The human output is a format line, a table with one row per entry, the
//! explanations of the entries that won't restore and the hints (indented),
//! notes, and a summary. Against a kernel one version behind, whose handlers
//! read only their previous versions:
//!
//! ```text
//! format: this kernel writes 2.0; the target reads majors 1-2: ok
//! BOX  ENTRY  HANDLER  VERSION  TARGET  VERDICT
//! vm0  ram    memfd    2        1-1     version
//! vm0  iommu  iommufd  1        1-1     ok
//! vm0  dev    vfio     2        1-1     version
//! vm1  ram    memfd    2        1-1     version
//!
//!   vm0/ram: the target's memfd handler reads versions 1-1; this entry ...
//!   vm0/dev: the target's vfio handler reads versions 1-1; this entry ...
//!   vm1/ram: the target's memfd handler reads versions 1-1; this entry ...
//!   hint: fdbox seal --previous vm1 would write every entry of vm1 at ...
//! 1 of 4 entries will restore in /lib/modules/6.99.0
//! ```
//!
//! vm0 gets no hint: iommufd's version is 1, so it has no previous version
//! and `--previous` would fail the whole seal (and the shipped vfio handler
//! refuses it too).
//!
//! Every entry row, and no other line, starts with a box name and is six
//! whitespace-separated tokens whose fourth is a number: box, entry,
//! handler, version, target range (`min-max`, or `-` without a handler) and
//! verdict, one of `ok`, `no-handler`, `version`, `dependency`,
//! `not-sealed` and `format`. A name with a space or a control character is
//! escaped (`\u{20}`), so it stays one token. Scripts (the C selftests) read
//! rows with `sscanf("%s %s %s %u %s %s")`.
//!
//! `--json` prints one object (schema 1, stable as `view`'s are):
//!
//! ```text
//! { "schema": 1, "modules": "/lib/modules/6.99.0", "modules_read": 4213,
//!   "format": { "verdict": "ok" | "refused" | "no-core" | "undeclared",
//!               "major": 2, "minor": 0,
//!               "target_read_min": 1 | null, "target_read_max": 2 | null,
//!               "target_write_major": 2 | null, "target_write_minor": 0 | null,
//!               "target_core": "/lib/modules/.../fdbox_core.ko" | null,
//!               "target_core_builtin": false, "detail": "..." },
//!   "boxes": [ { "name": "vm0", "owner_uid": 0, "owner_gid": 0,
//!                "state": "sealed" | "open", "seal_previous": false,
//!                "entries": [ entry ],
//!                "hint": null | { "kind": "seal-previous",
//!                                 "command": "fdbox seal --previous vm0" } } ],
//!   "notes": [ "..." ], "warnings": [ "..." ],
//!   "summary": { "entries": 2, "restorable": 0, "not_sealed": 0,
//!                "outcome": "all-restore" | "some-wont" | "nothing-will",
//!                "exit_code": 12 } }
//! entry = { "name": "ram", "compatible": "memfd", "version": 2,
//!           "version_at_most": false, "n_deps": 0,
//!           "depends_on": [ "entry name" ] | null,
//!           "verdict": "ok" | "no-handler" | "version" | "dependency"
//!                      | "not-sealed" | "format",
//!           "exact": true,
//!           "target_min": 1 | null, "target_max": 1 | null,
//!           "target_module": "/lib/modules/.../fdbox_memfd.ko" | null,
//!           "target_builtin": false, "rivals": [ "path of another module
//!           declaring the compatible" ], "detail": "..." | null,
//!           "previous_version": 1 | null }
//! ```
//!
//! `version_at_most` is true for an entry of an open box: `version` is the
//! most it would be written at. `depends_on` lists the entries it depends
//! on when the outgoing blob could be read. `exact` is false only for a
//! `dependency` verdict judged without them, on the safe side.
//! `previous_version` is, with the box's hint, the version the entry would
//! be written at most at.

use std::path::{
    Path,
    PathBuf, //
};

use fdbox::compat::{
    predict,
    BoxDeps,
    BoxPrediction,
    Dependencies,
    EntryDeps,
    EntryPrediction,
    FormatVerdict,
    Hint,
    Outcome,
    Prediction,
    ScanError,
    TargetModules, //
};
use fdbox::{
    BoxInfo,
    BoxState,
    Device,
    Direction,
    SealFlags, //
};
use fdbox_format::ManifestView;
use serde::Serialize;

use crate::device::{
    self,
    parse_name,
    refused,
    DeviceArg,
    Request, //
};
use crate::exit::{
    Code,
    Failure,
    Result, //
};
use crate::inspect;
use crate::table::Table;
use crate::view;

/// What `--help` adds: the verdicts and the exit codes.
const AFTER_HELP: &str = "\
Reads every module under DIR (*.ko, *.ko.xz, *.ko.zst, *.ko.gz) and
DIR/modules.builtin.modinfo for what they declare: fdbox_handler=
(compatible and payload versions a handler reads) and fdbox_core's
fdbox_format_read= (blob format majors it reads). It assumes the target
loads its handler modules. Which entries each entry depends on is read from
the outgoing blob (<debugfs>/fdbox/outgoing, as fdbox inspect --out reads
it).

Each entry gets a verdict:
  ok          a handler of the target reads its payload version
  no-handler  no module of the target registers its compatible string
  version     the target's handler doesn't read its payload version
  dependency  it depends, directly or not, on an entry that won't restore;
              if the outgoing blob can't be read, any entry with
              dependencies in a box where an entry won't restore, on the
              safe side, and its explanation says uncertain
  not-sealed  its box is open: a box isn't handed over until it is sealed
              (its version is the most it would be written at)
  format      the target has no fdbox_core, or it doesn't read this
              kernel's format major: nothing restores
A corrupt record, or a restore that fails (a hugetlb pool too small), can't
be predicted. A hint says when fdbox seal --previous would make every entry
of a box readable by the target (a rollback to a kernel one version
behind), if every handler can write its previous version.

Without BOX, every sealed outgoing box this user can open is checked; a
named box that is open is reported not-sealed.

Exit codes:
  0   every entry will restore, or nothing is sealed
  1   I/O error: DIR or the device can't be read, or FDBox refused a request
  2   usage error
  12  some entries won't restore (not-sealed ones included), or the
      target's fdbox_core doesn't declare which formats it reads
  13  nothing will restore: the target has no fdbox_core, or it doesn't read
      this kernel's format major";

/// Arguments of `fdbox check`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Outgoing boxes to check; without, every sealed outgoing box.
    #[arg(value_name = "BOX", value_parser = parse_name)]
    pub names: Vec<String>,
    /// The target kernel's module directory: /lib/modules/<release>.
    #[arg(long, value_name = "DIR")]
    pub modules: PathBuf,
    /// Where debugfs is mounted: the outgoing blob there says which entries
    /// each entry depends on.
    #[arg(long, value_name = "DIR", default_value = "/sys/kernel/debug")]
    pub debugfs: PathBuf,
    /// Where the device is.
    #[command(flatten)]
    pub device: DeviceArg,
    /// Print JSON (schema 1) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `fdbox check`.
pub fn run(args: Args) -> Result {
    // A wrong DIR fails at once, not after the device is asked; the slow
    // part, reading every module, comes last.
    std::fs::read_dir(&args.modules).map_err(|source| {
        scan_failure(ScanError {
            path: args.modules.clone(),
            source,
        })
    })?;
    let dev = args.device.open()?;
    let caps = dev
        .caps()
        .map_err(|e| refused("get capabilities", Request::Caps, e))?;
    let (boxes, mut warnings) = outgoing(&dev, &args)?;
    // Only needed, and only read, if some sealed entry has dependencies.
    let deps = if boxes
        .iter()
        .any(|b| b.state == BoxState::Sealed && b.entries.iter().any(|e| e.n_deps > 0))
    {
        match blob_dependencies(&args.debugfs) {
            Ok(d) => Some(d),
            Err(why) => {
                warnings.push(format!(
                    "which entries depend on which is not known ({why}): dependencies are \
                     judged on the safe side"
                ));
                None
            }
        }
    } else {
        None
    };
    let target = TargetModules::scan(&args.modules).map_err(scan_failure)?;
    warnings.extend(target.warnings.iter().map(ToString::to_string));
    let p = predict(&boxes, &caps, &target, deps.as_ref());
    let me = rustix::process::geteuid().as_raw();
    if args.json {
        view::print_json(&report(&p, &target, warnings, me))?;
    } else {
        for w in &warnings {
            eprintln!("fdbox: warning: {w}");
        }
        print!("{}", text(&p, &target, me));
    }
    match failure(&p, &target) {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// The boxes to check and, for boxes that could not be opened, warnings.
fn outgoing(dev: &Device, args: &Args) -> Result<(Vec<BoxInfo>, Vec<String>)> {
    if !args.names.is_empty() {
        let infos = args
            .names
            .iter()
            .map(|name| {
                let b = device::open_box(dev, name, Direction::Outgoing, args.device.owner)?;
                device::box_info(&b, name)
            })
            .collect::<Result<_>>()?;
        return Ok((infos, Vec::new()));
    }
    let boxes = dev
        .list_boxes()
        .map_err(|e| refused("list boxes", Request::List, e))?;
    let mut infos = Vec::new();
    let mut warnings = Vec::new();
    for b in boxes.iter().filter(|b| {
        b.direction == Direction::Outgoing
            && b.state == BoxState::Sealed
            && args.device.owner.is_none_or(|uid| uid == b.owner_uid)
    }) {
        let name = &b.name;
        // Another user's box, which only CAP_SYS_ADMIN may open: the check
        // is incomplete, and says so rather than failing.
        match device::open_box(dev, name, Direction::Outgoing, Some(b.owner_uid))
            .and_then(|fd| device::box_info(&fd, name))
        {
            Ok(info) => infos.push(info),
            Err(f) => warnings.push(format!(
                "box {} of uid {} not checked: {}",
                device::show(name),
                b.owner_uid,
                f.message
            )),
        }
    }
    Ok((infos, warnings))
}

/// Which entries each entry depends on, from the outgoing blob under
/// `debugfs`; why not, if it can't be read.
fn blob_dependencies(debugfs: &Path) -> std::result::Result<Dependencies, String> {
    let (path, blob) = inspect::read_outgoing(debugfs).map_err(|f| f.message)?;
    let view = fdbox_format::decode(&blob)
        .map_err(|e| Failure::format(&path.display().to_string(), &e).message)?;
    Ok(dependencies(&view))
}

/// The dependencies a decoded blob records, by name. A box with a
/// dependency out of range is left out: its entries are judged on the safe
/// side.
pub fn dependencies(view: &ManifestView<'_>) -> Dependencies {
    let boxes = view
        .boxes()
        .filter_map(|b| {
            let names: Vec<&str> = b.entries().map(|e| e.name).collect();
            let entries = b
                .entries()
                .map(|e| {
                    let deps = e
                        .deps()
                        .map(|i| {
                            let i = usize::try_from(i).ok()?;
                            names.get(i).map(|n| n.to_string())
                        })
                        .collect::<Option<Vec<String>>>()?;
                    Some(EntryDeps {
                        name: e.name.to_string(),
                        version: e.payload_version,
                        deps,
                    })
                })
                .collect::<Option<Vec<EntryDeps>>>()?;
            Some(BoxDeps {
                name: b.head.name.to_string(),
                owner_uid: b.head.owner_uid,
                entries,
            })
        })
        .collect();
    Dependencies { boxes }
}

/// The failure for a module directory that can't be read: one line naming
/// the path.
fn scan_failure(e: ScanError) -> Failure {
    Failure::new(Code::Io, e.to_string())
}

/// The exit code of an outcome: `None` for success.
pub fn exit_code(outcome: Outcome) -> Option<Code> {
    match outcome {
        Outcome::AllRestore => None,
        Outcome::SomeWont => Some(Code::SomeWontRestore),
        Outcome::NothingWill => Some(Code::NothingWillRestore),
    }
}

/// `, N of them in boxes that aren't sealed`, if there are some.
fn not_sealed_tail(p: &Prediction) -> String {
    match p.not_sealed() {
        0 => String::new(),
        n => format!(", {n} of them in boxes that aren't sealed"),
    }
}

/// The failure that ends a check whose outcome isn't [`Outcome::AllRestore`].
fn failure(p: &Prediction, target: &TargetModules) -> Option<Failure> {
    let code = exit_code(p.outcome())?;
    let dir = target.dir.display();
    let major = p.writes.major;
    let why = match &p.format {
        FormatVerdict::NoCore => "nothing will restore: the target has no fdbox_core".into(),
        FormatVerdict::Refused { read, .. } => format!(
            "nothing will restore: the target's fdbox_core reads format majors {read}, not \
             {major}"
        ),
        FormatVerdict::Undeclared { .. } if p.restorable() == p.entries() => format!(
            "can't tell whether the target's fdbox_core reads format major {major}: it doesn't \
             declare fdbox_format_read"
        ),
        _ => format!(
            "{} of {} entries won't restore{}",
            p.entries() - p.restorable(),
            p.entries(),
            not_sealed_tail(p)
        ),
    };
    Some(Failure::new(code, format!("check against {dir}: {why}")))
}

/// `s` as one token of a row: whitespace and control characters escaped.
fn token(s: &str) -> String {
    if s.is_empty() {
        return "\"\"".into();
    }
    s.chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The command that seals box `name` of `owner` with previous versions,
/// for the caller `me`.
fn seal_previous_command(name: &str, owner: u32, me: u32) -> String {
    let owner = if owner == me {
        String::new()
    } else {
        format!(" --owner {owner}")
    };
    format!("fdbox seal --previous{owner} {}", token(name))
}

/// The hint line of box `b`, without indentation, if it has a hint.
fn hint_line(b: &BoxPrediction, me: u32) -> Option<String> {
    let Hint::SealPrevious = b.hint?;
    let name = token(&b.name);
    Some(format!(
        "hint: {} would write every entry of {name} at most at its handler's previous version, \
         which the target reads: if every handler can write its previous version (a handler \
         that can't refuses, and the seal changes nothing), every entry of {name} will restore",
        seal_previous_command(&b.name, b.owner_uid, me)
    ))
}

/// The target range of an entry: `min-max`, or `-` without a handler.
fn target_range(e: &EntryPrediction) -> String {
    e.target
        .as_ref()
        .map_or("-".into(), |h| format!("{}-{}", h.min_version, h.version))
}

/// The human output.
pub fn text(p: &Prediction, target: &TargetModules, me: u32) -> String {
    let mut out = format!("format: {}\n", p.format_summary());
    let dir = target.dir.display();
    if p.boxes.is_empty() {
        out.push_str(&format!(
            "nothing sealed: no outgoing box is sealed, so nothing is handed over to {dir}\n"
        ));
        for n in &p.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        return out;
    }
    let mut t = Table::new(&["BOX", "ENTRY", "HANDLER", "VERSION", "TARGET", "VERDICT"]);
    let mut details = String::new();
    for b in &p.boxes {
        for e in &b.entries {
            t.row(vec![
                token(&b.name),
                token(&e.name),
                token(&e.compatible),
                e.version.to_string(),
                target_range(e),
                e.verdict.as_str().into(),
            ]);
            if let Some(why) = e.explain() {
                details.push_str(&format!("  {}/{}: {why}\n", token(&b.name), token(&e.name)));
            }
        }
        if let Some(hint) = hint_line(b, me) {
            details.push_str(&format!("  {hint}\n"));
        }
    }
    out.push_str(&t.render());
    if !details.is_empty() {
        out.push('\n');
        out.push_str(&details);
    }
    for n in &p.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    let (restorable, entries) = (p.restorable(), p.entries());
    let major = p.writes.major;
    let tail = match &p.format {
        FormatVerdict::NoCore => ": it has no fdbox_core".into(),
        FormatVerdict::Refused { .. } => {
            format!(": its fdbox_core doesn't read format major {major}")
        }
        FormatVerdict::Undeclared { .. } => {
            format!(
                ", if its fdbox_core reads format major {major}{}",
                sealed_tail(p)
            )
        }
        FormatVerdict::Ok { .. } => sealed_tail(p),
    };
    out.push_str(&format!(
        "{restorable} of {entries} entries will restore in {dir}{tail}\n"
    ));
    out
}

/// `; N not handed over: their boxes aren't sealed`, if there are some.
fn sealed_tail(p: &Prediction) -> String {
    match p.not_sealed() {
        0 => String::new(),
        n => format!("; {n} not handed over: their boxes aren't sealed"),
    }
}

/// `fdbox check --json`.
#[derive(Debug, Serialize)]
pub struct CheckJson {
    /// [`view::SCHEMA`].
    pub schema: u32,
    /// The module directory checked against.
    pub modules: String,
    /// How many module files were read.
    pub modules_read: usize,
    /// Whether the target reads this kernel's blob format.
    pub format: FormatCheckJson,
    /// The boxes checked.
    pub boxes: Vec<BoxCheckJson>,
    /// Conflicting declarations, and whether a kexec back would work.
    pub notes: Vec<String>,
    /// Files skipped, boxes not checked, and an outgoing blob not read.
    pub warnings: Vec<String>,
    /// The counts and the exit code.
    pub summary: SummaryJson,
}

/// The format verdict.
#[derive(Debug, Serialize)]
pub struct FormatCheckJson {
    /// `ok`, `refused`, `no-core` or `undeclared`.
    pub verdict: &'static str,
    /// The format major this kernel writes.
    pub major: u16,
    /// The format minor this kernel writes.
    pub minor: u16,
    /// The oldest major the target reads.
    pub target_read_min: Option<u16>,
    /// The newest major the target reads.
    pub target_read_max: Option<u16>,
    /// The major the target writes.
    pub target_write_major: Option<u16>,
    /// The minor the target writes.
    pub target_write_minor: Option<u16>,
    /// The target's `fdbox_core` module file.
    pub target_core: Option<String>,
    /// Whether it is built in.
    pub target_core_builtin: bool,
    /// The verdict in words.
    pub detail: String,
}

/// One box checked.
#[derive(Debug, Serialize)]
pub struct BoxCheckJson {
    /// The box's name.
    pub name: String,
    /// The owner's uid.
    pub owner_uid: u32,
    /// The owner's gid.
    pub owner_gid: u32,
    /// `sealed`, or `open` (not handed over until sealed).
    pub state: String,
    /// Whether it was sealed with previous payload versions.
    pub seal_previous: bool,
    /// Its entries.
    pub entries: Vec<EntryCheckJson>,
    /// What would make its entries restorable.
    pub hint: Option<HintJson>,
}

/// One entry checked.
#[derive(Debug, Serialize)]
pub struct EntryCheckJson {
    /// The entry's name.
    pub name: String,
    /// Its handler's compatible string.
    pub compatible: String,
    /// The payload version it is written at, or for an open box the most
    /// it would be written at.
    pub version: u32,
    /// Whether `version` is the most it would be written at (an open box).
    pub version_at_most: bool,
    /// How many entries it depends on.
    pub n_deps: u32,
    /// Which entries it depends on, if the outgoing blob was read.
    pub depends_on: Option<Vec<String>>,
    /// `ok`, `no-handler`, `version`, `dependency`, `not-sealed` or
    /// `format`.
    pub verdict: &'static str,
    /// False for a `dependency` verdict judged on the safe side, without
    /// knowing which entries it depends on.
    pub exact: bool,
    /// The oldest version the target's handler reads.
    pub target_min: Option<u32>,
    /// The newest version the target's handler reads.
    pub target_max: Option<u32>,
    /// The module file declaring the target's handler.
    pub target_module: Option<String>,
    /// Whether that handler is built in.
    pub target_builtin: bool,
    /// The other module files declaring the same compatible string.
    pub rivals: Vec<String>,
    /// The verdict in words, `null` for `ok`.
    pub detail: Option<String>,
    /// With the box's hint, the version it would be written at most at.
    pub previous_version: Option<u32>,
}

/// A box's hint.
#[derive(Debug, Serialize)]
pub struct HintJson {
    /// `seal-previous`.
    pub kind: &'static str,
    /// The command that does it.
    pub command: String,
}

/// The counts and the exit code.
#[derive(Debug, Serialize)]
pub struct SummaryJson {
    /// How many entries were checked.
    pub entries: usize,
    /// How many will restore.
    pub restorable: usize,
    /// How many are in boxes that aren't sealed.
    pub not_sealed: usize,
    /// `all-restore`, `some-wont` or `nothing-will`.
    pub outcome: &'static str,
    /// The exit code.
    pub exit_code: u8,
}

/// The JSON of one entry.
fn entry_json(b: &BoxPrediction, e: &EntryPrediction) -> EntryCheckJson {
    EntryCheckJson {
        name: e.name.clone(),
        compatible: e.compatible.clone(),
        version: e.version,
        version_at_most: b.state != BoxState::Sealed,
        n_deps: e.n_deps,
        depends_on: e.deps.clone(),
        verdict: e.verdict.as_str(),
        exact: e.verdict.is_exact(),
        target_min: e.target.as_ref().map(|h| h.min_version),
        target_max: e.target.as_ref().map(|h| h.version),
        target_module: e
            .target
            .as_ref()
            .map(|h| h.origin.path.display().to_string()),
        target_builtin: e.target.as_ref().is_some_and(|h| h.origin.builtin),
        rivals: e
            .rivals
            .iter()
            .map(|h| h.origin.path.display().to_string())
            .collect(),
        detail: e.explain(),
        previous_version: e.previous,
    }
}

/// The JSON report.
pub fn report(p: &Prediction, target: &TargetModules, warnings: Vec<String>, me: u32) -> CheckJson {
    let core = target.core();
    let read = core.and_then(|c| c.read);
    let write = core.and_then(|c| c.write);
    let outcome = p.outcome();
    CheckJson {
        schema: view::SCHEMA,
        modules: target.dir.display().to_string(),
        modules_read: target.modules_read,
        format: FormatCheckJson {
            verdict: p.format.as_str(),
            major: p.writes.major,
            minor: p.writes.minor,
            target_read_min: read.map(|r| r.min_major),
            target_read_max: read.map(|r| r.max_major),
            target_write_major: write.map(|w| w.major),
            target_write_minor: write.map(|w| w.minor),
            target_core: core.map(|c| c.origin.path.display().to_string()),
            target_core_builtin: core.is_some_and(|c| c.origin.builtin),
            detail: p.format_summary(),
        },
        boxes: p
            .boxes
            .iter()
            .map(|b| BoxCheckJson {
                name: b.name.clone(),
                owner_uid: b.owner_uid,
                owner_gid: b.owner_gid,
                state: b.state.to_string(),
                seal_previous: b.seal_flags.contains(SealFlags::PREVIOUS),
                entries: b.entries.iter().map(|e| entry_json(b, e)).collect(),
                hint: b.hint.map(|Hint::SealPrevious| HintJson {
                    kind: "seal-previous",
                    command: seal_previous_command(&b.name, b.owner_uid, me),
                }),
            })
            .collect(),
        notes: p.notes.clone(),
        warnings,
        summary: SummaryJson {
            entries: p.entries(),
            restorable: p.restorable(),
            not_sealed: p.not_sealed(),
            outcome: match outcome {
                Outcome::AllRestore => "all-restore",
                Outcome::SomeWont => "some-wont",
                Outcome::NothingWill => "nothing-will",
            },
            exit_code: exit_code(outcome).map_or(0, |c| c as u8),
        },
    }
}

#[cfg(test)]
mod tests {
    use core::ffi::c_char;
    use std::path::Path;

    use fdbox::uapi;
    use fdbox::Caps;

    use super::*;

    /// `s` in a C `char` array.
    fn chars<const N: usize>(s: &str) -> [c_char; N] {
        let mut out = [0; N];
        for (o, b) in out.iter_mut().zip(s.bytes()) {
            *o = b as c_char;
        }
        out
    }

    /// This kernel: format 2.0 reading 1-2; memfd writes 2, vfio 1.
    fn caps() -> Caps {
        let raw = uapi::fdbox_get_caps {
            format_major: 2,
            format_read_min: 1,
            format_read_max: 2,
            ..Default::default()
        };
        let handler = |c: &str, min, v| uapi::fdbox_handler_info {
            compatible: chars(c),
            version: v,
            min_version: min,
            __reserved: 0,
        };
        Caps::from_raw(&raw, &[handler("memfd", 1, 2), handler("vfio", 1, 1)])
    }

    /// An outgoing box in `state` with entries `(name, compatible, version,
    /// n_deps)`.
    fn outgoing_box(name: &str, state: u32, entries: &[(&str, &str, u32, u32)]) -> BoxInfo {
        let info = uapi::fdbox_box_info {
            name: chars(name),
            direction: uapi::FDBOX_DIR_OUTGOING,
            state,
            owner_uid: 1000,
            ..Default::default()
        };
        let entries: Vec<_> = entries
            .iter()
            .map(|&(n, c, v, d)| uapi::fdbox_entry_info {
                name: chars(n),
                compatible: chars(c),
                version: v,
                n_deps: d,
                ..Default::default()
            })
            .collect();
        BoxInfo::from_raw(&info, &entries)
    }

    /// A target reading format majors `read`, with `handlers` declared.
    fn target(read: Option<&str>, handlers: &[&str]) -> TargetModules {
        let mut t = TargetModules::new("/lib/modules/6.99.0");
        if let Some(read) = read {
            let core = format!("name=fdbox_core\0fdbox_format_read={read}\0");
            t.add_modinfo(
                Path::new("/lib/modules/6.99.0/fdbox_core.ko"),
                core.as_bytes(),
            );
        }
        for (i, h) in handlers.iter().enumerate() {
            let m = format!("fdbox_handler={h}\0");
            t.add_modinfo(
                Path::new(&format!("/lib/modules/6.99.0/h{i}.ko")),
                m.as_bytes(),
            );
        }
        t
    }

    /// The entry rows of `text` as a C selftest reads them with
    /// `sscanf("%s %s %s %u %s %s")`: six tokens, the fourth a number.
    fn rows(text: &str) -> Vec<Vec<String>> {
        text.lines()
            .filter_map(|l| {
                let t: Vec<String> = l.split_whitespace().take(6).map(String::from).collect();
                (t.len() == 6 && t[3].parse::<u32>().is_ok()).then_some(t)
            })
            .collect()
    }

    #[test]
    fn rows_are_six_tokens_and_nothing_else_parses_as_one() {
        let b = outgoing_box(
            "vm 0",
            uapi::FDBOX_BOX_SEALED,
            &[
                ("ram", "memfd", 2, 0),
                ("dev", "vfio", 1, 1),
                ("gpu", "gpu", 1, 0),
            ],
        );
        let t = target(Some("1-2"), &["memfd:1-1", "vfio:1-1"]);
        let p = predict(&[b], &caps(), &t, None);
        let out = text(&p, &t, 1000);
        assert_eq!(
            rows(&out),
            [
                ["vm\\u{20}0", "ram", "memfd", "2", "1-1", "version"],
                ["vm\\u{20}0", "dev", "vfio", "1", "1-1", "dependency"],
                ["vm\\u{20}0", "gpu", "gpu", "1", "-", "no-handler"],
            ]
        );
        // Every row is exactly the six tokens.
        for l in out.lines().filter(|l| l.starts_with("vm\\u{20}0 ")) {
            assert_eq!(l.split_whitespace().count(), 6, "{l}");
        }
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "format: this kernel writes 2.0; the target reads majors 1-2: ok"
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["BOX", "ENTRY", "HANDLER", "VERSION", "TARGET", "VERDICT"]
        );
        // gpu has no handler in the target: --previous can't help the box.
        assert!(!out.contains("hint"), "{out}");
        assert!(out.contains("\n  vm\\u{20}0/dev: uncertain: "), "{out}");
        // Every line starting with the box name is a row, as the C
        // selftest reads them.
        for l in out.lines().filter(|l| l.starts_with("vm")) {
            assert_eq!(rows(l).len(), 1, "{l}");
        }
        assert!(out.contains("\n  vm\\u{20}0/ram: the target's memfd handler reads"));
        assert_eq!(
            lines.last().unwrap(),
            &"0 of 3 entries will restore in /lib/modules/6.99.0"
        );
    }

    #[test]
    fn the_previous_hint_names_another_owner() {
        assert_eq!(
            seal_previous_command("vm0", 1000, 1000),
            "fdbox seal --previous vm0"
        );
        assert_eq!(
            seal_previous_command("vm0", 1000, 0),
            "fdbox seal --previous --owner 1000 vm0"
        );
    }

    #[test]
    fn all_ok_exits_zero() {
        let b = outgoing_box("vm0", uapi::FDBOX_BOX_SEALED, &[("ram", "memfd", 2, 0)]);
        let t = target(Some("1-2"), &["memfd:1-2"]);
        let p = predict(&[b], &caps(), &t, None);
        assert!(failure(&p, &t).is_none());
        let out = text(&p, &t, 1000);
        assert_eq!(
            out,
            "format: this kernel writes 2.0; the target reads majors 1-2: ok\n\
             BOX  ENTRY  HANDLER  VERSION  TARGET  VERDICT\n\
             vm0  ram    memfd    2        1-2     ok\n\
             1 of 1 entries will restore in /lib/modules/6.99.0\n"
        );
        let json = serde_json::to_value(report(&p, &t, vec![], 1000)).unwrap();
        assert_eq!(json["summary"]["exit_code"], 0);
        assert_eq!(json["summary"]["outcome"], "all-restore");
        assert_eq!(json["format"]["verdict"], "ok");
        assert_eq!(json["boxes"][0]["entries"][0]["verdict"], "ok");
        assert_eq!(
            json["boxes"][0]["entries"][0]["detail"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn nothing_sealed_exits_zero_and_says_so() {
        let t = target(None, &[]);
        let p = predict(&[], &caps(), &t, None);
        assert!(failure(&p, &t).is_none());
        assert!(text(&p, &t, 0).contains("\nnothing sealed: no outgoing box is sealed"));
    }

    #[test]
    fn exit_codes_follow_the_outcome() {
        assert_eq!(exit_code(Outcome::AllRestore), None);
        assert_eq!(exit_code(Outcome::SomeWont), Some(Code::SomeWontRestore));
        assert_eq!(
            exit_code(Outcome::NothingWill),
            Some(Code::NothingWillRestore)
        );
        let b = outgoing_box(
            "vm0",
            uapi::FDBOX_BOX_SEALED,
            &[("ram", "memfd", 2, 0), ("dev", "vfio", 1, 0)],
        );
        let check = |read: Option<&str>, handlers: &[&str]| {
            let t = target(read, handlers);
            let p = predict(std::slice::from_ref(&b), &caps(), &t, None);
            let f = failure(&p, &t).map(|f| (f.code as u8, f.message));
            let json = serde_json::to_value(report(&p, &t, vec![], 0)).unwrap();
            assert_eq!(
                json["summary"]["exit_code"],
                f.as_ref().map_or(0, |f| f.0),
                "{json}"
            );
            f
        };
        assert_eq!(check(Some("1-2"), &["memfd:1-2", "vfio:1-1"]), None);
        assert_eq!(
            check(Some("1-2"), &["memfd:1-2"]),
            Some((
                12,
                "check against /lib/modules/6.99.0: 1 of 2 entries won't restore".into()
            ))
        );
        assert_eq!(
            check(Some("3-3"), &["memfd:1-2", "vfio:1-1"]),
            Some((
                13,
                "check against /lib/modules/6.99.0: nothing will restore: the target's \
                 fdbox_core reads format majors 3-3, not 2"
                    .into()
            ))
        );
        assert_eq!(
            check(None, &["memfd:1-2", "vfio:1-1"]),
            Some((
                13,
                "check against /lib/modules/6.99.0: nothing will restore: the target has no \
                 fdbox_core"
                    .into()
            ))
        );
    }

    #[test]
    fn an_open_box_is_not_sealed_and_exits_12() {
        let b = outgoing_box("vm1", uapi::FDBOX_BOX_OPEN, &[("ram", "memfd", 2, 0)]);
        let t = target(Some("1-2"), &["memfd:1-2"]);
        let p = predict(&[b], &caps(), &t, None);
        let out = text(&p, &t, 1000);
        assert_eq!(
            rows(&out),
            [["vm1", "ram", "memfd", "2", "1-2", "not-sealed"]]
        );
        assert!(
            out.contains(
                "\n  vm1/ram: its box is not sealed, and a box isn't handed over until it is; \
                 sealed now, this entry would be written at most at version 2 (the target's \
                 memfd handler reads versions 1-2)\n"
            ),
            "{out}"
        );
        assert!(
            out.ends_with(
                "0 of 1 entries will restore in /lib/modules/6.99.0; 1 not handed over: \
                 their boxes aren't sealed\n"
            ),
            "{out}"
        );
        let f = failure(&p, &t).unwrap();
        assert_eq!(f.code, Code::SomeWontRestore);
        assert_eq!(
            f.message,
            "check against /lib/modules/6.99.0: 1 of 1 entries won't restore, 1 of them in \
             boxes that aren't sealed"
        );
        let json = serde_json::to_value(report(&p, &t, vec![], 1000)).unwrap();
        assert_eq!(json["boxes"][0]["state"], "open");
        let e = &json["boxes"][0]["entries"][0];
        assert_eq!(e["verdict"], "not-sealed");
        assert_eq!(e["version_at_most"], true);
        assert_eq!(json["summary"]["not_sealed"], 1);
        assert_eq!(json["summary"]["exit_code"], 12);
    }

    #[test]
    fn a_refused_format_says_format_in_every_row() {
        let b = outgoing_box(
            "vm0",
            uapi::FDBOX_BOX_SEALED,
            &[("ram", "memfd", 2, 0), ("gpu", "gpu", 1, 0)],
        );
        for read in [Some("3-3"), None] {
            let t = target(read, &["memfd:1-2"]);
            let p = predict(std::slice::from_ref(&b), &caps(), &t, None);
            let out = text(&p, &t, 1000);
            assert_eq!(
                rows(&out),
                [
                    ["vm0", "ram", "memfd", "2", "1-2", "format"],
                    ["vm0", "gpu", "gpu", "1", "-", "format"],
                ],
                "{out}"
            );
            let json = serde_json::to_value(report(&p, &t, vec![], 1000)).unwrap();
            for e in json["boxes"][0]["entries"].as_array().unwrap() {
                assert_eq!(e["verdict"], "format", "{json}");
            }
            assert_eq!(json["summary"]["exit_code"], 13);
        }
    }

    #[test]
    fn the_previous_hint_is_one_per_box() {
        let b = outgoing_box(
            "vm0",
            uapi::FDBOX_BOX_SEALED,
            &[("ram", "memfd", 2, 0), ("shm", "memfd", 1, 0)],
        );
        let t = target(Some("1-2"), &["memfd:1-1"]);
        let p = predict(&[b], &caps(), &t, None);
        let out = text(&p, &t, 1000);
        let hints: Vec<&str> = out.lines().filter(|l| l.contains("hint")).collect();
        assert_eq!(
            hints,
            [
                "  hint: fdbox seal --previous vm0 would write every entry of vm0 at most at \
                 its handler's previous version, which the target reads: if every handler can \
                 write its previous version (a handler that can't refuses, and the seal \
                 changes nothing), every entry of vm0 will restore"
            ]
        );
        let json = serde_json::to_value(report(&p, &t, vec![], 0)).unwrap();
        assert_eq!(
            json["boxes"][0]["hint"],
            serde_json::json!({ "kind": "seal-previous",
                                "command": "fdbox seal --previous --owner 1000 vm0" })
        );
        assert_eq!(json["boxes"][0]["entries"][0]["previous_version"], 1);
        assert_eq!(json["boxes"][0]["entries"][1]["previous_version"], 1);
        // vfio's version is 1 in this kernel: no previous version, no hint
        // for its box.
        let b = outgoing_box(
            "vm0",
            uapi::FDBOX_BOX_SEALED,
            &[("ram", "memfd", 2, 0), ("dev", "vfio", 1, 0)],
        );
        let t = target(Some("1-2"), &["memfd:1-1", "vfio:1-1"]);
        let p = predict(&[b], &caps(), &t, None);
        assert!(!text(&p, &t, 1000).contains("hint"));
        let json = serde_json::to_value(report(&p, &t, vec![], 0)).unwrap();
        assert_eq!(json["boxes"][0]["hint"], serde_json::Value::Null);
    }

    /// A blob of box vm0 (owner 1000) with entries `(name, version, deps)`.
    fn blob(entries: &[(&str, u32, &[u32])]) -> Vec<u8> {
        use fdbox_format::owned;
        owned::Manifest {
            kernel_release: "6.99.0".into(),
            fdbox_version: "test".into(),
            boxes: vec![owned::Box {
                name: "vm0".into(),
                owner_uid: 1000,
                owner_gid: 0,
                state: fdbox_format::manifest::BoxState::Sealed,
                entries: entries
                    .iter()
                    .map(|&(name, version, deps)| owned::Entry {
                        name: name.into(),
                        handler: "memfd".into(),
                        payload_version: version,
                        flags: 0,
                        deps: deps.to_vec(),
                        payload: owned::Payload::Inline(vec![0; 4]),
                    })
                    .collect(),
            }],
        }
        .encode()
        .unwrap()
    }

    #[test]
    fn dependencies_come_from_the_outgoing_blob() {
        let bytes = blob(&[("a", 1, &[]), ("c", 2, &[]), ("b", 2, &[1])]);
        let deps = dependencies(&fdbox_format::decode(&bytes).unwrap());
        assert_eq!(
            deps,
            Dependencies {
                boxes: vec![BoxDeps {
                    name: "vm0".into(),
                    owner_uid: 1000,
                    entries: vec![
                        EntryDeps {
                            name: "a".into(),
                            version: 1,
                            deps: vec![]
                        },
                        EntryDeps {
                            name: "c".into(),
                            version: 2,
                            deps: vec![]
                        },
                        EntryDeps {
                            name: "b".into(),
                            version: 2,
                            deps: vec!["c".into()]
                        },
                    ],
                }]
            }
        );
        // A has no handler; B depends on C only, so it restores.
        let b = outgoing_box(
            "vm0",
            uapi::FDBOX_BOX_SEALED,
            &[
                ("a", "gone", 1, 0),
                ("c", "memfd", 2, 0),
                ("b", "memfd", 2, 1),
            ],
        );
        let t = target(Some("1-2"), &["memfd:1-2"]);
        let p = predict(std::slice::from_ref(&b), &caps(), &t, Some(&deps));
        let out = text(&p, &t, 1000);
        assert_eq!(
            rows(&out),
            [
                ["vm0", "a", "gone", "1", "-", "no-handler"],
                ["vm0", "c", "memfd", "2", "1-2", "ok"],
                ["vm0", "b", "memfd", "2", "1-2", "ok"],
            ]
        );
        let json = serde_json::to_value(report(&p, &t, vec![], 1000)).unwrap();
        assert_eq!(
            json["boxes"][0]["entries"][2]["depends_on"],
            serde_json::json!(["c"])
        );
        assert_eq!(json["boxes"][0]["entries"][2]["exact"], true);
        // Without the blob: on the safe side, and marked uncertain.
        let p = predict(&[b], &caps(), &t, None);
        let out = text(&p, &t, 1000);
        assert_eq!(
            rows(&out)[2],
            ["vm0", "b", "memfd", "2", "1-2", "dependency"]
        );
        assert!(out.contains("\n  vm0/b: uncertain: "), "{out}");
        let json = serde_json::to_value(report(&p, &t, vec![], 1000)).unwrap();
        let e = &json["boxes"][0]["entries"][2];
        assert_eq!(e["verdict"], "dependency");
        assert_eq!(e["exact"], false);
        assert_eq!(e["depends_on"], serde_json::Value::Null);
    }

    #[test]
    fn an_unreadable_blob_is_said_why() {
        let dir = std::env::temp_dir().join(format!("fdbox-check-{}", std::process::id()));
        let why = blob_dependencies(&dir).unwrap_err();
        assert!(why.starts_with("cannot read "), "{why}");
        std::fs::create_dir_all(dir.join("fdbox")).unwrap();
        std::fs::write(dir.join(inspect::FDBOX_OUT), b"not a blob").unwrap();
        let why = blob_dependencies(&dir).unwrap_err();
        assert!(why.contains("malformed blob"), "{why}");
        std::fs::write(
            dir.join(inspect::FDBOX_OUT),
            blob(&[("a", 1, &[]), ("b", 2, &[0])]),
        )
        .unwrap();
        assert_eq!(blob_dependencies(&dir).unwrap().boxes[0].entries.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn json_has_the_documented_shape() {
        let b = outgoing_box(
            "vm0",
            uapi::FDBOX_BOX_SEALED,
            &[("ram", "memfd", 2, 0), ("shm", "memfd", 1, 1)],
        );
        let t = target(Some("1-2"), &["memfd:1-1", "vfio:1-1"]);
        let p = predict(&[b], &caps(), &t, None);
        let json = serde_json::to_value(report(&p, &t, vec!["w".into()], 1000)).unwrap();
        let ram = &json["boxes"][0]["entries"][0];
        assert_eq!(
            ram,
            &serde_json::json!({
                "name": "ram", "compatible": "memfd", "version": 2, "n_deps": 0,
                "verdict": "version", "target_min": 1, "target_max": 1,
                "target_module": "/lib/modules/6.99.0/h0.ko", "target_builtin": false,
                "rivals": [],
                "detail": "the target's memfd handler reads versions 1-1; this entry is \
                           version 2, newer than it reads",
                "version_at_most": false, "depends_on": null, "exact": true,
                "previous_version": 1,
            })
        );
        assert_eq!(
            json["boxes"][0]["hint"],
            serde_json::json!({ "kind": "seal-previous",
                                "command": "fdbox seal --previous vm0" })
        );
        assert_eq!(json["boxes"][0]["entries"][1]["verdict"], "dependency");
        assert_eq!(json["boxes"][0]["entries"][1]["exact"], false);
        assert_eq!(
            json["format"],
            serde_json::json!({
                "verdict": "ok", "major": 2, "minor": 0,
                "target_read_min": 1, "target_read_max": 2,
                "target_write_major": null, "target_write_minor": null,
                "target_core": "/lib/modules/6.99.0/fdbox_core.ko",
                "target_core_builtin": false,
                "detail": "this kernel writes 2.0; the target reads majors 1-2: ok",
            })
        );
        assert_eq!(
            json["summary"],
            serde_json::json!({
                "entries": 2, "restorable": 0, "not_sealed": 0, "outcome": "some-wont",
                "exit_code": 12,
            })
        );
        assert_eq!(json["schema"], 1);
        assert_eq!(json["modules"], "/lib/modules/6.99.0");
        assert_eq!(json["warnings"], serde_json::json!(["w"]));
        assert_eq!(json["boxes"][0]["seal_previous"], false);
    }

    #[test]
    fn tokens_never_split() {
        assert_eq!(token("vm0"), "vm0");
        assert_eq!(token("a b\tc"), "a\\u{20}b\\u{9}c");
        assert_eq!(token(""), "\"\"");
    }
}
