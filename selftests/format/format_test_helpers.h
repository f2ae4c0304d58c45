/* SPDX-License-Identifier: GPL-2.0 */
/* Out-of-line wrappers for the static inlines format_test.rs needs. */
#ifndef FDBOX_FORMAT_TEST_HELPERS_H
#define FDBOX_FORMAT_TEST_HELPERS_H

#include <linux/types.h>

struct folio;

void *fdbox_format_test_folio_address(struct folio *folio);
size_t fdbox_format_test_folio_size(struct folio *folio);
void fdbox_format_test_folio_put(struct folio *folio);

#endif
