/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of the fdbox_memfd selftests: memfds built from recipes, and the
 * properties a carried memfd must keep (content, size, seals, position,
 * name, hole layout, allocated size), compared field by field.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#ifndef FDBOX_MEMFD_UTIL_H
#define FDBOX_MEMFD_UTIL_H

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)
#define PAGE ((size_t)4096)

#define FDBOX_MEMFD_MODULE "fdbox_memfd"
#define FDBOX_MEMFD_STATS "/sys/kernel/debug/fdbox_memfd/stats"
#define SHMEM_THP "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

/* One counter of fdbox_memfd's stats file, or -1. */
static inline long long memfd_stat(const char *key)
{
	char k[64];
	long long v, found = -1;
	FILE *f = fopen(FDBOX_MEMFD_STATS, "r");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", k, &v) == 2)
		if (!strcmp(k, key))
			found = v;
	fclose(f);
	return found;
}

/* Writes TEXT to the sysfs or cgroup file PATH. */
static inline int memfd_write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY), ok;

	if (fd < 0)
		return -errno;
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	close(fd);
	return ok ? 0 : -EIO;
}

/* The number in the sysfs or cgroup file PATH, or -1. */
static inline long long memfd_read_ll(const char *path)
{
	long long v = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* xorshift64*: the same bytes for the same seed in both kernels. */
static inline uint64_t memfd_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* Fills LEN bytes at OFF of FD with the stream of SEED. */
static inline int memfd_fill(int fd, off_t off, size_t len, uint64_t seed)
{
	uint64_t buf[8192], s = seed | 1;
	size_t done = 0;

	while (done < len) {
		size_t n = len - done < sizeof(buf) ? len - done : sizeof(buf);
		size_t i;

		for (i = 0; i < sizeof(buf) / 8; i++)
			buf[i] = memfd_rand(&s);
		if (pwrite(fd, buf, n, off + done) != (ssize_t)n)
			return -errno;
		done += n;
	}
	return 0;
}

/* Lets the caller run on every CPU again, after memfd_comb(). */
static inline void memfd_unpin(void)
{
	cpu_set_t all;
	int i;

	CPU_ZERO(&all);
	for (i = 0; i < CPU_SETSIZE; i++)
		CPU_SET(i, &all);
	sched_setaffinity(0, sizeof(all), &all);
}

/*
 * A memfd of 2 * PAGES pages of which every other page is then freed, in a
 * random order, while the rest stay held: the freed pages can't merge, and
 * the allocator hands them out one by one, physically scattered. The caller
 * stays on the CPU it ran on (until memfd_unpin()), whose lists of free
 * pages hold them first. DEV, if not negative, is /dev/fdbox: the memfd is
 * settled for the future first, so that its pages serve unmovable
 * allocations (the allocator keeps free pages by mobility). An fd to close
 * once the pages are used, or -errno.
 */
static inline int memfd_comb(size_t pages, int dev)
{
	struct fdbox_settle_fd settle = {
		.size = sizeof(settle), .flags = FDBOX_SETTLE_FUTURE,
	};
	uint64_t s = 0x5eed, *order;
	size_t i, j;
	int fd, err = -ENOMEM;

	cpu_set_t one;
	int cpu = sched_getcpu();

	if (cpu >= 0) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		sched_setaffinity(0, sizeof(one), &one);
	}
	fd = memfd_create("comb", 0);
	if (fd < 0)
		return -errno;
	settle.fd = fd;
	if (dev >= 0 && ioctl(dev, FDBOX_SETTLE_FD, &settle)) {
		err = -errno;
		goto fail;
	}
	order = calloc(pages, sizeof(*order));
	if (!order)
		goto fail;
	err = memfd_fill(fd, 0, 2 * pages * PAGE, 3);
	for (i = 0; i < pages; i++)
		order[i] = 2 * i + 1;
	for (i = pages; !err && i > 1; i--) {
		uint64_t t;

		j = memfd_rand(&s) % i;
		t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	for (i = 0; !err && i < pages; i++)
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      order[i] * PAGE, PAGE))
			err = -errno;
	free(order);
	if (!err)
		return fd;
fail:
	close(fd);
	return err;
}

/* A 64-bit hash of the whole content of FD (through its own mapping). */
static inline int memfd_hash(int fd, uint64_t *out)
{
	struct stat st;
	uint64_t h = 1469598103934665603ULL;
	const uint64_t *w;
	size_t i, n;

	if (fstat(fd, &st))
		return -errno;
	*out = h;
	if (!st.st_size)
		return 0;
	w = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (w == MAP_FAILED)
		return -errno;
	n = st.st_size / 8;
	for (i = 0; i < n; i++)
		h = (h ^ w[i]) * 1099511628211ULL;
	for (i = n * 8; i < (size_t)st.st_size; i++)
		h = (h ^ ((const uint8_t *)w)[i]) * 1099511628211ULL;
	munmap((void *)w, st.st_size);
	*out = h;
	return 0;
}

/* The data extents of FD, as SEEK_DATA/SEEK_HOLE show them. */
struct memfd_layout {
	int n;
	off_t ext[64][2];
};

static inline int memfd_layout(int fd, struct memfd_layout *l)
{
	char path[64];
	off_t data = 0, hole, size;
	int own;

	/* A file of its own, so that the position of FD stays. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	own = open(path, O_RDONLY);
	if (own < 0)
		return -errno;
	size = lseek(own, 0, SEEK_END);
	l->n = 0;
	while (data < size && l->n < 64) {
		data = lseek(own, data, SEEK_DATA);
		if (data < 0)
			break;
		hole = lseek(own, data, SEEK_HOLE);
		l->ext[l->n][0] = data;
		l->ext[l->n][1] = hole;
		l->n++;
		data = hole;
	}
	close(own);
	return 0;
}

/* Everything FDBox promises to keep of a memfd. */
struct memfd_props {
	long long size;
	long long pos;
	long long blocks;
	int seals;
	char name[256];
	unsigned long long hash;
	struct memfd_layout layout;
};

/*
 * The properties of FD every memfd shares, its content hashed by HASH; the
 * layout is left empty.
 */
static inline int memfd_props_hashed(int fd, struct memfd_props *p,
				     int (*hash)(int fd, uint64_t *out))
{
	char path[64];
	struct stat st;
	uint64_t h = 0;
	ssize_t n;
	int err;

	memset(p, 0, sizeof(*p));
	if (fstat(fd, &st))
		return -errno;
	p->size = st.st_size;
	p->blocks = st.st_blocks;
	p->pos = lseek(fd, 0, SEEK_CUR);
	p->seals = fcntl(fd, F_GET_SEALS);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, p->name, sizeof(p->name) - 1);
	if (n < 0)
		return -errno;
	p->name[n] = 0;
	err = hash(fd, &h);
	if (err)
		return err;
	p->hash = h;
	return 0;
}

static inline int memfd_props(int fd, struct memfd_props *p)
{
	int err = memfd_props_hashed(fd, p, memfd_hash);

	return err ? err : memfd_layout(fd, &p->layout);
}

/* Logs how A and B differ; returns whether they are equal. */
static inline bool memfd_props_equal(const struct memfd_props *a,
				     const struct memfd_props *b)
{
	bool eq = true;
	int i;

#define CMP(field, fmt)							\
	do {								\
		if (a->field != b->field) {				\
			fprintf(stderr, "# " #field ": " fmt " != " fmt "\n", \
				a->field, b->field);			\
			eq = false;					\
		}							\
	} while (0)
	CMP(size, "%lld");
	CMP(pos, "%lld");
	CMP(blocks, "%lld");
	CMP(seals, "%#x");
	CMP(hash, "%#llx");
	CMP(layout.n, "%d");
#undef CMP
	if (strcmp(a->name, b->name)) {
		fprintf(stderr, "# name: %s != %s\n", a->name, b->name);
		eq = false;
	}
	for (i = 0; eq && i < a->layout.n; i++)
		if (a->layout.ext[i][0] != b->layout.ext[i][0] ||
		    a->layout.ext[i][1] != b->layout.ext[i][1]) {
			fprintf(stderr, "# extent %d: %lld-%lld != %lld-%lld\n", i,
				(long long)a->layout.ext[i][0],
				(long long)a->layout.ext[i][1],
				(long long)b->layout.ext[i][0],
				(long long)b->layout.ext[i][1]);
			eq = false;
		}
	return eq;
}

#endif /* FDBOX_MEMFD_UTIL_H */
