// SPDX-License-Identifier: GPL-2.0
/* Out-of-line wrappers for the static inlines format_test.rs needs. */
#include <linux/io.h>
#include <linux/gfp.h>
#include <linux/mm.h>

#include "format_test_helpers.h"

void *fdbox_format_test_folio_address(struct folio *folio)
{
	return folio_address(folio);
}

size_t fdbox_format_test_folio_size(struct folio *folio)
{
	return folio_size(folio);
}

void fdbox_format_test_folio_put(struct folio *folio)
{
	folio_put(folio);
}

/*
 * A naturally aligned block of 2^@order pages, not compound, from the
 * unmovable direct-mapped pool: never from CMA, so never from KHO's scratch,
 * which KHO refuses to preserve.
 */
struct page *fdbox_format_test_alloc_pages(unsigned int order)
{
	return alloc_pages(GFP_KERNEL | __GFP_NOWARN, order);
}

void fdbox_format_test_free_pages(struct page *page, unsigned int order)
{
	__free_pages(page, order);
}

u64 fdbox_format_test_virt_to_phys(void *virt)
{
	return virt_to_phys(virt);
}

u64 fdbox_format_test_page_pfn(struct page *page)
{
	return page_to_pfn(page);
}

/*
 * The pattern the forged_blob selftest recomputes after the kexec: byte i of
 * page p is (p * 131 + i + @seed) & 0xff.
 */
void fdbox_format_test_fill(struct page *page, unsigned long nr_pages, u8 seed)
{
	unsigned long p, i;

	for (p = 0; p < nr_pages; p++) {
		u8 *mem = page_address(page + p);

		for (i = 0; i < PAGE_SIZE; i++)
			mem[i] = (u8)(p * 131 + i + seed);
	}
}
