// SPDX-License-Identifier: GPL-2.0
/* Out-of-line wrappers for the static inlines format_test.rs needs. */
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
