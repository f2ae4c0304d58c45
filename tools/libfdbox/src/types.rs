// SPDX-License-Identifier: GPL-2.0 OR MIT

//! What the kernel reports: states, directions and reasons as enums that
//! keep values this crate doesn't know, and the owned forms of the list
//! structs.

use core::fmt;

use fdbox_uapi::{
    fdbox_box_info,
    fdbox_box_summary,
    fdbox_entry_info,
    fdbox_get_caps,
    fdbox_handler_info,
    FDBOX_BOX_INCOMING,
    FDBOX_BOX_OPEN,
    FDBOX_BOX_SEALED,
    FDBOX_DIR_INCOMING,
    FDBOX_DIR_OUTGOING,
    FDBOX_ENTRY_DISCARDED,
    FDBOX_ENTRY_PREPARED,
    FDBOX_ENTRY_RESTORABLE,
    FDBOX_ENTRY_RETRIEVED,
    FDBOX_ENTRY_SEALED,
    FDBOX_ENTRY_UNAVAILABLE,
    FDBOX_INCOMING_NONE,
    FDBOX_INCOMING_OK,
    FDBOX_INCOMING_UNUSABLE,
    FDBOX_REASON_CORRUPT,
    FDBOX_REASON_DEPENDENCY,
    FDBOX_REASON_NONE,
    FDBOX_REASON_NO_HANDLER,
    FDBOX_REASON_RESTORE_FAILED,
    FDBOX_REASON_VERSION,
    FDBOX_SEAL_PREVIOUS, //
};

use crate::name;

/// Defines an enum over a C enum's values, with `Unknown(u32)` for values a
/// newer kernel may report, `from_raw`/`to_raw`, `as_str` and `Display`.
macro_rules! raw_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $raw:ident => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version of the crate doesn't know (from a newer
            /// kernel).
            Unknown(u32),
        }

        impl $name {
            /// The variant of the C value `raw`.
            pub fn from_raw(raw: u32) -> Self {
                match raw {
                    $( $raw => $name::$variant, )*
                    other => $name::Unknown(other),
                }
            }

            /// The C value.
            pub fn to_raw(self) -> u32 {
                match self {
                    $( $name::$variant => $raw, )*
                    $name::Unknown(raw) => raw,
                }
            }

            /// A short lowercase name, `"unknown"` for [`Self::Unknown`].
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )*
                    $name::Unknown(_) => "unknown",
                }
            }
        }

        impl fmt::Display for $name {
            /// The short name; an unknown value shows as `unknown(N)`.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::Unknown(raw) => write!(f, "unknown({raw})"),
                    other => f.write_str(other.as_str()),
                }
            }
        }
    };
}

raw_enum! {
    /// Which side of the kexec a box is on (`enum fdbox_direction`).
    pub enum Direction {
        /// Created in this kernel, to be handed to the next one.
        Outgoing = FDBOX_DIR_OUTGOING => "outgoing",
        /// Handed over by the previous kernel.
        Incoming = FDBOX_DIR_INCOMING => "incoming",
    }
}

raw_enum! {
    /// The state of a box (`enum fdbox_box_state`).
    pub enum BoxState {
        /// Outgoing, being filled; discarded when its last fd closes.
        Open = FDBOX_BOX_OPEN => "open",
        /// Outgoing, sealed; handed over at the next kexec.
        Sealed = FDBOX_BOX_SEALED => "sealed",
        /// Incoming; its entries can be retrieved.
        Incoming = FDBOX_BOX_INCOMING => "incoming",
    }
}

raw_enum! {
    /// The state of an entry (`enum fdbox_entry_state`).
    pub enum EntryState {
        /// Outgoing; the handler prepared the file.
        Prepared = FDBOX_ENTRY_PREPARED => "prepared",
        /// Outgoing; serialized into the hand-over.
        Sealed = FDBOX_ENTRY_SEALED => "sealed",
        /// Incoming; can be retrieved.
        Restorable = FDBOX_ENTRY_RESTORABLE => "restorable",
        /// Incoming; can't be restored, see [`EntryInfo::reason`].
        Unavailable = FDBOX_ENTRY_UNAVAILABLE => "unavailable",
        /// Incoming; handed to userspace.
        Retrieved = FDBOX_ENTRY_RETRIEVED => "retrieved",
        /// Incoming; discarded, its memory freed.
        Discarded = FDBOX_ENTRY_DISCARDED => "discarded",
    }
}

raw_enum! {
    /// Why an incoming entry is unavailable (`enum fdbox_reason`).
    ///
    /// `FDBOX_REASON_NONE` is not a variant: [`EntryInfo::reason`] is `None`
    /// then, and [`Reason::from_raw`] would call it `Unknown(0)`.
    pub enum Reason {
        /// No handler with the entry's compatible string is registered; the
        /// entry becomes restorable when one registers.
        NoHandler = FDBOX_REASON_NO_HANDLER => "no handler",
        /// The handler doesn't read this payload version.
        Version = FDBOX_REASON_VERSION => "unsupported version",
        /// The entry's record is corrupt.
        Corrupt = FDBOX_REASON_CORRUPT => "corrupt",
        /// An entry it depends on is unavailable.
        Dependency = FDBOX_REASON_DEPENDENCY => "dependency unavailable",
        /// The handler failed to restore it.
        RestoreFailed = FDBOX_REASON_RESTORE_FAILED => "restore failed",
    }
}

raw_enum! {
    /// What the previous kernel handed over (`enum fdbox_incoming`).
    pub enum Incoming {
        /// Nothing: a cold boot, or no box was sealed.
        None = FDBOX_INCOMING_NONE => "none",
        /// A blob was decoded; its boxes are listed.
        Ok = FDBOX_INCOMING_OK => "ok",
        /// A blob was found but is unusable; the kernel log and debugfs say
        /// why.
        Unusable = FDBOX_INCOMING_UNUSABLE => "unusable",
    }
}

/// `reason` as an option: `None` for `FDBOX_REASON_NONE`.
fn reason(raw: u32) -> Option<Reason> {
    (raw != FDBOX_REASON_NONE).then(|| Reason::from_raw(raw))
}

/// The flags of a seal (`FDBOX_SEAL_*`): how [`BoxFd::seal_with`] writes
/// the entries, and how [`BoxInfo::seal_flags`] reports a sealed box was
/// written.
///
/// Bits this crate doesn't know (from a newer kernel) are kept.
///
/// [`BoxFd::seal_with`]: crate::BoxFd::seal_with
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SealFlags(u32);

impl SealFlags {
    /// `FDBOX_SEAL_PREVIOUS`: each entry is written at most at its
    /// handler's previous payload version (the version it writes minus
    /// one), for a rollback to a kernel one version behind.
    pub const PREVIOUS: SealFlags = SealFlags(FDBOX_SEAL_PREVIOUS);

    /// No flag: every entry is written at its handler's current version.
    pub const fn empty() -> Self {
        SealFlags(0)
    }

    /// The flags of the C value `bits`, unknown bits included.
    pub const fn from_bits_retain(bits: u32) -> Self {
        SealFlags(bits)
    }

    /// The C value.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: SealFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for SealFlags {
    type Output = SealFlags;

    fn bitor(self, other: SealFlags) -> SealFlags {
        SealFlags(self.0 | other.0)
    }
}

/// One box, as [`Device::list_boxes`](crate::Device::list_boxes) lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BoxSummary {
    /// The box's name.
    pub name: String,
    /// Which side of the kexec it is on.
    pub direction: Direction,
    /// Its state.
    pub state: BoxState,
    /// The owner's uid, in the caller's user namespace.
    pub owner_uid: u32,
    /// The owner's gid, in the caller's user namespace.
    pub owner_gid: u32,
    /// The number of entries.
    pub n_entries: u32,
}

impl From<&fdbox_box_summary> for BoxSummary {
    fn from(raw: &fdbox_box_summary) -> Self {
        BoxSummary {
            name: name::decode(&raw.name),
            direction: Direction::from_raw(raw.direction),
            state: BoxState::from_raw(raw.state),
            owner_uid: raw.owner_uid,
            owner_gid: raw.owner_gid,
            n_entries: raw.n_entries,
        }
    }
}

/// One entry, as [`BoxFd::info`](crate::BoxFd::info) reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryInfo {
    /// The entry's name.
    pub name: String,
    /// Its handler's compatible string.
    pub compatible: String,
    /// Its payload version.
    pub version: u32,
    /// Its state.
    pub state: EntryState,
    /// Why it is unavailable; `None` unless it is.
    pub reason: Option<Reason>,
    /// How many entries it depends on.
    pub n_deps: u32,
}

impl EntryInfo {
    /// Why this incoming entry is unavailable, in words an operator can act
    /// on, given this kernel's capabilities; `None` unless it has a reason.
    ///
    /// A missing handler and a handler that doesn't read the payload's
    /// version have different fixes (load a module, or boot a kernel whose
    /// handler reads that version), so they are told apart.
    pub fn explain(&self, caps: &Caps) -> Option<String> {
        let compatible = &self.compatible;
        let not_loaded = || {
            format!(
                "the handler for {compatible} is not loaded (no module registered \
                 compatible {compatible}); it becomes restorable once one does"
            )
        };
        Some(match self.reason? {
            Reason::NoHandler => not_loaded(),
            Reason::Version => match caps.handler(compatible) {
                Some(h) => format!(
                    "this kernel's {compatible} handler reads versions {}-{}; the entry is \
                     version {}",
                    h.min_version, h.version, self.version
                ),
                // The handler went away since the kernel judged the entry.
                None => not_loaded(),
            },
            Reason::Corrupt => {
                "the entry's record is corrupt: the previous kernel's blob fails its checks \
                 (the kernel log says which)"
                    .into()
            }
            Reason::Dependency => {
                "an entry it depends on is unavailable: that entry's reason is the one to fix"
                    .into()
            }
            Reason::RestoreFailed => format!(
                "this kernel's {compatible} handler failed to restore it (the kernel log says \
                 why)"
            ),
            Reason::Unknown(raw) => {
                format!("reason {raw}, which this version of the tools doesn't know")
            }
        })
    }
}

impl From<&fdbox_entry_info> for EntryInfo {
    fn from(raw: &fdbox_entry_info) -> Self {
        EntryInfo {
            name: name::decode(&raw.name),
            compatible: name::decode(&raw.compatible),
            version: raw.version,
            state: EntryState::from_raw(raw.state),
            reason: reason(raw.reason),
            n_deps: raw.n_deps,
        }
    }
}

/// A box and its entries, as [`BoxFd::info`](crate::BoxFd::info) reports
/// them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BoxInfo {
    /// The box's name.
    pub name: String,
    /// Which side of the kexec it is on.
    pub direction: Direction,
    /// Its state.
    pub state: BoxState,
    /// The owner's uid, in the caller's user namespace.
    pub owner_uid: u32,
    /// The owner's gid, in the caller's user namespace.
    pub owner_gid: u32,
    /// The flags the box was sealed with; empty for an open or incoming
    /// box.
    pub seal_flags: SealFlags,
    /// Its entries, in the kernel's order.
    pub entries: Vec<EntryInfo>,
}

impl BoxInfo {
    /// The box described by the `FDBOX_BOX_INFO` result `raw`, with the
    /// `entries` the kernel wrote.
    pub fn from_raw(raw: &fdbox_box_info, entries: &[fdbox_entry_info]) -> Self {
        BoxInfo {
            name: name::decode(&raw.name),
            direction: Direction::from_raw(raw.direction),
            state: BoxState::from_raw(raw.state),
            owner_uid: raw.owner_uid,
            owner_gid: raw.owner_gid,
            seal_flags: SealFlags::from_bits_retain(raw.seal_flags),
            entries: entries.iter().map(EntryInfo::from).collect(),
        }
    }

    /// The entry named `name`.
    pub fn entry(&self, name: &str) -> Option<&EntryInfo> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// One registered handler, as [`Caps`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandlerInfo {
    /// The handler's compatible string.
    pub compatible: String,
    /// The payload version it writes.
    pub version: u32,
    /// The oldest payload version it restores.
    pub min_version: u32,
}

impl From<&fdbox_handler_info> for HandlerInfo {
    fn from(raw: &fdbox_handler_info) -> Self {
        HandlerInfo {
            compatible: name::decode(&raw.compatible),
            version: raw.version,
            min_version: raw.min_version,
        }
    }
}

/// What this kernel can preserve and restore
/// ([`Device::caps`](crate::Device::caps)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Caps {
    /// The blob format major version this kernel writes.
    pub format_major: u16,
    /// The blob format minor version this kernel writes.
    pub format_minor: u16,
    /// The oldest format major version this kernel reads.
    pub format_read_min: u16,
    /// The newest format major version this kernel reads.
    pub format_read_max: u16,
    /// What the previous kernel handed over.
    pub incoming: Incoming,
    /// The registered handlers.
    pub handlers: Vec<HandlerInfo>,
    /// The most boxes, outgoing and incoming together.
    pub max_boxes: u32,
    /// The most entries in one box.
    pub max_entries: u32,
}

impl Caps {
    /// The capabilities in the `FDBOX_GET_CAPS` result `raw`, with the
    /// `handlers` the kernel wrote.
    pub fn from_raw(raw: &fdbox_get_caps, handlers: &[fdbox_handler_info]) -> Self {
        Caps {
            format_major: raw.format_major,
            format_minor: raw.format_minor,
            format_read_min: raw.format_read_min,
            format_read_max: raw.format_read_max,
            incoming: Incoming::from_raw(raw.incoming),
            handlers: handlers.iter().map(HandlerInfo::from).collect(),
            max_boxes: raw.max_boxes,
            max_entries: raw.max_entries,
        }
    }

    /// The handler with this compatible string.
    pub fn handler(&self, compatible: &str) -> Option<&HandlerInfo> {
        self.handlers.iter().find(|h| h.compatible == compatible)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_and_keep_unknown_values() {
        for raw in 0..8 {
            assert_eq!(Direction::from_raw(raw).to_raw(), raw);
            assert_eq!(BoxState::from_raw(raw).to_raw(), raw);
            assert_eq!(EntryState::from_raw(raw).to_raw(), raw);
            assert_eq!(Reason::from_raw(raw).to_raw(), raw);
            assert_eq!(Incoming::from_raw(raw).to_raw(), raw);
        }
        assert_eq!(Direction::from_raw(1), Direction::Incoming);
        assert_eq!(Direction::from_raw(2), Direction::Unknown(2));
        assert_eq!(BoxState::from_raw(1), BoxState::Sealed);
        assert_eq!(BoxState::from_raw(3), BoxState::Unknown(3));
        assert_eq!(EntryState::from_raw(3), EntryState::Unavailable);
        assert_eq!(EntryState::from_raw(6), EntryState::Unknown(6));
        assert_eq!(Reason::from_raw(5), Reason::RestoreFailed);
        assert_eq!(Reason::from_raw(6), Reason::Unknown(6));
        assert_eq!(Incoming::from_raw(2), Incoming::Unusable);
        assert_eq!(Incoming::from_raw(u32::MAX), Incoming::Unknown(u32::MAX));
    }

    #[test]
    fn enums_have_the_header_values() {
        let pairs = [
            (Direction::Outgoing.to_raw(), 0),
            (Direction::Incoming.to_raw(), 1),
            (BoxState::Open.to_raw(), 0),
            (BoxState::Sealed.to_raw(), 1),
            (BoxState::Incoming.to_raw(), 2),
            (EntryState::Prepared.to_raw(), 0),
            (EntryState::Sealed.to_raw(), 1),
            (EntryState::Restorable.to_raw(), 2),
            (EntryState::Unavailable.to_raw(), 3),
            (EntryState::Retrieved.to_raw(), 4),
            (EntryState::Discarded.to_raw(), 5),
            (Reason::NoHandler.to_raw(), 1),
            (Reason::Version.to_raw(), 2),
            (Reason::Corrupt.to_raw(), 3),
            (Reason::Dependency.to_raw(), 4),
            (Reason::RestoreFailed.to_raw(), 5),
            (Incoming::None.to_raw(), 0),
            (Incoming::Ok.to_raw(), 1),
            (Incoming::Unusable.to_raw(), 2),
        ];
        for (i, (got, want)) in pairs.iter().enumerate() {
            assert_eq!(got, want, "pair {i}");
        }
    }

    #[test]
    fn enums_display_short_names() {
        assert_eq!(BoxState::Sealed.to_string(), "sealed");
        assert_eq!(EntryState::Restorable.to_string(), "restorable");
        assert_eq!(Reason::NoHandler.to_string(), "no handler");
        assert_eq!(EntryState::Unknown(9).to_string(), "unknown(9)");
        assert_eq!(EntryState::Unknown(9).as_str(), "unknown");
    }

    #[test]
    fn seal_flags_are_the_header_bits() {
        assert_eq!(SealFlags::empty().bits(), 0);
        assert_eq!(SealFlags::PREVIOUS.bits(), 1);
        assert!(!SealFlags::empty().contains(SealFlags::PREVIOUS));
        assert!(SealFlags::empty().contains(SealFlags::empty()));
        let both = SealFlags::PREVIOUS | SealFlags::from_bits_retain(4);
        assert_eq!(both.bits(), 5);
        assert!(both.contains(SealFlags::PREVIOUS));
    }

    /// An incoming entry of `compatible` at `version`, unavailable for
    /// `reason`.
    fn unavailable(compatible: &str, version: u32, reason: Option<Reason>) -> EntryInfo {
        EntryInfo {
            name: "e".into(),
            compatible: compatible.into(),
            version,
            state: EntryState::Unavailable,
            reason,
            n_deps: 0,
        }
    }

    #[test]
    fn explains_reasons_in_an_operators_words() {
        let raw = fdbox_get_caps::default();
        let mut memfd = fdbox_handler_info::default();
        for (o, b) in memfd.compatible.iter_mut().zip(b"memfd") {
            *o = *b as _;
        }
        memfd.version = 3;
        memfd.min_version = 2;
        let caps = Caps::from_raw(&raw, &[memfd]);
        let explain = |c: &str, v: u32, r: Option<Reason>| unavailable(c, v, r).explain(&caps);
        assert_eq!(explain("memfd", 1, None), None);
        assert_eq!(
            explain("vfio", 1, Some(Reason::NoHandler)).unwrap(),
            "the handler for vfio is not loaded (no module registered compatible vfio); it \
             becomes restorable once one does"
        );
        assert_eq!(
            explain("memfd", 1, Some(Reason::Version)).unwrap(),
            "this kernel's memfd handler reads versions 2-3; the entry is version 1"
        );
        // The handler was unloaded since: it is missing, not too old.
        assert!(explain("gone", 1, Some(Reason::Version))
            .unwrap()
            .starts_with("the handler for gone is not loaded"));
        assert!(explain("memfd", 2, Some(Reason::RestoreFailed))
            .unwrap()
            .starts_with("this kernel's memfd handler failed to restore it"));
        assert!(explain("memfd", 2, Some(Reason::Corrupt))
            .unwrap()
            .contains("corrupt"));
        assert!(explain("memfd", 2, Some(Reason::Dependency))
            .unwrap()
            .starts_with("an entry it depends on is unavailable"));
        assert_eq!(
            explain("memfd", 2, Some(Reason::Unknown(9))).unwrap(),
            "reason 9, which this version of the tools doesn't know"
        );
    }

    #[test]
    fn reason_none_is_no_reason() {
        assert_eq!(reason(FDBOX_REASON_NONE), None);
        assert_eq!(reason(FDBOX_REASON_CORRUPT), Some(Reason::Corrupt));
        assert_eq!(reason(77), Some(Reason::Unknown(77)));
    }

    #[test]
    fn converts_the_raw_structs() {
        let mut raw = fdbox_entry_info::default();
        raw.name[..3].copy_from_slice(&[b'r' as _, b'a' as _, b'm' as _]);
        raw.compatible[..5]
            .copy_from_slice(&[b'm' as _, b'e' as _, b'm' as _, b'f' as _, b'd' as _]);
        raw.version = 2;
        raw.state = FDBOX_ENTRY_UNAVAILABLE;
        raw.reason = FDBOX_REASON_VERSION;
        raw.n_deps = 1;
        let e = EntryInfo::from(&raw);
        assert_eq!(
            e,
            EntryInfo {
                name: "ram".into(),
                compatible: "memfd".into(),
                version: 2,
                state: EntryState::Unavailable,
                reason: Some(Reason::Version),
                n_deps: 1,
            }
        );
        let mut info = fdbox_box_info::default();
        info.name[..3].copy_from_slice(&[b'v' as _, b'm' as _, b'0' as _]);
        info.direction = FDBOX_DIR_INCOMING;
        info.state = FDBOX_BOX_INCOMING;
        info.owner_uid = 1000;
        info.owner_gid = 100;
        let b = BoxInfo::from_raw(&info, &[raw]);
        assert_eq!(b.name, "vm0");
        assert_eq!(b.direction, Direction::Incoming);
        assert_eq!(b.state, BoxState::Incoming);
        assert_eq!(b.owner_uid, 1000);
        assert_eq!(b.owner_gid, 100);
        assert_eq!(b.entry("ram"), Some(&e));
        assert_eq!(b.seal_flags, SealFlags::empty());
        info.seal_flags = FDBOX_SEAL_PREVIOUS | 0x80;
        let b = BoxInfo::from_raw(&info, &[]);
        assert!(b.seal_flags.contains(SealFlags::PREVIOUS));
        // A flag of a newer kernel is kept.
        assert_eq!(b.seal_flags.bits(), 0x81);
        assert_eq!(b.entry("disk"), None);
        let mut sum = fdbox_box_summary::default();
        sum.name[..3].copy_from_slice(&[b'v' as _, b'm' as _, b'1' as _]);
        sum.direction = FDBOX_DIR_OUTGOING;
        sum.state = FDBOX_BOX_SEALED;
        sum.owner_uid = 1000;
        sum.owner_gid = 100;
        sum.n_entries = 2;
        assert_eq!(
            BoxSummary::from(&sum),
            BoxSummary {
                name: "vm1".into(),
                direction: Direction::Outgoing,
                state: BoxState::Sealed,
                owner_uid: 1000,
                owner_gid: 100,
                n_entries: 2,
            }
        );
    }
}

/// What [`crate::Device::settle_fd`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    /// Only counts the folios that a hand-over would have to move.
    Count,
    /// Moves them out of KHO scratch and `ZONE_MOVABLE` now.
    Now,
    /// Allocates the file's future memory outside them.
    Future,
    /// Both.
    NowAndFuture,
}

/// What [`crate::Device::settle_fd`] found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// Folios that were in KHO scratch or `ZONE_MOVABLE` when the call began.
    pub unsettled: u64,
    /// How many of them were moved out.
    pub migrated: u64,
}
