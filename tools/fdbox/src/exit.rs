// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Exit codes and the one-line failure every subcommand reports.

/// The documented exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Code {
    /// An I/O error: a file or debugfs entry can't be read, or FDBox
    /// refused a request.
    Io = 1,
    /// Bad command-line usage (clap also exits with 2).
    Usage = 2,
    /// The blob is malformed.
    Malformed = 3,
    /// The blob's format version (or header flags) is not supported.
    Unsupported = 4,
    /// The blob decodes but fails validation.
    Invalid = 5,
    /// There is no blob: the file is empty (for `--out`, no box is sealed;
    /// for `--in`, the previous kernel handed none over).
    NoBlob = 6,
    /// `fdbox vm`: QEMU is gone (not running, exited, QMP closed).
    QemuGone = 7,
    /// `fdbox vm`: QEMU refused a QMP command, or a migration failed.
    Qmp = 8,
    /// `fdbox vm`: FDBox refused the VM's box.
    BoxRefused = 9,
    /// `fdbox vm`: wrong RAM size or QEMU version, RAM not on the shared
    /// file backend, or unreadable metadata.
    Mismatch = 10,
    /// `fdbox vm`: no such VM.
    NoVm = 11,
    /// `fdbox check`: some entries won't restore in the target, or whether
    /// its `fdbox_core` reads the hand-over can't be told.
    SomeWontRestore = 12,
    /// `fdbox check`: nothing will restore: the target has no `fdbox_core`,
    /// or it doesn't read this kernel's format major.
    NothingWillRestore = 13,
}

/// The `--help` text listing the exit codes.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  I/O error (file or debugfs entry unreadable), or FDBox refused the
     request (one line says which request and why)
  2  usage error (including a name FDBox would refuse)
  3  malformed blob (one line says what and at which byte offset)
  4  unsupported format version or header flags
  5  validation failed, or some entries are corrupt (fdbox inspect verify)
  6  no blob: the file is empty (fdbox inspect: with --out, no box is
     sealed; with --in, the previous kernel handed none over)
  7-11  fdbox vm only: see fdbox vm --help
  12-13  fdbox check only: see fdbox check --help";

/// A failure: an exit code and a one-line message.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: Code,
    /// The message, without the `fdbox: error: ` prefix.
    pub message: String,
}

impl Failure {
    /// A failure with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// The failure for a codec error about `what` (a path).
    pub fn format(what: &str, e: &fdbox_format::Error) -> Self {
        use fdbox_format::ErrorClass;
        let (code, kind) = match e.class() {
            ErrorClass::Unsupported => (Code::Unsupported, "unsupported blob"),
            ErrorClass::Invalid => (Code::Invalid, "validation failed"),
            ErrorClass::Malformed | ErrorClass::Usage => (Code::Malformed, "malformed blob"),
        };
        Failure::new(code, format!("{what}: {kind}: {e}"))
    }
}

/// The result of a subcommand.
pub type Result<T = ()> = std::result::Result<T, Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_keep_their_numbers() {
        let codes = [
            (Code::Io, 1),
            (Code::Usage, 2),
            (Code::Malformed, 3),
            (Code::Unsupported, 4),
            (Code::Invalid, 5),
            (Code::NoBlob, 6),
            (Code::QemuGone, 7),
            (Code::Qmp, 8),
            (Code::BoxRefused, 9),
            (Code::Mismatch, 10),
            (Code::NoVm, 11),
            (Code::SomeWontRestore, 12),
            (Code::NothingWillRestore, 13),
        ];
        for (code, n) in codes {
            assert_eq!(code as u8, n, "{code:?}");
        }
        assert!(EXIT_CODES_HELP.contains("12-13  fdbox check only"));
    }
}
