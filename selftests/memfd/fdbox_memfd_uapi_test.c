// SPDX-License-Identifier: GPL-2.0
/*
 * Single-boot selftest of fdbox_memfd: what ADD, SEAL, CANCEL and REMOVE do
 * to a live memfd, and what is refused. Every rejection leaves the boxes as
 * they were, compared through a snapshot of every box and entry.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include <signal.h>
#include <sys/wait.h>
#include <linux/falloc.h>
#include <linux/liveupdate.h>

#include "kselftest_harness.h"
#include "fdbox_common.h"
#include "memfd_util.h"

#define SIZE (1 * MiB)

/* A 1 MiB memfd with data in its first half and a hole in its second. */
static int half_full(const char *name)
{
	int fd = memfd_create(name, 0), err;

	if (fd < 0)
		return -errno;
	err = ftruncate(fd, SIZE) ? -errno : memfd_fill(fd, 0, SIZE / 2, 7);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* 0 if every size change is refused with EPERM, else the first that isn't. */
static int frozen_errors(int fd)
{
	char c = 1;

	if (fdbox_sys(ftruncate(fd, SIZE + PAGE)) != -EPERM)
		return 1;
	if (fdbox_sys(ftruncate(fd, SIZE - PAGE)) != -EPERM)
		return 2;
	if (fdbox_sys(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE)) != -EPERM)
		return 3;
	if (fdbox_sys(fallocate(fd, 0, SIZE / 2, PAGE)) != -EPERM)
		return 4;
	if (fdbox_sys(pwrite(fd, &c, 1, SIZE)) != -EPERM)
		return 5;
	return 0;
}

/* 0 if the size can change again: grow, shrink, punch, fallocate. */
static int thawed(int fd)
{
	if (ftruncate(fd, SIZE + PAGE) || ftruncate(fd, SIZE))
		return -errno;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE))
		return -errno;
	if (fallocate(fd, 0, SIZE - PAGE, PAGE))
		return -errno;
	return 0;
}

FIXTURE(memfd) {
	int dev;
	int box;
};

FIXTURE_SETUP(memfd)
{
	self->dev = -1;
	self->box = -1;
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE(FDBOX_MEMFD_MODULE);
	self->dev = ASSERT_OK(fdbox_open_dev());
	self->box = ASSERT_OK(fdbox_create(self->dev, "memfd-uapi"));
}

FIXTURE_TEARDOWN(memfd)
{
	/* A test that failed half-way may leave its box sealed. */
	if (self->box >= 0) {
		fdbox_cancel(self->box);
		close(self->box);
	}
	if (self->dev >= 0)
		close(self->dev);
}

/* The handler is registered under "memfd", version 1. */
TEST_F(memfd, handler_registered)
{
	struct fdbox_handler_info *h;
	const struct fdbox_handler_info *m;
	struct fdbox_get_caps caps;
	int n;

	n = ASSERT_OK(fdbox_caps(self->dev, &caps, &h));
	m = fdbox_find_handler(h, n, "memfd");
	ASSERT_TRUE(m != NULL);
	/* Version 2 for a hugetlb memfd; a shmem memfd is still written as 1. */
	EXPECT_EQ(2, m->version);
	EXPECT_EQ(1, m->min_version);
	free(h);
}

/* ADD freezes the size; writes inside it still work; REMOVE thaws. */
TEST_F(memfd, add_freezes_remove_thaws)
{
	int fd = ASSERT_OK(half_full("frozen"));
	char c = 2;

	ASSERT_OK(fdbox_add(self->box, fd, "m"));
	ASSERT_EQ(0, frozen_errors(fd));
	/* Before SEAL, data may still go anywhere inside the size. */
	ASSERT_EQ(1, pwrite(fd, &c, 1, 0));
	ASSERT_EQ(1, pwrite(fd, &c, 1, SIZE - 1));
	ASSERT_OK(fdbox_remove(self->box, "m"));
	ASSERT_OK(thawed(fd));
	close(fd);
}

/* Closing an open box thaws its memfds too. */
TEST_F(memfd, box_close_thaws)
{
	int fd = ASSERT_OK(half_full("closed"));

	ASSERT_OK(fdbox_add(self->box, fd, "m"));
	close(self->box);
	self->box = -1;
	ASSERT_OK(thawed(fd));
	close(fd);
}

/*
 * SEAL fixes the folio set: filling a hole fails visibly (EPERM from
 * write(), SIGBUS from a fault) while existing data stays writable. CANCEL
 * allows holes again; REMOVE then thaws the size.
 */
TEST_F(memfd, seal_forbids_new_folios_cancel_allows)
{
	int fd = ASSERT_OK(half_full("sealed"));
	long long seen;
	int status;
	pid_t child;
	char c = 3;
	char *p;

	p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_OK(fdbox_add(self->box, fd, "m"));
	ASSERT_OK(fdbox_seal(self->box));
	ASSERT_FAILS(EPERM, fdbox_sys(pwrite(fd, &c, 1, SIZE - 1)));
	ASSERT_EQ(1, pwrite(fd, &c, 1, 0));
	p[1] = c;
	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		p[SIZE - 1] = c;
		_exit(0);
	}
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS)
		TH_LOG("status %#x", status);
	ASSERT_EQ(0, frozen_errors(fd));

	ASSERT_OK(fdbox_cancel(self->box));
	seen = memfd_stat("late");
	ASSERT_EQ(1, pwrite(fd, &c, 1, SIZE - 1));
	p[SIZE - 2 * PAGE] = c;
	ASSERT_EQ(0, frozen_errors(fd));
	/* And the next SEAL picks the new folios up. */
	ASSERT_OK(fdbox_seal(self->box));
	ASSERT_LE(seen + 2, memfd_stat("late"));
	ASSERT_OK(fdbox_cancel(self->box));
	ASSERT_OK(fdbox_remove(self->box, "m"));
	ASSERT_OK(thawed(fd));
	munmap(p, SIZE);
	close(fd);
}

/* The same memfd through a second open file is refused, in any box. */
TEST_F(memfd, same_memfd_twice)
{
	int fd = ASSERT_OK(half_full("twice")), again, other;
	char path[64], *before;

	ASSERT_OK(fdbox_add(self->box, fd, "m"));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	again = ASSERT_OK(fdbox_sys(open(path, O_RDWR)));
	other = ASSERT_OK(fdbox_create(self->dev, "memfd-uapi-other"));
	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(EBUSY, fdbox_add(self->box, again, "again"));
	ASSERT_FAILS(EBUSY, fdbox_add(other, again, "again"));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	close(other);
	close(again);
	close(fd);
}

/*
 * A hugetlb memfd is frozen while it is an entry: its size can't change,
 * fallocate() and hole punching fail. REMOVE gives it back as it was.
 */
TEST_F(memfd, hugetlb_frozen_until_removed)
{
	int fd = ASSERT_OK(fdbox_sys(memfd_create("huge", MFD_HUGETLB)));

	ASSERT_OK(fdbox_add(self->box, fd, "huge"));
	ASSERT_FAILS(EPERM, fdbox_sys(ftruncate(fd, 2 * MiB)));
	ASSERT_FAILS(EPERM, fdbox_sys(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 2 * MiB)));
	ASSERT_FAILS(EPERM, fdbox_sys(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
						0, 2 * MiB)));
	ASSERT_OK(fdbox_remove(self->box, "huge"));
	ASSERT_OK(fdbox_sys(ftruncate(fd, 2 * MiB)));
	ASSERT_OK(fdbox_sys(ftruncate(fd, 0)));
	close(fd);
}

/* The hand-over keeps names as UTF-8: another name is refused. */
TEST_F(memfd, non_utf8_name_refused)
{
	int fd = ASSERT_OK(fdbox_sys(memfd_create("bad\xff", 0)));
	char *before = SNAPSHOT(self->dev);

	ASSERT_FAILS(EINVAL, fdbox_add(self->box, fd, "bad"));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	/* Not frozen: the failed ADD changed nothing. */
	ASSERT_OK(fdbox_sys(ftruncate(fd, PAGE)));
	close(fd);
}

/* A shmem file that memfd_create() didn't make is not a memfd. */
TEST_F(memfd, other_shmem_refused)
{
	int fd = ASSERT_OK(fdbox_sys(open("/tmp", O_TMPFILE | O_RDWR, 0600)));
	char *before = SNAPSHOT(self->dev);

	ASSERT_FAILS(EOPNOTSUPP, fdbox_add(self->box, fd, "tmp"));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	close(fd);
}

/*
 * An unlinked tmpfs file named like a memfd is no memfd: it doesn't live on
 * the kernel's internal shmem mount, and it had a directory. It is refused,
 * and left as it was: its size can still change.
 */
TEST_F(memfd, unlinked_tmpfs_file_named_memfd_refused)
{
	const char *path = "/tmp/memfd:x";
	char *before = SNAPSHOT(self->dev);
	int fd;

	fd = ASSERT_OK(fdbox_sys(open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600)));
	ASSERT_OK(fdbox_sys(unlink(path)));
	ASSERT_OK(fdbox_sys(ftruncate(fd, PAGE)));
	ASSERT_EQ(1, pwrite(fd, "x", 1, 0));
	ASSERT_FAILS(EOPNOTSUPP, fdbox_add(self->box, fd, "x"));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	ASSERT_OK(fdbox_sys(ftruncate(fd, 2 * PAGE)));
	close(fd);
}

/* LUO's preservation and FDBox's exclude each other, both ways. */
TEST_F(memfd, luo_and_fdbox_exclusive)
{
	struct liveupdate_ioctl_create_session cs = { .size = sizeof(cs) };
	struct liveupdate_session_preserve_fd pf = { .size = sizeof(pf) };
	int lu, fd, fd2;

	lu = open("/dev/liveupdate", O_RDWR);
	ASSERT_LE(0, lu) TH_LOG("/dev/liveupdate: %s", strerror(errno));
	strcpy((char *)cs.name, "fdbox-memfd-uapi");
	ASSERT_OK(fdbox_raw(lu, LIVEUPDATE_IOCTL_CREATE_SESSION, &cs));

	fd = ASSERT_OK(half_full("fdbox-first"));
	ASSERT_OK(fdbox_add(self->box, fd, "m"));
	pf.fd = fd;
	pf.token = 1;
	ASSERT_FAILS(EBUSY, fdbox_raw(cs.fd, LIVEUPDATE_SESSION_PRESERVE_FD, &pf));

	fd2 = ASSERT_OK(half_full("luo-first"));
	pf.fd = fd2;
	pf.token = 2;
	ASSERT_OK(fdbox_raw(cs.fd, LIVEUPDATE_SESSION_PRESERVE_FD, &pf));
	ASSERT_FAILS(EBUSY, fdbox_add(self->box, fd2, "luo"));

	/* Closing the session unpreserves LUO's memfd. */
	close(cs.fd);
	close(lu);
	ASSERT_OK(fdbox_add(self->box, fd2, "luo"));
	close(fd2);
	close(fd);
}

int main(int argc, char **argv)
{
	return test_harness_run(argc, argv);
}
