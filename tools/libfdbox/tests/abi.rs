// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The ABI pinned three ways: hard-coded numbers, the bindgen output, and a
//! C program compiled against `uapi/linux/fdbox.h`.

use std::collections::BTreeMap;
use std::mem::{
    align_of,
    offset_of,
    size_of, //
};
use std::path::Path;
use std::process::Command;

use fdbox::uapi;

/// One pinned number: its name (what the C program prints), the value Rust
/// sees, and the value written down here by hand.
type Pin = (String, u64, u64);

/// Pins `sizeof`, `_Alignof` and `offsetof` of every field:
/// `name [size, align] { field @ off }`.
macro_rules! layout {
    ($($s:ident [$size:literal, $align:literal] { $($f:ident @ $off:literal),* $(,)? })*) => {{
        let mut pins: Vec<Pin> = Vec::new();
        $(
            pins.push((
                concat!("sizeof ", stringify!($s)).into(),
                size_of::<uapi::$s>() as u64,
                $size,
            ));
            pins.push((
                concat!("alignof ", stringify!($s)).into(),
                align_of::<uapi::$s>() as u64,
                $align,
            ));
            $(pins.push((
                concat!("offsetof ", stringify!($s), " ", stringify!($f)).into(),
                offset_of!(uapi::$s, $f) as u64,
                $off,
            ));)*
        )*
        pins
    }};
}

/// Pins constants: `NAME = value`.
macro_rules! constants {
    ($($c:ident = $v:literal),* $(,)?) => {{
        let pins: Vec<Pin> = vec![$(
            (concat!("const ", stringify!($c)).into(), uapi::$c as u64, $v),
        )*];
        pins
    }};
}

/// Every struct of the header, every field.
fn layouts() -> Vec<Pin> {
    layout! {
        fdbox_handler_info [80, 8] {
            compatible @ 0, version @ 64, min_version @ 68, __reserved @ 72,
        }
        fdbox_get_caps [40, 8] {
            size @ 0, flags @ 4, format_major @ 8, format_minor @ 10,
            format_read_min @ 12, format_read_max @ 14, incoming @ 16,
            n_handlers @ 20, handlers @ 24, max_boxes @ 32, max_entries @ 36,
        }
        fdbox_create_box [80, 4] {
            size @ 0, flags @ 4, name @ 8, box_fd @ 72, __reserved @ 76,
        }
        fdbox_open_box [80, 4] {
            size @ 0, flags @ 4, name @ 8, box_fd @ 72, owner_uid @ 76,
        }
        fdbox_box_summary [96, 4] {
            name @ 0, direction @ 64, state @ 68, owner_uid @ 72, n_entries @ 76,
            owner_gid @ 80, __reserved @ 84,
        }
        fdbox_list_boxes [24, 8] {
            size @ 0, flags @ 4, n_boxes @ 8, __reserved @ 12, boxes @ 16,
        }
        fdbox_settle_fd [32, 8] {
            size @ 0, flags @ 4, fd @ 8, __reserved @ 12, unsettled @ 16, migrated @ 24,
        }
        fdbox_box_add [80, 4] {
            size @ 0, flags @ 4, fd @ 8, __reserved @ 12, name @ 16,
        }
        fdbox_box_remove [72, 4] { size @ 0, flags @ 4, name @ 8 }
        fdbox_box_seal [8, 4] { size @ 0, flags @ 4 }
        fdbox_box_cancel [8, 4] { size @ 0, flags @ 4 }
        fdbox_box_retrieve [80, 4] {
            size @ 0, flags @ 4, name @ 8, fd @ 72, __reserved @ 76,
        }
        fdbox_box_discard [72, 4] { size @ 0, flags @ 4, name @ 8 }
        fdbox_entry_info [160, 8] {
            name @ 0, compatible @ 64, version @ 128, state @ 132, reason @ 136,
            n_deps @ 140, __reserved @ 144,
        }
        fdbox_box_info [104, 8] {
            size @ 0, flags @ 4, name @ 8, direction @ 72, state @ 76,
            owner_uid @ 80, n_entries @ 84, entries @ 88, owner_gid @ 96,
            seal_flags @ 100,
        }
    }
}

/// The named enums' sizes: `enum fdbox_cmd` (once anonymous) and the
/// enums the structs' fields hold values of.
fn enums() -> Vec<Pin> {
    vec![
        (
            "enumsize fdbox_cmd".into(),
            size_of::<uapi::fdbox_cmd>() as u64,
            4,
        ),
        (
            "enumsize fdbox_direction".into(),
            size_of::<uapi::fdbox_direction>() as u64,
            4,
        ),
    ]
}

/// Every constant of the header.
fn constants() -> Vec<Pin> {
    constants! {
        FDBOX_IOCTL_TYPE = 0xBB,
        FDBOX_NAME_LEN = 64,
        FDBOX_COMPATIBLE_LEN = 64,
        FDBOX_MAX_BOXES = 1024,
        FDBOX_MAX_ENTRIES = 16384,
        FDBOX_OPEN_OUTGOING = 1,
        FDBOX_OPEN_INCOMING = 2,
        FDBOX_OPEN_OWNER = 4,
        FDBOX_DISCARD_ALL = 1,
        FDBOX_SEAL_PREVIOUS = 1,
        FDBOX_SETTLE_NOW = 1,
        FDBOX_SETTLE_FUTURE = 2,
        FDBOX_CMD_BASE = 0x00,
        FDBOX_CMD_GET_CAPS = 0x00,
        FDBOX_CMD_CREATE_BOX = 0x01,
        FDBOX_CMD_OPEN_BOX = 0x02,
        FDBOX_CMD_LIST_BOXES = 0x03,
        FDBOX_CMD_SETTLE_FD = 0x04,
        FDBOX_CMD_BOX_ADD = 0x10,
        FDBOX_CMD_BOX_REMOVE = 0x11,
        FDBOX_CMD_BOX_SEAL = 0x12,
        FDBOX_CMD_BOX_CANCEL = 0x13,
        FDBOX_CMD_BOX_RETRIEVE = 0x14,
        FDBOX_CMD_BOX_DISCARD = 0x15,
        FDBOX_CMD_BOX_INFO = 0x16,
        FDBOX_DIR_OUTGOING = 0,
        FDBOX_DIR_INCOMING = 1,
        FDBOX_BOX_OPEN = 0,
        FDBOX_BOX_SEALED = 1,
        FDBOX_BOX_INCOMING = 2,
        FDBOX_ENTRY_PREPARED = 0,
        FDBOX_ENTRY_SEALED = 1,
        FDBOX_ENTRY_RESTORABLE = 2,
        FDBOX_ENTRY_UNAVAILABLE = 3,
        FDBOX_ENTRY_RETRIEVED = 4,
        FDBOX_ENTRY_DISCARDED = 5,
        FDBOX_REASON_NONE = 0,
        FDBOX_REASON_NO_HANDLER = 1,
        FDBOX_REASON_VERSION = 2,
        FDBOX_REASON_CORRUPT = 3,
        FDBOX_REASON_DEPENDENCY = 4,
        FDBOX_REASON_RESTORE_FAILED = 5,
        FDBOX_INCOMING_NONE = 0,
        FDBOX_INCOMING_OK = 1,
        FDBOX_INCOMING_UNUSABLE = 2,
    }
}

/// Every ioctl number, `_IO(0xBB, nr)` computed by hand.
fn ioctls() -> Vec<Pin> {
    let by_hand = [
        0xBB00, 0xBB01, 0xBB02, 0xBB03, 0xBB04, 0xBB10, 0xBB11, 0xBB12, 0xBB13, 0xBB14, 0xBB15,
        0xBB16,
    ];
    fdbox::ioctl::ALL
        .iter()
        .zip(by_hand)
        .map(|((name, nr), want)| (format!("ioctl {name}"), u64::from(*nr), want))
        .collect()
}

fn all() -> Vec<Pin> {
    let mut pins = layouts();
    pins.extend(enums());
    pins.extend(constants());
    pins.extend(ioctls());
    pins
}

#[test]
fn bindings_match_the_pinned_numbers() {
    for (name, rust, want) in all() {
        assert_eq!(rust, want, "{name}");
    }
    assert_eq!(fdbox::ioctl::ALL.len(), 12);
}

#[test]
fn every_size_field_is_first_and_u32() {
    // The header's convention: every ioctl struct starts with `__u32 size`.
    fn size_is_u32(_: u32) {}
    macro_rules! first {
        ($($s:ident),*) => {$(
            assert_eq!(offset_of!(uapi::$s, size), 0, stringify!($s));
            size_is_u32(uapi::$s::default().size);
        )*};
    }
    first!(
        fdbox_get_caps,
        fdbox_create_box,
        fdbox_open_box,
        fdbox_list_boxes,
        fdbox_settle_fd,
        fdbox_box_add,
        fdbox_box_remove,
        fdbox_box_seal,
        fdbox_box_cancel,
        fdbox_box_retrieve,
        fdbox_box_discard,
        fdbox_box_info
    );
}

/// What a C compiler makes of the header: every pinned name with its value.
fn from_c() -> BTreeMap<String, u64> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fdbox-abi");
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include <linux/fdbox.h>\n\n\
         int main(void)\n{\n",
    );
    for (name, _, _) in all() {
        let words: Vec<&str> = name.split(' ').collect();
        let expr = match words[..] {
            ["sizeof", s] => format!("sizeof(struct {s})"),
            ["alignof", s] => format!("_Alignof(struct {s})"),
            ["enumsize", e] => format!("sizeof(enum {e})"),
            ["offsetof", s, f] => format!("offsetof(struct {s}, {f})"),
            ["const", c] | ["ioctl", c] => c.to_string(),
            _ => panic!("{name}"),
        };
        c.push_str(&format!(
            "\tprintf(\"{name}=%llu\\n\", (unsigned long long)({expr}));\n"
        ));
    }
    c.push_str("\treturn 0;\n}\n");
    let src = dir.join("abi.c");
    let exe = dir.join("abi");
    std::fs::write(&src, c).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Werror", "-I"])
        .arg(root.join("uapi"))
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc} (make deps installs gcc): {e}"));
    assert!(
        out.status.success(),
        "{cc} failed on the header:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn c_compiler_agrees_with_every_pinned_number() {
    let c = from_c();
    let pins = all();
    assert_eq!(c.len(), pins.len(), "duplicate pin names");
    for (name, rust, want) in pins {
        assert_eq!(c[&name], want, "{name}: C");
        assert_eq!(rust, want, "{name}: Rust");
    }
}
