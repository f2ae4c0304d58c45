// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage selftest of hugetlb memfds (MFD_HUGETLB, 2 MiB pages) across a
 * real KHO kexec.
 *
 * Stage 1 reserves a pool at runtime, builds memfds from recipes (empty,
 * full, sparse, a non-zero position, 128 MiB, every seal combination, one
 * written through mmap after ADD and after SEAL, one with copy-on-write
 * MAP_PRIVATE copies, and some for the pool, cgroup and DISCARD cases),
 * boxes and seals them. Stage 2 reserves a pool of its own at runtime and,
 * entry by entry, retrieves it and builds the same recipe fresh: the two
 * files must read the same, and the pool's counters must change the same
 * way, as if the retriever had faulted those pages in itself. Closing either
 * gives the pages back to the pool; DISCARD gives them to the buddy
 * allocator without touching the pool.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "fdbox_common.h"
#include "hugetlb_util.h"

#define HPAGE (2 * MiB)
#define HPAGE_KB 2048LL

#define MAIN_BOX "memfd-huge-main"
#define MMAP_BOX "memfd-huge-mmap"
#define PRIVATE_BOX "memfd-huge-private"
#define POOL_BOX "memfd-huge-pool"
#define CGROUP_BOX "memfd-huge-cgroup"
#define DISCARD_BOX "memfd-huge-discard"

/* Stage 1 needs about 180 pages; stage 2 the largest entry, then its twin. */
#define STAGE1_POOL 200
#define STAGE2_POOL 80
#define POOL_SIZE (32 * MiB)
#define CGROUP_SIZE (16 * MiB)
#define DISCARD_SIZE (64 * MiB)
#define N_SEALS 32

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP_DIR CGROUP_ROOT "/fdbox-hugetlb"

struct extent {
	off_t off;
	size_t len;
};

/* How to build a hugetlb memfd: the same in both kernels. */
struct recipe {
	const char *name;
	off_t size;
	struct extent ext[3];
	off_t pos;
};

static const struct recipe recipes[] = {
	{ "empty", 0 },
	{ "full", 16 * MiB, { { 0, 16 * MiB } } },
	/* Holes at the start, in the middle and at the end. */
	{ "sparse", 64 * MiB, { { 4 * MiB, 2 * MiB }, { 20 * MiB, 4 * MiB }, { 40 * MiB, 2 * MiB } } },
	{ "position", 4 * MiB, { { 0, 4 * MiB } }, .pos = 12345 },
	{ "big", 128 * MiB, { { 0, 128 * MiB } } },
};

static const struct recipe pool_recipe = { "pool", POOL_SIZE, { { 0, POOL_SIZE } } };
static const struct recipe cgroup_recipe = { "charged", CGROUP_SIZE, { { 0, CGROUP_SIZE } } };
static const struct recipe discard_recipe = { "ballast", DISCARD_SIZE, { { 0, DISCARD_SIZE } } };

static uint64_t seed_of(const char *name, int i)
{
	uint64_t h = 1469598103934665603ULL + i;

	while (*name)
		h = (h ^ (unsigned char)*name++) * 1099511628211ULL;
	return h;
}

/* Writes the PRNG stream of SEED through a shared mapping of LEN bytes at OFF. */
static int write_mapped(int fd, off_t off, size_t len, uint64_t seed)
{
	uint64_t s = seed | 1, *w;
	size_t i;

	w = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
	if (w == MAP_FAILED)
		return -errno;
	for (i = 0; i < len / 8; i++)
		w[i] = memfd_rand(&s);
	munmap(w, len);
	return 0;
}

static int new_memfd(const char *name, off_t size)
{
	int fd = memfd_create(name, MFD_HUGETLB | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, size)) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* A memfd built from R, each extent written through a mapping of its own. */
static int build(const struct recipe *r, int seals)
{
	int fd = new_memfd(r->name, r->size), i, err;

	if (fd < 0)
		return fd;
	for (i = 0; i < 3 && r->ext[i].len; i++) {
		err = write_mapped(fd, r->ext[i].off, r->ext[i].len, seed_of(r->name, i));
		if (err)
			goto fail;
	}
	if (lseek(fd, r->pos, SEEK_SET) != r->pos ||
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

/* One page, with the seals of S's five bits. */
static int build_sealed(int s)
{
	static const int bits[] = { F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW,
				    F_SEAL_WRITE, F_SEAL_FUTURE_WRITE };
	struct recipe r = { .size = HPAGE, .ext = { { 0, HPAGE } } };
	char name[16];
	int seals = 0, i;

	for (i = 0; i < 5; i++)
		if (s & (1 << i))
			seals |= bits[i];
	seal_name(name, sizeof(name), s);
	r.name = name;
	return build(&r, seals);
}

/* Page offsets of the mmap recipe: written at ADD, written after, a hole. */
#define MMAP_SIZE (4 * HPAGE)
#define MMAP_SEED_ADD 1
#define MMAP_SEED_LATE 2
#define MMAP_SEED_SEALED 3

/*
 * The mmap recipe's final content, built directly: pages 0 and 1 of the
 * stream written after ADD (page 1 filled a hole), page 2 of the one written
 * after SEAL, page 3 a hole.
 */
static int build_mmap_result(void)
{
	int fd = new_memfd("mmap", MMAP_SIZE), err;

	if (fd < 0)
		return fd;
	err = write_mapped(fd, 0, 2 * HPAGE, MMAP_SEED_LATE);
	if (!err)
		err = write_mapped(fd, 2 * HPAGE, HPAGE, MMAP_SEED_SEALED);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* Whether touching P kills the toucher with SIGBUS. */
static bool touch_sigbus(volatile uint8_t *p)
{
	int status;
	pid_t child = fork();

	if (!child) {
		*p = 1;
		_exit(0);
	}
	if (child < 0 || waitpid(child, &status, 0) != child)
		return false;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS;
}

FIXTURE(stage1) {
	int dev;
};

FIXTURE_SETUP(stage1)
{
	long long want = STAGE1_POOL;

	self->dev = -1;
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE(FDBOX_MEMFD_MODULE);
	self->dev = ASSERT_OK(fdbox_open_dev());
	/* At runtime, as a host would grow its pool: boot-time reservations can't count on room. */
	if (hugetlb_sysfs(HPAGE_KB, "nr_hugepages") < want)
		ASSERT_EQ(want, hugetlb_set_pool(HPAGE_KB, want));
}

FIXTURE_TEARDOWN(stage1)
{
	if (self->dev >= 0)
		close(self->dev);
}

/* Every recipe and seal combination, in one box; the boxed files are frozen. */
TEST_F_TIMEOUT(stage1, seal_main, 300)
{
	char name[16];
	size_t i;
	int box, fd, s;

	box = ASSERT_OK(fdbox_create(self->dev, MAIN_BOX));
	for (i = 0; i < ARRAY_SIZE(recipes); i++) {
		fd = build(&recipes[i], 0);
		ASSERT_LE(0, fd) TH_LOG("recipe %s: %s", recipes[i].name, fdbox_errname(fd));
		ASSERT_OK(fdbox_add(box, fd, recipes[i].name));
		if (recipes[i].size) {
			ASSERT_FAILS(EPERM, fdbox_sys(ftruncate(fd, 2 * recipes[i].size)));
			ASSERT_FAILS(EPERM, fdbox_sys(fallocate(fd, 0, 0, HPAGE)));
			ASSERT_FAILS(EPERM, fdbox_sys(fallocate(fd, FALLOC_FL_PUNCH_HOLE |
								FALLOC_FL_KEEP_SIZE, 0, HPAGE)));
		}
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

/*
 * Written through a mapping after ADD, a hole filled too; after SEAL, a page
 * rewritten, and a fault into a hole gets SIGBUS instead of a page that
 * would be lost at the kexec.
 */
TEST_F(stage1, seal_written_through_mmap)
{
	struct recipe r = { "mmap", MMAP_SIZE, { { 0, HPAGE }, { 2 * HPAGE, HPAGE } } };
	uint64_t s = MMAP_SEED_LATE | 1, *w;
	uint8_t *map;
	int box, fd;
	size_t i;

	fd = ASSERT_OK(build(&r, 0));
	map = mmap(NULL, MMAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	box = ASSERT_OK(fdbox_create(self->dev, MMAP_BOX));
	ASSERT_OK(fdbox_add(box, fd, "mmap"));
	w = (uint64_t *)map;
	for (i = 0; i < 2 * HPAGE / 8; i++)
		w[i] = memfd_rand(&s);
	ASSERT_OK(fdbox_seal(box));
	s = MMAP_SEED_SEALED | 1;
	w = (uint64_t *)(map + 2 * HPAGE);
	for (i = 0; i < HPAGE / 8; i++)
		w[i] = memfd_rand(&s);
	ASSERT_TRUE(touch_sigbus(map + 3 * HPAGE));
	ASSERT_FAILS(EPERM, fdbox_sys(fallocate(fd, FALLOC_FL_KEEP_SIZE, 3 * HPAGE, HPAGE)));
	ASSERT_FAILS(EPERM, fdbox_sys(ftruncate(fd, HPAGE)));
	/* Mapped at the kexec. */
	close(box);
}

/*
 * Copy-on-write copies made through a MAP_PRIVATE mapping belong to that
 * mapping, not to the file: only the file's four pages are carried.
 */
TEST_F(stage1, seal_with_private_copies)
{
	struct recipe r = { "private", 4 * HPAGE, { { 0, 4 * HPAGE } } };
	long long preserved = memfd_stat("preserved");
	int box, fd;
	uint8_t *priv;

	fd = ASSERT_OK(build(&r, 0));
	priv = mmap(NULL, 4 * HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ASSERT_NE(MAP_FAILED, priv);
	memset(priv + HPAGE, 0x5a, 64);
	memset(priv + 3 * HPAGE, 0xa5, 64);
	box = ASSERT_OK(fdbox_create(self->dev, PRIVATE_BOX));
	ASSERT_OK(fdbox_add(box, fd, "private"));
	ASSERT_OK(fdbox_seal(box));
	/* A private fault into the file still works: it makes no page of the file. */
	priv[2 * HPAGE] = 1;
	ASSERT_EQ(preserved + 4, memfd_stat("preserved"));
	close(fd);
	close(box);
}

static void seal_one(struct __test_metadata *_metadata, int dev, const char *box_name,
		     const struct recipe *r)
{
	int box, fd;

	box = ASSERT_OK(fdbox_create(dev, box_name));
	fd = ASSERT_OK(build(r, 0));
	ASSERT_OK(fdbox_add(box, fd, r->name));
	ASSERT_OK(fdbox_seal(box));
	close(fd);
	close(box);
}

TEST_F(stage1, seal_for_pool_cgroup_and_discard)
{
	seal_one(_metadata, self->dev, POOL_BOX, &pool_recipe);
	seal_one(_metadata, self->dev, CGROUP_BOX, &cgroup_recipe);
	seal_one(_metadata, self->dev, DISCARD_BOX, &discard_recipe);
}

/* A hugetlbfs file that memfd_create() didn't make is refused, and nothing changes. */
TEST_F(stage1, non_memfd_hugetlbfs_file_refused)
{
	const char *dir = "/tmp/fdbox-hugetlbfs";
	char *before, path[64];
	int box, fd;

	mkdir(dir, 0755);
	ASSERT_OK(fdbox_sys(mount("none", dir, "hugetlbfs", 0, "pagesize=2M")));
	snprintf(path, sizeof(path), "%s/file", dir);
	fd = ASSERT_OK(fdbox_sys(open(path, O_RDWR | O_CREAT, 0600)));
	ASSERT_OK(fdbox_sys(ftruncate(fd, HPAGE)));
	box = ASSERT_OK(fdbox_create(self->dev, "memfd-huge-refused"));
	before = SNAPSHOT(self->dev);
	ASSERT_FAILS(EOPNOTSUPP, fdbox_add(box, fd, "file"));
	ASSERT_UNCHANGED(self->dev, before);
	free(before);
	/* Not frozen. */
	ASSERT_OK(fdbox_sys(ftruncate(fd, 2 * HPAGE)));
	close(fd);
	close(box);
	unlink(path);
	ASSERT_OK(fdbox_sys(umount(dir)));
	rmdir(dir);
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
	ASSERT_EQ(STAGE2_POOL, hugetlb_set_pool(HPAGE_KB, STAGE2_POOL));
}

FIXTURE_TEARDOWN(stage2)
{
	if (self->dev >= 0)
		close(self->dev);
}

/*
 * Retrieves ENTRY of BOX, then builds its twin with BUILD(ARG): the two read
 * the same, and the pool's counters change by as much for each, and back
 * when each is closed.
 */
static void check_entry(struct __test_metadata *_metadata, int box, const char *entry,
			int (*build_twin)(const void *arg), const void *arg)
{
	struct hugetlb_pool base, restored, closed, built, after;
	struct memfd_props want, got;
	int fd, twin;

	hugetlb_pool_read(HPAGE_KB, &base);
	fd = fdbox_retrieve(box, entry);
	ASSERT_LE(0, fd) TH_LOG("RETRIEVE %s: %s", entry, fdbox_errname(fd));
	hugetlb_pool_read(HPAGE_KB, &restored);
	ASSERT_OK(hugetlb_props(fd, &got));
	close(fd);
	hugetlb_pool_read(HPAGE_KB, &closed);
	EXPECT_TRUE(hugetlb_pool_equal(&base, &closed, "retrieved, then closed"))
		TH_LOG("entry %s", entry);

	twin = build_twin(arg);
	ASSERT_LE(0, twin) TH_LOG("twin of %s: %s", entry, fdbox_errname(twin));
	hugetlb_pool_read(HPAGE_KB, &built);
	ASSERT_OK(hugetlb_props(twin, &want));
	close(twin);
	hugetlb_pool_read(HPAGE_KB, &after);
	EXPECT_TRUE(hugetlb_pool_equal(&closed, &after, "built, then closed"))
		TH_LOG("entry %s", entry);
	EXPECT_TRUE(hugetlb_same_change(&base, &restored, &closed, &built, "retrieved vs built"))
		TH_LOG("entry %s", entry);
	EXPECT_TRUE(memfd_props_equal(&want, &got)) TH_LOG("entry %s", entry);
}

static int build_recipe(const void *arg)
{
	return build(arg, 0);
}

static int build_seal_combination(const void *arg)
{
	return build_sealed(*(const int *)arg);
}

static int build_mmap_twin(const void *arg)
{
	return build_mmap_result();
}

TEST_F_TIMEOUT(stage2, retrieve_main, 600)
{
	long long restored_large;
	size_t i, pages;
	char name[16];
	int box, s, e;

	box = ASSERT_OK(fdbox_open(self->dev, MAIN_BOX, FDBOX_OPEN_INCOMING));
	for (i = 0; i < ARRAY_SIZE(recipes); i++) {
		restored_large = memfd_stat("restored_large");
		check_entry(_metadata, box, recipes[i].name, build_recipe, &recipes[i]);
		/* Each huge page came back whole, as one folio. */
		for (pages = 0, e = 0; e < 3; e++)
			pages += recipes[i].ext[e].len / HPAGE;
		ASSERT_EQ(restored_large + (long long)pages, memfd_stat("restored_large"));
	}
	for (s = 0; s < N_SEALS; s++) {
		seal_name(name, sizeof(name), s);
		check_entry(_metadata, box, name, build_seal_combination, &s);
	}
	close(box);
}

TEST_F(stage2, retrieve_written_through_mmap)
{
	int box = ASSERT_OK(fdbox_open(self->dev, MMAP_BOX, FDBOX_OPEN_INCOMING));

	check_entry(_metadata, box, "mmap", build_mmap_twin, NULL);
	close(box);
}

/* The file's pages came back, not the private copies. */
TEST_F(stage2, retrieve_without_private_copies)
{
	static const struct recipe r = { "private", 4 * HPAGE, { { 0, 4 * HPAGE } } };
	int box = ASSERT_OK(fdbox_open(self->dev, PRIVATE_BOX, FDBOX_OPEN_INCOMING));

	check_entry(_metadata, box, "private", build_recipe, &r);
	close(box);
}

/*
 * A pool that can't take the entry refuses it with ENOSPC before anything is
 * consumed: the entry stays restorable, the pool as it was; once the pool
 * has room, it comes back whole.
 */
TEST_F(stage2, pool_too_small_then_grown)
{
	struct hugetlb_pool before, failed;
	long long small;
	int box, ret;

	box = ASSERT_OK(fdbox_open(self->dev, POOL_BOX, FDBOX_OPEN_INCOMING));
	small = STAGE2_POOL - hugetlb_sysfs(HPAGE_KB, "free_hugepages") +
		POOL_SIZE / HPAGE / 2;
	ASSERT_EQ(small, hugetlb_set_pool(HPAGE_KB, small));
	hugetlb_pool_read(HPAGE_KB, &before);
	ret = fdbox_retrieve(box, pool_recipe.name);
	ASSERT_EQ(-ENOSPC, ret) TH_LOG("RETRIEVE with half the pages free: %s", fdbox_errname(ret));
	hugetlb_pool_read(HPAGE_KB, &failed);
	ASSERT_TRUE(hugetlb_pool_equal(&before, &failed, "refused RETRIEVE"));
	ASSERT_ENTRY_STATE(box, pool_recipe.name, FDBOX_ENTRY_RESTORABLE);
	ASSERT_EQ(STAGE2_POOL, hugetlb_set_pool(HPAGE_KB, STAGE2_POOL));
	check_entry(_metadata, box, pool_recipe.name, build_recipe, &pool_recipe);
	close(box);
}

/*
 * The restored pages are charged to the hugetlb cgroup of the process that
 * retrieves them, both the pages and their reservation; a limit too low
 * refuses the retrieve with ENOSPC, and the entry stays restorable.
 */
TEST_F(stage2, restore_charged_to_retriever)
{
	long long got[4] = { -1, -1, -1, -1 };
	char text[32], buf[128];
	int status, pipefd[2];
	pid_t child;

	mkdir(CGROUP_ROOT, 0755);
	if (access(CGROUP_ROOT "/cgroup.procs", F_OK))
		ASSERT_OK(fdbox_sys(mount("cgroup2", CGROUP_ROOT, "cgroup2", 0, NULL)));
	ASSERT_OK(memfd_write_text(CGROUP_ROOT "/cgroup.subtree_control", "+hugetlb"));
	if (mkdir(CGROUP_DIR, 0755))
		ASSERT_EQ(EEXIST, errno);
	snprintf(text, sizeof(text), "%lld", (long long)CGROUP_SIZE - HPAGE);
	ASSERT_OK(memfd_write_text(CGROUP_DIR "/hugetlb.2MB.max", text));
	ASSERT_OK(fdbox_sys(pipe(pipefd)));
	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		int box, fd, refused, state;
		struct fdbox_entry_info *all;
		struct fdbox_box_info info;
		const struct fdbox_entry_info *e;
		int n;

		snprintf(text, sizeof(text), "%d", getpid());
		if (memfd_write_text(CGROUP_DIR "/cgroup.procs", text))
			_exit(1);
		box = fdbox_open(self->dev, CGROUP_BOX, FDBOX_OPEN_INCOMING);
		if (box < 0)
			_exit(2);
		refused = fdbox_retrieve(box, cgroup_recipe.name);
		n = fdbox_box_info(box, &info, &all);
		e = n < 0 ? NULL : fdbox_find_entry(all, n, cgroup_recipe.name);
		state = e ? (int)e->state : -1;
		snprintf(text, sizeof(text), "%lld", (long long)CGROUP_SIZE);
		if (memfd_write_text(CGROUP_DIR "/hugetlb.2MB.max", text))
			_exit(3);
		fd = fdbox_retrieve(box, cgroup_recipe.name);
		if (fd < 0)
			_exit(4);
		snprintf(buf, sizeof(buf), "%d %d %lld %lld", refused, state,
			 memfd_read_ll(CGROUP_DIR "/hugetlb.2MB.current"),
			 memfd_read_ll(CGROUP_DIR "/hugetlb.2MB.rsvd.current"));
		close(fd);
		_exit(write(pipefd[1], buf, strlen(buf)) > 0 ? 0 : 5);
	}
	close(pipefd[1]);
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("child status %#x", status);
	memset(buf, 0, sizeof(buf));
	ASSERT_LT(0, read(pipefd[0], buf, sizeof(buf) - 1));
	close(pipefd[0]);
	ASSERT_EQ(4, sscanf(buf, "%lld %lld %lld %lld", &got[0], &got[1], &got[2], &got[3]));
	TH_LOG("refused %lld, state %lld, hugetlb.2MB.current %lld, rsvd.current %lld",
	       got[0], got[1], got[2], got[3]);
	EXPECT_EQ(-ENOSPC, got[0]);
	EXPECT_EQ(FDBOX_ENTRY_RESTORABLE, got[1]);
	EXPECT_EQ((long long)CGROUP_SIZE, got[2]);
	EXPECT_EQ((long long)CGROUP_SIZE, got[3]);
	/* Closed: nothing is charged any more. */
	EXPECT_EQ(0, memfd_read_ll(CGROUP_DIR "/hugetlb.2MB.current"));
	EXPECT_EQ(0, memfd_read_ll(CGROUP_DIR "/hugetlb.2MB.rsvd.current"));
	rmdir(CGROUP_DIR);
}

/*
 * DISCARD gives the pages to the buddy allocator at once: they were never in
 * this kernel's pool, whose counters don't move.
 */
TEST_F_TIMEOUT(stage2, discard_frees_to_the_buddy_allocator, 120)
{
	struct hugetlb_pool before, after;
	long long free_kb, freed;
	int box;

	box = ASSERT_OK(fdbox_open(self->dev, DISCARD_BOX, FDBOX_OPEN_INCOMING));
	hugetlb_pool_read(HPAGE_KB, &before);
	free_kb = fdbox_meminfo_kb("MemFree");
	freed = memfd_stat("freed");
	ASSERT_OK(fdbox_discard(box, NULL));
	hugetlb_pool_read(HPAGE_KB, &after);
	EXPECT_TRUE(hugetlb_pool_equal(&before, &after, "DISCARD"));
	EXPECT_EQ(freed + DISCARD_SIZE / HPAGE, memfd_stat("freed"));
	/* Some of the freed pages may wait in the per-CPU lists, outside MemFree. */
	EXPECT_LE(free_kb + DISCARD_SIZE / 1024 / 2, fdbox_meminfo_kb("MemFree"));
	ASSERT_FAILS(EBUSY, fdbox_retrieve(box, discard_recipe.name));
	close(box);
}

/* Nothing of this test is left behind, and the pool holds no page of it. */
TEST_F(stage2, nothing_left)
{
	const char *mine[] = { MAIN_BOX, MMAP_BOX, PRIVATE_BOX, POOL_BOX, CGROUP_BOX,
			       DISCARD_BOX };
	struct fdbox_box_summary b;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(mine); i++) {
		const char *name = mine[i];

		EXPECT_EQ(-ENOENT, fdbox_find_box(self->dev, name, FDBOX_DIR_INCOMING, &b))
			TH_LOG("box %s is left", name);
	}
	EXPECT_EQ(hugetlb_sysfs(HPAGE_KB, "nr_hugepages"),
		  hugetlb_sysfs(HPAGE_KB, "free_hugepages"));
	EXPECT_EQ(0, hugetlb_sysfs(HPAGE_KB, "resv_hugepages"));
	EXPECT_EQ(0, hugetlb_sysfs(HPAGE_KB, "surplus_hugepages"));
	ASSERT_EQ(0, hugetlb_set_pool(HPAGE_KB, 0));
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
