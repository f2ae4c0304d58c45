/* SPDX-License-Identifier: GPL-2.0 */
/* Out-of-line wrappers for the static inlines fdbox_test.rs needs. */
#ifndef FDBOX_TEST_HELPERS_H
#define FDBOX_TEST_HELPERS_H

#include <linux/types.h>

u64 fdbox_test_virt_to_phys(void *addr);
void *fdbox_test_phys_to_virt(u64 phys);

#endif
