// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The memfd payload, versions 1 and 2 (the first byte picks): decode, and
//! decode → encode → decode.

#![no_main]

use fdbox_format::memfd::PAYLOAD_VERSION;
use fdbox_format::owned::Memfd;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let version = if pick & 1 == 0 { 1 } else { PAYLOAD_VERSION };
    let Ok(m) = Memfd::decode_version(data, version) else {
        return;
    };
    assert_eq!(m.version(), version, "a payload decodes only at its own version");
    let again = m.encode().expect("a decoded memfd payload must encode");
    assert_eq!(again, data, "decoding is canonical");
    assert_eq!(Memfd::decode_version(&again, version).expect("must decode"), m);
});
