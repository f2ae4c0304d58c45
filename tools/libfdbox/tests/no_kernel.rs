// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Every call's error path without FDBox: a missing device, a device that
//! isn't FDBox (`/dev/null`, whose ioctls all fail with `ENOTTY`), and names
//! refused before the kernel is asked.

use std::os::fd::OwnedFd;

use fdbox::{
    BoxFd,
    Device,
    Direction,
    Error,
    NameError, //
};
use rustix::fs::{
    memfd_create,
    MemfdFlags, //
};

fn dev_null() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

#[test]
fn a_missing_device_is_not_found() {
    let e = Device::open_path("/nonexistent/fdbox").unwrap_err();
    assert_eq!(e, Error::NotFound);
    assert_eq!(Device::PATH, "/dev/fdbox");
}

#[test]
fn another_device_knows_no_command() {
    let dev = Device::open_path("/dev/null").unwrap();
    assert_eq!(dev.caps().unwrap_err(), Error::UnknownCommand);
    assert_eq!(dev.list_boxes().unwrap_err(), Error::UnknownCommand);
    assert_eq!(dev.create_box("vm0").unwrap_err(), Error::UnknownCommand);
    assert_eq!(
        dev.open_box("vm0", Direction::Incoming).unwrap_err(),
        Error::UnknownCommand
    );
    assert_eq!(
        dev.open_box("vm0", Direction::Outgoing).unwrap_err(),
        Error::UnknownCommand
    );
}

#[test]
fn another_fd_is_no_box() {
    let b = BoxFd::from(dev_null());
    let ram = memfd_create("ram", MemfdFlags::CLOEXEC).unwrap();
    assert_eq!(b.add("ram", &ram).unwrap_err(), Error::UnknownCommand);
    assert_eq!(b.remove("ram").unwrap_err(), Error::UnknownCommand);
    assert_eq!(b.seal().unwrap_err(), Error::UnknownCommand);
    assert_eq!(b.cancel().unwrap_err(), Error::UnknownCommand);
    assert_eq!(b.retrieve("ram").unwrap_err(), Error::UnknownCommand);
    assert_eq!(b.discard(Some("ram")).unwrap_err(), Error::UnknownCommand);
    assert_eq!(b.discard(None).unwrap_err(), Error::UnknownCommand);
    assert_eq!(b.info().unwrap_err(), Error::UnknownCommand);
    // The fd converts back.
    let _: OwnedFd = b.into();
}

#[test]
fn bad_names_are_refused_before_the_kernel() {
    // Nothing reaches /dev/null's ioctl: the error is the name's.
    let dev = Device::from(dev_null());
    let long = "x".repeat(64);
    assert_eq!(
        dev.create_box("").unwrap_err(),
        Error::InvalidName(NameError::Empty)
    );
    assert_eq!(
        dev.create_box(&long).unwrap_err(),
        Error::InvalidName(NameError::TooLong { len: 64 })
    );
    assert_eq!(
        dev.open_box("a\0", Direction::Incoming).unwrap_err(),
        Error::InvalidName(NameError::Nul { at: 1 })
    );
    assert_eq!(
        dev.open_box("vm0", Direction::Unknown(7)).unwrap_err(),
        Error::InvalidArgument
    );
    let b = BoxFd::from(dev_null());
    let ram = memfd_create("ram", MemfdFlags::CLOEXEC).unwrap();
    assert!(matches!(b.add("", &ram), Err(Error::InvalidName(_))));
    assert!(matches!(b.remove(&long), Err(Error::InvalidName(_))));
    assert!(matches!(b.retrieve(""), Err(Error::InvalidName(_))));
    assert!(matches!(b.discard(Some("")), Err(Error::InvalidName(_))));
    assert_eq!(fdbox::validate_name(&"y".repeat(fdbox::NAME_MAX)), Ok(()));
}

#[test]
fn errors_convert_to_io_errors() {
    let dev = Device::open_path("/dev/null").unwrap();
    let e: std::io::Error = dev.caps().unwrap_err().into();
    assert_eq!(e.raw_os_error(), Some(25)); // ENOTTY
}
