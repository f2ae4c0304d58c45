// SPDX-License-Identifier: GPL-2.0
/*
 * The mm side of fdbox_memfd: the page-cache walk, folio references and
 * migration, KHO preservation, and the zero-copy insertion of preserved
 * folios into a new memfd. These need shmem and folio inlines and mm
 * internals that have no Rust abstraction; fdbox_memfd_main.rs sequences
 * them and owns all state.
 */
#include <linux/bitops.h>
#include <linux/folio_batch.h>
#include <linux/fs.h>
#include <linux/hugetlb.h>
#include <linux/kexec_handover.h>
#include <linux/memcontrol.h>
#include <linux/memfd.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/rcupdate_wait.h>
#include <linux/sched/signal.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/swap.h>
#include <linux/workqueue.h>
#include <uapi/linux/memfd.h>

#include "fdbox_memfd_mm.h"

/* What memfd_create() puts before the name a program gives. */
#define MEMFD_PREFIX "memfd:"

/* The kernel's internal shmem mount, where memfd_create() makes its files. */
static struct vfsmount *memfd_mnt;

/*
 * Learns where memfd_create() puts its files, from a memfd of our own: the
 * internal shmem mount is private to mm/shmem.c.
 */
int fdbox_memfd_setup(void)
{
	struct file *probe = memfd_alloc_file(MEMFD_PREFIX "fdbox", 0);

	if (IS_ERR(probe))
		return PTR_ERR(probe);
	memfd_mnt = probe->f_path.mnt;
	fput(probe);
	return 0;
}

int fdbox_memfd_kind(struct file *file)
{
	struct dentry *dentry = file->f_path.dentry;
	bool hugetlb = is_file_hugepages(file);

	/*
	 * A file memfd_create() made: unlinked, without a parent directory
	 * (alloc_file_pseudo()), and named "memfd:...". A shmem memfd also
	 * lives on the internal shmem mount, which no user can mount: an
	 * unlinked tmpfs file named "memfd:x" is no memfd. The name is read
	 * only once the file is known to be unlinked, hence stable.
	 */
	if ((!hugetlb && !shmem_file(file)) || file_inode(file)->i_nlink ||
	    !IS_ROOT(dentry))
		return FDBOX_MEMFD_OTHER;
	if (!hugetlb && file->f_path.mnt != READ_ONCE(memfd_mnt))
		return FDBOX_MEMFD_OTHER;
	if (strncmp(dentry->d_name.name, MEMFD_PREFIX, strlen(MEMFD_PREFIX)))
		return FDBOX_MEMFD_OTHER;
	return hugetlb ? FDBOX_MEMFD_HUGETLB : FDBOX_MEMFD_SHMEM;
}

/* The name without its prefix. An unlinked memfd can't be renamed. */
const char *fdbox_memfd_name(struct file *file)
{
	return (const char *)file->f_path.dentry->d_name.name +
	       strlen(MEMFD_PREFIX);
}

/*
 * Freezes the size: no grow, shrink, fallocate or hole punch (-EPERM). A
 * frozen memfd is preserved already, by FDBox or by LUO: -EBUSY.
 *
 * It also makes the mapping unevictable, as SHM_LOCK does, so that reclaim
 * can't move a page to swap from now on: a page-cache walk can't see a page
 * in swap, and SEAL must see every page. *@was_unevictable says what to put
 * back at thaw. A page on its way to swap already is caught by the caller's
 * check of the swapped count after its walk.
 *
 * A user can hold i_rwsem for as long as it likes (a write() from a buffer
 * whose fault is never answered): the wait for it is killable.
 */
int fdbox_memfd_freeze(struct file *file, bool *was_unevictable)
{
	struct inode *inode = file_inode(file);
	int err = 0;

	if (inode_lock_killable(inode))
		return -EINTR;
	if (is_file_hugepages(file)) {
		/* Never reclaimed: nothing to put back at thaw. */
		*was_unevictable = true;
		if (HUGETLBFS_I(inode)->flags & HUGETLBFS_F_FROZEN)
			err = -EBUSY;
		else
			hugetlbfs_freeze(inode, true);
	} else if (SHMEM_I(inode)->flags & SHMEM_F_MAPPING_FROZEN) {
		err = -EBUSY;
	} else {
		shmem_freeze(inode, true);
		*was_unevictable = mapping_unevictable(file->f_mapping);
		mapping_set_unevictable(file->f_mapping);
	}
	inode_unlock(inode);
	return err;
}

/* Puts the folios reclaim set aside back on the evictable lists. */
static void release_unevictable(struct address_space *mapping)
{
	struct folio_batch fbatch;
	pgoff_t index = 0;

	folio_batch_init(&fbatch);
	while (filemap_get_folios(mapping, &index, ~0UL, &fbatch)) {
		check_move_unevictable_folios(&fbatch);
		folio_batch_release(&fbatch);
		cond_resched();
	}
}

void fdbox_memfd_thaw(struct file *file, bool was_unevictable)
{
	struct inode *inode = file_inode(file);

	inode_lock(inode);
	if (is_file_hugepages(file)) {
		hugetlbfs_freeze(inode, false);
		inode_unlock(inode);
		return;
	}
	shmem_freeze(inode, false);
	if (!was_unevictable)
		mapping_clear_unevictable(file->f_mapping);
	inode_unlock(inode);
	if (!was_unevictable)
		release_unevictable(file->f_mapping);
}

/* Forbidding waits killably, as a freeze does; allowing again can't fail. */
int fdbox_memfd_forbid_new(struct file *file, bool forbid)
{
	struct inode *inode = file_inode(file);

	if (!forbid)
		inode_lock(inode);
	else if (inode_lock_killable(inode))
		return -EINTR;
	if (is_file_hugepages(file))
		hugetlb_forbid_new_folios(inode, forbid);
	else
		shmem_forbid_new_folios(inode, forbid);
	inode_unlock(inode);
	return 0;
}

u64 fdbox_memfd_size(struct file *file)
{
	return i_size_read(file_inode(file));
}

u64 fdbox_memfd_pos(struct file *file)
{
	return READ_ONCE(file->f_pos);
}

u64 fdbox_memfd_swapped(struct file *file)
{
	/* hugetlb folios are never swapped out. */
	if (is_file_hugepages(file))
		return 0;
	return READ_ONCE(SHMEM_I(file_inode(file))->swapped);
}

/*
 * Whether a hugetlb memfd's pages are gigantic (1 GiB on x86): larger than
 * the buddy allocator hands out, so that only a reservation at boot or
 * alloc_contig_pages() can put one in a pool.
 */
bool fdbox_memfd_gigantic(struct file *file)
{
	return is_file_hugepages(file) && hstate_is_gigantic(hstate_file(file));
}

/* log2 of a hugetlb memfd's huge page size; 0 for a shmem memfd. */
u8 fdbox_memfd_huge_shift(struct file *file)
{
	return is_file_hugepages(file) ? huge_page_shift(hstate_file(file)) : 0;
}

int fdbox_memfd_seals(struct file *file)
{
	return memfd_get_seals(file);
}

static void fill_slot(struct fdbox_memfd_slot *slot, struct folio *folio)
{
	slot->folio = folio;
	slot->index = folio->index;
	slot->pfn = folio_pfn(folio);
	slot->order = folio_order(folio);
}

/*
 * Hands out up to FDBOX_MEMFD_BATCH folios of the page cache that meet page
 * indices *start to @end - 1, each with a reference the caller now owns, and
 * moves *start past them. Holes are skipped; 0 means none is left. The first
 * folio may begin before *start.
 */
unsigned int fdbox_memfd_grab(struct file *file, u64 *start, u64 end,
			      struct fdbox_memfd_slot *slots)
{
	struct folio_batch fbatch;
	pgoff_t index = *start;
	unsigned int i, nr;

	BUILD_BUG_ON(FDBOX_MEMFD_BATCH != FOLIO_BATCH_SIZE);
	if (index == (pgoff_t)-1 || index >= end)
		return 0;
	folio_batch_init(&fbatch);
	nr = filemap_get_folios(file->f_mapping, &index, min_t(u64, end - 1, (pgoff_t)-1),
				&fbatch);
	for (i = 0; i < nr; i++)
		fill_slot(&slots[i], fbatch.folios[i]);
	*start = index;
	return nr;
}

/*
 * Whether the folios below @file's size are exactly those the caller holds,
 * in file order: @next_held(@ctx, folio) says whether @folio is the next one
 * the caller holds. A walk under RCU, without taking references: the cheap
 * check, at SEAL, that no hole filled since ADD. A swap entry below the size
 * also makes it false.
 */
bool fdbox_memfd_only_held(struct file *file,
			   bool (*next_held)(void *ctx, struct folio *folio),
			   void *ctx)
{
	struct address_space *mapping = file->f_mapping;
	pgoff_t end = DIV_ROUND_UP(i_size_read(file_inode(file)), PAGE_SIZE);
	XA_STATE(xas, &mapping->i_pages, 0);
	struct folio *folio;
	bool only_held = true;

	if (!end)
		return true;
	rcu_read_lock();
	xas_for_each(&xas, folio, end - 1) {
		if (xas_retry(&xas, folio))
			continue;
		if (xa_is_value(folio) || !next_held(ctx, folio)) {
			only_held = false;
			break;
		}
		if (need_resched()) {
			xas_pause(&xas);
			cond_resched_rcu();
		}
	}
	rcu_read_unlock();
	return only_held;
}

/* Zeroes a folio fallocated but never written: it holds stale memory. */
static bool zero_if_unwritten(struct folio *folio)
{
	bool zeroed = false;

	if (folio_test_uptodate(folio))
		return false;
	folio_lock(folio);
	if (!folio_test_uptodate(folio)) {
		folio_zero_range(folio, 0, folio_size(folio));
		flush_dcache_folio(folio);
		folio_mark_uptodate(folio);
		zeroed = true;
	}
	folio_unlock(folio);
	return zeroed;
}

/*
 * Replaces slots[i..j) (consecutive in the file) by the same range pinned
 * through memfd_pin_folios(), which migrates whatever can't stay pinned, as
 * LUO's path does; the pins become plain references. On error the range
 * holds no reference and its folios are NULL.
 */
static int migrate_span(struct file *file, struct fdbox_memfd_slot *slots,
			unsigned int i, unsigned int j)
{
	struct folio *folios[FDBOX_MEMFD_BATCH];
	struct folio *first = slots[i].folio, *last = slots[j - 1].folio;
	loff_t start = folio_pos(first);
	loff_t end = min_t(loff_t, folio_pos(last) + folio_size(last),
			   i_size_read(file_inode(file))) - 1;
	unsigned int k;
	pgoff_t offset;
	long nr;

	/* Our references would make the migration fail. */
	for (k = i; k < j; k++) {
		folio_put(slots[k].folio);
		slots[k].folio = NULL;
	}
	nr = memfd_pin_folios(file, start, end, folios, j - i, &offset);
	if (nr < 0)
		return nr;
	/*
	 * Migration splits a large folio it can't move whole; the pins then
	 * stop short of the span. Let the caller retry rather than hold only
	 * part of it.
	 */
	if (nr != j - i || folio_next_index(folios[nr - 1]) <= (end >> PAGE_SHIFT)) {
		unpin_folios(folios, nr);
		return -EAGAIN;
	}
	for (k = i; k < j; k++) {
		folio_get(folios[k - i]);
		unpin_folio(folios[k - i]);
		fill_slot(&slots[k], folios[k - i]);
	}
	return 0;
}

/*
 * Makes @n grabbed folios, in ascending file order, safe to hand over. A
 * folio in KHO scratch (CMA) or ZONE_MOVABLE would be overwritten by the next
 * kernel: each span of consecutive folios holding some is migrated out at
 * once, and the new folios take their slots, referenced. A folio fallocated
 * but never written is zeroed. On error no folio of the batch is referenced
 * any more.
 */
int fdbox_memfd_settle(struct file *file, struct fdbox_memfd_slot *slots,
		       unsigned int n, unsigned int *migrated,
		       unsigned int *zeroed)
{
	unsigned int i = 0, j, last, k;
	int err;

	*migrated = 0;
	*zeroed = 0;
	if (WARN_ON_ONCE(n > FDBOX_MEMFD_BATCH))
		return -EINVAL;
	while (i < n) {
		if (folio_is_longterm_pinnable(slots[i].folio)) {
			i++;
			continue;
		}
		/* The consecutive folios from i, up to the last unpinnable. */
		last = i;
		for (j = i + 1; j < n && folio_next_index(slots[j - 1].folio) == slots[j].index; j++)
			if (!folio_is_longterm_pinnable(slots[j].folio))
				last = j;
		for (k = i; k <= last; k++)
			*migrated += !folio_is_longterm_pinnable(slots[k].folio);
		err = migrate_span(file, slots, i, last + 1);
		if (err) {
			for (k = 0; k < n; k++)
				if (slots[k].folio)
					folio_put(slots[k].folio);
			return err;
		}
		i = last + 1;
	}
	for (k = 0; k < n; k++)
		*zeroed += zero_if_unwritten(slots[k].folio);
	return 0;
}

/* How often a batch is tried again when its folios move under the migration. */
#define SETTLE_TRIES 8

/*
 * FDBOX_SETTLE_FD for a shmem memfd. @future makes the mapping allocate
 * without __GFP_MOVABLE, so that new folios come neither from KHO scratch
 * (CMA) nor from ZONE_MOVABLE; @now migrates the folios already there, span
 * by span, as ADD would. *@unsettled counts those folios as found. -EBUSY
 * once FDBox has frozen the memfd: its entry holds the folios.
 */
int fdbox_memfd_settle_file(struct file *file, bool now, bool future,
			    u64 *unsettled, u64 *migrated)
{
	struct address_space *mapping = file->f_mapping;
	struct inode *inode = file_inode(file);
	struct fdbox_memfd_slot *slots;
	unsigned int n, k, moved, zeroed;
	u64 start = 0, from;
	int err = 0, tries;

	*unsettled = 0;
	*migrated = 0;
	if (inode_lock_killable(inode))
		return -EINTR;
	if (SHMEM_I(inode)->flags & SHMEM_F_MAPPING_FROZEN)
		err = -EBUSY;
	else if (future)
		mapping_set_gfp_mask(mapping, mapping_gfp_mask(mapping) & ~__GFP_MOVABLE);
	inode_unlock(inode);
	if (err)
		return err;
	slots = kmalloc_array(FDBOX_MEMFD_BATCH, sizeof(*slots), GFP_KERNEL);
	if (!slots)
		return -ENOMEM;
	for (from = start; (n = fdbox_memfd_grab(file, &start, U64_MAX, slots)); from = start) {
		for (k = 0; k < n; k++)
			*unsettled += !folio_is_longterm_pinnable(slots[k].folio);
		for (tries = 1; now; tries++) {
			err = fdbox_memfd_settle(file, slots, n, &moved, &zeroed);
			if (!err) {
				*migrated += moved;
				break;
			}
			/* The batch holds no reference any more. */
			n = 0;
			if (err != -EAGAIN || tries == SETTLE_TRIES ||
			    fatal_signal_pending(current))
				goto out;
			start = from;
			n = fdbox_memfd_grab(file, &start, U64_MAX, slots);
			if (!n)
				break;
		}
		for (k = 0; k < n; k++)
			folio_put(slots[k].folio);
		if (fatal_signal_pending(current)) {
			err = -EINTR;
			break;
		}
		cond_resched();
	}
out:
	kfree(slots);
	return err;
}

void fdbox_memfd_put(struct folio *folio)
{
	folio_put(folio);
}

/*
 * KHO preserves a run of order-0 folios as one range of pages, so a
 * physically contiguous run costs a few radix-tree keys rather than one per
 * page; a large folio is preserved as a folio, to come back at its order.
 */
int fdbox_memfd_preserve_run(u64 pfn, u8 order, u64 count)
{
	u64 i;
	int err;

	if (!order)
		return kho_preserve_pages(pfn_to_page(pfn), count);
	for (i = 0; i < count; i++) {
		err = kho_preserve_folio(pfn_folio(pfn + (i << order)));
		if (err) {
			while (i--)
				kho_unpreserve_folio(pfn_folio(pfn + (i << order)));
			return err;
		}
	}
	return 0;
}

void fdbox_memfd_unpreserve_run(u64 pfn, u8 order, u64 count)
{
	u64 i;

	if (!order) {
		kho_unpreserve_pages(pfn_to_page(pfn), count);
		return;
	}
	for (i = 0; i < count; i++)
		kho_unpreserve_folio(pfn_folio(pfn + (i << order)));
}

/*
 * A new memfd of @size bytes at position @pos, with @pages pages charged to
 * it ahead of the folios fdbox_memfd_fill() adds. @name includes the
 * "memfd:" prefix.
 */
struct file *fdbox_memfd_create(const char *name, u64 size, u64 pos,
				u64 pages)
{
	struct file *file;
	int err;

	if (size > MAX_LFS_FILESIZE || pos > MAX_LFS_FILESIZE)
		return ERR_PTR(-EINVAL);
	/* Sealing stays allowed until the preserved seals are added. */
	file = memfd_alloc_file(name, MFD_ALLOW_SEALING);
	if (IS_ERR(file))
		return file;
	i_size_write(file_inode(file), size);
	vfs_setpos(file, pos, MAX_LFS_FILESIZE);
	err = shmem_inode_acct_blocks(file_inode(file), pages);
	if (err) {
		fput(file);
		return ERR_PTR(err);
	}
	return file;
}

/*
 * A new hugetlb memfd of @size bytes in huge pages of 2^@huge_shift bytes,
 * at position @pos. -EOPNOTSUPP if this kernel has no such huge page size.
 */
struct file *fdbox_memfd_create_huge(const char *name, u64 size, u64 pos,
				     u8 huge_shift)
{
	struct file *file;

	if (size > MAX_LFS_FILESIZE || pos > MAX_LFS_FILESIZE)
		return ERR_PTR(-EINVAL);
	if (huge_shift > MFD_HUGE_MASK)
		return ERR_PTR(-EOPNOTSUPP);
	file = memfd_alloc_file(name, MFD_ALLOW_SEALING | MFD_HUGETLB |
				      ((u32)huge_shift << MFD_HUGE_SHIFT));
	/* No hstate of that size. */
	if (file == ERR_PTR(-ENODEV))
		return ERR_PTR(-EOPNOTSUPP);
	if (IS_ERR(file))
		return file;
	if (huge_page_shift(hstate_file(file)) != huge_shift) {
		fput(file);
		return ERR_PTR(-EOPNOTSUPP);
	}
	i_size_write(file_inode(file), size);
	vfs_setpos(file, pos, MAX_LFS_FILESIZE);
	return file;
}

/*
 * Gives hugetlb memfd @file a pool folio at every index of the @n @runs, as
 * the retriever's faults would, before anything preserved is claimed: a pool
 * or limit too small for them fails here (-ENOSPC) and consumes nothing.
 * fdbox_memfd_fill() then puts the preserved folios in their place. Until
 * it has, @file must not reach userspace: those pool folios are not zeroed.
 */
int fdbox_memfd_reserve_huge(struct file *file,
			     const struct fdbox_memfd_run *runs, size_t n)
{
	size_t i;
	u64 k;
	int err;

	for (i = 0; i < n; i++) {
		for (k = 0; k < runs[i].count; k++) {
			err = hugetlb_restore_reserve(file,
					(runs[i].index >> runs[i].order) + k);
			if (err)
				return err;
			if (fatal_signal_pending(current))
				return -EINTR;
			cond_resched();
		}
	}
	return 0;
}

/*
 * Claims the next block of a run [@pfn, @end) of folios of @order from KHO,
 * after checking it against what KHO really preserved there: a block that
 * starts at @pfn, of exactly @order for a run of large folios, or of any
 * order that ends within the run for a run of order-0 pages (KHO split the
 * run into blocks as it saw fit). The payload came from another kernel and is
 * not trusted beyond that. Returns the pages claimed, with the folio (for
 * order-0 pages, the first page's) in *@first; or 0 when KHO preserved no
 * such block, and then nothing is claimed.
 */
static u64 claim_unit(u64 pfn, u64 end, u8 order, struct folio **first)
{
	int preserved = kho_preserved_order(PFN_PHYS(pfn));
	struct folio *folio;
	struct page *page;
	u64 nr;

	if (preserved < 0 || preserved >= BITS_PER_LONG - PAGE_SHIFT)
		return 0;
	nr = 1ULL << preserved;
	if (order) {
		if (preserved != order)
			return 0;
		folio = kho_restore_folio(PFN_PHYS(pfn));
		if (!folio)
			return 0;
		*first = folio;
		return nr;
	}
	if (nr > end - pfn)
		return 0;
	page = kho_restore_pages(PFN_PHYS(pfn), nr);
	if (!page)
		return 0;
	*first = page_folio(page);
	return nr;
}

/* Puts one restored folio into @file at @index; consumes the reference. */
static int insert_folio(struct file *file, struct folio *folio,
			pgoff_t index, gfp_t gfp)
{
	struct address_space *mapping = file->f_mapping;
	int err;

	if (is_file_hugepages(file)) {
		/* In place of the pool folio fdbox_memfd_reserve_huge() put there. */
		err = hugetlb_restore_folio(file, index >> folio_order(folio), folio);
		if (err)
			folio_put(folio);
		return err;
	}

	/* As the page allocator would have marked a large folio. */
	if (folio_test_large(folio))
		folio_set_large_rmappable(folio);
	__folio_set_locked(folio);
	__folio_set_swapbacked(folio);
	err = mem_cgroup_charge(folio, NULL, gfp);
	if (!err)
		err = shmem_add_to_page_cache(folio, mapping, index, NULL, gfp);
	if (!err) {
		/* Dirty, so that reclaim never drops the only copy. */
		folio_mark_uptodate(folio);
		folio_mark_dirty(folio);
		folio_add_lru(folio);
	}
	folio_unlock(folio);
	folio_put(folio);
	return err;
}

/*
 * Running @fn(@ctx, i) for every i below @n on every online CPU: the caller
 * and one unbound worker per other CPU take the next i in turn. Each charges
 * what it allocates to the caller's memory cgroup.
 */
#define SPREAD_MAX_WORKERS 16U

struct spread {
	void (*fn)(void *ctx, unsigned int i);
	void *ctx;
	unsigned int n;
	atomic_t next;
	struct mem_cgroup *memcg;
};

struct spread_worker {
	struct work_struct work;
	struct spread *spread;
};

static void spread_loop(struct spread *s)
{
	struct mem_cgroup *old = set_active_memcg(s->memcg);
	unsigned int i;

	while ((i = atomic_fetch_inc(&s->next)) < s->n)
		s->fn(s->ctx, i);
	set_active_memcg(old);
}

static void spread_work(struct work_struct *work)
{
	spread_loop(container_of(work, struct spread_worker, work)->spread);
}

unsigned int fdbox_memfd_cpus(void)
{
	return num_online_cpus();
}

/*
 * About what walking @file at ADD costs, counted in folios: a folio each, and
 * a folio more for every page that must be copied out of KHO scratch. Worked
 * out from @file's pages and what the 32 pages from 1/8, 3/8, 5/8 and 7/8 of
 * the file on hold (at most one folio each if the memfd is THP-backed, so
 * that the estimate costs little beside the walk).
 */
u64 fdbox_memfd_walk_cost(struct file *file)
{
	struct address_space *mapping = file->f_mapping;
	pgoff_t end = DIV_ROUND_UP(i_size_read(file_inode(file)), PAGE_SIZE);
	u64 cost = 0, pages = 0;
	struct folio_batch fbatch;
	unsigned int i, j, nr;

	if (!end)
		return 0;
	for (i = 0; i < 4; i++) {
		pgoff_t index = (2 * i + 1) * (end / 8);

		folio_batch_init(&fbatch);
		nr = filemap_get_folios(mapping, &index,
					min_t(pgoff_t, end - 1, index + 31), &fbatch);
		for (j = 0; j < nr; j++) {
			struct folio *folio = fbatch.folios[j];

			pages += folio_nr_pages(folio);
			cost += 1 + (folio_is_longterm_pinnable(folio) ? 0 : folio_nr_pages(folio));
		}
		folio_batch_release(&fbatch);
	}
	return pages ? div64_u64(READ_ONCE(mapping->nrpages) * cost, pages) : 0;
}

/* Page cache folios are aligned to their size: none crosses a multiple of this. */
u64 fdbox_memfd_max_folio_pages(void)
{
	return 1ULL << MAX_PAGECACHE_ORDER;
}

void fdbox_memfd_spread(unsigned int n, void (*fn)(void *ctx, unsigned int i),
			void *ctx)
{
	struct spread s = {
		.fn = fn,
		.ctx = ctx,
		.n = n,
		.next = ATOMIC_INIT(0),
		.memcg = get_mem_cgroup_from_mm(NULL),
	};
	struct spread_worker *workers = NULL;
	unsigned int nr_workers, i;

	nr_workers = min3(num_online_cpus() - 1, SPREAD_MAX_WORKERS, n ? n - 1 : 0);
	if (nr_workers)
		workers = kcalloc(nr_workers, sizeof(*workers), GFP_KERNEL);
	if (!workers)
		nr_workers = 0;
	for (i = 0; i < nr_workers; i++) {
		workers[i].spread = &s;
		INIT_WORK(&workers[i].work, spread_work);
		queue_work(system_dfl_long_wq, &workers[i].work);
	}
	spread_loop(&s);
	for (i = 0; i < nr_workers; i++)
		flush_work(&workers[i].work);
	kfree(workers);
	mem_cgroup_put(s.memcg);
}

/*
 * Filling a memfd from many runs, or freeing them, on every online CPU.
 *
 * The runs are cut into windows that the caller and one unbound worker per
 * other CPU take in turn; each claims the blocks of its window, checking
 * every one against KHO (claim_unit()), and inserts or frees them. A window
 * is FILL_WINDOW pages, aligned to the page frame. KHO cut each order-0 run
 * into the largest aligned blocks it could, so only a block that starts at a
 * run's start or at a window boundary can be larger than a window: the cursor
 * checks each such start against KHO, claims a larger block itself, and hands
 * its pages out a window at a time, already claimed. No claim may reach past
 * its window's end; one that would is refused like any other block that
 * fails its check.
 */
#define FILL_WINDOW 2048UL
/* Pages inserted between two cond_resched() within one block. */
#define FILL_RESCHED 512
/*
 * What restoring a large folio costs, in order-0 pages: its struct pages are
 * set up as one compound page, but it is charged and inserted once.
 */
#define FILL_LARGE_FOLIO_COST 8

struct fill {
	struct file *file;		/* NULL: free the runs */
	gfp_t gfp;
	struct task_struct *caller;	/* waits for the workers */
	const struct fdbox_memfd_run *runs;
	size_t n;
	struct mutex lock;		/* the cursor, and the errors */
	size_t run;			/* the next window: in this run, */
	u64 pfn;			/* from this page frame */
	struct page *block;		/* a large block claimed, not all handed out: */
	u64 block_pfn;			/* its first page frame, */
	u64 block_end;			/* and the one after its last */
	bool refused;			/* a block failed its check: hand out no more */
	int err;			/* the first insertion error: free the rest */
	size_t refused_run;
	atomic64_t claimed;		/* pages claimed */
	atomic64_t inserted;		/* pages inserted */
};

/* Records that a block of run @run failed its check: no more is claimed. */
static void fill_refused(struct fill *f, size_t run)
{
	mutex_lock(&f->lock);
	if (!f->refused) {
		WRITE_ONCE(f->refused, true);
		f->refused_run = run;
	}
	mutex_unlock(&f->lock);
}

/* Records the first insertion error: what is claimed from now on is freed. */
static void fill_failed(struct fill *f, int err)
{
	mutex_lock(&f->lock);
	if (!f->err)
		WRITE_ONCE(f->err, err);
	mutex_unlock(&f->lock);
}

/*
 * The next window: run *@run's page frames @a..@b, whose pages start at
 * *@claimed if the cursor claimed them already (part of a large block), or
 * are claimed by the caller (*@claimed NULL). False when none is left, or
 * once a block is refused.
 */
static bool next_window(struct fill *f, size_t *run, u64 *a, u64 *b,
			struct page **claimed)
{
	const struct fdbox_memfd_run *r;
	u64 end, window, start, nr;
	struct folio *first;
	bool found = false;
	int order;

	mutex_lock(&f->lock);
	/* The rest of a claimed block is handed out even then, to be freed. */
	if (f->run >= f->n || (f->refused && !f->block))
		goto out;
	r = &f->runs[f->run];
	start = f->pfn;
	end = r->pfn + (r->count << r->order);
	window = max(FILL_WINDOW, 1UL << r->order);
	*claimed = NULL;
	if (!f->block) {
		*b = min(end, round_down(start, window) + window);
		if (!r->order && start < end &&
		    (start == r->pfn || IS_ALIGNED(start, window))) {
			/* Only here can a block larger than a window start. */
			order = kho_preserved_order(PFN_PHYS(start));
			if (order < 0 || order >= BITS_PER_LONG - PAGE_SHIFT) {
				WRITE_ONCE(f->refused, true);
				f->refused_run = f->run;
				goto out;
			}
			/* Claimed here, once, and shared out a window at a time. */
			if ((1UL << order) > window) {
				nr = claim_unit(start, end, 0, &first);
				if (!nr) {
					WRITE_ONCE(f->refused, true);
					f->refused_run = f->run;
					goto out;
				}
				atomic64_add(nr, &f->claimed);
				f->block = folio_page(first, 0);
				f->block_pfn = start;
				f->block_end = start + nr;
			}
		}
	}
	if (f->block) {
		*claimed = f->block + (start - f->block_pfn);
		*b = min(f->block_end, start + window);
		if (*b >= f->block_end)
			f->block = NULL;
	}
	*run = f->run;
	*a = start;
	f->pfn = *b;
	if (*b >= end && ++f->run < f->n)
		f->pfn = f->runs[f->run].pfn;
	found = true;
out:
	mutex_unlock(&f->lock);
	return found;
}

/*
 * Inserts the @nr pages claimed from @first (one folio of @order, or @nr
 * order-0 pages) at page @index; frees them once anything failed, or the
 * caller is being killed. Returns the first insertion error.
 */
static int place_unit(struct fill *f, struct folio *first, u8 order, u64 nr,
		      pgoff_t index)
{
	struct page *page = folio_page(first, 0);
	u64 i, inserted = 0;
	int err = 0;

	for (i = 0; i < (order ? 1 : nr); i++) {
		struct folio *folio = order ? first : page_folio(page + i);

		if (!err && f->file && fatal_signal_pending(f->caller))
			err = -EINTR;
		if (err || !f->file || READ_ONCE(f->err) || READ_ONCE(f->refused)) {
			folio_put(folio);
			continue;
		}
		err = insert_folio(f->file, folio, index + i, f->gfp);
		if (!err)
			inserted += order ? nr : 1;
		if (i % FILL_RESCHED == FILL_RESCHED - 1)
			cond_resched();
	}
	atomic64_add(inserted, &f->inserted);
	return err;
}

/*
 * Claims and places the blocks of window @a..@b of run @run; none may reach
 * past @b. If the cursor claimed the window's pages already, from @claimed
 * on, places them.
 */
static void fill_window(struct fill *f, size_t run, u64 a, u64 b,
			struct page *claimed)
{
	const struct fdbox_memfd_run *r = &f->runs[run];
	struct folio *first;
	int err;
	u64 nr;

	if (claimed) {
		/* Claimed by the cursor: placed whatever happens, or they leak. */
		err = place_unit(f, page_folio(claimed), 0, b - a,
				 r->index + (a - r->pfn));
		if (err)
			fill_failed(f, err);
		return;
	}
	while (a < b && !READ_ONCE(f->refused)) {
		nr = claim_unit(a, b, r->order, &first);
		if (!nr) {
			fill_refused(f, run);
			return;
		}
		atomic64_add(nr, &f->claimed);
		err = place_unit(f, first, r->order, nr, r->index + (a - r->pfn));
		if (err)
			fill_failed(f, err);
		a += nr;
		cond_resched();
	}
}

/* One of the fill's loops: windows until none is left. */
static void fill_loop(void *ctx, unsigned int i)
{
	struct fill *f = ctx;
	struct page *claimed;
	size_t run;
	u64 a, b;

	while (next_window(f, &run, &a, &b, &claimed))
		fill_window(f, run, a, b, claimed);
}

/*
 * Puts the @n @runs into @file's page cache, or frees them if @file is NULL,
 * on every online CPU. The folios are charged to the caller's memory cgroup.
 * Each block is checked against KHO before it is claimed. Returns -EIO if a
 * block failed its check, with the index of its run in *@refused_run
 * (SIZE_MAX if not known): no more is claimed then, and what is left stays
 * reserved until the next kexec. Otherwise returns the first insertion error
 * (-EINTR if the caller is being killed), after freeing the rest of the runs
 * as far as KHO agrees. *@inserted counts the pages inserted.
 */
int fdbox_memfd_fill(struct file *file, const struct fdbox_memfd_run *runs,
		     size_t n, size_t *refused_run, u64 *inserted)
{
	struct fill f = {
		.file = file,
		.gfp = file ? mapping_gfp_mask(file->f_mapping) : GFP_KERNEL,
		.caller = current,
		.runs = runs,
		.n = n,
		.pfn = n ? runs[0].pfn : 0,
		.refused_run = SIZE_MAX,
		.claimed = ATOMIC64_INIT(0),
		.inserted = ATOMIC64_INIT(0),
	};
	u64 pages = 0, cost = 0;
	size_t i;

	*refused_run = SIZE_MAX;
	for (i = 0; i < n; i++) {
		pages += runs[i].count << runs[i].order;
		cost += runs[i].count * (runs[i].order ? FILL_LARGE_FOLIO_COST : 1);
	}
	mutex_init(&f.lock);
	/*
	 * The caller, and a helper for every two windows' worth of work: a
	 * THP-backed memfd of a few hundred folios is quicker filled alone
	 * than with helpers to wake.
	 */
	fdbox_memfd_spread(1 + min_t(u64, cost / (2 * FILL_WINDOW), SPREAD_MAX_WORKERS),
			   fill_loop, &f);

	*inserted = atomic64_read(&f.inserted);
	if (f.refused) {
		*refused_run = f.refused_run;
		return -EIO;
	}
	/* Every window was covered exactly; a shortfall would be a bug here. */
	if (WARN_ON_ONCE(atomic64_read(&f.claimed) != pages))
		return -EIO;
	return f.err;
}

/* Settles the accounting of fdbox_memfd_create() with what was inserted. */
void fdbox_memfd_finish(struct file *file, u64 pages)
{
	/* A hugetlb memfd is accounted folio by folio, as faults account it. */
	if (is_file_hugepages(file))
		return;
	shmem_recalc_inode(file_inode(file), pages, 0);
}

int fdbox_memfd_add_seals(struct file *file, u32 seals)
{
	return seals ? memfd_add_seals(file, seals) : 0;
}
