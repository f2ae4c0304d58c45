// SPDX-License-Identifier: GPL-2.0 OR MIT

//! What a target kernel's module set declares about FDBox, read from the
//! modules' `.modinfo` before kexecing into it, and what it would restore of
//! this kernel's hand-over.
//!
//! Each handler module declares `fdbox_handler=<compatible>:<min>-<version>`
//! (the payload versions its restore reads; it writes `version`), and
//! `fdbox_core` declares `fdbox_format_read=<min>-<max>` (the blob format
//! majors it reads) and `fdbox_format_write=<major>.<minor>`. A built-in
//! module's keys are in `modules.builtin.modinfo`, prefixed with its name.
//! [`TargetModules::scan`] reads them all from `/lib/modules/<release>`;
//! [`predict`] compares them with this kernel's outgoing boxes and, if the
//! outgoing blob can be read, the dependencies it records
//! ([`Dependencies`]).

mod modinfo;
mod predict;
mod read;

use std::fmt;
use std::path::{
    Path,
    PathBuf, //
};

pub use self::predict::{
    predict,
    BoxDeps,
    BoxPrediction,
    Dependencies,
    EntryDeps,
    EntryPrediction,
    FormatVerdict,
    Hint,
    Outcome,
    Prediction,
    Verdict, //
};

/// The module name of the FDBox core.
pub const CORE_MODULE: &str = "fdbox_core";

/// The file listing the built-in modules' `.modinfo`, in a module
/// directory.
pub const BUILTIN_MODINFO: &str = "modules.builtin.modinfo";

/// A range of blob format major versions (`fdbox_format_read`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FormatRange {
    /// The oldest major version read.
    pub min_major: u16,
    /// The newest major version read.
    pub max_major: u16,
}

impl FormatRange {
    /// Whether `major` is in the range.
    pub fn contains(self, major: u16) -> bool {
        (self.min_major..=self.max_major).contains(&major)
    }
}

impl fmt::Display for FormatRange {
    /// `min-max`, as `fdbox_format_read` writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.min_major, self.max_major)
    }
}

/// A blob format version (`fdbox_format_write`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FormatVersion {
    /// The major version: a reader reads a blob only if it reads its major.
    pub major: u16,
    /// The minor version: additions a reader of the major may ignore.
    pub minor: u16,
}

impl fmt::Display for FormatVersion {
    /// `major.minor`, as `fdbox_format_write` writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Which module declared something, and in which file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The module file, or [`BUILTIN_MODINFO`] for a built-in module.
    pub path: PathBuf,
    /// The module's name (`name=` in its `.modinfo`, or its file name).
    pub module: String,
    /// Whether the module is built into the kernel image: it registers
    /// before any loadable module can.
    pub builtin: bool,
}

impl fmt::Display for Origin {
    /// The path, and for a built-in module its name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.builtin {
            write!(f, "{} (built in, {})", self.path.display(), self.module)
        } else {
            write!(f, "{}", self.path.display())
        }
    }
}

/// One `fdbox_handler=` declaration: a handler the target can register.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HandlerDecl {
    /// The compatible string it registers.
    pub compatible: String,
    /// The oldest payload version its restore reads.
    pub min_version: u32,
    /// The newest payload version its restore reads, which it writes.
    pub version: u32,
    /// Where it is declared.
    pub origin: Origin,
}

impl HandlerDecl {
    /// Whether its restore reads payload version `version`.
    pub fn reads(&self, version: u32) -> bool {
        (self.min_version..=self.version).contains(&version)
    }
}

/// A module that is `fdbox_core` or declares its format keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CoreDecl {
    /// `fdbox_format_read=`, if declared: the format majors it reads.
    pub read: Option<FormatRange>,
    /// `fdbox_format_write=`, if declared: the format version it writes.
    pub write: Option<FormatVersion>,
    /// Where it is declared.
    pub origin: Origin,
}

/// Something [`TargetModules::scan`] skipped: a file it could not read or
/// decode, or a declaration it could not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanWarning {
    /// The file concerned.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ScanWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// A directory of the module set that can't be read: the scan would be
/// incomplete, so it fails.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct ScanError {
    /// The directory or file that can't be read.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// What a target kernel's modules declare about FDBox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TargetModules {
    /// The directory scanned (`/lib/modules/<release>`).
    pub dir: PathBuf,
    /// Every `fdbox_handler=` declaration, in path order; a compatible
    /// declared twice is a conflict ([`TargetModules::handlers_for`]).
    pub handlers: Vec<HandlerDecl>,
    /// Every module that is `fdbox_core` or declares a format key.
    pub cores: Vec<CoreDecl>,
    /// What was skipped.
    pub warnings: Vec<ScanWarning>,
    /// How many module files were read, decodable or not.
    pub modules_read: usize,
}

impl TargetModules {
    /// An empty module set of `dir`, to fill with
    /// [`TargetModules::add_modinfo`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        TargetModules {
            dir: dir.into(),
            ..Default::default()
        }
    }

    /// Reads every module under `dir` (`*.ko`, `*.ko.xz`, `*.ko.zst`,
    /// `*.ko.gz`, decompressed in memory) and `dir/modules.builtin.modinfo`.
    ///
    /// Symlinks to modules are followed, symlinks to directories are not
    /// (`build` and `source` point at whole trees). A module that can't be
    /// read or decoded is skipped with a [`ScanWarning`]; a directory that
    /// can't be read fails the scan.
    pub fn scan(dir: &Path) -> Result<TargetModules, ScanError> {
        let mut target = TargetModules::new(dir);
        let mut files = Vec::new();
        read::walk(dir, &mut files, &mut target.warnings)?;
        files.sort();
        for (path, modinfo) in files.iter().zip(read::modinfo_of_all(&files)?) {
            target.modules_read += 1;
            match modinfo {
                Ok(Some(bytes)) => target.add_modinfo(path, &bytes),
                Ok(None) => target.warn(path, "no .modinfo section: not a kernel module"),
                Err(why) => target.warn(path, why),
            }
        }
        let builtin = dir.join(BUILTIN_MODINFO);
        match std::fs::read(&builtin) {
            Ok(bytes) => target.add_builtin_modinfo(&builtin, &bytes),
            // A kernel with nothing built in, or one older than the file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ScanError {
                    path: builtin,
                    source,
                })
            }
        }
        Ok(target)
    }

    /// Adds the declarations of the module file `path`, whose `.modinfo`
    /// section is `modinfo` (NUL-separated `key=value` strings).
    pub fn add_modinfo(&mut self, path: &Path, modinfo: &[u8]) {
        let pairs: Vec<(&str, &str)> = modinfo::pairs(modinfo).collect();
        let module = pairs
            .iter()
            .find(|(k, _)| *k == "name")
            .map_or_else(|| modinfo::module_name(path), |(_, v)| v.to_string());
        let origin = Origin {
            path: path.to_path_buf(),
            module,
            builtin: false,
        };
        self.add_module(origin, &pairs);
    }

    /// Adds the declarations of `modules.builtin.modinfo` at `path`, whose
    /// strings are `module.key=value`.
    pub fn add_builtin_modinfo(&mut self, path: &Path, modinfo: &[u8]) {
        let mut modules: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
        for (key, value) in modinfo::pairs(modinfo) {
            let Some((module, key)) = key.split_once('.') else {
                continue;
            };
            match modules.iter_mut().find(|(m, _)| *m == module) {
                Some((_, pairs)) => pairs.push((key, value)),
                None => modules.push((module, vec![(key, value)])),
            }
        }
        for (module, pairs) in modules {
            let origin = Origin {
                path: path.to_path_buf(),
                module: module.to_string(),
                builtin: true,
            };
            self.add_module(origin, &pairs);
        }
    }

    /// Adds the FDBox keys among one module's `pairs`.
    fn add_module(&mut self, origin: Origin, pairs: &[(&str, &str)]) {
        let mut core = CoreDecl {
            read: None,
            write: None,
            origin: origin.clone(),
        };
        let mut is_core = origin.module == CORE_MODULE;
        for &(key, value) in pairs {
            let parsed = match key {
                modinfo::HANDLER_KEY => modinfo::handler(value).map(|(compatible, min, max)| {
                    self.handlers.push(HandlerDecl {
                        compatible: compatible.to_string(),
                        min_version: min,
                        version: max,
                        origin: origin.clone(),
                    })
                }),
                modinfo::FORMAT_READ_KEY => modinfo::format_read(value).map(|r| {
                    is_core = true;
                    core.read = Some(r);
                }),
                modinfo::FORMAT_WRITE_KEY => modinfo::format_write(value).map(|w| {
                    is_core = true;
                    core.write = Some(w);
                }),
                _ => Ok(()),
            };
            if let Err(why) = parsed {
                self.warn(
                    &origin.path,
                    format!("module {}: {key}={value}: {why}", origin.module),
                );
            }
        }
        if is_core {
            self.cores.push(core);
        }
    }

    /// Records a warning about `path`.
    fn warn(&mut self, path: &Path, message: impl Into<String>) {
        self.warnings.push(ScanWarning {
            path: path.to_path_buf(),
            message: message.into(),
        });
    }

    /// Every declaration of `compatible`. More than one is a conflict: the
    /// kernel refuses a second registration (`EEXIST`), so a built-in one
    /// wins, and between loadable ones the first loaded does.
    pub fn handlers_for(&self, compatible: &str) -> Vec<&HandlerDecl> {
        self.handlers
            .iter()
            .filter(|h| h.compatible == compatible)
            .collect()
    }

    /// The core that will run: a built-in one, else the first that declares
    /// what it reads, else the first found; `None` if the target has no
    /// `fdbox_core`.
    pub fn core(&self) -> Option<&CoreDecl> {
        self.cores
            .iter()
            .find(|c| c.origin.builtin)
            .or_else(|| self.cores.iter().find(|c| c.read.is_some()))
            .or_else(|| self.cores.first())
    }
}

#[cfg(test)]
mod tests;
