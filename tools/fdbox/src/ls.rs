// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox ls [BOX]`: the boxes, or one box's entries with their states and
//! reasons.

use fdbox::Direction;

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
    EXIT_CODES_HELP,
};
use crate::view::{
    self,
    BoxJson,
    SummaryJson, //
};

/// Arguments of `fdbox ls`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct Args {
    /// A box: show its entries, with their states and, for unavailable
    /// ones, the reason and what it means in this kernel. An outgoing and
    /// an incoming box may share a name; both are shown unless --out or
    /// --in picks one.
    #[arg(value_name = "BOX", value_parser = parse_name)]
    pub name: Option<String>,
    /// Only the outgoing box BOX.
    #[arg(long = "out", requires = "name", conflicts_with = "incoming")]
    pub outgoing: bool,
    /// Only the incoming box BOX.
    #[arg(long = "in", requires = "name")]
    pub incoming: bool,
    /// Where the device is.
    #[command(flatten)]
    pub device: DeviceArg,
    /// Print JSON (schema 1) instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs `fdbox ls`.
pub fn run(args: Args) -> Result {
    let dev = args.device.open()?;
    let boxes = dev
        .list_boxes()
        .map_err(|e| refused("list boxes", Request::List, e))?;
    let Some(name) = &args.name else {
        if args.json {
            let boxes: Vec<SummaryJson> = boxes.iter().map(SummaryJson::from).collect();
            return view::print_json(&serde_json::json!({
                "schema": view::SCHEMA,
                "boxes": boxes,
            }));
        }
        print!("{}", view::boxes_text(&boxes));
        return Ok(());
    };
    let wanted = |d: Direction| match (args.outgoing, args.incoming) {
        (true, _) => d == Direction::Outgoing,
        (_, true) => d == Direction::Incoming,
        _ => matches!(d, Direction::Outgoing | Direction::Incoming),
    };
    let mut infos = Vec::new();
    // Names are per owner: every owner's box of that name, or only that of --owner.
    for b in boxes.iter().filter(|b| {
        &b.name == name
            && wanted(b.direction)
            && args.device.owner.is_none_or(|uid| uid == b.owner_uid)
    }) {
        let fd = match device::open_box(&dev, name, b.direction, Some(b.owner_uid)) {
            Ok(fd) => fd,
            // Another user's box of the same name, which only root may open.
            Err(_) if b.owner_uid != rustix::process::geteuid().as_raw() => continue,
            Err(e) => return Err(e),
        };
        let info = device::box_info(&fd, name)?;
        infos.push(info);
    }
    if infos.is_empty() {
        let side = match (args.outgoing, args.incoming) {
            (true, _) => "outgoing ",
            (_, true) => "incoming ",
            _ => "",
        };
        return Err(Failure::new(Code::Io, format!("no {side}box named {name}")));
    }
    // Only to explain unavailable entries: without it they are still listed.
    let caps = dev.caps().ok();
    if args.json {
        let boxes: Vec<BoxJson> = infos
            .iter()
            .map(|b| match &caps {
                Some(caps) => BoxJson::with_caps(b, caps),
                None => BoxJson::from(b),
            })
            .collect();
        return view::print_json(&serde_json::json!({
            "schema": view::SCHEMA,
            "boxes": boxes,
        }));
    }
    let texts: Vec<String> = infos
        .iter()
        .map(|b| view::box_text(b, caps.as_ref()))
        .collect();
    print!("{}", texts.join("\n"));
    Ok(())
}
