// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The root table of a major-2 hand-over (`src/root.rs`).

use fdbox_format::root::*;
use fdbox_format::Error;

#[test]
fn slots_round_trip_and_checksums_catch_damage() {
    let mut buf = [0u8; ROOT_HEADER_LEN + 3 * SLOT_LEN];
    init_root(&mut buf, 3).unwrap();
    write_slot(&mut buf, 1, Some((0x1234_5000, 777))).unwrap();
    write_slot(&mut buf, 2, Some((0x8000, 1))).unwrap();
    write_slot(&mut buf, 2, None).unwrap();
    let root = parse_root(&buf).unwrap();
    let slots: [(u32, Slot); 3] = [
        (0, Slot::Empty),
        (
            1,
            Slot::Blob {
                phys: 0x1234_5000,
                len: 777,
            },
        ),
        (2, Slot::Empty),
    ];
    assert!(root.slots().eq(slots));
    assert_eq!(root.slot_count(), 3);

    buf[ROOT_HEADER_LEN + SLOT_LEN + 3] ^= 1;
    let root = parse_root(&buf).unwrap();
    assert_eq!(
        root.slots().nth(1),
        Some((
            1,
            Slot::Corrupt {
                offset: ROOT_HEADER_LEN + SLOT_LEN
            }
        ))
    );
    buf[17] ^= 1;
    assert!(matches!(
        parse_root(&buf),
        Err(Error::HeaderChecksum { .. })
    ));
}

#[test]
fn refusals() {
    let mut buf = [0u8; ROOT_HEADER_LEN + SLOT_LEN];
    assert!(init_root(&mut buf, 2).is_err());
    init_root(&mut buf, 1).unwrap();
    assert!(write_slot(&mut buf, 1, Some((0x1000, 1))).is_err());
    assert!(write_slot(&mut buf, 0, Some((0, 1))).is_err());
    assert!(write_slot(&mut buf, 0, Some((0x1000, 0))).is_err());
    assert!(matches!(
        parse_root(&buf[..20]),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(parse_root(b"FDBOX\0KHxxxx"), Err(Error::BadMagic)));
    // More slots than the buffer holds.
    let mut big = [0u8; ROOT_HEADER_LEN + 2 * SLOT_LEN];
    init_root(&mut big, 2).unwrap();
    assert!(matches!(
        parse_root(&big[..ROOT_HEADER_LEN + SLOT_LEN]),
        Err(Error::Truncated { .. })
    ));
}
