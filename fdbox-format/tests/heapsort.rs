// SPDX-License-Identifier: GPL-2.0 OR MIT

//! `validate::heapsort`, which the codec and `fdbox_core` sort with (its stack frame is the
//! same at any length): the order of the standard sort.

use fdbox_format::validate::heapsort;
use proptest::prelude::*;

proptest! {
    #[test]
    fn sorts_like_the_standard_sort(
        mut v in proptest::collection::vec((0u64..64, any::<u32>()), 0..400),
    ) {
        let mut want = v.clone();
        want.sort();
        heapsort(&mut v, |a, b| a.cmp(b));
        prop_assert_eq!(want, v);
    }

    #[test]
    fn sorts_by_any_order(mut v in proptest::collection::vec(any::<u16>(), 0..400)) {
        let mut want = v.clone();
        want.sort_by(|a, b| b.cmp(a));
        heapsort(&mut v, |a, b| b.cmp(a));
        prop_assert_eq!(want, v);
    }
}

#[test]
fn sorts_the_size_that_overflowed_a_kernel_stack() {
    let mut v: Vec<(usize, u32)> = (0..16384u32)
        .map(|i| ((i as usize).wrapping_mul(2_654_435_761) % 100_003, i))
        .collect();
    let mut want = v.clone();
    want.sort();
    heapsort(&mut v, |a, b| a.cmp(b));
    assert_eq!(want, v);
}
