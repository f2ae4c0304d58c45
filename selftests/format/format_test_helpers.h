/* SPDX-License-Identifier: GPL-2.0 */
/* Out-of-line wrappers for the static inlines format_test.rs needs. */
#ifndef FDBOX_FORMAT_TEST_HELPERS_H
#define FDBOX_FORMAT_TEST_HELPERS_H

#include <linux/types.h>

struct folio;
struct page;

void *fdbox_format_test_folio_address(struct folio *folio);
size_t fdbox_format_test_folio_size(struct folio *folio);
void fdbox_format_test_folio_put(struct folio *folio);

/* mode=4: blocks of pages for the forged blob to name. */
struct page *fdbox_format_test_alloc_pages(unsigned int order);
void fdbox_format_test_free_pages(struct page *page, unsigned int order);
u64 fdbox_format_test_virt_to_phys(void *virt);
u64 fdbox_format_test_page_pfn(struct page *page);
void fdbox_format_test_fill(struct page *page, unsigned long nr_pages, u8 seed);

#endif
