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
        /// The version the entry is written at.
        entry: u32,
        /// The oldest version the target's handler reads.
        target_min: u32,
        /// The newest version the target's handler reads.
        target_max: u32,
    },
    /// It depends, directly or through other entries, on an entry of its
    /// box that won't restore: the target's kernel makes it unavailable
    /// (`FDBOX_REASON_DEPENDENCY`).
    Dependency {
        /// Whether the entries it depends on are known, from the outgoing
        /// blob ([`Dependencies`]). Without them the verdict is on the safe
        /// side, and may be wrong: `FDBOX_BOX_INFO` reports how many entries
        /// an entry depends on, not which, so any entry with dependencies in
        /// a box where some entry won't restore is given this verdict.
        exact: bool,
    },
    /// Its box is open, not sealed: nothing of it is handed over until it
    /// is sealed. [`EntryPrediction::version`] is then what `FDBOX_BOX_INFO`
    /// reports of a prepared entry, its handler's version: the most it
    /// would be written at, as a handler may write an older layout (memfd
    /// writes a shmem memfd at version 1).
    NotSealed,
    /// The target can't read the hand-over at all: it has no `fdbox_core`,
    /// or that doesn't read this kernel's format major
    /// ([`FormatVerdict::refuses_all`]). Every entry gets this verdict then.
    Format,
}

impl Verdict {
    /// `ok`, `no-handler`, `version`, `dependency`, `not-sealed` or
    /// `format`: one word, for tables and scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::NoHandler => "no-handler",
            Verdict::Version { .. } => "version",
            Verdict::Dependency { .. } => "dependency",
            Verdict::NotSealed => "not-sealed",
            Verdict::Format => "format",
        }
    }

    /// Whether the verdict is known for certain from what was read: all but
    /// a [`Verdict::Dependency`] judged without the entries' dependencies.
    pub fn is_exact(self) -> bool {
        !matches!(self, Verdict::Dependency { exact: false })
    }
}

/// What would make a box's entries restorable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hint {
    /// Sealing the box with [`SealFlags::PREVIOUS`] writes every entry at
    /// most at its handler's previous version, which the target reads
    /// ([`EntryPrediction::previous`] for each entry), if every handler can
    /// write its previous version: one that can't express its file's state
    /// there refuses, and the seal fails, changing nothing.
    SealPrevious,
}

/// Which entries each entry of the sealed boxes depends on, by name: what
/// `FDBOX_BOX_INFO` doesn't report (it gives only how many). The outgoing
/// blob records it (`fdbox inspect --out` reads it from debugfs); with it,
/// [`predict`] judges dependencies exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dependencies {
    /// The boxes of the blob.
    pub boxes: Vec<BoxDeps>,
}

/// The dependencies of one box's entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoxDeps {
    /// The box's name.
    pub name: String,
    /// The owner's uid.
    pub owner_uid: u32,
    /// Its entries, in the blob's order (dependencies before dependents).
    pub entries: Vec<EntryDeps>,
}

/// The dependencies of one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryDeps {
    /// The entry's name.
    pub name: String,
    /// The payload version it is written at.
    pub version: u32,
    /// The names of the entries of its box it depends on.
    pub deps: Vec<String>,
}

impl Dependencies {
    /// For each entry of the sealed box `b`, in `b`'s order, the indices in
    /// `b.entries` of the entries it depends on; `None` if the blob doesn't
    /// match what `FDBOX_BOX_INFO` reported (another box, sealed again since,
    /// or an entry whose count of dependencies differs).
    fn of(&self, b: &BoxInfo) -> Option<Vec<Vec<usize>>> {
        let blob = self
            .boxes
            .iter()
            .find(|d| d.name == b.name && d.owner_uid == b.owner_uid)?;
        if blob.entries.len() != b.entries.len() {
            return None;
        }
        let index = |name: &str| b.entries.iter().position(|e| e.name == name);
        b.entries
            .iter()
            .map(|e| {
                let d = blob.entries.iter().find(|d| d.name == e.name)?;
                let n_deps = usize::try_from(e.n_deps).ok()?;
                if d.version != e.version || d.deps.len() != n_deps {
                    return None;
                }
                d.deps.iter().map(|dep| index(dep)).collect()
            })
            .collect()
    }
}

/// One entry's prediction.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryPrediction {
    /// The entry's name.
    pub name: String,
    /// Its handler's compatible string.
    pub compatible: String,
    /// The payload version it is written at; for an entry of an open box
    /// ([`Verdict::NotSealed`]), the most it would be written at.
    pub version: u32,
    /// How many entries it depends on.
    pub n_deps: u32,
    /// The entries it depends on, if known ([`Dependencies`]).
    pub deps: Option<Vec<String>>,
    /// For [`Verdict::Dependency`] with `exact`, the entries it depends on
    /// directly that won't restore.
    pub blocked_by: Vec<String>,
    /// The target's handler the verdict is about, if it has one.
    pub target: Option<HandlerDecl>,
    /// Every other module declaring the same compatible string: a conflict
    /// unless [`EntryPrediction::target`] is built in.
    pub rivals: Vec<HandlerDecl>,
    /// Whether it would restore.
    pub verdict: Verdict,
    /// With its box's [`Hint::SealPrevious`], the version it would be
    /// written at most at: its handler's previous version in this kernel,
    /// or its own version if that is older already.
    pub previous: Option<u32>,
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
            Verdict::Dependency { exact: true } => format!(
                "it depends on {}, which won't restore",
                self.blocked_by.join(", ")
            ),
            Verdict::Dependency { exact: false } => "uncertain: it depends on other entries, \
                 and an entry of its box won't restore; which entries it depends on is not \
                 known (the outgoing blob couldn't be read, or doesn't match the box), so \
                 this is on the safe side"
                .into(),
            Verdict::NotSealed => {
                let version = self.version;
                let target = match &self.target {
                    None => format!("the target has no {compatible} handler"),
                    Some(h) => format!(
                        "the target's {compatible} handler reads versions {}-{}",
                        h.min_version, h.version
                    ),
                };
                format!(
                    "its box is not sealed, and a box isn't handed over until it is; sealed \
                     now, this entry would be written at most at version {version} ({target})"
                )
            }
            Verdict::Format => "the target can't read this kernel's hand-over (see the format \
                 verdict): nothing of it restores"
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
    /// What would make its entries restorable.
    pub hint: Option<Hint>,
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

    /// How many entries are in boxes that aren't sealed.
    pub fn not_sealed(&self) -> usize {
        self.boxes
            .iter()
            .flat_map(|b| &b.entries)
            .filter(|e| e.verdict == Verdict::NotSealed)
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
/// outgoing boxes (sealed, or open to say they aren't), given this kernel's
/// `caps` and, if the outgoing blob could be read, which entries each entry
/// depends on (`deps`).
///
/// An entry restores if the target has a handler of its compatible string
/// whose restore reads its payload version, and every entry it depends on
/// restores. With `deps`, dependencies are followed as the target's kernel
/// follows them, transitively; without (or for a box the blob doesn't
/// match), they are judged per box on the safe side ([`Verdict::Dependency`]
/// with `exact: false`). An entry of an open box gets [`Verdict::NotSealed`],
/// and every entry [`Verdict::Format`] if the target can't read the
/// hand-over.
///
/// It assumes the target loads its handler modules; a module that isn't
/// loaded registers nothing. What only the restore itself can tell is not
/// predicted: a corrupt record (`FDBOX_REASON_CORRUPT`), or a handler that
/// fails to restore (`FDBOX_REASON_RESTORE_FAILED`, e.g. a hugetlb pool too
/// small for a hugetlb memfd).
pub fn predict(
    boxes: &[BoxInfo],
    caps: &Caps,
    target: &TargetModules,
    deps: Option<&Dependencies>,
) -> Prediction {
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
            for e in &b.entries {
                let candidates = target.handlers_for(&e.compatible);
                if candidates.len() > 1 && !conflicts_noted.contains(&e.compatible.as_str()) {
                    conflicts_noted.push(&e.compatible);
                    notes.push(conflict_note(&e.compatible, &candidates));
                }
            }
            predict_box(b, caps, target, deps, &format)
        })
        .collect();
    Prediction {
        writes,
        format,
        boxes,
        notes,
    }
}

/// The prediction of box `b` (see [`predict`]).
fn predict_box(
    b: &BoxInfo,
    caps: &Caps,
    target: &TargetModules,
    deps: Option<&Dependencies>,
    format: &FormatVerdict,
) -> BoxPrediction {
    let sealed = b.state == BoxState::Sealed;
    let exact = if sealed {
        deps.and_then(|d| d.of(b))
    } else {
        None
    };
    let mut entries: Vec<EntryPrediction> = b
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (chosen, rivals) = choose(&target.handlers_for(&e.compatible), e.version);
            let verdict = match chosen {
                _ if !sealed => Verdict::NotSealed,
                None => Verdict::NoHandler,
                Some(h) if h.reads(e.version) => Verdict::Ok,
                Some(h) => Verdict::Version {
                    entry: e.version,
                    target_min: h.min_version,
                    target_max: h.version,
                },
            };
            let deps = exact.as_ref().and_then(|x| x.get(i)).map(|d| {
                d.iter()
                    .filter_map(|&j| b.entries.get(j))
                    .map(|d| d.name.clone())
                    .collect()
            });
            EntryPrediction {
                name: e.name.clone(),
                compatible: e.compatible.clone(),
                version: e.version,
                n_deps: e.n_deps,
                deps,
                blocked_by: Vec::new(),
                target: chosen.cloned(),
                rivals: rivals.into_iter().cloned().collect(),
                verdict,
                previous: None,
            }
        })
        .collect();
    match &exact {
        Some(exact) => propagate(&mut entries, exact),
        None if entries.iter().any(|e| e.verdict != Verdict::Ok) => {
            for e in entries
                .iter_mut()
                .filter(|e| e.verdict == Verdict::Ok && e.n_deps > 0)
            {
                e.verdict = Verdict::Dependency { exact: false };
            }
        }
        None => {}
    }
    let mut hint = None;
    if format.refuses_all() {
        for e in &mut entries {
            e.verdict = Verdict::Format;
            e.blocked_by.clear();
        }
    } else if sealed && !b.seal_flags.contains(SealFlags::PREVIOUS) {
        if let Some(previous) = seal_previous(b, &entries, caps, target) {
            hint = Some(Hint::SealPrevious);
            for (e, v) in entries.iter_mut().zip(previous) {
                e.previous = Some(v);
            }
        }
    }
    BoxPrediction {
        name: b.name.clone(),
        owner_uid: b.owner_uid,
        owner_gid: b.owner_gid,
        state: b.state,
        seal_flags: b.seal_flags,
        entries,
        hint,
    }
}

/// Marks each entry that depends, directly or not, on one that won't
/// restore as [`Verdict::Dependency`], as the target's kernel does;
/// `deps[i]` are the indices of the entries `entries[i]` depends on.
fn propagate(entries: &mut [EntryPrediction], deps: &[Vec<usize>]) {
    let wont = |entries: &[EntryPrediction], j: usize| {
        entries.get(j).is_some_and(|d| d.verdict != Verdict::Ok)
    };
    // Dependencies come first in the blob, not necessarily in the kernel's
    // order here: repeat until nothing changes (at most once per entry).
    loop {
        let mut changed = false;
        for (i, d) in deps.iter().enumerate() {
            let blocked = d.iter().any(|&j| wont(entries, j));
            if let Some(e) = entries.get_mut(i) {
                if blocked && e.verdict == Verdict::Ok {
                    e.verdict = Verdict::Dependency { exact: true };
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    for (i, d) in deps.iter().enumerate() {
        let blocked: Vec<String> = d
            .iter()
            .filter(|&&j| wont(entries, j))
            .filter_map(|&j| entries.get(j).map(|d| d.name.clone()))
            .collect();
        if let Some(e) = entries.get_mut(i) {
            if matches!(e.verdict, Verdict::Dependency { .. }) {
                e.blocked_by = blocked;
            }
        }
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

/// The version each entry of the sealed box `b` would be written at most at
/// if it were sealed with [`SealFlags::PREVIOUS`], if that would make every
/// entry readable by the target and some entry isn't now.
///
/// The flag applies to the whole box: every entry is written at most at its
/// handler's previous version, this kernel's `VERSION - 1`; an entry already
/// written below (a shmem memfd at 1 under memfd's 2) stays at its version.
/// A handler whose `VERSION` is 1 has no previous version and fails the
/// whole seal, so no entry may have one.
fn seal_previous(
    b: &BoxInfo,
    entries: &[EntryPrediction],
    caps: &Caps,
    target: &TargetModules,
) -> Option<Vec<u32>> {
    if entries.iter().all(|e| e.verdict == Verdict::Ok) {
        return None;
    }
    b.entries
        .iter()
        .map(|e| {
            let ours = caps.handler(&e.compatible)?;
            // Version 0 doesn't exist: a handler at version 1 has none before.
            let previous = ours.version.checked_sub(1).filter(|&v| v > 0)?;
            let version = e.version.min(previous);
            let (chosen, _) = choose(&target.handlers_for(&e.compatible), version);
            chosen?.reads(version).then_some(version)
        })
        .collect()
}
