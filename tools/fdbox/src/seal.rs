// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox seal BOX`: hand an open outgoing box to the next kernel.

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

/// Arguments of `fdbox seal`.
#[derive(Debug, clap::Args)]
#[command(after_help = format!(
    "The box must be open: another process (a VMM) created it and holds it.\n\
     Either every entry is sealed, or none is and the box stays open.\n\n{EXIT_CODES_HELP}"
))]
pub struct Args {
    /// The outgoing box.
    #[arg(value_name = "BOX", value_parser = parse_name)]
    pub name: String,
    /// Where the device is.
    #[command(flatten)]
    pub device: DeviceArg,
    /// Print JSON (schema 1) instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs `fdbox seal`.
pub fn run(args: Args) -> Result {
    let dev = args.device.open()?;
    let name = &args.name;
    let b = device::open_box(&dev, name, Direction::Outgoing, args.device.owner)?;
    b.seal()
        .map_err(|e| refused(format!("seal box {name}"), Request::Seal, e))?;
    let info = device::box_info(&b, name)?;
    if args.json {
        return view::print_json(&view::BoxReport::new(&info));
    }
    print!("{}", view::box_text(&info));
    println!("sealed: box {name} is handed over at the next kexec");
    Ok(())
}
