/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * FDBox: name file descriptors, carry them across a kexec with Kexec HandOver,
 * and get them back by name in the next kernel.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#ifndef _UAPI_LINUX_FDBOX_H
#define _UAPI_LINUX_FDBOX_H

#include <linux/ioctl.h>
#include <linux/types.h>

/**
 * DOC: FDBox user API
 *
 * ``/dev/fdbox`` (mode 0600, root only, by default; opening it without
 * permission fails with %EACCES) creates and opens boxes. A box is a
 * named set of entries; each entry is a file descriptor, named within its box,
 * whose file type a handler module can preserve (memfd, iommufd, VFIO, ...).
 * Every box is handled through its own file descriptor, the *box fd*.
 *
 * Outgoing (before the kexec): %FDBOX_CREATE_BOX, then %FDBOX_BOX_ADD for
 * each file, then %FDBOX_BOX_SEAL. Closing the box fd before the seal discards
 * the box and gives every file back untouched. A sealed box belongs to the
 * kernel and survives the exit of every process; %FDBOX_BOX_CANCEL unseals it.
 *
 * Incoming (after the kexec): %FDBOX_OPEN_BOX with %FDBOX_OPEN_INCOMING, then
 * %FDBOX_BOX_RETRIEVE once per entry. %FDBOX_BOX_DISCARD frees what is not
 * retrieved at once. Closing an incoming box fd changes nothing, so that
 * inspecting a box is harmless; a box whose entries are all retrieved or
 * discarded is released when its last box fd closes.
 *
 * Every ioctl takes a pointer to a struct whose first field, @size, is the
 * size userspace knows. A smaller size than the first version of the struct
 * fails with %EINVAL; bytes beyond the size the kernel knows must be zero, or
 * the call fails with %E2BIG. All ``__reserved`` fields and unknown flags must
 * be zero (%EINVAL). A failed call changes nothing, with one exception: when
 * %FDBOX_BOX_RETRIEVE fails, dependencies it restored on the way stay
 * restored, ready to be retrieved, and an entry whose handler failed to
 * restore it is unavailable from then on, unless the handler failed with
 * %EACCES, %EBUSY, %ENOSPC or %EINTR, which leave it restorable.
 *
 * Box names are per owner: every uid has its own outgoing and incoming box
 * names, so no user can take a name another user's VMM expects. A box is
 * owned by the effective uid that created it, and keeps that owner across the
 * kexec. %FDBOX_OPEN_BOX opens the caller's own box; with %FDBOX_OPEN_OWNER a
 * %CAP_SYS_ADMIN caller opens another uid's.
 *
 * Each uid may hold at most so many boxes, entries and sealed payload bytes
 * (module parameters of fdbox_core: user_max_boxes, user_max_entries,
 * user_max_payload_bytes, and root_max_* for uid 0); past them a call fails
 * with %EDQUOT. The other uids together leave root_reserved_boxes of the box
 * table to root. A box is charged to its owner, also while it is incoming.
 *
 * Names are 1 to %FDBOX_NAME_LEN - 1 bytes of UTF-8 without NUL, stored in a
 * %FDBOX_NAME_LEN byte array, NUL-terminated and zero-padded (%EINVAL
 * otherwise).
 *
 * Errors common to all commands: %ENOTTY (unknown command), %EFAULT, %EINVAL
 * (bad field), %E2BIG (non-zero unknown tail), %ENOENT (unknown name),
 * %EEXIST (duplicate name), %EPERM (not the box's owner and no
 * %CAP_SYS_ADMIN), %EBUSY (wrong state), %EOPNOTSUPP (no handler for this
 * file type), %EBADF (not an open file descriptor), %ENOSPC (a limit below
 * is reached), %EDQUOT (a limit of the box owner is reached), %EINTR (killed
 * while waiting for a box another call is using), %ENOMEM, %EMFILE, %ENODEV
 * (the handler's module is being unloaded). Errors of a handler (%EIO, ...) and of KHO pass through
 * unchanged.
 */

/* The ioctl type byte; see Documentation/userspace-api/ioctl/ioctl-number.rst */
#define FDBOX_IOCTL_TYPE 0xBB

/* Longest name, including its terminating NUL. */
#define FDBOX_NAME_LEN 64
/* Longest handler compatible string, including its terminating NUL. */
#define FDBOX_COMPATIBLE_LEN 64
/* Most boxes, outgoing and incoming together. */
#define FDBOX_MAX_BOXES 1024
/* Most entries in one box. */
#define FDBOX_MAX_ENTRIES 16384

/* The ioctl numbers, _IO(FDBOX_IOCTL_TYPE, FDBOX_CMD_*). */
enum fdbox_cmd {
	FDBOX_CMD_BASE = 0x00,
	FDBOX_CMD_GET_CAPS = FDBOX_CMD_BASE,
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
};

/**
 * enum fdbox_direction - which side of the kexec a box is on
 * @FDBOX_DIR_OUTGOING: created in this kernel, to be handed to the next one
 * @FDBOX_DIR_INCOMING: handed over by the previous kernel
 */
enum fdbox_direction {
	FDBOX_DIR_OUTGOING = 0,
	FDBOX_DIR_INCOMING = 1,
};

/**
 * enum fdbox_box_state - the state of a box
 * @FDBOX_BOX_OPEN: outgoing, being filled; discarded when its fd closes
 * @FDBOX_BOX_SEALED: outgoing, sealed; handed over at the next kexec
 * @FDBOX_BOX_INCOMING: incoming; its entries can be retrieved
 */
enum fdbox_box_state {
	FDBOX_BOX_OPEN = 0,
	FDBOX_BOX_SEALED = 1,
	FDBOX_BOX_INCOMING = 2,
};

/**
 * enum fdbox_entry_state - the state of an entry
 * @FDBOX_ENTRY_PREPARED: outgoing; the handler prepared the file
 * @FDBOX_ENTRY_SEALED: outgoing; serialized into the hand-over
 * @FDBOX_ENTRY_RESTORABLE: incoming; can be retrieved
 * @FDBOX_ENTRY_UNAVAILABLE: incoming; can't be restored, see the reason
 * @FDBOX_ENTRY_RETRIEVED: incoming; handed to userspace
 * @FDBOX_ENTRY_DISCARDED: incoming; discarded, its memory freed by its
 *	handler (without a handler that reads it, the memory stays reserved
 *	until the next kexec, and the kernel logs a warning)
 */
enum fdbox_entry_state {
	FDBOX_ENTRY_PREPARED = 0,
	FDBOX_ENTRY_SEALED = 1,
	FDBOX_ENTRY_RESTORABLE = 2,
	FDBOX_ENTRY_UNAVAILABLE = 3,
	FDBOX_ENTRY_RETRIEVED = 4,
	FDBOX_ENTRY_DISCARDED = 5,
};

/**
 * enum fdbox_reason - why an incoming entry is unavailable
 * @FDBOX_REASON_NONE: the entry is not unavailable
 * @FDBOX_REASON_NO_HANDLER: no handler with the entry's compatible string is
 *	registered; it becomes restorable when one registers
 * @FDBOX_REASON_VERSION: the handler doesn't read this payload version
 * @FDBOX_REASON_CORRUPT: the entry's record is corrupt: it doesn't decode, or
 *	names memory it can't own (outside RAM, at another page size, named
 *	twice in the hand-over); decided when the hand-over is taken over
 * @FDBOX_REASON_DEPENDENCY: an entry it depends on is unavailable or
 *	discarded
 * @FDBOX_REASON_RESTORE_FAILED: the handler failed to restore it
 */
enum fdbox_reason {
	FDBOX_REASON_NONE = 0,
	FDBOX_REASON_NO_HANDLER = 1,
	FDBOX_REASON_VERSION = 2,
	FDBOX_REASON_CORRUPT = 3,
	FDBOX_REASON_DEPENDENCY = 4,
	FDBOX_REASON_RESTORE_FAILED = 5,
};

/**
 * enum fdbox_incoming - what the previous kernel handed over
 * @FDBOX_INCOMING_NONE: nothing (a cold boot, or no box was sealed)
 * @FDBOX_INCOMING_OK: a blob was decoded; its boxes are listed
 * @FDBOX_INCOMING_UNUSABLE: a blob was found but is unusable; the kernel log
 *	and debugfs say why
 */
enum fdbox_incoming {
	FDBOX_INCOMING_NONE = 0,
	FDBOX_INCOMING_OK = 1,
	FDBOX_INCOMING_UNUSABLE = 2,
};

/**
 * struct fdbox_handler_info - one registered handler
 * @compatible: the handler's compatible string, NUL-terminated
 * @version: the payload version the handler writes
 * @min_version: the oldest payload version the handler restores
 * @__reserved: zero; room for later fields
 */
struct fdbox_handler_info {
	char compatible[FDBOX_COMPATIBLE_LEN];
	__u32 version;
	__u32 min_version;
	__u64 __reserved;
};

/**
 * struct fdbox_get_caps - argument of %FDBOX_GET_CAPS
 * @size: sizeof(struct fdbox_get_caps)
 * @flags: zero
 * @format_major: out: the blob format major version this kernel writes
 * @format_minor: out: the blob format minor version this kernel writes
 * @format_read_min: out: the oldest format major version this kernel reads
 * @format_read_max: out: the newest format major version this kernel reads
 * @incoming: out: an &enum fdbox_incoming
 * @n_handlers: in: the length of the @handlers array; out: the number of
 *	registered handlers (at most @n_handlers are written)
 * @handlers: user pointer to an array of &struct fdbox_handler_info
 * @max_boxes: out: %FDBOX_MAX_BOXES
 * @max_entries: out: %FDBOX_MAX_ENTRIES
 *
 * Reports what this kernel can preserve and restore, so that a box can be
 * checked against the next kernel before the kexec.
 */
struct fdbox_get_caps {
	__u32 size;
	__u32 flags;
	__u16 format_major;
	__u16 format_minor;
	__u16 format_read_min;
	__u16 format_read_max;
	__u32 incoming;
	__u32 n_handlers;
	__aligned_u64 handlers;
	__u32 max_boxes;
	__u32 max_entries;
};
#define FDBOX_GET_CAPS _IO(FDBOX_IOCTL_TYPE, FDBOX_CMD_GET_CAPS)

/**
 * struct fdbox_create_box - argument of %FDBOX_CREATE_BOX
 * @size: sizeof(struct fdbox_create_box)
 * @flags: zero
 * @name: the new box's name, unique among the caller's outgoing boxes
 * @box_fd: out: the box fd, %O_CLOEXEC
 * @__reserved: zero
 *
 * Creates an open outgoing box owned by the caller's effective uid.
 * %EEXIST if the caller has an outgoing box of that name, %EDQUOT past the
 * caller's limit of boxes, %ENOSPC if the box table (%FDBOX_MAX_BOXES) has
 * no room left for the caller.
 */
struct fdbox_create_box {
	__u32 size;
	__u32 flags;
	char name[FDBOX_NAME_LEN];
	__s32 box_fd;
	__u32 __reserved;
};
#define FDBOX_CREATE_BOX _IO(FDBOX_IOCTL_TYPE, FDBOX_CMD_CREATE_BOX)

/* Flags of struct fdbox_open_box; exactly one of the first two must be set. */
#define FDBOX_OPEN_OUTGOING (1U << 0)
#define FDBOX_OPEN_INCOMING (1U << 1)
/* Open the box of @owner_uid rather than the caller's own. */
#define FDBOX_OPEN_OWNER (1U << 2)

/**
 * struct fdbox_open_box - argument of %FDBOX_OPEN_BOX
 * @size: sizeof(struct fdbox_open_box)
 * @flags: %FDBOX_OPEN_OUTGOING or %FDBOX_OPEN_INCOMING, and optionally
 *	%FDBOX_OPEN_OWNER
 * @name: the box's name
 * @box_fd: out: the box fd, %O_CLOEXEC
 * @owner_uid: with %FDBOX_OPEN_OWNER, the owner's uid in the caller's user
 *	namespace; zero otherwise
 *
 * Opens an existing box of the caller's effective uid, or of @owner_uid: an
 * outgoing box (to inspect, seal or cancel it) or an incoming box. %ENOENT if
 * that owner has none by that name; %EPERM if @owner_uid is not the caller's
 * and the caller lacks %CAP_SYS_ADMIN. A box may have several box fds; an
 * open outgoing box is discarded when the last one closes.
 */
struct fdbox_open_box {
	__u32 size;
	__u32 flags;
	char name[FDBOX_NAME_LEN];
	__s32 box_fd;
	__u32 owner_uid;
};
#define FDBOX_OPEN_BOX _IO(FDBOX_IOCTL_TYPE, FDBOX_CMD_OPEN_BOX)

/**
 * struct fdbox_box_summary - one box in %FDBOX_LIST_BOXES
 * @name: the box's name, NUL-terminated
 * @direction: an &enum fdbox_direction
 * @state: an &enum fdbox_box_state
 * @owner_uid: the owner's uid, in the caller's user namespace
 * @n_entries: the number of entries
 * @owner_gid: the owner's gid, in the caller's user namespace
 * @__reserved: zero; room for later fields
 */
struct fdbox_box_summary {
	char name[FDBOX_NAME_LEN];
	__u32 direction;
	__u32 state;
	__u32 owner_uid;
	__u32 n_entries;
	__u32 owner_gid;
	__u32 __reserved[3];
};

/**
 * struct fdbox_list_boxes - argument of %FDBOX_LIST_BOXES
 * @size: sizeof(struct fdbox_list_boxes)
 * @flags: zero
 * @n_boxes: in: the length of the @boxes array; out: the number of boxes
 *	(at most @n_boxes are written)
 * @__reserved: zero
 * @boxes: user pointer to an array of &struct fdbox_box_summary
 */
struct fdbox_list_boxes {
	__u32 size;
	__u32 flags;
	__u32 n_boxes;
	__u32 __reserved;
	__aligned_u64 boxes;
};
#define FDBOX_LIST_BOXES _IO(FDBOX_IOCTL_TYPE, FDBOX_CMD_LIST_BOXES)

/* Flags of &struct fdbox_settle_fd. */
/* Move the file's memory out of KHO scratch and ZONE_MOVABLE now. */
#define FDBOX_SETTLE_NOW (1U << 0)
/* Allocate the file's future memory outside them. */
#define FDBOX_SETTLE_FUTURE (1U << 1)

/**
 * struct fdbox_settle_fd - argument of %FDBOX_SETTLE_FD
 * @size: sizeof(struct fdbox_settle_fd)
 * @flags: %FDBOX_SETTLE_NOW, %FDBOX_SETTLE_FUTURE, or both; zero only
 *	counts
 * @fd: the file, open for writing
 * @__reserved: zero
 * @unsettled: out: how many of its folios were in KHO scratch or
 *	ZONE_MOVABLE when the call began
 * @migrated: out: how many of them %FDBOX_SETTLE_NOW moved out
 *
 * Memory in KHO scratch or ZONE_MOVABLE can't be handed over where it is:
 * %FDBOX_BOX_ADD migrates it, and that migration is slow and falls inside
 * the VMM's blackout. A VMM settles its guest RAM ahead of time instead, any
 * time before %FDBOX_BOX_ADD, typically right after it creates the memfd
 * (%FDBOX_SETTLE_FUTURE) and again before the update (%FDBOX_SETTLE_NOW).
 * Future memory is then allocated as unmovable: compaction can't move it,
 * which suits guest RAM that is pinned for device DMA anyway.
 *
 * %EOPNOTSUPP if the file's handler has no such notion, %EBADF if @fd is not
 * open for writing, %EBUSY if the file is in a box; %EINTR if killed while
 * waiting for the file. A failed %FDBOX_SETTLE_NOW leaves every folio
 * valid, some of them moved.
 */
struct fdbox_settle_fd {
	__u32 size;
	__u32 flags;
	__s32 fd;
	__u32 __reserved;
	__u64 unsettled;
	__u64 migrated;
};
#define FDBOX_SETTLE_FD _IO(FDBOX_IOCTL_TYPE, FDBOX_CMD_SETTLE_FD)

/**
 * struct fdbox_box_add - argument of %FDBOX_BOX_ADD
 * @size: sizeof(struct fdbox_box_add)
 * @flags: zero
 * @fd: the file descriptor to preserve
 * @__reserved: zero
 * @name: the entry's name, unique in the box
 *
 * Prepares @fd for preservation through the handler of its file type. Some
 * handlers freeze the file (a memfd can't change size) until the box is
 * discarded or the entry removed. %EBUSY unless the box is open, %EBADF for
 * a bad @fd, %EOPNOTSUPP if no handler takes the file (box fds and
 * ``/dev/fdbox`` never are), %EEXIST if the name or the file is in a box
 * already, %ENOSPC past %FDBOX_MAX_ENTRIES, %EDQUOT past the box owner's
 * limit of entries.
 */
struct fdbox_box_add {
	__u32 size;
	__u32 flags;
	__s32 fd;
	__u32 __reserved;
	char name[FDBOX_NAME_LEN];
};
#define FDBOX_BOX_ADD _IO(FDBOX_IOCTL_TYPE, FDBOX_CMD_BOX_ADD)

/**
 * struct fdbox_box_remove - argument of %FDBOX_BOX_REMOVE
 * @size: sizeof(struct fdbox_box_remove)
 * @flags: zero
 * @name: the entry to remove
 *
 * Undoes %FDBOX_BOX_ADD: the file is exactly as it was before. %EBUSY unless
 * the box is open or if another entry depends on this one.
 */
struct fdbox_box_remove {
	__u32 size;
	__u32 flags;
	char name[FDBOX_NAME_LEN];
};
#define FDBOX_BOX_REMOVE _IO(FDBOX_IOCTL_TYPE, FDBOX_CMD_BOX_REMOVE)

/* Write each entry at its handler's previous payload version: see below. */
#define FDBOX_SEAL_PREVIOUS (1U << 0)

/**
 * struct fdbox_box_seal - argument of %FDBOX_BOX_SEAL
 * @size: sizeof(struct fdbox_box_seal)
 * @flags: %FDBOX_SEAL_* flags
 *
 * Serializes every entry and hands the box over to the next kernel. Either
 * every entry is sealed, or none is and the box stays open with its entries
 * as they were. A sealed box survives the closing of its fd. %EBUSY unless
 * the box is open, or once a kexec or reboot has started (the hand-over is
 * then final: a kexec hands over the state before or after each SEAL and
 * CANCEL, never a mix); %ENOENT if an entry depends on a file that isn't in the
 * box; %ELOOP if dependencies form a cycle; %ENOSPC if an entry's payload
 * would exceed 1 GiB, or the box's own records a KHO block (4 MiB on x86-64);
 * %EDQUOT past the box owner's limit of payload bytes;
 * %EOPNOTSUPP if KHO is off (the kernel was booted without ``kho=on``),
 * or with %FDBOX_SEAL_PREVIOUS if an entry's handler can't write an older
 * version of its payload; %EPROTO with %FDBOX_SEAL_PREVIOUS if a handler
 * wrote a newer version than that anyway (a handler bug).
 *
 * %FDBOX_SEAL_PREVIOUS is for a rollback to a kernel one version behind:
 * each entry is written at most at its handler's previous payload version
 * (&fdbox_handler_info.version minus one) rather than at the current one.
 * ``fdbox check`` says when a target kernel needs it. %FDBOX_BOX_INFO
 * reports the flags a box was sealed with.
 */
struct fdbox_box_seal {
	__u32 size;
	__u32 flags;
};
#define FDBOX_BOX_SEAL _IO(FDBOX_IOCTL_TYPE, FDBOX_CMD_BOX_SEAL)

/**
 * struct fdbox_box_cancel - argument of %FDBOX_BOX_CANCEL
 * @size: sizeof(struct fdbox_box_cancel)
 * @flags: zero
 *
 * Unseals a sealed box: it is no longer handed over, and is open again, so
 * that closing its fd gives every file back. %EBUSY unless the box is sealed,
 * or once a kexec or reboot has started.
 */
struct fdbox_box_cancel {
	__u32 size;
	__u32 flags;
};
#define FDBOX_BOX_CANCEL _IO(FDBOX_IOCTL_TYPE, FDBOX_CMD_BOX_CANCEL)

/**
 * struct fdbox_box_retrieve - argument of %FDBOX_BOX_RETRIEVE
 * @size: sizeof(struct fdbox_box_retrieve)
 * @flags: zero
 * @name: the entry to retrieve
 * @fd: out: the restored file descriptor, %O_CLOEXEC
 * @__reserved: zero
 *
 * Restores an incoming entry, after the entries it depends on, and installs
 * it. Each entry is retrieved once: a second retrieve fails with %EBUSY.
 * %EBUSY on an outgoing box; %ENOENT for an unknown name; %ENODATA if the
 * entry is unavailable (%FDBOX_BOX_INFO gives the reason). A handler's
 * %EACCES (this caller may not have the file), %EBUSY (something the file
 * needs is taken), %ENOSPC (the caller's hugetlb pool or limits can't take
 * the file's pages now) or %EINTR (the caller was killed first) leaves the
 * entry restorable: %FDBOX_BOX_INFO tells that %EBUSY from a retrieved one.
 */
struct fdbox_box_retrieve {
	__u32 size;
	__u32 flags;
	char name[FDBOX_NAME_LEN];
	__s32 fd;
	__u32 __reserved;
};
#define FDBOX_BOX_RETRIEVE _IO(FDBOX_IOCTL_TYPE, FDBOX_CMD_BOX_RETRIEVE)

/* Flag of struct fdbox_box_discard: every entry not retrieved yet. */
#define FDBOX_DISCARD_ALL (1U << 0)

/**
 * struct fdbox_box_discard - argument of %FDBOX_BOX_DISCARD
 * @size: sizeof(struct fdbox_box_discard)
 * @flags: zero, or %FDBOX_DISCARD_ALL
 * @name: the entry to discard; all zero with %FDBOX_DISCARD_ALL
 *
 * Frees the preserved state and memory of incoming entries now, rather than
 * at the next kexec. An entry restored only as a dependency of a retrieved
 * one is dropped too. %EBUSY on an outgoing box, or for an entry already
 * retrieved or discarded.
 */
struct fdbox_box_discard {
	__u32 size;
	__u32 flags;
	char name[FDBOX_NAME_LEN];
};
#define FDBOX_BOX_DISCARD _IO(FDBOX_IOCTL_TYPE, FDBOX_CMD_BOX_DISCARD)

/**
 * struct fdbox_entry_info - one entry in %FDBOX_BOX_INFO
 * @name: the entry's name, NUL-terminated
 * @compatible: its handler's compatible string, NUL-terminated
 * @version: its payload version
 * @state: an &enum fdbox_entry_state
 * @reason: an &enum fdbox_reason
 * @n_deps: how many entries it depends on
 * @__reserved: zero; room for later fields
 */
struct fdbox_entry_info {
	char name[FDBOX_NAME_LEN];
	char compatible[FDBOX_COMPATIBLE_LEN];
	__u32 version;
	__u32 state;
	__u32 reason;
	__u32 n_deps;
	__u64 __reserved[2];
};

/**
 * struct fdbox_box_info - argument of %FDBOX_BOX_INFO
 * @size: sizeof(struct fdbox_box_info)
 * @flags: zero
 * @name: out: the box's name
 * @direction: out: an &enum fdbox_direction
 * @state: out: an &enum fdbox_box_state
 * @owner_uid: out: the owner's uid, in the caller's user namespace
 * @n_entries: in: the length of the @entries array; out: the number of
 *	entries (at most @n_entries are written)
 * @entries: user pointer to an array of &struct fdbox_entry_info
 * @owner_gid: out: the owner's gid, in the caller's user namespace
 * @seal_flags: out: the %FDBOX_SEAL_* flags of a sealed box's SEAL; zero
 *	for an open or incoming box (ignored on input)
 */
struct fdbox_box_info {
	__u32 size;
	__u32 flags;
	char name[FDBOX_NAME_LEN];
	__u32 direction;
	__u32 state;
	__u32 owner_uid;
	__u32 n_entries;
	__aligned_u64 entries;
	__u32 owner_gid;
	__u32 seal_flags;
};
#define FDBOX_BOX_INFO _IO(FDBOX_IOCTL_TYPE, FDBOX_CMD_BOX_INFO)

#endif /* _UAPI_LINUX_FDBOX_H */
