/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The iommufd side of fdbox_iommufd, called from fdbox_iommufd_main.rs: thin
 * wrappers of the iommufd API that kernel/patches/0006 adds.
 */
#ifndef FDBOX_IOMMUFD_GLUE_H
#define FDBOX_IOMMUFD_GLUE_H

#include <linux/types.h>

struct file;

/* A mapping, as fdbox_iommufd_walk() hands it to fdbox_iommufd_on_mapping(). */
struct fdbox_iommufd_mapping {
	u32 ioas_id;
	u32 prot;	/* IOMMU_READ | IOMMU_WRITE, the payload's bits */
	u64 iova;
	u64 length;
	struct file *file;	/* NULL unless file-backed; valid for the call */
	u64 start;
};

bool fdbox_iommufd_is(struct file *file);
int fdbox_iommufd_freeze(struct file *file);
void fdbox_iommufd_thaw(struct file *file);
int fdbox_iommufd_walk(struct file *file, void *arg);
struct file *fdbox_iommufd_create(void);
int fdbox_iommufd_ioas_create(struct file *file, u32 ioas_id);
int fdbox_iommufd_map(struct file *file, u32 ioas_id, u64 iova,
		      struct file *backing, u64 start, u64 length, u32 prot);

/* Implemented in Rust: fdbox_iommufd_walk()'s callbacks. */
int fdbox_iommufd_on_ioas(void *arg, u32 ioas_id);
int fdbox_iommufd_on_mapping(void *arg, const struct fdbox_iommufd_mapping *map);
int fdbox_iommufd_on_other(void *arg, u32 id, u32 type);

unsigned int fdbox_iommufd_max_mappings(void);

#endif /* FDBOX_IOMMUFD_GLUE_H */
