// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The ioctls, one function each: the only `unsafe` in the crate.
//!
//! Every command is `_IO(FDBOX_IOCTL_TYPE, nr)` taking a pointer to its
//! struct, whose first field is the struct's size; the kernel reads the
//! struct and writes its outputs back into it, which is rustix's
//! [`Updater`] pattern. Each function fills `size`, sets only the flags its
//! command documents, leaves the reserved fields zero, and points the list commands at a slice it
//! borrows mutably for the call, so that the kernel's accesses are valid by
//! construction.

use core::ffi::c_char;
use std::os::fd::{
    AsRawFd,
    BorrowedFd,
    FromRawFd,
    OwnedFd, //
};

use fdbox_uapi::{
    fdbox_box_add,
    fdbox_box_cancel,
    fdbox_box_discard,
    fdbox_box_info,
    fdbox_box_remove,
    fdbox_box_retrieve,
    fdbox_box_seal,
    fdbox_box_summary,
    fdbox_create_box,
    fdbox_entry_info,
    fdbox_get_caps,
    fdbox_handler_info,
    fdbox_list_boxes,
    fdbox_open_box,
    fdbox_settle_fd,
    FDBOX_DISCARD_ALL, //
    FDBOX_OPEN_OWNER,
};
use rustix::io::Errno;
use rustix::ioctl::{
    Opcode,
    Updater, //
};

use crate::ioctl;
use crate::name::NAME_LEN;

/// The size of `T`, for the `size` field.
const fn size_of<T>() -> u32 {
    // CAST: every FDBox struct is a few dozen bytes.
    core::mem::size_of::<T>() as u32
}

/// A user pointer to `slice`, for the list commands.
fn user_ptr<T>(slice: &mut [T]) -> u64 {
    // CAST: a pointer fits in the ABI's 64 bits.
    slice.as_mut_ptr().expose_provenance() as u64
}

/// The length of `slice` as the ABI counts it; never more than it holds.
fn user_len<T>(slice: &[T]) -> u32 {
    u32::try_from(slice.len()).unwrap_or(u32::MAX)
}

/// Issues the FDBox ioctl `OPCODE` on `fd` with `arg`.
///
/// # Safety
///
/// - `OPCODE` must be the command whose argument is a `T`.
/// - Every user pointer in `*arg` must be valid for the kernel's accesses
///   through it, as the header describes them, for the duration of the call.
unsafe fn call<const OPCODE: Opcode, T>(fd: BorrowedFd<'_>, arg: &mut T) -> Result<(), Errno> {
    // SAFETY: the caller guarantees that `OPCODE` takes a pointer to a `T`.
    let updater = unsafe { Updater::<OPCODE, T>::new(arg) };
    // SAFETY: `updater` holds an exclusive borrow of a live `T` for the
    // call, and the caller guarantees the user pointers inside it.
    unsafe { rustix::ioctl::ioctl(fd, updater) }
}

/// The `Opcode` of an ioctl number.
const fn op(nr: u32) -> Opcode {
    // CAST: an `_IO` number is 16 bits; `Opcode` is at least 32.
    nr as Opcode
}

/// `FDBOX_GET_CAPS`. Returns the struct, with `n_handlers` the number of
/// registered handlers; at most `handlers.len()` were written.
pub(crate) fn get_caps(
    dev: BorrowedFd<'_>,
    handlers: &mut [fdbox_handler_info],
) -> Result<fdbox_get_caps, Errno> {
    let mut arg = fdbox_get_caps {
        size: size_of::<fdbox_get_caps>(),
        n_handlers: user_len(handlers),
        handlers: user_ptr(handlers),
        ..Default::default()
    };
    // SAFETY: FDBOX_GET_CAPS takes a `struct fdbox_get_caps`. The kernel
    // writes at most `n_handlers` `struct fdbox_handler_info` to `handlers`,
    // which points to that many, borrowed mutably for the call.
    unsafe { call::<{ op(ioctl::GET_CAPS) }, _>(dev, &mut arg) }?;
    Ok(arg)
}

/// `FDBOX_CREATE_BOX`: the new box fd.
pub(crate) fn create_box(dev: BorrowedFd<'_>, name: [c_char; NAME_LEN]) -> Result<OwnedFd, Errno> {
    let mut arg = fdbox_create_box {
        size: size_of::<fdbox_create_box>(),
        name,
        box_fd: -1,
        ..Default::default()
    };
    // SAFETY: FDBOX_CREATE_BOX takes a `struct fdbox_create_box`, which has
    // no user pointer.
    unsafe { call::<{ op(ioctl::CREATE_BOX) }, _>(dev, &mut arg) }?;
    installed(arg.box_fd)
}

/// `FDBOX_OPEN_BOX` with `flags` (`FDBOX_OPEN_OUTGOING` or
/// `FDBOX_OPEN_INCOMING`): a new box fd. `owner` sets `FDBOX_OPEN_OWNER`.
pub(crate) fn open_box(
    dev: BorrowedFd<'_>,
    name: [c_char; NAME_LEN],
    flags: u32,
    owner: Option<u32>,
) -> Result<OwnedFd, Errno> {
    let mut arg = fdbox_open_box {
        size: size_of::<fdbox_open_box>(),
        flags: flags | owner.map_or(0, |_| FDBOX_OPEN_OWNER),
        name,
        box_fd: -1,
        owner_uid: owner.unwrap_or(0),
    };
    // SAFETY: FDBOX_OPEN_BOX takes a `struct fdbox_open_box`, which has no
    // user pointer.
    unsafe { call::<{ op(ioctl::OPEN_BOX) }, _>(dev, &mut arg) }?;
    installed(arg.box_fd)
}

/// `FDBOX_LIST_BOXES`: the number of boxes; at most `boxes.len()` were
/// written.
pub(crate) fn list_boxes(
    dev: BorrowedFd<'_>,
    boxes: &mut [fdbox_box_summary],
) -> Result<u32, Errno> {
    let mut arg = fdbox_list_boxes {
        size: size_of::<fdbox_list_boxes>(),
        n_boxes: user_len(boxes),
        boxes: user_ptr(boxes),
        ..Default::default()
    };
    // SAFETY: FDBOX_LIST_BOXES takes a `struct fdbox_list_boxes`. The kernel
    // writes at most `n_boxes` `struct fdbox_box_summary` to `boxes`, which
    // points to that many, borrowed mutably for the call.
    unsafe { call::<{ op(ioctl::LIST_BOXES) }, _>(dev, &mut arg) }?;
    Ok(arg.n_boxes)
}

/// `FDBOX_SETTLE_FD`: `(unsettled, migrated)`.
pub(crate) fn settle_fd(
    dev: BorrowedFd<'_>,
    fd: BorrowedFd<'_>,
    flags: u32,
) -> Result<(u64, u64), Errno> {
    let mut arg = fdbox_settle_fd {
        size: size_of::<fdbox_settle_fd>(),
        flags,
        fd: fd.as_raw_fd(),
        ..Default::default()
    };
    // SAFETY: FDBOX_SETTLE_FD takes a `struct fdbox_settle_fd`, which holds
    // no pointers.
    unsafe { call::<{ op(ioctl::SETTLE_FD) }, _>(dev, &mut arg) }?;
    Ok((arg.unsettled, arg.migrated))
}

/// `FDBOX_BOX_ADD`.
pub(crate) fn box_add(
    boxfd: BorrowedFd<'_>,
    name: [c_char; NAME_LEN],
    fd: BorrowedFd<'_>,
) -> Result<(), Errno> {
    let mut arg = fdbox_box_add {
        size: size_of::<fdbox_box_add>(),
        fd: fd.as_raw_fd(),
        name,
        ..Default::default()
    };
    // SAFETY: FDBOX_BOX_ADD takes a `struct fdbox_box_add`, which has no
    // user pointer; `fd` is borrowed, so it stays open for the call.
    unsafe { call::<{ op(ioctl::BOX_ADD) }, _>(boxfd, &mut arg) }
}

/// `FDBOX_BOX_REMOVE`.
pub(crate) fn box_remove(boxfd: BorrowedFd<'_>, name: [c_char; NAME_LEN]) -> Result<(), Errno> {
    let mut arg = fdbox_box_remove {
        size: size_of::<fdbox_box_remove>(),
        name,
        ..Default::default()
    };
    // SAFETY: FDBOX_BOX_REMOVE takes a `struct fdbox_box_remove`, which has
    // no user pointer.
    unsafe { call::<{ op(ioctl::BOX_REMOVE) }, _>(boxfd, &mut arg) }
}

/// `FDBOX_BOX_SEAL` with `flags` (`FDBOX_SEAL_*`).
pub(crate) fn box_seal(boxfd: BorrowedFd<'_>, flags: u32) -> Result<(), Errno> {
    let mut arg = fdbox_box_seal {
        size: size_of::<fdbox_box_seal>(),
        flags,
    };
    // SAFETY: FDBOX_BOX_SEAL takes a `struct fdbox_box_seal`, which has no
    // user pointer.
    unsafe { call::<{ op(ioctl::BOX_SEAL) }, _>(boxfd, &mut arg) }
}

/// `FDBOX_BOX_CANCEL`.
pub(crate) fn box_cancel(boxfd: BorrowedFd<'_>) -> Result<(), Errno> {
    let mut arg = fdbox_box_cancel {
        size: size_of::<fdbox_box_cancel>(),
        flags: 0,
    };
    // SAFETY: FDBOX_BOX_CANCEL takes a `struct fdbox_box_cancel`, which has
    // no user pointer.
    unsafe { call::<{ op(ioctl::BOX_CANCEL) }, _>(boxfd, &mut arg) }
}

/// `FDBOX_BOX_RETRIEVE`: the restored file.
pub(crate) fn box_retrieve(
    boxfd: BorrowedFd<'_>,
    name: [c_char; NAME_LEN],
) -> Result<OwnedFd, Errno> {
    let mut arg = fdbox_box_retrieve {
        size: size_of::<fdbox_box_retrieve>(),
        name,
        fd: -1,
        ..Default::default()
    };
    // SAFETY: FDBOX_BOX_RETRIEVE takes a `struct fdbox_box_retrieve`, which
    // has no user pointer.
    unsafe { call::<{ op(ioctl::BOX_RETRIEVE) }, _>(boxfd, &mut arg) }?;
    installed(arg.fd)
}

/// The argument of `FDBOX_BOX_DISCARD`: the entry `name` without flags, or
/// for `None`, `FDBOX_DISCARD_ALL` with an all-zero name (the kernel refuses
/// an all-zero name without the flag, and a name with it).
fn discard_arg(name: Option<[c_char; NAME_LEN]>) -> fdbox_box_discard {
    let (flags, name) = match name {
        Some(name) => (0, name),
        None => (FDBOX_DISCARD_ALL, [0; NAME_LEN]),
    };
    fdbox_box_discard {
        size: size_of::<fdbox_box_discard>(),
        flags,
        name,
    }
}

/// `FDBOX_BOX_DISCARD` of the entry `name`, or with `None`, of every entry
/// not retrieved.
pub(crate) fn box_discard(
    boxfd: BorrowedFd<'_>,
    name: Option<[c_char; NAME_LEN]>,
) -> Result<(), Errno> {
    let mut arg = discard_arg(name);
    // SAFETY: FDBOX_BOX_DISCARD takes a `struct fdbox_box_discard`, which
    // has no user pointer.
    unsafe { call::<{ op(ioctl::BOX_DISCARD) }, _>(boxfd, &mut arg) }
}

/// `FDBOX_BOX_INFO`. Returns the struct, with `n_entries` the number of
/// entries; at most `entries.len()` were written.
pub(crate) fn box_info(
    boxfd: BorrowedFd<'_>,
    entries: &mut [fdbox_entry_info],
) -> Result<fdbox_box_info, Errno> {
    let mut arg = fdbox_box_info {
        size: size_of::<fdbox_box_info>(),
        n_entries: user_len(entries),
        entries: user_ptr(entries),
        ..Default::default()
    };
    // SAFETY: FDBOX_BOX_INFO takes a `struct fdbox_box_info`. The kernel
    // writes at most `n_entries` `struct fdbox_entry_info` to `entries`,
    // which points to that many, borrowed mutably for the call.
    unsafe { call::<{ op(ioctl::BOX_INFO) }, _>(boxfd, &mut arg) }?;
    Ok(arg)
}

/// Takes ownership of an fd the kernel installed for a successful call.
fn installed(fd: i32) -> Result<OwnedFd, Errno> {
    if fd < 0 {
        // A kernel that reports success must have installed an fd.
        return Err(Errno::BADF);
    }
    // SAFETY: the call succeeded, so the kernel installed `fd` in this
    // process for the caller, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Calls `call` with a buffer until it holds the whole list: the kernel
/// returns the list's length, which may be more than the buffer held (then
/// the call is repeated with a buffer that large) or change between calls.
pub(crate) fn grow<T: Default + Clone>(
    guess: usize,
    mut call: impl FnMut(&mut [T]) -> Result<u32, Errno>,
) -> Result<Vec<T>, Errno> {
    let mut buf = vec![T::default(); guess];
    loop {
        // CAST: u32 fits in usize on every target Linux runs on.
        let n = call(&mut buf)? as usize;
        if n <= buf.len() {
            buf.truncate(n);
            return Ok(buf);
        }
        buf.resize(n, T::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grow_returns_what_the_first_call_fits() {
        let mut calls = 0;
        let v = grow(4, |buf: &mut [u32]| {
            calls += 1;
            for (i, x) in buf.iter_mut().enumerate().take(3) {
                *x = i as u32;
            }
            Ok(3)
        })
        .unwrap();
        assert_eq!(v, [0, 1, 2]);
        assert_eq!(calls, 1);
    }

    #[test]
    fn grow_retries_until_the_list_fits() {
        // The list grows between the calls: 5 entries, then 9, then 9.
        let mut sizes = [5, 9, 9].into_iter();
        let mut lens = Vec::new();
        let v = grow(0, |buf: &mut [u32]| {
            lens.push(buf.len());
            let n = sizes.next().unwrap();
            for x in buf.iter_mut().take(n as usize) {
                *x = 7;
            }
            Ok(n)
        })
        .unwrap();
        assert_eq!(lens, [0, 5, 9]);
        assert_eq!(v, [7; 9]);
    }

    #[test]
    fn grow_passes_errors_on() {
        let e = grow(1, |_: &mut [u32]| Err(Errno::NOTTY)).unwrap_err();
        assert_eq!(e, Errno::NOTTY);
    }

    #[test]
    fn discard_all_is_the_flag_with_no_name() {
        let all = discard_arg(None);
        assert_eq!(all.size, 72);
        assert_eq!(all.flags, FDBOX_DISCARD_ALL);
        assert!(all.name.iter().all(|&c| c == 0));
        let mut ram = [0; NAME_LEN];
        ram[..3].copy_from_slice(&[b'r' as c_char, b'a' as c_char, b'm' as c_char]);
        let one = discard_arg(Some(ram));
        assert_eq!(one.size, 72);
        assert_eq!(one.flags, 0);
        assert_eq!(one.name, ram);
    }

    #[test]
    fn reserved_fields_are_zero() {
        // Every argument is built from `Default`, which zeroes them.
        assert_eq!(fdbox_box_info::default().owner_gid, 0);
        assert_eq!(fdbox_box_info::default().seal_flags, 0);
        assert_eq!(fdbox_create_box::default().__reserved, 0);
        assert_eq!(fdbox_box_summary::default().__reserved, [0; 3]);
        assert_eq!(fdbox_entry_info::default().__reserved, [0; 2]);
    }

    #[test]
    fn user_len_never_exceeds_the_slice() {
        assert_eq!(user_len::<u8>(&[]), 0);
        assert_eq!(user_len(&[0u8; 3]), 3);
    }
}
