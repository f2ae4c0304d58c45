// SPDX-License-Identifier: GPL-2.0
/*
 * make bench's guest program: FDBox's memfd path against LUO's, on identical
 * memfds, in the same VM run, across real KHO kexecs.
 *
 * Stage N preserves one group of cases with both (FDBox: ADD + SEAL of a box
 * per memfd; LUO: PRESERVE_FD into a session per memfd); stage N + 1
 * retrieves them with both, checks every byte, and preserves the next group.
 * Every case runs REPS times, each time on a fresh pair of memfds, and which
 * side goes first alternates, so that neither gets the warmer caches or the
 * better memory; scripts/bench-table.awk prints the medians and the spread.
 *
 * Where the folios sit is set, not left to chance: a folio in KHO scratch
 * (CMA) costs a migration at preserve, on both sides, and which copy drew
 * such folios used to decide the worst ratio.
 *
 *   fdbox.bench=ample, three stages; both copies are settled
 *   (FDBOX_SETTLE_FUTURE) before they are written, so that neither has a
 *   folio in scratch, which each row checks:
 *     "ample"    64 MiB and 256 MiB, 4 KiB pages and THP, a sparse 256 MiB
 *                memfd with 16 MiB written, and a fragmented 64 MiB memfd
 *                whose pages are physically scattered; then the time of the
 *                1st, 100th and 1000th SEAL of a box of one page; and
 *                "256M-HUGETLB" (below)
 *     "largest"  the largest pair the VM's memory allows, 4 KiB and THP,
 *                and "largest-HUGETLB" of the same size (below)
 *   fdbox.bench=vcpus, two stages, booted with 1 and with 4 vCPUs:
 *     "<N>vcpu"  64 MiB, 256 MiB and 1 GiB of 4 KiB pages, and 256 MiB of
 *                THP, settled as in ample: what more CPUs buy, and that one
 *                CPU costs no more than before
 *   fdbox.bench=pressure, two stages:
 *     "scratch"  64 MiB and 256 MiB, 4 KiB pages and THP, both copies
 *                written while unmovable ballast fills all memory but KHO
 *                scratch, so that both sit in scratch, and both sides must
 *                migrate them
 *
 * The hugetlb rows, "256M-HUGETLB" and "largest-HUGETLB": a memfd of 2 MiB
 * hugetlb pages (memfd_create(MFD_HUGETLB), written through a MAP_SHARED
 * mapping: hugetlbfs has no write()), carried by FDBox alone. LUO can't
 * carry a hugetlb memfd at all (its memfd_luo_can_preserve() takes shmem
 * only), so these rows time FDBox's phases only (ADD + SEAL, RETRIEVE) and
 * have no FDBox/LUO ratio: scripts/bench.sh compares each with FDBox's own
 * THP row of the same size from the same VM run ("vs FDBox THP": 256M-THP,
 * largest-THP), or prints "n/a" when that row didn't run (make bench
 * CASE=256M-HUGETLB). This program prints no QEMU file-migration copy rows;
 * make bench's blackout VM does (selftests/qemu/qemu_bench.sh, the file
 * route), and scripts/bench.sh compares with its migrate + load where it has
 * a guest of the same size (256 MiB), "n/a" elsewhere. Each stage reserves
 * the 2 MiB pool at runtime (nr_hugepages, the value read back checked: a
 * pool short of it fails the row loudly and skips it), for every memfd the
 * boxes hold to the kexec when preserving, for one memfd when retrieving
 * (RETRIEVE takes a pool page for every page it restores, then gives it back
 * to the buddy allocator), and sets it back to 0 after the row. FDBox's
 * FDBOX_SETTLE_FD refuses hugetlb memfds, so where their pages sit is not
 * set: ADD migrates any in KHO scratch, and the row reports how many.
 *
 * fdbox.bench.case=NAME (make bench CASE=NAME) runs case NAME alone, after
 * the warmup, for a quick look at one row while working on it.
 *
 * Each measurement is a "# bench: key=value ..." line, a hugetlb row's a
 * "# bench-hugetlb: key=value ..." line; scripts/bench.sh joins the lines of
 * both stages and prints the tables with the ratios.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#define _GNU_SOURCE

#include <signal.h>
#include <time.h>
#include <linux/liveupdate.h>

#include "kselftest_harness.h"
#include "fdbox_common.h"
#include "memfd_util.h"
#include "hugetlb_util.h"

#define LAST_STAGE 3
/* Repetitions of every case; the table shows their median. */
#define REPS 3
/* Boxes of the SEAL scaling line. */
#define SEAL_BOXES 1000

_Static_assert(FDBOX_NAME_LEN == LIVEUPDATE_SESSION_NAME_LENGTH, "one name for both");
#define THP (2 * MiB)
/* The hugetlb rows' page size, and its pool in sysfs (hugepages-2048kB). */
#define HPAGE (2 * MiB)
#define HPAGE_KB 2048LL
/* Where a stage hands words to the next one's command line (selftests/harness/init.sh). */
#define NEXT_CMDLINE "/tmp/fdbox.next-cmdline"

struct bcase {
	const char *name;
	size_t size;
	bool thp;
	size_t written;		/* 0: all of it */
	bool fragmented;	/* pages physically scattered */
	bool hugetlb;		/* MFD_HUGETLB, 2 MiB pages: FDBox alone */
	const char *vs;		/* hugetlb: FDBox's THP row it is compared with */
};

/* "warmup" runs each path once before the cases; it is not in the table. */
static const struct bcase ample[] = {
	{ "warmup", 4 * MiB },
	{ "64M-4K", 64 * MiB }, { "64M-THP", 64 * MiB, true },
	{ "256M-4K", 256 * MiB }, { "256M-THP", 256 * MiB, true },
	{ "sparse-256M", 256 * MiB, false, 16 * MiB },
	{ "fragmented-64M", 64 * MiB, false, 0, true },
	/* Last: retrieved after the others have given their memory back. */
	{ "256M-HUGETLB", 256 * MiB, .hugetlb = true, .vs = "256M-THP" },
};

/* One size for all three, so that the hugetlb row has a THP row to compare with. */
static struct bcase largest[] = {
	{ "largest-4K", 0 }, { "largest-THP", 0, true },
	{ "largest-HUGETLB", 0, .hugetlb = true, .vs = "largest-THP" },
};

static const struct bcase pressure[] = {
	{ "warmup", 4 * MiB },
	{ "64M-4K", 64 * MiB }, { "64M-THP", 64 * MiB, true },
	{ "256M-4K", 256 * MiB }, { "256M-THP", 256 * MiB, true },
};

struct group {
	char regime[16];
	const struct bcase *cases;
	int n;
};

/* The groups of each run, one per stage: fdbox.bench=ample|pressure. */
static const struct group ample_run[] = {
	{ "ample", ample, ARRAY_SIZE(ample) },
	{ "largest", largest, ARRAY_SIZE(largest) },
};

static const struct group pressure_run[] = {
	{ "scratch", pressure, ARRAY_SIZE(pressure) },
};

/* fdbox.bench=vcpus: the same cases on 1 and on 4 vCPUs, as regime "<N>vcpu". */
static const struct bcase vcpus[] = {
	{ "warmup", 4 * MiB },
	{ "64M-4K", 64 * MiB },
	{ "256M-4K", 256 * MiB }, { "256M-THP", 256 * MiB, true },
	{ "1G-4K", 1024 * MiB },
};

static struct group vcpus_run[] = {
	{ "vcpu", vcpus, ARRAY_SIZE(vcpus) },
};

/* fdbox.bench.case=NAME: only case NAME and the warmup, for a quick look at one row. */
static char only_case[32];

static bool skipped(const struct bcase *c)
{
	return only_case[0] && strcmp(c->name, "warmup") && strcmp(c->name, only_case);
}

static const struct group *groups = ample_run;
static int n_groups = ARRAY_SIZE(ample_run);

/* This stage's kernel command line. */
static char cmdline[4096];

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void set_thp(const char *mode)
{
	int fd = open(SHMEM_THP, O_WRONLY);

	if (fd >= 0) {
		if (write(fd, mode, strlen(mode)) < 0)
			perror(SHMEM_THP);
		close(fd);
	}
}

/* The sparse case writes 1 MiB of every 16 MiB. */
static bool chunk_written(const struct bcase *c, size_t off)
{
	return !c->written || off % (c->size / (c->written / MiB)) == 0;
}

/*
 * Writes case C into both A and B through mappings, a MiB of each in turn,
 * so that neither copy gets the better memory. THP comes from shmem THP
 * "always" while they are written (the kernel has no madvise(2)).
 */
static int fill_pair(int a, int b, const struct bcase *c)
{
	uint8_t *p[2];
	size_t off;
	int k;

	if (ftruncate(a, c->size) || ftruncate(b, c->size))
		return -errno;
	set_thp(c->thp ? "always" : "never");
	p[0] = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, a, 0);
	p[1] = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, b, 0);
	if (p[0] == MAP_FAILED || p[1] == MAP_FAILED)
		return -ENOMEM;
	for (off = 0; off < c->size; off += MiB) {
		if (!chunk_written(c, off))
			continue;
		for (k = 0; k < 2; k++) {
			uint64_t s = off | 1, *w = (uint64_t *)(p[k] + off);
			size_t i;

			for (i = 0; i < MiB / 8; i++)
				w[i] = memfd_rand(&s);
		}
	}
	munmap(p[0], c->size);
	munmap(p[1], c->size);
	set_thp("never");
	return 0;
}

/* The hash memfd_hash() gives a memfd filled by fill(). */
static uint64_t expected_hash(const struct bcase *c)
{
	uint64_t h = 1469598103934665603ULL;
	size_t off, i;

	for (off = 0; off < c->size; off += MiB) {
		uint64_t s = off | 1;
		bool data = chunk_written(c, off);

		for (i = 0; i < MiB / 8; i++)
			h = (h ^ (data ? memfd_rand(&s) : 0)) * 1099511628211ULL;
	}
	return h;
}

static void box_name(char *buf, const struct group *g, const struct bcase *c, int rep)
{
	snprintf(buf, FDBOX_NAME_LEN, "bench-%s-%s-%d", g->regime, c->name, rep);
}

static long long kib_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? -1 : (long long)st.st_blocks / 2;
}

/* Folios of FD in KHO scratch or ZONE_MOVABLE, or -1. */
static long long in_scratch(int dev, int fd)
{
	struct fdbox_settle_fd out;

	return fdbox_settle(dev, fd, 0, &out) ? -1 : (long long)out.unsettled;
}

/*
 * Unmovable ballast that leaves free only KHO scratch and about SLACK bytes
 * more, so that movable memory allocated next comes from scratch: a memfd
 * settled for the future takes no CMA page. It grows in steps, watching what
 * is free outside scratch, so that it never drives the kernel to the OOM
 * killer. An fd to close, or -1 if none is needed.
 */
static int fill_all_but_scratch(int dev, size_t slack)
{
	const size_t step = 64 * MiB;
	off_t len = 0;
	int fd;

	fd = memfd_create("bench-ballast", 0);
	if (fd < 0)
		return -1;
	if (fdbox_settle(dev, fd, FDBOX_SETTLE_FUTURE, NULL)) {
		close(fd);
		return -1;
	}
	for (;;) {
		long long outside = (fdbox_meminfo_kb("MemFree") - fdbox_meminfo_kb("CmaFree")) * KiB;
		size_t n;

		if (outside <= (long long)slack)
			break;
		n = outside - slack < (long long)step ? (outside - slack) / PAGE * PAGE : step;
		if (!n || memfd_fill(fd, len, n, 1))
			break;
		len += n;
	}
	return fd;
}

/* One repetition of one case: its two memfds and what preserving them cost. */
struct rep {
	int fdbox_fd, luo_fd, session;
	double fdbox_us, add_us, luo_us;
	long meta;
	long long fdbox_scratch, luo_scratch, migrated;
};

/* Preserves A's FDBox copy as box NAME. */
static void preserve_fdbox(struct __test_metadata *_metadata, int dev, const char *name,
			   struct rep *r)
{
	long blob = fdbox_debugfs_size("outgoing");
	long long migrated = memfd_stat("migrated");
	double t0;
	int box;

	box = ASSERT_OK(fdbox_create(dev, name));
	t0 = now_us();
	ASSERT_OK(fdbox_add(box, r->fdbox_fd, "ram"));
	r->add_us = now_us() - t0;
	ASSERT_OK(fdbox_seal(box));
	r->fdbox_us = now_us() - t0;
	close(box);
	r->meta = fdbox_debugfs_size("outgoing") - blob;
	r->migrated = memfd_stat("migrated") - migrated;
}

/* Preserves the LUO copy in session NAME; the session fd stays open. */
static void preserve_luo(struct __test_metadata *_metadata, int lu, const char *name,
			 struct rep *r)
{
	struct liveupdate_ioctl_create_session cs = { .size = sizeof(cs) };
	struct liveupdate_session_preserve_fd pf = { .size = sizeof(pf) };
	double t0;

	memcpy(cs.name, name, sizeof(cs.name));
	ASSERT_OK(fdbox_raw(lu, LIVEUPDATE_IOCTL_CREATE_SESSION, &cs));
	pf.fd = r->luo_fd;
	pf.token = 1;
	t0 = now_us();
	ASSERT_OK(fdbox_raw(cs.fd, LIVEUPDATE_SESSION_PRESERVE_FD, &pf));
	r->luo_us = now_us() - t0;
	/* The session fd stays open until the kexec: see preserve(). */
	r->session = cs.fd;
}

/*
 * Sets the 2 MiB hugetlb pool to WANT pages for hugetlb case C of G, at
 * runtime, as a host grows its pool; PHASE is "preserve" or "retrieve".
 * The value read back must be WANT, with every page free: if not, the row
 * fails loudly, the pool goes back to 0, and false says to skip the row (an
 * ASSERT would end the whole stage, and with it every other row's LUO
 * sessions).
 */
static bool reserve_pool(struct __test_metadata *_metadata, const struct group *g,
			 const struct bcase *c, const char *phase, long long want)
{
	long long got = hugetlb_set_pool(HPAGE_KB, want);
	long long nfree = hugetlb_sysfs(HPAGE_KB, "free_hugepages");

	printf("# bench-hugetlb: stage=pool regime=%s case=%s vs=%s phase=%s want=%lld got=%lld "
	       "free=%lld\n", g->regime, c->name, c->vs, phase, want, got, nfree);
	fflush(stdout);
	EXPECT_EQ(want, got) TH_LOG("%s, %s: the 2 MiB hugetlb pool reached %lld pages, not %lld: "
				    "row skipped", c->name, phase, got, want);
	EXPECT_EQ(want, nfree) TH_LOG("%s, %s: %lld of the pool's %lld pages free, not %lld: "
				      "row skipped", c->name, phase, nfree, got, want);
	if (got == want && nfree == want)
		return true;
	hugetlb_set_pool(HPAGE_KB, 0);
	return false;
}

/*
 * Writes hugetlb case C into FD through a MAP_SHARED mapping (hugetlbfs has
 * no write()), with the bytes fill_pair() gives a shmem copy.
 */
static int fill_hugetlb(int fd, const struct bcase *c)
{
	uint8_t *p;
	size_t off;

	if (ftruncate(fd, c->size))
		return -errno;
	p = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	for (off = 0; off < c->size; off += MiB) {
		uint64_t s = off | 1, *w = (uint64_t *)(p + off);
		size_t i;

		if (!chunk_written(c, off))
			continue;
		for (i = 0; i < MiB / 8; i++)
			w[i] = memfd_rand(&s);
	}
	munmap(p, c->size);
	return 0;
}

/*
 * Preserves hugetlb case C of G with FDBox alone, REPS times, timing the
 * phases the other rows time for FDBox: LUO can't carry a hugetlb memfd.
 * The pool holds the REPS memfds the boxes keep to the kexec; set back to 0
 * after, it keeps just those pages (as surplus pages), which is checked.
 * The size goes to the next stage's command line: its RETRIEVE needs a pool
 * of that many pages before the memfd can tell it, and a largest case's
 * size is what this stage chose.
 */
static void preserve_hugetlb(struct __test_metadata *_metadata, int dev, const struct group *g,
			     const struct bcase *c)
{
	long long pages = c->size / HPAGE, got;
	char name[FDBOX_NAME_LEN] = "";
	bool handed;
	FILE *next;
	int k;

	if (!reserve_pool(_metadata, g, c, "preserve", REPS * pages))
		return;
	for (k = 0; k < REPS; k++) {
		long long nfree = hugetlb_sysfs(HPAGE_KB, "free_hugepages");
		struct rep r = { .luo_fd = -1, .session = -1 };
		struct stat st;

		r.fdbox_fd = ASSERT_OK(fdbox_sys(memfd_create("bench", MFD_HUGETLB)));
		ASSERT_OK(fdbox_sys(fstat(r.fdbox_fd, &st)));
		/* The default huge page size: the pool reserved is the 2 MiB one. */
		EXPECT_EQ((long long)HPAGE, (long long)st.st_blksize)
			TH_LOG("%s: not a memfd of 2 MiB hugetlb pages: row skipped", c->name);
		if (st.st_blksize != HPAGE) {
			close(r.fdbox_fd);
			hugetlb_set_pool(HPAGE_KB, 0);
			return;
		}
		ASSERT_OK(fill_hugetlb(r.fdbox_fd, c));
		/* Every page written, each from the pool reserved above. */
		ASSERT_EQ((long long)(c->size / KiB), kib_of(r.fdbox_fd));
		EXPECT_EQ(nfree - pages, hugetlb_sysfs(HPAGE_KB, "free_hugepages"))
			TH_LOG("%s: the memfd's pages didn't come from the pool", c->name);
		box_name(name, g, c, k);
		preserve_fdbox(_metadata, dev, name, &r);
		/*
		 * No settle: FDBOX_SETTLE_FD refuses a hugetlb memfd, so its
		 * pages sit where the pool found them; "migrated" counts those
		 * ADD moved out of KHO scratch (a copy each).
		 */
		printf("# bench-hugetlb: stage=preserve regime=%s case=%s vs=%s rep=%d "
		       "size_mib=%zu fdbox_us=%.0f add_us=%.0f fdbox_meta=%ld fdbox_kib=%lld "
		       "migrated=%lld\n",
		       g->regime, c->name, c->vs, k, c->size / MiB, r.fdbox_us, r.add_us,
		       r.meta, kib_of(r.fdbox_fd), r.migrated);
		fflush(stdout);
		close(r.fdbox_fd);
	}
	next = fopen(NEXT_CMDLINE, "a");
	handed = next && fprintf(next, "fdbox.bench.hugetlb.%s.%s=%zu\n", g->regime, c->name,
				 c->size / MiB) > 0;
	if (next && fclose(next))
		handed = false;
	EXPECT_TRUE(handed) TH_LOG("%s: %s: %s", c->name, NEXT_CMDLINE, strerror(errno));
	/* The boxes hold every page to the kexec; nothing else is left. */
	got = hugetlb_set_pool(HPAGE_KB, 0);
	EXPECT_EQ(REPS * pages, got)
		TH_LOG("%s: the boxes should hold %lld huge pages, the pool has %lld",
		       c->name, REPS * pages, got);
}

/* Preserves every case of G with both FDBox and LUO, REPS times. */
static void preserve(struct __test_metadata *_metadata, const struct group *g)
{
	bool scratch = !strcmp(g->regime, "scratch");
	char name[FDBOX_NAME_LEN] = "";
	int dev, lu, i, k;

	dev = ASSERT_OK(fdbox_open_dev());
	lu = open("/dev/liveupdate", O_RDWR);
	ASSERT_LE(0, lu) TH_LOG("/dev/liveupdate: %s", strerror(errno));
	for (i = 0; i < g->n; i++) {
		const struct bcase *c = &g->cases[i];

		if (skipped(c))
			continue;
		if (c->hugetlb) {
			preserve_hugetlb(_metadata, dev, g, c);
			continue;
		}
		for (k = 0; k < REPS; k++) {
			bool fdbox_first = k % 2 == 0;
			int ballast = -1, pool = -1;
			struct rep r = { 0 };

			r.fdbox_fd = ASSERT_OK(fdbox_sys(memfd_create("bench", 0)));
			r.luo_fd = ASSERT_OK(fdbox_sys(memfd_create("bench", 0)));
			/*
			 * In scratch: unmovable ballast fills all memory but
			 * scratch while both copies are written, then goes, so
			 * that both sides have somewhere to migrate to.
			 * Elsewhere: both copies allocate outside scratch.
			 */
			if (scratch) {
				ballast = fill_all_but_scratch(dev, 192 * MiB);
			} else {
				ASSERT_OK(fdbox_settle(dev, r.fdbox_fd, FDBOX_SETTLE_FUTURE, NULL));
				ASSERT_OK(fdbox_settle(dev, r.luo_fd, FDBOX_SETTLE_FUTURE, NULL));
			}
			if (c->fragmented)
				pool = ASSERT_OK(memfd_comb(2 * c->size / PAGE, dev));
			ASSERT_OK(fill_pair(r.fdbox_fd, r.luo_fd, c));
			if (pool >= 0) {
				close(pool);
				memfd_unpin();
			}
			if (ballast >= 0)
				close(ballast);
			r.fdbox_scratch = in_scratch(dev, r.fdbox_fd);
			r.luo_scratch = in_scratch(dev, r.luo_fd);
			if (!scratch) {
				ASSERT_EQ(0, r.fdbox_scratch);
				ASSERT_EQ(0, r.luo_scratch);
			}
			box_name(name, g, c, k);
			if (fdbox_first)
				preserve_fdbox(_metadata, dev, name, &r);
			preserve_luo(_metadata, lu, name, &r);
			if (!fdbox_first)
				preserve_fdbox(_metadata, dev, name, &r);

			/*
			 * LUO's metadata is 16 bytes (struct memfd_luo_folio_ser)
			 * per folio it preserved; it fills holes, so every page
			 * is in one.
			 */
			printf("# bench: stage=preserve regime=%s case=%s rep=%d first=%s "
			       "size_mib=%zu fdbox_us=%.0f add_us=%.0f luo_us=%.0f "
			       "fdbox_meta=%ld luo_meta=%lld fdbox_kib=%lld luo_kib=%lld "
			       "fdbox_scratch=%lld luo_scratch=%lld migrated=%lld\n",
			       g->regime, c->name, k, fdbox_first ? "fdbox" : "luo",
			       c->size / MiB, r.fdbox_us, r.add_us, r.luo_us, r.meta,
			       16 * (kib_of(r.luo_fd) * KiB / (c->thp ? THP : PAGE)),
			       kib_of(r.fdbox_fd), kib_of(r.luo_fd), r.fdbox_scratch,
			       r.luo_scratch, r.migrated);
			fflush(stdout);
			close(r.fdbox_fd);
			close(r.luo_fd);
		}
	}
	close(dev);
	/*
	 * LUO carries a session only while its fd is open at the kexec: a
	 * child keeps /dev/liveupdate and every session open until then.
	 */
	if (fork() == 0) {
		for (;;)
			pause();
	}
	close(lu);
}

/* Retrieves the FDBox copy of box NAME; an fd. */
static int retrieve_fdbox(struct __test_metadata *_metadata, int dev, const char *name,
			  double *us)
{
	double t0;
	int box, fd;

	box = ASSERT_OK(fdbox_open(dev, name, FDBOX_OPEN_INCOMING));
	t0 = now_us();
	fd = ASSERT_OK(fdbox_retrieve(box, "ram"));
	*us = now_us() - t0;
	close(box);
	return fd;
}

/* Retrieves the LUO copy of session NAME; an fd. */
static int retrieve_luo(struct __test_metadata *_metadata, int lu, const char *name,
			double *us)
{
	struct liveupdate_ioctl_retrieve_session rs = { .size = sizeof(rs) };
	struct liveupdate_session_retrieve_fd rf = { .size = sizeof(rf) };
	struct liveupdate_session_finish fin = { .size = sizeof(fin) };
	double t0;

	memcpy(rs.name, name, sizeof(rs.name));
	ASSERT_OK(fdbox_raw(lu, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &rs));
	rf.token = 1;
	t0 = now_us();
	ASSERT_OK(fdbox_raw(rs.fd, LIVEUPDATE_SESSION_RETRIEVE_FD, &rf));
	*us = now_us() - t0;
	ASSERT_OK(fdbox_raw(rs.fd, LIVEUPDATE_SESSION_FINISH, &fin));
	close(rs.fd);
	return rf.fd;
}

/* The size in MiB the stage before handed over for hugetlb case C of G, or -1. */
static long long handed_over_mib(const struct group *g, const struct bcase *c)
{
	char key[96];
	const char *at;
	long long mib = -1;

	snprintf(key, sizeof(key), " fdbox.bench.hugetlb.%s.%s=", g->regime, c->name);
	at = strstr(cmdline, key);
	if (at && sscanf(at + strlen(key), "%lld", &mib) != 1)
		mib = -1;
	return mib;
}

/* Discards whatever is left of hugetlb case C of G, so that its memory goes back. */
static void discard_hugetlb(int dev, const struct group *g, const struct bcase *c)
{
	char name[FDBOX_NAME_LEN] = "";
	int k, box;

	for (k = 0; k < REPS; k++) {
		box_name(name, g, c, k);
		box = fdbox_open(dev, name, FDBOX_OPEN_INCOMING);
		if (box < 0)
			continue;
		fdbox_discard(box, NULL);
		close(box);
	}
}

/*
 * Retrieves repetition K of hugetlb case C of G, of SIZE bytes, with a pool
 * of a memfd's worth free: timed as retrieve_fdbox() times it, then every
 * byte checked, and the pool's counters, which must change as the
 * retriever's own faults would change them (as many pages in use, none more
 * in the pool), and be back as they were once the memfd is closed. A failed
 * RETRIEVE fails the row and discards the entry; the next repetition goes on.
 */
static void retrieve_hugetlb_rep(struct __test_metadata *_metadata, int dev,
				 const struct group *g, const struct bcase *c, int k, size_t size)
{
	struct hugetlb_pool base, restored, closed;
	long long pages = size / HPAGE;
	char name[FDBOX_NAME_LEN] = "";
	struct bcase sized = *c;
	uint64_t want, got = 0;
	bool pool_ok, size_ok;
	int box, fd;
	double t0, us;

	box_name(name, g, c, k);
	box = fdbox_open(dev, name, FDBOX_OPEN_INCOMING);
	EXPECT_LE(0, box) TH_LOG("%s: box %s: %s", c->name, name, fdbox_errname(box));
	if (box < 0) {
		printf("# bench-hugetlb: stage=retrieve regime=%s case=%s vs=%s rep=%d error=%d\n",
		       g->regime, c->name, c->vs, k, box);
		fflush(stdout);
		return;
	}
	hugetlb_pool_read(HPAGE_KB, &base);
	t0 = now_us();
	fd = fdbox_retrieve(box, "ram");
	us = now_us() - t0;
	hugetlb_pool_read(HPAGE_KB, &restored);
	EXPECT_LE(0, fd) TH_LOG("%s: RETRIEVE of %s: %s", c->name, name, fdbox_errname(fd));
	if (fd < 0) {
		printf("# bench-hugetlb: stage=retrieve regime=%s case=%s vs=%s rep=%d error=%d\n",
		       g->regime, c->name, c->vs, k, fd);
		fflush(stdout);
		fdbox_discard(box, NULL);
		close(box);
		return;
	}
	close(box);
	sized.size = size;
	want = expected_hash(&sized);
	ASSERT_OK(hugetlb_hash(fd, &got));
	/* All of it, in 2 MiB hugetlb pages. */
	size_ok = lseek(fd, 0, SEEK_END) == (off_t)size &&
		  kib_of(fd) == (long long)(size / KiB);
	close(fd);
	hugetlb_pool_read(HPAGE_KB, &closed);
	pool_ok = restored.nr == base.nr && restored.free == base.free - pages &&
		  restored.surplus == base.surplus &&
		  hugetlb_pool_equal(&base, &closed, "retrieved, then closed");
	printf("# bench-hugetlb: stage=retrieve regime=%s case=%s vs=%s rep=%d fdbox_us=%.0f "
	       "fdbox_ok=%d pool_ok=%d\n",
	       g->regime, c->name, c->vs, k, us, got == want && size_ok, pool_ok);
	fflush(stdout);
	EXPECT_EQ(want, got) TH_LOG("%s: FDBox's copy differs", c->name);
	EXPECT_TRUE(size_ok) TH_LOG("%s: FDBox's copy isn't %zu MiB, all of it in huge pages",
				    c->name, size / MiB);
	EXPECT_TRUE(pool_ok)
		TH_LOG("%s: hugetlb pool nr %lld -> %lld -> %lld, free %lld -> %lld -> %lld, "
		       "surplus %lld -> %lld -> %lld (at RETRIEVE, then closed): not as %lld "
		       "pages faulted in", c->name, base.nr, restored.nr, closed.nr, base.free,
		       restored.free, closed.free, base.surplus, restored.surplus,
		       closed.surplus, pages);
}

/*
 * Retrieves hugetlb case C of G, REPS times, with FDBox alone. The pool
 * holds one memfd's worth: RETRIEVE takes a free pool page for every page it
 * restores (and gives it back to the buddy allocator), on top of the
 * preserved ones, and each memfd is closed, its pages free in the pool
 * again, before the next. Set back to 0 after, the pool must empty.
 */
static void retrieve_hugetlb(struct __test_metadata *_metadata, int dev, const struct group *g,
			     const struct bcase *c)
{
	long long mib = handed_over_mib(g, c), got;
	int k;

	EXPECT_LT(0, mib) TH_LOG("%s: the stage before handed over no size: it preserved nothing",
				 c->name);
	if (mib <= 0) {
		discard_hugetlb(dev, g, c);
		return;
	}
	if (!reserve_pool(_metadata, g, c, "retrieve", mib * (long long)MiB / HPAGE)) {
		discard_hugetlb(dev, g, c);
		return;
	}
	for (k = 0; k < REPS; k++)
		retrieve_hugetlb_rep(_metadata, dev, g, c, k, mib * MiB);
	got = hugetlb_set_pool(HPAGE_KB, 0);
	EXPECT_EQ(0, got) TH_LOG("%s: %lld huge pages are left in use", c->name, got);
}

/* Retrieves every case of G with both, REPS times, checking every byte. */
static void retrieve(struct __test_metadata *_metadata, const struct group *g)
{
	char name[FDBOX_NAME_LEN] = "";
	int dev, lu, i, k;

	dev = ASSERT_OK(fdbox_open_dev());
	lu = open("/dev/liveupdate", O_RDWR);
	ASSERT_LE(0, lu) TH_LOG("/dev/liveupdate: %s", strerror(errno));
	for (i = 0; i < g->n; i++) {
		const struct bcase *c = &g->cases[i];

		if (skipped(c))
			continue;
		if (c->hugetlb) {
			retrieve_hugetlb(_metadata, dev, g, c);
			continue;
		}
		for (k = 0; k < REPS; k++) {
			bool fdbox_first = k % 2 == 0;
			uint64_t want, got_fdbox = 0, got_luo = 0;
			double t_fdbox = 0, t_luo = 0;
			int fd_fdbox = -1, fd_luo;
			struct bcase sized = *c;

			box_name(name, g, c, k);
			if (fdbox_first)
				fd_fdbox = retrieve_fdbox(_metadata, dev, name, &t_fdbox);
			fd_luo = retrieve_luo(_metadata, lu, name, &t_luo);
			if (!fdbox_first)
				fd_fdbox = retrieve_fdbox(_metadata, dev, name, &t_fdbox);

			/* The largest cases' size is what the stage before chose. */
			sized.size = lseek(fd_fdbox, 0, SEEK_END);
			want = expected_hash(&sized);
			ASSERT_OK(memfd_hash(fd_fdbox, &got_fdbox));
			ASSERT_OK(memfd_hash(fd_luo, &got_luo));
			printf("# bench: stage=retrieve regime=%s case=%s rep=%d first=%s "
			       "fdbox_us=%.0f luo_us=%.0f fdbox_ok=%d luo_ok=%d\n",
			       g->regime, c->name, k, fdbox_first ? "fdbox" : "luo",
			       t_fdbox, t_luo, got_fdbox == want, got_luo == want);
			fflush(stdout);
			EXPECT_EQ(want, got_fdbox) TH_LOG("%s: FDBox's copy differs", c->name);
			EXPECT_EQ(want, got_luo) TH_LOG("%s: LUO's copy differs", c->name);
			close(fd_fdbox);
			close(fd_luo);
		}
	}
	close(lu);
	close(dev);
}

/* The median of the 5 values from P. */
static double median5(const double *p)
{
	double v[5];
	int i, j;

	memcpy(v, p, sizeof(v));
	for (i = 1; i < 5; i++)
		for (j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return v[2];
}

/* Creates box NAME with one page of memfd; the box fd. */
static int one_page_box(struct __test_metadata *_metadata, int dev, const char *name, int seed)
{
	int box, fd;

	box = ASSERT_OK(fdbox_create(dev, name));
	fd = ASSERT_OK(fdbox_sys(memfd_create("seal", 0)));
	ASSERT_OK(memfd_fill(fd, 0, PAGE, seed));
	ASSERT_OK(fdbox_add(box, fd, "ram"));
	close(fd);
	return box;
}

/*
 * The time of a SEAL of a box of one page with 0, 100 and SEAL_BOXES - 5
 * boxes sealed before it, each the median of 5 SEALs in a row (the first
 * SEAL of all, which sets things up, is a warm-up apart); then CANCEL with
 * every box sealed and with only 5 left, likewise. Nothing is left.
 */
static void seal_scaling(struct __test_metadata *_metadata)
{
	static double seal_us[SEAL_BOXES], cancel_us[SEAL_BOXES];
	char name[FDBOX_NAME_LEN];
	double t0;
	int dev, i, box;

	dev = ASSERT_OK(fdbox_open_dev());
	box = one_page_box(_metadata, dev, "bench-seal-warmup", 0);
	ASSERT_OK(fdbox_seal(box));
	ASSERT_OK(fdbox_cancel(box));
	close(box);
	for (i = 0; i < SEAL_BOXES; i++) {
		snprintf(name, sizeof(name), "bench-seal-%d", i);
		box = one_page_box(_metadata, dev, name, i);
		t0 = now_us();
		ASSERT_OK(fdbox_seal(box));
		seal_us[i] = now_us() - t0;
		close(box);
	}
	for (i = SEAL_BOXES - 1; i >= 0; i--) {
		snprintf(name, sizeof(name), "bench-seal-%d", i);
		box = ASSERT_OK(fdbox_open(dev, name, FDBOX_OPEN_OUTGOING));
		t0 = now_us();
		ASSERT_OK(fdbox_cancel(box));
		cancel_us[i] = now_us() - t0;
		close(box);
	}
	printf("# bench-seal: boxes=%d seal_1_us=%.0f seal_100_us=%.0f seal_last_us=%.0f "
	       "cancel_all_us=%.0f cancel_few_us=%.0f\n", SEAL_BOXES, median5(seal_us),
	       median5(seal_us + 100), median5(seal_us + SEAL_BOXES - 5),
	       median5(cancel_us + SEAL_BOXES - 5), median5(cancel_us));
	fflush(stdout);
	close(dev);
}

/*
 * The largest size at which every case fits, REPS times, outside KHO
 * scratch, where preserved memory must be: FDBox's and LUO's copies of the
 * 4 KiB and THP cases, FDBox's of the hugetlb case, and one memfd more for
 * the pool the next stage's RETRIEVE of a hugetlb memfd takes a page of for
 * every page it restores, while the preserved pages are still there. All
 * the same size, so that the hugetlb row compares with the THP row.
 */
static void size_largest(void)
{
	long long avail = (fdbox_meminfo_kb("MemAvailable") - fdbox_meminfo_kb("CmaFree")) * KiB;
	size_t copies = 0, each, i;
	bool hugetlb = false;

	for (i = 0; i < ARRAY_SIZE(largest); i++) {
		copies += (largest[i].hugetlb ? 1 : 2) * REPS;
		hugetlb |= largest[i].hugetlb;
	}
	copies += hugetlb;
	each = avail > (long long)(512 * MiB) ? (avail - 512 * MiB) / copies : 64 * MiB;
	each = each / (64 * MiB) * (64 * MiB);
	if (each > 1024 * MiB)
		each = 1024 * MiB;
	if (each < 64 * MiB)
		each = 64 * MiB;
	for (i = 0; i < ARRAY_SIZE(largest); i++)
		largest[i].size = each;
}

static int stage;

FIXTURE(bench) {};
FIXTURE_SETUP(bench) {}
FIXTURE_TEARDOWN(bench) {}

TEST_F_TIMEOUT(bench, fdbox_vs_luo, 3600)
{
	int fd = open("/proc/cmdline", O_RDONLY);

	ASSERT_LE(0, fd);
	/* From the second byte: every word has a space before it (handed_over_mib()). */
	cmdline[0] = ' ';
	ASSERT_LT(0, read(fd, cmdline + 1, sizeof(cmdline) - 2));
	close(fd);
	if (strstr(cmdline, "fdbox.bench.case="))
		sscanf(strstr(cmdline, "fdbox.bench.case=") + strlen("fdbox.bench.case="),
		       "%31s", only_case);
	if (strstr(cmdline, "fdbox.bench=pressure")) {
		groups = pressure_run;
		n_groups = ARRAY_SIZE(pressure_run);
	} else if (strstr(cmdline, "fdbox.bench=vcpus")) {
		snprintf(vcpus_run[0].regime, sizeof(vcpus_run[0].regime), "%ldvcpu",
			 sysconf(_SC_NPROCESSORS_ONLN));
		groups = vcpus_run;
		n_groups = ARRAY_SIZE(vcpus_run);
	}
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE(FDBOX_MEMFD_MODULE);
	if (stage > 1 && stage - 2 < n_groups)
		retrieve(_metadata, &groups[stage - 2]);
	if (stage == 1 && groups == ample_run && !only_case[0])
		seal_scaling(_metadata);
	if (stage - 1 < n_groups) {
		if (!strcmp(groups[stage - 1].regime, "largest"))
			size_largest();
		preserve(_metadata, &groups[stage - 1]);
	}
}

int main(int argc, char **argv)
{
	char *args[] = { argv[0], NULL };

	if (argc == 2 && !strcmp(argv[1], "-l"))
		return test_harness_run(argc, argv);
	if (argc != 3 || strcmp(argv[1], "-s") || atoi(argv[2]) < 1 ||
	    atoi(argv[2]) > LAST_STAGE) {
		fprintf(stderr, "usage: %s -s 1..%d | -l\n", argv[0], LAST_STAGE);
		return KSFT_FAIL;
	}
	stage = atoi(argv[2]);
	return test_harness_run(1, args);
}
