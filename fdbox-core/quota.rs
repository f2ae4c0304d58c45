// SPDX-License-Identifier: GPL-2.0

//! Per-user limits: what each uid's boxes may hold, so that no user can exhaust FDBox for the
//! others, before or after a kexec.
//!
//! Each uid (of the initial user namespace) is charged for the boxes it owns, their entries and
//! their sealed payload bytes. The limits are module parameters (`fdbox_core_c.c`); root has its
//! own, and the other users together leave `root_reserved_boxes` of the box table free, so that
//! no unprivileged user can starve root. A limit reached is `EDQUOT`; the table full is
//! `ENOSPC`.

use crate::uapi::FDBOX_MAX_BOXES;
use kernel::prelude::*;

extern "C" {
    fn fdbox_limit_boxes(root: bool) -> u32;
    fn fdbox_limit_entries(root: bool) -> u32;
    fn fdbox_limit_payload_bytes(root: bool) -> u64;
    fn fdbox_root_reserved_boxes() -> u32;
}

/// What one uid holds, or what one charge adds.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Boxes, outgoing and incoming.
    pub(crate) boxes: u32,
    /// Entries of those boxes.
    pub(crate) entries: u32,
    /// Sealed payload bytes (outgoing), and the payload bytes an incoming box arrived with,
    /// until it is released.
    pub(crate) bytes: u64,
}

impl Usage {
    fn add(&mut self, other: &Usage) {
        self.boxes = self.boxes.saturating_add(other.boxes);
        self.entries = self.entries.saturating_add(other.entries);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }

    fn sub(&mut self, other: &Usage) {
        self.boxes = self.boxes.saturating_sub(other.boxes);
        self.entries = self.entries.saturating_sub(other.entries);
        self.bytes = self.bytes.saturating_sub(other.bytes);
    }

    fn is_zero(&self) -> bool {
        *self == Usage::default()
    }
}

/// The limits of `uid`, read at each charge so that a changed parameter applies at once.
fn limits(uid: u32) -> Usage {
    let root = uid == 0;
    // SAFETY: No requirements; the getters read module parameters.
    unsafe {
        Usage {
            boxes: fdbox_limit_boxes(root),
            entries: fdbox_limit_entries(root),
            bytes: fdbox_limit_payload_bytes(root),
        }
    }
}

/// Every uid's usage. Under the table lock.
pub(crate) struct Quotas {
    /// The uids that hold anything; few, so a list.
    by_uid: KVec<(u32, Usage)>,
    /// The boxes of all uids but root.
    unprivileged_boxes: u32,
}

impl Quotas {
    /// Nothing charged.
    pub(crate) const fn new() -> Self {
        Self {
            by_uid: KVec::new(),
            unprivileged_boxes: 0,
        }
    }

    /// What `uid` holds.
    pub(crate) fn usage(&self, uid: u32) -> Usage {
        self.by_uid
            .iter()
            .find(|(u, _)| *u == uid)
            .map(|(_, usage)| *usage)
            .unwrap_or_default()
    }

    /// Charges `charge` to `uid` without looking at the limits: what the previous kernel
    /// handed over is taken over whatever it holds.
    pub(crate) fn force(&mut self, uid: u32, charge: &Usage) -> Result {
        if let Some((_, usage)) = self.by_uid.iter_mut().find(|(u, _)| *u == uid) {
            usage.add(charge);
        } else {
            self.by_uid.push((uid, *charge), GFP_KERNEL)?;
        }
        if uid != 0 {
            self.unprivileged_boxes = self.unprivileged_boxes.saturating_add(charge.boxes);
        }
        Ok(())
    }

    /// Charges `charge` to `uid`: `EDQUOT` past its limits, `ENOSPC` if it is a box and the
    /// table has no room for it (`boxes` boxes now).
    pub(crate) fn charge(&mut self, uid: u32, charge: &Usage, boxes: usize) -> Result {
        // CAST: A small constant.
        if charge.boxes > 0 && boxes >= FDBOX_MAX_BOXES as usize {
            return Err(ENOSPC);
        }
        let limit = limits(uid);
        let mut after = self.usage(uid);
        after.add(charge);
        // Only what is charged is checked: a uid over one limit (lowered since) can still
        // use what it holds within the others.
        let over = (charge.boxes > 0 && after.boxes > limit.boxes)
            || (charge.entries > 0 && after.entries > limit.entries)
            || (charge.bytes > 0 && after.bytes > limit.bytes);
        if over {
            return Err(EDQUOT);
        }
        // What is reserved for root is kept free of the other users' boxes.
        // SAFETY: No requirements; reads a module parameter.
        let reserve = unsafe { fdbox_root_reserved_boxes() }.min(FDBOX_MAX_BOXES);
        let others_full = uid != 0
            && charge.boxes > 0
            && self.unprivileged_boxes.saturating_add(charge.boxes)
                > FDBOX_MAX_BOXES.saturating_sub(reserve);
        if others_full {
            return Err(ENOSPC);
        }
        self.force(uid, charge)
    }

    /// Charges `bytes` of payload to `uid` (`EDQUOT` past its limit).
    pub(crate) fn charge_bytes(&mut self, uid: u32, bytes: usize) -> Result {
        let charge = Usage {
            // CAST: `usize` fits `u64`.
            bytes: bytes as u64,
            ..Usage::default()
        };
        self.charge(uid, &charge, 0)
    }

    /// Gives back what [`Quotas::charge_bytes`] took.
    pub(crate) fn uncharge_bytes(&mut self, uid: u32, bytes: usize) {
        let charge = Usage {
            // CAST: `usize` fits `u64`.
            bytes: bytes as u64,
            ..Usage::default()
        };
        self.uncharge(uid, &charge);
    }

    /// Gives back `charge`, charged to `uid` before.
    pub(crate) fn uncharge(&mut self, uid: u32, charge: &Usage) {
        if uid != 0 {
            self.unprivileged_boxes = self.unprivileged_boxes.saturating_sub(charge.boxes);
        }
        if let Some(i) = self.by_uid.iter().position(|(u, _)| *u == uid) {
            if let Some((_, usage)) = self.by_uid.get_mut(i) {
                usage.sub(charge);
                if usage.is_zero() {
                    let _ = self.by_uid.remove(i);
                }
            }
        }
    }

    /// Every uid that holds anything, with its usage.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(u32, Usage)> {
        self.by_uid.iter()
    }
}
