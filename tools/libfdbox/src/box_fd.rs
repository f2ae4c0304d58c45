// SPDX-License-Identifier: GPL-2.0 OR MIT

//! [`BoxFd`]: one box, handled through its own file descriptor.

use std::os::fd::{
    AsFd,
    BorrowedFd,
    OwnedFd, //
};

use crate::error::Result;
use crate::name;
use crate::sys;
use crate::types::{
    BoxInfo,
    SealFlags, //
};

/// How many entries the first `FDBOX_BOX_INFO` call asks for.
const GUESS: usize = 16;

/// A box fd, from [`Device::create_box`] or [`Device::open_box`].
///
/// What closing it does depends on the box: an open outgoing box is
/// discarded when its last box fd closes, and every file is given back
/// untouched; a sealed box belongs to the kernel and outlives every fd;
/// closing an incoming box fd changes nothing.
///
/// [`Device::create_box`]: crate::Device::create_box
/// [`Device::open_box`]: crate::Device::open_box
#[derive(Debug)]
pub struct BoxFd {
    /// The box fd.
    fd: OwnedFd,
}

impl BoxFd {
    /// Adds `fd` to the open outgoing box as the entry `name`
    /// (`FDBOX_BOX_ADD`).
    ///
    /// The handler of the file's type prepares it; some freeze the file (a
    /// memfd can't change size) until the entry is removed or the box
    /// discarded. The box keeps its own reference: `fd` may be closed
    /// afterwards. [`Error::Busy`] unless the box is open,
    /// [`Error::Unsupported`] if no handler takes the file,
    /// [`Error::Exists`] if the name or the file is in a box already,
    /// [`Error::NoSpace`] past the limit of entries.
    ///
    /// [`Error::Busy`]: crate::Error::Busy
    /// [`Error::Unsupported`]: crate::Error::Unsupported
    /// [`Error::Exists`]: crate::Error::Exists
    /// [`Error::NoSpace`]: crate::Error::NoSpace
    pub fn add(&self, name: &str, fd: impl AsFd) -> Result<()> {
        let name = name::encode(name)?;
        Ok(sys::box_add(self.fd.as_fd(), name, fd.as_fd())?)
    }

    /// Undoes [`BoxFd::add`]: the file is exactly as it was before
    /// (`FDBOX_BOX_REMOVE`). [`Error::Busy`] unless the box is open, or if
    /// another entry depends on this one.
    ///
    /// [`Error::Busy`]: crate::Error::Busy
    pub fn remove(&self, name: &str) -> Result<()> {
        let name = name::encode(name)?;
        Ok(sys::box_remove(self.fd.as_fd(), name)?)
    }

    /// Serializes every entry and hands the box over to the next kernel
    /// (`FDBOX_BOX_SEAL`).
    ///
    /// Either every entry is sealed, or none is and the box stays open with
    /// its entries as they were. A sealed box belongs to the kernel: it
    /// survives the closing of every fd and the exit of every process.
    /// [`Error::Busy`] unless the box is open, or once a kexec or reboot has
    /// started (the hand-over is final), [`Error::NotFound`] if an
    /// entry depends on a file that isn't in the box,
    /// [`Error::DependencyCycle`] if dependencies form a cycle.
    ///
    /// [`Error::Busy`]: crate::Error::Busy
    /// [`Error::NotFound`]: crate::Error::NotFound
    /// [`Error::DependencyCycle`]: crate::Error::DependencyCycle
    pub fn seal(&self) -> Result<()> {
        self.seal_with(SealFlags::empty())
    }

    /// [`BoxFd::seal`] with `flags`: [`SealFlags::PREVIOUS`] writes each
    /// entry at most at its handler's previous payload version, so that a
    /// kernel one version behind can restore it (a rollback);
    /// [`BoxFd::info`] then reports the flag.
    ///
    /// Besides the errors of [`BoxFd::seal`], [`Error::Unsupported`] if an
    /// entry's handler can't write its previous version (it has none, or the
    /// file's state can't be expressed in it), [`Error::NewerVersion`] if a
    /// handler wrote a newer version all the same (a handler bug), and
    /// [`Error::InvalidArgument`] from a kernel that doesn't know a flag. On
    /// any error nothing is sealed.
    ///
    /// [`Error::Unsupported`]: crate::Error::Unsupported
    /// [`Error::NewerVersion`]: crate::Error::NewerVersion
    /// [`Error::InvalidArgument`]: crate::Error::InvalidArgument
    pub fn seal_with(&self, flags: SealFlags) -> Result<()> {
        Ok(sys::box_seal(self.fd.as_fd(), flags.bits())?)
    }

    /// Unseals a sealed box (`FDBOX_BOX_CANCEL`): it is no longer handed
    /// over and is open again, so that closing its last fd gives every file
    /// back. [`Error::Busy`] unless the box is sealed, or once a kexec or
    /// reboot has started.
    ///
    /// [`Error::Busy`]: crate::Error::Busy
    pub fn cancel(&self) -> Result<()> {
        Ok(sys::box_cancel(self.fd.as_fd())?)
    }

    /// Restores the incoming entry `name`, after the entries it depends on
    /// (`FDBOX_BOX_RETRIEVE`). The fd is close-on-exec.
    ///
    /// Each entry is retrieved once: a second retrieve fails with
    /// [`Error::Busy`], as does retrieving from an outgoing box.
    /// [`Error::NotFound`] for an unknown name; [`Error::Unavailable`] if
    /// the entry can't be restored ([`BoxFd::info`] gives the reason).
    ///
    /// [`Error::Busy`]: crate::Error::Busy
    /// [`Error::NotFound`]: crate::Error::NotFound
    /// [`Error::Unavailable`]: crate::Error::Unavailable
    pub fn retrieve(&self, name: &str) -> Result<OwnedFd> {
        let name = name::encode(name)?;
        Ok(sys::box_retrieve(self.fd.as_fd(), name)?)
    }

    /// Frees the preserved state and memory of the incoming entry `name`,
    /// or with `None` of every entry not retrieved (`FDBOX_DISCARD_ALL`),
    /// now rather than at the next kexec (`FDBOX_BOX_DISCARD`). An entry
    /// restored only as a dependency of a retrieved one is dropped too.
    ///
    /// [`Error::Busy`] on an outgoing box, or for an entry already
    /// retrieved or discarded; [`Error::NotFound`] for an unknown name.
    ///
    /// [`Error::Busy`]: crate::Error::Busy
    /// [`Error::NotFound`]: crate::Error::NotFound
    pub fn discard(&self, name: Option<&str>) -> Result<()> {
        let name = name.map(name::encode).transpose()?;
        Ok(sys::box_discard(self.fd.as_fd(), name)?)
    }

    /// The box and its entries, with their states and, for unavailable
    /// entries, the reason (`FDBOX_BOX_INFO`).
    pub fn info(&self) -> Result<BoxInfo> {
        let mut raw = Default::default();
        let entries = sys::grow(GUESS, |buf| {
            raw = sys::box_info(self.fd.as_fd(), buf)?;
            Ok(raw.n_entries)
        })?;
        Ok(BoxInfo::from_raw(&raw, &entries))
    }
}

impl AsFd for BoxFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<OwnedFd> for BoxFd {
    /// Takes a box fd obtained elsewhere (e.g. received over a socket). Any
    /// other fd fails every call with
    /// [`Error::UnknownCommand`](crate::Error::UnknownCommand).
    fn from(fd: OwnedFd) -> Self {
        BoxFd { fd }
    }
}

impl From<BoxFd> for OwnedFd {
    fn from(b: BoxFd) -> Self {
        b.fd
    }
}
