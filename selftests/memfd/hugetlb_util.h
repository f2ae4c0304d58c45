/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the hugetlb selftests share: the pool's counters, and the properties
 * of a hugetlb memfd read without faulting anything in.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#ifndef FDBOX_HUGETLB_UTIL_H
#define FDBOX_HUGETLB_UTIL_H

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "memfd_util.h"

#define HUGETLB_SYSFS "/sys/kernel/mm/hugepages"

/* Every counter of one huge page size's pool, and /proc/meminfo's. */
struct hugetlb_pool {
	long long nr, free, resv, surplus;	/* sysfs, for this size */
	long long total, mfree, rsvd, surp;	/* HugePages_* (the default size) */
	long long hugetlb_kb;			/* Hugetlb: every size */
};

static inline long long hugetlb_sysfs(long long size_kb, const char *file)
{
	char path[128];

	snprintf(path, sizeof(path), HUGETLB_SYSFS "/hugepages-%lldkB/%s", size_kb, file);
	return memfd_read_ll(path);
}

/* Sets a pool's size; the number it reached. */
static inline long long hugetlb_set_pool(long long size_kb, long long pages)
{
	char path[128], text[32];
	int err;

	snprintf(path, sizeof(path), HUGETLB_SYSFS "/hugepages-%lldkB/nr_hugepages", size_kb);
	snprintf(text, sizeof(text), "%lld", pages);
	err = memfd_write_text(path, text);
	return err ? err : hugetlb_sysfs(size_kb, "nr_hugepages");
}

static inline void hugetlb_pool_read(long long size_kb, struct hugetlb_pool *p)
{
	p->nr = hugetlb_sysfs(size_kb, "nr_hugepages");
	p->free = hugetlb_sysfs(size_kb, "free_hugepages");
	p->resv = hugetlb_sysfs(size_kb, "resv_hugepages");
	p->surplus = hugetlb_sysfs(size_kb, "surplus_hugepages");
	p->total = fdbox_meminfo_kb("HugePages_Total");
	p->mfree = fdbox_meminfo_kb("HugePages_Free");
	p->rsvd = fdbox_meminfo_kb("HugePages_Rsvd");
	p->surp = fdbox_meminfo_kb("HugePages_Surp");
	p->hugetlb_kb = fdbox_meminfo_kb("Hugetlb");
}

/*
 * Whether A - BASE_A equals B - BASE_B, counter by counter; each difference
 * is printed. With equal bases: whether A equals B.
 */
static inline bool hugetlb_same_change(const struct hugetlb_pool *base_a,
				       const struct hugetlb_pool *a,
				       const struct hugetlb_pool *base_b,
				       const struct hugetlb_pool *b,
				       const char *what)
{
	bool same = true;

#define CMP(field)							\
	do {								\
		long long da = a->field - base_a->field;		\
		long long db = b->field - base_b->field;		\
		if (da != db) {						\
			fprintf(stderr, "# %s: " #field " changed by %lld, not %lld\n", \
				what, da, db);				\
			same = false;					\
		}							\
	} while (0)
	CMP(nr);
	CMP(free);
	CMP(resv);
	CMP(surplus);
	CMP(total);
	CMP(mfree);
	CMP(rsvd);
	CMP(surp);
	CMP(hugetlb_kb);
#undef CMP
	return same;
}

static inline bool hugetlb_pool_equal(const struct hugetlb_pool *a,
				      const struct hugetlb_pool *b, const char *what)
{
	return hugetlb_same_change(a, b, a, a, what);
}

/*
 * The content hash of a hugetlb memfd, read with pread(): a hole reads as
 * zeros and stays a hole, where a mapping would fault a page into it.
 */
static inline int hugetlb_hash(int fd, uint64_t *out)
{
	static uint64_t buf[(2 << 20) / 8];
	uint64_t h = 1469598103934665603ULL;
	struct stat st;
	off_t off = 0;
	ssize_t n, i;

	if (fstat(fd, &st))
		return -errno;
	while (off < st.st_size) {
		n = pread(fd, buf, sizeof(buf), off);
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		for (i = 0; i < n / 8; i++)
			h = (h ^ buf[i]) * 1099511628211ULL;
		off += n;
	}
	*out = h;
	return 0;
}

/*
 * Everything FDBox keeps of a hugetlb memfd. hugetlbfs has no SEEK_HOLE, so
 * the hole layout is pinned by the number of pages (st_blocks) with the
 * content hash: the recipes write no zero page, so a page where a hole was,
 * or a hole where a page was, changes one or the other.
 */
static inline int hugetlb_props(int fd, struct memfd_props *p)
{
	return memfd_props_hashed(fd, p, hugetlb_hash);
}

#endif /* FDBOX_HUGETLB_UTIL_H */
