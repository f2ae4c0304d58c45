// SPDX-License-Identifier: GPL-2.0 OR MIT

//! What `fdbox vm` remembers about a VM: the launch record, in the state
//! directory (a tmpfs: it lasts until the kexec), and the metadata that
//! travels in the box as the entry `meta`.

use std::fs;
use std::io::ErrorKind;
use std::path::{
    Path,
    PathBuf, //
};

use serde::{
    Deserialize,
    Serialize, //
};

use crate::exit::{
    Code,
    Failure,
    Result, //
};

/// The format of [`Meta`]; a newer one is refused, not guessed at.
pub const META_FORMAT: u32 = 1;

/// Where a VM is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// QEMU runs the guest.
    Running,
    /// The box is sealed and QEMU has quit: the VM crosses the next kexec.
    Saved,
    /// `save --to-file` wrote the state with guest RAM to a file, and QEMU
    /// has quit.
    SavedToFile,
}

/// A VM `fdbox vm launch` or `restore` started, as the state directory
/// records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The VM's name.
    pub name: String,
    /// Where it is.
    pub phase: Phase,
    /// QEMU's pid.
    pub pid: i32,
    /// QEMU's start time (`/proc/PID/stat` field 22), so that a recycled
    /// pid is never mistaken for it.
    pub start_time: u64,
    /// QEMU's QMP socket.
    pub qmp: PathBuf,
    /// The QEMU binary.
    pub qemu: String,
    /// QEMU's version, `major.minor.micro`.
    pub qemu_version: String,
    /// The guest RAM's size in bytes.
    pub ram_size: u64,
    /// The fd number of the guest RAM's memfd in QEMU.
    pub ram_fd: i32,
    /// The arguments given to QEMU after `fdbox vm`'s own.
    pub args: Vec<String>,
}

/// The VM's metadata, carried across the kexec as the box's entry `meta`
/// (JSON in a memfd): nothing on the host's file systems survives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// [`META_FORMAT`].
    pub format: u32,
    /// The VM's name.
    pub name: String,
    /// The version of the QEMU that wrote the state.
    pub qemu_version: String,
    /// The guest RAM's size in bytes.
    pub ram_size: u64,
    /// The QOM machine type.
    pub machine: String,
    /// The QEMU arguments after `fdbox vm`'s own, for `restore` to reuse.
    pub args: Vec<String>,
    /// The length of the state in bytes.
    pub state_len: u64,
    /// When the entries were boxed, in nanoseconds of CLOCK_REALTIME.
    pub saved_at_ns: u128,
    /// The phases of the save, in microseconds.
    pub save_phases_us: Vec<(String, u64)>,
}

/// The state directory: `--state-dir`, else `$FDBOX_VM_DIR`, else
/// `/run/fdbox/vm`.
#[derive(Debug, Clone, clap::Args)]
pub struct StateDirArg {
    /// Where `fdbox vm` keeps its records and QMP sockets.
    #[arg(
        long,
        value_name = "DIR",
        env = "FDBOX_VM_DIR",
        default_value = "/run/fdbox/vm"
    )]
    pub state_dir: PathBuf,
}

impl StateDirArg {
    /// The record's path for `name`.
    pub fn record(&self, name: &str) -> PathBuf {
        self.state_dir.join(format!("{name}.json"))
    }

    /// The stash of an incoming VM's metadata once it is retrieved, so that
    /// a failed restore can be run again.
    pub fn meta_stash(&self, name: &str) -> PathBuf {
        self.state_dir.join(format!("{name}.meta.json"))
    }

    /// QEMU's QMP socket for `name`.
    pub fn qmp(&self, name: &str) -> PathBuf {
        self.state_dir.join(format!("{name}.qmp"))
    }

    /// QEMU's pid file for `name`.
    pub fn pidfile(&self, name: &str) -> PathBuf {
        self.state_dir.join(format!("{name}.pid"))
    }

    /// QEMU's stderr until it daemonizes.
    pub fn log(&self, name: &str) -> PathBuf {
        self.state_dir.join(format!("{name}.log"))
    }

    /// Creates the directory, root-only.
    pub fn create(&self) -> Result {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.state_dir)
            .map_err(|e| io_failure(&self.state_dir, "create", e))
    }

    /// The record of `name`, if there is one.
    pub fn load(&self, name: &str) -> Result<Option<Record>> {
        read_json(&self.record(name))
    }

    /// Every record, by name.
    pub fn load_all(&self) -> Result<Vec<Record>> {
        let dir = match fs::read_dir(&self.state_dir) {
            Ok(d) => d,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_failure(&self.state_dir, "read", e)),
        };
        let mut out = Vec::new();
        for ent in dir {
            let path = ent
                .map_err(|e| io_failure(&self.state_dir, "read", e))?
                .path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".json") && !name.ends_with(".meta.json") {
                if let Some(r) = read_json::<Record>(&path)? {
                    out.push(r);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Writes `record` atomically (a rename over the old one).
    pub fn store(&self, record: &Record) -> Result {
        write_json(&self.record(&record.name), record)
    }

    /// Removes the files of `name`; missing ones are fine.
    pub fn forget(&self, name: &str) {
        for p in [
            self.record(name),
            self.qmp(name),
            self.pidfile(name),
            self.log(name),
        ] {
            let _ = fs::remove_file(p);
        }
    }
}

/// The failure for an I/O error on `path`.
pub fn io_failure(path: &Path, how: &str, e: std::io::Error) -> Failure {
    Failure::new(Code::Io, format!("cannot {how} {}: {e}", path.display()))
}

/// Reads JSON from `path`; `None` if the file doesn't exist.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_failure(path, "read", e)),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Failure::new(
            Code::Io,
            format!("{}: not a record of fdbox vm: {e}", path.display()),
        )
    })
}

/// Writes `value` as JSON to `path` through a temporary file and a rename.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result {
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(Code::Io, format!("{}: {e}", path.display())))?;
    fs::write(&tmp, text + "\n").map_err(|e| io_failure(&tmp, "write", e))?;
    fs::rename(&tmp, path).map_err(|e| io_failure(path, "write", e))
}

impl Meta {
    /// Parses the entry `meta`; a format this tool doesn't know is refused.
    pub fn parse(name: &str, bytes: &[u8]) -> Result<Meta> {
        #[derive(Deserialize)]
        struct Format {
            format: u32,
        }
        let bad = |e: serde_json::Error| {
            Failure::new(
                Code::Mismatch,
                format!("{name}: the box's meta entry is unreadable: {e}"),
            )
        };
        let f: Format = serde_json::from_slice(bytes).map_err(bad)?;
        if f.format != META_FORMAT {
            return Err(Failure::new(
                Code::Mismatch,
                format!(
                    "{name}: the box's meta entry has format {}; this fdbox reads {META_FORMAT}",
                    f.format
                ),
            ));
        }
        serde_json::from_slice(bytes).map_err(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            format: META_FORMAT,
            name: "vm0".into(),
            qemu_version: "10.0.2".into(),
            ram_size: 64 << 20,
            machine: "microvm-machine".into(),
            args: vec!["-M".into(), "microvm".into()],
            state_len: 40960,
            saved_at_ns: 1,
            save_phases_us: vec![("stop".into(), 12)],
        }
    }

    #[test]
    fn meta_round_trips_and_refuses_other_formats() {
        let m = meta();
        let bytes = serde_json::to_vec(&m).unwrap();
        assert_eq!(Meta::parse("vm0", &bytes).unwrap(), m);
        let newer = String::from_utf8(bytes)
            .unwrap()
            .replace("\"format\":1", "\"format\":2");
        let e = Meta::parse("vm0", newer.as_bytes()).unwrap_err();
        assert_eq!(e.code, Code::Mismatch);
        assert!(e.message.contains("format 2"), "{}", e.message);
        let e = Meta::parse("vm0", b"{\"format\":1}").unwrap_err();
        assert!(e.message.contains("unreadable"), "{}", e.message);
    }

    #[test]
    fn records_round_trip_through_the_state_dir() {
        let dir = std::env::temp_dir().join(format!("fdbox-vm-test-{}", std::process::id()));
        let s = StateDirArg {
            state_dir: dir.clone(),
        };
        s.create().unwrap();
        assert_eq!(s.load("vm0").unwrap(), None);
        let r = Record {
            name: "vm0".into(),
            phase: Phase::Running,
            pid: 1,
            start_time: 2,
            qmp: s.qmp("vm0"),
            qemu: "qemu-system-x86_64".into(),
            qemu_version: "10.0.2".into(),
            ram_size: 1 << 20,
            ram_fd: 3,
            args: vec![],
        };
        s.store(&r).unwrap();
        fs::write(s.meta_stash("vm0"), "{}").unwrap();
        assert_eq!(s.load("vm0").unwrap(), Some(r.clone()));
        assert_eq!(s.load_all().unwrap(), vec![r]);
        s.forget("vm0");
        assert_eq!(s.load("vm0").unwrap(), None);
        fs::remove_dir_all(dir).unwrap();
    }
}
