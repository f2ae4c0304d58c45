// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Box and entry names: checked here, encoded into and decoded from the
//! header's fixed `char[FDBOX_NAME_LEN]` arrays.

use core::ffi::c_char;

use fdbox_uapi::FDBOX_NAME_LEN;

use crate::error::NameError;

/// The size of a name array in the ABI, terminating NUL included.
// CAST: FDBOX_NAME_LEN is 64.
pub(crate) const NAME_LEN: usize = FDBOX_NAME_LEN as usize;

/// The longest name, in bytes: `FDBOX_NAME_LEN - 1`.
pub const NAME_MAX: usize = NAME_LEN - 1;

/// Checks a box or entry name the way the kernel does: 1 to [`NAME_MAX`]
/// bytes of UTF-8 (a `&str` is UTF-8) without NUL.
///
/// The kernel remains the authority; this only spares a system call and
/// gives a precise message.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > NAME_MAX {
        return Err(NameError::TooLong { len: name.len() });
    }
    if let Some(at) = name.bytes().position(|b| b == 0) {
        return Err(NameError::Nul { at });
    }
    Ok(())
}

/// A checked name as the ABI carries it: NUL-terminated and zero-padded.
pub(crate) fn encode(name: &str) -> Result<[c_char; NAME_LEN], NameError> {
    validate_name(name)?;
    let mut out = [0; NAME_LEN];
    for (o, b) in out.iter_mut().zip(name.bytes()) {
        // CAST: a byte, reinterpreted as C's `char`.
        *o = b as c_char;
    }
    Ok(out)
}

/// A string from the kernel: up to the first NUL, or the whole array if it
/// has none; bytes that are not UTF-8 (the kernel never sends any) are
/// replaced with U+FFFD.
pub(crate) fn decode(raw: &[c_char]) -> String {
    // CAST: C's `char`, reinterpreted as a byte.
    let bytes: Vec<u8> = raw
        .iter()
        .map(|&c| c as u8)
        .take_while(|&b| b != 0)
        .collect();
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_of_1_to_63_bytes() {
        for name in ["a", "vm0", "guest-ram.0", "with space", "a=b,c", "ünï"] {
            assert_eq!(validate_name(name), Ok(()), "{name:?}");
        }
        let longest = "x".repeat(63);
        assert_eq!(validate_name(&longest), Ok(()));
        // 21 three-byte characters: 63 bytes.
        assert_eq!(validate_name(&"€".repeat(21)), Ok(()));
    }

    #[test]
    fn refuses_empty_long_and_nul() {
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(
            validate_name(&"x".repeat(64)),
            Err(NameError::TooLong { len: 64 })
        );
        assert_eq!(
            validate_name(&"€".repeat(22)),
            Err(NameError::TooLong { len: 66 })
        );
        assert_eq!(validate_name("a\0b"), Err(NameError::Nul { at: 1 }));
        assert_eq!(validate_name("\0"), Err(NameError::Nul { at: 0 }));
    }

    #[test]
    fn encodes_nul_terminated_and_zero_padded() {
        let raw = encode("vm0").unwrap();
        assert_eq!(
            &raw[..4],
            &[b'v' as c_char, b'm' as c_char, b'0' as c_char, 0]
        );
        assert!(raw[3..].iter().all(|&c| c == 0));
        let raw = encode(&"x".repeat(63)).unwrap();
        assert_eq!(raw[62], b'x' as c_char);
        assert_eq!(raw[63], 0);
        assert_eq!(encode(""), Err(NameError::Empty));
    }

    #[test]
    fn decodes_what_it_encodes() {
        for name in ["a", "vm0", "ünï", &"€".repeat(21), &"x".repeat(63)] {
            assert_eq!(decode(&encode(name).unwrap()), name);
        }
    }

    #[test]
    fn decodes_robustly() {
        // No NUL at all: the whole array.
        let raw = [b'y' as c_char; NAME_LEN];
        assert_eq!(decode(&raw), "y".repeat(64));
        // Bytes after the first NUL are ignored.
        let mut raw = [0 as c_char; NAME_LEN];
        raw[0] = b'a' as c_char;
        raw[2] = b'b' as c_char;
        assert_eq!(decode(&raw), "a");
        // Not UTF-8.
        let mut raw = [0 as c_char; NAME_LEN];
        raw[0] = 0xff_u8 as c_char;
        raw[1] = b'z' as c_char;
        assert_eq!(decode(&raw), "\u{fffd}z");
    }
}
