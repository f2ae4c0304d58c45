// SPDX-License-Identifier: GPL-2.0 OR MIT

//! What the subcommands that drive `/dev/fdbox` share: the `--device`
//! option, names checked while parsing, and one-line messages for the
//! kernel's refusals.

use std::fmt::Display;
use std::path::PathBuf;

use fdbox::{
    BoxFd,
    BoxInfo,
    Device,
    Direction,
    Error,
    SealFlags, //
};

use crate::exit::{
    Code,
    Failure,
    Result, //
};

/// Where `/dev/fdbox` is, and whose boxes to open.
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArg {
    /// The FDBox device.
    #[arg(long, value_name = "PATH", default_value = Device::PATH)]
    pub device: PathBuf,
    /// Open the boxes of this uid rather than your own (needs CAP_SYS_ADMIN
    /// for another uid's); box names are per owner.
    #[arg(long, value_name = "UID")]
    pub owner: Option<u32>,
}

impl DeviceArg {
    /// Opens the device.
    pub fn open(&self) -> Result<Device> {
        Device::open_path(&self.device).map_err(|e| {
            let hint = match e {
                Error::NotFound => Some("is fdbox_core loaded?"),
                Error::PermissionDenied => Some("the device is root-only by default"),
                _ => None,
            };
            let what = format!("cannot open {}", self.device.display());
            Failure::new(Code::Io, with_hint(what, &e, hint))
        })
    }
}

/// A box or entry name, checked while parsing (a usage error, exit 2).
pub fn parse_name(s: &str) -> std::result::Result<String, String> {
    fdbox::validate_name(s)
        .map(|()| s.to_string())
        .map_err(|e| e.to_string())
}

/// The request the kernel refused, to explain its errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `FDBOX_GET_CAPS`.
    Caps,
    /// `FDBOX_LIST_BOXES`.
    List,
    /// `FDBOX_CREATE_BOX`.
    Create,
    /// `FDBOX_OPEN_BOX`.
    Open,
    /// `FDBOX_BOX_INFO`.
    Info,
    /// `FDBOX_BOX_ADD`.
    Add,
    /// `FDBOX_BOX_REMOVE`.
    Remove,
    /// `FDBOX_BOX_SEAL`.
    Seal,
    /// `FDBOX_BOX_SEAL` with `FDBOX_SEAL_PREVIOUS`.
    SealPrevious,
    /// `FDBOX_BOX_CANCEL`.
    Cancel,
    /// `FDBOX_BOX_RETRIEVE`.
    Retrieve,
    /// `FDBOX_BOX_DISCARD`.
    Discard,
}

/// What an errno means for this request, beyond the error's own message.
pub fn hint(req: Request, e: &Error) -> Option<&'static str> {
    use Request::*;
    Some(match (req, e) {
        (_, Error::UnknownCommand) => "is --device FDBox's device, on a kernel this tool knows?",
        (Open, Error::NotFound) => {
            "that owner (you, unless --owner) has no box by that name on that side of the kexec"
        }
        (Open, Error::PermissionDenied) => "not the box's owner and no CAP_SYS_ADMIN",
        (Create, Error::Exists) => "you have an outgoing box of that name",
        (Create, Error::QuotaExceeded) => {
            "you hold as many boxes as fdbox_core's user_max_boxes allows"
        }
        (Create, Error::NoSpace) => "the box table has no room left for you",
        (Add, Error::QuotaExceeded) => "the box owner holds as many entries as allowed",
        (Seal | SealPrevious, Error::QuotaExceeded) => {
            "the box owner's sealed payloads would exceed the limit"
        }
        (_, Error::Interrupted) => "killed while another call held the box",
        (Add, Error::Busy) => "the box is not open",
        (Add, Error::Exists) => "the entry name is taken, or the file is in a box already",
        (Remove, Error::Busy) => "the box is not open, or another entry depends on this one",
        (Seal | SealPrevious, Error::Busy) => {
            "the box is not open, or a kexec or reboot has started (the hand-over is final)"
        }
        (Seal, Error::Unsupported) => "KHO is off (boot with kho=on)",
        (SealPrevious, Error::Unsupported) => {
            "KHO is off (boot with kho=on), or an entry's handler can't write its previous \
             payload version (--previous)"
        }
        (SealPrevious, Error::InvalidArgument) => {
            "this kernel doesn't know FDBOX_SEAL_PREVIOUS (--previous)"
        }
        (SealPrevious, Error::NewerVersion) => {
            "a handler wrote a newer payload version than --previous allows (a handler bug); \
             nothing changed"
        }
        (Seal | SealPrevious, Error::NotFound) => {
            "an entry depends on a file that isn't in the box"
        }
        (Cancel, Error::Busy) => {
            "the box is not sealed, or a kexec or reboot has started (the hand-over is final)"
        }
        (Remove | Retrieve | Discard, Error::NotFound) => "no entry by that name",
        (Retrieve, Error::Busy) => "the entry was retrieved already, or the box is not incoming",
        (Retrieve, Error::Unavailable) => "fdbox ls BOX shows why",
        (Discard, Error::Busy) => {
            "the entry was retrieved or discarded already, or the box is not incoming"
        }
        _ => return None,
    })
}

/// The request of a seal with `flags`: [`Request::SealPrevious`] with
/// `FDBOX_SEAL_PREVIOUS`, whose errors mean more.
pub fn seal_request(flags: SealFlags) -> Request {
    if flags.contains(SealFlags::PREVIOUS) {
        Request::SealPrevious
    } else {
        Request::Seal
    }
}

/// The error and, if there is one, its hint for `req`.
pub fn explain(req: Request, e: &Error) -> String {
    match hint(req, e) {
        Some(h) => format!("{e}: {h}"),
        None => e.to_string(),
    }
}

/// `what: error: hint`.
fn with_hint(what: impl Display, e: &Error, hint: Option<&str>) -> String {
    match hint {
        Some(h) => format!("{what}: {e}: {h}"),
        None => format!("{what}: {e}"),
    }
}

/// The failure for the kernel refusing `req` on `what`: exit 2 for a name
/// refused before the kernel was asked, 1 otherwise.
pub fn refused(what: impl Display, req: Request, e: Error) -> Failure {
    let code = match e {
        Error::InvalidName(_) => Code::Usage,
        _ => Code::Io,
    };
    Failure::new(code, format!("{what}: {}", explain(req, &e)))
}

/// Opens the box `name` of `owner` (the caller, if `None`) on the side `direction`.
pub fn open_box(
    dev: &Device,
    name: &str,
    direction: Direction,
    owner: Option<u32>,
) -> Result<BoxFd> {
    match owner {
        Some(uid) => dev.open_box_of(name, direction, uid),
        None => dev.open_box(name, direction),
    }
    .map_err(|e| refused(format!("open {direction} box {name}"), Request::Open, e))
}

/// The state of box `name` through its box fd `b`.
pub fn box_info(b: &BoxFd, name: &str) -> Result<BoxInfo> {
    b.info()
        .map_err(|e| refused(format!("info of box {name}"), Request::Info, e))
}

/// Escapes what a terminal would interpret in a name from the kernel.
pub fn show(s: &str) -> String {
    if s.is_empty() || s.chars().any(char::is_control) {
        format!("{s:?}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_while_parsing() {
        assert_eq!(parse_name("vm0"), Ok("vm0".into()));
        assert_eq!(parse_name(""), Err("the name is empty".into()));
        assert!(parse_name(&"x".repeat(64))
            .unwrap_err()
            .contains("64 bytes"));
    }

    #[test]
    fn refusals_are_one_line_with_a_hint() {
        let f = refused("add vm0/ram", Request::Add, Error::Busy);
        assert_eq!(f.code, Code::Io);
        assert_eq!(
            f.message,
            "add vm0/ram: wrong state for this command (EBUSY): the box is not open"
        );
        let f = refused("seal vm0", Request::Seal, Error::OutOfMemory);
        assert_eq!(f.message, "seal vm0: out of memory (ENOMEM)");
        let f = refused(
            "create vm0",
            Request::Create,
            Error::InvalidName(fdbox::NameError::Empty),
        );
        assert_eq!(f.code, Code::Usage);
        assert!(!f.message.contains('\n'));
    }

    #[test]
    fn permission_is_explained() {
        let f = refused(
            "open incoming box vm0",
            Request::Open,
            Error::PermissionDenied,
        );
        assert_eq!(
            f.message,
            "open incoming box vm0: permission denied (EPERM or EACCES): not the box's \
             owner and no CAP_SYS_ADMIN"
        );
        let dev = DeviceArg {
            device: "/nonexistent/fdbox".into(),
            owner: None,
        };
        let f = dev.open().unwrap_err();
        assert_eq!(f.code, Code::Io);
        assert!(
            f.message.ends_with("is fdbox_core loaded?"),
            "{}",
            f.message
        );
    }

    #[test]
    fn every_request_explains_unknown_commands() {
        use Request::*;
        for req in [
            Caps,
            List,
            Create,
            Open,
            Info,
            Add,
            Remove,
            Seal,
            SealPrevious,
            Cancel,
            Retrieve,
            Discard,
        ] {
            assert!(hint(req, &Error::UnknownCommand).is_some(), "{req:?}");
        }
    }

    #[test]
    fn seal_hints_mention_previous_only_with_it() {
        assert_eq!(seal_request(SealFlags::empty()), Request::Seal);
        assert_eq!(seal_request(SealFlags::PREVIOUS), Request::SealPrevious);
        for e in [
            Error::Unsupported,
            Error::InvalidArgument,
            Error::NewerVersion,
        ] {
            let plain = explain(Request::Seal, &e);
            assert!(!plain.contains("previous"), "{plain}");
            let previous = explain(Request::SealPrevious, &e);
            assert!(previous.contains("--previous"), "{previous}");
        }
        assert_eq!(
            explain(Request::SealPrevious, &Error::NewerVersion),
            "a handler broke its payload version contract (EPROTO): a handler wrote a newer \
             payload version than --previous allows (a handler bug); nothing changed"
        );
        assert_eq!(
            explain(Request::Seal, &Error::Unsupported),
            "no handler preserves this file type (EOPNOTSUPP): KHO is off (boot with kho=on)"
        );
        assert_eq!(
            explain(Request::Seal, &Error::InvalidArgument),
            "invalid argument (EINVAL)"
        );
        // Both seals say what EBUSY means once a kexec has started.
        for req in [Request::Seal, Request::SealPrevious, Request::Cancel] {
            assert!(
                explain(req, &Error::Busy).contains("a kexec or reboot has started"),
                "{req:?}"
            );
        }
    }

    #[test]
    fn shows_names_safely() {
        assert_eq!(show("vm0"), "vm0");
        assert_eq!(show("a\nb"), "\"a\\nb\"");
        assert_eq!(show(""), "\"\"");
    }
}
