// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox cancel BOX`: unseal an outgoing box, which dissolves it.

use fdbox::Direction;

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
use crate::view;

/// What `--help` adds.
const AFTER_HELP: &str = "\
The kernel's cancel only unseals the box: it is open again, and an open box
is discarded when its last fd closes. fdbox holds the only fd of it (unless
another process opened the box too) and closes it as it exits, so cancel
dissolves the box: it is no longer handed over, and every file is given back
untouched.";

/// Arguments of `fdbox cancel`.
#[derive(Debug, clap::Args)]
#[command(after_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"))]
pub struct Args {
    /// The sealed outgoing box.
    #[arg(value_name = "BOX", value_parser = parse_name)]
    pub name: String,
    /// Where the device is.
    #[command(flatten)]
    pub device: DeviceArg,
    /// Print JSON (schema 1) instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs `fdbox cancel`.
pub fn run(args: Args) -> Result {
    let dev = args.device.open()?;
    let name = &args.name;
    let b = device::open_box(&dev, name, Direction::Outgoing, args.device.owner)?;
    b.cancel()
        .map_err(|e| refused(format!("cancel box {name}"), Request::Cancel, e))?;
    let info = device::box_info(&b, name)?;
    if args.json {
        return view::print_json(&view::BoxReport::new(&info));
    }
    print!("{}", view::box_text(&info, None));
    println!(
        "cancelled: box {name} is no longer handed over; fdbox closes it, so the kernel \
         discards it and gives every file back untouched"
    );
    Ok(())
}
