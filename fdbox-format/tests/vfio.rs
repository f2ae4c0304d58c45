// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The vfio payload: round trips, postcard as the oracle, and one test per
//! rejection path of the decoder and the encoder.

mod common;

use common::VfioWireV1;

use fdbox_format::limits::{
    Limit,
    MAX_PCI_DOMAIN, //
};
use fdbox_format::owned::{
    validate,
    Entry,
    Payload,
    Vfio, //
};
use fdbox_format::vfio::{
    self,
    PciIdentity,
    VfioDevice,
    MAX_ENCODED_LEN, //
};
use fdbox_format::{
    decode,
    decode_payload,
    Decoded,
    Error,
    Unavailable, //
};
use proptest::prelude::*;
use serde::{
    Deserialize,
    Serialize, //
};

/// The payload as the spec writes it, for postcard: an independent model.
/// Version 2 begins with version 1's fields; postcard writes a nested struct's
/// fields in line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct VfioWire {
    v1: VfioWireV1,
    hwpt_id: u32,
    hwpt_flags: u32,
    iommufd_max_id: u32,
    subsystem_vendor: u16,
    subsystem_device: u16,
    class: u32,
    serial: Option<u64>,
}

impl From<&Vfio> for VfioWire {
    fn from(d: &Vfio) -> Self {
        let id = d.identity.unwrap();
        VfioWire {
            v1: VfioWireV1::from(d),
            hwpt_id: d.hwpt_id,
            hwpt_flags: d.hwpt_flags,
            iommufd_max_id: d.iommufd_max_id,
            subsystem_vendor: id.subsystem_vendor,
            subsystem_device: id.subsystem_device,
            class: id.class,
            serial: id.serial,
        }
    }
}

/// A device at 0000:00:04.0, bound to dependency 0, attached to IOAS 1.
fn nic() -> VfioDevice {
    VfioDevice {
        domain: 0,
        bus: 0,
        devfn: 4 << 3,
        vendor: 0x1234,
        device: 0x11e8,
        iommufd_dep: 0,
        devid: 1,
        ioas_id: 1,
        hwpt_id: 0,
        hwpt_flags: 0,
        iommufd_max_id: 0,
        identity: Some(PciIdentity {
            subsystem_vendor: 0x1af4,
            subsystem_device: 0x1100,
            class: 0xff00,
            serial: None,
        }),
    }
}

/// The wire payload's bytes.
fn bytes(w: &VfioWire) -> Vec<u8> {
    postcard::to_allocvec(w).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// encode → decode gives the same device, within `MAX_ENCODED_LEN`.
    #[test]
    fn round_trip(d in common::vfio()) {
        let bytes = d.encode().unwrap();
        prop_assert!(bytes.len() <= MAX_ENCODED_LEN);
        let back = Vfio::decode(&bytes).unwrap();
        prop_assert_eq!(back, d);
        prop_assert_eq!(back.encode().unwrap(), bytes);
    }

    /// The encoder's bytes equal postcard's for the spec's model, and the
    /// two read each other's bytes.
    #[test]
    fn matches_postcard(d in common::vfio()) {
        let wire = VfioWire::from(&d);
        let oracle = bytes(&wire);
        let ours = d.encode().unwrap();
        prop_assert_eq!(&ours, &oracle);
        prop_assert_eq!(Vfio::decode(&oracle).unwrap(), d);
        prop_assert_eq!(postcard::from_bytes::<VfioWire>(&ours).unwrap(), wire);
    }

    /// Version 1 as postcard writes it decodes with no HWPT and no identity.
    #[test]
    fn reads_version_1(d in common::vfio()) {
        let v1 = common::vfio_v1_bytes(&d);
        let got = vfio::decode_v1(&v1, 0).unwrap();
        prop_assert_eq!(
            Vfio::from(got),
            Vfio { hwpt_id: 0, hwpt_flags: 0, iommufd_max_id: 0, identity: None, ..d }
        );
        // Version 2's decoder finds it short.
        prop_assert!(vfio::decode(&v1, 0).is_err());
    }

    /// The decoder never panics on arbitrary bytes, and what it accepts
    /// re-encodes to the same bytes.
    #[test]
    fn garbage_never_panics(body in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(d) = Vfio::decode(&body) {
            prop_assert_eq!(d.encode().unwrap(), body);
        }
    }
}

#[test]
fn max_encoded_len_is_reached() {
    let d = VfioDevice {
        domain: MAX_PCI_DOMAIN,
        bus: 0xff,
        devfn: 0xff,
        vendor: u16::MAX,
        device: u16::MAX,
        iommufd_dep: u32::MAX,
        devid: u32::MAX,
        ioas_id: u32::MAX,
        hwpt_id: u32::MAX,
        hwpt_flags: u32::MAX,
        iommufd_max_id: u32::MAX,
        identity: Some(PciIdentity {
            subsystem_vendor: u16::MAX,
            subsystem_device: u16::MAX,
            class: 0xff_ffff,
            serial: Some(u64::MAX),
        }),
    };
    let mut out = [0u8; MAX_ENCODED_LEN];
    assert_eq!(vfio::encode(&d, &mut out).unwrap(), MAX_ENCODED_LEN);
    assert_eq!(vfio::decode(&out, 0).unwrap(), d);
}

#[test]
fn pci_address_formatting() {
    assert_eq!(nic().pci_address().to_string(), "0000:00:04.0");
    let d = VfioDevice {
        domain: 0xffff,
        bus: 0x3a,
        devfn: 0xff,
        ..nic()
    };
    let a = d.pci_address();
    assert_eq!((a.slot(), a.function()), (31, 7));
    assert_eq!(a.to_string(), "ffff:3a:1f.7");
}

#[test]
fn truncated_at_every_length() {
    let mut out = [0u8; MAX_ENCODED_LEN];
    let n = vfio::encode(&nic(), &mut out).unwrap();
    for cut in 0..n {
        assert_eq!(
            vfio::decode(&out[..cut], 100).unwrap_err(),
            Error::Truncated { offset: 100 + cut },
            "cut at {cut}"
        );
    }
}

#[test]
fn trailing_bytes() {
    let mut raw = bytes(&VfioWire::from(&Vfio::from(nic())));
    let n = raw.len();
    raw.push(0);
    assert_eq!(
        vfio::decode(&raw, 7).unwrap_err(),
        Error::TrailingBytes { offset: 7 + n }
    );
}

#[test]
fn devid_zero() {
    let mut w = VfioWire::from(&Vfio::from(nic()));
    w.v1.devid = 0;
    // domain, bus, devfn, vendor (2 bytes), device (2 bytes), iommufd_dep.
    assert_eq!(
        vfio::decode(&bytes(&w), 1000).unwrap_err(),
        Error::BadField {
            offset: 1000 + 8,
            what: "iommufd device id 0"
        }
    );
    let d = VfioDevice { devid: 0, ..nic() };
    assert_eq!(
        vfio::encode(&d, &mut [0; MAX_ENCODED_LEN]).unwrap_err(),
        Error::BadInput {
            what: "iommufd device id 0"
        }
    );
}

#[test]
fn pci_domain_above_0xffff() {
    let mut w = VfioWire::from(&Vfio::from(nic()));
    w.v1.domain = MAX_PCI_DOMAIN + 1;
    assert_eq!(
        vfio::decode(&bytes(&w), 1000).unwrap_err(),
        Error::Limit {
            offset: 1000,
            limit: Limit::PciDomain,
            value: 0x1_0000
        }
    );
    let d = VfioDevice {
        domain: MAX_PCI_DOMAIN + 1,
        ..nic()
    };
    assert_eq!(
        vfio::encode(&d, &mut [0; MAX_ENCODED_LEN]).unwrap_err(),
        Error::BadInput {
            what: "PCI domain above 0xffff"
        }
    );
    // Above u32::MAX, the varint itself is refused.
    let mut raw = postcard::to_allocvec(&(1u64 << 32)).unwrap();
    raw.extend(&bytes(&VfioWire::from(&Vfio::from(nic())))[1..]);
    assert_eq!(
        vfio::decode(&raw, 0).unwrap_err(),
        Error::BadVarint { offset: 0 }
    );
}

#[test]
fn vendor_above_u16() {
    // domain 0, bus 0, devfn 0x20, then vendor 0x1_0000.
    let mut raw = vec![0, 0, 0x20];
    raw.extend(postcard::to_allocvec(&0x1_0000u32).unwrap());
    raw.extend([1, 0, 1, 1]);
    assert_eq!(
        vfio::decode(&raw, 0).unwrap_err(),
        Error::BadVarint { offset: 3 }
    );
}

#[test]
fn encoder_buffer_too_small() {
    let mut out = [0u8; MAX_ENCODED_LEN];
    let n = vfio::encode(&nic(), &mut out).unwrap();
    let mut small = vec![0u8; n - 1];
    assert!(matches!(
        vfio::encode(&nic(), &mut small),
        Err(Error::BufferTooSmall { .. })
    ));
    let mut exact = vec![0u8; n];
    assert_eq!(vfio::encode(&nic(), &mut exact).unwrap(), n);
    assert_eq!(exact, out[..n]);
}

#[test]
fn iommufd_dep_beyond_the_entry() {
    let d = VfioDevice {
        iommufd_dep: 2,
        ..nic()
    };
    d.check_deps(3, 50).unwrap();
    // domain, bus, devfn, vendor (2 bytes), device (2 bytes).
    assert_eq!(
        d.check_deps(2, 50).unwrap_err(),
        Error::BadField {
            offset: 50 + 7,
            what: "dependency index beyond the entry's dependencies"
        }
    );
}

/// The sample blob with an entry of `dev` appended, with the given version,
/// payload and dependencies on the memfd and the iommufd.
fn sample_with(version: u32, payload: Payload, deps: Vec<u32>) -> Vec<u8> {
    let mut m = common::sample();
    m.boxes[0].entries.push(Entry {
        name: "nic".into(),
        handler: vfio::HANDLER.into(),
        payload_version: version,
        flags: 0,
        deps,
        payload,
    });
    m.encode().unwrap()
}

/// The encoded payload of `d`.
fn payload(d: VfioDevice) -> Payload {
    Payload::Inline(Vfio::from(d).encode().unwrap())
}

#[test]
fn decode_payload_of_a_vfio_entry() {
    let d = VfioDevice {
        iommufd_dep: 1,
        ..nic()
    };
    let blob = sample_with(vfio::PAYLOAD_VERSION, payload(d), vec![0, 1]);
    let v = decode(&blob).unwrap();
    validate(&v).unwrap();
    let e = v.boxes().next().unwrap().entries().nth(3).unwrap();
    assert!(matches!(decode_payload(&e), Ok(Decoded::Vfio(x)) if x == d));
}

#[test]
fn decode_payload_versions_and_places() {
    for version in [0, 3] {
        let blob = sample_with(version, payload(nic()), vec![1]);
        let v = decode(&blob).unwrap();
        validate(&v).unwrap();
        let e = v.boxes().next().unwrap().entries().nth(3).unwrap();
        assert_eq!(
            decode_payload(&e).unwrap_err(),
            Unavailable::UnsupportedVersion {
                found: version,
                newest: vfio::PAYLOAD_VERSION
            }
        );
    }
    let preserved = Payload::Preserved {
        phys: 0x20_0000,
        len: 4096,
        crc32c: 1,
    };
    let blob = sample_with(vfio::PAYLOAD_VERSION, preserved, vec![1]);
    let v = decode(&blob).unwrap();
    validate(&v).unwrap();
    let e = v.boxes().next().unwrap().entries().nth(3).unwrap();
    assert_eq!(decode_payload(&e).unwrap_err(), Unavailable::Preserved);
    // The sample's own vfio entry is a version this crate doesn't know.
    let blob = common::sample().encode().unwrap();
    let v = decode(&blob).unwrap();
    let e = v.boxes().next().unwrap().entries().nth(2).unwrap();
    assert_eq!(
        decode_payload(&e).unwrap_err(),
        Unavailable::UnsupportedVersion {
            found: 3,
            newest: vfio::PAYLOAD_VERSION
        }
    );
}

#[test]
fn corrupt_vfio_payload_is_corrupt_alone() {
    let blob = sample_with(
        vfio::PAYLOAD_VERSION,
        Payload::Inline(vec![0, 0, 0x20]),
        vec![1],
    );
    let v = decode(&blob).unwrap();
    let e = v.boxes().next().unwrap().entries().nth(3).unwrap();
    assert!(matches!(
        decode_payload(&e),
        Err(Unavailable::Corrupt(Error::Truncated { .. }))
    ));
    validate(&v).unwrap();
    let verdicts = fdbox_format::owned::check(&v, 12).unwrap();
    assert!(
        matches!(
            verdicts[..],
            [None, None, None, Some(Error::Truncated { .. })]
        ),
        "{verdicts:?}"
    );
}

#[test]
fn iommufd_of_a_missing_dependency_is_corrupt() {
    // Bound to dependency 1, and the entry has one dependency.
    let d = VfioDevice {
        iommufd_dep: 1,
        ..nic()
    };
    let blob = sample_with(vfio::PAYLOAD_VERSION, payload(d), vec![1]);
    let v = decode(&blob).unwrap();
    let e = v.boxes().next().unwrap().entries().nth(3).unwrap();
    assert_eq!(
        decode_payload(&e).unwrap_err(),
        Unavailable::Corrupt(Error::BadField {
            offset: e.payload_offset + 7,
            what: "dependency index beyond the entry's dependencies"
        })
    );
    validate(&v).unwrap();
    let verdicts = fdbox_format::owned::check(&v, 12).unwrap();
    assert!(
        matches!(
            verdicts[..],
            [None, None, None, Some(Error::BadField { .. })]
        ),
        "{verdicts:?}"
    );
}

#[test]
fn decode_payload_of_a_version_1_entry() {
    let raw = common::vfio_v1_bytes(&Vfio::from(VfioDevice {
        devid: 3,
        ioas_id: 2,
        ..nic()
    }));
    let blob = sample_with(1, Payload::Inline(raw), vec![1]);
    let v = decode(&blob).unwrap();
    validate(&v).unwrap();
    let e = v.boxes().next().unwrap().entries().nth(3).unwrap();
    let Ok(Decoded::Vfio(d)) = decode_payload(&e) else {
        panic!("not decoded");
    };
    assert_eq!((d.devid, d.ioas_id, d.hwpt_id, d.identity), (3, 2, 0, None));
}

/// The version 2 wire of `nic()` with the given changes.
fn wire(f: impl FnOnce(&mut VfioWire)) -> Vec<u8> {
    let mut w = VfioWire::from(&Vfio::from(nic()));
    f(&mut w);
    bytes(&w)
}

#[test]
fn class_above_24_bits() {
    let raw = wire(|w| w.class = 0x100_0000);
    // domain, bus, devfn 1 each, vendor and device 2 each, dep, devid, ioas,
    // hwpt, flags and max id 1 each, subsystem ids 2 each.
    assert_eq!(
        vfio::decode(&raw, 10).unwrap_err(),
        Error::BadField {
            offset: 10 + 17,
            what: "PCI class code above 24 bits"
        }
    );
    let d = VfioDevice {
        identity: Some(PciIdentity {
            class: 0x100_0000,
            ..nic().identity.unwrap()
        }),
        ..nic()
    };
    assert_eq!(
        vfio::encode(&d, &mut [0; MAX_ENCODED_LEN]).unwrap_err(),
        Error::BadInput {
            what: "PCI class code above 24 bits"
        }
    );
}

#[test]
fn hwpt_without_its_ioas() {
    let raw = wire(|w| {
        w.v1.ioas_id = 0;
        w.hwpt_id = 5;
    });
    assert_eq!(
        vfio::decode(&raw, 0).unwrap_err(),
        Error::BadField {
            offset: 10,
            what: "a HWPT without its IOAS"
        }
    );
    let d = VfioDevice {
        ioas_id: 0,
        hwpt_id: 5,
        ..nic()
    };
    assert_eq!(
        vfio::encode(&d, &mut [0; MAX_ENCODED_LEN]).unwrap_err(),
        Error::BadInput {
            what: "a HWPT without its IOAS"
        }
    );
}

#[test]
fn no_identity_is_not_encoded() {
    let d = VfioDevice {
        identity: None,
        ..nic()
    };
    assert_eq!(
        vfio::encode(&d, &mut [0; MAX_ENCODED_LEN]).unwrap_err(),
        Error::BadInput {
            what: "no PCI identity"
        }
    );
}

#[test]
fn serial_tag_other_than_0_or_1() {
    let mut raw = wire(|_| ());
    let last = raw.len() - 1;
    raw[last] = 2;
    assert!(vfio::decode(&raw, 0).is_err());
}
