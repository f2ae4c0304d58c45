// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `NAME=SRC`: an entry name and the file to put in the box under it.
//!
//! SRC is `/proc/PID/fd/N` (or `/proc/self/fd/N`) for a file another process
//! has open: that very open file is taken, with `pidfd_getfd(2)`, not a new
//! open of the same path; this matters for iommufd and VFIO, where each open
//! is a new context. Any other SRC is a path that is opened read-write (or
//! read-only where that is refused).

use std::fs::OpenOptions;
use std::os::fd::{
    OwnedFd,
    RawFd, //
};
use std::path::{
    Component,
    Path,
    PathBuf, //
};

use rustix::io::Errno;
use rustix::process::{
    Pid,
    PidfdFlags,
    PidfdGetfdFlags, //
};

use crate::exit::{
    Code,
    Failure,
    Result, //
};

/// One `NAME=SRC` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The entry's name.
    pub name: String,
    /// Where the file comes from.
    pub src: PathBuf,
}

impl std::fmt::Display for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.name, self.src.display())
    }
}

/// Parses `NAME=SRC`, split at the first `=`: NAME is a valid entry name
/// (so it has no `=`), SRC is not empty.
pub fn parse_spec(s: &str) -> std::result::Result<Spec, String> {
    let Some((name, src)) = s.split_once('=') else {
        return Err("expected NAME=SRC".into());
    };
    fdbox::validate_name(name).map_err(|e| format!("entry name {name:?}: {e}"))?;
    if src.is_empty() {
        return Err(format!("{name}: SRC is empty"));
    }
    Ok(Spec {
        name: name.into(),
        src: src.into(),
    })
}

/// Refuses a list of specs that names an entry twice (exit 2).
pub fn check_unique(specs: &[Spec]) -> Result {
    for (i, s) in specs.iter().enumerate() {
        if specs[..i].iter().any(|o| o.name == s.name) {
            return Err(Failure::new(
                Code::Usage,
                format!("entry {} is named twice", s.name),
            ));
        }
    }
    Ok(())
}

/// Whose fd a `/proc/PID/fd/N` path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcFd {
    /// `/proc/self/fd/N`.
    OwnFd(RawFd),
    /// `/proc/PID/fd/N`.
    Process(i32, RawFd),
}

/// `Some` if `src` is exactly `/proc/PID/fd/N` or `/proc/self/fd/N`.
pub fn proc_fd(src: &Path) -> Option<ProcFd> {
    let parts: Vec<Component<'_>> = src.components().collect();
    let [Component::RootDir, Component::Normal(proc), Component::Normal(pid), Component::Normal(fd), Component::Normal(n)] =
        parts[..]
    else {
        return None;
    };
    if proc != "proc" || fd != "fd" {
        return None;
    }
    let n: RawFd = n.to_str()?.parse().ok().filter(|n| *n >= 0)?;
    let pid = pid.to_str()?;
    if pid == "self" {
        return Some(ProcFd::OwnFd(n));
    }
    let pid: i32 = pid.parse().ok().filter(|p| *p > 0)?;
    Some(ProcFd::Process(pid, n))
}

/// Opens the file of one spec.
pub fn open(spec: &Spec) -> Result<OwnedFd> {
    let fail = |how: &str, e: std::io::Error| {
        Failure::new(
            Code::Io,
            format!("{spec}: cannot {how} {}: {e}", spec.src.display()),
        )
    };
    match proc_fd(&spec.src) {
        Some(p) => {
            let (pid, n) = match p {
                ProcFd::OwnFd(n) => (rustix::process::getpid(), n),
                // PANIC: `proc_fd` only returns positive pids.
                ProcFd::Process(pid, n) => (Pid::from_raw(pid).expect("positive pid"), n),
            };
            let take = |e: Errno| fail("take", e.into());
            let pidfd = rustix::process::pidfd_open(pid, PidfdFlags::empty()).map_err(take)?;
            rustix::process::pidfd_getfd(&pidfd, n, PidfdGetfdFlags::empty()).map_err(take)
        }
        None => {
            let rw = OpenOptions::new().read(true).write(true).open(&spec.src);
            let file = match rw {
                Err(e)
                    if matches!(
                        Errno::from_io_error(&e),
                        Some(Errno::ACCESS | Errno::PERM | Errno::ROFS)
                    ) =>
                {
                    OpenOptions::new().read(true).open(&spec.src)
                }
                other => other,
            }
            .map_err(|e| fail("open", e))?;
            Ok(file.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_equals_src() {
        assert_eq!(
            parse_spec("ram=/proc/42/fd/7"),
            Ok(Spec {
                name: "ram".into(),
                src: "/proc/42/fd/7".into()
            })
        );
        // Split at the first `=`: SRC may hold more.
        assert_eq!(
            parse_spec("cfg=/tmp/a=b").unwrap().src,
            PathBuf::from("/tmp/a=b")
        );
        assert_eq!(parse_spec("ram").unwrap_err(), "expected NAME=SRC");
        assert_eq!(parse_spec("ram=").unwrap_err(), "ram: SRC is empty");
        assert!(parse_spec("=/dev/null")
            .unwrap_err()
            .contains("the name is empty"));
        let long = format!("{}=/dev/null", "x".repeat(64));
        assert!(parse_spec(&long).unwrap_err().contains("64 bytes"));
    }

    #[test]
    fn refuses_duplicate_names() {
        let a = parse_spec("ram=/a").unwrap();
        let b = parse_spec("disk=/b").unwrap();
        assert!(check_unique(&[a.clone(), b.clone()]).is_ok());
        let f = check_unique(&[a.clone(), b, a]).unwrap_err();
        assert_eq!(f.code, Code::Usage);
        assert_eq!(f.message, "entry ram is named twice");
    }

    #[test]
    fn recognises_proc_fd_paths() {
        let p = |s: &str| proc_fd(Path::new(s));
        assert_eq!(p("/proc/42/fd/7"), Some(ProcFd::Process(42, 7)));
        assert_eq!(p("/proc/self/fd/0"), Some(ProcFd::OwnFd(0)));
        assert_eq!(p("/proc/42/fd/"), None);
        assert_eq!(p("/proc/42/fd/x"), None);
        assert_eq!(p("/proc/0/fd/1"), None);
        assert_eq!(p("/proc/-1/fd/1"), None);
        assert_eq!(p("/proc/42/fd/-1"), None);
        assert_eq!(p("/proc/42/fdinfo/7"), None);
        assert_eq!(p("proc/42/fd/7"), None);
        assert_eq!(p("/proc/42/fd/7/x"), None);
        assert_eq!(p("/dev/shm/ram"), None);
    }

    #[test]
    fn takes_the_very_open_file_of_a_proc_fd_path() {
        use std::io::{
            Seek,
            SeekFrom,
            Write, //
        };
        use std::os::fd::AsRawFd;

        // A file whose offset the copy must share: the same open file.
        let path = std::env::temp_dir().join(format!("fdbox-proc-fd-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        f.write_all(b"hello").unwrap();
        let spec = parse_spec(&format!("f=/proc/self/fd/{}", f.as_raw_fd())).unwrap();
        let got = std::fs::File::from(open(&spec).unwrap());
        assert_eq!((&got).stream_position().unwrap(), 5);
        f.seek(SeekFrom::Start(2)).unwrap();
        assert_eq!((&got).stream_position().unwrap(), 2);
        let spec = parse_spec(&format!(
            "f=/proc/{}/fd/{}",
            std::process::id(),
            f.as_raw_fd()
        ))
        .unwrap();
        let got = std::fs::File::from(open(&spec).unwrap());
        assert_eq!((&got).stream_position().unwrap(), 2);
    }

    #[test]
    fn opens_paths_and_reports_failures() {
        let spec = parse_spec("null=/dev/null").unwrap();
        assert!(open(&spec).is_ok());
        let spec = parse_spec("x=/nonexistent/file").unwrap();
        let f = open(&spec).unwrap_err();
        assert_eq!(f.code, Code::Io);
        assert!(
            f.message
                .starts_with("x=/nonexistent/file: cannot open /nonexistent/file: "),
            "{}",
            f.message
        );
        let spec = parse_spec("x=/proc/self/fd/9999").unwrap();
        let f = open(&spec).unwrap_err();
        assert!(
            f.message.contains("cannot take /proc/self/fd/9999"),
            "{}",
            f.message
        );
    }
}
