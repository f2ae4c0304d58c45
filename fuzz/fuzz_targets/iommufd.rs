// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The iommufd payload: decode, and decode → encode → decode.

#![no_main]

use fdbox_format::iommufd;
use fdbox_format::owned::Iommufd;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = iommufd::decode(data, 0) else {
        return;
    };
    // The iterators are infallible once `decode` accepted the payload.
    assert_eq!(v.ioas_ids().count(), v.ioas_count() as usize);
    assert_eq!(v.maps().count(), v.map_count() as usize);
    assert_eq!(v.maps().map(|m| m.dep).max(), v.max_dep());
    let p = Iommufd::from_view(&v);
    let again = p.encode().expect("a decoded iommufd payload must encode");
    assert_eq!(again, data, "decoding is canonical");
    assert_eq!(Iommufd::decode(&again).expect("must decode"), p);
});
