// SPDX-License-Identifier: GPL-2.0 OR MIT

//! How the subcommands that drive `/dev/fdbox` show what the kernel
//! reports: tables for people, JSON for scripts.
//!
//! Every JSON document is one object with `"schema": 1`. Schema 1 is
//! stable: fields may be added, none renamed or removed without bumping it.
//! States, directions and reasons are the lowercase names `fdbox ls`
//! prints; a value this tool doesn't know shows as `"unknown(N)"`.
//!
//! ```text
//! box   = { "name": "vm0", "direction": "outgoing" | "incoming",
//!           "state": "open" | "sealed" | "incoming", "owner_uid": 0,
//!           "owner_gid": 0, "entries": [ entry ],
//!           "seal_previous": false }
//! entry = { "name": "ram", "compatible": "memfd", "version": 1,
//!           "state": "prepared" | "sealed" | "restorable" | "unavailable"
//!                  | "retrieved" | "discarded",
//!           "reason": null | "no handler" | "unsupported version" | "corrupt"
//!                   | "dependency unavailable" | "restore failed",
//!           "n_deps": 0, "state_detail": null | "..." }
//! ```
//!
//! `seal_previous` is true for a box sealed with `FDBOX_SEAL_PREVIOUS`
//! (`fdbox seal --previous`): its entries are written at their handlers'
//! previous payload versions. `state_detail` says in words why an
//! unavailable entry is (`fdbox ls BOX` only; `null` elsewhere). It is not
//! named `detail`: `fdbox ls` sorts the keys, and the selftests match the
//! keys from `compatible` to `state` as they follow each other.

use fdbox::{
    BoxInfo,
    BoxSummary,
    Caps,
    EntryInfo,
    SealFlags, //
};
use serde::Serialize;

use crate::device::show;
use crate::exit::{
    Code,
    Failure,
    Result, //
};
use crate::table::Table;

/// The `schema` of every JSON document.
pub const SCHEMA: u32 = 1;

/// One box in `fdbox ls`.
#[derive(Clone, Debug, Serialize)]
pub struct SummaryJson {
    /// The box's name.
    pub name: String,
    /// `outgoing` or `incoming`.
    pub direction: String,
    /// `open`, `sealed` or `incoming`.
    pub state: String,
    /// The owner's uid.
    pub owner_uid: u32,
    /// The owner's gid.
    pub owner_gid: u32,
    /// The number of entries.
    pub n_entries: u32,
}

impl From<&BoxSummary> for SummaryJson {
    fn from(b: &BoxSummary) -> Self {
        SummaryJson {
            name: b.name.clone(),
            direction: b.direction.to_string(),
            state: b.state.to_string(),
            owner_uid: b.owner_uid,
            owner_gid: b.owner_gid,
            n_entries: b.n_entries,
        }
    }
}

/// A box with its entries.
#[derive(Clone, Debug, Serialize)]
pub struct BoxJson {
    /// The box's name.
    pub name: String,
    /// `outgoing` or `incoming`.
    pub direction: String,
    /// `open`, `sealed` or `incoming`.
    pub state: String,
    /// The owner's uid.
    pub owner_uid: u32,
    /// The owner's gid.
    pub owner_gid: u32,
    /// The entries.
    pub entries: Vec<EntryJson>,
    /// Whether it was sealed with previous payload versions.
    pub seal_previous: bool,
}

impl BoxJson {
    /// The box `b`, its unavailable entries explained with this kernel's
    /// `caps`.
    pub fn with_caps(b: &BoxInfo, caps: &Caps) -> Self {
        let mut json = BoxJson::from(b);
        for (j, e) in json.entries.iter_mut().zip(&b.entries) {
            j.state_detail = e.explain(caps);
        }
        json
    }
}

impl From<&BoxInfo> for BoxJson {
    fn from(b: &BoxInfo) -> Self {
        BoxJson {
            name: b.name.clone(),
            direction: b.direction.to_string(),
            state: b.state.to_string(),
            owner_uid: b.owner_uid,
            owner_gid: b.owner_gid,
            entries: b.entries.iter().map(EntryJson::from).collect(),
            seal_previous: b.seal_flags.contains(SealFlags::PREVIOUS),
        }
    }
}

/// One entry.
#[derive(Clone, Debug, Serialize)]
pub struct EntryJson {
    /// The entry's name.
    pub name: String,
    /// Its handler's compatible string.
    pub compatible: String,
    /// Its payload version.
    pub version: u32,
    /// Its state.
    pub state: String,
    /// Why it is unavailable, or `null`.
    pub reason: Option<String>,
    /// How many entries it depends on.
    pub n_deps: u32,
    /// Why it is unavailable, in words, or `null`.
    pub state_detail: Option<String>,
}

impl From<&EntryInfo> for EntryJson {
    fn from(e: &EntryInfo) -> Self {
        EntryJson {
            name: e.name.clone(),
            compatible: e.compatible.clone(),
            version: e.version,
            state: e.state.to_string(),
            reason: e.reason.map(|r| r.to_string()),
            n_deps: e.n_deps,
            state_detail: None,
        }
    }
}

/// `fdbox caps --json`.
#[derive(Clone, Debug, Serialize)]
pub struct CapsJson {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The blob format versions.
    pub format: FormatJson,
    /// What the previous kernel handed over: `none`, `ok` or `unusable`.
    pub incoming: String,
    /// The most boxes.
    pub max_boxes: u32,
    /// The most entries in one box.
    pub max_entries: u32,
    /// The registered handlers.
    pub handlers: Vec<HandlerJson>,
}

/// The blob format versions a kernel writes and reads.
#[derive(Clone, Debug, Serialize)]
pub struct FormatJson {
    /// The major version it writes.
    pub major: u16,
    /// The minor version it writes.
    pub minor: u16,
    /// The oldest major version it reads.
    pub read_min: u16,
    /// The newest major version it reads.
    pub read_max: u16,
}

/// One handler.
#[derive(Clone, Debug, Serialize)]
pub struct HandlerJson {
    /// Its compatible string.
    pub compatible: String,
    /// The payload version it writes.
    pub version: u32,
    /// The oldest payload version it restores.
    pub min_version: u32,
}

impl From<&Caps> for CapsJson {
    fn from(c: &Caps) -> Self {
        CapsJson {
            schema: SCHEMA,
            format: FormatJson {
                major: c.format_major,
                minor: c.format_minor,
                read_min: c.format_read_min,
                read_max: c.format_read_max,
            },
            incoming: c.incoming.to_string(),
            max_boxes: c.max_boxes,
            max_entries: c.max_entries,
            handlers: c
                .handlers
                .iter()
                .map(|h| HandlerJson {
                    compatible: h.compatible.clone(),
                    version: h.version,
                    min_version: h.min_version,
                })
                .collect(),
        }
    }
}

/// `--json` of a command whose report is one box (`seal`, `cancel`).
#[derive(Debug, Serialize)]
pub struct BoxReport {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The box afterwards.
    #[serde(rename = "box")]
    pub box_: BoxJson,
}

impl BoxReport {
    /// The report of `info`.
    pub fn new(info: &BoxInfo) -> Self {
        Self {
            schema: SCHEMA,
            box_: BoxJson::from(info),
        }
    }
}

/// Prints `value` as pretty JSON.
pub fn print_json(value: &impl Serialize) -> Result {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(Code::Io, format!("cannot format JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// An owner as `uid:gid`, as `fdbox inspect` shows it.
fn owner(uid: u32, gid: u32) -> String {
    format!("{uid}:{gid}")
}

/// The table of `fdbox ls`.
pub fn boxes_text(boxes: &[BoxSummary]) -> String {
    if boxes.is_empty() {
        return "no boxes\n".into();
    }
    let mut t = Table::new(&["BOX", "DIRECTION", "STATE", "OWNER", "ENTRIES"]);
    for b in boxes {
        t.row(vec![
            show(&b.name),
            b.direction.to_string(),
            b.state.to_string(),
            owner(b.owner_uid, b.owner_gid),
            b.n_entries.to_string(),
        ]);
    }
    t.render()
}

/// A box's header line and the table of its entries; with this kernel's
/// `caps`, a line in words for each unavailable entry.
pub fn box_text(b: &BoxInfo, caps: Option<&Caps>) -> String {
    let previous = if b.seal_flags.contains(SealFlags::PREVIOUS) {
        " (previous versions)"
    } else {
        ""
    };
    let mut out = format!(
        "box {}: {}, {}{previous}, owner {}, {} {}\n",
        show(&b.name),
        b.direction,
        b.state,
        owner(b.owner_uid, b.owner_gid),
        b.entries.len(),
        if b.entries.len() == 1 {
            "entry"
        } else {
            "entries"
        },
    );
    if b.entries.is_empty() {
        return out;
    }
    let mut t = Table::new(&["ENTRY", "HANDLER", "VERSION", "STATE", "DEPS", "REASON"]);
    for e in &b.entries {
        t.row(vec![
            show(&e.name),
            show(&e.compatible),
            e.version.to_string(),
            e.state.to_string(),
            e.n_deps.to_string(),
            e.reason.map_or("-".into(), |r| r.to_string()),
        ]);
    }
    out.push_str(&t.render());
    let details: Vec<String> = b
        .entries
        .iter()
        .filter_map(|e| Some(format!("{}: {}\n", show(&e.name), e.explain(caps?)?)))
        .collect();
    if !details.is_empty() {
        out.push('\n');
        out.push_str(&details.concat());
    }
    out
}

/// The text of `fdbox caps`.
pub fn caps_text(c: &Caps) -> String {
    let mut out = format!(
        "format    writes {}.{}, reads majors {} to {}\n\
         incoming  {}\n\
         limits    {} boxes, {} entries per box\n",
        c.format_major,
        c.format_minor,
        c.format_read_min,
        c.format_read_max,
        c.incoming,
        c.max_boxes,
        c.max_entries,
    );
    if c.handlers.is_empty() {
        out.push_str("handlers  none registered\n");
        return out;
    }
    let mut t = Table::new(&["HANDLER", "VERSION", "MIN_VERSION"]);
    for h in &c.handlers {
        t.row(vec![
            show(&h.compatible),
            h.version.to_string(),
            h.min_version.to_string(),
        ]);
    }
    out.push('\n');
    out.push_str(&t.render());
    out
}

#[cfg(test)]
pub mod tests {
    //! Values as the kernel reports them, built from the raw structs.

    use core::ffi::c_char;

    use fdbox::uapi;

    use super::*;

    /// `s` in a C `char` array.
    fn chars<const N: usize>(s: &str) -> [c_char; N] {
        let mut out = [0; N];
        for (o, b) in out.iter_mut().zip(s.bytes()) {
            *o = b as c_char;
        }
        out
    }

    /// An incoming box with a restorable and an unavailable entry.
    pub fn incoming_box() -> BoxInfo {
        let info = uapi::fdbox_box_info {
            name: chars("vm0"),
            direction: uapi::FDBOX_DIR_INCOMING,
            state: uapi::FDBOX_BOX_INCOMING,
            owner_uid: 1000,
            owner_gid: 100,
            ..Default::default()
        };
        let entries = [
            uapi::fdbox_entry_info {
                name: chars("ram"),
                compatible: chars("memfd"),
                version: 1,
                state: uapi::FDBOX_ENTRY_RESTORABLE,
                reason: uapi::FDBOX_REASON_NONE,
                n_deps: 0,
                __reserved: [0; 2],
            },
            uapi::fdbox_entry_info {
                name: chars("dev"),
                compatible: chars("vfio"),
                version: 3,
                state: uapi::FDBOX_ENTRY_UNAVAILABLE,
                reason: uapi::FDBOX_REASON_NO_HANDLER,
                n_deps: 1,
                __reserved: [0; 2],
            },
            uapi::fdbox_entry_info {
                name: chars("new"),
                compatible: chars("future"),
                version: 1,
                state: 42,
                reason: uapi::FDBOX_REASON_NONE,
                n_deps: 0,
                __reserved: [0; 2],
            },
        ];
        BoxInfo::from_raw(&info, &entries)
    }

    #[test]
    fn box_json_has_the_documented_shape() {
        let v = serde_json::to_value(BoxJson::from(&incoming_box())).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "name": "vm0",
                "direction": "incoming",
                "state": "incoming",
                "owner_uid": 1000,
                "owner_gid": 100,
                "entries": [
                    { "name": "ram", "compatible": "memfd", "version": 1,
                      "state": "restorable", "reason": null, "n_deps": 0,
                      "state_detail": null },
                    { "name": "dev", "compatible": "vfio", "version": 3,
                      "state": "unavailable", "reason": "no handler", "n_deps": 1,
                      "state_detail": null },
                    { "name": "new", "compatible": "future", "version": 1,
                      "state": "unknown(42)", "reason": null, "n_deps": 0,
                      "state_detail": null },
                ],
                "seal_previous": false,
            })
        );
        let v = serde_json::to_value(BoxJson::with_caps(&incoming_box(), &memfd_caps())).unwrap();
        assert_eq!(v["entries"][0]["state_detail"], serde_json::Value::Null);
        assert_eq!(
            v["entries"][1]["state_detail"],
            "the handler for vfio is not loaded (no module registered compatible vfio); it \
             becomes restorable once one does"
        );
    }

    /// The selftests match `fdbox ls --json`'s entries with patterns over
    /// the sorted keys from `compatible` to `state`: nothing may come
    /// between them.
    #[test]
    fn ls_json_keeps_the_keys_the_selftests_match_together() {
        let v = serde_json::to_value(BoxJson::with_caps(&incoming_box(), &memfd_caps())).unwrap();
        let flat = serde_json::to_string(&v["entries"][1]).unwrap();
        assert!(
            flat.contains(
                "\"compatible\":\"vfio\",\"n_deps\":1,\"name\":\"dev\",\"reason\":\"no handler\",\
                 \"state\":\"unavailable\""
            ),
            "{flat}"
        );
    }

    /// This kernel with a memfd handler writing 2 and reading 1 and 2.
    fn memfd_caps() -> Caps {
        let raw = uapi::fdbox_get_caps {
            format_major: 1,
            ..Default::default()
        };
        let handlers = [uapi::fdbox_handler_info {
            compatible: chars("memfd"),
            version: 2,
            min_version: 1,
            __reserved: 0,
        }];
        Caps::from_raw(&raw, &handlers)
    }

    #[test]
    fn summary_json_has_the_documented_shape() {
        let raw = uapi::fdbox_box_summary {
            name: chars("vm1"),
            direction: uapi::FDBOX_DIR_OUTGOING,
            state: uapi::FDBOX_BOX_SEALED,
            owner_uid: 0,
            owner_gid: 6,
            n_entries: 2,
            ..Default::default()
        };
        let v = serde_json::to_value(SummaryJson::from(&BoxSummary::from(&raw))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "name": "vm1", "direction": "outgoing", "state": "sealed",
                "owner_uid": 0, "owner_gid": 6, "n_entries": 2,
            })
        );
    }

    #[test]
    fn caps_json_has_the_documented_shape() {
        let raw = uapi::fdbox_get_caps {
            format_major: 1,
            format_read_min: 1,
            format_read_max: 1,
            incoming: uapi::FDBOX_INCOMING_OK,
            n_handlers: 1,
            max_boxes: uapi::FDBOX_MAX_BOXES,
            max_entries: uapi::FDBOX_MAX_ENTRIES,
            ..Default::default()
        };
        let handlers = [uapi::fdbox_handler_info {
            compatible: chars("memfd"),
            version: 2,
            min_version: 1,
            __reserved: 0,
        }];
        let caps = Caps::from_raw(&raw, &handlers);
        let v = serde_json::to_value(CapsJson::from(&caps)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "schema": 1,
                "format": { "major": 1, "minor": 0, "read_min": 1, "read_max": 1 },
                "incoming": "ok",
                "max_boxes": 1024,
                "max_entries": 16384,
                "handlers": [ { "compatible": "memfd", "version": 2, "min_version": 1 } ],
            })
        );
        let text = caps_text(&caps);
        assert!(text.contains("writes 1.0, reads majors 1 to 1"), "{text}");
        assert!(text.contains("memfd    2        1"), "{text}");
    }

    #[test]
    fn box_text_shows_states_and_reasons() {
        let table = "box vm0: incoming, incoming, owner 1000:100, 3 entries\n\
                     ENTRY  HANDLER  VERSION  STATE        DEPS  REASON\n\
                     ram    memfd    1        restorable   0     -\n\
                     dev    vfio     3        unavailable  1     no handler\n\
                     new    future   1        unknown(42)  0     -\n";
        assert_eq!(box_text(&incoming_box(), None), table);
        assert_eq!(
            box_text(&incoming_box(), Some(&memfd_caps())),
            format!(
                "{table}\n\
                 dev: the handler for vfio is not loaded (no module registered compatible \
                 vfio); it becomes restorable once one does\n"
            )
        );
    }

    #[test]
    fn box_text_says_a_box_was_sealed_with_previous_versions() {
        let info = uapi::fdbox_box_info {
            name: chars("vm0"),
            direction: uapi::FDBOX_DIR_OUTGOING,
            state: uapi::FDBOX_BOX_SEALED,
            seal_flags: uapi::FDBOX_SEAL_PREVIOUS,
            ..Default::default()
        };
        let b = BoxInfo::from_raw(&info, &[]);
        assert_eq!(
            box_text(&b, None),
            "box vm0: outgoing, sealed (previous versions), owner 0:0, 0 entries\n"
        );
        assert_eq!(
            serde_json::to_value(BoxJson::from(&b)).unwrap()["seal_previous"],
            true
        );
    }

    #[test]
    fn boxes_text_is_a_table() {
        assert_eq!(boxes_text(&[]), "no boxes\n");
        let raw = uapi::fdbox_box_summary {
            name: chars("vm1"),
            direction: uapi::FDBOX_DIR_OUTGOING,
            state: uapi::FDBOX_BOX_OPEN,
            owner_uid: 0,
            owner_gid: 6,
            n_entries: 2,
            ..Default::default()
        };
        assert_eq!(
            boxes_text(&[BoxSummary::from(&raw)]),
            "BOX  DIRECTION  STATE  OWNER  ENTRIES\n\
             vm1  outgoing   open   0:6    2\n"
        );
    }
}
