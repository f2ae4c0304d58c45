// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The safe API a VMM links to drive FDBox: name file descriptors, carry
//! them across a kexec, and get them back by name in the next kernel.
//!
//! [`Device`] is `/dev/fdbox` (root only by default): it creates, opens and
//! lists boxes, and reports the kernel's capabilities. A box is a named set
//! of entries, each a file descriptor named within its box, handled through
//! its own [`BoxFd`].
//!
//! - **Before the kexec**, [`Device::create_box`], then [`BoxFd::add`] for
//!   each file, then [`BoxFd::seal`]. Closing the box fd before the seal
//!   discards the box and gives every file back untouched, so a VMM that
//!   dies half-way leaves nothing behind. A sealed box belongs to the kernel
//!   and outlives the process; [`BoxFd::cancel`] unseals it.
//! - **After the kexec**, [`Device::open_box`] with [`Direction::Incoming`],
//!   then [`BoxFd::retrieve`] once per entry. An entry the new kernel can't
//!   restore is reported [`EntryState::Unavailable`] with a [`Reason`]; the
//!   others still restore. [`BoxFd::discard`] frees what is not retrieved.
//! - **Before kexecing into another kernel**, `compat::TargetModules::scan`
//!   reads what its modules declare, and `compat::predict` says which
//!   entries it would restore (feature `compat`). For a rollback to a
//!   kernel one version behind, [`BoxFd::seal_with`] and
//!   [`SealFlags::PREVIOUS`] write each entry at most at its handler's
//!   previous payload version.
//!
//! Input fds are taken as [`AsFd`](std::os::fd::AsFd), so a `File`, an
//! `OwnedFd` or a `BorrowedFd` works; restored fds come back as
//! [`OwnedFd`](std::os::fd::OwnedFd), close-on-exec. Names are 1 to
//! [`NAME_MAX`] bytes of UTF-8 without NUL; [`validate_name`] checks them
//! before the kernel does. Errors are one [`Error`] enum, one variant per
//! documented errno; it converts into [`std::io::Error`].
//!
//! # Example
//!
//! A VMM keeps its guest's RAM in a memfd. Before the host kexecs:
//!
//! ```no_run
//! use std::os::fd::OwnedFd;
//!
//! use rustix::fs::{memfd_create, MemfdFlags};
//!
//! fn before_kexec(ram: &OwnedFd) -> fdbox::Result<()> {
//!     let dev = fdbox::Device::open()?;
//!     let vm = dev.create_box("vm0")?;
//!     vm.add("ram", ram)?;
//!     // ... pause the vCPUs, then hand the box to the kernel: either every
//!     // entry is sealed or none is, and the box stays open.
//!     vm.seal()?;
//!     // The sealed box outlives this process: the VMM can exit now.
//!     Ok(())
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ram = memfd_create("guest-ram", MemfdFlags::CLOEXEC)?;
//! rustix::fs::ftruncate(&ram, 1 << 30)?;
//! before_kexec(&ram)?;
//! # Ok(())
//! # }
//! ```
//!
//! After the kexec, a fresh VMM process takes its RAM back and frees what it
//! doesn't want:
//!
//! ```no_run
//! use std::os::fd::OwnedFd;
//!
//! use fdbox::{Direction, EntryState};
//!
//! fn after_kexec() -> fdbox::Result<OwnedFd> {
//!     let dev = fdbox::Device::open()?;
//!     let vm = dev.open_box("vm0", Direction::Incoming)?;
//!     for e in vm.info()?.entries {
//!         if e.state == EntryState::Unavailable {
//!             // The new kernel can't restore it; the others still restore.
//!             eprintln!("{}: unavailable: {}", e.name, e.reason.unwrap());
//!         }
//!     }
//!     let ram = match vm.retrieve("ram") {
//!         Ok(fd) => fd,
//!         Err(fdbox::Error::Unavailable) => panic!("guest RAM lost"),
//!         Err(e) => return Err(e),
//!     };
//!     // Free every entry not retrieved now, not at the next kexec.
//!     vm.discard(None)?;
//!     Ok(ram)
//! }
//! ```
//!
//! # ABI
//!
//! The structs are the bindgen output of `uapi/linux/fdbox.h`, re-exported
//! as [`uapi`]; the ioctl numbers, which bindgen can't compute, are in
//! [`ioctl`] (for seccomp filters). Each call sets the struct's `size` to
//! the size this crate knows and leaves reserved fields and output fields
//! zero, and flags too but for the ones a call documents
//! (`FDBOX_DISCARD_ALL` for `discard(None)`, the [`SealFlags`] given to
//! `seal_with`), so an older kernel accepts it as long as no newer field or
//! flag is used.
//!
//! # Features
//!
//! `compat` (off by default): the `compat` module, which reads a target
//! kernel's modules, compressed or not, and predicts what it would restore.
//! `fdbox check` enables it; a VMM that only drives the device leaves it
//! off and builds no decompressor.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod box_fd;
#[cfg(feature = "compat")]
pub mod compat;
mod device;
mod error;
pub mod ioctl;
mod name;
mod sys;
mod types;

pub use fdbox_uapi as uapi;

pub use crate::box_fd::BoxFd;
pub use crate::device::Device;
pub use crate::error::{
    Error,
    NameError,
    Result, //
};
pub use crate::name::{
    validate_name,
    NAME_MAX, //
};
pub use crate::types::{
    BoxInfo,
    BoxState,
    BoxSummary,
    Caps,
    Direction,
    EntryInfo,
    EntryState,
    HandlerInfo,
    Incoming,
    Reason,
    SealFlags,
    Settle,
    Settled, //
};
