/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of the fdbox_iommufd and fdbox_vfio selftests: QEMU's "edu" PCI
 * device (1234:11e8) bound to vfio-pci, reached through its VFIO cdev and an
 * iommufd, and DMA between edu's 4 KiB buffer and memory mapped into an IOAS.
 * Each returns 0 (or a count, or an fd) or -errno; none asserts anything.
 *
 * edu's traps (see /work/shared/TOOLCHAIN.md):
 * - Bus Master is off after every open of the device: without it a DMA
 *   "completes" but moves nothing and faults nothing;
 * - DMA addresses are masked to 28 bits: IOVAs stay below EDU_IOVA_LIMIT;
 * - a transfer outside edu's buffer overruns QEMU's own memory, so the DMA
 *   helpers refuse one (-EINVAL) instead of starting it;
 * - edu never reports a blocked DMA: check memory, not a status.
 *
 * Copyright (C) 2026 The FDBox authors
 */
#ifndef FDBOX_EDU_UTIL_H
#define FDBOX_EDU_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
/* What the identification register reads: version 1.0, "ed". */
#define EDU_ID 0x010000ed

/* BAR0 registers. */
#define EDU_REG_ID 0x00
#define EDU_REG_LIVENESS 0x04
#define EDU_REG_DMA_SRC 0x80
#define EDU_REG_DMA_DST 0x88
#define EDU_REG_DMA_COUNT 0x90
#define EDU_REG_DMA_CMD 0x98

/* DMA commands: bit 0 starts (and reads 1 while running), bit 1 = to RAM. */
#define EDU_DMA_RUN 0x1
#define EDU_DMA_CMD_TO_EDU 0x1
#define EDU_DMA_CMD_TO_RAM 0x3

/* edu's DMA buffer, in edu's own address space. */
#define EDU_BUF 0x40000ULL
#define EDU_BUF_SIZE 0x1000ULL

/* edu masks DMA addresses to 28 bits. */
#define EDU_IOVA_LIMIT 0x10000000ULL

/* One DMA takes ~100 ms (edu's timer); give up on one after this. */
#define EDU_DMA_TIMEOUT_NS (5 * 1000000000LL)

#define IOMMUFD_DEV "/dev/iommu"

/* Where the edu device is. */
struct edu {
	/* PCI address, e.g. "0000:00:03.0" */
	char bdf[256];
	/* its VFIO cdev, /dev/vfio/devices/vfioN */
	char cdev[PATH_MAX];
	/* its VFIO group, /dev/vfio/<iommu group number> */
	char group[PATH_MAX];
};

/* BAR0, mmap()ed from the device fd. */
struct edu_bar {
	volatile uint8_t *p;
	size_t len;
};

static inline int edu_read_sysfs_hex(const char *path, unsigned long *val)
{
	char buf[32];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = 0;
	*val = strtoul(buf, NULL, 16);
	return 0;
}

/*
 * Finds the PCI function VENDOR:DEVICE of index NTH in address order (the
 * VM has two edus, at 00:01.0 and 00:02.0): 0, -ENODEV if there is none,
 * -ENOENT if it has no VFIO cdev (not bound to vfio-pci) or no IOMMU group.
 */
static inline int pci_find_vfio(struct edu *e, unsigned long want_vendor,
				unsigned long want_device, int nth)
{
	char path[PATH_MAX], link[256], best[32] = "";
	unsigned long vendor = 0, device = 0;
	const char *slash;
	struct dirent *d;
	bool found;
	ssize_t n;
	DIR *dir;
	int i;

	memset(e, 0, sizeof(*e));
	/* The NTH: the smallest address above the (NTH - 1)th, NTH + 1 times. */
	for (i = 0; i <= nth; i++) {
		char prev[32];

		snprintf(prev, sizeof(prev), "%s", best);
		best[0] = 0;
		dir = opendir("/sys/bus/pci/devices");
		if (!dir)
			return -errno;
		while ((d = readdir(dir))) {
			if (d->d_name[0] == '.' || strlen(d->d_name) >= sizeof(best))
				continue;
			if (i && strcmp(d->d_name, prev) <= 0)
				continue;
			if (best[0] && strcmp(d->d_name, best) >= 0)
				continue;
			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", d->d_name);
			if (edu_read_sysfs_hex(path, &vendor) || vendor != want_vendor)
				continue;
			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", d->d_name);
			if (edu_read_sysfs_hex(path, &device) || device != want_device)
				continue;
			snprintf(best, sizeof(best), "%s", d->d_name);
		}
		closedir(dir);
		if (!best[0])
			return -ENODEV;
	}
	snprintf(e->bdf, sizeof(e->bdf), "%s", best);

	/* The cdev: /sys/bus/pci/devices/<bdf>/vfio-dev/vfioN. */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", e->bdf);
	dir = opendir(path);
	if (!dir)
		return -ENOENT;
	found = false;
	while (!found && (d = readdir(dir))) {
		if (strncmp(d->d_name, "vfio", 4))
			continue;
		snprintf(e->cdev, sizeof(e->cdev), "/dev/vfio/devices/%s", d->d_name);
		found = true;
	}
	closedir(dir);
	if (!found)
		return -ENOENT;

	/* The group: the number the iommu_group link ends with. */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", e->bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return -ENOENT;
	link[n] = 0;
	slash = strrchr(link, '/');
	snprintf(e->group, sizeof(e->group), "/dev/vfio/%s", slash ? slash + 1 : link);
	return 0;
}

/* The NTH edu, as pci_find_vfio() finds it. */
static inline int edu_find_nth(struct edu *e, int nth)
{
	return pci_find_vfio(e, EDU_VENDOR, EDU_DEVICE, nth);
}

/* The first edu, at 00:01.0. */
static inline int edu_find(struct edu *e)
{
	return edu_find_nth(e, 0);
}

/* What edu_find()'s error means, for a test's failure message. */
static inline const char *edu_find_error(int err)
{
	switch (err) {
	case -ENODEV:
		return "no PCI device 1234:11e8: QEMU needs -device edu (and -device intel-iommu,intremap=off)";
	case -ENOENT:
		return "edu has no VFIO cdev or IOMMU group: the kernel needs intel_iommu=on vfio_pci.ids=1234:11e8";
	default:
		return strerror(-err);
	}
}

/* The device's VFIO cdev, opened (not bound). */
static inline int edu_open_cdev(const struct edu *e)
{
	int fd = open(e->cdev, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/* VFIO_DEVICE_BIND_IOMMUFD; *devid gets the device's iommufd object ID. */
static inline int edu_bind(int cdev, int iommufd, __u32 *devid)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = iommufd,
	};

	if (ioctl(cdev, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		return -errno;
	if (devid)
		*devid = bind.out_devid;
	return 0;
}

/*
 * VFIO_DEVICE_BIND_IOMMUFD of an SR-IOV VF whose PF vfio-pci drives, with the
 * VF token the PF's user set (VFIO_DEVICE_FEATURE_PCI_VF_TOKEN): all zeros.
 */
static inline int vf_bind(int cdev, int iommufd, __u32 *devid)
{
	static const __u8 token[16];
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.flags = VFIO_DEVICE_BIND_FLAG_TOKEN,
		.iommufd = iommufd,
		.token_uuid_ptr = (uintptr_t)token,
	};

	if (ioctl(cdev, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		return -errno;
	if (devid)
		*devid = bind.out_devid;
	return 0;
}

/* VFIO_DEVICE_ATTACH_IOMMUFD_PT to PT_ID; *out_pt gets the HWPT's ID. */
static inline int edu_attach(int cdev, __u32 pt_id, __u32 *out_pt)
{
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
		.pt_id = pt_id,
	};

	if (ioctl(cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		return -errno;
	if (out_pt)
		*out_pt = attach.pt_id;
	return 0;
}

static inline int edu_device_info(int cdev, struct vfio_device_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	return ioctl(cdev, VFIO_DEVICE_GET_INFO, info) ? -errno : 0;
}

static inline int edu_region(int cdev, __u32 index, struct vfio_region_info *ri)
{
	memset(ri, 0, sizeof(*ri));
	ri->argsz = sizeof(*ri);
	ri->index = index;
	return ioctl(cdev, VFIO_DEVICE_GET_REGION_INFO, ri) ? -errno : 0;
}

/* PCI_COMMAND, through the config region. */
static inline int edu_read_command(int cdev, __u16 *cmd)
{
	struct vfio_region_info ri;
	int ret = edu_region(cdev, VFIO_PCI_CONFIG_REGION_INDEX, &ri);

	if (ret)
		return ret;
	if (pread(cdev, cmd, sizeof(*cmd), ri.offset + PCI_COMMAND) != sizeof(*cmd))
		return -EIO;
	return 0;
}

static inline int edu_write_command(int cdev, __u16 cmd)
{
	struct vfio_region_info ri;
	int ret = edu_region(cdev, VFIO_PCI_CONFIG_REGION_INDEX, &ri);

	if (ret)
		return ret;
	if (pwrite(cdev, &cmd, sizeof(cmd), ri.offset + PCI_COMMAND) != sizeof(cmd))
		return -EIO;
	return 0;
}

/*
 * Whether Bus Master is on: 1 or 0, or -errno. vfio-pci doesn't virtualize
 * the bit: this is the device's own.
 */
static inline int edu_bus_master(int cdev)
{
	__u16 cmd;
	int ret = edu_read_command(cdev, &cmd);

	return ret ? ret : !!(cmd & PCI_COMMAND_MASTER);
}

/* Turns Bus Master on (with Memory Space, for BAR0) or off. */
static inline int edu_set_bus_master(int cdev, bool on)
{
	__u16 cmd;
	int ret = edu_read_command(cdev, &cmd);

	if (ret)
		return ret;
	if (on)
		cmd |= PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY;
	else
		cmd &= ~PCI_COMMAND_MASTER;
	return edu_write_command(cdev, cmd);
}

static inline int edu_map_bar0(int cdev, struct edu_bar *bar)
{
	struct vfio_region_info ri;
	void *p;
	int ret;

	bar->p = NULL;
	bar->len = 0;
	ret = edu_region(cdev, VFIO_PCI_BAR0_REGION_INDEX, &ri);
	if (ret)
		return ret;
	if (!(ri.flags & VFIO_REGION_INFO_FLAG_MMAP) || ri.size < 0x100)
		return -EOPNOTSUPP;
	p = mmap(NULL, ri.size, PROT_READ | PROT_WRITE, MAP_SHARED, cdev, ri.offset);
	if (p == MAP_FAILED)
		return -errno;
	bar->p = p;
	bar->len = ri.size;
	return 0;
}

static inline void edu_unmap_bar0(struct edu_bar *bar)
{
	if (bar->p)
		munmap((void *)bar->p, bar->len);
	bar->p = NULL;
	bar->len = 0;
}

/* edu takes 4-byte accesses below 0x80, 4- or 8-byte ones from 0x80. */
static inline uint32_t edu_read32(const struct edu_bar *bar, size_t reg)
{
	return *(volatile uint32_t *)(bar->p + reg);
}

static inline uint64_t edu_read64(const struct edu_bar *bar, size_t reg)
{
	return *(volatile uint64_t *)(bar->p + reg);
}

static inline void edu_write64(const struct edu_bar *bar, size_t reg, uint64_t val)
{
	*(volatile uint64_t *)(bar->p + reg) = val;
}

static inline long long edu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * Runs one DMA and waits until edu clears the run bit: 0, -EBUSY if one was
 * running already, -ETIMEDOUT if it didn't finish within
 * EDU_DMA_TIMEOUT_NS. Completion says nothing about whether data moved.
 */
static inline int edu_dma(const struct edu_bar *bar, uint64_t src, uint64_t dst,
			  uint64_t count, uint64_t cmd)
{
	const struct timespec pause = { .tv_nsec = 200 * 1000 };
	long long deadline;

	if (edu_read64(bar, EDU_REG_DMA_CMD) & EDU_DMA_RUN)
		return -EBUSY;
	/* What the CPU wrote to the buffer is visible before the DMA starts. */
	__sync_synchronize();
	edu_write64(bar, EDU_REG_DMA_SRC, src);
	edu_write64(bar, EDU_REG_DMA_DST, dst);
	edu_write64(bar, EDU_REG_DMA_COUNT, count);
	edu_write64(bar, EDU_REG_DMA_CMD, cmd);
	deadline = edu_now_ns() + EDU_DMA_TIMEOUT_NS;
	while (edu_read64(bar, EDU_REG_DMA_CMD) & EDU_DMA_RUN) {
		if (edu_now_ns() > deadline)
			return -ETIMEDOUT;
		/* Only spaces the polls out; the loop waits for the device. */
		nanosleep(&pause, NULL);
	}
	__sync_synchronize();
	return 0;
}

/* A transfer must stay inside edu's buffer, and below the 28-bit mask. */
static inline bool edu_dma_ok(uint64_t edu_off, uint64_t iova, uint64_t len)
{
	return len && len <= EDU_BUF_SIZE && edu_off <= EDU_BUF_SIZE - len &&
	       iova < EDU_IOVA_LIMIT && len <= EDU_IOVA_LIMIT - iova;
}

/* RAM -> edu: LEN bytes from IOVA into edu's buffer at EDU_OFF. */
static inline int edu_dma_to_dev(const struct edu_bar *bar, uint64_t iova,
				 uint64_t edu_off, uint64_t len)
{
	if (!edu_dma_ok(edu_off, iova, len))
		return -EINVAL;
	return edu_dma(bar, iova, EDU_BUF + edu_off, len, EDU_DMA_CMD_TO_EDU);
}

/* edu -> RAM: LEN bytes from edu's buffer at EDU_OFF to IOVA. */
static inline int edu_dma_to_ram(const struct edu_bar *bar, uint64_t edu_off,
				 uint64_t iova, uint64_t len)
{
	if (!edu_dma_ok(edu_off, iova, len))
		return -EINVAL;
	return edu_dma(bar, EDU_BUF + edu_off, iova, len, EDU_DMA_CMD_TO_RAM);
}

/* iommufd. */

static inline int iommufd_open(void)
{
	int fd = open(IOMMUFD_DEV, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static inline int ioas_alloc(int iommufd, __u32 *ioas)
{
	struct iommu_ioas_alloc arg = { .size = sizeof(arg) };

	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &arg))
		return -errno;
	*ioas = arg.out_ioas_id;
	return 0;
}

/*
 * IOMMU_IOAS_MAP_FILE of LEN bytes of FD from START at the fixed IOVA; PROT
 * is IOMMU_IOAS_MAP_READABLE and/or IOMMU_IOAS_MAP_WRITEABLE.
 */
static inline int ioas_map_file(int iommufd, __u32 ioas, int fd, __u64 start,
				__u64 len, __u64 iova, __u32 prot)
{
	struct iommu_ioas_map_file arg = {
		.size = sizeof(arg),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | prot,
		.ioas_id = ioas,
		.fd = fd,
		.start = start,
		.length = len,
		.iova = iova,
	};

	return ioctl(iommufd, IOMMU_IOAS_MAP_FILE, &arg) ? -errno : 0;
}

/* IOMMU_IOAS_MAP_FILE with FIXED_IOVA | READABLE | WRITEABLE. */
static inline int ioas_map_file_rw(int iommufd, __u32 ioas, int fd, __u64 start,
				   __u64 len, __u64 iova)
{
	return ioas_map_file(iommufd, ioas, fd, start, len, iova,
			     IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE);
}

/* IOMMU_IOAS_MAP of user memory at VA (not a file), read-write, fixed IOVA. */
static inline int ioas_map_user(int iommufd, __u32 ioas, void *va, __u64 len,
				__u64 iova)
{
	struct iommu_ioas_map arg = {
		.size = sizeof(arg),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = iova,
	};

	return ioctl(iommufd, IOMMU_IOAS_MAP, &arg) ? -errno : 0;
}

/* IOMMU_IOAS_UNMAP; *unmapped (if not NULL) gets how many bytes went. */
static inline int ioas_unmap(int iommufd, __u32 ioas, __u64 iova, __u64 len,
			     __u64 *unmapped)
{
	struct iommu_ioas_unmap arg = {
		.size = sizeof(arg),
		.ioas_id = ioas,
		.iova = iova,
		.length = len,
	};

	if (ioctl(iommufd, IOMMU_IOAS_UNMAP, &arg))
		return -errno;
	if (unmapped)
		*unmapped = arg.length;
	return 0;
}

/* IOMMU_IOAS_COPY of the mapping at SRC_IOVA to the fixed DST_IOVA, read-write. */
static inline int ioas_copy(int iommufd, __u32 dst_ioas, __u32 src_ioas,
			    __u64 src_iova, __u64 len, __u64 dst_iova)
{
	struct iommu_ioas_copy arg = {
		.size = sizeof(arg),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.dst_ioas_id = dst_ioas,
		.src_ioas_id = src_ioas,
		.length = len,
		.dst_iova = dst_iova,
		.src_iova = src_iova,
	};

	return ioctl(iommufd, IOMMU_IOAS_COPY, &arg) ? -errno : 0;
}

/*
 * IOMMU_IOAS_IOVA_RANGES into R (room for CAP): the number of ranges, or
 * -errno (-EMSGSIZE if CAP is too small; -ENOENT if IOAS is no IOAS).
 */
static inline int ioas_iova_ranges(int iommufd, __u32 ioas,
				   struct iommu_iova_range *r, __u32 cap)
{
	struct iommu_ioas_iova_ranges arg = {
		.size = sizeof(arg),
		.ioas_id = ioas,
		.num_iovas = cap,
		.allowed_iovas = (uintptr_t)r,
	};

	if (ioctl(iommufd, IOMMU_IOAS_IOVA_RANGES, &arg))
		return -errno;
	return arg.num_iovas;
}

/* Whether the ranges are narrower than a fresh IOAS's: a device is attached. */
static inline bool ioas_ranges_narrowed(const struct iommu_iova_range *r, int n)
{
	return !(n == 1 && r[0].start == 0 && r[0].last == UINT64_MAX);
}

static inline int iommufd_destroy(int iommufd, __u32 id)
{
	struct iommu_destroy arg = { .size = sizeof(arg), .id = id };

	return ioctl(iommufd, IOMMU_DESTROY, &arg) ? -errno : 0;
}

/* IOMMU_HWPT_ALLOC of a paging HWPT for DEVID on PT; *out gets its ID. */
static inline int iommufd_hwpt_alloc(int iommufd, __u32 devid, __u32 pt, __u32 *out)
{
	struct iommu_hwpt_alloc arg = {
		.size = sizeof(arg),
		.dev_id = devid,
		.pt_id = pt,
		.data_type = IOMMU_HWPT_DATA_NONE,
	};

	if (ioctl(iommufd, IOMMU_HWPT_ALLOC, &arg))
		return -errno;
	*out = arg.out_hwpt_id;
	return 0;
}

/* IOMMU_GET_HW_INFO of DEVID: 0 if DEVID is a device bound to this iommufd. */
static inline int iommufd_hw_info(int iommufd, __u32 devid)
{
	struct iommu_hw_info arg = { .size = sizeof(arg), .dev_id = devid };

	return ioctl(iommufd, IOMMU_GET_HW_INFO, &arg) ? -errno : 0;
}

/*
 * The object IDs up to IOMMUFD_SCAN_MAX that are IOASes (IS_IOAS) or bound
 * devices (!IS_IOAS), found with the two queries that work on any context;
 * at most CAP are stored. The count, or -errno for an unexpected error.
 */
#define IOMMUFD_SCAN_MAX 64
static inline int iommufd_scan(int iommufd, bool is_ioas, __u32 *ids, int cap)
{
	int n = 0, ret;
	__u32 id;

	for (id = 1; id <= IOMMUFD_SCAN_MAX; id++) {
		ret = is_ioas ? ioas_iova_ranges(iommufd, id, NULL, 0) :
				iommufd_hw_info(iommufd, id);
		if (ret == -ENOENT)
			continue;
		if (ret < 0 && !(is_ioas && ret == -EMSGSIZE))
			return ret;
		if (n < cap)
			ids[n] = id;
		n++;
	}
	return n;
}

/* Test data. */

/* xorshift64*: the same bytes for the same seed, in both kernels. */
static inline void edu_pattern(void *buf, size_t len, uint64_t seed)
{
	/* A bijection of SEED, so that different seeds give different streams. */
	uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL, x = 0;
	uint8_t *p = buf;
	size_t i;

	if (!s)
		s = 1;
	for (i = 0; i < len; i++) {
		if (!(i % 8)) {
			s ^= s >> 12;
			s ^= s << 25;
			s ^= s >> 27;
			x = s * 2685821657736338717ULL;
		}
		p[i] = x >> (8 * (i % 8));
	}
}

/* A memfd of SIZE bytes, all written (so all allocated) with SEED's pattern. */
static inline int edu_memfd(const char *name, size_t size, uint64_t seed)
{
	void *p;
	int fd;

	fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, size))
		goto fail;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	edu_pattern(p, size, seed);
	munmap(p, size);
	return fd;
fail:
	{
		int err = -errno;

		close(fd);
		return err;
	}
}

/* The first offset at which A and B differ, or -1. */
static inline long edu_first_diff(const void *a, const void *b, size_t len)
{
	const uint8_t *x = a, *y = b;
	size_t i;

	for (i = 0; i < len; i++)
		if (x[i] != y[i])
			return i;
	return -1;
}

#endif /* FDBOX_EDU_UTIL_H */
