// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Finding the module files of a module directory and taking the
//! `.modinfo` section out of each, decompressed in memory.

use std::io::{
    self,
    Read,
    Write, //
};
use std::path::{
    Path,
    PathBuf, //
};

use object::{
    BinaryFormat,
    Object,
    ObjectSection, //
};

use super::{
    ScanError,
    ScanWarning, //
};

/// More than any module decompresses to, even with debug info: a file that
/// claims more is refused rather than allowed to fill memory.
const MAX_MODULE_LEN: u64 = 1 << 30;

/// How a module file is compressed, from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compression {
    /// `.ko`.
    None,
    /// `.ko.xz`.
    Xz,
    /// `.ko.zst`.
    Zstd,
    /// `.ko.gz`.
    Gzip,
}

/// The compression of a module file, `None` if `path` names no module.
fn compression(path: &Path) -> Option<Compression> {
    let name = path.file_name()?.to_str()?;
    [
        (".ko", Compression::None),
        (".ko.xz", Compression::Xz),
        (".ko.zst", Compression::Zstd),
        (".ko.gz", Compression::Gzip),
    ]
    .into_iter()
    .find(|(suffix, _)| name.len() > suffix.len() && name.ends_with(suffix))
    .map(|(_, c)| c)
}

/// Adds every module file under `dir` to `files`, recursively; symlinks to
/// files are followed, symlinks to directories are not.
pub(super) fn walk(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    warnings: &mut Vec<ScanWarning>,
) -> Result<(), ScanError> {
    let failed = |source| ScanError {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        let path = entry.path();
        let kind = entry.file_type().map_err(failed)?;
        if kind.is_dir() {
            walk(&path, files, warnings)?;
            continue;
        }
        if compression(&path).is_none() {
            continue;
        }
        if kind.is_symlink() {
            // weak-updates/ links modules of other releases in.
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => files.push(path),
                Ok(_) => {}
                Err(e) => warnings.push(ScanWarning {
                    path,
                    message: format!("broken symlink: {e}"),
                }),
            }
        } else if kind.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

/// The `.modinfo` section of one module file: `Ok(None)` for an ELF file
/// without one, `Err` with the reason for a file that can't be read or
/// decoded.
pub(super) type Modinfo = Result<Option<Vec<u8>>, String>;

/// The `.modinfo` of every file, in order, read on as many threads as
/// there are CPUs: xz in pure Rust is slow, and a distribution kernel has
/// thousands of modules.
pub(super) fn modinfo_of_all(files: &[PathBuf]) -> Result<Vec<Modinfo>, ScanError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, files.len().max(1));
    let mut out: Vec<_> = files.iter().map(|_| Ok(None)).collect();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    files
                        .iter()
                        .enumerate()
                        .skip(t)
                        .step_by(threads)
                        .map(|(i, path)| (i, modinfo_of(path)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for w in workers {
            let done = w.join().map_err(|_| ScanError {
                path: files.first().cloned().unwrap_or_default(),
                source: io::Error::other("a decoder panicked while reading the modules"),
            })?;
            for (i, r) in done {
                if let Some(slot) = out.get_mut(i) {
                    *slot = r;
                }
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// The `.modinfo` section of the module file `path`.
fn modinfo_of(path: &Path) -> Modinfo {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let how = compression(path).unwrap_or(Compression::None);
    let elf = decompress(&raw, how).map_err(|e| format!("cannot decompress: {e}"))?;
    section(&elf, ".modinfo")
}

/// `raw` decompressed, at most [`MAX_MODULE_LEN`] bytes.
fn decompress(raw: &[u8], how: Compression) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match how {
        Compression::None => return Ok(raw.to_vec()),
        Compression::Xz => {
            let mut sink = Capped {
                buf: &mut out,
                max: MAX_MODULE_LEN,
            };
            lzma_rs::xz_decompress(&mut io::BufReader::new(raw), &mut sink)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        }
        Compression::Zstd => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(raw)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            read_capped(decoder, &mut out)?;
        }
        Compression::Gzip => read_capped(flate2::read::MultiGzDecoder::new(raw), &mut out)?,
    }
    Ok(out)
}

/// Reads `r` to the end into `out`, failing past [`MAX_MODULE_LEN`].
fn read_capped(r: impl Read, out: &mut Vec<u8>) -> io::Result<()> {
    r.take(MAX_MODULE_LEN + 1).read_to_end(out)?;
    if out.len() as u64 > MAX_MODULE_LEN {
        return Err(too_large());
    }
    Ok(())
}

/// The error for a module larger than [`MAX_MODULE_LEN`].
fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("decompresses to more than {MAX_MODULE_LEN} bytes"),
    )
}

/// A writer into a vector that fails past `max` bytes.
struct Capped<'a> {
    /// Where the bytes go.
    buf: &'a mut Vec<u8>,
    /// The most it takes.
    max: u64,
}

impl Write for Capped<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if (self.buf.len() + data.len()) as u64 > self.max {
            return Err(too_large());
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The section `name` of the ELF object `elf`, `None` if it has none.
fn section(elf: &[u8], name: &str) -> Result<Option<Vec<u8>>, String> {
    let file = object::File::parse(elf).map_err(|e| format!("not an ELF object: {e}"))?;
    if file.format() != BinaryFormat::Elf {
        return Err("not an ELF object".into());
    }
    let Some(section) = file.section_by_name(name) else {
        return Ok(None);
    };
    let data = section
        .data()
        .map_err(|e| format!("{name} section unreadable: {e}"))?;
    Ok(Some(data.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_module_names() {
        let c = |s: &str| compression(Path::new(s));
        assert_eq!(c("a/fdbox_memfd.ko"), Some(Compression::None));
        assert_eq!(c("fdbox_memfd.ko.xz"), Some(Compression::Xz));
        assert_eq!(c("fdbox_memfd.ko.zst"), Some(Compression::Zstd));
        assert_eq!(c("fdbox_memfd.ko.gz"), Some(Compression::Gzip));
        assert_eq!(c(".ko"), None);
        assert_eq!(c("modules.dep"), None);
        assert_eq!(c("fdbox_memfd.ko.bz2"), None);
        assert_eq!(c("fdbox_memfd.o"), None);
    }

    #[test]
    fn caps_what_a_module_decompresses_to() {
        let mut out = Vec::new();
        let mut sink = Capped {
            buf: &mut out,
            max: 4,
        };
        assert!(sink.write_all(b"abcd").is_ok());
        assert!(sink.write_all(b"e").is_err());
        let mut out = Vec::new();
        assert!(read_capped(&b"abc"[..], &mut out).is_ok());
        assert_eq!(out, b"abc");
    }
}
