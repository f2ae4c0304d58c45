// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox vm launch` and `fdbox vm quit`.

use std::time::Duration;

use super::process::{
    memfd,
    Launch,
    Process, //
};
use super::qmp::Qemu;
use super::record::{
    Phase,
    Record,
    StateDirArg, //
};
use super::{
    box_refused,
    human,
    no_vm, //
    parse_size,
    parse_vm_name,
};
use crate::exit::Result;

/// How long QEMU may take to exit after `quit`.
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The QEMU binary: `--qemu`, else `$FDBOX_QEMU`, else
/// `qemu-system-x86_64` on PATH.
#[derive(Debug, Clone, clap::Args)]
pub struct QemuArg {
    /// The QEMU binary.
    #[arg(
        long,
        value_name = "PATH",
        env = "FDBOX_QEMU",
        default_value = "qemu-system-x86_64"
    )]
    pub qemu: String,
}

/// Arguments of `fdbox vm launch`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
fdbox vm adds, before QEMU-ARGS: -daemonize, -pidfile and -qmp (in the state
directory), the RAM backend (-object memory-backend-file,id=fdbox-ram,
size=SIZE,mem-path=/proc/self/fd/N,share=on, and align=2M when SIZE is a
multiple of 2 MiB, so that shmem THP can back guest RAM) and -machine
memory-backend=fdbox-ram. QEMU-ARGS give the machine, e.g. -M microvm, and
must not give another memory backend, -m of another size, or stdio devices.")]
pub struct Args {
    /// The VM's name; its box will be vm:NAME.
    #[arg(value_name = "NAME", value_parser = parse_vm_name)]
    pub name: String,
    /// The guest RAM's size (K, M, G suffixes).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub ram: u64,
    /// The QEMU binary.
    #[command(flatten)]
    pub qemu: QemuArg,
    /// The state directory.
    #[command(flatten)]
    pub dir: StateDirArg,
    /// QEMU's arguments.
    #[arg(last = true, value_name = "QEMU-ARGS")]
    pub qemu_args: Vec<String>,
}

/// Runs `fdbox vm launch`.
pub fn run(args: Args) -> Result {
    let name = &args.name;
    refuse_in_use(&args.dir, name)?;
    let ram = memfd(&format!("fdbox-vm:{name}"), args.ram)?;
    let launch = Launch {
        name,
        qemu: &args.qemu.qemu,
        ram: &ram,
        ram_size: args.ram,
        extra: &[],
        incoming: false,
        args: &args.qemu_args,
    };
    let qemu = launch.start(&args.dir)?;
    let record = (|| {
        let mut q = Qemu::connect(name, &args.dir.qmp(name))?;
        let record = Record {
            name: name.clone(),
            phase: Phase::Running,
            pid: qemu.pid,
            start_time: qemu.start_time,
            qmp: args.dir.qmp(name),
            qemu: args.qemu.qemu.clone(),
            qemu_version: q.version()?,
            ram_size: args.ram,
            ram_fd: std::os::fd::AsRawFd::as_raw_fd(&ram),
            args: args.qemu_args.clone(),
        };
        args.dir.store(&record)?;
        Ok(record)
    })()
    .inspect_err(|_| {
        // Never leave a QEMU nobody knows of.
        qemu.kill();
        args.dir.forget(name);
    })?;
    println!(
        "vm {name}: QEMU {} (pid {}) runs the guest on a {} memfd; QMP at {}",
        record.qemu_version,
        record.pid,
        human(record.ram_size),
        record.qmp.display()
    );
    Ok(())
}

/// Refuses a name whose QEMU runs.
pub fn refuse_if_running(dir: &StateDirArg, name: &str) -> Result {
    match dir.load(name)? {
        Some(r) if r.phase == Phase::Running => refuse_in_use(dir, name),
        _ => Ok(()),
    }
}

/// Refuses a name in use: its QEMU runs, or it is saved and waits for
/// its restore.
pub fn refuse_in_use(dir: &StateDirArg, name: &str) -> Result {
    let Some(r) = dir.load(name)? else {
        return Ok(());
    };
    match r.phase {
        Phase::Running if Process::find(name, r.pid, Some(r.start_time)).is_ok() => Err(box_refused(
            name,
            format!("is running (QEMU pid {}); fdbox vm quit {name} first", r.pid),
        )),
        Phase::Running => Ok(()),
        Phase::Saved => Err(box_refused(
            name,
            format!(
                "is saved in the sealed box {}: it continues after the kexec (fdbox vm restore {name})",
                super::box_name(name)
            ),
        )),
        Phase::SavedToFile => Err(box_refused(
            name,
            format!("is saved to a file: fdbox vm restore {name} --from-file FILE, or fdbox vm quit {name}"),
        )),
    }
}

/// Ends QEMU: QMP `quit` through `q` if there is a session, SIGKILL if it
/// hasn't exited within [`QUIT_TIMEOUT`]. Whether it has exited.
pub fn end_qemu(q: Option<Qemu>, p: &Process) -> bool {
    let asked = q.is_some_and(|mut q| q.quit().is_ok());
    if asked && p.wait_exit(QUIT_TIMEOUT) {
        return true;
    }
    p.kill();
    p.wait_exit(QUIT_TIMEOUT)
}

/// Arguments of `fdbox vm quit`.
#[derive(Debug, clap::Args)]
pub struct QuitArgs {
    /// The VM.
    #[arg(value_name = "NAME", value_parser = parse_vm_name)]
    pub name: String,
    /// The state directory.
    #[command(flatten)]
    pub dir: StateDirArg,
}

/// Runs `fdbox vm quit`: QMP `quit`, SIGKILL if QEMU hasn't exited within
/// [`QUIT_TIMEOUT`].
pub fn quit(args: QuitArgs) -> Result {
    let name = &args.name;
    let r = args.dir.load(name)?.ok_or_else(|| no_vm(name))?;
    if r.phase == Phase::Running {
        if let Ok(p) = Process::find(name, r.pid, Some(r.start_time)) {
            let q = Qemu::connect(name, &r.qmp).ok();
            if !end_qemu(q, &p) {
                // Kept on record: forgetting it would orphan QEMU.
                return Err(super::gone(
                    name,
                    format!(
                        "QEMU (pid {}) survives SIGKILL for {QUIT_TIMEOUT:?}; the record stays",
                        r.pid
                    ),
                ));
            }
        }
    }
    args.dir.forget(name);
    println!("vm {name}: QEMU has exited; the record is gone");
    Ok(())
}
