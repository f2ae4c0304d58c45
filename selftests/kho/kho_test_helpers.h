/* SPDX-License-Identifier: GPL-2.0 */
/* Out-of-line wrappers for the static inlines kho_test.rs needs. */
#ifndef FDBOX_KHO_TEST_HELPERS_H
#define FDBOX_KHO_TEST_HELPERS_H

#include <linux/types.h>

struct folio;

void *fdbox_kho_test_folio_address(struct folio *folio);
unsigned int fdbox_kho_test_folio_order(struct folio *folio);
void fdbox_kho_test_folio_put(struct folio *folio);
phys_addr_t fdbox_kho_test_virt_to_phys(void *addr);

#endif
