/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C half of fdbox_core.ko: the exported registration entry points
 * (implemented in Rust), debugfs, and out-of-line wrappers for static inlines.
 */
#ifndef FDBOX_CORE_H
#define FDBOX_CORE_H

#include <linux/types.h>

/* fdbox_register_handler() and fdbox_unregister_handler(), in registry.rs. */
#include "fdbox_handler.h"
/*
 * Implemented in Rust (debugfs.rs): a kvmalloc'ed snapshot of debugfs file
 * @kind (0: boxes, 1: outgoing blob, 2: incoming blob), or an ERR_PTR.
 */
void *fdbox_debugfs_snapshot(unsigned int kind, size_t *len);

int fdbox_debugfs_init(void);
void fdbox_debugfs_exit(void);
void *fdbox_phys_to_virt(phys_addr_t phys);
const char *fdbox_kernel_release(void);
u32 fdbox_current_euid(void);
u32 fdbox_current_egid(void);
u32 fdbox_uid_to_user(u32 uid);
u32 fdbox_gid_to_user(u32 gid);

#endif
