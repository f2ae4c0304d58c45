// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage selftest of fdbox_iommufd and fdbox_vfio across a real KHO
 * kexec, with QEMU's two edu devices doing DMA through intel-iommu.
 *
 * Stage 1 binds edu A before it creates the IOAS it uses, and edu B after,
 * with a scratch IOAS destroyed in between, so that rebuilding the objects in
 * any order would not give back the same IDs. It maps two memfds into the
 * IOAS (one of them twice, the second time read-only), attaches A to a HWPT
 * it allocates on that IOAS (IOMMU_HWPT_ALLOC, as QEMU with a vIOMMU and
 * cloud-hypervisor do) and B to the IOAS's automatic domain, checks DMA both
 * ways and the read-only mapping, leaves data that edu wrote in the memfd,
 * and boxes the memfds, the iommufd and both devices in one sealed box.
 * Stage 2 retrieves them and checks that:
 * - the memfds have their content;
 * - the iommufd has the IOAS, with its ID, and only it, with the same
 *   mappings: IOVAs, lengths and permissions, backed by the restored memfds;
 * - RETRIEVE of A fails with EBUSY, and leaves it pending, while its device
 *   ID is taken, and with EACCES while the caller may not open its
 *   /dev/vfio/devices node;
 * - retrieved, both have their device IDs, A is on its HWPT
 *   (with its ID) and B on the IOAS: once Bus Master is on again, DMA both
 *   ways lands in the restored memfds, and stops landing when the IOAS unmaps
 *   its IOVA.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include <linux/capability.h>
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "fdbox_common.h"
#include "memfd_util.h"
#include "edu_util.h"

#define FDBOX_IOMMUFD_MODULE "fdbox_iommufd"
#define FDBOX_VFIO_MODULE "fdbox_vfio"

#define MAIN_BOX "vfio-main"
/* Stage 2 boxes the restored iommufd again, briefly. */
#define AGAIN_BOX "vfio-again"

/*
 * The object IDs stage 1 gets from a fresh iommufd, in the order it makes
 * them, and stage 2 must see again: the scratch IOAS (destroyed before the
 * seal), edu A, the IOAS, edu B, and A's HWPT.
 */
#define SCRATCH_ID 1
#define DEVICE_A_ID 2
#define IOAS_ID 3
#define DEVICE_B_ID 4
#define HWPT_ID 5

/* Memfd "dma" and memfd "aux", and their patterns. */
#define DMA_SIZE (4 * MiB)
#define AUX_SIZE (64 * KiB)
#define SEED_DMA 0x646d61
#define SEED_AUX 0x617578

/* The mappings, in IOVA order. */
struct mapping {
	const char *memfd;
	__u64 iova;
	__u64 start;
	__u64 len;
	bool writable;
};

#define IOVA_DMA 0x100000ULL
#define IOVA_RO 0x800000ULL
#define RO_START (2 * MiB)
#define RO_LEN (1 * MiB)
#define IOVA_AUX 0x1000000ULL

static const struct mapping mappings[] = {
	{ "dma", IOVA_DMA, 0, DMA_SIZE, true },
	{ "dma", IOVA_RO, RO_START, RO_LEN, false },
	{ "aux", IOVA_AUX, 0, AUX_SIZE, true },
};

/*
 * Stage 1's last DMA: edu copies the first page of "aux" over the last page
 * of "dma", which then crosses the kexec as data a device wrote.
 */
#define EDU_WRITTEN_OFF (DMA_SIZE - EDU_BUF_SIZE)

/* What "dma" holds when it is sealed, and must hold when retrieved. */
static void expected_dma(uint8_t *buf)
{
	uint8_t aux[EDU_BUF_SIZE];

	edu_pattern(buf, DMA_SIZE, SEED_DMA);
	edu_pattern(aux, sizeof(aux), SEED_AUX);
	memcpy(buf + EDU_WRITTEN_OFF, aux, EDU_BUF_SIZE);
}

/* The files of one stage; fds are -1 and pointers NULL when unused. */
struct files {
	int dma;
	int aux;
	uint8_t *dma_mem;
	uint8_t *aux_mem;
	int iommufd;
	/* edu A, on its HWPT, and edu B, on the IOAS's automatic domain */
	int cdev;
	struct edu_bar bar;
	int cdev_b;
	struct edu_bar bar_b;
};

static void files_init(struct files *f)
{
	memset(f, 0, sizeof(*f));
	f->dma = f->aux = f->iommufd = f->cdev = f->cdev_b = -1;
}

static void files_close(struct files *f)
{
	edu_unmap_bar0(&f->bar);
	edu_unmap_bar0(&f->bar_b);
	if (f->cdev_b >= 0)
		close(f->cdev_b);
	if (f->dma_mem)
		munmap(f->dma_mem, DMA_SIZE);
	if (f->aux_mem)
		munmap(f->aux_mem, AUX_SIZE);
	if (f->cdev >= 0)
		close(f->cdev);
	if (f->iommufd >= 0)
		close(f->iommufd);
	if (f->dma >= 0)
		close(f->dma);
	if (f->aux >= 0)
		close(f->aux);
	files_init(f);
}

static uint8_t *map_memfd(int fd, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* DMA of one edu buffer: RAM -> edu from SRC, then edu -> RAM to DST. */
static void dma_copy(struct __test_metadata *_metadata, const struct edu_bar *bar,
		     __u64 src, __u64 dst, const char *what)
{
	int ret;

	ret = edu_dma_to_dev(bar, src, 0, EDU_BUF_SIZE);
	ASSERT_EQ(0, ret) TH_LOG("%s: DMA RAM->edu from %#llx: %s", what,
				 (unsigned long long)src, strerror(-ret));
	ret = edu_dma_to_ram(bar, 0, dst, EDU_BUF_SIZE);
	ASSERT_EQ(0, ret) TH_LOG("%s: DMA edu->RAM to %#llx: %s", what,
				 (unsigned long long)dst, strerror(-ret));
}

/* LEN bytes at GOT equal WANT; says where they don't. */
#define ASSERT_BYTES(want, got, len, ...) do {				\
	long _at = edu_first_diff(want, got, len);			\
	ASSERT_EQ(-1, _at) {						\
		TH_LOG("first difference at byte %ld", _at);		\
		TH_LOG(__VA_ARGS__);					\
	}								\
} while (0)

/* The IOVA ranges of IOAS_ID, logged; whether they are narrowed. */
static bool log_ranges(struct __test_metadata *_metadata, int iommufd,
		       const char *when)
{
	struct iommu_iova_range r[16];
	int n, i;

	n = ioas_iova_ranges(iommufd, IOAS_ID, r, 16);
	if (n < 0) {
		TH_LOG("%s: IOMMU_IOAS_IOVA_RANGES: %s", when, strerror(-n));
		return false;
	}
	for (i = 0; i < n; i++)
		ksft_print_msg("%s: IOVA range %d: %#llx-%#llx\n", when, i,
			       (unsigned long long)r[i].start,
			       (unsigned long long)r[i].last);
	return ioas_ranges_narrowed(r, n);
}

/* Nothing is mapped in [IOVA, IOVA + LEN). */
#define ASSERT_UNMAPPED(fd, iova, len)					\
	ASSERT_FAILS(ENOENT, ioas_unmap(fd, IOAS_ID, iova, len, NULL))	\
		TH_LOG("something is mapped at %#llx", (unsigned long long)(iova))

/* IOMMU_IOAS_UNMAP of exactly one mapping returns its length. */
#define ASSERT_UNMAPS(fd, iova, len) do {				\
	__u64 _n = 0;							\
	ASSERT_OK(ioas_unmap(fd, IOAS_ID, iova, len, &_n));		\
	ASSERT_EQ((__u64)(len), _n)					\
		TH_LOG("unmap at %#llx", (unsigned long long)(iova));	\
} while (0)

/* Every entry of BOX: its handler, its dependency count if >= 0, its state. */
static void check_entries(struct __test_metadata *_metadata, int box,
			  __u32 state, bool deps)
{
	static const struct {
		const char *name, *compatible;
		__u32 n_deps;
	} want[] = {
		{ "dma", "memfd", 0 },
		{ "aux", "memfd", 0 },
		/* each memfd it maps, once */
		{ "iommufd", "iommufd", 2 },
		{ "device", "vfio", 1 },
		{ "device-b", "vfio", 1 },
	};
	const struct fdbox_entry_info *e;
	struct fdbox_entry_info *all;
	struct fdbox_box_info info;
	size_t i;
	int n;

	n = fdbox_box_info(box, &info, &all);
	ASSERT_EQ((int)ARRAY_SIZE(want), n) TH_LOG("BOX_INFO: %s", fdbox_errname(n));
	for (i = 0; i < ARRAY_SIZE(want); i++) {
		e = fdbox_find_entry(all, n, want[i].name);
		ASSERT_TRUE(e != NULL) TH_LOG("no entry \"%s\"", want[i].name);
		ASSERT_NAME(want[i].compatible, e->compatible);
		EXPECT_EQ(state, e->state) TH_LOG("entry %s", want[i].name);
		EXPECT_EQ(FDBOX_REASON_NONE, e->reason) TH_LOG("entry %s", want[i].name);
		if (deps) {
			EXPECT_EQ(want[i].n_deps, e->n_deps) TH_LOG("entry %s", want[i].name);
		} else {
			ksft_print_msg("entry %s: %u dependencies\n", want[i].name, e->n_deps);
		}
	}
	free(all);
}

FIXTURE(stage1) {
	int dev;
	struct files f;
};

FIXTURE_SETUP(stage1)
{
	files_init(&self->f);
	self->dev = -1;
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE(FDBOX_MEMFD_MODULE);
	ASSERT_MODULE(FDBOX_IOMMUFD_MODULE);
	ASSERT_MODULE(FDBOX_VFIO_MODULE);
	self->dev = ASSERT_OK(fdbox_open_dev());
}

FIXTURE_TEARDOWN(stage1)
{
	/* The sealed box keeps its own references. */
	files_close(&self->f);
	if (self->dev >= 0)
		close(self->dev);
}

TEST_F_TIMEOUT(stage1, seal_main, 300)
{
	uint8_t page[EDU_BUF_SIZE], old[EDU_BUF_SIZE], *want;
	__u32 scratch = 0, ioas = 0, devid = 0, devid_b = 0, hwpt = 0, pt, ids[4];
	struct files *f = &self->f;
	struct edu edu, edu_b;
	size_t i;
	int box, ret, n;
	double t0;

	ret = edu_find_nth(&edu, 0);
	ASSERT_EQ(0, ret) TH_LOG("edu A: %s", edu_find_error(ret));
	ret = edu_find_nth(&edu_b, 1);
	ASSERT_EQ(0, ret) TH_LOG("edu B: %s", edu_find_error(ret));

	/* The memfds, every page written. */
	f->dma = ASSERT_OK(edu_memfd("vfio-dma", DMA_SIZE, SEED_DMA));
	f->aux = ASSERT_OK(edu_memfd("vfio-aux", AUX_SIZE, SEED_AUX));
	f->dma_mem = map_memfd(f->dma, DMA_SIZE);
	f->aux_mem = map_memfd(f->aux, AUX_SIZE);
	ASSERT_TRUE(f->dma_mem && f->aux_mem);

	/* A scratch IOAS, A bound, then the IOAS and its mappings, then B bound. */
	f->iommufd = ASSERT_OK(iommufd_open());
	ASSERT_OK(ioas_alloc(f->iommufd, &scratch));
	ASSERT_EQ(SCRATCH_ID, scratch) TH_LOG("a fresh iommufd's first object");
	f->cdev = edu_open_cdev(&edu);
	ASSERT_LE(0, f->cdev) TH_LOG("%s: %s", edu.cdev, strerror(-f->cdev));
	ret = edu_bind(f->cdev, f->iommufd, &devid);
	ASSERT_EQ(0, ret) TH_LOG("VFIO_DEVICE_BIND_IOMMUFD: %s (EPERM: boot with iommufd.allow_unsafe_interrupts=1)",
				 strerror(-ret));
	ASSERT_EQ(DEVICE_A_ID, devid);
	ASSERT_OK(ioas_alloc(f->iommufd, &ioas));
	ASSERT_EQ(IOAS_ID, ioas);
	for (i = 0; i < ARRAY_SIZE(mappings); i++) {
		const struct mapping *m = &mappings[i];

		ret = ioas_map_file(f->iommufd, ioas, !strcmp(m->memfd, "dma") ? f->dma : f->aux,
				    m->start, m->len, m->iova,
				    IOMMU_IOAS_MAP_READABLE |
				    (m->writable ? IOMMU_IOAS_MAP_WRITEABLE : 0));
		ASSERT_EQ(0, ret) TH_LOG("IOMMU_IOAS_MAP_FILE of %s at %#llx: %s", m->memfd,
					 (unsigned long long)m->iova, strerror(-ret));
	}
	f->cdev_b = edu_open_cdev(&edu_b);
	ASSERT_LE(0, f->cdev_b) TH_LOG("%s: %s", edu_b.cdev, strerror(-f->cdev_b));
	ASSERT_OK(edu_bind(f->cdev_b, f->iommufd, &devid_b));
	ASSERT_EQ(DEVICE_B_ID, devid_b);

	/* A on a HWPT of its own on the IOAS, B on the IOAS's automatic domain. */
	ASSERT_OK(iommufd_hwpt_alloc(f->iommufd, devid, ioas, &hwpt));
	ASSERT_EQ(HWPT_ID, hwpt);
	pt = hwpt;
	ASSERT_OK(edu_attach(f->cdev, pt, &pt));
	ASSERT_EQ(HWPT_ID, pt);
	pt = ioas;
	ASSERT_OK(edu_attach(f->cdev_b, pt, &pt));
	ksft_print_msg("edu A %s (%s): devid %u, HWPT %u; edu B %s (%s): devid %u, HWPT %u (automatic); IOAS %u\n",
		       edu.bdf, edu.cdev, devid, hwpt, edu_b.bdf, edu_b.cdev, devid_b, pt, ioas);
	ASSERT_OK(iommufd_destroy(f->iommufd, scratch));

	/* The checks stage 2 makes, made here on the original. */
	ASSERT_TRUE(log_ranges(_metadata, f->iommufd, "stage 1"))
		TH_LOG("attaching the devices didn't narrow the IOVA ranges");
	n = iommufd_scan(f->iommufd, true, ids, 4);
	ASSERT_EQ(1, n) TH_LOG("IOASes found: %d", n);
	ASSERT_EQ(IOAS_ID, ids[0]);
	n = iommufd_scan(f->iommufd, false, ids, 4);
	ASSERT_EQ(2, n) TH_LOG("devices found: %d", n);
	ASSERT_EQ(DEVICE_A_ID, ids[0]);
	ASSERT_EQ(DEVICE_B_ID, ids[1]);
	ASSERT_OK(edu_set_bus_master(f->cdev, true));
	ASSERT_EQ(1, edu_bus_master(f->cdev));
	ASSERT_OK(edu_map_bar0(f->cdev, &f->bar));
	ASSERT_EQ(EDU_ID, edu_read32(&f->bar, EDU_REG_ID)) TH_LOG("BAR0 is not edu's");
	ASSERT_OK(edu_set_bus_master(f->cdev_b, true));
	ASSERT_OK(edu_map_bar0(f->cdev_b, &f->bar_b));
	ASSERT_EQ(EDU_ID, edu_read32(&f->bar_b, EDU_REG_ID)) TH_LOG("B's BAR0 is not edu's");

	/* B moves data too, through the automatic domain. */
	edu_pattern(page, sizeof(page), 10);
	memcpy(f->dma_mem + 0x70000, page, sizeof(page));
	dma_copy(_metadata, &f->bar_b, IOVA_DMA + 0x70000, IOVA_DMA + 0x71000, "B round trip");
	ASSERT_BYTES(page, f->dma_mem + 0x71000, sizeof(page), "B's round trip in \"dma\"");

	/* A round trip within "dma", at different offsets. */
	edu_pattern(page, sizeof(page), 11);
	memcpy(f->dma_mem + 0x10000, page, sizeof(page));
	dma_copy(_metadata, &f->bar, IOVA_DMA + 0x10000, IOVA_DMA + 0x21000, "round trip");
	ASSERT_BYTES(page, f->dma_mem + 0x21000, sizeof(page), "round trip in \"dma\"");
	/* From "aux" into "dma", and back the other way. */
	dma_copy(_metadata, &f->bar, IOVA_AUX + 0x2000, IOVA_DMA + 0x30000, "aux -> dma");
	ASSERT_BYTES(f->aux_mem + 0x2000, f->dma_mem + 0x30000, EDU_BUF_SIZE, "aux -> dma");
	dma_copy(_metadata, &f->bar, IOVA_DMA + 0x40000, IOVA_AUX + 0x3000, "dma -> aux");
	ASSERT_BYTES(f->dma_mem + 0x40000, f->aux_mem + 0x3000, EDU_BUF_SIZE, "dma -> aux");
	/* The read-only mapping reads "dma" from RO_START... */
	dma_copy(_metadata, &f->bar, IOVA_RO + 0x5000, IOVA_AUX + 0x4000, "read-only -> aux");
	ASSERT_BYTES(f->dma_mem + RO_START + 0x5000, f->aux_mem + 0x4000, EDU_BUF_SIZE,
		     "the read-only mapping doesn't show \"dma\" from its offset");
	/* ...and takes no write. */
	memcpy(old, f->dma_mem + RO_START + 0x6000, sizeof(old));
	ret = edu_dma_to_ram(&f->bar, 0, IOVA_RO + 0x6000, EDU_BUF_SIZE);
	ASSERT_EQ(0, ret) TH_LOG("DMA edu->RAM: %s", strerror(-ret));
	ASSERT_BYTES(old, f->dma_mem + RO_START + 0x6000, EDU_BUF_SIZE,
		     "a DMA write through the read-only mapping landed: the IOMMU doesn't enforce it");

	/* The content to carry: the patterns again, then a page edu writes. */
	edu_pattern(f->dma_mem, DMA_SIZE, SEED_DMA);
	edu_pattern(f->aux_mem, AUX_SIZE, SEED_AUX);
	dma_copy(_metadata, &f->bar, IOVA_AUX, IOVA_DMA + EDU_WRITTEN_OFF, "final");
	want = malloc(DMA_SIZE);
	ASSERT_TRUE(want != NULL);
	expected_dma(want);
	ASSERT_BYTES(want, f->dma_mem, DMA_SIZE, "\"dma\" before the seal");
	free(want);

	box = ASSERT_OK(fdbox_create(self->dev, MAIN_BOX));
	ASSERT_OK(fdbox_add(box, f->dma, "dma"));
	ASSERT_OK(fdbox_add(box, f->aux, "aux"));
	/* The blackout these two types add: ADD (freeze, describe) and SEAL. */
	t0 = fdbox_now();
	ASSERT_OK(fdbox_add(box, f->iommufd, "iommufd"));
	ksft_print_msg("ADD iommufd: %.3f ms\n", (fdbox_now() - t0) * 1e3);
	t0 = fdbox_now();
	ASSERT_OK(fdbox_add(box, f->cdev, "device"));
	ksft_print_msg("ADD device: %.3f ms\n", (fdbox_now() - t0) * 1e3);
	ASSERT_OK(fdbox_add(box, f->cdev_b, "device-b"));
	t0 = fdbox_now();
	ASSERT_OK(fdbox_seal(box));
	ksft_print_msg("SEAL (2 memfds, iommufd, 2 devices): %.3f ms\n", (fdbox_now() - t0) * 1e3);
	ASSERT_BOX(self->dev, MAIN_BOX, FDBOX_DIR_OUTGOING, FDBOX_BOX_SEALED, geteuid(), 5);
	check_entries(_metadata, box, FDBOX_ENTRY_SEALED, false);
	ASSERT_EQ(0, edu_bus_master(f->cdev)) TH_LOG("Bus Master is on in a sealed box");
	ASSERT_EQ(0, edu_bus_master(f->cdev_b)) TH_LOG("B's Bus Master is on in a sealed box");
	close(box);
}

/* Turns CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH on or off in the effective set. */
static int dac_override(bool on)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	const __u32 bits = 1u << CAP_DAC_OVERRIDE | 1u << CAP_DAC_READ_SEARCH;

	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[0].effective = on ? d[0].effective | bits : d[0].effective & ~bits;
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

FIXTURE(stage2) {
	int dev;
	struct files f;
};

FIXTURE_SETUP(stage2)
{
	files_init(&self->f);
	self->dev = -1;
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE(FDBOX_MEMFD_MODULE);
	ASSERT_MODULE(FDBOX_IOMMUFD_MODULE);
	ASSERT_MODULE(FDBOX_VFIO_MODULE);
	self->dev = ASSERT_OK(fdbox_open_dev());
}

FIXTURE_TEARDOWN(stage2)
{
	files_close(&self->f);
	if (self->dev >= 0)
		close(self->dev);
}

/* RETRIEVE of NAME, timed; the fd. */
static int retrieve(struct __test_metadata *_metadata, int box, const char *name)
{
	double t0 = fdbox_now();
	int fd = fdbox_retrieve(box, name);

	ksft_print_msg("RETRIEVE %s: %.3f ms\n", name, (fdbox_now() - t0) * 1e3);
	ASSERT_LE(0, fd) TH_LOG("RETRIEVE %s: %s", name, fdbox_errname(fd));
	ASSERT_CLOEXEC(fd);
	return fd;
}

/* A memfd of SIZE bytes: its shared mapping. */
static uint8_t *check_memfd(struct __test_metadata *_metadata, int fd, size_t size,
			    const char *name)
{
	struct stat st;
	uint8_t *p;

	ASSERT_OK(fdbox_sys(fstat(fd, &st)));
	ASSERT_EQ((off_t)size, st.st_size) TH_LOG("size of %s", name);
	p = map_memfd(fd, size);
	ASSERT_TRUE(p != NULL) TH_LOG("mmap of %s: %s", name, strerror(errno));
	return p;
}

TEST_F_TIMEOUT(stage2, retrieve_main, 300)
{
	uint8_t p1[EDU_BUF_SIZE], p2[EDU_BUF_SIZE], p3[EDU_BUF_SIZE], *want;
	struct vfio_device_info info;
	struct files *f = &self->f;
	__u32 ids[4], taken[2] = { 0, 0 };
	int dropped, raised, restored;
	struct edu edu;
	struct stat st;
	size_t i;
	int box, n, ret;

	box = fdbox_open(self->dev, MAIN_BOX, FDBOX_OPEN_INCOMING);
	ASSERT_LE(0, box) TH_LOG("no incoming box %s (did stage 1 seal it?): %s",
				 MAIN_BOX, fdbox_errname(box));
	check_entries(_metadata, box, FDBOX_ENTRY_RESTORABLE, true);

	/* The memfds, with their content. */
	want = malloc(DMA_SIZE);
	ASSERT_TRUE(want != NULL);
	f->dma = retrieve(_metadata, box, "dma");
	f->dma_mem = check_memfd(_metadata, f->dma, DMA_SIZE, "dma");
	expected_dma(want);
	ASSERT_BYTES(want, f->dma_mem, DMA_SIZE, "content of \"dma\"");
	f->aux = retrieve(_metadata, box, "aux");
	f->aux_mem = check_memfd(_metadata, f->aux, AUX_SIZE, "aux");
	edu_pattern(want, AUX_SIZE, SEED_AUX);
	ASSERT_BYTES(want, f->aux_mem, AUX_SIZE, "content of \"aux\"");

	/* The iommufd: the IOAS and nothing else, and no device yet. */
	f->iommufd = retrieve(_metadata, box, "iommufd");
	n = iommufd_scan(f->iommufd, true, ids, 4);
	ASSERT_EQ(1, n) TH_LOG("IOASes in the restored iommufd: %d", n);
	ASSERT_EQ(IOAS_ID, ids[0]) TH_LOG("the IOAS came back with another ID");
	n = iommufd_scan(f->iommufd, false, ids, 4);
	ASSERT_EQ(0, n) TH_LOG("devices in the restored iommufd before the device's RETRIEVE: %d", n);
	log_ranges(_metadata, f->iommufd, "iommufd retrieved");

	/* While A's device ID is taken, A's RETRIEVE fails with EBUSY and leaves it pending. */
	ASSERT_OK(ioas_alloc(f->iommufd, &taken[0]));
	ASSERT_OK(ioas_alloc(f->iommufd, &taken[1]));
	ASSERT_EQ(DEVICE_A_ID, taken[1]) TH_LOG("IOASes allocated: %u, %u", taken[0], taken[1]);
	ret = fdbox_retrieve(box, "device");
	ASSERT_EQ(-EBUSY, ret) TH_LOG("RETRIEVE with the device ID taken: %s", fdbox_errname(ret));
	ASSERT_ENTRY_STATE(box, "device", FDBOX_ENTRY_RESTORABLE);

	/* B gets its device ID back, not the lowest free one. */
	ASSERT_OK(iommufd_destroy(f->iommufd, taken[0]));
	f->cdev_b = retrieve(_metadata, box, "device-b");
	ASSERT_OK(iommufd_destroy(f->iommufd, taken[1]));

	/* While the caller may not open A's node, A's RETRIEVE fails with EACCES likewise. */
	ASSERT_OK(edu_find_nth(&edu, 0));
	ASSERT_OK(fdbox_sys(stat(edu.cdev, &st)));
	ASSERT_OK(fdbox_sys(chmod(edu.cdev, 0)));
	dropped = dac_override(false);
	ret = dropped ? dropped : fdbox_retrieve(box, "device");
	/* Capabilities and mode come back before anything can fail. */
	raised = dac_override(true);
	restored = fdbox_sys(chmod(edu.cdev, st.st_mode & 07777));
	ASSERT_OK(dropped);
	ASSERT_OK(raised);
	ASSERT_OK(restored);
	ASSERT_EQ(-EACCES, ret) TH_LOG("RETRIEVE without access to %s: %s", edu.cdev,
				       fdbox_errname(ret));
	ASSERT_ENTRY_STATE(box, "device", FDBOX_ENTRY_RESTORABLE);

	/* A: its device ID, and its HWPT with its ID. */
	f->cdev = retrieve(_metadata, box, "device");
	ASSERT_OK(edu_device_info(f->cdev, &info));
	ASSERT_TRUE(info.flags & VFIO_DEVICE_FLAGS_PCI) TH_LOG("flags %#x", info.flags);
	n = iommufd_scan(f->iommufd, false, ids, 4);
	ASSERT_EQ(2, n) TH_LOG("devices in the restored iommufd: %d", n);
	ksft_print_msg("restored: IOAS %u, devids %u, %u\n", IOAS_ID, ids[0], ids[1]);
	ASSERT_EQ(DEVICE_A_ID, ids[0]) TH_LOG("A's device ID changed across the kexec");
	ASSERT_EQ(DEVICE_B_ID, ids[1]) TH_LOG("B's device ID changed across the kexec");
	/* A holds its HWPT: it exists, with its ID, and can't be destroyed. */
	ASSERT_FAILS(EBUSY, iommufd_destroy(f->iommufd, HWPT_ID));
	ASSERT_TRUE(log_ranges(_metadata, f->iommufd, "devices retrieved"))
		TH_LOG("no device is attached to IOAS %u", IOAS_ID);
	/* Every entry is retrieved: closing the box releases it. */
	close(box);

	/*
	 * The restored context can be boxed again: each mapping is as
	 * userspace would have made it, cache-coherent (IOMMU_CACHE) included,
	 * which ADD checks.
	 */
	box = ASSERT_OK(fdbox_create(self->dev, AGAIN_BOX));
	ASSERT_OK(fdbox_add(box, f->iommufd, "iommufd"));
	ASSERT_OK(fdbox_remove(box, "iommufd"));
	close(box);

	/* Reset across the kexec: Bus Master again, BAR0 again. */
	ksft_print_msg("Bus Master after the kexec: %d\n", edu_bus_master(f->cdev));
	ASSERT_OK(edu_set_bus_master(f->cdev, true));
	ASSERT_EQ(1, edu_bus_master(f->cdev));
	ASSERT_OK(edu_map_bar0(f->cdev, &f->bar));
	ASSERT_EQ(EDU_ID, edu_read32(&f->bar, EDU_REG_ID)) TH_LOG("BAR0 is not edu's");

	/* B moves data through the IOAS's new automatic domain. */
	ASSERT_OK(edu_set_bus_master(f->cdev_b, true));
	ASSERT_OK(edu_map_bar0(f->cdev_b, &f->bar_b));
	edu_pattern(p1, sizeof(p1), 20);
	memcpy(f->dma_mem + 0x70000, p1, sizeof(p1));
	dma_copy(_metadata, &f->bar_b, IOVA_DMA + 0x70000, IOVA_DMA + 0x71000, "B round trip");
	ASSERT_BYTES(p1, f->dma_mem + 0x71000, EDU_BUF_SIZE, "B's round trip in \"dma\"");

	/* edu -> RAM: a new pattern lands in "dma", and nothing around it. */
	edu_pattern(p1, sizeof(p1), 21);
	memcpy(f->aux_mem + 0x2000, p1, sizeof(p1));
	dma_copy(_metadata, &f->bar, IOVA_AUX + 0x2000, IOVA_DMA + 0x40000, "aux -> dma");
	ASSERT_BYTES(p1, f->dma_mem + 0x40000, EDU_BUF_SIZE, "edu -> \"dma\"");
	expected_dma(want);
	ASSERT_BYTES(want + 0x3f000, f->dma_mem + 0x3f000, PAGE, "the page before");
	ASSERT_BYTES(want + 0x41000, f->dma_mem + 0x41000, PAGE, "the page after");
	/* The other direction: "dma" -> edu -> "aux". */
	edu_pattern(p2, sizeof(p2), 22);
	memcpy(f->dma_mem + 0x50000, p2, sizeof(p2));
	dma_copy(_metadata, &f->bar, IOVA_DMA + 0x50000, IOVA_AUX + 0x3000, "dma -> aux");
	ASSERT_BYTES(p2, f->aux_mem + 0x3000, EDU_BUF_SIZE, "edu -> \"aux\"");
	/* The read-only mapping shows "dma" from RO_START... */
	dma_copy(_metadata, &f->bar, IOVA_RO + 0x5000, IOVA_AUX + 0x4000, "read-only -> aux");
	ASSERT_BYTES(want + RO_START + 0x5000, f->aux_mem + 0x4000, EDU_BUF_SIZE,
		     "the read-only mapping doesn't show \"dma\" from its offset");
	/* ...and is read-only still. */
	edu_pattern(p3, sizeof(p3), 23);
	memcpy(f->aux_mem + 0x6000, p3, sizeof(p3));
	ASSERT_OK(edu_dma_to_dev(&f->bar, IOVA_AUX + 0x6000, 0, EDU_BUF_SIZE));
	ASSERT_OK(edu_dma_to_ram(&f->bar, 0, IOVA_RO + 0x6000, EDU_BUF_SIZE));
	ASSERT_BYTES(want + RO_START + 0x6000, f->dma_mem + RO_START + 0x6000, EDU_BUF_SIZE,
		     "a DMA write through the read-only mapping landed");

	/* The mappings: nothing on either side of each, none split... */
	for (i = 0; i < ARRAY_SIZE(mappings); i++) {
		const struct mapping *m = &mappings[i];

		ASSERT_UNMAPPED(f->iommufd, m->iova - PAGE, PAGE);
		ASSERT_UNMAPPED(f->iommufd, m->iova + m->len, PAGE);
		ASSERT_UNMAPPED(f->iommufd, m->iova, m->len / 2);
	}
	/* ...and each exactly as long as it was. Unmapping "dma" stops DMA to it. */
	ASSERT_UNMAPS(f->iommufd, IOVA_DMA, DMA_SIZE);
	ret = edu_dma_to_ram(&f->bar, 0, IOVA_DMA + 0x60000, EDU_BUF_SIZE);
	ASSERT_EQ(0, ret) TH_LOG("DMA edu->RAM: %s", strerror(-ret));
	ASSERT_BYTES(want + 0x60000, f->dma_mem + 0x60000, EDU_BUF_SIZE,
		     "a DMA to an IOVA the restored IOAS no longer maps landed");
	ASSERT_UNMAPS(f->iommufd, IOVA_RO, RO_LEN);
	ASSERT_UNMAPS(f->iommufd, IOVA_AUX, AUX_SIZE);
	/* No other mapping: unmapping everything unmaps nothing more. */
	{
		__u64 rest = 1;

		ASSERT_OK(ioas_unmap(f->iommufd, IOAS_ID, 0, UINT64_MAX, &rest));
		ASSERT_EQ(0, rest) TH_LOG("the restored IOAS had other mappings");
	}
	free(want);
}

/* Nothing of this test is left behind. */
TEST_F(stage2, nothing_left)
{
	struct fdbox_box_summary b;
	int box;

	if (!fdbox_find_box(self->dev, MAIN_BOX, FDBOX_DIR_INCOMING, &b)) {
		box = fdbox_open(self->dev, MAIN_BOX, FDBOX_OPEN_INCOMING);
		if (box >= 0) {
			fdbox_discard(box, NULL);
			close(box);
		}
		ASSERT_TRUE(false) TH_LOG("box %s is left", MAIN_BOX);
	}
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
