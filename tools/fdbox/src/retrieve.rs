// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox retrieve BOX ENTRY... -- CMD [ARGS]`: retrieve incoming entries
//! and run a command that inherits them.

use std::ffi::OsString;
use std::os::fd::{
    AsRawFd,
    OwnedFd, //
};
use std::os::unix::process::CommandExt;

use fdbox::{
    Direction,
    EntryState, //
};
use rustix::io::FdFlags;

use crate::device::{
    self,
    explain,
    DeviceArg,
    Request, //
};
use crate::exit::{
    Code,
    Failure,
    Result, //
    EXIT_CODES_HELP,
};

/// The environment variable that tells CMD its fds.
pub const FDS_VAR: &str = "FDBOX_FDS";

/// What `--help` adds.
const AFTER_HELP: &str = "\
Each entry is retrieved once: the kernel hands the restored file to fdbox,
which clears its close-on-exec flag and runs CMD in its place (exec), with
FDBOX_FDS=NAME=FD,NAME=FD,... in the environment naming the inherited fds.
fdbox prints nothing of its own; it checks that every entry is restorable
before it retrieves any. If a retrieve still fails, the entries already
retrieved are closed as fdbox exits, and their memory is freed. Once CMD
runs, the exit status is CMD's; the codes below are fdbox's own.";

/// Arguments of `fdbox retrieve`.
#[derive(Debug, clap::Args)]
#[command(after_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"))]
pub struct Args {
    /// The incoming box.
    #[arg(value_name = "BOX", value_parser = device::parse_name)]
    pub name: String,
    /// The entries to retrieve. Names with ',' or '=' can't be passed in
    /// FDBOX_FDS.
    #[arg(value_name = "ENTRY", required = true, value_parser = parse_entry)]
    pub entries: Vec<String>,
    /// The command to run, after `--`.
    #[arg(value_name = "CMD", last = true, required = true)]
    pub command: Vec<OsString>,
    /// Where the device is.
    #[command(flatten)]
    pub device: DeviceArg,
}

/// An entry name that fits in `FDBOX_FDS`.
fn parse_entry(s: &str) -> std::result::Result<String, String> {
    let name = device::parse_name(s)?;
    if name.contains([',', '=']) {
        return Err(format!("{FDS_VAR} can't carry a name with ',' or '='"));
    }
    Ok(name)
}

/// The value of `FDBOX_FDS`.
pub fn fds_var<'a>(fds: impl IntoIterator<Item = (&'a str, i32)>) -> String {
    fds.into_iter()
        .map(|(name, fd)| format!("{name}={fd}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs `fdbox retrieve`; returns only on failure.
pub fn run(args: Args) -> Result {
    for (i, e) in args.entries.iter().enumerate() {
        if args.entries[..i].contains(e) {
            return Err(Failure::new(
                Code::Usage,
                format!("entry {e} is named twice"),
            ));
        }
    }
    let dev = args.device.open()?;
    let name = &args.name;
    let b = device::open_box(&dev, name, Direction::Incoming, args.device.owner)?;
    let info = device::box_info(&b, name)?;
    // Check every entry first: a retrieved entry can't go back.
    for entry in &args.entries {
        let Some(e) = info.entry(entry) else {
            return Err(Failure::new(
                Code::Io,
                format!("retrieve {name}/{entry}: no entry by that name; nothing retrieved"),
            ));
        };
        let reason = e.reason.map(|r| format!(" ({r})")).unwrap_or_default();
        match e.state {
            EntryState::Restorable | EntryState::Unknown(_) => {}
            state => {
                return Err(Failure::new(
                    Code::Io,
                    format!(
                        "retrieve {name}/{entry}: the entry is {state}{reason}, not \
                         restorable; nothing retrieved"
                    ),
                ))
            }
        }
    }
    let mut fds: Vec<(&str, OwnedFd)> = Vec::new();
    for entry in &args.entries {
        let fd = b.retrieve(entry).map_err(|e| {
            let lost = if fds.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = fds.iter().map(|(n, _)| *n).collect();
                format!(
                    "; {} retrieved already, closed as fdbox exits",
                    names.join(", ")
                )
            };
            Failure::new(
                Code::Io,
                format!(
                    "retrieve {name}/{entry}: {}{lost}",
                    explain(Request::Retrieve, &e)
                ),
            )
        })?;
        rustix::io::fcntl_setfd(&fd, FdFlags::empty())
            .map_err(|e| Failure::new(Code::Io, format!("clear close-on-exec of {entry}: {e}")))?;
        fds.push((entry, fd));
    }
    let var = fds_var(fds.iter().map(|(n, fd)| (*n, fd.as_raw_fd())));
    // PANIC: clap requires CMD.
    let (cmd, cmd_args) = args.command.split_first().expect("CMD is required");
    let e = std::process::Command::new(cmd)
        .args(cmd_args)
        .env(FDS_VAR, var)
        .exec();
    Err(Failure::new(
        Code::Io,
        format!(
            "cannot run {}: {e}; retrieved entries are closed as fdbox exits",
            cmd.to_string_lossy()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fds_var_lists_names_and_fds() {
        assert_eq!(fds_var([]), "");
        assert_eq!(fds_var([("ram", 3)]), "ram=3");
        assert_eq!(fds_var([("ram", 3), ("iommu", 4)]), "ram=3,iommu=4");
    }

    #[test]
    fn entry_names_must_fit_the_variable() {
        assert_eq!(parse_entry("ram"), Ok("ram".into()));
        assert!(parse_entry("a,b").is_err());
        assert!(parse_entry("a=b").is_err());
        assert!(parse_entry("").is_err());
    }
}
