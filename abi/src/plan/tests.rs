//! Round-trip and corruption tests of the plan format.

extern crate std;
use super::*;
use std::vec;
use std::vec::Vec;

/// `ping` (no FP, a budget, controls both others), `pong` (restartable, 2 vCPUs, serves
/// the endpoint) and `crasher` (reports its faults to `ping`, calls the endpoint).
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
        first_capability: 0,
        capability_count: 5,
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
    pong.first_capability = 5;
    pong.capability_count = 5;
    let mut crasher = pong;
    crasher.name = CellRecord::name_field("crasher").unwrap();
    crasher.vcpu_count = 1;
    crasher.first_region = 3;
    crasher.region_count = 1;
    crasher.fault_policy = FaultPolicy::Report;
    crasher.restart_limit = 0;
    crasher.supervisor = 0;
    crasher.budget_us = MIN_PERIOD_US;
    crasher.period_us = MIN_PERIOD_US;
    crasher.first_capability = 10;
    crasher.capability_count = 1;
    [base, pong, crasher]
}

/// ping: RAM; pong: RAM and a shared buffer (read-write); crasher: a UART.
fn sample_regions() -> [RegionRecord; 4] {
    let ram = RegionRecord {
        ipa: 0x4000_0000,
        pa: 0x4100_0000,
        size: 0x10_0000,
        kind: RegionKind::Ram,
        rights: Rights::RWX,
    };
    let mut ram2 = ram;
    ram2.pa = 0x4120_0000;
    let shared = RegionRecord {
        ipa: 0x4010_0000,
        pa: 0x4140_0000,
        size: 0x1_0000,
        kind: RegionKind::Shared,
        rights: Rights::R.union(Rights::W),
    };
    let uart = RegionRecord {
        ipa: 0x0900_0000,
        pa: 0x0900_0000,
        size: 0x1000,
        kind: RegionKind::Device,
        rights: Rights::R.union(Rights::W),
    };
    [ram, ram2, shared, uart]
}

fn capability(kind: CapabilityKind, rights: u64, object: u32, badge: u32) -> CapabilityRecord {
    CapabilityRecord {
        kind,
        rights: rights as u8,
        object,
        badge,
    }
}

/// ping: calls endpoint 0 (badge 7), waits on notification 0, signals notification 1,
/// controls pong and crasher. pong: serves endpoint 0, waits on and signals notification
/// 1, signals notification 0, reads the shared buffer, owns INTID 33. crasher: calls
/// endpoint 0 (badge 2).
fn sample_capabilities() -> [CapabilityRecord; 11] {
    use crate::hvc::{
        CONTROL, ENDPOINT_CALL, ENDPOINT_SERVE, NOTIFICATION_SIGNAL, NOTIFICATION_WAIT,
    };
    use CapabilityKind::*;
    [
        capability(Endpoint, ENDPOINT_CALL, 0, 7),
        capability(Notification, NOTIFICATION_WAIT, 0, 0),
        capability(Notification, NOTIFICATION_SIGNAL, 1, 0),
        capability(CellControl, CONTROL, 1, 0),
        capability(CellControl, CONTROL, 2, 0),
        capability(Endpoint, ENDPOINT_SERVE, 0, 0),
        capability(Notification, NOTIFICATION_WAIT | NOTIFICATION_SIGNAL, 1, 0),
        capability(Notification, NOTIFICATION_SIGNAL, 0, 0),
        capability(SharedMemory, Rights::R.0.into(), 2, 0),
        capability(Interrupt, 0, 33, 0),
        capability(Endpoint, ENDPOINT_CALL, 0, 2),
    ]
}

/// Everything a sample plan holds, owned, so that tests can change any record.
struct Sample {
    cells: Vec<CellRecord>,
    regions: Vec<RegionRecord>,
    irqs: Vec<IrqRecord>,
    channels: Vec<ChannelRecord>,
    endpoints: Vec<EndpointRecord>,
    notifications: Vec<NotificationRecord>,
    capabilities: Vec<CapabilityRecord>,
}

impl Sample {
    fn new() -> Sample {
        Sample {
            cells: sample_cells().to_vec(),
            regions: sample_regions().to_vec(),
            irqs: vec![IrqRecord {
                intid: 33,
                cell: 1,
                vcpu: 1,
            }],
            channels: vec![ChannelRecord { from: 0, to: 1 }],
            endpoints: vec![EndpointRecord { server: 1 }],
            notifications: vec![
                NotificationRecord {
                    waiter: 0,
                    virtual_irq: 48,
                    vcpu: 0,
                },
                NotificationRecord {
                    waiter: 1,
                    virtual_irq: NO_VIRTUAL_IRQ,
                    vcpu: 0,
                },
            ],
            capabilities: sample_capabilities().to_vec(),
        }
    }

    fn parts(&self) -> PlanParts<'_> {
        PlanParts {
            ram_base: 0x4000_0000,
            ram_size: 0x4000_0000,
            core_count: 2,
            payload_len: 0x8000,
            cells: &self.cells,
            regions: &self.regions,
            irqs: &self.irqs,
            channels: &self.channels,
            endpoints: &self.endpoints,
            notifications: &self.notifications,
            capabilities: &self.capabilities,
        }
    }

    fn encode(&self) -> Result<Vec<u8>, PlanError> {
        let mut buf = vec![0u8; 8192];
        let len = encode(&self.parts(), &mut buf)?;
        buf.truncate(len);
        Ok(buf)
    }
}

fn encode_sample() -> Vec<u8> {
    Sample::new().encode().unwrap()
}

/// Changes the sample and expects the encoder (which runs the decoder's checks) to refuse
/// `what` record `index` for `reason`.
fn refused_record(
    change: impl FnOnce(&mut Sample),
    what: &'static str,
    index: usize,
    reason: &'static str,
) {
    let mut sample = Sample::new();
    change(&mut sample);
    assert_eq!(
        sample.encode(),
        Err(PlanError::BadRecord {
            what,
            index,
            reason
        })
    );
}

/// Changes the sample cells and expects cell `index` to be refused for `reason`.
fn refused(change: impl FnOnce(&mut [CellRecord]), index: usize, reason: &'static str) {
    refused_record(|sample| change(&mut sample.cells), "cell", index, reason);
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
    assert_eq!(bytes.len(), Sample::new().parts().counts().encoded_len());
    assert_eq!(
        bytes.len(),
        64 + 3 * 80 + 4 * 32 + 8 + 8 + 4 + 2 * 8 + 11 * 12
    );
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
    assert_eq!(regions, sample_regions()[1..3]);
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
    let mut sample = Sample::new();
    let mut cell = sample_cells()[1];
    (cell.first_region, cell.region_count) = (0, 1);
    sample.cells = vec![cell; MAX_CELLS];
    sample.capabilities.clear();
    sample.endpoints.clear();
    sample.notifications.clear();
    sample.irqs.clear();
    let control = |cell| capability(CapabilityKind::CellControl, crate::hvc::CONTROL, cell, 0);
    for (index, cell) in sample.cells.iter_mut().enumerate() {
        cell.first_capability = sample.capabilities.len() as u16;
        cell.controls = match index {
            0 => !1,
            31 => 1,
            _ => 0,
        };
        for controlled in 0..MAX_CELLS as u32 {
            if cell.controls & (1 << controlled) != 0 {
                sample.capabilities.push(control(controlled));
            }
        }
        cell.capability_count = sample.capabilities.len() as u16 - cell.first_capability;
    }
    let bytes = sample.encode().unwrap();
    let plan = Plan::decode(&bytes).unwrap();
    assert!(plan.cell(0).may_control(31));
    assert!(plan.cell(31).may_control(0));
    assert_eq!(plan.capability(0, 30), Some(control(31)));
    assert_eq!(plan.capability(31, 0), Some(control(0)));
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
    assert_eq!(decode_with_byte(ping + 21, 3), Ok(()));
    assert_eq!(decode_with_byte(ping + 21, 0x80), bad("unknown flag bits"));
    assert_eq!(decode_with_byte(ping + 19, 3), bad("unknown fault policy"));
    for offset in 76..CELL_RECORD_LEN {
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
fn only_a_native_cell_runs_at_el0() {
    refused(
        |cells| {
            cells[0].kind = CellKind::Guest;
            cells[0].flags = CellFlags::EL0;
        },
        0,
        "a guest cell cannot run at EL0",
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
    for old_or_new in [2u16, 4] {
        bytes[8..10].copy_from_slice(&old_or_new.to_le_bytes());
        let err = Plan::decode(&bytes).unwrap_err();
        assert_eq!(err, PlanError::UnsupportedVersion { found: old_or_new });
        let expected = std::format!("version {old_or_new} does not match this kernel (version 3)");
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
    refused(
        |cells| cells[0].priority = MAX_PRIORITY + 1,
        0,
        "priority out of range",
    );
    refused(
        |cells| cells[1].vcpu_cores[1] = 2, // core count is 2
        1,
        "vCPU pinned to a core beyond the core count",
    );
    let mut sample = Sample::new();
    sample.cells.clear();
    assert!(sample.encode().is_err());
    let mut buf = vec![0u8; 10];
    assert!(matches!(
        encode(&Sample::new().parts(), &mut buf),
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

#[test]
fn round_trip_preserves_endpoints_notifications_and_capability_tables() {
    let bytes = encode_sample();
    let plan = Plan::decode(&bytes).unwrap();
    assert_eq!(
        (
            plan.endpoint_count(),
            plan.notification_count(),
            plan.capability_count()
        ),
        (1, 2, 11)
    );
    assert_eq!(plan.endpoint(0), EndpointRecord { server: 1 });
    assert_eq!(plan.notification(0).virtual_irq(), Some(48));
    assert_eq!(plan.notification(1).virtual_irq(), None);
    assert_eq!(plan.notification(1).waiter, 1);
    let all: Vec<_> = (0..11).map(|i| plan.capability_record(i)).collect();
    assert_eq!(all, sample_capabilities());
    for (cell, range) in [(0, 0..5), (1, 5..10), (2, 10..11)] {
        let record = plan.cell(cell);
        let table: Vec<_> = plan.capabilities_of(&record).collect();
        assert_eq!(table, sample_capabilities()[range.clone()]);
        for slot in 0..range.len() {
            assert_eq!(
                plan.capability(cell, slot),
                Some(sample_capabilities()[range.start + slot])
            );
        }
        assert_eq!(plan.capability(cell, range.len()), None);
        assert_eq!(record.capability_index(range.len()), None);
    }
    let call = plan.capability(0, 0).unwrap();
    assert!(call.grants(crate::hvc::ENDPOINT_CALL));
    assert!(!call.grants(crate::hvc::ENDPOINT_SERVE));
    assert!(!call.grants(0));
    assert_eq!(call.badge, 7);
    // The documented offsets.
    assert_eq!(&bytes[56..62], &[1, 0, 2, 0, 11, 0]);
    let ping = HEADER_LEN;
    assert_eq!(&bytes[ping + 72..ping + 76], &[0, 0, 5, 0]);
    let endpoints = bytes.len() - 11 * CAPABILITY_RECORD_LEN - 2 * NOTIFICATION_RECORD_LEN - 4;
    assert_eq!(&bytes[endpoints..endpoints + 4], &[1, 0, 0, 0]);
    let notification = endpoints + ENDPOINT_RECORD_LEN;
    assert_eq!(
        &bytes[notification..notification + 8],
        &[0, 0, 48, 0, 0, 0, 0, 0]
    );
    let first = bytes.len() - 11 * CAPABILITY_RECORD_LEN;
    assert_eq!(
        &bytes[first..first + CAPABILITY_RECORD_LEN],
        &[1, 1, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0]
    );
}

#[test]
fn capability_kinds_rights_and_objects_are_checked() {
    use crate::hvc::{CONTROL, ENDPOINT_CALL, ENDPOINT_SERVE, NOTIFICATION_WAIT};
    let cap = |index: usize, change: fn(&mut CapabilityRecord), reason: &'static str| {
        refused_record(
            |sample| change(&mut sample.capabilities[index]),
            "capability",
            index,
            reason,
        );
    };
    cap(
        0,
        |c| c.rights = (ENDPOINT_CALL | ENDPOINT_SERVE) as u8,
        "endpoint rights are not exactly call or serve",
    );
    cap(
        0,
        |c| c.rights = 0,
        "endpoint rights are not exactly call or serve",
    );
    cap(0, |c| c.object = 1, "endpoint beyond the endpoint table");
    cap(
        5,
        |c| c.badge = 1,
        "badge on a capability other than an endpoint call",
    );
    cap(
        1,
        |c| c.rights = 4,
        "notification rights not signal and/or wait",
    );
    cap(
        1,
        |c| c.rights = 0,
        "notification rights not signal and/or wait",
    );
    cap(
        2,
        |c| c.object = 2,
        "notification beyond the notification table",
    );
    cap(
        8,
        |c| c.object = 1,
        "memory capability names a region that is not shared memory",
    );
    cap(
        8,
        |c| c.object = 3,
        "memory capability names a region of another cell",
    );
    cap(
        8,
        |c| c.rights = Rights::X.0,
        "memory rights not a non-empty subset of the region's",
    );
    cap(
        8,
        |c| c.rights = 0,
        "memory rights not a non-empty subset of the region's",
    );
    cap(9, |c| c.rights = 1, "rights on an interrupt capability");
    cap(9, |c| c.object = 34, "interrupt not routed to the cell");
    cap(
        3,
        |c| c.rights = 0,
        "control rights are not exactly control",
    );
    cap(3, |c| c.object = 3, "cell beyond the cell count");
    cap(
        3,
        |c| c.object = 0,
        "control capability over the cell itself",
    );
    cap(
        10,
        |c| c.kind = CapabilityKind::CellControl,
        "control capability without the control right",
    );
    // Same kind and object twice in one table.
    cap(
        4,
        |c| *c = capability(CapabilityKind::CellControl, CONTROL, 1, 0),
        "second capability to the same object",
    );
    // The same notification in two slots, even with different rights.
    cap(7, |c| c.object = 1, "second capability to the same object");
    // An interrupt routed to another cell than the holder.
    refused_record(
        |sample| sample.capabilities[10] = capability(CapabilityKind::Interrupt, 0, 33, 0),
        "capability",
        10,
        "interrupt not routed to the cell",
    );
    // A wait capability outside the waiter.
    cap(
        2,
        |c| c.rights = NOTIFICATION_WAIT as u8,
        "wait capability held by a cell other than the waiter",
    );
}

#[test]
fn servers_and_waiters_hold_exactly_their_own_capabilities() {
    use crate::hvc::{ENDPOINT_CALL, ENDPOINT_SERVE, NOTIFICATION_SIGNAL};
    refused_record(
        |sample| sample.capabilities[0].rights = ENDPOINT_SERVE as u8,
        "capability",
        0,
        "serve capability held by a cell other than the server",
    );
    refused_record(
        |sample| sample.capabilities[5].rights = ENDPOINT_CALL as u8,
        "capability",
        5,
        "call capability held by the endpoint's own server",
    );
    refused_record(
        |sample| {
            sample.capabilities[5] =
                capability(CapabilityKind::Notification, NOTIFICATION_SIGNAL, 0, 0);
            sample.capabilities[7].object = 1;
            sample.capabilities[6].rights = NOTIFICATION_SIGNAL as u8 | 2;
        },
        "capability",
        7,
        "second capability to the same object",
    );
    // The server's serve capability replaced by something else.
    refused_record(
        |sample| {
            sample.capabilities[5] = capability(CapabilityKind::Interrupt, 0, 33, 0);
            sample.capabilities[9] =
                capability(CapabilityKind::SharedMemory, Rights::W.0.into(), 2, 0);
            sample.capabilities[8] =
                capability(CapabilityKind::Notification, NOTIFICATION_SIGNAL, 0, 0);
            sample.capabilities[7] = capability(
                CapabilityKind::Notification,
                NOTIFICATION_SIGNAL | crate::hvc::NOTIFICATION_WAIT,
                1,
                0,
            );
            sample.capabilities[6] = capability(CapabilityKind::Interrupt, 0, 33, 0);
        },
        "capability",
        6,
        "second capability to the same object",
    );
    refused_record(
        |sample| {
            sample.capabilities[5] = capability(CapabilityKind::Interrupt, 0, 33, 0);
            sample.capabilities[9] =
                capability(CapabilityKind::SharedMemory, Rights::W.0.into(), 2, 0);
            sample.capabilities[8] = capability(CapabilityKind::Endpoint, 0, 0, 0);
            sample.capabilities.remove(8);
            sample.cells[1].capability_count = 4;
            sample.cells[2].first_capability = 9;
        },
        "endpoint",
        0,
        "its server holds no serve capability",
    );
    refused_record(
        |sample| {
            sample.capabilities.remove(1);
            sample.cells[0].capability_count = 4;
            sample.cells[1].first_capability = 4;
            sample.cells[2].first_capability = 9;
        },
        "notification",
        0,
        "its waiter holds no wait capability",
    );
}

#[test]
fn capability_ranges_tile_the_table_in_cell_order() {
    refused(
        |cells| cells[1].first_capability = 4,
        1,
        "capability range does not follow the previous cell's",
    );
    refused(
        |cells| cells[2].capability_count = 2,
        2,
        "capability range beyond the capability table",
    );
    refused(
        |cells| cells[0].capability_count = MAX_CAPABILITIES_PER_CELL as u16 + 1,
        0,
        "too many capabilities",
    );
    refused_record(
        |sample| {
            sample.cells[2].capability_count = 0;
        },
        "capability",
        10,
        "held by no cell",
    );
    // A control bit without its capability, and the reverse.
    refused_record(
        |sample| sample.cells[0].controls = 0b010,
        "capability",
        4,
        "control capability without the control right",
    );
    refused_record(
        |sample| {
            sample.capabilities.remove(4);
            sample.cells[0].capability_count = 4;
            sample.cells[1].first_capability = 4;
            sample.cells[2].first_capability = 9;
        },
        "cell",
        0,
        "control right without a control capability",
    );
}

#[test]
fn notification_records_are_checked() {
    let notification = |change: fn(&mut NotificationRecord), reason| {
        refused_record(
            |sample| change(&mut sample.notifications[0]),
            "notification",
            0,
            reason,
        );
    };
    notification(|n| n.waiter = 3, "waiter beyond the cell count");
    notification(|n| n.virtual_irq = 15, "virtual interrupt out of range");
    notification(|n| n.virtual_irq = 1020, "virtual interrupt out of range");
    notification(|n| n.vcpu = 1, "vCPU beyond the waiter's vCPU count");
    notification(
        |n| {
            n.virtual_irq = NO_VIRTUAL_IRQ;
            n.vcpu = 1;
        },
        "vCPU without a virtual interrupt",
    );
    refused_record(
        |sample| sample.endpoints[0].server = 3,
        "endpoint",
        0,
        "server beyond the cell count",
    );
    // Accepted edges: the lowest and highest virtual interrupt, the waiter's last vCPU.
    let mut sample = Sample::new();
    sample.notifications[1].virtual_irq = MAX_VIRTUAL_IRQ;
    sample.notifications[1].vcpu = 1;
    sample.notifications[0].virtual_irq = MIN_VIRTUAL_IRQ;
    assert!(sample.encode().is_ok());
}

#[test]
fn reserved_bytes_of_the_new_records_and_the_header_are_refused() {
    let bytes = encode_sample();
    let header = |reason| {
        Err(PlanError::BadRecord {
            what: "header",
            index: 0,
            reason,
        })
    };
    for at in [29, 30, 31, 62, 63] {
        assert_eq!(decode_with_byte(at, 1), header("reserved bytes not zero"));
    }
    let capabilities = bytes.len() - 11 * CAPABILITY_RECORD_LEN;
    let notifications = capabilities - 2 * NOTIFICATION_RECORD_LEN;
    let endpoints = notifications - ENDPOINT_RECORD_LEN;
    let bad = |what, index, reason| {
        Err(PlanError::BadRecord {
            what,
            index,
            reason,
        })
    };
    assert_eq!(
        decode_with_byte(endpoints + 3, 1),
        bad("endpoint", 0, "reserved bytes not zero")
    );
    for offset in 5..8 {
        assert_eq!(
            decode_with_byte(notifications + NOTIFICATION_RECORD_LEN + offset, 1),
            bad("notification", 1, "reserved bytes not zero")
        );
    }
    assert_eq!(
        decode_with_byte(capabilities + 2, 1),
        bad("capability", 0, "reserved bytes not zero")
    );
    assert_eq!(
        decode_with_byte(capabilities, 6),
        bad("capability", 0, "unknown kind")
    );
    assert_eq!(
        decode_with_byte(capabilities, 0),
        bad("capability", 0, "unknown kind")
    );
}

#[test]
fn too_many_objects_are_refused() {
    let mut sample = Sample::new();
    sample.endpoints = vec![EndpointRecord { server: 1 }; MAX_ENDPOINTS + 1];
    assert_eq!(
        sample.encode(),
        Err(PlanError::TooMany {
            what: "endpoints",
            count: MAX_ENDPOINTS + 1,
            max: MAX_ENDPOINTS
        })
    );
    let mut sample = Sample::new();
    sample.capabilities = vec![sample.capabilities[0]; MAX_CAPABILITIES + 1];
    assert!(matches!(
        sample.encode(),
        Err(PlanError::TooMany {
            what: "capabilities",
            ..
        })
    ));
}
