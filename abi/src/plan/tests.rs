//! Round-trip and corruption tests of the plan format.

extern crate std;
use super::*;
use std::vec;
use std::vec::Vec;

fn sample_cells() -> [CellRecord; 2] {
    let base = CellRecord {
        name: CellRecord::name_field("ping").unwrap(),
        kind: CellKind::Native,
        priority: 5,
        vcpu_count: 1,
        fault_policy: FaultPolicy::Stop,
        restart_limit: 0,
        vcpu_cores: [
            0, ANY_CORE, ANY_CORE, ANY_CORE, ANY_CORE, ANY_CORE, ANY_CORE, ANY_CORE,
        ],
        first_region: 0,
        region_count: 1,
        image_offset: 0x1000,
        image_size: 0x2345,
        entry_ipa: 0x4000_0000,
        load_ipa: 0x4000_0000,
    };
    let mut pong = base;
    pong.name = CellRecord::name_field("pong-with-16char").unwrap();
    pong.first_region = 1;
    pong.region_count = 2;
    pong.fault_policy = FaultPolicy::Restart;
    pong.restart_limit = 3;
    pong.vcpu_count = 2;
    pong.vcpu_cores[1] = 1;
    pong.image_offset = 0x4000;
    [base, pong]
}

fn sample_regions() -> [RegionRecord; 3] {
    let ram = RegionRecord {
        ipa: 0x4000_0000,
        pa: 0x4100_0000,
        size: 0x10_0000,
        kind: RegionKind::Ram,
        rights: Rights::RWX,
    };
    let mut ram2 = ram;
    ram2.pa = 0x4120_0000;
    let uart = RegionRecord {
        ipa: 0x0900_0000,
        pa: 0x0900_0000,
        size: 0x1000,
        kind: RegionKind::Device,
        rights: Rights::R.union(Rights::W),
    };
    [ram, ram2, uart]
}

fn encode_sample() -> Vec<u8> {
    let cells = sample_cells();
    let regions = sample_regions();
    let irqs = [IrqRecord {
        intid: 33,
        cell: 1,
        vcpu: 1,
    }];
    let channels = [ChannelRecord { from: 0, to: 1 }];
    let parts = PlanParts {
        ram_base: 0x4000_0000,
        ram_size: 0x4000_0000,
        core_count: 2,
        payload_len: 0x8000,
        cells: &cells,
        regions: &regions,
        irqs: &irqs,
        channels: &channels,
    };
    let mut buf = vec![0u8; 4096];
    let len = encode(&parts, &mut buf).unwrap();
    buf.truncate(len);
    buf
}

#[test]
fn crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn round_trip_preserves_every_record() {
    let bytes = encode_sample();
    assert_eq!(bytes.len(), encoded_len(2, 3, 1, 1));
    let plan = Plan::decode(&bytes).unwrap();
    assert_eq!(plan.cell_count(), 2);
    assert_eq!(plan.core_count(), 2);
    assert_eq!(plan.ram_base(), 0x4000_0000);
    assert_eq!(plan.ram_size(), 0x4000_0000);
    assert_eq!(plan.payload_len(), 0x8000);
    let cells: Vec<_> = plan.cells().collect();
    assert_eq!(cells, sample_cells());
    assert_eq!(cells[0].name(), "ping");
    assert_eq!(cells[1].name(), "pong-with-16char");
    let regions: Vec<_> = plan.regions_of(&cells[1]).collect();
    assert_eq!(regions, sample_regions()[1..]);
    assert_eq!(
        plan.irq(0),
        IrqRecord {
            intid: 33,
            cell: 1,
            vcpu: 1
        }
    );
    assert_eq!(plan.channel(0), ChannelRecord { from: 0, to: 1 });
}

#[test]
fn decoding_ignores_bytes_after_the_plan() {
    let mut bytes = encode_sample();
    let len = bytes.len();
    bytes.extend_from_slice(&[0xAA; 100]);
    assert_eq!(Plan::decode(&bytes).unwrap().bytes().len(), len);
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let bytes = encode_sample();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut corrupt = bytes.clone();
            corrupt[i] ^= 1 << bit;
            assert!(
                Plan::decode(&corrupt).is_err(),
                "flip of byte {i} bit {bit} accepted"
            );
        }
    }
}

#[test]
fn corruption_in_records_reports_the_checksum() {
    let mut bytes = encode_sample();
    bytes[HEADER_LEN + 3] ^= 0x40;
    assert!(matches!(
        Plan::decode(&bytes),
        Err(PlanError::ChecksumMismatch { .. })
    ));
}

#[test]
fn other_versions_are_refused_by_name() {
    let mut bytes = encode_sample();
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    let err = Plan::decode(&bytes).unwrap_err();
    assert_eq!(err, PlanError::UnsupportedVersion { found: 2 });
    assert!(std::format!("{err}").contains("version 2 does not match this kernel (version 1)"));
}

#[test]
fn truncation_and_missing_magic_are_refused() {
    let bytes = encode_sample();
    assert!(matches!(
        Plan::decode(&bytes[..10]),
        Err(PlanError::Truncated { .. })
    ));
    assert!(matches!(
        Plan::decode(&bytes[..bytes.len() - 1]),
        Err(PlanError::Truncated { .. })
    ));
    assert_eq!(Plan::decode(&[0u8; 128]).unwrap_err(), PlanError::BadMagic);
}

#[test]
fn encoder_refuses_records_the_decoder_would_refuse() {
    let mut cells = sample_cells();
    cells[0].priority = MAX_PRIORITY + 1;
    let regions = sample_regions();
    fn parts<'a>(cells: &'a [CellRecord], regions: &'a [RegionRecord]) -> PlanParts<'a> {
        PlanParts {
            ram_base: 0x4000_0000,
            ram_size: 0x4000_0000,
            core_count: 2,
            payload_len: 0x8000,
            cells,
            regions,
            irqs: &[],
            channels: &[],
        }
    }
    let mut buf = vec![0u8; 4096];
    assert_eq!(
        encode(&parts(&cells, &regions), &mut buf).unwrap_err(),
        PlanError::BadRecord {
            what: "cell",
            index: 0,
            reason: "priority out of range"
        }
    );
    cells[0].priority = 1;
    cells[1].vcpu_cores[1] = 2; // core count is 2
    assert!(matches!(
        encode(&parts(&cells, &regions), &mut buf),
        Err(PlanError::BadRecord {
            what: "cell",
            index: 1,
            ..
        })
    ));
    assert!(encode(&parts(&cells[..0], &regions), &mut buf).is_err());
    assert!(matches!(
        encode(&parts(&sample_cells(), &regions), &mut buf[..10]),
        Err(PlanError::BufferTooSmall { .. })
    ));
}

#[test]
fn name_field_limits() {
    assert!(CellRecord::name_field("").is_none());
    assert!(CellRecord::name_field("a-name-of-17-byte").is_none());
    assert!(CellRecord::name_field("nul\0").is_none());
    assert!(CellRecord::name_field("exactly-16-bytes").is_some());
}
