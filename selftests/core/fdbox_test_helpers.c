// SPDX-License-Identifier: GPL-2.0
/* Out-of-line wrappers for the static inlines fdbox_test.rs needs. */
#include <linux/io.h>

#include "fdbox_test_helpers.h"

u64 fdbox_test_virt_to_phys(void *addr)
{
	return virt_to_phys(addr);
}

void *fdbox_test_phys_to_virt(u64 phys)
{
	return phys_to_virt(phys);
}
