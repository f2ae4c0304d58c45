// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The vfio payload: decode, and decode → encode → decode.

#![no_main]

use fdbox_format::owned::Vfio;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(d) = Vfio::decode(data) else {
        return;
    };
    let again = d.encode().expect("a decoded vfio payload must encode");
    assert_eq!(again, data, "decoding is canonical");
    assert_eq!(Vfio::decode(&again).expect("must decode"), d);
});
