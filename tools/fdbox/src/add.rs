// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox add BOX NAME=SRC...`: add entries to an outgoing box, sealed or
//! open; a failure leaves the box as it was.

use std::os::fd::OwnedFd;

use fdbox::{
    BoxFd,
    BoxState,
    Direction,
    SealFlags, //
};
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
use crate::seal;
use crate::source::{
    self,
    parse_spec,
    Spec, //
};
use crate::view::{
    self,
    BoxJson, //
};

/// What `--help` adds about sealed boxes.
const AFTER_HELP: &str = "\
A sealed box only takes entries while open, so fdbox cancels it, adds the
entries and seals it again with the flags it had (--previous or not). If
anything fails, fdbox removes what it added and seals the box again, so that
it ends as it was, and says so. An open box (another process is filling it)
is left open.

Adding to a sealed box is not atomic. Between the cancel and the seal the
box is open: a kexec in that window hands over nothing of it, and once a
kexec or reboot has started, the hand-over is final and sealing again fails
with EBUSY. The box is then open: it stays so while any process holds its
fd, and is dissolved, every file given back untouched, when the last fd
closes (fdbox's own as it exits, unless a VMM holds another). Don't run it
while a kexec may start.";

/// Arguments of `fdbox add`.
#[derive(Debug, clap::Args)]
#[command(after_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"))]
pub struct Args {
    /// The outgoing box.
    #[arg(value_name = "BOX", value_parser = parse_name)]
    pub name: String,
    /// The entries: the file SRC as the entry NAME. SRC is a path to open,
    /// or /proc/PID/fd/N for the very file that process has open (as
    /// pidfd_getfd(2) takes it). NAME can't contain '='.
    #[arg(value_name = "NAME=SRC", required = true, value_parser = parse_spec)]
    pub add: Vec<Spec>,
    /// Where the device is.
    #[command(flatten)]
    pub device: DeviceArg,
    /// Print JSON (schema 1) instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `fdbox add --json`.
#[derive(Debug, Serialize)]
struct AddJson {
    /// [`view::SCHEMA`].
    schema: u32,
    /// The box after the additions.
    #[serde(rename = "box")]
    box_: BoxJson,
    /// The entries added.
    added: Vec<String>,
}

/// Runs `fdbox add`.
pub fn run(args: Args) -> Result {
    source::check_unique(&args.add)?;
    let fds: Vec<OwnedFd> = args.add.iter().map(source::open).collect::<Result<_>>()?;
    let dev = args.device.open()?;
    let name = &args.name;
    let b = device::open_box(&dev, name, Direction::Outgoing, args.device.owner)?;
    let info = |b: &BoxFd| device::box_info(b, name);
    let before = info(&b)?;
    // Sealed again as it was: with previous versions if it was.
    let flags = before.seal_flags;
    let was_sealed = match before.state {
        BoxState::Sealed => true,
        BoxState::Open => false,
        other => {
            return Err(Failure::new(
                Code::Io,
                format!("add to box {name}: the box is {other}, neither open nor sealed"),
            ))
        }
    };
    if was_sealed {
        b.cancel()
            .map_err(|e| refused(format!("cancel box {name}"), Request::Cancel, e))?;
    }
    // From here on, a failure must undo everything before fdbox exits: a
    // box left open would be discarded as fdbox closes it.
    let mut added: Vec<&str> = Vec::new();
    let mut failure = None;
    for (spec, fd) in args.add.iter().zip(&fds) {
        match b.add(&spec.name, fd) {
            Ok(()) => added.push(&spec.name),
            Err(e) => {
                failure = Some(format!("add {spec}: {}", explain(Request::Add, &e)));
                break;
            }
        }
    }
    if failure.is_none() && was_sealed {
        if let Err(e) = b.seal_with(flags) {
            failure = Some(format!(
                "seal box {name}: {}",
                seal::reseal_error(flags, &e)
            ));
        }
    }
    if let Some(why) = failure {
        let outcome = roll_back(&b, name, &added, was_sealed.then_some(flags));
        return Err(Failure::new(
            Code::Io,
            format!("add to box {name}: {why}; {outcome}"),
        ));
    }

    let after = info(&b)?;
    if args.json {
        return view::print_json(&AddJson {
            schema: view::SCHEMA,
            box_: BoxJson::from(&after),
            added: added.iter().map(|s| s.to_string()).collect(),
        });
    }
    print!("{}", view::box_text(&after, None));
    let n = added.len();
    let entries = if n == 1 { "entry" } else { "entries" };
    if was_sealed {
        println!("added {n} {entries}; box {name} is sealed again");
    } else {
        println!("added {n} {entries}; box {name} stays open for the process filling it");
    }
    Ok(())
}

/// Removes `added` and, if the box was sealed (with `sealed_with`), seals
/// it again. Says how the box ended.
fn roll_back(b: &BoxFd, name: &str, added: &[&str], sealed_with: Option<SealFlags>) -> String {
    let mut problems = Vec::new();
    for entry in added.iter().rev() {
        if let Err(e) = b.remove(entry) {
            problems.push(format!("remove {entry}: {}", explain(Request::Remove, &e)));
        }
    }
    let Some(flags) = sealed_with else {
        return if problems.is_empty() {
            format!("rolled back: box {name} is open, as it was")
        } else {
            format!(
                "rollback incomplete ({}): box {name} is open with those entries",
                problems.join("; ")
            )
        };
    };
    match b.seal_with(flags) {
        Ok(()) if problems.is_empty() => {
            format!("rolled back: box {name} is sealed again, as it was")
        }
        Ok(()) => format!(
            "rollback incomplete ({}): box {name} is sealed again with those entries",
            problems.join("; ")
        ),
        Err(e) => {
            problems.push(format!("seal again: {}", seal::reseal_error(flags, &e)));
            format!(
                "ROLLBACK FAILED ({}): {}",
                problems.join("; "),
                seal::left_open(name)
            )
        }
    }
}
