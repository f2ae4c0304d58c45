// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The memfd payload: decode, and decode → encode → decode.

#![no_main]

use fdbox_format::owned::Memfd;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Memfd::decode(data) else {
        return;
    };
    let again = m.encode().expect("a decoded memfd payload must encode");
    assert_eq!(again, data, "decoding is canonical");
    assert_eq!(Memfd::decode(&again).expect("must decode"), m);
});
