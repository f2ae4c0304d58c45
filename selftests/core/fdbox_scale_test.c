// SPDX-License-Identifier: GPL-2.0
/*
 * Scale selftests of fdbox_core: a thousand boxes beside one box of ten
 * thousand entries, with the time each phase takes. A two-stage program:
 *
 * "-s 1", before the kexec: the single-boot checks first (the "scale"
 * fixture: the thousand boxes and the big box sealed, listed, cancelled and
 * closed; the FDBOX_MAX_ENTRIES limit), each cleaning up after itself; then
 * (the "stage1" fixture) a thousand boxes of one entry each and a box of ten
 * thousand entries, every entry with data of its own, are made under
 * KX_PREFIX, sealed, and every fd closed: the sealed boxes are handed over;
 * so is a memfd of 256 MiB whose pages are physically scattered, and the
 * whole hand-over is then past 4 MiB (scale_handover: the 1,000 boxes, the
 * scattered memfd, the size past one KHO block).
 *
 * "-s 2", after it: every one of those boxes is listed as incoming with its
 * entry count; every entry is retrieved, its data read and compared; and
 * no box of this test is left.
 *
 * The harness runs it after core_kexec in both stages (tests/twostage, in
 * alphabetical order): core_kexec's stage 1 starts by checking that no box
 * exists, and its stage 2 starts before fdbox_test.ko is loaded. It leaves
 * other tests' boxes alone, and core_kexec and tool_cli ignore its boxes.
 * FDBOX_MAX_BOXES counts outgoing and incoming boxes together: the 981
 * boxes here leave room for the few of core_kexec, tool_cli and the memfd
 * and vfio tests.
 *
 * The debug kernel under TCG takes milliseconds per SEAL and per RETRIEVE of
 * an entry: long loops print a line every ten seconds for the VM runner's
 * silence watchdog. RLIMIT_NOFILE is raised to what each test keeps open.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "fdbox_common.h"
#include "memfd_util.h"

/* Every box of this test; the single-boot tests cancel theirs. */
#define PREFIX "scale-"
/* The boxes carried across the kexec. */
#define KX_PREFIX PREFIX "kx-"
#define KX_BIG KX_PREFIX "big"
/*
 * A memfd whose pages are physically scattered, in a box of its own: 256 MiB
 * in make test, what fdbox.scale_mib= says under make scale.
 */
#define KX_SCATTERED KX_PREFIX "scattered"
#define SCATTERED_MIB 256
#define SCATTERED_SEED 77
/* The one KHO block the whole hand-over once had to fit in. */
#define OLD_CEILING (4 * MiB)
/* The one entry of each small box. */
#define KX_ENTRY "guest-ram"
#define N_BOXES 980
#define N_ENTRIES 10000
/* The most data an entry of the kexec part holds. */
#define KX_DATA_MAX 512
/* Room for every fd a test keeps. */
#define MAX_KEPT (FDBOX_MAX_ENTRIES + 64)

FIXTURE(scale) {
	int dev;
	int *fds;		/* every box and file fd, closed in teardown */
	int n_fds;
	int max_fds;
};

FIXTURE_SETUP(scale)
{
	self->dev = -1;
	self->fds = NULL;
	self->n_fds = 0;
	self->max_fds = 0;
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE(FDBOX_TEST_MODULE);
	self->dev = ASSERT_OK(fdbox_open_dev());
	self->max_fds = MAX_KEPT;
	self->fds = calloc(self->max_fds, sizeof(*self->fds));
	ASSERT_TRUE(self->fds != NULL);
}

FIXTURE_TEARDOWN(scale)
{
	int i;

	/* Sealed boxes outlive their fds: cancel them, then close all. */
	if (self->dev >= 0)
		EXPECT_LE(0, fdbox_cancel_outgoing(self->dev, PREFIX));
	for (i = self->n_fds - 1; i >= 0; i--)
		close(self->fds[i]);
	free(self->fds);
	if (self->dev >= 0) {
		EXPECT_EQ(0, fdbox_count_boxes(self->dev, PREFIX))
			TH_LOG("boxes left behind");
		close(self->dev);
	}
}

/* Keeps FD for the teardown to close; returns it. */
static int keep(struct __test_metadata *_metadata, FIXTURE_DATA(scale) *self,
		int fd)
{
	ASSERT_GT(self->max_fds, self->n_fds);
	self->fds[self->n_fds++] = fd;
	return fd;
}

static int new_file(struct __test_metadata *_metadata,
		    FIXTURE_DATA(scale) *self, int i)
{
	char data[32];

	snprintf(data, sizeof(data), "scale file %d", i);
	return keep(_metadata, self,
		    ASSERT_OK(fdbox_test_file(data, strlen(data))));
}

/*
 * A line now and then in a long loop: the VM runner stops a guest that is
 * silent too long, and under TCG these loops take a while.
 */
static void progress(const char *what, int done, int total, double *last)
{
	double now = fdbox_now();

	if (now - *last < 10)
		return;
	ksft_print_msg("%s: %d of %d\n", what, done, total);
	*last = now;
}

/* Closes every fd kept, in the order they were opened. */
static void close_kept(FIXTURE_DATA(scale) *self)
{
	int i;

	for (i = 0; i < self->n_fds; i++)
		close(self->fds[i]);
	self->n_fds = 0;
}

/*
 * 980 boxes of one entry each, and one box of 10,000 entries: created and
 * filled, sealed, listed, cancelled and closed, each phase timed. Every
 * file is prepared once and unprepared once.
 */
TEST_F_TIMEOUT(scale, boxes_and_entries, 900)
{
	int *boxes, *files, *big_files, big, i, n;
	struct fdbox_box_summary *all;
	char name[FDBOX_NAME_LEN];
	double t0, t1, last;

	ASSERT_OK(fdbox_raise_nofile(2 * N_BOXES + N_ENTRIES + 64));
	boxes = calloc(N_BOXES, sizeof(*boxes));
	files = calloc(N_BOXES, sizeof(*files));
	big_files = calloc(N_ENTRIES, sizeof(*big_files));
	ASSERT_TRUE(boxes && files && big_files);
	for (i = 0; i < N_BOXES; i++)
		files[i] = new_file(_metadata, self, i);
	for (i = 0; i < N_ENTRIES; i++)
		big_files[i] = new_file(_metadata, self, N_BOXES + i);

	t0 = last = fdbox_now();
	for (i = 0; i < N_BOXES; i++) {
		progress("creating boxes", i, N_BOXES, &last);
		snprintf(name, sizeof(name), PREFIX "%04d", i);
		boxes[i] = fdbox_create(self->dev, name);
		ASSERT_LE(0, boxes[i]) TH_LOG("box %d: %s", i,
					      fdbox_errname(boxes[i]));
		keep(_metadata, self, boxes[i]);
		ASSERT_OK(fdbox_add(boxes[i], files[i], "guest-ram"));
	}
	t1 = fdbox_now();
	ksft_print_msg("%d boxes: create + add %.3f s (%.1f us per box)\n",
		       N_BOXES, t1 - t0, (t1 - t0) * 1e6 / N_BOXES);

	t0 = fdbox_now();
	big = keep(_metadata, self, ASSERT_OK(fdbox_create(self->dev, PREFIX "big")));
	for (i = 0; i < N_ENTRIES; i++) {
		progress("adding entries", i, N_ENTRIES, &last);
		snprintf(name, sizeof(name), "entry-%05d", i);
		ASSERT_OK(fdbox_add(big, big_files[i], name));
	}
	t1 = fdbox_now();
	ksft_print_msg("1 box of %d entries: create + add %.3f s (%.1f us per entry)\n",
		       N_ENTRIES, t1 - t0, (t1 - t0) * 1e6 / N_ENTRIES);

	t0 = fdbox_now();
	for (i = 0; i < N_BOXES; i++) {
		progress("sealing boxes", i, N_BOXES, &last);
		ASSERT_OK(fdbox_seal(boxes[i]));
	}
	t1 = fdbox_now();
	ksft_print_msg("%d boxes: seal %.3f s (%.1f us per box)\n",
		       N_BOXES, t1 - t0, (t1 - t0) * 1e6 / N_BOXES);

	t0 = fdbox_now();
	ASSERT_OK(fdbox_seal(big));
	t1 = fdbox_now();
	ksft_print_msg("1 box of %d entries: seal %.3f s (%.1f us per entry)\n",
		       N_ENTRIES, t1 - t0, (t1 - t0) * 1e6 / N_ENTRIES);

	t0 = fdbox_now();
	n = ASSERT_OK(fdbox_list(self->dev, &all));
	t1 = fdbox_now();
	ksft_print_msg("list %d boxes %.3f s\n", n, t1 - t0);
	free(all);
	ASSERT_EQ(N_BOXES + 1, fdbox_count_boxes(self->dev, PREFIX));
	ASSERT_BOX(self->dev, PREFIX "big", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_SEALED, 0, N_ENTRIES);
	ASSERT_BOX(self->dev, PREFIX "0979", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_SEALED, 0, 1);
	ASSERT_FILE(big_files[N_ENTRIES - 1], 1, 1, 1, 0);

	/*
	 * The big box first: every cancel re-encodes what stays sealed, so
	 * the small boxes' cancels would each pay for its 10,000 entries.
	 */
	t0 = fdbox_now();
	ASSERT_OK(fdbox_cancel(big));
	t1 = fdbox_now();
	ksft_print_msg("1 box of %d entries: cancel %.3f s (%.1f us per entry)\n",
		       N_ENTRIES, t1 - t0, (t1 - t0) * 1e6 / N_ENTRIES);

	t0 = fdbox_now();
	for (i = 0; i < N_BOXES; i++) {
		progress("cancelling boxes", i, N_BOXES, &last);
		ASSERT_OK(fdbox_cancel(boxes[i]));
	}
	t1 = fdbox_now();
	ksft_print_msg("%d boxes: cancel %.3f s (%.1f us per box)\n",
		       N_BOXES, t1 - t0, (t1 - t0) * 1e6 / N_BOXES);

	t0 = fdbox_now();
	for (i = 0; i < N_BOXES; i++) {
		ASSERT_EQ(0, close(boxes[i]));
		boxes[i] = -1;
	}
	ASSERT_EQ(0, close(big));
	t1 = fdbox_now();
	ksft_print_msg("close (discard) all: %.3f s\n", t1 - t0);
	ASSERT_EQ(0, fdbox_count_boxes(self->dev, PREFIX));
	ASSERT_FILE(files[0], 0, 0, 1, 1);
	ASSERT_FILE(big_files[0], 0, 0, 1, 1);
	ASSERT_FILE(big_files[N_ENTRIES - 1], 0, 0, 1, 1);

	/* The teardown closes the files; the box fds' numbers stay unused. */
	free(boxes);
	free(files);
	free(big_files);
}

/*
 * A box holds FDBOX_MAX_ENTRIES entries; one more is ENOSPC with the box
 * unchanged. Closing it unprepares them all.
 */
TEST_F_TIMEOUT(scale, entry_limit, 900)
{
	char name[FDBOX_NAME_LEN];
	int box, file, i;
	double t0, t1, last;

	ASSERT_OK(fdbox_raise_nofile(FDBOX_MAX_ENTRIES + 64));
	box = keep(_metadata, self,
		   ASSERT_OK(fdbox_create(self->dev, PREFIX "limit")));
	t0 = last = fdbox_now();
	for (i = 0; i < FDBOX_MAX_ENTRIES; i++) {
		int ret;

		progress("adding entries", i, FDBOX_MAX_ENTRIES, &last);
		file = new_file(_metadata, self, i);
		snprintf(name, sizeof(name), "entry-%05d", i);
		ret = fdbox_add(box, file, name);
		ASSERT_EQ(0, ret) TH_LOG("entry %d: %s", i, fdbox_errname(ret));
	}
	t1 = fdbox_now();
	ksft_print_msg("%d entries: add %.3f s\n", FDBOX_MAX_ENTRIES, t1 - t0);

	file = new_file(_metadata, self, i);
	ASSERT_FAILS(ENOSPC, fdbox_add(box, file, "one-too-many"));
	ASSERT_FILE(file, 0, 0, 0, 0);
	ASSERT_BOX(self->dev, PREFIX "limit", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_OPEN, 0, FDBOX_MAX_ENTRIES);

	/* Closing the box discards it, then the files are closed. */
	close_kept(self);
	ASSERT_EQ(0, fdbox_count_boxes(self->dev, PREFIX));
}

/*
 * The kexec part. Box I is KX_PREFIX "%04d" with one entry, KX_ENTRY; the big
 * box's entries are "entry-%05d". Each entry's data is its own: a pattern
 * tagged with its name, of a length that varies with I.
 */
static void kx_box_name(int i, char name[FDBOX_NAME_LEN])
{
	snprintf(name, FDBOX_NAME_LEN, KX_PREFIX "%04d", i);
}

/* Box I's entry: 24 to 56 bytes. */
static size_t kx_box_data(int i, unsigned char buf[KX_DATA_MAX])
{
	char tag[FDBOX_NAME_LEN];
	size_t len = 24 + i % 33;

	kx_box_name(i, tag);
	fdbox_pattern(buf, len, tag);
	return len;
}

/*
 * The big box's entry I: its name, and 300 to 500 bytes of data: 4 MiB in
 * all, past what the box's blob, one KHO block, holds with its records.
 */
static size_t kx_big_entry(int i, char name[FDBOX_NAME_LEN],
			   unsigned char buf[KX_DATA_MAX])
{
	size_t len = 300 + i % 201;

	snprintf(name, FDBOX_NAME_LEN, "entry-%05d", i);
	fdbox_pattern(buf, len, name);
	return len;
}

/* N when NAME is PREFIX followed by exactly DIGITS decimal digits < MAX. */
static int parse_index(const char *name, const char *prefix, int digits,
		       int max)
{
	size_t plen = strlen(prefix);
	int i, n = 0;

	if (strncmp(name, prefix, plen) || strlen(name) != plen + digits)
		return -1;
	for (i = 0; i < digits; i++) {
		char c = name[plen + i];

		if (c < '0' || c > '9')
			return -1;
		n = n * 10 + (c - '0');
	}
	return n < max ? n : -1;
}

/* A name field as a C string. */
static void name_of(char dst[FDBOX_NAME_LEN + 1], const char src[FDBOX_NAME_LEN])
{
	memcpy(dst, src, FDBOX_NAME_LEN);
	dst[FDBOX_NAME_LEN] = '\0';
}

/*
 * Every box of the kexec part is listed once, in direction DIR and state
 * STATE, owned by root, with its entry count; and no other box of this
 * test is. One LIST_BOXES: finding 981 names one by one would take a
 * listing each.
 */
static void check_kx_listed(struct __test_metadata *_metadata, int dev,
			    __u32 dir, __u32 state)
{
	char name[FDBOX_NAME_LEN + 1];
	struct fdbox_box_summary *all;
	int n, i, idx, small = 0, big = 0;
	char *seen;

	seen = calloc(N_BOXES, 1);
	ASSERT_TRUE(seen != NULL);
	n = ASSERT_OK(fdbox_list(dev, &all));
	for (i = 0; i < n; i++) {
		name_of(name, all[i].name);
		if (strncmp(name, PREFIX, strlen(PREFIX)))
			continue;
		ASSERT_EQ(dir, all[i].direction) TH_LOG("box \"%s\"", name);
		ASSERT_EQ(state, all[i].state) TH_LOG("box \"%s\"", name);
		ASSERT_EQ(0, all[i].owner_uid) TH_LOG("box \"%s\"", name);
		/* Checked by its own tests. */
		if (!strcmp(name, KX_SCATTERED))
			continue;
		if (!strcmp(name, KX_BIG)) {
			ASSERT_EQ(N_ENTRIES, all[i].n_entries);
			big++;
			continue;
		}
		idx = parse_index(name, KX_PREFIX, 4, N_BOXES);
		ASSERT_LE(0, idx) TH_LOG("unexpected box \"%s\"", name);
		ASSERT_FALSE(seen[idx]) TH_LOG("box \"%s\" listed twice", name);
		seen[idx] = 1;
		ASSERT_EQ(1, all[i].n_entries) TH_LOG("box \"%s\"", name);
		small++;
	}
	ksft_print_msg("%d boxes listed, %d of them this test's\n", n,
		       small + big);
	free(all);
	free(seen);
	ASSERT_EQ(1, big) TH_LOG("%s listed %d times", KX_BIG, big);
	/* No duplicate and all in range: every one of them. */
	ASSERT_EQ(N_BOXES, small);
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

/* The boxes stay: they are sealed for the kexec. */
FIXTURE_TEARDOWN(stage1)
{
	if (self->dev >= 0)
		close(self->dev);
}

/*
 * The 980 boxes and the box of 10,000 entries, filled and sealed, each
 * phase timed; then every fd is closed, and the sealed boxes stay, listed
 * with every entry. Each SEAL costs only its own box, whatever is sealed
 * before it.
 */
TEST_F_TIMEOUT(stage1, seal_boxes_and_entries, 1800)
{
	int *boxes, *files, *big_files, big, i, others;
	unsigned char data[KX_DATA_MAX];
	char name[FDBOX_NAME_LEN];
	double t0, t1, last;
	size_t len;

	others = ASSERT_OK(fdbox_count_boxes(self->dev, ""));
	ASSERT_EQ(0, fdbox_count_boxes(self->dev, PREFIX))
		TH_LOG("the single-boot tests left boxes");
	ASSERT_GE(FDBOX_MAX_BOXES, others + N_BOXES + 2)
		TH_LOG("%d boxes of other tests leave no room", others);
	ksft_print_msg("sealing %d boxes beside %d of other tests\n",
		       N_BOXES + 1, others);

	ASSERT_OK(fdbox_raise_nofile(2 * N_BOXES + N_ENTRIES + 64));
	boxes = calloc(N_BOXES, sizeof(*boxes));
	files = calloc(N_BOXES, sizeof(*files));
	big_files = calloc(N_ENTRIES, sizeof(*big_files));
	ASSERT_TRUE(boxes && files && big_files);
	last = fdbox_now();
	for (i = 0; i < N_BOXES; i++) {
		len = kx_box_data(i, data);
		files[i] = ASSERT_OK(fdbox_test_file(data, len));
	}
	for (i = 0; i < N_ENTRIES; i++) {
		progress("making files", i, N_ENTRIES, &last);
		len = kx_big_entry(i, name, data);
		big_files[i] = ASSERT_OK(fdbox_test_file(data, len));
	}

	t0 = last = fdbox_now();
	for (i = 0; i < N_BOXES; i++) {
		progress("creating boxes", i, N_BOXES, &last);
		kx_box_name(i, name);
		boxes[i] = fdbox_create(self->dev, name);
		ASSERT_LE(0, boxes[i]) TH_LOG("box %s: %s", name,
					      fdbox_errname(boxes[i]));
		ASSERT_OK(fdbox_add(boxes[i], files[i], KX_ENTRY));
	}
	t1 = fdbox_now();
	ksft_print_msg("%d boxes: create + add %.3f s (%.1f us per box)\n",
		       N_BOXES, t1 - t0, (t1 - t0) * 1e6 / N_BOXES);

	t0 = fdbox_now();
	big = ASSERT_OK(fdbox_create(self->dev, KX_BIG));
	for (i = 0; i < N_ENTRIES; i++) {
		int ret;

		progress("adding entries", i, N_ENTRIES, &last);
		kx_big_entry(i, name, data);
		ret = fdbox_add(big, big_files[i], name);
		ASSERT_EQ(0, ret) TH_LOG("%s: %s", name, fdbox_errname(ret));
	}
	t1 = fdbox_now();
	ksft_print_msg("1 box of %d entries: create + add %.3f s (%.1f us per entry)\n",
		       N_ENTRIES, t1 - t0, (t1 - t0) * 1e6 / N_ENTRIES);

	t0 = fdbox_now();
	for (i = 0; i < N_BOXES; i++) {
		progress("sealing boxes", i, N_BOXES, &last);
		ASSERT_OK(fdbox_seal(boxes[i]));
	}
	t1 = fdbox_now();
	ksft_print_msg("%d boxes: seal %.3f s (%.1f us per box)\n",
		       N_BOXES, t1 - t0, (t1 - t0) * 1e6 / N_BOXES);

	t0 = fdbox_now();
	ASSERT_OK(fdbox_seal(big));
	t1 = fdbox_now();
	ksft_print_msg("1 box of %d entries: seal %.3f s (%.1f us per entry)\n",
		       N_ENTRIES, t1 - t0, (t1 - t0) * 1e6 / N_ENTRIES);
	ASSERT_FILE(files[0], 1, 1, 1, 0);
	ASSERT_FILE(files[N_BOXES - 1], 1, 1, 1, 0);
	ASSERT_FILE(big_files[0], 1, 1, 1, 0);
	ASSERT_FILE(big_files[N_ENTRIES - 1], 1, 1, 1, 0);

	/* Sealed boxes outlive every fd: the kernel holds the files. */
	t0 = fdbox_now();
	for (i = 0; i < N_BOXES; i++) {
		ASSERT_EQ(0, close(boxes[i]));
		ASSERT_EQ(0, close(files[i]));
	}
	ASSERT_EQ(0, close(big));
	for (i = 0; i < N_ENTRIES; i++)
		ASSERT_EQ(0, close(big_files[i]));
	t1 = fdbox_now();
	ksft_print_msg("close all %d fds: %.3f s\n", 2 * N_BOXES + 1 + N_ENTRIES,
		       t1 - t0);
	free(boxes);
	free(files);
	free(big_files);

	check_kx_listed(_metadata, self->dev, FDBOX_DIR_OUTGOING,
			FDBOX_BOX_SEALED);
}

/* The scattered memfd's size: fdbox.scale_mib= on the command line, or 256 MiB. */
static size_t scattered_size(void)
{
	char cmdline[4096] = "", *arg;
	size_t mib = SCATTERED_MIB;
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, cmdline, sizeof(cmdline) - 1) < 0)
			cmdline[0] = '\0';
		close(fd);
	}
	arg = strstr(cmdline, "fdbox.scale_mib=");
	if (arg)
		mib = strtoul(arg + strlen("fdbox.scale_mib="), NULL, 10);
	return mib * MiB;
}

/* Writes page P of the scattered memfd's content into BUF. */
static void scattered_page(size_t p, uint64_t buf[PAGE / 8])
{
	uint64_t s = (SCATTERED_SEED + p) | 1;
	size_t i;

	for (i = 0; i < PAGE / 8; i++)
		buf[i] = memfd_rand(&s);
}

/*
 * Fills FD with SIZE bytes, a page at a time in a random order over the
 * file: the allocator hands out pages in the order they are asked for, so
 * the file's consecutive pages lie far apart, and its folio runs are one
 * page each, as on a host whose memory is fragmented. FD is settled first
 * through DEV: a page in KHO scratch would be migrated at ADD, and the
 * migration would put the pages back in order.
 */
static int fill_scattered(int fd, int dev, size_t size)
{
	const size_t pages = size / PAGE;
	uint64_t buf[PAGE / 8], s = 0x5eed;
	size_t *order, i, j, t;
	int err = 0;

	err = fdbox_settle(dev, fd, FDBOX_SETTLE_FUTURE, NULL);
	if (err)
		return err;
	if (ftruncate(fd, size))
		return -errno;
	order = malloc(pages * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (i = 0; i < pages; i++)
		order[i] = i;
	for (i = pages; i > 1; i--) {
		j = memfd_rand(&s) % i;
		t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	for (i = 0; !err && i < pages; i++) {
		scattered_page(order[i], buf);
		if (pwrite(fd, buf, PAGE, order[i] * PAGE) != (ssize_t)PAGE)
			err = -errno;
	}
	free(order);
	return err;
}

/* memfd_hash() of a memfd that fill_scattered() filled with SIZE bytes. */
static uint64_t scattered_hash(size_t size)
{
	uint64_t h = 1469598103934665603ULL, buf[PAGE / 8];
	size_t p, i;

	for (p = 0; p < size / PAGE; p++) {
		scattered_page(p, buf);
		for (i = 0; i < PAGE / 8; i++)
			h = (h ^ buf[i]) * 1099511628211ULL;
	}
	return h;
}

/*
 * A memfd whose pages are physically scattered, so that its payload goes
 * out of line, in more than one chunk. Then the outgoing hand-over, as the
 * inspector reads it from debugfs, is past 4 MiB, the single KHO block it
 * once had to fit; under make scale, the memfd's own share is.
 */
TEST_F_TIMEOUT(stage1, seal_scattered_memfd, 1800)
{
	size_t size = scattered_size();
	long before, after;
	int fd, box;

	ASSERT_MODULE("fdbox_memfd");
	ksft_print_msg("a scattered memfd of %zu MiB\n", size / MiB);
	fd = ASSERT_OK(fdbox_sys(memfd_create("scattered", 0)));
	ASSERT_OK(fill_scattered(fd, self->dev, size));
	before = fdbox_debugfs_size("outgoing");
	box = ASSERT_OK(fdbox_create(self->dev, KX_SCATTERED));
	ASSERT_OK(fdbox_add(box, fd, KX_ENTRY));
	ASSERT_OK(fdbox_seal(box));
	close(box);
	close(fd);
	after = fdbox_debugfs_size("outgoing");
	ksft_print_msg("the outgoing hand-over: %ld bytes, %ld of them the scattered memfd's\n",
		       after, after - before);
	ASSERT_LT(OLD_CEILING, after);
	if (size > SCATTERED_MIB * MiB)
		ASSERT_LT(OLD_CEILING, after - before);
}

FIXTURE(stage2) {
	int dev;
	int box;
};

FIXTURE_SETUP(stage2)
{
	self->dev = -1;
	self->box = -1;
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE(FDBOX_TEST_MODULE);
	self->dev = ASSERT_OK(fdbox_open_dev());
}

FIXTURE_TEARDOWN(stage2)
{
	if (self->box >= 0)
		close(self->box);
	if (self->dev >= 0)
		close(self->dev);
}

/* Every box came over, incoming, with its entry count. */
TEST_F_TIMEOUT(stage2, every_box_listed, 120)
{
	check_kx_listed(_metadata, self->dev, FDBOX_DIR_INCOMING,
			FDBOX_BOX_INCOMING);
}

/*
 * Retrieves entry NAME through BOX: a new O_CLOEXEC fd of a restored test
 * file holding the LEN bytes of WANT. *SPENT grows by the time RETRIEVE
 * took. Closes the fd.
 */
static void retrieve_and_check(struct __test_metadata *_metadata, int box,
			       const char *name, const unsigned char *want,
			       size_t len, double *spent)
{
	unsigned char got[KX_DATA_MAX + 1];
	struct fdbox_test_info info;
	double t0 = fdbox_now();
	int fd;

	fd = fdbox_retrieve(box, name);
	*spent += fdbox_now() - t0;
	ASSERT_LE(0, fd) TH_LOG("retrieve %s: %s", name, fdbox_errname(fd));
	ASSERT_CLOEXEC(fd);
	ASSERT_EQ((ssize_t)len, fdbox_read_all(fd, got, sizeof(got)))
		TH_LOG("%s", name);
	ASSERT_EQ(0, memcmp(want, got, len)) TH_LOG("%s: other data", name);
	ASSERT_EQ(0, fdbox_test_info(fd, &info));
	ASSERT_EQ(1, info.restored) TH_LOG("%s", name);
	ASSERT_EQ(0, close(fd));
}

/*
 * The 980 boxes: each opened, its entry retrieved and checked, and closed,
 * which releases it, as nothing is left in it; timed.
 */
TEST_F_TIMEOUT(stage2, restore_boxes, 1800)
{
	unsigned char want[KX_DATA_MAX];
	char name[FDBOX_NAME_LEN];
	double t0, t1, last, spent = 0;
	size_t len;
	int i;

	t0 = last = fdbox_now();
	for (i = 0; i < N_BOXES; i++) {
		double o0;

		progress("restoring boxes", i, N_BOXES, &last);
		kx_box_name(i, name);
		o0 = fdbox_now();
		self->box = fdbox_open(self->dev, name, FDBOX_OPEN_INCOMING);
		spent += fdbox_now() - o0;
		ASSERT_LE(0, self->box) TH_LOG("open %s: %s", name,
					       fdbox_errname(self->box));
		ASSERT_CLOEXEC(self->box);
		len = kx_box_data(i, want);
		retrieve_and_check(_metadata, self->box, KX_ENTRY, want, len,
				   &spent);
		ASSERT_EQ(0, close(self->box));
		self->box = -1;
	}
	t1 = fdbox_now();
	ksft_print_msg("%d boxes: open + retrieve %.3f s (%.1f us per box); with the checks and closes %.3f s\n",
		       N_BOXES, spent, spent * 1e6 / N_BOXES, t1 - t0);
	/* Each went with its last fd: only the big and scattered boxes are left. */
	ASSERT_EQ(2, fdbox_count_boxes(self->dev, PREFIX));
	ASSERT_BOX(self->dev, KX_BIG, FDBOX_DIR_INCOMING, FDBOX_BOX_INCOMING,
		   0, N_ENTRIES);
}

/*
 * The box of 10,000 entries: each entry listed restorable, then retrieved,
 * checked and closed at once (never 10,000 fds open); timed. Closing the
 * box then releases it.
 */
TEST_F_TIMEOUT(stage2, restore_big_box, 1800)
{
	unsigned char want[KX_DATA_MAX];
	char name[FDBOX_NAME_LEN + 1];
	struct fdbox_entry_info *all;
	struct fdbox_box_info info;
	double t0, t1, last, spent = 0;
	int n, i, idx;
	size_t len;
	char *seen;

	self->box = ASSERT_OK(fdbox_open(self->dev, KX_BIG,
					 FDBOX_OPEN_INCOMING));
	ASSERT_CLOEXEC(self->box);
	n = fdbox_box_info(self->box, &info, &all);
	ASSERT_EQ(N_ENTRIES, n) TH_LOG("BOX_INFO: %s", fdbox_errname(n));
	ASSERT_NAME(KX_BIG, info.name);
	ASSERT_EQ(FDBOX_DIR_INCOMING, info.direction);
	ASSERT_EQ(FDBOX_BOX_INCOMING, info.state);
	ASSERT_EQ(0, info.owner_uid);
	seen = calloc(N_ENTRIES, 1);
	ASSERT_TRUE(seen != NULL);
	for (i = 0; i < n; i++) {
		name_of(name, all[i].name);
		idx = parse_index(name, "entry-", 5, N_ENTRIES);
		ASSERT_LE(0, idx) TH_LOG("unexpected entry \"%s\"", name);
		ASSERT_FALSE(seen[idx]) TH_LOG("entry \"%s\" listed twice", name);
		seen[idx] = 1;
		ASSERT_NAME(FDBOX_TEST_COMPATIBLE, all[i].compatible);
		ASSERT_EQ(FDBOX_TEST_VERSION, all[i].version) TH_LOG("%s", name);
		ASSERT_EQ(0, all[i].n_deps) TH_LOG("%s", name);
		ASSERT_EQ(FDBOX_ENTRY_RESTORABLE, all[i].state) TH_LOG("%s", name);
	}
	free(seen);
	free(all);

	t0 = last = fdbox_now();
	for (i = 0; i < N_ENTRIES; i++) {
		progress("retrieving entries", i, N_ENTRIES, &last);
		len = kx_big_entry(i, name, want);
		retrieve_and_check(_metadata, self->box, name, want, len,
				   &spent);
	}
	t1 = fdbox_now();
	ksft_print_msg("1 box of %d entries: retrieve %.3f s (%.1f us per entry); with the checks and closes %.3f s\n",
		       N_ENTRIES, spent, spent * 1e6 / N_ENTRIES, t1 - t0);
	ASSERT_EQ(0, close(self->box));
	self->box = -1;
	ASSERT_NO_BOX(self->dev, KX_BIG, FDBOX_DIR_INCOMING);
}

/* The scattered memfd came back whole: every byte, against the same fills. */
TEST_F_TIMEOUT(stage2, restore_scattered_memfd, 1800)
{
	size_t size = scattered_size();
	double t0, t1;
	uint64_t got;
	int fd;

	ASSERT_MODULE("fdbox_memfd");
	self->box = ASSERT_OK(fdbox_open(self->dev, KX_SCATTERED, FDBOX_OPEN_INCOMING));
	t0 = fdbox_now();
	fd = ASSERT_OK(fdbox_retrieve(self->box, KX_ENTRY));
	t1 = fdbox_now();
	ksft_print_msg("retrieve of the scattered memfd of %zu MiB: %.3f s\n", size / MiB, t1 - t0);
	ASSERT_EQ((off_t)size, lseek(fd, 0, SEEK_END));
	ASSERT_OK(memfd_hash(fd, &got));
	ASSERT_EQ(scattered_hash(size), got);
	close(fd);
	ASSERT_EQ(0, close(self->box));
	self->box = -1;
	ASSERT_NO_BOX(self->dev, KX_SCATTERED, FDBOX_DIR_INCOMING);
}

/*
 * Whatever is left of this test's boxes (nothing, if every test above
 * passed) is discarded, and then none remains: nothing leaks into the next
 * kexec or to kmemleak. Other tests' boxes are theirs.
 */
TEST_F_TIMEOUT(stage2, nothing_left, 600)
{
	char name[FDBOX_NAME_LEN + 1];
	struct fdbox_box_summary *all;
	int n, i, box, left = 0;

	n = ASSERT_OK(fdbox_list(self->dev, &all));
	for (i = 0; i < n; i++) {
		name_of(name, all[i].name);
		if (strncmp(name, PREFIX, strlen(PREFIX)))
			continue;
		if (left++ < 10)
			TH_LOG("left: box \"%s\" direction %u", name,
			       all[i].direction);
		if (all[i].direction != FDBOX_DIR_INCOMING)
			continue;
		box = fdbox_open(self->dev, name, FDBOX_OPEN_INCOMING);
		if (box >= 0) {
			fdbox_discard(box, NULL);
			close(box);
		}
	}
	free(all);
	EXPECT_EQ(0, left);
	EXPECT_EQ(0, fdbox_count_boxes(self->dev, PREFIX));
}

/*
 * "-s N" from the harness selects the tests of stage N: the single-boot
 * tests and then stage1's before the kexec, stage2's after it.
 */
int main(int argc, char **argv)
{
	char *stage1[] = { argv[0], "-f", "scale", "-f", "stage1", NULL };
	char *stage2[] = { argv[0], "-f", "stage2", NULL };

	if (argc == 2 && !strcmp(argv[1], "-l"))
		return test_harness_run(argc, argv);
	if (argc != 3 || strcmp(argv[1], "-s") ||
	    (strcmp(argv[2], "1") && strcmp(argv[2], "2"))) {
		fprintf(stderr, "usage: %s -s 1|2 | -l\n", argv[0]);
		return KSFT_FAIL;
	}
	if (!strcmp(argv[2], "1"))
		return test_harness_run(ARRAY_SIZE(stage1) - 1, stage1);
	return test_harness_run(ARRAY_SIZE(stage2) - 1, stage2);
}
