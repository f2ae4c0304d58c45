// SPDX-License-Identifier: GPL-2.0
/* Out-of-line wrappers for the static inlines kho_test.rs needs. */
#include <linux/io.h>
#include <linux/mm.h>

#include "kho_test_helpers.h"

void *fdbox_kho_test_folio_address(struct folio *folio)
{
	return folio_address(folio);
}

unsigned int fdbox_kho_test_folio_order(struct folio *folio)
{
	return folio_order(folio);
}

void fdbox_kho_test_folio_put(struct folio *folio)
{
	folio_put(folio);
}

phys_addr_t fdbox_kho_test_virt_to_phys(void *addr)
{
	return virt_to_phys(addr);
}
