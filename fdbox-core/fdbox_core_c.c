// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of fdbox_core.ko: exports the handler registration (implemented
 * in Rust), and wraps static inlines for the Rust half.
 */
#include <linux/completion.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/reboot.h>
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

phys_addr_t fdbox_virt_to_phys(void *virt)
{
	return virt_to_phys(virt);
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

/*
 * A uid of the caller's user namespace, in the initial one; -1 if it has no
 * mapping there.
 */
s64 fdbox_uid_from_user(u32 uid)
{
	kuid_t kuid = make_kuid(current_user_ns(), uid);

	if (!uid_valid(kuid))
		return -1;
	return from_kuid(&init_user_ns, kuid);
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

/* Rust's Mutex has no killable lock: a box's lock may wait on a user. */
int fdbox_mutex_lock_killable(struct mutex *lock)
{
	return mutex_lock_killable(lock);
}

void fdbox_cond_resched(void)
{
	cond_resched();
}

/*
 * Per-user limits (quota.rs). The defaults fit a host of 100 VMs under one
 * uid, each with a box or two of some dozens of entries. Root, the
 * operator, is bounded by its own (generous) limits, and the other users
 * together leave root_reserved_boxes of the box table free for it.
 */
static unsigned int user_max_boxes = 256;
module_param(user_max_boxes, uint, 0644);
MODULE_PARM_DESC(user_max_boxes, "boxes a uid other than root may hold (EDQUOT past it)");
static unsigned int user_max_entries = 8192;
module_param(user_max_entries, uint, 0644);
MODULE_PARM_DESC(user_max_entries, "entries a uid other than root may hold");
static unsigned long long user_max_payload_bytes = 64ULL << 20;
module_param(user_max_payload_bytes, ullong, 0644);
MODULE_PARM_DESC(user_max_payload_bytes, "sealed payload bytes a uid other than root may hold");
static unsigned int root_max_boxes = 1024;
module_param(root_max_boxes, uint, 0644);
MODULE_PARM_DESC(root_max_boxes, "boxes root may hold");
static unsigned int root_max_entries = 1U << 20;
module_param(root_max_entries, uint, 0644);
MODULE_PARM_DESC(root_max_entries, "entries root may hold");
static unsigned long long root_max_payload_bytes = 1ULL << 36;
module_param(root_max_payload_bytes, ullong, 0644);
MODULE_PARM_DESC(root_max_payload_bytes, "sealed payload bytes root may hold");
static unsigned int root_reserved_boxes = 64;
module_param(root_reserved_boxes, uint, 0644);
MODULE_PARM_DESC(root_reserved_boxes, "boxes of the table that only root may take");

/*
 * A payload longer than this goes out of line, into chunks of KHO memory of
 * its own, so that a box's blob stays small; the tests lower it to make
 * every payload go out of line.
 */
static unsigned long inline_max = 64 << 10;
module_param(inline_max, ulong, 0644);
MODULE_PARM_DESC(inline_max, "longest payload kept inline in its box's blob, in bytes");

size_t fdbox_inline_max(void)
{
	return READ_ONCE(inline_max);
}

u32 fdbox_root_reserved_boxes(void)
{
	return READ_ONCE(root_reserved_boxes);
}

u32 fdbox_limit_boxes(bool root)
{
	return root ? READ_ONCE(root_max_boxes) : READ_ONCE(user_max_boxes);
}

u32 fdbox_limit_entries(bool root)
{
	return root ? READ_ONCE(root_max_entries) : READ_ONCE(user_max_entries);
}

u64 fdbox_limit_payload_bytes(bool root)
{
	return root ? READ_ONCE(root_max_payload_bytes) :
		      READ_ONCE(user_max_payload_bytes);
}

/*
 * Whether the @pages pages from page frame @pfn are all System RAM. A payload
 * from the previous kernel may name any page frame; only RAM can hold what it
 * preserved. Called once per run of a payload, so it yields the CPU.
 */
bool fdbox_pfn_range_is_ram(u64 pfn, u64 pages)
{
	cond_resched();
	if (!pages || pfn >= PHYS_PFN(U64_MAX) || pages > PHYS_PFN(U64_MAX) - pfn)
		return false;
	return region_intersects(PFN_PHYS(pfn), PFN_PHYS(pages),
				 IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE) ==
	       REGION_INTERSECTS;
}

/*
 * The hand-over is final once a kexec (or any reboot) starts: the reboot
 * notifier runs in kernel_kexec() before the CPUs stop, makes every later
 * SEAL or CANCEL fail with -EBUSY, and waits for one that is replacing the
 * hand-over to finish (fdbox_close_handover(), in outgoing.rs). A kexec thus
 * hands over the state before or after a SEAL or CANCEL, never a mix and
 * never nothing.
 */
static DECLARE_COMPLETION(fdbox_going_down);

static int fdbox_reboot_notify(struct notifier_block *nb, unsigned long action,
			       void *data)
{
	complete_all(&fdbox_going_down);
	fdbox_close_handover();
	return NOTIFY_DONE;
}

static struct notifier_block fdbox_reboot_nb = {
	.notifier_call = fdbox_reboot_notify,
};

int fdbox_reboot_register(void)
{
	return register_reboot_notifier(&fdbox_reboot_nb);
}

void fdbox_reboot_unregister(void)
{
	unregister_reboot_notifier(&fdbox_reboot_nb);
}

/*
 * For the tests only: while set, the next replacement of the hand-over
 * pauses between taking the old subtree out and putting the new one in, the
 * window a kexec must never fall into, until a kexec starts or two minutes
 * pass. It clears itself when it fires, so the test knows it is paused.
 */
static bool pause_next_handover;
module_param(pause_next_handover, bool, 0600);
MODULE_PARM_DESC(pause_next_handover,
		 "test only: pause the next hand-over replacement until a kexec starts");

void fdbox_handover_test_pause(void)
{
	long left;

	if (!READ_ONCE(pause_next_handover))
		return;
	WRITE_ONCE(pause_next_handover, false);
	pr_info("fdbox_core: test hook: hand-over replacement paused until a kexec\n");
	left = wait_for_completion_interruptible_timeout(&fdbox_going_down,
							 120 * HZ);
	pr_info("fdbox_core: test hook: hand-over replacement resumed %s\n",
		left > 0 ? "as the kexec started" : "without a kexec");
}
