/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VFIO and PCI side of fdbox_vfio, called from fdbox_vfio_main.rs: thin
 * wrappers of the VFIO API that kernel/patches/0007 adds, and of PCI.
 */
#ifndef FDBOX_VFIO_GLUE_H
#define FDBOX_VFIO_GLUE_H

#include <linux/types.h>

struct file;
struct pci_dev;

/* What fdbox_vfio_describe() learns of a device file. */
struct fdbox_vfio_desc {
	struct pci_dev *pdev;	/* referenced; fdbox_vfio_put() */
	struct file *iommufd;	/* referenced; fput() */
	u32 domain;
	u8 bus;
	u8 devfn;
	u16 vendor;
	u16 device;
	u32 devid;
	u32 ioas_id;		/* 0: not attached */
	u32 hwpt_id;		/* 0: an automatic domain */
	u32 hwpt_flags;		/* IOMMU_HWPT_ALLOC_* of hwpt_id */
	u32 iommufd_max_id;	/* the highest object ID in the iommufd */
	u16 subsystem_vendor;
	u16 subsystem_device;
	u32 class;		/* class, subclass, prog-if */
	u64 serial;		/* Device Serial Number, if has_serial */
	bool has_serial;
	bool has_identity;	/* the four above are known (not payload v1) */
	bool is_virtfn;		/* an SR-IOV virtual function */
};

/* What fdbox_vfio_kind() says of a file. */
enum fdbox_vfio_kind {
	FDBOX_VFIO_OTHER = 0,
	FDBOX_VFIO_DEVICE = 1,
	FDBOX_VFIO_GROUP = 2,
};

int fdbox_vfio_kind(struct file *file);
int fdbox_vfio_describe(struct file *file, struct fdbox_vfio_desc *desc);
void fdbox_vfio_put(struct fdbox_vfio_desc *desc);
int fdbox_vfio_quiesce(struct pci_dev *pdev, u16 *saved_cmd);
void fdbox_vfio_unquiesce(struct pci_dev *pdev, u16 saved_cmd);
struct file *fdbox_vfio_open(const struct fdbox_vfio_desc *desc,
			     struct file *iommufd);

#endif /* FDBOX_VFIO_GLUE_H */
