// SPDX-License-Identifier: GPL-2.0
/*
 * The VFIO and PCI side of fdbox_vfio. A VFIO device file is opaque outside
 * drivers/vfio, so it is described and reopened through the small API of
 * kernel/patches/0007; the Rust side owns the state.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/err.h>
#include <linux/file.h>
#include <linux/iommufd.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/pm_runtime.h>
#include <linux/vfio.h>

#include "fdbox_vfio_glue.h"

MODULE_IMPORT_NS("IOMMUFD");

int fdbox_vfio_kind(struct file *file)
{
	if (vfio_file_is_group(file))
		return FDBOX_VFIO_GROUP;
	if (vfio_file_is_valid(file))
		return FDBOX_VFIO_DEVICE;
	return FDBOX_VFIO_OTHER;
}

/*
 * The Device Serial Number, 0 if there is none. Config space reads all ones in
 * D3cold, where an idle vfio-pci device may be: it is resumed for the read.
 */
static int fdbox_vfio_read_dsn(struct pci_dev *pdev, u64 *serial)
{
	int ret = pm_runtime_resume_and_get(&pdev->dev);

	if (ret < 0)
		return ret;
	*serial = pci_get_dsn(pdev);
	pm_runtime_put(&pdev->dev);
	return 0;
}

int fdbox_vfio_describe(struct file *file, struct fdbox_vfio_desc *desc)
{
	struct iommufd_device_pt pt;
	struct iommufd_ctx *ictx;
	struct pci_dev *pdev;
	struct device *dev;
	int ret;

	ret = vfio_device_file_binding(file, &dev, &desc->iommufd,
				       &desc->devid, &pt);
	if (ret)
		return ret;
	if (!dev_is_pci(dev)) {
		ret = -EOPNOTSUPP;
		goto err_put;
	}
	ictx = iommufd_ctx_from_file(desc->iommufd);
	if (IS_ERR(ictx)) {
		ret = PTR_ERR(ictx);
		goto err_put;
	}
	desc->iommufd_max_id = iommufd_ctx_max_id(ictx);
	iommufd_ctx_put(ictx);
	pdev = to_pci_dev(dev);
	ret = fdbox_vfio_read_dsn(pdev, &desc->serial);
	if (ret)
		goto err_put;

	desc->ioas_id = pt.ioas_id;
	desc->hwpt_id = pt.hwpt_id;
	desc->hwpt_flags = pt.hwpt_flags;
	desc->pdev = pdev;
	desc->domain = pci_domain_nr(pdev->bus);
	desc->bus = pdev->bus->number;
	desc->devfn = pdev->devfn;
	desc->vendor = pdev->vendor;
	desc->device = pdev->device;
	desc->subsystem_vendor = pdev->subsystem_vendor;
	desc->subsystem_device = pdev->subsystem_device;
	desc->class = pdev->class;
	desc->has_serial = desc->serial != 0;
	desc->has_identity = true;
	desc->is_virtfn = pdev->is_virtfn;
	return 0;

err_put:
	put_device(dev);
	fput(desc->iommufd);
	return ret;
}

void fdbox_vfio_put(struct fdbox_vfio_desc *desc)
{
	put_device(&desc->pdev->dev);
	fput(desc->iommufd);
}

/*
 * Stops the device's DMA by clearing Bus Master in the hardware, and saves the
 * command word it found in *@saved_cmd, for fdbox_vfio_unquiesce(). vfio-pci
 * doesn't virtualize the bit: userspace reads Bus Master 0 from now on, as it
 * would after any clear. The device is resumed from runtime suspend for the
 * access; a VMM pauses its vCPUs before SEAL, so nothing writes the command
 * register meanwhile.
 */
int fdbox_vfio_quiesce(struct pci_dev *pdev, u16 *saved_cmd)
{
	int ret;

	ret = pm_runtime_resume_and_get(&pdev->dev);
	if (ret < 0)
		return ret;
	ret = pcibios_err_to_errno(pci_read_config_word(pdev, PCI_COMMAND, saved_cmd));
	if (!ret && (*saved_cmd & PCI_COMMAND_MASTER))
		pci_clear_master(pdev);
	pm_runtime_put(&pdev->dev);
	return ret;
}

/*
 * Undoes fdbox_vfio_quiesce(): writes back the command word it saved, exactly.
 * Not pci_set_master(), which turns Bus Master on whatever it was, and may
 * rewrite the latency timer of a conventional PCI device.
 */
void fdbox_vfio_unquiesce(struct pci_dev *pdev, u16 saved_cmd)
{
	if (pm_runtime_resume_and_get(&pdev->dev) < 0) {
		pci_warn(pdev, "can't resume to restore its command register\n");
		return;
	}
	if (pci_write_config_word(pdev, PCI_COMMAND, saved_cmd))
		pci_warn(pdev, "can't restore its command register\n");
	else
		pdev->is_busmaster = !!(saved_cmd & PCI_COMMAND_MASTER);
	pm_runtime_put(&pdev->dev);
}

/*
 * Whether @pdev is the function that was preserved, beyond its vendor and
 * device IDs: a VMM would hand its guest another device if its subsystem,
 * class or serial number changed (another board in the slot, or firmware
 * that presents another function).
 */
static bool fdbox_vfio_same_identity(struct pci_dev *pdev,
				     const struct fdbox_vfio_desc *desc)
{
	u64 serial;

	if (!desc->has_identity)
		return true;
	if (fdbox_vfio_read_dsn(pdev, &serial)) {
		pci_info(pdev, "can't be resumed to read its serial number\n");
		return false;
	}
	if (pdev->subsystem_vendor == desc->subsystem_vendor &&
	    pdev->subsystem_device == desc->subsystem_device &&
	    pdev->class == desc->class &&
	    serial == (desc->has_serial ? desc->serial : 0))
		return true;
	pci_info(pdev,
		 "is not the device that was preserved: subsystem %04x:%04x, class %06x, serial %016llx now; %04x:%04x, %06x, %016llx before\n",
		 pdev->subsystem_vendor, pdev->subsystem_device, pdev->class,
		 serial, desc->subsystem_vendor, desc->subsystem_device,
		 desc->class, desc->has_serial ? desc->serial : 0);
	return false;
}

struct file *fdbox_vfio_open(const struct fdbox_vfio_desc *desc,
			     struct file *iommufd)
{
	struct iommufd_device_pt pt;
	struct iommufd_ctx *ictx;
	struct pci_dev *pdev;
	struct file *file;

	pdev = pci_get_domain_bus_and_slot(desc->domain, desc->bus, desc->devfn);
	if (!pdev) {
		pr_info("no PCI device at %04x:%02x:%02x.%d\n", desc->domain,
			desc->bus, PCI_SLOT(desc->devfn), PCI_FUNC(desc->devfn));
		return ERR_PTR(-ENODEV);
	}
	if (pdev->vendor != desc->vendor || pdev->device != desc->device) {
		pci_info(pdev, "is %04x:%04x now, not %04x:%04x\n", pdev->vendor,
			 pdev->device, desc->vendor, desc->device);
		pci_dev_put(pdev);
		return ERR_PTR(-ENODEV);
	}
	if (!fdbox_vfio_same_identity(pdev, desc)) {
		pci_dev_put(pdev);
		return ERR_PTR(-ENODEV);
	}
	ictx = iommufd_ctx_from_file(iommufd);
	if (IS_ERR(ictx)) {
		pci_dev_put(pdev);
		return ERR_CAST(ictx);
	}
	/* Before the attach allocates an automatic domain, and anything else. */
	iommufd_ctx_reserve_ids(ictx, desc->iommufd_max_id);
	iommufd_ctx_put(ictx);
	pt = (struct iommufd_device_pt){
		.ioas_id = desc->ioas_id,
		.hwpt_id = desc->hwpt_id,
		.hwpt_flags = desc->hwpt_flags,
	};
	file = vfio_device_open_bound(&pdev->dev, iommufd, desc->devid, &pt);
	if (IS_ERR(file))
		pci_info(pdev, "can't reopen through VFIO: %pe\n", file);
	pci_dev_put(pdev);
	return file;
}
