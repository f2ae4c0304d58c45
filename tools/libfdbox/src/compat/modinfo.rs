// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The `.modinfo` strings and the values of FDBox's keys.

use std::path::Path;

use super::{
    FormatRange,
    FormatVersion, //
};

/// A handler module's key: `<compatible>:<min_version>-<version>`.
pub(crate) const HANDLER_KEY: &str = "fdbox_handler";

/// `fdbox_core`'s key for the format majors it reads: `<min>-<max>`.
pub(crate) const FORMAT_READ_KEY: &str = "fdbox_format_read";

/// `fdbox_core`'s key for the format it writes: `<major>.<minor>`.
pub(crate) const FORMAT_WRITE_KEY: &str = "fdbox_format_write";

/// The `key=value` strings of a `.modinfo` section: NUL-separated, with
/// NUL padding between some of them. Strings that aren't UTF-8 or have no
/// `=` are no key of ours and are skipped.
pub(crate) fn pairs(modinfo: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    modinfo
        .split(|&b| b == 0)
        .filter_map(|s| std::str::from_utf8(s).ok())
        .filter_map(|s| s.split_once('='))
}

/// The module name of a file that declares none: its file name up to
/// `.ko`, with `-` as `_`, as kbuild names modules.
pub(crate) fn module_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy())
        .unwrap_or_default();
    let stem = file.split(".ko").next().unwrap_or_default();
    stem.replace('-', "_")
}

/// `<min>-<max>` with `min <= max`.
fn range<T: std::str::FromStr + PartialOrd + Copy>(value: &str) -> Result<(T, T), String> {
    let (min, max) = value
        .split_once('-')
        .ok_or_else(|| "expected MIN-MAX".to_string())?;
    let parse = |s: &str| {
        s.parse::<T>()
            .map_err(|_| format!("{s:?} is not a version number"))
    };
    let (min, max) = (parse(min)?, parse(max)?);
    if min > max {
        return Err("MIN is above MAX".into());
    }
    Ok((min, max))
}

/// The longest compatible string, in bytes (`FDBOX_COMPATIBLE_LEN` less the
/// NUL).
const COMPATIBLE_MAX: usize = 63;

/// What a compatible string can't hold: the kernel refuses to declare one
/// with them (`fdbox_handler_modinfo!`), as they would make the value
/// ambiguous.
const FORBIDDEN: [char; 4] = ['\0', ':', '=', ' '];

/// The value of `fdbox_handler`: the compatible string and the versions
/// its restore reads, oldest and newest.
pub(crate) fn handler(value: &str) -> Result<(&str, u32, u32), String> {
    let (compatible, versions) = value
        .rsplit_once(':')
        .ok_or_else(|| "expected COMPATIBLE:MIN-VERSION".to_string())?;
    if compatible.is_empty() {
        return Err("the compatible string is empty".into());
    }
    if let Some(c) = compatible.chars().find(|c| FORBIDDEN.contains(c)) {
        return Err(format!(
            "the compatible string holds {c:?}, which no handler's can (NUL, ':', '=' or ' ')"
        ));
    }
    if compatible.len() > COMPATIBLE_MAX {
        return Err(format!(
            "the compatible string is {} bytes long, more than {COMPATIBLE_MAX}",
            compatible.len()
        ));
    }
    let (min, max) = range(versions)?;
    Ok((compatible, min, max))
}

/// The value of `fdbox_format_read`.
pub(crate) fn format_read(value: &str) -> Result<FormatRange, String> {
    let (min_major, max_major) = range(value)?;
    Ok(FormatRange {
        min_major,
        max_major,
    })
}

/// The value of `fdbox_format_write`.
pub(crate) fn format_write(value: &str) -> Result<FormatVersion, String> {
    let (major, minor) = value
        .split_once('.')
        .ok_or_else(|| "expected MAJOR.MINOR".to_string())?;
    let parse = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("{s:?} is not a version number"))
    };
    Ok(FormatVersion {
        major: parse(major)?,
        minor: parse(minor)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_section_into_pairs() {
        let got: Vec<_> =
            pairs(b"license=GPL\0\0\0name=fdbox_memfd\0fdbox_handler=memfd:1-2\0junk\0\xff=x\0")
                .collect();
        assert_eq!(
            got,
            [
                ("license", "GPL"),
                ("name", "fdbox_memfd"),
                ("fdbox_handler", "memfd:1-2"),
            ]
        );
    }

    #[test]
    fn parses_the_values() {
        assert_eq!(handler("memfd:1-2"), Ok(("memfd", 1, 2)));
        // The kernel forbids these in a compatible string.
        for bad in ["a:b:3-3", "a=b:3-3", "a b:3-3", "a\0b:3-3"] {
            let e = handler(bad).unwrap_err();
            assert!(
                e.starts_with("the compatible string holds "),
                "{bad:?}: {e}"
            );
        }
        assert_eq!(
            handler(&format!("{}:1-1", "c".repeat(63))).map(|h| h.1),
            Ok(1)
        );
        assert!(handler(&format!("{}:1-1", "c".repeat(64))).is_err());
        assert!(handler("memfd").is_err());
        assert!(handler(":1-2").is_err());
        assert!(handler("memfd:2-1").is_err());
        assert!(handler("memfd:1").is_err());
        assert!(handler("memfd:x-2").is_err());
        assert_eq!(
            format_read("1-2"),
            Ok(FormatRange {
                min_major: 1,
                max_major: 2
            })
        );
        assert!(format_read("2").is_err());
        assert!(format_read("1-70000").is_err());
        assert_eq!(
            format_write("2.1"),
            Ok(FormatVersion { major: 2, minor: 1 })
        );
        assert!(format_write("2").is_err());
        assert!(format_write("2.x").is_err());
    }

    #[test]
    fn names_modules_as_kbuild_does() {
        assert_eq!(
            module_name(Path::new("/x/fdbox-memfd.ko.zst")),
            "fdbox_memfd"
        );
        assert_eq!(module_name(Path::new("fdbox_core.ko")), "fdbox_core");
    }
}
