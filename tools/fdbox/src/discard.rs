// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox discard BOX [ENTRY]`: free incoming entries now rather than at
//! the next kexec.

use fdbox::Direction;
use serde::Serialize;

use crate::device::{
    self,
    parse_name,
    refused,
    DeviceArg,
    Request, //
};
use crate::exit::{
    Result, //
    EXIT_CODES_HELP,
};
use crate::view::{
    self,
    BoxJson, //
};

/// Arguments of `fdbox discard`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct Args {
    /// The incoming box.
    #[arg(value_name = "BOX", value_parser = parse_name)]
    pub name: String,
    /// The entry to discard; without it, every entry not retrieved.
    #[arg(value_name = "ENTRY", value_parser = parse_name)]
    pub entry: Option<String>,
    /// Where the device is.
    #[command(flatten)]
    pub device: DeviceArg,
    /// Print JSON (schema 1) instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `fdbox discard --json`.
#[derive(Debug, Serialize)]
struct DiscardJson {
    /// [`view::SCHEMA`].
    schema: u32,
    /// The entry discarded, or `null` for every entry not retrieved.
    discarded: Option<String>,
    /// The box afterwards.
    #[serde(rename = "box")]
    box_: BoxJson,
}

/// Runs `fdbox discard`.
pub fn run(args: Args) -> Result {
    let dev = args.device.open()?;
    let name = &args.name;
    let b = device::open_box(&dev, name, Direction::Incoming, args.device.owner)?;
    let what = match &args.entry {
        Some(e) => format!("discard {name}/{e}"),
        None => format!("discard box {name}"),
    };
    b.discard(args.entry.as_deref())
        .map_err(|e| refused(what, Request::Discard, e))?;
    let info = device::box_info(&b, name)?;
    if args.json {
        return view::print_json(&DiscardJson {
            schema: view::SCHEMA,
            discarded: args.entry,
            box_: BoxJson::from(&info),
        });
    }
    print!("{}", view::box_text(&info, None));
    match &args.entry {
        Some(e) => println!("discarded entry {e} of box {name}"),
        None => println!("discarded every entry of box {name} not retrieved"),
    }
    Ok(())
}
