// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Decode, walk, validate and check the entries of arbitrary bytes: no panic, no
//! out-of-bounds.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = fdbox_format::decode(data) {
        for b in v.boxes() {
            for e in b.entries() {
                let _ = e.deps().count();
                let _ = fdbox_format::decode_payload(&e);
            }
        }
        if fdbox_format::owned::validate(&v).is_ok() {
            let _ = fdbox_format::owned::check(&v, 12);
        }
    }
    // Also without a header: the body and the memfd decoders directly.
    let mut blob = Vec::with_capacity(data.len() + 32);
    if let Ok(h) = fdbox_format::header::build(0, data) {
        blob.extend_from_slice(&h);
        blob.extend_from_slice(data);
        if let Ok(v) = fdbox_format::decode(&blob) {
            if fdbox_format::owned::validate(&v).is_ok() {
                let _ = fdbox_format::owned::check(&v, 12);
            }
        }
    }
});
