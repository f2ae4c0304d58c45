// SPDX-License-Identifier: GPL-2.0 OR MIT

//! QEMU's QMP over its UNIX socket, through the `qapi` crate's typed
//! commands, and the migration steps `fdbox vm` takes with them.

use std::io::{
    BufRead,
    BufReader, //
};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{
    Duration,
    Instant, //
};

use qapi::qmp;
use qapi::{
    ExecuteError,
    Qmp,
    Stream, //
};

use super::{
    gone,
    qmp_failed, //
};
use crate::exit::Result;

/// How long a migration may take before `fdbox vm` gives up on it.
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(600);

/// How often a running migration is polled: QMP has no blocking wait for
/// one, and its event arrives only between responses.
const MIGRATION_POLL: Duration = Duration::from_millis(1);

/// How long one QMP answer may take. QEMU serves one client at a time and
/// leaves a second one waiting unanswered, and a wedged QEMU never answers:
/// neither may hang `fdbox vm` in the middle of a blackout.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// A QMP session with one QEMU.
pub struct Qemu {
    /// The session, past the capabilities negotiation.
    qmp: Qmp<Stream<BufReader<UnixStream>, UnixStream>>,
    /// The VM's name, for messages.
    name: String,
}

/// How the state is written or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `cpr-reboot` with `x-ignore-shared`: guest RAM stays in its memfd
    /// and only device state goes to the file.
    Fdbox,
    /// A normal migration: guest RAM is copied into the file, the route a
    /// user has without FDBox.
    File,
}

impl Qemu {
    /// Connects to the QMP socket at `path` and negotiates capabilities.
    pub fn connect(name: &str, path: &Path) -> Result<Qemu> {
        let sock = UnixStream::connect(path).map_err(|e| {
            gone(
                name,
                format!("cannot connect to QMP at {}: {e}", path.display()),
            )
        })?;
        sock.set_read_timeout(Some(ANSWER_TIMEOUT))
            .map_err(|e| gone(name, format!("QMP socket: {e}")))?;
        let read = sock
            .try_clone()
            .map_err(|e| gone(name, format!("QMP socket: {e}")))?;
        let mut qmp = Qmp::new(Stream::new(BufReader::new(read), sock));
        // The greeting is read here, not by `Qmp::handshake`, which panics
        // when the peer closes before it.
        let mut greeting = String::new();
        let n = qmp
            .inner_mut()
            .read_line(&mut greeting)
            .map_err(|e| gone(name, format!("QMP greeting: {}", hung(&e))))?;
        if n == 0 {
            return Err(gone(
                name,
                "QMP closed before its greeting (is another client connected?)",
            ));
        }
        serde_json::from_str::<qapi::qmp::QapiCapabilities>(&greeting)
            .map_err(|e| qmp_failed(name, format!("not a QMP greeting: {e}")))?;
        let mut q = Qemu {
            qmp,
            name: name.to_string(),
        };
        q.execute("qmp_capabilities", &qmp::qmp_capabilities { enable: None })?;
        Ok(q)
    }

    /// Runs one command; a closed socket means QEMU is gone.
    pub fn execute<C: qapi::Command>(&mut self, what: &str, c: &C) -> Result<C::Ok> {
        self.qmp.execute(c).map_err(|e| match e {
            ExecuteError::Io(e) => gone(&self.name, format!("{what}: {}", hung(&e))),
            ExecuteError::Qapi(e) => qmp_failed(&self.name, format!("{what}: {}", e.desc)),
        })
    }

    /// QEMU's version, as `major.minor.micro`.
    pub fn version(&mut self) -> Result<String> {
        let v = self.execute("query-version", &qmp::query_version {})?;
        Ok(format!(
            "{}.{}.{}",
            v.qemu.major, v.qemu.minor, v.qemu.micro
        ))
    }

    /// The QOM type of the machine (e.g. `microvm-machine`).
    pub fn machine_type(&mut self) -> Result<String> {
        let v = self.execute(
            "qom-get /machine type",
            &qmp::qom_get {
                path: "/machine".into(),
                property: "type".into(),
            },
        )?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// The id of the memory backend that holds guest RAM (`""` if none).
    pub fn ram_backend(&mut self) -> Result<String> {
        let v = self.execute(
            "qom-get /machine memory-backend",
            &qmp::qom_get {
                path: "/machine".into(),
                property: "memory-backend".into(),
            },
        )?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Whether the memory backend `id` maps its file shared, and its size.
    pub fn memdev(&mut self, id: &str) -> Result<Option<(bool, u64)>> {
        let devs = self.execute("query-memdev", &qmp::query_memdev {})?;
        Ok(devs
            .into_iter()
            .find(|d| d.id.as_deref() == Some(id))
            .map(|d| (d.share, d.size)))
    }

    /// Whether the guest runs.
    pub fn running(&mut self) -> Result<bool> {
        Ok(self.execute("query-status", &qmp::query_status {})?.running)
    }

    /// Pauses the guest's vCPUs.
    pub fn stop(&mut self) -> Result<()> {
        self.execute("stop", &qmp::stop {}).map(drop)
    }

    /// Resumes the guest's vCPUs.
    pub fn cont(&mut self) -> Result<()> {
        self.execute("cont", &qmp::cont {}).map(drop)
    }

    /// Asks QEMU to exit. QEMU acts on the command as soon as it has parsed
    /// it, and may close the socket before its answer, or before the line's
    /// end is written: a closed socket is the answer then. Callers wait for
    /// the exit itself on the pidfd.
    pub fn quit(&mut self) -> Result<()> {
        use std::io::ErrorKind as K;
        match self.qmp.execute(&qmp::quit {}) {
            Ok(_) => Ok(()),
            Err(ExecuteError::Io(e))
                if matches!(
                    e.kind(),
                    K::BrokenPipe | K::UnexpectedEof | K::ConnectionReset
                ) =>
            {
                Ok(())
            }
            Err(ExecuteError::Io(e)) => Err(gone(&self.name, format!("quit: {}", hung(&e)))),
            Err(ExecuteError::Qapi(e)) => Err(qmp_failed(&self.name, format!("quit: {}", e.desc))),
        }
    }

    /// Sets the migration mode and capabilities of `route`, on either side.
    pub fn prepare(&mut self, route: Route) -> Result<()> {
        let mode = match route {
            Route::Fdbox => qmp::MigMode::cpr_reboot,
            Route::File => qmp::MigMode::normal,
        };
        let params = qmp::MigrateSetParameters {
            mode: Some(mode),
            ..Default::default()
        };
        self.execute(
            "migrate-set-parameters",
            &qmp::migrate_set_parameters::from(params),
        )?;
        let ignore_shared = qmp::MigrationCapabilityStatus {
            capability: qmp::MigrationCapability::x_ignore_shared,
            state: route == Route::Fdbox,
        };
        self.execute(
            "migrate-set-capabilities",
            &qmp::migrate_set_capabilities {
                capabilities: vec![ignore_shared],
            },
        )
        .map(drop)
    }

    /// Stops a migration that failed or timed out, so that QEMU writes no
    /// more; harmless when none runs.
    pub fn migrate_cancel(&mut self) {
        let _ = self.execute("migrate-cancel", &qmp::migrate_cancel {});
    }

    /// Writes the VM's state to `uri` and waits until it is complete.
    /// Returns the bytes of RAM QEMU migrated (`ram.total`): the RAM blocks
    /// `x-ignore-shared` skips are not counted.
    pub fn migrate(&mut self, uri: &str) -> Result<u64> {
        self.execute(
            "migrate",
            &qmp::migrate {
                uri: Some(uri.to_string()),
                channels: None,
                detach: None,
                resume: None,
            },
        )?;
        self.wait_migration("migrate")
    }

    /// Reads the VM's state from `uri` into a QEMU started with
    /// `-incoming defer`, and waits until it is complete.
    pub fn migrate_incoming(&mut self, uri: &str) -> Result<()> {
        self.execute(
            "migrate-incoming",
            &qmp::migrate_incoming {
                uri: Some(uri.to_string()),
                channels: None,
                exit_on_error: Some(false),
            },
        )?;
        self.wait_migration("migrate-incoming").map(drop)
    }

    /// Polls `query-migrate` until the migration completes or fails;
    /// returns `ram.total`.
    fn wait_migration(&mut self, what: &str) -> Result<u64> {
        use qmp::MigrationStatus as S;
        let start = Instant::now();
        loop {
            let info = self.execute("query-migrate", &qmp::query_migrate {})?;
            match info.status {
                Some(S::completed) => {
                    return Ok(info.ram.map_or(0, |r| r.total.max(0) as u64));
                }
                Some(S::failed | S::cancelled) => {
                    self.migrate_cancel();
                    let why = info.error_desc.unwrap_or_else(|| "no reason given".into());
                    return Err(qmp_failed(&self.name, format!("{what} failed: {why}")));
                }
                _ if start.elapsed() > MIGRATION_TIMEOUT => {
                    self.migrate_cancel();
                    return Err(qmp_failed(
                        &self.name,
                        format!("{what} still runs after {MIGRATION_TIMEOUT:?}"),
                    ));
                }
                _ => std::thread::sleep(MIGRATION_POLL),
            }
        }
    }
}

/// An I/O error, saying so when it is [`ANSWER_TIMEOUT`] running out.
fn hung(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!(
                "no answer within {ANSWER_TIMEOUT:?}: QMP busy with another client, or QEMU hung"
            )
        }
        _ => e.to_string(),
    }
}
