// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of fdbox_core.ko: exports the handler registration (implemented
 * in Rust), and wraps static inlines for the Rust half.
 */
#include <linux/io.h>
#include <linux/module.h>
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
