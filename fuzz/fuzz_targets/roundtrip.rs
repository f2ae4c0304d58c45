// SPDX-License-Identifier: GPL-2.0 OR MIT

//! decode → encode → decode: whatever decodes and validates re-encodes to
//! the same bytes and decodes to the same manifest. (The encoder refuses what
//! validation refuses, e.g. forward dependencies, so invalid blobs stop at
//! the validation step.)

#![no_main]

use fdbox_format::owned::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Treat the input as a body so the fuzzer needn't find checksums.
    let Ok(h) = fdbox_format::header::build(0, data) else {
        return;
    };
    let mut blob = h.to_vec();
    blob.extend_from_slice(data);
    let Ok(view) = fdbox_format::decode(&blob) else {
        return;
    };
    if fdbox_format::owned::validate(&view).is_err() {
        return;
    }
    let m = Manifest::from_view(&view);
    let again = m.encode().expect("a decoded manifest must encode");
    assert_eq!(again, blob, "decoding is canonical");
    let m2 = Manifest::decode(&again).expect("an encoded manifest must decode");
    assert_eq!(m2, m);
});
