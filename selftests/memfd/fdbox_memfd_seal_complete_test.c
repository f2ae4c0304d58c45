// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage selftest of what SEAL promises for a memfd: a page that holds
 * data at SEAL is either in the payload, or SEAL fails with an errno and
 * rolls back. Never neither.
 *
 * Stage 1 builds small memfds whose pages come in every way a page can come
 * between ADD and SEAL: a hole filled by a store through a shared mapping or
 * by pwrite(), in either order, after a same-size ftruncate() that drops a
 * folio fallocated past the end, and with swap on (zram, only inside those
 * tests) while pages are paged out before ADD, after it, and while SEAL runs.
 * Each memfd goes in a box of its own, sealed; the stats of fdbox_memfd must
 * count every written page as preserved. Stage 2 retrieves each box by name
 * and reads every page back: written pages hold their data, holes read zero.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/swap.h>

#include "kselftest_harness.h"
#include "fdbox_common.h"
#include "memfd_util.h"

/* How a range of pages gets its data. */
enum how {
	PWRITE_BEFORE_ADD,
	STORE_BEFORE_ADD,
	PWRITE_AFTER_ADD,
	STORE_AFTER_ADD,
};

/* N pages from FIRST on, written one way. */
struct fill {
	int first;
	int n;
	enum how how;
};

/*
 * One case: its box, holding one memfd named NAME (the entry's name too), of
 * PAGES pages, written by FILL in order (up to the first empty one); every
 * other page is a hole. The same in both stages.
 */
struct layout {
	const char *box;
	const char *name;
	int pages;
	struct fill fill[3];
};

enum {
	TRUNCATE_SAME_SIZE,
	HOLE_BY_STORE,
	HOLE_BY_PWRITE,
	HOLE_BY_STORE_THEN_PWRITE,
	HOLE_BY_PWRITE_THEN_STORE,
	HOLE_BEFORE_AND_AFTER,
	SWAPPED_BEFORE_ADD,
	PAGEOUT_AFTER_ADD,
	PAGEOUT_RACING_SEAL,
	N_LAYOUTS
};

/* "memfd-" boxes are fdbox_memfd's: core_kexec leaves them alone. */
static const struct layout layouts[N_LAYOUTS] = {
	/* 2 MiB, page 0 before ADD, page 5 after; a folio fallocated at 2 MiB. */
	[TRUNCATE_SAME_SIZE] = { "memfd-seal-truncate-same-size", "truncate", 512,
		{ { 0, 1, PWRITE_BEFORE_ADD }, { 5, 1, PWRITE_AFTER_ADD } } },
	/* Empty at ADD; holes filled after it. */
	[HOLE_BY_STORE] = { "memfd-seal-hole-store", "store", 16,
		{ { 3, 1, STORE_AFTER_ADD } } },
	[HOLE_BY_PWRITE] = { "memfd-seal-hole-pwrite", "pwrite", 16,
		{ { 7, 1, PWRITE_AFTER_ADD } } },
	[HOLE_BY_STORE_THEN_PWRITE] = { "memfd-seal-hole-store-pwrite", "store-pwrite", 16,
		{ { 2, 1, STORE_AFTER_ADD }, { 9, 1, PWRITE_AFTER_ADD } } },
	[HOLE_BY_PWRITE_THEN_STORE] = { "memfd-seal-hole-pwrite-store", "pwrite-store", 16,
		{ { 4, 1, PWRITE_AFTER_ADD }, { 11, 1, STORE_AFTER_ADD } } },
	[HOLE_BEFORE_AND_AFTER] = { "memfd-seal-hole-before-after", "before-after", 16,
		{ { 1, 1, PWRITE_BEFORE_ADD }, { 6, 1, STORE_AFTER_ADD } } },
	/* With swap on. */
	[SWAPPED_BEFORE_ADD] = { "memfd-seal-swapped-before-add", "swapped", 32,
		{ { 0, 16, STORE_BEFORE_ADD } } },
	[PAGEOUT_AFTER_ADD] = { "memfd-seal-pageout-after-add", "pageout", 32,
		{ { 0, 8, PWRITE_BEFORE_ADD }, { 20, 1, STORE_AFTER_ADD },
		  { 24, 1, PWRITE_AFTER_ADD } } },
	[PAGEOUT_RACING_SEAL] = { "memfd-seal-pageout-racing", "racing", 32,
		{ { 0, 8, PWRITE_BEFORE_ADD }, { 20, 1, STORE_AFTER_ADD },
		  { 24, 1, PWRITE_AFTER_ADD } } },
};

static bool after_add(enum how how)
{
	return how == PWRITE_AFTER_ADD || how == STORE_AFTER_ADD;
}

/* Pages L writes: with 4 KiB folios, the folios SEAL must preserve. */
static int data_pages(const struct layout *l)
{
	int i, n = 0;

	for (i = 0; i < 3 && l->fill[i].n; i++)
		n += l->fill[i].n;
	return n;
}

static bool is_data(const struct layout *l, int page)
{
	int i;

	for (i = 0; i < 3 && l->fill[i].n; i++)
		if (page >= l->fill[i].first && page < l->fill[i].first + l->fill[i].n)
			return true;
	return false;
}

/* The data of PAGE of L: the PRNG stream of a seed of its own. */
static void page_data(const struct layout *l, int page, uint8_t *buf)
{
	uint64_t s = 1469598103934665603ULL, *w = (uint64_t *)buf;
	const char *c;
	size_t i;

	for (c = l->box; *c; c++)
		s = (s ^ (unsigned char)*c) * 1099511628211ULL;
	s = (s + page) | 1;
	for (i = 0; i < PAGE / 8; i++)
		w[i] = memfd_rand(&s);
}

/* Writes TEXT to a sysfs file: 0 or -errno. */
static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	if (n != (ssize_t)strlen(text))
		err = n < 0 ? -errno : -EIO;
	close(fd);
	return err;
}

/*
 * Compares the content of FD with L, page by page, through pread() (which
 * reads a hole without filling it): a written page holds its data, a hole
 * reads zero. Logs each bad page; returns how many there are.
 */
static int bad_pages(struct __test_metadata *_metadata, int fd,
		     const struct layout *l)
{
	uint8_t want[PAGE], got[PAGE];
	int page, bad = 0;
	size_t i;
	ssize_t n;

	for (page = 0; page < l->pages; page++) {
		if (is_data(l, page))
			page_data(l, page, want);
		else
			memset(want, 0, PAGE);
		n = pread(fd, got, PAGE, page * PAGE);
		if (n == (ssize_t)PAGE && !memcmp(want, got, PAGE))
			continue;
		if (++bad > 16)
			continue;
		if (n != (ssize_t)PAGE) {
			TH_LOG("%s: page %d: pread: %zd (%s)", l->name, page, n,
			       n < 0 ? strerror(errno) : "short");
			continue;
		}
		for (i = 0; i < PAGE && !got[i]; i++)
			;
		TH_LOG("%s: page %d: %s", l->name, page,
		       !is_data(l, page) ? "a hole holds data" :
		       i == PAGE ? "lost: it reads zeros" : "corrupt");
	}
	return bad;
}

/* The boxed memfd of a test. */
struct boxed {
	int dev;
	int box;
	int fd;
	uint8_t *map;
	size_t len;
};

static void boxed_init(struct boxed *b)
{
	b->dev = -1;
	b->box = -1;
	b->fd = -1;
	b->map = MAP_FAILED;
	b->len = 0;
}

static void boxed_fini(struct boxed *b)
{
	if (b->map != MAP_FAILED)
		munmap(b->map, b->len);
	if (b->fd >= 0)
		close(b->fd);
	if (b->box >= 0)
		close(b->box);
	if (b->dev >= 0)
		close(b->dev);
}

/* The modules, /dev/fdbox, and 4 KiB shmem folios (no THP). */
static void boxed_setup(struct __test_metadata *_metadata, struct boxed *b)
{
	boxed_init(b);
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE(FDBOX_MEMFD_MODULE);
	b->dev = ASSERT_OK(fdbox_open_dev());
	ASSERT_LE(0, memfd_stat("preserved")) TH_LOG("no %s", FDBOX_MEMFD_STATS);
	ASSERT_OK(write_file(SHMEM_THP, "never"));
}

/* The box and the memfd of L, of its size, mapped shared; all holes. */
static void create(struct __test_metadata *_metadata, struct boxed *b,
		   const struct layout *l)
{
	b->box = ASSERT_OK(fdbox_create(b->dev, l->box));
	b->fd = ASSERT_OK(fdbox_sys(memfd_create(l->name, 0)));
	b->len = l->pages * PAGE;
	ASSERT_OK(fdbox_sys(ftruncate(b->fd, b->len)));
	b->map = mmap(NULL, b->len, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
	ASSERT_NE(MAP_FAILED, b->map);
}

/* Writes the fills of L that come before ADD, or after it. */
static void fill(struct __test_metadata *_metadata, struct boxed *b,
		 const struct layout *l, bool after)
{
	uint8_t buf[PAGE];
	int i, page, err;
	ssize_t n;

	for (i = 0; i < 3 && l->fill[i].n; i++) {
		const struct fill *f = &l->fill[i];

		if (after_add(f->how) != after)
			continue;
		for (page = f->first; page < f->first + f->n; page++) {
			page_data(l, page, buf);
			if (f->how == STORE_BEFORE_ADD || f->how == STORE_AFTER_ADD) {
				memcpy(b->map + page * PAGE, buf, PAGE);
				continue;
			}
			n = pwrite(b->fd, buf, PAGE, page * PAGE);
			err = errno;
			ASSERT_EQ((ssize_t)PAGE, n)
				TH_LOG("pwrite page %d: %s", page, n < 0 ? strerror(err) : "short");
		}
	}
}

/* SEAL, which must preserve one 4 KiB folio per written page of L. */
static void seal(struct __test_metadata *_metadata, struct boxed *b,
		 const struct layout *l)
{
	long long before = memfd_stat("preserved");

	ASSERT_OK(fdbox_seal(b->box));
	EXPECT_EQ(before + data_pages(l), memfd_stat("preserved"))
		TH_LOG("%s: folios preserved by this SEAL", l->name);
}

/* Builds L, ADDs and SEALs it: the cases without swap. */
static void build(struct __test_metadata *_metadata, struct boxed *b,
		  const struct layout *l)
{
	create(_metadata, b, l);
	fill(_metadata, b, l, false);
	ASSERT_OK(fdbox_add(b->box, b->fd, l->name));
	fill(_metadata, b, l, true);
	seal(_metadata, b, l);
	EXPECT_EQ(0, bad_pages(_metadata, b->fd, l));
}

FIXTURE(stage1) {
	struct boxed b;
};

FIXTURE_SETUP(stage1)
{
	boxed_setup(_metadata, &self->b);
}

FIXTURE_TEARDOWN(stage1)
{
	boxed_fini(&self->b);
}

/*
 * The review's reproduction. ADD's walk sees the folio fallocated past the
 * end (and doesn't hold it: it has no data); a same-size ftruncate() then
 * drops it, while page 5 fills a hole. The page cache holds as many pages at
 * SEAL as ADD saw, yet page 5 is new: SEAL must walk again and preserve it,
 * or page 5 reads zeros after the kexec.
 */
TEST_F(stage1, truncate_same_size)
{
	const struct layout *l = &layouts[TRUNCATE_SAME_SIZE];
	struct boxed *b = &self->b;

	create(_metadata, b, l);
	ASSERT_OK(fdbox_sys(fallocate(b->fd, FALLOC_FL_KEEP_SIZE, b->len, PAGE)));
	fill(_metadata, b, l, false);
	ASSERT_OK(fdbox_add(b->box, b->fd, l->name));
	fill(_metadata, b, l, true);
	/* The same size: allowed while boxed, and drops the folio at 2 MiB. */
	ASSERT_OK(fdbox_sys(ftruncate(b->fd, b->len)));
	seal(_metadata, b, l);
	EXPECT_EQ(0, bad_pages(_metadata, b->fd, l));
}

/* Holes filled between ADD and SEAL, by a store, by pwrite(), in both orders. */
TEST_F(stage1, hole_filled_by_store)
{
	build(_metadata, &self->b, &layouts[HOLE_BY_STORE]);
}

TEST_F(stage1, hole_filled_by_pwrite)
{
	build(_metadata, &self->b, &layouts[HOLE_BY_PWRITE]);
}

TEST_F(stage1, hole_filled_by_store_then_pwrite)
{
	build(_metadata, &self->b, &layouts[HOLE_BY_STORE_THEN_PWRITE]);
}

TEST_F(stage1, hole_filled_by_pwrite_then_store)
{
	build(_metadata, &self->b, &layouts[HOLE_BY_PWRITE_THEN_STORE]);
}

/* A page held at ADD and one filled after it. */
TEST_F(stage1, hole_filled_after_a_page_before_add)
{
	build(_metadata, &self->b, &layouts[HOLE_BEFORE_AND_AFTER]);
}

/*
 * Swap on zram, only for the tests of the fixture stage1_swap: /dev/zram0
 * (hot-added if it doesn't exist), ZRAM_SIZE large, with a swap header
 * written here.
 */
#define ZRAM_SYS "/sys/block/zram0"
#define ZRAM_DEV "/dev/zram0"
#define ZRAM_HOT_ADD "/sys/class/zram-control/hot_add"
#define ZRAM_SIZE (64 * MiB)

/* mkswap: the swap header of <linux/swap.h>, version 1, no bad pages. */
static int mkswap(const char *dev, size_t size)
{
	static uint8_t hdr[PAGE];
	uint32_t info[3] = { 1, size / PAGE - 1, 0 };
	int fd, ok;

	memcpy(hdr + 1024, info, sizeof(info));
	memcpy(hdr + PAGE - 10, "SWAPSPACE2", 10);
	fd = open(dev, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ok = pwrite(fd, hdr, PAGE, 0) == (ssize_t)PAGE && !fsync(fd);
	close(fd);
	return ok ? 0 : -EIO;
}

/* Turns swap off on zram0 and resets it; 0 or -errno. */
static int swap_off(void)
{
	int err = 0;

	if (swapoff(ZRAM_DEV) && errno != EINVAL)
		err = -errno;
	if (!err)
		err = write_file(ZRAM_SYS "/reset", "1");
	return err;
}

/* Turns swap on, on zram0: 0, or -errno and nothing left on. */
static int swap_on(void)
{
	char size[32], id[16] = "";
	int fd, err;

	if (access(ZRAM_SYS, F_OK)) {
		/* Reading hot_add adds a device and gives its number. */
		fd = open(ZRAM_HOT_ADD, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		err = read(fd, id, sizeof(id) - 1) > 0 ? 0 : -EIO;
		close(fd);
		if (err || access(ZRAM_SYS, F_OK))
			return -ENODEV;
	}
	/* Left on by a test that was killed: start afresh. */
	swapoff(ZRAM_DEV);
	write_file(ZRAM_SYS "/reset", "1");
	snprintf(size, sizeof(size), "%zu", ZRAM_SIZE);
	err = write_file(ZRAM_SYS "/disksize", size);
	if (!err)
		err = mkswap(ZRAM_DEV, ZRAM_SIZE);
	if (!err && swapon(ZRAM_DEV, 0))
		err = -errno;
	if (err)
		write_file(ZRAM_SYS "/reset", "1");
	return err;
}

/* Keeps this test on the CPU it runs on: MADV_PAGEOUT drains only its LRU cache. */
static int pin_cpu(void)
{
	int cpu = sched_getcpu();
	cpu_set_t set;

	if (cpu < 0)
		return -errno;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

/* Reads a byte of every written page of L through the mapping, mapping them. */
static void touch(const struct boxed *b, const struct layout *l, bool only_after_add)
{
	int i, page;

	for (i = 0; i < 3 && l->fill[i].n; i++) {
		if (only_after_add && !after_add(l->fill[i].how))
			continue;
		for (page = l->fill[i].first; page < l->fill[i].first + l->fill[i].n; page++)
			(void)*(volatile uint8_t *)(b->map + page * PAGE);
	}
}

/* How many written pages of L are not in memory (in swap, then), or -errno. */
static int not_resident(const struct boxed *b, const struct layout *l)
{
	unsigned char vec[64];
	int page, n = 0;

	if ((size_t)l->pages > sizeof(vec))
		return -EINVAL;
	if (mincore(b->map, b->len, vec))
		return -errno;
	for (page = 0; page < l->pages; page++)
		n += is_data(l, page) && !(vec[page] & 1);
	return n;
}

/* Maps every written page of L and pages the whole mapping out. */
static int page_out(const struct boxed *b, const struct layout *l)
{
	touch(b, l, false);
	if (madvise(b->map, b->len, MADV_PAGEOUT))
		return -errno;
	return not_resident(b, l);
}

/*
 * A thread that loops { read the pages filled after ADD; MADV_PAGEOUT the
 * whole mapping } until STOP is set, counting its rounds. It asserts
 * nothing: a madvise() error ends it, in ERR.
 */
struct racer {
	pthread_t thread;
	bool running;
	atomic_bool stop;
	atomic_long rounds;
	atomic_int err;
	const struct boxed *b;
	const struct layout *l;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;

	while (!atomic_load(&r->stop)) {
		touch(r->b, r->l, true);
		if (madvise(r->b->map, r->b->len, MADV_PAGEOUT)) {
			atomic_store(&r->err, errno);
			break;
		}
		atomic_fetch_add(&r->rounds, 1);
	}
	return NULL;
}

static int racer_start(struct racer *r, const struct boxed *b, const struct layout *l)
{
	int err;

	atomic_store(&r->stop, false);
	atomic_store(&r->rounds, 0);
	atomic_store(&r->err, 0);
	r->b = b;
	r->l = l;
	err = pthread_create(&r->thread, NULL, racer_main, r);
	r->running = !err;
	return -err;
}

/* Waits until the racer has finished a round after this call, or stopped. */
static void racer_wait_round(struct racer *r)
{
	long start = atomic_load(&r->rounds);

	while (atomic_load(&r->rounds) <= start && !atomic_load(&r->err))
		sched_yield();
}

static void racer_stop(struct racer *r)
{
	if (!r->running)
		return;
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	r->running = false;
}

/* The box holds L's memfd, prepared, and is open: after a failed SEAL. */
static void assert_still_open(struct __test_metadata *_metadata, int box,
			      const struct layout *l)
{
	struct fdbox_entry_info *e;
	struct fdbox_box_info info;
	int n = fdbox_box_info(box, &info, &e);

	ASSERT_LE(0, n) TH_LOG("BOX_INFO: %s", fdbox_errname(n));
	EXPECT_EQ(FDBOX_BOX_OPEN, info.state);
	EXPECT_EQ(1, n);
	if (n == 1) {
		EXPECT_STREQ(l->name, e[0].name);
		EXPECT_STREQ("memfd", e[0].compatible);
		EXPECT_EQ(FDBOX_ENTRY_PREPARED, e[0].state);
	}
	free(e);
}

FIXTURE(stage1_swap) {
	struct boxed b;
	bool swap;
	struct racer racer;
};

FIXTURE_SETUP(stage1_swap)
{
	int err;

	self->swap = false;
	self->racer.running = false;
	boxed_setup(_metadata, &self->b);
	err = swap_on();
	ASSERT_EQ(0, err) TH_LOG("swap on %s: %s", ZRAM_DEV, fdbox_errname(err));
	self->swap = true;
}

FIXTURE_TEARDOWN(stage1_swap)
{
	int err;

	racer_stop(&self->racer);
	boxed_fini(&self->b);
	if (self->swap) {
		/*
		 * Other tests never see swap. (No handler after EXPECT_EQ: after
		 * a failed ASSERT, teardown runs with the handler armed.)
		 */
		err = swap_off();
		if (err)
			TH_LOG("swap off: %s", fdbox_errname(err));
		EXPECT_EQ(0, err);
	}
}

/*
 * Pages in swap at ADD: ADD refuses the memfd with EAGAIN and leaves it as it
 * was (not frozen, its data in place, evictable); once every page is back in
 * memory, ADD takes it.
 */
TEST_F_TIMEOUT(stage1_swap, swapped_before_add_is_refused, 120)
{
	const struct layout *l = &layouts[SWAPPED_BEFORE_ADD];
	struct boxed *b = &self->b;
	struct fdbox_box_info info;
	struct fdbox_entry_info *e;
	long swap_kb;
	int out;

	ASSERT_OK(pin_cpu());
	create(_metadata, b, l);
	fill(_metadata, b, l, false);
	swap_kb = fdbox_meminfo_kb("SwapFree");
	out = ASSERT_OK(page_out(b, l));
	TH_LOG("%d of %d pages paged out; SwapFree %ld -> %ld kB", out,
	       data_pages(l), swap_kb, fdbox_meminfo_kb("SwapFree"));
	/* A test that can't get a page into swap tests nothing. */
	ASSERT_LT(0, out) TH_LOG("MADV_PAGEOUT swapped nothing out");

	ASSERT_FAILS(EAGAIN, fdbox_add(b->box, b->fd, l->name));
	/* Unchanged: no entry, the size not frozen, the data in place. */
	ASSERT_EQ(0, fdbox_box_info(b->box, &info, &e));
	free(e);
	EXPECT_EQ(FDBOX_BOX_OPEN, info.state);
	ASSERT_OK(fdbox_sys(ftruncate(b->fd, b->len + PAGE)));
	ASSERT_OK(fdbox_sys(ftruncate(b->fd, b->len)));
	ASSERT_EQ(0, bad_pages(_metadata, b->fd, l));
	ASSERT_EQ(0, not_resident(b, l));
	/* ...and it can go to swap again. */
	ASSERT_LT(0, page_out(b, l)) TH_LOG("no longer evictable after a failed ADD");

	/* Every page read back in: ADD takes it. */
	ASSERT_EQ(0, bad_pages(_metadata, b->fd, l));
	touch(b, l, false);
	ASSERT_EQ(0, not_resident(b, l));
	ASSERT_OK(fdbox_add(b->box, b->fd, l->name));
	seal(_metadata, b, l);
	EXPECT_EQ(0, bad_pages(_metadata, b->fd, l));
}

/* MADV_PAGEOUT of everything, a hole filled after ADD included: SEAL keeps all. */
TEST_F_TIMEOUT(stage1_swap, pageout_after_add_keeps_everything, 120)
{
	const struct layout *l = &layouts[PAGEOUT_AFTER_ADD];
	struct boxed *b = &self->b;
	int out;

	ASSERT_OK(pin_cpu());
	create(_metadata, b, l);
	fill(_metadata, b, l, false);
	ASSERT_OK(fdbox_add(b->box, b->fd, l->name));
	fill(_metadata, b, l, true);
	out = ASSERT_OK(page_out(b, l));
	TH_LOG("%d of %d pages not resident after MADV_PAGEOUT", out, data_pages(l));
	seal(_metadata, b, l);
	EXPECT_EQ(0, bad_pages(_metadata, b->fd, l));
}

#define SEAL_TRIES 64

/*
 * MADV_PAGEOUT racing SEAL: each SEAL either succeeds with every page, or
 * fails with EAGAIN and leaves the box open with its entry, to be retried.
 */
TEST_F_TIMEOUT(stage1_swap, pageout_racing_seal, 300)
{
	const struct layout *l = &layouts[PAGEOUT_RACING_SEAL];
	struct racer *r = &self->racer;
	struct boxed *b = &self->b;
	long long before = 0;
	int tries, err = -EAGAIN;

	create(_metadata, b, l);
	fill(_metadata, b, l, false);
	ASSERT_OK(fdbox_add(b->box, b->fd, l->name));
	fill(_metadata, b, l, true);
	ASSERT_OK(racer_start(r, b, l));
	for (tries = 0; tries < SEAL_TRIES && err == -EAGAIN; tries++) {
		/* A fresh page-out before each SEAL. */
		racer_wait_round(r);
		ASSERT_EQ(0, atomic_load(&r->err))
			TH_LOG("MADV_PAGEOUT: %s", strerror(atomic_load(&r->err)));
		before = memfd_stat("preserved");
		err = fdbox_seal(b->box);
		if (err == -EAGAIN)
			assert_still_open(_metadata, b->box, l);
	}
	racer_stop(r);
	TH_LOG("SEAL: %s after %d tries, %ld page-out rounds",
	       err ? fdbox_errname(err) : "success", tries, atomic_load(&r->rounds));
	ASSERT_EQ(0, err) TH_LOG("no SEAL succeeded in %d tries", tries);
	EXPECT_EQ(0, atomic_load(&r->err));
	EXPECT_EQ(before + data_pages(l), memfd_stat("preserved"))
		TH_LOG("%s: folios preserved by this SEAL", l->name);
	EXPECT_EQ(0, bad_pages(_metadata, b->fd, l));
}

FIXTURE(stage2) {
	int dev;
	int box;
	int fd;
};

FIXTURE_SETUP(stage2)
{
	self->dev = -1;
	self->box = -1;
	self->fd = -1;
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE(FDBOX_MEMFD_MODULE);
	self->dev = ASSERT_OK(fdbox_open_dev());
}

FIXTURE_TEARDOWN(stage2)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->box >= 0)
		close(self->box);
	if (self->dev >= 0)
		close(self->dev);
}

/* Retrieves the memfd of L: its size, and every page as stage 1 wrote it. */
static void check(struct __test_metadata *_metadata, FIXTURE_DATA(stage2) *self,
		  const struct layout *l)
{
	long long restored = memfd_stat("restored");
	struct stat st;

	self->box = ASSERT_OK(fdbox_open(self->dev, l->box, FDBOX_OPEN_INCOMING));
	self->fd = ASSERT_OK(fdbox_retrieve(self->box, l->name));
	EXPECT_EQ(restored + data_pages(l), memfd_stat("restored"))
		TH_LOG("%s: folios restored", l->name);
	ASSERT_OK(fdbox_sys(fstat(self->fd, &st)));
	ASSERT_EQ((off_t)(l->pages * PAGE), st.st_size);
	EXPECT_EQ(0, bad_pages(_metadata, self->fd, l));
}

TEST_F(stage2, truncate_same_size)
{
	check(_metadata, self, &layouts[TRUNCATE_SAME_SIZE]);
}

TEST_F(stage2, hole_filled_by_store)
{
	check(_metadata, self, &layouts[HOLE_BY_STORE]);
}

TEST_F(stage2, hole_filled_by_pwrite)
{
	check(_metadata, self, &layouts[HOLE_BY_PWRITE]);
}

TEST_F(stage2, hole_filled_by_store_then_pwrite)
{
	check(_metadata, self, &layouts[HOLE_BY_STORE_THEN_PWRITE]);
}

TEST_F(stage2, hole_filled_by_pwrite_then_store)
{
	check(_metadata, self, &layouts[HOLE_BY_PWRITE_THEN_STORE]);
}

TEST_F(stage2, hole_filled_after_a_page_before_add)
{
	check(_metadata, self, &layouts[HOLE_BEFORE_AND_AFTER]);
}

TEST_F(stage2, swapped_before_add_is_refused)
{
	check(_metadata, self, &layouts[SWAPPED_BEFORE_ADD]);
}

TEST_F(stage2, pageout_after_add_keeps_everything)
{
	check(_metadata, self, &layouts[PAGEOUT_AFTER_ADD]);
}

TEST_F(stage2, pageout_racing_seal)
{
	check(_metadata, self, &layouts[PAGEOUT_RACING_SEAL]);
}

/* Every box was retrieved whole, so none is left. */
TEST_F(stage2, nothing_left)
{
	struct fdbox_box_summary s;
	int i;

	for (i = 0; i < N_LAYOUTS; i++) {
		const char *name = layouts[i].box;

		EXPECT_EQ(-ENOENT, fdbox_find_box(self->dev, name, FDBOX_DIR_INCOMING, &s))
			TH_LOG("box %s is left", name);
	}
}

/* "-s N" from the harness selects the fixtures of stage N. */
int main(int argc, char **argv)
{
	char *stage1[] = { argv[0], "-f", "stage1", "-f", "stage1_swap", NULL };
	char *stage2[] = { argv[0], "-f", "stage2", NULL };

	if (argc == 2 && !strcmp(argv[1], "-l"))
		return test_harness_run(argc, argv);
	if (argc != 3 || strcmp(argv[1], "-s") ||
	    (strcmp(argv[2], "1") && strcmp(argv[2], "2"))) {
		fprintf(stderr, "usage: %s -s 1|2 | -l\n", argv[0]);
		return KSFT_FAIL;
	}
	if (!strcmp(argv[2], "1"))
		return test_harness_run(5, stage1);
	return test_harness_run(3, stage2);
}
