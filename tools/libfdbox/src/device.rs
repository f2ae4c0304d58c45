// SPDX-License-Identifier: GPL-2.0 OR MIT

//! [`Device`]: `/dev/fdbox`, which creates, opens and lists boxes.

use std::os::fd::{
    AsFd,
    BorrowedFd,
    OwnedFd, //
};
use std::path::Path;

use fdbox_uapi::{
    FDBOX_OPEN_INCOMING,
    FDBOX_OPEN_OUTGOING,
    FDBOX_SETTLE_FUTURE,
    FDBOX_SETTLE_NOW, //
};

use crate::error::{
    Error,
    Result, //
};
use crate::types::{
    BoxSummary,
    Caps,
    Direction,
    Settle,
    Settled, //
};
use crate::{
    name,
    sys,
    BoxFd, //
};

/// How many list elements the first call asks for.
const GUESS: usize = 16;

/// An open `/dev/fdbox`.
///
/// It creates and opens boxes, each handled through its own [`BoxFd`]; the
/// boxes don't depend on this fd staying open.
#[derive(Debug)]
pub struct Device {
    /// The open device.
    fd: OwnedFd,
}

impl Device {
    /// Where the device is.
    pub const PATH: &'static str = "/dev/fdbox";

    /// Opens [`Device::PATH`].
    ///
    /// [`Error::NotFound`] means `fdbox_core` isn't loaded; the device is
    /// root-only by default, so [`Error::PermissionDenied`] (`EACCES`) means
    /// the caller isn't allowed to use it.
    pub fn open() -> Result<Device> {
        Device::open_path(Device::PATH)
    }

    /// Opens the device at `path`, read-write and close-on-exec.
    pub fn open_path(path: impl AsRef<Path>) -> Result<Device> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        Ok(Device {
            fd: OwnedFd::from(file),
        })
    }

    /// What this kernel can preserve and restore: format versions, handlers
    /// and limits, and what the previous kernel handed over
    /// (`FDBOX_GET_CAPS`).
    pub fn caps(&self) -> Result<Caps> {
        let mut raw = Default::default();
        let handlers = sys::grow(GUESS, |buf| {
            raw = sys::get_caps(self.fd.as_fd(), buf)?;
            Ok(raw.n_handlers)
        })?;
        Ok(Caps::from_raw(&raw, &handlers))
    }

    /// Creates an open outgoing box owned by the caller's effective uid and
    /// gid (`FDBOX_CREATE_BOX`).
    ///
    /// The box lives while a [`BoxFd`] of it is open, until
    /// [`BoxFd::seal`]; closing the last one before the seal discards the
    /// box and gives every file back untouched. [`Error::Exists`] if the
    /// caller has an outgoing box of that name, [`Error::QuotaExceeded`] past
    /// the caller's limit of boxes, [`Error::NoSpace`] if the box table is
    /// full.
    pub fn create_box(&self, name: &str) -> Result<BoxFd> {
        let name = name::encode(name)?;
        let fd = sys::create_box(self.fd.as_fd(), name)?;
        Ok(BoxFd::from(fd))
    }

    /// Opens an existing box of the caller's effective uid: an outgoing one
    /// (to inspect, seal or cancel it) or an incoming one, to retrieve its
    /// entries (`FDBOX_OPEN_BOX`). Box names are per owner, so another
    /// uid's box of the same name is never opened by mistake.
    ///
    /// [`Error::NotFound`] if the caller has no box by that name on that
    /// side; [`Error::InvalidArgument`] for [`Direction::Unknown`].
    pub fn open_box(&self, name: &str, direction: Direction) -> Result<BoxFd> {
        self.open_as(name, direction, None)
    }

    /// Opens box `name` of uid `owner` (in the caller's user namespace), as
    /// [`Device::open_box`] does the caller's own. [`Error::PermissionDenied`]
    /// for another uid's box unless the caller has `CAP_SYS_ADMIN`.
    pub fn open_box_of(&self, name: &str, direction: Direction, owner: u32) -> Result<BoxFd> {
        self.open_as(name, direction, Some(owner))
    }

    fn open_as(&self, name: &str, direction: Direction, owner: Option<u32>) -> Result<BoxFd> {
        let name = name::encode(name)?;
        let flags = match direction {
            Direction::Outgoing => FDBOX_OPEN_OUTGOING,
            Direction::Incoming => FDBOX_OPEN_INCOMING,
            Direction::Unknown(_) => return Err(Error::InvalidArgument),
        };
        let fd = sys::open_box(self.fd.as_fd(), name, flags, owner)?;
        Ok(BoxFd::from(fd))
    }

    /// Every box, outgoing and incoming (`FDBOX_LIST_BOXES`).
    pub fn list_boxes(&self) -> Result<Vec<BoxSummary>> {
        let boxes = sys::grow(GUESS, |buf| sys::list_boxes(self.fd.as_fd(), buf))?;
        Ok(boxes.iter().map(BoxSummary::from).collect())
    }
}

impl Device {
    /// Moves the memory of `fd` (guest RAM in a memfd) where a hand-over can
    /// keep it, ahead of [`BoxFd::add`], whose blackout would otherwise pay
    /// for the migration (`FDBOX_SETTLE_FD`). Call it with
    /// [`Settle::Future`] right after creating the memfd, and with
    /// [`Settle::Now`] before the update.
    ///
    /// [`Error::Unsupported`] for a file whose handler has no such notion,
    /// [`Error::Busy`] once the file is in a box.
    pub fn settle_fd(&self, fd: BorrowedFd<'_>, how: Settle) -> Result<Settled> {
        let flags = match how {
            Settle::Count => 0,
            Settle::Now => FDBOX_SETTLE_NOW,
            Settle::Future => FDBOX_SETTLE_FUTURE,
            Settle::NowAndFuture => FDBOX_SETTLE_NOW | FDBOX_SETTLE_FUTURE,
        };
        let (unsettled, migrated) = sys::settle_fd(self.fd.as_fd(), fd, flags)?;
        Ok(Settled {
            unsettled,
            migrated,
        })
    }
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<OwnedFd> for Device {
    /// Takes an fd of `/dev/fdbox` opened elsewhere (e.g. received over a
    /// socket). Any other fd fails every call with
    /// [`Error::UnknownCommand`].
    fn from(fd: OwnedFd) -> Self {
        Device { fd }
    }
}

impl From<Device> for OwnedFd {
    fn from(dev: Device) -> Self {
        dev.fd
    }
}
