/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C half of fdbox_core.ko: the exported registration entry points
 * (implemented in Rust), and out-of-line wrappers for static inlines.
 */
#ifndef FDBOX_CORE_H
#define FDBOX_CORE_H

#include <linux/types.h>

struct mutex;

/* fdbox_register_handler() and fdbox_unregister_handler(), in registry.rs. */
#include "fdbox_handler.h"
void *fdbox_phys_to_virt(phys_addr_t phys);
phys_addr_t fdbox_virt_to_phys(void *virt);
size_t fdbox_inline_max(void);
const char *fdbox_kernel_release(void);
u32 fdbox_current_euid(void);
u32 fdbox_current_egid(void);
u32 fdbox_uid_to_user(u32 uid);
s64 fdbox_uid_from_user(u32 uid);
int fdbox_mutex_lock_killable(struct mutex *lock);
void fdbox_cond_resched(void);
u32 fdbox_limit_boxes(bool root);
u32 fdbox_limit_entries(bool root);
u64 fdbox_limit_payload_bytes(bool root);
u32 fdbox_root_reserved_boxes(void);
u32 fdbox_gid_to_user(u32 gid);
bool fdbox_pfn_range_is_ram(u64 pfn, u64 pages);
int fdbox_reboot_register(void);
void fdbox_reboot_unregister(void);
void fdbox_handover_test_pause(void);
/* In outgoing.rs: the hand-over is final. */
void fdbox_close_handover(void);

#endif
