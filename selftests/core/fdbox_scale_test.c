// SPDX-License-Identifier: GPL-2.0
/*
 * Single-boot scale selftests of fdbox_core: a thousand boxes beside one box
 * of ten thousand entries, sealed together, with the time each phase takes;
 * and the FDBOX_MAX_ENTRIES limit. (Restoring at scale is the two-stage
 * test's "big" box.) RLIMIT_NOFILE is raised to what each test keeps open.
 *
 * Like the uAPI test, this runs before the two-stage tests' stage 1 and
 * leaves no box behind.
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

#define PREFIX "scale-"
#define N_BOXES 1000
#define N_ENTRIES 10000
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
 * 1,000 boxes of one entry each, and one box of 10,000 entries: created and
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
	ASSERT_BOX(self->dev, PREFIX "0999", FDBOX_DIR_OUTGOING,
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

TEST_HARNESS_MAIN
