// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox vm restore`: after the kexec, continue a saved VM in a new QEMU
//! on the same guest RAM.

use std::os::fd::{
    AsRawFd,
    OwnedFd, //
};
use std::path::PathBuf;
use std::time::{
    Duration,
    SystemTime,
    UNIX_EPOCH, //
};

use fdbox::{
    BoxFd,
    Direction,
    EntryState,
    Error, //
};

use super::launch::{
    refuse_if_running,
    QemuArg, //
};
use super::process::{
    binary_version,
    file_size,
    memfd,
    memfd_with,
    read_all,
    Launch,
    Process, //
};
use super::qmp::{
    Qemu,
    Route, //
};
use super::record::{
    read_json,
    write_json,
    Meta,
    Phase,
    Record,
    StateDirArg, //
};
use super::{
    box_name,
    box_refused,
    human,
    mismatch,
    no_vm,
    parse_size,
    parse_vm_name,
    Phases, //
};
use crate::device::DeviceArg;
use crate::exit::{
    Code,
    Failure,
    Result, //
};

/// Arguments of `fdbox vm restore`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The VM.
    #[arg(value_name = "NAME", value_parser = parse_vm_name)]
    pub name: String,
    /// The guest RAM's size the caller expects; refused if the saved VM's
    /// differs.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub ram: Option<u64>,
    /// Load a state written by `save --to-file` (guest RAM copied in it)
    /// into fresh RAM, without FDBox: the route to compare with.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
    /// The QEMU binary.
    #[command(flatten)]
    pub qemu: QemuArg,
    /// The state directory.
    #[command(flatten)]
    pub dir: StateDirArg,
    /// Where the device is.
    #[command(flatten)]
    pub device: DeviceArg,
    /// QEMU's arguments; by default those the VM was launched with.
    #[arg(last = true, value_name = "QEMU-ARGS")]
    pub qemu_args: Vec<String>,
}

/// Runs `fdbox vm restore`.
pub fn run(args: Args) -> Result {
    let name = &args.name;
    refuse_if_running(&args.dir, name)?;
    if let Some(path) = &args.from_file {
        let path = std::path::absolute(path)
            .map_err(|e| Failure::new(Code::Usage, format!("{}: {e}", path.display())))?;
        return restore_from_file(&args, &path);
    }
    let began = now_ns();
    let dev = args.device.open()?;
    let mut phases = Phases::new(format!("vm {name}: restore"));
    let (bx, meta) = phases.time("check", || {
        let opened = match args.device.owner {
            Some(uid) => dev.open_box_of(&box_name(name), Direction::Incoming, uid),
            None => dev.open_box(&box_name(name), Direction::Incoming),
        };
        let bx = opened.map_err(|e| match e {
            Error::NotFound => Failure::new(
                Code::NoVm,
                format!(
                    "vm {name}: no saved VM: the previous kernel handed over no box {}",
                    box_name(name)
                ),
            ),
            e => box_refused(name, format!("open box {}: {e}", box_name(name))),
        })?;
        let info = bx
            .info()
            .map_err(|e| box_refused(name, format!("info of box {}: {e}", box_name(name))))?;
        for entry in ["ram", "state"] {
            match info.entry(entry) {
                Some(e) if e.state == EntryState::Restorable => {}
                Some(e) => {
                    let why = e.reason.map(|r| format!(": {r}")).unwrap_or_default();
                    return Err(box_refused(
                        name,
                        format!(
                            "entry {entry} of box {} is {}{why}",
                            box_name(name),
                            e.state
                        ),
                    ));
                }
                None => {
                    return Err(box_refused(
                        name,
                        format!("box {} has no entry {entry}", box_name(name)),
                    ))
                }
            }
        }
        let meta_retrieved = info
            .entry("meta")
            .is_some_and(|e| e.state == EntryState::Retrieved);
        let meta = incoming_meta(&args.dir, &bx, name, meta_retrieved)?;
        check(&args, name, &meta)?;
        Ok((bx, meta))
    })?;
    let (ram, state) = phases.time("retrieve", || {
        let get = |entry: &str| {
            bx.retrieve(entry).map_err(|e| {
                box_refused(
                    name,
                    format!("retrieve {entry} of box {}: {e}", box_name(name)),
                )
            })
        };
        Ok((get("ram")?, get("state")?))
    })?;
    let process = match continue_guest(&args, &mut phases, &meta, &ram, &state) {
        Ok(p) => p,
        // The guest never ran in the new QEMU: box it again rather than
        // lose it with this process.
        Err(e) => return Err(rebox(&dev, name, &meta, &ram, &state, e)),
    };
    let _ = std::fs::remove_file(args.dir.meta_stash(name));
    let restore = phases.total("restore");
    blackout(&meta, began, restore);
    println!(
        "vm {name}: QEMU {} (pid {}) continues the guest on its {} of RAM; state was {}",
        meta.qemu_version,
        process.pid,
        human(meta.ram_size),
        human(meta.state_len)
    );
    Ok(())
}

/// Checks the retrieved memfds, starts QEMU on them, loads the state and
/// continues the guest. On failure no QEMU runs.
fn continue_guest(
    args: &Args,
    phases: &mut Phases,
    meta: &Meta,
    ram: &OwnedFd,
    state: &OwnedFd,
) -> Result<Process> {
    let name = &args.name;
    for (what, fd, want) in [
        ("ram", ram, meta.ram_size),
        ("state", state, meta.state_len),
    ] {
        let got = file_size(fd)?;
        if got != want {
            return Err(mismatch(
                name,
                format!("entry {what} is {got} bytes; the metadata says {want}"),
            ));
        }
    }
    let qemu_args = if args.qemu_args.is_empty() {
        meta.args.clone()
    } else {
        args.qemu_args.clone()
    };
    let (process, mut q) = phases.time("qemu-start", || start(args, ram, &[state], &qemu_args))?;
    let uri = format!("file:/proc/self/fd/{}", state.as_raw_fd());
    let loaded = phases
        .time("load", || {
            q.prepare(Route::Fdbox)?;
            q.migrate_incoming(&uri)
        })
        .and_then(|()| phases.time("cont", || q.cont()));
    if let Err(e) = loaded {
        process.kill();
        process.wait_exit(super::launch::QUIT_TIMEOUT);
        return Err(e);
    }
    let record = Record {
        name: name.clone(),
        phase: Phase::Running,
        pid: process.pid,
        start_time: process.start_time,
        qmp: args.dir.qmp(name),
        qemu: args.qemu.qemu.clone(),
        qemu_version: meta.qemu_version.clone(),
        ram_size: meta.ram_size,
        ram_fd: ram.as_raw_fd(),
        args: qemu_args,
    };
    // The guest runs: a record that can't be written is reported, and
    // costs the guest nothing.
    if let Err(e) = args.dir.store(&record) {
        eprintln!("fdbox: warning: vm {name}: {}", e.message);
    }
    Ok(process)
}

/// After a failed restore: RAM, state and metadata go back into a sealed
/// outgoing box `vm:NAME`, so that the guest survives, to be restored after
/// the next kexec (or given up with `fdbox cancel`). `e` says which.
fn rebox(
    dev: &fdbox::Device,
    name: &str,
    meta: &Meta,
    ram: &OwnedFd,
    state: &OwnedFd,
    e: Failure,
) -> Failure {
    let boxed = (|| -> Result {
        let json = serde_json::to_vec(meta).map_err(|e| mismatch(name, e))?;
        let meta_fd = memfd_with(&format!("fdbox-vm-meta:{name}"), &json)?;
        let bx = dev
            .create_box(&box_name(name))
            .map_err(|e| box_refused(name, format!("create box {}: {e}", box_name(name))))?;
        for (entry, fd) in [("ram", ram), ("state", state), ("meta", &meta_fd)] {
            bx.add(entry, fd)
                .map_err(|e| box_refused(name, format!("add {entry}: {e}")))?;
        }
        bx.seal()
            .map_err(|e| box_refused(name, format!("seal: {e}")))
    })();
    match boxed {
        Ok(()) => Failure::new(
            e.code,
            format!(
                "{}; the guest is boxed again in the sealed box {}: it survives the next kexec (fdbox cancel {} gives it up)",
                e.message,
                box_name(name),
                box_name(name)
            ),
        ),
        Err(b) => Failure::new(
            e.code,
            format!("{}; and boxing the guest again failed, so it is lost: {}", e.message, b.message),
        ),
    }
}

/// The metadata: retrieved from the box and stashed, since an entry is
/// retrieved only once; or, once retrieved by a refused restore, from that
/// stash.
fn incoming_meta(dir: &StateDirArg, bx: &BoxFd, name: &str, retrieved: bool) -> Result<Meta> {
    let stash = dir.meta_stash(name);
    if retrieved {
        return read_json::<Meta>(&stash)?.ok_or_else(|| {
            box_refused(
                name,
                format!(
                    "the entry meta of box {} was retrieved, and {} is gone",
                    box_name(name),
                    stash.display()
                ),
            )
        });
    }
    let fd = bx.retrieve("meta").map_err(|e| {
        box_refused(
            name,
            format!("retrieve meta of box {}: {e}", box_name(name)),
        )
    })?;
    let meta = Meta::parse(name, &read_all(fd)?)?;
    dir.create()?;
    write_json(&stash, &meta)?;
    Ok(meta)
}

/// Refuses what can't work before anything is retrieved.
pub(super) fn check(args: &Args, name: &str, meta: &Meta) -> Result {
    if meta.name != *name {
        return Err(mismatch(
            name,
            format!("box {} holds VM {}", box_name(name), meta.name),
        ));
    }
    if let Some(ram) = args.ram {
        if ram != meta.ram_size {
            return Err(mismatch(
                name,
                format!(
                    "the saved guest RAM is {} ({} bytes), not {} ({ram} bytes)",
                    human(meta.ram_size),
                    meta.ram_size,
                    human(ram)
                ),
            ));
        }
    }
    let version = binary_version(name, &args.qemu.qemu)?;
    if version != meta.qemu_version {
        return Err(mismatch(
            name,
            format!(
                "saved by QEMU {}, but {} is {version}: cpr-reboot needs the same version",
                meta.qemu_version, args.qemu.qemu
            ),
        ));
    }
    Ok(())
}

/// Starts QEMU waiting for its state on `ram`, and connects to its QMP.
fn start(
    args: &Args,
    ram: &OwnedFd,
    extra: &[&OwnedFd],
    qemu_args: &[String],
) -> Result<(Process, Qemu)> {
    let size = file_size(ram)?;
    let launch = Launch {
        name: &args.name,
        qemu: &args.qemu.qemu,
        ram,
        ram_size: size,
        extra,
        incoming: true,
        args: qemu_args,
    };
    let process = launch.start(&args.dir)?;
    match Qemu::connect(&args.name, &args.dir.qmp(&args.name)) {
        Ok(q) => Ok((process, q)),
        Err(e) => {
            process.kill();
            Err(e)
        }
    }
}

/// `--from-file`: fresh RAM, and the state with RAM copied in it.
fn restore_from_file(args: &Args, path: &std::path::Path) -> Result {
    let name = &args.name;
    let rec = args.dir.load(name)?.ok_or_else(|| no_vm(name))?;
    if rec.phase != Phase::SavedToFile {
        return Err(mismatch(name, "was not saved with save --to-file"));
    }
    if args.ram.is_some_and(|r| r != rec.ram_size) {
        return Err(mismatch(
            name,
            format!(
                "the saved guest RAM is {} bytes, not {} bytes",
                rec.ram_size,
                args.ram.unwrap_or_default()
            ),
        ));
    }
    let mut phases = Phases::new(format!(
        "vm {name}: restore from {} (RAM copied)",
        path.display()
    ));
    let ram = memfd(&format!("fdbox-vm:{name}"), rec.ram_size)?;
    let qemu_args = if args.qemu_args.is_empty() {
        rec.args.clone()
    } else {
        args.qemu_args.clone()
    };
    let (process, mut q) = phases.time("qemu-start", || start(args, &ram, &[], &qemu_args))?;
    let record = Record {
        pid: process.pid,
        start_time: process.start_time,
        phase: Phase::Running,
        ram_fd: ram.as_raw_fd(),
        args: qemu_args,
        ..rec
    };
    args.dir.store(&record)?;
    let uri = format!("file:{}", path.display());
    phases.time("load", || {
        q.prepare(Route::File)?;
        q.migrate_incoming(&uri)
    })?;
    phases.time("cont", || q.cont())?;
    phases.total("restore");
    Ok(())
}

/// CLOCK_REALTIME in nanoseconds.
fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// Prints the whole blackout: the save's phases carried in the metadata
/// (all but its seal, which save prints), the kexec (wall clock from the
/// save to this restore), and the restore.
fn blackout(meta: &Meta, began: u128, restore: Duration) {
    let ms = |us: u64| us as f64 / 1e3;
    println!("vm {}: blackout", meta.name);
    let mut total = 0.0;
    for (phase, us) in &meta.save_phases_us {
        println!("  {:<14} {:>10.3} ms  (before the kexec)", phase, ms(*us));
        total += ms(*us);
    }
    let kexec = began.saturating_sub(meta.saved_at_ns) as f64 / 1e6;
    println!(
        "  {:<14} {:>10.3} ms  (wall clock: box filled to restore began)",
        "kexec", kexec
    );
    println!(
        "  {:<14} {:>10.3} ms",
        "restore",
        restore.as_secs_f64() * 1e3
    );
    println!(
        "  {:<14} {:>10.3} ms  ({:.3} ms without the kexec)",
        "total",
        total + kexec + restore.as_secs_f64() * 1e3,
        total + restore.as_secs_f64() * 1e3
    );
}
