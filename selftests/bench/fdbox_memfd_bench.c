// SPDX-License-Identifier: GPL-2.0
/*
 * make bench's guest program: FDBox's memfd path against LUO's, on identical
 * memfds, in the same VM run, across real KHO kexecs.
 *
 * Stage N preserves one group of cases with both (FDBox: ADD + SEAL of a box
 * per memfd; LUO: PRESERVE_FD into a session per memfd); stage N + 1
 * retrieves them with both, checks every byte, and preserves the next group.
 * make bench boots two VMs:
 *
 *   fdbox.bench=ample, a small KHO scratch, three stages:
 *     "ample"    64 MiB and 256 MiB, 4 KiB pages and THP, and a sparse
 *                256 MiB memfd with 16 MiB written
 *     "largest"  the largest pair the VM's memory allows, 4 KiB and THP
 *   fdbox.bench=pressure, a large KHO scratch, two stages:
 *     "pressure" 64 MiB and 256 MiB, 4 KiB pages and THP, made while memory
 *                is short, so that many of their folios sit in scratch
 *
 * Each measurement is a "# bench: key=value ..." line; scripts/bench.sh
 * joins the lines of both stages and prints the table with the ratios.
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

#define LAST_STAGE 3

_Static_assert(FDBOX_NAME_LEN == LIVEUPDATE_SESSION_NAME_LENGTH, "one name for both");
#define THP (2 * MiB)

struct bcase {
	const char *name;
	size_t size;
	bool thp;
	size_t written;		/* 0: all of it */
};

/* "warmup" runs each path once before the cases; it is not in the table. */
static const struct bcase ample[] = {
	{ "warmup", 4 * MiB },
	{ "64M-4K", 64 * MiB }, { "64M-THP", 64 * MiB, true },
	{ "256M-4K", 256 * MiB }, { "256M-THP", 256 * MiB, true },
	{ "sparse-256M", 256 * MiB, false, 16 * MiB },
};

static struct bcase largest[] = {
	{ "largest-4K", 0 }, { "largest-THP", 0, true },
};

static const struct bcase pressure[] = {
	{ "warmup", 4 * MiB },
	{ "64M-4K", 64 * MiB }, { "64M-THP", 64 * MiB, true },
	{ "256M-4K", 256 * MiB }, { "256M-THP", 256 * MiB, true },
};

struct group {
	const char *regime;
	const struct bcase *cases;
	int n;
};

/* The groups of each run, one per stage: fdbox.bench=ample|pressure. */
static const struct group ample_run[] = {
	{ "ample", ample, ARRAY_SIZE(ample) },
	{ "largest", largest, ARRAY_SIZE(largest) },
};

static const struct group pressure_run[] = {
	{ "pressure", pressure, ARRAY_SIZE(pressure) },
};

static const struct group *groups = ample_run;
static int n_groups = ARRAY_SIZE(ample_run);

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

static void box_name(char *buf, const struct group *g, const struct bcase *c)
{
	snprintf(buf, FDBOX_NAME_LEN, "bench-%s-%s", g->regime, c->name);
}

/* Bytes of the outgoing hand-over blob. */
static long blob_bytes(void)
{
	char buf[65536];
	long total = 0;
	ssize_t n;
	int fd = open("/sys/kernel/debug/fdbox/outgoing", O_RDONLY);

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	close(fd);
	return total;
}

static long long kib_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? -1 : (long long)st.st_blocks / 2;
}

/*
 * Anonymous ballast that leaves about LEAVE bytes free, so that what is
 * allocated next comes partly from KHO scratch (CMA), which the allocator
 * uses for movable memory once it holds much of what is free. NULL if none is
 * needed or it can't be had.
 */
static void *squeeze(size_t leave, size_t *len)
{
	long long free_b = fdbox_meminfo_kb("MemFree") * KiB;
	void *p;

	*len = 0;
	if (free_b <= (long long)leave)
		return NULL;
	*len = free_b - leave;
	p = mmap(NULL, *len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED) {
		*len = 0;
		return NULL;
	}
	return p;
}

/* Preserves every case of G with both FDBox and LUO. */
static void preserve(struct __test_metadata *_metadata, const struct group *g)
{
	struct liveupdate_ioctl_create_session cs = { .size = sizeof(cs) };
	struct liveupdate_session_preserve_fd pf = { .size = sizeof(pf) };
	bool pressure = !strcmp(g->regime, "pressure");
	int dev, lu, i, fdbox_fd[8], luo_fd[8];
	char name[FDBOX_NAME_LEN] = "";

	dev = ASSERT_OK(fdbox_open_dev());
	lu = open("/dev/liveupdate", O_RDWR);
	ASSERT_LE(0, lu) TH_LOG("/dev/liveupdate: %s", strerror(errno));
	for (i = 0; i < g->n; i++) {
		fdbox_fd[i] = ASSERT_OK(fdbox_sys(memfd_create("bench", 0)));
		luo_fd[i] = ASSERT_OK(fdbox_sys(memfd_create("bench", 0)));
	}
	for (i = 0; i < g->n; i++) {
		const struct bcase *c = &g->cases[i];
		size_t ballast_len = 0;
		void *ballast = NULL;

		/*
		 * Under pressure, each pair is written with little more than
		 * its size free, so that part of it lands in KHO scratch; then
		 * the ballast goes, so that both paths have somewhere to
		 * migrate to.
		 */
		if (pressure)
			ballast = squeeze(2 * c->size + 384 * MiB, &ballast_len);
		ASSERT_OK(fill_pair(fdbox_fd[i], luo_fd[i], c));
		if (ballast)
			munmap(ballast, ballast_len);
		long long migrated = memfd_stat("migrated");
		long blob = blob_bytes();
		double t0, t_add, t_fdbox, t_luo;
		int box;

		box_name(name, g, c);
		box = ASSERT_OK(fdbox_create(dev, name));
		t0 = now_us();
		ASSERT_OK(fdbox_add(box, fdbox_fd[i], "ram"));
		t_add = now_us() - t0;
		ASSERT_OK(fdbox_seal(box));
		t_fdbox = now_us() - t0;
		close(box);

		memcpy(cs.name, name, sizeof(cs.name));
		ASSERT_OK(fdbox_raw(lu, LIVEUPDATE_IOCTL_CREATE_SESSION, &cs));
		pf.fd = luo_fd[i];
		pf.token = 1;
		t0 = now_us();
		ASSERT_OK(fdbox_raw(cs.fd, LIVEUPDATE_SESSION_PRESERVE_FD, &pf));
		t_luo = now_us() - t0;
		/* The session fd stays open until the kexec: see below. */

		/*
		 * LUO's metadata is 16 bytes (struct memfd_luo_folio_ser) per
		 * folio it preserved; it fills holes, so every page is in one.
		 */
		printf("# bench: stage=preserve regime=%s case=%s size_mib=%zu "
		       "fdbox_us=%.0f add_us=%.0f luo_us=%.0f fdbox_meta=%ld "
		       "luo_meta=%lld fdbox_kib=%lld luo_kib=%lld migrated=%lld\n",
		       g->regime, c->name, c->size / MiB, t_fdbox, t_add, t_luo,
		       blob_bytes() - blob,
		       16 * (kib_of(luo_fd[i]) * KiB / (c->thp ? THP : PAGE)),
		       kib_of(fdbox_fd[i]), kib_of(luo_fd[i]),
		       memfd_stat("migrated") - migrated);
		close(fdbox_fd[i]);
		close(luo_fd[i]);
	}
	fflush(stdout);
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

/* Retrieves every case of G with both, checking every byte. */
static void retrieve(struct __test_metadata *_metadata, const struct group *g)
{
	struct liveupdate_ioctl_retrieve_session rs = { .size = sizeof(rs) };
	struct liveupdate_session_retrieve_fd rf = { .size = sizeof(rf) };
	struct liveupdate_session_finish fin = { .size = sizeof(fin) };
	char name[FDBOX_NAME_LEN] = "";
	int dev, lu, i;

	dev = ASSERT_OK(fdbox_open_dev());
	lu = open("/dev/liveupdate", O_RDWR);
	ASSERT_LE(0, lu) TH_LOG("/dev/liveupdate: %s", strerror(errno));
	for (i = 0; i < g->n; i++) {
		const struct bcase *c = &g->cases[i];
		uint64_t want, got_fdbox = 0, got_luo = 0;
		double t0, t_fdbox, t_luo;
		int box, fd_fdbox, fd_luo;
		struct bcase sized = *c;

		box_name(name, g, c);
		box = ASSERT_OK(fdbox_open(dev, name, FDBOX_OPEN_INCOMING));
		t0 = now_us();
		fd_fdbox = ASSERT_OK(fdbox_retrieve(box, "ram"));
		t_fdbox = now_us() - t0;
		close(box);

		memcpy(rs.name, name, sizeof(rs.name));
		ASSERT_OK(fdbox_raw(lu, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &rs));
		rf.token = 1;
		t0 = now_us();
		ASSERT_OK(fdbox_raw(rs.fd, LIVEUPDATE_SESSION_RETRIEVE_FD, &rf));
		t_luo = now_us() - t0;
		fd_luo = rf.fd;
		ASSERT_OK(fdbox_raw(rs.fd, LIVEUPDATE_SESSION_FINISH, &fin));
		close(rs.fd);

		/* The largest cases' size is what stage 2 chose. */
		sized.size = lseek(fd_fdbox, 0, SEEK_END);
		want = expected_hash(&sized);
		ASSERT_OK(memfd_hash(fd_fdbox, &got_fdbox));
		ASSERT_OK(memfd_hash(fd_luo, &got_luo));
		printf("# bench: stage=retrieve regime=%s case=%s fdbox_us=%.0f "
		       "luo_us=%.0f fdbox_ok=%d luo_ok=%d\n", g->regime, c->name,
		       t_fdbox, t_luo, got_fdbox == want, got_luo == want);
		fflush(stdout);
		EXPECT_EQ(want, got_fdbox) TH_LOG("%s: FDBox's copy differs", c->name);
		EXPECT_EQ(want, got_luo) TH_LOG("%s: LUO's copy differs", c->name);
		close(fd_fdbox);
		close(fd_luo);
	}
	close(lu);
	close(dev);
}

/*
 * The largest pair of memfds that fits twice (FDBox's and LUO's copies)
 * outside KHO scratch, where preserved memory must be.
 */
static void size_largest(void)
{
	long long avail = (fdbox_meminfo_kb("MemAvailable") - fdbox_meminfo_kb("CmaFree")) * KiB;
	size_t each = avail > (long long)(512 * MiB) ? (avail - 512 * MiB) / 4 : 64 * MiB;

	each = each / (64 * MiB) * (64 * MiB);
	if (each > 1024 * MiB)
		each = 1024 * MiB;
	if (each < 64 * MiB)
		each = 64 * MiB;
	largest[0].size = largest[1].size = each;
}

static int stage;

FIXTURE(bench) {};
FIXTURE_SETUP(bench) {}
FIXTURE_TEARDOWN(bench) {}

TEST_F_TIMEOUT(bench, fdbox_vs_luo, 900)
{
	char cmdline[4096] = "";
	int fd = open("/proc/cmdline", O_RDONLY);

	ASSERT_LE(0, fd);
	ASSERT_LT(0, read(fd, cmdline, sizeof(cmdline) - 1));
	close(fd);
	if (strstr(cmdline, "fdbox.bench=pressure")) {
		groups = pressure_run;
		n_groups = ARRAY_SIZE(pressure_run);
	}
	ASSERT_MODULE(FDBOX_CORE_MODULE);
	ASSERT_MODULE(FDBOX_MEMFD_MODULE);
	if (stage > 1 && stage - 2 < n_groups)
		retrieve(_metadata, &groups[stage - 2]);
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
