// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox vm`: run an unmodified QEMU whose guest survives the host's
//! kexec.
//!
//! `launch` creates the guest RAM memfd itself and starts QEMU on it
//! (`memory-backend-file` on `/proc/self/fd/N`, `share=on`), with QMP on a
//! UNIX socket. `save` stops the guest and migrates it in `cpr-reboot` mode
//! with `x-ignore-shared`, so only device state is written (to a memfd of
//! its own), then boxes RAM, state and metadata under the box `vm:NAME`,
//! seals it and quits QEMU. After the kexec, `restore` retrieves them,
//! starts QEMU with `-incoming defer` on the same RAM and loads the state.
//! Guest RAM is never copied.

mod launch;
mod ls;
mod process;
#[cfg(test)]
mod qemu_tests;
mod qmp;
mod record;
mod restore;
mod save;

use std::fmt::Display;
use std::time::{
    Duration,
    Instant, //
};

use crate::exit::{
    Code,
    Failure,
    Result, //
};

/// The prefix of the boxes `fdbox vm` makes: the box of VM `NAME` is
/// `vm:NAME`.
pub const BOX_PREFIX: &str = "vm:";

/// The subcommands of `fdbox vm`.
#[derive(Debug, clap::Subcommand)]
pub enum VmCommand {
    /// Create the guest RAM memfd and start QEMU on it, with QMP on a
    /// UNIX socket.
    Launch(launch::Args),
    /// Stop the guest, write its device state (not its RAM), box RAM,
    /// state and metadata as `vm:NAME`, seal, and quit QEMU.
    Save(save::Args),
    /// After the kexec: retrieve a saved VM and continue it in a new QEMU.
    Restore(restore::Args),
    /// List the VMs: running, saved, or handed over by the previous kernel.
    Ls(ls::Args),
    /// Quit a launched QEMU (the guest is lost) and forget it.
    Quit(launch::QuitArgs),
}

/// Arguments of `fdbox vm`.
#[derive(Debug, clap::Args)]
#[command(after_help = VM_EXIT_CODES_HELP)]
pub struct Args {
    /// The subcommand.
    #[command(subcommand)]
    pub command: VmCommand,
}

/// The exit codes of `fdbox vm`, besides the common ones.
const VM_EXIT_CODES_HELP: &str = "\
Exit codes of fdbox vm:
  0  success
  1  I/O error
  2  usage error
  7  QEMU is gone: not running, exited, its QMP socket closed, or no QMP
     answer within 30 s (another client holds QMP, or QEMU hung)
  8  QEMU refused a QMP command, or a migration failed
  9  refused: FDBox refused the box (name taken, entry unavailable), or the
     VM is in use (its QEMU runs, or it is saved already)
 10  mismatch: wrong RAM size or QEMU version, guest RAM not on fdbox vm's
     shared file backend, or metadata this tool can't read
 11  no such VM";

/// Runs `fdbox vm`.
pub fn run(args: Args) -> Result {
    match args.command {
        VmCommand::Launch(a) => launch::run(a),
        VmCommand::Save(a) => save::run(a),
        VmCommand::Restore(a) => restore::run(a),
        VmCommand::Ls(a) => ls::run(a),
        VmCommand::Quit(a) => launch::quit(a),
    }
}

/// The box name of VM `name`.
pub fn box_name(name: &str) -> String {
    format!("{BOX_PREFIX}{name}")
}

/// A VM name: its box name must be a valid box name, and it names files.
pub fn parse_vm_name(s: &str) -> std::result::Result<String, String> {
    // No '.': the state directory's files are NAME.json, NAME.meta.json...
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
    {
        return Err("a VM name is ASCII letters, digits, '_' and '-'".into());
    }
    fdbox::validate_name(&box_name(s)).map_err(|e| format!("box {}: {e}", box_name(s)))?;
    Ok(s.to_string())
}

/// A size: bytes, or with a suffix K, M, G (powers of 1024; `KiB` etc. too).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a size such as 64M"))?;
    let shift = match unit {
        "" => 0,
        "K" | "k" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (K, M or G)")),
    };
    let bytes = n
        .checked_shl(shift)
        .filter(|b| b >> shift == n)
        .ok_or(format!("{s:?} is too large"))?;
    if bytes == 0 || bytes % 4096 != 0 {
        return Err(format!(
            "{s:?}: the size must be a non-zero multiple of 4 KiB"
        ));
    }
    Ok(bytes)
}

/// `n` bytes for a reader: `64 MiB`, `40 KiB`.
pub fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// QEMU is gone (exit 7).
pub fn gone(name: &str, what: impl Display) -> Failure {
    Failure::new(Code::QemuGone, format!("vm {name}: {what}"))
}

/// QEMU refused a command or a migration failed (exit 8).
pub fn qmp_failed(name: &str, what: impl Display) -> Failure {
    Failure::new(Code::Qmp, format!("vm {name}: QMP: {what}"))
}

/// FDBox refused (exit 9).
pub fn box_refused(name: &str, what: impl Display) -> Failure {
    Failure::new(Code::BoxRefused, format!("vm {name}: {what}"))
}

/// A mismatch (exit 10).
pub fn mismatch(name: &str, what: impl Display) -> Failure {
    Failure::new(Code::Mismatch, format!("vm {name}: {what}"))
}

/// No such VM (exit 11).
pub fn no_vm(name: &str) -> Failure {
    Failure::new(
        Code::NoVm,
        format!("vm {name}: no such VM here (fdbox vm ls lists them)"),
    )
}

/// The phases of one step, timed, printed as they end.
pub struct Phases {
    /// What they are phases of, for the heading.
    title: String,
    /// Each phase and how long it took.
    done: Vec<(String, Duration)>,
}

impl Phases {
    /// Starts a step; prints its heading.
    pub fn new(title: impl Into<String>) -> Phases {
        let title = title.into();
        println!("{title}");
        Phases {
            title,
            done: Vec::new(),
        }
    }

    /// Runs one phase and prints its time (also when it fails).
    pub fn time<T>(&mut self, phase: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let start = Instant::now();
        let r = f();
        let took = start.elapsed();
        let mark = if r.is_ok() { "" } else { "  (failed)" };
        println!("  {phase:<14} {:>10.3} ms{mark}", took.as_secs_f64() * 1e3);
        self.done.push((phase.to_string(), took));
        r
    }

    /// The phases in microseconds.
    pub fn micros(&self) -> Vec<(String, u64)> {
        self.done
            .iter()
            .map(|(p, d)| (p.clone(), d.as_micros() as u64))
            .collect()
    }

    /// Prints the total.
    pub fn total(&self, label: &str) -> Duration {
        let sum: Duration = self.done.iter().map(|(_, d)| *d).sum();
        println!(
            "  {label:<14} {:>10.3} ms  ({})",
            sum.as_secs_f64() * 1e3,
            self.title
        );
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("8192"), Ok(8192));
        assert!(parse_size("0").is_err());
        assert!(parse_size("100").unwrap_err().contains("4 KiB"));
        assert!(parse_size("1T").unwrap_err().contains("unit"));
        assert!(parse_size("99999999999999G")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_size("M").is_err());
    }

    #[test]
    fn vm_names_are_checked() {
        assert_eq!(parse_vm_name("vm0"), Ok("vm0".into()));
        assert!(parse_vm_name("").is_err());
        assert!(parse_vm_name("../x").is_err());
        assert!(parse_vm_name(".x").is_err());
        assert!(parse_vm_name("x.meta").is_err());
        assert!(parse_vm_name("a b").is_err());
        assert!(parse_vm_name(&"x".repeat(61))
            .unwrap_err()
            .contains("box vm:"));
        assert_eq!(box_name("vm0"), "vm:vm0");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(64 << 20), "64.0 MiB");
        assert_eq!(human(2 << 30), "2 GiB");
        assert_eq!(human(40960), "40.0 KiB");
        assert_eq!(human(10), "10 B");
    }
}
