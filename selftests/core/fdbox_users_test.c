// SPDX-License-Identifier: GPL-2.0
/*
 * Many users at once: a handler stuck on one box stalls nobody else, the
 * per-user limits, and box names per owner. A two-stage program:
 *
 * "-s 1", before the kexec:
 * - wedged_handler: a memfd's i_rwsem is held by a write() whose source
 *   buffer faults into a userfaultfd nobody answers. An ADD of that memfd
 *   blocks (its task is seen in D state, inside ioctl()). Meanwhile another
 *   uid creates, adds, seals, cancels and lists, root reads debugfs (the
 *   stuck box shows as busy) and a second ioctl on the stuck box waits
 *   killably. SIGKILL ends both ioctls; the box goes with its fds.
 * - limits: user A fills user_max_boxes, _entries and _payload_bytes in turn
 *   (EDQUOT, nothing changed) while user B and root still create and seal;
 *   the other users together can't take root_reserved_boxes (ENOSPC).
 *   A's box with an entry and an empty one are sealed for stage 2.
 * - names: users A and B and root each have a box "users-shared"; each
 *   opens its own, only root opens another's (FDBOX_OPEN_OWNER). A's and
 *   B's are sealed for stage 2.
 *
 * "-s 2", after it: A's empty box is not there and costs A nothing; A's
 * full box and A's and B's "users-shared" come back to their owners.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "fdbox_common.h"

#define PREFIX "users-"
#define USER_A 1001
#define USER_B 1002
#define DEBUGFS_BOXES "/sys/kernel/debug/fdbox/boxes"
#define MEMFD_MODULE "fdbox_memfd"

/* The state letter of @pid and whether it is inside ioctl(2). */
static char task_state(pid_t pid, bool *in_ioctl)
{
	char path[64], buf[512], *p;
	long nr = -1;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return '?';
	snprintf(path, sizeof(path), "/proc/%d/syscall", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		char sc[64] = "";

		if (read(fd, sc, sizeof(sc) - 1) > 0)
			nr = strtol(sc, NULL, 10);
		close(fd);
	}
	*in_ioctl = nr == SYS_ioctl;
	return p[2];
}

/*
 * Waits until @pid is blocked in D state inside ioctl(2); false if it exits
 * first. It polls what the kernel reports: the only sign of a blocked task.
 */
static bool wait_blocked_in_ioctl(pid_t pid)
{
	bool in_ioctl = false;
	char state;

	for (;;) {
		state = task_state(pid, &in_ioctl);
		if (state == 'D' && in_ioctl)
			return true;
		if (state == '?' || state == 'Z' || state == 'X')
			return false;
		usleep(2000);
	}
}

/* Kills @pid and reaps it; true if SIGKILL ended it. */
static bool kill_and_reap(pid_t pid)
{
	int status;

	if (kill(pid, SIGKILL))
		return false;
	if (waitpid(pid, &status, 0) != pid)
		return false;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

/* Reads all of debugfs' boxes table (other tests' thousand boxes too). */
static char *read_boxes_table(void)
{
	static char buf[8 << 20];
	ssize_t n, len = 0;
	int fd;

	fd = open(DEBUGFS_BOXES, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += n;
	close(fd);
	if (n < 0)
		return NULL;
	buf[len] = 0;
	return buf;
}

/* The "usage uid N" line of debugfs' table, or NULL. */
static const char *usage_line(uid_t uid)
{
	char want[32], *table, *line;

	table = read_boxes_table();
	if (!table)
		return NULL;
	snprintf(want, sizeof(want), "usage uid %u ", uid);
	for (line = strtok(table, "\n"); line; line = strtok(NULL, "\n"))
		if (!strncmp(line, want, strlen(want)))
			return line;
	return NULL;
}

struct wedge {
	int memfd;
	int uffd;
	char *buf;
};

static void *wedged_writer(void *arg)
{
	struct wedge *w = arg;

	/* Takes the memfd's i_rwsem, then faults on buf: never answered. */
	if (write(w->memfd, w->buf, 4096) < 0)
		return NULL;
	return NULL;
}

/*
 * A child whose thread holds @memfd's i_rwsem for as long as the child
 * lives; it writes one byte to @ready once the thread is stuck in the fault.
 */
static void wedge_memfd(int memfd, int ready)
{
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct uffdio_api api = { .api = UFFD_API };
	struct uffd_msg msg;
	struct wedge w = { .memfd = memfd };
	pthread_t thread;

	w.uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (w.uffd < 0 || ioctl(w.uffd, UFFDIO_API, &api))
		_exit(20);
	w.buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w.buf == MAP_FAILED)
		_exit(21);
	reg.range.start = (unsigned long)w.buf;
	reg.range.len = 4096;
	if (ioctl(w.uffd, UFFDIO_REGISTER, &reg))
		_exit(22);
	if (pthread_create(&thread, NULL, wedged_writer, &w))
		_exit(23);
	/* The fault's message: the writer is stuck inside write(). */
	if (read(w.uffd, &msg, sizeof(msg)) != sizeof(msg) ||
	    msg.event != UFFD_EVENT_PAGEFAULT)
		_exit(24);
	if (write(ready, "w", 1) != 1)
		_exit(25);
	for (;;)
		pause();
}

FIXTURE(stage1) {
	int dev;
};

FIXTURE_SETUP(stage1)
{
	ASSERT_OK(fdbox_load_module(FDBOX_CORE_MODULE));
	ASSERT_OK(fdbox_load_module(FDBOX_TEST_MODULE));
	ASSERT_OK(fdbox_load_module(MEMFD_MODULE));
	self->dev = ASSERT_OK(fdbox_open_dev());
}

FIXTURE_TEARDOWN(stage1)
{
	close(self->dev);
}

TEST_F_TIMEOUT(stage1, wedged_handler, 600)
{
	int memfd, other, pipefd[2], box, info_box;
	pid_t writer, adder, waiter, user;
	struct fdbox_box_summary sum;
	char c, *table;

	memfd = ASSERT_OK(memfd_create("users-wedged", MFD_CLOEXEC));
	ASSERT_EQ(0, ftruncate(memfd, 1 << 20));
	ASSERT_EQ(0, pipe2(pipefd, O_CLOEXEC));

	fflush(NULL);
	writer = fork();
	ASSERT_LE(0, writer);
	if (writer == 0)
		wedge_memfd(memfd, pipefd[1]);
	ASSERT_EQ(1, read(pipefd[0], &c, 1));

	/* Root's ADD of the wedged memfd: blocks, holding only its box. */
	box = ASSERT_OK(fdbox_create(self->dev, PREFIX "wedged"));
	adder = fork();
	ASSERT_LE(0, adder);
	if (adder == 0)
		_exit(-fdbox_add(box, memfd, "ram"));
	ASSERT_TRUE(wait_blocked_in_ioctl(adder));

	/* A second ioctl on that box waits for it, killably. */
	info_box = ASSERT_OK(fdbox_open(self->dev, PREFIX "wedged",
					FDBOX_OPEN_OUTGOING));
	waiter = fork();
	ASSERT_LE(0, waiter);
	if (waiter == 0) {
		struct fdbox_box_info info;
		struct fdbox_entry_info *e;

		_exit(fdbox_box_info(info_box, &info, &e) < 0 ? 1 : 0);
	}
	ASSERT_TRUE(wait_blocked_in_ioctl(waiter));

	/* Another uid goes about its business meanwhile. */
	user = fork();
	ASSERT_LE(0, user);
	if (user == 0) {
		struct fdbox_box_summary *all;
		int b, m;

		CHILD_OK(10, fdbox_become(USER_A));
		b = CHILD_OK(11, fdbox_create(self->dev, PREFIX "busy-other"));
		m = CHILD_OK(12, memfd_create("users-other", MFD_CLOEXEC));
		CHILD_OK(13, ftruncate(m, 4096) ? -errno : 0);
		CHILD_OK(14, fdbox_add(b, m, "ram"));
		CHILD_OK(15, fdbox_seal(b));
		if (CHILD_OK(16, fdbox_list(self->dev, &all)) < 2)
			_exit(17);
		free(all);
		CHILD_OK(18, fdbox_cancel(b));
		_exit(0);
	}
	ASSERT_EQ(0, fdbox_wait_child(user));
	ASSERT_NO_BOX(self->dev, PREFIX "busy-other", FDBOX_DIR_OUTGOING);

	/* Root's own view: the list, and debugfs, which shows the box busy. */
	ASSERT_OK(fdbox_find_box(self->dev, PREFIX "wedged",
				 FDBOX_DIR_OUTGOING, &sum));
	EXPECT_EQ(FDBOX_BOX_OPEN, sum.state);
	EXPECT_EQ(0, sum.n_entries);
	table = read_boxes_table();
	ASSERT_TRUE(table != NULL);
	EXPECT_TRUE(strstr(table, "box " PREFIX "wedged outgoing open owner 0") != NULL);
	EXPECT_TRUE(strstr(table, " busy\n") != NULL);
	other = ASSERT_OK(fdbox_create(self->dev, PREFIX "root-other"));
	close(other);

	/* SIGKILL ends both stuck ioctls. */
	ASSERT_TRUE(kill_and_reap(waiter));
	ASSERT_TRUE(kill_and_reap(adder));
	close(info_box);
	close(box);
	ASSERT_NO_BOX(self->dev, PREFIX "wedged", FDBOX_DIR_OUTGOING);

	/* Once the writer is gone, the memfd is as before and boxes fine. */
	ASSERT_TRUE(kill_and_reap(writer));
	box = ASSERT_OK(fdbox_create(self->dev, PREFIX "unwedged"));
	ASSERT_OK(fdbox_add(box, memfd, "ram"));
	ASSERT_OK(fdbox_remove(box, "ram"));
	close(box);
	ASSERT_EQ(1, pwrite(memfd, "x", 1, 0));
	close(memfd);
	close(pipefd[0]);
	close(pipefd[1]);
}

/* A test file of the test handler whose payload carries @len bytes of data. */
static int data_file(size_t len)
{
	static char data[FDBOX_TEST_DATA_MAX];

	memset(data, 'u', sizeof(data));
	return fdbox_test_file(data, len);
}

TEST_F_TIMEOUT(stage1, limits, 300)
{
	long old_boxes, old_entries, old_bytes, old_reserve;
	struct fdbox_box_summary *all;
	int files[6], i, n, unprivileged;
	char *before;
	pid_t pid;

	for (i = 0; i < 6; i++)
		files[i] = ASSERT_OK(data_file(i == 5 ? FDBOX_TEST_DATA_MAX : 5));
	old_boxes = ASSERT_OK(fdbox_param("user_max_boxes", 3));
	old_entries = ASSERT_OK(fdbox_param("user_max_entries", 3));
	old_bytes = ASSERT_OK(fdbox_param("user_max_payload_bytes", 2048));

	/* A fills its limits, and gets EDQUOT with nothing changed. */
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct fdbox_box_summary sum;
		int full, empty, third;

		CHILD_OK(10, fdbox_become(USER_A));
		full = CHILD_OK(11, fdbox_create(self->dev, PREFIX "a-full"));
		empty = CHILD_OK(12, fdbox_create(self->dev, PREFIX "a-empty"));
		third = CHILD_OK(13, fdbox_create(self->dev, PREFIX "a-third"));
		CHILD_FAILS(14, EDQUOT, fdbox_create(self->dev, PREFIX "a-over"));
		CHILD_OK(15, fdbox_add(full, files[0], "e0"));
		CHILD_OK(16, fdbox_add(full, files[1], "e1"));
		CHILD_OK(17, fdbox_add(third, files[5], "big"));
		CHILD_FAILS(18, EDQUOT, fdbox_add(full, files[2], "e2"));
		/* 4 KiB of payload past 2 KiB: the box stays open. */
		CHILD_FAILS(19, EDQUOT, fdbox_seal(third));
		/* Nothing changed. */
		CHILD_FAILS(20, ENOENT, fdbox_find_box(self->dev, PREFIX "a-over",
						       FDBOX_DIR_OUTGOING, &sum));
		CHILD_OK(20, fdbox_find_box(self->dev, PREFIX "a-full",
					    FDBOX_DIR_OUTGOING, &sum));
		if (sum.state != FDBOX_BOX_OPEN || sum.n_entries != 2)
			_exit(20);
		CHILD_OK(20, fdbox_find_box(self->dev, PREFIX "a-third",
					    FDBOX_DIR_OUTGOING, &sum));
		if (sum.state != FDBOX_BOX_OPEN || sum.n_entries != 1)
			_exit(20);
		if (fdbox_add(empty, files[2], "e2") != -EDQUOT)
			_exit(20);
		CHILD_OK(21, fdbox_seal(full));
		CHILD_OK(22, fdbox_seal(empty));
		_exit(0);
	}
	ASSERT_EQ(0, fdbox_wait_child(pid));
	ASSERT_BOX(self->dev, PREFIX "a-full", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_SEALED, USER_A, 2);
	ASSERT_BOX(self->dev, PREFIX "a-empty", FDBOX_DIR_OUTGOING,
		   FDBOX_BOX_SEALED, USER_A, 0);
	/* a-third went with A's fds. */
	ASSERT_NO_BOX(self->dev, PREFIX "a-third", FDBOX_DIR_OUTGOING);
	EXPECT_TRUE(usage_line(USER_A) != NULL &&
		    !strncmp(usage_line(USER_A), "usage uid 1001 boxes 2 entries 2 ",
			     strlen("usage uid 1001 boxes 2 entries 2 ")));

	/* B and root are not held back by A. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int b;

		CHILD_OK(10, fdbox_become(USER_B));
		b = CHILD_OK(11, fdbox_create(self->dev, PREFIX "b"));
		CHILD_OK(12, fdbox_add(b, files[3], "e0"));
		CHILD_OK(13, fdbox_seal(b));
		CHILD_OK(14, fdbox_cancel(b));
		_exit(0);
	}
	ASSERT_EQ(0, fdbox_wait_child(pid));
	n = ASSERT_OK(fdbox_create(self->dev, PREFIX "root"));
	close(n);

	/* The other users can't take what is reserved for root. */
	n = ASSERT_OK(fdbox_list(self->dev, &all));
	for (i = 0, unprivileged = 0; i < n; i++)
		unprivileged += all[i].owner_uid != 0;
	free(all);
	old_reserve = ASSERT_OK(fdbox_param("root_reserved_boxes",
					    FDBOX_MAX_BOXES - unprivileged));
	ASSERT_OK(fdbox_param("user_max_boxes", FDBOX_MAX_BOXES));
	before = SNAPSHOT(self->dev);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		CHILD_OK(10, fdbox_become(USER_B));
		CHILD_FAILS(11, ENOSPC, fdbox_create(self->dev, PREFIX "b-over"));
		_exit(0);
	}
	ASSERT_EQ(0, fdbox_wait_child(pid));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	n = ASSERT_OK(fdbox_create(self->dev, PREFIX "root-reserved"));
	close(n);

	ASSERT_OK(fdbox_param("root_reserved_boxes", old_reserve));
	ASSERT_OK(fdbox_param("user_max_boxes", old_boxes));
	ASSERT_OK(fdbox_param("user_max_entries", old_entries));
	ASSERT_OK(fdbox_param("user_max_payload_bytes", old_bytes));
	for (i = 0; i < 6; i++)
		close(files[i]);
}

/* In a child as @uid: creates @name with one entry @file, and seals it. */
static int seal_one_as(int dev, uid_t uid, const char *name, int file)
{
	int box, ret;

	ret = fdbox_become(uid);
	if (ret < 0)
		return ret;
	box = fdbox_create(dev, name);
	if (box < 0)
		return box;
	ret = fdbox_add(box, file, "e0");
	if (ret < 0)
		return ret;
	return fdbox_seal(box);
}

/* The owner BOX_INFO reports for @box. */
static long owner_of_fd(int box)
{
	struct fdbox_box_info info;
	struct fdbox_entry_info *e;
	int n = fdbox_box_info(box, &info, &e);

	if (n < 0)
		return n;
	free(e);
	return info.owner_uid;
}

TEST_F(stage1, names)
{
	int file_a, file_b, root_box, box;
	pid_t pid;

	file_a = ASSERT_OK(fdbox_test_file("shared-a", 8));
	file_b = ASSERT_OK(fdbox_test_file("shared-b", 8));
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(-seal_one_as(self->dev, USER_A, PREFIX "shared", file_a));
	ASSERT_EQ(0, fdbox_wait_child(pid));
	/* B takes the same name: B's own. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(-seal_one_as(self->dev, USER_B, PREFIX "shared", file_b));
	ASSERT_EQ(0, fdbox_wait_child(pid));
	root_box = ASSERT_OK(fdbox_create(self->dev, PREFIX "shared"));
	ASSERT_FAILS(EEXIST, fdbox_create(self->dev, PREFIX "shared"));

	/* Each opens its own; only root opens another's. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		CHILD_OK(10, fdbox_become(USER_A));
		box = CHILD_OK(11, fdbox_open(self->dev, PREFIX "shared",
					      FDBOX_OPEN_OUTGOING));
		if (owner_of_fd(box) != USER_A)
			_exit(12);
		CHILD_FAILS(13, EPERM, fdbox_open_as(self->dev, PREFIX "shared",
						     FDBOX_OPEN_OUTGOING, USER_B));
		CHILD_FAILS(14, EEXIST, fdbox_create(self->dev, PREFIX "shared"));
		_exit(0);
	}
	ASSERT_EQ(0, fdbox_wait_child(pid));
	box = ASSERT_OK(fdbox_open(self->dev, PREFIX "shared",
				   FDBOX_OPEN_OUTGOING));
	EXPECT_EQ(0, owner_of_fd(box));
	close(box);
	box = ASSERT_OK(fdbox_open_as(self->dev, PREFIX "shared",
				      FDBOX_OPEN_OUTGOING, USER_B));
	EXPECT_EQ(USER_B, owner_of_fd(box));
	close(box);
	close(root_box);
	close(file_a);
	close(file_b);
}

FIXTURE(stage2) {
	int dev;
};

FIXTURE_SETUP(stage2)
{
	ASSERT_OK(fdbox_load_module(FDBOX_CORE_MODULE));
	ASSERT_OK(fdbox_load_module(FDBOX_TEST_MODULE));
	self->dev = ASSERT_OK(fdbox_open_dev());
}

FIXTURE_TEARDOWN(stage2)
{
	close(self->dev);
}

/* A's empty box is not offered and costs A nothing; the full one is. */
TEST_F(stage2, empty_boxes_gone)
{
	ASSERT_NO_BOX(self->dev, PREFIX "a-empty", FDBOX_DIR_INCOMING);
	ASSERT_BOX(self->dev, PREFIX "a-full", FDBOX_DIR_INCOMING,
		   FDBOX_BOX_INCOMING, USER_A, 2);
	/* a-full and A's "users-shared": two boxes, three entries. */
	EXPECT_TRUE(usage_line(USER_A) != NULL &&
		    !strncmp(usage_line(USER_A), "usage uid 1001 boxes 2 entries 3 ",
			     strlen("usage uid 1001 boxes 2 entries 3 ")));
}

/* Each owner's "users-shared" comes back to it, under the same name. */
TEST_F(stage2, names_per_owner)
{
	uid_t owners[] = { USER_A, USER_B };
	pid_t pid;
	int i;

	for (i = 0; i < 2; i++) {
		fflush(NULL);
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			int box, fd;

			CHILD_OK(10, fdbox_become(owners[i]));
			box = CHILD_OK(11, fdbox_open(self->dev, PREFIX "shared",
						      FDBOX_OPEN_INCOMING));
			if (owner_of_fd(box) != owners[i])
				_exit(12);
			fd = CHILD_OK(13, fdbox_retrieve(box, "e0"));
			close(fd);
			_exit(0);
		}
		ASSERT_EQ(0, fdbox_wait_child(pid));
	}
	ASSERT_FAILS(ENOENT, fdbox_open(self->dev, PREFIX "shared",
					FDBOX_OPEN_INCOMING));
}

/* Nothing of this test is left behind. */
TEST_F(stage2, cleanup)
{
	ASSERT_OK(fdbox_discard_incoming(self->dev, PREFIX));
	EXPECT_EQ(0, fdbox_count_boxes(self->dev, PREFIX));
}

/* "-s N" from the harness selects the tests of stage N. */
int main(int argc, char **argv)
{
	char *stage1[] = { argv[0], "-f", "stage1", NULL };
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
