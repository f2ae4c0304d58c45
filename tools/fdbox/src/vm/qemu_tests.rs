// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `fdbox vm` against the real QEMU that `make deps` installs, running the
//! test guest (`scripts/qemu-guest.sh`) under TCG. FDBox itself is not on
//! the host: the box steps run in the VM (`selftests/qemu`); here are QMP,
//! the records, both migration routes, and the refusals.

use std::path::{
    Path,
    PathBuf, //
};
use std::process::Command;
use std::time::{
    Duration,
    Instant, //
};

use super::process::{
    memfd,
    Launch,
    Process, //
};
use super::qmp::{
    Qemu,
    Route, //
};
use super::record::{
    Phase,
    StateDirArg, //
};
use super::*;
use crate::device::DeviceArg;

/// Kills its QEMUs when a test ends, failed assertions included: a
/// daemonized QEMU outlives the test process.
struct Reaper(Vec<Process>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for p in &self.0 {
            p.kill();
        }
    }
}

/// The QEMU of `name`'s record.
fn qemu_of(d: &StateDirArg, name: &str) -> Process {
    let r = d.load(name).unwrap().unwrap();
    Process::find(name, r.pid, Some(r.start_time)).unwrap()
}

/// The test guest's image, built once per test run.
fn guest() -> PathBuf {
    static GUEST: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    GUEST
        .get_or_init(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/qemu-guest.sh");
            let out = Command::new(script).output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        })
        .clone()
}

/// A state directory of its own for each test.
fn dir(test: &str) -> StateDirArg {
    let d = std::env::temp_dir().join(format!("fdbox-vm-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    StateDirArg { state_dir: d }
}

/// QEMU's arguments for the test guest, its serial port appended to `log`.
fn guest_args(log: &Path) -> Vec<String> {
    let bios = guest();
    [
        "-M",
        "microvm",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-accel",
        "tcg,tb-size=16",
        "-bios",
        bios.to_str().unwrap(),
        "-chardev",
        &format!("file,id=ser0,path={},append=on", log.display()),
        "-serial",
        "chardev:ser0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The guest's counter values in `log`, in order, each with whether its
/// pattern check passed (`None` while it runs).
fn counts(log: &Path) -> Vec<(u64, Option<bool>)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.split("n=")
        .skip(1)
        .filter_map(|chunk| {
            let mut words = chunk.split_whitespace();
            let n = words.next()?.parse().ok()?;
            Some((n, words.next().map(|w| w == "ok")))
        })
        .collect()
}

/// Waits until the guest has finished the pattern check of count `n`.
fn wait_count(log: &Path, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !counts(log)
        .iter()
        .any(|&(c, ok)| c >= n && ok == Some(true))
    {
        assert!(
            Instant::now() < deadline,
            "no n={n} ok in {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Launches `name` with `ram` bytes and extra QEMU arguments.
fn launch(d: &StateDirArg, name: &str, ram: u64, log: &Path, extra: &[&str]) {
    let mut qemu_args = guest_args(log);
    qemu_args.extend(extra.iter().map(|s| s.to_string()));
    launch::run(launch::Args {
        name: name.into(),
        ram,
        qemu: launch::QemuArg {
            qemu: "qemu-system-x86_64".into(),
        },
        dir: d.clone(),
        qemu_args,
    })
    .unwrap();
}

/// Quits `name` and removes the state directory.
fn cleanup(d: &StateDirArg, name: &str) {
    let _ = launch::quit(launch::QuitArgs {
        name: name.into(),
        dir: d.clone(),
    });
    let _ = std::fs::remove_dir_all(&d.state_dir);
}

/// Asserts the guest in `log` booted once and counted without a gap.
fn assert_continuous(log: &Path) {
    let text = std::fs::read_to_string(log).unwrap();
    assert_eq!(text.matches("fdbox-guest: boot").count(), 1, "{text}");
    assert!(!text.contains("BAD"), "{text}");
    let c = counts(log);
    for w in c.windows(2) {
        assert_eq!(w[1].0, w[0].0 + 1, "{text}");
    }
}

fn save_args(d: &StateDirArg, name: &str, to_file: Option<PathBuf>) -> save::Args {
    save::Args {
        name: name.into(),
        to_file,
        dir: d.clone(),
        device: DeviceArg {
            device: "/nonexistent/fdbox".into(),
            owner: None,
        },
    }
}

fn restore_args(
    d: &StateDirArg,
    name: &str,
    from_file: Option<PathBuf>,
    ram: Option<u64>,
) -> restore::Args {
    restore::Args {
        name: name.into(),
        ram,
        from_file,
        qemu: launch::QemuArg {
            qemu: "qemu-system-x86_64".into(),
        },
        dir: d.clone(),
        device: DeviceArg {
            device: "/nonexistent/fdbox".into(),
            owner: None,
        },
        qemu_args: vec![],
    }
}

#[test]
fn the_file_route_copies_ram_and_the_guest_continues() {
    let d = dir("file");
    let log = d.state_dir.with_extension("serial");
    let _ = std::fs::remove_file(&log);
    launch(&d, "f", 32 << 20, &log, &[]);
    let mut reaper = Reaper(vec![qemu_of(&d, "f")]);
    let rec = d.load("f").unwrap().unwrap();
    assert_eq!(rec.phase, Phase::Running);
    assert_eq!(rec.qemu_version.split('.').count(), 3);
    wait_count(&log, 2);
    // A second launch of a running name is refused.
    let again = launch::run(launch::Args {
        name: "f".into(),
        ram: 32 << 20,
        qemu: launch::QemuArg {
            qemu: "qemu-system-x86_64".into(),
        },
        dir: d.clone(),
        qemu_args: guest_args(&log),
    });
    assert_eq!(again.unwrap_err().code, Code::BoxRefused);

    let file = d.state_dir.join("f.state");
    save::run(save_args(&d, "f", Some(file.clone()))).unwrap();
    assert!(
        Process::find("f", rec.pid, Some(rec.start_time)).is_err(),
        "QEMU still runs"
    );
    let len = std::fs::metadata(&file).unwrap().len();
    assert!(
        len > (32 << 20) * 9 / 10,
        "the file route wrote {len} bytes"
    );
    let last = counts(&log).last().unwrap().0;

    // A size other than the saved one is refused.
    let e = restore::run(restore_args(&d, "f", Some(file.clone()), Some(64 << 20))).unwrap_err();
    assert_eq!(e.code, Code::Mismatch, "{}", e.message);
    restore::run(restore_args(&d, "f", Some(file), None)).unwrap();
    reaper.0.push(qemu_of(&d, "f"));
    wait_count(&log, last + 2);
    assert_continuous(&log);
    cleanup(&d, "f");
    let _ = std::fs::remove_file(&log);
}

#[test]
fn cpr_reboot_writes_kilobytes_and_a_new_qemu_continues_on_the_same_ram() {
    let d = dir("cpr");
    let log = d.state_dir.with_extension("serial");
    let _ = std::fs::remove_file(&log);
    let ram_size = 64 << 20;
    let ram = memfd("t", ram_size).unwrap();
    let args = guest_args(&log);
    let start = |incoming, extra: &[&std::os::fd::OwnedFd]| {
        Launch {
            name: "c",
            qemu: "qemu-system-x86_64",
            ram: &ram,
            ram_size,
            extra,
            incoming,
            args: &args,
        }
        .start(&d)
        .unwrap()
    };
    let first = start(false, &[]);
    let mut reaper = Reaper(vec![]);
    let mut q = Qemu::connect("c", &d.qmp("c")).unwrap();
    assert!(q.running().unwrap());
    assert_eq!(q.ram_backend().unwrap(), "/objects/fdbox-ram");
    assert_eq!(
        q.memdev(process::RAM_BACKEND).unwrap(),
        Some((true, ram_size))
    );
    wait_count(&log, 2);
    q.stop().unwrap();
    assert!(!q.running().unwrap());
    let state = memfd("s", 0).unwrap();
    q.prepare(Route::Fdbox).unwrap();
    let ram_migrated = q
        .migrate(&format!(
            "file:/proc/{}/fd/{}",
            std::process::id(),
            std::os::fd::AsRawFd::as_raw_fd(&state)
        ))
        .unwrap();
    assert!(
        ram_migrated < ram_size / 64,
        "QEMU counted {ram_migrated} bytes of RAM"
    );
    let len = process::file_size(&state).unwrap();
    assert!(
        len > 0 && len < ram_size / 64,
        "cpr-reboot wrote {len} bytes"
    );
    q.quit().unwrap();
    assert!(first.wait_exit(Duration::from_secs(10)));
    let last = counts(&log).last().unwrap().0;

    // A state that isn't one fails the load with QEMU's reason, and the
    // guest's RAM is untouched.
    let bogus = process::memfd_with("bogus", b"not a migration stream").unwrap();
    let refused = start(true, &[&bogus]);
    let mut q = Qemu::connect("c", &d.qmp("c")).unwrap();
    q.prepare(Route::Fdbox).unwrap();
    let e = q
        .migrate_incoming(&format!(
            "file:/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&bogus)
        ))
        .unwrap_err();
    assert_eq!(e.code, Code::Qmp, "{}", e.message);
    refused.kill();
    assert!(refused.wait_exit(Duration::from_secs(10)));

    let second = start(true, &[&state]);
    let mut q = Qemu::connect("c", &d.qmp("c")).unwrap();
    q.prepare(Route::Fdbox).unwrap();
    q.migrate_incoming(&format!(
        "file:/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&state)
    ))
    .unwrap();
    q.cont().unwrap();
    wait_count(&log, last + 2);
    assert_continuous(&log);
    q.quit().unwrap();
    assert!(second.wait_exit(Duration::from_secs(10)));
    reaper.0.clear();
    let _ = std::fs::remove_dir_all(&d.state_dir);
    let _ = std::fs::remove_file(&log);
}

#[test]
fn save_refuses_ram_off_the_file_backend_and_the_guest_runs_on() {
    let d = dir("plain");
    let log = d.state_dir.with_extension("serial");
    let _ = std::fs::remove_file(&log);
    launch(
        &d,
        "p",
        32 << 20,
        &log,
        &[
            "-object",
            "memory-backend-ram,id=other,size=32M",
            "-machine",
            "memory-backend=other",
        ],
    );
    let _reaper = Reaper(vec![qemu_of(&d, "p")]);
    wait_count(&log, 1);
    let e = save::run(save_args(&d, "p", None)).unwrap_err();
    assert_eq!(e.code, Code::Mismatch, "{}", e.message);
    assert!(e.message.contains("\"/objects/other\""), "{}", e.message);
    let rec = d.load("p").unwrap().unwrap();
    assert_eq!(rec.phase, Phase::Running);
    let mut q = Qemu::connect("p", &rec.qmp).unwrap();
    assert!(q.running().unwrap());
    drop(q);
    let n = counts(&log).last().unwrap().0;
    wait_count(&log, n + 1);
    cleanup(&d, "p");
    let _ = std::fs::remove_file(&log);
}

#[test]
fn refusals_name_what_is_wrong() {
    let d = dir("refuse");
    // No record.
    assert_eq!(
        save::run(save_args(&d, "none", None)).unwrap_err().code,
        Code::NoVm
    );
    assert_eq!(
        launch::quit(launch::QuitArgs {
            name: "none".into(),
            dir: d.clone(),
        })
        .unwrap_err()
        .code,
        Code::NoVm
    );
    // No device: the incoming box can't be looked up.
    let e = restore::run(restore_args(&d, "none", None, None)).unwrap_err();
    assert_eq!(e.code, Code::Io, "{}", e.message);
    // A file restore with no record, and of a VM not saved to a file.
    assert_eq!(
        restore::run(restore_args(&d, "none", Some("/tmp/x".into()), None))
            .unwrap_err()
            .code,
        Code::NoVm
    );
    d.create().unwrap();
    d.store(&super::record::Record {
        name: "boxed".into(),
        phase: Phase::Saved,
        pid: 1,
        start_time: 0,
        qmp: d.qmp("boxed"),
        qemu: "qemu-system-x86_64".into(),
        qemu_version: "10.0.2".into(),
        ram_size: 1 << 20,
        ram_fd: 3,
        args: vec![],
    })
    .unwrap();
    let e = restore::run(restore_args(&d, "boxed", Some("/tmp/x".into()), None)).unwrap_err();
    assert_eq!(e.code, Code::Mismatch, "{}", e.message);
    // A saved VM's name is in use until it is restored.
    let e = save::run(save_args(&d, "boxed", None)).unwrap_err();
    assert_eq!(e.code, Code::BoxRefused, "{}", e.message);
    let log0 = d.state_dir.with_extension("serial0");
    let e = launch::run(launch::Args {
        name: "boxed".into(),
        ram: 1 << 20,
        qemu: launch::QemuArg {
            qemu: "qemu-system-x86_64".into(),
        },
        dir: d.clone(),
        qemu_args: guest_args(&log0),
    })
    .unwrap_err();
    assert_eq!(e.code, Code::BoxRefused, "{}", e.message);
    assert!(e.message.contains("sealed box vm:boxed"), "{}", e.message);
    // QEMU that won't start: its own message comes back.
    let ram = memfd("t", 1 << 20).unwrap();
    let bad = ["-M".to_string(), "no-such-machine".to_string()];
    let e = Launch {
        name: "bad",
        qemu: "qemu-system-x86_64",
        ram: &ram,
        ram_size: 1 << 20,
        extra: &[],
        incoming: false,
        args: &bad,
    }
    .start(&d)
    .unwrap_err();
    assert_eq!(e.code, Code::QemuGone);
    assert!(e.message.contains("no-such-machine"), "{}", e.message);
    // A record whose QEMU is gone.
    let log = d.state_dir.with_extension("serial");
    launch(&d, "g", 16 << 20, &log, &[]);
    let rec = d.load("g").unwrap().unwrap();
    let p = Process::find("g", rec.pid, Some(rec.start_time)).unwrap();
    p.kill();
    assert!(p.wait_exit(Duration::from_secs(10)));
    let e = save::run(save_args(&d, "g", None)).unwrap_err();
    assert_eq!(e.code, Code::QemuGone, "{}", e.message);
    assert!(e.message.contains("not running"), "{}", e.message);
    cleanup(&d, "g");
    let _ = std::fs::remove_file(&log);
}

#[test]
fn restore_refuses_another_qemu_version_or_ram_size_before_retrieving() {
    let d = dir("version");
    let meta = super::record::Meta {
        format: super::record::META_FORMAT,
        name: "v".into(),
        qemu_version: process::binary_version("v", "qemu-system-x86_64").unwrap(),
        ram_size: 64 << 20,
        machine: "microvm-machine".into(),
        args: vec![],
        state_len: 1,
        saved_at_ns: 0,
        save_phases_us: vec![],
    };
    restore::check(&restore_args(&d, "v", None, Some(64 << 20)), "v", &meta).unwrap();
    let e = restore::check(&restore_args(&d, "v", None, Some(128 << 20)), "v", &meta).unwrap_err();
    assert_eq!(e.code, Code::Mismatch);
    assert!(e.message.contains("not 128.0 MiB"), "{}", e.message);
    let older = super::record::Meta {
        qemu_version: "9.1.0".into(),
        ..meta.clone()
    };
    let e = restore::check(&restore_args(&d, "v", None, None), "v", &older).unwrap_err();
    assert_eq!(e.code, Code::Mismatch);
    assert!(e.message.contains("saved by QEMU 9.1.0"), "{}", e.message);
    let other = super::record::Meta {
        name: "w".into(),
        ..meta
    };
    let e = restore::check(&restore_args(&d, "v", None, None), "v", &other).unwrap_err();
    assert!(e.message.contains("holds VM w"), "{}", e.message);
}
