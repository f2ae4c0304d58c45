// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Helpers shared by the integration tests: sample values and strategies.

#![allow(dead_code)]

use fdbox_format::header;
use fdbox_format::iommufd::{
    HANDLER as IOMMUFD,
    PROT_READ,
    PROT_WRITE, //
};
use fdbox_format::memfd::HANDLER as MEMFD;
use fdbox_format::owned::Identity;
use fdbox_format::owned::{
    Box as FdBox,
    Entry,
    Iommufd,
    Manifest,
    Mapping,
    Memfd,
    Payload,
    Run,
    Vfio, //
};
use fdbox_format::BoxState;
use proptest::prelude::*;

/// A small manifest with one box of a memfd, an iommufd mapping it, and a
/// preserved payload of an unsupported vfio version.
pub fn sample() -> Manifest {
    let memfd = Memfd {
        size: 1 << 20,
        pos: 4096,
        seals: 0x8,
        page_shift: 12,
        huge_shift: 0,
        name: "guest-ram".into(),
        runs: vec![
            Run {
                index: 0,
                pfn: 0x1000,
                order: 0,
                count: 16,
            },
            Run {
                index: 32,
                pfn: 0x2000,
                order: 4,
                count: 2,
            },
        ],
    };
    Manifest {
        kernel_release: "7.3.4-fdbox".into(),
        fdbox_version: "0.1.0".into(),
        boxes: vec![FdBox {
            name: "vm0".into(),
            owner_uid: 1000,
            owner_gid: 1000,
            state: BoxState::Sealed,
            entries: vec![
                Entry {
                    name: "ram".into(),
                    handler: MEMFD.into(),
                    payload_version: 1,
                    flags: 0,
                    deps: vec![],
                    payload: Payload::Inline(memfd.encode().unwrap()),
                },
                Entry {
                    name: "iommu".into(),
                    handler: IOMMUFD.into(),
                    payload_version: 1,
                    flags: 0,
                    deps: vec![0],
                    payload: Payload::Inline(sample_iommufd().encode().unwrap()),
                },
                Entry {
                    name: "dev".into(),
                    handler: "vfio".into(),
                    payload_version: 3,
                    flags: 1,
                    deps: vec![0, 1],
                    payload: Payload::Preserved {
                        phys: 0x10_0000,
                        len: 8192,
                        crc32c: 0xdead_beef,
                    },
                },
            ],
        }],
    }
}

/// The sample's iommufd: one IOAS mapping the 1 MiB memfd in two halves.
pub fn sample_iommufd() -> Iommufd {
    Iommufd {
        ioas: vec![1],
        maps: vec![
            Mapping {
                ioas_id: 1,
                iova: 0,
                length: 512 << 10,
                dep: 0,
                start: 0,
                prot: PROT_READ | PROT_WRITE,
            },
            Mapping {
                ioas_id: 1,
                iova: 1 << 32,
                length: 512 << 10,
                dep: 0,
                start: 512 << 10,
                prot: PROT_READ,
            },
        ],
    }
}

/// Wraps a body in a version-1 header with the given minor version.
pub fn wrap(body: &[u8], minor: u16) -> Vec<u8> {
    let mut blob = header::build(minor, body).unwrap().to_vec();
    blob.extend_from_slice(body);
    blob
}

/// Encodes any serde value with postcard and wraps it: a way to build blobs
/// the encoder would refuse to write.
pub fn raw_blob<T: serde::Serialize>(v: &T) -> Vec<u8> {
    wrap(&postcard::to_allocvec(v).unwrap(), header::FORMAT_MINOR)
}

/// Rewrites the header's checksum after a test edited the header.
pub fn fix_header_crc(blob: &mut [u8]) {
    let crc = fdbox_format::crc32c::crc32c(&blob[..28]);
    blob[28..32].copy_from_slice(&crc.to_le_bytes());
}

/// A name: 1..=12 printable chars, no NUL.
pub fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.é-]{1,12}"
}

/// A payload.
pub fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Payload::Inline),
        (
            any::<u64>(),
            0..=fdbox_format::limits::MAX_PRESERVED_LEN,
            any::<u32>()
        )
            .prop_map(|(phys, len, crc32c)| Payload::Preserved { phys, len, crc32c }),
    ]
}

/// An entry at `index` with ascending dependencies on earlier entries.
pub fn entry(index: u32) -> impl Strategy<Value = Entry> {
    (
        name(),
        "[a-z]{0,8}",
        any::<u32>(),
        0..=1u32,
        proptest::collection::btree_set(0..index.max(1), 0..(index.min(4) as usize + 1)),
        payload(),
    )
        .prop_map(
            move |(name, handler, payload_version, flags, deps, payload)| Entry {
                name,
                handler,
                payload_version,
                flags,
                deps: if index == 0 {
                    vec![]
                } else {
                    deps.into_iter().collect()
                },
                payload,
            },
        )
}

/// A box of up to 6 entries.
pub fn fdbox() -> impl Strategy<Value = FdBox> {
    (
        name(),
        any::<u32>(),
        any::<u32>(),
        prop_oneof![Just(BoxState::Open), Just(BoxState::Sealed)],
        0..6u32,
    )
        .prop_flat_map(|(name, uid, gid, state, n)| {
            let entries: Vec<_> = (0..n).map(entry).collect();
            entries.prop_map(move |entries| FdBox {
                name: name.clone(),
                owner_uid: uid,
                owner_gid: gid,
                state,
                entries,
            })
        })
}

/// A manifest of up to 4 boxes.
pub fn manifest() -> impl Strategy<Value = Manifest> {
    (
        ".{0,16}",
        "[0-9.]{0,8}",
        proptest::collection::vec(fdbox(), 0..4),
    )
        .prop_map(|(kernel_release, fdbox_version, boxes)| Manifest {
            kernel_release,
            fdbox_version,
            boxes,
        })
}

/// Canonical folio runs: ascending, aligned, merged, inside `size`.
pub fn memfd() -> impl Strategy<Value = Memfd> {
    (
        proptest::collection::vec((0u64..64, 0u64..(1 << 30), 0u8..=9, 1u64..300), 0..40),
        any::<u64>(),
        any::<u32>(),
        "[a-z]{0,20}",
    )
        .prop_map(|(raw, pos, seals, name)| {
            let mut runs: Vec<Run> = Vec::new();
            let mut end = 0u64;
            for (gap, pfn, order, count) in raw {
                let align = 1u64 << order;
                let index = (end + gap).div_ceil(align) * align;
                let pfn = pfn / align * align;
                runs.push(Run {
                    index,
                    pfn,
                    order,
                    count,
                });
                end = index + (count << order);
            }
            // Merge what the encoder would merge.
            let runs = fdbox_format::memfd::Coalesce::new(runs.into_iter().map(Into::into))
                .map(Run::from)
                .collect();
            Memfd {
                size: end * 4096 + 1,
                pos,
                seals,
                page_shift: 12,
                huge_shift: 0,
                name,
                runs,
            }
        })
}

/// Valid iommufd payloads: up to 4 IOASes and 30 mappings, laid out
/// ascending and disjoint in each IOAS, some at the top of the IOVA space.
pub fn iommufd() -> impl Strategy<Value = Iommufd> {
    (
        proptest::collection::btree_set(1u32..=u32::MAX, 0..5),
        proptest::collection::vec(
            (
                any::<proptest::sample::Index>(),
                prop_oneof![Just(0u64), 1u64..(1 << 40)],
                prop_oneof![1u64..(1 << 30), Just(1u64)],
                any::<u32>(),
                any::<u64>(),
                1u8..=3,
            ),
            0..30,
        ),
        any::<bool>(),
    )
        .prop_map(|(ioas, raw, top)| {
            let ioas: Vec<u32> = ioas.into_iter().collect();
            if ioas.is_empty() {
                return Iommufd { ioas, maps: vec![] };
            }
            let mut raw: Vec<_> = raw
                .into_iter()
                .map(|(i, gap, length, dep, start, prot)| {
                    (ioas[i.index(ioas.len())], gap, length, dep, start, prot)
                })
                .collect();
            raw.sort_by_key(|m| m.0);
            let mut maps: Vec<Mapping> = Vec::new();
            let mut end = 0u64;
            for (k, &(ioas_id, gap, length, dep, start, prot)) in raw.iter().enumerate() {
                if maps.last().is_none_or(|m| m.ioas_id != ioas_id) {
                    end = 0;
                }
                let mut iova = end + gap;
                // The last mapping of an IOAS may end at the top of the space.
                let last_of_ioas = raw.get(k + 1).is_none_or(|n| n.0 != ioas_id);
                if top && last_of_ioas {
                    iova = u64::MAX - (length - 1);
                }
                maps.push(Mapping {
                    ioas_id,
                    iova,
                    length,
                    dep,
                    start: start.min(u64::MAX - (length - 1)),
                    prot,
                });
                end = iova.saturating_add(length);
            }
            Iommufd { ioas, maps }
        })
}

/// Valid vfio payloads.
pub fn vfio() -> impl Strategy<Value = Vfio> {
    let identity = (
        any::<u16>(),
        any::<u16>(),
        0u32..=0xff_ffff,
        proptest::option::of(any::<u64>()),
    )
        .prop_map(
            |(subsystem_vendor, subsystem_device, class, serial)| Identity {
                subsystem_vendor,
                subsystem_device,
                class,
                serial,
            },
        );
    (
        (
            0u32..=0xffff,
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            1u32..=u32::MAX,
            1u32..=u32::MAX,
        ),
        (
            any::<bool>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            identity,
        ),
    )
        .prop_map(
            |(
                (domain, bus, devfn, vendor, device, iommufd_dep, devid, ioas_id),
                (attached, hwpt_id, hwpt_flags, iommufd_max_id, identity),
            )| Vfio {
                domain,
                bus,
                devfn,
                vendor,
                device,
                iommufd_dep,
                devid,
                // Not attached: no IOAS and no HWPT.
                ioas_id: if attached { ioas_id } else { 0 },
                hwpt_id: if attached { hwpt_id } else { 0 },
                hwpt_flags,
                iommufd_max_id,
                identity: Some(identity),
            },
        )
}

/// The vfio payload of version 1 as its spec writes it, for postcard: the
/// independent model the codec is checked against, and what the kernels
/// before version 2 wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VfioWireV1 {
    pub domain: u32,
    pub bus: u8,
    pub devfn: u8,
    pub vendor: u16,
    pub device: u16,
    pub iommufd_dep: u32,
    pub devid: u32,
    pub ioas_id: u32,
}

impl From<&Vfio> for VfioWireV1 {
    fn from(d: &Vfio) -> Self {
        VfioWireV1 {
            domain: d.domain,
            bus: d.bus,
            devfn: d.devfn,
            vendor: d.vendor,
            device: d.device,
            iommufd_dep: d.iommufd_dep,
            devid: d.devid,
            ioas_id: d.ioas_id,
        }
    }
}

/// `d` as a version 1 payload: its fields of version 1 only.
pub fn vfio_v1_bytes(d: &Vfio) -> Vec<u8> {
    postcard::to_allocvec(&VfioWireV1::from(d)).unwrap()
}

/// One run of a memfd payload as postcard sees it: `head`, then
/// `(index_delta, order)` if `ext`, then `count − 2` if `multi`.
pub struct RunWire {
    head: u64,
    ext: Option<(u64, u8)>,
    count_minus_2: Option<u64>,
}

impl serde::Serialize for RunWire {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(4)?;
        t.serialize_element(&self.head)?;
        if let Some((d, o)) = self.ext {
            t.serialize_element(&d)?;
            t.serialize_element(&o)?;
        }
        if let Some(c) = self.count_minus_2 {
            t.serialize_element(&c)?;
        }
        t.end()
    }
}

/// An independent implementation of the run delta coding of the memfd
/// payload's spec, for the postcard oracles.
pub fn run_wire(runs: &[Run]) -> Vec<RunWire> {
    let (mut end_index, mut end_pfn, mut order) = (0u64, 0u64, 0u8);
    runs.iter()
        .map(|r| {
            let delta = r.pfn as i64 - end_pfn as i64;
            let zz = ((delta << 1) ^ (delta >> 63)) as u64;
            let ext = r.index != end_index || r.order != order;
            let multi = r.count > 1;
            let w = RunWire {
                head: zz << 2 | u64::from(ext) << 1 | u64::from(multi),
                ext: ext.then(|| (r.index - end_index, r.order)),
                count_minus_2: multi.then(|| r.count - 2),
            };
            end_index = r.index + (r.count << r.order);
            end_pfn = r.pfn + (r.count << r.order);
            order = r.order;
            w
        })
        .collect()
}
