// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox`: the FDBox command-line tool.
//!
//! Each subcommand lives in its own module and returns a [`Failure`] that
//! maps to one documented exit code and one line on stderr.

mod exit;
mod inspect;
mod table;

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
    /// Decode an FDBox blob from a file or from KHO's debugfs and show its
    /// boxes and entries.
    Inspect(inspect::Args),
}

fn main() -> ExitCode {
    // A bug must still end in one line, never a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("fdbox: internal error: {info}");
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("fdbox: error: {}", f.message);
            ExitCode::from(f.code as u8)
        }
    }
}
