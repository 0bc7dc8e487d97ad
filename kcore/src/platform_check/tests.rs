use super::*;
use abi::plan::{
    encode, CellFlags, CellKind, FaultPolicy, PlanParts, Rights, ANY_CORE, NO_SUPERVISOR,
};

const MIB: u64 = 1 << 20;
const BOARD_RAM: [(u64, u64); 1] = [(0x4000_0000, 1 << 30)];
const RESERVED: [(u64, u64, &str); 4] = [
    (0x4020_0000, 2 * MIB, "image, plan and payload"),
    (0x0800_0000, 0x1_0000, "GIC distributor"),
    (0x080a_0000, 0xf6_0000, "GIC redistributors"),
    (0x0900_0000, 0x1000, "UART"),
];

fn board() -> Board<'static> {
    Board {
        ram: &BOARD_RAM,
        cores: 2,
        reserved: &RESERVED,
    }
}

fn cell(name: &str, first_region: u16, region_count: u16) -> CellRecord {
    CellRecord {
        name: CellRecord::name_field(name).unwrap(),
        kind: CellKind::Native,
        priority: 1,
        vcpu_count: 1,
        fault_policy: FaultPolicy::Stop,
        restart_limit: 0,
        flags: CellFlags::NONE,
        supervisor: NO_SUPERVISOR,
        vcpu_cores: [ANY_CORE; 8],
        first_region,
        region_count,
        image_offset: 0x1000,
        image_size: 0x3000,
        controls: 0,
        entry_ipa: CELL_RAM_IPA,
        load_ipa: CELL_RAM_IPA,
        budget_us: 0,
        period_us: 0,
        first_capability: 0,
        capability_count: 0,
    }
}

fn region(kind: RegionKind, ipa: u64, pa: u64, size: u64) -> RegionRecord {
    RegionRecord {
        ipa,
        pa,
        size,
        kind,
        rights: Rights::RWX,
    }
}

/// Two cells: `a` with RAM, a device and a shared buffer; `b` with RAM and the same
/// shared buffer.
fn good() -> (Vec<CellRecord>, Vec<RegionRecord>) {
    let cells = vec![cell("a", 0, 3), cell("b", 3, 2)];
    let regions = vec![
        region(RegionKind::Ram, CELL_RAM_IPA, 0x4800_0000, 16 * MIB),
        region(RegionKind::Device, 0x0900_0000, 0x0901_0000, 0x1000),
        region(RegionKind::Shared, 0x5000_0000, 0x4a00_0000, 0x1000),
        region(RegionKind::Ram, CELL_RAM_IPA, 0x4900_0000, 16 * MIB),
        region(RegionKind::Shared, 0x6000_0000, 0x4a00_0000, 0x1000),
    ];
    (cells, regions)
}

fn check(
    cells: &[CellRecord],
    regions: &[RegionRecord],
    core_count: u8,
    board: &Board<'_>,
) -> Result<(), PlanMismatch<'static>> {
    let parts = PlanParts {
        ram_base: 0x4000_0000,
        ram_size: 1 << 30,
        core_count,
        payload_len: 0x10_0000,
        cells,
        regions,
        irqs: &[],
        channels: &[],
        endpoints: &[],
        notifications: &[],
        capabilities: &[],
    };
    // Leaked: the error names cells by the plan's own bytes.
    let bytes = vec![0u8; 16 * 1024].leak();
    let len = encode(&parts, bytes).expect("test plans are well formed");
    let plan = Plan::decode(&bytes[..len]).unwrap();
    check_plan(&plan, board)
}

/// Checks `regions` as changed by `change`, expecting an error with exactly `message`.
fn refused(change: impl FnOnce(&mut Vec<CellRecord>, &mut Vec<RegionRecord>), message: &str) {
    let (mut cells, mut regions) = good();
    change(&mut cells, &mut regions);
    let error = check(&cells, &regions, 2, &board()).unwrap_err();
    assert_eq!(error.to_string(), message);
}

#[test]
fn a_good_plan_passes() {
    let (cells, regions) = good();
    assert_eq!(check(&cells, &regions, 2, &board()), Ok(()));
}

#[test]
fn plan_ram_must_be_on_the_board() {
    let (cells, regions) = good();
    let small = [(0x4000_0000, 512 * MIB)];
    let board = Board {
        ram: &small,
        ..board()
    };
    let error = check(&cells, &regions, 2, &board).unwrap_err();
    assert_eq!(
        error,
        PlanMismatch::PlanRamNotOnBoard {
            plan: Span {
                base: 0x4000_0000,
                size: 1 << 30
            },
            board: Some(Span {
                base: 0x4000_0000,
                size: 512 * MIB
            }),
            banks: 1,
        }
    );
    assert_eq!(
        error.to_string(),
        "the plan was laid out for RAM 0x40000000-0x80000000 but the board has RAM 0x40000000-0x60000000"
    );
    let two = [(0x4000_0000, 256 * MIB), (0x5000_0000, 256 * MIB)];
    let board2 = Board { ram: &two, ..board };
    assert_eq!(
        check(&cells, &regions, 2, &board2).unwrap_err().to_string(),
        "the plan was laid out for RAM 0x40000000-0x80000000 but the board has RAM 0x40000000-0x50000000 and 1 more banks"
    );
    let none = Board { ram: &[], ..board };
    assert_eq!(
        check(&cells, &regions, 2, &none).unwrap_err().to_string(),
        "the plan was laid out for RAM 0x40000000-0x80000000 but the board has no RAM"
    );
}

#[test]
fn cores_must_exist() {
    let (cells, regions) = good();
    let one = Board {
        cores: 1,
        ..board()
    };
    assert_eq!(check(&cells, &regions, 1, &one), Ok(()));
    assert_eq!(
        check(&cells, &regions, 2, &one).unwrap_err().to_string(),
        "the plan uses 2 cores but the board has 1"
    );
}

#[test]
fn region_records_belong_to_one_cell() {
    refused(
        |cells, _| cells[1].first_region = 2,
        "cell 'a' and cell 'b' claim the same region records; each region belongs to one cell",
    );
}

#[test]
fn memory_regions_must_be_in_ram() {
    refused(
        |_, regions| regions[3].pa = 0x7ff0_0000,
        "cell 'b' region 0 (RAM, IPA 0x40000000-0x41000000 at PA 0x7ff00000-0x80f00000) is not inside the board's RAM",
    );
    refused(
        |_, regions| regions[2].pa = 0x1000_0000,
        "cell 'a' region 2 (shared, IPA 0x50000000-0x50001000 at PA 0x10000000-0x10001000) is not inside the board's RAM",
    );
}

#[test]
fn regions_must_avoid_the_kernel() {
    refused(
        |_, regions| regions[0].pa = 0x4000_0000,
        "cell 'a' region 0 (RAM, IPA 0x40000000-0x41000000 at PA 0x40000000-0x41000000) overlaps the kernel's image, plan and payload at 0x40200000-0x40400000",
    );
    refused(
        |_, regions| regions[1].pa = 0x0900_0000,
        "cell 'a' region 1 (device, IPA 0x9000000-0x9001000 at PA 0x9000000-0x9001000) overlaps the kernel's UART at 0x9000000-0x9001000",
    );
    refused(
        |_, regions| regions[1].pa = 0x0810_0000,
        "cell 'a' region 1 (device, IPA 0x9000000-0x9001000 at PA 0x8100000-0x8101000) overlaps the kernel's GIC redistributors at 0x80a0000-0x9000000",
    );
}

#[test]
fn devices_must_not_be_ram() {
    refused(
        |_, regions| regions[1].pa = 0x7000_0000,
        "cell 'a' region 1 (device, IPA 0x9000000-0x9001000 at PA 0x70000000-0x70001000) is a device region but overlaps the board's RAM 0x40000000-0x80000000",
    );
}

#[test]
fn ram_is_never_aliased() {
    refused(
        |_, regions| regions[3].pa = 0x48f0_0000,
        "cell 'a' region 0 (RAM, IPA 0x40000000-0x41000000 at PA 0x48000000-0x49000000) overlaps cell 'b' region 0 (RAM, IPA 0x40000000-0x41000000 at PA 0x48f00000-0x49f00000): RAM belongs to one region only, and shared memory may be mapped again only whole",
    );
    // Shared memory inside another cell's RAM.
    refused(
        |_, regions| regions[4].pa = 0x4900_0000,
        "cell 'b' region 0 (RAM, IPA 0x40000000-0x41000000 at PA 0x49000000-0x4a000000) overlaps cell 'b' region 1 (shared, IPA 0x60000000-0x60001000 at PA 0x49000000-0x49001000): RAM belongs to one region only, and shared memory may be mapped again only whole",
    );
}

#[test]
fn shared_memory_aliases_only_whole() {
    refused(
        |_, regions| regions[4].size = 0x2000,
        "cell 'a' region 2 (shared, IPA 0x50000000-0x50001000 at PA 0x4a000000-0x4a001000) overlaps cell 'b' region 1 (shared, IPA 0x60000000-0x60002000 at PA 0x4a000000-0x4a002000): RAM belongs to one region only, and shared memory may be mapped again only whole",
    );
    // Identical shared regions in three places (twice in one cell) are fine.
    let (mut cells, mut regions) = good();
    regions.push(region(RegionKind::Shared, 0x7000_0000, 0x4a00_0000, 0x1000));
    cells[1].region_count = 3;
    assert_eq!(check(&cells, &regions, 2, &board()), Ok(()));
}

#[test]
fn foreign_regions_map_exactly_another_cells_ram() {
    // Cell `b` maps the whole RAM of `a` (a device model): fine.
    let (mut cells, mut regions) = good();
    regions.push(region(
        RegionKind::Foreign,
        0x8000_0000,
        0x4800_0000,
        16 * MIB,
    ));
    cells[1].region_count = 3;
    assert_eq!(check(&cells, &regions, 2, &board()), Ok(()));
    // Part of it: a conflict with the RAM.
    let mut partial = regions.clone();
    partial[5].size = MIB;
    assert_eq!(
        check(&cells, &partial, 2, &board()).map_err(|e| e.to_string()),
        Err("cell 'a' region 0 (RAM, IPA 0x40000000-0x41000000 at PA 0x48000000-0x49000000) overlaps cell 'b' region 2 (another cell's RAM, IPA 0x80000000-0x80100000 at PA 0x48000000-0x48100000): RAM belongs to one region only, and shared memory may be mapped again only whole".to_string())
    );
    // Its own RAM: refused.
    let mut own = regions.clone();
    own[5].pa = 0x4900_0000;
    assert!(check(&cells, &own, 2, &board()).is_err());
    // Memory that is no cell's RAM.
    let mut loose = regions;
    loose[5].pa = 0x5000_0000;
    assert_eq!(
        check(&cells, &loose, 2, &board()).map_err(|e| e.to_string()),
        Err("cell 'b' region 2 (another cell's RAM, IPA 0x80000000-0x81000000 at PA 0x50000000-0x51000000) maps another cell's RAM but matches no cell's RAM region".to_string())
    );
}

#[test]
fn ipa_ranges_of_a_cell_do_not_overlap() {
    refused(
        |_, regions| regions[2].ipa = CELL_RAM_IPA + 15 * MIB,
        "cell 'a' region 0 (RAM, IPA 0x40000000-0x41000000 at PA 0x48000000-0x49000000) overlaps cell 'a' region 2 (shared, IPA 0x40f00000-0x40f01000 at PA 0x4a000000-0x4a001000) in the cell's address space",
    );
    // The same IPA in two cells is normal.
    let (cells, mut regions) = good();
    regions[4].ipa = 0x5000_0000;
    assert_eq!(check(&cells, &regions, 2, &board()), Ok(()));
}

#[test]
fn each_cell_has_main_ram_holding_image_and_entry() {
    refused(
        |_, regions| regions[3].ipa = 0x8000_0000,
        "cell 'b' has no RAM region at IPA 0x40000000",
    );
    refused(
        |_, regions| regions[3].kind = RegionKind::Shared,
        "cell 'b' has no RAM region at IPA 0x40000000",
    );
    refused(
        |cells, _| cells[0].load_ipa = CELL_RAM_IPA + 16 * MIB - 0x2000,
        "cell 'a': its image at IPA 0x40ffe000-0x41001000 does not fit in its RAM at IPA 0x40000000-0x41000000",
    );
    refused(
        |cells, _| cells[1].entry_ipa = CELL_RAM_IPA + 16 * MIB,
        "cell 'b': its entry point 0x41000000 is outside its RAM at IPA 0x40000000-0x41000000",
    );
    refused(
        |cells, _| cells[1].load_ipa = 0x3fff_f000,
        "cell 'b': its image at IPA 0x3ffff000-0x40002000 does not fit in its RAM at IPA 0x40000000-0x41000000",
    );
    // Image and entry anywhere inside RAM are fine, up to its last byte.
    let (mut cells, regions) = good();
    cells[0].load_ipa = CELL_RAM_IPA + 16 * MIB - 0x3000;
    cells[0].entry_ipa = CELL_RAM_IPA + 16 * MIB - 4;
    assert_eq!(check(&cells, &regions, 2, &board()), Ok(()));
}

#[test]
fn a_cell_without_regions_has_no_main_ram() {
    let cells = vec![cell("lonely", 0, 0)];
    assert_eq!(
        check(&cells, &[], 1, &board()).unwrap_err().to_string(),
        "cell 'lonely' has no RAM region at IPA 0x40000000"
    );
}
