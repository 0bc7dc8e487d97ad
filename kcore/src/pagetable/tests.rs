use super::*;

const POOL_PA: u64 = 0x4010_0000;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn tables(count: usize) -> Vec<Table> {
    // Dirty memory, to show that allocated tables are zeroed.
    vec![[0xdead_beef_dead_beef_u64; 512]; count]
}

/// The leaf descriptor for `va` and the level it was found at, read straight from memory.
fn leaf(table: &PageTable<'_>, va: u64) -> Option<(u32, u64)> {
    let mut index = table.root;
    for level in 1..=3 {
        let descriptor = table.pool.tables[index][entry_index(va, level)];
        if descriptor & VALID == 0 {
            return None;
        }
        if level < 3 && descriptor & TABLE_OR_PAGE != 0 {
            index = ((descriptor & ADDRESS_MASK) - POOL_PA) as usize / 4096;
        } else {
            return Some((level, descriptor));
        }
    }
    None
}

#[test]
fn pool_hands_out_zeroed_tables_at_contiguous_addresses() {
    let mut memory = tables(4);
    let table = PageTable::new(TablePool::new(&mut memory, POOL_PA), Regime::Stage2).unwrap();
    assert_eq!(table.root_pa(), POOL_PA);
    assert_eq!(table.tables_used(), 1);
    assert!(table.pool.tables[0].iter().all(|&d| d == 0));
    assert_eq!(table.pool.tables[1][0], 0xdead_beef_dead_beef);
    assert_eq!(table.pool.physical_address(3), POOL_PA + 3 * 4096);
}

#[test]
fn unusable_pool_addresses_give_an_empty_pool() {
    let mut memory = tables(2);
    assert_eq!(TablePool::new(&mut memory, POOL_PA + 8).free(), 0);
    assert_eq!(TablePool::new(&mut memory, (1 << 48) - 4096).free(), 0);
    assert_eq!(TablePool::new(&mut memory, !0xfff).free(), 0);
    assert_eq!(TablePool::new(&mut memory, (1 << 48) - 8192).free(), 2);
    assert!(matches!(
        PageTable::new(TablePool::new(&mut memory, 0x123), Regime::Stage2),
        Err(MapError::OutOfTables)
    ));
}

#[test]
fn table_descriptors_point_at_the_next_table() {
    let mut memory = tables(4);
    let mut table = PageTable::new(TablePool::new(&mut memory, POOL_PA), Regime::Stage2).unwrap();
    table
        .map(
            0x4000_0000,
            0x8000_0000,
            4096,
            MemoryType::Normal,
            Access::READ,
        )
        .unwrap();
    assert_eq!(table.tables_used(), 3);
    // Level-1 entry 1 (0x4000_0000) -> table 1, level-2 entry 0 -> table 2.
    assert_eq!(table.pool.tables[0][1], (POOL_PA + 4096) | 0b11);
    assert_eq!(table.pool.tables[1][0], (POOL_PA + 2 * 4096) | 0b11);
    assert_eq!(table.pool.tables[0][0], 0);
    assert_eq!(table.pool.tables[1][1], 0);
}

#[test]
fn el2_stage1_normal_read_write_page_bits() {
    let mut memory = tables(4);
    let mut table =
        PageTable::new(TablePool::new(&mut memory, POOL_PA), Regime::El2Stage1).unwrap();
    table
        .map(
            0x1000,
            0x4020_1000,
            4096,
            MemoryType::Normal,
            Access::READ_WRITE,
        )
        .unwrap();
    let (level, d) = leaf(&table, 0x1000).unwrap();
    assert_eq!(level, 3);
    assert_eq!(d & 0b11, 0b11, "valid page");
    assert_eq!(d & ADDRESS_MASK, 0x4020_1000);
    assert_eq!((d >> 2) & 0b111, 0, "AttrIndx 0 = Normal");
    assert_eq!((d >> 6) & 1, 1, "AP[1] RES1");
    assert_eq!((d >> 7) & 1, 0, "AP[2] clear: writable");
    assert_eq!((d >> 8) & 0b11, 0b11, "inner shareable");
    assert_eq!((d >> 10) & 1, 1, "access flag");
    assert_eq!((d >> 54) & 1, 1, "not executable");
    assert_eq!(d, 0x0040_0000_4020_1743);
}

#[test]
fn el2_stage1_read_only_executable_and_device_bits() {
    let mut memory = tables(4);
    let mut table =
        PageTable::new(TablePool::new(&mut memory, POOL_PA), Regime::El2Stage1).unwrap();
    table
        .map(
            0x0,
            0x4020_0000,
            4096,
            MemoryType::Normal,
            Access::READ_EXECUTE,
        )
        .unwrap();
    let (_, code) = leaf(&table, 0).unwrap();
    assert_eq!((code >> 7) & 1, 1, "AP[2] set: read-only");
    assert_eq!((code >> 54) & 1, 0, "executable");
    assert_eq!(code, 0x4020_07c3);

    table
        .map(
            0x2000,
            0x0900_0000,
            4096,
            MemoryType::Device,
            Access::READ_WRITE,
        )
        .unwrap();
    let (_, uart) = leaf(&table, 0x2000).unwrap();
    assert_eq!((uart >> 2) & 0b111, 1, "AttrIndx 1 = Device-nGnRE");
    assert_eq!((uart >> 8) & 0b11, 0, "Device is not shareable-encoded");
    assert_eq!((uart >> 54) & 1, 1, "Device is never executable");
    assert_eq!(uart, 0x0040_0000_0900_0447);
    assert_eq!(MAIR_EL2_VALUE & 0xff, 0xff);
    assert_eq!((MAIR_EL2_VALUE >> 8) & 0xff, 0x04);
}

#[test]
fn stage2_bits() {
    let mut memory = tables(4);
    let mut table = PageTable::new(TablePool::new(&mut memory, POOL_PA), Regime::Stage2).unwrap();
    table
        .map(
            0x0,
            0x4800_0000,
            4096,
            MemoryType::Normal,
            Access::READ_WRITE_EXECUTE,
        )
        .unwrap();
    let (_, rwx) = leaf(&table, 0).unwrap();
    assert_eq!((rwx >> 2) & 0b1111, 0b1111, "MemAttr Normal WB/WB");
    assert_eq!((rwx >> 6) & 0b11, 0b11, "S2AP read and write");
    assert_eq!((rwx >> 8) & 0b11, 0b11, "inner shareable");
    assert_eq!((rwx >> 10) & 1, 1, "access flag");
    assert_eq!((rwx >> 54) & 1, 0, "executable");
    assert_eq!(rwx, 0x4800_07ff);

    table
        .map(0x1000, 0x4800_1000, 4096, MemoryType::Normal, Access::READ)
        .unwrap();
    let (_, read_only) = leaf(&table, 0x1000).unwrap();
    assert_eq!((read_only >> 6) & 0b11, 0b01, "S2AP read only");
    assert_eq!((read_only >> 54) & 1, 1);

    table
        .map(
            0x2000,
            0x4800_2000,
            4096,
            MemoryType::Normal,
            Access::new(false, false, true),
        )
        .unwrap();
    let (_, execute_only) = leaf(&table, 0x2000).unwrap();
    assert_eq!((execute_only >> 6) & 0b11, 0b00, "S2AP no data access");
    assert_eq!((execute_only >> 54) & 1, 0);

    table
        .map(
            0x3000,
            0x0900_0000,
            4096,
            MemoryType::Device,
            Access::READ_WRITE_EXECUTE,
        )
        .unwrap();
    let (_, device) = leaf(&table, 0x3000).unwrap();
    assert_eq!((device >> 2) & 0b1111, 0b0001, "MemAttr Device-nGnRE");
    assert_eq!((device >> 8) & 0b11, 0);
    assert_eq!((device >> 54) & 1, 1, "Device is never executable");
    assert_eq!(device, 0x0040_0000_0900_04c7);
    assert_eq!(
        table.translate(0x3004).unwrap(),
        Translation {
            pa: 0x0900_0004,
            memory: MemoryType::Device,
            access: Access::READ_WRITE,
        }
    );
}

#[test]
fn largest_blocks_are_chosen() {
    let mut memory = tables(8);
    let mut table = PageTable::new(TablePool::new(&mut memory, POOL_PA), Regime::Stage2).unwrap();
    // 1 GiB aligned on both sides: one level-1 block, no new table.
    table
        .map(GIB, 2 * GIB, GIB, MemoryType::Normal, Access::READ_WRITE)
        .unwrap();
    assert_eq!(table.tables_used(), 1);
    let (level, d) = leaf(&table, GIB + 0x1234).unwrap();
    assert_eq!(level, 1);
    assert_eq!(d & 0b11, 0b01, "block descriptor");
    assert_eq!(d & ADDRESS_MASK, 2 * GIB);

    // 2 MiB aligned: level-2 blocks in one new table.
    table
        .map(
            0,
            0x4000_0000 + 2 * MIB,
            4 * MIB,
            MemoryType::Normal,
            Access::READ,
        )
        .unwrap();
    assert_eq!(table.tables_used(), 2);
    let (level, d) = leaf(&table, 3 * MIB).unwrap();
    assert_eq!((level, d & 0b11), (2, 0b01));
    assert_eq!(d & ADDRESS_MASK, 0x4000_0000 + 4 * MIB);

    // Same size but the output is only 4 KiB aligned: pages.
    let before = table.tables_used();
    table
        .map(
            8 * MIB,
            0x5000_1000,
            2 * MIB,
            MemoryType::Normal,
            Access::READ,
        )
        .unwrap();
    assert_eq!(table.tables_used(), before + 1);
    assert_eq!(leaf(&table, 8 * MIB).unwrap().0, 3);
    assert_eq!(table.translate(9 * MIB).unwrap().pa, 0x5000_1000 + MIB);
}

#[test]
fn unaligned_range_mixes_pages_and_blocks() {
    let mut memory = tables(8);
    let mut table = PageTable::new(TablePool::new(&mut memory, POOL_PA), Regime::Stage2).unwrap();
    let va = 2 * MIB - 4096;
    let size = 4096 + 4 * MIB + 4096;
    table
        .map(
            va,
            0x8000_0000 + va,
            size,
            MemoryType::Normal,
            Access::READ_WRITE,
        )
        .unwrap();
    assert_eq!(leaf(&table, va).unwrap().0, 3);
    assert_eq!(leaf(&table, 2 * MIB).unwrap().0, 2);
    assert_eq!(leaf(&table, 4 * MIB).unwrap().0, 2);
    assert_eq!(leaf(&table, 6 * MIB).unwrap().0, 3);
    assert_eq!(leaf(&table, 6 * MIB + 4096), None);
    assert_eq!(leaf(&table, va - 4096), None);
    // Root, one level-2 table, two level-3 tables.
    assert_eq!(table.tables_used(), 4);
}

#[test]
fn translate_round_trips_every_page() {
    let mut memory = tables(8);
    let mut table = PageTable::new(TablePool::new(&mut memory, POOL_PA), Regime::Stage2).unwrap();
    let (va, pa, size) = (0x4000_0000 - 0x3000, 0x8820_0000 - 0x3000, 2 * MIB + 0x5000);
    table
        .map(va, pa, size, MemoryType::Normal, Access::READ_WRITE)
        .unwrap();
    for offset in (0..size).step_by(4096) {
        for within in [0, 8, 4095] {
            let t = table.translate(va + offset + within).unwrap();
            assert_eq!(t.pa, pa + offset + within);
            assert_eq!(t.memory, MemoryType::Normal);
            assert_eq!(t.access, Access::READ_WRITE);
        }
    }
    assert_eq!(table.translate(va - 1), None);
    assert_eq!(table.translate(va + size), None);
    assert_eq!(table.translate(1 << 39), None);
    assert_eq!(table.translate(u64::MAX), None);
}

#[test]
fn overlaps_are_refused_and_change_nothing() {
    let mut memory = tables(8);
    let mut table = PageTable::new(TablePool::new(&mut memory, POOL_PA), Regime::Stage2).unwrap();
    table
        .map(
            0x4000_0000,
            0x4800_0000,
            2 * MIB,
            MemoryType::Normal,
            Access::READ,
        )
        .unwrap();
    let used = table.tables_used();
    // Starts free, runs into the block: nothing of the free part may be mapped.
    assert_eq!(
        table.map(
            0x3fe0_0000,
            0x1000_0000,
            4 * MIB,
            MemoryType::Normal,
            Access::READ
        ),
        Err(MapError::AlreadyMapped { va: 0x4000_0000 })
    );
    assert_eq!(table.translate(0x3fe0_0000), None);
    assert_eq!(table.tables_used(), used);
    // A page inside the block.
    assert_eq!(
        table.map(
            0x4010_0000,
            0x1000_0000,
            4096,
            MemoryType::Normal,
            Access::READ
        ),
        Err(MapError::AlreadyMapped { va: 0x4010_0000 })
    );
    // A 1 GiB block over a level-2 table that holds a mapping.
    assert_eq!(
        table.map(GIB, 0, GIB, MemoryType::Normal, Access::READ),
        Err(MapError::AlreadyMapped { va: 0x4000_0000 })
    );
    // Pages around an existing page.
    table
        .map(0x1000, 0x1000, 4096, MemoryType::Device, Access::READ)
        .unwrap();
    assert_eq!(
        table.map(0, 0, 0x3000, MemoryType::Device, Access::READ),
        Err(MapError::AlreadyMapped { va: 0x1000 })
    );
    assert_eq!(table.translate(0), None);
    // The neighbours themselves are free, and a block next to existing pages reuses the
    // level-2 table.
    table
        .map(0, 0, 0x1000, MemoryType::Device, Access::READ)
        .unwrap();
    let used = table.tables_used();
    table
        .map(2 * MIB, 2 * MIB, 2 * MIB, MemoryType::Normal, Access::READ)
        .unwrap();
    assert_eq!(table.tables_used(), used);
}

#[test]
fn misaligned_and_out_of_range_requests_are_refused() {
    let mut memory = tables(4);
    let mut table = PageTable::new(TablePool::new(&mut memory, POOL_PA), Regime::Stage2).unwrap();
    let normal = MemoryType::Normal;
    let read = Access::READ;
    for (va, pa, size) in [(0x800, 0, 4096), (0, 0x10, 4096), (0, 0, 100), (0, 0, 0)] {
        assert_eq!(
            table.map(va, pa, size, normal, read),
            Err(MapError::Misaligned { va, pa, size })
        );
    }
    for (va, pa, size) in [
        ((1 << 39) - 4096, 0, 0x2000),
        (1 << 39, 0, 4096),
        (0, (1 << 48) - 4096, 0x2000),
        (0, !0xfff, 4096),
        (!0xfff, 0, 4096),
    ] {
        assert_eq!(
            table.map(va, pa, size, normal, read),
            Err(MapError::OutOfRange { va, pa, size })
        );
    }
    // The last page below both limits is fine.
    table
        .map((1 << 39) - 4096, (1 << 48) - 4096, 4096, normal, read)
        .unwrap();
    assert_eq!(table.translate((1 << 39) - 1).unwrap().pa, (1 << 48) - 1);
    assert_eq!(table.tables_used(), 3);
}

#[test]
fn access_combinations_are_checked_per_regime() {
    let mut memory = tables(8);
    let mut el2 = PageTable::new(TablePool::new(&mut memory, POOL_PA), Regime::El2Stage1).unwrap();
    let normal = MemoryType::Normal;
    let refused = |r: Result<(), MapError>| matches!(r, Err(MapError::Unsupported { .. }));
    assert!(refused(el2.map(
        0,
        0,
        4096,
        normal,
        Access::READ_WRITE_EXECUTE
    )));
    assert!(refused(el2.map(
        0,
        0,
        4096,
        normal,
        Access::new(false, true, false)
    )));
    assert!(refused(el2.map(
        0,
        0,
        4096,
        normal,
        Access::new(false, false, true)
    )));
    assert!(refused(el2.map(
        0,
        0,
        4096,
        normal,
        Access::new(false, false, false)
    )));
    assert_eq!(el2.tables_used(), 1);

    let mut memory = tables(8);
    let mut stage2 = PageTable::new(TablePool::new(&mut memory, POOL_PA), Regime::Stage2).unwrap();
    assert!(refused(stage2.map(
        0,
        0,
        4096,
        normal,
        Access::new(false, true, false)
    )));
    assert!(refused(stage2.map(
        0,
        0,
        4096,
        normal,
        Access::new(false, false, false)
    )));
    stage2
        .map(0, 0, 4096, normal, Access::READ_WRITE_EXECUTE)
        .unwrap();
    assert_eq!(
        stage2.translate(0).unwrap().access,
        Access::READ_WRITE_EXECUTE
    );
}

#[test]
fn running_out_of_tables_is_reported_and_changes_nothing() {
    let mut memory = tables(3);
    let mut table = PageTable::new(TablePool::new(&mut memory, POOL_PA), Regime::Stage2).unwrap();
    // Needs a level-2 table and two level-3 tables: three, only two are free.
    assert_eq!(
        table.map(2 * MIB - 4096, 0, 8192, MemoryType::Normal, Access::READ),
        Err(MapError::OutOfTables)
    );
    assert_eq!(table.tables_used(), 1);
    assert_eq!(table.translate(2 * MIB - 4096), None);
    // Two tables are enough for one page.
    table
        .map(2 * MIB - 4096, 0, 4096, MemoryType::Normal, Access::READ)
        .unwrap();
    assert_eq!(table.tables_used(), 3);
    assert_eq!(
        table.map(2 * MIB, 0, 4096, MemoryType::Normal, Access::READ),
        Err(MapError::OutOfTables)
    );
    // A block in the existing level-2 table needs no table.
    table
        .map(4 * MIB, 4 * MIB, 2 * MIB, MemoryType::Normal, Access::READ)
        .unwrap();
    let mut empty: [Table; 0] = [];
    assert!(matches!(
        PageTable::new(TablePool::new(&mut empty, POOL_PA), Regime::Stage2),
        Err(MapError::OutOfTables)
    ));
}

#[test]
fn a_cell_layout_of_device_pages_and_ram_blocks() {
    let mut memory = tables(8);
    let mut table = PageTable::new(TablePool::new(&mut memory, POOL_PA), Regime::Stage2).unwrap();
    let ram = (0x4000_0000, 0x4820_0000, 64 * MIB);
    table
        .map(
            ram.0,
            ram.1,
            ram.2,
            MemoryType::Normal,
            Access::READ_WRITE_EXECUTE,
        )
        .unwrap();
    table
        .map(
            0x0900_0000,
            0x0900_0000,
            4096,
            MemoryType::Device,
            Access::READ_WRITE,
        )
        .unwrap();
    table
        .map(
            0x0a00_0000,
            0x0a00_3000,
            0x2000,
            MemoryType::Device,
            Access::READ,
        )
        .unwrap();
    // RAM is 32 level-2 blocks; the devices share one level-2 and one level-3 table.
    for block in 0..32 {
        assert_eq!(leaf(&table, ram.0 + block * 2 * MIB).unwrap().0, 2);
    }
    assert_eq!(leaf(&table, 0x0900_0000).unwrap().0, 3);
    assert_eq!(table.tables_used(), 1 + 1 + 1 + 2);
    assert_eq!(
        table.translate(0x0900_0018).unwrap(),
        Translation {
            pa: 0x0900_0018,
            memory: MemoryType::Device,
            access: Access::READ_WRITE,
        }
    );
    assert_eq!(table.translate(0x0a00_1ffc).unwrap().pa, 0x0a00_4ffc);
    assert_eq!(table.translate(0x0a00_2000), None);
    assert_eq!(
        table.translate(ram.0 + 0x123_4567).unwrap(),
        Translation {
            pa: ram.1 + 0x123_4567,
            memory: MemoryType::Normal,
            access: Access::READ_WRITE_EXECUTE,
        }
    );
    assert_eq!(table.translate(ram.0 + ram.2), None);
}

#[test]
fn corrupt_table_descriptor_is_reported_not_followed() {
    let mut memory = tables(4);
    let mut table = PageTable::new(TablePool::new(&mut memory, POOL_PA), Regime::Stage2).unwrap();
    table.pool.tables[0][0] = 0x1234_5000 | 0b11;
    assert_eq!(
        table.map(0, 0, 4096, MemoryType::Normal, Access::READ),
        Err(MapError::CorruptTable { va: 0 })
    );
    assert_eq!(table.translate(0), None);
}

#[test]
fn control_register_values() {
    // T0SZ 25, SL0 1, IRGN0/ORGN0 WB-WA, SH0 inner, TG0 4K, PS 44 bits, RES1 bit 31.
    assert_eq!(vtcr_el2(44), 0x8004_3559);
    assert_eq!(vtcr_el2(40), 0x8002_3559);
    assert_eq!(vtcr_el2(32), 0x8000_3559);
    assert_eq!(vtcr_el2(48), 0x8005_3559);
    assert_eq!(vtcr_el2(52), 0x8005_3559);
    // No SL0 in TCR_EL2; RES1 bits 31 and 23.
    assert_eq!(tcr_el2(40), 0x8082_3519);
    assert_eq!(tcr_el2(36), 0x8081_3519);
    for (bits, field) in [
        (32, 0),
        (36, 1),
        (40, 2),
        (42, 3),
        (44, 4),
        (48, 5),
        (39, 1),
    ] {
        assert_eq!(physical_size_field(bits), field);
    }
    for (parange, bits) in [
        (0, 32),
        (1, 36),
        (2, 40),
        (3, 42),
        (4, 44),
        (5, 48),
        (6, 52),
    ] {
        assert_eq!(pa_range_bits(parange), bits);
    }
}

#[test]
fn errors_render_with_addresses() {
    assert_eq!(
        MapError::AlreadyMapped { va: 0x4000_0000 }.to_string(),
        "address 0x40000000 is already mapped"
    );
    assert_eq!(
        MapError::Misaligned { va: 0x800, pa: 0, size: 0x1000 }.to_string(),
        "cannot map 0x1000 bytes at 0x800 -> 0x0: addresses and size must be non-zero multiples of 4 KiB"
    );
}
