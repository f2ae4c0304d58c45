// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox vm ls`: the VMs of the state directory, and those the previous
//! kernel handed over.

use serde::Serialize;

use fdbox::{
    Direction,
    EntryState, //
};

use super::process::Process;
use super::record::{
    read_json,
    Meta,
    Phase,
    StateDirArg, //
};
use super::{
    human,
    BOX_PREFIX, //
};
use crate::device::DeviceArg;
use crate::exit::{
    Code,
    Failure,
    Result, //
};
use crate::table::Table;

/// Arguments of `fdbox vm ls`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The state directory.
    #[command(flatten)]
    pub dir: StateDirArg,
    /// Where the device is (incoming VMs are listed only if it opens).
    #[command(flatten)]
    pub device: DeviceArg,
}

/// One VM, as listed.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Row {
    /// The VM's name.
    pub name: String,
    /// `running`, `saved`, `saved-to-file`, `gone` (its QEMU exited), or
    /// `incoming` (handed over by the previous kernel, not restored yet).
    pub state: String,
    /// QEMU's pid, if it runs.
    pub pid: Option<i32>,
    /// The guest RAM's size, if known here.
    pub ram_size: Option<u64>,
    /// The QEMU version, if known here.
    pub qemu_version: Option<String>,
    /// The box.
    pub r#box: String,
}

/// Runs `fdbox vm ls`.
pub fn run(args: Args) -> Result {
    let mut rows = Vec::new();
    for r in args.dir.load_all()? {
        let alive = Process::find(&r.name, r.pid, Some(r.start_time)).is_ok();
        let state = match r.phase {
            Phase::Running if alive => "running",
            Phase::Running => "gone",
            Phase::Saved => "saved",
            Phase::SavedToFile => "saved-to-file",
        };
        rows.push(Row {
            r#box: super::box_name(&r.name),
            state: state.into(),
            pid: (r.phase == Phase::Running && alive).then_some(r.pid),
            ram_size: Some(r.ram_size),
            qemu_version: Some(r.qemu_version),
            name: r.name,
        });
    }
    if let Ok(dev) = args.device.open() {
        let boxes = dev
            .list_boxes()
            .map_err(|e| Failure::new(Code::Io, format!("list boxes: {e}")))?;
        for b in boxes {
            let Some(name) = b.name.strip_prefix(BOX_PREFIX) else {
                continue;
            };
            if b.direction != Direction::Incoming {
                continue;
            }
            // Listed until its RAM is retrieved: then a record says more.
            let restorable = dev
                .open_box_of(&b.name, Direction::Incoming, b.owner_uid)
                .and_then(|bx| bx.info())
                .is_ok_and(|info| {
                    info.entry("ram")
                        .is_some_and(|e| e.state == EntryState::Restorable)
                });
            if !restorable {
                continue;
            }
            // A stash a refused restore left says what the box holds.
            let stash = read_json::<Meta>(&args.dir.meta_stash(name)).ok().flatten();
            rows.push(Row {
                name: name.to_string(),
                state: "incoming".into(),
                pid: None,
                ram_size: stash.as_ref().map(|m| m.ram_size),
                qemu_version: stash.map(|m| m.qemu_version),
                r#box: b.name.clone(),
            });
        }
    }
    if args.json {
        return crate::view::print_json(&rows);
    }
    let mut t = Table::new(&["NAME", "STATE", "PID", "RAM", "QEMU", "BOX"]);
    let dash = || "-".to_string();
    for r in rows {
        t.row(vec![
            r.name,
            r.state,
            r.pid.map_or_else(dash, |p| p.to_string()),
            r.ram_size.map_or_else(dash, human),
            r.qemu_version.unwrap_or_else(dash),
            r.r#box,
        ]);
    }
    print!("{}", t.render());
    Ok(())
}
