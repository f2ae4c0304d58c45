// SPDX-License-Identifier: GPL-2.0 OR MIT

//! QEMU as a process: starting it on a memfd, knowing whether it still
//! runs, and the memfds themselves.

use std::fs::File;
use std::io::{
    Read,
    Seek,
    Write, //
};
use std::os::fd::{
    AsFd,
    AsRawFd,
    BorrowedFd,
    OwnedFd, //
};
use std::os::unix::process::CommandExt;
use std::process::{
    Command,
    Stdio, //
};
use std::time::Duration;

use rustix::event::{
    poll,
    PollFd,
    PollFlags, //
};
use rustix::fs::{
    fstat,
    MemfdFlags, //
};
use rustix::process::{
    Pid,
    PidfdFlags, //
};

use super::gone;
use super::record::StateDirArg;
use crate::exit::{
    Code,
    Failure,
    Result, //
};

/// The id of the memory backend `fdbox vm` gives guest RAM.
pub const RAM_BACKEND: &str = "fdbox-ram";

/// A running QEMU, through a pidfd: signals and waits reach this process
/// even once its pid number is recycled.
#[derive(Debug)]
pub struct Process {
    /// QEMU's pid.
    pub pid: i32,
    /// Its start time (see [`start_time`]), which tells it from a process
    /// that got its pid later.
    pub start_time: u64,
    /// Its pidfd.
    pidfd: OwnedFd,
}

/// Field 22 of `/proc/PID/stat`: the start time in clock ticks.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: split after the last `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

impl Process {
    /// The process `pid` if it runs and, with `start`, started then.
    pub fn find(name: &str, pid: i32, start: Option<u64>) -> Result<Process> {
        let not_running = || gone(name, format!("QEMU (pid {pid}) is not running"));
        let raw = Pid::from_raw(pid).ok_or_else(not_running)?;
        let pidfd =
            rustix::process::pidfd_open(raw, PidfdFlags::empty()).map_err(|_| not_running())?;
        // Read once the pidfd is held: the pidfd's process had this pid at
        // open, so a start time read now, while it hasn't exited, is its own.
        let start_time = start_time(pid).ok_or_else(not_running)?;
        let p = Process {
            pid,
            start_time,
            pidfd,
        };
        if start.is_some_and(|s| s != start_time) || p.exited() {
            return Err(not_running());
        }
        Ok(p)
    }

    /// Whether the process has exited.
    pub fn exited(&self) -> bool {
        self.wait_exit(Duration::ZERO)
    }

    /// Waits up to `timeout` for the process to exit; whether it did.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        let ts = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: timeout.subsec_nanos() as i64,
        };
        let mut fds = [PollFd::new(&self.pidfd, PollFlags::IN)];
        loop {
            match poll(&mut fds, Some(&ts)) {
                Ok(n) => return n > 0,
                Err(rustix::io::Errno::INTR) => continue,
                // Not known to have exited: callers then kill or keep it.
                Err(_) => return false,
            }
        }
    }

    /// Sends SIGKILL.
    pub fn kill(&self) {
        let _ = rustix::process::pidfd_send_signal(&self.pidfd, rustix::process::Signal::KILL);
    }

    /// Takes QEMU's fd `n` (`pidfd_getfd`): the very open file.
    pub fn take_fd(&self, name: &str, n: i32) -> Result<OwnedFd> {
        rustix::process::pidfd_getfd(&self.pidfd, n, rustix::process::PidfdGetfdFlags::empty())
            .map_err(|e| {
                super::mismatch(
                    name,
                    format!(
                        "cannot take fd {n}, the guest RAM, of QEMU (pid {}): {e}",
                        self.pid
                    ),
                )
            })
    }
}

/// What QEMU is started with, besides the user's arguments.
pub struct Launch<'a> {
    /// The VM's name.
    pub name: &'a str,
    /// The QEMU binary.
    pub qemu: &'a str,
    /// The guest RAM memfd, inherited by QEMU.
    pub ram: &'a OwnedFd,
    /// Its size.
    pub ram_size: u64,
    /// Fds QEMU inherits besides the RAM's (the state, on restore).
    pub extra: &'a [&'a OwnedFd],
    /// `-incoming defer`: QEMU waits for `migrate-incoming`.
    pub incoming: bool,
    /// The user's arguments.
    pub args: &'a [String],
}

impl Launch<'_> {
    /// The arguments `fdbox vm` puts before the user's.
    pub fn own_args(&self, dir: &StateDirArg) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "-daemonize".into(),
            "-pidfile".into(),
            dir.pidfile(self.name).display().to_string(),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", dir.qmp(self.name).display()),
            "-object".into(),
            format!(
                "memory-backend-file,id={RAM_BACKEND},size={},mem-path=/proc/self/fd/{},share=on{}",
                self.ram_size,
                self.ram.as_raw_fd(),
                thp_align(self.ram_size)
            ),
            "-machine".into(),
            format!("memory-backend={RAM_BACKEND}"),
        ];
        if self.incoming {
            a.extend(["-incoming".into(), "defer".into()]);
        }
        a
    }

    /// Starts QEMU and waits until it has daemonized, which it does once
    /// its QMP socket listens. Returns the daemon.
    pub fn start(&self, dir: &StateDirArg) -> Result<Process> {
        dir.create()?;
        for p in [dir.qmp(self.name), dir.pidfile(self.name)] {
            let _ = std::fs::remove_file(p);
        }
        let log_path = dir.log(self.name);
        let log = File::create(&log_path)
            .map_err(|e| super::record::io_failure(&log_path, "create", e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| super::record::io_failure(&log_path, "create", e))?;
        let inherit: Vec<i32> = std::iter::once(self.ram)
            .chain(self.extra.iter().copied())
            .map(AsRawFd::as_raw_fd)
            .collect();
        let mut command = Command::new(self.qemu);
        command
            .args(self.own_args(dir))
            .args(self.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // SAFETY: Between fork and exec the closure only makes fcntl system
        // calls on fds this process owns, and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                for &fd in &inherit {
                    // Close-on-exec is cleared in the child only, so that no
                    // other program this process starts inherits guest RAM.
                    let fd = BorrowedFd::borrow_raw(fd);
                    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
                }
                Ok(())
            });
        }
        let status = command
            .status()
            .map_err(|e| gone(self.name, format!("cannot run {}: {e}", self.qemu)))?;
        if !status.success() {
            let mut text = String::new();
            let _ = File::open(&log_path).and_then(|mut f| f.read_to_string(&mut text));
            // QEMU's first error says what is wrong; warnings may come
            // before it, hints after it.
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty() && !l.contains("warning:"))
                .or_else(|| text.lines().find(|l| !l.trim().is_empty()));
            return Err(gone(
                self.name,
                format!(
                    "QEMU failed to start ({status}): {}",
                    first.unwrap_or("no message")
                ),
            ));
        }
        let pidfile = dir.pidfile(self.name);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                gone(
                    self.name,
                    format!("QEMU wrote no pid to {}", pidfile.display()),
                )
            })?;
        Process::find(self.name, pid, None)
    }
}

/// QEMU maps a file backend aligned to the file's page size, 4 KiB for a
/// memfd, and shmem gives a mapping huge pages only where its addresses and
/// file offsets align to 2 MiB: without `align=2M` guest RAM gets no THP even
/// where shmem allows it (`shmem_enabled=advise`, and QEMU asks with
/// `MADV_HUGEPAGE`). THP means 512 times fewer folios to box and carry.
fn thp_align(ram_size: u64) -> &'static str {
    if ram_size % (2 << 20) == 0 {
        ",align=2M"
    } else {
        ""
    }
}

/// A new memfd of `size` bytes, close-on-exec.
pub fn memfd(label: &str, size: u64) -> Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(label, MemfdFlags::CLOEXEC)
        .map_err(|e| Failure::new(Code::Io, format!("memfd_create: {e}")))?;
    rustix::fs::ftruncate(&fd, size).map_err(|e| {
        Failure::new(
            Code::Io,
            format!("cannot size a memfd to {size} bytes: {e}"),
        )
    })?;
    Ok(fd)
}

/// The size of the file behind `fd`.
pub fn file_size(fd: impl AsFd) -> Result<u64> {
    fstat(fd)
        .map(|st| st.st_size as u64)
        .map_err(|e| Failure::new(Code::Io, format!("fstat: {e}")))
}

/// The whole content of `fd`, from offset 0.
pub fn read_all(fd: OwnedFd) -> Result<Vec<u8>> {
    let mut f = File::from(fd);
    let mut out = Vec::new();
    f.rewind()
        .and_then(|_| f.read_to_end(&mut out))
        .map_err(|e| Failure::new(Code::Io, format!("read: {e}")))?;
    Ok(out)
}

/// A memfd holding `bytes`.
pub fn memfd_with(label: &str, bytes: &[u8]) -> Result<OwnedFd> {
    let fd = memfd(label, 0)?;
    let mut f = File::from(fd);
    f.write_all(bytes)
        .map_err(|e| Failure::new(Code::Io, format!("write: {e}")))?;
    Ok(f.into())
}

/// `qemu --version`'s `major.minor.micro`, without starting a VM.
pub fn binary_version(name: &str, qemu: &str) -> Result<String> {
    let out = Command::new(qemu)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| gone(name, format!("cannot run {qemu}: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(&text).ok_or_else(|| {
        super::mismatch(
            name,
            format!("{qemu} --version: no version in {:?}", text.lines().next()),
        )
    })
}

/// The version in `QEMU emulator version 10.0.2 (Debian ...)`.
pub fn parse_version(text: &str) -> Option<String> {
    let rest = text.lines().next()?.split("version ").nth(1)?;
    let v = rest.split_whitespace().next()?;
    let parts: Vec<&str> = v.split('.').collect();
    (parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok())).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(
            parse_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)\nCopyright"),
            Some("10.0.2".into())
        );
        assert_eq!(
            parse_version("QEMU emulator version 9.1.0\n"),
            Some("9.1.0".into())
        );
        assert_eq!(parse_version("qemu 10\n"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn start_time_of_this_process() {
        let me = std::process::id() as i32;
        let t = start_time(me).unwrap();
        assert_eq!(start_time(me), Some(t));
        let p = Process::find("t", me, Some(t)).unwrap();
        assert_eq!(p.start_time, t);
        assert_eq!(Process::find("t", me, None).unwrap().start_time, t);
        assert!(!p.exited());
        assert_eq!(
            Process::find("t", me, Some(t + 1)).unwrap_err().code,
            Code::QemuGone
        );
    }

    #[test]
    fn ram_of_whole_huge_pages_is_aligned_for_thp() {
        assert_eq!(thp_align(64 << 20), ",align=2M");
        assert_eq!(thp_align((2 << 20) + 4096), "");
    }

    #[test]
    fn memfds_hold_what_is_written() {
        let fd = memfd_with("t", b"hello").unwrap();
        assert_eq!(file_size(&fd).unwrap(), 5);
        assert_eq!(read_all(fd).unwrap(), b"hello");
    }
}
