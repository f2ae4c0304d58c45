// SPDX-License-Identifier: GPL-2.0 OR MIT

//! [`predict`]: what a target kernel would restore of this kernel's
//! outgoing boxes, entry by entry, from what its modules declare.

use super::{
    FormatRange,
    FormatVersion,
    HandlerDecl,
    Origin,
    TargetModules,
    CORE_MODULE, //
};
use crate::types::{
    BoxInfo,
    BoxState,
    Caps,
    SealFlags, //
};

/// Whether the target's `fdbox_core` reads the blob this kernel writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatVerdict {
    /// It reads this kernel's format major.
    Ok {
        /// The majors it reads.
        read: FormatRange,
        /// Where it is declared.
        origin: Origin,
    },
    /// It doesn't read this kernel's format major: the whole hand-over is
    /// refused, nothing restores.
    Refused {
        /// The majors it reads.
        read: FormatRange,
        /// Where it is declared.
        origin: Origin,
    },
    /// The target has no `fdbox_core`: nothing restores.
    NoCore,
    /// The target's `fdbox_core` declares no `fdbox_format_read` (it
    /// predates the declaration): whether it reads the blob can't be told.
    Undeclared {
        /// The module.
        origin: Origin,
    },
}

impl FormatVerdict {
    /// `ok`, `refused`, `no-core` or `undeclared`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FormatVerdict::Ok { .. } => "ok",
            FormatVerdict::Refused { .. } => "refused",
            FormatVerdict::NoCore => "no-core",
            FormatVerdict::Undeclared { .. } => "undeclared",
        }
    }

    /// Whether nothing can restore: the blob is refused or nothing reads it.
    pub fn refuses_all(&self) -> bool {
        matches!(self, FormatVerdict::Refused { .. } | FormatVerdict::NoCore)
    }
}

/// Whether one entry would restore in the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// A handler of the target reads its payload version.
    Ok,
    /// No module of the target registers its compatible string.
    NoHandler,
    /// The target's handler doesn't read its payload version.
    Version {
        /// The version the entry is (or would be) written at.
        entry: u32,
        /// The oldest version the target's handler reads.
        target_min: u32,
        /// The newest version the target's handler reads.
        target_max: u32,
    },
    /// It depends on entries, and another entry of its box won't restore.
    ///
    /// `FDBOX_BOX_INFO` reports how many entries an entry depends on, not
    /// which, so this is on the safe side: the entry may depend only on
    /// entries that do restore.
    Dependency,
}

impl Verdict {
    /// `ok`, `no-handler`, `version` or `dependency`: one word, for tables
    /// and scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::NoHandler => "no-handler",
            Verdict::Version { .. } => "version",
            Verdict::Dependency => "dependency",
        }
    }
}

/// What would make an entry restorable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hint {
    /// Sealing the box with [`SealFlags::PREVIOUS`] writes the entry at
    /// `version`, which the target reads, if its handler can express the
    /// file's state there.
    SealPrevious {
        /// The version the entry would be written at.
        version: u32,
    },
}

/// One entry's prediction.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryPrediction {
    /// The entry's name.
    pub name: String,
    /// Its handler's compatible string.
    pub compatible: String,
    /// The payload version it is written at: the sealed version, or for an
    /// open box the version it would be written at now.
    pub version: u32,
    /// How many entries it depends on.
    pub n_deps: u32,
    /// The target's handler the verdict is about, if it has one.
    pub target: Option<HandlerDecl>,
    /// Every other module declaring the same compatible string: a conflict
    /// unless [`EntryPrediction::target`] is built in.
    pub rivals: Vec<HandlerDecl>,
    /// Whether it would restore.
    pub verdict: Verdict,
    /// What would make it restorable.
    pub hint: Option<Hint>,
}

impl EntryPrediction {
    /// The verdict in words, `None` for [`Verdict::Ok`].
    pub fn explain(&self) -> Option<String> {
        let compatible = &self.compatible;
        Some(match self.verdict {
            Verdict::Ok => return None,
            Verdict::NoHandler => format!(
                "no module of the target registers compatible {compatible}: the target has \
                 no {compatible} handler"
            ),
            Verdict::Version {
                entry,
                target_min,
                target_max,
            } => {
                let side = if entry > target_max { "newer" } else { "older" };
                format!(
                    "the target's {compatible} handler reads versions {target_min}-{target_max}; \
                     this entry is version {entry}, {side} than it reads"
                )
            }
            Verdict::Dependency => "it depends on other entries, and an entry of its box won't \
                 restore (the kernel reports how many entries an entry depends on, not which, so \
                 this is on the safe side)"
                .into(),
        })
    }
}

/// One box's prediction.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BoxPrediction {
    /// The box's name.
    pub name: String,
    /// The owner's uid.
    pub owner_uid: u32,
    /// The owner's gid.
    pub owner_gid: u32,
    /// Its state: sealed, or open (not handed over as it is).
    pub state: BoxState,
    /// The flags it was sealed with.
    pub seal_flags: SealFlags,
    /// Its entries, in the kernel's order.
    pub entries: Vec<EntryPrediction>,
}

/// How a hand-over would fare as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Every entry would restore (or there is nothing to hand over).
    AllRestore,
    /// Some entries wouldn't, or whether the blob is read can't be told.
    SomeWont,
    /// Nothing would: the target has no `fdbox_core`, or it doesn't read
    /// this kernel's format major.
    NothingWill,
}

/// What a target would restore of a hand-over ([`predict`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Prediction {
    /// The format this kernel writes.
    pub writes: FormatVersion,
    /// Whether the target reads it.
    pub format: FormatVerdict,
    /// The boxes, in the order given.
    pub boxes: Vec<BoxPrediction>,
    /// What else an operator should know: conflicting declarations, and
    /// whether a kexec back from the target would hand anything over.
    pub notes: Vec<String>,
}

impl Prediction {
    /// How many entries there are.
    pub fn entries(&self) -> usize {
        self.boxes.iter().map(|b| b.entries.len()).sum()
    }

    /// How many entries would restore: none if the blob is refused.
    pub fn restorable(&self) -> usize {
        if self.format.refuses_all() {
            return 0;
        }
        self.boxes
            .iter()
            .flat_map(|b| &b.entries)
            .filter(|e| e.verdict == Verdict::Ok)
            .count()
    }

    /// The outcome as a whole.
    pub fn outcome(&self) -> Outcome {
        if self.boxes.is_empty() {
            Outcome::AllRestore
        } else if self.format.refuses_all() {
            Outcome::NothingWill
        } else if self.restorable() < self.entries()
            || matches!(self.format, FormatVerdict::Undeclared { .. })
        {
            Outcome::SomeWont
        } else {
            Outcome::AllRestore
        }
    }

    /// The format verdict in words: what this kernel writes, what the
    /// target reads, and the verdict.
    pub fn format_summary(&self) -> String {
        let writes = self.writes;
        match &self.format {
            FormatVerdict::Ok { read, .. } => {
                format!("this kernel writes {writes}; the target reads majors {read}: ok")
            }
            FormatVerdict::Refused { read, .. } => format!(
                "this kernel writes {writes}; the target reads majors {read}: refused, nothing \
                 will restore"
            ),
            FormatVerdict::NoCore => format!(
                "this kernel writes {writes}; the target has no {CORE_MODULE}: nothing will \
                 restore"
            ),
            FormatVerdict::Undeclared { origin } => format!(
                "this kernel writes {writes}; the target's {CORE_MODULE} ({origin}) declares no \
                 fdbox_format_read: can't tell whether it reads this format"
            ),
        }
    }
}

/// Predicts what the target would restore of `boxes`, this kernel's
/// outgoing boxes (sealed, or open to see how they would fare), given this
/// kernel's `caps`.
///
/// An entry restores if the target has a handler of its compatible string
/// whose restore reads its payload version, and every entry it depends on
/// restores: dependencies are judged per box, on the safe side (see
/// [`Verdict::Dependency`]). It assumes the target loads its handler
/// modules; a module that isn't loaded registers nothing.
pub fn predict(boxes: &[BoxInfo], caps: &Caps, target: &TargetModules) -> Prediction {
    let writes = FormatVersion {
        major: caps.format_major,
        minor: caps.format_minor,
    };
    let mut notes = Vec::new();
    let format = match target.core() {
        None => FormatVerdict::NoCore,
        Some(core) => {
            if let Some(w) = core.write {
                if !(caps.format_read_min..=caps.format_read_max).contains(&w.major) {
                    notes.push(format!(
                        "the target writes format {w}, which this kernel doesn't read (majors \
                         {}-{}): a kexec back from the target would hand nothing over",
                        caps.format_read_min, caps.format_read_max
                    ));
                }
            }
            match core.read {
                Some(read) if read.contains(writes.major) => FormatVerdict::Ok {
                    read,
                    origin: core.origin.clone(),
                },
                Some(read) => FormatVerdict::Refused {
                    read,
                    origin: core.origin.clone(),
                },
                None => FormatVerdict::Undeclared {
                    origin: core.origin.clone(),
                },
            }
        }
    };
    if target.cores.len() > 1 {
        let all: Vec<String> = target.cores.iter().map(|c| c.origin.to_string()).collect();
        notes.push(format!(
            "{} modules are {CORE_MODULE}: {}; checked against {}",
            all.len(),
            all.join(", "),
            target
                .core()
                .map_or_else(String::new, |c| c.origin.to_string())
        ));
    }
    let mut conflicts_noted: Vec<&str> = Vec::new();
    let boxes = boxes
        .iter()
        .map(|b| {
            let mut entries: Vec<EntryPrediction> = b
                .entries
                .iter()
                .map(|e| {
                    let candidates = target.handlers_for(&e.compatible);
                    if candidates.len() > 1 && !conflicts_noted.contains(&e.compatible.as_str()) {
                        conflicts_noted.push(&e.compatible);
                        notes.push(conflict_note(&e.compatible, &candidates));
                    }
                    let (chosen, rivals) = choose(&candidates, e.version);
                    let verdict = match chosen {
                        None => Verdict::NoHandler,
                        Some(h) if h.reads(e.version) => Verdict::Ok,
                        Some(h) => Verdict::Version {
                            entry: e.version,
                            target_min: h.min_version,
                            target_max: h.version,
                        },
                    };
                    let hint = seal_previous_hint(verdict, &e.compatible, b.seal_flags, caps);
                    EntryPrediction {
                        name: e.name.clone(),
                        compatible: e.compatible.clone(),
                        version: e.version,
                        n_deps: e.n_deps,
                        target: chosen.cloned(),
                        rivals: rivals.into_iter().cloned().collect(),
                        verdict,
                        hint,
                    }
                })
                .collect();
            let some_wont = entries.iter().any(|e| e.verdict != Verdict::Ok);
            if some_wont {
                for e in entries
                    .iter_mut()
                    .filter(|e| e.verdict == Verdict::Ok && e.n_deps > 0)
                {
                    e.verdict = Verdict::Dependency;
                }
            }
            BoxPrediction {
                name: b.name.clone(),
                owner_uid: b.owner_uid,
                owner_gid: b.owner_gid,
                state: b.state,
                seal_flags: b.seal_flags,
                entries,
            }
        })
        .collect();
    Prediction {
        writes,
        format,
        boxes,
        notes,
    }
}

/// The handler that would serve an entry of `version` among `candidates`
/// (every declaration of its compatible string), and the others.
///
/// A built-in one registers first and wins. Between loadable ones the first
/// loaded wins, which can't be told: the verdict is then `ok` only if every
/// one reads `version`, so the chosen one is the first that doesn't.
fn choose<'a>(
    candidates: &[&'a HandlerDecl],
    version: u32,
) -> (Option<&'a HandlerDecl>, Vec<&'a HandlerDecl>) {
    let chosen = candidates
        .iter()
        .find(|h| h.origin.builtin)
        .or_else(|| candidates.iter().find(|h| !h.reads(version)))
        .or_else(|| candidates.first())
        .copied();
    let rivals = candidates
        .iter()
        .filter(|&&h| chosen.is_none_or(|c| !std::ptr::eq(h, c)))
        .copied()
        .collect();
    (chosen, rivals)
}

/// The note about a compatible string declared by several modules.
fn conflict_note(compatible: &str, candidates: &[&HandlerDecl]) -> String {
    let list: Vec<String> = candidates
        .iter()
        .map(|h| format!("{} ({}-{})", h.origin, h.min_version, h.version))
        .collect();
    let who_wins = if candidates.iter().any(|h| h.origin.builtin) {
        "the built-in one registers first and the others fail with EEXIST"
    } else {
        "the first loaded registers and the others fail with EEXIST, so which one serves \
         depends on load order"
    };
    format!(
        "compatible {compatible} is declared by {} modules: {}; {who_wins}",
        candidates.len(),
        list.join(", ")
    )
}

/// [`Hint::SealPrevious`] if `verdict` is a version the target reads one
/// below what this kernel's handler writes, and the box isn't sealed with
/// it already.
fn seal_previous_hint(
    verdict: Verdict,
    compatible: &str,
    seal_flags: SealFlags,
    caps: &Caps,
) -> Option<Hint> {
    let Verdict::Version {
        entry,
        target_min,
        target_max,
    } = verdict
    else {
        return None;
    };
    if seal_flags.contains(SealFlags::PREVIOUS) {
        return None;
    }
    let ours = caps.handler(compatible)?;
    // Version 0 doesn't exist: a handler at version 1 has no previous one.
    let previous = ours.version.checked_sub(1).filter(|&v| v > 0)?;
    let readable = entry == ours.version && (target_min..=target_max).contains(&previous);
    readable.then_some(Hint::SealPrevious { version: previous })
}
