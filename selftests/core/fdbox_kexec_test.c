// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage selftest of fdbox_core across a real KHO kexec.
 *
 * "-s 1", before the kexec: seal a set of boxes built to exercise the
 * incoming side (plain entries, a dependency, an entry of an unknown payload
 * version and one that depends on it, one whose restore fails, a box made
 * by a process that exited, a box owned by nobody, 64 MiB of ballast, a box
 * kept for a handler loaded late, and 2,000 entries in one box).
 *
 * "-s 2", after it: load fdbox_core.ko alone and see every box and entry,
 * each unavailable for want of a handler; load fdbox_test.ko and see them
 * become restorable, except those that can't be; retrieve every entry and
 * compare its data; check owners, once-only retrieval, dependency order and
 * discard (which must give the ballast back to the allocator at once); and
 * end with no box left.
 *
 * The stage comes from the harness (/init runs "PROG -s 1", kexecs, then
 * "PROG -s 2"); each stage is a fixture, its tests run in order, and each
 * test builds on the kernel state the previous ones left. Stage 1 touches
 * nothing but its own boxes, so the other two-stage tests of the same boot
 * are unaffected.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "fdbox_common.h"

#define MiB (1024ULL * 1024)
#define BALLAST (64 * MiB)
/* Discarding the ballast must raise MemFree by at least this much. */
#define BALLAST_FREED_MIN_KB (56 * 1024)

#define BIG_BOX "big"
#define BIG_ENTRIES 2000

/* Who makes and seals a box in stage 1. */
enum maker {
	BY_TEST,		/* this process, which then exits */
	BY_EXITED_CHILD,	/* a child that exits right after the seal */
	BY_NOBODY,		/* a child running as nobody */
};

struct kx_entry {
	const char *name;
	size_t len;		/* bytes of data written into the file */
	__u32 flags;		/* FDBOX_TEST_FAIL_* */
	__u32 payload_version;	/* 0: the handler's own */
	const char *dep;	/* the entry of the same box it depends on */
	__u64 ballast;
	/* In stage 2, once fdbox_test.ko is loaded: */
	__u32 state;
	__u32 reason;
};

struct kx_box {
	const char *name;
	enum maker maker;
	int n;
	const struct kx_entry *e;
};

static const struct kx_entry vm_a[] = {
	{ "a0", FDBOX_TEST_DATA_MAX, .state = FDBOX_ENTRY_RESTORABLE },
	{ "a1", 1, .state = FDBOX_ENTRY_RESTORABLE },
	{ "a2", 37, .state = FDBOX_ENTRY_RESTORABLE },
};

/* Added dependent first: the seal, not the order of ADD, sets the order. */
static const struct kx_entry vm_b[] = {
	{ "b-dep", 20, .dep = "b-base", .state = FDBOX_ENTRY_RESTORABLE },
	/* Longer than dep_data, to see it cut at 64 bytes. */
	{ "b-base", 100, .state = FDBOX_ENTRY_RESTORABLE },
};

static const struct kx_entry odd[] = {
	{ "v99", 50, .payload_version = 99,
	  .state = FDBOX_ENTRY_UNAVAILABLE, .reason = FDBOX_REASON_VERSION },
	{ "needs-v99", 30, .dep = "v99",
	  .state = FDBOX_ENTRY_UNAVAILABLE, .reason = FDBOX_REASON_DEPENDENCY },
	/* The handler can't know before it tries. */
	{ "fail-restore", 40, .flags = FDBOX_TEST_FAIL_RESTORE,
	  .state = FDBOX_ENTRY_RESTORABLE },
	{ "plain", 60, .state = FDBOX_ENTRY_RESTORABLE },
};

static const struct kx_entry orphan[] = {
	{ "o0", 64, .state = FDBOX_ENTRY_RESTORABLE },
};

static const struct kx_entry vm_user[] = {
	{ "u0", 10, .state = FDBOX_ENTRY_RESTORABLE },
	{ "u1", 11, .state = FDBOX_ENTRY_RESTORABLE },
};

static const struct kx_entry ballast[] = {
	{ "heavy", 16, .ballast = BALLAST, .state = FDBOX_ENTRY_RESTORABLE },
	{ "light", 16, .state = FDBOX_ENTRY_RESTORABLE },
};

static const struct kx_entry late[] = {
	{ "l0", 200, .state = FDBOX_ENTRY_RESTORABLE },
	/* Never written: no data at all. */
	{ "l1", 0, .state = FDBOX_ENTRY_RESTORABLE },
};

#define BOX(n, m, e) { n, m, ARRAY_SIZE(e), e }

static const struct kx_box boxes[] = {
	BOX("vm-a", BY_TEST, vm_a),
	BOX("vm-b", BY_TEST, vm_b),
	BOX("odd", BY_TEST, odd),
	BOX("orphan", BY_EXITED_CHILD, orphan),
	BOX("vm-user", BY_NOBODY, vm_user),
	BOX("ballast", BY_TEST, ballast),
	BOX("late", BY_TEST, late),
};

static const struct kx_box *find_kx_box(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(boxes); i++)
		if (!strcmp(boxes[i].name, name))
			return &boxes[i];
	return NULL;
}

static uid_t owner_of(const struct kx_box *b)
{
	return b->maker == BY_NOBODY ? FDBOX_NOBODY : 0;
}

/* The data of entry E of box B. */
static void kx_data(const struct kx_box *b, const struct kx_entry *e,
		    unsigned char *buf)
{
	char tag[2 * FDBOX_NAME_LEN + 2];

	snprintf(tag, sizeof(tag), "%s/%s", b->name, e->name);
	fdbox_pattern(buf, e->len, tag);
}

static int kx_index(const struct kx_box *b, const char *name)
{
	int i;

	for (i = 0; i < b->n; i++)
		if (!strcmp(b->e[i].name, name))
			return i;
	return -1;
}

/* A line now and then in a long loop, for the VM runner's silence watchdog. */
static void progress(const char *what, int done, int total, double *last)
{
	double now = fdbox_now();

	if (now - *last < 10)
		return;
	ksft_print_msg("%s: %d of %d\n", what, done, total);
	*last = now;
}

/* The big box's entries: names e0000..e1999, 8 to 64 bytes each. */
static void big_entry(int i, char name[16], unsigned char *buf, size_t *len)
{
	snprintf(name, 16, "e%04d", i);
	*len = 8 + i % 57;
	fdbox_pattern(buf, *len, name);
}

FIXTURE(stage1) {
	int dev;
};

FIXTURE_SETUP(stage1)
{
	self->dev = -1;
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE(FDBOX_TEST_MODULE);
	self->dev = ASSERT_OK(fdbox_open_dev());
}

FIXTURE_TEARDOWN(stage1)
{
	if (self->dev >= 0)
		close(self->dev);
}

/*
 * A cold boot: nothing incoming, and no box at all, since the single-boot
 * tests before this one must have left none.
 */
TEST_F(stage1, cold_boot)
{
	struct fdbox_handler_info *h;
	struct fdbox_box_summary *all;
	struct fdbox_get_caps caps;
	int n, i;

	ASSERT_OK(fdbox_caps(self->dev, &caps, &h));
	free(h);
	EXPECT_EQ(FDBOX_INCOMING_NONE, caps.incoming);
	n = ASSERT_OK(fdbox_list(self->dev, &all));
	for (i = 0; i < n; i++)
		TH_LOG("unexpected box \"%.*s\"", FDBOX_NAME_LEN, all[i].name);
	free(all);
	ASSERT_EQ(0, n);
}

/*
 * Creates box B holding FILES, and seals it: 0, or how far it got (1 to 3),
 * with the error logged. Runs in the test or in a child.
 */
static int fill_and_seal(int dev, const struct kx_box *b, const int *files)
{
	int box, i, ret;

	box = fdbox_create(dev, b->name);
	if (box < 0) {
		ksft_print_msg("create %s: %s\n", b->name, fdbox_errname(box));
		return 1;
	}
	for (i = 0; i < b->n; i++) {
		ret = fdbox_add(box, files[i], b->e[i].name);
		if (ret) {
			ksft_print_msg("add %s/%s: %s\n", b->name,
				       b->e[i].name, fdbox_errname(ret));
			return 2;
		}
	}
	ret = fdbox_seal(box);
	if (ret) {
		ksft_print_msg("seal %s: %s\n", b->name, fdbox_errname(ret));
		return 3;
	}
	close(box);
	return 0;
}

/*
 * Makes box B's files, then the box, in this process or a child as B says,
 * and seals it. Checks it is listed sealed with every entry.
 */
static void seal_kx_box(struct __test_metadata *_metadata, int dev,
			const struct kx_box *b)
{
	unsigned char data[FDBOX_TEST_DATA_MAX];
	int files[8], box, i, dep;
	pid_t pid;

	ASSERT_GE(ARRAY_SIZE(files), (size_t)b->n);
	for (i = 0; i < b->n; i++) {
		kx_data(b, &b->e[i], data);
		files[i] = ASSERT_OK(fdbox_test_file(data, b->e[i].len));
	}
	for (i = 0; i < b->n; i++) {
		const struct kx_entry *e = &b->e[i];

		if (!e->flags && !e->payload_version && !e->dep && !e->ballast)
			continue;
		dep = e->dep ? kx_index(b, e->dep) : -1;
		ASSERT_TRUE(!e->dep || dep >= 0);
		ASSERT_OK(fdbox_test_config(files[i], e->flags,
					    e->payload_version,
					    dep >= 0 ? files[dep] : -1,
					    e->ballast));
	}

	if (b->maker == BY_TEST) {
		ASSERT_EQ(0, fill_and_seal(dev, b, files));
	} else {
		fflush(NULL);
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			if (b->maker == BY_NOBODY)
				CHILD_OK(10, fdbox_become_nobody());
			_exit(fill_and_seal(dev, b, files));
		}
		ASSERT_EQ(0, fdbox_wait_child(pid));
	}
	for (i = 0; i < b->n; i++) {
		ASSERT_FILE(files[i], 1, 1, 1, 0);
		close(files[i]);
	}

	ASSERT_BOX(dev, b->name, FDBOX_DIR_OUTGOING, FDBOX_BOX_SEALED,
		   owner_of(b), b->n);
	box = ASSERT_OK(fdbox_open_as(dev, b->name, FDBOX_OPEN_OUTGOING,
				      owner_of(b)));
	for (i = 0; i < b->n; i++)
		ASSERT_ENTRY(box, b->e[i].name, FDBOX_ENTRY_SEALED,
			     FDBOX_REASON_NONE,
			     b->e[i].payload_version ? -1 : FDBOX_TEST_VERSION,
			     b->e[i].dep ? 1 : 0);
	close(box);
}

/* Three entries: the most data a test file holds, one byte, and some. */
TEST_F(stage1, seal_vm_a)
{
	seal_kx_box(_metadata, self->dev, find_kx_box("vm-a"));
}

/* "b-dep" depends on "b-base", and was added before it. */
TEST_F(stage1, seal_dependency)
{
	seal_kx_box(_metadata, self->dev, find_kx_box("vm-b"));
}

/*
 * Entries the next kernel can't restore: payload version 99, one depending
 * on it, and one whose restore will fail. A plain one beside them.
 */
TEST_F(stage1, seal_entries_that_wont_restore)
{
	seal_kx_box(_metadata, self->dev, find_kx_box("odd"));
}

/* A box sealed by a process that exits: nothing holds it but the kernel. */
TEST_F(stage1, seal_in_exited_child)
{
	seal_kx_box(_metadata, self->dev, find_kx_box("orphan"));
}

/* A box nobody made and owns, through an inherited /dev/fdbox fd. */
TEST_F(stage1, seal_as_nobody)
{
	seal_kx_box(_metadata, self->dev, find_kx_box("vm-user"));
}

/* 64 MiB of ballast, for stage 2 to discard and measure. */
TEST_F_TIMEOUT(stage1, seal_ballast, 120)
{
	seal_kx_box(_metadata, self->dev, find_kx_box("ballast"));
}

/* Kept for stage 2 to retrieve after loading the handler late. */
TEST_F(stage1, seal_late)
{
	seal_kx_box(_metadata, self->dev, find_kx_box("late"));
}

/* One box of 2,000 entries, for stage 2 to retrieve all; timed. */
TEST_F_TIMEOUT(stage1, seal_big, 600)
{
	unsigned char data[64];
	char name[16];
	double t0, t1, t2, last;
	int *files, box, i;
	size_t len;

	ASSERT_OK(fdbox_raise_nofile(BIG_ENTRIES + 256));
	files = calloc(BIG_ENTRIES, sizeof(*files));
	ASSERT_TRUE(files != NULL);
	for (i = 0; i < BIG_ENTRIES; i++) {
		big_entry(i, name, data, &len);
		files[i] = ASSERT_OK(fdbox_test_file(data, len));
	}
	t0 = last = fdbox_now();
	box = ASSERT_OK(fdbox_create(self->dev, BIG_BOX));
	for (i = 0; i < BIG_ENTRIES; i++) {
		progress("adding", i, BIG_ENTRIES, &last);
		big_entry(i, name, data, &len);
		ASSERT_OK(fdbox_add(box, files[i], name));
	}
	t1 = fdbox_now();
	ASSERT_OK(fdbox_seal(box));
	t2 = fdbox_now();
	ksft_print_msg("%s: create + %d adds %.3f s, seal %.3f s\n", BIG_BOX,
		       BIG_ENTRIES, t1 - t0, t2 - t1);
	close(box);
	for (i = 0; i < BIG_ENTRIES; i++)
		close(files[i]);
	free(files);
	ASSERT_BOX(self->dev, BIG_BOX, FDBOX_DIR_OUTGOING, FDBOX_BOX_SEALED, 0,
		   BIG_ENTRIES);
}

/* Every box is sealed, and nothing else exists, for the kexec. */
TEST_F(stage1, handed_over)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(boxes); i++)
		ASSERT_BOX(self->dev, boxes[i].name, FDBOX_DIR_OUTGOING,
			   FDBOX_BOX_SEALED, owner_of(&boxes[i]), boxes[i].n);
	ASSERT_BOX(self->dev, BIG_BOX, FDBOX_DIR_OUTGOING, FDBOX_BOX_SEALED, 0,
		   BIG_ENTRIES);
	ASSERT_EQ((int)ARRAY_SIZE(boxes) + 1, fdbox_count_boxes(self->dev, ""));
}

/*
 * Stage 2's tests have 120 s each rather than the harness's 30: several list
 * every box (core_scale's thousand among them) on the debug kernel under TCG,
 * while make test runs its boot pairs beside this run on the same two CPUs.
 */
FIXTURE(stage2) {
	int dev;
	int box;
};

/* Stage 2 loads fdbox_core.ko only: the handler comes later, on purpose. */
FIXTURE_SETUP(stage2)
{
	self->dev = -1;
	self->box = -1;
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	self->dev = ASSERT_OK(fdbox_open_dev());
}

FIXTURE_TEARDOWN(stage2)
{
	if (self->box >= 0)
		close(self->box);
	if (self->dev >= 0)
		close(self->dev);
}

/* The incoming blob was decoded, and fdbox-test isn't registered yet. */
TEST_F_TIMEOUT(stage2, incoming_ok, 120)
{
	struct fdbox_handler_info *h;
	struct fdbox_get_caps caps;
	int n;

	ASSERT_FALSE(fdbox_module_loaded(FDBOX_TEST_MODULE))
		TH_LOG("%s is loaded already: nothing should load it before this test",
		       FDBOX_TEST_MODULE);
	n = ASSERT_OK(fdbox_caps(self->dev, &caps, &h));
	EXPECT_TRUE(fdbox_find_handler(h, n, FDBOX_TEST_COMPATIBLE) == NULL);
	free(h);
	ASSERT_EQ(FDBOX_INCOMING_OK, caps.incoming);
}

/*
 * Boxes of the two-stage tests that run after this one in both stages, and
 * so seal theirs after this one's: core_scale's ("scale-"), core_users'
 * ("users-"), fdbox_memfd's (memfd_kexec, "memfd-"), the stress fuzzer's
 * ("fz-"), the CLI's (tool_cli, "cli-") and fdbox_vfio's (vfio_kexec,
 * "vfio-"). This test leaves them alone.
 */
static bool is_foreign_box(const char name[FDBOX_NAME_LEN])
{
	return !strncmp(name, "scale-", 6) || !strncmp(name, "memfd-", 6) ||
	       !strncmp(name, "cli-", 4) || !strncmp(name, "vfio-", 5) ||
	       !strncmp(name, "users-", 6) || !strncmp(name, "fz-", 3);
}

/* Every box came over, incoming, with its owner and entry count. */
TEST_F_TIMEOUT(stage2, every_box_listed, 120)
{
	struct fdbox_box_summary *all;
	int n, i, ours = 0;
	size_t j;

	for (j = 0; j < ARRAY_SIZE(boxes); j++)
		ASSERT_BOX(self->dev, boxes[j].name, FDBOX_DIR_INCOMING,
			   FDBOX_BOX_INCOMING, owner_of(&boxes[j]), boxes[j].n);
	ASSERT_BOX(self->dev, BIG_BOX, FDBOX_DIR_INCOMING, FDBOX_BOX_INCOMING,
		   0, BIG_ENTRIES);
	n = ASSERT_OK(fdbox_list(self->dev, &all));
	for (i = 0; i < n; i++) {
		EXPECT_EQ(FDBOX_DIR_INCOMING, all[i].direction)
			TH_LOG("box \"%.*s\"", FDBOX_NAME_LEN, all[i].name);
		ours += !is_foreign_box(all[i].name);
	}
	free(all);
	ASSERT_EQ((int)ARRAY_SIZE(boxes) + 1, ours);
}

/*
 * The entries of box B, before or after the handler is loaded: each as the
 * table says, with its version and dependencies, and with BOX_INFO's own
 * fields right.
 */
static void check_kx_box(struct __test_metadata *_metadata, int dev,
			 const struct kx_box *b, bool handler)
{
	const struct fdbox_entry_info *e;
	struct fdbox_entry_info *all;
	struct fdbox_box_info info;
	int box, n, i;

	box = ASSERT_OK(fdbox_open_as(dev, b->name, FDBOX_OPEN_INCOMING,
				      owner_of(b)));
	ASSERT_CLOEXEC(box);
	n = fdbox_box_info(box, &info, &all);
	close(box);
	ASSERT_EQ(b->n, n) TH_LOG("box %s: %s", b->name, fdbox_errname(n));
	ASSERT_NAME(b->name, info.name);
	ASSERT_EQ(FDBOX_DIR_INCOMING, info.direction);
	ASSERT_EQ(FDBOX_BOX_INCOMING, info.state);
	ASSERT_EQ(owner_of(b), info.owner_uid);
	for (i = 0; i < b->n; i++) {
		const struct kx_entry *k = &b->e[i];

		e = fdbox_find_entry(all, n, k->name);
		ASSERT_TRUE(e != NULL) TH_LOG("%s/%s missing", b->name, k->name);
		ASSERT_NAME(FDBOX_TEST_COMPATIBLE, e->compatible);
		ASSERT_EQ(k->payload_version ?: FDBOX_TEST_VERSION, e->version)
			TH_LOG("%s/%s", b->name, k->name);
		ASSERT_EQ(k->dep ? 1 : 0, e->n_deps)
			TH_LOG("%s/%s", b->name, k->name);
		if (handler) {
			ASSERT_EQ(k->state, e->state)
				TH_LOG("%s/%s", b->name, k->name);
			ASSERT_EQ(k->reason, e->reason)
				TH_LOG("%s/%s", b->name, k->name);
		} else {
			ASSERT_EQ(FDBOX_ENTRY_UNAVAILABLE, e->state)
				TH_LOG("%s/%s", b->name, k->name);
			/*
			 * An entry whose dependency has no handler either:
			 * its own missing handler, or the dependency.
			 */
			if (k->dep && e->reason == FDBOX_REASON_DEPENDENCY)
				continue;
			ASSERT_EQ(FDBOX_REASON_NO_HANDLER, e->reason)
				TH_LOG("%s/%s", b->name, k->name);
		}
	}
	free(all);
}

static void check_big_box(struct __test_metadata *_metadata, int dev,
			  __u32 state, __u32 reason)
{
	struct fdbox_entry_info *all;
	struct fdbox_box_info info;
	unsigned char data[64];
	char name[16];
	int box, n, i;
	size_t len;

	box = ASSERT_OK(fdbox_open(dev, BIG_BOX, FDBOX_OPEN_INCOMING));
	n = fdbox_box_info(box, &info, &all);
	close(box);
	ASSERT_EQ(BIG_ENTRIES, n);
	for (i = 0; i < BIG_ENTRIES; i++) {
		const struct fdbox_entry_info *e;

		big_entry(i, name, data, &len);
		e = fdbox_find_entry(all, n, name);
		ASSERT_TRUE(e != NULL) TH_LOG("%s missing", name);
		ASSERT_EQ(state, e->state) TH_LOG("%s", name);
		ASSERT_EQ(reason, e->reason) TH_LOG("%s", name);
	}
	free(all);
}

/*
 * Without fdbox_test.ko every fdbox-test entry is unavailable, for want of
 * a handler; retrieving one is ENODATA and changes nothing.
 */
TEST_F_TIMEOUT(stage2, entries_wait_for_handler, 120)
{
	char *before;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(boxes); i++)
		check_kx_box(_metadata, self->dev, &boxes[i], false);
	check_big_box(_metadata, self->dev, FDBOX_ENTRY_UNAVAILABLE,
		      FDBOX_REASON_NO_HANDLER);

	self->box = ASSERT_OK(fdbox_open(self->dev, "late", FDBOX_OPEN_INCOMING));
	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(ENODATA, fdbox_retrieve(self->box, "l0"));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
}

/*
 * Opening and closing an incoming box changes nothing. Outgoing names are
 * another namespace: OPEN_BOX outgoing doesn't find an incoming box, and
 * CREATE_BOX can take its name.
 */
TEST_F_TIMEOUT(stage2, incoming_box_fd_is_harmless, 120)
{
	char *before;
	int box;

	before = SNAPSHOT(self->dev);
	box = ASSERT_OK(fdbox_open(self->dev, "late", FDBOX_OPEN_INCOMING));
	ASSERT_EQ(0, close(box));
	ASSERT_UNCHANGED(self->dev, before);

	ASSERT_FAILS(ENOENT, fdbox_open(self->dev, "late", FDBOX_OPEN_OUTGOING));
	ASSERT_FAILS(ENOENT, fdbox_open(self->dev, "nonesuch", FDBOX_OPEN_INCOMING));
	self->box = ASSERT_OK(fdbox_create(self->dev, "late"));
	ASSERT_BOX(self->dev, "late", FDBOX_DIR_OUTGOING, FDBOX_BOX_OPEN, 0, 0);
	ASSERT_BOX(self->dev, "late", FDBOX_DIR_INCOMING, FDBOX_BOX_INCOMING,
		   0, 2);
	ASSERT_EQ(0, close(self->box));
	self->box = -1;
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
}

/*
 * Loading the handler after fdbox_core makes its entries restorable; those
 * it can't read stay unavailable, with the reason.
 */
TEST_F_TIMEOUT(stage2, handler_load_makes_entries_restorable, 120)
{
	const struct fdbox_handler_info *t;
	struct fdbox_handler_info *h;
	struct fdbox_get_caps caps;
	size_t i;
	int n;

	ASSERT_MODULE(FDBOX_TEST_MODULE);
	n = ASSERT_OK(fdbox_caps(self->dev, &caps, &h));
	t = fdbox_find_handler(h, n, FDBOX_TEST_COMPATIBLE);
	ASSERT_TRUE(t != NULL);
	EXPECT_EQ(FDBOX_TEST_VERSION, t->version);
	free(h);
	for (i = 0; i < ARRAY_SIZE(boxes); i++)
		check_kx_box(_metadata, self->dev, &boxes[i], true);
	check_big_box(_metadata, self->dev, FDBOX_ENTRY_RESTORABLE,
		      FDBOX_REASON_NONE);
}

/*
 * An incoming box takes no outgoing command (EBUSY), and RETRIEVE and
 * DISCARD check their arguments: size, tail, flags, __reserved, names
 * (EINVAL, E2BIG), unknown entries (ENOENT). Nothing changes.
 */
TEST_F_TIMEOUT(stage2, incoming_box_rejects, 120)
{
	struct fdbox_box_retrieve r;
	struct fdbox_box_discard d;
	struct {
		struct fdbox_box_retrieve r;
		__u64 tail;
	} rt;
	char *before;
	int file, fds;

	file = ASSERT_OK(fdbox_test_file("x", 1));
	self->box = ASSERT_OK(fdbox_open(self->dev, "vm-a", FDBOX_OPEN_INCOMING));
	before = SNAPSHOT(self->dev);
	fds = fdbox_count_fds();

	ASSERT_FAILS(EBUSY, fdbox_add(self->box, file, "new"));
	ASSERT_FAILS(EBUSY, fdbox_remove(self->box, "a0"));
	ASSERT_FAILS(EBUSY, fdbox_seal(self->box));
	ASSERT_FAILS(EBUSY, fdbox_cancel(self->box));
	ASSERT_FILE(file, 0, 0, 0, 0);

	ASSERT_FAILS(ENOENT, fdbox_retrieve(self->box, "nonesuch"));
	ASSERT_FAILS(ENOENT, fdbox_discard(self->box, "nonesuch"));

	memset(&r, 0, sizeof(r));
	r.size = sizeof(r);
	fdbox_name(r.name, "a0");
	r.flags = 1;
	ASSERT_FAILS(EINVAL, fdbox_raw(self->box, FDBOX_BOX_RETRIEVE, &r));
	r.flags = 0;
	r.__reserved = 1;
	ASSERT_FAILS(EINVAL, fdbox_raw(self->box, FDBOX_BOX_RETRIEVE, &r));
	r.__reserved = 0;
	r.size = sizeof(r) - 1;
	ASSERT_FAILS(EINVAL, fdbox_raw(self->box, FDBOX_BOX_RETRIEVE, &r));
	r.size = sizeof(r);
	r.name[10] = 'x';
	ASSERT_FAILS(EINVAL, fdbox_raw(self->box, FDBOX_BOX_RETRIEVE, &r));
	memset(r.name, 0, sizeof(r.name));
	ASSERT_FAILS(EINVAL, fdbox_raw(self->box, FDBOX_BOX_RETRIEVE, &r));
	memcpy(r.name, "\xff\xfe", 2);
	ASSERT_FAILS(EINVAL, fdbox_raw(self->box, FDBOX_BOX_RETRIEVE, &r));

	memset(&rt, 0, sizeof(rt));
	rt.r.size = sizeof(rt);
	fdbox_name(rt.r.name, "a0");
	rt.tail = 1;
	ASSERT_FAILS(E2BIG, fdbox_raw(self->box, FDBOX_BOX_RETRIEVE, &rt));

	memset(&d, 0, sizeof(d));
	d.size = sizeof(d);
	fdbox_name(d.name, "a0");
	d.flags = 1U << 31;
	ASSERT_FAILS(EINVAL, fdbox_raw(self->box, FDBOX_BOX_DISCARD, &d));
	/* "All" is all zero: a stray byte after an empty name is not. */
	d.flags = 0;
	memset(d.name, 0, sizeof(d.name));
	d.name[5] = 'x';
	ASSERT_FAILS(EINVAL, fdbox_raw(self->box, FDBOX_BOX_DISCARD, &d));
	d.size = sizeof(__u32);
	ASSERT_FAILS(EINVAL, fdbox_raw(self->box, FDBOX_BOX_DISCARD, &d));

	ASSERT_UNCHANGED(self->dev, before);
	ASSERT_EQ(fds, fdbox_count_fds());
	free(before);
	close(file);
}

/*
 * Retrieves entry NAME of box B through BOX: a new O_CLOEXEC fd whose file
 * holds the data stage 1 wrote, marked restored; the entry is then shown
 * retrieved. Returns the fd.
 */
static int retrieve_kx(struct __test_metadata *_metadata, int box,
		       const struct kx_box *b, const char *name)
{
	unsigned char want[FDBOX_TEST_DATA_MAX], got[FDBOX_TEST_DATA_MAX + 1];
	const struct kx_entry *e = &b->e[kx_index(b, name)];
	struct fdbox_test_info info;
	ssize_t len;
	int fd;

	fd = fdbox_retrieve(box, name);
	ASSERT_LE(0, fd) TH_LOG("retrieve %s/%s: %s", b->name, name,
				fdbox_errname(fd));
	ASSERT_CLOEXEC(fd);
	kx_data(b, e, want);
	len = fdbox_read_all(fd, got, sizeof(got));
	ASSERT_EQ((ssize_t)e->len, len) TH_LOG("%s/%s", b->name, name);
	ASSERT_EQ(0, memcmp(want, got, e->len)) TH_LOG("%s/%s", b->name, name);
	ASSERT_EQ(0, fdbox_test_info(fd, &info));
	ASSERT_EQ(1, info.restored);
	ASSERT_EQ(0, info.prepared);
	ASSERT_EQ(0, info.serialized);
	ASSERT_ENTRY(box, name, FDBOX_ENTRY_RETRIEVED, FDBOX_REASON_NONE,
		     e->payload_version ?: FDBOX_TEST_VERSION, e->dep ? 1 : 0);
	return fd;
}

/* Closing the last fd of a box with nothing left to retrieve releases it. */
#define CLOSE_AND_RELEASED(name) do {					\
	ASSERT_EQ(0, close(self->box));					\
	self->box = -1;							\
	ASSERT_NO_BOX(self->dev, name, FDBOX_DIR_INCOMING);		\
} while (0)

/*
 * Every entry of vm-a comes back with its data, O_CLOEXEC, once: a second
 * RETRIEVE, or a DISCARD, of a retrieved entry is EBUSY. A RETRIEVE whose
 * result can't be written back fails with EFAULT, installs no fd, and
 * leaves the entry retrievable.
 */
TEST_F_TIMEOUT(stage2, retrieve_entries, 120)
{
	const struct kx_box *b = find_kx_box("vm-a");
	long page = sysconf(_SC_PAGESIZE);
	struct fdbox_box_retrieve *ro;
	int fd[3], i, fds;
	char *before;

	self->box = ASSERT_OK(fdbox_open(self->dev, b->name,
					 FDBOX_OPEN_INCOMING));
	ASSERT_CLOEXEC(self->box);

	ro = mmap(NULL, page, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	ro->size = sizeof(*ro);
	fdbox_name(ro->name, "a0");
	ro->fd = -1;
	ASSERT_EQ(0, mprotect(ro, page, PROT_READ));
	before = SNAPSHOT(self->dev);
	fds = fdbox_count_fds();
	ASSERT_FAILS(EFAULT, fdbox_raw(self->box, FDBOX_BOX_RETRIEVE, ro));
	ASSERT_FAILS(EFAULT, fdbox_raw(self->box, FDBOX_BOX_RETRIEVE, NULL));
	ASSERT_UNCHANGED(self->dev, before);
	ASSERT_EQ(fds, fdbox_count_fds());
	free(before);
	munmap(ro, page);

	for (i = 0; i < b->n; i++)
		fd[i] = retrieve_kx(_metadata, self->box, b, b->e[i].name);

	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(EBUSY, fdbox_retrieve(self->box, "a0"));
	ASSERT_FAILS(EBUSY, fdbox_discard(self->box, "a1"));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);

	for (i = 0; i < b->n; i++)
		close(fd[i]);
	CLOSE_AND_RELEASED(b->name);
}

/*
 * Retrieving the dependent entry first restores its dependency before it:
 * the dependent's file saw the dependency's data (the first 64 bytes, and
 * its full length). The dependency, restored as such, stays restorable and
 * is still retrieved once.
 */
TEST_F_TIMEOUT(stage2, dependency_restored_first, 120)
{
	const struct kx_box *b = find_kx_box("vm-b");
	const struct kx_entry *base = &b->e[kx_index(b, "b-base")];
	unsigned char want[FDBOX_TEST_DATA_MAX];
	struct fdbox_test_info info;
	int dep_fd, base_fd;

	self->box = ASSERT_OK(fdbox_open(self->dev, b->name,
					 FDBOX_OPEN_INCOMING));
	dep_fd = retrieve_kx(_metadata, self->box, b, "b-dep");
	ASSERT_EQ(0, fdbox_test_info(dep_fd, &info));
	kx_data(b, base, want);
	ASSERT_EQ(base->len, info.dep_len);
	ASSERT_EQ(0, memcmp(want, info.dep_data, sizeof(info.dep_data)));

	ASSERT_ENTRY(self->box, "b-base", FDBOX_ENTRY_RESTORABLE,
		     FDBOX_REASON_NONE, -1, -1);

	base_fd = retrieve_kx(_metadata, self->box, b, "b-base");
	ASSERT_FAILS(EBUSY, fdbox_retrieve(self->box, "b-base"));
	close(dep_fd);
	close(base_fd);
	CLOSE_AND_RELEASED(b->name);
}

/*
 * Entries that can't be restored: an unknown payload version and its
 * dependent are ENODATA; a failing restore is EIO, installs nothing, and
 * the entry is then unavailable (RESTORE_FAILED, ENODATA). The plain entry
 * beside them restores. DISCARD of the rest marks them discarded, and a
 * discarded entry is EBUSY.
 */
TEST_F_TIMEOUT(stage2, unavailable_entries, 120)
{
	const struct kx_box *b = find_kx_box("odd");
	char *before;
	int fd, fds;

	self->box = ASSERT_OK(fdbox_open(self->dev, b->name,
					 FDBOX_OPEN_INCOMING));
	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(ENODATA, fdbox_retrieve(self->box, "v99"));
	ASSERT_FAILS(ENODATA, fdbox_retrieve(self->box, "needs-v99"));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);

	fds = fdbox_count_fds();
	ASSERT_FAILS(EIO, fdbox_retrieve(self->box, "fail-restore"));
	ASSERT_EQ(fds, fdbox_count_fds());
	ASSERT_ENTRY(self->box, "fail-restore", FDBOX_ENTRY_UNAVAILABLE,
		     FDBOX_REASON_RESTORE_FAILED, FDBOX_TEST_VERSION, 0);
	ASSERT_FAILS(ENODATA, fdbox_retrieve(self->box, "fail-restore"));

	fd = retrieve_kx(_metadata, self->box, b, "plain");
	close(fd);

	ASSERT_OK(fdbox_discard(self->box, NULL));
	ASSERT_ENTRY(self->box, "v99", FDBOX_ENTRY_DISCARDED, -1, 99, 0);
	ASSERT_ENTRY(self->box, "needs-v99", FDBOX_ENTRY_DISCARDED, -1,
		     FDBOX_TEST_VERSION, 1);
	ASSERT_ENTRY(self->box, "fail-restore", FDBOX_ENTRY_DISCARDED, -1,
		     FDBOX_TEST_VERSION, 0);
	ASSERT_ENTRY(self->box, "plain", FDBOX_ENTRY_RETRIEVED,
		     FDBOX_REASON_NONE, FDBOX_TEST_VERSION, 0);
	ASSERT_FAILS(EBUSY, fdbox_retrieve(self->box, "v99"));
	ASSERT_FAILS(EBUSY, fdbox_discard(self->box, "needs-v99"));
	CLOSE_AND_RELEASED(b->name);
}

/* The box sealed by a process that exited came over whole. */
TEST_F_TIMEOUT(stage2, orphan_box, 120)
{
	const struct kx_box *b = find_kx_box("orphan");
	int fd;

	self->box = ASSERT_OK(fdbox_open(self->dev, b->name,
					 FDBOX_OPEN_INCOMING));
	fd = retrieve_kx(_metadata, self->box, b, "o0");
	close(fd);
	CLOSE_AND_RELEASED(b->name);
}

/*
 * Owners carried over: nobody, with an inherited /dev/fdbox fd, finds no box
 * by the name of root's incoming box, gets EPERM opening it by owner and
 * EACCES opening /dev/fdbox, but opens its own box and retrieves from it;
 * root (CAP_SYS_ADMIN) opens nobody's box by owner and retrieves the rest.
 */
TEST_F_TIMEOUT(stage2, owners, 120)
{
	const struct kx_box *b = find_kx_box("vm-user");
	unsigned char want[64], got[64];
	pid_t pid;
	int box, fd;

	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		CHILD_OK(10, fdbox_become_nobody());
		CHILD_FAILS(11, EACCES, fdbox_open_dev());
		CHILD_FAILS(12, ENOENT, fdbox_open(self->dev, "late",
						   FDBOX_OPEN_INCOMING));
		CHILD_FAILS(16, EPERM, fdbox_open_as(self->dev, "late",
						     FDBOX_OPEN_INCOMING, 0));
		box = CHILD_OK(13, fdbox_open(self->dev, b->name,
					      FDBOX_OPEN_INCOMING));
		fd = CHILD_OK(14, fdbox_retrieve(box, "u0"));
		kx_data(b, &b->e[0], want);
		if (fdbox_read_all(fd, got, sizeof(got)) != (ssize_t)b->e[0].len ||
		    memcmp(want, got, b->e[0].len))
			_exit(15);
		_exit(0);
	}
	ASSERT_EQ(0, fdbox_wait_child(pid));

	ASSERT_FAILS(ENOENT, fdbox_open(self->dev, b->name, FDBOX_OPEN_INCOMING));
	self->box = ASSERT_OK(fdbox_open_as(self->dev, b->name,
					    FDBOX_OPEN_INCOMING, FDBOX_NOBODY));
	ASSERT_ENTRY(self->box, "u0", FDBOX_ENTRY_RETRIEVED, FDBOX_REASON_NONE,
		     FDBOX_TEST_VERSION, 0);
	ASSERT_FAILS(EBUSY, fdbox_retrieve(self->box, "u0"));
	fd = retrieve_kx(_metadata, self->box, b, "u1");
	close(fd);
	CLOSE_AND_RELEASED(b->name);
}

/*
 * The box kept for the late handler: its entries come back, the empty one
 * too; and a restored file can go into a new outgoing box, for the next
 * kexec, like any other.
 */
TEST_F_TIMEOUT(stage2, late_handler_entries, 120)
{
	const struct kx_box *b = find_kx_box("late");
	int fd0, fd1, again;

	self->box = ASSERT_OK(fdbox_open(self->dev, b->name,
					 FDBOX_OPEN_INCOMING));
	fd0 = retrieve_kx(_metadata, self->box, b, "l0");
	fd1 = retrieve_kx(_metadata, self->box, b, "l1");
	CLOSE_AND_RELEASED(b->name);

	again = ASSERT_OK(fdbox_create(self->dev, "again"));
	ASSERT_OK(fdbox_add(again, fd0, "l0"));
	ASSERT_OK(fdbox_add(again, fd1, "l1"));
	ASSERT_OK(fdbox_seal(again));
	ASSERT_FILE(fd0, 1, 1, 1, 0);
	ASSERT_OK(fdbox_cancel(again));
	ASSERT_EQ(0, close(again));
	ASSERT_NO_BOX(self->dev, "again", FDBOX_DIR_OUTGOING);
	ASSERT_FILE(fd0, 0, 0, 1, 1);
	close(fd0);
	close(fd1);
}

/*
 * DISCARD frees unretrieved memory at once: the 64 MiB of ballast come back
 * to the page allocator (MemFree), and discarded entries are EBUSY to
 * RETRIEVE and DISCARD alike.
 */
TEST_F_TIMEOUT(stage2, discard_frees_memory, 120)
{
	long before, after = 0;
	int tries;

	self->box = ASSERT_OK(fdbox_open(self->dev, "ballast",
					 FDBOX_OPEN_INCOMING));
	before = fdbox_meminfo_kb("MemFree");
	ASSERT_LT(0, before);
	ASSERT_OK(fdbox_discard(self->box, NULL));
	/* Allow the kernel a moment, in case it frees from a worker. */
	for (tries = 0; tries < 50; tries++) {
		after = fdbox_meminfo_kb("MemFree");
		if (after - before >= BALLAST_FREED_MIN_KB)
			break;
		usleep(100 * 1000);
	}
	ksft_print_msg("discarding %llu MiB of ballast: MemFree %ld -> %ld kB (+%ld)\n",
		       BALLAST / MiB, before, after, after - before);
	EXPECT_LE(BALLAST_FREED_MIN_KB, after - before);

	ASSERT_ENTRY(self->box, "heavy", FDBOX_ENTRY_DISCARDED, -1,
		     FDBOX_TEST_VERSION, 0);
	ASSERT_ENTRY(self->box, "light", FDBOX_ENTRY_DISCARDED, -1,
		     FDBOX_TEST_VERSION, 0);
	ASSERT_FAILS(EBUSY, fdbox_retrieve(self->box, "heavy"));
	ASSERT_FAILS(EBUSY, fdbox_discard(self->box, "light"));
	CLOSE_AND_RELEASED("ballast");
}

/* All 2,000 entries of one box, retrieved and checked; timed. */
TEST_F_TIMEOUT(stage2, retrieve_big_box, 600)
{
	unsigned char want[64], got[65];
	char name[16];
	double t0, t1, last;
	size_t len;
	int *fds, i;

	ASSERT_OK(fdbox_raise_nofile(BIG_ENTRIES + 256));
	fds = calloc(BIG_ENTRIES, sizeof(*fds));
	ASSERT_TRUE(fds != NULL);
	self->box = ASSERT_OK(fdbox_open(self->dev, BIG_BOX,
					 FDBOX_OPEN_INCOMING));
	t0 = last = fdbox_now();
	for (i = 0; i < BIG_ENTRIES; i++) {
		progress("retrieving", i, BIG_ENTRIES, &last);
		snprintf(name, sizeof(name), "e%04d", i);
		fds[i] = fdbox_retrieve(self->box, name);
		ASSERT_LE(0, fds[i]) TH_LOG("%s: %s", name, fdbox_errname(fds[i]));
	}
	t1 = fdbox_now();
	ksft_print_msg("%s: %d retrieves %.3f s (%.1f us each)\n", BIG_BOX,
		       BIG_ENTRIES, t1 - t0, (t1 - t0) * 1e6 / BIG_ENTRIES);
	for (i = 0; i < BIG_ENTRIES; i++) {
		big_entry(i, name, want, &len);
		ASSERT_EQ((ssize_t)len, fdbox_read_all(fds[i], got, sizeof(got)))
			TH_LOG("%s", name);
		ASSERT_EQ(0, memcmp(want, got, len)) TH_LOG("%s", name);
		close(fds[i]);
	}
	free(fds);
	CLOSE_AND_RELEASED(BIG_BOX);
}

/*
 * Whatever is left (nothing, if every test above passed) is discarded, and
 * then no box remains: nothing leaks into the next kexec or to kmemleak.
 */
TEST_F_TIMEOUT(stage2, nothing_left, 120)
{
	struct fdbox_box_summary *all;
	struct fdbox_handler_info *h;
	struct fdbox_get_caps caps;
	int n, i, box, left = 0;

	n = ASSERT_OK(fdbox_list(self->dev, &all));
	for (i = 0; i < n; i++) {
		if (is_foreign_box(all[i].name))
			continue;
		left++;
		TH_LOG("left: box \"%.*s\" direction %u", FDBOX_NAME_LEN,
		       all[i].name, all[i].direction);
		if (all[i].direction != FDBOX_DIR_INCOMING)
			continue;
		box = fdbox_open_as(self->dev, all[i].name, FDBOX_OPEN_INCOMING,
				    all[i].owner_uid);
		if (box >= 0) {
			fdbox_discard(box, NULL);
			close(box);
		}
	}
	free(all);
	EXPECT_EQ(0, left);
	ASSERT_OK(fdbox_caps(self->dev, &caps, &h));
	free(h);
	EXPECT_EQ(FDBOX_INCOMING_OK, caps.incoming);
}

/* "-s N" from the harness selects the fixture of stage N. */
int main(int argc, char **argv)
{
	char *args[] = { argv[0], "-f", NULL, NULL };

	if (argc == 2 && !strcmp(argv[1], "-l"))
		return test_harness_run(argc, argv);
	if (argc != 3 || strcmp(argv[1], "-s") ||
	    (strcmp(argv[2], "1") && strcmp(argv[2], "2"))) {
		fprintf(stderr, "usage: %s -s 1|2 | -l\n", argv[0]);
		return KSFT_FAIL;
	}
	args[2] = strcmp(argv[2], "1") ? "stage2" : "stage1";
	return test_harness_run(3, args);
}
