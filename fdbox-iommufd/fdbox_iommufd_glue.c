// SPDX-License-Identifier: GPL-2.0
/*
 * The iommufd side of fdbox_iommufd. iommufd's context is opaque outside
 * drivers/iommu/iommufd, so each step goes through the small API of
 * kernel/patches/0006; these wrappers turn files into contexts for the Rust
 * side, which owns the state.
 */
#include <linux/err.h>
#include <linux/file.h>
#include <linux/iommu.h>
#include <linux/iommufd.h>
#include <linux/module.h>

#include "fdbox_iommufd_glue.h"

MODULE_IMPORT_NS("IOMMUFD");

/*
 * An operator's cap on the mappings of one boxed iommufd, below the format's
 * (MAX_IOAS_MAPPINGS): each costs kernel memory while boxed, and a slot in
 * the hand-over.
 */
static unsigned int max_mappings = UINT_MAX;
module_param(max_mappings, uint, 0644);
MODULE_PARM_DESC(max_mappings,
		 "The most IOAS mappings an iommufd may have to be boxed; at most, and by default, the hand-over format's 2^20");

unsigned int fdbox_iommufd_max_mappings(void)
{
	return READ_ONCE(max_mappings);
}

/* The payload's permission bits are these (fdbox_format::iommufd). */
static_assert(IOMMU_READ == 1 && IOMMU_WRITE == 2);

bool fdbox_iommufd_is(struct file *file)
{
	struct iommufd_ctx *ictx = iommufd_ctx_from_file(file);

	if (IS_ERR(ictx))
		return false;
	iommufd_ctx_put(ictx);
	return true;
}

int fdbox_iommufd_freeze(struct file *file)
{
	struct iommufd_ctx *ictx = iommufd_ctx_from_file(file);
	int ret;

	if (IS_ERR(ictx))
		return PTR_ERR(ictx);
	ret = iommufd_ctx_freeze(ictx);
	iommufd_ctx_put(ictx);
	return ret;
}

void fdbox_iommufd_thaw(struct file *file)
{
	struct iommufd_ctx *ictx = iommufd_ctx_from_file(file);

	if (WARN_ON(IS_ERR(ictx)))
		return;
	iommufd_ctx_thaw(ictx);
	iommufd_ctx_put(ictx);
}

static int on_mapping(void *arg, const struct iommufd_ctx_mapping *map)
{
	struct fdbox_iommufd_mapping m = {
		.ioas_id = map->ioas_id,
		.prot = map->iommu_prot & (IOMMU_READ | IOMMU_WRITE),
		.iova = map->iova,
		.length = map->length,
		.file = map->file,
		.start = map->start,
	};

	/*
	 * Every mapping userspace makes is cache-coherent (conv_iommu_prot()),
	 * and the restore makes them so: one that is not was not made by
	 * either, and would not come back the same.
	 */
	if (!(map->iommu_prot & IOMMU_CACHE)) {
		pr_info("IOAS %u maps IOVA %#lx+%#lx without IOMMU_CACHE: it can't be carried\n",
			map->ioas_id, map->iova, map->length);
		return -EOPNOTSUPP;
	}
	return fdbox_iommufd_on_mapping(arg, &m);
}

static int on_other(void *arg, u32 id, enum iommufd_object_type type)
{
	return fdbox_iommufd_on_other(arg, id, type);
}

static const struct iommufd_ctx_walk_ops walk_ops = {
	.ioas = fdbox_iommufd_on_ioas,
	.mapping = on_mapping,
	.other = on_other,
};

int fdbox_iommufd_walk(struct file *file, void *arg)
{
	struct iommufd_ctx *ictx = iommufd_ctx_from_file(file);
	int ret;

	if (IS_ERR(ictx))
		return PTR_ERR(ictx);
	ret = iommufd_ctx_walk(ictx, &walk_ops, arg);
	iommufd_ctx_put(ictx);
	return ret;
}

struct file *fdbox_iommufd_create(void)
{
	return iommufd_file_create();
}

int fdbox_iommufd_ioas_create(struct file *file, u32 ioas_id)
{
	struct iommufd_ctx *ictx = iommufd_ctx_from_file(file);
	int ret;

	if (IS_ERR(ictx))
		return PTR_ERR(ictx);
	ret = iommufd_ioas_create_id(ictx, ioas_id);
	iommufd_ctx_put(ictx);
	return ret;
}

int fdbox_iommufd_map(struct file *file, u32 ioas_id, u64 iova,
		      struct file *backing, u64 start, u64 length, u32 prot)
{
	struct iommufd_ctx *ictx;
	int ret;

	if (iova > ULONG_MAX || start > ULONG_MAX || length > ULONG_MAX)
		return -EOVERFLOW;
	ictx = iommufd_ctx_from_file(file);
	if (IS_ERR(ictx))
		return PTR_ERR(ictx);
	ret = iommufd_ioas_map_file_fixed(ictx, ioas_id, iova, backing, start,
					  length, prot);
	iommufd_ctx_put(ictx);
	return ret;
}
