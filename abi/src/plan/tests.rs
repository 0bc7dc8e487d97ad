//! Round-trip and corruption tests of the plan format.

extern crate std;
use super::*;
use std::vec;
use std::vec::Vec;

/// `ping` (no FP, a budget, controls both others), `pong` (restartable, 2 vCPUs) and
/// `crasher` (reports its faults to `ping`).
fn sample_cells() -> [CellRecord; 3] {
    let base = CellRecord {
        name: CellRecord::name_field("ping").unwrap(),
        kind: CellKind::Native,
        priority: 5,
        vcpu_count: 1,
        fault_policy: FaultPolicy::Stop,
        restart_limit: 0,
        flags: CellFlags::NO_FP,
        supervisor: NO_SUPERVISOR,
        vcpu_cores: [
            0, ANY_CORE, ANY_CORE, ANY_CORE, ANY_CORE, ANY_CORE, ANY_CORE, ANY_CORE,
        ],
        first_region: 0,
        region_count: 1,
        image_offset: 0x1000,
        image_size: 0x2345,
        controls: 0b110,
        entry_ipa: 0x4000_0000,
        load_ipa: 0x4000_0000,
        budget_us: 2_000,
        period_us: 10_000,
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
    pong.flags = CellFlags::NONE;
    pong.controls = 0;
    pong.budget_us = 0;
    pong.period_us = 0;
    let mut crasher = pong;
    crasher.name = CellRecord::name_field("crasher").unwrap();
    crasher.vcpu_count = 1;
    crasher.first_region = 2;
    crasher.region_count = 1;
    crasher.fault_policy = FaultPolicy::Report;
    crasher.restart_limit = 0;
    crasher.supervisor = 0;
    crasher.budget_us = MIN_PERIOD_US;
    crasher.period_us = MIN_PERIOD_US;
    [base, pong, crasher]
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

/// The sample's parts with `cells` in place of the sample cells.
fn parts_with<'a>(cells: &'a [CellRecord], regions: &'a [RegionRecord]) -> PlanParts<'a> {
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

/// Changes the sample cells and expects the encoder (which runs the decoder's checks) to
/// refuse cell `index` for `reason`.
fn refused(change: impl FnOnce(&mut [CellRecord; 3]), index: usize, reason: &'static str) {
    let mut cells = sample_cells();
    change(&mut cells);
    let regions = sample_regions();
    let mut buf = vec![0u8; 4096];
    assert_eq!(
        encode(&parts_with(&cells, &regions), &mut buf),
        Err(PlanError::BadRecord {
            what: "cell",
            index,
            reason
        })
    );
}

/// Sets byte `at` of an encoded sample and fixes the checksum, then decodes.
fn decode_with_byte(at: usize, value: u8) -> Result<(), PlanError> {
    let mut bytes = encode_sample();
    bytes[at] = value;
    bytes[16..20].fill(0);
    let checksum = crc32(&bytes);
    bytes[16..20].copy_from_slice(&checksum.to_le_bytes());
    Plan::decode(&bytes).map(|_| ())
}

#[test]
fn crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn round_trip_preserves_every_record() {
    let bytes = encode_sample();
    assert_eq!(bytes.len(), encoded_len(3, 3, 1, 1));
    assert_eq!(bytes.len(), 64 + 3 * 80 + 3 * 32 + 8 + 8);
    let plan = Plan::decode(&bytes).unwrap();
    assert_eq!(plan.cell_count(), 3);
    assert_eq!(plan.core_count(), 2);
    assert_eq!(plan.ram_base(), 0x4000_0000);
    assert_eq!(plan.ram_size(), 0x4000_0000);
    assert_eq!(plan.payload_len(), 0x8000);
    let cells: Vec<_> = plan.cells().collect();
    assert_eq!(cells, sample_cells());
    assert_eq!(cells[0].name(), "ping");
    assert_eq!(cells[1].name(), "pong-with-16char");
    assert_eq!(cells[2].name(), "crasher");
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
fn round_trip_preserves_budgets_flags_supervisors_and_control_rights() {
    let bytes = encode_sample();
    let plan = Plan::decode(&bytes).unwrap();
    let [ping, pong, crasher] = [plan.cell(0), plan.cell(1), plan.cell(2)];
    assert_eq!((ping.budget_us, ping.period_us), (2_000, 10_000));
    assert_eq!(ping.budget(), Some((2_000, 10_000)));
    assert_eq!(pong.budget(), None);
    assert_eq!(crasher.budget(), Some((MIN_PERIOD_US, MIN_PERIOD_US)));
    assert_eq!(ping.flags, CellFlags::NO_FP);
    assert!(!ping.uses_fp());
    assert!(pong.uses_fp());
    assert_eq!(crasher.fault_policy, FaultPolicy::Report);
    assert_eq!(crasher.supervisor, 0);
    assert_eq!(crasher.supervisor(), Some(0));
    assert_eq!(ping.supervisor(), None);
    assert_eq!(ping.controls, 0b110);
    assert!(ping.may_control(1) && ping.may_control(2));
    assert!(!ping.may_control(0) && !ping.may_control(MAX_CELLS));
    assert!(!pong.may_control(0));
    // The documented offsets.
    let at = HEADER_LEN;
    assert_eq!(bytes[at + 21], 1);
    assert_eq!(&bytes[at + 22..at + 24], &[0xff, 0xff]);
    assert_eq!(&bytes[at + 44..at + 48], &[0b110, 0, 0, 0]);
    assert_eq!(&bytes[at + 64..at + 68], &2_000u32.to_le_bytes());
    assert_eq!(&bytes[at + 68..at + 72], &10_000u32.to_le_bytes());
    let crasher_at = HEADER_LEN + 2 * CELL_RECORD_LEN;
    assert_eq!(bytes[crasher_at + 19], 2);
    assert_eq!(&bytes[crasher_at + 22..crasher_at + 24], &[0, 0]);
}

#[test]
fn budgets_outside_their_period_are_refused() {
    let reason = "budget not within its period";
    refused(|cells| cells[0].budget_us = 0, 0, reason);
    refused(|cells| cells[1].budget_us = 100, 1, reason);
    refused(|cells| cells[0].period_us = 0, 0, reason);
    refused(|cells| cells[0].budget_us = 10_001, 0, reason);
    refused(
        |cells| {
            cells[0].budget_us = 50;
            cells[0].period_us = MIN_PERIOD_US - 1;
        },
        0,
        reason,
    );
}

#[test]
fn supervisors_are_refused_unless_another_cell_with_fault_policy_report() {
    refused(
        |cells| cells[2].supervisor = NO_SUPERVISOR,
        2,
        "fault policy report without a supervisor",
    );
    refused(|cells| cells[2].supervisor = 2, 2, "cell supervises itself");
    refused(
        |cells| cells[2].supervisor = 3,
        2,
        "supervisor beyond the cell count",
    );
    refused(
        |cells| cells[1].supervisor = 0,
        1,
        "supervisor without fault policy report",
    );
    refused(
        |cells| cells[0].supervisor = 1,
        0,
        "supervisor without fault policy report",
    );
}

#[test]
fn control_rights_over_itself_or_missing_cells_are_refused() {
    refused(
        |cells| cells[1].controls = 0b10,
        1,
        "control right over itself",
    );
    refused(
        |cells| cells[0].controls = 0b1000,
        0,
        "control right over a cell beyond the cell count",
    );
    refused(
        |cells| cells[0].controls = 1 << 31,
        0,
        "control right over a cell beyond the cell count",
    );
}

#[test]
fn control_rights_reach_the_last_of_32_cells() {
    let mut cells = vec![sample_cells()[1]; MAX_CELLS];
    cells[0].controls = !1;
    cells[31].controls = 1;
    let regions = sample_regions();
    let mut buf = vec![0u8; 8192];
    let len = encode(&parts_with(&cells, &regions), &mut buf).unwrap();
    let plan = Plan::decode(&buf[..len]).unwrap();
    assert!(plan.cell(0).may_control(31));
    assert!(plan.cell(31).may_control(0));
}

#[test]
fn unknown_flags_unknown_policies_and_reserved_bytes_are_refused() {
    let ping = HEADER_LEN;
    let bad = |reason| {
        Err(PlanError::BadRecord {
            what: "cell",
            index: 0,
            reason,
        })
    };
    assert_eq!(decode_with_byte(ping + 21, 1), Ok(()));
    assert_eq!(decode_with_byte(ping + 21, 2), bad("unknown flag bits"));
    assert_eq!(decode_with_byte(ping + 21, 0x80), bad("unknown flag bits"));
    assert_eq!(decode_with_byte(ping + 19, 3), bad("unknown fault policy"));
    for offset in 72..CELL_RECORD_LEN {
        assert_eq!(
            decode_with_byte(ping + offset, 1),
            bad("reserved bytes not zero")
        );
    }
    refused(
        |cells| cells[0].flags = CellFlags(4),
        0,
        "unknown flag bits",
    );
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
    for old_or_new in [1u16, 3] {
        bytes[8..10].copy_from_slice(&old_or_new.to_le_bytes());
        let err = Plan::decode(&bytes).unwrap_err();
        assert_eq!(err, PlanError::UnsupportedVersion { found: old_or_new });
        let expected = std::format!("version {old_or_new} does not match this kernel (version 2)");
        assert!(std::format!("{err}").contains(&expected));
    }
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
    let parts = parts_with;
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
