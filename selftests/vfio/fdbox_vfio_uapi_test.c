// SPDX-License-Identifier: GPL-2.0
/*
 * Single-boot selftest of fdbox_iommufd and fdbox_vfio: what ADD, SEAL,
 * CANCEL and REMOVE do to a live iommufd and to a VFIO device doing real DMA
 * (QEMU's edu device through intel-iommu), and what is refused. Every
 * rejection is followed by a check that nothing changed: the boxes through a
 * snapshot of every box and entry, the files through what they still do.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include "kselftest_harness.h"
#include "fdbox_common.h"
#include "memfd_util.h"
#include "edu_util.h"

#define FDBOX_IOMMUFD_MODULE "fdbox_iommufd"
#define FDBOX_VFIO_MODULE "fdbox_vfio"

/* Every box of this test starts so; the teardown cancels and counts them. */
#define PREFIX "vfio-uapi"
#define BOX PREFIX
#define OTHER_BOX PREFIX "-other"

/* The fixture's memfd, mapped read-write at IOVA_MEM. */
#define MEM_SIZE (1 * MiB)
#define IOVA_MEM 0x100000ULL
/* A second memfd, mapped read-write at IOVA_MEM2 when a test wants one. */
#define MEM2_SIZE (64 * KiB)
#define IOVA_MEM2 0x400000ULL
/* Anonymous memory, mapped with IOMMU_IOAS_MAP. */
#define ANON_SIZE (64 * KiB)
/* IOVAs nothing is mapped at, each with room for MEM_SIZE. */
#define IOVA_FREE 0x800000ULL
#define IOVA_FREE2 0xa00000ULL
#define IOVA_FREE3 0xc00000ULL

#define SEED_MEM 0x6d656d
#define SEED_MEM2 0x6d656d32

/* Everything a test works on; fds are -1 and pointers NULL when unused. */
struct env {
	/* /dev/fdbox, the test's box, and another box */
	int dev;
	int box;
	int box2;
	/* the fixture's memfd, its shared mapping, and a second memfd */
	int memfd;
	uint8_t *mem;
	int memfd2;
	/* /dev/iommu, and its IOAS, which maps the memfd at IOVA_MEM */
	int iommufd;
	__u32 ioas;
	/* edu's cdev: bound, attached and with BAR0 mapped in fixture edu */
	struct edu edu;
	int cdev;
	__u32 devid;
	__u32 hwpt;
	struct edu_bar bar;
	/* edu's VFIO group */
	int group;
	/* anonymous memory */
	void *anon;
};

static void env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	e->dev = e->box = e->box2 = -1;
	e->memfd = e->memfd2 = e->iommufd = e->cdev = e->group = -1;
}

/*
 * The modules, /dev/fdbox, the box, the memfd, an iommufd whose IOAS maps it;
 * with DEVICE, edu bound to that iommufd, attached to the IOAS, with Bus
 * Master on and BAR0 mapped.
 */
static void env_setup(struct __test_metadata *_metadata, struct env *e,
		      bool device)
{
	int ret;

	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE(FDBOX_MEMFD_MODULE);
	ASSERT_MODULE(FDBOX_IOMMUFD_MODULE);
	ASSERT_MODULE(FDBOX_VFIO_MODULE);
	e->dev = ASSERT_OK(fdbox_open_dev());
	ret = edu_find(&e->edu);
	ASSERT_EQ(0, ret) TH_LOG("edu: %s", edu_find_error(ret));
	e->box = ASSERT_OK(fdbox_create(e->dev, BOX));

	e->memfd = ASSERT_OK(edu_memfd("vfio-uapi-mem", MEM_SIZE, SEED_MEM));
	e->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, e->memfd, 0);
	ASSERT_NE(MAP_FAILED, e->mem) e->mem = NULL;
	e->iommufd = ASSERT_OK(iommufd_open());
	ASSERT_OK(ioas_alloc(e->iommufd, &e->ioas));
	ASSERT_OK(ioas_map_file_rw(e->iommufd, e->ioas, e->memfd, 0, MEM_SIZE, IOVA_MEM));
	if (!device)
		return;

	e->cdev = edu_open_cdev(&e->edu);
	ASSERT_LE(0, e->cdev) TH_LOG("%s: %s", e->edu.cdev, strerror(-e->cdev));
	ret = edu_bind(e->cdev, e->iommufd, &e->devid);
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_BIND_IOMMUFD: %s (EPERM: boot with iommufd.allow_unsafe_interrupts=1)",
				 strerror(-ret));
	ASSERT_OK(edu_attach(e->cdev, e->ioas, &e->hwpt));
	ASSERT_OK(edu_set_bus_master(e->cdev, true));
	ASSERT_EQ(1, edu_bus_master(e->cdev));
	ASSERT_OK(edu_map_bar0(e->cdev, &e->bar));
	ASSERT_EQ(EDU_ID, edu_read32(&e->bar, EDU_REG_ID))
		TH_LOG("BAR0 of %s is not edu's", e->edu.bdf);
}

/*
 * Sealed boxes outlive their fds: cancel them; closing the box fds then
 * discards the boxes and gives every file back, before the files close.
 */
static void env_teardown(struct __test_metadata *_metadata, struct env *e)
{
	if (e->dev >= 0)
		EXPECT_LE(0, fdbox_cancel_outgoing(e->dev, PREFIX));
	if (e->box >= 0)
		close(e->box);
	if (e->box2 >= 0)
		close(e->box2);
	edu_unmap_bar0(&e->bar);
	if (e->group >= 0)
		close(e->group);
	if (e->cdev >= 0)
		close(e->cdev);
	if (e->iommufd >= 0)
		close(e->iommufd);
	if (e->mem)
		munmap(e->mem, MEM_SIZE);
	if (e->anon)
		munmap(e->anon, ANON_SIZE);
	if (e->memfd >= 0)
		close(e->memfd);
	if (e->memfd2 >= 0)
		close(e->memfd2);
	if (e->dev >= 0) {
		EXPECT_EQ(0, fdbox_count_boxes(e->dev, PREFIX))
			TH_LOG("boxes left behind");
		close(e->dev);
	}
}

/* IOMMU_IOAS_UNMAP of exactly one mapping returns its length. */
#define ASSERT_UNMAPS(e, iova, len) do {				\
	__u64 _n = 0;							\
	ASSERT_OK(ioas_unmap((e)->iommufd, (e)->ioas, iova, len, &_n));	\
	ASSERT_EQ((__u64)(len), _n)					\
		TH_LOG("unmap at %#llx", (unsigned long long)(iova));	\
} while (0)

/* Nothing is mapped in [IOVA, IOVA + LEN). */
#define ASSERT_UNMAPPED(e, iova, len)					\
	ASSERT_FAILS(ENOENT, ioas_unmap((e)->iommufd, (e)->ioas, iova, len, NULL)) \
		TH_LOG("something is mapped at %#llx", (unsigned long long)(iova))

/* 0 if the context takes a change (a mapping at IOVA_FREE, unmapped again). */
static int thawed(struct env *e)
{
	int ret = ioas_map_file_rw(e->iommufd, e->ioas, e->memfd, 0, PAGE, IOVA_FREE);

	return ret ? ret : ioas_unmap(e->iommufd, e->ioas, IOVA_FREE, PAGE, NULL);
}

/* Anonymous, populated memory for IOMMU_IOAS_MAP. */
static void *anon_memory(void)
{
	void *p = mmap(NULL, ANON_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0xa5, ANON_SIZE);
	return p;
}

/*
 * A DMA round trip: a fresh pattern (SEED) at SRC of the memfd goes to edu
 * and comes back at DST. Both offsets lie in the mapping at IOVA_MEM.
 */
static void round_trip(struct __test_metadata *_metadata, struct env *e,
		       size_t src, size_t dst, uint64_t seed, const char *what)
{
	uint8_t want[EDU_BUF_SIZE];
	int ret;

	edu_pattern(e->mem + src, EDU_BUF_SIZE, seed);
	memcpy(want, e->mem + src, EDU_BUF_SIZE);
	memset(e->mem + dst, 0x5a, EDU_BUF_SIZE);
	ret = edu_dma_to_dev(&e->bar, IOVA_MEM + src, 0, EDU_BUF_SIZE);
	ASSERT_EQ(0, ret) TH_LOG("%s: DMA RAM->edu: %s", what, strerror(-ret));
	ret = edu_dma_to_ram(&e->bar, 0, IOVA_MEM + dst, EDU_BUF_SIZE);
	ASSERT_EQ(0, ret) TH_LOG("%s: DMA edu->RAM: %s", what, strerror(-ret));
	ASSERT_EQ(-1, edu_first_diff(want, e->mem + dst, EDU_BUF_SIZE))
		TH_LOG("%s: the data that went to edu didn't come back (Bus Master %d)",
		       what, edu_bus_master(e->cdev));
}

/* Fixture iommufd: an iommufd mapping a memfd; edu not opened. */
FIXTURE(iommufd) {
	struct env e;
};

FIXTURE_SETUP(iommufd)
{
	env_init(&self->e);
	env_setup(_metadata, &self->e, false);
}

FIXTURE_TEARDOWN(iommufd)
{
	env_teardown(_metadata, &self->e);
}

/* Fixture edu: the same, with edu bound, attached and able to DMA. */
FIXTURE(edu) {
	struct env e;
};

FIXTURE_SETUP(edu)
{
	env_init(&self->e);
	env_setup(_metadata, &self->e, true);
}

FIXTURE_TEARDOWN(edu)
{
	env_teardown(_metadata, &self->e);
}

/* Both handlers are registered, under "iommufd" and "vfio". */
TEST_F(iommufd, handlers_registered)
{
	struct fdbox_handler_info *h;
	struct fdbox_get_caps caps;
	int n;

	n = ASSERT_OK(fdbox_caps(self->e.dev, &caps, &h));
	EXPECT_TRUE(fdbox_find_handler(h, n, "iommufd") != NULL);
	EXPECT_TRUE(fdbox_find_handler(h, n, "vfio") != NULL);
	free(h);
}

/*
 * ADD freezes the context: every changing ioctl fails with EBUSY, and did
 * nothing; IOMMU_IOAS_IOVA_RANGES still answers. REMOVE thaws it: each works
 * again.
 */
TEST_F(iommufd, add_freezes_remove_thaws)
{
	struct iommu_iova_range r[16];
	struct env *e = &self->e;
	__u32 id = 0;
	char *before;

	e->anon = anon_memory();
	ASSERT_TRUE(e->anon != NULL);
	ASSERT_OK(fdbox_add(e->box, e->iommufd, "iommufd"));
	before = SNAPSHOT(e->dev);

	ASSERT_FAILS(EBUSY, ioas_alloc(e->iommufd, &id));
	ASSERT_FAILS(EBUSY, ioas_map_file_rw(e->iommufd, e->ioas, e->memfd, 0, PAGE, IOVA_FREE));
	ASSERT_FAILS(EBUSY, ioas_map_user(e->iommufd, e->ioas, e->anon, ANON_SIZE, IOVA_FREE2));
	ASSERT_FAILS(EBUSY, ioas_copy(e->iommufd, e->ioas, e->ioas, IOVA_MEM, MEM_SIZE, IOVA_FREE3));
	ASSERT_FAILS(EBUSY, ioas_unmap(e->iommufd, e->ioas, IOVA_MEM, MEM_SIZE, NULL));
	ASSERT_FAILS(EBUSY, iommufd_destroy(e->iommufd, e->ioas));
	/* A query still works. */
	ASSERT_LE(1, ioas_iova_ranges(e->iommufd, e->ioas, r, 16));
	ASSERT_UNCHANGED(e->dev, before);
	free(before);

	ASSERT_OK(fdbox_remove(e->box, "iommufd"));
	/* The refused calls left nothing behind... */
	ASSERT_UNMAPPED(e, IOVA_FREE, PAGE);
	ASSERT_UNMAPPED(e, IOVA_FREE2, ANON_SIZE);
	ASSERT_UNMAPPED(e, IOVA_FREE3, MEM_SIZE);
	/* ...not even an object ID: the next IOAS gets the next one. */
	ASSERT_OK(ioas_alloc(e->iommufd, &id));
	ASSERT_EQ(e->ioas + 1, id);
	/* And each call works again. */
	ASSERT_OK(ioas_map_file_rw(e->iommufd, e->ioas, e->memfd, 0, PAGE, IOVA_FREE));
	ASSERT_OK(ioas_map_user(e->iommufd, e->ioas, e->anon, ANON_SIZE, IOVA_FREE2));
	ASSERT_OK(ioas_copy(e->iommufd, e->ioas, e->ioas, IOVA_MEM, MEM_SIZE, IOVA_FREE3));
	ASSERT_UNMAPS(e, IOVA_FREE, PAGE);
	ASSERT_UNMAPS(e, IOVA_FREE2, ANON_SIZE);
	ASSERT_UNMAPS(e, IOVA_FREE3, MEM_SIZE);
	ASSERT_OK(iommufd_destroy(e->iommufd, id));
	/* The mapping made before ADD is there still, whole. */
	ASSERT_UNMAPS(e, IOVA_MEM, MEM_SIZE);
}

/* Closing an open box thaws its iommufd too. */
TEST_F(iommufd, box_close_thaws)
{
	struct env *e = &self->e;

	ASSERT_OK(fdbox_add(e->box, e->iommufd, "iommufd"));
	ASSERT_FAILS(EBUSY, thawed(e));
	close(e->box);
	e->box = -1;
	ASSERT_NO_BOX(e->dev, BOX, FDBOX_DIR_OUTGOING);
	ASSERT_OK(thawed(e));
}

/* Frozen while sealed and after CANCEL (the entry is there still); REMOVE thaws. */
TEST_F(iommufd, frozen_until_remove)
{
	struct env *e = &self->e;

	ASSERT_OK(fdbox_add(e->box, e->memfd, "mem"));
	ASSERT_OK(fdbox_add(e->box, e->iommufd, "iommufd"));
	ASSERT_OK(fdbox_seal(e->box));
	ASSERT_BOX(e->dev, BOX, FDBOX_DIR_OUTGOING, FDBOX_BOX_SEALED, geteuid(), 2);
	ASSERT_FAILS(EBUSY, thawed(e));
	ASSERT_FAILS(EBUSY, ioas_unmap(e->iommufd, e->ioas, IOVA_MEM, MEM_SIZE, NULL));

	ASSERT_OK(fdbox_cancel(e->box));
	ASSERT_BOX(e->dev, BOX, FDBOX_DIR_OUTGOING, FDBOX_BOX_OPEN, geteuid(), 2);
	ASSERT_FAILS(EBUSY, thawed(e));

	ASSERT_OK(fdbox_remove(e->box, "iommufd"));
	ASSERT_OK(thawed(e));
	ASSERT_UNMAPS(e, IOVA_MEM, MEM_SIZE);
}

/*
 * A mapping of memory that is no file (IOMMU_IOAS_MAP) can't be carried:
 * ADD fails with EOPNOTSUPP, nothing changes, and the context is not frozen.
 * Without that mapping, the same context is taken.
 */
TEST_F(iommufd, non_file_mapping_refused)
{
	struct env *e = &self->e;
	char *before;

	e->anon = anon_memory();
	ASSERT_TRUE(e->anon != NULL);
	ASSERT_OK(ioas_map_user(e->iommufd, e->ioas, e->anon, ANON_SIZE, IOVA_FREE2));

	before = SNAPSHOT(e->dev);
	ASSERT_FAILS(EOPNOTSUPP, fdbox_add(e->box, e->iommufd, "iommufd"));
	ASSERT_UNCHANGED(e->dev, before);
	free(before);
	ASSERT_BOX(e->dev, BOX, FDBOX_DIR_OUTGOING, FDBOX_BOX_OPEN, geteuid(), 0);
	ASSERT_OK(thawed(e));

	ASSERT_UNMAPS(e, IOVA_FREE2, ANON_SIZE);
	ASSERT_OK(fdbox_add(e->box, e->iommufd, "iommufd"));
	ASSERT_FAILS(EBUSY, thawed(e));
	ASSERT_OK(fdbox_remove(e->box, "iommufd"));
	ASSERT_OK(thawed(e));
}

/* Where igb (8086:10c9, the SR-IOV PF) and its VFs (8086:10ca) are. */
#define IGB_VENDOR 0x8086
#define IGB_PF 0x10c9
#define IGB_VF 0x10ca

/*
 * As ASSERT_UNCHANGED, but an EXPECT, for a test that must undo what it set
 * up whatever happens; frees BEFORE.
 */
#define EXPECT_UNCHANGED_SNAPSHOT(dev, before) do {			\
	char *_after = fdbox_snapshot(dev);				\
	EXPECT_TRUE((before) && _after && !strcmp(before, _after))	\
		TH_LOG("changed: %s\n-> %s", before, _after);		\
	free(before);							\
	free(_after);							\
} while (0)

/* Writes VALUE into sysfs file PATH: 0 or -errno. */
static int sysfs_write(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	close(fd);
	return n < 0 ? -errno : 0;
}

#define MAX_MAPPINGS_PARAM "/sys/module/fdbox_iommufd/parameters/max_mappings"

/*
 * More mappings than the hand-over may hold are refused at ADD with ENOSPC,
 * and nothing changes. The format's limit, 2^20, would take minutes to
 * reach here: the operator's cap, fdbox_iommufd.max_mappings, lowers it to
 * 4 for the test. Four mappings are accepted.
 */
TEST_F(iommufd, too_many_mappings_refused)
{
	struct env *e = &self->e;
	char old[32] = "";
	char *before;
	int fd, i, ret;
	ssize_t n;

	fd = open(MAX_MAPPINGS_PARAM, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd) TH_LOG("%s: %s", MAX_MAPPINGS_PARAM, strerror(errno));
	n = read(fd, old, sizeof(old) - 1);
	close(fd);
	ASSERT_LT(0, n);
	ASSERT_OK(sysfs_write(MAX_MAPPINGS_PARAM, "4"));

	/* The fixture's mapping and four more, a page each. */
	for (i = 1; i <= 4; i++) {
		ret = ioas_map_file_rw(e->iommufd, e->ioas, e->memfd, 0, PAGE,
				       IOVA_FREE + i * 2 * PAGE);
		if (ret)
			break;
	}
	if (!ret) {
		before = fdbox_snapshot(e->dev);
		ret = fdbox_add(e->box, e->iommufd, "iommufd");
		EXPECT_EQ(-ENOSPC, ret) TH_LOG("ADD with 5 mappings: %s", fdbox_errname(ret));
		EXPECT_UNCHANGED_SNAPSHOT(e->dev, before);
		EXPECT_EQ(0, thawed(e));
		ret = ioas_unmap(e->iommufd, e->ioas, IOVA_FREE + 2 * PAGE, PAGE, NULL);
		EXPECT_EQ(0, ret);
		ret = fdbox_add(e->box, e->iommufd, "iommufd");
		EXPECT_EQ(0, ret) TH_LOG("ADD with 4 mappings: %s", fdbox_errname(ret));
		if (!ret)
			EXPECT_EQ(0, fdbox_remove(e->box, "iommufd"));
	}
	ASSERT_OK(sysfs_write(MAX_MAPPINGS_PARAM, old));
	ASSERT_EQ(0, ret) TH_LOG("IOMMU_IOAS_MAP_FILE: %s", strerror(-ret));
}

/*
 * The payload carries 256 IOASes: ADD of an iommufd with more fails with
 * ENOSPC and leaves it unfrozen; with one fewer, it is accepted.
 */
TEST_F(iommufd, too_many_ioas_refused)
{
	struct env *e = &self->e;
	__u32 id = 0;
	char *before;
	int i;

	/* The fixture's IOAS and 256 more. */
	for (i = 0; i < 256; i++)
		ASSERT_OK(ioas_alloc(e->iommufd, &id));
	before = SNAPSHOT(e->dev);
	ASSERT_FAILS(ENOSPC, fdbox_add(e->box, e->iommufd, "iommufd"));
	ASSERT_UNCHANGED(e->dev, before);
	free(before);
	ASSERT_OK(thawed(e));

	ASSERT_OK(iommufd_destroy(e->iommufd, id));
	ASSERT_OK(fdbox_add(e->box, e->iommufd, "iommufd"));
	ASSERT_OK(fdbox_remove(e->box, "iommufd"));
}

/*
 * The iommufd depends on every memfd it maps: SEAL without one in the box
 * (absent, or in another box) fails with ENOENT and changes nothing: the
 * box is open, the context still frozen. With both memfds, the box seals.
 */
TEST_F(iommufd, seal_needs_every_mapped_memfd)
{
	struct env *e = &self->e;
	char *before;

	e->memfd2 = ASSERT_OK(edu_memfd("vfio-uapi-mem2", MEM2_SIZE, SEED_MEM2));
	ASSERT_OK(ioas_map_file_rw(e->iommufd, e->ioas, e->memfd2, 0, MEM2_SIZE, IOVA_MEM2));
	ASSERT_OK(fdbox_add(e->box, e->memfd, "mem"));
	ASSERT_OK(fdbox_add(e->box, e->iommufd, "iommufd"));

	before = SNAPSHOT(e->dev);
	ASSERT_FAILS(ENOENT, fdbox_seal(e->box));
	ASSERT_UNCHANGED(e->dev, before);
	free(before);
	ASSERT_BOX(e->dev, BOX, FDBOX_DIR_OUTGOING, FDBOX_BOX_OPEN, geteuid(), 2);
	ASSERT_FAILS(EBUSY, thawed(e));

	e->box2 = ASSERT_OK(fdbox_create(e->dev, OTHER_BOX));
	ASSERT_OK(fdbox_add(e->box2, e->memfd2, "mem2"));
	before = SNAPSHOT(e->dev);
	ASSERT_FAILS(ENOENT, fdbox_seal(e->box));
	ASSERT_UNCHANGED(e->dev, before);
	free(before);
	ASSERT_FAILS(EBUSY, thawed(e));
	ASSERT_OK(fdbox_remove(e->box2, "mem2"));
	close(e->box2);
	e->box2 = -1;

	ASSERT_OK(fdbox_add(e->box, e->memfd2, "mem2"));
	ASSERT_OK(fdbox_seal(e->box));
	ASSERT_BOX(e->dev, BOX, FDBOX_DIR_OUTGOING, FDBOX_BOX_SEALED, geteuid(), 3);
	ASSERT_OK(fdbox_cancel(e->box));
	ASSERT_OK(fdbox_remove(e->box, "iommufd"));
	ASSERT_OK(thawed(e));
	ASSERT_UNMAPS(e, IOVA_MEM2, MEM2_SIZE);
	ASSERT_UNMAPS(e, IOVA_MEM, MEM_SIZE);
}

/*
 * REMOVE of a memfd the iommufd entry depends on fails with EBUSY, and the
 * memfd stays an entry (its size frozen); the iommufd first, then the memfd,
 * is fine.
 */
TEST_F(iommufd, remove_mapped_memfd_busy)
{
	struct env *e = &self->e;
	char *before;

	ASSERT_OK(fdbox_add(e->box, e->memfd, "mem"));
	ASSERT_OK(fdbox_add(e->box, e->iommufd, "iommufd"));

	before = SNAPSHOT(e->dev);
	ASSERT_FAILS(EBUSY, fdbox_remove(e->box, "mem"));
	ASSERT_UNCHANGED(e->dev, before);
	free(before);
	ASSERT_FAILS(EPERM, fdbox_sys(ftruncate(e->memfd, MEM_SIZE + PAGE)));

	ASSERT_OK(fdbox_remove(e->box, "iommufd"));
	ASSERT_OK(fdbox_remove(e->box, "mem"));
	ASSERT_BOX(e->dev, BOX, FDBOX_DIR_OUTGOING, FDBOX_BOX_OPEN, geteuid(), 0);
	/* Both are given back: the size may change, the context too. */
	ASSERT_OK(fdbox_sys(ftruncate(e->memfd, MEM_SIZE + PAGE)));
	ASSERT_OK(fdbox_sys(ftruncate(e->memfd, MEM_SIZE)));
	ASSERT_OK(thawed(e));
}

/*
 * A VFIO device fd must be bound to an iommufd: an unbound cdev fd is EINVAL,
 * and nothing changes. The same fd, bound and attached, is taken.
 */
TEST_F(iommufd, unbound_cdev_refused)
{
	struct env *e = &self->e;
	char *before;

	e->cdev = edu_open_cdev(&e->edu);
	ASSERT_LE(0, e->cdev) TH_LOG("%s: %s", e->edu.cdev, strerror(-e->cdev));

	before = SNAPSHOT(e->dev);
	ASSERT_FAILS(EINVAL, fdbox_add(e->box, e->cdev, "device"));
	ASSERT_UNCHANGED(e->dev, before);
	free(before);

	ASSERT_OK(edu_bind(e->cdev, e->iommufd, &e->devid));
	ASSERT_OK(edu_attach(e->cdev, e->ioas, &e->hwpt));
	ASSERT_OK(fdbox_add(e->box, e->cdev, "device"));
	ASSERT_BOX(e->dev, BOX, FDBOX_DIR_OUTGOING, FDBOX_BOX_OPEN, geteuid(), 1);
	ASSERT_OK(fdbox_remove(e->box, "device"));
}

/* A VFIO group fd (/dev/vfio/N) is refused with EOPNOTSUPP, and still works. */
TEST_F(iommufd, group_fd_refused)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct env *e = &self->e;
	char *before;

	e->group = open(e->edu.group, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, e->group) TH_LOG("%s: %s", e->edu.group, strerror(errno));

	before = SNAPSHOT(e->dev);
	ASSERT_FAILS(EOPNOTSUPP, fdbox_add(e->box, e->group, "group"));
	ASSERT_UNCHANGED(e->dev, before);
	free(before);
	ASSERT_OK(fdbox_raw(e->group, VFIO_GROUP_GET_STATUS, &status));
}

/*
 * A frozen iommufd takes no compat IOAS through a VFIO group either:
 * VFIO_GROUP_SET_CONTAINER fails with EBUSY and nothing changes. Once the
 * iommufd is removed from the box, the same call works.
 */
TEST_F(iommufd, frozen_refuses_group_container)
{
	struct env *e = &self->e;
	__s32 iommufd;
	char *before;

	e->group = open(e->edu.group, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, e->group) TH_LOG("%s: %s", e->edu.group, strerror(errno));
	iommufd = e->iommufd;

	ASSERT_OK(fdbox_add(e->box, e->iommufd, "iommufd"));
	before = SNAPSHOT(e->dev);
	ASSERT_FAILS(EBUSY, fdbox_raw(e->group, VFIO_GROUP_SET_CONTAINER, &iommufd));
	ASSERT_UNCHANGED(e->dev, before);
	free(before);
	ASSERT_FAILS(EBUSY, thawed(e));

	ASSERT_OK(fdbox_remove(e->box, "iommufd"));
	ASSERT_OK(fdbox_raw(e->group, VFIO_GROUP_SET_CONTAINER, &iommufd));
	ASSERT_OK(fdbox_raw(e->group, VFIO_GROUP_UNSET_CONTAINER, NULL));
}

/* The premise of the DMA checks: edu moves data through the IOAS. */
TEST_F_TIMEOUT(edu, dma_round_trip, 60)
{
	round_trip(_metadata, &self->e, 0x1000, 0x3000, 1, "baseline");
	round_trip(_metadata, &self->e, MEM_SIZE - EDU_BUF_SIZE, 0, 2, "ends");
}

/*
 * The other premise: DMA to an IOVA that is no longer mapped changes no
 * memory, and works again once it is mapped again.
 */
TEST_F_TIMEOUT(edu, unmap_blocks_dma, 60)
{
	struct env *e = &self->e;
	uint8_t old[EDU_BUF_SIZE];
	const size_t dst = 0x5000;

	edu_pattern(e->mem, EDU_BUF_SIZE, 3);
	ASSERT_OK(edu_dma_to_dev(&e->bar, IOVA_MEM, 0, EDU_BUF_SIZE));
	memcpy(old, e->mem + dst, EDU_BUF_SIZE);
	ASSERT_UNMAPS(e, IOVA_MEM, MEM_SIZE);
	ASSERT_OK(edu_dma_to_ram(&e->bar, 0, IOVA_MEM + dst, EDU_BUF_SIZE));
	ASSERT_EQ(-1, edu_first_diff(old, e->mem + dst, EDU_BUF_SIZE))
		TH_LOG("a DMA to an unmapped IOVA reached the memfd");
	ASSERT_OK(ioas_map_file_rw(e->iommufd, e->ioas, e->memfd, 0, MEM_SIZE, IOVA_MEM));
	round_trip(_metadata, e, 0x6000, 0x7000, 4, "remapped");
}

/*
 * With a device bound, IOMMU_HWPT_ALLOC is refused too while the iommufd is
 * an entry; DMA goes on through the frozen context. REMOVE allows it again.
 */
TEST_F_TIMEOUT(edu, freeze_refuses_hwpt_alloc, 60)
{
	struct env *e = &self->e;
	__u32 hwpt = 0;

	ASSERT_OK(fdbox_add(e->box, e->iommufd, "iommufd"));
	ASSERT_FAILS(EBUSY, iommufd_hwpt_alloc(e->iommufd, e->devid, e->ioas, &hwpt));
	ASSERT_FAILS(EBUSY, thawed(e));
	round_trip(_metadata, e, 0x1000, 0x2000, 5, "frozen");
	ASSERT_OK(fdbox_remove(e->box, "iommufd"));
	ASSERT_OK(iommufd_hwpt_alloc(e->iommufd, e->devid, e->ioas, &hwpt));
	ASSERT_OK(iommufd_destroy(e->iommufd, hwpt));
}

/*
 * A device bound to a frozen iommufd can't move to another IOAS: the attach
 * fails with EBUSY, nothing changes, and DMA still goes through the IOAS ADD
 * recorded. REMOVE allows it again.
 */
TEST_F_TIMEOUT(edu, frozen_refuses_attach, 60)
{
	struct env *e = &self->e;
	__u32 other = 0, pt;
	char *before;

	ASSERT_OK(ioas_alloc(e->iommufd, &other));
	ASSERT_OK(fdbox_add(e->box, e->iommufd, "iommufd"));
	before = SNAPSHOT(e->dev);
	pt = other;
	ASSERT_FAILS(EBUSY, edu_attach(e->cdev, pt, &pt));
	ASSERT_UNCHANGED(e->dev, before);
	free(before);
	round_trip(_metadata, e, 0x1000, 0x2000, 12, "after the refused attach");

	ASSERT_OK(fdbox_remove(e->box, "iommufd"));
	pt = other;
	ASSERT_OK(edu_attach(e->cdev, pt, &pt));
	pt = e->ioas;
	ASSERT_OK(edu_attach(e->cdev, pt, &pt));
	ASSERT_OK(iommufd_destroy(e->iommufd, other));
	round_trip(_metadata, e, 0x3000, 0x4000, 13, "back on the first IOAS");
}

/*
 * A paging HWPT that userspace allocated is carried by the devices attached
 * to it. With none attached, ADD of the iommufd fails with EOPNOTSUPP and
 * changes nothing: the HWPT would not come back. With edu attached to it,
 * both the iommufd and edu are accepted, DMA goes through the HWPT, and
 * REMOVE gives both back.
 */
TEST_F_TIMEOUT(edu, user_hwpt, 60)
{
	struct env *e = &self->e;
	__u32 hwpt = 0, pt;
	char *before;

	ASSERT_OK(iommufd_hwpt_alloc(e->iommufd, e->devid, e->ioas, &hwpt));
	before = SNAPSHOT(e->dev);
	ASSERT_FAILS(EOPNOTSUPP, fdbox_add(e->box, e->iommufd, "iommufd"));
	ASSERT_UNCHANGED(e->dev, before);
	free(before);
	ASSERT_OK(thawed(e));

	pt = hwpt;
	ASSERT_OK(edu_attach(e->cdev, pt, &pt));
	ASSERT_EQ(hwpt, pt);
	ASSERT_OK(fdbox_add(e->box, e->iommufd, "iommufd"));
	ASSERT_OK(fdbox_add(e->box, e->cdev, "device"));
	round_trip(_metadata, e, 0x1000, 0x2000, 7, "attached to the HWPT, boxed");
	ASSERT_OK(fdbox_remove(e->box, "device"));
	ASSERT_OK(fdbox_remove(e->box, "iommufd"));
	ASSERT_OK(thawed(e));

	/* Back on the IOAS's automatic domain, the HWPT can go. */
	pt = e->ioas;
	ASSERT_OK(edu_attach(e->cdev, pt, &pt));
	ASSERT_OK(iommufd_destroy(e->iommufd, hwpt));
	round_trip(_metadata, e, 0x1000, 0x2000, 8, "after REMOVE");
}

/*
 * An SR-IOV virtual function can't be carried: after the kexec it doesn't
 * exist until its PF enables VFs again, and the PF's VF token is gone. ADD
 * of a VF's cdev, bound with the token, fails with EOPNOTSUPP and changes
 * nothing; the VF still takes its iommufd attach afterwards.
 */
TEST_F_TIMEOUT(iommufd, vf_refused, 60)
{
	char path[PATH_MAX], *before;
	struct env *e = &self->e;
	struct {
		struct vfio_device_feature head;
		__u8 uuid[16];
	} token = {
		.head = {
			.argsz = sizeof(token),
			.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PCI_VF_TOKEN,
		},
	};
	struct edu pf, vf;
	__u32 devid = 0, pt;
	int ret, cdev, pf_cdev;

	ret = pci_find_vfio(&pf, IGB_VENDOR, IGB_PF, 0);
	ASSERT_EQ(0, ret) TH_LOG("igb's PF: %s", edu_find_error(ret));
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/sriov_numvfs", pf.bdf);
	ret = sysfs_write(path, "1");
	ASSERT_EQ(0, ret) TH_LOG("%s: %s (vfio_pci.enable_sriov=1?)", path, strerror(-ret));
	ret = pci_find_vfio(&vf, IGB_VENDOR, IGB_VF, 0);
	if (ret)
		sysfs_write(path, "0");
	ASSERT_EQ(0, ret) TH_LOG("igb's VF: %s", edu_find_error(ret));

	/* The PF's user sets the VF token (all zeros here) through the PF, bound. */
	pf_cdev = open(pf.cdev, O_RDWR | O_CLOEXEC);
	ret = pf_cdev < 0 ? -errno : edu_bind(pf_cdev, e->iommufd, NULL);
	if (!ret && ioctl(pf_cdev, VFIO_DEVICE_FEATURE, &token))
		ret = -errno;
	cdev = -1;
	if (!ret) {
		cdev = open(vf.cdev, O_RDWR | O_CLOEXEC);
		ret = cdev < 0 ? -errno : vf_bind(cdev, e->iommufd, &devid);
	}
	if (!ret) {
		/* EXPECTs, so that the VF goes away whatever happens. */
		before = fdbox_snapshot(e->dev);
		ret = fdbox_add(e->box, cdev, "vf");
		EXPECT_EQ(-EOPNOTSUPP, ret) TH_LOG("ADD of VF %s: %s", vf.bdf, fdbox_errname(ret));
		/* A boxed VF would hold up the removal of the VFs below. */
		if (!ret)
			fdbox_remove(e->box, "vf");
		EXPECT_UNCHANGED_SNAPSHOT(e->dev, before);
		pt = e->ioas;
		ret = edu_attach(cdev, pt, &pt);
		EXPECT_EQ(0, ret) TH_LOG("attach of the VF after the refusal: %s", strerror(-ret));
		ret = 0;
	}
	if (cdev >= 0)
		close(cdev);
	if (pf_cdev >= 0)
		close(pf_cdev);
	EXPECT_EQ(0, sysfs_write(path, "0"));
	ASSERT_EQ(0, ret) TH_LOG("VF %s (%s): %s", vf.bdf, vf.cdev, strerror(-ret));
}

/*
 * The device depends on its iommufd: SEAL without it fails with ENOENT and
 * changes nothing, Bus Master stays on and DMA works. With it, the box
 * seals; and the iommufd can't be removed before the device.
 */
TEST_F_TIMEOUT(edu, seal_needs_iommufd, 60)
{
	struct env *e = &self->e;
	char *before;

	ASSERT_OK(fdbox_add(e->box, e->memfd, "mem"));
	ASSERT_OK(fdbox_add(e->box, e->cdev, "device"));

	before = SNAPSHOT(e->dev);
	ASSERT_FAILS(ENOENT, fdbox_seal(e->box));
	ASSERT_UNCHANGED(e->dev, before);
	free(before);
	ASSERT_BOX(e->dev, BOX, FDBOX_DIR_OUTGOING, FDBOX_BOX_OPEN, geteuid(), 2);
	ASSERT_EQ(1, edu_bus_master(e->cdev)) TH_LOG("a failed SEAL left Bus Master off");
	round_trip(_metadata, e, 0x1000, 0x2000, 6, "after the failed SEAL");

	ASSERT_OK(fdbox_add(e->box, e->iommufd, "iommufd"));
	ASSERT_OK(fdbox_seal(e->box));
	ASSERT_OK(fdbox_cancel(e->box));
	before = SNAPSHOT(e->dev);
	ASSERT_FAILS(EBUSY, fdbox_remove(e->box, "iommufd"));
	ASSERT_UNCHANGED(e->dev, before);
	free(before);
	ASSERT_OK(fdbox_remove(e->box, "device"));
	ASSERT_OK(fdbox_remove(e->box, "iommufd"));
	ASSERT_OK(fdbox_remove(e->box, "mem"));
	ASSERT_OK(thawed(e));
}

/*
 * SEAL switches Bus Master off: a DMA to memory completes but moves nothing.
 * CANCEL switches it on again: the same DMA lands, a fresh round trip works,
 * and after REMOVE the mapping is there, whole.
 */
TEST_F_TIMEOUT(edu, seal_stops_dma_cancel_restores, 120)
{
	uint8_t held[EDU_BUF_SIZE], old[EDU_BUF_SIZE];
	const size_t src = 0x10000, dst = 0x20000;
	struct env *e = &self->e;

	/* edu's buffer holds HELD; DST holds OLD, which differs. */
	edu_pattern(e->mem + src, EDU_BUF_SIZE, 7);
	memcpy(held, e->mem + src, EDU_BUF_SIZE);
	edu_pattern(e->mem + dst, EDU_BUF_SIZE, 8);
	memcpy(old, e->mem + dst, EDU_BUF_SIZE);
	ASSERT_OK(edu_dma_to_dev(&e->bar, IOVA_MEM + src, 0, EDU_BUF_SIZE));

	ASSERT_OK(fdbox_add(e->box, e->memfd, "mem"));
	ASSERT_OK(fdbox_add(e->box, e->iommufd, "iommufd"));
	ASSERT_OK(fdbox_add(e->box, e->cdev, "device"));
	ASSERT_EQ(1, edu_bus_master(e->cdev)) TH_LOG("ADD switched Bus Master off");
	ASSERT_OK(fdbox_seal(e->box));
	ASSERT_BOX(e->dev, BOX, FDBOX_DIR_OUTGOING, FDBOX_BOX_SEALED, geteuid(), 3);
	ASSERT_EQ(0, edu_bus_master(e->cdev)) TH_LOG("Bus Master is on in a sealed box");
	ASSERT_OK(edu_dma_to_ram(&e->bar, 0, IOVA_MEM + dst, EDU_BUF_SIZE));
	ASSERT_EQ(-1, edu_first_diff(old, e->mem + dst, EDU_BUF_SIZE))
		TH_LOG("a DMA while sealed reached memory");

	ASSERT_OK(fdbox_cancel(e->box));
	ASSERT_EQ(1, edu_bus_master(e->cdev)) TH_LOG("CANCEL left Bus Master off");
	ASSERT_OK(edu_dma_to_ram(&e->bar, 0, IOVA_MEM + dst, EDU_BUF_SIZE));
	ASSERT_EQ(-1, edu_first_diff(held, e->mem + dst, EDU_BUF_SIZE))
		TH_LOG("after CANCEL, edu's data didn't reach memory");
	round_trip(_metadata, e, 0x30000, 0x40000, 9, "after CANCEL");

	/* A second cycle does the same. */
	ASSERT_OK(fdbox_seal(e->box));
	ASSERT_EQ(0, edu_bus_master(e->cdev));
	ASSERT_OK(fdbox_cancel(e->box));
	ASSERT_EQ(1, edu_bus_master(e->cdev));

	ASSERT_OK(fdbox_remove(e->box, "device"));
	ASSERT_OK(fdbox_remove(e->box, "iommufd"));
	ASSERT_OK(fdbox_remove(e->box, "mem"));
	round_trip(_metadata, e, 0x50000, 0x60000, 10, "after REMOVE");
	ASSERT_UNMAPPED(e, IOVA_MEM - PAGE, PAGE);
	ASSERT_UNMAPPED(e, IOVA_MEM + MEM_SIZE, PAGE);
	ASSERT_UNMAPS(e, IOVA_MEM, MEM_SIZE);
}

/*
 * CANCEL writes back the command register SEAL found, exactly: a device whose
 * Bus Master was off before ADD keeps it off, and one whose was on gets the
 * same word back, nothing more.
 */
TEST_F_TIMEOUT(edu, cancel_restores_command_word, 60)
{
	struct env *e = &self->e;
	__u16 cmd, on, off;

	ASSERT_OK(edu_set_bus_master(e->cdev, true));
	ASSERT_OK(edu_read_command(e->cdev, &on));
	ASSERT_OK(edu_set_bus_master(e->cdev, false));
	ASSERT_OK(edu_read_command(e->cdev, &off));
	ASSERT_EQ(0, off & PCI_COMMAND_MASTER);

	ASSERT_OK(fdbox_add(e->box, e->memfd, "mem"));
	ASSERT_OK(fdbox_add(e->box, e->iommufd, "iommufd"));
	ASSERT_OK(fdbox_add(e->box, e->cdev, "device"));
	ASSERT_OK(fdbox_seal(e->box));
	ASSERT_EQ(0, edu_bus_master(e->cdev));
	ASSERT_OK(fdbox_cancel(e->box));
	ASSERT_OK(edu_read_command(e->cdev, &cmd));
	ASSERT_EQ(off, cmd) TH_LOG("CANCEL left the command word %#x, not %#x", cmd, off);

	ASSERT_OK(edu_write_command(e->cdev, on));
	ASSERT_OK(fdbox_seal(e->box));
	ASSERT_OK(edu_read_command(e->cdev, &cmd));
	ASSERT_EQ(on & ~PCI_COMMAND_MASTER, cmd);
	ASSERT_OK(fdbox_cancel(e->box));
	ASSERT_OK(edu_read_command(e->cdev, &cmd));
	ASSERT_EQ(on, cmd) TH_LOG("CANCEL left the command word %#x, not %#x", cmd, on);

	ASSERT_OK(fdbox_remove(e->box, "device"));
	ASSERT_OK(fdbox_remove(e->box, "iommufd"));
	ASSERT_OK(fdbox_remove(e->box, "mem"));
	round_trip(_metadata, e, 0x1000, 0x2000, 11, "after the command word came back");
}

int main(int argc, char **argv)
{
	return test_harness_run(argc, argv);
}
