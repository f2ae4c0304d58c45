// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox seal [--previous] BOX`: hand an outgoing box to the next kernel,
//! or seal a sealed one again with other flags.

use fdbox::{
    BoxFd,
    BoxState,
    Direction,
    SealFlags, //
};

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
use crate::view;

/// What `--help` adds.
const AFTER_HELP: &str = "\
The box must be open (another process, a VMM, created it and holds it), or
sealed with other flags: fdbox then cancels it and seals it again with the
flags asked for, or, if that fails, as it was. Either every entry is sealed,
or none is and the box stays as it was.

--previous is for a rollback: the next kernel is one version behind this
one, and its handlers read only their previous payload versions (fdbox check
says so). Each entry is written at its handler's previous version; a handler
that can't express its file's state there refuses (EOPNOTSUPP). Sealing
again without --previous writes the current versions.";

/// Arguments of `fdbox seal`.
#[derive(Debug, clap::Args)]
#[command(after_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"))]
pub struct Args {
    /// The outgoing box.
    #[arg(value_name = "BOX", value_parser = parse_name)]
    pub name: String,
    /// Write each entry at its handler's previous payload version, for a
    /// kernel one version behind (FDBOX_SEAL_PREVIOUS).
    #[arg(long)]
    pub previous: bool,
    /// Where the device is.
    #[command(flatten)]
    pub device: DeviceArg,
    /// Print JSON (schema 1) instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// The seal flags of `--previous`.
pub fn flags(previous: bool) -> SealFlags {
    if previous {
        SealFlags::PREVIOUS
    } else {
        SealFlags::empty()
    }
}

/// Runs `fdbox seal`.
pub fn run(args: Args) -> Result {
    let dev = args.device.open()?;
    let name = &args.name;
    let b = device::open_box(&dev, name, Direction::Outgoing, args.device.owner)?;
    let flags = flags(args.previous);
    let before = device::box_info(&b, name)?;
    let resealed = before.state == BoxState::Sealed && before.seal_flags != flags;
    if resealed {
        reseal(&b, name, before.seal_flags, flags)?;
    } else {
        b.seal_with(flags)
            .map_err(|e| refused(format!("seal box {name}"), Request::Seal, e))?;
    }
    let info = device::box_info(&b, name)?;
    if args.json {
        return view::print_json(&view::BoxReport::new(&info));
    }
    print!("{}", view::box_text(&info, None));
    let how = if args.previous {
        " at its handlers' previous payload versions"
    } else {
        ""
    };
    let again = if resealed { " again" } else { "" };
    println!("sealed{again}: box {name} is handed over{how} at the next kexec");
    Ok(())
}

/// Seals the sealed box `b` again with `flags` instead of `old`: cancel,
/// then seal; if the seal fails, seals it again with `old`, as it was.
fn reseal(b: &BoxFd, name: &str, old: SealFlags, flags: SealFlags) -> Result {
    b.cancel()
        .map_err(|e| refused(format!("cancel box {name}"), Request::Cancel, e))?;
    // From here on the box is open: closing it would discard it.
    let Err(e) = b.seal_with(flags) else {
        return Ok(());
    };
    let why = explain(Request::Seal, &e);
    let outcome = match b.seal_with(old) {
        Ok(()) => format!("box {name} is sealed again as it was"),
        Err(again) => format!(
            "SEALING AGAIN FAILED ({}): box {name} is open and is discarded as fdbox exits, \
             every file given back untouched",
            explain(Request::Seal, &again)
        ),
    };
    Err(Failure::new(
        Code::Io,
        format!("seal box {name}: {why}; {outcome}"),
    ))
}
