// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox vm save`: stop the guest, write its device state, box RAM, state
//! and metadata, seal, and quit QEMU.

use std::os::fd::{
    AsRawFd,
    OwnedFd, //
};
use std::time::{
    SystemTime,
    UNIX_EPOCH, //
};

use fdbox::BoxFd;

use super::launch::end_qemu;
use super::process::{
    file_size,
    memfd,
    memfd_with,
    Process,
    RAM_BACKEND, //
};
use super::qmp::{
    Qemu,
    Route, //
};
use super::record::{
    Meta,
    Phase,
    StateDirArg,
    META_FORMAT, //
};
use super::{
    box_name,
    box_refused,
    gone,
    human,
    mismatch,
    no_vm,
    parse_vm_name,
    Phases, //
};
use crate::device::DeviceArg;
use crate::exit::{
    Code,
    Failure,
    Result, //
};

/// The environment variable of the test hook that kills QEMU after its
/// state is written and before the seal (cargo feature `test-hooks`, which
/// only the test VM's build enables).
#[cfg(feature = "test-hooks")]
pub const TEST_HOOK: &str = "FDBOX_VM_TEST_HOOK";

/// Arguments of `fdbox vm save`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The VM.
    #[arg(value_name = "NAME", value_parser = parse_vm_name)]
    pub name: String,
    /// Write the state with guest RAM copied into FILE, as without FDBox,
    /// and box nothing: the route to compare with.
    #[arg(long, value_name = "FILE")]
    pub to_file: Option<std::path::PathBuf>,
    /// The state directory.
    #[command(flatten)]
    pub dir: StateDirArg,
    /// Where the device is.
    #[command(flatten)]
    pub device: DeviceArg,
}

/// Runs `fdbox vm save`.
pub fn run(args: Args) -> Result {
    let name = &args.name;
    let mut rec = args.dir.load(name)?.ok_or_else(|| no_vm(name))?;
    if rec.phase == Phase::Saved {
        return Err(box_refused(
            name,
            format!(
                "is saved already: box {} is sealed and QEMU has quit; after the kexec, fdbox vm restore {name}",
                box_name(name)
            ),
        ));
    }
    if rec.phase == Phase::SavedToFile {
        return Err(box_refused(
            name,
            format!("is saved to a file already: fdbox vm restore {name} --from-file FILE"),
        ));
    }
    let qemu = Process::find(name, rec.pid, Some(rec.start_time))?;
    let mut q = Qemu::connect(name, &rec.qmp)?;
    check_ram_backend(&mut q, name, rec.ram_size)?;
    if let Some(path) = &args.to_file {
        let path = std::path::absolute(path)
            .map_err(|e| Failure::new(Code::Usage, format!("{}: {e}", path.display())))?;
        let was_running = q.running()?;
        save_to_file(q, &qemu, name, &path, was_running)?;
        rec.phase = Phase::SavedToFile;
        return args.dir.store(&rec);
    }
    let ram = qemu.take_fd(name, rec.ram_fd)?;
    let got = file_size(&ram)?;
    if got != rec.ram_size {
        return Err(mismatch(
            name,
            format!(
                "QEMU's fd {} is {got} bytes, not the guest RAM's {}",
                rec.ram_fd, rec.ram_size
            ),
        ));
    }
    // Before the guest stops: a name taken or a device missing costs
    // nothing yet.
    let dev = args.device.open()?;
    let bx = dev
        .create_box(&box_name(name))
        .map_err(|e| box_refused(name, format!("create box {}: {e}", box_name(name))))?;
    // A guest the operator paused stays paused if the save fails.
    let was_running = q.running()?;
    let mut phases = Phases::new(format!("vm {name}: save"));
    phases.time("stop", || q.stop())?;
    let state_len = match write_and_box(&mut q, &mut phases, &bx, &rec, name, ram) {
        Ok(len) => len,
        // The box fd closes: the box is discarded and its files given back
        // untouched.
        Err(e) => return Err(resume(&mut q, was_running, e)),
    };
    #[cfg(feature = "test-hooks")]
    if std::env::var(TEST_HOOK).as_deref() == Ok("kill-before-seal") {
        qemu.kill();
        qemu.wait_exit(super::launch::QUIT_TIMEOUT);
    }
    if qemu.exited() {
        return Err(gone(
            name,
            format!(
                "QEMU exited before the seal: box {} discarded and nothing sealed; the files are as they were, and the guest is lost with QEMU unless another process holds its RAM",
                box_name(name)
            ),
        ));
    }
    let sealed = phases.time("seal", || {
        bx.seal()
            .map_err(|e| box_refused(name, format!("seal box {}: {e}", box_name(name))))
    });
    if let Err(e) = sealed {
        return Err(resume(&mut q, was_running, e));
    }
    // Sealed: from here the box belongs to the kernel, and the guest lives
    // on in it whatever QEMU does.
    phases.total("blackout");
    phases.time("quit", || {
        end_qemu(Some(q), &qemu);
        Ok(())
    })?;
    rec.phase = Phase::Saved;
    args.dir.store(&rec)?;
    println!(
        "vm {name}: state {} written ({state_len} bytes); RAM {} stays in place ({} bytes); box {} sealed",
        human(state_len),
        human(rec.ram_size),
        rec.ram_size,
        box_name(name)
    );
    Ok(())
}

/// After a failed save: no migration runs on, the guest runs again if it
/// ran before, and `e` says whether it does.
fn resume(q: &mut Qemu, was_running: bool, e: Failure) -> Failure {
    q.migrate_cancel();
    if !was_running {
        return Failure::new(
            e.code,
            format!("{}; the guest stays paused, as it was", e.message),
        );
    }
    match q.cont() {
        Ok(()) => Failure::new(e.code, format!("{}; the guest runs again", e.message)),
        Err(c) => Failure::new(
            e.code,
            format!("{}; and the guest stays paused: {}", e.message, c.message),
        ),
    }
}

/// Refuses a guest whose RAM isn't on `fdbox vm`'s shared file backend:
/// `x-ignore-shared` would copy it into the state.
fn check_ram_backend(q: &mut Qemu, name: &str, ram_size: u64) -> Result {
    // QOM answers with the backend's path, /objects/ID.
    let backend = q.ram_backend()?;
    if backend.strip_prefix("/objects/").unwrap_or(&backend) != RAM_BACKEND {
        return Err(mismatch(
            name,
            format!(
                "guest RAM is on backend {backend:?}, not on {RAM_BACKEND:?}: a later -machine memory-backend= in QEMU's arguments?"
            ),
        ));
    }
    match q.memdev(RAM_BACKEND)? {
        Some((true, size)) if size == ram_size => Ok(()),
        other => Err(mismatch(
            name,
            format!("backend {RAM_BACKEND} is {other:?} (share, size), not shared with {ram_size} bytes"),
        )),
    }
}

/// Writes the state into a memfd, then boxes RAM, state and metadata.
/// Returns the state's length.
fn write_and_box(
    q: &mut Qemu,
    phases: &mut Phases,
    bx: &BoxFd,
    rec: &super::record::Record,
    name: &str,
    ram: OwnedFd,
) -> Result<u64> {
    let state = memfd(&format!("fdbox-vm-state:{name}"), 0)?;
    let uri = format!("file:/proc/{}/fd/{}", std::process::id(), state.as_raw_fd());
    let ram_migrated = phases.time("migrate", || {
        q.prepare(Route::Fdbox)?;
        q.migrate(&uri)
    })?;
    // x-ignore-shared skipped the guest RAM block, or QEMU counted it.
    if ram_migrated >= rec.ram_size {
        return Err(mismatch(
            name,
            format!(
                "QEMU migrated {ram_migrated} bytes of RAM: the guest RAM was copied, not skipped"
            ),
        ));
    }
    let state_len = file_size(&state)?;
    let add = |entry: &str, fd: &OwnedFd| {
        bx.add(entry, fd)
            .map_err(|e| box_refused(name, format!("add {entry} to box {}: {e}", box_name(name))))
    };
    phases.time("box", || {
        add("ram", &ram)?;
        add("state", &state)
    })?;
    // The metadata carries the phases so far, so that restore can show the
    // whole blackout.
    let save_phases_us = phases.micros();
    phases.time("meta", || {
        let meta = Meta {
            format: META_FORMAT,
            name: name.to_string(),
            qemu_version: rec.qemu_version.clone(),
            ram_size: rec.ram_size,
            machine: q.machine_type()?,
            args: rec.args.clone(),
            state_len,
            saved_at_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
            save_phases_us,
        };
        let json = serde_json::to_vec(&meta).map_err(|e| mismatch(name, e))?;
        add(
            "meta",
            &memfd_with(&format!("fdbox-vm-meta:{name}"), &json)?,
        )
    })?;
    Ok(state_len)
}

/// `--to-file`: the route without FDBox. Guest RAM is copied into `path`
/// with a normal migration; QEMU quits.
fn save_to_file(
    mut q: Qemu,
    qemu: &Process,
    name: &str,
    path: &std::path::Path,
    was_running: bool,
) -> Result {
    let mut phases = Phases::new(format!(
        "vm {name}: save to {} (RAM copied)",
        path.display()
    ));
    phases.time("stop", || q.stop())?;
    let uri = format!("file:{}", path.display());
    if let Err(e) = phases.time("migrate", || {
        q.prepare(Route::File)?;
        q.migrate(&uri)
    }) {
        return Err(resume(&mut q, was_running, e));
    }
    phases.total("blackout");
    phases.time("quit", || {
        end_qemu(Some(q), qemu);
        Ok(())
    })?;
    let len = std::fs::metadata(path)
        .map_err(|e| super::record::io_failure(path, "stat", e))?
        .len();
    println!(
        "vm {name}: state {} written ({len} bytes) to {}",
        human(len),
        path.display()
    );
    Ok(())
}
