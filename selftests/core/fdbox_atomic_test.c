// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage selftest: a kexec never hands over nothing, nor a mix.
 *
 * Stage 1 seals two boxes, then a child loops SEAL and CANCEL on a third.
 * fdbox_core's test hook (the pause_next_handover parameter) stops the next
 * replacement of the hand-over between taking the old KHO subtree out and
 * putting the new one in, until a kexec starts: the window in which, without
 * the reboot notifier that makes the hand-over final, a kexec hands over no
 * box at all. The parent returns once the child is paused there, and the
 * harness kexecs right after this stage, with the child still in the window.
 *
 * Stage 2 retrieves the two boxes, byte for byte, and finds the looping box
 * either absent (the kexec came during a CANCEL) or whole (during a SEAL).
 *
 * Its own boot pair: the child holds FDBox's lock until the kexec.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "fdbox_common.h"

#define FDBOX_MEMFD_MODULE "fdbox_memfd"
#define PAUSE_PARAM "/sys/module/fdbox_core/parameters/pause_next_handover"
#define DATA_LEN (64 * 1024)
/* How long stage 1 waits for the child to reach the window. */
#define PAUSE_WAIT_S 60

static const char *const sealed_boxes[] = { "atomic-a", "atomic-b" };
#define LOOP_BOX "atomic-loop"
#define ENTRY "ram"

/* A memfd holding the pattern of TAG. */
static int pattern_memfd(const char *tag)
{
	static char buf[DATA_LEN];
	int fd = memfd_create(tag, MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	fdbox_pattern(buf, sizeof(buf), tag);
	if (pwrite(fd, buf, sizeof(buf), 0) != sizeof(buf)) {
		close(fd);
		return -EIO;
	}
	return fd;
}

/* Whether FD holds exactly the pattern of TAG. */
static bool holds_pattern(int fd, const char *tag)
{
	static char want[DATA_LEN], got[DATA_LEN + 1];

	fdbox_pattern(want, sizeof(want), tag);
	return pread(fd, got, sizeof(got), 0) == DATA_LEN &&
	       !memcmp(want, got, DATA_LEN);
}

/* The test hook's parameter: 1 armed, 0 not (or fired), -errno. */
static int read_pause(void)
{
	char c = 0;
	int fd = open(PAUSE_PARAM, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, &c, 1);
	close(fd);
	if (n != 1)
		return -EIO;
	return c == 'Y';
}

static int write_pause(const char *v)
{
	int fd = open(PAUSE_PARAM, O_WRONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, v, strlen(v)) != (ssize_t)strlen(v))
		err = -errno;
	close(fd);
	return err;
}

FIXTURE(stage1) {
	int dev;
};

FIXTURE_SETUP(stage1)
{
	self->dev = -1;
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE(FDBOX_MEMFD_MODULE);
	self->dev = ASSERT_OK(fdbox_open_dev());
}

FIXTURE_TEARDOWN(stage1)
{
	if (self->dev >= 0)
		close(self->dev);
}

TEST_F_TIMEOUT(stage1, kexec_inside_the_window, 120)
{
	int box, fd, i, paused;
	double deadline;
	pid_t child;

	for (i = 0; i < (int)ARRAY_SIZE(sealed_boxes); i++) {
		box = ASSERT_OK(fdbox_create(self->dev, sealed_boxes[i]));
		fd = ASSERT_OK(pattern_memfd(sealed_boxes[i]));
		ASSERT_OK(fdbox_add(box, fd, ENTRY));
		ASSERT_OK(fdbox_seal(box));
		close(fd);
		close(box);
	}
	box = ASSERT_OK(fdbox_create(self->dev, LOOP_BOX));
	fd = ASSERT_OK(pattern_memfd(LOOP_BOX));
	ASSERT_OK(fdbox_add(box, fd, ENTRY));

	ASSERT_EQ(0, read_pause());
	ASSERT_OK(write_pause("1"));
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		/*
		 * Seal and cancel until the hook pauses one of them, then,
		 * once the kexec has started, until FDBox refuses (EBUSY):
		 * the kexec ends this process.
		 */
		while (!fdbox_seal(box) && !fdbox_cancel(box))
			;
		pause();
		_exit(0);
	}
	/* The hook clears the parameter as it pauses. */
	deadline = fdbox_now() + PAUSE_WAIT_S;
	while ((paused = read_pause()) == 1 && fdbox_now() < deadline)
		usleep(10000);
	ASSERT_EQ(0, paused) TH_LOG("the child never reached the hand-over window");
	/* Still looping, or paused in the kernel: alive either way. */
	ASSERT_EQ(0, waitpid(child, NULL, WNOHANG));
	TH_LOG("child %d paused in the hand-over window; the harness kexecs next",
	       child);
	close(fd);
	close(box);
}

FIXTURE(stage2) {
	int dev;
};

FIXTURE_SETUP(stage2)
{
	self->dev = -1;
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE(FDBOX_MEMFD_MODULE);
	self->dev = ASSERT_OK(fdbox_open_dev());
}

FIXTURE_TEARDOWN(stage2)
{
	if (self->dev >= 0)
		close(self->dev);
}

/* The boxes sealed before the loop all came over, whole. */
TEST_F(stage2, sealed_boxes_are_all_there)
{
	int box, fd, i;

	for (i = 0; i < (int)ARRAY_SIZE(sealed_boxes); i++) {
		box = fdbox_open(self->dev, sealed_boxes[i], FDBOX_OPEN_INCOMING);
		ASSERT_LE(0, box) TH_LOG("box %s: %s", sealed_boxes[i],
					 fdbox_errname(box));
		fd = ASSERT_OK(fdbox_retrieve(box, ENTRY));
		EXPECT_TRUE(holds_pattern(fd, sealed_boxes[i]))
			TH_LOG("box %s: data differs", sealed_boxes[i]);
		close(fd);
		close(box);
	}
}

/* The box being sealed and cancelled is absent, or whole. */
TEST_F(stage2, looping_box_is_absent_or_whole)
{
	struct fdbox_box_summary b;
	int box, fd;

	if (fdbox_find_box(self->dev, LOOP_BOX, FDBOX_DIR_INCOMING, &b) == -ENOENT) {
		TH_LOG("box %s is absent: the kexec came during a CANCEL", LOOP_BOX);
		return;
	}
	ASSERT_EQ(1, b.n_entries);
	box = ASSERT_OK(fdbox_open(self->dev, LOOP_BOX, FDBOX_OPEN_INCOMING));
	fd = ASSERT_OK(fdbox_retrieve(box, ENTRY));
	EXPECT_TRUE(holds_pattern(fd, LOOP_BOX));
	TH_LOG("box %s is whole: the kexec came during a SEAL", LOOP_BOX);
	close(fd);
	close(box);
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
