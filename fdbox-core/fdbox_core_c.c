// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of fdbox_core.ko: exports the handler registration (implemented
 * in Rust), serves debugfs, and wraps static inlines for the Rust half.
 */
#include <linux/debugfs.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/cred.h>
#include <linux/uidgid.h>
#include <linux/utsname.h>

#include "fdbox_core.h"

EXPORT_SYMBOL_GPL(fdbox_register_handler);
EXPORT_SYMBOL_GPL(fdbox_unregister_handler);

void *fdbox_phys_to_virt(phys_addr_t phys)
{
	return phys_to_virt(phys);
}

const char *fdbox_kernel_release(void)
{
	return init_utsname()->release;
}

/* Owners are kept as uids of the initial user namespace, as in the blob. */
u32 fdbox_current_euid(void)
{
	return from_kuid_munged(&init_user_ns, current_euid());
}

u32 fdbox_current_egid(void)
{
	return from_kgid_munged(&init_user_ns, current_egid());
}

/* A uid of the initial user namespace, as the caller sees it. */
u32 fdbox_uid_to_user(u32 uid)
{
	return from_kuid_munged(current_user_ns(), make_kuid(&init_user_ns, uid));
}

/* A gid of the initial user namespace, as the caller sees it. */
u32 fdbox_gid_to_user(u32 gid)
{
	return from_kgid_munged(current_user_ns(), make_kgid(&init_user_ns, gid));
}

struct fdbox_snapshot {
	void *data;
	size_t len;
};

/* Each open takes a snapshot, so a reader sees one consistent state. */
static int fdbox_debugfs_open(struct inode *inode, struct file *file)
{
	unsigned int kind = (uintptr_t)inode->i_private;
	struct fdbox_snapshot *snap;

	snap = kzalloc(sizeof(*snap), GFP_KERNEL);
	if (!snap)
		return -ENOMEM;
	snap->data = fdbox_debugfs_snapshot(kind, &snap->len);
	if (IS_ERR(snap->data)) {
		int err = PTR_ERR(snap->data);

		kfree(snap);
		return err;
	}
	file->private_data = snap;
	return 0;
}

static ssize_t fdbox_debugfs_read(struct file *file, char __user *buf,
				  size_t count, loff_t *ppos)
{
	struct fdbox_snapshot *snap = file->private_data;

	return simple_read_from_buffer(buf, count, ppos, snap->data, snap->len);
}

static int fdbox_debugfs_release(struct inode *inode, struct file *file)
{
	struct fdbox_snapshot *snap = file->private_data;

	kvfree(snap->data);
	kfree(snap);
	return 0;
}

static const struct file_operations fdbox_debugfs_fops = {
	.owner = THIS_MODULE,
	.open = fdbox_debugfs_open,
	.read = fdbox_debugfs_read,
	.release = fdbox_debugfs_release,
	.llseek = default_llseek,
};

static struct dentry *fdbox_debugfs_dir;

int fdbox_debugfs_init(void)
{
	static const char *const names[] = { "boxes", "outgoing", "incoming" };
	struct dentry *dir;
	uintptr_t kind;

	/* debugfs is for inspection only: FDBox works without it. */
	dir = debugfs_create_dir("fdbox", NULL);
	if (IS_ERR(dir))
		return 0;
	for (kind = 0; kind < ARRAY_SIZE(names); kind++)
		debugfs_create_file(names[kind], 0400, dir, (void *)kind,
				    &fdbox_debugfs_fops);
	fdbox_debugfs_dir = dir;
	return 0;
}

void fdbox_debugfs_exit(void)
{
	debugfs_remove_recursive(fdbox_debugfs_dir);
	fdbox_debugfs_dir = NULL;
}
