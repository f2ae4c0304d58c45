// SPDX-License-Identifier: GPL-2.0
/*
 * Single-boot selftests of the /dev/fdbox user API (uapi/linux/fdbox.h),
 * driven through fdbox_test.ko's "fdbox-test" files.
 *
 * Every ioctl's happy path, and every rejection with its errno and with
 * nothing changed: the failed calls are bracketed by two snapshots of every
 * box and entry (LIST_BOXES + BOX_INFO), which must be equal, by a count of
 * the open fds where one could have been installed, and by the test files'
 * own FDBOX_TEST_INFO where a handler could have been called.
 *
 * These run in the first boot, before the two-stage tests' stage 1, so each
 * test leaves no box behind: its teardown cancels its sealed boxes and
 * closes every fd, and the last test checks that no box is left at all.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "fdbox_common.h"

/* Every box these tests create starts with this; teardown looks for it. */
#define PREFIX "uapi-"
#define NFILES 6

FIXTURE(fdbox) {
	int dev;		/* /dev/fdbox */
	int box;		/* the test's box fds */
	int box2;
	int file[NFILES];	/* fdbox-test files, with distinct data */
};

FIXTURE_SETUP(fdbox)
{
	char data[32];
	int i;

	self->dev = -1;
	self->box = -1;
	self->box2 = -1;
	for (i = 0; i < NFILES; i++)
		self->file[i] = -1;

	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE(FDBOX_TEST_MODULE);
	self->dev = ASSERT_OK(fdbox_open_dev());
	for (i = 0; i < NFILES; i++) {
		snprintf(data, sizeof(data), "uapi file %d", i);
		self->file[i] = ASSERT_OK(fdbox_test_file(data, strlen(data)));
	}
}

/* Closes every fd but stdio and KEEP: what a test left open in locals. */
static void close_other_fds(int keep)
{
	int fds[1024], n = 0, fd, i;
	struct dirent *d;
	DIR *dir;

	dir = opendir("/proc/self/fd");
	if (!dir)
		return;
	while ((d = readdir(dir)) && n < (int)ARRAY_SIZE(fds)) {
		if (d->d_name[0] == '.')
			continue;
		fd = atoi(d->d_name);
		if (fd > 2 && fd != keep && fd != dirfd(dir))
			fds[n++] = fd;
	}
	closedir(dir);
	for (i = 0; i < n; i++)
		close(fds[i]);
}

FIXTURE_TEARDOWN(fdbox)
{
	int i, left;

	/* Sealed boxes outlive their fds: cancel them, then close. */
	if (self->dev >= 0)
		EXPECT_LE(0, fdbox_cancel_outgoing(self->dev, PREFIX));
	if (self->box >= 0)
		close(self->box);
	if (self->box2 >= 0)
		close(self->box2);
	for (i = 0; i < NFILES; i++)
		if (self->file[i] >= 0)
			close(self->file[i]);
	/* Many-fd tests keep theirs in locals; and a test may have aborted. */
	close_other_fds(self->dev);
	/* The close loop may have had to stop early: do it again. */
	close_other_fds(self->dev);
	if (self->dev >= 0) {
		left = fdbox_count_boxes(self->dev, PREFIX);
		EXPECT_EQ(0, left) TH_LOG("boxes left behind");
		close(self->dev);
	}
}

/* Creates box NAME holding self->file[0..n-1] as "e0".."e<n-1>". */
static int make_box(struct __test_metadata *_metadata,
		    FIXTURE_DATA(fdbox) *self, const char *name, int n)
{
	char entry[16];
	int box, i;

	box = ASSERT_OK(fdbox_create(self->dev, name));
	for (i = 0; i < n; i++) {
		snprintf(entry, sizeof(entry), "e%d", i);
		ASSERT_OK(fdbox_add(box, self->file[i], entry));
	}
	return box;
}

/*
 * GET_CAPS: the test handler is registered with its version; the limits are
 * the header's; a cold boot has nothing incoming; a short handlers array is
 * filled no further than its length, and the full count still returned.
 */
TEST_F(fdbox, get_caps)
{
	struct fdbox_handler_info *h, part[2], sentinel;
	const struct fdbox_handler_info *t;
	struct fdbox_get_caps caps;
	int n;

	n = ASSERT_OK(fdbox_caps(self->dev, &caps, &h));
	t = fdbox_find_handler(h, n, FDBOX_TEST_COMPATIBLE);
	ASSERT_TRUE(t != NULL) TH_LOG("no \"%s\" among %d handlers",
				      FDBOX_TEST_COMPATIBLE, n);
	EXPECT_EQ(FDBOX_TEST_VERSION, t->version);
	EXPECT_LE(t->min_version, FDBOX_TEST_VERSION);
	EXPECT_EQ(0, t->__reserved);
	EXPECT_EQ(0, caps.flags);
	EXPECT_EQ(FDBOX_MAX_BOXES, caps.max_boxes);
	EXPECT_EQ(FDBOX_MAX_ENTRIES, caps.max_entries);
	EXPECT_LE(caps.format_read_min, caps.format_major);
	EXPECT_LE(caps.format_major, caps.format_read_max);
	EXPECT_EQ(FDBOX_INCOMING_NONE, caps.incoming);
	free(h);

	/* No array: the count only. */
	memset(&caps, 0, sizeof(caps));
	caps.size = sizeof(caps);
	ASSERT_OK(fdbox_raw(self->dev, FDBOX_GET_CAPS, &caps));
	EXPECT_EQ(n, caps.n_handlers);

	/* One slot: one written, the next untouched, the count in full. */
	memset(part, 0xa5, sizeof(part));
	memset(&sentinel, 0xa5, sizeof(sentinel));
	memset(&caps, 0, sizeof(caps));
	caps.size = sizeof(caps);
	caps.n_handlers = 1;
	caps.handlers = (uintptr_t)part;
	ASSERT_OK(fdbox_raw(self->dev, FDBOX_GET_CAPS, &caps));
	EXPECT_EQ(n, caps.n_handlers);
	EXPECT_GT(sizeof(part[0].compatible),
		  strnlen(part[0].compatible, sizeof(part[0].compatible)));
	EXPECT_EQ(0, memcmp(&part[1], &sentinel, sizeof(sentinel)));
}

/*
 * CREATE_BOX: an O_CLOEXEC box fd; LIST_BOXES and BOX_INFO show an open,
 * empty, outgoing box owned by root; closing its only fd discards it.
 */
TEST_F(fdbox, create_list_info)
{
	struct fdbox_entry_info *e;
	struct fdbox_box_info info;

	self->box = ASSERT_OK(fdbox_create(self->dev, PREFIX "create"));
	ASSERT_CLOEXEC(self->box);
	ASSERT_BOX(self->dev, PREFIX "create", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_OPEN, 0, 0);

	ASSERT_EQ(0, fdbox_box_info(self->box, &info, &e));
	free(e);
	ASSERT_NAME(PREFIX "create", info.name);
	EXPECT_EQ(FDBOX_DIR_OUTGOING, info.direction);
	EXPECT_EQ(FDBOX_BOX_OPEN, info.state);
	EXPECT_EQ(0, info.owner_uid);
	EXPECT_EQ(0, info.flags);

	ASSERT_EQ(0, close(self->box));
	self->box = -1;
	ASSERT_NO_BOX(self->dev, PREFIX "create", FDBOX_DIR_OUTGOING);
}

/*
 * OPEN_BOX: a second O_CLOEXEC fd on the same outgoing box; the box lives
 * until its last fd closes. Opening it as incoming, or a name nobody
 * created, is ENOENT.
 */
TEST_F(fdbox, open_box)
{
	self->box = make_box(_metadata, self, PREFIX "open", 1);
	self->box2 = ASSERT_OK(fdbox_open(self->dev, PREFIX "open",
					  FDBOX_OPEN_OUTGOING));
	ASSERT_NE(self->box, self->box2);
	ASSERT_CLOEXEC(self->box2);

	/* Both fds are the same box. */
	ASSERT_OK(fdbox_add(self->box2, self->file[1], "e1"));
	ASSERT_ENTRY(self->box, "e1", FDBOX_ENTRY_PREPARED, FDBOX_REASON_NONE,
		     FDBOX_TEST_VERSION, 0);
	ASSERT_BOX(self->dev, PREFIX "open", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_OPEN, 0, 2);

	ASSERT_FAILS(ENOENT, fdbox_open(self->dev, PREFIX "open",
					FDBOX_OPEN_INCOMING));
	ASSERT_FAILS(ENOENT, fdbox_open(self->dev, PREFIX "nonesuch",
					FDBOX_OPEN_OUTGOING));

	ASSERT_EQ(0, close(self->box));
	self->box = -1;
	ASSERT_BOX(self->dev, PREFIX "open", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_OPEN, 0, 2);
	ASSERT_FILE(self->file[0], 1, 0, 1, 0);

	ASSERT_EQ(0, close(self->box2));
	self->box2 = -1;
	ASSERT_NO_BOX(self->dev, PREFIX "open", FDBOX_DIR_OUTGOING);
	ASSERT_FILE(self->file[0], 0, 0, 1, 1);
	ASSERT_FILE(self->file[1], 0, 0, 1, 1);
}

/*
 * BOX_ADD prepares each file once; BOX_INFO shows the entries; BOX_REMOVE
 * unprepares one and frees its name; removing it twice is ENOENT.
 */
TEST_F(fdbox, add_remove)
{
	char *before;
	int i;

	self->box = make_box(_metadata, self, PREFIX "add", 3);
	ASSERT_BOX(self->dev, PREFIX "add", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_OPEN, 0, 3);
	ASSERT_ENTRY(self->box, "e0", FDBOX_ENTRY_PREPARED, FDBOX_REASON_NONE,
		     FDBOX_TEST_VERSION, 0);
	ASSERT_ENTRY(self->box, "e1", FDBOX_ENTRY_PREPARED, FDBOX_REASON_NONE,
		     FDBOX_TEST_VERSION, 0);
	ASSERT_ENTRY(self->box, "e2", FDBOX_ENTRY_PREPARED, FDBOX_REASON_NONE,
		     FDBOX_TEST_VERSION, 0);
	for (i = 0; i < 3; i++)
		ASSERT_FILE(self->file[i], 1, 0, 1, 0);

	ASSERT_OK(fdbox_remove(self->box, "e1"));
	ASSERT_BOX(self->dev, PREFIX "add", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_OPEN, 0, 2);
	ASSERT_FILE(self->file[1], 0, 0, 1, 1);
	ASSERT_FILE(self->file[0], 1, 0, 1, 0);

	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(ENOENT, fdbox_remove(self->box, "e1"));
	ASSERT_FAILS(ENOENT, fdbox_remove(self->box, "nonesuch"));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);

	/* The name and the file are free again. */
	ASSERT_OK(fdbox_add(self->box, self->file[1], "e1"));
	ASSERT_FILE(self->file[1], 1, 0, 2, 1);
	ASSERT_BOX(self->dev, PREFIX "add", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_OPEN, 0, 3);
}

/*
 * BOX_SEAL serializes every entry; BOX_CANCEL unseals them all, and the box
 * can be sealed again; closing the box after the cancel unprepares every
 * file, once.
 */
TEST_F(fdbox, seal_cancel)
{
	int round, i;

	self->box = make_box(_metadata, self, PREFIX "seal", 2);
	for (round = 0; round < 2; round++) {
		ASSERT_OK(fdbox_seal(self->box));
		ASSERT_BOX(self->dev, PREFIX "seal", FDBOX_DIR_OUTGOING,
			   FDBOX_BOX_SEALED, 0, 2);
		ASSERT_ENTRY(self->box, "e0", FDBOX_ENTRY_SEALED,
			     FDBOX_REASON_NONE, FDBOX_TEST_VERSION, 0);
		ASSERT_ENTRY(self->box, "e1", FDBOX_ENTRY_SEALED,
			     FDBOX_REASON_NONE, FDBOX_TEST_VERSION, 0);
		for (i = 0; i < 2; i++)
			ASSERT_FILE(self->file[i], 1, 1, 1, 0);

		ASSERT_OK(fdbox_cancel(self->box));
		ASSERT_BOX(self->dev, PREFIX "seal", FDBOX_DIR_OUTGOING,
			   FDBOX_BOX_OPEN, 0, 2);
		ASSERT_ENTRY(self->box, "e0", FDBOX_ENTRY_PREPARED,
			     FDBOX_REASON_NONE, FDBOX_TEST_VERSION, 0);
		for (i = 0; i < 2; i++)
			ASSERT_FILE(self->file[i], 1, 0, 1, 0);
	}
	ASSERT_EQ(0, close(self->box));
	self->box = -1;
	ASSERT_NO_BOX(self->dev, PREFIX "seal", FDBOX_DIR_OUTGOING);
	for (i = 0; i < 2; i++)
		ASSERT_FILE(self->file[i], 0, 0, 1, 1);
}

/*
 * LIST_BOXES and BOX_INFO with arrays shorter than the count: the count in
 * full, no slot written past the array's length, and a NULL array is fine
 * with a length of 0.
 */
TEST_F(fdbox, short_arrays)
{
	struct fdbox_box_summary sums[2], sum_sentinel;
	struct fdbox_entry_info ents[2], ent_sentinel;
	struct fdbox_box_summary *all;
	struct fdbox_list_boxes list;
	struct fdbox_box_info info;
	int n;

	self->box = make_box(_metadata, self, PREFIX "short-a", 3);
	self->box2 = ASSERT_OK(fdbox_create(self->dev, PREFIX "short-b"));
	n = ASSERT_OK(fdbox_list(self->dev, &all));
	free(all);
	ASSERT_LE(2, n);

	memset(sums, 0xa5, sizeof(sums));
	memset(&sum_sentinel, 0xa5, sizeof(sum_sentinel));
	memset(&list, 0, sizeof(list));
	list.size = sizeof(list);
	list.n_boxes = 1;
	list.boxes = (uintptr_t)sums;
	ASSERT_OK(fdbox_raw(self->dev, FDBOX_LIST_BOXES, &list));
	EXPECT_EQ(n, list.n_boxes);
	EXPECT_GT(sizeof(sums[0].name), strnlen(sums[0].name, sizeof(sums[0].name)));
	EXPECT_EQ(0, memcmp(&sums[1], &sum_sentinel, sizeof(sum_sentinel)));

	memset(&list, 0, sizeof(list));
	list.size = sizeof(list);
	ASSERT_OK(fdbox_raw(self->dev, FDBOX_LIST_BOXES, &list));
	EXPECT_EQ(n, list.n_boxes);

	memset(ents, 0xa5, sizeof(ents));
	memset(&ent_sentinel, 0xa5, sizeof(ent_sentinel));
	memset(&info, 0, sizeof(info));
	info.size = sizeof(info);
	info.n_entries = 1;
	info.entries = (uintptr_t)ents;
	ASSERT_OK(fdbox_raw(self->box, FDBOX_BOX_INFO, &info));
	EXPECT_EQ(3, info.n_entries);
	EXPECT_EQ(FDBOX_ENTRY_PREPARED, ents[0].state);
	EXPECT_EQ(0, memcmp(&ents[1], &ent_sentinel, sizeof(ent_sentinel)));

	memset(&info, 0, sizeof(info));
	info.size = sizeof(info);
	ASSERT_OK(fdbox_raw(self->box, FDBOX_BOX_INFO, &info));
	EXPECT_EQ(3, info.n_entries);
	ASSERT_NAME(PREFIX "short-a", info.name);
}

/*
 * BOX_RETRIEVE and BOX_DISCARD belong to incoming boxes: on an outgoing
 * box, open or sealed, they fail with EBUSY and change nothing.
 */
TEST_F(fdbox, outgoing_retrieve_discard_busy)
{
	char *before;
	int sealed;

	self->box = make_box(_metadata, self, PREFIX "out-busy", 1);
	for (sealed = 0; sealed < 2; sealed++) {
		if (sealed)
			ASSERT_OK(fdbox_seal(self->box));
		before = SNAPSHOT(self->dev);
		ASSERT_FAILS(EBUSY, fdbox_retrieve(self->box, "e0"));
		ASSERT_FAILS(EBUSY, fdbox_discard(self->box, "e0"));
		ASSERT_FAILS(EBUSY, fdbox_discard(self->box, NULL));
		ASSERT_UNCHANGED(self->dev, before);
		free(before);
		ASSERT_FILE(self->file[0], 1, sealed, 1, 0);
	}
}

/* The commands, for the table-driven size and tail tests. */
enum cmd_id {
	C_GET_CAPS, C_CREATE, C_OPEN, C_LIST, C_ADD, C_REMOVE, C_SEAL,
	C_CANCEL, C_RETRIEVE, C_DISCARD, C_INFO, NR_CMDS
};

/* Which fd a command goes to. */
enum { T_DEV, T_OPEN_BOX, T_SEALED_BOX };

static const struct cmd_desc {
	const char *name;
	unsigned long cmd;
	__u32 size;
	int target;
	/* What a valid call returns here: 0, or -EBUSY on an outgoing box. */
	int valid;
} cmds[NR_CMDS] = {
	[C_GET_CAPS] = { "GET_CAPS", FDBOX_GET_CAPS,
			 sizeof(struct fdbox_get_caps), T_DEV, 0 },
	[C_CREATE] = { "CREATE_BOX", FDBOX_CREATE_BOX,
		       sizeof(struct fdbox_create_box), T_DEV, 0 },
	[C_OPEN] = { "OPEN_BOX", FDBOX_OPEN_BOX,
		     sizeof(struct fdbox_open_box), T_DEV, 0 },
	[C_LIST] = { "LIST_BOXES", FDBOX_LIST_BOXES,
		     sizeof(struct fdbox_list_boxes), T_DEV, 0 },
	[C_ADD] = { "BOX_ADD", FDBOX_BOX_ADD,
		    sizeof(struct fdbox_box_add), T_OPEN_BOX, 0 },
	[C_REMOVE] = { "BOX_REMOVE", FDBOX_BOX_REMOVE,
		       sizeof(struct fdbox_box_remove), T_OPEN_BOX, 0 },
	[C_SEAL] = { "BOX_SEAL", FDBOX_BOX_SEAL,
		     sizeof(struct fdbox_box_seal), T_OPEN_BOX, 0 },
	[C_CANCEL] = { "BOX_CANCEL", FDBOX_BOX_CANCEL,
		       sizeof(struct fdbox_box_cancel), T_SEALED_BOX, 0 },
	[C_RETRIEVE] = { "BOX_RETRIEVE", FDBOX_BOX_RETRIEVE,
			 sizeof(struct fdbox_box_retrieve), T_OPEN_BOX, -EBUSY },
	[C_DISCARD] = { "BOX_DISCARD", FDBOX_BOX_DISCARD,
			sizeof(struct fdbox_box_discard), T_OPEN_BOX, -EBUSY },
	[C_INFO] = { "BOX_INFO", FDBOX_BOX_INFO,
		     sizeof(struct fdbox_box_info), T_OPEN_BOX, 0 },
};

/* Big enough for any argument plus a tail. */
#define ARG_MAX 256

union arg {
	unsigned char bytes[ARG_MAX];
	__u64 align;
	struct fdbox_get_caps caps;
	struct fdbox_create_box create;
	struct fdbox_open_box open;
	struct fdbox_list_boxes list;
	struct fdbox_box_add add;
	struct fdbox_box_remove remove;
	struct fdbox_box_seal seal;
	struct fdbox_box_cancel cancel;
	struct fdbox_box_retrieve retrieve;
	struct fdbox_box_discard discard;
	struct fdbox_box_info info;
};

/*
 * The size tests run against two boxes: "uapi-size-open" (self->box) with
 * file 0 as "e0", and "uapi-size-sealed" (self->box2) with file 1 as "e0",
 * sealed. A valid argument for each command, file 2 being free.
 */
static void fill_valid(FIXTURE_DATA(fdbox) *self, enum cmd_id id, union arg *a)
{
	memset(a, 0, sizeof(*a));
	switch (id) {
	case C_CREATE:
		fdbox_name(a->create.name, PREFIX "size-new");
		a->create.box_fd = -1;
		break;
	case C_OPEN:
		a->open.flags = FDBOX_OPEN_OUTGOING;
		fdbox_name(a->open.name, PREFIX "size-open");
		a->open.box_fd = -1;
		break;
	case C_ADD:
		a->add.fd = self->file[2];
		fdbox_name(a->add.name, "e-new");
		break;
	case C_REMOVE:
		fdbox_name(a->remove.name, "e0");
		break;
	case C_RETRIEVE:
		fdbox_name(a->retrieve.name, "e0");
		a->retrieve.fd = -1;
		break;
	case C_DISCARD:
		fdbox_name(a->discard.name, "e0");
		break;
	default:
		break;
	}
	a->caps.size = cmds[id].size;
}

static int cmd_fd(FIXTURE_DATA(fdbox) *self, enum cmd_id id)
{
	switch (cmds[id].target) {
	case T_OPEN_BOX:
		return self->box;
	case T_SEALED_BOX:
		return self->box2;
	default:
		return self->dev;
	}
}

/* Undoes a successful valid call of ID, so that the snapshot holds again. */
static void undo_valid(struct __test_metadata *_metadata,
		       FIXTURE_DATA(fdbox) *self, enum cmd_id id, union arg *a)
{
	switch (id) {
	case C_CREATE:
		ASSERT_LE(0, a->create.box_fd);
		ASSERT_BOX(self->dev, PREFIX "size-new", FDBOX_DIR_OUTGOING,
			   FDBOX_BOX_OPEN, 0, 0);
		ASSERT_EQ(0, close(a->create.box_fd));
		break;
	case C_OPEN:
		ASSERT_LE(0, a->open.box_fd);
		ASSERT_EQ(0, close(a->open.box_fd));
		break;
	case C_ADD:
		ASSERT_FILE(self->file[2], 1, 0, -1, -1);
		ASSERT_OK(fdbox_remove(self->box, "e-new"));
		break;
	case C_REMOVE:
		ASSERT_FILE(self->file[0], 0, 0, -1, -1);
		ASSERT_OK(fdbox_add(self->box, self->file[0], "e0"));
		break;
	case C_SEAL:
		ASSERT_OK(fdbox_cancel(self->box));
		break;
	case C_CANCEL:
		ASSERT_OK(fdbox_seal(self->box2));
		break;
	case C_GET_CAPS:
		EXPECT_EQ(FDBOX_MAX_BOXES, a->caps.max_boxes);
		break;
	case C_INFO:
		EXPECT_EQ(1, a->info.n_entries);
		break;
	default:
		break;
	}
}

static void make_size_boxes(struct __test_metadata *_metadata,
			    FIXTURE_DATA(fdbox) *self)
{
	self->box = ASSERT_OK(fdbox_create(self->dev, PREFIX "size-open"));
	ASSERT_OK(fdbox_add(self->box, self->file[0], "e0"));
	self->box2 = ASSERT_OK(fdbox_create(self->dev, PREFIX "size-sealed"));
	ASSERT_OK(fdbox_add(self->box2, self->file[1], "e0"));
	ASSERT_OK(fdbox_seal(self->box2));
}

/*
 * Every command, with a size smaller than its struct's first version (0, the
 * size field alone, one byte short): EINVAL, and nothing changed, no fd
 * installed. The size is checked before the box's state, so RETRIEVE and
 * DISCARD on an outgoing box say EINVAL here, not EBUSY.
 */
TEST_F(fdbox, size_too_small)
{
	__u32 sizes[3];
	char *before;
	union arg a;
	int id, i, fds;

	make_size_boxes(_metadata, self);
	before = SNAPSHOT(self->dev);
	fds = fdbox_count_fds();
	for (id = 0; id < NR_CMDS; id++) {
		sizes[0] = 0;
		sizes[1] = sizeof(__u32);
		sizes[2] = cmds[id].size - 1;
		for (i = 0; i < 3; i++) {
			fill_valid(self, id, &a);
			a.caps.size = sizes[i];
			EXPECT_FAILS(EINVAL, fdbox_raw(cmd_fd(self, id),
						       cmds[id].cmd, &a))
				TH_LOG("%s with size %u", cmds[id].name, sizes[i]);
		}
		ASSERT_UNCHANGED(self->dev, before);
		ASSERT_EQ(fds, fdbox_count_fds()) TH_LOG("%s", cmds[id].name);
	}
	ASSERT_FILE(self->file[2], 0, 0, 0, 0);
	free(before);
}

/*
 * Every command, with 8 bytes past its struct: a non-zero byte there (first
 * or last) is E2BIG with nothing changed; all zero, the call is valid and
 * does what it does without the tail (then undone, and the state compared).
 */
TEST_F(fdbox, size_tail)
{
	char *before;
	union arg a;
	int id, pos, ret, fds;

	make_size_boxes(_metadata, self);
	before = SNAPSHOT(self->dev);
	fds = fdbox_count_fds();
	for (id = 0; id < NR_CMDS; id++) {
		size_t size = cmds[id].size;

		for (pos = 0; pos < 2; pos++) {
			fill_valid(self, id, &a);
			a.caps.size = size + 8;
			a.bytes[pos ? size + 7 : size] = 0x5a;
			EXPECT_FAILS(E2BIG, fdbox_raw(cmd_fd(self, id),
						      cmds[id].cmd, &a))
				TH_LOG("%s with a non-zero tail byte %zu",
				       cmds[id].name, pos ? size + 7 : size);
			ASSERT_UNCHANGED(self->dev, before);
			ASSERT_EQ(fds, fdbox_count_fds()) TH_LOG("%s", cmds[id].name);
		}

		fill_valid(self, id, &a);
		a.caps.size = size + 8;
		ret = fdbox_raw(cmd_fd(self, id), cmds[id].cmd, &a);
		ASSERT_EQ(cmds[id].valid, ret)
			TH_LOG("%s with a zero tail: %s", cmds[id].name,
			       fdbox_errname(ret));
		if (ret == 0)
			undo_valid(_metadata, self, id, &a);
		ASSERT_UNCHANGED(self->dev, before);
		ASSERT_EQ(fds, fdbox_count_fds()) TH_LOG("%s", cmds[id].name);
	}
	free(before);
}

/*
 * Unknown flags and non-zero __reserved fields: EINVAL, nothing changed.
 * OPEN_BOX takes exactly one of its two direction flags. (RETRIEVE and
 * DISCARD are checked on an incoming box, in the two-stage test.)
 */
TEST_F(fdbox, flags_and_reserved)
{
	static const __u32 bad_flags[] = { 1U << 0, 1U << 1, 1U << 7, 1U << 31 };
	/* The flags a command knows. */
	static const __u32 known_flags[NR_CMDS] = { [C_SEAL] = FDBOX_SEAL_PREVIOUS };
	static const __u32 bad_open_flags[] = {
		0, FDBOX_OPEN_OUTGOING | FDBOX_OPEN_INCOMING, FDBOX_OPEN_OWNER,
		FDBOX_OPEN_OUTGOING | (1U << 3), 1U << 31,
	};
	static const enum cmd_id with_flags[] = {
		C_GET_CAPS, C_CREATE, C_LIST, C_ADD, C_REMOVE, C_SEAL,
		C_CANCEL, C_INFO,
	};
	char *before;
	union arg a;
	size_t i, j;
	int fds;

	make_size_boxes(_metadata, self);
	before = SNAPSHOT(self->dev);
	fds = fdbox_count_fds();
	for (i = 0; i < ARRAY_SIZE(with_flags); i++) {
		enum cmd_id id = with_flags[i];

		for (j = 0; j < ARRAY_SIZE(bad_flags); j++) {
			if (bad_flags[j] & known_flags[id])
				continue;
			fill_valid(self, id, &a);
			a.caps.flags = bad_flags[j];
			EXPECT_FAILS(EINVAL, fdbox_raw(cmd_fd(self, id),
						       cmds[id].cmd, &a))
				TH_LOG("%s with flags %#x", cmds[id].name,
				       bad_flags[j]);
		}
	}
	for (j = 0; j < ARRAY_SIZE(bad_open_flags); j++) {
		fill_valid(self, C_OPEN, &a);
		a.open.flags = bad_open_flags[j];
		EXPECT_FAILS(EINVAL, fdbox_raw(self->dev, FDBOX_OPEN_BOX, &a))
			TH_LOG("OPEN_BOX with flags %#x", bad_open_flags[j]);
	}

	fill_valid(self, C_CREATE, &a);
	a.create.__reserved = 1;
	EXPECT_FAILS(EINVAL, fdbox_raw(self->dev, FDBOX_CREATE_BOX, &a));
	fill_valid(self, C_OPEN, &a);
	/* An owner only with FDBOX_OPEN_OWNER. */
	a.open.owner_uid = 1U << 31;
	EXPECT_FAILS(EINVAL, fdbox_raw(self->dev, FDBOX_OPEN_BOX, &a));
	/* An owner with no uid in the initial user namespace. */
	EXPECT_FAILS(EINVAL, fdbox_open_as(self->dev, PREFIX "any",
					   FDBOX_OPEN_OUTGOING, (__u32)-1));
	fill_valid(self, C_LIST, &a);
	a.list.__reserved = 1;
	EXPECT_FAILS(EINVAL, fdbox_raw(self->dev, FDBOX_LIST_BOXES, &a));
	fill_valid(self, C_ADD, &a);
	a.add.__reserved = 1;
	EXPECT_FAILS(EINVAL, fdbox_raw(self->box, FDBOX_BOX_ADD, &a));

	ASSERT_UNCHANGED(self->dev, before);
	ASSERT_EQ(fds, fdbox_count_fds());
	ASSERT_FILE(self->file[2], 0, 0, 0, 0);
	free(before);
}

/*
 * Unknown commands are ENOTTY on /dev/fdbox and on a box fd, nothing
 * changed: numbers no command has, a known number with other direction or
 * size bits or another type byte, box commands on the device and device
 * commands on a box, and fdbox_test's own ioctls (which share the type).
 */
TEST_F(fdbox, unknown_command)
{
	static const unsigned long on_dev[] = {
		_IO(FDBOX_IOCTL_TYPE, 0x05),
		_IO(FDBOX_IOCTL_TYPE, 0x0f),
		_IO(FDBOX_IOCTL_TYPE, 0x7f),
		_IO(FDBOX_IOCTL_TYPE, 0xff),
		_IOWR(FDBOX_IOCTL_TYPE, FDBOX_CMD_GET_CAPS, struct fdbox_get_caps),
		_IO('x', FDBOX_CMD_GET_CAPS),
		FDBOX_BOX_SEAL,
		FDBOX_BOX_INFO,
		FDBOX_TEST_INFO,
		FDBOX_TEST_CONFIG,
	};
	static const unsigned long on_box[] = {
		_IO(FDBOX_IOCTL_TYPE, 0x17),
		_IO(FDBOX_IOCTL_TYPE, 0x7f),
		_IOWR(FDBOX_IOCTL_TYPE, FDBOX_CMD_BOX_INFO, struct fdbox_box_info),
		FDBOX_GET_CAPS,
		FDBOX_CREATE_BOX,
		FDBOX_OPEN_BOX,
		FDBOX_LIST_BOXES,
		FDBOX_SETTLE_FD,
		FDBOX_TEST_INFO,
		FDBOX_TEST_CONFIG,
	};
	char *before;
	union arg a;
	size_t i;
	int fds;

	self->box = make_box(_metadata, self, PREFIX "unknown", 1);
	before = SNAPSHOT(self->dev);
	fds = fdbox_count_fds();
	for (i = 0; i < ARRAY_SIZE(on_dev); i++) {
		/* A plausible argument: a valid BOX_INFO, sized. */
		fill_valid(self, C_INFO, &a);
		EXPECT_FAILS(ENOTTY, fdbox_raw(self->dev, on_dev[i], &a))
			TH_LOG("/dev/fdbox, command %#lx", on_dev[i]);
	}
	for (i = 0; i < ARRAY_SIZE(on_box); i++) {
		/* A plausible argument: a valid CREATE_BOX, sized. */
		fill_valid(self, C_CREATE, &a);
		EXPECT_FAILS(ENOTTY, fdbox_raw(self->box, on_box[i], &a))
			TH_LOG("box fd, command %#lx", on_box[i]);
	}
	ASSERT_UNCHANGED(self->dev, before);
	ASSERT_EQ(fds, fdbox_count_fds());
	free(before);
}

/* The names that must be refused, as 64-byte fields. */
struct bad_name {
	const char *why;
	char name[FDBOX_NAME_LEN];
};

static int bad_names(struct bad_name *b)
{
	static const struct {
		const char *why;
		const char *bytes;
		size_t len;
	} fixed[] = {
		{ "empty", "", 0 },
		{ "invalid UTF-8", "\xff\xfe", 2 },
		{ "a byte after the NUL", "ab\0c", 4 },
		{ "an overlong encoding", "\xc0\xaf", 2 },
		{ "a UTF-16 surrogate", "\xed\xa0\x80", 3 },
		{ "a truncated sequence", "ab\xe2\x82", 4 },
		{ "a lone continuation byte", "\x80", 1 },
		{ "a code point past U+10FFFF", "\xf4\x90\x80\x80", 4 },
	};
	int n = 0;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(fixed); i++, n++) {
		memset(b[n].name, 0, FDBOX_NAME_LEN);
		memcpy(b[n].name, fixed[i].bytes, fixed[i].len);
		b[n].why = fixed[i].why;
	}
	memset(b[n].name, 'a', FDBOX_NAME_LEN);
	b[n++].why = "64 bytes without a NUL";
	memset(b[n].name, 0, FDBOX_NAME_LEN);
	memcpy(b[n].name, PREFIX "x", strlen(PREFIX "x"));
	b[n].name[FDBOX_NAME_LEN - 1] = 1;
	b[n++].why = "a byte in the last slot after the NUL";
	return n;
}

/*
 * Bad names: EINVAL from CREATE_BOX, OPEN_BOX (both directions), BOX_ADD
 * and BOX_REMOVE, with nothing changed and the file not prepared.
 */
TEST_F(fdbox, bad_names)
{
	struct bad_name bad[16];
	char *before;
	union arg a;
	int n, i, fds;

	n = bad_names(bad);
	self->box = make_box(_metadata, self, PREFIX "names", 1);
	before = SNAPSHOT(self->dev);
	fds = fdbox_count_fds();
	for (i = 0; i < n; i++) {
		fill_valid(self, C_CREATE, &a);
		memcpy(a.create.name, bad[i].name, FDBOX_NAME_LEN);
		EXPECT_FAILS(EINVAL, fdbox_raw(self->dev, FDBOX_CREATE_BOX, &a))
			TH_LOG("CREATE_BOX, %s", bad[i].why);

		fill_valid(self, C_OPEN, &a);
		memcpy(a.open.name, bad[i].name, FDBOX_NAME_LEN);
		EXPECT_FAILS(EINVAL, fdbox_raw(self->dev, FDBOX_OPEN_BOX, &a))
			TH_LOG("OPEN_BOX outgoing, %s", bad[i].why);
		a.open.flags = FDBOX_OPEN_INCOMING;
		EXPECT_FAILS(EINVAL, fdbox_raw(self->dev, FDBOX_OPEN_BOX, &a))
			TH_LOG("OPEN_BOX incoming, %s", bad[i].why);

		fill_valid(self, C_ADD, &a);
		memcpy(a.add.name, bad[i].name, FDBOX_NAME_LEN);
		EXPECT_FAILS(EINVAL, fdbox_raw(self->box, FDBOX_BOX_ADD, &a))
			TH_LOG("BOX_ADD, %s", bad[i].why);

		fill_valid(self, C_REMOVE, &a);
		memcpy(a.remove.name, bad[i].name, FDBOX_NAME_LEN);
		EXPECT_FAILS(EINVAL, fdbox_raw(self->box, FDBOX_BOX_REMOVE, &a))
			TH_LOG("BOX_REMOVE, %s", bad[i].why);
	}
	ASSERT_UNCHANGED(self->dev, before);
	ASSERT_EQ(fds, fdbox_count_fds());
	ASSERT_FILE(self->file[2], 0, 0, 0, 0);
	free(before);
}

/*
 * Good names at the edges: 63 bytes, multi-byte UTF-8 up to 4-byte
 * sequences, spaces and slashes. They come back byte for byte.
 */
TEST_F(fdbox, good_names)
{
	char longest[FDBOX_NAME_LEN];
	struct fdbox_entry_info *e;
	struct fdbox_box_info info;
	const char *utf8 = PREFIX "\xc3\xa9t\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x93\xa6";
	int fd;

	memset(longest, 'n', sizeof(longest));
	memcpy(longest, PREFIX, strlen(PREFIX));
	longest[FDBOX_NAME_LEN - 1] = '\0';

	self->box = ASSERT_OK(fdbox_create(self->dev, longest));
	ASSERT_BOX(self->dev, longest, FDBOX_DIR_OUTGOING, FDBOX_BOX_OPEN, 0, 0);
	self->box2 = ASSERT_OK(fdbox_create(self->dev, utf8));
	ASSERT_BOX(self->dev, utf8, FDBOX_DIR_OUTGOING, FDBOX_BOX_OPEN, 0, 0);

	ASSERT_OK(fdbox_add(self->box, self->file[0], longest));
	ASSERT_OK(fdbox_add(self->box, self->file[1], "guest ram/slot 0"));
	ASSERT_OK(fdbox_add(self->box, self->file[2], "\xe2\x82\xac"));
	ASSERT_EQ(3, fdbox_box_info(self->box, &info, &e));
	ASSERT_NAME(longest, info.name);
	ASSERT_TRUE(fdbox_find_entry(e, 3, longest) != NULL);
	ASSERT_TRUE(fdbox_find_entry(e, 3, "guest ram/slot 0") != NULL);
	ASSERT_TRUE(fdbox_find_entry(e, 3, "\xe2\x82\xac") != NULL);
	free(e);

	/* OPEN_BOX finds them by the same bytes. */
	fd = ASSERT_OK(fdbox_open(self->dev, longest, FDBOX_OPEN_OUTGOING));
	ASSERT_EQ(0, close(fd));
	fd = ASSERT_OK(fdbox_open(self->dev, utf8, FDBOX_OPEN_OUTGOING));
	ASSERT_EQ(0, close(fd));
}

/*
 * Box names are unique among outgoing boxes, sealed ones included (EEXIST,
 * nothing changed); a name is free again once its box is gone.
 */
TEST_F(fdbox, duplicate_box_name)
{
	char *before;

	self->box = make_box(_metadata, self, PREFIX "dup", 1);
	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(EEXIST, fdbox_create(self->dev, PREFIX "dup"));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);

	ASSERT_OK(fdbox_seal(self->box));
	ASSERT_EQ(0, close(self->box));
	self->box = -1;
	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(EEXIST, fdbox_create(self->dev, PREFIX "dup"));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);

	self->box = ASSERT_OK(fdbox_open(self->dev, PREFIX "dup",
					 FDBOX_OPEN_OUTGOING));
	ASSERT_OK(fdbox_cancel(self->box));
	ASSERT_EQ(0, close(self->box));
	self->box = -1;
	ASSERT_NO_BOX(self->dev, PREFIX "dup", FDBOX_DIR_OUTGOING);
	self->box = ASSERT_OK(fdbox_create(self->dev, PREFIX "dup"));
}

/* Entry names are unique in a box: EEXIST; the second file isn't prepared. */
TEST_F(fdbox, duplicate_entry_name)
{
	char *before;

	self->box = make_box(_metadata, self, PREFIX "dup-entry", 1);
	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(EEXIST, fdbox_add(self->box, self->file[1], "e0"));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	ASSERT_FILE(self->file[1], 0, 0, 0, 0);
	ASSERT_FILE(self->file[0], 1, 0, 1, 0);

	/* The same name in another box is fine. */
	self->box2 = ASSERT_OK(fdbox_create(self->dev, PREFIX "dup-entry-2"));
	ASSERT_OK(fdbox_add(self->box2, self->file[1], "e0"));
}

/*
 * A file is in one box once: under a second name, through a dup() of its
 * fd, or in another box, EEXIST with nothing changed. Removed, it can go
 * into the other box.
 */
TEST_F(fdbox, same_file_twice)
{
	char *before;
	int dup_fd;

	self->box = make_box(_metadata, self, PREFIX "twice", 1);
	self->box2 = ASSERT_OK(fdbox_create(self->dev, PREFIX "twice-2"));
	dup_fd = dup(self->file[0]);
	ASSERT_LE(0, dup_fd);

	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(EEXIST, fdbox_add(self->box, self->file[0], "again"));
	ASSERT_FAILS(EEXIST, fdbox_add(self->box, dup_fd, "again"));
	ASSERT_FAILS(EEXIST, fdbox_add(self->box2, self->file[0], "e0"));
	ASSERT_FAILS(EEXIST, fdbox_add(self->box2, dup_fd, "e0"));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	ASSERT_FILE(self->file[0], 1, 0, 1, 0);

	ASSERT_OK(fdbox_remove(self->box, "e0"));
	ASSERT_OK(fdbox_add(self->box2, dup_fd, "e0"));
	ASSERT_FILE(self->file[0], 1, 0, 2, 1);
	close(dup_fd);
}

/*
 * Files no handler takes are EOPNOTSUPP, nothing changed: pipes, a regular
 * file, a character device, an eventfd, and FDBox's own fds (a box fd,
 * itself included, and /dev/fdbox). (The test kernel has no sockets.)
 */
TEST_F(fdbox, unsupported_files)
{
	int pipefd[2], fds[10], n = 0, i, count;
	char *before;

	self->box = make_box(_metadata, self, PREFIX "unsupported", 1);
	self->box2 = ASSERT_OK(fdbox_create(self->dev, PREFIX "unsupported-2"));
	ASSERT_EQ(0, pipe2(pipefd, O_CLOEXEC));
	fds[n++] = pipefd[0];
	fds[n++] = pipefd[1];
	fds[n++] = ASSERT_OK(fdbox_sys(open("/proc/self/stat", O_RDONLY | O_CLOEXEC)));
	fds[n++] = ASSERT_OK(fdbox_sys(open("/dev/null", O_RDWR | O_CLOEXEC)));
	fds[n++] = ASSERT_OK(fdbox_sys(eventfd(0, EFD_CLOEXEC)));
	fds[n++] = self->box;
	fds[n++] = self->box2;
	fds[n++] = self->dev;
	fds[n++] = ASSERT_OK(fdbox_open_dev());

	before = SNAPSHOT(self->dev);
	count = fdbox_count_fds();
	for (i = 0; i < n; i++)
		EXPECT_FAILS(EOPNOTSUPP, fdbox_add(self->box, fds[i], "x"))
			TH_LOG("file %d", i);
	ASSERT_UNCHANGED(self->dev, before);
	ASSERT_EQ(count, fdbox_count_fds());
	free(before);
}

/*
 * Not an open file: -1, a closed number, a number past the table, and an
 * O_PATH fd (which fget() refuses): EBADF, nothing changed.
 */
TEST_F(fdbox, bad_fds)
{
	int closed, path;
	char *before;

	self->box = make_box(_metadata, self, PREFIX "badf", 1);
	closed = dup(self->dev);
	ASSERT_LE(0, closed);
	ASSERT_EQ(0, close(closed));
	path = ASSERT_OK(fdbox_sys(open(FDBOX_TEST_DEV, O_PATH | O_CLOEXEC)));

	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(EBADF, fdbox_add(self->box, -1, "x"));
	ASSERT_FAILS(EBADF, fdbox_add(self->box, closed, "x"));
	ASSERT_FAILS(EBADF, fdbox_add(self->box, 1 << 30, "x"));
	ASSERT_FAILS(EBADF, fdbox_add(self->box, INT_MIN, "x"));
	ASSERT_FAILS(EBADF, fdbox_add(self->box, path, "x"));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	close(path);
}

/*
 * Wrong state, EBUSY and nothing changed: ADD, REMOVE and SEAL on a sealed
 * box, CANCEL on an open one.
 */
TEST_F(fdbox, wrong_state)
{
	char *before;

	self->box = make_box(_metadata, self, PREFIX "state-sealed", 1);
	ASSERT_OK(fdbox_seal(self->box));
	self->box2 = make_box(_metadata, self, PREFIX "state-open", 0);
	ASSERT_OK(fdbox_add(self->box2, self->file[1], "e0"));

	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(EBUSY, fdbox_add(self->box, self->file[2], "e1"));
	ASSERT_FAILS(EBUSY, fdbox_remove(self->box, "e0"));
	ASSERT_FAILS(EBUSY, fdbox_seal(self->box));
	ASSERT_FAILS(EBUSY, fdbox_cancel(self->box2));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	ASSERT_FILE(self->file[0], 1, 1, 1, 0);
	ASSERT_FILE(self->file[1], 1, 0, 1, 0);
	ASSERT_FILE(self->file[2], 0, 0, 0, 0);
}

/*
 * Bad user pointers are EFAULT with nothing changed: a NULL argument; an
 * argument the kernel can read but not write back, where CREATE_BOX and
 * OPEN_BOX must neither keep a box nor leave an fd installed; and arrays
 * that aren't mapped.
 */
TEST_F(fdbox, bad_pointers)
{
	static const enum cmd_id null_ok[] = {
		C_GET_CAPS, C_CREATE, C_OPEN, C_LIST, C_ADD, C_REMOVE, C_SEAL,
		C_INFO,
	};
	long page = sysconf(_SC_PAGESIZE);
	union arg *ro;
	char *before;
	void *none;
	union arg a;
	size_t i;
	int fds;

	self->box = make_box(_metadata, self, PREFIX "efault", 1);
	ro = mmap(NULL, page, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	none = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, none);

	before = SNAPSHOT(self->dev);
	fds = fdbox_count_fds();
	for (i = 0; i < ARRAY_SIZE(null_ok); i++)
		EXPECT_FAILS(EFAULT, fdbox_raw(cmd_fd(self, null_ok[i]),
					       cmds[null_ok[i]].cmd, NULL))
			TH_LOG("%s", cmds[null_ok[i]].name);

	fill_valid(self, C_CREATE, ro);
	ASSERT_EQ(0, mprotect(ro, page, PROT_READ));
	EXPECT_FAILS(EFAULT, fdbox_raw(self->dev, FDBOX_CREATE_BOX, ro));
	ASSERT_EQ(0, mprotect(ro, page, PROT_READ | PROT_WRITE));
	fill_valid(self, C_OPEN, ro);
	fdbox_name(ro->open.name, PREFIX "efault");
	ASSERT_EQ(0, mprotect(ro, page, PROT_READ));
	EXPECT_FAILS(EFAULT, fdbox_raw(self->dev, FDBOX_OPEN_BOX, ro));

	fill_valid(self, C_LIST, &a);
	a.list.n_boxes = 4;
	a.list.boxes = (uintptr_t)none;
	EXPECT_FAILS(EFAULT, fdbox_raw(self->dev, FDBOX_LIST_BOXES, &a));
	fill_valid(self, C_INFO, &a);
	a.info.n_entries = 4;
	a.info.entries = (uintptr_t)none;
	EXPECT_FAILS(EFAULT, fdbox_raw(self->box, FDBOX_BOX_INFO, &a));
	fill_valid(self, C_GET_CAPS, &a);
	a.caps.n_handlers = 4;
	a.caps.handlers = (uintptr_t)none;
	EXPECT_FAILS(EFAULT, fdbox_raw(self->dev, FDBOX_GET_CAPS, &a));

	ASSERT_UNCHANGED(self->dev, before);
	ASSERT_EQ(fds, fdbox_count_fds());
	ASSERT_FILE(self->file[2], 0, 0, 0, 0);
	free(before);
	munmap(ro, page);
	munmap(none, page);
}

/*
 * Not the owner: a child that drops to nobody, keeping the inherited
 * /dev/fdbox fd, root's box fds and a test file, finds no box by root's
 * names (names are per owner), gets EPERM from OPEN_BOX of root's box by
 * owner and from ADD, REMOVE, SEAL and CANCEL on root's box fds; and EACCES
 * opening /dev/fdbox itself. Nothing changed.
 */
TEST_F(fdbox, not_owner)
{
	char *before;
	pid_t pid;

	self->box = make_box(_metadata, self, PREFIX "root-open", 1);
	self->box2 = make_box(_metadata, self, PREFIX "root-sealed", 0);
	ASSERT_OK(fdbox_add(self->box2, self->file[1], "e0"));
	ASSERT_OK(fdbox_seal(self->box2));
	before = SNAPSHOT(self->dev);

	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		CHILD_OK(10, fdbox_become_nobody());
		CHILD_FAILS(11, EACCES, fdbox_open_dev());
		CHILD_FAILS(12, ENOENT, fdbox_open(self->dev, PREFIX "root-open",
						   FDBOX_OPEN_OUTGOING));
		CHILD_FAILS(13, EPERM, fdbox_open_as(self->dev,
						     PREFIX "root-sealed",
						     FDBOX_OPEN_OUTGOING, 0));
		CHILD_FAILS(18, EPERM, fdbox_open_as(self->dev, PREFIX "nothing",
						     FDBOX_OPEN_OUTGOING, 0));
		CHILD_FAILS(14, EPERM, fdbox_add(self->box, self->file[2], "e1"));
		CHILD_FAILS(15, EPERM, fdbox_remove(self->box, "e0"));
		CHILD_FAILS(16, EPERM, fdbox_seal(self->box));
		CHILD_FAILS(17, EPERM, fdbox_cancel(self->box2));
		_exit(0);
	}
	ASSERT_EQ(0, fdbox_wait_child(pid));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	ASSERT_FILE(self->file[0], 1, 0, 1, 0);
	ASSERT_FILE(self->file[1], 1, 1, 1, 0);
	ASSERT_FILE(self->file[2], 0, 0, 0, 0);
}

/*
 * A box belongs to its creator's effective uid: nobody, through an
 * inherited /dev/fdbox fd, creates, fills and seals a box; it is listed as
 * nobody's, and root (CAP_SYS_ADMIN) can still open and cancel it.
 */
TEST_F(fdbox, owner_is_creator)
{
	struct fdbox_entry_info *e;
	struct fdbox_box_info info;
	pid_t pid;
	int box;

	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		CHILD_OK(10, fdbox_become_nobody());
		box = CHILD_OK(11, fdbox_create(self->dev, PREFIX "nobody"));
		CHILD_OK(12, fdbox_add(box, self->file[0], "e0"));
		CHILD_OK(13, fdbox_seal(box));
		_exit(0);
	}
	ASSERT_EQ(0, fdbox_wait_child(pid));
	ASSERT_BOX(self->dev, PREFIX "nobody", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_SEALED, FDBOX_NOBODY, 1);
	/* Names are per owner: root's own namespace has no such box. */
	ASSERT_FAILS(ENOENT, fdbox_open(self->dev, PREFIX "nobody",
					FDBOX_OPEN_OUTGOING));
	self->box = ASSERT_OK(fdbox_open_as(self->dev, PREFIX "nobody",
					    FDBOX_OPEN_OUTGOING, FDBOX_NOBODY));
	ASSERT_EQ(1, fdbox_box_info(self->box, &info, &e));
	free(e);
	EXPECT_EQ(FDBOX_NOBODY, info.owner_uid);
	ASSERT_OK(fdbox_cancel(self->box));
	ASSERT_EQ(0, close(self->box));
	self->box = -1;
	ASSERT_NO_BOX(self->dev, PREFIX "nobody", FDBOX_DIR_OUTGOING);
	ASSERT_FILE(self->file[0], 0, 0, 1, 1);
}

/*
 * FDBOX_MAX_BOXES boxes can exist (root's own limit raised to match); one
 * more is ENOSPC with nothing changed; once one is gone, a new one fits again.
 */
TEST_F_TIMEOUT(fdbox, too_many_boxes, 300)
{
	struct fdbox_box_summary *all;
	char name[FDBOX_NAME_LEN];
	int *fds, existing, room, i, n;
	long limit;

	limit = ASSERT_OK(fdbox_param("root_max_boxes", FDBOX_MAX_BOXES));
	ASSERT_OK(fdbox_raise_nofile(FDBOX_MAX_BOXES + 256));
	existing = ASSERT_OK(fdbox_list(self->dev, &all));
	free(all);
	ASSERT_GT(FDBOX_MAX_BOXES, existing);
	room = FDBOX_MAX_BOXES - existing;
	fds = calloc(room, sizeof(*fds));
	ASSERT_TRUE(fds != NULL);
	for (i = 0; i < room; i++) {
		snprintf(name, sizeof(name), PREFIX "many-%04d", i);
		fds[i] = fdbox_create(self->dev, name);
		ASSERT_LE(0, fds[i]) TH_LOG("box %d of %d: %s", i, room,
					    fdbox_errname(fds[i]));
	}
	ASSERT_FAILS(ENOSPC, fdbox_create(self->dev, PREFIX "many-over"));
	n = ASSERT_OK(fdbox_list(self->dev, &all));
	free(all);
	ASSERT_EQ(FDBOX_MAX_BOXES, n);
	ASSERT_NO_BOX(self->dev, PREFIX "many-over", FDBOX_DIR_OUTGOING);

	ASSERT_EQ(0, close(fds[0]));
	fds[0] = ASSERT_OK(fdbox_create(self->dev, PREFIX "many-over"));

	for (i = 0; i < room; i++)
		ASSERT_EQ(0, close(fds[i]));
	free(fds);
	ASSERT_EQ(0, fdbox_count_boxes(self->dev, PREFIX "many-"));
	ASSERT_OK(fdbox_param("root_max_boxes", limit));
}

/*
 * Closing the last fd of an unsealed box discards it and unprepares each
 * entry once; the files are as before, and work.
 */
TEST_F(fdbox, close_discards_open_box)
{
	char buf[64];
	int i;

	self->box = make_box(_metadata, self, PREFIX "crash", 3);
	ASSERT_EQ(0, close(self->box));
	self->box = -1;
	ASSERT_NO_BOX(self->dev, PREFIX "crash", FDBOX_DIR_OUTGOING);
	for (i = 0; i < 3; i++)
		ASSERT_FILE(self->file[i], 0, 0, 1, 1);

	/* A test file reads from 0 after a write (it has no llseek). */
	ASSERT_EQ(5, write(self->file[1], "again", 5));
	ASSERT_EQ(5, fdbox_read_all(self->file[1], buf, sizeof(buf)));
	ASSERT_EQ(0, memcmp(buf, "again", 5));
}

/*
 * A sealed box survives the closing of its fd, unchanged; OPEN_BOX finds
 * it, CANCEL opens it again, and closing then gives every file back.
 */
TEST_F(fdbox, sealed_survives_close)
{
	int i;

	self->box = make_box(_metadata, self, PREFIX "sealed-close", 3);
	ASSERT_OK(fdbox_seal(self->box));
	ASSERT_EQ(0, close(self->box));
	self->box = -1;
	ASSERT_BOX(self->dev, PREFIX "sealed-close", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_SEALED, 0, 3);
	for (i = 0; i < 3; i++)
		ASSERT_FILE(self->file[i], 1, 1, 1, 0);

	self->box = ASSERT_OK(fdbox_open(self->dev, PREFIX "sealed-close",
					 FDBOX_OPEN_OUTGOING));
	ASSERT_ENTRY(self->box, "e2", FDBOX_ENTRY_SEALED, FDBOX_REASON_NONE,
		     FDBOX_TEST_VERSION, 0);
	ASSERT_OK(fdbox_cancel(self->box));
	ASSERT_BOX(self->dev, PREFIX "sealed-close", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_OPEN, 0, 3);
	ASSERT_EQ(0, close(self->box));
	self->box = -1;
	ASSERT_NO_BOX(self->dev, PREFIX "sealed-close", FDBOX_DIR_OUTGOING);
	for (i = 0; i < 3; i++)
		ASSERT_FILE(self->file[i], 0, 0, 1, 1);
}

/*
 * A sealed box survives the exit of the process that made it: no process
 * has to stay alive to hold it. The parent then cancels and discards it.
 */
TEST_F(fdbox, sealed_survives_creator_exit)
{
	pid_t pid;
	int box, i;

	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		box = CHILD_OK(10, fdbox_create(self->dev, PREFIX "orphan"));
		CHILD_OK(11, fdbox_add(box, self->file[0], "e0"));
		CHILD_OK(12, fdbox_add(box, self->file[1], "e1"));
		CHILD_OK(13, fdbox_seal(box));
		_exit(0);
	}
	ASSERT_EQ(0, fdbox_wait_child(pid));
	ASSERT_BOX(self->dev, PREFIX "orphan", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_SEALED, 0, 2);
	for (i = 0; i < 2; i++)
		ASSERT_FILE(self->file[i], 1, 1, 1, 0);

	self->box = ASSERT_OK(fdbox_open(self->dev, PREFIX "orphan",
					 FDBOX_OPEN_OUTGOING));
	ASSERT_OK(fdbox_cancel(self->box));
	ASSERT_EQ(0, close(self->box));
	self->box = -1;
	ASSERT_NO_BOX(self->dev, PREFIX "orphan", FDBOX_DIR_OUTGOING);
	for (i = 0; i < 2; i++)
		ASSERT_FILE(self->file[i], 0, 0, 1, 1);
}

/*
 * A box whose payloads together outgrow one KHO block (4 MiB, the whole
 * hand-over once) seals: its blob keeps its records, and the payloads go out
 * of line. debugfs shows them all, inline. CANCEL then puts the box back
 * open, every entry prepared and none serialized.
 */
TEST_F(fdbox, seal_past_one_kho_block)
{
	enum { N = 1100 };
	static unsigned char data[FDBOX_TEST_DATA_MAX];
	int first = -1, last = -1, fd, i;
	char name[16];

	ASSERT_OK(fdbox_raise_nofile(N + 64));
	self->box = ASSERT_OK(fdbox_create(self->dev, PREFIX "big"));
	for (i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		fdbox_pattern(data, sizeof(data), name);
		fd = ASSERT_OK(fdbox_test_file(data, sizeof(data)));
		ASSERT_OK(fdbox_add(self->box, fd, name));
		if (i == 0)
			first = fd;
		else if (i == N - 1)
			last = fd;
		else
			close(fd);
	}
	ASSERT_OK(fdbox_seal(self->box));
	ASSERT_BOX(self->dev, PREFIX "big", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_SEALED, 0, N);
	ASSERT_LT((long)N * FDBOX_TEST_DATA_MAX, fdbox_debugfs_size("outgoing"));
	ASSERT_FILE(first, 1, 1, 1, 0);
	ASSERT_FILE(last, 1, 1, 1, 0);
	ASSERT_OK(fdbox_cancel(self->box));
	ASSERT_BOX(self->dev, PREFIX "big", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_OPEN, 0, N);
	ASSERT_FILE(first, 1, 0, 1, 0);
	ASSERT_FILE(last, 1, 0, 1, 0);
	close(self->box);
	self->box = -1;
	ASSERT_FILE(first, 0, 0, 1, 1);
	ASSERT_FILE(last, 0, 0, 1, 1);
	close(first);
	close(last);
}

/*
 * SEAL is all or nothing: serialization failing on entry k of 4 (each k in
 * turn) is EIO, and the box is still open with every entry prepared and
 * none serialized. Without the failing entry, the box seals.
 */
TEST_F(fdbox, seal_rolls_back_failed_serialize)
{
	char name[FDBOX_NAME_LEN], entry[16], *before;
	int files[4], k, i;

	for (k = 0; k < 4; k++) {
		snprintf(name, sizeof(name), PREFIX "rollback-%d", k);
		self->box = ASSERT_OK(fdbox_create(self->dev, name));
		for (i = 0; i < 4; i++) {
			snprintf(entry, sizeof(entry), "k%d e%d", k, i);
			files[i] = ASSERT_OK(fdbox_test_file(entry, strlen(entry)));
			if (i == k)
				ASSERT_OK(fdbox_test_config(files[i],
							    FDBOX_TEST_FAIL_SERIALIZE,
							    0, -1, 0));
			snprintf(entry, sizeof(entry), "e%d", i);
			ASSERT_OK(fdbox_add(self->box, files[i], entry));
		}

		before = SNAPSHOT(self->dev);
		ASSERT_FAILS(EIO, fdbox_seal(self->box)) TH_LOG("k = %d", k);
		ASSERT_UNCHANGED(self->dev, before);
		free(before);
		ASSERT_BOX(self->dev, name, FDBOX_DIR_OUTGOING, FDBOX_BOX_OPEN, 0, 4);
		for (i = 0; i < 4; i++) {
			snprintf(entry, sizeof(entry), "e%d", i);
			ASSERT_ENTRY(self->box, entry, FDBOX_ENTRY_PREPARED,
				     FDBOX_REASON_NONE, FDBOX_TEST_VERSION, 0);
			ASSERT_FILE(files[i], 1, 0, 1, 0);
		}

		snprintf(entry, sizeof(entry), "e%d", k);
		ASSERT_OK(fdbox_remove(self->box, entry));
		ASSERT_OK(fdbox_seal(self->box));
		for (i = 0; i < 4; i++)
			ASSERT_FILE(files[i], i != k, i != k, 1, i == k);
		ASSERT_OK(fdbox_cancel(self->box));
		ASSERT_EQ(0, close(self->box));
		self->box = -1;
		for (i = 0; i < 4; i++) {
			ASSERT_FILE(files[i], 0, 0, 1, 1);
			close(files[i]);
		}
	}
}

/*
 * ADD of a file whose prepare fails is EIO, at every index from the first
 * entry to the fourth: the entries before it are intact, the file is not
 * prepared and not unprepared either, and its name is free; once it
 * prepares, the box seals with it.
 */
TEST_F(fdbox, add_rolls_back_failed_prepare)
{
	__u32 prepares[NFILES] = { 0 }, unprepares[NFILES] = { 0 };
	char *before, name[FDBOX_NAME_LEN];
	int k, i;

	for (k = 0; k < 4; k++) {
		ASSERT_OK(fdbox_test_config(self->file[k],
					    FDBOX_TEST_FAIL_PREPARE, 0, -1, 0));
		snprintf(name, sizeof(name), PREFIX "prepare-fails-%d", k);
		self->box = make_box(_metadata, self, name, k);
		for (i = 0; i < k; i++)
			prepares[i]++;
		before = SNAPSHOT(self->dev);
		ASSERT_FAILS(EIO, fdbox_add(self->box, self->file[k], "failing"));
		prepares[k]++;
		ASSERT_UNCHANGED(self->dev, before);
		free(before);
		for (i = 0; i <= k; i++)
			ASSERT_FILE(self->file[i], i < k, 0, prepares[i],
				    unprepares[i]);

		ASSERT_OK(fdbox_test_config(self->file[k], 0, 0, -1, 0));
		ASSERT_OK(fdbox_add(self->box, self->file[k], "failing"));
		prepares[k]++;
		ASSERT_OK(fdbox_seal(self->box));
		ASSERT_BOX(self->dev, name, FDBOX_DIR_OUTGOING,
			   FDBOX_BOX_SEALED, 0, k + 1);
		ASSERT_OK(fdbox_cancel(self->box));
		close(self->box);
		self->box = -1;
		for (i = 0; i <= k; i++)
			unprepares[i]++;
		ASSERT_FILE(self->file[k], 0, 0, prepares[k], unprepares[k]);
	}
}

/*
 * A dependency must be in the box at seal time: ENOENT while it is not
 * (absent, or in another box), and the seal rolls back; once it is, the
 * dependent entry shows it, and the box seals.
 */
TEST_F(fdbox, seal_needs_dependency)
{
	char *before;

	/* file 0 ("needs") depends on file 1 ("dep"). */
	ASSERT_OK(fdbox_test_config(self->file[0], 0, 0, self->file[1], 0));
	self->box = ASSERT_OK(fdbox_create(self->dev, PREFIX "dep"));
	ASSERT_OK(fdbox_add(self->box, self->file[0], "needs"));
	ASSERT_OK(fdbox_add(self->box, self->file[2], "other"));

	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(ENOENT, fdbox_seal(self->box));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	ASSERT_FILE(self->file[0], 1, 0, 1, 0);
	ASSERT_FILE(self->file[2], 1, 0, 1, 0);

	self->box2 = ASSERT_OK(fdbox_create(self->dev, PREFIX "dep-elsewhere"));
	ASSERT_OK(fdbox_add(self->box2, self->file[1], "dep"));
	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(ENOENT, fdbox_seal(self->box));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	ASSERT_FILE(self->file[0], 1, 0, 1, 0);

	ASSERT_OK(fdbox_remove(self->box2, "dep"));
	ASSERT_OK(fdbox_add(self->box, self->file[1], "dep"));
	ASSERT_ENTRY(self->box, "needs", FDBOX_ENTRY_PREPARED,
		     FDBOX_REASON_NONE, FDBOX_TEST_VERSION, 1);
	ASSERT_ENTRY(self->box, "dep", FDBOX_ENTRY_PREPARED,
		     FDBOX_REASON_NONE, FDBOX_TEST_VERSION, 0);
	ASSERT_OK(fdbox_seal(self->box));
	ASSERT_ENTRY(self->box, "needs", FDBOX_ENTRY_SEALED,
		     FDBOX_REASON_NONE, FDBOX_TEST_VERSION, 1);
	ASSERT_FILE(self->file[0], 1, 1, 1, 0);
	ASSERT_FILE(self->file[1], 1, 1, 2, 1);
}

/*
 * REMOVE of an entry another depends on is EBUSY, nothing changed; the
 * dependent first, then the dependency, is fine.
 */
TEST_F(fdbox, remove_dependency_busy)
{
	char *before;

	ASSERT_OK(fdbox_test_config(self->file[0], 0, 0, self->file[1], 0));
	self->box = ASSERT_OK(fdbox_create(self->dev, PREFIX "dep-remove"));
	ASSERT_OK(fdbox_add(self->box, self->file[1], "dep"));
	ASSERT_OK(fdbox_add(self->box, self->file[0], "needs"));

	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(EBUSY, fdbox_remove(self->box, "dep"));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	ASSERT_FILE(self->file[1], 1, 0, 1, 0);

	ASSERT_OK(fdbox_remove(self->box, "needs"));
	ASSERT_OK(fdbox_remove(self->box, "dep"));
	ASSERT_FILE(self->file[0], 0, 0, 1, 1);
	ASSERT_FILE(self->file[1], 0, 0, 1, 1);
}

/*
 * Dependencies that form a cycle are ELOOP at seal time, rolled back. (Then
 * the cycle is broken: each test file holds its dependency, and two that
 * hold each other would never be freed, which kmemleak would report.)
 */
TEST_F(fdbox, dependency_cycle)
{
	char *before;

	ASSERT_OK(fdbox_test_config(self->file[0], 0, 0, self->file[1], 0));
	ASSERT_OK(fdbox_test_config(self->file[1], 0, 0, self->file[0], 0));
	self->box = ASSERT_OK(fdbox_create(self->dev, PREFIX "cycle"));
	ASSERT_OK(fdbox_add(self->box, self->file[0], "a"));
	ASSERT_OK(fdbox_add(self->box, self->file[1], "b"));

	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(ELOOP, fdbox_seal(self->box));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	ASSERT_FILE(self->file[0], 1, 0, 1, 0);
	ASSERT_FILE(self->file[1], 1, 0, 1, 0);

	ASSERT_EQ(0, close(self->box));
	self->box = -1;
	ASSERT_OK(fdbox_test_config(self->file[1], 0, 0, -1, 0));
}

/*
 * Last: the single-boot tests run before the two-stage tests' stage 1, and
 * whatever box is left here would be handed to the next kernel. Nothing
 * may be, whatever failed above; cancel what was, and say so.
 */
FIXTURE(leftovers) {
	int dev;
};

FIXTURE_SETUP(leftovers)
{
	self->dev = -1;
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	self->dev = ASSERT_OK(fdbox_open_dev());
}

FIXTURE_TEARDOWN(leftovers)
{
	if (self->dev >= 0)
		close(self->dev);
}

TEST_F(leftovers, no_box_left_behind)
{
	struct fdbox_box_summary *all;
	int dev = self->dev, n, i;

	n = ASSERT_OK(fdbox_list(dev, &all));
	for (i = 0; i < n; i++)
		TH_LOG("left behind: box \"%.*s\" direction %u state %u",
		       FDBOX_NAME_LEN, all[i].name, all[i].direction,
		       all[i].state);
	free(all);
	EXPECT_LE(0, fdbox_cancel_outgoing(dev, PREFIX));
	EXPECT_EQ(0, n);
}

TEST_HARNESS_MAIN
