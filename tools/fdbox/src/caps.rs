// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox caps`: what this kernel can preserve and restore.

use crate::device::{
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
    CapsJson, //
};

/// Arguments of `fdbox caps`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct Args {
    /// Where the device is.
    #[command(flatten)]
    pub device: DeviceArg,
    /// Print JSON (schema 1) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `fdbox caps`.
pub fn run(args: Args) -> Result {
    let dev = args.device.open()?;
    let caps = dev
        .caps()
        .map_err(|e| refused("get capabilities", Request::Caps, e))?;
    if args.json {
        return view::print_json(&CapsJson::from(&caps));
    }
    print!("{}", view::caps_text(&caps));
    Ok(())
}
