// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox create BOX [--add NAME=SRC]... [--seal]`: create an outgoing box,
//! fill it and, with `--seal`, hand it to the kernel.

use std::os::fd::OwnedFd;

use serde::Serialize;

use crate::device::{
    self,
    explain,
    parse_name,
    refused,
    DeviceArg,
    Request, //
};
use crate::exit::{
    Code,
    Failure,
    Result, //
    EXIT_CODES_HELP,
};
use crate::source::{
    self,
    parse_spec,
    Spec, //
};
use crate::view::{
    self,
    BoxJson, //
};

/// What `--help` adds about dry runs.
const AFTER_HELP: &str = "\
Without --seal, this is a dry run. The kernel discards an open box when its
last fd closes, and fdbox closes it as it exits: every file is given back
untouched and no box is left. The run reports whether every entry can be
prepared (exit 0) or which can't (exit 1).

With --seal, the box belongs to the kernel once fdbox exits, and is handed
over at the next kexec; fdbox cancel BOX dissolves it.";

/// Arguments of `fdbox create`.
#[derive(Debug, clap::Args)]
#[command(after_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"))]
pub struct Args {
    /// The new box's name, unique among outgoing boxes.
    #[arg(value_name = "BOX", value_parser = parse_name)]
    pub name: String,
    /// Adds the file SRC as the entry NAME; repeatable. SRC is a path to
    /// open, or /proc/PID/fd/N for the very file that process has open (as
    /// pidfd_getfd(2) takes it). NAME can't contain '='.
    #[arg(long = "add", value_name = "NAME=SRC", value_parser = parse_spec)]
    pub add: Vec<Spec>,
    /// Seal the box: hand it to the next kernel. Without it, this is a dry
    /// run (see below).
    #[arg(long)]
    pub seal: bool,
    /// With --seal: write each entry at its handler's previous payload
    /// version, for a kernel one version behind (see fdbox seal --help).
    #[arg(long, requires = "seal")]
    pub previous: bool,
    /// Where the device is.
    #[command(flatten)]
    pub device: DeviceArg,
    /// Print JSON (schema 1) instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// One `--add`, and why it failed, in the JSON report.
#[derive(Debug, Serialize)]
struct SourceJson {
    /// The entry's name.
    name: String,
    /// SRC.
    source: String,
    /// Why it could not be added, or `null`.
    error: Option<String>,
}

/// `fdbox create --json`.
#[derive(Debug, Serialize)]
struct CreateJson {
    /// [`view::SCHEMA`].
    schema: u32,
    /// The box as it ended up, before fdbox exits.
    #[serde(rename = "box")]
    box_: BoxJson,
    /// Whether the box is sealed (and so outlives fdbox).
    sealed: bool,
    /// Whether this was a dry run (no `--seal`).
    dry_run: bool,
    /// Every `--add`.
    sources: Vec<SourceJson>,
}

/// Runs `fdbox create`.
pub fn run(args: Args) -> Result {
    source::check_unique(&args.add)?;
    // Every source opens before the box exists.
    let fds: Vec<OwnedFd> = args.add.iter().map(source::open).collect::<Result<_>>()?;
    let dev = args.device.open()?;
    let name = &args.name;
    let b = dev
        .create_box(name)
        .map_err(|e| refused(format!("create box {name}"), Request::Create, e))?;

    // Try every entry, so that a dry run reports all that can't be added.
    let mut failed = Vec::new();
    let mut sources = Vec::new();
    for (spec, fd) in args.add.iter().zip(&fds) {
        let error = b
            .add(&spec.name, fd)
            .err()
            .map(|e| explain(Request::Add, &e));
        if let Some(why) = &error {
            failed.push(format!("{spec}: {why}"));
        }
        sources.push(SourceJson {
            name: spec.name.clone(),
            source: spec.src.display().to_string(),
            error,
        });
    }
    let mut sealed = false;
    let mut seal_error = None;
    if args.seal && failed.is_empty() {
        let flags = crate::seal::flags(args.previous);
        match b.seal_with(flags) {
            Ok(()) => sealed = true,
            Err(e) => {
                seal_error = Some(refused(
                    format!("seal box {name}"),
                    device::seal_request(flags),
                    e,
                ))
            }
        }
    }
    let info = device::box_info(&b, name)?;

    if args.json {
        view::print_json(&CreateJson {
            schema: view::SCHEMA,
            box_: BoxJson::from(&info),
            sealed,
            dry_run: !args.seal,
            sources,
        })?;
    } else {
        print!("{}", view::box_text(&info, None));
        for f in &failed {
            println!("not prepared: {f}");
        }
        if sealed {
            println!("sealed: box {name} is handed over at the next kexec");
        } else if failed.is_empty() && seal_error.is_none() {
            println!(
                "dry run: every entry can be prepared; box {name} is discarded as fdbox \
                 exits, every file given back untouched (--seal keeps it)"
            );
        }
    }
    let discarded = "the box is discarded as fdbox exits, every file given back untouched";
    if let Some(f) = seal_error {
        return Err(Failure::new(f.code, format!("{}; {discarded}", f.message)));
    }
    if let Some(first) = failed.first() {
        return Err(Failure::new(
            Code::Io,
            format!(
                "create box {name}: {} of {} entries can't be prepared, first {first}; \
                 {discarded}",
                failed.len(),
                args.add.len()
            ),
        ));
    }
    Ok(())
}
