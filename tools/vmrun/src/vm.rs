// SPDX-License-Identifier: GPL-2.0 OR MIT

//! One QEMU boot, under a hard deadline and a silence deadline, with every line the guest prints
//! kept on disk.
//!
//! The kernel log arrives on ttyS0 (QEMU's stdout); `/init` reports results on ttyS1, a FIFO.
//! Keeping them apart stops kernel messages from tearing KTAP lines.

use std::fs::{
    self,
    File,
    OpenOptions, //
};
use std::io::{
    self,
    BufRead,
    BufReader,
    Write, //
};
use std::os::unix::process::CommandExt;
use std::path::{
    Path,
    PathBuf, //
};
use std::process::{
    Child,
    Command,
    Stdio, //
};
use std::sync::mpsc;
use std::thread;
use std::time::{
    Duration,
    Instant, //
};

/// Which serial port a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// ttyS0: the kernel log.
    Console,
    /// ttyS1: `/init`'s results.
    Results,
}

/// The machine to boot.
pub struct Machine {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub append: String,
    pub memory_mib: u32,
    pub cpus: u32,
    pub kvm: bool,
}

/// Limits on one boot.
#[derive(Clone, Copy)]
pub struct Limits {
    /// The whole run, both kernels.
    pub total: Duration,
    /// The longest the guest may print nothing on either port.
    pub silence: Duration,
}

/// How the boot ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// QEMU exited by itself, with this status.
    Exited(Option<i32>),
    TimedOut(Duration),
    Silent(Duration),
    /// The caller stopped the boot, for this reason.
    Stopped(String),
}

impl End {
    pub fn describe(&self) -> String {
        match self {
            End::Exited(Some(code)) => format!("QEMU exited with status {code}"),
            End::Exited(None) => "QEMU was killed by a signal".into(),
            End::TimedOut(t) => format!("timed out after {} s", t.as_secs()),
            End::Silent(t) => format!("the guest printed nothing for {} s", t.as_secs()),
            End::Stopped(why) => why.clone(),
        }
    }
}

/// The files one boot leaves behind in its log directory.
pub struct Logs {
    pub dir: PathBuf,
    console: File,
    results: File,
    merged: File,
}

impl Logs {
    pub fn create(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            console: File::create(dir.join("console.log"))?,
            results: File::create(dir.join("results.log"))?,
            merged: File::create(dir.join("guest.log"))?,
        })
    }

    fn write(&mut self, port: Port, at: Duration, line: &str) -> io::Result<()> {
        let (file, tag) = match port {
            Port::Console => (&mut self.console, "con"),
            Port::Results => (&mut self.results, "res"),
        };
        writeln!(file, "{line}")?;
        writeln!(self.merged, "[{:8.3}] {tag}| {line}", at.as_secs_f64())
    }

    pub fn console_path(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    pub fn results_path(&self) -> PathBuf {
        self.dir.join("results.log")
    }
}

/// Reads lines from `reader` into `tx` until EOF.
fn forward<R: io::Read + Send + 'static>(reader: R, port: Port, tx: mpsc::Sender<(Port, String)>) {
    thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']).to_string();
                    if tx.send((port, line)).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

/// `fifos` names a pair of FIFOs, `fifos.in` and `fifos.out`: with a single FIFO, QEMU would
/// read back its own output and feed it to the guest as input.
fn qemu_command(machine: &Machine, fifos: &Path, limits: Limits) -> Command {
    // `timeout` is the backstop should this process itself die.
    let mut cmd = Command::new("timeout");
    cmd.arg("--kill-after=5")
        .arg(format!("{}", limits.total.as_secs() + 10))
        .arg("qemu-system-x86_64")
        .args(["-M", "q35", "-nodefaults", "-display", "none"])
        .args(["-smp", &machine.cpus.to_string()])
        .args(["-no-reboot", "-monitor", "none"])
        .args(["-m", &format!("{}M", machine.memory_mib)])
        // Two DMA-capable PCI devices behind an IOMMU, for the VFIO tests (edu: 1234:11e8),
        // at 00:01.0 and 00:02.0.
        .args([
            "-device",
            "intel-iommu,intremap=off",
            "-device",
            "edu",
            "-device",
            "edu",
        ])
        // An SR-IOV NIC behind a PCIe root port, whose virtual functions the VFIO tests
        // create (igb: 8086:10c9, VFs 8086:10ca).
        .args(["-device", "pcie-root-port,id=fdbox-rp,chassis=1"])
        .args(["-device", "igb,bus=fdbox-rp"]);
    if machine.kvm {
        cmd.args(["-accel", "kvm", "-cpu", "host"]);
    } else {
        // 4-level paging: the common case on hosts, and one less thing TCG must get right.
        cmd.args(["-accel", "tcg", "-cpu", "max,la57=off"]);
    }
    cmd.args(["-serial", "stdio"])
        .arg("-serial")
        .arg(format!("pipe:{}", fifos.display()))
        .arg("-kernel")
        .arg(&machine.kernel)
        .arg("-initrd")
        .arg(&machine.initrd)
        .args(["-append", &machine.append])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    cmd
}

fn make_fifo(path: &Path) -> io::Result<()> {
    let _ = fs::remove_file(path);
    let status = Command::new("mkfifo").arg(path).status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "mkfifo {} failed",
            path.display()
        )));
    }
    Ok(())
}

/// Whether any process of the group led by `pid` is still running. Zombies don't count: once
/// killed, QEMU is reparented and may wait a while for its new parent to reap it.
fn group_alive(pid: u32) -> bool {
    let Ok(procs) = fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|p| {
        let stat = fs::read_to_string(p.path().join("stat")).unwrap_or_default();
        // The fields after the command, which is in parentheses and may contain anything.
        let mut fields = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|g| g.parse::<u32>().ok());
        pgrp == Some(pid) && state != Some("Z") && state != Some("X")
    })
}

/// Waits up to two seconds for the group led by `pid` to die.
fn group_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while group_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Kills QEMU and the `timeout` wrapping it: they share a process group, and killing only
/// `timeout` would leave QEMU running.
fn kill(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// Boots `machine` and hands every line to `on_line` as it arrives, with the time since start;
/// `on_line` returns a reason to stop the boot early, if it has one.
/// Returns how the boot ended. Never outlives `limits.total` by more than a few seconds.
pub fn boot(
    machine: &Machine,
    limits: Limits,
    logs: &mut Logs,
    mut on_line: impl FnMut(Port, Duration, &str) -> Option<String>,
) -> io::Result<End> {
    let fifos = logs.dir.join("results.fifo");
    let fifo_in = fifos.with_extension("fifo.in");
    let fifo_out = fifos.with_extension("fifo.out");
    make_fifo(&fifo_in)?;
    make_fifo(&fifo_out)?;
    // Opened read-write so that neither side blocks in open(2) and EOF never comes early.
    let results = OpenOptions::new().read(true).write(true).open(&fifo_out)?;
    // The guest's input side: held open and never written.
    let _input = OpenOptions::new().read(true).write(true).open(&fifo_in)?;

    let start = Instant::now();
    let mut child = qemu_command(machine, &fifos, limits)
        .spawn()
        .map_err(|e| io::Error::other(format!("cannot start qemu-system-x86_64: {e}")))?;
    let (tx, rx) = mpsc::channel();
    forward(
        child.stdout.take().expect("stdout is piped"),
        Port::Console,
        tx.clone(),
    );
    forward(
        child.stderr.take().expect("stderr is piped"),
        Port::Console,
        tx.clone(),
    );
    forward(results, Port::Results, tx);

    let mut last_output = Instant::now();
    let end = loop {
        let now = Instant::now();
        let elapsed = now - start;
        if elapsed >= limits.total {
            kill(&mut child);
            break End::TimedOut(limits.total);
        }
        let quiet = now - last_output;
        if quiet >= limits.silence {
            kill(&mut child);
            break End::Silent(limits.silence);
        }
        let wait = (limits.total - elapsed)
            .min(limits.silence - quiet)
            .min(Duration::from_millis(250));
        match rx.recv_timeout(wait) {
            Ok((port, line)) => {
                last_output = Instant::now();
                let at = last_output - start;
                logs.write(port, at, &line)?;
                if let Some(why) = on_line(port, at, &line) {
                    kill(&mut child);
                    break End::Stopped(why);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(status) = child.try_wait()? {
                    break End::Exited(status.code());
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break End::Exited(child.wait()?.code());
            }
        }
    };

    // Whatever the guest printed before it stopped is still in flight.
    while let Ok((port, line)) = rx.recv_timeout(Duration::from_millis(200)) {
        let at = start.elapsed();
        logs.write(port, at, &line)?;
        let _ = on_line(port, at, &line);
    }
    let _ = fs::remove_file(&fifo_in);
    let _ = fs::remove_file(&fifo_out);
    if !group_gone(child.id()) {
        kill(&mut child);
        return Err(io::Error::other(
            "QEMU outlived its boot and had to be killed again",
        ));
    }
    Ok(end)
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}
