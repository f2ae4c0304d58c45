// SPDX-License-Identifier: GPL-2.0
/*
 * The VFIO and PCI side of fdbox_vfio. A VFIO device file is opaque outside
 * drivers/vfio, so it is described and reopened through the small API of
 * kernel/patches/0007; the Rust side owns the state.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/err.h>
#include <linux/file.h>
#include <linux/pci.h>
#include <linux/pm_runtime.h>
#include <linux/vfio.h>

#include "fdbox_vfio_glue.h"

int fdbox_vfio_kind(struct file *file)
{
	if (vfio_file_is_group(file))
		return FDBOX_VFIO_GROUP;
	if (vfio_file_is_valid(file))
		return FDBOX_VFIO_DEVICE;
	return FDBOX_VFIO_OTHER;
}

int fdbox_vfio_describe(struct file *file, struct fdbox_vfio_desc *desc)
{
	struct pci_dev *pdev;
	struct device *dev;
	int ret;

	ret = vfio_device_file_binding(file, &dev, &desc->iommufd,
				       &desc->devid, &desc->ioas_id);
	if (ret)
		return ret;
	if (!dev_is_pci(dev)) {
		put_device(dev);
		fput(desc->iommufd);
		return -EOPNOTSUPP;
	}
	pdev = to_pci_dev(dev);
	desc->pdev = pdev;
	desc->domain = pci_domain_nr(pdev->bus);
	desc->bus = pdev->bus->number;
	desc->devfn = pdev->devfn;
	desc->vendor = pdev->vendor;
	desc->device = pdev->device;
	return 0;
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

struct file *fdbox_vfio_open(const struct fdbox_vfio_desc *desc,
			     struct file *iommufd, u32 *devid)
{
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
	file = vfio_device_open_bound(&pdev->dev, iommufd, desc->ioas_id, devid);
	if (IS_ERR(file))
		pci_info(pdev, "can't reopen through VFIO: %pe\n", file);
	pci_dev_put(pdev);
	return file;
}
