/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The mm side of fdbox_memfd, called from fdbox_memfd_main.rs. Each function
 * is one step that needs shmem, folio or page-cache inlines; the Rust side
 * sequences them and owns the state.
 */
#ifndef FDBOX_MEMFD_MM_H
#define FDBOX_MEMFD_MM_H

#include <linux/types.h>

struct file;
struct folio;

/* What a file is, for fdbox_memfd_kind(). */
enum fdbox_memfd_kind {
	FDBOX_MEMFD_OTHER = 0,
	FDBOX_MEMFD_SHMEM = 1,
	FDBOX_MEMFD_HUGETLB = 2,
};

/* Folios handed out by one fdbox_memfd_grab(). */
#define FDBOX_MEMFD_BATCH 31

/* A folio of a memfd, referenced, and where it is. */
struct fdbox_memfd_slot {
	struct folio *folio;
	u64 index;	/* page index in the file */
	u64 pfn;
	u8 order;
};

/* A run of a payload: @count folios of @order from page frame @pfn, at page @index. */
struct fdbox_memfd_run {
	u64 index;
	u64 pfn;
	u64 count;
	u8 order;
};

int fdbox_memfd_setup(void);
int fdbox_memfd_kind(struct file *file);
const char *fdbox_memfd_name(struct file *file);
int fdbox_memfd_freeze(struct file *file, bool *was_unevictable);
void fdbox_memfd_thaw(struct file *file, bool was_unevictable);
int fdbox_memfd_forbid_new(struct file *file, bool forbid);
u64 fdbox_memfd_size(struct file *file);
u64 fdbox_memfd_pos(struct file *file);
u64 fdbox_memfd_swapped(struct file *file);
u8 fdbox_memfd_huge_shift(struct file *file);
bool fdbox_memfd_gigantic(struct file *file);
int fdbox_memfd_seals(struct file *file);
bool fdbox_memfd_only_held(struct file *file,
			   bool (*next_held)(void *ctx, struct folio *folio),
			   void *ctx);
unsigned int fdbox_memfd_grab(struct file *file, u64 *start, u64 end,
			      struct fdbox_memfd_slot *slots);
int fdbox_memfd_settle(struct file *file, struct fdbox_memfd_slot *slots,
		       unsigned int n, unsigned int *migrated,
		       unsigned int *zeroed);
int fdbox_memfd_settle_file(struct file *file, bool now, bool future,
			    u64 *unsettled, u64 *migrated);
void fdbox_memfd_put(struct folio *folio);
int fdbox_memfd_preserve_run(u64 pfn, u8 order, u64 count);
void fdbox_memfd_unpreserve_run(u64 pfn, u8 order, u64 count);
struct file *fdbox_memfd_create(const char *name, u64 size, u64 pos,
				u64 pages);
struct file *fdbox_memfd_create_huge(const char *name, u64 size, u64 pos,
				     u8 huge_shift);
int fdbox_memfd_reserve_huge(struct file *file,
			     const struct fdbox_memfd_run *runs, size_t n);
int fdbox_memfd_fill(struct file *file, const struct fdbox_memfd_run *runs,
		     size_t n, size_t *refused_run, u64 *inserted);
unsigned int fdbox_memfd_cpus(void);
u64 fdbox_memfd_walk_cost(struct file *file);
u64 fdbox_memfd_max_folio_pages(void);
void fdbox_memfd_spread(unsigned int n, void (*fn)(void *ctx, unsigned int i),
			void *ctx);
void fdbox_memfd_finish(struct file *file, u64 pages);
int fdbox_memfd_add_seals(struct file *file, u32 seals);

#endif /* FDBOX_MEMFD_MM_H */
