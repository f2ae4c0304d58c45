// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox`: the FDBox command-line tool.
//!
//! Each subcommand lives in its own module and returns a [`Failure`] that
//! maps to one documented exit code and one line on stderr.

mod add;
mod cancel;
mod caps;
mod check;
mod create;
mod device;
mod discard;
mod exit;
mod inspect;
mod ls;
mod retrieve;
mod seal;
mod source;
mod table;
mod view;
mod vm;

use std::process::ExitCode;

use clap::{
    Parser,
    Subcommand, //
};

use crate::exit::EXIT_CODES_HELP;

/// Inspect and drive FDBox, the kernel facility that carries file
/// descriptors across a kexec.
#[derive(Debug, Parser)]
#[command(name = "fdbox", version, after_help = EXIT_CODES_HELP)]
struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// List the boxes, or with BOX, its entries with their states and
    /// reasons.
    Ls(ls::Args),
    /// Create an outgoing box, add entries and, with --seal, hand it to the
    /// next kernel; without --seal, a dry run.
    Create(create::Args),
    /// Add entries to an outgoing box (a sealed one is cancelled, filled and
    /// sealed again; on failure it ends as it was).
    Add(add::Args),
    /// Seal an open outgoing box: hand it to the next kernel.
    Seal(seal::Args),
    /// Unseal an outgoing box and close it, which dissolves it: every file
    /// is given back.
    Cancel(cancel::Args),
    /// Retrieve incoming entries and run a command that inherits them.
    Retrieve(retrieve::Args),
    /// Free incoming entries not retrieved, now rather than at the next
    /// kexec.
    Discard(discard::Args),
    /// Show what this kernel can preserve and restore: format versions,
    /// handlers, limits, and what the previous kernel handed over.
    Caps(caps::Args),
    /// Decode an FDBox blob from a file or from debugfs (fdbox_core's
    /// copies) and show its boxes and entries.
    Inspect(inspect::Args),
    /// Check what a target kernel, from its module directory, would restore
    /// of this kernel's hand-over, entry by entry, before kexecing into it.
    Check(check::Args),
    /// Run an unmodified QEMU whose guest survives the kexec: launch, save,
    /// restore, ls, quit.
    Vm(vm::Args),
}

fn main() -> ExitCode {
    // A bug must still end in one line, never a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("fdbox: internal error: {info}");
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ls(args) => ls::run(args),
        Command::Create(args) => create::run(args),
        Command::Add(args) => add::run(args),
        Command::Seal(args) => seal::run(args),
        Command::Cancel(args) => cancel::run(args),
        Command::Retrieve(args) => retrieve::run(args),
        Command::Discard(args) => discard::run(args),
        Command::Caps(args) => caps::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Check(args) => check::run(args),
        Command::Vm(args) => vm::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("fdbox: error: {}", f.message);
            ExitCode::from(f.code as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::error::ErrorKind;

    use super::*;

    /// Parses `fdbox ARGS...`.
    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("fdbox").chain(args.iter().copied())).map(|c| c.command)
    }

    /// The kind of the parse error of `fdbox ARGS...`.
    fn refused(args: &[&str]) -> ErrorKind {
        parse(args).unwrap_err().kind()
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn ls_takes_an_optional_box_and_a_side() {
        let Command::Ls(a) = parse(&["ls"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.name, None);
        assert!(!a.json && !a.outgoing && !a.incoming);
        assert_eq!(a.device.device, PathBuf::from("/dev/fdbox"));
        let Command::Ls(a) = parse(&["ls", "vm0", "--in", "--json"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.name.as_deref(), Some("vm0"));
        assert!(a.incoming && a.json && !a.outgoing);
        let Command::Ls(a) = parse(&["ls", "--device", "/tmp/dev", "vm0", "--out"]).unwrap() else {
            panic!()
        };
        assert!(a.outgoing);
        assert_eq!(a.device.device, PathBuf::from("/tmp/dev"));
        assert_eq!(refused(&["ls", "--in"]), ErrorKind::MissingRequiredArgument);
        assert_eq!(
            refused(&["ls", "vm0", "--in", "--out"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(refused(&["ls", ""]), ErrorKind::ValueValidation);
    }

    #[test]
    fn create_takes_repeated_adds_and_seal() {
        let Command::Create(a) = parse(&[
            "create",
            "vm0",
            "--add",
            "ram=/proc/42/fd/7",
            "--add",
            "cfg=/tmp/a=b",
            "--seal",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.name, "vm0");
        assert!(a.seal && !a.json);
        let adds: Vec<String> = a.add.iter().map(ToString::to_string).collect();
        assert_eq!(adds, ["ram=/proc/42/fd/7", "cfg=/tmp/a=b"]);
        let Command::Create(a) = parse(&["create", "vm0", "--json"]).unwrap() else {
            panic!()
        };
        assert!(a.add.is_empty() && !a.seal && a.json);
        assert_eq!(refused(&["create"]), ErrorKind::MissingRequiredArgument);
        assert_eq!(
            refused(&["create", "vm0", "--add", "ram"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            refused(&["create", "vm0", "--add", "=/dev/null"]),
            ErrorKind::ValueValidation
        );
        let long = "x".repeat(64);
        assert_eq!(refused(&["create", &long]), ErrorKind::ValueValidation);
    }

    #[test]
    fn add_needs_at_least_one_spec() {
        let Command::Add(a) = parse(&["add", "vm0", "a=/x", "b=/y", "--json"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.name, "vm0");
        assert_eq!(a.add.len(), 2);
        assert!(a.json);
        assert_eq!(refused(&["add", "vm0"]), ErrorKind::MissingRequiredArgument);
        assert_eq!(refused(&["add", "vm0", "nope"]), ErrorKind::ValueValidation);
    }

    #[test]
    fn check_takes_boxes_and_needs_modules() {
        let Command::Check(a) = parse(&["check", "--modules", "/lib/modules/6.99.0"]).unwrap()
        else {
            panic!()
        };
        assert!(a.names.is_empty() && !a.json);
        assert_eq!(a.modules, PathBuf::from("/lib/modules/6.99.0"));
        assert_eq!(a.device.device, PathBuf::from("/dev/fdbox"));
        let Command::Check(a) = parse(&[
            "check",
            "vm0",
            "vm1",
            "--modules=/m",
            "--json",
            "--device",
            "/tmp/dev",
            "--owner",
            "1000",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.names, ["vm0", "vm1"]);
        assert!(a.json);
        assert_eq!(a.device.device, PathBuf::from("/tmp/dev"));
        assert_eq!(a.device.owner, Some(1000));
        assert_eq!(
            refused(&["check", "vm0"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            refused(&["check", "", "--modules", "/m"]),
            ErrorKind::ValueValidation
        );
    }

    #[test]
    fn seal_and_create_take_previous() {
        let Command::Seal(a) = parse(&["seal", "--previous", "vm0"]).unwrap() else {
            panic!()
        };
        assert!(a.previous && a.name == "vm0");
        assert!(matches!(parse(&["seal", "vm0"]).unwrap(), Command::Seal(a) if !a.previous));
        let Command::Create(a) = parse(&["create", "vm0", "--seal", "--previous"]).unwrap() else {
            panic!()
        };
        assert!(a.seal && a.previous);
        assert_eq!(
            refused(&["create", "vm0", "--previous"]),
            ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn seal_cancel_discard_caps() {
        assert!(matches!(parse(&["seal", "vm0"]).unwrap(), Command::Seal(a) if a.name == "vm0"));
        assert!(
            matches!(parse(&["cancel", "vm0", "--json"]).unwrap(), Command::Cancel(a) if a.json)
        );
        let Command::Discard(a) = parse(&["discard", "vm0"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.entry, None);
        let Command::Discard(a) = parse(&["discard", "vm0", "ram"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.entry.as_deref(), Some("ram"));
        assert!(matches!(parse(&["caps", "--json"]).unwrap(), Command::Caps(a) if a.json));
        assert_eq!(refused(&["seal"]), ErrorKind::MissingRequiredArgument);
        assert_eq!(
            refused(&["discard", "vm0", "a", "b"]),
            ErrorKind::UnknownArgument
        );
    }

    #[test]
    fn retrieve_splits_entries_from_the_command() {
        let Command::Retrieve(a) = parse(&[
            "retrieve",
            "vm0",
            "ram",
            "iommu",
            "--",
            "qemu",
            "--incoming",
            "-m",
            "1G",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.name, "vm0");
        assert_eq!(a.entries, ["ram", "iommu"]);
        assert_eq!(a.command, ["qemu", "--incoming", "-m", "1G"]);
        assert_eq!(
            refused(&["retrieve", "vm0", "ram"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            refused(&["retrieve", "vm0", "--", "qemu"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            refused(&["retrieve", "vm0", "a,b", "--", "qemu"]),
            ErrorKind::ValueValidation
        );
    }

    #[test]
    fn inspect_still_parses() {
        assert!(matches!(
            parse(&["inspect", "--in"]).unwrap(),
            Command::Inspect(_)
        ));
        assert!(matches!(
            parse(&["inspect", "verify", "/tmp/blob"]).unwrap(),
            Command::Inspect(_)
        ));
    }
}
