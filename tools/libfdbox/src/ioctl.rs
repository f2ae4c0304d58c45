// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The ioctl numbers, for seccomp filters, strace and tests.
//!
//! The header defines them with the function-like `_IO` macro, which bindgen
//! can't translate; they are computed here from [`FDBOX_IOCTL_TYPE`] and the
//! `FDBOX_CMD_*` numbers of `enum fdbox_cmd`. Every command is a plain
//! `_IO(0xBB, nr)`, that is `0xBB << 8 | nr`: the argument is a pointer to
//! the command's struct, whose `size` field versions it, so the number
//! carries no direction or size bits.

use fdbox_uapi::{
    fdbox_cmd,
    FDBOX_CMD_BOX_ADD,
    FDBOX_CMD_BOX_CANCEL,
    FDBOX_CMD_BOX_DISCARD,
    FDBOX_CMD_BOX_INFO,
    FDBOX_CMD_BOX_REMOVE,
    FDBOX_CMD_BOX_RETRIEVE,
    FDBOX_CMD_BOX_SEAL,
    FDBOX_CMD_CREATE_BOX,
    FDBOX_CMD_GET_CAPS,
    FDBOX_CMD_LIST_BOXES,
    FDBOX_CMD_OPEN_BOX,
    FDBOX_CMD_SETTLE_FD,
    FDBOX_IOCTL_TYPE, //
};

/// `_IO(FDBOX_IOCTL_TYPE, nr)`, through rustix's `_IO`; `nr` is one of
/// `enum fdbox_cmd`.
const fn io(nr: fdbox_cmd) -> u32 {
    assert!(FDBOX_IOCTL_TYPE <= 0xff && nr <= 0xff);
    // CAST: both checked to fit in a byte just above; an `_IO` number is 16
    // bits, whatever the width of rustix's `Opcode`.
    rustix::ioctl::opcode::none(FDBOX_IOCTL_TYPE as u8, nr as u8) as u32
}

/// `FDBOX_GET_CAPS`, on `/dev/fdbox`.
pub const GET_CAPS: u32 = io(FDBOX_CMD_GET_CAPS);
/// `FDBOX_CREATE_BOX`, on `/dev/fdbox`.
pub const CREATE_BOX: u32 = io(FDBOX_CMD_CREATE_BOX);
/// `FDBOX_OPEN_BOX`, on `/dev/fdbox`.
pub const OPEN_BOX: u32 = io(FDBOX_CMD_OPEN_BOX);
/// `FDBOX_LIST_BOXES`, on `/dev/fdbox`.
pub const LIST_BOXES: u32 = io(FDBOX_CMD_LIST_BOXES);
/// `FDBOX_SETTLE_FD`, on `/dev/fdbox`.
pub const SETTLE_FD: u32 = io(FDBOX_CMD_SETTLE_FD);
/// `FDBOX_BOX_ADD`, on a box fd.
pub const BOX_ADD: u32 = io(FDBOX_CMD_BOX_ADD);
/// `FDBOX_BOX_REMOVE`, on a box fd.
pub const BOX_REMOVE: u32 = io(FDBOX_CMD_BOX_REMOVE);
/// `FDBOX_BOX_SEAL`, on a box fd.
pub const BOX_SEAL: u32 = io(FDBOX_CMD_BOX_SEAL);
/// `FDBOX_BOX_CANCEL`, on a box fd.
pub const BOX_CANCEL: u32 = io(FDBOX_CMD_BOX_CANCEL);
/// `FDBOX_BOX_RETRIEVE`, on a box fd.
pub const BOX_RETRIEVE: u32 = io(FDBOX_CMD_BOX_RETRIEVE);
/// `FDBOX_BOX_DISCARD`, on a box fd.
pub const BOX_DISCARD: u32 = io(FDBOX_CMD_BOX_DISCARD);
/// `FDBOX_BOX_INFO`, on a box fd.
pub const BOX_INFO: u32 = io(FDBOX_CMD_BOX_INFO);

/// Every command with its number, in command order.
pub const ALL: [(&str, u32); 12] = [
    ("FDBOX_GET_CAPS", GET_CAPS),
    ("FDBOX_CREATE_BOX", CREATE_BOX),
    ("FDBOX_OPEN_BOX", OPEN_BOX),
    ("FDBOX_LIST_BOXES", LIST_BOXES),
    ("FDBOX_SETTLE_FD", SETTLE_FD),
    ("FDBOX_BOX_ADD", BOX_ADD),
    ("FDBOX_BOX_REMOVE", BOX_REMOVE),
    ("FDBOX_BOX_SEAL", BOX_SEAL),
    ("FDBOX_BOX_CANCEL", BOX_CANCEL),
    ("FDBOX_BOX_RETRIEVE", BOX_RETRIEVE),
    ("FDBOX_BOX_DISCARD", BOX_DISCARD),
    ("FDBOX_BOX_INFO", BOX_INFO),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_pinned() {
        // _IO(0xBB, nr) = 0xBB << 8 | nr, by hand.
        let want = [
            ("FDBOX_GET_CAPS", 0xBB00),
            ("FDBOX_CREATE_BOX", 0xBB01),
            ("FDBOX_OPEN_BOX", 0xBB02),
            ("FDBOX_LIST_BOXES", 0xBB03),
            ("FDBOX_SETTLE_FD", 0xBB04),
            ("FDBOX_BOX_ADD", 0xBB10),
            ("FDBOX_BOX_REMOVE", 0xBB11),
            ("FDBOX_BOX_SEAL", 0xBB12),
            ("FDBOX_BOX_CANCEL", 0xBB13),
            ("FDBOX_BOX_RETRIEVE", 0xBB14),
            ("FDBOX_BOX_DISCARD", 0xBB15),
            ("FDBOX_BOX_INFO", 0xBB16),
        ];
        assert_eq!(ALL, want);
    }

    #[test]
    fn numbers_are_distinct_and_carry_no_direction_or_size() {
        for (i, (name, nr)) in ALL.iter().enumerate() {
            assert_eq!(nr >> 8, 0xBB, "{name}");
            assert_eq!(nr >> 16, 0, "{name}: _IO has no direction or size bits");
            assert!(ALL[i + 1..].iter().all(|(_, other)| other != nr), "{name}");
        }
    }
}
