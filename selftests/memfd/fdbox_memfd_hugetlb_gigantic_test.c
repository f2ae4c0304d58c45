// SPDX-License-Identifier: GPL-2.0
/*
 * A hugetlb memfd of one 1 GiB page, in a boot of its own
 * (fdbox.tests=/gigantic) whose command line reserves the page at boot
 * (hugepagesz=1G hugepages=1).
 *
 * fdbox_memfd refuses 1 GiB pages at ADD: a restore needs a free page of the
 * new kernel's pool for each, and a kernel that KHO booted with a 1 GiB page
 * preserved gets none, at boot or at runtime (see hugetlb.md). This checks
 * that the refusal is clean: the box, the pool and the memfd are as they
 * were, and the memfd isn't frozen.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include "kselftest_harness.h"
#include "fdbox_common.h"
#include "hugetlb_util.h"

#define GPAGE (1024 * MiB)
#define GPAGE_KB (1024 * 1024LL)
#define STRIDE (2 * MiB)
#define BOX "memfd-huge-1g"

#ifndef MFD_HUGE_1GB
#define MFD_HUGE_1GB (30U << 26)
#endif

static uint64_t word_at(size_t off)
{
	uint64_t s = (off / STRIDE) | 1;

	return memfd_rand(&s);
}

/* One 1 GiB page, a word written at every 2 MiB. */
static int build(void)
{
	int fd = memfd_create("gigantic", MFD_HUGETLB | MFD_HUGE_1GB | MFD_ALLOW_SEALING);
	uint8_t *p;
	size_t off;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, GPAGE))
		goto fail;
	p = mmap(NULL, GPAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	for (off = 0; off < GPAGE; off += STRIDE)
		*(uint64_t *)(p + off) = word_at(off);
	munmap(p, GPAGE);
	return fd;
fail:
	close(fd);
	return -errno;
}

/* Whether FD holds what build() wrote, read without mapping it. */
static bool content_ok(int fd)
{
	uint64_t w;
	size_t off;

	for (off = 0; off < GPAGE; off += STRIDE)
		if (pread(fd, &w, sizeof(w), off) != sizeof(w) || w != word_at(off))
			return false;
	return true;
}

FIXTURE(gigantic) {
	int dev;
};

FIXTURE_SETUP(gigantic)
{
	self->dev = -1;
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE(FDBOX_MEMFD_MODULE);
	self->dev = ASSERT_OK(fdbox_open_dev());
	ASSERT_EQ(1, hugetlb_sysfs(GPAGE_KB, "nr_hugepages"))
		TH_LOG("the command line's 1 GiB page wasn't reserved at boot");
}

FIXTURE_TEARDOWN(gigantic)
{
	if (self->dev >= 0)
		close(self->dev);
}

/* ADD refuses a memfd of 1 GiB pages, and nothing changes. */
TEST_F_TIMEOUT(gigantic, refused_at_add, 300)
{
	struct hugetlb_pool before, after;
	char *snapshot;
	int box, fd;

	fd = ASSERT_OK(build());
	box = ASSERT_OK(fdbox_create(self->dev, BOX));
	hugetlb_pool_read(GPAGE_KB, &before);
	EXPECT_EQ(0, before.free);
	snapshot = SNAPSHOT(self->dev);
	ASSERT_FAILS(EOPNOTSUPP, fdbox_add(box, fd, "gigantic"));
	ASSERT_UNCHANGED(self->dev, snapshot);
	free(snapshot);
	hugetlb_pool_read(GPAGE_KB, &after);
	EXPECT_TRUE(hugetlb_pool_equal(&before, &after, "refused ADD"));
	EXPECT_TRUE(content_ok(fd));
	/* Not frozen: the page goes back to the pool. */
	ASSERT_OK(fdbox_sys(ftruncate(fd, 0)));
	EXPECT_EQ(1, hugetlb_sysfs(GPAGE_KB, "free_hugepages"));
	close(fd);
	close(box);
}

TEST_HARNESS_MAIN
