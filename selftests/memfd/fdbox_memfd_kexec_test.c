// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage selftest of fdbox_memfd across a real KHO kexec.
 *
 * Stage 1 builds memfds from recipes (empty, one page, sparse, THP-backed,
 * every seal combination, a non-zero position, 256 MiB of random data, one
 * written through mmap after ADD and after SEAL, 128 MiB made under memory
 * pressure so that its folios sit in KHO scratch, and 64 MiB to discard),
 * boxes and seals them. Stage 2 retrieves each by name and compares it with
 * a memfd built from the same recipe in the new kernel: content hash, size,
 * allocated size, seals, position, name and SEEK_DATA/SEEK_HOLE layout. It
 * also checks that large folios came back large and that DISCARD gives the
 * memory back at once.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "fdbox_common.h"
#include "memfd_util.h"

#define MAIN_BOX "memfd-main"
#define MMAP_BOX "memfd-mmap"
#define SCRATCH_BOX "memfd-scratch"
#define DISCARD_BOX "memfd-discard"
#define CGROUP_BOX "memfd-cgroup"
#define SETTLE_BOX "memfd-settle"
#define CGROUP_SIZE (32 * MiB)
#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP_DIR CGROUP_ROOT "/fdbox-memfd"

#define THP_SIZE (8 * MiB)
#define BIG_SIZE (256 * MiB)
#define SCRATCH_SIZE (128 * MiB)
#define DISCARD_SIZE (64 * MiB)
#define DISCARD_FREED_MIN_KB (48 * 1024)
#define N_SEALS 64

/* A written range of a recipe. */
struct extent {
	off_t off;
	size_t len;
};

/* How to build a memfd: the same in both kernels. */
struct recipe {
	const char *name;
	off_t size;
	struct extent ext[3];
	off_t pos;
	unsigned int thp;	/* the extents written as THP, a bit each */
};

#define THP_ALL 0x7

static const struct recipe recipes[] = {
	{ "empty", 0 },
	{ "one-page", PAGE, { { 0, PAGE } } },
	/* Holes at the start, in the middle and at the end. */
	{ "sparse", 8 * MiB, { { 256 * KiB, 256 * KiB }, { 4 * MiB, 64 * KiB } } },
	{ "thp", THP_SIZE, { { 0, THP_SIZE } }, .thp = THP_ALL },
	/* Large folios around holes. */
	{ "thp-sparse", 16 * MiB, { { 2 * MiB, 2 * MiB }, { 8 * MiB, 4 * MiB } }, .thp = THP_ALL },
	/*
	 * Enough small folios that ADD shares the walk out among the CPUs: half
	 * of it, 40.5 MiB, falls inside a large folio, so the second share is
	 * cut at 40 MiB instead, where that folio begins, after a hole.
	 */
	{ "shared", 81 * MiB, { { 0, 38 * MiB }, { 40 * MiB, 4 * MiB }, { 44 * MiB, 37 * MiB } },
	  .thp = 1 << 1 },
	{ "position", 64 * KiB, { { 0, 64 * KiB } }, .pos = 12345 },
	{ "big", BIG_SIZE, { { 0, BIG_SIZE } } },
	/* Not a multiple of the page size, with a partial last page. */
	{ "odd-size", 3 * PAGE + 100, { { PAGE, 2 * PAGE + 100 } } },
};

/* Bytes a recipe writes as THP. */
static size_t thp_of(const struct recipe *r)
{
	size_t n = 0;
	int i;

	for (i = 0; i < 3; i++)
		if (r->thp & (1 << i))
			n += r->ext[i].len;
	return n;
}

static uint64_t seed_of(const char *name, int i)
{
	uint64_t h = 1469598103934665603ULL + i;

	while (*name)
		h = (h ^ (unsigned char)*name++) * 1099511628211ULL;
	return h;
}

static int set_thp(const char *mode)
{
	int fd = open(SHMEM_THP, O_WRONLY), ok;

	if (fd < 0)
		return -errno;
	ok = write(fd, mode, strlen(mode)) == (ssize_t)strlen(mode);
	close(fd);
	return ok ? 0 : -EIO;
}

/* Writes the PRNG stream of SEED to LEN bytes at P. */
static void gen(void *p, size_t len, uint64_t seed)
{
	uint64_t s = seed | 1, *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		w[i] = memfd_rand(&s);
	for (i = len / 8 * 8; i < len; i++)
		((uint8_t *)p)[i] = (uint8_t)memfd_rand(&s);
}

/*
 * The THP extents of a memfd: written through a 2 MiB-aligned mapping with
 * shmem THP "always" (the test kernel has no madvise(2), so no MADV_HUGEPAGE).
 */
static int fill_thp(int fd, const struct recipe *r)
{
	size_t span = r->size + 2 * MiB;
	uint8_t *area, *p;
	int i, err = 0;

	if (set_thp("always"))
		return -EIO;
	area = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		return -errno;
	p = (uint8_t *)(((uintptr_t)area + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1));
	if (mmap(p, r->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	for (i = 0; i < 3 && r->ext[i].len; i++)
		if (r->thp & (1 << i))
			gen(p + r->ext[i].off, r->ext[i].len, seed_of(r->name, i));
out:
	munmap(area, span);
	set_thp("never");
	return err;
}

/* The memfd of recipe R; SEALS are added last. An fd, or -errno. */
static int build(const struct recipe *r, int seals)
{
	int fd, i, err = 0;

	fd = memfd_create(r->name, MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, r->size)) {
		err = -errno;
		goto fail;
	}
	if (r->thp)
		err = fill_thp(fd, r);
	for (i = 0; !err && i < 3 && r->ext[i].len; i++)
		if (!(r->thp & (1 << i)))
			err = memfd_fill(fd, r->ext[i].off, r->ext[i].len,
					 seed_of(r->name, i));
	if (err)
		goto fail;
	if (lseek(fd, r->pos, SEEK_SET) < 0 ||
	    (seals && fcntl(fd, F_ADD_SEALS, seals))) {
		err = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return err;
}

static void seal_name(char *buf, size_t len, int seals)
{
	snprintf(buf, len, "seals-%02x", seals);
}

/* Recipe "seals-NN": one page, then the seals NN. */
static int build_sealed(int seals)
{
	static char name[N_SEALS][16];
	struct recipe r = { .size = PAGE, .ext = { { 0, PAGE } } };

	seal_name(name[seals], sizeof(name[seals]), seals);
	r.name = name[seals];
	return build(&r, seals);
}

/* A memfd of SIZE bytes of data, named NAME. */
static int build_full(const char *name, off_t size)
{
	struct recipe r = { .name = name, .size = size, .ext = { { 0, size } } };

	return build(&r, 0);
}

/*
 * The "mmap" memfd. Stage 1 (BOX >= 0) writes through a shared mapping after
 * ADD, into existing folios and into a hole, seals, checks that filling
 * another hole now fails visibly, then writes an existing folio again. The
 * reference (BOX < 0) writes the same bytes without FDBox.
 */
#define MMAP_SIZE (4 * MiB)
static const struct extent mmap_writes[] = {
	{ 0, 1 * MiB },			/* before ADD */
	{ 256 * KiB, 4 * KiB },		/* after ADD, existing folio */
	{ 2 * MiB, 8 * KiB },		/* after ADD, into a hole */
	{ 512 * KiB, 4 * KiB },		/* after SEAL, existing folio */
};

static int build_mmap(struct __test_metadata *_metadata, int box)
{
	uint8_t *p;
	int fd, i, status;
	long long late;
	pid_t child;
	char c = 1;

	fd = ASSERT_OK(fdbox_sys(memfd_create("mmap", 0)));
	ASSERT_OK(fdbox_sys(ftruncate(fd, MMAP_SIZE)));
	p = mmap(NULL, MMAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < 4; i++) {
		if (box >= 0 && i == 1)
			ASSERT_OK(fdbox_add(box, fd, "mmap"));
		if (box >= 0 && i == 3) {
			late = memfd_stat("late");
			ASSERT_OK(fdbox_seal(box));
			/* The two pages that filled a hole since ADD. */
			EXPECT_LE(late + 2, memfd_stat("late"));
			/* Filling a hole now fails visibly, by write()... */
			ASSERT_FAILS(EPERM, fdbox_sys(pwrite(fd, &c, 1, 3 * MiB)));
			/* ...and by a fault. */
			child = fork();
			ASSERT_LE(0, child);
			if (!child) {
				p[3 * MiB] = 1;
				_exit(0);
			}
			ASSERT_EQ(child, waitpid(child, &status, 0));
			ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS)
				TH_LOG("status %#x", status);
		}
		gen(p + mmap_writes[i].off, mmap_writes[i].len, seed_of("mmap", i));
	}
	munmap(p, MMAP_SIZE);
	return fd;
}

/* Retrieves ENTRY of BOX and compares it with REF (closed after). */
static void check_entry(struct __test_metadata *_metadata, int box,
			const char *entry, int ref)
{
	struct memfd_props want, got;
	int fd;

	ASSERT_LE(0, ref);
	fd = ASSERT_OK(fdbox_retrieve(box, entry));
	ASSERT_OK(memfd_props(ref, &want));
	ASSERT_OK(memfd_props(fd, &got));
	close(ref);
	close(fd);
	ASSERT_TRUE(memfd_props_equal(&want, &got)) TH_LOG("entry %s", entry);
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

/* Every recipe and seal combination, in one box. */
TEST_F_TIMEOUT(stage1, seal_main, 600)
{
	long long before;
	char name[16];
	size_t i;
	int box, fd, s;

	box = ASSERT_OK(fdbox_create(self->dev, MAIN_BOX));
	for (i = 0; i < ARRAY_SIZE(recipes); i++) {
		const char *name = recipes[i].name;

		fd = build(&recipes[i], 0);
		ASSERT_LE(0, fd) TH_LOG("recipe %s: %s", name, fdbox_errname(fd));
		before = memfd_stat("held_large");
		ASSERT_OK(fdbox_add(box, fd, recipes[i].name));
		/* THP-backed: 2 MiB folios, preserved as such. */
		ASSERT_EQ(before + thp_of(&recipes[i]) / (2 * MiB), memfd_stat("held_large"));
		close(fd);
	}
	for (s = 0; s < N_SEALS; s++) {
		fd = ASSERT_OK(build_sealed(s));
		seal_name(name, sizeof(name), s);
		ASSERT_OK(fdbox_add(box, fd, name));
		close(fd);
	}
	ASSERT_OK(fdbox_seal(box));
	close(box);
}

TEST_F(stage1, seal_written_through_mmap)
{
	int box, fd;

	box = ASSERT_OK(fdbox_create(self->dev, MMAP_BOX));
	fd = build_mmap(_metadata, box);
	close(fd);
	close(box);
}

/*
 * 128 MiB written while memory is short, so that shmem folios land in KHO
 * scratch (CMA): ADD must migrate them out, or the next kernel would
 * overwrite them.
 */
TEST_F_TIMEOUT(stage1, seal_from_scratch, 300)
{
	long long free_kb = fdbox_meminfo_kb("MemFree");
	long long cma_kb = fdbox_meminfo_kb("CmaFree");
	long long migrated;
	size_t ballast = 0;
	void *p = NULL;
	int box, fd;

	ASSERT_LT(0, cma_kb) TH_LOG("no KHO scratch (CmaFree) in this kernel");
	/*
	 * Leave little more than the memfd's size free, so that part of it
	 * must come from CMA; the slack is for page tables and, in the debug
	 * kernel, KASAN's shadow of them.
	 */
	if (free_kb * KiB > SCRATCH_SIZE + 384 * MiB)
		ballast = free_kb * KiB - SCRATCH_SIZE - 384 * MiB;
	if (ballast) {
		p = mmap(NULL, ballast, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		ASSERT_NE(MAP_FAILED, p);
	}
	fd = build_full("scratch", SCRATCH_SIZE);
	TH_LOG("CmaFree %lld -> %ld kB with %zu MiB of ballast", cma_kb,
	       fdbox_meminfo_kb("CmaFree"), ballast / MiB);
	if (p)
		munmap(p, ballast);
	ASSERT_LE(0, fd);
	box = ASSERT_OK(fdbox_create(self->dev, SCRATCH_BOX));
	migrated = memfd_stat("migrated");
	ASSERT_OK(fdbox_add(box, fd, "scratch"));
	migrated = memfd_stat("migrated") - migrated;
	TH_LOG("%lld folios migrated out of KHO scratch", migrated);
	ASSERT_LT(0, migrated);
	ASSERT_OK(fdbox_seal(box));
	close(fd);
	close(box);
}

/*
 * FDBOX_SETTLE_FD, with memory short as in seal_from_scratch: a memfd settled
 * for the future gets no folio in KHO scratch while an unsettled twin, filled
 * in the same conditions, does; settling the twin now moves every such folio
 * out with its data, and ADD then has nothing left to migrate.
 */
#define SETTLE_SIZE (32 * MiB)
TEST_F_TIMEOUT(stage1, settle_keeps_memory_out_of_scratch, 300)
{
	long long free_kb = fdbox_meminfo_kb("MemFree");
	struct fdbox_settle_fd settled, twin, after;
	uint64_t want, got;
	size_t ballast = 0;
	long long migrated;
	void *p = NULL;
	int fd, other, box;

	ASSERT_LT(0, fdbox_meminfo_kb("CmaFree")) TH_LOG("no KHO scratch (CmaFree) in this kernel");
	fd = ASSERT_OK(fdbox_sys(memfd_create("settled", 0)));
	other = ASSERT_OK(fdbox_sys(memfd_create("unsettled", 0)));
	ASSERT_OK(fdbox_settle(self->dev, fd, FDBOX_SETTLE_FUTURE, &settled));
	ASSERT_EQ(0, settled.unsettled);
	ASSERT_EQ(0, settled.migrated);
	if (free_kb * KiB > 2 * SETTLE_SIZE + 384 * MiB)
		ballast = free_kb * KiB - 2 * SETTLE_SIZE - 384 * MiB;
	if (ballast) {
		p = mmap(NULL, ballast, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		ASSERT_NE(MAP_FAILED, p);
	}
	ASSERT_OK(memfd_fill(fd, 0, SETTLE_SIZE, 7));
	ASSERT_OK(memfd_fill(other, 0, SETTLE_SIZE, 7));
	if (p)
		munmap(p, ballast);
	ASSERT_OK(fdbox_settle(self->dev, fd, 0, &settled));
	ASSERT_OK(fdbox_settle(self->dev, other, 0, &twin));
	TH_LOG("folios in scratch: %llu settled, %llu unsettled", settled.unsettled, twin.unsettled);
	ASSERT_LT(0, twin.unsettled) TH_LOG("the twin never reached KHO scratch");
	ASSERT_EQ(0, settled.unsettled);
	ASSERT_EQ(0, twin.migrated);

	ASSERT_OK(memfd_hash(other, &want));
	ASSERT_OK(fdbox_settle(self->dev, other, FDBOX_SETTLE_NOW, &twin));
	ASSERT_LT(0, twin.migrated);
	ASSERT_LE(twin.migrated, twin.unsettled);
	ASSERT_OK(fdbox_settle(self->dev, other, 0, &after));
	ASSERT_EQ(0, after.unsettled);
	ASSERT_OK(memfd_hash(other, &got));
	ASSERT_EQ(want, got);

	box = ASSERT_OK(fdbox_create(self->dev, SETTLE_BOX));
	migrated = memfd_stat("migrated");
	ASSERT_OK(fdbox_add(box, other, "settled"));
	ASSERT_EQ(migrated, memfd_stat("migrated"));
	/* A boxed memfd is the box's to keep: settling it is refused. */
	ASSERT_FAILS(EBUSY, fdbox_settle(self->dev, other, FDBOX_SETTLE_NOW, NULL));
	close(box);
	ASSERT_OK(fdbox_settle(self->dev, other, FDBOX_SETTLE_NOW, NULL));
	close(fd);
	close(other);
}

/* Every way FDBOX_SETTLE_FD refuses, each changing nothing. */
TEST_F(stage1, settle_refusals)
{
	struct fdbox_settle_fd arg = { .size = sizeof(arg) };
	int fd, ro, pipefd[2], box, huge;
	char path[64];

	fd = ASSERT_OK(fdbox_sys(memfd_create("refusals", 0)));
	ASSERT_FAILS(EINVAL, fdbox_settle(self->dev, fd, 1U << 2, NULL));
	arg.fd = fd;
	arg.__reserved = 1;
	ASSERT_FAILS(EINVAL, fdbox_sys(ioctl(self->dev, FDBOX_SETTLE_FD, &arg)));
	ASSERT_FAILS(EBADF, fdbox_settle(self->dev, -1, FDBOX_SETTLE_NOW, NULL));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = ASSERT_OK(fdbox_sys(open(path, O_RDONLY)));
	ASSERT_FAILS(EBADF, fdbox_settle(self->dev, ro, FDBOX_SETTLE_NOW, NULL));
	ASSERT_OK(fdbox_sys(pipe(pipefd)));
	ASSERT_FAILS(EOPNOTSUPP, fdbox_settle(self->dev, pipefd[1], FDBOX_SETTLE_NOW, NULL));
	box = ASSERT_OK(fdbox_create(self->dev, "memfd-settle-refusals"));
	ASSERT_FAILS(EOPNOTSUPP, fdbox_settle(self->dev, box, FDBOX_SETTLE_NOW, NULL));
	huge = memfd_create("huge", MFD_HUGETLB);
	if (huge >= 0) {
		ASSERT_FAILS(EOPNOTSUPP, fdbox_settle(self->dev, huge, FDBOX_SETTLE_NOW, NULL));
		close(huge);
	}
	ASSERT_OK(fdbox_settle(self->dev, fd, FDBOX_SETTLE_NOW | FDBOX_SETTLE_FUTURE, NULL));
	close(box);
	close(pipefd[0]);
	close(pipefd[1]);
	close(ro);
	close(fd);
}

/* 64 MiB for stage 2 to discard, unretrieved. */
TEST_F_TIMEOUT(stage1, seal_for_discard, 120)
{
	int box, fd;

	box = ASSERT_OK(fdbox_create(self->dev, DISCARD_BOX));
	fd = ASSERT_OK(build_full("ballast", DISCARD_SIZE));
	ASSERT_OK(fdbox_add(box, fd, "ballast"));
	ASSERT_OK(fdbox_seal(box));
	close(fd);
	close(box);
}

/* 32 MiB for stage 2 to retrieve from inside a memory cgroup. */
TEST_F(stage1, seal_for_cgroup)
{
	int box, fd;

	box = ASSERT_OK(fdbox_create(self->dev, CGROUP_BOX));
	fd = ASSERT_OK(build_full("charged", CGROUP_SIZE));
	ASSERT_OK(fdbox_add(box, fd, "charged"));
	ASSERT_OK(fdbox_seal(box));
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

TEST_F_TIMEOUT(stage2, retrieve_main, 600)
{
	long long large;
	char name[16];
	size_t i;
	int box, s;

	box = ASSERT_OK(fdbox_open(self->dev, MAIN_BOX, FDBOX_OPEN_INCOMING));
	for (i = 0; i < ARRAY_SIZE(recipes); i++) {
		large = memfd_stat("restored_large");
		check_entry(_metadata, box, recipes[i].name, build(&recipes[i], 0));
		/* The large folios came back large. */
		ASSERT_EQ(large + thp_of(&recipes[i]) / (2 * MiB), memfd_stat("restored_large"));
	}
	for (s = 0; s < N_SEALS; s++) {
		seal_name(name, sizeof(name), s);
		check_entry(_metadata, box, name, build_sealed(s));
	}
	close(box);
}

TEST_F(stage2, retrieve_written_through_mmap)
{
	int box = ASSERT_OK(fdbox_open(self->dev, MMAP_BOX, FDBOX_OPEN_INCOMING));

	check_entry(_metadata, box, "mmap", build_mmap(_metadata, -1));
	close(box);
}

TEST_F_TIMEOUT(stage2, retrieve_from_scratch, 300)
{
	int box = ASSERT_OK(fdbox_open(self->dev, SCRATCH_BOX, FDBOX_OPEN_INCOMING));

	check_entry(_metadata, box, "scratch", build_full("scratch", SCRATCH_SIZE));
	close(box);
}

/*
 * The restored folios are charged to the memory cgroup of the process that
 * retrieves them: a child in a cgroup of its own retrieves 32 MiB and sees
 * its memory.current grow by as much.
 */
TEST_F(stage2, restore_charged_to_retriever)
{
	long long before = -1, after = -1;
	int status, pipefd[2];
	char pid[32], buf[64];
	pid_t child;
	FILE *f;

	mkdir(CGROUP_ROOT, 0755);
	if (access(CGROUP_ROOT "/cgroup.procs", F_OK))
		ASSERT_OK(fdbox_sys(mount("cgroup2", CGROUP_ROOT, "cgroup2", 0, NULL)));
	ASSERT_OK(memfd_write_text(CGROUP_ROOT "/cgroup.subtree_control", "+memory"));
	if (mkdir(CGROUP_DIR, 0755))
		ASSERT_EQ(EEXIST, errno);
	ASSERT_OK(fdbox_sys(pipe(pipefd)));
	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		int box, fd;

		snprintf(pid, sizeof(pid), "%d", getpid());
		if (memfd_write_text(CGROUP_DIR "/cgroup.procs", pid))
			_exit(1);
		f = fopen(CGROUP_DIR "/memory.current", "r");
		if (!f || fscanf(f, "%lld", &before) != 1)
			_exit(2);
		fclose(f);
		box = fdbox_open(self->dev, CGROUP_BOX, FDBOX_OPEN_INCOMING);
		fd = box < 0 ? box : fdbox_retrieve(box, "charged");
		if (fd < 0)
			_exit(3);
		f = fopen(CGROUP_DIR "/memory.current", "r");
		if (!f || fscanf(f, "%lld", &after) != 1)
			_exit(4);
		snprintf(buf, sizeof(buf), "%lld %lld", before, after);
		_exit(write(pipefd[1], buf, strlen(buf)) > 0 ? 0 : 5);
	}
	close(pipefd[1]);
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("child status %#x", status);
	memset(buf, 0, sizeof(buf));
	ASSERT_LT(0, read(pipefd[0], buf, sizeof(buf) - 1));
	close(pipefd[0]);
	ASSERT_EQ(2, sscanf(buf, "%lld %lld", &before, &after));
	TH_LOG("memory.current %lld -> %lld", before, after);
	ASSERT_LE(before + (long long)CGROUP_SIZE, after);
	rmdir(CGROUP_DIR);
}

/* DISCARD gives the 64 MiB back to the allocator at once. */
TEST_F_TIMEOUT(stage2, discard_frees_memory, 120)
{
	long long before_kb, freed;
	int box;

	box = ASSERT_OK(fdbox_open(self->dev, DISCARD_BOX, FDBOX_OPEN_INCOMING));
	before_kb = fdbox_meminfo_kb("MemFree");
	freed = memfd_stat("freed");
	ASSERT_OK(fdbox_discard(box, NULL));
	EXPECT_EQ(freed + DISCARD_SIZE / PAGE, memfd_stat("freed"));
	EXPECT_LE(before_kb + DISCARD_FREED_MIN_KB, fdbox_meminfo_kb("MemFree"));
	ASSERT_FAILS(EBUSY, fdbox_retrieve(box, "ballast"));
	close(box);
}

/* Nothing of this test is left behind. */
TEST_F(stage2, nothing_left)
{
	const char *mine[] = { MAIN_BOX, MMAP_BOX, SCRATCH_BOX, DISCARD_BOX, CGROUP_BOX };
	struct fdbox_box_summary b;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(mine); i++) {
		const char *name = mine[i];

		EXPECT_EQ(-ENOENT, fdbox_find_box(self->dev, name, FDBOX_DIR_INCOMING, &b))
			TH_LOG("box %s is left", name);
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
